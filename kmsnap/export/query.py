"""``kmsnap find``'s predicate language: terms parsed from the command line, matched against
the export table's rows (``table.build_table``), and the matches rendered as a text table.

A term is ``KEY:VALUE``; ``-KEY:VALUE`` negates it; terms are ANDed. Pure: no I/O; a bad
term is a ``UsageError`` of one line naming it, with a suggestion.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kmsnap.errors import UsageError
from kmsnap.export.table import Table
from kmsnap.export.usage import can_be_stale, last_uses, newest_use, stats_kinds
from kmsnap.model import KINDS, Snapshot, kind_for_rel
from kmsnap.render.base import escape, short_escape, show_kind

__all__ = [
    "KEYS",
    "Context",
    "Query",
    "Term",
    "close_names",
    "filter_table",
    "is_term",
    "match_row",
    "parse_query",
    "pick_rows",
    "query_context",
    "render_find_table",
]

# Every key, with what it matches (the reference in docs/commands.md says the same).
KEYS: dict[str, str] = {
    "kind": "the kind, singular or plural (event, events)",
    "id": "the id, exactly",
    "name": "a part of the name (a metric's title), any case; /regex/ or /regex/i",
    "display_name": "a part of the display name, any case; /regex/; none",
    "description": "a part of the description, any case; /regex/; none (null or empty)",
    "type": "a property's type, any case; none",
    "unit_type": "a metric's unit type, any case; none",
    "status": "the status, any case; none",
    "hidden": "true or false (is_visible is false)",
    "environment": "the environment of the entity's product (staging, production ...); none",
    "product": "the product's name (any case) or id",
    "account": "the account's name (any case) or id",
    "stale": "Nd: no use in the N days before the snapshot's newest use (needs stats)",
}
_PART = frozenset({"name", "display_name", "description"})  # a plain value is a part
_EXACT = frozenset({"type", "unit_type", "status", "environment"})  # a plain value is whole
_TRUE = frozenset({"true", "yes"})
_FALSE = frozenset({"false", "no"})
_STALE = re.compile(r"([0-9]{1,6})d\Z")
_REGEX = re.compile(r"/(.*)/([i]*)\Z", re.DOTALL)
_MAX_TERM = 1000
_KEY = re.compile(r"-?([a-z_]+):", re.ASCII)
# "kind:event hidden:true" given as one argument (quoted whole): two terms, not a kind.
_JOINED = re.compile(r"\s-?(?:" + "|".join(KEYS) + r"):")


@dataclass(frozen=True)
class Term:
    """One parsed term: its text as given, key, value and negation, and what it compiles to."""

    text: str
    key: str
    value: str
    negate: bool = False
    pattern: re.Pattern[str] | None = None
    none: bool = False  # the value ``none``: null or empty
    flag: bool | None = None  # hidden:
    days: int | None = None  # stale:


@dataclass(frozen=True)
class Query:
    """Terms, ANDed."""

    terms: tuple[Term, ...] = ()

    @property
    def needs_stats(self) -> bool:
        """Whether a term reads usage fields (``stale:``)."""
        return any(t.key == "stale" for t in self.terms)


def _suggest(word: str, choices: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def is_term(text: str) -> bool:
    """Whether ``text`` reads as a term rather than a snapshot: ``KEY:`` (or ``-KEY:``) with a
    known key, or one close to a known key (a typo to report, not a revision to read)."""
    match = _KEY.match(text)
    if match is None:
        return False
    key = match.group(1)
    return key in KEYS or bool(difflib.get_close_matches(key, KEYS, n=1, cutoff=0.7))


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def parse_term(text: str, *, kinds: Collection[str] = ()) -> Term:
    """One term; ``kinds`` are the kinds besides ``KINDS`` that ``kind:`` accepts."""
    shown = short_escape(text, over=80, keep=60)
    if len(text) > _MAX_TERM:
        raise UsageError(f"term {shown}: longer than {_MAX_TERM} characters")
    negate = text.startswith("-")
    key, colon, raw = text[int(negate):].partition(":")
    if not colon:
        raise UsageError(f"term {shown}: not KEY:VALUE; to find it in names write "
                         f"name:{short_escape(text, over=60, keep=40)}")
    if key not in KEYS:
        hint = _suggest(key, KEYS)
        raise UsageError(f"term {shown}: unknown key {short_escape(key, over=40, keep=30)!r}"
                         + (f"; did you mean {hint}:?" if hint else "")
                         + f" (keys: {', '.join(KEYS)})")
    value = _unquote(raw)
    if _JOINED.search(value):
        raise UsageError(f"term {shown}: one term per argument (split it at the spaces)")
    term = Term(text=text, key=key, value=value, negate=negate)
    if key == "kind":
        kind = kind_for_rel(value)
        if kind not in KINDS and kind not in kinds and value not in kinds:
            hint = _suggest(value, [*KINDS, *(s.rel for s in KINDS.values())])
            raise UsageError(f"term {shown}: unknown kind"
                             + (f"; did you mean kind:{hint}?" if hint else
                                f"; use one of {', '.join(KINDS)}"))
        return Term(text, key, kind if kind in KINDS or kind in kinds else value, negate)
    if key == "hidden":
        lowered = value.casefold()
        if lowered not in _TRUE | _FALSE:
            raise UsageError(f"term {shown}: use hidden:true or hidden:false")
        return Term(text, key, value, negate, flag=lowered in _TRUE)
    if key == "stale":
        days = _STALE.match(value)
        if days is None or int(days.group(1)) < 1:
            raise UsageError(f"term {shown}: use a number of days, like stale:90d")
        return Term(text, key, value, negate, days=int(days.group(1)))
    if key in ("id", "product", "account"):
        if not value:
            raise UsageError(f"term {shown}: give a value, like {key}:VALUE")
        return term
    if value.casefold() == "none":
        return Term(text, key, value, negate, none=True)
    regex = _REGEX.match(value)
    if regex is not None:
        try:
            pattern = re.compile(regex.group(1), re.IGNORECASE if regex.group(2) else 0)
        except re.error as exc:
            raise UsageError(f"term {shown}: bad regular expression: {exc}") from None
        return Term(text, key, value, negate, pattern=pattern)
    if not value:
        raise UsageError(f"term {shown}: give a value, like {key}:none or {key}:/regex/")
    return term


def parse_query(texts: Sequence[str], *, kinds: Collection[str] = ()) -> Query:
    """The query of the terms ``texts`` (one term each), ANDed; the first bad term fails."""
    return Query(tuple(parse_term(text, kinds=kinds) for text in texts))


@dataclass(frozen=True)
class Context:
    """What matching needs beyond a row: product environments, and last uses for ``stale``."""

    environments: Mapping[str, Any] = field(default_factory=dict)
    last_use: Mapping[tuple[str, str], datetime | None] = field(default_factory=dict)
    stats_kinds: frozenset[str] = frozenset()
    newest: datetime | None = None


def query_context(snapshot: Snapshot) -> Context:
    """The context of ``snapshot``: stale is judged, as on the docs page, against the newest
    use in the whole snapshot, so the same snapshot always gives the same answer."""
    environments = {pid: rec.get("environment") for pid, rec in snapshot.of("product").items()}
    last_use = last_uses(snapshot)
    return Context(environments, last_use, stats_kinds(snapshot), newest_use(last_use))


def _text_matches(term: Term, value: Any) -> bool:
    if term.none:
        return value is None or value == ""
    if value is None:
        return False
    text = value if isinstance(value, str) else str(value)
    if term.pattern is not None:
        return term.pattern.search(text) is not None
    if term.key in _EXACT:
        return text.casefold() == term.value.casefold()
    return term.value.casefold() in text.casefold()


def _place_matches(term: Term, row: Mapping[str, Any]) -> bool:
    name = row.get(term.key)
    return row.get(f"{term.key}_id") == term.value or (
        isinstance(name, str) and name.casefold() == term.value.casefold())


def _is_stale(term: Term, row: Mapping[str, Any], context: Context) -> bool:
    kind = row["kind"]
    if not can_be_stale(kind, context.stats_kinds) or context.newest is None:
        return False
    last = context.last_use.get((kind, row["id"]))
    return last is None or last < context.newest - timedelta(days=term.days or 0)


def _term_matches(term: Term, row: Mapping[str, Any], context: Context) -> bool:
    key = term.key
    if key == "kind":
        return bool(row["kind"] == term.value)
    if key == "id":
        return bool(row["id"] == term.value)
    if key == "hidden":
        hidden = row.get("is_visible") is False or row.get("visible") is False
        return hidden is term.flag
    if key == "stale":
        return _is_stale(term, row, context)
    if key in ("product", "account"):
        return _place_matches(term, row)
    if key == "environment":
        value = (row.get("environment") if row["kind"] == "product"
                 else context.environments.get(row.get("product_id") or ""))
        return _text_matches(term, value)
    if key == "description" and term.none:
        spec = KINDS.get(row["kind"])
        if spec is not None and "description" not in spec.fields and "description" not in row:
            return False  # an account has no description to lack
    return _text_matches(term, row.get(key))


def match_row(query: Query, row: Mapping[str, Any], context: Context) -> bool:
    """Whether ``row`` (an export table row) matches every term."""
    return all(_term_matches(t, row, context) is not t.negate for t in query.terms)


def filter_table(table: Table, query: Query, context: Context) -> Table:
    """The rows of ``table`` that match ``query``, in the table's order and columns."""
    return Table(table.columns, tuple(r for r in table.rows if match_row(query, r, context)))


