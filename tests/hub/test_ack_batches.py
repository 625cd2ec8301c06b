"""Acks that arrive together are stored together, and each still gets its own answer."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from protocol import SigningKey
from tests.hub.conftest import LIST, Client, Follower, ack_headers, count_rows, opened, pinned

NODES = 12


@pytest.fixture
async def follower(client: Client, hub_home: Path, node_token: str) -> Follower:
    node = Follower(client, pinned(hub_home), node_token)
    await node.update(LIST)
    return node


async def post_ack(
    client: Client, data: bytes, sig: bytes, token: str
) -> tuple[int, dict[str, Any]]:
    response = await client.post("/v1/acks", data=data, headers=ack_headers(token, sig))
    return response.status, await response.json()


async def test_concurrent_acks_of_many_nodes_are_each_answered_on_their_own(
    client: Client, hub_home: Path, follower: Follower
) -> None:
    keys = [SigningKey.generate() for _ in range(NODES)]
    with opened(hub_home) as hub:
        tokens = [
            hub.access.enrol_node(f"batch-node-{n}", key.public, [LIST])
            for n, key in enumerate(keys)
        ]
    acks = [await follower.ack(key, LIST, 1, node=f"batch-node-{n}") for n, key in enumerate(keys)]
    stranger = SigningKey.generate()
    bad_data, bad_sig = await follower.ack(stranger, LIST, 1, node="batch-node-0")

    answers = await asyncio.gather(
        *(
            post_ack(client, data, sig, token)
            for (data, sig), token in zip(acks, tokens, strict=True)
        ),
        post_ack(client, bad_data, bad_sig, tokens[0]),
        post_ack(client, acks[1][0], acks[1][1], "hhn_not-a-token"),
    )

    good, forged, unknown = answers[:NODES], answers[NODES], answers[NODES + 1]
    assert [status for status, _ in good] == [200] * NODES
    assert sorted(body["node"] for _, body in good) == sorted(
        f"batch-node-{n}" for n in range(NODES)
    )
    assert forged[0] == 422
    assert unknown[0] == 401
    assert count_rows(hub_home, "acks") == NODES
