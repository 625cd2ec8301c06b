"""Who may do what: enrolled nodes, operator tokens, and resolving a bearer token.

Tokens are shown once and stored as their SHA-256 (``tokens``); a node's token
carries the lists it was granted (``nodes``). An enrolled node can change without
being revoked: lists granted or taken away, a new key (``node_keys``: every key and
the ``seq`` it signs from, so earlier acks stay verifiable), a new token, a
suspension, the platform it belongs to; a revoked id can be enrolled again as a
new generation. Every change is logged in the action log, which auditors read.

A platform may run several nodes (replicas behind its own load balancer, each
following the hub and signing its own acks); ``platform`` names the one they
belong to, so the hub can count them together (``hub.services.platforms``). A
platform id follows the node id rule, and a node enrolled without one is its own
platform (its id), as every node enrolled before platforms existed is (m006).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from hub.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NodeSuspended,
    NotFound,
    Unauthorized,
)
from hub.services.context import HubContext
from hub.services.lists import Lists
from protocol import NodeKeyPeriod, PublicKey, format_time
from protocol.ack import NODE_ID_PATTERN

__all__ = [
    "OPERATOR_ROLES",
    "Access",
    "NodeKeyRecord",
    "NodeRecord",
    "OperatorRole",
    "OperatorTokenRecord",
    "Principal",
    "check_platform_id",
    "hash_token",
]

OperatorRole = Literal["admin", "publisher", "viewer", "auditor"]
OPERATOR_ROLES: tuple[OperatorRole, ...] = ("admin", "publisher", "viewer", "auditor")
"""admin: everything; publisher: stage and publish; viewer: read status; auditor: read acks."""


def _checked_id(kind: str, value: str) -> str:
    """A node or platform id as PROTOCOL.md spells a node id (``NODE_ID_PATTERN``), never ``..``."""
    if not NODE_ID_PATTERN.fullmatch(value) or ".." in value:
        raise InvalidRequest(f"invalid {kind} id {value[:80]!r}: [a-z0-9][a-z0-9._-]{{0,63}}")
    return value


def check_platform_id(value: str) -> str:
    """A platform id: the node id rule, so a node's own id is always a valid platform."""
    return _checked_id("platform", value)


def hash_token(token: str) -> str:
    """Tokens are 256-bit random strings, so one SHA-256 is a sufficient one-way store."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who a bearer token belongs to."""

    kind: Literal["operator", "node"]
    role: str
    """The operator's role, or ``node``."""
    subject: str
    """The operator's name or the node's id."""
    lists: frozenset[str] = frozenset()

    def require(self, *roles: str) -> None:
        """Refuse anyone but an operator with one of ``roles`` (admin may do anything)."""
        if self.kind != "operator" or (self.role != "admin" and self.role not in roles):
            raise Forbidden(
                f"this needs an operator token with role {' or '.join(roles) or 'admin'}"
            )


@dataclass(frozen=True)
class NodeKeyRecord:
    """One key a node signed acks with, and the ``seq`` numbers it signs."""

    keyid: str
    public_key: str
    first_seq: int
    last_seq: int | None
    """``None`` for the node's current key."""
    generation: int
    since: str
    reason: str
    """``enrol``, ``re-key`` or ``re-enrol``."""

    def period(self) -> NodeKeyPeriod:
        return NodeKeyPeriod(
            PublicKey(bytes.fromhex(self.public_key)), self.first_seq, self.last_seq
        )


