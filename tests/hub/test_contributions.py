"""Members' contributions (PROTOCOL.md §10.8) against the real hub on loopback.

Nodes are enrolled with real keys and sign with ``sign_contribution``; each answer
is read as §10.8 writes it, every refusal is checked to store nothing, and an
accepted contribution is followed, as a node follows it, into the published lists
of its collection with the contributing platform as the entry's source.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from hub.core import utcnow
from protocol import ACK_LAST_SEQ_HEADER, SigningKey, canonicalize, sign_bytes
from protocol.contribution import ContributedHash, Contribution, Review, sign_contribution
from tests.hub.conftest import (
    NODE_ID,
    Client,
    ack_headers,
    bearer,
    count_rows,
    md5,
    opened,
    pinned,
    sha256,
)
from tests.hub.node_view import follow_entries, from_hub
from tests.hub.test_cli import Operator
from tests.hub.test_entries_api import MD5_LIST, SHA_LIST, entries_home  # noqa: F401 (a fixture)
from tests.hub.test_http import assert_error

pytestmark = pytest.mark.usefixtures("entries_home")
"""Every test runs on the test hub with the collection ``ncii`` (its md5 and sha256 lists)."""

PDQ_OK = "f0" * 32
"""A PDQ hash with 128 of its 256 bits set, as a real picture's has."""


def contribution(seq: int, n: object = 1, **changes: Any) -> Contribution:
    fields: dict[str, Any] = {
        "node": NODE_ID,
        "seq": seq,
        "sent": datetime(2026, 1, 1, 6, 0, tzinfo=utcnow().tzinfo),
        "hashes": {
            "md5": ContributedHash(md5(n).hex()),
            "sha256": ContributedHash(sha256(n).hex()),
        },
        "category": "ncii",
        "classification": "confirmed",
        "review": Review("person", "actioned"),
        **changes,
    }
    return Contribution(**fields)


async def send(
    client: Client, token: str, data: bytes, sig: bytes, content_type: str = "application/json"
) -> tuple[int, dict[str, str], Any]:
    headers = ack_headers(token, sig)
    headers["Content-Type"] = content_type
    response = await client.post("/v1/contributions", data=data, headers=headers)
    return response.status, dict(response.headers), await response.json()


async def contribute(
    client: Client, token: str, key: SigningKey, doc: Contribution
) -> tuple[int, dict[str, str], Any]:
    data, sig = sign_contribution(doc, key)
    return await send(client, token, data, sig)


def stored(home: Path) -> list[tuple[str, int, str]]:
    with opened(home) as hub:
        return [
            (r["node"], r["seq"], r["status"])
            for r in hub.db.query("SELECT node, seq, status FROM contributions ORDER BY node, seq")
        ]


async def test_a_contribution_waits_for_review_and_a_retry_is_a_duplicate(
    client: Client, hub_home: Path, node_token: str, node_key: SigningKey
) -> None:
    status, _, body = await contribute(client, node_token, node_key, contribution(1))
    assert status == 200, body
    assert body == {
        "accepted": True,
        "node": NODE_ID,
        "seq": 1,
        "duplicate": False,
        "status": "received",
    }
    status, _, again = await contribute(client, node_token, node_key, contribution(1))
    assert status == 200, again
    assert again["duplicate"] is True
    assert stored(hub_home) == [(NODE_ID, 1, "received")]

    response = await client.get("/v1/contributions/1", headers=bearer(node_token))
    assert response.status == 200
    assert await response.json() == {
        "node": NODE_ID,
        "seq": 1,
        "status": "received",
        "entry": None,
        "decided": None,
    }
    missing = await client.get("/v1/contributions/2", headers=bearer(node_token))
    assert_error(missing.status, await missing.json(), 404)


async def test_a_stale_or_reused_seq_is_409_with_the_last_seq(
    client: Client, hub_home: Path, node_token: str, node_key: SigningKey
) -> None:
    assert (await contribute(client, node_token, node_key, contribution(5)))[0] == 200
    for doc in (contribution(5, n=2), contribution(3, n=3)):
        status, headers, body = await contribute(client, node_token, node_key, doc)
        assert_error(status, body, 409)
        assert body["error"]["code"] == "seq_conflict"
        assert headers[ACK_LAST_SEQ_HEADER] == "5"
    assert stored(hub_home) == [(NODE_ID, 5, "received")]


