"""Crawls the REST API v3 catalog into a complete ``Snapshot``; no files, no printing.

``GET /products``, then each product's ``reports``, ``events`` and ``properties``, by
workers sharing one paced client. v3 has no totals and no links, so completeness is
inferred: offset paging with large pages until a short or empty page, duplicates dropped
by id, a full page adding no new id is an error (a server ignoring ``offset``).

A server may cap ``limit`` silently. A short page ends a collection only when it is
shorter than a page this server has already served in this pull (then it cannot be a
cap); otherwise one extra request at ``offset=len(page)`` settles it: empty is the end,
records mean a cap, and every page of that size after it counts as full, in every
collection. So the cap costs at most one request per collection, and none for a
collection whose last page is shorter than the largest page seen so far.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import requests

from kmsnap.errors import ApiError, AuthError, BoundError, DeadlineError, IncompleteError
from kmsnap.model import Record, Snapshot
from kmsnap.sources.core.crawler import ProgressCallback, ProgressEvent, PullResult
from kmsnap.sources.pacing import Clock
from kmsnap.sources.transport import MAX_BODY_BYTES, MAX_RETRY_AFTER, scrub
from kmsnap.sources.v3.client import DEFAULT_API, DEFAULT_PER_MINUTE, V3Client
from kmsnap.sources.v3.credentials import Credentials

MAX_PAGES = 100_000  # pages one collection may take: a server ignoring offset is caught sooner
CHILDREN: tuple[str, ...] = ("reports", "events", "properties")
KIND_OF = {"products": "product", "reports": "report", "events": "event",
           "properties": "property"}
# Where each collection's records may be: ``data``, its own name, and (the published
# documents' slip) ``events`` for properties. Exactly one of them must be there.
RECORD_KEYS: dict[str, tuple[str, ...]] = {
    "products": ("data", "products"), "reports": ("data", "reports"),
    "events": ("data", "events"), "properties": ("data", "properties", "events"),
}
NOT_THE_API = "(not the Kissmetrics REST API v3?)"


@dataclass
class V3PullOptions:
    """What to pull from v3, how hard to push, and the bounds on a broken server."""

    credentials: Credentials = field(repr=False)
    api: str = DEFAULT_API
    concurrency: int = 4
    page_size: int = 1000  # ``limit`` asked for; a server may serve fewer (a silent cap)
    per_minute: int | None = DEFAULT_PER_MINUTE  # request starts in any minute, all workers
    max_rps: float | None = None
    timeout: float = 30.0
    deadline: float | None = 1800.0  # seconds for the whole pull; None: no limit
    max_body: int = MAX_BODY_BYTES
    max_retry_after: float = MAX_RETRY_AFTER
    with_stats: bool = False  # keep usage fields (total, *_used_at, *_sent_at) in ``stats``
    exclude_products: frozenset[str] = frozenset()  # ids (as text) or names: not pulled


@dataclass
class V3PullResult(PullResult):
    """A ``PullResult`` with what the pull cost against the least possible."""

    least_requests: int = 0  # 1 + 3 x products: every collection in one page, no cap check
    cap_checks: int = 0  # extra requests spent ruling out (or finding) a silent limit cap
    page_cap: int | None = None  # the largest page the server serves, when it caps


class _PageSizes:
    """What this pull knows of the server's page sizes, shared by every collection."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.largest = 0  # most records any page held
        self.cap: int | None = None  # a page size proven to be a cap (more came after it)
        self.checks = 0

    def served(self, count: int) -> None:
        with self.lock:
            self.largest = max(self.largest, count)


@dataclass
class _Task:
    resource: str
    url: str  # the collection's URL, without paging
    product: Record | None = None


