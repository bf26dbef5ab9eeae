"""``kmsnap demo`` end to end: a real emulator, a real git repository, the command's output."""

from __future__ import annotations

import re
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from kmsnap.cli import run
from kmsnap.demo.scenario import DEMO_AUTHOR, DemoOptions, DemoStep, run_demo
from kmsnap.errors import GitError, UsageError


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                          check=True).stdout.strip()


def _port(text: str) -> int:
    match = re.search(r"http://127\.0\.0\.1:(\d+)/core", text)
    assert match, text
    return int(match.group(1))


def _refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


@pytest.fixture
def no_git_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh machine: no global or system git configuration, no identity in the env."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "nonexistent"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME",
                 "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(name, raising=False)


def test_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                         no_git_identity: None) -> None:
    repo = tmp_path / "d"
    started = time.perf_counter()
    status = run(["demo", "--dir", str(repo)])
    elapsed = time.perf_counter() - started
    out, err = capsys.readouterr()
    with capsys.disabled():
        print(f"\n[kmsnap demo took {elapsed:.2f} s]")
    assert status == 0, err
    assert err == ""

    # Every kind of change the week of product work made, and the drift check.
    for expected in (
        '+ event "started free trial"', "added", "renamed", "re-created",
        "is_visible: true → false", 'type: "text" → "number"',
        'unit_type: "numeric" → "percent"',
        "Catalog: 3 added, 0 removed, 3 changed, 1 renamed, 1 re-created.",
        "## kmsnap: catalog changes",
        "removed  (breaking)", "Catalog: 0 added, 1 removed", "exit 2",
        "kmsnap diff HEAD~1:snapshots snapshots", "export KISSMETRICS_TOKEN=", "kmsnap init",
    ):
        assert expected in out, expected
    assert "\x1b[" not in out  # not a terminal: no colour

    # Usage counters moved on hundreds of entities, yet only the 8 real changes are lines.
    diff_section = out.split("== 5.")[1].split("== 6.")[0]
    change_lines = [line for line in diff_section.splitlines()
                    if re.match(r"\s+(\+|-|~|-/\+) ", line)]
    assert len(change_lines) == 8, diff_section
    assert "total" not in diff_section and "last_used_at" not in diff_section

    # The repository: two commits by the demo identity touching snapshots/, the comment file.
    assert _git(repo, "rev-list", "--count", "HEAD") == "2"
    assert _git(repo, "log", "--format=%an").splitlines() == [DEMO_AUTHOR, DEMO_AUTHOR]
    assert (repo / "snapshots" / "kmsnap.yaml").is_file()
    assert (repo / "kmsnap-review.md").read_text(encoding="utf-8").startswith("## kmsnap")
    assert _git(repo, "status", "--porcelain", "--", "snapshots") == ""

    assert _refuses(_port(out))  # the emulator is stopped


def test_the_library_reports_each_step_and_the_exact_changes(tmp_path: Path) -> None:
    steps: list[DemoStep] = []
    result = run_demo(DemoOptions(directory=tmp_path / "d", size=300, seed=7), steps.append)

    assert [s.key for s in steps] == [
        "emulator", "first-pull", "edits", "second-pull", "diff", "review", "check"]
    assert result.steps == steps
    assert result.review is not None and result.drift is not None
    assert result.review.summary() == {
        "added": 3, "removed": 0, "changed": 3, "renamed": 1, "recreated": 1}
    by_change = {(c.change, c.kind): c for c in result.review.changes}
    assert by_change[("renamed", "event")].severity == "breaking"
    assert by_change[("recreated", "event")].old_id is not None
    fields = {path: c.severity for c in result.review.changes if c.change == "changed"
              for path in (c.fields or {})}
    assert fields == {"is_visible": "warning", "type": "breaking", "unit_type": "breaking"}
    assert [(c.change, c.kind) for c in result.drift.changes] == [("removed", "event")]
    assert result.check_exit == 2
    assert len(result.commits) == 2
    assert _refuses(int(result.api.rsplit(":", 1)[1].split("/")[0]))


def test_the_emulator_stops_when_a_step_fails(tmp_path: Path) -> None:
    seen: list[str] = []

    def report(step: DemoStep) -> None:
        seen.append(step.lines[0] if step.key == "emulator" else step.key)
        if step.key == "edits":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_demo(DemoOptions(directory=tmp_path / "d"), report)
    assert _refuses(_port(seen[0]))
    assert seen[1:] == ["first-pull", "edits"]


def test_the_default_directory_is_a_new_temporary_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert run(["demo", "--size", "100"]) == 0
    (made,) = tmp_path.glob("kmsnap-demo-*")
    assert _git(made, "rev-list", "--count", "HEAD") == "2"
    assert str(made) in capsys.readouterr().out


def test_a_non_empty_dir_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    assert run(["demo", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "not empty" in err and str(tmp_path) in err
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_a_file_as_dir_and_a_tiny_size_are_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(UsageError, match="not a directory"):
        run_demo(DemoOptions(directory=tmp_path / "f"))
    with pytest.raises(UsageError, match="--size"):
        run_demo(DemoOptions(directory=tmp_path / "d", size=10))
    assert not (tmp_path / "d").exists()  # refused before creating anything


def test_without_git_the_error_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(GitError, match="git is not installed"):
        run_demo(DemoOptions(directory=tmp_path / "d", size=100))


def test_help_shows_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["demo", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Example" in out and "kmsnap demo --dir" in out
    for option in ("--dir", "--size", "--seed"):
        assert option in out
