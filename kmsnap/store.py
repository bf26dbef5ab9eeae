"""Snapshot <-> directory: the file layout, slugs, atomic replace and safe, fast loading.

The YAML form itself lives in ``kmsnap.yamlform`` (writer and fast reader) and
``kmsnap.yamlsafe`` (the strict fallback loader).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from kmsnap import yamlform, yamlsafe
from kmsnap.errors import SnapshotError
from kmsnap.model import KINDS, PRODUCT_KINDS, Record, Snapshot, entity_name, kind_for_rel

__all__ = [
    "DirectorySource",
    "SnapshotSource",
    "load_pair",
    "load_snapshot",
    "render_snapshot",
    "save_snapshot",
    "slugify",
]

FORMAT_VERSION = 1
META_FILE = "kmsnap.yaml"
UNASSIGNED = "_unassigned"
OTHER = "_other"
STATS_SUFFIX = ".stats.yaml"
# Bounds for untrusted snapshots (pull requests): per file and for the whole snapshot.
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
SLUG_NAME_CHARS = 60

_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_SAFE_STEM = re.compile(r"[a-z0-9][a-z0-9_-]{0,59}\Z")


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


# --- slugs ----------------------------------------------------------------------------


def slugify(name: str | None, entity_id: str) -> str:
    """A directory name: ``Signed Up!``, ``ab12CD34ef`` -> ``signed-up-ab12cd34``."""
    base = _NOT_SLUG.sub("-", (name or "").lower()).strip("-")[:SLUG_NAME_CHARS].strip("-")
    id_part = _NOT_SLUG.sub("-", str(entity_id).lower())[:8].strip("-")
    if not id_part:  # an id with nothing usable in front: a stable hash instead
        id_part = hashlib.sha256(str(entity_id).encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{base}-{id_part}" if base else id_part


def _unique_slugs(names: Mapping[str, str | None]) -> dict[str, str]:
    """Slug per id, unique within one directory; colliding ones get a hash of the full id."""
    base = {entity_id: slugify(name, entity_id) for entity_id, name in names.items()}
    seen: dict[str, int] = {}
    for slug in base.values():
        seen[slug] = seen.get(slug, 0) + 1
    used = {slug for slug, count in seen.items() if count == 1}
    out = {entity_id: slug for entity_id, slug in base.items() if seen[slug] == 1}
    for entity_id in sorted(entity_id for entity_id in base if entity_id not in out):
        digest = hashlib.sha256(entity_id.encode("utf-8", "surrogatepass")).hexdigest()
        size = 8
        slug = f"{base[entity_id]}-{digest[:size]}"
        while slug in used:
            size += 8
            slug = f"{base[entity_id]}-{digest[:size]}" if size <= 64 else f"{slug}-x"
        used.add(slug)
        out[entity_id] = slug
    return out


# --- rendering ------------------------------------------------------------------------


def _ordered(kind: str, record: Mapping[str, Any]) -> Record:
    spec = KINDS.get(kind)
    known = spec.fields if spec else ("id",)
    out: Record = {key: record[key] for key in known if key in record}
    if len(out) != len(record):
        for key in sorted(key for key in record if key not in out and key != "links"):
            out[key] = record[key]
    return out


def _sort_key(kind: str) -> Any:
    def key(item: tuple[str, Record]) -> tuple[str, str]:
        return (entity_name(kind, item[1]) or "", item[0])

    return key


class _Renderer:
    def __init__(self, snapshot: Snapshot, with_stats: bool) -> None:
        self.snapshot = snapshot
        self.with_stats = with_stats
        self.files: dict[str, bytes] = {}

    def mapping(self, rel: str, kind: str, entity_id: str, record: Record) -> None:
        self.files[rel] = yamlform.dump_mapping(_ordered(kind, record)).encode()
        usage = self.snapshot.stats.get(kind, {}).get(entity_id) if self.with_stats else None
        if usage:
            stats = _ordered(kind, {**usage, "id": record.get("id", entity_id)})
            self.files[rel[: -len(".yaml")] + STATS_SUFFIX] = yamlform.dump_mapping(stats).encode()

    def collection(self, rel: str, kind: str, items: list[tuple[str, Record]]) -> None:
        items.sort(key=_sort_key(kind))
        records = [_ordered(kind, record) for _, record in items]
        self.files[rel] = yamlform.dump_collection(records).encode()
        if not self.with_stats:
            return
        by_id = self.snapshot.stats.get(kind, {})
        stats = [
            _ordered(kind, {**by_id[entity_id], "id": record.get("id", entity_id)})
            for entity_id, record in items
            if by_id.get(entity_id)
        ]
        if stats:
            stem = rel[: -len(".yaml")]
            self.files[stem + STATS_SUFFIX] = yamlform.dump_collection(stats).encode()


def render_snapshot(snapshot: Snapshot, *, with_stats: bool = False) -> dict[str, bytes]:
    """Every file of the snapshot directory: posix relpath -> bytes."""
    out = _Renderer(snapshot, with_stats)
    accounts = snapshot.of("account")
    account_dirs = _unique_slugs({i: entity_name("account", r) for i, r in accounts.items()})
    for account_id, record in accounts.items():
        out.mapping(f"{account_dirs[account_id]}/account.yaml", "account", account_id, record)

    by_account: dict[str, dict[str, Record]] = {}
    loose_products: list[tuple[str, Record]] = []
    for product_id, record in snapshot.of("product").items():
        parent = _parent_key(record.get("account_id"))
        if parent in accounts:
            by_account.setdefault(parent, {})[product_id] = record
        else:
            loose_products.append((product_id, record))
    product_dirs: dict[str, str] = {}
    for account_id, products in by_account.items():
        slugs = _unique_slugs({i: entity_name("product", r) for i, r in products.items()})
        for product_id, record in products.items():
            product_dir = f"{account_dirs[account_id]}/{slugs[product_id]}"
            product_dirs[product_id] = product_dir
            out.mapping(f"{product_dir}/product.yaml", "product", product_id, record)
    if loose_products:
        out.collection(f"{UNASSIGNED}/products.yaml", "product", loose_products)

    for kind in PRODUCT_KINDS:
        rel = KINDS[kind].rel
        buckets: dict[str, list[tuple[str, Record]]] = {pid: [] for pid in product_dirs}
        loose: list[tuple[str, Record]] = []
        for entity_id, record in snapshot.of(kind).items():
            bucket = buckets.get(_parent_key(record.get("product_id")))  # type: ignore[arg-type]
            (loose if bucket is None else bucket).append((entity_id, record))
        for product_id, items in buckets.items():
            out.collection(f"{product_dirs[product_id]}/{rel}.yaml", kind, items)
        if loose:
            out.collection(f"{UNASSIGNED}/{rel}.yaml", kind, loose)

    other_kinds = sorted(kind for kind in snapshot.entities if kind not in KINDS)
    stems = _other_stems(other_kinds)
    for kind in other_kinds:
        if snapshot.entities[kind]:
            items = list(snapshot.entities[kind].items())
            out.collection(f"{OTHER}/{stems[kind]}.yaml", kind, items)

    meta: Record = {"format": FORMAT_VERSION, "api": snapshot.api, "counts": snapshot.counts()}
    renamed = {stem: kind for kind, stem in stems.items() if stem != kind}
    if renamed:  # kinds whose names are not safe file names: the file says which kind it holds
        meta["other_kinds"] = renamed
    out.files[META_FILE] = yamlform.dump_mapping(meta).encode()
    return out.files


def _parent_key(value: Any) -> str | None:
    return None if value is None else str(value)


def _other_stems(kinds: list[str]) -> dict[str, str]:
    safe = {k: k for k in kinds if _SAFE_STEM.match(k) and not k.endswith("-stats")}
    unsafe = [k for k in kinds if k not in safe]
    stems = dict(safe)
    for kind in unsafe:
        digest = hashlib.sha256(kind.encode("utf-8", "surrogatepass")).hexdigest()
        stems[kind] = slugify(kind, digest)
    taken = set(safe.values())
    for kind in unsafe:
        while stems[kind] in taken:
            stems[kind] += "-x"
        taken.add(stems[kind])
    return stems


# --- atomic save ----------------------------------------------------------------------


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def save_snapshot(snapshot: Snapshot, out_dir: Path, *, with_stats: bool = False) -> None:
    """Write ``snapshot`` to ``out_dir`` atomically: complete new tree, or the old one intact."""
    out_dir = Path(out_dir)
    files = render_snapshot(snapshot, with_stats=with_stats)
    _check_target(out_dir)
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
            _write_file(tmp / rel, data)
        _swap(tmp, out_dir, old)
    except OSError as error:
        raise SnapshotError(f"cannot write: {error.strerror}", path=str(out_dir)) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)


def _check_target(out_dir: Path) -> None:
    if not out_dir.exists() and not out_dir.is_symlink():
        return
    if not out_dir.is_dir() or out_dir.is_symlink():
        raise SnapshotError("exists and is not a snapshot directory", path=str(out_dir))
    if (out_dir / META_FILE).is_file():
        return
    if any(out_dir.iterdir()):
        raise SnapshotError(
            f"not a kmsnap snapshot (no {META_FILE}); refusing to replace its files",
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
        signal.signal(signal.SIGINT, previous)


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


# --- loading --------------------------------------------------------------------------


class _Role:
    """What one snapshot file holds."""

    __slots__ = ("kind", "mapping", "stats")

    def __init__(self, kind: str, mapping: bool, stats: bool) -> None:
        self.kind = kind
        self.mapping = mapping  # one entity (account.yaml, product.yaml) rather than a list
        self.stats = stats

    @property
    def always(self) -> bool:
        # Accounts and products are always loaded whole: the diff groups by their names.
        return self.kind in ("account", "product")


def _classify(rel: str, other_kinds: Mapping[str, str]) -> _Role | None:
    parts = rel.split("/")
    if not rel.endswith(".yaml") or rel == META_FILE or any(p.startswith(".") for p in parts):
        return None
    name = parts[-1]
    stats = name.endswith(STATS_SUFFIX)
    stem = name[: -len(STATS_SUFFIX)] if stats else name[: -len(".yaml")]
    if len(parts) == 2 and parts[0] == UNASSIGNED:
        return _Role(kind_for_rel(stem), False, stats)
    if len(parts) == 2 and parts[0] == OTHER:
        return _Role(other_kinds.get(stem, stem), False, stats)
    if len(parts) == 2 and stem == "account":
        return _Role("account", True, stats)
    if len(parts) == 3 and stem == "product":
        return _Role("product", True, stats)
    if len(parts) == 3 and stem not in ("account", "accounts", "products"):
        return _Role(kind_for_rel(stem), False, stats)
    raise SnapshotError("unexpected file in a snapshot", path=rel)


def _parse(rel: str, data: bytes) -> Any:
    _check_size(rel, data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None:
        value = yamlform.fast_load(text)
        if value is not None:
            return value
    return yamlsafe.safe_load(data, rel)


def _records(rel: str, data: bytes, role: _Role, value: Any = None) -> list[Record]:
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

    def add(self, rel: str, data: bytes, role: _Role, records: list[Record]) -> None:
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
) -> dict[str, _Role]:
    roles = {}
    for rel in sorted(listing):
        role = _classify(rel, other)
        if role is not None and (with_stats or not role.stats):
            roles[rel] = role
    return roles


def _read(source: SnapshotSource, rels: Sequence[str]) -> dict[str, bytes]:
    files = source.read_files(rels)
    total = 0
    for rel, data in files.items():
        _check_size(rel, data)
        total += len(data)
    if total > MAX_TOTAL_BYTES:
        raise SnapshotError(f"snapshot larger than {MAX_TOTAL_BYTES} bytes", path=source.label)
    return files


def load_snapshot(source: SnapshotSource | Path, *, with_stats: bool = False) -> Snapshot:
    """Read a whole snapshot (usage fields too, into ``stats``, when ``with_stats``)."""
    source = _as_source(source)
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


def load_pair(
    old: SnapshotSource, new: SnapshotSource, *, with_stats: bool = False
) -> tuple[Snapshot, Snapshot]:
    """Both snapshots, leaving out on both sides the entities whose text is identical in both.

    Diffing the pair gives exactly the diff of the full snapshots; accounts and products are
    always kept whole (the diff groups changes by their names).
    """
    old, new = _as_source(old), _as_source(new)
    old_listing, new_listing = old.list_files(), new.list_files()
    old_api, old_other = _read_meta(old, old_listing)
    new_api, new_other = _read_meta(new, new_listing)
    old_roles = _roles(old_listing, old_other, with_stats)
    new_roles = _roles(new_listing, new_other, with_stats)

    def same_role(rel: str) -> bool:
        a, b = old_roles.get(rel), new_roles.get(rel)
        return a is not None and b is not None and (a.kind, a.mapping, a.stats) == (
            b.kind, b.mapping, b.stats
        )

    shared = [rel for rel in old_roles if same_role(rel) and not old_roles[rel].always]
    skip = {rel for rel in shared if old_listing[rel] is not None
            and old_listing[rel] == new_listing[rel]}
    old_files = _read(old, [rel for rel in old_roles if rel not in skip])
    new_files = _read(new, [rel for rel in new_roles if rel not in skip])
    stats_differ = {
        rel for rel in old_roles.keys() | new_roles.keys()
        if rel.endswith(STATS_SUFFIX) and old_files.get(rel) != new_files.get(rel)
    }
    reduced: dict[str, tuple[Any, Any]] = {}
    for rel in shared:
        if rel in skip:
            continue
        sibling = rel[: -len(".yaml")] + STATS_SUFFIX
        if not rel.endswith(STATS_SUFFIX) and sibling in stats_differ:
            continue  # the diff needs the entity beside its changed usage fields
        a, b = old_files[rel], new_files[rel]
        if a == b:
            skip.add(rel)
        elif (pair := _differing(a, b)) is not None:
            reduced[rel] = pair

    snapshots = []
    for roles, files, api, side in (
        (old_roles, old_files, old_api, 0), (new_roles, new_files, new_api, 1)
    ):
        snapshot = Snapshot(api=api)
        assembler = _Assembler(snapshot)
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
