"""``edge.http``: the error shape and middleware, the body reader, metrics, start-up, on a server.

Each test serves a small aiohttp app with the middleware as the hub and the node
configure it, and talks to it over a socket, so the headers, statuses and bodies are
what a client receives, not what a handler returned.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, Counter

from edge.errors import ApiError, error_body
from edge.http import (
    error_middleware,
    error_response,
    metrics_middleware,
    read_body,
    scheduler_context,
    security_headers,
)
from hub.errors import HTTP_CODES as HUB_CODES
from hub.errors import HubError, NotFound, PayloadTooLarge, SeqConflict, Unauthorized
from node.errors import HTTP_CODES as NODE_CODES
from protocol.ack import ACK_LAST_SEQ_HEADER

Client = TestClient[web.Request, web.Application]
REALM = 'Bearer realm="test"'
CAP = 1000
log = logging.getLogger("tests.edge.http")


class TeapotError(ApiError):
    """An error with a header of its own, as the hub's ``SeqConflict`` has."""

    def __init__(self) -> None:
        super().__init__(418, "teapot", "short and stout")

    def headers(self) -> dict[str, str]:
        return {"X-Spout": "yes"}


def full_disk(request: web.Request, error: Exception) -> web.Response | None:
    if isinstance(error, sqlite3.OperationalError) and "full" in str(error):
        return error_response(507, "insufficient_storage", "no room")
    return None


def raising(error: BaseException) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        raise error

    return handler


async def echo(request: web.Request) -> web.StreamResponse:
    data = await read_body(request, CAP)
    return web.Response(body=data)


async def echo_hub(request: web.Request) -> web.StreamResponse:
    try:
        data = await read_body(request, CAP, too_large=PayloadTooLarge)
    except HubError as e:  # what the hub's ack route does with a body error
        return web.Response(text=f"caught {type(e).__name__}")
    return web.Response(body=data)


def make_app() -> web.Application:
    app = web.Application(
        middlewares=[
            error_middleware(realm=REALM, codes=HUB_CODES, log=log, service="test", fault=full_disk)
        ]
    )
    app.router.add_get("/api-error", raising(ApiError(409, "conflict", "taken\nreally")))
    app.router.add_get("/not-found", raising(NotFound("no list x")))
    app.router.add_get("/unauthorized", raising(Unauthorized("who are you")))
    app.router.add_get("/seq", raising(SeqConflict("replayed", last_seq=7)))
    app.router.add_get("/teapot", raising(TeapotError()))
    app.router.add_get("/aiohttp-400", raising(web.HTTPBadRequest()))
    app.router.add_get("/aiohttp-text", raising(web.HTTPUnsupportedMediaType(text="send JSON")))
    app.router.add_get("/redirect", raising(web.HTTPFound("/elsewhere")))
    app.router.add_get("/bug", raising(RuntimeError("secret internals")))
    app.router.add_get("/full", raising(sqlite3.OperationalError("database or disk is full")))
    app.router.add_post("/echo", echo)
    app.router.add_post("/echo-hub", echo_hub)
    return app


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with TestClient(TestServer(make_app())) as client:
        yield client


async def error_of(client: Client, path: str, data: object = None) -> tuple[int, dict[str, object]]:
    """The status and the ``error`` object of the answer to a GET (or a POST of ``data``)."""
    if data is None:
        response = await client.get(path)
    else:
        response = await client.post(path, data=data)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"status", "code", "message"}
    assert body["error"]["status"] == response.status
    return response.status, body["error"]


@pytest.mark.parametrize(
    ("path", "status", "code", "message"),
    [
        ("/api-error", 409, "conflict", "taken\nreally"),
        ("/not-found", 404, "not_found", "no list x"),
        # aiohttp's own exceptions: the service's code for the status, else the reason
        ("/aiohttp-400", 400, "invalid_request", "Bad Request"),
        ("/aiohttp-text", 415, "unsupported_media_type", "send JSON"),
        ("/no-such-path", 404, "not_found", "Not Found"),
    ],
)
async def test_an_error_answers_its_status_code_and_message(
    client: Client, path: str, status: int, code: str, message: str
) -> None:
    assert await error_of(client, path) == (
        status,
        {"status": status, "code": code, "message": message},
    )


