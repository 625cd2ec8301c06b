"""The committed vectors in ``docs/vectors/`` against the code, and every case they hold.

Two things are checked. First, that ``scripts/make_vectors.py`` still produces the
committed files byte for byte: a difference means the wire format changed, and
the vectors (and PROTOCOL.md's worked example) must be regenerated on purpose.
Second, that the files stand on their own: the tests read them from disk as
another implementation would, verify ``repo/`` from the pinned root, recompute
every value case, and run every negative case expecting exactly the named error
class, with nothing trusted changed by the rejection.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from protocol import (
    Checkpoint,
    DeltaBody,
    DeltaHeader,
    EntriesBody,
    Entry,
    EntryState,
    ListState,
    ListTrust,
    ListUpdate,
    NodeKeyPeriod,
    OpinionSummary,
    ProtocolError,
    PublicKey,
    Removal,
    Root,
    SignatureSidecar,
    SigningKey,
    StateDigest,
    TrustedHub,
    Vocabulary,
    VocabularyError,
    body_path,
    canonicalize,
    checkpoint_path,
    cosign,
    errors,
    fold_positions,
    header_path,
    parse_canonical,
    sign_ack,
    sign_note,
    snapshot_path,
    validate_list_id,
    verify_ack,
    verify_ack_by_periods,
    verify_summary,
    voices_of,
)
from protocol.ack import Ack, AppliedVersion, Counts
from protocol.checkpoint import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    SignedCheckpoint,
    note_key_id,
    verify_cosignature,
    verify_note_signature,
)
from protocol.contribution import Contribution, verify_contribution
from protocol.hashtypes import HASH_TYPES
from protocol.layout import frames_path
from protocol.lists import hash_type
from protocol.merkle import leaf_hash, root_from_leaf_hashes
from protocol.provenance import ExchangeOrigin, Provenance, UpstreamOrigin, verify_provenance
from protocol.video import decode_frames, frames_digest, match_video, read_frames_file
from scripts import make_vectors

PROJECT = Path(__file__).resolve().parents[2]
VECTORS = PROJECT / "docs" / "vectors"
CASES = VECTORS / "cases"


# --------------------------------------------------------------------------------------
# Reading the vectors from disk
# --------------------------------------------------------------------------------------


def load(rel: str) -> bytes:
    """A vector file by its path relative to docs/vectors."""
    return (VECTORS / rel).read_bytes()


def repo_file(path: str) -> bytes:
    return load(f"repo/{path}")


def repo_has(path: str) -> bool:
    return (VECTORS / "repo" / path).is_file()


def case(name: str) -> dict[str, Any]:
    value = json.loads((CASES / f"{name}.json").read_text("utf-8"))
    assert isinstance(value, dict)
    return value


def case_names(prefix: str = "", check: str | None = None) -> list[str]:
    names = sorted(p.stem for p in CASES.glob("*.json"))
    return [
        n for n in names if n.startswith(prefix) and (check is None or case(n)["check"] == check)
    ]


def when(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def seed_key(label: str) -> SigningKey:
    """A test key from the published seed in keys/SEEDS.txt (not from the generator)."""
    for line in load("keys/SEEDS.txt").decode().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == label:
            return SigningKey.from_seed(bytes.fromhex(parts[1]))
    raise AssertionError(f"no seed for {label} in keys/SEEDS.txt")


def trusted_hub(roots: list[str], now: datetime) -> TrustedHub:
    """Pin the first root file, accept each next one as its successor."""
    hub = TrustedHub(load(roots[0]), load(roots[0] + ".sig"), now=now)
    for path in roots[1:]:
        hub.update_root(load(path), load(path + ".sig"))
    return hub


def add_headers(upd: ListUpdate, list_id: str, upto: int) -> None:
    for v in range(upd.next_version, upto + 1):
        path = header_path(list_id, v)
        upd.add_header(repo_file(path), repo_file(path + ".sig"))


def sync(
    hub: TrustedHub,
    list_id: str,
    checkpoint: bytes,
    trust: ListTrust | None = None,
    state: ListState | None = None,
) -> tuple[ListState, ListTrust]:
    """One full update of one list from repo/, the way a node does it."""
    upd = hub.begin_update(trust or ListTrust(list_id), checkpoint)
    add_headers(upd, list_id, upd.target)
    for header in upd.bodies_needed():
        upd.add_body(header.version, repo_file(body_path(list_id, header.body.sha256)))
    base = state if state is not None else ListState(upd.spec.hash_length)
    return upd.apply(base, check_every_version=True)


def digest(value: dict[str, Any]) -> StateDigest:
    return StateDigest(value["count"], value["sha256"])


def error_class(name: str) -> type[ProtocolError]:
    """The error class a case names: one of ``protocol.errors``, or ``VocabularyError``
    (a ``BodyRuleError`` of entries lists)."""
    if name == VocabularyError.__name__:
        return VocabularyError
    found = getattr(errors, name)
    assert isinstance(found, type)
    assert issubclass(found, ProtocolError)
    return found


# --------------------------------------------------------------------------------------
# The vectors are what the code produces
# --------------------------------------------------------------------------------------


def test_generator_reproduces_every_committed_vector_byte_for_byte() -> None:
    built = make_vectors.build_vectors()
    on_disk = {p.relative_to(VECTORS).as_posix() for p in VECTORS.rglob("*") if p.is_file()}
    problems = [f"missing on disk: {rel}" for rel in sorted(set(built) - on_disk)]
    problems += [f"not generated:   {rel}" for rel in sorted(on_disk - set(built))]
    problems += [
        f"differs:         {rel}" for rel in sorted(set(built) & on_disk) if load(rel) != built[rel]
    ]
    assert not problems, (
        "docs/vectors drifted from the code; if the wire change is intended, run "
        "`python scripts/make_vectors.py` and add an upgrade note:\n" + "\n".join(problems)
    )


def test_generator_is_deterministic() -> None:
    assert make_vectors.build_vectors() == make_vectors.build_vectors()


def test_check_mode_lists_an_altered_vector_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "vectors"
    shutil.copytree(VECTORS, copy)
    assert make_vectors.main(["--check", str(copy)]) == 0
    target = copy / "repo" / "lists" / "demo-md5" / "delta" / "2.json"
    target.write_bytes(target.read_bytes().replace(b'"version":2', b'"version":9'))
    (copy / "cases" / "stray.json").write_text("{}\n")
    capsys.readouterr()
    assert make_vectors.main(["--check", str(copy)]) == 1
    err = capsys.readouterr().err
    assert "differs: repo/lists/demo-md5/delta/2.json" in err
    assert "cases/stray.json" in err


def test_every_case_names_a_known_check_and_exactly_one_outcome() -> None:
    names = case_names()
    assert len(names) >= 40
    for name in names:
        value = case(name)
        assert value["check"] in make_vectors.CHECKS, name
        assert ("expected" in value) != ("error" in value), name
        if "error" in value:
            assert name.startswith("neg-"), name
            assert issubclass(error_class(value["error"]), ProtocolError), name
        for ref in _file_refs(value.get("files", {})):
            assert (VECTORS / ref).is_file(), f"{name}: {ref} does not exist"


def _file_refs(files: dict[str, Any]) -> list[str]:
    refs: list[str] = []
    for value in files.values():
        refs.extend(value if isinstance(value, list) else [value])
    return refs


# --------------------------------------------------------------------------------------
# The repository verifies from its pinned root
# --------------------------------------------------------------------------------------


def test_repo_walks_to_root_2_and_every_list_reaches_the_expected_state() -> None:
    spec = case("repo-sync")
    now = when(spec["input"]["now"])
    hub = TrustedHub(repo_file("root/1.json"), repo_file("root/1.json.sig"), now=now)
    version = 2
    while repo_has(f"root/{version}.json"):  # a node walks N+1, N+2, … until not found
        hub.update_root(repo_file(f"root/{version}.json"), repo_file(f"root/{version}.json.sig"))
        version += 1
    assert hub.root.version == spec["expected"]["root_version"]
    expected = spec["expected"]["lists"]
    assert sorted(hub.root.lists) == sorted(expected)
    for list_id, want in expected.items():
        state, trust = sync(hub, list_id, repo_file(checkpoint_path(list_id)))
        assert trust.version == want["version"]
        assert trust.state == digest(want["state"]) == state.digest()
        assert base64.b64encode(trust.compact.root()).decode() == want["checkpoint_root_b64"]
        assert trust.root_version == want["root_version"]


def test_repo_snapshot_bootstrap_reaches_the_same_state_as_a_full_replay() -> None:
    spec = case("repo-snapshot-bootstrap")
    inp = spec["input"]
    list_id, snap_v = inp["list"], inp["snapshot_version"]
    hub = trusted_hub(inp["roots"], when(inp["now"]))
    upd = hub.begin_update(ListTrust(list_id), repo_file(checkpoint_path(list_id)))
    add_headers(upd, list_id, upd.target)
    base = upd.add_snapshot(snap_v, repo_file(snapshot_path(list_id, snap_v)))
    assert [h.version for h in upd.bodies_needed()] == list(range(snap_v + 1, upd.target + 1))
    for header in upd.bodies_needed():
        upd.add_body(header.version, repo_file(body_path(list_id, header.body.sha256)))
    state, trust = upd.apply(base)
    assert trust.version == spec["expected"]["version"]
    assert state.digest() == trust.state == digest(spec["expected"]["state"])


def test_repo_incremental_update_crosses_the_delta_key_rotation() -> None:
    spec = case("repo-incremental")
    inp, want = spec["input"], spec["expected"]
    list_id = inp["list"]
    first = inp["first"]
    hub1 = trusted_hub(first["roots"], when(first["now"]))
    state1, trust1 = sync(hub1, list_id, first["checkpoint_text"].encode())
    assert (trust1.version, trust1.state) == (
        want["first"]["version"],
        digest(want["first"]["state"]),
    )
    assert trust1.root_version == 1
    second = inp["second"]
    hub2 = trusted_hub(second["roots"], when(second["now"]))
    state2, trust2 = sync(hub2, list_id, load(second["checkpoint"]), trust1, state1)
    assert (trust2.version, trust2.state) == (
        want["second"]["version"],
        digest(want["second"]["state"]),
    )
    assert trust2.root_version == 2
    assert state2.digest() == trust2.state


def test_openssl_verifies_the_delta_signature_on_a_published_header(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is required for this test (CI installs it); put it on PATH")
    header = VECTORS / "repo" / header_path("demo-md5", 1)
    sidecar = json.loads(repo_file(header_path("demo-md5", 1) + ".sig"))
    sig = tmp_path / "1.sig.bin"
    sig.write_bytes(base64.b64decode(sidecar["signatures"][0]["sig"]))
    result = subprocess.run(
        [
            openssl,
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            str(VECTORS / "keys" / "delta.pem"),
            "-rawin",
            "-in",
            str(header),
            "-sigfile",
            str(sig),
        ],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert b"Signature Verified Successfully" in result.stdout


# --------------------------------------------------------------------------------------
# Value cases, recomputed from their inputs
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", case_names(check="canonicalize"))
def test_canonical_json_case(name: str) -> None:
    spec = case(name)
    value = json.loads(spec["input"]["text"])
    expected = spec["expected"]["canonical_text"].encode()
    assert canonicalize(value) == expected
    assert rfc8785.dumps(value) == expected  # an independent RFC 8785 implementation
    assert bytes.fromhex(spec["expected"]["canonical_hex"]) == expected
    assert parse_canonical(expected) == value
    if "files" in spec:
        assert load(spec["files"]["canonical"]) == expected


def test_keyid_case() -> None:
    spec = case("keyid")
    raw = bytes.fromhex(spec["input"]["public_hex"])
    assert hashlib.sha256(raw).hexdigest() == spec["expected"]["keyid"]
    key = PublicKey.from_pem(load(spec["files"]["pem"]))
    assert key.raw == raw
    assert key.keyid == spec["expected"]["keyid"]
    assert key.to_spki_der().hex() == spec["expected"]["spki_der_hex"]


def test_note_key_id_case() -> None:
    spec = case("note-key-ids")
    name, key = spec["input"]["name"], PublicKey(bytes.fromhex(spec["input"]["public_hex"]))
    want = spec["expected"]
    for alg, field in ((ALG_ED25519, "ed25519"), (ALG_COSIGNATURE_V1, "cosignature_v1")):
        preimage = bytes.fromhex(want[f"{field}_preimage_hex"])
        assert preimage == name.encode() + b"\n" + bytes([alg]) + key.raw
        assert hashlib.sha256(preimage).digest()[:4].hex() == want[field]
        assert note_key_id(name, alg, key).hex() == want[field]


def test_note_signature_case() -> None:
    spec = case("note-signature")
    inp, want = spec["input"], spec["expected"]
    key = seed_key(inp["seed_label"])
    assert key.public.raw.hex() == inp["public_hex"]
    cp = Checkpoint.from_body(inp["checkpoint_text"])
    line = sign_note(cp, key, inp["name"])
    assert line.line() == want["line"]
    assert (line.key_id.hex(), line.signature.hex()) == (want["key_id_hex"], want["signature_hex"])
    assert verify_note_signature(cp, line, key.public)
    assert want["line"].encode() in load(spec["files"]["checkpoint"])


def test_cosignature_case() -> None:
    spec = case("cosignature")
    inp, want = spec["input"], spec["expected"]
    key = seed_key(inp["seed_label"])
    cp = Checkpoint.from_body(inp["checkpoint_text"])
    moment = datetime.fromtimestamp(inp["time"], UTC)
    line = cosign(cp, key, inp["name"], moment)
    assert line.line() == want["line"]
    message = want["signed_message_text"].encode()
    assert message == f"cosignature/v1\ntime {inp['time']}\n".encode() + cp.body()
    assert line.signature[:8] == inp["time"].to_bytes(8, "big")
    assert line.signature[:8].hex() == want["time_be64_hex"]
    assert line.signature[8:].hex() == want["ed25519_signature_hex"]
    assert key.public.verify(bytes.fromhex(want["ed25519_signature_hex"]), message)
    assert verify_cosignature(cp, line, key.public) == moment
    assert want["line"].encode() in load(spec["files"]["checkpoint"])


def test_leaf_hash_case() -> None:
    spec = case("leaf-hash")
    header = load(spec["files"]["header"])
    expected = hashlib.sha256(b"\x00" + header).digest()
    assert leaf_hash(header) == expected
    assert expected.hex() == spec["expected"]["leaf_hash_hex"]
    assert base64.b64encode(expected).decode() == spec["expected"]["leaf_hash_b64"]
    assert DeltaHeader.from_bytes(load(spec["files"]["next"])).prev == expected.hex()


def test_merkle_root_case() -> None:
    spec = case("merkle-root")
    leaves = [leaf_hash(load(path)) for path in spec["files"]["headers"]]
    assert [h.hex() for h in leaves] == spec["expected"]["leaf_hashes_hex"]
    roots = [root_from_leaf_hashes(leaves[:k]).hex() for k in range(len(leaves) + 1)]
    assert roots == spec["expected"]["roots_hex"]
    note = SignedCheckpoint.from_bytes(load(spec["files"]["checkpoint"]))
    assert note.checkpoint.size == len(leaves)
    assert base64.b64encode(note.checkpoint.root_hash).decode() == spec["expected"]["root_b64"]


@pytest.mark.parametrize("name", case_names(check="state_digest"))
def test_state_digest_case(name: str) -> None:
    spec = case(name)
    hashes = [bytes.fromhex(h) for h in spec["input"]["hashes_hex"]]
    width = 16 if spec["input"]["hash_type"] == "md5" else 32
    state = ListState.from_hashes(width, hashes)
    snapshot = b"".join(sorted(hashes))
    assert state.to_bytes() == snapshot
    assert snapshot.hex() == spec["expected"]["snapshot_hex"]
    assert hashlib.sha256(snapshot).hexdigest() == spec["expected"]["sha256"]
    assert state.digest() == digest(spec["expected"])


def test_body_case() -> None:
    spec = case("body")
    inp, want = spec["input"], spec["expected"]
    body = DeltaBody.build(
        inp["hash_type"],
        [bytes.fromhex(h) for h in inp["removes_hex"]],
        [bytes.fromhex(h) for h in inp["adds_hex"]],
    )
    data = body.to_bytes()
    assert data == want["text"].encode() == load(spec["files"]["body"])
    assert hashlib.sha256(data).hexdigest() == want["sha256"]
    assert spec["files"]["body"].endswith(f"/{want['sha256']}.txt")
    assert len(data) == want["length"]
    ref = DeltaHeader.from_bytes(load(spec["files"]["header"])).body
    assert ref.to_dict() == {k: want[k] for k in ("sha256", "length", "adds", "removes")}
    assert DeltaBody.from_bytes(data, inp["hash_type"]) == body


@pytest.mark.parametrize("name", case_names(prefix="body-"))
def test_body_of_each_hash_type(name: str) -> None:
    spec = case(name)
    inp, want = spec["input"], spec["expected"]
    removes = [bytes.fromhex(h) for h in inp["removes_hex"]]
    adds = [bytes.fromhex(h) for h in inp["adds_hex"]]
    data = DeltaBody.build(inp["hash_type"], removes, adds).to_bytes()
    assert data == want["text"].encode()
    assert (hashlib.sha256(data).hexdigest(), len(data)) == (want["sha256"], want["length"])
    parsed = DeltaBody.from_bytes(data, inp["hash_type"])
    assert (list(parsed.removes), list(parsed.adds)) == (removes, adds)
    width = len(adds[0])
    digest = ListState.from_hashes(width, adds).digest().to_dict()
    assert digest == want["state_of_adds"]
    assert want["state_of_adds"]["sha256"] == hashlib.sha256(b"".join(sorted(adds))).hexdigest()


def test_snapshot_case() -> None:
    spec = case("snapshot")
    data = load(spec["files"]["snapshot"])
    header = DeltaHeader.from_bytes(load(spec["files"]["header"]))
    want = spec["expected"]
    assert hashlib.sha256(data).hexdigest() == want["sha256"] == header.result_state.sha256
    assert len(data) == want["length"] == header.result_state.count * 32
    assert want["count"] == header.result_state.count


def test_ack_case() -> None:
    spec = case("ack")
    inp, want = spec["input"], spec["expected"]
    key = seed_key(inp["seed_label"])
    assert key.public.raw.hex() == inp["node_public_hex"]
    applied = inp["applied"]
    counts = dict(inp["counts"])
    data, sig = sign_ack(
        key=key,
        node=inp["node"],
        list_id=inp["list"],
        seq=inp["seq"],
        sent=when(inp["sent"]),
        origin=inp["origin"],
        applied=AppliedVersion(
            applied["version"],
            base64.b64decode(applied["checkpoint_root"]),
            digest(applied["state"]),
        ),
        counts=Counts(**counts),
    )
    assert data == want["ack_text"].encode()
    assert sig == want["sig_text"].encode()
    ack = verify_ack(data, sig, node_key=key.public, origin_prefix=inp["hub_name"])
    assert ack.cosignature.line().rstrip("\n") == want["cosignature_line"]
    assert inp["origin"] == f"{inp['hub_name']}/lists/{inp['list']}"


@pytest.mark.parametrize("name", case_names(check="accept_ack"))
def test_accepted_ack_case(name: str) -> None:
    """What §10.2 lets through: accepted, read as stated, re-encoded to the same bytes."""
    spec = case(name)
    inp, want = spec["input"], spec["expected"]
    data = inp["ack_text"].encode()
    key = PublicKey(bytes.fromhex(inp["node_public_hex"]))
    ack = verify_ack(data, inp["sig_text"].encode(), node_key=key, origin_prefix=inp["hub_name"])
    assert ack.seq == want["seq"]
    assert dict(ack.extra) == want["extra"]
    if "hashes" in want:
        assert {k: dict(v) for k, v in ack.counts.hashes.items()} == want["hashes"]
    if "opinions" in want:
        assert {k: v.to_dict() for k, v in ack.opinions.items()} == want["opinions"]
    if "kept" in want:
        assert dict(ack.kept) == want["kept"]
    assert ack.to_bytes() == data


def _key_periods(rows: list[dict[str, Any]]) -> list[NodeKeyPeriod]:
    return [
        NodeKeyPeriod(PublicKey(bytes.fromhex(r["public_hex"])), r["first_seq"], r["last_seq"])
        for r in rows
    ]


def _verify_by_periods(inp: dict[str, Any]) -> Ack:
    return verify_ack_by_periods(
        inp["ack_text"].encode(),
        inp["sig_text"].encode(),
        periods=_key_periods(inp["periods"]),
        origin_prefix=inp["hub_name"],
    )


@pytest.mark.parametrize(
    "name", [n for n in case_names(check="verify_ack_periods") if not n.startswith("neg-")]
)
def test_ack_key_period_case(name: str) -> None:
    """§10.4.1: the key is chosen by the sidecar, and the seq must lie in its period.
    (The refused ones are negative cases, run with the others.)"""
    spec = case(name)
    assert _verify_by_periods(spec["input"]).seq == spec["expected"]["seq"]


def _numbered_rules(section: str) -> list[str]:
    """The numbered rules of one PROTOCOL.md subsection, as ``"10.2.1"``, ``"10.2.2"``, …"""
    spec = (PROJECT / "PROTOCOL.md").read_text("utf-8")
    start = spec.index(f"\n### {section} ")
    end = spec.index("\n#", start + 1)
    numbers = re.findall(r"^([0-9]+)\. ", spec[start:end], flags=re.MULTILINE)
    assert numbers, f"§{section} has no numbered rules"
    return [f"{section}.{n}" for n in numbers]


def _without_a_negative(section: str, check: str) -> list[str]:
    """The numbered rules of ``section`` that no negative case of ``check`` cites."""
    cited = {
        rule for n in case_names(prefix="neg-", check=check) for rule in case(n).get("rules", [])
    }
    return [r for r in _numbered_rules(section) if r not in cited]


def test_every_ack_parse_and_verification_rule_has_a_negative_vector() -> None:
    """§10.2 and §10.4 are what another verifier must refuse: each rule, a vector."""
    cited = {rule for n in case_names(prefix="neg-") for rule in case(n).get("rules", [])}
    missing = [r for r in _numbered_rules("10.2") + _numbered_rules("10.4") if r not in cited]
    assert not missing, f"no negative vector cites {missing}"


# --------------------------------------------------------------------------------------
# Negative cases: exactly the named error, and nothing trusted changes
# --------------------------------------------------------------------------------------

Runner = Callable[[dict[str, Any], type[ProtocolError]], None]


def _raises(error: type[ProtocolError], action: Callable[[], object]) -> None:
    with pytest.raises(error) as info:
        action()
    assert type(info.value) is error, f"{type(info.value).__name__}: {info.value}"


def _neg_add_header(spec: dict[str, Any], error: type[ProtocolError]) -> None:
    inp = spec["input"]
    hub = trusted_hub(inp["roots"], when(inp["now"]))
    upd = hub.begin_update(ListTrust(inp["list"]), load(spec["files"]["checkpoint"]))
    add_headers(upd, inp["list"], inp["version"] - 1)
    before, verified = list(upd.headers), upd.log_verified
    _raises(error, lambda: upd.add_header(inp["header_text"].encode(), inp["sig_text"].encode()))
    assert upd.headers == before
    assert upd.next_version == inp["version"]
    assert upd.log_verified == verified  # a refused header changes nothing


def _neg_update_root(spec: dict[str, Any], error: type[ProtocolError]) -> None:
    inp = spec["input"]
    hub = trusted_hub(inp["roots"], when(inp["now"]))
    before = list(hub.root_files())
    _raises(error, lambda: hub.update_root(inp["root_text"].encode(), inp["sig_text"].encode()))
    assert list(hub.root_files()) == before


def _neg_begin_update(spec: dict[str, Any], error: type[ProtocolError]) -> None:
    inp = spec["input"]
    list_id = inp["list"]
    hub = trusted_hub(inp["roots"], when(inp["now"]))
    trust = ListTrust(list_id)
    if inp["after_sync"]:
        _, trust = sync(hub, list_id, repo_file(checkpoint_path(list_id)))
    record = trust.to_dict()
    _raises(error, lambda: hub.begin_update(trust, inp["checkpoint_text"].encode()))
    assert trust.to_dict() == record
    assert hub.root.version == len(inp["roots"])


def _neg_sync_list(spec: dict[str, Any], error: type[ProtocolError]) -> None:
    inp = spec["input"]
    list_id = inp["list"]
    hub = trusted_hub(inp["roots"], when(inp["now"]))
    upd = hub.begin_update(ListTrust(list_id), inp["checkpoint_text"].encode())
    _raises(error, lambda: add_headers(upd, list_id, upd.target))
    assert not upd.log_verified
    with pytest.raises(errors.ConsistencyError):
        upd.finish(ListState(upd.spec.hash_length).digest())


def _verified_update(spec: dict[str, Any]) -> ListUpdate:
    inp = spec["input"]
    hub = trusted_hub(inp["roots"], when(inp["now"]))
    upd = hub.begin_update(ListTrust(inp["list"]), load(spec["files"]["checkpoint"]))
    add_headers(upd, inp["list"], upd.target)
    assert upd.log_verified
    return upd


def _neg_add_body(spec: dict[str, Any], error: type[ProtocolError]) -> None:
    upd = _verified_update(spec)
    inp = spec["input"]
    _raises(error, lambda: upd.add_body(inp["version"], inp["body_text"].encode()))
    assert inp["version"] not in upd.bodies


def _neg_add_snapshot(spec: dict[str, Any], error: type[ProtocolError]) -> None:
    upd = _verified_update(spec)
    inp = spec["input"]
    _raises(error, lambda: upd.add_snapshot(inp["version"], bytes.fromhex(inp["snapshot_hex"])))
    assert upd.snapshot_version is None
    assert upd.base_version == 0


def _neg_check_base(spec: dict[str, Any], error: type[ProtocolError]) -> None:
    upd = _verified_update(spec)
    inp = spec["input"]
    for header in upd.bodies_needed():
        upd.add_body(header.version, repo_file(body_path(inp["list"], header.body.sha256)))
    local = ListState.from_hashes(
        upd.spec.hash_length, [bytes.fromhex(h) for h in inp["local_hashes_hex"]]
    )
    record = upd.trust.to_dict()
    _raises(error, lambda: upd.apply(local))
    assert upd.trust.to_dict() == record


def _neg_parse_body(spec: dict[str, Any], error: type[ProtocolError]) -> None:
    inp = spec["input"]
    _raises(error, lambda: DeltaBody.from_bytes(inp["body_text"].encode(), inp["hash_type"]))


_DOCUMENT_PARSERS: dict[str, Callable[[bytes], Any]] = {
    "root": Root.from_bytes,
    "header": DeltaHeader.from_bytes,
    "sidecar": SignatureSidecar.from_bytes,
}


@pytest.mark.parametrize("name", case_names(prefix="document-"))
def test_unknown_members_are_kept_where_the_spec_keeps_them(name: str) -> None:
    spec = case(name)
    data = spec["input"]["text"].encode()
    parsed = _DOCUMENT_PARSERS[spec["input"]["kind"]](data)
    assert parsed.to_bytes() == data == spec["expected"]["canonical_text"].encode()


def _neg_parse_document(spec: dict[str, Any], error: type[ProtocolError]) -> None:
    inp = spec["input"]
    parse = _DOCUMENT_PARSERS[inp["kind"]]
    if "valid_text" in inp:  # the valid document the refused one differs from
        valid = inp["valid_text"].encode()
        assert parse(valid).to_bytes() == valid
    _raises(error, partial(parse, inp["text"].encode()))


def _neg_parse_bodies(spec: dict[str, Any], error: type[ProtocolError]) -> None:
    inp = spec["input"]
    for text in inp["body_texts"]:
        _raises(error, partial(DeltaBody.from_bytes, text.encode(), inp["hash_type"]))


def _neg_parse_canonical(spec: dict[str, Any], error: type[ProtocolError]) -> None:
    for text in spec["input"]["texts"]:
        _raises(error, partial(parse_canonical, text.encode()))


def _neg_list_id(spec: dict[str, Any], error: type[ProtocolError]) -> None:
    for list_id in spec["input"]["list_ids"]:
        _raises(error, partial(validate_list_id, list_id))


def _neg_verify_ack(spec: dict[str, Any], error: type[ProtocolError]) -> None:
    inp = spec["input"]
    key = PublicKey(bytes.fromhex(inp["node_public_hex"]))
    _raises(
        error,
        lambda: verify_ack(
            inp["ack_text"].encode(),
            inp["sig_text"].encode(),
            node_key=key,
            origin_prefix=inp["hub_name"],
        ),
    )


def _hub_after_roots(inp: dict[str, Any]) -> TrustedHub:
    """``input.roots`` from disk, then each of ``input.next_roots`` (root and sidecar text)."""
    hub = trusted_hub(inp["roots"], when(inp["now"]))
    for root in inp["next_roots"]:
        hub.update_root(root["root_text"].encode(), root["sig_text"].encode())
    return hub


def _neg_add_header_after_roots(spec: dict[str, Any], error: type[ProtocolError]) -> None:
    inp = spec["input"]
    hub = _hub_after_roots(inp)
    upd = hub.begin_update(ListTrust(inp["list"]), load(spec["files"]["checkpoint"]))
    add_headers(upd, inp["list"], inp["version"] - 1)
    before = list(upd.headers)
    _raises(error, lambda: upd.add_header(inp["header_text"].encode(), inp["sig_text"].encode()))
    assert upd.headers == before
    assert not upd.log_verified


def _neg_pin_root(spec: dict[str, Any], error: type[ProtocolError]) -> None:
    inp = spec["input"]
    data, sig = inp["root_text"].encode(), inp["sig_text"].encode()
    assert hashlib.sha256(data).hexdigest() == inp["pinned_sha256"]
    version = int(inp["file"].removeprefix("root/").removesuffix(".json"))
    _raises(
        error,
        lambda: TrustedHub(
            data,
            sig,
            now=when(inp["now"]),
            pinned_sha256=inp["pinned_sha256"],
            pinned_version=version,
        ),
    )


@pytest.mark.parametrize("name", case_names(check="sync_after_roots"))
def test_roots_that_rotate_no_delta_key_leave_every_published_header_valid(name: str) -> None:
    spec = case(name)
    hub = _hub_after_roots(spec["input"])
    want = spec["expected"]
    assert hub.root.version == want["root_version"]
    given = spec["input"].get("checkpoint_texts", {})
    for list_id, expected in want["lists"].items():
        if list_id in given:  # re-issued under keys a later root rotated in
            note = given[list_id].encode()
            with pytest.raises(errors.SignatureError):
                hub.begin_update(ListTrust(list_id), repo_file(checkpoint_path(list_id)))
        else:
            note = repo_file(checkpoint_path(list_id))
        state, trust = sync(hub, list_id, note)
        assert (trust.version, trust.root_version) == (
            expected["version"],
            expected["root_version"],
        )
        assert state.digest() == trust.state == digest(expected["state"])


@pytest.mark.parametrize("name", case_names(check="sync_new_lists"))
def test_lists_of_every_hash_type_verify_end_to_end(name: str) -> None:
    spec = case(name)
    hub = _hub_after_roots(spec["input"])
    assert hub.root.version == spec["expected"]["root_version"]
    types = set()
    for list_id, given in spec["input"]["lists"].items():
        want = spec["expected"]["lists"][list_id]
        width = hub.root.list_spec(list_id).hash_length
        assert hub.root.list_spec(list_id).hash_type == want["hash_type"]
        upd = hub.begin_update(ListTrust(list_id), given["checkpoint_text"].encode())
        for h in given["headers"]:
            upd.add_header(h["header_text"].encode(), h["sig_text"].encode())
        bodies = {hashlib.sha256(b.encode()).hexdigest(): b.encode() for b in given["bodies"]}
        for header in upd.bodies_needed():
            upd.add_body(header.version, bodies[header.body.sha256])
        state, trust = upd.apply(ListState(width), check_every_version=True)
        assert trust.version == want["version"]
        assert state.digest() == trust.state == digest(want["state"])
        assert state.to_bytes().hex() == want["snapshot_2_hex"]
        types.add(want["hash_type"])
    assert types == {"phash", "sha256"}  # with repo/'s pdq and md5: every hash type


def _checkpoint_update(spec: dict[str, Any]) -> tuple[TrustedHub, ListTrust, bytes]:
    """The hub, the trust record and the note of a ``verify_checkpoint`` case, read from
    the case alone: a pinned root in the case, or the repository's roots."""
    inp = spec["input"]
    now = when(inp["now"])
    if "root_text" in inp:
        hub = TrustedHub(inp["root_text"].encode(), inp["root_sig_text"].encode(), now=now)
    else:
        hub = trusted_hub(inp["roots"], now)
    trust = ListTrust(inp["list"])
    if inp["after_sync"]:
        _, trust = sync(hub, inp["list"], repo_file(checkpoint_path(inp["list"])))
    return hub, trust, inp["checkpoint_text"].encode()


