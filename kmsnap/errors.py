"""One exception tree for everything kmsnap expects to go wrong, and the exit statuses.

    KmsnapError                 any expected failure: one line for a person, exit 1
    ├── UsageError              a bad option, flag combination or argument
    ├── ConfigError             a bad kmsnap.yaml / [tool.kmsnap] (file, line, key)
    ├── TokenError              no token, or a token file that cannot be read
    ├── ApiError                the API answered badly or not at all (url, status)
    │   ├── AuthError           401 or 403: the token is wrong or may not see this
    │   ├── UnsafeUrlError      plain http to a non-loopback host, another origin
    │   ├── IncompleteError     pages do not add up to pagination.total
    │   ├── BoundError          an answer exceeded a bound (size, time, Retry-After)
    │   └── DeadlineError       the pull's --deadline passed
    ├── SnapshotError           a snapshot file is unsafe, malformed or too big (file, line)
    └── GitError                a REV:PATH could not be read from git

Messages must never contain the token. The CLI prints ``str(error)`` on one line.
"""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    """Process exit codes: the contract scripts and CI rely on."""

    OK = 0
    ERROR = 1
    CHANGES = 2  # diff --exit-code with changes; check with drift at or above --fail-on


class KmsnapError(Exception):
    """An expected failure, reported as one line and exit code 1."""

    def __str__(self) -> str:
        # One line, always: a newline in a message could forge output.
        text = super().__str__()
        return " ".join(text.split("\n")) if "\n" in text else text


class UsageError(KmsnapError):
    """A bad option, argument or combination of them."""


class ConfigError(KmsnapError):
    """The configuration file is wrong; the message names file, line and key."""


class TokenError(KmsnapError):
    """No usable token."""


class ApiError(KmsnapError):
    """The API failed; carries the URL and the last HTTP status when there was one."""

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None):
        super().__init__(message)
        self.url = url
        self.status = status


class AuthError(ApiError):
    """401 or 403."""


class UnsafeUrlError(ApiError):
    """A URL kmsnap refuses to send the token to."""


class IncompleteError(ApiError):
    """A collection did not add up to its pagination.total, even after a retry."""


class BoundError(ApiError):
    """An answer exceeded a bound kmsnap sets: its size, its time, the wait it asks for."""


class DeadlineError(ApiError):
    """The total wall time allowed for the pull (``--deadline``) passed."""


class SnapshotError(KmsnapError):
    """A snapshot file is malformed, unsafe or too large."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        where = path if path is not None else ""
        if path is not None and line is not None:
            where = f"{path}:{line}"
        super().__init__(f"{where}: {message}" if where else message)
        self.problem = message
        self.path = path
        self.line = line

    def within(self, label: str) -> SnapshotError:
        """The same error with ``path`` under the snapshot ``label`` (``HEAD~1:snapshots``), so
        a person can tell which side of a diff holds the broken file."""
        if self.path is None or self.path == label or self.path.startswith(label.rstrip("/") + "/"):
            return self
        return SnapshotError(self.problem, path=f"{label.rstrip('/')}/{self.path}", line=self.line)


class GitError(KmsnapError):
    """git could not give us what we asked for."""
