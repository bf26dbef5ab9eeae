"""Render a ``ChangeSet`` as a pull-request comment in GitHub-flavoured markdown.

Summary table first, breaking changes next, then the rest per account and product; every
name is escaped so it cannot open HTML, break a table, mention anyone or start markup, and
the whole comment stays within a size limit (GitHub's 65,536 characters by default). Long
names, ids and values are shortened before they are escaped, so that one huge name cannot
take the room of every other change.
"""

from __future__ import annotations

import html
import re
import shlex
from typing import Any

from kmsnap.diff.engine import CHANGE_TYPES, SEVERITIES, Change, ChangeSet, ChangeType, Severity
from kmsnap.render.base import (
    ABSENT_TEXT,
    CHANGE_WORDS,
    IGNORED_HEADING,
    SELECTED_HEADING,
    escape,
    ignored_fields,
    iter_groups,
    new_name,
    old_name,
    plural,
    rename_path,
    selected_lines,
    severity_counts,
    short_escape,
    short_quote,
    short_value,
    shorten,
    show_kind,
)

__all__ = ["GITHUB_COMMENT_LIMIT", "md_escape", "render_markdown", "see_all_command"]

GITHUB_COMMENT_LIMIT = 65536
FOLD_OVER = 10  # a product section with more changes than this is folded
FOLD_BREAKING_OVER = 25  # breaking changes stay open longer: they are what reviewers need
VALUE_CHARS = 200  # a longer field value is cut in the comment (the text format has it all)

# Every ASCII punctuation character CommonMark/GFM may treat as markup somewhere (emphasis,
# code, links, headings, lists, tables, strikethrough, math, emoji shortcodes); a backslash
# escape renders as the character itself.
_MD_PUNCT = frozenset("\\`*_{}[]()#+-.!|~^=:$")
_ZWSP = "\u200b"


def md_escape(text: str) -> str:
    """``text`` made inert in markdown inline context (already visible-escaped)."""
    out = []
    for char in text:
        if char == "&":
            out.append("&amp;")
        elif char == "<":
            out.append("&lt;")
        elif char == ">":
            out.append("&gt;")
        elif char == "@":
            out.append("@" + _ZWSP)  # no @mention of a person or team
        elif char in _MD_PUNCT:
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def _html_text(text: str) -> str:
    """``text`` for inside an HTML block (``<summary>``), where markdown is not parsed."""
    return html.escape(escape(text), quote=False).replace("@", "@" + _ZWSP)


def _md_name(name: str | None) -> str:
    return md_escape(short_quote(name))


def _md_id(entity_id: str) -> str:
    return md_escape(short_escape(entity_id))


def _md_value(sides: dict[str, Any], side: str) -> str:
    if side not in sides:
        return f"_{ABSENT_TEXT}_"
    return md_escape(short_value(sides[side], over=VALUE_CHARS, keep=VALUE_CHARS))


