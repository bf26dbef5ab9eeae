"""What a person sees at the terminal: the progress board (in a real pseudo-terminal too),
plain progress lines in a job log, usage errors, help, the fail-early and path rules of the
snapshot directory, and why ``check`` exits 2."""

from __future__ import annotations

import io
import os
import select
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from kmsnap.cli import Environment, run
from kmsnap.cli.progress import LiveDisplay, LogDisplay
from kmsnap.emulator import Emulator, generate_catalog
from kmsnap.sources.core.crawler import ProgressEvent

MakeEmulator = Callable[..., Emulator]
TOKEN = "terminal-token"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Streams:
    def __init__(self) -> None:
        self.stdout, self.stderr = io.StringIO(), io.StringIO()

    def env(self, cwd: Path, *, tty: bool = False, environ: dict[str, str] | None = None
            ) -> Environment:
        variables = {"KISSMETRICS_TOKEN": TOKEN, "TERM": "xterm", "COLUMNS": "120"}
        variables.update(environ or {})
        return Environment(stdout=self.stdout, stderr=self.stderr, environ=variables, cwd=cwd,
                           stdout_isatty=tty, stderr_isatty=tty)

    @property
    def err(self) -> str:
        return self.stderr.getvalue()

    @property
    def out(self) -> str:
        return self.stdout.getvalue()


# --- the progress board and the plain lines ------------------------------------------------


def _console(buffer: io.StringIO, terminal: bool):  # -> rich Console
    from rich.console import Console

    return Console(file=buffer, force_terminal=terminal, width=120, _environ={"TERM": "xterm"})


def test_the_board_has_an_overall_line_the_wait_and_the_write_phase() -> None:
    buffer, clock = io.StringIO(), FakeClock()
    display = LiveDisplay(_console(buffer, True), clock=clock)
    display.update(ProgressEvent("event", 2, 4, 200, 400))
    display.update(ProgressEvent("property", 1, 1, 50, 50))
    clock.now += 2
    assert display.tally.overall() == ("250 of 450 entities, 3 of 5 pages, 125/s, "
                                       "about 2 s left")
    display.update(ProgressEvent.wait(12, "the API asked to slow down"))  # refreshes at once
    assert "waiting 12 s: the API asked to slow down" in buffer.getvalue()
    clock.now += 5
    assert display.tally.wait_line() == "waiting 7 s: the API asked to slow down"
    display.phase("writing the snapshot to snapshots (250 entities)")
    display.close()
    shown = buffer.getvalue()
    assert "all" in shown and "250 of 450 entities" in shown
    assert "events" in shown and "200/400 entities" in shown
    assert "writing the snapshot to snapshots (250 entities)" in shown


def test_plain_lines_every_interval_and_at_each_phase_once_the_pull_is_not_quick() -> None:
    buffer, clock = io.StringIO(), FakeClock()
    display = LogDisplay(_console(buffer, False), clock=clock, interval=10, ticking=False)
    display.update(ProgressEvent("event", 1, 3, 100, None))
    clock.now += 4
    display.update(ProgressEvent("event", 2, 3, 200, None))
    assert buffer.getvalue() == ""  # a quick pull: its summary line stays alone
    clock.now += 7
    display.update(ProgressEvent("event", 3, 3, 300, 300))
    clock.now += 3
    display.tick()  # only 3 s since the last line
    display.update(ProgressEvent.wait(30, "the API asked to slow down"))
    clock.now += 10
    display.tick()  # nothing arrived, still a line: the ticking thread calls this
    display.phase("writing the snapshot to snapshots (300 entities)")
    lines = buffer.getvalue().splitlines()
    assert lines == [
        "pulling: 300 of 300 entities, 3 of 3 pages, 27/s",
        "pulling: waiting 30 s: the API asked to slow down",
        "pulling: 300 of 300 entities, 3 of 3 pages, 12/s; waiting 20 s: the API asked to "
        "slow down",
        "writing the snapshot to snapshots (300 entities)",
    ]
    assert "\x1b[" not in buffer.getvalue()


