"""How fast, how often and how long kmsnap asks: the shared pacer (a per-minute budget learned
from refusals, AIMD on short ones), urllib3 retries on a clock, and the pull's deadline that
bounds every wait and every socket timeout.

Waiting goes through a ``Clock`` so tests can check pauses without really sleeping.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol

from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import MaxRetryError, NewConnectionError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry
from urllib3.util.timeout import Timeout

RETRY_AFTER_CAP = 300.0  # seconds: the longest Retry-After waited out; asking longer fails
BACKOFF_CAP = 120.0  # seconds: the longest pause kmsnap picks itself after a 429 without one
MIN_RATE = 0.1  # requests per second: the floor the pacer never halves below
MIN_SAMPLES = 8  # request starts needed before an observed rate is trusted
RECOVERY_STEPS = 16  # good answers after a cut that bring the rate back to where it was
MINUTE = 60.0  # the window of a per-minute budget, as servers count it
WINDOW_GUARD = 2.0  # seconds added to our window: latency and clock skew against the server's
WINDOW_HINT = 10.0  # a Retry-After this long says "a window": learn a budget, do not halve
# urllib3 retries these in the worker that got them; 429 is left to the shared pacer.
RETRY_STATUSES = frozenset(range(500, 600)) - {501, 505}
WAIT_NOTICE = 1.0  # seconds: a wait at least this long is told to ``on_wait`` (a person sees it)
SLOW_DOWN = "the API asked to slow down"
BUDGET = "keeping to the request rate allowed"
RETRYING = "retrying after a failed request"

# A hook told of every wait that holds the crawl: (seconds, reason), from any thread.
WaitHook = Callable[[float, str], None]


def refused(error: BaseException | None) -> bool:
    """True for a connection refused: nothing listens there, so retrying would not help."""
    seen = 0
    while error is not None and seen < 8:
        if isinstance(error, ConnectionRefusedError):
            return True
        if isinstance(error, NewConnectionError) and "refused" in str(error).lower():
            return True
        inner = error.args[0] if error.args else None
        if isinstance(inner, BaseException) and inner is not error:  # requests' wrapping
            error = inner
        else:
            error = getattr(error, "reason", None) or error.__cause__ or error.__context__
        seen += 1
    return False


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


def retry_after_seconds(value: str | None, clock: Clock) -> float | None:
    """Seconds a ``Retry-After`` (seconds or HTTP date) asks for, uncapped; None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        seconds = float(value) if len(value) < 20 else float("inf")
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        try:
            seconds = when.timestamp() - clock.time()
        except (ValueError, OverflowError, OSError):
            return None
    return max(seconds, 0.0)


def parse_retry_after(
    value: str | None, clock: Clock, cap: float = RETRY_AFTER_CAP
) -> float | None:
    """Seconds to wait for a ``Retry-After``, at most ``cap``; None if unusable."""
    seconds = retry_after_seconds(value, clock)
    return None if seconds is None else min(seconds, cap)


class DeadlinePassed(Exception):
    """The pull's deadline passed during a wait or before a request; the client names the URL."""


class Deadline:
    """The end of the total wall time allowed (``seconds`` from now on ``clock``), or none."""

    def __init__(self, clock: Clock, seconds: float | None) -> None:
        self.clock = clock
        self.seconds = seconds
        self.end = None if seconds is None else clock.monotonic() + seconds

    def left(self) -> float | None:
        """Seconds until the end; None without one, <= 0 once it passed."""
        return None if self.end is None else self.end - self.clock.monotonic()

    def check(self) -> None:
        """Raise ``DeadlinePassed`` when the end passed."""
        left = self.left()
        if left is not None and left <= 0:
            raise DeadlinePassed()

    def bound(self, seconds: float) -> float:
        """``seconds``, cut to what is left; ``DeadlinePassed`` when nothing is."""
        left = self.left()
        if left is None:
            return seconds
        if left <= 0:
            raise DeadlinePassed()
        return min(seconds, left)

    def sleep(self, seconds: float) -> None:
        """Sleep on the clock, never past the end: ``DeadlinePassed`` when it is reached."""
        if seconds <= 0:
            self.check()
            return
        left = self.left()
        if left is not None and left <= seconds:
            self.clock.sleep(max(left, 0.0))
            self.check()  # not passed: the sleep was interrupted (a cancel), which goes on
            return
        self.clock.sleep(seconds)


