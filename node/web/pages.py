"""The node's status page: what an operator of a participating platform looks at.

Served by the node itself under ``PAGE_PREFIX`` as an aiohttp sub-application,
so its errors are HTML pages (never the JSON API's error shape) and its login is
its own:

- ``GET  /status/login``, ``POST /status/login``: the node's local API token, typed
  once, opens a cookie session (``node.web.sessions``). A wrong token is a 403
  page and no cookie; ten wrong tokens a minute from one address are a 429.
- ``GET  /status/``: per subscribed list its hash type, applied version, state count
  and digest, last sync attempt and success, last error, the stale alarm with its
  reason, and the cumulative counters (for a list of entries: that it holds
  entries, how many, and how many expire within a day); damaged lists; the ack and
  webhook outboxes; the schedule; recent match events that wait for an outcome,
  with the entry each matched (its id, category and classification).
- ``POST /status/matches/{match_id}/outcome``: one of ``actioned``, ``blocked``,
  ``false_positive``, ``kept``, recorded by ``Matching.record_outcome`` exactly as
  ``POST /v1/matches/{match_id}/outcome`` records it (same 404, same conflict rule).
- ``POST /status/logout``; ``GET /status/static/hashhub.css``, the look shared with
  the hub's pages (``edge.web``: the same header, type, tables, buttons and forms),
  and ``GET /status/static/node.css``, what only this page has.

Every POST needs the session cookie *and* the session's CSRF token in the form
(403 otherwise); the cookie is HttpOnly and SameSite=Strict, and ``Secure`` when
the page was served over https: over the connection itself, or as a trusted
proxy (``trusted_proxies``) says in ``X-Forwarded-Proto``; with
``secure_cookies = "always"`` it is ``Secure`` whatever the request says. The
pages are plain forms with no JavaScript at all, and every answer, the
stylesheet included, carries a CSP that allows none, ``X-Frame-Options: DENY``,
``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store``. (These pages
check no ``Origin``, so ``no-referrer``, under which a browser posts the page's
own forms with ``Origin: null``, costs nothing here.) The session cookie is good
for these pages only: the JSON API still wants its bearer token.
"""

from __future__ import annotations

import importlib.resources
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import aiohttp_jinja2
import jinja2
from aiohttp import hdrs, web

from edge.web import STYLESHEET as SHARED_STYLESHEET
from edge.web import stylesheet as shared_stylesheet
from node.errors import NodeConfigError, NodeError, OutcomeConflictError, UnknownMatchError
from node.hubs import shown_list
from node.limits import LIMITS, client_address, is_the_api_token
from node.matching import MATCH_ID
from node.service import OUTCOMES, Node
from node.web.sessions import LoginThrottle, PageSession, SessionStore
from protocol import format_time, parse_time

if TYPE_CHECKING:
    from node.scheduler import NodeScheduler

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "PAGE_PREFIX",
    "SESSION_COOKIE",
    "is_page_request",
    "status_pages",
]

log = logging.getLogger("hashhub.node.web")

PAGE_PREFIX = "/status"
SESSION_COOKIE = "hashhub_node_session"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
"""No script, no frame, no foreign style, forms only to the node itself."""
FORM_BYTES = 8 * 1024
SECURE_COOKIES = ("auto", "always")
"""The values of the ``secure_cookies`` setting."""
OPEN_MATCH_ROWS = 50
"""The newest this many match events without an outcome are listed."""
EXPIRING_WITHIN = timedelta(days=1)
"""A list of entries shows how many of them stop matching this soon: what will no
longer be enforced by this time tomorrow unless the hub renews it."""

