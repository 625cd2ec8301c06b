"""Who may call what: every route of the hub and of the node against every principal.

The tables below are the access-control policy written out, one row per request
and one column per principal; each cell is the class of answer that principal
must get. The tests send every request as every principal to the real apps (real
SQLite, real Ed25519 keys, loopback HTTP) and report every cell that differs. The
routes are read from each app's router, and a route that no row exercises fails
the test: a new route has to be classified before it ships.

Outcomes:

- ``OK``: 2xx.
- ``LOGIN``: 303 to the login page (an HTML page that needs a session).
- ``SEE_OTHER``: another 303 (a public page that moves the browser on).
- ``UNAUTH``: 401 (no credential, or one that is wrong, unknown or revoked).
- ``FORBID``: 403 (a valid credential without the right to this).
- ``INPUT``: 400, 404, 415 or 422 after the credential was accepted (or on a
  public route): the request was let in and its body or path refused. The
  mutating routes are sent bodies that are refused, so that the table does not
  depend on the order requests are sent in; a refused body still proves the
  credential got past the check that ``FORBID`` and ``UNAUTH`` are made by.
  A file that is not published is ``INPUT`` (404) too.

Columns of the hub: ``anonymous``, ``node`` (a node granted the private list),
``other_node`` (a node granted another list only), the four operator roles,
``wrong`` (a well-formed token the hub never issued), ``revoked_node`` and
``revoked_operator`` (an admin's token after ``revoke_operator_tokens``). On the
API routes they are sent as bearer tokens. On the HTML pages an operator role is
a dashboard session opened with its token through the login form; every other
principal sends its bearer token, which no page accepts; ``revoked_operator`` is a
session opened before its token was revoked, which must end with the token.
"""

from __future__ import annotations

import ast
import json
import re
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hub.api.admin import ADMIN_ROUTES
from hub.api.tree import TREE_ROUTES
from hub.app import create_app
from hub.web.limits import RateLimiter
from hub.web.pages import LIMITER, PAGE_ROUTE_PREFIX, SESSION_COOKIE
from node.config import read_secret
from node.web.pages import SESSION_COOKIE as NODE_SESSION_COOKIE
from protocol import SigningKey
from tests.hub.conftest import (
    LIST,
    NODE_ID,
    OTHER_LIST,
    PUBLIC_LIST,
    Follower,
    ack_headers,
    bearer,
    init_hub,
    opened,
    pinned,
)
from tests.web.node_support import node_of, start_hub, start_node_site

Client = TestClient[web.Request, web.Application]

OK, LOGIN, SEE_OTHER, UNAUTH, FORBID, INPUT = (
    "OK",
    "LOGIN",
    "SEE_OTHER",
    "UNAUTH",
    "FORBID",
    "INPUT",
)
_INPUT_STATUSES = frozenset({400, 404, 415, 422})

HUB_PRINCIPALS = (
    "anonymous",
    "node",
    "other_node",
    "admin",
    "publisher",
    "viewer",
    "auditor",
    "wrong",
    "revoked_node",
    "revoked_operator",
)
OPERATORS = ("admin", "publisher", "viewer", "auditor")
NOT_OPERATORS = ("anonymous", "node", "other_node", "wrong", "revoked_node", "revoked_operator")


def outcome_of(status: int, location: str | None) -> str:
    """The class of an answer, in the words of the tables."""
    if 200 <= status < 300:
        return OK
    if status == 303:
        return LOGIN if location in ("/login", "/status/login") else SEE_OTHER
    if status == 401:
        return UNAUTH
    if status == 403:
        return FORBID
    if status in _INPUT_STATUSES:
        return INPUT
    return f"unexpected {status}"


def everyone(outcome: str) -> dict[str, str]:
    return dict.fromkeys(HUB_PRINCIPALS, outcome)


def admin_api(*roles: str, allowed: str = OK) -> dict[str, str]:
    """An operator route that ``admin`` and ``roles`` may call: the others get 401 or 403."""
    row = {
        "anonymous": UNAUTH,
        "node": FORBID,
        "other_node": FORBID,
        "wrong": UNAUTH,
        "revoked_node": UNAUTH,
        "revoked_operator": UNAUTH,
    }
    for role in OPERATORS:
        row[role] = allowed if role == "admin" or role in roles else FORBID
    return row


def private_file(present: str = OK) -> dict[str, str]:
    """A file of the private list ``LIST``: its node and every operator may read it."""
    row = {
        "anonymous": UNAUTH,
        "node": present,
        "other_node": FORBID,
        "wrong": UNAUTH,
        "revoked_node": UNAUTH,
        "revoked_operator": UNAUTH,
    }
    row.update(dict.fromkeys(OPERATORS, present))
    return row