def _neg_verify_checkpoint(spec: dict[str, Any], error: type[ProtocolError]) -> None:
    hub, trust, note = _checkpoint_update(spec)
    record = trust.to_dict()
    _raises(error, lambda: hub.begin_update(trust, note))
    assert trust.to_dict() == record


@pytest.mark.parametrize(
    "name", [n for n in case_names(check="verify_checkpoint") if not n.startswith("neg-")]
)
def test_verify_checkpoint_case(name: str) -> None:
    spec = case(name)
    hub, trust, note = _checkpoint_update(spec)
    upd = hub.begin_update(trust, note)
    expected = spec["expected"]
    assert upd.checkpoint.size == expected["size"]
    assert base64.b64encode(upd.checkpoint.root_hash).decode() == expected["root_hash_b64"]
    assert upd.checkpoint.timestamp == when(expected["time"])
    assert upd.checkpoint.raw == note


def _inline_update(
    spec: dict[str, Any],
) -> tuple[list[tuple[str, Callable[[], None]]], dict[str, Any]]:
    """The stages of an ``inline_update`` case in order, over one update (see README), and
    what they hold: ``upd``, ``base`` and, once ``apply`` ran, ``result``."""
    inp = spec["input"]
    hub = trusted_hub(inp["roots"], when(inp["now"]))
    held: dict[str, Any] = {}

    def checkpoint() -> None:
        held["upd"] = hub.begin_update(ListTrust(inp["list"]), inp["checkpoint_text"].encode())
        held["base"] = ListState(held["upd"].spec.hash_length)

    def headers() -> None:
        for item in inp["headers"]:
            held["upd"].add_header(item["header_text"].encode(), item["sig_text"].encode())

    def snapshot() -> None:
        if "snapshot" in inp:
            snap = inp["snapshot"]
            data = bytes.fromhex(snap["snapshot_hex"])
            held["base"] = held["upd"].add_snapshot(snap["version"], data)

    def bodies() -> None:
        for header in held["upd"].bodies_needed():
            held["upd"].add_body(header.version, inp["bodies"][str(header.version)].encode())

    def apply() -> None:
        held["result"] = held["upd"].apply(held["base"])

    stages = [("checkpoint", checkpoint), ("headers", headers), ("snapshot", snapshot)]
    stages += [("bodies", bodies), ("apply", apply)]
    return stages, held


