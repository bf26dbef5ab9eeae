"""The ``kmsnap pull`` command, and ``pull_live``: the crawl with its progress display and warnings.

``kmsnap check`` reuses ``pull_live`` and the option types below (``ApiOption`` ...), so
both commands offer the same options with the same help.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kmsnap.cli._common import info, read_token, stderr_is_terminal, warn
from kmsnap.cli.environment import current
from kmsnap.cli.typerapp import app
from kmsnap.model import KINDS, rel_for_kind

# The HTTP stack, the config loader and rich's progress bars are imported where a command
# runs them: every command module is imported for --help and --version, which need none.
if TYPE_CHECKING:
    from collections.abc import Callable

    import requests

    from kmsnap.cli.progress import PullDisplay
    from kmsnap.config import Config, Settings
    from kmsnap.sources.core.crawler import PullOptions, PullResult
    from kmsnap.sources.v3 import V3PullOptions

# Option types shared with ``check``: ``def check(api: ApiOption = None, ...)``. Every
# default is None so the config file and KMSNAP_* variables can fill in (kmsnap.config).
ApiOption = Annotated[
    str | None,
    typer.Option("--api", metavar="URL", show_default=False,
                 help="API base URL [default: $KMSNAP_API, else https://api.kissmetrics.com/core]"),
]
TokenFileOption = Annotated[
    Path | None,
    typer.Option("--token-file", metavar="PATH", show_default=False,
                 help="Read the API token from this file (keep it chmod 600) "
                      "[default: $KISSMETRICS_TOKEN]"),
]
ConcurrencyOption = Annotated[
    int | None,
    typer.Option("--concurrency", metavar="N", show_default=False,
                 help="Requests in flight at once [default: 8]"),
]
PageSizeOption = Annotated[
    int | None,
    typer.Option("--page-size", metavar="N", show_default=False,
                 help="Items to ask for per page; the API may give fewer [default: 100]"),
]
MaxRpsOption = Annotated[
    float | None,
    typer.Option("--max-rps", metavar="R", show_default=False,
                 help="At most R requests per second [default: no cap; slows down on 429]"),
]
TimeoutOption = Annotated[
    float | None,
    typer.Option("--timeout", metavar="S", show_default=False,
                 help="Seconds to wait to connect, and for each read [default: 30]"),
]
# The defaults below are PullOptions' (kmsnap.sources.core.crawler and .client), spelt out
# here so --help needs no HTTP stack; tests/test_hostile_crawl.py checks that they agree.
DeadlineOption = Annotated[
    float | None,
    typer.Option("--deadline", metavar="SECONDS", show_default=False,
                 help="Give up a pull that takes longer than this in all [default: 1800]"),
]
MaxResponseMbOption = Annotated[
    int | None,
    typer.Option("--max-response-mb", metavar="N", show_default=False,
                 help="Refuse an answer larger than N MiB once decompressed [default: 32]"),
]
MaxRetryAfterOption = Annotated[
    float | None,
    typer.Option("--max-retry-after", metavar="SECONDS", show_default=False,
                 help="Fail at once when the API asks to wait longer than this in a "
                      "Retry-After [default: 300]"),
]
WithStatsOption = Annotated[
    bool,
    typer.Option("--with-stats",
                 help="Also keep usage counters and timestamps (in <kind>.stats.yaml)"),
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress display and no summary line")
]
SourceOption = Annotated[
    str | None,
    typer.Option("--source", metavar="core|v3", show_default=False,
                 help="The API: core, or v3 (the REST API v3) [default: $KMSNAP_SOURCE, else "
                      "source in kmsnap.yaml, else v3 when the --api URL ends in /v3, else "
                      "core]"),
]
CredentialsFileOption = Annotated[
    Path | None,
    typer.Option("--credentials-file", metavar="PATH", show_default=False,
                 help="v3: read one line, username:password or the API key, from this file "
                      "(keep it chmod 600) [default: $KISSMETRICS_USERNAME and "
                      "$KISSMETRICS_PASSWORD, or $KISSMETRICS_API_KEY]"),
]
MaxRpmOption = Annotated[
    int | None,
    typer.Option("--max-rpm", metavar="N", show_default=False,
                 help="At most N requests a minute, all workers together [default: 15 for "
                      "v3, its published limit; no cap for core]"),
]
AllowShrinkOption = Annotated[
    bool,
    typer.Option("--allow-shrink",
                 help="Accept a catalog that lost a whole kind or more than max_shrink "
                      "(default 0.25) of its entities [default: $KMSNAP_ALLOW_SHRINK, "
                      "else allow_shrink in kmsnap.yaml, else refuse]"),
]


def summary_line(result: PullResult) -> str:
    """One line: entities per kind, requests made, time taken."""
    counts = result.snapshot.counts()
    order = [k for k in KINDS if k in counts] + [k for k in counts if k not in KINDS]
    parts = [_count(counts[kind], kind, rel_for_kind(kind)) for kind in order]
    total = result.snapshot.size()
    least = getattr(result, "least_requests", 0)  # a v3 pull says what it cost at best
    floor = f" (least possible {least})" if least else ""
    return (f"pulled {_count(total, 'entity', 'entities')} ({', '.join(parts) or 'none'}) "
            f"in {_count(result.requests, 'request', 'requests')}{floor}, "
            f"{result.elapsed:.1f} s")


def _count(n: int, singular: str, plural: str) -> str:
    return f"{n} {singular if n == 1 else plural}"


def pull_live(
    api: str | None = None,
    token_file: Path | None = None,
    concurrency: int | None = None,
    page_size: int | None = None,
    max_rps: float | None = None,
    timeout: float | None = None,
    quiet: bool = False,
    *,
    config: Config | None = None,
    session: requests.Session | None = None,
    summary: bool = True,
    deadline: float | None = None,
    max_response_mb: int | None = None,
    max_retry_after: float | None = None,
    source: str | None = None,
    credentials_file: Path | None = None,
    max_rpm: int | None = None,
    display: PullDisplay | None = None,
    with_stats: bool = True,
    pack: bool = False,
    before: Callable[[str, str], None] | None = None,
) -> PullResult:
    """Pull the live catalog, showing progress (``kmsnap.cli.progress``); print warnings and
    a summary.

    None for a setting means: from ``KMSNAP_*``, else the config file, else the default.
    The snapshot comes back filtered by the config's include/exclude. A ``display`` given
    is fed and left open (``pull`` shows its write phase on it); else one is opened here.
    ``with_stats=False`` drops the usage fields as the pages arrive (less memory);
    ``pack=True`` holds a Core pull's product kinds as canonical text
    (``kmsnap.snapshot.packed``), for a caller that writes them. ``before`` is called with
    the source's name and API before the first request (it may refuse the pull).
    """
    from kmsnap.compare import pull_selected
    from kmsnap.config import load_config, resolve_settings

    env = current()
    config = config if config is not None else load_config(cwd=env.cwd)
    settings = resolve_settings(config, {
        "api": api, "concurrency": concurrency, "page_size": page_size, "max_rps": max_rps,
        "timeout": timeout, "source": source, "max_rpm": max_rpm,
    }, environ=env.environ)
    options = live_options(settings, config, token_file=token_file,
                           credentials_file=credentials_file)
    _set_bounds(options, deadline, max_response_mb, max_retry_after)
    if before is not None:
        from kmsnap.sources.core.crawler import PullOptions as CoreOptions

        before("core" if isinstance(options, CoreOptions) else "v3", options.api)
    options.with_stats = options.with_stats and with_stats
    if hasattr(options, "pack"):  # the Core crawler; v3 catalogs are small (15 requests/min)
        options.pack = pack
    shown = display if display is not None else open_display(quiet)
    try:
        result = pull_selected(options, config, progress=shown.update, session=session)
    finally:
        if display is None:
            shown.close()
    for message in result.warnings:
        warn(message)
    if summary and not quiet:
        info(summary_line(result))
    return result


def open_display(quiet: bool) -> PullDisplay:
    """The progress display for this environment's stderr (``kmsnap.cli.progress``)."""
    from kmsnap.cli.progress import open_display as open_for

    return open_for(current().err_console, quiet=quiet, terminal=stderr_is_terminal())


