"""The CLI's injected ``Environment``: commands run with StringIO streams, a dict of variables
and a temporary directory handed to ``run(argv, env=...)``, never patching the process's
streams, variables or directory; where a real variable is set, it is set to show it is not
the one read."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from diff_sample import sample_pair

from kmsnap.cli import Environment, run
from kmsnap.cli.environment import current
from kmsnap.emulator import Emulator
from kmsnap.snapshot.store import load_snapshot, save_snapshot

TOKEN = "demo-token"  # the shared emulator's (conftest)
DEAD_API = "http://127.0.0.1:9/core"  # nothing listens on port 9: a pull there would fail


class Streams:
    """StringIO streams for one Environment, read back as text."""

    def __init__(self) -> None:
        self.stdout = io.StringIO()
        self.stderr = io.StringIO()

    def env(
        self, cwd: Path, environ: dict[str, str] | None = None, *, tty: bool = False
    ) -> Environment:
        return Environment(
            stdin=io.StringIO(),
            stdout=self.stdout,
            stderr=self.stderr,
            environ={} if environ is None else environ,
            cwd=cwd,
            stdout_isatty=tty,
            stderr_isatty=False,
        )

    @property
    def out(self) -> str:
        return self.stdout.getvalue()

    @property
    def err(self) -> str:
        return self.stderr.getvalue()


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A directory with two snapshots, ``old`` and ``new``; not the process's directory."""
    old, new = sample_pair()
    save_snapshot(old, tmp_path / "old")
    save_snapshot(new, tmp_path / "new")
    assert Path.cwd() != tmp_path
    return tmp_path


