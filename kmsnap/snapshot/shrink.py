"""The shrink guard: a snapshot that lost a whole kind, or too large a share of the entities of
the one it replaces, is refused instead of written (or, for ``check``, reported as drift).

A root page without links, an empty page where a collection used to be, a token that suddenly
sees one account: each looks to the crawler like a catalog that shrank, and a scheduled job
would commit the deletion. A real catalog rarely loses a quarter of itself in a day, so such a
pull stops with one line saying what would vanish and how to accept it (``--allow-shrink``,
``allow_shrink: true`` in ``kmsnap.yaml``, ``KMSNAP_ALLOW_SHRINK=1``).

``measure_shrink`` and ``check_shrink`` are pure; ``ShrinkGuard`` reads the previous snapshot
(before the crawl, so a broken one fails fast and only its ids stay in memory).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kmsnap.errors import KmsnapError, SnapshotError
from kmsnap.model import ABSENT_KINDS, KINDS, Snapshot, rel_for_kind

if TYPE_CHECKING:
    from kmsnap.config import Config

Ids = Mapping[str, Collection[str]]  # kind -> entity ids

# How the line begins: ``what`` is "all 1,204 events" or "3,120 of the 5,100 entities".
PULL_LEAD = "the pull would remove {what} from {label}"
CHECK_LEAD = "compared with {label}, the live catalog lacks {what}"


class ShrinkError(KmsnapError):
    """A pull would lose a whole kind or more than ``max_shrink`` of the snapshot's entities."""


@dataclass(frozen=True)
class Shrink:
    """What a new snapshot loses against the old one, over the kinds compared."""

    old_total: int = 0  # entities of the old snapshot
    removed: int = 0  # of those, the ids the new one no longer has
    vanished: dict[str, int] = field(default_factory=dict)  # kind -> old count, now none

    @property
    def share(self) -> float:
        """Removed ids over old ids (0 for an empty old snapshot)."""
        return self.removed / self.old_total if self.old_total else 0.0


class IdDigest(Collection[str]):
    """The ids of one kind of the snapshot a pull replaces, held as their sorted hashes.

    8 bytes an id instead of the strings in a set (a million ids: 8 MB, not about 120): the
    guard only counts how many old ids the new catalog still has. Hashes are of this process
    (``hash``), so a digest is never stored. Two different ids with one hash would count a
    removed id as kept: about one chance in 10^7 for a million ids, and it can only make a
    shrink look one entity smaller. Membership of a single id is by its hash alone.
    """

    __slots__ = ("_hashes",)

    def __init__(self, ids: Iterable[str]) -> None:
        self._hashes = array("q", sorted(set(map(hash, ids))))

    def __len__(self) -> int:
        return len(self._hashes)

    def __iter__(self) -> Iterator[str]:
        raise TypeError("an IdDigest holds hashes, not ids")

    def __contains__(self, entity_id: object) -> bool:
        hashes, h = self._hashes, hash(entity_id)
        at = bisect_left(hashes, h)
        return at < len(hashes) and hashes[at] == h

    def kept(self, ids: Collection[str]) -> int:
        """How many of these ids are among ``ids``, each counted once (a mapping's keys and a
        set are looked up as they are, without another set of them)."""
        unique = ids if isinstance(ids, (Mapping, set, frozenset)) else set(ids)
        return sum(map(self.__contains__, unique))


def _ids(snapshot: Snapshot | Ids) -> Ids:
    """The entity ids per kind, of a snapshot or of a mapping of ids (as they are, no copy)."""
    return snapshot.entities if isinstance(snapshot, Snapshot) else snapshot


def measure_shrink(
    old: Snapshot | Ids, new: Snapshot | Ids, *, kinds: Iterable[str] | None = None
) -> Shrink:
    """Count, per kind, the old ids missing from ``new``; ``kinds`` limits the comparison."""
    old_ids, new_ids = _ids(old), _ids(new)
    wanted = None if kinds is None else set(kinds)
    total = removed = 0
    vanished: dict[str, int] = {}
    for kind in _ordered(old_ids):
        if wanted is not None and kind not in wanted:
            continue
        before = old_ids[kind]
        after: Collection[str] = new_ids.get(kind, ())
        count = len(before)
        if isinstance(before, IdDigest):
            kept = before.kept(after)
        else:
            kept = len(set(before).intersection(after))
        total += count
        removed += count - kept
        if count and not after:
            vanished[kind] = count
    return Shrink(old_total=total, removed=removed, vanished=vanished)


def check_shrink(
    old: Snapshot | Ids,
    new: Snapshot | Ids,
    *,
    max_share: float,
    label: str,
    kinds: Iterable[str] | None = None,
    lead: str = PULL_LEAD,
) -> str | None:
    """The one-line problem when ``new`` loses a whole kind or more than ``max_share`` of the
    entities of ``old`` (by ids removed, not net count), else None. ``label`` names ``old``."""
    shrink = measure_shrink(old, new, kinds=kinds)
    too_many = shrink.share > max_share
    if not shrink.vanished and not too_many:
        return None
    counted = f"{shrink.removed:,} of the {shrink.old_total:,} entities"
    share = _percent(shrink.share, max_share)
    over = f", more than max_shrink {max_share:g}" if too_many else ""
    if shrink.vanished:
        parts = [_all_of(kind, n) for kind, n in shrink.vanished.items()]
        what = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
        detail = f"{counted} in all, {share}{over}"
    else:
        what, detail = counted, f"{share}{over}"
    return f"{lead.format(what=what, label=label)} ({detail})"


