"""The typer application object and its global options; commands register on ``app``.

``KmsnapGroup`` shapes the help every command shows: ``-h`` as well as ``--help``, the
commands' summaries as whole sentences (click cuts them at the terminal's width) and
arguments without Python types (typer writes ``OLD <str>``, ``<list[str]>``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import typer
from typer import _click as click
from typer.core import TyperArgument, TyperGroup

from kmsnap import __version__

HELP_OPTIONS = ["-h", "--help"]
_F = TypeVar("_F", bound=Callable[..., Any])


def _summary(help_text: str | None) -> str | None:
    """The first paragraph of a command's help, whole, on one line."""
    if not help_text:
        return None
    first = help_text.strip().split("\n\n", 1)[0]
    return " ".join(first.split())


def _no_type(ctx: click.Context) -> None:
    return None


def tidy_command(command: click.Command) -> None:
    """A command's help as kmsnap shows it: a whole summary, arguments without types."""
    if command.short_help is None:
        command.short_help = _summary(command.help)
    for param in command.params:
        if isinstance(param, TyperArgument):
            param.display_type_rich = _no_type  # type: ignore[method-assign]


class KmsnapGroup(TyperGroup):
    """typer's group with kmsnap's help: see the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in self.commands.values():
            tidy_command(command)


class LazyTyper(typer.Typer):
    """typer's app whose command modules are imported the first time typer reads its commands
    (to parse, to show help, ``typer.main.get_command``), not when ``kmsnap.cli`` is imported:
    ``kmsnap diff OLD NEW`` runs without typer at all (``kmsnap.cli._fast``)."""

    # Set by ``kmsnap.cli`` when it first hands out the app: imports every command module
    # (each registers its commands).
    load_commands: Callable[[], object] | None = None
    _registering = 0

    @property
    def registered_commands(self) -> list[Any]:
        load, LazyTyper.load_commands = LazyTyper.load_commands, None
        if load is not None and not LazyTyper._registering:
            load()
        elif load is not None:
            LazyTyper.load_commands = load
        return self._registered

    @registered_commands.setter
    def registered_commands(self, value: list[Any]) -> None:
        self._registered = value

    def command(self, *args: Any, **kwargs: Any) -> Callable[[_F], _F]:
        register = super().command(*args, **kwargs)

        def decorator(function: _F) -> _F:
            LazyTyper._registering += 1  # a command registering itself reads nothing
            try:
                return register(function)
            finally:
                LazyTyper._registering -= 1

        return decorator


app = LazyTyper(
    name="kmsnap",
    cls=KmsnapGroup,
    help=(
        "Put a Kissmetrics catalog under version control: pull a deterministic YAML "
        "snapshot, diff snapshots, and check for drift in CI."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": HELP_OPTIONS},
)


def _version(value: bool) -> None:
    if value:
        from kmsnap.cli.environment import current

        current().write(f"kmsnap {__version__}\n")
        raise typer.Exit()


@app.callback()
def root(
    debug: bool = typer.Option(
        False, "--debug", help="Show the full traceback when something fails (also after "
                               "the command: kmsnap pull --debug)."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """kmsnap: a Kissmetrics catalog under version control."""
