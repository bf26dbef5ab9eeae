"""The `kmsnap init` command: write kmsnap.yaml and the GitHub Actions workflows, say what next."""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path
from typing import Any

import typer

from kmsnap.cli._common import warn
from kmsnap.cli.environment import current
from kmsnap.cli.typerapp import app
from kmsnap.errors import UsageError


@app.command()
def init(
    dir_: str = typer.Option(
        ".",
        "--dir",
        metavar="DIR",
        help="The repository to set up.",
        show_default="the current directory",
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite files that already exist."),
    direct: bool = typer.Option(
        False,
        "--direct",
        help="Commit snapshot changes straight to the default branch instead of opening "
        "a pull request.",
    ),
    fail_on: str | None = typer.Option(
        None,
        "--fail-on",
        metavar="breaking|warning|any",
        help="Which drift fails the drift workflow (default: fail_on from kmsnap.yaml, or any).",
    ),
    snapshot_dir: str | None = typer.Option(
        None,
        "--snapshot-dir",
        metavar="DIR",
        help="Where the snapshot lives (default: snapshot_dir from kmsnap.yaml, or snapshots).",
    ),
    install: str | None = typer.Option(
        None,
        "--install",
        metavar="SPEC",
        help="How the workflows install kmsnap: any pip requirement (kmsnap==X, "
        "'kmsnap @ git+https://...@TAG', or a path starting with ./); kept in kmsnap.yaml "
        "(default: install from kmsnap.yaml, or this version of kmsnap from PyPI).",
    ),
    action: str | None = typer.Option(
        None,
        "--action",
        metavar="OWNER/REPO@REF",
        help="Install kmsnap in the workflows with kmsnap's own GitHub Action at this ref "
        "instead of pip; kept in kmsnap.yaml.",
    ),
    git_driver: bool = typer.Option(
        False,
        "--git-driver",
        help="Also set up the git diff driver so `git diff` and `git log -p` show catalog "
        "changes; files already there are kept (set up a second clone this way).",
    ),
) -> None:
    """Set up a repository: write kmsnap.yaml and GitHub Actions workflows.

    Writes kmsnap.yaml (every setting, commented) and three workflows:
    a daily snapshot that opens one pull request when the catalog changed
    (or commits straight to the default branch with --direct), a review
    comment with the diff on pull requests touching the snapshot, and a
    daily drift check. Existing files are kept unless --force.

    Example: kmsnap init --fail-on breaking
    """
    # Imported here: --help and --version load every command module, and need no config.
    from kmsnap.config import load_config, resolve_settings
    from kmsnap.scaffold import init_project

    env = current()
    shown = Path(dir_)
    directory = env.path(shown)  # relative to the environment's cwd; messages name it as given
    if not directory.is_dir():
        raise UsageError(f"--dir {shown}: no such directory")
    # Before writing anything: a flag that cannot be honoured should leave no files behind.
    setup_git_driver = _git_driver() if git_driver else None
    # With --force, a re-run picks up the snapshot_dir and fail_on the user put in kmsnap.yaml.
    config = load_config(cwd=directory)
    settings = resolve_settings(
        config,
        {"fail_on": fail_on, "snapshot_dir": snapshot_dir},
        environ=env.environ,
    )
    # So does how the workflows install kmsnap: a flag replaces it, else kmsnap.yaml keeps it.
    if install is None and action is None:
        install, action = config.values.get("install"), config.values.get("action")
    written = init_project(
        directory,
        force=force,
        direct=direct,
        fail_on=settings.fail_on,
        snapshot_dir=settings.snapshot_dir,
        keep_existing=git_driver,
        install=install,
        action=action,
    )
    notes: list[str] = []
    if setup_git_driver is not None:
        notes = [str(note) for note in setup_git_driver(directory, settings.snapshot_dir)]
    _report(
        directory,
        written,
        direct,
        settings.fail_on,
        settings.snapshot_dir,
        notes,
        _install_step(install, action),
    )
    if not (directory / ".git").exists():
        warn(
            f"{shown} is not the root of a git repository: GitHub only runs workflows "
            "from .github/workflows at the root"
        )


def _git_driver() -> Any:
    # Imported late: the git driver is optional and lives in its own module.
    try:
        return importlib.import_module("kmsnap.git.driver").setup_git_driver
    except (ImportError, AttributeError):
        raise UsageError("--git-driver is not available in this version of kmsnap") from None


def _report(
    directory: Path,
    written: list[Path],
    direct: bool,
    fail_on: str,
    snapshot_dir: str,
    notes: list[str],
    install_step: str,
) -> None:
    from kmsnap.scaffold import DRIFT_WORKFLOW, REVIEW_WORKFLOW, SNAPSHOT_WORKFLOW

    what = {
        SNAPSHOT_WORKFLOW: "daily pull; "
        + ("commits to the default branch" if direct else "opens a pull request")
        + " when the catalog changed",
        REVIEW_WORKFLOW: "comments the catalog diff (with the base branch's kmsnap.yaml) on "
        f"pull requests touching {snapshot_dir}/ or kmsnap.yaml",
        DRIFT_WORKFLOW: f"daily check; fails on drift at '{fail_on}' or above",
    }
    if not written:
        _echo("All files are already in place; nothing written.")
    rels = [_relative(path, directory) for path in written]
    width = max((len(str(rel)) for rel in rels), default=0)
    if written:
        _echo("Wrote:")
    for path, rel in zip(written, rels, strict=True):
        described = what.get(path.relative_to(directory))
        _echo(f"  {str(rel):<{width}}  ({described})" if described else f"  {rel}")
    for note in notes:
        _echo(note)
    steps = [
        "Add the repository secret KISSMETRICS_TOKEN (Settings > Secrets and variables > "
        "Actions, or: gh secret set KISSMETRICS_TOKEN).",
    ]
    if not direct:
        steps.append(
            "Let workflows open pull requests: Settings > Actions > General > "
            '"Allow GitHub Actions to create and approve pull requests".'
        )
    steps += [
        install_step,
        f"Take the first snapshot: KISSMETRICS_TOKEN=... kmsnap pull --out {snapshot_dir}",
        f"Commit: git add kmsnap.yaml .github/workflows {snapshot_dir} && "
        'git commit -m "Track the Kissmetrics catalog with kmsnap" && git push',
    ]
    _echo("\nNext:")
    for number, step in enumerate(steps, 1):
        _echo(f"  {number}. {step}")


def _install_step(install: str | None, action: str | None) -> str:
    """How the workflows will get kmsnap, and how to change it."""
    from kmsnap.scaffold import default_install

    if action is not None:
        how = f"with the kmsnap action {action} (action: in kmsnap.yaml)"
        pin = "" if re.search(r"@[0-9a-f]{40}$", action) else " A commit SHA after @ pins it."
    elif install is not None:
        how = f"with pip install {shlex.quote(install)} (install: in kmsnap.yaml)"
        pin = ""
    else:
        how = f"with pip install {default_install()} from PyPI, this version"
        pin = ""
    return (
        f"The workflows install kmsnap {how}.{pin} To change it: kmsnap init --force "
        "--install SPEC (a pip requirement, e.g. 'kmsnap @ git+https://github.com/OWNER/"
        "kmsnap@TAG') or --action OWNER/kmsnap@REF; kmsnap.yaml keeps it."
    )


def _echo(text: str) -> None:
    """One line on the environment's stdout (as ``typer.echo`` did on the process's)."""
    current().write(text + "\n")


def _relative(path: Path, directory: Path) -> Path:
    try:
        return path.resolve().relative_to(current().cwd.resolve())
    except ValueError:
        return path
