"""Large JSON request bodies, parsed without stopping the event loop.

``json.loads`` is C code that holds the interpreter lock for the whole
document, so running it in a worker thread does not help: a 57 MiB stage body
takes about a second to parse and stops the event loop for all of it (every
node's checkpoint read waits). ``loads_yielding`` gives the same value and
refuses the same documents, but walks objects and arrays in Python and hands
the C decoder only small pieces (a scalar, or a container found to close within
``_SPAN`` characters), so the interpreter can switch to the event loop between
any two pieces. It is meant for a worker thread (``parse_json_body``).

The small pieces are found by looking ahead for the nearest closing bracket; a
piece that does not parse there is walked in Python instead. That look-ahead is
paid from a budget of twice the document's length, so a document built to make
it fail again and again costs at most linear extra work. Objects and arrays may
nest at most ``MAX_DEPTH`` deep, which ``json.loads`` would answer with a
``RecursionError`` a little deeper.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

__all__ = ["MAX_DEPTH", "YIELDING_BYTES", "loads_yielding", "parse_json_body"]

MAX_DEPTH = 128
YIELDING_BYTES = 1024 * 1024
"""A body up to this size is parsed at once (a few milliseconds); a larger one in a thread."""

_SPAN = 4096
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
_CLOSE = {"{": "}", "[": "]"}


class _Walk:
    """One document being walked: its text and what is left of the look-ahead budget."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.budget = 2 * len(text)

    def skip(self, i: int) -> int:
        match = _WHITESPACE.match(self.text, i)
        assert match is not None  # the pattern matches the empty string
        return match.end()

    def value(self, i: int, depth: int) -> tuple[Any, int]:
        text = self.text
        opening = text[i : i + 1]
        if opening not in _CLOSE:
            return _DECODER.raw_decode(text, i)  # a scalar, or the error json.loads gives
        if depth >= MAX_DEPTH:
            raise json.JSONDecodeError(f"nested more than {MAX_DEPTH} deep", text, i)
        small = self._small(i, opening)
        if small is not None:
            return small
        if opening == "{":
            return self._object(i, depth)
        return self._array(i, depth)

    def _small(self, i: int, opening: str) -> tuple[Any, int] | None:
        """The container at ``i`` in one C call, if it closes within ``_SPAN`` characters."""
        if self.budget <= 0:
            return None
        end = self.text.find(_CLOSE[opening], i, i + _SPAN)
        if end < 0:
            return None
        self.budget -= end + 1 - i
        try:
            value, length = _DECODER.raw_decode(self.text[i : end + 1])
        except (ValueError, RecursionError):
            return None  # nested, or a bracket inside a string: walked in Python
        return value, i + length

    def _object(self, i: int, depth: int) -> tuple[dict[str, Any], int]:
        text, out = self.text, dict[str, Any]()
        i = self.skip(i + 1)
        if text[i : i + 1] == "}":
            return out, i + 1
        while True:
            if text[i : i + 1] != '"':
                raise json.JSONDecodeError(
                    "Expecting property name enclosed in double quotes", text, i
                )
            key, i = _DECODER.raw_decode(text, i)  # a string: it starts with a quote
            i = self.skip(i)
            if text[i : i + 1] != ":":
                raise json.JSONDecodeError("Expecting ':' delimiter", text, i)
            out[key], i = self.value(self.skip(i + 1), depth + 1)
            i = self.skip(i)
            if text[i : i + 1] == "}":
                return out, i + 1
            if text[i : i + 1] != ",":
                raise json.JSONDecodeError("Expecting ',' delimiter", text, i)
            i = self.skip(i + 1)

    def _array(self, i: int, depth: int) -> tuple[list[Any], int]:
        text, out = self.text, list[Any]()
        i = self.skip(i + 1)
        if text[i : i + 1] == "]":
            return out, i + 1
        while True:
            item, i = self.value(i, depth + 1)
            out.append(item)
            i = self.skip(i)
            if text[i : i + 1] == "]":
                return out, i + 1
            if text[i : i + 1] != ",":
                raise json.JSONDecodeError("Expecting ',' delimiter", text, i)
            i = self.skip(i + 1)


def loads_yielding(text: str) -> Any:
    """``json.loads(text)``, in pieces small enough to let other threads run between them.

    Raises:
        json.JSONDecodeError: what ``json.loads`` refuses, or nesting past ``MAX_DEPTH``.
    """
    walk = _Walk(text)
    value, end = walk.value(walk.skip(0), 0)
    end = walk.skip(end)
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return value


async def parse_json_body(data: bytes) -> Any:
    """A request body's JSON value: at once when small, else in a worker thread, in pieces.

    Raises:
        ValueError: not UTF-8 (``UnicodeDecodeError``) or not JSON (``JSONDecodeError``;
            also an integer of more digits than ``int()`` reads).
        RecursionError: nested too deeply for ``json.loads`` (small bodies).
    """
    if len(data) <= YIELDING_BYTES:
        return json.loads(data.decode("utf-8"))
    return await asyncio.to_thread(lambda: loads_yielding(data.decode("utf-8")))
