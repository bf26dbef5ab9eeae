"""Match the entities of one kind across two snapshots: by id, never by position or name.

Pure. An id on both sides is a change or a rename (``fields`` decides which fields differ),
an id on one side only is an addition or a removal, and a removed and an added entity of
the same name in the same container are paired as one re-creation. Where an entity lies
(its account and product) and what a rename is come from ``model.KINDS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kmsnap.diff.changeset import Change
from kmsnap.diff.fields import field_changes, same, top_key
from kmsnap.diff.severity import CHANGE_SEVERITY, field_severity
from kmsnap.model import (
    CONTAINER_KINDS,
    KINDS,
    ChangeType,
    Record,
    Severity,
    Snapshot,
    entity_name,
    is_container,
    name_fields,
)

# A place: (account_id, product_id), one id per container kind, outermost first.
Place = tuple[str | None, str | None]
_INNER = CONTAINER_KINDS[-1]  # the container most entities name directly: product


class Places:
    """Container names and parents, new side first, falling back to the old."""

    def __init__(self, old: Snapshot, new: Snapshot) -> None:
        self.names: dict[str, dict[str, str]] = {kind: {} for kind in CONTAINER_KINDS}
        parent = KINDS[_INNER].parent_field or ""
        self.inner_parent: dict[str, str] = {}
        # A removed entity is placed where it was: through the old side's products first.
        self.old_inner_parent: dict[str, str] = {}
        for pid, rec in old.of(_INNER).items():
            if rec.get(parent) is not None:
                self.old_inner_parent[pid] = str(rec[parent])
        for snap in (old, new):  # the new side overwrites the old
            for kind in CONTAINER_KINDS:
                names = self.names[kind]
                for entity_id, rec in snap.of(kind).items():
                    name = entity_name(kind, rec)
                    if name is not None:
                        names[entity_id] = name
            for pid, rec in snap.of(_INNER).items():
                value = rec.get(parent)
                if value is not None:
                    self.inner_parent[pid] = str(value)

    @property
    def account_names(self) -> dict[str, str]:
        return self.names["account"]

    @property
    def product_names(self) -> dict[str, str]:
        return self.names["product"]

    def place(self, kind: str, entity_id: str, record: Record, *, old_side: bool = False) -> Place:
        """(account_id, product_id) of an entity; events find their account via the product.

        A container is in itself and in its ancestors (a product: its account and itself),
        never in the containers below it.
        """
        if is_container(kind):
            ancestors = _ancestors(kind)
            account_id, product_id = (
                entity_id if container == kind
                else _str_or_none(record.get(f"{container}_id")) if container in ancestors
                else None
                for container in CONTAINER_KINDS
            )
            return account_id, product_id
        product_id = _str_or_none(record.get("product_id"))
        account_id = _str_or_none(record.get("account_id"))
        if account_id is None and product_id is not None:
            if old_side:
                account_id = self.old_inner_parent.get(product_id)
            if account_id is None:
                account_id = self.inner_parent.get(product_id)
        return account_id, product_id


def _ancestors(kind: str) -> set[str]:
    out: set[str] = set()
    parent = KINDS[kind].parent
    while parent is not None and parent not in out:
        out.add(parent)
        parent = KINDS[parent].parent
    return out


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _scope(kind: str, where: Place) -> str | None:
    """Where a name must be unique for a re-creation to be recognised: a container's parent
    container, else the innermost container the entity lies in."""
    spec = KINDS.get(kind)
    if spec is not None and spec.container:
        return dict(zip(CONTAINER_KINDS, where, strict=True)).get(spec.parent or "")
    return next((value for value in reversed(where) if value is not None), None)


def diff_kind(
    kind: str,
    old: Snapshot,
    new: Snapshot,
    places: Places,
    with_stats: bool,
    ignored: frozenset[str],
) -> list[Change]:
    """Every change among the entities of ``kind``, unsorted."""
    old_by_id = old.of(kind)
    new_by_id = new.of(kind)
    old_stats = old.stats.get(kind, {}) if with_stats else {}
    new_stats = new.stats.get(kind, {}) if with_stats else {}
    changes: list[Change] = []
    removed: list[str] = []
    for entity_id, old_rec in old_by_id.items():
        new_rec = new_by_id.get(entity_id)
        if new_rec is None:
            removed.append(entity_id)
            continue
        if with_stats:
            old_rec = _with_usage(old_rec, old_stats.get(entity_id))
            new_rec = _with_usage(new_rec, new_stats.get(entity_id))
        if same(old_rec, new_rec):
            continue
        change = _compare(kind, entity_id, old_rec, new_rec, places, ignored)
        if change is not None:
            changes.append(change)
    added = [entity_id for entity_id in new_by_id if entity_id not in old_by_id]
    changes.extend(_pair_recreated(kind, removed, added, old_by_id, new_by_id, places))
    return changes


def _with_usage(record: Record, usage: Record | None) -> Record:
    return {**record, **usage} if usage else record


def _pair_recreated(
    kind: str,
    removed: list[str],
    added: list[str],
    old_by_id: Mapping[str, Record],
    new_by_id: Mapping[str, Record],
    places: Places,
) -> list[Change]:
    """Added and removed entities, pairing a removed and an added one of the same name.

    Several candidates with one name in one scope are paired in id order, which keeps the
    pairing independent of input order and symmetric when the sides are swapped.
    """
    gone: dict[tuple[str | None, str], list[str]] = {}
    for entity_id in removed:
        rec = old_by_id[entity_id]
        name = entity_name(kind, rec)
        if name is not None:
            where = places.place(kind, entity_id, rec, old_side=True)
            gone.setdefault((_scope(kind, where), name), []).append(entity_id)
    came: dict[tuple[str | None, str], list[str]] = {}
    for entity_id in added:
        rec = new_by_id[entity_id]
        name = entity_name(kind, rec)
        if name is not None:
            where = places.place(kind, entity_id, rec)
            came.setdefault((_scope(kind, where), name), []).append(entity_id)
    pairs: dict[str, str] = {}  # new id -> old id
    for key, new_ids in came.items():
        old_ids = gone.get(key)
        if old_ids:
            for new_id, old_id in zip(sorted(new_ids), sorted(old_ids), strict=False):
                pairs[new_id] = old_id
    paired_old = set(pairs.values())
    out: list[Change] = []
    for entity_id in removed:
        if entity_id not in paired_old:
            rec = old_by_id[entity_id]
            out.append(_whole(kind, ChangeType.REMOVED, entity_id, rec, places, old_side=True))
    for entity_id in added:
        rec = new_by_id[entity_id]
        previous = pairs.get(entity_id)
        if previous is None:
            out.append(_whole(kind, ChangeType.ADDED, entity_id, rec, places))
        else:
            out.append(
                _whole(kind, ChangeType.RECREATED, entity_id, rec, places, old_id=previous)
            )
    return out


def _whole(
    kind: str,
    change: ChangeType,
    entity_id: str,
    record: Record,
    places: Places,
    old_id: str | None = None,
    old_side: bool = False,
) -> Change:
    account_id, product_id = places.place(kind, entity_id, record, old_side=old_side)
    return Change(
        kind=kind,
        change=change,
        id=entity_id,
        name=entity_name(kind, record),
        account_id=account_id,
        product_id=product_id,
        severity=CHANGE_SEVERITY[change],
        old_id=old_id,
    )


def _compare(
    kind: str,
    entity_id: str,
    old_rec: Record,
    new_rec: Record,
    places: Places,
    ignored: frozenset[str],
) -> Change | None:
    """A changed or renamed ``Change`` for two records that differ, or None if only ignored
    fields (or NaN against NaN) differ. A change of a field that names the kind is a rename."""
    fields = field_changes(kind, old_rec, new_rec, ignored)
    if not fields:
        return None
    top = {top_key(path) for path in fields}
    renamed = any(field_name in top for field_name in name_fields(kind))
    account_id, product_id = places.place(kind, entity_id, new_rec)
    # The new name, even "": only an entity left with no name at all keeps its old one here
    # (renderers read both sides of a rename from ``fields``).
    name = entity_name(kind, new_rec)
    if name is None:
        name = entity_name(kind, old_rec)
    change = ChangeType.RENAMED if renamed else ChangeType.CHANGED
    severity: Severity = CHANGE_SEVERITY[change] if renamed else field_severity(kind, fields)
    return Change(
        kind=kind,
        change=change,
        id=entity_id,
        name=name,
        account_id=account_id,
        product_id=product_id,
        severity=severity,
        fields=fields,
    )
