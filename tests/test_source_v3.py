"""The REST API v3 source against the v3 emulator over real loopback HTTP: envelopes, paging,
the silent limit cap, pacing on a simulated clock, 403 per product, credentials."""

from __future__ import annotations

import base64
import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_emulator_v3 import small_catalog

from kmsnap.emulator import Emulator
from kmsnap.emulator.v3 import API_KEY, PASSWORD, USERNAME, EmulatorV3
from kmsnap.errors import ApiError, AuthError, IncompleteError, TokenError
from kmsnap.model import USAGE_FIELDS
from kmsnap.snapshot.store import load_snapshot, save_snapshot
from kmsnap.sources import Source, get_source, source_for_url, source_names
from kmsnap.sources.core.crawler import PullOptions
from kmsnap.sources.pacing import Pacer
from kmsnap.sources.v3 import (
    Credentials,
    V3PullOptions,
    V3PullResult,
    load_credentials,
    pull_v3,
    read_credentials_file,
)

CHILDREN = ("reports", "events", "properties")
LOGIN = Credentials(USERNAME, PASSWORD)


class SimClock:
    """Simulated time: a sleep moves it to (this thread's last reading + the sleep), so
    workers waiting for the same moment wait once; the emulator reads ``peek``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0.0
        self._seen = threading.local()

    def peek(self) -> float:
        return self.now

    def monotonic(self) -> float:
        with self._lock:
            self._seen.at = self.now
            return self.now

    def time(self) -> float:
        return 1.7e9 + self.monotonic()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            target = getattr(self._seen, "at", self.now) + max(seconds, 0.0)
            self.now = max(self.now, target)


class ScaledClock:
    """Real time run ``scale`` times faster: every thread sees it flow, none jumps it."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self._start = time.monotonic()
        self._stop = threading.Event()

    def monotonic(self) -> float:
        return (time.monotonic() - self._start) * self.scale

    def time(self) -> float:
        return 1.7e9 + self.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stop.wait(seconds / self.scale)


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("KMSNAP_", "KISSMETRICS_", "GITHUB_")) or name.lower().endswith(
                "_proxy") or name in ("NETRC", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def make_v3() -> Iterator[Callable[..., EmulatorV3]]:
    """``make_v3(catalog=None, **kwargs)``: a started ``EmulatorV3`` (no rate limit unless
    given), stopped at teardown."""
    made: list[EmulatorV3] = []

    def make(catalog: Any = None, **kwargs: Any) -> EmulatorV3:
        kwargs.setdefault("rate_per_minute", None)
        emu = EmulatorV3(catalog, **kwargs)
        made.append(emu)
        return emu.start()

    yield make
    for emu in made:
        emu.stop()


def pull(emu: EmulatorV3, clock: Any = None, **kwargs: Any) -> V3PullResult:
    kwargs.setdefault("credentials", LOGIN)
    kwargs.setdefault("per_minute", None)
    kwargs.setdefault("deadline", None)
    return pull_v3(V3PullOptions(api=emu.base_url, **kwargs), clock=clock or SimClock())


def served(emu: EmulatorV3) -> dict[str, dict[str, dict[str, Any]]]:
    """What a complete pull must hold, by kind and id, usage fields left out."""
    out: dict[str, dict[str, dict[str, Any]]] = {"product": {}, "report": {}, "event": {},
                                                 "property": {}}
    for product in emu.records("products"):
        out["product"][str(product["id"])] = product
        for resource, kind in zip(CHILDREN, ("report", "event", "property"), strict=True):
            for record in emu.records(resource, product["id"]):
                out[kind][str(record["id"])] = {
                    k: v for k, v in record.items() if k not in USAGE_FIELDS}
    return out


def assert_complete(result: V3PullResult, emu: EmulatorV3) -> None:
    expected = served(emu)
    for kind, records in expected.items():
        assert result.snapshot.of(kind) == records, kind
    accounts = {str(p["account_id"]) for p in emu.records("products")}
    assert set(result.snapshot.of("account")) == accounts
    assert all(set(a) == {"id"} for a in result.snapshot.of("account").values())
    assert "metric" not in result.snapshot.entities


# ----------------------------------------------------------------------- shapes


@pytest.mark.parametrize("envelope", ["data", "resource", "events", "published"])
def test_every_envelope_form(make_v3: Callable[..., EmulatorV3], envelope: str) -> None:
    emu = make_v3(size=120, envelope=envelope, extra_fields={"events": {"beta_flag": 1}})
    result = pull(emu)
    assert_complete(result, emu)
    assert all(e["beta_flag"] == 1 for e in result.snapshot.of("event").values())  # kept
    assert result.requests == emu.count()


@pytest.mark.parametrize(("envelope", "why"), [
    ({"properties": ("data", "events")}, "more than one of"),
    ({"reports": ()}, "none of"),
    ({"events": "items"}, "none of"),
    ({"products": "events"}, "none of"),
])
def test_an_envelope_no_client_reads_is_an_error_naming_the_url(
    make_v3: Callable[..., EmulatorV3], envelope: dict[str, Any], why: str
) -> None:
    emu = make_v3(small_catalog(), envelope=envelope)
    with pytest.raises(ApiError) as info:
        pull(emu)
    message = str(info.value)
    assert why in message and emu.base_url in message and "\n" not in message


def test_records_not_objects_or_without_an_id_are_refused(
    make_v3: Callable[..., EmulatorV3]
) -> None:
    emu = make_v3(small_catalog())
    emu.inject("/v3/products", status=200, body=json.dumps({"data": [{"name": "x"}]}),
               content_type="application/json")
    with pytest.raises(ApiError, match="no usable id"):
        pull(emu)


def test_several_pages_per_collection(make_v3: Callable[..., EmulatorV3]) -> None:
    emu = make_v3(small_catalog(events=23))
    result = pull(emu, page_size=4, concurrency=1)
    assert_complete(result, emu)
    pid = emu.product_ids()[0]
    assert emu.count(f"/v3/products/{pid}/events") == 6  # 4+4+4+4+4+3: stops on the short page
    # Checked for a cap: the 2 products, then the 3 reports (no page of 3 seen yet); not
    # the events' last 3 or anything after: pages of 4 were served, so no cap is below 4.
    assert result.cap_checks == 2 and result.page_cap is None
    assert result.requests == emu.count() == 15


def test_usage_fields_only_with_stats_and_integer_ids(make_v3: Callable[..., EmulatorV3]) -> None:
    emu = make_v3(small_catalog())
    plain, stats = pull(emu), pull(emu, with_stats=True)
    assert not plain.snapshot.stats
    assert not any(USAGE_FIELDS & set(r) for r in plain.snapshot.of("event").values())
    totals = [s["total"] for s in stats.snapshot.stats["event"].values() if "total" in s]
    assert totals and all(type(t) is int for t in totals)
    for kind in ("product", "report", "event", "property"):
        assert all(type(r["id"]) is int for r in plain.snapshot.of(kind).values())


# ----------------------------------------------------------------- the limit cap


def test_a_silent_limit_cap_is_not_the_end(make_v3: Callable[..., EmulatorV3]) -> None:
    emu = make_v3(small_catalog(events=23), max_limit=7)
    result = pull(emu)
    assert_complete(result, emu)
    assert result.page_cap == 7 and any("at most 7 records" in w for w in result.warnings)
    collections = 1 + 3 * len(emu.product_ids())
    assert result.cap_checks <= collections
    paths = ["/v3/products"] + [f"/v3/products/{p}/{r}" for p in emu.product_ids()
                                for r in CHILDREN]
    for path in paths:  # the pages the cap needs, and at most one more
        assert emu.count(path) <= math.floor(_size(emu, path) / 7) + 2, path
    assert result.requests == emu.count() <= sum(
        math.floor(_size(emu, p) / 7) + 2 for p in paths)


def _size(emu: EmulatorV3, path: str) -> int:
    parts = path.split("/")
    if len(parts) == 3:
        return len(emu.records("products"))
    return len(emu.records(parts[4], int(parts[3])))


def test_without_a_cap_a_small_collection_costs_at_most_one_extra_request(
    make_v3: Callable[..., EmulatorV3]
) -> None:
    emu = make_v3(size=120)
    result = pull(emu)
    assert_complete(result, emu)
    assert result.page_cap is None
    assert result.requests == result.least_requests + result.cap_checks
    assert result.cap_checks <= result.least_requests
    for path in ["/v3/products"] + [f"/v3/products/{p}/{r}" for p in emu.product_ids()
                                    for r in CHILDREN]:
        assert emu.count(path) <= 2, path


# -------------------------------------------------------------------- pacing


def test_pacing_holds_15_a_minute_with_no_429(make_v3: Callable[..., EmulatorV3]) -> None:
    clock = SimClock()
    emu = make_v3(rate_per_minute=15, clock=clock.peek)  # the default catalog
    # One worker: on this clock a sleeping worker moves time while another's request is in
    # flight, which a real clock never does (the shared-budget test below covers several).
    result = pull(emu, clock=clock, per_minute=15, concurrency=1)
    assert_complete(result, emu)
    assert emu.limiter.refused == 0 and emu.count(status=429) == 0
    # 15 go at once, then 15 every minute (plus the guard): no faster, no slower
    minutes = clock.now / 60
    assert math.ceil(result.requests / 15) - 1 <= minutes <= math.ceil(result.requests / 15) + 1


@pytest.mark.parametrize("form", ["429-retry-after", "429", "503", "503-retry-after"])
def test_pacing_learns_a_lower_limit_and_survives_each_refusal(
    make_v3: Callable[..., EmulatorV3], form: str
) -> None:
    clock = SimClock()
    emu = make_v3(rate_per_minute=10, clock=clock.peek, over_limit=form)
    result = pull(emu, clock=clock, per_minute=15, concurrency=1)
    assert_complete(result, emu)
    assert emu.limiter.refused == 1  # one refusal teaches the limit; none after it
    assert result.requests == emu.count()
    assert clock.now / 60 <= math.ceil(result.requests / 10) + 1.5


def test_the_learned_budget_is_shared_by_every_worker() -> None:
    clock = SimClock()
    pacer = Pacer(clock, per_minute=15)
    starts = [pacer.acquire() for _ in range(45)]
    assert [s for s in starts if s < 60] == [0.0] * 15  # the budget, then the next window
    assert all(s >= 62.0 for s in starts[15:30]) and all(s >= 124.0 for s in starts[30:])
    for sent in starts[-5:]:
        pacer.on_success(sent)
    pacer.on_throttle(30.0, starts[-1], 0)
    pacer.acquire()
    assert pacer.learned == 5 and pacer.budget == 5


def test_workers_on_a_flowing_clock_get_no_429(make_v3: Callable[..., EmulatorV3]) -> None:
    clock = ScaledClock(100.0)  # 61 s of budget window in 0.6 s
    emu = make_v3(small_catalog(), rate_per_minute=15, clock=clock.monotonic)
    result = pull(emu, clock=clock, per_minute=15, concurrency=4, timeout=60.0, page_size=2)
    assert_complete(result, emu)
    assert emu.limiter.refused == 0 and result.requests > 15  # more than one window


# --------------------------------------------------------------- 403, paging faults


def test_a_product_answering_403_fails_the_pull_by_name_unless_excluded(
    make_v3: Callable[..., EmulatorV3]
) -> None:
    emu = make_v3(small_catalog())
    app = next(p for p in emu.records("products") if p["name"] == "App")
    emu.forbid(app["id"])
    with pytest.raises(AuthError) as info:
        pull(emu)
    message = str(info.value)
    assert "'App'" in message and str(app["id"]) in message and "excluded" in message
    assert "KISSMETRICS_USERNAME" in message and "\n" not in message
    for exclude in ({"App"}, {str(app["id"])}):
        result = pull(emu, exclude_products=frozenset(exclude))
        assert str(app["id"]) not in result.snapshot.of("product")
        assert any("'App'" in w and "excluded" in w for w in result.warnings)
        assert result.snapshot.of("event") and all(
            e["product_id"] != app["id"] for e in result.snapshot.of("event").values())


def test_duplicates_are_dropped_by_id(make_v3: Callable[..., EmulatorV3]) -> None:
    emu = make_v3(small_catalog(events=23))
    pid = emu.product_ids()[0]
    events = emu.records("events", pid)
    page = [events[0], events[0], events[1], events[2]]
    emu.inject(f"/v3/products/{pid}/events", offset=0, status=200,
               body=json.dumps({"data": page}), content_type="application/json")
    result = pull(emu, page_size=4)
    got = [e for e in result.snapshot.of("event").values() if e["product_id"] == pid]
    assert len(got) == len({e["id"] for e in got}) == 22  # events[3] was not on the page
    assert events[3]["id"] not in {e["id"] for e in got}


def test_a_full_page_adding_no_new_id_is_an_error(make_v3: Callable[..., EmulatorV3]) -> None:
    emu = make_v3(small_catalog(events=23))
    pid = emu.product_ids()[0]
    first = emu.records("events", pid)[:4]
    emu.inject(f"/v3/products/{pid}/events", offset=4, status=200, times=None,
               body=json.dumps({"data": first}), content_type="application/json")
    with pytest.raises(IncompleteError) as info:
        pull(emu, page_size=4)
    assert f"/v3/products/{pid}/events" in str(info.value) and "offset" in str(info.value)


# -------------------------------------------------------------------- credentials


def test_both_credential_forms_pull(make_v3: Callable[..., EmulatorV3]) -> None:
    emu = make_v3(small_catalog())
    assert pull(emu, credentials=Credentials(API_KEY)).snapshot.of("event")
    key = base64.b64encode(f"{API_KEY}:".encode()).decode()
    assert {r.authorization for r in emu.requests} == {f"Basic {key}"}


def test_credentials_never_reach_an_error(make_v3: Callable[..., EmulatorV3]) -> None:
    user, password = "ops@example.com", "s3cret-Passw0rd"
    emu = make_v3(small_catalog(), username=user, password=password)
    header = base64.b64encode(f"{user}:{password}".encode()).decode()
    secrets = (user, password, header, header.rstrip("="))
    with pytest.raises(AuthError) as refused:
        pull(emu, credentials=Credentials(user, "wrong-password"))
    assert "KISSMETRICS_PASSWORD" in str(refused.value)
    assert "wrong-password" not in str(refused.value)
    emu.inject("/v3/products", status=307, redirect_to=f"/v3/{password}/{header}")
    with pytest.raises(ApiError) as info:
        pull(emu, credentials=Credentials(user, password))
    assert "<token>" in str(info.value)
    emu.inject("/v3/products", status=200, body=json.dumps({password: [], header: []}),
               content_type="application/json")
    with pytest.raises(ApiError) as second:
        pull(emu, credentials=Credentials(user, password))
    for error in (refused.value, info.value, second.value):
        assert not any(s in str(error) for s in secrets), str(error)
    assert user not in repr(Credentials(user, password))
    assert password not in repr(V3PullOptions(Credentials(user, password)))


def test_load_credentials_from_the_environment() -> None:
    login = load_credentials({"KISSMETRICS_USERNAME": "u@x", "KISSMETRICS_PASSWORD": "pw"})
    assert (login.username, login.password) == ("u@x", "pw")
    key = load_credentials({"KISSMETRICS_API_KEY": "k-123"})
    assert (key.username, key.password) == ("k-123", "")
    for env, says in [({}, "KISSMETRICS_API_KEY"),
                      ({"KISSMETRICS_USERNAME": "u@x"}, "KISSMETRICS_PASSWORD is not set"),
                      ({"KISSMETRICS_USERNAME": "u", "KISSMETRICS_PASSWORD": "pw-value",
                        "KISSMETRICS_API_KEY": "key-value"}, "both"),
                      ({"KISSMETRICS_API_KEY": "key-value\n"}, "line break")]:
        with pytest.raises(TokenError) as info:
            load_credentials(env)
        message = str(info.value)
        assert says in message and "\n" not in message
        assert "pw-value" not in message and "key-value" not in message


def test_load_credentials_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "km-credentials"
    path.write_text("user@example.com:pass word:with colon\n")
    path.chmod(0o600)
    got = read_credentials_file(path)
    assert (got.username, got.password) == ("user@example.com", "pass word:with colon")
    path.write_text("just-a-key\n")
    assert load_credentials({}, path).password == ""
    path.chmod(0o644)
    with pytest.raises(TokenError, match="readable by others"):
        read_credentials_file(path)
    path.chmod(0o600)
    path.write_text("a:b\nc:d\n")
    with pytest.raises(TokenError, match="exactly one line"):
        read_credentials_file(path)
    path.write_bytes(b"k" * (64 * 1024 + 1))
    with pytest.raises(TokenError, match="64 KiB"):
        read_credentials_file(path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(TokenError, match="not a regular file"):
        read_credentials_file(fifo)
    with pytest.raises(TokenError, match="cannot open"):
        read_credentials_file(tmp_path / "missing")


# ------------------------------------------------------------------ the snapshot


def test_the_saved_snapshot_is_byte_stable_and_keeps_integer_ids(
    make_v3: Callable[..., EmulatorV3], tmp_path: Path
) -> None:
    emu = make_v3(size=150)
    one, two = tmp_path / "one", tmp_path / "two"
    save_snapshot(pull(emu, concurrency=4).snapshot, one)
    save_snapshot(pull(emu, concurrency=2, page_size=9).snapshot, two)
    files = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(two) for p in two.rglob("*") if p.is_file())
    for rel in files:
        assert (one / rel).read_bytes() == (two / rel).read_bytes(), rel
    loaded = load_snapshot(one)
    for kind in ("account", "product", "report", "event", "property"):
        assert loaded.of(kind)
        assert all(type(r["id"]) is int for r in loaded.of(kind).values()), kind
    assert all(type(p["account_id"]) is int for p in loaded.of("product").values())
    assert all(set(a) == {"id"} for a in loaded.of("account").values())


# ------------------------------------------------------------------- the seam


def test_sources_by_name_and_url() -> None:
    assert source_names() == ("core", "v3")
    assert source_for_url("https://query.kissmetrics.io/v3") == "v3"
    assert source_for_url("http://127.0.0.1:9/v3/") == "v3"
    assert source_for_url("https://api.kissmetrics.com/core") == "core"
    v3 = get_source("v3")
    assert isinstance(v3, Source) and v3.default_api == "https://query.kissmetrics.io/v3"
    with pytest.raises(ValueError, match="core, v3"):
        get_source("v4")


def test_the_core_source_adapts_the_core_crawl() -> None:
    with Emulator(size=40) as emu:
        core = get_source("core")
        result = core.pull(PullOptions(api=emu.base_url, token="demo-token"))
        assert core.name == "core" and result.snapshot.of("event")
        assert result.requests == emu.count()
        with pytest.raises(TypeError):
            core.pull(V3PullOptions(LOGIN))
