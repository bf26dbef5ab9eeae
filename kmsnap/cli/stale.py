"""The ``kmsnap stale`` command: verdicts on the usage fields of a ``--with-stats`` snapshot."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from kmsnap.cli.diff import FormatOption, KindOption, MaxCharsOption
from kmsnap.cli.diffrun import check_format, check_max_chars
from kmsnap.cli.environment import current
from kmsnap.cli.lint import SnapshotArgument, check_date, check_fail_on, check_lint_kinds, load
from kmsnap.cli.lint import output as _output
from kmsnap.cli.typerapp import app
from kmsnap.errors import ExitStatus, UsageError


@app.command()
def stale(
    snapshot: SnapshotArgument = None,
    fmt: FormatOption = "text",
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", metavar="DATE", show_default=False,
                     help="The reference date (YYYY-MM-DD) [default: the date of the "
                     "snapshot's commit, else today]"),
    ] = None,
    fail_on: Annotated[
        str,
        typer.Option("--fail-on", metavar="LEVEL",
                     help="Verdicts that exit 2: error, warning, info or never"),
    ] = "never",
    kind: KindOption = None,
    max_chars: MaxCharsOption = None,
) -> None:
    """Find events and properties that are never sent, stopped, unused or test leftovers.

    Reads the usage fields of a snapshot pulled with --with-stats; thresholds come from the
    stale: section of kmsnap.yaml. --as-of makes the output reproducible in CI. Exit 0 without
    verdicts at or above --fail-on, 2 with them, 1 on error.

    Example:

    \b
        kmsnap pull --with-stats
        kmsnap stale snapshots --as-of 2026-05-04
    """
    from kmsnap.config import load_config
    from kmsnap.git.source import split_spec
    from kmsnap.lint.report import Report
    from kmsnap.lint.rules import FAIL_ON_LEVELS, level_at_least
    from kmsnap.lint.stale import STALE_KINDS, has_stats, judge, snapshot_date

    env = current()
    fmt = check_format(fmt)
    limit = check_max_chars(max_chars, fmt)
    fail_on = check_fail_on(fail_on, FAIL_ON_LEVELS)
    kinds = check_lint_kinds(kind, STALE_KINDS)
    when = check_date(as_of)
    config = load_config(cwd=env.cwd)
    label, snap = load(snapshot, config, with_stats=True)
    if not has_stats(snap):
        raise UsageError(f"{label} has no usage fields: pull it with kmsnap pull --with-stats, "
                         "then run kmsnap stale")
    if when is None:
        parts = None if env.path(label).exists() else split_spec(label)
        rev, path = parts if parts is not None else (None, label)
        when = snapshot_date(env.cwd, rev, path) or dt.date.today()
    result = judge(snap, config.stale, as_of=when, kinds=kinds)
    report = Report("stale", label, result, as_of=when.isoformat())
    _output(report, fmt, limit, "kmsnap stale --format text")
    if any(level_at_least(f.severity, fail_on) for f in result.findings):
        raise typer.Exit(int(ExitStatus.CHANGES))
