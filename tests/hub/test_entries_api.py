"""Entries lists through the operator API: the real app on loopback, real SQLite.

The same rules as ``hashhub entry`` (tests/hub/test_entries.py), seen as JSON: the
one error shape, role checks as for staging hashes, nothing staged on a refusal,
and what a publish makes verified by the protocol's trust rules from root v1.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from hub.api.admin_entries import NEW_ENTRY_BODY_BYTES
from hub.core import utcnow
from tests.hub.conftest import Client, bearer, count_rows, md5, opened, pinned, sha256
from tests.hub.node_view import follow_entries, from_hub
from tests.hub.test_http import assert_error

MD5_LIST, SHA_LIST = "ncii-md5", "ncii-sha256"


@pytest.fixture
def entries_home(hub_home: Path) -> Path:
    """The test hub with the collection ``ncii``: an md5 and a sha256 entries list."""
    with opened(hub_home) as hub:
        hub.roots.create_list(MD5_LIST, "md5", label="ncii", list_format="entries")
        hub.roots.create_list(SHA_LIST, "sha256", label="ncii", list_format="entries")
    return hub_home


def draft(n: object, **changes: Any) -> dict[str, Any]:
    return {
        "hashes": {MD5_LIST: md5(n).hex(), SHA_LIST: sha256(n).hex()},
        "category": "ncii",
        "classification": "confirmed",
        "source": "import:platform-a",
        **changes,
    }


async def post(client: Client, path: str, body: object, token: str) -> tuple[int, Any]:
    response = await client.post(path, json=body, headers=bearer(token))
    return response.status, await response.json()


async def test_a_publisher_stages_changes_and_retracts_entries_a_node_verifies(
    client: Client, entries_home: Path, role_tokens: dict[str, str]
) -> None:
    token = role_tokens["publisher"]
    status, first = await post(client, "/v1/admin/entries", draft(1), token)
    assert status == 201, first
    assert first["entry"].startswith("e-")
    assert len(first["entry"]) == 28
    assert first["collection"] == "ncii"
    assert first["source"] == "import:platform-a"
    assert [i["list"] for i in first["lists"]] == [MD5_LIST, SHA_LIST]
    status, second = await post(client, "/v1/admin/entries", draft(2), token)
    assert status == 201
    status, published = await post(client, "/v1/admin/publish", {"lists": [MD5_LIST]}, token)
    assert status == 200
    assert sorted((p["list"], p["version"], p["adds"]) for p in published["published"]) == [
        (MD5_LIST, 1, 2),
        (SHA_LIST, 1, 2),
    ]

    status, changed = await post(
        client,
        "/v1/admin/entries/change",
        {"entry": first["entry"], "classification": "severe"},
        token,
    )
    assert status == 200
    assert changed["classification"] == "severe"
    assert [i["pending"] for i in changed["lists"]] == [True, True]
    status, retracted = await post(
        client,
        "/v1/admin/entries/retract",
        {"entry": second["entry"], "reason": "withdrawn"},
        token,
    )
    assert status == 200
    assert retracted["retracted"] == "withdrawn"
    status, published = await post(client, "/v1/admin/publish", {}, token)
    assert sorted((p["list"], p["adds"], p["removes"]) for p in published["published"]) == [
        (MD5_LIST, 1, 2),
        (SHA_LIST, 1, 2),
    ]

    viewer = bearer(role_tokens["viewer"])
    listed = await (await client.get(f"/v1/admin/entries?list={SHA_LIST}", headers=viewer)).json()
    assert [e["entry"] for e in listed["entries"]] == [first["entry"], second["entry"]]
    one = await (
        await client.get(f"/v1/admin/entries?entry={first['entry']}", headers=viewer)
    ).json()
    assert one["entries"][0]["lists"][0] == {
        "list": MD5_LIST,
        "hash": md5(1).hex(),
        "listed": True,
        "pending": False,
    }

    with opened(entries_home) as hub:
        for list_id in (MD5_LIST, SHA_LIST):
            versions = follow_entries(
                from_hub(hub), list_id, pinned_sha256=pinned(entries_home), now=utcnow()
            )
            v2 = versions[-1].body
            assert sorted((r.entry.entry_id, r.reason) for r in v2.removes) == sorted(
                [(first["entry"], "changed"), (second["entry"], "withdrawn")]
            )
            assert [(e.entry_id, e.classification) for e in v2.adds] == [(first["entry"], "severe")]
            (record,) = versions[-1].state.entries()
            assert record.source == "import:platform-a"
            # The hub's own records are the state the node verified, digest and all.
            assert hub.entries.state(list_id) == versions[-1].state
            head = hub.ctx.one(
                "SELECT result_sha256 FROM log_roots WHERE list_id = ? ORDER BY size DESC",
                [list_id],
            )
            assert head is not None
            assert head["result_sha256"] == versions[-1].state.digest().sha256


BAD_DRAFTS = [
    (draft(1, category="spam"), 400, "'spam' is not a term of vocabulary.categories"),
    (draft(1, hashes={MD5_LIST: "zz" * 16}), 400, "is not a md5 hash"),
    (draft(1, hashes={SHA_LIST: md5(1).hex()}), 400, "is not a sha256 hash (64 hex digits)"),
    (draft(1, hashes={"tid-md5": md5(1).hex()}), 400, "holds bare hashes"),
    (draft(1, hashes={"nope-md5": md5(1).hex()}), 404, "no list 'nope-md5'"),
    (draft(1, hashes={}), 400, "'hashes' must be an object"),
    (draft(1, expires="2001-01-01T00:00:00Z"), 400, "is not in the future"),
    (draft(1, note="hi"), 400, "unknown field(s) ['note']"),
    ([1, 2], 400, "the body must be a JSON object"),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD_DRAFTS)
async def test_a_bad_entry_is_refused_in_the_one_error_shape_and_nothing_is_staged(
    client: Client,
    entries_home: Path,
    admin_token: str,
    body: object,
    status: int,
    message: str,
) -> None:
    got, answer = await post(client, "/v1/admin/entries", body, admin_token)
    assert_error(got, answer, status)
    assert message in answer["error"]["message"]
    assert count_rows(entries_home, "entry_items") == 0
    assert count_rows(entries_home, "entry_pending") == 0


async def test_bodies_that_are_not_utf8_json_or_too_large_are_refused(
    client: Client, entries_home: Path, admin_token: str
) -> None:
    headers = {**bearer(admin_token), "Content-Type": "application/json"}
    response = await client.post("/v1/admin/entries", data=b'{"hashes": "\xff"}', headers=headers)
    assert_error(response.status, await response.json(), 400)
    big = json.dumps({"entry": "e-" + "a" * 26, "source": "hub" + " " * 20_000}).encode()
    response = await client.post("/v1/admin/entries/change", data=big, headers=headers)
    assert_error(response.status, await response.json(), 413)
    # A new entry may carry a long video's frames (megabytes of hex), not more.
    bigger = json.dumps(draft(1, source=" " * NEW_ENTRY_BODY_BYTES)).encode()
    response = await client.post("/v1/admin/entries", data=io.BytesIO(bigger), headers=headers)
    assert_error(response.status, await response.json(), 413)
    response = await client.post(
        "/v1/admin/entries/import",
        data=json.dumps(draft(1)).encode() + b"\n\xff\n",
        headers=headers,
    )
    answer = await response.json()
    assert_error(response.status, answer, 400)
    assert "line 2: not a JSON object in UTF-8" in answer["error"]["message"]
    assert count_rows(entries_home, "entry_items") == 0


async def test_a_listed_hash_an_unknown_entry_and_a_second_retraction_are_refused(
    client: Client, entries_home: Path, admin_token: str
) -> None:
    status, first = await post(client, "/v1/admin/entries", draft(1), admin_token)
    assert status == 201
    status, answer = await post(
        client, "/v1/admin/entries", draft(1, hashes={SHA_LIST: sha256(1).hex()}), admin_token
    )
    assert_error(status, answer, 409)
    assert f"already listed in {SHA_LIST} (entry {first['entry']})" in answer["error"]["message"]
    for path, body, code in (
        ("/v1/admin/entries/retract", {"entry": "e-none", "reason": "withdrawn"}, 404),
        ("/v1/admin/entries/retract", {"entry": "E/..", "reason": "withdrawn"}, 400),
        ("/v1/admin/entries/retract", {"entry": first["entry"], "reason": "expired"}, 400),
        ("/v1/admin/entries/change", {"entry": "e-none", "category": "csam"}, 404),
        ("/v1/admin/entries/change", {"entry": first["entry"]}, 400),
    ):
        status, answer = await post(client, path, body, admin_token)
        assert_error(status, answer, code)
    response = await client.get("/v1/admin/entries?entry=e-none", headers=bearer(admin_token))
    assert_error(response.status, await response.json(), 404)
    body = {"entry": first["entry"], "reason": "disputed"}
    status, _ = await post(client, "/v1/admin/entries/retract", body, admin_token)
    assert status == 200
    status, answer = await post(client, "/v1/admin/entries/retract", body, admin_token)
    assert_error(status, answer, 409)
    assert "was retracted (disputed)" in answer["error"]["message"]


async def test_import_stages_ndjson_all_or_nothing(
    client: Client, entries_home: Path, role_tokens: dict[str, str]
) -> None:
    headers = {**bearer(role_tokens["publisher"]), "Content-Type": "application/x-ndjson"}
    lines = [json.dumps(draft(n)) for n in range(3)]
    bad = "\n".join([*lines[:2], json.dumps(draft(9, classification="awful"))]).encode()
    response = await client.post("/v1/admin/entries/import", data=bad, headers=headers)
    answer = await response.json()
    assert_error(response.status, answer, 400)
    assert "entry 3: 'awful' is not a term" in answer["error"]["message"]
    assert count_rows(entries_home, "entry_items") == 0
    response = await client.post(
        "/v1/admin/entries/import", data="\n".join(lines).encode(), headers=headers
    )
    assert response.status == 200
    answer = await response.json()
    assert answer["staged"] == 3
    assert len(set(answer["entries"])) == 3
    assert count_rows(entries_home, "entry_hashes") == 6


async def test_roles_stage_as_for_hashes_and_only_admin_adds_a_term(
    client: Client, entries_home: Path, role_tokens: dict[str, str]
) -> None:
    for role in ("viewer", "auditor"):
        status, answer = await post(client, "/v1/admin/entries", draft(1), role_tokens[role])
        assert_error(status, answer, 403)
        response = await client.get("/v1/admin/entries", headers=bearer(role_tokens[role]))
        assert response.status == 200
    assert count_rows(entries_home, "entry_items") == 0
    term = {"group": "categories", "term": "spam"}
    status, answer = await post(client, "/v1/admin/vocabulary", term, role_tokens["publisher"])
    assert_error(status, answer, 403)
    status, answer = await post(client, "/v1/admin/vocabulary", term, role_tokens["admin"])
    assert status == 201
    assert answer["vocabulary"]["categories"] == ["ncii", "csam", "terrorism", "spam"]
    status, answer = await post(client, "/v1/admin/vocabulary", term, role_tokens["admin"])
    assert_error(status, answer, 409)
    response = await client.get("/v1/admin/vocabulary", headers=bearer(role_tokens["viewer"]))
    shown = await response.json()
    assert shown["vocabulary"]["categories"][-1] == "spam"
    assert shown["root_version"] == answer_root(entries_home)
    status, _ = await post(
        client, "/v1/admin/entries", draft(1, category="spam"), role_tokens["publisher"]
    )
    assert status == 201


def answer_root(home: Path) -> int:
    with opened(home) as hub:
        return hub.keys.root().version


async def test_an_admin_creates_an_entries_list_over_the_api(
    client: Client, hub_home: Path, admin_token: str
) -> None:
    status, answer = await post(
        client,
        "/v1/admin/lists",
        {"id": "csam-md5", "hash_type": "md5", "label": "csam", "format": "entries"},
        admin_token,
    )
    assert status == 201, answer
    lists = await (await client.get("/v1/admin/lists", headers=bearer(admin_token))).json()
    formats = {x["id"]: x["format"] for x in lists["lists"]}
    assert formats["csam-md5"] == "entries"
    assert formats["tid-md5"] == "hashes"
    status, answer = await post(
        client,
        "/v1/admin/lists",
        {"id": "x-md5", "hash_type": "md5", "format": "rows"},
        admin_token,
    )
    assert_error(status, answer, 400)
    assert "unknown list format 'rows'" in answer["error"]["message"]