def public_file() -> dict[str, str]:
    """A root or a file of a public list: anyone may read it, whatever token comes with it.

    The bytes are the same for everyone (and cacheable by shared caches), so a token
    sent along is not looked at: a wrong or revoked one neither opens nor closes it.
    """
    return everyone(OK)


def dashboard_page(*, writers: str, readers: str) -> dict[str, str]:
    """A dashboard page: what a session of ``admin`` or ``publisher`` (``writers``) gets,
    and of ``viewer`` or ``auditor`` (``readers``); without a session, the login page."""
    row = dict.fromkeys(NOT_OPERATORS, LOGIN)
    row.update(admin=writers, publisher=writers, viewer=readers, auditor=readers)
    return row


@dataclass(frozen=True, eq=False)
class Call:
    """One request of a table row: the route it exercises and what is sent."""

    method: str
    route: str  # the router's canonical path
    path: str  # the concrete path, with ``{body}`` for the private list's first body
    body: Mapping[str, object] | None = None  # JSON for the API routes
    form: Mapping[str, str] | None = None  # a urlencoded form for the HTML pages
    ack: bool = False  # the body is the node's signed ack


HUB_TABLE: dict[Call, dict[str, str]] = {
    # -- the published tree ----------------------------------------------------------------
    Call("GET", "/root/{version}.json", "/root/1.json"): public_file(),
    Call("GET", "/root/{version}.json.sig", "/root/1.json.sig"): public_file(),
    Call("GET", "/lists/{list_id}/checkpoint", f"/lists/{LIST}/checkpoint"): private_file(),
    Call("GET", "/lists/{list_id}/checkpoint", f"/lists/{PUBLIC_LIST}/checkpoint"): public_file(),
    Call("GET", "/lists/{list_id}/delta/{version}.json", f"/lists/{LIST}/delta/1.json"): (
        private_file()
    ),
    Call(
        "GET", "/lists/{list_id}/delta/{version}.json", f"/lists/{PUBLIC_LIST}/delta/1.json"
    ): public_file(),
    Call(
        "GET", "/lists/{list_id}/delta/{version}.json.sig", f"/lists/{LIST}/delta/1.json.sig"
    ): private_file(),
    Call(
        "GET",
        "/lists/{list_id}/delta/{version}.json.sig",
        f"/lists/{PUBLIC_LIST}/delta/1.json.sig",
    ): public_file(),
    Call("GET", "/lists/{list_id}/body/{sha256}.txt", f"/lists/{LIST}/body/{{body}}.txt"): (
        private_file()
    ),
    Call("GET", "/lists/{list_id}/snapshot/{version}.bin", f"/lists/{LIST}/snapshot/2.bin"): (
        private_file()
    ),
    # The list has no entries, so no opinion summary: its readers get a 404 (INPUT).
    Call(
        "GET", "/lists/{list_id}/opinions/{sha256}.json", f"/lists/{LIST}/opinions/{'0' * 64}.json"
    ): private_file(present=INPUT),
    # Nor provenance: nothing was re-published or contributed (INPUT).
    Call(
        "GET",
        "/lists/{list_id}/provenance/{sha256}.json",
        f"/lists/{LIST}/provenance/{'0' * 64}.json",
    ): private_file(present=INPUT),
    # Nor frames: the list holds no videos (INPUT).
    Call(
        "GET", "/lists/{list_id}/frames/{sha256}.bin", f"/lists/{LIST}/frames/{'0' * 64}.bin"
    ): private_file(present=INPUT),
    # A file that does not exist is no different: the list's access is checked first, so
    # a node of another list cannot probe which versions of a private list exist.
    Call("GET", "/lists/{list_id}/snapshot/{version}.bin", f"/lists/{LIST}/snapshot/1.bin"): (
        private_file(present=INPUT)
    ),
    Call(
        "GET", "/lists/{list_id}/snapshot/{version}.bin", f"/lists/{PUBLIC_LIST}/snapshot/1.bin"
    ): everyone(INPUT),
    # -- acks: only the node the ack names, with its own token -------------------------------
    Call("POST", "/v1/acks", "/v1/acks", ack=True): {
        "anonymous": UNAUTH,
        "node": OK,
        # The other node's token authenticates, but the ack is not signed by its key.
        "other_node": INPUT,
        "admin": FORBID,
        "publisher": FORBID,
        "viewer": FORBID,
        "auditor": FORBID,
        "wrong": UNAUTH,
        "revoked_node": UNAUTH,
        "revoked_operator": UNAUTH,
    },
    # -- contributions: a node's own, with its token (the body here is refused: no sidecar) --
    Call("POST", "/v1/contributions", "/v1/contributions", body={}): {
        **admin_api(allowed=FORBID),
        "node": INPUT,
        "other_node": INPUT,
    },
    # A node reads only its own contributions (none here: 404); an operator reads the queue.
    Call("GET", "/v1/contributions/{seq}", "/v1/contributions/1"): {
        **admin_api(allowed=FORBID),
        "node": INPUT,
        "other_node": INPUT,
    },
    # -- the operator API (ADMIN_ROUTES) ---------------------------------------------------
    Call("GET", "/v1/admin/status", "/v1/admin/status"): admin_api("viewer", "auditor"),
    Call("GET", "/v1/admin/lists", "/v1/admin/lists"): admin_api("viewer", "auditor"),
    Call("POST", "/v1/admin/lists", "/v1/admin/lists", body={"id": "../x"}): admin_api(
        allowed=INPUT
    ),
    Call("GET", "/v1/admin/lists/{list_id}/counts", f"/v1/admin/lists/{LIST}/counts"): (
        admin_api("viewer", "auditor")
    ),
    Call(
        "POST",
        "/v1/admin/lists/{list_id}/stage",
        f"/v1/admin/lists/{LIST}/stage",
        body={"add": ["not a hash"]},
    ): admin_api("publisher", allowed=INPUT),
    Call(
        "POST",
        "/v1/admin/lists/{list_id}/import",
        f"/v1/admin/lists/{LIST}/import",
        body={"nothing": True},
    ): admin_api("publisher", allowed=INPUT),
    Call("POST", "/v1/admin/publish", "/v1/admin/publish", body={"lists": ["no-such-list"]}): (
        admin_api("publisher", allowed=INPUT)
    ),
    # Entries lists: read by every operator, staged by a publisher (each body here is
    # refused by the rules, so no row changes the hub), a term added by admin only.
    Call("GET", "/v1/admin/vocabulary", "/v1/admin/vocabulary"): admin_api(
        "viewer", "auditor", "publisher"
    ),
    Call(
        "POST", "/v1/admin/vocabulary", "/v1/admin/vocabulary", body={"group": "x", "term": "y"}
    ): admin_api(allowed=INPUT),
    Call("GET", "/v1/admin/entries", "/v1/admin/entries"): admin_api(
        "viewer", "auditor", "publisher"
    ),
    Call("POST", "/v1/admin/entries", "/v1/admin/entries", body={"hashes": {}}): admin_api(
        "publisher", allowed=INPUT
    ),
    Call(
        "POST", "/v1/admin/entries/import", "/v1/admin/entries/import", body={"nothing": True}
    ): admin_api("publisher", allowed=INPUT),
    Call(
        "POST",
        "/v1/admin/entries/change",
        "/v1/admin/entries/change",
        body={"entry": "e-none", "category": "ncii"},
    ): admin_api("publisher", allowed=INPUT),
    Call(
        "POST",
        "/v1/admin/entries/retract",
        "/v1/admin/entries/retract",
        body={"entry": "e-none", "reason": "withdrawn"},
    ): admin_api("publisher", allowed=INPUT),
    Call("GET", "/v1/admin/nodes", "/v1/admin/nodes"): admin_api("viewer", "auditor"),
    Call("POST", "/v1/admin/nodes", "/v1/admin/nodes", body={"id": "Bad Id"}): admin_api(
        allowed=INPUT
    ),
    Call("DELETE", "/v1/admin/nodes/{node_id}", "/v1/admin/nodes/no-such-node"): admin_api(
        allowed=INPUT
    ),
    Call(
        "POST",
        "/v1/admin/nodes/{node_id}/grant",
        "/v1/admin/nodes/no-such-node/grant",
        body={"lists": ["tid-md5"]},
    ): admin_api(allowed=INPUT),
    Call(
        "POST",
        "/v1/admin/nodes/{node_id}/ungrant",
        "/v1/admin/nodes/no-such-node/ungrant",
        body={"lists": ["tid-md5"]},
    ): admin_api(allowed=INPUT),
    Call(
        "POST",
        "/v1/admin/nodes/{node_id}/key",
        "/v1/admin/nodes/no-such-node/key",
        body={"public_key": "00"},
    ): admin_api(allowed=INPUT),
    Call(
        "POST",
        "/v1/admin/nodes/{node_id}/token",
        "/v1/admin/nodes/no-such-node/token",
        body={},
    ): admin_api(allowed=INPUT),
    Call(
        "POST",
        "/v1/admin/nodes/{node_id}/suspend",
        "/v1/admin/nodes/no-such-node/suspend",
        body={},
    ): admin_api(allowed=INPUT),
    Call(
        "POST",
        "/v1/admin/nodes/{node_id}/resume",
        "/v1/admin/nodes/no-such-node/resume",
        body={},
    ): admin_api(allowed=INPUT),
    Call(
        "POST",
        "/v1/admin/nodes/{node_id}/platform",
        "/v1/admin/nodes/no-such-node/platform",
        body={"platform": "shop"},
    ): admin_api(allowed=INPUT),
    Call("GET", "/v1/admin/keys", "/v1/admin/keys"): admin_api("viewer", "auditor"),
    Call("POST", "/v1/admin/keys/{role}/rotate", "/v1/admin/keys/no-such-role/rotate"): (
        admin_api(allowed=INPUT)
    ),
    Call("POST", "/v1/admin/tokens", "/v1/admin/tokens", body={"role": "emperor"}): admin_api(
        allowed=INPUT
    ),
    Call("GET", "/v1/admin/actions", "/v1/admin/actions"): admin_api("viewer", "auditor"),
    Call("GET", "/v1/admin/evidence", "/v1/admin/evidence"): admin_api("auditor"),
    Call("GET", "/v1/admin/acks", "/v1/admin/acks"): admin_api("auditor"),
    # The review of public submissions: the dashboard's readers read, its writers review.
    Call("GET", "/v1/admin/cases", "/v1/admin/cases"): admin_api("viewer", "auditor", "publisher"),
    Call("GET", "/v1/admin/cases/{case}", f"/v1/admin/cases/{'0' * 32}"): admin_api(
        "viewer", "auditor", "publisher", allowed=INPUT
    ),
    Call(
        "POST",
        "/v1/admin/cases/{case}/accept",
        f"/v1/admin/cases/{'0' * 32}/accept",
        body={"list": "no-such-list"},
    ): admin_api("publisher", allowed=INPUT),
    Call("POST", "/v1/admin/cases/{case}/reject", "/v1/admin/cases/not-a-case/reject"): (
        admin_api("publisher", allowed=INPUT)
    ),
    Call("GET", "/v1/admin/withdrawals", "/v1/admin/withdrawals"): admin_api(
        "viewer", "auditor", "publisher"
    ),
    Call(
        "POST",
        "/v1/admin/withdrawals/{case}",
        f"/v1/admin/withdrawals/{'0' * 32}",
        body={"decision": "approve"},
    ): admin_api("publisher", allowed=INPUT),
    Call("GET", "/v1/admin/disputes", "/v1/admin/disputes"): admin_api(
        "viewer", "auditor", "publisher"
    ),
    Call(
        "POST",
        "/v1/admin/disputes/{entry}",
        "/v1/admin/disputes/e-no-such-entry",
        body={"decision": "dismiss"},
    ): admin_api("publisher", allowed=INPUT),
    # Members' contributions: every operator reads the queue, a publisher decides.
    Call("GET", "/v1/admin/contributions", "/v1/admin/contributions"): admin_api(
        "viewer", "auditor", "publisher"
    ),
    Call(
        "POST",
        "/v1/admin/contributions/{node}/{seq}",
        "/v1/admin/contributions/no-such-node/1",
        body={"decision": "reject"},
    ): admin_api("publisher", allowed=INPUT),
    # Trusted platforms: every operator reads who is trusted; only admin trusts (the body
    # names a platform no node serves: 404) or stops trusting (none is trusted: 404).
    Call("GET", "/v1/admin/contributions/trust", "/v1/admin/contributions/trust"): admin_api(
        "viewer", "auditor", "publisher"
    ),
    Call(
        "POST",
        "/v1/admin/contributions/trust",
        "/v1/admin/contributions/trust",
        body={"platform": "no-such-platform", "list": LIST},
    ): admin_api(allowed=INPUT),
    Call(
        "DELETE",
        "/v1/admin/contributions/trust/{platform}",
        "/v1/admin/contributions/trust/no-such-platform",
    ): admin_api(allowed=INPUT),
    # -- health, metrics, the API document: public -----------------------------------------
    Call("GET", "/healthz", "/healthz"): everyone(OK),
    Call("GET", "/readyz", "/readyz"): everyone(OK),
    Call("GET", "/metrics", "/metrics"): everyone(OK),
    Call("GET", "/openapi.yaml", "/openapi.yaml"): everyone(OK),
    # -- the HTML pages --------------------------------------------------------------------
    Call("GET", "/", "/"): everyone(SEE_OTHER),
    Call("GET", "/submit", "/submit"): everyone(OK),
    Call("POST", "/submit", "/submit", form={"type": "md5", "hash": "not hex"}): everyone(INPUT),
    Call("GET", "/case", "/case"): everyone(OK),
    Call("POST", "/case", "/case", form={"case": "not a case"}): everyone(INPUT),
    Call(
        "POST", "/case/withdraw", "/case/withdraw", form={"case": "not a case", "code": "x"}
    ): everyone(INPUT),
    Call("GET", "/login", "/login"): everyone(OK),
    # The login form without its double-submit nonce is refused for everyone, logged in or not.
    Call("POST", "/login", "/login", form={"token": "x"}): everyone(FORBID),
    Call("GET", "/dashboard", "/dashboard"): dashboard_page(writers=OK, readers=OK),
    # Each section of the dashboard: read as the overview is.
    **{
        Call("GET", f"/dashboard/{name}", f"/dashboard/{name}"): dashboard_page(
            writers=OK, readers=OK
        )
        for name in ("lists", "entries", "review", "nodes", "counts", "keys", "log")
    },
    Call(
        "POST", "/dashboard/publish", "/dashboard/publish", form={"list": "no-such-list"}
    ): dashboard_page(writers=INPUT, readers=FORBID),
    Call(
        "POST",
        "/dashboard/cases/{case}/review",
        "/dashboard/cases/0000-0000/review",
        form={"decision": "accept"},
    ): dashboard_page(writers=INPUT, readers=FORBID),
    Call(
        "POST",
        "/dashboard/cases/{case}/withdrawal",
        "/dashboard/cases/0000-0000/withdrawal",
        form={"decision": "approve"},
    ): dashboard_page(writers=INPUT, readers=FORBID),
    Call(
        "POST",
        "/dashboard/nodes/{node_id}/{change}",
        "/dashboard/nodes/no-such-node/suspend",
        form={},
    ): {**dashboard_page(writers=INPUT, readers=FORBID), "publisher": FORBID},
    Call("GET", "/static/hashhub.css", "/static/hashhub.css"): everyone(OK),
    Call("GET", "/static", "/static/hub.css"): everyone(OK),
    # Last: logging out ends each session the rows above used (and then, as without a
    # session, sends the browser to the login page).
    Call("POST", "/logout", "/logout", form={}): everyone(LOGIN),
}
"""Every route of the hub: what each principal gets."""


