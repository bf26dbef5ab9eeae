"""HTTP client for the Kissmetrics Core API: origin checks, token, timeouts, retries, 429 pacing.

Every request is a GET to the API's own origin (scheme, host, port of the root URL); the
token is attached per request after that check and never stored on the session.
"""

from __future__ import annotations

import ipaddress
import json
import os
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies
from urllib3.exceptions import MaxRetryError

from kmsnap import __version__
from kmsnap.errors import ApiError, AuthError, TokenError, UnsafeUrlError
from kmsnap.pacing import (
    Clock,
    Pacer,
    SystemClock,
    backoff_delay,
    make_retry,
    parse_retry_after,
)

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


def token_problem(token: str) -> str | None:
    """What makes ``token`` unusable in an ``Authorization`` header, or None; never its value.

    RFC 6750 tokens are ``A-Za-z0-9-._~+/`` with trailing ``=``; any visible ASCII character
    is let through, but whitespace, control and non-ASCII characters are refused: requests
    would put the whole header value (the token) into its error message.
    """
    if not token:
        return "is empty"
    if "\n" in token or "\r" in token:
        return "contains a line break"
    for char in token:
        if char.isspace():
            return "contains whitespace"
        if not char.isascii():
            return "contains a non-ASCII character"
        if not char.isprintable():
            return "contains a control character"
    return None


# Text of these can hold header values (the token): never shown, a fixed message instead.
_HEADER_FAILURES = (requests.exceptions.InvalidHeader, UnicodeError)
_HEADER_FAILURE_TEXT = "a request header could not be sent (the token has characters HTTP " \
    "headers cannot carry)"


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


def _urllib3_gave_up(exc: requests.RequestException) -> bool:
    """True when urllib3's Retry already retried this failure until it ran out."""
    return bool(exc.args) and isinstance(exc.args[0], MaxRetryError)


class ApiClient:
    """GETs JSON from one API origin with the token, retries and shared pacing.

    Thread-safe: workers share one client. ``requests`` counts HTTP requests sent,
    retries and redirects included.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        concurrency: int = 8,
        max_rps: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.origin = check_base_url(base_url)
        problem = token_problem(token) if isinstance(token, str) else "is not a string"
        if problem is not None:
            raise TokenError(f"the API token {problem}; it must be visible ASCII characters")
        clock = clock if clock is not None else SystemClock()
        self._token = token
        self._timeout = (timeout, timeout)
        self._clock = clock
        self.pacer = Pacer(clock, max_rps)
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
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        self._verify: bool | str = ca_bundle or True

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
                adapter = HTTPAdapter(
                    pool_connections=2,
                    pool_maxsize=max(concurrency, 10),
                    max_retries=make_retry(self._clock),
                )
                session.mount(prefix, adapter)

    def __repr__(self) -> str:
        return f"ApiClient(origin={str(self.origin)!r}, token=<hidden>)"

    def close(self) -> None:
        if self._own_session:
            self._session.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cancel(self) -> None:
        """Abandon the pull: end pauses and backoffs now, start no more requests."""
        self.pacer.cancel()
        interrupt = getattr(self._clock, "interrupt", None)
        if callable(interrupt):
            interrupt()

    def same_origin(self, url: str) -> bool:
        return origin_of(url) == self.origin and urlsplit(url).username is None

    def fetch_json(self, url: str) -> Envelope:
        """GET ``url`` (same origin only) and return its JSON object.

        Retries cut-off bodies, waits out 429s with every other worker, and raises
        ``ApiError`` (``AuthError`` for 401/403) naming the URL and the last status.
        """
        if not self.same_origin(url):
            raise UnsafeUrlError(f"not sending the token to another origin: {url}", url=url)
        throttled = 0
        broken = 0
        while True:  # bounded: each pass either returns, raises or uses up a counter
            sent_at = self.pacer.acquire()
            try:
                final_url, response, content = self._get(url)
            except (
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ConnectionError,
                requests.exceptions.ReadTimeout,
            ) as exc:
                if _urllib3_gave_up(exc) or broken >= MAX_BROKEN:
                    raise ApiError(f"GET {url} failed: {_describe(exc)}", url=url) from exc
                broken += 1
                self._clock.sleep(backoff_delay(broken))
                continue
            except _HEADER_FAILURES:
                # Their text holds the header value: not chained, so no traceback shows it.
                raise ApiError(f"GET {url} failed: {_HEADER_FAILURE_TEXT}", url=url) from None
            except requests.RequestException as exc:
                raise ApiError(f"GET {url} failed: {_describe(exc)}", url=url) from exc
            status = response.status_code
            if status == 429:
                if throttled >= MAX_THROTTLES:
                    raise ApiError(
                        f"GET {final_url} failed: HTTP 429 Too Many Requests, "
                        f"still after {throttled} pauses; try a lower --max-rps",
                        url=final_url,
                        status=status,
                    )
                retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock)
                self.pacer.on_throttle(retry_after, sent_at, throttled)
                throttled += 1
                continue
            if status in (401, 403):
                raise AuthError(self._auth_message(final_url, status), url=final_url, status=status)
            if status >= 300:
                attempts = self._attempts(response)
                after = f" after {attempts} attempts" if attempts > 1 else ""
                raise ApiError(
                    f"GET {final_url} failed: HTTP {status} {response.reason or ''}".rstrip()
                    + after,
                    url=final_url,
                    status=status,
                )
            try:
                body = json.loads(content)
            except ValueError as exc:
                # A body cut off after the headers (no Content-Length to catch it) lands here.
                if broken >= MAX_BROKEN:
                    raise ApiError(
                        f"GET {final_url} failed: HTTP {status} answer is not JSON "
                        f"(cut off or not the API?) after {broken + 1} attempts",
                        url=final_url,
                        status=status,
                    ) from exc
                broken += 1
                self._clock.sleep(backoff_delay(broken))
                continue
            if not isinstance(body, dict):
                raise ApiError(
                    f"GET {final_url}: HTTP {status} answer is not a JSON object",
                    url=final_url,
                    status=status,
                )
            self.pacer.on_success()
            return Envelope(final_url, status, body)

    def _auth_message(self, url: str, status: int) -> str:
        if status == 401:
            return (
                f"GET {url}: HTTP 401: the API token was refused; check KISSMETRICS_TOKEN or "
                "--token-file (a Personal Token from Account settings > Manage API Tokens)"
            )
        return (
            f"GET {url}: HTTP 403: the token may not see this; use a token of a user with "
            "access to the account, or remove the link's account from the token's scope"
        )

    def _get(self, url: str) -> tuple[str, requests.Response, bytes]:
        """One GET with its redirects followed by hand, same origin only."""
        for _ in range(MAX_REDIRECTS + 1):
            headers = {
                "Accept": "application/json",
                "User-Agent": f"kmsnap/{__version__}",
                "Authorization": "Bearer " + self._token,
            }
            response = self._session.get(
                url,
                headers=headers,
                timeout=self._timeout,
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
                        raise UnsafeUrlError(
                            f"GET {url}: HTTP {response.status_code} redirects to another "
                            f"origin ({origin_of(target) or target}); not following it "
                            "with the token",
                            url=url,
                            status=response.status_code,
                        )
                    url = target
                    continue
                return url, response, response.content
        raise ApiError(f"GET {url} failed: more than {MAX_REDIRECTS} redirects", url=url)

    @staticmethod
    def _attempts(response: requests.Response) -> int:
        """Requests behind one response: urllib3 keeps the retried ones in its history."""
        retries = getattr(response.raw, "retries", None)
        history = getattr(retries, "history", ()) or ()
        return 1 + len(history)
