"""The HTTP transport every source shares: origin checks, timeouts, retries, shared pacing,
and the bounds on what a server may send (body size, time, Retry-After).

Every request is a GET to the API's own origin (scheme, host, port of the root URL); the
credentials are attached per request after that check (``Transport._authorization``) and
never stored on the session. Every piece of text from a server that reaches an error line
goes through ``scrub`` first, with every secret of the credentials (``Transport._secrets``).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies
from urllib3._version import __version__ as urllib3_version
from urllib3.exceptions import MaxRetryError

from kmsnap import __version__
from kmsnap.errors import (
    ApiError,
    AuthError,
    BoundError,
    DeadlineError,
    UnsafeUrlError,
)
from kmsnap.sources.pacing import (
    RETRY_AFTER_CAP,
    RETRYING,
    WAIT_NOTICE,
    Clock,
    Deadline,
    DeadlinePassed,
    DeadlineTimeout,
    Pacer,
    SystemClock,
    WaitHook,
    backoff_delay,
    make_retry,
    parse_retry_after,
    refused,
    retry_after_seconds,
)
from kmsnap.sources.watchdog import Watch, Watchdog, WatchedAdapter, WatchedDeadline, current

MAX_BODY_BYTES = 32 * 1024 * 1024  # one answer, decompressed; real pages are well under 1 MiB
MAX_RETRY_AFTER = RETRY_AFTER_CAP  # seconds: a longer Retry-After fails the request at once
RESPONSE_TIME_FACTOR = 10  # one attempt (send to last byte) may take this many --timeout
CHUNK_BYTES = 4 * 1024  # compressed, read at a time: gzip or deflate of it is <= ~4 MiB decoded
# Read at a time when a read cannot decode to more than it asks for (identity, or urllib3's
# bounded decoders): 16 times fewer reads of a 66 KB page, each a trip through four layers
# of Python and a GIL hand-off (about a tenth of a pull's CPU at 4 KiB).
PLAIN_CHUNK_BYTES = 64 * 1024
MAX_REDIRECTS = 5
MAX_THROTTLES = 8  # 429s answered for one request before giving up
MAX_BROKEN = 4  # cut-off bodies, broken connections mid-body and unreadable JSON, per request
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Origin:
    """Scheme, host and port: where the token may go."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def origin_of(url: str) -> Origin | None:
    """The origin of an absolute http(s) URL, or None when it has none."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return Origin(scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme])


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: str) -> Origin:
    """The API root's origin; refuses, before anything is sent, what would expose the token."""
    origin = origin_of(url)
    if origin is None:
        raise UnsafeUrlError(f"not an http(s) URL: {url}", url=url)
    if urlsplit(url).username is not None or "@" in urlsplit(url).netloc:
        # requests would send user:password as Basic auth in place of the token
        raise UnsafeUrlError(f"refusing an API URL with credentials in it: {origin}", url=None)
    if origin.scheme == "http" and not is_loopback(origin.host):
        raise UnsafeUrlError(
            f"refusing to send the token over plain http to {origin.host}; use https://",
            url=url,
        )
    return origin


# Text of these can hold header values (the token): never shown, a fixed message instead.
_HEADER_FAILURES = (requests.exceptions.InvalidHeader, UnicodeError)
_HEADER_FAILURE_TEXT = "a request header could not be sent (the token has characters HTTP " \
    "headers cannot carry)"


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e]")


def _encoded_forms(secret: str) -> set[str]:
    raw = secret.encode("utf-8", "surrogatepass")
    forms = {secret, quote(secret, safe=""), quote_plus(secret, safe="")}
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode("ascii")
        forms |= {text, text.rstrip("=")}
    return {form for form in forms if len(form) >= 4}


def scrub(text: object, secrets: Iterable[str], limit: int = 200) -> str:
    """``text`` (from a server) fit for an error line: control characters dropped, every
    secret (as is, percent- or base64-encoded, any case of the hex) replaced by ``<token>``,
    cut to ``limit`` characters."""
    clean = _CONTROL.sub("", str(text))
    for secret in secrets:
        if not secret:
            continue
        for form in sorted(_encoded_forms(secret), key=len, reverse=True):
            clean = re.sub(re.escape(form), "<token>", clean, flags=re.IGNORECASE)
    if len(clean) > limit:
        clean = clean[: max(limit - 3, 0)] + "..."
    return clean


