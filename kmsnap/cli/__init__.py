"""The ``kmsnap`` command line: a thin typer layer over the library, and its one error funnel.

``run(argv, env=None)`` returns an exit status without exiting, for tests; ``main()`` exits
with it. Expected errors (``KmsnapError``) become one line on stderr and exit 1; ``--debug``
shows the traceback. Only this package prints, and only through the ``Environment``
(``kmsnap.cli.environment``) that ``run`` makes current: its streams, variables and directory.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from kmsnap.cli.environment import Environment, current, using
from kmsnap.errors import ExitStatus, KmsnapError

if TYPE_CHECKING:
    from typer import _click as click

__all__ = ["Environment", "app", "main", "run"]


def _load_commands() -> None:
    from kmsnap.cli import commands  # noqa: F401  (each module registers its commands)


def _app() -> Any:
    """The typer application, imported on first use: ``kmsnap diff OLD NEW`` and ``kmsnap
    --version`` run without typer (``_fast``)."""
    from kmsnap.cli.typerapp import LazyTyper, app

    if "kmsnap.cli.commands" not in sys.modules:  # when typer first reads them, not before
        LazyTyper.load_commands = _load_commands
    return app


def __getattr__(name: str) -> Any:  # ``from kmsnap.cli import app``
    if name == "app":
        return _app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


INTERRUPTED = 130  # typer's exit status for Ctrl-C; kmsnap says so and exits 1 (DESIGN)


def _fail(message: str) -> int:
    current().err_console.print(f"kmsnap: error: {message}", markup=False)
    return int(ExitStatus.ERROR)


def run(argv: Sequence[str] | None = None, env: Environment | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``) in ``env`` (default: the
    process's, ``Environment.from_process()``); return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    with using(env if env is not None else Environment.from_process()) as current_env:
        return _run(args, current_env)


def _global_first(args: list[str]) -> list[str]:
    """``args`` with every ``--debug`` (before a ``--``) moved in front of the command, so
    ``kmsnap pull --debug`` works as ``kmsnap --debug pull`` does."""
    end = args.index("--") if "--" in args else len(args)
    if "--debug" not in args[:end]:
        return args
    rest = [a for a in args[:end] if a != "--debug"]
    return ["--debug", *rest, *args[end:]]


def _usage_line(exc: click.exceptions.UsageError) -> str:
    """A usage error in kmsnap's one-line style: what is wrong, a suggestion, where help is."""
    from typer import _click as click

    ctx = exc.ctx
    where = ctx.command_path if ctx is not None else "kmsnap"
    if isinstance(exc, click.exceptions.NoSuchOption):
        message = f"no such option {exc.option_name}"
        if exc.possibilities:  # closest first (difflib's order): one suggestion, the best
            message += f" (did you mean {list(exc.possibilities)[0]}?)"
    else:
        message = exc.format_message().rstrip(".")
        # click's "No such command 'pul'. Did you mean 'pull'?" and "Missing argument 'OLD'."
        message = message.replace(". Did you mean", " (did you mean").replace("'?", "'?)")
        message = message[:1].lower() + message[1:]
    command = where.partition(" ")[2]
    return f"{command + ': ' if command else ''}{message}; see {where} --help"


_FAST_FLAGS = {"--exit-code": "exit_code", "--with-stats": "with_stats"}
_FAST_FORMATS = ("text", "markdown", "json", "github")


def _fast(args: list[str]) -> Callable[[], object] | None:
    """``kmsnap diff OLD NEW`` (with --format, --exit-code, --with-stats at most) as a call of
    ``run_diff``, and ``kmsnap --version``, without typer, which imports its own click, every
    command and what they import (half of a small diff's time); any other command line goes
    through typer."""
    if args == ["--version"]:
        from kmsnap import __version__

        return lambda: current().write(f"kmsnap {__version__}\n")
    if len(args) < 3 or args[0] != "diff":
        return None
    positional: list[str] = []
    options: dict[str, object] = {}
    rest = iter(args[1:])
    for arg in rest:
        if arg in _FAST_FLAGS and _FAST_FLAGS[arg] not in options:
            options[_FAST_FLAGS[arg]] = True
        elif arg.startswith("--format=") and "fmt" not in options:
            options["fmt"] = arg[len("--format="):]
        elif arg == "--format" and "fmt" not in options:
            options["fmt"] = next(rest, "")
        elif arg.startswith("-") or len(positional) == 2:
            return None
        else:
            positional.append(arg)
    if len(positional) != 2 or options.get("fmt", "text") not in _FAST_FORMATS:
        return None
    from kmsnap.cli.diffrun import run_diff

    return lambda: run_diff(positional[0], positional[1], **options)  # type: ignore[arg-type]


def _run(args: list[str], env: Environment) -> int:
    args = _global_first(args)
    debug = "--debug" in args
    try:
        fast = _fast(args)
        result = fast() if fast is not None else _app()(
            args=args, prog_name="kmsnap", standalone_mode=False
        )
    except KmsnapError as exc:
        if debug:
            traceback.print_exc(file=env.stderr)
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted")
    except Exception as exc:
        return _failure(exc, env, debug)
    if result == INTERRUPTED:
        # typer turns Ctrl-C into Exit(130), which standalone_mode=False hands back as the
        # result: the except clauses above never see the KeyboardInterrupt.
        return _fail("interrupted")
    return int(result) if isinstance(result, int) else int(ExitStatus.OK)


def _failure(exc: Exception, env: Environment, debug: bool) -> int:
    """The exit status of anything but a ``KmsnapError``: typer's and click's exits and usage
    errors (only when typer ran: the fast path raises none of them), else a bug."""
    import typer
    from typer import _click as click

    if isinstance(exc, typer.Exit):
        if exc.exit_code == INTERRUPTED:
            return _fail("interrupted")
        return int(exc.exit_code)
    if isinstance(exc, typer.Abort):
        return _fail("interrupted")
    if isinstance(exc, click.exceptions.UsageError):
        # One line, exit 1 (2 means "changes" here), with click's suggestion when it has one.
        return _fail(_usage_line(exc))
    if isinstance(exc, typer.TyperException):
        # Usage errors: typer's own message, but exit 1 (2 means "changes" here).
        show = getattr(exc, "show", None)
        if callable(show):
            show(file=env.stderr)
            return int(ExitStatus.ERROR)
        return _fail(str(exc))
    # a bug: still one line unless --debug
    if debug:
        traceback.print_exception(exc, file=env.stderr)
        return int(ExitStatus.ERROR)
    return _fail(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)")


def main() -> None:
    """Console-script entry point."""
    sys.exit(run(env=Environment.from_process()))
