"""Snapshot <-> directory: atomic save, safe and fast loading, the ``SnapshotSource`` protocol.

Where files go is ``kmsnap.storelayout``; the YAML form is ``kmsnap.yamlform`` (writer and
fast reader) with ``kmsnap.yamlsafe`` (the strict fallback loader).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from kmsnap import yamlform, yamlsafe
from kmsnap.atomicdir import replace_tree
from kmsnap.errors import SnapshotError
from kmsnap.model import Record, Snapshot
from kmsnap.storelayout import (
    FORMAT_VERSION,
    META_FILE,
    STATS_SUFFIX,
    Role,
    classify,
    render_snapshot,
    slugify,
)

__all__ = [
    "DirectorySource",
    "SnapshotSource",
    "load_pair",
    "load_snapshot",
    "render_snapshot",
    "save_snapshot",
    "slugify",
]

# Bounds for untrusted snapshots (pull requests): per file and for the whole snapshot.
MAX_FILE_BYTES = 64 * 1024 * 1024
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
    """A snapshot directory on disk. Symlinks inside it are refused (untrusted checkouts)."""

    def __init__(self, path: Path, label: str | None = None) -> None:
        self.path = Path(path)
        self.label = label if label is not None else str(path)

    def list_files(self) -> dict[str, str | None]:
        if not self.path.is_dir():
            raise SnapshotError("no such snapshot directory", path=self.label)
        files: dict[str, str | None] = {}
        for dirpath, dirnames, filenames in os.walk(self.path):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel_dir = Path(dirpath).relative_to(self.path)
            for name in dirnames + filenames:
                if name.startswith("."):
                    continue
                if os.path.islink(os.path.join(dirpath, name)):
                    where = (rel_dir / name).as_posix()
                    raise SnapshotError("symbolic links are not allowed in a snapshot", path=where)
            for name in filenames:
                if not name.startswith("."):
                    files[(rel_dir / name).as_posix()] = None
        return files

    def read_files(self, relpaths: Sequence[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for rel in relpaths:
            try:
                with open(self.path / rel, "rb") as handle:
                    data = handle.read(MAX_FILE_BYTES + 1)
            except OSError as error:
                raise SnapshotError(f"cannot read: {error.strerror}", path=rel) from None
            _check_size(rel, data)
            out[rel] = data
        return out


def _check_size(rel: str, data: bytes) -> None:
    if len(data) > MAX_FILE_BYTES:
        raise SnapshotError(f"file larger than {MAX_FILE_BYTES} bytes", path=rel)


# --- atomic save ----------------------------------------------------------------------


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def save_snapshot(snapshot: Snapshot, out_dir: Path, *, with_stats: bool = False) -> None:
    """Write ``snapshot`` to ``out_dir`` atomically: complete new tree, or the old one intact."""
    files = render_snapshot(snapshot, with_stats=with_stats)
    # Looked up at call time, so a test can make one write fail.
    replace_tree(Path(out_dir), files, marker=META_FILE, write=lambda p, d: _write_file(p, d))


# --- loading --------------------------------------------------------------------------


def _parse(rel: str, data: bytes) -> Any:
    _check_size(rel, data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None:
        if "\r" in text:
            # A checkout with core.autocrlf: YAML reads CRLF as LF everywhere, and canonical
            # text has no raw line break inside a scalar, so this keeps the fast path sound.
            text = text.replace("\r\n", "\n")
        value = yamlform.fast_load(text)
        if value is not None:
            return value
    return yamlsafe.safe_load(data, rel)


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
        line = yamlsafe.locate_item(data, "id" if role.mapping else index)
        raise SnapshotError(problem, path=rel, line=line)
    return records


class _Assembler:
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.seen: dict[tuple[str, bool, str], str] = {}

    def add(self, rel: str, data: bytes, role: Role, records: list[Record]) -> None:
        if not records:
            return
        target = self.snapshot.stats if role.stats else self.snapshot.entities
        by_id = target.setdefault(role.kind, {})
        for index, record in enumerate(records):
            entity_id = str(record["id"])
            if entity_id in by_id:
                where = self.seen.get((role.kind, role.stats, entity_id), rel)
                line = yamlsafe.locate_item(data, "id" if role.mapping else index)
                raise SnapshotError(
                    f"{role.kind} {entity_id!r} appears twice (also in {where})",
                    path=rel, line=line,
                )
            self.seen[(role.kind, role.stats, entity_id)] = rel
            if role.stats:
                by_id[entity_id] = {k: v for k, v in record.items() if k != "id"}
            else:
                by_id[entity_id] = record


def _as_source(source: SnapshotSource | Path | str) -> SnapshotSource:
    if isinstance(source, (str, os.PathLike)):
        return DirectorySource(Path(source))
    return source


def _read_meta(
    source: SnapshotSource, listing: Mapping[str, str | None]
) -> tuple[str, dict[str, str]]:
    if META_FILE not in listing:
        raise SnapshotError(f"not a kmsnap snapshot (no {META_FILE})", path=source.label)
    data = source.read_files([META_FILE])[META_FILE]
    meta = _parse(META_FILE, data)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise SnapshotError(
            f"unsupported snapshot format {found!r} (this kmsnap reads format {FORMAT_VERSION})",
            path=META_FILE, line=yamlsafe.locate_item(data, "format"),
        )
    api = meta.get("api")
    other = meta.get("other_kinds") or {}
    if not isinstance(api, str) or not isinstance(other, dict):
        raise SnapshotError("malformed api or other_kinds", path=META_FILE)
    return api, {str(k): str(v) for k, v in other.items()}


def _roles(
    listing: Mapping[str, str | None], other: Mapping[str, str], with_stats: bool
) -> dict[str, Role]:
    roles = {}
    for rel in sorted(listing):
        role = classify(rel, other)
        if role is not None and (with_stats or not role.stats):
            roles[rel] = role
    return roles


def _read(source: SnapshotSource, rels: Sequence[str]) -> dict[str, bytes]:
    sizes = getattr(source, "sizes", None)  # GitSource knows sizes without reading
    if callable(sizes):
        known = sizes()
        for rel in rels:
            if known.get(rel, 0) > MAX_FILE_BYTES:
                raise SnapshotError(f"file larger than {MAX_FILE_BYTES} bytes", path=rel)
    files = source.read_files(rels)
    total = 0
    for rel, data in files.items():
        _check_size(rel, data)
        total += len(data)
    if total > MAX_TOTAL_BYTES:
        raise SnapshotError(f"snapshot larger than {MAX_TOTAL_BYTES} bytes", path=source.label)
    return files


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
        api, other = _read_meta(source, listing)
        roles = _roles(listing, other, with_stats)
        files = _read(source, list(roles))
        snapshot = Snapshot(api=api)
        assembler = _Assembler(snapshot)
        for rel, role in roles.items():
            assembler.add(rel, files[rel], role, _records(rel, files[rel], role))
    return snapshot


def _chunks(text: str) -> list[str] | None:
    if not text.startswith("- ") or not text.endswith("\n"):
        return None
    return ("\n" + text[:-1]).split("\n- ")[1:]


def _join(chunks: Sequence[str]) -> str:
    return "- " + "\n- ".join(chunks) + "\n" if chunks else "[]\n"


def _differing(old: bytes, new: bytes) -> tuple[Any, Any] | None:
    """The records of the entity chunks that differ between two versions of one file.

    Only when both whole files are in the canonical form (so a chunk means the same alone as
    in its file); the common chunks are validated once, as they are the same bytes on both
    sides. None when the files must be read whole.
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
    if not common or not yamlform.is_canonical_sequence(
        _join([c for c in old_chunks if c in common])
    ):
        return None
    old_value = yamlform.fast_load(_join([c for c in old_chunks if c not in common]))
    new_value = yamlform.fast_load(_join([c for c in new_chunks if c not in common]))
    if old_value is None or new_value is None:
        return None
    return old_value, new_value


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
        old_api, old_other = _read_meta(old, old_listing)
    with _about(new):
        new_listing = new.list_files()
        new_api, new_other = _read_meta(new, new_listing)
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
    with _about(old):
        old_files = _read(old, [rel for rel in old_roles if rel not in skip])
    with _about(new):
        new_files = _read(new, [rel for rel in new_roles if rel not in skip])
    stats_differ = {
        rel for rel in old_roles.keys() | new_roles.keys()
        if rel.endswith(STATS_SUFFIX) and old_files.get(rel) != new_files.get(rel)
    }
    reduced: dict[str, tuple[Any, Any]] = {}
    for rel in shared:
        if rel in skip:
            continue
        if not rel.endswith(STATS_SUFFIX) and _stats_of(rel) in stats_differ:
            continue  # the diff needs the entity beside its changed usage fields
        a, b = old_files[rel], new_files[rel]
        if a == b:
            skip.add(rel)
        elif (pair := _differing(a, b)) is not None:
            reduced[rel] = pair

    snapshots = []
    for source, roles, files, api, side in (
        (old, old_roles, old_files, old_api, 0), (new, new_roles, new_files, new_api, 1)
    ):
        snapshot = Snapshot(api=api)
        assembler = _Assembler(snapshot)
        with _about(source):
            for rel, role in roles.items():
                if rel in skip:
                    continue
                data = files[rel]
                records = None
                if rel in reduced:
                    try:
                        records = _records(rel, data, role, reduced[rel][side])
                    except SnapshotError:
                        records = None  # read it whole for an error with the right line
                if records is None:
                    records = _records(rel, data, role)
                assembler.add(rel, data, role, records)
        snapshots.append(snapshot)
    return snapshots[0], snapshots[1]
