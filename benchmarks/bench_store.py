"""Print how fast the snapshot store writes and reads a large catalog, beside PyYAML.

    python benchmarks/bench_store.py [--size 100000] [--changes 300] [--skip-pyyaml]

Builds its own realistic catalog (awkward names included), so it needs nothing else.
"""

from __future__ import annotations

import argparse
import copy
import gc
import random
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kmsnap.model import Snapshot  # noqa: E402
from kmsnap.snapshot.store import (  # noqa: E402
    DirectorySource,
    load_pair,
    load_snapshot,
    render_snapshot,
    save_snapshot,
)

AWKWARD = [
    "yes", "no", "null", "~", "1e3", "0123", "0x1F", "2024-01-02", "2024-01-02T03:04:05Z",
    "on", "True", "  leading spaces", "trailing  ", "line\nbreak", "tab\there", "quote \" here",
    "back\\slash", "emoji 😀🎉", "ünïcödé", "日本語のイベント", "# not a comment", "- dash",
    "key: value", "{braces}", "[brackets]", "&anchor", "*alias", "!tag", "%percent", "@at",
    "`tick`", "nel\x85here", "ls\u2028sep", "bom\ufeff", "ctrl\x01\x7f", "", "null\x00byte",
]
WORDS = ["Signed", "Up", "Viewed", "Page", "Purchased", "Item", "Cart", "Checkout", "Plan",
         "Trial", "Started", "Billing", "Email", "Opened", "Clicked", "Link", "Visited", "Site"]


def _name(rng: random.Random) -> str:
    if rng.random() < 0.05:
        return rng.choice(AWKWARD) + " " + rng.choice(WORDS)
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 4)))


def _ts(rng: random.Random) -> str:
    return f"20{rng.randint(15, 24)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T" \
        f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z"


