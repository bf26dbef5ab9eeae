"""The HTTP client against the emulator: origins and the token, retries, 429 pacing, errors."""

from __future__ import annotations

import email.utils
import time
import traceback
from collections.abc import Callable

import pytest
import requests
from test_pull_kit import SECRET, TOKEN, FakeClock, refusing_session

from kmsnap.emulator import Emulator
from kmsnap.errors import ApiError, AuthError, TokenError, UnsafeUrlError
from kmsnap.sources.core.client import ApiClient, check_base_url, is_loopback, origin_of
from kmsnap.sources.pacing import RETRY_AFTER_CAP, Pacer, parse_retry_after

MakeEmulator = Callable[..., Emulator]


# -- where the token may go ---------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "http://api.kissmetrics.com/core", "http://10.0.0.1:8080/core", "http://[2001:db8::1]/core",
    "http://localhost.example.com/core",
])
def test_plain_http_to_a_remote_host_is_refused_before_anything_is_sent(url: str) -> None:
    session, adapter = refusing_session()
    with pytest.raises(UnsafeUrlError, match="plain http"):
        ApiClient(url, SECRET, session=session)
    assert adapter.sent == []
    session.close()


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:1/core", "http://127.8.9.10/core", "http://[::1]:8/core",
    "http://localhost:9/core", "https://api.kissmetrics.com/core",
])
def test_https_and_loopback_http_are_accepted(url: str) -> None:
    assert check_base_url(url) == origin_of(url)


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("LOCALHOST")
    assert not is_loopback("128.0.0.1") and not is_loopback("localhost.evil.com")


def test_credentials_in_the_api_url_are_refused() -> None:
    # requests would turn user:pass@ into Basic auth in place of the token
    with pytest.raises(UnsafeUrlError) as info:
        check_base_url("https://user:pw@api.kissmetrics.com/core")
    assert "pw" not in str(info.value)


def test_other_origins_get_nothing_not_even_a_connection() -> None:
    session, adapter = refusing_session()
    with ApiClient("https://api.kissmetrics.com/core", SECRET, session=session) as client:
        for url in ["http://api.kissmetrics.com/core/events",  # https -> http
                    "https://api.kissmetrics.com:8443/core/events",  # another port
                    "https://query.kissmetrics.com/core/events",  # another host
                    "https://x@api.kissmetrics.com/core/events"]:
            assert not client.same_origin(url)
            with pytest.raises(UnsafeUrlError):
                client.fetch_json(url)
        assert client.same_origin("https://API.kissmetrics.com:443/core/events")
    assert adapter.sent == []
    session.close()


