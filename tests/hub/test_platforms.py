"""A platform's nodes counted together: enrolment with a platform, moving a node, the rule.

A platform may run several nodes (replicas behind its own load balancer); each acks
on its own. The hub counts a platform once toward "platforms that applied version v",
says it applied v only when every active node of it (neither revoked nor suspended)
acked v, shows "n of m replicas" beside it, and sums its nodes' counts. The per-node
view stays as it was. Here the rule is driven with real signed acks on a real hub,
through the service, the operator API and the command line.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hub.cli import main
from hub.core import Hub
from hub.errors import Conflict, InvalidRequest
from hub.intake import Intake
from hub.services.reports import ListStatus, PlatformStatus
from protocol import AppliedVersion, Counts, SigningKey, sign_ack
from protocol.keyfile import write_public_key
from tests.hub.conftest import LIST, NODE_ID, Client, bearer, md5, opened

SHOP = "shop"
REPLICAS = ("shop-1", "shop-2", "shop-3")


def ack_head(hub: Hub, key: SigningKey, node: str, token: str, seq: int, counts: Counts) -> None:
    """``node`` acks the head version of ``LIST`` with ``counts``, signed with ``key``."""
    head = hub.lists.head(LIST)
    data, sig = sign_ack(
        key=key,
        node=node,
        list_id=LIST,
        seq=seq,
        sent=hub.now(),
        origin=hub.keys.root().origin(LIST),
        applied=AppliedVersion(head.version, head.compact.root(), head.state.digest()),
        counts=counts,
    )
    hub.acks.receive(hub.access.authenticate(token), data, sig)


def list_status(hub: Hub) -> ListStatus:
    return hub.reports.list_status(LIST)


def platform(status: ListStatus, name: str) -> PlatformStatus:
    (found,) = [p for p in status.platforms if p.platform == name]
    return found


class Fleet:
    """Three replicas of ``SHOP`` and one node that is its own platform, all on ``LIST``."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.keys = {n: SigningKey.generate() for n in (*REPLICAS, NODE_ID)}
        self.tokens = {
            n: hub.access.enrol_node(
                n, self.keys[n].public, [LIST], platform=SHOP if n in REPLICAS else None
            )
            for n in self.keys
        }
        self.seqs = dict.fromkeys(self.keys, 0)

    def ack(
        self,
        node: str,
        *,
        checked: int = 0,
        matched: int = 0,
        actioned: int = 0,
        blocked: int = 0,
        false_positive: int = 0,
    ) -> None:
        """``node`` acks the list's head with these cumulative counts."""
        self.seqs[node] += 1
        counts = Counts(checked, matched, actioned, blocked, false_positive)
        ack_head(self.hub, self.keys[node], node, self.tokens[node], self.seqs[node], counts)


@pytest.fixture
def fleet(hub_home: Path) -> Iterator[Fleet]:
    hub = Hub.open(hub_home)
    try:
        yield Fleet(hub)
    finally:
        hub.close()


def test_a_platform_applied_a_version_only_when_every_active_replica_acked_it(
    fleet: Fleet,
) -> None:
    fleet.ack("shop-1", checked=10, matched=2, actioned=1)
    fleet.ack("shop-2", checked=5, matched=1, blocked=1)
    fleet.ack(NODE_ID, checked=7)

    status = list_status(fleet.hub)
    shop = platform(status, SHOP)
    assert (shop.replicas, shop.replicas_on_version, shop.applied) == (3, 2, False)
    assert shop.applied_version is None, "shop-3 never acked"
    assert shop.nodes == list(REPLICAS)
    assert platform(status, NODE_ID).applied
    assert (status.platforms_applied, len(status.platforms)) == (1, 2)
    # The per-node view is as it was: four nodes, three on the version.
    assert [n.node for n in status.nodes] == [NODE_ID, *REPLICAS]
    assert status.nodes_applied == 3

    fleet.ack("shop-3", checked=1, false_positive=1)
    status = list_status(fleet.hub)
    shop = platform(status, SHOP)
    assert (shop.replicas_on_version, shop.applied, shop.applied_version) == (3, True, 2)
    # Counted once, however many replicas it runs; its counts are theirs summed.
    assert status.platforms_applied == 2
    assert shop.counts == {
        "checked": 16,
        "matched": 3,
        "actioned": 1,
        "blocked": 1,
        "false_positive": 1,
    }
    assert sum(p.counts.get("checked", 0) for p in status.platforms) == status.totals["checked"]


