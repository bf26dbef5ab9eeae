"""Field-level comparison of two records of one entity: which dotted paths differ, and how.

Pure. Top-level fields are compared directly with strict type checks; only two nested
mappings that differ reach DeepDiff, which finds the paths inside them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from kmsnap.model import KINDS, Record

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ABSENT = object()


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types throughout: ``True == 1 == 1.0`` would hide real drift.

    NaN equals NaN here: both sides would be written the same, so it is no change.
    """
    if a is b:
        return True
    if a == b:
        return _same_types(a, b)
    return _same_with_nan(a, b)  # the slow path, for values that really differ (mostly)


def _same_with_nan(a: Any, b: Any) -> bool:
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is dict:
        return a.keys() == b.keys() and all(_same_with_nan(v, b[k]) for k, v in a.items())
    if kind is list:
        return len(a) == len(b) and all(_same_with_nan(x, y) for x, y in zip(a, b, strict=True))
    if kind is float and a != a and b != b:
        return True
    return bool(a == b)


def _same_types(a: Any, b: Any) -> bool:
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is dict:
        return all(_same_types(value, b[key]) for key, value in a.items())
    if kind is list:
        return all(_same_types(x, y) for x, y in zip(a, b, strict=True))
    return True


def field_changes(
    kind: str, old_rec: Record, new_rec: Record, ignored: frozenset[str]
) -> dict[str, dict[str, Any]]:
    """Dotted path -> {"old", "new"} for every differing field; lists count as one value.

    Paths come in the kind's documented field order, then sorted; a field in ``ignored`` (a
    name or a dotted path, with everything under it) is left out.
    """
    paths: set[tuple[Any, ...]] = set()
    for key in old_rec.keys() | new_rec.keys():
        before, after = old_rec.get(key, _ABSENT), new_rec.get(key, _ABSENT)
        if before is not _ABSENT and after is not _ABSENT and same(before, after):
            continue
        if type(before) is dict and type(after) is dict:
            paths.update(_nested_paths(key, before, after))
        else:
            paths.add((key,))
    # A prefix swallows longer paths (a nested mapping that became a string, then a key).
    out: dict[str, dict[str, Any]] = {}
    spec = KINDS.get(kind)
    order = {name: i for i, name in enumerate(spec.fields)} if spec else {}
    for path in sorted(paths, key=lambda p: (order.get(p[0], len(order)), p)):
        if any(path[:n] in paths for n in range(1, len(path))):
            continue
        dotted = _format_path(path)
        if _is_ignored(dotted, path, ignored):
            continue
        before = _walk(old_rec, path)
        after = _walk(new_rec, path)
        if before is not _ABSENT and after is not _ABSENT and same(before, after):
            continue
        sides: dict[str, Any] = {}
        if before is not _ABSENT:
            sides["old"] = before
        if after is not _ABSENT:
            sides["new"] = after
        out[dotted] = sides
    return out


def _nested_paths(key: str, old: Record, new: Record) -> set[tuple[Any, ...]]:
    """The paths under ``key`` where two nested mappings differ, found by DeepDiff.

    Top-level fields are compared directly; only nested mappings (an account's ``contact``)
    reach DeepDiff, imported here because importing it costs ~0.7 s (numpy, pydantic) that a
    diff without nested changes should not pay.
    """
    from deepdiff import DeepDiff

    # threshold_to_diff_deeper=0: otherwise DeepDiff reports mappings that differ in many
    # keys as one change of the whole. Lists are cut back to whole values.
    tree = DeepDiff(old, new, view="tree", threshold_to_diff_deeper=0, ignore_nan_inequality=True)
    paths: set[tuple[Any, ...]] = set()
    for levels in tree.values():
        for level in levels:
            cut: list[Any] = [key]
            for part in level.path(output_format="list"):
                if not isinstance(part, str):
                    break  # a list index: the list is the value
                cut.append(part)
            paths.add(tuple(cut))
    return paths or {(key,)}


def _walk(record: Record, path: tuple[Any, ...]) -> Any:
    value: Any = record
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return _ABSENT
        value = value[key]
    return value


def _format_path(path: tuple[Any, ...]) -> str:
    """``("contact", "phone")`` -> ``contact.phone``; an awkward key is quoted: ``["a.b"]``."""
    out = []
    for i, key in enumerate(path):
        if _PLAIN_KEY.match(key):
            out.append(key if i == 0 else f".{key}")
        else:
            out.append(f"[{json.dumps(key, ensure_ascii=False)}]")
    return "".join(out)


def top_key(dotted: str) -> str:
    """The top-level field of a formatted path."""
    if dotted.startswith("["):
        end = dotted.find("]", 1)
        return str(json.loads(dotted[1:end])) if end > 0 else dotted
    return dotted.split(".", 1)[0].split("[", 1)[0]


def _is_ignored(dotted: str, path: tuple[Any, ...], ignored: frozenset[str]) -> bool:
    if not ignored:
        return False
    if path[0] in ignored or dotted in ignored:
        return True
    return any(dotted.startswith(prefix + ".") for prefix in ignored)
