"""kmsnap log honours kmsnap.yaml's include/exclude, like pull, and keys its cache on them."""

from __future__ import annotations

from pathlib import Path

from test_history import Repo

from kmsnap.config import load_config
from kmsnap.history.walk import LogQuery, load_history
from kmsnap.model import Snapshot


def two_products(web_event: str, app_event: str) -> Snapshot:
    snap = Snapshot(api="https://api.example.test/core")
    snap.add("account", {"id": "a1", "name": "Acme", "status": "active"})
    snap.add("product", {"id": "p1", "account_id": "a1", "name": "Web"})
    snap.add("product", {"id": "p2", "account_id": "a1", "name": "Staging App"})
    snap.add("event", {"id": "e1", "product_id": "p1", "name": web_event})
    snap.add("event", {"id": "e2", "product_id": "p2", "name": app_event})
    return snap


def test_excluded_products_are_left_out_of_the_log(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    repo.save(two_products("Signed Up", "Debug ping"))
    repo.commit("first")
    repo.save(two_products("Signed Up", "Debug ping v2"))
    repo.commit("only the excluded product changed")
    repo.save(two_products("Sign Up", "Debug ping v3"))
    repo.commit("both changed")

    everything = load_history(LogQuery(use_cache=True), cwd=repo.path)
    assert [len(e.changes) for e in everything.entries] == [2, 1, 5]  # newest first

    (repo.path / "kmsnap.yaml").write_text('exclude:\n  products: ["Staging App"]\n')
    query = LogQuery(select=load_config(repo.path), use_cache=True)
    selected = load_history(query, cwd=repo.path)
    # The cache entries of the unfiltered run must not answer for the filtered one.
    expected = [["e1"], [], ["a1", "p1", "e1"]]
    assert [[c.id for c in e.changes] for e in selected.entries] == expected
    assert selected.cache_hits == 0
    again = load_history(query, cwd=repo.path)
    assert again.cache_hits == 3
    assert [[c.id for c in e.changes] for e in again.entries] == expected
