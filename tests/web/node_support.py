"""A real hub and a real node serving its status page, for the node page tests.

- ``PageHub``: a hub (``tests.node.fixtures_sync.HubApp``, real keys and SQLite, on
  loopback) with ``MD5_LIST`` (md5 of ``"0"`` … ``"4"``) and ``PDQ_LIST`` (the PDQ
  hash of the shared bridge photo) published at version 1, on a settable clock.
- ``start_node_site``: a node made by ``make_node``, served by the node's own
  ``create_app`` (schedule off) on loopback with the hub's clock, synced once.
- ``log_in``: the login form posted with the node's API token; returns the
  session's CSRF token as the status page carries it in its forms.
- ``match``: a match made through the node's JSON API, as the platform would.
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from node.api.keys import NODE, SESSION
from node.app import create_app
from node.config import read_secret
from node.service import Node, run_sync
from tests.node.conftest import original_pdq
from tests.node.fixtures_sync import Clock, HubApp, make_node, md5

__all__ = [
    "MD5_LIST",
    "PDQ_LIST",
    "Client",
    "api_headers",
    "csrf_of",
    "log_in",
    "match",
    "node_of",
    "start_hub",
    "start_node_site",
]

MD5_LIST = "tid-md5"
PDQ_LIST = "bridge-pdq"

Client = TestClient[web.Request, web.Application]

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def start_hub(home: Path) -> HubApp:
    """A hub with both lists published (version 1), served on loopback."""
    hub = HubApp.init(home, Clock())
    hub.create_list(MD5_LIST, "md5")
    hub.create_list(PDQ_LIST, "pdq")
    hub.publish(MD5_LIST, adds=[md5(i) for i in range(5)])
    hub.publish(PDQ_LIST, adds=[original_pdq()])
    return await hub.start()


async def start_node_site(
    home: Path, hub: HubApp, *, synced: bool = True, schedule: bool = False
) -> Client:
    """The node's real app on loopback, sharing the hub's clock, synced once. Close it.

    ``synced=False`` leaves the node as enrolment left it: nothing verified yet.
    ``schedule=True`` runs the node's own scheduler (its first update starts at once).
    """
    made = make_node(home, hub, [MD5_LIST, PDQ_LIST])
    made.close()
    app = create_app(home, now=hub.clock, schedule=schedule)
    client: Client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    if not synced or schedule:
        return client
    outcomes = await run_sync(app[NODE], app[SESSION])
    assert {o.list_id: o.status for o in outcomes} == {
        MD5_LIST: "updated",
        PDQ_LIST: "updated",
    }, outcomes
    return client


def node_of(client: Client) -> Node:
    return client.app[NODE]


def api_headers(client: Client) -> dict[str, str]:
    """The platform's bearer token for the node's JSON API."""
    return {"Authorization": f"Bearer {read_secret(node_of(client).home / 'api-token')}"}


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "the page carries no CSRF token"
    return found.group(1)


async def log_in(client: Client) -> str:
    """Log in with the API token; returns the CSRF token of the new session."""
    token = read_secret(node_of(client).home / "api-token")
    response = await client.post("/status/login", data={"token": token}, allow_redirects=False)
    assert response.status == 303, await response.text()
    page = await client.get("/status/", allow_redirects=False)
    assert page.status == 200, await page.text()
    return csrf_of(await page.text())


async def match(client: Client, label: object) -> str:
    """Check ``md5(label)`` through ``POST /v1/match``; returns the one match id."""
    response = await client.post(
        "/v1/match",
        json={"hashes": [{"type": "md5", "hash": md5(label).hex()}]},
        headers=api_headers(client),
    )
    assert response.status == 200, await response.text()
    (found,) = (await response.json())["matches"]
    return str(found["match_id"])
