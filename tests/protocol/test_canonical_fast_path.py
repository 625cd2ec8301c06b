"""The strict decoder's fast re-encoding agrees with the full RFC 8785 encoder."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.canonical import canonicalize, parse_canonical
from protocol.errors import MalformedError

KEYS = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], max_codepoint=0x10FFFF), max_size=6
)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | KEYS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_canonical_bytes_of_any_value_are_accepted_and_parse_back(value: object) -> None:
    data = canonicalize(value)
    assert parse_canonical(data) == value


def test_code_point_key_order_is_refused_where_it_differs_from_utf16_order() -> None:
    value = {"\ufb33": 1, "\U0001f602": 2}
    canonical = canonicalize(value)
    python_order = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    assert canonical != python_order  # U+1F602 sorts first in UTF-16, last by code point
    assert parse_canonical(canonical) == value
    with pytest.raises(MalformedError, match="canonical"):
        parse_canonical(python_order)


def test_escaped_lone_surrogate_is_refused() -> None:
    with pytest.raises(MalformedError, match="surrogate"):
        parse_canonical(b'{"a":"\\ud800"}')
