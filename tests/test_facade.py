"""The public facade in ``kmsnap/__init__.py``: every name resolves, nothing is imported until
used, a subpackage import never shadows a facade name, and the calls work end to end against
the emulator."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import kmsnap
from kmsnap.emulator import Emulator


def test_importing_kmsnap_loads_nothing_else() -> None:
    code = "import kmsnap, sys; print(sorted(m for m in sys.modules if m.startswith('kmsnap.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_public_name_resolves_and_is_listed() -> None:
    for name in kmsnap.__all__:
        assert getattr(kmsnap, name) is not None, name
    assert set(kmsnap.__all__) <= set(dir(kmsnap))
    try:
        kmsnap.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("an unknown name must raise AttributeError")


def test_subpackage_imports_do_not_shadow_facade_names() -> None:
    import kmsnap.compare
    import kmsnap.diff.engine
    import kmsnap.history.walk
    import kmsnap.render.changes  # noqa: F401

    for name in kmsnap.__all__:
        value = getattr(kmsnap, name)
        assert not isinstance(value, type(sys)), f"kmsnap.{name} is a module"


def test_pull_save_load_compare_render(tmp_path: Path) -> None:
    with Emulator(size=40) as emu:
        options = kmsnap.PullOptions(api=emu.base_url, token="demo-token", concurrency=2)
        first = kmsnap.pull_snapshot(options)
        kmsnap.save_snapshot(first, tmp_path / "snapshots")
        event_id = emu.catalog.ids("event")[0]
        emu.catalog.rename("event", event_id, "Renamed By Facade")
        second = kmsnap.pull_snapshot(options)
    loaded = kmsnap.load_snapshot(tmp_path / "snapshots")
    assert kmsnap.compare_snapshots(loaded, first).changes == []
    changes = kmsnap.compare_snapshots(tmp_path / "snapshots", second)
    assert [(c.change, c.id) for c in changes.changes] == [
        (kmsnap.ChangeType.RENAMED, event_id)
    ]
    assert changes.changes == kmsnap.diff_snapshots(loaded, second).changes
    assert "Renamed By Facade" in kmsnap.render_changes(changes, "markdown")
