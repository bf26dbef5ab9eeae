"""Untrusted snapshot directories (a pull request's files): every hostile file is one line
naming it and exit 1, refused before it is read when its size says so; never a hang, a crash
or a wrong "no changes"."""

from __future__ import annotations

import io
import json
import os
import resource
import shutil
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import yaml

from kmsnap.cli import run
from kmsnap.errors import SnapshotError
from kmsnap.model import Snapshot
from kmsnap.snapshot import fastread
from kmsnap.snapshot.store import load_pair, load_snapshot, save_snapshot
from kmsnap.snapshot.strict import safe_load

FIXTURE = Path(__file__).parent / "fixtures" / "snapshot-small"
EVENTS = "acme-corp-51cc9c30/my-saas-product-e7063aa0/events.yaml"
OTHER_EVENTS = "yes-7d1f2a10/mobile-app-1-3b9e0c44/events.yaml"


def _copy(tmp_path: Path, name: str) -> Path:
    out = tmp_path / name
    shutil.copytree(FIXTURE, out)
    return out


def _diff(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = run(["diff", *args])
    return code, out.getvalue(), err.getvalue()


def _one_line_error(err: str, *words: str) -> None:
    assert err.count("\n") == 1, err
    assert "internal error" not in err and "Traceback" not in err
    for word in words:
        assert word in err, (word, err)


@pytest.mark.parametrize(
    ("tail", "words"),
    [(b"x\x00y\n", ["events.yaml:", "U+0000"]), (b"\xff\n", ["events.yaml:", "UTF-8"])],
)
def test_a_nul_or_non_utf8_byte_is_one_line_naming_file_and_line(
    tmp_path: Path, tail: bytes, words: list[str]
) -> None:
    old, new = _copy(tmp_path, "a"), _copy(tmp_path, "b")
    path = new / EVENTS
    lines = path.read_bytes().count(b"\n")
    path.write_bytes(path.read_bytes() + tail)
    code, _out, err = _diff(str(old), str(new), "--format", "json")
    assert code == 1
    _one_line_error(err, *words, f"{EVENTS}:{lines + 1}")


def test_duplicate_keys_are_refused_by_both_readers(tmp_path: Path) -> None:
    text = '- id: "e1"\n  name: "a"\n  name: "b"\n'
    assert yaml.safe_load(text) == [{"id": "e1", "name": "b"}]  # what PyYAML alone does
    assert fastread.fast_load(text) is None
    with pytest.raises(SnapshotError, match="duplicate key 'name'") as info:
        safe_load(text.encode(), "x/events.yaml")
    assert info.value.line == 3
    assert fastread.fast_load('id: "a"\nname: "x"\nname: "y"\n') is None
    with pytest.raises(SnapshotError, match="duplicate key 'b'"):
        safe_load(b'- id: "e1"\n  c: {"b": 1, "b": 2}\n', "x/events.yaml")
    old, new = _copy(tmp_path, "a"), _copy(tmp_path, "b")
    data = (new / EVENTS).read_text()
    data = data.replace('  name: "line one', '  name: "dup"\n  name: "line one')
    (new / EVENTS).write_text(data)
    code, _out, err = _diff(str(old), str(new))
    assert code == 1
    _one_line_error(err, EVENTS, "duplicate key 'name'")


def _first_event_block(path: Path) -> str:
    text = path.read_text()
    return text[: text.index("\n- ", 1) + 1]


def test_an_id_in_two_files_is_refused_by_diff_even_of_a_tree_with_itself(
    tmp_path: Path,
) -> None:
    tree = _copy(tmp_path, "a")
    block = _first_event_block(tree / EVENTS)
    other = tree / OTHER_EVENTS
    assert other.read_text() == "[]\n"  # an empty kind: the block becomes its only entry
    other.write_text(block)
    with pytest.raises(SnapshotError, match="appears twice"):
        load_snapshot(tree)
    for old in (_copy(tmp_path, "clean"), tree):
        code, _out, err = _diff(str(old), str(tree))
        assert code == 1
        _one_line_error(err, "appears twice")
    with pytest.raises(SnapshotError, match="appears twice"):
        load_pair(tree, tree)


def test_an_id_twice_in_the_common_part_of_a_changed_file_is_refused(tmp_path: Path) -> None:
    snap = Snapshot(api="https://api.kissmetrics.com/core")
    for i in range(6):
        snap.add("event", {"id": f"e{i}", "name": f"n{i}"})
    save_snapshot(snap, tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    rel = "_unassigned/events.yaml"
    for side in ("a", "b"):
        path = tmp_path / side / rel
        text = path.read_text()
        # e3 twice in the part both sides share; e5 differs between them.
        text = text.replace('- id: "e4"', '- id: "e3"\n  name: "n3"\n- id: "e4"')
        if side == "b":
            text = text.replace('"n5"', '"renamed"')
        path.write_text(text)
    with pytest.raises(SnapshotError, match="'e3' appears twice"):
        load_pair(tmp_path / "a", tmp_path / "b")


def test_a_lone_surrogate_from_the_api_is_refused_at_save_naming_entity_and_field(
    tmp_path: Path,
) -> None:
    snap = Snapshot(api="https://api.kissmetrics.com/core")
    snap.add("event", {"id": "e1", "name": "ok \\ud800 is text"})  # a backslash: fine
    snap.add("event", {"id": "e2", "name": "x\ud800"})
    save_snapshot(Snapshot(api="https://api.kissmetrics.com/core"), tmp_path / "s")
    before = sorted((p.name, p.read_bytes()) for p in (tmp_path / "s").rglob("*"))
    with pytest.raises(SnapshotError) as info:
        save_snapshot(snap, tmp_path / "s")
    assert "'e2'" in str(info.value) and "'name'" in str(info.value)
    assert "surrogate" in str(info.value)
    assert sorted((p.name, p.read_bytes()) for p in (tmp_path / "s").rglob("*")) == before


def test_a_lone_surrogate_in_a_file_is_refused_by_every_reader_as_file_and_line(
    tmp_path: Path,
) -> None:
    text = 'id: "a"\nname: "x\\ud800"\n'
    assert fastread.fast_load(text) is None  # deferred
    assert yaml.safe_load(text)["name"] == "x\ud800"  # PyYAML alone gives a lone surrogate
    with pytest.raises(SnapshotError, match="surrogate") as info:
        safe_load(text.encode(), "f.yaml")
    assert info.value.line == 2
    with pytest.raises(SnapshotError, match="surrogate"):
        safe_load(b'- id: "\\ud83d\\ude00"\n', "f.yaml")  # a pair is two to PyYAML
    old, new = _copy(tmp_path, "a"), _copy(tmp_path, "b")
    path = new / EVENTS
    path.write_text(path.read_text().replace('"line one\\nline two"', '"x\\ud800"'))
    code, _out, err = _diff(str(old), str(new), "--format", "json")
    assert code == 1
    _one_line_error(err, f"{EVENTS}:", "surrogate")


@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
def test_only_regular_files_are_read(tmp_path: Path, kind: str) -> None:
    old, new = _copy(tmp_path, "a"), _copy(tmp_path, "b")
    path = new / EVENTS
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    else:
        os.symlink("/dev/zero", path)  # the symlink is refused before anything is opened
    proc = subprocess.run(  # a subprocess with a timeout: a hang fails, not blocks, the test
        [sys.executable, "-m", "kmsnap", "diff", str(old), str(new)],
        capture_output=True, text=True, timeout=60, env=_env(),
    )
    assert proc.returncode == 1
    _one_line_error(proc.stderr, EVENTS)
    if kind != "device":
        assert "only regular files" in proc.stderr


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("KMSNAP_", "KISSMETRICS_"))}


