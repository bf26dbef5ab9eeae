"""The catalog's entity kinds and what kmsnap knows about each: pure data, no I/O.

Every per-kind rule (collection rel, name field, canonical field order, parent, whether
it is a container, the severity rule of each field) lives in the ``KINDS`` table, not in
scattered ifs; the vocabulary of a comparison (``ChangeType``, ``Severity``) lives here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

Record = dict[str, Any]


class _StrEnum(str, Enum):
    """A str enum that is its value everywhere: ``==``, hashing, ``json.dumps``, f-strings,
    ``repr`` (callers sort by ``repr``).

    ``enum.StrEnum`` needs Python 3.11; a plain ``(str, Enum)`` formats as ``Class.MEMBER``
    in f-strings from 3.11 on, which would change every report.
    """

    def __str__(self) -> str:
        return str(self.value)

    def __repr__(self) -> str:
        return repr(self.value)


class ChangeType(_StrEnum):
    """What happened to one entity, in the order of the summary and of every report."""

    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"
    RENAMED = "renamed"
    RECREATED = "recreated"


class Severity(_StrEnum):
    """How much a change matters downstream, highest first."""

    BREAKING = "breaking"
    WARNING = "warning"
    INFO = "info"


class FieldRule(_StrEnum):
    """How a change of one field weighs (DESIGN.md's severity rules)."""

    BREAKING = "breaking"  # any change breaks a query or a report downstream
    HIDDEN = "hidden"  # true -> false is a warning: the entity disappears from pickers
    RETIRED = "retired"  # becoming "canceled" (or "cancelled") is a warning


# The rules of a kind that declares none, and of kinds kmsnap does not know.
DEFAULT_FIELD_RULES: Mapping[str, FieldRule] = MappingProxyType({
    "is_visible": FieldRule.HIDDEN,
    "visible": FieldRule.HIDDEN,  # the REST API v3's name for is_visible
    "status": FieldRule.RETIRED,
})

# Usage counters and usage timestamps: traffic, not catalog. Kept out of the
# catalog files (``<kind>.stats.yaml`` with --with-stats) and out of diffs.
USAGE_FIELDS: frozenset[str] = frozenset(
    {"total", "first_used_at", "last_used_at", "first_sent_at", "last_sent_at"}
)


@dataclass(frozen=True)
class KindSpec:
    """What kmsnap knows about one documented entity kind."""

    kind: str  # singular: "event"
    rel: str  # the collection's link relation and file stem: "events"
    name_field: str  # "name", or "title" for metrics
    fields: tuple[str, ...]  # documented fields in canonical order, "id" first
    parent: str | None  # kind of the parent entity: "product" for an event
    # A container scopes other entities: it has a directory of its own in a snapshot, its
    # items link to scoped collections, reports group changes under it (account, product).
    container: bool = False
    # Field -> how a change of it weighs; a field without a rule is info.
    field_rules: Mapping[str, FieldRule] = field(default_factory=lambda: DEFAULT_FIELD_RULES)

    @property
    def parent_field(self) -> str | None:
        """The field holding the parent's id (``product_id``, ``account_id``)."""
        return f"{self.parent}_id" if self.parent else None


KINDS: dict[str, KindSpec] = {
    spec.kind: spec
    for spec in (
        KindSpec(
            "account", "accounts", "name",
            ("id", "name", "status", "created_at", "updated_at", "contact"),
            None,
            container=True,
        ),
        KindSpec(
            "product", "products", "name",
            ("id", "account_id", "name", "url", "status", "environment", "timezone",
             "created_at"),
            "account",
            container=True,
        ),
        KindSpec(
            "report", "reports", "name",
            ("id", "account_id", "product_id", "name", "report_type", "created_at"),
            "product",
        ),
        KindSpec(
            "event", "events", "name",
            ("id", "product_id", "name", "display_name", "description", "is_visible",
             "total", "first_used_at", "last_used_at", "first_sent_at", "last_sent_at"),
            "product",
        ),
        KindSpec(
            "property", "properties", "name",
            ("id", "product_id", "name", "display_name", "description", "is_visible", "type",
             "first_used_at", "last_used_at", "first_sent_at", "last_sent_at"),
            "product",
            field_rules={**DEFAULT_FIELD_RULES, "type": FieldRule.BREAKING},
        ),
        KindSpec(
            "metric", "metrics", "title",
            ("id", "product_id", "title", "description", "is_visible", "unit_type", "status",
             "color", "sort_index", "config_last_changed_at"),
            "product",
            # A metric's ``status`` is the state of its computation ("pending", ...), not a
            # retirement, so it has no RETIRED rule.
            field_rules={"is_visible": FieldRule.HIDDEN, "unit_type": FieldRule.BREAKING},
        ),
    )
}

# Documented kinds in catalog order (parents first): the order of files, of the root
# directory, of a crawl's assembly and of every report; unknown rels follow alphabetically.
KIND_ORDER: tuple[str, ...] = tuple(KINDS)
_KIND_RANK = {kind: i for i, kind in enumerate(KIND_ORDER)}

# Container kinds, outermost first: an account holds products, a product the rest.
CONTAINER_KINDS: tuple[str, ...] = tuple(k for k, spec in KINDS.items() if spec.container)

# Kinds with a parent (everything a removed container may take with it), in catalog order.
CHILD_KINDS: tuple[str, ...] = tuple(k for k, spec in KINDS.items() if spec.parent is not None)

# Kinds whose entities live under a product directory, in file order.
PRODUCT_KINDS: tuple[str, ...] = tuple(
    k for k, spec in KINDS.items() if spec.parent == "product"
)

KIND_BY_REL: dict[str, str] = {spec.rel: spec.kind for spec in KINDS.values()}

# Sources (``Snapshot.source``) and the documented kinds each one cannot serve: a snapshot
# from such a source lacks them by nature, not by deletion (the REST API v3 lists no metrics).
SOURCES: tuple[str, ...] = ("core", "v3")
ABSENT_KINDS: Mapping[str, frozenset[str]] = MappingProxyType({"v3": frozenset({"metric"})})


def kind_sort_key(kind: str) -> tuple[int, str]:
    """Sort key for kinds: the documented order, then unknown rels alphabetically."""
    return (_KIND_RANK.get(kind, len(KIND_ORDER)), kind)


def is_container(kind: str) -> bool:
    """Whether entities of ``kind`` scope others (accounts, products); unknown kinds do not."""
    spec = KINDS.get(kind)
    return spec is not None and spec.container


def field_rules(kind: str) -> Mapping[str, FieldRule]:
    """The severity rule of each field of ``kind`` (the default rules for an unknown kind)."""
    spec = KINDS.get(kind)
    return spec.field_rules if spec else DEFAULT_FIELD_RULES


def kind_for_rel(rel: str) -> str:
    """The kind for a collection rel: ``events`` -> ``event``; an unknown rel is its own kind."""
    return KIND_BY_REL.get(rel, rel)


def rel_for_kind(kind: str) -> str:
    """The collection rel (and file stem) for a kind; an unknown kind is its own rel."""
    spec = KINDS.get(kind)
    return spec.rel if spec else kind


def name_field(kind: str) -> str:
    """The field that names an entity of this kind (``title`` for metrics)."""
    spec = KINDS.get(kind)
    return spec.name_field if spec else "name"


def name_fields(kind: str) -> tuple[str, ...]:
    """The fields that may name an entity, first match wins: the kind's name field, and for
    a kind kmsnap does not know, ``name`` then ``title``."""
    spec = KINDS.get(kind)
    return (spec.name_field,) if spec else ("name", "title")


def entity_name(kind: str, record: Record) -> str | None:
    """The entity's name (title for metrics), or None when it has none or not a string."""
    value = None
    for field_name in name_fields(kind):
        value = record.get(field_name)
        if value is not None:
            break
    return value if isinstance(value, str) else None


def order_fields(kind: str, record: Mapping[str, Any]) -> Record:
    """A copy of ``record`` in canonical key order: id, documented fields, then the rest
    sorted; ``links`` is never kept."""
    spec = KINDS.get(kind)
    known = spec.fields if spec else ("id",)
    out: Record = {key: record[key] for key in known if key in record}
    if len(out) != len(record):  # most records hold only documented fields: skip the sort
        for key in sorted(key for key in record if key not in out and key != "links"):
            out[key] = record[key]
    return out


def order_all(kind: str, records: list[Record]) -> list[Record]:
    """``order_fields`` of each record; ``records`` itself when every one is in that order
    already (checked once per distinct key sequence, not per record)."""
    shapes = {shape: None for shape in map(tuple, records)}
    if all(tuple(order_fields(kind, dict.fromkeys(shape))) == shape for shape in shapes):
        return records
    return [order_fields(kind, record) for record in records]


def split_usage(record: Record) -> tuple[Record, Record]:
    """Split a record into (catalog fields, usage fields); neither keeps ``links``."""
    catalog: Record = {}
    usage: Record = {}
    for key, value in record.items():
        if key == "links":
            continue
        (usage if key in USAGE_FIELDS else catalog)[key] = value
    return catalog, usage


@dataclass
class Snapshot:
    """A whole catalog in memory.

    ``entities[kind][id]`` is the record as the API sent it, minus ``links`` and
    minus usage fields; ``stats[kind][id]`` holds the usage fields (filled only
    when pulled or loaded with stats). Kinds are the singular names of ``KINDS``
    or, for collections kmsnap does not know, the rel they were found under.
    """

    api: str = ""
    # A pull may hold a kind as ``kmsnap.snapshot.packed.PackedRecords`` (read-only).
    entities: dict[str, Mapping[str, Record]] = field(default_factory=dict)
    stats: dict[str, dict[str, Record]] = field(default_factory=dict)
    source: str = "core"  # the API it came from (``SOURCES``): ids of two sources never match

    def of(self, kind: str) -> Mapping[str, Record]:
        """The entities of one kind by id (an empty dict when there are none)."""
        return self.entities.get(kind, {})

    def add(self, kind: str, record: Record) -> None:
        """Add (or replace) one entity, splitting its usage fields into ``stats``."""
        catalog, usage = split_usage(record)
        entity_id = str(catalog["id"])
        self.writable(kind)[entity_id] = catalog
        if usage:
            self.stats.setdefault(kind, {})[entity_id] = usage

    def writable(self, kind: str) -> dict[str, Record]:
        """The entities of one kind as a dict to add to (a packed kind becomes one)."""
        by_id = self.entities.get(kind)
        if not isinstance(by_id, dict):
            by_id = self.entities[kind] = dict(by_id or {})
        return by_id

    def counts(self) -> dict[str, int]:
        """Entities per kind, sorted by kind."""
        return {kind: len(self.entities[kind]) for kind in sorted(self.entities)}

    def size(self) -> int:
        """The number of entities of every kind."""
        return sum(len(by_id) for by_id in self.entities.values())
