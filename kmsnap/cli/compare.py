"""The ``kmsnap compare`` command: staging against production (or any two products) by name."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from kmsnap.cli._common import emit, warn
from kmsnap.cli.export import KindsOption, SnapshotArgument, load_selected
from kmsnap.cli.typerapp import app
from kmsnap.errors import ExitStatus, UsageError


@app.command("compare")
def compare_command(
    snapshot: SnapshotArgument = None,
    left: Annotated[
        str | None,
        typer.Option("--left", metavar="PRODUCT", show_default=False,
                     help="The left-hand product, by name or id [default: the account's "
                     "staging or development product]"),
    ] = None,
    right: Annotated[
        str | None,
        typer.Option("--right", metavar="PRODUCT", show_default=False,
                     help="The right-hand product, by name or id [default: the account's "
                     "production product]"),
    ] = None,
    account: Annotated[
        str | None,
        typer.Option("--account", metavar="ACCOUNT", show_default=False,
                     help="Only pair products of this account (name or id)"),
    ] = None,
    kind: KindsOption = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", metavar="FORMAT", help="text, markdown or json")
    ] = "text",
    require: Annotated[
        str | None,
        typer.Option("--require", metavar="POLICY", show_default=False,
                     help="Exit 2 when it is broken: left-in-right (the right side has "
                     "everything the left has), right-in-left, or both"),
    ] = None,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit with 2 when the two sides differ at all")
    ] = False,
) -> None:
    """Compare two products of one catalog by entity name: staging against production.

    Ids differ between products, so entities are matched by name within each kind (case,
    spaces, _ and - do not count; kmsnap.yaml's compare.names pairs deliberate differences).
    Without --left/--right, each account's staging or development product is compared with
    its production product (Kissmetrics' environment field, else the words in the names).
    Reports what is only on one side and what differs in type, unit type, visibility,
    display name or description. Exit 0, 2 when --require or --exit-code says so, 1 on error.

    Examples:

    \b
        kmsnap compare
        kmsnap compare --left 'Web (staging)' --right Web --require left-in-right
        kmsnap compare main:snapshots --format markdown > compare.md
    """
    from kmsnap.envcompare import FORMATS, REQUIRE, compare_environments, fails, render_pairings
    from kmsnap.model import kind_for_rel

    if fmt not in FORMATS:
        raise UsageError(f"--format: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if require is not None and require not in REQUIRE:
        raise UsageError(f"--require: unknown policy {require!r}; use one of {', '.join(REQUIRE)}")
    _spec, snap, config = load_selected(snapshot, kinds=kind)
    section: Any = config.values.get("compare") or {}
    notes: list[str] = []
    pairings = compare_environments(
        snap,
        left=left,
        right=right,
        account=account,
        kinds=sorted({kind_for_rel(k) for k in kind}) if kind else None,
        names=section.get("names"),
        notes=notes,
    )
    for note in notes:
        warn(note)
    emit(render_pairings(pairings, fmt))
    if fails(pairings, require) or (exit_code and any(p.differs for p in pairings)):
        raise typer.Exit(int(ExitStatus.CHANGES))