def test_sparse_files_too_big_together_are_refused_before_any_is_read(tmp_path: Path) -> None:
    old, new = _copy(tmp_path, "a"), _copy(tmp_path, "b")
    for i in range(40):  # 40 x 60 MB: each under the per-file cap, 2.4 GB together
        directory = new / "_other"
        with open(directory / f"kind{i:02d}.yaml", "wb") as handle:
            handle.truncate(60 * 1000 * 1000)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run(
        [sys.executable, "-m", "kmsnap", "diff", str(old), str(new)],
        capture_output=True, text=True, timeout=120, env=_env(),
    )
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert proc.returncode == 1
    _one_line_error(proc.stderr, "snapshot larger than", str(new))
    # Refused from the sizes alone: far below even one file's 60 MB (an earlier child may
    # have peaked higher, in which case this says nothing more than that one).
    assert peak_kib < 150 * 1024 or peak_kib == before, peak_kib


def test_one_oversized_sparse_file_is_refused_from_its_size(tmp_path: Path) -> None:
    old, new = _copy(tmp_path, "a"), _copy(tmp_path, "b")
    with open(new / EVENTS, "r+b") as handle:
        handle.truncate(100 * 1024 * 1024)
    code, _out, err = _diff(str(old), str(new))
    assert code == 1
    _one_line_error(err, EVENTS, "larger than")