async def test_a_401_challenges_and_says_whether_a_token_was_sent(client: Client) -> None:
    without = await client.get("/unauthorized")
    assert without.status == 401
    assert without.headers["WWW-Authenticate"] == REALM
    sent = await client.get("/unauthorized", headers={"Authorization": "Bearer nope"})
    assert sent.headers["WWW-Authenticate"] == REALM + ', error="invalid_token"'
    assert (await sent.json())["error"]["code"] == "unauthorized"


async def test_an_error_carries_its_own_headers(client: Client) -> None:
    seq = await client.get("/seq")
    assert seq.status == 409
    assert seq.headers[ACK_LAST_SEQ_HEADER] == "7"
    assert (await seq.json())["error"]["code"] == "seq_conflict"
    teapot = await client.get("/teapot")
    assert (teapot.status, teapot.headers["X-Spout"]) == (418, "yes")


async def test_an_aiohttp_exception_keeps_its_headers(client: Client) -> None:
    response = await client.post("/not-found")
    assert response.status == 405
    assert response.headers["Allow"] == "GET,HEAD"
    assert (await response.json())["error"]["code"] == "method_not_allowed"


async def test_a_redirect_is_not_an_error(client: Client) -> None:
    response = await client.get("/redirect", allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == "/elsewhere"


async def test_a_bug_is_logged_and_answered_500_without_internals(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger=log.name):
        status, error = await error_of(client, "/bug")
    assert (status, error["code"]) == (500, "internal")
    assert error["message"] == "internal error; the test's log has the details"
    assert "secret" not in str(error)
    assert [r.exc_info is not None for r in caplog.records if r.name == log.name] == [True]


async def test_the_fault_hook_answers_what_is_not_a_bug(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger=log.name):
        assert await error_of(client, "/full") == (
            507,
            {"status": 507, "code": "insufficient_storage", "message": "no room"},
        )
    assert not [r for r in caplog.records if r.name == log.name]


async def test_a_body_under_its_cap_is_read_whole(client: Client) -> None:
    data = bytes(range(256)) * 3
    response = await client.post("/echo", data=data)
    assert (response.status, await response.read()) == (200, data)
    exact = await client.post("/echo", data=b"x" * CAP)
    assert len(await exact.read()) == CAP


async def test_a_declared_length_over_the_cap_is_refused_before_reading(client: Client) -> None:
    assert await error_of(client, "/echo", b"x" * (CAP + 1)) == (
        413,
        {
            "status": 413,
            "code": "payload_too_large",
            "message": f"the body is {CAP + 1} bytes; the cap is {CAP}",
        },
    )


async def test_a_chunked_body_is_refused_once_it_passes_the_cap(client: Client) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"y" * 300

    assert await error_of(client, "/echo", chunks()) == (
        413,
        {
            "status": 413,
            "code": "payload_too_large",
            "message": f"the body exceeds the cap of {CAP} bytes",
        },
    )


async def test_a_service_chooses_the_error_class_of_a_body_over_its_cap(client: Client) -> None:
    response = await client.post("/echo-hub", data=b"z" * (CAP + 1))
    assert await response.text() == "caught PayloadTooLarge"


def test_the_hubs_errors_and_the_nodes_are_one_class() -> None:
    """A hub error is an ``ApiError`` whose class names its status; the node raises it as is."""
    error = NotFound("no list x")
    assert isinstance(error, ApiError)
    assert (error.status, error.code, str(error)) == (404, "not_found", "no list x")
    assert (HubError("x").status, HubError("x").code) == (500, "internal")
    assert SeqConflict("again", last_seq=3).headers() == {ACK_LAST_SEQ_HEADER: "3"}
    assert ApiError(400, "invalid_request", "bad").headers() == {}
    assert error_body(404, "not_found", "m") == {
        "error": {"status": 404, "code": "not_found", "message": "m"}
    }


def test_both_services_give_a_status_the_same_code() -> None:
    """Where both tables name a status, they agree: a client sees one code per status."""
    shared = set(HUB_CODES) & set(NODE_CODES)
    assert shared >= {400, 401, 404, 409, 413}
    assert {s: HUB_CODES[s] for s in shared} == {s: NODE_CODES[s] for s in shared}


REQUESTS = web.AppKey("requests", Counter)


async def answer(request: web.Request) -> web.StreamResponse:
    return web.json_response({"id": request.match_info["item_id"]})


async def sniffable(request: web.Request) -> web.StreamResponse:
    return web.Response(text="<b>hi</b>", headers={"X-Content-Type-Options": "set-by-handler"})


def counted_app() -> web.Application:
    """An app wired as the roles wire theirs: metrics outermost, then errors."""
    app = web.Application(
        middlewares=[
            metrics_middleware(lambda app: app[REQUESTS]),
            error_middleware(realm=REALM, codes=NODE_CODES, log=log, service="test"),
        ]
    )
    app[REQUESTS] = Counter(
        "test_http_requests",
        "Answers.",
        ["route", "method", "status"],
        registry=CollectorRegistry(),
    )
    app.on_response_prepare.append(security_headers)
    app.router.add_get("/items/{item_id}", answer)
    app.router.add_get("/sniffable", sniffable)
    app.router.add_get("/bug", raising(RuntimeError("boom")))
    return app


def counted(app: web.Application) -> dict[tuple[str, str, str], float]:
    return {
        (s.labels["route"], s.labels["method"], s.labels["status"]): s.value
        for metric in app[REQUESTS].collect()
        for s in metric.samples
        if s.name.endswith("_total")
    }


async def test_answers_are_counted_by_route_template_method_and_status() -> None:
    """The template, never the raw path: a client cannot make a label per id it invents."""
    app = counted_app()
    async with TestClient(TestServer(app)) as client:
        for path in ("/items/a", "/items/b", "/nowhere/1", "/nowhere/2", "/bug"):
            await client.get(path)
    assert counted(app) == {
        ("/items/{item_id}", "GET", "200"): 2.0,
        ("unmatched", "GET", "404"): 2.0,
        ("/bug", "GET", "500"): 1.0,  # counted with the status the error was answered with
    }


async def test_every_answer_says_nosniff_unless_the_handler_said_otherwise() -> None:
    async with TestClient(TestServer(counted_app())) as client:
        for path in ("/items/a", "/nowhere", "/bug"):
            response = await client.get(path)
            assert response.headers["X-Content-Type-Options"] == "nosniff", path
        response = await client.get("/sniffable")
        assert response.headers["X-Content-Type-Options"] == "set-by-handler"


class FakeScheduler:
    """Records what the app did to it; ``stop`` awaits, as a real one waits for its job."""

    def __init__(self, events: list[str], source: str) -> None:
        self.events = events
        self.source = source

    def start(self) -> None:
        self.events.append(f"start from {self.source}")

    async def stop(self) -> None:
        await asyncio.sleep(0)
        self.events.append("stopped")


SCHEDULER = web.AppKey("scheduler", FakeScheduler)
SOURCE = web.AppKey("source", str)


async def test_the_scheduler_context_builds_after_earlier_contexts_and_stops_last() -> None:
    events: list[str] = []

    async def earlier(app: web.Application) -> AsyncIterator[None]:
        app[SOURCE] = "the database"
        yield
        events.append("database closed")

    async def seen(request: web.Request) -> web.StreamResponse:
        return web.Response(text=request.app[SCHEDULER].source)

    app = web.Application()
    app.cleanup_ctx.append(earlier)
    app.cleanup_ctx.append(
        scheduler_context(SCHEDULER, lambda app: FakeScheduler(events, app[SOURCE]))
    )
    app.router.add_get("/", seen)
    async with TestClient(TestServer(app)) as client:
        assert events == ["start from the database"]
        assert await (await client.get("/")).text() == "the database"
    assert events == ["start from the database", "stopped", "database closed"]
