"""``kmsnap pull`` end to end against the emulator: the directory, the output, the token."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from test_pull_kit import SECRET, events_catalog

from kmsnap.cli import run
from kmsnap.emulator import Emulator, generate_catalog
from kmsnap.snapshot.store import load_snapshot
from kmsnap.sources.pacing import SystemClock

MakeEmulator = Callable[..., Emulator]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No config file, no KMSNAP_* settings, the secret token in the environment."""
    monkeypatch.chdir(tmp_path)
    for name in ("KMSNAP_API", "KMSNAP_CONCURRENCY", "KMSNAP_PAGE_SIZE", "KMSNAP_MAX_RPS",
                 "KMSNAP_TIMEOUT", "KMSNAP_SNAPSHOT_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KISSMETRICS_TOKEN", SECRET)
    # Backoff waits are tested on a fake clock elsewhere; here they would only cost time.
    monkeypatch.setattr(SystemClock, "sleep", lambda self, seconds: None)


def tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


def test_pull_writes_the_snapshot_and_says_so_on_stderr_only(
    make_emulator: MakeEmulator, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    emu = make_emulator(generate_catalog(size=300, seed=2, extra=True), token=SECRET)
    out = tmp_path / "snap"
    assert run(["pull", "--api", emu.base_url, "--out", str(out)]) == 0
    captured = capfd.readouterr()
    assert captured.out == ""
    assert "pulled" in captured.err and "requests" in captured.err
    assert load_snapshot(out).entities == emu.catalog.to_snapshot(emu.base_url).entities


def test_an_unchanged_catalog_pulls_to_identical_bytes_even_when_usage_moved(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    emu = make_emulator(generate_catalog(size=300, seed=3), token=SECRET, max_page_size=30)
    first, second = tmp_path / "a", tmp_path / "b"
    assert run(["pull", "--quiet", "--api", emu.base_url, "--out", str(first)]) == 0
    emu.catalog.touch_usage(seed=1)
    assert run(["pull", "--quiet", "--api", emu.base_url, "--out", str(second),
                "--concurrency", "1"]) == 0
    assert tree(first) == tree(second)


def test_a_failed_pull_leaves_the_previous_snapshot_untouched(
    make_emulator: MakeEmulator, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    emu = make_emulator(events_catalog(60), token=SECRET, max_page_size=10)
    out = tmp_path / "snap"
    assert run(["pull", "--quiet", "--api", emu.base_url, "--out", str(out)]) == 0
    before = tree(out)
    emu.catalog.rename("event", emu.catalog.ids("event")[0], "changed")
    emu.inject("/core/events", offset=50, status=500, times=None)
    capfd.readouterr()
    assert run(["pull", "--quiet", "--api", emu.base_url, "--out", str(out),
                "--timeout", "2"]) == 1
    err = capfd.readouterr().err
    assert tree(out) == before
    assert err.count("\n") == 1 and "offset=50" in err and "500" in err


def test_plain_http_to_a_remote_host_is_refused(capfd: pytest.CaptureFixture[str]) -> None:
    assert run(["pull", "--api", "http://api.kissmetrics.com/core"]) == 1
    err = capfd.readouterr().err
    assert "http" in err and err.count("\n") == 1
    assert not Path("snapshots").exists()


# Tokens requests cannot put in a header: its errors would quote the whole header value.
BAD_TOKENS = {
    "newline-file": ("file", "SECRETPART1\nSECRETPART2", "line break"),
    "cr-env": ("env", "SECRETPART1\rSECRETPART2", "line break"),
    "tab-env": ("env", "SECRETPART1\tSECRETPART2", "whitespace"),
    "control-env": ("env", "SECRETPART1\x01SECRETPART2", "control character"),
    "non-latin1-env": ("env", "SECRETPART1\u20acSECRETPART2", "non-ASCII character"),
    "non-ascii-file": ("file", "SECRETPART1\u00e9SECRETPART2", "non-ASCII character"),
}


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "plain"])
@pytest.mark.parametrize("scenario", ["ok", "refused", "broken", "redirect", *BAD_TOKENS])
def test_the_token_never_shows_in_any_output(
    make_emulator: MakeEmulator, tmp_path: Path, capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, scenario: str, debug: bool,
) -> None:
    secret, secret_parts = SECRET, [SECRET]
    token_args: list[str] = []
    if scenario in BAD_TOKENS:
        source, secret, problem = BAD_TOKENS[scenario]
        secret_parts = ["SECRETPART1", "SECRETPART2"]
        if source == "file":
            monkeypatch.delenv("KISSMETRICS_TOKEN")
            token_file = tmp_path / "token"
            token_file.write_text(secret + "\n", encoding="utf-8")
            token_file.chmod(0o600)
            token_args = ["--token-file", str(token_file)]
        else:
            monkeypatch.setenv("KISSMETRICS_TOKEN", secret)
    emu = make_emulator(events_catalog(30), token=SECRET if scenario != "refused" else "other",
                        max_page_size=10)
    other = make_emulator(events_catalog(3), token=SECRET)
    if scenario == "broken":
        emu.inject("/core/events", offset=10, cut_body=True, times=None)
    if scenario == "redirect":
        emu.inject("/core/events", redirect_to=f"{other.base_url}/events", times=None)
    code = run([*(["--debug"] if debug else []), "pull", "--api", emu.base_url,
                "--out", str(tmp_path / "s"), *token_args])
    captured = capfd.readouterr()
    assert code == (0 if scenario == "ok" else 1)
    for part in secret_parts:
        assert part not in captured.out + captured.err
    if scenario != "ok":
        # --debug shows a traceback, token-free; without it, one line and none
        assert ("Traceback" in captured.err) == debug
        if not debug:
            assert captured.err.count("\n") == 1
    if scenario == "refused":
        assert "401" in captured.err and "KISSMETRICS_TOKEN" in captured.err
    if scenario in BAD_TOKENS:
        source, _, problem = BAD_TOKENS[scenario]
        assert problem in captured.err
        assert ("KISSMETRICS_TOKEN" if source == "env" else "token") in captured.err
        assert emu.requests == []  # refused before anything was sent
    assert other.requests == []


def test_token_file_and_its_permissions(
    make_emulator: MakeEmulator, tmp_path: Path, capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KISSMETRICS_TOKEN")
    emu = make_emulator(events_catalog(3), token=SECRET)
    token_file = tmp_path / "token"
    token_file.write_text(SECRET + "\n")
    token_file.chmod(0o644)
    assert run(["pull", "--quiet", "--api", emu.base_url, "--token-file", str(token_file),
                "--out", str(tmp_path / "s")]) == 0
    err = capfd.readouterr().err
    assert "chmod 600" in err and SECRET not in err
    assert {r.authorization for r in emu.requests} == {f"Bearer {SECRET}"}


def test_a_field_name_too_long_for_yaml_is_a_one_line_error(
    make_emulator: MakeEmulator, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    catalog = events_catalog(3)
    eid = catalog.ids("event")[1]
    catalog.set_field("event", eid, "K" * 2000, 1)
    emu = make_emulator(catalog, token=SECRET)
    out = tmp_path / "s"
    assert run(["pull", "--quiet", "--api", emu.base_url, "--out", str(out)]) == 1
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "internal error" not in err
    assert f"entity {eid!r}" in err and "longer than 1000 characters" in err
    assert not out.exists()


def test_quiet_prints_nothing_on_success(
    make_emulator: MakeEmulator, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    emu = make_emulator(events_catalog(3), token=SECRET)
    assert run(["pull", "-q", "--api", emu.base_url, "--out", str(tmp_path / "s")]) == 0
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_options_reach_the_crawl(
    make_emulator: MakeEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = make_emulator(events_catalog(30), token=SECRET, max_page_size=100, latency_ms=5)
    monkeypatch.setenv("KMSNAP_API", emu.base_url)
    assert run(["pull", "-q", "--page-size", "7", "--concurrency", "2", "--max-rps", "500",
                "--timeout", "5", "--with-stats", "--out", str(tmp_path / "s")]) == 0
    assert emu.count("/core/events") == 5 and emu.max_in_flight <= 2
    assert list((tmp_path / "s").rglob("events.stats.yaml"))


def test_bad_option_values_are_usage_errors(capfd: pytest.CaptureFixture[str]) -> None:
    assert run(["pull", "--concurrency", "0"]) == 1
    assert "concurrency" in capfd.readouterr().err


def test_help_is_written_for_users(capfd: pytest.CaptureFixture[str]) -> None:
    assert run(["pull", "--help"]) == 0
    out = capfd.readouterr().out
    for option in ("--out", "--api", "--token-file", "--concurrency", "--page-size",
                   "--max-rps", "--timeout", "--with-stats", "--quiet"):
        assert option in out
    assert "kmsnap pull --out snapshots" in out
