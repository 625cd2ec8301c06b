"""Taking in nodes' signed acks (PROTOCOL.md §10.5).

An ack passes, in order: the signature and co-signature by the node's enrolled
key; it names the authenticated node and a list it was granted; its ``seq``
strictly increases (the same ``seq`` with the same bytes is an idempotent retry);
the version it applied exists, with the root and state the hub published —
otherwise it is kept as evidence of a split view and refused; its per-hash keys
are hashes the list held. Then it is stored and its counters go to the ledger.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.errors import Forbidden, HubError, SeqConflict, Unauthorized, Unprocessable
from hub.services.access import Access, Principal
from hub.services.context import HubContext
from hub.services.disputes import Disputes
from hub.services.evidence import Evidence
from hub.services.keys import Keys
from hub.services.ledger import Ledger
from hub.services.lists import Lists
from protocol import HASH_TYPES, NodeKeyPeriod, ProtocolError, format_time
from protocol.ack import Ack, verify_ack_by_periods
from protocol.counters import counter_rows

__all__ = ["AckIntake", "AckReceipt"]

_KEY_CHUNK = 500
"""Per-hash keys looked up in the entries table per query (well under SQLite's cap)."""


@dataclass(frozen=True)
class AckReceipt:
    """What the hub did with one ack."""

    node: str
    list_id: str
    seq: int
    duplicate: bool = False
    evidence_id: int | None = None
    withheld: Mapping[str, int] = field(default_factory=dict)
    """Counter jumps this ack made that were not counted (name: amount), ADR 0010."""


class AckIntake:
    """The ``acks`` table, and the ``last_seq`` of each node."""

    def __init__(
        self,
        ctx: HubContext,
        keys: Keys,
        lists: Lists,
        access: Access,
        ledger: Ledger,
        evidence: Evidence,
        disputes: Disputes,
    ) -> None:
        self.ctx = ctx
        self.disputes = disputes
        self.keys = keys
        self.lists = lists
        self.access = access
        self.ledger = ledger
        self.evidence = evidence
        self._relaxed_depth = 0

    def receive(self, principal: Principal, data: bytes, sig: bytes) -> AckReceipt:
        """Verify and store a node's signed ack (the order is the module's docstring)."""
        if principal.kind != "node":
            raise Forbidden("acks are sent with a node token")
        node = self.access.node(principal.subject)
        if node is None or node["revoked"]:
            raise Unauthorized("node is not enrolled")
        ack = self._verified(principal, node, data, sig)
        previous = self.ctx.one(
            "SELECT bytes FROM acks WHERE node = ? AND seq = ?", [ack.node, ack.seq]
        )
        if previous is not None and bytes(previous["bytes"]) == data:
            return AckReceipt(ack.node, ack.list_id, ack.seq, duplicate=True)
        self._check_seq(ack, node["last_seq"], reused=previous is not None)
        self._check_published(ack, data, sig)
        self._check_hash_keys(ack)
        self._check_opinions(ack)
        return self._store(ack, data, sig)

    def receive_batch(
        self, items: Sequence[tuple[str, bytes, bytes, Exception | None]]
    ) -> list[AckReceipt | Exception]:
        """Authenticate and receive a batch of acks in one transaction.

        Each item is ``(bearer token, ack bytes, signature sidecar, request error)``;
        a request error (a bad body found before the token could be checked) is
        reported only after the token passed, so the order of answers is the same as
        for one ack. Each ack is all or nothing on its own (a savepoint); the batch
        commits once, which is what lets a busy hub keep up with many nodes.
        """
        out: list[AckReceipt | Exception] = []
        with self._relaxed_sync(), self.ctx.db.atomic():
            for token, data, sig, request_error in items:
                try:
                    principal = self.access.authenticate(token)
                    if principal.kind != "node":
                        raise Forbidden("acks are sent with a node token, not an operator token")
                    if request_error is not None:
                        out.append(request_error)
                        continue
                    out.append(self.receive(principal, data, sig))
                except HubError as e:
                    out.append(e)
        return out

    # -- the checks, in order -------------------------------------------------------------

    def _verified(
        self, principal: Principal, node: Mapping[str, Any], data: bytes, sig: bytes
    ) -> Ack:
        """The ack, if the node's key for its seq signed it for a list the node was granted."""
        periods = self.access.key_periods(node["id"])
        if periods:
            # The current key is taken below its period too (PROTOCOL.md §10.4.1): such
            # a seq is at or below the node's last, so §10.5.2 answers it 409 with the
            # last seq, which is how a node that counts from 1 again catches up.
            periods[-1] = NodeKeyPeriod(periods[-1].key, 1)
        try:
            ack = verify_ack_by_periods(
                data, sig, periods=periods, origin_prefix=self.keys.root().name
            )
        except ProtocolError as e:
            # The error class is the spec's name for the rule broken (PROTOCOL.md §10.4),
            # so a node's operator can find it without the hub's log.
            raise Unprocessable(f"ack refused ({type(e).__name__}): {e}") from e
        if ack.node != principal.subject:
            raise Forbidden(f"ack names node {ack.node!r}, token is for {principal.subject!r}")
        if ack.list_id not in principal.lists:
            raise Forbidden(f"node {ack.node} is not granted list {ack.list_id}")
        return ack

    def _check_seq(self, ack: Ack, last_seq: int, *, reused: bool) -> None:
        """Refuse a ``seq`` used before with other bytes, or not above the node's last."""
        if reused:
            raise SeqConflict(
                f"seq {ack.seq} was already used by node {ack.node} with other bytes; "
                f"its last seq is {last_seq}",
                last_seq=last_seq,
            )
        if ack.seq <= last_seq:
            raise SeqConflict(
                f"seq {ack.seq} is not above node {ack.node}'s last seq {last_seq}",
                last_seq=last_seq,
            )

    def _check_published(self, ack: Ack, data: bytes, sig: bytes) -> None:
        """Refuse, and keep as evidence, an ack of a version or view the hub never published.

        A node co-signing a version this hub never published was shown another log
        (or a longer fork of this one); one co-signing another root or state for a
        published version was shown a split view.
        """
        log = self.ctx.one(
            "SELECT root, result_count, result_sha256 FROM log_roots "
            "WHERE list_id = ? AND size = ?",
            [ack.list_id, ack.applied.version],
        )
        if log is None:
            evidence = self.evidence.keep_ack(
                "unpublished_version",
                ack,
                {
                    "version": ack.applied.version,
                    "cosigned_root": ack.applied.checkpoint_root.hex(),
                },
                data,
                sig,
            )
            raise Unprocessable(
                f"list {ack.list_id} has no published version {ack.applied.version}; "
                f"the ack is {self.evidence.note(evidence, ack.node)}"
            )
        mismatch = []
        if bytes(log["root"]) != ack.applied.checkpoint_root:
            mismatch.append("checkpoint root")
        if (log["result_count"], log["result_sha256"]) != (
            ack.applied.state.count,
            ack.applied.state.sha256,
        ):
            mismatch.append("state")
        if not mismatch:
            return
        evidence = self.evidence.keep_ack(
            "split_view" if "checkpoint root" in mismatch else "state_mismatch",
            ack,
            {
                "version": ack.applied.version,
                "mismatch": mismatch,
                "published_root": bytes(log["root"]).hex(),
                "cosigned_root": ack.applied.checkpoint_root.hex(),
            },
            data,
            sig,
        )
        raise Unprocessable(
            f"ack from {ack.node} co-signs a {' and '.join(mismatch)} the hub never published "
            f"for {ack.list_id} v{ack.applied.version}; "
            f"{self.evidence.note(evidence, ack.node)}"
        )

    def _check_hash_keys(self, ack: Ack) -> None:
        """Refuse per-hash counters for anything but hashes of the list (PROTOCOL.md §10.5).

        A per-hash key must be a hash of the list's width that the list held at the
        acked version or before it (a hash retracted since still collects the false
        positives that got it retracted). Looked up by (list, hash) in ``entries``, or
        for a list of entries in ``entry_records``.

        Raises:
            Unprocessable: a key of another width, or one the list never held.
        """
        keys = sorted(ack.counts.hashes)
        if not keys:
            return
        spec = self.lists.spec(ack.list_id)
        width = HASH_TYPES[spec.hash_type].length
        wrong = [k for k in keys if len(k) != 2 * width]
        if wrong:
            raise Unprocessable(
                f"ack refused: per-hash key {wrong[0]} is not a {spec.hash_type} hash "
                f"({2 * width} hex digits) of list {ack.list_id}; "
                f"{len(wrong)} of {len(keys)} keys are of another width"
            )
        version = ack.applied.version
        # A list of entries keeps what it signed in ``entry_records`` (each record with
        # the version that added it), a list of bare hashes in ``entries``.
        table = "entry_records" if spec.entries else "entries"
        held = self._held(table, "hash", ack, [bytes.fromhex(k) for k in keys])
        missing = [k for k in keys if bytes.fromhex(k) not in held]
        if missing:
            raise Unprocessable(
                f"ack refused: per-hash key {missing[0]} is not a hash list {ack.list_id} "
                f"held at or before version {version} ({len(missing)} of {len(keys)} keys "
                "are not); per-hash counters are for listed hashes only"
            )

    def _check_opinions(self, ack: Ack) -> None:
        """Refuse opinions on anything but entries the list held (PROTOCOL.md §10.1): an
        opinion is only for a list of entries, on an entry whose record the list held
        at the acked version or before it (a retracted entry still collects the
        disputes that got it retracted).

        Raises:
            Unprocessable: opinions in an ack of a bare-hash list, or on an entry the
                list never held.
        """
        if not ack.opinions:
            return
        if not self.lists.spec(ack.list_id).entries:
            raise Unprocessable(
                f"ack refused: opinions are on entries, and {ack.list_id} is a list of bare hashes"
            )
        entries = sorted(ack.opinions)
        held = self._held("entry_records", "entry_id", ack, entries)
        missing = [e for e in entries if e not in held]
        if missing:
            raise Unprocessable(
                f"ack refused: an opinion on entry {missing[0]}, which list {ack.list_id} "
                f"did not hold at or before version {ack.applied.version} "
                f"({len(missing)} of {len(entries)} are not)"
            )

    def _held(
        self, table: str, column: str, ack: Ack, values: Sequence[bytes] | Sequence[str]
    ) -> set[Any]:
        """Which of ``values`` (of ``column``: a hash, an entry id) ``table`` says the
        ack's list held at or before the acked version, asked in chunks of
        ``_KEY_CHUNK`` parameters."""
        held: set[Any] = set()
        for start in range(0, len(values), _KEY_CHUNK):
            chunk = list(values[start : start + _KEY_CHUNK])
            marks = ", ".join("?" * len(chunk))  # placeholders only: the values are parameters
            held.update(
                r[0] if isinstance(r[0], str) else bytes(r[0])
                for r in self.ctx.db.execute(
                    f"SELECT DISTINCT {column} FROM {table} WHERE list_id = ? "  # noqa: S608
                    f"AND added_version <= ? AND {column} IN ({marks})",
                    [ack.list_id, ack.applied.version, *chunk],
                ).fetchall()
            )
        return held

    # -- keeping it -----------------------------------------------------------------------

    def _store(self, ack: Ack, data: bytes, sig: bytes) -> AckReceipt:
        """Store the ack, move the node's ``last_seq`` and count it, in one transaction;
        ``with_opinions`` marks the acks an opinion summary folds (m011)."""
        db = self.ctx.db
        with self._relaxed_sync(), db.atomic():
            received = format_time(self.ctx.now())
            db.execute(
                "INSERT INTO acks (node, list_id, seq, bytes, sig, received, sent, version, "
                "checkpoint_root, state_count, state_sha256, counts, with_opinions) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    ack.node,
                    ack.list_id,
                    ack.seq,
                    data,
                    sig,
                    received,
                    format_time(ack.sent),
                    ack.applied.version,
                    ack.applied.checkpoint_root,
                    ack.applied.state.count,
                    ack.applied.state.sha256,
                    json.dumps(ack.counts.to_dict(), sort_keys=True),
                    1 if ack.opinions else 0,
                ],
            )
            ack_id = db.execute("SELECT last_insert_rowid()").fetchone()[0]
            db.execute("UPDATE nodes SET last_seq = ? WHERE id = ?", [ack.seq, ack.node])
            self.disputes.keep(ack)
            held_back = self.ledger.count(ack.node, ack.list_id, counter_rows(ack.counts))
            withheld = held_back.pop("", {})
            self.ledger.count_point(ack.list_id, received)
            evidence_id = None
            if withheld or held_back:
                evidence_id = self._keep_withheld(ack, ack_id, withheld, held_back, data)
        return AckReceipt(
            ack.node, ack.list_id, ack.seq, evidence_id=evidence_id, withheld=withheld
        )

    def _keep_withheld(
        self,
        ack: Ack,
        ack_id: int,
        withheld: dict[str, int],
        held_back: dict[str, dict[str, int]],
        data: bytes,
    ) -> int | None:
        """Keep the counter jumps the ledger did not count as evidence (ADR 0010)."""
        detail: dict[str, Any] = {
            "ack": ack_id,
            "seq": ack.seq,
            "withheld": withheld,
            "max_counter_growth": self.ctx.config.max_counter_growth,
            "counter_window_seconds": self.ctx.config.counter_window_seconds,
        }
        if held_back:
            detail["withheld_hashes"] = held_back
        return self.evidence.keep(
            "withheld_counts",
            ack.node,
            ack.list_id,
            detail,
            digest=hashlib.sha256(data).hexdigest(),
        )

    @contextlib.contextmanager
    def _relaxed_sync(self) -> Iterator[None]:
        """Commit without waiting for the disk (SQLite ``synchronous=NORMAL`` in WAL mode).

        Only for storing acks: after a power cut the last confirmed acks may be lost,
        but the database stays consistent and the next ack from each node carries its
        cumulative totals again (ADR 0010). Everything that publishes, enrols or
        changes keys keeps ``synchronous=FULL``: a version served and then lost could
        be re-published differently, which nodes would rightly call equivocation.
        """
        db = self.ctx.db
        if self._relaxed_depth == 0 and not db.conn.in_transaction:
            db.execute("PRAGMA synchronous=NORMAL")
        self._relaxed_depth += 1
        try:
            yield
        finally:
            self._relaxed_depth -= 1
            if self._relaxed_depth == 0 and not db.conn.in_transaction:
                db.execute("PRAGMA synchronous=FULL")
