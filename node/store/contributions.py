"""The platform's contributions to its hub, as signed and as the hub answered.

A contribution (PROTOCOL.md §10.8) is kept, bytes and sidecar, from the moment the node
signs it: a delivery that fails is retried with the same bytes under the same ``seq``
(the hub answers a retry as a duplicate), and a ``seq`` the hub says is stale is
re-signed above the hub's last (``node.contributions``). ``state``: ``pending`` until
the hub answers 200 (``delivered``) or refuses it for good (``refused``); ``answer``:
what it said.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from node.store.tables import Tables

__all__ = ["ContributionTables"]


class ContributionTables(Tables):
    """The ``contributions`` table, over the store's connection (``store.contributions``)."""

    def next_seq(self) -> int:
        row = self._one("SELECT max(seq) AS seq FROM contributions WHERE hub = ?", [self.hub])
        return int(row["seq"] or 0) + 1 if row is not None else 1

    def add(self, seq: int, data: bytes, sig: bytes, made: str) -> None:
        self.db.execute(
            "INSERT INTO contributions (hub, seq, bytes, sig, made, state) "
            "VALUES (?, ?, ?, ?, ?, 'pending')",
            [self.hub, seq, data, sig, made],
        )

    def pending(self) -> list[dict[str, Any]]:
        """The contributions not yet answered for good, in ``seq`` order."""
        return list(
            self.db.query(
                "SELECT * FROM contributions WHERE hub = ? AND state = 'pending' ORDER BY seq",
                [self.hub],
            )
        )

    def answered(self, seq: int, state: str, answer: str) -> None:
        self.db.execute(
            "UPDATE contributions SET state = ?, answer = ? WHERE hub = ? AND seq = ?",
            [state, answer, self.hub, seq],
        )

    def resigned(self, rows: Sequence[tuple[int, int, bytes, bytes]]) -> None:
        """Move pending contributions to new ``seq`` numbers with new bytes: (old seq,
        new seq, bytes, sidecar) each, highest first so no two rows meet."""
        for old, new, data, sig in sorted(rows, key=lambda r: r[1], reverse=True):
            self.db.execute(
                "UPDATE contributions SET seq = ?, bytes = ?, sig = ? WHERE hub = ? AND seq = ?",
                [new, data, sig, self.hub, old],
            )

    def listed(self) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT seq, made, state, answer FROM contributions WHERE hub = ? ORDER BY seq",
                [self.hub],
            )
        )
