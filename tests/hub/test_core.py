"""The hub's core rules, on a real hub: SQLite files, Ed25519 keys, the protocol's trust rules.

Every check of published bytes goes through ``tests.hub.node_view``, which
accepts only what a node would accept from root v1 pinned by its SHA-256.
"""

from __future__ import annotations

import hashlib
import sqlite3
import stat
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from hub.core import AckReceipt, Hub, Principal
from hub.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized, Unprocessable
from hub.intake import Intake
from protocol import (
    AppliedVersion,
    Counts,
    ListState,
    Publisher,
    SignatureError,
    SigningKey,
    StateDigest,
    checkpoint_path,
    header_path,
    sign_ack,
    snapshot_path,
)
from protocol.checkpoint import SignedCheckpoint
from protocol.merkle import EMPTY_ROOT
from protocol.root import ROLE_NAMES
from tests.hub.node_view import NodeView, from_hub

LIST = "tid-md5"


class Clock:
    """An injectable clock that tests move forward by hand."""

    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: int = 60) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def md5(label: object) -> bytes:
    return hashlib.md5(str(label).encode(), usedforsecurity=False).digest()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hub(tmp_path: Path, clock: Clock) -> Iterator[Hub]:
    """A hub with one md5 list (snapshot every 3 versions) and nothing published."""
    hub = Hub.init(tmp_path / "hub", "hub.test", now=clock)
    hub.roots.create_list(LIST, "md5", label="tid", snapshot_every=3)
    yield hub
    hub.close()


def publish(
    hub: Hub, clock: Clock, *, adds: Sequence[bytes] = (), removes: Sequence[bytes] = ()
) -> int:
    hub.lists.stage(LIST, adds=[Intake(h) for h in adds], removes=list(removes))
    clock.advance()
    results = hub.publishing.publish([LIST])
    assert len(results) == 1
    return int(results[0].version)


def node_of(hub: Hub) -> NodeView:
    return NodeView(from_hub(hub), hub.keys.root_sha256(1))


def count_rows(hub: Hub, table: str) -> int:
    return hub.db.table(table).count


# -- everything published verifies ----------------------------------------------------------


def test_every_published_version_verifies_for_an_incremental_node(hub: Hub, clock: Clock) -> None:
    node = node_of(hub)
    present: set[bytes] = set()
    for round_ in range(7):
        adds = [md5(f"{round_}-{i}") for i in range(5)]
        removes = sorted(present)[:2]
        publish(hub, clock, adds=adds, removes=removes)
        present = (present | set(adds)) - set(removes)
        if round_ == 3:  # a root change in the middle: a second list
            hub.roots.create_list("tid-sha256", "sha256")
        state = node.update(LIST, now=clock())
        assert state == ListState.from_hashes(16, present)
        assert state == hub.lists.state(LIST)


def test_a_new_node_bootstraps_from_the_newest_snapshot(hub: Hub, clock: Clock) -> None:
    for round_ in range(7):
        publish(hub, clock, adds=[md5(f"{round_}-{i}") for i in range(3)])
    state, base = node_of(hub).bootstrap(LIST, now=clock())
    assert base == 6
    assert state == hub.lists.state(LIST)


def test_a_new_node_replaying_from_version_one_reaches_the_same_state(
    hub: Hub, clock: Clock
) -> None:
    for round_ in range(4):
        publish(hub, clock, adds=[md5(round_)], removes=[md5(round_ - 1)] if round_ else [])
    assert node_of(hub).update(LIST, now=clock()) == hub.lists.state(LIST)


def test_a_new_list_has_a_size_0_checkpoint_that_a_node_verifies(hub: Hub, clock: Clock) -> None:
    """Declared, nothing published: the checkpoint is there, of the empty tree (§11.1)."""
    found = hub.files.get(checkpoint_path(LIST))
    assert found is not None, "a declared list has a checkpoint from its creation"
    data, immutable = found
    assert not immutable
    note = SignedCheckpoint.from_bytes(data)
    assert note.checkpoint.origin == f"hub.test/lists/{LIST}"
    assert (note.checkpoint.size, note.checkpoint.root_hash) == (0, EMPTY_ROOT)
    node = node_of(hub)
    assert node.update(LIST, now=clock()) == ListState(16)
    assert node.lists[LIST][1].version == 0
    assert node.lists[LIST][1].checkpoint == data


