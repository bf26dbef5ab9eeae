"""The Core API's routes as pure request -> answer functions: auth, envelopes, pagination, links.

Item links follow the reference table, published quirks included: a metric list item's
``self`` link has no ``href``, and detail responses of products and below carry
``"links": []``.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from kmsnap.emulator.catalog import KIND_ORDER, Catalog
from kmsnap.model import KINDS, Record, kind_for_rel

DEFAULT_LIMIT = 20
QUERY_HOST = "https://query.kissmetrics.com"
JSON_TYPE = "application/json; charset=utf-8"

_TITLES = {
    "accounts": "Accounts", "products": "Products", "reports": "Reports", "events": "Events",
    "properties": "Properties", "metrics": "Metrics",
}
_PRODUCT_CHILDREN = ("reports", "events", "properties", "metrics")
_RELS: tuple[tuple[str, str], ...] = (
    ("self", "The resource itself."),
    ("first", "The first page of a list."),
    ("last", "The last page of a list."),
    ("next", "The next page of a list."),
    ("prev", "The previous page of a list."),
    ("accounts", "The accounts the token may access."),
    ("account", "One account."),
    ("products", "Products (all, or those of one account)."),
    ("product", "One product."),
    ("reports", "Reports (all, or those of one product)."),
    ("report", "One report."),
    ("events", "Events (all, or those of one product)."),
    ("event", "One event."),
    ("properties", "Properties (all, or those of one product)."),
    ("property", "One property."),
    ("metrics", "Metrics (all, or those of one product)."),
    ("metric", "One metric."),
    ("run", "Run a report (POST, on the query API)."),
    ("metric-over-time", "Query a metric over time (on the query API)."),
    ("metric-by-segment", "Query a metric by segment (on the query API)."),
    ("rels", "This list of link relations."),
)


@dataclass
class Answer:
    """A response to send: status, body bytes and extra headers (Content-Length is added)."""

    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(
        cls, status: int, payload: Any, headers: list[tuple[str, str]] | None = None
    ) -> Answer:
        """A JSON answer (UTF-8, compact)."""
        try:
            body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        except UnicodeEncodeError:  # lone surrogates cannot be UTF-8: escape them instead
            body = json.dumps(payload, separators=(",", ":")).encode()
        return cls(status, body, [("Content-Type", JSON_TYPE), *(headers or [])])

    @classmethod
    def error(
        cls, status: int, message: str, headers: list[tuple[str, str]] | None = None
    ) -> Answer:
        """A JSON error body: ``{"error": {"status", "message"}, "meta": {"status"}}``."""
        payload = {"error": {"status": status, "message": message}, "meta": {"status": status}}
        return cls.json(status, payload, headers)


def link(rel: str, href: str | None, name: str, templated: bool = False) -> dict[str, Any]:
    """A link object in the API's own key order; ``href=None`` leaves the key out (a quirk)."""
    out: dict[str, Any] = {"templated": templated}
    if href is not None:
        out["href"] = href
    out.update(rel=rel, name=name)
    return out


def _q(entity_id: Any) -> str:
    return quote(str(entity_id), safe="")


