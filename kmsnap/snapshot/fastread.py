"""The JSON-speed reader of kmsnap's canonical YAML form (``canonical`` is its writer).

``fast_load`` reads a text only when it can prove the text means to it what it means to
the safe loader, and gives None for every other text, which the caller then hands to the
strict loader (``kmsnap.snapshot.strict``); tests/test_yamlform.py and
tests/test_reader_attack.py hold it to that with hypothesis.
"""

from __future__ import annotations

import json
import re
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

from kmsnap.snapshot.canonical import MAX_KEY_CHARS, SPECIAL_WORDS, dump_flow, format_float

_WORDS = "|".join(SPECIAL_WORDS)

# --- the general path ----------------------------------------------------------------------

# A double-quoted string's body (loop unrolled for sre speed): raw characters both YAML and
# JSON take literally, and the escapes both decode alike. Surrogate escapes are left to the
# safe loader: JSON pairs them into one character, PyYAML keeps two.
_RAW = r'[^"\\\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]*'
_STR = _RAW + r'(?:\\(?:["\\bfnrt]|u(?![dD][89a-fA-F])[0-9a-fA-F]{4})' + _RAW + ")*"
_PLAIN = rf"(?!(?:{_WORDS}):)[a-z_][a-z0-9_]{{0,199}}"
_KEY = rf'(?:{_PLAIN}|"{_STR}")'
_VALUE = (
    '(?:"' + _STR + '"|null|true|false'
    + r"|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+(?:e[-+][0-9]+)?)?|[\[{][^\n]*)"
)
_FIND_SEQ = re.compile(rf"\n(- |  )({_KEY}): ")
_FIND_MAP = re.compile(rf"\n()({_KEY}): ")
_FLOW_LINE = re.compile(rf"^(?:- |  )?{_KEY}: ([\[{{][^\n]*)$", re.M)
_LINE_PATTERNS: dict[tuple[str, str], re.Pattern[str]] = {}
# Each distinct key costs one pass over the text: a file with more (never one kmsnap wrote
# from the API's documented fields plus a few unknown ones) goes to the safe loader, so a
# hostile file cannot make the fast path quadratic.
MAX_FAST_KEYS = 64


def _line_pattern(prefix: str, key: str) -> re.Pattern[str]:
    """One whole line with this prefix and key: the key literally, the value checked ahead."""
    pattern = _LINE_PATTERNS.get((prefix, key))
    if pattern is None:
        literal = re.escape(f"\n{prefix}{key}: ")
        pattern = re.compile(literal + "(?=" + _VALUE + "\n)")
        if len(_LINE_PATTERNS) < 4096:
            _LINE_PATTERNS[(prefix, key)] = pattern
    return pattern


def _to_json(text: str, sequence: bool) -> str | None:
    """Canonical text rewritten as JSON, or None if any line is not exactly canonical.

    One ``subn`` per distinct (line prefix, key): the pattern is that literal prefix and key
    at a line start plus a lookahead that checks the value up to the end of the line, and the
    replacement is a constant (C speed; a template with groups costs a Python call per match
    on 3.11). Each replacement keeps the line's newline in front, so later lookaheads still
    see line ends, and JSON takes the newline as whitespace. Converted lines can never match
    again, so the count of replacements equals the number of lines only when every line
    matched exactly once.
    """
    lines = text.count("\n")
    work = "\n" + text
    finder = _FIND_SEQ if sequence else _FIND_MAP
    end = work.find("\n- ", 1) if sequence else -1
    todo = set(finder.findall(work if end < 0 else work[:end]))
    if len(todo) > MAX_FAST_KEYS or any(len(key) > MAX_KEY_CHARS for _, key in todo):
        return None
    tried: set[tuple[str, str]] = set()
    total = 0
    while todo:
        for prefix, key in todo:
            quoted = key if key.startswith('"') else f'"{key}"'
            head = "\n}, {" if prefix == "- " else "\n, "
            replacement = (head + quoted + ": ").replace("\\", "\\\\")
            work, count = _line_pattern(prefix, key).subn(replacement, work)
            total += count
        if total >= lines:
            break
        tried |= todo
        todo = set(finder.findall(work)) - tried
        if len(tried) + len(todo) > MAX_FAST_KEYS or any(
            len(key) > MAX_KEY_CHARS for _, key in todo
        ):
            return None
    if total != lines:
        return None
    return "[" + work[4:] + "}]" if sequence else "{" + work[3:] + "}"


class _NotCanonical(Exception):
    pass


def _parse_float(text: str) -> float:
    value = float(text)
    if format_float(value) != text:
        raise _NotCanonical(text)
    return value


