"""How fast and how often kmsnap asks: the shared 429 pacer (AIMD) and urllib3 retries on a clock.

Waiting goes through a ``Clock`` so tests can check pauses without really sleeping.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections import deque
from typing import Any, Protocol

from urllib3.util.retry import Retry

RETRY_AFTER_CAP = 120.0  # seconds: a server asking for longer is waited on this long, then retried
MIN_RATE = 0.1  # requests per second: the floor the pacer never halves below
MIN_SAMPLES = 8  # request starts needed before an observed rate is trusted
RECOVERY_STEPS = 16  # good answers after a cut that bring the rate back to where it was
# urllib3 retries these in the worker that got them; 429 is left to the shared pacer.
RETRY_STATUSES = frozenset(range(500, 600)) - {501, 505}


class Clock(Protocol):
    """Time and waiting, injectable for tests."""

    def monotonic(self) -> float: ...

    def time(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock; ``interrupt()`` ends every sleep on it at once (Ctrl-C, a failed pull)."""

    def __init__(self) -> None:
        self._interrupted = threading.Event()

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._interrupted.wait(seconds)

    def interrupt(self) -> None:
        self._interrupted.set()


SYSTEM_CLOCK = SystemClock()


def parse_retry_after(value: str | None, clock: Clock) -> float | None:
    """Seconds to wait for a ``Retry-After`` (seconds or HTTP date), capped; None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - clock.time()
    return min(max(seconds, 0.0), RETRY_AFTER_CAP)


class ClockedRetry(Retry):
    """urllib3's ``Retry`` that waits on a ``Clock`` and leaves 429 to the shared pacer."""

    # urllib3 would otherwise sleep out a 429's Retry-After inside one worker while the
    # others keep hammering; only 503 keeps the per-request Retry-After treatment.
    RETRY_AFTER_STATUS_CODES = frozenset({503})

    def __init__(self, *args: Any, clock: Clock = SYSTEM_CLOCK, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock = clock

    def new(self, **kw: Any) -> ClockedRetry:
        retry = super().new(**kw)
        retry.clock = self.clock
        return retry

    def sleep(self, response: Any = None) -> None:
        delay: float | None = None
        if self.respect_retry_after_header and response is not None:
            delay = parse_retry_after(response.headers.get("Retry-After"), self.clock)
        if delay is None:
            delay = self.get_backoff_time()
        self.clock.sleep(min(delay, RETRY_AFTER_CAP))


def make_retry(clock: Clock = SYSTEM_CLOCK) -> ClockedRetry:
    """The retry policy for one request: connection errors, read timeouts and 5xx, GET only."""
    return ClockedRetry(
        total=5,
        connect=4,
        read=3,
        status=4,
        other=0,
        redirect=0,  # redirects are followed by the client itself, after an origin check
        allowed_methods=frozenset({"GET"}),
        status_forcelist=RETRY_STATUSES,
        backoff_factor=0.5,
        backoff_max=30.0,
        backoff_jitter=0.5,
        retry_after_max=int(RETRY_AFTER_CAP),
        raise_on_status=False,  # hand back the last 5xx so the error can name its status
        raise_on_redirect=False,
        respect_retry_after_header=True,
        clock=clock,
    )


def backoff_delay(attempt: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    """Exponential backoff with full jitter for the retries urllib3 cannot do (cut-off bodies)."""
    return random.uniform(0, min(cap, base * (2**attempt)))


class Cancelled(Exception):
    """The pull is being abandoned: workers stop at their next turn."""


class Pacer:
    """Spaces requests across all workers: an optional rate cap, and AIMD on 429.

    A 429 pauses every worker until its ``Retry-After`` has passed and halves the rate:
    the cap's, else the rate observed since the last pause. With neither (a 429 before
    enough requests went out to measure anything) it only pauses: a guessed rate could be
    far below what the API takes and would slow the whole pull down. Each success then adds
    back 1/16 of what the cut took, so the rate is back where it was after 16 good answers
    whatever it was (and keeps climbing, up to ``max_rps`` when one was given). Only one
    halving per round: 429s to requests sent before the last cut do not cut again.
    """

    def __init__(self, clock: Clock = SYSTEM_CLOCK, max_rps: float | None = None) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._ceiling = max_rps
        self.rate: float | None = max_rps  # requests per second; None: unlimited
        self._step = 0.0
        self._next_slot = 0.0
        self._resume_at = 0.0
        self._last_cut = float("-inf")
        self._starts: deque[float] = deque(maxlen=64)
        self.throttles = 0
        self.paused_for = 0.0  # total pause ordered by 429s, in seconds
        self.cancelled = False

    def cancel(self) -> None:
        """Make every waiting and future ``acquire`` raise ``Cancelled``."""
        self.cancelled = True

    def acquire(self) -> float:
        """Wait for this worker's turn; return the (clock) time the request may go."""
        reserved = False
        for _ in range(10_000):  # each round waits out a pause; pauses are finite and capped
            if self.cancelled:
                raise Cancelled()
            with self._lock:
                now = self._clock.monotonic()
                wait = self._resume_at - now
                if wait <= 0 and not reserved and self.rate is not None:
                    slot = max(now, self._next_slot)
                    self._next_slot = slot + 1.0 / self.rate
                    wait = slot - now
                    reserved = True
                if wait <= 0:
                    self._starts.append(now)
                    return now
            self._clock.sleep(wait)
        raise RuntimeError("pacer: gave up waiting for a turn")

    def on_success(self) -> None:
        """Additive increase after a good answer."""
        with self._lock:
            if self.rate is not None and self._step > 0:
                self.rate += self._step
                if self._ceiling is not None and self.rate > self._ceiling:
                    self.rate = self._ceiling

    def on_throttle(self, retry_after: float | None, sent_at: float, attempt: int) -> float:
        """A 429: pause everyone, halve the rate once per round; return the pause in seconds."""
        if retry_after is None:
            retry_after = min(RETRY_AFTER_CAP, 2.0 ** (attempt + 1)) * random.uniform(0.5, 1.0)
        pause = min(retry_after, RETRY_AFTER_CAP)
        with self._lock:
            now = self._clock.monotonic()
            self.throttles += 1
            resume = now + pause
            if resume > self._resume_at:
                self.paused_for += resume - max(now, self._resume_at)
                self._resume_at = resume
            if sent_at >= self._last_cut:
                current = self.rate if self.rate is not None else self._observed_rate()
                if current is not None:
                    self.rate = max(MIN_RATE, current / 2.0)
                    # Back to the rate before the cut in RECOVERY_STEPS good answers.
                    self._step = max(current, MIN_RATE) / (2.0 * RECOVERY_STEPS)
                self._last_cut = now
                self._starts.clear()  # measure afresh after the pause, not across it
            self._next_slot = max(self._next_slot, self._resume_at)
        return pause

    def _observed_rate(self) -> float | None:
        """Requests per second over the recent starts, None when too few to tell (lock held)."""
        if len(self._starts) < MIN_SAMPLES:
            return None
        span = self._starts[-1] - self._starts[0]
        if span <= 0:
            return None  # all at once: no rate to speak of
        return (len(self._starts) - 1) / span
