"""Run the lint rules over a ``Snapshot``: findings, sorted, with suppressions applied.

``run_rules`` gives every finding the enabled rules make (no suppressions); ``lint_snapshot``
applies ``lint.suppress`` to them: a live suppression moves its finding to ``suppressed``, an
expired one stops applying and is itself a finding (``suppression-expired``), and one that
matches nothing is a finding too (``suppression-unused``).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

from kmsnap.lint.config import Convention, LintConfig, RuleSetting, Suppression
from kmsnap.lint.rules import (
    GA4_KINDS,
    GA4_MAX_LENGTH,
    GA4_RESERVED_NAMES,
    GA4_RESERVED_PREFIXES,
    LEVELS,
    LINTED_KINDS,
    META_RULES,
    RULES,
)
from kmsnap.model import KINDS, Record, Snapshot, entity_name, kind_sort_key

__all__ = ["Finding", "LintResult", "Related", "lint_snapshot", "run_rules"]

_RULE_RANK = {rule_id: i for i, rule_id in enumerate((*RULES, *META_RULES))}


@dataclass(frozen=True)
class Related:
    """Another entity a finding names (the other side of a name collision)."""

    kind: str
    id: str
    name: str | None


@dataclass(frozen=True)
class Finding:
    """One rule broken by one entity. ``message`` never holds the entity's name: renderers
    show the name, id and ``related`` through their escaping helpers."""

    rule: str
    severity: str
    kind: str
    id: str
    name: str | None
    message: str
    product_id: str | None = None
    product_name: str | None = None
    related: tuple[Related, ...] = ()
    reason: str | None = None  # a suppressed finding: the suppression's reason

    @property
    def key(self) -> tuple[str, str, str]:
        """What ``--new-only`` and suppressions match on: rule, kind and entity id."""
        return (self.rule, self.kind, self.id)

    def sort_key(self) -> tuple[Any, ...]:
        return (LEVELS.index(self.severity), _RULE_RANK.get(self.rule, len(_RULE_RANK)),
                kind_sort_key(self.kind), self.product_name or "", self.product_id or "",
                self.name or "", self.id)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule, "severity": self.severity, "kind": self.kind, "id": self.id,
            "name": self.name, "message": self.message, "product_id": self.product_id,
            "product_name": self.product_name,
            "related": [{"kind": r.kind, "id": r.id, "name": r.name} for r in self.related],
        }
        if self.reason is not None:
            out["reason"] = self.reason
        return out


@dataclass
class LintResult:
    """Findings to report and findings a suppression hides, each sorted."""

    findings: list[Finding] = field(default_factory=list)
    suppressed: list[Finding] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(LEVELS, 0)
        for finding in self.findings:
            counts[finding.severity] += 1
        return counts


# --- the rules --------------------------------------------------------------------------

_UNSAFE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
_SPACES = re.compile(r"^\s|\s\Z|\s\s")
_SEPARATORS = re.compile(r"[\s_\-.]+")
_SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*\Z")
_GA4_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_SMALL_WORDS = frozenset({"a", "an", "and", "as", "at", "by", "for", "in", "of", "on", "or",
                          "the", "to", "with"})


def _title_words(name: str) -> list[str] | None:
    """The words of a Title Case name (one space between words), else None."""
    words = name.split(" ")
    if not all(words):
        return None
    for i, word in enumerate(words):
        if not (word[0].isupper() or word[0].isdigit() or (i and word in _SMALL_WORDS)):
            return None
    return words


def _object_action(name: str, conv: Convention) -> bool:
    words = _title_words(name)
    if words is None or len(words) < 2:
        return False
    objects = {w.casefold() for w in conv.objects}
    actions = {w.casefold() for w in conv.actions}
    for cut in range(1, len(words)):
        obj, act = " ".join(words[:cut]).casefold(), " ".join(words[cut:]).casefold()
        if (not objects or obj in objects) and (not actions or act in actions):
            return True
    return False


def convention_problem(name: str, conv: Convention) -> str | None:
    """What is wrong with ``name`` under ``conv``, or None when it follows it."""
    if conv.regex is not None:
        return None if re.search(conv.regex, name) else (conv.message or "does not match")
    if conv.preset == "snake_case":
        ok = bool(_SNAKE.match(name))
        return None if ok else "is not snake_case (lowercase words joined by _)"
    if conv.preset == "title_case":
        ok = _title_words(name) is not None
        return None if ok else "is not Title Case (capitalised words, one space between them)"
    if _object_action(name, conv):
        return None
    want = "an object then an action, in Title Case"
    if conv.objects or conv.actions:
        want += " from the allowed words"
    return f"is not Object Action ({want})"


class _Run:
    def __init__(self, snapshot: Snapshot, config: LintConfig, kinds: Collection[str] | None):
        self.snapshot = snapshot
        self.config = config
        self.kinds = [k for k in LINTED_KINDS if kinds is None or k in kinds]
        self.products = snapshot.of("product")
        self.found: list[Finding] = []

    def setting(self, rule_id: str) -> RuleSetting:
        return self.config.rules.get(rule_id, RuleSetting())

    def enabled(self, rule_id: str) -> bool:
        rule, setting = RULES[rule_id], self.setting(rule_id)
        if setting.enabled is not None:
            return setting.enabled
        return rule.enabled or any(p in rule.presets for p in self.config.presets)

    def product(self, record: Record) -> tuple[str | None, str | None]:
        pid = record.get("product_id")
        if pid is None:
            return None, None
        pid = str(pid)
        name = self.products.get(pid, {}).get("name")
        return pid, name if isinstance(name, str) else None

    def add(self, rule_id: str, kind: str, entity_id: str, record: Record, message: str,
            related: tuple[Related, ...] = ()) -> None:
        if not self.enabled(rule_id):
            return
        name = entity_name(kind, record)
        product = self.product(record)
        if self.setting(rule_id).exclude.matches(kind, entity_id, name, product):
            return
        severity = self.setting(rule_id).severity or RULES[rule_id].severity
        self.found.append(Finding(rule_id, severity, kind, entity_id, name, message,
                                  product[0], product[1], related))

    def entities(self) -> Iterator[tuple[str, str, Record]]:
        for kind in self.kinds:
            for entity_id in sorted(self.snapshot.of(kind)):
                record = self.snapshot.of(kind)[entity_id]
                name = entity_name(kind, record)
                if self.config.exclude.matches(kind, entity_id, name, self.product(record)):
                    continue
                yield kind, entity_id, record

    def run(self) -> list[Finding]:
        groups: dict[tuple[str, str | None, str], list[tuple[str, Record]]] = {}
        across = bool(self.setting("name-collision").options.get("across_products"))
        for kind, entity_id, record in self.entities():
            name = entity_name(kind, record)
            self.record_rules(kind, entity_id, record)
            if name is None or not name.strip():
                self.add("name-empty", kind, entity_id, record, "has no name")
                continue
            self.name_rules(kind, entity_id, record, name)
            norm = _SEPARATORS.sub("", name.casefold())
            if norm:
                place = None if across else self.product(record)[0]
                groups.setdefault((kind, place, norm), []).append((entity_id, record))
        for (kind, _place, _norm), members in groups.items():
            if len(members) < 2:
                continue
            for entity_id, record in members:
                others = tuple(Related(kind, oid, entity_name(kind, other))
                               for oid, other in members if oid != entity_id)
                self.add("name-collision", kind, entity_id, record,
                         "differs only by case, spaces or separators from", others)
        return sorted(self.found, key=Finding.sort_key)

    def record_rules(self, kind: str, entity_id: str, record: Record) -> None:
        spec = KINDS.get(kind)
        fields = spec.fields if spec else ()
        if "description" in fields and not _text(record.get("description")):
            self.add("missing-description", kind, entity_id, record, "has no description")
        if "display_name" in fields and not _text(record.get("display_name")):
            self.add("missing-display-name", kind, entity_id, record, "has no display name")
        if kind == "property" and not _text(record.get("type")):
            self.add("property-type-missing", kind, entity_id, record, "has no type")
        if kind == "metric" and not _text(record.get("unit_type")):
            self.add("metric-unit-missing", kind, entity_id, record, "has no unit type")

    def name_rules(self, kind: str, entity_id: str, record: Record, name: str) -> None:
        if any(unicodedata.category(c) in _UNSAFE for c in name):
            self.add("name-control", kind, entity_id, record,
                     "has a control, format or line-breaking character in its name")
        if _SPACES.search(name):
            self.add("name-whitespace", kind, entity_id, record,
                     "has leading, trailing or double spaces in its name")
        conv = self.config.naming.get(kind)
        if conv is not None:
            problem = convention_problem(name, conv)
            if problem is not None:
                self.add("naming-convention", kind, entity_id, record, problem)
        if kind in GA4_KINDS:
            if name in GA4_RESERVED_NAMES or name.startswith(GA4_RESERVED_PREFIXES):
                self.add("ga4-reserved-name", kind, entity_id, record,
                         "uses a name or prefix GA4 reserves")
            limit = self.setting("ga4-name-format").options.get("max_length", GA4_MAX_LENGTH)
            if len(name) > limit:
                self.add("ga4-name-format", kind, entity_id, record,
                         f"has a name longer than {limit} characters ({len(name)})")
            elif not _GA4_NAME.match(name):
                self.add("ga4-name-format", kind, entity_id, record,
                         "has a name GA4 refuses: a letter, then letters, digits and _ only")


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def run_rules(
    snapshot: Snapshot, config: LintConfig, *, kinds: Collection[str] | None = None
) -> list[Finding]:
    """Every finding of the enabled rules, sorted; no suppression applied."""
    return _Run(snapshot, config, kinds).run()


# --- suppressions -----------------------------------------------------------------------


def _meta(rule_id: str, s: Suppression, message: str) -> Finding:
    return Finding(rule_id, META_RULES[rule_id].severity, s.kind or "suppression", s.id, None,
                   message, reason=s.reason)


def _matches(s: Suppression, finding: Finding) -> bool:
    return s.rule == finding.rule and s.id == finding.id and s.kind in (None, finding.kind)


def apply_suppressions(
    findings: list[Finding], suppress: tuple[Suppression, ...], *, today: dt.date
) -> LintResult:
    """Move the findings a live suppression names to ``suppressed``; report expired and
    unmatched suppressions as findings."""
    result = LintResult()
    live = [s for s in suppress if s.expires is None or s.expires >= today]
    for s in suppress:
        if s.expires is not None and s.expires < today:
            result.findings.append(_meta(
                "suppression-expired", s,
                f"suppression of {s.rule} at {s.where} expired on {s.expires.isoformat()} "
                "and no longer applies"))
    used: set[int] = set()
    for finding in findings:
        hit = next((i for i, s in enumerate(live) if _matches(s, finding)), None)
        if hit is None:
            result.findings.append(finding)
        else:
            used.add(hit)
            result.suppressed.append(_with_reason(finding, live[hit].reason))
    for i, s in enumerate(live):
        if i not in used:
            result.findings.append(_meta(
                "suppression-unused", s,
                f"suppression of {s.rule} at {s.where} matches no finding"))
    result.findings.sort(key=Finding.sort_key)
    return result


def _with_reason(finding: Finding, reason: str) -> Finding:
    return Finding(finding.rule, finding.severity, finding.kind, finding.id, finding.name,
                   finding.message, finding.product_id, finding.product_name, finding.related,
                   reason)


def lint_snapshot(
    snapshot: Snapshot,
    config: LintConfig,
    *,
    today: dt.date,
    kinds: Collection[str] | None = None,
) -> LintResult:
    """Lint ``snapshot``: the findings of the enabled rules, with ``lint.suppress`` applied
    as of ``today``."""
    return apply_suppressions(run_rules(snapshot, config, kinds=kinds), config.suppress,
                              today=today)
