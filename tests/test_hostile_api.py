"""The HTTP client against hostile servers (tests/hostile.py): bombs, huge and dripping bodies,
absurd Retry-After, the token echoed back; each bounded in memory, time, and what it prints."""

from __future__ import annotations

import base64
import gzip
import os
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import quote

import pytest
from hostile import gzip_bomb, pause, send, serve
from test_pull_kit import FakeClock

from kmsnap.errors import ApiError, BoundError, DeadlineError, UnsafeUrlError
from kmsnap.sources.core.client import MAX_BODY_BYTES, ApiClient, scrub

TOKEN = "s3cr3t/T0KEN+that=must~never.show"
ROOT = Path(__file__).resolve().parent.parent
JSON = {"Content-Type": "application/json"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("KMSNAP_", "KISSMETRICS_", "GITHUB_")) or "proxy" in name.lower():
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """256 MiB of zeros in one gzip member (~250 KB on the wire)."""
    return gzip_bomb(256 << 20)


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KMSNAP_", "KISSMETRICS_", "GITHUB_")) and "proxy" not in k.lower()}
    env["PYTHONPATH"] = str(ROOT)
    return env


# The client in a child process, so its peak memory (VmHWM) is its own.
CHILD = """
import sys
from kmsnap.sources.core.client import ApiClient
from kmsnap.errors import ApiError

def peak_kib():
    with open("/proc/self/status") as status:
        return int(next(l for l in status if l.startswith("VmHWM")).split()[1])

client = ApiClient(sys.argv[1], "child-token", max_body=int(sys.argv[2]), timeout=10)
before = peak_kib()
try:
    client.fetch_json(sys.argv[1])
    print("no error")
except ApiError as error:
    print(error)
print((peak_kib() - before) // 1024)
"""


def fetch_in_child(base_url: str, max_body: int) -> tuple[str, int]:
    """The child's one error line and how many MiB its peak memory grew during the fetch."""
    done = subprocess.run([sys.executable, "-c", CHILD, base_url + "/core", str(max_body)],
                          capture_output=True, text=True, timeout=60, env=child_env(), cwd=ROOT)
    assert done.returncode == 0, done.stderr
    message, grew = done.stdout.strip().split("\n")
    return message, int(grew)


# -- size ------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_body, limit_mib", [(4 << 20, 20), (MAX_BODY_BYTES, 64)])
def test_a_gzip_bomb_is_refused_in_bounded_memory(
    bomb: bytes, max_body: int, limit_mib: int
) -> None:
    def handler(request: BaseHTTPRequestHandler) -> None:
        send(request, 200, bomb, headers={**JSON, "Content-Encoding": "gzip"})

    with serve(handler) as base_url:
        message, grew = fetch_in_child(base_url, max_body)
    size = f"{max_body >> 20} MiB"
    assert message == (f"GET {base_url}/core: the answer is larger than {size} "
                       "(--max-response-mb); refusing it")
    assert grew < limit_mib  # the body is 256 MiB once decoded


def test_a_bomb_of_many_gzip_members_is_refused_in_bounded_memory() -> None:
    member = gzip_bomb(1 << 20)  # 1 MiB of zeros in ~1 KB; 1024 of them: 1 GiB decoded

    def handler(request: BaseHTTPRequestHandler) -> None:
        send(request, 200, member * 1024, headers={**JSON, "Content-Encoding": "gzip"})

    with serve(handler) as base_url:
        message, grew = fetch_in_child(base_url, MAX_BODY_BYTES)
    assert "larger than 32 MiB" in message and grew < 120


def test_a_bomb_in_stacked_codings_is_refused_in_bounded_memory(bomb: bytes) -> None:
    twice = gzip_compress(bomb)  # urllib3 before 2.6 would decode each read in full: refused

    def handler(request: BaseHTTPRequestHandler) -> None:
        send(request, 200, twice, headers={**JSON, "Content-Encoding": "gzip, gzip"})

    with serve(handler) as base_url:
        message, grew = fetch_in_child(base_url, MAX_BODY_BYTES)
    assert message.startswith(f"GET {base_url}/core: the answer is ")
    assert message.endswith("; refusing it") and grew < 64


