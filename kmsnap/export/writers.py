"""A ``Table`` as JSON Lines, JSON or markdown, and the one entry point for every format.

Every writer is deterministic: the same table gives the same bytes (columns in the table's
order, rows in its order, no timestamps).
"""

from __future__ import annotations

import json
from typing import Any

from kmsnap.export.csv import render_csv
from kmsnap.export.table import BASE_COLUMNS, Table
from kmsnap.model import KINDS
from kmsnap.render.base import escape, short_escape
from kmsnap.render.markdown import md_escape

__all__ = ["FORMATS", "render_export", "render_json", "render_jsonl", "render_markdown"]

FORMATS = ("csv", "jsonl", "json", "markdown")
JSON_VERSION = 1


# Line breaks other than \n that JSON leaves raw: readers that split lines on them (Python's
# splitlines, some editors) would cut a JSON Lines record in two.
_BREAKS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


def _dumps(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in _BREAKS.items():
        text = text.replace(char, escaped)  # only inside strings, where \u means the same
    return text


def _ordered(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    return {column: row.get(column) for column in table.columns}


def render_jsonl(table: Table) -> str:
    """One JSON object per line, every column as a key (null where the entity has none); no
    raw U+2028, U+2029 or NEL, so every reader sees one record per line."""
    return "".join(_dumps(_ordered(table, row)) + "\n" for row in table.rows)


def render_json(table: Table) -> str:
    """``{"version": 1, "columns": [...], "rows": [{...}, ...]}``, indented."""
    doc = {
        "version": JSON_VERSION,
        "columns": list(table.columns),
        "rows": [_ordered(table, row) for row in table.rows],
    }
    text = json.dumps(doc, ensure_ascii=False, indent=2)
    for char, escaped in _BREAKS.items():
        text = text.replace(char, escaped)
    return text + "\n"


def _md_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return md_escape(short_escape(value))
    return md_escape(escape(_dumps(value)))


def render_markdown(table: Table) -> str:
    """One section per account › product, one table per kind with the columns that kind
    uses (a column empty for every row of the kind is left out)."""
    lines: list[str] = []
    section: tuple[Any, ...] | None = None
    kind: str | None = None
    block: list[dict[str, Any]] = []

    def flush() -> None:
        if not block or kind is None:
            return
        place = ("account_id", "account", "product_id", "product", "kind")
        columns = [c for c in table.columns if c not in place
                   and (c in ("id", "name") or any(r.get(c) is not None for r in block))]
        spec = KINDS.get(kind)
        lines.extend(["", f"#### {md_escape(spec.rel if spec else kind)} ({len(block)})", ""])
        lines.append("| " + " | ".join(columns) + " |")
        lines.append("|" + "---|" * len(columns))
        for row in block:
            lines.append("| " + " | ".join(_md_cell(row.get(c)) for c in columns) + " |")
        block.clear()

    for row in table.rows:
        here = (row["account_id"], row["product_id"])
        if here != section or row["kind"] != kind:
            flush()
        if here != section:
            section = here
            title = " › ".join(
                md_escape(short_escape(str(row[name] or row[f"{name}_id"] or "(none)")))
                for name in ("account", "product") if row[f"{name}_id"] is not None
            ) or "(no account)"
            lines.extend(["", f"### {title}"])
        kind = row["kind"]
        block.append(row)
    flush()
    head = f"# Catalog export: {len(table.rows)} entities"
    return head + "\n" + "\n".join(lines) + "\n"


def render_export(table: Table, fmt: str, *, bom: bool = False) -> str:
    """The table in ``fmt`` (one of ``FORMATS``); ``bom`` applies to CSV only."""
    if fmt == "csv":
        return render_csv(table, bom=bom)
    if fmt == "jsonl":
        return render_jsonl(table)
    if fmt == "json":
        return render_json(table)
    if fmt == "markdown":
        return render_markdown(table)
    raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")


assert BASE_COLUMNS[4] == "kind"  # render_markdown's place columns follow BASE_COLUMNS