def test_a_hub_from_before_size_0_checkpoints_issues_them_at_the_next_refresh(
    hub: Hub, clock: Clock
) -> None:
    """An upgraded hub whose empty list never had a checkpoint: the next refresh (the
    scheduler's, or ``hashhub refresh``) signs one, like every other list's."""
    path = checkpoint_path(LIST)
    hub.db.execute("DROP TRIGGER files_no_delete")  # the state an older hub left behind
    hub.db.execute("DELETE FROM files WHERE path = ?", [path])
    assert hub.files.get(path) is None
    clock.advance(3600)

    assert hub.checkpoints.refresh() == 1

    found = hub.files.get(path)
    assert found is not None
    note = SignedCheckpoint.from_bytes(found[0])
    assert (note.checkpoint.size, note.checkpoint.root_hash) == (0, EMPTY_ROOT)
    assert node_of(hub).update(LIST, now=clock()) == ListState(16)


def test_snapshot_is_written_every_snapshot_every_versions(hub: Hub, clock: Clock) -> None:
    for round_ in range(7):
        publish(hub, clock, adds=[md5(round_)])
    written = [v for v in range(1, 8) if hub.files.get(snapshot_path(LIST, v))]
    assert written == [3, 6]
    snapshot = hub.files.get(snapshot_path(LIST, 6))
    header = hub.files.get(header_path(LIST, 6))
    assert snapshot is not None
    assert header is not None
    assert hashlib.sha256(snapshot[0]).hexdigest().encode() in header[0]


# -- staging rules ----------------------------------------------------------------------------


def test_last_staged_operation_on_a_hash_wins(hub: Hub, clock: Clock) -> None:
    a, b, c = md5("a"), md5("b"), md5("c")
    hub.lists.stage(LIST, adds=[Intake(a), Intake(b)])
    hub.lists.stage(LIST, removes=[a])
    hub.lists.stage(LIST, adds=[Intake(c)])
    hub.lists.stage(LIST, removes=[c])
    hub.lists.stage(LIST, adds=[Intake(c)])
    [result] = hub.publishing.publish()
    assert (result.adds, result.removes) == (2, 0)
    assert set(hub.lists.state(LIST)) == {b, c}


def test_removes_of_absent_and_adds_of_present_hashes_are_dropped(hub: Hub, clock: Clock) -> None:
    a, b = md5("a"), md5("b")
    publish(hub, clock, adds=[a])
    hub.lists.stage(LIST, adds=[Intake(a), Intake(b)], removes=[md5("never added")])
    [result] = hub.publishing.publish()
    assert (result.version, result.adds, result.removes) == (2, 1, 0)


def test_a_publish_of_only_noops_makes_no_version(hub: Hub, clock: Clock) -> None:
    a = md5("a")
    publish(hub, clock, adds=[a])
    files, actions = count_rows(hub, "files"), count_rows(hub, "actions")
    hub.lists.stage(LIST, adds=[Intake(a)], removes=[md5("absent")])
    assert hub.publishing.publish() == []
    assert hub.lists.row(LIST)["version"] == 1
    assert count_rows(hub, "files") == files
    assert hub.lists.staged_count(LIST) == 0
    assert [a.action for a in hub.reports.actions(1)] == ["stage"]
    assert count_rows(hub, "actions") == actions + 1


def test_staging_a_hash_of_the_wrong_width_is_refused(hub: Hub) -> None:
    with pytest.raises(InvalidRequest, match="16 bytes"):
        hub.lists.stage(LIST, adds=[Intake(b"\x00" * 32)])
    assert hub.lists.staged_count(LIST) == 0


def test_staging_into_an_unknown_list_is_not_found(hub: Hub) -> None:
    with pytest.raises(NotFound):
        hub.lists.stage("no-such-list", adds=[Intake(md5("a"))])


def test_entries_keep_their_provenance_and_the_version_that_removed_them(
    hub: Hub, clock: Clock
) -> None:
    a = md5("a")
    hub.lists.stage(
        LIST,
        adds=[Intake(a, quality=90, category="A1", source="ncmec", submission_id="s-1")],
        who="alice",
    )
    hub.publishing.publish()
    publish(hub, clock, removes=[a])
    [row] = hub.db.query("SELECT * FROM entries WHERE hash = ?", [a])
    assert (row["source"], row["category"], row["submission_id"], row["quality"]) == (
        "ncmec",
        "A1",
        "s-1",
        90,
    )
    assert (row["who"], row["added_version"], row["removed_version"]) == ("alice", 1, 2)