# -- the hub ----------------------------------------------------------------------------


@dataclass
class HubWorld:
    """The real hub on loopback and one credential per principal."""

    client: Client
    tokens: dict[str, str | None]
    sessions: dict[str, tuple[str, str]]  # principal -> (session cookie, csrf)
    body_sha256: str
    ack: tuple[bytes, bytes]
    page_routes: frozenset[str]  # canonical paths of the HTML pages (``page:`` routes)


def _login_nonce(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, "the login page carries no nonce"
    return found.group(1)


async def _open_session(client: Client, token: str) -> tuple[str, str]:
    """Log in through the form as a browser does; the session cookie and its CSRF token."""
    client.session.cookie_jar.clear()
    page = await client.get("/login")
    answer = await client.post(
        "/login",
        data={"token": token, "csrf": _login_nonce(await page.text())},
        allow_redirects=False,
    )
    assert answer.status == 303, await answer.text()
    cookie = answer.cookies[SESSION_COOKIE].value
    dashboard = await client.get("/dashboard", allow_redirects=False)
    assert dashboard.status == 200, await dashboard.text()
    csrf = _login_nonce(await dashboard.text())
    client.session.cookie_jar.clear()
    return cookie, csrf


@pytest.fixture
async def hub_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[HubWorld]:
    # Three columns send wrong tokens from 127.0.0.1 to every route: the per-address limit
    # on failed authentication (tests/reliability/test_rate_limits.py) is not this table's.
    monkeypatch.setenv("HASHHUB_AUTH_FAILURE_BURST", "0")
    home = tmp_path / "hub"
    init_hub(home)
    node_key = SigningKey.generate()
    with opened(home) as hub:
        tokens: dict[str, str | None] = {
            role: hub.access.create_operator_token(role, f"test-{role}") for role in OPERATORS
        }
        tokens["node"] = hub.access.enrol_node(NODE_ID, node_key.public, [LIST])
        tokens["other_node"] = hub.access.enrol_node(
            "platform-b", SigningKey.generate().public, [OTHER_LIST]
        )
        tokens["revoked_node"] = hub.access.enrol_node(
            "platform-r", SigningKey.generate().public, [LIST]
        )
        tokens["revoked_operator"] = hub.access.create_operator_token("admin", "former-admin")
        hub.access.revoke_node("platform-r")
    tokens["anonymous"] = None
    tokens["wrong"] = "hho_" + secrets.token_urlsafe(32)

    app = create_app(home, schedule=False)
    # Every principal's page requests come from 127.0.0.1; the public forms' per-address
    # limit is a separate rule (tested with the pages), not what this table is about.
    app[LIMITER] = RateLimiter(burst=10_000, per_hour=10_000)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        sessions = {role: await _open_session(client, str(tokens[role])) for role in OPERATORS}
        sessions["revoked_operator"] = await _open_session(client, str(tokens["revoked_operator"]))
        with opened(home) as hub:
            assert hub.access.revoke_operator_tokens("former-admin") == 1

        header = await client.get(
            f"/lists/{LIST}/delta/1.json", headers=bearer(str(tokens["admin"]))
        )
        assert header.status == 200
        body_sha256 = json.loads(await header.read())["body"]["sha256"]

        follower = Follower(client, pinned(home), token=str(tokens["node"]))
        await follower.update(LIST)
        ack = await follower.ack(node_key, LIST, seq=1)
        pages = frozenset(
            route.resource.canonical
            for route in app.router.routes()
            if route.resource is not None and (route.name or "").startswith(PAGE_ROUTE_PREFIX)
        )
        yield HubWorld(client, tokens, sessions, body_sha256, ack, pages)


async def _send_hub(
    world: HubWorld, call: Call, principal: str, method: str
) -> tuple[int, str | None]:
    """Send ``call`` as ``principal``: a bearer token, or on a page its dashboard session."""
    client = world.client
    client.session.cookie_jar.clear()
    headers: dict[str, str] = {}
    token = world.tokens[principal]
    form = dict(call.form) if call.form is not None else None
    if call.route in world.page_routes and principal in world.sessions:
        cookie, csrf = world.sessions[principal]
        headers["Cookie"] = f"{SESSION_COOKIE}={cookie}"
        if form is not None and call.route != "/login":
            form["csrf"] = csrf
    elif token is not None:
        headers.update(bearer(token))
    path = call.path.replace("{body}", world.body_sha256)
    data: bytes | str | None = None
    if call.ack:
        data, sig = world.ack
        headers.update(ack_headers(None, sig))
    elif call.body is not None:
        data = json.dumps(call.body)
        headers["Content-Type"] = "application/json"
    response = await client.request(
        method,
        path,
        headers=headers,
        data=form if form is not None else data,
        allow_redirects=False,
    )
    await response.read()
    return response.status, response.headers.get("Location")


def _router_routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, canonical path) of every route the app answers, sub-applications included."""
    found: set[tuple[str, str]] = set()
    for resource in app.router.resources():
        if isinstance(resource, web.PrefixedSubAppResource):
            # The sub-application's own resources already carry its prefix. aiohttp
            # exposes the sub-application only as this attribute.
            found |= _router_routes(resource._app)
            continue
        for route in resource:
            found.add((route.method, resource.canonical))
    return found


def test_every_hub_route_is_in_the_table(tmp_path: Path) -> None:
    """A route that no row exercises fails: a new route must be classified first."""
    home = tmp_path / "hub"
    init_hub(home)
    routes = _router_routes(create_app(home, schedule=False))
    covered = {(call.method, call.route) for call in HUB_TABLE}
    # HEAD is answered as GET is (the tree's files and the static files allow it); the
    # table test sends HEAD for every such row and expects the GET row's outcome.
    heads = {("HEAD", route) for method, route in routes if method == "HEAD"}
    assert heads <= {("HEAD", route) for method, route in covered if method == "GET"}
    assert routes - heads == covered, (
        f"routes not in the table: {sorted(routes - heads - covered)}; "
        f"rows for no route: {sorted(covered - routes)}"
    )
    admin = {(route.method, route.path) for route in ADMIN_ROUTES}
    tree = {("GET", path) for path, _, _ in TREE_ROUTES}
    assert admin | tree <= covered


def test_each_row_lists_every_principal() -> None:
    for call, row in HUB_TABLE.items():
        assert set(row) == set(HUB_PRINCIPALS), call


async def test_hub_answers_every_principal_as_the_table_says(hub_world: HubWorld) -> None:
    heads = {route for method, route in _router_routes(hub_world.client.app) if method == "HEAD"}
    wrong: list[str] = []
    sent = 0
    for call, row in HUB_TABLE.items():
        methods = [call.method] + (["HEAD"] if call.method == "GET" and call.route in heads else [])
        for principal in HUB_PRINCIPALS:
            for method in methods:
                status, location = await _send_hub(hub_world, call, principal, method)
                sent += 1
                got = outcome_of(status, location)
                if got != row[principal]:
                    wrong.append(
                        f"{method} {call.path} as {principal}: {got} ({status}), "
                        f"table says {row[principal]}"
                    )
    assert sent >= len(HUB_TABLE) * len(HUB_PRINCIPALS)
    assert not wrong, "\n".join(wrong)


# -- the node ---------------------------------------------------------------------------

NODE_PRINCIPALS = ("api_token", "wrong", "none", "page_session")

NODE_API = {"api_token": OK, "wrong": UNAUTH, "none": UNAUTH, "page_session": UNAUTH}
NODE_API_INPUT = {**NODE_API, "api_token": INPUT}

NODE_TABLE: dict[Call, dict[str, str]] = {
    Call("POST", "/v1/match", "/v1/match", body={"hashes": "none"}): NODE_API_INPUT,
    Call(
        "POST",
        "/v1/matches/{match_id}/outcome",
        "/v1/matches/no-such-match/outcome",
        body={"outcome": "confirmed"},
    ): NODE_API_INPUT,
    Call("POST", "/v1/content", "/v1/content", body={"not": "an upload"}): NODE_API_INPUT,
    Call("GET", "/v1/status", "/v1/status"): NODE_API,
    Call("GET", "/v1/matches", "/v1/matches"): NODE_API,
    Call("GET", "/healthz", "/healthz"): dict.fromkeys(NODE_PRINCIPALS, OK),
    # The node's metrics name its lists and counts: only its platform reads them.
    Call("GET", "/metrics", "/metrics"): NODE_API,
    Call("GET", "/openapi.yaml", "/openapi.yaml"): NODE_API,
    # The status pages: the API token opens none of them; the session opens only them.
    Call("GET", "/status/", "/status/"): {
        "api_token": LOGIN,
        "wrong": LOGIN,
        "none": LOGIN,
        "page_session": OK,
    },
    # With a live session the login page sends the browser on to the status page.
    Call("GET", "/status/login", "/status/login"): {
        **dict.fromkeys(NODE_PRINCIPALS, OK),
        "page_session": SEE_OTHER,
    },
    # The login form: the API token typed in opens a session; anything else is refused.
    Call("POST", "/status/login", "/status/login", form={}): {
        "api_token": SEE_OTHER,
        "wrong": FORBID,
        "none": FORBID,
        "page_session": FORBID,
    },
    Call(
        "POST",
        "/status/matches/{match_id}/outcome",
        "/status/matches/no-such-match/outcome",
        form={"outcome": "confirmed"},
    ): {"api_token": FORBID, "wrong": FORBID, "none": FORBID, "page_session": INPUT},
    Call("GET", "/status/static/hashhub.css", "/status/static/hashhub.css"): dict.fromkeys(
        NODE_PRINCIPALS, OK
    ),
    Call("GET", "/status/static/node.css", "/status/static/node.css"): dict.fromkeys(
        NODE_PRINCIPALS, OK
    ),
    # Last: logging out ends the session the rows above used. A form posted without a
    # session (the node's pages answer 403 where the hub's redirect) changes nothing.
    Call("POST", "/status/logout", "/status/logout", form={}): {
        "api_token": FORBID,
        "wrong": FORBID,
        "none": FORBID,
        "page_session": LOGIN,
    },
}
"""Every route of the node: its platform's API token, a wrong one, none, a page session."""


