"""Compare two snapshots and say what was added, removed, changed, renamed or re-created.

Pure: takes two ``Snapshot`` objects, returns a ``ChangeSet``; matching is linear (dict
lookups and ``==``), and DeepDiff only ever sees two nested values of one entity that differ.
This module is the public entry point; the work is split by job:

- ``kmsnap.diff.matching``: entities matched by id, re-creations paired, renames told apart;
- ``kmsnap.diff.fields``: which fields of one entity differ (dotted paths, DeepDiff);
- ``kmsnap.diff.severity``: how much each change matters (rules declared in ``model.KINDS``);
- ``kmsnap.diff.changeset``: the ``Change`` and ``ChangeSet`` it returns, and their JSON.

Every name importable from here before the split still is.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from kmsnap.diff.changeset import CHANGE_TYPES, SCHEMA_VERSION, Change, ChangeSet
from kmsnap.diff.matching import Places, diff_kind
from kmsnap.diff.severity import SEVERITIES, severity_at_least
from kmsnap.model import KIND_ORDER, ChangeType, Severity, Snapshot, kind_for_rel, kind_sort_key

__all__ = [
    "CHANGE_TYPES",
    "KIND_ORDER",
    "SCHEMA_VERSION",
    "SEVERITIES",
    "Change",
    "ChangeSet",
    "ChangeType",
    "Severity",
    "diff_snapshots",
    "kind_sort_key",
    "normalize_kinds",
    "severity_at_least",
]


def normalize_kinds(kinds: Iterable[str]) -> set[str]:
    """Singular kind names for ``kinds``, which may be singular or plural (``events``)."""
    return {kind_for_rel(k) for k in kinds}


def diff_snapshots(
    old: Snapshot,
    new: Snapshot,
    *,
    old_label: str = "old",
    new_label: str = "new",
    with_stats: bool = False,
    kinds: Collection[str] | None = None,
    ignore_fields: Mapping[str, Collection[str]] | None = None,
) -> ChangeSet:
    """Compare ``old`` with ``new``: entities matched by kind and id, never by position or name.

    ``with_stats`` compares usage fields too; ``kinds`` (singular or plural) keeps only those
    kinds; ``ignore_fields`` (kind -> field names or dotted paths) leaves fields out.
    """
    wanted = normalize_kinds(kinds) if kinds is not None else None
    ignored = {kind_for_rel(k): frozenset(v) for k, v in (ignore_fields or {}).items()}
    places = Places(old, new)
    changes: list[Change] = []
    for kind in sorted(set(old.entities) | set(new.entities), key=kind_sort_key):
        if wanted is not None and kind not in wanted:
            continue
        changes.extend(
            diff_kind(kind, old, new, places, with_stats, ignored.get(kind, frozenset()))
        )
    changes.sort(key=_change_sort_key)
    account_names: dict[str, str] = {}
    product_names: dict[str, str] = {}
    for change in changes:
        if change.account_id is not None and change.account_id in places.account_names:
            account_names[change.account_id] = places.account_names[change.account_id]
        if change.product_id is not None and change.product_id in places.product_names:
            product_names[change.product_id] = places.product_names[change.product_id]
    return ChangeSet(
        old_label=old_label,
        new_label=new_label,
        changes=changes,
        account_names=dict(sorted(account_names.items())),
        product_names=dict(sorted(product_names.items())),
    )


def _change_sort_key(change: Change) -> tuple[Any, ...]:
    return (
        kind_sort_key(change.kind),
        _none_first(change.account_id),
        _none_first(change.product_id),
        _none_first(change.name),
        change.id,
    )


def _none_first(value: str | None) -> tuple[int, str]:
    return (0, "") if value is None else (1, value)
