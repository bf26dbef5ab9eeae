"""A ``kmsnap.yaml`` changes what pull, diff and check do, end to end through the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from kmsnap.cli import run
from kmsnap.emulator import Emulator
from kmsnap.snapshot.store import load_snapshot

TOKEN = "config-token"


@pytest.fixture
def repo(
    make_emulator: Callable[..., Emulator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Emulator, Path]:
    """An emulator, the token in the environment, and cwd in an empty repository root."""
    emu = make_emulator(size=150, seed=5, token=TOKEN)
    monkeypatch.setenv("KISSMETRICS_TOKEN", TOKEN)
    monkeypatch.delenv("KMSNAP_API", raising=False)
    monkeypatch.chdir(tmp_path)
    return emu, tmp_path


def write_config(root: Path, text: str) -> None:
    (root / "kmsnap.yaml").write_text(text, encoding="utf-8")


def test_api_and_snapshot_dir_come_from_the_file(repo: tuple[Emulator, Path]) -> None:
    emu, root = repo
    write_config(root, f'api: "{emu.base_url}"\nsnapshot_dir: "catalog"\n')
    assert run(["pull", "--quiet"]) == 0
    assert load_snapshot(root / "catalog").size() == emu.catalog.size()
    assert not (root / "snapshots").exists()


def test_a_flag_beats_the_file(repo: tuple[Emulator, Path]) -> None:
    emu, root = repo
    write_config(root, 'api: "https://api.example.invalid/core"\n')
    assert run(["pull", "--quiet", "--api", emu.base_url, "--out", "flagged"]) == 0
    assert (root / "flagged" / "kmsnap.yaml").is_file()


def test_exclude_leaves_a_product_and_its_entities_out_of_the_pull(
    repo: tuple[Emulator, Path],
) -> None:
    emu, root = repo
    products = emu.catalog.records["product"]
    excluded_id, excluded = next(iter(products.items()))
    write_config(
        root,
        f'api: "{emu.base_url}"\nexclude:\n  products: [{json.dumps(excluded["name"])}]\n',
    )
    assert run(["pull", "--quiet"]) == 0
    snapshot = load_snapshot(root / "snapshots")
    assert excluded_id not in snapshot.of("product")
    assert len(snapshot.of("product")) == len(products) - 1
    for kind in ("report", "event", "property", "metric"):
        assert all(r.get("product_id") != excluded_id for r in snapshot.of(kind).values())
        assert snapshot.of(kind), kind  # the other products' entities are all there


def test_check_fails_only_at_the_configured_level(
    repo: tuple[Emulator, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    emu, root = repo
    write_config(root, f'api: "{emu.base_url}"\nfail_on: "breaking"\n')
    assert run(["pull", "--quiet"]) == 0
    event_id = next(iter(emu.catalog.records["event"]))
    emu.catalog.set_field("event", event_id, "description", "reworded")  # info
    assert run(["check", "--quiet", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["changed"] == 1
    emu.catalog.remove("event", event_id)  # breaking
    assert run(["check", "--quiet", "--format", "json"]) == 2
    assert json.loads(capsys.readouterr().out)["summary"]["removed"] == 1
    # The flag still wins over the file.
    emu.catalog.set_field("event", next(iter(emu.catalog.records["event"])), "description", "x")
    assert run(["check", "--quiet", "--fail-on", "any"]) == 2


def test_ignored_fields_are_not_changes(
    repo: tuple[Emulator, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    emu, root = repo
    write_config(
        root,
        f'api: "{emu.base_url}"\n'
        "ignore_fields:\n  event:\n    - field: description\n"
        '      reason: "edited freely by marketing"\n',
    )
    assert run(["pull", "--quiet", "--out", "old"]) == 0
    event_id = next(iter(emu.catalog.records["event"]))
    emu.catalog.set_field("event", event_id, "description", "reworded")
    assert run(["pull", "--quiet", "--out", "new"]) == 0
    capsys.readouterr()
    assert run(["diff", "old", "new", "--format", "json", "--exit-code"]) == 0
    assert json.loads(capsys.readouterr().out)["changes"] == []
    emu.catalog.set_field("event", event_id, "display_name", "Shown")
    assert run(["pull", "--quiet", "--out", "new"]) == 0
    capsys.readouterr()
    assert run(["diff", "old", "new", "--format", "json", "--exit-code"]) == 2
    [change] = json.loads(capsys.readouterr().out)["changes"]
    assert set(change["fields"]) == {"display_name"}


def test_a_broken_config_is_one_line_naming_file_line_and_key(
    repo: tuple[Emulator, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, root = repo
    write_config(root, 'snapshot_dir: "snapshots"\nconcurency: 4\n')
    assert run(["pull", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "kmsnap.yaml:2" in err and "'concurency'" in err and "concurrency" in err