async def test_a_node_may_not_contribute_as_another(
    client: Client, hub_home: Path, node_token: str
) -> None:
    other_key = SigningKey.generate()
    with opened(hub_home) as hub:
        other_token = hub.access.enrol_node("platform-b", other_key.public, [])
    status, _, body = await contribute(client, other_token, other_key, contribution(1))
    assert_error(status, body, 403)
    assert "platform-b" in body["error"]["message"]
    assert stored(hub_home) == []


def _signed_raw(key: SigningKey, data: bytes) -> tuple[bytes, bytes]:
    return data, sign_bytes(data, [key]).to_bytes()


def _wrong_type(key: SigningKey) -> tuple[bytes, bytes]:
    value = contribution(1).to_dict()
    value["_type"] = "hashhub.ack.v1"
    return _signed_raw(key, canonicalize(value))


@pytest.mark.parametrize(
    ("case", "rule"),
    [
        ("bad signature", "SignatureError"),
        ("unknown term", "VocabularyError"),
        ("low quality", "QualityError"),
        ("degenerate", "DegenerateHash"),
        ("malformed json", "MalformedError"),
        ("not utf-8", "MalformedError"),
        ("wrong type", "WrongTypeError"),
    ],
)
async def test_a_refused_contribution_is_422_naming_the_rule_and_stored_nowhere(
    client: Client,
    hub_home: Path,
    node_token: str,
    node_key: SigningKey,
    case: str,
    rule: str,
) -> None:
    docs = {
        "unknown term": contribution(1, category="spam"),
        "low quality": contribution(1, hashes={"pdq": ContributedHash(PDQ_OK, 40)}),
        "degenerate": contribution(1, hashes={"md5": ContributedHash("0" * 32)}),
    }
    if case == "bad signature":
        data, sig = sign_contribution(contribution(1), SigningKey.generate())
    elif case == "malformed json":
        data, sig = _signed_raw(node_key, b'{"_type": "hashhub.contribution.v1",')
    elif case == "not utf-8":
        data, sig = _signed_raw(node_key, b'{"_type":"\xff\xfe"}')
    elif case == "wrong type":
        data, sig = _wrong_type(node_key)
    else:
        data, sig = sign_contribution(docs[case], node_key)
    status, _, body = await send(client, node_token, data, sig)
    assert_error(status, body, 422)
    assert f"({rule})" in body["error"]["message"]
    assert count_rows(hub_home, "contributions") == 0


async def test_the_form_is_checked_before_the_document(
    client: Client, hub_home: Path, node_token: str, node_key: SigningKey
) -> None:
    data, sig = sign_contribution(contribution(1), node_key)
    status, _, body = await send(client, node_token, data, sig, content_type="text/plain")
    assert_error(status, body, 415)
    big = data + b" " * (64 * 1024)
    status, _, body = await send(client, node_token, big, sign_bytes(big, [node_key]).to_bytes())
    assert_error(status, body, 413)
    response = await client.post(
        "/v1/contributions", data=data, headers=ack_headers(node_token, None)
    )
    assert_error(response.status, await response.json(), 400)
    response = await client.post("/v1/contributions", data=data, headers=ack_headers(None, sig))
    assert_error(response.status, await response.json(), 401)
    assert count_rows(hub_home, "contributions") == 0
    # A good pdq contribution passes the floor the low one failed.
    doc = contribution(1, hashes={"pdq": ContributedHash(PDQ_OK, 80)})
    assert (await contribute(client, node_token, node_key, doc))[0] == 200


