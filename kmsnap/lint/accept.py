"""Accepted changes: a change kmsnap.yaml's ``accept:`` lists does not fail ``check``; reports
show it, with its reason, in a section of its own.

``judge_changes`` splits a change set's changes into those that still count and those a live
acceptance covers; an expired acceptance covers nothing (its change counts again) and is
reported, and so is an acceptance that matches no change. ``render_accepted`` writes that
section for text, markdown (within a bound) and github; json reports stay as they are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from kmsnap.diff.changeset import Change, ChangeSet
from kmsnap.lint.acceptance import Acceptance
from kmsnap.render.base import change_head, escape, plural, short_escape, shorten
from kmsnap.render.changes import escape_data, escape_property
from kmsnap.render.markdown import md_escape

__all__ = ["Accepting", "Judged", "accept_changes", "judge_changes", "render_accepted",
           "without_accepted"]

ACCEPTED_HEADING = "Accepted changes"


@dataclass
class Judged:
    """Which changes still count, which are accepted (and by what), and the acceptances that
    expired or match nothing."""

    remaining: list[Change] = field(default_factory=list)
    accepted: list[tuple[Change, Acceptance]] = field(default_factory=list)
    expired: list[Acceptance] = field(default_factory=list)
    unmatched: list[Acceptance] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.accepted or self.expired or self.unmatched)


def _names(change: Change, a: Acceptance) -> bool:
    ids = {change.id} | ({change.old_id} if change.old_id else set())
    return a.kind == change.kind and a.id in ids and a.change == str(change.change)


def judge_changes(
    changes: Sequence[Change], accepts: Sequence[Acceptance], *, today: dt.date
) -> Judged:
    """Split ``changes``: a change is accepted when a live acceptance names it whole, or when
    acceptances name each of its changed fields."""
    judged = Judged()
    live = [a for a in accepts if a.expires is None or a.expires >= today]
    judged.expired = [a for a in accepts if a.expires is not None and a.expires < today]
    used: set[int] = set()
    for change in changes:
        hits = [i for i, a in enumerate(live) if _names(change, a)]
        whole = next((i for i in hits if live[i].field is None), None)
        fields = set(change.fields or {})
        covered = {live[i].field for i in hits}
        if whole is not None:
            judged.accepted.append((change, live[whole]))
            used.add(whole)
        elif hits and fields and fields <= covered:
            judged.accepted.append((change, live[hits[0]]))
            used.update(hits)
        else:
            judged.remaining.append(change)
    judged.unmatched = [a for i, a in enumerate(live) if i not in used]
    return judged


def without_accepted(cs: ChangeSet, judged: Judged) -> ChangeSet:
    """``cs`` with only the changes that still count."""
    return replace(cs, changes=list(judged.remaining))


def _who(a: Acceptance) -> str:
    until = f", until {a.expires.isoformat()}" if a.expires else ""
    return f"{escape(shorten(a.reason))} (accepted by {escape(shorten(a.by))}{until})"


def _entry(a: Acceptance) -> str:
    what = f"{escape(a.kind)} [{short_escape(a.id)}] {a.change}"
    return what + (f" field {short_escape(a.field)}" if a.field else "")


def _lines(judged: Judged) -> list[tuple[str, str]]:
    """(kind of line, escaped text): accepted, expired, unmatched."""
    out = [("accepted", f"{change_head(c)} ({c.severity}) — {_who(a)}")
           for c, a in judged.accepted]
    out += [("expired", f"{escape(a.where)}: acceptance of {_entry(a)} expired on "
             f"{a.expires.isoformat() if a.expires else ''}; the change counts again")
            for a in judged.expired]
    out += [("unmatched", f"{escape(a.where)}: acceptance of {_entry(a)} matches no change")
            for a in judged.unmatched]
    return out


def render_accepted(judged: Judged, fmt: str, *, limit: int = 8000) -> str:
    """The accepted-changes section in ``fmt`` ('' for json or when there is nothing to say);
    the markdown one stays within ``limit`` characters."""
    if not judged or fmt == "json":
        return ""
    lines = _lines(judged)
    if fmt == "github":
        commands = {"accepted": "notice", "expired": "warning", "unmatched": "warning"}
        titles = {"accepted": "kmsnap: accepted change", "expired": "kmsnap: acceptance expired",
                  "unmatched": "kmsnap: acceptance matches nothing"}
        return "".join(f"::{commands[k]} title={escape_property(titles[k])}::{escape_data(t)}\n"
                       for k, t in lines)
    head = f"{ACCEPTED_HEADING} ({len(judged.accepted)}, kmsnap.yaml accept:)"
    if fmt == "text":
        words = {"accepted": "  ✓ ", "expired": "  ! ", "unmatched": "  ? "}
        return "\n" + head + "\n" + "".join(words[k] + t + "\n" for k, t in lines)
    out = ["", f"### {md_escape(head)}", ""]
    size = sum(len(x) + 1 for x in out)
    for n, (kind, text) in enumerate(lines):
        mark = {"accepted": "", "expired": "**expired** ", "unmatched": "**unused** "}[kind]
        item = f"- {mark}{md_escape(text)}"
        if size + len(item) + 1 + 100 > limit:
            out.append(f"- _… and {plural(len(lines) - n, 'more line')} not shown_")
            break
        out.append(item)
        size += len(item) + 1
    return "\n".join(out) + "\n"


@dataclass(frozen=True)
class Accepting:
    """What ``diff`` and ``check`` print and count once kmsnap.yaml's ``accept:`` is applied."""

    shown: ChangeSet  # the report's changes: without the accepted ones (json: all of them)
    section: str  # the accepted-changes section to print after the report ('' for none)
    counted: list[Change]  # the changes that can still fail check


def accept_changes(
    cs: ChangeSet, accepts: Sequence[Acceptance], fmt: str, limit: int, *,
    today: dt.date | None = None,
) -> Accepting:
    """Apply ``accept:`` to ``cs`` as of ``today`` (default: today): accepted changes move to
    their own section (at most a quarter of ``limit`` in markdown) and do not count; an
    expired or unmatched acceptance is shown there too."""
    judged = judge_changes(cs.changes, accepts, today=today or dt.date.today())
    if not judged:
        return Accepting(cs, "", list(cs.changes))
    shown = cs if fmt == "json" else without_accepted(cs, judged)
    section = render_accepted(judged, fmt, limit=min(8000, limit // 4))
    return Accepting(shown, section, list(judged.remaining))