def _git(repo: Path, *args: str) -> str:
    from test_gitrev import git

    return git(repo, *args)


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    shutil.copytree(FIXTURE, repo / "snapshots")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "first")
    return repo


@pytest.mark.parametrize("what", ["symlink", "submodule"])
def test_a_symlink_or_submodule_in_a_git_tree_is_refused_by_diff_and_a_warning_in_log(
    repo: Path, what: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if what == "symlink":  # its blob is the target's name, never the file it points at
        os.symlink("/etc/passwd", repo / "snapshots" / "evil.yaml")
        _git(repo, "add", ".")
        problem = "symbolic link"
    else:
        head = _git(repo, "rev-parse", "HEAD").strip()
        _git(repo, "update-index", "--add", "--cacheinfo", f"160000,{head},snapshots/sub")
        problem = "submodule"
    _git(repo, "commit", "-q", "-m", "second")
    (repo / "snapshots" / EVENTS).write_text("[]\n")
    _git(repo, "add", f"snapshots/{EVENTS}")  # not -a: that would drop the gitlink
    _git(repo, "commit", "-q", "-m", "third")
    monkeypatch.chdir(repo)
    code, _out, err = _diff("HEAD~2:snapshots", "HEAD:snapshots")
    assert code == 1
    _one_line_error(err, problem)
    capsys.readouterr()
    assert run(["log", "--no-cache", "--all", "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and problem in captured.err, captured.err
    assert "snapshots/" in captured.err and "Traceback" not in captured.err
    entries = json.loads(captured.out)
    assert [e["subject"] for e in entries] == ["third", "second", "first"]
    # The walk went on past the bad commit: the third one's removals are there.
    assert {c["change"] for c in entries[0]["changes"]} == {"removed"}


@pytest.mark.parametrize("kind", ["fifo", "huge"])
def test_a_token_file_that_is_a_fifo_or_huge_is_one_line_not_a_hang(
    tmp_path: Path, kind: str
) -> None:
    token = tmp_path / "token"
    if kind == "fifo":
        os.mkfifo(token)
    else:
        token.write_bytes(b"x" * (1024 * 1024))
        token.chmod(0o600)
    proc = subprocess.run(
        [sys.executable, "-m", "kmsnap", "pull", "--token-file", str(token),
         "--api", "http://127.0.0.1:9/core", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=60, env=_env(),
    )
    assert proc.returncode == 1
    _one_line_error(proc.stderr, str(token))
    assert ("not a regular file" if kind == "fifo" else "larger than") in proc.stderr
    assert not (tmp_path / "out").exists()


def test_the_git_driver_refuses_a_fifo_instead_of_waiting_on_it(tmp_path: Path) -> None:
    fifo = tmp_path / "events.yaml"
    os.mkfifo(fifo)
    proc = subprocess.run(
        [sys.executable, "-m", "kmsnap.gitdriver", "textconv", str(fifo)],
        capture_output=True, text=True, timeout=60, env=_env(),
    )
    assert proc.returncode == 1
    _one_line_error(proc.stderr, str(fifo), "not a regular file")
