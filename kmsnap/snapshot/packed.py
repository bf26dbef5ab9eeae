"""Entities of one product kind held as their canonical text, for a pull of a large catalog.

A pulled record as a dict costs about 750 bytes (the dict, a string per value); its canonical
text costs about 300. ``pack_page`` encodes a page's records as the page arrives, in the
worker that fetched it, and ``PackedRecords`` keeps per entity only what the pull still needs
besides the text: the id (the shrink guard, duplicates across pages), the sort name (the
file's order) and the product and account ids (the file it goes in, include/exclude, the
coverage warnings). The renderer joins the texts of one file in order; nothing is encoded
twice.

A record's canonical text does not depend on the records around it (every record is its own
``- `` block and no line inside one starts with ``- ``), so joining texts encoded page by page
gives the bytes the whole file would have been encoded to. ``pack_page`` checks the count of
blocks it split, and leaves a page it cannot split that way (or one holding a lone surrogate,
which the renderer must refuse by name) as dicts.

``PackedRecords`` is a read-only ``Mapping`` of id to record: reading a record decodes its
text with the snapshot parser, so code that does not know about packing still sees the
records the API sent. Packing is the pull's choice (``PullOptions.pack``, on for ``kmsnap
pull``); the library's ``pull_snapshot`` returns dicts unless asked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from operator import itemgetter
from typing import Any

from kmsnap.model import KINDS, PRODUCT_KINDS, Record, order_all
from kmsnap.snapshot import canonical

__all__ = [
    "PACKABLE", "PackedRecords", "Row", "join_blocks", "merge_into", "pack_page", "packable",
    "parent_values", "split_blocks",
]

PACKABLE = frozenset(PRODUCT_KINDS)  # the kinds with many entities; containers stay dicts
Row = tuple[str, str, bytes, tuple[str, Any]]  # id, sort name, text, (product id, account id)
_SURROGATE_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\ud[89a-f]")
_SEPARATOR = b"\n- "


def packable(record: Record) -> bool:
    """A record ``pack_page`` takes: a string id and a string product id (the file it goes in
    and what include/exclude decide by); anything else stays a dict."""
    return type(record.get("id")) is str and type(record.get("product_id")) is str


def pack_page(kind: str, records: list[Record],
              parents: dict[tuple[str, Any], tuple[str, Any]]) -> list[Row] | None:
    """The rows of ``records`` (each ``packable``), in their order, or None when they must
    stay dicts.

    Records whose values are all scalars go through the writer's C-level path in one call,
    the others (a ``tags: [...]``) in a second; ``parents`` is shared by the pull: one
    (product id, account id) tuple per pair."""
    name_field = KINDS[kind].name_field
    ordered = order_all(kind, records)
    flat: list[int] = []
    nested: list[int] = []
    for i, record in enumerate(ordered):
        (flat if _FLAT.issuperset(map(type, record.values())) else nested).append(i)
    blocks: list[bytes] = [b""] * len(ordered)
    for positions in (flat, nested):
        if not positions:
            continue
        batch = [ordered[i] for i in positions]
        data = canonical.dump_collection_bytes(batch)
        if b"\\ud" in data and _SURROGATE_ESCAPE.search(data) is not None:
            return None  # the renderer refuses it, naming the entity and field
        split = split_blocks(data, len(batch))
        if split is None:
            return None
        for i, block in zip(positions, split, strict=True):
            blocks[i] = block
    rows: list[Row] = []
    for record, block in zip(ordered, blocks, strict=True):
        name = record.get(name_field)
        pair = (record["product_id"], record.get("account_id"))
        rows.append((record["id"], name if type(name) is str else "", block,
                     parents.setdefault(pair, pair)))
    return rows


_FLAT = frozenset({str, int, bool, type(None)})


def join_blocks(blocks: list[bytes]) -> bytes:
    """A collection file from its records' blocks, in order: what ``dump_collection_bytes``
    gives for the same records."""
    if not blocks:
        return b"[]\n"
    return b"- " + _SEPARATOR.join(blocks) + b"\n"


def split_blocks(data: bytes, count: int) -> list[bytes] | None:
    """The ``count`` record blocks of a collection's canonical bytes, or None."""
    if not data.startswith(b"- "):
        return None
    blocks = data[2:-1].split(_SEPARATOR)
    return blocks if len(blocks) == count else None


