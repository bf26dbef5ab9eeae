"""Crawls the catalog from the API's root into a complete ``Snapshot``; no files, no printing.

Top-level collections first, their pages fetched concurrently by offset once the first
page gives ``pagination.total``; product- or account-scoped collections only for what
the directory does not offer; each collection checked against its total.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import requests

from kmsnap.api import ApiClient, origin_of
from kmsnap.errors import ApiError, AuthError, IncompleteError, UnsafeUrlError
from kmsnap.links import NOT_CATALOG_RELS, as_int, content_key, iter_links, link_url, page_url
from kmsnap.model import KINDS, PRODUCT_KINDS, Record, Snapshot, kind_for_rel
from kmsnap.pacing import Clock

MAX_TOTAL = 50_000_000  # a total beyond this is a broken server, not a catalog
MAX_PAGES = 1_000_000  # per collection, also for servers that only give ``next`` links
PARENT_KINDS = ("account", "product")  # their items' links lead to scoped collections


@dataclass
class PullOptions:
    """What to pull and how hard to push."""

    api: str
    token: str = field(repr=False)
    concurrency: int = 8
    page_size: int = 100
    max_rps: float | None = None
    timeout: float = 30.0


@dataclass(frozen=True)
class ProgressEvent:
    """Progress of one kind: pages fetched of those known so far, entities so far."""

    kind: str
    pages_done: int
    pages_total: int
    entities: int
    expected: int | None


@dataclass
class PullResult:
    """The snapshot, the HTTP requests it took, the wall time, and warnings for a person."""

    snapshot: Snapshot
    requests: int
    elapsed: float
    warnings: list[str]


@dataclass
class _Page:
    url: str
    records: list[Record] | None  # None: ``data`` was not a list
    total: int | None
    limit: int | None
    next_url: str | None
    links: list[list[tuple[str, str | None]]]  # per record, for parent kinds: (rel, url)


@dataclass
class _Collection:
    kind: str
    url: str  # the first page's URL
    optional: bool  # an unknown rel: skip (with a warning) when it is not a collection
    attempt: int = 0
    total: int | None = None
    limit: int = 0
    pages: dict[int, _Page] = field(default_factory=dict)
    pending: int = 0
    moved: bool = False
    visited: set[str] = field(default_factory=set)


ProgressCallback = Callable[[ProgressEvent], None]


class _ShortPage(Exception):
    """A page before the end came back empty: the collection cannot add up to its total."""

    def __init__(self, message: str, url: str) -> None:
        super().__init__(message)
        self.url = url


class _Crawler:
    def __init__(self, client: ApiClient, options: PullOptions,
                 progress: ProgressCallback | None) -> None:
        self.client = client
        self.options = options
        self.progress = progress
        self.snapshot = Snapshot(api=options.api)
        self.warnings: list[str] = []
        self._warned: set[str] = set()
        self.parent_links: dict[str, dict[str, list[tuple[str, str | None]]]] = {}
        self._counts: dict[str, list[int]] = {}  # kind -> [pages done, pages total, entities]
        self._expected: dict[str, int] = {}
        self.fetched: set[str] = set()  # kinds with at least one complete collection
        self.complete: list[tuple[str, str, list[Record]]] = []  # (kind, url, records)

    def assemble(self) -> None:
        """Fill the snapshot in an order that does not depend on which page came first."""
        rank = {kind: i for i, kind in enumerate(KINDS)}
        self.complete.sort(key=lambda c: (rank.get(c[0], len(rank)), c[0], c[1]))
        for kind, _url, records in self.complete:
            for record in records:
                self.snapshot.add(kind, record)
        self.complete = []

    def warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self.warnings.append(message)

    # -- links --------------------------------------------------------------------------

    def follow(self, rel: str, url: str | None) -> str | None:
        """The URL to request for a link, or None (with a warning for another origin)."""
        if url is None:
            return None
        if origin_of(url) is None:
            return None
        if not self.client.same_origin(url):
            self.warn(f"not following link {rel!r} to another origin: {url}")
            return None
        return page_url(url, self.options.page_size, 0)

    def root_collections(self) -> list[_Collection]:
        root = self.client.fetch_json(self.options.api)
        found: dict[str, _Collection] = {}
        for link in iter_links(root.body):
            rel = link.get("rel")
            if not isinstance(rel, str) or rel in NOT_CATALOG_RELS or rel in KINDS or rel in found:
                continue
            url = self.follow(rel, link_url(link, root.url, self.options.page_size))
            if url is None:
                continue
            kind = kind_for_rel(rel)
            found[rel] = _Collection(kind, url, optional=kind not in KINDS)
        return list(found.values())

    def scoped_collections(self, have: set[str], scanned: set[str]) -> list[_Collection]:
        """Collections linked from accounts and products, for kinds the directory lacks."""
        out: dict[str, _Collection] = {}
        for parent in PARENT_KINDS:
            for key, links in self.parent_links.get(parent, {}).items():
                if f"{parent}:{key}" in scanned:
                    continue
                scanned.add(f"{parent}:{key}")
                for rel, href in links:
                    if rel in NOT_CATALOG_RELS or rel in KINDS:  # singular rels: one item
                        continue
                    kind = kind_for_rel(rel)
                    if kind in have:
                        continue
                    url = self.follow(rel, href)
                    if url is not None and url not in out:
                        out[url] = _Collection(kind, url, optional=kind not in KINDS)
        return list(out.values())

    # -- pages --------------------------------------------------------------------------

    def fetch_page(self, kind: str, url: str) -> _Page:
        """Runs in a worker: one GET, decoded and trimmed (links kept only for parents)."""
        envelope = self.client.fetch_json(url)
        body = envelope.body
        data = body.get("data")
        pagination = body.get("pagination")
        pagination = pagination if isinstance(pagination, dict) else {}
        next_url = None
        for link in iter_links({"links": body.get("links")}):
            if link.get("rel") == "next":
                next_url = link_url(link, envelope.url, self.options.page_size)
        page = _Page(envelope.url, None, as_int(pagination.get("total")),
                     as_int(pagination.get("limit")), next_url, [])
        if not isinstance(data, list):
            return page
        records: list[Record] = []
        for item in data:
            if not isinstance(item, dict):
                raise ApiError(f"GET {envelope.url}: a list item is not a JSON object",
                               url=envelope.url)
            links = item.pop("links", None)
            if kind in PARENT_KINDS:
                page.links.append([
                    (str(link.get("rel")),
                     link_url(link, envelope.url, self.options.page_size))
                    for link in iter_links({"links": links})
                ])
            records.append(item)
        page.records = records
        return page

    def run(self, collections: list[_Collection], pool: ThreadPoolExecutor) -> None:
        """Fetch the collections' pages, concurrently, until every one is complete."""
        # future -> (collection, page index, the collection's attempt it belongs to)
        futures: dict[Future[_Page], tuple[_Collection, int, int]] = {}

        def submit(col: _Collection, index: int, url: str) -> None:
            futures[pool.submit(self.fetch_page, col.kind, url)] = (col, index, col.attempt)
            col.pending += 1

        def refetch(col: _Collection, short: _ShortPage) -> None:
            """Drop what was fetched and asked for, and fetch the collection once more."""
            if col.attempt > 0:
                raise IncompleteError(
                    f"{short}, also when fetched again: the API is not giving the whole "
                    "collection; run it again later", url=short.url)
            for future, (other, _, _) in list(futures.items()):
                if other is col and future.cancel():
                    del futures[future]
            col.attempt, col.moved, col.total, col.pages, col.pending = 1, False, None, {}, 0
            submit(col, 0, col.url)

        for col in collections:
            submit(col, 0, col.url)
        try:
            while futures:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in done:
                    col, index, attempt = futures.pop(future)
                    if attempt != col.attempt:
                        continue  # a page of an attempt given up: its answer no longer counts
                    col.pending -= 1
                    try:
                        page = future.result()
                    except ApiError as exc:
                        if col.optional and index == 0 and self._skippable(exc):
                            self.warn(f"skipped link {col.kind!r}: {exc}")
                            continue
                        raise
                    try:
                        more = self.take_page(col, index, page)
                    except _ShortPage as short:
                        refetch(col, short)
                        continue
                    for index_, url in more:
                        submit(col, index_, url)
                    if col.pending == 0 and col.pages:
                        if self.finish(col):
                            submit(col, 0, col.url)
        except BaseException:
            self.client.cancel()  # requests in flight end within their timeouts
            for future in futures:
                future.cancel()
            raise

    @staticmethod
    def _skippable(exc: ApiError) -> bool:
        return (not isinstance(exc, (AuthError, UnsafeUrlError)) and exc.status is not None
                and 400 <= exc.status < 500 and exc.status != 429)

    def take_page(self, col: _Collection, index: int, page: _Page) -> list[tuple[int, str]]:
        """Record a page; return the pages it makes known, as (index, url)."""
        if page.records is None:
            if col.optional and index == 0:
                self.warn(f"link {col.kind!r} does not lead to a list; not kept")
                return []
            raise ApiError(f"GET {page.url}: expected a list in 'data'", url=page.url)
        col.pages[index] = page
        more: list[tuple[int, str]] = []
        if index == 0:
            col.total = page.total
            col.limit = page.limit if page.limit and page.limit > 0 else len(page.records)
            if col.total is not None:
                if not 0 <= col.total <= MAX_TOTAL:
                    raise ApiError(f"GET {page.url}: implausible pagination.total {col.total}",
                                   url=page.url)
                if not page.records and col.total > 0:
                    raise _ShortPage(f"GET {page.url}: an empty first page but its "
                                     f"pagination.total is {col.total}", page.url)
                count = math.ceil(col.total / col.limit) if col.total else 1
                if count > MAX_PAGES:
                    raise ApiError(f"GET {page.url}: {count} pages of {col.limit}; refusing",
                                   url=page.url)
                more = [(i, page_url(page.url, col.limit, i * col.limit)) for i in range(1, count)]
            col.visited = {page.url}
        elif col.total is not None:
            if not page.records:  # only pages before the end are asked for
                # Every later page would come back empty too: no point fetching them.
                says = f"; this page says {page.total}" if page.total != col.total else ""
                raise _ShortPage(f"GET {page.url}: an empty page at offset {index * col.limit} "
                                 f"but the first page's pagination.total is {col.total}{says}",
                                 page.url)
            if page.total != col.total:
                col.moved = True  # the catalog changed between pages
        if col.total is None and page.next_url:  # no total: walk ``next`` one by one
            if page.next_url in col.visited or len(col.visited) >= MAX_PAGES:
                raise ApiError(f"GET {page.url}: 'next' links go round in a circle",
                               url=page.url)
            if not self.client.same_origin(page.next_url):
                raise UnsafeUrlError(f"GET {page.url}: 'next' leads to another origin "
                                     f"({origin_of(page.next_url)})", url=page.url)
            col.visited.add(page.next_url)
            more = [(index + 1, page.next_url)]
        self._progress(col, index, page, len(more))
        return more

    def _progress(self, col: _Collection, index: int, page: _Page, new_pages: int) -> None:
        counts = self._counts.setdefault(col.kind, [0, 0, 0])
        counts[0] += 1
        counts[1] += new_pages + (1 if index == 0 else 0)
        counts[2] += len(page.records or ())
        if index == 0 and col.total is not None and col.attempt == 0:
            self._expected[col.kind] = self._expected.get(col.kind, 0) + col.total
        if self.progress is not None:
            self.progress(ProgressEvent(col.kind, counts[0], counts[1], counts[2],
                                        self._expected.get(col.kind)))

    def finish(self, col: _Collection) -> bool:
        """Check a fetched collection and add it to the snapshot; True to fetch it again."""
        records: dict[str, Record] = {}
        links: dict[str, list[tuple[str, str | None]]] = {}
        seen_keyless: dict[str, int] = {}
        for index in sorted(col.pages):
            page = col.pages[index]
            for position, record in enumerate(page.records or ()):
                if "id" in record and record["id"] is not None:
                    key = str(record["id"])
                else:
                    key = content_key(record)
                    seen_keyless[key] = seen_keyless.get(key, 0) + 1
                    if seen_keyless[key] > 1:  # identical items: keep each one
                        key = f"{key}-{seen_keyless[key]}"
                    record["id"] = key
                if key not in records:  # a duplicate across pages: the catalog moved
                    records[key] = record
                    if page.links:
                        links[key] = page.links[position]
        col.pages = {}
        total, moved = col.total, col.moved
        if total is not None and (moved or len(records) != total):
            if col.attempt == 0:
                col.attempt, col.moved, col.total = 1, False, None
                return True
            raise IncompleteError(
                f"{col.url}: got {len(records)} distinct {col.kind} items, pagination.total "
                f"says {total}{' and changed between pages' if moved else ''}, also when "
                "fetched again: the catalog is changing during the pull; run it again later",
                url=col.url,
            )
        self.fetched.add(col.kind)
        self.complete.append((col.kind, col.url, list(records.values())))
        if col.kind in PARENT_KINDS:
            self.parent_links.setdefault(col.kind, {}).update(links)
        return False


