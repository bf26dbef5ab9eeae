"""action.yml, kmsnap's composite action: its shape, and its scripts run with bash."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from diff_sample import sample_pair

from kmsnap.snapshot.store import save_snapshot

REPO = Path(__file__).resolve().parent.parent
ACTION = REPO / "action.yml"


def action() -> dict[str, Any]:
    data = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def step(name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in action()["runs"]["steps"] if s["name"] == name)
    return found


def test_a_composite_action_with_pinned_steps_and_no_expressions_in_scripts() -> None:
    data = action()
    assert data["runs"]["using"] == "composite"
    assert set(data["inputs"]) == {"command", "python-version", "working-directory"}
    assert data["outputs"]["exit-code"]["value"] == "${{ steps.run.outputs.exit-code }}"
    assert data["outputs"]["report"]["value"] == "${{ steps.run.outputs.report }}"
    for item in data["runs"]["steps"]:
        if "uses" in item:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", item["uses"]), item
        if "run" in item:
            assert "${{" not in item["run"], item  # inputs reach the shell through env only
            assert item["shell"] == "bash"
    for line in ACTION.read_text().splitlines():
        if line.strip().startswith("uses: actions/"):
            assert re.search(r"@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), line
    install = step("Install kmsnap from the action's ref")
    assert install["working-directory"] == "${{ runner.temp }}"
    assert '-- "$GITHUB_ACTION_PATH"' in install["run"]


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_scripts_pass_shellcheck() -> None:
    for item in action()["runs"]["steps"]:
        if "run" in item:
            done = subprocess.run(
                ["shellcheck", "-s", "bash", "-"],
                input="#!/bin/bash\nset -e\n" + item["run"],
                capture_output=True, text=True, check=False,
            )
            assert done.returncode == 0, (item["name"], done.stdout)


@pytest.fixture
def job(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "runner").mkdir()
    shims = {
        "kmsnap": f'#!/bin/sh\nexec "{sys.executable}" -m kmsnap "$@"\n',
        # Installing for real needs the network: the stand-in records what it was asked.
        "python": '#!/bin/sh\necho "$@" >> "$PYTHON_LOG"\n',
    }
    for name, text in shims.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "KMSNAP_"))}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env['PATH']}",
        RUNNER_TEMP=str(tmp_path / "runner"),
        GITHUB_OUTPUT=str(tmp_path / "output"),
        GITHUB_ACTION_PATH=str(REPO),
        PYTHON_LOG=str(tmp_path / "python.log"),
    )
    return env


def bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False,
    )


def outputs(env: dict[str, str]) -> dict[str, str]:
    lines = Path(env["GITHUB_OUTPUT"]).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def test_install_runs_outside_the_checkout_once_per_job(
    tmp_path: Path, job: dict[str, str]
) -> None:
    script = step("Install kmsnap from the action's ref")["run"]
    for _ in range(2):
        done = bash(script, tmp_path / "runner", job)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("kmsnap ")
    assert Path(job["PYTHON_LOG"]).read_text() == (
        f"-m pip install --disable-pip-version-check -- {REPO}\n"
    )


def test_run_exposes_the_exit_code_and_the_report(tmp_path: Path, job: dict[str, str]) -> None:
    old, new = sample_pair()
    save_snapshot(old, tmp_path / "old")
    save_snapshot(new, tmp_path / "new")
    script = step("Run kmsnap")["run"]
    # Words, not shell: $(...) and globs reach kmsnap as they are.
    job["KMSNAP_ACTION_COMMAND"] = "diff old new --exit-code --format json"
    done = bash(script, tmp_path, job)
    assert done.returncode == 2
    out = outputs(job)
    assert out["exit-code"] == "2"
    report = Path(out["report"]).read_text()
    assert '"schema_version": 1' in report and report == done.stdout
    Path(job["GITHUB_OUTPUT"]).write_text("")
    job["KMSNAP_ACTION_COMMAND"] = "diff $(touch${IFS}pwned) *"
    done = bash(script, tmp_path, job)
    assert done.returncode == 1 and outputs(job)["exit-code"] == "1"
    assert not (tmp_path / "pwned").exists()
    assert "$(touch${IFS}pwned)" in done.stderr
