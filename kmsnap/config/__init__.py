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

from kmsnap.config.checker import CONFIG_NAME, KEYS, SELECTOR_KEYS, TOKEN_HINT
from kmsnap.config.files import MAX_CONFIG_BYTES, PYPROJECT_NAME, find_config, load_config
from kmsnap.config.model import (
    Config,
    IgnoredField,
    Settings,
    display_path,
    ignore_fields_by_kind,
    ignore_reasons,
    locate_snapshot_dir,
    resolve_settings,
)
from kmsnap.config.values import DEFAULTS, ENV_VARS, FAIL_ON_LEVELS, SETTINGS, check_setting
from kmsnap.errors import ConfigError
from kmsnap.snapshot.selection import Selector, filter_snapshot, selection_key

__all__ = [
    "CONFIG_NAME",
    "Config",
    "ConfigError",
    "DEFAULTS",
    "ENV_VARS",
    "FAIL_ON_LEVELS",
    "IgnoredField",
    "KEYS",
    "MAX_CONFIG_BYTES",
    "PYPROJECT_NAME",
    "SELECTOR_KEYS",
    "SETTINGS",
    "Selector",
    "Settings",
    "TOKEN_HINT",
    "check_setting",
    "display_path",
    "filter_snapshot",
    "find_config",
    "ignore_fields_by_kind",
    "ignore_reasons",
    "load_config",
    "locate_snapshot_dir",
    "resolve_settings",
    "selection_key",
]
