"""The command line on the REST API v3: pull, diff, check and probe against the v3 emulator over
real loopback HTTP, in an injected Environment (no process variables, streams or directory)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from test_emulator_v3 import small_catalog

from kmsnap.cli import Environment, run
from kmsnap.config import Config, load_config, resolve_settings
from kmsnap.emulator import Catalog, Emulator, generate_catalog
from kmsnap.emulator.v3 import API_KEY, PASSWORD, USERNAME, EmulatorV3
from kmsnap.model import Snapshot
from kmsnap.snapshot.shrink import ShrinkGuard
from kmsnap.snapshot.store import load_snapshot
from kmsnap.sources.base import resolve_source
from kmsnap.sources.v3 import V3PullOptions

LOGIN = {"KISSMETRICS_USERNAME": USERNAME, "KISSMETRICS_PASSWORD": PASSWORD}
FAST = ("--max-rpm", "100000")  # the emulator has no limit here: no pacing waits either
SECRETS = (PASSWORD, API_KEY, base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode(),
           base64.b64encode(f"{API_KEY}:".encode()).decode())


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The commands read the injected Environment; this only keeps the process's own
    # variables from mattering should anything read them by mistake.
    for name in list(os.environ):
        if name.startswith(("KMSNAP_", "KISSMETRICS_", "GITHUB_")) or name.lower() in (
            "http_proxy", "https_proxy", "all_proxy", "no_proxy", "netrc"
        ):
            monkeypatch.delenv(name, raising=False)


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"Result({self.code}, out={self.out[:400]!r}, err={self.err[:400]!r})"


Kmsnap = Callable[..., Result]


@pytest.fixture
def kmsnap(tmp_path: Path) -> Kmsnap:
    """``kmsnap(*argv, environ=LOGIN)``: the CLI in an injected Environment at ``tmp_path``."""

    def call(*argv: str, environ: dict[str, str] | None = None) -> Result:
        out, err = StringIO(), StringIO()
        env = Environment(environ=dict(LOGIN if environ is None else environ), cwd=tmp_path,
                          stdout=out, stderr=err)
        code = run(list(argv), env=env)
        return Result(code, out.getvalue(), err.getvalue())

    return call


@pytest.fixture
def make_v3() -> Iterator[Callable[..., EmulatorV3]]:
    made: list[EmulatorV3] = []

    def make(catalog: Catalog | None = None, **kwargs: Any) -> EmulatorV3:
        kwargs.setdefault("rate_per_minute", None)
        emu = EmulatorV3(catalog, **kwargs)
        made.append(emu)
        return emu.start()

    yield make
    for emu in made:
        emu.stop()


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def pull(kmsnap: Kmsnap, emu: EmulatorV3, out: str, *extra: str, **kw: Any) -> Result:
    return kmsnap("pull", "--source", "v3", "--api", emu.base_url, "--out", out, *FAST,
                  *extra, **kw)


# ------------------------------------------------------------------------------ pull


def test_pull_writes_a_complete_byte_stable_v3_snapshot(
    kmsnap: Kmsnap, make_v3: Callable[..., EmulatorV3], tmp_path: Path
) -> None:
    emu = make_v3(generate_catalog(size=300, seed=3), envelope="published")
    first = pull(kmsnap, emu, "snap")
    assert first.code == 0, first
    products = emu.records("products")
    least = 1 + 3 * len(products)
    assert f"(least possible {least})" in first.err and "; wrote snap" in first.err
    snap = tmp_path / "snap"
    meta = (snap / "kmsnap.yaml").read_text()
    assert 'source: "v3"' in meta and f'api: "{emu.base_url}"' in meta
    assert not list(snap.rglob("metrics.yaml"))  # v3 has none: no files claiming so

    loaded = load_snapshot(snap)
    assert loaded.source == "v3" and "metric" not in loaded.entities
    assert set(loaded.of("product")) == {str(p["id"]) for p in products}
    for resource, kind in (("reports", "report"), ("events", "event"),
                           ("properties", "property")):
        served = {str(r["id"]) for p in products for r in emu.records(resource, int(p["id"]))}
        assert set(loaded.of(kind)) == served, resource
    # Accounts: only the id v3 sends, no invented name; integer ids stay integers.
    accounts = {p["account_id"] for p in products}
    assert {a["id"] for a in loaded.of("account").values()} == accounts
    assert all(set(a) == {"id"} for a in loaded.of("account").values())
    event = next(iter(loaded.of("event").values()))
    assert type(event["id"]) is int and type(event["product_id"]) is int
    assert "total" not in event and "visible" in event  # usage fields left out

    before = tree(snap)
    again = pull(kmsnap, emu, "snap")
    assert again.code == 0, again
    assert tree(snap) == before


def test_the_source_comes_from_the_url_or_kmsnap_yaml(
    kmsnap: Kmsnap, make_v3: Callable[..., EmulatorV3], tmp_path: Path
) -> None:
    emu = make_v3(small_catalog(events=3))
    by_url = kmsnap("pull", "--api", emu.base_url, "--out", "a", *FAST)  # .../v3
    assert by_url.code == 0, by_url
    (tmp_path / "kmsnap.yaml").write_text(f"source: v3\napi: {emu.base_url}\nmax_rpm: 100000\n")
    by_file = kmsnap("pull", "--out", "b")
    assert by_file.code == 0, by_file
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    # A Core token does not reach v3, and v3 credentials do not reach Core.
    token = kmsnap("pull", "--out", "c", "--token-file", "t")
    assert token.code == 1 and "--token-file is for the Core API" in token.err
    assert kmsnap("pull", "--source", "nope").code == 1


def test_source_resolution_and_v3_defaults(tmp_path: Path) -> None:
    assert resolve_source(None, "https://api.kissmetrics.com/core", api_given=False) == (
        "core", "https://api.kissmetrics.com/core")
    assert resolve_source("v3", "https://api.kissmetrics.com/core", api_given=False) == (
        "v3", "https://query.kissmetrics.io/v3")
    assert resolve_source(None, "http://127.0.0.1:1/v3", api_given=True)[0] == "v3"
    assert resolve_source("core", "http://127.0.0.1:1/v3", api_given=True)[0] == "core"

    from kmsnap.cli.pull import live_options

    config = Config()
    settings = resolve_settings(config, {"source": "v3", "max_rpm": 30}, environ={})
    env = Environment(environ={"KISSMETRICS_API_KEY": API_KEY}, cwd=tmp_path,
                      stdout=StringIO(), stderr=StringIO())
    from kmsnap.cli.environment import using

    with using(env):
        options = live_options(settings, config)
    assert isinstance(options, V3PullOptions)
    assert options.api == "https://query.kissmetrics.io/v3"
    assert options.per_minute == 30 and options.concurrency == 4 and options.page_size == 1000
    assert options.credentials.origin == "KISSMETRICS_API_KEY"
    with using(env):
        default = live_options(resolve_settings(config, {"source": "v3"}, environ={}), config)
    assert isinstance(default, V3PullOptions) and default.per_minute == 15


def test_usage_only_churn_re_pulls_byte_identical(
    kmsnap: Kmsnap, make_v3: Callable[..., EmulatorV3], tmp_path: Path
) -> None:
    emu = make_v3(small_catalog(events=8))
    assert pull(kmsnap, emu, "snap").code == 0
    assert pull(kmsnap, emu, "stats", "--with-stats").code == 0
    before, stats_before = tree(tmp_path / "snap"), tree(tmp_path / "stats")
    assert any(rel.endswith(".stats.yaml") for rel in stats_before)
    assert emu.catalog.touch_usage(seed=5) > 0
    assert pull(kmsnap, emu, "snap").code == 0
    assert tree(tmp_path / "snap") == before
    assert pull(kmsnap, emu, "stats", "--with-stats").code == 0
    assert tree(tmp_path / "stats") != stats_before  # the counters did move


# ------------------------------------------------------------------ diff and check

EXPECTED = {  # name -> (change, severity), for the scripted week below
    "brand new": ("added", "info"),
    "event 1": ("changed", "warning"),  # visible: true -> false
    "event 2": ("removed", "breaking"),
    "event 3": ("recreated", "breaking"),
    "renamed": ("renamed", "breaking"),
}


def _script(emu: EmulatorV3) -> None:
    catalog = emu.catalog
    catalog.rename("event", "ev-0", "renamed")
    catalog.set_field("event", "ev-1", "is_visible", False)  # served as visible: false
    catalog.remove("event", "ev-2")
    catalog.recreate("event", "ev-3")
    catalog.add("event", {"product_id": "prod-a", "name": "brand new", "is_visible": True})


def _changes(text: str) -> dict[str, tuple[str, str]]:
    return {c["name"]: (c["change"], c["severity"]) for c in json.loads(text)["changes"]}


def test_scripted_changes_diff_and_check_exactly(
    kmsnap: Kmsnap, make_v3: Callable[..., EmulatorV3], tmp_path: Path
) -> None:
    emu = make_v3(small_catalog(events=6))
    assert pull(kmsnap, emu, "old").code == 0
    _script(emu)
    assert pull(kmsnap, emu, "new").code == 0

    diff = kmsnap("diff", "old", "new", "--format", "json")
    assert diff.code == 0, diff
    assert _changes(diff.out) == EXPECTED
    hidden = next(c for c in json.loads(diff.out)["changes"] if c["name"] == "event 1")
    assert hidden["fields"] == {"visible": {"old": True, "new": False}}

    check = kmsnap("check", "--source", "v3", "--api", emu.base_url, "--snapshot", "old",
                   "--format", "json", *FAST)
    assert check.code == 2, check
    assert _changes(check.out) == EXPECTED
    assert kmsnap("check", "--api", emu.base_url, "--snapshot", "new", *FAST).code == 0
    warn = kmsnap("check", "--api", emu.base_url, "--snapshot", "old", "--fail-on",
                  "breaking", "--format", "json", *FAST)
    assert warn.code == 2 and _changes(warn.out) == EXPECTED


def test_core_and_v3_snapshots_are_not_compared(
    kmsnap: Kmsnap, make_v3: Callable[..., EmulatorV3], tmp_path: Path
) -> None:
    catalog = small_catalog(events=4)
    emu = make_v3(catalog)
    with Emulator(catalog, token="core-token") as core:
        core_pull = kmsnap("pull", "--api", core.base_url, "--out", "core",
                           environ={"KISSMETRICS_TOKEN": "core-token"})
    assert core_pull.code == 0, core_pull
    assert "source:" not in (tmp_path / "core" / "kmsnap.yaml").read_text()
    assert pull(kmsnap, emu, "v3").code == 0

    for old, new in (("core", "v3"), ("v3", "core")):
        refused = kmsnap("diff", old, new)
        assert refused.code == 1 and refused.out == ""
        lines = refused.err.strip().splitlines()
        assert len(lines) == 1 and "ids cannot be matched" in lines[0], refused
    # check: the same refusal, not a shrink reported as everything removed
    check = kmsnap("check", "--api", emu.base_url, "--snapshot", "core", *FAST)
    assert check.code == 1 and "ids cannot be matched" in check.err, check
    assert "would remove" not in check.err and "lacks" not in check.err
    # Told from the stored header before the crawl: not one request reaches the live API.
    with Emulator(catalog, token="core-token") as core:
        early = kmsnap("check", "--api", core.base_url, "--snapshot", "v3",
                       environ={"KISSMETRICS_TOKEN": "core-token"})
        assert core.requests == []
    assert early.code == 1 and early.out == "", early
    assert early.err.count("\n") == 1 and "ids cannot be matched" in early.err, early
    assert f"live ({core.base_url})" in early.err
    # With --allow-shrink the guard reads nothing; the comparison refuses it after the crawl.
    with Emulator(catalog, token="core-token") as core:
        late = kmsnap("check", "--api", core.base_url, "--snapshot", "v3", "--allow-shrink",
                      environ={"KISSMETRICS_TOKEN": "core-token"})
        assert core.requests != []
    assert late.code == 1 and "ids cannot be matched" in late.err, late


# --------------------------------------------------------------------- credentials


def test_credentials_never_in_output_debug_or_snapshot(
    kmsnap: Kmsnap, make_v3: Callable[..., EmulatorV3], tmp_path: Path
) -> None:
    emu = make_v3(small_catalog(events=3))
    outputs = []
    ok = kmsnap("--debug", "pull", "--api", emu.base_url, "--out", "snap", *FAST)
    assert ok.code == 0, ok
    outputs.append(ok)
    key = kmsnap("pull", "--api", emu.base_url, "--out", "key", *FAST,
                 environ={"KISSMETRICS_API_KEY": API_KEY})
    assert key.code == 0, key
    outputs.append(key)

    wrong = {"KISSMETRICS_USERNAME": USERNAME, "KISSMETRICS_PASSWORD": PASSWORD + "x"}
    url = emu.base_url
    for argv in (("--debug", "pull", "--api", url, "--out", "bad"),
                 ("pull", "--api", url, "--out", "bad"),
                 ("--debug", "probe", "--api", url),
                 ("check", "--api", url, "--snapshot", "snap")):
        bad = kmsnap(*argv, *FAST, environ=wrong)
        assert bad.code == 1, (argv, bad)
        assert "KISSMETRICS_USERNAME" in bad.err and "KISSMETRICS_API_KEY" in bad.err
        outputs.append(bad)
    none = kmsnap("pull", "--api", emu.base_url, *FAST, environ={})
    assert none.code == 1 and "no v3 credentials" in none.err
    assert not (tmp_path / "bad").exists()

    creds = tmp_path / "creds"
    creds.write_text(f"{USERNAME}:{PASSWORD}\n")
    creds.chmod(0o600)
    by_file = kmsnap("pull", "--api", emu.base_url, "--out", "file", "--credentials-file",
                     "creds", *FAST, environ={})
    assert by_file.code == 0, by_file
    outputs.append(by_file)

    secrets = (*SECRETS, PASSWORD + "x")
    for result in outputs:
        for secret in secrets:
            assert secret not in result.out and secret not in result.err, (secret, result)
    for snap in ("snap", "key", "file"):
        for rel, data in tree(tmp_path / snap).items():
            text = data.decode()
            assert USERNAME not in text and not any(s in text for s in secrets), rel


# --------------------------------------------------------------------------- 403


def test_a_forbidden_product_fails_the_pull_unless_excluded(
    kmsnap: Kmsnap, make_v3: Callable[..., EmulatorV3], tmp_path: Path
) -> None:
    emu = make_v3(small_catalog(events=3))
    assert pull(kmsnap, emu, "snap").code == 0
    before = tree(tmp_path / "snap")
    pid = emu.v3_id("product", "prod-b")
    emu.forbid(pid)
    refused = pull(kmsnap, emu, "snap")
    assert refused.code == 1
    assert "'App'" in refused.err and f"id {pid}" in refused.err and "403" in refused.err
    assert "excluded in kmsnap.yaml" in refused.err
    assert tree(tmp_path / "snap") == before  # a partial pull never reads as deletions

    (tmp_path / "kmsnap.yaml").write_text(f"exclude:\n  products: [{pid}]\n")
    excluded = pull(kmsnap, emu, "snap")
    assert excluded.code == 0, excluded
    assert "left out product 'App'" in excluded.err
    snapshot = load_snapshot(tmp_path / "snap")
    assert str(pid) not in snapshot.of("product")
    assert {r["product_id"] for r in snapshot.of("event").values()} == {
        emu.v3_id("product", "prod-a")}


# ----------------------------------------------------------------------- shrink


def test_the_shrink_guard_on_v3(
    kmsnap: Kmsnap, make_v3: Callable[..., EmulatorV3], tmp_path: Path
) -> None:
    # No metrics in v3 is not "all metrics removed" ...
    old = {"event": frozenset({"1", "2"}), "metric": frozenset({"m1", "m2"})}
    new = Snapshot(source="v3")
    for eid in ("1", "2"):
        new.add("event", {"id": eid})
    assert ShrinkGuard(old, "snap", Config(), environ={}).problem(new) is None
    core = Snapshot(entities=new.entities)
    assert "all 2 metrics" in str(ShrinkGuard(old, "snap", Config(), environ={}).problem(core))

    # ... and a v3 pull that loses a quarter of its entities is refused as any other.
    emu = make_v3(small_catalog(events=12))
    assert pull(kmsnap, emu, "snap").code == 0
    before = tree(tmp_path / "snap")
    for i in range(8):
        emu.catalog.remove("event", f"ev-{i}")
    shrunk = pull(kmsnap, emu, "snap")
    assert shrunk.code == 1 and "would remove" in shrunk.err, shrunk
    assert tree(tmp_path / "snap") == before
    assert pull(kmsnap, emu, "snap", "--allow-shrink").code == 0


# ------------------------------------------------------------------------- probe


def _values(records: list[dict[str, Any]]) -> set[str]:
    out: set[str] = set()
    for record in records:
        for value in record.values():
            if isinstance(value, str) and len(value) >= 3:
                out.add(value)
            elif isinstance(value, int) and not isinstance(value, bool) and value >= 100:
                out.add(str(value))
    return out


def test_probe_prints_shapes_and_no_value(
    kmsnap: Kmsnap, make_v3: Callable[..., EmulatorV3]
) -> None:
    emu = make_v3(generate_catalog(size=200, seed=1), envelope="published",
                  extra_fields={"events": {"beta_flag": "s3cr3t-value"}})
    result = kmsnap("probe", "--api", emu.base_url, *FAST)
    assert result.code == 0, result
    text = result.out
    assert "GET /products: HTTP 200" in text
    assert "GET /products/{product_id}/properties: HTTP 200" in text
    assert "records:" in text and "under 'events'" in text  # the published slip, seen
    assert "    id: integer" in text and "    visible: boolean" in text
    assert "    beta_flag: string" in text and "s3cr3t-value" not in text
    products = emu.records("products")
    values = _values(products)
    for resource in ("reports", "events", "properties"):
        values |= _values(emu.records(resource, int(products[0]["id"])))
    leaked = sorted(v for v in values if v in text)
    assert not leaked
    assert emu.count() == 4  # one page each: within any rate limit
    for secret in SECRETS:
        assert secret not in text and secret not in result.err

    emu.forbid(int(products[0]["id"]))
    forbidden = kmsnap("probe", "--api", emu.base_url, *FAST)
    assert forbidden.code == 1
    assert "GET /products/{product_id}/events: HTTP 403: refused" in forbidden.out
    assert "3 of 4 endpoints failed" in forbidden.err


def test_probe_works_against_core(kmsnap: Kmsnap) -> None:
    with Emulator(small_catalog(events=3), token="core-token") as core:
        result = kmsnap("probe", "--api", core.base_url,
                        environ={"KISSMETRICS_TOKEN": "core-token"})
    assert result.code == 0, result
    assert result.out.startswith("kmsnap probe: core API")
    assert "GET /: HTTP 200" in result.out and "GET /products/{product_id}/events" in result.out
    assert "    is_visible: boolean" in result.out
    assert "core-token" not in result.out and "event 0" not in result.out and "Acme" not in \
        result.out


# -------------------------------------------------------------------------- serve


def test_serve_source_v3_serves_a_pullable_catalog(kmsnap: Kmsnap, tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "kmsnap", "serve", "--source", "v3", "--port", "0", "--size",
         "120", "--rate-per-minute", "0", "--envelope", "resource"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("KISSMETRICS_")},
    ) as proc:
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip()  # printed once the socket listens
            assert url.endswith("/v3"), url
            result = kmsnap("pull", "--api", url, "--out", "snap", *FAST,
                            environ={"KISSMETRICS_API_KEY": API_KEY})
            assert result.code == 0, result
            assert load_snapshot(tmp_path / "snap").source == "v3"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_config_file_source_and_max_rpm_are_checked(tmp_path: Path) -> None:
    from kmsnap.errors import ConfigError

    path = tmp_path / "kmsnap.yaml"
    path.write_text("source: v2\n")
    with pytest.raises(ConfigError, match="'source' must be one of core, v3"):
        load_config(path=path)
    path.write_text("max_rpm: 0\n")
    with pytest.raises(ConfigError, match="'max_rpm'"):
        load_config(path=path)
    path.write_text("source: v3\nmax_rpm: 12\n")
    settings = resolve_settings(load_config(path=path), environ={"KMSNAP_MAX_RPM": "9"})
    assert (settings.source, settings.max_rpm) == ("v3", 9)


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c",
                    "commit.gpgsign=false", "-c", "init.defaultBranch=main", *args],
                   cwd=repo, check=True, capture_output=True)


def test_log_and_a_git_revision_diff_read_v3_history(
    kmsnap: Kmsnap, make_v3: Callable[..., EmulatorV3], tmp_path: Path
) -> None:
    emu = make_v3(small_catalog(events=6))
    _git(tmp_path, "init", "-q")
    assert pull(kmsnap, emu, "snapshots").code == 0
    _git(tmp_path, "add", "snapshots")
    _git(tmp_path, "commit", "-qm", "first")
    _script(emu)
    assert pull(kmsnap, emu, "snapshots").code == 0
    _git(tmp_path, "add", "--all", "snapshots")
    _git(tmp_path, "commit", "-qm", "second")

    diff = kmsnap("diff", "HEAD~1:snapshots", "snapshots", "--format", "json")
    assert diff.code == 0, diff
    assert _changes(diff.out) == EXPECTED
    log = kmsnap("log", "--format", "json")
    assert log.code == 0, log
    assert "brand new" in log.out and '"recreated"' in log.out and '"visible"' in log.out