def test_one_replica_behind_the_newest_version_means_not_applied(
    fleet: Fleet, hub_home: Path
) -> None:
    for node in REPLICAS:
        fleet.ack(node, checked=1)
    fleet.hub.lists.stage(LIST, adds=[Intake(md5("v3"))])
    fleet.hub.publishing.publish([LIST])
    fleet.ack("shop-2", checked=2)

    shop = platform(list_status(fleet.hub), SHOP)
    assert (shop.replicas_on_version, shop.replicas, shop.applied) == (1, 3, False)
    assert shop.applied_version == 2, "every replica holds v2; one holds v3"


def test_a_suspended_or_revoked_replica_does_not_hold_its_platform_back_but_its_counts_stay(
    fleet: Fleet,
) -> None:
    fleet.ack("shop-1", checked=4)
    fleet.ack("shop-2", checked=3)
    fleet.ack("shop-3", checked=2)
    fleet.hub.lists.stage(LIST, adds=[Intake(md5("v3"))])
    fleet.hub.publishing.publish([LIST])
    fleet.ack("shop-1", checked=5)
    fleet.ack("shop-2", checked=6)

    fleet.hub.access.suspend("shop-3", "replica being rebuilt")
    shop = platform(list_status(fleet.hub), SHOP)
    assert (shop.replicas_on_version, shop.replicas, shop.applied) == (2, 2, True)
    assert shop.nodes == list(REPLICAS)
    assert shop.counts["checked"] == 5 + 6 + 2

    fleet.hub.access.resume("shop-3")
    assert not platform(list_status(fleet.hub), SHOP).applied
    fleet.hub.access.revoke_node("shop-3")
    shop = platform(list_status(fleet.hub), SHOP)
    assert (shop.replicas_on_version, shop.replicas, shop.applied) == (2, 2, True)
    assert shop.counts["checked"] == 13


def test_a_platform_with_no_active_node_has_applied_nothing(fleet: Fleet) -> None:
    fleet.ack(NODE_ID, checked=1)
    fleet.hub.access.revoke_node(NODE_ID)
    alone = platform(list_status(fleet.hub), NODE_ID)
    assert (alone.replicas, alone.replicas_on_version, alone.applied) == (0, 0, False)
    assert alone.applied_version is None
    assert alone.counts["checked"] == 1


def test_a_node_is_its_own_platform_and_a_revoked_id_enrolled_again_keeps_its_platform(
    hub_home: Path,
) -> None:
    with opened(hub_home) as hub:
        hub.access.enrol_node("solo", SigningKey.generate().public, [LIST])
        key = SigningKey.generate()
        token = hub.access.enrol_node("shop-1", key.public, [LIST], platform=SHOP)
        ack_head(hub, key, "shop-1", token, 1, Counts(checked=1))
        hub.access.revoke_node("shop-1")
        hub.access.enrol_node("shop-1", SigningKey.generate().public, [LIST])
        nodes = {n.id: n for n in hub.access.nodes()}
        actions = [(a.action, a.detail) for a in reversed(hub.reports.actions(10))]
    assert (nodes["solo"].platform, nodes["shop-1"].platform) == ("solo", SHOP)
    assert nodes["shop-1"].generation == 2
    enrolled = [d for a, d in actions if a in ("node.enrol", "node.reenrol")]
    # An enrolment names a platform only when it is not the node's own id.
    assert "platform" not in enrolled[0]
    assert enrolled[1]["platform"] == SHOP
    assert enrolled[2]["platform"] == SHOP


