"""Reading the API's hypermedia: links of an envelope, RFC 6570 expansion, page URLs, item keys.

Pure functions: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from uritemplate import URITemplate

from kmsnap.model import Record

# Rels that never lead to catalog data: navigation of the response itself, the rel
# directory, and query endpoints (``run`` POSTs to another host; the metric queries
# are templates for reports, not catalog).
NOT_CATALOG_RELS: frozenset[str] = frozenset(
    {
        "self", "next", "prev", "previous", "first", "last", "rels",
        "run", "metric-over-time", "metric-by-segment",
    }
)
PAGE_VARIABLES: frozenset[str] = frozenset({"limit", "offset"})


def iter_links(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Links of an envelope: ``links`` then ``data.links`` (where the root keeps its own)."""
    for holder in (body, body.get("data")):
        if isinstance(holder, dict):
            links = holder.get("links")
            if isinstance(links, list):
                yield from (link for link in links if isinstance(link, dict))


def link_url(link: dict[str, Any], base_url: str, page_size: int) -> str | None:
    """The absolute URL a link leads to, or None when it cannot be followed as a GET.

    A template is expanded only when its variables are paging ones, with the values as
    strings (uritemplate silently drops an integer 0); anything with braces left is refused.
    """
    href = link.get("href")
    if not isinstance(href, str) or not href.strip():
        return None
    if link.get("templated") or "{" in href or "}" in href:
        try:
            template = URITemplate(href)
            names = set(template.variable_names)
        except Exception:  # a malformed template is as good as no link
            return None
        if not names <= PAGE_VARIABLES:
            return None
        href = template.expand({"limit": str(page_size), "offset": "0"})
        if "{" in href or "}" in href:
            return None
    return urljoin(base_url, href.strip())


def page_url(url: str, limit: int, offset: int) -> str:
    """``url`` with its ``limit`` and ``offset`` query parameters set, other parameters kept."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k not in PAGE_VARIABLES]
    query += [("limit", str(limit)), ("offset", str(offset))]
    return urlunsplit(parts._replace(query=urlencode(query), fragment=""))


def content_key(record: Record) -> str:
    """A stable id for an item the API sent without one: a hash of its canonical JSON.

    ``sha256:`` and the first 16 hex digits of the SHA-256 of the item (``links`` left
    out) serialised with sorted keys, no spaces and unicode kept.
    """
    text = json.dumps(
        {k: v for k, v in record.items() if k != "links"},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str,
    )
    # surrogatepass: a lone surrogate (valid JSON) still gets a key; the writer then refuses
    # the item by name, as it refuses one with an id.
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def as_int(value: object) -> int | None:
    """An integer from a pagination field, or None when it is not one.

    Digit strings are read only up to 18 ASCII digits: int() refuses (ValueError) past
    4300, and no count of a catalog has more than a handful.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= 18:
            return int(text)
    return None


@dataclass(frozen=True)
class Pagination:
    """A list page's ``pagination``: ``present`` when it is a JSON object at all.

    ``problem`` says what is wrong with its ``total`` (not a non-negative integer); without
    a ``total`` key the collection can only be walked by its ``next`` links.
    """

    present: bool
    total: int | None
    limit: int | None
    problem: str | None = None


def pagination_of(body: dict[str, Any]) -> Pagination:
    """Read ``pagination`` of an envelope, never trusting its types."""
    value = body.get("pagination")
    if not isinstance(value, dict):
        return Pagination(False, None, None)
    limit = as_int(value.get("limit"))
    limit = limit if limit is not None and limit > 0 else None
    if "total" not in value:
        return Pagination(True, None, limit)
    total = as_int(value["total"])
    if total is None or total < 0:
        shown = repr(value["total"])
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        return Pagination(True, None, limit,
                          f"its pagination.total is {shown}, not a non-negative integer")
    return Pagination(True, total, limit)


def page_step(total: int, served: int, limit: int | None) -> int:
    """The offset step between pages: what the first page actually served, not what was asked.

    The server's ``pagination.limit`` is trusted (the reference says so) unless the first
    page, not the last one, came back with fewer items: then the server caps pages below
    the limit it claims, and stepping by that limit would skip items.
    """
    step = limit if limit is not None else served
    if 0 < served < total:
        step = min(step, served) if step > 0 else served
    return max(step, 1)