def _ordered(ids: Mapping[str, object]) -> list[str]:
    return [k for k in KINDS if k in ids] + sorted(k for k in ids if k not in KINDS)


def _all_of(kind: str, n: int) -> str:
    if n == 1:
        return f"the only {kind}" if kind in KINDS else f"the only entity of {kind}"
    return f"all {n:,} {rel_for_kind(kind)}"


def _percent(share: float, limit: float) -> str:
    """``61%``; with one decimal when over ``limit`` but rounding would hide it (25.3%)."""
    text = f"{share:.0%}"
    if share > limit and round(share * 100) <= limit * 100:
        text = f"{share:.1%}"
    return text


def _accept_hint(config: Config, action: str) -> str:
    if config.path is not None and config.path.name == "pyproject.toml":
        key = "allow_shrink = true under [tool.kmsnap] in pyproject.toml"
    else:
        key = "allow_shrink: true in kmsnap.yaml"
    return f"If the catalog really shrank, run again with --allow-shrink {action}(or set {key})"


class ShrinkGuard:
    """The ids of the snapshot a pull replaces (or ``check`` compares with), checked against
    the new catalog. ``None`` ids: nothing to guard (first pull, or allowed)."""

    def __init__(
        self,
        ids: Ids | None,
        label: str,
        config: Config,
        *,
        kinds: Iterable[str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.ids = ids
        self.label = label
        self.config = config
        self.kinds = None if kinds is None else frozenset(kinds)
        self.max_share: float = config.resolve("max_shrink", environ=environ)

    @classmethod
    def for_pull(
        cls,
        target: Path,
        config: Config,
        *,
        allow: bool = False,
        environ: Mapping[str, str] | None = None,
    ) -> ShrinkGuard:
        """Read the snapshot at ``target`` that a pull would replace.

        Not guarded: ``--allow-shrink`` (``allow``) or ``allow_shrink``; no directory, an empty
        one, or one that is not a snapshot (the store refuses to replace that). A snapshot that
        cannot be read is an error: what the pull would remove from it cannot be told, and a
        broken file must not let a broken answer through; ``--allow-shrink`` replaces it.
        ``environ`` (default ``os.environ``) is where ``KMSNAP_ALLOW_SHRINK``/``_MAX_SHRINK`` are.
        """
        label = str(target)
        if allow or config.resolve("allow_shrink", environ=environ):
            return cls(None, label, config, environ=environ)
        try:
            ids = _load_ids(target, config)
        except SnapshotError as exc:
            raise ShrinkError(
                f"{exc}; cannot tell what the pull would remove from {label}: restore it "
                f"(git checkout -- {label}) or run again with --allow-shrink to replace it"
            ) from None
        return cls(ids, label, config, environ=environ)

    @classmethod
    def for_check(
        cls,
        snapshot_dir: Path,
        config: Config,
        *,
        allow: bool = False,
        kinds: Iterable[str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> ShrinkGuard:
        """Read the committed snapshot ``check`` compares with; its errors are the comparison's."""
        label = str(snapshot_dir)
        if allow or config.resolve("allow_shrink", environ=environ):
            return cls(None, label, config, environ=environ)
        return cls(
            _load_ids(snapshot_dir, config), label, config, kinds=kinds, environ=environ
        )

    def problem(self, new: Snapshot, *, lead: str = PULL_LEAD) -> str | None:
        """The one-line shrink ``new`` shows, or None."""
        if self.ids is None:
            return None
        # Kinds the new snapshot's source cannot serve (v3 has no metrics) are not removals.
        absent = ABSENT_KINDS.get(new.source, frozenset())
        ids = {kind: ids for kind, ids in self.ids.items() if kind not in absent}
        return check_shrink(
            ids, new, max_share=self.max_share, label=self.label, kinds=self.kinds, lead=lead
        )

    def check_pull(self, new: Snapshot) -> None:
        """Raise ``ShrinkError`` when the pull must not replace the snapshot with ``new``."""
        problem = self.problem(new)
        if problem is not None:
            raise ShrinkError(f"{problem}; not replacing it. {_accept_hint(self.config, '')}")

    def check_live(self, live: Snapshot) -> None:
        """Raise ``ShrinkError`` when ``check`` should not report ``live`` as mere drift."""
        problem = self.problem(live, lead=CHECK_LEAD)
        if problem is not None:
            raise ShrinkError(
                f"{problem}; more likely a broken answer than drift. "
                f"{_accept_hint(self.config, 'to see them as removals ')}"
            )


def _load_ids(target: Path, config: Config) -> dict[str, IdDigest] | None:
    """The ids per kind of the snapshot at ``target``, as selected by ``include``/``exclude``;
    None when there is no snapshot there. Only their digests are kept; with no selection the
    entities are never built (``store.load_ids``)."""
    from kmsnap.snapshot.layout import META_FILE
    from kmsnap.snapshot.selection import filter_snapshot, is_everything
    from kmsnap.snapshot.store import DirectorySource, load_ids, load_snapshot

    if target.is_symlink() or not target.is_dir() or not (target / META_FILE).is_file():
        return None
    source = DirectorySource(target, label=str(target))
    ids: Ids
    if is_everything(config):
        ids = load_ids(source)
    else:
        ids = filter_snapshot(load_snapshot(source), config).entities
    return {kind: IdDigest(of_kind) for kind, of_kind in ids.items() if of_kind}
