"""A disk cache of per-commit change lists for ``kmsnap log``, under ``.git/kmsnap-cache/``.

An entry is keyed by what determines its content: the two snapshot tree ids (git's content
hashes), the options that change results, and a fingerprint of kmsnap's own source (every
module of the package). A bad, truncated or foreign entry is ignored and recomputed, never
trusted.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Collection, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from kmsnap import __version__
from kmsnap.diff.engine import Change
from kmsnap.errors import KmsnapError
from kmsnap.snapshot.atomic import write_file_atomic

__all__ = ["CACHE_FORMAT", "CACHE_DIR", "ChangeCache", "cache_key"]

# Bump when the entry layout or what an entry means changes: old entries are then never read.
CACHE_FORMAT = 1
CACHE_DIR = "kmsnap-cache"

_CHANGE_KEYS = ("kind", "change", "id", "name", "account_id", "product_id", "severity", "old_id")


PACKAGE_DIR = Path(__file__).resolve().parent.parent  # kmsnap/, from kmsnap/history/cache.py


@lru_cache(maxsize=4)
def package_fingerprint(root: Path = PACKAGE_DIR) -> str:
    """A hash of every ``.py`` file under ``root`` (names and bytes, sorted by relative path).

    Computed once per process (a few hundred KiB). Every module counts, not a hand-picked
    list: any of them can decide what a change list contains (the loader, the selection, the
    diff, the walk), and a list of names goes stale the day a module moves. A package whose
    source cannot be read is an error, never a fingerprint that would trust stale entries.
    """
    digest = hashlib.sha256()
    count = 0
    try:
        paths = sorted(root.rglob("*.py"), key=lambda p: p.relative_to(root).as_posix())
        for path in paths:
            data = path.read_bytes()
            name = path.relative_to(root).as_posix().encode("utf-8", "surrogateescape")
            digest.update(b"%d:%s\0%d:" % (len(name), name, len(data)))
            digest.update(data)
            count += 1
    except OSError as exc:
        raise KmsnapError(
            f"cannot read kmsnap's own source ({exc.filename}: {exc.strerror}) to key the "
            "kmsnap log cache: reinstall kmsnap"
        ) from None
    if count == 0:
        raise KmsnapError(
            f"no kmsnap source files under {root} to key the kmsnap log cache: reinstall "
            "kmsnap from a wheel or a source tree (not a zip)"
        )
    return digest.hexdigest()


def engine_fingerprint() -> str:
    """What keys entries to the code that made them: the version and every module's source.

    The version alone is not enough: a fix between releases must not be hidden behind results
    cached by the old code.
    """
    return hashlib.sha256(f"{__version__}\0{package_fingerprint()}".encode()).hexdigest()[:16]


def cache_key(
    old_tree: str | None,
    new_tree: str | None,
    *,
    with_stats: bool,
    ignore_fields: Mapping[str, Collection[str]] | None,
) -> dict[str, Any]:
    """Everything an entry depends on, as a JSON-able mapping (also stored in the entry)."""
    return {
        "format": CACHE_FORMAT,
        "engine": engine_fingerprint(),
        "old": old_tree,
        "new": new_tree,
        "with_stats": with_stats,
        "ignore": {k: sorted(v) for k, v in sorted((ignore_fields or {}).items())},
    }


def _plain(key: Mapping[str, Any]) -> Any:
    """``key`` as it reads back from JSON (tuples become lists), for comparing."""
    return json.loads(json.dumps(key, sort_keys=True))


def _exact_json(value: Any) -> bool:
    """Whether ``value`` survives a JSON round trip unchanged, types included."""
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_exact_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _exact_json(v) for k, v in value.items())
    return False


def change_to_cache(change: Change) -> dict[str, Any]:
    out: dict[str, Any] = {key: getattr(change, key) for key in _CHANGE_KEYS}
    out["fields"] = change.fields
    return out


def change_from_cache(data: Any) -> Change:
    """A ``Change`` from a cached dict; ValueError when anything is off."""
    if not isinstance(data, dict) or set(data) != {*_CHANGE_KEYS, "fields"}:
        raise ValueError("bad change record")
    for key in _CHANGE_KEYS:
        value = data[key]
        if value is not None and not isinstance(value, str):
            raise ValueError(f"bad {key}")
    for key in ("kind", "change", "id", "severity"):
        if data[key] is None:
            raise ValueError(f"missing {key}")
    fields = data["fields"]
    if fields is not None:
        if not isinstance(fields, dict) or not all(
            isinstance(sides, dict) and set(sides) <= {"old", "new"} for sides in fields.values()
        ):
            raise ValueError("bad fields")
    return Change(**data)


class ChangeCache:
    """Entries in ``<git dir>/kmsnap-cache/v<format>/<xx>/<hash>.json``; never raises on I/O."""

    def __init__(self, git_dir: Path, *, enabled: bool = True):
        self.root = git_dir / CACHE_DIR / f"v{CACHE_FORMAT}"
        self.enabled = enabled
        self.hits = 0
        self.misses = 0
        self.writes = 0

    def _path(self, key: Mapping[str, Any]) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        return self.root / digest[:2] / f"{digest}.json"

    def get(self, key: Mapping[str, Any]) -> dict[str, Any] | None:
        """The stored result for ``key`` (``{"changes": [Change, ...], "errors": [...]}``) or None.

        ``errors`` are ``(side, relpath, message)`` for files that failed to load."""
        if not self.enabled:
            return None
        try:
            with self._path(key).open("rb") as fh:
                data = json.load(fh)
            if not isinstance(data, dict) or data.get("key") != _plain(key):
                raise ValueError("foreign entry")
            errors = data.get("errors")
            if not isinstance(errors, list) or not all(
                isinstance(e, list)
                and len(e) == 3
                and e[0] in ("old", "new")
                and (e[1] is None or isinstance(e[1], str))
                and isinstance(e[2], str)
                for e in errors
            ):
                raise ValueError("bad errors")
            raw = data.get("changes")
            if not isinstance(raw, list):
                raise ValueError("bad changes")
            changes = [change_from_cache(item) for item in raw]
        except (OSError, ValueError, TypeError, RecursionError):
            # Missing, truncated, corrupted or written by other code: recompute instead.
            self.misses += 1
            return None
        self.hits += 1
        return {"changes": changes, "errors": [tuple(e) for e in errors]}

    def put(
        self,
        key: Mapping[str, Any],
        changes: list[Change],
        errors: Sequence[tuple[str, str | None, str]] = (),
    ) -> None:
        """Store a result; skipped when it would not read back exactly, or on I/O errors."""
        if not self.enabled:
            return
        records = [change_to_cache(change) for change in changes]
        if not _exact_json(records):
            return  # e.g. a date parsed by the fallback loader: keep it uncached, always right
        entry = {"key": _plain(key), "errors": [list(e) for e in errors], "changes": records}
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename: a reader never sees half an entry, even from a parallel run.
            data = json.dumps(entry, ensure_ascii=False, separators=(",", ":"))
            write_file_atomic(path, data.encode("utf-8"))
        except OSError:
            return
        self.writes += 1
