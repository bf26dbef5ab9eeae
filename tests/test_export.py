"""kmsnap export: the table's columns and order, CSV that spreadsheets open safely, the other
formats, selection, --history from a real git repository, and the same bytes every time."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from test_gitrev import git

from kmsnap.cli import run
from kmsnap.cli.environment import Environment
from kmsnap.export import build_table, render_export
from kmsnap.export.csv import cell_text, neutralize, render_csv
from kmsnap.export.table import BASE_COLUMNS, HISTORY_COLUMNS, USAGE_COLUMNS, field_columns
from kmsnap.model import Snapshot
from kmsnap.snapshot.store import save_snapshot

ACCOUNT = "a0000000-0000-4000-8000-000000000001"
PRODUCT = "b0000000-0000-4000-8000-000000000001"
OTHER_PRODUCT = "b0000000-0000-4000-8000-000000000002"


def catalog(*, renamed: bool = False, stats: bool = False) -> Snapshot:
    snap = Snapshot(api="http://127.0.0.1:1/core")
    snap.add("account", {"id": ACCOUNT, "name": "Acme", "status": "active"})
    snap.add("product", {"id": PRODUCT, "account_id": ACCOUNT, "name": "Web",
                         "environment": "production"})
    snap.add("product", {"id": OTHER_PRODUCT, "account_id": ACCOUNT, "name": "Staging",
                         "environment": "staging"})
    usage = {"total": 12, "last_used_at": "2026-01-01T00:00:00Z"} if stats else {}
    snap.add("event", {"id": "e1", "product_id": PRODUCT, "name": "=HYPERLINK(\"x\")",
                       "display_name": "+1", "description": "line one\nline \"two\", three",
                       "is_visible": True, **usage})
    snap.add("event", {"id": "e2", "product_id": PRODUCT,
                       "name": "Signed up (new)" if renamed else "Signed up",
                       "display_name": None, "description": None, "is_visible": False,
                       "tags": ["a", "b"]})
    snap.add("event", {"id": "e3", "product_id": OTHER_PRODUCT, "name": "@mention",
                       "display_name": "-2", "description": "\tTabbed", "is_visible": True})
    snap.add("metric", {"id": "m1", "product_id": PRODUCT, "title": "Revenue",
                        "unit_type": "currency", "is_visible": True, "sort_index": -1})
    return snap


def write(snap: Snapshot, where: Path, *, with_stats: bool = False) -> Path:
    save_snapshot(snap, where, with_stats=with_stats)
    return where


class Out:
    """Byte streams for one Environment (stdout has a binary buffer, as a real one does)."""

    def __init__(self, cwd: Path) -> None:
        self.raw = io.BytesIO()
        self.stdout = io.TextIOWrapper(self.raw, encoding="utf-8", newline="")
        self.stderr = io.StringIO()
        self.env = Environment(stdin=io.StringIO(), stdout=self.stdout, stderr=self.stderr,
                               environ={}, cwd=cwd, stdout_isatty=False, stderr_isatty=False)

    def bytes(self) -> bytes:
        self.stdout.flush()
        return self.raw.getvalue()


def kmsnap(cwd: Path, *args: str) -> tuple[int, bytes, str]:
    out = Out(cwd)
    status = run(list(args), env=out.env)
    return status, out.bytes(), out.stderr.getvalue()


# --- the table ------------------------------------------------------------------------------


def test_columns_are_the_documented_order_then_extras() -> None:
    table = build_table(catalog())
    known = field_columns()
    assert table.columns[: len(BASE_COLUMNS)] == BASE_COLUMNS
    assert table.columns[len(BASE_COLUMNS) : len(BASE_COLUMNS) + len(known)] == known
    assert table.columns[-1] == "tags"  # undocumented, found in the snapshot
    assert "total" not in table.columns  # no stats, no usage columns
    assert known.index("display_name") < known.index("description") < known.index("type")


def test_rows_are_sorted_by_account_product_kind_name() -> None:
    rows = build_table(catalog()).rows
    assert [(r["kind"], r["name"]) for r in rows] == [
        ("account", "Acme"),
        ("product", "Staging"),
        ("event", "@mention"),
        ("product", "Web"),
        ("event", "=HYPERLINK(\"x\")"),
        ("event", "Signed up"),
        ("metric", "Revenue"),
    ]
    metric = rows[-1]
    assert (metric["account"], metric["product"], metric["account_id"]) == ("Acme", "Web", ACCOUNT)


def test_kinds_narrow_rows_and_columns() -> None:
    table = build_table(catalog(), kinds={"metric"})
    assert [r["id"] for r in table.rows] == ["m1"]
    assert "unit_type" in table.columns and "display_name" not in table.columns


def test_usage_columns_when_the_snapshot_has_stats(tmp_path: Path) -> None:
    snap = catalog(stats=True)
    table = build_table(snap)
    assert table.columns[-len(USAGE_COLUMNS):] == USAGE_COLUMNS
    assert next(r for r in table.rows if r["id"] == "e1")["total"] == 12


# --- CSV ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx"])
def test_formula_starts_are_neutralised(text: str) -> None:
    assert neutralize(text) == "'" + text
    assert cell_text(text) == "'" + text


def test_numbers_and_plain_text_are_left_alone() -> None:
    assert cell_text(-1) == "-1"
    assert cell_text(True) == "true"
    assert cell_text(None) == ""
    assert cell_text("Signed up") == "Signed up"
    assert cell_text(["=x"]) == '["=x"]'  # JSON starts with [, not a formula


def test_csv_reads_back_in_a_spreadsheet_dialect_with_no_formula() -> None:
    text = render_csv(build_table(catalog()))
    assert text.endswith("\r\n") and "\r\n" in text.split("\n", 1)[0] + "\n"
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    by_id = {r["id"]: r for r in rows}
    assert by_id["e1"]["name"] == "'=HYPERLINK(\"x\")"
    assert by_id["e1"]["display_name"] == "'+1"
    # A newline, quotes and a comma stay inside one cell (quoted, quotes doubled).
    assert by_id["e1"]["description"] == "line one\nline \"two\", three"
    assert '"line one\nline ""two"", three"' in text
    assert by_id["e3"]["name"] == "'@mention" and by_id["e3"]["description"] == "'\tTabbed"
    assert by_id["m1"]["sort_index"] == "-1"
    assert by_id["e2"]["tags"] == '["a","b"]' and by_id["e2"]["is_visible"] == "false"
    for row in rows:
        for column, value in row.items():
            if column == "sort_index":
                continue  # a number
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value


def test_bom_only_when_asked() -> None:
    table = build_table(catalog())
    assert not render_csv(table).startswith("\ufeff")
    assert render_csv(table, bom=True) == "\ufeff" + render_csv(table)


# --- the command ----------------------------------------------------------------------------


def test_export_bytes_are_deterministic_and_bom_is_utf8(tmp_path: Path) -> None:
    where = write(catalog(), tmp_path / "snapshots")
    first = kmsnap(tmp_path, "export", "snapshots", "--bom")
    second = kmsnap(tmp_path, "export", "snapshots", "--bom")
    assert first[0] == 0, first[2]
    assert first[1] == second[1]
    assert first[1].startswith(b"\xef\xbb\xbf" + b"account_id,account,product_id,product,kind,")
    for fmt in ("jsonl", "json", "markdown"):
        a, b = kmsnap(tmp_path, "export", str(where), "--format", fmt), kmsnap(
            tmp_path, "export", str(where), "--format", fmt)
        assert a[0] == 0 and a[1] == b[1] and a[1]


def test_export_formats(tmp_path: Path) -> None:
    write(catalog(), tmp_path / "snapshots")
    status, out, _ = kmsnap(tmp_path, "export", "--format", "jsonl", "--kind", "events")
    assert status == 0
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert [r["id"] for r in lines] == ["e3", "e1", "e2"]
    assert list(lines[0])[:7] == list(BASE_COLUMNS)
    assert lines[0]["name"] == "@mention"  # JSON keeps the value as it is
    status, out, _ = kmsnap(tmp_path, "export", "-f", "json")
    doc = json.loads(out)
    assert doc["version"] == 1 and doc["columns"][:7] == list(BASE_COLUMNS)
    assert len(doc["rows"]) == 7
    status, out, _ = kmsnap(tmp_path, "export", "-f", "markdown", "-k", "metric")
    text = out.decode()
    assert "### Acme › Web" in text and "#### metrics (1)" in text
    assert "| id | name | is_visible | unit_type | sort_index |" in text


def test_export_respects_the_config_selection(tmp_path: Path) -> None:
    write(catalog(), tmp_path / "snapshots")
    (tmp_path / "kmsnap.yaml").write_text("exclude:\n  products: [Staging]\n", encoding="utf-8")
    status, out, err = kmsnap(tmp_path, "export", "-f", "jsonl")
    assert status == 0, err
    names = [json.loads(line)["name"] for line in out.decode().splitlines()]
    assert "@mention" not in names and "Staging" not in names and "Revenue" in names


def test_export_to_a_file_and_errors(tmp_path: Path) -> None:
    write(catalog(), tmp_path / "snapshots")
    status, out, _ = kmsnap(tmp_path, "export", "--out", "cat.csv")
    assert status == 0 and out == b""
    assert (tmp_path / "cat.csv").read_bytes().startswith(b"account_id,")
    status, _, err = kmsnap(tmp_path, "export", "--format", "xlsx")
    assert status == 1 and "--format: unknown format 'xlsx'" in err
    status, _, err = kmsnap(tmp_path, "export", "--format", "json", "--bom")
    assert status == 1 and "--bom" in err
    status, _, err = kmsnap(tmp_path, "export", "--kind", "segmentz")
    assert status == 1 and "--kind: unknown kind 'segmentz'" in err
    status, _, err = kmsnap(tmp_path, "export", "missing")
    assert status == 1 and "'missing'" in err


def test_export_with_stats_adds_usage(tmp_path: Path) -> None:
    write(catalog(stats=True), tmp_path / "snapshots", with_stats=True)
    status, out, _ = kmsnap(tmp_path, "export", "-f", "jsonl", "-k", "event")
    rows = {json.loads(line)["id"]: json.loads(line) for line in out.decode().splitlines()}
    assert status == 0 and rows["e1"]["total"] == 12 and rows["e2"]["total"] is None


# --- --history from git ---------------------------------------------------------------------


@pytest.fixture()
def history_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write(catalog(), repo / "snapshots")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first", date="2024-01-01T00:00:00+00:00")
    snap = catalog(renamed=True)
    snap.add("event", {"id": "e4", "product_id": PRODUCT, "name": "Later", "is_visible": True})
    write(snap, repo / "snapshots")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "second", date="2024-02-01T00:00:00+00:00")
    return repo


def test_history_dates_from_git(history_repo: Path) -> None:
    status, out, err = kmsnap(history_repo, "export", "-f", "jsonl", "-k", "event", "--history")
    assert status == 0, err
    rows = {json.loads(line)["id"]: json.loads(line) for line in out.decode().splitlines()}
    assert list(rows["e1"])[-4:] == list(HISTORY_COLUMNS)
    first, second = (git(history_repo, "rev-parse", rev).strip()[:12]
                     for rev in ("HEAD~1", "HEAD"))
    assert rows["e1"]["first_appeared"].startswith("2024-01-01")
    assert rows["e1"]["last_changed"].startswith("2024-01-01")
    assert rows["e1"]["first_commit"] == rows["e1"]["last_commit"] == first
    assert rows["e2"]["first_appeared"].startswith("2024-01-01")  # renamed in the second
    assert rows["e2"]["last_changed"].startswith("2024-02-01")
    assert rows["e2"]["last_commit"] == second
    assert rows["e4"]["first_appeared"].startswith("2024-02-01")
    # REV:PATH reads the history up to REV: at HEAD~1 there is no e4 and no rename yet.
    status, out, err = kmsnap(history_repo, "export", "HEAD~1:snapshots", "-f", "jsonl",
                              "-k", "event", "--history")
    assert status == 0, err
    old = {json.loads(line)["id"]: json.loads(line) for line in out.decode().splitlines()}
    assert "e4" not in old and old["e2"]["last_commit"] == first


def test_history_outside_git_is_one_error(tmp_path: Path) -> None:
    write(catalog(), tmp_path / "snapshots")
    status, _, err = kmsnap(tmp_path, "export", "--history")
    assert status == 1 and "not inside a git repository" in err
    assert len(err.strip().splitlines()) == 1


def test_render_export_rejects_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown export format"):
        render_export(build_table(catalog()), "xlsx")


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json", "markdown"])
def test_the_example_snapshot_in_every_format(tmp_path: Path, fmt: str) -> None:
    """The committed example (a pull of the emulator's catalog, awkward names and all)."""
    example = Path(__file__).resolve().parent.parent / "snapshots"
    status, out, err = kmsnap(tmp_path, "export", str(example), "--format", fmt)
    assert status == 0, err
    text = out.decode("utf-8")
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(text, newline="")))
        assert len(rows) == 2001  # the header and 2,000 entities
        numeric = {rows[0].index("sort_index")}
        assert not [cell for row in rows[1:] for i, cell in enumerate(row)
                    if i not in numeric and cell.startswith(("=", "+", "-", "@", "\t", "\r"))]
    elif fmt == "jsonl":
        assert len(text.splitlines()) == 2000
    elif fmt == "json":
        assert len(json.loads(text)["rows"]) == 2000
    else:
        assert text.startswith("# Catalog export: 2000 entities\n")