@pytest.mark.parametrize("bad", ["Shop", "shop!", "../shop", "", "-shop", "s" * 65, "shop..a"])
def test_a_platform_id_follows_the_node_id_rule_and_a_bad_one_changes_nothing(
    hub_home: Path, bad: str
) -> None:
    with opened(hub_home) as hub:
        hub.access.enrol_node(NODE_ID, SigningKey.generate().public, [LIST])
        before = hub.access.nodes()
        with pytest.raises(InvalidRequest, match=r"invalid platform id .*\[a-z0-9\]"):
            hub.access.enrol_node("shop-1", SigningKey.generate().public, [LIST], platform=bad)
        with pytest.raises(InvalidRequest, match="invalid platform id"):
            hub.access.set_platform(NODE_ID, bad)
        assert hub.access.nodes() == before


def test_moving_a_node_to_another_platform_is_logged_and_moves_its_counts(fleet: Fleet) -> None:
    fleet.ack(NODE_ID, checked=9)
    assert fleet.hub.access.set_platform(NODE_ID, SHOP, who="ops") == NODE_ID
    with pytest.raises(Conflict, match=f"already of platform {SHOP}"):
        fleet.hub.access.set_platform(NODE_ID, SHOP)
    status = list_status(fleet.hub)
    assert [p.platform for p in status.platforms] == [SHOP]
    shop = platform(status, SHOP)
    assert (shop.replicas, shop.counts["checked"]) == (4, 9)
    (latest,) = fleet.hub.reports.actions(1)
    assert (latest.who, latest.action, latest.detail) == (
        "ops",
        "node.platform",
        {"node": NODE_ID, "platform": SHOP, "previous": NODE_ID},
    )


def test_a_hub_from_before_platforms_makes_each_node_its_own_platform(hub_home: Path) -> None:
    with opened(hub_home) as hub:
        hub.access.enrol_node("old-a", SigningKey.generate().public, [LIST])
        hub.access.enrol_node("old-b", SigningKey.generate().public, [LIST])
    conn = sqlite3.connect(hub_home / "hub.db", isolation_level=None)
    try:
        conn.executescript(
            """
            DROP INDEX nodes_platform;
            ALTER TABLE nodes DROP COLUMN platform;
            DELETE FROM _sqlite_migrations WHERE name = 'm006_node_platforms';
            """
        )
    finally:
        conn.close()
    with opened(hub_home) as hub:
        assert {n.id: n.platform for n in hub.access.nodes()} == {
            "old-a": "old-a",
            "old-b": "old-b",
        }
        assert [p.platform for p in list_status(hub).platforms] == ["old-a", "old-b"]


# -- the operator API -------------------------------------------------------------------------


async def test_the_api_enrols_with_a_platform_moves_a_node_and_counts_per_platform(
    client: Client, hub_home: Path, admin_token: str, role_tokens: dict[str, str]
) -> None:
    key = SigningKey.generate()
    answer = await client.post(
        "/v1/admin/nodes",
        json={
            "id": "shop-1",
            "public_key": key.public.raw.hex(),
            "lists": [LIST],
            "platform": SHOP,
        },
        headers=bearer(admin_token),
    )
    assert answer.status == 201, await answer.text()
    body = await answer.json()
    assert (body["node"], body["platform"]) == ("shop-1", SHOP)
    answer = await client.post(
        "/v1/admin/nodes",
        json={"id": "solo", "public_key": SigningKey.generate().public.raw.hex(), "lists": [LIST]},
        headers=bearer(admin_token),
    )
    assert (await answer.json())["platform"] == "solo"

    with opened(hub_home) as hub:
        ack_head(hub, key, "shop-1", body["token"], 1, Counts(checked=3, matched=1))

    listed = await client.get("/v1/admin/nodes", headers=bearer(role_tokens["viewer"]))
    assert {n["id"]: n["platform"] for n in (await listed.json())["nodes"]} == {
        "shop-1": SHOP,
        "solo": "solo",
    }
    counts = await (
        await client.get(f"/v1/admin/lists/{LIST}/counts", headers=bearer(role_tokens["viewer"]))
    ).json()
    assert (counts["version"], counts["platforms_applied"]) == (2, 1)
    assert counts["platforms"][0] == {
        "platform": SHOP,
        "nodes": ["shop-1"],
        "replicas": 1,
        "replicas_on_version": 1,
        "applied": True,
        "applied_version": 2,
        "counts": {"checked": 3, "matched": 1, "actioned": 0, "blocked": 0, "false_positive": 0},
        "withheld": {},
    }
    assert counts["platforms"][1]["platform"] == "solo"
    assert counts["platforms"][1]["applied"] is False

    answer = await client.post(
        "/v1/admin/nodes/solo/platform", json={"platform": SHOP}, headers=bearer(admin_token)
    )
    assert answer.status == 200, await answer.text()
    assert await answer.json() == {"node": "solo", "platform": SHOP, "previous": "solo"}
    status = await (await client.get("/v1/admin/status", headers=bearer(admin_token))).json()
    (entry,) = [e for e in status["lists"] if e["id"] == LIST]
    assert [
        (p["platform"], p["replicas"], p["replicas_on_version"]) for p in entry["platforms"]
    ] == [(SHOP, 2, 1)]
    assert {n["node"]: n["platform"] for n in entry["nodes"]} == {"shop-1": SHOP, "solo": SHOP}
    assert (entry["platforms_applied"], entry["nodes_applied"]) == (0, 1)


