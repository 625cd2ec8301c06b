"""The count ledger: what nodes say they matched and did, summed and bounded (ADR 10).

Each ack carries a node's cumulative counters; the ledger takes their growth
(``protocol.counter_growth``) into per-node rows (``counters``), per-list and
per-hash sums over nodes (``counter_totals``) and one chart point per ack
(``count_points``). Every total is clamped (``protocol.clamp_total``), and a
counter may grow only so fast: a larger jump is withheld, not counted, and kept
as evidence by the caller. Reading any of it costs the same however many acks
came in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from hub.services.context import HubContext
from hub.services.lists import Lists
from protocol.ack import COUNTER_NAMES
from protocol.counters import MAX_TOTAL, clamp_total, counter_growth

__all__ = ["FlaggedHash", "Ledger"]

_Existing = tuple[int, int, int, int, int]
"""A counter's stored ``(last, total, withheld, window_start, window_growth)``."""


@dataclass
class _Counted:
    """One ack's effect on the ledger, built before anything is written."""

    updates: list[tuple[Any, ...]]
    aggregates: list[tuple[Any, ...]]
    withheld: dict[str, dict[str, int]]


@dataclass(frozen=True)
class FlaggedHash:
    """A listed hash whose reports stand out of line, with why and how many nodes said so."""

    hash: str
    counts: dict[str, int]
    """Its counters summed over nodes."""
    reasons: list[str]
    nodes: dict[str, int]
    """How many nodes reported its ``matched`` and its ``false_positive``."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _without_top(shares: Sequence[Mapping[str, int]], name: str, drop: int) -> dict[str, int]:
    """The sums of ``matched`` and ``false_positive`` without the ``drop`` nodes largest in
    ``name`` (both of their counters taken out), clamped like every total."""
    kept = sorted(shares, key=lambda share: share.get(name, 0), reverse=True)[max(0, drop) :]
    return {
        counter: clamp_total(sum(share.get(counter, 0) for share in kept))
        for counter in ("matched", "false_positive")
    }


class Ledger:
    """The ``counters``, ``counter_totals`` and ``count_points`` tables."""

    def __init__(self, ctx: HubContext, lists: Lists) -> None:
        self.ctx = ctx
        self.lists = lists

    # -- taking an ack in ---------------------------------------------------------------

    def count(
        self, node: str, list_id: str, rows: Sequence[tuple[str, str, int]]
    ) -> dict[str, dict[str, int]]:
        """Take one ack's cumulative counters ``(hash or '', name, value)`` into the ledger.

        Each counter's growth since the node's last value is what this ack adds
        (``protocol.counter_growth``: the difference, or the whole value after a
        reset). Everything is bounded (ADR 0010):

        - totals, and their sums over nodes in ``counter_totals``, are clamped to
          ``MAX_TOTAL`` (``protocol.clamp_total``), so SQLite's 64-bit arithmetic
          never overflows;
        - each of one node's counters, of the list (hash '') or of one hash, may grow
          by ``max_counter_growth`` per ``counter_window_seconds``: a larger growth
          is withheld, not counted, and returned to be kept as evidence.

        Returns the withheld growth of this ack, ``{hash or '': {name: amount}}``
        (empty when none).
        """
        existing = self._existing(node, list_id, sorted({h for h, _, _ in rows}))
        counted = self._apply(node, list_id, rows, existing)
        self.ctx.db.conn.executemany(
            "INSERT INTO counters (node, list_id, hash, name, last, total, withheld, "
            "window_start, window_growth) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (node, list_id, hash, name) DO UPDATE SET last = excluded.last, "
            "total = excluded.total, withheld = excluded.withheld, "
            "window_start = excluded.window_start, window_growth = excluded.window_growth",
            counted.updates,
        )
        self.ctx.db.conn.executemany(
            "INSERT INTO counter_totals (list_id, hash, name, total, nodes) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (list_id, hash, name) DO UPDATE SET "
            "total = min(?, total + excluded.total), nodes = nodes + excluded.nodes",
            counted.aggregates,
        )
        return counted.withheld

    def _existing(
        self, node: str, list_id: str, keys: list[str]
    ) -> dict[tuple[str, str], _Existing]:
        """The node's stored counters of ``list_id`` for the hashes ``keys`` ('' the list)."""
        return {
            (r[0], r[1]): (r[2], r[3], r[4], r[5], r[6])
            for r in self.ctx.db.execute(
                "SELECT hash, name, last, total, withheld, window_start, window_growth "
                "FROM counters WHERE node = ? AND list_id = ? "
                "AND hash IN (SELECT value FROM json_each(?))",
                [node, list_id, json.dumps(keys)],
            ).fetchall()
        }

    def _apply(
        self,
        node: str,
        list_id: str,
        rows: Sequence[tuple[str, str, int]],
        existing: Mapping[tuple[str, str], _Existing],
    ) -> _Counted:
        """Each counter's growth, counted within its window's cap or withheld."""
        now = int(self.ctx.now().timestamp())
        window = max(1, self.ctx.config.counter_window_seconds)
        cap = max(0, self.ctx.config.max_counter_growth)
        out = _Counted([], [], {})
        for hex_hash, name, value in rows:
            last, total, held, window_start, growth = existing.get(
                (hex_hash, name), (0, 0, 0, 0, 0)
            )
            step = counter_growth(last, value)
            counted = step
            if step > 0:
                if now - window_start >= window:
                    window_start, growth = now, 0
                if growth + step > cap:
                    counted = 0
                    held = clamp_total(held + step)
                    out.withheld.setdefault(hex_hash, {})[name] = step
                else:
                    growth += step
            new_total = clamp_total(total + counted)
            out.updates.append(
                (node, list_id, hex_hash, name, value, new_total, held, window_start, growth)
            )
            if new_total > total or (hex_hash, name) not in existing:
                # A counter reported as 0 has a row too: the counts answer names it.
                reported = 1 if total == 0 and new_total > 0 else 0
                out.aggregates.append(
                    (list_id, hex_hash, name, new_total - total, reported, MAX_TOTAL)
                )
        return out

    def count_point(self, list_id: str, received: str) -> None:
        """Keep the list's totals after this ack: one point of the dashboard's chart."""
        totals = self.list_totals(list_id)
        self.ctx.db.execute(
            "INSERT INTO count_points (list_id, received, checked, matched, actioned, blocked, "
            "false_positive) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [list_id, received, *(totals[name] for name in COUNTER_NAMES)],
        )

    # -- reading ------------------------------------------------------------------------

    def list_totals(self, list_id: str) -> dict[str, int]:
        """The list's counters summed over nodes (every counter named, 0 if none)."""
        totals = dict.fromkeys(COUNTER_NAMES, 0)
        for r in self.ctx.db.query(
            "SELECT name, total FROM counter_totals WHERE list_id = ? AND hash = ''", [list_id]
        ):
            if r["name"] in totals:
                totals[r["name"]] = r["total"]
        return totals

    def node_totals(
        self, node: str, list_id: str, hex_hash: str = ""
    ) -> tuple[dict[str, int], dict[str, int]]:
        """A node's counted totals and withheld growth (only counters it withheld)."""
        counts: dict[str, int] = {}
        withheld: dict[str, int] = {}
        for r in self.ctx.db.query(
            "SELECT name, total, withheld FROM counters "
            "WHERE node = ? AND list_id = ? AND hash = ?",
            [node, list_id, hex_hash],
        ):
            counts[r["name"]] = r["total"]
            if r["withheld"]:
                withheld[r["name"]] = r["withheld"]
        return counts, withheld

    def hash_counts(self, list_id: str) -> dict[str, dict[str, int]]:
        """Per-hash cumulative counts for a list, summed over nodes (maintained, bounded)."""
        out: dict[str, dict[str, int]] = {}
        for hex_hash, name, total, _ in self._hash_rows(list_id):
            out.setdefault(hex_hash, {})[name] = total
        return out

    def hash_withheld(self, list_id: str) -> dict[str, dict[str, int]]:
        """Per-hash growth withheld as implausible jumps, summed over nodes (clamped)."""
        out: dict[str, dict[str, int]] = {}
        for hex_hash, name, held in self.ctx.db.execute(
            "SELECT hash, name, withheld FROM counters "
            "WHERE list_id = ? AND withheld > 0 AND hash != '' ORDER BY hash, name",
            [list_id],
        ).fetchall():
            counters = out.setdefault(hex_hash, {})
            counters[name] = clamp_total(counters.get(name, 0) + held)
        return out

    def _hash_rows(self, list_id: str) -> list[tuple[str, str, int, int]]:
        """``(hash, counter, total over nodes, nodes that reported it)`` of a list."""
        return [
            (r[0], r[1], r[2], r[3])
            for r in self.ctx.db.execute(
                "SELECT hash, name, total, nodes FROM counter_totals "
                "WHERE list_id = ? AND hash != '' ORDER BY hash, name",
                [list_id],
            ).fetchall()
        ]

    def flagged_hashes(self, list_id: str) -> list[FlaggedHash]:
        """Hashes whose false-positive share or match count stands far out of line.

        Flagged when reviewers rejected at least 3 matches and at least a fifth of
        them (a bad hash), or when a hash matched at least 50 times and more than
        20 times the list's median per-hash matches (a collision-prone hash).
        Either rule must still hold without the ``flag_min_nodes - 1`` nodes that
        contributed most to it (their counts taken out), so no group of fewer
        nodes, however large its numbers, can get a listed hash flagged; ``nodes``
        says how many nodes reported its matches and its false positives.
        Only hashes still in the list are flagged: a retracted one needs no review.
        """
        counts: dict[str, dict[str, int]] = {}
        reporters: dict[str, dict[str, int]] = {}
        for hex_hash, name, total, reporting in self._hash_rows(list_id):
            counts.setdefault(hex_hash, {})[name] = total
            reporters.setdefault(hex_hash, {})[name] = reporting
        listed = self.lists.state(list_id)
        enough = max(1, self.ctx.config.flag_min_nodes)
        matched = sorted(c.get("matched", 0) for c in counts.values())
        median = matched[len(matched) // 2] if matched else 0
        flagged: list[FlaggedHash] = []
        for hex_hash, c in counts.items():
            m, fp = c.get("matched", 0), c.get("false_positive", 0)
            nodes = {
                "matched": reporters[hex_hash].get("matched", 0),
                "false_positive": reporters[hex_hash].get("false_positive", 0),
            }
            bad = fp >= 3 and fp * 5 >= max(m, 1) and nodes["false_positive"] >= enough
            outlying = m >= 50 and m > 20 * max(median, 1) and nodes["matched"] >= enough
            if not (bad or outlying) or bytes.fromhex(hex_hash) not in listed:
                continue
            reasons = self._reasons(list_id, hex_hash, bad, outlying, enough, median)
            if reasons:
                flagged.append(FlaggedHash(hex_hash, c, reasons, nodes))
        flagged.sort(
            key=lambda f: (-f.counts.get("false_positive", 0), -f.counts.get("matched", 0))
        )
        return flagged

    def _reasons(
        self, list_id: str, hex_hash: str, bad: bool, outlying: bool, enough: int, median: int
    ) -> list[str]:
        """The flag rules that still hold without the ``enough - 1`` largest reporters."""
        shares = self._node_shares(list_id, hex_hash)
        reasons = []
        if bad:
            rest = _without_top(shares, "false_positive", enough - 1)
            if rest["false_positive"] >= 3 and rest["false_positive"] * 5 >= max(
                rest["matched"], 1
            ):
                reasons.append("false positives")
        if outlying:
            rest = _without_top(shares, "matched", enough - 1)
            if rest["matched"] >= 50 and rest["matched"] > 20 * max(median, 1):
                reasons.append("matches far above the list's median")
        return reasons

    def _node_shares(self, list_id: str, hex_hash: str) -> list[dict[str, int]]:
        """Each node's counted ``matched`` and ``false_positive`` for one hash."""
        shares: dict[str, dict[str, int]] = {}
        for node, name, total in self.ctx.db.execute(
            "SELECT node, name, total FROM counters WHERE list_id = ? AND hash = ? "
            "AND name IN ('matched', 'false_positive')",
            [list_id, hex_hash],
        ).fetchall():
            shares.setdefault(node, {"matched": 0, "false_positive": 0})[name] = total
        return list(shares.values())

    def count_history(
        self, list_id: str, names: Sequence[str] = ("actioned", "blocked"), limit: int = 5000
    ) -> list[tuple[str, int]]:
        """A list's counters ``names`` summed over nodes, after each of its last ``limit`` acks.

        Read from ``count_points``, which keeps the list's (bounded) totals as each
        ack was counted: one point ``(received, total)`` per ack, without parsing
        any stored ack.
        """
        wanted = [n for n in COUNTER_NAMES if n in names]
        rows = self.ctx.db.execute(
            "SELECT received, checked, matched, actioned, blocked, false_positive "
            "FROM count_points WHERE list_id = ? ORDER BY id DESC LIMIT ?",
            [list_id, limit],
        ).fetchall()
        index = {name: i + 1 for i, name in enumerate(COUNTER_NAMES)}
        return [(r[0], clamp_total(sum(r[index[n]] for n in wanted))) for r in reversed(rows)]
