"""The catalog's history from git: each commit that touched the snapshot, diffed with its parent.

Walks the first-parent chain (``git log --first-parent -- PATH``), reads blobs through one
``git cat-file --batch`` process, loads only the files whose blob ids changed, and caches each
commit's change list under ``.git/kmsnap-cache/``. Pure data out; ``kmsnap.cli.log`` prints.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kmsnap.config import Config, selection_key
from kmsnap.diff.engine import Change
from kmsnap.errors import GitError, SnapshotError, UsageError
from kmsnap.git.runner import run_git
from kmsnap.git.source import GitBlobReader, git_output, list_tree, repo_root
from kmsnap.history.cache import ChangeCache, cache_key

__all__ = [
    "DEFAULT_PATH",
    "Commit",
    "History",
    "LogEntry",
    "LogQuery",
    "load_history",
]

DEFAULT_PATH = "snapshots"
_SEP = "\x1f"


@dataclass(frozen=True)
class Commit:
    """One commit of the first-parent chain that touched the snapshot directory."""

    commit: str  # full hash
    parent: str | None  # first parent; None for a root commit
    date: str  # author date, ISO 8601
    author: str
    subject: str

    def to_json(self) -> dict[str, Any]:
        """``{"commit", "date", "author", "subject"}``, as ``kmsnap log --format json`` shows."""
        return {
            "commit": self.commit,
            "date": self.date,
            "author": self.author,
            "subject": self.subject,
        }


@dataclass
class LogEntry:
    """A commit and the catalog changes it made (sorted like a ``ChangeSet``)."""

    commit: Commit
    changes: list[Change]
    warning: str | None = None  # set when a snapshot file in this commit could not be read

    def to_json(self) -> dict[str, Any]:
        """``{"commit", "date", "author", "subject", "changes"}``: the ``--format json`` item."""
        return {**self.commit.to_json(), "changes": [c.to_json() for c in self.changes]}


@dataclass(frozen=True)
class LogQuery:
    """What to walk: PATH (relative to ``cwd``), revisions, dates, and result-changing options."""

    path: str = DEFAULT_PATH
    revisions: Sequence[str] = ()  # "A..B", "main", ...; default HEAD
    since: str | None = None
    until: str | None = None
    with_stats: bool = False
    ignore_fields: Mapping[str, Collection[str]] | None = None
    strict: bool = False
    use_cache: bool = True
    # kmsnap.yaml's include/exclude, so the log speaks of the accounts and products that
    # pull keeps (None: everything).
    select: Config | None = None


@dataclass
class History:
    """The log, newest first, plus counters that show what the run cost."""

    entries: list[LogEntry]
    path: str  # the snapshot directory relative to the repository's top
    warnings: list[str] = field(default_factory=list)
    cache_hits: int = 0
    cache_misses: int = 0
    blobs_read: int = 0
    seconds: float = 0.0


# --- walking git ------------------------------------------------------------------------


def _repo_path(root: Path, cwd: Path, path: str) -> str:
    """PATH (as typed, relative to ``cwd``) relative to the repository's top, posix."""
    if "\n" in path or "\0" in path:
        raise UsageError(f"{path!r}: a snapshot directory name cannot hold a newline")
    candidate = Path(path) if Path(path).is_absolute() else cwd / path
    try:
        rel = Path(_clean(candidate)).relative_to(_clean(root.resolve()))
    except ValueError:
        raise UsageError(f"{path}: not inside the git repository at {root}") from None
    text = rel.as_posix()
    return "" if text == "." else text


def _clean(path: Path) -> str:
    # Resolve symlinks of what exists, keep the rest (the directory may exist only in history).
    return os.path.normpath(str(path.resolve()))