@dataclass
class NodeWorld:
    client: Client
    api_token: str
    session: tuple[str, str]  # cookie, csrf


@pytest.fixture
async def node_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[NodeWorld]:
    monkeypatch.setenv("HASHHUB_NODE_AUTH_FAILURE_BURST", "0")  # as in ``hub_world``
    hub = await start_hub(tmp_path / "hub")
    try:
        client = await start_node_site(tmp_path / "node", hub, synced=False)
        try:
            token = read_secret(node_of(client).home / "api-token")
            answer = await client.post(
                "/status/login", data={"token": token}, allow_redirects=False
            )
            assert answer.status == 303, await answer.text()
            cookie = answer.cookies[NODE_SESSION_COOKIE].value
            page = await client.get("/status/", allow_redirects=False)
            csrf = _login_nonce(await page.text())
            client.session.cookie_jar.clear()
            yield NodeWorld(client, token, (cookie, csrf))
        finally:
            await client.close()
    finally:
        await hub.stop()


async def _send_node(
    world: NodeWorld, call: Call, principal: str, method: str
) -> tuple[int, str | None]:
    client = world.client
    client.session.cookie_jar.clear()
    headers: dict[str, str] = {}
    form = dict(call.form) if call.form is not None else None
    if principal == "page_session":
        cookie, csrf = world.session
        headers["Cookie"] = f"{NODE_SESSION_COOKIE}={cookie}"
        if form is not None and call.path != "/status/login":
            form["csrf"] = csrf
    elif principal == "api_token":
        headers.update(bearer(world.api_token))
    elif principal == "wrong":
        headers.update(bearer(secrets.token_urlsafe(32)))
    if call.path == "/status/login" and method == "POST":
        # What the person types into the login form is the principal's token.
        assert form is not None
        form["token"] = (
            world.api_token
            if principal == "api_token"
            else (secrets.token_urlsafe(32) if principal == "wrong" else "")
        )
    data: str | None = None
    if call.body is not None:
        data = json.dumps(call.body)
        headers["Content-Type"] = "application/json"
    response = await client.request(
        method,
        call.path,
        headers=headers,
        data=form if form is not None else data,
        allow_redirects=False,
    )
    await response.read()
    return response.status, response.headers.get("Location")


