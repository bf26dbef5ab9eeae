"""kmsnap stale: every verdict at a fixed --as-of (exact findings), thresholds per kind,
product and entity, the snapshot without stats, --as-of from the snapshot's commit, formats
with a hostile name, exit codes."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kmsnap.cli import Environment, run
from kmsnap.config import load_config
from kmsnap.lint.config import StaleConfig
from kmsnap.lint.stale import judge
from kmsnap.model import Record, Snapshot
from kmsnap.snapshot.store import save_snapshot

AS_OF = dt.date(2026, 5, 4)
RECENT = "2026-05-01T10:00:00Z"
OLD = "2025-11-01T10:00:00Z"  # 184 days before AS_OF


def ev(eid: str, name: str, *, visible: bool = True, product: str = "p1", **usage: Any) -> Record:
    record: Record = {"id": eid, "product_id": product, "name": name, "display_name": name,
                      "description": "d", "is_visible": visible}
    record.update(usage)
    return record


def catalog(*records: tuple[str, Record]) -> Snapshot:
    snap = Snapshot(api="http://127.0.0.1:1/core")
    snap.add("account", {"id": "a1", "name": "Acme"})
    snap.add("product", {"id": "p1", "account_id": "a1", "name": "Web"})
    snap.add("product", {"id": "p2", "account_id": "a1", "name": "Mobile"})
    for kind, record in records:
        snap.add(kind, record)
    return snap


def sent(first: str | None, last: str | None, used_first: Any = "absent",
         used_last: Any = "absent") -> dict[str, Any]:
    out: dict[str, Any] = {"first_sent_at": first, "last_sent_at": last}
    if used_first != "absent":
        out["first_used_at"] = used_first
    if used_last != "absent":
        out["last_used_at"] = used_last
    return out


CATALOG = catalog(
    ("event", ev("e1", "Never", **sent(None, None))),
    ("event", ev("e2", "Stopped", **sent("2025-01-01T00:00:00Z", OLD))),
    ("event", ev("e3", "Unused", **sent("2026-01-01T00:00:00Z", RECENT, None, None))),
    ("event", ev("e4", "Test once", **sent(RECENT, "2026-05-01T23:00:00Z"))),
    ("event", ev("e5", "Hidden busy", visible=False, **sent("2026-01-01T00:00:00Z", RECENT))),
    ("event", ev("e6", "Forgotten", **sent("2025-01-01T00:00:00Z", RECENT,
                                           "2025-01-01T00:00:00Z", OLD))),
    ("event", ev("e7", "Healthy", **sent("2026-01-01T00:00:00Z", RECENT,
                                         "2026-01-01T00:00:00Z", RECENT))),
    ("property", {"id": "x1", "product_id": "p1", "name": "Plan", "type": "text",
                  "is_visible": True, **sent("2025-01-01T00:00:00Z", OLD)}),
)


def verdicts(result: Any) -> list[tuple[str, str]]:
    return sorted((f.rule, f.id) for f in result.findings)


def test_every_verdict_at_a_fixed_date() -> None:
    result = judge(CATALOG, StaleConfig(), as_of=AS_OF)
    assert verdicts(result) == [
        ("hidden-receiving", "e5"),
        ("never-sent", "e1"),
        ("never-used", "e3"),
        ("one-day", "e4"),
        ("stopped-sending", "e2"),
        ("stopped-sending", "x1"),
        ("visible-unused", "e6"),
    ]
    stopped = next(f for f in result.findings if f.id == "e2")
    assert stopped.message == "last sent 2025-11-01, 184 days before 2026-05-04 (more than 90)"
    assert stopped.severity == "warning" and stopped.product_name == "Web"
    assert judge(CATALOG, StaleConfig(), as_of=AS_OF, kinds={"property"}).findings[0].id == "x1"


def test_thresholds_per_entity_product_and_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    snap = catalog(
        ("event", ev("e1", "A", **sent(OLD, OLD.replace("11-01", "11-02")))),
        ("event", ev("e2", "B", product="p2", **sent(OLD, OLD.replace("11-01", "11-02")))),
        ("event", ev("e3", "C", **sent(OLD, OLD.replace("11-01", "11-02")))),
        ("property", {"id": "x1", "product_id": "p1", "name": "P", "is_visible": True,
                      **sent(OLD, OLD.replace("11-01", "11-02"))}),
    )
    (tmp_path / "kmsnap.yaml").write_text(
        "stale:\n"
        "  stopped_after_days: 100\n"
        "  kinds: {property: {stopped_after_days: 365}}\n"
        "  products: {Mobile: {stopped_after_days: 200}}\n"
        "  entities: {e3: {stopped_after_days: 1000}}\n", encoding="utf-8")
    config = load_config(cwd=tmp_path).stale
    assert verdicts(judge(snap, config, as_of=AS_OF)) == [("stopped-sending", "e1")]
    assert len(verdicts(judge(snap, StaleConfig(), as_of=AS_OF))) == 4


def test_hostile_timestamps_are_not_dates() -> None:
    snap = catalog(("event", ev("e1", "X", first_sent_at="yesterday", last_sent_at=12,
                                first_used_at="2026-13-40T00:00:00Z")))
    assert verdicts(judge(snap, StaleConfig(), as_of=AS_OF)) == [("never-sent", "e1")]


# --- the command ------------------------------------------------------------------------


def command(cwd: Path, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdout=out, stderr=err, environ={"NO_COLOR": "1"}, cwd=cwd)
    status = run(list(args), env=env)
    return status, out.getvalue(), err.getvalue()


def git(repo: Path, *args: str, date: str = "2026-05-04T05:17:00Z") -> str:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
           "HOME": str(repo.parent), "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    return subprocess.run(
        ["git", "-c", "user.name=Ada", "-c", "user.email=ada@example.com",
         "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],
        cwd=repo, env=env, capture_output=True, check=True, text=True).stdout


def test_a_snapshot_without_stats_gets_one_line(tmp_path: Path) -> None:
    save_snapshot(CATALOG, tmp_path / "snapshots")  # without --with-stats
    status, out, err = command(tmp_path, "stale")
    assert status == 1 and out == ""
    assert err == ("kmsnap: error: snapshots has no usage fields: pull it with kmsnap pull "
                   "--with-stats, then run kmsnap stale\n")


def test_as_of_defaults_to_the_snapshot_commit(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet")
    save_snapshot(CATALOG, repo / "snapshots", with_stats=True)
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "stats", date="2026-05-04T05:17:00Z")
    (repo / "other").write_text("x", encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "later", date="2027-01-01T00:00:00Z")
    status, out, err = command(repo, "stale", "--format", "json")
    assert status == 0 and err == ""
    doc = json.loads(out)
    assert doc["as_of"] == "2026-05-04" and doc["command"] == "stale"
    assert len(doc["findings"]) == 7
    _, out, _ = command(repo, "stale", "HEAD:snapshots", "--format", "json")
    assert json.loads(out)["as_of"] == "2027-01-01"
    _, out, _ = command(repo, "stale", "--as-of", "2026-05-04", "--format", "json")
    assert json.loads(out)["findings"] == doc["findings"]


def test_formats_exit_codes_and_hostile_names(tmp_path: Path) -> None:
    hostile = "<b>x</b> `y` @all\n::error::forged"
    snap = catalog(("event", ev("e1", hostile, **sent(None, None))),
                   ("event", ev("e2", "Stopped", **sent(OLD, OLD))))
    save_snapshot(snap, tmp_path / "snapshots", with_stats=True)
    base = ("stale", "--as-of", "2026-05-04")
    status, out, _ = command(tmp_path, *base)
    assert status == 0 and "3 findings: 0 error, 2 warning, 1 info." in out
    assert r"\n::error::forged" in out
    assert command(tmp_path, *base, "--fail-on", "warning")[0] == 2
    assert command(tmp_path, *base, "--fail-on", "error")[0] == 0
    _, md, _ = command(tmp_path, *base, "--format", "markdown")
    assert "<b>" not in md and "`y`" not in md and "@all" not in md and "\n::" not in md
    _, gh, _ = command(tmp_path, *base, "--format", "github")
    assert all(line.startswith(("::warning title=", "::notice title="))
               for line in gh.splitlines())
    assert len(gh.splitlines()) == 3
    assert command(tmp_path, *base)[1] == command(tmp_path, *base)[1]
    status, _, err = command(tmp_path, "stale", "--as-of", "May 4")
    assert status == 1 and "--as-of: 'May 4' is not a date" in err
    status, _, err = command(tmp_path, *base, "--kind", "metric")
    assert status == 1 and "--kind: metric is not one of event, property" in err