@pytest.mark.parametrize("name", [n for n in case_names(check="inline_update") if "neg-" not in n])
def test_inline_update_case(name: str) -> None:
    spec = case(name)
    stages, held = _inline_update(spec)
    for _, step in stages:
        step()
    state, trust = held["result"]
    assert trust.version == spec["expected"]["version"]
    assert state.digest() == trust.state == digest(spec["expected"]["state"])


def _neg_inline_update(spec: dict[str, Any], error: type[ProtocolError]) -> None:
    """Every stage before ``fails_at`` passes; that one raises exactly ``error``."""
    stages, held = _inline_update(spec)
    for name, step in stages:
        if name == spec["fails_at"]:
            _raises(error, step)
            assert "result" not in held, "nothing is applied"
            return
        step()
    raise AssertionError(f"no stage {spec['fails_at']!r}")


def _neg_missing_file(spec: dict[str, Any], error: type[ProtocolError]) -> None:
    """An auditor's walk over every file §11.1 promises, with one of them found nowhere."""
    inp = spec["input"]
    list_id, missing = inp["list"], inp["missing"]

    def get(path: str) -> bytes:
        if path == missing or not repo_has(path):
            raise errors.MissingFileError(path, "the signed data refers to it")
        return repo_file(path)

    def audit() -> None:
        hub = trusted_hub(inp["roots"], when(inp["now"]))
        text = inp.get("checkpoint_text")
        checkpoint = text.encode() if text is not None else get(checkpoint_path(list_id))
        upd = hub.begin_update(ListTrust(list_id), checkpoint)
        for version in range(1, upd.target + 1):
            path = header_path(list_id, version)
            upd.add_header(get(path), get(path + ".sig"))
        for header in upd.bodies_needed():
            upd.add_body(header.version, get(body_path(list_id, header.body.sha256)))
        upd.apply(ListState(upd.spec.hash_length), check_every_version=True)
        for version in upd.snapshots_due():
            upd.add_snapshot(version, get(snapshot_path(list_id, version)))

    with pytest.raises(error) as info:
        audit()
    assert type(info.value) is error
    assert isinstance(info.value, errors.MissingFileError)
    assert info.value.path == missing, "the error names the file no source has"
    assert str(info.value).startswith(f"{missing}: found at no source")


