"""The REST API v3's catalog routes as request -> answer functions: Basic auth, rate, paging.

Four routes, offset/limit paging and nothing else: no totals, no links, no single-item
GET. Errors use v3's published body, ``{"status": N, "messages": [...]}``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from kmsnap.emulator.catalog import Catalog
from kmsnap.emulator.faults import HTML_503
from kmsnap.emulator.routes import Answer, Router
from kmsnap.emulator.v3_records import KIND_OF, Envelope, IdMap, to_v3

DEFAULT_LIMIT = 50
OVER_LIMIT_FORMS: tuple[str, ...] = ("429-retry-after", "429", "503", "503-retry-after")
_CHILDREN = ("reports", "events", "properties")
_MESSAGES = {
    400: "Bad Request.",
    401: "Unauthenticated.",
    403: "You are not authorized to access this page.",
    404: "Not Found.",
    405: "Method Not Allowed.",
    429: "Too Many Requests.",
}


def v3_error(status: int, headers: list[tuple[str, str]] | None = None) -> Answer:
    """v3's error body: ``{"status": 401, "messages": ["Unauthenticated."]}``."""
    return Answer.json(status, {"status": status, "messages": [_MESSAGES[status]]}, headers)


class RateLimiter:
    """A fixed window of ``per_minute`` admitted requests per clock minute (None: no limit).

    Windows are the clock's whole minutes (``clock() // 60``); refused requests do not
    use up the window. ``clock`` is injectable so tests move time instead of waiting.
    """

    def __init__(self, per_minute: int | None, clock: Callable[[], float]) -> None:
        if per_minute is not None and per_minute < 1:
            raise ValueError("rate_per_minute must be at least 1 (or None for no limit)")
        self.per_minute = per_minute
        self.clock = clock
        self.admitted = 0  # in the current window
        self.refused = 0  # over the limiter's life
        self._window: int | None = None
        self._lock = threading.Lock()

    def admit(self) -> float | None:
        """None when the request may go on; else the seconds until the window ends."""
        if self.per_minute is None:
            return None
        with self._lock:
            now = self.clock()
            window = int(now // 60)
            if window != self._window:
                self._window, self.admitted = window, 0
            if self.admitted < self.per_minute:
                self.admitted += 1
                return None
            self.refused += 1
            return (window + 1) * 60 - now

    def reset(self) -> None:
        """Start a fresh window at the next request (the refusal count is kept)."""
        with self._lock:
            self._window, self.admitted = None, 0


def over_limit_answer(form: str, wait: float) -> Answer:
    """The refusal for one ``OVER_LIMIT_FORMS`` form; ``Retry-After`` in whole seconds (>= 1)."""
    headers = [("Retry-After", str(max(1, math.ceil(wait))))] if "retry-after" in form else []
    if form.startswith("503"):
        return Answer(503, HTML_503.encode(), [("Content-Type", "text/html"), *headers])
    return v3_error(429, headers)


class V3Settings(Protocol):
    """What the v3 router reads of its emulator (``EmulatorV3``), live at each request: tests
    change credentials and settings of a running emulator. A protocol, so this module does
    not import the emulator that imports it."""

    catalog: Catalog
    tokens: dict[str, frozenset[str] | None]
    max_page_size: int
    username: str | None
    password: str | None
    api_key: str | None
    envelope: Envelope
    max_limit: int | None
    limiter: RateLimiter
    over_limit: str
    usage: bool
    live_fields: bool
    extra_fields: dict[str, Mapping[str, Any]]
    ids: IdMap

    def is_forbidden(self, number: int, core_id: str | None = None) -> bool:
        """Whether the product with v3 id ``number`` (Core id ``core_id``) answers 403."""
        ...


class V3Router(Router):
    """Answers one request from an ``EmulatorV3``'s catalog, credentials and settings."""

    def __init__(self, emulator: V3Settings) -> None:
        super().__init__(emulator.catalog, emulator.tokens, emulator.max_page_size)
        self.v3 = emulator

    def answer(
        self, method: str, path: str, query: dict[str, list[str]], authorization: str | None,
        base: str,
    ) -> Answer:
        """The answer to ``method path?query`` (``base`` is unused: v3 sends no links)."""
        emu = self.v3
        if method != "GET":
            return v3_error(405, [("Allow", "GET")])
        if not self._authorized(authorization):
            return v3_error(401, [("WWW-Authenticate", 'Basic realm="Kissmetrics"')])
        wait = emu.limiter.admit()
        if wait is not None:
            return over_limit_answer(emu.over_limit, wait)
        parts = path.rstrip("/").split("/")
        if parts[:3] != ["", "v3", "products"] or len(parts) not in (3, 5):
            return v3_error(404)
        try:
            offset = _param(query, "offset", 0)
            limit = _param(query, "limit", DEFAULT_LIMIT)
        except ValueError:
            return Answer(400, b"", [("Content-Type", "application/json")])
        if limit < 1:
            return Answer(400, b"", [("Content-Type", "application/json")])
        if emu.max_limit is not None:
            limit = min(limit, emu.max_limit)  # silently: the answer does not say so
        catalog = emu.catalog
        resource = "products" if len(parts) == 3 else parts[4]
        extra = emu.extra_fields.get(resource)
        with catalog.lock:  # one catalog version for the ids and the page
            emu.ids.sync(catalog)
            parent = None
            if resource != "products":
                number = _plain_int(parts[3])
                core = emu.ids.core_of("product", number) if number is not None else None
                product = catalog.get("product", core) if core is not None else None
                if resource not in _CHILDREN or product is None or number is None:
                    return v3_error(404)
                if emu.is_forbidden(number, core):
                    return v3_error(403)
                parent = product["id"]
            kind = KIND_OF[resource]
            records = [
                to_v3(kind, r, emu.ids, usage=emu.usage, live_fields=emu.live_fields, extra=extra)
                for r in catalog.listing(kind, parent)[offset:offset + limit]
            ]
        return Answer.json(200, {key: records for key in emu.envelope[resource]})

    def _authorized(self, authorization: str | None) -> bool:
        scheme, _, encoded = (authorization or "").strip().partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(encoded.strip(), validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        if not sep:
            return False
        emu = self.v3
        if emu.username is not None and emu.password is not None:
            if _same(user, emu.username) & _same(password, emu.password):
                return True
        return emu.api_key is not None and _same(user, emu.api_key) and password == b""


def _same(given: bytes, expected: str) -> bool:
    return hmac.compare_digest(given, expected.encode())


def _plain_int(value: str) -> int | None:
    return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else None


def _param(query: dict[str, list[str]], name: str, default: int) -> int:
    values = query.get(name)
    if not values:
        return default
    number = _plain_int(values[0])
    if number is None:
        raise ValueError(f"{name} must be a non-negative integer")
    return number
