"""A snapshot as a table for people who live in spreadsheets: one row per entity
(``table``), written as CSV, JSON Lines, JSON or markdown (``csv``, ``writers``)."""

from kmsnap.export.table import (
    BASE_COLUMNS,
    HISTORY_COLUMNS,
    Table,
    build_table,
    entity_dates,
    field_columns,
)
from kmsnap.export.writers import FORMATS, render_export

__all__ = [
    "BASE_COLUMNS",
    "FORMATS",
    "HISTORY_COLUMNS",
    "Table",
    "build_table",
    "entity_dates",
    "field_columns",
    "render_export",
]
