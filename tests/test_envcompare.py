"""kmsnap compare: products paired by environment or by name, entities matched by normalised
name, the matrix in text, markdown and JSON exactly, the mapping in kmsnap.yaml, the policies."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from kmsnap.cli import run
from kmsnap.cli.environment import Environment
from kmsnap.envcompare import (
    compare_environments,
    find_pairs,
    normalize_name,
    render_pairings,
)
from kmsnap.errors import ConfigError, UsageError
from kmsnap.model import Snapshot
from kmsnap.snapshot.store import save_snapshot

ACME = "a0000000-0000-4000-8000-000000000001"
STAGING = "b0000000-0000-4000-8000-00000000000s"
PRODUCTION = "b0000000-0000-4000-8000-00000000000p"


def catalog(*, environments: bool = True) -> Snapshot:
    snap = Snapshot(api="http://127.0.0.1:1/core")
    snap.add("account", {"id": ACME, "name": "Acme"})
    snap.add("product", {"id": STAGING, "account_id": ACME, "name": "Web (staging)",
                         "environment": "staging" if environments else None})
    snap.add("product", {"id": PRODUCTION, "account_id": ACME, "name": "Web",
                         "environment": "production" if environments else None})

    def event(pid: str, eid: str, name: str, description: str | None = None) -> None:
        snap.add("event", {"id": eid, "product_id": pid, "name": name, "display_name": None,
                           "description": description, "is_visible": True})

    event(STAGING, "s1", "Signed up", "A new account")
    event(STAGING, "s2", "Debug click")
    event(STAGING, "s3", "checkout_started")
    event(PRODUCTION, "p1", "signed  up", "A new account (any plan)")
    event(PRODUCTION, "p2", "Legacy")
    event(PRODUCTION, "p3", "Checkout Started")
    snap.add("property", {"id": "s4", "product_id": STAGING, "name": "Plan", "type": "text",
                          "is_visible": True})
    snap.add("property", {"id": "p4", "product_id": PRODUCTION, "name": "plan",
                          "type": "number", "is_visible": True})
    for pid, mid in ((STAGING, "s5"), (PRODUCTION, "p5")):
        snap.add("metric", {"id": mid, "product_id": pid, "title": "Revenue",
                            "unit_type": "currency", "is_visible": True})
    return snap


TEXT = """\
"Web (staging)" (staging) [b0000000-0000-4000-8000-00000000000s] ↔ "Web" (production) [b0000000-0000-4000-8000-00000000000p] in account "Acme"
  kind      name           staging  production
  event     "Debug click"  ✓        —           only in staging
  event     "Legacy"       —        ✓           only in production
  event     "Signed up"    ✓        ✓           as "signed  up": description: "A new account" ≠ "A new account (any plan)"
  property  "Plan"         ✓        ✓           as "plan": type: "text" ≠ "number"
1 only in staging, 1 only in production, 2 different, 2 the same
"""  # noqa: E501

MARKDOWN = """\
## kmsnap: environments compared

### "Web \\(staging\\)" \\(staging\\) \\[b0000000\\-0000\\-4000\\-8000\\-00000000000s\\] ↔ "Web" \\(production\\) \\[b0000000\\-0000\\-4000\\-8000\\-00000000000p\\] in account "Acme"

1 only in staging, 1 only in production, 2 different, 2 the same

