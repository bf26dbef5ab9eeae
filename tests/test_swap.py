"""The snapshot swap under SIGKILL: a process killed at any step of ``replace_tree`` leaves
the previous snapshot or the new one, whole; the next save (or ``recover_tree``) puts it
back in place and removes the leftovers, and touches nothing it cannot prove is its own.

Each trial is a real subprocess that kills itself with SIGKILL at one named step (the test
hook ``atomicdir.pause``), so the kill lands exactly there, with no timing involved.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kmsnap.errors import SnapshotError
from kmsnap.snapshot import atomic as atomicdir

MARKER = "kmsnap.yaml"
OLD = {MARKER: b"format: 1\nold\n", "a/one.yaml": b"old one\n", "a/b/two.yaml": b"old two\n"}
NEW = {MARKER: b"format: 1\nnew\n", "a/one.yaml": b"new one\n", "c/three.yaml": b"three\n"}

# Steps of each path, in order, and which tree is in place once the process dies there.
EXCHANGE_STEPS = {"marker": OLD, "written": OLD, "exchanged": NEW, "removing": NEW}
RENAME_STEPS = {"marker": OLD, "written": OLD, "moved-aside": OLD, "renamed": NEW,
                "removing": NEW}

_CHILD = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from kmsnap.snapshot import atomic as atomicdir

    target, step, exchange = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
    files = {MARKER: b"format: 1\\nnew\\n", "a/one.yaml": b"new one\\n",
             "c/three.yaml": b"three\\n"}
    if not exchange:
        atomicdir._exchange = lambda a, b: False

    def pause(name):
        if name == step:
            os.kill(os.getpid(), signal.SIGKILL)

    atomicdir.pause = pause
    atomicdir.replace_tree(target, files, marker=MARKER, write=lambda p, d: p.write_bytes(d))
    print("finished")
""").replace("MARKER", repr(MARKER))


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


def _siblings(root: Path) -> list[str]:
    return sorted(name for name in os.listdir(root.parent) if name != root.name)


def _kill_at(target: Path, step: str, *, exchange: bool) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _CHILD, str(target), step, "1" if exchange else "0"],
        capture_output=True, text=True, timeout=60,
    )


def _exchange_works(tmp_path: Path) -> bool:
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    try:
        return atomicdir._exchange(tmp_path / "x", tmp_path / "y")
    finally:
        (tmp_path / "x").rmdir()
        (tmp_path / "y").rmdir()


@pytest.mark.parametrize(
    ("exchange", "step"),
    [(True, s) for s in EXCHANGE_STEPS] + [(False, s) for s in RENAME_STEPS],
)
def test_a_kill_at_any_step_loses_nothing_and_the_next_save_cleans_up(
    tmp_path: Path, exchange: bool, step: str
) -> None:
    if exchange and not _exchange_works(tmp_path):
        pytest.skip("this filesystem cannot exchange two directories")
    target = tmp_path / "snap" / "snapshots"
    target.parent.mkdir()
    atomicdir.replace_tree(target, OLD, marker=MARKER, write=_write)
    proc = _kill_at(target, step, exchange=exchange)
    assert proc.returncode == -9, proc.stderr  # killed at the step, not finished
    expected = (EXCHANGE_STEPS if exchange else RENAME_STEPS)[step]
    if exchange or step != "moved-aside":
        # With the exchange, the target is whole at every instant.
        assert _tree(target) == expected
    else:
        assert not target.exists()  # cut between the two renames: the old tree aside
    assert _siblings(target), "a SIGKILL leaves the hidden sibling behind"
    atomicdir.recover_tree(target, marker=MARKER)
    assert _tree(target) == expected
    assert _siblings(target) == []
    atomicdir.replace_tree(target, NEW, marker=MARKER, write=_write)
    assert _tree(target) == NEW
    assert _siblings(target) == []


def test_a_kill_before_the_first_snapshot_leaves_nothing_to_mistake_for_one(
    tmp_path: Path,
) -> None:
    target = tmp_path / "snapshots"
    proc = _kill_at(target, "written", exchange=True)
    assert proc.returncode == -9
    assert not target.exists()
    atomicdir.replace_tree(target, NEW, marker=MARKER, write=_write)  # -new- is never restored
    assert _tree(target) == NEW
    assert _siblings(target) == []


