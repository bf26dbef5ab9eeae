"""The Kissmetrics REST API v3 emulator: a Core catalog served with v3's catalog routes.

``EmulatorV3`` is an ``Emulator`` whose router speaks v3 (``/v3/products`` and each
product's ``reports``, ``events`` and ``properties``), so the lifecycle, request log,
``inject`` faults, random faults and latency are the Core emulator's own. The catalog is
a ``Catalog`` with Core ids; ``ids`` maps them to stable integers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from kmsnap.emulator.catalog import Catalog
from kmsnap.emulator.server import Emulator
from kmsnap.emulator.v3_records import KIND_OF, RESOURCES, IdMap, resolve_envelope, to_v3
from kmsnap.emulator.v3_routes import OVER_LIMIT_FORMS, RateLimiter, V3Router
from kmsnap.model import Record

USERNAME = "demo@example.com"
PASSWORD = "demo-password"
API_KEY = "demo-api-key"


class EmulatorV3(Emulator):
    """The REST API v3 on a loopback port, serving the same catalogs as ``Emulator``.

    - Credentials: HTTP Basic ``username:password``, or ``api_key:`` with an empty
      password; None turns a form off. Anything else gets 401.
    - ``envelope``: where records go, ``"data"`` (what clients read), ``"resource"``
      (``products``, ``reports``, ``events``, ``properties``), ``"events"`` (own names,
      properties keyed ``events``), ``"published"`` (the published examples: products
      ``data``, reports ``reports``, events and properties ``events``), or a mapping
      ``{resource: key or keys}``; see ``v3_records.resolve_envelope``.
    - ``max_limit``: a larger ``limit`` is silently served this many records.
    - ``rate_per_minute``: a fixed window per ``clock`` minute over every authenticated
      request (None: no limit); ``over_limit`` is the refusal: ``"429-retry-after"``,
      ``"429"``, ``"503"`` (an HTML page) or ``"503-retry-after"``.
    - ``forbidden_products``: products (integer v3 ids, or Core ids as strings) that are
      listed but whose collections answer 403.
    - ``usage=False`` drops ``total`` and the usage stamps; ``live_fields=False`` drops
      ``km_key``, ``index`` and ``property_indices``; ``extra_fields`` adds unknown fields
      per resource (``{"events": {"beta": 1}}``).
    """

    def __init__(
        self,
        catalog: Catalog | None = None,
        *,
        size: int = 200,
        seed: int = 0,
        username: str | None = USERNAME,
        password: str | None = PASSWORD,
        api_key: str | None = API_KEY,
        envelope: str | Mapping[str, str | Sequence[str]] = "data",
        max_limit: int | None = None,
        rate_per_minute: int | None = 15,
        over_limit: str = "429-retry-after",
        forbidden_products: Iterable[int | str] = (),
        clock: Callable[[], float] = time.monotonic,
        latency_ms: float = 0,
        fault_rate: float = 0.0,
        usage: bool = True,
        live_fields: bool = True,
        extra_fields: Mapping[str, Mapping[str, Any]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(
            catalog, size=size, seed=seed, token=None, host=host, port=port,
            latency_ms=latency_ms, fault_rate=fault_rate,
        )
        if max_limit is not None and max_limit < 1:
            raise ValueError("max_limit must be at least 1 (or None for no cap)")
        if over_limit not in OVER_LIMIT_FORMS:
            raise ValueError(f"over_limit must be one of {', '.join(OVER_LIMIT_FORMS)}")
        unknown = set(extra_fields or {}) - set(RESOURCES)
        if unknown:
            raise ValueError(f"unknown resources in extra_fields: {', '.join(sorted(unknown))}")
        self.username = username
        self.password = password
        self.api_key = api_key
        self.envelope = resolve_envelope(envelope)
        self.max_limit = max_limit
        self.limiter = RateLimiter(rate_per_minute, clock)
        self.over_limit = over_limit
        self.forbidden: set[int | str] = set(forbidden_products)
        self.usage = usage
        self.live_fields = live_fields
        self.extra_fields: dict[str, Mapping[str, Any]] = dict(extra_fields or {})
        self.ids = IdMap()
        self.ids.sync(self.catalog)
        self._router = V3Router(self)

    # ------------------------------------------------------------- lifecycle

    def start(self) -> EmulatorV3:
        """Bind, listen and serve in a daemon thread; returns once the socket accepts."""
        super().start()
        return self

    def __enter__(self) -> EmulatorV3:
        return self.start()

    @property
    def base_url(self) -> str:
        """The API base URL, ``http://127.0.0.1:PORT/v3`` (the port is known after start)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v3"

    # ------------------------------------------------------------ scripting

    def forbid(self, product: int | str) -> None:
        """Answer 403 on this product's collections (a v3 id, or a Core id as a string)."""
        self.forbidden.add(product)

    def allow(self, product: int | str) -> None:
        """Undo ``forbid`` (and a ``forbidden_products`` entry)."""
        self.forbidden.discard(product)

    def is_forbidden(self, number: int, core_id: str | None = None) -> bool:
        """Whether the product with v3 id ``number`` (Core id ``core_id``) answers 403."""
        return number in self.forbidden or (core_id is not None and core_id in self.forbidden)

    @property
    def rate_per_minute(self) -> int | None:
        """The limiter's requests per minute (None: no limit); settable."""
        return self.limiter.per_minute

    @rate_per_minute.setter
    def rate_per_minute(self, value: int | None) -> None:
        if value is not None and value < 1:
            raise ValueError("rate_per_minute must be at least 1 (or None for no limit)")
        self.limiter.per_minute = value

    # ---------------------------------------------------------------- reading

    def v3_id(self, kind: str, core_id: str) -> int:
        """The integer id served for a Core entity (``kind`` is singular: ``"event"``)."""
        self.ids.sync(self.catalog)
        number = self.ids.id_of(kind, core_id)
        if number is None:
            raise KeyError(f"no {kind} with Core id {core_id!r}")
        return number

    def core_id(self, kind: str, number: int) -> str:
        """The Core id (as the catalog keys it) of the entity served as ``number``."""
        self.ids.sync(self.catalog)
        core = self.ids.core_of(kind, number)
        if core is None:
            raise KeyError(f"no {kind} with v3 id {number}")
        return core

    def product_ids(self) -> list[int]:
        """Every product's v3 id, in serving order."""
        return [int(r["id"]) for r in self.records("products")]

    def records(self, resource: str, product: int | None = None) -> list[Record]:
        """Every record a complete walk of one collection gets, as served (no paging, no
        403): ``records("products")`` or ``records("events", product_id)``."""
        if resource not in KIND_OF:
            raise ValueError(f"unknown resource {resource!r}; use one of {', '.join(RESOURCES)}")
        kind = KIND_OF[resource]
        extra = self.extra_fields.get(resource)
        with self.catalog.lock:
            self.ids.sync(self.catalog)
            parent = None
            if resource != "products":
                if product is None:
                    raise ValueError(f"{resource} belong to a product: pass its v3 id")
                core = self.ids.core_of("product", product)
                found = self.catalog.get("product", core) if core is not None else None
                if found is None:
                    raise KeyError(f"no product with v3 id {product}")
                parent = found["id"]
            return [
                to_v3(kind, r, self.ids, usage=self.usage, live_fields=self.live_fields,
                      extra=extra)
                for r in self.catalog.listing(kind, parent)
            ]

__all__ = ["API_KEY", "PASSWORD", "USERNAME", "EmulatorV3"]
