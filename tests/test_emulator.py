"""The emulator's routes, envelopes, pagination, links and auth, over real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from kmsnap.emulator import Catalog, Emulator
from kmsnap.model import KINDS

TOKEN = "demo-token"
COLLECTIONS = ("accounts", "products", "reports", "events", "properties", "metrics")


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers.update({"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"})
        yield session


def get_json(http: requests.Session, url: str, status: int = 200) -> Any:
    response = http.get(url, timeout=10)
    assert response.status_code == status, (url, response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/json")
    return response.json()


def links_by_rel(links: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {link["rel"]: link for link in links}


def follow_all(http: requests.Session, url: str) -> list[dict[str, Any]]:
    """Every item of a collection, following ``next`` links."""
    items: list[dict[str, Any]] = []
    total = None
    while url:
        body = get_json(http, url)
        total = body["pagination"]["total"]
        items += body["data"]
        url = links_by_rel(body["links"]).get("next", {}).get("href")
    assert len(items) == total
    return items


# ------------------------------------------------------------------------ root


def test_root_directory_lists_every_collection_and_item_template(
    emulator: Emulator, http: requests.Session
) -> None:
    body = get_json(http, emulator.base_url)
    assert links_by_rel(body["links"])["self"]["href"] == emulator.base_url
    data = body["data"]
    assert data["name"] == "KISSmetrics API"
    assert data["description"]
    nav = links_by_rel(data["links"])
    assert nav["self"]["href"] == emulator.base_url
    for rel in COLLECTIONS:
        assert nav[rel] == {
            "templated": True, "href": f"{emulator.base_url}/{rel}{{?limit,offset}}",
            "rel": rel, "name": rel.capitalize(),
        }
    for kind, spec in KINDS.items():
        assert nav[kind]["href"] == f"{emulator.base_url}/{spec.rel}/{{id}}"
        assert nav[kind]["templated"] is True
    assert nav["rels"]["href"] == f"{emulator.base_url}/rels"
    for link in data["links"]:
        assert link["href"].startswith("http://127.0.0.1:")


def test_root_with_trailing_slash(emulator: Emulator, http: requests.Session) -> None:
    assert get_json(http, emulator.base_url + "/")["data"]["name"] == "KISSmetrics API"


def test_rels_lists_every_relation_used(emulator: Emulator, http: requests.Session) -> None:
    body = get_json(http, emulator.base_url + "/rels")
    data = body["data"]
    assert data["title"] and data["description"]
    names = {rel["name"] for rel in data["rels"]}
    assert {"self", "next", "prev", "first", "last", "run", "metric-over-time",
            "metric-by-segment", *COLLECTIONS, *KINDS} <= names
    assert all(rel["description"] for rel in data["rels"])


# ------------------------------------------------------------------ collections


@pytest.mark.parametrize("rel", COLLECTIONS)
def test_following_next_yields_every_id_once(
    emulator: Emulator, http: requests.Session, rel: str
) -> None:
    kind = {spec.rel: spec.kind for spec in KINDS.values()}[rel]
    items = follow_all(http, f"{emulator.base_url}/{rel}?limit=7")
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids))
    assert ids == emulator.catalog.ids(kind)
    for item in items:
        record = {k: v for k, v in item.items() if k != "links"}
        assert record == emulator.catalog.records[kind][item["id"]]


def test_item_links_per_reference_table(emulator: Emulator, http: requests.Session) -> None:
    base = emulator.base_url
    rels: dict[str, list[str]] = {}
    for rel in COLLECTIONS:
        item = get_json(http, f"{base}/{rel}?limit=1")["data"][0]
        rels[rel] = [link["rel"] for link in item["links"]]
        by_rel = links_by_rel(item["links"])
        if rel != "metrics":
            assert by_rel["self"]["href"] == f"{base}/{rel}/{item['id']}"
        if "product_id" in item:
            assert by_rel["product"]["href"] == f"{base}/products/{item['product_id']}"
        if rel == "accounts":
            assert by_rel["products"]["href"] == f"{base}/accounts/{item['id']}/products"
        if rel == "products":
            assert by_rel["account"]["href"] == f"{base}/accounts/{item['account_id']}"
            for child in ("reports", "events", "properties", "metrics"):
                assert by_rel[child]["href"] == f"{base}/products/{item['id']}/{child}"
        if rel == "reports":
            assert by_rel["account"]["href"] == f"{base}/accounts/{item['account_id']}"
            run = by_rel["run"]
            assert run["href"].startswith("https://query.kissmetrics.com/")
            assert run["method"] == "POST"
        if rel == "metrics":
            assert "href" not in by_rel["self"]  # the published quirk
            for query in ("metric-over-time", "metric-by-segment"):
                assert by_rel[query]["templated"] is True
                assert by_rel[query]["href"].startswith("https://query.kissmetrics.com/")
    assert rels == {
        "accounts": ["self", "products"],
        "products": ["self", "account", "reports", "events", "properties", "metrics"],
        "reports": ["self", "product", "account", "run"],
        "events": ["self", "product"],
        "properties": ["self", "product"],
        "metrics": ["self", "product", "metric-over-time", "metric-by-segment"],
    }


@pytest.mark.parametrize("rel", COLLECTIONS)
def test_single_item(emulator: Emulator, http: requests.Session, rel: str) -> None:
    kind = {spec.rel: spec.kind for spec in KINDS.values()}[rel]
    entity_id = emulator.catalog.ids(kind)[-1]
    body = get_json(http, f"{emulator.base_url}/{rel}/{entity_id}")
    assert body["links"] == [{"templated": False, "rel": "self", "name": "Self",
                              "href": f"{emulator.base_url}/{rel}/{entity_id}"}]
    data = body["data"]
    links = data.pop("links")
    assert data == emulator.catalog.records[kind][entity_id]
    if kind == "account":
        assert [link["rel"] for link in links] == ["self", "products"]
    else:
        assert links == []  # detail samples carry an empty links list


def test_unknown_item_and_route_are_404(emulator: Emulator, http: requests.Session) -> None:
    base = emulator.base_url
    for url in (f"{base}/events/nope", f"{base}/nothing", f"{base}/events/x/y",
                f"{base}/products/nope/events", f"{base}/accounts/nope/products",
                base.replace("/core", "/other")):
        assert get_json(http, url, 404)["error"]["status"] == 404


def test_account_scoped_products_and_product_scoped_children(
    emulator: Emulator, http: requests.Session
) -> None:
    base = emulator.base_url
    catalog = emulator.catalog
    seen_products: list[str] = []
    for account in follow_all(http, f"{base}/accounts"):
        url = links_by_rel(account["links"])["products"]["href"]
        products = follow_all(http, url + "?limit=3")
        assert all(p["account_id"] == account["id"] for p in products)
        seen_products += [p["id"] for p in products]
        for product in products:
            for child, kind in (("reports", "report"), ("events", "event"),
                                ("properties", "property"), ("metrics", "metric")):
                href = links_by_rel(product["links"])[child]["href"]
                items = follow_all(http, href + "?limit=50")
                assert [i["id"] for i in items] == [
                    r["id"] for r in catalog.records[kind].values()
                    if r["product_id"] == product["id"]
                ]
    assert sorted(seen_products) == sorted(catalog.ids("product"))


# ------------------------------------------------------------------- pagination


def small_catalog(events: int) -> Catalog:
    catalog = Catalog()
    account = catalog.add("account", {"name": "A", "status": "active"})
    product = catalog.add("product", {"account_id": account, "name": "P"})
    for i in range(events):
        catalog.add("event", {"product_id": product, "name": f"e{i}", "total": i})
    return catalog


def test_default_limit_and_links(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(small_catalog(45))
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {TOKEN}"
        body = get_json(http, f"{emu.base_url}/events")
        assert body["pagination"] == {"limit": 20, "offset": 0, "total": 45}
        assert len(body["data"]) == 20
        links = {rel: link["href"] for rel, link in links_by_rel(body["links"]).items()}
        url = f"{emu.base_url}/events"
        assert links == {"self": f"{url}?limit=20&offset=0", "first": f"{url}?limit=20&offset=0",
                         "last": f"{url}?limit=20&offset=40", "next": f"{url}?limit=20&offset=20"}
        body = get_json(http, links["last"])
        assert len(body["data"]) == 5
        links = {rel: link["href"] for rel, link in links_by_rel(body["links"]).items()}
        assert "next" not in links
        assert links["prev"] == f"{url}?limit=20&offset=20"


def test_empty_collection(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(small_catalog(0))
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {TOKEN}"
        for rel in ("events", "metrics", "reports", "properties"):
            body = get_json(http, f"{emu.base_url}/{rel}")
            assert body["data"] == []
            assert body["pagination"] == {"limit": 20, "offset": 0, "total": 0}
            rels = links_by_rel(body["links"])
            assert set(rels) == {"self", "first", "last"}
            assert rels["last"]["href"].endswith("offset=0")


def test_total_exact_multiple_of_page(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(small_catalog(40))
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {TOKEN}"
        body = get_json(http, f"{emu.base_url}/events?limit=20&offset=20")
        assert len(body["data"]) == 20
        rels = links_by_rel(body["links"])
        assert "next" not in rels
        assert rels["last"]["href"].endswith("limit=20&offset=20")
        assert len(follow_all(http, f"{emu.base_url}/events?limit=20")) == 40
        assert len(follow_all(http, f"{emu.base_url}/events?limit=10")) == 40


def test_offset_past_end(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(small_catalog(5))
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {TOKEN}"
        body = get_json(http, f"{emu.base_url}/events?offset=500")
        assert body["data"] == []
        assert body["pagination"] == {"limit": 20, "offset": 500, "total": 5}
        assert "next" not in links_by_rel(body["links"])


def test_limit_clamped_to_max_page_size(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(small_catalog(30), max_page_size=10)
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {TOKEN}"
        body = get_json(http, f"{emu.base_url}/events?limit=1000")
        assert body["pagination"]["limit"] == 10
        assert len(body["data"]) == 10
        assert links_by_rel(body["links"])["next"]["href"].endswith("limit=10&offset=10")


@pytest.mark.parametrize("query", ["limit=abc", "limit=-1", "offset=-5", "offset=1.5",
                                   "limit=", "limit=0", "limit=%C2%B2"])
def test_bad_paging_values_are_400(
    emulator: Emulator, http: requests.Session, query: str
) -> None:
    body = get_json(http, f"{emulator.base_url}/events?{query}", 400)
    assert body["error"]["status"] == 400
    assert body["error"]["message"]


def test_default_catalog_has_every_documented_field(emulator: Emulator) -> None:
    for kind, spec in KINDS.items():
        records = list(emulator.catalog.records[kind].values())
        assert records, kind
        fields = set().union(*records)
        assert set(spec.fields) <= fields, (kind, set(spec.fields) - fields)


# ------------------------------------------------------------------------- auth


def test_missing_or_wrong_token_is_401(emulator: Emulator) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                    {"Authorization": "Basic ZGVtbzp0b2tlbg=="}):
        response = requests.get(emulator.base_url + "/events", headers=headers, timeout=10)
        assert response.status_code == 401
        assert response.json()["error"]["status"] == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_restricted_token_sees_only_its_accounts(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(size=300, seed=3)
    catalog = emu.catalog
    mine, other = catalog.ids("account")[:2]
    emu.add_token("limited", accounts=[mine])
    with requests.Session() as http:
        http.headers["Authorization"] = "Bearer limited"
        base = emu.base_url
        accounts = follow_all(http, f"{base}/accounts")
        assert [a["id"] for a in accounts] == [mine]
        expected = catalog.to_snapshot(base, accounts=[mine])
        for kind, spec in KINDS.items():
            ids = [i["id"] for i in follow_all(http, f"{base}/{spec.rel}?limit=100")]
            assert sorted(ids) == sorted(expected.of(kind)), kind
        products = [p for p in catalog.records["product"].values() if p["account_id"] == other]
        event = next(e for e in catalog.records["event"].values()
                     if e["product_id"] == products[0]["id"])
        for url in (f"{base}/accounts/{other}", f"{base}/accounts/{other}/products",
                    f"{base}/products/{products[0]['id']}",
                    f"{base}/products/{products[0]['id']}/events", f"{base}/events/{event['id']}"):
            assert get_json(http, url, 403)["error"]["status"] == 403
        get_json(http, f"{base}/accounts/{mine}")


def test_other_methods_are_405(emulator: Emulator) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with requests.Session() as http:
        for method in ("POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            response = http.request(method, emulator.base_url + "/events", headers=headers,
                                    json={"x": 1}, timeout=10)
            assert response.status_code == 405
            assert response.headers["Allow"] == "GET"
        head = http.head(emulator.base_url, headers=headers, timeout=10)
        assert head.status_code == 405
        # The connection is still usable after a refused body.
        assert http.get(emulator.base_url, headers=headers, timeout=10).status_code == 200


def test_keep_alive_reuses_one_connection(emulator: Emulator, http: requests.Session) -> None:
    first = http.get(emulator.base_url, timeout=10)
    assert first.headers.get("Connection", "").lower() != "close"
    assert first.raw.version == 11
    for _ in range(3):
        response = http.get(emulator.base_url + "/events?limit=1", timeout=10)
        assert response.status_code == 200
        assert int(response.headers["Content-Length"]) == len(response.content)


def test_request_log_records_authorization(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(small_catalog(3))
    requests.get(emu.base_url + "/events?limit=2", headers={"Authorization": "Bearer x"},
                 timeout=10).close()
    requests.get(emu.base_url, timeout=10).close()
    assert [(r.method, r.path, r.query, r.status, r.authorization) for r in emu.requests] == [
        ("GET", "/core/events", "limit=2", 401, "Bearer x"),
        ("GET", "/core", "", 401, None),
    ]
    assert emu.request_counts[("/core/events", 401)] == 1
    assert emu.count(status=401) == 2
    emu.reset_stats()
    assert emu.count() == 0 and emu.requests == []
