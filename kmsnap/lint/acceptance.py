"""The ``accept:`` section of kmsnap.yaml: changes a team agreed to, each with a reason.

Each entry names the change (kind, entity id, change type, optionally one field) and says why
and who accepted it, with an optional expiry date. ``kmsnap.config.checker`` calls
``parse_accept`` with itself, so errors name the file and the line.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from kmsnap.lint.config import Checking, _Parser
from kmsnap.model import KINDS, ChangeType

__all__ = ["ACCEPT_KEYS", "Acceptance", "parse_accept"]

ACCEPT_KEYS = ("kind", "id", "change", "field", "reason", "by", "expires")
CHANGE_NAMES: tuple[str, ...] = tuple(str(c) for c in ChangeType)


@dataclass(frozen=True)
class Acceptance:
    """One accepted change: what it is, why, who agreed, until when."""

    kind: str
    id: str
    change: str  # a ChangeType value: added, removed, changed, renamed, recreated
    reason: str
    by: str
    field: str | None = None  # only this field's change (a "changed" entry)
    expires: dt.date | None = None
    where: str = ""  # kmsnap.yaml:12, for the report


def _text(p: _Parser, data: dict[str, Any], key: str, at: tuple[str, ...], entry: str,
          what: str) -> str:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise p.c.fail(at, f"'{entry}' needs {what}")
    return str(value).strip()


def parse_accept(value: Any, checker: Checking) -> tuple[Acceptance, ...]:
    """The ``accept:`` list as ``Acceptance`` entries; errors through ``checker.fail``."""
    if value is None:
        return ()
    p = _Parser(checker)
    if not isinstance(value, list):
        raise checker.fail(("accept",), "'accept' must be a list of {kind, id, change, reason, "
                           "by, expires}")
    out: list[Acceptance] = []
    for i, item in enumerate(value):
        entry = ("accept", str(i))
        data = p.mapping(item, entry)
        p.keys(data, ACCEPT_KEYS, entry)
        at = (*entry, next(iter(data))) if data else entry  # the entry's first line
        name = ".".join(entry)
        kind = data.get("kind")
        if kind not in KINDS:
            raise checker.fail(at, f"'{name}' needs a kind, one of {', '.join(KINDS)}"
                               f", got {kind!r}")
        change = data.get("change")
        if change not in CHANGE_NAMES:
            raise checker.fail(at, f"'{name}' needs a change, one of "
                               f"{', '.join(CHANGE_NAMES)}, got {change!r}")
        field = data.get("field")
        if field is not None and (not isinstance(field, str) or not field):
            raise checker.fail((*entry, "field"), "'field' must be a field name")
        if field is not None and change != "changed":
            raise checker.fail((*entry, "field"), "'field' goes with change: changed")
        expires = data.get("expires")
        out.append(Acceptance(
            kind=str(kind),
            id=_text(p, data, "id", at, name, "the id of the entity"),
            change=str(change),
            reason=_text(p, data, "reason", at, name, "a reason (shown in reports)"),
            by=_text(p, data, "by", at, name, "who accepted the change (by:)"),
            field=field,
            expires=None if expires is None else p.date(expires, (*entry, "expires")),
            where=str(checker.fail(at, "")).rstrip(": "),
        ))
    return tuple(out)
