"""Attacks on packed pulls: for any records a server sends, ``pack=True`` gives exactly the
outcome of ``pack=False`` (files, warnings, counts, records, or the same error with the
previous snapshot untouched). Served by a real loopback server speaking the Core API."""

from __future__ import annotations

import contextlib
import json
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hostile import send, serve
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typed_value import typed

from kmsnap.compare import pull_selected
from kmsnap.errors import SnapshotError
from kmsnap.snapshot.packed import PackedRecords
from kmsnap.snapshot.selection import Selection, Selector
from kmsnap.sources.core.crawler import PullOptions, PullResult

TOKEN = "attack-token"
KIND_RELS = {"report": "reports", "event": "events", "property": "properties",
             "metric": "metrics"}
ACCOUNT = {"id": "acc1", "name": "Acme", "status": "active"}
PRODUCTS = [{"id": "p1", "account_id": "acc1", "name": "Shop"},
            {"id": "p2", "account_id": "acc1", "name": "Blog"}]


def raw(value: Any) -> str:
    """A JSON text for one item: lone surrogates as escapes, NaN as the Python decoder reads."""
    return value if isinstance(value, str) else json.dumps(value)


@dataclass
class Api:
    """What the loopback server serves: rel -> the JSON texts of its items."""

    collections: dict[str, list[str]]
    page_size: int = 100
    with_total: bool = True
    base: str = ""
    served: list[tuple[str, int]] = field(default_factory=list)  # (rel, offset) of each page
    lock: threading.Lock = field(default_factory=threading.Lock)
    before_page: Callable[[Api, str, int], None] | None = None  # may change the collections

    def page(self, rel: str, query: dict[str, list[str]]) -> bytes:
        limit = min(int(query.get("limit", ["20"])[0]), self.page_size)
        offset = int(query.get("offset", ["0"])[0])
        with self.lock:
            if self.before_page is not None:
                self.before_page(self, rel, offset)
            self.served.append((rel, offset))
            items = list(self.collections[rel])
        chunk = items[offset:offset + limit]
        url = f"{self.base}/core/{rel}"
        pagination: dict[str, Any] = {"limit": limit, "offset": offset}
        if self.with_total:
            pagination["total"] = len(items)
        links = [{"rel": "self", "href": f"{url}?limit={limit}&offset={offset}"}]
        if offset + limit < len(items):
            links.append({"rel": "next", "href": f"{url}?limit={limit}&offset={offset + limit}"})
        head = json.dumps({"links": links, "pagination": pagination})[:-1]
        body = head + ', "data": [' + ", ".join(chunk) + "]}"
        return body.replace("@BASE@", self.base).encode()

    def root(self) -> bytes:
        links = [{"rel": rel, "href": f"{self.base}/core/{rel}"} for rel in self.collections
                 if "/" not in rel]  # product-scoped ones only from the products' links
        return json.dumps({"data": {"name": "KISSmetrics API", "links": links},
                           "links": [{"rel": "self", "href": f"{self.base}/core"}]}).encode()


def catalog(records: dict[str, list[Any]] | None = None, **kwargs: Any) -> Api:
    """One account, two products, and ``records`` (kind -> items) of the product kinds."""
    records = records or {}
    collections = {"accounts": [raw(ACCOUNT)], "products": [raw(p) for p in PRODUCTS]}
    for kind, rel in KIND_RELS.items():
        collections[rel] = [raw(item) for item in records.get(kind, [])]
    return Api(collections, **kwargs)


