"""Regenerate the example snapshot in ``snapshots/`` from the bundled emulator.

The example is the catalog ``kmsnap serve`` serves by default (``--size 2000 --seed 0``),
pulled through the real HTTP emulator exactly as ``kmsnap pull`` would. The emulator runs
on a free port, so before saving, the snapshot's ``api`` (recorded in ``kmsnap.yaml``) is set
to ``http://127.0.0.1:8765/core``, the URL ``kmsnap serve`` prints by default: the example's
bytes then never depend on the port. ``tests/test_example_snapshot.py`` fails when the
committed files differ from what this writes.

Usage: python scripts/regenerate_example.py [OUT_DIR]   (default: snapshots/ of this repository)
"""

from __future__ import annotations

import sys
from pathlib import Path

from kmsnap.demo.scenario import write_example_snapshot

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else ROOT / "snapshots"
    result = write_example_snapshot(out)
    print(f"wrote {result.snapshot.size()} entities to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
