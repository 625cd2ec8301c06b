"""No secret is ever written to a log: a full run of hub and node, every log line scanned.

The run: a hub initialised with its four signing keys and an admin token; a node
initialised (its own key, API token and webhook secret) and enrolled through the
operator API; the node syncs, checks a listed hash through its API, delivers the
webhook to a real receiver and sends its acks; an operator logs in to the
dashboard and a person to the node's status page; someone tries a wrong token on
each login form and on each API. Every logger is captured at DEBUG, the access
logs with aiohttp's default format, which writes more of each request than the
apps' ``ACCESS_LOG_FORMAT`` does (the ``Referer`` and ``User-Agent`` as well).

Then every captured record — message, arguments, traceback — is searched for
every secret of the run: operator and node tokens, the node's API token, the
webhook secret, both session cookies, each CSRF token, and every private key in
each form it could leak in (the PEM body, the raw key in hex and in base64).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import secrets
from collections.abc import Iterable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.app import ACCESS_LOG_FORMAT as HUB_ACCESS_LOG_FORMAT
from hub.app import create_app as create_hub_app
from hub.core import Hub
from hub.intake import Intake
from hub.web.pages import SESSION_COOKIE
from node.api.keys import NODE, SESSION
from node.app import ACCESS_LOG_FORMAT as NODE_ACCESS_LOG_FORMAT
from node.app import create_app as create_node_app
from node.config import read_secret, write_secret
from node.service import Node, deliver_webhooks, flush_acks, run_sync
from node.web.pages import SESSION_COOKIE as NODE_SESSION_COOKIE
from protocol import SigningKey
from tests.node.test_webhooks import WebhookReceiver
from tests.web.hub_support import OperatorSession, form_token

Client = TestClient[web.Request, web.Application]

LIST = "tid-md5"
NODE_ID = "platform-a"


def md5(label: object) -> bytes:
    return hashlib.md5(str(label).encode(), usedforsecurity=False).digest()


def key_forms(pem: bytes) -> set[str]:
    """Every text form in which the private key in ``pem`` could reach a log line."""
    body = b"".join(line for line in pem.splitlines() if not line.startswith(b"-----"))
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, Ed25519PrivateKey)
    raw = key.private_bytes_raw()
    forms = {
        body.decode(),
        raw.hex(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }
    # Each line of the PEM body alone (a log line may hold a wrapped piece of it).
    forms |= {line.decode() for line in pem.splitlines() if not line.startswith(b"-----")}
    return forms


def log_text(records: Iterable[logging.LogRecord]) -> list[str]:
    """Each record as a handler would write it: name, message, arguments, traceback."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    lines = []
    for record in records:
        lines.append(formatter.format(record) + " " + repr(record.args))
    return lines


def scan(lines: Iterable[str], secrets_of_run: dict[str, str]) -> list[str]:
    """``what in: line`` for every secret found in a log line."""
    return [
        f"{what} in: {line}"
        for what, value in secrets_of_run.items()
        for line in lines
        if value in line
    ]


@pytest.mark.parametrize(
    "access_log_format", [HUB_ACCESS_LOG_FORMAT, NODE_ACCESS_LOG_FORMAT], ids=["hub", "node"]
)
def test_the_access_log_format_writes_no_header(access_log_format: str) -> None:
    """``%{Name}i`` writes a request header: none may appear (Authorization, Cookie)."""
    assert "%r" in access_log_format
    assert not re.search(r"%\{[^}]*\}i", access_log_format)


def test_the_scan_finds_a_private_key_logged_in_any_form(tmp_path: Path) -> None:
    pem = SigningKey.generate().to_pem()
    raw = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(raw, Ed25519PrivateKey)
    forms = {f"form {i}": form for i, form in enumerate(sorted(key_forms(pem)))}
    logger = logging.getLogger("hashhub.test")
    records = [
        logger.makeRecord("hashhub.test", logging.DEBUG, __file__, 1, "key %s", (value,), None)
        for value in (
            raw.private_bytes_raw().hex(),
            base64.b64encode(raw.private_bytes_raw()).decode(),
            pem.decode(),
        )
    ]
    found = scan(log_text(records), forms)
    assert {line.split(" in: ")[1] for line in found} == set(log_text(records))


