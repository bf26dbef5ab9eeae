"""Answers that are not the API's, against real loopback servers: each one fails the pull with
one line naming the URL, exit 1, and leaves the previous snapshot byte-identical."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import requests
from hostile import send, serve
from test_pull_kit import SECRET, events_catalog

from kmsnap.cli import run
from kmsnap.emulator import Emulator
from kmsnap.errors import ApiError, BoundError
from kmsnap.sources.core import client as api
from kmsnap.sources.core import crawler as crawl
from kmsnap.sources.core.crawler import PullOptions, pull_snapshot
from kmsnap.sources.pacing import SystemClock

MakeEmulator = Callable[..., Emulator]
JSON = "application/json"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No config file, no KMSNAP_* settings, the secret token in the environment."""
    monkeypatch.chdir(tmp_path)
    for name in ("KMSNAP_API", "KMSNAP_CONCURRENCY", "KMSNAP_PAGE_SIZE", "KMSNAP_MAX_RPS",
                 "KMSNAP_TIMEOUT", "KMSNAP_SNAPSHOT_DIR", "KMSNAP_ALLOW_SHRINK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KISSMETRICS_TOKEN", SECRET)
    monkeypatch.setattr(SystemClock, "sleep", lambda self, seconds: None)  # no backoff waits


def tree_hash(path: Path) -> str:
    """Names, kinds and bytes of everything under ``path``."""
    digest = hashlib.sha256()
    for item in sorted(path.rglob("*")):
        digest.update(str(item.relative_to(path)).encode() + b"\0")
        digest.update(item.read_bytes() if item.is_file() else b"<dir>")
    return digest.hexdigest()


@pytest.fixture
def emu(make_emulator: MakeEmulator) -> Emulator:
    return make_emulator(events_catalog(30), token=SECRET, max_page_size=10)


@pytest.fixture
def snapshot(emu: Emulator, tmp_path: Path) -> Path:
    """A good snapshot of ``emu``, pulled before the attack."""
    out = tmp_path / "snapshots"
    assert run(["pull", "--quiet", "--api", emu.base_url, "--out", str(out)]) == 0
    assert list(out.rglob("events.yaml"))
    emu.reset_stats()
    return out


def pull_fails(emu_url: str, out: Path, capfd: pytest.CaptureFixture[str],
               *args: str) -> str:
    """Run a pull that must fail: exit 1, one line, the snapshot unchanged; return the line."""
    before = tree_hash(out)
    capfd.readouterr()
    code = run(["pull", "--quiet", "--api", emu_url, "--out", str(out), *args])
    err = capfd.readouterr().err
    assert code == 1, err
    assert err.count("\n") == 1, err
    assert err.startswith("kmsnap: error: ")
    assert tree_hash(out) == before
    return err


def root_body(emu: Emulator) -> dict[str, Any]:
    answer = requests.get(emu.base_url, headers={"Authorization": f"Bearer {SECRET}"},
                          timeout=10)
    body: dict[str, Any] = answer.json()
    return body


# -- shapes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ['{}', '{"message": "maintenance"}', '{"data": {"links": []}}',
                                  '{"data": {"links": [{"rel": "self", "href": "/core"}]}}'])
def test_a_root_without_catalog_links_fails_the_pull(
    emu: Emulator, snapshot: Path, capfd: pytest.CaptureFixture[str], body: str,
) -> None:
    emu.inject("/core", status=200, body=body, content_type=JSON, times=None)
    err = pull_fails(emu.base_url, snapshot, capfd)
    assert (f"GET {emu.base_url}: the API root lists no catalog collections (not the "
            "Kissmetrics Core API, or down for maintenance?)") in err
    assert emu.count("/core/events") == 0


@pytest.mark.parametrize(("body", "problem"), [
    ({"data": []}, "it has no 'pagination' object"),
    ({"data": [], "pagination": None}, "it has no 'pagination' object"),
    ({"data": {"id": "x"}, "pagination": {"limit": 10, "offset": 0, "total": 1}},
     "its 'data' is not a list"),
    ({"data": None, "pagination": {"limit": 10, "offset": 0, "total": 0}},
     "its 'data' is not a list"),
    ({"data": [], "pagination": {"limit": 10, "offset": 0, "total": -1}},
     "pagination.total is -1, not a non-negative integer"),
    ({"data": [], "pagination": {"limit": 10, "offset": 0, "total": "many"}},
     "pagination.total is 'many', not a non-negative integer"),
    ({"data": [], "pagination": {"limit": 10, "offset": 0, "total": 1.5}},
     "pagination.total is 1.5, not a non-negative integer"),
    ({"data": [], "pagination": {"limit": 10, "offset": 0, "total": "9" * 5000}},
     "not a non-negative integer"),
])
def test_an_events_page_not_shaped_like_the_apis_fails_the_pull(
    emu: Emulator, snapshot: Path, capfd: pytest.CaptureFixture[str], body: dict[str, Any],
    problem: str,
) -> None:
    emu.inject("/core/events", status=200, body=json.dumps(body), content_type=JSON,
               times=None)
    err = pull_fails(emu.base_url, snapshot, capfd)
    assert f"GET {emu.base_url}/events?limit=100&offset=0: not a page of the API's events" in err
    assert problem in err


