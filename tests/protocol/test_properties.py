"""Properties of the protocol that hold for any history, checked with hypothesis.

Each property builds its own simulated hub (hypothesis runs one test body many
times, so function-scoped fixtures are not used here).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Callable
from datetime import timedelta
from functools import cache
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from protocol import (
    AppliedVersion,
    BodyRuleError,
    ConsistencyError,
    Counts,
    DeltaBody,
    ListState,
    ListTrust,
    MalformedError,
    StateMismatchError,
    TrustedHub,
    checkpoint_path,
    header_path,
    root_path,
    sig_path,
    sign_ack,
    sign_bytes,
    verify_ack,
)
from tests.protocol.simulator import LIST, HubSimulator, Verifier, fixed_key, md5

QUICK = settings(max_examples=40, deadline=None)

UNIVERSE = [md5(f"hash {i}") for i in range(24)]

toggles = st.lists(st.integers(0, len(UNIVERSE) - 1), min_size=1, max_size=30)
"""A history as a sequence of hashes to toggle: add if absent, remove if present."""


def _states(history: list[int]) -> list[frozenset[bytes]]:
    """The set after each toggle, starting with the empty set."""
    current: frozenset[bytes] = frozenset()
    out = [current]
    for i in history:
        current = current ^ {UNIVERSE[i]}
        out.append(current)
    return out


def _publish_net(sim: HubSimulator, old: frozenset[bytes], new: frozenset[bytes]) -> None:
    sim.publish(removes=sorted(old - new), adds=sorted(new - old))


def _cuts(draw: st.DrawFn, length: int) -> list[int]:
    """Sorted cut points splitting ``range(length)`` into at least one chunk."""
    inner = draw(st.sets(st.integers(1, max(1, length - 1)), max_size=8))
    return [0, *sorted(c for c in inner if 0 < c < length), length]


@st.composite
def split_histories(draw: st.DrawFn) -> tuple[list[frozenset[bytes]], list[int]]:
    history = draw(toggles)
    return _states(history), _cuts(draw, len(history))


# -- digests do not depend on how changes are cut into deltas ------------------------------


@QUICK
@given(split_histories())
def test_any_split_into_deltas_ends_at_the_same_digest(
    case: tuple[list[frozenset[bytes]], list[int]],
) -> None:
    states, cuts = case
    final = states[-1]
    whole, split = HubSimulator(), HubSimulator()
    _publish_net(whole, states[0], final)
    for a, b in itertools.pairwise(cuts):
        _publish_net(split, states[a], states[b])
    expected = ListState.from_hashes(16, final).digest()
    assert whole.head().state.digest() == split.head().state.digest() == expected

    node = Verifier(split.files)
    state, trust = node.update(split.now)
    assert trust.version == len(cuts) - 1
    assert state.digest() == trust.state == expected


@QUICK
@given(split_histories(), st.integers(1, 4))
def test_snapshot_plus_later_deltas_equals_replay_from_empty(
    case: tuple[list[frozenset[bytes]], list[int]], snapshot_every: int
) -> None:
    states, cuts = case
    sim = HubSimulator(snapshot_every=snapshot_every)
    for a, b in itertools.pairwise(cuts):
        _publish_net(sim, states[a], states[b])
    replay, bootstrap = Verifier(sim.files), Verifier(sim.files)
    replay.update(sim.now)
    bootstrap.update(sim.now, use_snapshot=True)
    assert bootstrap.kept() == replay.kept()
    assert replay.state == ListState.from_hashes(16, states[-1])


# -- replay ----------------------------------------------------------------------------


@QUICK
@given(st.integers(2, 6), st.data())
def test_replaying_an_applied_delta_is_rejected(versions: int, data: st.DataObject) -> None:
    sim = HubSimulator()
    sim.publish_steps(versions)
    node = Verifier(sim.files)
    node.update(sim.now)
    replayed = data.draw(st.integers(1, versions), label="replayed version")
    sim.publish_steps(1)
    kept = node.kept()

    # As the next header of the log …
    nxt = header_path(LIST, versions + 1)
    old = header_path(LIST, replayed)
    sim.replace(nxt, sim.files[old])
    sim.replace(sig_path(nxt), sim.files[sig_path(old)])
    with pytest.raises(ConsistencyError):
        node.update(sim.now)
    assert node.kept() == kept

    # … and as a body applied again to the state it already changed.
    header = json.loads(sim.files[old])
    body_file = f"lists/{LIST}/body/{header['body']['sha256']}.txt"
    body = DeltaBody.from_bytes(sim.files[body_file], "md5")
    with pytest.raises(StateMismatchError):
        node.state.apply(body.removes, body.adds)


# -- ListState against a model -------------------------------------------------------------

hashes16 = st.binary(min_size=16, max_size=16)


@settings(max_examples=200, deadline=None)
@given(st.sets(hashes16, max_size=40), st.data())
def test_apply_matches_a_set_model_and_digest_is_sha256_of_sorted_bytes(
    base: set[bytes], data: st.DataObject
) -> None:
    removes = data.draw(st.sets(st.sampled_from(sorted(base))) if base else st.just(set()))
    adds = data.draw(st.sets(hashes16.filter(lambda x: x not in base), max_size=20))
    state = ListState.from_hashes(16, base)
    after = state.apply(sorted(removes), sorted(adds))
    model = (base - removes) | adds
    assert set(after) == model
    assert after.to_bytes() == b"".join(sorted(model))
    assert after.digest().sha256 == hashlib.sha256(b"".join(sorted(model))).hexdigest()
    assert after.digest().count == len(model)
    assert ListState.from_snapshot(16, after.to_bytes()) == after


@settings(max_examples=100, deadline=None)
@given(st.sets(hashes16, min_size=1, max_size=20), hashes16, st.data())
def test_apply_rejects_removing_absent_or_adding_present(
    base: set[bytes], absent: bytes, data: st.DataObject
) -> None:
    assume(absent not in base)
    present = data.draw(st.sampled_from(sorted(base)))
    state = ListState.from_hashes(16, base)
    with pytest.raises(StateMismatchError):
        state.apply([absent], [])
    with pytest.raises(StateMismatchError):
        state.apply([], [present])


# -- body rules ------------------------------------------------------------------------


def _lines(data: bytes) -> tuple[bytes, list[bytes]]:
    head, _, rest = data.partition(b"\n")
    return head + b"\n", [x + b"\n" for x in rest.split(b"\n")[:-1]]


def _swap_two_lines(data: bytes, d: st.DataObject) -> bytes:
    head, lines = _lines(data)
    i, j = d.draw(st.lists(st.integers(0, len(lines) - 1), min_size=2, max_size=2, unique=True))
    lines[i], lines[j] = lines[j], lines[i]
    return head + b"".join(lines)


def _uppercase_hex(data: bytes, d: st.DataObject) -> bytes:
    head, lines = _lines(data)
    with_letters = [i for i, x in enumerate(lines) if re.search(rb"[a-f]", x)]
    assume(with_letters)
    i = d.draw(st.sampled_from(with_letters))
    lines[i] = lines[i].upper()
    return head + b"".join(lines)


def _duplicate_line(data: bytes, d: st.DataObject) -> bytes:
    head, lines = _lines(data)
    i = d.draw(st.integers(0, len(lines) - 1))
    lines.insert(i, lines[i])
    return head + b"".join(lines)


def _removal_after_addition(data: bytes, d: st.DataObject) -> bytes:
    assume(b"\n+" in data)
    return data + b"-" + d.draw(hashes16).hex().encode() + b"\n"


def _wrong_width(data: bytes, d: st.DataObject) -> bytes:
    head, lines = _lines(data)
    i = d.draw(st.integers(0, len(lines) - 1))
    cut = d.draw(st.booleans())
    lines[i] = lines[i][:-3] + b"\n" if cut else lines[i][:-1] + b"00\n"
    return head + b"".join(lines)


def _blank_line(data: bytes, d: st.DataObject) -> bytes:
    head, lines = _lines(data)
    lines.insert(d.draw(st.integers(0, len(lines))), b"\n")
    return head + b"".join(lines)


def _trailing_space(data: bytes, d: st.DataObject) -> bytes:
    head, lines = _lines(data)
    i = d.draw(st.integers(0, len(lines) - 1))
    lines[i] = lines[i][:-1] + b" \n"
    return head + b"".join(lines)


BODY_MUTATIONS: dict[str, Callable[[bytes, st.DataObject], bytes]] = {
    "swap two lines": _swap_two_lines,
    "uppercase hex": _uppercase_hex,
    "duplicate a line": _duplicate_line,
    "drop the final newline": lambda data, d: data[:-1],
    "removal after an addition": _removal_after_addition,
    "wrong width": _wrong_width,
    "CRLF": lambda data, d: data.replace(b"\n", b"\r\n"),
    "wrong format line": lambda data, d: data.replace(b"body.v1", b"body.v9", 1),
    "blank line": _blank_line,
    "trailing space": _trailing_space,
}


@settings(max_examples=300, deadline=None)
@given(
    st.sets(hashes16, max_size=8),
    st.sets(hashes16, max_size=8),
    st.sampled_from(sorted(BODY_MUTATIONS)),
    st.data(),
)
def test_every_body_rule_violation_is_rejected(
    removes: set[bytes], adds: set[bytes], mutation: str, d: st.DataObject
) -> None:
    body = DeltaBody.build("md5", sorted(removes), sorted(adds - removes))
    data = body.to_bytes()
    assert DeltaBody.from_bytes(data, "md5") == body
    lines = data.count(b"\n") - 1
    assume(lines >= (2 if mutation == "swap two lines" else 1))
    broken = BODY_MUTATIONS[mutation](data, d)
    assert broken != data
    with pytest.raises(BodyRuleError):
        DeltaBody.from_bytes(broken, "md5")


# -- non-canonical re-encodings --------------------------------------------------------


def _reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reversed_keys(value[k]) for k in sorted(value, reverse=True)}
    if isinstance(value, list):
        return [_reversed_keys(v) for v in value]
    return value


def _escape_first_key(data: bytes) -> bytes:
    return data.replace(b'"_type"', b'"\\u005ftype"', 1)


def _version_as_float(data: bytes) -> bytes:
    return re.sub(rb'"(version|seq)":(\d+)', rb'"\1":\2.0', data, count=1)


REENCODINGS: dict[str, Callable[[bytes], bytes]] = {
    "spaces": lambda data: json.dumps(json.loads(data)).encode(),
    "indent": lambda data: json.dumps(json.loads(data), indent=2, sort_keys=True).encode(),
    "keys out of order": lambda data: json.dumps(
        _reversed_keys(json.loads(data)), separators=(",", ":")
    ).encode(),
    "escaped character": _escape_first_key,
    "integer as float": _version_as_float,
    "trailing newline": lambda data: data + b"\n",
    "leading space": lambda data: b" " + data,
    "byte order mark": lambda data: b"\xef\xbb\xbf" + data,
    "duplicate key": lambda data: b'{"_type":"hashhub.other",' + data[1:],
}


def _outside_strings(data: bytes) -> list[int]:
    """Offsets where inserting whitespace leaves every JSON string as it was."""
    offsets, in_string, escaped = [0], False, False
    for i, byte in enumerate(data):
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        if not in_string:
            offsets.append(i + 1)
    return offsets


@st.composite
def reencodings(draw: st.DrawFn) -> Callable[[bytes], bytes]:
    """A named re-encoding, or JSON whitespace inserted between any two tokens."""
    if draw(st.booleans()):
        return REENCODINGS[draw(st.sampled_from(sorted(REENCODINGS)))]
    pick = draw(st.floats(0, 1, exclude_max=True))
    space = draw(st.sampled_from([b" ", b"\n", b"\t", b"\r", b"  "]))

    def insert_whitespace(data: bytes) -> bytes:
        offsets = _outside_strings(data)
        at = offsets[int(pick * len(offsets))]
        return data[:at] + space + data[at:]

    return insert_whitespace


@cache
def _signed_world() -> HubSimulator:
    """One hub with two roots and two versions; tests copy what they change."""
    sim = HubSimulator()
    sim.publish_steps(1)
    sim.rotate()
    sim.publish_steps(1)
    return sim


def _pinned_hub(sim: HubSimulator) -> TrustedHub:
    return TrustedHub(sim.files[root_path(1)], sim.files[sig_path(root_path(1))], now=sim.now)


NON_CANONICAL = settings(max_examples=40, deadline=None)


@NON_CANONICAL
@given(reencodings())
def test_non_canonical_validly_signed_header_is_rejected(
    reencode: Callable[[bytes], bytes],
) -> None:
    sim = _signed_world()
    original = sim.files[header_path(LIST, 1)]
    data = reencode(original)
    assert data != original
    hub = _pinned_hub(sim)
    update = hub.begin_update(ListTrust(LIST), sim.files[checkpoint_path(LIST)])
    sig = sign_bytes(data, sim.keys["delta"]).to_bytes()
    with pytest.raises(MalformedError):
        update.add_header(data, sig)
    assert update.headers == []
    update.add_header(original, sim.files[sig_path(header_path(LIST, 1))])  # the original is fine


@NON_CANONICAL
@given(reencodings())
def test_non_canonical_validly_signed_root_is_rejected(
    reencode: Callable[[bytes], bytes],
) -> None:
    sim = _signed_world()
    data = reencode(sim.files[root_path(2)])
    assert data != sim.files[root_path(2)]
    sig = sign_bytes(data, sim.keys["root"]).to_bytes()
    hub = _pinned_hub(sim)
    with pytest.raises(MalformedError):
        hub.update_root(data, sig)
    assert hub.root.version == 1


@NON_CANONICAL
@given(reencodings())
def test_non_canonical_validly_signed_pinned_root_is_rejected(
    reencode: Callable[[bytes], bytes],
) -> None:
    sim = _signed_world()
    data = reencode(sim.files[root_path(1)])
    assert data != sim.files[root_path(1)]
    sig = sign_bytes(data, sim.keys["root"]).to_bytes()
    with pytest.raises(MalformedError):
        TrustedHub(data, sig, now=sim.now)


@NON_CANONICAL
@given(reencodings())
def test_non_canonical_validly_signed_ack_is_rejected(
    reencode: Callable[[bytes], bytes],
) -> None:
    sim = _signed_world()
    node_key = fixed_key("node-1")
    ack, ack_sig = sign_ack(
        key=node_key,
        node="node-1",
        list_id=LIST,
        seq=1,
        sent=sim.now - timedelta(minutes=1),
        origin=sim.root.origin(LIST),
        applied=AppliedVersion(2, sim.head().compact.root(), sim.head().state.digest()),
        counts=Counts(checked=3),
    )
    verify_ack(ack, ack_sig, node_key=node_key.public, origin_prefix=sim.root.name)
    data = reencode(ack)
    assert data != ack
    sig = sign_bytes(data, [node_key]).to_bytes()
    with pytest.raises(MalformedError):
        verify_ack(data, sig, node_key=node_key.public, origin_prefix=sim.root.name)
