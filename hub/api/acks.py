"""``POST /v1/acks``: a node's signed acknowledgement (PROTOCOL.md §10.6, design §4.4).

A group of its own because it is the one write every node makes, many at once:
acks are sent to the database thread in batches by ``AckBatcher`` (one trip and
one commit for many), which the app starts and stops with ``ack_context``. Each
ack is still verified and stored on its own, and its node gets exactly the answer
it would get alone.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
from collections.abc import AsyncIterator

from aiohttp import web

from edge.database import DatabaseThread
from edge.http import code_for
from hub.api.requests import bearer, require_json
from hub.appkeys import CONFIG, HUB, METRICS
from hub.core import AckReceipt, Hub
from hub.errors import HTTP_CODES, HubError, InvalidRequest, Unauthorized
from hub.http import read_body
from protocol import ProtocolError, SignatureSidecar
from protocol.ack import ACK_LAST_SEQ_HEADER, ACK_SIGNATURE_HEADER

__all__ = [
    "ACKS",
    "LAST_SEQ_HEADER",
    "MAX_SIGNATURE_HEADER",
    "SIGNATURE_HEADER",
    "AckBatcher",
    "ack_context",
    "post_ack",
    "signature_sidecar",
]

SIGNATURE_HEADER = ACK_SIGNATURE_HEADER
"""Header carrying an ack's signature sidecar (``protocol.ACK_SIGNATURE_HEADER``)."""
LAST_SEQ_HEADER = ACK_LAST_SEQ_HEADER
"""On a 409 ``seq_conflict``: the node's last accepted ``seq`` (``protocol.ACK_LAST_SEQ_HEADER``),
so it can re-sign above it."""
MAX_SIGNATURE_HEADER = 4096


def signature_sidecar(request: web.Request, what: str = "ack") -> bytes:
    """The sidecar of a signed document sent in ``Hashhub-Signature`` (an ack, a
    contribution): base64 of a signature sidecar, or a 400 naming ``what``."""
    raw = request.headers.get(SIGNATURE_HEADER)
    if raw is None:
        raise InvalidRequest(f"the {what}'s signature sidecar goes, base64, in {SIGNATURE_HEADER}")
    if len(raw) > MAX_SIGNATURE_HEADER:
        raise InvalidRequest(f"{SIGNATURE_HEADER} is over {MAX_SIGNATURE_HEADER} characters")
    try:
        sig = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidRequest(f"{SIGNATURE_HEADER} is not base64") from e
    try:
        SignatureSidecar.from_bytes(sig)
    except ProtocolError as e:
        raise InvalidRequest(f"{SIGNATURE_HEADER} is not a signature sidecar: {e}") from e
    return sig


def _receive_batch(
    hub: Hub, items: list[tuple[str, bytes, bytes, Exception | None]]
) -> list[AckReceipt | Exception]:
    """One batch of acks on the database thread (``AckIntake.receive_batch``)."""
    return hub.acks.receive_batch(items)


class AckBatcher:
    """Sends acks to the database thread in batches: one trip and one commit for many.

    Each ack is still verified and stored on its own (``AckIntake.receive_batch``); a node
    gets exactly the answer it would get alone. Under no load a batch is one ack, so
    nothing waits for company.
    """

    MAX_BATCH = 64

    def __init__(self, owner: DatabaseThread[Hub]) -> None:
        self._owner = owner
        self._queue: asyncio.Queue[
            tuple[str, bytes, bytes, Exception | None, asyncio.Future[AckReceipt]]
        ] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="hashhub-ack-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def submit(
        self, token: str, data: bytes, sig: bytes, request_error: Exception | None
    ) -> AckReceipt:
        future: asyncio.Future[AckReceipt] = asyncio.get_running_loop().create_future()
        await self._queue.put((token, data, sig, request_error, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            items = [(token, data, sig, err) for token, data, sig, err, _ in batch]
            try:
                results = await self._owner.call(functools.partial(_receive_batch, items=items))
            except Exception as e:  # a bug: every ack of the batch gets the 500
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(e)
                continue
            for (*_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)


ACKS = web.AppKey("acks", AckBatcher)


async def ack_context(app: web.Application) -> AsyncIterator[None]:
    """The app's ``AckBatcher``, started after the database and stopped before it."""
    batcher = AckBatcher(app[HUB])
    app[ACKS] = batcher
    batcher.start()
    try:
        yield
    finally:
        await batcher.stop()


async def post_ack(request: web.Request) -> web.StreamResponse:
    """Receive a node's signed ack (PROTOCOL.md §10.6)."""
    app = request.app
    try:
        token = bearer(request)
        if token is None:
            raise Unauthorized("acks are sent with the node's bearer token")
        # The body is read (capped) before the token is checked so that one trip to the
        # database thread does both; a bad body is still reported after a bad token.
        body_error: Exception | None = None
        data = sig = b""
        try:
            require_json(request)
            data = await read_body(request, app[CONFIG].max_ack_bytes)
            sig = signature_sidecar(request)
        except (HubError, web.HTTPException) as e:
            body_error = e

        receipt = await app[ACKS].submit(token, data, sig, body_error)
    except HubError as e:
        app[METRICS].acks_refused.labels(e.code).inc()
        raise
    except web.HTTPException as e:
        app[METRICS].acks_refused.labels(code_for(e, HTTP_CODES)).inc()
        raise
    app[METRICS].acks_accepted.labels(str(receipt.duplicate).lower()).inc()
    return web.json_response(
        {
            "accepted": True,
            "node": receipt.node,
            "list": receipt.list_id,
            "seq": receipt.seq,
            "duplicate": receipt.duplicate,
        }
    )