class Router:
    """Answers one request from the emulator's catalog, tokens and page size.

    Given the three values it reads, not the emulator: the server imports the router, never
    the other way round. ``tokens`` is the emulator's own (live) mapping, so a token added
    later is seen.
    """

    def __init__(
        self,
        catalog: Catalog,
        tokens: Mapping[str, frozenset[str] | None],
        max_page_size: int,
    ) -> None:
        self.catalog = catalog
        self.tokens = tokens
        self.max_page_size = max_page_size

    def answer(
        self, method: str, path: str, query: dict[str, list[str]], authorization: str | None,
        base: str,
    ) -> Answer:
        """The answer to ``method path?query`` for a client that reached us at ``base``."""
        if method != "GET":
            return Answer.error(405, f"method {method} not allowed", [("Allow", "GET")])
        accounts, ok = self._authorize(authorization)
        if not ok:
            return Answer.error(
                401, "missing or invalid token", [("WWW-Authenticate", 'Bearer realm="api"')]
            )
        if path in ("/core", "/core/"):
            return self._root(base)
        if not path.startswith("/core/"):
            return Answer.error(404, "not found")
        parts = [unquote(p) for p in path[len("/core/"):].rstrip("/").split("/")]
        catalog = self.catalog
        if parts == ["rels"]:
            return self._rels(base)
        rel = parts[0]
        kind = kind_for_rel(rel)
        known = kind in KINDS or rel in catalog.extra
        if len(parts) == 1 and known:
            return self._list(base, path, query, kind, None, accounts)
        if len(parts) == 2 and known:
            return self._item(base, kind, parts[1], accounts)
        if len(parts) == 3 and (
            (rel == "accounts" and parts[2] == "products")
            or (rel == "products" and parts[2] in _PRODUCT_CHILDREN)
        ):
            parent = catalog.get(kind, parts[1])
            if parent is None:
                return Answer.error(404, f"no {kind} {parts[1]}")
            if not self._sees(kind, parent, accounts):
                return Answer.error(403, f"this token may not access {kind} {parts[1]}")
            return self._list(base, path, query, kind_for_rel(parts[2]), parts[1], accounts)
        return Answer.error(404, "not found")

    # ------------------------------------------------------------------ auth

    def _authorize(self, authorization: str | None) -> tuple[frozenset[str] | None, bool]:
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None, False
        for known, accounts in list(self.tokens.items()):
            if hmac.compare_digest(known.encode(), token.encode()):
                return accounts, True
        return None, False

    def _sees(self, kind: str, record: Record, accounts: frozenset[str] | None) -> bool:
        if accounts is None:
            return True
        account = self.catalog.account_of(kind, record)
        return account is None or account in accounts

    # ---------------------------------------------------------------- routes

    def _root(self, base: str) -> Answer:
        nav = [link("self", base, "Directory")]
        for kind in KIND_ORDER:
            rel = KINDS[kind].rel
            nav.append(link(rel, f"{base}/{rel}{{?limit,offset}}", _TITLES[rel], True))
        for kind in KIND_ORDER:
            rel = KINDS[kind].rel
            nav.append(link(kind, f"{base}/{rel}/{{id}}", kind.capitalize(), True))
        for rel in list(self.catalog.extra):
            nav.append(link(rel, f"{base}/{_q(rel)}{{?limit,offset}}", rel.capitalize(), True))
        nav.append(link("rels", f"{base}/rels", "Link Relations"))
        data = {"links": nav, "description": "API access for KISSmetrics",
                "name": "KISSmetrics API"}
        return Answer.json(200, {"links": [link("self", base, "Directory")], "data": data})

    def _rels(self, base: str) -> Answer:
        rels = [{"name": n, "description": d} for n, d in _RELS]
        rels += [{"name": r, "description": "A collection."} for r in list(self.catalog.extra)]
        data = {"title": "Link relations", "description": "Link relations used by this API.",
                "rels": rels}
        return Answer.json(200, {"data": data, "links": [link("self", f"{base}/rels", "Self")]})

    def _list(
        self, base: str, path: str, query: dict[str, list[str]], kind: str, parent: str | None,
        accounts: frozenset[str] | None,
    ) -> Answer:
        try:
            limit = _param(query, "limit", DEFAULT_LIMIT)
            offset = _param(query, "offset", 0)
        except ValueError as exc:
            return Answer.error(400, str(exc))
        if limit < 1:
            return Answer.error(400, "limit must be at least 1")
        limit = min(limit, self.max_page_size)
        records = self.catalog.listing(kind, parent, accounts)
        total = len(records)
        page = records[offset:offset + limit]
        url = f"http://{base.split('://', 1)[1].split('/', 1)[0]}{path}"
        links = [link("self", f"{url}?limit={limit}&offset={offset}", "Self"),
                 link("first", f"{url}?limit={limit}&offset=0", "First Page")]
        last = max(0, (total - 1) // limit * limit)
        links.append(link("last", f"{url}?limit={limit}&offset={last}", "Last Page"))
        if offset + limit < total:
            links.append(link("next", f"{url}?limit={limit}&offset={offset + limit}", "Next Page"))
        if offset > 0:
            prev = max(0, min(offset - limit, last))
            links.append(link("prev", f"{url}?limit={limit}&offset={prev}", "Previous Page"))
        data = [self._with_links(base, kind, r, detail=False) for r in page]
        return Answer.json(200, {"data": data, "links": links,
                                 "pagination": {"limit": limit, "offset": offset, "total": total}})

    def _item(
        self, base: str, kind: str, entity_id: str, accounts: frozenset[str] | None
    ) -> Answer:
        record = self.catalog.get(kind, entity_id)
        if record is None:
            return Answer.error(404, f"no {kind} {entity_id}")
        if not self._sees(kind, record, accounts):
            return Answer.error(403, f"this token may not access {kind} {entity_id}")
        rel = KINDS[kind].rel if kind in KINDS else kind
        data = self._with_links(base, kind, record, detail=True)
        self_link = link("self", f"{base}/{_q(rel)}/{_q(entity_id)}", "Self")
        return Answer.json(200, {"data": data, "links": [self_link]})

    # ----------------------------------------------------------------- links

    def _with_links(self, base: str, kind: str, record: Record, *, detail: bool) -> Record:
        """The record as served: its fields plus its ``links``."""
        if detail and kind not in ("account",) and kind in KINDS:
            return {**record, "links": []}  # as the published detail samples show
        return {**record, "links": self._item_links(base, kind, record)}

    def _item_links(self, base: str, kind: str, record: Record) -> list[dict[str, Any]]:
        eid = _q(record.get("id"))
        if kind not in KINDS:
            return [link("self", f"{base}/{_q(kind)}/{eid}", "Self")]
        own = f"{base}/{KINDS[kind].rel}/{eid}"
        if kind == "account":
            return [link("self", own, "Self"), link("products", f"{own}/products", "Products")]
        if kind == "product":
            links = [link("self", own, "Self"),
                     link("account", f"{base}/accounts/{_q(record.get('account_id'))}", "Account")]
            links += [link(rel, f"{own}/{rel}", f"Product {_TITLES[rel]}")
                      for rel in _PRODUCT_CHILDREN]
            return links
        product = link("product", f"{base}/products/{_q(record.get('product_id'))}", "Product")
        if kind == "report":
            run = link("run", f"{QUERY_HOST}/v2/reports/{eid}/run", "Run Report")
            run["method"] = "POST"
            account = link("account", f"{base}/accounts/{_q(record.get('account_id'))}", "Account")
            return [link("self", own, "Self"), product, account, run]
        if kind == "metric":
            query = f"{QUERY_HOST}/v3/metrics/{eid}"
            return [
                link("self", None, "Self"),  # the published sample's self link has no href
                product,
                link("metric-over-time", f"{query}/over-time{{?from,to,interval}}",
                     "Metrics Over Time Query", True),
                link("metric-by-segment", f"{query}/by-segment{{?from,to,segment}}",
                     "Metrics By Segment Query", True),
            ]
        return [link("self", own, "Self"), product]


def _param(query: dict[str, list[str]], name: str, default: int) -> int:
    values = query.get(name)
    if not values:
        return default
    value = values[0]
    if value.startswith("-") and value[1:].isascii() and value[1:].isdigit():
        raise ValueError(f"{name} must not be negative, got {value!r}")
    if not value.isascii() or not value.isdigit():
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)