class DeadlineTimeout(Timeout):
    """A urllib3 ``Timeout`` whose every attempt (urllib3 clones it per attempt, retries
    included) gets ``min(connect/read, what is left of the deadline)``."""

    def __init__(self, connect: float, read: float, deadline: Deadline) -> None:
        super().__init__(connect=connect, read=read)
        self.deadline = deadline

    def clone(self) -> Timeout:
        connect = self._connect if isinstance(self._connect, (int, float)) else None
        read = self._read if isinstance(self._read, (int, float)) else None
        return Timeout(
            connect=None if connect is None else self.deadline.bound(connect),
            read=None if read is None else self.deadline.bound(read),
        )


class ClockedRetry(Retry):
    """urllib3's ``Retry`` that waits on a ``Clock`` within the deadline, leaves 429 (and the
    statuses in ``leave``) to the shared pacer, and hands back at once a 503 whose
    ``Retry-After`` is over the cap."""

    # urllib3 would otherwise sleep out a 429's Retry-After inside one worker while the
    # others keep hammering; only 503 keeps the per-request Retry-After treatment.
    RETRY_AFTER_STATUS_CODES = frozenset({503})

    def __init__(
        self,
        *args: Any,
        clock: Clock = SYSTEM_CLOCK,
        deadline: Deadline | None = None,
        max_retry_after: float = RETRY_AFTER_CAP,
        leave: frozenset[int] = frozenset(),
        on_wait: WaitHook | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.clock = clock
        self.deadline = deadline if deadline is not None else Deadline(clock, None)
        self.max_retry_after = max_retry_after
        self.leave = leave
        self.on_wait = on_wait

    def new(self, **kw: Any) -> ClockedRetry:
        retry = super().new(**kw)
        retry.clock = self.clock
        retry.deadline = self.deadline
        retry.max_retry_after = self.max_retry_after
        retry.leave = self.leave
        retry.on_wait = self.on_wait
        return retry

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if status_code in self.leave:  # the shared pacer answers these, for every worker
            return False
        return super().is_retry(method, status_code, has_retry_after)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> ClockedRetry:
        if error is not None and refused(error):
            # Nothing listens at that port (a wrong --api, a server not started): retrying
            # for 9-13 s would only hide that; hand it back for a one-line error at once.
            raise MaxRetryError(_pool, url or "", error)  # type: ignore[arg-type]
        if response is not None and self.respect_retry_after_header:
            asked = retry_after_seconds(response.headers.get("Retry-After"), self.clock)
            if asked is not None and asked > self.max_retry_after:
                # Waiting out the cap would only postpone the failure: hand the answer back
                # (raise_on_status is off) for the client to refuse in one line.
                raise MaxRetryError(_pool, url or "", None)  # type: ignore[arg-type]
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        if response is not None:
            # urllib3 drains the body of an answer it retries, whole and unbounded: a huge or
            # dripping 5xx body would hold memory or time. Drop the connection instead.
            response.close()
            release = getattr(response, "release_conn", None)
            if callable(release):
                release()
        return retry

    def sleep(self, response: Any = None) -> None:
        delay: float | None = None
        if self.respect_retry_after_header and response is not None:
            delay = parse_retry_after(
                response.headers.get("Retry-After"), self.clock, self.max_retry_after
            )
        if delay is None:
            delay = self.get_backoff_time()
        delay = min(delay, self.max_retry_after)
        if self.on_wait is not None and delay >= WAIT_NOTICE:
            self.on_wait(delay, SLOW_DOWN if response is not None and response.headers.get(
                "Retry-After") else RETRYING)
        self.deadline.sleep(delay)


def make_retry(
    clock: Clock = SYSTEM_CLOCK,
    *,
    deadline: Deadline | None = None,
    max_retry_after: float = RETRY_AFTER_CAP,
    leave: frozenset[int] = frozenset(),
    on_wait: WaitHook | None = None,
) -> ClockedRetry:
    """The retry policy for one request: connection errors, read timeouts and 5xx, GET only;
    a refused connection is not retried (nothing listens there).

    Only keyword arguments urllib3 2.0 already has (no ``retry_after_max``: ``sleep`` and
    ``increment`` above apply the cap themselves).
    """
    return ClockedRetry(
        total=5,
        connect=4,
        read=3,
        status=4,
        other=0,
        redirect=0,  # redirects are followed by the client itself, after an origin check
        allowed_methods=frozenset({"GET"}),
        status_forcelist=RETRY_STATUSES - leave,
        backoff_factor=0.5,
        backoff_max=30.0,
        backoff_jitter=0.5,
        raise_on_status=False,  # hand back the last 5xx so the error can name its status
        raise_on_redirect=False,
        respect_retry_after_header=True,
        clock=clock,
        deadline=deadline,
        max_retry_after=max_retry_after,
        leave=leave,
        on_wait=on_wait,
    )


def backoff_delay(attempt: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    """Exponential backoff with full jitter for the retries urllib3 cannot do (cut-off bodies)."""
    return random.uniform(0, min(cap, base * (2**attempt)))


class Cancelled(Exception):
    """The pull is being abandoned: workers stop at their next turn."""


class Pacer:
    """Spaces requests across all workers: an optional rate cap, a per-minute budget, AIMD.

    Per-minute budget (``per_minute``, or learned): at most that many request starts in any
    ``MINUTE + WINDOW_GUARD`` seconds, a sliding window, so a server counting fixed or
    sliding minutes never sees more. A refusal that looks like a window (a budget is set,
    or its ``Retry-After`` is ``WINDOW_HINT`` seconds or more) pauses every worker and,
    once the pause is over (so the answers of requests already in flight are in), learns
    the budget: the requests the server admitted from the last pause's end (at most a
    minute back) up to the refusal, and one less than the budget in force when a refusal
    came within it. The budget never climbs back: it settles at or below what the server
    takes, instead of bursting into refusals every minute.

    Other refusals (AIMD): pause every worker until ``Retry-After`` has passed and halve
    the rate: the cap's, else the rate observed since the last pause. With neither (too
    few requests to measure anything) it only pauses. Each success then adds back 1/16 of
    what the cut took, so the rate is back where it was after 16 good answers (and keeps
    climbing, up to ``max_rps`` when one was given). Only one cut per round: refusals of
    requests sent before the last cut do not cut again.

    Without ``Retry-After`` the pause is ``backoff_base`` seconds doubling per attempt
    (jittered up to 10 %), else a short exponential backoff; never more than ``max_wait``.
    """

    def __init__(
        self,
        clock: Clock = SYSTEM_CLOCK,
        max_rps: float | None = None,
        *,
        deadline: Deadline | None = None,
        max_wait: float = RETRY_AFTER_CAP,
        per_minute: int | None = None,
        backoff_base: float | None = None,
    ) -> None:
        if per_minute is not None and per_minute < 1:
            raise ValueError("per_minute must be at least 1 (or None for no budget)")
        self._clock = clock
        self._deadline = deadline if deadline is not None else Deadline(clock, None)
        self._max_wait = max_wait
        self._backoff_base = backoff_base
        self._lock = threading.Lock()
        self._ceiling = max_rps
        self.rate: float | None = max_rps  # requests per second; None: unlimited
        self.per_minute = per_minute  # the budget asked for
        self.learned: int | None = None  # the budget learned from refusals
        self._step = 0.0
        self._next_slot = 0.0
        self._resume_at = 0.0
        self._resumed = float("-inf")  # when the last pause ended
        self._last_cut = float("-inf")
        self._learn_from: tuple[float, float] | None = None  # (since, refused at)
        self._starts: deque[float] = deque(maxlen=64)
        self._window: deque[float] = deque()  # starts within the budget's window
        self._admitted: deque[float] = deque()  # send times of good answers, last ~2 minutes
        self.throttles = 0
        self.paused_for = 0.0  # total pause ordered by refusals, in seconds
        self.cancelled = False
        self.on_wait: WaitHook | None = None  # told of pauses and budget waits a person sees
        self._told = float("-inf")  # the end of the last wait told to on_wait

    @property
    def budget(self) -> int | None:
        """Request starts allowed in any minute now (None: no budget)."""
        budgets = [b for b in (self.per_minute, self.learned) if b is not None]
        return min(budgets) if budgets else None

    def cancel(self) -> None:
        """Make every waiting and future ``acquire`` raise ``Cancelled``."""
        self.cancelled = True

    def acquire(self) -> float:
        """Wait for this worker's turn; return the (clock) time the request may go.

        Raises ``Cancelled``, or ``DeadlinePassed`` when the turn would come after the deadline.
        """
        reserved = False
        for _ in range(100_000):  # each round waits out a pause or a slot; all are finite
            if self.cancelled:
                raise Cancelled()
            with self._lock:
                now = self._clock.monotonic()
                wait = self._resume_at - now
                if wait <= 0:
                    self._learn(now)
                    wait = self._budget_wait(now)
                if wait <= 0 and not reserved and self.rate is not None:
                    slot = max(now, self._next_slot)
                    self._next_slot = slot + 1.0 / self.rate
                    wait = slot - now
                    reserved = True
                if wait <= 0:
                    self._starts.append(now)
                    if self.budget is not None:
                        self._window.append(now)
                    return now
                self._tell(now, wait)
            self._deadline.sleep(wait)
        raise RuntimeError("pacer: gave up waiting for a turn")

    def _tell(self, now: float, wait: float) -> None:
        """Tell ``on_wait`` of a wait a person would notice, once per wait (lock held)."""
        if self.on_wait is None or wait < WAIT_NOTICE or now + wait <= self._told + 0.5:
            return
        self._told = now + wait
        self.on_wait(wait, SLOW_DOWN if self._resume_at > now else BUDGET)

    def _budget_wait(self, now: float) -> float:
        """Seconds until the budget allows one more start (lock held)."""
        budget = self.budget
        if budget is None:
            return 0.0
        window = MINUTE + WINDOW_GUARD
        while self._window and self._window[0] <= now - window:
            self._window.popleft()
        if len(self._window) < budget:
            return 0.0
        return self._window[len(self._window) - budget] + window - now

    def _learn(self, now: float) -> None:
        """After a window-like refusal's pause: set the budget from what was admitted."""
        if self._learn_from is None:
            return
        since, refused_at = self._learn_from
        self._learn_from = None
        self._resumed = now
        admitted = sum(1 for sent in self._admitted if since <= sent <= refused_at)
        if self.learned is not None and admitted >= self.learned:
            admitted = self.learned - 1  # refused within the budget: the server takes less
        self.learned = max(1, admitted)
        self._window.clear()  # the pause ended a window: a fresh one starts now
        self._window.extend(s for s in self._admitted if s > now - MINUTE - WINDOW_GUARD)

    def on_success(self, sent_at: float | None = None) -> None:
        """A good answer to a request started at ``sent_at``: additive increase."""
        with self._lock:
            now = self._clock.monotonic()
            self._admitted.append(now if sent_at is None else sent_at)
            while self._admitted and self._admitted[0] < now - 2 * MINUTE:
                self._admitted.popleft()
            if self.rate is not None and self._step > 0:
                self.rate += self._step
                if self._ceiling is not None and self.rate > self._ceiling:
                    self.rate = self._ceiling

    def on_throttle(self, retry_after: float | None, sent_at: float, attempt: int) -> float:
        """A refusal (429, or 503 where the source says so): pause everyone, cut once per
        round (learn a budget, or halve the rate); return the pause in seconds."""
        window_like = self.per_minute is not None or (
            retry_after is not None and retry_after >= WINDOW_HINT)
        if retry_after is None:
            if self._backoff_base is not None:
                retry_after = self._backoff_base * 2.0**attempt * random.uniform(1.0, 1.1)
            else:
                retry_after = min(BACKOFF_CAP, 2.0 ** (attempt + 1)) * random.uniform(0.5, 1.0)
        pause = min(retry_after, self._max_wait)
        with self._lock:
            now = self._clock.monotonic()
            self.throttles += 1
            resume = now + pause
            if resume > self._resume_at:
                self.paused_for += resume - max(now, self._resume_at)
                self._resume_at = resume
            if sent_at >= self._last_cut:
                if window_like:  # every request sent before this answer came may count
                    self._learn_from = (max(self._resumed, sent_at - MINUTE), now)
                else:
                    current = self.rate if self.rate is not None else self._observed_rate()
                    if current is not None:
                        self.rate = max(MIN_RATE, current / 2.0)
                        # Back to the rate before the cut in RECOVERY_STEPS good answers.
                        self._step = max(current, MIN_RATE) / (2.0 * RECOVERY_STEPS)
                self._last_cut = now
                self._starts.clear()  # measure afresh after the pause, not across it
            self._next_slot = max(self._next_slot, self._resume_at)
            self._tell(now, self._resume_at - now)
        return pause

    def _observed_rate(self) -> float | None:
        """Requests per second over the recent starts, None when too few to tell (lock held)."""
        if len(self._starts) < MIN_SAMPLES:
            return None
        span = self._starts[-1] - self._starts[0]
        if span <= 0:
            return None  # all at once: no rate to speak of
        return (len(self._starts) - 1) / span