def pull_snapshot(
    options: PullOptions,
    *,
    progress: ProgressCallback | None = None,
    session: requests.Session | None = None,
    clock: Clock | None = None,
) -> PullResult:
    """Crawl the whole catalog the token can see into a ``Snapshot``.

    Raises ``ApiError`` (and children) when it cannot, never a partial snapshot.
    """
    started = time.perf_counter()
    with ApiClient(options.api, options.token, session=session, timeout=options.timeout,
                   concurrency=options.concurrency, max_rps=options.max_rps,
                   clock=clock) as client:
        crawler = _Crawler(client, options, progress)
        pool = ThreadPoolExecutor(max_workers=options.concurrency,
                                  thread_name_prefix="kmsnap-pull")
        finished = False
        try:
            top = crawler.root_collections()
            crawler.run(top, pool)
            have = {col.kind for col in top}
            scanned: set[str] = set()
            for _ in range(len(PARENT_KINDS) + 1):  # accounts -> products -> product kinds
                scoped = crawler.scoped_collections(have, scanned)
                if not scoped:
                    break
                crawler.run(scoped, pool)
            finished = True
        finally:
            if not finished:  # a failure or Ctrl-C: stop the other workers' waits and retries
                client.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
        crawler.assemble()
        _check_coverage(crawler, have)
        return PullResult(crawler.snapshot, client.requests,
                          time.perf_counter() - started, crawler.warnings)


