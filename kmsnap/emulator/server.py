"""The emulator's HTTP server: routes, envelopes, pagination, auth, faults and request counts.

``Emulator`` serves a ``Catalog`` over real HTTP/1.1 with keep-alive on loopback, in
daemon threads, as the Kissmetrics Core API reference describes it.
"""

from __future__ import annotations

import re
import socket
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kmsnap.emulator.catalog import Catalog
from kmsnap.emulator.faults import HTML_500, HTML_503, REDIRECT_STATUSES, Fault, RandomFaults
from kmsnap.emulator.generate import generate_catalog
from kmsnap.emulator.routes import Answer, Router

_HOST_RE = re.compile(r"^(?:[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")
_MAX_DRAIN = 1 << 20  # bytes of a refused request body read to keep the connection usable


@dataclass(frozen=True)
class RequestRecord:
    """One request as the emulator saw it (``authorization`` is the header value received)."""

    method: str
    path: str
    query: str
    status: int
    authorization: str | None
    headers: dict[str, str] = field(default_factory=dict)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: Emulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (a bound hit, Ctrl-C) is no error: no traceback on stderr."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def version_string(self) -> str:
        return "kmsnap-emulator"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle's algorithm and the
        # client's delayed ACK add 40 ms to every response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.emulator._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.emulator._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silent: the emulator keeps its own request log."""

    def _dispatch(self) -> None:
        self.server.emulator._handle(self)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _dispatch


