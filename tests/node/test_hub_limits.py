"""A node and the hub's limits on wrong tokens: guesses from its address never lock it out.

The real hub app on loopback with its default limits (ten wrong tokens a minute
per address) and a real node syncing through it. Everything here comes from
127.0.0.1, as a node and an attacker behind one NAT, or one proxy without
``trusted_proxies``, would.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import aiohttp

from node.config import write_secret
from node.service import Node
from tests.node.conftest import MD5_LIST, PDQ_LIST, HubServer, md5, sync

GUESSES = 11
"""As the review sent them: one more than the address's allowance of wrong tokens."""


async def _guess(hub: HubServer, count: int) -> list[tuple[int, str]]:
    """``count`` made-up node tokens against an operator route: (status, error code) each."""
    answers = []
    async with aiohttp.ClientSession() as session:
        for i in range(count):
            async with session.get(
                f"{hub.url}/v1/admin/status", headers={"Authorization": f"Bearer hhn_guess{i}"}
            ) as response:
                answers.append((response.status, (await response.json())["error"]["code"]))
    return answers


async def test_guesses_from_a_nodes_address_do_not_lock_the_node_out(
    hub_server: HubServer, node: Node
) -> None:
    answers = await _guess(hub_server, GUESSES)
    # Guessing stays throttled: ten refusals, then 429s.
    assert answers == [(401, "unauthorized")] * 10 + [(429, "too_many_requests")]
    # The node's token was never seen by the hub before: it is proven by its lookup.
    outcomes = {o.list_id: o for o in await sync(node)}
    assert {k: (o.status, o.to_version, o.error) for k, o in outcomes.items()} == {
        MD5_LIST: ("updated", 1, ""),
        PDQ_LIST: ("updated", 1, ""),
    }
    # And it keeps working while the guessing goes on, through a new version too.
    assert await _guess(hub_server, 3) == [(429, "too_many_requests")] * 3
    await hub_server.publish(MD5_LIST, adds=[md5("new")])
    outcomes = {o.list_id: o for o in await sync(node)}
    assert (outcomes[MD5_LIST].status, outcomes[MD5_LIST].to_version) == ("updated", 2)
    assert outcomes[MD5_LIST].added == [md5("new")]


async def test_the_operators_own_token_works_from_an_address_that_guessed(
    hub_server: HubServer,
) -> None:
    await _guess(hub_server, GUESSES)
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{hub_server.url}/v1/admin/status",
            headers={"Authorization": f"Bearer {hub_server.admin_token}"},
        ) as response,
    ):
        assert response.status == 200, await response.text()
        body = await response.json()
    assert [entry["id"] for entry in body["lists"]] == sorted([MD5_LIST, PDQ_LIST])


async def test_a_wrong_token_on_a_public_file_is_no_failure(hub_server: HubServer) -> None:
    """A root file answers the same whatever the token: sending a stale one counts nothing."""
    async with aiohttp.ClientSession() as session:
        for _ in range(3 * GUESSES):
            async with session.get(
                f"{hub_server.url}/root/1.json",
                headers={"Authorization": f"Bearer hhn_{secrets.token_urlsafe(32)}"},
            ) as response:
                assert response.status == 200
                assert (await response.json())["version"] == 1
    # None of them spent the address's wrong-token allowance.
    assert await _guess(hub_server, 10) == [(401, "unauthorized")] * 10


async def test_a_node_with_a_wrong_token_reports_the_hubs_own_message(
    hub_server: HubServer, node_home: Path
) -> None:
    write_secret(node_home / "hub-token", "hhn_" + secrets.token_urlsafe(32))
    node = Node.open(node_home)
    try:
        outcomes = await sync(node)
    finally:
        node.close()
    assert {o.status for o in outcomes} == {"failed"}
    for outcome in outcomes:
        assert "HTTP 401 unauthorized: unknown or revoked token" in outcome.error, outcome.error
        # "HTTP 429", not a bare "429": the error names the hub's URL, whose port may hold it.
        assert "HTTP 429" not in outcome.error
        assert "too_many_requests" not in outcome.error
