"""The nodes section's forms: an admin changes an enrolled node from the dashboard.

The same changes as ``hashhub node grant|ungrant|rekey|token|suspend|resume|platform`` and
the operator API (tests/node/test_node_changes.py runs them against a real node):
here the forms themselves, on the real hub app, with the session, the CSRF token
and the role checked, each change in the action log, and the page showing the
node's state afterwards. Only ``admin`` sees and may send them.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.app import create_app
from hub.core import Hub
from protocol import SigningKey
from tests.web.hub_support import (
    MD5_LIST,
    PDQ_LIST,
    Client,
    OperatorSession,
    init_web_hub,
    operator_token,
)

NODE = "platform-a"


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "hub"
    init_web_hub(path)
    hub = Hub.open(path)
    try:
        hub.access.enrol_node(NODE, SigningKey.generate().public, [MD5_LIST])
    finally:
        hub.close()
    return path


@pytest.fixture
def home(tmp_path: Path, initialised: Path) -> Path:
    return Path(shutil.copytree(initialised, tmp_path / "hub"))


@pytest.fixture
async def client(home: Path) -> AsyncIterator[Client]:
    async with TestClient(TestServer(create_app(home, schedule=False), host="127.0.0.1")) as c:
        yield c


@pytest.fixture
async def admin(client: Client, home: Path) -> OperatorSession:
    return await OperatorSession.login(client, operator_token(home, "admin"))


def node_record(home: Path) -> tuple[list[str], str | None, str, str]:
    hub = Hub.open(home)
    try:
        (record,) = [n for n in hub.access.nodes() if n.id == NODE]
        return record.lists, record.suspended, record.keyid, record.platform
    finally:
        hub.close()


def logged(home: Path) -> list[str]:
    hub = Hub.open(home)
    try:
        return [a.action for a in reversed(hub.reports.actions(100))]
    finally:
        hub.close()


async def nodes_page(session: OperatorSession) -> str:
    page = await session.client.get("/dashboard/nodes")
    assert page.status == 200
    return await page.text()


async def test_an_admin_grants_takes_away_suspends_and_resumes_from_the_nodes_section(
    admin: OperatorSession, home: Path
) -> None:
    page = await nodes_page(admin)
    assert f'action="/dashboard/nodes/{NODE}/grant"' in page
    assert f'<option value="{PDQ_LIST}">' in page  # grantable: not granted yet

    answer = await admin.post(f"/dashboard/nodes/{NODE}/grant", list=PDQ_LIST)
    assert answer.status == 303, await answer.text()
    assert answer.headers["Location"] == f"/dashboard/nodes?notice=granted#node-{NODE}"
    assert node_record(home)[0] == [MD5_LIST, PDQ_LIST]
    shown = await (await admin.client.get(answer.headers["Location"])).text()
    assert "Granted: the node may read the list from its next request." in shown
    assert f"granted {MD5_LIST}, {PDQ_LIST}" in shown

    answer = await admin.post(f"/dashboard/nodes/{NODE}/ungrant", list=MD5_LIST)
    assert answer.status == 303
    assert node_record(home)[0] == [PDQ_LIST]

    answer = await admin.post(f"/dashboard/nodes/{NODE}/suspend", reason="abuse report 7")
    assert answer.status == 303
    assert node_record(home)[1] is not None
    page = await nodes_page(admin)
    assert re.search(r'<span class="badge stale">suspended</span> since', page)
    assert f'action="/dashboard/nodes/{NODE}/resume"' in page
    assert f'action="/dashboard/nodes/{NODE}/suspend"' not in page

    answer = await admin.post(f"/dashboard/nodes/{NODE}/resume")
    assert answer.status == 303
    assert node_record(home)[1] is None
    assert logged(home)[-4:] == ["node.grant", "node.ungrant", "node.suspend", "node.resume"]


async def test_a_new_token_is_shown_once_and_the_old_one_stops_working(
    admin: OperatorSession, home: Path
) -> None:
    hub = Hub.open(home)
    try:
        old = hub.access.reissue_token(NODE)
    finally:
        hub.close()
    answer = await admin.post(f"/dashboard/nodes/{NODE}/token")
    assert answer.status == 200
    assert answer.headers["Cache-Control"] == "no-store"
    page = await answer.text()
    found = re.search(r'<code class="token" id="token">(hhn_[A-Za-z0-9_-]+)</code>', page)
    assert found is not None, page
    hub = Hub.open(home)
    try:
        assert hub.access.authenticate(found.group(1)).subject == NODE
        with pytest.raises(Exception, match="unknown or revoked token"):
            hub.access.authenticate(old)
    finally:
        hub.close()
    assert found.group(1) not in await nodes_page(admin), "shown only on the answer"


async def test_a_new_key_is_recorded_from_a_pasted_pem(admin: OperatorSession, home: Path) -> None:
    key = SigningKey.generate().public
    answer = await admin.post(
        f"/dashboard/nodes/{NODE}/key", public_key=key.to_pem().decode("ascii")
    )
    assert answer.status == 303, await answer.text()
    assert node_record(home)[2] == key.keyid
    assert "node.rekey" in logged(home)


@pytest.mark.parametrize(
    ("path", "fields", "status", "says"),
    [
        (f"/dashboard/nodes/{NODE}/grant", {"list": MD5_LIST}, 409, "already has list tid-md5"),
        (f"/dashboard/nodes/{NODE}/grant", {"list": "../etc"}, 400, "list"),
        (f"/dashboard/nodes/{NODE}/key", {"public_key": "not a key"}, 400, "not an Ed25519"),
        (f"/dashboard/nodes/{NODE}/suspend", {"reason": "a\u0007b"}, 400, "one line"),
        (f"/dashboard/nodes/{NODE}/resume", {}, 409, "is not suspended"),
        (f"/dashboard/nodes/{NODE}/platform", {"platform": "Shop Inc"}, 400, "invalid platform"),
        (f"/dashboard/nodes/{NODE}/platform", {"platform": NODE}, 409, "already of platform"),
        (f"/dashboard/nodes/{NODE}/rename", {}, 404, "no change"),
        ("/dashboard/nodes/platform-z/suspend", {}, 404, "no enrolled node"),
    ],
)
async def test_a_change_that_cannot_be_made_is_an_error_page_and_changes_nothing(
    admin: OperatorSession, home: Path, path: str, fields: dict[str, str], status: int, says: str
) -> None:
    before = node_record(home)
    answer = await admin.post(path, **fields)
    assert answer.status == status, await answer.text()
    assert says in await answer.text()
    assert node_record(home) == before


async def test_only_an_admin_sees_and_may_send_the_forms(client: Client, home: Path) -> None:
    publisher = await OperatorSession.login(client, operator_token(home, "publisher"))
    assert f"/dashboard/nodes/{NODE}/" not in await nodes_page(publisher)
    answer = await publisher.post(f"/dashboard/nodes/{NODE}/suspend")
    assert answer.status == 403
    assert node_record(home)[1] is None
    answer = await publisher.post(f"/dashboard/nodes/{NODE}/suspend", csrf="0" * 43)
    assert answer.status == 403
    assert "security token" in await answer.text()


async def test_an_admin_moves_a_node_to_a_platform_and_the_counts_section_counts_it_there(
    admin: OperatorSession, home: Path
) -> None:
    page = await nodes_page(admin)
    assert f'action="/dashboard/nodes/{NODE}/platform"' in page
    assert f'platform <span class="token node-platform">{NODE}</span>' in page
    hub = Hub.open(home)
    try:
        hub.access.enrol_node("shop-2", SigningKey.generate().public, [MD5_LIST], platform="shop")
    finally:
        hub.close()

    answer = await admin.post(f"/dashboard/nodes/{NODE}/platform", platform="shop")
    assert answer.status == 303, await answer.text()
    assert answer.headers["Location"] == f"/dashboard/nodes?notice=moved#node-{NODE}"
    assert node_record(home)[3] == "shop"
    shown = await (await admin.client.get(answer.headers["Location"])).text()
    assert "Platform changed: the node and its counts count toward that platform" in shown
    assert 'platform <span class="token node-platform">shop</span>' in shown
    assert logged(home)[-1] == "node.platform"

    counts = await (await admin.client.get("/dashboard/counts")).text()
    row = re.search(
        rf'<tr id="platform-{MD5_LIST}-shop" class="stale">(.*?)</tr>', counts, re.DOTALL
    )
    assert row is not None, counts
    # One platform of two nodes, neither has acked the list's version.
    assert '<td class="applied">no (0 of 2 replicas)</td>' in row.group(1)
    assert '<td class="num">2</td>' in row.group(1)
    assert "0 of 1 platforms applied v1" in counts