# --------------------------------------------------------------------------------------
# Entries lists: records, bodies, state, a published tree and their rules
# --------------------------------------------------------------------------------------


def _record(fields: dict[str, Any], kind: str) -> Entry:
    """An entry record from the JSON members a case gives (as ``Entry.to_dict`` plus
    ``hash_hex``)."""
    source_kind, colon, ref = fields["source"].partition(":")
    entry = Entry(
        hash=bytes.fromhex(fields["hash_hex"]),
        entry_id=fields["entry"],
        category=fields["category"],
        classification=fields["classification"],
        source_kind=source_kind,
        source_ref=ref if colon else None,
        first_seen=when(fields["first_seen"]),
        expires=None if fields["expires"] is None else when(fields["expires"]),
    )
    assert len(entry.hash) == hash_type(kind).length
    return entry


def test_entries_record_case() -> None:
    spec = case("entries-record")
    inp, lines = spec["input"], spec["expected"]["lines"]
    assert len(inp["records"]) == len(lines) >= 3
    sources = set()
    for fields, line in zip(inp["records"], lines, strict=True):
        # The line written by hand from the fields: seven fields, one space apart.
        by_hand = " ".join(
            [
                fields["hash_hex"],
                fields["entry"],
                fields["category"],
                fields["classification"],
                fields["source"],
                fields["first_seen"],
                fields["expires"] or "-",
            ]
        )
        assert by_hand == line
        entry = _record(fields, inp["hash_type"])
        assert entry.to_line() == line.encode()
        parsed = Entry.from_line(line.encode(), hash_type(inp["hash_type"]))
        assert parsed == entry
        assert {"hash_hex": parsed.hash.hex(), **parsed.to_dict()} == fields
        sources.add((":" in fields["source"], fields["expires"] is None))
    assert sources >= {(True, True), (False, False)}  # with and without ref and expires