class Emulator:
    """The Kissmetrics Core API on a loopback port, for tests, benchmarks and the demo.

    ``catalog`` defaults to ``generate_catalog(size, seed)``. ``token`` is accepted for
    every account; ``add_token`` adds tokens limited to some accounts. ``latency_ms``
    delays every answer; ``fault_rate`` turns that share of requests (drawn from a rng
    seeded with ``seed``) into a 429 with ``Retry-After``, a 500 or 503 with an HTML
    body, or a body cut in the middle. Use as a context manager, or ``start()``/``stop()``.
    """

    def __init__(
        self,
        catalog: Catalog | None = None,
        *,
        size: int = 200,
        seed: int = 0,
        token: str | None = "demo-token",
        host: str = "127.0.0.1",
        port: int = 0,
        max_page_size: int = 100,
        latency_ms: float = 0,
        fault_rate: float = 0.0,
    ) -> None:
        if max_page_size < 1:
            raise ValueError("max_page_size must be at least 1")
        self.catalog = catalog if catalog is not None else generate_catalog(size=size, seed=seed)
        self.host = host
        self.port = port
        self.max_page_size = max_page_size
        self.latency_ms = latency_ms
        self.random_faults = RandomFaults(fault_rate, seed=seed)
        self.tokens: dict[str, frozenset[str] | None] = {}
        if token is not None:
            self.add_token(token)
        self.faults: list[Fault] = []
        self.request_counts: Counter[tuple[str, int]] = Counter()
        self.requests: list[RequestRecord] = []
        self.errors: list[BaseException] = []  # exceptions inside the emulator: bugs
        self.max_in_flight = 0
        self._in_flight = 0
        self._stats_lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._router = Router(self.catalog, self.tokens, self.max_page_size)

    # ------------------------------------------------------------- lifecycle

    def start(self) -> Emulator:
        """Bind, listen and serve in a daemon thread; returns once the socket accepts."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self.host, self.port), _Handler)  # binds and listens right here
        server.emulator = self
        self._server = server
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"kmsnap-emulator-{self.port}", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake stalled requests and close open connections."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        with self._stats_lock:
            connections = list(self._connections)
        for conn in connections:
            try:  # wakes handler threads blocked on an idle keep-alive connection
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """The API base URL, ``http://127.0.0.1:PORT/core`` (the port is known after start)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/core"

    # ------------------------------------------------------------ scripting

    def add_token(self, token: str, accounts: list[str] | None = None) -> None:
        """Accept ``token``; with ``accounts``, it sees only those accounts (others: 403)."""
        self.tokens[token] = frozenset(accounts) if accounts is not None else None

    def remove_token(self, token: str) -> None:
        """Stop accepting ``token`` (it then gets 401)."""
        self.tokens.pop(token, None)

    def inject(
        self,
        path: str,
        *,
        offset: int | None = None,
        status: int | None = None,
        times: int | None = 1,
        retry_after: str | int | None = None,
        body: str | bytes | None = None,
        content_type: str | None = None,
        cut_body: bool = False,
        stall_seconds: float = 0.0,
        redirect_to: str | None = None,
        action: Callable[[], object] | None = None,
    ) -> Fault:
        """Script a fault for the next ``times`` requests of ``path``; return it (see ``hits``).

        - ``path``: the request path without query (``/core/events``); a trailing ``*``
          matches a prefix (``/core/products/*``). Faults are tried in the order injected.
        - ``offset``: only the page at this offset (a request without ``offset`` is at 0);
          None matches every page and non-list requests.
        - ``times``: how many matching requests it answers; None for every one.
        - ``status``: answer this status instead of the real answer, with ``body`` (default:
          an HTML page for 5xx, a JSON error otherwise) and ``retry_after`` (seconds or an
          HTTP-date) as the ``Retry-After`` header.
        - ``cut_body``: send the headers with the full ``Content-Length``, then only half of
          the body (the real one, or the fault's), and close the connection.
        - ``stall_seconds``: wait this long before answering at all (for read timeouts);
          ``stop()`` ends the wait.
        - ``redirect_to``: answer ``status`` (default 307) with this ``Location``.
        - ``action``: called when a request matches, before answering (for example to
          change the catalog in the middle of a crawl); with nothing else set the request
          is then answered normally, from the changed catalog.
        """
        if redirect_to is not None and (status or 307) not in REDIRECT_STATUSES:
            raise ValueError(f"a redirect needs a 3xx status, not {status}")
        fault = Fault(
            path=path, offset=offset, status=status, times=times,
            retry_after=str(retry_after) if retry_after is not None else None,
            body=body.encode() if isinstance(body, str) else body, content_type=content_type,
            cut_body=cut_body, stall_seconds=stall_seconds, redirect_to=redirect_to,
            action=action,
        )
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Forget every scripted fault."""
        self.faults.clear()

    def reset_stats(self) -> None:
        """Clear ``request_counts``, ``requests``, ``errors`` and ``max_in_flight``."""
        with self._stats_lock:
            self.request_counts.clear()
            self.requests.clear()
            self.errors.clear()
            self.max_in_flight = self._in_flight

    def count(self, path: str | None = None, status: int | None = None) -> int:
        """Requests seen, optionally only those of ``path`` and/or ``status``."""
        with self._stats_lock:
            return sum(
                n for (p, s), n in self.request_counts.items()
                if (path is None or p == path) and (status is None or s == status)
            )

    # ------------------------------------------------------------- serving

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._stats_lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _handle(self, handler: _Handler) -> None:
        with self._stats_lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            self._respond(handler)
        finally:
            with self._stats_lock:
                self._in_flight -= 1

    def _respond(self, handler: _Handler) -> None:
        method = handler.command
        parts = urlsplit(handler.path)
        path = parts.path
        query = parse_qs(parts.query, keep_blank_values=True)
        if method not in ("GET", "HEAD"):
            self._drain(handler)
        offset = _loose_int(query.get("offset", [None])[0])
        fault = next((f for f in list(self.faults) if f.claim(path, offset)), None)
        if fault is not None:
            if fault.action is not None:
                fault.action()
            if fault.stall_seconds:
                self._stopping.wait(fault.stall_seconds)
        if self.latency_ms:
            self._stopping.wait(self.latency_ms / 1000)
        host = handler.headers.get("Host", "")
        base = f"http://{host}/core" if _HOST_RE.match(host) else self.base_url
        outcome = self.random_faults.draw() if fault is None else None
        cut = bool(fault and fault.cut_body) or bool(outcome and outcome.cut_body)
        if fault is not None and fault.redirect_to is not None:
            answer = Answer(fault.status or 307, b"", [("Location", fault.redirect_to)])
        elif fault is not None and fault.status is not None:
            answer = _fault_answer(fault)
        elif outcome is not None and outcome.status is not None:
            headers = [("Content-Type", outcome.content_type)]
            if outcome.retry_after is not None:
                headers.append(("Retry-After", outcome.retry_after))
            answer = Answer(outcome.status, outcome.body, headers)
        else:
            try:
                answer = self._router.answer(
                    method, path, query, handler.headers.get("Authorization"), base
                )
            except Exception as exc:  # a bug in the emulator: say so, keep serving
                self.errors.append(exc)
                answer = Answer.error(500, f"emulator error: {type(exc).__name__}: {exc}")
        self._log(handler, method, path, parts.query, answer.status)
        self._send(handler, answer, cut=cut, head=method == "HEAD")

    def _drain(self, handler: _Handler) -> None:
        length = _loose_int(handler.headers.get("Content-Length")) or 0
        if length > _MAX_DRAIN:
            handler.close_connection = True
            return
        if length:
            handler.rfile.read(length)

    def _log(self, handler: _Handler, method: str, path: str, query: str, status: int) -> None:
        record = RequestRecord(
            method, path, query, status, handler.headers.get("Authorization"),
            dict(handler.headers.items()),
        )
        with self._stats_lock:
            self.request_counts[(path, status)] += 1
            self.requests.append(record)

    def _send(self, handler: _Handler, answer: Answer, *, cut: bool, head: bool) -> None:
        try:
            handler.send_response(answer.status)
            for name, value in answer.headers:
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(answer.body)))
            handler.end_headers()
            if head:
                return
            if cut:
                # A connection dropped mid-body: the client sees fewer bytes than announced.
                handler.wfile.write(answer.body[: len(answer.body) // 2])
                handler.wfile.flush()
                handler.close_connection = True
                handler.connection.shutdown(socket.SHUT_RDWR)
                return
            handler.wfile.write(answer.body)
        except OSError:  # the client went away (or timed out during a stall)
            handler.close_connection = True


def _loose_int(value: str | None) -> int | None:
    """An int from a query or header value, or None when it is not a plain non-negative int."""
    if value is None or not value.isascii() or not value.isdigit():
        return None
    return int(value)


def _fault_answer(fault: Fault) -> Answer:
    status = fault.status or 500
    headers: list[tuple[str, str]] = []
    if fault.retry_after is not None:
        headers.append(("Retry-After", fault.retry_after))
    if fault.body is not None:
        headers.append(("Content-Type", fault.content_type or "text/html; charset=utf-8"))
        return Answer(status, fault.body, headers)
    if status >= 500:
        html = HTML_503 if status == 503 else HTML_500
        headers.append(("Content-Type", fault.content_type or "text/html; charset=utf-8"))
        return Answer(status, html.encode(), headers)
    answer = Answer.error(status, "injected fault")
    answer.headers.extend(headers)
    return answer


__all__ = ["Emulator", "RequestRecord"]
