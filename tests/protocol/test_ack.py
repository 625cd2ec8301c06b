"""Tests of protocol.ack: a node's signed, co-signed receipt for the version it applied.

Replay protection (``seq`` strictly increasing per node) is the hub's rule and is
tested there; here only the document rules: signatures, the co-signature's binding
to the applied tree head and to the node id, value ranges, type confusion with
other signed documents, and preservation of unknown fields.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from protocol.ack import ACK_TYPE, Ack, AppliedVersion, Counts, sign_ack, verify_ack
from protocol.canonical import canonicalize, parse_canonical
from protocol.checkpoint import Checkpoint, cosign, verify_cosignature
from protocol.delta import DeltaHeader
from protocol.errors import ConsistencyError, MalformedError, SignatureError, WrongTypeError
from protocol.keys import SigningKey, sign_bytes
from protocol.publisher import ListHead, Publisher
from protocol.root import ListSpec, Role, Root
from protocol.state import StateDigest

HUB = "hub.example"
LIST_ID = "tid-md5"
ORIGIN = f"{HUB}/lists/{LIST_ID}"
NODE = "platform-a"
NODE_KEY = SigningKey.from_seed(bytes([31]) * 32)
OTHER_KEY = SigningKey.from_seed(bytes([32]) * 32)
SENT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
APPLIED = AppliedVersion(
    version=3,
    checkpoint_root=hashlib.sha256(b"tree head 3").digest(),
    state=StateDigest(2, hashlib.sha256(b"state 3").hexdigest()),
)
COUNTS = Counts(
    checked=100,
    matched=4,
    actioned=3,
    blocked=1,
    false_positive=1,
    hashes={"0123456789abcdef" * 2: {"matched": 2, "actioned": 1}},
)


def _sign(key: SigningKey = NODE_KEY, **changes: Any) -> tuple[bytes, bytes]:
    args: dict[str, Any] = {
        "key": key,
        "node": NODE,
        "list_id": LIST_ID,
        "seq": 5,
        "sent": SENT,
        "origin": ORIGIN,
        "applied": APPLIED,
        "counts": COUNTS,
    }
    args.update(changes)
    return sign_ack(**args)


def _verify(data: bytes, sig: bytes) -> Ack:
    return verify_ack(data, sig, node_key=NODE_KEY.public, origin_prefix=HUB)


def _resign(ack: Ack, key: SigningKey = NODE_KEY) -> tuple[bytes, bytes]:
    """An ack document built by hand, then signed properly by ``key``."""
    data = ack.to_bytes()
    return data, sign_bytes(data, [key]).to_bytes()


def _ack(**changes: Any) -> Ack:
    fields: dict[str, Any] = {
        "node": NODE,
        "list_id": LIST_ID,
        "seq": 5,
        "sent": SENT,
        "applied": APPLIED,
        "cosignature": cosign(Checkpoint(ORIGIN, 3, APPLIED.checkpoint_root), NODE_KEY, NODE, SENT),
        "counts": COUNTS,
    }
    fields.update(changes)
    return Ack(**fields)


# -- round trip --------------------------------------------------------------------------


def test_sign_and_verify_round_trip() -> None:
    data, sig = _sign()
    ack = _verify(data, sig)
    assert (ack.node, ack.list_id, ack.seq, ack.sent) == (NODE, LIST_ID, 5, SENT)
    assert ack.applied == APPLIED
    assert ack.counts == COUNTS
    assert ack.to_bytes() == data
    assert parse_canonical(data)["_type"] == ACK_TYPE


def test_cosignature_is_a_cosignature_v1_over_the_applied_checkpoint() -> None:
    ack = _verify(*_sign())
    checkpoint = Checkpoint(ORIGIN, APPLIED.version, APPLIED.checkpoint_root)
    assert ack.cosignature.name == NODE
    assert verify_cosignature(checkpoint, ack.cosignature, NODE_KEY.public) == SENT


def test_hand_built_ack_verifies() -> None:
    assert _verify(*_resign(_ack())) == _ack()


# -- signatures --------------------------------------------------------------------------


def test_rejects_ack_signed_by_another_key() -> None:
    data, sig = _sign(key=OTHER_KEY)
    with pytest.raises(SignatureError):
        _verify(data, sig)


def test_rejects_ack_whose_bytes_changed_after_signing() -> None:
    data, sig = _sign()
    with pytest.raises(SignatureError):
        _verify(data.replace(b'"seq":5', b'"seq":6'), sig)


def test_rejects_cosignature_by_another_key() -> None:
    other = cosign(Checkpoint(ORIGIN, 3, APPLIED.checkpoint_root), OTHER_KEY, NODE, SENT)
    with pytest.raises(SignatureError, match="cosignature by platform-a: key id"):
        _verify(*_resign(_ack(cosignature=other)))


def test_rejects_cosignature_over_a_different_size() -> None:
    other = cosign(Checkpoint(ORIGIN, 4, APPLIED.checkpoint_root), NODE_KEY, NODE, SENT)
    with pytest.raises(SignatureError, match="invalid signature"):
        _verify(*_resign(_ack(cosignature=other)))


def test_rejects_cosignature_over_a_different_root() -> None:
    other_root = hashlib.sha256(b"a second history").digest()
    other = cosign(Checkpoint(ORIGIN, 3, other_root), NODE_KEY, NODE, SENT)
    with pytest.raises(SignatureError, match="invalid signature"):
        _verify(*_resign(_ack(cosignature=other)))


def test_rejects_cosignature_for_another_hub() -> None:
    data, sig = _sign()
    with pytest.raises(SignatureError, match="invalid signature"):
        verify_ack(data, sig, node_key=NODE_KEY.public, origin_prefix="other.example")


def test_rejects_cosignature_under_a_name_other_than_the_node_id() -> None:
    checkpoint = Checkpoint(ORIGIN, 3, APPLIED.checkpoint_root)
    other = cosign(checkpoint, NODE_KEY, "platform-b", SENT)
    with pytest.raises(ConsistencyError, match="not the node id"):
        _verify(*_resign(_ack(cosignature=other)))


# -- value rules -------------------------------------------------------------------------


@pytest.mark.parametrize("seq", [0, -1])
def test_rejects_seq_below_one(seq: int) -> None:
    with pytest.raises(MalformedError, match="seq"):
        _ack(seq=seq)
    document = parse_canonical(_ack().to_bytes())
    document["seq"] = seq
    with pytest.raises(MalformedError, match="seq"):
        Ack.from_bytes(canonicalize(document))


@pytest.mark.parametrize("name", ["checked", "matched", "actioned", "blocked", "false_positive"])
def test_rejects_negative_counter(name: str) -> None:
    with pytest.raises(MalformedError, match=name):
        Counts(**{name: -1})  # type: ignore[arg-type]
    document = parse_canonical(_ack().to_bytes())
    document["counts"][name] = -1
    with pytest.raises(MalformedError, match=name):
        Ack.from_bytes(canonicalize(document))


def test_rejects_negative_per_hash_counter() -> None:
    with pytest.raises(MalformedError, match="per-hash counter"):
        Counts(hashes={"0123456789abcdef": {"matched": -1}})


@pytest.mark.parametrize("name", ["checked", "bogus", "Matched"])
def test_rejects_unknown_per_hash_counter_name(name: str) -> None:
    with pytest.raises(MalformedError, match="unknown per-hash counter"):
        Counts(hashes={"0123456789abcdef": {name: 1}})
    document = parse_canonical(_ack().to_bytes())
    document["counts"]["hashes"] = {"0123456789abcdef": {name: 1}}
    with pytest.raises(MalformedError, match="unknown per-hash counter"):
        Ack.from_bytes(canonicalize(document))


@pytest.mark.parametrize(
    "key",
    [
        "0123456789ABCDEF",  # uppercase
        "0123456789abcde",  # 15 digits
        "0123456789abcdef0",  # not a whole hash width
        "0123456789abcdef" * 5,  # wider than any hash type
        "xyz",
        "",
    ],
)
def test_rejects_bad_per_hash_key(key: str) -> None:
    with pytest.raises(MalformedError, match="per-hash key"):
        Counts(hashes={key: {"matched": 1}})


@pytest.mark.parametrize("width", [8, 16, 32])
def test_accepts_per_hash_keys_of_every_hash_width(width: int) -> None:
    key = "ab" * width
    assert Counts(hashes={key: {"matched": 1}}).hashes[key] == {"matched": 1}


# -- type confusion ----------------------------------------------------------------------


def _delta_header() -> bytes:
    roles = {
        name: SigningKey.from_seed(bytes([40 + i]) * 32)
        for i, name in enumerate(["root", "delta", "checkpoint", "timestamp"])
    }
    root = Root(
        version=1,
        name=HUB,
        expires=SENT + timedelta(days=365),
        keys={k.keyid: k.public for k in roles.values()},
        roles={name: Role((k.keyid,), 1) for name, k in roles.items()},
        lists={LIST_ID: ListSpec(LIST_ID, "md5", 0)},
    )
    publication = Publisher(root, {name: [k] for name, k in roles.items()}).publish(
        ListHead.empty(root, LIST_ID), adds=[hashlib.md5(b"x").digest()], now=SENT
    )
    return publication.header.to_bytes()


def test_rejects_delta_header_presented_as_ack() -> None:
    header = _delta_header()
    with pytest.raises(WrongTypeError, match=r"hashhub\.delta\.v1"):
        Ack.from_bytes(header)
    # Even signed by the node's own key, a header is not an ack.
    with pytest.raises(WrongTypeError):
        _verify(header, sign_bytes(header, [NODE_KEY]).to_bytes())


def test_rejects_ack_presented_as_delta_header() -> None:
    data, _ = _sign()
    with pytest.raises(WrongTypeError, match=re.escape(ACK_TYPE)):
        DeltaHeader.from_bytes(data)


def test_rejects_ack_without_type() -> None:
    document = parse_canonical(_sign()[0])
    del document["_type"]
    with pytest.raises(MalformedError, match="_type"):
        Ack.from_bytes(canonicalize(document))


# -- unknown fields ----------------------------------------------------------------------


def test_unknown_top_level_fields_are_preserved() -> None:
    document = parse_canonical(_sign()[0])
    document["x-future"] = {"note": "added by a later version", "n": 2}
    document["zz"] = [1, 2]
    data = canonicalize(document)
    sig = sign_bytes(data, [NODE_KEY]).to_bytes()
    ack = _verify(data, sig)
    assert ack.extra == {"x-future": {"note": "added by a later version", "n": 2}, "zz": [1, 2]}
    assert ack.to_bytes() == data


def test_per_hash_key_of_no_hash_width_is_malformed() -> None:
    from protocol.ack import Counts
    from protocol.errors import MalformedError

    with pytest.raises(MalformedError, match="per-hash key"):
        Counts(hashes={"ab" * 24: {"matched": 1}})
