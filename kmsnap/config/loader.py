"""Settings from ``kmsnap.yaml`` (or ``[tool.kmsnap]`` in ``pyproject.toml``), checked key by key.

A command uses it in three lines; flags must default to ``None`` so that "not given" is visible::

    config = load_config(path=config_flag)                  # defaults when there is no file
    settings = resolve_settings(config, {"api": api, "concurrency": concurrency, ...})
    PullOptions(api=settings.api, concurrency=settings.concurrency, ...)

Each setting comes from the command-line flag, else the environment (``KMSNAP_API``,
``KMSNAP_SNAPSHOT_DIR``, ``KMSNAP_FAIL_ON``, ``KMSNAP_CONCURRENCY``, ``KMSNAP_PAGE_SIZE``,
``KMSNAP_MAX_RPS``, ``KMSNAP_TIMEOUT``, ``KMSNAP_ALLOW_SHRINK``, ``KMSNAP_MAX_SHRINK``), else
the file, else the default. After loading, ``kmsnap.compare.Rules.from_config(config)`` is
what a comparison keeps and leaves out: ``include``/``exclude`` (``kmsnap.snapshot.selection``) and
``ignore_fields`` with their reasons (``ignore_fields_by_kind``, ``ignore_reasons``). The
token is never read from here.
"""

from __future__ import annotations

import difflib
import importlib
import ipaddress
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from kmsnap.errors import ConfigError, UsageError
from kmsnap.model import KINDS

# The selection lives in kmsnap.snapshot.selection; its names stay importable from here.
from kmsnap.snapshot.selection import Selector as Selector
from kmsnap.snapshot.selection import filter_snapshot as filter_snapshot
from kmsnap.snapshot.selection import selection_key as selection_key

CONFIG_NAME = "kmsnap.yaml"
PYPROJECT_NAME = "pyproject.toml"
MAX_CONFIG_BYTES = 1_000_000
FAIL_ON_LEVELS = ("breaking", "warning", "any")

DEFAULTS: dict[str, Any] = {
    "api": "https://api.kissmetrics.com/core",
    "snapshot_dir": "snapshots",
    "fail_on": "any",
    "concurrency": 8,
    "page_size": 100,
    "max_rps": None,  # no cap: the crawl adapts to 429s on its own
    "timeout": 30.0,
    # The shrink guard (kmsnap.snapshot.shrink): a pull that would remove a whole kind, or more than
    # this share of the entities of the snapshot it replaces, fails unless allowed.
    "allow_shrink": False,
    "max_shrink": 0.25,
}
SETTINGS = tuple(DEFAULTS)
ENV_VARS: dict[str, str] = {name: f"KMSNAP_{name.upper()}" for name in SETTINGS}
KEYS = (*SETTINGS, "include", "exclude", "ignore_fields")
SELECTOR_KEYS = ("accounts", "products")
TOKEN_HINT = (
    "the token is never read from the config file: set KISSMETRICS_TOKEN or pass --token-file PATH"
)
_SAFE_PART = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._-]*")


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
    lines: Mapping[str, int] = field(default_factory=dict)  # top-level key -> line in the file

    def source(self, name: str) -> str:
        """Where the file set ``name``: ``kmsnap.yaml:7``."""
        line = self.lines.get(name)
        return f"{_display(self.path)}:{line}" if line else _display(self.path)

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
                return check_setting(name, _parse_env(name, text)), env
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


# ---- loading ---------------------------------------------------------------------------


def find_config(cwd: Path | None = None) -> Path | None:
    """The config file for ``cwd``: ``kmsnap.yaml`` or a ``pyproject.toml`` with ``[tool.kmsnap]``,
    looked for in ``cwd`` and then its parents up to the git root (only ``cwd`` outside git).
    A ``kmsnap.yaml`` that is a snapshot header (``format: 1``) is not a config and is skipped."""
    start = (cwd or Path.cwd()).resolve()
    chain = [start, *start.parents]
    root = next((d for d in chain if (d / ".git").exists()), None)
    for directory in chain if root is not None else [start]:
        found = [
            p
            for p in (directory / CONFIG_NAME, directory / PYPROJECT_NAME)
            if p.is_file()
            and (
                _is_pyproject_config(p) if p.name == PYPROJECT_NAME else not _is_snapshot_header(p)
            )
        ]
        if len(found) > 1:
            raise ConfigError(
                f"{_display(found[0])} and [tool.kmsnap] in {_display(found[1])} both configure "
                "kmsnap: keep one"
            )
        if found:
            return found[0]
        if directory == root:
            break
    return None


def load_config(cwd: Path | None = None, path: Path | None = None) -> Config:
    """The checked configuration: from ``path`` (``--config``) or the one ``find_config`` finds;
    a ``Config`` of defaults when there is none."""
    if path is None:
        path = find_config(cwd)
        if path is None:
            return Config()
    elif not path.is_file():
        raise ConfigError(f"{_display(path)}: no such config file")
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{_display(path)}: too big for a config file")
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{_display(path)}: cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{_display(path)}: not UTF-8 text") from None
    if path.name == PYPROJECT_NAME:
        data, lines = _read_pyproject(path, text)
    else:
        data, lines = _read_yaml(path, text)
    return _Checker(path, lines).config(data)


