"""Snapshot <-> directory: atomic save, safe and fast loading, the ``SnapshotSource`` protocol.

Where files go is ``kmsnap.snapshot.layout``; the YAML form is
``kmsnap.snapshot.canonical`` (writer and fast reader) with ``kmsnap.snapshot.strict``
(the strict fallback loader).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from operator import itemgetter
from pathlib import Path
from typing import Any, Protocol

from kmsnap.errors import SnapshotError
from kmsnap.model import SOURCES, Record, Snapshot
from kmsnap.snapshot import fastread, parse
from kmsnap.snapshot.layout import (
    FORMAT_VERSION,
    META_FILE,
    STATS_SUFFIX,
    Role,
    classify,
    render_files,
    render_snapshot,
    slugify,
)

__all__ = [
    "DirectorySource",
    "SnapshotSource",
    "load_ids",
    "load_pair",
    "load_snapshot",
    "read_source",
    "render_snapshot",
    "save_snapshot",
    "slugify",
]

# Bounds for untrusted snapshots (pull requests): per file (the one limit of
# ``kmsnap.snapshot.parse``, the parser; looked up here at call time so a test can lower it) and for
# the whole snapshot.
MAX_FILE_BYTES = parse.MAX_FILE_BYTES
MAX_TOTAL_BYTES = 1024 * 1024 * 1024


class SnapshotSource(Protocol):
    """A snapshot somewhere: a directory, or a tree in git."""

    label: str

    def list_files(self) -> dict[str, str | None]:
        """Posix relpath -> content id (a git blob sha), or None when there is none."""
        ...

    def read_files(self, relpaths: Sequence[str]) -> dict[str, bytes]:
        """The bytes of each file."""
        ...


class DirectorySource:
    """A snapshot directory on disk, untrusted (a pull request's checkout).

    Symlinks inside it are refused, and so is anything named like a snapshot file that is not
    a regular file (a FIFO, a device, a directory): reading one could hang or never end.
    Sizes come from ``lstat``, so the store refuses files and trees that are too big before
    reading them.
    """

    def __init__(self, path: Path, label: str | None = None) -> None:
        self.path = Path(path)
        self.label = label if label is not None else str(path)
        self._sizes: dict[str, int] = {}

    def list_files(self) -> dict[str, str | None]:
        if not self.path.is_dir():
            raise SnapshotError("no such snapshot directory", path=self.label)
        files: dict[str, str | None] = {}
        sizes: dict[str, int] = {}
        todo = [(str(self.path), "")]
        while todo:
            directory, prefix = todo.pop()
            try:
                entries = sorted(os.scandir(directory), key=lambda e: e.name)
            except OSError as error:
                raise SnapshotError(f"cannot list: {error.strerror}",
                                    path=prefix.rstrip("/") or ".") from None
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                rel = prefix + entry.name
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISLNK(info.st_mode):
                    raise SnapshotError("symbolic links are not allowed in a snapshot", path=rel)
                if stat.S_ISREG(info.st_mode):
                    files[rel] = None
                    sizes[rel] = info.st_size
                elif entry.name.endswith(".yaml"):
                    raise SnapshotError(f"{_file_type(info.st_mode)} named like a snapshot file "
                                        "(only regular files are read)", path=rel)
                elif stat.S_ISDIR(info.st_mode):
                    todo.append((entry.path, rel + "/"))
        self._sizes = sizes
        return files

    def sizes(self) -> dict[str, int]:
        """Every file's size in bytes as ``list_files`` found it, known without reading it."""
        return self._sizes

    def read_files(self, relpaths: Sequence[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for rel in relpaths:
            out[rel] = _read_regular(self.path / rel, rel)
        return out


def _file_type(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file:"


def _read_regular(path: Path, rel: str) -> bytes:
    """The bytes of a regular file of at most MAX_FILE_BYTES, checked before reading.

    Opened without following a symlink and without blocking (a FIFO swapped in after the
    listing would otherwise wait for a writer forever), then checked with ``fstat``.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_BINARY", 0))
    except OSError as error:
        raise SnapshotError(f"cannot read: {error.strerror}", path=rel) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SnapshotError(f"{_file_type(info.st_mode)} named like a snapshot file "
                                "(only regular files are read)", path=rel)
        _check_size(rel, info.st_size)
        try:
            data = parse.read_bounded(handle, info.st_size, MAX_FILE_BYTES)
        except OSError as error:
            raise SnapshotError(f"cannot read: {error.strerror}", path=rel) from None
    _check_size(rel, len(data))
    return data


def _check_size(rel: str, size: int) -> None:
    parse.check_size(rel, size, MAX_FILE_BYTES)


# --- atomic save ----------------------------------------------------------------------


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def save_snapshot(snapshot: Snapshot, out_dir: Path, *, with_stats: bool = False) -> None:
    """Write ``snapshot`` to ``out_dir`` atomically: complete new tree, or the old one intact."""
    def files(emit: Callable[[str, bytes], None]) -> None:  # written as they are rendered
        render_files(snapshot, emit, with_stats=with_stats)

    from kmsnap.snapshot.atomic import replace_tree  # here: a diff or a load writes nothing

    # Looked up at call time, so a test can make one write fail.
    replace_tree(Path(out_dir), files, marker=META_FILE, write=lambda p, d: _write_file(p, d))


# --- loading --------------------------------------------------------------------------


def _parse(rel: str, data: bytes) -> Any:
    return parse.parse_file(data, rel, max_bytes=MAX_FILE_BYTES)


def _records(rel: str, data: bytes, role: Role, value: Any = None) -> list[Record]:
    """The file's records, checked: a mapping or a list of mappings, each with an id."""
    if value is None:
        value = _parse(rel, data)
    if role.mapping:
        if not isinstance(value, dict):
            raise SnapshotError("expected a mapping (one entity)", path=rel, line=1)
        records = [value]
    elif isinstance(value, list):
        records = value
    else:
        raise SnapshotError("expected a list of entities", path=rel, line=1)
    try:  # C-level check of the usual case; the loop below finds what is wrong
        if _ID_TYPES.issuperset(map(type, map(_ID, records))):
            return records
    except (KeyError, TypeError):
        pass
    for index, record in enumerate(records):
        if isinstance(record, dict):
            entity_id = record.get("id")
            if isinstance(entity_id, str) or (
                isinstance(entity_id, int) and not isinstance(entity_id, bool)
            ):
                continue
            problem = "an entity without a string id"
        else:
            problem = "an entry that is not a mapping"
        line = _locate(data, "id" if role.mapping else index)
        raise SnapshotError(problem, path=rel, line=line)
    return records


def _locate(data: bytes, item: int | str) -> int | None:
    """The line of an entry (by index) or a key of a broken file, for its error."""
    from kmsnap.snapshot import strict  # here: only a broken file needs PyYAML's loader

    return strict.locate_item(data, item)


_ID = itemgetter("id")
_ID_TYPES = frozenset({str, int})


class _Assembler:
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        # (kind, stats) -> id -> the file it is in
        self.seen: dict[tuple[str, bool], dict[str, str]] = {}

    def _twice(self, rel: str, data: bytes, role: Role, entity_id: str, index: int | None) -> None:
        where = self.seen.get((role.kind, role.stats), {}).get(entity_id, rel)
        line = None
        if index is not None:
            line = _locate(data, "id" if role.mapping else index)
        raise SnapshotError(
            f"{role.kind} {entity_id!r} appears twice (also in {where})", path=rel, line=line,
        )

    def register(self, rel: str, data: bytes, role: Role, ids: Sequence[str], *,
                 located: bool = True) -> None:
        """Ids of entities left out of the snapshot (identical on both sides of a pair): still
        counted, so an id in two files is refused as a full load refuses it."""
        seen = self.seen.setdefault((role.kind, role.stats), {})
        fresh = dict.fromkeys(ids, rel)
        if len(fresh) != len(ids) or not seen.keys().isdisjoint(fresh):
            again: set[str] = set()
            for index, entity_id in enumerate(ids):
                if entity_id in seen or entity_id in again:
                    self._twice(rel, data, role, entity_id, index if located else None)
                again.add(entity_id)
        seen.update(fresh)

    def add(self, rel: str, data: bytes, role: Role, records: list[Record]) -> None:
        if not records:
            return
        ids = list(map(str, map(_ID, records)))
        self.register(rel, data, role, ids)
        if role.stats:
            by_id = self.snapshot.stats.setdefault(role.kind, {})
        else:
            by_id = self.snapshot.writable(role.kind)
        if role.stats:
            for entity_id, record in zip(ids, records, strict=True):
                by_id[entity_id] = {k: v for k, v in record.items() if k != "id"}
        else:
            by_id.update(zip(ids, records, strict=True))


def _as_source(source: SnapshotSource | Path | str) -> SnapshotSource:
    if isinstance(source, (str, os.PathLike)):
        return DirectorySource(Path(source))
    return source


def _read_meta(
    source: SnapshotSource, listing: Mapping[str, str | None]
) -> tuple[str, dict[str, str], str]:
    if META_FILE not in listing:
        raise SnapshotError(f"not a kmsnap snapshot (no {META_FILE})", path=source.label)
    data = source.read_files([META_FILE])[META_FILE]
    meta = _parse(META_FILE, data)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise SnapshotError(
            f"unsupported snapshot format {found!r} (this kmsnap reads format {FORMAT_VERSION})",
            path=META_FILE, line=_locate(data, "format"),
        )
    api = meta.get("api")
    other = meta.get("other_kinds") or {}
    if not isinstance(api, str) or not isinstance(other, dict):
        raise SnapshotError("malformed api or other_kinds", path=META_FILE)
    origin = meta.get("source", "core")  # absent in a Core snapshot
    if origin not in SOURCES:
        raise SnapshotError(f"unknown source {str(origin)[:40]!r} (this kmsnap reads "
                            f"{', '.join(SOURCES)})", path=META_FILE)
    return api, {str(k): str(v) for k, v in other.items()}, origin


def read_source(source: SnapshotSource | Path) -> str:
    """The source a snapshot was pulled from (``core`` or ``v3``), from its header alone."""
    source = _as_source(source)
    with _about(source):
        return _read_meta(source, source.list_files())[2]


def _roles(
    listing: Mapping[str, str | None], other: Mapping[str, str], with_stats: bool
) -> dict[str, Role]:
    roles = {}
    for rel in sorted(listing):
        role = classify(rel, other)
        if role is not None and (with_stats or not role.stats):
            roles[rel] = role
    return roles


def _check_known_sizes(source: SnapshotSource, rels: Sequence[str]) -> None:
    """Sizes known from the listing, checked before anything is read."""
    sizes = getattr(source, "sizes", None)  # both sources know sizes without reading
    if callable(sizes):
        known = sizes()
        total = 0
        for rel in rels:
            size = known.get(rel, 0)
            _check_size(rel, size)
            total += size
        _check_total(source, total)


def _read(source: SnapshotSource, rels: Sequence[str]) -> dict[str, bytes]:
    """The files' bytes; sizes known from the listing are checked before anything is read."""
    if not rels:
        return {}
    _check_known_sizes(source, rels)
    files = source.read_files(rels)
    total = 0
    for rel, data in files.items():
        _check_size(rel, len(data))
        total += len(data)
    _check_total(source, total)
    return files


def _check_total(source: SnapshotSource, total: int) -> None:
    if total > MAX_TOTAL_BYTES:
        raise SnapshotError(f"snapshot larger than {MAX_TOTAL_BYTES} bytes (its files add up "
                            f"to {total} bytes)", path=source.label)


@contextmanager
def _about(source: SnapshotSource) -> Iterator[None]:
    """Errors about a file name the snapshot it is in: ``HEAD~1:snapshots/acme/events.yaml:3``."""
    try:
        yield
    except SnapshotError as exc:
        raise exc.within(source.label) from None


def load_snapshot(source: SnapshotSource | Path, *, with_stats: bool = False) -> Snapshot:
    """Read a whole snapshot (usage fields too, into ``stats``, when ``with_stats``)."""
    source = _as_source(source)
    with _about(source):
        listing = source.list_files()
        api, other, origin = _read_meta(source, listing)
        roles = _roles(listing, other, with_stats)
        files = _read(source, list(roles))
        snapshot = Snapshot(api=api, source=origin)
        assembler = _Assembler(snapshot)
        for rel, role in roles.items():
            assembler.add(rel, files[rel], role, _records(rel, files[rel], role))
    return snapshot


def load_ids(source: SnapshotSource | Path) -> dict[str, list[str]]:
    """The entity ids per kind of a whole snapshot, checked as ``load_snapshot`` checks it
    (the same errors, duplicates included) but without building its entities: a canonical
    file's ids are read from its text, and the files are read a batch at a time. Kinds
    without entities have no key."""
    source = _as_source(source)
    with _about(source):
        listing = source.list_files()
        _, other, _ = _read_meta(source, listing)
        roles = _roles(listing, other, False)
        rels = list(roles)
        _check_known_sizes(source, rels)
        assembler = _Assembler(Snapshot())
        ids: dict[str, list[str]] = {}
        total = 0
        for batch in _batches(rels, source):
            files = _read(source, batch)
            total += sum(map(len, files.values()))
            _check_total(source, total)
            for rel in batch:
                role = roles[rel]
                found = _file_ids(rel, files[rel], role)
                assembler.register(rel, files[rel], role, found)
                if found:
                    ids.setdefault(role.kind, []).extend(found)
    return ids


def _chunks(text: str) -> list[str] | None:
    if not text.startswith("- ") or not text.endswith("\n"):
        return None
    return ("\n" + text[:-1]).split("\n- ")[1:]


def _join(chunks: Sequence[str]) -> str:
    return "- " + "\n- ".join(chunks) + "\n" if chunks else "[]\n"


def _differing(old: bytes, new: bytes) -> tuple[Any, Any, list[str]] | None:
    """The records of the entity chunks that differ between two versions of one file.

    Only when both whole files are in the canonical form (so a chunk means the same alone as
    in its file); the common chunks are the same bytes on both sides, so they are checked
    once, without building their entities, and their ids come third (an id must not appear
    twice). None when the files must be read whole.
    """
    try:
        old_chunks = _chunks(old.decode("utf-8"))
        new_chunks = _chunks(new.decode("utf-8"))
    except UnicodeDecodeError:
        return None
    if old_chunks is None or new_chunks is None:
        return None
    old_set, new_set = set(old_chunks), set(new_chunks)
    if len(old_set) != len(old_chunks) or len(new_set) != len(new_chunks):
        return None
    common = old_set & new_set
    if not common:
        return None
    ids = fastread.sequence_ids(_join([c for c in old_chunks if c in common]))
    if ids is None or not _ID_TYPES.issuperset(map(type, ids)):
        return None
    old_value = fastread.fast_load(_join([c for c in old_chunks if c not in common]))
    new_value = fastread.fast_load(_join([c for c in new_chunks if c not in common]))
    if old_value is None or new_value is None:
        return None
    return old_value, new_value, list(map(str, ids))


def _file_ids(rel: str, data: bytes, role: Role) -> list[str]:
    """The ids of a whole file, checked as a full load checks it."""
    if not role.mapping and b"\r" not in data and len(data) <= MAX_FILE_BYTES:
        try:
            ids = fastread.sequence_ids(data.decode("utf-8"))
        except UnicodeDecodeError:
            ids = None
        if ids is not None and _ID_TYPES.issuperset(map(type, ids)):
            return list(map(str, ids))
    return [str(record["id"]) for record in _records(rel, data, role)]


def _stats_of(rel: str) -> str:
    return rel[: -len(".yaml")] + STATS_SUFFIX


def load_pair(
    old: SnapshotSource, new: SnapshotSource, *, with_stats: bool = False
) -> tuple[Snapshot, Snapshot]:
    """Both snapshots, leaving out on both sides the entities whose text is identical in both.

    Diffing the pair gives exactly the diff of the full snapshots; accounts and products are
    always kept whole (the diff groups changes by their names).
    """
    old, new = _as_source(old), _as_source(new)
    with _about(old):
        old_listing = old.list_files()
        old_api, old_other, old_origin = _read_meta(old, old_listing)
    with _about(new):
        new_listing = new.list_files()
        new_api, new_other, new_origin = _read_meta(new, new_listing)
    old_roles = _roles(old_listing, old_other, with_stats)
    new_roles = _roles(new_listing, new_other, with_stats)

    def same_role(rel: str) -> bool:
        a, b = old_roles.get(rel), new_roles.get(rel)
        return a is not None and b is not None and (a.kind, a.mapping, a.stats) == (
            b.kind, b.mapping, b.stats
        )

    shared = [rel for rel in old_roles if same_role(rel) and not old_roles[rel].always]

    def same_id(rel: str) -> bool:
        if rel not in old_listing and rel not in new_listing:
            return True
        return old_listing.get(rel) is not None and old_listing.get(rel) == new_listing.get(rel)

    # With stats, a catalog file may be left out only if its usage fields did not move either:
    # the diff needs the entity beside changed usage fields.
    skip = {
        rel for rel in shared
        if same_id(rel)
        and (not with_stats or rel.endswith(STATS_SUFFIX) or same_id(_stats_of(rel)))
    }
    old_rels = [rel for rel in old_roles if rel not in skip]
    new_rels = [rel for rel in new_roles if rel not in skip]
    with _about(old):
        _check_known_sizes(old, old_rels)
    with _about(new):
        _check_known_sizes(new, new_rels)
    # Usage files first (with stats): whether one moved decides how its catalog file is read.
    stats_rels = sorted(rel for rel in {*old_rels, *new_rels} if rel.endswith(STATS_SUFFIX))
    with _about(old):
        old_stats = _read(old, [rel for rel in stats_rels if rel in old_roles])
    with _about(new):
        new_stats = _read(new, [rel for rel in stats_rels if rel in new_roles])
    stats_differ = {rel for rel in stats_rels if old_stats.get(rel) != new_stats.get(rel)}
    shared_set = set(shared)
    sides = [
        (old, old_roles, _Assembler(Snapshot(api=old_api, source=old_origin)), 0),
        (new, new_roles, _Assembler(Snapshot(api=new_api, source=new_origin)), 1),
    ]
    # The files are read and compared a batch at a time, each side's batch dropped before the
    # next is read: peak memory is a batch, not both trees.
    old_total = new_total = 0
    for batch in _batches(sorted({*old_rels, *new_rels}), old, new):
        with _about(old):
            old_files = {**_read(old, [r for r in batch if r in old_roles and r not in old_stats]),
                         **{r: old_stats[r] for r in batch if r in old_stats}}
            old_total += sum(map(len, old_files.values()))
            _check_total(old, old_total)
        with _about(new):
            new_files = {**_read(new, [r for r in batch if r in new_roles and r not in new_stats]),
                         **{r: new_stats[r] for r in batch if r in new_stats}}
            new_total += sum(map(len, new_files.values()))
            _check_total(new, new_total)
        for rel in batch:
            _pair_file(rel, old_files.get(rel), new_files.get(rel), sides,
                       reducible=rel in shared_set and (
                           rel.endswith(STATS_SUFFIX) or _stats_of(rel) not in stats_differ))
    # A file with equal content ids on both sides (git blobs) is never read.
    return sides[0][2].snapshot, sides[1][2].snapshot


_Side = tuple[SnapshotSource, dict[str, Role], _Assembler, int]


def _pair_file(rel: str, old: bytes | None, new: bytes | None, sides: list[_Side], *,
               reducible: bool) -> None:
    """One file of a pair into both snapshots: left out when identical, reduced to the
    differing entities when both versions are canonical, else read whole."""
    pair = None
    if reducible and old is not None and new is not None:
        if old == new:
            # Still checked and its ids counted once (the same on both sides), so an id in
            # two files is refused as in a full load: ``diff X X`` must not pass a tree that
            # ``check`` refuses.
            with _about(sides[1][0]):
                ids = _file_ids(rel, new, sides[1][1][rel])
            for source, roles, assembler, _ in sides:
                with _about(source):
                    assembler.register(rel, new, roles[rel], ids)
            return
        pair = _differing(old, new)
    for (source, roles, assembler, side), data in zip(sides, (old, new), strict=True):
        if data is None or rel not in roles:
            continue
        role = roles[rel]
        with _about(source):
            records = None
            if pair is not None:
                assembler.register(rel, data, role, pair[2], located=False)
                try:
                    records = _records(rel, data, role, pair[side])
                except SnapshotError:
                    records = None  # read it whole for an error with the right line
            if records is None:
                records = _records(rel, data, role)
            assembler.add(rel, data, role, records)


BATCH_BYTES = 32 * 1024 * 1024


def _batches(rels: list[str], *sources: SnapshotSource) -> Iterator[list[str]]:
    """``rels`` in runs of at most ``BATCH_BYTES`` (by the sizes the listings know) or 256."""
    known = [getattr(source, "sizes", None) for source in sources]
    sizes = [k() if callable(k) else {} for k in known]
    batch: list[str] = []
    total = 0
    for rel in rels:
        size = max(s.get(rel, 0) for s in sizes)
        if batch and (total + size > BATCH_BYTES or len(batch) >= 256):
            yield batch
            batch, total = [], 0
        batch.append(rel)
        total += size
    if batch:
        yield batch
