"""Crawls the catalog from the API's root into a complete ``Snapshot``; no files, no printing.

Top-level collections first, their pages fetched concurrently by offset once the first
page gives ``pagination.total``; product- or account-scoped collections only for what
the directory does not offer; each collection checked against its total. Pages are asked
for a window at a time (twice the concurrency), by daemon workers nobody waits for once
the pull has failed or been interrupted. An answer that is not shaped like the API's
(a root without catalog links, a page without ``pagination`` or whose ``data`` is not a
list) fails the pull: it must never read as "no entities".
"""

from __future__ import annotations

import functools
import math
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests

from kmsnap.errors import (
    ApiError,
    AuthError,
    BoundError,
    DeadlineError,
    IncompleteError,
    UnsafeUrlError,
)
from kmsnap.model import (
    CHILD_KINDS,
    CONTAINER_KINDS,
    KINDS,
    USAGE_FIELDS,
    Record,
    Snapshot,
    kind_for_rel,
    kind_sort_key,
    rel_for_kind,
)
from kmsnap.snapshot.packed import (
    PACKABLE,
    PackedRecords,
    merge_into,
    pack_page,
    packable,
    parent_values,
)
from kmsnap.sources.core.client import (
    MAX_BODY_BYTES,
    MAX_RETRY_AFTER,
    ApiClient,
    Envelope,
    origin_of,
)
from kmsnap.sources.core.hypermedia import (
    NOT_CATALOG_RELS,
    content_key,
    iter_links,
    link_url,
    page_step,
    page_url,
    pagination_of,
)
from kmsnap.sources.pacing import Clock

MAX_TOTAL = 50_000_000  # a total beyond this is a broken server, not a catalog
# Pages one collection may take, also when walked by ``next`` links: 10 million items at
# the default page size of 100; a server that claims a total needing more pages than this
# at the page size it actually serves is refused before the first of them is asked for.
MAX_PAGES = 100_000
FAILURE_GRACE = 1.0  # seconds a failed (not interrupted) pull waits for requests in flight
WINDOW = 2  # pages asked for ahead, per worker: enough to keep every worker busy
PARENT_KINDS = CONTAINER_KINDS  # their items' links lead to scoped collections
PARENT_FIELDS = ("account_id", "product_id")  # ids repeated by every child: kept once
NOT_THE_API = "(not the Kissmetrics Core API, or down for maintenance?)"

T = TypeVar("T")


@dataclass
class PullOptions:
    """What to pull, how hard to push, and the bounds that stop a pull from a broken server."""

    api: str
    token: str = field(repr=False)
    concurrency: int = 8
    page_size: int = 100
    max_rps: float | None = None
    timeout: float = 30.0
    deadline: float | None = 1800.0  # seconds for the whole pull; None: no limit
    max_body: int = MAX_BODY_BYTES  # bytes of one answer, after decompression
    max_retry_after: float = MAX_RETRY_AFTER  # seconds of one Retry-After worth waiting
    # Keep usage fields (total, *_used_at, *_sent_at) in ``Snapshot.stats``; False drops
    # them as each page arrives (``kmsnap pull`` without --with-stats never writes them).
    with_stats: bool = True
    # Hold product kinds' records as canonical text (``kmsnap.snapshot.packed``): a third of
    # the memory of dicts. On for ``kmsnap pull``, which writes them; off for the library and
    # ``check``, which get plain dicts.
    pack: bool = False


@dataclass(frozen=True)
class ProgressEvent:
    """Progress of one kind: pages fetched of those known so far, entities so far.

    Or, with ``waiting`` above 0 (and no kind), a wait holding the crawl: a 429's pause, a
    retry's backoff, the per-minute budget; ``reason`` says which, for a person.
    """

    kind: str
    pages_done: int
    pages_total: int
    entities: int
    expected: int | None
    waiting: float = 0.0
    reason: str = ""

    @classmethod
    def wait(cls, seconds: float, reason: str) -> ProgressEvent:
        """The event for a wait of ``seconds`` holding the crawl, and why."""
        return cls("", 0, 0, 0, None, seconds, reason)


