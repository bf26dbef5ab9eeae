"""Two products compared kind by kind, entities matched by normalised name."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kmsnap.envcompare.model import COMPARED_FIELDS, Difference, Only, Pairing, normalize_name
from kmsnap.envcompare.pairing import find_pairs, side_of
from kmsnap.model import KINDS, PRODUCT_KINDS, Snapshot, entity_name, kind_sort_key

__all__ = ["compare_environments", "compare_products", "fails"]


def _entities(snapshot: Snapshot, kind: str, product_id: str) -> list[tuple[str, dict[str, Any]]]:
    return sorted(
        ((eid, rec) for eid, rec in snapshot.of(kind).items()
         if str(rec.get("product_id")) == product_id),
        key=lambda item: (normalize_name(entity_name(kind, item[1]) or ""), item[0]),
    )


def compare_products(
    snapshot: Snapshot, left: str, right: str, *,
    kinds: Iterable[str] | None = None,
    names: Mapping[str, Mapping[str, str]] | None = None,
) -> Pairing:
    """Compare product ``left`` with product ``right`` (ids) kind by kind, by name;
    ``names[kind][left name] = right name`` pairs entities named differently on purpose."""
    wanted = tuple(sorted(set(kinds) if kinds is not None else PRODUCT_KINDS, key=kind_sort_key))
    only_left: list[Only] = []
    only_right: list[Only] = []
    different: list[Difference] = []
    same = 0
    for kind in wanted:
        given = (names or {}).get(kind, {})
        mapping = {normalize_name(a): normalize_name(b) for a, b in given.items()}
        rights: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for eid, rec in _entities(snapshot, kind, right):
            rights.setdefault(normalize_name(entity_name(kind, rec) or eid), []).append((eid, rec))
        spec = KINDS.get(kind)
        compared = [f for f in COMPARED_FIELDS if spec is None or f in spec.fields]
        for eid, rec in _entities(snapshot, kind, left):
            key = normalize_name(entity_name(kind, rec) or eid)
            key = mapping.get(key, key)
            candidates = rights.get(key)
            if not candidates:
                only_left.append(Only(kind, entity_name(kind, rec), eid))
                continue
            rid, rrec = candidates.pop(0)
            fields = {f: (rec.get(f), rrec.get(f)) for f in compared
                      if rec.get(f) != rrec.get(f)}
            if fields:
                different.append(Difference(kind, entity_name(kind, rec),
                                            entity_name(kind, rrec), eid, rid, fields))
            else:
                same += 1
        for leftover in rights.values():
            only_right.extend(Only(kind, entity_name(kind, rec), rid) for rid, rec in leftover)
    return Pairing(side_of(snapshot, left), side_of(snapshot, right), tuple(only_left),
                   tuple(sorted(only_right, key=lambda o: (kind_sort_key(o.kind),
                                                           normalize_name(o.name or ""), o.id))),
                   tuple(different), same, wanted)


def compare_environments(
    snapshot: Snapshot, *, left: str | None = None, right: str | None = None,
    account: str | None = None, kinds: Iterable[str] | None = None,
    names: Mapping[str, Mapping[str, str]] | None = None,
    notes: list[str] | None = None,
) -> list[Pairing]:
    """Every pairing ``find_pairs`` finds, compared (``compare_products``); accounts left
    unpaired are said in ``notes``."""
    kind_list = list(kinds) if kinds is not None else None
    pairs = find_pairs(snapshot, left=left, right=right, account=account, notes=notes)
    return [compare_products(snapshot, a, b, kinds=kind_list, names=names) for a, b in pairs]


def fails(pairings: Sequence[Pairing], require: str | None) -> bool:
    """Whether ``--require`` is broken: ``left-in-right`` (the right side lacks something the
    left has), ``right-in-left``, or ``both``."""
    if require is None:
        return False
    lacks_right = any(p.only_left for p in pairings)
    lacks_left = any(p.only_right for p in pairings)
    return {"left-in-right": lacks_right, "right-in-left": lacks_left,
            "both": lacks_right or lacks_left}[require]
