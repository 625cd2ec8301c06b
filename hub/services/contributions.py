"""Members' contributions (PROTOCOL.md §10.8): a node's signed candidate entry, and
the operators' review of it.

A contribution passes, in the spec's order: the signature by the node's current
enrolled key, then the document's own rules (``protocol.contribution``); it names
the node the token authenticates; its ``seq`` strictly increases in a space of the
node's contributions (the same ``seq`` with the same bytes is a retry, answered as a
duplicate); then the hub's own rules, as for a public submission: each term in the
newest root's vocabulary, each quality at or above its type's floor, no degenerate
hash; a video's hash (``vpdq``) only when the hub holds its frames, which a
contribution cannot carry. A refused contribution is stored nowhere, so a node
cannot fill the review queue with what the hub would never list.

A stored one waits as ``received`` until an operator accepts it — one entry with
its hashes in the lists of the chosen collection that hold their types, of source
``member:<platform>`` so the published record names who said so — or rejects it.
The bytes and the sidecar stay with the row: they are what lets an auditor check
that the platform named really contributed the entry (docs/adr/0020). The
operator's note is the hub's own and never published.

The hub's policy may accept a contribution as it arrives instead
(``hub.services.contribution_policy``: a trusted platform, or a quorum of
platforms sending the same hash); an acceptance, the operator's or the policy's,
stages the entry by one path (``_accept_as_entry``), and the decision's ``who``
says which (``policy:trusted``, ``policy:quorum`` or the operator).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from hub.errors import (
    Conflict,
    Forbidden,
    HubError,
    InvalidRequest,
    NotFound,
    SeqConflict,
    Unauthorized,
    Unprocessable,
)
from hub.services.access import Access, Principal
from hub.services.context import HubContext
from hub.services.contribution_policy import (
    BY_QUORUM,
    BY_TRUST,
    Acceptance,
    ContributionPolicy,
)
from hub.services.entries import Entries, EntryDraft
from hub.services.frames import check_frames, degenerate_video
from hub.services.keys import Keys
from protocol import HASH_TYPES, ProtocolError, format_time
from protocol.contribution import Contribution, verify_contribution
from protocol.hashes import degenerate_reason

__all__ = [
    "CONTRIBUTION_STATUSES",
    "ContributionReceipt",
    "ContributionRecord",
    "ContributionStatus",
    "Contributions",
]

ContributionStatus = Literal["received", "accepted", "rejected"]
CONTRIBUTION_STATUSES: tuple[ContributionStatus, ...] = ("received", "accepted", "rejected")
MEMBER_SOURCE = "member"
"""The vocabulary's source kind of an entry a member platform contributed."""


@dataclass(frozen=True)
class ContributionReceipt:
    """What the hub did with one contribution (the 200 answer of §10.8)."""

    node: str
    seq: int
    duplicate: bool
    status: str

    def to_dict(self) -> dict[str, Any]:
        return {"accepted": True, **asdict(self)}


