"""A tiny hostile HTTP server on loopback for tests (no tests here): any raw answer, by hand.

Usage::

    from hostile import serve, send

    def handler(request: BaseHTTPRequestHandler) -> None:
        send(request, 200, b'{"data": []}', reason="OK")

    with serve(handler) as base_url:          # "http://127.0.0.1:PORT", no path
        ApiClient(base_url + "/core", TOKEN).fetch_json(base_url + "/core")

The stable API:

- ``serve(handler_fn, *, protocol="HTTP/1.0") -> ContextManager[str]``: a
  ``ThreadingHTTPServer`` on ``127.0.0.1`` port 0, its socket bound and listening before
  the serving thread starts (that is the readiness signal: no sleeps). Every GET (and HEAD)
  calls ``handler_fn(request)`` in its own daemon thread; the handler writes whatever it
  likes with ``request.send_response(code, reason)``, ``send_header``, ``end_headers`` and
  ``request.wfile``. An exception in the handler (the client hung up, ...) is swallowed
  quietly. At exit the server stops accepting, ``stopping(request)`` turns true so
  dripping handlers end, and the socket is closed without waiting for handler threads.
  With ``protocol="HTTP/1.1"`` connections stay open between answers (then every answer
  needs a Content-Length or chunked framing).
- ``send(request, status, body=b"", *, reason=None, headers=None)``: one whole answer with
  a Content-Length (unless ``headers`` has one or a Transfer-Encoding).
- ``pause(request, seconds) -> bool``: waits, returning False early (at once) when the
  server is stopping; use it between the bytes of a dripping body.
- ``stopping(request) -> bool``: the server is shutting down.
- ``gzip_bomb(size) -> bytes``: ``size`` zero bytes, gzip-compressed (~1000:1), built in
  bounded memory.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import threading
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Handler = Callable[[BaseHTTPRequestHandler], None]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # server_close does not join handlers still dripping

    def __init__(self, handler_fn: Handler, protocol: str) -> None:
        self.handler_fn = handler_fn
        self.stopping = threading.Event()

        class _Request(BaseHTTPRequestHandler):
            protocol_version = protocol

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                try:
                    handler_fn(self)
                    self.wfile.flush()
                except OSError:  # the client hung up: that is what tests of bounds do
                    self.close_connection = True

            do_HEAD = do_GET  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        super().__init__(("127.0.0.1", 0), _Request)  # binds and listens: ready

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # no tracebacks on stderr for a client that went away


@contextlib.contextmanager
def serve(handler_fn: Handler, *, protocol: str = "HTTP/1.0") -> Iterator[str]:
    """Run ``handler_fn`` for every request on a loopback port; yield ``http://127.0.0.1:PORT``."""
    server = _Server(handler_fn, protocol)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="hostile-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def stopping(request: BaseHTTPRequestHandler) -> bool:
    """True once the test left ``serve``: a dripping handler should stop."""
    server = request.server
    return isinstance(server, _Server) and server.stopping.is_set()


def pause(request: BaseHTTPRequestHandler, seconds: float) -> bool:
    """Wait ``seconds``; False (early) when the server is stopping."""
    server = request.server
    if isinstance(server, _Server):
        return not server.stopping.wait(seconds)
    threading.Event().wait(seconds)
    return True


def send(
    request: BaseHTTPRequestHandler,
    status: int,
    body: bytes = b"",
    *,
    reason: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> None:
    """One whole answer: status line (with ``reason`` if given), headers, body."""
    request.send_response(status, reason)
    given = {name.lower() for name in (headers or {})}
    for name, value in (headers or {}).items():
        request.send_header(name, value)
    if "content-length" not in given and "transfer-encoding" not in given:
        request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    if body and request.command != "HEAD":
        request.wfile.write(body)


def gzip_bomb(size: int) -> bytes:
    """``size`` zero bytes gzip-compressed, built a megabyte at a time."""
    out = io.BytesIO()
    chunk = bytes(1 << 20)
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9, mtime=0) as packer:
        left = size
        while left > 0:
            packer.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)
    return out.getvalue()
