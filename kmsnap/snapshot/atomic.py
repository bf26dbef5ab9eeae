"""Replace a directory tree atomically: build it beside the old one, swap, or roll back.

The new tree is written to a hidden sibling, ``.NAME.kmsnap-new-TOKEN``, every file and
directory fsynced, then swapped in:

- On Linux, ``renameat2(RENAME_EXCHANGE)`` exchanges the two directories in one step: at
  every instant ``NAME`` holds the whole old tree or the whole new one, even across a
  SIGKILL or a power loss. The old tree is then at the temporary path, and is removed.
- Elsewhere, or on a filesystem without the exchange (``ENOSYS``/``EINVAL``), two renames:
  ``NAME`` to ``.NAME.kmsnap-old-TOKEN``, then the new tree to ``NAME``. Between them
  ``NAME`` is missing and the old tree is whole at ``-old-``.
- The first write (no ``NAME`` yet) is one plain rename.

A failure or Ctrl-C (held during the swap, re-raised after it) leaves the previous tree
byte-identical and no sibling behind. A SIGKILL or power loss can leave siblings; the next
``replace_tree`` (or ``recover_tree``) deals with them first, touching only the ones it can
prove are leftovers of its own: in the same parent, named ``.NAME.kmsnap-{new,old,del}-``
and 12 hex digits, a real directory (never a symlink) holding the marker file (an empty one
is only ``rmdir``-ed, which cannot lose data), and not locked by a pull still running (each
pull holds a shared ``flock`` on the directories it works on; a killed one holds none).

- ``NAME`` missing and a provable ``-old-`` sibling: the two renames were cut between them.
  The old tree is renamed back (with several, the one whose marker is newest): the pull
  was interrupted, so the previous snapshot is what stays. A ``-new-`` one is never
  restored: it may be half-written.
- Every other provable sibling is garbage: renamed to ``-del-`` (one atomic step, so a
  ``-old-`` is never seen half-deleted), then deleted with the marker last, so that a kill
  during the removal leaves a sibling that is still provable.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import re
import shutil
import signal
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, suppress
from pathlib import Path

from kmsnap.errors import SnapshotError

if sys.platform != "win32":
    import fcntl

__all__ = ["recover_tree", "replace_tree", "write_file_atomic"]

# Test hook: called with the name of each step of a replacement ("marker", "written",
# "exchanged", "moved-aside", "renamed", "removing"), so that a test can stop a subprocess
# there and kill it. None in normal use.
pause: Callable[[str], None] | None = None

FSYNC_THREADS = 4  # files fsynced at once while the next ones are written

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_SYS_RENAMEAT2 = {"x86_64": 316, "amd64": 316, "aarch64": 276, "arm64": 276}
# What the kernel or the filesystem says when it cannot exchange: use the two renames.
_UNSUPPORTED = {errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP}


Emit = Callable[[str, bytes], None]  # one file: posix relpath, bytes
Files = Mapping[str, bytes] | Callable[[Emit], None]


def replace_tree(
    out_dir: Path, files: Files, *, marker: str, write: Callable[[Path, bytes], None],
) -> None:
    """Make ``out_dir`` hold exactly ``files`` (posix relpath -> bytes), all or nothing.

    ``files`` may also be a function that hands the files one at a time to the ``emit`` it
    is given, the ``marker`` first: each is written as it comes, so only one is in memory.
    An existing non-empty ``out_dir`` without the ``marker`` file is not ours: refused.
    """
    recover_tree(out_dir, marker=marker)
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
        with _held(tmp), _held(out_dir):
            written = _write_tree(tmp, files, marker, write)
            _carry_over(out_dir, tmp, written)
            _step("written")
            _swap(tmp, out_dir, old, marker)
    except OSError as error:
        raise SnapshotError(f"cannot write: {error.strerror}", path=str(out_dir)) from None
    finally:
        _clean_up(tmp, out_dir, old, marker)


def recover_tree(out_dir: Path, *, marker: str) -> None:
    """Undo what an interrupted ``replace_tree`` left beside ``out_dir`` (see the module doc).

    Cheap when there is nothing to do; safe to call before reading ``out_dir``.
    """
    try:
        with _sigint_deferred() as caught:
            _recover(Path(out_dir), marker)
    except OSError as error:
        raise SnapshotError(f"cannot recover: {error.strerror}", path=str(out_dir)) from None
    if caught:
        raise KeyboardInterrupt


def _step(name: str) -> None:
    if pause is not None:
        pause(name)


# --- writing --------------------------------------------------------------------------


def _write_tree(
    tmp: Path, files: Files, marker: str, write: Callable[[Path, bytes], None]
) -> set[str]:
    """Every file written and fsynced, the marker first: a half-written tree is provable.
    Returns the relpaths written.

    The marker is fsynced at once; the other files' fsyncs run on ``FSYNC_THREADS`` threads
    while the next files are rendered and written (an fsync waits on the disk, not the GIL;
    a journaling filesystem commits concurrent ones together); then the directories', and
    all of them end, the first failure raised, before anything is swapped."""
    made: set[str] = set()
    written: set[str] = set()
    with ThreadPoolExecutor(FSYNC_THREADS, thread_name_prefix="kmsnap-fsync") as pool:
        syncing: list[Future[None]] = []

        def emit(rel: str, data: bytes) -> None:
            if not written and rel != marker and not isinstance(files, Mapping):
                raise ValueError(f"the first file written must be {marker}, not {rel}")
            rel_dir = rel.rpartition("/")[0]
            if rel_dir and rel_dir not in made:
                (tmp / rel_dir).mkdir(parents=True, exist_ok=True)
                made.add(rel_dir)
            write(tmp / rel, data)
            if rel == marker:
                _fsync_file(tmp / rel)
            else:
                syncing.append(pool.submit(_fsync_file, tmp / rel))
            written.add(rel)
            if rel == marker:
                _step("marker")

        try:
            if isinstance(files, Mapping):
                for rel in sorted(files, key=lambda rel: rel != marker):
                    emit(rel, files[rel])
            else:
                files(emit)
            syncing += [pool.submit(_fsync_dir, tmp / rel_dir) for rel_dir in made]
        finally:
            wait(syncing)  # none left running on a tree about to be removed
        for future in syncing:
            future.result()
    return written


def write_file_atomic(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Replace the single file ``path`` with ``data``, whole or not at all, and durably.

    Written to a temporary file in the same directory (``.NAME.XXXX.tmp``), fsynced, renamed
    over ``path``, then the directory fsynced: a reader sees the old bytes or the new ones,
    even across a crash. ``mode`` sets the permissions (the temporary file starts at 0600).
    The directory must exist; an OSError is raised as it is, with the temporary file gone.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _carry_over(out_dir: Path, tmp: Path, files: Collection[str]) -> None:
    """Keep the user's own top-level files (README.md, .gitattributes): not snapshot data."""
    if out_dir.is_dir():
        for entry in os.scandir(out_dir):
            if entry.is_file(follow_symlinks=False) and entry.name not in files and (
                entry.name.startswith(".") or not entry.name.endswith(".yaml")
            ):
                shutil.copy2(entry.path, tmp / entry.name, follow_symlinks=False)
                _fsync_file(tmp / entry.name)
    _fsync_dir(tmp)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # a platform where a directory cannot be opened: nothing to sync
    try:
        os.fsync(fd)
    except OSError as error:
        if error.errno not in _UNSUPPORTED and error.errno != errno.EBADF:
            raise
    finally:
        os.close(fd)


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


