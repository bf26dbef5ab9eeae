"""Replace a directory tree atomically: build it beside the old one, swap, or roll back.

A failure or Ctrl-C at any point leaves the previous tree byte-identical and no temporary
directories behind (a SIGKILL or power loss can still leave a ``.NAME.kmsnap-*`` sibling).
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from kmsnap.errors import SnapshotError


def replace_tree(
    out_dir: Path, files: Mapping[str, bytes], *, marker: str,
    write: Callable[[Path, bytes], None],
) -> None:
    """Make ``out_dir`` hold exactly ``files`` (posix relpath -> bytes), all or nothing.

    An existing non-empty ``out_dir`` without the ``marker`` file is not ours: refused.
    """
    _check_target(out_dir, marker)
    parent = out_dir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex[:12]
        tmp = parent / f".{out_dir.name}.kmsnap-new-{token}"
        old = parent / f".{out_dir.name}.kmsnap-old-{token}"
        tmp.mkdir()
    except OSError as error:
        raise SnapshotError(f"cannot write: {error.strerror}", path=str(out_dir)) from None
    try:
        dirs = sorted({rel.rpartition("/")[0] for rel in files} - {""})
        for rel_dir in dirs:
            (tmp / rel_dir).mkdir(parents=True, exist_ok=True)
        for rel, data in files.items():
            write(tmp / rel, data)
        _carry_over(out_dir, tmp, files)
        _swap(tmp, out_dir, old)
    except OSError as error:
        raise SnapshotError(f"cannot write: {error.strerror}", path=str(out_dir)) from None
    finally:
        _clean_up(tmp, out_dir, old)


def _clean_up(tmp: Path, out_dir: Path, old: Path) -> None:
    with _sigint_deferred() as caught:
        shutil.rmtree(tmp, ignore_errors=True)
        if out_dir.is_dir():  # never the only copy: a failed roll-back leaves ``old`` alone
            shutil.rmtree(old, ignore_errors=True)
    if caught:
        raise KeyboardInterrupt


def _carry_over(out_dir: Path, tmp: Path, files: Mapping[str, bytes]) -> None:
    """Keep the user's own top-level files (README.md, .gitattributes): not snapshot data."""
    if not out_dir.is_dir():
        return
    for entry in os.scandir(out_dir):
        if entry.is_file(follow_symlinks=False) and entry.name not in files and (
            entry.name.startswith(".") or not entry.name.endswith(".yaml")
        ):
            shutil.copy2(entry.path, tmp / entry.name, follow_symlinks=False)


def _check_target(out_dir: Path, marker: str) -> None:
    if not out_dir.exists() and not out_dir.is_symlink():
        return
    if not out_dir.is_dir() or out_dir.is_symlink():
        raise SnapshotError("exists and is not a snapshot directory", path=str(out_dir))
    if (out_dir / marker).is_file():
        return
    if any(out_dir.iterdir()):
        raise SnapshotError(
            f"not a kmsnap snapshot (no {marker}); refusing to replace its files",
            path=str(out_dir),
        )


@contextmanager
def _sigint_deferred() -> Iterator[list[bool]]:
    """Hold Ctrl-C for the few syscalls of the swap; re-raised once the tree is consistent."""
    caught: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(True))
    except ValueError:  # not allowed here (embedded interpreter): go without
        yield caught
        return
    try:
        yield caught
    finally:
        # None: the previous handler was not installed from Python; the default is closest.
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


def _swap(tmp: Path, out_dir: Path, old: Path) -> None:
    existed = out_dir.exists()
    with _sigint_deferred() as caught:
        try:
            if existed:
                os.rename(out_dir, old)
            os.rename(tmp, out_dir)
            if caught:
                raise KeyboardInterrupt
        except BaseException:
            _roll_back(tmp, out_dir, old, existed)
            raise


def _roll_back(tmp: Path, out_dir: Path, old: Path, existed: bool) -> None:
    # Decided by what is on disk, not by flags: an interrupt may land between a rename and
    # the next statement.
    if out_dir.exists() and not tmp.exists() and (old.exists() or not existed):
        os.rename(out_dir, tmp)  # the new tree went in: take it out again
    if old.exists() and not out_dir.exists():
        os.rename(old, out_dir)
