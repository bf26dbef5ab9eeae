"""How the workflows ``kmsnap init`` writes get kmsnap: ``install`` (a pip requirement) or
``action`` (``OWNER/REPO@REF``, kmsnap's composite action), as kmsnap.yaml keeps them.

Both end up in a workflow file, so they are checked as hostile text: one printable line,
bounded, never a pip option, never a GitHub expression (``${{`` is evaluated anywhere in a
workflow, even inside a quoted ``env:`` value).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

MAX_INSTALL_CHARS = 500
WORKFLOW_KEYS = ("install", "action")
_ACTION = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}(?:/[A-Za-z0-9._-]{1,100})*"
    r"@[A-Za-z0-9._][A-Za-z0-9._/-]{0,199}"
)


def check_install(value: Any) -> str:
    """A pip requirement for ``pip install``: ``kmsnap==0.2.0``, ``kmsnap @ git+https://...``,
    or a path starting with ``./`` or ``/``; ValueError saying what is expected."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a pip requirement such as 'kmsnap==0.2.0', got {value!r}")
    spec = value.strip()
    if len(spec) > MAX_INSTALL_CHARS:
        raise ValueError(f"must be at most {MAX_INSTALL_CHARS} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in spec):
        raise ValueError("must be one line of printable text")
    if spec.startswith("-"):
        raise ValueError(f"must be a requirement, not a pip option, got {spec!r}")
    if "${{" in spec:
        raise ValueError("must not contain '${{' (GitHub would evaluate it in the workflow)")
    return spec


def check_action(value: Any) -> str:
    """``OWNER/REPO@REF`` (or ``OWNER/REPO/PATH@REF``) for ``uses:``; ValueError otherwise."""
    if not isinstance(value, str) or not _ACTION.fullmatch(value.strip()):
        raise ValueError(
            f"must be OWNER/REPO@REF, e.g. OWNER/kmsnap@v0.2.0 or a commit SHA, got {value!r}"
        )
    spec = value.strip()
    if ".." in spec.split("@", 1)[1]:
        raise ValueError(f"must name a plain git ref after '@', got {value!r}")
    return spec


def check_workflow_setting(name: str, value: Any) -> str:
    """``install`` or ``action``, checked."""
    return check_install(value) if name == "install" else check_action(value)