def _parse_constant(text: str) -> Any:
    raise _NotCanonical(text)


def _loads(text: str) -> Any:
    return json.loads(text, parse_float=_parse_float, parse_constant=_parse_constant)


def _flow_values_canonical(text: str) -> bool:
    # Nested values are checked by re-dumping: the writer's flow text is proved (by the
    # round-trip tests) to mean the same in YAML as in JSON; any other flow text is deferred.
    if ": {" not in text and ": [" not in text:
        return True
    for match in _FLOW_LINE.finditer(text):
        flow = match.group(1)
        try:
            if dump_flow(_loads(flow)) != flow:
                return False
        except (ValueError, _NotCanonical, RecursionError, TypeError):
            return False
    return True


# --- uniform fast path ------------------------------------------------------------------

# The usual collection file: every entity has the same fields in the same order and no
# nested value. One regex pass finds every line's value text, the texts joined by commas are
# the flat JSON list of the values, read by one C decode; anything else goes to ``_to_json``.
_FIRST_KEYS = re.compile(rf"(?:^- |\n  )({_KEY}): ")
# Escapes the template paths leave to the others: ``\/`` and surrogates (JSON pairs them into
# one character, PyYAML keeps two). Searched once in the whole file by the entry points
# (``_fast_load``, ``sequence_ids``) before any template path, which looks at parts of it: a
# search of a string holding an emoji reads four bytes a character, and finding nothing reads
# them all.
_REFUSED_ESCAPE = re.compile(r"\\(?:/|u[dD][89a-fA-F])")
# A line's rest: no tab or CR (JSON whitespace, not always YAML's), nothing of ``_EXTRA``.
_REST = "([^\n\t\r\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]*)\n"
_SCALARS = frozenset({str, int, float, bool, type(None)})
_JOIN = ",\n"  # between the rests: a string cannot run on past a raw line break
_TEMPLATES: dict[tuple[str, ...], re.Pattern[str]] = {}


def _template(heads: tuple[str, ...]) -> re.Pattern[str]:
    """One whole entity with exactly these keys in this order, each line's rest a group."""
    pattern = _TEMPLATES.get(heads)
    if pattern is None:
        pattern = re.compile("^- " + "  ".join(re.escape(h) + ": " + _REST for h in heads), re.M)
        if len(_TEMPLATES) < 256:
            _TEMPLATES[heads] = pattern
    return pattern


def _uniform_sequence(text: str) -> list[Any] | None:
    """The records of a sequence whose entities all share one key order, or None."""
    found = _uniform_values(text)
    if found is None:
        return None
    keys, flat = found
    size = len(keys)
    return list(map(dict, map(zip, repeat(keys), zip(*[iter(flat)] * size, strict=True))))


def _first_shape(text: str) -> tuple[tuple[str, ...], list[str]] | None:
    """The first entity's key lines as written and its keys, when a template can read it
    (every line one key, no key twice, nothing the template path leaves to the general one)."""
    end = text.find("\n- ")
    first = text if end < 0 else text[: end + 1]
    heads = tuple(_FIRST_KEYS.findall(first))
    size = len(heads)
    if not size or size > MAX_FAST_KEYS or first.count("\n") != size:
        return None
    keys = []
    for head in heads:
        if head.startswith('"'):
            if len(head) > MAX_KEY_CHARS:
                return None
            head = json.loads(head)
        keys.append(head)
    if len(set(keys)) != size:
        return None
    return heads, keys


def _uniform_values(text: str) -> tuple[list[str], list[Any]] | None:
    """The keys and the flat list of values of a sequence whose entities all share one key
    order, or None. The caller has refused a text holding an escape of ``_REFUSED_ESCAPE``.

    Sound without a regex over each value: the template matches whole lines from a line
    start, so when its matches hold every line, every line is ``(- |  )KEY: REST`` with the
    keys in the first entity's order. The JSON is then the list of the rests joined by a comma
    and a line break (``_JOIN``): JSON's strict decoder admits no raw line break inside a
    string, so no string, and no number or literal, runs from one rest into the next; with no
    nested value (the only other kind that could) each rest gives at least one whole value,
    and the count of values equals the count of lines only when each rest is exactly one
    scalar, which means in YAML what it means in JSON (the characters and escapes where the
    two differ are refused, floats must be as the writer writes them). Joined by a bare comma,
    ``a: "x`` and ``b: y"`` would be read as one string, with ``c: 1, 2`` making up the count.
    """
    found = _first_shape(text)
    lines = text.count("\n")
    if found is None or lines % len(found[0]):
        return None
    heads, keys = found
    size = len(heads)
    rests = _template(heads).findall(text)
    if len(rests) * size != lines:
        return None
    try:
        flat = _loads(
            "[" + _JOIN.join(chain.from_iterable(rests) if size > 1 else rests) + "]")
    except (ValueError, _NotCanonical, RecursionError):
        return None
    if len(flat) != lines or not _SCALARS.issuperset(map(type, flat)):
        return None
    return keys, flat