def test_a_redirect_to_another_origin_is_not_followed(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(size=20)
    other = make_emulator(size=20)
    emu.inject("/core/events", redirect_to=f"{other.base_url}/events", times=None)
    with ApiClient(emu.base_url, TOKEN) as client, pytest.raises(UnsafeUrlError) as info:
        client.fetch_json(f"{emu.base_url}/events")
    assert "another origin" in str(info.value) and "events" in str(info.value)
    assert other.requests == []


def test_a_same_origin_redirect_is_followed_with_the_token(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(size=20)
    emu.inject("/core/old-events", redirect_to=f"{emu.base_url}/events", status=301)
    with ApiClient(emu.base_url, TOKEN) as client:
        envelope = client.fetch_json(f"{emu.base_url}/old-events")
    assert envelope.url == f"{emu.base_url}/events"
    assert isinstance(envelope.body["data"], list)
    assert [r.authorization for r in emu.requests] == [f"Bearer {TOKEN}"] * 2


def test_a_netrc_entry_does_not_replace_the_token(
    make_emulator: MakeEmulator, tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = make_emulator(size=20)
    netrc = tmp_path / ".netrc"  # type: ignore[operator]
    netrc.write_text("machine 127.0.0.1 login someone password bogus\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(netrc))
    # Without kmsnap's care requests really does put the netrc entry in place of the header:
    with requests.Session() as plain:
        plain.get(emu.base_url, headers={"Authorization": f"Bearer {TOKEN}"}).close()
    assert emu.requests[-1].authorization.startswith("Basic ")  # type: ignore[union-attr]
    emu.reset_stats()
    with requests.Session() as session, ApiClient(emu.base_url, TOKEN, session=session) as client:
        client.fetch_json(emu.base_url)
    assert [r.authorization for r in emu.requests] == [f"Bearer {TOKEN}"]


def test_the_token_is_not_in_the_repr() -> None:
    with ApiClient("https://api.kissmetrics.com/core", SECRET) as client:
        assert SECRET not in repr(client) and "hidden" in repr(client)


# -- answers and errors -------------------------------------------------------------------


def test_401_and_403_say_what_to_do(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(size=20)
    with ApiClient(emu.base_url, SECRET) as client, pytest.raises(AuthError) as info:
        client.fetch_json(emu.base_url)
    assert info.value.status == 401 and "KISSMETRICS_TOKEN" in str(info.value)
    assert SECRET not in str(info.value)
    emu.inject("/core/events", status=403)
    with ApiClient(emu.base_url, TOKEN) as client, pytest.raises(AuthError) as info:
        client.fetch_json(f"{emu.base_url}/events")
    assert info.value.status == 403 and "403" in str(info.value)
    assert emu.count("/core/events") == 1  # not retried


def test_a_404_is_not_retried(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(size=20)
    with ApiClient(emu.base_url, TOKEN) as client, pytest.raises(ApiError) as info:
        client.fetch_json(f"{emu.base_url}/nothing")
    assert info.value.status == 404 and f"{emu.base_url}/nothing" in str(info.value)
    assert emu.count("/core/nothing") == 1


@pytest.mark.parametrize("fault", [
    {"status": 503},
    {"status": 500},  # the emulator's HTML 500 page
    {"status": 502, "body": "<html>bad gateway</html>"},
    {"cut_body": True},
])  # an HTML page at 200 (a login portal) is not transient: tests/test_network_errors.py
def test_transient_faults_are_retried(
    make_emulator: MakeEmulator, fault: dict[str, object]
) -> None:
    emu = make_emulator(size=20)
    emu.inject("/core/events", times=2, **fault)  # type: ignore[arg-type]
    clock = FakeClock()
    with ApiClient(emu.base_url, TOKEN, clock=clock) as client:
        envelope = client.fetch_json(f"{emu.base_url}/events")
        assert client.requests == 3
    assert envelope.body["pagination"]["total"] == len(emu.catalog.ids("event"))
    assert emu.count("/core/events") == 3
    assert sum(clock.sleeps) > 0  # backed off, on the injected clock


def test_a_stalled_read_times_out_and_is_retried(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(size=20)
    stall = emu.inject("/core/events", stall_seconds=2.0, times=1)
    started = time.monotonic()
    with ApiClient(emu.base_url, TOKEN, timeout=0.2, clock=FakeClock()) as client:
        envelope = client.fetch_json(f"{emu.base_url}/events")
        assert client.requests == 2  # the stalled one (still waiting, unlogged) and its retry
    assert time.monotonic() - started < 1.5
    assert envelope.status == 200 and stall.hits == 1


def test_a_page_that_never_recovers_fails_in_one_line(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(size=20)
    emu.inject("/core/events", status=503, times=None)
    url = f"{emu.base_url}/events?limit=100&offset=0"
    with ApiClient(emu.base_url, TOKEN, clock=FakeClock()) as client:
        with pytest.raises(ApiError) as info:
            client.fetch_json(url)
        assert 2 <= emu.count("/core/events") <= 10  # bounded
        assert client.requests == emu.count("/core/events")
    message = str(info.value)
    assert "\n" not in message and url in message and "503" in message
    assert info.value.status == 503 and info.value.url == url


def test_a_body_that_is_always_cut_off_fails_after_a_bounded_number_of_tries(
    make_emulator: MakeEmulator,
) -> None:
    emu = make_emulator(size=20)
    emu.inject("/core/events", cut_body=True, times=None)
    with ApiClient(emu.base_url, TOKEN, clock=FakeClock()) as client:
        with pytest.raises(ApiError, match="/core/events"):
            client.fetch_json(f"{emu.base_url}/events")
    assert 2 <= emu.count("/core/events") <= 10


def test_a_server_that_is_down_fails_naming_the_url() -> None:
    with requests.Session() as probe:  # a port nothing listens on
        import socket
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        url = f"http://127.0.0.1:{port}/core"
        with ApiClient(url, SECRET, session=probe, clock=FakeClock()) as client:
            with pytest.raises(ApiError) as info:
                client.fetch_json(url)
    assert url in str(info.value) and SECRET not in str(info.value)


# -- 429 and pacing -----------------------------------------------------------------------


def test_429_with_retry_after_seconds_pauses_without_really_sleeping(
    make_emulator: MakeEmulator,
) -> None:
    emu = make_emulator(size=20)
    emu.inject("/core/events", status=429, retry_after=7, times=1)
    clock = FakeClock()
    started = time.monotonic()
    with ApiClient(emu.base_url, TOKEN, clock=clock) as client:
        client.fetch_json(f"{emu.base_url}/events")
        assert client.pacer.paused_for == pytest.approx(7.0)
        assert client.pacer.rate is None  # one request measures no rate: no cap from it
    assert time.monotonic() - started < 1.0
    assert pytest.approx(7.0) in clock.sleeps
    assert emu.count("/core/events", 429) == 1 and emu.count("/core/events", 200) == 1


def test_429_with_an_http_date_pauses_until_then(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(size=20)
    clock = FakeClock()
    when = email.utils.formatdate(clock.time() + 30, usegmt=True)
    emu.inject("/core/events", status=429, retry_after=when, times=1)
    with ApiClient(emu.base_url, TOKEN, clock=clock) as client:
        client.fetch_json(f"{emu.base_url}/events")
        assert 28.0 <= client.pacer.paused_for <= 31.0


def test_429_for_ever_gives_up_and_names_the_url(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(size=20)
    emu.inject("/core/events", status=429, retry_after=100, times=None)  # under the cap
    clock = FakeClock()
    with ApiClient(emu.base_url, TOKEN, clock=clock) as client, pytest.raises(ApiError) as info:
        client.fetch_json(f"{emu.base_url}/events")
    assert info.value.status == 429 and "/core/events" in str(info.value)
    assert max(clock.sleeps) <= RETRY_AFTER_CAP  # capped
    assert emu.count("/core/events") <= 10


def test_retry_after_parsing() -> None:
    clock = FakeClock()
    assert parse_retry_after("5", clock) == 5.0
    assert parse_retry_after(" 100000 ", clock) == RETRY_AFTER_CAP
    assert parse_retry_after(email.utils.formatdate(clock.time() - 60, usegmt=True), clock) == 0.0
    assert parse_retry_after("soon", clock) is None and parse_retry_after(None, clock) is None


def test_pacer_halves_once_per_round_then_creeps_back_up() -> None:
    clock = FakeClock()
    pacer = Pacer(clock, max_rps=40.0)
    sent = [pacer.acquire() for _ in range(4)]
    assert clock.now - sent[0] == pytest.approx(3 / 40)  # spaced at the cap
    pacer.on_throttle(2.0, sent[0], 0)
    pacer.on_throttle(2.0, sent[1], 0)  # sent before the cut: no second halving
    assert pacer.rate == 20.0
    before = clock.now
    after_pause = pacer.acquire()
    assert after_pause >= before + 2.0  # everyone waits out the pause
    pacer.on_throttle(None, after_pause, 1)  # sent after the cut: halves again
    assert pacer.rate == 10.0
    for _ in range(200):
        pacer.on_success()
    assert pacer.rate == 40.0  # back up to the cap, never above


# -- the token in errors ------------------------------------------------------------------


@pytest.mark.parametrize("token", ["SECRETPART1\nSECRETPART2", "SECRETPART1\rSECRETPART2",
                                   "SECRETPART1 SECRETPART2", "SECRETPART1\x00SECRETPART2",
                                   "SECRETPART1\u20acSECRETPART2", ""])
def test_a_token_headers_cannot_carry_is_refused_without_echoing_it(token: str) -> None:
    session, adapter = refusing_session()
    with pytest.raises(TokenError) as info:
        ApiClient("http://127.0.0.1:9/core", token, session=session, clock=FakeClock())
    assert "SECRETPART" not in str(info.value) and "\n" not in str(info.value)
    assert adapter.sent == []


@pytest.mark.parametrize("token", ["SECRETPART1\nSECRETPART2", "SECRETPART1\u20acSECRETPART2"])
def test_header_failures_never_carry_the_header_into_the_error(
    make_emulator: MakeEmulator, token: str
) -> None:
    emu = make_emulator(size=5)
    with ApiClient(emu.base_url, TOKEN, clock=FakeClock()) as client:
        client._token = token  # past the constructor's check: the last line of defence
        with pytest.raises(ApiError) as info:
            client.fetch_json(emu.base_url)
    error = info.value
    chain = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    assert "SECRETPART" not in chain
    assert "header could not be sent" in str(error) and emu.base_url in str(error)
    assert emu.requests == []


def test_a_429_with_no_measured_rate_only_pauses() -> None:
    clock = FakeClock()
    pacer = Pacer(clock)
    sent = pacer.acquire()
    pacer.on_throttle(1.0, sent, 0)
    assert pacer.rate is None  # one request tells no rate: no cap guessed from it
    after = pacer.acquire()
    assert after == pytest.approx(sent + 1.0)
    starts = [pacer.acquire() for _ in range(50)]
    assert starts[-1] == after  # no spacing: unlimited as before


def test_after_a_cut_the_measured_rate_comes_back_within_a_bounded_number_of_answers() -> None:
    clock = FakeClock()
    pacer = Pacer(clock)
    for _ in range(20):  # 100 requests per second, measured
        sent = pacer.acquire()
        clock.sleep(0.01)
    pacer.on_throttle(1.0, sent, 0)
    assert pacer.rate == pytest.approx(50.0, rel=0.05)
    for _ in range(16):
        pacer.on_success()
    assert pacer.rate == pytest.approx(100.0, rel=0.05)


def test_a_long_retry_after_teaches_a_per_minute_budget_that_never_climbs_back() -> None:
    clock = FakeClock()
    pacer = Pacer(clock)  # the Core client's pacer: no budget until the API shows one
    sent = [pacer.acquire() for _ in range(16)]
    for start in sent[:15]:
        pacer.on_success(start)
    pacer.on_throttle(59.0, sent[15], 0)  # a fixed window of 15 a minute refuses the 16th
    resumed = pacer.acquire()
    # the pause, and the admitted 15 still count: 62 s after the first of them
    assert resumed == pytest.approx(sent[0] + 62.0) and pacer.learned == 15
    assert pacer.rate is None  # a window, not a rate: nothing halved
    more = [pacer.acquire() for _ in range(30)]
    for start in more:
        pacer.on_success(start)
    window = 62.0  # a minute and the guard against latency
    assert all(sum(1 for s in [resumed, *more] if t <= s < t + window) <= 15
               for t in [resumed, *more])
    assert pacer.learned == 15  # successes do not raise it again