class PackedRecords(Mapping[str, Record]):
    """The entities of one kind by id: packed rows, and dicts for records that are not.

    An id is in one of the two, never both. Read-only: ``merged`` makes a new one.
    """

    __slots__ = ("_index", "aside", "kind", "rows")

    def __init__(self, kind: str, rows: list[Row] | None = None,
                 aside: dict[str, Record] | None = None) -> None:
        self.kind = kind
        self.rows: list[Row] = rows if rows is not None else []
        self.aside: dict[str, Record] = aside if aside is not None else {}
        self._index: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.rows) + len(self.aside)

    def __iter__(self) -> Iterator[str]:
        yield from map(itemgetter(0), self.rows)
        yield from self.aside

    def __contains__(self, key: object) -> bool:
        return key in self.aside or key in self._positions()

    def __getitem__(self, key: str) -> Record:
        if key in self.aside:
            return self.aside[key]
        return self._decode(self.rows[self._positions()[key]])

    def __repr__(self) -> str:
        return f"PackedRecords({self.kind!r}, {len(self.rows)} packed, {len(self.aside)} aside)"

    def _positions(self) -> dict[str, int]:
        if self._index is None:  # built only when a record is looked up by id
            self._index = {row[0]: i for i, row in enumerate(self.rows)}
        return self._index

    def _decode(self, row: Row) -> Record:
        from kmsnap.snapshot.parse import parse_file

        value = parse_file(join_blocks([row[2]]), f"pulled {self.kind} {row[0]!r:.80}")
        record: Record = value[0]
        return record

    def ids(self) -> Iterator[str]:
        return iter(self)

    def parent_values(self, field: str) -> Iterator[Any]:
        """``record.get(field)`` of each record, without decoding a packed one."""
        position = {"product_id": 0, "account_id": 1}.get(field)
        if position is None:
            yield from (self[key].get(field) for key in map(itemgetter(0), self.rows))
        else:
            yield from (row[3][position] for row in self.rows)
        yield from (record.get(field) for record in self.aside.values())

    def select(self, keep: Callable[[str, Any, Any], bool],
               keep_record: Callable[[str, Record], bool]) -> PackedRecords:
        """The records ``keep(id, product_id, account_id)`` (packed) or ``keep_record(id,
        record)`` (aside) keeps."""
        rows = [row for row in self.rows if keep(row[0], *row[3])]
        aside = {key: record for key, record in self.aside.items() if keep_record(key, record)}
        return PackedRecords(self.kind, rows, aside)

    def merged(self, later: Mapping[str, Record]) -> PackedRecords:
        """These records and ``later``'s, a record of ``later`` replacing one with its id."""
        if isinstance(later, PackedRecords):
            later_rows, later_aside = later.rows, later.aside
        else:
            later_rows, later_aside = [], dict(later)
        replaced = {row[0] for row in later_rows} | set(later_aside)
        rows = [row for row in self.rows if row[0] not in replaced] + later_rows
        aside = {key: r for key, r in self.aside.items() if key not in replaced}
        aside.update(later_aside)
        return PackedRecords(self.kind, rows, aside)


def merge_into(entities: dict[str, Mapping[str, Record]], kind: str,
               records: Mapping[str, Record]) -> None:
    """Add ``records`` to ``entities[kind]``, a later record replacing one with its id."""
    have = entities.get(kind)
    if have is None:
        entities[kind] = records
    elif isinstance(have, PackedRecords):
        entities[kind] = have.merged(records)
    elif isinstance(records, PackedRecords):
        entities[kind] = PackedRecords(kind, aside=dict(have)).merged(records)
    else:
        entities[kind] = {**have, **records}


def parent_values(records: Mapping[str, Record], field: str) -> Iterator[Any]:
    """``record.get(field)`` of every record, packed or not."""
    if isinstance(records, PackedRecords):
        return records.parent_values(field)
    return (record.get(field) for record in records.values())
