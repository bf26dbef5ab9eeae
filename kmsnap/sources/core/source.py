"""The Kissmetrics Core API as a ``Source``: a thin adapter over the crawler's
``pull_snapshot``."""

from __future__ import annotations

from typing import Any, ClassVar

import requests

from kmsnap.sources.core.crawler import ProgressCallback, PullOptions, PullResult, pull_snapshot
from kmsnap.sources.pacing import Clock

DEFAULT_API = "https://api.kissmetrics.com/core"


class CoreSource:
    """The Core API (hypermedia root, Bearer token): ``options`` is a ``PullOptions``."""

    name: ClassVar[str] = "core"
    default_api: ClassVar[str] = DEFAULT_API
    options_type: ClassVar[type] = PullOptions

    def pull(
        self,
        options: Any,
        *,
        progress: ProgressCallback | None = None,
        session: requests.Session | None = None,
        clock: Clock | None = None,
    ) -> PullResult:
        if not isinstance(options, PullOptions):
            raise TypeError("the core source takes kmsnap.sources.core.crawler.PullOptions")
        return pull_snapshot(options, progress=progress, session=session, clock=clock)