@dataclass
class PullResult:
    """The snapshot, the HTTP requests it took, the wall time, and warnings for a person."""

    snapshot: Snapshot
    requests: int
    elapsed: float
    warnings: list[str]


class _Workers:
    """``count`` daemon threads running submitted calls into ``Future``s.

    Not a ``ThreadPoolExecutor``: that one is joined by ``shutdown`` and again by an
    interpreter-exit hook, so a worker stuck in a read (or on a lock) would keep an
    interrupted or failed pull alive. ``shutdown`` here cancels what has not started and
    waits for nothing; a request still running ends with its timeout, or with the process.
    """

    def __init__(self, count: int, name: str) -> None:
        self._tasks: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue())
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
                         for i in range(max(1, count))]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self._tasks.put((future, fn))
        return future

    def _work(self) -> None:
        while (task := self._tasks.get()) is not None:
            future, fn = task
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn()
            except BaseException as exc:  # handed to the waiting thread, which decides
                future.set_exception(exc)
            else:
                future.set_result(result)
            del task, future, fn

    def shutdown(self, grace: float = 0.0) -> None:
        """Cancel every call not started and let the threads end, waiting at most ``grace``
        seconds in all for the calls still running (so a library caller sees no request
        after a failed pull, in the usual case)."""
        while True:
            try:
                task = self._tasks.get_nowait()
            except queue.Empty:
                break
            if task is not None:
                task[0].cancel()
        for _ in self._threads:
            self._tasks.put(None)
        end = time.monotonic() + grace
        for thread in self._threads:
            left = end - time.monotonic()
            if left <= 0:
                break
            thread.join(left)


@dataclass
class _Page:
    url: str
    records: list[Record | None] | None  # None: ``data`` was not a list
    total: int | None
    limit: int | None
    next_url: str | None
    links: list[list[tuple[str, str | None]]]  # per record, for parent kinds: (rel, url)
    paginated: bool = True  # it has a ``pagination`` object
    problem: str | None = None  # what is wrong with its pagination.total
    # Per record, its usage fields (None: none, or not kept); split off as the page arrives.
    usage: list[Record | None] = field(default_factory=list)
    # Position -> ``content_key`` of a record sent without an id (of all its fields).
    keyless: dict[int, str] = field(default_factory=dict)
    # The records packed as the page arrived, in order; None in ``records`` at their places.
    packed: PackedRecords | None = None


@dataclass
class _Collection:
    kind: str
    url: str  # the first page's URL
    optional: bool  # an unknown rel: skip (with a warning) when it is not a collection
    attempt: int = 0
    total: int | None = None
    limit: int = 0
    pages: dict[int, _Page] = field(default_factory=dict)
    pending: int = 0  # pages asked for (queued or in flight) and not yet answered
    moved: bool = False
    visited: set[str] = field(default_factory=set)


ProgressCallback = Callable[[ProgressEvent], None]
_PageList = tuple[int, Iterator[tuple[int, str]]]  # how many pages, and (index, url) of each


class _ShortPage(Exception):
    """A page before the end came back empty: the collection cannot add up to its total."""

    def __init__(self, message: str, url: str) -> None:
        super().__init__(message)
        self.url = url


