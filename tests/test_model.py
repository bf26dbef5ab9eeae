"""Per-kind facts are read from ``model.KINDS`` (one kind order, declared severity rules);
``ChangeType``/``Severity`` behave as their strings; the emulator's default catalog holds
only names the real API can send."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from kmsnap import model
from kmsnap.diff import engine as diff
from kmsnap.diff.engine import Change, ChangeType, Severity, diff_snapshots, severity_at_least
from kmsnap.emulator import Emulator, generate_catalog
from kmsnap.emulator import catalog as emulator_catalog
from kmsnap.emulator.generate import AWKWARD_NAMES, IMPOSSIBLE_NAMES
from kmsnap.model import KINDS, FieldRule, KindSpec, Snapshot, entity_name
from kmsnap.render.changes import FORMATS, LOG_FORMATS, render_json
from kmsnap.sources.core import crawler as crawl

TOKEN = "demo-token"
NAMED_KINDS = ("report", "event", "property", "metric")


def snap(records: dict[str, list[dict[str, Any]]]) -> Snapshot:
    out = Snapshot(api="http://127.0.0.1/core")
    for kind, items in records.items():
        for item in items:
            out.add(kind, item)
    return out


# --- the KINDS table ------------------------------------------------------------------


def test_one_kind_order_read_from_kinds_everywhere() -> None:
    assert model.KIND_ORDER == tuple(KINDS)
    assert diff.KIND_ORDER is model.KIND_ORDER
    assert emulator_catalog.KIND_ORDER is model.KIND_ORDER
    assert crawl.PARENT_KINDS == model.CONTAINER_KINDS == ("account", "product")
    assert model.PRODUCT_KINDS == ("report", "event", "property", "metric")
    assert model.CHILD_KINDS == ("product", *model.PRODUCT_KINDS)
    # Parents come before their children, and unknown rels sort after every known kind.
    for i, kind in enumerate(model.KIND_ORDER):
        parent = KINDS[kind].parent
        assert parent is None or model.KIND_ORDER.index(parent) < i
    assert sorted(["segments", "event", "aaa", "account"], key=model.kind_sort_key) == [
        "account", "event", "aaa", "segments"]


def test_declared_field_rules_decide_the_severity(monkeypatch: pytest.MonkeyPatch) -> None:
    # A kind declared with its own rules (as v3's ``visible``) is judged by them alone.
    monkeypatch.setitem(KINDS, "widget", KindSpec(
        "widget", "widgets", "name", ("id", "product_id", "name", "visible", "shape"),
        "product", field_rules={"visible": FieldRule.HIDDEN, "shape": FieldRule.BREAKING}))
    old = snap({"widget": [{"id": "w1", "name": "W", "visible": True, "shape": "a"},
                           {"id": "w2", "name": "V", "visible": True, "is_visible": True}]})
    new = snap({"widget": [{"id": "w1", "name": "W", "visible": False, "shape": "a"},
                           {"id": "w2", "name": "V", "visible": True, "is_visible": False}]})
    by_id = {c.id: c for c in diff_snapshots(old, new).changes}
    assert by_id["w1"].severity == "warning"  # visible: true -> false
    assert by_id["w2"].severity == "info"  # is_visible has no rule for this kind
    newer = snap({"widget": [{"id": "w1", "name": "W", "visible": True, "shape": "b"}]})
    assert diff_snapshots(old, newer, kinds=["widget"]).changes[0].severity == "breaking"


@pytest.mark.parametrize(("kind", "field", "before", "after", "severity"), [
    ("property", "type", "text", "number", "breaking"),
    ("metric", "unit_type", "numeric", "time", "breaking"),
    ("metric", "status", "active", "canceled", "info"),  # a computation state, not retirement
    ("product", "status", "active", "Cancelled", "warning"),
    ("segments", "status", "active", "canceled", "warning"),  # unknown kinds: default rules
    ("segments", "is_visible", True, False, "warning"),
    ("event", "is_visible", False, True, "info"),
    ("event", "description", "a", "b", "info"),
])
def test_severity_rules_per_kind(kind: str, field: str, before: Any, after: Any,
                                 severity: str) -> None:
    parent = {"account_id": "a1"} if kind == "product" else {"product_id": "p1"}
    name = KINDS[kind].name_field if kind in KINDS else "name"
    old = snap({kind: [{"id": "x", name: "X", **parent, field: before}]})
    new = snap({kind: [{"id": "x", name: "X", **parent, field: after}]})
    (change,) = diff_snapshots(old, new).changes
    assert (change.change, change.severity) == ("changed", severity)


def test_containers_place_themselves_and_their_children() -> None:
    old = snap({"account": [{"id": "a1", "name": "A"}],
                "product": [{"id": "p1", "account_id": "a1", "name": "P"}],
                "event": [{"id": "e1", "product_id": "p1", "name": "E"}]})
    cs = diff_snapshots(Snapshot(), old)
    places = {c.kind: (c.account_id, c.product_id) for c in cs.changes}
    assert places == {"account": ("a1", None), "product": ("a1", "p1"), "event": ("a1", "p1")}
    where = {c.kind: [k for k, _id, _name in cs.containers(c)] for c in cs.changes}
    assert where == {"account": [], "product": ["account"], "event": ["account", "product"]}


# --- change types and severities as str enums -----------------------------------------


def test_enums_are_their_strings() -> None:
    assert [str(t) for t in ChangeType] == ["added", "removed", "changed", "renamed",
                                            "recreated"]
    assert list(diff.SEVERITIES) == ["breaking", "warning", "info"]
    assert json.dumps({Severity.BREAKING: ChangeType.RECREATED}) == '{"breaking": "recreated"}'
    assert f"{Severity.WARNING} {ChangeType.ADDED!s}" == "warning added"
    assert repr(Severity.INFO) == repr("info")
    assert {"info": 1}[Severity.INFO] == 1 and Severity.INFO == "info"


def test_a_change_keeps_strings_as_enums_and_refuses_unknown_ones() -> None:
    change = Change("event", "added", "e1", "E", None, "p1", "info")  # type: ignore[arg-type]
    assert change.change is ChangeType.ADDED and change.severity is Severity.INFO
    assert severity_at_least(change, "any") and not severity_at_least(change, "warning")
    with pytest.raises(ValueError):
        Change("event", "added", "e1", "E", None, "p1", "fatal")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Change("event", "moved", "e1", "E", None, "p1", "info")  # type: ignore[arg-type]


def test_json_output_holds_plain_strings() -> None:
    old = snap({"event": [{"id": "e1", "product_id": "p1", "name": "Old"}]})
    new = snap({"event": [{"id": "e1", "product_id": "p1", "name": "New"}]})
    out = json.loads(render_json(diff_snapshots(old, new)))
    assert out["summary"] == {"added": 0, "removed": 0, "changed": 0, "renamed": 1,
                              "recreated": 0}
    assert (out["changes"][0]["change"], out["changes"][0]["severity"]) == ("renamed",
                                                                            "breaking")


def test_log_formats_are_the_report_formats_without_annotations() -> None:
    assert FORMATS == ("text", "markdown", "json", "github")
    assert LOG_FORMATS == ("text", "markdown", "json")


# --- the emulator's catalogs ----------------------------------------------------------


def _names(catalog: Any) -> list[Any]:
    return [r.get(KINDS[k].name_field) for k in KINDS for r in catalog.records[k].values()]


def test_the_default_catalog_has_only_possible_names() -> None:
    assert None not in AWKWARD_NAMES
    for catalog in (generate_catalog(), generate_catalog(2000), generate_catalog(
            1500, seed=7, orphans=3, extra=True)):
        names = _names(catalog)
        assert all(isinstance(name, str) for name in names)
        assert {"yes", "null", "None", "../../etc/passwd", "emoji 🚀🎉", " "} & set(names)


def test_impossible_values_only_when_asked_and_otherwise_the_same_catalog() -> None:
    default, impossible = generate_catalog(2000), generate_catalog(2000, impossible=True)
    assert None in _names(impossible)
    for kind in KINDS:
        assert list(default.records[kind]) == list(impossible.records[kind])  # same ids
        for entity_id, record in impossible.records[kind].items():
            name = entity_name(kind, record)
            if record.get(KINDS[kind].name_field) is None:
                stand_in = default.records[kind][entity_id][KINDS[kind].name_field]
                assert IMPOSSIBLE_NAMES[stand_in] is None
            else:
                assert name == entity_name(kind, default.records[kind][entity_id])


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers.update({"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"})
        yield session


def test_a_client_sorting_by_name_reads_the_default_emulator(
    emulator: Emulator, http: requests.Session
) -> None:
    """What Kissmetrics' example scripts (bin/properties) do: list, then sort by name."""
    for rel in ("events", "properties", "reports"):
        url: str | None = f"{emulator.base_url}/{rel}?limit=100"
        items: list[dict[str, Any]] = []
        while url:
            response = http.get(url, timeout=10)
            assert response.status_code == 200, (url, response.text)
            body = response.json()
            items += body["data"]
            url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
        assert items
        assert sorted(item["name"] for item in items)  # a null name raises TypeError here