@dataclass(frozen=True)
class NodeRecord:
    """An enrolled node as operators (and auditors, through the API) see it."""

    id: str
    platform: str
    """The platform the node serves; its own id unless enrolled or changed otherwise."""
    keyid: str
    public_key: str
    lists: list[str]
    created: str
    revoked: str | None
    last_seq: int
    generation: int
    suspended: str | None
    keys: list[NodeKeyRecord]
    """Every key the node had, oldest first: the last one is ``keyid``."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class OperatorTokenRecord:
    """An operator token by holder and role: never the token, only a fingerprint of its hash."""

    name: str
    role: str
    created: str
    revoked: str | None
    fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Access:
    """The ``nodes`` and ``tokens`` tables."""

    def __init__(self, ctx: HubContext, lists: Lists) -> None:
        self.ctx = ctx
        self.lists = lists

    def enrol_node(
        self,
        node_id: str,
        public_key: PublicKey,
        lists: Sequence[str],
        who: str = "operator",
        *,
        platform: str | None = None,
    ) -> str:
        """Enrol a platform's node; returns its bearer token (shown once, stored hashed).

        ``platform`` is the platform the node serves (``None``: the node is its own
        platform, its id). A revoked id may be enrolled again: a new generation, with
        the new key from the seq after the last one the hub holds (a fresh node that
        starts at seq 1 is told that seq by the hub's 409, PROTOCOL.md §10.6, and
        re-signs above it), so the earlier generation's acks stay verifiable under
        their key; it keeps its platform unless ``platform`` names another.
        """
        _checked_id("node", node_id)
        if platform is not None:
            check_platform_id(platform)
        for list_id in lists:
            self.lists.spec(list_id)
        granted = sorted(set(lists))
        existing = self.ctx.one("SELECT * FROM nodes WHERE id = ?", [node_id])
        if existing is not None and not existing["revoked"]:
            raise Conflict(
                f"node {node_id} is already enrolled: change it with grant, ungrant, "
                "rekey, token or suspend, or revoke it first"
            )
        token = "hhn_" + secrets.token_urlsafe(32)
        stamp = format_time(self.ctx.now())
        with self.ctx.db.atomic():
            if existing is None:
                generation, first_seq = 1, 1
                serves = platform or node_id
                self.ctx.db.table("nodes").insert(
                    {
                        "id": node_id,
                        "public_key": public_key.raw.hex(),
                        "lists": json.dumps(granted),
                        "created": stamp,
                        "platform": serves,
                    }
                )
            else:
                generation, first_seq = existing["generation"] + 1, existing["last_seq"] + 1
                serves = platform or existing["platform"] or node_id
                # A key whose period starts here signed nothing (the node never acked
                # under it): the new one replaces it, as a second rekey would.
                self.ctx.db.execute(
                    "DELETE FROM node_keys WHERE node = ? AND first_seq = ?", [node_id, first_seq]
                )
                self.ctx.db.execute(
                    "UPDATE nodes SET public_key = ?, lists = ?, revoked = NULL, "
                    "suspended = NULL, generation = ?, platform = ? WHERE id = ?",
                    [public_key.raw.hex(), json.dumps(granted), generation, serves, node_id],
                )
            self._add_key(
                node_id,
                public_key,
                first_seq,
                generation,
                stamp,
                "enrol" if existing is None else "re-enrol",
            )
            self._insert_token(token, "node", "node", node_id)
            detail: dict[str, Any] = {"node": node_id, "lists": granted, "keyid": public_key.keyid}
            if serves != node_id:
                detail["platform"] = serves
            if existing is not None:
                detail.update(generation=generation, first_seq=first_seq)
            self.ctx.log("node.enrol" if existing is None else "node.reenrol", who, detail)
        return token

    def revoke_node(self, node_id: str, who: str = "operator") -> None:
        """Revoke a node and its token; its acks stay, verifiable, in the ledger."""
        self._enrolled(node_id)
        stamp = format_time(self.ctx.now())
        with self.ctx.db.atomic():
            self.ctx.db.execute("UPDATE nodes SET revoked = ? WHERE id = ?", [stamp, node_id])
            self._revoke_node_tokens(node_id, stamp)
            self.ctx.log("node.revoke", who, {"node": node_id})

    def grant(self, node_id: str, lists: Sequence[str], who: str = "operator") -> list[str]:
        """Let an enrolled node read (and ack) more lists; returns its lists now."""
        current = set(self._lists_of(self._enrolled(node_id)))
        wanted = self._list_ids(lists)
        already = sorted(wanted & current)
        if already:
            raise Conflict(f"node {node_id} already has list {', '.join(already)}")
        return self._set_lists(node_id, current | wanted, "node.grant", wanted, who)

    def ungrant(self, node_id: str, lists: Sequence[str], who: str = "operator") -> list[str]:
        """Take lists away from an enrolled node: its next read of them is refused (403)."""
        current = set(self._lists_of(self._enrolled(node_id)))
        wanted = set(lists)
        if not wanted:
            raise InvalidRequest("name at least one list")
        missing = sorted(wanted - current)
        if missing:
            raise Conflict(f"node {node_id} does not have list {', '.join(missing)}")
        return self._set_lists(node_id, current - wanted, "node.ungrant", wanted, who)

    def rekey(self, node_id: str, public_key: PublicKey, who: str = "operator") -> NodeKeyRecord:
        """Give a node a new key, from the seq after the last ack the hub holds.

        The old key's acks stay verifiable under it; an ack it signs above its
        period is refused (PROTOCOL.md §10.4.1). A key set twice before the node
        sent an ack under the first replaces it: that key signed nothing.
        """
        node = self._enrolled(node_id)
        if node["public_key"] == public_key.raw.hex():
            raise Conflict(f"node {node_id} already has key {public_key.keyid[:16]}")
        first_seq = node["last_seq"] + 1
        stamp = format_time(self.ctx.now())
        with self.ctx.db.atomic():
            self.ctx.db.execute(
                "DELETE FROM node_keys WHERE node = ? AND first_seq = ?", [node_id, first_seq]
            )
            self._add_key(node_id, public_key, first_seq, node["generation"], stamp, "re-key")
            self.ctx.db.execute(
                "UPDATE nodes SET public_key = ? WHERE id = ?", [public_key.raw.hex(), node_id]
            )
            previous = PublicKey(bytes.fromhex(node["public_key"])).keyid
            self.ctx.log(
                "node.rekey",
                who,
                {
                    "node": node_id,
                    "keyid": public_key.keyid,
                    "previous": previous,
                    "first_seq": first_seq,
                },
            )
        return self.node_keys(node_id)[-1]

    def reissue_token(self, node_id: str, who: str = "operator") -> str:
        """A new token for an enrolled node; its old one stops working at once."""
        self._enrolled(node_id)
        token = "hhn_" + secrets.token_urlsafe(32)
        with self.ctx.db.atomic():
            self._revoke_node_tokens(node_id, format_time(self.ctx.now()))
            self._insert_token(token, "node", "node", node_id)
            self.ctx.log("node.token", who, {"node": node_id})
        return token

    def suspend(self, node_id: str, reason: str = "", who: str = "operator") -> None:
        """Refuse the node every request (403, with ``reason``) until it is resumed.

        Unlike a revocation, nothing is given up: the token, key, lists and seq stay,
        so ``resume`` is all it takes to let the node back in.
        """
        if len(reason) > 500 or any(ord(c) < 32 or 127 <= ord(c) < 160 for c in reason):
            raise InvalidRequest(
                "the reason is one line of at most 500 characters, without control characters"
            )
        node = self._enrolled(node_id)
        if node["suspended"]:
            raise Conflict(f"node {node_id} is already suspended (since {node['suspended']})")
        with self.ctx.db.atomic():
            self.ctx.db.execute(
                "UPDATE nodes SET suspended = ? WHERE id = ?",
                [format_time(self.ctx.now()), node_id],
            )
            self.ctx.log("node.suspend", who, {"node": node_id, "reason": reason})

    def resume(self, node_id: str, who: str = "operator") -> None:
        """End a suspension."""
        if not self._enrolled(node_id)["suspended"]:
            raise Conflict(f"node {node_id} is not suspended")
        with self.ctx.db.atomic():
            self.ctx.db.execute("UPDATE nodes SET suspended = NULL WHERE id = ?", [node_id])
            self.ctx.log("node.resume", who, {"node": node_id})

    def set_platform(self, node_id: str, platform: str, who: str = "operator") -> str:
        """Move an enrolled node to another platform; returns the platform it left.

        Only how the hub counts changes (the node's acks, counts and credentials
        stay): from now on its acks count toward ``platform``, and its past counts
        with it, since a platform's counts are the sum of its nodes'.
        """
        check_platform_id(platform)
        node = self._enrolled(node_id)
        previous = str(node["platform"])
        if previous == platform:
            raise Conflict(f"node {node_id} is already of platform {platform}")
        with self.ctx.db.atomic():
            self.ctx.db.execute("UPDATE nodes SET platform = ? WHERE id = ?", [platform, node_id])
            self.ctx.log(
                "node.platform", who, {"node": node_id, "platform": platform, "previous": previous}
            )
        return previous

    def node(self, node_id: str) -> dict[str, Any] | None:
        """The node's row of the ``nodes`` table, revoked or not."""
        return self.ctx.one("SELECT * FROM nodes WHERE id = ?", [node_id])

    def node_keys(self, node_id: str) -> list[NodeKeyRecord]:
        """Every key the node signed with, oldest first, each with its ``seq`` period."""
        rows = self.ctx.db.query(
            "SELECT * FROM node_keys WHERE node = ? ORDER BY first_seq", [node_id]
        )
        return _key_records(list(rows))

    def key_periods(self, node_id: str) -> list[NodeKeyPeriod]:
        """What an ack from the node is verified with (``protocol.verify_ack_by_periods``)."""
        return [k.period() for k in self.node_keys(node_id)]

    def nodes(self) -> list[NodeRecord]:
        """Every node ever enrolled, by id."""
        keys: dict[str, list[dict[str, Any]]] = {}
        for row in self.ctx.db.query("SELECT * FROM node_keys ORDER BY node, first_seq"):
            keys.setdefault(row["node"], []).append(row)
        return [
            NodeRecord(
                id=r["id"],
                platform=r["platform"],
                keyid=PublicKey(bytes.fromhex(r["public_key"])).keyid,
                public_key=r["public_key"],
                lists=json.loads(r["lists"]),
                created=r["created"],
                revoked=r["revoked"],
                last_seq=r["last_seq"],
                generation=r["generation"],
                suspended=r["suspended"],
                keys=_key_records(keys.get(r["id"], [])),
            )
            for r in self.ctx.db.query("SELECT * FROM nodes ORDER BY id")
        ]

    def _enrolled(self, node_id: str) -> dict[str, Any]:
        node = self.ctx.one("SELECT * FROM nodes WHERE id = ? AND revoked IS NULL", [node_id])
        if node is None:
            raise NotFound(f"no enrolled node {node_id!r}")
        return node

    @staticmethod
    def _lists_of(node: dict[str, Any]) -> list[str]:
        return list(json.loads(node["lists"]))

    def _list_ids(self, lists: Sequence[str]) -> set[str]:
        if not lists:
            raise InvalidRequest("name at least one list")
        for list_id in lists:
            self.lists.spec(list_id)
        return set(lists)

    def _set_lists(
        self, node_id: str, lists: set[str], action: str, changed: set[str], who: str
    ) -> list[str]:
        granted = sorted(lists)
        with self.ctx.db.atomic():
            self.ctx.db.execute(
                "UPDATE nodes SET lists = ? WHERE id = ?", [json.dumps(granted), node_id]
            )
            self.ctx.log(action, who, {"node": node_id, "lists": sorted(changed)})
        return granted

    def _add_key(
        self,
        node_id: str,
        key: PublicKey,
        first_seq: int,
        generation: int,
        stamp: str,
        reason: str,
    ) -> None:
        self.ctx.db.table("node_keys").insert(
            {
                "node": node_id,
                "first_seq": first_seq,
                "generation": generation,
                "public_key": key.raw.hex(),
                "since": stamp,
                "reason": reason,
            }
        )

    def _revoke_node_tokens(self, node_id: str, stamp: str) -> None:
        self.ctx.db.execute(
            "UPDATE tokens SET revoked = ? WHERE kind = 'node' AND subject = ? AND revoked IS NULL",
            [stamp, node_id],
        )

    def create_operator_token(self, role: str, subject: str, who: str = "operator") -> str:
        """A new operator token for ``subject`` with ``role`` (shown once, stored hashed)."""
        if role not in OPERATOR_ROLES:
            raise InvalidRequest(f"unknown operator role {role!r}; one of {OPERATOR_ROLES}")
        token = "hho_" + secrets.token_urlsafe(32)
        with self.ctx.db.atomic():
            self._insert_token(token, "operator", role, subject)
            self.ctx.log("token.create", who, {"role": role, "subject": subject})
        return token

    def operator_tokens(self) -> list[OperatorTokenRecord]:
        """Operator tokens by holder and role (never the tokens themselves)."""
        return [
            OperatorTokenRecord(
                name=r["subject"],
                role=r["role"],
                created=r["created"],
                revoked=r["revoked"],
                fingerprint=r["hash"][:12],
            )
            for r in self.ctx.db.query(
                "SELECT * FROM tokens WHERE kind = 'operator' ORDER BY created, subject"
            )
        ]

    def revoke_operator_tokens(self, name: str, who: str = "operator") -> int:
        """Revoke every live operator token held by ``name``; returns how many."""
        with self.ctx.db.atomic():
            count = self.ctx.db.execute(
                "UPDATE tokens SET revoked = ? "
                "WHERE kind = 'operator' AND subject = ? AND revoked IS NULL",
                [format_time(self.ctx.now()), name],
            ).rowcount
            if count == 0:
                raise NotFound(f"no live operator token for {name!r}")
            self.ctx.log("token.revoke", who, {"name": name, "tokens": count})
        return int(count)

    def _insert_token(self, token: str, kind: str, role: str, subject: str) -> None:
        self.ctx.db.table("tokens").insert(
            {
                "hash": hash_token(token),
                "kind": kind,
                "role": role,
                "subject": subject,
                "created": format_time(self.ctx.now()),
            }
        )

    def authenticate(self, token: str) -> Principal:
        """Resolve a bearer token; unknown or revoked tokens are ``Unauthorized``."""
        digest = hash_token(token)
        row = self.ctx.one("SELECT * FROM tokens WHERE hash = ? AND revoked IS NULL", [digest])
        # The lookup is by a one-way hash, so timing reveals nothing about stored tokens;
        # compare again in constant time anyway, as defence in depth.
        if row is None or not hmac.compare_digest(row["hash"], digest):
            raise Unauthorized("unknown or revoked token")
        if row["kind"] == "node":
            node = self.ctx.one(
                "SELECT lists, revoked, suspended FROM nodes WHERE id = ?", [row["subject"]]
            )
            if node is None or node["revoked"]:
                raise Unauthorized("node is revoked")
            if node["suspended"]:
                raise NodeSuspended(
                    f"node {row['subject']} is suspended by the hub operator since "
                    f"{node['suspended']}; ask them to resume it"
                )
            return Principal("node", "node", row["subject"], frozenset(json.loads(node["lists"])))
        return Principal("operator", row["role"], row["subject"])

    def may_read_list(self, principal: Principal | None, list_id: str) -> bool:
        """Public lists are for anyone; others for operators and the nodes granted them."""
        if self.lists.is_public(list_id):
            return True
        if principal is None:
            return False
        if principal.kind == "operator":
            return True
        return list_id in principal.lists


def _key_records(rows: Sequence[dict[str, Any]]) -> list[NodeKeyRecord]:
    """Key rows of one node, oldest first, each period ending where the next begins."""
    out = []
    for i, r in enumerate(rows):
        nxt = rows[i + 1]["first_seq"] - 1 if i + 1 < len(rows) else None
        out.append(
            NodeKeyRecord(
                keyid=PublicKey(bytes.fromhex(r["public_key"])).keyid,
                public_key=r["public_key"],
                first_seq=r["first_seq"],
                last_seq=nxt,
                generation=r["generation"],
                since=r["since"],
                reason=r["reason"],
            )
        )
    return out
