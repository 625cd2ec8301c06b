"""Support for the hub page tests: a real hub home, the real app, an operator's login.

- ``init_web_hub(home, **settings)``: a hub (real keys, real SQLite, schedule off)
  with two published lists, ``PDQ_LIST`` and ``MD5_LIST``, each holding one hash
  that matches nothing in the shared test images.
- ``OperatorSession``: logs in through the login form as a browser does (the
  login page's double-submit nonce, then the session cookie) and reads the
  dashboard's CSRF token, so a test can post the dashboard's forms.
- ``form_token(html)``: the ``csrf`` hidden field of a page.
- ``self_signed_tls(directory)``: a TLS context for serving the app over https.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hub.core import Hub
from hub.intake import Intake

TESTDATA = Path(__file__).resolve().parents[2].parent / "shared" / "testdata"
ORIGINAL = TESTDATA / "pdq" / "bridge-mods" / "aaa-orig.jpg"

HUB_NAME = "hub.test"
PDQ_LIST = "tid-pdq"
MD5_LIST = "tid-md5"
PLACEHOLDER_PDQ = hashlib.sha256(b"no picture looks like this").digest()
PLACEHOLDER_MD5 = hashlib.md5(b"no video is this", usedforsecurity=False).digest()

Client = TestClient[web.Request, web.Application]

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_CASE = re.compile(r'id="case-number">([0-9a-f-]+)<')


def init_web_hub(home: Path, **settings: Any) -> None:
    """A hub in ``home`` with ``PDQ_LIST`` and ``MD5_LIST`` published at version 1."""
    hub = Hub.init(
        home,
        HUB_NAME,
        root_keys=1,
        root_threshold=1,
        publish_interval=0,
        timestamp_interval=0,
        **settings,
    )
    try:
        hub.roots.create_list(PDQ_LIST, "pdq", label="Take It Down (pictures)")
        hub.roots.create_list(MD5_LIST, "md5", label="Take It Down (videos)")
        hub.lists.stage(PDQ_LIST, adds=[Intake(PLACEHOLDER_PDQ, quality=100)])
        hub.lists.stage(MD5_LIST, adds=[Intake(PLACEHOLDER_MD5)])
        hub.publishing.publish()
    finally:
        hub.close()


def operator_token(home: Path, role: str, subject: str | None = None) -> str:
    hub = Hub.open(home)
    try:
        return hub.access.create_operator_token(role, subject or f"test-{role}")
    finally:
        hub.close()


def form_token(html: str) -> str:
    """The page's ``csrf`` hidden field (the first one: every form of a page has the same)."""
    found = _CSRF.search(html)
    assert found is not None, "the page has no csrf field"
    return found.group(1)


def case_number(html: str) -> str:
    """The case number a submission's answer page shows (grouped, as shown)."""
    found = _CASE.search(html)
    assert found is not None, "the page shows no case number"
    return found.group(1)


@dataclass
class OperatorSession:
    """A test client logged in to the dashboard, and the session's CSRF token."""

    client: Client
    csrf: str

    @classmethod
    async def login(cls, client: Client, token: str) -> OperatorSession:
        page = await client.get("/login")
        assert page.status == 200
        answer = await client.post(
            "/login",
            data={"token": token, "csrf": form_token(await page.text())},
            allow_redirects=False,
        )
        assert answer.status == 303, await answer.text()
        assert answer.headers["Location"] == "/dashboard"
        dashboard = await client.get("/dashboard")
        assert dashboard.status == 200, await dashboard.text()
        return cls(client, form_token(await dashboard.text()))

    async def post(self, path: str, **fields: str) -> Any:
        """POST a dashboard form (with the session's CSRF token unless ``csrf`` is given)."""
        data = {"csrf": self.csrf, **fields}
        return await self.client.post(path, data=data, allow_redirects=False)


def self_signed_tls(directory: Path) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context
