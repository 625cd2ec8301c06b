"""Tests of protocol.root (and the root-chain part of protocol.trust): format, strict
parsing, list ids, and the successor rule.

The rotation cases are modelled on tuf-conformance's
``tuf_conformance/test_updater_key_rotations.py`` (``root_rotation_cases``): each
root version names its root-role keys, its threshold and the keys that sign it, and
version N+1 is accepted only if it meets both N's root role and its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from protocol.canonical import canonicalize, parse_canonical
from protocol.errors import (
    ConsistencyError,
    ExpiredError,
    InvalidListIdError,
    MalformedError,
    RollbackError,
    SignatureError,
    WrongTypeError,
)
from protocol.keys import SigningKey
from protocol.layout import body_path, checkpoint_path, header_path, snapshot_path
from protocol.lists import validate_list_id
from protocol.root import ListSpec, Policy, Role, Root
from protocol.trust import TrustedHub

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HUB = "hub.example"
# Root-role candidates 0..9, and one fixed key for each other role.
ROOT_KEYS = [SigningKey.from_seed(bytes([50 + i]) * 32) for i in range(10)]
DELTA = SigningKey.from_seed(bytes([70]) * 32)
CHECKPOINT = SigningKey.from_seed(bytes([71]) * 32)
TIMESTAMP = SigningKey.from_seed(bytes([72]) * 32)
LISTS = {
    "tid-md5": ListSpec("tid-md5", "md5", 0, label="tid"),
    "tid-pdq": ListSpec("tid-pdq", "pdq", 31, label="tid", snapshot_every=50),
}


def make_root(
    version: int = 1,
    root_keys: Sequence[int] = (0,),
    threshold: int = 1,
    *,
    name: str = HUB,
    expires: datetime | None = None,
    lists: dict[str, ListSpec] | None = None,
) -> Root:
    chosen = [ROOT_KEYS[i] for i in root_keys]
    keys = {k.keyid: k.public for k in [*chosen, DELTA, CHECKPOINT, TIMESTAMP]}
    return Root(
        version=version,
        name=name,
        expires=expires or T0 + timedelta(days=365),
        keys=keys,
        roles={
            "root": Role(tuple(k.keyid for k in chosen), threshold),
            "delta": Role((DELTA.keyid,), 1),
            "checkpoint": Role((CHECKPOINT.keyid,), 1),
            "timestamp": Role((TIMESTAMP.keyid,), 1),
        },
        lists=LISTS if lists is None else lists,
        mirrors=("https://mirror.example/hashhub/",),
    )


def signed(root: Root, signers: Sequence[int]) -> tuple[bytes, bytes]:
    return root.sign([ROOT_KEYS[i] for i in signers])


def document(root: Root | None = None) -> dict[str, Any]:
    value = parse_canonical((root or make_root()).to_bytes())
    assert isinstance(value, dict)
    return value


# -- encoding ----------------------------------------------------------------------------


def test_role_key_order_carries_no_meaning() -> None:
    ids = tuple(k.keyid for k in ROOT_KEYS[:3])
    assert Role(ids, 2) == Role(tuple(reversed(ids)), 2)


def test_root_round_trips() -> None:
    root = make_root(root_keys=(0, 1, 2), threshold=2)
    data = root.to_bytes()
    parsed = Root.from_bytes(data)
    assert parsed == root
    assert parsed.to_bytes() == data


def test_root_document_fields() -> None:
    value = document()
    assert value["_type"] == "hashhub.root.v1"
    assert value["expires"] == "2027-01-01T00:00:00Z"
    assert value["lists"]["tid-pdq"] == {
        "hash_type": "pdq",
        "hash_length": 32,
        "max_distance": 31,
        "label": "tid",
        "snapshot_every": 50,
        "first_version": 1,
    }


def test_unknown_fields_are_kept() -> None:
    value = document()
    value["x-top"] = {"a": 1}
    value["policy"]["x-policy"] = "later"
    value["lists"]["tid-md5"]["x-list"] = [1, 2]
    data = canonicalize(value)
    root = Root.from_bytes(data)
    assert root.extra == {"x-top": {"a": 1}}
    assert root.policy.extra == {"x-policy": "later"}
    assert root.lists["tid-md5"].extra == {"x-list": [1, 2]}
    assert root.to_bytes() == data


def _rejects(value: Any, error: type[Exception] = MalformedError, match: str | None = None) -> None:
    with pytest.raises(error, match=match):
        Root.from_bytes(canonicalize(value))


def test_rejects_unknown_hash_type() -> None:
    value = document()
    value["lists"]["tid-md5"]["hash_type"] = "sha1"
    _rejects(value, match="unknown hash type")


def test_rejects_hash_length_mismatch() -> None:
    value = document()
    value["lists"]["tid-md5"]["hash_length"] = 20
    _rejects(value, match="hash_length 20")


def test_rejects_max_distance_on_exact_hash_type() -> None:
    value = document()
    value["lists"]["tid-md5"]["max_distance"] = 1
    _rejects(value, match="max_distance")


@pytest.mark.parametrize("threshold", [0, -1])
def test_rejects_role_threshold_below_one(threshold: int) -> None:
    value = document()
    value["roles"]["delta"]["threshold"] = threshold
    _rejects(value, match="threshold")


def test_rejects_role_threshold_above_its_keys() -> None:
    value = document()
    value["roles"]["delta"]["threshold"] = 2
    _rejects(value, match="threshold 2 not in 1..1")


def _online_roles(checkpoint: int, timestamp: int) -> dict[str, Any]:
    """A root document whose checkpoint and timestamp roles share 40 keys, at these thresholds."""
    value = document()
    shared = [SigningKey.from_seed(bytes([100 + i]) * 32) for i in range(40)]
    value["keys"].update({k.keyid: k.public.to_dict() for k in shared})
    ids = sorted(k.keyid for k in shared)
    value["roles"]["checkpoint"] = {"keyids": ids, "threshold": checkpoint}
    value["roles"]["timestamp"] = {"keyids": ids, "threshold": timestamp}
    return value


def test_the_online_thresholds_may_fill_one_checkpoint_note() -> None:
    root = Root.from_bytes(canonicalize(_online_roles(32, 32)))
    assert root.roles["checkpoint"].threshold + root.roles["timestamp"].threshold == 64


def test_rejects_online_thresholds_no_checkpoint_note_can_carry() -> None:
    """65 lines would be needed; a note carries 64 (PROTOCOL.md §5.2, §9.2)."""
    _rejects(_online_roles(33, 32), match="add up to 65; a checkpoint note carries at most 64")


def test_rejects_role_naming_a_missing_key() -> None:
    value = document()
    value["roles"]["delta"]["keyids"] = [hashlib.sha256(b"no such key").hexdigest()]
    _rejects(value, match="unknown key")


def test_rejects_role_listing_a_key_twice() -> None:
    value = document()
    value["roles"]["delta"]["keyids"] = [DELTA.keyid, DELTA.keyid]
    value["roles"]["delta"]["threshold"] = 2
    _rejects(value, match="twice")


def test_rejects_keyid_that_is_not_sha256_of_its_key() -> None:
    value = document()
    value["keys"][DELTA.keyid] = value["keys"][CHECKPOINT.keyid]
    _rejects(value, match="not the SHA-256 of its key")


@pytest.mark.parametrize("role", ["root", "delta", "checkpoint", "timestamp"])
def test_rejects_missing_role(role: str) -> None:
    value = document()
    del value["roles"][role]
    _rejects(value, match="roles must be exactly")


def test_rejects_extra_role() -> None:
    value = document()
    value["roles"]["snapshot"] = {"keyids": [DELTA.keyid], "threshold": 1}
    _rejects(value, match="roles must be exactly")


@pytest.mark.parametrize(
    "expires",
    [
        "2027-01-01T00:00:00",
        "2027-01-01 00:00:00Z",
        "2027-01-01T00:00:00+00:00",
        "2027-01-01T00:00:00.000Z",
        "2027-01-01t00:00:00z",
        "2027-13-01T00:00:00Z",
        "2027-02-30T00:00:00Z",
        "1798761600",
    ],
)
def test_rejects_naive_or_odd_time(expires: str) -> None:
    value = document()
    value["expires"] = expires
    _rejects(value, match="expires")


def test_rejects_naive_expiry_in_constructor() -> None:
    with pytest.raises(MalformedError, match="timezone-aware"):
        make_root(expires=datetime(2027, 1, 1))


@pytest.mark.parametrize(
    "mirror", ["ftp://mirror.example/", "file:///etc/passwd", "javascript:alert(1)", "//x", 5]
)
def test_rejects_mirror_that_is_not_http(mirror: Any) -> None:
    value = document()
    value["mirrors"] = ["https://ok.example/", mirror]
    _rejects(value, match="mirrors")


def test_rejects_other_document_type() -> None:
    value = document()
    value["_type"] = "hashhub.delta.v1"
    _rejects(value, WrongTypeError)


def test_rejects_invalid_hub_name() -> None:
    value = document()
    value["name"] = "Hub Example"
    _rejects(value, match="hub name")


# -- list ids ----------------------------------------------------------------------------

BAD_LIST_IDS = ["..", "a..b", "a/b", "/abs", "%2e%2e", "%2E", "Upper", "", "a" * 65, "-lead", "."]


@pytest.mark.parametrize("list_id", BAD_LIST_IDS)
def test_rejects_invalid_list_id(list_id: str) -> None:
    with pytest.raises(InvalidListIdError):
        validate_list_id(list_id)


@pytest.mark.parametrize("list_id", ["a", "a" * 64, "tid-md5", "ncmec.v2_pdq", "0"])
def test_accepts_valid_list_id(list_id: str) -> None:
    assert validate_list_id(list_id) == list_id


@pytest.mark.parametrize("list_id", BAD_LIST_IDS)
def test_layout_paths_refuse_invalid_list_id(list_id: str) -> None:
    with pytest.raises(InvalidListIdError):
        checkpoint_path(list_id)
    with pytest.raises(InvalidListIdError):
        header_path(list_id, 1)
    with pytest.raises(InvalidListIdError):
        body_path(list_id, "0" * 64)
    with pytest.raises(InvalidListIdError):
        snapshot_path(list_id, 1)


@pytest.mark.parametrize("list_id", ["../x", "A", "a/b"])
def test_root_refuses_invalid_list_id(list_id: str) -> None:
    value = document()
    value["lists"][list_id] = value["lists"]["tid-md5"]
    _rejects(value, InvalidListIdError)


# -- successor rule: rotations after tuf-conformance ------------------------------------


@dataclass(frozen=True)
class Version:
    """One root version: root-role keys, threshold, who signs it, and which root role
    (``"old"``: the trusted version's, ``"new"``: its own) rejects it, if any."""

    keys: tuple[int, ...]
    threshold: int
    sigs: tuple[int, ...]
    rejected_by: str | None = None


ROTATIONS: dict[str, list[Version]] = {
    "1-of-1-key-rotation": [
        Version((1,), 1, (1,)),
        Version((2,), 1, (2, 1)),
        Version((2,), 1, (2,)),
    ],
    "1-of-1-key-rotation-unused-signatures": [
        Version((1,), 1, (3, 1, 4)),
        Version((2,), 1, (3, 2, 1, 4)),
        Version((2,), 1, (3, 2, 4)),
    ],
    "3-of-5-one-key-rotated": [
        Version((0, 1, 2, 3, 4), 3, (0, 2, 4)),
        Version((0, 1, 3, 4, 5), 3, (0, 4, 1)),
    ],
    "3-of-5-all-keys-rotated-with-intermediate-step": [
        Version((0, 1, 2, 3, 4), 3, (0, 2, 4)),
        Version((5, 6, 7, 8, 9), 3, (0, 2, 4, 5, 6, 7)),
        Version((5, 6, 7, 8, 9), 3, (5, 6, 7)),
    ],
    "1-of-3-threshold-increase-to-2-of-3": [
        Version((1, 2, 3), 1, (1,)),
        Version((1, 2, 3), 2, (1, 2)),
    ],
    "2-of-3-threshold-decrease-to-1-of-3": [
        Version((1, 2, 3), 2, (1, 2)),
        Version((1, 2, 3), 1, (1, 2)),
        Version((1, 2, 3), 1, (1,)),
    ],
    "1-of-2-threshold-increase-to-2-of-2": [
        Version((1,), 1, (1,)),
        Version((1, 2), 2, (1, 2)),
    ],
    "1-of-1-key-rotation-fails-signed-only-by-new-key": [
        Version((1,), 1, (1,)),
        Version((2,), 1, (2, 3, 4), rejected_by="old"),
    ],
    "1-of-1-key-rotation-fails-signed-only-by-old-key": [
        Version((1,), 1, (1,)),
        Version((2,), 1, (1, 3, 4), rejected_by="new"),
    ],
    "3-of-5-one-key-rotation-fails-not-3-new-keys": [
        Version((0, 1, 2, 3, 4), 3, (0, 2, 4)),
        Version((0, 1, 3, 4, 5), 3, (0, 2, 4), rejected_by="new"),
    ],
    "3-of-5-one-key-rotation-fails-not-3-old-keys": [
        Version((0, 1, 2, 3, 4), 3, (0, 2, 4)),
        Version((0, 1, 3, 4, 5), 3, (0, 4, 5), rejected_by="old"),
    ],
    "1-of-3-threshold-increase-to-2-of-3-fails-new-threshold-not-met": [
        Version((1, 2, 3), 1, (1,)),
        Version((1, 2, 3), 2, (2,), rejected_by="new"),
    ],
    "2-of-3-threshold-decrease-to-1-of-3-fails-old-threshold-not-met": [
        Version((1, 2, 3), 2, (1, 2)),
        Version((1, 2, 3), 1, (1,), rejected_by="old"),
    ],
}


@pytest.mark.parametrize("versions", list(ROTATIONS.values()), ids=list(ROTATIONS))
def test_root_rotation(versions: list[Version]) -> None:
    files = [
        signed(make_root(n, v.keys, v.threshold), v.sigs) for n, v in enumerate(versions, start=1)
    ]
    hub = TrustedHub(*files[0], now=T0)
    for n, ((data, sig), version) in enumerate(zip(files[1:], versions[1:], strict=True), 2):
        if version.rejected_by is None:
            assert hub.update_root(data, sig).version == n
        else:
            role_of = n - 1 if version.rejected_by == "old" else n
            with pytest.raises(SignatureError, match=f"root role of root v{role_of}\\)"):
                hub.update_root(data, sig)
            # The rejected root changed nothing: the previous one is still the newest.
            assert hub.root.version == n - 1
            assert [v for v, _, _ in hub.root_files()] == list(range(1, n))
            return
    assert hub.root == Root.from_bytes(files[-1][0])
    assert [d for _, d, _ in hub.root_files()] == [d for d, _ in files]


def test_rotation_signed_by_both_is_accepted_and_later_needs_only_new_key() -> None:
    old, new, newer = make_root(1, (1,)), make_root(2, (2,)), make_root(3, (2,))
    v2 = old.verify_successor(*signed(new, (1, 2)))
    assert v2 == new
    assert v2.verify_successor(*signed(newer, (2,))) == newer
    with pytest.raises(SignatureError):
        v2.verify_successor(*signed(newer, (1,)))


def test_rejects_version_skip() -> None:
    with pytest.raises(RollbackError, match="expected root v2, got v3"):
        make_root(1).verify_successor(*signed(make_root(3), (0,)))


def test_rejects_same_version_replayed() -> None:
    v1 = make_root(1)
    with pytest.raises(RollbackError, match="expected root v2, got v1"):
        v1.verify_successor(*signed(v1, (0,)))


def test_rejects_older_version_after_an_update() -> None:
    hub = TrustedHub(*signed(make_root(1), (0,)), now=T0)
    hub.update_root(*signed(make_root(2), (0,)))
    with pytest.raises(RollbackError):
        hub.update_root(*signed(make_root(1), (0,)))
    assert hub.root.version == 2


def test_rejects_hub_rename() -> None:
    hub = TrustedHub(*signed(make_root(1), (0,)), now=T0)
    with pytest.raises(ConsistencyError, match="renames the hub"):
        hub.update_root(*signed(make_root(2, name="other.example"), (0,)))
    assert hub.root.version == 1


def test_rejects_list_hash_type_change() -> None:
    changed = {**LISTS, "tid-md5": ListSpec("tid-md5", "sha256", 0)}
    with pytest.raises(ConsistencyError, match="from md5 to sha256"):
        make_root(1).verify_successor(*signed(make_root(2, lists=changed), (0,)))


def test_accepts_added_and_removed_lists() -> None:
    added = {"tid-md5": LISTS["tid-md5"], "new-phash": ListSpec("new-phash", "phash", 8)}
    v2 = make_root(1).verify_successor(*signed(make_root(2, lists=added), (0,)))
    assert set(v2.lists) == {"tid-md5", "new-phash"}


def test_duplicate_signatures_by_one_key_count_once() -> None:
    v1 = make_root(1, (1, 2), 2)
    v2 = make_root(2, (1, 2), 2)
    data, sig = v2.sign([ROOT_KEYS[1], ROOT_KEYS[1]])
    assert len(parse_canonical(sig)["signatures"]) == 2
    with pytest.raises(SignatureError, match="1 valid signature"):
        v1.verify_successor(data, sig)
    assert v1.verify_successor(*signed(v2, (1, 2))) == v2


def test_rejects_successor_whose_bytes_changed_after_signing() -> None:
    data, sig = signed(make_root(2), (0,))
    with pytest.raises(SignatureError):
        make_root(1).verify_successor(data.replace(b"hub.example", b"hub.exampla"), sig)


# -- expiry and pinning ------------------------------------------------------------------


def test_expired_intermediate_root_is_walked_to_a_fresh_one() -> None:
    now = T0 + timedelta(days=10)
    hub = TrustedHub(*signed(make_root(1, expires=T0 + timedelta(days=1)), (0,)), now=now)
    hub.update_root(*signed(make_root(2, expires=T0 + timedelta(days=2)), (0,)))
    hub.update_root(*signed(make_root(3, expires=T0 + timedelta(days=365)), (0,)))
    hub.check_root_fresh()
    assert hub.root.version == 3


def test_newest_expired_root_is_refused() -> None:
    now = T0 + timedelta(days=10)
    hub = TrustedHub(*signed(make_root(1, expires=T0 + timedelta(days=1)), (0,)), now=now)
    hub.update_root(*signed(make_root(2, expires=T0 + timedelta(days=2)), (0,)))
    with pytest.raises(ExpiredError, match="root v2 expired"):
        hub.check_root_fresh()


def test_root_expiring_exactly_now_is_expired() -> None:
    hub = TrustedHub(*signed(make_root(1, expires=T0), (0,)), now=T0)
    with pytest.raises(ExpiredError):
        hub.check_root_fresh()
    fresh = TrustedHub(*signed(make_root(1, expires=T0 + timedelta(seconds=1)), (0,)), now=T0)
    fresh.check_root_fresh()


def test_pinned_root_with_matching_sha256_is_accepted() -> None:
    data, sig = signed(make_root(1), (0,))
    pin = hashlib.sha256(data).hexdigest()
    assert Root.verify_pinned(data, sig, sha256=pin) == make_root(1)
    assert TrustedHub(data, sig, now=T0, pinned_sha256=pin).root.version == 1


def test_pinned_sha256_mismatch_is_refused() -> None:
    data, sig = signed(make_root(1), (0,))
    wrong = hashlib.sha256(data + b" ").hexdigest()
    with pytest.raises(SignatureError, match="pin"):
        Root.verify_pinned(data, sig, sha256=wrong)
    with pytest.raises(SignatureError, match="pin"):
        TrustedHub(data, sig, now=T0, pinned_sha256=wrong)


def test_pinned_root_must_meet_its_own_threshold() -> None:
    root = make_root(1, (1, 2), 2)
    with pytest.raises(SignatureError):
        Root.verify_pinned(*signed(root, (1,)))
    assert Root.verify_pinned(*signed(root, (1, 2))) == root


def test_policy_defaults_survive_round_trip() -> None:
    root = replace(make_root(), policy=Policy(max_checkpoint_age=3600))
    assert Root.from_bytes(root.to_bytes()).policy == Policy(max_checkpoint_age=3600)
