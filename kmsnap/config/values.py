"""The settings kmsnap.yaml, flags and ``KMSNAP_*`` may set: names, defaults, environment
variables, and the check of one value (``check_setting``)."""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

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
    # The API: "core" or "v3"; None: from the api URL (a path ending in /v3 is v3).
    "source": None,
    # Requests a minute, all workers together; None: 15 for v3 (its published limit),
    # no cap for Core.
    "max_rpm": None,
}
SOURCE_NAMES = ("core", "v3")
SETTINGS = tuple(DEFAULTS)
ENV_VARS: dict[str, str] = {name: f"KMSNAP_{name.upper()}" for name in SETTINGS}
_SAFE_PART = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._-]*")


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
    if name == "source":
        if value is not None and value not in SOURCE_NAMES:
            raise ValueError(f"must be one of {', '.join(SOURCE_NAMES)}, got {value!r}")
        return value
    if name == "max_rpm":
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1_000_000:
            raise ValueError(f"must be a whole number of requests a minute, 1 or more, "
                             f"got {value!r}")
        return value
    if name == "max_rps" and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"must be a positive number, got {value!r}")
    if value == float("inf"):
        raise ValueError("must be finite")
    return float(value)


def parse_env(name: str, text: str) -> Any:
    if name in ("concurrency", "page_size", "max_rpm"):
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