# -- immutability -----------------------------------------------------------------------------


def test_the_database_refuses_to_update_or_delete_a_published_file(hub: Hub, clock: Clock) -> None:
    publish(hub, clock, adds=[md5("a")])
    before = hub.files.get("root/1.json")
    for path in ("root/1.json", header_path(LIST, 1)):
        with pytest.raises(sqlite3.IntegrityError, match="immutable"):
            hub.db.execute("UPDATE files SET bytes = x'00' WHERE path = ?", [path])
    with pytest.raises(sqlite3.IntegrityError, match="never deleted"):
        hub.db.execute("DELETE FROM files WHERE path = 'root/1.json'")
    assert hub.files.get("root/1.json") == before


def test_only_the_checkpoint_is_replaced_by_a_refresh(hub: Hub, clock: Clock) -> None:
    publish(hub, clock, adds=[md5("a")])
    before = {r["path"]: r["sha256"] for r in hub.db.query("SELECT path, sha256 FROM files")}
    clock.advance(3600)
    assert hub.checkpoints.refresh() == 1
    after = {r["path"]: r["sha256"] for r in hub.db.query("SELECT path, sha256 FROM files")}
    changed = {p for p in before if before[p] != after[p]}
    assert changed == {f"lists/{LIST}/checkpoint"}
    assert node_of(hub).update(LIST, now=clock()) == hub.lists.state(LIST)


def test_export_writes_the_tree_and_refuses_to_overwrite_a_differing_file(
    hub: Hub, clock: Clock, tmp_path: Path
) -> None:
    publish(hub, clock, adds=[md5("a")])
    target = tmp_path / "public"
    written = hub.files.export(target)
    assert written == count_rows(hub, "files")
    assert hub.files.export(target) == 1  # only the checkpoint is rewritten
    tampered = target / header_path(LIST, 1)
    tampered.write_bytes(b"{}")
    with pytest.raises(Conflict, match="refusing to overwrite"):
        hub.files.export(target)
    assert tampered.read_bytes() == b"{}"


# -- acks -------------------------------------------------------------------------------------


class Platform:
    """An enrolled node: its key, id, token's principal and next seq."""

    def __init__(self, hub: Hub, node_id: str = "platform-a", lists: tuple[str, ...] = (LIST,)):
        self.hub = hub
        self.key = SigningKey.generate()
        self.id = node_id
        self.token = hub.access.enrol_node(node_id, self.key.public, list(lists))
        self.principal = hub.access.authenticate(self.token)

    def ack(
        self,
        seq: int,
        *,
        list_id: str = LIST,
        counts: Counts | None = None,
        key: SigningKey | None = None,
        checkpoint_root: bytes | None = None,
        version: int | None = None,
        sent: datetime | None = None,
    ) -> tuple[bytes, bytes]:
        head = self.hub.lists.head(list_id)
        applied = AppliedVersion(
            version or head.version,
            checkpoint_root or head.compact.root(),
            head.state.digest() if version is None else StateDigest(0, "0" * 64),
        )
        return sign_ack(
            key=key or self.key,
            node=self.id,
            list_id=list_id,
            seq=seq,
            sent=sent or self.hub.now(),
            origin=self.hub.keys.root().origin(list_id),
            applied=applied,
            counts=counts or Counts(checked=1),
        )

    def send(self, seq: int, **kw: Any) -> AckReceipt:
        data, sig = self.ack(seq, **kw)
        return self.hub.acks.receive(self.principal, data, sig)


@pytest.fixture
def platform(hub: Hub, clock: Clock) -> Platform:
    publish(hub, clock, adds=[md5(i) for i in range(5)])
    return Platform(hub)


