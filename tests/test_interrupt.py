"""Ctrl-C during a real ``kmsnap pull`` subprocess: it ends within seconds every time, says
so in one line, exits 1, and leaves the previous snapshot byte-identical."""

from __future__ import annotations

import hashlib
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_pull_kit import SECRET

from kmsnap.emulator import Emulator, generate_catalog
from kmsnap.snapshot.store import save_snapshot

KINDS = ("account", "product", "report", "event", "property", "metric")
PAGE = 20
EXIT_WITHIN = 3.0  # seconds from SIGINT to the process gone
REPO = Path(__file__).resolve().parent.parent


def tree_hash(path: Path) -> str:
    digest = hashlib.sha256()
    for item in sorted(path.rglob("*")):
        digest.update(str(item.relative_to(path)).encode() + b"\0")
        digest.update(item.read_bytes() if item.is_file() else b"<dir>")
    return digest.hexdigest()


class _Counter:
    """Sets ``reached`` once the emulator has been asked ``target`` requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        self.target = 1
        self.reached = threading.Event()

    def arm(self, target: int) -> None:
        with self._lock:
            self.count, self.target = 0, target
            self.reached.clear()

    def __call__(self) -> None:
        with self._lock:
            self.count += 1
            if self.count >= self.target:
                self.reached.set()


@pytest.mark.slow
def test_ctrl_c_ends_a_pull_within_seconds_at_every_point(tmp_path: Path) -> None:
    catalog = generate_catalog(size=5000, seed=1)
    counter = _Counter()
    with Emulator(catalog, token=SECRET, max_page_size=PAGE, latency_ms=15) as emu:
        # Two pages never answer (a worker sits in a blocking read on each, the state that
        # used to hang the exit), so the pull cannot finish before its interrupt; every other
        # request is counted, to send SIGINT at a different point of the crawl each time.
        emu.inject("/core/events", offset=(len(catalog.ids("event")) - 1) // PAGE * PAGE,
                   stall_seconds=120, times=None)
        emu.inject("/core/properties", offset=PAGE * 10, stall_seconds=120, times=None)
        emu.inject("/core*", action=counter, times=None)
        answered = 1 + sum(max(1, math.ceil(len(catalog.ids(k)) / PAGE)) for k in KINDS) - 2
        snapshot = tmp_path / "snapshots"
        save_snapshot(catalog.to_snapshot(emu.base_url), snapshot)
        before = tree_hash(snapshot)
        env = {**os.environ, "KISSMETRICS_TOKEN": SECRET,
               "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        # 1 (just the root) up to every answerable page, spread evenly, and a few
        # milliseconds more or less after the counted request.
        targets = [1 + (answered - 1) * i // 20 for i in range(21)]
        slow: list[str] = []
        for trial, target in enumerate(targets):
            counter.arm(target)
            proc = subprocess.Popen(
                [sys.executable, "-m", "kmsnap", "pull", "--quiet", "--api", emu.base_url,
                 "--out", str(snapshot)],
                cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
            try:
                assert counter.reached.wait(30), f"trial {trial}: the pull never got to {target}"
                time.sleep((trial % 4) * 0.01)  # the point of the interrupt is under test
                proc.send_signal(signal.SIGINT)
                sent = time.monotonic()
                out, err = proc.communicate(timeout=EXIT_WITHIN + 5)
                took = time.monotonic() - sent
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            text = err.decode("utf-8", "replace")
            assert proc.returncode == 1, f"trial {trial} (request {target}): {text}"
            assert text == "kmsnap: error: interrupted\n", f"trial {trial}: {text}"
            assert out == b""
            if took > EXIT_WITHIN:
                slow.append(f"trial {trial} (request {target}): {took:.1f} s")
            assert tree_hash(snapshot) == before, f"trial {trial} changed the snapshot"
        assert not slow, f"interrupted pulls that took over {EXIT_WITHIN} s to end: {slow}"
