"""Read snapshots straight out of git: ``GitSource`` is a snapshot at ``REV:PATH``, no checkout.

Everything runs git through ``kmsnap.git.runner`` (argument lists, never a shell), with
``--end-of-options`` before anything a user typed, and ``-z`` output, so a revision cannot
become an option and odd paths stay intact.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING

from kmsnap.errors import GitError, SnapshotError
from kmsnap.git.runner import git_output, start_git
from kmsnap.snapshot.parse import MAX_FILE_BYTES

if TYPE_CHECKING:
    from kmsnap.snapshot.store import SnapshotSource

__all__ = [
    "MAX_BLOB_BYTES",
    "GitBlobReader",
    "GitSource",
    "git_output",
    "open_source",
    "repo_root",
    "resolve_tree",
    "split_spec",
]

# A snapshot file bigger than this is refused before it is read into memory: a hostile branch
# could otherwise make us buffer a gigabyte blob first. The parser's one limit, so a blob read
# is never one the parser would refuse anyway.
MAX_BLOB_BYTES = MAX_FILE_BYTES

# Regular files only: a symlink's blob is its target text and a gitlink is another repository.
_FILE_MODES = frozenset({"100644", "100755"})
# Object ids written to cat-file before reading answers: 256 * 41 bytes stays well inside the
# smallest pipe buffer (macOS starts at 16 KiB).
_BATCH = 256


def repo_root(cwd: Path | None = None) -> Path:
    """The top directory of the git work tree containing ``cwd`` (default: the current one)."""
    where = Path.cwd() if cwd is None else cwd
    out = git_output(where, ["rev-parse", "--show-toplevel"], check=False)
    if out is None:
        raise GitError(f"not inside a git repository: {where}")
    return Path(out.decode("utf-8", "surrogateescape").strip())


def split_spec(spec: str) -> tuple[str, str] | None:
    """Split ``REV:PATH`` at the colon that ends REV, or None when there is none.

    A colon inside ``@{...}`` (``main@{2024-01-01 10:00}``) belongs to the revision.
    """
    depth = 0
    for index, char in enumerate(spec):
        if char == "{":
            depth += 1
        elif char == "}" and depth:
            depth -= 1
        elif char == ":" and depth == 0:
            return spec[:index], spec[index + 1 :]
    return None


def _normalize_path(repo: Path, path: str, shown: str) -> str:
    """PATH relative to the repository's top, as git spells it (posix, no leading ``./``)."""
    path = path.replace("\\", "/")
    if path.startswith(("./", "../")) or path in (".", ".."):
        # git's own rule for REV:./PATH: relative to the current directory, not the top.
        prefix = git_output(repo, ["rev-parse", "--show-prefix"]) or b""
        path = prefix.decode("utf-8", "surrogateescape").rstrip("\n") + path
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise GitError(f"{shown}: the path leaves the repository")
            parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


def _verify(repo: Path, name: str) -> str:
    """The object id ``name`` resolves to, or ``""`` when it resolves to nothing."""
    # --end-of-options: a REV such as "--output=x" is a revision to look up, never an option.
    out = git_output(
        repo, ["rev-parse", "--verify", "--quiet", "--end-of-options", name], check=False
    )
    return out.decode().strip() if out else ""


def resolve_tree(repo: Path, rev: str, path: str, *, label: str | None = None) -> str:
    """The id of the tree at ``REV:PATH``; GitError when the revision or the directory is missing.

    PATH is relative to the repository's top, or to ``repo`` when it starts with ``./``/``../``
    (git's own rule for ``REV:./PATH``).
    """
    shown = label if label is not None else f"{rev}:{path}"
    if not rev:
        raise GitError(f"{shown}: empty revision (write REV:PATH, e.g. HEAD~1:snapshots)")
    root = _verify(repo, f"{rev}^{{tree}}")
    if not root:
        raise GitError(f"{shown}: unknown revision {rev!r}")
    norm = _normalize_path(repo, path, shown)
    if not norm:
        return root
    # Look the path up under the resolved tree id, so the revision text is parsed only once.
    oid = _verify(repo, f"{root}:{norm}")
    if not oid:
        raise GitError(f"{shown}: no {norm!r} at revision {rev!r}")
    kind = git_output(repo, ["cat-file", "-t", oid], check=False)
    if kind is None or kind.strip() != b"tree":
        raise GitError(f"{shown}: {norm!r} is not a directory at revision {rev!r}")
    return oid


