"""kmsnap lint: every rule on a hand-written catalog (exact findings), the lint: section of
kmsnap.yaml with file:line errors, suppressions, --new-only against a real git history, every
format with hostile names, exit codes and deterministic output."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kmsnap.cli import Environment, run
from kmsnap.config import ConfigError, load_config
from kmsnap.diff.changeset import Change, ChangeSet
from kmsnap.lint.accept import accept_changes, judge_changes
from kmsnap.lint.acceptance import Acceptance
from kmsnap.lint.config import LintConfig
from kmsnap.lint.engine import Finding, LintResult, lint_snapshot, run_rules
from kmsnap.lint.report import JSON_SCHEMA, JSON_VERSION, Report, render_markdown, render_report
from kmsnap.lint.rules import META_RULES, RULES
from kmsnap.model import ChangeType, Record, Severity, Snapshot
from kmsnap.snapshot.store import save_snapshot

ROOT = Path(__file__).resolve().parent.parent
TODAY = dt.date(2026, 5, 4)
GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_DATE": "2026-05-01T10:00:00Z",
    "GIT_COMMITTER_DATE": "2026-05-01T10:00:00Z",
}


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV, "HOME": str(repo.parent)}
    proc = subprocess.run(
        ["git", "-c", "user.name=Ada", "-c", "user.email=ada@example.com",
         "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],
        cwd=repo, env=env, capture_output=True, check=True, text=True,
    )
    return proc.stdout


def event(eid: str, name: Any, **fields: Any) -> Record:
    record: Record = {"id": eid, "product_id": "p1", "name": name, "display_name": "Shown",
                      "description": "Said", "is_visible": True}
    record.update(fields)
    return record


def catalog(*records: tuple[str, Record], second_product: bool = False) -> Snapshot:
    snap = Snapshot(api="http://127.0.0.1:1/core")
    snap.add("account", {"id": "a1", "name": "Acme"})
    snap.add("product", {"id": "p1", "account_id": "a1", "name": "Web"})
    if second_product:
        snap.add("product", {"id": "p2", "account_id": "a1", "name": "Mobile"})
    for kind, record in records:
        snap.add(kind, record)
    return snap


def keys(findings: list[Finding]) -> list[tuple[str, str, str]]:
    return [f.key for f in findings]


def config_from(tmp_path: Path, text: str) -> Any:
    (tmp_path / "kmsnap.yaml").write_text(text, encoding="utf-8")
    return load_config(cwd=tmp_path)


def lint_cfg(tmp_path: Path, text: str) -> LintConfig:
    cfg = config_from(tmp_path, text).lint
    assert isinstance(cfg, LintConfig)
    return cfg


# --- each rule: a positive and a negative example ---------------------------------------


def test_name_collision_within_a_product_not_across_unless_asked(tmp_path: Path) -> None:
    snap = catalog(("event", event("e1", "Signed Up")), ("event", event("e2", "signed_up")),
                   ("event", event("e3", "signed-up", product_id="p2")),
                   ("event", event("e4", "Signed In")), second_product=True)
    found = run_rules(snap, LintConfig())
    assert keys(found) == [("name-collision", "event", "e1"), ("name-collision", "event", "e2")]
    assert [r.id for r in found[0].related] == ["e2"]
    across = lint_cfg(tmp_path, "lint:\n  rules:\n    name-collision: {across_products: true}\n")
    got = [f.id for f in run_rules(snap, across) if f.rule == "name-collision"]
    assert got == ["e3", "e1", "e2"]  # product "Mobile" before "Web"


def test_name_whitespace(tmp_path: Path) -> None:
    snap = catalog(("event", event("e1", " Lead")), ("event", event("e2", "Trail ")),
                   ("event", event("e3", "Two  Spaces")), ("event", event("e4", "Fine Name")))
    assert [f.id for f in run_rules(snap, LintConfig()) if f.rule == "name-whitespace"] == [
        "e1", "e2", "e3"]


def test_name_control_and_empty() -> None:
    snap = catalog(("event", event("e1", "line\nbreak")), ("event", event("e2", "rtl\u202e")),
                   ("event", event("e3", "")), ("event", event("e4", "   ")),
                   ("event", event("e5", None)), ("event", event("e6", "Clean")))
    found = run_rules(snap, LintConfig())
    assert sorted(f.id for f in found if f.rule == "name-control") == ["e1", "e2"]
    assert sorted(f.id for f in found if f.rule == "name-empty") == ["e3", "e4", "e5"]
    assert all(f.severity == "error" for f in found if f.rule in ("name-control", "name-empty"))


@pytest.mark.parametrize(
    ("spec", "good", "bad"),
    [
        ("snake_case", "signed_up", "Signed Up"),
        ("title_case", "Signed Up for the Plan", "signed up"),
        ("{preset: object_action, objects: [Order, Product], actions: [Completed, Viewed]}",
         "Product Viewed", "Viewed Product"),
        ("{preset: object_action}", "Account Created", "Created"),
        ("{regex: '^[a-z]+:[a-z_]+$', message: 'is not area:action'}", "web:signed_up",
         "Signed Up"),
    ],
)
def test_naming_convention(tmp_path: Path, spec: str, good: str, bad: str) -> None:
    cfg = lint_cfg(tmp_path, f"lint:\n  naming:\n    event: {spec}\n")
    snap = catalog(("event", event("e1", good)), ("event", event("e2", bad)))
    found = [f for f in run_rules(snap, cfg) if f.rule == "naming-convention"]
    assert [f.id for f in found] == ["e2"]
    if "regex" in spec:
        assert found[0].message == "is not area:action"
    assert not [f for f in run_rules(snap, LintConfig()) if f.rule == "naming-convention"]


def test_missing_description_and_display_name() -> None:
    snap = catalog(("event", event("e1", "A", description=None, display_name="")),
                   ("event", event("e2", "B")),
                   ("metric", {"id": "m1", "product_id": "p1", "title": "Rate",
                               "description": "  ", "unit_type": "percent"}),
                   ("report", {"id": "r1", "product_id": "p1", "name": "Funnel"}))
    found = run_rules(snap, LintConfig())
    assert keys(found) == [("missing-description", "event", "e1"),
                           ("missing-description", "metric", "m1"),
                           ("missing-display-name", "event", "e1")]


def test_property_type_and_metric_unit() -> None:
    snap = catalog(
        ("property", {"id": "x1", "product_id": "p1", "name": "Plan", "display_name": "Plan",
                      "description": "d", "type": None}),
        ("property", {"id": "x2", "product_id": "p1", "name": "Seats", "display_name": "S",
                      "description": "d", "type": "number"}),
        ("metric", {"id": "m1", "product_id": "p1", "title": "Rate", "description": "d"}),
        ("metric", {"id": "m2", "product_id": "p1", "title": "Revenue", "description": "d",
                    "unit_type": "currency"}),
    )
    assert keys(run_rules(snap, LintConfig())) == [
        ("property-type-missing", "property", "x1"), ("metric-unit-missing", "metric", "m1")]


def test_ga4_rules_are_off_by_default_and_on_with_the_preset(tmp_path: Path) -> None:
    snap = catalog(("event", event("e1", "session_start")), ("event", event("e2", "_private")),
                   ("event", event("e3", "Signed Up")), ("event", event("e4", "x" * 41)),
                   ("event", event("e5", "signed_up")))
    assert not [f for f in run_rules(snap, LintConfig()) if f.rule.startswith("ga4")]
    found = run_rules(snap, lint_cfg(tmp_path, "lint:\n  presets: [ga4]\n"))
    assert sorted(f.key for f in found if f.rule.startswith("ga4")) == [
        ("ga4-name-format", "event", "e2"), ("ga4-name-format", "event", "e3"),
        ("ga4-name-format", "event", "e4"),
        ("ga4-reserved-name", "event", "e1"), ("ga4-reserved-name", "event", "e2")]
    longer = lint_cfg(tmp_path, "lint:\n  rules:\n    ga4-name-format: {enabled: true, "
                                "max_length: 50}\n")
    assert sorted(f.id for f in run_rules(snap, longer) if f.rule == "ga4-name-format") == [
        "e2", "e3"]


def test_rules_off_severity_and_excludes(tmp_path: Path) -> None:
    snap = catalog(("event", event("e1", " A", description=None)),
                   ("event", event("e2", " B", description=None)),
                   ("event", event("e3", "tmp_x", description=None)))
    cfg = lint_cfg(tmp_path, (
        "lint:\n"
        "  rules:\n"
        "    missing-description: off\n"
        "    name-whitespace: {severity: error, exclude: {ids: [e2]}}\n"
        "  exclude:\n"
        "    names: ['tmp_*']\n"
    ))
    found = run_rules(snap, cfg)
    assert keys(found) == [("name-whitespace", "event", "e1")]
    assert found[0].severity == "error"
    assert not run_rules(snap, lint_cfg(tmp_path, "lint:\n  exclude: {products: [Web]}\n"))


# --- configuration errors with file:line -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("lint:\n  rulez: {}\n", 2, "unknown key 'rulez' in 'lint' (did you mean 'rules'?)"),
        ("lint:\n  rules:\n    name-colision: off\n", 3, "unknown rule 'name-colision'"),
        ("lint:\n  rules:\n    name-empty: {severity: fatal}\n", 3, "must be one of error"),
        ("lint:\n  rules:\n    name-empty: {max_length: 3}\n", 3, "unknown key 'max_length'"),
        ("lint:\n  naming:\n    event: camelCase\n", 3, "unknown naming preset"),
        ("lint:\n  naming:\n    events: snake_case\n", 3, "unknown kind 'events'"),
        ("lint:\n  naming:\n    event: {regex: '('}\n", 3, "not a valid pattern"),
        ("lint:\n  naming:\n    event: {regex: 'x'}\n", 3, "needs a message"),
        ("lint:\n  presets: [ga5]\n", 2, "unknown preset 'ga5'"),
        ("lint:\n  suppress:\n    - {rule: name-empty, id: e1}\n", 3, "needs a reason"),
        ("lint:\n  suppress:\n    - {rule: name-empty, id: e1, reason: '  '}\n", 3,
         "needs a reason"),
        ("lint:\n  suppress:\n    - rule: nope\n      id: e1\n      reason: r\n", 3,
         "needs the id of a rule"),
        ("lint:\n  suppress:\n    - rule: name-empty\n      reason: r\n", 3, "needs the id of"),
        ("lint:\n  suppress:\n    - {rule: name-empty, id: e, reason: r, expires: soon}\n", 3,
         "must be a date"),
        ("lint:\n  suppress:\n    - {rule: name-empty, id: e, reason: r, until: 2026-01-01}\n",
         3, "unknown key 'until'"),
        ("stale:\n  kinds:\n    event: {stopped_after_days: -1}\n", 3, "number of days"),
        ("stale:\n  stoped_after_days: 3\n", 2, "unknown key 'stoped_after_days'"),
    ],
)
def test_config_errors_name_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, line: int, words: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        config_from(tmp_path, text)
    message = str(caught.value)
    assert message.startswith(f"kmsnap.yaml:{line}: "), message
    assert words in message


# --- suppressions -----------------------------------------------------------------------


def test_suppressions_apply_expire_and_report_unmatched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    snap = catalog(("event", event("e1", "", description="d")),
                   ("event", event("e2", "")), ("event", event("e3", "")))
    cfg = lint_cfg(tmp_path, (
        "lint:\n"
        "  suppress:\n"
        "    - {rule: name-empty, id: e1, reason: 'legacy import, ticket 12'}\n"
        "    - {rule: name-empty, id: e2, reason: until the cleanup, expires: 2026-01-31}\n"
        "    - {rule: name-empty, id: e3, kind: event, reason: later, expires: 2026-12-31}\n"
        "    - {rule: name-control, id: nothing-here, reason: stale entry}\n"
    ))
    result = lint_snapshot(snap, cfg, today=TODAY)
    assert [(f.id, f.reason) for f in result.suppressed] == [
        ("e1", "legacy import, ticket 12"), ("e3", "later")]
    assert keys(result.findings) == [
        ("name-empty", "event", "e2"),
        ("suppression-expired", "suppression", "e2"),
        ("suppression-unused", "suppression", "nothing-here"),
    ]
    expired = result.findings[1]
    assert "expired on 2026-01-31" in expired.message and "kmsnap.yaml:4" in expired.message
    assert "kmsnap.yaml:6" in result.findings[2].message
    # The day after its expiry the last one stops applying too.
    later = lint_snapshot(snap, cfg, today=dt.date(2027, 1, 1))
    assert [f.id for f in later.suppressed] == ["e1"]


# --- the command: formats, hostile names, exit codes --------------------------------------

HOSTILE = ("<img src=x onerror=alert(1)> **bold** `tick` [l](http://x) @team\n"
           "::error::forged\r\n| cell | %0A")


def command(cwd: Path, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdout=out, stderr=err, environ={"NO_COLOR": "1"}, cwd=cwd)
    status = run(list(args), env=env)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def hostile_dir(tmp_path: Path) -> Path:
    snap = catalog(("event", event("e1", HOSTILE)), ("event", event("e2", "ok", description=None)))
    save_snapshot(snap, tmp_path / "snapshots")
    return tmp_path


def _assert_inert_lines(text: str) -> None:
    for line in text.splitlines():
        assert not line.startswith("::") or line.startswith(("::error title=", "::notice title=",
                                                             "::warning title="))
        assert "forged" not in line or not line.startswith("::error::")


def test_text_format_and_exit_codes(hostile_dir: Path) -> None:
    status, out, err = command(hostile_dir, "lint", "--as-of", "2026-05-04")
    assert status == 2 and err == ""
    assert out.startswith("kmsnap lint: snapshots as of 2026-05-04\n")
    assert r'\n::error::forged' in out and "\r" not in out
    assert len([line for line in out.splitlines() if "forged" in line]) == 2  # control, spaces
    assert out.rstrip().endswith("3 findings: 1 error, 1 warning, 1 info.")
    assert command(hostile_dir, "lint", "--fail-on", "never")[0] == 0
    assert command(hostile_dir, "lint", "--kind", "metric")[0] == 0
    assert command(hostile_dir, "lint", "--kind", "events", "--fail-on", "info")[0] == 2
    status, _, err = command(hostile_dir, "lint", "--fail-on", "fatal")
    assert status == 1 and "--fail-on: unknown level 'fatal'" in err
    status, _, err = command(hostile_dir, "lint", "--new-only")
    assert status == 1 and "--new-only and --base go together" in err
    status, _, err = command(hostile_dir, "lint", "--kind", "account")
    assert status == 1 and "--kind: account is not one of" in err
    status, _, err = command(hostile_dir, "lint", "nowhere")
    assert status == 1 and "nowhere" in err and err.count("\n") == 1


def test_output_is_deterministic(hostile_dir: Path) -> None:
    for fmt in ("text", "markdown", "json", "github"):
        first = command(hostile_dir, "lint", "--format", fmt, "--as-of", "2026-05-04")
        assert first == command(hostile_dir, "lint", "--format", fmt, "--as-of", "2026-05-04")


def test_markdown_is_inert(hostile_dir: Path) -> None:
    _, out, _ = command(hostile_dir, "lint", "--format", "markdown")
    assert "<img" not in out and "&lt;img" in out
    assert "**bold**" not in out and "`tick`" not in out and "[l](" not in out
    assert "@\u200bteam" in out and "@team" not in out
    assert "\n::" not in out and "| cell |" not in out
    bullets = [line for line in out.splitlines() if line.startswith("- ")]
    assert len(bullets) == 3 and all("forged" in b or "ok" in b for b in bullets)


def test_github_annotations_are_inert(hostile_dir: Path) -> None:
    _, out, _ = command(hostile_dir, "lint", "--format", "github")
    lines = out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("::error title=kmsnap lint%3A name-control (error)::event ")
    _assert_inert_lines(out)
    assert "%0A" not in out.replace("%250A", "")  # the name's own %0A is escaped as %250A
    assert "%250A" in out and "\r" not in out


def test_json_has_a_versioned_schema_and_whole_values(hostile_dir: Path) -> None:
    _, out, _ = command(hostile_dir, "lint", "--format", "json", "--as-of", "2026-05-04")
    doc = json.loads(out)
    assert (doc["schema"], doc["version"]) == (JSON_SCHEMA, JSON_VERSION)
    assert list(doc) == ["schema", "version", "command", "snapshot", "base", "as_of",
                         "summary", "findings", "suppressed"]
    assert doc["summary"] == {"error": 1, "warning": 1, "info": 1, "suppressed": 0}
    assert doc["findings"][0]["name"] == HOSTILE
    assert doc["findings"][0]["rule"] == "name-control"


def test_markdown_stays_within_its_bound_with_thousands_of_findings() -> None:
    findings = [Finding("name-empty", "error", "event", f"id-{i:05}", "x" * 400, "has no name",
                        "p1", "<b>Web</b>") for i in range(5000)]
    report = Report("lint", "snapshots", LintResult(findings=findings))
    text = render_markdown(report, limit=65536)
    assert len(text) <= 65536
    assert re.search(r"and \d[\d,]* more findings not shown", text)
    small = render_markdown(report, limit=5000)
    assert len(small) <= 5000 and "kmsnap lint --format text" in small


def test_render_report_refuses_an_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        render_report(Report("lint", "s", LintResult()), "yaml")


# --- --new-only against a real git history -----------------------------------------------


def test_new_only_reports_what_the_branch_adds(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet")
    base = catalog(("event", event("e1", " Old Space")), ("event", event("e2", "Fine")))
    save_snapshot(base, repo / "snapshots")
    (repo / "kmsnap.yaml").write_text(
        "lint:\n  suppress:\n    - {rule: name-empty, id: e9, reason: migrating}\n",
        encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "base")
    new = catalog(("event", event("e1", " Old Space renamed")), ("event", event("e2", "Fine ")),
                  ("event", event("e3", "Signed Up")), ("event", event("e4", "signed_up")),
                  ("event", event("e9", "")))
    save_snapshot(new, repo / "snapshots")
    status, out, err = command(repo, "lint", "--new-only", "--base", "HEAD:snapshots",
                               "--format", "json", "--fail-on", "warning")
    assert err == "" and status == 2
    doc = json.loads(out)
    assert doc["base"] == "HEAD:snapshots"
    assert [(f["rule"], f["id"]) for f in doc["findings"]] == [
        ("name-collision", "e3"), ("name-collision", "e4"), ("name-whitespace", "e2")]
    assert [(f["rule"], f["id"]) for f in doc["suppressed"]] == [("name-empty", "e9")]
    # Without --new-only the old finding (e1 renamed, same id) is there too.
    _, out, _ = command(repo, "lint", "--format", "json")
    assert ("name-whitespace", "e1") in [(f["rule"], f["id"]) for f in json.loads(out)["findings"]]
    status, _, err = command(repo, "lint", "--new-only", "--base", "nope:snapshots")
    assert status == 1 and "nope" in err


def test_emulator_catalog_lints(tmp_path: Path) -> None:
    from kmsnap.emulator.generate import generate_catalog

    cat = generate_catalog(size=200, seed=0)
    snap = Snapshot(api="http://127.0.0.1:1/core")
    for kind in ("account", "product", "report", "event", "property", "metric"):
        for record in cat.records.get(kind, {}).values():
            snap.add(kind, dict(record))
    first = lint_snapshot(snap, LintConfig(), today=TODAY)
    assert first.findings and first.findings == lint_snapshot(snap, LintConfig(),
                                                              today=TODAY).findings
    assert {f.rule for f in first.findings} <= set(RULES)


# --- documentation ----------------------------------------------------------------------


def test_every_rule_is_documented() -> None:
    doc = (ROOT / "docs" / "lint-rules.md").read_text(encoding="utf-8")
    for rule in (*RULES.values(), *META_RULES.values()):
        section = doc.split(f"### `{rule.id}`", 1)
        assert len(section) == 2, f"docs/lint-rules.md has no section for {rule.id}"
        assert f"severity: **{rule.severity}**" in section[1].split("\n### ", 1)[0]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/lint-rules.md" in readme


def test_the_documented_configuration_is_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = (ROOT / "docs" / "lint-rules.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", doc, re.S)
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    config = config_from(tmp_path, "".join(blocks))
    assert config.lint.presets == ("ga4",) and len(config.lint.suppress) == 1
    assert config.stale.kinds["property"].unused_after_days == 180


# --- accepted changes (accept:) ---------------------------------------------------------

def _change(eid: str, change: ChangeType, *fields: str) -> Change:
    return Change("event", change, eid, "N", "a1", "p1", Severity.BREAKING,
                  fields={f: {"old": 1, "new": 2} for f in fields} or None)


def test_acceptances_match_whole_changes_or_every_changed_field() -> None:
    removed = _change("e1", ChangeType.REMOVED)
    two_fields = _change("e2", ChangeType.CHANGED, "is_visible", "description")
    one_field = _change("e3", ChangeType.CHANGED, "is_visible")
    later = dt.date(2027, 1, 1)
    accepts = [
        Acceptance("event", "e1", "removed", "retired", "Ann"),
        Acceptance("event", "e2", "changed", "hidden on purpose", "Ann", field="is_visible"),
        Acceptance("event", "e3", "changed", "hidden on purpose", "Ann", field="is_visible",
                   expires=dt.date(2026, 1, 1)),
        Acceptance("event", "e9", "removed", "nothing", "Bob", expires=later),
    ]
    judged = judge_changes([removed, two_fields, one_field], accepts, today=TODAY)
    assert [(c.id, a.reason) for c, a in judged.accepted] == [("e1", "retired")]
    assert [c.id for c in judged.remaining] == ["e2", "e3"]  # e2: description not accepted
    assert [a.id for a in judged.expired] == ["e3"]
    assert [a.id for a in judged.unmatched] == ["e2", "e9"]
    both = [*accepts, Acceptance("event", "e2", "changed", "ok", "Cy", field="description")]
    judged = judge_changes([two_fields], both, today=TODAY)
    assert [c.id for c, _ in judged.accepted] == ["e2"] and not judged.remaining


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("{kind: event, id: e1, change: removed, by: Ann}", "needs a reason"),
        ("{kind: event, id: e1, change: removed, reason: r}", "needs who accepted"),
        ("{kind: event, id: e1, change: deleted, reason: r, by: Ann}", "needs a change"),
        ("{kind: evnt, id: e1, change: removed, reason: r, by: Ann}", "needs a kind"),
        ("{kind: event, change: removed, reason: r, by: Ann}", "needs the id"),
        ("{kind: event, id: e1, change: removed, field: name, reason: r, by: Ann}",
         "'field' goes with change: changed"),
        ("{kind: event, id: e1, change: removed, reason: r, by: Ann, when: x}",
         "unknown key 'when'"),
    ],
)
def test_accept_config_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entry: str, words: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        config_from(tmp_path, f"fail_on: any\naccept:\n  - {entry}\n")
    assert str(caught.value).startswith("kmsnap.yaml:3: ") and words in str(caught.value)


def _two_snapshots(root: Path) -> None:
    old = catalog(("event", event("e1", "Gone")), ("event", event("e2", "<b>Hidden</b> @x")),
                  ("event", event("e3", "Stays")))
    new = catalog(("event", event("e2", "<b>Hidden</b> @x", is_visible=False)),
                  ("event", event("e3", "Stays")))
    save_snapshot(old, root / "old")
    save_snapshot(new, root / "new")


ACCEPT = (
    "accept:\n"
    "  - {kind: event, id: e1, change: removed, reason: 'retired <with> the v1 app', by: Ann}\n"
    "  - {kind: event, id: e2, change: changed, field: is_visible, reason: r, by: Bob,\n"
    "     expires: 2000-01-01}\n"
    "  - {kind: metric, id: m9, change: added, reason: not yet, by: Cy}\n"
)


def test_diff_shows_accepted_changes_in_their_own_section(tmp_path: Path) -> None:
    _two_snapshots(tmp_path)
    (tmp_path / "kmsnap.yaml").write_text(ACCEPT, encoding="utf-8")
    status, out, err = command(tmp_path, "diff", "old", "new")
    assert status == 0 and err == ""
    report, section = out.split("\nAccepted changes (1, kmsnap.yaml accept:)\n")
    assert '"Gone"' not in report and '"Gone"' in section
    assert "retired <with> the v1 app (accepted by Ann)" in section
    assert "kmsnap.yaml:3: acceptance of event [e2] changed field is_visible expired on " \
           "2000-01-01; the change counts again" in section
    assert "kmsnap.yaml:5: acceptance of metric [m9] added matches no change" in section
    _, md, _ = command(tmp_path, "diff", "old", "new", "--format", "markdown")
    assert "### Accepted changes \\(1, kmsnap\\.yaml accept\\:\\)" in md
    assert "&lt;with&gt;" in md and "<with>" not in md and "<b>" not in md
    _, gh, _ = command(tmp_path, "diff", "old", "new", "--format", "github")
    assert "::notice title=kmsnap%3A accepted change::" in gh
    assert gh.count("::warning title=kmsnap%3A acceptance") == 2
    _, js, _ = command(tmp_path, "diff", "old", "new", "--format", "json")
    assert len(json.loads(js)["changes"]) == 2  # json keeps every change
    _, md, _ = command(tmp_path, "diff", "old", "new", "--format", "markdown", "--max-chars",
                       "1000")
    assert len(md) <= 1001


def test_check_does_not_fail_on_an_accepted_change(
    make_emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kmsnap.emulator import Catalog

    records = {"account": {"a1": {"id": "a1", "name": "Acme"}},
               "product": {"p1": {"id": "p1", "account_id": "a1", "name": "Web"}},
               "event": {"e1": event("e1", "Gone"), "e3": event("e3", "Stays")}}
    emu = make_emulator(Catalog(records), token="tok")
    env = {"NO_COLOR": "1", "KISSMETRICS_TOKEN": "tok", "KMSNAP_API": emu.base_url}

    def kmsnap(*args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        status = run(list(args), env=Environment(stdout=out, stderr=err, environ=env,
                                                 cwd=tmp_path))
        return status, out.getvalue(), err.getvalue()

    assert kmsnap("pull", "--quiet")[0] == 0
    emu.catalog.remove("event", "e1")
    assert kmsnap("check", "--quiet", "--fail-on", "breaking")[0] == 2
    (tmp_path / "kmsnap.yaml").write_text(
        "accept:\n  - {kind: event, id: e1, change: removed, reason: retired, by: Ann}\n",
        encoding="utf-8")
    status, out, err = kmsnap("check", "--quiet", "--fail-on", "breaking")
    assert status == 0 and "retired (accepted by Ann)" in out and "drift" not in err
    (tmp_path / "kmsnap.yaml").write_text(
        "accept:\n  - {kind: event, id: e1, change: removed, reason: retired, by: Ann,\n"
        "     expires: 2001-02-03}\n", encoding="utf-8")
    status, out, _ = kmsnap("check", "--quiet", "--fail-on", "breaking")
    assert status == 2 and "expired on 2001-02-03" in out


def test_accept_changes_leaves_a_change_set_alone_without_acceptances() -> None:
    cs = ChangeSet(old_label="a", new_label="b", changes=[_change("e1", ChangeType.REMOVED)])
    result = accept_changes(cs, (), "markdown", 65536)
    assert result.shown is cs and result.section == "" and result.counted == cs.changes


# --- hide before remove (hide_before_remove_days) ---------------------------------------


def test_removing_an_entity_hidden_long_enough_is_a_warning(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet")

    def commit(message: str, date: str, *records: tuple[str, Record]) -> None:
        save_snapshot(catalog(*records), repo / "snapshots")
        env = {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
        git(repo, "add", "-A")
        subprocess.run(["git", "-c", "user.name=Ada", "-c", "user.email=a@example.com",
                        "-c", "commit.gpgsign=false", "commit", "--quiet", "-m", message],
                       cwd=repo, env={**os.environ, **GIT_ENV, **env}, check=True)

    recent = (dt.date.today() - dt.timedelta(days=2)).isoformat() + "T10:00:00Z"
    visible = event("e1", "Old"), event("e2", "Newer"), event("e3", "Kept")
    commit("all visible", "2020-01-01T10:00:00Z", *(("event", r) for r in visible))
    commit("hide e1", "2020-01-02T10:00:00Z", ("event", event("e1", "Old", is_visible=False)),
           ("event", visible[1]), ("event", visible[2]))
    commit("hide e2", recent, ("event", event("e1", "Old", is_visible=False)),
           ("event", event("e2", "Newer", is_visible=False)), ("event", visible[2]))
    save_snapshot(catalog(("event", visible[2])), repo / "snapshots")  # both removed

    def severities() -> dict[str, str]:
        status, out, err = command(repo, "diff", "HEAD:snapshots", "snapshots", "--format",
                                   "json")
        assert status == 0 and err == "", err
        return {c["id"]: c["severity"] for c in json.loads(out)["changes"]}

    assert severities() == {"e1": "breaking", "e2": "breaking"}  # off unless set
    (repo / "kmsnap.yaml").write_text("hide_before_remove_days: 30\n", encoding="utf-8")
    assert severities() == {"e1": "warning", "e2": "breaking"}
    (repo / "kmsnap.yaml").write_text("hide_before_remove_days: 1\n", encoding="utf-8")
    assert severities() == {"e1": "warning", "e2": "warning"}
    (repo / "kmsnap.yaml").write_text("hide_before_remove_days: 0\n", encoding="utf-8")
    status, _, err = command(repo, "diff", "HEAD:snapshots", "snapshots")
    assert status == 1 and "kmsnap.yaml:1: 'hide_before_remove_days' must be a number of days" \
        in err


def test_hidden_since_forgets_an_entity_shown_again() -> None:
    from kmsnap.history.walk import Commit, LogEntry
    from kmsnap.lint.hidden import hidden_since

    def step(date: str, new: bool) -> LogEntry:
        change = Change("event", ChangeType.CHANGED, "e1", "N", "a1", "p1", Severity.WARNING,
                        fields={"is_visible": {"old": not new, "new": new}})
        return LogEntry(Commit("c" + date, None, date + "T00:00:00Z", "Ada", "s"), [change])

    assert hidden_since([step("2020-01-02", False)]) == {("event", "e1"): dt.date(2020, 1, 2)}
    assert hidden_since([step("2020-01-03", True), step("2020-01-02", False)]) == {}
    assert hidden_since([step("2020-01-04", False), step("2020-01-03", True),
                         step("2020-01-02", False)]) == {("event", "e1"): dt.date(2020, 1, 4)}


# --- the review comment's governance section -----------------------------------------------


def test_the_review_comment_shows_new_lint_findings_and_newly_stale(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet")
    old = catalog(("event", event("e1", " Old", last_sent_at="2026-05-01T00:00:00Z",
                                  first_sent_at="2026-01-01T00:00:00Z")))
    save_snapshot(old, repo / "snapshots", with_stats=True)
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "base")
    many = [("event", event(f"n{i:04}", f"<b>x</b> @y `{i}`", description=None,
                            first_sent_at="2020-01-01T00:00:00Z",
                            last_sent_at="2020-01-01T00:00:00Z")) for i in range(400)]
    new = catalog(("event", event("e1", " Old", last_sent_at="2026-05-01T00:00:00Z",
                                  first_sent_at="2026-01-01T00:00:00Z")), *many)
    save_snapshot(new, repo / "snapshots", with_stats=True)
    args = ("diff", "HEAD:snapshots", "snapshots", "--format", "markdown")
    _, plain, _ = command(repo, *args)
    assert "### Governance" not in plain  # only when kmsnap.yaml has a lint: section
    (repo / "kmsnap.yaml").write_text("lint: {}\n", encoding="utf-8")
    status, md, err = command(repo, *args)
    assert status == 0 and err == ""
    section = md.split("### Governance\n", 1)[1]
    assert "**New lint findings (400)**" in section and "**Newly stale (" in section
    assert "name-whitespace" not in section  # e1's finding is not new
    assert "<b>" not in md and "@y" not in md and "`1`" not in md
    assert "more: run `kmsnap lint --format text`" in section
    assert "more: run `kmsnap stale --format text`" in section
    assert "`stopped-sending`" in section.split("**Newly stale (")[1]
    assert len(md) <= 65536
    _, small, _ = command(repo, *args, "--max-chars", "4000")
    assert len(small) <= 4000 + 1 and "### Governance" in small
    _, text, _ = command(repo, "diff", "HEAD:snapshots", "snapshots")
    assert "Governance" not in text
