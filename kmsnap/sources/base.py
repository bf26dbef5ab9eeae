"""The interface every source implements, and the registry the CLI picks one from.

A source has a name (``core``, ``v3``), a default API URL, an options type, and ``pull``,
which crawls everything the credentials can see into a ``Snapshot`` (``PullResult``) or
raises ``kmsnap.errors.ApiError`` (and children): never a partial snapshot.
"""

from __future__ import annotations

import importlib
from typing import Any, ClassVar, Protocol, runtime_checkable
from urllib.parse import urlsplit

import requests

from kmsnap.sources.core.crawler import ProgressCallback, ProgressEvent, PullResult
from kmsnap.sources.pacing import Clock

__all__ = [
    "ProgressCallback", "ProgressEvent", "PullResult", "Source", "get_source",
    "resolve_source", "source_for_url", "source_names",
]


@runtime_checkable
class Source(Protocol):
    """One API kmsnap can pull a catalog from."""

    name: ClassVar[str]  # "core" or "v3": what ``--source`` and ``source:`` say
    default_api: ClassVar[str]  # the API URL when none is given

    def pull(
        self,
        options: Any,
        *,
        progress: ProgressCallback | None = None,
        session: requests.Session | None = None,
        clock: Clock | None = None,
    ) -> PullResult:
        """Crawl the whole catalog into ``PullResult.snapshot``; ``options`` is the source's
        own options type (``sources.core.crawler.PullOptions``,
        ``sources.v3.V3PullOptions``)."""
        ...


# name -> "module:class"; imported on first use, so diff and log load no HTTP stack
_REGISTRY: dict[str, str] = {
    "core": "kmsnap.sources.core.source:CoreSource",
    "v3": "kmsnap.sources.v3:V3Source",
}


def source_names() -> tuple[str, ...]:
    """Every source's name, in the order they are offered."""
    return tuple(_REGISTRY)


def get_source(name: str) -> Source:
    """The source called ``name``; ``ValueError`` naming the choices for anything else."""
    target = _REGISTRY.get(name)
    if target is None:
        raise ValueError(f"unknown source {name!r}; use one of {', '.join(_REGISTRY)}")
    module, _, attr = target.partition(":")
    source: Source = getattr(importlib.import_module(module), attr)()
    return source


def source_for_url(url: str) -> str:
    """The source an API URL implies: ``v3`` when its path ends in ``/v3``, else ``core``."""
    try:
        path = urlsplit(url).path
    except ValueError:
        return "core"
    return "v3" if path.rstrip("/").lower().endswith("/v3") else "core"


def resolve_source(source: str | None, api: str, *, api_given: bool) -> tuple[str, str]:
    """The source and API URL a pull uses: ``source`` when set, else what the URL implies
    (``source_for_url``); a URL left at its default becomes the source's own default
    (``https://query.kissmetrics.io/v3`` for v3)."""
    name = source if source is not None else (source_for_url(api) if api_given else "core")
    if not api_given:
        api = get_source(name).default_api
    return name, api
