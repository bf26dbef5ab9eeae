"""What a configuration is once checked (``Config``), every setting resolved (``Settings``),
and the ignore rules in the shapes the diff and the reports take."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kmsnap.config.values import DEFAULTS, ENV_VARS, SETTINGS, check_setting, parse_env
from kmsnap.errors import ConfigError, UsageError
from kmsnap.lint.acceptance import Acceptance
from kmsnap.lint.config import LintConfig, StaleConfig
from kmsnap.snapshot.selection import Selector


@dataclass(frozen=True)
class IgnoredField:
    """A field the diff leaves out for one kind, and why (reports show the reason)."""

    kind: str
    field: str
    reason: str


@dataclass(frozen=True)
class Config:
    """A checked configuration file: only the settings the file set are in ``values``."""

    path: Path | None = None  # None: no file, all defaults
    values: Mapping[str, Any] = field(default_factory=dict)
    include: Selector = Selector()
    exclude: Selector = Selector()
    ignore_fields: tuple[IgnoredField, ...] = ()
    lint: LintConfig = LintConfig()  # the lint: section (kmsnap.lint.config)
    stale: StaleConfig = StaleConfig()  # the stale: section
    accept: tuple[Acceptance, ...] = ()  # the accept: section (kmsnap.lint.acceptance)
    hide_before_remove_days: int | None = None  # kmsnap.lint.hidden; None: off
    lines: Mapping[str, int] = field(default_factory=dict)  # top-level key -> line in the file

    def source(self, name: str) -> str:
        """Where the file set ``name``: ``kmsnap.yaml:7``."""
        line = self.lines.get(name)
        return f"{display_path(self.path)}:{line}" if line else display_path(self.path)

    def resolve(
        self, name: str, flag_value: Any = None, *, environ: Mapping[str, str] | None = None
    ) -> Any:
        """One setting: the flag (unless None), else ``KMSNAP_<NAME>``, else the file, else the
        default. Values from flags and the environment are checked like the file's."""
        return self._resolve(name, flag_value, os.environ if environ is None else environ)[0]

    def _resolve(self, name: str, flag: Any, environ: Mapping[str, str]) -> tuple[Any, str]:
        if name not in DEFAULTS:
            raise KeyError(name)
        if flag is not None:
            try:
                return check_setting(name, flag), "flag"
            except ValueError as exc:
                raise UsageError(f"--{name.replace('_', '-')}: {exc}") from None
        env = ENV_VARS[name]
        text = environ.get(env, "").strip()
        if text:
            try:
                return check_setting(name, parse_env(name, text)), env
            except ValueError as exc:
                raise ConfigError(f"environment variable {env}: {exc}") from None
        if name in self.values:
            return self.values[name], self.source(name)
        return DEFAULTS[name], "default"


@dataclass(frozen=True)
class Settings:
    """Every setting resolved; ``sources[name]`` says where it came from (for --debug, errors)."""

    api: str
    snapshot_dir: str
    fail_on: str
    concurrency: int
    page_size: int
    max_rps: float | None
    timeout: float
    allow_shrink: bool
    max_shrink: float
    source: str | None  # "core", "v3", or None: from the api URL
    max_rpm: int | None
    sources: Mapping[str, str]


def resolve_settings(
    config: Config,
    flags: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """All settings at once; ``flags`` maps setting names to flag values (None: not given)."""
    flags = flags or {}
    unknown = sorted(set(flags) - set(DEFAULTS))
    if unknown:
        raise KeyError(", ".join(unknown))
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in SETTINGS:
        values[name], sources[name] = config._resolve(name, flags.get(name), env)
    return Settings(**values, sources=sources)


def locate_snapshot_dir(config: Config, settings: Settings, cwd: Path) -> Path:
    """Where ``settings.snapshot_dir`` is: a value from the file, or the default when there
    is a file, is relative to the file's directory (the repository root), wherever kmsnap
    runs; one from ``KMSNAP_SNAPSHOT_DIR`` or a flag is relative to ``cwd``. Absolute."""
    value = Path(settings.snapshot_dir)
    origin = settings.sources.get("snapshot_dir", "default")
    from_file = origin != "flag" and origin not in ENV_VARS.values()
    base = config.path.parent if from_file and config.path is not None else cwd
    return value if value.is_absolute() else Path(cwd) / base / value


def display_path(path: Path | None) -> str:
    if path is None:
        return "(defaults)"
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def ignore_fields_by_kind(config: Config) -> dict[str, set[str]]:
    """``{kind: {field, ...}}`` for ``diff_snapshots(ignore_fields=...)``."""
    out: dict[str, set[str]] = {}
    for item in config.ignore_fields:
        out.setdefault(item.kind, set()).add(item.field)
    return out


def ignore_reasons(config: Config) -> dict[str, dict[str, str]]:
    """``{kind: {field: reason}}``: what a report shows for each field it leaves out."""
    out: dict[str, dict[str, str]] = {}
    for item in config.ignore_fields:
        out.setdefault(item.kind, {})[item.field] = item.reason
    return out
