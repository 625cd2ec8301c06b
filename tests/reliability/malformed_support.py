"""Malformed input, made from valid input: the strategies and checks of the malformed-input tests.

A parser is best attacked with bytes that are *almost* right: a valid document
with one bit flipped, cut short, with bytes inserted or removed, a field of the
wrong type, a number too big for any integer type, ``NaN``, nesting deeper than
any stack, a key given twice, text that is not UTF-8. ``mutations(seed)`` makes
such bytes from the bytes of a real document; ``json_mutations(document)`` does
it at the level of JSON values; ``random_bytes`` is the plain noise the two are
mixed with.

The checks say what refusing means here:

- ``refused_cleanly(error)``: a pure parser raised its package's own error type
  with a message, never a bare ``KeyError``, ``UnicodeDecodeError`` or
  ``RecursionError``;
- ``assert_json_error(status, body)``: an HTTP answer is a 4xx in the one JSON
  error shape ``{"error": {"status", "code", "message"}}``;
- ``database_dump(path)``: every table of a SQLite file, row by row, to compare
  before and after (read through a second connection, as another process would).

Every HTTP test runs one real server for all its examples and compares the dump
after each one, so a hundred examples cost a hundred requests, not a hundred
servers.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from protocol.errors import HashhubError

__all__ = [
    "BAD_JSON_VALUES",
    "DEEP_JSON",
    "FUZZ",
    "assert_json_error",
    "database_dump",
    "json_mutations",
    "mutations",
    "random_bytes",
    "refused_cleanly",
]

FUZZ: dict[str, Any] = {"deadline": None, "derandomize": True, "database": None}
"""Settings every test here shares: reproducible (no example database, fixed seed), no deadline."""

DEEP_JSON = "[" * 100_000 + "]" * 100_000
"""Nesting far deeper than Python's recursion limit."""

BAD_JSON_VALUES: tuple[str, ...] = (
    "null",
    "true",
    "false",
    "0",
    "-1",
    "9007199254740992",  # 2**53: the first integer a JSON double cannot hold exactly
    "18446744073709551616",  # 2**64
    "1" * 5000,  # past Python's int-from-text digit limit
    "-" + "9" * 400,
    "1.5",
    "1e400",
    "NaN",
    "Infinity",
    "-Infinity",
    '""',
    '"' + "a" * 5000 + '"',
    '"\\ud800"',  # a lone surrogate: no UTF-8 for it
    '"\\u0000"',
    '"\\n"',
    '"2026-02-30T25:61:61Z"',
    '"\u00e9\u202e\ufeff"',
    "[]",
    "{}",
    '{"":{}}',
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    DEEP_JSON,
)
"""Raw JSON texts to put where a document expects something else."""

_SPECIAL_BYTES = (
    b"\x00",
    b"\xff",
    b"\xc3",  # a UTF-8 lead byte with nothing after it
    b"\xed\xa0\x80",  # UTF-8 of a surrogate
    b"\xef\xbb\xbf",  # a byte order mark
    b"\r",
    b"\n",
    b"\t",
    b" ",
    b'"',
    b"\\",
    b"{",
    b"}",
    b"[",
    b",",
    b":",
    b"-",
    b"+",
    b"0",
    b"9",
    b"=",
    b"&",
    b"%",
    b"\xe2\x80\xa8",  # U+2028 LINE SEPARATOR
)


def random_bytes(max_size: int = 512) -> st.SearchStrategy[bytes]:
    return st.binary(max_size=max_size)


def _flip_bit(seed: bytes, index: int, bit: int) -> bytes:
    out = bytearray(seed)
    out[index] ^= 1 << bit
    return bytes(out)


