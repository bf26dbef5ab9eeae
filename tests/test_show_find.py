"""kmsnap show and kmsnap find: the predicate language (exact matches, negation, errors with a
suggestion), every format, one entity with its timeline from a real git repository,
ambiguous names, and hostile names kept inert."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest
from test_gitrev import git

from kmsnap.cli import run
from kmsnap.cli.environment import Environment
from kmsnap.emulator.generate import generate_catalog
from kmsnap.errors import UsageError
from kmsnap.export import build_table
from kmsnap.export.query import (
    filter_table,
    is_term,
    parse_query,
    parse_term,
    query_context,
    render_find_table,
)
from kmsnap.model import Snapshot
from kmsnap.snapshot.store import save_snapshot

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "a0000000-0000-4000-8000-000000000001"
WEB = "b0000000-0000-4000-8000-000000000001"
STAGING = "b0000000-0000-4000-8000-000000000002"
HOSTILE = "evil\n\x1b[31mred\x1b[0m"


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("KMSNAP_", "KISSMETRICS_", "GITHUB_")):
            monkeypatch.delenv(name)


def catalog(*, renamed: bool = False, hidden: bool = False, stats: bool = False) -> Snapshot:
    snap = Snapshot(api="http://127.0.0.1:1/core")
    snap.add("account", {"id": ACCOUNT, "name": "Acme"})
    snap.add("product", {"id": WEB, "account_id": ACCOUNT, "name": "Web App",
                         "environment": "production"})
    snap.add("product", {"id": STAGING, "account_id": ACCOUNT, "name": "Web App (staging)",
                         "environment": "staging"})
    old = "2026-01-01T00:00:00Z"
    new = "2026-06-01T00:00:00Z"
    snap.add("event", {"id": "e1", "product_id": WEB,
                       "name": "Signed up (new)" if renamed else "Signed up",
                       "display_name": None, "description": "A new account",
                       "is_visible": not hidden,
                       **({"total": 5, "last_used_at": new} if stats else {})})
    snap.add("event", {"id": "e2", "product_id": WEB, "name": "signup started",
                       "description": None, "is_visible": False,
                       **({"total": 1, "last_used_at": old} if stats else {})})
    snap.add("event", {"id": "e3", "product_id": STAGING, "name": "Signed up",
                       "description": "", "is_visible": True})
    snap.add("event", {"id": "e4", "product_id": STAGING, "name": "=cmd|' /C calc'!A0",
                       "description": HOSTILE, "is_visible": True})
    snap.add("event", {"id": "e5", "product_id": STAGING, "name": HOSTILE, "is_visible": True})
    snap.add("property", {"id": "p1", "product_id": WEB, "name": "Plan", "type": "text",
                          "is_visible": True})
    for n, pid in enumerate((WEB, STAGING, WEB)):
        snap.add("metric", {"id": f"m{n}", "product_id": pid, "title": "Churn",
                            "unit_type": "percent", "is_visible": True})
    return snap


class Out:
    def __init__(self, cwd: Path) -> None:
        self.raw = io.BytesIO()
        self.stdout = io.TextIOWrapper(self.raw, encoding="utf-8", newline="")
        self.stderr = io.StringIO()
        self.env = Environment(stdin=io.StringIO(), stdout=self.stdout, stderr=self.stderr,
                               environ={}, cwd=cwd, stdout_isatty=False, stderr_isatty=False)


def kmsnap(cwd: Path, *args: str) -> tuple[int, str, str]:
    out = Out(cwd)
    status = run(list(args), env=out.env)
    out.stdout.flush()
    return status, out.raw.getvalue().decode("utf-8"), out.stderr.getvalue()


def ids(snap: Snapshot, *terms: str) -> list[str]:
    query = parse_query(terms)
    table = filter_table(build_table(snap), query, query_context(snap))
    return [row["id"] for row in table.rows]


# --- the predicate language ---------------------------------------------------------------


def test_predicates_match_exactly() -> None:
    snap = catalog()
    assert ids(snap, "kind:event", "name:/^sign/i") == ["e1", "e2", "e3"]
    assert ids(snap, "kind:events", "name:/^sign/") == ["e2"]  # no i: case counts
    assert ids(snap, "kind:event", "hidden:true") == ["e2"]
    assert ids(snap, "kind:event", "-hidden:true", "environment:production") == ["e1"]
    assert ids(snap, "kind:event", "description:none") == ["e2", "e5", "e3"]
    assert ids(snap, "description:none", "kind:account") == []  # an account has none to lack
    assert ids(snap, "environment:staging", "kind:product") == [STAGING]
    assert ids(snap, 'product:"Web App"', "kind:metric") == ["m0", "m2"]
    assert ids(snap, f"product:{STAGING}", "name:churn") == ["m1"]
    assert ids(snap, "type:TEXT") == ["p1"]
    assert ids(snap, "account:acme", "kind:account") == [ACCOUNT]
    assert ids(snap, "name:signed", "-product:web app") == ["e3"]


@pytest.mark.parametrize(("term", "message"), [
    ("knd:event", "unknown key 'knd'; did you mean kind:?"),
    ("kind:evnt", "unknown kind; did you mean kind:event?"),
    ("hidden:maybe", "use hidden:true or hidden:false"),
    ("stale:90", "use a number of days, like stale:90d"),
    ("name:/(/", "bad regular expression"),
    ("signup", "not KEY:VALUE; to find it in names write name:signup"),
    ("kind:event hidden:true", "one term per argument"),
])
def test_bad_terms_name_themselves_and_suggest(term: str, message: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_term(term)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_a_colon_inside_a_value_is_not_a_second_term() -> None:
    assert parse_term('description:"note: see also: x"').value == "note: see also: x"


def test_what_reads_as_a_term_and_what_as_a_snapshot() -> None:
    assert is_term("kind:event") and is_term("-hidden:true") and is_term("knd:event")
    assert not is_term("HEAD~1:snapshots") and not is_term("main:snapshots")
    assert not is_term("snapshots")


def test_stale_is_judged_against_the_newest_use() -> None:
    snap = catalog(stats=True)
    # e1 used 2026-06-01 (the newest), e2 on 2026-01-01, e3..e5 never.
    assert ids(snap, "kind:event", "stale:90d") == ["e2", "e4", "e5", "e3"]
    assert ids(snap, "kind:event", "stale:200d") == ["e4", "e5", "e3"]
    assert ids(snap, "kind:event", "-stale:90d") == ["e1"]


def test_the_text_table_is_escaped_and_shortened() -> None:
    snap = catalog()
    snap.add("event", {"id": "e9", "product_id": WEB, "name": "x" * 500})
    table = filter_table(build_table(snap), parse_query(["kind:event"]), query_context(snap))
    text = render_find_table(table, 99)
    assert "\x1b" not in text and "evil\\n\\u001b[31mred" in text
    assert "x" * 41 not in text and "(500 characters)" in text
    assert text.endswith("6 of 99 entities match\n")
    assert text.splitlines()[0].split() == ["kind", "account", "product", "id", "name"]


# --- kmsnap find ----------------------------------------------------------------------------


def test_find_every_format(tmp_path: Path) -> None:
    save_snapshot(catalog(), tmp_path / "snapshots")
    status, out, err = kmsnap(tmp_path, "find", "kind:event", "-hidden:true",
                              "environment:staging")
    assert status == 0, err
    assert out.splitlines()[-1] == "3 of 12 entities match"
    assert "\x1b" not in out
    status, out, err = kmsnap(tmp_path, "find", "snapshots", "kind:event", "environment:staging",
                              "--format", "json")
    assert status == 0, err
    doc = json.loads(out)
    assert [r["id"] for r in doc["rows"]] == ["e4", "e5", "e3"]
    assert doc["columns"][:7] == ["account_id", "account", "product_id", "product", "kind",
                                  "id", "name"]
    assert doc["rows"][1]["name"] == HOSTILE  # JSON keeps values whole
    status, out, err = kmsnap(tmp_path, "find", "kind:event", "environment:staging",
                              "--format", "csv")
    assert status == 0, err
    rows = list(csv.reader(io.StringIO(out, newline="")))
    names = [row[6] for row in rows[1:]]
    assert names[0] == "'=cmd|' /C calc'!A0"  # a formula shows as text, never runs
    assert not [c for row in rows[1:] for c in row if c.startswith(("=", "+", "-", "@"))]
    status, out, err = kmsnap(tmp_path, "find", "--format", "xml")
    assert status == 1 and "use one of table, json, csv" in err


def test_find_bad_terms_and_stale_without_stats_are_one_line(tmp_path: Path) -> None:
    save_snapshot(catalog(), tmp_path / "snapshots")
    for args, message in (
        (("kind:event", "knd:event"), "did you mean kind:?"),
        (("-naem:x",), "did you mean name:?"),
        (("stale:90d",), "has no usage fields, which stale: needs"),
        (("name:x:",), "unknown kind"),
    ):
        if args == ("name:x:",):
            args, message = ("kind:x:",), "unknown kind"
        status, out, err = kmsnap(tmp_path, "find", *args)
        assert status == 1 and out == ""
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert "❌" not in err  # ":x:" stays text


def test_find_with_stats_and_rev_path(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    save_snapshot(catalog(stats=True), repo / "snapshots", with_stats=True)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first", date="2024-01-01T00:00:00+00:00")
    status, out, err = kmsnap(repo, "find", "HEAD:snapshots", "kind:event", "stale:90d",
                              "--format", "json")
    assert status == 0, err
    assert [r["id"] for r in json.loads(out)["rows"]] == ["e2", "e4", "e5", "e3"]


def test_find_on_the_emulator_catalog(tmp_path: Path) -> None:
    snap = generate_catalog(size=300, seed=4).to_snapshot("http://127.0.0.1:1/core")
    save_snapshot(snap, tmp_path / "snapshots")
    expected = sorted(
        entity_id for entity_id, record in snap.of("event").items()
        if record.get("is_visible") is False
    )
    status, out, err = kmsnap(tmp_path, "find", "kind:event", "hidden:true", "--format", "json")
    assert status == 0, err
    assert sorted(r["id"] for r in json.loads(out)["rows"]) == expected and expected


def test_find_on_the_example_snapshot(tmp_path: Path) -> None:
    example = str(ROOT / "snapshots")
    status, out, err = kmsnap(tmp_path, "find", example, "kind:metric", "name:/^churn$/i",
                              "--format", "json")
    assert status == 0, err
    rows = json.loads(out)["rows"]
    assert len(rows) == 14 and {r["name"] for r in rows} == {"Churn"}
    status, out, err = kmsnap(tmp_path, "find", example, "kind:product", "environment:staging")
    assert status == 0, err
    assert out.splitlines()[-1] == "3 of 2,000 entities match"


# --- kmsnap show ----------------------------------------------------------------------------


@pytest.fixture()
def history_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    save_snapshot(catalog(), repo / "snapshots")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first", date="2024-01-01T00:00:00+00:00")
    save_snapshot(catalog(renamed=True), repo / "snapshots")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "rename", date="2024-02-01T00:00:00+00:00")
    save_snapshot(catalog(renamed=True, hidden=True), repo / "snapshots")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "hide", date="2024-03-01T00:00:00+00:00")
    return repo


def test_show_with_its_timeline_from_git(history_repo: Path) -> None:
    status, out, err = kmsnap(history_repo, "show", "signed up (NEW)")
    assert status == 0, err
    commits = [git(history_repo, "rev-parse", rev).strip()[:12]
               for rev in ("HEAD~2", "HEAD~1", "HEAD")]
    lines = out.splitlines()
    assert lines[0] == 'event "Signed up (new)" [e1]'
    assert lines[1] == f'in account "Acme" [{ACCOUNT}] › product "Web App" [{WEB}]'
    fields = lines[lines.index("fields") + 1 : lines.index("fields") + 6]
    assert [f.split(":")[0].strip() for f in fields] == [
        "id", "product_id", "name", "display_name", "description"]
    timeline = lines[lines.index("timeline, oldest first") + 1 :]
    assert timeline == [
        f"  2024-01-01T00:00:00+00:00  {commits[0]}  added  (first)",
        f"  2024-02-01T00:00:00+00:00  {commits[1]}  renamed from 'Signed up'  (rename)",
        f"  2024-03-01T00:00:00+00:00  {commits[2]}  hidden  (hide)",
    ]
    status, out, err = kmsnap(history_repo, "show", "e1", "HEAD~1:snapshots", "--format", "json")
    assert status == 0, err
    doc = json.loads(out)
    assert doc["name"] == "Signed up (new)" and doc["fields"]["is_visible"] is True
    assert [t["change"] for t in doc["timeline"]] == ["added", "renamed"]
    assert list(doc["fields"]) == ["id", "product_id", "name", "display_name", "description",
                                   "is_visible"]
    status, out, err = kmsnap(history_repo, "show", "e1", "--no-history", "--format", "json")
    assert status == 0 and json.loads(out)["timeline"] is None


def test_show_stats_and_outside_git(tmp_path: Path) -> None:
    save_snapshot(catalog(stats=True), tmp_path / "snapshots", with_stats=True)
    status, out, err = kmsnap(tmp_path, "show", "e1", "--format", "json")
    assert status == 0, err
    doc = json.loads(out)
    assert doc["stats"] == {"total": 5, "last_used_at": "2026-06-01T00:00:00Z"}
    assert doc["timeline"] is None
    status, out, err = kmsnap(tmp_path, "show", "e1")
    assert "usage\n  total:        5\n" in out and "timeline: not shown" in out


def test_show_ambiguous_names_list_the_entities(tmp_path: Path) -> None:
    save_snapshot(catalog(), tmp_path / "snapshots")
    status, out, err = kmsnap(tmp_path, "show", "churn")
    assert status == 1 and out == ""
    lines = err.rstrip("\n").splitlines()
    assert lines[-1] == ('kmsnap: error: "churn" names 3 entities (listed above); give its id, '
                         "or narrow with --kind or --product")
    assert len(lines) == 4 and all(line.startswith("  metric [m") for line in lines[:3])
    assert 'product "Web App (staging)"' in err and 'account "Acme"' in err
    status, out, err = kmsnap(tmp_path, "show", "churn", "--product", "web app (staging)")
    assert status == 0 and out.startswith('metric "Churn" [m1]\n'), err
    status, out, err = kmsnap(tmp_path, "show", "Signed up", "--kind", "metric")
    assert status == 1 and "with that --kind/--product" in err


def test_show_unknown_name_suggests_close_names(tmp_path: Path) -> None:
    save_snapshot(catalog(), tmp_path / "snapshots")
    status, out, err = kmsnap(tmp_path, "show", "Signd up")
    assert status == 1 and len(err.strip().splitlines()) == 1
    assert 'no entity has the id or name "Signd up"' in err
    assert 'close names: "Signed up"' in err


def test_show_hostile_names_are_inert(tmp_path: Path) -> None:
    save_snapshot(catalog(), tmp_path / "snapshots")
    status, out, err = kmsnap(tmp_path, "show", "e5")
    assert status == 0, err
    assert "\x1b" not in out and out.splitlines()[0] == (
        'event "evil\\n\\u001b[31mred\\u001b[0m" [e5]')
    status, out, err = kmsnap(tmp_path, "show", "e4")
    assert status == 0 and "\x1b" not in out
    assert 'description: "evil\\n\\u001b[31mred\\u001b[0m"' in out
    status, out, err = kmsnap(tmp_path, "show", HOSTILE.upper())
    assert status == 0 and "[e5]" in out  # found by its name, any case


def test_show_on_the_example_snapshot(tmp_path: Path) -> None:
    example = str(ROOT / "snapshots")
    status, out, err = kmsnap(tmp_path, "show", "Churn", example, "--no-history")
    assert status == 1 and "names 14 entities" in err
    status, out, err = kmsnap(tmp_path, "find", example, "kind:metric", "name:/^churn$/i",
                              "--format", "json")
    first = json.loads(out)["rows"][0]
    status, out, err = kmsnap(tmp_path, "show", first["id"], example, "--format", "json",
                              "--no-history")
    assert status == 0, err
    doc = json.loads(out)
    assert doc["kind"] == "metric" and doc["fields"]["title"] == "Churn"
    assert list(doc["fields"])[:3] == ["id", "product_id", "title"]
