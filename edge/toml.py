"""Writing a flat settings file as TOML that ``tomllib`` reads back identically.

The hub's ``hub.toml`` and the node's ``node.toml`` are flat tables of settings:
strings, integers, floats, booleans and lists of strings. ``dumps`` renders one
such mapping, one ``key = value`` line per setting in the mapping's order, under
an optional comment line. Strings are TOML basic strings: ``\\`` and ``"`` are
escaped, and so is every control character (the usual ``\\b \\t \\n \\f \\r``,
the others and DEL as ``\\uXXXX``); any other character, ASCII or not, is written
as itself (the file is UTF-8). A key that is not a bare key is quoted the same way.

A value it cannot write faithfully (``None``, a nested table, a list of anything
but strings, an integer outside TOML's signed 64 bits, a string holding a lone
surrogate, which UTF-8 cannot encode) raises ``TomlWriteError`` naming the key,
rather than a file that ``tomllib`` rejects or reads back differently.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

__all__ = ["TomlWriteError", "dumps"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SHORT_ESCAPES = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


class TomlWriteError(ValueError):
    """A setting whose value (or key) this writer cannot render as TOML."""


def _string(text: str, key: str) -> str:
    out = ['"']
    for char in text:
        code = ord(char)
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        elif 0xD800 <= code <= 0xDFFF:
            raise TomlWriteError(
                f"{key}: a lone surrogate (U+{code:04X}) cannot be written in a UTF-8 TOML file"
            )
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _value(value: object, key: str) -> str:
    if isinstance(value, bool):  # before int: a bool is an int in Python
        return "true" if value else "false"
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise TomlWriteError(f"{key}: {value} is outside TOML's 64-bit integers")
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value)  # "1.5", "1e-05", "inf", "-inf": all TOML floats
    if isinstance(value, str):
        return _string(value, key)
    if isinstance(value, list | tuple):
        items = []
        for item in value:
            if not isinstance(item, str):
                raise TomlWriteError(
                    f"{key}: only lists of strings can be written, not {type(item).__name__}"
                )
            items.append(_string(item, key))
        return "[" + ", ".join(items) + "]"
    raise TomlWriteError(f"{key}: a {type(value).__name__} cannot be written as a TOML setting")


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key, repr(key))


def dumps(settings: Mapping[str, object], *, comment: str | None = None) -> str:
    """The TOML text of a flat mapping of settings, one ``key = value`` line each.

    Args:
        settings: setting name → a str, int, float, bool, or list/tuple of str.
        comment: a first line, written as ``# comment`` (one line, no newline).

    Raises:
        TomlWriteError: a value or key that TOML cannot hold as given.
    """
    lines = []
    if comment is not None:
        if "\n" in comment or "\r" in comment:
            raise TomlWriteError("the comment must be a single line")
        lines.append(f"# {comment}")
    for key, value in settings.items():
        lines.append(f"{_key(key)} = {_value(value, key)}")
    return "\n".join(lines) + "\n"
