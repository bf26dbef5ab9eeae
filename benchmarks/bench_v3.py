"""What a REST API v3 pull costs: requests against the least possible, and minutes at 15 a minute.

    python benchmarks/bench_v3.py

The least possible is 1 + 3 x products (``/products``, then each product's reports, events
and properties in one page each). Above it: pages beyond the first, and the requests that
tell a silent ``limit`` cap from the end of a collection (``V3PullResult.cap_checks``, at
most one per collection). Wall time is simulated: the emulator's rate limiter and the
client's pacer read one simulated clock, so 15 requests a minute costs no real waiting; one
worker, because on a simulated clock a sleeping worker would move time under another's
request in flight (the pacer is shared by every worker, so more workers would not go faster
at 15 a minute anyway).
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from kmsnap.emulator import Catalog, generate_catalog
from kmsnap.emulator.v3 import PASSWORD, USERNAME, EmulatorV3
from kmsnap.sources.v3 import Credentials, V3PullOptions, V3PullResult, pull_v3

LOGIN = Credentials(USERNAME, PASSWORD)


class SimClock:
    """Simulated time: ``sleep`` moves it (see tests/test_source_v3.py)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0.0
        self._seen = threading.local()

    def peek(self) -> float:
        return self.now

    def monotonic(self) -> float:
        with self._lock:
            self._seen.at = self.now
            return self.now

    def time(self) -> float:
        return 1.7e9 + self.monotonic()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            target = getattr(self._seen, "at", self.now) + max(seconds, 0.0)
            self.now = max(self.now, target)


def big_catalog(products: int = 20, entities: int = 20_000, seed: int = 0) -> Catalog:
    """``products`` products over two accounts, ``entities`` entities in all, each product's
    collections of uneven sizes (as real ones are), all of them under 1,000 records."""
    rng = random.Random(seed)
    records: dict[str, dict[str, dict[str, Any]]] = {
        "account": {f"acc-{a}": {"id": f"acc-{a}", "name": f"Account {a}"} for a in (0, 1)},
        "product": {}, "report": {}, "event": {}, "property": {}, "metric": {},
    }
    per_product, left = divmod(entities - 2 - products, products)
    for p in range(products):
        pid = f"prod-{p}"
        records["product"][pid] = {"id": pid, "account_id": f"acc-{p % 2}",
                                   "name": f"Product {p}", "timezone": "UTC"}
        reports = rng.randint(10, 60)
        events = rng.randint(400, 700)
        props = per_product + (p < left) - reports - events
        for kind, count in (("report", reports), ("event", events), ("property", props)):
            for i in range(count):
                eid = f"{kind}-{p}-{i}"
                record: dict[str, Any] = {"id": eid, "product_id": pid,
                                          "name": f"{kind} {p}.{i}"}
                if kind == "report":
                    record["report_type"] = "funnel"
                else:
                    record["is_visible"] = i % 7 != 0
                records[kind][eid] = record
    return Catalog(records)


def run(catalog: Catalog, *, rate: int | None = 15, max_limit: int | None = None,
        page_size: int = 1000) -> tuple[V3PullResult, float, int, float]:
    """One pull: the result, simulated minutes, refusals, real seconds."""
    clock = SimClock()
    with EmulatorV3(catalog, rate_per_minute=rate, clock=clock.peek,
                    max_limit=max_limit) as emu:
        started = time.perf_counter()
        result = pull_v3(V3PullOptions(credentials=LOGIN, api=emu.base_url, concurrency=1,
                                       per_minute=rate, deadline=None, page_size=page_size),
                         clock=clock)
        real = time.perf_counter() - started
        refused = emu.limiter.refused
    return result, clock.now / 60, refused, real


def main() -> None:
    rows = [
        ("kmsnap serve --source v3 (2,000 generated, 7 products)",
         generate_catalog(size=2000, seed=0), None),
        ("20 products, 20,000 entities", big_catalog(), None),
        ("20 products, 20,000 entities, server caps limit at 500", big_catalog(), 500),
    ]
    print("| catalog | entities | requests | least possible | cap checks | 429s "
          "| simulated min at 15/min | real s |")
    print("|---|---|---|---|---|---|---|---|")
    for label, catalog, cap in rows:
        result, minutes, refused, real = run(catalog, max_limit=cap)
        print(f"| {label} | {result.snapshot.size():,} | {result.requests} "
              f"| {result.least_requests} | {result.cap_checks} | {refused} "
              f"| {minutes:.1f} | {real:.1f} |")


if __name__ == "__main__":
    main()
