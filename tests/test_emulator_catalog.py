"""The emulator's catalog: the generator, live mutations, snapshots in and out, `kmsnap serve`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from kmsnap.emulator import AWKWARD_NAMES, Catalog, Emulator, generate_catalog
from kmsnap.model import KINDS, USAGE_FIELDS, Snapshot, entity_name
from kmsnap.snapshot.store import load_snapshot

TOKEN = "demo-token"
FIXTURE = Path(__file__).parent / "fixtures" / "snapshot-small"
Make = Callable[..., Emulator]


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        yield session


def pull_all(http: requests.Session, base: str) -> Snapshot:
    """A tiny reference crawler: every top-level collection by ``next`` links."""
    snapshot = Snapshot(api=base)
    root = http.get(base, timeout=10).json()
    for link in root["data"]["links"]:
        if not link["templated"] or not link["href"].endswith("{?limit,offset}"):
            continue
        url: str | None = link["href"].replace("{?limit,offset}", "?limit=100")
        kind = {s.rel: s.kind for s in KINDS.values()}.get(link["rel"], link["rel"])
        while url:
            body = http.get(url, timeout=10).json()
            for item in body["data"]:
                snapshot.add(kind, item)
            url = next((n["href"] for n in body["links"] if n["rel"] == "next"), None)
    return snapshot


# ------------------------------------------------------------------- generator


def test_generator_is_deterministic() -> None:
    a, b = generate_catalog(500, seed=7), generate_catalog(500, seed=7)
    assert a.records == b.records
    assert generate_catalog(500, seed=8).ids("event") != a.ids("event")


@pytest.mark.parametrize("size", [0, 1, 10, 200, 5000])
def test_generator_size_is_about_right(size: int) -> None:
    catalog = generate_catalog(size)
    assert abs(catalog.size() - size) <= max(2, size // 50)
    if size >= 10:
        assert len(catalog.records["account"]) >= 2
        assert len(catalog.records["product"]) >= 2


def test_generator_is_realistic() -> None:
    catalog = generate_catalog(2000, seed=1)
    for kind, spec in KINDS.items():
        records = list(catalog.records[kind].values())
        assert set(spec.fields) <= set().union(*records), kind
        for record in records:
            assert len(record["id"]) == 36 and record["id"].count("-") == 4
            if spec.parent_field:
                parent = catalog.records[spec.parent][record[spec.parent_field]]
                assert parent["id"] == record[spec.parent_field]
    events = list(catalog.records["event"].values())
    assert any(e["description"] is None for e in events)
    assert any(e["display_name"] is None for e in events)
    assert any(e["total"] == 0 and e["first_used_at"] is None for e in events)
    assert any(set(e) - set(KINDS["event"].fields) for e in events)  # unknown fields
    assert any(set(a) - set(KINDS["account"].fields)
               for a in catalog.records["account"].values())
    stamps = [e["last_used_at"] for e in events if e["last_used_at"]]
    assert any(s.endswith("Z") for s in stamps) and any(s.endswith("+00:00") for s in stamps)
    # Names are unique within a product and kind (so re-creation can be recognised).
    for kind in ("event", "property", "metric", "report"):
        seen: set[tuple[Any, Any]] = set()
        for record in catalog.records[kind].values():
            key = (record["product_id"], entity_name(kind, record))
            assert key not in seen, key
            seen.add(key)


def test_generator_has_every_awkward_name() -> None:
    names: set[str | None] = set()
    for kind in ("event", "property", "metric", "report"):
        names |= {entity_name(kind, r) if r.get(KINDS[kind].name_field) is not None else None
                  for r in generate_catalog(2000).records[kind].values()}
    assert set(AWKWARD_NAMES) <= names
    for word in ("yes", "no", "on", "off", "null", "~", "true", "1e3", "0123", ".inf",
                 "2014-09-02T19:46:43Z", "key: value", "a #comment", "  leading and trailing  ",
                 "line one\nline two", "tab\tseparated", "it's", 'say "hi"', "emoji 🚀🎉",
                 "<b>bold</b> <script>alert(1)</script>", "| col | col |", "@mention",
                 "../../etc/passwd", "a/b/c", "esc \x1b[31mred\x1b[0m"):
        assert word in AWKWARD_NAMES
    assert any(name and len(name) > 300 for name in AWKWARD_NAMES)
    # The default catalog already holds the most important ones.
    default = generate_catalog()
    served = {entity_name(k, r) for k in ("event", "property", "metric", "report")
              for r in default.records[k].values()}
    assert {"yes", "null", "../../etc/passwd", "esc \x1b[31mred\x1b[0m", "emoji 🚀🎉"} <= served


def test_orphans_and_unknown_collections(make_emulator: Make, http: requests.Session) -> None:
    catalog = generate_catalog(300, seed=2, orphans=3, extra=True)
    products = set(catalog.records["product"])
    orphans = [e for e in catalog.records["event"].values() if e["product_id"] not in products]
    assert len(orphans) == 3
    emu = make_emulator(catalog)
    root = http.get(emu.base_url, timeout=10).json()
    nav = {link["rel"]: link for link in root["data"]["links"]}
    assert nav["segments"]["href"] == f"{emu.base_url}/segments{{?limit,offset}}"
    body = http.get(f"{emu.base_url}/segments", timeout=10).json()
    assert [s["id"] for s in body["data"]] == catalog.ids("segments")
    assert body["pagination"]["total"] == 3
    segment = catalog.ids("segments")[0]
    item = http.get(f"{emu.base_url}/segments/{segment}", timeout=10).json()
    assert item["data"]["id"] == segment
    rels = http.get(f"{emu.base_url}/rels", timeout=10).json()["data"]["rels"]
    assert {"segments", "dashboards"} <= {r["name"] for r in rels}
    assert pull_all(http, emu.base_url).entities == catalog.to_snapshot("x").entities


# ------------------------------------------------------------------- snapshots


def test_to_snapshot_is_what_a_perfect_pull_gives(emulator: Emulator,
                                                  http: requests.Session) -> None:
    expected = emulator.catalog.to_snapshot(emulator.base_url)
    pulled = pull_all(http, emulator.base_url)
    assert pulled.entities == expected.entities
    assert pulled.stats == expected.stats
    assert expected.stats["event"]
    for kind, by_id in expected.entities.items():
        for record in by_id.values():
            assert not USAGE_FIELDS & set(record), kind


def test_from_snapshot_round_trip() -> None:
    catalog = generate_catalog(400, seed=5, extra=True)
    snapshot = catalog.to_snapshot("http://x/core")
    again = Catalog.from_snapshot(snapshot)
    assert again.records == catalog.records
    assert again.extra == catalog.extra
    assert again.to_snapshot("http://x/core") == snapshot


def fixture_records() -> dict[str, dict[str, dict[str, Any]]]:
    """The fixture snapshot read with plain PyYAML: kind -> id -> record."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    stems = {spec.rel: kind for kind, spec in KINDS.items()}
    for path in sorted(FIXTURE.rglob("*.yaml")):
        if path.name == "kmsnap.yaml":
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        kind = path.stem if path.parent.name == "_other" else stems.get(path.stem, path.stem)
        for record in data if isinstance(data, list) else [data]:
            out.setdefault(kind, {})[record["id"]] = record
    return out


