"""Compare two snapshots and say what was added, removed, changed, renamed or re-created.

Pure: takes two ``Snapshot`` objects, returns a ``ChangeSet``; matching is linear (dict
lookups and ``==``), and DeepDiff only ever sees two nested values of one entity that differ.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kmsnap.model import KINDS, Record, Snapshot, entity_name, kind_for_rel, name_fields

__all__ = [
    "CHANGE_TYPES",
    "KIND_ORDER",
    "SEVERITIES",
    "Change",
    "ChangeSet",
    "diff_snapshots",
    "kind_sort_key",
    "normalize_kinds",
    "severity_at_least",
]

SCHEMA_VERSION = 1

# The order of the summary and of every report.
CHANGE_TYPES: tuple[str, ...] = ("added", "removed", "changed", "renamed", "recreated")
# Highest first.
SEVERITIES: tuple[str, ...] = ("breaking", "warning", "info")
_RANK = {"breaking": 2, "warning": 1, "info": 0}
_LEVELS = {"breaking": 2, "warning": 1, "any": 0}

# Documented kinds in catalog order (parents first); unknown rels follow alphabetically.
KIND_ORDER: tuple[str, ...] = ("account", "product", "report", "event", "property", "metric")
_KIND_RANK = {kind: i for i, kind in enumerate(KIND_ORDER)}

# Kinds whose lifecycle ``status`` can become "canceled". A metric's ``status`` is the
# state of its computation ("pending", ...), not a retirement, so it is left out.
_STATUS_RETIRES_EXCEPT: frozenset[str] = frozenset({"metric"})
_CANCELED = frozenset({"canceled", "cancelled"})

# Fields whose change breaks a query or a report downstream, per kind.
_BREAKING_FIELDS: dict[str, frozenset[str]] = {
    "property": frozenset({"type"}),
    "metric": frozenset({"unit_type"}),
}

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def kind_sort_key(kind: str) -> tuple[int, str]:
    """Sort key for kinds: the documented order, then unknown rels alphabetically."""
    return (_KIND_RANK.get(kind, len(KIND_ORDER)), kind)


def normalize_kinds(kinds: Iterable[str]) -> set[str]:
    """Singular kind names for ``kinds``, which may be singular or plural (``events``)."""
    return {kind_for_rel(k) for k in kinds}


@dataclass(frozen=True)
class Change:
    """One entity that differs between the two sides.

    ``fields`` (changed and renamed only) maps a dotted field path (``contact.phone``) to
    ``{"old": ..., "new": ...}``; a side on which the field does not exist has no key.
    A list is compared as one value: ``tags`` shows the whole old and new list.
    """

    kind: str
    change: str  # added removed changed renamed recreated
    id: str
    name: str | None
    account_id: str | None
    product_id: str | None
    severity: str  # breaking warning info
    old_id: str | None = None  # recreated only
    fields: dict[str, dict[str, Any]] | None = None

    def to_json(self) -> dict[str, Any]:
        """The change in DESIGN.md's JSON schema (version 1), keys in a fixed order."""
        out: dict[str, Any] = {"kind": self.kind, "change": self.change, "id": self.id}
        if self.change == "recreated":
            out["old_id"] = self.old_id
        out["name"] = self.name
        out["account_id"] = self.account_id
        out["product_id"] = self.product_id
        out["severity"] = self.severity
        if self.change in ("changed", "renamed"):
            out["fields"] = {path: dict(sides) for path, sides in (self.fields or {}).items()}
        return out


