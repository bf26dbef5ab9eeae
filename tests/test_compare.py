"""The one compare step (``kmsnap.compare``): sources on disk and in memory, the selection, the
ignore rules with their reasons, kinds, usage fields, the live side of ``check`` compared in
memory (no temporary directory), and the pull with the selection."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from diff_sample import sample_pair, snap

from kmsnap.cli import run
from kmsnap.compare import (
    NO_RULES,
    MemorySource,
    Rules,
    UnknownKindError,
    compare_live,
    compare_snapshots,
    compare_sources,
    live_label,
    pull_selected,
)
from kmsnap.config import Config, load_config
from kmsnap.diff.engine import Change, diff_snapshots
from kmsnap.emulator import Emulator
from kmsnap.errors import UsageError
from kmsnap.model import Snapshot
from kmsnap.snapshot.selection import Selection, Selector
from kmsnap.snapshot.store import DirectorySource, load_snapshot, save_snapshot
from kmsnap.sources.core.crawler import PullOptions, pull_snapshot

TOKEN = "compare-token"


def as_json(changes: Iterable[Change]) -> list[dict[str, Any]]:
    return [c.to_json() for c in changes]


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    old, new = sample_pair()
    save_snapshot(old, tmp_path / "old")
    save_snapshot(new, tmp_path / "new")
    return tmp_path / "old", tmp_path / "new"


def configured(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "kmsnap.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path=path)


# ---- sources ---------------------------------------------------------------------------


def test_directories_and_memory_give_the_diff_of_the_snapshots(dirs: tuple[Path, Path]) -> None:
    old, new = sample_pair()
    expected = diff_snapshots(old, new, old_label="a", new_label="b")
    assert len(expected.changes) == 16
    on_disk = compare_sources(DirectorySource(dirs[0], label="a"), DirectorySource(dirs[1], "b"))
    in_memory = compare_sources(
        MemorySource.encode(old, label="a"), MemorySource.encode(new, label="b")
    )
    mixed = compare_sources(DirectorySource(dirs[0], label="a"), MemorySource.encode(new))
    for cs in (on_disk, in_memory):
        assert (cs.old_label, cs.new_label) == ("a", "b")
        assert cs.to_json() == expected.to_json()
        assert cs.ignored == {}
    assert mixed.new_label == "memory"
    assert as_json(mixed.changes) == as_json(expected.changes)
    assert compare_sources(MemorySource.encode(old), MemorySource.encode(old)).changes == []


def test_labels_can_be_given_and_a_missing_side_is_an_empty_catalog(
    dirs: tuple[Path, Path],
) -> None:
    _, new = sample_pair()
    cs = compare_sources(None, DirectorySource(dirs[1]), old_label="before", new_label="after")
    assert (cs.old_label, cs.new_label) == ("before", "after")
    assert {c.change for c in cs.changes} == {"added"}
    assert len(cs.changes) == sum(new.counts().values())
    gone = compare_sources(DirectorySource(dirs[1]), None)
    assert gone.new_label == "empty"
    assert {c.change for c in gone.changes} == {"removed"}
    assert compare_sources(None, None).changes == []


def test_the_memory_source_knows_its_sizes_and_reads_what_save_would_write(
    tmp_path: Path,
) -> None:
    old, _ = sample_pair()
    source = MemorySource.encode(old, label="mem")
    save_snapshot(old, tmp_path / "disk")
    disk = {
        str(p.relative_to(tmp_path / "disk")): p.read_bytes()
        for p in (tmp_path / "disk").rglob("*")
        if p.is_file()
    }
    assert set(source.list_files()) == set(disk)
    assert source.read_files(sorted(disk)) == disk
    assert source.sizes() == {rel: len(data) for rel, data in disk.items()}
    assert load_snapshot(source).entities == load_snapshot(tmp_path / "disk").entities


# ---- selection, ignore rules, kinds, usage ---------------------------------------------


def test_the_selection_of_the_config_is_applied_to_both_sides(
    dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    everything = compare_sources(DirectorySource(dirs[0]), DirectorySource(dirs[1]))
    assert any(c.account_id == "acc-2" for c in everything.changes)
    config = configured(tmp_path, "exclude:\n  accounts: [Globex]\n")
    cs = compare_sources(
        DirectorySource(dirs[0]), DirectorySource(dirs[1]), rules=Rules.from_config(config)
    )
    assert cs.changes
    assert not any(c.account_id == "acc-2" or c.id == "acc-2" for c in cs.changes)
    assert as_json(cs.changes) == as_json(
        [c for c in everything.changes if c.account_id != "acc-2" and c.id != "acc-2"]
    )
    # A Selection without a config file selects the same.
    alone = Rules(select=Selection(exclude=Selector(accounts=frozenset({"acc-2"}))))
    old, new = sample_pair()
    assert as_json(compare_snapshots(old, new, rules=alone).changes) == as_json(cs.changes)


def test_ignored_fields_are_left_out_and_their_reasons_are_in_the_change_set(
    tmp_path: Path,
) -> None:
    config = configured(
        tmp_path,
        "ignore_fields:\n"
        "  event:\n    description: edited by hand in the UI\n"
        "  metric:\n    color: cosmetic\n",
    )
    old = snap({"event": [{"id": "e1", "name": "A", "description": "x"}]})
    new = snap({"event": [{"id": "e1", "name": "A", "description": "y"}]})
    plain = compare_snapshots(old, new)
    assert [c.fields for c in plain.changes] == [{"description": {"old": "x", "new": "y"}}]
    assert plain.ignored == {}
    cs = compare_snapshots(old, new, rules=Rules.from_config(config))
    assert cs.changes == []
    assert cs.ignored == {
        "event": {"description": "edited by hand in the UI"},
        "metric": {"color": "cosmetic"},
    }
    # Only the kinds compared keep their reasons.
    events = compare_snapshots(old, new, rules=Rules.from_config(config), kinds=["events"])
    assert events.ignored == {"event": {"description": "edited by hand in the UI"}}
    # Fields left out without a reason to show (kmsnap log's rules).
    quiet = compare_snapshots(old, new, rules=Rules(ignore_fields={"event": {"description"}}))
    assert (quiet.changes, quiet.ignored) == ([], {})


def test_kinds_keep_only_those_kinds_and_an_unknown_kind_is_refused(
    dirs: tuple[Path, Path],
) -> None:
    cs = compare_sources(
        DirectorySource(dirs[0]), DirectorySource(dirs[1]), kinds=["events", "metric"]
    )
    assert cs.changes
    assert {c.kind for c in cs.changes} == {"event", "metric"}
    with pytest.raises(UnknownKindError) as caught:
        compare_sources(DirectorySource(dirs[0]), DirectorySource(dirs[1]), kinds=["evnts"])
    assert isinstance(caught.value, UsageError)
    assert caught.value.kind == "evnts"
    assert str(caught.value).startswith("unknown kind 'evnts'; use one of account, ")
    # A kind that is in a snapshot, though not a documented one, is not unknown.
    odd = snap({"widget": [{"id": "w1", "name": "W"}]})
    assert compare_snapshots(Snapshot(), odd, kinds=["widget"]).changes[0].kind == "widget"


def test_usage_fields_count_only_with_stats(tmp_path: Path) -> None:
    record = {"id": "e1", "name": "A"}
    old = snap({"event": [record]}, {"event": {"e1": {"total": 1}}})
    new = snap({"event": [record]}, {"event": {"e1": {"total": 7}}})
    for side, name in ((old, "old"), (new, "new")):
        save_snapshot(side, tmp_path / name, with_stats=True)
    sources = DirectorySource(tmp_path / "old"), DirectorySource(tmp_path / "new")
    assert compare_sources(*sources).changes == []
    [change] = compare_sources(*sources, with_stats=True).changes
    assert change.fields == {"total": {"old": 1, "new": 7}}


# ---- the live side of check ------------------------------------------------------------


def test_live_values_compare_as_after_a_save_and_a_load(tmp_path: Path) -> None:
    stored = snap(
        {
            "account": [{"id": "a1", "name": "A"}],
            "event": [{"id": "e1", "name": "E", "choices": [1, 2]}],
        }
    )
    save_snapshot(stored, tmp_path / "snap")
    # What a crawl can hand over but the files cannot hold: links (never stored) and a tuple
    # (stored as a YAML list); compared raw they would be drift that pull then diff never shows.
    live = snap(
        {
            "account": [{"id": "a1", "name": "A", "links": {"self": "http://x/a1"}}],
            "event": [{"id": "e1", "name": "E", "choices": (1, 2)}],
        }
    )
    assert len(compare_snapshots(load_snapshot(tmp_path / "snap"), live).changes) == 2
    cs = compare_live(DirectorySource(tmp_path / "snap", label="snap"), live)
    assert cs.changes == []
    assert (cs.old_label, cs.new_label) == ("snap", "live (http://127.0.0.1/core)")
    assert live_label(Snapshot()) == "live"
    live.entities["event"]["e1"]["name"] = "E2"
    [renamed] = compare_live(DirectorySource(tmp_path / "snap"), live, label="now").changes
    assert (renamed.change, renamed.id) == ("renamed", "e1")


@pytest.fixture
def pulled(
    make_emulator: Callable[..., Emulator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Emulator:
    """An emulator and its snapshot pulled into ``tmp_path/snapshots`` (the cwd)."""
    emu = make_emulator(size=120, seed=5, token=TOKEN)
    monkeypatch.setenv("KISSMETRICS_TOKEN", TOKEN)
    monkeypatch.setenv("KMSNAP_API", emu.base_url)
    monkeypatch.chdir(tmp_path)
    assert run(["pull", "--quiet", "--out", "snapshots"]) == 0
    return emu


def test_check_makes_no_temporary_directory_and_says_what_pull_then_diff_says(
    pulled: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    events = pulled.catalog.ids("event")
    pulled.catalog.set_field("event", events[0], "description", "moved")
    pulled.catalog.rename("event", events[1], "a brand new name")
    # Every temporary file or directory would go to a directory that does not exist: making
    # one fails (the old check, through tempfile.TemporaryDirectory, exited 1 here).
    nowhere = tmp_path / "no-temporary-files-here"
    monkeypatch.setenv("TMPDIR", str(nowhere))
    monkeypatch.setattr(tempfile, "tempdir", str(nowhere))
    with pytest.raises(FileNotFoundError):
        tempfile.TemporaryDirectory(prefix="kmsnap-check-")
    capsys.readouterr()
    assert run(["check", "--quiet", "--format", "json"]) == 2
    checked = json.loads(capsys.readouterr().out)
    assert not nowhere.exists()
    assert checked["old"] == "snapshots"
    assert checked["new"] == f"live ({pulled.base_url})"
    assert {(c["id"], c["change"]) for c in checked["changes"]} == {
        (events[0], "changed"),
        (events[1], "renamed"),
    }
    # The same change set as pulling the live catalog to disk and diffing it.
    monkeypatch.setattr(tempfile, "tempdir", None)
    assert run(["pull", "--quiet", "--out", "live"]) == 0
    assert run(["diff", "--format", "json", "snapshots", "live"]) == 0
    diffed = json.loads(capsys.readouterr().out)
    assert diffed["changes"] == checked["changes"]
    assert diffed["summary"] == checked["summary"]


def test_check_refuses_an_unknown_kind_naming_the_option(
    pulled: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert run(["check", "--quiet", "--kind", "widgetz"]) == 1
    assert "--kind: unknown kind 'widgetz'; use one of account" in capsys.readouterr().err


# ---- the pull with the selection -------------------------------------------------------


def test_pull_selected_keeps_what_the_selection_selects(
    make_emulator: Callable[..., Emulator],
) -> None:
    emu = make_emulator(size=120, seed=2, token=TOKEN)
    options = PullOptions(api=emu.base_url, token=TOKEN)
    whole = pull_snapshot(options).snapshot
    products = sorted(whole.of("product"))
    assert len(products) >= 2
    dropped = products[0]
    assert any(r.get("product_id") == dropped for r in whole.of("event").values())
    everything = pull_selected(options)
    assert everything.snapshot.entities == whole.entities
    assert pull_selected(options, NO_RULES.select).snapshot.entities == whole.entities
    select = Selection(exclude=Selector(products=frozenset({dropped})))
    result = pull_selected(options, select)
    assert result.requests > 0
    kept = result.snapshot
    assert dropped not in kept.of("product")
    assert not any(r.get("product_id") == dropped for r in kept.of("event").values())
    assert kept.size() < whole.size()
    assert set(kept.of("product")) == set(products[1:])
