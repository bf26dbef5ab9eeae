"""The example snapshot committed in ``snapshots/`` is exactly what a pull of the default demo
catalog writes, so any change to the snapshot format shows up in review."""

from __future__ import annotations

import inspect
import runpy
from pathlib import Path

from kmsnap.cli.serve import serve
from kmsnap.demo.scenario import EXAMPLE_API, EXAMPLE_SEED, EXAMPLE_SIZE
from kmsnap.snapshot.store import load_snapshot

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "snapshots"
SCRIPT = ROOT / "scripts" / "regenerate_example.py"
HOW = "if the change is intended, run: python scripts/regenerate_example.py (and commit snapshots/)"


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_committed_example_is_what_a_pull_writes(tmp_path: Path) -> None:
    out = tmp_path / "snapshots"
    # Through the script itself, so the command the failure message gives is tested too.
    main = runpy.run_path(str(SCRIPT), run_name="regenerate_example")["main"]
    assert main([str(out)]) == 0

    fresh, committed = _files(out), _files(COMMITTED)
    missing = sorted(fresh.keys() - committed.keys())
    extra = sorted(committed.keys() - fresh.keys())
    differing = sorted(rel for rel in fresh.keys() & committed.keys()
                       if fresh[rel] != committed[rel])
    assert not (missing or extra or differing), (
        f"snapshots/ is not what a pull of the demo catalog writes: missing {missing[:5]}, "
        f"extra {extra[:5]}, differing {differing[:5]}; {HOW}"
    )


def test_the_example_is_the_catalog_kmsnap_serve_serves() -> None:
    defaults = {name: p.default for name, p in inspect.signature(serve).parameters.items()}
    assert (defaults["size"], defaults["seed"]) == (EXAMPLE_SIZE, EXAMPLE_SEED)
    assert EXAMPLE_API == f"http://{defaults['host']}:{defaults['port']}/core"


def test_the_example_loads_and_records_the_serve_url() -> None:
    snapshot = load_snapshot(COMMITTED)
    assert snapshot.api == EXAMPLE_API
    assert snapshot.size() == EXAMPLE_SIZE
    assert not snapshot.stats  # usage counters stay out of a committed snapshot
