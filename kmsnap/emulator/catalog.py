"""The emulator's catalog: every record it serves, live mutations, and cached page lists.

Records are full API records (usage fields included, ``links`` never stored). Mutations
replace a record instead of editing it in place, so a page being serialized in another
thread always sees one consistent version of each record.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from kmsnap.model import (
    CHILD_KINDS,
    KINDS,
    USAGE_FIELDS,
    Record,
    Snapshot,
    is_container,
    name_field,
)
from kmsnap.model import KIND_ORDER as KIND_ORDER  # the router imports it from here

# KIND_ORDER is also the order the root directory lists its collections in.
# Kinds that count traffic (events, properties): what touch_usage() moves.
_USAGE_KINDS = tuple(k for k in KIND_ORDER if USAGE_FIELDS.intersection(KINDS[k].fields))

# A list of records as served for one (kind, parent scope, token visibility).
ListKey = tuple[str, str | None, frozenset[str] | None]


def random_uuid(rng: random.Random) -> str:
    """A version-4-shaped UUID string drawn from ``rng`` (deterministic for a seeded rng)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


class Catalog:
    """Everything the emulator serves.

    ``records[kind][id]`` holds the full records of the six documented kinds in a
    stable order (insertion order); ``extra[rel]`` holds collections of kinds kmsnap
    does not know, served at ``/core/<rel>`` and linked from the root directory.
    Every mutator is thread-safe and takes effect on the next request.
    """

    def __init__(
        self,
        records: Mapping[str, Mapping[str, Record]] | None = None,
        extra: Mapping[str, Iterable[Record]] | None = None,
        *,
        seed: int = 0,
    ) -> None:
        self.records: dict[str, dict[str, Record]] = {kind: {} for kind in KIND_ORDER}
        for kind, by_id in (records or {}).items():
            if kind not in KINDS:
                raise ValueError(f"unknown kind {kind!r}; put unknown collections in extra")
            self.records[kind] = dict(by_id)
        self.extra: dict[str, list[Record]] = {rel: list(rs) for rel, rs in (extra or {}).items()}
        self.lock = threading.RLock()
        self.version = 0  # bumped by every mutation; caches are valid for one version
        self._rng = random.Random(f"catalog-ids-{seed}")
        self._lists: dict[ListKey, list[Record]] = {}
        self._by_parent: dict[str, dict[str | None, list[Record]]] = {}

    # ----------------------------------------------------------------- reading

    def size(self) -> int:
        """The number of entities of every kind, unknown collections included."""
        with self.lock:
            return sum(map(len, self.records.values())) + sum(map(len, self.extra.values()))

    def get(self, kind: str, entity_id: str) -> Record | None:
        """The record of one entity, or None (do not edit it: use the mutators)."""
        with self.lock:
            if kind in self.records:
                return self.records[kind].get(entity_id)
            return next((r for r in self.extra.get(kind, ()) if r.get("id") == entity_id), None)

    def ids(self, kind: str) -> list[str]:
        """The ids of one kind in serving order."""
        with self.lock:
            if kind in self.records:
                return list(self.records[kind])
            return [str(r.get("id")) for r in self.extra.get(kind, ())]

    def account_of(self, kind: str, record: Record) -> str | None:
        """The account an entity belongs to, or None (an orphan, or an unknown collection)."""
        spec = KINDS.get(kind)
        if spec is None:
            return None
        if spec.parent is None:  # the outermost container: an account is its own
            return str(record["id"])
        # A product names its account; a report may too (else it is found via its product).
        if spec.parent == "account" or ("account_id" in spec.fields and record.get("account_id")):
            value = record.get("account_id")
            return str(value) if value is not None else None
        product = self.records["product"].get(str(record.get("product_id")))
        if product is not None and product.get("account_id") is not None:
            return str(product["account_id"])
        return None

    def listing(
        self, kind: str, parent: str | None = None, accounts: frozenset[str] | None = None
    ) -> list[Record]:
        """The records one list response pages through (cached until the next mutation).

        ``parent`` scopes to one product (reports, events, properties, metrics) or one
        account (products). ``accounts`` limits to what a restricted token sees; entities
        without an account (orphans, unknown collections) are visible to every token.
        The returned list is shared: never modify it.
        """
        key: ListKey = (kind, parent, accounts)
        with self.lock:
            cached = self._lists.get(key)
            if cached is not None:
                return cached
            if kind not in self.records:
                base = self.extra.get(kind, [])
            elif parent is None:
                base = list(self.records[kind].values())
            else:
                base = self._parent_index(kind).get(parent, [])
            if accounts is not None:
                base = [r for r in base if self._visible(kind, r, accounts)]
            self._lists[key] = base
            return base

    def _parent_index(self, kind: str) -> dict[str | None, list[Record]]:
        index = self._by_parent.get(kind)
        if index is None:
            field = KINDS[kind].parent_field or "product_id"
            index = {}
            for record in self.records[kind].values():
                index.setdefault(record.get(field), []).append(record)
            self._by_parent[kind] = index
        return index

    def _visible(self, kind: str, record: Record, accounts: frozenset[str]) -> bool:
        account = self.account_of(kind, record)
        return account is None or account in accounts

    # --------------------------------------------------------------- mutations

    def _changed(self) -> None:
        self.version += 1
        self._lists.clear()
        self._by_parent.clear()

    def _record(self, kind: str, entity_id: str) -> Record:
        try:
            return self.records[kind][entity_id]
        except KeyError:
            raise KeyError(f"no {kind} with id {entity_id!r}") from None

    def new_id(self) -> str:
        """A fresh UUID from the catalog's own seeded generator."""
        with self.lock:
            return random_uuid(self._rng)

    def add(self, kind: str, record: Record) -> str:
        """Add an entity (a new id is made when ``record`` has none); return its id.

        An unknown kind appends to the ``extra`` collection of that rel.
        """
        with self.lock:
            record = {k: v for k, v in record.items() if k != "links"}
            record.setdefault("id", random_uuid(self._rng))
            entity_id = str(record["id"])
            if kind in self.records:
                self.records[kind][entity_id] = record
            else:
                self.extra.setdefault(kind, []).append(record)
            self._changed()
            return entity_id

    def remove(self, kind: str, entity_id: str, *, cascade: bool = False) -> Record:
        """Remove an entity and return it; with ``cascade``, its products or children too.

        Without ``cascade`` the children of a removed product stay and become orphans.
        """
        with self.lock:
            if kind not in self.records:
                records = self.extra.get(kind, [])
                for i, r in enumerate(records):
                    if r.get("id") == entity_id:
                        self._changed()
                        return records.pop(i)
                raise KeyError(f"no {kind} with id {entity_id!r}")
            removed = self._record(kind, entity_id)
            del self.records[kind][entity_id]
            if cascade and is_container(kind):
                field = f"{kind}_id"
                for child_kind in CHILD_KINDS:
                    children = [
                        cid for cid, r in self.records[child_kind].items()
                        if r.get(field) == entity_id
                    ]
                    for cid in children:
                        self.remove(child_kind, cid, cascade=True)
            self._changed()
            return removed

    def rename(self, kind: str, entity_id: str, new_name: str | None) -> None:
        """Change an entity's name (its ``title`` for metrics)."""
        self.set_field(kind, entity_id, name_field(kind), new_name)

    def set_field(self, kind: str, entity_id: str, field: str, value: Any) -> None:
        """Set one field (an unknown field is added); ``id`` cannot be changed this way."""
        if field in ("id", "links"):
            raise ValueError(f"cannot set {field!r}: use recreate() for a new id")
        with self.lock:
            self.records[kind][entity_id] = {**self._record(kind, entity_id), field: value}
            self._changed()

    def delete_field(self, kind: str, entity_id: str, field: str) -> None:
        """Drop one field from an entity's record (as when the API stops sending it)."""
        with self.lock:
            record = dict(self._record(kind, entity_id))
            record.pop(field, None)
            self.records[kind][entity_id] = record
            self._changed()

    def recreate(self, kind: str, entity_id: str) -> str:
        """Delete an entity and create it again under a new id (same name); return the new id.

        The new record goes to the end of the serving order, as a newly created one would.
        """
        with self.lock:
            record = self.remove(kind, entity_id)
            return self.add(kind, {**record, "id": random_uuid(self._rng)})

    def touch_usage(self, seed: int = 0) -> int:
        """Move only usage counters and usage timestamps, as traffic does; return how many moved.

        Every event gets a higher ``total`` and every used entity later ``last_*_at`` values;
        no catalog field changes.
        """
        rng = random.Random(f"touch-{seed}")
        moved = 0
        with self.lock:
            for kind in _USAGE_KINDS:
                by_id = self.records[kind]
                for entity_id, record in by_id.items():
                    if not USAGE_FIELDS.intersection(record):
                        continue
                    new = dict(record)
                    if isinstance(new.get("total"), int):
                        new["total"] += 1 + rng.randrange(50)
                    stamp = f"2024-{1 + rng.randrange(12):02d}-{1 + rng.randrange(28):02d}T" \
                        f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:00+00:00"
                    for field in ("last_used_at", "last_sent_at"):
                        if field in new:
                            new[field] = stamp
                    for field in ("first_used_at", "first_sent_at"):
                        if field in new and new[field] is None:
                            new[field] = stamp
                    by_id[entity_id] = new
                    moved += 1
            self._changed()
        return moved

    # ------------------------------------------------------------- snapshots

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot) -> Catalog:
        """A catalog serving ``snapshot`` (its ``stats`` merged back into the records)."""
        catalog = cls()
        for kind, by_id in snapshot.entities.items():
            stats = snapshot.stats.get(kind, {})
            merged = [{**record, **stats.get(entity_id, {})} for entity_id, record in by_id.items()]
            if kind in catalog.records:
                catalog.records[kind] = {str(r["id"]): r for r in merged}
            else:
                catalog.extra[kind] = merged
        return catalog

    def to_snapshot(self, api: str, *, accounts: Iterable[str] | None = None) -> Snapshot:
        """What a perfect pull of this catalog must produce (usage fields in ``stats``).

        ``accounts`` gives the snapshot a token limited to those accounts would see.
        """
        visible = frozenset(accounts) if accounts is not None else None
        snapshot = Snapshot(api=api)
        with self.lock:
            for kind in KIND_ORDER:
                for record in self.listing(kind, None, visible):
                    snapshot.add(kind, dict(record))
            for rel in self.extra:
                for record in self.extra[rel]:
                    snapshot.add(rel, dict(record))
        return snapshot