def test_serves_a_snapshot_directory(make_emulator: Make, http: requests.Session) -> None:
    snapshot = load_snapshot(FIXTURE)
    emu = make_emulator(Catalog.from_snapshot(snapshot))
    expected = fixture_records()
    assert sum(map(len, expected.values())) == 12
    pulled = pull_all(http, emu.base_url)
    assert pulled.entities == expected
    assert pulled.entities == snapshot.entities


def test_serves_a_catalog_built_from_fixture_records(make_emulator: Make,
                                                     http: requests.Session) -> None:
    # Independent of kmsnap.snapshot.store: the same records through Snapshot.add.
    snapshot = Snapshot(api="https://api.kissmetrics.com/core")
    for kind, by_id in fixture_records().items():
        for record in by_id.values():
            snapshot.add(kind, record)
    emu = make_emulator(Catalog.from_snapshot(snapshot))
    assert pull_all(http, emu.base_url).entities == snapshot.entities


# ------------------------------------------------------------------- mutations


def test_changes_while_running(make_emulator: Make, http: requests.Session) -> None:
    emu = make_emulator(size=300, seed=11)
    catalog, base = emu.catalog, emu.base_url
    before = catalog.to_snapshot(base)
    assert pull_all(http, base) == before

    event_ids = catalog.ids("event")
    product = catalog.ids("product")[0]
    new_id = catalog.add("event", {"product_id": product, "name": "brand new"})
    catalog.remove("property", catalog.ids("property")[0])
    catalog.rename("event", event_ids[0], "renamed")
    catalog.rename("metric", catalog.ids("metric")[0], "New title")
    catalog.set_field("event", event_ids[1], "is_visible", False)
    catalog.set_field("event", event_ids[1], "brand_new_field", {"a": 1})
    catalog.delete_field("event", event_ids[2], "description")
    recreated = catalog.recreate("event", event_ids[3])

    after = pull_all(http, base)
    assert after == catalog.to_snapshot(base)
    events = after.of("event")
    assert events[new_id]["name"] == "brand new"
    assert events[event_ids[0]]["name"] == "renamed"
    assert events[event_ids[1]]["is_visible"] is False
    assert events[event_ids[1]]["brand_new_field"] == {"a": 1}
    assert "description" not in events[event_ids[2]]
    assert event_ids[3] not in events
    assert events[recreated]["name"] == before.of("event")[event_ids[3]]["name"]
    assert recreated not in before.of("event")
    assert http.get(f"{base}/events/{event_ids[3]}", timeout=10).status_code == 404
    scoped = http.get(f"{base}/products/{product}/events?limit=100", timeout=10).json()
    assert new_id in [e["id"] for e in scoped["data"]]