def list_tree(
    repo: Path, tree: str, *, refused: dict[str, str] | None = None
) -> dict[str, tuple[str, int]]:
    """Every file under ``tree``: posix relpath -> (blob id, size), one ``ls-tree``.

    A symlink or submodule (not hidden) is a SnapshotError naming it, as in a directory; with
    ``refused``, it goes there instead (relpath -> the problem) for the caller to report.
    """
    out = git_output(repo, ["ls-tree", "-r", "-z", "-l", "--full-tree", tree])
    assert out is not None
    files: dict[str, tuple[str, int]] = {}
    for entry in out.split(b"\0"):
        if not entry:
            continue
        meta, _, name = entry.partition(b"\t")
        parts = meta.split()
        relpath = name.decode("utf-8", "surrogateescape")
        if len(parts) != 4 or parts[1] != b"blob" or parts[0].decode() not in _FILE_MODES:
            if any(part.startswith(".") for part in relpath.split("/")):
                continue  # hidden, as in a directory: never read
            # A symlink or submodule would be refused in a checkout: refuse it here too, rather
            # than skip it and report its entities as removed.
            what = {b"120000": "a symbolic link", b"160000": "a submodule (gitlink)"}.get(
                parts[0] if parts else b"", "not a regular file")
            problem = f"{what}: only regular files may be in a snapshot"
            if refused is not None:
                refused[relpath] = problem
                continue
            shown = relpath if relpath.isprintable() else ascii(relpath)[1:-1]
            raise SnapshotError(problem, path=shown)
        files[relpath] = (parts[2].decode(), int(parts[3]) if parts[3].isdigit() else 0)
    return files


