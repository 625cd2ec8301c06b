"""What the platforms say of a list's entries, as the newest verified opinion summary
says it (PROTOCOL.md §10.7): ``summary_opinions``.

One row per list and entry the summary speaks of: how many platforms confirm and
dispute it, with their reasons counted, and its dispute's state (``open``,
``dismissed``, or none). A match reads the rows of its entries (one query per batch
of hits) to say so in its answer, and the policy reads them to hold an entry whose
dispute is open.

The rows change only with a committed update, in its transaction
(``ListTables.commit_update``): a version with a summary replaces the list's rows
whole; one without keeps the rows of the entries still held, since the summary
they came from still speaks for them, and drops the others. The summary itself is
verified by the follower (``follow.update``) before it gets here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from node.store.tables import Tables
from protocol import OpinionSummary

__all__ = ["NO_STANCE", "OpinionTables", "Stance", "keep_held", "replace_summary"]


@dataclass(frozen=True)
class Stance:
    """What the platforms say of one entry: how many confirm and dispute it, and its
    dispute's state (``open``, ``dismissed``, or None)."""

    confirmed: int = 0
    disputed: int = 0
    dispute: str | None = None

    @property
    def open_dispute(self) -> bool:
        """Undecided: what a platform's policy may hold on (``policy disputed hold``)."""
        return self.dispute == "open"

    def to_dict(self) -> dict[str, Any]:
        """A match's ``opinions`` member."""
        return {"confirmed": self.confirmed, "disputed": self.disputed, "dispute": self.dispute}


NO_STANCE = Stance()
"""An entry no summary speaks of: nobody confirmed or disputed it."""


def replace_summary(db: sqlite_utils.Database, hub: str, summary: OpinionSummary) -> None:
    """The list's rows (of ``hub``) become ``summary``'s, in the caller's transaction."""
    db.execute("DELETE FROM summary_opinions WHERE hub = ? AND list_id = ?", [hub, summary.list_id])
    rows = []
    for entry_id, said in sorted(summary.entries.items()):
        reasons = {
            position: _counted(v.reason for v in voices.values())
            for position, voices in (("confirmed", said.confirmed), ("disputed", said.disputed))
        }
        rows.append(
            (
                hub,
                summary.list_id,
                entry_id,
                summary.version,
                len(said.confirmed),
                len(said.disputed),
                json.dumps(reasons, sort_keys=True),
                None if said.dispute is None else said.dispute.state,
            )
        )
    db.conn.executemany(
        "INSERT INTO summary_opinions "
        "(hub, list_id, entry, version, confirmed, disputed, reasons, dispute) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def keep_held(
    db: sqlite_utils.Database, hub: str, list_id: str, held: Callable[[], frozenset[str]]
) -> None:
    """Drop the list's rows of entries it no longer holds, in the caller's transaction.

    ``held`` is called only when the list has rows: the entry ids of a large state
    are not gathered for a list no summary spoke of.
    """
    stored = [
        r["entry"]
        for r in db.query(
            "SELECT entry FROM summary_opinions WHERE hub = ? AND list_id = ?", [hub, list_id]
        )
    ]
    if not stored:
        return
    ids = held()
    gone = [entry for entry in stored if entry not in ids]
    if gone:
        db.execute(
            "DELETE FROM summary_opinions WHERE hub = ? AND list_id = ? "
            "AND entry IN (SELECT value FROM json_each(?))",
            [hub, list_id, json.dumps(gone)],
        )


def _counted(reasons: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for reason in reasons:
        counts[reason] = counts.get(reason, 0) + 1
    return dict(sorted(counts.items()))


class OpinionTables(Tables):
    """The summaries' rows, over the store's connection (``store.opinions``)."""

    def stances(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Stance]:
        """The stance on each (list, entry) of ``pairs`` a summary speaks of, in one
        query (the others are ``NO_STANCE``: absent here)."""
        wanted = sorted(set(pairs))
        if not wanted:
            return {}
        return {
            (r["list_id"], r["entry"]): Stance(r["confirmed"], r["disputed"], r["dispute"])
            for r in self.db.query(
                "SELECT list_id, entry, confirmed, disputed, dispute FROM summary_opinions "
                "WHERE hub = ? AND (list_id, entry) IN (SELECT json_extract(value, '$[0]'), "
                "json_extract(value, '$[1]') FROM json_each(?))",
                [self.hub, json.dumps(wanted)],
            )
        }

    def rows(self, list_id: str) -> list[dict[str, Any]]:
        """Every row of a list, by entry, its reasons parsed: what the node holds."""
        return [
            r | {"reasons": json.loads(r["reasons"])}
            for r in self.db.query(
                "SELECT entry, version, confirmed, disputed, reasons, dispute "
                "FROM summary_opinions WHERE hub = ? AND list_id = ? ORDER BY entry",
                [self.hub, list_id],
            )
        ]