async def test_an_accepted_contribution_is_published_with_its_platform_as_source(
    client: Client,
    hub_home: Path,
    node_token: str,
    node_key: SigningKey,
    role_tokens: dict[str, str],
) -> None:
    for seq in (1, 2):
        doc = contribution(seq, n=seq)
        assert (await contribute(client, node_token, node_key, doc))[0] == 200

    viewer = bearer(role_tokens["viewer"])
    queue = await (await client.get("/v1/admin/contributions?limit=1", headers=viewer)).json()
    assert [(c["node"], c["seq"]) for c in queue["contributions"]] == [(NODE_ID, 1)]
    assert queue["contributions"][0]["hashes"]["md5"] == {"hash": md5(1).hex()}
    assert queue["next"] == f"{NODE_ID}/1"
    rest = await (
        await client.get(f"/v1/admin/contributions?after={queue['next']}", headers=viewer)
    ).json()
    assert [c["seq"] for c in rest["contributions"]] == [2]
    assert rest["next"] is None

    denied = await client.post(
        f"/v1/admin/contributions/{NODE_ID}/1",
        json={"decision": "accept", "list": MD5_LIST},
        headers=viewer,
    )
    assert_error(denied.status, await denied.json(), 403)

    publisher = bearer(role_tokens["publisher"])
    response = await client.post(
        f"/v1/admin/contributions/{NODE_ID}/1",
        json={"decision": "accept", "list": MD5_LIST, "note": "seen by two reviewers"},
        headers=publisher,
    )
    decided = await response.json()
    assert response.status == 200, decided
    assert decided["status"] == "accepted"
    assert decided["note"] == "seen by two reviewers"
    entry = decided["entry"]
    assert entry.startswith("e-")
    again = await client.post(
        f"/v1/admin/contributions/{NODE_ID}/1", json={"decision": "reject"}, headers=publisher
    )
    assert_error(again.status, await again.json(), 409)

    response = await client.post(
        f"/v1/admin/contributions/{NODE_ID}/2", json={"decision": "reject"}, headers=publisher
    )
    assert response.status == 200
    assert (await response.json())["status"] == "rejected"

    with opened(hub_home) as hub:
        hub.publishing.publish()
        for list_id, digest in ((MD5_LIST, md5(1)), (SHA_LIST, sha256(1))):
            versions = follow_entries(
                from_hub(hub), list_id, pinned_sha256=pinned(hub_home), now=utcnow()
            )
            (record,) = versions[-1].state.entries()
            assert record.entry_id == entry
            assert record.hash == digest
            assert record.source == f"member:{NODE_ID}"
            assert (record.category, record.classification) == ("ncii", "confirmed")

    status = await (await client.get("/v1/contributions/1", headers=bearer(node_token))).json()
    assert status["status"] == "accepted"
    assert status["entry"] == entry
    assert status["decided"] is not None
    assert "note" not in status
    rejected = await (await client.get("/v1/contributions/2", headers=bearer(node_token))).json()
    assert (rejected["status"], rejected["entry"]) == ("rejected", None)
    assert stored(hub_home) == [(NODE_ID, 1, "accepted"), (NODE_ID, 2, "rejected")]


def test_the_cli_lists_accepts_and_rejects_contributions(
    hub_home: Path, node_token: str, node_key: SigningKey
) -> None:
    """``hashhub contribution``: the same service, logged under the shell's user."""
    with opened(hub_home) as hub:
        for seq in (1, 2):
            principal = hub.access.authenticate(node_token)
            hub.contributions.receive(
                principal, *sign_contribution(contribution(seq, seq), node_key)
            )
    op = Operator(hub_home)
    listed = json.loads(op.ok("contribution", "list", "--json"))
    assert [(c["node"], c["seq"], c["status"]) for c in listed] == [
        (NODE_ID, 1, "received"),
        (NODE_ID, 2, "received"),
    ]
    assert f"{NODE_ID}  1" in op.ok("contribution", "list")
    out = op.ok("contribution", "accept", NODE_ID, "1", "--list", SHA_LIST, "--note", "checked")
    assert f"Contribution {NODE_ID}/1 accepted as entry e-" in out
    assert "rejected" in op.ok("contribution", "reject", NODE_ID, "2")
    assert op.ok("contribution", "list") == "No received contribution.\n"
    again = op.run("contribution", "reject", NODE_ID, "1")
    assert again.exit_code == 1
    assert "already accepted" in again.output
    (accepted,) = json.loads(op.ok("contribution", "list", "--status", "accepted", "--json"))
    assert accepted["note"] == "checked"
    assert accepted["who"].startswith("cli")
    with opened(hub_home) as hub:
        view = hub.entries.show(accepted["entry"])
    assert view.source == f"member:{NODE_ID}"
    assert sorted(i["list"] for i in view.lists) == [MD5_LIST, SHA_LIST]
