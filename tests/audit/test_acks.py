"""``hashhub-audit acks``: signed acks verified, totals recomputed, a hostile hub caught.

Two nodes with real Ed25519 keys follow ``LIST`` of the hub tests' real hub (over
its HTTP app on loopback), sign acks with cumulative counters — one of them
resetting its counters, as a node that lost its database does — and post them to
``/v1/acks``. The hostile hub is that same hub with its SQLite file edited behind
its back: a stored ack's bytes, or a counters row.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from audit.cli import EXIT_FAILED, EXIT_INCOMPLETE
from hub.core import Hub
from protocol import Counts, SigningKey
from tests.audit.support import Outcome, audit_async, base_url, pin_of, write_pem
from tests.hub.conftest import LIST, Client, Follower, ack_headers, md5, opened

OTHER_NODE = "platform-b"
H1, H2 = md5(1).hex(), md5(2).hex()

ACKS_A = [
    Counts(checked=10, matched=2, actioned=1, hashes={H1: {"matched": 2, "actioned": 1}}),
    Counts(
        checked=20, matched=3, actioned=2, blocked=1, hashes={H1: {"matched": 3, "actioned": 2}}
    ),
    # The node lost its counters and starts again from zero: a reset, not a decrease.
    Counts(checked=4, matched=1, actioned=1, hashes={H2: {"matched": 1, "actioned": 1}}),
]
ACK_B = Counts(checked=5, matched=1, blocked=1, false_positive=1, hashes={H1: {"matched": 1}})
EXPECTED = {"checked": 29, "matched": 5, "actioned": 3, "blocked": 2, "false_positive": 1}
"""20 + 4 + 5 checked; blocked 1 (kept across the reset) + 1; and so on."""


class Nodes:
    """The two nodes' keys, as PEM files their platforms hand the auditor."""

    def __init__(self, tmp_path: Path, key_a: SigningKey, key_b: SigningKey) -> None:
        self.key_a, self.key_b = key_a, key_b
        self.pem_a = write_pem(tmp_path / "platform-a.pub.pem", key_a)
        self.pem_b = write_pem(tmp_path / "platform-b.pub.pem", key_b)

    def args(self) -> list[str]:
        return [
            "--node-key",
            f"platform-a={self.pem_a}",
            "--node-key",
            f"{OTHER_NODE}={self.pem_b}",
        ]


async def post(client: Client, token: str, data: bytes, sig: bytes) -> None:
    response = await client.post("/v1/acks", data=data, headers=ack_headers(token, sig))
    assert response.status == 200, await response.text()


@pytest.fixture
async def nodes(
    client: Client, hub_home: Path, node_key: SigningKey, node_token: str, tmp_path: Path
) -> Nodes:
    """platform-a (three acks, one after a reset) and platform-b (one ack), all accepted."""
    key_b = SigningKey.generate()
    with opened(hub_home) as hub:
        token_b = hub.access.enrol_node(OTHER_NODE, key_b.public, [LIST])
    pin = pin_of(hub_home)
    follower_a = Follower(client, pin, token=node_token)
    await follower_a.update(LIST)
    for seq, counts in enumerate(ACKS_A, start=1):
        await post(client, node_token, *await follower_a.ack(node_key, LIST, seq, counts=counts))
    follower_b = Follower(client, pin, token=token_b)
    await follower_b.update(LIST)
    await post(
        client, token_b, *await follower_b.ack(key_b, LIST, 1, node=OTHER_NODE, counts=ACK_B)
    )
    return Nodes(tmp_path, node_key, key_b)


async def run_acks(
    client: Client, hub_home: Path, tokens: dict[str, str], *extra: str, viewer: bool = True
) -> Outcome:
    args = ["acks", base_url(client), "--root-sha256", pin_of(hub_home), "--json"]
    args += ["--token", tokens["auditor"]]
    if viewer:
        args += ["--viewer-token", tokens["viewer"]]
    return await audit_async(*args, *extra)


def findings(out: Outcome) -> list[dict[str, str]]:
    report = out.json()
    tree = report["tree"]
    return [
        *tree["findings"],
        *(f for lst in tree["lists"] for f in lst["findings"]),
        *report["acks"]["findings"],
    ]


