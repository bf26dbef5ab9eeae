"""The emulator's faults: scripted statuses, cut bodies, stalls, redirects, actions, random."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
import requests

from kmsnap.emulator import Catalog, Emulator

TOKEN = "demo-token"
Make = Callable[..., Emulator]


def event_catalog(n: int) -> Catalog:
    catalog = Catalog()
    account = catalog.add("account", {"name": "A"})
    product = catalog.add("product", {"account_id": account, "name": "P"})
    for i in range(n):
        catalog.add("event", {"product_id": product, "name": f"e{i}"})
    return catalog


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        yield session


def test_status_on_one_page_a_bounded_number_of_times(make_emulator: Make,
                                                      http: requests.Session) -> None:
    emu = make_emulator(event_catalog(250))
    fault = emu.inject("/core/events", offset=100, status=503, times=2)
    url = f"{emu.base_url}/events?limit=100"
    assert http.get(url, timeout=10).status_code == 200  # offset 0: not matched
    for _ in range(2):
        response = http.get(url + "&offset=100", timeout=10)
        assert response.status_code == 503
        assert response.headers["Content-Type"].startswith("text/html")
        assert "<html>" in response.text
    assert http.get(url + "&offset=100", timeout=10).status_code == 200
    assert fault.hits == 2 and fault.exhausted
    assert emu.request_counts[("/core/events", 503)] == 2
    assert emu.request_counts[("/core/events", 200)] == 2


@pytest.mark.parametrize("retry_after", ["2", "Wed, 21 Oct 2015 07:28:00 GMT", 0])
def test_429_with_retry_after(make_emulator: Make, http: requests.Session,
                              retry_after: str | int) -> None:
    emu = make_emulator(event_catalog(3))
    emu.inject("/core", status=429, retry_after=retry_after)
    response = http.get(emu.base_url, timeout=10)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == str(retry_after)
    assert response.json()["error"]["status"] == 429
    assert http.get(emu.base_url, timeout=10).status_code == 200


def test_custom_body_and_every_time(make_emulator: Make, http: requests.Session) -> None:
    emu = make_emulator(event_catalog(3))
    emu.inject("/core/products/*", status=500, body="<html>boom</html>", times=None)
    product = emu.catalog.ids("product")[0]
    for path in (f"/products/{product}", f"/products/{product}/events"):
        for _ in range(2):
            response = http.get(emu.base_url + path, timeout=10)
            assert (response.status_code, response.text) == (500, "<html>boom</html>")
    emu.clear_faults()
    assert http.get(f"{emu.base_url}/products/{product}", timeout=10).status_code == 200


def test_cut_body_breaks_the_read_then_recovers(make_emulator: Make,
                                               http: requests.Session) -> None:
    emu = make_emulator(event_catalog(50))
    emu.inject("/core/events", offset=0, cut_body=True)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        http.get(f"{emu.base_url}/events?limit=50", timeout=10)
    response = http.get(f"{emu.base_url}/events?limit=50", timeout=10)
    assert len(response.json()["data"]) == 50


def test_cut_body_with_raw_socket_gets_fewer_bytes_than_announced(make_emulator: Make) -> None:
    emu = make_emulator(event_catalog(20))
    emu.inject("/core/events", cut_body=True)
    with requests.get(f"{emu.base_url}/events", headers={"Authorization": f"Bearer {TOKEN}"},
                      stream=True, timeout=10) as response:
        announced = int(response.headers["Content-Length"])
        received = b""
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            for chunk in response.iter_content(1024):
                received += chunk
    assert 0 < len(received) < announced


def test_stall_causes_read_timeout_and_stop_is_not_blocked(make_emulator: Make) -> None:
    emu = make_emulator(event_catalog(3))
    emu.inject("/core/events", stall_seconds=30)
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {TOKEN}"
        with pytest.raises(requests.exceptions.ReadTimeout):
            http.get(f"{emu.base_url}/events", timeout=0.3)
    started = time.monotonic()
    emu.stop()
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("status", [None, 302, 307])
def test_redirect(make_emulator: Make, http: requests.Session, status: int | None) -> None:
    emu = make_emulator(event_catalog(3))
    emu.inject("/core/old", redirect_to=f"{emu.base_url}/events", status=status)
    response = http.get(f"{emu.base_url}/old", timeout=10, allow_redirects=False)
    assert response.status_code == (status or 307)
    assert response.headers["Location"] == f"{emu.base_url}/events"


def test_redirect_needs_3xx(make_emulator: Make) -> None:
    emu = make_emulator(event_catalog(1))
    with pytest.raises(ValueError):
        emu.inject("/core", redirect_to="/x", status=200)


def test_action_changes_the_catalog_mid_crawl(make_emulator: Make,
                                              http: requests.Session) -> None:
    emu = make_emulator(event_catalog(30))
    first = emu.catalog.ids("event")[0]
    emu.inject("/core/events", offset=10, action=lambda: emu.catalog.remove("event", first))
    page1 = http.get(f"{emu.base_url}/events?limit=10", timeout=10).json()
    page2 = http.get(f"{emu.base_url}/events?limit=10&offset=10", timeout=10).json()
    assert page1["pagination"]["total"] == 30
    assert page2["pagination"]["total"] == 29  # the action ran before this page was answered
    assert page2["data"][0]["name"] == "e11"


def test_latency(make_emulator: Make, http: requests.Session) -> None:
    emu = make_emulator(event_catalog(1), latency_ms=150)
    started = time.monotonic()
    assert http.get(emu.base_url, timeout=10).status_code == 200
    assert time.monotonic() - started >= 0.15


def test_random_faults_draw_every_kind(make_emulator: Make) -> None:
    emu = make_emulator(event_catalog(40), fault_rate=0.5, seed=4)
    outcomes: Counter[str] = Counter()
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {TOKEN}"
        for _ in range(120):
            try:
                response = http.get(f"{emu.base_url}/events", timeout=10)
            except requests.exceptions.ChunkedEncodingError:
                outcomes["cut"] += 1
                continue
            outcomes[str(response.status_code)] += 1
            if response.status_code == 429:
                assert response.headers["Retry-After"]
            elif response.status_code >= 500:
                assert response.text.startswith("<html>")
    assert set(outcomes) == {"200", "429", "500", "503", "cut"}
    assert 30 < outcomes["200"] < 90


def test_random_faults_are_reproducible(make_emulator: Make) -> None:
    statuses = []
    for _ in range(2):
        emu = make_emulator(event_catalog(1), fault_rate=0.3, seed=9)
        with requests.Session() as http:
            http.headers["Authorization"] = f"Bearer {TOKEN}"
            run = []
            for _ in range(30):
                try:
                    run.append(http.get(emu.base_url, timeout=10).status_code)
                except requests.exceptions.ChunkedEncodingError:
                    run.append(-1)
        statuses.append(run)
    assert statuses[0] == statuses[1]


def test_max_in_flight_counts_concurrent_requests(make_emulator: Make) -> None:
    emu = make_emulator(event_catalog(1), latency_ms=200)
    barrier = threading.Barrier(4)

    def fetch() -> None:
        barrier.wait()
        requests.get(emu.base_url, headers={"Authorization": f"Bearer {TOKEN}"},
                     timeout=10).close()

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert emu.max_in_flight >= 2
    assert emu.count(path="/core", status=200) == 4
    assert emu.errors == []