async def test_node_answers_every_principal_as_the_table_says(node_world: NodeWorld) -> None:
    routes = _router_routes(node_world.client.app)
    covered = {(call.method, call.route) for call in NODE_TABLE}
    assert routes == covered, (
        f"routes not in the table: {sorted(routes - covered)}; "
        f"rows for no route: {sorted(covered - routes)}"
    )
    wrong: list[str] = []
    for call, row in NODE_TABLE.items():
        assert set(row) == set(NODE_PRINCIPALS), call
        for principal in NODE_PRINCIPALS:
            status, location = await _send_node(node_world, call, principal, call.method)
            got = outcome_of(status, location)
            if got != row[principal]:
                wrong.append(
                    f"{call.method} {call.path} as {principal}: {got} ({status}), "
                    f"table says {row[principal]}"
                )
    assert not wrong, "\n".join(wrong)


# -- constant-time comparison -----------------------------------------------------------
#
# How each credential is compared, found by reading the code (the tests below hold it so):
#
# - hub bearer tokens (``Access.authenticate``): the token is hashed with SHA-256
#   (``hash_token``), the row is looked up by that hash in SQLite, and the stored hash
#   is compared again with ``hmac.compare_digest``. The lookup never sees the token.
# - hub dashboard sessions (``WebSessions.get``): looked up by the SHA-256 of the id.
# - hub CSRF and login nonces (``hub.web.pages._check_csrf``): ``hmac.compare_digest``.
# - the node's API token (``node.app.auth_middleware``) and its status-page login
#   (``node.web.pages`` ``login``): ``hmac.compare_digest`` of the bytes.
# - node page sessions (``node.web.sessions``): a dict keyed by the SHA-256 of the id;
#   their CSRF tokens: ``hmac.compare_digest``.

