"""The snapshot store: layout, golden bytes, determinism, slugs, atomic save, safe loads, pairs."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kmsnap.errors import SnapshotError
from kmsnap.model import Snapshot
from kmsnap.snapshot import atomic as atomicdir
from kmsnap.snapshot import layout as storelayout
from kmsnap.snapshot import store, strict
from kmsnap.snapshot.parse import read_bounded
from kmsnap.snapshot.store import (
    DirectorySource,
    load_pair,
    load_snapshot,
    render_snapshot,
    save_snapshot,
    slugify,
)


def _sample() -> Snapshot:
    snap = Snapshot(api="https://api.kissmetrics.com/core")
    snap.add("account", {"id": "acc00001", "name": "Acme, Inc.", "status": "active",
                         "contact": {"phone": None, "name": "Ann", "country": "US"},
                         "links": [{"rel": "self"}]})
    snap.add("product", {"id": "prd00001", "account_id": "acc00001", "name": "Web App",
                         "created_at": "2024-01-02T03:04:05Z", "zeta": 1})
    snap.add("product", {"id": "prd00002", "account_id": "gone", "name": "Orphan"})
    snap.add("event", {"id": "evt00002", "product_id": "prd00001", "name": "yes",
                       "is_visible": True, "total": 7, "last_used_at": None})
    snap.add("event", {"id": "evt00001", "product_id": "prd00001", "name": "Signed Up",
                       "description": "line\nbreak 😀", "display_name": "1e3"})
    snap.add("event", {"id": "evt00003", "product_id": "nowhere", "name": "Lost"})
    snap.add("metric", {"id": "met00001", "product_id": "prd00001", "title": "Revenue",
                        "sort_index": 2.5})
    snap.add("funnels", {"id": "fun00001", "name": "F"})
    snap.add("../Evil Kind", {"id": "x1"})
    return snap


GOLDEN = {
    "kmsnap.yaml": (
        'format: 1\napi: "https://api.kissmetrics.com/core"\n'
        'counts: {"../Evil Kind": 1, "account": 1, "event": 3, "funnels": 1, "metric": 1,'
        ' "product": 2}\n'
        'other_kinds: {"evil-kind-25bbc601": "../Evil Kind"}\n'
    ),
    "acme-inc-acc00001/account.yaml": (
        'id: "acc00001"\nname: "Acme, Inc."\nstatus: "active"\n'
        'contact: {"country": "US", "name": "Ann", "phone": null}\n'
    ),
    "acme-inc-acc00001/web-app-prd00001/product.yaml": (
        'id: "prd00001"\naccount_id: "acc00001"\nname: "Web App"\n'
        'created_at: "2024-01-02T03:04:05Z"\nzeta: 1\n'
    ),
    "acme-inc-acc00001/web-app-prd00001/events.yaml": (
        '- id: "evt00001"\n  product_id: "prd00001"\n  name: "Signed Up"\n'
        '  display_name: "1e3"\n  description: "line\\nbreak 😀"\n'
        '- id: "evt00002"\n  product_id: "prd00001"\n  name: "yes"\n  is_visible: true\n'
    ),
    "acme-inc-acc00001/web-app-prd00001/events.stats.yaml": (
        '- id: "evt00002"\n  total: 7\n  last_used_at: null\n'
    ),
    "acme-inc-acc00001/web-app-prd00001/metrics.yaml": (
        '- id: "met00001"\n  product_id: "prd00001"\n  title: "Revenue"\n  sort_index: 2.5\n'
    ),
    "acme-inc-acc00001/web-app-prd00001/properties.yaml": "[]\n",
    "acme-inc-acc00001/web-app-prd00001/reports.yaml": "[]\n",
    "_unassigned/products.yaml": (
        '- id: "prd00002"\n  account_id: "gone"\n  name: "Orphan"\n'
    ),
    "_unassigned/events.yaml": '- id: "evt00003"\n  product_id: "nowhere"\n  name: "Lost"\n',
    "_other/funnels.yaml": '- id: "fun00001"\n  name: "F"\n',
    "_other/evil-kind-25bbc601.yaml": '- id: "x1"\n',
}


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_golden_tree(tmp_path: Path) -> None:
    save_snapshot(_sample(), tmp_path / "snap", with_stats=True)
    assert _tree(tmp_path / "snap") == {k: v.encode() for k, v in GOLDEN.items()}
    assert os.listdir(tmp_path) == ["snap"]


def _no_fallback(*args: object) -> None:
    raise AssertionError("the safe loader was used for a file kmsnap wrote")


def test_round_trip_with_and_without_stats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(strict, "safe_load", _no_fallback)
    snap = _sample()
    save_snapshot(snap, tmp_path / "s", with_stats=True)
    loaded = load_snapshot(tmp_path / "s", with_stats=True)
    assert loaded == snap
    assert load_snapshot(DirectorySource(tmp_path / "s")).stats == {}
    save_snapshot(snap, tmp_path / "plain")
    assert not any(p.name.endswith(".stats.yaml") for p in (tmp_path / "plain").rglob("*"))
    assert load_snapshot(tmp_path / "plain").entities == snap.entities


def test_same_catalog_in_any_insertion_order_gives_identical_bytes() -> None:
    snap = _sample()
    shuffled = Snapshot(api=snap.api)
    rng = random.Random(3)
    for kind in rng.sample(sorted(snap.entities), len(snap.entities)):
        items = list(snap.entities[kind].items())
        rng.shuffle(items)
        shuffled.entities[kind] = {i: dict(reversed(list(r.items()))) for i, r in items}
    shuffled.stats = copy.deepcopy(snap.stats)
    assert render_snapshot(shuffled, with_stats=True) == render_snapshot(snap, with_stats=True)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.text()), st.text(min_size=1))
def test_slugs_never_escape_and_are_never_empty(name: str | None, entity_id: str) -> None:
    slug = slugify(name, entity_id)
    assert slug and slug not in (".", "..")
    assert all(c in "abcdefghijklmnopqrstuvwxyz0123456789-" for c in slug)
    assert not slug.startswith("-") and not slug.endswith("-")
    assert len(slug) <= storelayout.SLUG_NAME_CHARS + 9


def test_slug_examples_and_collisions() -> None:
    assert slugify("Signed Up!", "AB12cd34ef") == "signed-up-ab12cd34"
    assert slugify("../../etc", "..") not in ("", ".", "..")
    assert slugify(None, "abc") == "abc"
    snap = Snapshot()
    snap.add("account", {"id": "same0000-1", "name": "Twin"})
    snap.add("account", {"id": "same0000-2", "name": "Twin"})
    dirs = {rel.split("/")[0] for rel in render_snapshot(snap) if rel.endswith("account.yaml")}
    assert len(dirs) == 2 and all(d.startswith("twin-same0000-") for d in dirs)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=20), st.text(min_size=1, max_size=12)), max_size=6,
                unique_by=lambda t: t[1]))
def test_hazardous_names_round_trip_through_a_directory(names: list[tuple[str, str]]) -> None:
    snap = Snapshot(api="x")
    snap.add("account", {"id": "acc", "name": "A"})
    snap.add("product", {"id": "prd", "account_id": "acc", "name": "P"})
    for name, entity_id in names:
        snap.add("event", {"id": entity_id, "product_id": "prd", "name": name})
        snap.add("account", {"id": "a" + entity_id, "name": name})
    files = render_snapshot(snap)
    for rel in files:
        assert ".." not in rel.split("/") and not rel.startswith("/")

    class Memory:
        label = "memory"

        def list_files(self) -> dict[str, str | None]:
            return dict.fromkeys(files)

        def read_files(self, rels: object) -> dict[str, bytes]:
            return {r: files[r] for r in rels}  # type: ignore[attr-defined]

    assert load_snapshot(Memory()).entities == snap.entities


# --- atomic save ----------------------------------------------------------------------


def test_a_failure_mid_write_leaves_the_old_snapshot_byte_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "snap"
    save_snapshot(_sample(), target)
    before = _tree(target)
    calls = []

    def failing(path: Path, data: bytes) -> None:
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        path.write_bytes(data)

    monkeypatch.setattr(store, "_write_file", failing)
    bigger = _sample()
    bigger.add("event", {"id": "new", "product_id": "prd00001", "name": "New"})
    with pytest.raises(SnapshotError, match="No space left"):
        save_snapshot(bigger, target)
    assert _tree(target) == before
    assert os.listdir(tmp_path) == ["snap"]


@pytest.mark.parametrize("failing_call", [1, 2])
def test_ctrl_c_between_the_renames_restores_the_old_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing_call: int
) -> None:
    target = tmp_path / "snap"
    save_snapshot(_sample(), target)
    before = _tree(target)
    real_rename = os.rename
    monkeypatch.setattr(atomicdir, "_exchange", lambda a, b: False)  # the two-rename path
    calls = []

    def rename(src: object, dst: object) -> None:
        calls.append(src)
        if len(calls) == failing_call:
            raise KeyboardInterrupt
        real_rename(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(atomicdir.os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        save_snapshot(Snapshot(api="other"), target)
    monkeypatch.undo()
    assert _tree(target) == before
    assert os.listdir(tmp_path) == ["snap"]


def test_files_of_entities_that_are_gone_disappear(tmp_path: Path) -> None:
    save_snapshot(_sample(), tmp_path / "s")
    smaller = Snapshot(api="x")
    smaller.add("account", {"id": "acc00009", "name": "Other"})
    save_snapshot(smaller, tmp_path / "s")
    assert sorted(_tree(tmp_path / "s")) == ["kmsnap.yaml", "other-acc00009/account.yaml"]


def test_the_users_own_top_level_files_are_kept(tmp_path: Path) -> None:
    save_snapshot(_sample(), tmp_path / "s")
    (tmp_path / "s" / "README.md").write_text("about these files")
    (tmp_path / "s" / ".gitattributes").write_text("*.yaml -diff")
    (tmp_path / "s" / "stray.yaml").write_text("[]\n")
    save_snapshot(Snapshot(api="x"), tmp_path / "s")
    assert sorted(os.listdir(tmp_path / "s")) == [".gitattributes", "README.md", "kmsnap.yaml"]
    assert (tmp_path / "s" / "README.md").read_text() == "about these files"


def test_refuses_to_replace_a_directory_that_is_not_a_snapshot(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "thesis.txt").write_text("precious")
    with pytest.raises(SnapshotError, match="refusing"):
        save_snapshot(_sample(), tmp_path / "docs")
    assert (tmp_path / "docs" / "thesis.txt").read_text() == "precious"
    assert sorted(os.listdir(tmp_path)) == ["docs"]
    (tmp_path / "empty").mkdir()
    save_snapshot(_sample(), tmp_path / "empty")  # an empty directory is fine
    assert (tmp_path / "empty" / "kmsnap.yaml").is_file()


# --- untrusted input ------------------------------------------------------------------


def _snapshot_with(tmp_path: Path, rel: str, content: bytes) -> Path:
    root = tmp_path / "pr"
    save_snapshot(_sample(), root)
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(content)
    return root


EVENTS = "acme-inc-acc00001/web-app-prd00001/events.yaml"


@pytest.mark.parametrize(
    ("content", "message", "line"),
    [
        (b'a: &a [1, 2]\nb: &b [*a, *a]\nc: [*b, *b]\n', "anchors", 1),
        (b'- id: "e"\n  x: !!python/object/apply:os.system ["touch /tmp/pwned"]\n', "tags", 2),
        (b'- id: "e"\n  name: "ok"\n- id: [unclosed\n  name: x\n', None, 4),
        (b'id: "e"\nname: "x"\n', "list of entities", 1),
        (b'- id: "e"\n- name: "no id"\n', "without a string id", 2),
        (b'- "just a string"\n', "not a mapping", 1),
        (b'- id: "evt00001"\n- id: "evt00001"\n', "appears twice", 2),
    ],
)
def test_untrusted_snapshots_fail_with_file_and_line(
    tmp_path: Path, content: bytes, message: str | None, line: int
) -> None:
    root = _snapshot_with(tmp_path, EVENTS, content)
    with pytest.raises(SnapshotError) as info:
        load_snapshot(root)
    assert info.value.path == f"{root}/{EVENTS}"  # the snapshot first: which side of a diff
    assert info.value.line == line, str(info.value)
    if message:
        assert message in str(info.value)


def test_an_oversized_file_is_refused_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _snapshot_with(tmp_path, EVENTS, b'- id: "e"\n  name: "' + b"x" * 5000 + b'"\n')
    monkeypatch.setattr(store, "MAX_FILE_BYTES", 4096)
    with pytest.raises(SnapshotError, match="larger than") as info:
        load_snapshot(root)
    assert info.value.path == f"{root}/{EVENTS}"


@pytest.mark.parametrize(
    ("actual", "expected", "read"),
    [
        (30, 30, 30),  # as fstat said: one read of its own size
        (30, 10, 30),  # grew after fstat: read on to the end
        (100, 10, 51),  # grew past the bound: one byte more than the bound, for the refusal
        (100, 100, 51),  # said too big: still never more than the bound and one byte
        (5, 30, 5),  # shrank after fstat
        (0, 0, 0),
    ],
)
def test_a_file_is_read_to_its_size_and_never_past_the_bound(
    tmp_path: Path, actual: int, expected: int, read: int
) -> None:
    path = tmp_path / "f"
    path.write_bytes(bytes(range(actual)))
    with path.open("rb") as handle:
        data = read_bounded(handle, expected, 50)
    assert data == bytes(range(actual))[:read]


def test_not_a_snapshot_unknown_format_symlinks_and_stray_files(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SnapshotError, match="no kmsnap.yaml"):
        load_snapshot(tmp_path / "empty")
    root = _snapshot_with(tmp_path, "kmsnap.yaml", b"format: 2\napi: \"x\"\n")
    with pytest.raises(SnapshotError, match="unsupported snapshot format 2") as info:
        load_snapshot(root)
    assert info.value.line == 1
    root = _snapshot_with(tmp_path / "b", "a/b/c/d.yaml", b"[]\n")
    with pytest.raises(SnapshotError, match="unexpected file"):
        load_snapshot(root)
    root = _snapshot_with(tmp_path / "c", "README.md", b"# notes\n")
    assert load_snapshot(root).entities == _sample().entities
    os.symlink("/etc/passwd", root / "_unassigned" / "reports.yaml")
    with pytest.raises(SnapshotError, match="symbolic links"):
        load_snapshot(root)


def test_hand_edited_yaml_falls_back_to_the_safe_loader(tmp_path: Path) -> None:
    root = _snapshot_with(
        tmp_path, EVENTS, b"# edited by hand\n- id: evt9\n  name: 'Quoted'\n  total_x: 0x10\n"
    )
    events = load_snapshot(root).of("event")
    assert events["evt9"] == {"id": "evt9", "name": "Quoted", "total_x": 16}


# --- load_pair ------------------------------------------------------------------------


def _big(seed: int, size: int = 400) -> Snapshot:
    rng = random.Random(seed)
    snap = Snapshot(api="x")
    snap.add("account", {"id": "acc", "name": "A"})
    for p in range(3):
        snap.add("product", {"id": f"p{p}", "account_id": "acc", "name": f"P{p}"})
    for i in range(size):
        snap.add("event", {"id": f"e{i:04d}", "product_id": f"p{rng.randrange(3)}",
                           "name": f"Event {rng.randrange(50)}", "total": rng.randrange(9)})
    return snap


class Hashing(DirectorySource):
    """A directory that gives content ids, as a git tree does."""

    def list_files(self) -> dict[str, str | None]:
        return {
            rel: hashlib.sha1((self.path / rel).read_bytes()).hexdigest()
            for rel in super().list_files()
        }


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["rename", "drop", "add", "move", "stats"]),
                          st.integers(0, 399)), max_size=8),
       st.booleans(), st.booleans())
def test_load_pair_leaves_out_only_what_is_identical_on_both_sides(
    edits: list[tuple[str, int]], with_stats: bool, hashed: bool
) -> None:
    import tempfile

    old = _big(1)
    new = copy.deepcopy(old)
    for op, i in edits:
        eid = f"e{i:04d}"
        if eid not in new.entities["event"]:
            continue
        if op == "rename":
            new.entities["event"][eid]["name"] += "!"
        elif op == "drop":
            del new.entities["event"][eid]
        elif op == "add":
            new.entities["event"][eid + "n"] = dict(new.entities["event"][eid], id=eid + "n")
        elif op == "move":
            new.entities["event"][eid]["product_id"] = "p0"
        else:
            new.stats["event"][eid] = {"total": 99}
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp, "a"), Path(tmp, "b")
        save_snapshot(old, a, with_stats=True)
        save_snapshot(new, b, with_stats=True)
        full_old = load_snapshot(a, with_stats=with_stats)
        full_new = load_snapshot(b, with_stats=with_stats)
        source = Hashing if hashed else DirectorySource
        pair_old, pair_new = load_pair(source(a), source(b), with_stats=with_stats)
    assert pair_old.of("account") == full_old.of("account")
    assert pair_new.of("product") == full_new.of("product")
    for kind in ("event",):
        full_a, full_b = full_old.of(kind), full_new.of(kind)
        kept_a, kept_b = pair_old.of(kind), pair_new.of(kind)
        # kept entries are exact; anything left out is identical on both sides
        assert all(full_a[i] == r for i, r in kept_a.items())
        assert all(full_b[i] == r for i, r in kept_b.items())
        for i in (full_a.keys() | full_b.keys()) - (kept_a.keys() & kept_b.keys()):
            if i not in kept_a and i not in kept_b:
                assert full_a.get(i) == full_b.get(i)
            else:  # kept on one side: must then be absent on the other in full, too
                assert (i in kept_a) == (i in full_a) and (i in kept_b) == (i in full_b)
        if with_stats:
            sa, sb = full_old.stats.get(kind, {}), full_new.stats.get(kind, {})
            for i in sa.keys() | sb.keys():
                if sa.get(i) != sb.get(i):
                    assert i in kept_a or i in kept_b
    if not edits:
        assert pair_old.of("event") == {} == pair_new.of("event")


def test_load_pair_skips_files_with_equal_content_ids(tmp_path: Path) -> None:
    save_snapshot(_big(1), tmp_path / "a")

    class Counting(DirectorySource):
        read: list[str] = []

        def list_files(self) -> dict[str, str | None]:
            return {rel: "same" for rel in super().list_files()}

        def read_files(self, rels: object) -> dict[str, bytes]:
            self.read.extend(rels)  # type: ignore[call-overload]
            return super().read_files(rels)  # type: ignore[arg-type]

    source = Counting(tmp_path / "a")
    old, new = load_pair(source, Counting(tmp_path / "a"))
    assert not any(rel.endswith("events.yaml") for rel in Counting.read)
    assert old.of("product") == new.of("product") and len(old.of("product")) == 3
    assert old.of("event") == {} == new.of("event")


def test_load_pair_keeps_entities_whose_usage_fields_moved(tmp_path: Path) -> None:
    old = _big(1)
    new = copy.deepcopy(old)
    new.stats["event"]["e0007"] = {"total": 12345}
    save_snapshot(old, tmp_path / "a", with_stats=True)
    save_snapshot(new, tmp_path / "b", with_stats=True)
    pair_old, pair_new = load_pair(Hashing(tmp_path / "a"), Hashing(tmp_path / "b"),
                                   with_stats=True)
    assert "e0007" in pair_old.of("event") and "e0007" in pair_new.of("event")
    assert pair_new.stats["event"]["e0007"] == {"total": 12345}
    plain_old, plain_new = load_pair(Hashing(tmp_path / "a"), Hashing(tmp_path / "b"))
    assert plain_old.of("event") == {} == plain_new.of("event")


def test_a_crlf_checkout_reads_the_same_and_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_snapshot(_sample(), tmp_path / "s", with_stats=True)
    for path in (tmp_path / "s").rglob("*.yaml"):
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    monkeypatch.setattr(strict, "safe_load", _no_fallback)
    assert load_snapshot(tmp_path / "s", with_stats=True) == _sample()


# --- kind names from an untrusted snapshot ----------------------------------------------

HOSTILE_KIND = "<img src=https://evil.example/p.png> @octocat\n## forged heading"


@pytest.mark.parametrize(
    "kind",
    [HOSTILE_KIND, "a\u202eb", "tab\there", "", " padded", "k" * 101, "x\x1b[31m"],
)
def test_a_kind_name_from_other_kinds_must_be_one_printable_line(
    tmp_path: Path, kind: str
) -> None:
    meta = (
        'format: 1\napi: "x"\n'
        + f"other_kinds: {{\"x\": {json.dumps(kind)}}}\n"
    )
    root = _snapshot_with(tmp_path, "kmsnap.yaml", meta.encode())
    (root / "_other" / "x.yaml").write_bytes(b'- id: "z1"\n  name: "thing"\n')
    for load in (load_snapshot, lambda r: load_pair(DirectorySource(r), DirectorySource(r))):
        with pytest.raises(SnapshotError, match="kind name") as info:
            load(root)
        assert "kmsnap.yaml" in str(info.value) and "other_kinds" in str(info.value)
        assert "\n" not in str(info.value) and "\u202e" not in str(info.value)


def test_a_kind_name_from_a_file_name_is_checked_too(tmp_path: Path) -> None:
    root = _snapshot_with(tmp_path, "_other/a\u202eb.yaml", b'- id: "z1"\n')
    with pytest.raises(SnapshotError, match="kind name") as info:
        load_snapshot(root)
    assert "\u202e" not in str(info.value) and "_other/a" in str(info.value)
    root = _snapshot_with(tmp_path / "u", "_unassigned/x\x07y.yaml", b'- id: "z1"\n')
    with pytest.raises(SnapshotError, match="kind name"):
        load_snapshot(root)


def test_real_unknown_rels_are_fine_and_hostile_ones_are_not_written(tmp_path: Path) -> None:
    snap = _sample()
    for kind in ("segments", "funnel-reports", "km:cohorts", "https://x.example/rels/a b"):
        snap.add(kind, {"id": "s1", "name": "S"})
    save_snapshot(snap, tmp_path / "ok")
    assert load_snapshot(tmp_path / "ok").entities == snap.entities
    snap.add("bad\nkind", {"id": "s1"})
    with pytest.raises(SnapshotError, match="cannot store an unknown collection"):
        save_snapshot(snap, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