@pytest.mark.parametrize(
    ("path", "body", "status", "says"),
    [
        ("platform-a/platform", {"platform": "Shop"}, 400, "invalid platform id 'Shop'"),
        ("platform-a/platform", {"platform": 7}, 400, "'platform' must be a string"),
        ("platform-a/platform", {}, 400, "'platform' must be a string"),
        ("platform-a/platform", {"platform": SHOP, "x": 1}, 400, "unknown field"),
        ("platform-a/platform", {"platform": NODE_ID}, 409, "already of platform platform-a"),
        ("platform-z/platform", {"platform": SHOP}, 404, "no enrolled node 'platform-z'"),
    ],
)
async def test_a_platform_change_that_cannot_be_made_is_refused_and_changes_nothing(
    client: Client,
    hub_home: Path,
    admin_token: str,
    node_token: str,
    path: str,
    body: dict[str, Any],
    status: int,
    says: str,
) -> None:
    with opened(hub_home) as hub:
        before = (hub.access.nodes(), len(hub.reports.actions(1000)))
    answer = await client.post(f"/v1/admin/nodes/{path}", json=body, headers=bearer(admin_token))
    assert answer.status == status, await answer.text()
    error = (await answer.json())["error"]
    assert error["status"] == status
    assert says in error["message"], error
    with opened(hub_home) as hub:
        assert (hub.access.nodes(), len(hub.reports.actions(1000))) == before


async def test_the_api_refuses_an_enrolment_with_a_bad_platform_and_enrols_nothing(
    client: Client, hub_home: Path, admin_token: str
) -> None:
    answer = await client.post(
        "/v1/admin/nodes",
        json={
            "id": "shop-1",
            "public_key": SigningKey.generate().public.raw.hex(),
            "lists": [LIST],
            "platform": "Shop Inc",
        },
        headers=bearer(admin_token),
    )
    assert answer.status == 400
    assert "invalid platform id 'Shop Inc'" in (await answer.json())["error"]["message"]
    with opened(hub_home) as hub:
        assert hub.access.nodes() == []


async def test_only_an_admin_moves_a_node(
    client: Client, role_tokens: dict[str, str], node_token: str, hub_home: Path
) -> None:
    for role in ("viewer", "auditor", "publisher"):
        answer = await client.post(
            f"/v1/admin/nodes/{NODE_ID}/platform",
            json={"platform": SHOP},
            headers=bearer(role_tokens[role]),
        )
        assert answer.status == 403, role
    with opened(hub_home) as hub:
        assert [n.platform for n in hub.access.nodes()] == [NODE_ID]


# -- the command line -------------------------------------------------------------------------


def hashhub(home: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, [*args, "--home", str(home)])
    return result.exit_code, result.output