def live_options(
    settings: Settings, config: Config, *, token_file: Path | None = None,
    credentials_file: Path | None = None,
) -> PullOptions | V3PullOptions:
    """The source's pull options from the resolved settings: Core with the token, v3 with
    the credentials (``kmsnap.sources.v3.load_credentials``, from the environment's
    variables or ``credentials_file``), never from the command line."""
    from kmsnap.errors import UsageError
    from kmsnap.sources.base import resolve_source

    env = current()
    name, api = resolve_source(settings.source, settings.api,
                               api_given=settings.sources["api"] != "default")
    max_rps = settings.max_rps
    if name == "core":
        from kmsnap.sources.core.crawler import PullOptions

        if credentials_file is not None:
            raise UsageError("--credentials-file is for --source v3; the Core API reads the "
                             "token from KISSMETRICS_TOKEN or --token-file")
        if settings.max_rpm is not None:  # Core paces per second: the same budget
            per_second = settings.max_rpm / 60.0
            max_rps = per_second if max_rps is None else min(max_rps, per_second)
        return PullOptions(
            api=api, token=read_token(token_file), concurrency=settings.concurrency,
            page_size=settings.page_size, max_rps=max_rps, timeout=settings.timeout,
        )
    from kmsnap.sources.v3 import V3PullOptions, load_credentials

    if token_file is not None:
        raise UsageError("--token-file is for the Core API; v3 reads KISSMETRICS_USERNAME and "
                         "KISSMETRICS_PASSWORD, KISSMETRICS_API_KEY, or --credentials-file")
    file = env.path(credentials_file) if credentials_file is not None else None
    options = V3PullOptions(
        credentials=load_credentials(env.environ, file), api=api, max_rps=max_rps,
        timeout=settings.timeout, with_stats=True,  # the writer decides what it keeps
        exclude_products=config.exclude.products,
    )
    # v3's own defaults (4 workers, pages of 1000) unless a flag, variable or file says
    if settings.sources["concurrency"] != "default":
        options.concurrency = settings.concurrency
    if settings.sources["page_size"] != "default":
        options.page_size = settings.page_size
    if settings.max_rpm is not None:
        options.per_minute = settings.max_rpm
    return options


