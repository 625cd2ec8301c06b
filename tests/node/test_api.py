"""The node's match API (node/app.py) against a node synced from the real hub.

Each hardening rule has its own test: the request is refused with the status and
the one error shape, and nothing is stored (no match event, no counter, no
registered content).
"""

from __future__ import annotations

import importlib.resources
import io
import re
import sqlite3
import uuid
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image

from node.api.keys import NODE, SESSION
from node.app import create_app
from node.config import read_secret
from node.service import run_sync
from node.web import PAGE_PREFIX
from tests.node.conftest import (
    BRIDGE_MODS,
    DIHEDRAL,
    MD5_LIST,
    ORIGINAL,
    PDQ_LIST,
    HubServer,
    init_node_home,
    md5,
    original_pdq,
)

Client = TestClient[web.Request, web.Application]
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def bearer(home: Path) -> dict[str, str]:
    return {"Authorization": f"Bearer {read_secret(home / 'api-token')}"}


def stored(home: Path) -> dict[str, Any]:
    """What the node has stored about requests: events, counters, registered content."""
    conn = sqlite3.connect(home / "node.db")
    try:
        return {
            "match_events": conn.execute("SELECT count(*) FROM match_events").fetchone()[0],
            "counters": conn.execute("SELECT * FROM counters ORDER BY 1, 2, 3").fetchall(),
            "content": conn.execute("SELECT count(*) FROM content").fetchone()[0],
        }
    finally:
        conn.close()


async def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, await response.text()
    body = await response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"status", "code", "message"}
    assert body["error"]["status"] == status
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return dict(body["error"])