def mutations(seed: bytes, *, noise: bool = True) -> st.SearchStrategy[bytes]:
    """Bytes that differ from ``seed`` by one small corruption (or, with ``noise``, none of it).

    Bit flips, truncation, inserted bytes (random or one of a set that means
    something to a parser: quotes, braces, NUL, CR, a lone UTF-8 lead byte, a BOM),
    removed or repeated slices, swapped halves, and the seed twice over.
    """
    n = len(seed)
    assert n > 1, "a seed to mutate has at least two bytes"
    index = st.integers(0, n - 1)
    where = st.integers(0, n)
    inserted = st.one_of(st.sampled_from(_SPECIAL_BYTES), st.binary(min_size=1, max_size=24))
    options: list[st.SearchStrategy[bytes]] = [
        st.builds(_flip_bit, st.just(seed), index, st.integers(0, 7)),
        st.integers(0, n - 1).map(lambda i: seed[:i]),
        st.integers(1, n - 1).map(lambda i: seed[i:]),
        st.tuples(where, inserted).map(lambda t: seed[: t[0]] + t[1] + seed[t[0] :]),
        st.tuples(index, inserted).map(lambda t: seed[: t[0]] + t[1] + seed[t[0] + len(t[1]) :]),
        st.tuples(index, st.integers(1, 32)).map(lambda t: seed[: t[0]] + seed[t[0] + t[1] :]),
        st.tuples(index, st.integers(1, 32)).map(
            lambda t: seed[: t[0]] + seed[t[0] : t[0] + t[1]] + seed[t[0] :]
        ),
        st.integers(1, n - 1).map(lambda i: seed[i:] + seed[:i]),
        st.just(seed + seed),
    ]
    for variant in (seed.upper(), seed.replace(b"\n", b"\r\n")):
        if variant != seed:
            options.append(st.just(variant))
    if noise:
        options.append(random_bytes())
    return st.one_of(options).filter(lambda data: data != seed)


def _paths(value: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key path into the objects of ``value`` (arrays are left whole)."""
    out: list[tuple[str, ...]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            out.append((*prefix, key))
            out.extend(_paths(item, (*prefix, key)))
    return out


_SENTINEL = "\x01replace-me\x01"


def _with(document: dict[str, Any], path: Sequence[str], raw: str | None) -> bytes:
    """``document`` as compact sorted JSON with the value at ``path`` made ``raw`` (or removed)."""
    copy = json.loads(json.dumps(document))
    parent = copy
    for key in path[:-1]:
        parent = parent[key]
    if raw is None:
        del parent[path[-1]]
        return json.dumps(copy, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    parent[path[-1]] = _SENTINEL
    text = json.dumps(copy, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    marker = json.dumps(_SENTINEL, ensure_ascii=False)
    return text.replace(marker, raw, 1).encode("utf-8", "surrogatepass")


def _duplicate_first_key(document: dict[str, Any]) -> bytes:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    key = min(document)
    member = json.dumps({key: document[key]}, separators=(",", ":"), ensure_ascii=False)[1:-1]
    return ("{" + member + "," + text[1:]).encode()


def json_mutations(document: dict[str, Any]) -> st.SearchStrategy[bytes]:
    """JSON texts that are ``document`` with one value wrong, missing, doubled or added.

    The text is written compactly with sorted keys, as canonical JSON is, so what
    makes a parser refuse it is the one change, not its layout.
    """
    paths = _paths(document)
    assert paths, "a document to mutate has fields"
    path = st.sampled_from(paths)
    return st.one_of(
        st.builds(_with, st.just(document), path, st.sampled_from(BAD_JSON_VALUES)),
        st.builds(_with, st.just(document), path, st.none()),
        st.builds(
            _with, st.just(document), st.just(("zz-unknown",)), st.sampled_from(BAD_JSON_VALUES)
        ),
        st.just(_duplicate_first_key(document)),
        st.sampled_from(BAD_JSON_VALUES).map(str.encode),
    )


def refused_cleanly(error: BaseException, expected: type[HashhubError] = HashhubError) -> None:
    """Assert ``error`` is the parser's own error type, with a message a person can read."""
    assert isinstance(error, expected), f"{type(error).__name__}: {error}"
    message = str(error)
    assert message.strip(), f"{type(error).__name__} without a message"
    assert len(message) < 2000, f"a {len(message)}-character message echoes the input"


def assert_json_error(status: int, body: bytes, allowed: Sequence[int]) -> dict[str, Any]:
    """Assert a 4xx among ``allowed`` in the one JSON error shape; returns the error object."""
    assert status in allowed, f"{status}: {body[:300]!r}"
    document = json.loads(body)
    assert set(document) == {"error"}, document
    error = document["error"]
    assert set(error) == {"status", "code", "message"}, error
    assert error["status"] == status, error
    assert isinstance(error["code"], str), error
    assert error["code"], error
    assert isinstance(error["message"], str), error
    assert error["message"].strip(), error
    return dict(error)


def database_dump(path: Path) -> list[str]:
    """Every table and row of the SQLite database at ``path``, as SQL statements."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()
