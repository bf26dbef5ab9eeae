"""The REST API v3 emulator over real HTTP: envelopes, credentials, paging, limits, live changes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from kmsnap.emulator import Catalog
from kmsnap.emulator.v3 import API_KEY, PASSWORD, USERNAME, EmulatorV3
from kmsnap.model import USAGE_FIELDS

CHILDREN = ("reports", "events", "properties")
CORE_ONLY = {"display_name", "description", "is_visible", "url", "status", "environment",
             "created_at", "links", "type"}


class FakeClock:
    """A clock tests move by hand: the rate limiter reads it instead of real time."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy",
                 "https_proxy", "all_proxy", "no_proxy", "KISSMETRICS_USERNAME",
                 "KISSMETRICS_PASSWORD", "KISSMETRICS_API_KEY", "NETRC"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def make_v3() -> Iterator[Callable[..., EmulatorV3]]:
    """``make_v3(catalog=None, **kwargs)``: a started ``EmulatorV3`` (no rate limit unless
    given), stopped at teardown."""
    made: list[EmulatorV3] = []

    def make(catalog: Catalog | None = None, **kwargs: Any) -> EmulatorV3:
        kwargs.setdefault("rate_per_minute", None)
        emu = EmulatorV3(catalog, **kwargs)
        made.append(emu)
        return emu.start()

    yield make
    for emu in made:
        emu.stop()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False
        session.auth = (USERNAME, PASSWORD)
        yield session


def get(http: requests.Session, url: str, status: int = 200, **params: Any) -> Any:
    response = http.get(url, params=params, timeout=10)
    assert response.status_code == status, (url, response.status_code, response.text)
    return response.json() if response.content else None


def small_catalog(events: int = 23) -> Catalog:
    """One account, two products; the first has ``events`` events, 3 reports, 5 properties."""
    account = {"id": "acc-1", "name": "Acme"}
    products = {
        pid: {"id": pid, "account_id": "acc-1", "name": name, "url": "", "status": "active",
              "timezone": "UTC", "created_at": "2020-01-01T00:00:00Z"}
        for pid, name in (("prod-a", "Web"), ("prod-b", "App"))
    }
    records: dict[str, dict[str, dict[str, Any]]] = {
        "account": {"acc-1": account}, "product": products,
        "report": {}, "event": {}, "property": {}, "metric": {},
    }
    for i in range(events):
        eid = f"ev-{i}"
        records["event"][eid] = {
            "id": eid, "product_id": "prod-a", "name": f"event {i}", "display_name": None,
            "description": None, "is_visible": True, "total": i,
            "first_used_at": "2020-01-01T00:00:00Z", "last_used_at": "2021-01-01T00:00:00Z",
            "first_sent_at": "2020-01-01T00:00:00Z", "last_sent_at": "2021-01-01T00:00:00Z",
        }
    for i in range(3):
        records["report"][f"rep-{i}"] = {
            "id": f"rep-{i}", "account_id": "acc-1", "product_id": "prod-a",
            "name": f"report {i}", "report_type": "funnel", "created_at": "2020-01-01T00:00:00Z",
        }
    for i in range(5):
        records["property"][f"prop-{i}"] = {
            "id": f"prop-{i}", "product_id": "prod-a", "name": f"prop {i}", "type": "text",
            "is_visible": i != 4, "first_used_at": "2020-01-01T00:00:00Z",
        }
    records["event"]["ev-b"] = {"id": "ev-b", "product_id": "prod-b", "name": "b only",
                                "is_visible": True, "tags": ["beta"]}
    return Catalog(records)


def walk(http: requests.Session, url: str, limit: int, key: str = "data") -> list[Any]:
    """Every record of a collection, paging ``offset += len(page)`` until a short page."""
    out: list[Any] = []
    while True:
        body = get(http, url, limit=limit, offset=len(out))
        assert set(body) == {key}  # no totals, no links, no pagination block
        out += body[key]
        if len(body[key]) < limit:
            return out


# -------------------------------------------------------------------- shapes