class _Crawler:
    def __init__(self, client: ApiClient, options: PullOptions, workers: _Workers,
                 progress: ProgressCallback | None) -> None:
        self.client = client
        self.options = options
        self.workers = workers
        self.progress = progress
        self.snapshot = Snapshot(api=options.api)
        self.warnings: list[str] = []
        self._warned: set[str] = set()
        self.parent_links: dict[str, dict[str, list[tuple[str, str | None]]]] = {}
        self._counts: dict[str, list[int]] = {}  # kind -> [pages done, pages total, entities]
        self._expected: dict[str, int] = {}
        self.fetched: set[str] = set()  # kinds with at least one complete collection
        # (kind, url, records by id, usage fields by id): each collection as checked
        self.complete: list[tuple[str, str, Mapping[str, Record], dict[str, Record]]] = []
        self._parents: dict[tuple[str, Any], tuple[str, Any]] = {}  # shared by packed rows

    def assemble(self) -> None:
        """Fill the snapshot in an order that does not depend on which page came first.

        The records are the pages' own (split from their links and usage fields as each
        page arrived), not copies; a later collection's entity replaces an earlier one's.
        """
        self.complete.sort(key=lambda c: (kind_sort_key(c[0]), c[1]), reverse=True)
        entities, stats = self.snapshot.entities, self.snapshot.stats
        while self.complete:
            kind, _url, records, usage = self.complete.pop()
            if records:  # a kind with no entity has no key, as before any was added
                merge_into(entities, kind, records)
            if usage:
                stats.setdefault(kind, {}).update(usage)

    def warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self.warnings.append(message)

    def wait_any(self, futures: Iterable[Future[Any]], url: str) -> set[Future[Any]]:
        """Wait for the first of ``futures``, no longer than the pull's deadline allows."""
        done, _ = wait(futures, timeout=self.client.time_left(), return_when=FIRST_COMPLETED)
        if not done:
            raise DeadlineError(
                f"GET {url}: no answer before the pull's deadline of "
                f"{self.options.deadline:g} s (--deadline); try again later", url=url)
        return done

    # -- links --------------------------------------------------------------------------

    def follow(self, rel: str, url: str | None, where: str) -> str | None:
        """The URL to request for a link, or None; another origin fails a documented kind."""
        if url is None or origin_of(url) is None:
            return None
        if not self.client.same_origin(url):
            if kind_for_rel(rel) in KINDS:  # dropping it would drop every one of them
                raise UnsafeUrlError(
                    f"{where}: the {rel!r} link leads to another origin ({origin_of(url)}); "
                    f"kmsnap pulls the catalog only from {self.client.origin}", url=url)
            self.warn(f"not following link {rel!r} to another origin: {url}")
            return None
        return page_url(url, self.options.page_size, 0)

    def root_collections(self) -> list[_Collection]:
        url = self.options.api
        future = self.workers.submit(lambda: self.client.fetch_json(url))
        self.wait_any([future], url)
        root: Envelope = future.result()
        found: dict[str, _Collection] = {}
        known = False
        for link in iter_links(root.body):
            rel = link.get("rel")
            if not isinstance(rel, str) or rel in NOT_CATALOG_RELS or rel in KINDS or rel in found:
                continue
            kind = kind_for_rel(rel)
            known = known or kind in KINDS
            href = self.follow(rel, link_url(link, root.url, self.options.page_size),
                               f"GET {root.url}")
            if href is not None:
                found[rel] = _Collection(kind, href, optional=kind not in KINDS)
        if not known:
            raise ApiError(f"GET {root.url}: the API root lists no catalog collections "
                           f"{NOT_THE_API}", url=root.url)
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
                    url = self.follow(rel, href, f"{parent} {key}")
                    if url is not None and url not in out:
                        out[url] = _Collection(kind, url, optional=kind not in KINDS)
        return list(out.values())

    # -- pages --------------------------------------------------------------------------

    def fetch_page(self, kind: str, url: str) -> _Page:
        """Runs in a worker: one GET, decoded and trimmed (links kept only for parents)."""
        envelope = self.client.fetch_json(url)
        body = envelope.body
        data = body.get("data")
        pagination = pagination_of(body)
        next_url = None
        for link in iter_links({"links": body.get("links")}):
            if link.get("rel") == "next":
                next_url = link_url(link, envelope.url, self.options.page_size)
        page = _Page(envelope.url, None, pagination.total, pagination.limit, next_url, [],
                     pagination.present, pagination.problem)
        if not isinstance(data, list):
            return page
        records: list[Record | None] = []
        usage: list[Record | None] = []
        keep_stats, parent = self.options.with_stats, kind in PARENT_KINDS
        for item in data:
            if not isinstance(item, dict):
                raise ApiError(f"GET {envelope.url}: a list item is not a JSON object",
                               url=envelope.url)
            links = item.pop("links", None)
            if parent:
                page.links.append([
                    (str(link.get("rel")),
                     link_url(link, envelope.url, self.options.page_size))
                    for link in iter_links({"links": links})
                ])
            if item.get("id") is None:  # its key hashes every field, usage ones too
                page.keyless[len(records)] = content_key(item)
            for name in PARENT_FIELDS:  # one string for every child of one parent
                value = item.get(name)
                if type(value) is str:
                    item[name] = sys.intern(value)
            if USAGE_FIELDS.isdisjoint(item):
                records.append(item)
                usage.append(None)
                continue
            # A new, smaller dict in place of the decoded one (which is freed with the page)
            records.append({k: v for k, v in item.items() if k not in USAGE_FIELDS})
            usage.append({k: v for k, v in item.items() if k in USAGE_FIELDS}
                         if keep_stats else None)
        page.records, page.usage = records, usage
        if self.options.pack and kind in PACKABLE:
            self.pack(kind, page)
        return page

    def pack(self, kind: str, page: _Page) -> None:
        """Pack the page's packable records (``kmsnap.snapshot.packed``), leaving None in their
        places: encoded here, in the worker, while other requests wait on the network."""
        records = page.records or []
        chosen: list[tuple[int, Record]] = [
            (i, record) for i, record in enumerate(records)
            if record is not None and i not in page.keyless and packable(record)]
        if not chosen:
            return
        packed = pack_page(kind, [record for _, record in chosen], self._parents)
        if packed is None:
            return  # left as dicts: the renderer says what is wrong with them
        for i, _ in chosen:
            records[i] = None
        page.packed = packed

    def run(self, collections: list[_Collection]) -> None:
        """Fetch the collections' pages, a window at a time, until every one is complete."""
        # future -> (collection, page index, the collection's attempt it belongs to)
        futures: dict[Future[_Page], tuple[_Collection, int, int]] = {}
        backlog: deque[tuple[_Collection, int, Iterator[tuple[int, str]]]] = deque()
        window = max(2, WINDOW * self.options.concurrency)

        def ask(col: _Collection, pages: _PageList) -> None:
            count, items = pages
            if count:
                col.pending += count
                backlog.append((col, col.attempt, items))

        def fill() -> None:
            while backlog and len(futures) < window:
                col, attempt, items = backlog[0]
                item = next(items, None) if attempt == col.attempt else None
                if item is None:
                    backlog.popleft()
                    continue
                index, url = item
                future = self.workers.submit(functools.partial(self.fetch_page, col.kind, url))
                futures[future] = (col, index, attempt)

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
            ask(col, _first_page(col))

        for col in collections:
            ask(col, _first_page(col))
        fill()
        try:
            while futures:
                oldest = next(iter(futures.values()))
                for future in self.wait_any(futures, _url_of(oldest)):
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
                        ask(col, self.take_page(col, index, page))
                    except _ShortPage as short:
                        refetch(col, short)
                        continue
                    if col.pending == 0 and col.pages and self.finish(col):
                        ask(col, _first_page(col))
                fill()
        except BaseException:
            self.client.cancel()  # requests in flight end within their timeouts
            for future in futures:
                future.cancel()
            raise

    @staticmethod
    def _skippable(exc: ApiError) -> bool:
        return (not isinstance(exc, (AuthError, UnsafeUrlError)) and exc.status is not None
                and 400 <= exc.status < 500 and exc.status != 429)

    def check_shape(self, col: _Collection, index: int, page: _Page) -> bool:
        """False for an unknown rel's first answer that is not a list page (warned and
        skipped); raises for a page of a documented kind, which always is one."""
        rel = rel_for_kind(col.kind)
        if page.records is None:
            problem = "its 'data' is not a list"
        elif page.problem is not None:
            problem = page.problem
        elif not page.paginated and not col.optional:
            problem = "it has no 'pagination' object"
        else:
            return True
        if col.optional and index == 0:
            self.warn(f"link {col.kind!r} does not lead to a list ({problem}); not kept")
            return False
        raise ApiError(f"GET {page.url}: not a page of the API's {rel} collection: {problem} "
                       f"{NOT_THE_API}", url=page.url)

    def take_page(self, col: _Collection, index: int, page: _Page) -> _PageList:
        """Record a page; return the pages it makes known."""
        if not self.check_shape(col, index, page) or page.records is None:
            return 0, iter(())
        col.pages[index] = page
        more: _PageList = (0, iter(()))
        if index == 0:
            col.total = page.total
            col.limit = page.limit or len(page.records)
            if col.total is not None:
                more = self.plan(col, page, page.records)
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
            if page.next_url in col.visited:
                raise ApiError(f"GET {page.url}: 'next' links go round in a circle",
                               url=page.url)
            if len(col.visited) >= MAX_PAGES:
                raise BoundError(f"GET {page.url}: 'next' links go on past {MAX_PAGES} pages, "
                                 "the most one collection may take; refusing", url=page.url)
            if not self.client.same_origin(page.next_url):
                raise UnsafeUrlError(f"GET {page.url}: 'next' leads to another origin "
                                     f"({origin_of(page.next_url)})", url=page.url)
            col.visited.add(page.next_url)
            more = (1, iter([(index + 1, page.next_url)]))
        self._progress(col, index, page, more[0])
        return more

    def plan(self, col: _Collection, page: _Page, records: list[Record | None]) -> _PageList:
        """The pages after the first, from its total and the page size it actually served."""
        total = col.total or 0
        if total > MAX_TOTAL:
            raise BoundError(f"GET {page.url}: implausible pagination.total {total} (more "
                             f"than {MAX_TOTAL}); refusing", url=page.url)
        if not records and total > 0:
            raise _ShortPage(f"GET {page.url}: an empty first page but its "
                             f"pagination.total is {total}", page.url)
        col.limit = page_step(total, len(records), page.limit)
        count = math.ceil(total / col.limit) if total else 1
        if count > MAX_PAGES:
            raise BoundError(
                f"GET {page.url}: pagination.total {total} at the {len(records)} items this "
                f"page served would take {count} pages, more than the {MAX_PAGES} one "
                "collection may take; refusing", url=page.url)
        url, step = page.url, col.limit
        return count - 1, ((i, page_url(url, step, i * step)) for i in range(1, count))

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
        packed = PackedRecords(col.kind, records)  # the packed ones, the others aside
        seen: set[str] = set()
        usage: dict[str, Record] = {}
        links: dict[str, list[tuple[str, str | None]]] = {}
        seen_keyless: dict[str, int] = {}
        for index in sorted(col.pages):
            page = col.pages[index]
            whole = _all_packed(page)
            if whole is not None:  # the usual page: its ids checked and added in C
                ids = set(whole.ids)
                if len(ids) == len(whole.ids) and seen.isdisjoint(ids):
                    seen |= ids
                    packed.extend(whole)
                    continue
            rows = page.packed.rows() if page.packed is not None else iter(())
            for position, record in enumerate(page.records or ()):
                row = None
                if record is None:
                    row = next(rows)
                    key = row[0]
                elif position not in page.keyless:
                    key = str(record["id"])
                else:
                    key = page.keyless[position]
                    seen_keyless[key] = seen_keyless.get(key, 0) + 1
                    if seen_keyless[key] > 1:  # identical items: keep each one
                        key = f"{key}-{seen_keyless[key]}"
                    record["id"] = key
                if key not in seen:  # a duplicate across pages: the catalog moved
                    seen.add(key)
                    if row is not None:
                        packed.append(*row)
                    elif record is not None:
                        records[key] = record
                    fields = page.usage[position]
                    if fields:
                        usage[key] = fields
                    if page.links:
                        links[key] = page.links[position]
        col.pages = {}
        total, moved = col.total, col.moved
        if total is not None and (moved or len(seen) != total):
            if col.attempt == 0:
                col.attempt, col.moved, col.total = 1, False, None
                return True
            raise IncompleteError(
                f"{col.url}: got {len(seen)} distinct {col.kind} items, pagination.total "
                f"says {total}{' and changed between pages' if moved else ''}, also when "
                "fetched again: the catalog is changing during the pull; run it again later",
                url=col.url,
            )
        self.fetched.add(col.kind)
        self.complete.append((col.kind, col.url, packed if packed.ids else records, usage))
        if col.kind in PARENT_KINDS:
            self.parent_links.setdefault(col.kind, {}).update(links)
        return False