class _Crawler:
    def __init__(self, client: V3Client, options: V3PullOptions,
                 progress: ProgressCallback | None) -> None:
        self.client = client
        self.options = options
        self.progress = progress
        self.sizes = _PageSizes()
        self._lock = threading.Lock()
        self._counts: dict[str, list[int]] = {}

    def _secrets(self) -> tuple[str, ...]:
        return self.options.credentials.secrets()

    def page(self, task: _Task, offset: int, limit: int) -> list[Record]:
        """One page's records, from the one key they may be under."""
        url = f"{task.url}?{urlencode({'offset': offset, 'limit': limit})}"
        envelope = self.client.fetch_json(url)
        body, shown = envelope.body, scrub(envelope.url, self._secrets(), 500)
        keys = [key for key in RECORD_KEYS[task.resource] if key in body]
        if len(keys) != 1:
            found = ", ".join(sorted(scrub(k, self._secrets(), 40) for k in body)[:8]) or "none"
            wanted = " or ".join(repr(k) for k in RECORD_KEYS[task.resource])
            many = "more than one of " if keys else "none of "
            raise ApiError(f"GET {shown}: the answer holds {many}{wanted} (its keys: {found}) "
                           f"{NOT_THE_API}", url=envelope.url)
        records = body[keys[0]]
        if not isinstance(records, list):
            raise ApiError(f"GET {shown}: {keys[0]!r} is not a list {NOT_THE_API}",
                           url=envelope.url)
        for record in records:
            if not isinstance(record, dict):
                raise ApiError(f"GET {shown}: a record is not a JSON object", url=envelope.url)
            rid = record.get("id")
            if isinstance(rid, bool) or not isinstance(rid, (int, str)) or rid == "":
                raise ApiError(f"GET {shown}: a record has no usable id (an integer or a "
                               "string)", url=envelope.url)
        return records

    def collection(self, task: _Task) -> list[Record]:
        """Every record of one collection: offset paging until a short page, see the module."""
        asked = self.options.page_size
        out: dict[str, Record] = {}
        offset, pages, checked = 0, 0, False
        while True:
            pages += 1
            if pages > MAX_PAGES:
                raise BoundError(f"{task.url}: more than {MAX_PAGES} pages; refusing",
                                 url=task.url)
            with self.sizes.lock:
                cap, largest = self.sizes.cap, self.sizes.largest
            limit = min(asked, cap) if cap is not None else asked
            records = self.page(task, offset, limit)
            count = len(records)
            new = 0
            for record in records:
                key = str(record["id"])
                if key not in out:
                    out[key] = record
                    new += 1
            self._progress(task, count)
            if count == 0:
                return list(out.values())
            full = count >= limit
            if full and new == 0:
                raise IncompleteError(
                    f"{task.url}: a full page at offset {offset} added no new id (the API "
                    "ignores offset?); run it again later", url=task.url)
            self.sizes.served(count)
            offset += count
            if full:
                continue
            if count < largest or checked:
                return list(out.values())  # shorter than a page already served: the end
            checked = True  # as long as any page so far: a cap? one request settles it
            with self.sizes.lock:
                self.sizes.checks += 1
            more = self.page(task, offset, limit)
            self._progress(task, len(more))
            if not more:
                return list(out.values())
            with self.sizes.lock:
                self.sizes.cap = count if self.sizes.cap is None else min(self.sizes.cap, count)
            added = 0
            for record in more:
                key = str(record["id"])
                if key not in out:
                    out[key] = record
                    added += 1
            if added == 0:
                raise IncompleteError(
                    f"{task.url}: the page at offset {offset} added no new id (the API "
                    "ignores offset?); run it again later", url=task.url)
            self.sizes.served(len(more))
            if len(more) < count:
                return list(out.values())
            offset += len(more)

    def _progress(self, task: _Task, count: int) -> None:
        kind = KIND_OF[task.resource]
        with self._lock:
            counts = self._counts.setdefault(kind, [0, 0])
            counts[0] += 1
            counts[1] += count
            event = ProgressEvent(kind, counts[0], counts[0], counts[1], None)
        if self.progress is not None:
            self.progress(event)


def _run(tasks: list[_Task], work: Callable[[_Task], list[Record]], concurrency: int,
         client: V3Client, deadline: float | None) -> list[list[Record]]:
    """``work`` on every task by daemon threads (none waited for after a failure); results
    in task order; the first failure is raised, and stops the others' waits."""
    results: list[list[Record] | None] = [None] * len(tasks)
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for i in range(len(tasks)):
        todo.put(i)
    done: queue.SimpleQueue[tuple[int, BaseException | None]] = queue.SimpleQueue()
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            try:
                i = todo.get_nowait()
            except queue.Empty:
                return
            try:
                results[i] = work(tasks[i])
            except BaseException as exc:  # handed to the waiting thread
                done.put((i, exc))
                return
            done.put((i, None))

    for n in range(max(1, min(concurrency, len(tasks)))):
        threading.Thread(target=worker, name=f"kmsnap-v3-{n}", daemon=True).start()
    try:
        for _ in tasks:
            left = client.time_left()
            try:
                i, error = done.get(timeout=None if left is None else max(left, 0.0) + 5.0)
            except queue.Empty:
                raise DeadlineError(f"{tasks[0].url}: no answer before the pull's deadline of "
                                    f"{deadline:g} s (--deadline)", url=tasks[0].url) from None
            if error is not None:
                raise error
    finally:
        stop.set()
    return [r if r is not None else [] for r in results]