SnapshotDirOption = Annotated[
    Path | None,
    typer.Option("--snapshot-dir", metavar="DIR", show_default=False,
                 help="The snapshot directory [default: $KMSNAP_SNAPSHOT_DIR, else "
                      "snapshot_dir in kmsnap.yaml (relative to its directory), else "
                      "snapshots]"),
]
# The names the option had before it had one name in every command: kept, not shown.
OutAlias = Annotated[Path | None, typer.Option("--out", metavar="DIR", hidden=True)]


def given_dir(snapshot_dir: Path | None, alias: Path | None, alias_name: str) -> Path | None:
    """The snapshot directory given on the command line, by its name or its old one."""
    from kmsnap.errors import UsageError

    if snapshot_dir is not None and alias is not None and snapshot_dir != alias:
        raise UsageError(f"--snapshot-dir and {alias_name} name two directories; give one")
    return snapshot_dir if snapshot_dir is not None else alias


def snapshot_location(config: Config, given: Path | None) -> tuple[Path, str]:
    """The snapshot directory to open and the name to show for it: as given (relative to the
    current directory), else the setting (``kmsnap.config.locate_snapshot_dir``)."""
    import os

    from kmsnap.config import locate_snapshot_dir, resolve_settings

    env = current()
    if given is not None:
        return env.path(given), str(given)
    settings = resolve_settings(config, {}, environ=env.environ)
    where = locate_snapshot_dir(config, settings, env.cwd)
    try:
        shown = os.path.relpath(where, env.cwd)
    except ValueError:  # another drive on Windows
        shown = str(where)
    return where, shown


def check_writable(where: Path, shown: str) -> None:
    """Refuse, before anything is crawled, a target the store would refuse after the crawl:
    not a directory, a directory of other files (no snapshot marker), or one kmsnap cannot
    create or replace."""
    import os
    import tempfile

    from kmsnap.errors import SnapshotError
    from kmsnap.snapshot.layout import META_FILE

    if where.exists() or where.is_symlink():
        if not where.is_dir() or where.is_symlink():
            raise SnapshotError(f"{shown} exists and is not a snapshot directory; pass "
                                "--snapshot-dir DIR")
        if not (where / META_FILE).is_file() and any(where.iterdir()):
            raise SnapshotError(f"{shown} is not a kmsnap snapshot (no {META_FILE}) and not "
                                "empty; refusing to replace its files: pass --snapshot-dir "
                                "DIR")
    parent = where.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise SnapshotError(f"cannot create {shown}: {parent} is not a directory")
    try:  # the store writes a new tree next to the old one, then swaps: the parent decides
        fd, probe = tempfile.mkstemp(prefix=".kmsnap-probe-", dir=parent)
    except OSError as exc:
        raise SnapshotError(f"cannot write {shown}: {parent} is not writable "
                            f"({exc.strerror})") from None
    os.close(fd)
    os.unlink(probe)