SOURCE = Path(__file__).resolve().parents[2]
_SECRET_WORDS = ("token", "secret", "csrf", "nonce", "session_id", "api_key", "password")


def _function(path: Path, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            return node
    raise AssertionError(f"{path.name} has no function {name}")


def _calls(function: ast.AST) -> set[str]:
    """Dotted names of everything ``function`` calls (``hmac.compare_digest``, ``hash_token``)."""
    return {ast.unparse(node.func) for node in ast.walk(function) if isinstance(node, ast.Call)}


def _names(node: ast.AST) -> str:
    return ast.unparse(node).lower()


@pytest.mark.parametrize(
    ("module", "function"),
    [
        ("hub/services/access.py", "authenticate"),
        ("hub/web/pages.py", "_check_csrf"),
        ("node/limits.py", "is_the_api_token"),
        ("node/web/sessions.py", "csrf_matches"),
    ],
)
def test_credential_checks_compare_in_constant_time(module: str, function: str) -> None:
    found = _function(SOURCE / module, function)
    assert "hmac.compare_digest" in _calls(found)


@pytest.mark.parametrize(
    ("module", "function"),
    [
        ("node/api/middlewares.py", "auth_middleware"),
        ("node/limits.py", "limits_middleware"),
        ("node/web/pages.py", "login"),
    ],
)
def test_the_node_api_token_is_checked_by_its_one_constant_time_check(
    module: str, function: str
) -> None:
    """Every place that checks the node's API token asks ``is_the_api_token`` (above)."""
    assert "is_the_api_token" in _calls(_function(SOURCE / module, function))


def test_hub_tokens_and_sessions_are_looked_up_by_their_sha256() -> None:
    """The database is asked for the token's SHA-256, never for the token itself."""
    access = SOURCE / "hub/services/access.py"
    hash_token = _function(access, "hash_token")
    assert "hashlib.sha256" in _calls(hash_token)
    for module, name in ((access, "authenticate"), (SOURCE / "hub/services/sessions.py", "get")):
        found = _function(module, name)
        assert "hash_token" in _calls(found), name
        queries = [
            node.value
            for node in ast.walk(found)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and "SELECT" in node.value
        ]
        assert queries, name
        assert any(re.search(r"\b(hash|id_sha256)\s*=\s*\?", query) for query in queries), queries


def secret_equality_checks(tree: ast.AST) -> list[ast.Compare]:
    """``==``/``!=``/``in`` comparisons with an operand named like a credential.

    A comparison with a literal (an empty string, ``None``) leaks nothing about the
    secret and is not reported.
    """
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        if any(isinstance(o, ast.Constant) for o in operands):
            continue
        if not any(isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn) for op in node.ops):
            continue
        if any(word in _names(o) for o in operands for word in _SECRET_WORDS):
            found.append(node)
    return found


def test_the_equality_scan_finds_a_token_compared_with_eq() -> None:
    bad = ast.parse(
        "def check(sent, node):\n"
        "    if sent == node.api_token: return True\n"
        "    if csrf != expected: return False\n"
        "    if not sent: return False\n"
        "    return len(sent) > 10\n"
    )
    assert [ast.unparse(c) for c in secret_equality_checks(bad)] == [
        "sent == node.api_token",
        "csrf != expected",
    ]


def test_no_secret_is_compared_with_equality_operators() -> None:
    """``==`` on a token stops at the first differing byte; every check must avoid it."""
    offenders = []
    for package in ("hub", "node", "audit"):
        for path in sorted((SOURCE / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            offenders += [
                f"{path.relative_to(SOURCE)}:{node.lineno}: {ast.unparse(node)}"
                for node in secret_equality_checks(tree)
            ]
    assert not offenders, "\n".join(offenders)
