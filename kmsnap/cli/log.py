"""The ``kmsnap log`` command (the catalog's history from git) and the hidden commands git's
diff driver runs (``git-textconv``, ``git-diff``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kmsnap.cli._common import emit, info, warn
from kmsnap.cli.environment import current
from kmsnap.cli.pull import snapshot_location
from kmsnap.cli.typerapp import app
from kmsnap.errors import UsageError

_FORMATS = ("text", "markdown", "json")


def _split_args(args: list[str], cwd: Path) -> tuple[list[str], str | None]:
    """Positional arguments as (revision ranges, PATH): an argument with ``..`` that is not an
    existing path is a range, like ``git log A..B -- PATH``."""
    revisions: list[str] = []
    path: str | None = None
    for arg in args:
        if ".." in arg and not (cwd / arg).exists():
            revisions.append(arg)
        elif path is None:
            path = arg
        else:
            raise UsageError(f"unexpected argument {arg!r}: give at most one PATH")
    return revisions, path


@app.command("log")
def log_command(
    args: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[REV..REV] [PATH]",
            help="A revision range (main~20..main) and/or the snapshot directory "
            "(default: snapshot_dir from kmsnap.yaml, else snapshots).",
            show_default=False,
        ),
    ] = None,
    rev: Annotated[
        list[str] | None,
        typer.Option(
            "--rev", "-r", metavar="REV", help="Revision or range to walk (default HEAD)."
        ),
    ] = None,
    snapshot_dir: Annotated[
        str | None,
        typer.Option(
            "--snapshot-dir", metavar="DIR", show_default=False,
            help="The snapshot directory, as PATH [default: $KMSNAP_SNAPSHOT_DIR, else "
            "snapshot_dir in kmsnap.yaml (relative to its directory), else snapshots]",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            metavar="DATE",
            help="Only commits after DATE (git's formats: 2024-05-01, '2 weeks ago').",
        ),
    ] = None,
    until: Annotated[
        str | None, typer.Option(metavar="DATE", help="Only commits before DATE.")
    ] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option("--kind", "-k", metavar="KIND", help="Only this kind (repeatable)."),
    ] = None,
    severity: Annotated[
        str | None,
        typer.Option(
            metavar="LEVEL", help="Only changes at least this severe: breaking, warning or info."
        ),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", metavar="FORMAT", help="text, markdown or json.")
    ] = "text",
    all_commits: Annotated[
        bool,
        typer.Option(
            "--all", help="Also list commits that touched the directory without catalog changes."
        ),
    ] = False,
    entity: Annotated[
        str | None,
        typer.Option(
            metavar="NAME_OR_ID",
            help="Show the timeline of one entity (oldest first), following renames and "
            "re-creations.",
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Stop with exit 1 at a snapshot file that cannot be read, "
            "instead of warning and going on.",
        ),
    ] = False,
    with_stats: Annotated[
        bool, typer.Option("--with-stats", help="Count usage-field changes too.")
    ] = False,
    no_cache: Annotated[
        bool,
        typer.Option("--no-cache", help="Recompute every commit (ignore .git/kmsnap-cache/)."),
    ] = False,
    timing: Annotated[bool, typer.Option("--timing", hidden=True)] = False,
) -> None:
    """Show the catalog's history from git: what each commit changed, newest first.

    Walks the commits that touched the snapshot directory, following the first parent of a
    merge (the branch's own line, as `git log --first-parent`), and diffs each version with
    the one before. A snapshot file that cannot be read is named in a warning (commit and
    file) and the log goes on; --strict makes it an error. Results are cached in
    .git/kmsnap-cache/, so a second run is fast.

    Examples:

        kmsnap log

        kmsnap log --since '1 month ago' --severity breaking

        kmsnap log main~50..main --kind event --format markdown

        kmsnap log --entity 'Signed Up'
    """
    from kmsnap.config import ignore_fields_by_kind, load_config
    from kmsnap.history.view import (
        SEVERITY_LEVELS,
        Places,
        entity_timeline,
        filter_entries,
        is_initial,
        place_names,
        render_log,
        render_timeline,
    )
    from kmsnap.history.walk import LogQuery, load_history

    if fmt not in _FORMATS:
        raise UsageError(f"--format: unknown format {fmt!r}; use text, markdown or json")
    if severity is not None and severity not in SEVERITY_LEVELS:
        raise UsageError(f"--severity: unknown level {severity!r}; use breaking, warning or info")
    env = current()
    cwd = env.cwd
    revisions, path = _split_args(list(args or []), cwd)
    revisions += list(rev or [])
    config = load_config(cwd)
    if path is not None and snapshot_dir is not None and path != snapshot_dir:
        raise UsageError("PATH and --snapshot-dir name two directories; give one")
    given = path if path is not None else snapshot_dir
    if given is None:  # the setting: from kmsnap.yaml relative to its directory
        _where, given = snapshot_location(config, None)
    query = LogQuery(
        path=given,
        revisions=tuple(revisions),
        since=since,
        until=until,
        with_stats=with_stats,
        ignore_fields=ignore_fields_by_kind(config),
        strict=strict,
        use_cache=not no_cache,
        select=config,
    )
    history = load_history(query, cwd=cwd, warn=warn)
    if entity is not None:
        entries = filter_entries(history.entries, kinds=kind, severity=severity)
        # Names of accounts and products from the whole history, not only the kinds asked for.
        accounts, products = place_names(history.entries)
        text = render_timeline(
            entity,
            entity_timeline(entries, entity),
            fmt,
            account_names=accounts,
            product_names=products,
        )
    else:
        entries = filter_entries(
            history.entries, kinds=kind, severity=severity, include_empty=all_commits
        )
        # Which account and product: a dozen metrics may be called "Churn". The names come
        # from the whole history, not only the kinds asked for.
        places = Places(*place_names(history.entries))
        # The first snapshot adds everything: one summary line unless --all lists it.
        oldest = history.entries[-1] if history.entries and not all_commits else None
        initial = next((e for e in entries if oldest is not None and e.commit == oldest.commit
                        and is_initial(oldest)), None)
        text = render_log(entries, fmt, places=places, initial=initial)
    emit(text)
    if timing:
        info(
            f"kmsnap log: {len(history.entries)} commits, {history.cache_hits} cached, "
            f"{history.cache_misses} computed, {history.blobs_read} blobs read, "
            f"{history.seconds:.2f}s"
        )


@app.command("git-textconv", hidden=True)
def git_textconv(
    file: Annotated[str, typer.Argument()],
    format_version: Annotated[int, typer.Option("--format-version")] = 1,
) -> None:
    """git's textconv for snapshot files: one readable block per entity."""
    from kmsnap.git import driver

    out = current().stdout_bytes()
    raise typer.Exit(
        driver.main(["textconv", "--format-version", str(format_version), file], out=out)
    )


@app.command(
    "git-diff",
    hidden=True,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def git_diff(args: Annotated[list[str], typer.Argument()]) -> None:
    """git's external diff command for snapshot files: kmsnap's change list per file."""
    from kmsnap.git import driver

    raise typer.Exit(driver.main(["diff", *args], out=current().stdout_bytes()))
