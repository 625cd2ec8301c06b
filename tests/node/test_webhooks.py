"""Retroactive takedowns (docs/design.md §4.3): a delta lists content the platform already hosts.

Content is registered with the node before the hub lists it; when a delta adds
its hash, the node raises a match and queues one webhook in a durable outbox;
``deliver_webhooks`` sends it to a real local aiohttp receiver, HMAC-signed with
the node's ``webhook-secret`` (``Hashhub-Webhook-Signature: sha256=<hex>``) and
with an ``Idempotency-Key``, retrying with back-off until the receiver says 2xx:
at least once, and exactly once as long as the receiver answers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from node.config import read_secret
from node.imaging import hash_image
from node.service import Node, deliver_webhooks
from tests.node.fixtures_sync import (
    PDQ_DATA,
    Clock,
    HubApp,
    make_node,
    md5,
    statuses,
    sync_once,
)

LIST = "tid-md5"
PDQ_LIST = "bridge-pdq"
ORIGINAL = PDQ_DATA / "bridge-mods" / "aaa-orig.jpg"
NEAR_COPY = PDQ_DATA / "bridge-mods" / "shrink-a-lot.jpg"
UNRELATED = PDQ_DATA / "reg-test-input" / "labelme-subset" / "q0003.jpg"


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class WebhookReceiver:
    """The platform's webhook endpoint: a real aiohttp server that records every call.

    ``status`` is what it answers (set 503 to refuse); ``stop()`` leaves nothing
    listening on its port until ``start()`` serves again on the same one.
    """

    status: int = 200
    port: int = 0
    calls: list[Delivery] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/hashhub"

    @property
    def accepted(self) -> list[Delivery]:
        return [c for c in self.calls if 200 <= c.status < 300]

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.calls.append(Delivery(dict(request.headers), body, self.status))
        return web.json_response({"ok": self.status < 300}, status=self.status)

    async def start(self) -> WebhookReceiver:
        app = web.Application()
        app.router.add_post("/hooks/hashhub", self._hook)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubApp]:
    app = HubApp.init(tmp_path / "hub", Clock())
    app.create_list(LIST, "md5")
    app.create_list(PDQ_LIST, "pdq")
    app.publish(LIST, adds=[md5(i) for i in range(5)])
    app.publish(PDQ_LIST, adds=[hash_image(UNRELATED.read_bytes()).pdq])
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    made = await WebhookReceiver().start()
    try:
        yield made
    finally:
        await made.stop()


@pytest.fixture
def node(tmp_path: Path, hub: HubApp, receiver: WebhookReceiver) -> Iterator[Node]:
    made = make_node(tmp_path / "node", hub, [LIST, PDQ_LIST], webhook_url=receiver.url)
    try:
        yield made
    finally:
        made.close()


async def deliver(node: Node) -> tuple[int, int]:
    async with aiohttp.ClientSession() as session:
        return await deliver_webhooks(node, session)


def check_signed(node: Node, call: Delivery) -> dict[str, Any]:
    """The call's HMAC signature is right for the node's secret; returns the parsed body."""
    secret = read_secret(node.home / "webhook-secret")
    mac = hmac.new(secret.encode(), call.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(call.headers["Hashhub-Webhook-Signature"], f"sha256={mac}")
    assert call.headers["Content-Type"] == "application/json"
    return dict(json.loads(call.body))


def outbox(node: Node) -> list[dict[str, Any]]:
    return list(node.store.db.query("SELECT * FROM webhook_outbox ORDER BY id"))


def registry_events(node: Node) -> list[dict[str, Any]]:
    return list(node.store.db.query("SELECT * FROM match_events WHERE source = 'registry'"))


async def test_content_registered_before_its_delta_gets_exactly_one_signed_webhook(
    hub: HubApp, node: Node, receiver: WebhookReceiver
) -> None:
    node.registry.register("post-17", {"md5": [md5("hosted")]})
    node.registry.register("post-18", {"md5": [md5("harmless")]})
    await sync_once(node)
    assert outbox(node) == []
    assert registry_events(node) == []
    hub.publish(LIST, adds=[md5("hosted"), md5("elsewhere")])

    outcomes, _ = await sync_once(node)
    assert statuses(outcomes)[LIST] == ("updated", 1, 2)
    assert await deliver(node) == (1, 0)
    assert await deliver(node) == (0, 0)

    (call,) = receiver.calls
    body = check_signed(node, call)
    assert body == {
        "type": "hashhub.retroactive_match.v1",
        "node": node.config.node_id,
        "match_id": registry_events(node)[0]["id"],
        "content_id": "post-17",
        "hub": "default",
        "list": LIST,
        "hash_type": "md5",
        "hash": md5("hosted").hex(),
        "content_hash": md5("hosted").hex(),
        "distance": 0,
        "version": 2,
    }
    (row,) = outbox(node)
    assert call.headers["Idempotency-Key"] == row["idempotency_key"]
    assert row["delivered"] is not None
    assert node.status()["webhooks_pending"] == 0
    assert node.status()["lists"][0]["counts"]["matched"] == 1


async def test_webhook_reaches_a_receiver_that_was_down_for_a_while(
    hub: HubApp, node: Node, receiver: WebhookReceiver
) -> None:
    clock = hub.clock
    node.registry.register("post-17", {"md5": [md5("hosted")]})
    await sync_once(node)
    hub.publish(LIST, adds=[md5("hosted")])
    await receiver.stop()  # nothing listens on its port
    await sync_once(node)

    assert await deliver(node) == (0, 1)
    (row,) = outbox(node)
    assert row["attempts"] == 1
    assert row["delivered"] is None
    assert await deliver(node) == (0, 0), "backing off"

    await receiver.start()
    receiver.status = 503
    clock.advance(2)
    assert await deliver(node) == (0, 1)
    assert outbox(node)[0]["attempts"] == 2
    assert outbox(node)[0]["last_error"] == "HTTP 503"

    receiver.status = 200
    clock.advance(4)
    assert await deliver(node) == (1, 0)
    clock.advance(3600)
    assert await deliver(node) == (0, 0)

    assert len(receiver.calls) == 2, "one refused with 503, then one accepted"
    refused, accepted = receiver.calls
    assert refused.body == accepted.body, "a retry sends the same body"
    assert refused.headers["Idempotency-Key"] == accepted.headers["Idempotency-Key"]
    assert len(receiver.accepted) == 1
    assert check_signed(node, accepted)["content_id"] == "post-17"


async def test_second_sync_of_the_same_version_queues_nothing_new(
    hub: HubApp, node: Node, receiver: WebhookReceiver
) -> None:
    node.registry.register("post-17", {"md5": [md5("hosted")]})
    await sync_once(node)
    hub.publish(LIST, adds=[md5("hosted")])
    await sync_once(node)
    assert await deliver(node) == (1, 0)
    queued, events = outbox(node), registry_events(node)

    hub.clock.advance(60)
    hub.refresh()
    outcomes, _ = await sync_once(node)

    assert statuses(outcomes)[LIST] == ("current", 2, 2)
    assert outbox(node) == queued
    assert registry_events(node) == events
    assert await deliver(node) == (0, 0)
    assert len(receiver.calls) == 1


async def test_near_duplicate_content_matches_a_perceptual_list_retroactively(
    hub: HubApp, node: Node, receiver: WebhookReceiver
) -> None:
    near = hash_image(NEAR_COPY.read_bytes()).pdq
    other = hash_image((PDQ_DATA / "reg-test-input" / "pen-and-coaster.png").read_bytes()).pdq
    node.registry.register("photo-near", {"pdq": [near]})
    node.registry.register("photo-other", {"pdq": [other]})
    await sync_once(node)
    assert outbox(node) == []
    original = hash_image(ORIGINAL.read_bytes()).pdq
    distance = (int.from_bytes(original, "big") ^ int.from_bytes(near, "big")).bit_count()
    assert 0 < distance <= 31

    hub.publish(PDQ_LIST, adds=[original])
    outcomes, _ = await sync_once(node)

    assert statuses(outcomes)[PDQ_LIST] == ("updated", 1, 2)
    assert await deliver(node) == (1, 0)
    (call,) = receiver.calls
    body = check_signed(node, call)
    assert (body["content_id"], body["list"], body["hash_type"]) == ("photo-near", PDQ_LIST, "pdq")
    assert (body["hash"], body["content_hash"]) == (original.hex(), near.hex())
    assert body["distance"] == distance
    (event,) = registry_events(node)
    assert (event["content_id"], event["distance"]) == ("photo-near", distance)
