"""Benchmark the emulator on a 1,000,000-entity catalog: generation time, memory, time per page.

Run: ``python benchmarks/bench_emulator.py [--size N] [--repeat R]``. A page should cost
the same at the start, middle and end of a collection (time in proportion to the page).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time

import requests

from kmsnap.emulator import Emulator, generate_catalog


def rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def time_page(http: requests.Session, url: str, repeat: int) -> tuple[float, float, int]:
    """(median ms, first ms, bytes) of GETting ``url`` ``repeat`` times."""
    times = []
    size = 0
    for _ in range(repeat):
        started = time.perf_counter()
        response = http.get(url, timeout=60)
        response.raise_for_status()
        size = len(response.content)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), times[0], size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    before = rss_mb()
    started = time.perf_counter()
    catalog = generate_catalog(size=args.size, seed=1)
    generation = time.perf_counter() - started
    counts = {kind: len(records) for kind, records in catalog.records.items()}
    print(f"catalog: {catalog.size():,} entities {counts}")
    print(f"generation: {generation:.1f} s, peak RSS {rss_mb():.0f} MB "
          f"(+{rss_mb() - before:.0f} MB)")

    with Emulator(catalog, token="T") as emu, requests.Session() as http:
        http.headers["Authorization"] = "Bearer T"
        print(f"serving at {emu.base_url}; limit=100, median of {args.repeat} requests")
        print(f"{'page':<44} {'median ms':>10} {'first ms':>10} {'bytes':>9}")
        product = catalog.ids("product")[0]
        n_product_events = len(catalog.listing("event", product))
        cases: list[tuple[str, str, int]] = []
        for rel, kind in (("events", "event"), ("properties", "property")):
            total = len(catalog.records[kind])
            for label, offset in (("start", 0), ("middle", total // 2),
                                  ("end", max(0, total - 100))):
                cases.append((f"/{rel} {label} (offset {offset:,})", f"/{rel}", offset))
        for label, offset in (("start", 0), ("end", max(0, n_product_events - 100))):
            cases.append((f"/products/ID/events {label} (offset {offset:,})",
                           f"/products/{product}/events", offset))
        for label, path, offset in cases:
            url = f"{emu.base_url}{path}?limit=100&offset={offset}"
            median, first, size = time_page(http, url, args.repeat)
            print(f"{label:<44} {median:>10.2f} {first:>10.2f} {size:>9,}")

        # A change invalidates the cached lists; the next page rebuilds one of them.
        catalog.rename("event", catalog.ids("event")[0], "renamed")
        url = f"{emu.base_url}/events?limit=100&offset={len(catalog.records['event']) // 2}"
        median, first, _ = time_page(http, url, args.repeat)
        print(f"{'/events middle after a rename':<44} {median:>10.2f} {first:>10.2f}")
        emu.add_token("limited", accounts=catalog.ids("account")[:1])
        http.headers["Authorization"] = "Bearer limited"
        median, first, _ = time_page(http, f"{emu.base_url}/events?limit=100", args.repeat)
        print(f"{'/events, token limited to one account':<44} {median:>10.2f} {first:>10.2f}")
    print(f"peak RSS at the end: {rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
