"""The calls a library user makes, each a few lines over the packages that do the work.

``kmsnap/__init__.py`` exposes them lazily (``kmsnap.load_snapshot``, ...), so
the layout under them can change without breaking anyone's import.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kmsnap.compare import Rules
    from kmsnap.config import Config
    from kmsnap.diff.changeset import ChangeSet
    from kmsnap.history.walk import History
    from kmsnap.model import Snapshot
    from kmsnap.snapshot.selection import Selecting
    from kmsnap.snapshot.store import SnapshotSource
    from kmsnap.sources.core.crawler import ProgressCallback, PullOptions

__all__ = [
    "compare_snapshots",
    "load_history",
    "load_snapshot",
    "pull_snapshot",
    "render_changes",
    "save_snapshot",
]


def load_snapshot(
    spec: str | Path, *, cwd: Path | None = None, with_stats: bool = False
) -> Snapshot:
    """The snapshot at ``spec``: a directory, or ``REV:PATH`` in the git repository of ``cwd``."""
    from kmsnap.git.source import open_source
    from kmsnap.snapshot import store

    return store.load_snapshot(open_source(str(spec), cwd=cwd), with_stats=with_stats)


def save_snapshot(snapshot: Snapshot, directory: str | Path, *, with_stats: bool = False) -> None:
    """Write ``snapshot`` to ``directory`` in the canonical form, replacing it atomically."""
    from kmsnap.snapshot import store

    store.save_snapshot(snapshot, Path(directory), with_stats=with_stats)


def pull_snapshot(
    options: PullOptions,
    *,
    select: Selecting | None = None,
    progress: ProgressCallback | None = None,
) -> Snapshot:
    """Crawl the Core API (``options.api`` with ``options.token``) and keep what ``select``
    (a ``Config`` or ``Selection``; None: everything) selects. Nothing is written."""
    from kmsnap.compare import pull_selected

    return pull_selected(options, select, progress=progress).snapshot


def compare_snapshots(
    old: Snapshot | SnapshotSource | str | Path,
    new: Snapshot | SnapshotSource | str | Path,
    *,
    config: Config | None = None,
    rules: Rules | None = None,
    kinds: Iterable[str] | None = None,
    with_stats: bool = False,
    cwd: Path | None = None,
) -> ChangeSet:
    """What changed from ``old`` to ``new``: each a ``Snapshot``, a directory or ``REV:PATH``.

    ``config`` (kmsnap.yaml's include/exclude and ignore_fields) or explicit ``rules`` decide
    what is compared; ``kinds`` limits the kinds."""
    import kmsnap.compare as step
    from kmsnap.git.source import open_source
    from kmsnap.model import Snapshot

    chosen = rules if rules is not None else (
        step.Rules.from_config(config) if config is not None else step.NO_RULES
    )
    if isinstance(old, Snapshot) and isinstance(new, Snapshot):
        return step.compare_snapshots(old, new, rules=chosen, kinds=kinds, with_stats=with_stats)

    def source(side: Snapshot | SnapshotSource | str | Path) -> SnapshotSource:
        if isinstance(side, Snapshot):
            return step.MemorySource.encode(side, with_stats=with_stats)
        if isinstance(side, (str, Path)):
            return open_source(str(side), cwd=cwd)
        return side

    return step.compare_sources(
        source(old), source(new), rules=chosen, kinds=kinds, with_stats=with_stats
    )


def render_changes(changes: ChangeSet, fmt: str = "text", *, color: bool = False) -> str:
    """``changes`` as ``text``, ``markdown``, ``json`` or ``github`` (workflow annotations)."""
    from kmsnap.render.changes import render as render_changes

    return render_changes(changes, fmt, color=color)


def load_history(
    path: str = "snapshots", *, cwd: Path | None = None, revisions: Iterable[str] = (),
    with_stats: bool = False,
) -> History:
    """``kmsnap log`` as data: every commit that touched ``path``, newest first, with its
    changes, from the git repository of ``cwd``."""
    from kmsnap.history import walk

    return walk.load_history(
        walk.LogQuery(path=path, revisions=tuple(revisions), with_stats=with_stats), cwd=cwd
    )
