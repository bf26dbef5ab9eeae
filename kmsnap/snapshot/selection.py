"""What a snapshot keeps of a catalog: ``include``/``exclude`` by account and product.

Pure: ``filter_snapshot`` takes anything with ``include`` and ``exclude`` selectors (a
``kmsnap.config.Config``, or a ``Selection``) and returns a new ``Snapshot``. Pull, diff,
check and log all select through it, so they speak of the same accounts and products.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from kmsnap.model import Record, Snapshot
from kmsnap.snapshot.packed import PackedRecords

__all__ = [
    "Selecting",
    "Selection",
    "Selector",
    "filter_snapshot",
    "is_everything",
    "selection_key",
]


@dataclass(frozen=True)
class Selector:
    """Accounts and products named by name or id (ids are compared as strings)."""

    accounts: frozenset[str] = frozenset()
    products: frozenset[str] = frozenset()


class Selecting(Protocol):
    """Anything that says what to include and exclude (``Config``, ``Selection``)."""

    @property
    def include(self) -> Selector: ...

    @property
    def exclude(self) -> Selector: ...


@dataclass(frozen=True)
class Selection:
    """An ``include``/``exclude`` pair on its own, for library callers without a config file."""

    include: Selector = Selector()
    exclude: Selector = Selector()


def is_everything(selection: Selecting | None) -> bool:
    """Whether ``selection`` keeps the whole catalog (None, or nothing included or excluded)."""
    if selection is None:
        return True
    inc, exc = selection.include, selection.exclude
    return not (inc.accounts or inc.products or exc.accounts or exc.products)


def selection_key(selection: Selecting) -> dict[str, dict[str, list[str]]]:
    """What ``filter_snapshot`` keeps, as plain JSON (for caches keyed on it)."""
    return {
        name: {"accounts": sorted(sel.accounts), "products": sorted(sel.products)}
        for name, sel in (("include", selection.include), ("exclude", selection.exclude))
    }


def filter_snapshot(snapshot: Snapshot, config: Selecting) -> Snapshot:
    """A copy of ``snapshot`` with only what ``include``/``exclude`` select: an account left out
    takes its products with it, and a product left out takes its entities. Entities tied to no
    account or product (unknown collections) stay. Selecting everything returns ``snapshot``."""
    inc, exc = config.include, config.exclude
    if is_everything(config):
        return snapshot
    accounts = snapshot.of("account")
    products = snapshot.of("product")

    def selected(names: set[str], wanted: frozenset[str], unwanted: frozenset[str]) -> bool:
        return (not wanted or bool(names & wanted)) and not names & unwanted

    def account_ok(account_id: str) -> bool:
        name = accounts.get(account_id, {}).get("name")
        names = {account_id} | ({name} if isinstance(name, str) else set())
        return selected(names, inc.accounts, exc.accounts)

    def product_ok(product_id: str, account_id: Any) -> bool:
        record = products.get(product_id, {})
        name = record.get("name")
        names = {product_id} | ({name} if isinstance(name, str) else set())
        owner = record.get("account_id", account_id)
        if owner is None:
            if inc.accounts:
                return False  # a whitelist keeps only what it can place
        elif not account_ok(str(owner)):
            return False
        return selected(names, inc.products, exc.products)

    def keep_child(_entity_id: str, product_id: Any, account_id: Any) -> bool:
        if product_id is not None:
            return product_ok(str(product_id), account_id)
        if account_id is not None:
            return account_ok(str(account_id)) and not inc.products
        return True

    def keep(kind: str, entity_id: str, record: Mapping[str, Any]) -> bool:
        if kind == "account":
            return account_ok(entity_id)
        if kind == "product":
            return product_ok(entity_id, record.get("account_id"))
        return keep_child(entity_id, record.get("product_id"), record.get("account_id"))

    def kept(kind: str, by_id: Mapping[str, Record]) -> Mapping[str, Record]:
        if isinstance(by_id, PackedRecords):  # decided by the ids it holds, not decoded
            return by_id.select(keep_child, lambda i, r: keep(kind, i, r))
        return {i: r for i, r in by_id.items() if keep(kind, i, r)}

    entities = {kind: kept(kind, by_id) for kind, by_id in snapshot.entities.items()}
    stats = {
        kind: {i: s for i, s in by_id.items() if i in entities.get(kind, {})}
        for kind, by_id in snapshot.stats.items()
    }
    return Snapshot(api=snapshot.api, entities=entities, stats=stats, source=snapshot.source)
