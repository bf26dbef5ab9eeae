"""The ``lint:`` and ``stale:`` sections of kmsnap.yaml, checked key by key.

``kmsnap.config.checker`` calls ``parse_lint`` and ``parse_stale`` with itself: every error
goes through its ``fail(keypath, message)``, so it names the file, the line and the key like
the rest of the file. Nothing here imports ``kmsnap.config`` (that would be a circle).
"""

from __future__ import annotations

import datetime as dt
import difflib
import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from kmsnap.lint.rules import CONVENTIONS, LEVELS, LINTED_KINDS, PRESETS, RULES
from kmsnap.model import KINDS

__all__ = [
    "Convention",
    "Exclude",
    "LintConfig",
    "RuleSetting",
    "StaleConfig",
    "Suppression",
    "Thresholds",
    "parse_lint",
    "parse_stale",
]

LINT_KEYS = ("rules", "presets", "naming", "exclude", "suppress")
RULE_KEYS = ("enabled", "severity", "exclude")
EXCLUDE_KEYS = ("ids", "names", "products", "kinds")
SUPPRESS_KEYS = ("rule", "id", "kind", "reason", "expires")
NAMING_KEYS = ("preset", "regex", "message", "objects", "actions")
THRESHOLD_KEYS = ("stopped_after_days", "unused_after_days")
STALE_KEYS = (*THRESHOLD_KEYS, "kinds", "products", "entities")
MAX_REGEX = 1000  # characters: a pattern is a person's, not a program's


class Checking(Protocol):
    """What the config checker offers a section parser: the lines of keys, and ``fail``."""

    lines: Mapping[tuple[str, ...], int]

    def fail(self, keypath: tuple[str, ...], message: str) -> Exception: ...


def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


@dataclass(frozen=True)
class Exclude:
    """Entities a rule (or all of lint) leaves alone: by id, name pattern, product or kind."""

    ids: frozenset[str] = frozenset()
    names: tuple[str, ...] = ()  # fnmatch patterns, case-sensitive
    products: frozenset[str] = frozenset()  # product ids or names
    kinds: frozenset[str] = frozenset()

    def matches(
        self, kind: str, entity_id: str, name: str | None, product: tuple[str | None, str | None]
    ) -> bool:
        """Whether the entity is excluded; ``product`` is (id, name) of its product."""
        if kind in self.kinds or entity_id in self.ids:
            return True
        if any(p is not None and p in self.products for p in product):
            return True
        return name is not None and any(fnmatch.fnmatchcase(name, pat) for pat in self.names)


@dataclass(frozen=True)
class RuleSetting:
    """What kmsnap.yaml says of one rule; None: the rule's default."""

    enabled: bool | None = None
    severity: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    exclude: Exclude = Exclude()


@dataclass(frozen=True)
class Convention:
    """A naming convention for one kind: a preset (with word lists) or a regex and message."""

    preset: str | None = None
    regex: str | None = None
    message: str | None = None
    objects: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Suppression:
    """One entry of lint.suppress: a rule on one entity (by id), with a reason."""

    rule: str
    id: str
    reason: str
    kind: str | None = None
    expires: dt.date | None = None
    where: str = ""  # kmsnap.yaml:12, for the report


@dataclass(frozen=True)
class LintConfig:
    """The checked ``lint:`` section (defaults when the file has none)."""

    rules: Mapping[str, RuleSetting] = field(default_factory=dict)
    presets: tuple[str, ...] = ()
    naming: Mapping[str, Convention] = field(default_factory=dict)
    exclude: Exclude = Exclude()
    suppress: tuple[Suppression, ...] = ()


@dataclass(frozen=True)
class Thresholds:
    """Days after which an entity counts as stopped (not sent) or unused (not used)."""

    stopped_after_days: int | None = None
    unused_after_days: int | None = None


@dataclass(frozen=True)
class StaleConfig:
    """The checked ``stale:`` section: thresholds overall, per kind, product and entity."""

    default: Thresholds = Thresholds()
    kinds: Mapping[str, Thresholds] = field(default_factory=dict)
    products: Mapping[str, Thresholds] = field(default_factory=dict)  # id or name
    entities: Mapping[str, Thresholds] = field(default_factory=dict)  # id


# --- lint -------------------------------------------------------------------------------


