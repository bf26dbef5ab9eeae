"""``kmsnap check`` end to end against the emulator: no drift, drift, and --fail-on levels."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from kmsnap.cli import run
from kmsnap.emulator import Emulator

TOKEN = "check-token"


@pytest.fixture
def live(
    make_emulator: Callable[..., Emulator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Emulator, Path]:
    """An emulator and a snapshot of it pulled into ``tmp_path/snapshots``."""
    emu = make_emulator(size=150, seed=3, token=TOKEN)
    monkeypatch.setenv("KISSMETRICS_TOKEN", TOKEN)
    monkeypatch.setenv("KMSNAP_API", emu.base_url)
    monkeypatch.chdir(tmp_path)
    assert run(["pull", "--quiet", "--out", "snapshots"]) == 0
    return emu, tmp_path / "snapshots"


def files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = run(["check", "--quiet", *args])
    return code, capsys.readouterr().out


def test_no_drift(live: tuple[Emulator, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _, snapshots = live
    before = files(snapshots)
    code, out = check(capsys, "--format", "json")
    assert code == 0
    assert json.loads(out)["changes"] == []
    assert files(snapshots) == before
    code, out = check(capsys)
    assert (code, out.rstrip().splitlines()[-1]) == (0, "No changes.")


def test_usage_moves_are_not_drift_unless_asked(
    live: tuple[Emulator, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    emu, _ = live
    assert emu.catalog.touch_usage(seed=1) > 0
    assert check(capsys)[0] == 0


def test_drift_and_fail_on_levels(
    live: tuple[Emulator, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    emu, snapshots = live
    before = files(snapshots)
    events = emu.catalog.ids("event")

    # info only: a description
    emu.catalog.set_field("event", events[0], "description", "a new description")
    assert check(capsys, "--fail-on", "warning")[0] == 0
    code, out = check(capsys, "--format", "json")
    assert code == 2
    [change] = json.loads(out)["changes"]
    assert (change["id"], change["severity"]) == (events[0], "info")

    # warning: hidden
    emu.catalog.set_field("event", events[1], "is_visible", False)
    assert check(capsys, "--fail-on", "breaking")[0] == 0
    assert check(capsys, "--fail-on", "warning")[0] == 2

    # breaking: a rename and a re-creation
    emu.catalog.rename("event", events[2], "Renamed <b>@here</b>")
    new_id = emu.catalog.recreate("event", events[3])
    code, out = check(capsys, "--fail-on", "breaking", "--format", "json")
    assert code == 2
    got = {(c["change"], c["id"]) for c in json.loads(out)["changes"]}
    assert ("renamed", events[2]) in got and ("recreated", new_id) in got

    code, out = check(capsys, "--kind", "metrics")
    assert code == 0  # nothing changed among metrics

    code, out = check(capsys, "--format", "github", "--fail-on", "any")
    assert code == 2 and "::error title=" in out

    for i, event_id in enumerate(events[4:64]):
        emu.catalog.set_field("event", event_id, "description", f"changed {i} " + "d" * 80)
    code, out = check(capsys, "--format", "markdown", "--max-chars", "3000")
    assert code == 2 and len(out) <= 3000
    assert "changes are not shown" in out
    assert "`kmsnap check --snapshot-dir snapshots --format text`" in out
    # The committed snapshot is never touched, and nothing is left behind.
    assert files(snapshots) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snapshots"]


def test_errors_are_one_line(
    live: tuple[Emulator, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert run(["check", "--fail-on", "sometimes"]) == 1
    assert capsys.readouterr().err.count("\n") == 1
    assert run(["check", "--snapshot", "missing"]) == 1
    assert "missing" in capsys.readouterr().err
    monkeypatch.setenv("KISSMETRICS_TOKEN", "wrong")
    assert run(["check", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "wrong" not in err


def test_check_says_which_fields_are_ignored(
    live: tuple[Emulator, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    emu, _ = live
    (tmp_path / "kmsnap.yaml").write_text(
        "ignore_fields:\n  event:\n    description: edited freely\n", encoding="utf-8"
    )
    emu.catalog.set_field("event", emu.catalog.ids("event")[0], "description", "new text")
    code, out = check(capsys)
    assert code == 0
    assert out.rstrip().splitlines()[-2:] == [
        "No changes.",
        "Ignored by kmsnap.yaml: event.description — edited freely",
    ]
