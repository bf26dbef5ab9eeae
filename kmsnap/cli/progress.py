"""What a pull shows while it runs, on stderr: a live board on a terminal, plain lines in a log.

On a terminal (``LiveDisplay``): one overall line (entities and pages done, of the total once
every kind's is known, the rate and the time left) above a line per kind, a line while a wait
holds the crawl ("waiting 12 s: the API asked to slow down") and the phase after the crawl
(writing the snapshot). Without one, as in CI (``LogDisplay``): a plain line every
``interval`` seconds, one per long wait and one per phase, so a job log shows life; a pull
quicker than ``interval`` prints nothing of its own, so its one summary or error line stays
alone. Both are fed ``ProgressEvent``s from the crawl's threads, and read one injectable clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from kmsnap.model import KINDS, rel_for_kind

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

    from kmsnap.sources.core.crawler import ProgressEvent

PLAIN_INTERVAL = 10.0  # seconds between two lines of a pull's progress in a job log
Now = Callable[[], float]


class PullDisplay(Protocol):
    """Where a pull's progress goes: crawl events, then phases; closed once."""

    def update(self, event: ProgressEvent) -> None: ...

    def phase(self, text: str) -> None: ...

    def close(self) -> None: ...


@dataclass
class _Kind:
    pages_done: int = 0
    pages_total: int = 0
    entities: int = 0
    expected: int | None = None


class Tally:
    """The crawl's numbers so far, per kind and in all, and the wait holding it (thread-safe)."""

    def __init__(self, clock: Now = time.monotonic) -> None:
        self.clock = clock
        self.started = clock()
        self.kinds: dict[str, _Kind] = {}
        self.wait_until = float("-inf")
        self.wait_reason = ""
        self.phase = ""
        self.phase_started = self.started
        self.lock = threading.Lock()

    def add(self, event: ProgressEvent) -> bool:
        """Take ``event``; True when it starts a wait (not one already told)."""
        with self.lock:
            now = self.clock()
            if event.waiting > 0:
                until = now + event.waiting
                new = until > self.wait_until + 0.5
                if until > self.wait_until:
                    self.wait_until, self.wait_reason = until, event.reason
                return new
            self.kinds[event.kind] = _Kind(event.pages_done, event.pages_total, event.entities,
                                           event.expected)
            return False

    def set_phase(self, text: str) -> None:
        with self.lock:
            self.phase, self.phase_started = text, self.clock()
            self.wait_until = float("-inf")

    def waiting(self) -> float:
        """Seconds left of the wait holding the crawl, 0 when none."""
        return max(0.0, self.wait_until - self.clock())

    def overall(self) -> str:
        """``1,234 of 5,000 entities, 12 of 50 pages, 410/s, about 9 s left`` (what is known)."""
        with self.lock:
            kinds = list(self.kinds.values())
            elapsed = max(self.clock() - self.started, 1e-9)
        entities = sum(k.entities for k in kinds)
        pages = sum(k.pages_done for k in kinds)
        pages_total = sum(k.pages_total for k in kinds)
        known = bool(kinds) and all(k.expected is not None for k in kinds)
        expected = sum(k.expected or 0 for k in kinds) if known else None
        parts = [f"{entities:,} of {expected:,} entities" if expected is not None
                 else f"{entities:,} entities",
                 f"{pages:,} of {pages_total:,} pages" if pages_total else f"{pages:,} pages"]
        rate = entities / elapsed
        if elapsed >= 1.0 and entities:
            parts.append(f"{rate:,.0f}/s")
            if expected is not None and expected > entities:
                parts.append(f"about {_duration((expected - entities) / rate)} left")
        return ", ".join(parts)

    def rows(self) -> list[tuple[str, str, str]]:
        """(kind, pages, entities) per kind, in the catalog's order."""
        with self.lock:
            items = dict(self.kinds)
        order = [k for k in KINDS if k in items] + sorted(k for k in items if k not in KINDS)
        out = []
        for kind in order:
            k = items[kind]
            entities = (f"{k.entities:,}/{k.expected:,}" if k.expected is not None
                        else f"{k.entities:,}")
            out.append((rel_for_kind(kind), f"{k.pages_done:,}/{k.pages_total:,} pages",
                        f"{entities} entities"))
        return out

    def wait_line(self) -> str:
        left = self.waiting()
        return f"waiting {left:.0f} s: {self.wait_reason}" if left > 0 else ""


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


