"""What an account's API really answers, as shapes only: ``kmsnap probe``'s library half.

The first page of each catalog endpoint, within the pull's pacing (v3: ``/products``, then
the first product's ``reports``, ``events`` and ``properties``; Core: the root, the
collections it links, and the collections the first account and product link). Each answer
is reduced to its status, its top-level keys, where the records are, how many there are,
and each record field's name and JSON types: never a value, never a catalog entity's name,
never the credentials (every string shown is scrubbed of them), so the text can be pasted
into a bug report as it is. Endpoints are named by their path templates
(``/products/{product_id}/events``), never by an id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests

from kmsnap.errors import ApiError, AuthError, BoundError, DeadlineError, KmsnapError
from kmsnap.sources.core.crawler import PullOptions
from kmsnap.sources.pacing import Clock
from kmsnap.sources.transport import Envelope, Transport, scrub
from kmsnap.sources.v3.crawler import CHILDREN, RECORD_KEYS, V3PullOptions

__all__ = ["MAX_FIELDS", "MAX_KEYS", "Probe", "json_type", "probe", "render_probes"]

MAX_KEYS = 40  # top-level keys shown per answer; the rest are counted
MAX_FIELDS = 200  # record fields shown per endpoint; the rest are counted
MAX_NAME_CHARS = 60  # a key longer than this is cut (a crafted one could be anything)
MAX_CORE_COLLECTIONS = 12  # Core collections probed: every documented one fits


@dataclass(frozen=True)
class Probe:
    """The shape of one endpoint's first page."""

    endpoint: str  # a path template: "/products/{product_id}/events"
    status: int | None = None  # None: no HTTP answer (a transport failure)
    keys: tuple[tuple[str, str], ...] = ()  # top-level key -> JSON type
    more_keys: int = 0
    records_key: str | None = None  # where the records are ("data", "events", ...)
    count: int | None = None  # records on the page
    fields: tuple[tuple[str, str], ...] = ()  # field -> JSON types ("integer", "null|string")
    more_fields: int = 0
    problem: str | None = None  # what went wrong, in words that hold no value
    links: tuple[str, ...] = field(default=(), compare=False)  # Core: rels linked

    @property
    def ok(self) -> bool:
        return self.problem is None


def json_type(value: object) -> str:
    """The JSON type of a decoded value: null, boolean, integer, number, string, array, object."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _name(key: object, secrets: tuple[str, ...]) -> str:
    """A key as it may be shown: scrubbed, escaped when not printable, cut."""
    text = scrub(str(key), secrets, 10 * MAX_NAME_CHARS)
    if not text.isprintable():
        text = ascii(text)[1:-1]
    return text if len(text) <= MAX_NAME_CHARS else text[: MAX_NAME_CHARS - 1] + "…"


Pairs = tuple[tuple[str, str], ...]


def _keys(body: Mapping[str, Any], secrets: tuple[str, ...]) -> tuple[Pairs, int]:
    keys = sorted((_name(k, secrets), json_type(v)) for k, v in body.items())
    return tuple(keys[:MAX_KEYS]), max(0, len(keys) - MAX_KEYS)


def _fields(records: Iterable[object], secrets: tuple[str, ...]) -> tuple[Pairs, int]:
    seen: dict[str, set[str]] = {}
    for record in records:
        if isinstance(record, dict):
            for key, value in record.items():
                seen.setdefault(_name(key, secrets), set()).add(json_type(value))
        else:
            seen.setdefault("(a record that is not an object)", set()).add(json_type(record))
    out = sorted((name, "|".join(sorted(types))) for name, types in seen.items())
    return tuple(out[:MAX_FIELDS]), max(0, len(out) - MAX_FIELDS)


def shape(endpoint: str, envelope: Envelope, candidates: tuple[str, ...],
          secrets: tuple[str, ...]) -> Probe:
    """One answer as a ``Probe``: records under exactly one of ``candidates``."""
    body = envelope.body
    keys, more_keys = _keys(body, secrets)
    found = [key for key in candidates if key in body]
    if len(found) != 1:
        wanted = " or ".join(repr(k) for k in candidates)
        problem = (f"records under more than one of {wanted}" if found
                   else f"no records under {wanted}")
        return Probe(endpoint, envelope.status, keys, more_keys, problem=problem)
    records = body[found[0]]
    if not isinstance(records, list):
        return Probe(endpoint, envelope.status, keys, more_keys, found[0],
                     problem=f"{found[0]!r} is {json_type(records)}, not an array")
    fields, more = _fields(records, secrets)
    return Probe(endpoint, envelope.status, keys, more_keys, found[0], len(records), fields, more)


def _failed(endpoint: str, error: KmsnapError) -> Probe:
    """A failure in words that hold no value (error messages name URLs, which hold ids)."""
    status = getattr(error, "status", None)
    if isinstance(error, AuthError):
        words = "refused: the credentials may not see this" if status == 403 else \
            "refused: the credentials were not accepted"
    elif isinstance(error, DeadlineError):
        words = "no answer before the deadline"
    elif isinstance(error, BoundError):
        words = "the answer is over a bound (size or time)"
    elif status is not None:
        words = "an HTTP error"
    else:
        words = "no usable JSON answer"
    return Probe(endpoint, status, problem=words)


def _get(client: Transport, endpoint: str, url: str) -> Envelope | Probe:
    """The answer, or the endpoint's failure as a ``Probe``."""
    try:
        return client.fetch_json(url)
    except ApiError as error:
        return _failed(endpoint, error)