| kind | name | staging | production | difference |
|---|---|:-:|:-:|---|
| events | "Debug click" | ✓ | — | only in staging |
| events | "Legacy" | — | ✓ | only in production |
| events | "Signed up" | ✓ | ✓ | as "signed  up"\\: description\\: "A new account" ≠ "A new account \\(any plan\\)" |
| properties | "Plan" | ✓ | ✓ | as "plan"\\: type\\: "text" ≠ "number" |
"""  # noqa: E501


def test_normalised_names() -> None:
    assert normalize_name("  Checkout_Started ") == normalize_name("checkout started")
    assert normalize_name("Signed--Up") == "signed up"
    assert normalize_name("Signed up") != normalize_name("Signed upp")


def test_text_and_markdown_are_exact() -> None:
    pairings = compare_environments(catalog())
    assert render_pairings(pairings, "text") == TEXT
    assert render_pairings(pairings, "markdown") == MARKDOWN


def test_json_pairs_only_and_differences() -> None:
    doc = json.loads(render_pairings(compare_environments(catalog()), "json"))
    assert doc["version"] == 1
    (pair,) = doc["pairs"]
    assert pair["left"]["environment"] == "staging" and pair["right"]["product"] == "Web"
    assert pair["summary"] == {"only_left": 1, "only_right": 1, "different": 2, "same": 2}
    assert pair["only_left"] == [{"kind": "event", "name": "Debug click", "id": "s2"}]
    assert pair["different"][1]["fields"] == {"type": {"left": "text", "right": "number"}}


def test_products_pair_by_their_names_without_environments() -> None:
    assert find_pairs(catalog(environments=False)) == [(STAGING, PRODUCTION)]


def test_named_products_and_their_errors() -> None:
    snap = catalog(environments=False)
    assert find_pairs(snap, left="Web", right=STAGING) == [(PRODUCTION, STAGING)]
    with pytest.raises(UsageError, match="--left: no product named or with id 'Nope'"):
        find_pairs(snap, left="Nope", right="Web")
    with pytest.raises(UsageError, match="give both"):
        find_pairs(snap, left="Web")
    snap.add("product", {"id": "x", "account_id": ACME, "name": "Web"})
    with pytest.raises(UsageError, match="2 products are named 'Web'"):
        find_pairs(snap, left="Web", right=STAGING)


def test_no_pair_is_one_usage_error() -> None:
    snap = catalog()
    snap.of("product")[STAGING]["environment"] = "production"
    with pytest.raises(UsageError, match="no account has both a staging/development and a "
                       "production product \\(by environment\\)"):
        find_pairs(snap)


# --- the command ----------------------------------------------------------------------------


def kmsnap(cwd: Path, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdin=io.StringIO(), stdout=out, stderr=err, environ={}, cwd=cwd,
                      stdout_isatty=False, stderr_isatty=False)
    status = run(list(args), env=env)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    save_snapshot(catalog(), tmp_path / "snapshots")
    return tmp_path


def test_command_prints_the_matrix_and_exits_by_policy(home: Path) -> None:
    assert kmsnap(home, "compare") == (0, TEXT, "")
    assert kmsnap(home, "compare", "--exit-code")[0] == 2
    assert kmsnap(home, "compare", "--require", "left-in-right")[0] == 2
    assert kmsnap(home, "compare", "--require", "both")[0] == 2
    # Only metrics: the same on both sides, every policy holds.
    status, out, _ = kmsnap(home, "compare", "-k", "metrics", "--exit-code", "--require", "both")
    assert status == 0 and out.endswith("0 only in staging, 0 only in production, 0 different, "
                                        "1 the same\n")
    status, out, _ = kmsnap(home, "compare", "--format", "markdown")
    assert status == 0 and out == MARKDOWN
    status, out, _ = kmsnap(home, "compare", "-f", "json", "--left", "Web", "--right",
                            "Web (staging)")
    assert json.loads(out)["pairs"][0]["only_left"][0]["name"] == "Legacy"


def test_require_right_in_left_passes_when_only_the_right_lacks(home: Path) -> None:
    snap = catalog()
    del snap.entities["event"]["p2"]  # production no longer has anything staging lacks
    save_snapshot(snap, home / "snapshots")
    assert kmsnap(home, "compare", "--require", "right-in-left")[0] == 0
    assert kmsnap(home, "compare", "--require", "left-in-right")[0] == 2


def test_the_name_mapping_in_kmsnap_yaml(home: Path) -> None:
    (home / "kmsnap.yaml").write_text(
        "compare:\n  names:\n    event:\n      Debug click: Legacy\n", encoding="utf-8")
    status, out, err = kmsnap(home, "compare", "-k", "event")
    assert status == 0, err
    # Paired through the mapping, and the same: neither shows as only on one side.
    assert '"Debug click"' not in out and '"Legacy"' not in out
    assert out.endswith("0 only in staging, 0 only in production, 1 different, 2 the same\n")


def test_a_bad_mapping_names_the_file_and_line(home: Path) -> None:
    (home / "kmsnap.yaml").write_text(
        "snapshot_dir: snapshots\ncompare:\n  names:\n    events:\n      a: b\n",
        encoding="utf-8")
    status, _, err = kmsnap(home, "compare")
    assert status == 1
    assert "kmsnap.yaml:4: unknown kind 'events' in 'compare.names'" in err
    from kmsnap.config import load_config

    with pytest.raises(ConfigError, match=":4:"):
        load_config(cwd=home)


def test_usage_errors(home: Path) -> None:
    status, _, err = kmsnap(home, "compare", "--require", "all")
    assert status == 1 and "--require: unknown policy 'all'" in err
    status, _, err = kmsnap(home, "compare", "--format", "csv")
    assert status == 1 and "--format: unknown format 'csv'" in err
    status, _, err = kmsnap(home, "compare", "--left", "Web")
    assert status == 1 and "give both" in err


def test_compare_reads_rev_path(home: Path) -> None:
    import os
    import subprocess

    env = {**os.environ, "GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "a@example.com",
           "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "a@example.com",
           "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(home)}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "one"]):
        subprocess.run(["git", *args], cwd=home, env=env, check=True, capture_output=True)
    status, out, err = kmsnap(home, "compare", "HEAD:snapshots")
    assert (status, out) == (0, TEXT), err


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_the_example_snapshot(tmp_path: Path, fmt: str) -> None:
    """The committed example: its products' environments pair nothing by themselves (one
    error line), and two named products compare in every format."""
    example = str(Path(__file__).resolve().parent.parent / "snapshots")
    status, _, err = kmsnap(tmp_path, "compare", example)
    assert status == 1 and "name two with --left and --right" in err
    assert len(err.strip().splitlines()) == 1
    status, out, err = kmsnap(tmp_path, "compare", example, "--left", "iOS App", "--right",
                              "My SaaS Product", "--format", fmt)
    assert status == 0, err
    if fmt == "json":
        summary = json.loads(out)["pairs"][0]["summary"]
        assert summary["same"] > 0 and summary["only_right"] > 0
    else:
        assert "only in production" in out and "the same" in out