def _id(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def build(size: int, seed: int = 1) -> Snapshot:
    """A catalog of about ``size`` entities: 5 accounts, 40 products, the rest spread."""
    rng = random.Random(seed)
    snap = Snapshot(api="https://api.kissmetrics.com/core")
    accounts = [_id(rng) for _ in range(5)]
    for aid in accounts:
        snap.add("account", {"id": aid, "name": _name(rng), "status": "active",
                             "created_at": _ts(rng), "updated_at": _ts(rng),
                             "contact": {"name": _name(rng), "phone": None, "country": "US"}})
    products = [_id(rng) for _ in range(40)]
    for pid in products:
        snap.add("product", {"id": pid, "account_id": rng.choice(accounts), "name": _name(rng),
                             "url": "https://example.com/" + pid[:6], "status": "active",
                             "environment": "production", "timezone": "America/New_York",
                             "created_at": _ts(rng)})
    rest = max(0, size - 45)
    for i in range(rest):
        pid = rng.choice(products)
        roll = i % 10
        if roll < 4:
            snap.add("event", {"id": _id(rng), "product_id": pid, "name": _name(rng),
                               "display_name": _name(rng), "description": _name(rng) * 2,
                               "is_visible": rng.random() < 0.9, "total": rng.randint(0, 10**7),
                               "first_used_at": _ts(rng), "last_used_at": _ts(rng)})
        elif roll < 8:
            snap.add("property", {"id": _id(rng), "product_id": pid, "name": _name(rng),
                                  "display_name": _name(rng), "description": None,
                                  "is_visible": True, "type": rng.choice(["string", "number"]),
                                  "first_used_at": _ts(rng)})
        elif roll < 9:
            snap.add("metric", {"id": _id(rng), "product_id": pid, "title": _name(rng),
                                "description": _name(rng), "is_visible": True,
                                "unit_type": "count", "status": "active", "color": "#ff0000",
                                "sort_index": rng.randint(0, 100),
                                "config_last_changed_at": _ts(rng)})
        else:
            snap.add("report", {"id": _id(rng), "account_id": accounts[0], "product_id": pid,
                                "name": _name(rng), "report_type": "funnel",
                                "created_at": _ts(rng)})
    return snap


def mutate(snap: Snapshot, changes: int, seed: int = 2) -> Snapshot:
    """A copy with ``changes`` scattered renames, field edits, additions and removals."""
    rng = random.Random(seed)
    new = copy.deepcopy(snap)
    kinds = ["event", "property", "metric", "report"]
    for i in range(changes):
        kind = rng.choice(kinds)
        by_id = new.entities[kind]
        entity_id = rng.choice(sorted(by_id))
        record = by_id[entity_id]
        if i % 4 == 0:
            record["title" if kind == "metric" else "name"] = _name(rng) + " renamed"
        elif i % 4 == 1:
            record["description"] = "edited " + _name(rng)
        elif i % 4 == 2:
            del by_id[entity_id]
        else:
            fresh = dict(record, id=_id(rng))
            by_id[fresh["id"]] = fresh
    return new


def timed(label: str, func: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    best = float("inf")
    result = None
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    print(f"  {label:<48} {best:7.3f} s")
    return best, result


def peak_mb(func: Callable[[], Any]) -> float:
    gc.collect()
    tracemalloc.start()
    func()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1e6


def pyyaml_baseline(snap_dir: Path) -> None:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    files = {p: p.read_bytes() for p in snap_dir.rglob("*.yaml")}
    data = {p: load_via_kmsnap for p, load_via_kmsnap in
            ((p, yaml.load(b, Loader=loader)) for p, b in files.items())}

    def dump_all() -> None:
        for value in data.values():
            yaml.dump(value, Dumper=dumper, allow_unicode=True, sort_keys=False, width=10**9)

    def load_all() -> None:
        for raw in files.values():
            yaml.load(raw, Loader=loader)

    print(f"PyYAML {yaml.__version__} (libyaml: {yaml.__with_libyaml__}), same files:")
    timed("PyYAML dump (CSafeDumper)", dump_all, repeat=1)
    timed("PyYAML load (CSafeLoader)", load_all, repeat=1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=300)
    parser.add_argument("--skip-pyyaml", action="store_true")
    args = parser.parse_args()

    snap = build(args.size)
    changed = mutate(snap, args.changes)
    work = Path(tempfile.mkdtemp(prefix="kmsnap-bench-"))
    try:
        old_dir, new_dir = work / "old", work / "new"
        total_bytes = sum(len(b) for b in render_snapshot(snap).values())
        print(f"{snap.size()} entities, {total_bytes / 1e6:.1f} MB of YAML")
        print("kmsnap store:")
        timed("render (Snapshot -> bytes, no I/O)", lambda: render_snapshot(snap))
        timed("save_snapshot (atomic, to disk)", lambda: save_snapshot(snap, old_dir))
        save_snapshot(changed, new_dir)
        _, loaded = timed("load_snapshot", lambda: load_snapshot(old_dir))
        assert loaded.entities == snap.entities, "round trip lost something"
        timed("load_snapshot x2 (old and new)",
              lambda: (load_snapshot(old_dir), load_snapshot(new_dir)))
        _, pair = timed(f"load_pair ({args.changes} scattered changes)",
                        lambda: load_pair(DirectorySource(old_dir), DirectorySource(new_dir)))
        kept = pair[0].size() + pair[1].size()
        print(f"  load_pair kept {kept} of {snap.size() + changed.size()} entities")
        _check_pair(old_dir, new_dir, pair)
        print(f"  peak traced memory: save {peak_mb(lambda: save_snapshot(snap, old_dir)):.0f} MB,"
              f" load {peak_mb(lambda: load_snapshot(old_dir)):.0f} MB,"
              f" load_pair {peak_mb(lambda: load_pair(DirectorySource(old_dir), DirectorySource(new_dir))):.0f} MB")  # noqa: E501
        for label, code in (
            ("load_snapshot", f"load_snapshot({str(old_dir)!r})"),
            ("load_snapshot x2",
             f"load_snapshot({str(old_dir)!r}), load_snapshot({str(new_dir)!r})"),
            ("load_pair", f"load_pair(DirectorySource({str(old_dir)!r}), "
                          f"DirectorySource({str(new_dir)!r}))"),
        ):
            print(f"  peak RSS of a fresh process running {label}: {_child_rss(code):.0f} MB")
        if not args.skip_pyyaml:
            pyyaml_baseline(old_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _child_rss(code: str) -> float:
    """Peak resident memory (MB) of a new interpreter that imports kmsnap and runs ``code``."""
    # VmHWM, not ru_maxrss: Linux carries the parent's ru_maxrss over fork and exec.
    script = f"from kmsnap.snapshot.store import *\n{code}\n" \
        "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])"
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, cwd=root)
    return int(out.stdout.split()[-1]) / 1024


def _check_pair(old_dir: Path, new_dir: Path, pair: tuple[Snapshot, Snapshot]) -> None:
    try:
        from kmsnap.diff.engine import diff_snapshots
    except ImportError:
        return
    full = diff_snapshots(load_snapshot(old_dir), load_snapshot(new_dir))
    fast = diff_snapshots(*pair)
    same = full.to_json()["changes"] == fast.to_json()["changes"]
    print(f"  diff of load_pair == diff of full loads: {same} ({len(full.changes)} changes)")


if __name__ == "__main__":
    main()
