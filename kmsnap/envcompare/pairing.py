"""Which products ``kmsnap compare`` pairs: the named ones, or by ``environment`` (or names)
within each account."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kmsnap.envcompare.model import (
    LEFT_ENVIRONMENTS,
    LEFT_WORDS,
    RIGHT_ENVIRONMENTS,
    RIGHT_WORDS,
    Side,
    normalize_name,
)
from kmsnap.errors import UsageError
from kmsnap.model import Snapshot, entity_name

__all__ = ["find_pairs", "side_of"]


def side_of(snapshot: Snapshot, product_id: str) -> Side:
    record = snapshot.of("product")[product_id]
    account_id = record.get("account_id")
    account = snapshot.of("account").get(str(account_id), {}) if account_id is not None else {}
    env = record.get("environment")
    return Side(product_id, entity_name("product", record),
                None if account_id is None else str(account_id),
                entity_name("account", account) if account else None,
                env if isinstance(env, str) and env else None)


def _pick(snapshot: Snapshot, wanted: str, option: str, account: str | None) -> str:
    products = snapshot.of("product")
    if wanted in products:
        return wanted
    found = sorted(
        pid for pid, rec in products.items()
        if entity_name("product", rec) == wanted
        and (account is None or _in_account(snapshot, rec, account))
    )
    if not found:
        raise UsageError(f"{option}: no product named or with id {wanted!r} in the snapshot")
    if len(found) > 1:
        raise UsageError(f"{option}: {len(found)} products are named {wanted!r} "
                         f"({', '.join(found)}); give the id")
    return found[0]


def _in_account(snapshot: Snapshot, record: Mapping[str, Any], account: str) -> bool:
    account_id = str(record.get("account_id"))
    name = entity_name("account", snapshot.of("account").get(account_id, {}))
    return account in (account_id, name)


def _role(record: dict[str, Any], by_name: bool) -> str | None:
    if by_name:
        words = set(re.sub(r"[^\w ]+", " ", normalize_name(entity_name("product", record)
                                                            or "")).split())
        return "left" if words & LEFT_WORDS else "right" if words & RIGHT_WORDS else "plain"
    env = record.get("environment")
    env = env.casefold() if isinstance(env, str) else ""
    return "left" if env in LEFT_ENVIRONMENTS else "right" if env in RIGHT_ENVIRONMENTS else None


def _stem(snapshot: Snapshot, product_id: str) -> str:
    """A product's name without its environment words: "Web (staging)" -> "web"."""
    name = normalize_name(entity_name("product", snapshot.of("product")[product_id]) or "")
    words = re.sub(r"[^\w ]+", " ", name).split()
    return " ".join(w for w in words if w not in LEFT_WORDS | RIGHT_WORDS)


def _pair_up(
    snapshot: Snapshot, account_id: str, lefts: list[str], rights: list[str]
) -> list[tuple[str, str]]:
    """One account's pairs: each product against the other side's only product, or, with
    several on both sides, products whose names agree once environment words are dropped."""
    lefts, rights = sorted(lefts), sorted(rights)
    if len(rights) == 1:
        return [(left, rights[0]) for left in lefts]
    if len(lefts) == 1:
        return [(lefts[0], right) for right in rights]
    by_stem = {_stem(snapshot, r): r for r in rights}
    pairs = [(left, by_stem[_stem(snapshot, left)]) for left in lefts
             if _stem(snapshot, left) in by_stem]
    if not pairs:
        account = entity_name("account", snapshot.of("account").get(account_id, {})) or account_id
        raise _Unpaired(f"account {account!r} has {len(lefts)} staging/development and "
                        f"{len(rights)} production products and no names that pair them; "
                        "name two with --left and --right")
    return pairs


class _Unpaired(UsageError):
    """An account whose products cannot be paired by themselves."""


def find_pairs(
    snapshot: Snapshot, *, left: str | None = None, right: str | None = None,
    account: str | None = None, notes: list[str] | None = None,
) -> list[tuple[str, str]]:
    """The (left, right) product ids to compare: the named ones, else per account its
    staging/development products against its production products (by ``environment``, or by
    the words in the names when no product has an environment, where "Web (staging)" pairs
    with plain "Web"; ``_pair_up`` when there are several). An account that cannot be paired
    is skipped with a line in ``notes``; none paired at all is a ``UsageError``."""
    if (left is None) != (right is None):
        raise UsageError("--left and --right: give both, or neither to pair by environment")
    if left is not None and right is not None:
        return [(_pick(snapshot, left, "--left", account), _pick(snapshot, right, "--right",
                                                                  account))]
    products = snapshot.of("product")
    by_name = not any(isinstance(r.get("environment"), str) and r.get("environment")
                      for r in products.values())
    groups: dict[str, dict[str, list[str]]] = {}
    for pid, record in products.items():
        if account is not None and not _in_account(snapshot, record, account):
            continue
        role = _role(record, by_name)
        if role is not None:
            groups.setdefault(str(record.get("account_id")), {}).setdefault(role, []).append(pid)
    pairs: list[tuple[str, str]] = []
    skipped: list[str] = []
    for account_id in sorted(groups):
        roles = groups[account_id]
        if by_name and roles.get("left") and not roles.get("right"):
            # "Web (staging)" against plain "Web": the production side needs no word.
            stems = {_stem(snapshot, left) for left in roles["left"]}
            roles["right"] = [p for p in roles.get("plain", []) if _stem(snapshot, p) in stems]
        if roles.get("left") and roles.get("right"):
            try:
                pairs += _pair_up(snapshot, account_id, roles["left"], roles["right"])
            except _Unpaired as exc:
                skipped.append(str(exc))
    if notes is not None:
        notes.extend(skipped)
    if not pairs and skipped:
        raise UsageError(skipped[0])
    if not pairs:
        how = "by name" if by_name else "by environment"
        raise UsageError(f"no account has both a staging/development and a production product "
                         f"({how}); name them with --left PRODUCT --right PRODUCT")
    return pairs
