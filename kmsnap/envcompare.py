"""Staging against production: two products of one catalog compared by entity *name*, since
ids differ between products (``kmsnap diff`` matches by id and cannot do this).

Pure: a ``Snapshot`` in, ``Pairing`` results and their text, markdown and JSON out. Products
are paired by Kissmetrics' ``environment`` field (``staging``/``development`` on the left,
``production`` on the right; by the words in their names when no product says), or named.
Entities match within each kind by normalised name (case, spacing, ``_`` and ``-`` do not
count), through kmsnap.yaml's ``compare.names`` for deliberate differences.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kmsnap.errors import UsageError
from kmsnap.model import KINDS, PRODUCT_KINDS, Snapshot, entity_name, kind_sort_key, rel_for_kind
from kmsnap.render.base import escape, plural, quote, short_quote, show_value
from kmsnap.render.markdown import md_escape

__all__ = [
    "COMPARED_FIELDS",
    "FORMATS",
    "LEFT_ENVIRONMENTS",
    "REQUIRE",
    "RIGHT_ENVIRONMENTS",
    "Difference",
    "Only",
    "Pairing",
    "Side",
    "check_compare_config",
    "compare_environments",
    "normalize_name",
    "render_pairings",
]

LEFT_ENVIRONMENTS = ("staging", "development")
RIGHT_ENVIRONMENTS = ("production",)
# Words in a product's name that say its environment when no product has an ``environment``.
_LEFT_WORDS = frozenset({"staging", "stage", "development", "dev", "test", "sandbox"})
_RIGHT_WORDS = frozenset({"production", "prod", "live"})
# What must agree between the two sides (the fields an analyst's report depends on).
COMPARED_FIELDS = ("type", "unit_type", "is_visible", "display_name", "description")
FORMATS = ("text", "markdown", "json")
REQUIRE = ("left-in-right", "right-in-left", "both")
JSON_VERSION = 1
# The text matrix keeps its columns readable: a longer name is cut (its length said).
_NAME_WIDTH = 60
_NAME_KEEP = 40
_SPACES = re.compile(r"[\s_\-]+")


def normalize_name(name: str) -> str:
    """How names are matched: case-folded, runs of spaces, ``_`` and ``-`` as one space."""
    return _SPACES.sub(" ", name.casefold()).strip()


@dataclass(frozen=True)
class Side:
    """One product of a pairing."""

    product_id: str
    product: str | None
    account_id: str | None
    account: str | None
    environment: str | None

    @property
    def label(self) -> str:
        """How columns name this side: its environment, else its product's name."""
        return self.environment or self.product or self.product_id

    def to_json(self) -> dict[str, Any]:
        return {"product_id": self.product_id, "product": self.product,
                "account_id": self.account_id, "account": self.account,
                "environment": self.environment}


@dataclass(frozen=True)
class Only:
    """An entity on one side only."""

    kind: str
    name: str | None
    id: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "id": self.id}


