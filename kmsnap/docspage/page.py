"""The data dictionary page as one self-contained HTML file: inline CSS, one inline script,
the data as JSON inside ``<script type="application/json">``, nothing fetched from anywhere.

A catalog cannot inject markup or script: the few names in the page's own markup go through
``html.escape``; the data's ``<``, ``>``, ``&`` and U+2028/U+2029 are ``\\u`` escapes, so no
``</script>`` or ``<!--`` can end the data block; the script puts data on the page with
``textContent`` only; and a Content-Security-Policy lets only the page's own script (by its
hash) and styles run, and connects nowhere.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Mapping
from typing import Any

from kmsnap.docspage.assets import CSS, SCRIPT

__all__ = ["embed_json", "render_page"]

_JSON_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def embed_json(value: Any) -> str:
    """``value`` as JSON that is safe inside a ``<script>`` element (and still the same JSON)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    # These characters only occur inside JSON strings, where a \u escape means the same.
    return "".join(_JSON_ESCAPES.get(char, char) for char in text) if any(
        char in text for char in _JSON_ESCAPES
    ) else text


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode()
    return (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src 'sha256-{digest}'; connect-src 'none'; form-action 'none'; "
        "base-uri 'none'"
    )


def render_page(data: Mapping[str, Any]) -> str:
    """The whole HTML page for ``data`` (``docspage.data.build_page_data``'s)."""
    title = html.escape(str(data.get("title", "")))
    source = html.escape(str(data.get("source", "")))
    count = len(data.get("entities", ()))
    policy = html.escape(_csp(), quote=False)  # no double quote in it; single quotes kept
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="kmsnap docs">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        '<header><h1 id="title">' + title + "</h1>"
        f'<p class="source">{source} · <span id="total">{count}</span> entities</p>\n'
        '<div class="filters" role="search">'
        '<input id="q" type="search" placeholder="Search names, display names, ids…" '
        'aria-label="Search" autocomplete="off">'
        '<select id="kind" aria-label="Kind"><option value="">all kinds</option></select>'
        '<label><input type="checkbox" id="f-hidden"> hidden</label>'
        '<label><input type="checkbox" id="f-nodesc"> no description</label>'
        '<label id="l-stale"><input type="checkbox" id="f-stale"> stale</label>'
        '<span id="count" aria-live="polite"></span></div></header>\n'
        '<main><nav id="tree" aria-label="Accounts and products"></nav>'
        '<section id="list" tabindex="0"><div id="spacer"></div></section>'
        '<aside id="detail"><p class="hint">Select an entity to see its fields and '
        "timeline.</p></aside></main>\n"
        "<noscript>This page needs JavaScript to show the catalog.</noscript>\n"
        f'<script type="application/json" id="kmsnap-data">{embed_json(data)}</script>\n'
        f"<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )
