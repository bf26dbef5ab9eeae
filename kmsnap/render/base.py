"""Helpers the renderers share: safe quoting of names and values, and grouping by place.

Names and values come from the API or from an untrusted snapshot, so every renderer
shows them through ``quote``/``show_value``, which make control characters visible. The
reports for people (text, markdown, github) show them through ``short_quote``,
``short_escape`` and ``short_value``, which also shorten a name, id or value longer than
``LONG_TEXT`` characters, so that one huge name cannot push every other change out of a
report; the JSON format keeps every value whole.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kmsnap.diff.engine import SEVERITIES, Change, ChangeSet, ChangeType
from kmsnap.model import kind_sort_key, name_fields

# Singular words for the change types, as people read them.
CHANGE_WORDS: dict[str, str] = {
    ChangeType.ADDED: "added",
    ChangeType.REMOVED: "removed",
    ChangeType.CHANGED: "changed",
    ChangeType.RENAMED: "renamed",
    ChangeType.RECREATED: "re-created",
}

_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", '"': '\\"', "\\": "\\\\"}
# Categories that can forge or hide text: controls, format (bidi overrides, zero width),
# line and paragraph separators, unassigned and surrogates.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cn", "Cs", "Co"})


def escape(text: str) -> str:
    """``text`` with backslashes, quotes and every invisible or line-breaking character
    written as an escape (``\\n``, ``\\u202e``); printable Unicode stays as it is."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return text  # the common case, fast
    out = []
    for char in text:
        short = _SHORT_ESCAPES.get(char)
        if short is not None:
            out.append(short)
        elif unicodedata.category(char) in _UNSAFE_CATEGORIES or (
            not char.isprintable() and char != " "
        ):
            code = ord(char)
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)


def quote(text: str | None) -> str:
    """A name in double quotes, escaped so it stays on one line and cannot forge output."""
    return "(no name)" if text is None else f'"{escape(text)}"'


# A name, id or value longer than LONG_TEXT characters is shown in the reports for people as
# its first KEEP_TEXT characters, an ellipsis and its full length.
LONG_TEXT = 300
KEEP_TEXT = 200


def _length_note(length: int) -> str:
    return f"… ({length:,} characters)"


def shorten(text: str, *, over: int = LONG_TEXT, keep: int = KEEP_TEXT) -> str:
    """``text``, or for a text longer than ``over`` characters its first ``keep``, ``…`` and
    the full length (``abc… (70,000 characters)``); not escaped: escape the result, so the
    cut is made before escaping and never inside an escape."""
    return text if len(text) <= over else text[:keep] + _length_note(len(text))


def short_escape(text: str, *, over: int = LONG_TEXT, keep: int = KEEP_TEXT) -> str:
    """``escape(shorten(text))``: an id or a field path, escaped and shortened."""
    return escape(shorten(text, over=over, keep=keep))


def short_quote(text: str | None, *, over: int = LONG_TEXT, keep: int = KEEP_TEXT) -> str:
    """``quote(text)``, shortened like ``shorten``; the length note stands outside the
    quotes (``"abc…" (70,000 characters)``), where a name cannot forge it."""
    if text is None or len(text) <= over:
        return quote(text)
    return f'"{escape(text[:keep])}…" ({len(text):,} characters)'


# One unit of show_value's output: an escape (\n, \u202e, \U0001f600) or one character.
_SHOWN_UNIT = re.compile(r"\\(?:u[0-9a-f]{4}|U[0-9a-f]{8}|.)|.", re.DOTALL)


def short_value(value: Any, *, over: int = LONG_TEXT, keep: int = KEEP_TEXT) -> str:
    """``show_value(value)``, shortened: a string like ``short_quote``, a list or mapping
    whose shown form passes ``over`` characters cut after at most ``keep`` of them, at the
    end of an escape, never inside one, with ``…`` and the shown length."""
    if isinstance(value, str):
        return short_quote(value, over=over, keep=keep)
    shown = show_value(value)
    if len(shown) <= over:
        return shown
    cut = 0
    for unit in _SHOWN_UNIT.finditer(shown, 0, keep + 10):  # no unit is longer than 10
        if unit.end() > keep:
            break
        cut = unit.end()
    return shown[:cut] + _length_note(len(shown))


_PLAIN_KIND = re.compile(r"[a-z][a-z0-9_-]*\Z")


def show_kind(kind: str) -> str:
    """A kind as a word (``event``, ``funnel-reports``); any other kind name, which an
    untrusted snapshot can hold (``other_kinds``, a file under ``_other/``), is quoted and
    escaped like a name, so it cannot forge a line."""
    return kind if _PLAIN_KIND.match(kind) else short_quote(kind)


ABSENT_TEXT = "(absent)"


def show_value(value: Any) -> str:
    """A field value in a JSON-like, one-line, escaped form."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, list):
        return "[" + ", ".join(show_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{quote(str(k))}: {show_value(v)}" for k, v in value.items()) + "}"
    return quote(str(value))


def show_side(sides: dict[str, Any], side: str) -> str:
    """One side of a field change, shortened like ``short_value``; a field that does not
    exist on that side is ``(absent)``."""
    return short_value(sides[side]) if side in sides else ABSENT_TEXT


def rename_path(change: Change) -> str | None:
    """The field holding the name change of a renamed change (``title`` for metrics)."""
    if change.change == ChangeType.RENAMED and change.fields:
        for path in name_fields(change.kind):
            if path in change.fields:
                return path
    return None


def _name_side(change: Change, side: str) -> str | None:
    path = rename_path(change)
    if path is None:
        return change.name
    value = change.fields[path].get(side) if change.fields else None
    return value if isinstance(value, str) else None  # "" stays "", null or absent is no name


def old_name(change: Change) -> str | None:
    """The name before a rename (the name field's old value, ``""`` included; None when
    there was none), else the change's name."""
    return _name_side(change, "old")


