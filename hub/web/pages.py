"""The hub's HTML pages: public submission and case lookup, operator login and dashboard.

Public pages (no login):

- ``GET /submit``: choose a picture or a video; the page hashes it in the browser
  (``static/hashing/pdq.js`` for pictures; ``static/hashing/vpdq.js`` for videos,
  the video's vPDQ frames, or ``static/hashing/md5.js``, the MD5 of the file, when
  the browser cannot decode the video) and the form carries only ``type``,
  ``hash`` and, for PDQ, ``quality``; for ``vpdq`` the ``hash`` field carries the
  video's frames (PROTOCOL.md §6.3, hex), of which the hub keeps the frames and
  their SHA-256 (``Cases.open_case``). Which types the page offers, for what, and
  which take a quality is the registry's (``protocol.hashtypes``: ``submitted_as``,
  ``min_quality``, ``frames``): one choice per thing submitted, whose types are
  tried in order (``submission_choices``); each offered type brings its browser
  hasher, ``static/hashing/<type>.js``. The file
  input has no ``name`` and sits outside the form, so a browser never sends the
  file, with or without the script. ``POST /submit`` takes only a
  ``application/x-www-form-urlencoded`` body of at most ``SUBMIT_FORM_BYTES``
  (room for ``SUBMISSION_MAX_FRAMES`` frames in hex; every other form is capped
  at ``FORM_BYTES``; a multipart body, the only kind that carries a file, is
  refused with 415) and answers the case number.
  The ``quality`` is the browser's claim and the hub cannot check it: a claim
  below ``MIN_PDQ_QUALITY`` is refused (an honest page never sends one) and the
  claim is kept with the case for the reviewer to weigh, nothing more. It lets
  nothing past a rule: a degenerate hash (``protocol.hashes``: a PDQ with fewer
  than 64 or more than 192 bits set, such as all zeros; an all-zero or all-ones
  MD5; the MD5 of an empty file) is a 400 page naming the rule, whatever quality
  comes with it (``Cases.submit``).
- ``GET /case`` and ``POST /case``: look a case up by its number. The number goes
  in the body, never in the URL, so it is not written to access logs or history.
- ``POST /case/withdraw``: the person withdraws a case with its number and the
  withdrawal code the submission page showed once (``Cases.withdraw``; what it
  does follows the ``withdrawal`` setting). A wrong number or a wrong code is one
  403 answer that never says which; each case allows ``WITHDRAW_BURST`` attempts
  at once and ``WITHDRAW_PER_HOUR`` an hour after that, whatever address they
  come from (a bucket per case, keyed by an HMAC of the number), besides the
  form's bucket per address.

What the public pages keep (``hub.privacy``): the case row only (hash, type, PDQ
quality, status, the day it arrived) and, for a video sent as frames, its frames. No
request to ``/``, ``/submit``, ``/case`` or ``/static/`` is written to the access
log, and no log line names a case number or a hash. Each public form (submit, case
lookup, login) has a bucket of its own per client address (``web_rate_burst``,
``web_rate_per_hour``; a crowd filling the submit bucket from a shared address does
not keep an operator out of ``/login``), and the buckets hold an HMAC of the
address, never the address.

Operator pages: ``GET /login`` / ``POST /login`` (the operator's token, once, for a
session cookie), ``POST /logout``, and the dashboard. The dashboard is one page per
section, each with its own address, so none grows into a page nobody scrolls
through: ``GET /dashboard`` is the overview (a tile per section with what needs
attention; the login leads there), then ``/dashboard/lists`` (lists, staged
changes, the publish form), ``/dashboard/review`` (the submission review queue),
``/dashboard/entries`` (the entries of ``entries`` lists with their metadata, state
and what platforms say of them, filtered by ``?category=`` and ``?disputed=1``),
``/dashboard/nodes``, ``/dashboard/counts`` (takedowns over time, per-platform and
per-hash counts from the acks), ``/dashboard/keys`` and ``/dashboard/log`` (``SECTIONS``). A form
returns to its section: ``POST /dashboard/publish`` to the lists,
``POST /dashboard/cases/{case}/review`` and ``POST /dashboard/cases/{case}/withdrawal``
(approve or refuse a withdrawal waiting for review) to the review queue, and
``POST /dashboard/nodes/{node_id}/{change}`` (``grant``, ``ungrant``, ``key``,
``suspend``, ``resume``, ``platform``; ``admin`` only) to the nodes; ``token`` answers a page
showing the node's new token once, as ``hashhub node token`` prints it. Roles follow the
operator API: reading the dashboard needs ``viewer``, ``auditor`` or ``publisher``
(a publisher must see what it publishes); publishing and reviewing cases need
``publisher``; ``admin`` may do everything.

The pages' look is shared with the node's status page: ``/static/hashhub.css``
comes from ``edge.web``, ``/static/hub.css`` adds what only the hub's pages have.

Sessions are server-side: the cookie holds a random id, the database its SHA-256
(``Hub.open_web_session``). The cookie is ``HttpOnly``, ``SameSite=Strict`` and
``Secure`` when the page was served over https: over the connection itself, or
as a trusted proxy (``trusted_proxies``) says in ``X-Forwarded-Proto``; with
``secure_cookies = "always"`` it is ``Secure`` whatever the request says. Every
POST form carries the session's CSRF token; the login form, before any session
exists, carries a random
value that must equal a cookie set with the form (double submit), so no other
site can log a browser in. POSTs whose ``Origin`` names another host are refused
as well. A page that needs a login redirects to ``/login``; a wrong role or CSRF
token is a 403 page.

Errors on these routes are HTML pages with the same status the JSON API would
answer (``page_errors``); the JSON API keeps its one error shape. Every page is
served with a Content-Security-Policy that allows no inline script or style,
``X-Frame-Options: DENY``, ``Referrer-Policy: same-origin`` and
``Cache-Control: no-store`` (the static files too: they are small, and a person's
browser then keeps no copy of the submission page's scripts). ``same-origin``,
not ``no-referrer``: under ``no-referrer`` a browser sends ``Origin: null`` with
the site's own form posts (the Fetch standard), which the cross-site check
refuses; ``same-origin`` still sends no referrer to any other site.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import re
import secrets
import traceback
import urllib.parse
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import hdrs, web

from edge.web import STYLESHEET as SHARED_STYLESHEET
from edge.web import stylesheet as shared_stylesheet_bytes
from hub.api.requests import check_list_id, check_node_id, public_key_of
from hub.appkeys import CONFIG, HUB
from hub.core import Hub, Principal, WebSession
from hub.errors import (
    Forbidden,
    HubError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
)
from hub.http import Handler, after_publish, invalidate_caches, read_body
from hub.intake import parse_hash
from hub.limits import LIMITS, client_address
from hub.privacy import is_public_page
from hub.services.cases import SUBMISSION_MAX_FRAMES, WITHDRAWAL_POLICIES
from hub.services.entries import EntryView
from hub.services.ledger import FlaggedHash
from hub.services.publishing import PublishResult
from hub.services.reports import HubStatus
from hub.web.chart import line_chart
from hub.web.limits import RateLimiter
from protocol.authshape import session_id as shaped_session_id
from protocol.hashtypes import HASH_TYPES, submission_types
from protocol.video import FRAME_BYTES, MIN_FRAMES_FOR_SHARE, MIN_QUALITY

__all__ = [
    "FORM_BYTES",
    "LIMITER",
    "LOGIN_COOKIE",
    "PAGE_ROUTE_PREFIX",
    "READ_ROLES",
    "SECTIONS",
    "SESSION_COOKIE",
    "SUBMIT_FORM_BYTES",
    "WITHDRAW_BURST",
    "WITHDRAW_LIMITER",
    "WITHDRAW_PER_HOUR",
    "WRITE_ROLES",
    "dashboard_view",
    "detail_pairs",
    "group_case",
    "page_errors",
    "setup",
]

log = logging.getLogger("hashhub.http")

PAGE_ROUTE_PREFIX = "page:"
"""Every HTML route's name starts with this (the OpenAPI document covers the rest)."""
READ_ROLES = ("viewer", "auditor", "publisher")
WRITE_ROLES = ("publisher",)
SESSION_COOKIE = "hashhub_session"
LOGIN_COOKIE = "hashhub_login"
FORM_BYTES = 8 * 1024
"""Cap on a page form's body: hashes and a token are a few hundred bytes."""
SUBMIT_FORM_BYTES = 2 * SUBMISSION_MAX_FRAMES * FRAME_BYTES + FORM_BYTES
"""Cap on the submission form's body: a video's frames in hex (266,400 bytes for an
hour), with ``FORM_BYTES`` for the other fields and the encoding."""
MAX_FORM_FIELDS = 8
SECURE_COOKIES = ("auto", "always")
"""The values of the ``secure_cookies`` setting."""

