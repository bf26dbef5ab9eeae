"""What a change to ``kmsnap.yaml`` does to a review: the accounts, products and fields it newly
leaves out, and the changes between two snapshots that it would hide.

The review workflow compares a pull request's snapshot with the base branch's configuration,
so a pull request cannot blind its own review by excluding what it breaks. When the pull
request also changes ``kmsnap.yaml``, ``review_config_change`` says what that change would
leave out, and ``render_config_review`` puts it at the top of the comment: severity breaking
when it hides a breaking change. The workflow runs it as::

    python -I -m kmsnap.config.review BASE.yaml PR.yaml BASE_REV:snapshots PR_REV:snapshots
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kmsnap.config.model import Config, IgnoredField, display_path
from kmsnap.diff.engine import ChangeSet
from kmsnap.errors import KmsnapError
from kmsnap.model import Severity, Snapshot
from kmsnap.render.base import change_head, escape, plural
from kmsnap.render.markdown import md_escape
from kmsnap.snapshot.selection import Selector

__all__ = ["ConfigReview", "SelectorChange", "render_config_review", "review_config_change"]

REVIEW_HEADING = "kmsnap.yaml changes in this pull request"
DEFAULT_MAX_CHARS = 5000


@dataclass(frozen=True)
class SelectorChange:
    """One list of ``include``/``exclude`` that changed: ``exclude.products`` gained "Web App"."""

    key: str  # include.accounts, exclude.products, ...
    added: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True)
class ConfigReview:
    """How the new configuration differs from the old one in what a comparison keeps.

    ``hidden``: the changes between the snapshots that the old configuration shows and the
    new one does not (left out entirely, or some of their fields ignored), old side's view.
    """

    selection: tuple[SelectorChange, ...] = ()
    newly_ignored: tuple[IgnoredField, ...] = ()
    no_longer_ignored: tuple[IgnoredField, ...] = ()
    hidden: ChangeSet | None = None
    invalid: str | None = None  # the new configuration's error, when it is not valid

    @property
    def hidden_changes(self) -> int:
        return 0 if self.hidden is None else len(self.hidden.changes)

    @property
    def severity(self) -> Severity | None:
        """The highest severity among the hidden changes (None: it hides nothing)."""
        found = {c.severity for c in self.hidden.changes} if self.hidden else set()
        for level in (Severity.BREAKING, Severity.WARNING, Severity.INFO):
            if level in found:
                return level
        return None

    def __bool__(self) -> bool:
        return bool(
            self.selection or self.newly_ignored or self.no_longer_ignored or self.hidden_changes
            or self.invalid
        )


def _selection_changes(old: Config, new: Config) -> tuple[SelectorChange, ...]:
    out = []
    for name in ("include", "exclude"):
        before: Selector = getattr(old, name)
        after: Selector = getattr(new, name)
        for sub in ("accounts", "products"):
            was, now = getattr(before, sub), getattr(after, sub)
            if was != now:
                added, removed = tuple(sorted(now - was)), tuple(sorted(was - now))
                out.append(SelectorChange(f"{name}.{sub}", added, removed))
    return tuple(out)


def _key(ignored: IgnoredField) -> tuple[str, str]:
    return ignored.kind, ignored.field


def review_config_change(
    old_config: Config, new_config: Config, old: Snapshot, new: Snapshot
) -> ConfigReview:
    """What switching from ``old_config`` to ``new_config`` changes in the comparison of the
    snapshots ``old`` and ``new``: the selection and ignore rules, and the changes hidden."""
    from kmsnap.compare import Rules, compare_snapshots

    shown = compare_snapshots(old, new, rules=Rules.from_config(old_config))
    kept = compare_snapshots(old, new, rules=Rules.from_config(new_config))
    after = {(c.kind, c.id, c.change): c for c in kept.changes}
    hidden = []
    for change in shown.changes:
        other = after.get((change.kind, change.id, change.change))
        if other is None or set(change.fields or {}) - set(other.fields or {}):
            hidden.append(change)
    old_ignored = {_key(i): i for i in old_config.ignore_fields}
    new_ignored = {_key(i): i for i in new_config.ignore_fields}
    return ConfigReview(
        selection=_selection_changes(old_config, new_config),
        newly_ignored=tuple(i for k, i in new_ignored.items() if k not in old_ignored),
        no_longer_ignored=tuple(i for k, i in old_ignored.items() if k not in new_ignored),
        hidden=ChangeSet(
            shown.old_label,
            shown.new_label,
            changes=hidden,
            account_names=shown.account_names,
            product_names=shown.product_names,
        ),
    )


def _names(items: Sequence[str]) -> str:
    return ", ".join(f"`{md_escape(escape(item))}`" for item in items)


def render_config_review(review: ConfigReview, *, limit: int = DEFAULT_MAX_CHARS) -> str:
    """Markdown for the top of a review comment, at most about ``limit`` characters (the list
    of hidden changes is cut short, saying how many are left out). Empty when nothing changed
    in what a comparison keeps."""
    if not review:
        return ""
    severity = review.severity
    title = f"### {REVIEW_HEADING}"
    if severity is not None:
        title += f" ({severity})"
    lines = [
        title,
        "",
        "This review compares with the base branch's kmsnap.yaml. This pull request changes it:",
        "",
    ]
    if review.invalid:
        lines.append(f"- its kmsnap.yaml is not valid: {md_escape(escape(review.invalid))}")
    for sel in review.selection:
        verb = "includes only" if sel.key.startswith("include") else "newly excludes"
        undo = "no longer includes" if sel.key.startswith("include") else "no longer excludes"
        if sel.added:
            lines.append(f"- `{sel.key}` {verb} {_names(sel.added)}")
        if sel.removed:
            lines.append(f"- `{sel.key}` {undo} {_names(sel.removed)}")
    for item in review.newly_ignored:
        lines.append(
            f"- newly ignores `{md_escape(escape(item.kind))}.{md_escape(escape(item.field))}`"
            f" ({md_escape(escape(item.reason))})"
        )
    for item in review.no_longer_ignored:
        lines.append(
            f"- no longer ignores `{md_escape(escape(item.kind))}.{md_escape(escape(item.field))}`"
        )
    count = review.hidden_changes
    if review.invalid:
        return "\n".join(lines) + "\n\n"
    if count:
        changes = review.hidden.changes if review.hidden else []
        breaking = sum(c.severity == Severity.BREAKING for c in changes)
        what = plural(count, "change") + (f" ({breaking} breaking)" if breaking else "")
        lines += ["", f"With it, this review would hide **{what}**:", ""]
    else:
        lines += ["", "With it, this review would hide none of this pull request's changes."]
    text = "\n".join(lines) + "\n"
    shown = 0
    changes = review.hidden.changes if review.hidden else []
    for change in changes:
        line = f"- {change.severity}: {md_escape(change_head(change))}\n"
        if len(text) + len(line) > limit - 80:
            break
        text += line
        shown += 1
    if shown < len(changes):
        text += f"- … and {len(changes) - shown} more\n"
    return text + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kmsnap.config.review OLD_CONFIG NEW_CONFIG OLD NEW``: the markdown note, or
    nothing when the new configuration keeps what the old one keeps."""
    from kmsnap.config.files import load_config
    from kmsnap.git.source import open_source
    from kmsnap.snapshot.store import load_pair

    parser = argparse.ArgumentParser(
        prog="python -m kmsnap.config.review",
        description="Say what a change to kmsnap.yaml would hide in a review.",
    )
    parser.add_argument("old_config", metavar="OLD_CONFIG")
    parser.add_argument("new_config", metavar="NEW_CONFIG")
    parser.add_argument("old", metavar="OLD", help="Snapshot directory, or REV:PATH")
    parser.add_argument("new", metavar="NEW", help="Snapshot directory, or REV:PATH")
    parser.add_argument("--max-chars", type=int, default=DEFAULT_MAX_CHARS, metavar="N")
    args = parser.parse_args(argv)
    try:
        old_config = load_config(path=Path(args.old_config))
        old, new = load_pair(open_source(args.old), open_source(args.new))
        try:
            new_config = load_config(path=Path(args.new_config))
        except KmsnapError as exc:
            # Its own configuration may be anything: say so, and review with the base's.
            message = str(exc)
            path = Path(args.new_config)
            for shown in sorted({args.new_config, str(path.resolve()), display_path(path)}):
                message = message.replace(shown, "kmsnap.yaml")
            review = ConfigReview(invalid=message)
        else:
            review = review_config_change(old_config, new_config, old, new)
    except KmsnapError as exc:
        print(f"kmsnap: error: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(render_config_review(review, limit=max(args.max_chars, 500)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
