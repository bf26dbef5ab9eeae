"""kmsnap: a Kissmetrics catalog under version control.

The package is a library first; ``kmsnap.cli`` is a thin typer layer over it. What a library
user imports is here, loaded on first use (so ``kmsnap --help`` pays for none of it)::

    import kmsnap

    config = kmsnap.load_config()                  # kmsnap.yaml, if there is one
    old = kmsnap.load_snapshot("HEAD:snapshots")   # a directory or REV:PATH
    new = kmsnap.pull_snapshot(kmsnap.PullOptions(api=API, token=TOKEN), select=config)
    changes = kmsnap.compare_snapshots(old, new, config=config)
    print(kmsnap.render_changes(changes, "markdown"))
    kmsnap.save_snapshot(new, "snapshots")

Everything else (``kmsnap.snapshot``, ``kmsnap.diff``, ``kmsnap.sources``, ...) is internal
and may move between releases.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> (module, attribute): the public facade, imported lazily by __getattr__. The names
# are verbs, never a subpackage's name: importing ``kmsnap.diff`` binds ``kmsnap.diff`` to the
# package, which would shadow a facade function of that name.
_PUBLIC: dict[str, tuple[str, str]] = {
    "load_snapshot": ("kmsnap.library", "load_snapshot"),
    "save_snapshot": ("kmsnap.library", "save_snapshot"),
    "pull_snapshot": ("kmsnap.library", "pull_snapshot"),
    "compare_snapshots": ("kmsnap.library", "compare_snapshots"),
    "render_changes": ("kmsnap.library", "render_changes"),
    "load_history": ("kmsnap.library", "load_history"),
    "diff_snapshots": ("kmsnap.diff.engine", "diff_snapshots"),
    "load_config": ("kmsnap.config", "load_config"),
    "Config": ("kmsnap.config", "Config"),
    "Rules": ("kmsnap.compare", "Rules"),
    "PullOptions": ("kmsnap.sources.core.crawler", "PullOptions"),
    "Snapshot": ("kmsnap.model", "Snapshot"),
    "ChangeSet": ("kmsnap.diff.changeset", "ChangeSet"),
    "Change": ("kmsnap.diff.changeset", "Change"),
    "ChangeType": ("kmsnap.model", "ChangeType"),
    "Severity": ("kmsnap.model", "Severity"),
    "KmsnapError": ("kmsnap.errors", "KmsnapError"),
}

__all__ = [
    "Change",
    "ChangeSet",
    "ChangeType",
    "Config",
    "KmsnapError",
    "PullOptions",
    "Rules",
    "Severity",
    "Snapshot",
    "__version__",
    "compare_snapshots",
    "diff_snapshots",
    "load_config",
    "load_history",
    "load_snapshot",
    "pull_snapshot",
    "render_changes",
    "save_snapshot",
]

if TYPE_CHECKING:
    from kmsnap.compare import Rules
    from kmsnap.config import Config, load_config
    from kmsnap.diff.changeset import Change, ChangeSet
    from kmsnap.diff.engine import diff_snapshots
    from kmsnap.errors import KmsnapError
    from kmsnap.library import (
        compare_snapshots,
        load_history,
        load_snapshot,
        pull_snapshot,
        render_changes,
        save_snapshot,
    )
    from kmsnap.model import ChangeType, Severity, Snapshot
    from kmsnap.sources.core.crawler import PullOptions


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module 'kmsnap' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