def test_generated_catalog_is_served_in_v3_shapes(
    make_v3: Callable[..., EmulatorV3], http: requests.Session
) -> None:
    emu = make_v3(size=300)
    assert emu.base_url.endswith("/v3") and emu.base_url.startswith("http://127.0.0.1:")
    products = get(http, f"{emu.base_url}/products")["data"]
    assert products and all(type(p["id"]) is int and type(p["account_id"]) is int
                            for p in products)
    assert set(products[0]) >= {"id", "account_id", "name", "timezone", "km_key"}
    assert {"sdk_version"} <= set().union(*products)  # the catalog's unknown fields stay
    seen = 0
    for product in products:
        for resource in CHILDREN:
            records = get(http, f"{emu.base_url}/products/{product['id']}/{resource}",
                          limit=10000)["data"]
            assert records == emu.records(resource, product["id"])
            for record in records:
                seen += 1
                assert type(record["id"]) is int and record["product_id"] == product["id"]
                assert not CORE_ONLY & set(record), record
                if resource != "reports":
                    assert type(record["visible"]) is bool and type(record["index"]) is int
    assert seen > 200
    assert any(not r["visible"] for p in products for r in emu.records("events", p["id"]))


def test_ids_are_deterministic_distinct_and_map_back(make_v3: Callable[..., EmulatorV3]) -> None:
    one, two = make_v3(size=300, seed=3), make_v3(size=300, seed=3)
    assert one.records("products") == two.records("products")
    for pid in one.product_ids():
        events = one.records("events", pid)
        assert events == two.records("events", pid)
        for event in events:
            core = one.core_id("event", event["id"])
            assert one.v3_id("event", core) == event["id"]
            assert one.catalog.get("event", core)["name"] == event["name"]  # type: ignore[index]
    ids = [e["id"] for pid in one.product_ids() for e in one.records("events", pid)]
    assert len(ids) == len(set(ids))
    with pytest.raises(KeyError):
        one.core_id("event", 1)


def test_published_and_airbyte_field_sets(
    make_v3: Callable[..., EmulatorV3], http: requests.Session
) -> None:
    published = make_v3(small_catalog(), live_fields=False)
    product = get(http, f"{published.base_url}/products")["data"][0]
    assert set(product) == {"id", "account_id", "name", "timezone"}
    event = get(http, f"{published.base_url}/products/{product['id']}/events")["data"][0]
    assert list(event) == ["id", "product_id", "name", "visible", "total", "first_used_at",
                           "last_used_at", "first_sent_at", "last_sent_at"]
    report = get(http, f"{published.base_url}/products/{product['id']}/reports")["data"][0]
    assert list(report) == ["id", "product_id", "name", "report_type"]
    airbyte = make_v3(small_catalog(), usage=False, extra_fields={"events": {"beta": 1}})
    pid = airbyte.product_ids()[0]
    event = get(http, f"{airbyte.base_url}/products/{pid}/events")["data"][0]
    assert set(event) == {"id", "index", "name", "product_id", "property_indices", "visible",
                          "beta"}
    assert not USAGE_FIELDS & set().union(*airbyte.records("properties", pid))


def test_catalog_with_integer_ids_keeps_them(make_v3: Callable[..., EmulatorV3]) -> None:
    catalog = Catalog({
        "product": {"123": {"id": 123, "account_id": 456, "name": "Your Product",
                            "timezone": "US/Pacific"}},
        "event": {"6789": {"id": 6789, "product_id": 123, "name": "Visited site",
                           "visible": True, "index": 4}},
    })
    emu = make_v3(catalog, live_fields=False)
    assert emu.records("products") == [
        {"id": 123, "account_id": 456, "name": "Your Product", "timezone": "US/Pacific"}]
    assert emu.records("events", 123) == [
        {"id": 6789, "product_id": 123, "name": "Visited site", "visible": True}]


# ----------------------------------------------------------------- envelopes


@pytest.mark.parametrize(
    ("envelope", "keys"),
    [
        ("data", {"products": "data", "reports": "data", "events": "data", "properties": "data"}),
        ("resource", {"products": "products", "reports": "reports", "events": "events",
                      "properties": "properties"}),
        ("events", {"products": "products", "reports": "reports", "events": "events",
                    "properties": "events"}),
        ("published", {"products": "data", "reports": "reports", "events": "events",
                       "properties": "events"}),
    ],
)
def test_every_envelope_form(
    make_v3: Callable[..., EmulatorV3], http: requests.Session, envelope: str,
    keys: dict[str, str],
) -> None:
    emu = make_v3(small_catalog(), envelope=envelope)
    body = get(http, f"{emu.base_url}/products")
    assert list(body) == [keys["products"]] and len(body[keys["products"]]) == 2
    pid = body[keys["products"]][0]["id"]
    for resource in CHILDREN:
        body = get(http, f"{emu.base_url}/products/{pid}/{resource}")
        assert list(body) == [keys[resource]]
        assert body[keys[resource]] == emu.records(resource, pid) != []


