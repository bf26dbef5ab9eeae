"""The Kissmetrics REST API v3 as a ``Source``: Basic credentials, four catalog endpoints."""

from __future__ import annotations

from typing import Any, ClassVar

import requests

from kmsnap.sources.core.crawler import ProgressCallback
from kmsnap.sources.pacing import Clock
from kmsnap.sources.v3.client import DEFAULT_API, V3Client
from kmsnap.sources.v3.crawler import V3PullOptions, V3PullResult, pull_v3
from kmsnap.sources.v3.credentials import Credentials, load_credentials, read_credentials_file

__all__ = [
    "DEFAULT_API", "Credentials", "V3Client", "V3PullOptions", "V3PullResult", "V3Source",
    "load_credentials", "pull_v3", "read_credentials_file",
]


class V3Source:
    """The REST API v3 (``/products`` and each product's collections): ``options`` is a
    ``V3PullOptions``."""

    name: ClassVar[str] = "v3"
    default_api: ClassVar[str] = DEFAULT_API
    options_type: ClassVar[type] = V3PullOptions

    def pull(
        self,
        options: Any,
        *,
        progress: ProgressCallback | None = None,
        session: requests.Session | None = None,
        clock: Clock | None = None,
    ) -> V3PullResult:
        if not isinstance(options, V3PullOptions):
            raise TypeError("the v3 source takes kmsnap.sources.v3.V3PullOptions")
        return pull_v3(options, progress=progress, session=session, clock=clock)
