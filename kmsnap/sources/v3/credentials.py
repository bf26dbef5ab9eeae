"""v3 credentials: HTTP Basic from the environment or a credentials file, never a command line.

``KISSMETRICS_USERNAME`` + ``KISSMETRICS_PASSWORD`` (a login), or ``KISSMETRICS_API_KEY``
(sent as the username with an empty password), or a credentials file holding one line,
``username:password`` or the key alone. Errors are one line, say which variables to set,
and never show a value.
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kmsnap.errors import TokenError

USERNAME_VAR = "KISSMETRICS_USERNAME"
PASSWORD_VAR = "KISSMETRICS_PASSWORD"
API_KEY_VAR = "KISSMETRICS_API_KEY"
MAX_FILE_BYTES = 64 * 1024
SET_THEM = (f"set {USERNAME_VAR} and {PASSWORD_VAR}, or {API_KEY_VAR}, or give a credentials "
            "file (one line: username:password, or the API key)")


@dataclass(frozen=True)
class Credentials:
    """A login (``username``, ``password``) or an API key (``username``, empty password)."""

    username: str = field(repr=False)
    password: str = field(repr=False, default="")
    origin: str = "environment"  # where they came from, for messages: never a value

    def __repr__(self) -> str:
        return f"Credentials(origin={self.origin!r}, <hidden>)"

    def header(self) -> str:
        """The ``Authorization`` header value: ``Basic base64(username:password)``."""
        raw = f"{self.username}:{self.password}".encode("utf-8", "surrogatepass")
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def secrets(self) -> tuple[str, ...]:
        """Everything to scrub from server text: each part, the pair, the header's base64."""
        pair = f"{self.username}:{self.password}"
        return (self.username, self.password, pair, self.header().split(" ", 1)[1])


def credentials_problem(username: str, password: str) -> str | None:
    """What makes a username or password unusable, or None; never their values."""
    if not username:
        return "the username (or API key) is empty"
    if ":" in username:
        return "the username contains ':', which HTTP Basic cannot carry"
    for what, value in (("username", username), ("password", password)):
        if "\n" in value or "\r" in value:
            return f"the {what} contains a line break"
        if any(not char.isprintable() for char in value):
            return f"the {what} contains a control character"
        if value != value.strip():
            return f"the {what} starts or ends with whitespace (a copy-paste slip?)"
    return None


def _checked(username: str, password: str, origin: str) -> Credentials:
    problem = credentials_problem(username, password)
    if problem is not None:
        raise TokenError(f"{origin}: {problem}; {SET_THEM}")
    return Credentials(username, password, origin)


def read_credentials_file(path: Path) -> Credentials:
    """One line of a regular file (at most 64 KiB, not group- or world-readable), read
    without blocking: ``username:password`` or an API key."""
    shown = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as error:
        raise TokenError(f"{shown}: cannot open the credentials file ({error.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise TokenError(f"{shown}: the credentials file is not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise TokenError(f"{shown}: the credentials file is larger than 64 KiB")
        if os.name == "posix" and info.st_mode & 0o077:
            raise TokenError(f"{shown}: the credentials file is readable by others; "
                             f"run chmod 600 {shown}")
        data = os.read(fd, MAX_FILE_BYTES + 1)
    except OSError as error:
        raise TokenError(f"{shown}: cannot read the credentials file ({error.strerror})") from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise TokenError(f"{shown}: the credentials file is larger than 64 KiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise TokenError(f"{shown}: the credentials file is not UTF-8 text") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise TokenError(f"{shown}: the credentials file must hold exactly one line: "
                         "username:password, or the API key")
    username, sep, password = lines[0].partition(":")
    return _checked(username, password if sep else "", shown)


def load_credentials(
    env: Mapping[str, str] | None = None, file: Path | None = None
) -> Credentials:
    """The v3 credentials: ``file`` when given, else the environment; ``TokenError`` (one
    line, saying which variables to set) when there are none or they cannot be used."""
    if file is not None:
        return read_credentials_file(Path(file))
    env = os.environ if env is None else env
    username, password = env.get(USERNAME_VAR, ""), env.get(PASSWORD_VAR, "")
    key = env.get(API_KEY_VAR, "")
    if username or password:
        if key:
            raise TokenError(f"both {USERNAME_VAR}/{PASSWORD_VAR} and {API_KEY_VAR} are set; "
                             "unset the one you do not mean")
        if not username or not password:
            missing = USERNAME_VAR if not username else PASSWORD_VAR
            raise TokenError(f"{missing} is not set; {SET_THEM}")
        return _checked(username, password, f"{USERNAME_VAR}/{PASSWORD_VAR}")
    if key:
        return _checked(key, "", API_KEY_VAR)
    raise TokenError(f"no v3 credentials: {SET_THEM}")
