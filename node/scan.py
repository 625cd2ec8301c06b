"""The blocked full scan: the perceptual matcher's answer for small lists and segments.

XOR and ``numpy.bitwise_count`` over blocks of ``block_rows`` hashes that stay in
the CPU cache, a batch of queries per block. For types of two words or more it
first computes a cheap bound on the first two words: ``popcount((a0 ^ q0) | (a1 ^
q1))`` is at most the full distance, so a hash whose bound exceeds the threshold
cannot match; for unrelated 256-bit hashes the bound averages 48 bits, so at 31
almost nothing passes to the exact check. The scan is split into scoring a block
and collecting its hits so that each step can be read, and timed, on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from node.packed import Words, hash_at

__all__ = ["DEFAULT_BLOCK_ROWS", "QUERY_BATCH", "scan"]

DEFAULT_BLOCK_ROWS = 16384
"""Hashes per scan block: two 128 KiB word slices and their temporaries fit in L2."""
QUERY_BATCH = 32
"""Queries checked against one block before the scan moves to the next block."""

Found = list[list[tuple[int, bytes]]]
"""Per query, the ``(distance, hash)`` pairs found so far."""


@dataclass(frozen=True)
class _Scratch:
    """Buffers reused by every block of one scan, so the inner loop allocates nothing.

    ``bounded``: with two words or more and a threshold under 64, a two-word bound
    filters; otherwise every distance is computed in full (exact, one word or many).
    """

    bounded: bool
    rows: int
    x: NDArray[np.uint64]
    y: NDArray[np.uint64]
    acc: NDArray[np.uint8] | NDArray[np.uint16]
    ones: NDArray[np.uint8]

    @classmethod
    def for_scan(cls, n_words: int, limit: int, rows: int, batch: int) -> _Scratch:
        bounded = n_words >= 2 and limit < 64
        # A bound, or one word's distance, is at most 64: one byte holds it.
        narrow = bounded or n_words == 1
        acc: NDArray[np.uint8] | NDArray[np.uint16] = (
            np.empty((batch, rows), dtype=np.uint8)
            if narrow
            else np.empty((batch, rows), dtype=np.uint16)
        )
        return cls(
            bounded,
            rows,
            np.empty(rows, dtype=np.uint64),
            np.empty(rows, dtype=np.uint64),
            acc,
            np.empty(rows, dtype=np.uint8),
        )


def scan(
    words: Words,
    alive: NDArray[np.bool_] | None,
    queries: Words,
    limit: int,
    block_rows: int,
    found: Found,
) -> None:
    """Append ``(distance, hash)`` for every hash in ``words`` within ``limit``.

    ``alive`` (None: all) masks out removed hashes. Blocks are the outer loop's
    unit so that a block's words stay in cache while a batch of queries reads them.
    """
    n = words.shape[1]
    nq = queries.shape[1]
    if n == 0 or nq == 0:
        return
    n_words = words.shape[0]
    batch = min(QUERY_BATCH, nq)
    scratch = _Scratch.for_scan(n_words, limit, min(block_rows, n), batch)
    for q0 in range(0, nq, batch):
        q1 = min(q0 + batch, nq)
        # Each query word as a 1-element array: the cheapest operand for a ufunc.
        operands = [[queries[w, i : i + 1] for w in range(n_words)] for i in range(q0, q1)]
        for start in range(0, n, scratch.rows):
            stop = min(start + scratch.rows, n)
            scores = _score_block(scratch, words, start, stop, operands)
            if scores.min() > limit:
                continue
            _collect(scratch, words, alive, queries, scores, start, q0, limit, found)


def _score_block(
    scratch: _Scratch, words: Words, start: int, stop: int, operands: list[list[Words]]
) -> NDArray[np.uint8] | NDArray[np.uint16]:
    """Each query's score against each hash of the block: the two-word bound when
    ``bounded``, else the full distance. Shape ``(queries, hashes in the block)``.

    Written with ``out=`` into the scratch buffers: the scan's cost is this loop,
    and fresh temporaries per query would double it.
    """
    xor, bit_or, count, add = np.bitwise_xor, np.bitwise_or, np.bitwise_count, np.add
    k = stop - start
    n_words = words.shape[0]
    cols = [words[w, start:stop] for w in range(n_words)]
    xk, yk, ok = scratch.x[:k], scratch.y[:k], scratch.ones[:k]
    outs = [scratch.acc[j, :k] for j in range(len(operands))]
    if scratch.bounded:
        c0, c1 = cols[0], cols[1]
        for q, out in zip(operands, outs, strict=True):
            xor(c0, q[0], out=xk)
            xor(c1, q[1], out=yk)
            bit_or(xk, yk, out=xk)
            count(xk, out=out)
    else:
        for q, out in zip(operands, outs, strict=True):
            xor(cols[0], q[0], out=xk)
            count(xk, out=out)
            for w in range(1, n_words):
                xor(cols[w], q[w], out=xk)
                count(xk, out=ok)
                add(out, ok, out=out)
    return scratch.acc[: len(operands), :k]


def _collect(
    scratch: _Scratch,
    words: Words,
    alive: NDArray[np.bool_] | None,
    queries: Words,
    scores: NDArray[np.uint8] | NDArray[np.uint16],
    start: int,
    q0: int,
    limit: int,
    found: Found,
) -> None:
    """Turn a block's scores into matches: drop removed hashes, and where the score
    was only a bound, compute the full distance of the few that passed it."""
    k = scores.shape[1]
    # flatnonzero, not nonzero: a 2-D nonzero costs 20 times more here.
    qi, ji = np.divmod(np.flatnonzero(scores <= limit), k)
    at = ji + start
    if alive is not None:
        keep = alive[at]
        qi, at = qi[keep], at[keep]
    if scratch.bounded:
        dist = np.zeros(at.size, dtype=np.int64)
        for w in range(words.shape[0]):
            dist += np.bitwise_count(words[w, at] ^ queries[w, qi + q0])
        keep = dist <= limit
        qi, at, dist = qi[keep], at[keep], dist[keep]
    else:
        dist = scores[qi, at - start].astype(np.int64)
    for i, a, d in zip(qi.tolist(), at.tolist(), dist.tolist(), strict=True):
        found[q0 + i].append((d, hash_at(words, a)))
