"""A deterministic generator of realistic Kissmetrics catalogs, awkward names included.

The same ``size`` and ``seed`` always give the same catalog, ids included. Names are
chosen to break naive YAML, markdown, shell, path and terminal handling, but by default
only names the real API can send: the vendor's own clients must read the default catalog
(Kissmetrics' example scripts sort by name and crash on a null one). Values the API never
sends come only with ``impossible=True``, for robustness tests.
"""

from __future__ import annotations

import random
from math import isqrt

from kmsnap.emulator.catalog import Catalog, random_uuid
from kmsnap.model import Record

# Names a careless writer mangles: YAML 1.1/1.2 scalars, YAML indicators, whitespace,
# quotes, unicode, markup, path tricks, control characters and CI-annotation injection.
# Every one is a name the API can send.
AWKWARD_NAMES: tuple[str, ...] = (
    "yes", "no", "on", "off", "N", "null", "~", "true", "False",
    "1e3", "0123", "0x1F", ".inf", "-.inf", ".nan", "12:30:00",
    "2014-09-02T19:46:43Z", "2014-09-02",
    "key: value", "a #comment", "#hashtag", "- dash", "*star", "@mention", "`backtick`",
    "[1, 2]", "{a: b}", ">folded", "|literal",
    "  leading and trailing  ", " ", "", "line one\nline two", "tab\tseparated",
    "trailing newline\n", "it's", 'say "hi"', "'single' and \"double\"", "back\\slash",
    "Café déjà vu", "日本語のイベント", "emoji 🚀🎉", "👍",
    "<b>bold</b> <script>alert(1)</script>", "| col | col |", "a | b",
    "**markdown** _x_ [link](http://example.com)",
    "../../etc/passwd", "a/b/c", "..", "C:\\Windows\\path",
    "esc \x1b[31mred\x1b[0m", "bell\x07", "del\x7f", "nel\x85", "ls\u2028ps\u2029",
    "::warning::injected", "${{ secrets.TOKEN }}", "$(rm -rf /)",
    " ".join(["very long name"] * 40),
    "None",  # Python's null, spelled as a name; null itself only with impossible=True
    # Rarer spellings last: a small catalog may not reach them.
    "y", "Null", "0o17", "+1", "3.0", "1_000", "? question", "&anchor", "!tag", "%percent",
    "bom\ufeff", "%0Aencoded", "Ünïcödé naïve",
)

# Values the real API never sends, each put where its stand-in in AWKWARD_NAMES would be
# (so an impossible catalog is the default one plus these): a null name.
IMPOSSIBLE_NAMES: dict[str, str | None] = {"None": None}

_VERBS = (
    "viewed", "clicked", "signed up", "purchased", "started", "completed", "cancelled",
    "shared", "searched", "downloaded", "upgraded", "invited", "logged in", "opened",
)
_NOUNS = (
    "pricing page", "signup button", "trial", "checkout", "video", "report", "invoice",
    "dashboard", "onboarding step", "newsletter", "mobile app", "coupon", "profile", "cart",
)
_PROPS = (
    "referrer", "campaign source", "plan", "country", "browser", "device type", "utm medium",
    "revenue", "order id", "landing page", "experiment variant", "language", "coupon code",
)
_METRICS = (
    "Revenue", "Average Revenue Per Person", "Signups", "Conversion Rate", "Churn",
    "Active Users", "Time to Purchase", "Trial Starts", "Retention", "Page Views",
)
_REPORTS = (
    "My People Search", "Signup Funnel", "Revenue by Channel", "Weekly Cohorts",
    "Pricing A/B Test", "Power Users", "Checkout Funnel", "Referrer Breakdown",
)
_REPORT_TYPES = ("people_search_v2", "funnel", "revenue", "cohort", "ab_test", "people_search_v2")
_ACCOUNTS = (
    "My SaaS Account", "Acme Corp", "yes", "Café Ω 🎉 <b>", "Globex: EU #1",
    "  Initech  ", "Umbrella/../Holdings", "Stark\nIndustries", "Wayne & Sons", "0123",
)
_PRODUCTS = (
    "My SaaS Product", "Web App", "iOS App", "Android App", "Marketing Site", "null",
    "Prod: EU #1", "../../escape", "Ünïcödé 🚀", "Docs | Help", "Staging", "1e3",
)
_DESCRIPTIONS: tuple[str | None, ...] = (
    None, None, None, "Tracked by the JavaScript library.",
    "Line one.\nLine two with `code` and a | pipe.\n\n- a list item",
    "The average amount of revenue per person generated during the given time period.",
    "", "  spaces around  ", "Contains: a colon, a #hash and 'quotes'.",
)
_TIMEZONES = ("US/Pacific", "US/Eastern", "UTC", "Europe/Berlin", "Asia/Tokyo", "America/Sao_Paulo")
_ENVIRONMENTS = ("production", "production", "staging", "development", "")
_COLORS: tuple[str | None, ...] = (None, "#1f77b4", "#ff7f0e", "#2ca02c", "red")

