"""The one compare step: two snapshots, selected by ``include``/``exclude`` and diffed with the
ignore rules, into a ``ChangeSet`` that also says which fields it left out and why.

``kmsnap diff``, ``kmsnap check``, ``kmsnap log`` and the demo all compare through here::

    rules = Rules.from_config(load_config())
    cs = compare_sources(open_source("HEAD~1:snapshots"), open_source("snapshots"), rules=rules)

``compare_live`` is check's half: a freshly pulled ``Snapshot`` against a stored one. The live
side goes through the store's encoder and decoder in memory (``MemorySource``), so it compares
exactly as it would after ``kmsnap pull`` wrote it (usage fields split off, values the files
cannot tell apart equal), with no temporary directory. ``pull_selected`` is the pull with the
selection applied, as ``kmsnap pull`` and ``kmsnap check`` do it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from kmsnap.diff.engine import ChangeSet, diff_snapshots, normalize_kinds
from kmsnap.errors import UsageError
from kmsnap.model import KINDS, Snapshot, kind_for_rel
from kmsnap.snapshot.selection import Selecting, filter_snapshot, is_everything, selection_key

if TYPE_CHECKING:
    import requests

    from kmsnap.config import Config
    from kmsnap.snapshot.store import SnapshotSource
    from kmsnap.sources.core.crawler import ProgressCallback, PullOptions, PullResult
    from kmsnap.sources.v3 import V3PullOptions

__all__ = [
    "NO_RULES",
    "MemorySource",
    "Rules",
    "SourceMismatchError",
    "UnknownKindError",
    "compare_live",
    "compare_snapshots",
    "compare_sources",
    "live_label",
    "pull_selected",
]


@dataclass(frozen=True)
class Rules:
    """What a comparison keeps and leaves out.

    ``select``: the accounts and products kept (a ``Config``, a ``Selection``; None: all).
    ``ignore_fields``: kind -> field names or dotted paths the diff leaves out.
    ``reasons``: kind -> field -> why, for the reports to show (``ChangeSet.ignored``).
    """

    select: Selecting | None = None
    ignore_fields: Mapping[str, Collection[str]] = field(default_factory=dict)
    reasons: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Config) -> Rules:
        """kmsnap.yaml's ``include``/``exclude`` and ``ignore_fields`` with their reasons."""
        from kmsnap.config import ignore_fields_by_kind, ignore_reasons

        return cls(
            select=config,
            ignore_fields=ignore_fields_by_kind(config),
            reasons=ignore_reasons(config),
        )


NO_RULES = Rules()  # the whole catalog, every field


