"""Render lint (and stale) findings: text, markdown, json (versioned schema), github.

The same escaping guarantees as ``kmsnap diff`` (``kmsnap.render``): every name, id and
message goes through ``short_quote``/``short_escape``/``escape`` so it stays on one line and
cannot forge output; markdown adds ``md_escape`` and stays within a size bound, saying what it
left out; github annotations use GitHub's own escaping for messages and properties. JSON keeps
every value whole.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kmsnap.lint.engine import Finding, LintResult
from kmsnap.lint.rules import LEVELS, META_RULES
from kmsnap.render.base import escape, plural, short_escape, short_quote, shorten, show_kind
from kmsnap.render.changes import FORMATS, escape_data, escape_property
from kmsnap.render.markdown import GITHUB_COMMENT_LIMIT, md_escape

__all__ = ["FORMATS", "JSON_SCHEMA", "JSON_VERSION", "Report", "render_report"]

JSON_SCHEMA = "kmsnap-findings"
JSON_VERSION = 1
_COMMANDS = {"error": "error", "warning": "warning", "info": "notice"}


@dataclass(frozen=True)
class Report:
    """What a report says: which command (``lint``, ``stale``), about which snapshot."""

    command: str
    label: str  # the snapshot, as given
    result: LintResult
    base: str | None = None  # --new-only --base REV:PATH
    as_of: str | None = None  # the date suppressions (and stale verdicts) are judged at


def _place(f: Finding) -> str:
    if f.product_id is None:
        return ""
    return f" in product {short_quote(f.product_name)} [{short_escape(f.product_id)}]"


def _related(f: Finding) -> str:
    if not f.related:
        return ""
    return " " + ", ".join(f"{short_quote(r.name)} [{short_escape(r.id)}]" for r in f.related)


def _subject(f: Finding) -> str:
    """The entity, escaped: ``event "Signed Up" [id] in product "Web" [id]``."""
    if f.rule in META_RULES:
        return f"{show_kind(f.kind)} [{short_escape(f.id)}]"
    return f"{show_kind(f.kind)} {short_quote(f.name)} [{short_escape(f.id)}]{_place(f)}"


def finding_line(f: Finding) -> str:
    """One finding on one escaped line, without its severity and rule."""
    return f"{_subject(f)}: {escape(shorten(f.message))}{_related(f)}"


def _summary(report: Report) -> str:
    result = report.result
    if not result.findings:
        text = "No findings."
    else:
        counts = result.counts()
        parts = ", ".join(f"{counts[level]} {level}" for level in LEVELS)
        text = f"{plural(len(result.findings), 'finding')}: {parts}."
    if result.suppressed:
        text += f" {len(result.suppressed)} suppressed."
    return text


def _heading(report: Report) -> str:
    head = f"kmsnap {report.command}: {escape(report.label)}"
    if report.base is not None:
        head += f" (new over {escape(report.base)})"
    if report.as_of is not None:
        head += f" as of {escape(report.as_of)}"
    return head


def render_text(report: Report) -> str:
    """One line per finding, grouped by severity, then a summary and the suppressed ones."""
    lines = [_heading(report), ""]
    width = max((len(f.rule) for f in report.result.findings), default=0)
    for f in report.result.findings:
        lines.append(f"{f.severity:<7}  {f.rule:<{width}}  {finding_line(f)}")
    if report.result.findings:
        lines.append("")
    lines.append(_summary(report))
    for f in report.result.suppressed:
        lines.append(f"suppressed  {f.rule}  {finding_line(f)} — {escape(shorten(f.reason or ''))}")
    return "\n".join(lines) + "\n"


def render_markdown(report: Report, *, limit: int = GITHUB_COMMENT_LIMIT,
                    see_all: str | None = None) -> str:
    """A comment: counts table, one bullet per finding, suppressed ones folded; within
    ``limit`` characters, saying how many findings it left out."""
    result = report.result
    counts = result.counts()
    head = [
        f"## {md_escape(_heading(report))}",
        "",
        "| " + " | ".join(LEVELS) + " | suppressed |",
        "|" + "---|" * (len(LEVELS) + 1),
        "| " + " | ".join(str(counts[level]) for level in LEVELS)
        + f" | {len(result.suppressed)} |",
        "",
    ]
    if not result.findings:
        head.append("No findings.")
    command = see_all or f"kmsnap {report.command} --format text"

    def bullet(f: Finding) -> str:
        return f"- **{f.severity}** `{f.rule}` {md_escape(finding_line(f))}"

    def note(left: int) -> str:
        return (f"\n_… and {plural(left, 'more finding')} not shown: run "
                f"`{command.replace('`', '')}` to see them all._")

    body = "\n".join(head)
    items = [bullet(f) for f in result.findings]
    sup = [f"- `{f.rule}` {md_escape(finding_line(f))} — "
           f"{md_escape(escape(shorten(f.reason or '')))}" for f in result.suppressed]
    reserve = 200  # the "and N more" note and the closing of the folded section
    out, shown = [body], 0
    size = len(body)
    for item in items:
        if size + len(item) + 1 + reserve > limit:
            break
        out.append(item)
        size += len(item) + 1
        shown += 1
    if shown < len(items):
        out.append(note(len(items) - shown))
        return "\n".join(out) + "\n"
    if sup:
        fold = ["", f"<details><summary>Suppressed ({len(sup)})</summary>", ""]
        closing = ["", "</details>"]
        kept: list[str] = []
        extra = sum(len(x) + 1 for x in fold + closing)
        for line in sup:
            if size + extra + len(line) + 1 + reserve > limit:
                break
            kept.append(line)
            extra += len(line) + 1
        if len(kept) < len(sup):
            kept.append(f"\n_… and {len(sup) - len(kept)} more suppressed._")
        out.extend(fold + kept + closing)
    return "\n".join(out) + "\n"


def to_json(report: Report) -> dict[str, Any]:
    """The JSON document: schema ``kmsnap-findings`` version 1, fixed key order."""
    result = report.result
    return {
        "schema": JSON_SCHEMA,
        "version": JSON_VERSION,
        "command": report.command,
        "snapshot": report.label,
        "base": report.base,
        "as_of": report.as_of,
        "summary": {**result.counts(), "suppressed": len(result.suppressed)},
        "findings": [f.to_json() for f in result.findings],
        "suppressed": [f.to_json() for f in result.suppressed],
    }


def render_json(report: Report) -> str:
    return json.dumps(to_json(report), ensure_ascii=False, indent=2) + "\n"


def render_github(report: Report) -> str:
    """One workflow annotation per finding: ``::error``, ``::warning``, ``::notice``."""
    lines = []
    for f in report.result.findings:
        title = f"kmsnap {report.command}: {f.rule} ({f.severity})"
        lines.append(f"::{_COMMANDS[f.severity]} title={escape_property(title)}::"
                     + escape_data(finding_line(f)))
    return "".join(line + "\n" for line in lines)


_RENDERERS: dict[str, Callable[[Report], str]] = {
    "text": render_text, "markdown": render_markdown, "json": render_json,
    "github": render_github,
}


def render_report(report: Report, fmt: str) -> str:
    """``report`` in one of ``FORMATS``."""
    try:
        return _RENDERERS[fmt](report)
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}") from None
