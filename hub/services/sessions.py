"""Operators' dashboard logins: a session per login, ended with the token that opened it.

The session id is for the operator's cookie only: the database keeps its SHA-256,
with the form token every POST must carry.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from hub.errors import Forbidden, Unauthorized
from hub.services.access import Access, Principal, hash_token
from hub.services.context import HubContext
from protocol import format_time, parse_time

__all__ = ["WebSession", "WebSessions"]


@dataclass(frozen=True)
class WebSession:
    """An operator's dashboard login: who, the form token every POST must carry, until when."""

    principal: Principal
    csrf: str
    expires: datetime


class WebSessions:
    """The ``web_sessions`` table."""

    def __init__(self, ctx: HubContext, access: Access) -> None:
        self.ctx = ctx
        self.access = access

    def open(self, token: str) -> tuple[str, WebSession]:
        """Log an operator in to the dashboard with their token: a new session.

        Returns the session id (for the operator's cookie only: the database keeps
        its SHA-256) and the session. Sessions last ``web_session_seconds`` and end
        with the token that opened them.

        Raises:
            Unauthorized: an unknown or revoked token.
            Forbidden: a node's token.
        """
        principal = self.access.authenticate(token)
        if principal.kind != "operator":
            raise Forbidden("the dashboard is for operators; this is a node's token")
        session_id = secrets.token_urlsafe(32)
        now = self.ctx.now()
        session = WebSession(
            principal,
            csrf=secrets.token_urlsafe(32),
            expires=now + timedelta(seconds=self.ctx.config.web_session_seconds),
        )
        db = self.ctx.db
        with db.atomic():
            db.execute("DELETE FROM web_sessions WHERE expires <= ?", [format_time(now)])
            db.table("web_sessions").insert(
                {
                    "id_sha256": hash_token(session_id),
                    "token_hash": hash_token(token),
                    "csrf": session.csrf,
                    "created": format_time(now),
                    "expires": format_time(session.expires),
                }
            )
            self.ctx.log("web.login", principal.subject, {"role": principal.role})
        return session_id, session

    def get(self, session_id: str) -> WebSession:
        """The live session with this id, with its token's current role.

        Raises:
            Unauthorized: no such session, an expired one, or its token was revoked.
        """
        row = self.ctx.one(
            "SELECT s.csrf, s.expires, t.role, t.subject FROM web_sessions AS s "
            "JOIN tokens AS t ON t.hash = s.token_hash "
            "WHERE s.id_sha256 = ? AND t.kind = 'operator' AND t.revoked IS NULL "
            "AND s.expires > ?",
            [hash_token(session_id), format_time(self.ctx.now())],
        )
        if row is None:
            raise Unauthorized("not logged in, or the session has ended")
        return WebSession(
            Principal("operator", row["role"], row["subject"]),
            csrf=row["csrf"],
            expires=parse_time(row["expires"], "session"),
        )

    def close(self, session_id: str) -> None:
        """Log out: the session is deleted (an unknown id is a no-op)."""
        session = self.ctx.one(
            "SELECT t.subject FROM web_sessions AS s JOIN tokens AS t ON t.hash = s.token_hash "
            "WHERE s.id_sha256 = ?",
            [hash_token(session_id)],
        )
        if session is None:
            return
        with self.ctx.db.atomic():
            self.ctx.db.execute(
                "DELETE FROM web_sessions WHERE id_sha256 = ?", [hash_token(session_id)]
            )
            self.ctx.log("web.logout", session["subject"], {})