class _Board:
    """The live board's renderable: drawn afresh at each refresh, so countdowns move."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    def __rich__(self) -> RenderableType:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        tally = self.tally
        elapsed = _duration(tally.clock() - tally.started)
        if tally.phase:
            spent = _duration(tally.clock() - tally.phase_started)
            return Text(f"{tally.phase} ... {spent}")
        grid = Table.grid(padding=(0, 2))
        for _ in range(3):
            grid.add_column()
        grid.add_row("all", tally.overall(), elapsed)
        for kind, pages, entities in tally.rows():
            grid.add_row(f"  {kind}", f"{entities}, {pages}", "")
        wait = tally.wait_line()
        return Group(grid, Text(wait, style="yellow")) if wait else grid


class LiveDisplay:
    """The board on a terminal (rich ``Live``, cleared when closed)."""

    def __init__(self, console: Console, *, clock: Now = time.monotonic) -> None:
        from rich.live import Live

        self.tally = Tally(clock)
        self._live: Live = Live(_Board(self.tally), console=console, transient=True,
                                refresh_per_second=4, redirect_stdout=False,
                                redirect_stderr=False)
        self._live.start(refresh=True)

    def update(self, event: ProgressEvent) -> None:
        if self.tally.add(event):
            self._live.refresh()  # a wait shows at once, not at the next tick

    def phase(self, text: str) -> None:
        self.tally.set_phase(text)
        self._live.refresh()

    def close(self) -> None:
        self._live.stop()


class LogDisplay:
    """Plain lines for a log: every ``interval`` seconds, per long wait, per phase."""

    def __init__(self, console: Console, *, clock: Now = time.monotonic,
                 interval: float = PLAIN_INTERVAL, ticking: bool = True) -> None:
        self.tally = Tally(clock)
        self._console = console
        self._interval = interval
        self._last = self.tally.started
        self._spoke = False  # a line printed: phases are told from then on
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if ticking and interval > 0:  # a line even while nothing arrives (a long wait)
            self._thread = threading.Thread(target=self._tick_loop, daemon=True,
                                            name="kmsnap-progress")
            self._thread.start()

    def _say(self, text: str) -> None:
        self._spoke = True
        self._console.print(text, markup=False, highlight=False)

    def _tick_loop(self) -> None:
        while not self._stop.wait(min(self._interval, 1.0)):
            self.tick()

    def tick(self) -> None:
        """Print the progress line when ``interval`` has passed since the last line."""
        with self._lock:
            now = self.tally.clock()
            if self.tally.phase or now - self._last < self._interval:
                return
            self._last = now
            wait = self.tally.wait_line()
            self._say(f"pulling: {self.tally.overall()}" + (f"; {wait}" if wait else ""))

    def update(self, event: ProgressEvent) -> None:
        if self.tally.add(event) and event.waiting >= self._interval:
            with self._lock:  # a long wait is news: the log says why nothing moves
                self._say(f"pulling: {self.tally.wait_line()}")
        self.tick()

    def phase(self, text: str) -> None:
        self.tally.set_phase(text)
        with self._lock:
            if self._spoke or self.tally.clock() - self.tally.started >= self._interval:
                self._say(text)

    def close(self) -> None:
        self._stop.set()


class NoDisplay:
    """--quiet: nothing."""

    def update(self, event: ProgressEvent) -> None:
        pass

    def phase(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def open_display(console: Console, *, quiet: bool, terminal: bool,
                 clock: Now = time.monotonic) -> PullDisplay:
    """The display for a pull: none with ``quiet``, the board on a terminal, else lines."""
    if quiet:
        return NoDisplay()
    if terminal:
        return LiveDisplay(console, clock=clock)
    return LogDisplay(console, clock=clock, interval=PLAIN_INTERVAL)
