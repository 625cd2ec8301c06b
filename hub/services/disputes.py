"""Disputes of entries, and the opinion summary each version of an entries list carries
(PROTOCOL.md §10.7).

Platforms say in their signed acks whether an entry was right (``opinions``); one
platform alone never marks an entry disputed for everyone. When the platforms
disputing an entry reach the root's ``dispute_threshold`` the hub **opens** a
dispute; an operator then **dismisses** it (the entry stays: who and when are
published) or **upholds** it (the entry is retracted as ``disputed`` from every
list of its collection). A dispute whose disputes fall below the threshold before
that is **withdrawn**; one whose entry leaves the lists for another reason (the person
withdrew it, it expired, an operator retracted it) has **ended** with it. Each end
takes it out of the next summary; the ``disputes``
table (m011) keeps its life, with the operator's note, which is never published.

The summary is built so an auditor holding the acks it names recomputes exactly
it: the cut is every node with a stored ack and its highest ``seq``, the voices
are the fold of ``protocol.fold_positions`` over the stored acks that carry
opinions. The hub keeps that fold as it goes, in ``entry_opinions`` (``keep``,
called for each ack stored: a platform's newest position per entry by the same
order), so a summary reads one row per platform and entry instead of parsing every
ack ever stored. The fold counts a node's acks for the platform the node belongs
to *now*: when the nodes' platforms are no longer those the table was kept under
(``hashhub node platform``, a re-enrolment), the table is folded again from the
acks before it is read (``_current_fold``). Disputes are counted from the same
rows, so the table and the summary never disagree on which entries are disputed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from hub.errors import Conflict, InvalidRequest
from hub.services.context import HubContext
from hub.services.entries import Entries
from protocol import (
    Ack,
    Dispute,
    EntryOpinions,
    EntryState,
    NodeCut,
    Opinion,
    OpinionSummary,
    format_time,
    parse_time,
    voices_of,
)
from protocol.opinions import Position

__all__ = [
    "DISPUTE_DECISIONS",
    "DISPUTE_STATES",
    "MAX_NOTE",
    "DisputeRecord",
    "Disputes",
    "account_of",
]

DISPUTE_STATES = ("open", "dismissed", "upheld", "withdrawn", "ended")
"""A dispute's states: the first two are live (in the summaries), the others ended."""
DISPUTE_DECISIONS = ("dismiss", "uphold")
"""What an operator decides of a dispute."""
MAX_NOTE = 1000
"""The longest note an operator keeps with a decision, in characters."""

_LIVE = ("open", "dismissed")
_NOT_BY = re.compile(r"[^A-Za-z0-9._@-]")


def account_of(who: str) -> str:
    """``who`` as a summary's ``by`` may spell it (an account name: letters, digits,
    ``.``, ``_``, ``@``, ``-``; at most 64): ``cli:alice`` is published as ``cli-alice``."""
    name = _NOT_BY.sub("-", who).lstrip("._@-")[:64]
    return name or "operator"


def _note(note: str | None) -> str | None:
    """An operator's note: text of at most ``MAX_NOTE`` characters, without control
    characters, that UTF-8 can hold (a command line may pass undecodable bytes)."""
    if note is None:
        return None
    if not isinstance(note, str):
        raise InvalidRequest("a note is text")
    if len(note) > MAX_NOTE:
        raise InvalidRequest(f"a note is at most {MAX_NOTE} characters, not {len(note)}")
    try:
        note.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest("a note must be UTF-8 text") from None
    if any((ord(c) < 0x20 and c not in "\n\t") or ord(c) == 0x7F for c in note):
        raise InvalidRequest("a note holds no control characters")
    return note


@dataclass(frozen=True)
class DisputeRecord:
    """One dispute as operators see it (the note included)."""

    id: int
    entry: str
    state: str
    opened: str
    closed: str | None
    by: str | None
    note: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> DisputeRecord:
        return cls(
            id=row["id"],
            entry=row["entry_id"],
            state=row["state"],
            opened=row["opened"],
            closed=row["closed"],
            by=row["by"],
            note=row["note"],
        )

    def published(self, created: datetime) -> Dispute:
        """What a summary made at ``created`` says of this live dispute. Times are
        kept within [opened, created], so a clock set back never makes a summary the
        rules refuse (a dispute dated after its summary, dismissed before opened)."""
        opened = min(parse_time(self.opened, "dispute: opened"), created)
        if self.state == "open" or self.closed is None:
            return Dispute("open", opened)
        dismissed = min(max(parse_time(self.closed, "dispute: closed"), opened), created)
        return Dispute("dismissed", opened, dismissed, self.by or "operator")


