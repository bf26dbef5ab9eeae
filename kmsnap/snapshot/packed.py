"""Entities of one product kind held as their canonical text, for a pull of a large catalog.

A pulled record as a dict costs about 660 bytes held; its canonical text about 280.
``pack_page`` encodes a page's records as the page arrives, in the worker that fetched it, and
``PackedRecords`` keeps per entity, besides the text, only what the pull still needs: the id
(the shrink guard, duplicates across pages) and the product and account ids, one shared tuple
per pair (the file it goes in, include/exclude, the coverage warnings), in parallel lists
(no object per entity). The renderer reads each record's sort name back from its text and
joins a file's texts in order; nothing is encoded twice.

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

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from kmsnap.errors import SnapshotError
from kmsnap.model import PRODUCT_KINDS, Record, order_all
from kmsnap.snapshot import canonical

__all__ = [
    "PACKABLE", "PackedRecords", "join_blocks", "merge_into", "pack_page", "packable",
    "parent_values", "sort_name", "sort_names", "split_blocks",
]

PACKABLE = frozenset(PRODUCT_KINDS)  # the kinds with many entities; containers stay dicts
Parents = tuple[str, Any]  # (product id, account id): one tuple per pair, shared
_SEPARATOR = b"\n- "
_FLAT = frozenset({str, int, bool, type(None)})


def packable(record: Record) -> bool:
    """A record ``pack_page`` takes: a string id and a string product id (the file it goes in
    and what include/exclude decide by); anything else stays a dict."""
    return type(record.get("id")) is str and type(record.get("product_id")) is str


def pack_page(kind: str, records: list[Record],
              parents: dict[Parents, Parents]) -> PackedRecords | None:
    """``records`` (each ``packable``) packed in their order, or None when they must stay
    dicts. Ids may repeat within a page: the crawler's ``finish`` keeps the first of each.

    Records whose values are all scalars go through the writer's C-level path in one call,
    the others (a ``tags: [...]``) in a second; ``parents`` is shared by the pull: one
    (product id, account id) tuple per pair."""
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
        try:
            data = canonical.dump_collection_bytes(batch)
        except (SnapshotError, ValueError, RecursionError):
            return None  # the renderer raises it again, at the same place as without packing
        if canonical.has_surrogate_escape(data):
            return None  # the renderer refuses it, naming the entity and field
        split = split_blocks(data, len(batch))
        if split is None:
            return None
        for i, block in zip(positions, split, strict=True):
            blocks[i] = block
    out = PackedRecords(kind)
    for record, block in zip(ordered, blocks, strict=True):
        account = record.get("account_id")
        pair = (record["product_id"], account)
        # Shared only for a string or absent account id: 1, 1.0 and True are equal keys of
        # the dict but not the same id to include/exclude, and a list is no key at all.
        if account is None or type(account) is str:
            pair = parents.setdefault(pair, pair)
        out.append(record["id"], block, pair)
    return out


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


def sort_name(block: bytes, field: str) -> str:
    """The value of ``field`` in a record's block when it is a string, else "" (the writer's
    order: name, then id; a missing or non-string name sorts as empty)."""
    return sort_names([block], field)[0]


def sort_names(blocks: Iterable[bytes], field: str) -> list[str]:
    """``sort_name`` of each block, in one loop (the render's one pass over every entity).

    A string value's line is ``  FIELD: "..."`` at the block's top level (nested values are
    written in flow style on their own line, and no value holds a raw newline)."""
    needle = b"\n  " + field.encode() + b': "'
    skip = len(needle) - 1  # to the opening quote
    names: list[str] = []
    add = names.append
    for block in blocks:
        start = block.find(needle)
        if start < 0:
            add("")
            continue
        end = block.find(b"\n", start + skip)
        value = block[start + skip:] if end < 0 else block[start + skip:end]
        # no escape: the UTF-8 between the quotes is the string
        add(value[1:-1].decode() if b"\\" not in value else json.loads(value))
    return names


class PackedRecords(Mapping[str, Record]):
    """The entities of one kind by id: packed ones in parallel lists (id, text, parents), and
    dicts ``aside`` for records that are not packed. An id is in one of the two, never both.

    Read-only as a ``Mapping``; ``append`` and ``merged`` are for the pull that builds it.
    """

    __slots__ = ("_index", "aside", "ids", "kind", "parents", "texts")

    def __init__(self, kind: str, aside: dict[str, Record] | None = None) -> None:
        self.kind = kind
        self.ids: list[str] = []
        self.texts: list[bytes] = []
        self.parents: list[Parents] = []
        self.aside: dict[str, Record] = aside if aside is not None else {}
        self._index: dict[str, int] | None = None

    def append(self, entity_id: str, text: bytes, parents: Parents) -> None:
        """One more packed record (its id not already here)."""
        self.ids.append(entity_id)
        self.texts.append(text)
        self.parents.append(parents)
        self._index = None

    def extend(self, other: PackedRecords, keep: Callable[[str], bool] | None = None) -> None:
        """``other``'s packed records (those whose id ``keep`` keeps)."""
        if keep is None:  # every row: three C-level extends
            self.ids.extend(other.ids)
            self.texts.extend(other.texts)
            self.parents.extend(other.parents)
            self._index = None
            return
        for entity_id, text, parents in zip(other.ids, other.texts, other.parents, strict=True):
            if keep is None or keep(entity_id):
                self.append(entity_id, text, parents)

    def __len__(self) -> int:
        return len(self.ids) + len(self.aside)

    def __iter__(self) -> Iterator[str]:
        yield from self.ids
        yield from self.aside

    def __contains__(self, key: object) -> bool:
        return key in self.aside or key in self._positions()

    def __getitem__(self, key: str) -> Record:
        if key in self.aside:
            return self.aside[key]
        return self._decode(self._positions()[key])

    def __repr__(self) -> str:
        return f"PackedRecords({self.kind!r}, {len(self.ids)} packed, {len(self.aside)} aside)"

    def _positions(self) -> dict[str, int]:
        if self._index is None:  # built only when a record is looked up by id
            self._index = {entity_id: i for i, entity_id in enumerate(self.ids)}
        return self._index

    def _decode(self, position: int) -> Record:
        from kmsnap.snapshot.parse import parse_file

        name = f"pulled {self.kind} {self.ids[position]!r:.80}"
        record: Record = parse_file(join_blocks([self.texts[position]]), name)[0]
        return record

    def rows(self) -> Iterator[tuple[str, bytes, Parents]]:
        """(id, text, parents) of each packed record."""
        return zip(self.ids, self.texts, self.parents, strict=True)

    def parent_values(self, field: str) -> Iterator[Any]:
        """``record.get(field)`` of each record, without decoding a packed one."""
        position = {"product_id": 0, "account_id": 1}.get(field)
        if position is None:
            yield from (self[key].get(field) for key in self.ids)
        else:
            yield from (parents[position] for parents in self.parents)
        yield from (record.get(field) for record in self.aside.values())

    def select(self, keep: Callable[[str, Any, Any], bool],
               keep_record: Callable[[str, Record], bool]) -> PackedRecords:
        """The records ``keep(id, product_id, account_id)`` (packed) or ``keep_record(id,
        record)`` (aside) keeps."""
        out = PackedRecords(self.kind, {key: record for key, record in self.aside.items()
                                        if keep_record(key, record)})
        for entity_id, text, parents in self.rows():
            if keep(entity_id, *parents):
                out.append(entity_id, text, parents)
        return out

    def merged(self, later: Mapping[str, Record]) -> PackedRecords:
        """These records and ``later``'s, a record of ``later`` replacing one with its id."""
        later_packed = later if isinstance(later, PackedRecords) else None
        later_aside = later_packed.aside if later_packed is not None else dict(later)
        replaced = set(later_aside)
        if later_packed is not None:
            replaced.update(later_packed.ids)
        out = PackedRecords(self.kind, {key: record for key, record in self.aside.items()
                                        if key not in replaced})
        out.extend(self, lambda entity_id: entity_id not in replaced)
        if later_packed is not None:
            out.extend(later_packed)
        out.aside.update(later_aside)
        return out


def merge_into(entities: dict[str, Mapping[str, Record]], kind: str,
               records: Mapping[str, Record]) -> None:
    """Add ``records`` to ``entities[kind]``, a later record replacing one with its id."""
    have = entities.get(kind)
    if have is None:
        entities[kind] = records
    elif isinstance(have, PackedRecords):
        entities[kind] = have.merged(records)
    elif isinstance(records, PackedRecords):
        entities[kind] = PackedRecords(kind, dict(have)).merged(records)
    else:
        entities[kind] = {**have, **records}


def parent_values(records: Mapping[str, Record], field: str) -> Iterator[Any]:
    """``record.get(field)`` of every record, packed or not."""
    if isinstance(records, PackedRecords):
        return records.parent_values(field)
    return (record.get(field) for record in records.values())
