"""One JSON error shape for every error the hub answers, in every route group.

Every error is ``{"error": {"status": <int>, "code": <str>, "message": <str>}}``, with
``status`` equal to the HTTP status, served as JSON; a 401 keeps its
``WWW-Authenticate`` header and a 405 its ``Allow`` header; a bug (500) says nothing
of its internals.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path

import pytest

from hub.api.acks import SIGNATURE_HEADER
from protocol import SigningKey, sign_bytes
from tests.hub.conftest import LIST, OTHER_LIST, Client, bearer, md5

ERROR_CODE = re.compile(r"[a-z][a-z0-9_]*")


def assert_shape(status: int, content_type: str, raw: bytes, expected: int) -> dict[str, object]:
    assert status == expected, raw
    assert content_type == "application/json"
    body = json.loads(raw)
    assert list(body) == ["error"]
    error = body["error"]
    assert sorted(error) == ["code", "message", "status"]
    assert error["status"] == status
    assert isinstance(error["code"], str)
    assert ERROR_CODE.fullmatch(error["code"])
    assert isinstance(error["message"], str)
    assert error["message"]
    return dict(error)


async def test_every_error_of_every_route_group_has_the_one_shape(
    client: Client, admin_token: str, node_token: str, role_tokens: dict[str, str]
) -> None:
    admin, node, viewer = bearer(admin_token), bearer(node_token), bearer(role_tokens["viewer"])
    ack_headers = {**node, "Content-Type": "application/json"}
    json_type = {"Content-Type": "application/json"}
    stranger_sig = sign_bytes(b"{}", [SigningKey.generate()]).to_bytes()
    samples: list[tuple[str, str, dict[str, str], bytes | None, int]] = [
        # the published tree
        ("GET", "/nowhere", {}, None, 404),
        ("GET", "/lists/TID/checkpoint", {}, None, 400),
        ("GET", "/root/0.json", {}, None, 400),
        ("GET", f"/lists/{LIST}/checkpoint", {}, None, 401),
        ("GET", f"/lists/{OTHER_LIST}/checkpoint", node, None, 403),
        ("GET", "/root/77.json", {}, None, 404),
        ("POST", "/root/1.json", {}, b"", 405),
        # acks
        ("POST", "/v1/acks", {}, b"{}", 401),
        ("POST", "/v1/acks", {**admin, **json_type}, b"{}", 403),
        ("POST", "/v1/acks", ack_headers, b"{}", 400),
        ("POST", "/v1/acks", {**node, "Content-Type": "text/plain"}, b"{}", 415),
        ("POST", "/v1/acks", ack_headers, b"{" + b" " * (1 << 20) + b"}", 413),
        (
            "POST",
            "/v1/acks",
            {**ack_headers, SIGNATURE_HEADER: base64.b64encode(stranger_sig).decode()},
            b"{}",
            422,
        ),
        ("GET", "/v1/acks", node, None, 405),
        # the operator API
        ("GET", "/v1/admin/status", {}, None, 401),
        ("GET", "/v1/admin/status", bearer("hho_unknown"), None, 401),
        ("POST", "/v1/admin/publish", viewer, None, 403),
        ("POST", "/v1/admin/lists", {**admin, **json_type}, b"[1]", 400),
        (
            "POST",
            "/v1/admin/lists",
            {**admin, **json_type},
            b'{"id":"tid-md5","hash_type":"md5"}',
            409,
        ),
        ("POST", "/v1/admin/lists", {**admin, "Content-Type": "text/plain"}, b"{}", 415),
        ("GET", "/v1/admin/lists/no-such/counts", admin, None, 404),
        ("POST", f"/v1/admin/lists/{LIST}/import", admin, b"zz\n", 400),
        ("DELETE", "/v1/admin/nodes/nobody", admin, None, 404),
        ("PUT", "/v1/admin/status", admin, b"", 405),
        # service routes
        ("POST", "/healthz", {}, b"", 405),
        ("GET", "/metrics/", {}, None, 404),
    ]
    seen = set()
    for method, path, headers, body, expected in samples:
        data = io.BytesIO(body) if body is not None else None
        response = await client.request(method, path, headers=headers, data=data)
        error = assert_shape(
            response.status, response.content_type, await response.read(), expected
        )
        seen.add(error["code"])
        if expected == 401:
            assert response.headers["WWW-Authenticate"].startswith("Bearer realm=")
        if expected == 405:
            assert response.headers["Allow"]
    assert {
        "invalid_request",
        "invalid_import",
        "unauthorized",
        "forbidden",
        "not_found",
        "conflict",
        "payload_too_large",
        "unprocessable",
        "unsupported_media_type",
        "method_not_allowed",
    } <= seen


async def test_a_bug_is_a_500_in_the_shape_without_internals(
    client: Client, hub_home: Path, admin_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A hub whose delta key file went missing cannot sign: Publishing.publish fails in a way
    # no request can cause, and the answer must not say how.
    delta_key = next((hub_home / "keys").glob("delta-*.key"))
    shutil.move(delta_key, hub_home / "away.key")
    staged = await client.post(
        f"/v1/admin/lists/{LIST}/stage",
        json={"adds": [{"hash": md5("bug").hex()}]},
        headers=bearer(admin_token),
    )
    assert staged.status == 200
    response = await client.post("/v1/admin/publish", headers=bearer(admin_token))
    raw = await response.read()
    error = assert_shape(response.status, response.content_type, raw, 500)
    assert error["code"] == "internal"
    for leak in (b"Traceback", b"delta", b"key", str(hub_home).encode()):
        assert leak not in raw
    assert any(r.exc_info for r in caplog.records if r.name == "hashhub.http")
