"""Cumulative counters (PROTOCOL.md §10): how an ack's counts add up, written once.

An ack carries cumulative counters: each node's count since it started, per list
and per hash. Whoever adds them up — the hub's ledger, the auditor recomputing
the hub's totals, the hub's migrations — applies the same three rules:

- **Growth.** What a counter adds since its last value is the difference; a value
  below the last one is a reset (the node's counter started again from 0), so the
  whole new value is growth. A total that sums the growth never goes down (as
  Prometheus counts).
- **Rows.** An ack's counts are read as ``(hash or '', name, value)`` rows: the
  list's counters under ``''`` first, in ``COUNTER_NAMES`` order, then each hash's.
- **Clamp.** A kept total is at most ``MAX_TOTAL`` (2^53 - 1, the JSON-safe
  integer and an ack's own bound), so no node can push a sum past what a database
  or a JSON reader holds (ADR 0010).

Windowing and withholding implausible growth is the hub's policy, not a rule of
the protocol: it stays in the hub.
"""

from __future__ import annotations

from protocol.ack import COUNTER_NAMES, Counts
from protocol.canonical import MAX_SAFE_INTEGER

__all__ = ["MAX_TOTAL", "clamp_total", "counter_growth", "counter_rows"]

MAX_TOTAL = MAX_SAFE_INTEGER
"""The largest counter total kept: 2^53 - 1 (ADR 0010)."""


def counter_growth(last: int, value: int) -> int:
    """What a cumulative counter grew by from ``last`` to ``value`` (both ≥ 0).

    ``value - last``, or ``value`` itself when it is below ``last``: a reset, whose
    last value stays counted.
    """
    return value - last if value >= last else value


def clamp_total(value: int) -> int:
    """A total as it is kept: at most ``MAX_TOTAL``."""
    return min(MAX_TOTAL, value)


def counter_rows(counts: Counts) -> list[tuple[str, str, int]]:
    """An ack's counters as ``(hash or '', name, value)`` rows, the list's first."""
    rows = [("", name, getattr(counts, name)) for name in COUNTER_NAMES]
    rows += [
        (hex_hash, name, value)
        for hex_hash, counters in counts.hashes.items()
        for name, value in counters.items()
    ]
    return rows
