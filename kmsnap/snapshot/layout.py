"""Where each entity goes in a snapshot directory: slugs, file layout, and file roles.

Pure: ``render_files`` hands a ``Snapshot``'s files to a callback one at a time, ``kmsnap.yaml``
first (the writer stores each as it comes); ``render_snapshot`` collects them into a dict;
``classify`` says what a file of an existing snapshot holds.
"""

# Decisions: every product directory holds all four collection files, ``[]`` when empty, so
# "no events" is explicit; ``_unassigned/`` and ``_other/`` files exist only when they hold
# something; ``<rel>.stats.yaml`` (with stats) only beside a file where some entity has usage
# fields; an unknown kind whose name is not a safe file name gets a slug, and ``kmsnap.yaml``
# maps it back under ``other_kinds``.

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from operator import itemgetter, methodcaller
from typing import Any

from kmsnap.errors import SnapshotError
from kmsnap.model import (
    ABSENT_KINDS,
    CONTAINER_KINDS,
    KINDS,
    PRODUCT_KINDS,
    Record,
    Snapshot,
    entity_name,
    kind_for_rel,
    order_all,
    order_fields,
)
from kmsnap.snapshot import canonical, packed
from kmsnap.snapshot.packed import PackedRecords

FORMAT_VERSION = 1
META_FILE = "kmsnap.yaml"
UNASSIGNED = "_unassigned"
OTHER = "_other"
# A container's own file (account.yaml, product.yaml) sits at this depth of the tree
# (account dir / account.yaml, account dir / product dir / product.yaml).
_CONTAINER_DEPTH: dict[str, int] = {kind: i + 2 for i, kind in enumerate(CONTAINER_KINDS)}
# File stems that are never a collection inside a product directory.
_NOT_PRODUCT_FILES = frozenset({*CONTAINER_KINDS, *(KINDS[k].rel for k in CONTAINER_KINDS)})
STATS_SUFFIX = ".stats.yaml"
SLUG_NAME_CHARS = 60

_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_SAFE_STEM = re.compile(r"[a-z0-9][a-z0-9_-]{0,59}\Z")
# Snapshots get checked out on Windows too, where these names are devices.
_WINDOWS_RESERVED = frozenset(
    ["con", "prn", "aux", "nul"] + [f"{p}{i}" for p in ("com", "lpt") for i in range(10)]
)


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
    out = order_fields(kind, record)
    if "id" not in out:
        raise SnapshotError(f"a {kind} without an id cannot be stored: {dict(record)!r:.80}")
    return out


def _sort_key(kind: str) -> Any:
    """Name (title for metrics), then id; a missing or non-string name sorts as empty."""
    if kind not in KINDS:
        return lambda item: (entity_name(kind, item[1]) or "", item[0])
    field = KINDS[kind].name_field

    def key(item: tuple[str, Record]) -> tuple[str, str]:
        name = item[1].get(field)
        return (name if type(name) is str else "", item[0])

    return key


_SURROGATE = re.compile("[\ud800-\udfff]")
_NAME = {kind: methodcaller("get", spec.name_field) for kind, spec in KINDS.items()}
_PRODUCT_ID = methodcaller("get", "product_id")
_PARENT_TYPES = frozenset({str, type(None)})


def _encoded(data: str | bytes, kind: str, records: list[Record]) -> bytes:
    """The file's bytes; a lone surrogate (valid JSON, ``"\ud800"``) is refused by name.

    PyYAML reads the escape back as a lone surrogate, which no UTF-8 output can carry (every
    later ``diff --format json`` or ``log`` would fail), so the snapshot readers refuse it and
    the writer must not write it.
    """
    if isinstance(data, str):
        data = data.encode()
    if canonical.has_surrogate_escape(data):
        for record in records:
            for key, value in record.items():
                if _SURROGATE.search(key) or _SURROGATE.search(canonical.format_value(value)):
                    raise SnapshotError(
                        f"cannot store {kind} {ascii(record.get('id'))[:80]}: field "
                        f"{ascii(key)[:80]} holds a lone surrogate (a \\ud800-\\udfff escape "
                        "that is no character); fix the value in Kissmetrics"
                    )
    return data