def _excluded(product: Record, exclude: frozenset[str]) -> bool:
    name = product.get("name")
    return str(product["id"]) in exclude or (isinstance(name, str) and name in exclude)


def _product_label(product: Record, secrets: tuple[str, ...]) -> str:
    name = product.get("name")
    shown = scrub(name, secrets, 80) if isinstance(name, str) else "(no name)"
    return f"product {shown!r} (id {product['id']})"


def pull_v3(
    options: V3PullOptions,
    *,
    progress: ProgressCallback | None = None,
    session: requests.Session | None = None,
    clock: Clock | None = None,
) -> V3PullResult:
    """Crawl every product the credentials can see, and their reports, events and
    properties, into a ``Snapshot``. Raises ``ApiError`` (and children), never a partial
    snapshot; a product answering 403 fails the pull unless it is in ``exclude_products``."""
    started = time.perf_counter()
    api = options.api.rstrip("/")
    with V3Client(api, options.credentials, session=session, timeout=options.timeout,
                  concurrency=options.concurrency, per_minute=options.per_minute,
                  max_rps=options.max_rps, clock=clock, max_body=options.max_body,
                  deadline=options.deadline,
                  max_retry_after=options.max_retry_after) as client:
        if progress is not None:  # pauses for the per-minute budget shown, not a frozen display
            client.on_wait = lambda seconds, why: progress(ProgressEvent.wait(seconds, why))
        crawler = _Crawler(client, options, progress)
        finished = False
        try:
            products = crawler.collection(_Task("products", f"{api}/products"))
            warnings: list[str] = []
            pulled: list[Record] = []
            for product in products:
                if _excluded(product, options.exclude_products):
                    warnings.append(f"left out {_product_label(product, crawler._secrets())}: "
                                    "excluded in the configuration")
                else:
                    pulled.append(product)
            tasks = [_Task(resource, f"{api}/products/{quote(str(product['id']), safe='')}"
                                     f"/{resource}", product)
                     for product in pulled for resource in CHILDREN]

            def work(task: _Task) -> list[Record]:
                try:
                    return crawler.collection(task)
                except AuthError as error:
                    if error.status != 403 or task.product is None:
                        raise
                    label = _product_label(task.product, crawler._secrets())
                    raise AuthError(
                        f"{error}; {label} answers 403: add its id or name to the products "
                        "excluded in kmsnap.yaml to pull the others without it",
                        url=error.url, status=403) from None

            children = _run(tasks, work, options.concurrency, client, options.deadline)
            finished = True
        finally:
            if not finished:
                client.cancel()
        snapshot = Snapshot(api=options.api, source="v3")
        accounts: dict[str, Any] = {}
        for product in pulled:
            account = product.get("account_id")
            if account is not None and not isinstance(account, (dict, list)):
                accounts.setdefault(str(account), account)
        for account in accounts.values():
            snapshot.add("account", {"id": account})  # v3 sends no account names
        for product in pulled:
            snapshot.add("product", product)
        for task, records in zip(tasks, children, strict=True):
            for record in records:
                if task.product is not None:
                    record.setdefault("product_id", task.product["id"])
                snapshot.add(KIND_OF[task.resource], record)
        if not options.with_stats:
            snapshot.stats.clear()
        if crawler.sizes.cap is not None:
            warnings.append(f"the API serves at most {crawler.sizes.cap} records a page "
                            f"(asked for {options.page_size})")
        return V3PullResult(
            snapshot, client.requests, time.perf_counter() - started, warnings,
            least_requests=1 + 3 * len(pulled), cap_checks=crawler.sizes.checks,
            page_cap=crawler.sizes.cap,
        )