def _all_packed(page: _Page) -> PackedRecords | None:
    """The page's packed records when they are all of it, with no usage fields, links or
    keyless items to keep beside them; else None."""
    whole = page.packed
    if (whole is None or len(whole.ids) != len(page.records or ()) or page.keyless
            or page.links or any(page.usage)):
        return None
    return whole


def _first_page(col: _Collection) -> _PageList:
    return 1, iter([(0, col.url)])


def _url_of(asked: tuple[_Collection, int, int]) -> str:
    col, index, _ = asked
    return col.url if index == 0 or col.limit <= 0 else page_url(col.url, col.limit,
                                                                  index * col.limit)


def pull_snapshot(
    options: PullOptions,
    *,
    progress: ProgressCallback | None = None,
    session: requests.Session | None = None,
    clock: Clock | None = None,
) -> PullResult:
    """Crawl the whole catalog the token can see into a ``Snapshot``.

    Raises ``ApiError`` (and children) when it cannot, never a partial snapshot. After a
    failure or Ctrl-C nothing waits for the workers: the exception is raised at once.
    """
    started = time.perf_counter()
    with ApiClient(options.api, options.token, session=session, timeout=options.timeout,
                   concurrency=options.concurrency, max_rps=options.max_rps,
                   clock=clock, max_body=options.max_body, deadline=options.deadline,
                   max_retry_after=options.max_retry_after) as client:
        if progress is not None:  # pauses and backoffs shown, not a frozen display
            client.on_wait = lambda seconds, why: progress(ProgressEvent.wait(seconds, why))
        workers = _Workers(options.concurrency, "kmsnap-pull")
        crawler = _Crawler(client, options, workers, progress)
        finished, interrupted = False, False
        try:
            top = crawler.root_collections()
            crawler.run(top)
            have = {col.kind for col in top}
            scanned: set[str] = set()
            for _ in range(len(PARENT_KINDS) + 1):  # accounts -> products -> product kinds
                scoped = crawler.scoped_collections(have, scanned)
                if not scoped:
                    break
                crawler.run(scoped)
            finished = True
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:
            if not finished:  # a failure or Ctrl-C: stop the other workers' waits and retries
                client.cancel()
            workers.shutdown(grace=0.0 if interrupted else FAILURE_GRACE)
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
    for kind in CHILD_KINDS:
        spec = KINDS[kind]
        field_name = spec.parent_field
        if field_name is None or spec.parent not in parents:
            continue
        orphans = sum(1 for value in parent_values(snapshot.of(kind), field_name)
                      if _ref(value) not in parents[spec.parent])
        if orphans:
            crawler.warn(f"{orphans} {spec.rel} belong to a {spec.parent} the token cannot "
                         f"see; kept in _unassigned/{spec.rel}.yaml")


def _ref(value: Any) -> str | None:
    return None if value is None else str(value)
