"""Every row of issue 13's table in one run, each beside its baseline, as ratios with
min/median/max over repeats.

    python benchmarks/bench_all.py [--repeat 3] [--million] [--root DIR] [--only ROWS]

Each kmsnap figure is measured in a fresh subprocess that imports kmsnap from ``--root``
(default: this checkout), so a checkout of an older commit (``git archive REV | tar -x -C
DIR``) gives the "before" column with the same script. The baselines: ``json.loads`` /
``json.dumps`` of the same entities, the sequential ``next``-following script of
``bench_pull.py``, and CSafeLoader + DeepDiff over the whole trees of ``bench_diff.py`` (at
``--baseline-size`` entities, extrapolated linearly, and said so). Peak memory is the
subprocess's VmHWM. The checkout is compiled first and the children start from its bytecode,
as an installed kmsnap does, whatever PYTHONDONTWRITEBYTECODE says. The pull rows also time
the whole ``kmsnap pull`` command into the snapshot a first run wrote (the shrink guard reads
it first). ``--million`` adds the 1,000,000-entity pulls and diff (minutes) and the growth of
peak memory from 10,000 to 1,000,000 entities. Nothing fails on a number.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

HWM = "[l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]"

CODEC = r"""
import gc, json, sys, tempfile, time
from pathlib import Path
# kmsnap first, from --root: bench_store puts this checkout on sys.path for its own imports
from kmsnap.snapshot.store import load_snapshot, save_snapshot
from bench_store import build
print(json.dumps(sys.modules["kmsnap"].__file__), file=sys.stderr)
size, repeat, mixed = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "mixed"
snap = build(size)
if mixed:  # a tenth of the events with tags: a file of two key orders, as the API gives
    for i, record in enumerate(snap.entities["event"].values()):
        if i % 10 == 0:
            record["tags"] = ["beta", i % 7]
data = {kind: dict(by_id) for kind, by_id in snap.entities.items()}
text = json.dumps(data)
out = {k: [] for k in ("write", "dumps", "load", "loads")}
with tempfile.TemporaryDirectory() as tmp:
    target = Path(tmp) / "s"
    for _ in range(repeat):
        for key, run in (("dumps", lambda: json.dumps(data)), ("loads", lambda: json.loads(text)),
                         ("write", lambda: save_snapshot(snap, target)),
                         ("load", lambda: load_snapshot(target))):
            gc.collect()
            started = time.perf_counter()
            run()
            out[key].append(time.perf_counter() - started)
print(json.dumps(out))
"""

DIFF = r"""
import sys, time
started = time.perf_counter()
from kmsnap.cli import run
code = run(["diff", "--format", "json", sys.argv[1], sys.argv[2]])
sys.stderr.write("SECONDS %f HWM %s\n" % (time.perf_counter() - started, HWM))
sys.exit(code)
""".replace("HWM)", HWM + ")")

PULL = r"""
import json, os, sys, tempfile, time
from pathlib import Path
from kmsnap.sources.core.crawler import PullOptions, pull_snapshot
from kmsnap.snapshot.store import save_snapshot
options = PullOptions(api=sys.argv[1], token=sys.argv[2])
# As `kmsnap pull` without --with-stats, holding records packed (an older kmsnap ignores both).
options.with_stats = False
options.pack = True
if len(sys.argv) > 3:
    options.concurrency = int(sys.argv[3])
started = time.perf_counter()
result = pull_snapshot(options)
with tempfile.TemporaryDirectory() as tmp:
    save_snapshot(result.snapshot, Path(tmp) / "snapshots")
    wall = time.perf_counter() - started
cpu = sum(os.times()[:2])
print(json.dumps({"entities": result.snapshot.size(), "requests": result.requests,
                  "seconds": wall, "cpu": cpu, "hwm_kb": int(HWM)}))
