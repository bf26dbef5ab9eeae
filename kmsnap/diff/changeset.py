"""What a comparison produces: one ``Change`` per entity that differs, in a ``ChangeSet``.

Pure data and its JSON form (DESIGN.md's schema, version 1); no comparing, no rendering.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kmsnap.model import ChangeType, Severity

SCHEMA_VERSION = 1

# The order of the summary and of every report.
CHANGE_TYPES: tuple[ChangeType, ...] = tuple(ChangeType)


@dataclass(frozen=True)
class Change:
    """One entity that differs between the two sides.

    ``fields`` (changed and renamed only) maps a dotted field path (``contact.phone``) to
    ``{"old": ..., "new": ...}``; a side on which the field does not exist has no key.
    A list is compared as one value: ``tags`` shows the whole old and new list.
    ``change`` and ``severity`` may be given as plain strings; they are kept as the enums
    (an unknown value is a ValueError).
    """

    kind: str
    change: ChangeType
    id: str
    name: str | None
    account_id: str | None
    product_id: str | None
    severity: Severity
    old_id: str | None = None  # recreated only
    fields: dict[str, dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if type(self.change) is not ChangeType:
            object.__setattr__(self, "change", ChangeType(self.change))
        if type(self.severity) is not Severity:
            object.__setattr__(self, "severity", Severity(self.severity))

    def to_json(self) -> dict[str, Any]:
        """The change in DESIGN.md's JSON schema (version 1), keys in a fixed order."""
        out: dict[str, Any] = {"kind": self.kind, "change": self.change, "id": self.id}
        if self.change == ChangeType.RECREATED:
            out["old_id"] = self.old_id
        out["name"] = self.name
        out["account_id"] = self.account_id
        out["product_id"] = self.product_id
        out["severity"] = self.severity
        if self.change in (ChangeType.CHANGED, ChangeType.RENAMED):
            out["fields"] = {path: dict(sides) for path, sides in (self.fields or {}).items()}
        return out


@dataclass
class ChangeSet:
    """Every change between two snapshots, sorted (kind, account, product, name, id)."""

    old_label: str
    new_label: str
    changes: list[Change] = field(default_factory=list)
    account_names: dict[str, str] = field(default_factory=dict)
    product_names: dict[str, str] = field(default_factory=dict)
    # kind -> field -> reason: what kmsnap.yaml's ignore_fields left out of the comparison,
    # for reports to say (not part of the JSON schema).
    ignored: dict[str, dict[str, str]] = field(default_factory=dict)
    # "include.accounts" / "exclude.products" ... -> names or ids: what kmsnap.yaml's
    # include/exclude kept or left out, for reports to say (not part of the JSON schema).
    selected: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        """How many changes of each type, in the fixed order of ``CHANGE_TYPES``."""
        counts: dict[str, int] = dict.fromkeys(CHANGE_TYPES, 0)
        for change in self.changes:
            counts[change.change] = counts.get(change.change, 0) + 1
        return counts

    def containers(self, change: Change) -> list[tuple[str, str, str | None]]:
        """(kind, id, name) of the account and product ``change`` lies in, outermost first;
        the entity itself is left out (a product is not "in" itself)."""
        out = []
        for kind, entity_id, names in (("account", change.account_id, self.account_names),
                                       ("product", change.product_id, self.product_names)):
            if entity_id is not None and change.kind != kind:
                out.append((kind, entity_id, names.get(entity_id)))
        return out

    def to_json(self) -> dict[str, Any]:
        """The whole change set in DESIGN.md's JSON schema (version 1)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "old": self.old_label,
            "new": self.new_label,
            "summary": self.summary(),
            "changes": [change.to_json() for change in self.changes],
        }

    def __bool__(self) -> bool:
        return bool(self.changes)