# The ids alone (``sequence_ids``: the common text of a diff's pair, a previous snapshot's ids):
# a template whose every value must be one whole scalar of the forms below, so the matches
# prove each line and only the ``id`` values are strings of their own and decoded. Each form
# reads in JSON as in YAML and is one that ``_uniform_values`` reads alike (a subset of what it
# takes: no float, no ``-0``, nothing after the value), so a text these templates hold is one
# ``fast_load`` reads with the same ids; any other text takes ``_uniform_values``.
_ID_SCALAR = '(?:"' + _STR + '"|null|true|false|0|-?[1-9][0-9]*)'
_ID_TEMPLATES: dict[tuple[str, ...], re.Pattern[str]] = {}


def _id_template(heads: tuple[str, ...], keys: list[str]) -> re.Pattern[str]:
    """One whole entity with exactly these keys in this order, each value one scalar of
    ``_ID_SCALAR``, the ``id`` value its one group."""
    pattern = _ID_TEMPLATES.get(heads)
    if pattern is None:
        pattern = re.compile("^- " + "  ".join(
            re.escape(head) + ": " + (f"({_ID_SCALAR})" if key == "id" else _ID_SCALAR) + "\n"
            for head, key in zip(heads, keys, strict=True)
        ), re.M)
        if len(_ID_TEMPLATES) < 256:
            _ID_TEMPLATES[heads] = pattern
    return pattern


def _uniform_ids(text: str) -> list[Any] | None:
    """The ids of a sequence whose entities share one key order with an ``id`` and hold only
    scalars of ``_ID_SCALAR``, or None. The caller has refused ``_REFUSED_ESCAPE``."""
    found = _first_shape(text)
    lines = text.count("\n")
    if found is None or lines % len(found[0]) or "id" not in found[1]:
        return None
    ids = _id_template(*found).findall(text)
    if len(ids) * len(found[0]) != lines:
        return None
    try:
        return _loads("[" + ",".join(ids) + "]")  # type: ignore[no-any-return]
    except (ValueError, _NotCanonical, RecursionError):  # cannot be: each is a whole scalar
        return None


# A file whose entities have a few key orders (most events without ``tags``, a few with):
# each run of the first entity's order read by its template, the others by another pass.
_MAX_SHAPES = 4  # templates tried on one file, each on what the one before left
_ANY_ENTITY = r"^(- [^\n]*\n(?:  [^\n]*\n)*)"  # one whole entity, whatever its lines hold
_MIXED_TEMPLATES: dict[tuple[str, ...], re.Pattern[str]] = {}
_SCALAR_REST = r"(?![\[{])" + _REST  # an entity with a nested value is left to the next pass
_SHAPE_CANDIDATES = 8  # entities looked at for the first one without a nested value


def _mixed_template(heads: tuple[str, ...]) -> re.Pattern[str]:
    """An entity with exactly these keys in this order and nothing more (the next line starts
    another entity), its lines' rests as groups; else any one whole entity, as the last group."""
    pattern = _MIXED_TEMPLATES.get(heads)
    if pattern is None:
        body = "  ".join(re.escape(h) + ": " + _SCALAR_REST for h in heads)
        pattern = re.compile(f"^- {body}(?=- |\\Z)|{_ANY_ENTITY}", re.M)
        if len(_MIXED_TEMPLATES) < 256:
            _MIXED_TEMPLATES[heads] = pattern
    return pattern


def _flat_shape(text: str) -> tuple[tuple[str, ...], list[str]] | None:
    """The key order of the first of the first few entities without a nested value."""
    start = 0
    for _ in range(_SHAPE_CANDIDATES):
        end = text.find("\n- ", start)
        entity = text[start:] if end < 0 else text[start:end + 1]
        if ": [" not in entity and ": {" not in entity:
            return _first_shape(entity)
        if end < 0:
            return None
        start = end + 1
    return None


