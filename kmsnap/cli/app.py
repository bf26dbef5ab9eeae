"""The typer application object and its global options; commands register on ``app``."""

from __future__ import annotations

import typer

from kmsnap import __version__

app = typer.Typer(
    name="kmsnap",
    help=(
        "Put a Kissmetrics catalog under version control: pull a deterministic YAML "
        "snapshot, diff snapshots, and check for drift in CI."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from kmsnap.cli.environment import current

        current().write(f"kmsnap {__version__}\n")
        raise typer.Exit()


@app.callback()
def root(
    debug: bool = typer.Option(
        False, "--debug", help="Show the full traceback when something fails."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """kmsnap: a Kissmetrics catalog under version control."""