LIMITER = web.AppKey("web_limiter", RateLimiter)
WITHDRAW_LIMITER = web.AppKey("web_withdraw_limiter", RateLimiter)
WITHDRAW_BURST = 5
"""Withdrawal attempts one case allows at once, from any address."""
WITHDRAW_PER_HOUR = 5
"""How fast that allowance refills: a person who mistypes the code tries again
soon; a guesser gets a few tries an hour against 160 random bits."""
STYLESHEET = web.AppKey("web_stylesheet", bytes)

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    # The submission page decodes a chosen video from a blob: URL on the device.
    "media-src blob:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
_CASE = re.compile(r"[0-9a-f]{32}")
_QUALITY = re.compile(r"[0-9]{1,3}")
_HEX = re.compile(r"[0-9a-f]+")
_NOTICES = {
    "published": "Published.",
    "nothing": "Nothing was staged: no new version.",
    "accepted": "Case accepted: its hash is staged for the list's next version.",
    "rejected": "Case rejected.",
    "withdrawn": "Withdrawal approved: the entry is retracted as withdrawn at the next publish.",
    "refused": "Withdrawal refused: the entry stays listed; the case page says so.",
    "granted": "Granted: the node may read the list from its next request.",
    "ungranted": "Taken away: the node's next read of the list is refused.",
    "suspended": "Suspended: the node's requests are refused until it is resumed.",
    "resumed": "Resumed: the node's requests are served again.",
    "rekeyed": "New key recorded: the node's acks from its next seq on must be signed by it.",
    "moved": "Platform changed: the node and its counts count toward that platform from now on.",
}
_TITLES = {
    400: "The request was not understood",
    401: "Please log in",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Already done",
    413: "Too much data",
    415: "Wrong kind of data",
    422: "Refused",
    429: "Too many requests",
}
_TEMPLATES = Path(__file__).resolve().parent / "templates"
_STATIC = Path(__file__).resolve().parent / "static"


# -- helpers ----------------------------------------------------------------------------


def group_case(case_number: str) -> str:
    """A case number shown in groups of four (``1a2b-3c4d-…``): easier to read and copy."""
    return "-".join(case_number[i : i + 4] for i in range(0, len(case_number), 4))


