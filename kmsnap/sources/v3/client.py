"""HTTP client for the REST API v3: the shared ``Transport`` with HTTP Basic credentials.

Everything ``kmsnap.sources.transport`` bounds and refuses holds here too (body size, deadline,
origin and redirect rules, no ~/.netrc, scrubbing). The Basic header's base64, the pair,
the username and the password are all secrets. 429 and 503 are refusals the shared pacer
answers for every worker, with a per-minute budget (15 by default, the published limit)
and, without ``Retry-After``, a backoff from about a minute.
"""

from __future__ import annotations

import requests

from kmsnap.errors import TokenError
from kmsnap.sources.pacing import Clock
from kmsnap.sources.transport import MAX_BODY_BYTES, MAX_RETRY_AFTER, Transport, check_base_url
from kmsnap.sources.v3.credentials import (
    API_KEY_VAR,
    PASSWORD_VAR,
    USERNAME_VAR,
    Credentials,
    credentials_problem,
)

DEFAULT_API = "https://query.kissmetrics.io/v3"
DEFAULT_PER_MINUTE = 15  # "15 requests per minute" (Kissmetrics' API product page)
BACKOFF_BASE = 60.0  # seconds of the first pause after a refusal without Retry-After
THROTTLE_STATUSES = frozenset({429, 503})


class V3Client(Transport):
    """GETs JSON from one v3 origin with HTTP Basic; thread-safe, shared by the workers."""

    throttle_hint = "try a lower --max-rpm"

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        *,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        concurrency: int = 4,
        per_minute: int | None = DEFAULT_PER_MINUTE,
        max_rps: float | None = None,
        clock: Clock | None = None,
        max_body: int = MAX_BODY_BYTES,
        deadline: float | None = None,
        max_retry_after: float = MAX_RETRY_AFTER,
    ) -> None:
        check_base_url(base_url)  # a bad URL is named before bad credentials
        if not isinstance(credentials, Credentials):
            raise TokenError("the v3 credentials must be a Credentials (load_credentials)")
        problem = credentials_problem(credentials.username, credentials.password)
        if problem is not None:
            raise TokenError(f"{credentials.origin}: {problem}")
        self._credentials = credentials
        super().__init__(
            base_url, session=session, timeout=timeout, concurrency=concurrency,
            max_rps=max_rps, clock=clock, max_body=max_body, deadline=deadline,
            max_retry_after=max_retry_after, per_minute=per_minute,
            throttle_statuses=THROTTLE_STATUSES, backoff_base=BACKOFF_BASE,
        )

    def __enter__(self) -> V3Client:
        return self

    def _authorization(self) -> str:
        return self._credentials.header()

    def _secrets(self) -> tuple[str, ...]:
        return self._credentials.secrets()

    def _auth_message(self, url: str, status: int) -> str:
        if status == 401:
            return (
                f"GET {self._url(url)}: HTTP 401: the v3 credentials were refused; check "
                f"{USERNAME_VAR} and {PASSWORD_VAR} (a Kissmetrics login), or {API_KEY_VAR}, "
                "or the credentials file"
            )
        return (
            f"GET {self._url(url)}: HTTP 403: these credentials may not see this; check that "
            f"{USERNAME_VAR} (or {API_KEY_VAR}) belongs to a user with access to it"
        )
