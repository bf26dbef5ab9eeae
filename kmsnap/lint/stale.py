"""``kmsnap stale``: verdicts on the usage fields of a snapshot pulled ``--with-stats``.

Each verdict is a ``Finding`` (so it renders like lint's): never sent; stopped sending (last
sent more than ``stopped_after_days`` before the reference date); sent but never used in a
report (when the snapshot has ``*_used_at``); a one-day entity (first sent = last sent, typical
of tests); hidden but still receiving data; visible but not used for ``unused_after_days``.
Thresholds come from ``stale:`` in kmsnap.yaml, per entity, product, kind or overall.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from pathlib import Path
from typing import Any

from kmsnap.git.runner import git_output
from kmsnap.lint.config import StaleConfig, Thresholds
from kmsnap.lint.engine import Finding, LintResult
from kmsnap.lint.rules import Rule
from kmsnap.model import KINDS, Record, Snapshot, entity_name

__all__ = ["DEFAULT_DAYS", "STALE_KINDS", "VERDICTS", "judge", "snapshot_date"]

DEFAULT_DAYS = 90

# Kinds whose records carry sent and used timestamps.
STALE_KINDS: tuple[str, ...] = tuple(k for k, s in KINDS.items() if "last_sent_at" in s.fields)

VERDICTS: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule("never-sent", "info", "No first or last sent date: never received.",
             "first_sent_at: null, last_sent_at: null", "an event the app sends"),
        Rule("stopped-sending", "warning",
             "Last sent more than stopped_after_days (90) days before the reference date.",
             "last_sent_at: 2025-01-02 with --as-of 2026-05-04", "last sent last week"),
        Rule("never-used", "info", "Sent, but never used in a report (*_used_at empty).",
             "last_sent_at set, last_used_at: null", "used in a report"),
        Rule("one-day", "warning", "First sent and last sent on the same day: typical of a "
             "test that reached production.",
             "first_sent_at and last_sent_at on 2026-03-02", "sent on many days"),
        Rule("hidden-receiving", "warning",
             "Hidden (is_visible false) but sent within stopped_after_days days.",
             "is_visible: false, last_sent_at yesterday", "visible, or no longer sent"),
        Rule("visible-unused", "info",
             "Visible, but last used more than unused_after_days (90) days ago.",
             "is_visible: true, last_used_at a year ago", "hidden, or used"),
    )
}


def _date(value: Any) -> dt.date | None:
    """The date of an ISO 8601 timestamp (``2026-04-30T18:12:00Z``); None when absent or not
    one (a hostile value is not a date, and not an error either)."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def _days(config: StaleConfig, field: str, *scopes: Thresholds | None) -> int:
    for scope in scopes:
        if scope is not None and getattr(scope, field) is not None:
            return int(getattr(scope, field))
    value = getattr(config.default, field)
    return DEFAULT_DAYS if value is None else int(value)


def judge(
    snapshot: Snapshot,
    config: StaleConfig,
    *,
    as_of: dt.date,
    kinds: Collection[str] | None = None,
) -> LintResult:
    """Every verdict on every event and property with usage fields, sorted like findings."""
    products = snapshot.of("product")
    found: list[Finding] = []
    for kind in STALE_KINDS:
        if kinds is not None and kind not in kinds:
            continue
        stats = snapshot.stats.get(kind, {})
        for entity_id in sorted(snapshot.of(kind)):
            record = snapshot.of(kind)[entity_id]
            pid = record.get("product_id")
            pid = None if pid is None else str(pid)
            pname = products.get(pid or "", {}).get("name")
            pname = pname if isinstance(pname, str) else None
            scopes = (config.entities.get(entity_id),
                      config.products.get(pid or "\0"), config.products.get(pname or "\0"),
                      config.kinds.get(kind))
            thresholds = (_days(config, "stopped_after_days", *scopes),
                          _days(config, "unused_after_days", *scopes))
            name = entity_name(kind, record)
            for verdict, message in _verdicts(stats.get(entity_id, {}), record, as_of,
                                              thresholds):
                found.append(Finding(verdict, VERDICTS[verdict].severity, kind, entity_id,
                                     name, message, pid, pname))
    found.sort(key=Finding.sort_key)
    return LintResult(findings=found)


def _verdicts(usage: Record, record: Record, as_of: dt.date,
              thresholds: tuple[int, int]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []

    def add(verdict: str, message: str) -> None:
        out.append((verdict, message))

    stopped_days, unused_days = thresholds
    first_sent, last_sent = _date(usage.get("first_sent_at")), _date(usage.get("last_sent_at"))
    first_used, last_used = _date(usage.get("first_used_at")), _date(usage.get("last_used_at"))
    tracks_use = "first_used_at" in usage or "last_used_at" in usage
    visible = record.get("is_visible")
    sent = first_sent or last_sent
    if sent is None:
        add("never-sent", "has never been sent")
    else:
        last = last_sent or sent
        age = (as_of - last).days
        stopped = age > stopped_days
        if stopped:
            add("stopped-sending", f"last sent {last.isoformat()}, {age} days before "
                f"{as_of.isoformat()} (more than {stopped_days})")
        if first_sent is not None and first_sent == last_sent:
            add("one-day", f"sent on one day only ({first_sent.isoformat()})")
        if tracks_use and first_used is None and last_used is None:
            add("never-used", "is sent but has never been used in a report")
        if visible is False and not stopped:
            add("hidden-receiving", f"is hidden but was sent {last.isoformat()}, "
                f"{age} days before {as_of.isoformat()}")
    if visible is True and last_used is not None:
        age = (as_of - last_used).days
        if age > unused_days:
            add("visible-unused", f"is visible but was last used {last_used.isoformat()}, "
                f"{age} days before {as_of.isoformat()} (more than {unused_days})")
    return out


def has_stats(snapshot: Snapshot) -> bool:
    """Whether the snapshot holds usage fields of any kind stale judges."""
    return any(snapshot.stats.get(kind) for kind in STALE_KINDS)


def snapshot_date(cwd: Path, rev: str | None, path: str) -> dt.date | None:
    """The date of the commit the snapshot is at: REV's commit for ``REV:PATH``, else the last
    commit that touched the directory ``path``; None outside git or without a commit."""
    args = ["log", "-1", "--format=%cI", "--no-show-signature", "--end-of-options",
            rev or "HEAD", "--"]
    if rev is None:
        args.append(path)
    out = git_output(cwd, args, check=False)
    if not out:
        return None
    return _date(out.decode("ascii", "replace").strip())
