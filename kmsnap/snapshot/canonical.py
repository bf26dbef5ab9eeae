"""kmsnap's canonical YAML form: a writer of exactly that form and a JSON-speed reader for it.

Text not exactly in that form is left to the strict safe loader (``kmsnap.snapshot.strict``).
"""

# The form is chosen so YAML 1.1 (PyYAML) and YAML 1.2 (yq, js-yaml, ruamel) read the same
# values, and so the text converts to JSON with a few C-speed passes:
# - a collection is a block sequence of block mappings (``- key: value`` then
#   ``  key: value``), ``[]`` when empty; a single entity is a block mapping (``key: value``);
# - keys are plain when they match ``[a-z_][a-z0-9_]{0,199}`` and are not a YAML 1.1 special
#   word (y n yes no on off true false null), otherwise double-quoted; string values are
#   always double-quoted;
# - a value is null, true, false, an integer, a float with a ``.`` and a signed exponent
#   (``1.0e+20``; ``.inf``, ``-.inf``, ``.nan``), a double-quoted string, or a nested
#   list/mapping on one line as JSON-compatible flow text with sorted keys;
# - strings use only escapes JSON and YAML share (\" \\ \n \t \r \b \f \uXXXX) and escape
#   what YAML forbids raw or would fold (C0, DEL, C1 incl. NEL, U+2028/2029, U+FEFF,
#   U+FFFE/FFFF, lone surrogates); everything else, emoji included, is written raw.

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

from kmsnap.errors import SnapshotError

Record = dict[str, Any]

# Plain keys that a YAML 1.1 reader would turn into booleans or null: always quoted.
_SPECIAL_WORDS = ("y", "n", "yes", "no", "on", "off", "true", "false", "null")
_WORDS = "|".join(_SPECIAL_WORDS)
_PLAIN_KEY = re.compile(rf"(?!(?:{_WORDS})\Z)[a-z_][a-z0-9_]{{0,199}}\Z")
# PyYAML cannot read a simple key longer than 1024 characters: a longer field name is
# refused when writing (a SnapshotError naming the entity) and left to the safe loader
# (which reports it) when reading. An explicit ``? key`` would do, but not in the fast form.
MAX_KEY_CHARS = 1000


class KeyTooLong(ValueError):
    """A field name too long for every YAML reader to read back as a key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"a field name longer than {MAX_KEY_CHARS} characters: {key[:40]!r}...")
        self.key = key

# Characters json.dumps(ensure_ascii=False) leaves raw but YAML forbids or folds.
_EXTRA = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]")


def _escape_extra(text: str) -> str:
    if _EXTRA.search(text) is None:
        return text
    return _EXTRA.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def format_float(value: float) -> str:
    """A float both YAML 1.1 and 1.2 read back exactly: always a ``.``, exponent signed."""
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        if "." not in mantissa:
            mantissa += ".0"
        return f"{mantissa}e{exponent}"  # repr always signs the exponent
    return text


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def format_key(key: str) -> str:
    """A mapping key: plain when safe in every YAML version, else double-quoted."""
    if not isinstance(key, str):
        raise TypeError(f"mapping keys must be strings, not {type(key).__name__}")
    if _PLAIN_KEY.match(key):
        return key
    quoted = _quote(key)
    if _too_long(quoted):
        raise KeyTooLong(key)
    return quoted


def _too_long(quoted: str) -> bool:
    """Whether a quoted key is longer than readers take once ``_escape_extra`` has run over
    it (a U+2028 is one character before and six after)."""
    if len(quoted) > MAX_KEY_CHARS:
        return True
    return _EXTRA.search(quoted) is not None and len(_escape_extra(quoted)) > MAX_KEY_CHARS


# The deepest a field's value may nest (``[[...]]`` is 2): the strict loader refuses a file
# nested deeper than 100 (the list of records and a record are two), and a bound here keeps
# the writer's recursion the same in every thread.
MAX_VALUE_DEPTH = 90


class TooDeep(ValueError):
    """A value nested deeper than every snapshot reader reads back."""

    def __init__(self) -> None:
        super().__init__(f"a value nested more than {MAX_VALUE_DEPTH} levels deep")


def format_value(value: Any, depth: int = 0) -> str:
    """One value on one line (before the final extra-escape pass over the whole text)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if depth >= MAX_VALUE_DEPTH and isinstance(value, (Mapping, list, tuple)):
        raise TooDeep()
    if isinstance(value, Mapping):
        items = sorted(value.items())
        for key, _ in items:
            if not isinstance(key, str):
                raise TypeError(f"mapping keys must be strings, not {type(key).__name__}")
            if _too_long(_quote(key)):
                raise KeyTooLong(key)
        inner = depth + 1
        return "{" + ", ".join(f"{_quote(k)}: {format_value(v, inner)}" for k, v in items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v, depth + 1) for v in value) + "]"
    raise TypeError(f"cannot store a {type(value).__name__} in a snapshot")