def test_a_valid_ack_is_stored_with_its_exact_bytes(hub: Hub, platform: Platform) -> None:
    data, sig = platform.ack(1, counts=Counts(checked=10, matched=2))
    receipt = hub.acks.receive(platform.principal, data, sig)
    assert (receipt.node, receipt.seq, receipt.duplicate) == ("platform-a", 1, False)
    [row] = hub.db.query("SELECT bytes, sig FROM acks")
    assert (row["bytes"], row["sig"]) == (data, sig)
    [entry] = hub.reports.status().lists
    assert entry.nodes[0].applied_version == 1
    assert entry.totals["matched"] == 2


def test_status_shows_the_lag_of_a_node_behind_the_head(
    hub: Hub, clock: Clock, platform: Platform
) -> None:
    platform.send(1)
    publish(hub, clock, adds=[md5("new")])
    publish(hub, clock, adds=[md5("newer")])
    [node] = hub.reports.status().lists[0].nodes
    assert (node.applied_version, node.lag) == (1, 2)


def test_ack_seq_must_strictly_increase(hub: Hub, platform: Platform) -> None:
    platform.send(1)
    platform.send(5)
    with pytest.raises(Conflict, match="not above"):
        platform.send(3)
    assert count_rows(hub, "acks") == 2
    assert hub.access.nodes()[0].last_seq == 5


def test_the_same_seq_with_the_same_bytes_is_an_idempotent_retry(
    hub: Hub, platform: Platform
) -> None:
    data, sig = platform.ack(1, counts=Counts(checked=4))
    hub.acks.receive(platform.principal, data, sig)
    again = hub.acks.receive(platform.principal, data, sig)
    assert again.duplicate
    assert count_rows(hub, "acks") == 1
    assert hub.reports.status().lists[0].totals["checked"] == 4


def test_the_same_seq_with_other_bytes_is_a_conflict(hub: Hub, platform: Platform) -> None:
    platform.send(1, counts=Counts(checked=4))
    with pytest.raises(Conflict, match="other bytes"):
        platform.send(1, counts=Counts(checked=5))
    assert count_rows(hub, "acks") == 1
    assert hub.reports.status().lists[0].totals["checked"] == 4


def test_an_unknown_node_is_unauthorized(hub: Hub, platform: Platform) -> None:
    data, sig = platform.ack(1)
    ghost = Principal("node", "node", "ghost", frozenset({LIST}))
    with pytest.raises(Unauthorized):
        hub.acks.receive(ghost, data, sig)
    with pytest.raises(Unauthorized):
        hub.access.authenticate("hhn_" + "x" * 43)
    assert count_rows(hub, "acks") == 0


def test_a_revoked_node_is_unauthorized(hub: Hub, platform: Platform) -> None:
    hub.access.revoke_node(platform.id)
    with pytest.raises(Unauthorized):
        hub.access.authenticate(platform.token)
    with pytest.raises(Unauthorized):
        platform.send(1)  # a principal resolved before the revocation
    assert count_rows(hub, "acks") == 0


def test_an_ack_for_a_list_not_granted_is_forbidden(hub: Hub, clock: Clock) -> None:
    hub.roots.create_list("other", "md5")
    publish(hub, clock, adds=[md5("a")])
    hub.lists.stage("other", adds=[Intake(md5("b"))])
    hub.publishing.publish(["other"])
    platform = Platform(hub)
    with pytest.raises(Forbidden, match="not granted"):
        platform.send(1, list_id="other")
    assert count_rows(hub, "acks") == 0


def test_an_operator_token_cannot_send_acks(hub: Hub, platform: Platform) -> None:
    operator = hub.access.authenticate(hub.access.create_operator_token("admin", "alice"))
    data, sig = platform.ack(1)
    with pytest.raises(Forbidden):
        hub.acks.receive(operator, data, sig)
    assert count_rows(hub, "acks") == 0


def test_an_ack_naming_another_node_than_its_token_is_forbidden(
    hub: Hub, platform: Platform
) -> None:
    other = Platform(hub, "platform-b")
    data, sig = platform.ack(1)
    other_key_ack = sign_ack(
        key=other.key,
        node="platform-a",
        list_id=LIST,
        seq=1,
        sent=hub.now(),
        origin=hub.keys.root().origin(LIST),
        applied=AppliedVersion(
            1, hub.lists.head(LIST).compact.root(), hub.lists.state(LIST).digest()
        ),
        counts=Counts(),
    )
    with pytest.raises(Forbidden, match="names node"):
        hub.acks.receive(other.principal, *other_key_ack)
    with pytest.raises(Unprocessable):  # platform-a's ack is not signed by platform-b's key
        hub.acks.receive(other.principal, data, sig)
    assert count_rows(hub, "acks") == 0