def test_the_cli_enrols_replicas_of_a_platform_shows_moves_and_counts_them(
    hub_home: Path, tmp_path: Path
) -> None:
    keys, tokens = {}, {}
    for node in ("shop-1", "shop-2"):
        keys[node] = SigningKey.generate()
        pem = tmp_path / f"{node}.pub.pem"
        write_public_key(pem, keys[node].public)
        code, out = hashhub(
            hub_home, "node", "enrol", node, "--public-key", str(pem), "--lists", LIST,
            "--platform", SHOP, "--url", "https://hashes.example.org",
        )  # fmt: skip
        assert code == 0, out
        assert out.startswith(f"Enrolled node {node} of platform {SHOP} for {LIST} (key "), out
        found = re.search(r"node token +(hhn_[A-Za-z0-9_-]{43})$", out, re.MULTILINE)
        assert found, out
        tokens[node] = found[1]

    code, out = hashhub(hub_home, "node", "show", "shop-1")
    assert code == 0, out
    assert out.splitlines()[:2] == ["node        shop-1", f"platform    {SHOP}"]
    code, out = hashhub(hub_home, "node", "list")
    assert re.search(rf"shop-2\s+{SHOP}\s+\S{{16}}\s+{LIST}\s", out), out

    with opened(hub_home) as hub:
        for node, checked in (("shop-1", 10), ("shop-2", 32)):
            ack_head(hub, keys[node], node, tokens[node], 1, Counts(checked=checked, matched=1))
    code, out = hashhub(hub_home, "status")
    assert code == 0, out
    assert f"{LIST}: platforms (1 of 1 applied v2)" in out, out
    assert re.search(rf"\n{SHOP}\s+yes\s+2 of 2\s+42\s+2\s+0\s+0\s+0\n", out), out
    # Per node, as before.
    assert re.search(r"\nshop-1\s+2\s+0\s+\S+Z\s+10\s+1\s", out), out
    assert re.search(r"\nshop-2\s+2\s+0\s+\S+Z\s+32\s+1\s", out), out

    code, out = hashhub(hub_home, "node", "platform", "shop-2", "shop-eu")
    assert (code, out) == (0, f"Node shop-2 now counts for platform shop-eu (was {SHOP}).\n")
    code, out = hashhub(hub_home, "status")
    assert f"{LIST}: platforms (2 of 2 applied v2)" in out, out
    assert re.search(rf"\n{SHOP}\s+yes\s+1 of 1\s+10\s", out), out
    assert re.search(r"\nshop-eu\s+yes\s+1 of 1\s+32\s", out), out


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["node", "platform", "shop-1", "Shop"], "Error: invalid platform id 'Shop'"),
        (["node", "platform", "shop-1", SHOP], f"Error: node shop-1 is already of platform {SHOP}"),
        (["node", "platform", "nobody", SHOP], "Error: no enrolled node 'nobody'"),
    ],
)
def test_a_cli_platform_mistake_is_one_line_and_changes_nothing(
    hub_home: Path, tmp_path: Path, args: list[str], says: str
) -> None:
    with opened(hub_home) as hub:
        hub.access.enrol_node("shop-1", SigningKey.generate().public, [LIST], platform=SHOP)
        before = hub.access.nodes()
    code, out = hashhub(hub_home, *args)
    assert code == 1, out
    assert out.startswith(says), out
    assert len(out.strip().splitlines()) == 1, out
    with opened(hub_home) as hub:
        assert hub.access.nodes() == before


def test_the_cli_refuses_to_enrol_with_a_bad_platform(hub_home: Path, tmp_path: Path) -> None:
    pem = tmp_path / "node.pub.pem"
    write_public_key(pem, SigningKey.generate().public)
    code, out = hashhub(
        hub_home, "node", "enrol", "shop-1", "--public-key", str(pem), "--lists", LIST,
        "--platform", "../shop",
    )  # fmt: skip
    assert code == 1, out
    assert out.startswith("Error: invalid platform id '../shop'"), out
    with opened(hub_home) as hub:
        assert hub.access.nodes() == []