def test_diff_reads_relative_paths_from_the_injected_cwd_and_writes_to_its_streams(
    work: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    io_ = Streams()
    assert run(["diff", "--format", "json", "old", "new"], env=io_.env(work)) == 0
    data = json.loads(io_.out)
    assert (data["old"], data["new"]) == ("old", "new")  # labels as typed
    assert data["summary"]["renamed"] == 3
    assert io_.err == ""
    assert capfd.readouterr() == ("", "")  # nothing on the process's own streams


def test_an_error_is_one_line_on_the_injected_stderr(
    work: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    io_ = Streams()
    assert run(["diff", "old", "nope"], env=io_.env(work)) == 1
    assert io_.err.count("\n") == 1 and io_.err.startswith("kmsnap: error: ") and "nope" in io_.err
    assert io_.out == ""
    assert capfd.readouterr() == ("", "")


def test_usage_errors_and_the_version_go_to_the_injected_streams(
    work: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    io_ = Streams()
    assert run(["--version"], env=io_.env(work)) == 0
    assert io_.out.startswith("kmsnap ") and io_.out.endswith("\n")
    assert run(["diff", "--no-such-option"], env=io_.env(work)) == 1
    assert "--no-such-option" in io_.err
    assert capfd.readouterr() == ("", "")


def test_colour_on_stdout_follows_the_injected_tty_and_no_color(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")  # the process's: must not be the one read
    coloured = Streams()
    assert run(["diff", "old", "new"], env=coloured.env(work, tty=True)) == 0
    assert "\x1b[" in coloured.out

    monkeypatch.delenv("NO_COLOR")
    for environ in ({"NO_COLOR": ""}, {"NO_COLOR": "1"}):  # set at all: no colour
        plain = Streams()
        assert run(["diff", "old", "new"], env=plain.env(work, environ, tty=True)) == 0
        assert "\x1b[" not in plain.out and "re-created" in plain.out
    piped = Streams()
    assert run(["diff", "old", "new"], env=piped.env(work, tty=False)) == 0
    assert "\x1b[" not in piped.out


def test_the_colour_rule_and_the_stderr_console_read_the_injected_environ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Environment(stdout=io.StringIO(), environ={}, cwd=tmp_path).stdout_color is False
    assert Environment(environ={}, cwd=tmp_path, stdout_isatty=True).stdout_color is True
    assert Environment(environ={}, cwd=tmp_path, stdout_isatty=True, color=False).stdout_color \
        is False
    # rich decides the stderr console from the injected variables, not the process's.
    monkeypatch.setenv("FORCE_COLOR", "1")
    plain = Environment(stderr=io.StringIO(), environ={}, cwd=tmp_path)
    assert plain.err_console.is_terminal is False
    monkeypatch.delenv("FORCE_COLOR")
    forced = Environment(stderr=io.StringIO(), environ={"FORCE_COLOR": "1"}, cwd=tmp_path)
    assert forced.err_console.is_terminal is True
    dumb = Environment(stderr=io.StringIO(), environ={"FORCE_COLOR": "1", "TERM": "dumb"},
                       cwd=tmp_path)
    assert dumb.err_console.color_system is None
    assert forced.err_console.color_system is not None


def test_the_step_summary_goes_where_the_injected_environ_says(
    work: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoy = tmp_path_factory.mktemp("real") / "summary.md"
    decoy.write_text("", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(decoy))
    io_ = Streams()
    # Relative: to the injected cwd, like every other path.
    env = io_.env(work, {"GITHUB_STEP_SUMMARY": "summary.md"})
    assert run(["diff", "--format", "github", "old", "new"], env=env) == 0
    assert io_.out.startswith("::")
    assert (work / "summary.md").read_text(encoding="utf-8").startswith(
        "## kmsnap: catalog changes"
    )
    assert decoy.read_text(encoding="utf-8") == ""


def test_pull_takes_the_token_api_and_snapshot_dir_from_the_injected_environ(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The process's variables all point elsewhere: any of them read would fail the pull or
    # put the snapshot in the wrong place.
    monkeypatch.setenv("KISSMETRICS_TOKEN", "wrong-token")
    monkeypatch.setenv("KMSNAP_API", DEAD_API)
    monkeypatch.setenv("KMSNAP_SNAPSHOT_DIR", str(tmp_path / "real-env"))
    io_ = Streams()
    environ = {
        "KISSMETRICS_TOKEN": TOKEN,
        "KMSNAP_API": emulator.base_url,
        "KMSNAP_SNAPSHOT_DIR": "catalog",
    }
    assert run(["pull"], env=io_.env(tmp_path, environ)) == 0, io_.err
    assert load_snapshot(tmp_path / "catalog").size() == emulator.catalog.size()
    assert not (tmp_path / "real-env").exists()
    assert io_.err.startswith("pulled ") and io_.err.rstrip().endswith("; wrote catalog")
    assert io_.out == ""


def test_no_token_in_the_injected_environ_is_an_error_even_with_one_in_the_process(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KISSMETRICS_TOKEN", TOKEN)
    io_ = Streams()
    args = ["pull", "--api", emulator.base_url, "--out", "snap"]
    assert run(args, env=io_.env(tmp_path)) == 1
    assert "no API token: set KISSMETRICS_TOKEN" in io_.err and io_.err.count("\n") == 1
    assert not (tmp_path / "snap").exists()


def test_a_relative_token_file_is_read_from_the_injected_cwd(
    emulator: Emulator, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    token_file.chmod(0o600)
    io_ = Streams()
    args = ["pull", "-q", "--api", emulator.base_url, "--token-file", "token", "--out", "snap"]
    assert run(args, env=io_.env(tmp_path)) == 0, io_.err
    assert (tmp_path / "snap").is_dir() and io_.err == ""


def test_check_reads_its_snapshot_dir_relative_to_the_injected_cwd(
    emulator: Emulator, tmp_path: Path
) -> None:
    environ = {"KISSMETRICS_TOKEN": TOKEN, "KMSNAP_API": emulator.base_url}
    assert run(["pull", "-q", "--out", "snapshots"], env=Streams().env(tmp_path, environ)) == 0
    io_ = Streams()
    assert run(["check", "-q"], env=io_.env(tmp_path, environ)) == 0, io_.err
    assert io_.out.rstrip().endswith("No changes.")
    missing = Streams()
    assert run(["check", "-q", "--snapshot", "gone"], env=missing.env(tmp_path, environ)) == 1
    assert "no snapshot directory 'gone'" in missing.err


def test_init_writes_into_a_dir_relative_to_the_injected_cwd_and_reports_it_so(
    tmp_path: Path,
) -> None:
    (tmp_path / "repo").mkdir()
    io_ = Streams()
    assert run(["init", "--dir", "repo"], env=io_.env(tmp_path)) == 0
    assert (tmp_path / "repo" / "kmsnap.yaml").is_file()
    assert "  repo/kmsnap.yaml" in io_.out.replace("\\", "/")
    assert "repo is not the root of a git repository" in io_.err


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo, check=True, capture_output=True,
    )


def test_rev_path_is_read_from_the_git_repository_of_the_injected_cwd(tmp_path: Path) -> None:
    old, new = sample_pair()
    git(tmp_path, "init", "-q", "-b", "main")
    save_snapshot(old, tmp_path / "snapshots")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "old")
    save_snapshot(new, tmp_path / "snapshots")
    io_ = Streams()
    assert run(["diff", "-f", "json", "HEAD:snapshots", "snapshots"], env=io_.env(tmp_path)) == 0
    assert json.loads(io_.out)["summary"]["recreated"] == 1


def test_git_textconv_writes_to_the_injected_stdout(work: Path) -> None:
    io_ = Streams()
    events = next((work / "old").rglob("events.yaml"))
    assert run(["git-textconv", str(events)], env=io_.env(work)) == 0
    assert io_.out and io_.err == ""


def test_the_environment_is_current_only_while_run_runs(work: Path) -> None:
    io_ = Streams()
    env = io_.env(work)
    assert run(["diff", "old", "nope"], env=env) == 1
    assert current() is not env  # reset after the error, too
    assert current().cwd == Path.cwd()


def test_environ_is_a_read_only_copy_and_paths_join_the_injected_cwd(tmp_path: Path) -> None:
    source = {"KMSNAP_API": "http://x"}
    env = Environment(environ=source, cwd=tmp_path)
    source["KMSNAP_API"] = "changed"
    assert env.get("KMSNAP_API") == "http://x" and env.get("MISSING") == ""
    with pytest.raises(TypeError):
        env.environ["KMSNAP_API"] = "y"  # type: ignore[index]
    assert env.path("snap") == tmp_path / "snap"
    assert env.path(tmp_path / "abs") == tmp_path / "abs"
    # Where the process's directory is the injected one, a relative path stays as typed.
    assert Environment(environ={}, cwd=Path.cwd()).path("snap") == Path("snap")


def test_from_process_is_the_process_as_of_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KMSNAP_API", "http://from-process")
    env = Environment.from_process()
    assert env.get("KMSNAP_API") == "http://from-process"
    assert env.cwd == Path.cwd()
    assert env.stdout is sys.stdout and env.stderr is sys.stderr
