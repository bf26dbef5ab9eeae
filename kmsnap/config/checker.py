"""Plain data from a config file to a ``Config``, key by key: every error names the file,
the line and the key, and suggests the key that was probably meant."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kmsnap.config.model import Config, IgnoredField, display_path
from kmsnap.config.values import DEFAULTS, SETTINGS, check_setting
from kmsnap.config.workflow import WORKFLOW_KEYS, check_workflow_setting
from kmsnap.errors import ConfigError
from kmsnap.lint.acceptance import parse_accept
from kmsnap.lint.config import parse_lint, parse_stale
from kmsnap.lint.hidden import parse_hide_days
from kmsnap.model import KINDS
from kmsnap.snapshot.selection import Selector

CONFIG_NAME = "kmsnap.yaml"
# How the generated workflows install kmsnap (kmsnap.config.workflow; kmsnap init reads them).
KEYS = (
    *SETTINGS, "include", "exclude", "ignore_fields", *WORKFLOW_KEYS, "lint", "stale", "compare"
)
KEYS += ("accept", "hide_before_remove_days")  # kmsnap.lint.acceptance, kmsnap.lint.hidden
SELECTOR_KEYS = ("accounts", "products")
TOKEN_HINT = (
    "the token is never read from the config file: set KISSMETRICS_TOKEN or pass --token-file PATH"
)


def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Checker:
    """Turns plain data into a ``Config``; every error names the file, the line and the key."""

    def __init__(self, path: Path, lines: Mapping[tuple[str, ...], int]):
        self.path = path
        self.lines = lines

    def fail(self, keypath: tuple[str, ...], message: str) -> ConfigError:
        for n in range(len(keypath), -1, -1):
            line = self.lines.get(keypath[:n])
            if line is not None:
                return ConfigError(f"{display_path(self.path)}:{line}: {message}")
        return ConfigError(f"{display_path(self.path)}: {message}")

    def mapping(self, value: Any, keypath: tuple[str, ...], what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(keypath, f"{what} must be a mapping of keys to values")
        return value

    def config(self, data: Any) -> Config:
        if data is None:
            data = {}
        top = self.mapping(data, (), "the configuration")
        if "format" in top:
            raise self.fail(
                ("format",),
                f"this is a snapshot header, not a kmsnap config; the config goes in "
                f"{CONFIG_NAME} at the repository root",
            )
        values: dict[str, Any] = {}
        for key, value in top.items():
            if "token" in key.lower():
                raise self.fail((key,), f"'{key}': {TOKEN_HINT}")
            if key not in KEYS:
                raise self.fail((key,), f"unknown key '{key}'{_suggest(key, KEYS)}")
            if key in DEFAULTS:
                try:
                    values[key] = check_setting(key, value)
                except ValueError as exc:
                    raise self.fail((key,), f"'{key}' {exc}") from None
            if key in WORKFLOW_KEYS:
                try:
                    values[key] = check_workflow_setting(key, value)
                except ValueError as exc:
                    raise self.fail((key,), f"'{key}' {exc}") from None
            if key == "compare":  # kmsnap compare's name mapping (kmsnap.envcompare)
                from kmsnap.envcompare import check_compare_config

                try:
                    values[key] = check_compare_config(value)
                except ValueError as exc:
                    where, message = exc.args
                    raise self.fail((key, *where), message) from None
        if "install" in values and "action" in values:
            raise self.fail(
                ("action",), "'install' and 'action' both say how to install kmsnap: keep one"
            )
        return Config(
            path=self.path,
            values=values,
            include=self.selector(top.get("include"), "include"),
            exclude=self.selector(top.get("exclude"), "exclude"),
            ignore_fields=self.ignored(top.get("ignore_fields")),
            lint=parse_lint(top.get("lint"), self),
            stale=parse_stale(top.get("stale"), self),
            accept=parse_accept(top.get("accept"), self),
            hide_before_remove_days=parse_hide_days(top.get("hide_before_remove_days"), self),
            lines={kp[0]: line for kp, line in self.lines.items() if len(kp) == 1},
        )

    def selector(self, value: Any, key: str) -> Selector:
        if value is None:
            return Selector()
        found: dict[str, frozenset[str]] = {}
        for sub, items in self.mapping(value, (key,), f"'{key}'").items():
            if sub not in SELECTOR_KEYS:
                raise self.fail(
                    (key, sub), f"unknown key '{sub}' in '{key}'{_suggest(sub, SELECTOR_KEYS)}"
                )
            items = [] if items is None else items
            if not isinstance(items, list) or not all(
                isinstance(i, (str, int)) and not isinstance(i, bool) for i in items
            ):
                raise self.fail((key, sub), f"'{key}.{sub}' must be a list of names or ids")
            found[sub] = frozenset(str(i) for i in items)
        return Selector(**found)

    def ignored(self, value: Any) -> tuple[IgnoredField, ...]:
        if value is None:
            return ()
        out: list[IgnoredField] = []
        for kind, spec in self.mapping(value, ("ignore_fields",), "'ignore_fields'").items():
            at = ("ignore_fields", kind)
            if kind not in KINDS:
                hint = _suggest(kind, KINDS) or f" (one of {', '.join(KINDS)})"
                raise self.fail(at, f"unknown kind '{kind}' in 'ignore_fields'{hint}")
            pairs: list[tuple[tuple[str, ...], Any, Any]]
            if isinstance(spec, dict):
                pairs = [((*at, f), f, r) for f, r in spec.items()]
            elif isinstance(spec, list):
                pairs = []
                for i, item in enumerate(spec):
                    entry = self.mapping(item, (*at, str(i)), f"'ignore_fields.{kind}' entries")
                    extra = sorted(set(entry) - {"field", "reason"})
                    if extra:
                        raise self.fail(
                            (*at, str(i), extra[0]),
                            f"unknown key '{extra[0]}' in 'ignore_fields.{kind}'"
                            f"{_suggest(extra[0], ('field', 'reason'))}",
                        )
                    pairs.append(((*at, str(i)), entry.get("field"), entry.get("reason")))
            else:
                raise self.fail(
                    at,
                    f"'ignore_fields.{kind}' must be a list of {{field, reason}} "
                    "or a mapping of field to reason",
                )
            for keypath, name, reason in pairs:
                if not isinstance(name, str) or not name:
                    raise self.fail(keypath, f"'ignore_fields.{kind}': a field name is needed")
                if name == "id":
                    raise self.fail(keypath, "'id' cannot be ignored: entities are matched by it")
                if not isinstance(reason, str) or not reason.strip():
                    raise self.fail(
                        keypath, f"'ignore_fields.{kind}.{name}' needs a reason (shown in reports)"
                    )
                out.append(IgnoredField(kind, name, reason.strip()))
        return tuple(out)
