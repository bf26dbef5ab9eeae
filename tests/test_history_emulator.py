"""kmsnap log over catalog versions pulled from the emulator and committed, merge included."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from test_history import Repo

from kmsnap.cli import run
from kmsnap.emulator import Emulator

TOKEN = "log-token"


def pull(repo: Repo) -> None:
    assert run(["pull", "--quiet", "--out", str(repo.path / "snapshots")]) == 0


def log(repo: Repo, capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, object]]:
    capsys.readouterr()
    assert run(["log", "--format", "json", str(repo.path / "snapshots"), *args]) == 0
    entries: list[dict[str, object]] = json.loads(capsys.readouterr().out)
    return entries


def changes(entry: dict[str, object]) -> list[tuple[str, str, str]]:
    found = entry["changes"]
    assert isinstance(found, list)
    return sorted((c["change"], c["kind"], c["id"]) for c in found)


def test_log_tells_the_pulled_history(
    make_emulator: Callable[..., Emulator],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = make_emulator(size=120, seed=11, token=TOKEN)
    monkeypatch.setenv("KISSMETRICS_TOKEN", TOKEN)
    monkeypatch.setenv("KMSNAP_API", emu.base_url)
    repo = Repo(tmp_path / "repo")
    monkeypatch.chdir(repo.path)
    catalog = emu.catalog
    events = list(catalog.records["event"])
    product_id = catalog.records["event"][events[0]]["product_id"]

    pull(repo)
    repo.commit("first snapshot")
    first_size = catalog.size()

    added = catalog.add("event", {"product_id": product_id, "name": "exported a report",
                                  "display_name": None, "description": None,
                                  "is_visible": True})
    catalog.rename("event", events[0], "signed up (v2)")
    catalog.touch_usage(seed=4)  # traffic alone: no change of its own
    pull(repo)
    repo.commit("week 1: one event added, one renamed")

    recreated = catalog.recreate("event", events[1])
    pull(repo)
    repo.commit("week 2: an event re-created")

    # A side branch hides a property; main merges it (first parent: the merge carries it).
    repo.git("checkout", "-q", "-b", "side")
    hidden = next(i for i, r in catalog.records["property"].items() if r.get("is_visible"))
    catalog.set_field("property", hidden, "is_visible", False)
    pull(repo)
    side = repo.commit("side: hide a property")
    repo.git("checkout", "-q", "main")
    repo.day += 1
    repo.git("merge", "-q", "--no-ff", "-m", "merge side", "side")
    merge = repo.git("rev-parse", "HEAD")

    catalog.remove("event", events[2])
    pull(repo)
    repo.commit("week 3: an event removed")

    entries = log(repo, capsys)
    assert [e["subject"] for e in entries] == [
        "week 3: an event removed",
        "merge side",
        "week 2: an event re-created",
        "week 1: one event added, one renamed",
        "first snapshot",
    ]
    assert side not in {e["commit"] for e in entries} and entries[1]["commit"] == merge
    assert changes(entries[0]) == [("removed", "event", events[2])]
    assert changes(entries[1]) == [("changed", "property", hidden)]
    assert changes(entries[2]) == [("recreated", "event", recreated)]
    assert changes(entries[3]) == sorted([("added", "event", added),
                                          ("renamed", "event", events[0])])
    assert len(changes(entries[4])) == first_size
    assert all(c[0] == "added" for c in changes(entries[4]))

    # The timeline of the re-created event links the new id to its predecessor.
    capsys.readouterr()
    assert run(["log", "--format", "json", "--entity", recreated,
                str(repo.path / "snapshots")]) == 0
    timeline = json.loads(capsys.readouterr().out)
    kinds = [event["change"]["change"] for event in timeline["events"]]
    assert kinds == ["added", "recreated"]
    assert timeline["events"][1]["change"]["old_id"] == events[1]

    # Only the breaking ones, and the cached second run says the same.
    breaking = log(repo, capsys, "--severity", "breaking")
    assert [e["subject"] for e in breaking] == [
        "week 3: an event removed",
        "week 2: an event re-created",
        "week 1: one event added, one renamed",
    ]
    assert log(repo, capsys) == entries
