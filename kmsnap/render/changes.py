"""Turn a ``ChangeSet`` into text for people (text, markdown) and machines (json, github).

Pure functions returning ``str``; every name and value is escaped for its format, and in
the formats for people (text, markdown, github) a name, id or value of more than a few
hundred characters is shortened (``render_base.shorten``); json keeps every value whole.
"""

from __future__ import annotations

import json
from typing import Any

from kmsnap.diff.engine import Change, ChangeSet, ChangeType, Severity
from kmsnap.render.base import (
    CHANGE_MARKS,
    CHANGE_WORDS,
    IGNORED_HEADING,
    SELECTED_HEADING,
    change_head,
    escape,
    field_lines,
    ignored_fields,
    iter_groups,
    new_name,
    old_name,
    selected_lines,
    short_escape,
    short_quote,
    show_kind,
    summary_line,
)
from kmsnap.render.markdown import render_markdown

__all__ = [
    "FORMATS",
    "LOG_FORMATS",
    "render",
    "render_github",
    "render_json",
    "render_markdown",
    "render_text",
]

# Every report format, the order --help lists them in.
FORMATS: tuple[str, ...] = ("text", "markdown", "json", "github")
# The formats of ``kmsnap log``: a history is not a set of workflow annotations.
LOG_FORMATS: tuple[str, ...] = tuple(fmt for fmt in FORMATS if fmt != "github")

# --- text -----------------------------------------------------------------------------

_RESET = "\x1b[0m"
_COLORS = {
    "+": "\x1b[32m",  # green
    "-": "\x1b[31m",  # red
    "~": "\x1b[33m",  # yellow
    "-/+": "\x1b[35m",  # magenta
    "heading": "\x1b[1m",  # bold
    Severity.BREAKING: "\x1b[1;31m",
    Severity.WARNING: "\x1b[1;33m",
    "dim": "\x1b[2m",
}


def render_text(cs: ChangeSet, *, color: bool = False) -> str:
    """A ``terraform plan``-like report grouped by account and product, one summary line."""

    def paint(style: str, text: str) -> str:
        return f"{_COLORS[style]}{text}{_RESET}" if color else text

    lines = [f"Comparing {escape(cs.old_label)} → {escape(cs.new_label)}"]
    account: tuple[str | None] | None = None
    for group in iter_groups(cs):
        if account != (group.account_id,):
            account = (group.account_id,)
            lines.append("")
            lines.append(paint("heading", _place("account", group.account_name, group.account_id)))
        indent = "  "
        if group.product_id is not None:
            product = _place("product", group.product_name, group.product_id)
            lines.append(paint("heading", "  " + product))
            indent = "    "
        for change in group.changes:
            lines.extend(_text_change(change, indent, paint))
    lines.append("")
    lines.append(paint("heading", summary_line(cs)))
    for path, reason in ignored_fields(cs):
        lines.append(paint("dim", f"{IGNORED_HEADING}: {path} — {reason}"))
    for line in selected_lines(cs):
        lines.append(paint("dim", f"{SELECTED_HEADING}: {line}"))
    return "\n".join(lines) + "\n"


def _place(kind: str, name: str | None, entity_id: str | None) -> str:
    if entity_id is None:
        return f"(no {kind})"
    return f"{kind} {short_quote(name)} [{short_escape(entity_id)}]"


def _text_change(change: Change, indent: str, paint: Any) -> list[str]:
    mark = CHANGE_MARKS[change.change]
    tag = ""
    if change.severity != Severity.INFO:
        tag = "  " + paint(change.severity, f"({change.severity})")
    lines = [f"{indent}{paint(mark, mark)} {change_head(change, say_changed=False)}{tag}"]
    lines.extend(f"{indent}    {path}: {old} → {new}" for path, old, new in field_lines(change))
    return lines


# --- json -----------------------------------------------------------------------------


def render_json(cs: ChangeSet) -> str:
    """DESIGN.md's JSON (schema version 1): fixed key order, UTF-8 kept, trailing newline."""
    return json.dumps(cs.to_json(), ensure_ascii=False, indent=2, default=str) + "\n"


# --- github ---------------------------------------------------------------------------

_COMMANDS = {Severity.BREAKING: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    """GitHub's escaping for a workflow command's message."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """GitHub's escaping for a workflow command's property value (``title=``)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(cs: ChangeSet) -> str:
    """One workflow annotation per change: ``::error`` breaking, ``::warning``, ``::notice``."""
    lines = []
    for change in cs.changes:
        kind = show_kind(change.kind)
        title = f"kmsnap: {kind} {CHANGE_WORDS[change.change]} ({change.severity})"
        lines.append(
            f"::{_COMMANDS[change.severity]} title={escape_property(title)}::"
            + escape_data(_github_message(change, cs))
        )
    return "".join(line + "\n" for line in lines)


def _github_message(change: Change, cs: ChangeSet) -> str:
    # Names go through short_quote() first, so they carry no raw line break even before escaping.
    where = [f"{kind} {short_quote(name)}" for kind, _id, name in cs.containers(change)]
    place = f" in {', '.join(where)}" if where else ""
    kind = show_kind(change.kind)
    if change.change == ChangeType.RENAMED:
        before, after = short_quote(old_name(change)), short_quote(new_name(change))
        head = f"{kind} {before} renamed to {after}"
    elif change.change == ChangeType.RECREATED:
        head = (
            f"{kind} {short_quote(change.name)} re-created "
            f"(id {short_escape(change.old_id or '')} → {short_escape(change.id)})"
        )
    else:
        head = f"{kind} {short_quote(change.name)} {CHANGE_WORDS[change.change]}"
    lines = [f"{head}{place} [id {short_escape(change.id)}]"]
    lines.extend(f"{path}: {old} → {new}" for path, old, new in field_lines(change))
    return "\n".join(lines)


def render(cs: ChangeSet, fmt: str, *, color: bool = False) -> str:
    """Render ``cs`` in one of ``FORMATS``."""
    if fmt == "text":
        return render_text(cs, color=color)
    if fmt == "markdown":
        return render_markdown(cs)
    if fmt == "json":
        return render_json(cs)
    if fmt == "github":
        return render_github(cs)
    raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
