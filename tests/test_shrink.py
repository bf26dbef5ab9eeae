"""The shrink guard: a pull never replaces a snapshot with one that lost a whole kind or too
large a share of its entities, and ``check`` says so instead of listing the removals."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kmsnap.cli import run
from kmsnap.config import ConfigError, load_config, resolve_settings
from kmsnap.emulator import Emulator, generate_catalog
from kmsnap.errors import SnapshotError
from kmsnap.model import Snapshot
from kmsnap.snapshot.shrink import CHECK_LEAD, IdDigest, check_shrink, measure_shrink
from kmsnap.snapshot.store import load_ids, load_snapshot
from kmsnap.sources.pacing import SystemClock

TOKEN = "shrink-token"
MakeEmulator = Callable[..., Emulator]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No config file, no KMSNAP_*/KISSMETRICS_*/GITHUB_* or proxy variables, the token set."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.upper().startswith(("KMSNAP_", "KISSMETRICS_", "GITHUB_")) or name.lower() in (
            "http_proxy", "https_proxy", "all_proxy", "no_proxy"
        ):
            monkeypatch.delenv(name)
    monkeypatch.setenv("KISSMETRICS_TOKEN", TOKEN)
    monkeypatch.setattr(SystemClock, "sleep", lambda self, seconds: None)


def digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones too) by its sha256."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def pull(capfd: pytest.CaptureFixture[str], emu: Emulator, *args: str) -> tuple[int, str]:
    """The exit status and stderr without the warnings (kept unknown collections)."""
    capfd.readouterr()
    code = run(["pull", "--quiet", "--api", emu.base_url, "--out", "snap", *args])
    return code, without_warnings(capfd.readouterr().err)


def without_warnings(err: str) -> str:
    return "".join(line for line in err.splitlines(True) if not line.startswith("kmsnap: warning:"))


@pytest.fixture
def pulled(make_emulator: MakeEmulator, tmp_path: Path) -> tuple[Emulator, Path]:
    """An emulator of ~300 entities of every kind, pulled once into ``snap``."""
    emu = make_emulator(generate_catalog(size=300, seed=4, extra=True), token=TOKEN)
    assert run(["pull", "--quiet", "--api", emu.base_url, "--out", "snap"]) == 0
    return emu, tmp_path / "snap"


def remove_all(emu: Emulator, kind: str) -> int:
    ids = emu.catalog.ids(kind)
    for entity_id in ids:
        emu.catalog.remove(kind, entity_id)
    return len(ids)


def remove_every_other(emu: Emulator, kinds: tuple[str, ...]) -> int:
    removed = 0
    for kind in kinds:
        for entity_id in emu.catalog.ids(kind)[::2]:
            emu.catalog.remove(kind, entity_id)
            removed += 1
    return removed


def assert_one_line(err: str) -> str:
    assert err.count("\n") == 1, err
    assert err.startswith("kmsnap: error: ")
    return err


# ---- the pure check ----------------------------------------------------------------------


def snap(**ids: list[str]) -> Snapshot:
    s = Snapshot(api="https://api.example/core")
    for kind, values in ids.items():
        for i in values:
            s.add(kind, {"id": i, "name": f"n{i}"})
    return s


def test_a_vanished_kind_is_refused_whatever_its_share() -> None:
    old = snap(event=[str(i) for i in range(100)], metric=["m1", "m2"])
    new = snap(event=[str(i) for i in range(100)])
    problem = check_shrink(old, new, max_share=0.25, label="snapshots")
    assert problem == (
        "the pull would remove all 2 metrics from snapshots (2 of the 102 entities in all, 2%)"
    )
    one = check_shrink(snap(event=["e"], report=["r"]), snap(event=["e"]), max_share=1,
                       label="s")
    assert one is not None and one.startswith("the pull would remove the only report from s")


def test_the_share_counts_removed_ids_not_the_net_count() -> None:
    old = snap(event=[str(i) for i in range(100)])
    # As many entities as before, but 30 of the old ids are gone (re-created, or another catalog).
    new = snap(event=[str(i) for i in range(30, 130)])
    assert measure_shrink(old, new).removed == 30
    problem = check_shrink(old, new, max_share=0.25, label="snapshots")
    assert problem == (
        "the pull would remove 30 of the 100 entities from snapshots "
        "(30%, more than max_shrink 0.25)"
    )
    assert check_shrink(old, new, max_share=0.3, label="snapshots") is None


def test_a_share_just_over_the_limit_does_not_read_as_the_limit() -> None:
    old = snap(event=[str(i) for i in range(1000)])
    new = snap(event=[str(i) for i in range(253, 1000)])
    problem = check_shrink(old, new, max_share=0.25, label="s")
    assert problem is not None and "(25.3%, more than max_shrink 0.25)" in problem


def test_no_old_entities_growth_and_unselected_kinds_are_not_a_shrink() -> None:
    assert check_shrink(snap(), snap(), max_share=0, label="s") is None
    assert check_shrink(snap(event=["a"]), snap(event=["a", "b"]), max_share=0, label="s") is None
    old = snap(event=["a", "b"], metric=["m"])
    assert check_shrink(old, snap(event=["a", "b"]), max_share=0.5, label="s",
                        kinds={"event"}) is None


def test_unknown_kinds_and_the_check_wording() -> None:
    old = snap(event=["a"], segments=["s1", "s2"], dashboards=["d1", "d2"])
    problem = check_shrink(old, snap(event=["a"]), max_share=0.9, label="snapshots",
                           lead=CHECK_LEAD)
    assert problem == (
        "compared with snapshots, the live catalog lacks all 2 dashboards and all 2 segments "
        "(4 of the 5 entities in all, 80%)"
    )


def test_digests_count_what_sets_count() -> None:
    old = {"event": [f"e{i}" for i in range(1000)], "metric": ["m1", "m2"], "report": ["r"]}
    new = {"event": [f"e{i}" for i in range(300, 1200)] * 2, "report": ["r"]}  # twice: once
    digests = {kind: IdDigest(ids) for kind, ids in old.items()}
    assert measure_shrink(digests, new) == measure_shrink(old, new)
    assert measure_shrink(digests, new).removed == 302
    assert measure_shrink(digests, new).vanished == {"metric": 2}
    assert "e5" in digests["event"] and "e1000" not in digests["event"]
    assert len(IdDigest(["a", "a", "b"])) == 2
    with pytest.raises(TypeError):
        list(digests["event"])


def test_load_ids_reads_and_refuses_what_a_full_load_does(
    pulled: tuple[Emulator, Path]
) -> None:
    _, out = pulled
    # A file a person rewrote by hand (not canonical, still YAML) is read as a full load reads it.
    metrics = next(out.rglob("metrics.yaml"))
    metrics.write_text("# edited by hand\n" + metrics.read_text(encoding="utf-8"),
                       encoding="utf-8")
    full = load_snapshot(out)
    ids = load_ids(out)
    assert {k: sorted(v) for k, v in ids.items()} == {
        k: sorted(v) for k, v in full.entities.items() if v
    }
    assert sum(map(len, ids.values())) == full.size()
    # The same id in two files: the same error as a full load, naming both files.
    events = sorted(out.rglob("events.yaml"))
    first = events[0].read_text(encoding="utf-8")
    events[1].write_text(events[1].read_text(encoding="utf-8") + first, encoding="utf-8")
    with pytest.raises(SnapshotError) as by_ids:
        load_ids(out)
    with pytest.raises(SnapshotError) as by_load:
        load_snapshot(out)
    assert str(by_ids.value) == str(by_load.value)
    assert "appears twice" in str(by_ids.value) and str(events[0].relative_to(out)) in str(
        by_ids.value
    )


def test_a_previous_snapshot_with_an_id_twice_is_not_replaced(
    pulled: tuple[Emulator, Path], capfd: pytest.CaptureFixture[str]
) -> None:
    emu, out = pulled
    events = sorted(out.rglob("events.yaml"))
    events[1].write_text(events[1].read_text(encoding="utf-8")
                         + events[0].read_text(encoding="utf-8"), encoding="utf-8")
    before = digest(out)
    code, err = pull(capfd, emu)
    assert code == 1
    line = assert_one_line(err)
    assert "appears twice" in line and "--allow-shrink" in line
    assert digest(out) == before


# ---- pull against the emulator -----------------------------------------------------------


def test_a_pull_that_loses_every_event_keeps_the_snapshot_and_says_how_to_accept_it(
    pulled: tuple[Emulator, Path], capfd: pytest.CaptureFixture[str]
) -> None:
    emu, out = pulled
    before = digest(out)
    events = remove_all(emu, "event")
    assert events > 1
    code, err = pull(capfd, emu)
    assert code == 1
    line = assert_one_line(err)
    assert f"the pull would remove all {events} events from snap (" in line
    assert "not replacing it" in line
    assert "--allow-shrink" in line and "allow_shrink: true in kmsnap.yaml" in line
    assert TOKEN not in line
    assert digest(out) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["snap"]  # nothing left beside it

    code, err = pull(capfd, emu, "--allow-shrink")
    assert (code, err) == (0, "")
    assert load_snapshot(out).of("event") == {}


def test_a_pull_that_loses_half_the_entities_is_refused_until_the_config_allows_it(
    pulled: tuple[Emulator, Path], capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    emu, out = pulled
    before = digest(out)
    total = load_snapshot(out).size()
    removed = remove_every_other(emu, ("report", "event", "property", "metric", "segments"))
    assert removed / total > 0.4
    code, err = pull(capfd, emu)
    assert code == 1
    line = assert_one_line(err)
    assert f"the pull would remove {removed:,} of the {total:,} entities from snap (" in line
    assert "more than max_shrink 0.25" in line
    assert digest(out) == before

    (tmp_path / "kmsnap.yaml").write_text("max_shrink: 0.6\n", encoding="utf-8")
    code, err = pull(capfd, emu)
    assert (code, err) == (0, "")
    assert digest(out) != before


def test_the_config_key_and_the_environment_accept_a_shrink(
    pulled: tuple[Emulator, Path], capfd: pytest.CaptureFixture[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emu, out = pulled
    remove_all(emu, "metric")
    monkeypatch.setenv("KMSNAP_ALLOW_SHRINK", "1")
    assert pull(capfd, emu)[0] == 0
    assert load_snapshot(out).of("metric") == {}
    monkeypatch.delenv("KMSNAP_ALLOW_SHRINK")
    remove_all(emu, "report")
    assert pull(capfd, emu)[0] == 1
    (tmp_path / "kmsnap.yaml").write_text("allow_shrink: true\n", encoding="utf-8")
    assert pull(capfd, emu) == (0, "")
    assert load_snapshot(out).of("report") == {}


def test_a_small_removal_goes_through(
    pulled: tuple[Emulator, Path], capfd: pytest.CaptureFixture[str]
) -> None:
    emu, out = pulled
    gone = emu.catalog.ids("event")[0]
    emu.catalog.remove("event", gone)
    assert pull(capfd, emu) == (0, "")
    assert gone not in load_snapshot(out).of("event")


def test_the_first_pull_is_not_guarded_even_with_an_empty_kind(
    make_emulator: MakeEmulator, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    catalog = generate_catalog(size=100, seed=2)
    emu = make_emulator(catalog, token=TOKEN)
    remove_all(emu, "metric")
    (tmp_path / "snap").mkdir()  # an empty directory is a first pull too
    assert pull(capfd, emu) == (0, "")
    assert load_snapshot(tmp_path / "snap").of("metric") == {}
    # Nothing to lose from a kind that was already empty.
    emu.catalog.remove("event", emu.catalog.ids("event")[0])
    assert pull(capfd, emu) == (0, "")


def test_a_narrower_selection_is_not_a_shrink(
    pulled: tuple[Emulator, Path], capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    emu, out = pulled
    accounts = load_snapshot(out).of("account")
    assert len(accounts) > 1
    keep = sorted(accounts)[0]
    (tmp_path / "kmsnap.yaml").write_text(f"include:\n  accounts: ['{keep}']\n",
                                          encoding="utf-8")
    assert pull(capfd, emu) == (0, "")
    assert set(load_snapshot(out).of("account")) == {keep}


def test_a_previous_snapshot_that_cannot_be_read_is_not_replaced_silently(
    pulled: tuple[Emulator, Path], capfd: pytest.CaptureFixture[str]
) -> None:
    emu, out = pulled
    broken = next(out.rglob("events.yaml"))
    broken.write_text("<<<<<<< HEAD\n- id: x\n  name: [\n", encoding="utf-8")
    before = digest(out)
    code, err = pull(capfd, emu)
    assert code == 1
    line = assert_one_line(err)
    assert str(broken.relative_to(out.parent)) in line and "--allow-shrink" in line
    assert digest(out) == before
    assert pull(capfd, emu, "--allow-shrink") == (0, "")
    assert load_snapshot(out).size() == emu.catalog.size()


class _EmptyRoot(http.server.BaseHTTPRequestHandler):
    """A server in maintenance: HTTP 200 and a JSON object without a single link."""

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        body = json.dumps({"data": {"links": []}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def empty_root() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EmptyRoot)  # bound: ready
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/core"
    server.shutdown()
    server.server_close()
    thread.join()


def test_a_root_without_links_never_replaces_the_catalog(
    pulled: tuple[Emulator, Path], empty_root: str, capfd: pytest.CaptureFixture[str]
) -> None:
    _, out = pulled
    before = digest(out)
    capfd.readouterr()
    code = run(["pull", "--quiet", "--api", empty_root, "--out", "snap"])
    err = capfd.readouterr().err
    assert code == 1
    assert_one_line(err.splitlines()[-1] + "\n")
    assert digest(out) == before


# ---- check ---------------------------------------------------------------------------------


def test_check_reports_a_shrink_as_its_own_error_not_as_removals(
    pulled: tuple[Emulator, Path], capfd: pytest.CaptureFixture[str]
) -> None:
    emu, out = pulled
    before = digest(out)
    events = remove_all(emu, "event")
    capfd.readouterr()
    code = run(["check", "--quiet", "--api", emu.base_url, "--snapshot", "snap"])
    captured = capfd.readouterr()
    assert code == 1
    assert captured.out == ""
    line = assert_one_line(without_warnings(captured.err))
    assert f"compared with snap, the live catalog lacks all {events} events (" in line
    assert "--allow-shrink to see them as removals" in line
    # --kind on another kind compares only that kind: no shrink there.
    assert run(["check", "--quiet", "--api", emu.base_url, "--snapshot", "snap",
                "--kind", "metric"]) == 0
    capfd.readouterr()
    code = run(["check", "--quiet", "--api", emu.base_url, "--snapshot", "snap",
                "--allow-shrink", "--format", "json"])
    report = json.loads(capfd.readouterr().out)
    assert code == 2
    removed = [c for c in report["changes"] if c["kind"] == "event" and c["change"] == "removed"]
    assert len(removed) == events
    assert digest(out) == before


# ---- the settings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("allow_shrink: 'yes'\n", "kmsnap.yaml:2: 'allow_shrink' must be true or false, got 'yes'"),
        ("max_shrink: 2\n", "kmsnap.yaml:2: 'max_shrink' must be a share of the entities from "
                            "0 to 1 (0.25 is 25%), got 2"),
        ("max_shrink: true\n", "kmsnap.yaml:2: 'max_shrink' must be a share"),
        ("max_shrink: 25%\n", "kmsnap.yaml:2: 'max_shrink' must be a share"),
    ],
)
def test_bad_values_name_the_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "kmsnap.yaml").write_text("fail_on: any\n" + text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value).startswith(message)


def test_defaults_file_and_environment(tmp_path: Path) -> None:
    settings = resolve_settings(load_config(tmp_path), environ={})
    assert (settings.allow_shrink, settings.max_shrink) == (False, 0.25)
    (tmp_path / "kmsnap.yaml").write_text("allow_shrink: true\nmax_shrink: 0\n", encoding="utf-8")
    config = load_config(tmp_path)
    settings = resolve_settings(config, environ={})
    assert (settings.allow_shrink, settings.max_shrink) == (True, 0.0)
    assert settings.sources["max_shrink"] == "kmsnap.yaml:2"
    env = {"KMSNAP_ALLOW_SHRINK": "no", "KMSNAP_MAX_SHRINK": "0.5"}
    settings = resolve_settings(config, environ=env)
    assert (settings.allow_shrink, settings.max_shrink) == (False, 0.5)
    with pytest.raises(ConfigError, match="environment variable KMSNAP_ALLOW_SHRINK: must be "
                                          "true or false, got 'sure'"):
        resolve_settings(config, environ={"KMSNAP_ALLOW_SHRINK": "sure"})
    with pytest.raises(ConfigError, match="KMSNAP_MAX_SHRINK: must be a share"):
        resolve_settings(config, environ={"KMSNAP_MAX_SHRINK": "nan"})