def test_a_pull_in_a_job_log_shows_its_phases(
    make_emulator: MakeEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("kmsnap.cli.progress.PLAIN_INTERVAL", 0.0)  # every event is "late"
    emu = make_emulator(generate_catalog(size=60, seed=1), token=TOKEN)
    io_ = Streams()
    assert run(["pull", "--api", emu.base_url, "--snapshot-dir", "snap"],
               env=io_.env(tmp_path)) == 0
    lines = io_.err.splitlines()
    assert any(line.startswith("pulling: ") and "entities" in line for line in lines)
    assert "writing the snapshot to snap (" in io_.err
    assert lines[-1].startswith("pulled ") and lines[-1].endswith("wrote snap")


def test_a_429_pause_shows_on_the_board_and_the_write_phase_too(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    emu = make_emulator(generate_catalog(size=60, seed=1), token=TOKEN)
    emu.inject("/core/events", status=429, retry_after=1, times=1)
    io_ = Streams()
    assert run(["pull", "--api", emu.base_url, "--snapshot-dir", "snap"],
               env=io_.env(tmp_path, tty=True)) == 0
    assert "waiting 1 s: the API asked to slow down" in io_.err
    assert "writing the snapshot to snap (" in io_.err
    assert "all" in io_.err and "entities" in io_.err


def _read_pty(fd: int, proc: subprocess.Popen[bytes]) -> bytes:
    out = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child closed its side
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=30)
    return out


def test_the_board_in_a_real_pseudo_terminal(make_emulator: MakeEmulator, tmp_path: Path) -> None:
    emu = make_emulator(generate_catalog(size=60, seed=1), token=TOKEN)
    emu.inject("/core/properties", status=429, retry_after=1, times=1)
    leader, follower = os.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KMSNAP_", "KISSMETRICS_"))}
    env.update(KISSMETRICS_TOKEN=TOKEN, TERM="xterm", COLUMNS="120")
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kmsnap", "pull", "--api", emu.base_url, "--snapshot-dir",
         str(tmp_path / "snap")],
        stdin=follower, stdout=follower, stderr=follower, env=env, cwd=tmp_path)
    os.close(follower)
    try:
        shown = _read_pty(leader, proc).decode("utf-8", "replace")
    finally:
        os.close(leader)
    assert proc.returncode == 0, shown
    assert "\x1b[" in shown  # drawn as a live board, not lines
    assert "entities" in shown and "all" in shown
    assert "waiting 1 s: the API asked to slow down" in shown
    assert "pulled " in shown


# --- usage errors and help -------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "expected"), [
    (["pul"], "kmsnap: error: no such command 'pul' (did you mean 'pull'?); see kmsnap --help"),
    (["pull", "--ot", "x"],
     "kmsnap: error: pull: no such option --ot (did you mean --out?); see kmsnap pull --help"),
    (["pull", "--snapshot-dri", "x"], "kmsnap: error: pull: no such option --snapshot-dri "
     "(did you mean --snapshot-dir?); see kmsnap pull --help"),
    (["diff", "a"], "kmsnap: error: diff: missing argument 'NEW'; see kmsnap diff --help"),
])
def test_usage_errors_are_one_line_with_a_suggestion(
    argv: list[str], expected: str, tmp_path: Path
) -> None:
    io_ = Streams()
    assert run(argv, env=io_.env(tmp_path)) == 1
    assert io_.err == expected + "\n" and io_.out == ""


