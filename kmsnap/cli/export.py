"""The ``kmsnap export`` command: a snapshot as CSV, JSON Lines, JSON or markdown, one row per
entity, for spreadsheets and scripts; and the loading that ``kmsnap docs`` shares with it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kmsnap.cli._common import warn
from kmsnap.cli.environment import current
from kmsnap.cli.typerapp import app
from kmsnap.errors import UsageError

if TYPE_CHECKING:
    from kmsnap.config import Config
    from kmsnap.history.walk import LogEntry
    from kmsnap.model import Snapshot


def load_selected(spec: str | None, *, kinds: list[str] | None) -> tuple[str, Snapshot, Config]:
    """The snapshot named on the command line (default: snapshot_dir), with stats when it has
    them, narrowed to kmsnap.yaml's include/exclude; unknown ``--kind`` is a usage error."""
    from kmsnap.config import filter_snapshot, load_config
    from kmsnap.git.source import open_source
    from kmsnap.model import KINDS, kind_for_rel
    from kmsnap.snapshot.store import load_snapshot

    env = current()
    config = load_config(cwd=env.cwd)
    if spec is None:
        spec = str(config.resolve("snapshot_dir", environ=env.environ))
    snapshot = load_snapshot(open_source(spec, cwd=env.cwd), with_stats=True)
    for kind in kinds or ():
        if kind_for_rel(kind) not in KINDS and kind_for_rel(kind) not in snapshot.entities:
            raise UsageError(f"--kind: unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    return spec, filter_snapshot(snapshot, config), config


def load_log(spec: str, config: Config) -> list[LogEntry]:
    """``kmsnap log``'s history of the snapshot at ``spec`` (a directory, or REV:PATH walked
    from REV), newest first; broken files are warnings, as in ``kmsnap log``."""
    from kmsnap.config import ignore_fields_by_kind
    from kmsnap.git.source import split_spec
    from kmsnap.history.walk import LogQuery, load_history

    env = current()
    # A directory is walked from inside it (its own repository, wherever cwd is).
    cwd, path = env.path(spec).resolve(), "."
    revisions: tuple[str, ...] = ()
    if not cwd.exists():
        cwd, path = env.cwd, spec
        parts = split_spec(spec)
        if parts is not None:
            revisions, path = (parts[0],), parts[1] or "."
    query = LogQuery(
        path=path,
        revisions=revisions,
        ignore_fields=ignore_fields_by_kind(config),
        select=config,
    )
    return load_history(query, cwd=cwd, warn=warn).entries


def write_output(text: str, out: Path | None) -> None:
    """``text`` as UTF-8 bytes to ``out`` (replaced whole), else to stdout, byte for byte."""
    data = text.encode("utf-8")
    env = current()
    if out is None:
        sink = env.stdout_bytes()
        sink.write(data)
        sink.flush()
        return
    target = env.path(out)
    try:
        target.write_bytes(data)
    except OSError as exc:
        raise UsageError(f"--out: cannot write {out}: {exc.strerror}") from None


SnapshotArgument = Annotated[
    str | None,
    typer.Argument(
        metavar="[SNAPSHOT]",
        show_default=False,
        help="Snapshot directory, or REV:PATH [default: snapshot_dir from kmsnap.yaml, "
        "else snapshots]",
    ),
]
KindsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--kind", "-k", metavar="KIND", show_default=False,
        help="Only this kind (event or events, metric, ...); repeatable",
    ),
]


@app.command("export")
def export_command(
    snapshot: SnapshotArgument = None,
    fmt: Annotated[
        str,
        typer.Option("--format", "-f", metavar="FORMAT", help="csv, jsonl, json or markdown"),
    ] = "csv",
    kind: KindsOption = None,
    history: Annotated[
        bool,
        typer.Option(
            "--history",
            help="Add first_appeared, first_commit, last_changed and last_commit from git "
            "(kmsnap log's history of the snapshot directory)",
        ),
    ] = False,
    bom: Annotated[
        bool,
        typer.Option(
            "--bom", help="CSV: start with a UTF-8 byte-order mark (for Excel on Windows)"
        ),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", metavar="FILE", show_default=False,
                     help="Write to FILE instead of stdout"),
    ] = None,
) -> None:
    """Export the catalog as a table: one row per entity, for spreadsheets and scripts.

    Columns: account_id, account, product_id, product, kind, id, name, then every documented
    field (the same columns for every snapshot), undocumented fields, usage fields when the
    snapshot has stats, and with --history the dates from git. kmsnap.yaml's
    include/exclude apply. A cell a spreadsheet would run as a formula (=, +, -, @) starts
    with a quote.

    Examples:

    \b
        kmsnap export --format csv --bom --out catalog.csv
        kmsnap export HEAD~1:snapshots --kind event --format jsonl
        kmsnap export --history --format json
    """
    from kmsnap.export import FORMATS, build_table, entity_dates, render_export
    from kmsnap.model import kind_for_rel

    if fmt not in FORMATS:
        raise UsageError(f"--format: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if bom and fmt != "csv":
        raise UsageError(f"--bom: applies to the csv format, not to {fmt}")
    spec, snap, config = load_selected(snapshot, kinds=kind)
    dates = None
    if history:
        entries = load_log(spec, config)
        dates = entity_dates([
            (entry.commit.date, entry.commit.commit, change)
            for entry in reversed(entries)
            for change in entry.changes
        ])
    kinds = {kind_for_rel(k) for k in kind} if kind else None
    write_output(render_export(build_table(snap, kinds=kinds, dates=dates), fmt, bom=bom), out)