def test_envelope_mapping_can_be_ambiguous_empty_or_unknown(
    make_v3: Callable[..., EmulatorV3], http: requests.Session
) -> None:
    emu = make_v3(small_catalog(),
                  envelope={"products": ("data", "products"), "events": (), "reports": "items"})
    body = get(http, f"{emu.base_url}/products")
    assert set(body) == {"data", "products"} and body["data"] == body["products"]
    pid = body["data"][0]["id"]
    assert get(http, f"{emu.base_url}/products/{pid}/events") == {}
    assert list(get(http, f"{emu.base_url}/products/{pid}/reports")) == ["items"]
    assert list(get(http, f"{emu.base_url}/products/{pid}/properties")) == ["data"]
    with pytest.raises(ValueError, match="unknown envelope"):
        EmulatorV3(small_catalog(), envelope="nope")
    with pytest.raises(ValueError, match="unknown resources"):
        EmulatorV3(small_catalog(), envelope={"metrics": "data"})


# --------------------------------------------------------------- credentials


def test_both_credential_forms_and_refusals(make_v3: Callable[..., EmulatorV3]) -> None:
    emu = make_v3(small_catalog())
    url = f"{emu.base_url}/products"

    def status(auth: Any = None, headers: dict[str, str] | None = None) -> int:
        response = requests.get(url, auth=auth, headers=headers, timeout=10)
        if response.status_code == 401:
            assert response.json() == {"status": 401, "messages": ["Unauthenticated."]}
        return response.status_code

    assert status((USERNAME, PASSWORD)) == 200
    assert status((API_KEY, "")) == 200
    assert status((API_KEY, "x")) == 401  # the key form has an empty password
    assert status((USERNAME, "wrong")) == 401
    assert status((USERNAME, "")) == 401
    assert status((PASSWORD, USERNAME)) == 401
    assert status() == 401
    assert status(headers={"Authorization": f"Bearer {API_KEY}"}) == 401
    assert status(headers={"Authorization": "Basic !!not base64!!"}) == 401
    assert status(headers={"Authorization": "Basic ZGVtby1hcGkta2V5"}) == 401  # no colon
    emu.api_key = None
    assert status((API_KEY, "")) == 401
    assert status((USERNAME, PASSWORD)) == 200
    other = make_v3(small_catalog(), username=None, api_key="k2")
    assert requests.get(f"{other.base_url}/products", auth=(USERNAME, PASSWORD),
                        timeout=10).status_code == 401
    assert requests.get(f"{other.base_url}/products", auth=("k2", ""),
                        timeout=10).status_code == 200


# -------------------------------------------------------------------- paging


def test_paging_across_pages_with_a_short_last_page(
    make_v3: Callable[..., EmulatorV3], http: requests.Session
) -> None:
    emu = make_v3(small_catalog(events=23))
    pid = emu.product_ids()[0]
    url = f"{emu.base_url}/products/{pid}/events"
    sizes = [len(get(http, url, limit=10, offset=o)["data"]) for o in (0, 10, 20, 30)]
    assert sizes == [10, 10, 3, 0]
    assert walk(http, url, 10) == emu.records("events", pid)
    assert walk(http, url, 23) == emu.records("events", pid)  # a full page, then an empty one
    assert len(get(http, url)["data"]) == 23  # default limit 50
    many = make_v3(small_catalog(events=120))
    first = get(http, f"{many.base_url}/products/{pid}/events")["data"]
    assert len(first) == 50 and first == many.records("events", pid)[:50]
    assert get(http, url, limit=5, offset=21, sort="name", q="x")["data"] == \
        emu.records("events", pid)[21:23]  # unknown parameters are ignored