def test_touch_usage_moves_only_usage(make_emulator: Make, http: requests.Session) -> None:
    emu = make_emulator(size=200, seed=12)
    before = pull_all(http, emu.base_url)
    assert emu.catalog.touch_usage(seed=1) > 0
    after = pull_all(http, emu.base_url)
    assert after.entities == before.entities
    assert after.stats != before.stats
    changed = [i for i, s in after.stats["event"].items() if s != before.stats["event"][i]]
    assert len(changed) == len(before.stats["event"])


def test_remove_cascade_and_mutation_errors() -> None:
    catalog = generate_catalog(300, seed=13)
    product = catalog.ids("product")[0]
    catalog.remove("product", product, cascade=True)
    for kind in ("event", "property", "metric", "report"):
        assert all(r["product_id"] != product for r in catalog.records[kind].values())
    with pytest.raises(KeyError):
        catalog.rename("event", "no-such-id", "x")
    with pytest.raises(ValueError):
        catalog.set_field("event", catalog.ids("event")[0], "id", "x")


def test_listing_is_cached_until_a_change() -> None:
    catalog = generate_catalog(300)
    first = catalog.listing("event")
    assert catalog.listing("event") is first
    catalog.rename("event", catalog.ids("event")[0], "x")
    assert catalog.listing("event") is not first


# -------------------------------------------------------------------- the CLI


@pytest.mark.parametrize("source", [["--size", "50"], ["--catalog", str(FIXTURE)]])
def test_kmsnap_serve_prints_url_serves_and_stops_on_ctrl_c(source: list[str]) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kmsnap", "serve", "--port", "0", "--token", "T", *source],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip()  # blocks until the server listens
        assert base.startswith("http://127.0.0.1:") and base.endswith("/core")
        response = requests.get(base + "/events", headers={"Authorization": "Bearer T"},
                                timeout=10)
        assert response.status_code == 200
        assert response.json()["pagination"]["total"] > 0
        response.close()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert out == ""


@pytest.mark.parametrize("args", [["--fault-rate", "2"], ["--max-page-size", "0"],
                                  ["--catalog", "/nonexistent/snapshot"]])
def test_kmsnap_serve_refuses_bad_options(args: list[str]) -> None:
    from kmsnap.cli import run

    assert run(["serve", "--port", "0", *args]) == 1
