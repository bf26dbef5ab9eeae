"""The command line's view of the outside world, injected: streams, terminals, colour, the
environment variables and the current directory (in the style of httpie's ``Environment``).

``kmsnap.cli.run(argv, env=...)`` makes one ``Environment`` current for the duration of the
command (``Environment.from_process()`` unless one is given); commands and their helpers ask
for it with ``current()`` instead of reading ``sys.stdout``, ``os.environ`` or ``Path.cwd()``,
so a test hands in ``StringIO`` streams, a dict and a temporary directory instead of patching
the process. Only the ``kmsnap.cli`` package uses it; the library gets values as parameters.

Colour on stdout follows the rule kmsnap always had: only on a terminal, and never with
``NO_COLOR`` set (any value, even empty). The stderr console is rich's, which reads
``NO_COLOR``, ``FORCE_COLOR``, ``TERM`` (``dumb``), ``COLUMNS`` ... from ``environ`` too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import IO, TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Environment", "current", "using"]


def _process_cwd() -> Path:
    """The process's directory, or ``.`` when it was deleted under us: relative paths then mean
    what the OS makes of them, and a command that needs the directory fails as it always did."""
    try:
        return Path.cwd()
    except OSError:
        return Path(os.curdir)


def _isatty(stream: IO[Any] | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError, OSError):  # closed, or not a real file
        return False


@dataclass(frozen=True, eq=False)
class Environment:
    """What a command may read and write besides its arguments.

    Every field defaults to the process's own value, so ``Environment(stdout=buffer,
    environ={}, cwd=tmp)`` replaces just those. ``stdout_isatty``/``stderr_isatty`` default to
    what the streams say; ``color`` (None) to the rule in ``stdout_color``.
    """

    stdin: IO[str] = field(default_factory=lambda: sys.stdin)
    stdout: IO[str] = field(default_factory=lambda: sys.stdout)
    stderr: IO[str] = field(default_factory=lambda: sys.stderr)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    cwd: Path = field(default_factory=_process_cwd)
    stdout_isatty: bool | None = None
    stderr_isatty: bool | None = None
    color: bool | None = None  # None: decided by stdout_color's rule

    def __post_init__(self) -> None:
        # Frozen: a copy of the mapping, read-only, and the tty answers asked once.
        object.__setattr__(self, "environ", MappingProxyType(dict(self.environ)))
        object.__setattr__(self, "cwd", Path(self.cwd))
        if self.stdout_isatty is None:
            object.__setattr__(self, "stdout_isatty", _isatty(self.stdout))
        if self.stderr_isatty is None:
            object.__setattr__(self, "stderr_isatty", _isatty(self.stderr))

    @classmethod
    def from_process(cls) -> Environment:
        """The real streams, a copy of ``os.environ`` and the current directory, as of now."""
        return cls()

    @property
    def stdout_color(self) -> bool:
        """Colour on stdout: ``color`` if given, else only on a terminal and never with
        ``NO_COLOR`` set (kmsnap's rule; ``FORCE_COLOR`` and ``TERM`` are rich's, on stderr)."""
        if self.color is not None:
            return self.color
        return bool(self.stdout_isatty) and "NO_COLOR" not in self.environ

    @cached_property
    def err_console(self) -> Console:
        """The rich console on ``stderr`` for messages and progress bars; rich's own terminal
        and colour detection reads ``environ``, not the process's variables."""
        from rich.console import Console

        return Console(
            file=self.stderr,
            stderr=True,
            highlight=False,
            soft_wrap=True,
            # Told only when the answer given is not the stream's own (a test pretending a
            # terminal); otherwise rich decides as it always did (FORCE_COLOR, TERM ...).
            force_terminal=(
                None if self.stderr_isatty == _isatty(self.stderr) else self.stderr_isatty
            ),
            # Messages quote names and terms: ":x:" in one must stay text, not become ❌.
            emoji=False,
            _environ=self.environ,
        )

    def get(self, name: str, default: str = "") -> str:
        """An environment variable from ``environ``."""
        return self.environ.get(name, default)

    def path(self, path: str | os.PathLike[str]) -> Path:
        """``path`` as the OS must be given it to mean ``path`` relative to ``cwd``.

        A relative path stays relative (so messages show it as typed) when the process's own
        directory is ``cwd``; otherwise it is joined to ``cwd``.
        """
        given = Path(path)
        if given.is_absolute() or not self.cwd.is_absolute() or self.cwd == _process_cwd():
            return given
        return self.cwd / given

    def write(self, text: str) -> None:
        """Write ``text`` to stdout as UTF-8 whatever the locale says (names hold any Unicode):
        a C locale's ASCII stdout must not turn an emoji in an event name into a crash."""
        stream = self.stdout
        try:
            stream.write(text)
        except UnicodeEncodeError:
            buffer = getattr(stream, "buffer", None)
            if buffer is None:
                raise
            stream.flush()
            buffer.write(text.encode("utf-8"))
        stream.flush()

    def stdout_bytes(self) -> BytesOut:
        """stdout for bytes: the stream's binary buffer, or UTF-8 into a text-only stream."""
        buffer = getattr(self.stdout, "buffer", None)
        return buffer if buffer is not None else _TextSink(self.stdout)


class BytesOut(Protocol):
    """Where bytes can be written and flushed (``sys.stdout.buffer``, or a ``_TextSink``)."""

    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...


class _TextSink:
    """Bytes written to a text stream (a ``StringIO`` in tests) as UTF-8 text."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, data: bytes) -> int:
        self._stream.write(data.decode("utf-8", "surrogateescape"))
        return len(data)

    def flush(self) -> None:
        self._stream.flush()


_CURRENT: ContextVar[Environment | None] = ContextVar("kmsnap_cli_environment", default=None)


def current() -> Environment:
    """The environment of the command running now; outside ``run`` (a command function called
    directly), the process's as of this call, like the module-global console it replaces."""
    env = _CURRENT.get()
    return env if env is not None else Environment.from_process()


@contextmanager
def using(env: Environment) -> Iterator[Environment]:
    """Make ``env`` current for the ``with`` block (``run`` does this for one command)."""
    token = _CURRENT.set(env)
    try:
        yield env
    finally:
        _CURRENT.reset(token)
