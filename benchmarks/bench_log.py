"""Time ``kmsnap log --format json`` on a generated history: first run, then the cached run.

    python benchmarks/bench_log.py [--commits 200] [--size 20000] [--keep DIR]

Builds a git repository in a temporary directory: commit 1 is a generated catalog of SIZE
entities, each later commit makes a few small changes (renames, field edits, additions,
removals, a re-creation) and rewrites the snapshot with ``save_snapshot``. Generation time is
not the figure; the two ``kmsnap log`` runs (separate processes, as a user runs them) are.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kmsnap.emulator import generate_catalog
from kmsnap.snapshot.store import save_snapshot

ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", *args], cwd=repo, env={**os.environ, **ENV}, check=True, capture_output=True
    )


def build(repo: Path, commits: int, size: int) -> None:
    rng = random.Random(7)
    catalog = generate_catalog(size=size, seed=1)
    api = "https://api.example.test/core"
    git(repo, "init", "-q", "-b", "main")
    kinds = ["event", "property", "metric", "report"]
    for n in range(commits):
        if n:
            for _ in range(rng.randint(1, 5)):
                kind = rng.choice(kinds)
                ids = catalog.ids(kind)
                entity_id = rng.choice(ids)
                action = rng.random()
                if action < 0.35:
                    catalog.rename(kind, entity_id, f"renamed {n} {rng.randint(0, 999)}")
                elif action < 0.7:
                    catalog.set_field(kind, entity_id, "description", f"edit {n}")
                elif action < 0.8:
                    record = dict(catalog.get(kind, entity_id) or {})
                    record.pop("id", None)
                    record.pop("links", None)
                    record["name" if kind != "metric" else "title"] = f"new {n}"
                    catalog.add(kind, record)
                elif action < 0.9:
                    catalog.remove(kind, entity_id)
                else:
                    catalog.recreate(kind, entity_id)
        save_snapshot(catalog.to_snapshot(api), repo / "snapshots")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"snapshot {n}")


def timed_log(repo: Path) -> tuple[float, str, str]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "kmsnap", "log", "--format", "json", "--timing"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - started, proc.stdout, proc.stderr.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=200)
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--keep", type=Path, help="build the repository here and keep it")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="kmsnap-bench-log-"))
    repo = base / "repo"
    try:
        if not (repo / ".git").exists():
            repo.mkdir(parents=True)
            started = time.perf_counter()
            build(repo, args.commits, args.size)
            print(
                f"generated {args.commits} commits of a {args.size}-entity catalog "
                f"in {time.perf_counter() - started:.1f}s (not the figure)"
            )
        shutil.rmtree(repo / ".git" / "kmsnap-cache", ignore_errors=True)
        first, out1, note1 = timed_log(repo)
        cached, out2, note2 = timed_log(repo)
        assert out1 == out2, "cached output differs from the first run"
        print(f"first run:  {first:6.2f}s  ({note1})")
        print(f"cached run: {cached:6.2f}s  ({note2})")
        print(f"output: {len(out1):,} bytes of JSON, identical in both runs")
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