def list_commits(repo: Path, path: str, query: LogQuery) -> list[Commit]:
    """Commits of the first-parent chain that touched ``path``, newest first."""
    args = ["log", "--first-parent", "--full-history", "-z", "--no-color", "--no-show-signature"]
    args.append(f"--format=%H{_SEP}%P{_SEP}%aI{_SEP}%an{_SEP}%s")
    if query.since:
        args.append(f"--since={query.since}")
    if query.until:
        args.append(f"--until={query.until}")
    # Revisions come from the user: after --end-of-options git reads them as revisions only.
    args += ["--end-of-options", *(query.revisions or ["HEAD"]), "--", path or "."]
    out = git_output(repo, args, check=False)
    if out is None:
        revs = " ".join(query.revisions) or "HEAD"
        detail = _git_error(repo, args)
        raise GitError(f"cannot list the history of {path or '.'} at {revs}: {detail}")
    commits: list[Commit] = []
    for record in out.split(b"\0"):
        if not record.strip():
            continue
        parts = record.decode("utf-8", "replace").strip("\n").split(_SEP, 4)
        if len(parts) != 5:
            continue
        sha, parents, date, author, subject = parts
        first = parents.split()[0] if parents.split() else None
        commits.append(Commit(sha, first, date, author, subject))
    return commits


def _git_error(repo: Path, args: list[str]) -> str:
    proc = run_git(repo, args)
    lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
    return lines[0] if lines else f"git exited with {proc.returncode}"


def snapshot_trees(repo: Path, revs: Iterable[str], path: str) -> dict[str, str | None]:
    """The tree id of ``path`` at each commit (None where it did not exist), one process."""
    wanted = list(dict.fromkeys(revs))
    if not wanted:
        return {}
    suffix = f":{path}" if path else "^{tree}"
    data = "".join(f"{rev}{suffix}\n" for rev in wanted).encode()
    # --batch-check answers one line per query; the input goes in at once, answers are short.
    proc = run_git(repo, ["cat-file", "--batch-check"], input=data)
    if proc.returncode != 0:
        raise GitError(f"git cat-file --batch-check failed: {proc.stderr.decode().strip()}")
    lines = proc.stdout.decode("utf-8", "replace").splitlines()
    if len(lines) != len(wanted):
        raise GitError("git cat-file --batch-check gave an unexpected answer")
    out: dict[str, str | None] = {}
    for rev, line in zip(wanted, lines, strict=True):
        parts = line.split()
        out[rev] = parts[0] if len(parts) == 3 and parts[1] == "tree" else None
    return out


# --- loading one step -------------------------------------------------------------------


# Prefix of a listing entry that is no blob (a symlink, a submodule): never an object id.
_REFUSED = "!"


class _ListingSource:
    """A snapshot as a listing of blob ids (a tree, possibly patched), read by a shared reader."""

    def __init__(self, label: str, files: Mapping[str, str], reader: GitBlobReader):
        self.label = label
        self._files = dict(files)
        self._reader = reader

    def list_files(self) -> dict[str, str | None]:
        for relpath, oid in self._files.items():
            if oid.startswith(_REFUSED):
                raise SnapshotError(oid[len(_REFUSED):], path=relpath)
        return dict(self._files)

    def read_files(self, relpaths: Sequence[str]) -> dict[str, bytes]:
        named = self._reader.read_many({f"{self.label}/{p}": self._files[p] for p in relpaths})
        return {p: named[f"{self.label}/{p}"] for p in relpaths}