_TABLE_COLUMNS = ("kind", "account", "product", "id", "name")
_CELL = 48  # a longer name is cut to this many characters and its length


def _cell(row: Mapping[str, Any], column: str) -> str:
    value = row.get(column)
    if column == "kind":
        return show_kind(str(value))
    if value is None:
        return "-"
    return short_escape(str(value), over=_CELL, keep=_CELL - 8)


def render_find_table(table: Table, total: int) -> str:
    """The matches as aligned text: kind, account, product, id, name (each escaped, long ones
    shortened), then a line saying how many of ``total`` entities matched."""
    cells = [[_cell(row, c) for c in _TABLE_COLUMNS] for row in table.rows]
    count = f"{len(table.rows):,} of {total:,} entities match\n"
    if not cells:
        return count
    widths = [max(len(c) for c in column) for column in zip(*cells, _TABLE_COLUMNS, strict=True)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
             for line in [list(_TABLE_COLUMNS), *cells]]
    return "\n".join(lines) + "\n" + count


assert all(escape(k) == k for k in KEYS)  # keys are shown as they are in messages


# --- kmsnap show: one entity by id or name ----------------------------------------------------


def pick_rows(
    table: Table,
    name_or_id: str,
    *,
    product: str | None = None,
    account: str | None = None,
) -> list[dict[str, Any]]:
    """The rows ``name_or_id`` names: those whose id is it exactly, else those whose name is
    it (any case); narrowed to ``product``/``account`` (name, any case, or id) when given."""

    def here(row: Mapping[str, Any]) -> bool:
        return all(want is None or _place_matches(Term(want, key, want), row)
                   for key, want in (("product", product), ("account", account)))

    rows = [r for r in table.rows if here(r)]
    by_id = [r for r in rows if r["id"] == name_or_id]
    if by_id:
        return by_id
    folded = name_or_id.casefold()
    return [r for r in rows if isinstance(r["name"], str) and r["name"].casefold() == folded]


def close_names(table: Table, name_or_id: str, n: int = 5) -> list[str]:
    """Up to ``n`` names in ``table`` close to ``name_or_id`` (difflib), closest first."""
    names: dict[str, str] = {}
    for row in table.rows:
        if isinstance(row["name"], str):
            names.setdefault(row["name"].casefold(), row["name"])
    return [names[m] for m in difflib.get_close_matches(name_or_id.casefold(), names, n=n)]
