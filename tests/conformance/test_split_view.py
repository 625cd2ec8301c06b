"""A split view (docs/design.md §6): the hub shows two nodes two histories; the auditor catches it.

The hub is real (``hub.app.create_app`` on loopback). Its split self is a fork of
it: a copy of its home made after version 1 — same keys, same roots — that then
publishes a different version 2 with the hub's real delta, checkpoint and
timestamp keys (what the hub, or a thief of its online keys, can do). Node A
talks to the real hub. Node B's "hub" is a bending front: every GET is answered
from the fork's published tree, every POST (its acks) goes to the real hub.

Neither node can tell on its own: each verifies a validly signed, internally
consistent history and applies it (exit status of the update: ``updated``). Both
ack to the real hub, which accepts A's and keeps B's as evidence. The auditor,
with the two nodes' public keys, finds that two nodes co-signed different roots
for one tree size — or, when the real hub has moved on, two sizes with no
consistency proof between them — and names both nodes (``hashhub-audit acks``
exits 3).

tuf-conformance has no counterpart (TUF has no witnesses); the closest is its
rollback/fork family (``test_snapshot_rollback``, ``test_targets_version_rollback``),
which a single client can detect. A split view needs two.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from audit.cli import EXIT_FAILED
from node.service import flush_acks
from tests.audit.support import audit_async
from tests.node.fixtures_sync import Clock, HubApp, fork_hub, make_node, md5, sync_once
from tests.node.hostile import Answer, HostileServer

LIST = "split-md5"


@pytest.mark.parametrize(
    ("real_versions", "caught"),
    [
        (1, "two roots for tree size 2: "),
        (2, "no consistency proof from platform-b (size 2) to platform-a (size 3)"),
    ],
    ids=["same-size", "different-sizes"],
)
async def test_a_split_view_is_caught_by_the_auditor_naming_both_nodes(
    tmp_path: Path, real_versions: int, caught: str
) -> None:
    hub = HubApp.init(tmp_path / "hub", Clock())
    hub.create_list(LIST, "md5", snapshot_every=10)
    hub.publish(LIST, [md5(i) for i in range(3)])
    await hub.start()
    fork = await fork_hub(hub, tmp_path / "fork")
    for n in range(real_versions):
        hub.publish(LIST, [md5(f"real-{n}")])
    fork.publish(LIST, [md5("shown-to-b-only")])

    fork_tree = HostileServer.serving(fork.home)
    real_hub = HostileServer.proxy(hub.url)

    async def bend(request: web.Request, body: bytes) -> Answer:
        upstream = fork_tree if request.method == "GET" else real_hub
        return await upstream.source(request, body)

    front = await HostileServer(bend).start()
    try:
        node_a = make_node(tmp_path / "a", hub, [LIST], node_id="platform-a")
        node_b = make_node(tmp_path / "b", hub, [LIST], node_id="platform-b", hub_url=front.url)
        try:
            (a,), _ = await sync_once(node_a)
            (b,), _ = await sync_once(node_b)
            assert (a.status, a.to_version) == ("updated", 1 + real_versions), a.error
            assert (b.status, b.to_version) == ("updated", 2), b.error
            assert node_a.store.stored_list(LIST, "md5").trust.state != (
                node_b.store.stored_list(LIST, "md5").trust.state
            ), "B holds a list A never saw"
            async with aiohttp.ClientSession() as session:
                assert await flush_acks(node_a, session) == (1, 0)
                assert await flush_acks(node_b, session) == (0, 1), "the hub refuses B's ack"
            assert front.count("GET /lists/") > 0
            assert front.count("POST /v1/acks") == 1
        finally:
            node_a.close()
            node_b.close()

        with hub.opened() as opened:
            evidence = opened.evidence.items()
            auditor = opened.access.create_operator_token("auditor", "watchdog")
            viewer = opened.access.create_operator_token("viewer", "watchdog")
        assert [(e.kind, e.node) for e in evidence] == [("split_view", "platform-b")]

        args = [
            "acks", hub.url, "--root-sha256", hub.pinned(), "--token", auditor,
            "--viewer-token", viewer,
            "--node-key", f"platform-a={tmp_path / 'a' / 'node.pub.pem'}",
            "--node-key", f"platform-b={tmp_path / 'b' / 'node.pub.pem'}",
        ]  # fmt: skip
        out = await audit_async(*args, "--json")
        assert out.code == EXIT_FAILED, out.stdout
        report = out.json()
        assert report["tree"]["ok"] is True, "the published tree itself is sound"
        assert report["acks"]["verified"] == 2, "both acks are genuinely signed by their nodes"
        split = [f for f in report["acks"]["findings"] if f["rule"] == "SplitView"]
        assert any(caught in f["message"] for f in split), split
        assert all(f["file"] == f"list {LIST}" for f in split)
        same = next(f["message"] for f in split if caught in f["message"])
        assert "platform-a" in same
        assert "platform-b" in same
        assert {f["rule"] for f in report["acks"]["findings"]} == {"SplitView"}

        readable = await audit_async(*args)
        assert readable.code == EXIT_FAILED
        assert f"list {LIST}: SplitView (PROTOCOL.md §10, §9.1): " in readable.stdout
    finally:
        await front.close()
        await fork_tree.close()
        await real_hub.close()
        await hub.stop()
