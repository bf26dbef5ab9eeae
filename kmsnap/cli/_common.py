"""Helpers shared by the commands: warnings, stdout, the token; all through the current
``Environment`` (``kmsnap.cli.environment``), never the process's streams or variables."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from kmsnap.cli.environment import current
from kmsnap.errors import TokenError

TOKEN_ENV = "KISSMETRICS_TOKEN"

# Everything but the result goes to stderr (the environment's console); stdout carries only
# the result.


def warn(message: str) -> None:
    """Print one warning line on stderr."""
    current().err_console.print(f"kmsnap: warning: {message}", markup=False)


def info(message: str) -> None:
    """Print one informational line on stderr."""
    current().err_console.print(message, markup=False)


def stderr_is_terminal() -> bool:
    return bool(current().stderr_isatty)


def stdout_color() -> bool:
    """Colour on stdout: only on a terminal, and never with NO_COLOR set."""
    return current().stdout_color


def emit(text: str) -> None:
    """Write ``text`` to stdout as UTF-8 whatever the locale says (``Environment.write``)."""
    current().write(text)


_MAX_TOKEN_FILE = 64 * 1024


def read_token(token_file: Path | None) -> str:
    """The token from --token-file, else $KISSMETRICS_TOKEN; never from the command line.

    Only visible ASCII is accepted (see ``sources.core.client.token_problem``); the error says
    which source and what is wrong, never the value.
    """
    from kmsnap.sources.core.client import token_problem  # here: diff and log need no HTTP stack

    env = current()
    if token_file is not None:
        at = env.path(token_file)  # opened relative to the environment's cwd, named as given
        try:
            mode = at.stat().st_mode
            if not stat.S_ISREG(mode):  # a FIFO would wait forever, /dev/zero never ends
                raise TokenError(f"token file {token_file} is not a regular file")
            # Non-blocking: a FIFO swapped in after the check must not hang the open either.
            fd = os.open(at, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
            with os.fdopen(fd, "rb") as handle:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise TokenError(f"token file {token_file} is not a regular file")
                data = handle.read(_MAX_TOKEN_FILE + 1)
            if len(data) > _MAX_TOKEN_FILE:
                raise TokenError(f"token file {token_file} is larger than {_MAX_TOKEN_FILE} "
                                 "bytes; a token is one line")
        except OSError as exc:
            raise TokenError(f"cannot read token file {token_file}: {exc.strerror}") from None
        if os.name == "posix" and mode & (stat.S_IRGRP | stat.S_IROTH):
            warn(f"token file {token_file} can be read by other users; run: chmod 600 {token_file}")
        try:
            token = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise TokenError(
                f"the token in {token_file} contains a non-ASCII character"
            ) from None
        if not token:
            raise TokenError(f"token file {token_file} is empty")
        problem = token_problem(token)
        if problem is not None:
            raise TokenError(f"the token in {token_file} {problem}; a token is one line of "
                             "visible ASCII characters")
        return token
    token = env.get(TOKEN_ENV).strip()
    if not token:
        raise TokenError(
            f"no API token: set {TOKEN_ENV} or pass --token-file PATH "
            "(create a Personal Token under Account settings > Manage API Tokens)"
        )
    problem = token_problem(token)
    if problem is not None:
        raise TokenError(f"the token in {TOKEN_ENV} {problem}; a token is visible ASCII "
                         "characters only")
    return token