def test_a_later_page_without_pagination_fails_the_pull(
    emu: Emulator, snapshot: Path, capfd: pytest.CaptureFixture[str],
) -> None:
    emu.inject("/core/events", offset=20, status=200, body='{"data": []}', content_type=JSON,
               times=None)
    err = pull_fails(emu.base_url, snapshot, capfd)
    assert "/events?limit=10&offset=20: not a page of the API's events collection" in err


def test_a_catalog_link_to_another_origin_fails_the_pull(
    emu: Emulator, snapshot: Path, capfd: pytest.CaptureFixture[str],
    make_emulator: MakeEmulator,
) -> None:
    other = make_emulator(events_catalog(3), token=SECRET)
    body = root_body(emu)
    for link in body["data"]["links"]:
        if link["rel"] == "events":
            link["href"] = f"{other.base_url}/events"
    emu.inject("/core", status=200, body=json.dumps(body), content_type=JSON, times=None)
    err = pull_fails(emu.base_url, snapshot, capfd)
    assert f"GET {emu.base_url}: the 'events' link leads to another origin" in err
    assert f"127.0.0.1:{other.port}" in err
    assert other.requests == []  # never asked, so never given the token


def test_an_unknown_link_to_another_origin_is_only_a_warning(
    make_emulator: MakeEmulator,
) -> None:
    emu = make_emulator(events_catalog(3), token=SECRET)
    body = root_body(emu)
    body["data"]["links"].append({"rel": "widgets", "href": "http://127.0.0.2:1/widgets"})
    emu.inject("/core", status=200, body=json.dumps(body), content_type=JSON, times=None)
    result = pull_snapshot(PullOptions(api=emu.base_url, token=SECRET))
    assert len(result.snapshot.of("event")) == 3
    assert any("'widgets' to another origin" in w for w in result.warnings)


def test_an_unknown_link_to_something_else_than_a_list_is_skipped_with_a_warning(
    make_emulator: MakeEmulator,
) -> None:
    emu = make_emulator(events_catalog(3), token=SECRET)
    body = root_body(emu)
    body["data"]["links"].append({"rel": "status", "href": f"{emu.base_url}/status"})
    emu.inject("/core", status=200, body=json.dumps(body), content_type=JSON, times=None)
    emu.inject("/core/status", status=200, body='{"data": {"ok": true}}', content_type=JSON,
               times=None)
    result = pull_snapshot(PullOptions(api=emu.base_url, token=SECRET))
    assert len(result.snapshot.of("event")) == 3
    assert any("'status' does not lead to a list" in w for w in result.warnings)


# -- page bounds ----------------------------------------------------------------------------


def test_a_server_capping_pages_far_below_its_total_is_refused_at_once(
    emu: Emulator, snapshot: Path, capfd: pytest.CaptureFixture[str],
) -> None:
    body = {"data": [{"id": "x", "name": "x"}], "links": [],
            "pagination": {"limit": 1, "offset": 0, "total": 1_000_000}}
    emu.inject("/core/events", status=200, body=json.dumps(body), content_type=JSON,
               times=None)
    err = pull_fails(emu.base_url, snapshot, capfd)
    assert f"GET {emu.base_url}/events?limit=100&offset=0: pagination.total 1000000" in err
    assert f"1000000 pages, more than the {crawl.MAX_PAGES} one collection may take" in err
    assert emu.count("/core/events") == 1  # not one of the million pages it claims


def test_the_page_size_actually_served_sets_the_step(make_emulator: MakeEmulator) -> None:
    # The server says limit 10 but serves 4 a page: stepping by 10 would skip 6 of every 10.
    emu = make_emulator(events_catalog(12), token=SECRET, max_page_size=4)
    first = {"data": [], "links": [], "pagination": {"limit": 10, "offset": 0, "total": 12}}
    first["data"] = requests.get(f"{emu.base_url}/events?limit=4&offset=0", timeout=10,
                                 headers={"Authorization": f"Bearer {SECRET}"}).json()["data"]
    emu.inject("/core/events", offset=0, status=200, body=json.dumps(first), content_type=JSON,
               times=None)
    emu.reset_stats()
    result = pull_snapshot(PullOptions(api=emu.base_url, token=SECRET))
    assert len(result.snapshot.of("event")) == 12
    assert emu.count("/core/events") == 3  # offsets 0, 4, 8