def dump_flow(value: Any) -> str:
    """The canonical one-line text of a nested value, exactly as a file holds it."""
    return _escape_extra(format_value(value))


# --- writer ---------------------------------------------------------------------------

# With the key separator \x01 and the item separator \x00 (json.dumps escapes every control
# character inside strings, so raw ones can only be separators), a nested value or a float
# right after a key is found without any false positive.
_NOT_FLAT = re.compile("\x01(?:[\\[{]|-?[0-9]+[.e]|-?Infinity|NaN)")


def _dump_record_slow(record: Mapping[str, Any], first: str, rest: str) -> list[str]:
    lines = []
    prefix = first
    try:
        for key, value in record.items():
            lines.append(f"{prefix}{format_key(key)}: {format_value(value)}\n")
            prefix = rest
    except KeyTooLong as exc:
        entity = record.get("id")
        raise SnapshotError(
            f"cannot store entity {entity!r}: field name {exc.key[:40]!r}... is longer than "
            f"{MAX_KEY_CHARS} characters, more than YAML readers take as a key"
        ) from None
    except TooDeep:
        raise SnapshotError(
            f"cannot store entity {record.get('id')!r}: field {str(key)[:40]!r} holds a value "
            f"nested more than {MAX_VALUE_DEPTH} levels deep, more than snapshot readers take"
        ) from None
    return lines


def _dump_flat(records: list[Record]) -> str | None:
    """All records through the C JSON encoder, then three replaces; None if not applicable.

    Applies when every key may be plain and every value is a string, integer, boolean or
    null: the encoder then does all quoting and escaping, and the separators become the
    line structure (measured: ~4x faster than formatting field by field).
    """
    keys: set[str] = set().union(*records)
    if not all(isinstance(key, str) and _PLAIN_KEY.match(key) for key in keys):
        return None
    text = json.dumps(records, ensure_ascii=False, separators=("\x00", "\x01"),
                      check_circular=False)
    if _NOT_FLAT.search(text) is not None:
        return None
    body = text[3:-2].replace('}\x00{"', "\n- ").replace('\x00"', "\n  ").replace('"\x01', ": ")
    return "- " + body + "\n"


def dump_collection(records: list[Record]) -> str:
    """A sequence of records (already in canonical key order) as canonical text."""
    if not records:
        return "[]\n"
    for record in records:
        if not record:
            raise ValueError("cannot store an empty record")
    text = _dump_flat(records) if _all_flat(records) else None
    if text is None:
        text = _dump_mixed(records)
    return _escape_extra(text)


def _all_flat(records: list[Record]) -> bool:
    """Whether every value is a str, int, bool or None (C-level): a file with a nested value
    goes to ``_dump_mixed`` at once, not after a whole-file encode that cannot be used."""
    return _FLAT_TYPES.issuperset(map(type, chain.from_iterable(r.values() for r in records)))