def _is_snapshot_header(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return re.search(r"^format\s*:", head, re.MULTILINE) is not None


def _is_pyproject_config(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return re.search(r"^\s*\[\s*tool\s*\.\s*kmsnap\s*[\].]", text, re.MULTILINE) is not None


def _read_yaml(path: Path, text: str) -> tuple[Any, dict[tuple[str, ...], int]]:
    """Plain data plus the line of every key path, refusing tags, anchors and aliases."""
    where = _display(path)
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            line = event.start_mark.line + 1 if event.start_mark else 0
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise ConfigError(f"{where}:{line}: anchors and aliases are not allowed")
            if getattr(event, "tag", None) is not None:
                raise ConfigError(f"{where}:{line}: YAML tags are not allowed")
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{where}{at}: not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {exc}") from None
    lines: dict[tuple[str, ...], int] = {}
    constructor = yaml.constructor.SafeConstructor()

    def convert(node: yaml.Node, keypath: tuple[str, ...]) -> Any:
        lines[keypath] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(convert(key_node, keypath))
                if key in out:
                    raise ConfigError(
                        f"{where}:{key_node.start_mark.line + 1}: duplicate key '{key}'"
                    )
                out[key] = convert(value_node, (*keypath, key))
                lines[keypath + (key,)] = key_node.start_mark.line + 1
            return out
        if isinstance(node, yaml.SequenceNode):
            return [convert(item, (*keypath, str(i))) for i, item in enumerate(node.value)]
        return constructor.construct_object(node)

    return (None if root is None else convert(root, ())), lines


def _read_pyproject(path: Path, text: str) -> tuple[Any, dict[tuple[str, ...], int]]:
    tomllib: Any
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10 only
        try:
            tomllib = importlib.import_module("tomli")
        except ImportError:
            raise ConfigError(
                f"{_display(path)}: reading [tool.kmsnap] needs Python 3.11+ or the 'tomli' "
                f"package on Python 3.10 (pip install tomli), or use {CONFIG_NAME}"
            ) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{_display(path)}: not valid TOML: {exc}") from None
    data = document.get("tool", {}).get("kmsnap", {})
    return data, _toml_lines(text)


def _toml_lines(text: str) -> dict[tuple[str, ...], int]:
    """Best-effort lines for keys under [tool.kmsnap] (tomllib keeps no positions)."""
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        header = re.fullmatch(r"\[\s*tool\s*\.\s*kmsnap\s*((?:\.\s*[\w-]+\s*)*)\]", stripped)
        if header:
            table = tuple(p.strip() for p in header.group(1).split(".") if p.strip())
            lines.setdefault(table, number)
        elif stripped.startswith("["):
            table = None
        elif table is not None:
            key = re.match(r"([\w-]+)\s*=", stripped)
            if key:
                lines.setdefault((*table, key.group(1)), number)
    return lines


# ---- checking --------------------------------------------------------------------------


def check_setting(name: str, value: Any) -> Any:
    """The normalized value of one setting (``api``, ``concurrency``, ...), or ValueError saying
    what is expected."""
    if name == "api":
        return _check_url(value)
    if name == "snapshot_dir":
        parts = value.rstrip("/").split("/") if isinstance(value, str) else [""]
        if not all(_SAFE_PART.fullmatch(p) and p not in (".", "..") for p in parts):
            raise ValueError(
                "must be a relative path of letters, digits, '.', '_', '-' and '/' "
                f"(no '..', not starting with '-'), got {value!r}"
            )
        return "/".join(parts)
    if name == "fail_on":
        if value not in FAIL_ON_LEVELS:
            raise ValueError(f"must be one of {', '.join(FAIL_ON_LEVELS)}, got {value!r}")
        return value
    if name in ("concurrency", "page_size"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"must be a positive integer, got {value!r}")
        return value
    if name == "allow_shrink":
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, got {value!r}")
        return value
    if name == "max_shrink":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(
                f"must be a share of the entities from 0 to 1 (0.25 is 25%), got {value!r}"
            )
        return float(value)
    if name == "max_rps" and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"must be a positive number, got {value!r}")
    if value == float("inf"):
        raise ValueError("must be finite")
    return float(value)


def _parse_env(name: str, text: str) -> Any:
    if name in ("concurrency", "page_size"):
        try:
            return int(text)
        except ValueError:
            return text
    if name == "allow_shrink":
        return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}.get(
            text.lower(), text
        )
    if name in ("max_rps", "timeout", "max_shrink"):
        if name == "max_rps" and text.lower() in ("none", "null"):
            return None
        try:
            return float(text)
        except ValueError:
            return text
    return text


def _check_url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a URL, got {value!r}")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"must be an https:// URL, got {value!r}")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials; set KISSMETRICS_TOKEN instead")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError(f"plain http is only allowed for localhost, got {value!r}")
    return value.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class _Checker:
    """Turns plain data into a ``Config``; every error names the file, the line and the key."""

    def __init__(self, path: Path, lines: Mapping[tuple[str, ...], int]):
        self.path = path
        self.lines = lines

    def fail(self, keypath: tuple[str, ...], message: str) -> ConfigError:
        for n in range(len(keypath), -1, -1):
            line = self.lines.get(keypath[:n])
            if line is not None:
                return ConfigError(f"{_display(self.path)}:{line}: {message}")
        return ConfigError(f"{_display(self.path)}: {message}")

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
        return Config(
            path=self.path,
            values=values,
            include=self.selector(top.get("include"), "include"),
            exclude=self.selector(top.get("exclude"), "exclude"),
            ignore_fields=self.ignored(top.get("ignore_fields")),
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


def _display(path: Path | None) -> str:
    if path is None:
        return "(defaults)"
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


# ---- applying --------------------------------------------------------------------------


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