def test_endless_next_links_stop_at_the_page_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crawl, "MAX_PAGES", 40)
    served: list[str] = []

    def handler(request: BaseHTTPRequestHandler) -> None:
        served.append(request.path)
        base = f"http://127.0.0.1:{request.server.server_address[1]}/core"
        if request.path == "/core":
            body: dict[str, Any] = {"data": {"links": [{"rel": "events",
                                                        "href": f"{base}/events"}]}}
        else:
            page = len(served)
            body = {"data": [{"id": f"e{page}"}], "pagination": {"limit": 1},
                    "links": [{"rel": "next", "href": f"{base}/events?page={page}"}]}
        send(request, 200, json.dumps(body).encode(), headers={"Content-Type": JSON})

    with serve(handler) as url:
        with pytest.raises(BoundError) as info:
            pull_snapshot(PullOptions(api=f"{url}/core", token=SECRET, concurrency=4))
    assert "'next' links go on past 40 pages, the most one collection may take" in str(info.value)
    assert f"GET {url}/core/events?page=" in str(info.value)
    assert len(served) == 1 + 40


def test_pages_are_asked_for_a_window_at_a_time(make_emulator: MakeEmulator) -> None:
    # 2,000 pages promised, every one after the first empty: the first empty one ends the
    # attempt, and only the window (twice the concurrency) was ever asked for beyond it.
    emu = make_emulator(events_catalog(20), token=SECRET, max_page_size=100)
    body = {"data": [{"id": f"f{i}"} for i in range(100)], "links": [],
            "pagination": {"limit": 100, "offset": 0, "total": 200_000}}
    emu.inject("/core/events", offset=0, status=200, body=json.dumps(body), content_type=JSON,
               times=None)
    with pytest.raises(ApiError, match="also when fetched again"):
        pull_snapshot(PullOptions(api=emu.base_url, token=SECRET, concurrency=4))
    window = crawl.WINDOW * 4
    assert emu.count("/core/events") <= 2 * (1 + window)


# -- time and the options -------------------------------------------------------------------


def test_the_deadline_ends_a_pull_that_gets_no_answer(
    emu: Emulator, snapshot: Path, capfd: pytest.CaptureFixture[str],
) -> None:
    emu.inject("/core/events", offset=10, stall_seconds=60, times=None)
    started = time.monotonic()
    err = pull_fails(emu.base_url, snapshot, capfd, "--deadline", "1.5")
    assert time.monotonic() - started < 10
    assert "deadline" in err and "1.5" in err
    assert "/core/events?" in err and "offset=10" in err, err  # the page that never came


def test_the_response_size_option_reaches_the_client(
    emu: Emulator, snapshot: Path, capfd: pytest.CaptureFixture[str],
) -> None:
    big = {"data": [{"id": "x", "name": "x" * (2 << 20)}], "links": [],
           "pagination": {"limit": 10, "offset": 0, "total": 1}}
    emu.inject("/core/events", status=200, body=json.dumps(big), content_type=JSON, times=None)
    err = pull_fails(emu.base_url, snapshot, capfd, "--max-response-mb", "1")
    assert f"{emu.base_url}/events" in err


def test_the_bound_options_reach_the_pull_options(
    monkeypatch: pytest.MonkeyPatch, emu: Emulator, tmp_path: Path,
) -> None:
    seen: list[PullOptions] = []
    real = crawl.pull_snapshot

    def spy(options: PullOptions, **kwargs: Any) -> crawl.PullResult:
        seen.append(options)
        return real(options, **kwargs)

    monkeypatch.setattr(crawl, "pull_snapshot", spy)
    assert run(["pull", "--quiet", "--api", emu.base_url, "--out", str(tmp_path / "a"),
                "--deadline", "90", "--max-response-mb", "3", "--max-retry-after", "7"]) == 0
    assert run(["pull", "--quiet", "--api", emu.base_url, "--out", str(tmp_path / "b")]) == 0
    assert [(o.deadline, o.max_body, o.max_retry_after) for o in seen] == [
        (90.0, 3 << 20, 7.0), (1800.0, api.MAX_BODY_BYTES, api.MAX_RETRY_AFTER)]


@pytest.mark.parametrize("command", ["pull", "check"])
def test_help_names_each_bound_and_its_default(
    command: str, capfd: pytest.CaptureFixture[str],
) -> None:
    assert run([command, "--help"]) == 0
    text = " ".join(capfd.readouterr().out.split())
    defaults = PullOptions(api="", token="")
    assert f"--deadline SECONDS Give up a pull that takes longer than this in all " \
           f"[default: {defaults.deadline:g}]" in text
    assert f"[default: {defaults.max_body >> 20}]" in text and "--max-response-mb N" in text
    assert f"Retry-After [default: {defaults.max_retry_after:g}]" in text


@pytest.mark.parametrize(("args", "message"), [
    (["--deadline", "0"], "--deadline must be a number of seconds above 0"),
    (["--deadline", "-3"], "--deadline must be a number of seconds above 0"),
    (["--max-response-mb", "0"], "--max-response-mb must be 1 to 65536"),
    (["--max-retry-after", "-1"], "--max-retry-after must be a number of seconds, 0 or more"),
])
def test_bounds_that_bound_nothing_are_refused(
    emu: Emulator, tmp_path: Path, capfd: pytest.CaptureFixture[str], args: list[str],
    message: str,
) -> None:
    assert run(["pull", "--api", emu.base_url, "--out", str(tmp_path / "s"), *args]) == 1
    assert message in capfd.readouterr().err
    assert emu.requests == []
