"""HTTP client for the Kissmetrics Core API: the shared ``Transport`` with a Bearer token.

The transport (origin checks, timeouts, retries, 429 pacing, the bounds on what a server
may send) lives in ``kmsnap.sources.transport``; its names stay importable from here.
"""

from __future__ import annotations

import requests

from kmsnap.errors import TokenError
from kmsnap.sources.pacing import Clock
from kmsnap.sources.transport import (
    CHUNK_BYTES,
    MAX_BODY_BYTES,
    MAX_BROKEN,
    MAX_REDIRECTS,
    MAX_RETRY_AFTER,
    MAX_THROTTLES,
    REDIRECT_STATUSES,
    RESPONSE_TIME_FACTOR,
    Envelope,
    Origin,
    Transport,
    check_base_url,
    is_loopback,
    origin_of,
    scrub,
)

__all__ = [
    "CHUNK_BYTES", "MAX_BODY_BYTES", "MAX_BROKEN", "MAX_REDIRECTS", "MAX_RETRY_AFTER",
    "MAX_THROTTLES", "REDIRECT_STATUSES", "RESPONSE_TIME_FACTOR", "ApiClient", "Envelope",
    "Origin", "Transport", "check_base_url", "is_loopback", "origin_of", "scrub",
    "token_problem",
]


def token_problem(token: str) -> str | None:
    """What makes ``token`` unusable in an ``Authorization`` header, or None; never its value.

    RFC 6750 tokens are ``A-Za-z0-9-._~+/`` with trailing ``=``; any visible ASCII character
    is let through, but whitespace, control and non-ASCII characters are refused: requests
    would put the whole header value (the token) into its error message.
    """
    if not token:
        return "is empty"
    if "\n" in token or "\r" in token:
        return "contains a line break"
    for char in token:
        if char.isspace():
            return "contains whitespace"
        if not char.isascii():
            return "contains a non-ASCII character"
        if not char.isprintable():
            return "contains a control character"
    return None



class ApiClient(Transport):
    """GETs JSON from one Core API origin with the token (``Authorization: Bearer``).

    Thread-safe: workers share one client. See ``Transport`` for the bounds (``max_body``,
    ``deadline``, ``max_retry_after``) and the request count.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        concurrency: int = 8,
        max_rps: float | None = None,
        clock: Clock | None = None,
        max_body: int = MAX_BODY_BYTES,
        deadline: float | None = None,
        max_retry_after: float = MAX_RETRY_AFTER,
        per_minute: int | None = None,
    ) -> None:
        check_base_url(base_url)  # a bad URL is named before a bad token
        problem = token_problem(token) if isinstance(token, str) else "is not a string"
        if problem is not None:
            raise TokenError(f"the API token {problem}; it must be visible ASCII characters")
        self._token = token
        super().__init__(
            base_url, session=session, timeout=timeout, concurrency=concurrency,
            max_rps=max_rps, clock=clock, max_body=max_body, deadline=deadline,
            max_retry_after=max_retry_after, per_minute=per_minute,
        )

    def __repr__(self) -> str:
        return f"ApiClient(origin={str(self.origin)!r}, token=<hidden>)"

    def __enter__(self) -> ApiClient:
        return self

    def _authorization(self) -> str:
        return "Bearer " + self._token

    def _secrets(self) -> tuple[str, ...]:
        return (self._token,)

    def _auth_message(self, url: str, status: int) -> str:
        if status == 401:
            return (
                f"GET {self._url(url)}: HTTP 401: the API token was refused; check "
                "KISSMETRICS_TOKEN or --token-file (a Personal Token from Account settings > "
                "Manage API Tokens)"
            )
        return (
            f"GET {self._url(url)}: HTTP 403: the token may not see this; use a token of a user "
            "with access to the account, or remove the link's account from the token's scope"
        )