def png_declaring(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width`` × ``height`` pixels (CRC fixed up)."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    data[16:20] = width.to_bytes(4, "big")
    data[20:24] = height.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    return bytes(data)


@pytest.fixture
async def api(node_home: Path, hub_server: HubServer) -> AsyncIterator[Client]:
    """The node's API on loopback, the node synced once from the real hub."""
    app = create_app(node_home, schedule=False)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        outcomes = await run_sync(app[NODE], app[SESSION])
        assert [o.status for o in outcomes] == ["updated", "updated"], outcomes
        yield client


@pytest.fixture
def headers(node_home: Path) -> dict[str, str]:
    return bearer(node_home)


# -- matching ------------------------------------------------------------------------------


async def test_an_image_upload_matches_the_listed_original(
    api: Client, headers: dict[str, str]
) -> None:
    response = await api.post(
        "/v1/match",
        data=(BRIDGE_MODS / "blur-a-lot.jpg").read_bytes(),
        headers=headers | {"Content-Type": "image/jpeg"},
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    [found] = body["matches"]
    assert found["list"] == PDQ_LIST
    assert found["hash_type"] == "pdq"
    assert found["hash"] == original_pdq().hex()
    assert 0 <= found["distance"] <= 31
    assert found["version"] == 1
    uuid.UUID(found["match_id"])
    assert set(body["hashes"]) == {"md5", "sha256", "pdq", "phash"}
    assert body["hashes"]["pdq"] == [found["query"]]


async def test_json_hashes_match_exact_and_perceptual_lists(
    api: Client, headers: dict[str, str]
) -> None:
    query = {
        "hashes": [
            {"type": "md5", "hash": md5(3).hex().upper()},
            {"type": "md5", "hash": md5("not listed").hex()},
            {"type": "pdq", "hash": original_pdq().hex()},
        ]
    }
    response = await api.post("/v1/match", json=query, headers=headers)
    assert response.status == 200, await response.text()
    body = await response.json()
    found = {(m["list"], m["hash"], m["distance"]) for m in body["matches"]}
    assert found == {(MD5_LIST, md5(3).hex(), 0), (PDQ_LIST, original_pdq().hex(), 0)}
    assert body["hashes"]["md5"] == [md5(3).hex(), md5("not listed").hex()]


async def test_a_video_or_binary_body_is_matched_by_its_md5(
    api: Client, headers: dict[str, str]
) -> None:
    for content_type in ("video/mp4", "application/octet-stream"):
        response = await api.post(
            "/v1/match", data=b"3", headers=headers | {"Content-Type": content_type}
        )
        assert response.status == 200, await response.text()
        body = await response.json()
        assert [(m["list"], m["hash"]) for m in body["matches"]] == [(MD5_LIST, md5(3).hex())]
        assert set(body["hashes"]) == {"md5", "sha256"}


async def test_a_rotated_copy_matches_only_with_a_dihedral_query(
    api: Client, headers: dict[str, str]
) -> None:
    rotated = (DIHEDRAL / "bridge-4-rotate-270.jpg").read_bytes()
    image = headers | {"Content-Type": "image/jpeg"}
    plain = await (await api.post("/v1/match", data=rotated, headers=image)).json()
    assert plain["matches"] == []
    turned = await api.post("/v1/match?dihedral=1", data=rotated, headers=image)
    body = await turned.json()
    assert [m["list"] for m in body["matches"]] == [PDQ_LIST]
    assert len(body["hashes"]["pdq"]) == 8


async def test_every_query_is_counted_as_checked(
    api: Client, headers: dict[str, str], node_home: Path
) -> None:
    await api.post("/v1/match", json={"hashes": [{"type": "md5", "hash": md5(9).hex()}]},
                   headers=headers)  # fmt: skip
    status = await (await api.get("/v1/status", headers=headers)).json()
    counts = {entry["list"]: entry["counts"] for entry in status["lists"]}
    assert counts[MD5_LIST]["checked"] == 1
    assert counts[MD5_LIST]["matched"] == 0
    assert counts[PDQ_LIST]["checked"] == 0


# -- outcomes ------------------------------------------------------------------------------


async def match_id_of_md5(api: Client, headers: dict[str, str], label: object) -> str:
    response = await api.post(
        "/v1/match", json={"hashes": [{"type": "md5", "hash": md5(label).hex()}]}, headers=headers
    )
    [found] = (await response.json())["matches"]
    return str(found["match_id"])


async def test_an_outcome_is_recorded_once_and_counted(
    api: Client, headers: dict[str, str]
) -> None:
    match_id = await match_id_of_md5(api, headers, 1)
    url = f"/v1/matches/{match_id}/outcome"
    first = await api.post(url, json={"outcome": "actioned"}, headers=headers)
    assert await first.json() == {"match_id": match_id, "outcome": "actioned", "duplicate": False}
    again = await api.post(url, json={"outcome": "actioned"}, headers=headers)
    assert (await again.json())["duplicate"] is True
    other = await api.post(url, json={"outcome": "false_positive"}, headers=headers)
    await assert_error(other, 409, "conflict")
    status = await (await api.get("/v1/status", headers=headers)).json()
    [md5_status] = [entry for entry in status["lists"] if entry["list"] == MD5_LIST]
    assert md5_status["counts"]["actioned"] == 1
    assert md5_status["counts"]["false_positive"] == 0


async def test_open_matches_are_listed_until_they_have_an_outcome(
    api: Client, headers: dict[str, str]
) -> None:
    first = await match_id_of_md5(api, headers, 1)
    second = await match_id_of_md5(api, headers, 2)
    await api.post(f"/v1/matches/{first}/outcome", json={"outcome": "kept"}, headers=headers)
    open_ = await (await api.get("/v1/matches?open=1", headers=headers)).json()
    assert [m["match_id"] for m in open_["matches"]] == [second]
    every = await (await api.get("/v1/matches", headers=headers)).json()
    assert {m["match_id"] for m in every["matches"]} == {first, second}


async def test_an_unknown_outcome_is_refused(api: Client, headers: dict[str, str]) -> None:
    match_id = await match_id_of_md5(api, headers, 1)
    response = await api.post(
        f"/v1/matches/{match_id}/outcome", json={"outcome": "deleted"}, headers=headers
    )
    await assert_error(response, 400, "invalid_request")


# -- content registry ----------------------------------------------------------------------


async def test_registered_content_is_answered_with_its_current_matches(
    api: Client, headers: dict[str, str], node_home: Path
) -> None:
    response = await api.post(
        "/v1/content",
        json={"content_id": "post/1", "hashes": [{"type": "md5", "hash": md5(4).hex()}]},
        headers=headers,
    )
    assert response.status == 201, await response.text()
    body = await response.json()
    assert body["content_id"] == "post/1"
    assert body["registered"] == 1
    assert [(m["list"], m["hash"]) for m in body["matches"]] == [(MD5_LIST, md5(4).hex())]
    events = await (await api.get("/v1/matches", headers=headers)).json()
    assert [(m["source"], m["content_id"]) for m in events["matches"]] == [("registry", "post/1")]


async def test_an_image_is_registered_by_its_hashes(
    api: Client, headers: dict[str, str], node_home: Path
) -> None:
    response = await api.post(
        "/v1/content?content_id=photo-7",
        data=ORIGINAL.read_bytes(),
        headers=headers | {"Content-Type": "image/jpeg"},
    )
    assert response.status == 201, await response.text()
    body = await response.json()
    assert body["registered"] == 4  # pdq, phash, md5, sha256
    assert [m["list"] for m in body["matches"]] == [PDQ_LIST]
    assert stored(node_home)["content"] == 4


async def test_content_without_an_id_is_refused(
    api: Client, headers: dict[str, str], node_home: Path
) -> None:
    before = stored(node_home)
    response = await api.post(
        "/v1/content", data=ORIGINAL.read_bytes(), headers=headers | {"Content-Type": "image/jpeg"}
    )
    await assert_error(response, 400, "invalid_request")
    assert stored(node_home) == before


# -- service routes ------------------------------------------------------------------------


async def test_status_shows_applied_versions_and_freshness(
    api: Client, headers: dict[str, str]
) -> None:
    status = await (await api.get("/v1/status", headers=headers)).json()
    assert {entry["list"]: entry["version"] for entry in status["lists"]} == {
        MD5_LIST: 1,
        PDQ_LIST: 1,
    }
    assert status["stale"] is False
    assert status["schedule"] is None  # this app runs without a schedule


async def test_healthz_needs_no_token(api: Client) -> None:
    response = await api.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_metrics_show_list_versions_and_matches(api: Client, headers: dict[str, str]) -> None:
    await match_id_of_md5(api, headers, 1)
    response = await api.get("/metrics", headers=headers)
    assert response.status == 200
    text = await response.text()
    assert f'hashhub_node_list_version{{list="{MD5_LIST}"}} 1.0' in text
    assert f'hashhub_node_list_hashes{{list="{MD5_LIST}"}} 5.0' in text
    assert f'hashhub_node_matches_total{{list="{MD5_LIST}",source="upload"}} 1.0' in text
    assert "hashhub_node_stale 0.0" in text
    assert "hashhub_node_acks_pending 2.0" in text  # one per list applied, not yet sent


async def test_two_apps_in_one_process_keep_their_own_metrics(
    node_home: Path, tmp_path: Path, hub_server: HubServer
) -> None:
    other = init_node_home(tmp_path / "other", hub_server, node_id="platform-b", enrol=False)
    first, second = create_app(node_home, schedule=False), create_app(other, schedule=False)
    async with (
        TestClient(TestServer(first, host="127.0.0.1")) as a,
        TestClient(TestServer(second, host="127.0.0.1")) as b,
    ):
        headers_a, headers_b = bearer(node_home), bearer(other)
        outcomes = await run_sync(first[NODE], first[SESSION])
        assert [o.status for o in outcomes] == ["updated", "updated"], outcomes
        await match_id_of_md5(a, headers_a, 1)
        answer_a = await a.get("/metrics", headers=headers_a)
        answer_b = await b.get("/metrics", headers=headers_b)
        assert (answer_a.status, answer_b.status) == (200, 200)
        body_a, body_b = await answer_a.text(), await answer_b.text()
        matched = f'hashhub_node_matches_total{{list="{MD5_LIST}",source="upload"}} 1.0'
        version = f'hashhub_node_list_version{{list="{MD5_LIST}"}} 1.0'
        assert matched in body_a, body_a
        assert version in body_a, body_a
        # The second app neither synced nor matched: the first one's counters and
        # gauges do not show in its body (one shared registry would show them there).
        assert "hashhub_node_matches_total{" not in body_b, body_b
        assert 'route="/v1/match"' not in body_b, body_b
        assert f'hashhub_node_list_version{{list="{MD5_LIST}"}} 0.0' in body_b, body_b
        assert "hashhub_node_acks_pending 0.0" in body_b, body_b


# -- the OpenAPI document ------------------------------------------------------------------


def document() -> dict[str, Any]:
    text = importlib.resources.files("node").joinpath("openapi.yaml").read_text("utf-8")
    loaded = yaml.safe_load(text)
    assert isinstance(loaded, dict)
    return loaded


def test_every_route_is_documented_and_every_documented_route_is_served(
    node_home: Path,
) -> None:
    app = create_app(node_home, schedule=False)
    served = {
        (route.resource.canonical, route.method)
        for route in app.router.routes()
        if route.resource is not None
    }
    pages = {(path, method) for path, method in served if path.startswith(PAGE_PREFIX + "/")}
    assert ("/status/", "GET") in pages, "the status page is served"
    served -= pages  # HTML pages for people (node.web), not part of the JSON API
    doc = document()
    documented = {
        (path, method.upper())
        for path, item in doc["paths"].items()
        for method in item
        if method in METHODS
    }
    assert doc["openapi"].startswith("3.1.")
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"


def test_every_operation_has_a_summary_answers_and_resolvable_refs() -> None:
    doc = document()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                target: Any = doc
                for part in node["$ref"].removeprefix("#/").split("/"):
                    target = target[part]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    parameters = doc["components"]["parameters"]

    def path_names(entries: list[dict[str, Any]]) -> set[str]:
        resolved = [parameters[e["$ref"].rsplit("/", 1)[1]] if "$ref" in e else e for e in entries]
        return {e["name"] for e in resolved if e["in"] == "path"}

    for path, item in doc["paths"].items():
        for method in METHODS & set(item):
            operation = item[method]
            assert operation.get("summary"), (path, method)
            assert operation.get("responses"), (path, method)
            declared = path_names(item.get("parameters", []) + operation.get("parameters", []))
            assert declared == set(re.findall(r"\{(\w+)\}", path)), (path, method)


async def test_the_document_is_served_as_written(api: Client, headers: dict[str, str]) -> None:
    response = await api.get("/openapi.yaml", headers=headers)
    assert response.status == 200
    assert response.content_type == "application/yaml"
    assert (
        await response.read()
        == importlib.resources.files("node").joinpath("openapi.yaml").read_bytes()
    )


# -- hardening: one test per rule ------------------------------------------------------------


@pytest.fixture
async def small_api(tmp_path: Path, hub_server: HubServer) -> AsyncIterator[tuple[Client, Path]]:
    """A node whose uploads are capped at 64 KiB."""
    home = init_node_home(
        tmp_path / "small", hub_server, node_id="platform-small", max_upload_bytes=64 * 1024
    )
    app = create_app(home, schedule=False)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        yield client, home


async def test_an_upload_over_the_cap_is_413(small_api: tuple[Client, Path]) -> None:
    client, home = small_api
    before = stored(home)
    response = await client.post(
        "/v1/match",
        data=ORIGINAL.read_bytes()[: 64 * 1024] + b"\0" * 1024,
        headers=bearer(home) | {"Content-Type": "image/jpeg"},
    )
    await assert_error(response, 413, "payload_too_large")
    assert stored(home) == before


async def test_a_chunked_upload_over_the_cap_is_413_without_a_length(
    small_api: tuple[Client, Path],
) -> None:
    client, home = small_api
    before = stored(home)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"\xff" * 16 * 1024

    response = await client.post(
        "/v1/match", data=chunks(), headers=bearer(home) | {"Content-Type": "image/jpeg"}
    )
    await assert_error(response, 413, "payload_too_large")
    assert stored(home) == before


@pytest.mark.parametrize("content_type", ["text/plain", "image/svg+xml", "multipart/form-data"])
async def test_an_unsupported_content_type_is_415(
    api: Client, headers: dict[str, str], node_home: Path, content_type: str
) -> None:
    before = stored(node_home)
    response = await api.post(
        "/v1/match", data=b"<svg/>", headers=headers | {"Content-Type": content_type}
    )
    await assert_error(response, 415, "unsupported_media_type")
    assert stored(node_home) == before


async def test_bytes_that_are_no_picture_under_an_image_type_are_415(
    api: Client, headers: dict[str, str], node_home: Path
) -> None:
    before = stored(node_home)
    response = await api.post(
        "/v1/match", data=b"%PDF-1.7 not a picture", headers=headers | {"Content-Type": "image/png"}
    )
    await assert_error(response, 415, "unsupported_media_type")
    assert stored(node_home) == before


@pytest.mark.parametrize("side", [9_000, 20_000])  # our pixel limit; Pillow's own guard
async def test_a_decompression_bomb_is_400(
    api: Client, headers: dict[str, str], node_home: Path, side: int
) -> None:
    before = stored(node_home)
    response = await api.post(
        "/v1/match", data=png_declaring(side, side), headers=headers | {"Content-Type": "image/png"}
    )
    await assert_error(response, 400, "decompression_bomb")
    assert stored(node_home) == before


async def test_a_truncated_image_is_400(
    api: Client, headers: dict[str, str], node_home: Path
) -> None:
    before = stored(node_home)
    data = ORIGINAL.read_bytes()
    response = await api.post(
        "/v1/match", data=data[: len(data) // 3], headers=headers | {"Content-Type": "image/jpeg"}
    )
    await assert_error(response, 400, "corrupt_image")
    assert stored(node_home) == before


async def test_an_empty_upload_is_400(
    api: Client, headers: dict[str, str], node_home: Path
) -> None:
    before = stored(node_home)
    response = await api.post(
        "/v1/match", data=b"", headers=headers | {"Content-Type": "image/png"}
    )
    await assert_error(response, 400, "invalid_request")
    assert stored(node_home) == before


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'["a list"]', b"\xff\xfe", b'{"hashes": [], "extra": 1}', b"[" * 100_000],
)
async def test_malformed_json_is_400(
    api: Client, headers: dict[str, str], node_home: Path, body: bytes
) -> None:
    before = stored(node_home)
    response = await api.post(
        "/v1/match", data=body, headers=headers | {"Content-Type": "application/json"}
    )
    await assert_error(response, 400, "invalid_request")
    assert stored(node_home) == before


@pytest.mark.parametrize(
    "item",
    [
        {"type": "pdq", "hash": "ab" * 31},  # 62 hex digits: a byte short
        {"type": "md5", "hash": "ab" * 32},  # sha256's width under md5
        {"type": "md5", "hash": "zz" * 16},  # not hex
        {"type": "crc32", "hash": "abcd1234"},  # unknown type
        {"type": "md5", "hash": 12345},  # not a string
        {"type": "md5"},  # no hash
        {"type": "md5", "hash": "ab" * 16, "list": "x"},  # unknown field
    ],
)
async def test_a_hash_of_the_wrong_width_or_type_is_400(
    api: Client, headers: dict[str, str], node_home: Path, item: dict[str, Any]
) -> None:
    before = stored(node_home)
    valid = {"type": "md5", "hash": md5(1).hex()}
    response = await api.post("/v1/match", json={"hashes": [valid, item]}, headers=headers)
    await assert_error(response, 400, "invalid_request")
    assert stored(node_home) == before


async def test_too_many_hashes_in_one_request_is_400(
    api: Client, headers: dict[str, str], node_home: Path
) -> None:
    before = stored(node_home)
    many = [{"type": "md5", "hash": md5(i).hex()} for i in range(257)]
    response = await api.post("/v1/match", json={"hashes": many}, headers=headers)
    await assert_error(response, 400, "invalid_request")
    assert stored(node_home) == before


@pytest.mark.parametrize("match_id", [str(uuid.uuid4()), "not-a-uuid", "..%2f..%2fstatus"])
async def test_an_unknown_match_id_is_404(
    api: Client, headers: dict[str, str], node_home: Path, match_id: str
) -> None:
    before = stored(node_home)
    response = await api.post(
        f"/v1/matches/{match_id}/outcome", json={"outcome": "actioned"}, headers=headers
    )
    await assert_error(response, 404, "not_found")
    assert stored(node_home) == before


@pytest.mark.parametrize(
    ("authorization", "error_param"),
    [
        (None, False),
        ("Bearer hhl_wrong", True),
        ("Basic dXNlcjpwYXNz", True),
        ("Bearer ", True),
    ],
)
async def test_a_missing_or_wrong_token_is_401_with_www_authenticate(
    api: Client, node_home: Path, authorization: str | None, error_param: bool
) -> None:
    before = stored(node_home)
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, path in [
        ("POST", "/v1/match"),
        ("GET", "/v1/status"),
        ("GET", "/metrics"),
        ("GET", "/openapi.yaml"),
        ("GET", "/no/such/route"),
    ]:
        response = await api.request(
            method, path, json={"hashes": [{"type": "md5", "hash": md5(1).hex()}]}, headers=headers
        )
        await assert_error(response, 401, "unauthorized")
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.startswith('Bearer realm="hashhub-node"')
        assert ('error="invalid_token"' in challenge) is error_param
    assert stored(node_home) == before


async def test_a_wrong_method_keeps_the_allow_header(api: Client, headers: dict[str, str]) -> None:
    response = await api.get("/v1/match", headers=headers)
    await assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "POST"


async def test_an_unknown_route_is_404_in_the_error_shape(
    api: Client, headers: dict[str, str]
) -> None:
    await assert_error(await api.get("/v1/nothing", headers=headers), 404, "not_found")