def _set_bounds(options: PullOptions | V3PullOptions, deadline: float | None,
                max_response_mb: int | None, max_retry_after: float | None) -> None:
    """The bound options onto ``options``, refusing values that would bound nothing."""
    from kmsnap.errors import UsageError

    if deadline is not None:
        if not 0 < deadline < float("inf"):
            raise UsageError(f"--deadline must be a number of seconds above 0, not {deadline:g}")
        options.deadline = deadline
    if max_response_mb is not None:
        if not 1 <= max_response_mb <= 64 * 1024:
            raise UsageError(f"--max-response-mb must be 1 to 65536, not {max_response_mb}")
        options.max_body = max_response_mb * 1024 * 1024
    if max_retry_after is not None:
        if not 0 <= max_retry_after < float("inf"):
            raise UsageError("--max-retry-after must be a number of seconds, 0 or more, "
                             f"not {max_retry_after:g}")
        options.max_retry_after = max_retry_after


@app.command()
def pull(
    snapshot_dir: SnapshotDirOption = None,
    out: OutAlias = None,
    api: ApiOption = None,
    token_file: TokenFileOption = None,
    concurrency: ConcurrencyOption = None,
    page_size: PageSizeOption = None,
    max_rps: MaxRpsOption = None,
    timeout: TimeoutOption = None,
    deadline: DeadlineOption = None,
    max_response_mb: MaxResponseMbOption = None,
    max_retry_after: MaxRetryAfterOption = None,
    with_stats: WithStatsOption = False,
    quiet: QuietOption = False,
    allow_shrink: AllowShrinkOption = False,
    source: SourceOption = None,
    credentials_file: CredentialsFileOption = None,
    max_rpm: MaxRpmOption = None,
) -> None:
    """Crawl the Kissmetrics API and write the catalog snapshot to a directory.

    Follows the API from its root directory to every account, product, report, event,
    property and metric the token can see, and replaces DIR with the new snapshot only
    when the crawl is complete: a failed pull leaves the previous snapshot as it was, and
    so does one that would remove a whole kind or more than max_shrink (a quarter) of the
    entities, unless --allow-shrink.
    Give the token in KISSMETRICS_TOKEN or a file, never on the command line.

    Example:

    \b
        export KISSMETRICS_TOKEN=...        # Account settings > Manage API Tokens
        kmsnap pull --out snapshots
        git add snapshots && git commit -m "Catalog snapshot"
    """
    from kmsnap.config import load_config
    from kmsnap.snapshot.shrink import ShrinkGuard
    from kmsnap.snapshot.store import save_snapshot  # imported here: only pull needs the writer

    env = current()
    config = load_config(cwd=env.cwd)
    where, target = snapshot_location(config, given_dir(snapshot_dir, out, "--out"))
    started = time.perf_counter()
    # Before the crawl, not after it: a target kmsnap may not replace, or cannot write.
    check_writable(where, target)
    # Read before the crawl: a broken previous snapshot fails fast; only its ids are kept.
    guard = ShrinkGuard.for_pull(where, config, allow=allow_shrink, environ=env.environ)
    display = open_display(quiet)
    try:
        result = pull_live(api, token_file, concurrency, page_size, max_rps, timeout, quiet,
                           config=config, summary=False, deadline=deadline,
                           max_response_mb=max_response_mb, max_retry_after=max_retry_after,
                           source=source, credentials_file=credentials_file, max_rpm=max_rpm,
                           display=display, with_stats=with_stats, pack=True)
        # Nothing is written before the crawl has fully succeeded; the store swaps atomically.
        guard.check_pull(result.snapshot)
        display.phase(f"writing the snapshot to {target} "
                      f"({_count(result.snapshot.size(), 'entity', 'entities')})")
        save_snapshot(result.snapshot, where, with_stats=with_stats)
    finally:
        display.close()
    result.elapsed = time.perf_counter() - started
    if not quiet:
        info(f"{summary_line(result)}; wrote {target}")