class GitBlobReader:
    """Reads objects by id through one long-running ``git cat-file --batch`` process.

    Start it once and share it: a process per file is what makes naive history tools slow.
    Use as a context manager (or call ``close``) so the process and its pipes are released.
    """

    def __init__(self, repo: Path, *, max_bytes: int = MAX_BLOB_BYTES):
        self.repo = repo
        self.max_bytes = max_bytes
        self.reads = 0  # objects read so far: lets callers (and tests) see the cache working
        self._proc: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            self._proc = start_git(self.repo, ["cat-file", "--batch"])
        return self._proc

    def read(self, oid: str, *, name: str | None = None) -> bytes:
        """The bytes of object ``oid``; ``name`` (a path) is used in error messages."""
        shown = name or oid
        return self.read_many({shown: oid})[shown]

    def _answer(self, oid: str, shown: str) -> bytes:
        proc = self._start()
        stdout: IO[bytes] | None = proc.stdout
        assert stdout is not None
        try:
            header = stdout.readline()
        except OSError as exc:
            self.close()
            raise GitError(f"git cat-file stopped while reading {shown}: {exc}") from None
        parts = header.split()
        if len(parts) != 3:
            if header.endswith(b" missing\n"):
                raise GitError(f"{shown}: object {oid} is missing from the repository")
            self.close()
            raise GitError(f"git cat-file gave an unexpected answer for {shown}")
        size = int(parts[2])
        if size > self.max_bytes:
            # Drain what git is sending so the pipe stays in step, but keep none of it.
            left = size + 1
            while left:
                chunk = stdout.read(min(left, 1 << 20))
                if not chunk:
                    self.close()
                    break
                left -= len(chunk)
            raise SnapshotError(
                f"file is {size} bytes, more than the {self.max_bytes} allowed", path=shown
            )
        data = stdout.read(size + 1)
        if len(data) != size + 1:
            self.close()
            raise GitError(f"git cat-file cut off {shown}")
        self.reads += 1
        return data[:size]

    def read_many(self, items: Mapping[str, str]) -> dict[str, bytes]:
        """``{name: oid}`` -> ``{name: bytes}``: requests are pipelined in batches, so a
        hundred small files cost one round trip instead of a hundred."""
        out: dict[str, bytes] = {}
        names = list(items)
        for start in range(0, len(names), _BATCH):
            batch = names[start : start + _BATCH]
            for name in batch:
                oid = items[name]
                if not oid or any(c not in "0123456789abcdef" for c in oid):
                    raise GitError(f"{name}: not an object id: {oid!r}")
            proc = self._start()
            stdin = proc.stdin
            assert stdin is not None
            try:
                # A batch of ids is far smaller than a pipe buffer, so writing it all before
                # reading cannot deadlock against git filling its output pipe.
                stdin.write(b"".join(items[name].encode() + b"\n" for name in batch))
                stdin.flush()
            except OSError as exc:
                self.close()
                raise GitError(f"git cat-file stopped: {exc}") from None
            for index, name in enumerate(batch):
                try:
                    out[name] = self._answer(items[name], name)
                except BaseException:
                    # Answers still queued would be read as the next request's: start afresh.
                    if index + 1 < len(batch):
                        self.close()
                    raise
        return out

    def close(self) -> None:
        """Stop the git process and close its pipes (safe to call twice)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> GitBlobReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # A forgotten reader must not leave a git process (or a ResourceWarning) behind.
        if self._proc is not None:
            self.close()


class GitSource:
    """A snapshot directory as it was at a git revision: ``HEAD~1:snapshots``.

    Implements ``kmsnap.snapshot.store.SnapshotSource``: ``list_files`` gives blob ids, so
    the store can skip files that are identical on both sides without reading them.
    """

    def __init__(
        self,
        repo: Path,
        rev: str,
        path: str,
        label: str | None = None,
        *,
        tree: str | None = None,
        reader: GitBlobReader | None = None,
    ):
        self.repo = repo
        self.rev = rev
        self.path = path
        self.label = label if label is not None else f"{rev}:{path}"
        # ``tree`` (already resolved) saves the rev-parse calls; history walks pass it.
        self.tree = tree if tree is not None else resolve_tree(repo, rev, path, label=self.label)
        self._reader = reader
        self._owns_reader = reader is None
        self._files: dict[str, tuple[str, int]] | None = None

    def _listing(self) -> dict[str, tuple[str, int]]:
        if self._files is None:
            self._files = list_tree(self.repo, self.tree)
        return self._files

    def list_files(self) -> dict[str, str | None]:
        """Every file under PATH at REV: posix relpath -> git blob id."""
        return {relpath: oid for relpath, (oid, _size) in self._listing().items()}

    def sizes(self) -> dict[str, int]:
        """Every file's size in bytes, known without reading it."""
        return {relpath: size for relpath, (_oid, size) in self._listing().items()}

    def read_files(self, relpaths: Sequence[str]) -> dict[str, bytes]:
        """The bytes of the given files, through one ``git cat-file --batch`` process."""
        listing = self._listing()
        wanted: dict[str, str] = {}
        for relpath in relpaths:
            entry = listing.get(relpath)
            if entry is None:
                raise GitError(f"{self.label}: no file {relpath!r}")
            wanted[relpath] = entry[0]
        if self._reader is None:
            self._reader = GitBlobReader(self.repo)
        try:
            named = self._reader.read_many({f"{self.label}/{p}": oid for p, oid in wanted.items()})
            return {p: named[f"{self.label}/{p}"] for p in wanted}
        finally:
            if self._owns_reader:
                # A one-off source: don't keep a git process alive between uses.
                self._reader.close()

    def __repr__(self) -> str:
        return f"GitSource({self.label!r}, tree={self.tree[:12]})"


def open_source(spec: str, *, cwd: Path | None = None) -> SnapshotSource:
    """A snapshot source for a command-line argument.

    An existing path is a snapshot directory; otherwise ``REV:PATH`` is read from the git
    repository containing ``cwd`` without checking anything out.
    """
    where = Path.cwd() if cwd is None else cwd
    candidate = Path(spec) if Path(spec).is_absolute() else where / spec
    if spec and candidate.exists():
        from kmsnap.snapshot.store import DirectorySource  # late: store imports nothing of git

        return DirectorySource(candidate, label=spec)
    parts = split_spec(spec)
    if parts is None:
        raise GitError(
            f"{spec!r}: no such snapshot directory, and not a REV:PATH (e.g. HEAD~1:snapshots)"
        )
    rev, path = parts
    # Where git should look: the repository containing cwd, kept relative so "./x" works.
    out = git_output(where, ["rev-parse", "--show-toplevel"], check=False)
    if out is None:
        raise GitError(f"{spec!r}: no such directory, and {where} is not inside a git repository")
    return GitSource(where, rev, path, label=spec)
