"""Scripted and random faults for the emulator: error statuses, cut bodies, stalls, redirects.

A ``Fault`` matches requests by path (and optionally the page's offset) a bounded number
of times; ``RandomFaults`` draws one of the faults a flaky API shows, from a seeded rng.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

HTML_500 = (
    "<html><head><title>500 Internal Server Error</title></head>"
    "<body><h1>Internal Server Error</h1><p>Something went wrong.</p></body></html>"
)
HTML_503 = (
    "<html><head><title>503 Service Temporarily Unavailable</title></head>"
    "<body><center><h1>503 Service Temporarily Unavailable</h1></center>"
    "<hr><center>nginx</center></body></html>"
)
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass
class Fault:
    """One scripted fault; see ``Emulator.inject`` for the meaning of each field."""

    path: str
    offset: int | None = None
    status: int | None = None
    times: int | None = 1
    retry_after: str | None = None
    body: bytes | None = None
    content_type: str | None = None
    cut_body: bool = False
    stall_seconds: float = 0.0
    redirect_to: str | None = None
    action: Callable[[], object] | None = None
    hits: int = 0  # how many requests it has answered so far
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def exhausted(self) -> bool:
        """True once it has answered ``times`` requests."""
        return self.times is not None and self.hits >= self.times

    def matches(self, path: str, offset: int | None) -> bool:
        """Whether a request for ``path`` at page ``offset`` (None: not a list) is one of its."""
        if self.path.endswith("*"):
            if not path.startswith(self.path[:-1]):
                return False
        elif path != self.path:
            return False
        return self.offset is None or self.offset == (offset or 0)

    def claim(self, path: str, offset: int | None) -> bool:
        """Count one hit if it matches and is not exhausted; thread-safe."""
        with self._lock:
            if self.exhausted or not self.matches(path, offset):
                return False
            self.hits += 1
            return True


@dataclass(frozen=True)
class Outcome:
    """What a random fault does to one response."""

    status: int | None = None  # an error status instead of the real answer
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    retry_after: str | None = None
    cut_body: bool = False  # send the real answer, but cut it in the middle


class RandomFaults:
    """Draws faults at ``rate`` per request: 429 + Retry-After, 500 and 503 (HTML), cut bodies."""

    def __init__(self, rate: float, seed: int = 0, retry_after: str = "1") -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("fault_rate must be between 0 and 1")
        self.rate = rate
        self.retry_after = retry_after
        self._rng = random.Random(f"faults-{seed}")
        self._lock = threading.Lock()

    def draw(self) -> Outcome | None:
        """The fault for the next request, or None for a normal answer."""
        if self.rate <= 0.0:
            return None
        with self._lock:
            if self._rng.random() >= self.rate:
                return None
            pick = self._rng.randrange(4)
        if pick == 0:
            body = b'{"error": {"status": 429, "message": "Too Many Requests"}}'
            return Outcome(429, body, "application/json", retry_after=self.retry_after)
        if pick == 1:
            return Outcome(500, HTML_500.encode())
        if pick == 2:
            return Outcome(503, HTML_503.encode())
        return Outcome(cut_body=True)