def db(home: Path) -> sqlite3.Connection:
    """The hub's own SQLite file, opened behind its back (the hostile hub)."""
    hub = Hub.open(home)
    path = home / hub.config.database
    hub.close()
    return sqlite3.connect(path, isolation_level=None)


async def test_acks_verify_and_the_totals_add_up(
    client: Client, hub_home: Path, role_tokens: dict[str, str], nodes: Nodes
) -> None:
    out = await run_acks(client, hub_home, role_tokens, *nodes.args())
    assert out.code == 0, out.stdout
    acks = out.json()["acks"]
    assert (acks["acks"], acks["verified"], acks["findings"]) == (4, 4, [])
    assert acks["nodes"] == ["platform-a", OTHER_NODE]
    totals = acks["totals"][LIST]
    assert totals["list"] == EXPECTED
    assert totals["nodes"]["platform-a"]["blocked"] == 1, "a reset keeps what was counted"
    assert totals["hashes"] == {
        H1: {"matched": 3 + 1, "actioned": 2},
        H2: {"matched": 1, "actioned": 1},
    }
    (size,) = acks["cosigned"][LIST]
    (nodes_at_size,) = acks["cosigned"][LIST][size].values()
    assert nodes_at_size == ["platform-a", OTHER_NODE], "both co-signed the one published root"


async def test_a_forged_ack_signature_is_caught(
    client: Client, hub_home: Path, role_tokens: dict[str, str], nodes: Nodes
) -> None:
    """The hub raises platform-a's takedown count in the stored bytes of its second ack."""
    conn = db(hub_home)
    try:
        row_id, data = conn.execute(
            "SELECT id, bytes FROM acks WHERE node = 'platform-a' AND seq = 2"
        ).fetchone()
        forged = bytes(data).replace(b'"actioned":2,"blocked"', b'"actioned":9,"blocked"')
        assert forged != bytes(data)
        conn.execute("UPDATE acks SET bytes = ? WHERE id = ?", [forged, row_id])
    finally:
        conn.close()
    out = await run_acks(client, hub_home, role_tokens, *nodes.args())
    assert out.code == EXIT_FAILED, out.stdout
    forged_findings = [f for f in findings(out) if f["rule"] == "SignatureError"]
    assert [f["file"] for f in forged_findings] == [f"ack #{row_id} (platform-a, {LIST}, seq 2)"]
    assert out.json()["acks"]["verified"] == 3


@pytest.mark.parametrize(
    ("hash_", "name", "expected"),
    [
        ("", "actioned", "actioned: the signed acks of platform-a add up to 3, the hub reports 8"),
        (H2, "matched", f"hash {H2} matched: the signed acks add up to 1, the hub reports 6"),
    ],
)
async def test_totals_the_hub_inflated_are_caught(
    client: Client,
    hub_home: Path,
    role_tokens: dict[str, str],
    nodes: Nodes,
    hash_: str,
    name: str,
    expected: str,
) -> None:
    conn = db(hub_home)
    try:
        changed = conn.execute(
            "UPDATE counters SET total = total + 5 "
            "WHERE node = 'platform-a' AND list_id = ? AND hash = ? AND name = ?",
            [LIST, hash_, name],
        ).rowcount
        # The sums over nodes the hub reports are kept in counter_totals (ADR 0010).
        conn.execute(
            "UPDATE counter_totals SET total = total + 5 "
            "WHERE list_id = ? AND hash = ? AND name = ?",
            [LIST, hash_, name],
        )
        assert changed == 1
    finally:
        conn.close()
    out = await run_acks(client, hub_home, role_tokens, *nodes.args())
    assert out.code == EXIT_FAILED, out.stdout
    mismatches = [f for f in findings(out) if f["rule"] == "TotalsMismatch"]
    assert expected in [f["message"] for f in mismatches]
    assert all(f["file"] == f"list {LIST}" for f in mismatches)


