"""GitSource and open_source against real git repositories built in tmp_path."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from kmsnap.errors import GitError, SnapshotError
from kmsnap.git.source import GitBlobReader, GitSource, open_source, resolve_tree, split_spec

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Ada",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00+00:00",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00+00:00",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str, date: str | None = None) -> str:
    """Run git in ``repo`` as Ada, at a fixed date (``date``: another one, ISO 8601)."""
    env = {**os.environ, **GIT_ENV, "HOME": str(repo.parent)}
    if date is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
    proc = subprocess.run(
        ["git", "-c", "user.name=Ada", "-c", "user.email=ada@example.com", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        check=True,
        text=True,
    )
    return proc.stdout


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    snap = repo / "snapshots"
    (snap / "acme ü").mkdir(parents=True)
    (snap / "kmsnap.yaml").write_text("format: 1\n")
    (snap / "acme ü" / "account.yaml").write_text("id: a1\nname: Acme\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    (snap / "acme ü" / "account.yaml").write_text("id: a1\nname: Acme 2\n")
    (snap / "new file.yaml").write_text("- id: e1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "second")
    return repo


def test_split_spec() -> None:
    assert split_spec("HEAD~1:snapshots") == ("HEAD~1", "snapshots")
    assert split_spec("main@{2024-01-01 10:00}:snap") == ("main@{2024-01-01 10:00}", "snap")
    assert split_spec("HEAD:") == ("HEAD", "")
    assert split_spec("snapshots") is None


def test_git_source_lists_and_reads(repo: Path) -> None:
    old = GitSource(repo, "HEAD~1", "snapshots")
    new = GitSource(repo, "HEAD", "snapshots/")
    assert old.label == "HEAD~1:snapshots"
    old_files, new_files = old.list_files(), new.list_files()
    assert sorted(old_files) == ["acme ü/account.yaml", "kmsnap.yaml"]
    assert sorted(new_files) == ["acme ü/account.yaml", "kmsnap.yaml", "new file.yaml"]
    assert old_files["kmsnap.yaml"] == new_files["kmsnap.yaml"]
    assert old_files["acme ü/account.yaml"] != new_files["acme ü/account.yaml"]
    data = new.read_files(["acme ü/account.yaml", "new file.yaml"])
    assert data == {
        "acme ü/account.yaml": b"id: a1\nname: Acme 2\n",
        "new file.yaml": b"- id: e1\n",
    }
    assert new.sizes()["new file.yaml"] == len(b"- id: e1\n")
    with pytest.raises(GitError, match="no file"):
        new.read_files(["nope.yaml"])


def test_shared_reader_uses_one_process(repo: Path) -> None:
    with GitBlobReader(repo) as reader:
        src = GitSource(repo, "HEAD", "snapshots", reader=reader)
        src.read_files(list(src.list_files()))
        src.read_files(["kmsnap.yaml"])
        assert reader.reads == 4
        proc = reader._proc
        assert proc is not None and proc.poll() is None
    assert proc.poll() is not None


def test_reader_refuses_oversized_blob_and_stays_in_step(repo: Path) -> None:
    files = GitSource(repo, "HEAD", "snapshots").list_files()
    with GitBlobReader(repo, max_bytes=12) as reader:
        with pytest.raises(SnapshotError, match="more than the 12 allowed"):
            reader.read(str(files["acme ü/account.yaml"]), name="acme ü/account.yaml")
        assert reader.read(str(files["new file.yaml"])) == b"- id: e1\n"
        with pytest.raises(GitError, match="not an object id"):
            reader.read("HEAD:snapshots")
        with pytest.raises(GitError, match="missing"):
            reader.read("0" * 40)


def test_open_source_directory(repo: Path) -> None:
    from kmsnap.snapshot import store

    src = open_source("snapshots", cwd=repo)
    assert isinstance(src, store.DirectorySource)
    assert src.label == "snapshots"


def test_open_source_rev_path(repo: Path) -> None:
    src = open_source("HEAD~1:snapshots", cwd=repo)
    assert isinstance(src, GitSource)
    assert src.label == "HEAD~1:snapshots"
    assert "new file.yaml" not in src.list_files()
    # From a subdirectory: PATH is relative to the top, "./" relative to where we are.
    sub = repo / "snapshots" / "acme ü"
    assert "kmsnap.yaml" in open_source("HEAD:snapshots", cwd=sub).list_files()
    assert list(open_source("HEAD:./", cwd=sub).list_files()) == ["account.yaml"]
    assert "account.yaml" in open_source("HEAD:../acme ü", cwd=sub).list_files()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nosuchrev:snapshots", "unknown revision 'nosuchrev'"),
        ("--output=/tmp/x:snapshots", "unknown revision '--output=/tmp/x'"),
        ("-h:snapshots", "unknown revision '-h'"),
        ("HEAD:missing", "no 'missing' at revision 'HEAD'"),
        ("HEAD~1:snapshots/new file.yaml", "no 'snapshots/new file.yaml'"),
        ("HEAD:snapshots/kmsnap.yaml", "is not a directory"),
        ("HEAD:../..", "leaves the repository"),
        ("not-a-path", "not a REV:PATH"),
        (":snapshots", "empty revision"),
    ],
)
def test_open_source_errors(repo: Path, spec: str, message: str) -> None:
    with pytest.raises(GitError, match=message) as info:
        open_source(spec, cwd=repo)
    assert "\n" not in str(info.value)


def test_rev_starting_with_dash_is_never_an_option(repo: Path) -> None:
    out = repo.parent / "pwned"
    with pytest.raises(GitError):
        resolve_tree(repo, f"--output={out}", "snapshots")
    assert not out.exists()


def test_open_source_outside_a_repository(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="not inside a git repository"):
        open_source("HEAD:snapshots", cwd=tmp_path)
