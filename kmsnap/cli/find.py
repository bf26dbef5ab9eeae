"""The ``kmsnap find`` command: the entities that match a few predicates, as a table, JSON
or CSV (the export's columns and writers)."""

from __future__ import annotations

from typing import Annotated

import typer

from kmsnap.cli.environment import current
from kmsnap.cli.export import load_selected, write_output
from kmsnap.cli.typerapp import app
from kmsnap.errors import UsageError

FIND_FORMATS = ("table", "json", "csv")


@app.command(
    "find",
    # -hidden:true is a negated term, not an option: click hands unknown "options" to TERMS,
    # so the command has no short option (-h, -f) that a term's letters could spell.
    context_settings={"ignore_unknown_options": True, "help_option_names": ["--help"]},
)
def find_command(
    terms: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="SNAPSHOT|PREDICATE",
            show_default=False,
            help="A snapshot directory or REV:PATH (default: snapshot_dir), then terms",
        ),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option("--format", metavar="FORMAT", help="table, json or csv"),
    ] = "table",
) -> None:
    """Find entities by kind, name, visibility, description, environment, place or use.

    Each PREDICATE is KEY:VALUE, all must match; -KEY:VALUE negates one. Keys: kind, id,
    name, display_name, description, type, unit_type, status, hidden, environment, product,
    account, stale. Text matches a part, any case; /regex/ (or /regex/i) a regular
    expression; none a null or empty value. stale:90d needs a snapshot pulled --with-stats.
    kmsnap.yaml's include/exclude apply.

    Examples:

    \b
        kmsnap find kind:event name:/^signup/i hidden:true
        kmsnap find kind:event description:none environment:staging
        kmsnap find HEAD~1:snapshots product:"Web App" -hidden:true --format csv
        kmsnap find kind:event stale:90d --format json
    """
    from kmsnap.export import build_table, render_export
    from kmsnap.export.query import (
        filter_table,
        is_term,
        parse_query,
        query_context,
        render_find_table,
    )
    from kmsnap.lint.stale import has_stats

    if fmt not in FIND_FORMATS:
        raise UsageError(f"--format: unknown format {fmt!r}; use one of {', '.join(FIND_FORMATS)}")
    args = list(terms or [])
    spec: str | None = None
    if args and (current().path(args[0]).exists() or not is_term(args[0])):
        spec = args.pop(0)
    label, snap, _config = load_selected(spec, kinds=None)
    query = parse_query(args, kinds=set(snap.entities))
    if query.needs_stats and not has_stats(snap):
        raise UsageError(f"{label} has no usage fields, which stale: needs: pull it with "
                         "kmsnap pull --with-stats, then run kmsnap find")
    table = build_table(snap)
    found = filter_table(table, query, query_context(snap))
    if fmt == "table":
        write_output(render_find_table(found, len(table.rows)), None)
    else:
        write_output(render_export(found, fmt), None)
