"""The canonical YAML form: what the writer writes, every YAML reader reads back, fast and exact."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kmsnap.errors import SnapshotError
from kmsnap.snapshot import canonical as yamlform
from kmsnap.snapshot import fastread
from kmsnap.snapshot.strict import safe_load

HAZARDS = [
    "yes", "no", "on", "off", "y", "n", "true", "False", "null", "Null", "~", "", "1e3", "1E3",
    "0123", "0x1F", "0o17", "1_000", "12:30", "1:20:30", ".inf", "-.inf", ".nan", "NaN",
    "2024-01-02", "2024-01-02T03:04:05Z", "2024-01-02 03:04:05", "  leading", "trailing  ",
    "a\nb", "a\r\nb", "tab\t", "#hash", "- dash", "key: value", "{a: 1}", "[1]", "&a", "*a",
    "!tag", "%YAML", "@", "`", "'single'", '"double"', "back\\slash", "\\/", "\\ud83d",
    "emoji 😀", "nel\x85", "ls\u2028", "ps\u2029", "bom\ufeff", "\ufffe\uffff", "del\x7f",
    "c1\x80\x9f", "nul\x00", "bell\x07", "esc\x1b", "---", "...", "? q", "| lit", "> fold",
    "<<", "=", "\u00a0nbsp", "x" * 3000,
]

_text = st.one_of(st.text(), st.sampled_from(HAZARDS))
_scalars = st.one_of(
    st.none(), st.booleans(), _text,
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
)
_key = st.one_of(st.text(max_size=12), st.sampled_from(["id", "name", "yes", "null", "a b"]))
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_key, inner, max_size=3),
    max_leaves=8,
)
_records = st.dictionaries(_key, _values, min_size=1, max_size=6)


def _fast(text: str) -> Any:
    value = fastread.fast_load(text)
    assert value is not None, f"fast path refused writer output:\n{text}"
    return value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_records, max_size=4))
def test_every_collection_the_writer_writes_reads_back_fast_and_alike(records: list[Any]) -> None:
    text = yamlform.dump_collection(records)
    assert _fast(text) == records
    assert yaml.safe_load(text) == records
    assert yaml.load(text, Loader=yaml.SafeLoader) == records  # the pure-Python reader too


@settings(max_examples=200, deadline=None)
@given(_records)
def test_every_mapping_the_writer_writes_reads_back_fast_and_alike(record: dict[str, Any]) -> None:
    text = yamlform.dump_mapping(record)
    assert _fast(text) == record
    assert yaml.safe_load(text) == record


def _mutations() -> st.SearchStrategy[str]:
    base = yamlform.dump_collection(
        [{"id": "e1", "name": "yes", "n": 1, "f": 1.5, "c": {"a": [1, "x"]}, "weird key": "v"},
         {"id": "e2", "description": "a\nb", "is_visible": False}]
    )
    alphabet = st.sampled_from(list("-: \n\"'\\{}[],#&*!|>%@0123456789.eEyn") + ["  ", "\t"])
    return st.one_of(_mutated(base, alphabet),
                     st.text(alphabet=list("-: \n\"'{}[],ab01.e"), max_size=40))


@st.composite
def _mutated(draw: st.DrawFn, base: str, alphabet: st.SearchStrategy[str]) -> str:
    """``base`` with one to four pieces of ``alphabet`` inserted, deleted or replaced."""
    text = base
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(alphabet)
        if op == "insert":
            text = text[:pos] + piece + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + len(piece):]
        else:
            text = text[:pos] + piece + text[pos + 1:]
    return text


@settings(max_examples=500, deadline=None)
@given(_mutations())
def test_the_fast_reader_defers_or_agrees_with_the_safe_loader(text: str) -> None:
    value = fastread.fast_load(text)
    if value is None:
        return
    assert value == yaml.safe_load(text)


def test_hazardous_strings_are_double_quoted_on_every_line() -> None:
    records = [{"id": str(i), "name": text, "yes": text} for i, text in enumerate(HAZARDS)]
    text = yamlform.dump_collection(records)
    for line in text.splitlines():
        assert re.fullmatch(r'(- |  )(id|name|"yes"): "[^\n]*"', line), line
    assert _fast(text) == records == yaml.safe_load(text)


def test_bytes_are_plain_utf8_with_emoji_raw_and_yaml_forbidden_characters_escaped() -> None:
    text = yamlform.dump_mapping({"a": "😀\x85\u2028\ufeff\x7f\x00", "b": "\ud800"})
    assert "😀" in text and "\\u0085" in text and "\\u2028" in text and "\\ufeff" in text
    assert "\\u007f" in text and "\\u0000" in text and "\\ud800" in text
    text.encode("utf-8")  # no lone surrogate left raw


@pytest.mark.parametrize(
    ("value", "written"),
    [(1e20, "1.0e+20"), (1.5e-7, "1.5e-07"), (-0.0, "-0.0"), (3.0, "3.0"), (0.1, "0.1"),
     (math.inf, ".inf"), (-math.inf, "-.inf"), (math.nan, ".nan")],
)
def test_floats_are_written_so_yaml_11_and_12_read_floats(value: float, written: str) -> None:
    assert yamlform.format_float(value) == written
    loaded = yaml.safe_load(f"x: {written}")["x"]
    assert isinstance(loaded, float)
    assert loaded == value or (math.isnan(value) and math.isnan(loaded))


def test_infinity_and_nan_round_trip_through_the_safe_loader() -> None:
    records = [{"id": "a", "x": math.inf, "y": -math.inf, "z": [math.inf]}]
    text = yamlform.dump_collection(records)
    assert fastread.fast_load(text) is None  # not JSON: deferred
    assert safe_load(text.encode(), "f.yaml") == records


def test_long_strings_in_nested_values_survive() -> None:
    long = "x: y " * 1000
    records = [{"id": "a", "c": {"k": [long, {"n": long}]}}]
    text = yamlform.dump_collection(records)
    assert _fast(text) == records == yaml.safe_load(text)


def test_field_names_too_long_for_yaml_are_quoted_refused_or_deferred() -> None:
    for records in ([{"id": "a", "K" * 2000: 1}], [{"id": "a", "c": {"K" * 2000: 1}}]):
        with pytest.raises(SnapshotError, match="entity 'a'.*longer than 1000"):
            yamlform.dump_collection(records)
        with pytest.raises(SnapshotError, match="entity 'a'.*longer than 1000"):
            yamlform.dump_mapping(records[0])
    records = [{"id": "a", "k" * 500: 1}]
    text = yamlform.dump_collection(records)
    assert _fast(text) == records == yaml.safe_load(text)
    for key in ("k" * 1100, '"' + "K" * 1100 + '"'):
        text = f'- id: "a"\n  {key}: 1\n'
        assert fastread.fast_load(text) is None
        with pytest.raises(SnapshotError):
            safe_load(text.encode(), "f.yaml")


def test_non_canonical_forms_are_deferred() -> None:
    for text in [
        "- id: 1e3\n", "- id: \"a\"\n  x: 1E+3\n", "- id: \"a\"\n  x: 1.50\n",
        "- id: \"a\"\n  yes: 1\n", "- id: \"a\"\n  x: \"a\" # c\n", "- id: \"a\"\n\n",
        "- id: \"a\"\n  c: {\"b\": 1, \"a\": 2}\n", "- id: \"\\ud83d\\ude00\"\n", "id: 'a'\n",
        "- id: \"a\"", "- id: \"a\"\n  x: [1,\n  2]\n", "- id: \"a\"\n  x: NaN\n",
    ]:
        assert fastread.fast_load(text) is None, text


def test_safe_loader_refuses_what_kmsnap_never_writes() -> None:
    cases = {
        "a: &a [1]\nb: *a\n": ("anchors", 1),
        "- x\n- !!python/object/apply:os.system ['true']\n": ("tags", 2),
        "a: 1\nb: [\n  2\nc: {\n": (None, 4),
        "<<: {a: 1}\n": ("merge", 1),
        "a: 2024-01-02\n": ("dates", 1),
    }
    for text, (word, line) in cases.items():
        with pytest.raises(SnapshotError) as info:
            safe_load(text.encode(), "x/events.yaml")
        assert info.value.path == "x/events.yaml"
        assert info.value.line == line, (text, str(info.value))
        if word:
            assert word in str(info.value)


_yaml_data = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                  max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(_yaml_data, st.booleans())
def test_any_yaml_document_is_deferred_or_read_as_the_safe_loader_reads_it(
    data: Any, flow: bool
) -> None:
    text = yaml.safe_dump(data, allow_unicode=True, default_flow_style=flow)
    value = fastread.fast_load(text)
    if value is not None:
        assert value == yaml.safe_load(text)


AMBIGUOUS_PLAIN = [
    "yes", "No", "ON", "off", "Y", "n", "012", "08", "-0x1F", "0x1_F", "0b101", "0o17", "1_000",
    "1:30", "1:20:30", "1e3", "1E3", "1.0e3", "-.5", ".5", "1_000.5", "=",
]
PLAIN_READ_ALIKE = {
    "true": True, "False": False, "null": None, "~": None, "": None, "12": 12, "-3": -3,
    "0": 0, "1.5": 1.5, "1.0e+20": 1.0e20, "-1.5e-3": -1.5e-3, ".inf": math.inf,
    "-.inf": -math.inf, "0x1F": 31, "NaN": "NaN", "hello": "hello", "1.2.3": "1.2.3",
    "v1": "v1", "1a": "1a", "a b": "a b",
}


@pytest.mark.parametrize("plain", AMBIGUOUS_PLAIN)
def test_plain_values_yaml_1_1_and_1_2_read_differently_are_refused(plain: str) -> None:
    text = f'- id: "a"\n  name: "x"\n  v: {plain}\n'
    assert fastread.fast_load(text) is None
    with pytest.raises(SnapshotError) as info:
        safe_load(text.encode(), "events.yaml")
    assert str(info.value) == f"events.yaml:3: ambiguous plain value {plain!r}: quote it"
    with pytest.raises(SnapshotError, match="ambiguous plain value"):  # as a key too
        safe_load(f'- id: "a"\n  {plain}: 1\n'.encode(), "events.yaml")
    quoted = f'- id: "a"\n  name: "x"\n  v: "{plain}"\n'
    assert safe_load(quoted.encode(), "events.yaml")[0]["v"] == plain


@pytest.mark.parametrize("plain", sorted(PLAIN_READ_ALIKE))
def test_plain_values_every_yaml_reads_alike_are_accepted(plain: str) -> None:
    text = f"- id: 'a'\n  v: {plain}\n"
    assert safe_load(text.encode(), "events.yaml")[0]["v"] == PLAIN_READ_ALIKE[plain]


def test_the_uniform_fast_path_refuses_a_line_that_is_not_one_scalar() -> None:
    # Each line's rest must be exactly one value: one more value, one nested across lines, a
    # tab or a key given twice must never be read as JSON would read the joined rests.
    for text in [
        '- id: "a"\n  x: 1, 2\n',
        '- id: "a"\n  x: 1, "x": 2\n',
        '- id: "a"\n  x: [1\n- id: "b"\n  x: 2]\n',
        '- id: "a"\n  x: 1]\n- id: "b"\n  x: [2\n',
        '- id: "a"\n  x: \t1\n',
        '- id: "a"\n  x: "\x85"\n',
        '- id: "a"\n  id: "b"\n',
        '- id: "a"\n  x: 1\n- id: "b"\n  y: 2\n  x: 1\n',
        '- id: "a"\n  x: 1\n-  id: "b"\n  x: 1\n',
        # a string run on into the next line's rest, the count made up by a line of two
        '- a: "x\n  b: y"\n  c: 1, 2\n',
        '- id: "a"\n  x: 1\n- id: "b"\n  x: "p\n  y: q"\n  z: 1, 2\n- id: "c"\n  x: 1\n',
    ]:
        value = fastread.fast_load(text)
        assert value is None, text
        assert not fastread.is_canonical_sequence(text)


def test_the_uniform_fast_path_reads_many_entities_as_every_yaml_reader_does() -> None:
    records = [{"id": f"e{i}", "name": HAZARDS[i % len(HAZARDS)], "n": i, "f": i / 7,
                "ok": i % 2 == 0, "none": None, "weird key": "v"} for i in range(300)]
    text = yamlform.dump_collection(records)
    assert yamlform.dump_collection_bytes(records) == text.encode()
    assert _fast(text) == records == yaml.safe_load(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_records, min_size=1, max_size=4))
def test_the_bytes_writer_writes_exactly_what_the_text_writer_writes(records: list[Any]) -> None:
    try:
        expected = yamlform.dump_collection(records).encode("utf-8", "surrogatepass")
    except (SnapshotError, ValueError) as exc:
        with pytest.raises(type(exc)):
            yamlform.dump_collection_bytes(records)
        return
    assert yamlform.dump_collection_bytes(records) == expected


_SHAPES = [  # the key orders of one kind's file: most entities flat, a few with tags
    ("id", "product_id", "name", "description", "is_visible"),
    ("id", "product_id", "name", "description", "is_visible", "tags"),
    ("id", "name"),
]


@st.composite
def _mixed_files(draw: st.DrawFn) -> list[dict[str, Any]]:
    records = []
    for i in range(draw(st.integers(1, 12))):
        keys = draw(st.sampled_from(_SHAPES))
        record: dict[str, Any] = {"id": f"e{i}"}
        for key in keys[1:]:
            record[key] = draw(_values if key == "tags" else _scalars)
        records.append(record)
    return records


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mixed_files())
def test_a_file_of_several_key_orders_reads_back_fast_and_alike(records: list[Any]) -> None:
    text = yamlform.dump_collection(records)
    assert _fast(text) == records == yaml.safe_load(text)
    assert fastread.sequence_ids(text) == [record["id"] for record in records]


def test_a_file_of_several_key_orders_is_read_by_templates() -> None:
    names = [h for h in HAZARDS if "\\" not in h]  # an escape of / or a surrogate: deferred
    records = [{"id": f"e{i}", "name": names[i % len(names)], "n": i}
               | ({"tags": ["a", i]} if i % 7 == 0 else {}) | ({"x": None} if i % 5 == 0 else {})
               for i in range(200)]
    text = yamlform.dump_collection(records)
    assert fastread._uniform_values(text) is None  # not one key order
    assert fastread._shaped_sequence(text, 0) == records == yaml.safe_load(text)


def _mixed_mutations() -> st.SearchStrategy[str]:
    base = yamlform.dump_collection(
        [{"id": f"e{i}", "name": ["yes", "a b", "x"][i % 3], "n": i}
         | ({"tags": [1, "x"]} if i % 3 == 1 else {}) for i in range(6)]
    )
    alphabet = st.sampled_from(list("-: \n\"\\{}[],0123456789ey") + ["  ", "\t"])
    return _mutated(base, alphabet)


@settings(max_examples=500, deadline=None)
@given(_mixed_mutations())
def test_the_reader_of_several_key_orders_defers_or_agrees_with_the_safe_loader(
    text: str,
) -> None:
    value = fastread.fast_load(text)
    if value is None:
        return
    assert value == yaml.safe_load(text)
