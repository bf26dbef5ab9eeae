"""The ``kmsnap lint`` command: run the lint rules over a snapshot and print the findings."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from kmsnap.cli._common import emit
from kmsnap.cli.diff import FormatOption, KindOption, MaxCharsOption
from kmsnap.cli.diffrun import check_format, check_max_chars
from kmsnap.cli.environment import current
from kmsnap.cli.typerapp import app
from kmsnap.errors import ExitStatus, UsageError

if TYPE_CHECKING:
    from kmsnap.config import Config
    from kmsnap.lint.report import Report
    from kmsnap.model import Snapshot

SnapshotArgument = Annotated[
    str | None,
    typer.Argument(
        metavar="[SNAPSHOT]",
        show_default=False,
        help="Snapshot directory, or REV:PATH [default: snapshot_dir, snapshots]",
    ),
]
AsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", metavar="DATE", show_default=False,
                 help="Judge expiry dates as of DATE (YYYY-MM-DD) [default: today]"),
]


def check_fail_on(value: str, levels: Sequence[str]) -> str:
    if value not in levels:
        raise UsageError(f"--fail-on: unknown level {value!r}; use one of {', '.join(levels)}")
    return value


def check_date(value: str | None, option: str = "--as-of") -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(f"{option}: {value!r} is not a date (YYYY-MM-DD)") from None


def check_lint_kinds(kinds: Sequence[str] | None, allowed: Sequence[str]) -> set[str] | None:
    if not kinds:
        return None
    from kmsnap.diff.engine import normalize_kinds

    wanted = normalize_kinds(k.strip() for k in kinds)
    unknown = sorted(wanted - set(allowed))
    if unknown:
        raise UsageError(f"--kind: {', '.join(unknown)} is not one of {', '.join(allowed)}")
    return wanted


def load(spec: str | None, config: Config, *, with_stats: bool = False) -> tuple[str, Snapshot]:
    """(label, snapshot) for a SNAPSHOT argument, kmsnap.yaml's include/exclude applied."""
    from kmsnap.config import filter_snapshot, resolve_settings
    from kmsnap.git.source import open_source
    from kmsnap.snapshot.store import load_snapshot

    env = current()
    if spec is None:
        spec = resolve_settings(config, environ=env.environ).snapshot_dir
    snapshot = load_snapshot(open_source(spec, cwd=env.cwd), with_stats=with_stats)
    return spec, filter_snapshot(snapshot, config)


def output(report: Report, fmt: str, limit: int, see_all: str) -> None:
    from kmsnap.lint.report import render_markdown, render_report

    if fmt == "markdown":
        emit(render_markdown(report, limit=limit, see_all=see_all))
    else:
        emit(render_report(report, fmt))


@app.command()
def lint(
    snapshot: SnapshotArgument = None,
    fmt: FormatOption = "text",
    fail_on: Annotated[
        str,
        typer.Option("--fail-on", metavar="LEVEL",
                     help="Findings that exit 2: error, warning, info or never"),
    ] = "error",
    new_only: Annotated[
        bool,
        typer.Option("--new-only", help="Only findings SNAPSHOT introduces over --base"),
    ] = False,
    base: Annotated[
        str | None,
        typer.Option("--base", metavar="REV:PATH", show_default=False,
                     help="The snapshot --new-only compares with (a directory or REV:PATH)"),
    ] = None,
    kind: KindOption = None,
    as_of: AsOfOption = None,
    max_chars: MaxCharsOption = None,
) -> None:
    """Check a snapshot against the catalog rules: names, conventions, missing fields.

    Rules, severities, naming conventions, exclusions and suppressions come from the lint:
    section of kmsnap.yaml (docs/lint-rules.md lists every rule). Exit 0 without findings at
    or above --fail-on, 2 with them, 1 on error.

    Example:

    \b
        kmsnap lint snapshots
        kmsnap lint snapshots --new-only --base origin/main:snapshots --format github
    """
    from kmsnap.config import load_config
    from kmsnap.lint.engine import lint_snapshot, run_rules
    from kmsnap.lint.newonly import new_only as keep_new
    from kmsnap.lint.report import Report
    from kmsnap.lint.rules import FAIL_ON_LEVELS, LINTED_KINDS, level_at_least

    env = current()
    fmt = check_format(fmt)
    limit = check_max_chars(max_chars, fmt)
    fail_on = check_fail_on(fail_on, FAIL_ON_LEVELS)
    kinds = check_lint_kinds(kind, LINTED_KINDS)
    today = check_date(as_of) or dt.date.today()
    if new_only != (base is not None):
        raise UsageError("--new-only and --base go together: --new-only --base REV:PATH")
    config = load_config(cwd=env.cwd)
    label, snap = load(snapshot, config)
    result = lint_snapshot(snap, config.lint, today=today, kinds=kinds)
    if base is not None:
        _base_label, base_snap = load(base, config)
        result = keep_new(result, run_rules(base_snap, config.lint, kinds=kinds))
    report = Report("lint", label, result, base=base, as_of=today.isoformat())
    output(report, fmt, limit, "kmsnap lint --format text")
    if any(level_at_least(f.severity, fail_on) for f in result.findings):
        raise typer.Exit(int(ExitStatus.CHANGES))
