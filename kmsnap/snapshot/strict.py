"""The strict fallback loader for snapshot files that are not in the canonical fast form.

PyYAML's safe loader, narrowed to what kmsnap writes: no tags, no anchors or aliases (no
alias bombs), no merge keys, no implicit timestamps, no plain scalars that YAML 1.1 and 1.2
readers read differently; errors become ``SnapshotError`` with the file and 1-based line.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode

from kmsnap.errors import SnapshotError

# Values a JSON API can send; anything else from a hand-edited file is refused.
_JSON_SCALARS = (str, int, float, bool, type(None))


# Plain scalars every YAML reader reads alike: null (also empty), booleans, decimal integers,
# floats with a ``.`` (and a signed exponent), infinities and NaN; and unsigned hexadecimal,
# an integer of the same value in YAML 1.1 and in 1.2's core schema (yq, js-yaml, ruamel).
_UNAMBIGUOUS = re.compile(
    r"(?:|null|Null|NULL|~|true|True|TRUE|false|False|FALSE"
    r"|[-+]?(?:0|[1-9][0-9]*)|0x[0-9a-fA-F]+"
    r"|[-+]?[0-9]+\.[0-9]*(?:[eE][-+][0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\Z"
)
# What a YAML 1.2 reader (core schema) takes for a number, and the booleans of the YAML 1.1
# spec that PyYAML leaves as strings: a plain scalar PyYAML reads as a string must match none.
_NOT_STRING_ELSEWHERE = re.compile(
    r"(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+"
    r"|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)|[yYnN])\Z"
)
_STR_TAG = "tag:yaml.org,2002:str"
# A "\ud800" escape gives a lone surrogate; a pair of them is two, not one character, to PyYAML.
_SURROGATE = re.compile("[\ud800-\udfff]")
# Dates and merge keys are refused by the loader with a message of their own.
_OWN_MESSAGE_TAGS = frozenset({"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:merge"})


def _ambiguous(node: ScalarNode) -> bool:
    """Whether YAML 1.1 and 1.2 readers could read this plain scalar as different values."""
    text = node.value
    if _UNAMBIGUOUS.match(text):
        return False
    if node.tag == _STR_TAG:
        return _NOT_STRING_ELSEWHERE.match(text) is not None
    # PyYAML (YAML 1.1) made it a boolean, a number or a date where YAML 1.2 sees a string
    # or another number: yes/no/on/off, 012, 0x1F, 0b101, 1_000, 1:30, 1e3-less floats...
    return node.tag not in _OWN_MESSAGE_TAGS


class _Refused(yaml.MarkedYAMLError):
    pass


def _refuse(problem: str, mark: Any) -> _Refused:
    return _Refused(None, None, problem, mark)


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses every YAML feature kmsnap never writes."""

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            raise _refuse("aliases (*name) are not allowed", event.start_mark)
        if getattr(event, "anchor", None) is not None:
            raise _refuse("anchors (&name) are not allowed", event.start_mark)
        if getattr(event, "tag", None) is not None:
            raise _refuse("tags (!name) are not allowed", event.start_mark)
        node = super().compose_node(parent, index)
        if isinstance(node, ScalarNode) and _SURROGATE.search(node.value) is not None:
            code = ord(_SURROGATE.search(node.value).group())  # type: ignore[union-attr]
            raise _refuse(
                f"a lone surrogate \\u{code:04x} (no UTF-8 text can hold it, and JSON output "
                "cannot carry it): write the character itself", node.start_mark,
            )
        if isinstance(node, ScalarNode) and node.style is None and _ambiguous(node):
            shown = node.value if len(node.value) <= 40 else node.value[:40] + "..."
            raise _refuse(f"ambiguous plain value {shown!r}: quote it", node.start_mark)
        return node

    def flatten_mapping(self, node: MappingNode) -> None:
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _refuse("merge keys (<<) are not allowed", key_node.start_mark)
        super().flatten_mapping(node)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        # PyYAML keeps the last of two equal keys; a snapshot file with both is ambiguous.
        self.flatten_mapping(node)
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                again = key in seen
            except TypeError:
                continue  # unhashable: the base class says so
            if again:
                shown = key if not isinstance(key, str) or len(key) <= 40 else key[:40] + "..."
                raise _refuse(f"duplicate key {shown!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)

    def construct_yaml_timestamp(self, node: ScalarNode) -> Any:
        raise _refuse("unquoted dates are not allowed (quote them)", node.start_mark)


StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", StrictLoader.construct_yaml_timestamp)


def _line_of(data: bytes, position: int) -> int:
    text = data.decode("utf-8", errors="replace")
    return text.count("\n", 0, position) + 1


def safe_load(data: bytes, path: str) -> Any:
    """Parse ``data`` with the strict loader; any problem is a SnapshotError naming path:line."""
    loader = None
    try:
        loader = StrictLoader(data)  # reads (and checks) the start of the text already
        value = loader.get_single_data()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = error.problem or error.context or "malformed YAML"
        raise SnapshotError(f"{problem}", path=path, line=line) from None
    except yaml.reader.ReaderError as error:
        code = error.character if isinstance(error.character, int) else ord(error.character)
        raise SnapshotError(
            "not valid UTF-8" if error.encoding != "unicode"
            else f"a character YAML does not allow in a file (U+{code:04X}; NUL is one)",
            path=path, line=_line_of(data, error.position),
        ) from None
    except yaml.YAMLError as error:
        raise SnapshotError(f"malformed YAML: {error}", path=path) from None
    except RecursionError:
        raise SnapshotError("nested too deeply", path=path) from None
    except (ValueError, ConstructorError) as error:  # e.g. an integer too long to convert
        raise SnapshotError(f"unreadable value: {error}", path=path) from None
    finally:
        if loader is not None:
            loader.dispose()
    _check_json_like(value, path)
    return value


def _check_json_like(value: Any, path: str, depth: int = 0) -> None:
    if depth > 100:
        raise SnapshotError("nested too deeply", path=path)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise SnapshotError(f"a mapping key is not a string: {key!r}", path=path)
            _check_json_like(item, path, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json_like(item, path, depth + 1)
    elif not isinstance(value, _JSON_SCALARS):
        raise SnapshotError(f"unsupported value {value!r}", path=path)


def locate_item(data: bytes, index: int | str) -> int | None:
    """The 1-based line of item ``index`` (a list position or mapping key), when findable."""
    try:
        node = yaml.compose(data, Loader=StrictLoader)
    except (yaml.YAMLError, RecursionError, ValueError):
        return None
    if isinstance(node, (yaml.SequenceNode,)) and isinstance(index, int):
        if 0 <= index < len(node.value):
            return int(node.value[index].start_mark.line) + 1
    if isinstance(node, MappingNode):
        for key_node, _ in node.value:
            if key_node.value == index:
                return int(key_node.start_mark.line) + 1
    return None
