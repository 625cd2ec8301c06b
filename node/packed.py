"""Hashes packed as ``uint64`` words, and the sorted-array operations on them.

A list's hashes are held column by column: ``words[w, i]`` is the big-endian word
``w`` of hash ``i`` (pdq: 4 words, sha256: 4, md5: 2, phash: 1). Hashes sorted by
bytes are then sorted lexicographically by words, so the binary searches here find
any hash without one Python object per hash. The matcher, its multi-index and its
segments all work on this one layout.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from node.errors import NodeError

__all__ = [
    "WORD_BYTES",
    "HashWidthError",
    "Words",
    "bytes_of",
    "has_adjacent_equal",
    "hash_at",
    "lex_order",
    "locate",
    "row_popcount",
    "search",
    "strictly_ascending",
    "words_from_bytes",
    "words_of",
]

WORD_BYTES = 8

Words = NDArray[np.uint64]
"""Hashes as words: shape ``(words_per_hash, count)``, native ``uint64``."""


class HashWidthError(NodeError, ValueError):
    """A hash whose length is not the list's width (the caller's mistake)."""


def words_from_bytes(hashes: Sequence[bytes], width: int) -> Words:
    """Pack hashes of ``width`` bytes into a ``(width // 8, len(hashes))`` word array.

    Raises:
        HashWidthError: a hash is not exactly ``width`` bytes long.
    """
    for h in hashes:
        if not isinstance(h, bytes | bytearray | memoryview) or len(h) != width:
            size = len(h) if isinstance(h, bytes | bytearray | memoryview) else "?"
            raise HashWidthError(f"hash of {size} bytes where {width} are required")
    return words_of(b"".join(hashes), width)


def words_of(data: bytes, width: int) -> Words:
    """Unpack concatenated hashes of ``width`` bytes (unchecked: callers know the width)."""
    n = len(data) // width
    big_endian = np.frombuffer(data, dtype=">u8").reshape(n, width // WORD_BYTES)
    return np.ascontiguousarray(big_endian.T, dtype=np.uint64)


def bytes_of(words: Words) -> bytes:
    """The hashes back as concatenated bytes, in their order."""
    return words.T.astype(">u8").tobytes()


def hash_at(words: Words, i: int) -> bytes:
    """Hash ``i`` as bytes: what a match reports."""
    return words[:, i].astype(">u8").tobytes()


def lex_order(words: Words) -> NDArray[np.intp]:
    """Indices that sort the hashes ascending (word 0 is the primary key)."""
    return np.lexsort(words[::-1])


def has_adjacent_equal(sorted_words: Words) -> bool:
    """True if a sorted array holds a hash twice (an update may name each hash once)."""
    if sorted_words.shape[1] < 2:
        return False
    equal = np.ones(sorted_words.shape[1] - 1, dtype=bool)
    for row in sorted_words:
        equal &= row[1:] == row[:-1]
    return bool(equal.any())


def strictly_ascending(words: Words) -> bool:
    """True if each hash is greater than the one before it (lexicographic on words)."""
    n = words.shape[1]
    if n < 2:
        return True
    greater = np.zeros(n - 1, dtype=bool)
    undecided = np.ones(n - 1, dtype=bool)
    for row in words:
        later, earlier = row[1:], row[:-1]
        greater |= undecided & (later > earlier)
        undecided &= later == earlier
    return bool(greater.all())


def search(words: Words, keys: Words) -> NDArray[np.intp]:
    """Leftmost insertion points of ``keys`` in sorted ``words`` (lexicographic)."""
    n = words.shape[1]
    lo: NDArray[np.intp] = np.searchsorted(words[0], keys[0], side="left")
    if words.shape[0] == 1 or n == 0:
        return lo
    hi = np.searchsorted(words[0], keys[0], side="right")
    span = hi - lo
    # One hash shares the key's first word: the key goes before it or after it.
    one = np.nonzero(span == 1)[0]
    if one.size:
        at = lo[one]
        after = np.zeros(one.size, dtype=bool)
        undecided = np.ones(one.size, dtype=bool)
        for w in range(1, words.shape[0]):
            key, row = keys[w, one], words[w, at]
            after |= undecided & (key > row)
            undecided &= key == row
        lo[one] = at + after
    # Several share it (rare: hashes equal in their first 8 bytes): narrow word by word.
    for i in np.nonzero(span > 1)[0]:
        left, right = int(lo[i]), int(hi[i])
        for w in range(1, words.shape[0]):
            row = words[w, left:right]
            key = keys[w, i]
            left, right = (
                left + int(np.searchsorted(row, key, side="left")),
                left + int(np.searchsorted(row, key, side="right")),
            )
            if left == right:
                break
        lo[i] = left
    return lo


def locate(words: Words, keys: Words) -> NDArray[np.intp]:
    """Position of each key in sorted ``words``, or -1 where it is absent."""
    n = words.shape[1]
    pos = search(words, keys)
    found = pos < n
    at = np.minimum(pos, max(n - 1, 0))
    if n:
        for w in range(words.shape[0]):
            found &= words[w, at] == keys[w]
    located: NDArray[np.intp] = np.where(found, pos, -1)
    return located


def row_popcount(diff: Words) -> NDArray[np.uint32]:
    """Bits set in each row of ``diff`` (shape ``(k, words)``), as ``uint32``.

    ``bitwise_count`` gives one byte per word; a sum across a short axis is slow in
    numpy, so the bytes are added as lanes of one wider integer instead.
    """
    counts = np.ascontiguousarray(np.bitwise_count(diff))  # (k, words) uint8, each <= 64
    width = counts.shape[1]
    if width == 1:
        return counts[:, 0].astype(np.uint32)
    if width == 2:
        pair = counts.view(np.uint16)[:, 0].astype(np.uint32)
        return (pair & 0xFF) + (pair >> 8)
    # Four words (256 bits): a row's four counts are the four bytes of one uint32.
    lanes = counts.view(np.uint32)[:, 0]
    halves = (lanes & 0x00FF00FF) + ((lanes >> 8) & 0x00FF00FF)  # two sums, each <= 128
    total: NDArray[np.uint32] = (halves & 0xFFFF) + (halves >> 16)  # <= 256
    return total
