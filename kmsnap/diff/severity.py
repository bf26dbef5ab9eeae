"""How much a change matters: the severity of each change type and of each field change.

Pure. The per-field rules are declared per kind in ``model.KINDS`` (``field_rules``); this
module only applies them, and orders severities for ``--fail-on`` and ``--severity``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from kmsnap.model import ChangeType, FieldRule, Severity, field_rules

# Highest first.
SEVERITIES: tuple[Severity, ...] = tuple(Severity)
_RANK: dict[str, int] = {severity: len(SEVERITIES) - 1 - i for i, severity in enumerate(SEVERITIES)}

# The thresholds of --fail-on: a severity, or "any" for every change.
ANY = "any"
LEVELS: tuple[str, ...] = (Severity.BREAKING, Severity.WARNING, ANY)
_LEVELS: dict[str, int] = {level: _RANK.get(level, 0) for level in LEVELS}

# The severity of a change that is not a field change (a rename is always breaking).
CHANGE_SEVERITY: Mapping[ChangeType, Severity] = {
    ChangeType.ADDED: Severity.INFO,
    ChangeType.REMOVED: Severity.BREAKING,
    ChangeType.RENAMED: Severity.BREAKING,
    ChangeType.RECREATED: Severity.BREAKING,
}

_CANCELED = frozenset({"canceled", "cancelled"})
_ABSENT = object()


class _HasSeverity(Protocol):
    @property
    def severity(self) -> str: ...


def severity_at_least(change: _HasSeverity, level: str) -> bool:
    """Whether ``change`` is at least as severe as ``level`` (breaking, warning or any)."""
    try:
        floor = _LEVELS[level]
    except KeyError:
        raise ValueError(
            f"unknown severity level {level!r}: use breaking, warning or any"
        ) from None
    return _RANK[change.severity] >= floor


def field_severity(kind: str, fields: Mapping[str, Mapping[str, Any]]) -> Severity:
    """The highest severity among the field changes in ``fields`` (DESIGN.md's rules)."""
    rules = field_rules(kind)
    level = Severity.INFO
    for path, sides in fields.items():
        rule = rules.get(path)
        if rule is None:
            continue
        if rule is FieldRule.BREAKING:
            return Severity.BREAKING
        old = sides.get("old", _ABSENT)
        new = sides.get("new", _ABSENT)
        if rule is FieldRule.HIDDEN and old is True and new is False:
            level = Severity.WARNING
        elif (
            rule is FieldRule.RETIRED
            and isinstance(new, str)
            and new.lower() in _CANCELED
            and not (isinstance(old, str) and old.lower() in _CANCELED)
        ):
            level = Severity.WARNING
    return level
