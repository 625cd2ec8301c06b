"""The production TLS setup of the operator guide, run for real: nginx in front of the hub.

The nginx block is taken from ``docs/operator-guide.md`` (§3, "TLS") and run with
only its ports, certificate paths and monitoring network replaced, so the guide
and this test cannot drift. A throwaway CA signs a certificate for ``localhost``;
the real hub listens on loopback with ``trusted_proxies = "127.0.0.1"`` (nginx's
address as the hub sees it), and a real node syncs through https with that CA
pinned by its ``ca_file`` setting.

Clients connect from other loopback addresses (127.0.0.2, 127.0.0.3) so that the
client, the proxy and the hub each have an address of their own: what the hub
believes about the client is then visible in its access log.
"""

from __future__ import annotations

import asyncio
import datetime
import io
import ipaddress
import json
import logging
import re
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edge.ratelimit import TrustedProxies
from follow import ListOutcome
from hub.api.admin_lists import ADMIN_BODY_BYTES
from hub.app import ACCESS_LOG_FORMAT
from hub.app import create_app as create_hub_app
from hub.config import HubConfig
from hub.limits import LIMITS, ClientAccessLogger
from hub.web.pages import LOGIN_COOKIE, SESSION_COOKIE
from node.api.keys import NODE, SESSION
from node.app import create_app as create_node_app
from node.service import run_sync
from tests.deploy.nginx import _nginx_answers, free_port, launch_nginx
from tests.node.conftest import MD5_LIST, PDQ_LIST, HubServer, init_hub, init_node_home, opened_hub
from tests.web.hub_support import form_token

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "operator-guide.md"
CLIENT = "127.0.0.2"
MONITOR = "127.0.0.3"
START_DEADLINE = 10.0


def documented_block() -> str:
    """The nginx block of the guide's TLS paragraph."""
    guide = GUIDE.read_text(encoding="utf-8")
    tls = guide.index("**TLS.**")
    found = re.search(r"```nginx\n(.*?)```", guide[tls:], re.DOTALL)
    assert found, "the operator guide's TLS paragraph has no nginx block"
    return found.group(1)


def _replace(text: str, pattern: str, replacement: str) -> str:
    text, count = re.subn(pattern, replacement, text)
    assert count == 1, f"the guide's nginx block no longer has one {pattern!r}"
    return text


def size_in_bytes(value: str) -> int:
    units = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
    found = re.fullmatch(r"([0-9]+)([kmg]?)", value.lower())
    assert found, value
    return int(found[1]) * units[found[2]]


@dataclass(frozen=True)
class Certificates:
    ca: Path
    cert: Path
    key: Path


def make_certificates(directory: Path) -> Certificates:
    """A throwaway CA and a server certificate for localhost and 127.0.0.1 signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hashhub test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    found = Certificates(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    found.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    found.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    found.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    found.key.chmod(0o600)
    return found


@dataclass
class Proxy:
    """nginx running the guide's block: ``https_url`` and the plain ``http_url``."""

    https_port: int
    http_port: int
    process: subprocess.Popen[bytes]

    @property
    def https_url(self) -> str:
        return f"https://localhost:{self.https_port}"

    @property
    def http_url(self) -> str:
        return f"http://localhost:{self.http_port}"


def proxy_config(hub_port: int, https_port: int, http_port: int, certs: Certificates) -> str:
    block = documented_block()
    block = _replace(block, r"server 127\.0\.0\.1:8470;", f"server 127.0.0.1:{hub_port};")
    block = _replace(block, r"listen 80;", f"listen 127.0.0.1:{http_port};")
    block = _replace(block, r"listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;")
    block = _replace(block, r"ssl_certificate\s+\S+;", f"ssl_certificate {certs.cert};")
    block = _replace(block, r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {certs.key};")
    return _replace(block, r"allow 10\.0\.0\.0/8;", f"allow {MONITOR};")


def start_proxy(workdir: Path, hub_port: int, certs: Certificates) -> Proxy:
    workdir.mkdir(parents=True, exist_ok=True)
    https_port, http_port = free_port(), free_port()
    # nginx.main_config includes ``mirror.conf``: here that file is the guide's block.
    (workdir / "mirror.conf").write_text(
        proxy_config(hub_port, https_port, http_port, certs), encoding="utf-8"
    )
    process = launch_nginx(workdir)
    return Proxy(https_port, http_port, process)


def stop_proxy(proxy: Proxy) -> None:
    proxy.process.terminate()
    try:
        proxy.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proxy.process.kill()
        proxy.process.wait()


async def wait_for(proxy: Proxy, workdir: Path) -> None:
    deadline = time.monotonic() + START_DEADLINE
    while not await _nginx_answers(proxy.http_port):
        if proxy.process.poll() is not None or time.monotonic() > deadline:
            log = (workdir / "error.log").read_text() if (workdir / "error.log").exists() else ""
            pytest.fail(f"nginx did not start ({proxy.process.returncode}): {log}")
        await asyncio.sleep(0.05)


@dataclass
class World:
    hub: HubServer
    hub_app: web.Application
    proxy: Proxy
    certs: Certificates
    tmp: Path

    def session(self, local: str = CLIENT, *, pinned: bool = True) -> aiohttp.ClientSession:
        tls: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=str(self.certs.ca)) if pinned else True
        )
        connector = aiohttp.TCPConnector(ssl=tls, local_addr=(local, 0))
        return aiohttp.ClientSession(connector=connector)


