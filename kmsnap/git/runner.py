"""The one way kmsnap runs git, with one environment policy.

Always an argument list (never a shell), stdin closed unless something is fed to it, and an
environment that never prompts for credentials, never pages, never takes optional locks (they
would fight a concurrent ``git commit``) and never hands diffs to an external program.

A repository the user named is found as git finds it (``GIT_DIR`` and friends are honoured);
one kmsnap made itself (``own_repo=True``: the demo's) ignores them, so running inside a git
hook, where ``GIT_DIR`` points at the hook's repository, still touches only kmsnap's own.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from kmsnap.errors import GitError

__all__ = ["NOT_INSTALLED", "first_line", "git_env", "git_output", "run_git", "start_git"]

NOT_INSTALLED = "git is not installed (or not on PATH)"
# Variables that point git at another repository than the one in ``cwd``.
_REPOSITORY_VARIABLES = (
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
    "GIT_CEILING_DIRECTORIES",
)


def git_env(*, own_repo: bool = False) -> dict[str, str]:
    """The environment git runs in (see the module docstring)."""
    env = dict(os.environ)
    env["GIT_OPTIONAL_LOCKS"] = "0"
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_PAGER"] = "cat"
    env.pop("GIT_EXTERNAL_DIFF", None)
    if own_repo:
        for name in _REPOSITORY_VARIABLES:
            env.pop(name, None)
    return env


def first_line(data: bytes) -> str:
    """The first line of git's output (its error message), ``""`` when there is none."""
    text = data.decode("utf-8", "replace").strip()
    return text.splitlines()[0] if text else ""


def run_git(
    cwd: Path,
    args: Sequence[str],
    *,
    input: bytes | None = None,
    own_repo: bool = False,
    missing: str = NOT_INSTALLED,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``git ARGS`` in ``cwd`` to completion, output captured; any exit status.

    GitError (``missing`` as its message) when there is no git to run.
    """
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=git_env(own_repo=own_repo),
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            check=False,
        )
    except FileNotFoundError:
        raise GitError(missing) from None
    except NotADirectoryError:
        raise GitError(f"not a directory: {cwd}") from None


def start_git(cwd: Path, args: Sequence[str]) -> subprocess.Popen[bytes]:
    """Start a long-running ``git ARGS`` in ``cwd`` talking through pipes (stderr dropped)."""
    try:
        return subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            env=git_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise GitError(NOT_INSTALLED) from None
    except NotADirectoryError:
        raise GitError(f"not a directory: {cwd}") from None


def git_output(repo: Path, args: Sequence[str], *, check: bool = True) -> bytes | None:
    """Run ``git ARGS`` in ``repo``; stdout, or None when it failed and ``check`` is false."""
    proc = run_git(repo, args)
    if proc.returncode != 0:
        if not check:
            return None
        raise GitError(f"git {args[0]} failed: {first_line(proc.stderr) or 'no message'}")
    return proc.stdout
