"""The flat settings files ``hub.toml`` and ``node.toml``: writing them, and reading them back.

Writing: TOML that ``tomllib`` reads back identically.

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
``dumps_config`` writes a settings dataclass field by field and raises the role's
own configuration error instead.

Reading: ``read_settings`` parses a file and refuses a setting the role does not
have, ``require_settings`` one the role cannot do without; each role checks the
values' types itself, in its own order, and raises its own error class, so the
command line reports every mistake in a settings file as one line naming it.
``overriding_variables`` finds the environment variables that override settings
(a container's configuration); each role parses their text by its own rules.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Collection, Mapping
from dataclasses import MISSING, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "TomlWriteError",
    "dumps",
    "dumps_config",
    "overriding_variables",
    "read_settings",
    "require_settings",
]

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


def dumps_config(
    config: DataclassInstance,
    *,
    file: str,
    comment: str,
    error: Callable[[str], Exception],
) -> str:
    """A settings dataclass (``HubConfig``, ``NodeConfig``) as its file's text, field by field.

    Args:
        config: the settings, one field a setting, written in field order.
        file: the file's name (``hub.toml``), which the error message starts with.
        comment: the first line, saying what the file is.
        error: the role's configuration error, raised in place of ``TomlWriteError``
            so that the command line reports it as one line like any other.

    Raises:
        Exception: ``error("<file>: <what cannot be written>")``.
    """
    settings = {f.name: getattr(config, f.name) for f in fields(config)}
    try:
        return dumps(settings, comment=comment)
    except TomlWriteError as e:
        raise error(f"{file}: {e}") from e


def read_settings(
    path: Path,
    known: Collection[str],
    *,
    error: Callable[[str], Exception],
    not_home: str,
) -> dict[str, Any]:
    """The settings in the TOML file ``path``, every one of them among ``known``.

    Args:
        path: the settings file.
        known: the names of the role's settings; any other is refused, so that a
            misspelt setting is not silently ignored.
        error: the role's configuration error.
        not_home: what a missing file means (``not a hub home (run 'hashhub init' first)``).

    Raises:
        Exception: ``error("<path>: …")``: no file, a file that is not UTF-8 TOML, or
            an unknown setting.
    """
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise error(f"{path}: {not_home}") from e
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise error(f"{path}: {e}") from e
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise error(f"{path}: unknown setting(s) {unknown}")
    return raw


def require_settings(
    config_class: type[DataclassInstance],
    raw: Mapping[str, object],
    path: Path,
    error: Callable[[str], Exception],
) -> None:
    """Refuse settings read from ``path`` that lack a field of ``config_class`` without a default.

    Raises:
        Exception: ``error("<path>: missing setting(s) [...]")``.
    """
    missing = sorted(
        f.name for f in fields(config_class) if f.default is MISSING and f.name not in raw
    )
    if missing:
        raise error(f"{path}: missing setting(s) {missing}")


def overriding_variables(
    config_class: type[DataclassInstance],
    environ: Mapping[str, str],
    variable: Callable[[str], str],
    fixed: Collection[str],
) -> list[tuple[str, str, str]]:
    """``(setting, variable, text)`` for each setting a variable set in ``environ`` overrides.

    Args:
        config_class: the settings dataclass; its fields are the settings.
        environ: the environment.
        variable: the name of the variable that overrides a setting.
        fixed: settings no variable overrides (fixed at ``init``).
    """
    return [
        (f.name, name, environ[name])
        for f in fields(config_class)
        if f.name not in fixed and (name := variable(f.name)) in environ
    ]