def _case_number(text: str) -> str:
    """A case number as typed: any case, with or without dashes and spaces."""
    value = re.sub(r"[\s-]", "", text).lower()
    if not _CASE.fullmatch(value):
        raise InvalidRequest("a case number is 32 letters and digits (0-9, a-f)")
    return value


def _redirect(location: str) -> web.Response:
    """A 303 to a page of this site (after a POST, the browser GETs it)."""
    return web.Response(status=303, headers={hdrs.LOCATION: location})


def _is_page(request: web.Request) -> bool:
    name = request.match_info.route.name
    return name is not None and name.startswith(PAGE_ROUTE_PREFIX)


def _render(
    request: web.Request, template: str, context: Mapping[str, Any], status: int = 200
) -> web.Response:
    return aiohttp_jinja2.render_template(template, request, dict(context), status=status)


async def _form(request: web.Request, allowed: set[str], cap: int = FORM_BYTES) -> dict[str, str]:
    """A small urlencoded form of at most ``cap`` bytes: each field at most once, no
    field outside ``allowed``."""
    if request.content_type != "application/x-www-form-urlencoded":
        raise web.HTTPUnsupportedMediaType(
            text="this form is sent as application/x-www-form-urlencoded; files are never taken"
        )
    data = await read_body(request, cap)
    try:
        pairs = urllib.parse.parse_qsl(
            data.decode("ascii"),
            keep_blank_values=True,
            strict_parsing=bool(data),
            max_num_fields=MAX_FORM_FIELDS,
        )
    except (UnicodeDecodeError, ValueError) as e:
        raise InvalidRequest("the form could not be read") from e
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name not in allowed:
            raise InvalidRequest(f"unexpected form field {name[:40]!r}")
        if name in fields:
            raise InvalidRequest(f"the form field {name!r} was sent twice")
        fields[name] = value
    return fields


def _same_origin(request: web.Request) -> None:
    """Refuse a POST another site's page made (``Origin`` of another host)."""
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is not None and urllib.parse.urlsplit(origin).netloc != request.host:
        raise Forbidden("this form was sent from another site")


def _rate_limit(request: web.Request, form: str) -> None:
    """Spend from the client address's bucket of ``form`` (each form has its own)."""
    wait = request.app[LIMITER].take(f"{form} {client_address(request)}")
    if wait:
        raise web.HTTPTooManyRequests(
            text=f"Too many requests from your address. Please try again in {wait} seconds.",
            headers={hdrs.RETRY_AFTER: str(wait)},
        )


def _secure(request: web.Request) -> bool:
    """Whether a cookie set on this answer is ``Secure`` (see the module docstring)."""
    if request.app[CONFIG].secure_cookies == "always":
        return True
    return request.config_dict[LIMITS].proxies.https(
        request.remote, request.secure, request.headers.getall(hdrs.X_FORWARDED_PROTO, [])
    )


async def _session(request: web.Request) -> WebSession:
    """The operator's live session; without one, a redirect to the login page."""
    session_id = shaped_session_id(request.cookies.get(SESSION_COOKIE))
    if session_id is None:  # absent, or of a shape the hub never issued
        raise web.HTTPSeeOther("/login")
    try:
        return await request.app[HUB].call(lambda hub: hub.sessions.get(session_id))
    except Unauthorized:
        raise web.HTTPSeeOther("/login") from None


def _check_csrf(session: WebSession | str, sent: str | None) -> None:
    expected = session if isinstance(session, str) else session.csrf
    shaped = shaped_session_id(sent)  # the shape of a value the hub issued
    if shaped is None or not hmac.compare_digest(shaped.encode("ascii"), expected.encode()):
        raise Forbidden("the form's security token is missing or wrong; reload the page")


async def _operator_post(
    request: web.Request, allowed: set[str], roles: tuple[str, ...] | None
) -> tuple[WebSession, dict[str, str]]:
    """Session, then CSRF token, then role: what every operator POST checks, in that order.

    ``roles`` None: any operator (logging out).
    """
    _same_origin(request)
    session = await _session(request)
    form = await _form(request, allowed | {"csrf"})
    _check_csrf(session, form.get("csrf"))
    if roles is not None:
        session.principal.require(*roles)
    return session, form


# -- errors and headers -----------------------------------------------------------------


@web.middleware
async def page_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Errors of the HTML routes as HTML pages; every other route's errors pass on (JSON)."""
    if not _is_page(request):
        return await handler(request)
    try:
        return await handler(request)
    except HubError as e:
        return _error_page(request, e.status, str(e))
    except web.HTTPException as e:
        if e.status < 400:
            raise
        default = f"{e.status}: {e.reason}"
        message = e.text if e.text and e.text != default else e.reason
        response = _error_page(request, e.status, message)
        for key in (hdrs.RETRY_AFTER, hdrs.ALLOW):
            if key in e.headers:
                response.headers[key] = e.headers[key]
        return response
    except Exception as e:
        if is_public_page(request.path):
            _log_public_bug(request, e)
        else:
            log.exception("unhandled error answering %s %s", request.method, request.path)
        return _error_page(request, 500, "Something went wrong on our side. Please try later.")


def _log_public_bug(request: web.Request, error: BaseException) -> None:
    """A bug on a public page, logged without anything the person sent (``hub.privacy``).

    The traceback's frames (file, line, function, source line) and each exception's
    type, never an exception's message or arguments, which could hold the hash or
    the case number of the request.
    """
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    parts = [
        f"{type(item).__qualname__}:\n{''.join(traceback.format_tb(item.__traceback__))}"
        for item in reversed(chain)
    ]
    log.error(
        "unhandled error answering %s %s (message left out: a public page)\n%s",
        request.method,
        request.path,
        "".join(parts).rstrip(),
    )


