"""Long names, ids and values in the reports for people: shortened (before escaping) so that a
report never loses its breaking changes to one name; JSON keeps every value whole."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from diff_sample import snap
from hypothesis import given
from hypothesis import strategies as st

from kmsnap.cli import run
from kmsnap.diff.engine import ChangeSet, diff_snapshots
from kmsnap.model import Snapshot
from kmsnap.render.base import (
    KEEP_TEXT,
    LONG_TEXT,
    escape,
    short_escape,
    short_quote,
    short_value,
    show_value,
)
from kmsnap.render.changes import render_github, render_json, render_markdown, render_text
from kmsnap.snapshot.store import save_snapshot

# Hostile on every line it could reach: a workflow command, HTML, a mention, a bidi override.
HOSTILE_PIECE = "\u202e%0A\n::error::pwned</details><script>@here|*_`"
HUGE = (HOSTILE_PIECE * (70_000 // len(HOSTILE_PIECE) + 1))[:70_000]
GONE = [f"Gone event {i}" for i in range(8)]


def ev(entity_id: str, name: str, **fields: Any) -> dict[str, Any]:
    return {"id": entity_id, "product_id": "p1", "name": name, **fields}


def huge_pair() -> tuple[Snapshot, Snapshot]:
    """One event renamed to a 70,000-character name (sorted first), eight removed, and one
    whose description grows to 70,000 characters: nine breaking changes, one info."""
    product = {"id": "p1", "name": "Web"}
    old = snap(
        {
            "product": [product],
            "event": [
                ev("e0", "A short name"),
                ev("e1", "Described", description="short"),
                *[ev(f"g{i}", name) for i, name in enumerate(GONE)],
            ],
        }
    )
    new = snap(
        {
            "product": [product],
            "event": [ev("e0", "!" + HUGE[1:]), ev("e1", "Described", description=HUGE)],
        }
    )
    return old, new


def huge_change_set() -> ChangeSet:
    return diff_snapshots(*huge_pair(), old_label="old", new_label="new")


def test_a_huge_name_leaves_room_for_every_breaking_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cs = huge_change_set()
    assert sum(c.severity == "breaking" for c in cs.changes) == 1 + len(GONE)
    assert cs.changes[0].change == "renamed"  # the huge name comes first
    # Through the CLI, from snapshot directories on disk, as a pull request's job runs it.
    old, new = huge_pair()
    save_snapshot(old, tmp_path / "old")
    save_snapshot(new, tmp_path / "new")
    monkeypatch.chdir(tmp_path)
    assert run(["diff", "--format", "markdown", "--max-chars", "65000", "old", "new"]) == 0
    out = capsys.readouterr().out
    assert "not shown" not in out
    for name in GONE:
        assert f'"{name}"' in out
    assert "70,000 characters" in out
    assert len(out) < 10_000  # each name and value is bounded, not just the whole comment


def test_markdown_stays_escaped_after_shortening() -> None:
    out = render_markdown(huge_change_set(), limit=65_000)
    assert "not shown" not in out
    assert all(f'"{name}"' in out for name in GONE)
    assert "<script>" not in out and "\u202e" not in out
    assert re.search(r"@(?!\u200b)", out) is None
    assert set(re.findall(r"</?[a-z]+>", out)) <= {"<details>", "</details>", "<summary>",
                                                    "</summary>"}
    assert "\n::" not in out
    # The note of the full length stands outside the quotes of the name.
    assert re.search(r'…" \\\(70,000 characters\\\)', out)


def test_text_and_github_keep_every_change_and_stay_escaped() -> None:
    cs = huge_change_set()
    text = render_text(cs)
    assert all(f'"{name}"' in text for name in GONE)
    assert len(text) < 5_000 and "\u202e" not in text
    assert not any(line.startswith("::") for line in text.splitlines())
    github = render_github(cs)
    lines = github.splitlines()
    assert len(lines) == len(cs.changes)
    for line in lines:
        assert re.match(r"::(error|warning|notice) title=[^:,\r\n]*::", line)
        assert len(line) < 3_000
    assert "70,000 characters" in github


def test_json_keeps_every_value_whole() -> None:
    cs = huge_change_set()
    data = json.loads(render_json(cs))
    renamed = [c for c in data["changes"] if c["change"] == "renamed"]
    assert renamed and renamed[0]["fields"]["name"]["new"] == "!" + HUGE[1:]
    assert "70,000 characters" not in render_json(cs)


def test_the_cut_is_made_before_escaping_never_inside_an_escape() -> None:
    last_kept = "a" * (KEEP_TEXT - 1) + "\u202e" + "b" * LONG_TEXT
    assert short_quote(last_kept) == (
        '"' + "a" * (KEEP_TEXT - 1) + '\\u202e…" (' + f"{len(last_kept):,} characters)"
    )
    first_dropped = "a" * KEEP_TEXT + "\u202e" * LONG_TEXT
    assert "\\u20" not in short_quote(first_dropped)
    assert short_escape("x" * LONG_TEXT) == "x" * LONG_TEXT  # up to LONG_TEXT: whole
    assert short_escape("\n" * (LONG_TEXT + 1)) == "\\n" * KEEP_TEXT + "… (301 characters)"
    assert short_quote(None) == "(no name)"


@given(st.lists(st.text(max_size=40), max_size=60))
def test_a_long_list_value_is_cut_between_escapes(value: list[str]) -> None:
    shown = show_value(value)
    short = short_value(value)
    if len(shown) <= LONG_TEXT:
        assert short == shown
        return
    kept, note = short.rsplit("… (", 1)
    assert note == f"{len(shown):,} characters)"
    assert shown.startswith(kept) and len(kept) <= KEEP_TEXT
    # What is kept ends on a whole escape: no lone backslash, no \\u with fewer than 4 digits.
    assert re.fullmatch(r'(?:\\(?:u[0-9a-f]{4}|U[0-9a-f]{8}|[nrt"\\])|[^\\])*', kept), kept


@given(st.text(min_size=LONG_TEXT - 5, max_size=LONG_TEXT * 2))
def test_a_shortened_name_is_one_printable_line(name: str) -> None:
    shown = short_quote(name)
    assert shown.isprintable()
    if len(name) > LONG_TEXT:
        assert shown == f'"{escape(name[:KEEP_TEXT])}…" ({len(name):,} characters)'
    else:
        assert shown == f'"{escape(name)}"'