class _Parser:
    def __init__(self, checker: Checking):
        self.c = checker

    def mapping(self, value: Any, at: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.c.fail(at, f"'{'.'.join(at)}' must be a mapping of keys to values")
        return value

    def keys(self, data: Mapping[str, Any], allowed: tuple[str, ...], at: tuple[str, ...]) -> None:
        for key in data:
            if key not in allowed:
                raise self.c.fail(
                    (*at, key), f"unknown key '{key}' in '{'.'.join(at)}'{_suggest(key, allowed)}"
                )

    def strings(self, value: Any, at: tuple[str, ...]) -> tuple[str, ...]:
        items = [] if value is None else value
        if not isinstance(items, list) or not all(
            isinstance(i, (str, int)) and not isinstance(i, bool) for i in items
        ):
            raise self.c.fail(at, f"'{'.'.join(at)}' must be a list of names or ids")
        return tuple(str(i) for i in items)

    def kind(self, value: Any, at: tuple[str, ...], kinds: Any = LINTED_KINDS) -> str:
        if value not in kinds:
            hint = _suggest(str(value), kinds) or f" (one of {', '.join(kinds)})"
            raise self.c.fail(at, f"unknown kind '{value}' in '{'.'.join(at[:-1])}'{hint}")
        return str(value)

    def exclude(self, value: Any, at: tuple[str, ...]) -> Exclude:
        if value is None:
            return Exclude()
        data = self.mapping(value, at)
        self.keys(data, EXCLUDE_KEYS, at)
        kinds = self.strings(data.get("kinds"), (*at, "kinds"))
        for i, kind in enumerate(kinds):
            self.kind(kind, (*at, "kinds", str(i)))
        return Exclude(
            ids=frozenset(self.strings(data.get("ids"), (*at, "ids"))),
            names=self.strings(data.get("names"), (*at, "names")),
            products=frozenset(self.strings(data.get("products"), (*at, "products"))),
            kinds=frozenset(kinds),
        )

    def rule(self, rule_id: str, value: Any, at: tuple[str, ...]) -> RuleSetting:
        rule = RULES[rule_id]
        if isinstance(value, bool):  # YAML reads on/off/yes/no as booleans too
            return RuleSetting(enabled=value)
        if isinstance(value, str):
            if value in ("on", "off"):
                return RuleSetting(enabled=value == "on")
            if value in LEVELS:
                return RuleSetting(enabled=True, severity=value)
            raise self.c.fail(
                at, f"'{'.'.join(at)}' must be on, off, a severity ({', '.join(LEVELS)}) or a "
                f"mapping, got {value!r}"
            )
        data = self.mapping(value, at)
        self.keys(data, (*RULE_KEYS, *rule.options), at)
        enabled = data.get("enabled")
        if enabled is not None and not isinstance(enabled, bool):
            raise self.c.fail((*at, "enabled"), f"'{'.'.join(at)}.enabled' must be true or false")
        severity = data.get("severity")
        if severity is not None and severity not in LEVELS:
            raise self.c.fail(
                (*at, "severity"),
                f"'{'.'.join(at)}.severity' must be one of {', '.join(LEVELS)}, got {severity!r}",
            )
        options: dict[str, Any] = {}
        if "across_products" in data:
            if not isinstance(data["across_products"], bool):
                raise self.c.fail((*at, "across_products"),
                                  "'across_products' must be true or false")
            options["across_products"] = data["across_products"]
        if "max_length" in data:
            n = data["max_length"]
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise self.c.fail((*at, "max_length"), "'max_length' must be a positive integer")
            options["max_length"] = n
        return RuleSetting(
            enabled=True if enabled is None and severity is not None else enabled,
            severity=severity,
            options=options,
            exclude=self.exclude(data.get("exclude"), (*at, "exclude")),
        )

    def naming(self, kind: str, value: Any, at: tuple[str, ...]) -> Convention:
        if isinstance(value, str):
            value = {"preset": value}
        data = self.mapping(value, at)
        self.keys(data, NAMING_KEYS, at)
        preset, regex, message = data.get("preset"), data.get("regex"), data.get("message")
        if (preset is None) == (regex is None):
            raise self.c.fail(
                at, f"'{'.'.join(at)}' needs either a preset ({', '.join(CONVENTIONS)}) or a regex"
            )
        if preset is not None and preset not in CONVENTIONS:
            raise self.c.fail(
                (*at, "preset") if "preset" in data else at,
                f"unknown naming preset {preset!r}{_suggest(str(preset), CONVENTIONS)} "
                f"(one of {', '.join(CONVENTIONS)})",
            )
        if regex is not None:
            if not isinstance(regex, str) or not regex or len(regex) > MAX_REGEX:
                raise self.c.fail((*at, "regex"), f"'regex' must be a pattern of 1 to {MAX_REGEX} "
                                  "characters")
            try:
                re.compile(regex)
            except re.error as exc:
                raise self.c.fail((*at, "regex"),
                                  f"'regex' is not a valid pattern: {exc}") from None
            if not isinstance(message, str) or not message.strip():
                raise self.c.fail(at, f"'{'.'.join(at)}' needs a message saying what the "
                                  "regex wants")
        elif message is not None and not isinstance(message, str):
            raise self.c.fail((*at, "message"), "'message' must be text")
        objects = self.strings(data.get("objects"), (*at, "objects"))
        actions = self.strings(data.get("actions"), (*at, "actions"))
        if (objects or actions) and preset != "object_action":
            raise self.c.fail(at, "'objects' and 'actions' go with preset: object_action")
        return Convention(
            preset=preset, regex=regex, message=message.strip() if message else None,
            objects=objects, actions=actions,
        )

    def suppression(self, value: Any, item: tuple[str, ...]) -> Suppression:
        data = self.mapping(value, item)
        self.keys(data, SUPPRESS_KEYS, item)
        # An entry's own line is that of its first key (a mapping's keypath ends up at its
        # last key's line in the line table).
        at = (*item, next(iter(data))) if data else item
        rule = data.get("rule")
        if rule not in RULES:
            raise self.c.fail(
                (*item, "rule") if "rule" in data else at,
                f"'{'.'.join(item)}' needs the id of a rule, got {rule!r}"
                f"{_suggest(str(rule), RULES)}",
            )
        entity_id = data.get("id")
        if isinstance(entity_id, bool) or not isinstance(entity_id, (str, int)) or entity_id == "":
            raise self.c.fail(at, f"'{'.'.join(item)}' needs the id of the entity (ids "
                              "survive renames)")
        reason = data.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise self.c.fail(at, f"'{'.'.join(item)}' needs a reason (shown in reports)")
        kind = data.get("kind")
        if kind is not None:
            kind = self.kind(kind, (*item, "kind"))
        expires = data.get("expires")
        if expires is not None:
            expires = self.date(expires, (*item, "expires"))
        # The checker's own "file:line: " prefix, which names where the entry is.
        where = str(self.c.fail(at, "")).rstrip(": ")
        return Suppression(rule=str(rule), id=str(entity_id), reason=reason.strip(), kind=kind,
                           expires=expires, where=where)

    def date(self, value: Any, at: tuple[str, ...]) -> dt.date:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                pass
        raise self.c.fail(at, f"'{'.'.join(at)}' must be a date (YYYY-MM-DD), got {value!r}")


def parse_lint(value: Any, checker: Checking) -> LintConfig:
    """The ``lint:`` section as a ``LintConfig``; errors through ``checker.fail``."""
    if value is None:
        return LintConfig()
    p = _Parser(checker)
    top = p.mapping(value, ("lint",))
    p.keys(top, LINT_KEYS, ("lint",))
    rules: dict[str, RuleSetting] = {}
    for rule_id, spec in p.mapping(top.get("rules") or {}, ("lint", "rules")).items():
        at = ("lint", "rules", rule_id)
        if rule_id not in RULES:
            hint = _suggest(rule_id, RULES) or " (docs/lint-rules.md lists them)"
            raise checker.fail(at, f"unknown rule '{rule_id}' in 'lint.rules'{hint}")
        rules[rule_id] = p.rule(rule_id, spec, at)
    presets = p.strings(top.get("presets"), ("lint", "presets"))
    for i, preset in enumerate(presets):
        if preset not in PRESETS:
            raise checker.fail(
                ("lint", "presets", str(i)),
                f"unknown preset '{preset}'{_suggest(preset, PRESETS)} "
                f"(one of {', '.join(PRESETS)})",
            )
    naming: dict[str, Convention] = {}
    for kind, spec in p.mapping(top.get("naming") or {}, ("lint", "naming")).items():
        at = ("lint", "naming", kind)
        naming[p.kind(kind, at)] = p.naming(kind, spec, at)
    entries = top.get("suppress")
    entries = [] if entries is None else entries
    if not isinstance(entries, list):
        raise checker.fail(("lint", "suppress"), "'lint.suppress' must be a list of "
                           "{rule, id, reason, expires}")
    suppress = tuple(
        p.suppression(item, ("lint", "suppress", str(i))) for i, item in enumerate(entries)
    )
    return LintConfig(
        rules=rules, presets=presets, naming=naming,
        exclude=p.exclude(top.get("exclude"), ("lint", "exclude")), suppress=suppress,
    )


# --- stale ------------------------------------------------------------------------------


def _thresholds(
    p: _Parser, value: Any, at: tuple[str, ...], allowed: tuple[str, ...]
) -> Thresholds:
    data = p.mapping(value, at)
    p.keys(data, allowed, at)
    found: dict[str, int] = {}
    for key in THRESHOLD_KEYS:
        if key in data:
            n = data[key]
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise p.c.fail((*at, key), f"'{'.'.join((*at, key))}' must be a number of days (0 "
                               f"or more), got {n!r}")
            found[key] = n
    return Thresholds(**found)


def parse_stale(value: Any, checker: Checking) -> StaleConfig:
    """The ``stale:`` section as a ``StaleConfig``; errors through ``checker.fail``."""
    if value is None:
        return StaleConfig()
    p = _Parser(checker)
    default = _thresholds(p, value, ("stale",), STALE_KEYS)
    top = p.mapping(value, ("stale",))
    kinds: dict[str, Thresholds] = {}
    for kind, spec in p.mapping(top.get("kinds") or {}, ("stale", "kinds")).items():
        at = ("stale", "kinds", kind)
        kinds[p.kind(kind, at, tuple(KINDS))] = _thresholds(p, spec, at, THRESHOLD_KEYS)
    scoped: dict[str, dict[str, Thresholds]] = {}
    for key in ("products", "entities"):
        scoped[key] = {
            str(name): _thresholds(p, spec, ("stale", key, str(name)), THRESHOLD_KEYS)
            for name, spec in p.mapping(top.get(key) or {}, ("stale", key)).items()
        }
    return StaleConfig(default=default, kinds=kinds, products=scoped["products"],
                       entities=scoped["entities"])
