"""A ``Table`` as CSV that Excel and Google Sheets open as it is: RFC 4180 quoting (CRLF rows,
a cell with a comma, quote or line break quoted, quotes doubled), UTF-8 with an optional
byte-order mark, and no cell that a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from kmsnap.export.table import Table

__all__ = ["BOM", "FORMULA_STARTS", "cell_text", "neutralize", "render_csv"]

BOM = "\ufeff"
# What makes a spreadsheet read a cell as a formula (OWASP's list for CSV injection); tab and
# carriage return because some importers strip them first and then see the next character.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralize(text: str) -> str:
    """``text`` with a leading ``'`` when a spreadsheet would treat it as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def cell_text(value: Any) -> str:
    """One value as a cell: nothing for null, ``true``/``false``, numbers as written, lists
    and mappings as compact JSON; text (and JSON) neutralised, numbers never (``-1`` is a
    number, not a formula)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        return neutralize(value)
    return neutralize(json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")))


def render_csv(table: Table, *, bom: bool = False) -> str:
    """The table as CSV text: a header row, then one row per entity, CRLF line ends."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, dialect="excel", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([cell_text(row.get(column)) for column in table.columns])
    return (BOM if bom else "") + out.getvalue()
