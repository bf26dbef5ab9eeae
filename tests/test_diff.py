"""The diff engine: change types, field paths, severity, filters and the laws (hypothesis)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from diff_sample import sample_pair, snap
from hypothesis import given, settings
from hypothesis import strategies as st

from kmsnap.diff.engine import Change, ChangeSet, diff_snapshots, severity_at_least
from kmsnap.history.view import entity_timeline
from kmsnap.history.walk import Commit, LogEntry
from kmsnap.model import Snapshot, entity_name
from kmsnap.model import name_field as name_field_of
from kmsnap.render.changes import render_text


def by_id(cs: ChangeSet) -> dict[str, Change]:
    return {c.id: c for c in cs.changes}


def base() -> dict[str, list[dict[str, Any]]]:
    return {
        "account": [{"id": "a1", "name": "Acme", "status": "active"}],
        "product": [{"id": "p1", "account_id": "a1", "name": "Web", "status": "active"}],
    }


def test_each_change_type_and_severity_in_the_sample() -> None:
    old, new = sample_pair()
    changes = by_id(diff_snapshots(old, new))
    expect = {
        "acc-1": ("changed", "info"),
        "prod-2": ("renamed", "breaking"),
        "prod-3": ("changed", "warning"),
        "rep-1": ("removed", "breaking"),
        "ev-2": ("changed", "info"),
        "ev-3": ("removed", "breaking"),
        "ev-4": ("renamed", "breaking"),
        "ev-5": ("changed", "warning"),
        "ev-7": ("added", "info"),
        "ev-8": ("recreated", "breaking"),
        "pr-1": ("changed", "breaking"),
        "pr-2": ("changed", "info"),
        "m-1": ("renamed", "breaking"),
        "m-2": ("changed", "breaking"),
        "m-3": ("added", "info"),
        "seg-1": ("changed", "info"),
    }
    assert {k: (c.change, c.severity) for k, c in changes.items()} == expect
    assert changes["ev-8"].old_id == "ev-6"
    assert changes["ev-2"].account_id == "acc-1"  # found through the product
    assert changes["ev-2"].product_id == "prod-1"


def test_sorted_by_kind_account_product_name_id() -> None:
    old, new = sample_pair()
    kinds = [c.kind for c in diff_snapshots(old, new).changes]
    order = ["account", "product", "report", "event", "property", "metric", "segments"]
    assert kinds == sorted(kinds, key=order.index)


def test_names_of_accounts_and_products_for_grouping() -> None:
    old, new = sample_pair()
    cs = diff_snapshots(old, new)
    assert cs.account_names == {"acc-1": "Acme", "acc-2": "Globex"}
    assert cs.product_names["prod-2"] == "Mobile app"  # the new side's name


def test_nested_fields_are_dotted_and_absent_sides_have_no_key() -> None:
    old, new = sample_pair()
    fields = by_id(diff_snapshots(old, new))["acc-1"].fields
    assert fields == {
        "contact.name": {"old": "Ann"},
        "contact.phone": {"old": "+1 555 0100", "new": "+1 555 0199"},
    }


def test_a_changed_list_is_one_value() -> None:
    old, new = sample_pair()
    fields = by_id(diff_snapshots(old, new))["pr-2"].fields
    assert fields == {"choices": {"old": ["a", "b"], "new": ["a", "c"]}}


def test_rename_that_also_changes_fields_keeps_both() -> None:
    old, new = sample_pair()
    change = by_id(diff_snapshots(old, new))["ev-4"]
    assert change.change == "renamed"
    assert change.name == "Page viewed"
    assert change.fields == {
        "name": {"old": "Viewed page", "new": "Page viewed"},
        "display_name": {"old": "Viewed page", "new": "Page viewed"},
    }


def test_metric_is_renamed_by_its_title() -> None:
    old, new = sample_pair()
    change = by_id(diff_snapshots(old, new))["m-1"]
    assert change.change == "renamed"
    assert change.fields == {"title": {"old": "Revenue", "new": "Revenue (USD)"}}


@pytest.mark.parametrize("after", ["", None])
def test_a_rename_to_empty_or_null_keeps_both_sides(after: str | None) -> None:
    def side(name: str | None) -> Snapshot:
        event = {"id": "e1", "product_id": "p1", "name": name}
        return snap({**base(), "event": [event]})

    change = by_id(diff_snapshots(side("Signed Up"), side(after)))["e1"]
    assert change.change == "renamed"
    assert change.fields == {"name": {"old": "Signed Up", "new": after}}
    # "" is a name: the change carries it; only no name at all falls back to the old one.
    assert change.name == ("Signed Up" if after is None else "")
    back = by_id(diff_snapshots(side(after), side("Signed Up")))["e1"]
    assert back.name == "Signed Up"
    assert back.fields == {"name": {"old": after, "new": "Signed Up"}}


def test_an_unknown_title_field_on_a_known_kind_is_just_a_field() -> None:
    # Only metrics are named by their title; an event's stray ``title`` is a plain field.
    def side(title: str) -> Snapshot:
        event = {"id": "e1", "product_id": "p1", "name": "Signed Up", "title": title}
        return snap({**base(), "event": [event]})

    change = by_id(diff_snapshots(side("Old"), side("New")))["e1"]
    assert (change.change, change.name, change.severity) == ("changed", "Signed Up", "info")
    assert render_text(diff_snapshots(side("Old"), side("New"))).count("Signed Up") == 1
    assert 'title: "Old" → "New"' in render_text(diff_snapshots(side("Old"), side("New")))
    # ... so kmsnap log --entity does not find the event by it either.
    entry = LogEntry(Commit("c" * 40, None, "2024-01-01T00:00:00Z", "A", "s"), [change])
    assert entity_timeline([entry], "Old") == []
    assert entity_timeline([entry], "Signed Up") != []


def test_recreated_versus_removed_and_added_with_another_name() -> None:
    rec = base()
    old = snap({**rec, "event": [{"id": "e1", "product_id": "p1", "name": "Buy"}]})
    same = snap({**rec, "event": [{"id": "e2", "product_id": "p1", "name": "Buy"}]})
    other = snap({**rec, "event": [{"id": "e2", "product_id": "p1", "name": "Purchase"}]})
    [one] = diff_snapshots(old, same).changes
    assert (one.change, one.id, one.old_id, one.severity) == ("recreated", "e2", "e1", "breaking")
    assert one.to_json()["old_id"] == "e1"
    changes = diff_snapshots(old, other).changes
    assert sorted((c.change, c.id) for c in changes) == [("added", "e2"), ("removed", "e1")]
    assert all("old_id" not in c.to_json() for c in changes)


def test_recreated_only_within_one_product() -> None:
    rec = base()
    rec["product"].append({"id": "p2", "account_id": "a1", "name": "App"})
    old = snap({**rec, "event": [{"id": "e1", "product_id": "p1", "name": "Buy"}]})
    new = snap({**rec, "event": [{"id": "e2", "product_id": "p2", "name": "Buy"}]})
    assert sorted(c.change for c in diff_snapshots(old, new).changes) == ["added", "removed"]


def test_several_candidates_pair_in_id_order() -> None:
    rec = base()

    def events(*ids: str) -> Snapshot:
        return snap({**rec, "event": [{"id": i, "product_id": "p1", "name": "Buy"} for i in ids]})

    cs = diff_snapshots(events("e2", "e1", "e3"), events("e9", "e8"))
    got = sorted((c.change, c.id, c.old_id) for c in cs.changes)
    assert got == [("recreated", "e8", "e1"), ("recreated", "e9", "e2"), ("removed", "e3", None)]


def test_products_recreate_within_their_account() -> None:
    old = snap({"product": [{"id": "p1", "account_id": "a1", "name": "Web"}]})
    new = snap({"product": [{"id": "p2", "account_id": "a1", "name": "Web"}]})
    [one] = diff_snapshots(old, new).changes
    assert (one.change, one.account_id, one.product_id) == ("recreated", "a1", "p2")


@pytest.mark.parametrize(
    ("kind", "field", "before", "after", "severity"),
    [
        ("property", "type", "text", "number", "breaking"),
        ("property", "type", "text", None, "breaking"),
        ("metric", "unit_type", "numeric", "time", "breaking"),
        ("event", "is_visible", True, False, "warning"),
        ("event", "is_visible", False, True, "info"),
        ("product", "status", "active", "canceled", "warning"),
        ("account", "status", "active", "canceled", "warning"),
        ("product", "status", "canceled", "active", "info"),
        ("metric", "status", "ready", "canceled", "info"),  # a computation state, not a retirement
        ("metric", "color", "#fff", "#000", "info"),
        ("event", "description", "a", "b", "info"),
        ("event", "display_name", "a", "b", "info"),
        ("event", "type", "a", "b", "info"),  # type only breaks properties
    ],
)
def test_field_severity(kind: str, field: str, before: Any, after: Any, severity: str) -> None:
    old = snap({kind: [{"id": "x", "name": "N", "title": "N", field: before}]})
    new = snap({kind: [{"id": "x", "name": "N", "title": "N", field: after}]})
    [one] = diff_snapshots(old, new).changes
    assert (one.change, one.severity) == ("changed", severity)


def test_highest_reason_wins() -> None:
    old = snap({"property": [{"id": "x", "name": "N", "is_visible": True, "type": "text"}]})
    new = snap({"property": [{"id": "x", "name": "N", "is_visible": False, "type": "number"}]})
    assert diff_snapshots(old, new).changes[0].severity == "breaking"


@pytest.mark.parametrize(
    ("severity", "level", "expected"),
    [
        ("breaking", "breaking", True),
        ("warning", "breaking", False),
        ("warning", "warning", True),
        ("info", "warning", False),
        ("info", "any", True),
        ("breaking", "any", True),
    ],
)
def test_severity_at_least(severity: str, level: str, expected: bool) -> None:
    change = Change("event", "changed", "x", None, None, None, severity)
    assert severity_at_least(change, level) is expected


def test_severity_at_least_refuses_unknown_levels() -> None:
    with pytest.raises(ValueError):
        severity_at_least(Change("event", "added", "x", None, None, None, "info"), "high")


def test_usage_fields_count_only_with_stats() -> None:
    rec = {"event": [{"id": "e1", "product_id": "p1", "name": "Buy"}]}
    old = snap(rec, stats={"event": {"e1": {"total": 1}}})
    new = snap(rec, stats={"event": {"e1": {"total": 5}}})
    assert diff_snapshots(old, new).changes == []
    [one] = diff_snapshots(old, new, with_stats=True).changes
    assert one.fields == {"total": {"old": 1, "new": 5}}
    assert one.severity == "info"


def test_kinds_filter_accepts_singular_and_plural() -> None:
    old, new = sample_pair()
    assert {c.kind for c in diff_snapshots(old, new, kinds=["events"]).changes} == {"event"}
    got = {c.kind for c in diff_snapshots(old, new, kinds=["metric", "segments"]).changes}
    assert got == {"metric", "segments"}


def test_ignore_fields_per_kind_and_nested() -> None:
    old, new = sample_pair()
    ignore = {"events": ["display_name", "description"], "account": ["contact.phone"]}
    changes = by_id(diff_snapshots(old, new, ignore_fields=ignore))
    assert "ev-2" not in changes  # only ignored fields changed
    assert changes["ev-4"].fields == {"name": {"old": "Viewed page", "new": "Page viewed"}}
    assert changes["acc-1"].fields == {"contact.name": {"old": "Ann"}}


def test_type_drift_hidden_by_python_equality_is_a_change() -> None:
    old = snap({"event": [{"id": "e", "name": "N", "is_visible": True, "n": 1}]})
    new = snap({"event": [{"id": "e", "name": "N", "is_visible": 1, "n": 1.0}]})
    [one] = diff_snapshots(old, new).changes
    assert one.fields == {"is_visible": {"old": True, "new": 1}, "n": {"old": 1, "new": 1.0}}


def test_nan_against_nan_is_no_change() -> None:
    def rec() -> dict[str, Any]:
        return {"id": "e", "name": "N", "x": float("nan"), "y": {"z": [float("nan")]}}

    assert diff_snapshots(snap({"event": [rec()]}), snap({"event": [rec()]})).changes == []


def test_a_list_inside_a_nested_mapping_is_one_value() -> None:
    old = snap({"segments": [{"id": "s", "name": "N", "m": {"tags": [1, 2], "k": "a"}}]})
    new = snap({"segments": [{"id": "s", "name": "N", "m": {"tags": [1, 3, 4], "k": "a"}}]})
    [one] = diff_snapshots(old, new).changes
    assert one.fields == {"m.tags": {"old": [1, 2], "new": [1, 3, 4]}}


def test_awkward_keys_are_quoted_in_paths() -> None:
    old = snap({"segments": [{"id": "s", "name": "N", "a.b": 1, "m": {"x y": 1}}]})
    new = snap({"segments": [{"id": "s", "name": "N", "a.b": 2, "m": {"x y": 2}}]})
    assert list(diff_snapshots(old, new).changes[0].fields or {}) == ['["a.b"]', 'm["x y"]']


def test_a_nested_mapping_replaced_by_a_scalar_is_one_field() -> None:
    old = snap({"account": [{"id": "a", "name": "N", "contact": {"phone": "1"}}]})
    new = snap({"account": [{"id": "a", "name": "N", "contact": None}]})
    [one] = diff_snapshots(old, new).changes
    assert one.fields == {"contact": {"old": {"phone": "1"}, "new": None}}


def test_json_shape_and_summary() -> None:
    old, new = sample_pair()
    data = diff_snapshots(old, new, old_label="a", new_label="b").to_json()
    assert list(data) == ["schema_version", "old", "new", "summary", "changes"]
    assert data["summary"] == {"added": 2, "removed": 2, "changed": 8, "renamed": 3, "recreated": 1}
    added = next(c for c in data["changes"] if c["change"] == "added")
    assert list(added) == ["kind", "change", "id", "name", "account_id", "product_id", "severity"]


# --- laws -----------------------------------------------------------------------------

_names = st.sampled_from(["Buy", "Sell", "Open", "Buy", "x\ny", "@here", "", None])
_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.sampled_from("ab"), inner, max_size=2)
    ),
    max_leaves=4,
)


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    """Small snapshots over a shared pool of ids, so both sides overlap."""
    # Products keep their account: an event's account is found through its product.
    products = [
        {"id": f"p{i}", "account_id": f"a{i % 2}", "name": draw(_names)}
        for i in draw(st.sets(st.integers(0, 2)))
    ]
    records: dict[str, list[dict[str, Any]]] = {
        "account": [
            {"id": f"a{i}", "name": draw(_names), "contact": draw(_values)}
            for i in draw(st.sets(st.integers(0, 1)))
        ],
        "product": products,
    }
    for kind, name_field in (("event", "name"), ("metric", "title"), ("other", "name")):
        records[kind] = [
            {
                "id": f"{kind[0]}{i}",
                "product_id": f"p{draw(st.integers(0, 2))}",
                name_field: draw(_names),
                "is_visible": draw(st.booleans()),
                "extra": draw(_values),
            }
            for i in draw(st.sets(st.integers(0, 6), max_size=5))
        ]
    stats = {"event": {r["id"]: {"total": draw(st.integers(0, 2))} for r in records["event"]}}
    return snap(records, stats)


def _swapped(change: Change) -> tuple[Any, ...]:
    opposite = {"added": "removed", "removed": "added"}
    fields = None
    if change.fields is not None:
        fields = {
            p: {("new" if k == "old" else "old"): v for k, v in s.items()}
            for p, s in change.fields.items()
        }
    if change.change == "recreated":
        return (change.kind, "recreated", change.old_id, change.id, fields)
    return (change.kind, opposite.get(change.change, change.change), change.id, None, fields)


def _key(change: Change) -> tuple[Any, ...]:
    return (change.kind, change.change, change.id, change.old_id, change.fields)


@settings(max_examples=100, deadline=None)
@given(snapshots(), st.booleans())
def test_law_a_snapshot_against_itself_is_empty(s: Snapshot, with_stats: bool) -> None:
    assert diff_snapshots(s, s, with_stats=with_stats).changes == []


@settings(max_examples=100, deadline=None)
@given(snapshots(), snapshots(), st.booleans())
def test_law_swapping_sides_swaps_everything(a: Snapshot, b: Snapshot, stats: bool) -> None:
    forward = diff_snapshots(a, b, with_stats=stats)
    backward = diff_snapshots(b, a, with_stats=stats)
    assert sorted(map(_swapped, forward.changes), key=repr) == sorted(
        map(_key, backward.changes), key=repr
    )
    assert forward.summary()["added"] == backward.summary()["removed"]
    assert forward.summary()["recreated"] == backward.summary()["recreated"]


@settings(max_examples=100, deadline=None)
@given(snapshots(), snapshots())
def test_law_a_rename_names_the_new_side(a: Snapshot, b: Snapshot) -> None:
    for change in diff_snapshots(a, b).changes:
        if change.change in ("changed", "renamed"):
            now = entity_name(change.kind, b.entities[change.kind][change.id])
            before = entity_name(change.kind, a.entities[change.kind][change.id])
            assert change.name == (before if now is None else now)
            field = name_field_of(change.kind)
            assert (change.change == "renamed") == (
                a.entities[change.kind][change.id].get(field)
                != b.entities[change.kind][change.id].get(field)
            )


def _shuffled(s: Snapshot, seed: int) -> Snapshot:
    rng = random.Random(seed)

    def shuffle_dict(d: dict[str, Any]) -> dict[str, Any]:
        items = list(d.items())
        rng.shuffle(items)
        return {k: shuffle_dict(v) if isinstance(v, dict) else v for k, v in items}

    out = Snapshot(api=s.api)
    kinds = list(s.entities)
    rng.shuffle(kinds)
    for kind in kinds:
        out.entities[kind] = shuffle_dict(s.entities[kind])
    out.stats = {k: shuffle_dict(v) for k, v in s.stats.items()}
    return out


@settings(max_examples=100, deadline=None)
@given(snapshots(), snapshots(), st.integers(0, 10**6))
def test_law_order_does_not_matter(a: Snapshot, b: Snapshot, seed: int) -> None:
    expected = diff_snapshots(a, b, with_stats=True)
    got = diff_snapshots(_shuffled(a, seed), _shuffled(b, seed + 1), with_stats=True)
    assert got.to_json() == expected.to_json()
    assert [list((c.fields or {}).items()) for c in got.changes] == [
        list((c.fields or {}).items()) for c in expected.changes
    ]
