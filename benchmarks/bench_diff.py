"""Benchmark ``kmsnap diff``: two 100,000-entity snapshots with a few hundred changes.

Prints the wall time and peak memory of the whole ``kmsnap diff --format json OLD NEW``
command (a subprocess, loading included), the split between ``load_pair`` and
``diff_snapshots`` in-process, and the baseline: ``yaml.load`` (CSafeLoader) of both trees
plus one DeepDiff over them, on a smaller tree when ``--baseline-size`` says so
(extrapolated linearly, and said so).

    python benchmarks/bench_diff.py [--size 100000] [--changes 300] [--baseline-size 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from deepdiff import DeepDiff

from kmsnap.diff.engine import diff_snapshots
from kmsnap.model import Snapshot
from kmsnap.snapshot.store import DirectorySource, load_pair, save_snapshot

PER_PRODUCT = {"report": 0.05, "event": 0.5, "property": 0.3, "metric": 0.15}


def build(size: int, seed: int = 1) -> Snapshot:
    """A catalog of ``size`` entities: 10 accounts, 5 products each, the rest spread over them."""
    rng = random.Random(seed)
    snap = Snapshot(api="http://127.0.0.1:8765/core")
    products = []
    for a in range(10):
        aid = f"acc{a:04d}-0000-0000"
        snap.add(
            "account",
            {
                "id": aid,
                "name": f"Account {a}",
                "status": "active",
                "created_at": "2020-01-01T00:00:00Z",
                "contact": {"phone": f"+1 555 {a:04d}", "country": "US", "name": f"Owner {a}"},
            },
        )
        for p in range(5):
            pid = f"prd{a:02d}{p:02d}-0000-0000"
            products.append((aid, pid))
            snap.add(
                "product",
                {
                    "id": pid,
                    "account_id": aid,
                    "name": f"Product {a}.{p}",
                    "url": f"https://p{a}{p}.example",
                    "status": "active",
                    "environment": "production",
                    "timezone": "UTC",
                    "created_at": "2020-01-01T00:00:00Z",
                },
            )
    rest = size - 10 - len(products)
    per_product = rest // len(products)
    n = 0
    for aid, pid in products:
        for kind, share in PER_PRODUCT.items():
            for _ in range(int(per_product * share)):
                n += 1
                eid = f"{kind[:3]}{n:08d}-{rng.randrange(16**8):08x}"
                snap.add(kind, _record(kind, eid, aid, pid, n))
    return snap


def _record(kind: str, eid: str, aid: str, pid: str, n: int) -> dict[str, Any]:
    if kind == "report":
        return {
            "id": eid,
            "account_id": aid,
            "product_id": pid,
            "name": f"Report {n}",
            "report_type": "people_search_v2",
            "created_at": "2021-02-03T04:05:06Z",
        }
    if kind == "metric":
        return {
            "id": eid,
            "product_id": pid,
            "title": f"Metric {n}",
            "description": "",
            "is_visible": True,
            "unit_type": "numeric",
            "status": "ready",
            "color": "#336699",
            "sort_index": n,
            "config_last_changed_at": None,
        }
    out = {
        "id": eid,
        "product_id": pid,
        "name": f"{kind.title()} {n}",
        "display_name": f"{kind.title()} number {n}",
        "description": f"Tracks thing {n}",
        "is_visible": True,
    }
    if kind == "property":
        out["type"] = "text"
    return out


def mutate(old: Snapshot, changes: int, seed: int = 2) -> Snapshot:
    """A copy of ``old`` with ``changes`` changes of every type, spread over the products."""
    rng = random.Random(seed)
    new = Snapshot(api=old.api, entities={k: dict(v) for k, v in old.entities.items()})
    pool = [(k, i) for k in PER_PRODUCT for i in new.entities[k]]
    rng.shuffle(pool)
    for step, (kind, eid) in enumerate(pool[:changes]):
        rec = dict(new.entities[kind][eid])
        what = step % 5
        name_field = "title" if kind == "metric" else "name"
        if what == 0:  # changed
            rec["description"] = f"changed {step}"
            new.entities[kind][eid] = rec
        elif what == 1:  # renamed
            rec[name_field] = f"{rec[name_field]} (renamed)"
            new.entities[kind][eid] = rec
        elif what == 2:  # removed
            del new.entities[kind][eid]
        elif what == 3:  # re-created
            del new.entities[kind][eid]
            rec["id"] = f"new{step:05d}-{eid}"
            new.entities[kind][rec["id"]] = rec
        else:  # added
            rec["id"] = f"add{step:05d}-{eid}"
            rec[name_field] = f"Added {step}"
            new.entities[kind][rec["id"]] = rec
    return new


def run_cli(old: Path, new: Path) -> tuple[float, float, int]:
    """(seconds, peak MiB, number of changes) of ``kmsnap diff --format json`` as a process."""
    code = (
        "import resource, sys; from kmsnap.cli import run; rc = run(sys.argv[1:]);"
        "sys.stderr.write('MAXRSS %d\\n' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss);"
        "sys.exit(rc)"
    )
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code, "diff", "--format", "json", str(old), str(new)],
        capture_output=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"kmsnap diff failed ({proc.returncode}): {proc.stderr.decode()}")
    rss = next(
        int(line.split()[1])
        for line in proc.stderr.decode().splitlines()
        if line.startswith("MAXRSS")
    )
    return elapsed, rss / 1024, len(json.loads(proc.stdout)["changes"])


def baseline(old: Path, new: Path) -> tuple[float, float, float]:
    """(load seconds, DeepDiff seconds, total) for yaml CSafeLoader + DeepDiff over two trees."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    def tree(root: Path) -> dict[str, Any]:
        return {
            str(p.relative_to(root)): yaml.load(p.read_bytes(), Loader=loader)  # noqa: S506
            for p in sorted(root.rglob("*.yaml"))
        }

    started = time.perf_counter()
    a, b = tree(old), tree(new)
    loaded = time.perf_counter()
    DeepDiff(a, b, threshold_to_diff_deeper=0)  # positional lists: no ignore_order
    done = time.perf_counter()
    return loaded - started, done - loaded, done - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=300)
    parser.add_argument(
        "--baseline-size",
        type=int,
        default=20_000,
        help="entities for the baseline (0: skip it; --size: no extrapolation)",
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        root = Path(tmp)
        old_snap = build(args.size)
        new_snap = mutate(old_snap, args.changes)
        started = time.perf_counter()
        save_snapshot(old_snap, root / "old")
        save_snapshot(new_snap, root / "new")
        print(
            f"wrote 2 x {old_snap.size():,} entities in {time.perf_counter() - started:.1f} s"
            f" ({sum(1 for _ in (root / 'old').rglob('*.yaml'))} files per side)"
        )
        del old_snap, new_snap

        times = []
        for _ in range(args.runs):
            elapsed, peak, count = run_cli(root / "old", root / "new")
            times.append(elapsed)
        best = min(times)
        print(
            f"kmsnap diff --format json: {best:.2f} s best of {args.runs} "
            f"(runs: {', '.join(f'{t:.2f}' for t in times)}), peak {peak:.0f} MiB, "
            f"{count} changes"
        )

        started = time.perf_counter()
        old, new = load_pair(DirectorySource(root / "old"), DirectorySource(root / "new"))
        loaded = time.perf_counter()
        cs = diff_snapshots(old, new)
        done = time.perf_counter()
        print(
            f"  in-process: load_pair {loaded - started:.2f} s "
            f"({old.size():,} + {new.size():,} entities kept), "
            f"diff_snapshots {done - loaded:.3f} s ({len(cs.changes)} changes)"
        )
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import kmsnap.cli"], check=True)
        print(f"  interpreter + imports: {time.perf_counter() - t0:.2f} s")

        if args.baseline_size:
            small = root / "small"
            bsize = min(args.baseline_size, args.size)
            base_old = build(bsize)
            save_snapshot(base_old, small / "old")
            save_snapshot(
                mutate(base_old, max(1, args.changes * bsize // args.size)), small / "new"
            )
            load_s, deep_s, total = baseline(small / "old", small / "new")
            scale = args.size / bsize
            note = "" if scale == 1 else f", extrapolated x{scale:g} from {bsize:,} entities"
            estimate = total * scale
            print(
                f"baseline yaml CSafeLoader + DeepDiff: {total:.2f} s at {bsize:,} entities "
                f"(load {load_s:.2f} s, DeepDiff {deep_s:.2f} s) -> ~{estimate:.1f} s at "
                f"{args.size:,}{note}"
            )
            print(f"speed-up: {estimate / best:.1f}x")
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(benchmark process itself peaked at {usage:.0f} MiB; {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
