"""kmsnap's canonical YAML form and its writer; ``kmsnap.snapshot.fastread`` is its reader.

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
from itertools import chain
from typing import Any

from kmsnap.errors import SnapshotError

Record = dict[str, Any]

# Plain keys that a YAML 1.1 reader would turn into booleans or null: always quoted.
SPECIAL_WORDS = ("y", "n", "yes", "no", "on", "off", "true", "false", "null")
_WORDS = "|".join(SPECIAL_WORDS)
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
