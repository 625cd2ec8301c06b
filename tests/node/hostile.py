"""A hostile server: a real aiohttp server on loopback that misbehaves on request.

After python-tuf's repository simulator, but over real HTTP. ``HostileServer``
answers every path from a *source* and, for the paths a test names, does
something else instead:

- serves a hub's published tree straight from the hub's database
  (``HostileServer.serving(home)``: a mirror, or "the hub" for a node pointed at
  it), or forwards every request to a real server (``HostileServer.proxy(url)``:
  a man in the middle, also for ``POST /v1/acks``);
- ``Tamper(fn)``: serve ``fn(bytes)`` instead of the real bytes;
- ``Replace(data)``: serve other bytes (an older checkpoint, another history);
- ``Status(code)``: answer an HTTP error (500, 404, 503, …);
- ``Drop(forward=…)``: close the connection without an answer, optionally after
  forwarding the request (the answer is lost, the upstream acted on it);
- ``Endless(content_length=…)``: stream bytes forever, with or without announcing
  a (huge) ``Content-Length``;
- ``Bomb(size)``: a gzip ``Content-Encoding`` that inflates to ``size`` bytes;
- ``Trickle(delay)``: the real bytes, one at a time, ``delay`` seconds apart.

Rules are matched in order against the request path (``re.search``); the first
that matches acts, optionally only ``times`` times. Every request is logged in
``requests`` (``"GET /lists/…"``), every request body but a GET's in ``bodies``,
and every answer from the source in ``answers``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from hub.core import Hub

__all__ = [
    "Behaviour",
    "Bomb",
    "Drop",
    "Endless",
    "HostileServer",
    "Replace",
    "Rule",
    "Status",
    "Tamper",
    "Trickle",
    "flip_byte",
]

ENDLESS_LIMIT = 1 << 30
"""An endless answer stops after this many bytes, in case a client never hangs up."""
_CHUNK = 64 * 1024
_FORWARDED = ("Authorization", "Content-Type", "Hashhub-Signature")


@dataclass(frozen=True)
class Answer:
    """What the source said: a status and a body."""

    status: int
    body: bytes


Source = Callable[[web.Request, bytes], Awaitable[Answer]]


def flip_byte(data: bytes, index: int = -1) -> bytes:
    """``data`` with the byte at ``index`` XORed with 1 (same length, different hash)."""
    out = bytearray(data)
    out[index] ^= 1
    return bytes(out)


@dataclass(frozen=True)
class Tamper:
    fn: Callable[[bytes], bytes]


@dataclass(frozen=True)
class Replace:
    data: bytes


@dataclass(frozen=True)
class Status:
    code: int


@dataclass(frozen=True)
class Drop:
    forward: bool = False


@dataclass(frozen=True)
class Endless:
    content_length: int | None = None


@dataclass(frozen=True)
class Bomb:
    size: int


@dataclass(frozen=True)
class Trickle:
    delay: float


Behaviour = Tamper | Replace | Status | Drop | Endless | Bomb | Trickle


@dataclass
class Rule:
    path: str
    behaviour: Behaviour
    times: int | None = None
    used: int = 0


@dataclass
class HostileServer:
    """A real aiohttp server on 127.0.0.1 answering from ``source`` unless a rule says otherwise."""

    source: Source
    rules: list[Rule] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    bodies: list[tuple[str, bytes]] = field(default_factory=list)
    answers: list[tuple[str, int, bytes]] = field(default_factory=list)
    streamed: int = 0
    port: int = 0
    _runner: web.AppRunner | None = None
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    # -- sources --------------------------------------------------------------------

    @classmethod
    def serving(cls, home: Path) -> HostileServer:
        """Serve the published tree of the hub in ``home`` from its database (no auth)."""
        hub = Hub.open(home)

        async def source(request: web.Request, body: bytes) -> Answer:
            if request.method != "GET":
                return Answer(405, b"")
            found = hub.files.get(request.path.lstrip("/"))
            return Answer(200, found[0]) if found else Answer(404, b"")

        async def close() -> None:
            hub.close()

        server = cls(source)
        server._closers.append(close)
        return server

    @classmethod
    def proxy(cls, upstream: str) -> HostileServer:
        """Forward every request (method, path, auth and signature headers, body) upstream."""
        session: aiohttp.ClientSession | None = None

        async def source(request: web.Request, body: bytes) -> Answer:
            nonlocal session
            if session is None:
                session = aiohttp.ClientSession(auto_decompress=True)
            headers = {k: request.headers[k] for k in _FORWARDED if k in request.headers}
            async with session.request(
                request.method, upstream.rstrip("/") + request.path_qs, data=body, headers=headers
            ) as resp:
                return Answer(resp.status, await resp.read())

        async def close() -> None:
            if session is not None:
                await session.close()

        server = cls(source)
        server._closers.append(close)
        return server

    # -- rules ----------------------------------------------------------------------

    def on(self, path: str, behaviour: Behaviour, *, times: int | None = None) -> HostileServer:
        """Misbehave for request paths matching the regex ``path`` (first matching rule wins)."""
        self.rules.append(Rule(path, behaviour, times))
        return self

    def behave(self) -> None:
        """Forget every rule: serve the source faithfully from now on."""
        self.rules.clear()

    def _rule(self, path: str) -> Rule | None:
        for rule in self.rules:
            if re.search(rule.path, path) and (rule.times is None or rule.used < rule.times):
                rule.used += 1
                return rule
        return None

    def count(self, path: str) -> int:
        """How many requests named a path matching the regex ``path``."""
        return sum(1 for r in self.requests if re.search(path, r))

    # -- serving --------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> HostileServer:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        """Stop listening (the port is kept: ``start`` again serves on the same one)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def close(self) -> None:
        await self.stop()
        for closer in self._closers:
            await closer()
        self._closers.clear()

    async def _answer(self, request: web.Request, body: bytes) -> Answer:
        answer = await self.source(request, body)
        self.answers.append((request.path, answer.status, answer.body))
        return answer

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(f"{request.method} {request.path}")
        if request.method != "GET":
            self.bodies.append((request.path, body))
        rule = self._rule(request.path)
        behaviour = rule.behaviour if rule else None
        match behaviour:
            case None:
                answer = await self._answer(request, body)
                return web.Response(status=answer.status, body=answer.body)
            case Tamper(fn):
                answer = await self._answer(request, body)
                return web.Response(status=answer.status, body=fn(answer.body))
            case Replace(data):
                return web.Response(body=data)
            case Status(code):
                return web.Response(status=code, text=f"hostile: HTTP {code}")
            case Drop(forward):
                if forward:
                    await self._answer(request, body)
                assert request.transport is not None
                request.transport.abort()
                raise asyncio.CancelledError  # nothing more goes out on this connection
            case Endless(length):
                return await self._endless(request, length)
            case Bomb(size):
                return await self._bomb(request, size)
            case Trickle(delay):
                answer = await self._answer(request, body)
                return await self._trickle(request, answer.body, delay)
        raise AssertionError(behaviour)

    async def _endless(self, request: web.Request, length: int | None) -> web.StreamResponse:
        response = web.StreamResponse()
        if length is not None:
            response.content_length = length
        await response.prepare(request)
        chunk = b"\x00" * _CHUNK
        with contextlib.suppress(ConnectionError):
            while self.streamed < ENDLESS_LIMIT:
                await response.write(chunk)
                self.streamed += len(chunk)
        return response

    async def _bomb(self, request: web.Request, size: int) -> web.StreamResponse:
        packed = gzip.compress(b"\x00" * size, compresslevel=9)
        response = web.Response(body=packed, headers={"Content-Encoding": "gzip"})
        self.streamed += len(packed)
        return response

    async def _trickle(self, request: web.Request, data: bytes, delay: float) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = len(data)
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            for i in range(len(data)):
                await response.write(data[i : i + 1])
                self.streamed += 1
                await asyncio.sleep(delay)
        return response