def _body_text(kind: str, removes: list[tuple[str, str]], adds: list[str]) -> bytes:
    """A ``hashhub.body.v2`` body written by hand: each group sorted as bytes."""
    reasons = dict(removes)
    lines = [f"hashhub.body.v2 {kind}\n".encode()]
    lines += [f"-{r} {reasons[r]}\n".encode() for r in sorted(reasons, key=str.encode)]
    lines += [f"+{a}\n".encode() for a in sorted(adds, key=str.encode)]
    return b"".join(lines)


def test_entries_body_case() -> None:
    spec = case("entries-body")
    inp, want = spec["input"], spec["expected"]
    kind = hash_type(inp["hash_type"])
    removes = [(r["record"], r["reason"]) for r in inp["removes"]]
    data = _body_text(inp["hash_type"], removes, inp["adds"])
    assert data == want["text"].encode()
    assert hashlib.sha256(data).hexdigest() == want["sha256"]
    assert len(data) == want["length"]
    assert (want["adds"], want["removes"]) == (len(inp["adds"]), len(removes))
    assert {reason for _, reason in removes} >= {"changed", "withdrawn", "expired"}
    built = EntriesBody.build(
        inp["hash_type"],
        [Removal(Entry.from_line(r.encode(), kind), reason) for r, reason in removes],
        [Entry.from_line(a.encode(), kind) for a in inp["adds"]],
    )
    assert built.to_bytes() == data
    assert built.ref().to_dict() == {k: want[k] for k in ("sha256", "length", "adds", "removes")}
    parsed = EntriesBody.from_bytes(data, inp["hash_type"])
    assert parsed == built
    parsed.check_vocabulary(Vocabulary.from_dict(inp["vocabulary"]))
    parsed.check_times(when(inp["created"]))