def _sorted(kind: str, items: list[tuple[str, Record]]) -> list[tuple[str, Record]]:
    """``items`` by name (title for metrics), then id; C-level when every name is a string."""
    getter = _NAME.get(kind)
    if getter is not None and items:
        names = list(map(getter, map(itemgetter(1), items)))
        if _STR_ONLY.issuperset(map(type, names)):
            # ids are unique, so the records themselves are never compared
            ordered = sorted(zip(names, map(itemgetter(0), items), items, strict=True))
            return list(map(itemgetter(2), ordered))
    return sorted(items, key=_sort_key(kind))


_STR_ONLY = frozenset({str})


def _ordered_all(kind: str, records: list[Record]) -> list[Record]:
    """Each record in canonical key order; a record already in it is kept, not copied."""
    for record in records:
        if "id" not in record:
            _ordered(kind, record)  # raises, naming it
    return order_all(kind, records)


Emit = Callable[[str, bytes], None]  # takes one file: posix relpath, bytes


class _Renderer:
    def __init__(self, snapshot: Snapshot, with_stats: bool, emit: Emit) -> None:
        self.snapshot = snapshot
        self.with_stats = with_stats
        self.emit = emit

    def mapping(self, rel: str, kind: str, entity_id: str, record: Record) -> None:
        self.emit(rel, _encoded(canonical.dump_mapping(_ordered(kind, record)), kind, [record]))
        usage = self.snapshot.stats.get(kind, {}).get(entity_id) if self.with_stats else None
        if usage:
            stats = _ordered(kind, {**usage, "id": record.get("id", entity_id)})
            stats_rel = rel[: -len(".yaml")] + STATS_SUFFIX
            self.emit(stats_rel, _encoded(canonical.dump_mapping(stats), kind, [stats]))

    def collection(self, rel: str, kind: str, items: list[tuple[str, Record]]) -> None:
        items = _sorted(kind, items)
        records = _ordered_all(kind, list(map(itemgetter(1), items)))
        self.emit(rel, _encoded(canonical.dump_collection_bytes(records), kind, records))
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
            data = canonical.dump_collection_bytes(stats)
            self.emit(stem + STATS_SUFFIX, _encoded(data, kind, stats))


    def packed(self, kind: str, rel: str, records: PackedRecords,
               product_dirs: Mapping[str, str]) -> None:
        """The files of a packed kind: each product's rows joined in order, with the records
        kept aside as dicts encoded here and put in their places."""
        buckets: dict[str, list[_Block]] = {pid: [] for pid in product_dirs}
        loose: list[_Block] = []
        field = KINDS[kind].name_field
        names = packed.sort_names(records.texts, field)
        for name, (entity_id, text, (product_id, _account)) in zip(
                names, records.rows(), strict=True):
            buckets.get(product_id, loose).append((name, entity_id, text, entity_id))
        del names
        aside: dict[str | None, list[tuple[str, Record]]] = {}
        for entity_id, record in records.aside.items():
            owner = _parent_key(record.get("product_id"))
            aside.setdefault(owner if owner in buckets else None, []).append((entity_id, record))
        for product_id, rows in buckets.items():
            self.blocks(f"{product_dirs[product_id]}/{rel}.yaml", kind, rows,
                        aside.get(product_id, []))
        if loose or None in aside:
            self.blocks(f"{UNASSIGNED}/{rel}.yaml", kind, loose, aside.get(None, []))

    def blocks(self, rel: str, kind: str, rows: list[_Block],
               items: list[tuple[str, Record]]) -> None:
        if items:  # encoded as a dict-only file would be, then split into its records' blocks
            # in the file's order, so the first one refused is the one a plain pull names
            items = _sorted(kind, items)
            records = _ordered_all(kind, [record for _, record in items])
            data = _encoded(canonical.dump_collection_bytes(records), kind, records)
            split = packed.split_blocks(data, len(records))
            if split is None:
                raise SnapshotError(f"cannot store {kind} records in {rel}: their canonical "
                                    "text does not split into one block each")
            key = _sort_key(kind)
            rows = rows + [(key(item)[0], item[0], block, item[1].get("id", item[0]))
                           for item, block in zip(items, split, strict=True)]
        rows.sort(key=_BLOCK_ORDER)
        self.emit(rel, packed.join_blocks(list(map(itemgetter(2), rows))))
        by_id = self.snapshot.stats.get(kind, {}) if self.with_stats else {}
        stats = [_ordered(kind, {**by_id[entity_id], "id": shown_id})
                 for _, entity_id, _, shown_id in rows if by_id.get(entity_id)]
        if stats:
            data = canonical.dump_collection_bytes(stats)
            self.emit(rel[: -len(".yaml")] + STATS_SUFFIX, _encoded(data, kind, stats))