async def test_the_auditor_role_alone_reads_the_hubs_totals(
    client: Client, hub_home: Path, role_tokens: dict[str, str], nodes: Nodes
) -> None:
    out = await run_acks(client, hub_home, role_tokens, *nodes.args(), viewer=False)
    assert out.code == 0, out.stdout
    assert findings(out) == []
    assert out.json()["acks"]["verified"] == 4
    assert out.json()["acks"]["totals"][LIST]["list"] == EXPECTED


async def test_a_token_that_may_not_read_the_totals_leaves_the_audit_incomplete(
    client: Client, hub_home: Path, role_tokens: dict[str, str], nodes: Nodes
) -> None:
    out = await run_acks(
        client, hub_home, role_tokens, *nodes.args(), "--viewer-token", role_tokens["publisher"]
    )
    assert out.code == EXIT_INCOMPLETE, out.stdout
    (finding,) = findings(out)
    assert (finding["file"], finding["rule"]) == ("v1/admin/status", "Unreadable")
    assert "HTTP 403" in finding["message"]
    assert out.json()["acks"]["verified"] == 4, "the signatures were still all checked"


async def test_a_node_without_a_key_given_is_checked_with_the_key_the_hub_enrolled(
    client: Client, hub_home: Path, role_tokens: dict[str, str], nodes: Nodes
) -> None:
    out = await run_acks(client, hub_home, role_tokens, "--node-key", f"platform-a={nodes.pem_a}")
    assert out.code == 0, out.stdout
    assert out.json()["acks"]["keys_from_hub"] == [OTHER_NODE]
    assert out.json()["acks"]["verified"] == 4


async def test_a_hub_that_swaps_a_nodes_enrolled_key_is_caught_by_its_acks(
    client: Client, hub_home: Path, role_tokens: dict[str, str], nodes: Nodes
) -> None:
    """Without the platform's key the hub's record is used, and a swapped one fails."""
    stranger = SigningKey.generate()
    with db(hub_home) as conn:
        conn.execute(
            "UPDATE nodes SET public_key = ? WHERE id = ?", [stranger.public.raw.hex(), OTHER_NODE]
        )
        conn.execute(  # and the key history the operator API lists (PROTOCOL.md §10.4.1)
            "UPDATE node_keys SET public_key = ? WHERE node = ?",
            [stranger.public.raw.hex(), OTHER_NODE],
        )
    out = await run_acks(client, hub_home, role_tokens, "--node-key", f"platform-a={nodes.pem_a}")
    assert out.code == EXIT_FAILED, out.stdout
    signature = [f for f in findings(out) if f["rule"] == "SignatureError"]
    assert [f["file"] for f in signature] == [f"ack #4 ({OTHER_NODE}, {LIST}, seq 1)"]
    # Given out of band, the platform's own key exposes the swap itself.
    out = await run_acks(client, hub_home, role_tokens, *nodes.args())
    assert out.code == EXIT_FAILED, out.stdout
    assert any(
        f["file"] == f"node {OTHER_NODE}" and "the hub enrolled key" in f["message"]
        for f in findings(out)
    )


async def test_acks_of_a_node_without_any_key_are_unverifiable(
    client: Client, hub_home: Path, role_tokens: dict[str, str], nodes: Nodes
) -> None:
    """A token that may not list nodes, and no key given: that node's acks are unchecked."""
    out = await run_acks(
        client,
        hub_home,
        role_tokens,
        "--node-key",
        f"platform-a={nodes.pem_a}",
        "--viewer-token",
        role_tokens["publisher"],
    )
    assert out.code == EXIT_INCOMPLETE, out.stdout
    rules = {f["rule"] for f in findings(out)}
    assert "Unverifiable" in rules
    assert any(f"--node-key {OTHER_NODE}=FILE" in f["message"] for f in findings(out))


async def test_acks_needs_the_hubs_url_and_a_token(
    client: Client, hub_home: Path, tmp_path: Path
) -> None:
    pin = pin_of(hub_home)
    no_token = await audit_async("acks", base_url(client), "--root-sha256", pin)
    assert (no_token.code, no_token.stdout) == (1, "")
    assert "auditor role" in no_token.stderr
    folder = await audit_async("acks", tmp_path, "--root-sha256", pin, "--token", "t")
    assert folder.code == 1
    assert "give the hub's URL" in folder.stderr