def test_an_ack_with_a_bad_signature_is_unprocessable(hub: Hub, platform: Platform) -> None:
    with pytest.raises(Unprocessable, match="ack refused"):
        platform.send(1, key=SigningKey.generate())
    data, sig = platform.ack(1)
    with pytest.raises(Unprocessable):
        hub.acks.receive(platform.principal, data.replace(b'"checked":1', b'"checked":9'), sig)
    assert count_rows(hub, "acks") == 0
    assert count_rows(hub, "evidence") == 0


def test_a_cosignature_of_a_root_never_published_is_kept_as_evidence(
    hub: Hub, platform: Platform
) -> None:
    forged_root = hashlib.sha256(b"a history the hub never published").digest()
    data, sig = platform.ack(1, checkpoint_root=forged_root)
    with pytest.raises(Unprocessable, match="never published"):
        hub.acks.receive(platform.principal, data, sig)
    assert count_rows(hub, "acks") == 0
    [evidence] = hub.evidence.items()
    assert (evidence.kind, evidence.node, evidence.list) == (
        "split_view",
        "platform-a",
        LIST,
    )
    assert evidence.detail["cosigned_root"] == forged_root.hex()
    [row] = hub.db.query("SELECT bytes, sig FROM evidence")
    assert (row["bytes"], row["sig"]) == (data, sig)
    assert hub.access.nodes()[0].last_seq == 0


def test_an_ack_of_a_version_never_published_is_unprocessable_and_kept_as_evidence(
    hub: Hub, platform: Platform
) -> None:
    """A node co-signing a size this hub never reached was shown a longer (forked) log."""
    with pytest.raises(Unprocessable, match=r"no published version 9.*evidence #1"):
        platform.send(1, version=9)
    assert count_rows(hub, "acks") == 0
    [evidence] = hub.evidence.items(include_bytes=True)
    assert (evidence.kind, evidence.node, evidence.list) == (
        "unpublished_version",
        "platform-a",
        LIST,
    )
    assert evidence.detail["version"] == 9
    assert hub.access.nodes()[0].last_seq == 0


# -- counters and flags -----------------------------------------------------------------------


def test_a_counter_reset_is_handled_as_prometheus_does(hub: Hub, platform: Platform) -> None:
    hashed = md5(0).hex()
    for seq, (checked, matched) in enumerate([(10, 4), (3, 1), (5, 2)], start=1):
        platform.send(seq, counts=Counts(checked=checked, hashes={hashed: {"matched": matched}}))
    [node] = hub.reports.status().lists[0].nodes
    assert node.counts["checked"] == 15
    assert hub.ledger.hash_counts(LIST)[hashed]["matched"] == 6


def test_counts_from_several_nodes_add_up(hub: Hub, platform: Platform) -> None:
    other = Platform(hub, "platform-b")
    platform.send(1, counts=Counts(checked=7, actioned=1))
    other.send(1, counts=Counts(checked=5, blocked=2))
    totals = hub.reports.status().lists[0].totals
    assert (totals["checked"], totals["actioned"], totals["blocked"]) == (12, 1, 2)


def test_hashes_with_many_false_positives_or_outlying_matches_are_flagged(
    hub: Hub, clock: Clock, platform: Platform
) -> None:
    publish(hub, clock, adds=[md5("bad"), md5("collider"), md5("border")])
    normal = {md5(i).hex(): {"matched": 1} for i in range(5)}
    bad, collider, borderline = md5("bad").hex(), md5("collider").hex(), md5("border").hex()
    hashes = {
        **normal,
        bad: {"matched": 3, "false_positive": 3},
        collider: {"matched": 60},
        borderline: {"matched": 9, "false_positive": 2},
    }
    platform.send(1, counts=Counts(matched=77, false_positive=5, hashes=hashes))
    # Flagging needs flag_min_nodes (2) nodes: the rule must hold without the one that
    # contributed most, so a second node sees as much on its own.
    second = {bad: {"matched": 3, "false_positive": 3}, collider: {"matched": 60}}
    Platform(hub, "platform-b").send(1, counts=Counts(matched=63, false_positive=3, hashes=second))
    flagged = {f.hash: f.reasons for f in hub.ledger.flagged_hashes(LIST)}
    assert flagged == {
        bad: ["false positives"],
        collider: ["matches far above the list's median"],
    }
    assert [f.hash for f in hub.reports.status().lists[0].flagged] == [bad, collider]
    publish(hub, clock, removes=[md5("bad")])  # the operator retracts the bad hash
    assert [f.hash for f in hub.ledger.flagged_hashes(LIST)] == [collider]


