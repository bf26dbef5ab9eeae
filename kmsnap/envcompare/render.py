"""A comparison as a matrix in text, markdown or JSON: pure, returns ``str``; names escaped
like every kmsnap report (``render.base``, ``render.markdown``)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from kmsnap.envcompare.model import FORMATS, JSON_VERSION, Pairing, Side, normalize_name
from kmsnap.model import kind_sort_key, rel_for_kind
from kmsnap.render.base import escape, plural, quote, short_quote, show_value
from kmsnap.render.markdown import md_escape

__all__ = ["render_json", "render_markdown", "render_pairings", "render_text"]

# The text matrix keeps its columns readable: a longer name is cut (its length said).
_NAME_WIDTH = 60
_NAME_KEEP = 40


def _title(p: Pairing) -> str:
    def side(s: Side) -> str:
        env = f" ({escape(s.environment)})" if s.environment else ""
        return f"{quote(s.product)}{env} [{escape(s.product_id)}]"

    where = f" in account {quote(p.left.account)}" if p.left.account == p.right.account else ""
    return f"{side(p.left)} ↔ {side(p.right)}{where}"


def _rows(p: Pairing) -> list[tuple[str, str | None, str, str, str]]:
    """(kind, name, left mark, right mark, what) for each entity that is not the same."""
    rows: list[tuple[int, tuple[int, str], str, tuple[str, str | None, str, str, str]]] = []
    for o in p.only_left:
        rows.append((0, kind_sort_key(o.kind), normalize_name(o.name or ""),
                     (o.kind, o.name, "✓", "—", f"only in {escape(p.left.label)}")))
    for o in p.only_right:
        rows.append((0, kind_sort_key(o.kind), normalize_name(o.name or ""),
                     (o.kind, o.name, "—", "✓", f"only in {escape(p.right.label)}")))
    for d in p.different:
        what = "; ".join(
            f"{f}: {show_value(a)} ≠ {show_value(b)}" for f, (a, b) in d.fields.items()
        )
        if d.right_name != d.left_name:
            what = f"as {short_quote(d.right_name)}: {what}"
        rows.append((0, kind_sort_key(d.kind), normalize_name(d.left_name or ""),
                     (d.kind, d.left_name, "✓", "✓", what)))
    rows.sort(key=lambda r: (r[1], r[2], r[3][2]))
    return [r[3] for r in rows]


def _summary(p: Pairing) -> str:
    return (f"{len(p.only_left)} only in {escape(p.left.label)}, {len(p.only_right)} only in "
            f"{escape(p.right.label)}, {plural(len(p.different), 'different', 'different')}, "
            f"{p.same} the same")


def render_text(pairings: Sequence[Pairing]) -> str:
    out: list[str] = []
    for p in pairings:
        out.append(_title(p))
        rows = [(k, short_quote(n, over=_NAME_WIDTH, keep=_NAME_KEEP), a, b, w)
                for k, n, a, b, w in _rows(p)]
        if rows:
            head = ("kind", "name", escape(p.left.label), escape(p.right.label), "")
            widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
            for row in [head, *rows]:
                cells = [c.ljust(w) for c, w in zip(row[:4], widths, strict=True)]
                out.append(("  " + "  ".join(cells) + "  " + row[4]).rstrip())
        out.append(_summary(p))
        out.append("")
    return "\n".join(out)


def render_markdown(pairings: Sequence[Pairing]) -> str:
    out = ["## kmsnap: environments compared", ""]
    for p in pairings:
        out += [f"### {md_escape(_title(p))}", "", md_escape(_summary(p)), ""]
        rows = _rows(p)
        if rows:
            out.append(f"| kind | name | {md_escape(escape(p.left.label))} | "
                       f"{md_escape(escape(p.right.label))}"
                       " | difference |")
            out.append("|---|---|:-:|:-:|---|")
            for k, n, a, b, w in rows:
                kind, name = md_escape(rel_for_kind(k)), md_escape(short_quote(n))
                out.append(f"| {kind} | {name} | {a} | {b} | {md_escape(w)} |")
            out.append("")
    return "\n".join(out)


def render_json(pairings: Sequence[Pairing]) -> str:
    doc = {"version": JSON_VERSION, "pairs": [p.to_json() for p in pairings]}
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def render_pairings(pairings: Sequence[Pairing], fmt: str) -> str:
    """The comparison in ``fmt``: text, markdown or json."""
    if fmt == "text":
        return render_text(pairings)
    if fmt == "markdown":
        return render_markdown(pairings)
    if fmt == "json":
        return render_json(pairings)
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
