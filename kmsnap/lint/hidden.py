"""Hide before remove: removing an entity that has been hidden for at least N days, as the
git history of the snapshot shows, is a warning rather than a breaking change.

Off unless ``hide_before_remove_days`` is set in kmsnap.yaml. The history is the one
``kmsnap log`` walks (``kmsnap.history.walk``): the last commit that turned the entity's
``is_visible`` (v3: ``visible``) from true to false, with nothing turning it back since.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from kmsnap.diff.changeset import ChangeSet
from kmsnap.errors import GitError, UsageError
from kmsnap.model import ChangeType, FieldRule, Severity, field_rules

__all__ = ["hidden_since", "parse_hide_days", "soften_hidden_removals"]

KEY = "hide_before_remove_days"


def parse_hide_days(value: Any, checker: Any) -> int | None:
    """``hide_before_remove_days``: a number of days (1 or more), or None when not set."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise checker.fail((KEY,), f"'{KEY}' must be a number of days (1 or more), got {value!r}")
    return value


def _date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        return None


def hidden_since(entries: Iterable[Any]) -> dict[tuple[str, str], dt.date]:
    """(kind, id) -> the date it was hidden, for entities still hidden at the newest entry;
    ``entries`` are ``kmsnap.history.walk.LogEntry`` items, newest first (as ``History``)."""
    hidden: dict[tuple[str, str], dt.date] = {}
    for entry in reversed(list(entries)):
        when = _date(entry.commit.date)
        for change in entry.changes:
            key = (change.kind, change.id)
            if change.change == ChangeType.REMOVED:
                hidden.pop(key, None)
                continue
            for path, sides in (change.fields or {}).items():
                if field_rules(change.kind).get(path) != FieldRule.HIDDEN:
                    continue
                if sides.get("old") is True and sides.get("new") is False and when:
                    hidden[key] = when
                elif sides.get("new") is not False:
                    hidden.pop(key, None)
    return hidden


def soften_hidden_removals(
    cs: ChangeSet, days: int | None, spec: str, *, cwd: Path, today: dt.date | None = None
) -> ChangeSet:
    """``cs`` with each breaking removal of an entity hidden for ``days`` or more turned into a
    warning; ``spec`` is the snapshot (a directory in the repository or ``REV:PATH``) whose
    history tells. Unchanged when ``days`` is None, nothing is removed, or there is no
    history (not a git repository, a path git does not know)."""
    if days is None or not any(c.change == ChangeType.REMOVED for c in cs.changes):
        return cs
    from kmsnap.git.source import split_spec
    from kmsnap.history.walk import LogQuery, load_history

    candidate = Path(spec) if Path(spec).is_absolute() else cwd / spec
    parts = None if candidate.exists() else split_spec(spec)
    rev, path = parts if parts is not None else (None, spec)
    try:
        history = load_history(LogQuery(path=path, revisions=(rev,) if rev else ()), cwd=cwd)
    except (GitError, UsageError):
        return cs
    hidden = hidden_since(history.entries)
    today = today or dt.date.today()
    changes = []
    for change in cs.changes:
        since = hidden.get((change.kind, change.id))
        if (change.change == ChangeType.REMOVED and change.severity == Severity.BREAKING
                and since is not None and (today - since).days >= days):
            change = replace(change, severity=Severity.WARNING)
        changes.append(change)
    return replace(cs, changes=changes)