@pytest.mark.parametrize("name", case_names(check="entries_state_digest"))
def test_entries_state_digest_case(name: str) -> None:
    spec = case(name)
    inp, want = spec["input"], spec["expected"]
    snapshot = b"".join(r.encode() + b"\n" for r in sorted(inp["records"], key=str.encode))
    assert snapshot == want["snapshot_text"].encode()
    assert hashlib.sha256(snapshot).hexdigest() == want["sha256"]
    assert want["count"] == len(inp["records"])
    kind = hash_type(inp["hash_type"])
    state = EntryState.from_entries(
        kind, [Entry.from_line(r.encode(), kind) for r in inp["records"]]
    )
    assert state.to_bytes() == snapshot
    assert state.digest() == digest(want)


def _entries_body_rules(inp: dict[str, Any], text: str) -> EntriesBody:
    """What a verifier checks of a body alone: grammar and body rules, the vocabulary, the
    times against the header's ``created``."""
    body = EntriesBody.from_bytes(text.encode(), inp["hash_type"])
    body.check_vocabulary(Vocabulary.from_dict(inp["vocabulary"]))
    body.check_times(when(inp["created"]))
    return body


def _neg_entries_body_rules(spec: dict[str, Any], error: type[ProtocolError]) -> None:
    inp = spec["input"]
    _entries_body_rules(inp, inp["valid_body_text"])  # the one it differs from passes
    assert inp["valid_body_text"] != inp["body_text"]
    _raises(error, partial(_entries_body_rules, inp, inp["body_text"]))


def _neg_entries_apply(spec: dict[str, Any], error: type[ProtocolError]) -> None:
    inp = spec["input"]
    kind = hash_type(inp["hash_type"])
    records = [Entry.from_line(r.encode(), kind) for r in inp["state_records"]]
    state = EntryState.from_entries(kind, records)
    before = state.to_bytes()
    state.apply(_entries_body_rules(inp, inp["valid_body_text"]))
    body = _entries_body_rules(inp, inp["body_text"])  # valid alone
    _raises(error, partial(state.apply, body))
    assert state.to_bytes() == before


def _entries_update(
    spec: dict[str, Any], base: int | None = None
) -> tuple[list[tuple[str, Callable[[], None]]], dict[str, Any]]:
    """The stages of an ``entries_sync`` case in order, over one update (see README), and
    what they hold: ``upd``, ``base`` and, once ``apply`` ran, ``result``. ``base``
    overrides the case's snapshot version."""
    inp = spec["input"]
    start = inp["base"] if base is None else base
    hub = TrustedHub(inp["root_text"].encode(), inp["root_sig_text"].encode(), now=when(inp["now"]))
    held: dict[str, Any] = {}

    def checkpoint() -> None:
        held["upd"] = hub.begin_update(ListTrust(inp["list"]), inp["checkpoint_text"].encode())
        held["base"] = EntryState(hash_type(held["upd"].spec.hash_type))

    def headers() -> None:
        for item in inp["headers"]:
            held["upd"].add_header(item["header_text"].encode(), item["sig_text"].encode())

    def snapshot() -> None:
        if start is not None:
            data = inp["snapshots"][str(start)].encode()
            held["base"] = held["upd"].add_entries_snapshot(start, data)

    def bodies() -> None:
        for header in held["upd"].bodies_needed():
            held["upd"].add_entries_body(
                header.version, inp["bodies"][str(header.version)].encode()
            )

    def apply() -> None:
        held["result"] = held["upd"].apply_entries(held["base"], check_every_version=True)

    stages = [("checkpoint", checkpoint), ("headers", headers), ("snapshot", snapshot)]
    stages += [("bodies", bodies), ("apply", apply)]
    return stages, held


def _run_entries(spec: dict[str, Any], base: int | None = None) -> tuple[EntryState, ListTrust]:
    stages, held = _entries_update(spec, base)
    for _, step in stages:
        step()
    result: tuple[EntryState, ListTrust] = held["result"]
    return result


@pytest.mark.parametrize("name", [n for n in case_names(check="entries_sync") if "neg-" not in n])
def test_entries_sync_case(name: str) -> None:
    spec = case(name)
    inp, want = spec["input"], spec["expected"]
    root = Root.from_bytes(inp["root_text"].encode())
    assert root.list_spec(inp["list"]).entries
    state, trust = _run_entries(spec)
    assert trust.version == want["version"] == len(inp["headers"])
    assert state.digest() == trust.state == digest(want["state"])
    lines = [line.decode() for line in state.lines()]
    assert lines == want["records"]
    snapshot = b"".join(r.encode() + b"\n" for r in want["records"])
    assert hashlib.sha256(snapshot).hexdigest() == want["state"]["sha256"]
    now = when(inp["now"])
    expired = sorted(
        line.split(" ")[1]
        for line in want["records"]
        if line.split(" ")[6] != "-" and when(line.split(" ")[6]) <= now
    )
    assert expired == want["expired_at_now"]
    assert [e.entry_id for e in state.entries() if e.expired(now)] == expired
    # The history shows each kind of removal and a change of metadata.
    texts = "".join(inp["bodies"].values())
    for reason in ("changed", "withdrawn", "expired"):
        assert f" {reason}\n" in texts, reason
    # Each snapshot the tree holds is the state its header signs, and bootstraps to the
    # same final state.
    assert inp["snapshots"]
    for version, text in inp["snapshots"].items():
        header = DeltaHeader.from_bytes(inp["headers"][int(version) - 1]["header_text"].encode())
        assert hashlib.sha256(text.encode()).hexdigest() == header.result_state.sha256
        again, trust_again = _run_entries(spec, int(version))
        assert again == state
        assert trust_again.state == trust.state


def _neg_entries_sync(spec: dict[str, Any], error: type[ProtocolError]) -> None:
    """Every stage before ``fails_at`` passes; that one raises exactly ``error``."""
    stages, held = _entries_update(spec)
    for name, step in stages:
        if name == spec["fails_at"]:
            _raises(error, step)
            assert "result" not in held, "nothing is applied"
            if name == "snapshot":
                assert held["upd"].snapshot_version is None
            return
        step()
    raise AssertionError(f"no stage {spec['fails_at']!r}")


def _entries_hub(inp: dict[str, Any]) -> TrustedHub:
    return TrustedHub(
        inp["root_text"].encode(), inp["root_sig_text"].encode(), now=when(inp["now"])
    )


@pytest.mark.parametrize(
    "name", [n for n in case_names(check="entries_update_root") if not n.startswith("neg-")]
)
def test_entries_root_successor_case(name: str) -> None:
    spec = case(name)
    inp, want = spec["input"], spec["expected"]
    hub = _entries_hub(inp)
    old = hub.root.vocabulary
    hub.update_root(inp["next_root_text"].encode(), inp["next_sig_text"].encode())
    assert hub.root.version == want["root_version"]
    assert hub.root.vocabulary is not None
    assert old is not None
    assert hub.root.vocabulary.to_dict() == want["vocabulary"]
    for group, terms in old.to_dict().items():
        assert set(terms) <= set(want["vocabulary"][group])
    scale = [t for t in want["vocabulary"]["classifications"] if t in old.classifications]
    assert scale == list(old.classifications)


def _neg_entries_update_root(spec: dict[str, Any], error: type[ProtocolError]) -> None:
    inp = spec["input"]
    hub = _entries_hub(inp)
    before = list(hub.root_files())
    _raises(
        error,
        lambda: hub.update_root(inp["next_root_text"].encode(), inp["next_sig_text"].encode()),
    )
    assert list(hub.root_files()) == before
    assert hub.root.version == 1


def _summary_check(inp: dict[str, Any]) -> OpinionSummary:
    """§10.7 from the case's bytes: the header (already verified), the root it names and
    the state at its version."""
    root = Root.from_bytes(inp["root_text"].encode())
    header = DeltaHeader.from_bytes(inp["header_text"].encode())
    state = EntryState.from_snapshot(hash_type("pdq"), inp["state_text"].encode(), root.vocabulary)
    return verify_summary(header, inp["summary_text"].encode(), root, state)


