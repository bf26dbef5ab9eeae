"""The git diff driver end to end: git diff and git log -p on snapshot files in a real repo."""

from __future__ import annotations

import sys
from pathlib import Path

from test_gitrev import git

from kmsnap.git.driver import file_kind, manual_recipe, setup_git_driver, textconv
from kmsnap.model import Snapshot
from kmsnap.snapshot.store import save_snapshot


def snap(name: str, visible: bool = True) -> Snapshot:
    s = Snapshot(api="https://api.example.test/core")
    s.add("account", {"id": "a1", "name": "Acme"})
    s.add("product", {"id": "p1", "account_id": "a1", "name": "Web"})
    s.add("event", {"id": "e1", "product_id": "p1", "name": name, "is_visible": visible})
    s.add("event", {"id": "e2", "product_id": "p1", "name": "Checkout", "is_visible": True})
    return s


def test_file_kind() -> None:
    assert file_kind("snapshots/acme/web/events.yaml") == ("event", False)
    assert file_kind("/tmp/git-blob-x/events.yaml") == ("event", False)
    assert file_kind("/tmp/Ab12cD_metrics.yaml") == ("metric", False)
    assert file_kind("acme/account.yaml") == ("account", False)
    assert file_kind("acme/web/events.stats.yaml") == ("event", True)
    assert file_kind("snapshots/kmsnap.yaml") == (None, False)


def test_textconv_is_one_block_per_entity_and_survives_garbage() -> None:
    data = b'- id: "e2"\n  name: "B"\n  contact: {"phone": "1"}\n- id: "e1"\n  name: "A\\n"\n'
    out = textconv(data, "events.yaml").decode()
    assert out.splitlines()[2:] == [
        'event "A\\n" [e1]',
        "",
        'event "B" [e2]',
        '    contact.phone: "1"',
    ]
    assert textconv(b"- id: [broken\n", "events.yaml") == b"- id: [broken\n"
    assert textconv(b"&a [*a]\n", "events.yaml") == b"&a [*a]\n"  # no alias expansion


def test_git_diff_and_log_show_the_readable_summary(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    save_snapshot(snap("Signed Up"), repo / "snapshots")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "one")
    notes = setup_git_driver(repo, "snapshots")
    assert any("snapshots/**/*.yaml diff=kmsnap" in n for n in notes)
    again = setup_git_driver(repo, "snapshots")
    assert all("already" in n for n in again)
    assert (repo / ".gitattributes").read_text().count("diff=kmsnap") == 1
    assert sys.executable in git(repo, "config", "--local", "diff.kmsnap.textconv")

    save_snapshot(snap("Sign Up", visible=False), repo / "snapshots")
    diff = git(repo, "diff")
    assert "kmsnap diff a/snapshots/acme-a1/web-p1/events.yaml" in diff
    assert '~ event "Signed Up" → "Sign Up" [e1] renamed (breaking)' in diff
    assert "is_visible: true → false" in diff
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "two")
    log = git(repo, "log", "-p", "-1")
    assert '-event "Signed Up" [e1]' in log and '+event "Sign Up" [e1]' in log
    assert "-    is_visible: true" in log and "+    is_visible: false" in log
    assert "@@ event" in log or '"Sign' in log
    ext = git(repo, "log", "-p", "--ext-diff", "-1")
    assert "renamed (breaking)" in ext
    raw = git(repo, "log", "-p", "--no-textconv", "-1")
    assert '+  name: "Sign Up"' in raw


def test_manual_recipe_names_every_step() -> None:
    text = manual_recipe()
    assert "snapshots/**/*.yaml diff=kmsnap" in text
    for key in ("textconv", "cachetextconv", "xfuncname", "command"):
        assert f"git config diff.kmsnap.{key}" in text
