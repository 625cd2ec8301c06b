"""``edge.toml.dumps``: a flat settings mapping as TOML that ``tomllib`` reads back identically."""

from __future__ import annotations

import math
import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.toml import TomlWriteError, dumps

HOSTILE = [
    "",
    'say "hi"',
    "back\\slash",
    "C:\\Users\\hub\\hub.db",
    "\\\\server\\share\\",
    "two\nlines",
    "cr\r\nlf",
    "tab\there",
    "bell\x07, escape\x1b, nul\x00, del\x7f, unit separator\x1f",
    "\b\f",
    "naïve café — 東京 🙂",
    "\u2028\u2029\ufeff",
    "'''\"\"\"",
    "# not a comment",
    'x = "injected"\ny = 1',
    "trailing backslash\\",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_a_hostile_string_reads_back_as_written(text: str) -> None:
    assert tomllib.loads(dumps({"value": text, "items": [text, text]})) == {
        "value": text,
        "items": [text, text],
    }


@given(st.dictionaries(st.text(), st.text() | st.lists(st.text()), max_size=5))
def test_any_strings_and_keys_read_back(settings: dict[str, str | list[str]]) -> None:
    assert tomllib.loads(dumps(settings)) == settings


def test_every_kind_of_value_reads_back_in_order() -> None:
    settings = {
        "name": "hub",
        "port": 8470,
        "negative": -(2**63),
        "largest": 2**63 - 1,
        "timeout": 30.0,
        "small": 1e-05,
        "big": 1e300,
        "forever": math.inf,
        "never": -math.inf,
        "on": True,
        "off": False,
        "proxies": ("10.0.0.0/8", "::1"),
        "none": [],
    }
    text = dumps(settings, comment="a settings file")
    assert text.splitlines()[0] == "# a settings file"
    assert [line.split(" = ")[0] for line in text.splitlines()[1:]] == list(settings)
    assert tomllib.loads(text) == {**settings, "proxies": ["10.0.0.0/8", "::1"], "none": []}
    assert text.endswith("\n")


def test_nan_is_written_as_toml_nan() -> None:
    assert math.isnan(tomllib.loads(dumps({"x": math.nan}))["x"])


def test_plain_values_are_written_as_before() -> None:
    """What ``init`` has always written for ordinary values (docs/configuration.md reads it)."""
    assert dumps({"a": "hub.db", "b": 300, "c": 30.0, "d": False, "e": ("x",)}) == (
        'a = "hub.db"\nb = 300\nc = 30.0\nd = false\ne = ["x"]\n'
    )


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (None, "NoneType"),
        ({"nested": 1}, "dict"),
        ([1, 2], "lists of strings"),
        (2**63, "64-bit"),
        (-(2**63) - 1, "64-bit"),
        ("lone \udcff surrogate", "surrogate"),
        (["ok", "\ud800"], "surrogate"),
        (b"bytes", "bytes"),
    ],
)
def test_a_value_it_cannot_write_is_a_clear_error_naming_the_setting(
    value: object, words: str
) -> None:
    with pytest.raises(TomlWriteError, match=rf"^setting: .*{words}"):
        dumps({"setting": value})


def test_a_comment_of_several_lines_is_refused() -> None:
    with pytest.raises(TomlWriteError, match="single line"):
        dumps({}, comment="one\nx = 1")