@pytest.mark.parametrize(
    "name", [n for n in case_names(check="opinions_summary") if not n.startswith("neg-")]
)
def test_opinions_summary_case(name: str) -> None:
    """A summary is accepted, says what the case expects, and is exactly the fold of the
    acks it names: each verified under its node's key, folded over the summary's cut."""
    spec = case(name)
    inp, want = spec["input"], spec["expected"]
    summary = _summary_check(inp)
    assert hashlib.sha256(inp["summary_text"].encode()).hexdigest() == want["summary_sha256"]
    assert sorted(summary.entries) == want["entries"]
    assert sorted(e for e in summary.entries if summary.disputed(e)) == want["disputed"]
    assert {
        e: {"confirmed": len(o.confirmed), "disputed": len(o.disputed)}
        for e, o in summary.entries.items()
    } == want["counts"]
    acks = [
        verify_ack(
            a["ack_text"].encode(),
            a["sig_text"].encode(),
            node_key=PublicKey(bytes.fromhex(a["node_public_hex"])),
            origin_prefix=inp["hub_name"],
        )
        for a in inp["acks"]
    ]
    positions = fold_positions(acks, summary.nodes)
    folded = {}
    for entry_id, said in positions.items():
        voices = voices_of(said)
        if voices.confirmed or voices.disputed:
            folded[entry_id] = (dict(voices.confirmed), dict(voices.disputed))
    vocabulary = Root.from_bytes(inp["root_text"].encode()).vocabulary
    held = EntryState.from_snapshot(
        hash_type("pdq"), inp["state_text"].encode(), vocabulary
    ).entry_ids()
    assert {e: v for e, v in folded.items() if e in held} == {
        e: (dict(o.confirmed), dict(o.disputed)) for e, o in summary.entries.items()
    }


def _provenance_check(inp: dict[str, Any]) -> Provenance:
    root = Root.from_bytes(inp["root_text"].encode())
    header = DeltaHeader.from_bytes(inp["header_text"].encode())
    body = EntriesBody.from_bytes(inp["body_text"].encode(), "pdq")
    return verify_provenance(header, inp["provenance_text"].encode(), root, body, hash_type("pdq"))


@pytest.mark.parametrize(
    "name", [n for n in case_names(check="verify_provenance") if not n.startswith("neg-")]
)
def test_provenance_case(name: str) -> None:
    """The document verifies, and what §7.5 leaves to an auditor holds too: the upstream's
    root is the one the downstream's root pins, its signed checkpoint has the origin's
    size and root, its body adds the record line, and the contribution verifies under
    the member's key. An exchange's record is checked with the exchange, which a vector
    cannot hold: here only that the StopNCII record gives the hash the origin names."""
    spec = case(name)
    inp = spec["input"]
    doc = _provenance_check(inp)
    assert {e: type(o).__name__ for e, o in doc.origins.items()} == spec["expected"]["origins"]
    root = Root.from_bytes(inp["root_text"].encode())
    up = inp["upstream"]
    for origin in doc.origins.values():
        if isinstance(origin, UpstreamOrigin):
            pin = root.upstreams[origin.hub].root_sha256
            assert hashlib.sha256(up["root_text"].encode()).hexdigest() == pin
            upstream = TrustedHub(
                up["root_text"].encode(),
                up["root_sig_text"].encode(),
                now=make_vectors.VERIFY_AT,
                pinned_sha256=pin,
            )
            signed = upstream.verify_checkpoint(origin.list_id, up["checkpoint_text"].encode())
            assert (signed.size, signed.root_hash) == (origin.size, origin.root)
            body = EntriesBody.from_bytes(up["body_text"].encode(), "pdq")
            assert origin.record in {e.line for e in body.adds}
        elif isinstance(origin, ExchangeOrigin):
            assert origin.api == "stopncii"
            assert origin.record["hashValue"] == origin.hash_hex
        else:
            verify_contribution(
                origin.contribution,
                origin.sig,
                node_key=PublicKey(bytes.fromhex(inp["node_public_hex"])),
            )


def test_every_provenance_rule_has_a_negative_vector() -> None:
    assert _without_a_negative("7.5", "verify_provenance") == []


def _contribution_check(inp: dict[str, Any]) -> Contribution:
    return verify_contribution(
        inp["text"].encode(),
        inp["sig_text"].encode(),
        node_key=PublicKey(bytes.fromhex(inp["node_public_hex"])),
    )


@pytest.mark.parametrize(
    "name", [n for n in case_names(check="verify_contribution") if not n.startswith("neg-")]
)
def test_contribution_case(name: str) -> None:
    """A contribution verifies, reads as the case says and re-encodes to its bytes."""
    spec = case(name)
    read = _contribution_check(spec["input"])
    want = spec["expected"]
    assert read.seq == want["seq"]
    assert {t: h.to_dict() for t, h in read.hashes.items()} == want["hashes"]
    assert read.review.to_dict() == want["review"]
    assert read.to_bytes() == spec["input"]["text"].encode()


def test_every_contribution_rule_has_a_negative_vector() -> None:
    assert _without_a_negative("10.8", "verify_contribution") == []


def test_every_opinion_summary_rule_has_a_negative_and_a_positive_vector() -> None:
    negatives = {
        rule
        for n in case_names(prefix="neg-")
        if case(n)["check"] == "opinions_summary"
        for rule in case(n).get("rules", [])
    }
    assert [r for r in _numbered_rules("10.7") if r not in negatives] == []
    assert any(
        "10.7" in case(n).get("rules", [])
        for n in case_names(check="opinions_summary")
        if not n.startswith("neg-")
    )


# --------------------------------------------------------------------------------------
# Video frames (vPDQ): the encoding (§6.3) and the matching rule (§6.4)
# --------------------------------------------------------------------------------------


def _frames_bytes(inp: dict[str, Any], prefix: str = "") -> bytes:
    """A ``video_frames`` case's string: ``frames_hex``, or the ``run`` it describes
    (``count`` frames of one hash and quality, the n-th at n × ``step_ms``)."""
    run = inp.get(f"{prefix}run")
    if run is None:
        return bytes.fromhex(inp[f"{prefix}frames_hex"])
    frame = bytes.fromhex(run["pdq_hex"]) + bytes([run["quality"]])
    return b"".join(frame + (n * run["step_ms"]).to_bytes(4, "big") for n in range(run["count"]))


@pytest.mark.parametrize(
    "name", [n for n in case_names(check="video_frames") if not n.startswith("neg-")]
)
def test_video_frames_case(name: str) -> None:
    """The frames read as the case lists them, and their SHA-256 is the record's hash."""
    spec = case(name)
    data = _frames_bytes(spec["input"])
    frames = decode_frames(data)
    want = spec["expected"]
    assert len(frames) == want["count"]
    assert [
        {"pdq_hex": f.pdq.hex(), "quality": f.quality, "millis": f.millis} for f in frames
    ] == want["frames"]
    assert frames_digest(frames).hex() == want["sha256"] == hashlib.sha256(data).hexdigest()


def _neg_video_frames(spec: dict[str, Any], error: type[ProtocolError]) -> None:
    inp = spec["input"]
    decode_frames(_frames_bytes(inp, "valid_"))  # the one it differs from reads
    _raises(error, partial(decode_frames, _frames_bytes(inp)))


def _frames_file(inp: dict[str, Any], prefix: str = "") -> bytes:
    """A ``video_frames_file`` case's file: ``file_hex``, or the ``run`` it describes."""
    if f"{prefix}file_hex" in inp:
        return bytes.fromhex(inp[f"{prefix}file_hex"])
    return _frames_bytes(inp, prefix)


def _frames_record(inp: dict[str, Any]) -> Entry:
    return Entry.from_line(inp["record"].encode("ascii"), HASH_TYPES["vpdq"])


@pytest.mark.parametrize(
    "name", [n for n in case_names(check="video_frames_file") if not n.startswith("neg-")]
)
def test_video_frames_file_case(name: str) -> None:
    """A record's frames file: where it is, and its frames read against the record."""
    spec = case(name)
    inp, want = spec["input"], spec["expected"]
    record = _frames_record(inp)
    frames = read_frames_file(record.hash, _frames_file(inp))
    assert len(frames) == want["count"]
    assert frames_path(inp["list"], record.hash.hex()) == want["path"]
    assert record.hash.hex() == want["sha256"]