_MATCH_ID = MATCH_ID  # bare, or tagged with the replica's name (node.matching)
_IS_PAGES = web.AppKey("hashhub_node_status_pages", bool)
_JINJA = web.AppKey("hashhub_node_status_jinja", jinja2.Environment)
_KEPT_HEADERS = {"allow", "retry-after"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class PageError(NodeError):
    """A request a page refuses: its status, a short title and a sentence for the operator."""

    def __init__(
        self, status: int, title: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.headers = dict(headers or {})


def is_page_request(request: web.Request) -> bool:
    """Whether ``request`` was routed to the status pages (which have their own login)."""
    return any(_IS_PAGES in app for app in request.match_info.apps)


# -- what the page shows ------------------------------------------------------------------


def duration(seconds: float) -> str:
    """``90061`` → ``1 d 1 h``: the two largest units, for people."""
    seconds = int(seconds)
    if seconds < 0:
        return "-" + duration(-seconds)
    parts: list[str] = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size} {unit}")
            seconds %= size
    return " ".join(parts[:2])


@dataclass(frozen=True)
class ListRow:
    """One subscribed list as the page shows it (from ``Node.status()`` and its hub's root).

    ``shown`` names it as every page and command does: its id for the ``default``
    hub, ``hub/list`` for another (a list is named by the pair)."""

    hub: str
    shown: str
    list_id: str
    hash_type: str
    version: int
    count: int
    digest: str | None
    last_attempt: str | None
    last_success: str | None
    last_error: str | None
    checkpoint_time: str | None
    checkpoint_age: str | None
    stale: bool
    stale_reason: str
    never_synced: bool
    damaged: bool
    counts: Mapping[str, int]
    entries: bool = False
    """The list holds entries (records with their metadata), not bare hashes."""
    expiring: int = 0
    """For a list of entries: how many stop matching within ``EXPIRING_WITHIN``."""


def _stale_reason(entry: Mapping[str, Any], max_age: int | None, age: timedelta | None) -> str:
    """Why the node calls the list stale, in the words ``Node.status()`` decides it by."""
    if max_age is None:
        return "no root is verified yet: the node has not completed its first update"
    if age is None:
        return "no checkpoint of this list has been verified yet"
    return (
        f"the newest verified checkpoint is {duration(age.total_seconds())} old; "
        f"the root allows at most {duration(max_age)}"
    )


def _schedule(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """The scheduler's snapshot with its times as every other time on the page is
    written (whole seconds, ``Z``); ``/v1/status`` keeps the snapshot as it is."""
    shown = dict(snapshot)
    for key in ("last_run", "next_run"):
        if shown.get(key):
            shown[key] = format_time(datetime.fromisoformat(shown[key]))
    return shown


def list_rows(node: Node, status: Mapping[str, Any], now: datetime) -> list[ListRow]:
    roots = {name: hub.newest_root() for name, hub in node.hubs.items()}
    damaged = {(hub["name"], list_id) for hub in status["hubs"] for list_id in hub["damaged"]}
    rows = []
    for entry in status["lists"]:
        hub = node.hubs.get(entry["hub"])
        root = roots.get(entry["hub"])
        max_age = root.policy.max_checkpoint_age if root is not None else None
        spec = root.lists.get(entry["list"]) if root is not None else None
        checkpoint_time = entry["checkpoint_time"]
        age = now - parse_time(checkpoint_time, "checkpoint time") if checkpoint_time else None
        counts = {k: v for k, v in entry["counts"].items() if k != "hashes"}
        rows.append(
            ListRow(
                hub=entry["hub"],
                shown=shown_list(entry["hub"], entry["list"]),
                list_id=entry["list"],
                hash_type=spec.hash_type if spec is not None else "—",
                version=entry["version"],
                count=entry["count"],
                digest=entry["state_sha256"],
                last_attempt=entry["last_attempt"],
                last_success=entry["last_success"],
                last_error=entry["last_error"],
                checkpoint_time=checkpoint_time,
                checkpoint_age=duration(age.total_seconds()) if age is not None else None,
                stale=entry["stale"],
                stale_reason=_stale_reason(entry, max_age, age) if entry["stale"] else "",
                never_synced=entry["last_success"] is None,
                damaged=(entry["hub"], entry["list"]) in damaged,
                counts=counts,
                entries=spec is not None and spec.entries,
                expiring=(
                    hub.store.entries_expiring(entry["list"], now, EXPIRING_WITHIN)
                    if hub is not None and spec is not None and spec.entries
                    else 0
                ),
            )
        )
    return rows


# -- plumbing -----------------------------------------------------------------------------


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={hdrs.LOCATION: location})


def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    response = aiohttp_jinja2.render_template(
        template, request, {"prefix": PAGE_PREFIX, **context}, status=status, app_key=_JINJA
    )
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def error_page(
    request: web.Request,
    status: int,
    title: str,
    message: str,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """The one HTML error page of the status pages."""
    return render(
        request,
        "error.html",
        {"status": status, "title": title, "message": message},
        status=status,
        headers=headers,
    )


@web.middleware
async def page_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error under ``PAGE_PREFIX`` as an HTML page, its ``Allow``/``Retry-After`` kept."""
    try:
        return await handler(request)
    except PageError as e:
        return error_page(request, e.status, e.title, str(e), e.headers)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        if e.status == 404 and request.path == PAGE_PREFIX:
            return _see_other(PAGE_PREFIX + "/")
        kept = {k: v for k, v in e.headers.items() if k.lower() in _KEPT_HEADERS}
        message = {
            404: "There is no page here.",
            405: f"This page does not answer {request.method[:16]}.",
        }.get(e.status, e.reason)
        return error_page(request, e.status, e.reason, message, kept)
    except Exception:
        log.exception("unhandled error answering %s %s", request.method, request.path)
        return error_page(
            request, 500, "Internal error", "Something went wrong; the node's log has the details."
        )


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers[hdrs.CACHE_CONTROL] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"


async def read_form(request: web.Request, fields: frozenset[str]) -> dict[str, str]:
    """A small url-encoded form with no field but ``fields`` and none twice."""
    if request.content_type != "application/x-www-form-urlencoded":
        raise PageError(415, "Unsupported form", "Send this form from the page itself.")
    declared = request.content_length
    if declared is not None and declared > FORM_BYTES:
        raise PageError(413, "Form too large", f"A form here is at most {FORM_BYTES} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(4096):
        size += len(chunk)
        if size > FORM_BYTES:
            raise PageError(413, "Form too large", f"A form here is at most {FORM_BYTES} bytes.")
        chunks.append(chunk)
    try:
        pairs = parse_qsl(
            b"".join(chunks).decode("ascii"),
            keep_blank_values=True,
            max_num_fields=len(fields) + 1,
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError) as e:
        raise PageError(400, "Bad form", "The form could not be read.") from e
    form: dict[str, str] = {}
    for name, value in pairs:
        if name not in fields or name in form:
            raise PageError(400, "Bad form", "The form has fields this page does not know.")
        form[name] = value
    return form


# -- the pages ------------------------------------------------------------------------------


class StatusPages:
    """The handlers, bound to where the node and its scheduler live in the parent app."""

    def __init__(
        self,
        node_key: web.AppKey[Node],
        scheduler_key: web.AppKey[NodeScheduler],
        *,
        sessions: SessionStore | None = None,
        throttle: LoginThrottle | None = None,
        secure_cookies: str = "auto",
    ) -> None:
        self.node_key = node_key
        self.scheduler_key = scheduler_key
        self.always_secure = secure_cookies == "always"
        self.sessions = sessions or SessionStore()
        self.throttle = throttle or LoginThrottle()
        self.stylesheet = (
            importlib.resources.files("node.web").joinpath("static", "node.css").read_bytes()
        )
        self.shared_stylesheet = shared_stylesheet()

    def _secure(self, request: web.Request) -> bool:
        """Whether the session cookie set on this answer is ``Secure``."""
        if self.always_secure:
            return True
        return request.config_dict[LIMITS].proxies.https(
            request.remote, request.secure, request.headers.getall(hdrs.X_FORWARDED_PROTO, [])
        )

    def _session(self, request: web.Request) -> PageSession | None:
        return self.sessions.get(request.cookies.get(SESSION_COOKIE))

    def _posted_by_operator(self, request: web.Request, form: Mapping[str, str]) -> PageSession:
        """The session of a POST whose form carries that session's CSRF token, or 403."""
        session = self._session(request)
        if session is None:
            raise PageError(
                403, "Not logged in", "Your session has ended or never began: log in again."
            )
        if not session.csrf_matches(form.get("csrf")):
            log.warning("status page: POST %s without the session's CSRF token", request.path)
            raise PageError(
                403,
                "Form refused",
                "This form did not come from this node's page (its CSRF token is missing or "
                "wrong). Reload the page and try again.",
            )
        return session

    async def stylesheet_file(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=self.stylesheet, content_type="text/css")

    async def shared_stylesheet_file(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=self.shared_stylesheet, content_type="text/css")

    async def login_form(self, request: web.Request) -> web.StreamResponse:
        if self._session(request) is not None:
            return _see_other(PAGE_PREFIX + "/")
        node = request.config_dict[self.node_key]
        return render(request, "login.html", {"node_id": node.config.node_id, "error": None})

    async def login(self, request: web.Request) -> web.StreamResponse:
        client = client_address(request)
        wait = self.throttle.retry_after(client)
        if wait:
            raise PageError(
                429,
                "Too many attempts",
                f"Too many wrong tokens from your address; try again in {wait} s.",
                {hdrs.RETRY_AFTER: str(wait)},
            )
        form = await read_form(request, frozenset({"token"}))
        token = form.get("token", "").strip()
        node = request.config_dict[self.node_key]
        if not is_the_api_token(token, node.api_token):
            self.throttle.failed(client)
            log.warning("status page: wrong API token from %s", client)
            return render(
                request,
                "login.html",
                {
                    "node_id": node.config.node_id,
                    "error": "That is not this node's API token (the api-token file in its home).",
                },
                status=403,
            )
        self.sessions.close(request.cookies.get(SESSION_COOKIE))  # a new id at every login
        session_id, _ = self.sessions.open()
        log.info("status page: login from %s", client)
        response = _see_other(PAGE_PREFIX + "/")
        response.set_cookie(
            SESSION_COOKIE,
            session_id,
            path=PAGE_PREFIX,
            httponly=True,
            samesite="Strict",
            secure=self._secure(request),
        )
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        form = await read_form(request, frozenset({"csrf"}))
        self._posted_by_operator(request, form)
        self.sessions.close(request.cookies.get(SESSION_COOKIE))
        response = _see_other(PAGE_PREFIX + "/login")
        response.del_cookie(SESSION_COOKIE, path=PAGE_PREFIX, samesite="Strict")
        return response

    async def status(self, request: web.Request) -> web.StreamResponse:
        session = self._session(request)
        if session is None:
            return _see_other(PAGE_PREFIX + "/login")
        node = request.config_dict[self.node_key]
        scheduler = request.config_dict.get(self.scheduler_key)
        status = node.status()
        return render(
            request,
            "status.html",
            {
                "node_id": status["node"],
                "status": status,
                "lists": list_rows(node, status, node.now()),
                "schedule": _schedule(scheduler.snapshot()) if scheduler is not None else None,
                "matches": node.matching.recent_matches(OPEN_MATCH_ROWS, open_only=True),
                "shown_matches": OPEN_MATCH_ROWS,
                "outcomes": OUTCOMES,
                "csrf": session.csrf,
                "notices": session.take_notices(),
                "now": format_time(node.now()),
            },
        )

    async def record_outcome(self, request: web.Request) -> web.StreamResponse:
        """Record an outcome as ``POST /v1/matches/{match_id}/outcome`` does."""
        form = await read_form(request, frozenset({"csrf", "outcome"}))
        session = self._posted_by_operator(request, form)
        match_id = request.match_info["match_id"]
        if not _MATCH_ID.fullmatch(match_id):
            raise PageError(404, "No such match", f"There is no match {match_id[:64]!r}.")
        outcome = form.get("outcome")
        if outcome not in OUTCOMES:
            raise PageError(400, "Unknown outcome", f"An outcome is one of {', '.join(OUTCOMES)}.")
        node = request.config_dict[self.node_key]
        try:
            recorded = node.matching.record_outcome(match_id, outcome)
        except UnknownMatchError as e:
            raise PageError(404, "No such match", f"There is no match {match_id}.") from e
        except OutcomeConflictError as e:  # the API's 409 conflict: an outcome is recorded once
            raise PageError(409, "Outcome already recorded", f"{e}.") from e
        log.info("status page: match %s recorded as %s", match_id, outcome)
        label = outcome.replace("_", " ")
        if recorded["duplicate"]:
            session.notices.append(f"Match {match_id[:8]} was already recorded as {label}.")
        else:
            session.notices.append(f"Recorded match {match_id[:8]} as {label}.")
        return _see_other(PAGE_PREFIX + "/#matches")


def status_pages(
    node_key: web.AppKey[Node],
    scheduler_key: web.AppKey[NodeScheduler],
    *,
    sessions: SessionStore | None = None,
    throttle: LoginThrottle | None = None,
    secure_cookies: str = "auto",
) -> web.Application:
    """The status pages as a sub-application to mount at ``PAGE_PREFIX``.

    Args:
        node_key: where the parent app keeps the ``Node``.
        scheduler_key: where it keeps the ``NodeScheduler``, if it runs one.
        sessions: the login sessions (default: in memory, the default limits).
        throttle: the throttle on wrong tokens (default: ten a minute per address).
        secure_cookies: the setting: ``auto`` or ``always``.

    Raises:
        NodeConfigError: ``secure_cookies`` is neither.
    """
    if secure_cookies not in SECURE_COOKIES:
        raise NodeConfigError(
            f"secure_cookies is {' or '.join(SECURE_COOKIES)}, not {secure_cookies!r}"
        )
    pages = StatusPages(
        node_key,
        scheduler_key,
        sessions=sessions,
        throttle=throttle,
        secure_cookies=secure_cookies,
    )
    app = web.Application(middlewares=[page_errors])
    app[_IS_PAGES] = True
    aiohttp_jinja2.setup(
        app,
        app_key=_JINJA,
        loader=jinja2.PackageLoader("node.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        default_helpers=False,
    )
    app.on_response_prepare.append(_security_headers)
    app.router.add_get("/", pages.status, allow_head=False)
    app.router.add_get("/login", pages.login_form, allow_head=False)
    app.router.add_post("/login", pages.login)
    app.router.add_post("/logout", pages.logout)
    app.router.add_post("/matches/{match_id}/outcome", pages.record_outcome)
    app.router.add_get(
        f"/static/{SHARED_STYLESHEET}", pages.shared_stylesheet_file, allow_head=False
    )
    app.router.add_get("/static/node.css", pages.stylesheet_file, allow_head=False)
    return app