@dataclass(frozen=True)
class Difference:
    """An entity on both sides whose compared fields differ: field -> (left, right)."""

    kind: str
    left_name: str | None
    right_name: str | None
    left_id: str
    right_id: str
    fields: Mapping[str, tuple[Any, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "left_name": self.left_name, "right_name": self.right_name,
                "left_id": self.left_id, "right_id": self.right_id,
                "fields": {f: {"left": a, "right": b} for f, (a, b) in self.fields.items()}}


@dataclass(frozen=True)
class Pairing:
    """Two products compared: what each lacks, what differs, how many agree."""

    left: Side
    right: Side
    only_left: tuple[Only, ...] = ()
    only_right: tuple[Only, ...] = ()
    different: tuple[Difference, ...] = ()
    same: int = 0
    kinds: tuple[str, ...] = field(default=PRODUCT_KINDS)

    @property
    def differs(self) -> bool:
        return bool(self.only_left or self.only_right or self.different)

    def to_json(self) -> dict[str, Any]:
        return {
            "left": self.left.to_json(),
            "right": self.right.to_json(),
            "summary": {"only_left": len(self.only_left), "only_right": len(self.only_right),
                        "different": len(self.different), "same": self.same},
            "only_left": [o.to_json() for o in self.only_left],
            "only_right": [o.to_json() for o in self.only_right],
            "different": [d.to_json() for d in self.different],
        }


def check_compare_config(value: Any) -> dict[str, dict[str, dict[str, str]]]:
    """kmsnap.yaml's ``compare`` section, checked: ``{"names": {kind: {left: right}}}``.

    Raises ``ValueError(keypath, message)`` (the config checker adds file and line).
    """
    if not isinstance(value, dict):
        raise ValueError((), "must be a mapping with 'names'")
    extra = sorted(set(value) - {"names"})
    if extra:
        raise ValueError((extra[0],), f"unknown key '{extra[0]}' in 'compare' (use 'names')")
    names = value.get("names") or {}
    if not isinstance(names, dict):
        raise ValueError(("names",), "'compare.names' must map a kind to {left name: right name}")
    out: dict[str, dict[str, str]] = {}
    for kind, pairs in names.items():
        if kind not in PRODUCT_KINDS:
            raise ValueError(("names", str(kind)),
                             f"unknown kind '{kind}' in 'compare.names' "
                             f"(one of {', '.join(PRODUCT_KINDS)})")
        if not isinstance(pairs, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in pairs.items()
        ):
            raise ValueError(("names", kind),
                             f"'compare.names.{kind}' must map a left name to a right name")
        out[kind] = dict(pairs)
    return {"names": out}


# --- pairing products --------------------------------------------------------------------


def _side(snapshot: Snapshot, product_id: str) -> Side:
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
        return "left" if words & _LEFT_WORDS else "right" if words & _RIGHT_WORDS else "plain"
    env = record.get("environment")
    env = env.casefold() if isinstance(env, str) else ""
    return "left" if env in LEFT_ENVIRONMENTS else "right" if env in RIGHT_ENVIRONMENTS else None


def _stem(snapshot: Snapshot, product_id: str) -> str:
    """A product's name without its environment words: "Web (staging)" -> "web"."""
    name = normalize_name(entity_name("product", snapshot.of("product")[product_id]) or "")
    words = re.sub(r"[^\w ]+", " ", name).split()
    return " ".join(w for w in words if w not in _LEFT_WORDS | _RIGHT_WORDS)


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


# --- comparing two products --------------------------------------------------------------


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
    return Pairing(_side(snapshot, left), _side(snapshot, right), tuple(only_left),
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


# --- rendering ---------------------------------------------------------------------------


def _title(p: Pairing) -> str:
    def side(s: Side) -> str:
        env = f" ({escape(s.environment)})" if s.environment else ""
        return f"{quote(s.product)}{env} [{escape(s.product_id)}]"

    where = f" in account {quote(p.left.account)}" if p.left.account == p.right.account else ""
    return f"{side(p.left)} ↔ {side(p.right)}{where}"


def _rows(p: Pairing) -> list[tuple[str, str | None, str, str, str]]:
    """(kind, name, left mark, right mark, what) for each entity that is not the same."""
    rows: list[tuple[int, tuple[int, str], str, tuple[str, str | None, str, str, str]]] = []
    for o in p.only_left:
        rows.append((0, kind_sort_key(o.kind), normalize_name(o.name or ""),
                     (o.kind, o.name, "✓", "—", f"only in {escape(p.left.label)}")))
    for o in p.only_right:
        rows.append((0, kind_sort_key(o.kind), normalize_name(o.name or ""),
                     (o.kind, o.name, "—", "✓", f"only in {escape(p.right.label)}")))
    for d in p.different:
        what = "; ".join(
            f"{f}: {show_value(a)} ≠ {show_value(b)}" for f, (a, b) in d.fields.items()
        )
        if d.right_name != d.left_name:
            what = f"as {short_quote(d.right_name)}: {what}"
        rows.append((0, kind_sort_key(d.kind), normalize_name(d.left_name or ""),
                     (d.kind, d.left_name, "✓", "✓", what)))
    rows.sort(key=lambda r: (r[1], r[2], r[3][2]))
    return [r[3] for r in rows]


def _summary(p: Pairing) -> str:
    return (f"{len(p.only_left)} only in {escape(p.left.label)}, {len(p.only_right)} only in "
            f"{escape(p.right.label)}, {plural(len(p.different), 'different', 'different')}, "
            f"{p.same} the same")


def render_text(pairings: Sequence[Pairing]) -> str:
    out: list[str] = []
    for p in pairings:
        out.append(_title(p))
        rows = [(k, short_quote(n, over=_NAME_WIDTH, keep=_NAME_KEEP), a, b, w)
                for k, n, a, b, w in _rows(p)]
        if rows:
            head = ("kind", "name", escape(p.left.label), escape(p.right.label), "")
            widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
            for row in [head, *rows]:
                cells = [c.ljust(w) for c, w in zip(row[:4], widths, strict=True)]
                out.append(("  " + "  ".join(cells) + "  " + row[4]).rstrip())
        out.append(_summary(p))
        out.append("")
    return "\n".join(out)


def render_markdown(pairings: Sequence[Pairing]) -> str:
    out = ["## kmsnap: environments compared", ""]
    for p in pairings:
        out += [f"### {md_escape(_title(p))}", "", md_escape(_summary(p)), ""]
        rows = _rows(p)
        if rows:
            out.append(f"| kind | name | {md_escape(escape(p.left.label))} | "
                       f"{md_escape(escape(p.right.label))}"
                       " | difference |")
            out.append("|---|---|:-:|:-:|---|")
            for k, n, a, b, w in rows:
                kind, name = md_escape(rel_for_kind(k)), md_escape(short_quote(n))
                out.append(f"| {kind} | {name} | {a} | {b} | {md_escape(w)} |")
            out.append("")
    return "\n".join(out)


def render_json(pairings: Sequence[Pairing]) -> str:
    doc = {"version": JSON_VERSION, "pairs": [p.to_json() for p in pairings]}
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def render_pairings(pairings: Sequence[Pairing], fmt: str) -> str:
    """The comparison in ``fmt``: text, markdown or json."""
    if fmt == "text":
        return render_text(pairings)
    if fmt == "markdown":
        return render_markdown(pairings)
    if fmt == "json":
        return render_json(pairings)
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
