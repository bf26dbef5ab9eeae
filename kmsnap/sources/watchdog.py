"""The watchdog behind a pull's time bounds: one thread per client that shuts the socket of
a request past the pull's deadline or its attempt's time budget, because a body dripping one
byte a second resets every read timeout and would otherwise never end."""

from __future__ import annotations

import socket
import threading
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from kmsnap.sources.pacing import Clock, Deadline

__all__ = ["Watch", "WatchedAdapter", "WatchedDeadline", "Watchdog", "arm", "current", "disarm"]


class Watch:
    """One request's time limits, and the socket to shut when one passes."""

    def __init__(self, deadline_end: float | None, budget: float) -> None:
        self.deadline_end = deadline_end
        self.budget = budget
        self.attempt_end: float | None = None
        self.sock: socket.socket | None = None
        self.fired: str | None = None  # "deadline" or "slow"
        self.lock = threading.Lock()

    def fire_at(self) -> float | None:
        ends = [end for end in (self.deadline_end, self.attempt_end) if end is not None]
        return min(ends) if ends else None

    def shut(self) -> None:
        if self.sock is not None:
            try:  # the plain socket's shutdown, also under TLS: a blocked recv returns now
                socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
            except OSError:
                pass


current = threading.local()  # the _Watch of the request this thread is making


def arm(sock: object, now: float | None = None) -> None:
    """A connection is about to send: start this attempt's clock, note its socket."""
    watch: Watch | None = getattr(current, "watch", None)
    clock: Clock | None = getattr(current, "clock", None)
    if watch is None or clock is None or not isinstance(sock, socket.socket):
        return
    with watch.lock:
        watch.sock = sock
        watch.attempt_end = clock.monotonic() + watch.budget
        if watch.fired:
            watch.shut()


def disarm() -> None:
    """This thread's attempt is over (a retry is about to wait): no time budget runs now."""
    watch: Watch | None = getattr(current, "watch", None)
    if watch is not None:
        with watch.lock:
            watch.attempt_end = None


class WatchedDeadline(Deadline):
    """The client's deadline: a wait between two attempts does not count against either."""

    def sleep(self, seconds: float) -> None:
        disarm()
        super().sleep(seconds)


POLL = 0.1  # seconds between two looks of the watchdog at the requests in flight


class Watchdog:
    """One thread per client that shuts the socket of a request past its deadline or its
    time budget: a body dripping one byte a second resets every read timeout, not this."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._cond = threading.Condition()
        self._watches: set[Watch] = set()
        self._thread: threading.Thread | None = None
        self._closed = False

    def add(self, watch: Watch) -> None:
        with self._cond:
            idle = not self._watches  # the thread sleeps until woken only when it has none
            self._watches.add(watch)
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="kmsnap-watchdog",
                                                daemon=True)
                self._thread.start()
            if idle:
                # Otherwise it looks again within POLL seconds anyway: waking it for every
                # request cost a thread switch and the lock per page, under the GIL.
                self._cond.notify()

    def remove(self, watch: Watch) -> None:
        with self._cond:
            self._watches.discard(watch)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                now = self._clock.monotonic()
                for watch in self._watches:
                    with watch.lock:
                        at = watch.fire_at()
                        if watch.fired is None and at is not None and now >= at:
                            expired = watch.deadline_end is not None and now >= watch.deadline_end
                            watch.fired = "deadline" if expired else "slow"
                            watch.shut()
                self._cond.wait(POLL if self._watches else None)


class _Armed:
    """Mixed into urllib3's connections: each send starts the attempt's clock (``arm``)."""

    sock: Any

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        arm(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        arm(self.sock)
        super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_Armed, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Armed, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class WatchedAdapter(HTTPAdapter):
    """requests' adapter on connections the watchdog can reach."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPPool, "https": _WatchedHTTPSPool,
        }