def _shaped_sequence(text: str, depth: int) -> list[Any] | None:
    """The records of a sequence whose entities do not all share one key order, or None.

    The entities with one key order (the first entity's without a nested value) and no
    nested value are read as ``_uniform_values`` reads a whole file: the template's matches
    are whole entities (each followed by the next entity or the end), so with the other
    entities they hold every line exactly when the counts of lines add up, and the count of
    values (all scalars) proves each matched line one scalar. The other entities,
    each matched whole, are joined and read by ``fast_load`` itself (its next template for
    the next key order, up to ``_MAX_SHAPES``, then the general path), and must give one
    record each. The records come back in the file's order. As for ``_uniform_values``, the
    caller has refused a text holding an escape of ``_REFUSED_ESCAPE`` (the other entities,
    read through ``_fast_load``, are searched again: a part of the text, not all of it).
    """
    if depth >= _MAX_SHAPES:
        return None
    found = _flat_shape(text)
    if found is None:
        return None
    heads, keys = found
    size = len(heads)
    matched: list[tuple[str, ...]] = []
    others: list[str] = []
    by_template: list[bool] = []
    for row in _mixed_template(heads).findall(text):
        other = row[size]
        if other:
            others.append(other)
        else:
            matched.append(row)
        by_template.append(not other)
    if not matched or not others:
        return None  # none read, or one key order throughout: ``_uniform_values`` said no
    if len(matched) * size + sum(other.count("\n") for other in others) != text.count("\n"):
        return None  # a line that is no part of an entity
    pick = itemgetter(*range(size))
    rests = chain.from_iterable(map(pick, matched)) if size > 1 else map(itemgetter(0), matched)
    try:
        flat = _loads("[" + _JOIN.join(rests) + "]")
    except (ValueError, _NotCanonical, RecursionError):
        return None
    if len(flat) != len(matched) * size or not _SCALARS.issuperset(map(type, flat)):
        return None
    rest = _fast_load("".join(others), depth + 1)
    if not isinstance(rest, list) or len(rest) != len(others):
        return None
    records: list[Any] = []
    later = iter(rest)
    start = 0
    for templated in by_template:
        if templated:
            records.append(dict(zip(keys, flat[start:start + size], strict=True)))
            start += size
        else:
            records.append(next(later))
    return records


def sequence_ids(text: str) -> list[Any] | None:
    """The ``id`` of each entity of a non-empty sequence (None for one without), or None when
    ``fast_load`` would not read the text: checked as it checks, the entities not built."""
    if not text.startswith("- ") or not text.endswith("\n"):
        return None
    records: list[Any] | dict[str, Any] | None = None
    if _REFUSED_ESCAPE.search(text) is None:  # as ``_fast_load`` checks, once for the file
        ids = _uniform_ids(text)
        if ids is not None:
            return ids
        found = _uniform_values(text)
        if found is not None:
            keys, flat = found
            if "id" not in keys:
                return [None] * (len(flat) // len(keys))
            return flat[keys.index("id")::len(keys)]
        # not ``fast_load``: the one key order was tried above
        records = _shaped_sequence(text, 0)
    if records is None:
        records = _general_load(text)
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        return None
    return [record.get("id") for record in records]


def is_canonical_sequence(text: str) -> bool:
    """Whether ``text`` is a non-empty sequence exactly in the fast form."""
    # Read, not only matched: a key given twice in an entity is not canonical either.
    return text.startswith("- ") and fast_load(text) is not None


def fast_load(text: str) -> list[Any] | dict[str, Any] | None:
    """The value of canonical text, or None when the text is not exactly canonical.

    Every line must be ``(- |  )KEY: VALUE`` (one block sequence of block mappings) or
    ``KEY: VALUE`` (one block mapping), where each scalar form means the same in YAML 1.1,
    1.2 and JSON; nested flow values must be exactly what the writer writes. The text is then
    rewritten to JSON and parsed by the C decoder.
    """
    return _fast_load(text, 0)


def _fast_load(text: str, depth: int) -> list[Any] | dict[str, Any] | None:
    if not text.endswith("\n"):
        return None
    if text == "[]\n":
        return []
    if text == "{}\n":
        return {}
    if text.startswith("- ") and _REFUSED_ESCAPE.search(text) is None:
        records = _uniform_sequence(text)
        if records is None:
            records = _shaped_sequence(text, depth)
        if records is not None:
            return records
    return _general_load(text)


def _general_load(text: str) -> list[Any] | dict[str, Any] | None:
    """``fast_load`` by the per-key path: any canonical text, nested values included."""
    converted = _to_json(text, text.startswith("- "))
    if converted is None or not _flow_values_canonical(text):
        return None
    try:
        value = _loads(converted)
    except (ValueError, _NotCanonical, RecursionError):
        return None
    # One line per key: fewer keys than lines means a key given twice in one mapping (JSON
    # keeps the last), which the safe loader refuses with its line.
    keys = sum(map(len, value)) if isinstance(value, list) else len(value)
    if keys != text.count("\n"):
        return None
    return value  # type: ignore[no-any-return]