def test_a_huge_plain_body_without_a_length_is_cut_off_at_the_bound() -> None:
    sent = []

    def handler(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "application/json")
        request.end_headers()  # HTTP/1.0 without Content-Length: the body ends when it closes
        block = b"[" * (1 << 20)
        for _ in range(600):  # 600 MiB, if anyone read it all
            request.wfile.write(block)
            sent.append(len(block))

    with serve(handler) as base_url:
        message, grew = fetch_in_child(base_url, MAX_BODY_BYTES)
    assert "larger than 32 MiB (--max-response-mb)" in message and base_url in message
    assert grew < 120
    assert sum(sent) < 200 << 20  # the client hung up, the server stopped early


def test_a_content_length_over_the_bound_is_refused_before_reading() -> None:
    def handler(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Length", str(600 << 20))
        request.end_headers()
        request.wfile.write(b"{")
        pause(request, 30)  # the rest never comes: only the header can refuse it in time

    started = time.monotonic()
    with serve(handler) as base_url, ApiClient(base_url, TOKEN, timeout=20) as client:
        with pytest.raises(BoundError, match="larger than 32 MiB"):
            client.fetch_json(base_url + "/core")
        assert client.requests == 1
    assert time.monotonic() - started < 5


def test_a_small_bound_counts_decoded_bytes() -> None:
    body = b'{"data": [' + b'"xxxxxxxxxx",' * 1000 + b'"x"]}'

    def handler(request: BaseHTTPRequestHandler) -> None:
        send(request, 200, gzip_compress(body), headers={**JSON, "Content-Encoding": "gzip"})

    with serve(handler) as base_url:
        with ApiClient(base_url, TOKEN, max_body=len(body)) as client:
            assert len(client.fetch_json(base_url).body["data"]) == 1001
        with ApiClient(base_url, TOKEN, max_body=len(body) - 1) as client:
            with pytest.raises(BoundError, match=f"larger than {len(body) - 1} bytes"):
                client.fetch_json(base_url)


def gzip_compress(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


# -- time ------------------------------------------------------------------------------------


def dripping_body(request: BaseHTTPRequestHandler) -> None:
    request.send_response(200)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", "100000")
    request.end_headers()
    request.wfile.flush()
    while pause(request, 0.1):  # a byte every 0.1 s: no read timeout ever fires
        request.wfile.write(b" ")
        request.wfile.flush()


def dripping_headers(request: BaseHTTPRequestHandler) -> None:
    request.wfile.write(b"HTTP/1.0 200 OK\r\n")
    while pause(request, 0.1):
        request.wfile.write(b"X")
        request.wfile.flush()


@pytest.mark.parametrize("handler", [dripping_body, dripping_headers])
def test_a_dripping_answer_ends_at_the_deadline(handler: object) -> None:
    started = time.monotonic()
    with serve(handler) as base_url:  # type: ignore[arg-type]
        with ApiClient(base_url, TOKEN, timeout=30, deadline=2.0) as client:
            with pytest.raises(DeadlineError) as info:
                client.fetch_json(base_url + "/core")
            assert client.time_left() is not None and client.time_left() <= 0  # type: ignore[operator]
    assert str(info.value) == f"GET {base_url}/core: the pull's deadline of 2 s passed (--deadline)"
    assert time.monotonic() - started < 6


def test_a_dripping_answer_without_a_deadline_ends_after_its_time_budget() -> None:
    started = time.monotonic()
    with serve(dripping_body) as base_url, ApiClient(base_url, TOKEN, timeout=0.2) as client:
        with pytest.raises(BoundError) as info:
            client.fetch_json(base_url + "/core")
    assert "took more than 2 s (10 x --timeout)" in str(info.value)
    assert base_url in str(info.value)
    assert time.monotonic() - started < 6


def test_a_retry_after_wait_does_not_count_against_the_time_of_an_attempt() -> None:
    answers = iter([503, 200])

    def handler(request: BaseHTTPRequestHandler) -> None:
        send(request, next(answers), b"{}", headers={**JSON, "Retry-After": "1"})

    with serve(handler) as base_url, ApiClient(base_url, TOKEN, timeout=0.05) as client:
        assert client.fetch_json(base_url).body == {}  # 1 s wait, 0.5 s budget per attempt
        assert client.requests == 2


def test_the_deadline_is_checked_before_anything_is_sent() -> None:
    hits = []

    def handler(request: BaseHTTPRequestHandler) -> None:
        hits.append(request.path)
        send(request, 200, b"{}", headers=JSON)

    clock = FakeClock()
    with serve(handler) as base_url:
        with ApiClient(base_url, TOKEN, clock=clock, deadline=5.0) as client:
            assert client.time_left() == pytest.approx(5.0)
            client.fetch_json(base_url)
            clock.sleep(5.0)
            assert client.time_left() == pytest.approx(0.0)
            with pytest.raises(DeadlineError, match="deadline of 5 s passed"):
                client.fetch_json(base_url)
        with ApiClient(base_url, TOKEN, clock=clock) as client:
            assert client.time_left() is None
    assert hits == ["/"]


def test_429_pauses_end_at_the_deadline() -> None:
    def handler(request: BaseHTTPRequestHandler) -> None:
        send(request, 429, b"{}", headers=JSON)  # no Retry-After: growing pauses of its own

    clock = FakeClock()
    with serve(handler) as base_url, ApiClient(base_url, TOKEN, clock=clock, deadline=10) as client:
        with pytest.raises(DeadlineError, match="deadline of 10 s passed"):
            client.fetch_json(base_url + "/core")
    assert sum(clock.sleeps) <= 10.0 + 1e-6


def test_urllib3_backoffs_for_5xx_end_at_the_deadline() -> None:
    def handler(request: BaseHTTPRequestHandler) -> None:
        send(request, 503, b"busy", headers={"Retry-After": "4"})

    clock = FakeClock()
    with serve(handler) as base_url, ApiClient(base_url, TOKEN, clock=clock, deadline=6) as client:
        with pytest.raises(DeadlineError, match="deadline of 6 s passed"):
            client.fetch_json(base_url + "/core")
        assert client.requests == 0 or client.requests <= 3
    assert sum(clock.sleeps) <= 6.0 + 1e-6 and clock.sleeps[0] == pytest.approx(4.0)


def test_retries_on_a_real_clock_end_at_the_deadline() -> None:
    def handler(request: BaseHTTPRequestHandler) -> None:
        send(request, 503, b"", headers={"Retry-After": "1"})

    started = time.monotonic()
    with serve(handler) as base_url, ApiClient(base_url, TOKEN, deadline=1.5) as client:
        with pytest.raises(DeadlineError):
            client.fetch_json(base_url + "/core")
    assert time.monotonic() - started < 4


# -- Retry-After -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
def test_a_retry_after_over_the_cap_fails_at_once(status: int) -> None:
    hits = []

    def handler(request: BaseHTTPRequestHandler) -> None:
        hits.append(request.path)
        send(request, status, b"{}", headers={**JSON, "Retry-After": "1000000000"})

    started = time.monotonic()
    with serve(handler) as base_url, ApiClient(base_url, TOKEN) as client:
        with pytest.raises(BoundError) as info:
            client.fetch_json(base_url + "/core")
    assert str(info.value) == (
        f"GET {base_url}/core: HTTP {status}: the API asks to wait 1000000000 s, more than the "
        "300 s kmsnap waits (--max-retry-after)")
    assert info.value.status == status and len(hits) == 1
    assert time.monotonic() - started < 2


def test_a_retry_after_under_a_raised_cap_is_waited_out() -> None:
    answers = iter([(429, {"Retry-After": "400"}), (200, {})])

    def handler(request: BaseHTTPRequestHandler) -> None:
        status, headers = next(answers)
        send(request, status, b"{}", headers={**JSON, **headers})

    clock = FakeClock()
    with serve(handler) as base_url:
        with ApiClient(base_url, TOKEN, clock=clock, max_retry_after=500) as client:
            assert client.fetch_json(base_url).body == {}
    assert clock.sleeps == [pytest.approx(400.0)]


# -- the token in what the server says -----------------------------------------------------------


def encoded_tokens() -> list[str]:
    raw = TOKEN.encode()
    return [TOKEN, quote(TOKEN, safe=""), quote(TOKEN, safe="").lower(),
            base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("=")]


def assert_clean(message: str) -> None:
    for form in encoded_tokens():
        assert form not in message
    assert "\n" not in message and "\r" not in message


def test_the_token_in_a_reason_phrase_is_scrubbed() -> None:
    reason = "denied for " + " and ".join(encoded_tokens())

    def handler(request: BaseHTTPRequestHandler) -> None:
        send(request, 400, b"", reason=reason)

    with serve(handler) as base_url, ApiClient(base_url, TOKEN, clock=FakeClock()) as client:
        with pytest.raises(ApiError) as info:
            client.fetch_json(base_url + "/core")
    message = str(info.value)
    assert_clean(message)
    assert message.startswith(f"GET {base_url}/core failed: HTTP 400 denied for <token>")
    assert len(message) < 300


def test_the_token_in_a_broken_status_line_is_scrubbed() -> None:
    def handler(request: BaseHTTPRequestHandler) -> None:
        request.wfile.write(f"HTTP/1.1 2x0 {TOKEN}\r\n\r\n".encode())

    with serve(handler) as base_url, ApiClient(base_url, TOKEN, clock=FakeClock()) as client:
        with pytest.raises(ApiError) as info:
            client.fetch_json(base_url + "/core")
    assert_clean(str(info.value))
    assert base_url in str(info.value) and info.value.__cause__ is None


def test_the_token_in_a_redirect_or_a_body_is_scrubbed() -> None:
    def handler(request: BaseHTTPRequestHandler) -> None:
        if request.path == "/away":
            send(request, 302, b"", headers={"Location": f"https://{TOKEN[:6]}.evil/?t={TOKEN}"})
        else:
            send(request, 200, f"<html>{TOKEN}</html>".encode(), headers={"X-Echo": TOKEN})

    with serve(handler) as base_url, ApiClient(base_url, TOKEN, clock=FakeClock()) as client:
        with pytest.raises(UnsafeUrlError) as info:
            client.fetch_json(base_url + "/away")
        assert_clean(str(info.value))
        assert "another origin" in str(info.value)
        with pytest.raises(ApiError) as info:
            client.fetch_json(base_url + "/page")
        assert_clean(str(info.value))
        assert "answered HTML, not the API's JSON" in str(info.value)


def test_scrub() -> None:
    assert scrub(f"a {TOKEN} b", [TOKEN]) == "a <token> b"
    assert scrub(f"a {quote(TOKEN, safe='').lower()}", [TOKEN]) == "a <token>"
    assert scrub("line\nbreak\x1b[31m\u202e", [TOKEN]) == "linebreak[31m"
    assert scrub("x" * 500, [TOKEN]) == "x" * 197 + "..."
    assert scrub(f"{TOKEN[:10]}\x00{TOKEN[10:]}", [TOKEN]) == "<token>"
    assert scrub("ab", [""]) == "ab"


# -- through the command ----------------------------------------------------------------------


def test_pull_refuses_a_gzip_bomb_in_one_line(
    bomb: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from kmsnap.cli import run

    def handler(request: BaseHTTPRequestHandler) -> None:
        send(request, 200, bomb, headers={**JSON, "Content-Encoding": "gzip"})

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KISSMETRICS_TOKEN", TOKEN)
    with serve(handler) as base_url:
        code = run(["pull", "--quiet", "--api", base_url + "/core", "--out", str(tmp_path / "s")])
    err = capfd.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "larger than 32 MiB" in err and base_url in err
    assert not (tmp_path / "s").exists()
