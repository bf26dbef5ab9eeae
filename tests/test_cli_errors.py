"""The error funnel of the command line, in a real process: Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from test_pull_kit import SECRET, events_catalog

from kmsnap.cli import run
from kmsnap.emulator import Emulator

MakeEmulator = Callable[..., Emulator]


def tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


@pytest.mark.skipif(os.name != "posix", reason="SIGINT to a child process")
def test_ctrl_c_during_a_pull_exits_1_saying_so_and_keeps_the_snapshot(
    make_emulator: MakeEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KISSMETRICS_TOKEN", SECRET)
    monkeypatch.chdir(tmp_path)
    for name in ("KMSNAP_API", "KMSNAP_CONCURRENCY", "KMSNAP_SNAPSHOT_DIR"):
        monkeypatch.delenv(name, raising=False)
    emu = make_emulator(events_catalog(200), token=SECRET, max_page_size=10)
    out = tmp_path / "snapshots"
    assert run(["pull", "--quiet", "--api", emu.base_url, "--out", str(out)]) == 0
    capfd.readouterr()
    before = tree(out)
    listing = sorted(os.listdir(tmp_path))

    emu.catalog.rename("event", emu.catalog.ids("event")[0], "changed meanwhile")
    emu.latency_ms = 300  # requests are in flight when the interrupt comes
    asked = threading.Event()
    emu.inject("/core/events", times=None, action=asked.set)
    child = subprocess.Popen(
        [sys.executable, "-m", "kmsnap", "pull", "--api", emu.base_url, "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )
    try:
        assert asked.wait(30), "the pull never reached the events"
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 1, stderr
    assert stderr.strip().splitlines()[-1] == "kmsnap: error: interrupted"
    assert "Traceback" not in stderr and stdout == ""
    assert tree(out) == before
    assert sorted(os.listdir(tmp_path)) == listing  # no temporary directories left behind


def test_an_interrupt_inside_a_command_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("kmsnap.cli.pull.pull_live", interrupted)
    assert run(["pull", "--quiet"]) == 1
    assert capfd.readouterr().err == "kmsnap: error: interrupted\n"