# --- the swap -------------------------------------------------------------------------


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


def _swap(tmp: Path, out_dir: Path, old: Path, marker: str) -> None:
    existed = out_dir.exists()
    with _sigint_deferred() as caught:
        if existed and _exchange(tmp, out_dir):
            _fsync_dir(out_dir.parent)
            _step("exchanged")
            if caught:  # Ctrl-C: the previous snapshot stays; exchanging back is as atomic
                _exchange(tmp, out_dir)
                _fsync_dir(out_dir.parent)
                raise KeyboardInterrupt
            return
        try:
            if existed:
                os.rename(out_dir, old)
                _step("moved-aside")
            os.rename(tmp, out_dir)
            _fsync_dir(out_dir.parent)
            _step("renamed")
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
    _fsync_dir(out_dir.parent)


def _clean_up(tmp: Path, out_dir: Path, old: Path, marker: str) -> None:
    with _sigint_deferred() as caught:
        if out_dir.is_dir():  # never the only copy: a failed roll-back leaves ``old`` alone
            for path in (tmp, old):
                with suppress(OSError):
                    _remove(path, marker, ours=True)
        else:
            with suppress(OSError):
                _remove(tmp, marker, ours=True)
    if caught:
        raise KeyboardInterrupt


def _exchange(a: Path, b: Path) -> bool:
    """Exchange two paths atomically; False where the system or filesystem cannot."""
    call = _renameat2()
    if call is None:
        return False
    if call(os.fsencode(a), os.fsencode(b)) == 0:
        return True
    code = ctypes.get_errno()
    if code in _UNSUPPORTED:
        return False
    raise OSError(code, os.strerror(code), str(b))


_RENAMEAT2_CACHE: list[Callable[[bytes, bytes], int] | None] = []


def _renameat2() -> Callable[[bytes, bytes], int] | None:
    """``renameat2(..., RENAME_EXCHANGE)`` from libc (glibc 2.28+) or the raw syscall; None
    off Linux or on an architecture whose syscall number is not known here."""
    if not _RENAMEAT2_CACHE:
        _RENAMEAT2_CACHE.append(_load_renameat2() if sys.platform.startswith("linux") else None)
    return _RENAMEAT2_CACHE[0]


