"""What the pull keeps in memory: usage fields only when asked for, each record once, and
files that mix flat and nested records written exactly as field by field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_pull_kit import TOKEN, FakeClock

from kmsnap.emulator import Emulator, generate_catalog
from kmsnap.model import Snapshot
from kmsnap.snapshot import canonical
from kmsnap.snapshot.store import load_snapshot, save_snapshot
from kmsnap.sources.core.crawler import PullOptions, pull_snapshot

MakeEmulator = Callable[..., Emulator]


def _pull(emu: Emulator, with_stats: bool) -> Snapshot:
    options = PullOptions(api=emu.base_url, token=TOKEN, with_stats=with_stats)
    return pull_snapshot(options, clock=FakeClock()).snapshot


def test_without_stats_the_usage_fields_are_dropped_and_the_files_are_the_same(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    emu = make_emulator(generate_catalog(size=600, seed=5, extra=True), max_page_size=40)
    full, lean = _pull(emu, True), _pull(emu, False)
    assert full.stats["event"] and lean.stats == {}
    assert lean.entities == full.entities
    save_snapshot(full, tmp_path / "full")
    save_snapshot(lean, tmp_path / "lean")
    for path in sorted((tmp_path / "full").rglob("*.yaml")):
        assert (tmp_path / "lean" / path.relative_to(tmp_path / "full")).read_bytes() == \
            path.read_bytes()
    save_snapshot(full, tmp_path / "stats", with_stats=True)
    assert load_snapshot(tmp_path / "stats", with_stats=True).stats == full.stats


def test_children_of_one_parent_share_its_id_string(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(generate_catalog(size=300, seed=1))
    events = list(_pull(emu, False).of("event").values())
    by_value: dict[str, int] = {}
    for record in events:
        by_value.setdefault(record["product_id"], id(record["product_id"]))
        assert id(record["product_id"]) == by_value[record["product_id"]]
    assert len(by_value) < len(events)


@pytest.mark.parametrize("nested_at", [(), (0,), (3,), (0, 4), (1, 2, 3)])
def test_a_file_mixing_flat_and_nested_records_is_written_field_by_field(
    nested_at: tuple[int, ...]
) -> None:
    records: list[dict[str, object]] = [
        {"id": f"e{i}", "name": f"Évent {i}\u2028", "n": i, "ok": i % 2 == 0, "x": None}
        for i in range(5)
    ]
    for i in nested_at:
        records[i]["tags"] = ["a", {"b": 1.5}]
    slow = "".join(line for record in records
                   for line in canonical._dump_record_slow(record, "- ", "  "))
    assert canonical.dump_collection(records) == canonical._escape_extra(slow)
    assert canonical.dump_collection_bytes(records) == canonical._escape_extra(slow).encode()


_flat_values = st.one_of(st.none(), st.booleans(), st.integers(), st.text(),
                         st.sampled_from(["😀", "\u2028", "\x7f", "a\x00b", "\ud800"]))
_any_values = st.one_of(_flat_values, st.floats(), st.lists(_flat_values, max_size=2),
                        st.dictionaries(st.text(max_size=3), _flat_values, max_size=2))
_mixed_records = st.dictionaries(
    st.sampled_from(["id", "name", "is_visible", "tags", "a b", "n"]),
    st.one_of(_flat_values, _flat_values, _any_values), min_size=1, max_size=5)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_mixed_records, min_size=1, max_size=6))
def test_any_file_is_written_as_field_by_field(records: list[dict[str, object]]) -> None:
    slow = "".join(line for record in records
                   for line in canonical._dump_record_slow(record, "- ", "  "))
    assert canonical.dump_collection(records) == canonical._escape_extra(slow)
    try:
        expected = canonical._escape_extra(slow).encode("utf-8", "surrogatepass")
    except UnicodeError:
        return
    if "\ud800" not in slow:
        assert canonical.dump_collection_bytes(records) == expected
