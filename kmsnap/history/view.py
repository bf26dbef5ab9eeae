"""Views of the catalog history: filters, one entity's timeline, and the text, markdown and
JSON renderings of ``kmsnap log``. Pure: data in, data or ``str`` out.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kmsnap.diff.engine import SEVERITIES, Change, ChangeType, normalize_kinds, severity_at_least
from kmsnap.errors import UsageError
from kmsnap.history.walk import Commit, LogEntry
from kmsnap.model import KINDS, name_fields
from kmsnap.render.base import (
    ABSENT_TEXT,
    CHANGE_MARKS,
    CHANGE_WORDS,
    change_head,
    escape,
    field_lines,
    new_name,
    old_name,
    plural,
    quote,
    rename_path,
    short_escape,
    short_quote,
    short_value,
    show_kind,
)
from kmsnap.render.changes import LOG_FORMATS
from kmsnap.render.markdown import md_escape

__all__ = [
    "LOG_FORMATS",
    "SEVERITY_LEVELS",
    "EntityGroup",
    "Places",
    "TimelineEvent",
    "entity_groups",
    "entity_timeline",
    "filter_entries",
    "initial_summary",
    "is_initial",
    "place_names",
    "render_changes_text",
    "render_log",
    "render_timeline",
]

SEVERITY_LEVELS = SEVERITIES


def filter_entries(
    entries: Iterable[LogEntry],
    *,
    kinds: Collection[str] | None = None,
    severity: str | None = None,
    include_empty: bool = False,
) -> list[LogEntry]:
    """Keep changes of ``kinds`` at ``severity`` or above; drop commits left without changes
    unless ``include_empty`` (``--all``)."""
    if severity is not None and severity not in SEVERITY_LEVELS:
        raise UsageError(f"--severity {severity!r}: use breaking, warning or info")
    level = "any" if severity in (None, "info") else severity
    wanted = normalize_kinds(kinds) if kinds else None
    out: list[LogEntry] = []
    for entry in entries:
        changes = [
            c
            for c in entry.changes
            if (wanted is None or c.kind in wanted) and severity_at_least(c, str(level))
        ]
        if changes or include_empty:
            out.append(LogEntry(commit=entry.commit, changes=changes, warning=entry.warning))
    return out


@dataclass(frozen=True)
class TimelineEvent:
    """One change to the followed entity, in the commit that made it."""

    commit: Commit
    change: Change

    def to_json(self) -> dict[str, Any]:
        return {**self.commit.to_json(), "change": self.change.to_json()}


def _names(change: Change) -> set[str]:
    """Every name the entity had in this change: the current one and, for a rename, the old."""
    names = {change.name} if change.name is not None else set()
    for path in name_fields(change.kind):
        sides = (change.fields or {}).get(path)
        if sides:
            names.update(v for v in sides.values() if isinstance(v, str))
    return names


def entity_timeline(entries: Sequence[LogEntry], name_or_id: str) -> list[TimelineEvent]:
    """The life of one entity, oldest first: created, each change, renames, re-creations
    (linked to the predecessor through ``old_id``), removed.

    ``name_or_id`` is matched against ids first; when no id matches, against every name the
    entity ever had (so an old name still finds it). Entities sharing a name in different
    products are all followed.
    """
    ordered = [(entry.commit, change) for entry in reversed(entries) for change in entry.changes]
    lineage: set[tuple[str, str]] = set()
    for _commit, change in ordered:
        if name_or_id in (change.id, change.old_id):
            lineage.add((change.kind, change.id))
    if not lineage:
        for _commit, change in ordered:
            if name_or_id in _names(change):
                lineage.add((change.kind, change.id))
    # A re-created entity continues its predecessor (and the predecessor its successor).
    grew = True
    while grew:
        grew = False
        for _commit, change in ordered:
            if change.change != "recreated" or change.old_id is None:
                continue
            pair = {(change.kind, change.id), (change.kind, change.old_id)}
            if pair & lineage and not pair <= lineage:
                lineage |= pair
                grew = True
    return [
        TimelineEvent(commit, change)
        for commit, change in ordered
        if (change.kind, change.id) in lineage
    ]


# --- rendering --------------------------------------------------------------------------

def _head(change: Change, where: str = "") -> str:
    """One line naming a change: ``~ event "Old" → "New" [id] renamed in account "A" ›
    product "W" (breaking)``."""
    text = change_head(change) + (f" in {where}" if where else "")
    if change.severity != "info":
        text += f" ({change.severity})"
    return f"{CHANGE_MARKS.get(change.change, '?')} {text}"


def _commit_line(commit: Commit) -> str:
    return f"commit {commit.commit}\nDate:   {commit.date}\nAuthor: {escape(commit.author)}"


@dataclass(frozen=True)
class Places:
    """Account and product names by id (``place_names``), to say where an entity lives."""

    accounts: Mapping[str, str]
    products: Mapping[str, str]

    def of(self, change: Change) -> str:
        """``account "Acme" › product "Web"`` (names, else ids); "" for an account itself."""
        parts = []
        for kind, entity_id, names in (("account", change.account_id, self.accounts),
                                       ("product", change.product_id, self.products)):
            if entity_id is None or change.kind == kind:
                continue
            name = names.get(entity_id)
            parts.append(f"{kind} {short_quote(name)}" if name is not None
                         else f"{kind} [{short_escape(entity_id)}]")
        return " › ".join(parts)


def render_changes_text(
    changes: Sequence[Change], indent: str, places: Places | None = None
) -> list[str]:
    """One line per change (with where the entity lives when ``places`` knows), then one
    per changed field (``old → new``), all escaped."""
    lines: list[str] = []
    for change in changes:
        lines.append(indent + _head(change, places.of(change) if places is not None else ""))
        lines.extend(f"{indent}    {p}: {old} → {new}" for p, old, new in field_lines(change))
    return lines


def _md_item(change: Change, places: Places | None) -> list[str]:
    """One change as ``kmsnap diff --format markdown`` writes it: ``- **renamed** event
    "Old" → "New" (id x) in account "Acme" › product "Web"``, then its fields."""
    kind = md_escape(show_kind(change.kind))
    if change.change == ChangeType.RENAMED:
        what = (f"{kind} {md_escape(short_quote(old_name(change)))} → "
                f"{md_escape(short_quote(new_name(change)))}")
    else:
        what = f"{kind} {md_escape(short_quote(change.name))}"
    ident = f"id {md_escape(short_escape(change.id))}"
    if change.change == ChangeType.RECREATED:
        ident = (f"id {md_escape(short_escape(change.old_id or ''))} → "
                 f"{md_escape(short_escape(change.id))}")
    line = f"- **{CHANGE_WORDS[change.change]}** {what} ({ident})"
    if change.severity == "breaking":
        line += " 🛑 breaking"
    elif change.severity == "warning":
        line += " ⚠️ warning"
    where = places.of(change) if places is not None else ""
    if where:
        line += f" in {md_escape(where)}"
    lines = [line]
    skip = rename_path(change)
    for path, sides in (change.fields or {}).items():
        if path == skip:
            continue
        old = (md_escape(short_value(sides["old"])) if "old" in sides else f"_{ABSENT_TEXT}_")
        new = (md_escape(short_value(sides["new"])) if "new" in sides else f"_{ABSENT_TEXT}_")
        lines.append(f"  - {md_escape(short_escape(path))}: {old} → {new}")
    return lines


def _md_changes(changes: Sequence[Change], places: Places | None = None) -> list[str]:
    lines: list[str] = []
    for change in changes:
        lines.extend(_md_item(change, places))
    return lines


def is_initial(entry: LogEntry) -> bool:
    """A commit that brought the first snapshot: every change an addition."""
    return bool(entry.changes) and all(c.change == ChangeType.ADDED for c in entry.changes)


def initial_summary(entry: LogEntry) -> str:
    """``initial snapshot: 2,030 entities (2 accounts, 5 products, ...)``."""
    counts: dict[str, int] = {}
    for change in entry.changes:
        counts[change.kind] = counts.get(change.kind, 0) + 1
    order = [k for k in KINDS if k in counts] + sorted(k for k in counts if k not in KINDS)
    parts = ", ".join(plural(counts[k], show_kind(k), KINDS[k].rel if k in KINDS else None)
                      for k in order)
    total = len(entry.changes)
    return (f"initial snapshot: {total:,} {'entity' if total == 1 else 'entities'} ({parts}); "
            "--all lists them")


def _short_date(date: str) -> str:
    return date[:10] if len(date) >= 10 else date


def render_log(
    entries: Sequence[LogEntry], fmt: str, *, places: Places | None = None,
    initial: LogEntry | None = None,
) -> str:
    """The log (newest first) as ``text`` (like ``git log``), ``markdown`` or ``json``; each
    change says where its entity lives (``places``), and the ``initial`` entry (the first
    snapshot: thousands of additions) is one summary line, not a list."""
    if fmt == "json":
        return json.dumps([e.to_json() for e in entries], ensure_ascii=False, indent=2) + "\n"
    blocks: list[str] = []
    for entry in entries:
        commit = entry.commit
        summary = initial_summary(entry) if entry is initial else None
        if fmt == "markdown":
            lines = [
                f"### {md_escape(_short_date(commit.date))} · {md_escape(escape(commit.subject))}",
                "",
                f"{md_escape(escape(commit.author))} · commit {commit.commit[:12]} · "
                f"{_count(len(entry.changes))}",
                "",
            ]
            if summary is not None:
                lines.append(f"_{md_escape(summary)}_")
            else:
                lines += _md_changes(entry.changes, places) or ["_No catalog changes._"]
        elif fmt == "text":
            lines = [_commit_line(commit), "", f"    {escape(commit.subject)}", ""]
            if summary is not None:
                lines.append(f"    {summary}")
            else:
                lines += (render_changes_text(entry.changes, "    ", places)
                          or ["    (no catalog changes)"])
        else:
            raise UsageError(f"--format {fmt!r}: use text, markdown or json")
        blocks.append("\n".join(lines))
    if not blocks:
        return "No catalog changes.\n" if fmt == "text" else "_No catalog changes._\n"
    return "\n\n".join(blocks) + "\n"


def _count(n: int) -> str:
    return plural(n, "change")


@dataclass
class EntityGroup:
    """The timeline of one entity, re-creations followed: its kind, its ids oldest first,
    where it lives, and its events oldest first."""

    kind: str
    ids: list[str]
    account_id: str | None
    product_id: str | None
    events: list[TimelineEvent]

    @property
    def name(self) -> str | None:
        """The entity's latest name."""
        for event in reversed(self.events):
            name = new_name(event.change)
            if name is not None:
                return name
        return None