def new_name(change: Change) -> str | None:
    """The name after a rename (the name field's new value, ``""`` included; None when
    there is none left), else the change's name."""
    return _name_side(change, "new")


CHANGE_MARKS: dict[str, str] = {
    ChangeType.ADDED: "+",
    ChangeType.REMOVED: "-",
    ChangeType.CHANGED: "~",
    ChangeType.RENAMED: "~",
    ChangeType.RECREATED: "-/+",
}


def change_head(change: Change, *, say_changed: bool = True) -> str:
    """A change in one escaped line, long names and ids shortened: ``event "Old" → "New"
    [id] renamed``, ``event "X" re-created [old → new]``, ``event "X" [id] added``;
    ``say_changed=False`` leaves the word ``changed`` to the ``~`` mark in front."""
    kind = show_kind(change.kind)
    ident = short_escape(change.id)
    if change.change == ChangeType.RENAMED:
        before, after = short_quote(old_name(change)), short_quote(new_name(change))
        return f"{kind} {before} → {after} [{ident}] renamed"
    if change.change == ChangeType.RECREATED:
        return (
            f"{kind} {short_quote(change.name)} re-created "
            f"[{short_escape(change.old_id or '')} → {ident}]"
        )
    head = f"{kind} {short_quote(change.name)} [{ident}]"
    if say_changed or change.change != ChangeType.CHANGED:
        head += f" {change.change}"
    return head


def field_lines(change: Change) -> list[tuple[str, str, str]]:
    """Each changed field but a rename's name field: (escaped path, old side, new side),
    long paths and values shortened."""
    skip = rename_path(change)
    return [
        (short_escape(path), show_side(sides, "old"), show_side(sides, "new"))
        for path, sides in (change.fields or {}).items()
        if path != skip
    ]


@dataclass
class Group:
    """The changes of one account and product (either may be None)."""

    account_id: str | None
    product_id: str | None
    account_name: str | None
    product_name: str | None
    changes: list[Change]


def iter_groups(cs: ChangeSet) -> Iterator[Group]:
    """Changes grouped by account, then product (account-level ones first), by name then id.

    Within a group the change set's order (kind, name, id) is kept.
    """
    by_place: dict[tuple[str | None, str | None], list[Change]] = {}
    for change in cs.changes:
        by_place.setdefault((change.account_id, change.product_id), []).append(change)

    def key(place: tuple[str | None, str | None]) -> tuple[Any, ...]:
        account_id, product_id = place
        return (
            account_id is None,
            cs.account_names.get(account_id or "", ""),
            account_id or "",
            product_id is not None,
            cs.product_names.get(product_id or "", ""),
            product_id or "",
        )

    for place in sorted(by_place, key=key):
        account_id, product_id = place
        yield Group(
            account_id=account_id,
            product_id=product_id,
            account_name=cs.account_names.get(account_id) if account_id else None,
            product_name=cs.product_names.get(product_id) if product_id else None,
            changes=by_place[place],
        )


def severity_counts(cs: ChangeSet) -> dict[str, int]:
    """How many changes of each severity, highest first."""
    counts: dict[str, int] = dict.fromkeys(SEVERITIES, 0)
    for change in cs.changes:
        counts[change.severity] += 1
    return counts


def plural(count: int, word: str, words: str | None = None) -> str:
    """``1 change``, ``2 changes``; ``words`` for an irregular plural (``entities``)."""
    return f"{count} {word if count == 1 else (words or word + 's')}"


def summary_line(cs: ChangeSet) -> str:
    """``Catalog: 3 added, 1 removed, 2 changed, 1 renamed, 1 re-created.`` or ``No changes.``"""
    if not cs.changes:
        return "No changes."
    parts = [f"{count} {CHANGE_WORDS[kind]}" for kind, count in cs.summary().items()]
    return "Catalog: " + ", ".join(parts) + "."


IGNORED_HEADING = "Ignored by kmsnap.yaml"
SELECTED_HEADING = "Selected by kmsnap.yaml"


def selected_lines(cs: ChangeSet) -> list[str]:
    """``exclude.products: "Web App", "Legacy"`` for each include/exclude list that shaped the
    comparison (what it left out is not compared), names escaped and shortened."""
    return [
        f"{key}: " + ", ".join(short_quote(name) for name in names)
        for key, names in sorted(cs.selected.items())
    ]


def ignored_fields(cs: ChangeSet) -> list[tuple[str, str]]:
    """(``kind.field``, reason) for each field ``kmsnap.yaml`` left out, in kind order, each
    part escaped like a name."""
    out = []
    for kind in sorted(cs.ignored, key=kind_sort_key):
        for path, reason in sorted(cs.ignored[kind].items()):
            out.append((f"{escape(kind)}.{escape(path)}", escape(reason)))
    return out