def _check_coverage(crawler: _Crawler, have: set[str]) -> None:
    """Warnings for what a person should know about the snapshot's reach."""
    snapshot = crawler.snapshot
    for kind in sorted(set(snapshot.entities) - set(KINDS)):
        crawler.warn(f"kept unknown collection {kind!r} ({len(snapshot.entities[kind])} items) "
                     f"in _other/{kind}.yaml")
    for kind in KINDS:
        if kind not in crawler.fetched:
            crawler.warn(f"the API offers no {KINDS[kind].rel!r} collection; "
                         f"no {KINDS[kind].rel} in the snapshot")
    parents: dict[str, set[str]] = {k: set(snapshot.of(k)) for k in PARENT_KINDS}
    for kind in ("product", *PRODUCT_KINDS):
        spec = KINDS[kind]
        field_name = spec.parent_field
        if field_name is None or spec.parent not in parents:
            continue
        orphans = sum(1 for record in snapshot.of(kind).values()
                      if _ref(record.get(field_name)) not in parents[spec.parent])
        if orphans:
            crawler.warn(f"{orphans} {spec.rel} belong to a {spec.parent} the token cannot "
                         f"see; kept in _unassigned/{spec.rel}.yaml")


def _ref(value: Any) -> str | None:
    return None if value is None else str(value)