_Block = tuple[str, str, bytes, Any]  # sort name, id, canonical text, the id its stats show
_BLOCK_ORDER = itemgetter(0, 1)  # name, then id: ids are unique, so texts are never compared


def render_snapshot(snapshot: Snapshot, *, with_stats: bool = False) -> dict[str, bytes]:
    """Every file of the snapshot directory: posix relpath -> bytes."""
    files: dict[str, bytes] = {}
    render_files(snapshot, files.__setitem__, with_stats=with_stats)
    return files


def render_files(snapshot: Snapshot, emit: Emit, *, with_stats: bool = False) -> None:
    """Every file of the snapshot directory, one at a time to ``emit``, ``kmsnap.yaml``
    first (the atomic writer proves a half-written tree by it); nothing is kept, so a
    writer holds one file's bytes at a time."""
    other_kinds = sorted(kind for kind in snapshot.entities if kind not in KINDS)
    for kind in other_kinds:  # what could not be read back must not be written
        problem = kind_name_problem(kind)
        if problem is not None:
            raise SnapshotError(
                f"cannot store an unknown collection: {problem}: {ascii(kind):.120}"
            )
    stems = _other_stems(other_kinds)
    meta: Record = {"format": FORMAT_VERSION, "api": snapshot.api, "counts": snapshot.counts()}
    if snapshot.source != "core":  # said only when not Core: a Core header stays as it was
        meta["source"] = snapshot.source
    renamed = {stem: kind for kind, stem in stems.items() if stem != kind}
    if renamed:  # kinds whose names are not safe file names: the file says which kind it holds
        meta["other_kinds"] = renamed
    emit(META_FILE, _encoded(canonical.dump_mapping(meta), "snapshot", [meta]))

    out = _Renderer(snapshot, with_stats, emit)
    accounts = snapshot.of("account")
    account_dirs = _unique_slugs({i: entity_name("account", r) for i, r in accounts.items()})
    for account_id, record in accounts.items():
        out.mapping(f"{account_dirs[account_id]}/account.yaml", "account", account_id, record)

    by_account: dict[str, dict[str, Record]] = {}
    loose_products: list[tuple[str, Record]] = []
    for product_id, record in snapshot.of("product").items():
        parent = _parent_key(record.get("account_id"))
        if parent is not None and parent in accounts:
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
        if kind in ABSENT_KINDS.get(snapshot.source, ()) and not snapshot.of(kind):
            continue  # a kind the source cannot serve (v3: metrics) gets no empty files
        rel = KINDS[kind].rel
        buckets: dict[str, list[tuple[str, Record]]] = {pid: [] for pid in product_dirs}
        loose: list[tuple[str, Record]] = []
        by_id = snapshot.of(kind)
        if isinstance(by_id, PackedRecords):
            out.packed(kind, rel, by_id, product_dirs)
            continue
        items = list(by_id.items())
        parents = list(map(_PRODUCT_ID, map(itemgetter(1), items)))
        if not _PARENT_TYPES.issuperset(map(type, parents)):
            parents = [p if type(p) is str else _parent_key(p) for p in parents]
        put = buckets.get
        for item, parent in zip(items, parents, strict=True):
            put(parent, loose).append(item)
        for product_id, items in buckets.items():
            out.collection(f"{product_dirs[product_id]}/{rel}.yaml", kind, items)
        if loose:
            out.collection(f"{UNASSIGNED}/{rel}.yaml", kind, loose)

    for kind in other_kinds:
        if snapshot.entities[kind]:
            items = list(snapshot.entities[kind].items())
            out.collection(f"{OTHER}/{stems[kind]}.yaml", kind, items)