def test_bad_paging_parameters_and_unknown_paths(
    make_v3: Callable[..., EmulatorV3], http: requests.Session
) -> None:
    emu = make_v3(small_catalog())
    pid = emu.product_ids()[0]
    url = f"{emu.base_url}/products/{pid}/events"
    for params in ({"limit": "0"}, {"limit": "-1"}, {"offset": "-5"}, {"limit": "ten"},
                   {"offset": "1.5"}):
        response = http.get(url, params=params, timeout=10)
        assert (response.status_code, response.content) == (400, b""), params
    for path in (f"/products/{pid}", f"/products/{pid}/metrics", "/products/99999/events",
                 "/products/abc/events", "/accounts", "", "/products/1/events/x"):
        assert get(http, emu.base_url + path, 404) == {"status": 404, "messages": ["Not Found."]}
    assert http.post(f"{emu.base_url}/products", timeout=10).status_code == 405


def test_silent_limit_cap(make_v3: Callable[..., EmulatorV3], http: requests.Session) -> None:
    emu = make_v3(small_catalog(events=23), max_limit=7)
    pid = emu.product_ids()[0]
    url = f"{emu.base_url}/products/{pid}/events"
    body = get(http, url, limit=100)
    assert list(body) == ["data"] and len(body["data"]) == 7  # and nothing says so
    assert len(get(http, url, limit=5)["data"]) == 5
    assert len(get(http, url)["data"]) == 7  # the default limit of 50 is capped too
    # A client that stops on a page shorter than it asked for ends too early...
    assert len(walk(http, url, 100)) == 7
    # ...one that pages on with offset += len(page) reaches every record.
    out: list[Any] = []
    while page := get(http, url, limit=100, offset=len(out))["data"]:
        out += page
    assert out == emu.records("events", pid)


# ---------------------------------------------------------------- rate limit


@pytest.mark.parametrize(
    ("form", "status", "retry_after"),
    [("429-retry-after", 429, "50"), ("429", 429, None), ("503", 503, None),
     ("503-retry-after", 503, "50")],
)
def test_rate_limit_fixed_window(
    make_v3: Callable[..., EmulatorV3], http: requests.Session, form: str, status: int,
    retry_after: str | None,
) -> None:
    clock = FakeClock(600.0)
    emu = make_v3(small_catalog(), rate_per_minute=15, over_limit=form, clock=clock)
    url = f"{emu.base_url}/products"
    for _ in range(15):
        clock.now += 0.5
        assert http.get(url, timeout=10).status_code == 200
    clock.now = 610.2
    refused = http.get(url, timeout=10)
    assert refused.status_code == status
    assert refused.headers.get("Retry-After") == retry_after
    if status == 429:
        assert refused.json() == {"status": 429, "messages": ["Too Many Requests."]}
    else:
        assert refused.headers["Content-Type"].startswith("text/html") and b"503" in refused.content
    assert http.get(url, timeout=10).status_code == status  # refusals do not open a window
    assert requests.get(url, timeout=10).status_code == 401  # still checks credentials first
    clock.now = 659.9
    assert http.get(url, timeout=10).status_code == status
    clock.now = 660.0  # the next minute: a fresh window
    codes = [http.get(url, timeout=10).status_code for _ in range(16)]
    assert codes == [200] * 15 + [status]
    assert emu.count(path="/v3/products", status=200) == 30
    assert emu.count(status=status) == 4 and emu.limiter.refused == 4


def test_rate_limit_is_shared_settable_and_can_be_off(
    make_v3: Callable[..., EmulatorV3], http: requests.Session
) -> None:
    clock = FakeClock()
    emu = make_v3(small_catalog(), rate_per_minute=3, clock=clock)
    pid = emu.product_ids()[0]
    urls = [f"{emu.base_url}/products", f"{emu.base_url}/products/{pid}/events",
            f"{emu.base_url}/products/{pid}/reports"]
    assert [http.get(u, timeout=10).status_code for u in urls] == [200, 200, 200]
    key = requests.get(urls[0], auth=(API_KEY, ""), timeout=10)
    assert key.status_code == 429 and key.headers["Retry-After"] == "60"
    emu.rate_per_minute = None
    assert [http.get(urls[0], timeout=10).status_code for _ in range(20)] == [200] * 20
    assert EmulatorV3(small_catalog()).rate_per_minute == 15  # the published default
    with pytest.raises(ValueError):
        EmulatorV3(small_catalog(), over_limit="418")


# ----------------------------------------------------------- 403, faults, log