def _units(text: str) -> int:
    """Length as GitHub counts it (UTF-16 code units): never less than ``len``."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


class _Page:
    """The comment being built, which refuses text that would not leave room to finish."""

    def __init__(self, limit: int) -> None:
        self.parts: list[str] = []
        self.used = 0
        self.limit = limit

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.used += _units(text)

    def fits(self, text: str, reserve: int) -> bool:
        return self.used + _units(text) + reserve <= self.limit


def see_all_command(old_label: str, new_label: str) -> str:
    """The command that shows every change of a diff: ``kmsnap diff --format text OLD NEW``
    with the real labels, shell-quoted."""
    return f"kmsnap diff --format text {_shell_word(old_label)} {_shell_word(new_label)}"


_PLAIN_WORD = re.compile(r"[A-Za-z0-9_@%+=:,./-][A-Za-z0-9_@%+=:,./~-]*\Z")


def _shell_word(text: str) -> str:
    """``text`` as one shell word: as it is when plain (``HEAD~1:snapshots``: a ``~`` past
    the start expands nothing), else single-quoted."""
    return text if _PLAIN_WORD.match(text) else shlex.quote(text)


def render_markdown(
    cs: ChangeSet, *, limit: int = GITHUB_COMMENT_LIMIT, see_all: str | None = None
) -> str:
    """A pull-request comment for ``cs``, never longer than ``limit`` characters.

    Past the limit, a note says how many changes are left out and which command shows them
    all: ``see_all``, by default ``kmsnap diff --format text`` with the change set's labels.
    """
    if see_all is None:
        see_all = see_all_command(cs.old_label, cs.new_label)
    page = _Page(limit)
    page.add(_header(cs))
    ignored = _ignored(cs)
    if not cs.changes:
        page.add(ignored)
        return _finish(page, limit)

    breaking = [c for c in cs.changes if c.severity == Severity.BREAKING]
    sections: list[tuple[str, str, list[tuple[Change, bool]], bool]] = []
    if breaking:
        sections.append(
            (
                f"### Breaking changes ({len(breaking)})\n\n",
                plural(len(breaking), "breaking change"),
                [(c, True) for c in breaking],
                len(breaking) > FOLD_BREAKING_OVER,
            )
        )
    first_other = True
    for group in iter_groups(cs):
        rest = [c for c in group.changes if c.severity != Severity.BREAKING]
        if not rest:
            continue
        heading = "### Other changes\n\n" if first_other and breaking else ""
        first_other = False
        place = _group_title(
            group.account_name, group.account_id, group.product_name, group.product_id
        )
        sections.append(
            (
                f"{heading}#### {md_escape(escape(place))} ({len(rest)})\n\n",
                _html_text(place) + ": " + plural(len(rest), "change"),
                [(c, False) for c in rest],
                len(rest) > FOLD_OVER,
            )
        )

    shown = 0
    close = "\n</details>\n\n"
    # Room for the closing tag and the longest possible note, whatever happens next.
    reserve = (
        _units(close)
        + _units(_cut_note(len(cs.changes), len(cs.changes), limit, see_all))
        + _units(ignored)
    )
    stopped = False
    for heading, summary, items, fold in sections:
        opening = heading + (f"<details>\n<summary>{summary}</summary>\n\n" if fold else "")
        first = _item(items[0][0], cs, items[0][1]) if items else ""
        if not page.fits(opening + first, reserve):
            stopped = True
            break
        page.add(opening)
        for change, with_place in items:
            block = _item(change, cs, with_place)
            if not page.fits(block, reserve):
                stopped = True
                break
            page.add(block)
            shown += 1
        page.add(close if fold else "\n")
        if stopped:
            break
    page.add(ignored)
    if stopped:
        page.add(_cut_note(len(cs.changes) - shown, len(cs.changes), limit, see_all))
    return _finish(page, limit)


def _ignored(cs: ChangeSet) -> str:
    """The fields ``kmsnap.yaml`` leaves out of the comparison, each with its reason."""
    fields = ignored_fields(cs)
    selected = selected_lines(cs)
    if not fields and not selected:
        return ""
    lines = []
    if fields:
        lines += [f"\n<sub>{IGNORED_HEADING} (not compared):</sub>\n"]
        lines += [f"- <sub>{md_escape(p)} — {md_escape(reason)}</sub>" for p, reason in fields]
    if selected:
        lines += [f"\n<sub>{SELECTED_HEADING} (the rest is not compared):</sub>\n"]
        lines += [f"- <sub>{md_escape(line)}</sub>" for line in selected]
    return "\n".join(lines) + "\n\n"


def _finish(page: _Page, limit: int) -> str:
    text = "".join(page.parts).rstrip("\n") + "\n"
    if _units(text) > limit:  # only when the limit is too small for the header itself
        while _units(text) > limit:
            text = text[: max(0, len(text) - (_units(text) - limit))]
    return text


def _header(cs: ChangeSet) -> str:
    old, new = md_escape(escape(cs.old_label)), md_escape(escape(cs.new_label))
    if not cs.changes:
        return f"## kmsnap: catalog changes\n\nNo changes between {old} and {new}.\n"
    severities = severity_counts(cs)
    counts = ", ".join(f"{severities[s]} {s}" for s in SEVERITIES if severities[s])
    lines = [
        "## kmsnap: catalog changes",
        "",
        f"Comparing {old} → {new}: **{plural(len(cs.changes), 'change')}** ({counts}).",
        "",
        f"| change | {' | '.join(SEVERITIES)} | total |",
        "|:--|" + "--:|" * (len(SEVERITIES) + 1),
    ]
    table: dict[str, dict[str, int]] = {t: dict.fromkeys(SEVERITIES, 0) for t in CHANGE_TYPES}
    for change in cs.changes:
        table[change.change][change.severity] += 1
    for change_type, row in table.items():
        cells = " | ".join(str(row[s]) for s in SEVERITIES)
        lines.append(f"| {CHANGE_WORDS[change_type]} | {cells} | {sum(row.values())} |")
    totals = " | ".join(str(severities[s]) for s in SEVERITIES)
    lines.append(f"| **total** | {totals} | **{len(cs.changes)}** |")
    return "\n".join(lines) + "\n\n"


def _group_title(
    account_name: str | None,
    account_id: str | None,
    product_name: str | None,
    product_id: str | None,
) -> str:
    # Raw text, escaped by the caller: a long name or id is shortened here, before escaping.
    def one(kind: str, name: str | None, entity_id: str | None) -> str:
        if entity_id is None:
            return f"(no {kind})"
        return shorten(name) if name is not None else f"{kind} {shorten(entity_id)}"

    account = one("account", account_name, account_id)
    if product_id is None:
        return account
    return f"{account} › {one('product', product_name, product_id)}"


def _item(change: Change, cs: ChangeSet, with_place: bool) -> str:
    word = CHANGE_WORDS[change.change]
    kind = md_escape(show_kind(change.kind))
    if change.change == ChangeType.RENAMED:
        what = f"{kind} {_md_name(old_name(change))} → {_md_name(new_name(change))}"
    else:
        what = f"{kind} {_md_name(change.name)}"
    ident = f"id {_md_id(change.id)}"
    if change.change == ChangeType.RECREATED:
        ident = f"id {_md_id(change.old_id or '')} → {_md_id(change.id)}"
    line = f"- **{word}** {what} ({ident})"
    if change.severity == Severity.WARNING:
        line += " ⚠️ warning"
    if with_place and (change.account_id or change.product_id):
        place = _group_title(
            cs.account_names.get(change.account_id) if change.account_id else None,
            change.account_id,
            cs.product_names.get(change.product_id) if change.product_id else None,
            change.product_id,
        )
        line += f" in {md_escape(escape(place))}"
    lines = [line]
    skip = rename_path(change)
    for path, sides in (change.fields or {}).items():
        if path == skip:
            continue
        lines.append(
            f"  - {_md_id(path)}: {_md_value(sides, 'old')} → {_md_value(sides, 'new')}"
        )
    return "\n".join(lines) + "\n"


def _cut_note(left_out: int, total: int, limit: int, see_all: str) -> str:
    return (
        f"\n---\n\n**{left_out} of {plural(total, 'change')} {'is' if left_out == 1 else 'are'} "
        "not shown**: the full report would pass "
        f"the {limit:,}-character limit of a comment. See them all with "
        f"{_code_span(escape(see_all))}.\n"
    )


def _code_span(text: str) -> str:
    """``text`` as an inline code span (literal: no markup, HTML or mention inside), fenced
    with more backticks than any run of them in ``text``."""
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or longest else ""
    return f"{fence}{pad}{text}{pad}{fence}"
