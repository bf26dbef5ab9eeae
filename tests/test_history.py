"""kmsnap log against a real git repository with a scripted catalog history."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kmsnap.cli import run
from kmsnap.errors import SnapshotError
from kmsnap.history.view import entity_timeline, filter_entries, render_log, render_timeline
from kmsnap.history.walk import LogQuery, load_history
from kmsnap.model import Snapshot
from kmsnap.snapshot.store import save_snapshot

IDENTITY = {
    "GIT_AUTHOR_NAME": "Ada Lovelace",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada Lovelace",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


class Repo:
    """A git repository in tmp_path with commits at fixed, increasing dates."""

    def __init__(self, path: Path):
        self.path = path
        self.day = 0
        path.mkdir()
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        env = {**os.environ, **IDENTITY, "HOME": str(self.path.parent)}
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"2024-03-{self.day + 1:02d}T12:00:00Z"
        proc = subprocess.run(
            ["git", "-c", "user.name=Ada Lovelace", "-c", "user.email=ada@example.com", *args],
            cwd=self.path,
            env=env,
            capture_output=True,
            check=True,
            text=True,
        )
        return proc.stdout.strip()

    def commit(self, message: str) -> str:
        self.day += 1
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def save(self, snap: Snapshot) -> None:
        save_snapshot(snap, self.path / "snapshots")


def catalog(
    events: dict[str, dict[str, Any]],
    prop_type: str = "string",
    metric_description: str = "Money in",
) -> Snapshot:
    snap = Snapshot(api="https://api.example.test/core")
    snap.add("account", {"id": "a1", "name": "Acme", "status": "active"})
    snap.add("product", {"id": "p1", "account_id": "a1", "name": "Web"})
    for event_id, fields in events.items():
        record = {
            "id": event_id,
            "product_id": "p1",
            "display_name": None,
            "description": "",
            "is_visible": True,
        }
        record.update(fields)
        snap.add("event", record)
    snap.add("property", {"id": "pr1", "product_id": "p1", "name": "plan", "type": prop_type})
    snap.add(
        "metric",
        {"id": "m1", "product_id": "p1", "title": "Revenue", "description": metric_description},
    )
    return snap


@pytest.fixture(scope="module")
def history_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Repo, dict[str, str]]]:
    repo = Repo(tmp_path_factory.mktemp("hist") / "repo")
    shas: dict[str, str] = {}
    events = {"e1": {"name": "Signed Up"}, "e2": {"name": "Checkout"}}
    repo.save(catalog(events))
    shas["c1"] = repo.commit("Initial snapshot")

    events["e3"] = {"name": "Viewed Page"}
    events["e1"] = {"name": "Signed Up", "display_name": "Sign-up"}
    repo.save(catalog(events))
    shas["c2"] = repo.commit("Add Viewed Page")

    events["e1"] = {"name": "Sign Up", "display_name": "Sign-up"}
    repo.save(catalog(events))
    shas["c3"] = repo.commit("Rename Signed Up")

    del events["e2"]
    events["e4"] = {"name": "Checkout"}
    repo.save(catalog(events))
    shas["c4"] = repo.commit("Re-create Checkout")

    repo.git("checkout", "-q", "-b", "side")
    repo.save(catalog(events, prop_type="number"))
    shas["s1"] = repo.commit("Plan becomes a number")
    repo.git("checkout", "-q", "main")
    (repo.path / "README.md").write_text("hello\n")
    shas["c5"] = repo.commit("Docs only")
    repo.day += 1
    repo.git("merge", "-q", "--no-ff", "side", "-m", "Merge side")
    shas["m1"] = repo.git("rev-parse", "HEAD")

    del events["e3"]
    events["e4"] = {"name": "Checkout", "is_visible": False}
    repo.save(catalog(events, prop_type="number"))
    shas["c6"] = repo.commit("Retire Viewed Page")

    repo.save(catalog(events, prop_type="number", metric_description="Money in, net"))
    (events_file,) = (repo.path / "snapshots").glob("*/*/events.yaml")
    events_file.write_text("- id: [unclosed\n")
    shas["c7"] = repo.commit("Hand edit gone wrong")

    repo.save(catalog(events, prop_type="number", metric_description="Money in, net"))
    shas["c7b"] = repo.commit("Still broken? no: fixed")
    yield repo, shas


def _log(repo: Repo, **kwargs: Any) -> list[dict[str, Any]]:
    history = load_history(LogQuery(**kwargs), cwd=repo.path, warn=lambda _m: None)
    return [entry.to_json() for entry in filter_entries(history.entries, include_empty=True)]


def _summary(entries: list[dict[str, Any]]) -> list[tuple[str, list[tuple[str, ...]]]]:
    return [
        (
            entry["subject"],
            [
                (
                    c["change"],
                    c["kind"],
                    c["id"],
                    c["severity"],
                    *([c["old_id"]] if "old_id" in c else []),
                )
                for c in entry["changes"]
            ],
        )
        for entry in entries
    ]


EXPECTED = [
    ("Still broken? no: fixed", []),
    ("Hand edit gone wrong", [("changed", "metric", "m1", "info")]),
    (
        "Retire Viewed Page",
        [("changed", "event", "e4", "warning"), ("removed", "event", "e3", "breaking")],
    ),
    ("Merge side", [("changed", "property", "pr1", "breaking")]),
    ("Re-create Checkout", [("recreated", "event", "e4", "breaking", "e2")]),
    ("Rename Signed Up", [("renamed", "event", "e1", "breaking")]),
    ("Add Viewed Page", [("changed", "event", "e1", "info"), ("added", "event", "e3", "info")]),
    (
        "Initial snapshot",
        [
            ("added", "account", "a1", "info"),
            ("added", "product", "p1", "info"),
            ("added", "event", "e2", "info"),
            ("added", "event", "e1", "info"),
            ("added", "property", "pr1", "info"),
            ("added", "metric", "m1", "info"),
        ],
    ),
]


def test_log_matches_the_scripted_history(history_repo: tuple[Repo, dict[str, str]]) -> None:
    repo, shas = history_repo
    entries = _log(repo, use_cache=False)
    assert _summary(entries) == EXPECTED
    # First parent only: the side branch's own commit is not listed, the merge carries it.
    assert shas["s1"] not in {e["commit"] for e in entries}
    assert entries[3]["commit"] == shas["m1"]
    assert entries[-1]["date"] == "2024-03-02T12:00:00Z" or entries[-1]["date"].startswith(
        "2024-03-02T12:00:00"
    )
    assert entries[-1]["author"] == "Ada Lovelace"
    renamed = entries[5]["changes"][0]
    assert renamed["fields"]["name"] == {"old": "Signed Up", "new": "Sign Up"}


def test_broken_file_warns_and_goes_on(history_repo: tuple[Repo, dict[str, str]]) -> None:
    repo, shas = history_repo
    warnings: list[str] = []
    history = load_history(LogQuery(use_cache=False), cwd=repo.path, warn=warnings.append)
    assert len(warnings) == 1
    assert shas["c7"][:12] in warnings[0]
    assert "snapshots/acme-" in warnings[0] and "/events.yaml" in warnings[0]
    # The fix restores the file exactly: compared with the last good version, nothing changed.
    assert history.entries[0].changes == []
    with pytest.raises(SnapshotError, match=shas["c7"][:12]):
        load_history(LogQuery(use_cache=False, strict=True), cwd=repo.path)


def test_cache_is_used_and_gives_the_same_log(history_repo: tuple[Repo, dict[str, str]]) -> None:
    repo, _shas = history_repo
    cold = load_history(LogQuery(use_cache=False), cwd=repo.path)
    first = load_history(LogQuery(), cwd=repo.path)
    second = load_history(LogQuery(), cwd=repo.path)
    assert second.cache_hits == len(second.entries) and second.cache_misses == 0
    assert second.blobs_read == 0 < first.blobs_read
    as_json = [render_log(h.entries, "json") for h in (cold, first, second)]
    assert as_json[0] == as_json[1] == as_json[2]
    assert second.warnings == cold.warnings
    # Corrupted entries are ignored and recomputed, never trusted.
    cache_dir = repo.path / ".git" / "kmsnap-cache"
    entries = sorted(cache_dir.rglob("*.json"))
    assert entries
    entries[0].write_text("{not json")
    entries[1].write_bytes(entries[1].read_bytes()[:20])
    for entry in entries[2:4]:
        data = json.loads(entry.read_text())
        if data["changes"]:
            data["changes"][0]["severity"] = 7
        else:
            data["changes"] = "nope"
        entry.write_text(json.dumps(data))
    third = load_history(LogQuery(), cwd=repo.path)
    assert third.cache_misses == 4
    assert render_log(third.entries, "json") == as_json[0]


def test_entity_timeline_follows_renames_and_recreations(
    history_repo: tuple[Repo, dict[str, str]],
) -> None:
    repo, _ = history_repo
    history = load_history(LogQuery(), cwd=repo.path)
    checkout = entity_timeline(history.entries, "Checkout")
    assert [(e.change.change, e.change.id) for e in checkout] == [
        ("added", "e2"),
        ("recreated", "e4"),
        ("changed", "e4"),
    ]
    assert [e.commit.subject for e in checkout] == [
        "Initial snapshot",
        "Re-create Checkout",
        "Retire Viewed Page",
    ]
    # By the old name, the new name or the id: the same life.
    for query in ("Signed Up", "Sign Up", "e1"):
        timeline = entity_timeline(history.entries, query)
        assert [(e.change.change, e.change.id) for e in timeline] == [
            ("added", "e1"),
            ("changed", "e1"),
            ("renamed", "e1"),
        ]
    assert [e.change.change for e in entity_timeline(history.entries, "e2")] == [
        "added",
        "recreated",
        "changed",
    ]
    assert [e.change.change for e in entity_timeline(history.entries, "Viewed Page")] == [
        "added",
        "removed",
    ]
    text = render_timeline("Checkout", checkout, "text")
    assert "is_visible: true → false" in text and "re-created [e2 → e4]" in text
    assert entity_timeline(history.entries, "nothing") == []


def test_filters(history_repo: tuple[Repo, dict[str, str]]) -> None:
    repo, _ = history_repo
    history = load_history(LogQuery(), cwd=repo.path)
    breaking = filter_entries(history.entries, severity="breaking")
    assert [e.commit.subject for e in breaking] == [
        "Retire Viewed Page",
        "Merge side",
        "Re-create Checkout",
        "Rename Signed Up",
    ]
    warning = filter_entries(history.entries, severity="warning", kinds=["events"])
    assert [(e.commit.subject, [c.id for c in e.changes]) for e in warning] == [
        ("Retire Viewed Page", ["e4", "e3"]),
        ("Re-create Checkout", ["e4"]),
        ("Rename Signed Up", ["e1"]),
    ]
    assert len(filter_entries(history.entries)) == len(history.entries) - 1


def test_revision_range_and_dates(history_repo: tuple[Repo, dict[str, str]]) -> None:
    repo, shas = history_repo
    ranged = _log(repo, revisions=(f"{shas['c2']}..{shas['c4']}",))
    assert [e["subject"] for e in ranged] == ["Re-create Checkout", "Rename Signed Up"]
    dated = _log(repo, since="2024-03-03T00:00:00Z", until="2024-03-04T23:00:00Z")
    assert [e["subject"] for e in dated] == ["Rename Signed Up", "Add Viewed Page"]


def test_cli_log_formats(
    history_repo: tuple[Repo, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo, shas = history_repo
    monkeypatch.chdir(repo.path)
    assert run(["log", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert [e["subject"] for e in data] == [s for s, _ in EXPECTED[1:]]
    assert set(data[0]) == {"commit", "date", "author", "subject", "changes"}
    assert "warning" in err and shas["c7"][:12] in err
    assert run(["log", "--all", "--format", "json", "snapshots"]) == 0
    assert len(json.loads(capsys.readouterr()[0])) == len(EXPECTED)
    assert run(["log"]) == 0
    text = capsys.readouterr()[0]
    assert f"commit {shas['m1']}" in text
    renamed = next(line for line in text.splitlines() if '"Signed Up" → "Sign Up"' in line)
    assert renamed.startswith('    ~ event "Signed Up" → "Sign Up" [e1] renamed in account "')
    assert renamed.endswith("(breaking)") and ' › product "' in renamed
    assert '    type: "string" → "number"' in text
    assert run(["log", "--format", "markdown", "--severity", "breaking"]) == 0
    md = capsys.readouterr()[0]
    assert md.startswith("### 2024") and "Merge side" in md
    assert run(["log", "--entity", "Checkout", "--format", "json"]) == 0
    timeline = json.loads(capsys.readouterr()[0])
    assert [e["change"]["change"] for e in timeline["events"]] == ["added", "recreated", "changed"]
    assert run(["log", "--strict"]) == 1
    assert shas["c7"][:12] in capsys.readouterr()[1]
    assert run(["log", "--severity", "fatal"]) == 1
    assert run(["log", "nosuch..range"]) == 1
    assert "cannot list the history" in capsys.readouterr()[1]


def test_log_of_a_missing_directory_is_empty(history_repo: tuple[Repo, dict[str, str]]) -> None:
    repo, _ = history_repo
    assert _log(repo, path="nothing-here") == []


def test_hostile_names_are_escaped(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    snap = catalog({"e1": {"name": "ok"}})
    repo.save(snap)
    repo.commit("one")
    evil = copy.deepcopy(snap)
    evil.entities["event"]["e1"]["name"] = "x\ncommit 0000 forged <b>@team</b>"
    repo.save(evil)
    repo.commit("two\u202e")
    history = load_history(LogQuery(), cwd=repo.path)
    text = render_log(history.entries, "text")
    assert "\ncommit 0000" not in text and "\\ncommit 0000" in text
    md = render_log(history.entries, "markdown")
    assert "<b>" not in md and "@team" not in md and "\u202e" not in md


def test_an_empty_log_says_so_in_every_format(
    history_repo: tuple[Repo, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo, _ = history_repo
    monkeypatch.chdir(repo.path)
    assert run(["log", "--since", "2099-01-01"]) == 0
    assert capsys.readouterr()[0] == "No catalog changes.\n"
    assert run(["log", "--since", "2099-01-01", "--format", "markdown"]) == 0
    assert capsys.readouterr()[0] == "_No catalog changes._\n"
    assert run(["log", "--since", "2099-01-01", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr()[0]) == []


def test_entity_by_a_shared_name_is_grouped_per_entity_with_its_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = Repo(tmp_path / "repo")
    snap = catalog({"e1": {"name": "Checkout"}})
    snap.add("product", {"id": "p2", "account_id": "a1", "name": "iOS <b>"})
    snap.add("event", {"id": "f1", "product_id": "p2", "name": "Checkout"})
    repo.save(snap)
    repo.commit("one")
    later = copy.deepcopy(snap)
    del later.entities["event"]["f1"]
    later.add("event", {"id": "f2", "product_id": "p2", "name": "Checkout"})  # re-created
    later.entities["event"]["e1"]["description"] = "paid"
    repo.save(later)
    repo.commit("two")
    monkeypatch.chdir(repo.path)

    assert run(["log", "--entity", "Checkout"]) == 0
    text = capsys.readouterr()[0]
    assert '"Checkout" matches 2 entities; showing each (use an id to pick one)' in text
    web = text.index('event "Checkout" [e1] in account "Acme" › product "Web"')
    ios = text.index('event "Checkout" [f1 → f2] in account "Acme" › product "iOS <b>"')
    assert web < ios  # in the order of their first change, each with its own events
    assert text.index("description:") < ios and text.index("re-created [f1 → f2]") > ios

    assert run(["log", "--entity", "f2", "--kind", "event"]) == 0
    one = capsys.readouterr()[0]
    assert "matches" not in one and 'product "iOS <b>"' in one and "[e1]" not in one

    assert run(["log", "--entity", "Checkout", "--format", "markdown"]) == 0
    md = capsys.readouterr()[0]
    assert "matches 2 entities" in md and "iOS &lt;b&gt;" in md and "<b>" not in md

    assert run(["log", "--entity", "Checkout", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr()[0])
    assert len(data["events"]) == 4  # the flat list stays
    assert [(g["ids"], g["product_name"]) for g in data["entities"]] == [
        (["e1"], "Web"),
        (["f1", "f2"], "iOS <b>"),
    ]
