"""When each entity was last used, from its usage fields: what the docs page's stale filter
and ``kmsnap find``'s ``stale:`` judge by. Stale is measured against the newest use in the
whole snapshot, so the same snapshot always gives the same answer."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from kmsnap.model import Snapshot, is_container

LAST_USE_FIELDS = ("last_used_at", "last_sent_at")


def parse_time(value: Any) -> datetime | None:
    """An API timestamp as an aware datetime (UTC when it names no zone); None if it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def last_uses(snapshot: Snapshot) -> dict[tuple[str, str], datetime | None]:
    """(kind, id) -> the latest of ``last_used_at`` and ``last_sent_at``, for every entity
    with usage fields (None: it has them, but neither is a time)."""
    out: dict[tuple[str, str], datetime | None] = {}
    for kind, by_id in snapshot.stats.items():
        for entity_id, usage in by_id.items():
            uses = [w for w in (parse_time(usage.get(f)) for f in LAST_USE_FIELDS) if w]
            out[(kind, entity_id)] = max(uses) if uses else None
    return out


def newest_use(last: Mapping[tuple[str, str], datetime | None]) -> datetime | None:
    """The newest use in ``last_uses``: the point stale is measured back from."""
    return max((w for w in last.values() if w is not None), default=None)


def stats_kinds(snapshot: Snapshot) -> frozenset[str]:
    """The kinds the snapshot holds usage fields for."""
    return frozenset(kind for kind, by_id in snapshot.stats.items() if by_id)


def can_be_stale(kind: str, with_stats: frozenset[str]) -> bool:
    """Whether ``kind`` is judged at all: it has usage fields and is not a container."""
    return kind in with_stats and not is_container(kind)
