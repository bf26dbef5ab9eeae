"""The crawl against the emulator: complete and exact, once per entity, under faults and change."""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from test_pull_kit import TOKEN, FakeClock, events_catalog

from kmsnap.emulator import Emulator, generate_catalog
from kmsnap.errors import ApiError, IncompleteError
from kmsnap.sources.core.crawler import ProgressEvent, PullOptions, PullResult, pull_snapshot
from kmsnap.sources.core.hypermedia import content_key, link_url, page_url

MakeEmulator = Callable[..., Emulator]


def pull(emu: Emulator, **options: Any) -> PullResult:
    clock = options.pop("clock", FakeClock())
    progress = options.pop("progress", None)
    return pull_snapshot(PullOptions(api=emu.base_url, token=TOKEN, **options),
                         clock=clock, progress=progress)


def least_requests(emu: Emulator, page: int) -> int:
    """The root plus one request per max-size page of each top-level collection."""
    rels = ["account", "product", "report", "event", "property", "metric"]
    pages = sum(max(1, math.ceil(len(emu.catalog.ids(kind)) / page)) for kind in rels)
    pages += sum(max(1, math.ceil(len(items) / page)) for items in emu.catalog.extra.values())
    return 1 + pages


def test_the_pull_equals_the_catalog(emulator: Emulator) -> None:
    result = pull(emulator)
    assert result.snapshot == emulator.catalog.to_snapshot(emulator.base_url)
    assert result.snapshot.stats["event"]  # usage fields split off into stats
    assert all("total" not in r for r in result.snapshot.of("event").values())
    assert result.warnings == []