# Share of the non-account, non-product entities per kind.
_SHARES = {"event": 0.40, "property": 0.35, "metric": 0.15, "report": 0.10}
_AWKWARD_EVERY = 3  # every 3rd entity of a product and kind takes the next awkward name


def _stamp_pool(rng: random.Random, n: int = 4096) -> list[str]:
    """Sorted ISO timestamps 2012..2024, in both published forms (``Z`` and ``+00:00``)."""
    pool = []
    for _ in range(n):
        y, mo, d = 2012 + rng.randrange(13), 1 + rng.randrange(12), 1 + rng.randrange(28)
        h, mi, s = rng.randrange(24), rng.randrange(60), rng.randrange(60)
        pool.append((y, mo, d, h, mi, s))
    pool.sort()
    suffixes = ("+00:00", "Z")
    return [
        f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{suffixes[(i // 7) % 2]}"
        for i, (y, mo, d, h, mi, s) in enumerate(pool)
    ]


class _Namer:
    """Unique names within one product and kind, with awkward names mixed in.

    Awkward names continue across products (a cursor), so that even a small catalog
    holds every one of them somewhere.
    """

    def __init__(
        self,
        words: tuple[str, ...],
        prefix: tuple[str, ...] = ("",),
        start: int = 0,
        awkward: tuple[str | None, ...] = AWKWARD_NAMES,
    ):
        self.awkward = awkward
        self.combos = [f"{p} {w}".strip() for p in prefix for w in words]
        self.base = self.cursor = start

    def next_product(self) -> None:
        self.base = self.cursor

    def name(self, count: int) -> str | None:
        n_awkward = len(self.awkward)
        if count % _AWKWARD_EVERY == 1 and count // _AWKWARD_EVERY < n_awkward:
            self.cursor = self.base + count // _AWKWARD_EVERY + 1
            return self.awkward[(self.base + count // _AWKWARD_EVERY) % n_awkward]
        # Positions 1, 1 + every, ... before this one went to awkward names.
        plain = count - min((count + _AWKWARD_EVERY - 2) // _AWKWARD_EVERY, n_awkward)
        n = len(self.combos)
        base = self.combos[plain % n]
        return base if plain < n else f"{base} {plain // n + 1}"


def _split(total: int, weights: list[float]) -> list[int]:
    """Split ``total`` into integer parts proportional to ``weights`` (largest remainder)."""
    s = sum(weights)
    raw = [total * w / s for w in weights]
    parts = [int(x) for x in raw]
    by_rest = sorted(range(len(raw)), key=lambda i: raw[i] - parts[i], reverse=True)
    for i in by_rest[: total - sum(parts)]:
        parts[i] += 1
    return parts


def generate_catalog(
    size: int = 200,
    seed: int = 0,
    *,
    orphans: int = 0,
    extra: bool = False,
    impossible: bool = False,
) -> Catalog:
    """A realistic catalog of about ``size`` entities, the same for the same ``size`` and ``seed``.

    Several accounts with several products each; events, properties, metrics and
    reports with nulls, unknown extra fields, usage counters and awkward names
    (``AWKWARD_NAMES``). ``orphans`` adds that many events whose ``product_id`` names
    no product; ``extra`` adds collections of unknown kinds (``segments``, ``dashboards``);
    ``impossible`` adds values the real API never sends (``IMPOSSIBLE_NAMES``: null names),
    for tests of what kmsnap does with them, and is otherwise the same catalog.
    """
    catalog = Catalog(seed=seed)
    if size <= 0:
        return catalog
    rng = random.Random(f"kmsnap-emulator-{seed}")
    rnd = rng.random
    stamps = _stamp_pool(rng)
    ns = len(stamps)

    def uid() -> str:
        return random_uuid(rng)

    n_accounts = 1 if size < 10 else max(2, min(40, isqrt(size) // 10))
    max_products = max(1, size // 20)
    per_account = [1 + rng.randrange(4) for _ in range(n_accounts)]
    while sum(per_account) > max_products and max(per_account) > 1:
        per_account[per_account.index(max(per_account))] -= 1
    records = catalog.records

    products: list[Record] = []
    for a in range(n_accounts):
        aid = uid()
        account: Record = {
            "id": aid,
            "name": _ACCOUNTS[a % len(_ACCOUNTS)] + (f" {a // len(_ACCOUNTS) + 1}"
                                                     if a >= len(_ACCOUNTS) else ""),
            "status": "canceled" if a % 5 == 4 else "active",
            "created_at": stamps[a * 7 % ns],
            "updated_at": stamps[(a * 7 + 100) % ns],
            "contact": {"phone": None, "country": None, "name": None} if a % 2 == 0 else
            {"phone": "+1 555 0100", "country": "US", "name": "Ada O'Neil"},
        }
        if a == 1:
            account["plan"] = {"tier": "enterprise", "seats": 25}  # an unknown field
        records["account"][aid] = account
        for p in range(per_account[a]):
            i = len(products)
            pid = uid()
            product: Record = {
                "id": pid,
                "account_id": aid,
                "name": _PRODUCTS[i % len(_PRODUCTS)] + (f" {i // len(_PRODUCTS) + 1}"
                                                         if i >= len(_PRODUCTS) else ""),
                "url": "" if i % 3 == 0 else f"https://app{i}.example.com/",
                "status": "canceled" if i % 7 == 6 else "active",
                "environment": _ENVIRONMENTS[i % len(_ENVIRONMENTS)],
                "timezone": _TIMEZONES[i % len(_TIMEZONES)],
                "created_at": stamps[(i * 13 + p) % ns],
            }
            if i % 4 == 3:
                product["sdk_version"] = "2.3.1"  # an unknown field
            records["product"][pid] = product
            products.append(product)

    rest = max(0, size - n_accounts - len(products) - orphans)
    weights = [0.2 + rnd() for _ in products]
    kind_counts = _split(rest, list(_SHARES.values()))
    per_product = {
        kind: _split(count, weights) for kind, count in zip(_SHARES, kind_counts, strict=True)
    }
    awkward: tuple[str | None, ...] = AWKWARD_NAMES
    if impossible:
        awkward = tuple(IMPOSSIBLE_NAMES.get(name, name) for name in AWKWARD_NAMES)
    event_namer = _Namer(_NOUNS, _VERBS, awkward=awkward)
    prop_namer = _Namer(_PROPS, start=24, awkward=awkward)
    metric_namer = _Namer(_METRICS, start=47, awkward=awkward)
    report_namer = _Namer(_REPORTS, start=56, awkward=awkward)
    namers = (event_namer, prop_namer, metric_namer, report_namer)
    descriptions = _DESCRIPTIONS
    nd = len(descriptions)

    for pi, product in enumerate(products):
        pid, aid = product["id"], product["account_id"]
        for namer in namers:
            namer.next_product()
        events = records["event"]
        for c in range(per_product["event"][pi]):
            name = event_namer.name(c)
            i = int(rnd() * ns)
            j = i + int(rnd() * (ns - i))
            used = c % 11 != 10
            record: Record = {
                "id": uid(), "product_id": pid, "name": name,
                "display_name": name.capitalize() if name and c % 9 else None,
                "description": descriptions[c % nd], "is_visible": c % 13 != 12,
                "total": int(rnd() * 100000) if used else 0,
                "first_used_at": stamps[i] if used else None,
                "last_used_at": stamps[j] if used else None,
                "first_sent_at": stamps[i] if used else None,
                "last_sent_at": stamps[j] if used else None,
            }
            if c % 17 == 5:
                record["tags"] = ["imported", "v2"]  # unknown fields, as a beta API adds them
            events[record["id"]] = record
        props = records["property"]
        for c in range(per_product["property"][pi]):
            name = prop_namer.name(c)
            i = int(rnd() * ns)
            j = i + int(rnd() * (ns - i))
            record = {
                "id": uid(), "product_id": pid, "name": name,
                "display_name": name.title() if name and c % 5 else None,
                "description": descriptions[(c + 3) % nd], "is_visible": c % 19 != 18,
                "type": ("automatic", "text", "number", None)[c % 4],
                "first_used_at": stamps[i], "last_used_at": stamps[j],
                "first_sent_at": stamps[i], "last_sent_at": stamps[j],
            }
            if c % 23 == 7:
                record["source"] = {"sdk": "js", "since": stamps[i]}
            props[record["id"]] = record
        metrics = records["metric"]
        for c in range(per_product["metric"][pi]):
            record = {
                "id": uid(), "product_id": pid, "title": metric_namer.name(c),
                "description": descriptions[(c + 5) % nd], "is_visible": c % 7 != 6,
                "unit_type": ("numeric", "time", "percent")[c % 3],
                "status": ("pending", "active", "archived")[c % 3],
                "color": _COLORS[c % len(_COLORS)], "sort_index": c,
                "config_last_changed_at": stamps[int(rnd() * ns)],
            }
            if c % 11 == 3:
                record["format"] = "currency"
            metrics[record["id"]] = record
        reports = records["report"]
        for c in range(per_product["report"][pi]):
            record = {
                "id": uid(), "account_id": aid, "product_id": pid,
                "name": report_namer.name(c),
                "report_type": _REPORT_TYPES[c % len(_REPORT_TYPES)],
                "created_at": stamps[int(rnd() * ns)],
            }
            reports[record["id"]] = record

    for c in range(orphans):
        i = int(rnd() * ns)
        record = {
            "id": uid(), "product_id": uid(), "name": f"orphaned event {c + 1}",
            "display_name": None, "description": None, "is_visible": True, "total": c,
            "first_used_at": stamps[i], "last_used_at": stamps[i],
            "first_sent_at": stamps[i], "last_sent_at": stamps[i],
        }
        records["event"][record["id"]] = record

    if extra and products:
        catalog.extra["segments"] = [
            {"id": uid(), "product_id": products[k % len(products)]["id"],
             "name": name, "definition": {"event": "signed up", "within_days": 7 * (k + 1)}}
            for k, name in enumerate(("Trial users", "yes", "Power: users #1"))
        ]
        catalog.extra["dashboards"] = [
            {"id": uid(), "title": "Main dashboard", "widgets": 4},
        ]
    return catalog
