"""The v3 emulator's view of a Core catalog: stable integer ids and records in v3's shapes.

The REST API v3 has integer ids, ``visible`` instead of ``is_visible``, no display names,
descriptions, urls or creation dates, and carries ``km_key``, ``index`` and
``property_indices`` (what live records show). Accounts and metrics are not served.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from kmsnap.emulator.catalog import Catalog
from kmsnap.model import USAGE_FIELDS, Record

# The four catalog collections, and the Core kind each one serves.
RESOURCES: tuple[str, ...] = ("products", "reports", "events", "properties")
KIND_OF: dict[str, str] = {
    "products": "product", "reports": "report", "events": "event", "properties": "property",
}

# Where each collection's records go: one top-level key (or several, or none) per resource.
Envelope = dict[str, tuple[str, ...]]
ENVELOPES: dict[str, Envelope] = {
    # What Airbyte and sqlectron read: ``data`` everywhere.
    "data": {r: ("data",) for r in RESOURCES},
    # Each collection under its own name.
    "resource": {r: (r,) for r in RESOURCES},
    # Own names, but properties keyed ``events`` (the published documents' copy-paste slip).
    "events": {**{r: (r,) for r in RESOURCES}, "properties": ("events",)},
    # Exactly the published examples: products ``data``, reports ``reports``, the rest ``events``.
    "published": {"products": ("data",), "reports": ("reports",), "events": ("events",),
                  "properties": ("events",)},
}

# Core fields v3 does not have (``is_visible`` becomes ``visible``).
_DROPPED: dict[str, frozenset[str]] = {
    "product": frozenset({"url", "status", "environment", "created_at", "description",
                          "display_name"}),
    "report": frozenset({"account_id", "created_at"}),
    "event": frozenset({"display_name", "description", "is_visible"}),
    "property": frozenset({"display_name", "description", "is_visible", "type"}),
}
# Published field order; anything else follows in the catalog's order.
_ORDER: dict[str, tuple[str, ...]] = {
    "product": ("id", "account_id", "name", "timezone", "km_key"),
    "report": ("id", "product_id", "name", "report_type"),
    "event": ("id", "index", "product_id", "name", "visible", "property_indices", "total",
              "first_used_at", "last_used_at", "first_sent_at", "last_sent_at"),
    "property": ("id", "index", "product_id", "name", "visible", "total", "first_used_at",
                 "last_used_at", "first_sent_at", "last_sent_at"),
}
# First integer id handed out per kind: distinct ranges make a client mixing kinds visible.
ID_BASES: dict[str, int] = {
    "account": 401, "product": 1201, "report": 6701, "event": 10001, "property": 50001,
}
_ASSIGNED = ("product", "report", "event", "property")


def resolve_envelope(envelope: str | Mapping[str, str | Sequence[str]]) -> Envelope:
    """The key(s) per resource for a named form or a ``{resource: key or keys}`` mapping.

    A mapping may name keys no client accepts, several keys (the records under each) or
    none (an empty tuple: a body without records), for robustness tests; resources it
    leaves out use ``data``.
    """
    if isinstance(envelope, str):
        try:
            return dict(ENVELOPES[envelope])
        except KeyError:
            names = ", ".join(ENVELOPES)
            raise ValueError(f"unknown envelope {envelope!r}; use one of {names}") from None
    unknown = set(envelope) - set(RESOURCES)
    if unknown:
        raise ValueError(f"unknown resources in envelope: {', '.join(sorted(unknown))}")
    out: Envelope = {}
    for resource in RESOURCES:
        keys = envelope.get(resource, "data")
        out[resource] = (keys,) if isinstance(keys, str) else tuple(keys)
    return out


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()


class IdMap:
    """Integer ids (and per-product ``index`` values) for a catalog's entities, kept forever.

    Ids are handed out per kind in catalog order, the first time the map sees an entity
    after a change: a rename keeps its id, a re-creation (a new Core id) gets a new one,
    and an id is never reused. Records whose ``id`` already is an integer (a catalog
    loaded from a v3 snapshot) keep it; don't mix those with string ids in one kind.
    """

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], int] = {}
        self._core: dict[tuple[str, int], str] = {}
        self._next = dict(ID_BASES)
        self._index: dict[tuple[str, str], int] = {}
        self._next_index: dict[tuple[str, str], int] = {}
        self._version = -1
        self._lock = threading.Lock()

    def sync(self, catalog: Catalog) -> None:
        """Give every entity of ``catalog`` without an id one (cheap when nothing changed)."""
        if catalog.version == self._version:
            return
        with catalog.lock, self._lock:
            for kind in _ASSIGNED:
                for record in catalog.records[kind].values():
                    if kind == "product" and record.get("account_id") is not None:
                        self._assign("account", record["account_id"])
                    eid = self._assign(kind, record["id"])
                    if kind in ("event", "property") and "index" not in record:
                        self._assign_index(kind, eid, str(record.get("product_id")))
            self._version = catalog.version

    def _assign(self, kind: str, value: Any) -> int:
        key = (kind, str(value))
        known = self._ids.get(key)
        if known is not None:
            return known
        if type(value) is int:
            number = value
        else:
            number = self._next[kind]
            while (kind, number) in self._core:
                number += 1
            self._next[kind] = number + 1
        self._ids[key] = number
        self._core[(kind, number)] = str(value)
        return number

    def _assign_index(self, kind: str, eid: int, product: str) -> None:
        key = (kind, str(eid))
        if key not in self._index:
            scope = (kind, product)
            self._index[key] = self._next_index.get(scope, 0)
            self._next_index[scope] = self._index[key] + 1

    def id_of(self, kind: str, value: Any) -> int | None:
        """The integer id of the entity whose Core id is ``value``, or None (not seen yet)."""
        return self._ids.get((kind, str(value)))

    def core_of(self, kind: str, number: int) -> str | None:
        """The Core id (as the catalog keys it) behind an integer id, or None."""
        return self._core.get((kind, number))

    def index_of(self, kind: str, number: int) -> int | None:
        """The per-product ``index`` given to an event or property, or None."""
        return self._index.get((kind, str(number)))


def to_v3(
    kind: str, record: Record, ids: IdMap, *, usage: bool = True, live_fields: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> Record:
    """A Core record as v3 serves it (call ``ids.sync`` first).

    ``usage=False`` leaves out ``total`` and the ``*_used_at``/``*_sent_at`` stamps (as
    Airbyte's records show); ``live_fields=False`` leaves out ``km_key``, ``index`` and
    ``property_indices`` (as the published examples show). ``extra`` adds unknown fields.
    """
    core_id = record["id"]
    number = ids.id_of(kind, core_id)
    if number is None:
        raise KeyError(f"no v3 id for {kind} {core_id!r}: sync the id map first")
    dropped = _DROPPED[kind]
    fields: Record = {"id": number}
    if kind == "product":
        account = record.get("account_id")
        fields["account_id"] = ids.id_of("account", account) if account is not None else None
        if live_fields and "km_key" not in record:
            fields["km_key"] = _digest("km_key", core_id).hex()[:40]
    else:
        product = ids.id_of("product", record.get("product_id"))
        fields["product_id"] = product if product is not None else record.get("product_id")
    if kind in ("event", "property"):
        fields["visible"] = record.get("visible", record.get("is_visible", True))
        if live_fields and "index" not in record:
            fields["index"] = ids.index_of(kind, number)
        if live_fields and kind == "event" and "property_indices" not in record:
            h = _digest("property_indices", core_id)
            fields["property_indices"] = sorted({h[i] % 40 for i in range(1, 1 + h[0] % 5)})
    for key, value in record.items():
        if key in fields or key in dropped or key == "links":
            continue
        if not usage and key in USAGE_FIELDS:
            continue
        if not live_fields and key in ("km_key", "index", "property_indices"):
            continue
        fields[key] = value
    if extra:
        fields.update(extra)
    order = _ORDER[kind]
    out: Record = {key: fields[key] for key in order if key in fields}
    out.update((key, value) for key, value in fields.items() if key not in out)
    return out
