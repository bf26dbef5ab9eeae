"""Finding and reading the config file: ``kmsnap.yaml`` or ``[tool.kmsnap]`` in
``pyproject.toml``, bounded in size, YAML without tags, anchors or aliases, with the line of
every key kept for errors."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from typing import Any

from kmsnap.config.checker import CONFIG_NAME, Checker
from kmsnap.config.model import Config, display_path
from kmsnap.errors import ConfigError

PYPROJECT_NAME = "pyproject.toml"
MAX_CONFIG_BYTES = 1_000_000


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
                f"{display_path(found[0])} and [tool.kmsnap] in {display_path(found[1])} both "
                "configure kmsnap: keep one"
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
        raise ConfigError(f"{display_path(path)}: no such config file")
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{display_path(path)}: too big for a config file")
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{display_path(path)}: cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{display_path(path)}: not UTF-8 text") from None
    if path.name == PYPROJECT_NAME:
        data, lines = _read_pyproject(path, text)
    else:
        data, lines = _read_yaml(path, text)
    return Checker(path, lines).config(data)


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
    import yaml  # here: a command run where no config file is needs no YAML parser

    where = display_path(path)
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
                f"{display_path(path)}: reading [tool.kmsnap] needs Python 3.11+ or the 'tomli' "
                f"package on Python 3.10 (pip install tomli), or use {CONFIG_NAME}"
            ) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{display_path(path)}: not valid TOML: {exc}") from None
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
