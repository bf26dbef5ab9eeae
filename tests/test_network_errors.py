"""Network failures a person meets first, each one line at once: nothing listening at --api, a
web page instead of the API, a CA bundle that does not exist; and the waits a pull tells its
progress display about (a 429's pause, a retry's backoff)."""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from hostile import send, serve
from test_pull_kit import FakeClock

from kmsnap.cli import Environment, run
from kmsnap.emulator import Emulator, generate_catalog
from kmsnap.errors import ApiError
from kmsnap.sources.core.client import ApiClient
from kmsnap.sources.core.crawler import ProgressEvent, PullOptions, pull_snapshot
from kmsnap.sources.pacing import SLOW_DOWN, Pacer

TOKEN = "network-token"
MakeEmulator = Callable[..., Emulator]


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()  # nothing listens there now
    return port


def _pull(api: str, tmp_path: Path, environ: dict[str, str] | None = None) -> tuple[int, str]:
    err = io.StringIO()
    env = Environment(stdout=io.StringIO(), stderr=err, cwd=tmp_path,
                      environ={"KISSMETRICS_TOKEN": TOKEN, **(environ or {})})
    return run(["pull", "--api", api, "--snapshot-dir", "snap"], env=env), err.getvalue()


def test_a_refused_connection_fails_at_once_in_one_line(tmp_path: Path) -> None:
    api = f"http://127.0.0.1:{_closed_port()}/core"
    started = time.monotonic()
    code, err = _pull(api, tmp_path)
    assert time.monotonic() - started < 3  # not 9-13 s of retries
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(f"kmsnap: error: GET {api} failed: nothing listens at http://127.0.0.1:")
    assert "check --api / KMSNAP_API" in err
    assert "urllib3" not in err and "NewConnectionError" not in err


@pytest.mark.parametrize("headers", [{"Content-Type": "text/html; charset=utf-8"},
                                     {"Content-Type": "application/json"}])
def test_an_html_answer_is_not_retried(tmp_path: Path, headers: dict[str, str]) -> None:
    hits: list[str] = []

    def handler(request: BaseHTTPRequestHandler) -> None:
        hits.append(request.path)
        send(request, 200, b"\n  <!doctype html><html><body>Sign in</body></html>",
             headers=headers)

    with serve(handler) as base_url:
        code, err = _pull(base_url + "/core", tmp_path)
    assert code == 1 and err.count("\n") == 1
    assert "answered HTML, not the API's JSON: is --api right?" in err
    assert len(hits) == 1  # once, not five times


def test_a_ca_bundle_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-bundle.pem"
    code, err = _pull(f"https://127.0.0.1:{_closed_port()}/core", tmp_path)
    assert "REQUESTS_CA_BUNDLE" not in err  # (without the variable: an ordinary refusal)
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        with pytest.MonkeyPatch.context() as patch:  # the transport reads the process's
            patch.setenv(name, str(missing))
            with pytest.raises(ApiError, match=f"{name} names .*which does not exist"):
                ApiClient(f"https://127.0.0.1:{_closed_port()}/core", TOKEN)
            code, err = _pull(f"https://127.0.0.1:{_closed_port()}/core", tmp_path)
        assert code == 1 and err.count("\n") == 1 and "internal error" not in err
        assert f"{name} names {missing}, which does not exist" in err


def test_the_pacer_tells_of_a_pause_once() -> None:
    clock = FakeClock()
    told: list[tuple[float, str]] = []
    pacer = Pacer(clock)
    pacer.on_wait = lambda seconds, why: told.append((seconds, why))
    pacer.on_throttle(12.0, clock.monotonic(), 0)
    pacer.on_throttle(12.0, clock.monotonic(), 1)  # a second worker's refusal: same pause
    pacer.acquire()
    assert told == [(12.0, SLOW_DOWN)]


def test_a_crawl_hands_its_waits_to_the_progress_callback(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(generate_catalog(size=40, seed=4), token=TOKEN)
    emu.inject("/core/events", status=429, retry_after=5, times=1)
    emu.inject("/core/metrics", status=503, times=1)
    events: list[ProgressEvent] = []
    clock = FakeClock()
    result = pull_snapshot(PullOptions(api=emu.base_url, token=TOKEN), progress=events.append,
                           clock=clock)
    assert result.snapshot.size() > 0
    waits = [(e.waiting, e.reason) for e in events if e.waiting]
    assert (5.0, SLOW_DOWN) in waits
    assert all(not e.kind for e in events if e.waiting)
