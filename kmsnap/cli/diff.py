"""The ``kmsnap diff`` and ``kmsnap check`` commands: compare snapshots, or a snapshot with the live
catalog, and print the change set in the chosen format."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from kmsnap.cli._common import emit, info
from kmsnap.cli.diffrun import (
    check_format,
    check_kinds,
    check_max_chars,
    kind_option,
    output,
    rules_of,
    run_diff,
)
from kmsnap.cli.environment import current
from kmsnap.cli.pull import (
    AllowShrinkOption,
    ApiOption,
    ConcurrencyOption,
    CredentialsFileOption,
    DeadlineOption,
    MaxResponseMbOption,
    MaxRetryAfterOption,
    MaxRpmOption,
    MaxRpsOption,
    PageSizeOption,
    QuietOption,
    SnapshotDirOption,
    SourceOption,
    TimeoutOption,
    TokenFileOption,
    given_dir,
    snapshot_location,
)
from kmsnap.cli.typerapp import app
from kmsnap.diff.engine import severity_at_least
from kmsnap.errors import ExitStatus, UsageError
from kmsnap.lint.accept import accept_changes
from kmsnap.lint.hidden import soften_hidden_removals

FormatOption = Annotated[
    str,
    typer.Option(
        "--format",
        "-f",
        metavar="FORMAT",
        help="Output format: text, markdown, json or github (workflow annotations)",
    ),
]
MaxCharsOption = Annotated[
    int | None,
    typer.Option(
        "--max-chars",
        metavar="N",
        show_default=False,
        help="Markdown: keep the report within N characters, saying what is left out "
        "[default: 65536, GitHub's limit for a comment]",
    ),
]
KindOption = Annotated[
    list[str] | None,
    typer.Option(
        "--kind",
        "-k",
        metavar="KIND",
        show_default=False,
        help="Compare only this kind (event or events, metric, ...); repeatable",
    ),
]


@app.command()
def diff(
    old: Annotated[str, typer.Argument(metavar="OLD", help="Snapshot directory, or REV:PATH")],
    new: Annotated[str, typer.Argument(metavar="NEW", help="Snapshot directory, or REV:PATH")],
    fmt: FormatOption = "text",
    kind: KindOption = None,
    with_stats: Annotated[
        bool, typer.Option("--with-stats", help="Count usage fields (total, ...) as changes too")
    ] = False,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit with 2 when the snapshots differ")
    ] = False,
    max_chars: MaxCharsOption = None,
    config_file: Annotated[
        str | None,
        typer.Option(
            "--config",
            metavar="PATH",
            show_default=False,
            help="Compare with the include, exclude and ignore_fields of this kmsnap.yaml "
            "[default: the kmsnap.yaml found from the current directory]",
        ),
    ] = None,
) -> None:
    """Compare two snapshots: what was added, removed, changed, renamed or re-created.

    OLD and NEW are snapshot directories or, when no such path exists, REV:PATH read from
    the current git repository without checking anything out. Exit 0 (with --exit-code: 2
    when they differ), 1 on error.

    Example:

    \b
        kmsnap diff HEAD~1:snapshots snapshots
        kmsnap diff origin/main:snapshots snapshots --format markdown > comment.md
    """
    status = run_diff(old, new, fmt=fmt, kind=kind, with_stats=with_stats, exit_code=exit_code,
                      max_chars=max_chars, config_file=config_file)
    if status:
        raise typer.Exit(status)


@app.command()
def check(
    snapshot_dir: SnapshotDirOption = None,
    snapshot: Annotated[Path | None, typer.Option("--snapshot", metavar="DIR", hidden=True)] = None,
    fail_on: Annotated[
        str | None,
        typer.Option(
            "--fail-on",
            metavar="LEVEL",
            show_default=False,
            help="Drift that exits 2: breaking, warning or any [default: any]",
        ),
    ] = None,
    fmt: FormatOption = "text",
    kind: KindOption = None,
    api: ApiOption = None,
    token_file: TokenFileOption = None,
    concurrency: ConcurrencyOption = None,
    page_size: PageSizeOption = None,
    max_rps: MaxRpsOption = None,
    timeout: TimeoutOption = None,
    deadline: DeadlineOption = None,
    max_response_mb: MaxResponseMbOption = None,
    max_retry_after: MaxRetryAfterOption = None,
    with_stats: Annotated[
        bool, typer.Option("--with-stats", help="Count usage fields (total, ...) as drift too")
    ] = False,
    quiet: QuietOption = False,
    max_chars: MaxCharsOption = None,
    allow_shrink: AllowShrinkOption = False,
    source: SourceOption = None,
    credentials_file: CredentialsFileOption = None,
    max_rpm: MaxRpmOption = None,
) -> None:
    """Pull the live catalog and compare it with the committed snapshot; exit 2 on drift.

    The live catalog is compared in memory, exactly as if pulled and saved; the snapshot
    is never touched. Exit 0 without drift at or above --fail-on, 2 with it, 1 on error.
    A live catalog that lost a whole kind, or more than max_shrink of the entities, is an
    error (exit 1) rather than a list of removals, unless --allow-shrink.

    Example:

    \b
        export KISSMETRICS_TOKEN=...
        kmsnap check --snapshot-dir snapshots --fail-on breaking --format github
    """
    from kmsnap.cli.pull import pull_live
    from kmsnap.compare import compare_live, source_mismatch
    from kmsnap.config import load_config, resolve_settings
    from kmsnap.snapshot.shrink import ShrinkGuard
    from kmsnap.snapshot.store import DirectorySource, read_source

    env = current()
    fmt = check_format(fmt)
    limit = check_max_chars(max_chars, fmt)
    kinds = check_kinds(kind)
    config = load_config(cwd=env.cwd)
    settings = resolve_settings(config, {"fail_on": fail_on}, environ=env.environ)
    # Like pull's, the flag takes any path (relative to the current directory); the config
    # file's value is relative to the file's directory and held to the relative form that
    # the generated workflows can use.
    where, shown = snapshot_location(config, given_dir(snapshot_dir, snapshot, "--snapshot"))
    if not where.is_dir():
        raise UsageError(
            f"no snapshot directory {shown!r} (run kmsnap pull to create it, "
            "or pass --snapshot-dir DIR)"
        )
    guard = ShrinkGuard.for_check(
        where, config, allow=allow_shrink, kinds=kinds, environ=env.environ
    )
    stored = DirectorySource(where, label=shown)
    stored_source = read_source(stored)

    def same_source(live_source: str, live_api: str) -> None:
        # Before the crawl, when the stored snapshot has entities (known from the guard's ids;
        # with --allow-shrink the comparison below refuses it, after the crawl).
        if live_source != stored_source and guard.ids:
            raise source_mismatch(stored_source, live_source, shown, f"live ({live_api})")

    result = pull_live(
        api,
        token_file,
        concurrency,
        page_size,
        max_rps,
        timeout,
        quiet,
        config=config,
        summary=False,
        deadline=deadline,
        max_response_mb=max_response_mb,
        max_retry_after=max_retry_after,
        source=source,
        credentials_file=credentials_file,
        max_rpm=max_rpm,
        before=same_source,
        pack=True,  # held as text: the comparison below encodes it to the store's files anyway
    )
    # In memory, as pull then diff would compare it: no temporary directory (kmsnap.compare).
    # Compared before the shrink guard: a Core snapshot against a v3 catalog is refused as
    # such (their ids cannot be matched), not as a catalog that lost everything.
    with kind_option():
        cs = compare_live(
            stored,
            result.snapshot,
            rules=rules_of(config),
            kinds=kinds,
            with_stats=with_stats,
        )
    guard.check_live(result.snapshot)
    see_all = f"kmsnap check --snapshot-dir {shlex.quote(shown)} --format text"
    cs = soften_hidden_removals(cs, config.hide_before_remove_days, str(where), cwd=env.cwd)
    accepted = accept_changes(cs, config.accept, fmt, limit)  # accepted changes do not fail check
    output(accepted.shown, fmt, max_chars=limit - len(accepted.section), see_all=see_all)
    emit(accepted.section)
    drift = [c for c in accepted.counted if severity_at_least(c, settings.fail_on)]
    if drift:
        # Every exit says why on stderr: this one, that the catalog drifted (not an error).
        info(drift_line(drift, settings.fail_on, shown))
        raise typer.Exit(int(ExitStatus.CHANGES))


def drift_line(drift: Sequence[object], fail_on: str, snapshot_dir: str) -> str:
    """The line ``check`` prints on stderr when it exits 2: how much drift, at which level."""
    breaking = sum(1 for change in drift if str(getattr(change, "severity", "")) == "breaking")
    counted = f"{len(drift)} change{'' if len(drift) == 1 else 's'}"
    if breaking and fail_on != "breaking":
        counted += f" ({breaking} breaking)"
    return (f"kmsnap: drift: {counted} at or above --fail-on {fail_on} between the live "
            f"catalog and {snapshot_dir}; exit 2")

