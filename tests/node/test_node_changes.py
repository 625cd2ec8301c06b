"""Changing an enrolled node, end to end: a real hub app, a real node, the operator API.

An operator grants and takes away lists, re-keys a node, issues it a new token,
suspends and resumes it, moves it to another platform, and enrols a revoked id
again as a new generation. Each
change must take effect on the node's next request, be in the action log, and
leave every ack the hub accepted verifiable under the key that signed it
(PROTOCOL.md §10.4.1), which is what an auditor checks from the node list alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from node.service import Node, flush_acks
from protocol import NodeKeyPeriod, PublicKey, SigningKey, sign_ack, verify_ack_by_periods
from protocol.ack import Ack
from protocol.keyfile import load_private_key
from tests.node.fixtures_sync import HUB_NAME, NODE_ID, Clock, HubApp, make_node, md5, sync_once

LIST = "tid-md5"
OTHER = "tid-md5-b"


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubApp]:
    app = HubApp.init(tmp_path / "hub", Clock())
    app.create_list(LIST, "md5")
    app.create_list(OTHER, "md5")
    app.publish(LIST, adds=[md5(i) for i in range(3)])
    app.publish(OTHER, adds=[md5("b")])
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


@pytest.fixture
def admin(hub: HubApp) -> str:
    with hub.opened() as opened:
        return opened.access.create_operator_token("admin", "ops")


@pytest.fixture
def node(tmp_path: Path, hub: HubApp) -> Iterator[Node]:
    """A node that follows both lists but is enrolled for ``LIST`` only."""
    made = make_node(tmp_path / "node", hub, [LIST, OTHER], enrolled_for=[LIST])
    try:
        yield made
    finally:
        made.close()


async def call(
    hub: HubApp, token: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{hub.url}/v1/admin/nodes/{path}",
            json=body if body is not None else {},
            headers={"Authorization": f"Bearer {token}"},
        ) as resp,
    ):
        return resp.status, await resp.json()


async def nodes(hub: HubApp, token: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{hub.url}/v1/admin/nodes", headers={"Authorization": f"Bearer {token}"}
        ) as resp,
    ):
        assert resp.status == 200
        return {n["id"]: n for n in (await resp.json())["nodes"]}


async def flush(node: Node) -> tuple[int, int]:
    async with aiohttp.ClientSession() as session:
        return await flush_acks(node, session)


def actions(hub: HubApp) -> list[tuple[str, dict[str, Any]]]:
    with hub.opened() as opened:
        return [(a.action, a.detail) for a in reversed(opened.reports.actions(1000))]


def periods_listed(entry: dict[str, Any]) -> list[NodeKeyPeriod]:
    """The key periods as an auditor reads them from ``GET /v1/admin/nodes``."""
    return [
        NodeKeyPeriod(PublicKey(bytes.fromhex(k["public_key"])), k["first_seq"], k["last_seq"])
        for k in entry["keys"]
    ]


def stored_acks(hub: HubApp, node_id: str) -> list[tuple[bytes, bytes]]:
    with hub.opened() as opened:
        rows = opened.ctx.db.query(
            "SELECT bytes, sig FROM acks WHERE node = ? ORDER BY seq", [node_id]
        )
        return [(bytes(r["bytes"]), bytes(r["sig"])) for r in rows]


def verified_seqs(hub: HubApp, entry: dict[str, Any]) -> list[int]:
    periods = periods_listed(entry)
    return [
        verify_ack_by_periods(data, sig, periods=periods, origin_prefix=HUB_NAME).seq
        for data, sig in stored_acks(hub, entry["id"])
    ]


async def test_a_list_granted_is_read_and_a_list_taken_away_is_refused(
    hub: HubApp, admin: str, node: Node
) -> None:
    outcomes, _ = await sync_once(node)
    by_list = {o.list_id: o for o in outcomes}
    assert by_list[OTHER].cause == "forbidden", by_list[OTHER]
    assert by_list[LIST].status == "updated"

    assert await call(hub, admin, f"{NODE_ID}/grant", {"lists": [OTHER]}) == (
        200,
        {"node": NODE_ID, "lists": [LIST, OTHER]},
    )
    outcomes, _ = await sync_once(node)
    assert {o.list_id: o.status for o in outcomes} == {LIST: "current", OTHER: "updated"}

    assert await call(hub, admin, f"{NODE_ID}/ungrant", {"lists": [OTHER]}) == (
        200,
        {"node": NODE_ID, "lists": [LIST]},
    )
    outcomes, _ = await sync_once(node)
    by_list = {o.list_id: o for o in outcomes}
    assert by_list[OTHER].cause == "forbidden"
    assert "may not read list tid-md5-b" in by_list[OTHER].error, by_list[OTHER].error
    assert by_list[LIST].status == "current"
    assert [a for a in actions(hub) if a[0] in ("node.grant", "node.ungrant")] == [
        ("node.grant", {"node": NODE_ID, "lists": [OTHER]}),
        ("node.ungrant", {"node": NODE_ID, "lists": [OTHER]}),
    ]


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("grant", {"lists": ["tid-md5"]}, 409, "already has list tid-md5"),
        ("grant", {"lists": ["no-such-list"]}, 404, "no-such-list"),
        ("grant", {"lists": []}, 400, "name at least one list"),
        ("grant", {"lists": "tid-md5-b"}, 400, "'lists' must be a list of strings"),
        ("grant", {"lists": ["../x"]}, 400, "list"),
        ("ungrant", {"lists": ["tid-md5-b"]}, 409, "does not have list tid-md5-b"),
        ("key", {"public_key": "00" * 31}, 400, "'public_key' is not an Ed25519 public key"),
        ("suspend", {"reason": "two\nlines"}, 400, "without control characters"),
        ("suspend", {"why": "x"}, 400, "unknown field"),
        ("resume", None, 409, "is not suspended"),
        ("platform", {"platform": "Shop"}, 400, "invalid platform id 'Shop'"),
        ("platform", {"platform": NODE_ID}, 409, "is already of platform platform-a"),
        ("platform", {}, 400, "'platform' must be a string"),
    ],
)
async def test_a_change_that_cannot_be_made_is_refused_with_why_and_changes_nothing(
    hub: HubApp, admin: str, node: Node, path: str, body: Any, status: int, message: str
) -> None:
    before = await nodes(hub, admin)
    got, answer = await call(hub, admin, f"{NODE_ID}/{path}", body)
    assert got == status, answer
    assert message in answer["error"]["message"], answer
    assert await nodes(hub, admin) == before


async def test_only_an_admin_changes_a_node_and_an_unknown_node_is_not_found(
    hub: HubApp, admin: str, node: Node
) -> None:
    with hub.opened() as opened:
        viewer = opened.access.create_operator_token("viewer", "watcher")
    got, answer = await call(hub, viewer, f"{NODE_ID}/suspend", {})
    assert (got, answer["error"]["code"]) == (403, "forbidden")
    got, answer = await call(hub, admin, "platform-z/suspend", {})
    assert (got, answer["error"]["message"]) == (404, "no enrolled node 'platform-z'")


async def test_a_rekeyed_node_signs_from_its_next_seq_and_its_old_acks_still_verify(
    hub: HubApp, admin: str, node: Node
) -> None:
    await sync_once(node)
    assert await flush(node) == (1, 0)
    old_key = load_private_key(node.home / "node.key")
    old_id, new_id, resigned = node.rotate_key()
    assert (old_id, resigned) == (old_key.keyid, [])
    assert (node.home / f"node.{old_id[:16]}.pub.pem").read_bytes() == old_key.public.to_pem()
    assert load_private_key(node.home / "node.key").keyid == new_id != old_id

    pem = (node.home / "node.pub.pem").read_text()
    assert await call(hub, admin, f"{NODE_ID}/key", {"public_key": pem}) == (
        200,
        {"node": NODE_ID, "keyid": new_id, "first_seq": 2},
    )
    hub.publish(LIST, adds=[md5("new")])
    await sync_once(node)
    assert await flush(node) == (1, 0)

    entry = (await nodes(hub, admin))[NODE_ID]
    assert [(k["keyid"], k["first_seq"], k["last_seq"], k["reason"]) for k in entry["keys"]] == [
        (old_id, 1, 1, "enrol"),
        (new_id, 2, None, "re-key"),
    ]
    assert verified_seqs(hub, entry) == [1, 2]

    # The retired key signs nothing the hub takes, whatever seq it claims.
    last = Ack.from_bytes(stored_acks(hub, NODE_ID)[-1][0])
    data, sig = sign_ack(
        key=old_key,
        node=NODE_ID,
        list_id=LIST,
        seq=3,
        sent=hub.clock(),
        origin=f"{HUB_NAME}/lists/{LIST}",
        applied=last.applied,
        counts=last.counts,
    )
    with hub.opened() as opened:
        principal = opened.access.authenticate(node.token)
        with pytest.raises(Exception, match=r"ack refused \(SignatureError\).*does not sign seq 3"):
            opened.acks.receive(principal, data, sig)
    assert (
        "node.rekey",
        {"node": NODE_ID, "keyid": new_id, "previous": old_id, "first_seq": 2},
    ) in (actions(hub))


async def test_queued_acks_are_signed_again_with_the_new_key(
    hub: HubApp, admin: str, node: Node
) -> None:
    await sync_once(node)  # an ack queued, not sent
    _, new_id, resigned = node.rotate_key()
    assert resigned == [1]
    pem = (node.home / "node.pub.pem").read_text()
    assert (await call(hub, admin, f"{NODE_ID}/key", {"public_key": pem}))[1]["first_seq"] == 1
    assert await flush(node) == (1, 0)
    entry = (await nodes(hub, admin))[NODE_ID]
    # The first key signed nothing, so the new one replaced it from seq 1.
    assert [(k["keyid"], k["first_seq"]) for k in entry["keys"]] == [(new_id, 1)]
    assert verified_seqs(hub, entry) == [1]


async def test_a_new_token_replaces_the_old_one_at_once(
    hub: HubApp, admin: str, node: Node
) -> None:
    got, answer = await call(hub, admin, f"{NODE_ID}/token")
    assert got == 201, answer
    assert answer["token"].startswith("hhn_"), answer
    outcomes, _ = await sync_once(node)
    assert {o.cause for o in outcomes} == {"unauthorized"}
    assert all("unknown or revoked token" in o.error for o in outcomes)
    node.token = answer["token"]
    outcomes, _ = await sync_once(node)
    assert {o.list_id: o.status for o in outcomes}[LIST] == "updated"
    assert ("node.token", {"node": NODE_ID}) in actions(hub)


async def test_a_suspended_node_is_refused_keeps_its_acks_and_comes_back_on_resume(
    hub: HubApp, admin: str, node: Node
) -> None:
    await sync_once(node)
    assert await call(hub, admin, f"{NODE_ID}/suspend", {"reason": "abuse report 7"}) == (
        200,
        {"node": NODE_ID, "suspended": True},
    )
    outcomes, _ = await sync_once(node)
    assert {o.cause for o in outcomes} == {"suspended"}
    assert all("suspended by the hub operator" in o.error for o in outcomes)
    assert await flush(node) == (0, 1)
    queued = list(node.store.db.query("SELECT seq, last_error FROM ack_outbox"))
    assert [r["seq"] for r in queued] == [1], "kept, not refused"
    assert "node_suspended" in queued[0]["last_error"], queued
    entry = (await nodes(hub, admin))[NODE_ID]
    assert entry["suspended"], entry
    assert (entry["lists"], entry["revoked"]) == ([LIST], None)

    assert await call(hub, admin, f"{NODE_ID}/resume") == (
        200,
        {"node": NODE_ID, "suspended": False},
    )
    node.acks.store.db.execute("UPDATE ack_outbox SET next_attempt = ''")
    assert await flush(node) == (1, 0)
    log = [a for a in actions(hub) if a[0] in ("node.suspend", "node.resume")]
    assert log == [
        ("node.suspend", {"node": NODE_ID, "reason": "abuse report 7"}),
        ("node.resume", {"node": NODE_ID}),
    ]


async def test_a_revoked_id_enrolled_again_is_a_new_generation_above_the_old_seqs(
    tmp_path: Path, hub: HubApp, admin: str, node: Node
) -> None:
    await sync_once(node)
    assert await flush(node) == (1, 0)
    old_key = node.key
    with hub.opened() as opened:
        opened.access.revoke_node(NODE_ID)
    node.close()

    # The platform starts over: a new home, a new key, seq 1 again.
    fresh = make_node(tmp_path / "fresh", hub, [LIST])
    try:
        assert fresh.key.keyid != old_key.keyid
        await sync_once(fresh)
        reasons: list[str] = []
        async with aiohttp.ClientSession() as session:
            sent = await flush_acks(fresh, session, reasons=reasons)
        assert sent == (1, 0), reasons  # 409, re-signed above the hub's last seq
        entry = (await nodes(hub, admin))[NODE_ID]
        assert (entry["generation"], entry["revoked"]) == (2, None)
        assert [
            (k["keyid"], k["first_seq"], k["last_seq"], k["generation"], k["reason"])
            for k in entry["keys"]
        ] == [
            (old_key.keyid, 1, 1, 1, "enrol"),
            (fresh.key.keyid, 2, None, 2, "re-enrol"),
        ]
        assert verified_seqs(hub, entry) == [1, 2]
    finally:
        fresh.close()
    (reenrol,) = [d for a, d in actions(hub) if a == "node.reenrol"]
    assert (reenrol["generation"], reenrol["first_seq"]) == (2, 2)


async def test_a_revoked_id_that_never_acked_is_enrolled_again_with_its_new_key_alone(
    tmp_path: Path, hub: HubApp, admin: str, node: Node
) -> None:
    """The first key signed nothing: the new key's period starts at seq 1 and replaces
    it (as a second rekey before any ack does), and the node acks under it."""
    with hub.opened() as opened:
        opened.access.revoke_node(NODE_ID)
    node.close()
    fresh = make_node(tmp_path / "fresh", hub, [LIST])
    try:
        await sync_once(fresh)
        assert await flush(fresh) == (1, 0)
        entry = (await nodes(hub, admin))[NODE_ID]
        assert [
            (k["keyid"], k["first_seq"], k["last_seq"], k["generation"], k["reason"])
            for k in entry["keys"]
        ] == [(fresh.key.keyid, 1, None, 2, "re-enrol")]
        assert verified_seqs(hub, entry) == [1]
    finally:
        fresh.close()


async def test_an_enrolled_node_cannot_be_enrolled_twice(
    hub: HubApp, admin: str, node: Node
) -> None:
    key = SigningKey.generate().public
    with hub.opened() as opened, pytest.raises(Exception, match="already enrolled: change it"):
        opened.access.enrol_node(NODE_ID, key, [LIST])


async def test_a_node_moved_to_another_platform_acks_on_and_counts_for_that_platform(
    hub: HubApp, admin: str, node: Node
) -> None:
    await sync_once(node)
    assert await flush(node) == (1, 0)
    assert (await nodes(hub, admin))[NODE_ID]["platform"] == NODE_ID

    assert await call(hub, admin, f"{NODE_ID}/platform", {"platform": "shop"}) == (
        200,
        {"node": NODE_ID, "platform": "shop", "previous": NODE_ID},
    )
    entry = (await nodes(hub, admin))[NODE_ID]
    assert (entry["platform"], entry["lists"], entry["suspended"]) == ("shop", [LIST], None)
    # Nothing else changed for the node: it reads and acks the next version as before.
    version = hub.publish(LIST, adds=[md5("moved")])
    outcomes, _ = await sync_once(node)
    assert {o.list_id: o.status for o in outcomes}[LIST] == "updated"
    assert await flush(node) == (1, 0)
    status = hub.status(LIST)
    (shop,) = status.platforms
    assert (shop.platform, shop.nodes, shop.applied, shop.applied_version) == (
        "shop",
        [NODE_ID],
        True,
        version,
    )
    assert shop.counts == status.nodes[0].counts
    assert ("node.platform", {"node": NODE_ID, "platform": "shop", "previous": NODE_ID}) in (
        actions(hub)
    )
