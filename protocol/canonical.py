"""Canonical JSON (RFC 8785, JCS) and the strict decoder every signed document goes through.

Why both directions live here: a signature covers exact bytes, so a verifier must
reject any document whose bytes are not the canonical form of what they parse to.
Otherwise two different byte strings (whitespace, key order, ``1.0`` for ``1``,
escaped characters) would carry one valid signature, and a mirror could serve
variants that hash differently but verify the same.

``canonicalize`` implements all of RFC 8785, floats included, so it can be checked
against the published test vectors. Protocol documents never contain floats:
``parse_canonical`` refuses them, along with NaN/Infinity, duplicate keys,
integers outside the interoperable range ±(2**53 - 1), lone surrogates, and any
input that is not byte-for-byte its own canonical form.
"""

from __future__ import annotations

import json
import json.encoder
import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from protocol.errors import MalformedError

__all__ = ["MAX_DEPTH", "MAX_SAFE_INTEGER", "canonicalize", "parse_canonical"]

_c_encode_basestring = json.encoder.encode_basestring

MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 64
"""Deepest nesting of arrays and objects a document may have (``[]`` is depth 1).

A fixed number, not whatever the parser's stack allows: with Python's recursion
limit the verdict would depend on how deep in the call stack the parse runs."""

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def _check_depth(raw: bytes) -> None:
    """Refuse nesting deeper than ``MAX_DEPTH``, counting brackets outside strings."""
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', raw)):
        if match.group() in (b"[", b"{"):
            depth += 1
            if depth > MAX_DEPTH:
                raise MalformedError(f"JSON nested deeper than {MAX_DEPTH} levels")
        else:
            depth -= 1


def _encode_string(value: str) -> str:
    """RFC 8785 §3.2.2.2: escape ``"``, ``\\`` and C0 controls, everything else literal.

    The standard library's C encoder for ``ensure_ascii=False`` does exactly this
    (short forms for \\b \\f \\n \\r \\t, lowercase ``\\u00xx`` for the other
    controls), and the RFC 8785 vectors and an independent implementation check it.
    """
    return _c_encode_basestring(value)


def _encode_number(value: float) -> str:
    """ECMAScript ``Number.prototype.toString`` for a finite double (RFC 8785 §3.2.2.3)."""
    if not math.isfinite(value):
        raise MalformedError(f"JSON cannot represent the number {value!r}")
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    # repr() gives the shortest digit string that round-trips, as ECMAScript requires.
    dec = Decimal(repr(abs(value))).normalize()
    _, digit_tuple, exp = dec.as_tuple()
    assert isinstance(exp, int)
    digits = "".join(str(d) for d in digit_tuple)
    k = len(digits)
    n = exp + k  # value = 0.digits × 10**n
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        text = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + text


def _encode(value: Any, allow_float: bool, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        if not allow_float and abs(value) > MAX_SAFE_INTEGER:
            raise MalformedError(f"integer {value} is outside ±(2**53 - 1)")
        out.append(str(value))
    elif isinstance(value, float):
        if not allow_float:
            raise MalformedError("floating-point numbers are not allowed in hashhub documents")
        out.append(_encode_number(value))
    elif isinstance(value, str):
        out.append(_encode_string(value))
    elif isinstance(value, Mapping):
        keys = list(value.keys())
        for key in keys:
            if not isinstance(key, str):
                raise MalformedError(f"object key {key!r} is not a string")
        # RFC 8785 §3.2.3: members sorted by the UTF-16 code units of their names.
        keys.sort(key=lambda k: k.encode("utf-16-be", "surrogatepass"))
        out.append("{")
        for i, key in enumerate(keys):
            if i:
                out.append(",")
            out.append(_encode_string(key))
            out.append(":")
            _encode(value[key], allow_float, out)
        out.append("}")
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, allow_float, out)
        out.append("]")
    else:
        raise MalformedError(f"cannot encode {type(value).__name__} as JSON")


def canonicalize(value: Any, *, allow_float: bool = False) -> bytes:
    """Encode ``value`` as RFC 8785 canonical JSON bytes.

    Args:
        value: JSON-compatible data (dict, list, str, int, bool, None; float only
            when ``allow_float``).
        allow_float: accept floats and large integers as full JCS does. Off by
            default because hashhub documents are integer-only.

    Raises:
        MalformedError: the value cannot be represented (lone surrogate, NaN,
            float when not allowed, non-string key).
    """
    out: list[str] = []
    _encode(value, allow_float, out)
    try:
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError as e:
        raise MalformedError("string contains a lone surrogate") from e


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, val in pairs:
        if key in result:
            raise MalformedError(f"duplicate key {key!r}")
        result[key] = val
    return result


def _reject_float(text: str) -> Any:
    raise MalformedError(f"floating-point number {text} is not allowed")


def _reject_constant(text: str) -> Any:
    raise MalformedError(f"{text} is not allowed")


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > 16:
        raise MalformedError(f"integer {text[:20]} is outside ±(2**53 - 1)")
    value = int(text)
    if abs(value) > MAX_SAFE_INTEGER:
        raise MalformedError(f"integer {text} is outside ±(2**53 - 1)")
    return value


_BEYOND_E000 = re.compile(rb"[\xee-\xff]")
"""UTF-8 lead bytes of U+E000 and above: where code-point and UTF-16 key orders part."""


def _reencode(value: Any, raw: bytes) -> bytes:
    """The canonical bytes of an already strictly parsed value.

    The parse hooks have refused floats, NaN and unsafe integers, and JSON object keys
    are always strings, so the standard library's C encoder with sorted keys writes
    exactly RFC 8785 — unless a key could hold a character at or above U+E000, where
    Python's code-point order and JCS's UTF-16 order differ. Such input (detected from
    its UTF-8 bytes) takes the full encoder.
    """
    if _BEYOND_E000.search(raw):
        return canonicalize(value)
    try:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise MalformedError("string contains a lone surrogate") from e


def parse_canonical(data: bytes) -> Any:
    """Parse bytes that must be canonical JSON, strictly.

    Checks, in order: UTF-8 without BOM; nesting at most ``MAX_DEPTH``; JSON
    syntax; no duplicate keys, floats, NaN/Infinity or unsafe integers; and that
    ``canonicalize`` of the result is exactly ``data``.

    Raises:
        MalformedError: naming the first rule broken.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedError(f"expected bytes, got {type(data).__name__}")
    raw = bytes(data)
    if raw.startswith(b"\xef\xbb\xbf"):
        raise MalformedError("byte order mark before JSON")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MalformedError(f"not UTF-8 at byte {e.start}") from e
    _check_depth(raw)
    try:
        value = json.loads(
            text,
            object_pairs_hook=_reject_duplicates,
            parse_float=_reject_float,
            parse_int=_parse_int,
            parse_constant=_reject_constant,
        )
    except json.JSONDecodeError as e:
        raise MalformedError(f"invalid JSON: {e.msg} at offset {e.pos}") from e
    except RecursionError as e:
        raise MalformedError("JSON nested too deeply") from e
    try:
        canonical = _reencode(value, raw)
    except RecursionError as e:
        raise MalformedError("JSON nested too deeply") from e
    if canonical != raw:
        raise MalformedError("document is not in canonical form (RFC 8785)")
    return value
