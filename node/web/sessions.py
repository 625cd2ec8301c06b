"""The status page's login sessions and its throttle on wrong tokens.

An operator types the node's local API token once into the login form; the node
answers with a random session id in an HttpOnly, SameSite=Strict cookie and keeps,
in memory, only the SHA-256 of that id with a CSRF token of its own. So:

- the API token never travels again after the login, and never in a URL;
- a copy of the node's memory or log holds no usable cookie;
- a restart of the node logs every operator out (the safe direction);
- every POST must carry the session's CSRF token in its form, besides the cookie.

A session ends after ``idle`` seconds without a request or ``lifetime`` seconds
after the login, whichever comes first. At most ``capacity`` sessions are kept;
the oldest goes first. The clock is injectable and monotonic, so moving the
node's trust clock (a test making the node stale) does not log anyone out.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from protocol.authshape import session_id as shaped_session_id

__all__ = ["LoginThrottle", "PageSession", "SessionStore"]

SESSION_IDLE = 60 * 60
"""Seconds without a request after which a session ends."""
SESSION_LIFETIME = 12 * 60 * 60
"""Seconds after the login after which a session ends, however busy."""
MAX_SESSIONS = 64

Clock = Callable[[], float]


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass
class PageSession:
    """One logged-in operator: the CSRF token its forms carry, and notices to show once."""

    csrf: str
    created: float
    seen: float
    notices: list[str] = field(default_factory=list)

    def csrf_matches(self, sent: str | None) -> bool:
        """Whether a form's CSRF token is this session's (compared in constant time)."""
        shaped = shaped_session_id(sent)  # the shape of a value this node issued
        if shaped is None:
            return False
        return hmac.compare_digest(shaped.encode("ascii"), self.csrf.encode())

    def take_notices(self) -> list[str]:
        taken, self.notices = self.notices, []
        return taken


class SessionStore:
    """Sessions by the SHA-256 of their cookie value (see the module docstring).

    Args:
        clock: monotonic seconds.
        idle: seconds without a request after which a session ends.
        lifetime: seconds after the login after which a session ends.
        capacity: sessions kept at most; a new login pushes out the oldest.
    """

    def __init__(
        self,
        *,
        clock: Clock = time.monotonic,
        idle: float = SESSION_IDLE,
        lifetime: float = SESSION_LIFETIME,
        capacity: int = MAX_SESSIONS,
    ) -> None:
        self._clock = clock
        self._idle = idle
        self._lifetime = lifetime
        self._capacity = capacity
        self._sessions: OrderedDict[str, PageSession] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def open(self) -> tuple[str, PageSession]:
        """A new session: its cookie value (given to the browser only) and its record."""
        now = self._clock()
        session_id = secrets.token_urlsafe(32)
        session = PageSession(csrf=secrets.token_urlsafe(32), created=now, seen=now)
        self._sessions[_digest(session_id)] = session
        while len(self._sessions) > self._capacity:
            self._sessions.popitem(last=False)
        return session_id, session

    def get(self, cookie: str | None) -> PageSession | None:
        """The live session of a cookie value, or ``None``; a request keeps it alive.

        A value of the wrong shape (``protocol.authshape.session_id``: not visible
        ASCII, too long) is no session, before anything encodes it.
        """
        shaped = shaped_session_id(cookie)
        if shaped is None:
            return None
        key = _digest(shaped)
        session = self._sessions.get(key)
        if session is None:
            return None
        now = self._clock()
        if now - session.seen > self._idle or now - session.created > self._lifetime:
            del self._sessions[key]
            return None
        session.seen = now
        return session

    def close(self, cookie: str | None) -> None:
        """End a session (logout, or a new login from the same browser)."""
        shaped = shaped_session_id(cookie)
        if shaped is not None:
            self._sessions.pop(_digest(shaped), None)


class LoginThrottle:
    """At most ``failures`` wrong tokens per client address in ``window`` seconds.

    The API token is 256 random bits, so guessing it is hopeless anyway; the
    throttle keeps a guesser from filling the node's log and CPU. It counts per
    address, so a stranger cannot lock the operator out from elsewhere.
    """

    def __init__(
        self,
        *,
        failures: int = 10,
        window: float = 60.0,
        clock: Clock = time.monotonic,
        capacity: int = 1024,
    ) -> None:
        self._failures = failures
        self._window = window
        self._clock = clock
        self._capacity = capacity
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, client: str) -> deque[float]:
        times = self._seen.get(client)
        if times is None:
            return deque()
        cutoff = self._clock() - self._window
        while times and times[0] <= cutoff:
            times.popleft()
        if not times:
            del self._seen[client]
        return times

    def retry_after(self, client: str) -> int:
        """Seconds until ``client`` may try again; 0 when it may now."""
        times = self._recent(client)
        if len(times) < self._failures:
            return 0
        return max(1, math.ceil(times[0] + self._window - self._clock()))

    def failed(self, client: str) -> None:
        """Note one wrong token from ``client``."""
        times = self._recent(client)
        self._seen[client] = times
        self._seen.move_to_end(client)
        times.append(self._clock())
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