def _error_page(request: web.Request, status: int, message: str) -> web.Response:
    title = _TITLES.get(status, "Something went wrong")
    return _render(
        request, "error.html", {"status": status, "title": title, "message": message}, status
    )


async def _page_headers(request: web.Request, response: web.StreamResponse) -> None:
    if not _is_page(request):
        return
    for key, value in _PAGE_HEADERS.items():
        response.headers.setdefault(key, value)
    response.headers[hdrs.CACHE_CONTROL] = "no-store"  # static files too (module docstring)


# -- public pages -----------------------------------------------------------------------


async def home(request: web.Request) -> web.StreamResponse:
    return _redirect("/submit")


_MEDIA = {
    "image": {"choice": "picture (photo, screenshot)", "noun": "picture", "file": "picture"},
    "video": {"choice": "video", "noun": "video", "file": "video file"},
}
"""What each ``submitted_as`` is called on the page: the choice, the thing, the file hashed."""


def _preference(name: str) -> int:
    """Which of a thing's types the page tries first: a video's frames, which match
    re-encoded and trimmed copies, before a digest of its file, which matches only
    the same bytes (what a browser that cannot decode the video still computes)."""
    kind = HASH_TYPES[name]
    return 0 if kind.frames or kind.perceptual else 1


def submission_choices() -> list[dict[str, Any]]:
    """The page's choices: one per thing the registry's types are submitted as,
    pictures first, each with its types in the order the page tries them."""
    by_media: dict[str, list[str]] = {}
    for name, submitted_as in submission_types().items():
        by_media.setdefault(submitted_as, []).append(name)
    choices = []
    for media in sorted(by_media, key=lambda m: m != "image"):
        types = sorted(by_media[media], key=_preference)
        kinds = [HASH_TYPES[name] for name in types]
        choices.append(
            {
                "type": types[0],
                "types": types,
                "fallback": types[1] if len(types) > 1 else "",
                "media": media,
                "choice": _MEDIA[media]["choice"],
                "noun": _MEDIA[media]["noun"],
                "preview": f"{kinds[0].label} ({_MEDIA[media]['file']})",
                "previews": {
                    kind.name: f"{kind.label} ({_MEDIA[media]['file']})" for kind in kinds
                },
                "label": " or ".join(kind.label for kind in kinds),
                "labels": {kind.name: kind.label for kind in kinds},
                "min_quality": kinds[0].min_quality,
                "max_frames": SUBMISSION_MAX_FRAMES if kinds[0].frames else None,
                "good_frames": MIN_FRAMES_FOR_SHARE if kinds[0].frames else None,
                "good_quality": MIN_QUALITY if kinds[0].frames else None,
            }
        )
    return choices


def submission_scripts(choices: Sequence[Mapping[str, Any]]) -> list[str]:
    """The browser hashers the page loads for ``choices``, each once, pictures' first:
    ``vpdq.js`` calls ``pdq.js``'s hasher for each frame."""
    return list(dict.fromkeys(name for c in choices for name in c["types"]))


async def submit_form(request: web.Request) -> web.StreamResponse:
    choices = submission_choices()
    return _render(
        request,
        "submit.html",
        {"choices": choices, "scripts": submission_scripts(choices)},
    )


def _quality(type_name: str, text: str) -> int | None:
    """A type with a quality floor carries its quality (PDQ); any other carries none."""
    if HASH_TYPES[type_name].min_quality is None:
        if text:
            raise InvalidRequest(f"a {type_name} hash has no quality")
        return None
    if not _QUALITY.fullmatch(text) or int(text) > 100:
        raise InvalidRequest("the picture's quality is a whole number from 0 to 100")
    return int(text)


def _submitted_value(type_name: str, text: str) -> bytes:
    """The ``hash`` field's bytes: a hash of the type's width, or a video's frames
    (``vpdq``) in hex, whose rules and cap ``Cases.open_case`` checks."""
    if not HASH_TYPES[type_name].frames:
        return parse_hash(text, type_name)
    value = text.strip().lower()
    if not value or len(value) % 2 or not _HEX.fullmatch(value):
        raise InvalidRequest(
            f"a {type_name} submission is a video's frames in hex "
            f"({2 * FRAME_BYTES} hex digits a frame)"
        )
    return bytes.fromhex(value)


async def submit(request: web.Request) -> web.StreamResponse:
    _same_origin(request)
    _rate_limit(request, "submit")
    try:
        form = await _form(request, {"type", "hash", "quality"}, SUBMIT_FORM_BYTES)
    except PayloadTooLarge as e:
        raise PayloadTooLarge(
            f"{e}: a video is sent as at most {SUBMISSION_MAX_FRAMES} frames (an hour at "
            "one frame a second); a longer video is sent as the MD5 of its file"
        ) from e
    type_name = form.get("type", "")
    offered = submission_types()
    if type_name not in offered:
        raise InvalidRequest(
            "choose " + " or ".join(f"a {c['noun']} ({c['label']})" for c in submission_choices())
        )
    value = _submitted_value(type_name, form.get("hash", ""))
    quality = _quality(type_name, form.get("quality", ""))
    new = await request.app[HUB].call(lambda hub: hub.cases.open_case(type_name, value, quality))
    # The only answer that ever shows the withdrawal code (no-store, as every page).
    return _render(
        request,
        "submitted.html",
        {
            "case": group_case(new.case),
            "code": new.withdrawal_code,
            "media": offered[type_name],
            "frames": HASH_TYPES[type_name].frames,
        },
    )


async def case_form(request: web.Request) -> web.StreamResponse:
    return _render(request, "case.html", {"found": None})