@contextlib.contextmanager
def running(api: Api) -> Iterator[str]:
    """The Core API base URL of a loopback server serving ``api``."""

    def handler(request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            send(request, 401, b'{"error": {"status": 401}}')
        elif parts.path == "/core":
            send(request, 200, api.root(), headers={"Content-Type": "application/json"})
        elif parts.path.startswith("/core/") and parts.path[6:] in api.collections:
            send(request, 200, api.page(parts.path[6:], parse_qs(parts.query)),
                 headers={"Content-Type": "application/json"})
        else:
            send(request, 404, b'{"error": {"status": 404}}')

    with serve(handler) as base:
        api.base = base
        yield base + "/core"


# -- outcomes -------------------------------------------------------------------------------


def error_of(exc: BaseException) -> tuple[str, str]:
    return type(exc).__name__, str(exc)


def tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


@dataclass
class Outcome:
    """Everything a pull gives a caller, in comparable form."""

    pull_error: tuple[str, str] | None = None
    warnings: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    entities: dict[str, Any] = field(default_factory=dict)
    stats: Any = None
    files: dict[str, bytes] | tuple[str, str] | None = None
    saved: dict[str, bytes] | tuple[str, str] | None = None
    packed_kinds: list[str] = field(default_factory=list)  # held as PackedRecords: not compared


def entities_of(result: PullResult) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind, by_id in result.snapshot.entities.items():
        records: dict[str, Any] = {}
        for key in sorted(by_id):
            try:
                records[key] = typed(by_id[key])
            except Exception as exc:  # a record that cannot be read back
                records[key] = ("unreadable", *error_of(exc))
        out[kind] = records
    return out


def outcome(url: str, where: Path, *, pack: bool, with_stats: bool = False,
            select: Selection | None = None) -> Outcome:
    """Pull with ``pack`` (and ``select``, as ``kmsnap pull`` keeps kmsnap.yaml's include and
    exclude), then render and save over a previous snapshot at ``where``."""
    from kmsnap.model import Snapshot
    from kmsnap.snapshot.store import render_snapshot, save_snapshot

    options = PullOptions(api=url, token=TOKEN, pack=pack, with_stats=with_stats,
                          concurrency=4)
    try:
        result = pull_selected(options, select)
    except Exception as exc:
        return Outcome(pull_error=error_of(exc))
    out = Outcome(warnings=result.warnings, counts=result.snapshot.counts(),
                  entities=entities_of(result), stats=typed(result.snapshot.stats),
                  packed_kinds=sorted(kind for kind, by_id in result.snapshot.entities.items()
                                      if isinstance(by_id, PackedRecords)))
    try:
        out.files = render_snapshot(result.snapshot, with_stats=with_stats)
    except Exception as exc:
        out.files = error_of(exc)
    target = where / ("packed" if pack else "plain") / "snap"
    save_snapshot(Snapshot(api="http://previous", entities={"account": {"old": {
        "id": "old", "name": "Previous"}}}), target)
    before = tree(target)
    try:
        save_snapshot(result.snapshot, target, with_stats=with_stats)
    except Exception as exc:
        out.saved = error_of(exc)
        assert tree(target) == before, "a failed save changed the previous snapshot"
        assert sorted(p.name for p in target.parent.iterdir()) == ["snap"]
    else:
        out.saved = tree(target)
    return out


def both(api: Api, tmp_path: Path, *, with_stats: bool = False,
         select: Selection | None = None) -> tuple[Outcome, Outcome]:
    """The outcomes of ``pack=False`` and ``pack=True`` pulls of one server."""
    with running(api) as url:
        plain = outcome(url, tmp_path, pack=False, with_stats=with_stats, select=select)
        packed = outcome(url, tmp_path, pack=True, with_stats=with_stats, select=select)
    return plain, packed


def assert_same(plain: Outcome, packed: Outcome) -> None:
    assert packed.pull_error == plain.pull_error
    assert packed.warnings == plain.warnings
    assert packed.counts == plain.counts
    assert packed.entities == plain.entities
    assert packed.stats == plain.stats
    assert packed.files == plain.files
    assert packed.saved == plain.saved


def event(entity_id: Any, product: Any = "p1", **fields: Any) -> dict[str, Any]:
    return {"id": entity_id, "product_id": product, **fields}


def check(records: dict[str, list[Any]], tmp_path: Path, *, with_stats: bool = False,
          packs: bool = True, **kwargs: Any) -> Outcome:
    """Both pulls of ``records`` give the same outcome; the plain one, to assert more on.

    With ``packs``, the packed pull did hold some kind packed (the attack reached the code)."""
    plain, packed = both(catalog(records, **kwargs), tmp_path, with_stats=with_stats)
    assert_same(plain, packed)
    assert plain.packed_kinds == []
    if packs and packed.pull_error is None:
        assert packed.packed_kinds, "nothing was packed: the attack missed packing"
    return plain


# -- explicit hostile records ---------------------------------------------------------------

NASTY_STRINGS = [
    'quote " in it', "back\\slash", "\\", '\\"', "new\nline", "cr\r", "crlf\r\n", "tab\t",
    "nul\x00", "ls\u2028", "ps\u2029", "nel\x85", "del\x7f", "c1\x80\x9f", "bom\ufeff",
    "\ufffe\uffff", "emoji 😀", "\U0001f600\U0001f601", "yes", "no", "on", "null", "Null",
    "~", "true", "1e3", "0x1F", "012", "1_000", ".inf", ".nan", "NaN", "-0.0", "- x",
    "a: b", "#", "# comment", "  lead", "trail  ", " ", "", "---", "...", "? q", "| lit",
    "> fold", "&anchor", "*alias", "!tag", "%YAML", "@", "`", "{a: 1}", "[1, 2]",
    "2024-01-02", "12:30", "\\ud800", "\\u2028", "\\/", "é", "e\u0301", "\u00a0", "x" * 5000,
    "\n- id: injected", "\n  name: injected", '"\n  name: "x', "- ", "  ",
]


@pytest.mark.parametrize("forcing", [{}, {"w": float("nan")}, {"w": float("-inf")},
                                     {f"k{i:02d}": i for i in range(70)}])
def test_hostile_string_names_and_values_give_the_same_files(
    tmp_path: Path, forcing: dict[str, Any],
) -> None:
    """Also read back by the strict loader: ``forcing`` makes the fast reader refuse."""
    events = [event(f"e{i:03d}", ("p1", "p2", "px")[i % 3], name=text, description=text,
                    display_name=text[::-1], tags=[text, {text[:100]: text}], **forcing)
              for i, text in enumerate(NASTY_STRINGS)]
    # metrics sort by title, reports carry an account_id: the same strings in each
    metrics = [{"id": f"m{i:03d}", "product_id": "p1", "title": text, "name": "n"}
               for i, text in enumerate(NASTY_STRINGS)]
    reports = [{"id": text or "empty", "account_id": "acc1", "product_id": "p2", "name": text}
               for text in NASTY_STRINGS[:30]]
    plain = check({"event": events, "metric": metrics, "report": reports}, tmp_path,
                  page_size=7)
    assert isinstance(plain.files, dict)
    shop = next(rel for rel in plain.files if rel.endswith("shop-p1/events.yaml"))
    assert plain.files[shop].count(b"\n- ") + 1 == len(range(0, len(NASTY_STRINGS), 3))
    assert b'name: "\\n- id: injected"' in plain.files[shop]
    assert plain.counts["event"] == len(NASTY_STRINGS)


def test_strings_as_names_that_sort_alike_give_the_same_order(tmp_path: Path) -> None:
    # equal names (order by id), prefixes, case, escapes that sort before their raw form
    names = ["a", "a", "A", "a\x00", "a\t", "a ", "a\\", 'a"', "a\u2028", "a\x85", "ab",
             "a😀", "a\uffff", "", "", "\x00", "\x7f"]
    events = [event(f"id{i:02d}", name=name) for i, name in enumerate(names)]
    events += [event("0", name="a"), event("00", name="a"), event("id-", name="a")]
    plain = check({"event": events}, tmp_path, page_size=3)
    assert isinstance(plain.files, dict)
    assert plain.counts["event"] == len(events)


def test_names_that_are_not_strings_sort_as_empty_in_both(tmp_path: Path) -> None:
    names: list[Any] = [1, 0, -1, 1.5, -0.0, 1e308, True, False, None, [], ["a"], {},
                        {"name": "x"}, [[["deep"]]], "plain", 10**40]
    events = [event(f"n{i:02d}", name=name) for i, name in enumerate(names)]
    events.append(event("missing"))  # no name at all
    metrics = [{"id": f"m{i:02d}", "product_id": "p2", "title": name}
               for i, name in enumerate(names)]
    plain = check({"event": events, "metric": metrics}, tmp_path, page_size=4)
    assert plain.counts["event"] == len(events)


def test_nested_values_numbers_and_odd_keys_give_the_same_files(tmp_path: Path) -> None:
    nested: list[Any] = [[], {}, [[]], [{}], {"": None}, {"b": 1, "a": [1, {"z": None}]},
                         [1, "two", 3.5, None, True, [False]], {"yes": "no", "a b": {"c": []}},
                         {"\u2028": "\x85", "k\n": "v\r"}, list(range(50))]
    numbers: list[Any] = [0, -0.0, 0.0, 1e308, -1e308, 5e-324, 1.5, 1e16, 2**63, -(2**64),
                          10**300, 1.0, 100.0, 123456789.123456789]
    events = [event(f"v{i:02d}", name=f"nested {i}", value=value, tags=[value])
              for i, value in enumerate(nested)]
    events += [event(f"n{i:02d}", name=f"number {i}", value=value)
               for i, value in enumerate(numbers)]
    odd_keys = {"Name": 1, "yes": 2, "null": 3, "a b": 4, "": 5, "1": 6, "-": 7, "#": 8,
                "k\ny": 9, "\u2028": 10, "é": 11, "z" * 200: 12, "_ok": 13, "UPPER": 14,
                "zzz": {"inner": 1}, "aaa": [1]}
    events.append({"zzz": 0, "name": "odd keys", **odd_keys, "id": "k1", "product_id": "p1"})
    events.append({"description": "reverse order", "name": "rev", "product_id": "p2",
                   "id": "k2", "is_visible": True})
    plain = check({"event": events}, tmp_path, page_size=5)
    assert plain.counts["event"] == len(events)


def test_huge_ints_infinities_and_nan_as_the_json_decoder_reads_them(tmp_path: Path) -> None:
    items = [
        '{"id": "i1", "product_id": "p1", "name": "big", "v": ' + "9" * 4000 + "}",
        '{"id": "i2", "product_id": "p1", "name": "inf", "v": Infinity, "w": -Infinity}',
        '{"id": "i3", "product_id": "p1", "name": "nan", "v": NaN, "w": [NaN, {"x": NaN}]}',
        '{"id": "i4", "product_id": "p1", "name": "overflow", "v": 1e400, "w": -1e400}',
        '{"id": "i5", "product_id": "p1", "name": "neg zero", "v": -0, "w": -0.0, "x": 1E3}',
        '{"id": "i6", "product_id": "p1", "name": "dup", "name": "dup wins", "v": 1, "v": 2}',
    ]
    plain = check({"event": items}, tmp_path, page_size=2)
    assert plain.counts["event"] == len(items)


def test_ids_duplicated_within_and_across_pages_keep_the_first_in_both(
    tmp_path: Path,
) -> None:
    events = [event("d", name="first"), event("d", name="same page"), event("x", name="x"),
              event("d", name="next page"), event(1, name="int one"), event("1", name="str one"),
              event("2", name="str two"), event(2, name="int two"), event(1.0, name="float one"),
              event(True, name="true"), event("True", name="str true"), event("", name="empty"),
              event(None, name="keyless"), event(None, name="keyless"),
              {"product_id": "p1", "name": "no id"}]
    plain = check({"event": events}, tmp_path, page_size=3, with_total=False)
    assert isinstance(plain.entities["event"], dict)
    assert plain.entities["event"]["d"] == typed(event("d", name="first"))
    assert plain.entities["event"]["1"] == typed(event(1, name="int one"))
    assert plain.entities["event"]["2"] == typed(event("2", name="str two"))


def test_duplicates_against_the_total_fail_both_pulls_alike(tmp_path: Path) -> None:
    plain = check({"event": [event("d", name="a"), event("d", name="b"), event("e")]},
                  tmp_path, page_size=2)
    assert plain.pull_error is not None and plain.pull_error[0] == "IncompleteError"


def test_unknown_collections_beside_packed_ones_stay_alike(tmp_path: Path) -> None:
    api = catalog({"event": [event("e", name="packed")]})
    api.collections["segments"] = [raw(event("s1", name="seg \u2028")), raw({"id": 2}),
                                   raw({"name": "no id"}), raw(event("e", name="same id"))]
    api.collections["funnel-reports"] = [raw({"id": "f", "product_id": "p1", "v": [[1]]})]
    plain, packed = both(api, tmp_path)
    assert_same(plain, packed)
    assert packed.packed_kinds == ["event"]
    assert plain.counts["segments"] == 4
    assert any("kept unknown collection 'segments'" in w for w in plain.warnings)


def test_parents_missing_null_ints_or_unknown_give_the_same_files(tmp_path: Path) -> None:
    products: list[Any] = ["p1", "p2", "px", "", None, 1, 0, 1.5, True, "P1", " p1", "p1 "]
    events = [event(f"e{i:02d}", product, name=f"to {product!r}")
              for i, product in enumerate(products)]
    events.append({"id": "nop", "name": "no product_id"})
    reports = [{"id": f"r{i:02d}", "product_id": product, "account_id": account, "name": "r"}
               for i, (product, account) in enumerate(
                   [("p1", "acc1"), ("p1", None), ("p2", 7), ("px", "acc1"), ("px", "nobody"),
                    (None, "acc1"), (3, 3.5), ("p2", True), ("p1", "")])]
    reports.append({"id": "noacc", "product_id": "p2", "name": "no account_id"})
    plain = check({"event": events, "report": reports}, tmp_path, page_size=4)
    assert isinstance(plain.files, dict)
    assert "_unassigned/events.yaml" in plain.files
    assert any("belong to a product the token cannot see" in w for w in plain.warnings)


def test_products_with_hostile_ids_and_names_hold_the_same_files(tmp_path: Path) -> None:
    api = catalog({"event": [event("e1", "1", name="to int product"),
                             event("e2", "Shop", name="to a product name"),
                             event("e3", "p\n1", name="to a newline id"),
                             event("e4", "p1", name="to p1")]}, page_size=1)
    api.collections["products"] += [raw({"id": 1, "account_id": "acc1", "name": "int id"}),
                                    raw({"id": "p\n1", "account_id": "acc1", "name": "Shop"}),
                                    raw({"id": "orphan", "account_id": "gone", "name": "O"})]
    plain, packed = both(api, tmp_path)
    assert_same(plain, packed)
    assert isinstance(plain.files, dict) and len(plain.files) > 10


def test_usage_fields_with_hostile_values_give_the_same_stats_files(tmp_path: Path) -> None:
    events = [event(f"s{i}", name=f"stats {i}", total=total, first_used_at=when,
                    last_sent_at=[when])
              for i, (total, when) in enumerate([(1, "2024-01-01"), (None, None),
                                                 (10**30, "a\nb"), (1.5, "yes"),
                                                 ("many", {"at": 1}), (True, "")])]
    events.append(event("nostats", name="none"))
    plain = check({"event": events, "property": [
        {"id": "q1", "product_id": "p2", "name": "prop", "first_used_at": "x", "type": None}]},
        tmp_path, with_stats=True, page_size=2)
    assert isinstance(plain.files, dict)
    assert any(rel.endswith("events.stats.yaml") for rel in plain.files)


def test_very_long_strings_and_many_fields_give_the_same_files(tmp_path: Path) -> None:
    long = "ü" * 300_000 + "\u2028" + '"' * 1000
    fields = {f"extra_{i:03d}": i for i in range(80)}  # past the fast reader's 64 keys
    events = [event("long", name=long, description=long), event("wide", name="wide", **fields),
              event("both", name="both", v=[long], **fields)]
    plain = check({"event": events}, tmp_path, page_size=1)
    assert plain.counts["event"] == 3


def test_one_lone_surrogate_fails_both_alike_and_keeps_the_previous_snapshot(
    tmp_path: Path,
) -> None:
    for i, records in enumerate((
            [event("ok", name="fine"), event("bad", name="x\ud800")],
            [event("ok", name="fine"), event("bad", name="x", **{"k\udfff": 1})],
            [event("bad\ud83d", name="id itself")],
            [event("ok", name="fine"), event("bad", name="n", v=["\udc00"])])):
        plain = check({"event": records}, tmp_path / str(i), page_size=1, packs=i != 2)
        assert isinstance(plain.saved, tuple) and plain.saved[0] == "SnapshotError"
        assert "lone surrogate" in plain.saved[1]


def test_one_field_name_too_long_fails_both_alike(tmp_path: Path) -> None:
    plain = check({"event": [event("ok", name="fine"),
                             event("long", name="n", **{"k" * 1001: 1})]}, tmp_path, page_size=1)
    assert isinstance(plain.saved, tuple)
    assert "longer than 1000 characters" in plain.saved[1]


def test_a_collection_that_moves_during_the_pull_is_fetched_again_alike(
    tmp_path: Path,
) -> None:
    """The first pass of events sees one more item than it gets (the catalog moved): the
    packed pages of that pass are dropped and the second pass kept, as the plain ones."""
    first = [event(f"e{i}", name=f"first {i}", v=[i]) for i in range(9)]
    second = [event(f"e{i}", name=f"second {i}", v={"i": i}) for i in range(6)] + [
        event(8, name="int id"), event("x\u2028", name="\x85")]

    def moving(api: Api, rel: str, offset: int) -> None:
        if rel != "events":
            return
        passes = sum(1 for served in api.served if served == ("events", 0))
        if offset == 0:  # each pull's first pass: the last item vanishes after page 0
            api.collections["events"] = [raw(e) for e in (first if passes % 2 == 0 else second)]
        elif passes % 2 == 1:
            api.collections["events"] = [raw(e) for e in first[:-1]]

    api = catalog({"event": first}, page_size=2)
    api.before_page = moving
    plain, packed = both(api, tmp_path)
    assert_same(plain, packed)
    assert plain.pull_error is None and packed.packed_kinds == ["event"], plain.pull_error
    assert plain.entities["event"]["e0"] == typed(event("e0", name="second 0", v={"i": 0}))
    assert plain.counts["event"] == len(second)
    assert sum(1 for served in api.served if served == ("events", 0)) == 4  # two per pull


def test_scoped_collections_merged_replace_alike(tmp_path: Path) -> None:
    """Without a top-level events collection, each product's own: an event in both, with
    ids as strings in one and ints in the other, is the later collection's in both pulls."""
    products = [{**p, "links": [{"rel": "events",
                                 "href": f"@BASE@/core/products/{p['id']}/events"}]}
                for p in PRODUCTS]
    api = catalog({}, page_size=2)
    del api.collections["events"]
    api.collections["products"] = [raw(p) for p in products]
    api.collections["products/p1/events"] = [raw(e) for e in (
        event("shared", name="from p1"), event("only1", name="p1 only"), event(5, name="int"),
        event("6", name="str six"), event("bad", "p1", name="x", v=float("nan")))]
    api.collections["products/p2/events"] = [raw(e) for e in (
        event("shared", "p2", name="from p2"), event("5", "p2", name="str five"),
        event(6, "p2", name="int six"), event("only2", "p2", name="p2 only"))]
    plain, packed = both(api, tmp_path)
    assert_same(plain, packed)
    assert packed.packed_kinds == ["event"]
    assert plain.entities["event"]["shared"] == typed(event("shared", "p2", name="from p2"))
    assert plain.entities["event"]["5"] == typed(event("5", "p2", name="str five"))
    assert plain.entities["event"]["6"] == typed(event(6, "p2", name="int six"))


# -- differences found by this file (fixed in 31be030; kept as regressions) ----------------
# Against d5da76f each of these failed: the packed pull died with TypeError on a list
# account id, shared (product, 1) for an account id true, named another entity than the
# plain pull when two records of a file were unstorable, and held records (nested deeper than
# 100, or a key of many U+2028) that it could write but not read back.


@pytest.mark.parametrize("account", [[], ["acc1"], {}, {"id": "acc1"}, [[]]])
def test_an_account_id_that_is_a_list_or_object(tmp_path: Path, account: Any) -> None:
    plain = check({"report": [{"id": "r1", "product_id": "p1", "account_id": account,
                               "name": "r"}, {"id": "r2", "product_id": "p1", "name": "ok"}]},
                  tmp_path)
    assert plain.counts["report"] == 2


@pytest.mark.parametrize("bad", [{"name": "\ud800"}, {"k" * 1001: 1}, {"\u2028" * 167: 1},
                                 {"v": {"\x85" * 200: 1}}, {"v": "[" * 95 + "]" * 95}])
def test_two_unstorable_records_in_one_file_name_the_same_entity(
    tmp_path: Path, bad: dict[str, Any],
) -> None:
    """The plain pull names the first by (name, id); the packed one must too, whichever
    arrives first, also with a third unstorable one in another file."""
    def poisoned(entity_id: str, name: str, product: str = "p1") -> str:
        fields = {key: value for key, value in bad.items() if key != "name"}
        nested = fields.pop("v", None)
        record = event(entity_id, product, name=name, **fields)
        if isinstance(nested, str):  # raw JSON: nesting
            return raw(record)[:-1] + ', "v": ' + nested + "}"
        if nested is not None:
            record["v"] = nested
        if "name" in bad:
            record["name"] = name + bad["name"]
        return raw(record)

    plain = check({"event": [event("ok", name="fine"), poisoned("b", "b"), poisoned("a", "a"),
                             poisoned("c", "c", "p2"), poisoned("0", "b")]},
                  tmp_path, page_size=1)
    assert isinstance(plain.saved, tuple) and plain.saved[0] == "SnapshotError"
    assert "'a'" in plain.saved[1]


@pytest.mark.parametrize("selection", [
    Selection(include=Selector(accounts=frozenset({"True"}))),
    Selection(exclude=Selector(accounts=frozenset({"1"}))),
    Selection(include=Selector(accounts=frozenset({"0"}))),
    Selection(exclude=Selector(accounts=frozenset({"-0.0"}))),
])
def test_account_ids_equal_by_value_but_not_by_type_select_alike(
    tmp_path: Path, selection: Selection,
) -> None:
    accounts: list[Any] = [1, True, 1.0, "1", 0, False, 0.0, -0.0]
    reports = [{"id": f"r{i}", "product_id": "px", "account_id": account, "name": "r"}
               for i, account in enumerate(accounts)]
    plain, packed = both(catalog({"report": reports}, page_size=3), tmp_path, select=selection)
    assert_same(plain, packed)
    assert packed.packed_kinds == ["report"]
    assert 0 < plain.counts["report"] < len(accounts)


def test_account_ids_equal_by_value_select_alike_from_kmsnap_yaml(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kmsnap.config import load_config
    from kmsnap.snapshot.store import save_snapshot

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KISSMETRICS_TOKEN", TOKEN)
    (tmp_path / "kmsnap.yaml").write_text("include:\n  accounts: [\"True\"]\n")
    reports = [{"id": "r1", "product_id": "px", "account_id": 1, "name": "one"},
               {"id": "r2", "product_id": "px", "account_id": True, "name": "true"}]
    with running(catalog({"report": reports})) as url:
        code, err = cli_pull(url, tmp_path / "cli", capfd)
        plain = pull_selected(PullOptions(api=url, token=TOKEN, with_stats=False),
                              load_config(cwd=tmp_path))
    assert code == 0, err
    assert sorted(plain.snapshot.of("report")) == ["r2"]
    save_snapshot(plain.snapshot, tmp_path / "lib")
    assert tree(tmp_path / "cli") == tree(tmp_path / "lib")


def nested(depth: int, leaf: str = "1", opener: str = "[") -> str:
    if opener == "[":
        return "[" * depth + leaf + "]" * depth
    return '{"k": ' * depth + leaf + "}" * depth


# More than 64 keys, or a float written .nan or .inf: the fast reader refuses the record, the
# strict loader reads it (the path a packed record is read back on, when it is looked up).
SLOW_READ: list[dict[str, Any]] = [{}, {"w": float("nan")},
                                   {f"k{i:02d}": i for i in range(70)}]


@pytest.mark.parametrize("forcing", SLOW_READ)
@pytest.mark.parametrize("opener", ["[", "{"])
def test_values_nested_to_the_writers_bound_and_past_it(
    tmp_path: Path, forcing: dict[str, Any], opener: str,
) -> None:
    records: list[Any] = [event("ok", name="fine")]
    for depth in (88, 89, 90, 91, 92, 99, 150):
        record = raw(event(f"d{depth}", ("p1", "p2")[depth % 2], name=f"depth {depth}",
                           **forcing))
        records.append(record[:-1] + ', "v": ' + nested(depth, opener=opener) + "}")
    plain = check({"event": records}, tmp_path, page_size=1)
    assert isinstance(plain.saved, tuple)
    assert "'d150'" in plain.saved[1] and "nested more than 90 levels" in plain.saved[1]
    alone = check({"event": records[:4]}, tmp_path / "ok", page_size=2)  # up to 90 deep
    assert isinstance(alone.saved, dict)
    assert all(value[0] == "dict" for value in alone.entities["event"].values())


@pytest.mark.parametrize("forcing", SLOW_READ)
def test_keys_that_grow_when_escaped_at_the_readers_bound(
    tmp_path: Path, forcing: dict[str, Any],
) -> None:
    # a quoted key of 2 + 6n characters once each U+2028 (or C1, U+FEFF) is a \u escape
    fits = [event("ok", name="fine"), event("k166", name="k", **{"\u2028" * 166: 1}, **forcing),
            event("k998", name="k", **{"\ufeff" + "x" * 992: 1}, **forcing),
            event("n166", name="n", v={"\x85" * 166: {"\x9f" * 166: 1}}, **forcing)]
    plain = check({"event": fits}, tmp_path, page_size=2)
    assert isinstance(plain.saved, dict)
    assert all(value[0] == "dict" for value in plain.entities["event"].values())
    overs: list[dict[str, Any]] = [{"\u2028" * 167: 1}, {"\ufeff" + "x" * 993: 1},
                                   {"v": [{"\x85" * 167: 1}]}]
    for i, fields in enumerate(overs):
        over = check({"event": fits + [event("over", name="o", **fields, **forcing)]},
                     tmp_path / str(i), page_size=2)
        assert isinstance(over.saved, tuple) and "longer than 1000" in over.saved[1]


def test_the_deepest_value_the_api_client_decodes_fails_both_alike(tmp_path: Path) -> None:
    """Past the writer's bound the save fails; past the JSON decoder's, the pull: at the
    deepest nesting a pull decodes (found here, it depends on the worker's stack), and one
    deeper, the two pulls fail alike."""
    low, high = 90, 5000  # a packed pull decodes ``low`` levels, not ``high``
    api = catalog({"event": [nested_event(low)]})
    with running(api) as url:
        def decodes(depth: int) -> bool:
            api.collections["events"] = [raw(event("ok", name="ok")), nested_event(depth)]
            return outcome(url, tmp_path / str(depth), pack=True).pull_error is None

        assert decodes(low) and not decodes(high)
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if decodes(middle) else (low, middle)
        for depth in (low, high):
            api.collections["events"] = [raw(event("ok", name="ok")), nested_event(depth)]
            packed = outcome(url, tmp_path / f"packed-{depth}", pack=True)
            plain = outcome(url, tmp_path / f"plain-{depth}", pack=False)
            assert_same(plain, packed)
    assert plain.pull_error is not None and plain.pull_error[0] == "RecursionError"


def nested_event(depth: int) -> str:
    return ('{"id": "a", "product_id": "p1", "name": "x", "v": ' + nested(depth, "[]")
            + "}")


# Not a packing difference: an item without an id gets its key from hypermedia.content_key,
# which once raised UnicodeEncodeError on a lone surrogate (an internal error, not a refusal).
def test_an_item_without_an_id_holding_a_lone_surrogate_is_refused_by_name(
    tmp_path: Path,
) -> None:
    plain = check({"event": [event("ok", name="fine"),
                             {"product_id": "p1", "name": "no id \ud800"}]}, tmp_path)
    assert plain.pull_error is None, plain.pull_error
    assert isinstance(plain.saved, tuple) and "lone surrogate" in plain.saved[1]


# -- generated records ----------------------------------------------------------------------

_text = st.one_of(st.text(max_size=6), st.sampled_from(NASTY_STRINGS[:-8]))
_key = st.one_of(
    st.sampled_from(["name", "title", "description", "display_name", "is_visible", "type",
                     "total", "first_used_at", "last_sent_at", "Name", "yes", "null", "a b",
                     "", "zz", "_x", "1", "é", "links", "account_id"]),
    st.text(max_size=4))
_scalar = st.one_of(
    st.none(), st.booleans(), _text,
    st.integers(min_value=-(10**20), max_value=10**20), st.sampled_from([2**64, -(10**40)]),
    st.floats(allow_nan=True, allow_infinity=True))
_value = st.recursive(
    _scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_key, inner, max_size=3),
    max_leaves=6)
_MISSING = object()
_ids = st.one_of(st.sampled_from(["a", "b", "c", "1", "2", "", " a", "A"]),
                 st.integers(min_value=0, max_value=3), st.none(), st.text(max_size=3))
_products = st.sampled_from(["p1", "p1", "p2", "px", None, 1, "", _MISSING])
_accounts = st.sampled_from(["acc1", None, 7, "7", 1, True, 1.0, 0, False, -0.0, 0.5, "",
                             [], ["acc1"], {"id": 1}, _MISSING])
SELECTIONS: list[Selection | None] = [
    None, None, Selection(include=Selector(products=frozenset({"p1"}))),
    Selection(exclude=Selector(products=frozenset({"Shop", "px"}))),
    Selection(include=Selector(accounts=frozenset({"acc1"}))),
    Selection(exclude=Selector(accounts=frozenset({"7", "1"}))),
    Selection(include=Selector(accounts=frozenset({"True", "0"}))),
    Selection(include=Selector(accounts=frozenset({"Acme", "7"}), products=frozenset({"1"}))),
]


def _deep(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


# Values at and past the writer's bounds: nesting, keys that grow when escaped, surrogates.
_edge = st.one_of(
    st.integers(min_value=87, max_value=93).map(_deep),
    st.integers(min_value=164, max_value=169).map(lambda n: {"\u2028" * n: 1}),
    st.sampled_from(["\ud800", "x\udfff", "\udbff\udfff", ["\ud800"], {"k": "\udc00"}]),
)
_edge_key = st.one_of(st.integers(min_value=164, max_value=169).map(lambda n: "\x85" * n),
                      st.integers(min_value=996, max_value=1002).map(lambda n: "K" * n),
                      st.just("\ud800"), st.just("v"))


@st.composite
def _record(draw: st.DrawFn) -> dict[str, Any]:
    record: dict[str, Any] = draw(st.dictionaries(_key, _value, max_size=4))
    for name, values in (("id", _ids), ("product_id", _products), ("account_id", _accounts)):
        value = draw(values)
        if value is _MISSING:
            record.pop(name, None)
        else:
            record[name] = value
    if draw(st.booleans()):
        record["name"] = draw(_text)
    # now and then, one at a bound; not on an item without an id, where a lone surrogate is
    # the crawler's failure below (and two such pages race to be the one reported)
    if record.get("id") is not None and draw(st.integers(min_value=0, max_value=5)) == 0:
        record[draw(_edge_key)] = draw(_edge)
    return record


def _first_of_each_id(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for record in records:
        key = record.get("id")
        if key is None or str(key) not in seen:
            out.append(record)
            if key is not None:
                seen.add(str(key))
    return out


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(records=st.dictionaries(st.sampled_from(["event", "report", "metric", "property"]),
                               st.lists(_record(), max_size=8), max_size=3),
       page_size=st.sampled_from([1, 2, 3, 100]), with_total=st.booleans(),
       with_stats=st.booleans(), select=st.sampled_from(SELECTIONS))
def test_any_records_give_the_same_outcome_packed_or_not(
    records: dict[str, list[dict[str, Any]]], page_size: int, with_total: bool,
    with_stats: bool, select: Selection | None,
) -> None:
    if with_total:  # no duplicate ids: with two incomplete kinds, which one fails first races
        records = {kind: _first_of_each_id(items) for kind, items in records.items()}
    api = catalog(records, page_size=page_size, with_total=with_total)
    with tempfile.TemporaryDirectory() as where:
        plain, packed = both(api, Path(where), with_stats=with_stats, select=select)
    assert_same(plain, packed)


# -- the command line, which always packs ---------------------------------------------------


def cli_pull(url: str, out: Path, capfd: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from kmsnap.cli import run

    capfd.readouterr()
    code = run(["pull", "--quiet", "--api", url, "--out", str(out)])
    return code, capfd.readouterr().err


HOSTILE_CATALOG: dict[str, list[Any]] = {
    "event": [event(f"e{i:03d}", ("p1", "p2", "px", None, 1)[i % 5], name=text,
                    tags=[text, {"k": text}], total=i)
              for i, text in enumerate(NASTY_STRINGS)]
    + [event(7, name="int id"), event("8", name="str id"), event(None, name="no id")],
    "metric": [{"id": "m", "product_id": "p2", "title": "yes", "sort_index": 1e308}],
    "report": [{"id": "r", "product_id": "p1", "account_id": 5, "name": "- x"}],
}


def test_kmsnap_pull_writes_the_files_an_unpacked_pull_saves(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kmsnap.snapshot.store import save_snapshot

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KISSMETRICS_TOKEN", TOKEN)
    with running(catalog(HOSTILE_CATALOG, page_size=6)) as url:
        code, err = cli_pull(url, tmp_path / "cli", capfd)
        plain = pull_selected(PullOptions(api=url, token=TOKEN, pack=False, with_stats=False))
    assert code == 0, err
    save_snapshot(plain.snapshot, tmp_path / "lib")
    assert tree(tmp_path / "cli") == tree(tmp_path / "lib")
    for message in plain.warnings:  # what a person is told is the unpacked pull's
        assert message in err


def test_kmsnap_pull_refusing_a_lone_surrogate_says_what_an_unpacked_save_says(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kmsnap.snapshot.store import save_snapshot

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KISSMETRICS_TOKEN", TOKEN)
    api = catalog(HOSTILE_CATALOG, page_size=6)
    with running(api) as url:
        assert cli_pull(url, tmp_path / "cli", capfd)[0] == 0
        before = tree(tmp_path / "cli")
        api.collections["events"].append(raw(event("zz", "p2", name="bad \udfff")))
        code, err = cli_pull(url, tmp_path / "cli", capfd)
        plain = pull_selected(PullOptions(api=url, token=TOKEN, pack=False, with_stats=False))
    assert code == 1
    with pytest.raises(SnapshotError) as refused:
        save_snapshot(plain.snapshot, tmp_path / "lib")
    errors = [line for line in err.splitlines() if line.startswith("kmsnap: error: ")]
    assert errors == [f"kmsnap: error: {refused.value}"]
    assert err.endswith(errors[0] + "\n")
    assert tree(tmp_path / "cli") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli"]  # no staging tree left