def _neg_video_frames_file(spec: dict[str, Any], error: type[ProtocolError]) -> None:
    inp = spec["input"]
    decode_frames(_frames_file(inp, "valid_"))  # a file that reads, of some record
    _raises(error, partial(read_frames_file, _frames_record(inp).hash, _frames_file(inp)))


def test_every_frames_file_rule_has_a_negative_vector() -> None:
    assert _without_a_negative("6.5", "video_frames_file") == []


@pytest.mark.parametrize("name", case_names(check="video_match"))
def test_video_match_case(name: str) -> None:
    """§6.4 on the case's two videos gives its shares and outcome, and swapping the
    sides swaps the shares and keeps the outcome."""
    spec = case(name)
    query = decode_frames(bytes.fromhex(spec["input"]["query_hex"]))
    listed = decode_frames(bytes.fromhex(spec["input"]["listed_hex"]))
    want = spec["expected"]
    result = match_video(query, listed)
    assert list(result.query_share) == want["query_share"]
    assert list(result.listed_share) == want["listed_share"]
    assert result.matched is want["match"]
    swapped = match_video(listed, query)
    assert (swapped.query_share, swapped.listed_share) == (
        result.listed_share,
        result.query_share,
    )
    assert swapped.matched is result.matched


def test_every_video_frames_rule_has_a_negative_vector() -> None:
    assert _without_a_negative("6.3", "video_frames") == []


def test_every_video_matching_rule_has_a_vector_and_every_cited_rule_exists() -> None:
    """Each rule of §6.4 is shown by a ``video_match`` case; no case cites a rule of
    §6.3 or §6.4 that the text does not number."""
    cited = {r for n in case_names(check="video_match") for r in case(n).get("rules", [])}
    assert [r for r in _numbered_rules("6.4") if r not in cited] == []
    known = set(_numbered_rules("6.3") + _numbered_rules("6.4")) | {"6.3", "6.4"}
    for name in case_names():
        for rule in case(name).get("rules", []):
            if rule.startswith(("6.3", "6.4")):
                assert rule in known, (name, rule)


NEGATIVE_RUNNERS: dict[str, Runner] = {
    "add_header": _neg_add_header,
    "add_header_after_roots": _neg_add_header_after_roots,
    "pin_root": _neg_pin_root,
    "update_root": _neg_update_root,
    "begin_update": _neg_begin_update,
    "sync_list": _neg_sync_list,
    "add_body": _neg_add_body,
    "add_snapshot": _neg_add_snapshot,
    "check_base": _neg_check_base,
    "parse_body": _neg_parse_body,
    "parse_bodies": _neg_parse_bodies,
    "parse_document": _neg_parse_document,
    "parse_canonical": _neg_parse_canonical,
    "list_id": _neg_list_id,
    "verify_ack": _neg_verify_ack,
    "verify_ack_periods": lambda spec, error: _raises(
        error, partial(_verify_by_periods, spec["input"])
    ),
    "inline_update": _neg_inline_update,
    "missing_file": _neg_missing_file,
    "verify_checkpoint": _neg_verify_checkpoint,
    "entries_body_rules": _neg_entries_body_rules,
    "entries_apply": _neg_entries_apply,
    "entries_sync": _neg_entries_sync,
    "entries_update_root": _neg_entries_update_root,
    "verify_provenance": lambda spec, error: _raises(
        error, partial(_provenance_check, spec["input"])
    ),
    "verify_contribution": lambda spec, error: _raises(
        error, partial(_contribution_check, spec["input"])
    ),
    "opinions_summary": lambda spec, error: _raises(error, partial(_summary_check, spec["input"])),
    "video_frames": _neg_video_frames,
    "video_frames_file": _neg_video_frames_file,
}


@pytest.mark.parametrize("name", case_names(prefix="neg-"))
def test_negative_case_raises_its_named_error(name: str) -> None:
    spec = case(name)
    runner = NEGATIVE_RUNNERS[spec["check"]]
    runner(spec, error_class(spec["error"]))


def test_negative_cases_cover_every_threat_class() -> None:
    named = {case(n)["error"] for n in case_names(prefix="neg-")}
    assert named >= {
        "SignatureError",
        "MalformedError",
        "WrongTypeError",
        "BodyRuleError",
        "InvalidListIdError",
        "RollbackError",
        "FreezeError",
        "ExpiredError",
        "EquivocationError",
        "ConsistencyError",
        "StateMismatchError",
        "UnknownListError",
        "MissingFileError",
        "LimitError",
    }


# --------------------------------------------------------------------------------------
# PROTOCOL.md's worked example quotes these files
# --------------------------------------------------------------------------------------


def test_protocol_md_worked_example_quotes_the_committed_vectors() -> None:
    spec = (PROJECT / "PROTOCOL.md").read_text("utf-8")
    quoted = [
        repo_file(header_path("demo-md5", 1)).decode(),
        repo_file(header_path("demo-md5", 1) + ".sig").decode(),
        repo_file(checkpoint_path("demo-md5")).decode(),
        case("leaf-hash")["expected"]["leaf_hash_hex"],
        case("cosignature")["expected"]["signed_message_text"],
    ]
    header = DeltaHeader.from_bytes(repo_file(header_path("demo-md5", 1)))
    quoted.append(repo_file(body_path("demo-md5", header.body.sha256)).decode())
    quoted.append(header.result_state.sha256)
    missing = [text[:60] for text in quoted if text not in spec]
    assert not missing, f"PROTOCOL.md does not quote the current vectors: {missing}"


# -- every rule of §13 has a vector ---------------------------------------------------


def _section_13_rules() -> dict[str, str]:
    """Each numbered rule of PROTOCOL.md §13 as ``{"13.4.9": its first line}``.

    Numbered list items under a ``### 13.x`` heading are rules (``1.`` at the margin,
    ``   1.`` one level in, as ``13.1.2.4``); so are table rows whose first cell is a
    rule number (``| 13.3.1 |``). A rule with numbered sub-rules is covered by them.
    """
    text = (PROJECT / "PROTOCOL.md").read_text(encoding="utf-8")
    section = text[text.index("## 13. Verification rules") : text.index("## 14. Errors")]
    rules: dict[str, str] = {}
    sub = ""
    outer = ""
    for line in section.splitlines():
        heading = re.match(r"### (13\.\d+) ", line)
        if heading:
            sub, outer = heading.group(1), ""
            continue
        if not sub:
            continue
        top = re.match(r"(\d+)\. (.*)", line)
        nested = re.match(r"   (\d+)\. (.*)", line)
        row = re.match(r"\| (13\.\d+\.\d+) \|(.*)", line)
        if top:
            outer = f"{sub}.{top.group(1)}"
            rules[outer] = top.group(2)
        elif nested and outer:
            rules.pop(outer, None)  # covered by its sub-rules
            rules[f"{outer}.{nested.group(1)}"] = nested.group(2)
        elif row:
            rules[row.group(1)] = row.group(2)
    return rules


NOT_A_VECTOR = {
    "13.1.4": "which root later checks use: every vector that names its roots shows it",
    "13.7.4": "commit in one transaction: a property of the verifier's storage, tested "
    "in tests/node (a rejected update leaves the store as it was)",
}
"""Rules of §13 no vector can show, each with where it is proved instead."""


@pytest.mark.parametrize("side", ["negative", "positive"])
def test_every_rule_of_section_13_has_a_negative_and_a_positive_vector(side: str) -> None:
    """A rule is cited by a case that must fail on it, and by one that passes it."""
    rules = _section_13_rules()
    assert len(rules) >= 40, sorted(rules)
    cited = {
        rule
        for name in case_names()
        if ("error" in case(name)) == (side == "negative")
        for rule in case(name).get("rules", [])
    }
    missing = sorted(set(rules) - cited - set(NOT_A_VECTOR))
    assert not missing, "\n".join(f"{r}: {rules[r][:70]}" for r in missing)
    assert set(NOT_A_VECTOR) <= set(rules), sorted(set(NOT_A_VECTOR) - set(rules))


def test_every_rule_a_vector_cites_exists() -> None:
    known = set(_section_13_rules())
    for name in case_names():
        for rule in case(name).get("rules", []):
            if rule.startswith("13."):
                assert rule in known or any(k.startswith(rule + ".") for k in known), (name, rule)
