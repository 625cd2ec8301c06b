"""What the hub keeps to show others: refused acks as evidence, and the stored acks.

Evidence is kept once per distinct item and within a per-node cap, so no node can
grow the hub's storage without bound; what the cap dropped is counted. Both the
evidence and the acks are read back in pages bounded by rows and by bytes, so an
auditor can read every item however many there are.
"""

from __future__ import annotations

import builtins
import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

from hub.services.context import HubContext
from protocol import format_time
from protocol.ack import Ack

__all__ = [
    "ACK_PAGE_BYTES",
    "EVIDENCE_KINDS",
    "Evidence",
    "EvidenceItem",
    "EvidenceKind",
    "StoredAck",
]

EvidenceKind = Literal["unpublished_version", "split_view", "state_mismatch", "withheld_counts"]
"""What an evidence item shows: an ack of a version the hub never published, of another
checkpoint root (a split view) or state, or counter jumps withheld from the totals."""
EVIDENCE_KINDS: tuple[EvidenceKind, ...] = get_args(EvidenceKind)

ACK_PAGE_BYTES = 8 * 1024 * 1024
"""Ack or evidence bytes one page of ``/v1/admin/acks`` or ``/v1/admin/evidence`` holds,
at most (a page has at least one row): 1 MiB acks page by eight, not by a thousand."""


@dataclass(frozen=True)
class EvidenceItem:
    """One evidence item; ``bytes`` and ``sig`` are the refused ack as received (when read)."""

    id: int
    kind: EvidenceKind
    node: str
    list: str
    detail: dict[str, Any]
    created: str
    sha256: str | None
    bytes: bytes | None = None
    sig: builtins.bytes | None = None  # ``bytes`` is the field above by now

    def to_dict(self, *, with_bytes: bool = False) -> dict[str, Any]:
        """The item's fields; the ack's bytes and sidecar only ``with_bytes`` (the API's)."""
        out = asdict(self)
        if not with_bytes:
            del out["bytes"], out["sig"]
        return out


