"""The governance section of the review comment (``kmsnap diff --format markdown``): the lint
findings the new snapshot introduces over the old one and, when both carry usage fields, the
entities newly stale; within its own share of the comment's bound.

Only when kmsnap.yaml has a ``lint:`` section (so a comment does not change under a team that
did not ask for it); accepted changes have their own section (``kmsnap.lint.accept``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from kmsnap.lint.config import LintConfig, StaleConfig
from kmsnap.lint.engine import Finding, LintResult, lint_snapshot, run_rules
from kmsnap.lint.newonly import new_only
from kmsnap.lint.report import finding_line
from kmsnap.lint.stale import has_stats, judge
from kmsnap.render.markdown import md_escape

__all__ = ["GOVERNANCE_HEADING", "governance_section", "render_governance"]

GOVERNANCE_HEADING = "Governance"


def render_governance(lint: LintResult, stale: LintResult | None, *, limit: int) -> str:
    """The markdown section: new findings, then newly stale entities, within ``limit``."""
    out = ["", f"### {GOVERNANCE_HEADING}", ""]
    size = sum(len(x) + 1 for x in out)
    parts: list[tuple[str, list[Finding]]] = [("New lint findings", lint.findings)]
    if stale is not None:
        parts.append(("Newly stale", stale.findings))
    share = (limit - size) // len(parts)  # each part its share, so stale is never crowded out
    for n_part, (title, findings) in enumerate(parts, 1):
        command = "lint" if n_part == 1 else "stale"
        head = f"**{title} ({len(findings)})**" + ("" if findings else ": none")
        out.append(head)
        size += len(head) + 1
        for n, f in enumerate(findings):
            item = f"- **{f.severity}** `{f.rule}` {md_escape(finding_line(f))}"
            if size + len(item) + 1 + 150 > limit - share * (len(parts) - n_part):
                left = len(findings) - n
                out.append(f"- _… and {left} more: run `kmsnap {command} --format text`_")
                size += 80
                break
            out.append(item)
            size += len(item) + 1
        out.append("")
    return "\n".join(out)


def governance_section(
    old: Any, new: Any, lint: LintConfig, stale: StaleConfig, *, limit: int,
    today: dt.date | None = None, as_of: dt.date | None = None,
) -> str:
    """The section for two loaded snapshots (``kmsnap.model.Snapshot``): lint findings of
    ``new`` that ``old`` does not have, suppressions applied as of ``today``; with usage fields
    on both sides, stale verdicts of ``new`` at ``as_of`` that ``old`` did not have."""
    today = today or dt.date.today()
    found = new_only(lint_snapshot(new, lint, today=today), run_rules(old, lint))
    found.findings = [f for f in found.findings if not f.rule.startswith("suppression-")]
    stale_result = None
    if has_stats(new) and has_stats(old):
        when = as_of or today
        stale_result = new_only(judge(new, stale, as_of=when),
                                judge(old, stale, as_of=when).findings)
    return render_governance(found, stale_result, limit=limit)


def load_pair_for_governance(
    old_spec: str, new_spec: str, config: Any, *, cwd: Path
) -> tuple[Any, Any]:
    """Both snapshots, usage fields included, kmsnap.yaml's include/exclude applied."""
    from kmsnap.git.source import open_source
    from kmsnap.snapshot.selection import filter_snapshot
    from kmsnap.snapshot.store import load_snapshot

    return tuple(  # type: ignore[return-value]
        filter_snapshot(load_snapshot(open_source(spec, cwd=cwd), with_stats=True), config)
        for spec in (old_spec, new_spec)
    )


def review_section(
    old_spec: str, new_spec: str, config: Any, fmt: str, *, cwd: Path, limit: int
) -> str:
    """``diff``'s governance section: '' unless the format is markdown and kmsnap.yaml (a
    ``kmsnap.config.Config``) has a ``lint:`` section; at most a quarter of ``limit``."""
    if fmt != "markdown" or "lint" not in config.lines:
        return ""
    old, new = load_pair_for_governance(old_spec, new_spec, config, cwd=cwd)
    return governance_section(old, new, config.lint, config.stale, limit=min(8000, limit // 4))
