"""Entry records as the node stores them: the state blob and its logged changes.

An ``entries`` list is stored as a ``hashes`` list is (ADR 0013): its state as one
blob in snapshot form, the record lines each with its line feed, ascending, and
small updates logged beside it in ``state_changes``, each side (``removes``,
``adds``) record lines with their line feeds. Reading the list replays the log
over the blob; a change that does not apply (a damaged log) leaves the blob's
state, whose digest then differs from the trust record, as for hashes.

A match looks its record up in the list's rows keyed by hash
(``node.store.record_table``). When those cannot be used (the stored state is
damaged, or they are stale inside a caller's transaction) the record is found in
the state without reading the list (``find_record``): a binary search over the blob
read in small pieces, after the log rows that mention the hash. The blob is sorted
by record and every record starts with its hash in fixed-width hex, so it is sorted
by hash too.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence

from protocol import EntryState
from protocol.entries import record_limit
from protocol.lists import HashType

__all__ = ["find_record", "join_lines", "replay", "split_lines"]


def split_lines(data: bytes) -> list[bytes]:
    """The record lines of a blob (each ending in a line feed), without their feeds."""
    return data[:-1].split(b"\n") if data else []


def join_lines(lines: Sequence[bytes]) -> bytes:
    """Record lines as a blob: each with its line feed."""
    return b"".join(line + b"\n" for line in lines)


def replay(
    kind: HashType, blob: bytes, changes: Sequence[tuple[bytes, bytes]]
) -> EntryState | None:
    """The state of ``blob`` with ``changes`` (removed, added blobs) applied in order;
    None when one does not apply (a removal absent, an addition already held)."""
    lines = split_lines(blob)
    for removes_blob, adds_blob in changes:
        removes = split_lines(removes_blob)
        adds = split_lines(adds_blob)
        drop = set(removes)
        for line in removes:
            i = bisect.bisect_left(lines, line)
            if i >= len(lines) or lines[i] != line:
                return None
        kept = [line for line in lines if line not in drop] if drop else lines
        merged = sorted(kept + adds)
        if len(set(merged)) != len(merged):
            return None
        lines = merged
    return EntryState(kind, lines)


def find_record(
    read: Callable[[int, int], bytes], size: int, kind: HashType, h: bytes
) -> bytes | None:
    """The line of the record of hash ``h`` in a sorted blob of ``size`` bytes, read
    through ``read(offset, length)``; None if the blob holds none.

    Each step reads the line around the middle of the range left: about twenty reads
    of a kilobyte for a million records.
    """
    prefix = h.hex().encode()
    width = len(prefix)
    window = record_limit(kind) + 1
    lo, hi = 0, size
    while lo < hi:
        mid = (lo + hi) // 2
        start = max(0, mid - window)
        chunk = read(start, min(size, mid + window) - start)
        at = mid - start
        line_start = chunk.rfind(b"\n", 0, at) + 1  # 0 when none: the chunk's start
        line_end = chunk.find(b"\n", at)
        if line_end < 0:
            line_end = len(chunk)
        line = chunk[line_start:line_end]
        key = line[:width]
        if key == prefix:
            return line
        if key < prefix:
            lo = start + line_end + 1
        else:
            hi = start + line_start
    return None
