"""The hub's HTTP service, on loopback, against a real hub home (real keys, real SQLite)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hub.api.acks import SIGNATURE_HEADER
from hub.api.admin import ADMIN_ROUTES, AdminRoute
from hub.api.admin_lists import ADMIN_BODY_BYTES
from hub.caches import MEMORY_TTL, AccessCache, PublishedCache, _Published, _Verdict
from hub.core import OPERATOR_ROLES
from hub.intake import Intake
from protocol import Counts, SigningKey, checkpoint_path, sign_bytes
from tests.hub.conftest import (
    LIST,
    NODE_ID,
    OTHER_LIST,
    PUBLIC_LIST,
    Client,
    Follower,
    ack_headers,
    bearer,
    count_rows,
    md5,
    need,
    opened,
    pinned,
    raw_request,
)

IMMUTABLE = "max-age=31536000, immutable"


def assert_error(status: int, body: Any, expected: int) -> None:
    assert status == expected, body
    assert set(body) == {"error"}
    assert set(body["error"]) == {"status", "code", "message"}
    assert body["error"]["status"] == expected


async def json_of(response: Any) -> Any:
    return json.loads(await response.read())


def published_bytes(home: Path, path: str) -> bytes:
    """The exact bytes the hub stored, and signed, at ``path`` (``PublishedFiles.get``)."""
    with opened(home) as hub:
        found = hub.files.get(path)
    assert found is not None, path
    return found[0]


# -- everything published verifies over HTTP -------------------------------------------------------


async def test_everything_published_verifies_with_the_trust_rules(
    client: Client, hub_home: Path, node_token: str
) -> None:
    follower = Follower(client, pinned(hub_home), node_token)
    state = await follower.update(LIST)
    with opened(hub_home) as hub:
        assert state.digest() == hub.lists.state(LIST).digest()
        assert follower.lists[LIST][1].version == hub.lists.row(LIST)["version"] == 2


async def test_a_new_node_bootstraps_from_the_snapshot_over_http(
    client: Client, hub_home: Path, admin_token: str
) -> None:
    incremental = await Follower(client, pinned(hub_home), admin_token).update(LIST)
    bootstrapped = Follower(client, pinned(hub_home), admin_token)
    state = await bootstrapped.update(LIST, from_snapshot=True)
    assert state.digest() == incremental.digest()
    assert not any("/body/" in p for p in bootstrapped.fetched)  # v2 snapshot needs no body


async def test_a_public_list_verifies_without_a_token(client: Client, hub_home: Path) -> None:
    state = await Follower(client, pinned(hub_home)).update(PUBLIC_LIST)
    assert len(state) == 3


async def test_root_files_are_public_even_with_a_bad_token(client: Client, hub_home: Path) -> None:
    for path in ("root/1.json", "root/1.json.sig"):
        response = await client.get(f"/{path}", headers=bearer("hho_not-a-token"))
        assert response.status == 200
        assert await response.read() == published_bytes(hub_home, path)


async def test_an_update_after_a_publish_through_the_api_verifies(
    client: Client, hub_home: Path, role_tokens: dict[str, str]
) -> None:
    follower = Follower(client, pinned(hub_home), role_tokens["viewer"])
    await follower.update(LIST)
    publisher = bearer(role_tokens["publisher"])
    staged = await client.post(
        f"/v1/admin/lists/{LIST}/stage",
        json={"adds": [{"hash": md5("new").hex(), "source": "api"}], "removes": [md5(1).hex()]},
        headers=publisher,
    )
    assert staged.status == 200, await staged.text()
    assert (await staged.json())["staged"] == 2
    published = await client.post("/v1/admin/publish", json={"lists": [LIST]}, headers=publisher)
    assert published.status == 200
    [result] = (await published.json())["published"]
    assert (result["version"], result["adds"], result["removes"]) == (3, 1, 1)
    state = await follower.update(LIST)
    assert md5("new") in state
    assert md5(1) not in state


# -- caching ---------------------------------------------------------------------------------------


async def test_immutable_files_are_cached_for_a_year(client: Client, node_token: str) -> None:
    for path in ("/root/1.json", "/root/1.json.sig"):
        response = await client.get(path)
        assert response.headers["Cache-Control"] == f"public, {IMMUTABLE}"
    for path in (f"/lists/{PUBLIC_LIST}/delta/1.json", f"/lists/{PUBLIC_LIST}/delta/1.json.sig"):
        response = await client.get(path)
        assert response.headers["Cache-Control"] == f"public, {IMMUTABLE}"


async def test_the_checkpoint_is_cached_for_seconds(client: Client, hub_home: Path) -> None:
    response = await client.get(f"/lists/{PUBLIC_LIST}/checkpoint")
    assert response.status == 200
    assert await response.read() == published_bytes(hub_home, checkpoint_path(PUBLIC_LIST))
    assert response.headers["Cache-Control"] == "public, max-age=5"
    assert response.headers["Content-Type"].startswith("text/plain")


async def test_files_of_a_private_list_are_private_to_shared_caches(
    client: Client, node_token: str
) -> None:
    header = await client.get(f"/lists/{LIST}/delta/1.json", headers=bearer(node_token))
    assert header.headers["Cache-Control"] == f"private, {IMMUTABLE}"
    checkpoint = await client.get(f"/lists/{LIST}/checkpoint", headers=bearer(node_token))
    assert checkpoint.headers["Cache-Control"] == "private, max-age=5"


async def test_the_etag_is_the_sha256_of_the_bytes_and_if_none_match_answers_304(
    client: Client,
) -> None:
    response = await client.get("/root/1.json")
    data = await response.read()
    etag = response.headers["ETag"]
    assert etag == f'"{hashlib.sha256(data).hexdigest()}"'
    again = await client.get("/root/1.json", headers={"If-None-Match": etag})
    assert again.status == 304
    assert await again.read() == b""
    assert again.headers["ETag"] == etag
    other = await client.get("/root/1.json", headers={"If-None-Match": '"' + "0" * 64 + '"'})
    assert other.status == 200


async def test_bodies_are_gzipped_for_clients_that_accept_it(
    client: Client, hub_home: Path
) -> None:
    follower = Follower(client, pinned(hub_home))
    await follower.update(PUBLIC_LIST)
    [path] = [p for p in follower.fetched if "/body/" in p]
    gzipped = await client.get("/" + path, headers={"Accept-Encoding": "gzip"})
    assert gzipped.headers["Content-Encoding"] == "gzip"
    assert gzipped.headers["Vary"] == "Accept-Encoding"
    data = await gzipped.read()  # decoded by the client
    assert gzipped.headers["ETag"] == f'W/"{hashlib.sha256(data).hexdigest()}"'
    plain = await client.get("/" + path, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    assert await plain.read() == data
    assert plain.headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    refused = await client.get("/" + path, headers={"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in refused.headers
    cached = await client.get(
        "/" + path, headers={"Accept-Encoding": "gzip", "If-None-Match": plain.headers["ETag"]}
    )
    assert cached.status == 304


async def test_a_publish_through_the_app_is_served_at_once_despite_the_cache(
    client: Client, admin_token: str
) -> None:
    path = f"/lists/{LIST}/checkpoint"
    before = await client.get(path, headers=bearer(admin_token))
    assert (await before.read()).split(b"\n")[1] == b"2"
    staged = await client.post(
        f"/v1/admin/lists/{LIST}/stage",
        json={"adds": [{"hash": md5("fresh").hex()}]},
        headers=bearer(admin_token),
    )
    assert staged.status == 200
    published = await client.post("/v1/admin/publish", headers=bearer(admin_token))
    assert published.status == 200
    after = await client.get(path, headers=bearer(admin_token))
    assert (await after.read()).split(b"\n")[1] == b"3"


async def test_a_publish_by_another_process_is_served_within_about_a_second(
    client: Client, hub_home: Path, admin_token: str
) -> None:
    path = f"/lists/{LIST}/checkpoint"
    assert (await need(client, path.lstrip("/"), admin_token)).split(b"\n")[1] == b"2"
    with opened(hub_home) as hub:  # as `hashhub publish` would, beside the server
        hub.lists.stage(LIST, adds=[Intake(md5("cli"))])
        hub.publishing.publish([LIST])
    await asyncio.sleep(MEMORY_TTL + 0.2)
    assert (await need(client, path.lstrip("/"), admin_token)).split(b"\n")[1] == b"3"


async def test_head_answers_the_headers_of_get_without_a_body(client: Client) -> None:
    get = await client.get("/root/1.json")
    head = await client.head("/root/1.json")
    assert head.status == 200
    assert head.headers["ETag"] == get.headers["ETag"]
    assert head.headers["Content-Length"] == str(len(await get.read()))
    assert await head.read() == b""


# -- who may read a private list -------------------------------------------------------------------


async def test_a_private_list_without_a_token_is_401_with_www_authenticate(
    client: Client,
) -> None:
    response = await client.get(f"/lists/{LIST}/checkpoint")
    assert_error(response.status, await json_of(response), 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_an_unknown_token_is_401(client: Client) -> None:
    response = await client.get(f"/lists/{LIST}/checkpoint", headers=bearer("hhn_unknown"))
    assert_error(response.status, await json_of(response), 401)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


async def test_a_malformed_authorization_header_is_401(client: Client) -> None:
    response = await client.get(
        f"/lists/{LIST}/checkpoint", headers={"Authorization": "Basic dXNlcjpwYXNz"}
    )
    body = await json_of(response)
    assert_error(response.status, body, 401)
    assert "Bearer <token>" in body["error"]["message"]


async def test_a_public_list_ignores_credentials(client: Client, hub_home: Path) -> None:
    published = published_bytes(hub_home, checkpoint_path(PUBLIC_LIST))
    for authorization in ("Basic dXNlcjpwYXNz", "Bearer hhn_unknown"):
        response = await client.get(
            f"/lists/{PUBLIC_LIST}/checkpoint", headers={"Authorization": authorization}
        )
        assert response.status == 200
        assert await response.read() == published


async def test_a_node_reading_a_list_it_was_not_granted_is_403(
    client: Client, node_token: str
) -> None:
    for path in (f"/lists/{OTHER_LIST}/checkpoint", f"/lists/{OTHER_LIST}/delta/1.json"):
        response = await client.get(path, headers=bearer(node_token))
        assert_error(response.status, await json_of(response), 403)


async def test_a_granted_node_and_any_operator_may_read_a_private_list(
    client: Client, hub_home: Path, node_token: str, role_tokens: dict[str, str]
) -> None:
    files = [checkpoint_path(LIST), f"lists/{LIST}/delta/1.json", f"lists/{LIST}/delta/1.json.sig"]
    published = {path: published_bytes(hub_home, path) for path in files}
    for token in (node_token, *role_tokens.values()):
        for path, data in published.items():
            response = await client.get(f"/{path}", headers=bearer(token))
            assert response.status == 200
            assert await response.read() == data, path


async def test_a_list_that_does_not_exist_is_401_without_a_token_and_404_with_one(
    client: Client, admin_token: str
) -> None:
    anonymous = await client.get("/lists/no-such-list/checkpoint")
    assert anonymous.status == 401  # does not reveal whether the list exists
    operator = await client.get("/lists/no-such-list/checkpoint", headers=bearer(admin_token))
    assert_error(operator.status, await json_of(operator), 404)


async def test_a_version_never_published_is_404(client: Client) -> None:
    for path in ("/root/99.json", f"/lists/{PUBLIC_LIST}/delta/2.json", "/root/99.json.sig"):
        response = await client.get(path)
        assert_error(response.status, await json_of(response), 404)


# -- hostile paths ---------------------------------------------------------------------------------

HOSTILE_PATHS = [
    "/lists/../checkpoint",
    "/lists/%2e%2e/checkpoint",
    "/lists/%2E%2E/checkpoint",
    "/lists/..%2f..%2froot/checkpoint",
    "/lists/a%2fb/checkpoint",
    "/lists/a%2Fb/checkpoint",
    "/lists/TID-MD5/checkpoint",
    "/lists/tid-md5%00/checkpoint",
    "/lists/.hidden/checkpoint",
    "/lists/" + "a" * 65 + "/checkpoint",
    "/root/99999999999999999999.json",
    "/root/9007199254740992.json",
    "/root/0.json",
    "/root/-1.json",
    "/root/01.json",
    "/root/1e3.json",
    "/root/%31.json.sig.json",
    f"/lists/{LIST}/delta/1.5.json",
    f"/lists/{LIST}/delta/{'9' * 5000}.json",
    f"/lists/{LIST}/body/{'A' * 64}.txt",
    f"/lists/{LIST}/body/{'g' * 64}.txt",
    f"/lists/{LIST}/body/{'a' * 63}.txt",
    f"/lists/{LIST}/body/..%2f..%2f..%2froot%2f1.txt",
    f"/lists/{LIST}/snapshot/0.bin",
    "/root/..%2f..%2fetc%2fpasswd.json",
]


@pytest.mark.parametrize("target", HOSTILE_PATHS)
async def test_hostile_paths_are_refused_with_a_json_4xx(
    client: Client, admin_token: str, target: str
) -> None:
    response = await raw_request(client, target, headers=bearer(admin_token))
    assert_error(response.status, json.loads(response.body), 400)


async def test_a_hostile_list_id_is_refused_before_any_token_check(client: Client) -> None:
    response = await raw_request(client, "/lists/%2e%2e/checkpoint")
    assert response.status == 400


# -- the operator API refuses missing, wrong and under-privileged tokens ---------------------------


def route_url(route: AdminRoute, case: str = "0" * 32) -> str:
    """A concrete path of ``route``; the case is a well-formed number (none by default)."""
    return route.path.format(
        list_id=LIST,
        node_id=NODE_ID,
        role="timestamp",
        case=case,
        entry="e-no-such-entry",
        node=NODE_ID,
        platform="platform-a",
        seq=1,
    )


def route_id(route: AdminRoute) -> str:
    return f"{route.method} {route.path}"


def refused_roles(route: AdminRoute) -> list[str]:
    return [r for r in OPERATOR_ROLES if r != "admin" and r not in route.roles]


@pytest.mark.parametrize("route", ADMIN_ROUTES, ids=route_id)
async def test_every_admin_route_refuses_a_missing_token(client: Client, route: AdminRoute) -> None:
    response = await client.request(route.method, route_url(route))
    assert_error(response.status, await json_of(response), 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("route", ADMIN_ROUTES, ids=route_id)
async def test_every_admin_route_refuses_a_wrong_token(client: Client, route: AdminRoute) -> None:
    response = await client.request(
        route.method, route_url(route), headers=bearer("hho_" + "x" * 43)
    )
    assert_error(response.status, await json_of(response), 401)


@pytest.mark.parametrize("route", ADMIN_ROUTES, ids=route_id)
async def test_every_admin_route_refuses_a_node_token(
    client: Client, route: AdminRoute, node_token: str
) -> None:
    response = await client.request(route.method, route_url(route), headers=bearer(node_token))
    assert_error(response.status, await json_of(response), 403)


@pytest.mark.parametrize(
    ("route", "role"),
    [(route, role) for route in ADMIN_ROUTES for role in refused_roles(route)],
    ids=lambda v: route_id(v) if isinstance(v, AdminRoute) else str(v),
)
async def test_every_admin_route_refuses_an_under_privileged_role(
    client: Client, hub_home: Path, route: AdminRoute, role: str, role_tokens: dict[str, str]
) -> None:
    actions_before = count_rows(hub_home, "actions")
    response = await client.request(
        route.method, route_url(route), headers=bearer(role_tokens[role])
    )
    assert_error(response.status, await json_of(response), 403)
    assert count_rows(hub_home, "actions") == actions_before


@pytest.mark.parametrize("route", [r for r in ADMIN_ROUTES if r.method == "GET"], ids=route_id)
async def test_every_role_named_on_a_read_route_may_read(
    client: Client, hub_home: Path, route: AdminRoute, role_tokens: dict[str, str]
) -> None:
    with opened(hub_home) as hub:  # a case that exists, for the route that reads one
        case = hub.cases.submit("md5", md5("submitted"), None)
    for role in ("admin", *route.roles):
        response = await client.get(route_url(route, case), headers=bearer(role_tokens[role]))
        assert response.status == 200, (role, await response.text())
        assert response.headers["Cache-Control"] == "no-store"


def test_the_route_table_gives_each_operator_role_its_rights() -> None:
    rights = {f"{r.method} {r.path}": set(r.roles) for r in ADMIN_ROUTES}
    assert rights["POST /v1/admin/publish"] == {"publisher"}
    assert rights["POST /v1/admin/lists/{list_id}/stage"] == {"publisher"}
    assert rights["GET /v1/admin/acks"] == {"auditor"}
    assert rights["GET /v1/admin/evidence"] == {"auditor"}
    # An auditor recomputes the totals the hub reports and checks the enrolled keys.
    for read in ("status", "lists", "lists/{list_id}/counts", "nodes", "keys"):
        assert rights[f"GET /v1/admin/{read}"] == {"viewer", "auditor"}
    assert rights["POST /v1/admin/tokens"] == set()
    assert rights["POST /v1/admin/nodes"] == set()


# -- lists, staging, import, publish ---------------------------------------------------------------


async def test_an_admin_creates_a_list_in_a_new_root_version(
    client: Client, hub_home: Path, admin_token: str
) -> None:
    response = await client.post(
        "/v1/admin/lists",
        json={"id": "tid-pdq", "hash_type": "pdq", "label": "tid", "public": True},
        headers=bearer(admin_token),
    )
    assert response.status == 201, await response.text()
    created = await response.json()
    trusted = await Follower(client, pinned(hub_home)).trusted_hub()
    assert trusted.root.version == created["root_version"]
    assert trusted.root.lists["tid-pdq"].hash_type == "pdq"
    lists = await (await client.get("/v1/admin/lists", headers=bearer(admin_token))).json()
    assert {"id": "tid-pdq", "public": True, "version": 0}.items() <= {
        **next(x for x in lists["lists"] if x["id"] == "tid-pdq")
    }.items()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"id": "Bad/Id", "hash_type": "md5"}, 400),
        ({"id": "..", "hash_type": "md5"}, 400),
        ({"id": "x", "hash_type": "crc32"}, 400),
        ({"id": "x", "hash_type": "md5", "max_distance": "8"}, 400),
        ({"id": "x", "hash_type": "md5", "public": "yes"}, 400),
        ({"id": "x", "hash_type": "md5", "extra": 1}, 400),
        ({"hash_type": "md5"}, 400),
        ([], 400),
        ({"id": LIST, "hash_type": "md5"}, 409),
    ],
)
async def test_a_bad_list_creation_is_refused_and_changes_nothing(
    client: Client, hub_home: Path, admin_token: str, body: Any, status: int
) -> None:
    roots_before = count_rows(hub_home, "roots")
    response = await client.post("/v1/admin/lists", json=body, headers=bearer(admin_token))
    assert_error(response.status, await json_of(response), status)
    assert count_rows(hub_home, "roots") == roots_before


async def test_a_request_body_of_the_wrong_type_is_415(client: Client, admin_token: str) -> None:
    response = await client.post(
        f"/v1/admin/lists/{LIST}/stage",
        data=json.dumps({"adds": [{"hash": md5(1).hex()}]}),
        headers={**bearer(admin_token), "Content-Type": "text/plain"},
    )
    assert_error(response.status, await json_of(response), 415)


@pytest.mark.parametrize(
    "body",
    [
        {"adds": [{"hash": md5(1).hex()}, {"hash": "zz"}]},
        {"adds": [{"hash": md5(1).hex()[:-2]}]},
        {"adds": [{"hash": md5(1).hex(), "colour": "red"}]},
        {"adds": [{"hash": md5(1).hex(), "quality": 101}]},
        {"adds": [md5(1).hex()]},
        {"adds": {"hash": md5(1).hex()}},
        {"removes": [md5(1).hex(), 5]},
        {"removes": ["00"]},
        {"adds": [], "removes": []},
        {"adds": [{"hash": md5(1).hex()}], "publish": True},
    ],
)
async def test_a_bad_stage_request_is_400_and_stages_nothing(
    client: Client, hub_home: Path, admin_token: str, body: dict[str, Any]
) -> None:
    response = await client.post(
        f"/v1/admin/lists/{LIST}/stage", json=body, headers=bearer(admin_token)
    )
    assert_error(response.status, await json_of(response), 400)
    assert count_rows(hub_home, "staged") == 0


async def test_a_stage_request_that_is_not_json_is_400(client: Client, admin_token: str) -> None:
    response = await client.post(
        f"/v1/admin/lists/{LIST}/stage",
        data=b'{"adds": [',
        headers={**bearer(admin_token), "Content-Type": "application/json"},
    )
    assert_error(response.status, await json_of(response), 400)


async def test_a_low_quality_pdq_hash_is_refused(
    client: Client, hub_home: Path, admin_token: str
) -> None:
    created = await client.post(
        "/v1/admin/lists", json={"id": "tid-pdq", "hash_type": "pdq"}, headers=bearer(admin_token)
    )
    assert created.status == 201
    response = await client.post(
        "/v1/admin/lists/tid-pdq/stage",
        json={"adds": [{"hash": "ab" * 32, "quality": 49}]},
        headers=bearer(admin_token),
    )
    body = await json_of(response)
    assert_error(response.status, body, 400)
    assert "quality" in body["error"]["message"]
    assert count_rows(hub_home, "staged") == 0


PDQ_GOOD = hashlib.sha256(b"a picture").hexdigest()  # random bits: about half set, as in a PDQ
DEGENERATE_STAGE = [
    pytest.param(
        "pdq",
        {"hash": "0" * 64, "quality": 100},
        "adds[1]: PDQ hash has 0 of 256 bits set; a hash from the reference hasher has about 128",
        id="pdq-all-zero-quality-100",
    ),
    pytest.param(
        "pdq", {"hash": "F" * 64}, "adds[1]: PDQ hash has 256 of 256 bits set", id="pdq-all-one"
    ),
    pytest.param("md5", {"hash": "0" * 32}, "adds[1]: MD5 hash is all zeros", id="md5-zero"),
    pytest.param(
        "md5",
        {"hash": hashlib.md5(b"", usedforsecurity=False).hexdigest()},
        "is the digest of an empty file",
        id="md5-empty-file",
    ),
]


@pytest.mark.parametrize(("hash_type", "item", "message"), DEGENERATE_STAGE)
async def test_the_stage_route_refuses_a_degenerate_hash_whatever_its_quality(
    client: Client,
    hub_home: Path,
    admin_token: str,
    hash_type: str,
    item: dict[str, Any],
    message: str,
) -> None:
    created = await client.post(
        "/v1/admin/lists", json={"id": "deg", "hash_type": hash_type}, headers=bearer(admin_token)
    )
    assert created.status == 201
    good = PDQ_GOOD if hash_type == "pdq" else md5("good").hex()
    response = await client.post(
        "/v1/admin/lists/deg/stage",
        json={"adds": [{"hash": good, "quality": 90 if hash_type == "pdq" else None}, item]},
        headers=bearer(admin_token),
    )
    body = await json_of(response)
    assert_error(response.status, body, 400)
    assert body["error"]["code"] == "invalid_request"
    assert message in body["error"]["message"]
    assert body["error"]["message"].endswith("refused as degenerate")
    assert count_rows(hub_home, "staged") == 0


async def test_the_import_route_refuses_a_file_with_one_degenerate_hash_and_stages_nothing(
    client: Client, hub_home: Path, admin_token: str
) -> None:
    created = await client.post(
        "/v1/admin/lists", json={"id": "deg", "hash_type": "pdq"}, headers=bearer(admin_token)
    )
    assert created.status == 201
    other = hashlib.sha256(b"another picture").hexdigest()
    data = f"hash,quality\n{PDQ_GOOD},90\n{'0' * 64},100\n{other},80\n"
    response = await client.post(
        "/v1/admin/lists/deg/import", data=data.encode(), headers=bearer(admin_token)
    )
    body = await json_of(response)
    assert_error(response.status, body, 400)
    assert body["error"]["code"] == "invalid_import"
    assert body["error"]["message"].startswith("line 3: PDQ hash has 0 of 256 bits set")
    assert body["error"]["message"].endswith("refused as degenerate")
    assert count_rows(hub_home, "staged") == 0


async def test_staging_into_an_unknown_list_is_404(client: Client, admin_token: str) -> None:
    response = await client.post(
        "/v1/admin/lists/no-such/stage",
        json={"adds": [{"hash": md5(1).hex()}]},
        headers=bearer(admin_token),
    )
    assert_error(response.status, await json_of(response), 404)


async def test_an_import_stages_every_line(
    client: Client, hub_home: Path, role_tokens: dict[str, str]
) -> None:
    data = "hash,category,source\n" + "".join(f"{md5(f'i{i}').hex()},A1,ncmec\n" for i in range(4))
    response = await client.post(
        f"/v1/admin/lists/{LIST}/import",
        data=data.encode(),
        headers={**bearer(role_tokens["publisher"]), "Content-Type": "text/csv"},
    )
    assert response.status == 200, await response.text()
    assert (await response.json()) == {"list": LIST, "staged": 4}
    assert count_rows(hub_home, "staged") == 4


async def test_an_import_with_a_bad_line_names_it_and_stages_nothing(
    client: Client, hub_home: Path, admin_token: str
) -> None:
    data = f"{md5(1).hex()}\n# a comment\n{md5(2).hex()}\nnot-a-hash\n{md5(3).hex()}\n"
    response = await client.post(
        f"/v1/admin/lists/{LIST}/import", data=data.encode(), headers=bearer(admin_token)
    )
    body = await json_of(response)
    assert_error(response.status, body, 400)
    assert body["error"]["code"] == "invalid_import"
    assert body["error"]["message"].startswith("line 4:")
    assert count_rows(hub_home, "staged") == 0


async def test_an_oversize_import_is_413_and_stages_nothing(
    client: Client, hub_home: Path, admin_token: str
) -> None:
    line = md5(1).hex().encode() + b"\n"
    data = io.BytesIO(line * (ADMIN_BODY_BYTES // len(line) + 1))
    response = await client.post(
        f"/v1/admin/lists/{LIST}/import", data=data, headers=bearer(admin_token)
    )
    assert_error(response.status, await json_of(response), 413)
    assert count_rows(hub_home, "staged") == 0


async def test_publishing_a_list_that_does_not_exist_publishes_nothing(
    client: Client, hub_home: Path, admin_token: str
) -> None:
    staged = await client.post(
        f"/v1/admin/lists/{LIST}/stage",
        json={"adds": [{"hash": md5("x").hex()}]},
        headers=bearer(admin_token),
    )
    assert staged.status == 200
    response = await client.post(
        "/v1/admin/publish", json={"lists": [LIST, "no-such"]}, headers=bearer(admin_token)
    )
    assert_error(response.status, await json_of(response), 404)
    with opened(hub_home) as hub:
        assert hub.lists.row(LIST)["version"] == 2


async def test_status_and_counts_are_served(client: Client, role_tokens: dict[str, str]) -> None:
    viewer = bearer(role_tokens["viewer"])
    status = await (await client.get("/v1/admin/status", headers=viewer)).json()
    assert {entry["id"] for entry in status["lists"]} == {LIST, OTHER_LIST, PUBLIC_LIST}
    counts = await client.get(f"/v1/admin/lists/{LIST}/counts", headers=viewer)
    assert (await counts.json()) == {
        "list": LIST,
        "version": 2,
        "platforms_applied": 0,
        "platforms": [],
        "hashes": {},
        "withheld": {},
        "flagged": [],
    }
    missing = await client.get("/v1/admin/lists/no-such/counts", headers=viewer)
    assert missing.status == 404


@pytest.mark.parametrize("limit", ["0", "1001", "abc", "-1", "1e2", "²"])
async def test_a_bad_limit_is_400(client: Client, admin_token: str, limit: str) -> None:
    response = await client.get(
        "/v1/admin/actions", params={"limit": limit}, headers=bearer(admin_token)
    )
    assert_error(response.status, await json_of(response), 400)


async def test_the_action_log_names_who_acted(client: Client, admin_token: str) -> None:
    await client.post(
        f"/v1/admin/lists/{LIST}/stage",
        json={"adds": [{"hash": md5("who").hex()}]},
        headers=bearer(admin_token),
    )
    response = await client.get("/v1/admin/actions?limit=1", headers=bearer(admin_token))
    [action] = (await response.json())["actions"]
    assert (action["action"], action["who"]) == ("stage", "test-admin")


async def test_the_action_log_is_read_to_its_first_line_page_by_page(
    client: Client, admin_token: str
) -> None:
    """``next`` is the ``before`` of the next page: every line once, newest first, and
    a bad ``before`` is refused."""
    for n in range(5):
        staged = await client.post(
            f"/v1/admin/lists/{LIST}/stage",
            json={"adds": [{"hash": md5(f"page {n}").hex()}]},
            headers=bearer(admin_token),
        )
        assert staged.status == 200, await staged.text()
    whole = await (await client.get("/v1/admin/actions", headers=bearer(admin_token))).json()
    assert whole["next"] is None
    every = [a["id"] for a in whole["actions"]]
    assert len(every) >= 5
    paged: list[int] = []
    query = "limit=2"
    while True:
        page = await (
            await client.get(f"/v1/admin/actions?{query}", headers=bearer(admin_token))
        ).json()
        paged += [a["id"] for a in page["actions"]]
        if page["next"] is None:
            break
        assert page["next"] == paged[-1]
        query = f"limit=2&before={page['next']}"
    assert paged == every
    assert every == sorted(every, reverse=True)
    for bad in ("0", "x", "-3"):
        response = await client.get(f"/v1/admin/actions?before={bad}", headers=bearer(admin_token))
        assert_error(response.status, await json_of(response), 400)


# -- nodes, tokens, keys ---------------------------------------------------------------------------


async def test_an_enrolled_node_reads_its_lists_and_a_revoked_one_is_401(
    client: Client, admin_token: str
) -> None:
    key = SigningKey.generate()
    response = await client.post(
        "/v1/admin/nodes",
        json={"id": "platform-b", "public_key": key.public.to_pem().decode(), "lists": [LIST]},
        headers=bearer(admin_token),
    )
    assert response.status == 201, await response.text()
    enrolled = await response.json()
    assert enrolled["keyid"] == key.public.keyid
    token = enrolled["token"]
    assert (await client.get(f"/lists/{LIST}/checkpoint", headers=bearer(token))).status == 200
    revoked = await client.delete("/v1/admin/nodes/platform-b", headers=bearer(admin_token))
    assert revoked.status == 200
    after = await client.get(f"/lists/{LIST}/checkpoint", headers=bearer(token))
    assert_error(after.status, await json_of(after), 401)
    again = await client.delete("/v1/admin/nodes/platform-b", headers=bearer(admin_token))
    assert_error(again.status, await json_of(again), 404)


async def test_a_node_may_be_enrolled_with_a_hex_key(client: Client, admin_token: str) -> None:
    key = SigningKey.generate()
    response = await client.post(
        "/v1/admin/nodes",
        json={"id": "platform-c", "public_key": key.public.raw.hex(), "lists": []},
        headers=bearer(admin_token),
    )
    assert response.status == 201
    nodes = await (await client.get("/v1/admin/nodes", headers=bearer(admin_token))).json()
    assert {"platform-c": key.public.keyid}.items() <= {
        n["id"]: n["keyid"] for n in nodes["nodes"]
    }.items()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"id": "p", "public_key": "not a key", "lists": []}, 400),
        ({"id": "p", "public_key": "00" * 31, "lists": []}, 400),
        ({"id": "P/Q", "public_key": "00" * 32, "lists": []}, 400),
        ({"id": "p", "public_key": "00" * 32, "lists": ["../x"]}, 400),
        ({"id": "p", "public_key": "00" * 32, "lists": ["no-such"]}, 404),
        ({"id": "p", "public_key": "00" * 32}, 400),
        ({"id": NODE_ID, "public_key": "00" * 32, "lists": []}, 409),
    ],
)
async def test_a_bad_enrolment_is_refused_and_enrols_nothing(
    client: Client, hub_home: Path, admin_token: str, node_token: str, body: Any, status: int
) -> None:
    before = count_rows(hub_home, "nodes")
    response = await client.post("/v1/admin/nodes", json=body, headers=bearer(admin_token))
    assert_error(response.status, await json_of(response), status)
    assert count_rows(hub_home, "nodes") == before


async def test_an_admin_creates_an_operator_token_with_a_role(
    client: Client, admin_token: str
) -> None:
    response = await client.post(
        "/v1/admin/tokens",
        json={"role": "viewer", "subject": "dashboard"},
        headers=bearer(admin_token),
    )
    assert response.status == 201
    token = (await response.json())["token"]
    assert (await client.get("/v1/admin/status", headers=bearer(token))).status == 200
    assert (await client.post("/v1/admin/publish", headers=bearer(token))).status == 403


@pytest.mark.parametrize(
    "body",
    [
        {"role": "root", "subject": "x"},
        {"role": "viewer", "subject": ""},
        {"role": "viewer", "subject": "a b"},
        {"role": "viewer"},
    ],
)
async def test_a_bad_token_request_is_400_and_creates_nothing(
    client: Client, hub_home: Path, admin_token: str, body: dict[str, Any]
) -> None:
    before = count_rows(hub_home, "tokens")
    response = await client.post("/v1/admin/tokens", json=body, headers=bearer(admin_token))
    assert_error(response.status, await json_of(response), 400)
    assert count_rows(hub_home, "tokens") == before


async def test_rotating_a_key_publishes_a_root_the_tree_verifies_under(
    client: Client, hub_home: Path, admin_token: str
) -> None:
    follower = Follower(client, pinned(hub_home), admin_token)
    await follower.update(LIST)
    response = await client.post("/v1/admin/keys/timestamp/rotate", headers=bearer(admin_token))
    assert response.status == 200, await response.text()
    rotated = await response.json()
    trusted = await follower.trusted_hub()
    assert trusted.root.version == rotated["root_version"]
    checkpoint = await need(client, checkpoint_path(LIST), admin_token)
    trusted.verify_checkpoint(LIST, checkpoint)  # signed by the new timestamp key
    keys = await (await client.get("/v1/admin/keys", headers=bearer(admin_token))).json()
    assert sum(1 for k in keys["keys"] if k["role"] == "timestamp" and k["retired"]) == 1


async def test_rotating_an_unknown_role_is_400(client: Client, admin_token: str) -> None:
    response = await client.post("/v1/admin/keys/admin/rotate", headers=bearer(admin_token))
    assert_error(response.status, await json_of(response), 400)


# -- acks ------------------------------------------------------------------------------------------


@pytest.fixture
async def follower(client: Client, hub_home: Path, node_token: str) -> Follower:
    """The enrolled node, holding ``LIST`` at its head."""
    node = Follower(client, pinned(hub_home), node_token)
    await node.update(LIST)
    return node


async def post_ack(
    client: Client, data: bytes, sig: bytes | None, token: str | None
) -> tuple[int, Any]:
    response = await client.post("/v1/acks", data=data, headers=ack_headers(token, sig))
    return response.status, await json_of(response)


def stored(home: Path) -> tuple[int, int]:
    return count_rows(home, "acks"), count_rows(home, "evidence")


async def test_a_valid_ack_is_accepted_and_stored(
    client: Client, hub_home: Path, follower: Follower, node_key: SigningKey, node_token: str
) -> None:
    data, sig = await follower.ack(node_key, LIST, 1)
    status, body = await post_ack(client, data, sig, node_token)
    assert (status, body) == (
        200,
        {"accepted": True, "node": NODE_ID, "list": LIST, "seq": 1, "duplicate": False},
    )
    assert stored(hub_home) == (1, 0)


async def test_the_same_seq_with_the_same_bytes_answers_200_again(
    client: Client, hub_home: Path, follower: Follower, node_key: SigningKey, node_token: str
) -> None:
    data, sig = await follower.ack(node_key, LIST, 1)
    await post_ack(client, data, sig, node_token)
    status, body = await post_ack(client, data, sig, node_token)
    assert (status, body["duplicate"]) == (200, True)
    assert stored(hub_home) == (1, 0)


async def test_the_same_seq_with_other_bytes_is_409(
    client: Client, hub_home: Path, follower: Follower, node_key: SigningKey, node_token: str
) -> None:
    data, sig = await follower.ack(node_key, LIST, 1)
    await post_ack(client, data, sig, node_token)
    other, other_sig = await follower.ack(node_key, LIST, 1, counts=Counts(checked=99))
    status, body = await post_ack(client, other, other_sig, node_token)
    assert_error(status, body, 409)
    assert stored(hub_home) == (1, 0)


async def test_a_regressing_seq_is_409(
    client: Client, hub_home: Path, follower: Follower, node_key: SigningKey, node_token: str
) -> None:
    data, sig = await follower.ack(node_key, LIST, 5)
    assert (await post_ack(client, data, sig, node_token))[0] == 200
    old, old_sig = await follower.ack(node_key, LIST, 4)
    status, body = await post_ack(client, old, old_sig, node_token)
    assert_error(status, body, 409)
    assert stored(hub_home) == (1, 0)


async def test_an_ack_signed_by_another_key_is_422(
    client: Client, hub_home: Path, follower: Follower, node_token: str
) -> None:
    data, sig = await follower.ack(SigningKey.generate(), LIST, 1)
    status, body = await post_ack(client, data, sig, node_token)
    assert_error(status, body, 422)
    assert stored(hub_home) == (0, 0)


async def test_a_tampered_ack_is_422(
    client: Client, hub_home: Path, follower: Follower, node_key: SigningKey, node_token: str
) -> None:
    data, sig = await follower.ack(node_key, LIST, 1)
    tampered = data.replace(b'"checked":10', b'"checked":11')
    assert tampered != data
    status, body = await post_ack(client, tampered, sig, node_token)
    assert_error(status, body, 422)
    assert stored(hub_home) == (0, 0)


async def test_validly_signed_bytes_that_are_not_an_ack_are_422(
    client: Client, hub_home: Path, node_key: SigningKey, node_token: str
) -> None:
    data = b'{"_type":"hashhub.delta.v1","list":"tid-md5"}'
    sig = sign_bytes(data, [node_key]).to_bytes()
    status, body = await post_ack(client, data, sig, node_token)
    assert_error(status, body, 422)
    assert stored(hub_home) == (0, 0)


@pytest.mark.parametrize(
    "header",
    [None, "", "not base64!", base64.b64encode(b"not a sidecar").decode(), "A" * 5000],
    ids=["missing", "empty", "not-base64", "not-a-sidecar", "oversize"],
)
async def test_a_missing_or_invalid_signature_header_is_400(
    client: Client,
    hub_home: Path,
    follower: Follower,
    node_key: SigningKey,
    node_token: str,
    header: str | None,
) -> None:
    data, _ = await follower.ack(node_key, LIST, 1)
    headers = ack_headers(node_token, None)
    if header is not None:
        headers[SIGNATURE_HEADER] = header
    response = await client.post("/v1/acks", data=data, headers=headers)
    assert_error(response.status, await json_of(response), 400)
    assert stored(hub_home) == (0, 0)


async def test_an_oversize_ack_is_413(client: Client, hub_home: Path, node_token: str) -> None:
    data = io.BytesIO(b"{" + b" " * (1024 * 1024) + b"}")
    response = await client.post("/v1/acks", data=data, headers=ack_headers(node_token, b"{}"))
    assert_error(response.status, await json_of(response), 413)
    assert stored(hub_home) == (0, 0)


async def test_an_oversize_ack_without_a_content_length_is_413(
    client: Client, hub_home: Path, node_token: str
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b" " * 64 * 1024

    response = await client.post("/v1/acks", data=chunks(), headers=ack_headers(node_token, b"{}"))
    assert_error(response.status, await json_of(response), 413)
    assert stored(hub_home) == (0, 0)


async def test_an_ack_of_the_wrong_content_type_is_415(
    client: Client, hub_home: Path, follower: Follower, node_key: SigningKey, node_token: str
) -> None:
    data, sig = await follower.ack(node_key, LIST, 1)
    headers = {**ack_headers(node_token, sig), "Content-Type": "text/plain"}
    response = await client.post("/v1/acks", data=data, headers=headers)
    assert_error(response.status, await json_of(response), 415)
    assert stored(hub_home) == (0, 0)


async def test_an_ack_without_a_token_or_with_an_unknown_one_is_401(
    client: Client, hub_home: Path, follower: Follower, node_key: SigningKey
) -> None:
    data, sig = await follower.ack(node_key, LIST, 1)
    for token in (None, "hhn_unknown"):
        response = await client.post("/v1/acks", data=data, headers=ack_headers(token, sig))
        assert_error(response.status, await json_of(response), 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert stored(hub_home) == (0, 0)


async def test_an_ack_from_a_revoked_node_is_401(
    client: Client,
    hub_home: Path,
    follower: Follower,
    node_key: SigningKey,
    node_token: str,
    admin_token: str,
) -> None:
    data, sig = await follower.ack(node_key, LIST, 1)
    revoked = await client.delete(f"/v1/admin/nodes/{NODE_ID}", headers=bearer(admin_token))
    assert revoked.status == 200
    status, body = await post_ack(client, data, sig, node_token)
    assert_error(status, body, 401)
    assert stored(hub_home) == (0, 0)


async def test_an_ack_with_an_operator_token_is_403(
    client: Client, hub_home: Path, follower: Follower, node_key: SigningKey, admin_token: str
) -> None:
    data, sig = await follower.ack(node_key, LIST, 1)
    status, body = await post_ack(client, data, sig, admin_token)
    assert_error(status, body, 403)
    assert stored(hub_home) == (0, 0)


async def test_an_ack_for_a_list_not_granted_is_403(
    client: Client, hub_home: Path, node_key: SigningKey, node_token: str, admin_token: str
) -> None:
    reader = Follower(client, pinned(hub_home), admin_token)
    await reader.update(OTHER_LIST)
    data, sig = await reader.ack(node_key, OTHER_LIST, 1)
    status, body = await post_ack(client, data, sig, node_token)
    assert_error(status, body, 403)
    assert stored(hub_home) == (0, 0)


async def test_an_ack_naming_another_node_is_403(
    client: Client, hub_home: Path, follower: Follower, node_key: SigningKey, node_token: str
) -> None:
    data, sig = await follower.ack(node_key, LIST, 1, node="platform-z")
    status, body = await post_ack(client, data, sig, node_token)
    assert_error(status, body, 403)
    assert stored(hub_home) == (0, 0)


async def test_a_cosignature_of_a_root_never_published_is_422_and_kept_as_evidence(
    client: Client,
    hub_home: Path,
    follower: Follower,
    node_key: SigningKey,
    node_token: str,
    role_tokens: dict[str, str],
) -> None:
    from protocol import AppliedVersion, sign_ack
    from protocol.merkle import CompactRange

    _, trust = follower.lists[LIST]
    trusted = await follower.trusted_hub()
    forged_root = CompactRange(1, [hashlib.sha256(b"another history").digest()]).root()
    data, sig = sign_ack(
        key=node_key,
        node=NODE_ID,
        list_id=LIST,
        seq=1,
        sent=trusted.now,
        origin=trusted.root.origin(LIST),
        applied=AppliedVersion(trust.version, forged_root, trust.state),
        counts=Counts(),
    )
    status, body = await post_ack(client, data, sig, node_token)
    assert_error(status, body, 422)
    assert "evidence" in body["error"]["message"]
    assert stored(hub_home) == (0, 1)
    evidence = await client.get("/v1/admin/evidence", headers=bearer(role_tokens["auditor"]))
    [kept] = (await evidence.json())["evidence"]
    assert (kept["kind"], base64.b64decode(kept["bytes"])) == ("split_view", data)


async def test_an_auditor_reads_each_ack_with_its_exact_bytes(
    client: Client,
    follower: Follower,
    node_key: SigningKey,
    node_token: str,
    role_tokens: dict[str, str],
) -> None:
    data, sig = await follower.ack(node_key, LIST, 1)
    await post_ack(client, data, sig, node_token)
    response = await client.get(
        "/v1/admin/acks",
        params={"node": NODE_ID, "list": LIST},
        headers=bearer(role_tokens["auditor"]),
    )
    [ack] = (await response.json())["acks"]
    assert base64.b64decode(ack["bytes"]) == data
    assert base64.b64decode(ack["sig"]) == sig
    none = await client.get(
        "/v1/admin/acks", params={"list": OTHER_LIST}, headers=bearer(role_tokens["auditor"])
    )
    assert (await none.json())["acks"] == []
    hostile = await client.get(
        "/v1/admin/acks", params={"node": "../x"}, headers=bearer(role_tokens["auditor"])
    )
    assert hostile.status == 400


async def test_an_auditor_pages_back_through_every_ack(
    client: Client,
    follower: Follower,
    node_key: SigningKey,
    node_token: str,
    role_tokens: dict[str, str],
) -> None:
    sent = []
    for seq in range(1, 6):
        data, sig = await follower.ack(node_key, LIST, seq)
        await post_ack(client, data, sig, node_token)
        sent.append(data)
    auditor = bearer(role_tokens["auditor"])
    seen: list[bytes] = []
    params = {"limit": "2"}
    while True:
        page = (await (await client.get("/v1/admin/acks", params=params, headers=auditor)).json())[
            "acks"
        ]
        seen += [base64.b64decode(a["bytes"]) for a in page]
        if len(page) < 2:
            break
        params = {"limit": "2", "before": str(page[-1]["id"])}
    assert seen == sent[::-1]
    for bad in ("0", "-1", "x", "1" * 30):
        response = await client.get("/v1/admin/acks", params={"before": bad}, headers=auditor)
        assert_error(response.status, await response.json(), 400)


async def test_acks_and_publishes_are_counted_in_metrics(
    client: Client, follower: Follower, node_key: SigningKey, node_token: str
) -> None:
    data, sig = await follower.ack(node_key, LIST, 1)
    await post_ack(client, data, sig, node_token)
    await post_ack(client, data, None, node_token)
    text = await (await client.get("/metrics")).text()
    assert 'hashhub_acks_accepted_total{duplicate="false"} 1.0' in text
    assert 'hashhub_acks_refused_total{code="invalid_request"} 1.0' in text
    assert f'hashhub_list_version{{list="{LIST}"}} 2.0' in text
    assert 'route="/lists/{list_id}/checkpoint"' in text


# -- service routes --------------------------------------------------------------------------------


async def test_health_and_readiness(client: Client) -> None:
    assert (await (await client.get("/healthz")).json()) == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["status"] == "ready"


async def test_responses_never_let_a_browser_sniff_the_type(client: Client) -> None:
    response = await client.get("/root/1.json")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


# -- the in-memory caches ------------------------------------------------------------------------


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def published(data: bytes, *, immutable: bool) -> _Published:
    return _Published(data, hashlib.sha256(data).hexdigest(), immutable)


def test_a_checkpoint_read_before_an_invalidation_is_not_cached() -> None:
    cache = PublishedCache()
    generation = cache.generation
    cache.invalidate()  # a publish finished while the old checkpoint was being read
    cache.put("lists/a/checkpoint", published(b"old", immutable=False), generation)
    assert cache.get("lists/a/checkpoint") is None


def test_a_checkpoint_is_kept_for_the_ttl_only_and_immutable_files_for_good() -> None:
    clock = FakeMonotonic()
    cache = PublishedCache(ttl=1.0, clock=clock)
    cache.put("lists/a/checkpoint", published(b"cp", immutable=False), cache.generation)
    cache.put("root/1.json", published(b"root", immutable=True), cache.generation)
    assert cache.get("lists/a/checkpoint") is not None
    clock.now += 1.01
    assert cache.get("lists/a/checkpoint") is None
    cache.invalidate()
    assert cache.get("root/1.json") is not None


def test_the_immutable_file_cache_is_bounded_in_bytes() -> None:
    cache = PublishedCache(max_bytes=10, max_item_bytes=6)
    cache.put("a", published(b"12345", immutable=True), 0)
    cache.put("b", published(b"12345", immutable=True), 0)
    cache.put("c", published(b"12345", immutable=True), 0)
    cache.put("big", published(b"1234567", immutable=True), 0)
    assert [cache.get(p) is not None for p in ("a", "b", "c", "big")] == [False, True, True, False]


def test_read_verdicts_are_bounded_and_forgotten_on_change() -> None:
    clock = FakeMonotonic()
    cache = AccessCache(max_entries=2, clock=clock)
    for i in range(3):
        cache.put((str(i), LIST), _Verdict(), cache.generation)
    assert len([i for i in range(3) if cache.get((str(i), LIST))]) <= 2
    cache.invalidate()
    assert cache.get(("2", LIST)) is None