def _load_renameat2() -> Callable[[bytes, bytes], int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    function = getattr(libc, "renameat2", None)
    if function is not None:
        function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                             ctypes.c_uint]
        function.restype = ctypes.c_int
        return lambda a, b: int(function(_AT_FDCWD, a, _AT_FDCWD, b, _RENAME_EXCHANGE))
    number = _SYS_RENAMEAT2.get(platform.machine().lower())
    syscall = getattr(libc, "syscall", None)
    if number is None or syscall is None:
        return None
    syscall.restype = ctypes.c_long
    return lambda a, b: int(syscall(
        ctypes.c_long(number), ctypes.c_long(_AT_FDCWD), ctypes.c_char_p(a),
        ctypes.c_long(_AT_FDCWD), ctypes.c_char_p(b), ctypes.c_long(_RENAME_EXCHANGE),
    ))


# --- leftovers ------------------------------------------------------------------------


@contextmanager
def _held(path: Path) -> Iterator[None]:
    """A shared lock on the directory at ``path`` (if any) while a pull works on it."""
    fd = _open_dir(path)
    try:
        if fd is not None and sys.platform != "win32":
            with suppress(OSError):  # never wait: the lock only keeps others' hands off
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        yield
    finally:
        if fd is not None:
            os.close(fd)


def _open_dir(path: Path) -> int | None:
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        return os.open(path, flags)
    except OSError:
        return None


def _claim(path: Path) -> int | None:
    """An exclusive lock on a leftover, or None when a live pull still holds it."""
    fd = _open_dir(path)
    if fd is None or sys.platform == "win32":
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _leftovers(out_dir: Path) -> list[tuple[str, Path]]:
    """(kind, path) of each sibling named like ours: a real directory, never a symlink."""
    pattern = re.compile(rf"\.{re.escape(out_dir.name)}\.kmsnap-(new|old|del)-[0-9a-f]{{12}}")
    try:
        entries = list(os.scandir(out_dir.parent))
    except OSError:
        return []
    found = []
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match and entry.is_dir(follow_symlinks=False):
            found.append((match.group(1), Path(entry.path)))
    return sorted(found, key=lambda item: item[1].name)


def _recover(out_dir: Path, marker: str) -> None:
    leftovers = _leftovers(out_dir)
    if not leftovers:
        return
    claimed: list[tuple[str, Path, int]] = []
    try:
        for kind, path in leftovers:
            fd = _claim(path)
            if fd is not None:
                claimed.append((kind, path, fd))
        if not out_dir.exists() and not out_dir.is_symlink():
            olds = [(p, fd) for kind, p, fd in claimed if kind == "old" and _marked(p, marker)]
            if olds:
                newest = max(olds, key=lambda item: os.stat(item[0] / marker).st_mtime_ns)[0]
                os.rename(newest, out_dir)
                _fsync_dir(out_dir.parent)
                for _kind, path, fd in claimed:
                    if path == newest:
                        os.close(fd)  # its lock would block this very process's next save
                claimed = [item for item in claimed if item[1] != newest]
        # What is left is garbage: a -new- was never the snapshot (or, after an exchange,
        # holds the one it replaced), a -del- was being removed, an -old- is superseded.
        for _kind, path, _fd in claimed:
            _remove(path, marker)
    finally:
        for _kind, _path, fd in claimed:
            os.close(fd)


def _marked(path: Path, marker: str) -> bool:
    return os.path.isfile(path / marker) and not os.path.islink(path / marker)


def _remove(path: Path, marker: str, *, ours: bool = False) -> None:
    """Delete our sibling at ``path``: renamed to ``-del-`` first, the marker last.

    ``ours``: made by this very call of ``replace_tree``, so no marker is needed as proof.
    """
    if not os.path.isdir(path) or os.path.islink(path):
        return
    if not ours and not _marked(path, marker):
        with suppress(OSError):
            os.rmdir(path)  # empty (killed before the marker was written); else not provably ours
        return
    if "kmsnap-del-" not in path.name:
        gone = path.with_name(re.sub(r"kmsnap-(new|old)-", "kmsnap-del-", path.name))
        os.rename(path, gone)
        path = gone
    for dirpath, dirnames, filenames in os.walk(path, topdown=False):
        here = Path(dirpath)
        for name in filenames:
            if not (here == path and name == marker):
                os.unlink(here / name)
        for name in dirnames:
            if os.path.islink(here / name):
                os.unlink(here / name)  # a symlink to a directory: never followed
            else:
                os.rmdir(here / name)
    _step("removing")
    with suppress(FileNotFoundError):
        os.unlink(path / marker)
    os.rmdir(path)
    _fsync_dir(path.parent)
