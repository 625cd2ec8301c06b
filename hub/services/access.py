"""Who may do what: enrolled nodes, operator tokens, and resolving a bearer token.

Tokens are shown once and stored as their SHA-256 (``tokens``); a node's token
carries the lists it was granted (``nodes``). Every change is logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from hub.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized
from hub.services.context import HubContext
from hub.services.lists import Lists
from protocol import PublicKey, format_time
from protocol.ack import NODE_ID_PATTERN

__all__ = [
    "OPERATOR_ROLES",
    "Access",
    "NodeRecord",
    "OperatorRole",
    "OperatorTokenRecord",
    "Principal",
    "hash_token",
]

OperatorRole = Literal["admin", "publisher", "viewer", "auditor"]
OPERATOR_ROLES: tuple[OperatorRole, ...] = ("admin", "publisher", "viewer", "auditor")
"""admin: everything; publisher: stage and publish; viewer: read status; auditor: read acks."""


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
class NodeRecord:
    """An enrolled node as operators see it."""

    id: str
    keyid: str
    public_key: str
    lists: list[str]
    created: str
    revoked: str | None
    last_seq: int

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
        self, node_id: str, public_key: PublicKey, lists: Sequence[str], who: str = "operator"
    ) -> str:
        """Enrol a platform's node; returns its bearer token (shown once, stored hashed)."""
        if not NODE_ID_PATTERN.fullmatch(node_id) or ".." in node_id:
            raise InvalidRequest(f"invalid node id {node_id!r}: [a-z0-9][a-z0-9._-]{{0,63}}")
        for list_id in lists:
            self.lists.spec(list_id)
        if self.ctx.one("SELECT id FROM nodes WHERE id = ?", [node_id]):
            raise Conflict(f"node {node_id} is already enrolled")
        token = "hhn_" + secrets.token_urlsafe(32)
        with self.ctx.db.atomic():
            self.ctx.db.table("nodes").insert(
                {
                    "id": node_id,
                    "public_key": public_key.raw.hex(),
                    "lists": json.dumps(sorted(set(lists))),
                    "created": format_time(self.ctx.now()),
                }
            )
            self._insert_token(token, "node", "node", node_id)
            self.ctx.log("node.enrol", who, {"node": node_id, "lists": sorted(set(lists))})
        return token

    def revoke_node(self, node_id: str, who: str = "operator") -> None:
        """Revoke a node and its token; its acks stay, verifiable, in the ledger."""
        if not self.ctx.one("SELECT id FROM nodes WHERE id = ? AND revoked IS NULL", [node_id]):
            raise NotFound(f"no enrolled node {node_id!r}")
        stamp = format_time(self.ctx.now())
        with self.ctx.db.atomic():
            self.ctx.db.execute("UPDATE nodes SET revoked = ? WHERE id = ?", [stamp, node_id])
            self.ctx.db.execute(
                "UPDATE tokens SET revoked = ? WHERE kind = 'node' AND subject = ?",
                [stamp, node_id],
            )
            self.ctx.log("node.revoke", who, {"node": node_id})

    def node(self, node_id: str) -> dict[str, Any] | None:
        """The node's row of the ``nodes`` table, revoked or not."""
        return self.ctx.one("SELECT * FROM nodes WHERE id = ?", [node_id])

    def nodes(self) -> list[NodeRecord]:
        """Every node ever enrolled, by id."""
        return [
            NodeRecord(
                id=r["id"],
                keyid=PublicKey(bytes.fromhex(r["public_key"])).keyid,
                public_key=r["public_key"],
                lists=json.loads(r["lists"]),
                created=r["created"],
                revoked=r["revoked"],
                last_seq=r["last_seq"],
            )
            for r in self.ctx.db.query("SELECT * FROM nodes ORDER BY id")
        ]

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
            node = self.ctx.one("SELECT lists, revoked FROM nodes WHERE id = ?", [row["subject"]])
            if node is None or node["revoked"]:
                raise Unauthorized("node is revoked")
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