class _Walker:
    """Computes, caches and patches the change list of each step of the chain."""

    def __init__(self, repo: Path, path: str, query: LogQuery, cache: ChangeCache):
        self.repo = repo
        self.path = path
        self.query = query
        self.cache = cache
        self.reader = GitBlobReader(repo)
        self._listings: dict[str, dict[str, str]] = {}

    def listing(self, tree: str | None) -> dict[str, str]:
        if tree is None:
            return {}
        found = self._listings.get(tree)
        if found is None:
            if len(self._listings) > 8:  # consecutive commits share trees; keep only a few
                self._listings.pop(next(iter(self._listings)))
            refused: dict[str, str] = {}
            found = {p: oid for p, (oid, _size) in
                     list_tree(self.repo, tree, refused=refused).items()}
            # A symlink or submodule stays in the listing as a marker its source refuses, so
            # the commit that added it gets a warning and the walk goes on.
            found.update({p: _REFUSED + problem for p, problem in refused.items()})
            self._listings[tree] = found
        return found

    def compare(
        self, old: Mapping[str, str], new: Mapping[str, str], labels: tuple[str, str]
    ) -> list[Change]:
        """Changes between two listings; SnapshotError names the file that failed."""
        from kmsnap.compare import Rules, compare_sources

        # A side where the directory did not exist (an empty listing) is an empty catalog,
        # not an error. The selection looks only at accounts and products, which the pair
        # load keeps whole.
        rules = Rules(select=self.query.select, ignore_fields=self.query.ignore_fields or {})
        cs = compare_sources(
            _ListingSource(labels[0], old, self.reader) if old else None,
            _ListingSource(labels[1], new, self.reader) if new else None,
            rules=rules,
            with_stats=self.query.with_stats,
            old_label=labels[0],
            new_label=labels[1],
        )
        return cs.changes

    def close(self) -> None:
        self.reader.close()


def _blame(
    error: SnapshotError,
    old: Mapping[str, str],
    new: Mapping[str, str],
    labels: tuple[str, str],
    reader: GitBlobReader,
) -> tuple[str, str | None]:
    """Which side (``old``/``new``) and file a load error came from, as far as it says."""
    where = error.path or ""
    for side, label in (("new", labels[1]), ("old", labels[0])):
        if where == label:
            return side, None  # the directory as a whole (no kmsnap.yaml, too big)
        if where.startswith(label.rstrip("/") + "/"):  # the store names the snapshot first
            where = where[len(label.rstrip("/")) + 1 :]
            break
    if where not in old and where not in new:
        return "new", None
    if where not in old or where not in new or old[where] == new[where]:
        return ("new" if where in new else "old"), where
    # Both versions were read: the one that does not parse alone is the culprit; when both
    # parse (an entity in two files), the commit being shown is.
    from kmsnap.snapshot.parse import parse_file

    for side, files in (("new", new), ("old", old)):
        try:
            parse_file(reader.read(files[where]), where)
        except (SnapshotError, GitError):
            return side, where
    return "new", where


def _patched(files: Mapping[str, str], patch: Mapping[str, str | None]) -> dict[str, str]:
    out = dict(files)
    for relpath, blob in patch.items():
        if blob is None:
            out.pop(relpath, None)
        else:
            out[relpath] = blob
    return out


def load_history(
    query: LogQuery,
    *,
    cwd: Path | None = None,
    warn: Callable[[str], None] | None = None,
) -> History:
    """Every commit that touched the snapshot directory, newest first, with its changes.

    A snapshot file that cannot be loaded is reported through ``warn`` (naming the commit and
    file); the commit's other changes are still shown, and the file is compared with its last
    good version once a later commit fixes it. With ``query.strict`` it raises SnapshotError.
    """
    started = time.perf_counter()
    where = Path.cwd() if cwd is None else cwd
    root = repo_root(where)
    path = _repo_path(root, where, query.path)
    git_dir_out = git_output(root, ["rev-parse", "--git-common-dir"])
    git_dir = Path((git_dir_out or b".git").decode().strip())
    if not git_dir.is_absolute():
        git_dir = root / git_dir
    cache = ChangeCache(git_dir, enabled=query.use_cache)
    commits = list_commits(root, path, query)
    revs = [c.commit for c in commits] + [c.parent for c in commits if c.parent]
    trees = snapshot_trees(root, revs, path)
    walker = _Walker(root, path, query, cache)
    history = History(entries=[], path=path)
    # Files known broken -> their last good blob (None: none known). They stand in for the
    # broken version, so a later fix shows the net change and the broken text is never diffed.
    broken: dict[str, str | None] = {}
    try:
        for commit in reversed(commits):  # oldest first: broken files carry forward
            entry = _step(walker, commit, trees, broken)
            if entry.warning is not None:
                if query.strict:
                    raise SnapshotError(entry.warning)
                history.warnings.append(entry.warning)
                if warn is not None:
                    warn(entry.warning)
            history.entries.append(entry)
    finally:
        walker.close()
    history.entries.reverse()
    history.cache_hits, history.cache_misses = cache.hits, cache.misses
    history.blobs_read = walker.reader.reads
    history.seconds = time.perf_counter() - started
    return history


