"""Serving, the request log and the misbehaviour switches the loopback exchanges share."""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import ClassVar, Self

from aiohttp import web
from aiohttp.typedefs import Handler
from multidict import CIMultiDictProxy, MultiMapping


def utcnow() -> datetime:
    """The wall clock, the default ``now`` of both exchanges."""
    return datetime.now(UTC)


def to_seconds(when: datetime) -> int:
    """Whole seconds since the epoch; a naive datetime is a test's mistake, not UTC."""
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when!r}: give the exchange an aware UTC time")
    return int(when.timestamp())


@dataclass(frozen=True)
class ServedRequest:
    """One request a server answered, as the client sent it, and the status it got."""

    method: str
    path: str
    query: MultiMapping[str]
    headers: CIMultiDictProxy[str]
    body: bytes
    status: int


class LoopbackExchange(ABC):
    """Serving, the request log and the misbehaviour switches both exchanges share."""

    GARBLED_BODY: ClassVar[bytes]
    CONTENT_TYPE: ClassVar[str]
    URL_PREFIX: ClassVar[str] = ""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self.now = now
        self.served: list[ServedRequest] = []
        self._failures: list[int] = []
        self._garbled = 0
        self._sequence = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._port = 0

    @property
    def url(self) -> str:
        """The base URL a client of this exchange is given."""
        if self._runner is None:
            raise RuntimeError("the exchange is not serving: use it as `async with`")
        return f"http://127.0.0.1:{self._port}{self.URL_PREFIX}"

    def fail_next(self, count: int, status: int = 500) -> None:
        """Answer the next ``count`` requests with ``status`` (an error body, nothing read)."""
        if count < 1 or not 400 <= status <= 599:
            raise ValueError(f"fail_next({count}, {status}): need count >= 1 and an error status")
        self._failures.extend([status] * count)

    def garble_next(self, count: int = 1) -> None:
        """Answer the next ``count`` requests 200 with a body the client cannot parse."""
        if count < 1:
            raise ValueError(f"garble_next({count}): need count >= 1")
        self._garbled += count

    async def __aenter__(self) -> Self:
        app = web.Application(middlewares=[self._log_and_misbehave])
        app.add_routes(self._routes())
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = self._runner.addresses[0][1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @abstractmethod
    def _routes(self) -> Iterable[web.RouteDef]:
        """The exchange's own endpoints."""

    @abstractmethod
    def _error(self, status: int, message: str) -> web.Response:
        """An error answer in the form the real service uses."""

    def _next_sequence(self) -> int:
        """Orders records changed in the same second: a later change sorts later."""
        return next(self._sequence)

    def _now_seconds(self) -> int:
        return to_seconds(self.now())

    @web.middleware
    async def _log_and_misbehave(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        body = await request.read()
        response: web.StreamResponse
        if self._failures:
            status = self._failures.pop(0)
            response = self._error(status, "failing on purpose")
        elif self._garbled:
            self._garbled -= 1
            response = web.Response(body=self.GARBLED_BODY, content_type=self.CONTENT_TYPE)
        else:
            try:
                response = await handler(request)
            except web.HTTPException as e:  # aiohttp's own answers: no route, wrong method
                self._log(request, body, e.status)
                raise
        self._log(request, body, response.status)
        return response

    def _log(self, request: web.Request, body: bytes, status: int) -> None:
        self.served.append(
            ServedRequest(
                request.method, request.path, request.query, request.headers, body, status
            )
        )


def int_param(
    query: Mapping[str, str],
    name: str,
    *,
    minimum: int,
    maximum: int | None = None,
    default: int | None = None,
) -> int:
    """An integer query parameter, or ``ValueError`` saying what is wrong with it."""
    raw = query.get(name)
    if raw is None:
        if default is None:
            raise ValueError(f"{name} is required")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, not {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}, not {value}")
    return value
