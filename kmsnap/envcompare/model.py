"""What ``kmsnap compare`` speaks of: the two sides, what is on one side only, what differs,
the result of one pairing, how names are normalised, and kmsnap.yaml's ``compare`` section."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kmsnap.model import PRODUCT_KINDS

LEFT_ENVIRONMENTS = ("staging", "development")
RIGHT_ENVIRONMENTS = ("production",)
# Words in a product's name that say its environment when no product has an ``environment``.
LEFT_WORDS = frozenset({"staging", "stage", "development", "dev", "test", "sandbox"})
RIGHT_WORDS = frozenset({"production", "prod", "live"})
# What must agree between the two sides (the fields an analyst's report depends on).
COMPARED_FIELDS = ("type", "unit_type", "is_visible", "display_name", "description")
FORMATS = ("text", "markdown", "json")
REQUIRE = ("left-in-right", "right-in-left", "both")
JSON_VERSION = 1
_SPACES = re.compile(r"[\s_\-]+")


def normalize_name(name: str) -> str:
    """How names are matched: case-folded, runs of spaces, ``_`` and ``-`` as one space."""
    return _SPACES.sub(" ", name.casefold()).strip()


@dataclass(frozen=True)
class Side:
    """One product of a pairing."""

    product_id: str
    product: str | None
    account_id: str | None
    account: str | None
    environment: str | None

    @property
    def label(self) -> str:
        """How columns name this side: its environment, else its product's name."""
        return self.environment or self.product or self.product_id

    def to_json(self) -> dict[str, Any]:
        return {"product_id": self.product_id, "product": self.product,
                "account_id": self.account_id, "account": self.account,
                "environment": self.environment}


@dataclass(frozen=True)
class Only:
    """An entity on one side only."""

    kind: str
    name: str | None
    id: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "id": self.id}


@dataclass(frozen=True)
class Difference:
    """An entity on both sides whose compared fields differ: field -> (left, right)."""

    kind: str
    left_name: str | None
    right_name: str | None
    left_id: str
    right_id: str
    fields: Mapping[str, tuple[Any, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "left_name": self.left_name, "right_name": self.right_name,
                "left_id": self.left_id, "right_id": self.right_id,
                "fields": {f: {"left": a, "right": b} for f, (a, b) in self.fields.items()}}


@dataclass(frozen=True)
class Pairing:
    """Two products compared: what each lacks, what differs, how many agree."""

    left: Side
    right: Side
    only_left: tuple[Only, ...] = ()
    only_right: tuple[Only, ...] = ()
    different: tuple[Difference, ...] = ()
    same: int = 0
    kinds: tuple[str, ...] = field(default=PRODUCT_KINDS)

    @property
    def differs(self) -> bool:
        return bool(self.only_left or self.only_right or self.different)

    def to_json(self) -> dict[str, Any]:
        return {
            "left": self.left.to_json(),
            "right": self.right.to_json(),
            "summary": {"only_left": len(self.only_left), "only_right": len(self.only_right),
                        "different": len(self.different), "same": self.same},
            "only_left": [o.to_json() for o in self.only_left],
            "only_right": [o.to_json() for o in self.only_right],
            "different": [d.to_json() for d in self.different],
        }


def check_compare_config(value: Any) -> dict[str, dict[str, dict[str, str]]]:
    """kmsnap.yaml's ``compare`` section, checked: ``{"names": {kind: {left: right}}}``.

    Raises ``ValueError(keypath, message)`` (the config checker adds file and line).
    """
    if not isinstance(value, dict):
        raise ValueError((), "must be a mapping with 'names'")
    extra = sorted(set(value) - {"names"})
    if extra:
        raise ValueError((extra[0],), f"unknown key '{extra[0]}' in 'compare' (use 'names')")
    names = value.get("names") or {}
    if not isinstance(names, dict):
        raise ValueError(("names",), "'compare.names' must map a kind to {left name: right name}")
    out: dict[str, dict[str, str]] = {}
    for kind, pairs in names.items():
        if kind not in PRODUCT_KINDS:
            raise ValueError(("names", str(kind)),
                             f"unknown kind '{kind}' in 'compare.names' "
                             f"(one of {', '.join(PRODUCT_KINDS)})")
        if not isinstance(pairs, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in pairs.items()
        ):
            raise ValueError(("names", kind),
                             f"'compare.names.{kind}' must map a left name to a right name")
        out[kind] = dict(pairs)
    return {"names": out}