def _step(
    walker: _Walker,
    commit: Commit,
    trees: Mapping[str, str | None],
    broken: dict[str, str | None],
) -> LogEntry:
    new_tree = trees.get(commit.commit)
    old_tree = trees.get(commit.parent) if commit.parent else None
    old_patch: dict[str, str | None] = dict(broken)
    new_patch: dict[str, str | None] = {}
    if broken:
        old_files, new_files = walker.listing(old_tree), walker.listing(new_tree)
        for relpath, good in broken.items():
            if relpath in new_files and new_files[relpath] == old_files.get(relpath):
                new_patch[relpath] = good  # untouched, still broken: stands in on both sides
    key = cache_key(
        old_tree,
        new_tree,
        with_stats=walker.query.with_stats,
        ignore_fields=walker.query.ignore_fields,
    )
    if walker.query.select is not None:
        key["select"] = selection_key(walker.query.select)
    if old_patch:
        key["patch"] = [sorted(old_patch.items()), sorted(new_patch.items())]
    short = commit.commit[:12]
    labels = (f"{(commit.parent or 'empty')[:12]}:{walker.path}", f"{short}:{walker.path}")
    cached = walker.cache.get(key)
    if cached is not None:
        changes: list[Change] = cached["changes"]
        errors: list[tuple[str, str | None, str]] = cached["errors"]
    else:
        changes, errors = _compare_patched(walker, old_tree, new_tree, old_patch, new_patch, labels)
        walker.cache.put(key, changes, errors)
    # Carry broken files forward: still broken when untouched, newly broken from this commit,
    # fixed (dropped) when this commit changed them and they loaded.
    old_good = _patched(walker.listing(old_tree), old_patch) if broken or errors else {}
    next_broken: dict[str, str | None] = {p: g for p, g in broken.items() if p in new_patch}
    for side, failed, _message in errors:
        if side == "new" and failed is not None:
            next_broken[failed] = old_good.get(failed)
    broken.clear()
    broken.update(next_broken)
    warning = None
    if errors:
        subject = commit.subject if len(commit.subject) <= 60 else commit.subject[:57] + "..."
        messages = "; ".join(message for _side, _relpath, message in errors)
        warning = f"commit {short} ({subject!r}): {messages}"
    return LogEntry(commit=commit, changes=changes, warning=warning)


def _compare_patched(
    walker: _Walker,
    old_tree: str | None,
    new_tree: str | None,
    old_patch: Mapping[str, str | None],
    new_patch: Mapping[str, str | None],
    labels: tuple[str, str],
) -> tuple[list[Change], list[tuple[str, str | None, str]]]:
    """Compare the two trees; a file that fails to load is swapped for a stand-in and the
    comparison retried, so one broken file costs only its own changes."""
    old = _patched(walker.listing(old_tree), old_patch)
    new = _patched(walker.listing(new_tree), new_patch)
    errors: list[tuple[str, str | None, str]] = []
    prefix = f"{walker.path}/" if walker.path else ""
    for _attempt in range(len(old) + len(new) + 1):
        try:
            return walker.compare(old, new, labels), errors
        except SnapshotError as exc:
            side, relpath = _blame(exc, old, new, labels, walker.reader)
            errors.append((side, relpath, prefix + str(exc) if exc.path else str(exc)))
            if relpath is None:
                break
            if old.get(relpath) == new.get(relpath):
                # Broken on both sides alike (an account.yaml is always read): leave it out.
                old.pop(relpath, None)
                new.pop(relpath, None)
                continue
            # The stand-in: the other side's version, which makes the file compare equal.
            source, target = (old, new) if side == "new" else (new, old)
            if relpath in source:
                target[relpath] = source[relpath]
            else:
                target.pop(relpath, None)
    return [], errors