# urllib3 before 2.6 decodes a whole read at once: gzip or deflate of 4 KiB gives at most
# ~4 MiB, but stacked codings or brotli/zstd could give gigabytes. Those it then refuses.
_BOUNDED_DECODERS = tuple(int(p) for p in re.findall(r"\d+", urllib3_version)[:2]) >= (2, 6)
_SAFE_CODINGS = frozenset({"", "identity", "gzip", "x-gzip", "deflate"})


def _mib(size: int) -> str:
    return f"{size // 2**20} MiB" if size % 2**20 == 0 else f"{size} bytes"


def _seconds(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:g}"


@dataclass
class Envelope:
    """One decoded answer: the URL it finally came from and its JSON object."""

    url: str
    status: int
    body: dict[str, Any]


def _describe(exc: requests.RequestException) -> str:
    """A short cause for a transport failure, without the wrapped pool reprs or headers."""
    if isinstance(exc, _HEADER_FAILURES):
        return _HEADER_FAILURE_TEXT
    reason: object = exc.args[0] if exc.args else exc
    if isinstance(reason, MaxRetryError) and reason.reason is not None:
        reason = reason.reason
    text = str(reason)
    if text.startswith("<") and ">: " in text:  # "<HTTPConnection object at 0x..>: Failed ..."
        text = text.split(">: ", 1)[1]
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return f"answer cut off ({text})"
    return f"{type(reason).__name__}: {text}" if text else type(reason).__name__