def test_forbidden_product_is_listed_but_refused(
    make_v3: Callable[..., EmulatorV3], http: requests.Session
) -> None:
    catalog = small_catalog()
    probe = EmulatorV3(catalog)
    blocked, open_ = probe.product_ids()
    emu = make_v3(catalog, forbidden_products={blocked})
    assert [p["id"] for p in get(http, f"{emu.base_url}/products")["data"]] == [blocked, open_]
    for resource in CHILDREN:
        body = get(http, f"{emu.base_url}/products/{blocked}/{resource}", 403)
        assert body == {"status": 403, "messages": ["You are not authorized to access this page."]}
        get(http, f"{emu.base_url}/products/{open_}/{resource}")
    emu.allow(blocked)
    emu.forbid("prod-b")  # a Core id works too
    get(http, f"{emu.base_url}/products/{blocked}/events")
    get(http, f"{emu.base_url}/products/{open_}/events", 403)
    assert emu.count(status=403) == 4


def test_injected_faults_and_request_log(
    make_v3: Callable[..., EmulatorV3], http: requests.Session
) -> None:
    emu = make_v3(small_catalog())
    pid = emu.product_ids()[0]
    emu.inject("/v3/products/*", status=503, times=2, retry_after=7)
    url = f"{emu.base_url}/products/{pid}/events"
    first = http.get(url, timeout=10)
    assert first.status_code == 503 and first.headers["Retry-After"] == "7"
    assert http.get(url, timeout=10).status_code == 503
    assert http.get(url, params={"limit": 5}, timeout=10).status_code == 200
    assert emu.count() == 3 and emu.count(path=f"/v3/products/{pid}/events", status=503) == 2
    last = emu.requests[-1]
    assert (last.method, last.query, last.status) == ("GET", "limit=5", 200)
    assert last.authorization is not None and last.authorization.startswith("Basic ")
    emu.reset_stats()
    assert emu.count() == 0


# -------------------------------------------------------------- live changes


def test_live_changes_keep_ids_right(
    make_v3: Callable[..., EmulatorV3], http: requests.Session
) -> None:
    emu = make_v3(small_catalog(events=4))
    catalog = emu.catalog
    pid = emu.v3_id("product", "prod-a")
    url = f"{emu.base_url}/products/{pid}/events"
    before = {e["name"]: e for e in get(http, url)["data"]}
    top = max(e["id"] for p in emu.product_ids() for e in emu.records("events", p))

    catalog.rename("event", "ev-0", "renamed")
    catalog.set_field("event", "ev-1", "is_visible", False)  # hide
    catalog.remove("event", "ev-2")
    new_ev1 = catalog.recreate("event", "ev-3")
    added = catalog.add("event", {"product_id": "prod-a", "name": "brand new",
                                  "is_visible": True})
    after = {e["name"]: e for e in get(http, url)["data"]}

    assert after["renamed"]["id"] == before["event 0"]["id"]
    assert after["event 1"]["id"] == before["event 1"]["id"]
    assert after["event 1"]["visible"] is False and before["event 1"]["visible"] is True
    assert "event 2" not in after
    assert after["event 3"]["id"] == emu.v3_id("event", new_ev1) == top + 1
    assert after["brand new"]["id"] == emu.v3_id("event", added) == top + 2
    assert before["event 3"]["id"] not in {e["id"] for e in after.values()}
    assert list(after) == ["renamed", "event 1", "event 3", "brand new"]

    # A product re-created: a new id, and the old one is gone (its children, orphans now,
    # are served nowhere).
    new_pid = emu.v3_id("product", catalog.recreate("product", "prod-a"))
    assert new_pid > pid
    get(http, url, 404)
    assert get(http, f"{emu.base_url}/products/{new_pid}/events")["data"] == []
    assert emu.product_ids() == [emu.v3_id("product", "prod-b"), new_pid]


def test_usage_only_churn_moves_nothing_else(
    make_v3: Callable[..., EmulatorV3], http: requests.Session
) -> None:
    emu = make_v3(small_catalog(events=6))
    plain = make_v3(emu.catalog, usage=False)
    pid = emu.product_ids()[0]
    before = get(http, f"{emu.base_url}/products/{pid}/events")["data"]
    plain_before = http.get(f"{plain.base_url}/products/{pid}/events", timeout=10).content
    assert emu.catalog.touch_usage(seed=1) > 0
    after = get(http, f"{emu.base_url}/products/{pid}/events")["data"]

    def strip(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k not in USAGE_FIELDS} for r in records]

    assert after != before and strip(after) == strip(before)
    assert http.get(f"{plain.base_url}/products/{pid}/events", timeout=10).content == plain_before