def entity_groups(events: Sequence[TimelineEvent]) -> list[EntityGroup]:
    """``events`` (oldest first) split per entity: a re-created entity and its predecessor are
    one; groups in the order of their first event."""
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(key: tuple[str, str]) -> tuple[str, str]:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    for event in events:
        change = event.change
        find((change.kind, change.id))
        if change.change == "recreated" and change.old_id is not None:
            parent[find((change.kind, change.old_id))] = find((change.kind, change.id))
    groups: dict[tuple[str, str], EntityGroup] = {}
    for event in events:
        change = event.change
        root = find((change.kind, change.id))
        group = groups.get(root)
        if group is None:
            group = groups[root] = EntityGroup(change.kind, [], None, None, [])
        for entity_id in (change.old_id, change.id):
            if entity_id is not None and entity_id not in group.ids:
                group.ids.append(entity_id)
        group.account_id = change.account_id or group.account_id
        group.product_id = change.product_id or group.product_id
        group.events.append(event)
    return list(groups.values())


def place_names(entries: Iterable[LogEntry]) -> tuple[dict[str, str], dict[str, str]]:
    """(account id -> name, product id -> name) as the history knows them, latest name wins:
    from the changes to accounts and products themselves."""
    accounts: dict[str, str] = {}
    products: dict[str, str] = {}
    for entry in reversed(list(entries)):  # oldest first, so the newest name wins
        for change in entry.changes:
            name = new_name(change)
            if name is None:
                continue
            if change.kind == "account":
                accounts[change.id] = name
            elif change.kind == "product":
                products[change.id] = name
    return accounts, products