@dataclass(frozen=True)
class StoredAck:
    """One ack the hub took in, with its exact bytes and signature sidecar."""

    id: int
    node: str
    list: str
    seq: int
    version: int
    sent: str
    received: str
    bytes: bytes
    sig: builtins.bytes  # ``bytes`` is the field above by now

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Evidence:
    """The ``evidence`` and ``evidence_dropped`` tables, and pages of ``acks``."""

    def __init__(self, ctx: HubContext) -> None:
        self.ctx = ctx

    def keep_ack(
        self, kind: EvidenceKind, ack: Ack, detail: dict[str, Any], data: bytes, sig: bytes
    ) -> int | None:
        """Keep a refused ack's exact bytes and sidecar as evidence (``keep``)."""
        return self.keep(
            kind,
            ack.node,
            ack.list_id,
            detail,
            digest=hashlib.sha256(data).hexdigest(),
            data=data,
            sig=sig,
        )

    def keep(
        self,
        kind: EvidenceKind,
        node: str,
        list_id: str,
        detail: dict[str, Any],
        *,
        digest: str,
        data: bytes | None = None,
        sig: bytes | None = None,
    ) -> int | None:
        """Keep one evidence item once, within the node's cap; returns its id, or None.

        Identical evidence (same kind and node, same SHA-256 of the ack bytes) is
        stored once: a replay answers with the first row's id and adds no row and no
        log line. A node that already has ``max_evidence_per_node`` items gets no
        more; what it sent past the cap is counted in ``evidence_dropped`` (the first
        drop is logged), so the cap is on record and the hub's storage stays bounded.
        """
        ctx, cap = self.ctx, self.ctx.config.max_evidence_per_node
        with ctx.db.atomic():
            same = ctx.one(
                "SELECT id FROM evidence WHERE node = ? AND sha256 = ? AND kind = ?",
                [node, digest, kind],
            )
            if same is not None:
                return int(same["id"])
            held = ctx.one("SELECT count(*) AS n FROM evidence WHERE node = ?", [node])
            now = format_time(ctx.now())
            if held is not None and held["n"] >= cap:
                dropped = ctx.one("SELECT dropped FROM evidence_dropped WHERE node = ?", [node])
                ctx.db.execute(
                    "INSERT INTO evidence_dropped (node, dropped, first, last) "
                    "VALUES (?, 1, ?, ?) ON CONFLICT (node) DO UPDATE SET "
                    "dropped = dropped + 1, last = excluded.last",
                    [node, now, now],
                )
                if dropped is None:
                    ctx.log("evidence.cap", "hub", {"node": node, "cap": cap})
                return None
            evidence = (
                ctx.db.table("evidence")
                .insert(
                    {
                        "kind": kind,
                        "node": node,
                        "list_id": list_id,
                        "detail": json.dumps(detail),
                        "bytes": data,
                        "sig": sig,
                        "created": now,
                        "sha256": digest,
                    }
                )
                .last_pk
            )
            ctx.log("evidence", "hub", {"node": node, "list": list_id, "id": evidence})
        assert isinstance(evidence, int)
        return evidence

    def note(self, evidence: int | None, node: str) -> str:
        """How an error message says what became of the evidence (kept, or over the cap)."""
        if evidence is not None:
            return f"kept as evidence #{evidence}"
        return (
            f"not kept: node {node} has reached the cap of "
            f"{self.ctx.config.max_evidence_per_node} evidence items (the drop is counted)"
        )

    def items(
        self,
        *,
        include_bytes: bool = False,
        node: str | None = None,
        limit: int | None = None,
        before: int | None = None,
        max_bytes: int | None = None,
    ) -> list[EvidenceItem]:
        """Evidence rows; with ``include_bytes``, each one's exact ack bytes and signature.

        Without ``limit``, every row oldest first (the CLI); with it, a page newest
        first like ``acks``: rows whose ``id`` is below ``before``, at most ``limit``
        of them and, past the first, at most ``max_bytes`` of kept ack bytes.
        """
        rows: Iterable[dict[str, Any]]
        if limit is None:
            rows = self.ctx.db.query(
                "SELECT id, kind, node, list_id, detail, created, sha256, "
                "CASE WHEN :bytes THEN bytes END AS bytes, CASE WHEN :bytes THEN sig END AS sig "
                "FROM evidence WHERE (:node IS NULL OR node = :node) ORDER BY id",
                {"node": node, "bytes": include_bytes},
            )
        else:
            rows = self._page(
                "SELECT id, kind, node, list_id, detail, created, sha256, bytes, sig "
                "FROM evidence WHERE (:node IS NULL OR node = :node) "
                "AND (:before IS NULL OR id < :before) ORDER BY id DESC LIMIT :limit",
                {"node": node, "before": before, "limit": limit},
                max_bytes,
            )
        return [
            EvidenceItem(
                id=r["id"],
                kind=r["kind"],
                node=r["node"],
                list=r["list_id"],
                detail=json.loads(r["detail"]),
                created=r["created"],
                sha256=r["sha256"],
                bytes=None if r["bytes"] is None else bytes(r["bytes"]),
                sig=None if r["sig"] is None else bytes(r["sig"]),
            )
            for r in rows
        ]

    def dropped(self) -> dict[str, dict[str, Any]]:
        """Per node, the distinct evidence items not kept past ``max_evidence_per_node``."""
        return {
            r["node"]: {"dropped": r["dropped"], "first": r["first"], "last": r["last"]}
            for r in self.ctx.db.query("SELECT * FROM evidence_dropped ORDER BY node")
        }

    def acks(
        self,
        *,
        node: str | None = None,
        list_id: str | None = None,
        limit: int = 100,
        before: int | None = None,
        max_bytes: int | None = None,
    ) -> list[StoredAck]:
        """Stored acks, newest first, with their exact bytes and signature sidecar.

        ``before`` pages back: only acks whose ``id`` is below it (the last ``id`` of
        the previous page), so an auditor can read every ack however many there are.
        ``max_bytes`` ends a page early (after its first ack) once the acks' bytes
        pass it, so a page of 1 MiB acks stays a few MiB.
        """
        rows = self._page(
            "SELECT id, node, list_id, seq, version, sent, received, bytes, sig FROM acks "
            "WHERE (:node IS NULL OR node = :node) "
            "AND (:list IS NULL OR list_id = :list) AND (:before IS NULL OR id < :before) "
            "ORDER BY id DESC LIMIT :limit",
            {"node": node, "list": list_id, "limit": limit, "before": before},
            max_bytes,
        )
        return [
            StoredAck(
                id=r["id"],
                node=r["node"],
                list=r["list_id"],
                seq=r["seq"],
                version=r["version"],
                sent=r["sent"],
                received=r["received"],
                bytes=bytes(r["bytes"]),
                sig=bytes(r["sig"]),
            )
            for r in rows
        ]

    def older_rows(
        self,
        table: Literal["acks", "evidence"],
        below: int,
        *,
        node: str | None = None,
        list_id: str | None = None,
    ) -> bool:
        """Whether ``acks`` or ``evidence`` has a row (of ``node``, ``list_id``) below ``below``."""
        if table not in ("acks", "evidence"):
            raise ValueError(table)
        where = "" if list_id is None else "AND list_id = :list "
        row = self.ctx.db.execute(
            f"SELECT 1 FROM {table} WHERE id < :below "  # noqa: S608 (fixed names only)
            f"AND (:node IS NULL OR node = :node) {where}LIMIT 1",
            {"below": below, "node": node, "list": list_id},
        ).fetchone()
        return row is not None

    def _page(
        self, sql: str, params: dict[str, Any], max_bytes: int | None
    ) -> list[dict[str, Any]]:
        """The rows of ``sql`` (newest first) up to ``max_bytes`` of ``bytes``, at least one.

        Rows are read one at a time, so a page of big acks stops at the budget
        without reading (or holding) the rest.
        """
        out: list[dict[str, Any]] = []
        size = 0
        for r in self.ctx.db.query(sql, params):
            size += len(r["bytes"] or b"") + len(r["sig"] or b"")
            if out and max_bytes is not None and size > max_bytes:
                break
            out.append(r)
        return out