def test_siblings_that_are_not_provably_ours_are_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "snapshots"
    atomicdir.replace_tree(target, OLD, marker=MARKER, write=_write)
    unmarked = tmp_path / ".snapshots.kmsnap-old-0123456789ab"  # our name, but no marker
    unmarked.mkdir()
    (unmarked / "notes.txt").write_text("someone's work")
    elsewhere = tmp_path / "data"
    elsewhere.mkdir()
    (elsewhere / MARKER).write_text("format: 1\n")
    (elsewhere / "keep.txt").write_text("keep")
    link = tmp_path / ".snapshots.kmsnap-del-ba9876543210"  # a symlink named like ours
    link.symlink_to(elsewhere, target_is_directory=True)
    other_name = tmp_path / ".snapshots.kmsnap-old-xyz"  # not 12 hex digits
    other_name.mkdir()
    (other_name / MARKER).write_text("x")
    empty = tmp_path / ".snapshots.kmsnap-new-aaaaaaaaaaaa"  # killed before the marker
    empty.mkdir()
    atomicdir.replace_tree(target, NEW, marker=MARKER, write=_write)
    assert _tree(target) == NEW
    assert (unmarked / "notes.txt").read_text() == "someone's work"
    assert link.is_symlink() and (elsewhere / "keep.txt").read_text() == "keep"
    assert (other_name / MARKER).exists()
    assert not empty.exists()  # only ever rmdir-ed: it could hold nothing


def test_a_sibling_locked_by_a_running_save_is_not_touched(tmp_path: Path) -> None:
    target = tmp_path / "snapshots"
    atomicdir.replace_tree(target, OLD, marker=MARKER, write=_write)
    busy = tmp_path / ".snapshots.kmsnap-new-0123456789ab"
    busy.mkdir()
    (busy / MARKER).write_text("format: 1\nbeing written\n")
    fd = os.open(busy, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # what a live pull holds on its directories
        atomicdir.replace_tree(target, NEW, marker=MARKER, write=_write)
        assert (busy / MARKER).exists()
    finally:
        os.close(fd)
    atomicdir.recover_tree(target, marker=MARKER)  # the pull died: now it is garbage
    assert not busy.exists()
    assert _tree(target) == NEW


def test_with_several_old_trees_aside_the_newest_comes_back(tmp_path: Path) -> None:
    target = tmp_path / "snapshots"
    for i, token in enumerate(["111111111111", "222222222222"]):
        old = tmp_path / f".snapshots.kmsnap-old-{token}"
        old.mkdir()
        (old / MARKER).write_text(f"format: 1\nversion {i}\n")
        os.utime(old / MARKER, ns=(10**18 + i, 10**18 + i))
    atomicdir.recover_tree(target, marker=MARKER)
    assert (target / MARKER).read_text() == "format: 1\nversion 1\n"
    assert _siblings(target) == []


def test_a_directory_that_is_not_a_snapshot_is_still_refused(tmp_path: Path) -> None:
    target = tmp_path / "home"
    target.mkdir()
    (target / "thesis.tex").write_text("years of work")
    with pytest.raises(SnapshotError):
        atomicdir.replace_tree(target, NEW, marker=MARKER, write=_write)
    assert (target / "thesis.tex").read_text() == "years of work"
    assert _siblings(target) == []


def test_every_file_is_fsynced_before_the_swap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "snap"
    atomicdir.replace_tree(target, OLD, marker=MARKER, write=_write)
    synced: list[str] = []
    real = atomicdir._fsync_file

    def fsync(path: Path) -> None:
        real(path)
        synced.append(path.name)

    def pause(step: str) -> None:
        if step == "marker":  # fsynced before any other file is written
            assert synced == [MARKER]
        if step == "written":  # every file's fsync has ended before anything is swapped
            assert sorted(synced) == sorted(rel.rpartition("/")[2] for rel in NEW)

    monkeypatch.setattr(atomicdir, "_fsync_file", fsync)
    monkeypatch.setattr(atomicdir, "pause", pause)
    atomicdir.replace_tree(target, NEW, marker=MARKER, write=_write)
    assert _tree(target) == NEW
    assert len(synced) == len(NEW)


def test_a_failed_fsync_on_a_background_thread_leaves_the_old_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "snap"
    atomicdir.replace_tree(target, OLD, marker=MARKER, write=_write)
    real = atomicdir._fsync_file

    def fsync(path: Path) -> None:
        if path.name == "three.yaml":
            raise OSError(5, "Input/output error")
        real(path)

    monkeypatch.setattr(atomicdir, "_fsync_file", fsync)
    with pytest.raises(SnapshotError, match="cannot write: Input/output error"):
        atomicdir.replace_tree(target, NEW, marker=MARKER, write=_write)
    assert _tree(target) == OLD
    assert _siblings(target) == []