async def test_a_full_run_writes_no_secret_to_any_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets_of_run: dict[str, str] = {}

    # -- the hub: init, a list published, an admin token -------------------------------
    hub_home = tmp_path / "hub"
    hub = Hub.init(
        hub_home,
        "hub.test",
        root_keys=1,
        root_threshold=1,
        publish_interval=0,
        timestamp_interval=0,
    )
    try:
        hub.roots.create_list(LIST, "md5", label="tid")
        hub.lists.stage(LIST, adds=[Intake(md5(i)) for i in range(5)])
        hub.publishing.publish()
        pinned = hub.keys.root_sha256(1)
        admin = hub.access.create_operator_token("admin", "ops-admin")
        viewer = hub.access.create_operator_token("viewer", "ops-viewer")
    finally:
        hub.close()
    secrets_of_run["admin token"] = admin
    secrets_of_run["viewer token"] = viewer
    hub_keys = sorted((hub_home / "keys").glob("*.key"))
    assert len(hub_keys) == 4

    receiver = await WebhookReceiver().start()
    hub_server = TestServer(
        create_hub_app(hub_home, schedule=False),
        host="127.0.0.1",
        port=0,
    )
    async with TestClient(hub_server) as hub_client:
        hub_url = str(hub_server.make_url("")).rstrip("/")

        # -- the node: init, enrolled through the operator API ---------------------------
        node_home = tmp_path / "node"
        Node.init(
            node_home,
            node_id=NODE_ID,
            hub_url=hub_url,
            lists=[LIST],
            pinned_root_sha256=pinned,
            webhook_url=receiver.url,
        ).close()
        enrolled = await hub_client.post(
            "/v1/admin/nodes",
            json={
                "id": NODE_ID,
                "public_key": (node_home / "node.pub.pem").read_text(),
                "lists": [LIST],
            },
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert enrolled.status == 201, await enrolled.text()
        node_token = (await enrolled.json())["token"]
        write_secret(node_home / "hub-token", node_token)
        secrets_of_run["node token"] = node_token
        secrets_of_run["node API token"] = read_secret(node_home / "api-token")
        secrets_of_run["webhook secret"] = read_secret(node_home / "webhook-secret")

        node_server = TestServer(
            create_node_app(node_home, schedule=False),
            host="127.0.0.1",
            port=0,
        )
        async with TestClient(node_server) as node_client:
            node = node_client.app[NODE]
            session = node_client.app[SESSION]
            api = {"Authorization": f"Bearer {secrets_of_run['node API token']}"}

            # -- sync, match, webhook, acks ---------------------------------------------
            outcomes = await run_sync(node, session)
            assert [(o.list_id, o.status) for o in outcomes] == [(LIST, "updated")]
            matched = await node_client.post(
                "/v1/match",
                json={"hashes": [{"type": "md5", "hash": md5(3).hex()}]},
                headers=api,
            )
            assert matched.status == 200, await matched.text()
            assert len((await matched.json())["matches"]) == 1
            # Content the platform hosts, listed by the hub afterwards: a webhook.
            registered = await node_client.post(
                "/v1/content",
                json={
                    "content_id": "post-17",
                    "hashes": [{"type": "md5", "hash": md5("hosted").hex()}],
                },
                headers=api,
            )
            assert registered.status == 201, await registered.text()
            admin_api = {"Authorization": f"Bearer {admin}"}
            staged = await hub_client.post(
                f"/v1/admin/lists/{LIST}/stage",
                json={"adds": [{"hash": md5("hosted").hex()}], "removes": []},
                headers=admin_api,
            )
            assert staged.status == 200, await staged.text()
            published = await hub_client.post(
                "/v1/admin/publish", json={"lists": [LIST]}, headers=admin_api
            )
            assert published.status == 200, await published.text()
            outcomes = await run_sync(node, session)
            assert [(o.list_id, o.status) for o in outcomes] == [(LIST, "updated")]
            async with aiohttp.ClientSession() as http:
                assert await deliver_webhooks(node, http) == (1, 0)
            assert len(receiver.accepted) == 1
            confirmed, failed = await flush_acks(node, session)
            assert confirmed >= 1
            assert failed == 0

            # -- the dashboard: a login, a wrong token -----------------------------------
            operator = await OperatorSession.login(hub_client, admin)
            secrets_of_run["dashboard CSRF token"] = operator.csrf
            cookie = hub_client.session.cookie_jar.filter_cookies(hub_server.make_url("/"))
            secrets_of_run["dashboard session cookie"] = cookie[SESSION_COOKIE].value
            hub_client.session.cookie_jar.clear()
            wrong_operator = "hho_" + secrets.token_urlsafe(32)
            secrets_of_run["wrong operator token"] = wrong_operator
            page = await hub_client.get("/login")
            refused = await hub_client.post(
                "/login",
                data={"token": wrong_operator, "csrf": form_token(await page.text())},
                allow_redirects=False,
            )
            assert refused.status == 401
            for path in ("/v1/admin/status", f"/lists/{LIST}/checkpoint"):
                answer = await hub_client.get(
                    path, headers={"Authorization": f"Bearer {wrong_operator}"}
                )
                assert answer.status == 401, path

            # -- the node's status page: a login, a wrong token --------------------------
            logged_in = await node_client.post(
                "/status/login",
                data={"token": secrets_of_run["node API token"]},
                allow_redirects=False,
            )
            assert logged_in.status == 303, await logged_in.text()
            secrets_of_run["status page session cookie"] = logged_in.cookies[
                NODE_SESSION_COOKIE
            ].value
            status_page = await node_client.get("/status/")
            assert status_page.status == 200
            secrets_of_run["status page CSRF token"] = form_token(await status_page.text())
            node_client.session.cookie_jar.clear()
            wrong_api = "hhl_" + secrets.token_urlsafe(32)
            secrets_of_run["wrong API token"] = wrong_api
            refused = await node_client.post("/status/login", data={"token": wrong_api})
            assert refused.status == 403
            answer = await node_client.get(
                "/v1/status", headers={"Authorization": f"Bearer {wrong_api}"}
            )
            assert answer.status == 401
    await receiver.stop()

    keys = {path.name: path.read_bytes() for path in hub_keys}
    keys["node.key"] = (node_home / "node.key").read_bytes()
    for name, pem in keys.items():
        for i, form in enumerate(sorted(key_forms(pem))):
            secrets_of_run[f"private key {name} (form {i})"] = form

    records = caplog.records
    access = [r for r in records if r.name == "aiohttp.access"]
    # The scan is only worth something if the run was logged: every request above.
    assert len(access) >= 15, [r.getMessage() for r in records]
    assert any("wrong API token" in r.getMessage() for r in records)
    lines = log_text(records)
    leaks = scan(lines, secrets_of_run)
    assert not leaks, "\n".join(leaks)
    # And no log line carries a header that holds credentials, whatever its value.
    assert not [line for line in lines if re.search(r"(?i)authorization|bearer |cookie:", line)]