def test_each_entity_is_transferred_once(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(generate_catalog(size=600, seed=3), max_page_size=50)
    result = pull(emu)
    assert result.snapshot == emu.catalog.to_snapshot(emu.base_url)
    paths = [r.path for r in emu.requests]
    assert all(p.count("/") <= 2 for p in paths), "no item or product-scoped fetches"
    assert "/core/rels" not in paths
    assert len(paths) == least_requests(emu, 50) == result.requests
    assert all(r.method == "GET" for r in emu.requests)


@pytest.mark.parametrize("count", [0, 1, 10, 11, 95])
def test_completeness_at_page_boundaries(make_emulator: MakeEmulator, count: int) -> None:
    emu = make_emulator(events_catalog(count), max_page_size=10)
    result = pull(emu)
    assert result.snapshot == emu.catalog.to_snapshot(emu.base_url)
    assert len(result.snapshot.of("event")) == count
    event_pages = [r for r in emu.requests if r.path == "/core/events"]
    assert len(event_pages) == max(1, math.ceil(count / 10))


def test_the_server_page_limit_is_trusted(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(events_catalog(95), max_page_size=10)
    pull(emu, page_size=1000)
    offsets = sorted(int(r.query.split("offset=")[1]) for r in emu.requests
                     if r.path == "/core/events")
    assert offsets == list(range(0, 95, 10))


def test_results_are_identical_across_concurrency(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(generate_catalog(size=1500, seed=7, orphans=3, extra=True, impossible=True),
                        max_page_size=25)
    results = [pull(emu, concurrency=n) for n in (1, 3, 8, 16)]
    expected = emu.catalog.to_snapshot(emu.base_url)
    for result in results:
        assert result.snapshot == expected
        assert json.dumps(result.snapshot.entities) == json.dumps(results[0].snapshot.entities)


def test_in_flight_requests_never_exceed_the_concurrency(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(generate_catalog(size=800, seed=2), max_page_size=20, latency_ms=15)
    pull(emu, concurrency=3)
    assert 2 <= emu.max_in_flight <= 3


def test_max_rps_spaces_requests(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(events_catalog(50), max_page_size=10)
    clock = FakeClock()
    result = pull(emu, max_rps=5.0, clock=clock)
    # the root, 5 other collections of one page, 5 event pages: 11 requests at 5 per second
    assert result.requests == 11
    assert clock.now - 1000.0 == pytest.approx(10 / 5.0)


def test_unknown_fields_and_collections_are_kept(make_emulator: MakeEmulator) -> None:
    extra = {"segments": [{"id": "s1", "name": "Buyers", "rules": {"all": [1, 2]}},
                          {"name": "no id", "size": 0}, {"name": "no id", "size": 0}]}
    catalog = events_catalog(5, extra=extra)
    eid = catalog.ids("event")[0]
    catalog.set_field("event", eid, "colour_hint", {"nested": [None, "x"]})
    emu = make_emulator(catalog)
    result = pull(emu)
    assert result.snapshot.of("event")[eid]["colour_hint"] == {"nested": [None, "x"]}
    segments = result.snapshot.of("segments")
    assert segments["s1"] == {"id": "s1", "name": "Buyers", "rules": {"all": [1, 2]}}
    key = content_key({"name": "no id", "size": 0})
    assert segments[key] == {"id": key, "name": "no id", "size": 0}  # keyed by content
    assert segments[f"{key}-2"]["name"] == "no id"
    assert len(segments) == 3
    assert any("segments" in w and "_other" in w for w in result.warnings)


def test_orphans_are_kept_with_a_warning(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(generate_catalog(size=100, seed=1, orphans=4))
    result = pull(emu)
    assert result.snapshot == emu.catalog.to_snapshot(emu.base_url)
    assert any(w.startswith("4 events") for w in result.warnings)


# -- a directory that lacks collections, links elsewhere ----------------------------------


def root_body(emu: Emulator, drop: set[str] = frozenset(), add: list[dict[str, Any]] = ()) -> str:  # type: ignore[assignment]
    base = emu.base_url
    links = [{"rel": rel, "href": f"{base}/{rel}{{?limit,offset}}", "templated": True}
             for rel in ("accounts", "products", "reports", "events", "properties", "metrics")
             if rel not in drop]
    links += [{"rel": "broken", "templated": False, "name": "no href"},
              {"rel": "account", "href": f"{base}/accounts/{{id}}", "templated": True},
              *add]
    return json.dumps({"links": [{"rel": "self", "href": base}],
                       "data": {"name": "KISSmetrics API", "links": links}})


def test_scoped_collections_fill_in_for_missing_top_level_ones(
    make_emulator: MakeEmulator,
) -> None:
    emu = make_emulator(generate_catalog(size=300, seed=5))
    emu.inject("/core", status=200, body=root_body(emu, drop={"products", "events"}),
               content_type="application/json", times=None)
    result = pull(emu)
    assert result.snapshot == emu.catalog.to_snapshot(emu.base_url)
    assert "/core/events" not in {r.path for r in emu.requests}
    assert any(r.path.endswith("/products") for r in emu.requests)  # from the accounts
    assert any(r.path.endswith("/events") for r in emu.requests)  # from the products


def test_links_to_another_origin_are_not_followed_and_named(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(events_catalog(3))
    other = make_emulator(events_catalog(3))
    away = {"rel": "funnels", "href": f"{other.base_url}/events", "templated": False}
    emu.inject("/core", status=200, body=root_body(emu, add=[away]),
               content_type="application/json", times=None)
    result = pull(emu)
    assert result.snapshot == emu.catalog.to_snapshot(emu.base_url)
    assert other.requests == []
    assert [w for w in result.warnings if f"{other.base_url}/events" in w and "funnels" in w]


def test_templates_are_expanded_with_string_values() -> None:
    link = {"rel": "events", "href": "/core/events{?limit,offset}", "templated": True}
    assert link_url(link, "http://h/core", 100) == "http://h/core/events?limit=100&offset=0"
    assert link_url({"href": "/core/accounts/{id}", "templated": True}, "http://h/", 5) is None
    assert link_url({"href": "/core/x{", "templated": False}, "http://h/", 5) is None
    assert link_url({"rel": "nohref"}, "http://h/", 5) is None
    assert page_url("http://h/e?limit=3&offset=9&q=1", 100, 0) == "http://h/e?q=1&limit=100&offset=0"


# -- a server that misbehaves -------------------------------------------------------------


def test_faults_during_a_crawl_are_survived(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(generate_catalog(size=1000, seed=4), max_page_size=20)
    emu.inject("/core/events", offset=40, status=429, retry_after=3, times=2)
    emu.inject("/core/events", offset=60, status=503, times=2)
    emu.inject("/core/properties", offset=20, cut_body=True, times=1)
    emu.inject("/core/metrics", status=500, times=1)
    clock = FakeClock()
    result = pull(emu, clock=clock)
    assert result.snapshot == emu.catalog.to_snapshot(emu.base_url)
    assert 3.0 in clock.sleeps


def test_random_faults_are_survived(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(generate_catalog(size=1000, seed=8), max_page_size=20, fault_rate=0.15,
                        seed=8)
    result = pull(emu)
    assert result.snapshot == emu.catalog.to_snapshot(emu.base_url)


def test_a_page_that_never_recovers_fails_the_pull(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(events_catalog(50), max_page_size=10)
    emu.inject("/core/events", offset=30, status=500, times=None)
    with pytest.raises(ApiError) as info:
        pull(emu)
    assert "offset=30" in str(info.value) and "500" in str(info.value)


def test_an_item_added_during_the_crawl_is_picked_up_by_a_refetch(
    make_emulator: MakeEmulator,
) -> None:
    catalog = events_catalog(50)
    emu = make_emulator(catalog, max_page_size=10)
    product = catalog.ids("product")[0]
    emu.inject("/core/events", offset=30, times=1, action=lambda: catalog.add(
        "event", {"product_id": product, "name": "late arrival"}))
    result = pull(emu, concurrency=1)
    assert len(result.snapshot.of("event")) == 51
    assert result.snapshot == catalog.to_snapshot(emu.base_url)


def test_an_item_removed_during_the_crawl_is_noticed(make_emulator: MakeEmulator) -> None:
    catalog = events_catalog(50)
    emu = make_emulator(catalog, max_page_size=10)
    first = catalog.ids("event")[0]
    emu.inject("/core/events", offset=30, times=1, action=lambda: catalog.remove("event", first))
    result = pull(emu, concurrency=1)
    assert first not in result.snapshot.of("event")
    assert result.snapshot == catalog.to_snapshot(emu.base_url)


def test_a_catalog_that_keeps_moving_fails_as_incomplete(make_emulator: MakeEmulator) -> None:
    catalog = events_catalog(50)
    emu = make_emulator(catalog, max_page_size=10)
    product = catalog.ids("product")[0]
    emu.inject("/core/events", offset=30, times=None, action=lambda: catalog.add(
        "event", {"product_id": product, "name": "another"}))
    with pytest.raises(IncompleteError, match="/core/events"):
        pull(emu)


def test_an_empty_page_before_the_end_fails_as_incomplete(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(events_catalog(50), max_page_size=10)
    empty = {"data": [], "links": [], "pagination": {"limit": 10, "offset": 20, "total": 50}}
    emu.inject("/core/events", offset=20, status=200, body=json.dumps(empty),
               content_type="application/json", times=None)
    with pytest.raises(IncompleteError, match="empty page at offset 20"):
        pull(emu)
    assert emu.count("/core/events") <= 10  # fetched twice at most, then gave up


def fake_events(start: int, count: int) -> list[dict[str, Any]]:
    return [{"id": f"f{i:07d}", "name": f"fake {i}"} for i in range(start, start + count)]


@pytest.mark.parametrize("first", ["empty", "full"])
def test_a_total_the_pages_do_not_back_fails_fast(
    make_emulator: MakeEmulator, first: str
) -> None:
    # The first page claims 200,000 events; the pages after it (or the first one) are empty.
    emu = make_emulator(events_catalog(20), max_page_size=100)
    data = [] if first == "empty" else fake_events(0, 100)
    body = {"data": data, "links": [], "pagination": {"limit": 100, "offset": 0,
                                                      "total": 200_000}}
    emu.inject("/core/events", offset=0, status=200, body=json.dumps(body),
               content_type="application/json", times=None)
    with pytest.raises(IncompleteError, match="also when fetched again") as info:
        pull(emu, concurrency=4)
    assert "pagination.total is 200000" in str(info.value)
    # not the 2,000 pages the total promises (twice): the first empty one ends each attempt,
    # give or take the pages the 4 workers took up while it was being looked at
    assert emu.count("/core/events") <= (2 if first == "empty" else 50)


def test_an_empty_page_is_fetched_again_once_and_then_trusted(
    make_emulator: MakeEmulator,
) -> None:
    emu = make_emulator(events_catalog(50), max_page_size=10)
    empty = {"data": [], "links": [], "pagination": {"limit": 10, "offset": 20, "total": 50}}
    emu.inject("/core/events", offset=20, status=200, body=json.dumps(empty),
               content_type="application/json", times=1)
    result = pull(emu, concurrency=1)
    assert result.snapshot == emu.catalog.to_snapshot(emu.base_url)
    # Up to the empty page (and what the worker took before the cancel landed: a race, so
    # at most the rest of the first pass), then all five pages once more.
    assert 3 + 5 <= emu.count("/core/events") <= 5 + 5


def test_an_absurd_total_is_refused(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(events_catalog(5))
    body = {"data": [], "links": [], "pagination": {"limit": 10, "offset": 0, "total": 10**12}}
    emu.inject("/core/events", status=200, body=json.dumps(body),
               content_type="application/json", times=None)
    with pytest.raises(ApiError, match="implausible"):
        pull(emu)
    assert emu.count("/core/events") == 1


def test_a_cyclic_next_link_is_refused(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(events_catalog(5))
    url = f"{emu.base_url}/events?limit=100&offset=0"
    looping = {"data": [{"id": "x"}], "links": [{"rel": "next", "href": url}],
               "pagination": {"limit": 100, "offset": 0}}
    emu.inject("/core/events", status=200, body=json.dumps(looping),
               content_type="application/json", times=None)
    with pytest.raises(ApiError, match="circle"):
        pull(emu)
    assert emu.count("/core/events") <= 2


def test_next_links_are_walked_when_there_is_no_total(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(events_catalog(0))
    pages = [{"data": [{"id": f"x{i}", "name": str(i)}],
              "links": [{"rel": "next", "href": f"{emu.base_url}/events?page={i + 1}"}]
              if i < 2 else [], "pagination": {"limit": 1}} for i in range(3)]
    for i, page in enumerate(pages):
        emu.inject("/core/events", offset=None if i else 0, status=200, body=json.dumps(page),
                   content_type="application/json", times=1)
    result = pull(emu)
    assert sorted(result.snapshot.of("event")) == ["x0", "x1", "x2"]


def test_progress_reports_pages_and_entities(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(events_catalog(25), max_page_size=10)
    events: list[ProgressEvent] = []
    pull(emu, progress=events.append)
    last = [e for e in events if e.kind == "event"][-1]
    assert (last.pages_done, last.pages_total, last.entities, last.expected) == (3, 3, 25, 25)


def test_ctrl_c_ends_the_pull_at_once_even_during_a_long_pause(
    make_emulator: MakeEmulator,
) -> None:
    emu = make_emulator(events_catalog(100), max_page_size=10)
    emu.inject("/core/events", offset=20, status=429, retry_after=100, times=None)
    main = threading.main_thread().ident
    assert main is not None
    timer = threading.Timer(0.3, signal.pthread_kill, (main, signal.SIGINT))  # a Ctrl-C
    started = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        # the real clock: every worker would pause 100 s if the interrupt did not end it
        pull_snapshot(PullOptions(api=emu.base_url, token=TOKEN, concurrency=2))
    timer.join()
    assert time.monotonic() - started < 5


# -- 429s must not slow the whole pull down -----------------------------------------------


def simulated_seconds(clock: FakeClock) -> float:
    return clock.now - 1000.0


@pytest.mark.parametrize("where", ["root", "first page", "a later page"])
def test_one_early_429_costs_its_pause_not_the_pull(
    make_emulator: MakeEmulator, where: str
) -> None:
    emu = make_emulator(events_catalog(5000))
    if where == "root":
        emu.inject("/core", status=429, retry_after=1)
    else:
        emu.inject("/core/events", offset=0 if where == "first page" else 500, status=429,
                   retry_after=1)
    clock = FakeClock()
    result = pull(emu, clock=clock)
    assert len(result.snapshot.of("event")) == 5000
    # the 1 s pause, and no crawl-long cap from a rate guessed out of one or two requests
    assert simulated_seconds(clock) < 2.0


def test_random_faults_do_not_drag_the_pull_out(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(generate_catalog(size=5000, seed=3), fault_rate=0.2, seed=3)
    clock = FakeClock()
    # One worker: the emulator's faults then fall on the same requests in every run.
    result = pull(emu, clock=clock, concurrency=1)
    assert result.snapshot == emu.catalog.to_snapshot(emu.base_url)
    assert emu.count(status=429) >= 2
    # 1 s per 429 plus the 5xx backoffs: about 5 s here; a cap guessed from the few
    # requests before the first 429 made it 99 s of pacing.
    assert simulated_seconds(clock) < 20.0