def _first_id(envelope: Envelope, key: str | None) -> object:
    records = envelope.body.get(key) if key is not None else None
    if isinstance(records, list):
        for record in records:
            if isinstance(record, dict) and isinstance(record.get("id"), (int, str)) \
                    and not isinstance(record.get("id"), bool):
                return record["id"]
    return None


def _probe_v3(options: V3PullOptions, session: requests.Session | None,
              clock: Clock | None) -> list[Probe]:
    from urllib.parse import quote

    from kmsnap.sources.v3.client import V3Client

    api = options.api.rstrip("/")
    secrets = options.credentials.secrets()
    page = urlencode({"offset": 0, "limit": options.page_size})
    out: list[Probe] = []
    with V3Client(api, options.credentials, session=session, timeout=options.timeout,
                  concurrency=1, per_minute=options.per_minute, max_rps=options.max_rps,
                  clock=clock, max_body=options.max_body, deadline=options.deadline,
                  max_retry_after=options.max_retry_after) as client:
        envelope = _get(client, "/products", f"{api}/products?{page}")
        if isinstance(envelope, Probe):
            return [envelope]
        products = shape("/products", envelope, RECORD_KEYS["products"], secrets)
        out.append(products)
        first = _first_id(envelope, products.records_key)
        for resource in CHILDREN:
            endpoint = f"/products/{{product_id}}/{resource}"
            if first is None:
                out.append(Probe(endpoint, problem="not probed: /products gave no product"))
                continue
            url = f"{api}/products/{quote(str(first), safe='')}/{resource}?{page}"
            answer = _get(client, endpoint, url)
            out.append(answer if isinstance(answer, Probe) else
                       shape(endpoint, answer, RECORD_KEYS[resource], secrets))
    return out


def _probe_core(options: PullOptions, session: requests.Session | None,
                clock: Clock | None) -> list[Probe]:
    from kmsnap.model import KINDS, kind_for_rel
    from kmsnap.sources.core.client import ApiClient
    from kmsnap.sources.core.hypermedia import NOT_CATALOG_RELS, iter_links, link_url, page_url

    secrets = (options.token,)
    out: list[Probe] = []
    with ApiClient(options.api, options.token, session=session, timeout=options.timeout,
                   concurrency=1, max_rps=options.max_rps, clock=clock,
                   max_body=options.max_body, deadline=options.deadline,
                   max_retry_after=options.max_retry_after) as client:
        root = _get(client, "/", options.api)
        if isinstance(root, Probe):
            return [root]
        keys, more = _keys(root.body, secrets)

        def rels(body: dict[str, Any], base: str) -> list[tuple[str, str]]:
            found: list[tuple[str, str]] = []
            for link in iter_links(body):
                rel = link.get("rel")
                if not isinstance(rel, str) or rel in NOT_CATALOG_RELS or rel in KINDS:
                    continue
                url = link_url(link, base, options.page_size)
                if url is not None and client.same_origin(url):
                    found.append((rel, page_url(url, options.page_size, 0)))
            return found

        top = rels(root.body, root.url)
        out.append(Probe("/", root.status, keys, more, problem=None,
                         links=tuple(_name(rel, secrets) for rel, _ in top)))
        seen: set[str] = set()
        queue: list[tuple[str, str]] = [(f"/{_name(rel, secrets)}", url) for rel, url in top]
        while queue and len(seen) < MAX_CORE_COLLECTIONS:
            endpoint, url = queue.pop(0)
            if endpoint in seen:
                continue
            seen.add(endpoint)
            envelope = _get(client, endpoint, url)
            if isinstance(envelope, Probe):
                out.append(envelope)
                continue
            probe = shape(endpoint, envelope, ("data",), secrets)
            out.append(probe)
            records = envelope.body.get("data")
            first = records[0] if isinstance(records, list) and records else None
            if isinstance(first, dict) and endpoint.count("/") == 1:  # a root collection's
                parent = kind_for_rel(endpoint[1:])  # first item: what it links to
                holder = {"links": first.get("links")}
                for rel, child in rels(holder, envelope.url):
                    queue.append((f"{endpoint}/{{{parent}_id}}/{_name(rel, secrets)}", child))
    return out


def probe(
    options: PullOptions | V3PullOptions,
    *,
    session: requests.Session | None = None,
    clock: Clock | None = None,
) -> list[Probe]:
    """The first page of each endpoint as ``Probe``s (v3 for ``V3PullOptions``, else Core).

    Raises only for what stops every request (bad credentials' form, a bad URL); an
    endpoint's failure is its ``Probe.problem``."""
    if isinstance(options, V3PullOptions):
        return _probe_v3(options, session, clock)
    return _probe_core(options, session, clock)


def render_probes(probes: Iterable[Probe], *, source: str) -> str:
    """The probes as text for a bug report: shapes only (see the module)."""
    out = [f"kmsnap probe: {source} API; field names and JSON types only, no values"]
    for p in probes:
        status = f"HTTP {p.status}" if p.status is not None else "no answer"
        head = f"GET {p.endpoint}: {status}"
        out.append(head if p.problem is None else f"{head}: {p.problem}")
        if p.keys:
            shown = ", ".join(f"{k} ({t})" for k, t in p.keys)
            extra = f" and {p.more_keys} more" if p.more_keys else ""
            out.append(f"  top-level keys: {shown}{extra}")
        if p.links:
            out.append(f"  links: {', '.join(p.links)}")
        if p.count is not None:
            out.append(f"  records: {p.count} under {p.records_key!r}")
        for name, types in p.fields:
            out.append(f"    {name}: {types}")
        if p.more_fields:
            out.append(f"    ... and {p.more_fields} more fields")
    return "\n".join(out) + "\n"