# -- keys -------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_rotating_a_role_keeps_the_history_verifiable_from_root_v1(
    hub: Hub, clock: Clock, role: str
) -> None:
    publish(hub, clock, adds=[md5("before")])
    following = node_of(hub)
    following.update(LIST, now=clock())
    old = set(hub.keys.root().roles[role].keyids)
    clock.advance()
    root = hub.roots.rotate_key(role)
    assert old.isdisjoint(root.roles[role].keyids)
    assert len(root.roles[role].keyids) == len(old)
    publish(hub, clock, adds=[md5("after")])
    assert following.update(LIST, now=clock()) == hub.lists.state(LIST)
    assert node_of(hub).update(LIST, now=clock()) == hub.lists.state(LIST)
    listed = hub.keys.records()
    keys = {k.keyid: k for k in listed}
    assert all(keys[k].retired and not keys[k].in_root for k in old)
    assert all(keys[k].in_root and not keys[k].retired for k in root.roles[role].keyids)


def test_the_old_delta_key_cannot_sign_after_a_rotation(hub: Hub, clock: Clock) -> None:
    publish(hub, clock, adds=[md5("a")])
    following = node_of(hub)
    following.update(LIST, now=clock())
    old_root, old_delta = hub.keys.root(), hub.keys.signers("delta")
    hub.roots.rotate_key("delta")
    assert hub.keys.root().lists[LIST].first_version == 2
    # Only the delta key is rotated: the checkpoint and timestamp keys still verify.
    forged = Publisher(
        old_root,
        {
            "delta": old_delta,
            "checkpoint": hub.keys.signers("checkpoint"),
            "timestamp": hub.keys.signers("timestamp"),
        },
    )
    clock.advance()
    publication = forged.publish(hub.lists.head(LIST), adds=[md5("smuggled")], now=clock())
    honest = from_hub(hub)
    following.fetch = lambda path: publication.files.get(path) or honest(path)
    with pytest.raises(SignatureError, match="requires versions ≥ 2"):
        following.update(LIST, now=clock())
    assert md5("smuggled") not in following.lists[LIST][0]


def test_rotating_an_unknown_role_is_refused(hub: Hub) -> None:
    with pytest.raises(InvalidRequest, match="unknown role"):
        hub.roots.rotate_key("king")
    assert hub.keys.root().version == 2


# -- what is stored -----------------------------------------------------------------------------


def test_the_action_log_is_append_only(hub: Hub) -> None:
    assert count_rows(hub, "actions") >= 2
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        hub.db.execute("UPDATE actions SET who = 'mallory'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        hub.db.execute("DELETE FROM actions")
    assert {a.who for a in hub.reports.actions()} != {"mallory"}


def test_private_keys_are_0600_files_and_never_in_the_database(hub: Hub, clock: Clock) -> None:
    publish(hub, clock, adds=[md5("a")])
    hub.roots.rotate_key("delta")
    token = hub.access.create_operator_token("viewer", "bob")
    hub.db.execute("PRAGMA wal_checkpoint(FULL)")
    home = hub.home
    stored = b"".join(
        p.read_bytes() for p in home.iterdir() if p.is_file() and p.name.startswith("hub.db")
    )
    key_files = sorted((home / "keys").iterdir())
    assert len(key_files) == 7  # 3 root, delta (two), checkpoint, timestamp
    assert stat.S_IMODE((home / "keys").stat().st_mode) == 0o700
    for path in key_files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
        pem = path.read_bytes()
        private = serialization.load_pem_private_key(pem, password=None)
        raw = private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        assert raw not in stored
        assert raw.hex().encode() not in stored
        assert pem.splitlines()[1] not in stored
    assert token.encode() not in stored
