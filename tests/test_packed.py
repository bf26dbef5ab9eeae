"""Packed pulls (``kmsnap.snapshot.packed``): records held as their canonical text give the
same files, the same records, the same selection and the same warnings as dicts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_pull_kit import TOKEN, FakeClock
from test_yamlform import HAZARDS, _records, _values

from kmsnap.emulator import Emulator, generate_catalog
from kmsnap.errors import SnapshotError
from kmsnap.model import Snapshot, order_fields
from kmsnap.snapshot import atomic, canonical
from kmsnap.snapshot.layout import render_snapshot
from kmsnap.snapshot.packed import (
    PackedRecords,
    join_blocks,
    merge_into,
    pack_page,
    parent_values,
    sort_name,
    sort_names,
)
from kmsnap.snapshot.selection import Selection, Selector, filter_snapshot
from kmsnap.snapshot.store import load_snapshot, save_snapshot
from kmsnap.sources.core.crawler import PullOptions, PullResult, pull_snapshot

MakeEmulator = Callable[..., Emulator]


def _pull(emu: Emulator, *, pack: bool, with_stats: bool = False) -> PullResult:
    options = PullOptions(api=emu.base_url, token=TOKEN, with_stats=with_stats, pack=pack)
    return pull_snapshot(options, clock=FakeClock())


_events = st.lists(
    st.builds(
        lambda entity_id, product, extra: {**extra, "id": entity_id, "product_id": product},
        st.one_of(st.text(min_size=1, max_size=8), st.sampled_from(HAZARDS[:20])),
        st.sampled_from(["p1", "p2", "p 3"]),
        st.one_of(_records, st.fixed_dictionaries({"name": _values})),
    ),
    min_size=1, max_size=8, unique_by=lambda record: record["id"],
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_events, st.randoms(use_true_random=False))
def test_a_file_joined_from_packed_blocks_is_the_file_the_writer_writes(
    records: list[dict[str, Any]], rng: Any
) -> None:
    ordered = [order_fields("event", record) for record in records]
    try:
        whole = canonical.dump_collection_bytes(ordered)
    except (SnapshotError, ValueError):
        assert pack_page("event", records, {}) is None  # left to the renderer to refuse
        return
    packed = pack_page("event", records, {})
    if packed is None:
        assert b"\\ud" in whole  # only a lone surrogate keeps a page of dicts
        return
    assert packed.ids == [record["id"] for record in records]
    assert join_blocks(packed.texts) == whole
    order = list(range(len(records)))
    rng.shuffle(order)
    assert join_blocks([packed.texts[i] for i in order]) == canonical.dump_collection_bytes(
        [ordered[i] for i in order])
    for i, record in enumerate(ordered):  # read back: what the API sent, and its sort name
        assert packed[record["id"]] == record
        name = record.get("name")
        assert sort_name(packed.texts[i], "name") == (name if isinstance(name, str) else "")
    assert sort_names(packed.texts, "name") == [sort_name(text, "name") for text in packed.texts]


@pytest.mark.parametrize("with_stats", [False, True])
def test_a_packed_pull_writes_the_same_files_and_holds_the_same_records(
    make_emulator: MakeEmulator, with_stats: bool
) -> None:
    emu = make_emulator(max_page_size=40)  # the default catalog: awkward names, nested values
    plain, packed = _pull(emu, pack=False, with_stats=with_stats), _pull(
        emu, pack=True, with_stats=with_stats)
    assert isinstance(packed.snapshot.entities["event"], PackedRecords)
    assert not isinstance(plain.snapshot.entities["event"], PackedRecords)
    assert render_snapshot(packed.snapshot, with_stats=with_stats) == render_snapshot(
        plain.snapshot, with_stats=with_stats)
    assert packed.warnings == plain.warnings
    assert packed.snapshot.counts() == plain.snapshot.counts()
    for kind, records in plain.snapshot.entities.items():
        assert dict(packed.snapshot.entities[kind]) == records, kind
    assert packed.snapshot.stats == plain.snapshot.stats


def test_include_and_exclude_select_the_same_entities_of_a_packed_pull(
    make_emulator: MakeEmulator,
) -> None:
    emu = make_emulator(generate_catalog(size=800, seed=3))
    plain, packed = _pull(emu, pack=False).snapshot, _pull(emu, pack=True).snapshot
    products = sorted(plain.of("product"))
    account = next(iter(plain.of("account")))
    for selection in (
        Selection(include=Selector(products=frozenset(products[:2]))),
        Selection(exclude=Selector(products=frozenset(products[:1]))),
        Selection(include=Selector(accounts=frozenset({account}))),
    ):
        kept, kept_packed = filter_snapshot(plain, selection), filter_snapshot(packed, selection)
        assert isinstance(kept_packed.entities["event"], PackedRecords)
        assert kept_packed.counts() == kept.counts()
        assert render_snapshot(kept_packed) == render_snapshot(kept)
        assert 0 < kept.size() < plain.size()


def test_records_that_cannot_be_packed_stay_dicts_beside_the_packed_ones() -> None:
    aside = {"7": {"id": 7, "product_id": "p", "name": "int id"},
             "b": {"id": "b", "product_id": None, "name": "no product"}}
    records = PackedRecords("event", aside)
    records.extend(_packed({"id": "a", "product_id": "p", "name": "x"}))
    snap = Snapshot(api="http://x", entities={
        "account": {"acc": {"id": "acc", "name": "A"}},
        "product": {"p": {"id": "p", "account_id": "acc", "name": "P"}},
        "event": records,
    })
    plain = Snapshot(api="http://x", entities={**snap.entities, "event": dict(records)})
    assert set(records) == {"a", "7", "b"} and len(records) == 3 and "7" in records
    assert records["a"] == {"id": "a", "product_id": "p", "name": "x"}
    assert sorted(map(str, parent_values(records, "product_id"))) == ["None", "p", "p"]
    files = render_snapshot(snap)
    assert files == render_snapshot(plain)
    assert files["_unassigned/events.yaml"].startswith(b'- id: "b"')


def _packed(*records: dict[str, Any]) -> PackedRecords:
    packed = pack_page("event", list(records), {})
    assert packed is not None
    return packed


def test_a_later_collection_replaces_an_entity_of_an_earlier_one() -> None:
    first = _packed(*({"id": i, "product_id": "p", "name": f"old {i}"} for i in "ab"))
    later = _packed({"id": "b", "product_id": "p", "name": "new b"})
    entities: dict[str, Any] = {"event": first}
    merge_into(entities, "event", later)
    merge_into(entities, "event", {"c": {"id": "c", "product_id": "p", "name": "dict c"}})
    assert {k: v["name"] for k, v in entities["event"].items()} == {
        "a": "old a", "b": "new b", "c": "dict c"}
    dicts: dict[str, Any] = {"event": {"a": {"id": "a", "name": "dict a"}}}
    merge_into(dicts, "event", later)
    assert isinstance(dicts["event"], PackedRecords) and set(dicts["event"]) == {"a", "b"}


def test_a_lone_surrogate_in_a_packed_pull_is_refused_by_name_and_nothing_is_replaced(
    tmp_path: Path,
) -> None:
    assert pack_page("event", [{"id": "bad", "product_id": "p", "name": "\ud800"}], {}) is None
    records = PackedRecords("event", {"bad": {"id": "bad", "product_id": "p", "name": "\ud800"}})
    records.extend(_packed({"id": "ok", "product_id": "p", "name": "fine"}))
    snap = Snapshot(api="http://x", entities={"event": records})
    target = tmp_path / "snap"
    save_snapshot(Snapshot(api="http://x"), target)
    before = {p: p.read_bytes() for p in target.rglob("*")}
    with pytest.raises(SnapshotError, match="cannot store event 'bad'.*lone surrogate"):
        save_snapshot(snap, target)
    assert {p: p.read_bytes() for p in target.rglob("*")} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap"]  # no staging tree left


def test_the_writer_takes_files_one_at_a_time_marker_first(tmp_path: Path) -> None:
    target = tmp_path / "tree"

    def files(emit: Callable[[str, bytes], None]) -> None:
        emit("kmsnap.yaml", b"format: 1\n")
        emit("a/b/c.yaml", b"[]\n")

    atomic.replace_tree(target, files, marker="kmsnap.yaml", write=lambda p, d: p.write_bytes(d))
    assert (target / "a/b/c.yaml").read_bytes() == b"[]\n"

    def marker_last(emit: Callable[[str, bytes], None]) -> None:
        emit("a.yaml", b"[]\n")
        emit("kmsnap.yaml", b"format: 1\n")

    with pytest.raises(ValueError, match="first file written must be kmsnap.yaml"):
        atomic.replace_tree(target, marker_last, marker="kmsnap.yaml",
                            write=lambda p, d: p.write_bytes(d))
    assert sorted(p.name for p in target.rglob("*")) == ["a", "b", "c.yaml", "kmsnap.yaml"]


def test_a_packed_pull_saved_loads_back_as_the_pulled_records(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    emu = make_emulator(generate_catalog(size=500, seed=8, extra=True), max_page_size=30)
    packed = _pull(emu, pack=True).snapshot
    save_snapshot(packed, tmp_path / "s")
    loaded = load_snapshot(tmp_path / "s")
    assert loaded.counts() == packed.counts()
    for kind, records in loaded.entities.items():
        assert records == dict(packed.entities[kind]), kind