def _help(argv: list[str], tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> str:
    assert run(argv, env=Streams().env(tmp_path)) == 0
    return capfd.readouterr().out  # click writes help to the process's stdout


def test_dash_h_is_help_and_help_has_no_python_types_nor_cut_summaries(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    short = _help(["diff", "-h"], tmp_path, capfd)
    assert short == _help(["diff", "--help"], tmp_path, capfd) and "Arguments:" in short
    assert "OLD  Snapshot directory" in short and "<str>" not in short
    log = _help(["log", "-h"], tmp_path, capfd)
    assert "Usage: kmsnap log" in log and "<list" not in log and "<str>" not in log
    top = _help(["-h"], tmp_path, capfd)
    assert "..." not in top.split("Commands:")[1]
    assert "catalog snapshot to a directory." in " ".join(top.split())


def test_debug_after_the_command_is_accepted(tmp_path: Path) -> None:
    io_ = Streams()
    code = run(["diff", "nope-a", "nope-b", "--debug"], env=io_.env(tmp_path))
    assert code == 1 and "no such option" not in io_.err
    assert "Traceback" in io_.err  # --debug did its job


# --- the snapshot directory: fail early, one name, relative to kmsnap.yaml --------------------


def test_out_that_is_not_a_snapshot_directory_fails_before_the_crawl(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("mine\n")
    (tmp_path / "file").write_text("x")
    # Port 9 on loopback: nothing listens; a crawl would fail differently (and later).
    api = "http://127.0.0.1:9/core"
    for target, says in (("docs", "is not a kmsnap snapshot (no kmsnap.yaml) and not empty"),
                         ("file", "exists and is not a snapshot directory"),
                         ("file/snap", "cannot create file/snap: ")):
        io_ = Streams()
        assert run(["pull", "--api", api, "--out", target], env=io_.env(tmp_path)) == 1
        assert says in io_.err and io_.err.count("\n") == 1, io_.err
        assert "nothing listens" not in io_.err
    assert (tmp_path / "docs" / "notes.txt").read_text() == "mine\n"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_parent_fails_before_the_crawl(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        io_ = Streams()
        assert run(["pull", "--api", "http://127.0.0.1:9/core", "--snapshot-dir",
                    "locked/snap"], env=io_.env(tmp_path)) == 1
        assert "is not writable" in io_.err
    finally:
        locked.chmod(0o755)


def test_snapshot_dir_from_kmsnap_yaml_is_relative_to_its_directory(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    emu = make_emulator(generate_catalog(size=40, seed=2), token=TOKEN)
    (tmp_path / ".git").mkdir()  # the repository root: kmsnap.yaml is looked for up to here
    (tmp_path / "kmsnap.yaml").write_text("snapshot_dir: catalog\n")
    sub = tmp_path / ".github"
    sub.mkdir()
    io_ = Streams()
    assert run(["pull", "--api", emu.base_url], env=io_.env(sub)) == 0
    assert (tmp_path / "catalog" / "kmsnap.yaml").is_file()
    assert not (sub / "catalog").exists()
    assert io_.err.rstrip().endswith("wrote ../catalog")
    # check finds it from the subdirectory too, and the old flag names still work
    same = Streams()
    assert run(["check", "--api", emu.base_url, "--quiet"], env=same.env(sub)) == 0
    old = Streams()
    assert run(["check", "--api", emu.base_url, "--quiet", "--snapshot", "../catalog"],
               env=old.env(sub)) == 0
    both = Streams()
    assert run(["pull", "--out", "a", "--snapshot-dir", "b"], env=both.env(sub)) == 1
    assert "name two directories" in both.err


def test_check_says_why_it_exits_2(make_emulator: MakeEmulator, tmp_path: Path) -> None:
    emu = make_emulator(generate_catalog(size=40, seed=3), token=TOKEN)
    io_ = Streams()
    assert run(["pull", "--api", emu.base_url, "--quiet", "--snapshot-dir", "snap"],
               env=io_.env(tmp_path)) == 0
    event = sorted(emu.catalog.to_snapshot(emu.base_url).of("event"))[0]
    emu.catalog.set_field("event", event, "description", "changed for the test")
    drift = Streams()
    assert run(["check", "--api", emu.base_url, "--snapshot-dir", "snap", "--quiet"],
               env=drift.env(tmp_path)) == 2
    last = drift.err.splitlines()[-1]
    assert last.startswith("kmsnap: drift: 1 change at or above --fail-on any between the "
                           "live catalog and snap; exit 2"), drift.err
    calm = Streams()
    assert run(["check", "--api", emu.base_url, "--snapshot-dir", "snap", "--quiet",
                "--fail-on", "breaking"], env=calm.env(tmp_path)) == 0
    assert "drift" not in calm.err


# --- demo interrupted, then kmsnap log on the demo's repository --------------------------------


@pytest.fixture(scope="module")
def demo_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo repository, made by a demo that ran after one interrupted in the same --dir."""
    from kmsnap.demo.scenario import DemoOptions, DemoStep, run_demo

    where = tmp_path_factory.mktemp("demo") / "d"

    def hang_up(step: DemoStep) -> None:
        if step.key == "first-pull":
            raise BrokenPipeError  # kmsnap demo | head: the reader went away

    with pytest.raises(BrokenPipeError):
        run_demo(DemoOptions(directory=where, size=60, seed=5), hang_up)
    assert (where / ".git").is_dir()  # half a repository is left ...
    result = run_demo(DemoOptions(directory=where, size=60, seed=5))  # ... and not in the way
    assert result.repo == where.resolve()
    return where


def test_a_finished_demo_directory_is_still_refused(demo_repo: Path) -> None:
    from kmsnap.demo.scenario import DemoOptions, run_demo
    from kmsnap.errors import UsageError

    with pytest.raises(UsageError, match="not empty"):
        run_demo(DemoOptions(directory=demo_repo, size=60, seed=5))


def test_log_names_account_and_product_and_summarises_the_first_snapshot(
    demo_repo: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    io_ = Streams()
    assert run(["log", "--no-cache"], env=io_.env(demo_repo)) == 0
    text = io_.out
    assert "initial snapshot: " in text and " entities (" in text and "--all lists them" in text
    assert text.count(" added") < 20  # the first snapshot's additions are not listed
    changed = [line for line in text.splitlines() if line.startswith("    ~ event")]
    assert changed and all(' in account "' in line and ' › product "' in line
                           for line in changed), changed
    everything = Streams()
    assert run(["log", "--no-cache", "--all"], env=everything.env(demo_repo)) == 0
    assert "initial snapshot" not in everything.out and everything.out.count(" added") >= 60
    md = Streams()
    assert run(["log", "--no-cache", "--format", "markdown"], env=md.env(demo_repo)) == 0
    # The items read like diff's markdown: **word**, kind, quoted name, (id ...), in place
    items = [line for line in md.out.splitlines() if line.startswith("- **")]
    assert items and all(" (id " in line for line in items)
    assert any(line.startswith("- **renamed** event ") and " in account " in line
               for line in items), items
    assert "_initial snapshot\\: 60 entities" in md.out
