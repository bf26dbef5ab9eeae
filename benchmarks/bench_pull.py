"""Figures for ``kmsnap pull``: requests against the least possible, speed against a sequential
``next``-following script, and peak memory of a 100,000-entity pull.

    python benchmarks/bench_pull.py            # all three (about a minute)
    python benchmarks/bench_pull.py --quick    # smaller catalogs, for a smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import requests

from kmsnap.emulator import Emulator, generate_catalog
from kmsnap.sources.core.crawler import PullOptions, pull_snapshot

TOKEN = "bench-token"
KINDS = ("account", "product", "report", "event", "property", "metric")

CHILD = r"""
import json, resource, sys, tempfile, time
from pathlib import Path
from kmsnap.sources.core.crawler import PullOptions, pull_snapshot
from kmsnap.snapshot.store import save_snapshot
api, token = sys.argv[1], sys.argv[2]
started = time.perf_counter()
result = pull_snapshot(PullOptions(api=api, token=token, with_stats=False))
pulled = time.perf_counter()
with tempfile.TemporaryDirectory() as tmp:
    save_snapshot(result.snapshot, Path(tmp) / "snapshots")
    written = time.perf_counter()  # before the clean-up of the temporary directory
print(json.dumps({"entities": result.snapshot.size(), "requests": result.requests,
                  "pull": pulled - started, "write": written - pulled,
                  "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def least_requests(emu: Emulator) -> int:
    """The root plus one request per max-size page of each top-level collection."""
    counts = [len(emu.catalog.ids(kind)) for kind in KINDS]
    counts += [len(items) for items in emu.catalog.extra.values()]
    return 1 + sum(max(1, math.ceil(n / emu.max_page_size)) for n in counts)


def baseline_pull(api: str, token: str) -> tuple[int, int]:
    """A plain script: follow each collection's ``next`` links one page at a time (API default
    page size), as a reader of the API page would write it. Returns (entities, requests)."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    entities = 0
    count = 0
    with requests.Session() as session:
        root = session.get(api, headers=headers, timeout=30).json()
        count += 1
        for link in root["data"]["links"]:
            if link["rel"] not in ("accounts", "products", "reports", "events", "properties",
                                   "metrics"):
                continue
            url: str | None = link["href"].split("{")[0]
            while url:
                page = session.get(url, headers=headers, timeout=30).json()
                count += 1
                entities += len(page["data"])
                url = next((x["href"] for x in page["links"] if x["rel"] == "next"), None)
    return entities, count


def bench_requests(size: int) -> None:
    with Emulator(generate_catalog(size=size, seed=1), token=TOKEN, max_page_size=100) as emu:
        result = pull_snapshot(PullOptions(api=emu.base_url, token=TOKEN, with_stats=False))
        sent = sum(emu.request_counts.values())
        least = least_requests(emu)
    print(f"requests: {sent} sent for {result.snapshot.size()} entities; least possible "
          f"{least}; ratio {sent / least:.3f} (target <= 1.1)")


def bench_speed(size: int, latency_ms: float) -> None:
    with Emulator(generate_catalog(size=size, seed=2), token=TOKEN, max_page_size=100,
                  latency_ms=latency_ms) as emu:
        started = time.perf_counter()
        entities, count = baseline_pull(emu.base_url, TOKEN)
        baseline = time.perf_counter() - started
        started = time.perf_counter()
        result = pull_snapshot(PullOptions(api=emu.base_url, token=TOKEN, with_stats=False))
        ours = time.perf_counter() - started
    assert entities == result.snapshot.size(), (entities, result.snapshot.size())
    print(f"speed: {entities} entities, {latency_ms:g} ms per request: baseline (sequential, "
          f"next links, default page size) {baseline:.2f} s in {count} requests; kmsnap "
          f"{ours:.2f} s in {result.requests} requests; {baseline / ours:.1f}x faster "
          "(target >= 10x)")


def bench_memory(size: int) -> None:
    with Emulator(generate_catalog(size=size, seed=3), token=TOKEN, max_page_size=100) as emu:
        out = subprocess.run([sys.executable, "-c", CHILD, emu.base_url, TOKEN],
                             check=True, capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent.parent)
    figures = json.loads(out.stdout)
    print(f"memory: {figures['entities']} entities pulled in {figures['pull']:.2f} s "
          f"({figures['requests']} requests), written in {figures['write']:.2f} s; peak RSS of "
          f"the pulling process {figures['max_rss_kb'] / 1024:.0f} MB (target < 500 MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller catalogs")
    args = parser.parse_args()
    bench_requests(2_000 if args.quick else 20_000)
    bench_speed(2_000 if args.quick else 20_000, 20.0)
    bench_memory(10_000 if args.quick else 100_000)


if __name__ == "__main__":
    main()