def _looks_html(response: requests.Response, content: bytes) -> bool:
    """An HTML page (a login portal, a web server's default page): not the API, never JSON."""
    kind = (response.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    return kind in ("text/html", "application/xhtml+xml") or content.lstrip()[:1] == b"<"


def _urllib3_gave_up(exc: requests.RequestException) -> bool:
    """True when urllib3's Retry already retried this failure until it ran out."""
    return bool(exc.args) and isinstance(exc.args[0], MaxRetryError)

def _ca_bundle(origin: Origin) -> bool | str:
    """``verify`` for requests: the CA bundle the environment names, else the default ones.

    A bundle that does not exist would fail every https request inside requests as an
    OSError (an "internal error"): refused here in one line instead. Plain http (loopback
    only) has no certificate to check, and requests would stat a bundle once per request."""
    if origin.scheme != "https":
        return True
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        bundle = os.environ.get(name)
        if not bundle:
            continue
        if not os.path.exists(bundle):
            raise ApiError(f"{name} names {bundle}, which does not exist: point it at a CA "
                           f"bundle file or unset it to reach {origin}")
        return bundle
    return True


class Transport:
    """GETs JSON from one API origin with credentials, retries and shared pacing, within bounds.

    A source's client subclasses it and says how it authenticates (``_authorization``, the
    header value, built per request), what is secret (``_secrets``: scrubbed from every line)
    and what a 401/403 means (``_auth_message``). ``throttle_statuses`` are answered by the
    shared pacer (everyone pauses, the budget is learned) instead of per-request retries;
    ``per_minute`` is a budget of request starts in any minute shared by every worker.

    Thread-safe: workers share one client. ``requests`` counts HTTP requests sent,
    retries and redirects included. Bounds: ``max_body`` bytes of one answer (decompressed,
    counted while streaming), ``deadline`` seconds for everything the client does (from its
    construction, on ``clock``: every timeout, wait and body read is cut to what is left),
    ``max_retry_after`` seconds of one ``Retry-After`` (an answer asking longer fails at once).
    """

    throttle_hint = "try a lower --max-rps"

    def __init__(
        self,
        base_url: str,
        *,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        concurrency: int = 8,
        max_rps: float | None = None,
        clock: Clock | None = None,
        max_body: int = MAX_BODY_BYTES,
        deadline: float | None = None,
        max_retry_after: float = MAX_RETRY_AFTER,
        per_minute: int | None = None,
        throttle_statuses: frozenset[int] = frozenset({429}),
        backoff_base: float | None = None,
    ) -> None:
        self.origin = check_base_url(base_url)
        clock = clock if clock is not None else SystemClock()
        self.throttle_statuses = throttle_statuses
        self._timeout = (timeout, timeout)
        self._clock = clock
        self.max_body = max_body
        self.max_retry_after = max_retry_after
        self.deadline: Deadline = WatchedDeadline(clock, deadline)
        self._watchdog = Watchdog(clock)
        self.pacer = Pacer(clock, max_rps, deadline=self.deadline, max_wait=max_retry_after,
                           per_minute=per_minute, backoff_base=backoff_base)
        self._own_session = session is None
        self._session = session if session is not None else requests.Session()
        self._lock = threading.Lock()
        self.requests = 0
        self._configure(self._session, concurrency)
        # trust_env is off (see _configure), so honour proxies and CA bundles from the
        # environment explicitly; never through a proxy for loopback, where it would be clear text.
        self._proxies: dict[str, str] = (
            {} if is_loopback(self.origin.host) else dict(get_environ_proxies(base_url))
        )
        self._verify: bool | str = _ca_bundle(self.origin)
        self.on_wait: WaitHook | None = None  # told of retry backoffs and pauses (progress)
        self.pacer.on_wait = self._tell_wait

    def _configure(self, session: requests.Session, concurrency: int) -> None:
        # requests lets a ~/.netrc entry replace the Authorization header, and reads it (and
        # proxy and CA settings) only when trust_env is on: off it goes, proxies are re-added
        # by hand above.
        session.trust_env = False
        session.auth = None
        session.headers.pop("Authorization", None)
        if session.verify is False:
            session.verify = True
        for prefix in ("https://", "http://"):
            if type(session.get_adapter(prefix)) is HTTPAdapter:
                adapter = WatchedAdapter(
                    pool_connections=2,
                    pool_maxsize=max(concurrency, 10),
                    max_retries=make_retry(
                        self._clock, deadline=self.deadline, max_retry_after=self.max_retry_after,
                        leave=self.throttle_statuses, on_wait=self._tell_wait,
                    ),
                )
                session.mount(prefix, adapter)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(origin={str(self.origin)!r}, credentials=<hidden>)"

    def _tell_wait(self, seconds: float, reason: str) -> None:
        hook = self.on_wait
        if hook is not None:
            hook(seconds, reason)

    def _backoff(self, attempt: int) -> None:
        delay = backoff_delay(attempt)
        if delay >= WAIT_NOTICE:
            self._tell_wait(delay, RETRYING)
        self.deadline.sleep(delay)

    # -- what a subclass says about its credentials ----------------------------------------

    def _authorization(self) -> str:
        """The ``Authorization`` header value, built per request (never kept on the session)."""
        raise NotImplementedError

    def _secrets(self) -> tuple[str, ...]:
        """Every string that must never reach an error line (the header value included)."""
        return ()

    def _auth_message(self, url: str, status: int) -> str:
        return f"GET {self._url(url)}: HTTP {status}: the credentials were refused"

    def close(self) -> None:
        self._watchdog.close()
        if self._own_session:
            self._session.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cancel(self) -> None:
        """Abandon the pull: end pauses and backoffs now, start no more requests."""
        self.pacer.cancel()
        interrupt = getattr(self._clock, "interrupt", None)
        if callable(interrupt):
            interrupt()

    def time_left(self) -> float | None:
        """Seconds left of the deadline: None without one, <= 0 once it passed."""
        return self.deadline.left()

    def same_origin(self, url: str) -> bool:
        return origin_of(url) == self.origin and urlsplit(url).username is None

    def _scrub(self, text: object, limit: int = 200) -> str:
        return scrub(text, self._secrets(), limit)

    def _url(self, url: str) -> str:
        """A URL for an error line: next links and redirects come from the server."""
        return self._scrub(url, 500)

    def _deadline_error(self, url: str) -> DeadlineError:
        return DeadlineError(
            f"GET {self._url(url)}: the pull's deadline of {_seconds(self.deadline.seconds or 0)}"
            " s passed (--deadline)",
            url=url,
        )

    def fetch_json(self, url: str) -> Envelope:
        """GET ``url`` (same origin only) and return its JSON object.

        Retries cut-off bodies, waits out 429s with every other worker, and raises
        ``ApiError`` (``AuthError`` for 401/403, ``BoundError`` for an answer over a bound,
        ``DeadlineError`` past the deadline) naming the URL and the last status.
        """
        try:
            return self._fetch_json(url)
        except DeadlinePassed:
            raise self._deadline_error(url) from None

    def _fetch_json(self, url: str) -> Envelope:
        if not self.same_origin(url):
            raise UnsafeUrlError(
                f"not sending the credentials to another origin: {self._url(url)}", url=url
            )
        throttled = 0
        broken = 0
        while True:  # bounded: each pass either returns, raises or uses up a counter
            self.deadline.check()
            sent_at = self.pacer.acquire()
            try:
                final_url, response, content = self._get(url)
            except (
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ConnectionError,
                requests.exceptions.ReadTimeout,
            ) as exc:
                self.deadline.check()
                if refused(exc):
                    raise ApiError(
                        f"GET {self._url(url)} failed: nothing listens at {self.origin} "
                        "(connection refused); check --api / KMSNAP_API", url=url
                    ) from None
                if _urllib3_gave_up(exc) or broken >= MAX_BROKEN:
                    raise ApiError(
                        f"GET {self._url(url)} failed: {self._scrub(_describe(exc))}", url=url
                    ) from None
                broken += 1
                self._backoff(broken)
                continue
            except _HEADER_FAILURES:
                # Their text holds the header value: not chained, so no traceback shows it.
                raise ApiError(
                    f"GET {self._url(url)} failed: {_HEADER_FAILURE_TEXT}", url=url
                ) from None
            except requests.RequestException as exc:
                raise ApiError(
                    f"GET {self._url(url)} failed: {self._scrub(_describe(exc))}", url=url
                ) from None
            status = response.status_code
            self._check_retry_after(final_url, response)
            if status in self.throttle_statuses:
                if throttled >= MAX_THROTTLES:
                    reason = "Too Many Requests" if status == 429 else "Service Unavailable"
                    raise ApiError(
                        f"GET {self._url(final_url)} failed: HTTP {status} {reason}, "
                        f"still after {throttled} pauses; {self.throttle_hint}",
                        url=final_url,
                        status=status,
                    )
                retry_after = parse_retry_after(
                    response.headers.get("Retry-After"), self._clock, self.max_retry_after
                )
                self.pacer.on_throttle(retry_after, sent_at, throttled)
                throttled += 1
                continue
            if status in (401, 403):
                raise AuthError(self._auth_message(final_url, status), url=final_url, status=status)
            if status >= 300:
                attempts = self._attempts(response)
                after = f" after {attempts} attempts" if attempts > 1 else ""
                reason = self._scrub(response.reason or "", 80)
                raise ApiError(
                    f"GET {self._url(final_url)} failed: HTTP {status} {reason}".rstrip() + after,
                    url=final_url,
                    status=status,
                )
            if _looks_html(response, content):
                # A portal or a web server's page (a wrong --api, a proxy's login): the same
                # page again on every retry, so refused at once, not after five tries.
                raise ApiError(
                    f"GET {self._url(final_url)}: HTTP {status} answered HTML, not the API's "
                    "JSON: is --api right?", url=final_url, status=status,
                )
            try:
                body = json.loads(content)
            except ValueError:
                # A body cut off after the headers (no Content-Length to catch it) lands here.
                if broken >= MAX_BROKEN:
                    raise ApiError(
                        f"GET {self._url(final_url)} failed: HTTP {status} answer is not JSON "
                        f"(cut off or not the API?) after {broken + 1} attempts",
                        url=final_url,
                        status=status,
                    ) from None
                broken += 1
                self._backoff(broken)
                continue
            if not isinstance(body, dict):
                raise ApiError(
                    f"GET {self._url(final_url)}: HTTP {status} answer is not a JSON object",
                    url=final_url,
                    status=status,
                )
            self.pacer.on_success(sent_at)
            return Envelope(final_url, status, body)

    def _check_retry_after(self, url: str, response: requests.Response) -> None:
        """Refuse at once an answer asking to wait longer than ``max_retry_after``."""
        if response.status_code < 300:
            return
        asked = retry_after_seconds(response.headers.get("Retry-After"), self._clock)
        if asked is not None and asked > self.max_retry_after:
            shown = "a very long time" if asked > 1e12 else f"{asked:.0f} s"
            raise BoundError(
                f"GET {self._url(url)}: HTTP {response.status_code}: the API asks to wait "
                f"{shown}, more than the {_seconds(self.max_retry_after)} s kmsnap waits "
                "(--max-retry-after)",
                url=url,
                status=response.status_code,
            )

    def _get(self, url: str) -> tuple[str, requests.Response, bytes]:
        """One GET with its redirects followed by hand, same origin only, under the watchdog."""
        connect, read = self._timeout
        watch = Watch(self.deadline.end, RESPONSE_TIME_FACTOR * read)
        self._watchdog.add(watch)
        current.watch, current.clock = watch, self._clock
        try:
            got = self._get_watched(url, DeadlineTimeout(connect, read, self.deadline))
        except (requests.RequestException, OSError, ValueError):
            self._raise_if_fired(watch, url)
            raise
        finally:
            current.watch = None
            self._watchdog.remove(watch)
        self._raise_if_fired(watch, url)  # a shut socket can also look like the end of a body
        return got

    def _raise_if_fired(self, watch: Watch, url: str) -> None:
        if watch.fired == "deadline":
            raise DeadlinePassed() from None
        if watch.fired == "slow":
            raise BoundError(
                f"GET {self._url(url)}: the answer took more than {_seconds(watch.budget)} s "
                f"({RESPONSE_TIME_FACTOR} x --timeout); refusing it",
                url=url,
            ) from None

    def _get_watched(
        self, url: str, timeout: DeadlineTimeout
    ) -> tuple[str, requests.Response, bytes]:
        for _ in range(MAX_REDIRECTS + 1):
            headers = {
                "Accept": "application/json",
                "Accept-Encoding": "gzip, deflate",
                "User-Agent": f"kmsnap/{__version__}",
                "Authorization": self._authorization(),
            }
            response = self._session.get(
                url,
                headers=headers,
                timeout=timeout,  # type: ignore[arg-type]  # requests takes a urllib3 Timeout
                allow_redirects=False,
                stream=True,
                verify=self._verify,
                proxies=self._proxies,
            )
            with response:
                with self._lock:
                    self.requests += self._attempts(response)
                location = response.headers.get("Location")
                if response.status_code in REDIRECT_STATUSES and location:
                    target = urljoin(url, location)
                    if not self.same_origin(target):
                        shown = self._scrub(origin_of(target) or target)
                        raise UnsafeUrlError(
                            f"GET {self._url(url)}: HTTP {response.status_code} redirects to "
                            f"another origin ({shown}); not following it with the credentials",
                            url=url,
                            status=response.status_code,
                        )
                    url = target
                    continue
                if not 200 <= response.status_code < 300:
                    return url, response, b""  # only the status and headers are used
                return url, response, self._read_body(url, response)
        raise ApiError(f"GET {self._url(url)} failed: more than {MAX_REDIRECTS} redirects", url=url)

    def _read_body(self, url: str, response: requests.Response) -> bytes:
        """The decoded body, refused as soon as it passes ``max_body`` or the deadline."""
        too_big = BoundError(
            f"GET {self._url(url)}: the answer is larger than {_mib(self.max_body)} "
            "(--max-response-mb); refusing it",
            url=url,
            status=response.status_code,
        )
        length = (response.headers.get("Content-Length") or "").strip()
        if length.isascii() and length.isdigit() and int(length) > self.max_body:
            raise too_big
        coding = (response.headers.get("Content-Encoding") or "").strip().lower()
        if not _BOUNDED_DECODERS and coding not in _SAFE_CODINGS:
            raise BoundError(
                f"GET {self._url(url)}: the answer is encoded as {self._scrub(coding, 40)!r}, "
                "not gzip or deflate as asked; refusing it",
                url=url,
                status=response.status_code,
            )
        plain = _BOUNDED_DECODERS or coding in ("", "identity")
        body = bytearray()
        for chunk in response.iter_content(PLAIN_CHUNK_BYTES if plain else CHUNK_BYTES):
            body += chunk
            if len(body) > self.max_body:
                raise too_big
            self.deadline.check()
        return bytes(body)

    @staticmethod
    def _attempts(response: requests.Response) -> int:
        """Requests behind one response: urllib3 keeps the retried ones in its history."""
        retries = getattr(response.raw, "retries", None)
        history = getattr(retries, "history", ()) or ()
        return 1 + len(history)
