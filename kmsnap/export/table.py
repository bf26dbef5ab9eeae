"""One row per entity: the columns and their documented order, the rows in catalog order.

Columns, always in this order: ``account_id``, ``account``, ``product_id``, ``product``,
``kind``, ``id``, ``name`` (a metric's ``title``), then every documented field of every kind
in ``model.KINDS`` order (the same columns whatever the snapshot holds, so a sheet keeps its
shape; with ``kinds``, the fields of those kinds), then undocumented fields found in the
snapshot (sorted), then the usage fields when the snapshot has stats, then
``first_appeared``, ``first_commit``, ``last_changed``, ``last_commit`` when dates from git
are asked for. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kmsnap.diff.changeset import Change
from kmsnap.model import (
    KINDS,
    USAGE_FIELDS,
    Snapshot,
    entity_name,
    kind_sort_key,
    name_fields,
)

__all__ = [
    "BASE_COLUMNS",
    "HISTORY_COLUMNS",
    "USAGE_COLUMNS",
    "Dates",
    "Table",
    "build_table",
    "entity_dates",
    "field_columns",
]

BASE_COLUMNS: tuple[str, ...] = (
    "account_id", "account", "product_id", "product", "kind", "id", "name",
)
# In the order the API documents them on an event (total first, then the timestamps).
USAGE_COLUMNS: tuple[str, ...] = (
    "total", "first_used_at", "last_used_at", "first_sent_at", "last_sent_at",
)
HISTORY_COLUMNS: tuple[str, ...] = ("first_appeared", "first_commit", "last_changed", "last_commit")
_NAMES = frozenset(spec.name_field for spec in KINDS.values())
# A short commit: enough to find it, short enough for a cell.
_SHORT = 12

# (kind, id) -> {"first_appeared", "first_commit", "last_changed", "last_commit"}
Dates = Mapping[tuple[str, str], Mapping[str, str]]


def field_columns(kinds: Iterable[str] | None = None) -> tuple[str, ...]:
    """Every documented field of every kind (or of ``kinds`` only), in ``KINDS`` order, minus
    the base columns and the usage fields."""
    wanted = None if kinds is None else set(kinds)
    out: list[str] = []
    for spec in KINDS.values():
        if wanted is not None and spec.kind not in wanted:
            continue
        for name in spec.fields:
            if name in BASE_COLUMNS or name in _NAMES or name in USAGE_FIELDS or name in out:
                continue
            out.append(name)
    return tuple(out)


@dataclass(frozen=True)
class Table:
    """The columns and the rows (each a dict keyed by column, values as in the snapshot)."""

    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]


def _place(
    snapshot: Snapshot, kind: str, entity_id: str, record: Mapping[str, Any]
) -> dict[str, Any]:
    """account_id, account, product_id, product of one entity (None where it has none)."""
    if kind == "account":
        account_id: Any = entity_id
        product_id: Any = None
    elif kind == "product":
        account_id, product_id = record.get("account_id"), entity_id
    else:
        product_id = record.get("product_id")
        account_id = record.get("account_id")
        if account_id is None and product_id is not None:
            account_id = snapshot.of("product").get(str(product_id), {}).get("account_id")
    account = snapshot.of("account").get(str(account_id), {}) if account_id is not None else {}
    product = snapshot.of("product").get(str(product_id), {}) if product_id is not None else {}
    return {
        "account_id": None if account_id is None else str(account_id),
        "account": entity_name("account", account) if account else None,
        "product_id": None if product_id is None else str(product_id),
        "product": entity_name("product", product) if product else None,
    }


def _sort_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    def text(value: Any) -> tuple[str, str]:
        return ("", "") if value is None else (str(value).casefold(), str(value))

    # Containers before what they hold: an account row has no product, a product row no kind
    # rank below it.
    return (
        text(row["account"]), text(row["account_id"]),
        row["product_id"] is not None, text(row["product"]), text(row["product_id"]),
        kind_sort_key(row["kind"]), text(row["name"]), row["id"],
    )


def build_table(
    snapshot: Snapshot,
    *,
    kinds: Iterable[str] | None = None,
    dates: Dates | None = None,
) -> Table:
    """The snapshot as one row per entity, sorted by account, product, kind, name and id.

    ``kinds`` keeps only those (singular) kinds. Usage columns appear when the snapshot has
    stats; history columns when ``dates`` is given (an entity git never saw has empty ones).
    """
    wanted = set(kinds) if kinds is not None else None
    known = field_columns(wanted)
    extra: set[str] = set()
    rows: list[dict[str, Any]] = []
    for kind in sorted(snapshot.entities, key=kind_sort_key):
        if wanted is not None and kind not in wanted:
            continue
        skip = set(name_fields(kind)) | {"id"}
        for entity_id, record in snapshot.entities[kind].items():
            row: dict[str, Any] = _place(snapshot, kind, entity_id, record)
            row["kind"] = kind
            row["id"] = entity_id
            row["name"] = entity_name(kind, record)
            for key, value in record.items():
                if key in skip or key in ("account_id", "product_id"):
                    continue
                row[key] = value
                if key not in known:
                    extra.add(key)
            row.update(snapshot.stats.get(kind, {}).get(entity_id, {}))
            if dates is not None:
                row.update(dates.get((kind, entity_id), {}))
            rows.append(row)
    columns: list[str] = [*BASE_COLUMNS, *known, *sorted(extra - set(USAGE_COLUMNS))]
    if any(snapshot.stats.get(k) for k in snapshot.stats if wanted is None or k in wanted):
        columns += USAGE_COLUMNS
    if dates is not None:
        columns += HISTORY_COLUMNS
    rows.sort(key=_sort_key)
    return Table(tuple(columns), tuple(rows))


def entity_dates(
    changes: Sequence[tuple[str, str, Change]],
) -> dict[tuple[str, str], dict[str, str]]:
    """First-appeared and last-changed dates per (kind, id) from ``(date, commit, change)``
    triples, oldest first (``kmsnap log``'s history reversed).

    A re-created entity first appears at its re-creation (it has a new id); a rename or a
    field change moves ``last_changed``.
    """
    out: dict[tuple[str, str], dict[str, str]] = {}
    for date, commit, change in changes:
        key = (change.kind, change.id)
        short = commit[:_SHORT]
        if change.change == "removed":
            out.pop(key, None)  # a later entity with the same id starts afresh
            continue
        entry = out.get(key)
        if entry is None or change.change in ("added", "recreated"):
            entry = {"first_appeared": date, "first_commit": short}
            out[key] = entry
        entry["last_changed"] = date
        entry["last_commit"] = short
    return out