def _group_place(
    group: EntityGroup, accounts: Mapping[str, str], products: Mapping[str, str]
) -> str:
    parts = []
    if group.account_id is not None and group.kind != "account":
        name = accounts.get(group.account_id)
        parts.append(
            f"account {quote(name)}"
            if name is not None
            else f"account [{escape(group.account_id)}]"
        )
    if group.product_id is not None and group.kind != "product":
        name = products.get(group.product_id)
        parts.append(
            f"product {quote(name)}"
            if name is not None
            else f"product [{escape(group.product_id)}]"
        )
    return " › ".join(parts) if parts else "(no account or product)"


def _group_title(
    group: EntityGroup, accounts: Mapping[str, str], products: Mapping[str, str]
) -> str:
    ids = " → ".join(escape(i) for i in group.ids)
    return (
        f"{show_kind(group.kind)} {quote(group.name)} [{ids}] in "
        f"{_group_place(group, accounts, products)}"
    )


def render_timeline(
    query: str,
    events: Sequence[TimelineEvent],
    fmt: str,
    *,
    account_names: Mapping[str, str] | None = None,
    product_names: Mapping[str, str] | None = None,
) -> str:
    """The timeline (oldest first) of each entity ``query`` matched, as ``text``,
    ``markdown`` or ``json``: one section per entity, saying where it lives (account and
    product names from ``account_names``/``product_names``, else ids), and saying so when
    a name matched several entities."""
    accounts = account_names or {}
    products = product_names or {}
    groups = entity_groups(events)
    if fmt == "json":
        data = {
            "entity": query,
            "events": [e.to_json() for e in events],
            "entities": [
                {
                    "kind": g.kind,
                    "ids": g.ids,
                    "name": g.name,
                    "account_id": g.account_id,
                    "account_name": accounts.get(g.account_id or ""),
                    "product_id": g.product_id,
                    "product_name": products.get(g.product_id or ""),
                    "events": [e.to_json() for e in g.events],
                }
                for g in groups
            ],
        }
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if fmt not in ("text", "markdown"):
        raise UsageError(f"--format {fmt!r}: use text, markdown or json")
    md = fmt == "markdown"
    title = f"Timeline of {quote(query)}: {_count(len(events))}, oldest first"
    lines = [f"## {md_escape(title)}" if md else title, ""]
    if not events:
        lines.append("_No changes found._" if md else "No changes found for it in the history.")
    if len(groups) > 1:
        several = (
            f"{quote(query)} matches {len(groups)} entities; showing each (use an id to pick one)"
        )
        lines += [md_escape(several) if md else several, ""]
    for i, group in enumerate(groups):
        if i:
            lines.append("")
        heading = _group_title(group, accounts, products)
        lines.append(f"### {md_escape(heading)}" if md else heading)
        if md:
            lines.append("")
        for event in group.events:
            commit = event.commit
            where = (
                f"{commit.date}  {commit.commit[:12]}  {escape(commit.author)}: "
                f"{escape(commit.subject)}"
            )
            if md:
                lines.append(f"- **{md_escape(where)}**")
                lines.extend("  " + line for line in _md_changes([event.change]))
            else:
                lines.append("  " + where)
                lines.extend(render_changes_text([event.change], "      "))
    return "\n".join(lines) + "\n"
