"""What the data dictionary page shows, as plain JSON-ready data: accounts, products, kinds
with their columns, one compact array per entity, and each entity's timeline from git.

Pure: a ``Snapshot`` and (optionally) ``kmsnap log``'s entries in, a dict out. Entities are
arrays rather than objects (``ENTITY_FIELDS``) so that 100,000 of them stay a few MiB.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from kmsnap.diff.changeset import Change
from kmsnap.export.table import BASE_COLUMNS, USAGE_COLUMNS, build_table
from kmsnap.export.usage import can_be_stale, last_uses, newest_use, stats_kinds
from kmsnap.history.walk import LogEntry
from kmsnap.model import KINDS, kind_sort_key

__all__ = [
    "DATA_VERSION", "DEFAULT_STALE_DAYS", "ENTITY_FIELDS", "FLAGS", "build_page_data",
    "change_label",
]

DATA_VERSION = 1
DEFAULT_STALE_DAYS = 90
# The order of an entity's array in the page's data.
ENTITY_FIELDS = ("kind", "account", "product", "id", "name", "values", "flags", "timeline")
# Bits of an entity's ``flags``.
FLAGS = {"hidden": 1, "no_description": 2, "stale": 4}
_SHORT = 12


def change_label(change: Change) -> tuple[str, str]:
    """(what happened, detail) for one change in a timeline (the page's and kmsnap show's)."""
    fields = change.fields or {}
    if change.change == "renamed":
        olds = [s.get("old") for s in fields.values() if isinstance(s.get("old"), str)]
        return "renamed", f"from {olds[0]!r}" if olds else ""
    if change.change == "recreated":
        return "re-created", f"was {change.old_id}"
    if change.change == "changed":
        visible = fields.get("is_visible")
        if visible is not None and visible.get("old") is True and visible.get("new") is False:
            return "hidden", ", ".join(sorted(set(fields) - {"is_visible"}))
        if visible is not None and visible.get("old") is False and visible.get("new") is True:
            return "shown", ", ".join(sorted(set(fields) - {"is_visible"}))
        return "changed", ", ".join(sorted(fields))
    return str(change.change), ""


def _timelines(entries: Sequence[LogEntry]) -> dict[tuple[str, str], list[list[str]]]:
    """(kind, id) -> [[date, commit (12 characters), what, detail, subject], ...], oldest
    first; a re-created entity continues its predecessor's timeline."""
    out: dict[tuple[str, str], list[list[str]]] = {}
    for entry in reversed(entries):
        commit = entry.commit
        for change in entry.changes:
            key = (change.kind, change.id)
            if change.change == "recreated" and change.old_id is not None:
                out[key] = out.pop((change.kind, change.old_id), [])
            what, detail = change_label(change)
            out.setdefault(key, []).append(
                [commit.date, commit.commit[:_SHORT], what, detail, commit.subject]
            )
    return out


def build_page_data(
    snapshot: Any,
    *,
    entries: Sequence[LogEntry] | None = None,
    title: str = "Kissmetrics catalog",
    source: str = "",
    stale_days: int = DEFAULT_STALE_DAYS,
    kinds: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The page's data for ``snapshot`` (a ``model.Snapshot``).

    ``entries`` (``kmsnap log``'s, newest first) gives each entity its timeline. Stale: the
    snapshot has usage stats for the entity's kind and its last use (``last_used_at``/
    ``last_sent_at``) is missing or more than ``stale_days`` before the newest use in the
    whole snapshot (so the same snapshot is always judged the same, whenever the page is built).
    """
    table = build_table(snapshot, kinds=kinds)
    accounts: dict[str, int] = {}
    products: dict[str, int] = {}
    account_list: list[list[Any]] = []
    product_list: list[list[Any]] = []
    kind_names = sorted({row["kind"] for row in table.rows}, key=kind_sort_key)
    kind_index = {kind: i for i, kind in enumerate(kind_names)}
    columns: dict[str, list[str]] = {kind: [] for kind in kind_names}
    base = set(BASE_COLUMNS) | set(USAGE_COLUMNS)
    for row in table.rows:
        used = columns[row["kind"]]
        for column in table.columns:
            if column not in base and column not in used and row.get(column) is not None:
                used.append(column)
    order = {c: i for i, c in enumerate(table.columns)}
    for used in columns.values():
        used.sort(key=order.__getitem__)
    last_use = last_uses(snapshot)
    newest = newest_use(last_use)
    cutoff = newest - timedelta(days=stale_days) if newest is not None else None
    with_stats = stats_kinds(snapshot)
    timelines = _timelines(entries) if entries is not None else {}
    timeline_list: list[list[list[str]]] = []
    entities: list[list[Any]] = []
    for row in table.rows:
        kind = row["kind"]
        account_at = -1
        if row["account_id"] is not None:
            if row["account_id"] not in accounts:
                accounts[row["account_id"]] = len(account_list)
                account_list.append([row["account_id"], row["account"]])
            account_at = accounts[row["account_id"]]
        product_at = -1
        if row["product_id"] is not None:
            if row["product_id"] not in products:
                products[row["product_id"]] = len(product_list)
                product = snapshot.of("product").get(row["product_id"], {})
                product_list.append([row["product_id"], row["product"], account_at,
                                     product.get("environment")])
            product_at = products[row["product_id"]]
        flags = 0
        if row.get("is_visible") is False:
            flags |= FLAGS["hidden"]
        spec = KINDS.get(kind)
        if spec is not None and "description" in spec.fields and not row.get("description"):
            flags |= FLAGS["no_description"]
        stats = snapshot.stats.get(kind, {}).get(row["id"])
        if cutoff is not None and can_be_stale(kind, with_stats):
            last = last_use.get((kind, row["id"]))
            if last is None or last < cutoff:
                flags |= FLAGS["stale"]
        timeline = -1
        events = timelines.get((kind, row["id"]))
        if events:
            timeline = len(timeline_list)
            timeline_list.append(events)
        entities.append([
            kind_index[kind], account_at, product_at, row["id"], row["name"],
            [row.get(c) for c in columns[kind]] + [stats],
            flags, timeline,
        ])
    return {
        "version": DATA_VERSION,
        "title": title,
        "source": source,
        "history": entries is not None,
        "stats": bool(with_stats),
        "stale_days": stale_days,
        "newest_use": newest.isoformat() if newest is not None else None,
        # "documented": per column, whether the kind documents it (the page shows an
        # undocumented column only where the entity has it).
        "kinds": [{"name": k, "columns": columns[k],
                   "documented": [c in (KINDS[k].fields if k in KINDS else ()) for c in columns[k]]}
                  for k in kind_names],
        "accounts": account_list,
        "products": product_list,
        "entities": entities,
        "timelines": timeline_list,
        "entity_fields": list(ENTITY_FIELDS),
        "flags": dict(FLAGS),
    }


def timeline_of(data: Mapping[str, Any], entity_id: str) -> list[list[str]]:
    """The timeline of the entity with ``entity_id`` in built page data (for tests, scripts)."""
    for entity in data["entities"]:
        if entity[3] == entity_id and entity[7] >= 0:
            return list(data["timelines"][entity[7]])
    return []
