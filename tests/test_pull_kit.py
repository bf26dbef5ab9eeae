"""Helpers for the api, crawl and pull tests (no tests here): a fake clock, small catalogs."""

from __future__ import annotations

import threading
import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from kmsnap.emulator import Catalog

TOKEN = "demo-token"
SECRET = "s3cr3t-T0KEN-that-must-never-show"


class FakeClock:
    """A clock whose sleeps return at once and only move its own time forward."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 1000.0
        self.wall = time.time()
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        with self._lock:
            return self.now

    def time(self) -> float:
        with self._lock:
            return self.wall + (self.now - 1000.0)

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            if seconds > 0:
                self.now += seconds


class RefusingAdapter(HTTPAdapter):
    """A transport that records and refuses every send: proof that nothing left."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        self.sent.append(str(request.url))
        raise AssertionError(f"a request was sent: {request.url}")


def refusing_session() -> tuple[requests.Session, RefusingAdapter]:
    session = requests.Session()
    adapter = RefusingAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session, adapter


def events_catalog(count: int, *, extra: dict[str, list[dict[str, Any]]] | None = None) -> Catalog:
    """One account, one product and ``count`` events (with usage fields), ids in order."""
    account = {"id": "a0000000-0000-4000-8000-000000000000", "name": "Acme", "status": "active",
               "created_at": "2013-10-04T04:56:57Z", "updated_at": "2014-09-02T19:46:43Z",
               "contact": {"phone": None, "country": None, "name": None}}
    product = {"id": "b0000000-0000-4000-8000-000000000000", "account_id": account["id"],
               "name": "Shop", "url": "", "status": "active", "environment": "",
               "timezone": "US/Pacific", "created_at": "2013-10-04T05:01:07+00:00"}
    events = {}
    for i in range(count):
        eid = f"e0000000-0000-4000-8000-{i:012d}"
        events[eid] = {"id": eid, "product_id": product["id"], "name": f"event {i}",
                       "display_name": f"Event {i}", "description": None, "is_visible": True,
                       "total": i, "first_used_at": None, "last_used_at": None,
                       "first_sent_at": None, "last_sent_at": None}
    return Catalog({"account": {account["id"]: account}, "product": {product["id"]: product},
                    "event": events}, extra=extra)