class Disputes:
    """The ``disputes`` table, and the opinion summaries built from the stored acks."""

    def __init__(self, ctx: HubContext, entries: Entries) -> None:
        self.ctx = ctx
        self.entries = entries

    # -- counting -----------------------------------------------------------------------

    def cut(self) -> dict[str, NodeCut]:
        """Every node with a stored ack: its platform now and its highest stored ``seq``."""
        return {
            str(r["node"]): NodeCut(str(r["platform"] or r["node"]), int(r["seq"]))
            for r in self.ctx.db.query(
                "SELECT a.node, MAX(a.seq) AS seq, n.platform FROM acks a "
                "LEFT JOIN nodes n ON n.id = a.node GROUP BY a.node ORDER BY a.node"
            )
        }

    def _opinion_acks(self) -> Iterator[Ack]:
        for row in self.ctx.db.query(
            "SELECT bytes FROM acks WHERE with_opinions = 1 ORDER BY node, seq"
        ):
            yield Ack.from_bytes(bytes(row["bytes"]))

    def keep(self, ack: Ack, platform: str | None = None) -> None:
        """Fold one stored ack's opinions into ``entry_opinions``: each as its
        platform's position on the entry, unless the platform already said something
        newer through any of its nodes or lists, newer by (``sent``, ``seq``, node id)
        — the order ``protocol.fold_positions`` folds in, so the summary is what an
        auditor folds. ``none`` is kept too: a position taken back is a position, and
        counts for nothing. ``platform``: the node's (default: its platform now)."""
        if not ack.opinions:
            return
        if platform is None:
            row = self.ctx.one("SELECT platform FROM nodes WHERE id = ?", [ack.node])
            platform = str(row["platform"]) if row is not None else ack.node
        sent = format_time(ack.sent)
        for entry_id, opinion in sorted(ack.opinions.items()):
            self.ctx.db.execute(
                "INSERT INTO entry_opinions (entry_id, platform, position, reason, list_id, "
                "node, seq, sent) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (entry_id, platform) DO UPDATE SET position = excluded.position, "
                "reason = excluded.reason, list_id = excluded.list_id, node = excluded.node, "
                "seq = excluded.seq, sent = excluded.sent "
                "WHERE excluded.sent > entry_opinions.sent OR (excluded.sent = "
                "entry_opinions.sent AND (excluded.seq > entry_opinions.seq OR "
                "(excluded.seq = entry_opinions.seq AND excluded.node > entry_opinions.node)))",
                [
                    entry_id,
                    platform,
                    opinion.position,
                    opinion.reason,
                    ack.list_id,
                    ack.node,
                    ack.seq,
                    sent,
                ],
            )
        self.ctx.db.execute(
            "INSERT INTO opinion_nodes (node, platform) VALUES (?, ?) "
            "ON CONFLICT (node) DO UPDATE SET platform = excluded.platform",
            [ack.node, platform],
        )

    def _current_fold(self) -> None:
        """Fold ``entry_opinions`` again from every stored ack that carries opinions when
        a node's acks were kept under another platform than its own now (it moved, or
        was enrolled again elsewhere) or never kept (acks stored before the table)."""
        stale = self.ctx.one(
            "SELECT 1 FROM opinion_nodes o JOIN nodes n ON n.id = o.node "
            "WHERE n.platform != o.platform LIMIT 1",
            [],
        ) or self.ctx.one(
            "SELECT 1 FROM (SELECT DISTINCT node FROM acks WHERE with_opinions = 1) a "
            "WHERE NOT EXISTS (SELECT 1 FROM opinion_nodes o WHERE o.node = a.node) LIMIT 1",
            [],
        )
        if stale is None:
            return
        with self.ctx.db.atomic():
            self.ctx.db.execute("DELETE FROM entry_opinions")
            self.ctx.db.execute("DELETE FROM opinion_nodes")
            platforms = {
                str(r["id"]): str(r["platform"])
                for r in self.ctx.db.query("SELECT id, platform FROM nodes")
            }
            for ack in self._opinion_acks():
                self.keep(ack, platforms.get(ack.node, ack.node))

    def positions(self) -> dict[str, dict[str, Position]]:
        """Each platform's newest position per entry over every stored ack (the cut
        ``cut()`` gives, read in the same transaction), from ``entry_opinions``: what
        ``protocol.fold_positions`` over those acks gives, and so what an auditor
        folds."""
        self._current_fold()
        out: dict[str, dict[str, Position]] = {}
        for r in self.ctx.db.query(
            "SELECT entry_id, platform, position, reason, node, seq, sent FROM entry_opinions"
        ):
            out.setdefault(str(r["entry_id"]), {})[str(r["platform"])] = Position(
                Opinion(str(r["position"]), r["reason"]),
                str(r["node"]),
                int(r["seq"]),
                parse_time(str(r["sent"]), "entry_opinions.sent"),
            )
        return out

    @staticmethod
    def _disputing(positions: Mapping[str, Mapping[str, Position]]) -> dict[str, int]:
        return {
            entry_id: sum(1 for p in said.values() if p.opinion.position == "disputed")
            for entry_id, said in positions.items()
        }

    # -- opening and withdrawing ----------------------------------------------------------

    def refresh(
        self,
        now: datetime,
        threshold: int,
        who: str = "scheduler",
        positions: Mapping[str, Mapping[str, Position]] | None = None,
    ) -> dict[str, list[str]]:
        """Open a dispute for each standing entry whose disputing platforms reached
        ``threshold`` and that has none open or dismissed; withdraw each such dispute
        whose disputes fell below it; end each such dispute whose entry was retracted
        for another reason than the dispute. Returns the entries ``opened``,
        ``withdrawn`` and ``ended``.

        ``positions`` are those a summary is being built from (default: folded here),
        so the summary and the table agree.
        """
        if positions is None:
            positions = self.positions()
        disputing = self._disputing(positions)
        stamp = format_time(now)
        with self.ctx.db.atomic():
            live = self._live()
            ended = sorted(e for e in live if not self._standing(e))
            for entry_id in ended:
                # Retracted as ``disputed`` by hand (``entry retract``) upholds it.
                row = self.ctx.one("SELECT retracted FROM entry_items WHERE id = ?", [entry_id])
                end = "upheld" if row is not None and row["retracted"] == "disputed" else "ended"
                self.ctx.db.execute(
                    "UPDATE disputes SET state = ?, closed = ? WHERE id = ?",
                    [end, stamp, live.pop(entry_id).id],
                )
            withdrawn = sorted(e for e in live if disputing.get(e, 0) < threshold)
            for entry_id in withdrawn:
                self.ctx.db.execute(
                    "UPDATE disputes SET state = 'withdrawn', closed = ? WHERE id = ?",
                    [stamp, live[entry_id].id],
                )
            due = sorted(e for e, n in disputing.items() if n >= threshold and e not in live)
            opened = [e for e in due if self._standing(e)]
            for entry_id in opened:
                self._open(entry_id, stamp)
            if opened or withdrawn or ended:
                self.ctx.log(
                    "dispute.refresh",
                    who,
                    {
                        "opened": opened,
                        "withdrawn": withdrawn,
                        "ended": ended,
                        "threshold": threshold,
                    },
                )
        return {"opened": opened, "withdrawn": withdrawn, "ended": ended}

    def _standing(self, entry_id: str) -> bool:
        row = self.ctx.one("SELECT retracted FROM entry_items WHERE id = ?", [entry_id])
        return row is not None and row["retracted"] is None

    def _open(self, entry_id: str, stamp: str) -> None:
        self.ctx.db.execute(
            "INSERT INTO disputes (entry_id, state, opened) VALUES (?, 'open', ?)",
            [entry_id, stamp],
        )

    def _live(self) -> dict[str, DisputeRecord]:
        return {
            str(r["entry_id"]): DisputeRecord.of(r)
            for r in self.ctx.db.query(
                "SELECT * FROM disputes WHERE state IN ('open', 'dismissed') ORDER BY id"
            )
        }

    # -- the summary ----------------------------------------------------------------------

    def summary(
        self,
        list_id: str,
        version: int,
        created: datetime,
        state: EntryState,
        threshold: int,
        who: str = "operator",
    ) -> OpinionSummary:
        """The opinion summary of ``list_id`` at ``version`` (made at ``created``,
        holding ``state``), in the caller's publish transaction: the cut and the voices
        from the stored acks, restricted to the entries the list holds, and each live
        dispute of an entry at or past ``threshold``."""
        cut = self.cut()
        positions = self.positions()
        self.refresh(created, threshold, who, positions)
        live = self._live()
        held = state.entry_ids()
        entries: dict[str, EntryOpinions] = {}
        for entry_id in sorted(held.intersection(positions)):
            said = voices_of(positions[entry_id])
            if not said.confirmed and not said.disputed:
                continue
            if len(said.disputed) >= threshold:
                record = live.get(entry_id)
                if record is None:  # a held entry already retracted: still disputed here
                    self._open(entry_id, format_time(created))
                    record = self._live()[entry_id]
                said = replace(said, dispute=record.published(created))
            entries[entry_id] = said
        return OpinionSummary(
            list_id=list_id,
            version=version,
            created=created,
            threshold=threshold,
            nodes=cut,
            entries=entries,
        )

    # -- the operator's decisions ---------------------------------------------------------

    def listed(self, state: str | None = None, limit: int = 100) -> list[DisputeRecord]:
        """Disputes, oldest first: of one ``state``, or all."""
        if state is not None and state not in DISPUTE_STATES:
            raise InvalidRequest(f"a dispute's state is one of {', '.join(DISPUTE_STATES)}")
        return [
            DisputeRecord.of(r)
            for r in self.ctx.db.query(
                "SELECT * FROM disputes WHERE (:state IS NULL OR state = :state) "
                "ORDER BY id LIMIT :limit",
                {"state": state, "limit": limit},
            )
        ]

    def newest(self, entry_ids: Sequence[str]) -> dict[str, DisputeRecord]:
        """Each of ``entry_ids``' newest dispute, live or ended (absent: never disputed),
        in one query whatever their number."""
        return {
            str(r["entry_id"]): DisputeRecord.of(r)
            for r in self.ctx.db.query(
                "SELECT * FROM disputes WHERE id IN (SELECT max(id) FROM disputes "
                "WHERE entry_id IN (SELECT value FROM json_each(?)) GROUP BY entry_id)",
                [json.dumps(list(entry_ids))],
            )
        }

    def of(self, entry_id: str) -> DisputeRecord | None:
        """An entry's newest dispute, live or ended; None when it was never disputed."""
        row = self.ctx.one(
            "SELECT * FROM disputes WHERE entry_id = ? ORDER BY id DESC LIMIT 1", [entry_id]
        )
        return None if row is None else DisputeRecord.of(row)

    def decide(
        self, entry_id: str, decision: str, note: str | None = None, who: str = "operator"
    ) -> DisputeRecord:
        """Dismiss (the entry stays; the summaries say who kept it and when) or uphold
        (the entry is retracted as ``disputed`` from every list of its collection, out
        with the next publish) ``entry_id``'s dispute; logged, the note with it.

        Raises:
            InvalidRequest: not a decision, not an entry id, or a bad note.
            NotFound: no such entry.
            Conflict: no open dispute to dismiss, or no live one to uphold.
        """
        if decision not in DISPUTE_DECISIONS:
            raise InvalidRequest(
                f"{str(decision)[:16]!r} is not a decision: one of {', '.join(DISPUTE_DECISIONS)}"
            )
        note = _note(note)
        self.entries.show(entry_id)  # InvalidRequest or NotFound before anything changes
        with self.ctx.db.atomic():
            record = self._live().get(entry_id)
            wanted = ("open",) if decision == "dismiss" else _LIVE
            if record is None or record.state not in wanted:
                now = "open" if decision == "dismiss" else "open or dismissed"
                raise Conflict(f"entry {entry_id} has no {now} dispute to {decision}")
            if decision == "uphold":
                self.entries.retract(entry_id, "disputed", who)
            self.ctx.db.execute(
                "UPDATE disputes SET state = ?, closed = ?, by = ?, note = ? WHERE id = ?",
                [
                    "dismissed" if decision == "dismiss" else "upheld",
                    format_time(self.ctx.now()),
                    account_of(who),
                    note,
                    record.id,
                ],
            )
            self.ctx.log(f"dispute.{decision}", who, {"entry": entry_id, "dispute": record.id})
        decided = self.of(entry_id)
        assert decided is not None
        return decided
