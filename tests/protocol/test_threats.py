"""One test per threat of docs/design.md §6 that the protocol layer must defeat.

Each test makes the simulated hub (or a mirror in front of it) serve something
hostile, runs a node's whole update, and asserts two things: the specific error
class, and that the node kept exactly what it had (state, trust record, trusted
roots), so the last good list is still enforced. Where there is evidence (two notes
for one tree size) the error carries it.

Threats that live in the node (slow retrieval, a mirror's HTTP behaviour, crash in
the middle of an apply, forged or replayed acks at the hub) are tested there; here,
a wrong byte from anywhere is caught by a hash or a signature.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from protocol import (
    AppliedVersion,
    ConsistencyError,
    Counts,
    EquivocationError,
    ExpiredError,
    FreezeError,
    InvalidListIdError,
    LimitError,
    Limits,
    ListState,
    ListTrust,
    MalformedError,
    MissingFileError,
    Policy,
    ProtocolError,
    RollbackError,
    SignatureError,
    SignatureSidecar,
    SignedCheckpoint,
    StateDigest,
    StateMismatchError,
    TrustedHub,
    WrongTypeError,
    body_path,
    checkpoint_path,
    header_path,
    root_path,
    sig_path,
    sign_ack,
    snapshot_path,
)
from protocol.keys import Signature
from tests.protocol.simulator import LIST, OTHER_LIST, T0, HubSimulator, Verifier, fixed_key, md5

CHECKPOINT = checkpoint_path(LIST)
ROOT2 = root_path(2)


def assert_rejected(
    node: Verifier,
    now: datetime,
    error: type[ProtocolError],
    match: str | None = None,
    **kwargs: Any,
) -> pytest.ExceptionInfo[ProtocolError]:
    """The update raises ``error`` (naming ``match``) and the node keeps exactly what it had.

    ``match`` pins the rule where a later rule would raise the same class anyway.
    """
    kept = node.kept()
    with pytest.raises(error, match=match) as info:
        node.update(now, **kwargs)
    assert node.kept() == kept
    return info


@pytest.fixture
def synced(sim: HubSimulator, node: Verifier) -> Verifier:
    """A node that trusts v3 of ``LIST`` (a non-empty last good list)."""
    sim.publish_steps(3)
    node.update(sim.now)
    assert node.trust.version == 3
    return node


def _hp(version: int) -> str:
    return header_path(LIST, version)


def _body_path_of(sim: HubSimulator, version: int) -> str:
    header = json.loads(sim.files[_hp(version)])
    return body_path(LIST, header["body"]["sha256"])


# -- tampering: a wrong byte from the hub, a mirror or the wire ---------------------------


def test_rejects_tampered_header_byte(sim: HubSimulator, synced: Verifier) -> None:
    sim.publish_steps(1)
    sim.tamper(_hp(4))
    assert_rejected(synced, sim.now, SignatureError)


def test_rejects_tampered_body_byte(sim: HubSimulator, synced: Verifier) -> None:
    sim.publish_steps(1)
    sim.tamper(_body_path_of(sim, 4))
    assert_rejected(synced, sim.now, ConsistencyError)


def test_rejects_tampered_header_signature(sim: HubSimulator, synced: Verifier) -> None:
    sim.publish_steps(1)
    sim.tamper_signature(_hp(4))
    assert_rejected(synced, sim.now, SignatureError)


def test_rejects_tampered_checkpoint_size(sim: HubSimulator, synced: Verifier) -> None:
    sim.publish_steps(1)
    data = sim.files[CHECKPOINT]
    sim.tamper(CHECKPOINT, data.index(b"\n") + 1)  # size 4 → 5
    assert_rejected(synced, sim.now, SignatureError)


def test_rejects_tampered_root_byte(sim: HubSimulator, synced: Verifier) -> None:
    sim.rotate()
    sim.tamper(ROOT2)
    assert_rejected(synced, sim.now, SignatureError)


# -- signatures by the wrong role, duplicated or too few ----------------------------------


def test_rejects_header_signed_by_checkpoint_role(sim: HubSimulator, synced: Verifier) -> None:
    sim.publish_steps(1)
    sim.resign(_hp(4), sim.files[_hp(4)], sim.keys["checkpoint"])
    assert_rejected(synced, sim.now, SignatureError)


def test_rejects_root_signed_by_timestamp_role(sim: HubSimulator, synced: Verifier) -> None:
    sim.rotate(sign_with=sim.keys["timestamp"])
    assert_rejected(synced, sim.now, SignatureError)


def test_duplicate_signatures_by_one_key_count_once_against_threshold_two() -> None:
    sim = HubSimulator(key_counts={"delta": 2}, thresholds={"delta": 2})
    node = Verifier(sim.files)
    sim.publish_steps(1)
    node.update(sim.now)
    sim.publish_steps(1)
    one = sim.keys["delta"][0]
    data = sim.files[_hp(2)]
    twice = SignatureSidecar((Signature(one.keyid, one.sign(data)),) * 2)
    sim.replace(sig_path(_hp(2)), twice.to_bytes())
    assert_rejected(node, sim.now, SignatureError)


def test_rejects_header_below_delta_threshold() -> None:
    sim = HubSimulator(key_counts={"delta": 2}, thresholds={"delta": 2})
    node = Verifier(sim.files)
    sim.publish_steps(1)
    node.update(sim.now)
    sim.publish_steps(1)
    sim.resign(_hp(2), sim.files[_hp(2)], sim.keys["delta"][:1])
    assert_rejected(node, sim.now, SignatureError)


@pytest.mark.parametrize("role", ["checkpoint", "timestamp"])
def test_rejects_checkpoint_below_threshold(role: str) -> None:
    sim = HubSimulator(key_counts={role: 2}, thresholds={role: 2})
    node = Verifier(sim.files)
    sim.publish_steps(1)
    node.update(sim.now)
    sim.publish_steps(1)
    note = SignedCheckpoint.from_bytes(sim.files[CHECKPOINT])
    name = note.checkpoint.origin if role == "checkpoint" else "hub.example/timestamp"
    lines = [line for line in note.signatures if line.name == name]
    assert len(lines) == 2
    kept = tuple(line for line in note.signatures if line is not lines[0])
    sim.replace(CHECKPOINT, SignedCheckpoint(note.checkpoint, kept).to_bytes())
    assert_rejected(node, sim.now, SignatureError)


def test_duplicate_checkpoint_lines_by_one_key_count_once() -> None:
    sim = HubSimulator(key_counts={"checkpoint": 2}, thresholds={"checkpoint": 2})
    node = Verifier(sim.files)
    sim.publish_steps(1)
    node.update(sim.now)
    sim.publish_steps(1)
    note = SignedCheckpoint.from_bytes(sim.files[CHECKPOINT])
    first = next(line for line in note.signatures if line.name == note.checkpoint.origin)
    doubled = (first, first, *(x for x in note.signatures if x.name != first.name))
    sim.replace(CHECKPOINT, SignedCheckpoint(note.checkpoint, doubled).to_bytes())
    assert_rejected(node, sim.now, SignatureError)


# -- rollback ---------------------------------------------------------------------------


def test_rejects_checkpoint_smaller_than_trusted(sim: HubSimulator, synced: Verifier) -> None:
    later = sim.now + timedelta(minutes=30)
    sim.replace(CHECKPOINT, sim.checkpoint_for(size=2, at=later))
    assert_rejected(synced, later, RollbackError)


def test_rejects_checkpoint_cosigned_before_the_trusted_one(
    sim: HubSimulator, synced: Verifier
) -> None:
    older = sim.now - timedelta(minutes=30)
    sim.replace(CHECKPOINT, sim.checkpoint_for(size=3, at=older))
    assert_rejected(synced, sim.now, RollbackError)


def test_rejects_replayed_older_root_as_the_next_version(
    sim: HubSimulator, synced: Verifier
) -> None:
    sim.rotate()
    sim.rotate()
    synced.update(sim.now)
    assert len(synced.roots) == 3
    sim.replace(root_path(4), sim.files[ROOT2])
    sim.replace(sig_path(root_path(4)), sim.files[sig_path(ROOT2)])
    assert_rejected(synced, sim.now, RollbackError)


def test_rejects_header_replayed_as_the_next_version(sim: HubSimulator, synced: Verifier) -> None:
    sim.publish_steps(1)
    sim.replace(_hp(4), sim.files[_hp(2)])
    sim.replace(sig_path(_hp(4)), sim.files[sig_path(_hp(2))])
    assert_rejected(synced, sim.now, ConsistencyError, match="carries version 2")


def test_rejects_header_naming_a_root_version_newer_than_trusted(
    sim: HubSimulator, synced: Verifier
) -> None:
    """Signed by the (unchanged) delta key, the header proves the hub claims root v9; the
    walk ended at v1, so the verifier names the root file it could not find (§13.4 step 6)."""
    sim.publish_steps(1)

    def name_root_9(header: dict[str, Any]) -> None:
        header["root_version"] = 9

    sim.rewrite_json(_hp(4), name_root_9, keys=sim.keys["delta"])
    info = assert_rejected(
        synced, sim.now, MissingFileError, match=r"^root/2\.json: .*names root v9"
    )
    assert isinstance(info.value, MissingFileError)
    assert info.value.path == "root/2.json"
    assert "root walk ended at v1" in str(info.value)


def test_rejects_header_naming_an_older_root_than_the_previous_header(
    sim: HubSimulator, synced: Verifier
) -> None:
    sim.rotate()  # same keys; headers from now on name root v2
    sim.publish_steps(2)

    def name_root_1(header: dict[str, Any]) -> None:
        header["root_version"] = 1

    sim.rewrite_json(_hp(5), name_root_1, keys=sim.keys["delta"])
    assert_rejected(synced, sim.now, RollbackError)


# -- freeze and clock skew --------------------------------------------------------------


def test_rejects_stale_checkpoint_older_than_max_age(sim: HubSimulator, synced: Verifier) -> None:
    max_age = timedelta(seconds=sim.root.policy.max_checkpoint_age)
    synced.update(sim.now + max_age)  # still fresh at exactly the maximum age
    assert_rejected(synced, sim.now + max_age + timedelta(seconds=1), FreezeError)


def test_rejects_checkpoint_from_beyond_the_allowed_clock_skew(
    sim: HubSimulator, synced: Verifier
) -> None:
    node_clock = sim.now
    skew = timedelta(seconds=sim.root.policy.max_clock_skew)
    sim.refresh(at=node_clock + skew + timedelta(seconds=1))
    assert_rejected(synced, node_clock, FreezeError)


def test_accepts_checkpoint_within_the_allowed_clock_skew(
    sim: HubSimulator, synced: Verifier
) -> None:
    node_clock = sim.now
    sim.refresh(at=node_clock + timedelta(seconds=sim.root.policy.max_clock_skew))
    _, trust = synced.update(node_clock)
    assert trust.checkpoint == sim.files[CHECKPOINT]


def test_rejects_header_created_beyond_the_allowed_clock_skew(
    sim: HubSimulator, synced: Verifier
) -> None:
    node_clock = sim.now
    sim.publish(adds=[md5("future")], at=node_clock + timedelta(hours=1))
    sim.refresh(at=node_clock)  # a fresh checkpoint over the future-dated header
    assert_rejected(synced, node_clock, FreezeError)


def test_rejects_update_under_an_expired_root() -> None:
    sim = HubSimulator(expires=T0 + timedelta(hours=10))
    node = Verifier(sim.files)
    sim.publish_steps(3)
    node.update(sim.now)
    sim.publish_steps(1, LIST)
    sim.refresh(at=T0 + timedelta(hours=11))
    assert_rejected(node, sim.now, ExpiredError)


# -- fast-forward, equivocation, split view, history rewrite ------------------------------


def test_inflated_checkpoint_without_headers_stalls_but_never_becomes_state(
    sim: HubSimulator, synced: Verifier
) -> None:
    forged_root = hashlib.sha256(b"no such tree").digest()
    sim.replace(CHECKPOINT, sim.checkpoint_for(size=9, root_hash=forged_root, at=sim.now))
    for _ in range(2):  # every retry stalls at the same rule
        assert_rejected(synced, sim.now, ConsistencyError, match="must verify")


def test_inflated_checkpoint_that_headers_do_not_reproduce_is_rejected(
    sim: HubSimulator, synced: Verifier
) -> None:
    sim.publish_steps(2)
    honest = sim.files[CHECKPOINT]
    forged_root = hashlib.sha256(b"not the log").digest()
    sim.replace(CHECKPOINT, sim.checkpoint_for(size=5, root_hash=forged_root, at=sim.now))
    assert_rejected(synced, sim.now, ConsistencyError, match="do not reproduce")
    sim.replace(CHECKPOINT, honest)
    assert synced.update(sim.now)[1].version == 5  # the honest checkpoint goes through


def test_rejects_second_root_for_trusted_size_and_keeps_both_notes(
    sim: HubSimulator, synced: Verifier
) -> None:
    trusted = synced.trust.checkpoint
    forged = sim.checkpoint_for(size=3, root_hash=hashlib.sha256(b"fork").digest())
    sim.replace(CHECKPOINT, forged)
    info = assert_rejected(synced, sim.now, EquivocationError)
    assert isinstance(info.value, EquivocationError)
    assert info.value.trusted == trusted
    assert info.value.presented == forged


def test_split_view_is_revealed_by_comparing_the_two_nodes_checkpoints() -> None:
    hub_a, hub_b = HubSimulator(), HubSimulator()  # one hub, one set of keys …
    assert hub_a.files[root_path(1)] == hub_b.files[root_path(1)]
    for hub, extra in ((hub_a, "for-a"), (hub_b, "for-b")):  # … showing two histories
        hub.publish(adds=[md5("shared")])
        hub.publish(adds=[md5(extra)])
    node_a, node_b = Verifier(hub_a.files), Verifier(hub_b.files)
    _, trust_a = node_a.update(hub_a.now)
    _, trust_b = node_b.update(hub_b.now)
    assert trust_a.version == trust_b.version == 2  # each accepts its own history …
    assert trust_a.checkpoint != trust_b.checkpoint  # … and one size has two roots
    assert trust_a.compact.root() != trust_b.compact.root()

    hub_a.replace(CHECKPOINT, trust_b.checkpoint)  # B's receipt shown to A
    info = assert_rejected(node_a, hub_a.now, EquivocationError)
    assert isinstance(info.value, EquivocationError)
    assert (info.value.trusted, info.value.presented) == (trust_a.checkpoint, trust_b.checkpoint)


def test_rejects_rewritten_history_shorter_than_trusted(
    sim: HubSimulator, synced: Verifier
) -> None:
    sim.rewind(LIST, 1)
    sim.publish(adds=[md5("rewritten v2")])
    assert_rejected(synced, sim.now, RollbackError)


def test_rejects_rewritten_history_of_the_trusted_size(sim: HubSimulator, synced: Verifier) -> None:
    sim.rewind(LIST, 1)
    sim.publish(adds=[md5("rewritten v2")])
    sim.publish(adds=[md5("rewritten v3")])
    assert_rejected(synced, sim.now, EquivocationError)


def test_rejects_rewritten_history_longer_than_trusted(sim: HubSimulator, synced: Verifier) -> None:
    sim.rewind(LIST, 1)
    for version in (2, 3, 4):
        sim.publish(adds=[md5(f"rewritten v{version}")])
    assert_rejected(synced, sim.now, ConsistencyError, match="prev")


# -- mix-and-match ----------------------------------------------------------------------


def test_rejects_body_of_another_version(sim: HubSimulator, synced: Verifier) -> None:
    sim.publish_steps(2)
    v4, v5 = _body_path_of(sim, 4), _body_path_of(sim, 5)
    assert len(sim.files[v4]) == len(sim.files[v5])  # so only the hash can tell
    sim.replace(v5, sim.files[v4])
    assert_rejected(synced, sim.now, ConsistencyError)


def test_rejects_header_of_another_list_of_the_same_type(
    sim: HubSimulator, synced: Verifier
) -> None:
    sim.publish_steps(4, OTHER_LIST)
    sim.publish_steps(1)
    other = header_path(OTHER_LIST, 4)
    sim.replace(_hp(4), sim.files[other])
    sim.replace(sig_path(_hp(4)), sim.files[sig_path(other)])
    assert_rejected(synced, sim.now, ConsistencyError, match="belongs to list")


def test_rejects_snapshot_of_another_version() -> None:
    sim = HubSimulator(snapshot_every=2)
    sim.publish(adds=[md5(f"start {i}") for i in range(3)])
    for version in (2, 3, 4):  # the count stays 3, so snapshots 2 and 4 are the same length
        sim.publish(removes=[md5(f"start {version - 2}")], adds=[md5(f"next {version}")])
    sim.replace(snapshot_path(LIST, 4), sim.files[snapshot_path(LIST, 2)])
    node = Verifier(sim.files)
    assert_rejected(node, sim.now, ConsistencyError, use_snapshot=True)


# -- roots: rotation mistakes, unknown algorithms ----------------------------------------


def test_rejects_root_rotation_signed_only_by_the_new_root_keys(
    sim: HubSimulator, synced: Verifier
) -> None:
    new = sim.new_keys("root")
    sim.rotate(keys={"root": new}, sign_with=new)
    assert_rejected(synced, sim.now, SignatureError)


def test_rejects_root_rotation_signed_only_by_the_old_root_keys(
    sim: HubSimulator, synced: Verifier
) -> None:
    old = sim.keys["root"]
    sim.rotate(keys={"root": sim.new_keys("root")}, sign_with=old)
    assert_rejected(synced, sim.now, SignatureError)


def test_rejects_root_rotation_below_its_own_new_threshold(
    sim: HubSimulator, synced: Verifier
) -> None:
    old = sim.keys["root"]
    new = sim.new_keys("root", 2)
    sim.rotate(keys={"root": new}, thresholds={"root": 2}, sign_with=[*old, new[0]])
    assert_rejected(synced, sim.now, SignatureError)


def test_rejects_new_header_signed_by_a_delta_key_revoked_by_rotation(
    sim: HubSimulator, synced: Verifier
) -> None:
    revoked = sim.keys["delta"]
    sim.rotate(keys={"delta": sim.new_keys("delta")})
    # The holder of the revoked key (and the online checkpoint keys) appends v4 under root 1.
    sim.publish_forged(adds=[md5("planted")], root_version=1, sign_with=revoked)
    kept = synced.kept()
    with pytest.raises(SignatureError):
        synced.update(sim.now)
    assert synced.kept() == kept


def test_rejects_root_rotation_that_changes_a_list_hash_type(
    sim: HubSimulator, synced: Verifier
) -> None:
    sim.rotate()

    def to_sha256(root: dict[str, Any]) -> None:
        root["lists"][LIST].update(hash_type="sha256", hash_length=32)

    sim.rewrite_json(ROOT2, to_sha256, keys=sim.keys["root"])
    assert_rejected(synced, sim.now, ConsistencyError)


def test_rejects_root_declaring_an_unknown_hash_algorithm(
    sim: HubSimulator, synced: Verifier
) -> None:
    sim.rotate()

    def add_sha1_list(root: dict[str, Any]) -> None:
        spec = dict(root["lists"][LIST], hash_type="sha1", hash_length=20)
        root["lists"]["tid-sha1"] = spec

    sim.rewrite_json(ROOT2, add_sha1_list, keys=sim.keys["root"])
    info = assert_rejected(synced, sim.now, MalformedError)
    assert "sha1" in str(info.value)


def test_rejects_root_with_an_unknown_key_algorithm(sim: HubSimulator, synced: Verifier) -> None:
    sim.rotate()

    def rsa_key(root: dict[str, Any]) -> None:
        for key in root["keys"].values():
            key["keytype"] = "rsa"

    sim.rewrite_json(ROOT2, rsa_key, keys=sim.keys["root"])
    assert_rejected(synced, sim.now, MalformedError)


def test_pinned_root_with_an_unknown_hash_algorithm_is_refused(sim: HubSimulator) -> None:
    def to_sha1(root: dict[str, Any]) -> None:
        root["lists"][LIST].update(hash_type="sha1", hash_length=20)

    data = sim.rewrite_json(root_path(1), to_sha1, keys=sim.keys["root"])
    with pytest.raises(MalformedError, match="sha1"):
        TrustedHub(data, sim.files[sig_path(root_path(1))], now=sim.now)


# -- strict parsing: canonical form, types, list ids ------------------------------------


def test_rejects_validly_signed_non_canonical_header(sim: HubSimulator, synced: Verifier) -> None:
    sim.publish_steps(1)
    sim.rewrite_json(
        _hp(4),
        lambda header: None,
        keys=sim.keys["delta"],
        encode=lambda value: json.dumps(value, indent=1).encode(),
    )
    info = assert_rejected(synced, sim.now, MalformedError)
    assert info.type is MalformedError


def test_rejects_root_presented_as_a_header(sim: HubSimulator, synced: Verifier) -> None:
    sim.publish_steps(1)
    sim.resign(_hp(4), sim.files[root_path(1)], sim.keys["delta"])
    assert_rejected(synced, sim.now, WrongTypeError)


def test_rejects_ack_presented_as_a_header(sim: HubSimulator, synced: Verifier) -> None:
    sim.publish_steps(1)
    ack, _ = sign_ack(
        key=fixed_key("node-1"),
        node="node-1",
        list_id=LIST,
        seq=1,
        sent=sim.now,
        origin=sim.root.origin(LIST),
        applied=AppliedVersion(3, synced.trust.compact.root(), synced.trust.state),
        counts=Counts(),
    )
    sim.resign(_hp(4), ack, sim.keys["delta"])
    assert_rejected(synced, sim.now, WrongTypeError)


def test_rejects_header_presented_as_a_root(sim: HubSimulator, synced: Verifier) -> None:
    sim.resign(ROOT2, sim.files[_hp(1)], sim.keys["root"])
    assert_rejected(synced, sim.now, WrongTypeError)


def test_rejects_header_of_an_unknown_type_version(sim: HubSimulator, synced: Verifier) -> None:
    sim.publish_steps(1)

    def delta_v2(header: dict[str, Any]) -> None:
        header["_type"] = "hashhub.delta.v2"

    sim.rewrite_json(_hp(4), delta_v2, keys=sim.keys["delta"])
    assert_rejected(synced, sim.now, WrongTypeError)


def test_rejects_header_claiming_a_list_id_with_dot_dot(
    sim: HubSimulator, synced: Verifier
) -> None:
    sim.publish_steps(1)

    def escape(header: dict[str, Any]) -> None:
        header["list"] = "../x"

    sim.rewrite_json(_hp(4), escape, keys=sim.keys["delta"])
    assert_rejected(synced, sim.now, MalformedError)


def test_rejects_root_declaring_a_list_id_with_percent_encoding(
    sim: HubSimulator, synced: Verifier
) -> None:
    sim.rotate()

    def add_list(root: dict[str, Any]) -> None:
        root["lists"]["%2e%2e"] = dict(root["lists"][LIST])

    sim.rewrite_json(ROOT2, add_list, keys=sim.keys["root"])
    assert_rejected(synced, sim.now, InvalidListIdError)


UNSAFE_LIST_IDS = ["../x", "..", "a..b", "a/b", "/etc", "%2e%2e", "x%2fy", "A", "", ".hidden"]


@pytest.mark.parametrize("list_id", UNSAFE_LIST_IDS)
def test_path_builders_refuse_unsafe_list_ids(list_id: str) -> None:
    with pytest.raises(InvalidListIdError):
        checkpoint_path(list_id)
    with pytest.raises(InvalidListIdError):
        header_path(list_id, 1)
    with pytest.raises(InvalidListIdError):
        body_path(list_id, "0" * 64)
    with pytest.raises(InvalidListIdError):
        snapshot_path(list_id, 1)


@pytest.mark.parametrize("list_id", UNSAFE_LIST_IDS)
def test_list_trust_refuses_unsafe_list_ids(list_id: str) -> None:
    with pytest.raises(InvalidListIdError):
        ListTrust(list_id)
    stored = ListTrust(LIST).to_dict() | {"list": list_id}
    with pytest.raises(InvalidListIdError):
        ListTrust.from_dict(stored)


# -- endless data -----------------------------------------------------------------------

LIMITS = Limits()


@pytest.mark.parametrize(
    ("path", "cap"),
    [
        (_hp(4), LIMITS.header_bytes),
        (sig_path(_hp(4)), LIMITS.sig_bytes),
        (CHECKPOINT, LIMITS.checkpoint_bytes),
        (ROOT2, LIMITS.root_bytes),
        (sig_path(ROOT2), LIMITS.sig_bytes),
    ],
    ids=["header", "header-sidecar", "checkpoint", "root", "root-sidecar"],
)
def test_rejects_file_larger_than_its_cap_before_parsing(
    sim: HubSimulator, synced: Verifier, path: str, cap: int
) -> None:
    sim.rotate()
    sim.publish_steps(1)
    # Garbage that would be a MalformedError if it were parsed: the cap comes first.
    sim.replace(path, b"{" * (cap + 1))
    assert_rejected(synced, sim.now, LimitError)


def test_rejects_body_longer_than_its_header_declares(sim: HubSimulator, synced: Verifier) -> None:
    sim.publish_steps(1)
    path = _body_path_of(sim, 4)
    sim.replace(path, sim.files[path] + b"+" + b"0" * 32 + b"\n")
    assert_rejected(synced, sim.now, LimitError)


def test_rejects_body_declared_larger_than_the_policy_allows() -> None:
    sim = HubSimulator(policy=Policy(max_body_bytes=64))
    node = Verifier(sim.files)
    sim.publish(adds=[md5("one")])  # 20 + 34 bytes: within the cap
    node.update(sim.now)
    sim.publish(adds=[md5(f"many {i}") for i in range(3)])  # 20 + 3 × 34
    assert_rejected(node, sim.now, LimitError)


def test_rejects_snapshot_of_the_wrong_length() -> None:
    sim = HubSimulator(snapshot_every=3)
    sim.publish_steps(4)
    path = snapshot_path(LIST, 3)
    sim.replace(path, sim.files[path] + md5("one more"))
    node = Verifier(sim.files)
    assert_rejected(node, sim.now, LimitError, use_snapshot=True)


# -- state: local corruption and bodies that do not fit -----------------------------------


def test_rejects_update_when_local_state_differs_from_the_trusted_base(
    sim: HubSimulator, synced: Verifier
) -> None:
    synced.state = ListState.from_hashes(16, list(synced.state)[1:])  # a lost row on disk
    sim.publish_steps(1)
    assert_rejected(synced, sim.now, StateMismatchError)


def test_rejects_body_removing_an_absent_hash(sim: HubSimulator, synced: Verifier) -> None:
    sim.publish_forged(removes=[md5("never listed")])
    assert_rejected(synced, sim.now, StateMismatchError)


def test_rejects_body_adding_a_present_hash(sim: HubSimulator, synced: Verifier) -> None:
    present = next(iter(synced.state))
    sim.publish_forged(adds=[present])
    assert_rejected(synced, sim.now, StateMismatchError)


@pytest.mark.parametrize("check_every_version", [False, True])
def test_rejects_header_whose_result_state_lies(
    sim: HubSimulator, synced: Verifier, check_every_version: bool
) -> None:
    count = synced.trust.state.count + 1
    lie = StateDigest(count, hashlib.sha256(b"a state nobody has").hexdigest())
    sim.publish_forged(adds=[md5("new")], result_state=lie)
    assert_rejected(synced, sim.now, ConsistencyError, check_every_version=check_every_version)
