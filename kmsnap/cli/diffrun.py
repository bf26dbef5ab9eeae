"""What ``kmsnap diff`` does, without typer: ``kmsnap.cli.diff`` declares the command's options,
and ``kmsnap.cli``'s fast path calls ``run_diff`` directly for a plain ``diff OLD NEW`` (typer
and the lint section's modules are a third of a small diff's start-up; they are imported only
when the command line or kmsnap.yaml asks for what they do). The checks of the format, kinds
and ``--max-chars`` and the output are shared with ``check``, ``lint`` and ``stale``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from kmsnap.cli._common import emit, stdout_color, warn
from kmsnap.cli.environment import current
from kmsnap.diff.engine import ChangeSet, normalize_kinds
from kmsnap.errors import ExitStatus, UsageError
from kmsnap.render.changes import FORMATS, render, render_markdown
from kmsnap.render.markdown import GITHUB_COMMENT_LIMIT

if TYPE_CHECKING:
    from kmsnap.compare import Rules
    from kmsnap.config import Config

__all__ = [
    "MIN_MAX_CHARS",
    "STEP_SUMMARY_ENV",
    "check_format",
    "check_kinds",
    "check_max_chars",
    "kind_option",
    "output",
    "rules_of",
    "run_diff",
]

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
MIN_MAX_CHARS = 1000


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise UsageError(f"--format: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return fmt


def check_kinds(kinds: Sequence[str] | None) -> set[str] | None:
    """The singular kinds asked for; unknown names are checked against the snapshots later."""
    if not kinds:
        return None
    return normalize_kinds(k.strip() for k in kinds)


def check_max_chars(max_chars: int | None, fmt: str) -> int:
    """The markdown size limit: ``--max-chars``, else GitHub's comment limit."""
    if max_chars is None:
        return GITHUB_COMMENT_LIMIT
    if fmt not in ("markdown", "github"):
        raise UsageError(
            f"--max-chars: applies to the markdown format (and github's step summary), "
            f"not to {fmt}"
        )
    if max_chars < MIN_MAX_CHARS:
        raise UsageError(f"--max-chars: {max_chars} is too small; use at least {MIN_MAX_CHARS}")
    return max_chars


def output(
    cs: ChangeSet, fmt: str, *, max_chars: int = GITHUB_COMMENT_LIMIT, see_all: str | None = None
) -> None:
    if fmt == "markdown":
        emit(render_markdown(cs, limit=max_chars, see_all=see_all))
    else:
        emit(render(cs, fmt, color=fmt == "text" and stdout_color()))
    env = current()
    summary = env.get(STEP_SUMMARY_ENV)
    if fmt == "github" and summary:
        try:
            with open(env.path(summary), "a", encoding="utf-8") as handle:
                handle.write(render_markdown(cs, limit=max_chars, see_all=see_all) + "\n")
        except OSError as exc:
            warn(f"cannot append the report to ${STEP_SUMMARY_ENV} ({summary}): {exc.strerror}")


def rules_of(config: Config) -> Rules:
    from kmsnap.compare import Rules

    return Rules.from_config(config)


@contextmanager
def kind_option() -> Iterator[None]:
    """An unknown ``--kind`` is a usage error that names the option."""
    from kmsnap.compare import UnknownKindError

    try:
        yield
    except UnknownKindError as exc:
        raise UsageError(f"--kind: {exc}") from None


def run_diff(
    old: str,
    new: str,
    *,
    fmt: str = "text",
    kind: Sequence[str] | None = None,
    with_stats: bool = False,
    exit_code: bool = False,
    max_chars: int | None = None,
    config_file: str | None = None,
) -> int:
    """``kmsnap diff OLD NEW``: print the change set; the exit status (2 with ``exit_code``
    when the snapshots differ, else 0). Errors raise ``KmsnapError``."""
    from kmsnap.compare import compare_sources
    from kmsnap.config import load_config
    from kmsnap.git.source import open_source
    from kmsnap.lint.hidden import soften_hidden_removals

    env = current()
    fmt = check_format(fmt)
    limit = check_max_chars(max_chars, fmt)
    kinds = check_kinds(kind)
    config_path = env.path(Path(config_file)) if config_file is not None else None
    config = load_config(cwd=env.cwd, path=config_path)
    with kind_option():
        cs = compare_sources(
            open_source(old, cwd=env.cwd),
            open_source(new, cwd=env.cwd),
            rules=rules_of(config),
            kinds=kinds,
            with_stats=with_stats,
        )
    cs = soften_hidden_removals(cs, config.hide_before_remove_days, new, cwd=env.cwd)
    governance = ""  # kmsnap.yaml's lint: findings, in markdown only
    if fmt == "markdown" and "lint" in config.lines:
        from kmsnap.lint.governance import review_section

        governance = review_section(old, new, config, fmt, cwd=env.cwd, limit=limit)
    shown, section = cs, ""  # kmsnap.yaml's accept: its own section
    if config.accept:
        from kmsnap.lint.accept import accept_changes

        accepted = accept_changes(cs, config.accept, fmt, limit)
        shown, section = accepted.shown, accepted.section
    output(shown, fmt, max_chars=limit - len(section) - len(governance))
    emit(section + governance)
    return int(ExitStatus.CHANGES) if exit_code and cs.changes else int(ExitStatus.OK)