@dataclass
class ChangeSet:
    """Every change between two snapshots, sorted (kind, account, product, name, id)."""

    old_label: str
    new_label: str
    changes: list[Change] = field(default_factory=list)
    account_names: dict[str, str] = field(default_factory=dict)
    product_names: dict[str, str] = field(default_factory=dict)
    # kind -> field -> reason: what kmsnap.yaml's ignore_fields left out of the comparison,
    # for reports to say (not part of the JSON schema).
    ignored: dict[str, dict[str, str]] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        """How many changes of each type, in the fixed order of ``CHANGE_TYPES``."""
        counts = dict.fromkeys(CHANGE_TYPES, 0)
        for change in self.changes:
            counts[change.change] = counts.get(change.change, 0) + 1
        return counts

    def to_json(self) -> dict[str, Any]:
        """The whole change set in DESIGN.md's JSON schema (version 1)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "old": self.old_label,
            "new": self.new_label,
            "summary": self.summary(),
            "changes": [change.to_json() for change in self.changes],
        }

    def __bool__(self) -> bool:
        return bool(self.changes)


def severity_at_least(change: Change, level: str) -> bool:
    """Whether ``change`` is at least as severe as ``level`` (breaking, warning or any)."""
    try:
        floor = _LEVELS[level]
    except KeyError:
        raise ValueError(
            f"unknown severity level {level!r}: use breaking, warning or any"
        ) from None
    return _RANK[change.severity] >= floor


# --- matching -------------------------------------------------------------------------


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
    ctx = _Context(old, new)
    changes: list[Change] = []
    for kind in sorted(set(old.entities) | set(new.entities), key=kind_sort_key):
        if wanted is not None and kind not in wanted:
            continue
        changes.extend(_diff_kind(kind, old, new, ctx, with_stats, ignored.get(kind, frozenset())))
    changes.sort(key=_change_sort_key)
    account_names: dict[str, str] = {}
    product_names: dict[str, str] = {}
    for change in changes:
        if change.account_id is not None and change.account_id in ctx.account_names:
            account_names[change.account_id] = ctx.account_names[change.account_id]
        if change.product_id is not None and change.product_id in ctx.product_names:
            product_names[change.product_id] = ctx.product_names[change.product_id]
    return ChangeSet(
        old_label=old_label,
        new_label=new_label,
        changes=changes,
        account_names=dict(sorted(account_names.items())),
        product_names=dict(sorted(product_names.items())),
    )


class _Context:
    """Account and product names and parents, new side first, falling back to the old."""

    def __init__(self, old: Snapshot, new: Snapshot) -> None:
        self.account_names: dict[str, str] = {}
        self.product_names: dict[str, str] = {}
        self.product_account: dict[str, str] = {}
        # A removed entity is placed where it was: through the old side's products first.
        self.old_product_account: dict[str, str] = {}
        for pid, rec in old.of("product").items():
            if rec.get("account_id") is not None:
                self.old_product_account[pid] = str(rec["account_id"])
        for snap in (old, new):  # the new side overwrites the old
            for aid, rec in snap.of("account").items():
                name = entity_name("account", rec)
                if name is not None:
                    self.account_names[aid] = name
            for pid, rec in snap.of("product").items():
                name = entity_name("product", rec)
                if name is not None:
                    self.product_names[pid] = name
                parent = rec.get("account_id")
                if parent is not None:
                    self.product_account[pid] = str(parent)

    def place(
        self, kind: str, entity_id: str, record: Record, *, old_side: bool = False
    ) -> tuple[str | None, str | None]:
        """(account_id, product_id) of an entity; events find their account via the product."""
        if kind == "account":
            return entity_id, None
        if kind == "product":
            return _str_or_none(record.get("account_id")), entity_id
        product_id = _str_or_none(record.get("product_id"))
        account_id = _str_or_none(record.get("account_id"))
        if account_id is None and product_id is not None:
            if old_side:
                account_id = self.old_product_account.get(product_id)
            if account_id is None:
                account_id = self.product_account.get(product_id)
        return account_id, product_id


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _scope(kind: str, account_id: str | None, product_id: str | None) -> str | None:
    """Where a name must be unique for a re-creation to be recognised."""
    if kind == "account":
        return None
    if kind == "product":
        return account_id
    return product_id if product_id is not None else account_id


def _diff_kind(
    kind: str,
    old: Snapshot,
    new: Snapshot,
    ctx: _Context,
    with_stats: bool,
    ignored: frozenset[str],
) -> list[Change]:
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
        if _same(old_rec, new_rec):
            continue
        change = _compare(kind, entity_id, old_rec, new_rec, ctx, ignored)
        if change is not None:
            changes.append(change)
    added = [entity_id for entity_id in new_by_id if entity_id not in old_by_id]
    changes.extend(_pair_recreated(kind, removed, added, old_by_id, new_by_id, ctx))
    return changes


def _with_usage(record: Record, usage: Record | None) -> Record:
    return {**record, **usage} if usage else record


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same types throughout: ``True == 1 == 1.0`` would hide real drift.

    NaN equals NaN here: both sides would be written the same, so it is no change.
    """
    if a is b:
        return True
    if a == b:
        return _same_types(a, b)
    return _same_with_nan(a, b)  # the slow path, for values that really differ (mostly)


