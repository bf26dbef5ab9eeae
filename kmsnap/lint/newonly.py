"""``--new-only``: the findings a new snapshot introduces over a base (what a pull request adds).

A finding is old when the base has one with the same rule, kind and entity id, so a renamed
entity that already broke a rule is not new; findings about the configuration itself
(expired or unused suppressions) are always kept.
"""

from __future__ import annotations

from collections.abc import Iterable

from kmsnap.lint.engine import Finding, LintResult
from kmsnap.lint.rules import META_RULES

__all__ = ["new_only"]


def new_only(result: LintResult, base: Iterable[Finding]) -> LintResult:
    """``result`` without the findings (reported or suppressed) that ``base`` has too."""
    old = {finding.key for finding in base}

    def fresh(finding: Finding) -> bool:
        return finding.rule in META_RULES or finding.key not in old

    return LintResult(
        findings=[f for f in result.findings if fresh(f)],
        suppressed=[f for f in result.suppressed if fresh(f)],
    )