@pytest.fixture
async def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    home = tmp_path / "hub"
    init_hub(home)
    hub = opened_hub(home)
    try:
        admin = hub.access.create_operator_token("admin", "tests")
    finally:
        hub.close()
    # As the guide says: the hub believes X-Forwarded-For from its proxy, and nobody else.
    monkeypatch.setenv("HASHHUB_TRUSTED_PROXIES", "127.0.0.1")
    app = create_hub_app(home, schedule=False)
    runner = web.AppRunner(
        app, access_log_class=ClientAccessLogger, access_log_format=ACCESS_LOG_FORMAT
    )
    await runner.setup()
    hub_port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", hub_port)
    await site.start()
    certs = make_certificates(tmp_path / "certs")
    proxy = start_proxy(tmp_path / "nginx", hub_port, certs)
    try:
        await wait_for(proxy, tmp_path / "nginx")
        server = HubServer(home, f"http://127.0.0.1:{hub_port}", app, admin)
        yield World(server, app, proxy, certs, tmp_path)
    finally:
        stop_proxy(proxy)
        await runner.cleanup()


async def test_the_guides_proxy_in_front_of_the_hub(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    url = world.proxy.https_url
    async with world.session() as session:
        async with session.get(f"{url}/healthz") as response:
            assert response.status == 200
            assert json.loads(await response.read()) == {"status": "ok"}
            assert response.headers["Strict-Transport-Security"] == "max-age=63072000"
        # Plain HTTP only redirects to https (and carries nothing else).
        async with session.get(
            f"{world.proxy.http_url}/healthz", allow_redirects=False
        ) as response:
            assert response.status == 301
            assert response.headers["Location"] == "https://localhost/healthz"
        # /metrics: only the monitoring network.
        async with session.get(f"{url}/metrics") as response:
            assert response.status == 403
    async with world.session(MONITOR) as monitor, monitor.get(f"{url}/metrics") as response:
        assert response.status == 200
        assert "hashhub_" in await response.text()

    # Without the CA pinned the certificate is refused: TLS is really checked.
    async with world.session(pinned=False) as unpinned:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await unpinned.get(f"{url}/healthz")


async def test_the_hub_believes_the_proxy_about_the_client(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    url = world.proxy.https_url

    def clients() -> list[str]:
        return [
            r.getMessage().split(" ", 1)[0]
            for r in caplog.records
            if "/root/1.json" in r.getMessage()
        ]

    async with world.session() as session:
        # A client's own X-Forwarded-For is replaced by the proxy, not believed.
        forged = {"X-Forwarded-For": "203.0.113.9"}
        async with session.get(f"{url}/root/1.json", headers=forged) as response:
            assert response.status == 200
        assert clients() == [CLIENT]
        # Believed only because the proxy is trusted: without that the client is nginx.
        limits = world.hub_app[LIMITS]
        trusted, limits.proxies = limits.proxies, TrustedProxies()
        try:
            async with session.get(f"{url}/root/1.json") as response:
                assert response.status == 200
        finally:
            limits.proxies = trusted
        assert clients() == [CLIENT, "127.0.0.1"]


async def test_body_caps_match_the_hubs(world: World) -> None:
    block = documented_block()
    server_wide = re.findall(r"(?m)^    client_max_body_size (\w+);", block)
    for_admin = re.findall(r"location /v1/admin/ \{\s*client_max_body_size (\w+);", block)
    assert len(server_wide) == 1, server_wide
    assert len(for_admin) == 1, for_admin
    default, admin = size_in_bytes(server_wide[0]), size_in_bytes(for_admin[0])
    assert default == HubConfig("x").max_ack_bytes
    assert admin == ADMIN_BODY_BYTES
    url = world.proxy.https_url
    async with world.session() as session:
        too_big = io.BytesIO(b"x" * (default + 1))
        async with session.post(f"{url}/v1/acks", data=too_big) as response:
            assert response.status == 413
            error = json.loads(await response.read())["error"]
            assert (error["status"], error["code"]) == (413, "payload_too_large")
        # Within the cap the request reaches the hub, which answers in its own shape.
        async with session.post(f"{url}/v1/acks", data=b"{}") as response:
            assert response.status == 401
            assert json.loads(await response.read())["error"]["code"] == "unauthorized"


async def _sync_through_proxy(home: Path) -> list[ListOutcome]:
    app = create_node_app(home, schedule=False)
    runner = web.AppRunner(app)
    await runner.setup()  # opens the node and its client session, with its ca_file
    try:
        return await run_sync(app[NODE], app[SESSION])
    finally:
        await runner.cleanup()


async def test_a_node_syncs_through_https_with_the_ca_pinned(world: World) -> None:
    home = init_node_home(
        world.tmp / "node", world.hub, hub_url=world.proxy.https_url, ca_file="ca.pem"
    )
    (home / "ca.pem").write_bytes(world.certs.ca.read_bytes())
    outcomes = await _sync_through_proxy(home)
    assert {o.list_id for o in outcomes} == {MD5_LIST, PDQ_LIST}
    assert all(o.status == "updated" and not o.error for o in outcomes), outcomes


async def test_a_node_without_the_ca_refuses_the_proxy(world: World) -> None:
    home = init_node_home(world.tmp / "node", world.hub, hub_url=world.proxy.https_url, enrol=True)
    outcomes = await _sync_through_proxy(home)
    assert outcomes
    assert all(o.status == "failed" and "certificate" in o.error for o in outcomes), outcomes


def _set_cookie(response: aiohttp.ClientResponse, name: str) -> str:
    """The raw ``Set-Cookie`` header that sets ``name``, as the browser receives it."""
    found = [h for h in response.headers.getall("Set-Cookie", []) if h.startswith(f"{name}=")]
    assert len(found) == 1, response.headers.getall("Set-Cookie", [])
    return found[0]


def _attributes(header: str) -> set[str]:
    return {part.strip().split("=", 1)[0].lower() for part in header.split(";")[1:]}


async def test_login_through_the_guides_proxy_sets_a_secure_cookie(world: World) -> None:
    """Over https through the guide's block, the session cookie is Secure.

    The hub speaks plain HTTP to nginx; it knows the browser used https only from
    the ``X-Forwarded-Proto`` the guide's block sets, believed because nginx's
    address is in ``trusted_proxies``.
    """
    url = world.proxy.https_url
    async with world.session() as session:
        async with session.get(f"{url}/login") as page:
            assert page.status == 200
            assert "secure" in _attributes(_set_cookie(page, LOGIN_COOKIE))
            nonce = form_token(await page.text())
        async with session.post(
            f"{url}/login",
            data={"token": world.hub.admin_token, "csrf": nonce},
            allow_redirects=False,
        ) as answer:
            assert answer.status == 303, await answer.text()
            assert answer.headers["Location"] == "/dashboard"
            header = _set_cookie(answer, SESSION_COOKIE)
        assert {"secure", "httponly", "samesite", "path", "max-age"} <= _attributes(header)
        assert "SameSite=Strict" in header
        # The browser sends it back over https, and it opens the dashboard.
        async with session.get(f"{url}/dashboard", allow_redirects=False) as dashboard:
            assert dashboard.status == 200
            assert "Log out" in await dashboard.text()


async def test_the_guides_proxy_logs_no_visit_to_the_public_pages(world: World) -> None:
    """The guide's block keeps the public pages out of nginx's access log."""
    url = world.proxy.https_url
    access_log = world.tmp / "nginx" / "access.log"
    before = len(access_log.read_text(encoding="utf-8").splitlines())  # the start-up probe
    async with world.session() as session:
        for path in ("/", "/submit", "/case", "/static/submit.js", "/static/hashing/pdq.js"):
            async with session.get(f"{url}{path}") as response:
                assert response.status == 200, path
        async with session.post(f"{url}/case", data={"case": "0" * 32}) as response:
            assert response.status == 404
            assert "no case has that number" in await response.text()
        async with session.get(f"{url}/healthz") as response:
            assert response.status == 200
    # nginx writes a request's log line after the response has gone out, so
    # the last one (healthz) may land a moment after the client has read it.
    deadline = asyncio.get_running_loop().time() + 10
    log = access_log.read_text(encoding="utf-8").splitlines()[before:]
    while not any("/healthz" in line for line in log):
        assert asyncio.get_running_loop().time() < deadline, log
        await asyncio.sleep(0.05)
        log = access_log.read_text(encoding="utf-8").splitlines()[before:]
    # method, URI, status and size: the one route that is not a public page.
    assert [line.rsplit(" ", 1)[0] for line in log] == ["GET /healthz 200"], log
