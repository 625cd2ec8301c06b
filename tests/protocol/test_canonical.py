"""Tests of protocol.canonical against RFC 8785 and its reference vectors.

``canonicalize`` is checked three ways: against cyberphone/json-canonicalization's
``testdata/`` (``../shared/testdata/jcs``, floats included), against the ``rfc8785``
package as an independent oracle on random integer-only values, and by round trip
through ``parse_canonical``. ``parse_canonical`` gets one hardening test per rule:
every way two byte strings could carry one value is refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from protocol.canonical import MAX_SAFE_INTEGER, canonicalize, parse_canonical
from protocol.errors import MalformedError

JCS = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "jcs"
JCS_INPUTS = sorted((JCS / "input").glob("*.json"))


def test_jcs_vectors_are_present() -> None:
    assert len(JCS_INPUTS) > 0, f"no RFC 8785 vectors under {JCS / 'input'}"


@pytest.mark.parametrize("path", JCS_INPUTS, ids=lambda p: p.stem)
def test_canonicalize_matches_rfc8785_reference_output(path: Path) -> None:
    value = json.loads(path.read_bytes())
    expected = (JCS / "output" / path.name).read_bytes()
    assert canonicalize(value, allow_float=True) == expected


@pytest.mark.parametrize("path", JCS_INPUTS, ids=lambda p: p.stem)
def test_canonicalize_matches_rfc8785_reference_hex(path: Path) -> None:
    value = json.loads(path.read_bytes())
    expected = bytes.fromhex((JCS / "outhex" / f"{path.stem}.txt").read_text("ascii"))
    assert canonicalize(value, allow_float=True) == expected


# -- parse_canonical: one rule each ------------------------------------------------------


def test_accepts_canonical_document() -> None:
    assert parse_canonical(b'{"a":[1,"x",null,true],"b":{}}') == {
        "a": [1, "x", None, True],
        "b": {},
    }


def test_rejects_duplicate_keys() -> None:
    with pytest.raises(MalformedError, match="duplicate key"):
        parse_canonical(b'{"a":1,"a":1}')


@pytest.mark.parametrize("data", [b"1.0", b"1e3", b"[1.5]", b'{"a":-0.0}'])
def test_rejects_floats(data: bytes) -> None:
    with pytest.raises(MalformedError, match="floating-point"):
        parse_canonical(data)


@pytest.mark.parametrize("data", [b"NaN", b"Infinity", b"-Infinity", b"[NaN]"])
def test_rejects_nan_and_infinity(data: bytes) -> None:
    with pytest.raises(MalformedError, match="not allowed"):
        parse_canonical(data)


def test_accepts_integers_at_the_safe_limit() -> None:
    assert parse_canonical(str(MAX_SAFE_INTEGER).encode()) == 2**53 - 1
    assert parse_canonical(str(-MAX_SAFE_INTEGER).encode()) == -(2**53 - 1)


@pytest.mark.parametrize(
    "data",
    [str(2**53).encode(), str(-(2**53)).encode(), b"[" + b"9" * 5000 + b"]"],
    ids=["2**53", "-2**53", "5000-digits"],
)
def test_rejects_integers_beyond_safe_range(data: bytes) -> None:
    with pytest.raises(MalformedError, match="outside"):
        parse_canonical(data)


def test_rejects_byte_order_mark() -> None:
    with pytest.raises(MalformedError, match="byte order mark"):
        parse_canonical(b"\xef\xbb\xbf{}")


@pytest.mark.parametrize("data", [b'"\xff"', b'"\xc0\xaf"', b'"\xed\xa0\x80"'])
def test_rejects_invalid_utf8(data: bytes) -> None:
    with pytest.raises(MalformedError, match="not UTF-8"):
        parse_canonical(data)


def test_rejects_lone_surrogate_escape() -> None:
    with pytest.raises(MalformedError, match="surrogate"):
        parse_canonical(b'"\\ud800"')


@pytest.mark.parametrize("data", [b'{"a": 1}', b' {"a":1}', b'{"a":1}\n', b"[1, 2]"])
def test_rejects_whitespace(data: bytes) -> None:
    with pytest.raises(MalformedError, match="canonical form"):
        parse_canonical(data)


def test_rejects_unsorted_keys() -> None:
    with pytest.raises(MalformedError, match="canonical form"):
        parse_canonical(b'{"b":1,"a":2}')


def test_rejects_non_minimal_escape() -> None:
    with pytest.raises(MalformedError, match="canonical form"):
        parse_canonical(b'"\\u0041"')


def test_rejects_uppercase_hex_escape() -> None:
    assert parse_canonical(b'"\\u001f"') == "\x1f"
    with pytest.raises(MalformedError, match="canonical form"):
        parse_canonical(b'"\\u001F"')


@pytest.mark.parametrize("opening", [b"[", b'{"a":'])
def test_rejects_deep_nesting_as_malformed_not_recursion(opening: bytes) -> None:
    depth = 100_000
    closing = b"]" if opening == b"[" else b"}"
    with pytest.raises(MalformedError, match="nested deeper than 64"):
        parse_canonical(opening * depth + b"0" + closing * depth)


@pytest.mark.parametrize("opening", [b"[", b'{"a":'])
def test_nesting_limit_is_exactly_64(opening: bytes) -> None:
    closing = b"]" if opening == b"[" else b"}"
    assert parse_canonical(opening * 64 + b"0" + closing * 64) is not None
    with pytest.raises(MalformedError, match="nested deeper than 64 levels"):
        parse_canonical(opening * 65 + b"0" + closing * 65)


def test_brackets_inside_strings_do_not_count_towards_depth() -> None:
    value = ["[{" * 100 + '\\"]', {"k[": "{"}]
    assert parse_canonical(canonicalize(value)) == value


@pytest.mark.parametrize("value", ["{}", None, 1, ["{}"]], ids=["str", "None", "int", "list"])
def test_rejects_input_that_is_not_bytes(value: Any) -> None:
    with pytest.raises(MalformedError, match="expected bytes"):
        parse_canonical(value)


# -- properties ---------------------------------------------------------------------------

safe_integers = st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
json_values = st.recursive(
    st.none() | st.booleans() | safe_integers | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=300)
@given(json_values)
def test_canonicalize_agrees_with_rfc8785_package(value: Any) -> None:
    assert canonicalize(value) == rfc8785.dumps(value)


@settings(max_examples=300)
@given(json_values)
def test_parse_canonical_round_trips_canonical_bytes(value: Any) -> None:
    assert parse_canonical(canonicalize(value)) == value


@settings(max_examples=200)
@given(
    value=st.dictionaries(st.text(), json_values, min_size=1, max_size=5),
    indent=st.sampled_from([None, 0, 1, 2, "\t"]),
    separators=st.sampled_from([(", ", ": "), (",", ": "), (", ", ":"), (",", ":")]),
    sort_keys=st.booleans(),
    ensure_ascii=st.booleans(),
)
def test_rejects_any_other_json_encoding_of_a_document(
    value: dict[str, Any],
    indent: int | str | None,
    separators: tuple[str, str],
    sort_keys: bool,
    ensure_ascii: bool,
) -> None:
    encoded = json.dumps(
        value,
        indent=indent,
        separators=separators,
        sort_keys=sort_keys,
        ensure_ascii=ensure_ascii,
    ).encode("utf-8")
    assume(encoded != canonicalize(value))
    with pytest.raises(MalformedError, match="canonical form"):
        parse_canonical(encoded)
