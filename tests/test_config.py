"""kmsnap.yaml / [tool.kmsnap]: every key, precedence, errors with file and line, filtering."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest

from kmsnap.config import (
    DEFAULTS,
    ENV_VARS,
    Config,
    IgnoredField,
    Selector,
    filter_snapshot,
    find_config,
    ignore_fields_by_kind,
    ignore_reasons,
    load_config,
    resolve_settings,
)
from kmsnap.errors import ConfigError, UsageError
from kmsnap.model import Snapshot

FULL = """\
api: https://kiss.example.com/core/
snapshot_dir: catalog/km/
include:
  accounts: [Acme, "42"]
  products: []
exclude:
  products: [Staging, 7]
ignore_fields:
  event:
    - field: description
      reason: edited freely by marketing
  metric:
    color: cosmetic
fail_on: breaking
concurrency: 4
page_size: 250
max_rps: 2.5
timeout: 12
"""


# [tool.kmsnap] needs tomllib (3.11+) or tomli; pyproject.toml has no tomli dependency yet.
needs_toml = pytest.mark.skipif(
    sys.version_info < (3, 11) and importlib.util.find_spec("tomli") is None,
    reason="Python 3.10 without tomli cannot read pyproject.toml",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ENV_VARS.values():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # error messages show paths relative to here


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    write(tmp_path / "kmsnap.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    return str(info.value)


def test_no_file_gives_defaults(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    assert config == Config()
    settings = resolve_settings(config, environ={})
    assert {name: getattr(settings, name) for name in DEFAULTS} == DEFAULTS
    assert set(settings.sources.values()) == {"default"}
    assert ignore_fields_by_kind(config) == {}


def test_every_key(tmp_path: Path) -> None:
    write(tmp_path / "kmsnap.yaml", FULL)
    config = load_config(tmp_path)
    assert config.path == tmp_path / "kmsnap.yaml"
    settings = resolve_settings(config, environ={})
    assert settings.api == "https://kiss.example.com/core"
    assert settings.snapshot_dir == "catalog/km"
    assert settings.fail_on == "breaking"
    assert (settings.concurrency, settings.page_size) == (4, 250)
    assert (settings.max_rps, settings.timeout) == (2.5, 12.0)
    assert settings.sources["concurrency"] == "kmsnap.yaml:15"
    assert config.include == Selector(accounts=frozenset({"Acme", "42"}))
    assert config.exclude == Selector(products=frozenset({"Staging", "7"}))
    assert config.ignore_fields == (
        IgnoredField("event", "description", "edited freely by marketing"),
        IgnoredField("metric", "color", "cosmetic"),
    )
    assert ignore_fields_by_kind(config) == {"event": {"description"}, "metric": {"color"}}
    assert ignore_reasons(config) == {
        "event": {"description": "edited freely by marketing"},
        "metric": {"color": "cosmetic"},
    }


def test_empty_file_and_null_max_rps(tmp_path: Path) -> None:
    write(tmp_path / "kmsnap.yaml", "# nothing yet\n")
    assert load_config(tmp_path).values == {}
    write(tmp_path / "kmsnap.yaml", "max_rps: null\ninclude:\n")
    config = load_config(tmp_path)
    assert config.values == {"max_rps": None}
    assert config.resolve("max_rps", environ={"KMSNAP_MAX_RPS": "3"}) == 3.0


@pytest.mark.parametrize(
    ("name", "flag", "env_text", "env_value", "file"),
    [
        (
            "api",
            "https://flag.example",
            "https://env.example/",
            "https://env.example",
            "https://file.example",
        ),
        ("snapshot_dir", "from-flag", "from-env", "from-env", "from-file"),
        ("fail_on", "breaking", "warning", "warning", "any"),
        ("concurrency", 1, "2", 2, 3),
        ("page_size", 10, "20", 20, 30),
        ("max_rps", 1.5, "2.5", 2.5, 3.5),
        ("timeout", 5.0, "6", 6.0, 7),
    ],
)
def test_precedence_flag_env_file_default(
    tmp_path: Path, name: str, flag: object, env_text: str, env_value: object, file: object
) -> None:
    write(tmp_path / "kmsnap.yaml", f"{name}: {file}\n")
    config = load_config(tmp_path)
    environ = {ENV_VARS[name]: env_text}
    assert config.resolve(name, flag, environ=environ) == flag
    assert config.resolve(name, None, environ=environ) == env_value
    assert config.resolve(name, None, environ={}) == file
    assert Config().resolve(name, None, environ={}) == DEFAULTS[name]
    assert Config().resolve(name, None, environ={ENV_VARS[name]: "  "}) == DEFAULTS[name]
    sources = resolve_settings(config, {name: None}, environ=environ).sources
    assert sources[name] == ENV_VARS[name]
    assert resolve_settings(config, {name: flag}, environ=environ).sources[name] == "flag"
    assert resolve_settings(config, environ={}).sources[name] == "kmsnap.yaml:1"


def test_process_environment_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KMSNAP_API", "http://127.0.0.1:8765/core")
    monkeypatch.setenv("KMSNAP_CONCURRENCY", "16")
    settings = resolve_settings(load_config(tmp_path))
    assert (settings.api, settings.concurrency) == ("http://127.0.0.1:8765/core", 16)


def test_bad_environment_and_flag_values(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    with pytest.raises(ConfigError, match="environment variable KMSNAP_CONCURRENCY: must be a"):
        config.resolve("concurrency", environ={"KMSNAP_CONCURRENCY": "many"})
    with pytest.raises(ConfigError, match="KMSNAP_FAIL_ON: must be one of breaking, warning, any"):
        config.resolve("fail_on", environ={"KMSNAP_FAIL_ON": "all"})
    with pytest.raises(UsageError, match="--page-size: must be a positive integer, got 0"):
        config.resolve("page_size", 0, environ={})
    with pytest.raises(UsageError, match="--api: plain http is only allowed for localhost"):
        config.resolve("api", "http://api.example.com", environ={})
    with pytest.raises(KeyError):
        resolve_settings(config, {"concurency": 3})


def test_unknown_key_names_file_line_and_suggestion(tmp_path: Path) -> None:
    text = "\n".join(["# comment"] * 6) + "\nconcurency: 3\n"
    assert error_of(tmp_path, text) == (
        "kmsnap.yaml:7: unknown key 'concurency' (did you mean 'concurrency'?)"
    )
    assert error_of(tmp_path, "colour: red\n") == "kmsnap.yaml:1: unknown key 'colour'"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "timeout: 3\nconcurrency: -1\n",
            "kmsnap.yaml:2: 'concurrency' must be a positive integer",
        ),
        ("concurrency: 2.5\n", "kmsnap.yaml:1: 'concurrency' must be a positive integer"),
        ("page_size: true\n", "kmsnap.yaml:1: 'page_size' must be a positive integer, got True"),
        ("\nfail_on: all\n", "kmsnap.yaml:2: 'fail_on' must be one of breaking, warning, any"),
        ("api: ftp://api.example.com\n", "kmsnap.yaml:1: 'api' must be an https:// URL"),
        ("api: 42\n", "kmsnap.yaml:1: 'api' must be a URL"),
        ("api: http://api.example.com\n", "'api' plain http is only allowed for localhost"),
        ("api: https://u:p@api.example.com\n", "'api' must not carry credentials"),
        ("max_rps: 0\n", "kmsnap.yaml:1: 'max_rps' must be a positive number"),
        ("timeout: soon\n", "kmsnap.yaml:1: 'timeout' must be a positive number"),
        ("timeout: .inf\n", "kmsnap.yaml:1: 'timeout' must be finite"),
        ("snapshot_dir: ../elsewhere\n", "kmsnap.yaml:1: 'snapshot_dir' must be a relative path"),
        ("snapshot_dir: /abs\n", "'snapshot_dir' must be a relative path"),
        ("snapshot_dir: -x\n", "'snapshot_dir' must be a relative path"),
        (
            "include:\n  acounts: [a]\n",
            "kmsnap.yaml:2: unknown key 'acounts' in 'include' (did you mean 'accounts'?)",
        ),
        ("exclude:\n  products: Staging\n", "kmsnap.yaml:2: 'exclude.products' must be a list"),
        ("exclude: [a]\n", "kmsnap.yaml:1: 'exclude' must be a mapping"),
        (
            "ignore_fields:\n  events: {description: x}\n",
            "kmsnap.yaml:2: unknown kind 'events' in 'ignore_fields' (did you mean 'event'?)",
        ),
        (
            "ignore_fields:\n  event:\n    - field: description\n",
            "kmsnap.yaml:3: 'ignore_fields.event.description' needs a reason",
        ),
        (
            "ignore_fields:\n  event:\n    description: ''\n",
            "kmsnap.yaml:3: 'ignore_fields.event.description' needs a reason",
        ),
        (
            "ignore_fields:\n  event:\n    - field: x\n      reson: y\n",
            "kmsnap.yaml:4: unknown key 'reson' in 'ignore_fields.event' (did you mean 'reason'?)",
        ),
        ("ignore_fields:\n  event:\n    id: because\n", "kmsnap.yaml:3: 'id' cannot be ignored"),
        ("ignore_fields:\n  event: description\n", "kmsnap.yaml:2: 'ignore_fields.event' must be"),
        ("- a\n- b\n", "kmsnap.yaml:1: the configuration must be a mapping"),
        ("concurrency: 1\nconcurrency: 2\n", "kmsnap.yaml:2: duplicate key 'concurrency'"),
        ("concurrency: [1\n", "kmsnap.yaml:2: not valid YAML"),
        ("base: &b 1\nconcurrency: *b\n", "kmsnap.yaml:1: anchors and aliases are not allowed"),
        ("concurrency: !!int 3\n", "kmsnap.yaml:1: YAML tags are not allowed"),
        ("api: !!python/object:os.system x\n", "kmsnap.yaml:1: YAML tags are not allowed"),
    ],
)
def test_bad_values_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    assert message in error_of(tmp_path, text)


@pytest.mark.parametrize("key", ["token", "api_token", "KISSMETRICS_TOKEN"])
def test_token_key_is_refused(tmp_path: Path, key: str) -> None:
    message = error_of(tmp_path, f"concurrency: 2\n{key}: s3cret\n")
    assert message.startswith(f"kmsnap.yaml:2: '{key}': the token is never read from the config")
    assert "KISSMETRICS_TOKEN" in message and "--token-file" in message
    assert "s3cret" not in message


@needs_toml
def test_pyproject_tool_table(tmp_path: Path) -> None:
    write(
        tmp_path / "pyproject.toml",
        """\
        [project]
        name = "mine"

        [tool.kmsnap]
        snapshot_dir = "km"
        fail_on = "warning"

        [tool.kmsnap.exclude]
        products = ["Staging"]

        [tool.kmsnap.ignore_fields.event]
        description = "noise"

        [tool.ruff]
        line-length = 100
        """,
    )
    config = load_config(tmp_path)
    assert config.path == tmp_path / "pyproject.toml"
    assert config.values == {"snapshot_dir": "km", "fail_on": "warning"}
    assert config.exclude.products == {"Staging"}
    assert ignore_reasons(config) == {"event": {"description": "noise"}}
    assert config.source("fail_on") == "pyproject.toml:6"


@needs_toml
def test_pyproject_errors_have_lines(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.kmsnap]\nfail_on = "any"\nconcurency = 3\n')
    with pytest.raises(ConfigError, match=r"^pyproject.toml:3: unknown key 'concurency'"):
        load_config(tmp_path)
    write(tmp_path / "pyproject.toml", '[tool.kmsnap]\ntoken = "x"\n')
    with pytest.raises(ConfigError, match=r"^pyproject.toml:2: 'token': the token is never"):
        load_config(tmp_path)
    write(tmp_path / "pyproject.toml", "[tool.kmsnap\n")
    with pytest.raises(ConfigError, match="pyproject.toml: not valid TOML"):
        load_config(path=tmp_path / "pyproject.toml")


def test_pyproject_without_toml_parser_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "pyproject.toml", '[tool.kmsnap]\nfail_on = "any"\n')
    monkeypatch.setattr(sys, "version_info", (3, 10, 14, "final", 0))
    monkeypatch.setitem(sys.modules, "tomli", None)  # not installed
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value) == (
        "pyproject.toml: reading [tool.kmsnap] needs Python 3.11+ or the 'tomli' package "
        "on Python 3.10 (pip install tomli), or use kmsnap.yaml"
    )


def test_pyproject_without_tool_table_is_not_a_config(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n[tool.kmsnapper]\na = 1\n')
    assert find_config(tmp_path) is None


def test_both_files_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "kmsnap.yaml", "fail_on: any\n")
    write(tmp_path / "pyproject.toml", "[tool.kmsnap]\nfail_on = 'any'\n")
    with pytest.raises(ConfigError, match="both configure kmsnap: keep one"):
        load_config(tmp_path)


def test_found_from_a_subdirectory_up_to_the_git_root(tmp_path: Path) -> None:
    outside = write(tmp_path / "kmsnap.yaml", "fail_on: warning\n")
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    deep = repo / "a" / "b"
    deep.mkdir(parents=True)
    # A config above the git root belongs to someone else.
    assert find_config(deep) is None
    assert find_config(tmp_path) == outside
    write(repo / "kmsnap.yaml", "fail_on: breaking\n")
    assert load_config(deep).values == {"fail_on": "breaking"}
    # Outside any git repository, only the directory itself is looked at.
    plain = tmp_path / "plain" / "sub"
    plain.mkdir(parents=True)
    write(tmp_path / "plain" / "kmsnap.yaml", "fail_on: any\n")
    assert find_config(plain) is None


def test_snapshot_header_is_not_a_config(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    write(tmp_path / "kmsnap.yaml", "concurrency: 3\n")
    header = write(
        tmp_path / "snapshots" / "kmsnap.yaml",
        "format: 1\napi: https://api.kissmetrics.com/core\ncounts:\n  event: 3\n",
    )
    # Run from inside the snapshot directory: its header is skipped, the root config is used.
    assert load_config(tmp_path / "snapshots").values == {"concurrency": 3}
    (tmp_path / "kmsnap.yaml").unlink()
    assert load_config(tmp_path / "snapshots") == Config()
    with pytest.raises(ConfigError, match="snapshot header, not a kmsnap config") as info:
        load_config(path=header)
    assert str(info.value).startswith("snapshots/kmsnap.yaml:1: ")


def test_explicit_path(tmp_path: Path) -> None:
    path = write(tmp_path / "ci" / "kmsnap-ci.yaml", "page_size: 500\n")
    assert load_config(path=path).values == {"page_size": 500}
    with pytest.raises(ConfigError, match="missing.yaml: no such config file"):
        load_config(path=tmp_path / "missing.yaml")
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * 1_100_000)
    with pytest.raises(ConfigError, match="too big"):
        load_config(path=big)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path=binary)


def test_written_template_loads_with_every_example_uncommented(tmp_path: Path) -> None:
    from kmsnap.scaffold import render_files

    text = render_files(fail_on="warning", snapshot_dir="km")[Path("kmsnap.yaml")]
    assert load_config(path=write(tmp_path / "kmsnap.yaml", text)).values == {
        "snapshot_dir": "km",
        "fail_on": "warning",
    }
    lines = []
    for line in text.splitlines():
        body = line[2:] if line.startswith("# ") else line
        # Uncomment the commented-out settings (indented or "key:"), keep the prose comments.
        is_setting = body.startswith(" ") or (body.split(":")[0].isidentifier() and ":" in body)
        lines.append(body if line.startswith("# ") and is_setting else line)
    config = load_config(path=write(tmp_path / "all.yaml", "\n".join(lines) + "\n"))
    # Every default the template shows is the real default.
    # ...and the install line is the version that wrote it (kmsnap init --install).
    from kmsnap import __version__

    assert config.values == {
        **DEFAULTS, "fail_on": "warning", "snapshot_dir": "km", "install": f"kmsnap=={__version__}"
    }
    assert set(config.lines) == {*DEFAULTS, "include", "exclude", "ignore_fields", "install"}
    assert ignore_fields_by_kind(config) == {"event": {"description"}, "metric": {"color"}}


# ---- filter_snapshot -------------------------------------------------------------------


def catalog() -> Snapshot:
    snap = Snapshot(api="https://api.kissmetrics.com/core")
    snap.add("account", {"id": "a1", "name": "Acme"})
    snap.add("account", {"id": "a2", "name": "Beta"})
    snap.add("product", {"id": "p1", "account_id": "a1", "name": "Web"})
    snap.add("product", {"id": "p2", "account_id": "a1", "name": "Staging"})
    snap.add("product", {"id": "p3", "account_id": "a2", "name": "App"})
    for pid in ("p1", "p2", "p3", "p9"):  # p9: a product the token cannot see
        snap.add("event", {"id": f"e-{pid}", "product_id": pid, "name": "Signed Up", "total": 5})
    snap.add("report", {"id": "r1", "account_id": "a2", "product_id": "p3", "name": "Funnel"})
    snap.add("segments", {"id": "s1", "name": "Other collection"})
    snap.add("segments", {"id": "s2", "account_id": "a1", "name": "Account scoped"})
    return snap


def ids(snap: Snapshot) -> dict[str, set[str]]:
    return {kind: set(by_id) for kind, by_id in snap.entities.items() if by_id}


def configured(tmp_path: Path, text: str) -> Config:
    return load_config(path=write(tmp_path / "kmsnap.yaml", text))


def test_filter_without_selection_is_identity(tmp_path: Path) -> None:
    snap = catalog()
    assert filter_snapshot(snap, Config()) is snap


def test_exclude_account_drops_its_products_and_entities(tmp_path: Path) -> None:
    out = filter_snapshot(catalog(), configured(tmp_path, "exclude:\n  accounts: [Acme]\n"))
    assert ids(out) == {
        "account": {"a2"},
        "product": {"p3"},
        "event": {"e-p3", "e-p9"},
        "report": {"r1"},
        "segments": {"s1"},
    }
    assert set(out.stats["event"]) == {"e-p3", "e-p9"}
    assert out.api == "https://api.kissmetrics.com/core"


def test_exclude_product_by_name_or_id(tmp_path: Path) -> None:
    for who in ("Staging", "p2"):
        out = filter_snapshot(catalog(), configured(tmp_path, f"exclude:\n  products: [{who}]\n"))
        assert ids(out)["product"] == {"p1", "p3"}
        assert ids(out)["event"] == {"e-p1", "e-p3", "e-p9"}
        assert ids(out)["account"] == {"a1", "a2"}


def test_include_account_and_product(tmp_path: Path) -> None:
    out = filter_snapshot(catalog(), configured(tmp_path, "include:\n  accounts: [a1]\n"))
    assert ids(out) == {
        "account": {"a1"},
        "product": {"p1", "p2"},
        "event": {"e-p1", "e-p2"},
        "segments": {"s1", "s2"},
    }
    out = filter_snapshot(
        catalog(),
        configured(tmp_path, "include:\n  products: [Web, App]\nexclude:\n  accounts: [Beta]\n"),
    )
    assert ids(out) == {
        "account": {"a1"},
        "product": {"p1"},
        "event": {"e-p1"},
        "segments": {"s1"},
    }


def test_filter_leaves_the_input_alone(tmp_path: Path) -> None:
    snap = catalog()
    filter_snapshot(snap, configured(tmp_path, "exclude:\n  accounts: [Acme, Beta]\n"))
    assert ids(snap) == ids(catalog())