def _dump_mixed(records: list[Record]) -> str:
    """Records of a file the flat path refused: each run of flat ones still through the C
    encoder in one call (a few nested values, ``tags: [...]``, no longer slow down the
    whole file), the others field by field; plain keys only, as in ``_dump_flat``."""
    plain = not _keys_not_plain(records)
    parts: list[str] = []
    run: list[Record] = []

    def flush() -> None:
        text = _dump_flat(run) if run else None
        if text is not None:
            parts.append(text)
        else:
            for record in run:
                parts.extend(_dump_record_slow(record, "- ", "  "))
        run.clear()

    for record in records:
        if plain and _FLAT_TYPES.issuperset(map(type, record.values())):
            run.append(record)
            continue
        flush()
        parts.extend(_dump_record_slow(record, "- ", "  "))
    flush()
    return "".join(parts)


_FLAT_TYPES = frozenset({str, int, bool, type(None)})


# What ``_escape_extra`` escapes, as UTF-8 (a lone surrogate as ``surrogatepass`` writes it).
_EXTRA_UTF8 = re.compile(
    b"\x7f|\xc2[\x80-\x9f]|\xe2\x80[\xa8\xa9]|\xef(?:\xbb\xbf|\xbf[\xbe\xbf])"
    b"|\xed[\xa0-\xbf][\x80-\xbf]"
)


def dump_collection_bytes(records: list[Record]) -> bytes:
    """``dump_collection(records)`` as UTF-8, a lone surrogate as its ``\\udXXX`` escape.

    The usual file (flat records, no character to escape) never becomes a line-structured
    ``str``: the JSON text is encoded once and its separators are replaced in bytes, which
    costs a quarter of the same replaces in a ``str`` holding one emoji.
    """
    if records and all(records) and _all_flat(records) and not _keys_not_plain(records):
        text = json.dumps(records, ensure_ascii=False, separators=("\x00", "\x01"),
                          check_circular=False)
        if _NOT_FLAT.search(text) is None:
            data = text.encode("utf-8", "surrogatepass")
            body = (data[3:-2].replace(b'}\x00{"', b"\n- ").replace(b'\x00"', b"\n  ")
                    .replace(b'"\x01', b": "))
            if not body.isascii() or b"\x7f" in body:  # (two C scans: the regex is slower)
                body = _EXTRA_UTF8.sub(_escape_utf8, body)
            return b"- " + body + b"\n"
    return dump_collection(records).encode()


# The writer escapes a lone surrogate as ``\ud800`` (lowercase; a literal backslash is ``\\``).
_WRITTEN_SURROGATE = re.compile(rb"(?<!\\)(?:\\\\)*\\ud[89a-f]")


def has_surrogate_escape(data: bytes) -> bool:
    """Whether bytes the writer wrote hold a lone surrogate's escape (valid JSON, no
    character: PyYAML reads it back as a lone surrogate, which no UTF-8 output can carry)."""
    return b"\\ud" in data and _WRITTEN_SURROGATE.search(data) is not None


def _escape_utf8(match: re.Match[bytes]) -> bytes:
    return b"\\u%04x" % ord(match.group().decode("utf-8", "surrogatepass"))


def _keys_not_plain(records: list[Record]) -> bool:
    keys: set[str] = set().union(*records)
    return not all(isinstance(key, str) and _PLAIN_KEY.match(key) for key in keys)


def dump_mapping(record: Mapping[str, Any]) -> str:
    """One record (already in canonical key order) as a canonical block mapping."""
    if not record:
        return "{}\n"
    return _escape_extra("".join(_dump_record_slow(record, "", "")))


# --- fast reader ----------------------------------------------------------------------

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
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
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
    if (not size or size > MAX_FAST_KEYS or first.count("\n") != size
            or "\\/" in text or _SURROGATE_ESCAPE.search(text) is not None):
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
    order, or None.

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
    record each. The records come back in the file's order.
    """
    if depth >= _MAX_SHAPES or "\\/" in text or _SURROGATE_ESCAPE.search(text) is not None:
        return None  # (checked on the whole text: ``_flat_shape`` looks at one entity)
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
    found = _uniform_values(text)
    if found is not None:
        keys, flat = found
        if "id" not in keys:
            return [None] * (len(flat) // len(keys))
        return flat[keys.index("id")::len(keys)]
    # not ``fast_load``: the one key order was tried above
    records: list[Any] | dict[str, Any] | None = _shaped_sequence(text, 0)
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
    if text.startswith("- "):
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
