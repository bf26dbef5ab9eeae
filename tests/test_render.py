"""Renderers: golden outputs per format, hostile names, the markdown size limit.

Regenerate the goldens with ``KMSNAP_UPDATE_GOLDEN=1 pytest tests/test_render.py``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from diff_sample import sample_pair, snap

from kmsnap.diff.engine import ChangeSet, diff_snapshots
from kmsnap.history.view import render_changes_text
from kmsnap.model import Snapshot
from kmsnap.render.changes import (
    escape_data,
    escape_property,
    render,
    render_github,
    render_json,
    render_markdown,
    render_text,
)
from kmsnap.render.markdown import md_escape

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("KMSNAP_UPDATE_GOLDEN") == "1"

HOSTILE = [
    "%0A::error::pwned",
    "a\n::error::pwned",
    "x\r\n::set-output name=a::b",
    "</details><script>alert(1)</script>",
    "a | b | c",
    "@here and @octocat",
    "line one\n\nline two",
    "*bold* _it_ `code` [link](http://evil) # h ~~s~~ $x$ :tada:",
    "\u202egnp.exe",
    "tab\there",
    "<!-- comment",
    "&amp; &lt;",
    "\\",
]


def sample() -> ChangeSet:
    old, new = sample_pair()
    return diff_snapshots(old, new, old_label="HEAD~1:snapshots", new_label="snapshots")


def hostile() -> ChangeSet:
    account = {"id": "a|1", "name": "@here <b>", "status": "active"}
    product = {"id": "p1", "account_id": "a|1", "name": "</details>\n# pwned"}
    old = snap({"account": [account], "product": [product], "event": []})
    new = snap(
        {
            "account": [account],
            "product": [product],
            "event": [
                {"id": f"e{i}", "product_id": "p1", "name": name, "description": name}
                for i, name in enumerate(HOSTILE)
            ],
        }
    )
    old.entities["event"] = {
        f"e{i}": {"id": f"e{i}", "product_id": "p1", "name": name, "description": "before"}
        for i, name in enumerate(HOSTILE)
        if i % 2
    }
    return diff_snapshots(old, new, old_label="old\n::error::x", new_label="new")


@pytest.mark.parametrize(
    ("fmt", "suffix"),
    [("text", "txt"), ("markdown", "md"), ("json", "json"), ("github", "github.txt")],
)
@pytest.mark.parametrize("name", ["sample", "empty"])
def test_golden(fmt: str, suffix: str, name: str) -> None:
    cs = sample() if name == "sample" else diff_snapshots(*[sample_pair()[0]] * 2)
    got = render(cs, fmt)
    path = GOLDEN / f"{name}.{suffix}"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(got, encoding="utf-8")
    assert got == path.read_text(encoding="utf-8")


def test_golden_text_in_colour() -> None:
    got = render_text(sample(), color=True)
    path = GOLDEN / "sample.color.txt"
    if UPDATE:
        path.write_text(got, encoding="utf-8")
    assert got == path.read_text(encoding="utf-8")
    assert "\x1b[" not in render_text(sample())


def test_text_summary_lines() -> None:
    assert render_text(sample()).rstrip().splitlines()[-1] == (
        "Catalog: 2 added, 2 removed, 8 changed, 3 renamed, 1 re-created."
    )
    assert render_text(ChangeSet("a", "b")).rstrip().splitlines()[-1] == "No changes."


def test_json_is_schema_v1_and_round_trips() -> None:
    cs = sample()
    text = render_json(cs)
    assert text.endswith("}\n")
    assert json.loads(text) == cs.to_json()


# --- hostile names --------------------------------------------------------------------


def test_text_cannot_forge_lines() -> None:
    out = render_text(hostile())
    # Each change is one line (plus field lines, which start with spaces).
    for line in out.splitlines():
        assert not line.startswith("::")
        assert not line.startswith("#")
    assert "\u202e" not in out
    assert '"a\\n::error::pwned"' in out


def test_annotations_cannot_inject_workflow_commands() -> None:
    out = render_github(hostile())
    lines = out.splitlines()
    assert len(lines) == len(hostile().changes)
    for line in lines:
        assert re.match(r"::(error|warning|notice) title=[^:,\r\n]*::", line)
        assert "\r" not in line
        # The data never holds a raw % escape that GitHub would decode into a new line.
        data = line.split("::", 2)[2]
        assert re.sub(r"%(25|0A|0D)", "", data).count("%") == 0
    assert "%250A%3A%3Aerror" not in out  # quote() keeps the percent a literal percent
    assert "%250A::error::pwned" in out


def test_github_escaping_rules() -> None:
    assert escape_data("50%\r\n") == "50%25%0D%0A"
    assert escape_property("a: b, c%\n") == "a%3A b%2C c%25%0A"


def test_markdown_escapes_every_name() -> None:
    out = render_markdown(hostile())
    assert "</details><script>" not in out
    assert "<script>" not in out and "<b>" not in out and "<!--" not in out
    assert re.search(r"@(?!\u200b)", out) is None  # no mention survives
    assert "\n# pwned" not in out
    assert "\u202e" not in out
    # The only raw HTML is ours.
    tags = set(re.findall(r"</?[a-z]+>", out))
    assert tags <= {"<details>", "</details>", "<summary>", "</summary>"}
    # Table rows are only the summary table's: names never sit in a table.
    rows = [line for line in out.splitlines() if line.startswith("|")]
    assert len(rows) == 2 + 5 + 1
    for line in out.splitlines():
        if line.startswith("- ") or line.startswith("  - "):
            body = line.lstrip(" -")
            assert re.search(r"(?<!\\)[*_`\[\]|#~$]", body.replace("**", "", 2)) is None, line


def test_markdown_folds_long_sections() -> None:
    old = snap({"event": []})
    new = snap({"event": [{"id": f"e{i}", "product_id": "p", "name": f"E{i}"} for i in range(30)]})
    out = render_markdown(diff_snapshots(old, new))
    assert out.count("<details>") == 1 and out.count("</details>") == 1
    assert "<summary>(no account) › product p: 30 changes</summary>" in out


# --- the size limit -------------------------------------------------------------------


def big(n: int) -> ChangeSet:
    old = snap(
        {
            "event": [
                {"id": f"r{i:05}", "product_id": f"p{i % 7}", "name": f"Gone {i}"}
                for i in range(n // 2)
            ]
        }
    )
    new = snap(
        {
            "event": [
                {
                    "id": f"e{i:05}",
                    "product_id": f"p{i % 7}",
                    "name": f"Event {i} <&> | @x " + "é" * 30 + "😀",
                }
                for i in range(n - n // 2)
            ]
        }
    )
    return diff_snapshots(old, new)


@pytest.mark.parametrize("limit", [65536, 20000, 3000])
def test_markdown_never_passes_the_limit(limit: int) -> None:
    cs = big(4000)
    out = render_markdown(cs, limit=limit)
    assert len(out.encode("utf-16-le")) // 2 <= limit
    m = re.search(r"\*\*(\d+) of 4000 changes are not shown\*\*", out)
    assert m is not None
    assert "`kmsnap diff --format text old new`" in out
    shown = out.count("\n- **")
    assert shown + int(m.group(1)) == 4000
    assert out.count("<details>") == out.count("</details>")


def test_markdown_under_the_limit_has_no_note() -> None:
    out = render_markdown(big(40))
    assert "not shown" not in out
    assert out.count("\n- **") == 40


# --- renames to "" or null ------------------------------------------------------------


@pytest.mark.parametrize(("after", "shown"), [("", '""'), (None, "(no name)")])
def test_a_rename_to_empty_or_null_shows_both_names(after: str | None, shown: str) -> None:
    def side(name: str | None) -> Snapshot:
        return snap({"event": [{"id": "e1", "product_id": "p1", "name": name}]})

    cs = diff_snapshots(side("Signed Up"), side(after))
    assert f'event "Signed Up" → {shown} [e1] renamed' in render_text(cs)
    assert f"event {md_escape(chr(34) + 'Signed Up' + chr(34))} → {md_escape(shown)}" in (
        render_markdown(cs)
    )
    assert f'event "Signed Up" renamed to {shown}' in render_github(cs)
    back = diff_snapshots(side(after), side("Signed Up"))
    assert f'event {shown} → "Signed Up" [e1] renamed' in render_text(back)
    assert f'event {shown} renamed to "Signed Up"' in render_github(back)


# --- a hostile kind name --------------------------------------------------------------

HOSTILE_KIND = "<img src=https://evil.example/p.png> @octocat\n## forged heading"


def hostile_kind() -> ChangeSet:
    """A kind as an untrusted snapshot could name it (the store refuses this one on load;
    the renderers must not rely on that)."""
    old = snap({"event": []})
    new = snap({HOSTILE_KIND: [{"id": "z1", "name": "thing"}, {"id": "z2", "name": "@x"}]})
    new.entities["event"] = {}
    old.entities[HOSTILE_KIND] = {"z2": {"id": "z2", "name": "y"}}
    return diff_snapshots(old, new)


def test_a_hostile_kind_is_escaped_in_every_format() -> None:
    cs = hostile_kind()
    assert {c.change for c in cs.changes} == {"added", "renamed"}
    text = render_text(cs)
    assert "\n## forged" not in text
    assert '"<img src=https://evil.example/p.png> @octocat\\n## forged heading" "thing"' in text
    md = render_markdown(cs)
    assert "<img" not in md and "\n## forged" not in md and "\\#\\# forged" in md
    assert re.search(r"@(?!\u200b)", md) is None
    github = render_github(cs)
    assert len(github.splitlines()) == len(cs.changes)
    for line in github.splitlines():
        assert re.match(r"::(error|warning|notice) title=[^:,\r\n]*::", line)
    assert json.loads(render_json(cs))["changes"][0]["kind"] == HOSTILE_KIND
    log = render_changes_text(cs.changes, "    ")
    assert len(log) == 2 and all("\n" not in line for line in log)
    assert '"<img src=https://evil.example/p.png> @octocat\\n## forged heading"' in log[0]


def test_plain_kinds_read_as_words() -> None:
    cs = diff_snapshots(snap({}), snap({"funnel-reports": [{"id": "f1", "name": "F"}]}))
    assert '  + funnel-reports "F" [f1] added' in render_text(cs)


def test_counts_read_as_english() -> None:
    one = diff_snapshots(snap({}), snap({"event": [{"id": "e1", "product_id": "p", "name": "A"}]}))
    md = render_markdown(one)
    assert "**1 change** (1 info)" in md and "1 changes" not in md
    assert render_text(one).rstrip().endswith("Catalog: 1 added, 0 removed, 0 changed, "
                                             "0 renamed, 0 re-created.")
    many = diff_snapshots(
        snap({}),
        snap({"event": [{"id": f"e{i}", "product_id": "p", "name": f"E{i}"} for i in range(11)]}),
    )
    assert "**11 changes**" in render_markdown(many)
    assert ": 11 changes</summary>" in render_markdown(many)
    cut = render_markdown(big(400), limit=3000)
    assert re.search(r"\*\*\d+ of 400 changes are not shown\*\*", cut)
    breaking = diff_snapshots(
        snap({"event": [{"id": f"e{i}", "product_id": "p", "name": f"E{i}"} for i in range(26)]}),
        snap({}),
    )
    assert "<summary>26 breaking changes</summary>" in render_markdown(breaking)


def test_the_cut_note_names_the_real_snapshots_shell_quoted() -> None:
    cs = big(400)
    cs.old_label, cs.new_label = "HEAD~1:snapshots", "my snapshots"
    out = render_markdown(cs, limit=3000)
    assert "`kmsnap diff --format text HEAD~1:snapshots 'my snapshots'`" in out
    assert "OLD NEW" not in out
    cs.old_label = "a`b\n@x <i>"
    out = render_markdown(cs, limit=3000)
    # A code span fenced past the label's own backticks: literal, one line, no mention.
    assert "`` kmsnap diff --format text 'a`b\\n@x <i>' 'my snapshots' ``." in out
    custom = render_markdown(cs, limit=3000, see_all="kmsnap check --snapshot s --format text")
    assert "`kmsnap check --snapshot s --format text`." in custom