async def case_lookup(request: web.Request) -> web.StreamResponse:
    _same_origin(request)
    _rate_limit(request, "case")
    form = await _form(request, {"case"})
    case_number = _case_number(form.get("case", ""))
    found = await request.app[HUB].call(lambda hub: hub.cases.get(case_number))
    return _render(
        request,
        "case.html",
        {"found": {**found.to_dict(), "grouped": group_case(case_number)}, "notice": None},
    )


async def withdraw_case(request: web.Request) -> web.StreamResponse:
    """The person's withdrawal: the case number and the code, in the body."""
    _same_origin(request)
    _rate_limit(request, "withdraw")
    form = await _form(request, {"case", "code"})
    case_number = _case_number(form.get("case", ""))
    code = form.get("code", "")
    if len(code) > 80:
        raise InvalidRequest("a withdrawal code is 32 letters and digits")
    wait = request.app[WITHDRAW_LIMITER].take(case_number)
    if wait:
        raise web.HTTPTooManyRequests(
            text=f"Too many attempts to withdraw this case. Please try again in {wait} seconds.",
            headers={hdrs.RETRY_AFTER: str(wait)},
        )
    found = await request.app[HUB].call(lambda hub: hub.cases.withdraw(case_number, code))
    notice = (
        "Your request to withdraw this case was received. It waits for review."
        if found.withdrawal == "requested"
        else "This case is withdrawn."
    )
    return _render(
        request,
        "case.html",
        {"found": {**found.to_dict(), "grouped": group_case(case_number)}, "notice": notice},
    )


# -- login ------------------------------------------------------------------------------


def _login_page(request: web.Request, error: str | None = None, status: int = 200) -> web.Response:
    nonce = secrets.token_urlsafe(32)
    response = _render(request, "login.html", {"nonce": nonce, "error": error}, status)
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
        path="/login",
        max_age=3600,
    )
    return response


async def login_form(request: web.Request) -> web.StreamResponse:
    return _login_page(request)


