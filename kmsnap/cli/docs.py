"""The ``kmsnap docs`` command: the catalog as one self-contained HTML data dictionary."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kmsnap.cli._common import info
from kmsnap.cli.environment import current
from kmsnap.cli.export import KindsOption, SnapshotArgument, load_log, load_selected, write_output
from kmsnap.cli.typerapp import app
from kmsnap.errors import UsageError

if TYPE_CHECKING:
    from kmsnap.history.walk import LogEntry


def _in_git(spec: str) -> bool:
    """Whether the snapshot at ``spec`` has a history to read: REV:PATH always, a directory
    when it is inside a git work tree."""
    from kmsnap.git.runner import git_output

    env = current()
    where = env.path(spec)
    if not where.exists():
        return True  # REV:PATH (open_source already refused anything else)
    out = git_output(where if where.is_dir() else where.parent,
                     ["rev-parse", "--show-toplevel"], check=False)
    return out is not None


@app.command("docs")
def docs_command(
    snapshot: SnapshotArgument = None,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", metavar="FILE.html", help="The HTML file to write"),
    ] = Path("catalog.html"),
    kind: KindsOption = None,
    title: Annotated[
        str, typer.Option("--title", metavar="TEXT", help="The page's title")
    ] = "Kissmetrics catalog",
    history: Annotated[
        bool,
        typer.Option(
            "--history/--no-history",
            help="Each entity's timeline from git (kmsnap log) [default: when the snapshot "
            "is in a git repository]",
            show_default=False,
        ),
    ] = True,
    stale_days: Annotated[
        int,
        typer.Option(
            "--stale-days", metavar="DAYS",
            help="With usage stats: an entity unused this many days before the newest use "
            "in the snapshot is stale",
        ),
    ] = 90,
) -> None:
    """Write the catalog's data dictionary: one self-contained HTML file, no network needed.

    Accounts › products › kinds, each entity with its fields, a search box and filters
    (kind, hidden, no description, stale when the snapshot has usage stats), and, when the
    snapshot is in a git repository, each entity's timeline (added, renamed, re-created,
    hidden) with commit and date. kmsnap.yaml's include/exclude apply.

    Examples:

    \b
        kmsnap docs --out site/index.html
        kmsnap docs main:snapshots --out catalog.html --no-history
    """
    from kmsnap.docspage import build_page_data, render_page

    if stale_days < 1:
        raise UsageError(f"--stale-days: {stale_days} is too small; use at least 1")
    spec, snap, config = load_selected(snapshot, kinds=kind)
    entries: list[LogEntry] | None = None
    if history and _in_git(spec):
        entries = load_log(spec, config)
    from kmsnap.model import kind_for_rel

    data = build_page_data(
        snap,
        entries=entries,
        title=title,
        source=spec,
        stale_days=stale_days,
        kinds=sorted({kind_for_rel(k) for k in kind}) if kind else None,
    )
    write_output(render_page(data), out)
    info(f"wrote {out}: {len(data['entities'])} entities"
         + ("" if entries is None else f", history of {len(entries)} commits"))
