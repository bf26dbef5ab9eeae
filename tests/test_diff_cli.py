"""``kmsnap diff`` end to end: directories, REV:PATH in a real git repo, formats, exit codes,
and untrusted snapshot input (one line naming file and line, exit 1)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from diff_sample import sample_pair

from kmsnap.cli import run
from kmsnap.snapshot.store import save_snapshot


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    old, new = sample_pair()
    save_snapshot(old, tmp_path / "old")
    save_snapshot(new, tmp_path / "new")
    return tmp_path / "old", tmp_path / "new"


def out_err(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_json_output_and_exit_codes(
    pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(pair[0].parent)
    assert run(["diff", "--format", "json", "old", "new"]) == 0
    out, err = out_err(capsys)
    data = json.loads(out)
    assert (data["schema_version"], data["old"], data["new"]) == (1, "old", "new")
    assert data["summary"] == {"added": 2, "removed": 2, "changed": 8, "renamed": 3, "recreated": 1}
    assert err == ""
    assert run(["diff", "--exit-code", "--format", "json", "old", "new"]) == 2
    capsys.readouterr()
    assert run(["diff", "--exit-code", "old", "old"]) == 0
    assert out_err(capsys)[0].rstrip().endswith("No changes.")


def test_text_is_the_default_and_has_no_colour_when_piped(
    pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["diff", str(pair[0]), str(pair[1])]) == 0
    out, _ = out_err(capsys)
    assert "\x1b[" not in out
    assert out.rstrip().endswith("Catalog: 2 added, 2 removed, 8 changed, 3 renamed, 1 re-created.")


@pytest.mark.parametrize("kinds", [["event"], ["events"], ["--kind", "metrics", "-k", "event"]])
def test_kind_filter(
    pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str], kinds: list[str]
) -> None:
    args = kinds if kinds[0] == "--kind" else ["--kind", *kinds]
    assert run(["diff", "-f", "json", *args, str(pair[0]), str(pair[1])]) == 0
    got = {c["kind"] for c in json.loads(out_err(capsys)[0])["changes"]}
    assert got <= {"event", "metric"} and "event" in got


def test_bad_kind_and_format_are_one_line_errors(
    pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["diff", "--kind", "evnts", str(pair[0]), str(pair[1])]) == 1
    _, err = out_err(capsys)
    assert err.count("\n") == 1 and "evnts" in err
    assert run(["diff", "--format", "yaml", str(pair[0]), str(pair[1])]) == 1
    _, err = out_err(capsys)
    assert err.count("\n") == 1 and "--format" in err


def test_github_format_appends_markdown_to_the_step_summary(
    pair: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("# before\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert run(["diff", "--format", "github", str(pair[0]), str(pair[1])]) == 0
    out, _ = out_err(capsys)
    assert all(re.match(r"::(error|warning|notice) title=", line) for line in out.splitlines())
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("# before\n## kmsnap: catalog changes")


def test_missing_snapshot_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(["diff", "nope", "nope2"]) == 1
    _, err = out_err(capsys)
    assert err.count("\n") == 1 and "nope" in err


# --- untrusted input ------------------------------------------------------------------

BOMB = "- &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"- &a{i} [{', '.join([f'*a{i - 1}'] * 8)}]\n" for i in range(1, 10)
)

HOSTILE_FILES = {
    "alias bomb": BOMB,
    "python tag": "- id: x\n  name: !!python/object/apply:os.system ['echo pwned']\n",
    "broken yaml": "- id: x\n  name: [unclosed\n",
    "not a list": "id: x\nname: y\n",
}


@pytest.mark.parametrize("case", sorted(HOSTILE_FILES))
def test_untrusted_snapshot_is_refused_with_file_and_line(
    pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str], case: str
) -> None:
    target = next(pair[1].rglob("events.yaml"))
    target.write_text(HOSTILE_FILES[case], encoding="utf-8")
    assert run(["diff", str(pair[0]), str(pair[1])]) == 1
    out, err = out_err(capsys)
    assert out == ""
    assert err.count("\n") == 1, err
    assert "events.yaml" in err
    if case != "not a list":
        assert re.search(r"events\.yaml:\d+", err), err
    assert "pwned" not in out


def test_huge_snapshot_file_is_refused(
    pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    target = next(pair[1].rglob("events.yaml"))
    with target.open("w", encoding="utf-8") as handle:
        line = "- {id: x, name: " + "a" * 1000 + "}\n"
        for _ in range(70_000):  # ~70 MB: past the store's per-file bound
            handle.write(line)
    assert run(["diff", str(pair[0]), str(pair[1])]) == 1
    _, err = out_err(capsys)
    assert err.count("\n") == 1 and "events.yaml" in err


# --- REV:PATH -------------------------------------------------------------------------


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def test_rev_path_against_a_real_repository(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = sample_pair()
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    save_snapshot(old, repo / "snapshots")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "old")
    save_snapshot(new, repo / "snapshots")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "new")
    monkeypatch.chdir(repo)

    assert run(["diff", "-f", "json", "HEAD~1:snapshots", "HEAD:snapshots"]) == 0
    from_git = json.loads(out_err(capsys)[0])
    assert (from_git["old"], from_git["new"]) == ("HEAD~1:snapshots", "HEAD:snapshots")
    assert run(["diff", "-f", "json", "HEAD~1:snapshots", "snapshots"]) == 0
    mixed = json.loads(out_err(capsys)[0])
    assert mixed["changes"] == from_git["changes"]
    assert mixed["summary"]["recreated"] == 1

    assert run(["diff", "HEAD~5:snapshots", "snapshots"]) == 1
    _, err = out_err(capsys)
    assert err.count("\n") == 1 and "HEAD~5" in err


def test_max_chars_keeps_the_markdown_within_it_and_says_what_is_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = sample_pair()
    for i in range(300):
        new.entities["event"][f"n{i:03}"] = {
            "id": f"n{i:03}", "product_id": "prod-1", "name": f"New event {i} " + "x" * 40
        }
    save_snapshot(old, tmp_path / "old")
    save_snapshot(new, tmp_path / "new snap")
    monkeypatch.chdir(tmp_path)
    assert run(["diff", "--format", "markdown", "old", "new snap"]) == 0
    full = out_err(capsys)[0]
    assert "not shown" not in full and len(full) > 5000
    assert run(["diff", "--format", "markdown", "--max-chars", "5000", "old", "new snap"]) == 0
    out = out_err(capsys)[0]
    assert len(out.encode("utf-16-le")) // 2 <= 5000
    assert re.search(r"\*\*\d+ of 316 changes are not shown\*\*", out)
    assert "`kmsnap diff --format text old 'new snap'`" in out
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert run(["diff", "-f", "github", "--max-chars", "5000", "old", "new snap"]) == 0
    assert len(summary.read_text(encoding="utf-8")) <= 5001 and "not shown" in summary.read_text()
    capsys.readouterr()
    assert run(["diff", "--format", "text", "--max-chars", "5000", "old", "new snap"]) == 1
    assert "--max-chars" in out_err(capsys)[1]
    assert run(["diff", "--format", "markdown", "--max-chars", "10", "old", "new snap"]) == 1
    assert "too small" in out_err(capsys)[1]


def test_reports_say_which_fields_kmsnap_yaml_ignores_and_why(
    pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (pair[0].parent / "kmsnap.yaml").write_text(
        "ignore_fields:\n"
        "  property:\n"
        "    is_visible: toggled by the <b>@ops</b> team\n"
        "  event:\n"
        "    - field: description\n"
        "      reason: edited freely by marketing\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(pair[0].parent)
    assert run(["diff", "old", "new"]) == 0
    text = out_err(capsys)[0].rstrip().splitlines()
    assert text[-3].startswith("Catalog: ")
    assert text[-2:] == [
        "Ignored by kmsnap.yaml: event.description — edited freely by marketing",
        "Ignored by kmsnap.yaml: property.is_visible — toggled by the <b>@ops</b> team",
    ]
    assert run(["diff", "--format", "markdown", "old", "new"]) == 0
    md = out_err(capsys)[0]
    assert "Ignored by kmsnap.yaml" in md
    assert "property\\.is\\_visible — toggled by the &lt;b&gt;@\u200bops&lt;/b&gt; team" in md
    assert "event\\.description — edited freely by marketing" in md
    summary = pair[0].parent / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert run(["diff", "--format", "github", "old", "new"]) == 0
    assert "event\\.description — edited freely by marketing" in summary.read_text(encoding="utf-8")
    # No changes at all still says what was not compared; --kind keeps only its kinds.
    assert run(["diff", "--kind", "event", "old", "old"]) == 0
    assert out_err(capsys)[0].rstrip().splitlines()[-2:] == [
        "No changes.",
        "Ignored by kmsnap.yaml: event.description — edited freely by marketing",
    ]
    # JSON stays schema v1 as it was.
    assert run(["diff", "--format", "json", "old", "new"]) == 0
    assert list(json.loads(out_err(capsys)[0])) == [
        "schema_version", "old", "new", "summary", "changes"
    ]


def test_a_plain_diff_starts_without_typer_yaml_or_the_lint_sections(
    pair: tuple[Path, Path],
) -> None:
    # The start-up a small diff pays: its fast path imports none of these (kmsnap.cli._fast).
    # PyYAML is made unimportable rather than looked for, as deepdiff 8.0 (the floor) imports
    # it when it can and goes on without it: the diff must work and say the same without it.
    code = (
        "import sys\nsys.modules['yaml'] = None\nfrom kmsnap.cli import run\n"
        "rc = run(['diff', '--exit-code', sys.argv[1], sys.argv[2]])\n"
        "heavy = ('typer', 'kmsnap.lint.accept', 'kmsnap.lint.governance',"
        " 'kmsnap.snapshot.atomic', 'kmsnap.snapshot.strict', 'kmsnap.cli.diff')\n"
        "print(rc, [m for m in heavy if m in sys.modules], file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(pair[0]), str(pair[1])],
                          capture_output=True, text=True, cwd=pair[0].parent, check=True)
    assert proc.stderr.strip().splitlines()[-1] == "2 []"
    assert "Catalog:" in proc.stdout


def test_the_fast_path_and_typer_give_the_same_report_and_status(
    pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(pair[0].parent)
    # --max-chars at its default sends the same diff through typer's parsing
    fast = run(["diff", "--exit-code", "--format", "markdown", "old", "new"]), out_err(capsys)
    typed = run(["diff", "--exit-code", "--format", "markdown", "--max-chars", "65536", "old",
                 "new"]), out_err(capsys)
    assert fast == typed
    assert fast[0] == 2
    assert fast[1][0].startswith("## kmsnap: catalog changes\n"), fast[1][0][:200]