async def login(request: web.Request) -> web.StreamResponse:
    _same_origin(request)
    _rate_limit(request, "login")
    form = await _form(request, {"token", "csrf"})
    _check_csrf(request.cookies.get(LOGIN_COOKIE, ""), form.get("csrf"))
    token = form.get("token", "").strip()
    if not token or len(token) > 256:
        return _login_page(request, "Enter your operator token.", 401)
    try:
        session_id, _ = await request.app[HUB].call(lambda hub: hub.sessions.open(token))
    except (Unauthorized, Forbidden):
        return _login_page(request, "That token is unknown, revoked or not an operator's.", 401)
    response = _redirect("/dashboard")
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
        path="/",
        max_age=request.app[CONFIG].web_session_seconds,
    )
    response.del_cookie(LOGIN_COOKIE, path="/login")
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    await _operator_post(request, set(), None)
    session_id = request.cookies.get(SESSION_COOKIE, "")
    await request.app[HUB].call(lambda hub: hub.sessions.close(session_id))
    response = _redirect("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


# -- the dashboard ----------------------------------------------------------------------

SECTIONS = (
    ("lists", "Lists"),
    ("entries", "Entries"),
    ("review", "Review"),
    ("nodes", "Nodes"),
    ("counts", "Counts"),
    ("keys", "Keys"),
    ("log", "Log"),
)
"""The dashboard's sections, in the navigation's order: ``/dashboard/<name>`` each."""
OVERVIEW = "overview"
"""``/dashboard`` itself: one tile per section, what needs attention first."""
QUEUE_ROWS = 100
"""The review section lists the oldest this many waiting cases."""
LOG_ROWS = 50
"""The log section lists the newest this many actions."""
ENTRY_ROWS = 100
"""The entries section lists the newest this many entries that pass its filter."""


def _age_seconds(stamp: str | None, now: datetime) -> float | None:
    if stamp is None:
        return None
    return (now - datetime.fromisoformat(stamp.replace("Z", "+00:00"))).total_seconds()


def _node_groups(hub: Hub, status: HubStatus) -> list[dict[str, Any]]:
    """Every node with one entry per list it follows, nodes and lists sorted by id.

    A node is *stale* on a list when its last ack for the list is older than the
    root policy's ``max_checkpoint_age`` (or it never acked): a node that follows
    the hub acks every version it applies and re-acks its counts on a schedule, so
    silence for longer than a checkpoint stays valid means it is not enforcing the
    current list, or cannot say so. Grouped by node, because what an operator does
    about a node (and the forms for it) is per node, not per list.
    """
    now = hub.now()
    stale_after = hub.config.max_checkpoint_age
    groups: dict[str, dict[str, Any]] = {}
    for entry in status.lists:
        for node in entry.nodes:
            age = _age_seconds(node.last_ack, now)
            group = groups.setdefault(
                node.node, {"node": node.node, "revoked": node.revoked, "lists": []}
            )
            group["lists"].append(
                {
                    **dataclasses.asdict(node),
                    "list": entry.id,
                    "stale": not node.revoked and (age is None or age > stale_after),
                }
            )
    for record in hub.access.nodes():
        group = groups.setdefault(
            record.id, {"node": record.id, "revoked": record.revoked, "lists": []}
        )
        group.update(
            platform=record.platform,
            suspended=record.suspended,
            generation=record.generation,
            keyid=record.keyid,
            granted=record.lists,
            grantable=[e.id for e in status.lists if e.id not in record.lists],
        )
    for group in groups.values():
        group["lists"].sort(key=lambda row: row["list"])
        group["stale"] = any(row["stale"] for row in group["lists"])
    return [groups[name] for name in sorted(groups)]


def _per_hash(hub: Hub, status: HubStatus) -> dict[str, list[dict[str, Any]]]:
    """Per list the 25 hashes to look at first: flagged ones, then the most matched."""
    per_hash = {}
    for entry in status.lists:
        # Each reason says how many nodes reported it (flagging needs flag_min_nodes).
        flagged = {
            f.hash: [f"{reason} ({_reporters(f, reason)} nodes reported)" for reason in f.reasons]
            for f in entry.flagged
        }
        rows: list[dict[str, Any]] = [
            {"hash": h, "counts": c, "reasons": flagged.get(h, [])}
            for h, c in hub.ledger.hash_counts(entry.id).items()
        ]
        rows.sort(key=lambda r: (not r["reasons"], -r["counts"].get("matched", 0), r["hash"]))
        per_hash[entry.id] = rows[:25]
    return per_hash


def _overview(hub: Hub, status: HubStatus, groups: list[dict[str, Any]]) -> dict[str, Any]:
    """One figure and a line per section, for the tiles of ``/dashboard``."""
    keys = hub.keys.records()
    expiring = sorted(k.expires for k in keys if k.expires and not k.retired)
    latest = hub.reports.actions(1)
    return {
        "lists": len(status.lists),
        "hashes": sum(entry.count for entry in status.lists),
        "staged": sum(entry.staged for entry in status.lists),
        "nodes": len(groups),
        "platforms": len({group.get("platform") or group["node"] for group in groups}),
        "stale_pairs": sum(row["stale"] for g in groups for row in g["lists"]),
        "taken_down": sum(
            entry.totals.get("actioned", 0) + entry.totals.get("blocked", 0)
            for entry in status.lists
        ),
        "flagged": sum(len(entry.flagged) for entry in status.lists),
        "key_count": len(keys),
        "next_expiry": expiring[0] if expiring else None,
        "latest": latest[0] if latest else None,
    }


def dashboard_view(
    hub: Hub, section: str = OVERVIEW, query: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """What one section of the dashboard shows, read in one trip to the database thread.

    Every section also gets what the header and the navigation show (the hub,
    its root, how many cases wait and how many nodes are stale), so the way to
    what needs attention is visible from anywhere. ``query`` is the page's query
    string; only the entries section reads it (its filter).
    """
    status = hub.reports.status()
    queue = hub.cases.with_status("received", QUEUE_ROWS)
    groups = _node_groups(hub, status)
    view: dict[str, Any] = {
        "status": status,
        "waiting": len(queue),
        "waiting_more": len(queue) >= QUEUE_ROWS,
        "stale_nodes": sum(group["stale"] for group in groups),
    }
    if section == OVERVIEW:
        view["overview"] = _overview(hub, status, groups)
        view["overview"]["disputed_entries"] = hub.entries.newest(disputed=True, limit=0).total
    elif section == "lists":
        view["staged"] = hub.lists.staged_changes(100)
    elif section == "entries":
        view.update(_entries_section(hub, status, query or {}))
    elif section == "review":
        view["queue"] = queue
        view["withdrawals"] = hub.cases.withdrawals(QUEUE_ROWS)
        root = hub.keys.root()
        view["entries_lists"] = sorted(lid for lid, spec in root.lists.items() if spec.entries)
        view["vocabulary"] = root.vocabulary
    elif section == "nodes":
        view["node_groups"] = groups
        view["stale_after"] = hub.config.max_checkpoint_age
    elif section == "counts":
        history = {entry.id: hub.ledger.count_history(entry.id) for entry in status.lists}
        view["chart"] = line_chart(history)
        view["per_hash"] = _per_hash(hub, status)
    elif section == "keys":
        view["keys"] = hub.keys.records()
    elif section == "log":
        view["actions"] = hub.reports.actions(LOG_ROWS)
    else:
        raise NotFound(f"the dashboard has no section {section[:40]!r}")
    return view


def _entry_filter(query: Mapping[str, str], categories: tuple[str, ...]) -> dict[str, Any]:
    """The entries section's filter from its query string: ``category`` (a category of
    the vocabulary; empty: any) and ``disputed`` (``1``: only entries at least one
    platform disputes; empty: all).

    Raises:
        InvalidRequest: any other value, so a mistyped filter never reads as "no entries".
    """
    category = query.get("category", "")
    if category and category not in categories:
        raise InvalidRequest(
            f"{category[:40]!r} is not a category of the vocabulary: "
            f"one of {', '.join(categories) or 'none yet'}"
        )
    disputed = query.get("disputed", "")
    if disputed not in ("", "1"):
        raise InvalidRequest("'disputed' is 1 (entries a platform disputes) or empty")
    return {"category": category or None, "disputed": disputed == "1"}


def _said(view: EntryView) -> list[str]:
    """What platforms say of an entry, one phrase per position held, e.g.
    ``1 confirmed (blocked)``: each platform counts once (its newest position), and
    a position taken back (``none``) not at all."""
    phrases = []
    for position in ("confirmed", "disputed"):
        held = [p for p in view.opinions["platforms"] if p["position"] == position]
        if held:
            reasons = ", ".join(sorted({str(p["reason"]) for p in held if p["reason"]}))
            phrases.append(f"{len(held)} {position}" + (f" ({reasons})" if reasons else ""))
    return phrases


def _entry_row(view: EntryView, now: datetime) -> dict[str, Any]:
    """One row of the entries table: the entry as ``Entries.show`` gives it, with
    its state put in words. A retracted entry is ``retracted`` with its reason
    (``withdrawn`` when its person withdrew it); otherwise it is ``pending`` while
    the next publish changes one of its records, else ``listed``."""
    row = view.to_dict()
    pending = any(item["pending"] for item in view.lists)
    past = _age_seconds(view.expires, now)
    if view.retracted is not None:
        state = "retracted"
    elif pending:
        state = "pending"
    elif any(item["listed"] for item in view.lists):
        state = "listed"
    else:
        state = "unlisted"
    row.update(
        state=state,
        pending=pending,
        expired=past is not None and past >= 0,
        said=_said(view),
    )
    return row


def _entries_section(hub: Hub, status: HubStatus, query: Mapping[str, str]) -> dict[str, Any]:
    """The entries lists, and the newest entries that pass the query's filter."""
    root = hub.keys.root()
    categories = root.vocabulary.categories if root.vocabulary else ()
    wanted = _entry_filter(query, categories)
    found = hub.entries.newest(**wanted, limit=ENTRY_ROWS)
    disputes = hub.disputes.newest([view.entry for view in found.entries])
    now = hub.now()
    return {
        "entries_lists": [entry for entry in status.lists if root.lists[entry.id].entries],
        "hash_types": {entry.id: entry.hash_type for entry in status.lists},
        "categories": categories,
        "entry_filter": wanted,
        "entries": [
            _entry_row(view, now)
            | {"dispute": disputes[view.entry].to_dict() if view.entry in disputes else None}
            for view in found.entries
        ],
        "entries_total": found.total,
        "entries_more": found.more,
    }


def _reporters(flagged: FlaggedHash, reason: str) -> int:
    """How many nodes reported the counter behind a flag reason (``Ledger.flagged_hashes``)."""
    counter = "false_positive" if reason == "false positives" else "matched"
    return flagged.nodes.get(counter, 0)


def _may(principal: Principal, roles: tuple[str, ...]) -> bool:
    return principal.role == "admin" or principal.role in roles


def detail_pairs(detail: object) -> list[tuple[str, str, bool]]:
    """An action's detail as ``(key, value, is_token)`` lines for people, not JSON.

    A list is joined with commas, a nested object written ``key=value``, nothing
    written as JSON punctuation. ``is_token`` marks a value with no space in it
    (a hash, a key id, a time): the page keeps such a value on one line. The
    template escapes every key and value.
    """

    def text(value: object) -> str:
        if value is None:
            return "—"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, Mapping):
            return ", ".join(f"{k}={text(v)}" for k, v in value.items())
        if isinstance(value, list | tuple):
            return ", ".join(text(v) for v in value) if value else "none"
        return str(value)

    if not isinstance(detail, Mapping):
        shown = text(detail)
        return [("", shown, " " not in shown)] if detail not in (None, {}) else []
    pairs = []
    for key, value in detail.items():
        shown = text(value)
        pairs.append((str(key).replace("_", " "), shown, not any(c.isspace() for c in shown)))
    return pairs


def _section_page(section: str) -> Handler:
    """The handler of ``/dashboard`` (``OVERVIEW``) or of one of its ``SECTIONS``."""
    template = f"dashboard/{section}.html"

    async def page(request: web.Request) -> web.StreamResponse:
        session = await _session(request)
        session.principal.require(*READ_ROLES)
        query = request.query
        view = await request.app[HUB].call(lambda hub: dashboard_view(hub, section, query))
        notice = _NOTICES.get(request.query.get("notice", ""))
        return _render(
            request,
            template,
            {
                **view,
                "section": section,
                "sections": SECTIONS,
                "session": session,
                "can_write": _may(session.principal, WRITE_ROLES),
                "is_admin": session.principal.role == "admin",
                "notice": notice,
            },
        )

    return page


async def publish(request: web.Request) -> web.StreamResponse:
    session, form = await _operator_post(request, {"list"}, WRITE_ROLES)
    wanted = form.get("list", "")
    who = session.principal.subject

    def run(hub: Hub) -> list[PublishResult]:
        if wanted:
            hub.lists.spec(wanted)
        return hub.publishing.publish([wanted] if wanted else None, who=who)

    results = await request.app[HUB].call(run)
    after_publish(request.app, results, "dashboard")
    # The publish form is in the lists section, with the staged changes it publishes.
    return _redirect(f"/dashboard/lists?notice={'published' if results else 'nothing'}")


async def review(request: web.Request) -> web.StreamResponse:
    session, form = await _operator_post(
        request, {"decision", "list", "category", "classification"}, WRITE_ROLES
    )
    try:
        case_number = _case_number(request.match_info["case"])
    except InvalidRequest:
        raise NotFound("no case has that number") from None
    decision = form.get("decision", "")
    if decision not in ("accept", "reject"):
        raise InvalidRequest("the decision is accept or reject")
    list_id = form.get("list") or None
    category = form.get("category") or None
    classification = form.get("classification") or None
    who = session.principal.subject

    def run(hub: Hub) -> None:
        # The form offers the terms with every list; a hashes list takes none of them.
        wants_terms = list_id is not None and hub.lists.spec(list_id).entries
        hub.cases.review(
            case_number,
            accept=decision == "accept",
            list_id=list_id,
            category=category if wants_terms else None,
            classification=classification if wants_terms else None,
            who=who,
        )

    await request.app[HUB].call(run)
    return _redirect(f"/dashboard/review?notice={decision}ed")


async def decide_withdrawal(request: web.Request) -> web.StreamResponse:
    """Approve or refuse a withdrawal waiting for review (the ``review`` policy)."""
    session, form = await _operator_post(request, {"decision"}, WRITE_ROLES)
    try:
        case_number = _case_number(request.match_info["case"])
    except InvalidRequest:
        raise NotFound("no case has that number") from None
    decision = form.get("decision", "")
    if decision not in ("approve", "refuse"):
        raise InvalidRequest("the decision is approve or refuse")
    who = session.principal.subject
    await request.app[HUB].call(
        lambda hub: hub.cases.decide_withdrawal(case_number, approve=decision == "approve", who=who)
    )
    notice = "withdrawn" if decision == "approve" else "refused"
    return _redirect(f"/dashboard/review?notice={notice}")


NODE_CHANGES = ("grant", "ungrant", "key", "suspend", "resume", "platform", "token")
"""What the nodes section's forms change (``hub.services.access``), admin only."""


async def change_node(request: web.Request) -> web.StreamResponse:
    """One change to an enrolled node, as its CLI command and API route make it."""
    change = request.match_info["change"]
    if change not in NODE_CHANGES:
        raise NotFound(f"no change {change[:40]!r}; one of {', '.join(NODE_CHANGES)}")
    session, form = await _operator_post(request, {"list", "public_key", "reason", "platform"}, ())
    node_id = check_node_id(request.match_info["node_id"])
    who = session.principal.subject
    if change == "token":

        def reissue(hub: Hub) -> tuple[str, dict[str, Any]]:
            return hub.access.reissue_token(node_id, who), dashboard_view(hub, "nodes")

        token, view = await request.app[HUB].call(reissue)
        invalidate_caches(request.app)
        page = _render(
            request,
            "node_reissued.html",
            {
                **view,
                "node": node_id,
                "token": token,
                "sections": SECTIONS,
                "session": session,
                "notice": None,
            },
        )
        return page  # no-store, as every page (_page_headers): the token is shown once
    list_id = form.get("list", "")
    reason = form.get("reason", "")
    if change in ("grant", "ungrant"):
        check_list_id(list_id)

    def run(hub: Hub) -> str:
        if change == "grant":
            hub.access.grant(node_id, [list_id], who)
            return "granted"
        if change == "ungrant":
            hub.access.ungrant(node_id, [list_id], who)
            return "ungranted"
        if change == "key":
            hub.access.rekey(node_id, public_key_of(form.get("public_key", "")), who)
            return "rekeyed"
        if change == "suspend":
            hub.access.suspend(node_id, reason, who)
            return "suspended"
        if change == "platform":
            hub.access.set_platform(node_id, form.get("platform", "").strip(), who)
            return "moved"
        hub.access.resume(node_id, who)
        return "resumed"

    notice = await request.app[HUB].call(run)
    invalidate_caches(request.app)
    return _redirect(f"/dashboard/nodes?notice={notice}#node-{node_id}")


async def shared_stylesheet(request: web.Request) -> web.StreamResponse:
    """The look the hub's pages share with the node's (``edge.web``)."""
    return web.Response(body=request.app[STYLESHEET], content_type="text/css")


# -- setup ------------------------------------------------------------------------------


def setup(app: web.Application) -> None:
    """Add the pages, their templates, static files, error pages and headers to ``app``."""
    config = app[CONFIG]
    if config.secure_cookies not in SECURE_COOKIES:
        raise InvalidRequest(
            f"secure_cookies is {' or '.join(SECURE_COOKIES)}, not {config.secure_cookies!r}"
        )
    if config.withdrawal not in WITHDRAWAL_POLICIES:
        raise InvalidRequest(
            f"withdrawal is {' or '.join(WITHDRAWAL_POLICIES)}, not {config.withdrawal!r}"
        )
    app[LIMITER] = RateLimiter(burst=config.web_rate_burst, per_hour=config.web_rate_per_hour)
    app[WITHDRAW_LIMITER] = RateLimiter(burst=WITHDRAW_BURST, per_hour=WITHDRAW_PER_HOUR)
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["grouped"] = group_case
    env.filters["pairs"] = detail_pairs
    app[STYLESHEET] = shared_stylesheet_bytes()
    app.middlewares.append(page_errors)
    app.on_response_prepare.append(_page_headers)
    p = PAGE_ROUTE_PREFIX
    router = app.router
    router.add_get("/", home, name=p + "home", allow_head=False)
    router.add_get("/submit", submit_form, name=p + "submit", allow_head=False)
    router.add_post("/submit", submit, name=p + "submit")
    router.add_get("/case", case_form, name=p + "case", allow_head=False)
    router.add_post("/case", case_lookup, name=p + "case")
    router.add_post("/case/withdraw", withdraw_case, name=p + "withdraw")
    router.add_get("/login", login_form, name=p + "login", allow_head=False)
    router.add_post("/login", login, name=p + "login")
    router.add_post("/logout", logout, name=p + "logout")
    router.add_get("/dashboard", _section_page(OVERVIEW), name=p + "dashboard", allow_head=False)
    for section, _ in SECTIONS:
        router.add_get(
            f"/dashboard/{section}",
            _section_page(section),
            name=f"{p}dashboard-{section}",
            allow_head=False,
        )
    router.add_post("/dashboard/publish", publish, name=p + "publish")
    router.add_post("/dashboard/cases/{case}/review", review, name=p + "review")
    router.add_post("/dashboard/cases/{case}/withdrawal", decide_withdrawal, name=p + "withdrawal")
    router.add_post("/dashboard/nodes/{node_id}/{change}", change_node, name=p + "node-change")
    # Before the static directory: the more specific route is the one that answers.
    router.add_get(
        f"/static/{SHARED_STYLESHEET}", shared_stylesheet, name=p + "stylesheet", allow_head=False
    )
    router.add_static("/static/", _STATIC, name=p + "static", append_version=False)
