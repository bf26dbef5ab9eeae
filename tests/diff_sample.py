"""A small hand-built pair of snapshots with every change type and severity (for goldens)."""

from __future__ import annotations

from typing import Any

from kmsnap.model import Snapshot


def snap(records: dict[str, list[dict[str, Any]]], stats: dict[str, Any] | None = None) -> Snapshot:
    """A Snapshot from ``kind -> [record, ...]``."""
    out = Snapshot(api="http://127.0.0.1/core")
    for kind, recs in records.items():
        out.entities[kind] = {str(r["id"]): dict(r) for r in recs}
    for kind, by_id in (stats or {}).items():
        out.stats[kind] = dict(by_id)
    return out


def sample_pair() -> tuple[Snapshot, Snapshot]:
    """Old and new sides covering added, removed, changed, renamed and re-created."""
    acme = {
        "id": "acc-1",
        "name": "Acme",
        "status": "active",
        "contact": {"phone": "+1 555 0100", "country": "US", "name": "Ann"},
    }
    globex = {"id": "acc-2", "name": "Globex", "status": "active", "contact": None}
    web = {"id": "prod-1", "account_id": "acc-1", "name": "Web", "status": "active", "url": "x"}
    app = {"id": "prod-2", "account_id": "acc-1", "name": "App", "status": "active"}
    legacy = {"id": "prod-3", "account_id": "acc-2", "name": "Legacy", "status": "active"}

    def ev(i: str, name: str, pid: str = "prod-1", **kw: Any) -> dict[str, Any]:
        return {
            "id": i,
            "product_id": pid,
            "name": name,
            "display_name": name,
            "description": "",
            "is_visible": True,
            **kw,
        }

    old = snap(
        {
            "account": [acme, globex],
            "product": [web, app, legacy],
            "report": [
                {
                    "id": "rep-1",
                    "account_id": "acc-1",
                    "product_id": "prod-1",
                    "name": "Funnel",
                    "report_type": "funnel",
                }
            ],
            "event": [
                ev("ev-1", "Signed up"),
                ev("ev-2", "Checkout"),
                ev("ev-3", "Legacy click"),
                ev("ev-4", "Viewed page"),
                ev("ev-5", "Hidden soon"),
                ev("ev-6", "Opened app", "prod-2"),
            ],
            "property": [
                {
                    "id": "pr-1",
                    "product_id": "prod-1",
                    "name": "Plan",
                    "type": "text",
                    "is_visible": True,
                },
                {
                    "id": "pr-2",
                    "product_id": "prod-1",
                    "name": "Tags",
                    "type": "text",
                    "is_visible": True,
                    "choices": ["a", "b"],
                },
            ],
            "metric": [
                {
                    "id": "m-1",
                    "product_id": "prod-1",
                    "title": "Revenue",
                    "unit_type": "numeric",
                    "status": "ready",
                    "color": "#ff0000",
                },
                {
                    "id": "m-2",
                    "product_id": "prod-2",
                    "title": "Conversion",
                    "unit_type": "percent",
                    "status": "ready",
                    "color": "#00ff00",
                },
            ],
            "segments": [{"id": "seg-1", "name": "VIPs", "rule": "spend > 100"}],
        }
    )
    new = snap(
        {
            "account": [
                {**acme, "contact": {"phone": "+1 555 0199", "country": "US"}},
                globex,
            ],
            "product": [
                web,
                {**app, "name": "Mobile app"},
                {**legacy, "status": "canceled"},
            ],
            "report": [],
            "event": [
                ev("ev-1", "Signed up"),
                {**ev("ev-2", "Checkout"), "display_name": "Check out", "description": "Paid"},
                ev("ev-4", "Page viewed"),
                {**ev("ev-5", "Hidden soon"), "is_visible": False},
                ev("ev-6", "Opened app", "prod-2"),
                ev("ev-7", "Invited friend"),
                ev("ev-8", "Opened app", "prod-2"),
            ],
            "property": [
                {
                    "id": "pr-1",
                    "product_id": "prod-1",
                    "name": "Plan",
                    "type": "number",
                    "is_visible": True,
                },
                {
                    "id": "pr-2",
                    "product_id": "prod-1",
                    "name": "Tags",
                    "type": "text",
                    "is_visible": True,
                    "choices": ["a", "c"],
                },
            ],
            "metric": [
                {
                    "id": "m-1",
                    "product_id": "prod-1",
                    "title": "Revenue (USD)",
                    "unit_type": "numeric",
                    "status": "ready",
                    "color": "#ff0000",
                },
                {
                    "id": "m-2",
                    "product_id": "prod-2",
                    "title": "Conversion",
                    "unit_type": "numeric",
                    "status": "ready",
                    "color": "#0000ff",
                },
                {
                    "id": "m-3",
                    "product_id": "prod-1",
                    "title": "Signups <b>@team</b> | *new*\nline",
                    "unit_type": "numeric",
                    "status": "pending",
                },
            ],
            "segments": [{"id": "seg-1", "name": "VIPs", "rule": "spend > 200"}],
        }
    )
    # ev-6 removed and ev-8 added with the same name in the same product: re-created.
    del new.entities["event"]["ev-6"]
    return old, new
