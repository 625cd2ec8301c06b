"""``edge.toml.dumps``: a flat settings mapping as TOML that ``tomllib`` reads back identically."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.toml import (
    TomlWriteError,
    dumps,
    dumps_config,
    overriding_variables,
    read_settings,
    require_settings,
)

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


@dataclass(frozen=True)
class Settings:
    name: str
    port: int = 8470
    mirrors: tuple[str, ...] = ()


class SettingsError(Exception):
    """Stands for a role's configuration error (``InvalidRequest``, ``NodeConfigError``)."""


def test_dumps_config_writes_the_fields_in_order_under_the_comment() -> None:
    config = Settings(name='say "hi"', mirrors=("https://a", "https://b"))
    text = dumps_config(config, file="x.toml", comment="x configuration", error=SettingsError)
    assert text.splitlines()[0] == "# x configuration"
    assert [line.split(" = ")[0] for line in text.splitlines()[1:]] == ["name", "port", "mirrors"]
    assert tomllib.loads(text) == {
        "name": 'say "hi"',
        "port": 8470,
        "mirrors": ["https://a", "https://b"],
    }


def test_dumps_config_raises_the_roles_error_naming_the_file_and_setting() -> None:
    with pytest.raises(SettingsError, match=r"^x\.toml: name: a lone surrogate") as caught:
        dumps_config(Settings(name="\udcff"), file="x.toml", comment="c", error=SettingsError)
    assert isinstance(caught.value.__cause__, TomlWriteError)


def test_read_settings_returns_the_known_settings_of_a_file(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text(
        dumps_config(Settings(name="n"), file="x.toml", comment="c", error=SettingsError)
    )
    raw = read_settings(path, ["name", "port", "mirrors"], error=SettingsError, not_home="no")
    assert raw == {"name": "n", "port": 8470, "mirrors": []}
    require_settings(Settings, raw, path, SettingsError)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "not a home (run init)"),
        ("name = ", "Invalid value"),
        (b"name = '\xff'", "codec can't decode"),
        ('name = "n"\nprot = 1\n', "unknown setting(s) ['prot']"),
    ],
)
def test_read_settings_refuses_a_file_it_cannot_use(
    tmp_path: Path, text: str | bytes | None, message: str
) -> None:
    path = tmp_path / "x.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        read_settings(path, ["name", "port"], error=SettingsError, not_home="not a home (run init)")
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_require_settings_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"x\.toml: missing setting\(s\) \['name'\]$"):
        require_settings(Settings, {"port": 1}, tmp_path / "x.toml", SettingsError)


def test_overriding_variables_finds_the_set_variables_but_not_for_fixed_settings() -> None:
    environ = {"X_NAME": "other hub", "X_PORT": " 99 ", "X_MIRRORS": "", "UNRELATED": "1"}
    found = overriding_variables(Settings, environ, lambda s: "X_" + s.upper(), {"name"})
    assert found == [("port", "X_PORT", " 99 "), ("mirrors", "X_MIRRORS", "")]