def _parent_key(value: Any) -> str | None:
    return None if value is None else str(value)


def _other_stems(kinds: list[str]) -> dict[str, str]:
    safe = {k: k for k in kinds if _SAFE_STEM.match(k) and k not in _WINDOWS_RESERVED}
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


# --- kind names -----------------------------------------------------------------------

# A kind kmsnap does not know is the rel it was found under (``segments``, ``cohorts``,
# ``funnel-reports``, a curie or URI at most). It ends up in every report, so a snapshot
# may only name one with a printable, single-line string of reasonable length.
KIND_NAME_CHARS = 100


def kind_name_problem(kind: str) -> str | None:
    """Why ``kind`` cannot be a kind name, or None when it can."""
    if not kind:
        return "an empty kind name"
    if len(kind) > KIND_NAME_CHARS:
        return f"a kind name longer than {KIND_NAME_CHARS} characters"
    if not kind.isprintable():  # control characters, line breaks, bidi overrides, ...
        return "a kind name with control or invisible characters"
    if kind != kind.strip():
        return "a kind name with leading or trailing spaces"
    return None


def _shown(text: str) -> str:
    """``text`` for an error message: printable as it is, else with escapes."""
    return text if text.isprintable() else ascii(text)[1:-1]


def check_kind_name(kind: str, *, path: str, line: int | None = None, key: str = "") -> str:
    """``kind``, or a ``SnapshotError`` naming ``path`` (and ``line``) when it cannot be one."""
    problem = kind_name_problem(kind)
    if problem is not None:
        where = f"{key}: " if key else ""
        raise SnapshotError(f"{where}{problem}: {ascii(kind)[:KIND_NAME_CHARS + 20]}",
                            path=_shown(path), line=line)
    return kind


# --- reading back ------------------------------------------------------------------


class Role:
    """What one snapshot file holds."""

    __slots__ = ("kind", "mapping", "stats")

    def __init__(self, kind: str, mapping: bool, stats: bool) -> None:
        self.kind = kind
        self.mapping = mapping  # one entity (account.yaml, product.yaml) rather than a list
        self.stats = stats

    @property
    def always(self) -> bool:
        # Accounts and products are always loaded whole: the diff groups by their names.
        return self.kind in _CONTAINER_DEPTH


def classify(rel: str, other_kinds: Mapping[str, str]) -> Role | None:
    parts = rel.split("/")
    if not rel.endswith(".yaml") or rel == META_FILE or any(p.startswith(".") for p in parts):
        return None
    name = parts[-1]
    stats = name.endswith(STATS_SUFFIX)
    stem = name[: -len(STATS_SUFFIX)] if stats else name[: -len(".yaml")]
    if len(parts) == 2 and parts[0] == UNASSIGNED:
        return Role(check_kind_name(kind_for_rel(stem), path=rel), False, stats)
    if len(parts) == 2 and parts[0] == OTHER:
        if stem in other_kinds:
            kind = check_kind_name(
                other_kinds[stem], path=META_FILE, key=f"other_kinds {_shown(stem)!r}"
            )
        else:
            kind = check_kind_name(stem, path=rel)
        return Role(kind, False, stats)
    if _CONTAINER_DEPTH.get(stem) == len(parts):
        return Role(stem, True, stats)
    if len(parts) == 3 and stem not in _NOT_PRODUCT_FILES:
        return Role(check_kind_name(kind_for_rel(stem), path=rel), False, stats)
    raise SnapshotError("unexpected file in a snapshot", path=_shown(rel))