class UnknownKindError(UsageError):
    """A kind asked for (``kinds=``) that is neither known nor in either snapshot."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        super().__init__(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")


def _check_kinds(wanted: set[str] | None, *snapshots: Snapshot) -> None:
    if wanted is None:
        return
    present = set(KINDS).union(*(s.entities for s in snapshots))
    unknown = sorted(wanted - present)
    if unknown:
        raise UnknownKindError(unknown[0])


class SourceMismatchError(UsageError):
    """Snapshots of two different APIs (Core and v3): their ids cannot be matched."""


def source_mismatch(
    old_source: str, new_source: str, old_label: str, new_label: str
) -> SourceMismatchError:
    """The refusal to compare a snapshot of one source with a catalog of another."""
    return SourceMismatchError(
        f"cannot compare {old_label} (pulled from {old_source}) with {new_label} (pulled "
        f"from {new_source}): their ids cannot be matched, so everything would read as "
        "removed and added; compare snapshots pulled from the same source"
    )


def _check_sources(old: Snapshot, new: Snapshot, old_label: str, new_label: str) -> None:
    if old.source != new.source and old.size() and new.size():
        raise source_mismatch(old.source, new.source, old_label, new_label)


def compare_snapshots(
    old: Snapshot,
    new: Snapshot,
    *,
    rules: Rules = NO_RULES,
    kinds: Iterable[str] | None = None,
    with_stats: bool = False,
    old_label: str = "old",
    new_label: str = "new",
) -> ChangeSet:
    """The change set from ``old`` to ``new`` under ``rules``, its ``ignored`` reasons included.

    ``kinds`` (singular or plural) keeps only those kinds, and only their ignore reasons; a
    kind that is neither known nor in a snapshot raises ``UnknownKindError``. ``with_stats``
    compares usage fields too (the snapshots must hold them in ``stats``).
    """
    wanted = normalize_kinds(kinds) if kinds is not None else None
    _check_kinds(wanted, old, new)
    _check_sources(old, new, old_label, new_label)
    if rules.select is not None and not is_everything(rules.select):
        old, new = filter_snapshot(old, rules.select), filter_snapshot(new, rules.select)
    cs = diff_snapshots(
        old,
        new,
        old_label=old_label,
        new_label=new_label,
        with_stats=with_stats,
        kinds=wanted,
        ignore_fields=rules.ignore_fields,
    )
    # What the comparison left out, and why (kmsnap.yaml asks for a reason precisely so that
    # reports can show it); only for the kinds compared.
    ignored = {
        kind: dict(reasons)
        for kind, reasons in rules.reasons.items()
        if wanted is None or kind_for_rel(kind) in wanted
    }
    selected = {
        f"{side}.{sub}": names
        for side, subs in selection_key(rules.select).items()
        for sub, names in subs.items()
        if names
    } if rules.select is not None else {}
    return replace(cs, ignored=ignored, selected=selected)


def compare_sources(
    old: SnapshotSource | None,
    new: SnapshotSource | None,
    *,
    rules: Rules = NO_RULES,
    kinds: Iterable[str] | None = None,
    with_stats: bool = False,
    old_label: str | None = None,
    new_label: str | None = None,
) -> ChangeSet:
    """Load both snapshots and compare them (``compare_snapshots``); labels default to the
    sources'. A side that is None is an empty catalog (a directory that did not exist yet).

    Both present: loaded as a pair, so entities whose text is the same on both sides are
    never parsed. Raises ``SnapshotError`` naming the file that cannot be read.
    """
    from kmsnap.snapshot.store import load_pair, load_snapshot

    if old is not None and new is not None:
        old_snap, new_snap = load_pair(old, new, with_stats=with_stats)
    else:
        old_snap = Snapshot() if old is None else load_snapshot(old, with_stats=with_stats)
        new_snap = Snapshot() if new is None else load_snapshot(new, with_stats=with_stats)
    return compare_snapshots(
        old_snap,
        new_snap,
        rules=rules,
        kinds=kinds,
        with_stats=with_stats,
        old_label=old_label if old_label is not None else _label(old),
        new_label=new_label if new_label is not None else _label(new),
    )


def _label(source: SnapshotSource | None) -> str:
    return "empty" if source is None else source.label


def live_label(live: Snapshot) -> str:
    """How reports name a live catalog: ``live (https://api.kissmetrics.com/core)``."""
    return f"live ({live.api})" if live.api else "live"


def compare_live(
    stored: SnapshotSource,
    live: Snapshot,
    *,
    rules: Rules = NO_RULES,
    kinds: Iterable[str] | None = None,
    with_stats: bool = False,
    label: str | None = None,
) -> ChangeSet:
    """The drift from the ``stored`` snapshot to the ``live`` catalog, as ``kmsnap pull`` then
    ``kmsnap diff`` would show it: the live side is encoded to the store's files and read back,
    in memory. ``label`` names the live side (default ``live_label(live)``)."""
    name = live_label(live) if label is None else label
    new = MemorySource.encode(live, with_stats=with_stats, label=name)
    return compare_sources(stored, new, rules=rules, kinds=kinds, with_stats=with_stats)


class MemorySource:
    """A snapshot's files held in memory: a ``SnapshotSource`` with no content ids (each file
    is compared by its bytes) that knows its sizes, so the store's bounds apply as on disk."""

    def __init__(self, files: Mapping[str, bytes], *, label: str = "memory") -> None:
        self.label = label
        self._files = dict(files)

    @classmethod
    def encode(
        cls, snapshot: Snapshot, *, with_stats: bool = False, label: str = "memory"
    ) -> MemorySource:
        """The files ``save_snapshot`` would write for ``snapshot``, without writing them."""
        from kmsnap.snapshot.store import render_snapshot

        return cls(render_snapshot(snapshot, with_stats=with_stats), label=label)

    def list_files(self) -> dict[str, str | None]:
        return dict.fromkeys(self._files)

    def sizes(self) -> dict[str, int]:
        """Every file's size in bytes."""
        return {rel: len(data) for rel, data in self._files.items()}

    def read_files(self, relpaths: Sequence[str]) -> dict[str, bytes]:
        return {rel: self._files[rel] for rel in relpaths}


def pull_selected(
    options: PullOptions | V3PullOptions,
    select: Selecting | None = None,
    *,
    progress: ProgressCallback | None = None,
    session: requests.Session | None = None,
) -> PullResult:
    """Crawl the catalog (``sources.core.crawler.pull_snapshot``, or ``sources.v3.pull_v3``
    for ``V3PullOptions``) and keep only what ``select`` (kmsnap.yaml's ``include``/
    ``exclude``) selects: what ``kmsnap pull`` saves."""
    from kmsnap.sources.core.crawler import pull_snapshot
    from kmsnap.sources.v3 import V3PullOptions, pull_v3

    if isinstance(options, V3PullOptions):
        result: PullResult = pull_v3(options, progress=progress, session=session)
    else:
        result = pull_snapshot(options, progress=progress, session=session)
    if select is None or is_everything(select):
        return result
    return replace(result, snapshot=filter_snapshot(result.snapshot, select))
