"""The ``kmsnap show`` command: one entity as it stands, every field in canonical order, its
usage when the snapshot has it, and its timeline from git."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kmsnap.cli._common import info
from kmsnap.cli.docs import _in_git
from kmsnap.cli.export import SnapshotArgument, load_log, load_selected, write_output
from kmsnap.cli.typerapp import app
from kmsnap.errors import UsageError

if TYPE_CHECKING:
    from kmsnap.history.walk import LogEntry
    from kmsnap.model import Snapshot

SHOW_FORMATS = ("text", "json")
JSON_VERSION = 1
_SHORT = 12
_LISTED = 20  # entities named in an "ambiguous name" message, at most


def _timeline(entries: Sequence[LogEntry], kind: str, entity_id: str) -> list[dict[str, str]]:
    """The entity's changes oldest first (its predecessors' too when it was re-created), each
    labelled as on the docs page."""
    from kmsnap.docspage.data import change_label
    from kmsnap.history.view import entity_timeline

    out = []
    for event in entity_timeline(entries, entity_id):
        if event.change.kind != kind:
            continue  # the same id in another kind is another entity
        what, detail = change_label(event.change)
        out.append({"date": event.commit.date, "commit": event.commit.commit[:_SHORT],
                    "change": what, "detail": detail, "subject": event.commit.subject})
    return out


def _place(row: Mapping[str, Any]) -> str:
    from kmsnap.render.base import short_escape, short_quote

    parts = []
    for name in ("account", "product"):
        if row[f"{name}_id"] is not None and row["kind"] != name:
            parts.append(f"{name} {short_quote(row[name])} [{short_escape(row[f'{name}_id'])}]")
    return " › ".join(parts)


def _ambiguous(rows: Sequence[Mapping[str, Any]], name_or_id: str) -> UsageError:
    from kmsnap.render.base import short_escape, short_quote, show_kind

    for row in rows[:_LISTED]:
        info(f"  {show_kind(row['kind'])} [{short_escape(row['id'])}] "
             f"{_place(row) or '(no account or product)'}")
    if len(rows) > _LISTED:
        info(f"  ... and {len(rows) - _LISTED} more")
    return UsageError(f"{short_quote(name_or_id)} names {len(rows)} entities (listed above); "
                      "give its id, or narrow with --kind or --product")


def _lines(title: str, values: Mapping[str, Any]) -> list[str]:
    from kmsnap.render.base import short_escape, short_value

    keys = {key: short_escape(key, over=60, keep=50) for key in values}
    width = max((len(k) for k in keys.values()), default=0)
    return ["", title] + [f"  {keys[k] + ':':<{width + 1}} {short_value(v)}"
                          for k, v in values.items()]


def render_show(doc: Mapping[str, Any]) -> str:
    """The entity ``_document`` built, as text for people: every value escaped and shortened."""
    from kmsnap.render.base import escape, short_escape, short_quote, show_kind

    lines = [f"{show_kind(doc['kind'])} {short_quote(doc['name'])} [{short_escape(doc['id'])}]"]
    place = _place(doc)
    if place:
        lines.append(f"in {place}")
    lines += _lines("fields", doc["fields"])
    if doc["stats"] is not None:
        lines += _lines("usage", doc["stats"])
    lines.append("")
    if doc["timeline"] is None:
        lines.append("timeline: not shown (--no-history, or the snapshot is not in git)")
    elif not doc["timeline"]:
        lines.append("timeline: no change to it in the history")
    else:
        lines.append("timeline, oldest first")
        for step in doc["timeline"]:
            detail = step["detail"] if step["detail"].isprintable() else escape(step["detail"])
            text = f"  {step['date']}  {step['commit']}  {step['change']}"
            text += f" {detail}" if detail else ""
            lines.append(f"{text}  ({short_escape(step['subject'], over=80, keep=70)})")
    return "\n".join(lines) + "\n"


def _document(snap: Snapshot, row: Mapping[str, Any],
              timeline: list[dict[str, str]] | None) -> dict[str, Any]:
    from kmsnap.export.table import USAGE_COLUMNS
    from kmsnap.model import order_fields

    kind, entity_id = row["kind"], row["id"]
    usage = snap.stats.get(kind, {}).get(entity_id)
    stats = None
    if usage is not None:
        stats = {k: usage[k] for k in USAGE_COLUMNS if k in usage}
        stats.update({k: v for k, v in sorted(usage.items()) if k not in stats})
    return {
        "version": JSON_VERSION,
        **{k: row[k] for k in ("kind", "id", "name", "account_id", "account",
                               "product_id", "product")},
        "fields": order_fields(kind, snap.entities[kind][entity_id]),
        "stats": stats,
        "timeline": timeline,
    }


@app.command("show")
def show_command(
    name_or_id: Annotated[
        str,
        typer.Argument(metavar="NAME_OR_ID", show_default=False,
                       help="An entity's id, or its name (any case)"),
    ],
    snapshot: SnapshotArgument = None,
    kind: Annotated[
        str | None,
        typer.Option("--kind", "-k", metavar="KIND", show_default=False,
                     help="Only an entity of this kind (event or events, metric, ...)"),
    ] = None,
    product: Annotated[
        str | None,
        typer.Option("--product", metavar="PRODUCT", show_default=False,
                     help="Only an entity of this product (name or id)"),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", metavar="FORMAT", help="text or json")
    ] = "text",
    history: Annotated[
        bool,
        typer.Option(
            "--history/--no-history",
            help="The entity's timeline from git (kmsnap log) [default: when the snapshot "
            "is in a git repository]",
            show_default=False,
        ),
    ] = True,
) -> None:
    """Show one entity: every field, its usage, and its timeline from git.

    NAME_OR_ID is an id (exactly), else a name (any case). A name several entities share
    is an error listing them: give the id, or narrow with --kind or --product. kmsnap.yaml's
    include/exclude apply.

    Examples:

    \b
        kmsnap show "Signed up"
        kmsnap show "Churn" --kind metric --product "Web App"
        kmsnap show 3f2c9a1e-... HEAD~1:snapshots --format json
    """
    from kmsnap.export import build_table
    from kmsnap.export.query import close_names, pick_rows
    from kmsnap.model import kind_for_rel
    from kmsnap.render.base import escape, short_quote

    if fmt not in SHOW_FORMATS:
        raise UsageError(f"--format: unknown format {fmt!r}; use one of {', '.join(SHOW_FORMATS)}")
    spec, snap, config = load_selected(snapshot, kinds=[kind] if kind else None)
    table = build_table(snap, kinds={kind_for_rel(kind)} if kind else None)
    rows = pick_rows(table, name_or_id, product=product)
    if not rows:
        close = close_names(table, name_or_id)
        hint = f"; close names: {', '.join(short_quote(n, over=60, keep=50) for n in close)}" \
            if close else ""
        narrowed = " with that --kind/--product" if kind or product else ""
        raise UsageError(f"no entity has the id or name {short_quote(name_or_id)} in "
                         f"{escape(spec)}{narrowed}{hint}")
    if len(rows) > 1:
        raise _ambiguous(rows, name_or_id)
    row = rows[0]
    timeline = None
    if history and _in_git(spec):
        timeline = _timeline(load_log(spec, config), row["kind"], row["id"])
    doc = _document(snap, row, timeline)
    if fmt == "json":
        write_output(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", None)
    else:
        write_output(render_show(doc), None)