""".replace("int(HWM)", "int(" + HWM + ")")

# The whole command, into the snapshot a first run wrote: the shrink guard reads that one first.
PULL_CLI = r"""
import json, os, sys, time
from kmsnap.cli import run
os.environ["KISSMETRICS_TOKEN"] = sys.argv[2]
started = time.perf_counter()
code = run(["pull", "--quiet", "--api", sys.argv[1], "--out", sys.argv[3]])
wall = time.perf_counter() - started
print(json.dumps({"code": code, "seconds": wall, "cpu": sum(os.times()[:2]),
                  "hwm_kb": int(HWM)}))
""".replace("int(HWM)", "int(" + HWM + ")")


def spread(values: list[float], unit: str = "s", digits: int = 2) -> str:
    """min/median/max of ``values``."""
    lo, mid, hi = min(values), statistics.median(values), max(values)
    return f"{lo:.{digits}f}/{mid:.{digits}f}/{hi:.{digits}f} {unit}"


class Bench:
    """Runs kmsnap children against one checkout and prints one line per figure."""

    def __init__(self, root: Path, repeat: int, work: Path) -> None:
        self.root, self.repeat, self.work = root, repeat, work
        self.env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{HERE}"}
        for name in list(self.env):
            if name.startswith(("KMSNAP_", "KISSMETRICS_")):
                del self.env[name]
        # As an installed kmsnap starts (pip compiles what it installs): from bytecode, not
        # from source. A machine with PYTHONDONTWRITEBYTECODE set (this one has it) would
        # otherwise time the compiling of every kmsnap module in every child: 0.13 s a start.
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "kmsnap")],
                       env=self.env, check=True, stdout=subprocess.DEVNULL)

    def child(self, code: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", code, *args], env=self.env, cwd=self.work,
                              capture_output=True, text=True, check=True)

    def row(self, what: str, figure: str) -> None:
        print(f"| {what} | {figure} |", flush=True)

    def codec(self, size: int, *, mixed: bool = False) -> None:
        proc = self.child(CODEC, str(size), str(self.repeat), "mixed" if mixed else "uniform")
        measured = Path(json.loads(proc.stderr.strip().splitlines()[-1])).parents[1]
        if measured != self.root:  # the codec rows once measured this checkout whatever --root
            raise SystemExit(f"the codec child imported kmsnap from {measured}, not {self.root}")
        times = json.loads(proc.stdout)
        which = ", a tenth of its events with tags," if mixed else ""
        for ours, base, name in (("load", "loads", "json.loads"), ("write", "dumps", "json.dumps")):
            ratio = statistics.median(times[ours]) / statistics.median(times[base])
            self.row(f"{ours} a {size:,}-entity snapshot{which} vs {name}",
                     f"{spread(times[ours])} vs {spread(times[base])}: **{ratio:.2f}x** "
                     "(target <= 2x)")

    def diff_run(self, old: Path, new: Path) -> tuple[list[float], list[float]]:
        seconds, peaks = [], []
        for _ in range(self.repeat):
            started = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", DIFF, str(old), str(new)],
                                  env=self.env, cwd=self.work, capture_output=True, text=True)
            seconds.append(time.perf_counter() - started)
            if proc.returncode != 0:
                raise SystemExit(f"kmsnap diff failed: {proc.stderr.strip()}")
            line = proc.stderr.strip().splitlines()[-1].split()
            peaks.append(int(line[3]) / 1024)
        return seconds, peaks

    def diff(self, size: int, baseline_size: int) -> dict[str, Any]:
        from bench_diff import baseline, build, mutate

        from kmsnap.snapshot.store import save_snapshot

        pair = self.work / f"diff-{size}"
        if not (pair / "new").exists():
            old = build(size)
            save_snapshot(old, pair / "old")
            save_snapshot(mutate(old, size // 100), pair / "new")
        seconds, peaks = self.diff_run(pair / "old", pair / "new")
        figure = f"{spread(seconds)}, peak {spread(peaks, 'MB', 0)}"
        if baseline_size:
            small = self.work / f"diff-base-{baseline_size}"
            if not (small / "new").exists():
                base_old = build(baseline_size)
                save_snapshot(base_old, small / "old")
                save_snapshot(mutate(base_old, max(1, baseline_size // 100)), small / "new")
            _, _, total = baseline(small / "old", small / "new")
            scale = size / baseline_size
            note = f" (extrapolated x{scale:g} from {baseline_size:,})" if scale != 1 else ""
            ratio = total * scale / statistics.median(seconds)
            figure += (f" vs CSafeLoader + DeepDiff {total * scale:.0f} s{note}: "
                       f"**{ratio:.0f}x** (target >= 100x)")
        self.row(f"`kmsnap diff` of two {size:,}-entity snapshots, 1% changed", figure)
        return {"entities": size, "peak": statistics.median(peaks)}

    def startup(self) -> None:
        from kmsnap.model import Snapshot
        from kmsnap.snapshot.store import save_snapshot

        tiny = self.work / "tiny"
        snap = Snapshot(api="https://api.kissmetrics.com/core")
        snap.add("event", {"id": "e1", "name": "Signed Up"})
        save_snapshot(snap, tiny / "a")
        snap.add("event", {"id": "e2", "name": "Paid"})
        save_snapshot(snap, tiny / "b")
        runs = max(5, self.repeat)

        def timed(*argv: str) -> list[float]:
            out = []
            for _ in range(runs):
                started = time.perf_counter()
                subprocess.run([sys.executable, *argv], env=self.env, cwd=self.work,
                               capture_output=True, check=True)
                out.append(time.perf_counter() - started)
            return out

        diff = timed("-m", "kmsnap", "diff", str(tiny / "a"), str(tiny / "b"))
        version = timed("-m", "kmsnap", "--version")
        bare = timed("-c", "pass")
        self.row("`kmsnap diff` of two tiny snapshots (start-up)",
                 f"{spread(diff)} (target < 0.3 s); `kmsnap --version` {spread(version)}; "
                 f"`python -c pass` {spread(bare)}")

    def pull(self, size: int, latency_ms: float = 0.0, sequential: bool = False,
             concurrency: int = 0) -> dict[str, Any]:
        from bench_pull import TOKEN, baseline_pull

        from kmsnap.emulator import Emulator, generate_catalog

        with Emulator(generate_catalog(size=size, seed=2), token=TOKEN, max_page_size=100,
                      latency_ms=latency_ms) as emu:
            extra = [str(concurrency)] if concurrency else []
            runs = [json.loads(self.child(PULL, emu.base_url, TOKEN, *extra).stdout)
                    for _ in range(self.repeat if size <= 100_000 else 1)]
            base = None
            if sequential:
                started = time.perf_counter()
                baseline_pull(emu.base_url, TOKEN)
                base = time.perf_counter() - started
        seconds = [r["seconds"] for r in runs]
        cpu_us = [r["cpu"] / r["entities"] * 1e6 for r in runs]
        peaks = [r["hwm_kb"] / 1024 for r in runs]
        figure = (f"{spread(seconds)} in {runs[0]['requests']:,} requests, CPU "
                  f"{spread(cpu_us, 'µs', 0)} an entity, peak {spread(peaks, 'MB', 0)}")
        if base is not None:
            speedup = base / statistics.median(seconds)
            figure += f"; sequential script {base:.1f} s: **{speedup:.1f}x** (target >= 25x)"
        what = f"pull {size:,} entities" + (f" at {latency_ms:g} ms a request" if latency_ms
                                             else "")
        what += f", --concurrency {concurrency}" if concurrency else ""
        self.row(what, figure)
        return {"entities": runs[0]["entities"], "peak": statistics.median(peaks)}

    def pull_cli(self, size: int) -> None:
        """``kmsnap pull`` into the snapshot of a first ``kmsnap pull``, as a scheduled job."""
        from bench_pull import TOKEN

        from kmsnap.emulator import Emulator, generate_catalog

        with Emulator(generate_catalog(size=size, seed=2), token=TOKEN,
                      max_page_size=100) as emu:
            out = str(self.work / f"cli-{size}")
            runs = [json.loads(self.child(PULL_CLI, emu.base_url, TOKEN, out).stdout)
                    for _ in range(1 + (self.repeat if size <= 100_000 else 1))][1:]
            entities = emu.catalog.size()
        assert all(r["code"] == 0 for r in runs), runs
        seconds = [r["seconds"] for r in runs]
        cpu_us = [r["cpu"] / entities * 1e6 for r in runs]
        peaks = [r["hwm_kb"] / 1024 for r in runs]
        self.row(f"`kmsnap pull` of {entities:,} entities into the previous snapshot",
                 f"{spread(seconds)}, CPU {spread(cpu_us, 'µs', 0)} an entity, peak "
                 f"{spread(peaks, 'MB', 0)} (target < 600 MB at 1,000,000)")


def growth(points: list[dict[str, Any]], what: str) -> str:
    """Peak memory per extra entity between consecutive sizes, and whether it stays linear."""
    steps = []
    for a, b in zip(points, points[1:], strict=False):
        steps.append((b["peak"] - a["peak"]) * 1024 / (b["entities"] - a["entities"]))
    first, last = steps[0], steps[-1]
    shape = ("linear" if abs(last - first) <= 0.3 * max(abs(first), 0.1)
             else "sublinear" if last < first else "superlinear")
    sizes = " → ".join(f"{p['entities']:,}: {p['peak']:.0f} MB" for p in points)
    per = ", ".join(f"{s:.2f} KB" for s in steps)
    return f"{what} peak {sizes}; per extra entity {per}: {shape}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--million", action="store_true", help="add the 1,000,000-entity rows")
    parser.add_argument("--root", type=Path, default=ROOT, help="the kmsnap checkout to measure")
    parser.add_argument("--baseline-size", type=int, default=20_000)
    parser.add_argument("--only", default="pull,codec,diff,startup",
                        help="comma-separated rows: pull, codec, diff, startup")
    args = parser.parse_args()
    rows = set(args.only.split(","))
    with tempfile.TemporaryDirectory(prefix="kmsnap-bench-all-") as tmp:
        bench = Bench(args.root.resolve(), args.repeat, Path(tmp))
        print(f"kmsnap from {bench.root}; {os.cpu_count()} CPUs; repeats {args.repeat}\n")
        print("| figure | kmsnap vs baseline (min/median/max) |\n|---|---|")
        steps: list[Callable[[], Any]] = []
        if "pull" in rows:
            steps.append(lambda: bench.pull(20_000, 20.0, sequential=True))
            # the default is 8 requests in flight; the same pull with 16, beside the same script
            steps.append(lambda: bench.pull(20_000, 20.0, sequential=True, concurrency=16))
        if "codec" in rows:
            steps.append(lambda: bench.codec(100_000))
            steps.append(lambda: bench.codec(100_000, mixed=True))
        diffs: list[dict[str, Any]] = []
        if "diff" in rows:
            steps.append(lambda: diffs.append(bench.diff(10_000, 0)))
            steps.append(lambda: diffs.append(bench.diff(100_000, args.baseline_size)))
            if args.million:
                steps.append(lambda: diffs.append(bench.diff(1_000_000, 0)))
        if "startup" in rows:
            steps.append(bench.startup)
        for step in steps:
            step()
        if "pull" in rows:
            points = [bench.pull(size) for size in (10_000, 100_000)]
            if args.million:
                points.append(bench.pull(1_000_000))
            bench.pull_cli(100_000)
            if args.million:
                bench.pull_cli(1_000_000)
            print("\n" + growth(points, "pull:"))
        if diffs:
            print("\n" + growth(diffs, "diff:"))


if __name__ == "__main__":
    main()