def _same_with_nan(a: Any, b: Any) -> bool:
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is dict:
        return a.keys() == b.keys() and all(_same_with_nan(v, b[k]) for k, v in a.items())
    if kind is list:
        return len(a) == len(b) and all(_same_with_nan(x, y) for x, y in zip(a, b, strict=True))
    if kind is float and a != a and b != b:
        return True
    return bool(a == b)


def _same_types(a: Any, b: Any) -> bool:
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is dict:
        return all(_same_types(value, b[key]) for key, value in a.items())
    if kind is list:
        return all(_same_types(x, y) for x, y in zip(a, b, strict=True))
    return True


def _pair_recreated(
    kind: str,
    removed: list[str],
    added: list[str],
    old_by_id: dict[str, Record],
    new_by_id: dict[str, Record],
    ctx: _Context,
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
            where = ctx.place(kind, entity_id, rec, old_side=True)
            gone.setdefault((_scope(kind, *where), name), []).append(entity_id)
    came: dict[tuple[str | None, str], list[str]] = {}
    for entity_id in added:
        rec = new_by_id[entity_id]
        name = entity_name(kind, rec)
        if name is not None:
            came.setdefault((_scope(kind, *ctx.place(kind, entity_id, rec)), name), []).append(
                entity_id
            )
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
            out.append(_whole(kind, "removed", entity_id, rec, ctx, "breaking", old_side=True))
    for entity_id in added:
        rec = new_by_id[entity_id]
        previous = pairs.get(entity_id)
        if previous is None:
            out.append(_whole(kind, "added", entity_id, rec, ctx, "info"))
        else:
            out.append(_whole(kind, "recreated", entity_id, rec, ctx, "breaking", old_id=previous))
    return out


def _whole(
    kind: str,
    change: str,
    entity_id: str,
    record: Record,
    ctx: _Context,
    severity: str,
    old_id: str | None = None,
    old_side: bool = False,
) -> Change:
    account_id, product_id = ctx.place(kind, entity_id, record, old_side=old_side)
    return Change(
        kind=kind,
        change=change,
        id=entity_id,
        name=entity_name(kind, record),
        account_id=account_id,
        product_id=product_id,
        severity=severity,
        old_id=old_id,
    )


# --- field comparison -----------------------------------------------------------------

_ABSENT = object()


def _compare(
    kind: str,
    entity_id: str,
    old_rec: Record,
    new_rec: Record,
    ctx: _Context,
    ignored: frozenset[str],
) -> Change | None:
    """A changed or renamed ``Change`` for two records that differ, or None if only ignored
    fields (or NaN against NaN) differ."""
    fields = _field_changes(kind, old_rec, new_rec, ignored)
    if not fields:
        return None
    top = {path_top for path_top in (_top_key(p) for p in fields)}
    renamed = any(field_name in top for field_name in name_fields(kind))
    account_id, product_id = ctx.place(kind, entity_id, new_rec)
    # The new name, even "": only an entity left with no name at all keeps its old one here
    # (renderers read both sides of a rename from ``fields``).
    name = entity_name(kind, new_rec)
    if name is None:
        name = entity_name(kind, old_rec)
    return Change(
        kind=kind,
        change="renamed" if renamed else "changed",
        id=entity_id,
        name=name,
        account_id=account_id,
        product_id=product_id,
        severity="breaking" if renamed else _field_severity(kind, fields),
        fields=fields,
    )


def _field_changes(
    kind: str, old_rec: Record, new_rec: Record, ignored: frozenset[str]
) -> dict[str, dict[str, Any]]:
    """Dotted path -> {"old", "new"} for every differing field; lists count as one value."""
    paths: set[tuple[Any, ...]] = set()
    for key in old_rec.keys() | new_rec.keys():
        before, after = old_rec.get(key, _ABSENT), new_rec.get(key, _ABSENT)
        if before is not _ABSENT and after is not _ABSENT and _same(before, after):
            continue
        if type(before) is dict and type(after) is dict:
            paths.update(_nested_paths(key, before, after))
        else:
            paths.add((key,))
    # A prefix swallows longer paths (a nested mapping that became a string, then a key).
    out: dict[str, dict[str, Any]] = {}
    spec = KINDS.get(kind)
    order = {name: i for i, name in enumerate(spec.fields)} if spec else {}
    for path in sorted(paths, key=lambda p: (order.get(p[0], len(order)), p)):
        if any(path[:n] in paths for n in range(1, len(path))):
            continue
        dotted = _format_path(path)
        if _is_ignored(dotted, path, ignored):
            continue
        before = _walk(old_rec, path)
        after = _walk(new_rec, path)
        if before is not _ABSENT and after is not _ABSENT and _same(before, after):
            continue
        sides: dict[str, Any] = {}
        if before is not _ABSENT:
            sides["old"] = before
        if after is not _ABSENT:
            sides["new"] = after
        out[dotted] = sides
    return out


def _nested_paths(key: str, old: Record, new: Record) -> set[tuple[Any, ...]]:
    """The paths under ``key`` where two nested mappings differ, found by DeepDiff.

    Top-level fields are compared directly; only nested mappings (an account's ``contact``)
    reach DeepDiff, imported here because importing it costs ~0.7 s (numpy, pydantic) that a
    diff without nested changes should not pay.
    """
    from deepdiff import DeepDiff

    # threshold_to_diff_deeper=0: otherwise DeepDiff reports mappings that differ in many
    # keys as one change of the whole. Lists are cut back to whole values.
    tree = DeepDiff(old, new, view="tree", threshold_to_diff_deeper=0, ignore_nan_inequality=True)
    paths: set[tuple[Any, ...]] = set()
    for levels in tree.values():
        for level in levels:
            cut: list[Any] = [key]
            for part in level.path(output_format="list"):
                if not isinstance(part, str):
                    break  # a list index: the list is the value
                cut.append(part)
            paths.add(tuple(cut))
    return paths or {(key,)}


def _walk(record: Record, path: tuple[Any, ...]) -> Any:
    value: Any = record
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return _ABSENT
        value = value[key]
    return value


def _format_path(path: tuple[Any, ...]) -> str:
    """``("contact", "phone")`` -> ``contact.phone``; an awkward key is quoted: ``["a.b"]``."""
    out = []
    for i, key in enumerate(path):
        if _PLAIN_KEY.match(key):
            out.append(key if i == 0 else f".{key}")
        else:
            out.append(f"[{json.dumps(key, ensure_ascii=False)}]")
    return "".join(out)


def _top_key(dotted: str) -> str:
    """The top-level field of a formatted path."""
    if dotted.startswith("["):
        end = dotted.find("]", 1)
        return str(json.loads(dotted[1:end])) if end > 0 else dotted
    return dotted.split(".", 1)[0].split("[", 1)[0]


def _is_ignored(dotted: str, path: tuple[Any, ...], ignored: frozenset[str]) -> bool:
    if not ignored:
        return False
    if path[0] in ignored or dotted in ignored:
        return True
    return any(dotted.startswith(prefix + ".") for prefix in ignored)


def _field_severity(kind: str, fields: Mapping[str, Mapping[str, Any]]) -> str:
    """The highest severity among the reasons in ``fields`` (DESIGN.md's rules)."""
    breaking = _BREAKING_FIELDS.get(kind, frozenset())
    level = "info"
    for path, sides in fields.items():
        if path in breaking:
            return "breaking"
        old = sides.get("old", _ABSENT)
        new = sides.get("new", _ABSENT)
        if path == "is_visible" and old is True and new is False:
            level = "warning"
        elif (
            path == "status"
            and kind not in _STATUS_RETIRES_EXCEPT
            and isinstance(new, str)
            and new.lower() in _CANCELED
            and not (isinstance(old, str) and old.lower() in _CANCELED)
        ):
            level = "warning"
    return level


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