@dataclass(frozen=True)
class ContributionRecord:
    """One stored contribution, as the node's status and the operators' queue show it."""

    node: str
    seq: int
    platform: str
    sent: str
    received: str
    status: str
    entry: str | None
    decided: str | None
    category: str
    classification: str
    review: dict[str, str]
    hashes: dict[str, dict[str, Any]]
    who: str | None = None
    note: str | None = None

    def node_view(self) -> dict[str, Any]:
        """What the contributing node may read: the decision, never the operator's words.

        Once decided, ``who`` says how: the policy that accepted it, or ``operator`` —
        never which operator, whose name is the hub's own.
        """
        view: dict[str, Any] = {
            "node": self.node,
            "seq": self.seq,
            "status": self.status,
            "entry": self.entry,
            "decided": self.decided,
        }
        if self.decided is not None:
            view["who"] = self.who if self.who in (BY_TRUST, BY_QUORUM) else "operator"
        return view

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Contributions:
    """The ``contributions`` table: what nodes contributed and what the operators decided."""

    def __init__(self, ctx: HubContext, keys: Keys, access: Access, entries: Entries) -> None:
        self.ctx = ctx
        self.keys = keys
        self.access = access
        self.entries = entries
        self.policy = ContributionPolicy(ctx, entries)

    # -- taking one in ------------------------------------------------------------------

    def receive(self, principal: Principal, data: bytes, sig: bytes) -> ContributionReceipt:
        """Verify and store a node's contribution (the order is the module's docstring).

        Raises:
            Forbidden: not a node's token, or the document names another node.
            Unprocessable: a rule of §10.8 or of the hub broken (the rule's class named).
            SeqConflict: a ``seq`` used with other bytes, or not above the node's last.
        """
        if principal.kind != "node":
            raise Forbidden("contributions are sent with a node token")
        node = self.access.node(principal.subject)
        if node is None or node["revoked"]:
            raise Unauthorized("node is not enrolled")
        periods = self.access.key_periods(principal.subject)
        if not periods:
            raise Unauthorized("node has no enrolled key")
        try:
            contribution = verify_contribution(data, sig, node_key=periods[-1].key)
        except ProtocolError as e:
            raise _refused(type(e).__name__, str(e)) from e
        if contribution.node != principal.subject:
            raise Forbidden(
                f"contribution names node {contribution.node!r}, token is for {principal.subject!r}"
            )
        previous = self.ctx.one(
            "SELECT bytes, status FROM contributions WHERE node = ? AND seq = ?",
            [contribution.node, contribution.seq],
        )
        if previous is not None and bytes(previous["bytes"]) == data:
            return ContributionReceipt(
                contribution.node, contribution.seq, True, str(previous["status"])
            )
        last = self.last_seq(contribution.node)
        if previous is not None:
            raise SeqConflict(
                f"contribution seq {contribution.seq} was already used by node "
                f"{contribution.node} with other bytes; its last is {last}",
                last_seq=last,
            )
        if contribution.seq <= last:
            raise SeqConflict(
                f"contribution seq {contribution.seq} is not above node "
                f"{contribution.node}'s last {last}",
                last_seq=last,
            )
        self._check_hub_rules(contribution)
        with self.ctx.db.atomic():
            self.ctx.db.table("contributions").insert(
                {
                    "node": contribution.node,
                    "seq": contribution.seq,
                    "bytes": data,
                    "sig": sig,
                    "sent": format_time(contribution.sent),
                    "received": format_time(self.ctx.now()),
                    "platform": node["platform"],
                    "status": "received",
                }
            )
            self.ctx.db.conn.executemany(
                "INSERT INTO contribution_hashes (node, seq, hash_type, hash) VALUES (?, ?, ?, ?)",
                [
                    (contribution.node, contribution.seq, name, bytes.fromhex(given.hex))
                    for name, given in sorted(contribution.hashes.items())
                ],
            )
            status = self._by_policy(contribution)
        return ContributionReceipt(contribution.node, contribution.seq, False, status)

    def _by_policy(self, contribution: Contribution) -> str:
        """Accept the stored ``contribution`` (and what it completes) if the policy
        says so; its status. Should the entry the policy chose not stage (the rules
        of ``Entries.add`` are checked again there), the contribution waits for an
        operator, as it would without the policy, rather than being refused: it
        passed every rule of §10.8 and is kept."""
        row = self._waiting(contribution.node, contribution.seq)
        acceptance = self.policy.decide(row, contribution)
        if acceptance is None:
            return "received"
        try:
            with self.ctx.db.atomic():
                self._accept_as_entry(acceptance, onto_standing=True)
        except HubError:
            return "received"
        return "accepted"

    def last_seq(self, node: str) -> int:
        """The node's highest stored contribution ``seq`` (0 before its first)."""
        row = self.ctx.one(
            "SELECT COALESCE(MAX(seq), 0) AS last FROM contributions WHERE node = ?", [node]
        )
        return int(row["last"]) if row is not None else 0

    def _check_hub_rules(self, contribution: Contribution) -> None:
        """The hub's rules, as for a public submission (§6.1): vocabulary, floor, degenerate."""
        vocabulary = self.keys.root().vocabulary
        if vocabulary is None:
            raise _refused("VocabularyError", "the hub declares no vocabulary yet")
        if contribution.category not in vocabulary.categories:
            raise _refused(
                "VocabularyError", f"category {contribution.category!r} is not in the vocabulary"
            )
        if contribution.classification not in vocabulary.classifications:
            raise _refused(
                "VocabularyError",
                f"classification {contribution.classification!r} is not in the vocabulary",
            )
        for type_name, given in sorted(contribution.hashes.items()):
            kind = HASH_TYPES[type_name]
            floor = kind.min_quality
            if floor is not None and given.quality is not None and given.quality < floor:
                raise _refused(
                    "QualityError",
                    f"{type_name} quality {given.quality} is below the hub's floor {floor}",
                )
            if kind.frames:
                self._check_video(type_name, bytes.fromhex(given.hex))
                continue
            reason = degenerate_reason(type_name, bytes.fromhex(given.hex))
            if reason is not None:
                raise _refused("DegenerateHash", f"the {type_name} hash is degenerate: {reason}")

    def _check_video(self, type_name: str, record: bytes) -> None:
        """A video's hash (``vpdq``) in a contribution is its record hash alone: a
        contribution carries no frames (§10.8 bounds it to a few kilobytes, a video's
        frames run to 1.3 MB), and a record hash without its frames could never be
        published (PROTOCOL.md §6.3). So it is taken only when the hub already holds
        the frames it names (listed here, by a submission or from an upstream), and
        those frames could match (``degenerate_video``); refused otherwise, stored
        nowhere, as every refusal."""
        data = self.entries.frames.get(record)
        if data is None:
            raise _refused(
                "UnknownFrames",
                f"the hub holds no frames for the {type_name} hash {record.hex()}: a "
                "contribution carries no frames, so a video is contributed only once the "
                "hub holds them; send the video to the hub's operators",
            )
        reason = degenerate_video(check_frames(data))
        if reason is not None:
            raise _refused("DegenerateHash", f"the {type_name} hash is degenerate: {reason}")

    # -- reading --------------------------------------------------------------------------

    def status(self, node: str, seq: int) -> ContributionRecord:
        """One contribution of ``node``.

        Raises:
            NotFound: the node stored no contribution under ``seq``.
        """
        row = self.ctx.one("SELECT * FROM contributions WHERE node = ? AND seq = ?", [node, seq])
        if row is None:
            raise NotFound(f"node {node} has no contribution {seq}")
        return _record(row)

    def queue(
        self,
        limit: int = 100,
        *,
        status: ContributionStatus = "received",
        after: tuple[str, int] | None = None,
    ) -> list[ContributionRecord]:
        """Contributions of one status (waiting for review by default), by node and
        ``seq``, starting after ``after`` (the last of the previous page)."""
        node, seq = after if after is not None else ("", 0)
        rows = self.ctx.db.query(
            "SELECT * FROM contributions WHERE status = ? AND (node > ? OR (node = ? AND seq > ?)) "
            "ORDER BY node, seq LIMIT ?",
            [status, node, node, seq, limit],
        )
        return [_record(row) for row in rows]

    # -- the review -----------------------------------------------------------------------

    def accept(
        self, node: str, seq: int, list_id: str, who: str, note: str = ""
    ) -> ContributionRecord:
        """Accept a waiting contribution into the collection of ``list_id``: one entry
        with each of its hashes in the list of the collection that holds that type,
        source ``member:<platform>``; staged for the next publish.

        Raises:
            NotFound: no such contribution. Conflict: already decided.
            InvalidRequest: ``list_id`` is no entries list, or its collection holds
                none of the contribution's hash types; as ``Entries.add``.
        """
        row = self._waiting(node, seq)
        contribution = Contribution.from_bytes(bytes(row["bytes"]))
        hashes = {name: given.hex for name, given in contribution.hashes.items()}
        acceptance = Acceptance(
            who, list_id, (row,), hashes, contribution.classification, note=note
        )
        self._accept_as_entry(acceptance)
        return self.status(node, seq)

    def _accept_as_entry(self, acceptance: Acceptance, *, onto_standing: bool = False) -> str:
        """The one path by which contributions become an entry, the operator's and the
        policy's alike; the entry's id. Each hash goes to the list of the collection
        holding its type; the source is ``member:<platform>`` of the first row, the
        category theirs (one, by the policy's rules). Every row is marked accepted
        with the entry. ``onto_standing``: when a standing entry of the collection
        already holds one of the hashes, they are accepted onto it (the policy's
        rule) instead of an operator being told of the conflict.

        Raises:
            InvalidRequest: ``list_id`` is no entries list, or its collection holds
                none of the hashes' types; as ``Entries.add``.
        """
        first = Contribution.from_bytes(bytes(acceptance.rows[0]["bytes"]))
        list_id = acceptance.list_id
        self.entries.entries_spec(list_id)
        root = self.keys.root()
        pairs = tuple(
            (lid, acceptance.hashes[root.lists[lid].hash_type])
            for lid in self.entries.siblings(list_id)
            if root.lists[lid].hash_type in acceptance.hashes
        )
        if not pairs:
            raise InvalidRequest(
                f"the collection of list {list_id} holds none of the contribution's hash "
                f"types ({', '.join(sorted(acceptance.hashes))})"
            )
        entry = self._standing_entry(pairs) if onto_standing else None
        with self.ctx.db.atomic():
            if entry is None:
                draft = EntryDraft(
                    pairs,
                    category=first.category,
                    classification=acceptance.classification,
                    source=f"{MEMBER_SOURCE}:{acceptance.rows[0]['platform']}",
                )
                entry = self.entries.add(draft, acceptance.who, sourced=True).entry
            for row in acceptance.rows:
                self._decide(
                    row["node"],
                    row["seq"],
                    "accepted",
                    acceptance.who,
                    acceptance.note,
                    entry=entry,
                )
        return entry

    def _standing_entry(self, pairs: tuple[tuple[str, str], ...]) -> str | None:
        """The standing entry that already holds one of these (list, hex) pairs, if any."""
        for list_id, hex_hash in pairs:
            holder = self.entries._hash_holder(list_id, bytes.fromhex(hex_hash))
            if holder is not None:
                return holder
        return None

    def reject(self, node: str, seq: int, who: str, note: str = "") -> ContributionRecord:
        """Reject a waiting contribution: it is kept, as evidence of what was offered.

        Raises:
            NotFound: no such contribution. Conflict: already decided.
        """
        self._waiting(node, seq)
        with self.ctx.db.atomic():
            self._decide(node, seq, "rejected", who, note)
        return self.status(node, seq)

    def _waiting(self, node: str, seq: int) -> dict[str, Any]:
        row = self.ctx.one("SELECT * FROM contributions WHERE node = ? AND seq = ?", [node, seq])
        if row is None:
            raise NotFound(f"node {node} has no contribution {seq}")
        if row["status"] != "received":
            raise Conflict(f"contribution {node}/{seq} was already {row['status']}")
        return row

    def _decide(
        self, node: str, seq: int, status: str, who: str, note: str, *, entry: str | None = None
    ) -> None:
        self.ctx.db.execute(
            "UPDATE contributions SET status = ?, entry_id = ?, decided = ?, who = ?, note = ? "
            "WHERE node = ? AND seq = ?",
            [status, entry, format_time(self.ctx.now()), who, note or None, node, seq],
        )
        detail: dict[str, Any] = {"node": node, "seq": seq}
        if entry is not None:
            detail["entry"] = entry
        self.ctx.log(f"contribution.{status.removesuffix('ed')}", who, detail)


def _refused(rule: str, message: str) -> Unprocessable:
    """A 422 naming the rule broken, so a node's operator finds it without the hub's log."""
    return Unprocessable(f"contribution refused ({rule}): {message}")


def _record(row: dict[str, Any]) -> ContributionRecord:
    contribution = Contribution.from_bytes(bytes(row["bytes"]))
    return ContributionRecord(
        node=row["node"],
        seq=int(row["seq"]),
        platform=row["platform"],
        sent=row["sent"],
        received=row["received"],
        status=row["status"],
        entry=row["entry_id"],
        decided=row["decided"],
        category=contribution.category,
        classification=contribution.classification,
        review=contribution.review.to_dict(),
        hashes={t: h.to_dict() for t, h in sorted(contribution.hashes.items())},
        who=row["who"],
        note=row["note"],
    )
