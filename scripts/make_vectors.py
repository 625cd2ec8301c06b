"""Regenerate the protocol test vectors in ``docs/vectors/``, deterministically.

Every byte comes from fixed inputs run through the real ``protocol`` code
(``Publisher``, ``root_files``, ``sign_ack``, …): Ed25519 keys from public seeds
(SHA-256 of ``"hashhub vector key: <label>"``), a fixed clock, and hashes
derived from labels. Ed25519 signatures are deterministic, so the same code
always writes the same files, and a difference in any of them means the wire
format changed.

Usage::

    python scripts/make_vectors.py [--check] [OUT_DIR]     # OUT_DIR: docs/vectors

``--check`` regenerates into a temporary directory and exits 1, listing every
file that differs from OUT_DIR (changed, missing or extra).

``build_vectors()`` returns the same files as ``{relative path: bytes}``;
``tests/protocol/test_vectors.py`` compares it with what is committed and
re-verifies the cases from the files alone.
"""

from __future__ import annotations

import argparse
import base64
import filecmp
import hashlib
import json
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocol import (
    GENESIS_PREV,
    Ack,
    AppliedVersion,
    BodyRuleError,
    Checkpoint,
    ConsistencyError,
    Counts,
    DeltaBody,
    DeltaHeader,
    Dispute,
    EntriesBody,
    Entry,
    EntryState,
    EquivocationError,
    ExpiredError,
    FreezeError,
    InvalidListIdError,
    LimitError,
    Limits,
    ListHead,
    ListSpec,
    ListState,
    ListTrust,
    ListUpdate,
    MalformedError,
    MissingFileError,
    NodeCut,
    NodeKeyPeriod,
    Opinion,
    OpinionSummary,
    Policy,
    ProofError,
    ProtocolError,
    PublicKey,
    Publisher,
    Removal,
    Role,
    RollbackError,
    Root,
    SignatureError,
    SignatureSidecar,
    SigningKey,
    StateMismatchError,
    TrustedHub,
    UnknownListError,
    Upstream,
    Vocabulary,
    VocabularyError,
    WrongTypeError,
    b64encode,
    body_path,
    canonicalize,
    checkpoint_path,
    cosign,
    fold_positions,
    header_opinions,
    header_path,
    opinions_path,
    parse_canonical,
    root_files,
    sign_ack,
    sign_bytes,
    sign_note,
    snapshot_path,
    validate_list_id,
    verify_ack,
    verify_ack_by_periods,
    verify_summary,
    voices_of,
)
from protocol.canonical import MAX_DEPTH
from protocol.checkpoint import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    MAX_SIGNATURE_LINES,
    NoteSignature,
    SignedCheckpoint,
    note_key_id,
)
from protocol.contribution import (
    ContributedHash,
    Contribution,
    Review,
    sign_contribution,
    verify_contribution,
)
from protocol.entries import record_limit
from protocol.hashtypes import HASH_TYPES
from protocol.keys import Signature
from protocol.layout import frames_path, provenance_path
from protocol.lists import hash_type
from protocol.merkle import EMPTY_ROOT, CompactRange, inclusion_proof, leaf_hash
from protocol.provenance import (
    MAX_EXCHANGE_RECORD,
    ExchangeOrigin,
    MemberOrigin,
    Provenance,
    UpstreamOrigin,
    header_provenance,
    verify_provenance,
)
from protocol.video import (
    MAX_FRAMES,
    MAX_FRAMES_BYTES,
    Frame,
    decode_frames,
    encode_frames,
    frames_digest,
    match_video,
    read_frames_file,
)

__all__ = ["VERIFY_AT", "build_vectors", "key_seed", "main"]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = PROJECT_ROOT / "docs" / "vectors"

HUB_NAME = "hashhub.example"
MIRRORS = ("https://mirror.hashhub.example/",)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
VERIFY_AT = T0 + timedelta(hours=6, minutes=10)
"""The clock a verifier of ``repo/`` uses: ten minutes after the last checkpoint refresh."""

KEY_LABELS = (
    "root-a",
    "root-b",
    "root-c",
    "root-d",
    "delta",
    "delta-2",
    "checkpoint",
    "timestamp",
    "node-1",
    "node-2",
)
NODE_ID = "node-1"
PDQ = "demo-pdq"
MD5 = "demo-md5"
GENERATED_DIRS = ("repo", "keys", "cases")


# --------------------------------------------------------------------------------------
# Fixed inputs
# --------------------------------------------------------------------------------------


def key_seed(label: str) -> bytes:
    """The public test seed of a key: SHA-256 of ``"hashhub vector key: <label>"``."""
    return hashlib.sha256(b"hashhub vector key: " + label.encode("ascii")).digest()


def _keys() -> dict[str, SigningKey]:
    return {label: SigningKey.from_seed(key_seed(label)) for label in KEY_LABELS}


def _at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def pdq_hash(n: int) -> bytes:
    """A 32-byte stand-in for a PDQ hash: SHA-256 of a label (not a real image hash)."""
    return hashlib.sha256(f"demo-pdq image {n}".encode()).digest()


def md5_hash(n: int) -> bytes:
    """The MD5 of a label, standing in for the MD5 of a video file."""
    return hashlib.md5(f"demo-md5 video {n}".encode(), usedforsecurity=False).digest()


def _text(data: bytes) -> str:
    return data.decode("utf-8")


def _dump(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


# --------------------------------------------------------------------------------------
# The repository: two roots, two lists, one rotation
# --------------------------------------------------------------------------------------


@dataclass
class _Repo:
    keys: dict[str, SigningKey]
    root1: Root
    root2: Root
    files: dict[str, bytes] = field(default_factory=dict)
    heads: dict[str, ListHead[ListState]] = field(default_factory=dict)
    md5_v2_checkpoint: bytes = b""
    timeline: list[str] = field(default_factory=list)


def _lists(first_version: int) -> dict[str, ListSpec]:
    return {
        PDQ: ListSpec(PDQ, "pdq", 31, label="demo", snapshot_every=2, first_version=first_version),
        MD5: ListSpec(MD5, "md5", 0, label="demo", snapshot_every=2, first_version=first_version),
    }


def _root(version: int, keys: Mapping[str, SigningKey], labels: dict[str, list[str]]) -> Root:
    used = sorted({label for group in labels.values() for label in group})
    roles = {
        role: Role(
            tuple(keys[label].keyid for label in group),
            2 if role == "root" else 1,
        )
        for role, group in labels.items()
    }
    return Root(
        version=version,
        name=HUB_NAME,
        expires=T0 + timedelta(days=180 if version == 1 else 365),
        keys={keys[label].keyid: keys[label].public for label in used},
        roles=roles,
        # Both lists stand at v2 when root v2 rotates the delta key: v3 on must use it.
        lists=_lists(1 if version == 1 else 3),
        mirrors=MIRRORS,
        policy=Policy(),
    )


ROOT1_ROLES = {
    "root": ["root-a", "root-b", "root-c"],
    "delta": ["delta"],
    "checkpoint": ["checkpoint"],
    "timestamp": ["timestamp"],
}
ROOT2_ROLES = {
    "root": ["root-a", "root-b", "root-d"],
    "delta": ["delta-2"],
    "checkpoint": ["checkpoint"],
    "timestamp": ["timestamp"],
}
ROOT1_SIGNERS = ("root-a", "root-b")
ROOT2_SIGNERS = ("root-a", "root-c", "root-d")


def _online(keys: Mapping[str, SigningKey], delta: str) -> dict[str, list[SigningKey]]:
    return {
        "delta": [keys[delta]],
        "checkpoint": [keys["checkpoint"]],
        "timestamp": [keys["timestamp"]],
    }


def _build_repo(keys: dict[str, SigningKey]) -> _Repo:
    root1 = _root(1, keys, ROOT1_ROLES)
    root2 = _root(2, keys, ROOT2_ROLES)
    repo = _Repo(keys, root1, root2)
    files = repo.files
    log = repo.timeline

    files.update(root_files(root1, [keys[k] for k in ROOT1_SIGNERS]))
    log.append(f"{_time(T0)}  root v1 (root role root-a, root-b, root-c; threshold 2)")
    pub = Publisher(root1, _online(keys, "delta"))
    heads = {list_id: ListHead.empty(root1, list_id) for list_id in (PDQ, MD5)}

    def publish(
        publisher: Publisher, list_id: str, hours: float, rm: Iterable[bytes], add: Iterable[bytes]
    ) -> None:
        p = publisher.publish(heads[list_id], removes=list(rm), adds=list(add), now=_at(hours))
        heads[list_id] = p.head
        files.update(p.files)
        log.append(
            f"{_time(_at(hours))}  {list_id} v{p.header.version} under root "
            f"v{p.header.root_version}: -{p.header.body.removes} +{p.header.body.adds}"
            + (" (snapshot)" if snapshot_path(list_id, p.header.version) in p.files else "")
        )

    publish(pub, PDQ, 1, [], [pdq_hash(n) for n in range(1, 6)])
    publish(pub, MD5, 1, [], [md5_hash(n) for n in range(1, 4)])
    publish(pub, PDQ, 2, [pdq_hash(2)], [pdq_hash(6), pdq_hash(7)])
    publish(pub, MD5, 2, [md5_hash(1)], [md5_hash(4)])
    repo.md5_v2_checkpoint = files[checkpoint_path(MD5)]

    files.update(root_files(root2, [keys[k] for k in ROOT2_SIGNERS]))
    log.append(
        f"{_time(_at(3))}  root v2: delta key rotated (delta → delta-2), root-c replaced "
        "by root-d; signed by root-a, root-c (old role) and root-a, root-d (new role)"
    )
    pub = Publisher(root2, _online(keys, "delta-2"))
    publish(pub, PDQ, 4, [pdq_hash(1)], [pdq_hash(8), pdq_hash(9)])
    publish(pub, MD5, 4, [], [md5_hash(5), md5_hash(6)])
    publish(pub, PDQ, 5, [pdq_hash(6)], [pdq_hash(10)])

    for list_id in (PDQ, MD5):
        files[checkpoint_path(list_id)] = pub.refresh(heads[list_id], _at(6))
    log.append(f"{_time(_at(6))}  both checkpoints re-issued (timestamp co-signature refreshed)")
    repo.heads = heads
    return repo


# --------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------

SEEDS_WARNING = """\
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!!  PUBLIC TEST KEYS. THESE PRIVATE SEEDS ARE PUBLISHED ON PURPOSE.          !!
!!  Anything signed by them proves nothing. Never enrol, pin or trust them,  !!
!!  never use them outside these test vectors.                              !!
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!

They are here so that another implementation can reproduce every signature in
docs/vectors byte for byte (Ed25519 signing is deterministic, RFC 8032).

seed    = SHA-256(ASCII "hashhub vector key: " || label)
private = the 32-byte seed itself (the RFC 8032 private key)
keyid   = lowercase hex SHA-256 of the raw 32-byte public key

"""


def _key_files(keys: Mapping[str, SigningKey], repo: _Repo) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    roles = {label: _roles_of(label) or [NODE_ROLES[label]] for label in keys}
    index: dict[str, Any] = {}
    lines = [SEEDS_WARNING, f"{'label':<11} {'seed (hex)':<64}  keyid\n"]
    for label, key in keys.items():
        out[f"keys/{label}.pem"] = key.public.to_pem()
        out[f"keys/{label}.hex"] = (key.public.raw.hex() + "\n").encode()
        index[label] = {"keyid": key.keyid, "public": key.public.raw.hex(), "roles": roles[label]}
        lines.append(f"{label:<11} {key_seed(label).hex()}  {key.keyid}\n")
    out["keys/keys.json"] = _dump(index)
    out["keys/SEEDS.txt"] = "".join(lines).encode()
    return out


# --------------------------------------------------------------------------------------
# Verification helpers (the generator checks every case it writes)
# --------------------------------------------------------------------------------------


def _hub(files: Mapping[str, bytes], now: datetime, versions: Iterable[int] = (1, 2)) -> TrustedHub:
    versions = list(versions)
    first = f"root/{versions[0]}.json"
    hub = TrustedHub(files[first], files[first + ".sig"], now=now)
    for v in versions[1:]:
        hub.update_root(files[f"root/{v}.json"], files[f"root/{v}.json.sig"])
    return hub


def _headers(upd: ListUpdate, files: Mapping[str, bytes], list_id: str, upto: int) -> None:
    for v in range(upd.next_version, upto + 1):
        path = header_path(list_id, v)
        upd.add_header(files[path], files[path + ".sig"])


def _sync(
    hub: TrustedHub,
    files: Mapping[str, bytes],
    list_id: str,
    checkpoint: bytes,
    trust: ListTrust | None = None,
    state: ListState | None = None,
) -> tuple[ListState, ListTrust]:
    trust = trust or ListTrust(list_id)
    upd = hub.begin_update(trust, checkpoint)
    _headers(upd, files, list_id, upd.target)
    for header in upd.bodies_needed():
        upd.add_body(header.version, files[body_path(list_id, header.body.sha256)])
    if state is None:
        state = ListState(upd.spec.hash_length)
    return upd.apply(state, check_every_version=True)


def _expect(error: type[ProtocolError], action: Callable[[], object]) -> str:
    try:
        action()
    except ProtocolError as e:
        if type(e) is not error:
            raise AssertionError(f"expected {error.__name__}, got {type(e).__name__}: {e}") from e
        return error.__name__
    raise AssertionError(f"expected {error.__name__}, nothing was raised")


def _header_dict(repo: _Repo, list_id: str, version: int, **changes: Any) -> dict[str, Any]:
    """A published header as a dict, with top-level ``changes`` applied (to re-sign or tamper)."""
    value = parse_canonical(repo.files[header_path(list_id, version)])
    assert isinstance(value, dict)
    value.update(changes)
    return value


# --------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------


def _case(
    description: str, check: str, *, rules: Sequence[str] = (), **rest: Any
) -> dict[str, Any]:
    """One case file. ``rules`` are the PROTOCOL.md rules it proves, as ``"13.4.9"``
    (§13.4, step 9) or ``"10"`` (a whole section); a test checks that every numbered
    rule of §13 is cited by at least one case."""
    case = {"description": description, "check": check, **rest}
    if rules:
        case["rules"] = list(rules)
    return case


def _positive_cases(repo: _Repo) -> dict[str, dict[str, Any]]:
    keys, files = repo.keys, repo.files
    cases: dict[str, dict[str, Any]] = {}

    # -- canonical JSON ----------------------------------------------------------------
    jcs_inputs = {
        "jcs-key-order": (
            "Members sorted by key at every level; whitespace removed; -0 written as 0.",
            '{ "b": 1, "a": { "d": true, "c": null }, "_type": "x", "A": [ 3, -0, 1 ] }',
        ),
        "jcs-strings": (
            'Only \\", \\\\, \\b, \\f, \\n, \\r, \\t and other controls (as \\u00xx) are '
            "escaped; '/' and non-ASCII are written as raw UTF-8.",
            '["\\u0041\\u00e9\\u20ac\\ud83d\\ude00", "\\/\\n\\t\\u001f\\"\\\\", "\\u000b"]',
        ),
        "jcs-utf16-key-order": (
            "Keys sort by UTF-16 code units, not code points: U+1F600 (D83D DE00) sorts "
            "before U+FB01, though its code point is larger.",
            '{"\\ufb01": 3, "\\ud83d\\ude00": 2, "\\u20ac": 1, "z": 0}',
        ),
        "jcs-integers": (
            "Integers up to ±(2^53 − 1) are written in shortest decimal form.",
            "[9007199254740991, -9007199254740991, 0, 100, -7]",
        ),
    }
    header_v1 = files[header_path(MD5, 1)]
    pretty = json.dumps(json.loads(header_v1), indent=2)
    jcs_inputs["jcs-delta-header"] = (
        "An indented delta header canonicalises to the exact bytes of the published "
        f"file repo/{header_path(MD5, 1)}.",
        pretty,
    )
    for name, (description, text) in jcs_inputs.items():
        canonical = canonicalize(json.loads(text))
        assert parse_canonical(canonical) == json.loads(text)
        case = _case(
            description,
            "canonicalize",
            input={"text": text},
            expected={"canonical_text": _text(canonical), "canonical_hex": canonical.hex()},
        )
        if name == "jcs-delta-header":
            assert canonical == header_v1
            case["files"] = {"canonical": f"repo/{header_path(MD5, 1)}"}
        cases[name] = case

    # -- keys and note key ids ---------------------------------------------------------
    delta = keys["delta"].public
    cases["keyid"] = _case(
        "A key id is the lowercase hex SHA-256 of the raw 32-byte Ed25519 public key.",
        "keyid",
        input={"public_hex": delta.raw.hex()},
        files={"pem": "keys/delta.pem"},
        expected={"keyid": delta.keyid, "spki_der_hex": delta.to_spki_der().hex()},
    )
    origin = repo.root2.origin(MD5)
    cp_key = keys["checkpoint"].public
    cases["note-key-ids"] = _case(
        "C2SP note key id = first 4 bytes of SHA-256(name || 0x0A || algorithm || public key): "
        "0x01 for Ed25519 note signatures, 0x04 for cosignature/v1.",
        "note_key_id",
        rules=["9.2"],
        input={"name": origin, "public_hex": cp_key.raw.hex()},
        expected={
            "ed25519_preimage_hex": (origin.encode() + b"\n\x01" + cp_key.raw).hex(),
            "ed25519": note_key_id(origin, ALG_ED25519, cp_key).hex(),
            "cosignature_v1_preimage_hex": (origin.encode() + b"\n\x04" + cp_key.raw).hex(),
            "cosignature_v1": note_key_id(origin, ALG_COSIGNATURE_V1, cp_key).hex(),
        },
    )

    # -- checkpoint signature lines ----------------------------------------------------
    head = repo.heads[MD5]
    cp = Checkpoint(origin, head.version, head.compact.root())
    repo_cp = files[checkpoint_path(MD5)]
    note_line = sign_note(cp, keys["checkpoint"], origin)
    assert note_line.line().encode() in repo_cp
    cases["note-signature"] = _case(
        "The checkpoint role's Ed25519 note signature (0x01) over the checkpoint text, "
        "named by the origin; the line is the second-last line of the list's checkpoint.",
        "note_signature",
        rules=["9.2", "13.2.4"],
        input={
            "checkpoint_text": _text(cp.body()),
            "name": origin,
            "public_hex": cp_key.raw.hex(),
            "seed_label": "checkpoint",
        },
        files={"checkpoint": f"repo/{checkpoint_path(MD5)}"},
        expected={
            "key_id_hex": note_line.key_id.hex(),
            "signature_hex": note_line.signature.hex(),
            "line": note_line.line(),
        },
    )
    ts_key = keys["timestamp"]
    moment = _at(6)
    cosig = cosign(cp, ts_key, repo.root2.timestamp_name, moment)
    assert cosig.line().encode() in repo_cp
    stamp = int(moment.timestamp())
    message = f"cosignature/v1\ntime {stamp}\n".encode() + cp.body()
    cases["cosignature"] = _case(
        "A cosignature/v1 (0x04) line by the timestamp role, named <hub>/timestamp: "
        "signed message = 'cosignature/v1\\ntime <t>\\n' || checkpoint text; the line carries "
        "key id (4) || big-endian u64 time (8) || Ed25519 signature (64).",
        "cosignature",
        rules=["9.2", "13.2.5"],
        input={
            "checkpoint_text": _text(cp.body()),
            "name": repo.root2.timestamp_name,
            "time": stamp,
            "public_hex": ts_key.public.raw.hex(),
            "seed_label": "timestamp",
        },
        files={"checkpoint": f"repo/{checkpoint_path(MD5)}"},
        expected={
            "signed_message_text": _text(message),
            "key_id_hex": cosig.key_id.hex(),
            "time_be64_hex": cosig.signature[:8].hex(),
            "ed25519_signature_hex": cosig.signature[8:].hex(),
            "line": cosig.line(),
        },
    )

    # -- Merkle log --------------------------------------------------------------------
    leaf1 = DeltaHeader.from_bytes(header_v1).leaf_hash
    header_v2 = DeltaHeader.from_bytes(files[header_path(MD5, 2)])
    assert header_v2.prev == leaf1.hex()
    cases["leaf-hash"] = _case(
        "Leaf hash of a header = SHA-256(0x00 || exact header bytes); header v2 names it as prev.",
        "leaf_hash",
        files={"header": f"repo/{header_path(MD5, 1)}", "next": f"repo/{header_path(MD5, 2)}"},
        expected={"leaf_hash_hex": leaf1.hex(), "leaf_hash_b64": _b64(leaf1)},
    )
    pdq_head = repo.heads[PDQ]
    leaves = [
        DeltaHeader.from_bytes(files[header_path(PDQ, v)]).leaf_hash
        for v in range(1, pdq_head.version + 1)
    ]
    compact = CompactRange()
    roots = [EMPTY_ROOT.hex()]
    for leaf in leaves:
        compact.append(leaf)
        roots.append(compact.root().hex())
    assert compact.root() == pdq_head.compact.root()
    cases["merkle-root"] = _case(
        "RFC 9162 Merkle tree over the leaf hashes of headers 1..n of demo-pdq; "
        "roots_hex[k] is the root of the first k headers (k = 0 is SHA-256 of nothing). "
        "The last equals the root in the list's checkpoint.",
        "merkle_root",
        files={
            "headers": [f"repo/{header_path(PDQ, v)}" for v in range(1, pdq_head.version + 1)],
            "checkpoint": f"repo/{checkpoint_path(PDQ)}",
        },
        expected={
            "leaf_hashes_hex": [leaf.hex() for leaf in leaves],
            "roots_hex": roots,
            "root_b64": _b64(compact.root()),
        },
    )

    # -- state digests, bodies, snapshots ----------------------------------------------
    empty = ListState(16)
    cases["state-digest-empty"] = _case(
        "The state digest of an empty list: count 0 and SHA-256 of zero bytes.",
        "state_digest",
        input={"hash_type": "md5", "hashes_hex": []},
        expected={**empty.digest().to_dict(), "snapshot_hex": ""},
    )
    three = [md5_hash(3), md5_hash(1), md5_hash(2)]
    state3 = ListState.from_hashes(16, three)
    cases["state-digest-three"] = _case(
        "The state digest of three MD5 hashes (given unsorted): SHA-256 over the raw "
        "16-byte hashes sorted ascending and concatenated, which is the snapshot.",
        "state_digest",
        input={"hash_type": "md5", "hashes_hex": [h.hex() for h in three]},
        expected={**state3.digest().to_dict(), "snapshot_hex": state3.to_bytes().hex()},
    )
    body2 = DeltaBody.build("md5", [md5_hash(1)], [md5_hash(4)])
    ref2 = body2.ref()
    assert ref2 == header_v2.body
    cases["body"] = _case(
        "A delta body: format line, removals ('-') then additions ('+'), each group strictly "
        "ascending, lowercase hex of the list's width, every line ending in LF. "
        "The header signs its SHA-256, length and counts; the file is addressed by the SHA-256.",
        "body",
        input={
            "hash_type": "md5",
            "removes_hex": [h.hex() for h in body2.removes],
            "adds_hex": [h.hex() for h in body2.adds],
        },
        files={
            "body": f"repo/{body_path(MD5, ref2.sha256)}",
            "header": f"repo/{header_path(MD5, 2)}",
        },
        expected={"text": _text(body2.to_bytes()), **ref2.to_dict()},
    )
    snap = files[snapshot_path(PDQ, 4)]
    header_p4 = DeltaHeader.from_bytes(files[header_path(PDQ, 4)])
    assert hashlib.sha256(snap).hexdigest() == header_p4.result_state.sha256
    cases["snapshot"] = _case(
        "A snapshot is the list's state bytes; its sha256sum and length / 32 equal the "
        "result_state of the header of the same version. It has no signature of its own.",
        "snapshot",
        rules=["8"],
        files={
            "snapshot": f"repo/{snapshot_path(PDQ, 4)}",
            "header": f"repo/{header_path(PDQ, 4)}",
        },
        expected={
            "sha256": hashlib.sha256(snap).hexdigest(),
            "count": len(snap) // 32,
            "length": len(snap),
        },
    )

    # -- ack -----------------------------------------------------------------------------
    ack_data, ack_sig = _ack(repo)
    node_key = keys[NODE_ID].public
    ack = verify_ack(ack_data, ack_sig, node_key=node_key, origin_prefix=HUB_NAME)
    cases["ack"] = _case(
        "An ack by node-1 for demo-md5 v3: canonical hashhub.ack.v1 bytes, a sidecar signed by "
        "the node key, and a cosignature/v1 line by the same key named by the node id over "
        "the checkpoint it applied (origin hashhub.example/lists/demo-md5).",
        "ack",
        rules=["10.1", "10.3", "10.4", "10.6"],
        input={
            "node": NODE_ID,
            "list": MD5,
            "seq": ack.seq,
            "sent": _time(ack.sent),
            "origin": repo.root2.origin(MD5),
            "applied": ack.applied.to_dict(),
            "counts": ack.counts.to_dict(),
            "node_public_hex": node_key.raw.hex(),
            "seed_label": NODE_ID,
            "hub_name": HUB_NAME,
        },
        expected={
            "ack_text": _text(ack_data),
            "sig_text": _text(ack_sig),
            "cosignature_line": ack.cosignature.line().rstrip("\n"),
        },
    )

    # -- a node's keys over time (§10.4.1) -----------------------------------------------
    other_pub = keys["node-2"].public
    cases["ack-key-periods"] = _case(
        "The ack of case ack (node-1, seq 7) checked against the node's key history: node-2's "
        "key signed seqs 1 to 6, node-1's from 7 on. The sidecar names node-1's key, whose "
        "period holds seq 7: accepted.",
        "verify_ack_periods",
        rules=["10.4.1"],
        input={
            "ack_text": _text(ack_data),
            "sig_text": _text(ack_sig),
            "periods": [
                {"public_hex": other_pub.raw.hex(), "first_seq": 1, "last_seq": 6},
                {"public_hex": node_key.raw.hex(), "first_seq": 7, "last_seq": None},
            ],
            "hub_name": HUB_NAME,
        },
        expected={"seq": ack.seq},
    )

    # -- whole-repository syncs ----------------------------------------------------------
    hub = _hub(files, VERIFY_AT)
    synced: dict[str, Any] = {}
    for list_id in (PDQ, MD5):
        state, trust = _sync(hub, files, list_id, files[checkpoint_path(list_id)])
        assert state == repo.heads[list_id].state
        synced[list_id] = {
            "version": trust.version,
            "checkpoint_root_b64": _b64(trust.compact.root()),
            "state": trust.state.to_dict(),
            "root_version": trust.root_version,
        }
    cases["repo-sync"] = _case(
        "Verify repo/ from scratch: pin root/1.json, walk to root/2.json (root/3.json does not "
        "exist), then for each list verify the checkpoint, headers 1..size, reproduce the "
        "Merkle root, fetch and apply every body from an empty state.",
        "sync_repo",
        # A full verification passes every check of the root walk, the checkpoint, each
        # header, each body and the apply: the positive side of each of those rules.
        rules=[
            "13.1.1",
            *(f"13.1.2.{i}" for i in range(1, 9)),
            "13.1.3",
            "13.1.4",
            *(f"13.2.{i}" for i in range(1, 8)),
            *(f"13.4.{i}" for i in range(1, 15)),
            *(f"13.6.{i}" for i in range(1, 5)),
            *(f"13.7.{i}" for i in range(1, 5)),
        ],
        input={"now": _time(VERIFY_AT), "roots": ["repo/root/1.json", "repo/root/2.json"]},
        expected={"root_version": 2, "lists": synced},
    )

    hub = _hub(files, VERIFY_AT)
    upd = hub.begin_update(ListTrust(PDQ), files[checkpoint_path(PDQ)])
    _headers(upd, files, PDQ, upd.target)
    base = upd.add_snapshot(2, files[snapshot_path(PDQ, 2)])
    for h in upd.bodies_needed():
        upd.add_body(h.version, files[body_path(PDQ, h.body.sha256)])
    state, trust = upd.apply(base)
    assert trust.state.to_dict() == synced[PDQ]["state"]
    cases["repo-snapshot-bootstrap"] = _case(
        "Bootstrap demo-pdq from snapshot 2: verify headers 1..4 and the Merkle root, accept "
        "snapshot/2.bin by the result_state of header 2, then apply the bodies of v3 and v4.",
        "sync_from_snapshot",
        rules=["13.5", "13.5.1", "13.5.2", "13.5.3", "13.7.1"],
        input={
            "now": _time(VERIFY_AT),
            "roots": ["repo/root/1.json", "repo/root/2.json"],
            "list": PDQ,
            "snapshot_version": 2,
        },
        expected={"version": trust.version, "state": trust.state.to_dict()},
    )

    first_now = _at(2) + timedelta(minutes=5)
    hub1 = _hub(files, first_now, versions=[1])
    state1, trust1 = _sync(hub1, files, MD5, repo.md5_v2_checkpoint)
    hub2 = _hub(files, VERIFY_AT)
    state2, trust2 = _sync(hub2, files, MD5, files[checkpoint_path(MD5)], trust1, state1)
    assert state2 == repo.heads[MD5].state
    cases["repo-incremental"] = _case(
        "A node that applied demo-md5 v2 while only root v1 existed (checkpoint re-issued at "
        "02:00) later walks to root v2 and applies v3, which the rotated delta key signed.",
        "sync_incremental",
        input={
            "list": MD5,
            "first": {
                "now": _time(first_now),
                "roots": ["repo/root/1.json"],
                "checkpoint_text": _text(repo.md5_v2_checkpoint),
            },
            "second": {
                "now": _time(VERIFY_AT),
                "roots": ["repo/root/1.json", "repo/root/2.json"],
                "checkpoint": f"repo/{checkpoint_path(MD5)}",
            },
        },
        expected={
            "first": {"version": trust1.version, "state": trust1.state.to_dict()},
            "second": {"version": trust2.version, "state": trust2.state.to_dict()},
        },
    )
    return cases


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _periods(rows: Sequence[Mapping[str, Any]]) -> list[NodeKeyPeriod]:
    return [
        NodeKeyPeriod(PublicKey(bytes.fromhex(r["public_hex"])), r["first_seq"], r["last_seq"])
        for r in rows
    ]


def _ack(repo: _Repo) -> tuple[bytes, bytes]:
    head = repo.heads[MD5]
    return sign_ack(
        key=repo.keys[NODE_ID],
        node=NODE_ID,
        list_id=MD5,
        seq=7,
        sent=VERIFY_AT + timedelta(minutes=1),
        origin=repo.root2.origin(MD5),
        applied=AppliedVersion(head.version, head.compact.root(), head.state.digest()),
        counts=Counts(
            checked=1200,
            matched=3,
            actioned=2,
            blocked=1,
            false_positive=0,
            hashes={md5_hash(5).hex(): {"matched": 1, "actioned": 1}},
        ),
    )


def _header_case(
    files: Mapping[str, bytes],
    description: str,
    list_id: str,
    version: int,
    data: bytes,
    sig: bytes,
    error: type[ProtocolError],
    *,
    rules: Sequence[str] = (),
) -> dict[str, Any]:
    """An ``add_header`` case: headers 1..version-1 of ``repo/``, then ``data`` with ``sig``,
    which must fail with ``error`` (checked here, at the repository's clock)."""

    def run() -> None:
        upd = _hub(files, VERIFY_AT).begin_update(
            ListTrust(list_id), files[checkpoint_path(list_id)]
        )
        _headers(upd, files, list_id, version - 1)
        upd.add_header(data, sig)

    return _case(
        description,
        "add_header",
        rules=rules,
        input={
            "now": _time(VERIFY_AT),
            "roots": ["repo/root/1.json", "repo/root/2.json"],
            "list": list_id,
            "version": version,
            "header_text": _text(data),
            "sig_text": _text(sig),
        },
        files={"checkpoint": f"repo/{checkpoint_path(list_id)}"},
        error=_expect(error, run),
    )


def _negative_cases(repo: _Repo) -> dict[str, dict[str, Any]]:
    keys, files = repo.keys, repo.files
    cases: dict[str, dict[str, Any]] = {}
    roots12 = ["repo/root/1.json", "repo/root/2.json"]
    now = _time(VERIFY_AT)

    def hub() -> TrustedHub:
        return _hub(files, VERIFY_AT)

    def header_case(
        name: str,
        description: str,
        list_id: str,
        version: int,
        data: bytes,
        sig: bytes,
        error: type[ProtocolError],
        rules: Sequence[str] = (),
    ) -> None:
        cases[name] = _header_case(
            files, description, list_id, version, data, sig, error, rules=rules
        )

    # -- headers -----------------------------------------------------------------------
    path1 = header_path(MD5, 1)
    tampered = _header_dict(repo, MD5, 1)
    digest = tampered["result_state"]["sha256"]
    tampered["result_state"]["sha256"] = digest[:-1] + ("0" if digest[-1] != "0" else "1")
    header_case(
        "neg-tampered-header",
        "Header v1 of demo-md5 with one hex digit of result_state.sha256 changed, presented "
        "with the original (valid-looking) sidecar: the signature no longer verifies.",
        MD5,
        1,
        canonicalize(tampered),
        files[path1 + ".sig"],
        SignatureError,
        rules=["13.4.4"],
    )
    loose = json.dumps(parse_canonical(files[path1]), sort_keys=True, indent=1).encode()
    header_case(
        "neg-non-canonical-header",
        "Header v1 of demo-md5 re-encoded with indentation and validly signed by the delta "
        "key over those bytes: rejected because the bytes are not canonical JSON.",
        MD5,
        1,
        loose,
        sign_bytes(loose, [keys["delta"]]).to_bytes(),
        MalformedError,
        rules=["13.4.5", "3.1"],
    )
    header_case(
        "neg-wrong-role-header",
        "The exact bytes of header v1 of demo-md5 signed by the checkpoint key instead of the "
        "delta role.",
        MD5,
        1,
        files[path1],
        sign_bytes(files[path1], [keys["checkpoint"]]).to_bytes(),
        SignatureError,
        rules=["13.4.4"],
    )
    ack_data, _ = _ack(repo)
    header_case(
        "neg-type-confusion",
        "An ack document, validly signed by the delta key, presented as header v1 of "
        "demo-md5: its _type is hashhub.ack.v1, not hashhub.delta.v1.",
        MD5,
        1,
        ack_data,
        sign_bytes(ack_data, [keys["delta"]]).to_bytes(),
        WrongTypeError,
        rules=["13.4.5"],
    )
    header_case(
        "neg-mix-and-match",
        "Header v1 of demo-pdq with its valid sidecar presented as header v1 of demo-md5.",
        MD5,
        1,
        files[header_path(PDQ, 1)],
        files[header_path(PDQ, 1) + ".sig"],
        ConsistencyError,
        rules=["13.4.7"],
    )
    old_key = canonicalize(_header_dict(repo, PDQ, 4, root_version=1))
    header_case(
        "neg-revoked-delta-key",
        "A header v4 of demo-pdq naming root v1 and signed by the delta key that root v2 "
        "rotated out. Header v3 already named root v2, so no root below v2 may sign v4.",
        PDQ,
        4,
        old_key,
        sign_bytes(old_key, [keys["delta"]]).to_bytes(),
        SignatureError,
    )

    # -- roots -------------------------------------------------------------------------
    root2 = files["root/2.json"]

    def root_case(
        name: str,
        description: str,
        data: bytes,
        sig: bytes,
        error: type[ProtocolError],
        rules: Sequence[str] = (),
    ) -> None:
        def run() -> None:
            _hub(files, VERIFY_AT, versions=[1]).update_root(data, sig)

        cases[name] = _case(
            description,
            "update_root",
            rules=rules,
            input={
                "now": now,
                "roots": ["repo/root/1.json"],
                "root_text": _text(data),
                "sig_text": _text(sig),
            },
            error=_expect(error, run),
        )

    def sidecar(labels: Iterable[str], data: bytes = root2) -> bytes:
        entries = [Signature(keys[k].keyid, keys[k].sign(data)) for k in labels]
        return SignatureSidecar(tuple(entries)).to_bytes()

    cap = Limits().root_bytes
    big = canonicalize({**parse_canonical(root2), "x-padding": "p" * cap})
    root_case(
        "neg-root-over-cap",
        f"Root v2 grown past the {cap}-byte cap by an unknown member, signed by "
        "root-a and root-b (both root roles): the cap is checked before anything else.",
        big,
        sidecar(["root-a", "root-b"], big),
        LimitError,
        ["13.1.2.1", "11"],
    )
    ack_bytes = _ack(repo)[0]
    root_case(
        "neg-root-wrong-type",
        "An ack document signed by root-a and root-b, presented as root v2: the old root "
        "role's threshold holds over the bytes, and the strict parse refuses its _type.",
        ack_bytes,
        sidecar(["root-a", "root-b"], ack_bytes),
        WrongTypeError,
        ["13.1.2.3"],
    )
    root_case(
        "neg-root-old-threshold",
        "Root v2 signed by root-a and root-d only: the new root role is satisfied (2 of a, b, "
        "d) but the old one is not (1 of a, b, c; threshold 2).",
        root2,
        sidecar(["root-a", "root-d"]),
        SignatureError,
        ["13.1.2.2", "12.6"],
    )
    root_case(
        "neg-root-new-threshold",
        "Root v2 signed by root-a and root-c only: the old root role is satisfied but the new "
        "one is not (root-c is no longer in it), so the new keys are not proven usable.",
        root2,
        sidecar(["root-a", "root-c"]),
        SignatureError,
        ["13.1.2.5", "12.6"],
    )
    root_case(
        "neg-root-duplicate-signature",
        "Root v2 with root-a's valid signature listed twice plus root-d: a key counts once, "
        "so the old role has one valid key of the two required.",
        root2,
        sidecar(["root-a", "root-a", "root-d"]),
        SignatureError,
        ["13.1.2.2", "4.3"],
    )
    skipped = Root(**{**_root_fields(repo.root2), "version": 3})
    data3, sig3 = skipped.sign([keys[k] for k in ROOT2_SIGNERS])
    root_case(
        "neg-root-skips-version",
        "A root v3, signed by both root roles, presented to a verifier that trusts only v1: "
        "roots are accepted strictly one version at a time.",
        data3,
        sig3,
        RollbackError,
        ["13.1.2.4"],
    )
    renamed = Root(**{**_root_fields(repo.root2), "name": "other.example"})
    data_r, sig_r = renamed.sign([keys[k] for k in ROOT2_SIGNERS])
    root_case(
        "neg-root-renames-hub",
        "A root v2 that changes the hub name, validly signed by both root roles: the hub name "
        "(prefix of every checkpoint origin) may never change.",
        data_r,
        sig_r,
        ConsistencyError,
        ["13.1.2.6"],
    )

    # -- checkpoints -------------------------------------------------------------------
    pub2 = Publisher(repo.root2, _online(keys, "delta-2"))
    repo_cp = files[checkpoint_path(MD5)]

    def begin_case(
        name: str,
        description: str,
        moment: datetime,
        checkpoint: bytes,
        error: type[ProtocolError],
        *,
        list_id: str = MD5,
        after_sync: bool = False,
        rules: Sequence[str] = (),
    ) -> None:
        def run() -> None:
            h = _hub(files, moment)
            trust = ListTrust(list_id)
            if after_sync:
                _, trust = _sync(h, files, list_id, files[checkpoint_path(list_id)])
            h.begin_update(trust, checkpoint)

        cases[name] = _case(
            description,
            "begin_update",
            rules=rules,
            input={
                "now": _time(moment),
                "roots": roots12,
                "list": list_id,
                "after_sync": after_sync,
                "checkpoint_text": _text(checkpoint),
            },
            error=_expect(error, run),
        )

    expires = repo.root2.expires
    begin_case(
        "neg-expired-root",
        "The repository's demo-md5 checkpoint checked at exactly root v2's expiry time: a "
        "root is expired from its 'expires' instant on, and no update may start.",
        expires,
        repo_cp,
        ExpiredError,
        rules=["13.1.3"],
    )
    max_age = repo.root2.policy.max_checkpoint_age
    begin_case(
        "neg-stale-checkpoint",
        "The repository's demo-md5 checkpoint checked one second after max_checkpoint_age "
        "has passed since its timestamp co-signature (a freeze).",
        _at(6) + timedelta(seconds=max_age + 1),
        repo_cp,
        FreezeError,
        rules=["13.3.1"],
    )
    skew = repo.root2.policy.max_clock_skew
    begin_case(
        "neg-future-checkpoint",
        "The repository's demo-md5 checkpoint checked by a clock more than max_clock_skew "
        "behind its co-signature time.",
        _at(6) - timedelta(seconds=skew + 1),
        repo_cp,
        FreezeError,
        rules=["13.3.2"],
    )
    begin_case(
        "neg-checkpoint-rollback",
        "After applying demo-md5 v3, the older (validly signed, still fresh) checkpoint of "
        "size 2 is presented.",
        VERIFY_AT,
        repo.md5_v2_checkpoint,
        RollbackError,
        after_sync=True,
        rules=["13.3.3"],
    )
    fork = pub2.checkpoint(MD5, 3, hashlib.sha256(b"another history").digest(), _at(6.05))
    begin_case(
        "neg-equivocation",
        "After applying demo-md5 v3, a validly signed, newer checkpoint of the same size with "
        "a different root hash: a split view; both notes are evidence.",
        VERIFY_AT,
        fork,
        EquivocationError,
        after_sync=True,
        rules=["13.3.5"],
    )
    unknown = pub2.checkpoint("demo-sha256", 1, hashlib.sha256(b"x").digest(), _at(6))
    begin_case(
        "neg-unknown-list",
        "A validly signed checkpoint for demo-sha256, a list root v2 does not declare.",
        VERIFY_AT,
        unknown,
        UnknownListError,
        list_id="demo-sha256",
        rules=["13.2.1"],
    )

    forged = pub2.checkpoint(MD5, 3, hashlib.sha256(b"forged").digest(), _at(6))

    def run_forged() -> None:
        upd = hub().begin_update(ListTrust(MD5), forged)
        _headers(upd, files, MD5, 3)

    cases["neg-forged-checkpoint-root"] = _case(
        "A checkpoint of the right size, validly signed by the checkpoint and timestamp "
        "roles, whose root hash the published headers do not reproduce (history rewrite or "
        "fast-forward): headers 1..3 verify one by one, then the Merkle root differs.",
        "sync_list",
        rules=["13.4.14"],
        input={"now": now, "roots": roots12, "list": MD5, "checkpoint_text": _text(forged)},
        error=_expect(ConsistencyError, run_forged),
    )

    # -- bodies, snapshots, state ------------------------------------------------------
    ref_v2 = DeltaHeader.from_bytes(files[header_path(MD5, 2)]).body
    good_body = files[body_path(MD5, ref_v2.sha256)]
    last = good_body[-2:-1]
    bad_body = good_body[:-2] + (b"0" if last != b"0" else b"1") + b"\n"

    def run_body() -> None:
        upd = hub().begin_update(ListTrust(MD5), repo_cp)
        _headers(upd, files, MD5, upd.target)
        upd.add_body(2, bad_body)

    cases["neg-tampered-body"] = _case(
        "The body of demo-md5 v2 with one hex digit changed (same length): its SHA-256 is not "
        "the one header v2 signs.",
        "add_body",
        rules=["13.6.2"],
        input={
            "now": now,
            "roots": roots12,
            "list": MD5,
            "version": 2,
            "body_text": _text(bad_body),
        },
        files={"checkpoint": f"repo/{checkpoint_path(MD5)}"},
        error=_expect(ConsistencyError, run_body),
    )
    low, high = sorted([md5_hash(1), md5_hash(2)])
    unordered = f"hashhub.body.v1 md5\n+{high.hex()}\n+{low.hex()}\n".encode()
    cases["neg-body-unordered"] = _case(
        "A body whose additions are not strictly ascending.",
        "parse_body",
        rules=["7.2", "13.6.3"],
        input={"hash_type": "md5", "body_text": _text(unordered)},
        error=_expect(BodyRuleError, lambda: DeltaBody.from_bytes(unordered, "md5")),
    )
    snap = files[snapshot_path(PDQ, 2)]
    swapped = snap[32:64] + snap[:32] + snap[64:]

    def run_snapshot() -> None:
        upd = hub().begin_update(ListTrust(PDQ), files[checkpoint_path(PDQ)])
        _headers(upd, files, PDQ, upd.target)
        upd.add_snapshot(2, swapped)

    cases["neg-tampered-snapshot"] = _case(
        "Snapshot 2 of demo-pdq with its first two records swapped (same length): its "
        "SHA-256 is not the result_state of header 2.",
        "add_snapshot",
        rules=["13.5.2"],
        input={
            "now": now,
            "roots": roots12,
            "list": PDQ,
            "version": 2,
            "snapshot_hex": swapped.hex(),
        },
        files={"checkpoint": f"repo/{checkpoint_path(PDQ)}"},
        error=_expect(ConsistencyError, run_snapshot),
    )
    local = [md5_hash(99)]

    def run_base() -> None:
        _sync(hub(), files, MD5, repo_cp, state=ListState.from_hashes(16, local))

    cases["neg-state-mismatch"] = _case(
        "A verifier with no trusted version but a local demo-md5 state holding one hash "
        "applies the repository: its state is not the base of v1 (empty), so it must resync.",
        "check_base",
        rules=["13.7.1"],
        input={
            "now": now,
            "roots": roots12,
            "list": MD5,
            "local_hashes_hex": [h.hex() for h in local],
        },
        files={"checkpoint": f"repo/{checkpoint_path(MD5)}"},
        error=_expect(StateMismatchError, run_base),
    )

    # -- encodings and ids -------------------------------------------------------------
    texts = [
        '{"a":1,"a":2}',
        '{"b":1,"a":2}',
        '{"a": 1}',
        '{"a":1.0}',
        '{"a":1e3}',
        '{"a":9007199254740992}',
        '{"a":NaN}',
        '{"a":"\\u0041"}',
        '{"a":"\\/"}',
        "\ufeff{}",
        '{"a":1}\n',
    ]
    for text in texts:
        _expect(MalformedError, partial(parse_canonical, text.encode()))
    cases["neg-non-canonical-json"] = _case(
        "Each text is rejected by the strict parser: duplicate key, unsorted keys, whitespace, "
        "floats, an integer beyond 2^53 − 1, NaN, needless escapes, a byte order mark, a "
        "trailing newline.",
        "parse_canonical",
        input={"texts": texts},
        error="MalformedError",
    )
    ids = ["..", "a..b", "demo-md5/../x", "%2e%2e", "Demo", "", "-lead", "a" * 65, "a b"]
    for list_id in ids:
        _expect(InvalidListIdError, partial(validate_list_id, list_id))
    cases["neg-list-ids"] = _case(
        "List ids that could escape a path or a URL, or break the pattern "
        "[a-z0-9][a-z0-9._-]{0,63} (and no '..').",
        "list_id",
        input={"list_ids": ids},
        error="InvalidListIdError",
    )

    # -- acks --------------------------------------------------------------------------
    node_pub = keys[NODE_ID].public.raw.hex()
    forged_sig = sign_bytes(ack_data, [keys["node-2"]]).to_bytes()
    cases["neg-ack-wrong-key"] = _case(
        "The ack of node-1 with a sidecar signed by another node's key.",
        "verify_ack",
        rules=["10.4.1"],
        input={
            "ack_text": _text(ack_data),
            "sig_text": _text(forged_sig),
            "node_public_hex": node_pub,
            "hub_name": HUB_NAME,
        },
        error=_expect(
            SignatureError,
            lambda: verify_ack(
                ack_data, forged_sig, node_key=keys[NODE_ID].public, origin_prefix=HUB_NAME
            ),
        ),
    )
    good = Ack.from_bytes(ack_data)
    misnamed = Ack(
        good.node,
        good.list_id,
        good.seq,
        good.sent,
        good.applied,
        cosign(good.checkpoint(repo.root2.origin(MD5)), keys[NODE_ID], "node-2", good.sent),
        good.counts,
    ).to_bytes()
    misnamed_sig = sign_bytes(misnamed, [keys[NODE_ID]]).to_bytes()
    cases["neg-ack-cosignature-name"] = _case(
        "An ack signed by node-1 whose co-signature (also by node-1's key) is named node-2.",
        "verify_ack",
        rules=["10.3", "10.4.3"],
        input={
            "ack_text": _text(misnamed),
            "sig_text": _text(misnamed_sig),
            "node_public_hex": node_pub,
            "hub_name": HUB_NAME,
        },
        error=_expect(
            ConsistencyError,
            lambda: verify_ack(
                misnamed, misnamed_sig, node_key=keys[NODE_ID].public, origin_prefix=HUB_NAME
            ),
        ),
    )
    ack_data, ack_sig = _ack(repo)
    retired = [
        {"public_hex": node_pub, "first_seq": 1, "last_seq": 6},
        {"public_hex": keys["node-2"].public.raw.hex(), "first_seq": 7, "last_seq": None},
    ]
    early = [
        {"public_hex": keys["node-2"].public.raw.hex(), "first_seq": 1, "last_seq": 9},
        {"public_hex": node_pub, "first_seq": 10, "last_seq": None},
    ]
    for name, periods, description in (
        (
            "neg-ack-key-period-retired",
            retired,
            "The ack of case ack (seq 7, signed by node-1) when node-1's key signed seqs 1 to "
            "6 only and node-2's signs from 7 on: a retired key signs nothing after its period.",
        ),
        (
            "neg-ack-key-period-not-yet",
            early,
            "The ack of case ack (seq 7, signed by node-1) when node-1's key signs from seq 10 "
            "on: an auditor finds a stored ack below its key's period.",
        ),
    ):
        cases[name] = _case(
            description,
            "verify_ack_periods",
            rules=["10.4.1"],
            input={
                "ack_text": _text(ack_data),
                "sig_text": _text(ack_sig),
                "periods": periods,
                "hub_name": HUB_NAME,
            },
            error=_expect(
                SignatureError,
                partial(
                    verify_ack_by_periods,
                    ack_data,
                    ack_sig,
                    periods=_periods(periods),
                    origin_prefix=HUB_NAME,
                ),
            ),
        )
    return cases


def _header_rule_cases(repo: _Repo) -> dict[str, dict[str, Any]]:
    """Negative cases for the steps of PROTOCOL.md §13.4 that hold one header to the ones
    before it and to its checkpoint: each header is re-signed by the delta key of the
    root it names, so the step named is what refuses it, not a signature."""
    keys, files = repo.keys, repo.files
    cases: dict[str, dict[str, Any]] = {}
    signer = {1: keys["delta"], 2: keys["delta-2"]}

    def case(
        name: str,
        description: str,
        rules: Sequence[str],
        list_id: str,
        version: int,
        header: dict[str, Any] | bytes,
        error: type[ProtocolError],
        key: SigningKey | None = None,
    ) -> None:
        data = header if isinstance(header, bytes) else canonicalize(header)
        fields = header if isinstance(header, dict) else parse_canonical(header)
        assert isinstance(fields, dict)
        root_version = fields["root_version"]
        sig = sign_bytes(data, [key or signer[root_version]]).to_bytes()
        cases[name] = _header_case(
            files, description, list_id, version, data, sig, error, rules=rules
        )

    v1 = _header_dict(repo, MD5, 1)
    padded = canonicalize({**v1, "x-padding": "p" * 8192})
    case(
        "neg-header-over-cap",
        "Header v1 of demo-md5 grown past 8 KiB (an unknown member of 8,192 characters), "
        "validly signed: the cap is checked before the signature or the parse.",
        ["13.4.1", "11"],
        MD5,
        1,
        padded,
        LimitError,
    )
    v3 = _header_dict(repo, MD5, 3)
    beyond = {
        **v3,
        "version": 4,
        "prev": (leaf_hash(files[header_path(MD5, 3)])).hex(),
        "base_state": v3["result_state"],
        "body": {**v3["body"], "adds": 0, "removes": 0},
        "result_state": v3["result_state"],
    }
    case(
        "neg-header-beyond-checkpoint",
        "A validly signed header v4 of demo-md5 presented after v1..v3, with the list's "
        "checkpoint of size 3: a header past the checkpoint's size.",
        ["13.4.2"],
        MD5,
        4,
        beyond,
        ConsistencyError,
    )
    case(
        "neg-header-wrong-version",
        "The exact, validly signed bytes of header v2 of demo-md5 presented as its first "
        "header (version 1 expected).",
        ["13.4.8"],
        MD5,
        1,
        files[header_path(MD5, 2)],
        ConsistencyError,
    )
    v2 = _header_dict(repo, MD5, 2)
    case(
        "neg-header-prev",
        "Header v2 of demo-md5 whose prev is not the leaf hash of header v1 (one digit "
        "changed), re-signed by the delta key.",
        ["13.4.10"],
        MD5,
        2,
        {**v2, "prev": v2["prev"][:-1] + ("0" if v2["prev"][-1] != "0" else "1")},
        ConsistencyError,
    )
    base = dict(v2["base_state"])
    base["sha256"] = base["sha256"][:-1] + ("0" if base["sha256"][-1] != "0" else "1")
    case(
        "neg-header-base-state",
        "Header v2 of demo-md5 whose base_state digest is not header v1's result_state, "
        "re-signed by the delta key.",
        ["13.4.11"],
        MD5,
        2,
        {**v2, "base_state": base},
        ConsistencyError,
    )
    case(
        "neg-header-created-backwards",
        "Header v2 of demo-md5 created an hour before header v1, re-signed.",
        ["13.4.12"],
        MD5,
        2,
        {**v2, "created": _time(T0)},
        RollbackError,
    )
    skew = repo.root2.policy.max_clock_skew
    case(
        "neg-header-created-future",
        "Header v1 of demo-md5 created one second more than max_clock_skew after the "
        "verifier's clock, re-signed.",
        ["13.4.12"],
        MD5,
        1,
        {**v1, "created": _time(VERIFY_AT + timedelta(seconds=skew + 1))},
        FreezeError,
    )
    over = repo.root1.policy.max_body_bytes + 1
    case(
        "neg-header-body-over-cap",
        f"Header v1 of demo-md5 declaring a body of {over} bytes, one more than "
        "max_body_bytes of root v1 (the root it names), re-signed.",
        ["13.4.13"],
        MD5,
        1,
        {**v1, "body": {**v1["body"], "length": over}},
        LimitError,
    )
    pdq4 = _header_dict(repo, PDQ, 4)
    case(
        "neg-header-names-older-root",
        "Header v4 of demo-pdq naming root v1 although header v3 named root v2, signed by "
        "root v2's delta key (delta-2, which root v1 does not hold either way): root_version "
        "never decreases.",
        ["13.4.6", "13.4.3"],
        PDQ,
        4,
        {**pdq4, "root_version": 1},
        RollbackError,
        key=keys["delta-2"],
    )
    return cases


def _hash_type_cases(repo: _Repo) -> dict[str, dict[str, Any]]:
    """A body and a state digest for each hash type (the repository's lists are pdq and
    md5), and bodies that break §7.2 for the widths the repository does not show."""
    del repo  # these cases stand alone: no signed file is needed
    cases: dict[str, dict[str, Any]] = {}
    widths = {name: kind.length for name, kind in HASH_TYPES.items()}
    for type_name, width in widths.items():
        if HASH_TYPES[type_name].frames:
            continue  # a list of frames holds entries only: _video_list_cases
        made = sorted(
            hashlib.sha256(f"{type_name}-{i}".encode()).digest()[:width] for i in range(4)
        )
        removes, adds = made[:1], made[1:]
        body = DeltaBody.build(type_name, removes, adds)
        data = body.to_bytes()
        state = ListState.from_hashes(width, adds)
        cases[f"body-{type_name}"] = _case(
            f"A body of a {type_name} list ({width}-byte hashes, {2 * width} hex digits a "
            "line): one removal, three additions; the digest of a state holding the three "
            "additions.",
            "body_of_type",
            rules=["7.2", "8", "13.6.3"],
            input={
                "hash_type": type_name,
                "removes_hex": [h.hex() for h in removes],
                "adds_hex": [h.hex() for h in adds],
            },
            expected={
                "text": _text(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "length": len(data),
                "state_of_adds": state.digest().to_dict(),
            },
        )
        good = adds[0].hex()
        bad_bodies = {
            "short": f"hashhub.body.v1 {type_name}\n+{good[:-2]}\n",
            "long": f"hashhub.body.v1 {type_name}\n+{good}00\n",
            "upper": f"hashhub.body.v1 {type_name}\n+{good.upper()}\n",
            "other-type": f"hashhub.body.v1 {'md5' if type_name != 'md5' else 'sha256'}\n",
        }
        texts = []
        for text in bad_bodies.values():
            _expect(BodyRuleError, partial(DeltaBody.from_bytes, text.encode(), type_name))
            texts.append(text)
        cases[f"neg-body-{type_name}-width"] = _case(
            f"Bodies a {type_name} list refuses: a hash one byte short, one byte long, in "
            "uppercase hex, and a format line naming another hash type.",
            "parse_bodies",
            rules=["7.2", "13.6.3"],
            input={"hash_type": type_name, "body_texts": texts},
            error="BodyRuleError",
        )
    return cases


def _ack_rule_cases(repo: _Repo) -> dict[str, dict[str, Any]]:
    """PROTOCOL.md §10: each parse rule of an ack, the co-signature's shape, the order.

    Every negative ack here is validly signed by node-1, so the rule it breaks is the
    one named, not the sidecar. Documents are edited as parsed JSON and re-encoded;
    what JCS cannot encode (an integer beyond 2^53 − 1, whitespace) is edited as bytes.
    """
    keys = repo.keys
    node_key = keys[NODE_ID]
    node_pub = node_key.public.raw.hex()
    ack_data, ack_sig = _ack(repo)
    cases: dict[str, dict[str, Any]] = {}

    def document(**changes: Any) -> dict[str, Any]:
        value = parse_canonical(ack_data)
        assert isinstance(value, dict)
        value.update(changes)
        return value

    def run(data: bytes, sig: bytes) -> Ack:
        return verify_ack(data, sig, node_key=node_key.public, origin_prefix=HUB_NAME)

    def neg(
        name: str,
        description: str,
        data: bytes,
        error: type[ProtocolError],
        rules: Sequence[str],
        sig: bytes | None = None,
    ) -> None:
        sig = sign_bytes(data, [node_key]).to_bytes() if sig is None else sig
        cases[name] = _case(
            description,
            "verify_ack",
            rules=rules,
            input={
                "ack_text": _text(data),
                "sig_text": _text(sig),
                "node_public_hex": node_pub,
                "hub_name": HUB_NAME,
            },
            error=_expect(error, lambda: run(data, sig)),
        )

    def edited(**changes: Any) -> bytes:
        return canonicalize(document(**changes))

    def counts(**changes: Any) -> dict[str, Any]:
        return {**document()["counts"], **changes}

    def applied(**changes: Any) -> dict[str, Any]:
        return {**document()["applied"], **changes}

    key5 = md5_hash(5).hex()

    # -- positive: what the parse rules let through --------------------------------------
    future = edited(**{"x-future": {"note": "a member a later version adds", "n": 2}})
    future_sig = sign_bytes(future, [node_key]).to_bytes()
    kept = run(future, future_sig)
    assert kept.to_bytes() == future
    cases["ack-unknown-member"] = _case(
        "An ack with an unknown top-level member x-future: signed, accepted, preserved "
        "(re-encoding the parsed ack gives the same bytes).",
        "accept_ack",
        rules=["10.2.8", "3.3"],
        input={
            "ack_text": _text(future),
            "sig_text": _text(future_sig),
            "node_public_hex": node_pub,
            "hub_name": HUB_NAME,
        },
        expected={"seq": kept.seq, "extra": dict(kept.extra)},
    )
    widths = {
        "ab" * 8: {"false_positive": 1},
        key5: {"matched": 1, "actioned": 1},
        "cd" * 32: {"blocked": 2},
        "ef" * 16: {},
    }
    wide = edited(counts=counts(hashes=widths))
    wide_sig = sign_bytes(wide, [node_key]).to_bytes()
    parsed = run(wide, wide_sig)
    cases["ack-per-hash-widths"] = _case(
        "Per-hash keys of 16, 32 and 64 hex digits (phash, md5, pdq/sha256) and an empty "
        "per-hash object all parse: the parse rule takes every width of §6.1. That a "
        "demo-md5 ack may only use 32-digit keys is the hub's rule (§10.5.4), not the "
        "parser's.",
        "accept_ack",
        rules=["10.2.9", "10.5.4"],
        input={
            "ack_text": _text(wide),
            "sig_text": _text(wide_sig),
            "node_public_hex": node_pub,
            "hub_name": HUB_NAME,
        },
        expected={
            "seq": parsed.seq,
            "extra": {},
            "hashes": {k: dict(v) for k, v in parsed.counts.hashes.items()},
        },
    )

    opinions = {
        "e-aaaa": {"position": "confirmed", "reason": "actioned"},
        "e-bbbb": {"position": "confirmed", "reason": "blocked"},
        "e-cccc": {"position": "disputed", "reason": "not_the_content"},
        "e-dddd": {"position": "disputed", "reason": "benign"},
        "e-eeee": {"position": "disputed", "reason": "other"},
        "e-ffff": {"position": "none"},
    }
    opined = edited(opinions=opinions)
    opined_sig = sign_bytes(opined, [node_key]).to_bytes()
    read = run(opined, opined_sig)
    assert read.to_bytes() == opined
    cases["ack-opinions"] = _case(
        "An ack carrying the platform's opinions on six entries: every position and "
        "reason §10.1 allows, a position taken back (none) without a reason.",
        "accept_ack",
        rules=["10.1", "10.2.11"],
        input={
            "ack_text": _text(opined),
            "sig_text": _text(opined_sig),
            "node_public_hex": node_pub,
            "hub_name": HUB_NAME,
        },
        expected={
            "seq": read.seq,
            "extra": {},
            "opinions": {k: v.to_dict() for k, v in read.opinions.items()},
        },
    )

    kept_counts = {"allowlist": 3, "disabled": 0, "quarantine": 12, "disputed": 1}
    kept_ack = edited(kept=kept_counts)
    kept_sig = sign_bytes(kept_ack, [node_key]).to_bytes()
    read = run(kept_ack, kept_sig)
    assert read.to_bytes() == kept_ack
    assert dict(read.kept) == kept_counts
    cases["ack-kept"] = _case(
        "An ack reporting what the platform's own policy kept up instead of blocking, by "
        "each reason §10.1 names (a zero counter may be written).",
        "accept_ack",
        rules=["10.1", "10.2.12"],
        input={
            "ack_text": _text(kept_ack),
            "sig_text": _text(kept_sig),
            "node_public_hex": node_pub,
            "hub_name": HUB_NAME,
        },
        expected={"seq": read.seq, "extra": {}, "kept": dict(read.kept)},
    )

    # -- §10.2: parse negatives ----------------------------------------------------------
    spaced = json.dumps(document(), sort_keys=True, ensure_ascii=False).encode()
    neg(
        "neg-ack-non-canonical",
        "The ack with JSON's default ', ' and ': ' separators: not RFC 8785, even signed.",
        spaced,
        MalformedError,
        ["10.2.1", "3.1"],
    )
    for name, text in (("seq", '"seq":7'), ("counter", '"checked":1200')):
        field_name = text.split(":")[0]
        big = ack_data.replace(text.encode(), f"{field_name}:{2**53}".encode())
        assert big != ack_data
        neg(
            f"neg-ack-{name}-too-large",
            f"The ack with {field_name} = 2^53: beyond the integers a document may hold.",
            big,
            MalformedError,
            ["10.2.1", "3.1"],
        )
    neg(
        "neg-ack-type",
        "An ack whose _type is hashhub.delta.v1.",
        edited(_type="hashhub.delta.v1"),
        WrongTypeError,
        ["10.2.2", "10.4.2", "3.3"],
    )
    no_type = document()
    del no_type["_type"]
    neg(
        "neg-ack-type-missing",
        "An ack without _type.",
        canonicalize(no_type),
        MalformedError,
        ["10.2.2"],
    )
    no_sent = document()
    del no_sent["sent"]
    neg(
        "neg-ack-missing-member",
        "An ack without its sent member.",
        canonicalize(no_sent),
        MalformedError,
        ["10.2.3"],
    )
    neg(
        "neg-ack-seq-boolean",
        "An ack whose seq is true: a boolean is not an integer.",
        edited(seq=True),
        MalformedError,
        ["10.2.3"],
    )
    neg(
        "neg-ack-node-pattern",
        "An ack whose node is Node-1 (upper case).",
        edited(node="Node-1"),
        MalformedError,
        ["10.2.4"],
    )
    neg(
        "neg-ack-list-id",
        "An ack whose list is demo..md5: not a list id.",
        edited(list="demo..md5"),
        InvalidListIdError,
        ["10.2.4", "6.2"],
    )
    for name, seq in (("zero", 0), ("negative", -1)):
        neg(
            f"neg-ack-seq-{name}",
            f"An ack whose seq is {seq}.",
            edited(seq=seq),
            MalformedError,
            ["10.2.5"],
        )
    neg(
        "neg-ack-version-zero",
        "An ack whose applied.version is 0.",
        edited(applied=applied(version=0)),
        MalformedError,
        ["10.2.5"],
    )
    neg(
        "neg-ack-counter-negative",
        "An ack whose counts.checked is -1.",
        edited(counts=counts(checked=-1)),
        MalformedError,
        ["10.2.5"],
    )
    neg(
        "neg-ack-per-hash-counter-negative",
        "An ack whose per-hash matched counter is -1.",
        edited(counts=counts(hashes={key5: {"matched": -1}})),
        MalformedError,
        ["10.2.5"],
    )
    for name, sent in (
        ("offset", "2026-01-01T06:11:00+00:00"),
        ("fraction", "2026-01-01T06:11:00.5Z"),
        ("lowercase-z", "2026-01-01T06:11:00z"),
    ):
        neg(
            f"neg-ack-sent-{name}",
            f"An ack whose sent is {sent}: not YYYY-MM-DDTHH:MM:SSZ.",
            edited(sent=sent),
            MalformedError,
            ["10.2.6", "3.2"],
        )
    neg(
        "neg-ack-checkpoint-root-length",
        "An ack whose applied.checkpoint_root is base64 of 31 bytes.",
        edited(applied=applied(checkpoint_root=_b64(bytes(31)))),
        MalformedError,
        ["10.2.7"],
    )
    state = document()["applied"]["state"]
    for name, where, value in (
        ("applied", "applied", applied(tree="x")),
        ("state", "applied.state", applied(state={**state, "width": 16})),
        ("counts", "counts", counts(reviewed=1)),
    ):
        neg(
            f"neg-ack-unknown-{name}-member",
            f"An ack with an unknown member in {where}: a closed record.",
            edited(**{where.split(".")[0]: value}),
            MalformedError,
            ["10.2.8", "3.3"],
        )
    for name, counter in (("unknown", "seen"), ("checked", "checked")):
        neg(
            f"neg-ack-per-hash-{name}-counter",
            f"An ack whose per-hash object holds {counter!r}: not a per-hash counter.",
            edited(counts=counts(hashes={key5: {"matched": 1, counter: 1}})),
            MalformedError,
            ["10.2.8", "3.3"],
        )
    for name, key in (
        ("width-48", "ab" * 24),
        ("width-15", "ab" * 7 + "a"),
        ("uppercase", key5.upper()),
        ("not-hex", "zz" * 16),
    ):
        neg(
            f"neg-ack-per-hash-key-{name}",
            f"An ack with the per-hash key {key!r}: not 16, 32 or 64 lowercase hex digits.",
            edited(counts=counts(hashes={key: {"matched": 1}})),
            MalformedError,
            ["10.2.9"],
        )
    neg(
        "neg-ack-per-hash-not-object",
        "An ack whose per-hash value is the integer 1, not an object.",
        edited(counts=counts(hashes={key5: 1})),
        MalformedError,
        ["10.2.9"],
    )

    # -- §10.3: the co-signature's shape, key id and signature ---------------------------
    good = Ack.from_bytes(ack_data)
    line = good.cosignature
    blob = line.key_id + line.signature
    assert len(blob) == 76

    def with_blob(raw: bytes) -> bytes:
        return edited(cosignature=f"\u2014 {NODE_ID} {_b64(raw)}")

    for name, raw in (("short", blob[:-1]), ("long", blob + b"\x00")):
        neg(
            f"neg-ack-cosignature-{name}",
            f"An ack whose co-signature line carries {len(raw)} bytes, not 76.",
            with_blob(raw),
            MalformedError,
            ["10.2.10", "10.3"],
        )
    neg(
        "neg-ack-cosignature-time",
        "An ack whose co-signature time has its top bit set (not below 2^63).",
        with_blob(blob[:4] + bytes([0x80 | blob[4]]) + blob[5:]),
        MalformedError,
        ["10.2.10", "10.3"],
    )
    neg(
        "neg-ack-cosignature-line",
        "An ack whose cosignature has no em dash: not a signature line.",
        edited(cosignature=f"- {NODE_ID} {_b64(blob)}"),
        MalformedError,
        ["10.2.10"],
    )
    # The note key id of the node key for algorithm 0x01, not 0x04: the Ed25519
    # signature still verifies, so only the key id rule can refuse it.
    wrong_id = note_key_id(NODE_ID, ALG_ED25519, node_key.public)
    assert wrong_id != line.key_id
    neg(
        "neg-ack-cosignature-key-id",
        "An ack whose co-signature carries the note key id for algorithm 0x01 instead of "
        "0x04 (signature otherwise valid).",
        with_blob(wrong_id + line.signature),
        SignatureError,
        ["10.3", "10.4.4"],
    )
    flipped = blob[:-1] + bytes([blob[-1] ^ 1])
    neg(
        "neg-ack-cosignature-signature",
        "An ack whose co-signature's Ed25519 signature has one bit flipped.",
        with_blob(flipped),
        SignatureError,
        ["10.3", "10.4.4"],
    )
    other_size = cosign(
        Checkpoint(repo.root2.origin(MD5), good.applied.version - 1, good.applied.checkpoint_root),
        node_key,
        NODE_ID,
        good.sent,
    )
    neg(
        "neg-ack-cosignature-checkpoint",
        "An ack whose co-signature covers size applied.version - 1 instead of the applied "
        "checkpoint text.",
        edited(cosignature=other_size.line().rstrip("\n")),
        SignatureError,
        ["10.3", "10.4.4"],
    )

    # -- §10.4: the sidecar comes first --------------------------------------------------
    neg(
        "neg-ack-sidecar-malformed",
        "The ack with its sidecar re-encoded with a space after ':' (not canonical).",
        ack_data,
        MalformedError,
        ["10.4.1", "4.2"],
        sig=ack_sig.replace(b'"signatures":', b'"signatures": '),
    )
    neg(
        "neg-ack-unsigned-before-parsed",
        "The non-canonical ack of neg-ack-non-canonical, signed by node-2 instead: the "
        "sidecar is checked first, so this is a SignatureError, not a MalformedError.",
        spaced,
        SignatureError,
        ["10.4.1", "10.4.2", "4.2"],
        sig=sign_bytes(spaced, [keys["node-2"]]).to_bytes(),
    )
    opinion_cases: tuple[tuple[str, str, object], ...] = (
        (
            "position",
            "An opinion whose position is 'agreed': not a position of §10.1.",
            {"e-aaaa": {"position": "agreed", "reason": "actioned"}},
        ),
        (
            "reason-of-another-position",
            "A confirmed opinion with a dispute's reason (benign).",
            {"e-aaaa": {"position": "confirmed", "reason": "benign"}},
        ),
        (
            "reason-missing",
            "A disputed opinion without its reason.",
            {"e-aaaa": {"position": "disputed"}},
        ),
        (
            "none-with-reason",
            "A position taken back (none) that gives a reason.",
            {"e-aaaa": {"position": "none", "reason": "other"}},
        ),
        (
            "entry-id",
            "An opinion on 'E-AAAA': not an entry id (upper case).",
            {"E-AAAA": {"position": "confirmed", "reason": "blocked"}},
        ),
        (
            "unknown-member",
            "An opinion with a member §10.1 does not name (weight): the record is closed.",
            {"e-aaaa": {"position": "confirmed", "reason": "blocked", "weight": 2}},
        ),
        (
            "not-object",
            "An opinion that is a string, not an object.",
            {"e-aaaa": "confirmed"},
        ),
    )
    for name, description, bad in opinion_cases:
        neg(
            f"neg-ack-opinion-{name}",
            description,
            edited(opinions=bad),
            MalformedError,
            ["10.2.11"],
        )
    kept_cases: tuple[tuple[str, str, object], ...] = (
        ("reason", "kept with a reason §10.1 does not name (reviewed).", {"reviewed": 1}),
        ("negative", "kept with a counter below 0.", {"quarantine": -1}),
        ("not-integer", "kept with a counter that is a string.", {"allowlist": "3"}),
        ("not-object", "kept that is an array, not an object.", [["allowlist", 3]]),
    )
    for name, description, bad in kept_cases:
        neg(f"neg-ack-kept-{name}", description, edited(kept=bad), MalformedError, ["10.2.12"])

    return cases


def _root_rule_cases(repo: _Repo) -> dict[str, dict[str, Any]]:
    """Cases for the root chain (PROTOCOL.md §13.1) and for which root may sign a header
    (§5.3, §13.4 steps 6 and 9). Roots v3 (and v4) that are not in ``repo/`` travel in
    the case as text, after the repository's roots: ``next_roots``."""
    keys, files = repo.keys, repo.files
    cases: dict[str, dict[str, Any]] = {}
    roots12 = ["repo/root/1.json", "repo/root/2.json"]
    now = _time(VERIFY_AT)
    root2_signers = [keys[k] for k in ROOT2_SIGNERS]

    def successor(previous: Root, **changes: Any) -> Root:
        return Root(**{**_root_fields(previous), "version": previous.version + 1, **changes})

    def signed(root: Root, signers: Sequence[SigningKey]) -> dict[str, str]:
        data, sig = root.sign(signers)
        return {"root_text": _text(data), "sig_text": _text(sig)}

    def hub_with(next_roots: Sequence[Mapping[str, str]], versions: Sequence[int]) -> TrustedHub:
        hub = _hub(files, VERIFY_AT, versions=versions)
        for r in next_roots:
            hub.update_root(r["root_text"].encode(), r["sig_text"].encode())
        return hub

    # -- roots that rotate nothing leave published history valid -----------------------
    policy_only = successor(
        repo.root2,
        policy=Policy(max_body_bytes=1024 * 1024),
    )
    assert policy_only.lists == repo.root2.lists  # first_version copied, not raised
    policy_roots = [signed(policy_only, root2_signers)]
    root_a_b_c = Role(
        tuple(keys[k].keyid for k in ("root-a", "root-b", "root-c")), 2
    )  # root-d out, root-c back
    added = ListSpec("demo-sha256", "sha256", 0, label="demo", snapshot_every=2)
    keys_and_list = successor(
        repo.root2,
        keys={**repo.root2.keys, keys["root-c"].keyid: keys["root-c"].public},
        roles={**repo.root2.roles, "root": root_a_b_c},
        lists={**repo.root2.lists, added.list_id: added},
    )
    keys_roots = [signed(keys_and_list, [keys[k] for k in ("root-a", "root-c", "root-d")])]
    for name, description, next_roots, rules in (
        (
            "root-policy-only",
            "Root v3 changes only policy (max_body_bytes 64 MiB → 1 MiB) and copies every "
            "list's first_version (3) from root v2. It retires no delta key, so headers "
            "v3 and later, which name root v2, still verify: step 9 looks only at roots "
            "that change the delta role.",
            policy_roots,
            ["5.3", "13.4.9", "13.1.2"],
        ),
        (
            "root-keys-and-list-added",
            "Root v3 replaces root-d by root-c in the root role (signed by root-a, root-d of "
            "v2's role and root-a, root-c of its own) and declares a new list demo-sha256, "
            "copying first_version: no published header is retired.",
            keys_roots,
            ["5.3", "13.4.9", "13.1.2", "12.6"],
        ),
    ):
        hub = hub_with(next_roots, [1, 2])
        synced: dict[str, Any] = {}
        for list_id in (PDQ, MD5):
            state, trust = _sync(hub, files, list_id, files[checkpoint_path(list_id)])
            assert state == repo.heads[list_id].state
            synced[list_id] = {
                "version": trust.version,
                "state": trust.state.to_dict(),
                "root_version": trust.root_version,
            }
        cases[name] = _case(
            description,
            "sync_after_roots",
            rules=rules,
            input={"now": now, "roots": roots12, "next_roots": next_roots},
            expected={"root_version": hub.root.version, "lists": synced},
        )

    # -- a real delta rotation retires the removed key ------------------------------------
    def retired(
        name: str,
        description: str,
        header: dict[str, Any],
        key: SigningKey,
        roots: list[str],
        next_roots: Sequence[Mapping[str, str]],
        error: type[ProtocolError],
        rules: Sequence[str],
    ) -> None:
        data = canonicalize(header)
        sig = sign_bytes(data, [key]).to_bytes()
        list_id, version = header["list"], header["version"]

        def run() -> None:
            hub = hub_with(next_roots, [int(r.split("/")[-1].split(".")[0]) for r in roots])
            upd = hub.begin_update(ListTrust(list_id), files[checkpoint_path(list_id)])
            _headers(upd, files, list_id, version - 1)
            upd.add_header(data, sig)

        cases[name] = _case(
            description,
            "add_header_after_roots",
            rules=rules,
            input={
                "now": now,
                "roots": roots,
                "next_roots": list(next_roots),
                "list": list_id,
                "version": version,
                "header_text": _text(data),
                "sig_text": _text(sig),
            },
            files={"checkpoint": f"repo/{checkpoint_path(list_id)}"},
            error=_expect(error, run),
        )

    md5_v3_old = _header_dict(repo, MD5, 3, root_version=1)
    retired(
        "neg-retired-delta-key",
        "Header v3 of demo-md5 naming root v1 and signed by the delta key root v2 removed. "
        "Header v2 named root v1, so root v1 is the floor and its delta role verifies the "
        "bytes; but root v2 changed the delta role with first_version 3 ≤ 3.",
        md5_v3_old,
        keys["delta"],
        roots12,
        [],
        SignatureError,
        ["13.4.9", "5.3"],
    )
    retired(
        "neg-retired-delta-key-after-policy-root",
        "As neg-retired-delta-key, with the policy-only root v3 of root-policy-only also "
        "trusted: a later root that rotates nothing does not lift the retirement.",
        md5_v3_old,
        keys["delta"],
        roots12,
        policy_roots,
        SignatureError,
        ["13.4.9"],
    )
    retired(
        "neg-header-names-unwalked-root",
        "A verifier whose root walk ended at v1 (root/2.json not found) is given header v3 "
        "of demo-md5 naming root v2, signed by root v1's delta key: the signature is good, "
        "so the hub did make root v2, and the file the verifier lacks is root/2.json.",
        _header_dict(repo, MD5, 3, root_version=2),
        keys["delta"],
        ["repo/root/1.json"],
        [],
        MissingFileError,
        ["13.4.6", "13.1.2"],
    )

    # -- the walk ---------------------------------------------------------------------
    def root_case(
        name: str,
        description: str,
        root: Root,
        signers: Sequence[SigningKey],
        error: type[ProtocolError],
        rules: Sequence[str],
    ) -> None:
        data, sig = root.sign(signers)
        cases[name] = _case(
            description,
            "update_root",
            rules=rules,
            input={"now": now, "roots": roots12, "root_text": _text(data), "sig_text": _text(sig)},
            error=_expect(error, lambda: _hub(files, VERIFY_AT).update_root(data, sig)),
        )

    lowered = {**repo.root2.lists, MD5: replace(repo.root2.lists[MD5], first_version=2)}
    root_case(
        "neg-root-lowers-first-version",
        "Root v3, validly signed by both root roles, lowers demo-md5's first_version from 3 "
        "to 2: the retired delta key could sign v2 again.",
        successor(repo.root2, lists=lowered),
        root2_signers,
        RollbackError,
        ["13.1.2.8", "5.3"],
    )
    retyped = {**repo.root2.lists, MD5: ListSpec(MD5, "sha256", 0, label="demo", first_version=3)}
    root_case(
        "neg-root-changes-hash-type",
        "Root v3, validly signed by both root roles, declares demo-md5 as a sha256 list.",
        successor(repo.root2, lists=retyped),
        root2_signers,
        ConsistencyError,
        ["13.1.2.7"],
    )

    # -- the pin ----------------------------------------------------------------------
    claims_two = Root(**{**_root_fields(repo.root1), "version": 2})
    data, sig = claims_two.sign([keys[k] for k in ROOT1_SIGNERS])
    pin = hashlib.sha256(data).hexdigest()
    cases["neg-pinned-root-version"] = _case(
        "A root/1.json whose bytes match the pin and carry a threshold of their own root "
        "role, but whose version is 2: the walk would go on at root/3.json and skip "
        "root/2.json. The pinned root's version must be the one its file name says.",
        "pin_root",
        rules=["13.1.1"],
        input={
            "now": now,
            "file": "root/1.json",
            "root_text": _text(data),
            "sig_text": _text(sig),
            "pinned_sha256": pin,
        },
        error=_expect(
            RollbackError,
            lambda: TrustedHub(data, sig, now=VERIFY_AT, pinned_sha256=pin, pinned_version=1),
        ),
    )
    return cases


def _checkpoint_rule_cases(repo: _Repo) -> dict[str, dict[str, Any]]:
    """Cases for the checkpoint note (PROTOCOL.md §9.2), its verification (§13.2) and
    freshness (§13.3), plus the field rules of §3.1–3.2 that only a vector can pin down
    for another implementation: each note is signed by the real keys over its real
    text, so the rule named is what decides, not a broken signature."""
    keys, files = repo.keys, repo.files
    cases: dict[str, dict[str, Any]] = {}
    roots12 = ["repo/root/1.json", "repo/root/2.json"]
    origin = repo.root2.origin(MD5)
    ts_name = repo.root2.timestamp_name
    head = repo.heads[MD5]
    size, root_hash = head.version, head.compact.root()
    repo_cp = files[checkpoint_path(MD5)]
    max_age = repo.root2.policy.max_checkpoint_age
    skew = repo.root2.policy.max_clock_skew

    # A second pinned root v1 whose checkpoint and timestamp roles have two keys each
    # and threshold 2. The extra keys' seeds follow the same public formula as keys/.
    extra = {
        label: SigningKey.from_seed(key_seed(label)) for label in ("checkpoint-2", "timestamp-2")
    }
    two = {**keys, **extra}
    base = repo.root1
    t2_root = Root(
        **{
            **_root_fields(base),
            "keys": {
                **{k.keyid: k.public for k in (keys["root-a"], keys["root-b"], keys["root-c"])},
                **{k.keyid: k.public for k in (keys["delta"],)},
                **{two[k].keyid: two[k].public for k in ("checkpoint", "checkpoint-2")},
                **{two[k].keyid: two[k].public for k in ("timestamp", "timestamp-2")},
            },
            "roles": {
                "root": Role(tuple(keys[k].keyid for k in ROOT1_ROLES["root"]), 2),
                "delta": Role((keys["delta"].keyid,), 1),
                "checkpoint": Role((two["checkpoint"].keyid, two["checkpoint-2"].keyid), 2),
                "timestamp": Role((two["timestamp"].keyid, two["timestamp-2"].keyid), 2),
            },
        }
    )
    t2_text, t2_sig = t2_root.sign([keys[k] for k in ROOT1_SIGNERS])

    def note(text: bytes, *lines: NoteSignature | str) -> bytes:
        """A note over ``text`` (bytes, anything) with the given lines, in that order."""
        out = [line if isinstance(line, str) else line.line() for line in lines]
        return text + b"\n" + "".join(out).encode()

    def cp_line(text: bytes, label: str = "checkpoint", name: str = origin) -> NoteSignature:
        key = two[label]
        return NoteSignature(name, note_key_id(name, ALG_ED25519, key.public), key.sign(text))

    def ts_line(
        text: bytes, moment: datetime, label: str = "timestamp", name: str = ts_name
    ) -> NoteSignature:
        key, stamp = two[label], int(moment.timestamp())
        message = f"cosignature/v1\ntime {stamp}\n".encode() + text
        return NoteSignature(
            name,
            note_key_id(name, ALG_COSIGNATURE_V1, key.public),
            stamp.to_bytes(8, "big") + key.sign(message),
        )

    cp_text = Checkpoint(origin, size, root_hash).body()
    at6 = _at(6)

    def add(
        name: str,
        description: str,
        rules: Sequence[str],
        checkpoint: bytes,
        *,
        error: type[ProtocolError] | None = None,
        now: datetime = VERIFY_AT,
        pinned: bool = False,
        after_sync: bool = False,
    ) -> None:
        inp: dict[str, Any] = {"now": _time(now), "list": MD5, "after_sync": after_sync}
        if pinned:
            inp.update(root_text=_text(t2_text), root_sig_text=_text(t2_sig))
        else:
            inp["roots"] = roots12
        inp["checkpoint_text"] = _text(checkpoint)

        def run() -> ListUpdate:
            hub = TrustedHub(t2_text, t2_sig, now=now) if pinned else _hub(files, now)
            trust = ListTrust(MD5)
            if after_sync:
                _, trust = _sync(hub, files, MD5, repo_cp)
            return hub.begin_update(trust, checkpoint)

        if error is not None:
            assert name.startswith("neg-")
            cases[name] = _case(
                description, "verify_checkpoint", rules=rules, input=inp, error=_expect(error, run)
            )
            return
        upd = run()
        cases[name] = _case(
            description,
            "verify_checkpoint",
            rules=rules,
            input=inp,
            expected={
                "size": upd.checkpoint.size,
                "root_hash_b64": _b64(upd.checkpoint.root_hash),
                "time": _time(upd.checkpoint.timestamp),
            },
        )

    both = (cp_line(cp_text), ts_line(cp_text, at6))

    # -- §9.2 parsing ------------------------------------------------------------------
    ext_text = cp_text + b"ext: an extension line\n"
    add(
        "checkpoint-extension-line",
        "demo-md5's checkpoint text with one extension line after the root hash, signed by "
        "the checkpoint and timestamp keys over the whole text: accepted, the line ignored.",
        ["9.2", "13.2.2"],
        note(ext_text, cp_line(ext_text), ts_line(ext_text, at6)),
    )
    tab_text = cp_text + b"ext:\tan extension line\n"
    add(
        "neg-checkpoint-control-character",
        "An extension line holding a TAB (U+0009), validly signed: no code point below "
        "U+0020 but LF may appear in a note.",
        ["9.2", "13.2.2"],
        note(tab_text, cp_line(tab_text), ts_line(tab_text, at6)),
        error=MalformedError,
    )
    add(
        "neg-checkpoint-carriage-return",
        "demo-md5's checkpoint with its first LF written as CR LF.",
        ["9.2", "13.2.2"],
        repo_cp.replace(b"\n", b"\r\n", 1),
        error=MalformedError,
    )
    add(
        "neg-checkpoint-no-final-newline",
        "demo-md5's checkpoint without the LF that ends its last signature line.",
        ["9.2", "13.2.2"],
        repo_cp[:-1],
        error=MalformedError,
    )
    add(
        "neg-checkpoint-extra-final-newline",
        "demo-md5's checkpoint with one more LF at its end: that makes the last blank line "
        "the final one, with no signature line after it.",
        ["9.2", "13.2.2"],
        repo_cp + b"\n",
        error=MalformedError,
    )
    zero_text = cp_text.replace(f"\n{size}\n".encode(), f"\n0{size}\n".encode(), 1)
    add(
        "neg-checkpoint-size-leading-zero",
        f"A checkpoint text with the tree size written 0{size}, validly signed by both keys.",
        ["9.2", "13.2.2"],
        note(zero_text, cp_line(zero_text), ts_line(zero_text, at6)),
        error=MalformedError,
    )
    blank_text = cp_text + b"\next: after a blank line\n"
    add(
        "neg-checkpoint-blank-line-in-text",
        "A note whose text holds a blank line, then an extension line, signed over all of it: "
        "the text ends at the last blank line, so it holds an empty line, which a checkpoint "
        "may not.",
        ["9.2", "13.2.2"],
        note(blank_text, cp_line(blank_text), ts_line(blank_text, at6)),
        error=MalformedError,
    )
    witnesses = [
        cp_line(cp_text, "node-2", f"w{i:02d}.witness.example") for i in range(MAX_SIGNATURE_LINES)
    ]
    add(
        "checkpoint-64-lines",
        "demo-md5's checkpoint with 62 well-formed lines of keys the verifier does not know "
        "(64 lines in all): accepted, the unknown lines ignored.",
        ["9.2", "13.2.7"],
        note(cp_text, *both, *witnesses[: MAX_SIGNATURE_LINES - 2]),
    )
    add(
        "neg-checkpoint-65-lines",
        "The same with 63 unknown lines (65 in all): more than 64 signature lines.",
        ["9.2", "13.2.2"],
        note(cp_text, *both, *witnesses[: MAX_SIGNATURE_LINES - 1]),
        error=MalformedError,
    )
    add(
        "neg-checkpoint-malformed-unknown-line",
        "demo-md5's checkpoint plus a line of an unknown key name whose base64 holds 3 bytes "
        "(less than a key id and a signature): only well-formed lines can be unknown.",
        ["9.2", "13.2.2"],
        repo_cp + "\u2014 witness.example AAAA\n".encode(),
        error=MalformedError,
    )
    long_names = [
        cp_line(cp_text, "node-2", f"w{i:02d}." + "x" * 240 + ".example") for i in range(60)
    ]
    add(
        "neg-checkpoint-over-cap",
        "demo-md5's checkpoint plus 60 well-formed unknown lines with 250-character names "
        "(62 lines, over 16 KiB): the cap comes before the parse.",
        ["13.2.1", "11"],
        note(cp_text, *both, *long_names),
        error=LimitError,
    )

    # -- §13.2 signatures --------------------------------------------------------------
    node_line = cosign(Checkpoint(origin, size, root_hash), keys[NODE_ID], NODE_ID, at6)
    add(
        "checkpoint-unknown-lines-ignored",
        "demo-md5's checkpoint lines plus a node's co-signature (named node-1), a line named "
        "by the origin under a key id no checkpoint key has, and a co-signature named "
        "<hub>/timestamp by a key not in the timestamp role: all three ignored.",
        ["9.2", "13.2.4", "13.2.5", "13.2.7"],
        note(
            cp_text,
            both[0],
            node_line,
            cp_line(cp_text, "node-2"),
            ts_line(cp_text, at6 - timedelta(days=3), "node-2"),
            both[1],
        ),
    )
    bad_cp = NoteSignature(origin, both[0].key_id, keys["checkpoint"].sign(b"another text\n"))
    add(
        "neg-checkpoint-bad-known-checkpoint-line",
        "demo-md5's valid checkpoint and timestamp lines plus a second line with the "
        "checkpoint key's name and key id whose signature is over another text: a line of a "
        "known key that does not verify rejects the note, though the threshold is met.",
        ["9.2", "13.2.4"],
        note(cp_text, *both, bad_cp),
        error=SignatureError,
    )
    other_text = Checkpoint(origin, size - 1, root_hash).body()
    bad_ts = ts_line(other_text, at6)
    add(
        "neg-checkpoint-bad-known-timestamp-line",
        "demo-md5's valid lines plus a timestamp-key co-signature (right name and key id) "
        "over a different checkpoint text: it does not verify, so the note is rejected.",
        ["9.2", "13.2.5"],
        note(cp_text, *both, bad_ts),
        error=SignatureError,
    )
    add(
        "neg-checkpoint-timestamp-misnamed",
        f"demo-md5's checkpoint line and a co-signature by the timestamp key named "
        f"{HUB_NAME!r} instead of {ts_name!r}: under another name it is not a timestamp "
        "line (it is ignored), so the timestamp role has no valid line.",
        ["13.2.5", "13.2.7"],
        note(cp_text, both[0], ts_line(cp_text, at6, name=HUB_NAME)),
        error=SignatureError,
    )
    add(
        "neg-checkpoint-origin",
        "demo-pdq's checkpoint (validly signed) presented as demo-md5's: the origin is "
        "not <hub>/lists/demo-md5.",
        ["13.2.3"],
        files[checkpoint_path(PDQ)],
        error=ConsistencyError,
    )

    # -- thresholds above 1 --------------------------------------------------------------
    two_cp = (cp_line(cp_text), cp_line(cp_text, "checkpoint-2"))
    two_ts = (ts_line(cp_text, at6), ts_line(cp_text, at6 - timedelta(minutes=30), "timestamp-2"))
    threshold_root = (
        " under a pinned root v1 (in the case) whose checkpoint role is checkpoint and "
        "checkpoint-2 and timestamp role timestamp and timestamp-2, each with threshold 2 "
        "(seeds: SHA-256 of 'hashhub vector key: <label>', as in keys/)"
    )
    add(
        "checkpoint-threshold-2",
        "Two checkpoint lines and two co-signatures (timestamp-2's 30 minutes older)"
        + threshold_root
        + ": accepted, and the time is the older co-signature's.",
        ["13.2.4", "13.2.5", "13.2.6"],
        note(cp_text, *two_cp, *two_ts),
        pinned=True,
    )
    add(
        "neg-checkpoint-threshold-2-one-checkpoint-line",
        "One checkpoint line and two co-signatures" + threshold_root + ".",
        ["13.2.4"],
        note(cp_text, two_cp[0], *two_ts),
        error=SignatureError,
        pinned=True,
    )
    add(
        "neg-checkpoint-threshold-2-one-timestamp-line",
        "Two checkpoint lines and one co-signature" + threshold_root + ".",
        ["13.2.5"],
        note(cp_text, *two_cp, two_ts[0]),
        error=SignatureError,
        pinned=True,
    )
    add(
        "neg-checkpoint-threshold-2-one-key-twice",
        "Two checkpoint lines and two co-signatures by the same timestamp key"
        + threshold_root
        + ": a key counts once.",
        ["13.2.5"],
        note(cp_text, *two_cp, two_ts[0], ts_line(cp_text, at6 - timedelta(minutes=1))),
        error=SignatureError,
        pinned=True,
    )

    # -- several co-signatures of one key: the oldest, in either order --------------------
    newer = ts_line(cp_text, at6)
    for gap, stale in ((timedelta(hours=12), False), (timedelta(days=1), True)):
        older = ts_line(cp_text, at6 - gap)
        for order, lines in (("older-first", (older, newer)), ("newer-first", (newer, older))):
            what = "12 hours" if not stale else "a day"
            description = (
                f"demo-md5's checkpoint with two valid co-signatures by the timestamp key "
                f"{what} apart, the {order.replace('-', ' ')}; the time is the older one"
            )
            if stale:
                add(
                    f"neg-checkpoint-two-timestamps-stale-{order}",
                    description + ", more than max_checkpoint_age before the clock.",
                    ["13.2.6", "13.3.1"],
                    note(cp_text, both[0], *lines),
                    error=FreezeError,
                )
            else:
                add(
                    f"checkpoint-two-timestamps-{order}",
                    description + ".",
                    ["13.2.6"],
                    note(cp_text, both[0], *lines),
                )

    # -- §13.3 boundaries, refresh and time rollback ------------------------------------
    add(
        "checkpoint-at-max-age",
        "demo-md5's checkpoint checked exactly max_checkpoint_age after its co-signature: "
        "still fresh.",
        ["13.3.1"],
        repo_cp,
        now=at6 + timedelta(seconds=max_age),
    )
    add(
        "checkpoint-at-max-skew",
        "demo-md5's checkpoint checked by a clock exactly max_clock_skew behind its "
        "co-signature: accepted.",
        ["13.3.2"],
        repo_cp,
        now=at6 - timedelta(seconds=skew),
    )
    add(
        "checkpoint-same-time-again",
        "After applying demo-md5 v3, the same checkpoint again: same size, same root, same "
        "time (an equal time is no rollback; the same root is no equivocation).",
        ["13.3.3", "13.3.4", "13.3.5"],
        repo_cp,
        after_sync=True,
    )
    later = at6 + timedelta(minutes=5)
    add(
        "checkpoint-refresh",
        "After applying demo-md5 v3, a refresh: the same size and root co-signed 5 minutes "
        "later. No header is needed; only the stored checkpoint and its time change.",
        ["13.3.4"],
        note(cp_text, both[0], ts_line(cp_text, later)),
        after_sync=True,
    )
    add(
        "neg-checkpoint-time-rollback",
        "After applying demo-md5 v3 (co-signed at 06:00), the same size and root co-signed "
        "30 minutes earlier: the time went back.",
        ["13.3.4"],
        note(cp_text, both[0], ts_line(cp_text, at6 - timedelta(minutes=30))),
        error=RollbackError,
        after_sync=True,
    )

    # -- §3.1–3.2: times and nesting depth ---------------------------------------------
    v1 = parse_canonical(files[header_path(MD5, 1)])
    assert isinstance(v1, dict)
    for name, created, what in (
        ("neg-time-leap-second", "2026-01-01T00:59:60Z", "a leap second (:60)"),
        ("neg-time-year-0000", "0000-01-01T00:00:00Z", "year 0000"),
    ):
        data = canonicalize({**v1, "created": created})
        sig = sign_bytes(data, [keys["delta"]]).to_bytes()

        def run_header(data: bytes = data, sig: bytes = sig) -> None:
            upd = _hub(files, VERIFY_AT).begin_update(ListTrust(MD5), repo_cp)
            upd.add_header(data, sig)

        cases[name] = _case(
            f"Header v1 of demo-md5 with created {created!r}, {what}, validly re-signed by "
            "the delta key: not a time hashhub accepts.",
            "add_header",
            rules=["3.2"],
            input={
                "now": _time(VERIFY_AT),
                "roots": roots12,
                "list": MD5,
                "version": 1,
                "header_text": _text(data),
                "sig_text": _text(sig),
            },
            files={"checkpoint": f"repo/{checkpoint_path(MD5)}"},
            error=_expect(MalformedError, run_header),
        )
    deep = [
        "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
        '{"a":' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1),
    ]
    for text in deep:
        _expect(MalformedError, partial(parse_canonical, text.encode()))
    cases["neg-json-too-deep"] = _case(
        f"Arrays, then objects, nested {MAX_DEPTH + 1} deep: past the fixed limit of {MAX_DEPTH}.",
        "parse_canonical",
        rules=["3.1"],
        input={"texts": deep},
        error="MalformedError",
    )
    at_limit = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    cases["jcs-depth-64"] = _case(
        f"Arrays nested {MAX_DEPTH} deep, the most a document may have: accepted.",
        "canonicalize",
        rules=["3.1"],
        input={"text": at_limit},
        expected={
            "canonical_text": _text(canonicalize(parse_canonical(at_limit.encode()))),
            "canonical_hex": at_limit.encode().hex(),
        },
    )
    return cases


INLINE_STAGES = ("checkpoint", "headers", "snapshot", "bodies", "apply")
"""The stages of an ``inline_update`` case, in order (see CHECKS)."""


def _inline_run(
    files: Mapping[str, bytes], inp: Mapping[str, Any], upto: str = "apply"
) -> tuple[ListState, ListTrust] | None:
    """Run an ``inline_update`` case's stages up to and including ``upto``."""
    versions = [int(path.rsplit("/", 1)[1].removesuffix(".json")) for path in inp["roots"]]
    hub = _hub(files, datetime.fromisoformat(inp["now"]), versions)
    upd = hub.begin_update(ListTrust(inp["list"]), inp["checkpoint_text"].encode())
    state = ListState(upd.spec.hash_length)
    stages = INLINE_STAGES[: INLINE_STAGES.index(upto) + 1]
    if "headers" in stages:
        for item in inp["headers"]:
            upd.add_header(item["header_text"].encode(), item["sig_text"].encode())
    snap = inp.get("snapshot")
    if "snapshot" in stages and snap is not None:
        state = upd.add_snapshot(snap["version"], bytes.fromhex(snap["snapshot_hex"]))
    if "bodies" in stages:
        for header in upd.bodies_needed():
            upd.add_body(header.version, inp["bodies"][str(header.version)].encode())
    return upd.apply(state) if "apply" in stages else None


def _audit_list(files: Mapping[str, bytes], inp: Mapping[str, Any]) -> tuple[ListState, ListTrust]:
    """A ``missing_file`` case (see CHECKS): every file §11.1 promises for one list."""

    def get(path: str) -> bytes:
        if path == inp["missing"] or path not in files:
            raise MissingFileError(path, "the signed data refers to it")
        return files[path]

    list_id = inp["list"]
    hub = _hub(files, datetime.fromisoformat(inp["now"]))
    text = inp.get("checkpoint_text")
    checkpoint = text.encode() if text is not None else get(checkpoint_path(list_id))
    upd = hub.begin_update(ListTrust(list_id), checkpoint)
    for version in range(1, upd.target + 1):
        path = header_path(list_id, version)
        upd.add_header(get(path), get(path + ".sig"))
    for header in upd.bodies_needed():
        upd.add_body(header.version, get(body_path(list_id, header.body.sha256)))
    result = upd.apply(ListState(upd.spec.hash_length), check_every_version=True)
    for version in upd.snapshots_due():
        upd.add_snapshot(version, get(snapshot_path(list_id, version)))
    return result


def _missing_file_cases(repo: _Repo) -> dict[str, dict[str, Any]]:
    """Missing files (§11.1), snapshots (§8, §13.5), bodies (§13.6) and apply (§13.7)."""
    keys, files = repo.keys, repo.files
    cases: dict[str, dict[str, Any]] = {}
    roots12 = ["repo/root/1.json", "repo/root/2.json"]
    now = _time(VERIFY_AT)
    pub1 = Publisher(repo.root1, _online(keys, "delta"))
    pub2 = Publisher(repo.root2, _online(keys, "delta-2"))

    # -- files that signed data promises, absent -------------------------------------------
    def missing_case(
        name: str,
        description: str,
        list_id: str,
        missing: str,
        rules: Sequence[str],
        checkpoint: bytes | None = None,
    ) -> None:
        inp: dict[str, Any] = {"now": now, "roots": roots12, "list": list_id, "missing": missing}
        if checkpoint is not None:
            inp["checkpoint_text"] = _text(checkpoint)
        cases[name] = _case(
            description,
            "missing_file",
            rules=rules,
            input=inp,
            error=_expect(MissingFileError, partial(_audit_list, files, inp)),
        )
        try:
            _audit_list(files, inp)
        except MissingFileError as e:
            if e.path != missing:
                raise AssertionError(f"{name}: {e.path} is missing, not {missing}") from e

    ref_v2 = DeltaHeader.from_bytes(files[header_path(MD5, 2)]).body
    missing_case(
        "neg-missing-checkpoint",
        "demo-md5's checkpoint is absent while its headers, bodies and snapshot remain: a "
        "declared list always has a checkpoint (size 0 before its first version), so this "
        "is a list hidden by the copy, not a list with nothing published.",
        MD5,
        checkpoint_path(MD5),
        ["11.1.1"],
    )
    missing_case(
        "neg-missing-header",
        "Header v2 of demo-md5 is absent though the checkpoint has size 3.",
        MD5,
        header_path(MD5, 2),
        ["11.1.2"],
    )
    missing_case(
        "neg-missing-header-sidecar",
        "The sidecar of header v2 of demo-md5 is absent (the header is there).",
        MD5,
        header_path(MD5, 2) + ".sig",
        ["11.1.2"],
    )
    missing_case(
        "neg-missing-body",
        "The body header v2 of demo-md5 names is absent.",
        MD5,
        body_path(MD5, ref_v2.sha256),
        ["11.1.3", "13.6"],
    )
    missing_case(
        "neg-missing-snapshot",
        "Snapshot 4 of demo-pdq is absent: header 4 names root v2, whose snapshot_every for "
        "demo-pdq is 2, so it is due. An auditor checks every due snapshot; a node that "
        "replays the bodies may go on without it.",
        PDQ,
        snapshot_path(PDQ, 4),
        ["8", "11.1.4", "13.5"],
    )
    head = repo.heads[MD5]
    ahead = pub2.checkpoint(MD5, head.version + 1, hashlib.sha256(b"ahead").digest(), _at(6))
    missing_case(
        "neg-fast-forward",
        "A validly signed checkpoint of demo-md5 of size 4 while only headers 1..3 are "
        "published: headers 1..3 verify, and the fast-forward shows up as header 4 missing.",
        MD5,
        header_path(MD5, head.version + 1),
        ["11.1.2"],
        checkpoint=ahead,
    )

    # -- another history of demo-md5, given inline -----------------------------------------
    def inline_case(
        name: str,
        description: str,
        versions: Sequence[tuple[bytes, dict[str, int], dict[str, Any]]],
        rules: Sequence[str],
        *,
        snapshot: tuple[int, bytes] | None = None,
        error: type[ProtocolError] | None = None,
        fails_at: str = "",
        checkpoint: bytes | None = None,
    ) -> None:
        """``versions``: (body bytes, overrides of the header's ``body``, result_state)."""
        headers, bodies, compact = [], {}, CompactRange()
        prev, base = "0" * 64, ListState(16).digest().to_dict()
        for number, (body, ref, result) in enumerate(versions, start=1):
            parsed = DeltaBody.from_bytes(body, "md5")
            value = {
                "_type": "hashhub.delta.v1",
                "list": MD5,
                "version": number,
                "prev": prev,
                "root_version": 1,
                "created": _time(_at(number)),
                "body": {**parsed.ref().to_dict(), **ref},
                "base_state": base,
                "result_state": result,
            }
            data = canonicalize(value)
            sig = sign_bytes(data, [keys["delta"]]).to_bytes()
            headers.append({"header_text": _text(data), "sig_text": _text(sig)})
            bodies[str(number)] = _text(body)
            compact.append(leaf_hash(data))
            prev, base = leaf_hash(data).hex(), result
        if checkpoint is None:
            checkpoint = pub1.checkpoint(MD5, len(versions), compact.root(), _at(len(versions)))
        inp: dict[str, Any] = {
            "now": now,
            "roots": roots12,
            "list": MD5,
            "checkpoint_text": _text(checkpoint),
            "headers": headers,
            "bodies": bodies,
        }
        if snapshot is not None:
            inp["snapshot"] = {"version": snapshot[0], "snapshot_hex": snapshot[1].hex()}
        if error is None:
            result_pair = _inline_run(files, inp)
            assert result_pair is not None
            state, trust = result_pair
            expected = {"version": trust.version, "state": state.digest().to_dict()}
            cases[name] = _case(
                description, "inline_update", rules=rules, input=inp, expected=expected
            )
            return
        stage = INLINE_STAGES.index(fails_at)
        _inline_run(files, inp, INLINE_STAGES[stage - 1])  # every stage before it passes
        cases[name] = _case(
            description,
            "inline_update",
            rules=rules,
            input=inp,
            fails_at=fails_at,
            error=_expect(error, partial(_inline_run, files, inp, fails_at)),
        )

    def body(removes: Sequence[bytes] = (), adds: Sequence[bytes] = ()) -> bytes:
        return DeltaBody.build("md5", list(removes), list(adds)).to_bytes()

    def digest_of(*hashes: bytes) -> dict[str, Any]:
        return ListState.from_hashes(16, list(hashes)).digest().to_dict()

    a, b, c = sorted(md5_hash(n) for n in (21, 22, 23))
    empty = digest_of()
    inline_case(
        "checkpoint-size-0",
        "The checkpoint of a declared list with no versions, as the hub publishes it when the "
        "root declaring the list appears: size 0, the empty tree's root (SHA-256 of nothing), "
        "signed "
        "by the checkpoint role and co-signed by the timestamp role. It verifies from "
        "nothing, needs no header, and leaves the empty state.",
        [],
        ["11.1.1", "9.1", "13.2", "13.3"],
        checkpoint=pub1.checkpoint(MD5, 0, EMPTY_ROOT, T0),
    )
    inline_case(
        "snapshot-empty-state",
        "Another history of demo-md5: v1 adds one hash, v2 removes it. A snapshot is due at "
        "v2 (snapshot_every 2 in root v1, which header 2 names) and the state is empty, so "
        "the snapshot is the empty file; it passes the length, SHA-256 and order checks.",
        [(body(adds=[a]), {}, digest_of(a)), (body(removes=[a]), {}, empty)],
        ["8", "13.5.1", "13.5.2", "13.5.3"],
        snapshot=(2, b""),
    )
    inline_case(
        "neg-snapshot-unordered",
        "Header 2 signs the digest of two hashes in descending order, and the snapshot holds "
        "exactly those bytes: length and SHA-256 match, the records are not ascending.",
        [
            (body(adds=[a, b]), {}, {"count": 2, "sha256": hashlib.sha256(b + a).hexdigest()}),
            (body(), {}, {"count": 2, "sha256": hashlib.sha256(b + a).hexdigest()}),
        ],
        ["8", "13.5.3"],
        snapshot=(2, b + a),
        error=MalformedError,
        fails_at="snapshot",
    )
    inline_case(
        "neg-body-counts",
        "Header 1 says its body adds 2 hashes (and signs a result of count 2); the body it "
        "names, by SHA-256 and length, adds 3.",
        [(body(adds=[a, b, c]), {"adds": 2}, digest_of(a, b))],
        ["13.6.4"],
        error=ConsistencyError,
        fails_at="bodies",
    )
    inline_case(
        "neg-removal-absent",
        "Header 1 (base: the empty state) names a body that removes one hash and adds "
        "another: the removal is not in the base state.",
        [(body(removes=[a], adds=[b]), {}, empty)],
        ["13.7.2"],
        error=StateMismatchError,
        fails_at="apply",
    )
    inline_case(
        "neg-result-state",
        "Header 1 signs a result_state of the right count but another SHA-256 than the "
        "state its body leads to.",
        [(body(adds=[a, b]), {}, digest_of(a, c))],
        ["13.7.3"],
        error=ConsistencyError,
        fails_at="apply",
    )

    # -- caps of bodies and snapshots ------------------------------------------------------
    good_body = files[body_path(MD5, ref_v2.sha256)]
    longer = good_body + b"+" + md5_hash(99).hex().encode() + b"\n"

    def run_long_body() -> None:
        upd = _hub(files, VERIFY_AT).begin_update(ListTrust(MD5), files[checkpoint_path(MD5)])
        _headers(upd, files, MD5, upd.target)
        upd.add_body(2, longer)

    cases["neg-body-length"] = _case(
        "The body of demo-md5 v2 with one more line: longer than the body.length header 2 "
        "signs (a reader stops at that length).",
        "add_body",
        rules=["11", "13.6.1"],
        input={
            "now": now,
            "roots": roots12,
            "list": MD5,
            "version": 2,
            "body_text": _text(longer),
        },
        files={"checkpoint": f"repo/{checkpoint_path(MD5)}"},
        error=_expect(LimitError, run_long_body),
    )
    short = files[snapshot_path(PDQ, 2)][:-32]

    def run_short_snapshot() -> None:
        upd = _hub(files, VERIFY_AT).begin_update(ListTrust(PDQ), files[checkpoint_path(PDQ)])
        _headers(upd, files, PDQ, upd.target)
        upd.add_snapshot(2, short)

    cases["neg-snapshot-length"] = _case(
        "Snapshot 2 of demo-pdq without its last record: shorter than result_state.count × 32 "
        "of header 2.",
        "add_snapshot",
        rules=["11", "13.5.1"],
        input={
            "now": now,
            "roots": roots12,
            "list": PDQ,
            "version": 2,
            "snapshot_hex": short.hex(),
        },
        files={"checkpoint": f"repo/{checkpoint_path(PDQ)}"},
        error=_expect(LimitError, run_short_snapshot),
    )
    return cases


_PARSERS: dict[str, Callable[[bytes], Any]] = {
    "root": Root.from_bytes,
    "header": DeltaHeader.from_bytes,
    "sidecar": SignatureSidecar.from_bytes,
}


def _document_rule_cases(repo: _Repo) -> dict[str, dict[str, Any]]:
    """§3.3: where unknown members are kept (and written back byte for byte), and the
    closed records and closed value sets where anything unknown is refused."""
    files = repo.files
    cases: dict[str, dict[str, Any]] = {}
    root = parse_canonical(files["root/1.json"])
    header = parse_canonical(files[header_path(MD5, 1)])
    sidecar = parse_canonical(files[header_path(MD5, 1) + ".sig"])
    assert isinstance(root, dict)
    assert isinstance(header, dict)
    assert isinstance(sidecar, dict)

    def with_member(value: dict[str, Any], path: Sequence[str], member: str, x: Any) -> bytes:
        copy = json.loads(json.dumps(value))
        target = copy
        for key in path:
            target = target[key]
        target[member] = x
        return canonicalize(copy)

    kept = {
        "root-top": ("root", with_member(root, [], "x-operator-note", {"why": "kept"})),
        "root-list": ("root", with_member(root, ["lists", MD5], "x-source", "ncii")),
        "root-policy": ("root", with_member(root, ["policy"], "x-min-quality", 50)),
        "header-top": ("header", with_member(header, [], "x-batch", [1, 2])),
    }
    for name, (kind, data) in kept.items():
        assert _PARSERS[kind](data).to_bytes() == data
        cases[f"document-unknown-member-{name}"] = _case(
            f"A {kind} with an unknown member where §3.3 preserves them: it parses, and "
            "re-encoding it gives the same bytes (the signature covers it).",
            "parse_document",
            rules=["3.3"],
            input={"kind": kind, "text": _text(data)},
            expected={"canonical_text": _text(data)},
        )
    entry = dict(sidecar["signatures"][0])
    refused = {
        "header-body": ("header", with_member(header, ["body"], "x", 1)),
        "header-state": ("header", with_member(header, ["result_state"], "x", 1)),
        "root-role": ("root", with_member(root, ["roles", "delta"], "x", 1)),
        "root-key": ("root", with_member(root, ["keys", next(iter(root["keys"]))], "x", 1)),
        "root-keytype": (
            "root",
            with_member(root, ["keys", next(iter(root["keys"]))], "keytype", "ed448"),
        ),
        "root-hash-type": ("root", with_member(root, ["lists", MD5], "hash_type", "sha1")),
        "root-role-name": (
            "root",
            with_member(root, ["roles"], "mirror", root["roles"]["delta"]),
        ),
        "sidecar-entry": (
            "sidecar",
            canonicalize({**sidecar, "signatures": [{**entry, "x": 1}]}),
        ),
        "sidecar-top": ("sidecar", with_member(sidecar, [], "x", 1)),
    }
    for name, (kind, data) in refused.items():
        cases[f"neg-document-closed-{name}"] = _case(
            f"A {kind} with an unknown member in a closed record, or an unknown value in a "
            f"closed set ({name}): refused when parsed, whatever signs it.",
            "parse_document",
            rules=["3.3"],
            input={"kind": kind, "text": _text(data)},
            error=_expect(MalformedError, partial(_PARSERS[kind], data)),
        )
    return cases


def _online_rotation_cases(repo: _Repo) -> dict[str, dict[str, Any]]:
    """A root that rotates the checkpoint and timestamp keys only: published headers stay
    valid (no delta key is retired), and the lists' checkpoints, re-issued under the new
    online keys, verify from the repository's roots plus that root."""
    keys, files = repo.keys, repo.files
    cases: dict[str, dict[str, Any]] = {}
    new = {
        label: SigningKey.from_seed(key_seed(label)) for label in ("checkpoint-2", "timestamp-2")
    }
    root2 = repo.root2
    online = {
        **_root_fields(root2),
        "version": 3,
        "keys": {
            **{
                k: v
                for k, v in root2.keys.items()
                if k not in {keys["checkpoint"].keyid, keys["timestamp"].keyid}
            },
            new["checkpoint-2"].keyid: new["checkpoint-2"].public,
            new["timestamp-2"].keyid: new["timestamp-2"].public,
        },
        "roles": {
            **root2.roles,
            "checkpoint": Role((new["checkpoint-2"].keyid,), 1),
            "timestamp": Role((new["timestamp-2"].keyid,), 1),
        },
    }
    root3 = Root(**online)
    assert not root3.rotates_delta(root2)
    data, sig = root3.sign([keys["root-a"], keys["root-b"]])  # root v2's role: a, b, d
    next_roots = [{"root_text": _text(data), "sig_text": _text(sig)}]
    moment = _at(6) + timedelta(minutes=5)
    checkpoints: dict[str, str] = {}
    hub = _hub(files, VERIFY_AT)
    hub.update_root(data, sig)
    synced: dict[str, Any] = {}
    for list_id in (PDQ, MD5):
        head = repo.heads[list_id]
        cp = Checkpoint(root3.origin(list_id), head.version, head.compact.root())
        note = SignedCheckpoint(
            cp,
            (
                sign_note(cp, new["checkpoint-2"], root3.origin(list_id)),
                cosign(cp, new["timestamp-2"], root3.timestamp_name, moment),
            ),
        ).to_bytes()
        checkpoints[list_id] = _text(note)
        state, trust = _sync(hub, files, list_id, note)
        assert state == head.state
        synced[list_id] = {
            "version": trust.version,
            "state": trust.state.to_dict(),
            "root_version": trust.root_version,
        }
        # The old online keys' checkpoint no longer verifies under root v3.
        _expect(
            SignatureError,
            partial(hub.begin_update, ListTrust(list_id), files[checkpoint_path(list_id)]),
        )
    cases["root-online-keys-rotated"] = _case(
        "Root v3 replaces the checkpoint and timestamp keys (checkpoint-2, timestamp-2; seeds "
        "from key_seed like every key here) and changes nothing else, signed by root-a and "
        "root-b (both root roles). Every published header stays valid; each list's "
        "checkpoint, re-issued at 06:05 under the new online keys, verifies, and the old "
        "one is refused (SignatureError).",
        "sync_after_roots",
        rules=["5.3", "13.1.2", "13.2.4", "13.2.5", "13.4.9", "12.6"],
        input={
            "now": _time(VERIFY_AT),
            "roots": ["repo/root/1.json", "repo/root/2.json"],
            "next_roots": next_roots,
            "checkpoint_texts": checkpoints,
        },
        expected={"root_version": 3, "lists": synced},
    )
    return cases


def _all_hash_types_cases(repo: _Repo) -> dict[str, dict[str, Any]]:
    """Lists of the two hash types ``repo/`` does not hold (phash, sha256), published end to
    end: root v3 declares them, two versions each under the delta-2 key, checkpoints, and
    a verifier syncs them from the repository's roots plus that root."""
    keys = repo.keys
    added = {
        "demo-phash": ListSpec("demo-phash", "phash", 10, label="demo", snapshot_every=2),
        "demo-sha256": ListSpec("demo-sha256", "sha256", 0, label="demo", snapshot_every=2),
    }
    root3 = Root(
        **{
            **_root_fields(repo.root2),
            "version": 3,
            "lists": {**repo.root2.lists, **added},
        }
    )
    data, sig = root3.sign([keys["root-a"], keys["root-b"]])
    next_roots = [{"root_text": _text(data), "sig_text": _text(sig)}]
    publisher = Publisher(root3, _online(keys, "delta-2"))
    hub = _hub(repo.files, VERIFY_AT)
    hub.update_root(data, sig)
    lists: dict[str, Any] = {}
    expected: dict[str, Any] = {}
    for list_id, spec in added.items():
        made = [
            hashlib.sha256(f"{list_id}-{i}".encode()).digest()[: spec.hash_length] for i in range(4)
        ]
        head = ListHead.empty(root3, list_id)
        files: dict[str, bytes] = {}
        for minutes, removes, adds in ((2, [], made[:3]), (4, [made[0]], [made[3]])):
            p = publisher.publish(
                head, removes=removes, adds=adds, now=_at(6) + timedelta(minutes=minutes)
            )
            head = p.head
            files.update(p.files)
        upd = hub.begin_update(ListTrust(list_id), files[checkpoint_path(list_id)])
        headers = []
        for v in (1, 2):
            path = header_path(list_id, v)
            upd.add_header(files[path], files[path + ".sig"])
            headers.append(
                {"header_text": _text(files[path]), "sig_text": _text(files[path + ".sig"])}
            )
        bodies = []
        for h in upd.bodies_needed():
            body = files[body_path(list_id, h.body.sha256)]
            upd.add_body(h.version, body)
            bodies.append(_text(body))
        state, trust = upd.apply(ListState(spec.hash_length), check_every_version=True)
        assert state == head.state
        lists[list_id] = {
            "checkpoint_text": _text(files[checkpoint_path(list_id)]),
            "headers": headers,
            "bodies": bodies,
        }
        expected[list_id] = {
            "hash_type": spec.hash_type,
            "version": trust.version,
            "state": trust.state.to_dict(),
            "snapshot_2_hex": files[snapshot_path(list_id, 2)].hex(),
        }
    return {
        "repo-phash-and-sha256": _case(
            "Root v3 (signed by root-a and root-b) declares demo-phash (pHash, 8-byte hashes, "
            "max distance 10) and demo-sha256; each gets v1 (+3) and v2 (-1 +1, snapshot) "
            "under delta-2 at 06:02 and 06:04. A verifier with the repository's roots, root "
            "v3 and the clock of repo/ verifies each checkpoint, both headers and bodies, and "
            "reaches the state given (its snapshot bytes are the state's).",
            "sync_new_lists",
            rules=["6.1", "7.2", "8", "13.2", "13.4", "13.6", "13.7"],
            input={
                "now": _time(VERIFY_AT),
                "roots": ["repo/root/1.json", "repo/root/2.json"],
                "next_roots": next_roots,
                "lists": lists,
            },
            expected={"root_version": 3, "lists": expected},
        )
    }


# --------------------------------------------------------------------------------------
# Entries lists: records, bodies (hashhub.body.v2), state, a published tree, the rules
# --------------------------------------------------------------------------------------

ENTRIES_HUB = "entries.example"
ENTRIES = "entries-pdq"
VOCABULARY = Vocabulary(
    categories=("extremism", "fraud", "ncii"),
    classifications=("low", "medium", "high"),
    sources=("import", "member", "upstream"),
)
"""The vocabulary of root v1 of ``entries.example``: the scale least severe first."""

ENTRIES_STAGES = ("checkpoint", "headers", "snapshot", "bodies", "apply")
"""The stages of an ``entries_sync`` case, in order (see CHECKS)."""


def entries_hash(n: int) -> bytes:
    """A 32-byte stand-in for the PDQ hash of an entry: SHA-256 of a label."""
    return hashlib.sha256(f"entries.example item {n}".encode()).digest()


def _entry(
    n: int,
    category: str = "ncii",
    classification: str = "medium",
    source: str = "import:batch-1",
    first_seen: float = 0.5,
    expires: float | None = None,
    *,
    entry_id: str | None = None,
) -> Entry:
    """Entry ``item-<n>`` of hash ``entries_hash(n)``; times in hours after T0."""
    kind, _, ref = source.partition(":")
    return Entry(
        hash=entries_hash(n),
        entry_id=f"item-{n}" if entry_id is None else entry_id,
        category=category,
        classification=classification,
        source_kind=kind,
        source_ref=ref or None,
        first_seen=_at(first_seen),
        expires=None if expires is None else _at(expires),
    )


def _line(entry: Entry) -> str:
    return entry.line.decode("ascii")


_DROP = object()
"""Marks a member ``_put`` removes."""


def _edited(value: dict[str, Any], edit: Callable[[dict[str, Any]], None]) -> bytes:
    """``value`` (a parsed document, left as it is) with ``edit`` made, re-encoded: how
    a negative case differs from its valid document in one thing."""
    copy = json.loads(json.dumps(value))
    edit(copy)
    return canonicalize(copy)


def _put(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """An edit setting the member at ``path`` (``a/b/c``) to ``value``, or removing it
    (``_DROP``)."""

    def edit(doc: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        at: Any = int(last) if isinstance(node, list) else last
        if value is _DROP:
            del node[at]
        else:
            node[at] = value

    return edit


def _entries_root(version: int = 1, **changes: Any) -> Root:
    """A root of ``entries.example``: the roles of the repository's root v1 (keys from
    the same seeds), one entries list, ``VOCABULARY``; ``changes`` replace fields."""
    keys = _keys()
    used = sorted({label for group in ROOT1_ROLES.values() for label in group})
    spec = ListSpec(ENTRIES, "pdq", 31, label="demo", snapshot_every=2, format="entries")
    fields: dict[str, Any] = {
        "version": version,
        "name": ENTRIES_HUB,
        "expires": T0 + timedelta(days=180),
        "keys": {keys[k].keyid: keys[k].public for k in used},
        "roles": {
            role: Role(tuple(keys[k].keyid for k in group), 2 if role == "root" else 1)
            for role, group in ROOT1_ROLES.items()
        },
        "lists": {ENTRIES: spec},
        "policy": Policy(),
        "vocabulary": VOCABULARY,
    }
    return Root(**{**fields, **changes})


def _entries_text(hash_type_name: str, removes: Sequence[str], adds: Sequence[str]) -> bytes:
    """Body bytes written line by line as given (``removes``: ``"<record> <reason>"``), so
    a case can hold a body the builder would refuse to make."""
    lines = [f"hashhub.body.v2 {hash_type_name}\n"]
    lines += [f"-{r}\n" for r in removes]
    lines += [f"+{a}\n" for a in adds]
    return "".join(lines).encode("ascii")


def _entries_body_checks(inp: Mapping[str, Any], text: str, created: str) -> EntriesBody:
    """What a verifier checks of a body alone: the grammar and body rules, the vocabulary
    of the root that signed its header, its times against the header's ``created``."""
    body = EntriesBody.from_bytes(text.encode("ascii"), inp["hash_type"])
    body.check_vocabulary(Vocabulary.from_dict(inp["vocabulary"]))
    body.check_times(datetime.fromisoformat(created))
    return body


def _entries_apply(inp: Mapping[str, Any], text: str) -> EntryState:
    """An ``entries_apply`` case: the body verified alone, then applied to the state."""
    kind = hash_type(inp["hash_type"])
    body = _entries_body_checks(inp, text, inp["created"])
    state = EntryState.from_entries(
        kind, [Entry.from_line(r.encode("ascii"), kind) for r in inp["state_records"]]
    )
    return state.apply(body)


def _entries_run(
    inp: Mapping[str, Any], upto: str = "apply"
) -> tuple[EntryState, ListTrust] | None:
    """Run an ``entries_sync`` case's stages up to and including ``upto``."""
    hub = TrustedHub(
        inp["root_text"].encode(),
        inp["root_sig_text"].encode(),
        now=datetime.fromisoformat(inp["now"]),
    )
    upd = hub.begin_update(ListTrust(inp["list"]), inp["checkpoint_text"].encode())
    state = EntryState(hash_type(upd.spec.hash_type))
    stages = ENTRIES_STAGES[: ENTRIES_STAGES.index(upto) + 1]
    if "headers" in stages:
        for item in inp["headers"]:
            upd.add_header(item["header_text"].encode(), item["sig_text"].encode())
    base = inp.get("base")
    if "snapshot" in stages and base is not None:
        state = upd.add_entries_snapshot(base, inp["snapshots"][str(base)].encode("ascii"))
    if "bodies" in stages:
        for header in upd.bodies_needed():
            upd.add_entries_body(header.version, inp["bodies"][str(header.version)].encode())
    return upd.apply_entries(state, check_every_version=True) if "apply" in stages else None


def _entries_value_cases() -> dict[str, dict[str, Any]]:
    """A record, a body and a state: the bytes another implementation must write."""
    cases: dict[str, dict[str, Any]] = {}
    records = [
        _entry(1, "ncii", "high", "import:batch-1", 0.5),
        _entry(2, "fraud", "low", "member", 0.75, 2.5),
        _entry(3, "extremism", "medium", "upstream:other.example", 1),
    ]
    cases["entries-record"] = _case(
        "Entry records of a pdq list: '<hash> <entry> <category> <classification> <source> "
        "<first_seen> <expires>', one space between fields; the hash in lowercase hex of the "
        "list's width; the source a vocabulary source kind, alone or 'kind:ref'; times RFC "
        "3339 UTC to the second; '-' when it never expires. No line feed in the record.",
        "entries_record",
        rules=["7.3"],
        input={
            "hash_type": "pdq",
            "records": [{"hash_hex": e.hash.hex(), **e.to_dict()} for e in records],
        },
        expected={"lines": [_line(e) for e in records]},
    )

    kept = _entry(3, "extremism", "medium", "upstream:other.example", 1)
    changed = replace(kept, classification="high")
    withdrawn = _entry(1, "ncii", "high", "import:batch-1", 0.5)
    expired = _entry(2, "fraud", "low", "member", 0.75, 2.5)
    added = [
        _entry(6, "ncii", "low", "member:node-1", 2.75),
        _entry(7, "fraud", "medium", "import"),
    ]
    removes = [
        Removal(withdrawn, "withdrawn"),
        Removal(kept, "changed"),
        Removal(expired, "expired"),
    ]
    body = EntriesBody.build("pdq", removes, [changed, *added])
    created = _at(3)
    body.check_vocabulary(VOCABULARY)
    body.check_times(created)
    data = body.to_bytes()
    cases["entries-body"] = _case(
        "A hashhub.body.v2 body of a pdq entries list, made at 03:00: entry item-3 changed "
        "(its old record removed as 'changed', its new one added, first_seen kept), item-1 "
        "withdrawn, item-2 removed as expired (its expires, 02:30, has come), and two plain "
        "additions. Removal lines '-<record> <reason>' come first, then '+<record>' lines, "
        "each group strictly ascending as bytes (so by hash first), every line ending in LF. "
        "The inputs are given unsorted.",
        "entries_body",
        rules=["7.4"],
        input={
            "hash_type": "pdq",
            "created": _time(created),
            "vocabulary": VOCABULARY.to_dict(),
            "removes": [{"record": _line(r.entry), "reason": r.reason} for r in removes],
            "adds": [_line(e) for e in (*added, changed)],
        },
        expected={"text": _text(data), **body.ref().to_dict()},
    )

    unsorted = [_entry(5), _entry(4, "fraud", "low", "member", 1, 3), _entry(8, "extremism")]
    state = EntryState.from_entries(hash_type("pdq"), unsorted)
    cases["entries-state-digest"] = _case(
        "The state of a pdq entries list holding three records (given unsorted): the records "
        "sorted ascending as bytes, each with its LF, are the snapshot; the digest is its "
        "count of records and SHA-256.",
        "entries_state_digest",
        rules=["8.1"],
        input={"hash_type": "pdq", "records": [_line(e) for e in unsorted]},
        expected={**state.digest().to_dict(), "snapshot_text": _text(state.to_bytes())},
    )
    empty = EntryState(hash_type("pdq"))
    cases["entries-state-digest-empty"] = _case(
        "The state of an empty entries list: count 0, the snapshot is the empty file, and "
        "the SHA-256 is of zero bytes.",
        "entries_state_digest",
        rules=["8.1"],
        input={"hash_type": "pdq", "records": []},
        expected={**empty.digest().to_dict(), "snapshot_text": ""},
    )
    return cases


def _entries_tree_cases(keys: Mapping[str, SigningKey]) -> dict[str, dict[str, Any]]:
    """One entries list published end to end under its own hub, and the snapshot rules."""
    cases: dict[str, dict[str, Any]] = {}
    root = _entries_root()
    root_data, root_sig = root.sign([keys[k] for k in ROOT1_SIGNERS])
    pub = Publisher(root, _online(keys, "delta"))
    head = ListHead.empty_entries(root, ENTRIES)
    files: dict[str, bytes] = {}
    item1 = _entry(1, "ncii", "high", "import:batch-1", 0.5)
    item2 = _entry(2, "fraud", "low", "member:node-1", 0.75, 2.5)
    item3 = _entry(3, "extremism", "medium", "upstream:other.example", 0.75)
    item4 = _entry(4, "ncii", "medium", "import:batch-1", 1, 5)
    item5 = _entry(5, "fraud", "low", "member", 1.5)
    item6 = _entry(6, "extremism", "high", "import:batch-2", 3.5)
    item3_high = replace(item3, classification="high")
    history: list[tuple[float, list[Removal], list[Entry]]] = [
        (1, [], [item1, item2, item3, item4]),
        (2, [Removal(item3, "changed")], [item3_high, item5]),
        (3, [Removal(item1, "withdrawn"), Removal(item2, "expired")], []),
        (4, [], [item6]),
    ]
    for hours, removes, adds in history:
        p = pub.publish_entries(head, removes=removes, adds=adds, now=_at(hours))
        head = p.head
        files.update(p.files)
    headers = []
    bodies: dict[str, str] = {}
    for v in range(1, head.version + 1):
        path = header_path(ENTRIES, v)
        headers.append({"header_text": _text(files[path]), "sig_text": _text(files[path + ".sig"])})
        ref = DeltaHeader.from_bytes(files[path]).body
        bodies[str(v)] = _text(files[body_path(ENTRIES, ref.sha256)])
    snapshots = {
        str(v): _text(files[snapshot_path(ENTRIES, v)])
        for v in range(1, head.version + 1)
        if snapshot_path(ENTRIES, v) in files
    }
    assert sorted(snapshots) == ["2", "4"]
    inp: dict[str, Any] = {
        "now": _time(VERIFY_AT),
        "root_text": _text(root_data),
        "root_sig_text": _text(root_sig),
        "list": ENTRIES,
        "checkpoint_text": _text(files[checkpoint_path(ENTRIES)]),
        "headers": headers,
        "bodies": bodies,
        "snapshots": snapshots,
        "base": None,
    }
    result = _entries_run(inp)
    assert result is not None
    state, trust = result
    assert state == head.state
    for due in snapshots:  # each due snapshot bootstraps to the same state
        again = _entries_run({**inp, "base": int(due)})
        assert again is not None
        assert again[0] == state
    cases["entries-sync"] = _case(
        f"Hub {ENTRIES_HUB}, root v1 (signed by root-a and root-b) declares {ENTRIES}, a pdq "
        "list of format 'entries' (snapshot_every 2), and a vocabulary. Under the delta key: "
        "v1 at 01:00 adds item-1..item-4; v2 at 02:00 changes item-3's classification "
        "(medium → high) and adds item-5 (snapshot due); v3 at 03:00 removes item-1 "
        "('withdrawn') and item-2 ('expired': its expires, 02:30, has come); v4 at 04:00 "
        "adds item-6 (snapshot due). Pin the root in the case, verify the checkpoint and "
        "headers 1..4, add every body (checked against the root's vocabulary and each "
        "header's created) and apply them from the empty state, checking each result_state. "
        "item-4 is still held but expired at now (its expires, 05:00, has come): a node no "
        "longer matches it. Each snapshot, taken as the base instead, reaches the same state.",
        "entries_sync",
        rules=[
            "5.3",
            "5.5",
            "7.3",
            "7.4",
            "8.1",
            "13.5.1",
            "13.5.2",
            "13.5.3",
            "13.6.3",
            "13.6.5",
            "13.6.6",
            "13.7.2",
            "13.7.3",
        ],
        input=inp,
        expected={
            "version": trust.version,
            "state": state.digest().to_dict(),
            "records": [line.decode("ascii") for line in state.lines()],
            "expired_at_now": sorted(e.entry_id for e in state.entries() if e.expired(VERIFY_AT)),
        },
    )

    # -- snapshots that break a rule, under headers that sign them ---------------------
    def tree_case(
        name: str,
        description: str,
        bodies: Sequence[EntriesBody],
        result: Mapping[str, Any] | None,
        error: type[ProtocolError],
        fails_at: str,
        rules: Sequence[str],
        snapshot: bytes | None = None,
    ) -> None:
        """Versions 1.. of ``bodies`` at 01:00, 02:00, …, under headers the delta key signs,
        each naming ``result`` (or the state its body really leads to); ``snapshot``, if
        given, is the last version's snapshot and the base."""
        compact, prev = CompactRange(), GENESIS_PREV
        state = EntryState(hash_type("pdq"))
        base = state.digest().to_dict()
        given_headers, given_bodies = [], {}
        for version, body in enumerate(bodies, start=1):
            state = state.apply(body)
            signs = state.digest().to_dict() if result is None else dict(result)
            value = {
                "_type": "hashhub.delta.v1",
                "list": ENTRIES,
                "version": version,
                "prev": prev,
                "root_version": 1,
                "created": _time(_at(version)),
                "body": body.ref().to_dict(),
                "base_state": base,
                "result_state": signs,
            }
            data = canonicalize(value)
            sig = sign_bytes(data, [keys["delta"]]).to_bytes()
            given_headers.append({"header_text": _text(data), "sig_text": _text(sig)})
            given_bodies[str(version)] = _text(body.to_bytes())
            compact.append(leaf_hash(data))
            prev, base = leaf_hash(data).hex(), signs
        size = len(bodies)
        case_inp = {
            **inp,
            "checkpoint_text": _text(pub.checkpoint(ENTRIES, size, compact.root(), _at(size))),
            "headers": given_headers,
            "bodies": given_bodies,
            "snapshots": {} if snapshot is None else {str(size): _text(snapshot)},
            "base": None if snapshot is None else size,
        }
        stage = ENTRIES_STAGES.index(fails_at)
        _entries_run(case_inp, ENTRIES_STAGES[stage - 1])  # every stage before it passes
        cases[name] = _case(
            description,
            "entries_sync",
            rules=rules,
            input=case_inp,
            fails_at=fails_at,
            error=_expect(error, partial(_entries_run, case_inp, fails_at)),
        )

    def snapshot_case(
        name: str,
        description: str,
        adds: Sequence[Entry],
        snapshot: bytes,
        result: Mapping[str, Any],
        error: type[ProtocolError],
        rules: Sequence[str],
    ) -> None:
        """v1 adds ``adds``, v2 changes nothing; both headers sign ``result``; the snapshot
        of v2 is ``snapshot``."""
        tree_case(
            name,
            description,
            [EntriesBody.build("pdq", adds=adds), EntriesBody.build("pdq")],
            result,
            error,
            "snapshot",
            ["8.1", *rules],
            snapshot,
        )

    tree_case(
        "neg-entries-sync-term-undeclared",
        f"Header 1 of {ENTRIES}, signed by the delta key and naming root v1, names a body "
        "that adds a record of category 'spam', which root v1's vocabulary does not "
        "declare: the body matches its header (length, SHA-256, counts), the vocabulary "
        "of the root the header names refuses it.",
        [EntriesBody.build("pdq", adds=[_entry(31, "spam")])],
        None,
        VocabularyError,
        "bodies",
        ["5.5", "7.3", "13.6.5"],
    )
    tree_case(
        "neg-entries-sync-first-seen-after-created",
        f"Header 1 of {ENTRIES} (created 01:00) names a body adding a record first seen at "
        "01:30: a hub cannot have listed an item after the version that lists it.",
        [EntriesBody.build("pdq", adds=[_entry(31, first_seen=1.5)])],
        None,
        BodyRuleError,
        "bodies",
        ["7.4", "13.6.6"],
    )

    def signed(snapshot: bytes, count: int) -> dict[str, Any]:
        return {"count": count, "sha256": hashlib.sha256(snapshot).hexdigest()}

    a, b = sorted([_entry(11), _entry(12, "fraud", "low")], key=lambda e: e.line)
    good = a.line + b"\n" + b.line + b"\n"
    swapped = b.line + b"\n" + a.line + b"\n"
    snapshot_case(
        "neg-entries-snapshot-unordered",
        "Headers 1 and 2 sign the digest of two records in descending order, and snapshot 2 "
        "holds exactly those bytes: count and SHA-256 match, the records are not ascending.",
        [a, b],
        swapped,
        signed(swapped, 2),
        MalformedError,
        ["13.5.3"],
    )
    twin_hash = replace(b, hash=a.hash)
    same_hash = b"".join(line + b"\n" for line in sorted([a.line, twin_hash.line]))
    snapshot_case(
        "neg-entries-snapshot-hash-twice",
        "Snapshot 2 (signed by its header, count 2) holds two records of one hash with "
        "different entry ids, ascending: a list holds each hash at most once.",
        [a, b],
        same_hash,
        signed(same_hash, 2),
        MalformedError,
        ["13.5.3"],
    )
    twin_id = replace(b, entry_id=a.entry_id)
    first, second = sorted([a.line, twin_id.line])
    same_id = first + b"\n" + second + b"\n"
    snapshot_case(
        "neg-entries-snapshot-entry-twice",
        "Snapshot 2 (signed by its header, count 2) holds two records of one entry id with "
        "different hashes, ascending: a list holds each entry id at most once.",
        [a, b],
        same_id,
        signed(same_id, 2),
        MalformedError,
        ["13.5.3"],
    )
    one = a.line + b"\n"
    snapshot_case(
        "neg-entries-snapshot-fewer-records",
        "Header 2 signs count 2 and the SHA-256 of snapshot 2, which holds one record: the "
        "bytes match, the number of records does not.",
        [a, b],
        one,
        signed(one, 2),
        ConsistencyError,
        ["13.5.3"],
    )
    many = sorted(
        (
            _entry(20 + n, "extremism", "high", f"upstream:{'x' * 100}", entry_id=f"{n}" * 64)
            for n in (1, 2, 3)
        ),
        key=lambda e: e.line,
    )
    longer = b"".join(e.line + b"\n" for e in many)
    assert len(longer) > record_limit(hash_type("pdq")) + 1
    snapshot_case(
        "neg-entries-snapshot-too-long",
        f"Header 2 signs count 1 and the SHA-256 of snapshot 2, which is {len(longer)} "
        f"bytes: more than one record can be ({record_limit(hash_type('pdq')) + 1} bytes "
        "with its LF), refused before it is read.",
        [a],
        longer,
        signed(longer, 1),
        LimitError,
        ["13.5.1", "11"],
    )
    tampered = b"".join(
        replace(e, classification="high").line + b"\n"
        if e.entry_id == "item-12"
        else e.line + b"\n"
        for e in (a, b)
    )
    snapshot_case(
        "neg-entries-snapshot-sha256",
        "Header 2 signs the digest of the state v1 made (item-11, item-12); snapshot 2 holds "
        "the same records with item-12's classification changed: its SHA-256 is not the "
        "result_state.",
        [a, b],
        tampered,
        signed(good, 2),
        ConsistencyError,
        ["13.5.2"],
    )
    return cases


def _entries_rule_cases() -> dict[str, dict[str, Any]]:
    """Bodies and applies that break one rule each; every case also gives the valid body
    it differs from in that one thing."""
    cases: dict[str, dict[str, Any]] = {}
    created = _at(1)
    base_inp: dict[str, Any] = {
        "hash_type": "pdq",
        "vocabulary": VOCABULARY.to_dict(),
        "created": _time(created),
    }

    def body_case(
        rule: str,
        description: str,
        valid: bytes,
        bad: bytes,
        rules: Sequence[str] = ("7.4", "13.6.3"),
        error: type[ProtocolError] = BodyRuleError,
    ) -> None:
        inp = {**base_inp, "body_text": _text(bad), "valid_body_text": _text(valid)}
        _entries_body_checks(inp, inp["valid_body_text"], inp["created"])
        cases[f"neg-entries-{rule}"] = _case(
            description,
            "entries_body_rules",
            rules=rules,
            input=inp,
            error=_expect(
                error, partial(_entries_body_checks, inp, inp["body_text"], inp["created"])
            ),
        )

    def adds(*records: str) -> bytes:
        return _entries_text("pdq", [], records)

    rec = _line(_entry(1, "ncii", "high", "import:batch-1", 0.5, 3))
    h, eid, cat, cls, src, first, exp = rec.split(" ")

    def record(**fields: str) -> str:
        values = {"h": h, "eid": eid, "cat": cat, "cls": cls, "src": src, "first": first}
        values |= {"exp": exp} | fields
        return " ".join(v for v in values.values() if v != "<none>")

    valid = adds(rec)
    grammar = {
        "six-fields": ("the record has 6 fields (no expires)", record(exp="<none>")),
        "eight-fields": ("the record has 8 fields (a field after expires)", f"{rec} -"),
        "uppercase-hex": ("the hash is in uppercase hex", record(h=h.upper())),
        "short-hash": ("the hash has 62 hex digits, not 64", record(h=h[:62])),
        "entry-id-upper": ("the entry id has an uppercase letter", record(eid="Item-1")),
        "entry-id-65": ("the entry id is 65 characters long", record(eid="i" * 65)),
        "entry-id-empty": ("the entry id is empty (two spaces)", record(eid="")),
        "term-space": ("the category holds a space", record(cat="ncii x")),
        "term-upper": ("the category is in upper case", record(cat="NCII")),
        "source-without-ref": ("the source is 'import:' without its ref", record(src="import:")),
        "bad-time": (
            "first_seen has a UTC offset instead of Z",
            record(first=first.replace("Z", "+00:00")),
        ),
        "expires-not-after-first-seen": (
            "expires equals first_seen",
            record(exp=first),
        ),
    }
    for rule, (what, bad) in grammar.items():
        body_case(
            rule,
            f"A body whose one addition breaks the record grammar: {what}. A record's "
            "fields have one spelling each; inside a body the error is the body's.",
            valid,
            adds(bad),
            ["7.3", "13.6.3"],
        )
    for rule, what, bad in (
        ("category-undeclared", "category 'spam'", record(cat="spam")),
        ("classification-undeclared", "classification 'critical'", record(cls="critical")),
        ("source-undeclared", "source kind 'partner' (with a ref)", record(src="partner:p-1")),
    ):
        body_case(
            rule,
            f"A body adding a record whose {what} is well formed but not a term of the "
            "vocabulary of the root that signed the header.",
            valid,
            adds(bad),
            ["5.5", "7.3", "13.6.5"],
            VocabularyError,
        )

    def lines(*entries: Entry) -> list[str]:
        return sorted((_line(e) for e in entries), key=lambda s: s.encode())

    x, y = lines(_entry(1, "ncii", "high", "import:batch-1", 0.5), _entry(2, "fraud", "low"))
    body_case(
        "removals-unordered",
        "Two removals (both 'withdrawn') in descending order.",
        _entries_text("pdq", [f"{x} withdrawn", f"{y} withdrawn"], []),
        _entries_text("pdq", [f"{y} withdrawn", f"{x} withdrawn"], []),
    )
    body_case(
        "additions-unordered",
        "Two additions in descending order.",
        adds(x, y),
        adds(y, x),
    )
    old = _entry(1, "ncii", "medium", "import:batch-1", 0.5)
    new = replace(old, classification="high")
    body_case(
        "removed-and-added",
        "The same record removed as 'changed' and added (the valid body adds the changed record).",
        _entries_text("pdq", [f"{_line(old)} changed"], [_line(new)]),
        _entries_text("pdq", [f"{_line(old)} changed"], [_line(old)]),
    )
    two = _entry(2, "fraud", "low")
    same_id = replace(two, entry_id="item-1")
    body_case(
        "entry-added-twice",
        "Two additions of one entry id (item-1) with different hashes.",
        adds(*lines(old, two)),
        adds(*lines(old, same_id)),
    )
    same_hash = replace(two, hash=old.hash)
    body_case(
        "hash-added-twice",
        "Two additions of one hash with different entry ids.",
        adds(*lines(old, two)),
        adds(*lines(old, same_hash)),
    )
    body_case(
        "changed-without-add",
        "A removal of item-1 as 'changed' while the body adds only item-2.",
        _entries_text("pdq", [f"{_line(old)} withdrawn"], [_line(two)]),
        _entries_text("pdq", [f"{_line(old)} changed"], [_line(two)]),
    )
    body_case(
        "readded-not-changed",
        "item-1 removed as 'withdrawn' while the body adds a new record of item-1.",
        _entries_text("pdq", [f"{_line(old)} changed"], [_line(new)]),
        _entries_text("pdq", [f"{_line(old)} withdrawn"], [_line(new)]),
    )
    moved = replace(new, first_seen=_at(0.75))
    body_case(
        "changed-first-seen",
        "item-1 changed (classification medium → high) with its first_seen moved: a change "
        "keeps first_seen.",
        _entries_text("pdq", [f"{_line(old)} changed"], [_line(new)]),
        _entries_text("pdq", [f"{_line(old)} changed"], [_line(moved)]),
    )
    body_case(
        "unknown-reason",
        "A removal whose reason, 'revoked', is not one of the six.",
        _entries_text("pdq", [f"{_line(old)} withdrawn"], []),
        _entries_text("pdq", [f"{_line(old)} revoked"], []),
    )
    body_case(
        "removal-after-addition",
        "A removal line after an addition line.",
        _entries_text("pdq", [f"{_line(old)} withdrawn"], [_line(two)]),
        f"hashhub.body.v2 pdq\n+{_line(two)}\n-{_line(old)} withdrawn\n".encode(),
    )
    body_case("missing-final-lf", "The last line does not end in LF.", valid, valid[:-1])
    body_case(
        "format-line-v1",
        "The format line is 'hashhub.body.v1 pdq', the format of a hashes list.",
        valid,
        valid.replace(b"hashhub.body.v2", b"hashhub.body.v1", 1),
    )
    body_case(
        "first-seen-after-created",
        "The header's created is 01:00; the added record was first seen at 01:30 (valid: 00:30).",
        adds(_line(_entry(1, first_seen=0.5))),
        adds(_line(_entry(1, first_seen=1.5))),
        ["7.4", "13.6.6"],
    )
    body_case(
        "added-expired",
        "The header's created is 01:00; the added record expires at 01:00, so it has "
        "expired when added (valid: 01:30).",
        adds(_line(_entry(1, expires=1.5))),
        adds(_line(_entry(1, expires=1))),
        ["7.4", "13.6.6"],
    )
    body_case(
        "expired-too-early",
        "The header's created is 01:00; the record removed as 'expired' expires at 01:30 "
        "(valid: 00:45).",
        _entries_text("pdq", [f"{_line(_entry(1, expires=0.75))} expired"], []),
        _entries_text("pdq", [f"{_line(_entry(1, expires=1.5))} expired"], []),
        ["7.4", "13.6.6"],
    )

    # -- apply: a body valid alone, against a state it does not fit -------------------------
    held = [_entry(1, "ncii", "high", "import:batch-1", 0.5), _entry(2, "fraud", "low")]
    state_inp = {**base_inp, "state_records": lines(*held)}

    def apply_case(rule: str, description: str, valid: bytes, bad: bytes) -> None:
        inp = {**state_inp, "body_text": _text(bad), "valid_body_text": _text(valid)}
        _entries_apply(inp, inp["valid_body_text"])
        _entries_body_checks(inp, inp["body_text"], inp["created"])  # the body alone is valid
        cases[f"neg-entries-{rule}"] = _case(
            description,
            "entries_apply",
            rules=["7.4", "13.7.2"],
            input=inp,
            error=_expect(StateMismatchError, partial(_entries_apply, inp, inp["body_text"])),
        )

    other_meta = replace(held[0], classification="medium")
    apply_case(
        "remove-absent",
        "The state holds item-1 (classification high) and item-2; the body withdraws "
        "item-1's record with classification medium: same entry and hash, not a record of "
        "the state (removals are by value).",
        _entries_text("pdq", [f"{_line(held[0])} withdrawn"], []),
        _entries_text("pdq", [f"{_line(other_meta)} withdrawn"], []),
    )
    third = _entry(3, "extremism", "medium")
    apply_case(
        "add-hash-held",
        "The body adds item-3 with the hash item-1 holds in the state.",
        adds(_line(third)),
        adds(_line(replace(third, hash=held[0].hash))),
    )
    apply_case(
        "add-entry-held",
        "The body adds a record of item-1, which the state holds, with a new hash.",
        adds(_line(third)),
        adds(_line(replace(third, entry_id="item-1"))),
    )
    return cases


def _entries_root_cases(keys: Mapping[str, SigningKey], repo: _Repo) -> dict[str, dict[str, Any]]:
    """The root's ``format`` and ``vocabulary``: refused when parsed, and the successor
    rules that keep every accepted record valid."""
    cases: dict[str, dict[str, Any]] = {}
    root = _entries_root()
    valid = parse_canonical(root.to_bytes())
    assert isinstance(valid, dict)

    changed = _edited

    def parse_case(
        name: str, description: str, good: bytes, bad: bytes, error: type[ProtocolError]
    ) -> None:
        assert Root.from_bytes(good).to_bytes() == good
        cases[name] = _case(
            f"{description} (input.valid_text: the valid root it differs from.)",
            "parse_document",
            rules=["5.3"] if name.startswith("neg-root-format-") else ["5.5"],
            input={"kind": "root", "text": _text(bad), "valid_text": _text(good)},
            error=_expect(error, partial(Root.from_bytes, bad)),
        )

    good = root.to_bytes()

    def set_format(fmt: str) -> Callable[[dict[str, Any]], None]:
        return lambda v: v["lists"][ENTRIES].update(format=fmt)

    parse_case(
        "neg-root-format-unknown",
        f"Root v1 of {ENTRIES_HUB} with {ENTRIES}'s format 'records': a list's format is "
        "'hashes' or 'entries'.",
        good,
        changed(valid, set_format("records")),
        MalformedError,
    )
    md5_root = parse_canonical(repo.files["root/2.json"])
    assert isinstance(md5_root, dict)
    parse_case(
        "neg-root-format-hashes-written",
        'Root v2 of repo/ with \'"format": "hashes"\' written for demo-md5: the member is '
        "written only for an entries list, so a root of hashes lists keeps its bytes.",
        repo.files["root/2.json"],
        changed(md5_root, lambda v: v["lists"][MD5].update(format="hashes")),
        MalformedError,
    )

    def drop_vocabulary(v: dict[str, Any]) -> None:
        del v["vocabulary"]

    parse_case(
        "neg-root-vocabulary-missing",
        f"Root v1 of {ENTRIES_HUB} without its vocabulary: an entries list needs one.",
        good,
        changed(valid, drop_vocabulary),
        MalformedError,
    )
    for rule, what, edit in (
        (
            "empty-group",
            "vocabulary.sources is empty",
            lambda v: v["vocabulary"].update(sources=[]),
        ),
        (
            "repeated-term",
            "vocabulary.categories names 'ncii' twice",
            lambda v: v["vocabulary"]["categories"].append("ncii"),
        ),
        (
            "ill-formed-term",
            "vocabulary.classifications holds 'Very High' (upper case and a space)",
            lambda v: v["vocabulary"]["classifications"].append("Very High"),
        ),
    ):
        parse_case(
            f"neg-root-vocabulary-{rule}",
            f"Root v1 of {ENTRIES_HUB} whose {what}.",
            good,
            changed(valid, edit),
            MalformedError,
        )

    # -- successors ----------------------------------------------------------------------
    signers = [keys[k] for k in ROOT1_SIGNERS]

    def successor_inp(next_root: Root, first: Root = root) -> dict[str, Any]:
        data1, sig1 = first.sign(signers)
        data2, sig2 = next_root.sign(signers)
        return {
            "now": _time(VERIFY_AT),
            "root_text": _text(data1),
            "root_sig_text": _text(sig1),
            "next_root_text": _text(data2),
            "next_sig_text": _text(sig2),
        }

    def update(inp: Mapping[str, Any]) -> Root:
        hub = TrustedHub(
            inp["root_text"].encode(),
            inp["root_sig_text"].encode(),
            now=datetime.fromisoformat(inp["now"]),
        )
        hub.update_root(inp["next_root_text"].encode(), inp["next_sig_text"].encode())
        return hub.root

    grown = Vocabulary(
        categories=(*VOCABULARY.categories, "spam"),
        classifications=("low", "medium", "high", "critical"),
        sources=VOCABULARY.sources,
    )
    inp = successor_inp(_entries_root(2, vocabulary=grown))
    accepted = update(inp)
    assert accepted.vocabulary is not None
    cases["entries-root-successor"] = _case(
        f"Root v2 of {ENTRIES_HUB} (signed by root-a and root-b, both roles) adds the "
        "category 'spam' and the classification 'critical' at the severe end of the scale: "
        "every term kept, the scale's order kept. It is accepted.",
        "entries_update_root",
        rules=["5.5", "13.1.2.7", "13.1.2.9"],
        input=inp,
        expected={"root_version": accepted.version, "vocabulary": accepted.vocabulary.to_dict()},
    )

    def successor_case(
        name: str,
        description: str,
        next_root: Root,
        error: type[ProtocolError],
        first: Root = root,
    ) -> None:
        case_inp = successor_inp(next_root, first)
        cases[name] = _case(
            description,
            "entries_update_root",
            rules=["5.3", "13.1.2.7"] if error is ConsistencyError else ["5.5", "13.1.2.9"],
            input=case_inp,
            error=_expect(error, partial(update, case_inp)),
        )

    successor_case(
        "neg-root-vocabulary-drops-term",
        f"Root v2 of {ENTRIES_HUB}, validly signed, whose vocabulary drops the category "
        "'fraud': records that use it would no longer verify.",
        _entries_root(2, vocabulary=replace(VOCABULARY, categories=("extremism", "ncii"))),
        RollbackError,
    )
    successor_case(
        "neg-root-vocabulary-reorders-scale",
        f"Root v2 of {ENTRIES_HUB}, validly signed, whose classification scale is "
        "low, high, medium: every term kept, their order not.",
        _entries_root(2, vocabulary=replace(VOCABULARY, classifications=("low", "high", "medium"))),
        RollbackError,
    )
    hashes_only = {
        MD5: ListSpec(MD5, "md5", 0, label="demo", snapshot_every=2),
    }
    successor_case(
        "neg-root-vocabulary-dropped",
        f"Root v1 of {ENTRIES_HUB} declares a vocabulary and one hashes list (a vocabulary "
        "needs no entries list); root v2, validly signed, is the same without the "
        "vocabulary: a vocabulary, once declared, is kept.",
        _entries_root(2, vocabulary=None, lists=hashes_only),
        RollbackError,
        first=_entries_root(1, lists=hashes_only),
    )
    spec = _entries_root().lists[ENTRIES]
    successor_case(
        "neg-root-format-changed",
        f"Root v2 of {ENTRIES_HUB}, validly signed, declares {ENTRIES} as a hashes list "
        "(the vocabulary kept): a list's format never changes.",
        _entries_root(2, lists={ENTRIES: replace(spec, format="hashes")}),
        ConsistencyError,
    )
    return cases


def _entries_cases(repo: _Repo) -> dict[str, dict[str, Any]]:
    """Every case of lists of the ``entries`` format (``protocol.entries``)."""
    return {
        **_entries_value_cases(),
        **_entries_tree_cases(repo.keys),
        **_entries_rule_cases(),
        **_entries_root_cases(repo.keys, repo),
    }


# --------------------------------------------------------------------------------------
# Opinion summaries (§10.7)
# --------------------------------------------------------------------------------------

OPINION_NODES = {"node-a": "plat-a", "node-b": "plat-b", "node-c": "plat-b", "node-d": "plat-d"}
"""The nodes acking ``entries-pdq`` and their platforms: node-b and node-c are one."""


def _opinion_acks(root: Root, head: ListHead[EntryState]) -> list[tuple[str, bytes, bytes]]:
    """Signed acks of v1 carrying opinions, as (node, ack bytes, sidecar bytes)."""
    plan: list[tuple[str, int, float, dict[str, Opinion]]] = [
        (
            "node-a",
            1,
            1.25,
            {"item-1": Opinion("confirmed", "blocked"), "item-2": Opinion("disputed", "benign")},
        ),
        (
            "node-b",
            1,
            1.3,
            {
                "item-2": Opinion("disputed", "not_the_content"),
                "item-3": Opinion("confirmed", "actioned"),
            },
        ),
        ("node-c", 1, 1.4, {"item-3": Opinion("none")}),
        (
            "node-d",
            1,
            1.45,
            {"item-2": Opinion("disputed", "other"), "item-4": Opinion("disputed", "benign")},
        ),
        ("node-a", 2, 1.6, {"item-1": Opinion("disputed", "other")}),
    ]
    applied = AppliedVersion(head.version, head.compact.root(), head.state.digest())
    acks = []
    for node, seq, hours, opinions in plan:
        data, sig = sign_ack(
            key=SigningKey.from_seed(key_seed(node)),
            node=node,
            list_id=ENTRIES,
            seq=seq,
            sent=_at(hours),
            origin=root.origin(ENTRIES),
            applied=applied,
            counts=Counts(checked=10, matched=2, actioned=0, blocked=1, false_positive=1),
            opinions=opinions,
        )
        acks.append((node, data, sig))
    return acks


def _summary_of(
    acks: Sequence[tuple[str, bytes, bytes]],
    cut: Mapping[str, int],
    disputes: Mapping[str, Dispute],
    threshold: int,
) -> Callable[[int, datetime, EntryState], OpinionSummary]:
    """The fold of §10.7 over ``acks`` up to ``cut``, as ``publish_entries`` takes it."""
    nodes = {n: NodeCut(OPINION_NODES[n], seq) for n, seq in cut.items()}

    def make(version: int, created: datetime, state: EntryState) -> OpinionSummary:
        positions = fold_positions([Ack.from_bytes(data) for _, data, _ in acks], nodes)
        held = state.entry_ids()
        entries = {}
        for entry_id, said in positions.items():
            voices = voices_of(said)
            if entry_id in held and (voices.confirmed or voices.disputed):
                entries[entry_id] = replace(voices, dispute=disputes.get(entry_id))
        return OpinionSummary(ENTRIES, version, created, threshold, nodes, entries)

    return make


def _opinion_tree(keys: Mapping[str, SigningKey]) -> dict[str, Any]:
    """An entries list of three versions, v2 and v3 with summaries, and the acks."""
    root = _entries_root(policy=Policy(dispute_threshold=2))
    root_data, root_sig = root.sign([keys[k] for k in ROOT1_SIGNERS])
    pub = Publisher(root, _online(keys, "delta"))
    head = ListHead.empty_entries(root, ENTRIES)
    files: dict[str, bytes] = {}
    items = [_entry(n) for n in (1, 2, 3, 4)]
    p1 = pub.publish_entries(head, adds=items, now=_at(1))
    files.update(p1.files)
    acks = _opinion_acks(root, p1.head)
    cut = {"node-a": 1, "node-b": 1, "node-c": 1, "node-d": 1}
    opened = Dispute("open", _at(1.5))
    p2 = pub.publish_entries(
        p1.head,
        adds=[_entry(5)],
        now=_at(2),
        opinions=_summary_of(acks, cut, {"item-2": opened}, 2),
    )
    files.update(p2.files)
    dismissed = Dispute("dismissed", _at(1.5), _at(2.5), "operator")
    p3 = pub.publish_entries(
        p2.head,
        removes=[Removal(_entry(4), "retracted")],
        now=_at(3),
        opinions=_summary_of(acks, {**cut, "node-a": 2}, {"item-2": dismissed}, 2),
    )
    files.update(p3.files)
    return {
        "root": root,
        "root_data": root_data,
        "root_sig": root_sig,
        "files": files,
        "heads": [p1.head, p2.head, p3.head],
        "headers": [p1.header, p2.header, p3.header],
        "acks": acks,
    }


def _summary_bytes(tree: Mapping[str, Any], version: int) -> bytes:
    header = tree["headers"][version - 1]
    ref = header_opinions(header)
    assert ref is not None
    return bytes(tree["files"][opinions_path(ENTRIES, ref.sha256)])


def _summary_input(
    tree: Mapping[str, Any], version: int, header: bytes, summary: bytes
) -> dict[str, Any]:
    return {
        "root_text": _text(tree["root_data"]),
        "header_text": _text(header),
        "state_text": _text(tree["heads"][version - 1].state.to_bytes()),
        "summary_text": _text(summary),
    }


def _summary_check(inp: Mapping[str, Any]) -> OpinionSummary:
    """What a verifier does with a summary (§10.7): given the (already verified) header,
    the root it names and the state at its version."""
    root = Root.from_bytes(inp["root_text"].encode())
    header = DeltaHeader.from_bytes(inp["header_text"].encode())
    state = EntryState.from_snapshot(hash_type("pdq"), inp["state_text"].encode(), root.vocabulary)
    return verify_summary(header, inp["summary_text"].encode(), root, state)


def _opinion_cases(keys: Mapping[str, SigningKey]) -> dict[str, dict[str, Any]]:
    """A list whose versions carry summaries, the acks they fold, and one negative case
    per rule of §10.7."""
    cases: dict[str, dict[str, Any]] = {}
    tree = _opinion_tree(keys)
    acks = [
        {
            "node": node,
            "ack_text": _text(data),
            "sig_text": _text(sig),
            "node_public_hex": SigningKey.from_seed(key_seed(node)).public.raw.hex(),
        }
        for node, data, sig in tree["acks"]
    ]
    for version in (2, 3):
        header = tree["headers"][version - 1]
        summary_data = _summary_bytes(tree, version)
        inp = _summary_input(tree, version, header.to_bytes(), summary_data)
        summary = _summary_check(inp)
        recomputed = _summary_of(
            tree["acks"],
            {n: c.seq for n, c in summary.nodes.items()},
            {e: o.dispute for e, o in summary.entries.items() if o.dispute is not None},
            summary.threshold,
        )(version, header.created, tree["heads"][version - 1].state)
        assert recomputed.to_bytes() == summary_data
        cases[f"opinions-summary-v{version}"] = _case(
            (
                "Version 2 of entries-pdq (threshold 2) and its opinion summary, folded from "
                "five signed acks of v1 over the cut node-a..node-d at seq 1 (node-b and node-c "
                "are one platform, plat-b). item-1: plat-a confirms (blocked). item-2: three "
                "platforms dispute (benign, not_the_content, other), so it has an open "
                "dispute. item-3: plat-b confirmed through node-b, then took it back through "
                "node-c (none, sent later): no voice, not in the summary. item-4: one "
                "dispute, below the threshold. node-a's ack seq 2 is past the cut."
                if version == 2
                else "Version 3 (removes item-4, 'retracted') and its summary: the cut now "
                "holds node-a's seq 2, in which plat-a disputes item-1 (other) — newer than its "
                "confirmation —; item-2's dispute was dismissed by 'operator' at 02:30; item-4 "
                "is no longer held, so not in the summary."
            ),
            "opinions_summary",
            rules=["10.7"],
            input={**inp, "hub_name": ENTRIES_HUB, "acks": acks},
            expected={
                "summary_sha256": hashlib.sha256(summary_data).hexdigest(),
                "entries": sorted(summary.entries),
                "disputed": sorted(e for e in summary.entries if summary.disputed(e)),
                "dismissed": sorted(
                    e
                    for e, o in summary.entries.items()
                    if o.dispute is not None and o.dispute.state == "dismissed"
                ),
                "counts": {
                    e: {"confirmed": len(o.confirmed), "disputed": len(o.disputed)}
                    for e, o in sorted(summary.entries.items())
                },
            },
        )

    header2 = tree["headers"][1]
    good = parse_canonical(_summary_bytes(tree, 2))
    assert isinstance(good, dict)

    def rebound(data: bytes, ref: Mapping[str, Any] | None = None) -> bytes:
        """Header v2 naming ``data`` (or the member ``ref``), so only the summary is wrong
        (a verifier checks the header's signature first, §13.4; here it is given)."""
        return _rebound(header2, data, ref, field="opinions")

    def neg(
        name: str,
        description: str,
        rule: str,
        error: type[ProtocolError],
        summary: bytes,
        header: bytes | None = None,
    ) -> None:
        inp = _summary_input(tree, 2, header or rebound(summary), summary)
        cases[f"neg-opinions-{name}"] = _case(
            description,
            "opinions_summary",
            rules=[rule],
            input=inp,
            error=_expect(error, lambda: _summary_check(inp)),
        )

    def edited(change: Callable[[dict[str, Any]], None]) -> bytes:
        return _edited(good, change)

    data2 = _summary_bytes(tree, 2)
    neg(
        "ref-malformed",
        "Header v2's opinions member with a length of 0 (and otherwise right).",
        "10.7.1",
        MalformedError,
        data2,
        rebound(data2, {"length": 0, "sha256": hashlib.sha256(data2).hexdigest()}),
    )
    neg(
        "ref-over-cap",
        "Header v2 naming a summary of 64 MiB + 1 bytes, above the root's max_body_bytes.",
        "10.7.1",
        LimitError,
        data2,
        rebound(data2, {"length": 64 * 1024 * 1024 + 1, "sha256": "00" * 32}),
    )
    neg(
        "short",
        "The summary without its last byte, under the header naming the whole one.",
        "10.7.2",
        LimitError,
        data2[:-1],
        header2.to_bytes(),
    )
    neg(
        "sha256",
        "A summary of the same length as the one header v2 names, one digit changed.",
        "10.7.2",
        ConsistencyError,
        data2.replace(b'"seq":1', b'"seq":2', 1),
        header2.to_bytes(),
    )
    neg(
        "wrong-type",
        "A summary whose _type is hashhub.opinions.v2.",
        "10.7.3",
        WrongTypeError,
        edited(_put("_type", "hashhub.opinions.v2")),
    )
    neg(
        "voice-member",
        "A voice with a member §10.7 does not name (weight).",
        "10.7.3",
        MalformedError,
        edited(_put("entries/item-1/confirmed/plat-a/weight", 2)),
    )
    neg(
        "voice-reason",
        "A confirming voice with a dispute's reason (benign).",
        "10.7.3",
        MalformedError,
        edited(_put("entries/item-1/confirmed/plat-a/reason", "benign")),
    )
    neg(
        "dismissed-without-by",
        "A dismissed dispute that does not say by whom.",
        "10.7.3",
        MalformedError,
        edited(
            _put(
                "entries/item-2/dispute",
                {"opened": _time(_at(1.5)), "state": "dismissed", "dismissed": _time(_at(1.75))},
            )
        ),
    )
    neg(
        "version",
        "A summary saying version 3 under header v2.",
        "10.7.4",
        ConsistencyError,
        edited(_put("version", 3)),
    )
    neg(
        "threshold",
        "A summary with threshold 3 under a root whose dispute_threshold is 2 (item-2's "
        "dispute stays consistent: three platforms dispute it).",
        "10.7.4",
        ConsistencyError,
        edited(_put("threshold", 3)),
    )
    neg(
        "entry-not-held",
        "A summary speaking of item-9, which the list does not hold at v2.",
        "10.7.5",
        ConsistencyError,
        edited(
            _put(
                "entries/item-9",
                {
                    "confirmed": {"plat-a": {"node": "node-a", "reason": "blocked", "seq": 1}},
                    "disputed": {},
                },
            )
        ),
    )
    neg(
        "entry-without-voice",
        "item-1 with no confirming and no disputing platform.",
        "10.7.5",
        ConsistencyError,
        edited(_put("entries/item-1/confirmed", {})),
    )
    neg(
        "platform-both",
        "plat-a both confirming and disputing item-1.",
        "10.7.6",
        ConsistencyError,
        edited(
            _put(
                "entries/item-1/disputed",
                {"plat-a": {"node": "node-a", "reason": "other", "seq": 1}},
            )
        ),
    )
    neg(
        "node-not-in-cut",
        "A voice naming node-e, which the cut does not hold.",
        "10.7.6",
        ConsistencyError,
        edited(_put("entries/item-1/confirmed/plat-a/node", "node-e")),
    )
    neg(
        "node-of-another-platform",
        "plat-a's voice naming node-b, a node of plat-b.",
        "10.7.6",
        ConsistencyError,
        edited(_put("entries/item-1/confirmed/plat-a/node", "node-b")),
    )
    neg(
        "seq-past-cut",
        "A voice naming node-a's ack seq 2, past node-a's seq 1 in the cut.",
        "10.7.6",
        ConsistencyError,
        edited(_put("entries/item-1/confirmed/plat-a/seq", 2)),
    )
    neg(
        "no-dispute-at-threshold",
        "item-2, disputed by three platforms, without a dispute.",
        "10.7.7",
        ConsistencyError,
        edited(_put("entries/item-2/dispute", _DROP)),
    )
    neg(
        "dispute-below-threshold",
        "item-4's one dispute with a dispute record (its voice added back for the case).",
        "10.7.7",
        ConsistencyError,
        edited(
            _put(
                "entries/item-4",
                {
                    "confirmed": {},
                    "disputed": {"plat-d": {"node": "node-d", "reason": "benign", "seq": 1}},
                    "dispute": {"opened": _time(_at(1.5)), "state": "open"},
                },
            )
        ),
    )
    neg(
        "dispute-after-created",
        "item-2's dispute opened at 02:30, after the summary's created (02:00).",
        "10.7.7",
        ConsistencyError,
        edited(_put("entries/item-2/dispute/opened", _time(_at(2.5)))),
    )
    return cases


REGIONAL_HUB = "regional.example"
"""The downstream hub of the provenance cases: it re-publishes from ``entries.example``."""
EXCHANGE = "stopncii"
"""The name ``regional.example`` calls the hash exchange it takes entries from (§5.7)."""


def _exchange_record(n: int) -> dict[str, Any]:
    """A record as StopNCII's API gives it (its member names), for item ``n``'s hash."""
    return {
        "CSPFeedbacks": [],
        "caseNumbers": {"demo-ngo": f"case-{n:04d}"},
        "hashStatus": "Active",
        "hashValue": entries_hash(n).hex(),
        "lastModtimestamp": int(_at(2.5).timestamp()),
        "signalType": "ImagePDQ",
    }


def _provenance_tree(keys: Mapping[str, SigningKey], *, exchange: bool = False) -> dict[str, Any]:
    """``entries.example`` publishes v1 and v2; ``regional.example`` declares it as an
    upstream and publishes v1: item-2 re-published from the upstream's v2, a member's
    contribution, and a record of its own import; with ``exchange``, also x-5, a record
    taken from the exchange ``stopncii`` (its vocabulary then declares the source)."""
    upstream = _entries_root()
    up_data, up_sig = upstream.sign([keys[k] for k in ROOT1_SIGNERS])
    up_pub = Publisher(upstream, _online(keys, "delta"))
    head = ListHead.empty_entries(upstream, ENTRIES)
    up_files: dict[str, bytes] = {}
    p1 = up_pub.publish_entries(head, adds=[_entry(1)], now=_at(1))
    up_files.update(p1.files)
    p2 = up_pub.publish_entries(p1.head, adds=[_entry(2, "fraud", "low")], now=_at(2))
    up_files.update(p2.files)
    up_headers = [p1.header.to_bytes(), p2.header.to_bytes()]
    up_root = p2.head.compact.root()

    root = _entries_root(
        name=REGIONAL_HUB,
        vocabulary=replace(
            VOCABULARY,
            sources=(*VOCABULARY.sources, "hub", *(("exchange",) if exchange else ())),
        ),
        upstreams={
            ENTRIES_HUB: Upstream(hashlib.sha256(up_data).hexdigest(), "https://entries.example/")
        },
    )
    root_data, root_sig = root.sign([keys[k] for k in ROOT1_SIGNERS])
    pub = Publisher(root, _online(keys, "delta"))
    theirs = _entry(2, "fraud", "low")
    mine = replace(theirs, entry_id="r-2", source_kind="hub", source_ref=ENTRIES_HUB)
    offered = Contribution(
        node=NODE_ID,
        seq=1,
        sent=_at(2.5),
        hashes={"pdq": ContributedHash(entries_hash(7).hex(), 90)},
        category="ncii",
        classification="high",
        review=Review("person", "actioned"),
    )
    contribution, sidecar = sign_contribution(offered, keys[NODE_ID])
    member = Entry(entries_hash(7), "m-1", "ncii", "high", "member", "platform-a", _at(2.5))
    own = _entry(8, entry_id="o-8")
    adds = [mine, member, own]
    origins: dict[str, UpstreamOrigin | MemberOrigin | ExchangeOrigin] = {
        "r-2": UpstreamOrigin(
            ENTRIES_HUB,
            ENTRIES,
            theirs.line,
            up_headers[1],
            2,
            up_root,
            tuple(inclusion_proof([leaf_hash(h) for h in up_headers], 1)),
        ),
        "m-1": MemberOrigin(contribution, sidecar),
    }
    if exchange:
        adds.append(Entry(entries_hash(5), "x-5", "ncii", "high", "exchange", EXCHANGE, _at(2.75)))
        origins["x-5"] = ExchangeOrigin(
            exchange=EXCHANGE,
            api="stopncii",
            hash_hex=entries_hash(5).hex(),
            fetched=_time(_at(2.75)),
            record=_exchange_record(5),
        )
    p = pub.publish_entries(
        ListHead.empty_entries(root, ENTRIES),
        adds=adds,
        now=_at(3),
        provenance=lambda version: Provenance(ENTRIES, version, origins),
    )
    return {
        "upstream": {
            "root_data": up_data,
            "root_sig": up_sig,
            "checkpoint": up_files[checkpoint_path(ENTRIES)],
            "body": up_files[body_path(ENTRIES, p2.header.body.sha256)],
        },
        "root_data": root_data,
        "root_sig": root_sig,
        "header": p.header,
        "files": p.files,
        "body": p.files[body_path(ENTRIES, p.header.body.sha256)],
        "origins": origins,
        "node_public_hex": keys[NODE_ID].public.raw.hex(),
    }


def _provenance_check(inp: Mapping[str, Any]) -> Provenance:
    """What a verifier does with a provenance document (§7.5): given the (already
    verified) header, the root it names and the version's body."""
    root = Root.from_bytes(inp["root_text"].encode())
    header = DeltaHeader.from_bytes(inp["header_text"].encode())
    kind = hash_type("pdq")
    body = EntriesBody.from_bytes(inp["body_text"].encode(), "pdq")
    return verify_provenance(header, inp["provenance_text"].encode(), root, body, kind)


def _provenance_version(tree: Mapping[str, Any]) -> tuple[DeltaHeader, bytes, dict[str, str]]:
    """A provenance tree's header v1, its provenance document, and the input every case
    of it shares (the root, the header and the body)."""
    header: DeltaHeader = tree["header"]
    ref = header_provenance(header)
    assert ref is not None
    data = tree["files"][provenance_path(ENTRIES, ref.sha256)]
    base = {
        "root_text": _text(tree["root_data"]),
        "header_text": _text(header.to_bytes()),
        "body_text": _text(tree["body"]),
    }
    return header, data, base


def _provenance_auditing(tree: Mapping[str, Any]) -> dict[str, Any]:
    """What a positive provenance case gives an auditor beyond the version."""
    up = tree["upstream"]
    return {
        "upstream": {
            "root_text": _text(up["root_data"]),
            "root_sig_text": _text(up["root_sig"]),
            "checkpoint_text": _text(up["checkpoint"]),
            "body_text": _text(up["body"]),
        },
        "node_public_hex": tree["node_public_hex"],
    }


def _rebound(
    header: DeltaHeader,
    doc: bytes,
    member: Mapping[str, Any] | None = None,
    *,
    field: str = "provenance",
) -> bytes:
    """Header v with its ``field`` member naming ``doc`` (or set to ``member``): the
    case takes the header as verified, so a negative's one fault is in the document."""
    value = parse_canonical(header.to_bytes())
    assert isinstance(value, dict)
    value[field] = (
        {"length": len(doc), "sha256": hashlib.sha256(doc).hexdigest()}
        if member is None
        else member
    )
    return canonicalize(value)


def _provenance_positive(
    tree: Mapping[str, Any], base: Mapping[str, Any], data: bytes
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A positive provenance case's input (the version, the document ``data`` and what
    an auditor checks beyond them) and its expected origins, checked here."""
    inp = {**base, "provenance_text": _text(data)}
    checked = _provenance_check(inp)
    expected = {"origins": {e: type(o).__name__ for e, o in sorted(checked.origins.items())}}
    return {**inp, **_provenance_auditing(tree)}, expected


def _provenance_negative(
    cases: dict[str, dict[str, Any]],
    base: Mapping[str, str],
    header: DeltaHeader,
    name: str,
    description: str,
    rule: str,
    error: type[ProtocolError],
    doc: bytes,
    head: bytes | None = None,
) -> None:
    """Case ``neg-provenance-<name>``: ``doc`` under header v re-pointed at it (or
    ``head``), refused with ``error`` at ``rule``."""
    case_inp = {
        **base,
        "header_text": _text(head or _rebound(header, doc)),
        "provenance_text": _text(doc),
    }
    cases[f"neg-provenance-{name}"] = _case(
        description,
        "verify_provenance",
        rules=[rule],
        input=case_inp,
        error=_expect(error, lambda: _provenance_check(case_inp)),
    )


def _provenance_cases(keys: Mapping[str, SigningKey]) -> dict[str, dict[str, Any]]:
    """A version whose records came from an upstream and from a member, with the proof
    of each, and one negative case per rule of §7.5."""
    cases: dict[str, dict[str, Any]] = {}
    tree = _provenance_tree(keys)
    header, data, base = _provenance_version(tree)
    inp, expected = _provenance_positive(tree, base, data)
    cases["provenance"] = _case(
        f"{REGIONAL_HUB}'s root v1 declares {ENTRIES_HUB} as an upstream; its v1 of "
        f"{ENTRIES} adds r-2 (re-published from the upstream's v2: source "
        f"hub:{ENTRIES_HUB}), m-1 (from {NODE_ID}'s contribution: source "
        "member:platform-a) and o-8 (its own import, no origin). The provenance document "
        "header v1 names proves both origins. input.upstream holds what an auditor checks "
        "beyond the version: the upstream's root (pinned by the SHA-256 the downstream "
        "root declares), its checkpoint at size 2 (whose root is the origin's) and its "
        f"v2 body (which adds the record line); input.node_public_hex verifies m-1's "
        "contribution.",
        "verify_provenance",
        rules=["7.5"],
        input=inp,
        expected=expected,
    )
    good = parse_canonical(data)
    assert isinstance(good, dict)
    rebound = partial(_rebound, header)
    neg = partial(_provenance_negative, cases, base, header)

    def edited(change: Callable[[dict[str, Any]], None]) -> bytes:
        return _edited(good, change)

    neg(
        "ref-malformed",
        "Header v1's provenance member with an unknown member (size).",
        "7.5.1",
        MalformedError,
        data,
        rebound(data, {"length": len(data), "sha256": hashlib.sha256(data).hexdigest(), "size": 1}),
    )
    neg(
        "sha256",
        "The document with one digit changed, under the header naming the original.",
        "7.5.2",
        ConsistencyError,
        data.replace(b'"size":2', b'"size":3', 1),
        header.to_bytes(),
    )
    neg("wrong-type", "_type hashhub.provenance.v2.", "7.5.3", WrongTypeError,
        edited(_put("_type", "hashhub.provenance.v2")))  # fmt: skip
    neg("kind", "An origin of kind 'import', a source kind that claims no origin.", "7.5.3",
        MalformedError, edited(_put("origins/r-2/kind", "import")))  # fmt: skip
    neg("root-width", "The upstream root in 31 bytes.", "7.5.3", MalformedError,
        edited(_put("upstream_headers/0/root", b64encode(bytes(31)))))  # fmt: skip
    neg("header-unnamed", "r-2's origin naming upstream v1, whose header the document "
        "does not carry.", "7.5.3", MalformedError,
        edited(_put("origins/r-2/version", 1)))  # fmt: skip
    neg("header-twice", "The upstream header of v2 carried twice.", "7.5.3", MalformedError,
        edited(lambda v: v["upstream_headers"].append(v["upstream_headers"][0])))  # fmt: skip
    neg("version", "A document saying version 2 under header v1.", "7.5.4", ConsistencyError,
        edited(_put("version", 2)))  # fmt: skip
    neg(
        "missing-origin",
        "No origin for m-1, which the version adds from a member.",
        "7.5.5",
        ConsistencyError,
        edited(_put("origins/m-1", _DROP)),
    )
    neg(
        "origin-of-own-record",
        "An origin for o-8, the hub's own import.",
        "7.5.5",
        ConsistencyError,
        edited(lambda v: v["origins"].update({"o-8": v["origins"]["m-1"]})),
    )

    def undeclared(v: dict[str, Any]) -> None:
        _put("origins/r-2/hub", "hotline.example")(v)
        _put("upstream_headers/0/hub", "hotline.example")(v)

    neg(
        "undeclared-upstream",
        "r-2's origin (and its upstream header) naming hotline.example, which the root does "
        "not declare.",
        "7.5.6",
        ConsistencyError,
        edited(undeclared),
    )
    neg(
        "other-hash",
        "r-2's origin carrying the upstream's record of item-1, another hash.",
        "7.5.6",
        ConsistencyError,
        edited(_put("origins/r-2/record", _entry(1).line.decode())),
    )
    neg(
        "proof",
        "r-2's inclusion proof with its one hash changed: it leads to another root.",
        "7.5.6",
        ProofError,
        edited(_put("upstream_headers/0/proof", [b64encode(bytes(32))])),
    )

    def renumbered(v: dict[str, Any]) -> None:
        v["upstream_headers"][0]["version"] = 1
        v["origins"]["r-2"]["version"] = 1

    neg(
        "header-version",
        "The upstream header of v2 carried as v1's, and r-2 naming v1.",
        "7.5.6",
        ConsistencyError,
        edited(renumbered),
    )
    other = tree["origins"]["m-1"]
    wrong = Contribution.from_bytes(other.contribution)
    moved = replace(wrong, hashes={"pdq": ContributedHash(entries_hash(9).hex(), 90)})
    neg(
        "contribution-hash",
        "m-1's contribution carrying another PDQ hash than the record's.",
        "7.5.7",
        ConsistencyError,
        edited(_put("origins/m-1/contribution", b64encode(moved.to_bytes()))),
    )
    return cases


def _provenance_exchange_cases(keys: Mapping[str, SigningKey]) -> dict[str, dict[str, Any]]:
    """The provenance tree with a record taken from an exchange (§5.7), and one negative
    case per check of rule 8 of §7.5, each a change to x-5's origin."""
    cases: dict[str, dict[str, Any]] = {}
    tree = _provenance_tree(keys, exchange=True)
    header, data, base = _provenance_version(tree)
    inp, expected = _provenance_positive(tree, base, data)
    cases["provenance-exchange"] = _case(
        f"{REGIONAL_HUB}'s v1 of {ENTRIES} adds r-2, m-1 and o-8 as in provenance.json, "
        f"and x-5, taken from the hash exchange it calls {EXCHANGE} (source "
        f"exchange:{EXCHANGE}; its root's vocabulary declares the source kind exchange). "
        "x-5's origin gives the API read, the hash, when the hub fetched the record "
        f"({_time(_at(2.75))}, before header v1's created) and the record as StopNCII's API "
        "gave it: the hub's own attestation, which an auditor checks with the exchange.",
        "verify_provenance",
        rules=["7.5"],
        input=inp,
        expected=expected,
    )
    good = parse_canonical(data)
    assert isinstance(good, dict)
    neg = partial(_provenance_negative, cases, base, header)

    def edited(change: Callable[[dict[str, Any]], None]) -> bytes:
        return _edited(good, change)

    def x5(member: str, value: Any) -> bytes:
        return edited(_put(f"origins/x-5/{member}", value))

    neg("exchange-record-type", "x-5's origin whose record is a string, not an object.",
        "7.5.3", MalformedError, x5("record", "hashStatus=Active"))  # fmt: skip
    neg("exchange-extra-member", "x-5's origin with a member not named for its kind (list).",
        "7.5.3", MalformedError, x5("list", ENTRIES))  # fmt: skip
    neg("exchange-name", "x-5's origin naming the exchange 'StopNCII', not a hub name.",
        "7.5.8", MalformedError, x5("exchange", "StopNCII"))  # fmt: skip
    neg("exchange-api", "x-5's origin reading the api 'StopNCII/v1', not a term.",
        "7.5.8", MalformedError, x5("api", "StopNCII/v1"))  # fmt: skip
    neg("exchange-hash-form", "x-5's origin giving its hash in upper-case hex.",
        "7.5.8", MalformedError, x5("hash", entries_hash(5).hex().upper()))  # fmt: skip
    neg("exchange-fetched", "x-5's origin fetched '2026-01-01 02:45:00', not a §3.2 time.",
        "7.5.8", MalformedError, x5("fetched", "2026-01-01 02:45:00"))  # fmt: skip
    big = _exchange_record(5)
    big["caseNumbers"] = {"demo-ngo": ""}
    pad = MAX_EXCHANGE_RECORD + 1 - len(canonicalize(big))
    big["caseNumbers"] = {"demo-ngo": "c" * pad}
    assert len(canonicalize(big)) == MAX_EXCHANGE_RECORD + 1
    neg("exchange-record-size", "x-5's origin carrying a record of 65,537 bytes in canonical "
        "form, one over the cap.", "7.5.8", LimitError, x5("record", big))  # fmt: skip
    neg("exchange-source", "x-5's origin naming the exchange ncii.example; the record's "
        f"source is exchange:{EXCHANGE}.", "7.5.8", ConsistencyError,
        x5("exchange", "ncii.example"))  # fmt: skip
    neg(
        "exchange-for-member",
        "m-1 (source member:platform-a) given an origin of kind exchange: x-5's, with m-1's hash.",
        "7.5.8",
        ConsistencyError,
        edited(
            lambda v: v["origins"].update(
                {"m-1": {**v["origins"]["x-5"], "hash": entries_hash(7).hex()}}
            )
        ),
    )
    neg("exchange-other-hash", "x-5's origin giving the hash of item-6, not the record's.",
        "7.5.8", ConsistencyError, x5("hash", entries_hash(6).hex()))  # fmt: skip
    neg("exchange-fetched-late", f"x-5's origin fetched {_time(_at(3) + timedelta(seconds=1))}, "
        "a second after header v1's created.", "7.5.8", ConsistencyError,
        x5("fetched", _time(_at(3) + timedelta(seconds=1))))  # fmt: skip
    return cases


def _contribution_cases(repo: _Repo) -> dict[str, dict[str, Any]]:
    """PROTOCOL.md §10.8: a member's signed candidate entry, and each rule it can break.
    Every negative is validly signed by node-1, so the rule it breaks is the one named."""
    key = repo.keys[NODE_ID]
    node_pub = key.public.raw.hex()
    cases: dict[str, dict[str, Any]] = {}
    made = Contribution(
        node=NODE_ID,
        seq=3,
        sent=VERIFY_AT,
        hashes={
            "pdq": ContributedHash(pdq_hash(9).hex(), 92),
            "md5": ContributedHash(md5_hash(9).hex()),
        },
        category="ncii",
        classification="confirmed",
        review=Review("person", "actioned"),
    )
    data, sig = sign_contribution(made, key)
    read = verify_contribution(data, sig, node_key=key.public)
    assert read == made
    cases["contribution"] = _case(
        f"{NODE_ID}'s contribution seq 3: one item's PDQ (quality 92) and MD5, category "
        "ncii, classification confirmed, reviewed by a person who took it down. Verify "
        "under node-1's key, then parse.",
        "verify_contribution",
        rules=["10.8"],
        input={"text": _text(data), "sig_text": _text(sig), "node_public_hex": node_pub},
        expected={
            "seq": read.seq,
            "hashes": {t: h.to_dict() for t, h in read.hashes.items()},
            "review": read.review.to_dict(),
        },
    )
    valid = parse_canonical(data)
    assert isinstance(valid, dict)

    def neg(
        name: str,
        description: str,
        bad: bytes,
        rule: str,
        error: type[ProtocolError] = MalformedError,
        bad_sig: bytes | None = None,
    ) -> None:
        signed = sign_bytes(bad, [key]).to_bytes() if bad_sig is None else bad_sig
        cases[f"neg-contribution-{name}"] = _case(
            description,
            "verify_contribution",
            rules=[rule],
            input={"text": _text(bad), "sig_text": _text(signed), "node_public_hex": node_pub},
            error=_expect(error, lambda: verify_contribution(bad, signed, node_key=key.public)),
        )

    def edited(edit: Callable[[dict[str, Any]], None]) -> bytes:
        return _edited(valid, edit)

    neg(
        "signed-by-another",
        "The contribution signed by node-2's key, not node-1's: a SignatureError before "
        "anything is parsed.",
        data,
        "10.8.1",
        SignatureError,
        sign_bytes(data, [repo.keys["node-2"]]).to_bytes(),
    )
    neg("wrong-type", "_type hashhub.ack.v1.", edited(_put("_type", "hashhub.ack.v1")), "10.8.2",
        WrongTypeError)  # fmt: skip
    neg("no-review", "No review member.", edited(_put("review", _DROP)), "10.8.2")
    neg("seq-zero", "seq 0.", edited(_put("seq", 0)), "10.8.3")
    neg("node-id", "node 'Node-1' (upper case).", edited(_put("node", "Node-1")), "10.8.3")
    neg("no-hashes", "hashes is empty.", edited(_put("hashes", {})), "10.8.4")
    neg(
        "unknown-type",
        "a hash of type 'sha1', which no registry declares.",
        edited(_put("hashes/sha1", {"hash": "ab" * 20})),
        "10.8.4",
    )
    neg(
        "short-hash",
        "the MD5 hash with 31 hex digits.",
        edited(_put("hashes/md5/hash", md5_hash(9).hex()[:31])),
        "10.8.4",
    )
    neg(
        "pdq-without-quality",
        "the PDQ hash without its quality.",
        edited(_put("hashes/pdq/quality", _DROP)),
        "10.8.4",
    )
    neg(
        "md5-with-quality",
        "the MD5 hash with a quality (MD5 has none).",
        edited(_put("hashes/md5/quality", 90)),
        "10.8.4",
    )
    neg("quality-over-100", "PDQ quality 101.", edited(_put("hashes/pdq/quality", 101)), "10.8.4")
    neg("category", "category 'NCII'.", edited(_put("category", "NCII")), "10.8.5")
    neg(
        "review-by",
        "review.by 'moderator', not person or automated.",
        edited(_put("review/by", "moderator")),
        "10.8.6",
    )
    neg(
        "review-member",
        "review with a member §10.8 does not name (note): the record is closed.",
        edited(_put("review/note", "looks bad")),
        "10.8.6",
    )
    return cases


def _upstream_cases() -> dict[str, dict[str, Any]]:
    """A root declaring the hubs it re-publishes from (PROTOCOL.md §5.6), and each way a
    declaration is refused."""
    cases: dict[str, dict[str, Any]] = {}
    upstream_pin = hashlib.sha256(b"root/1.json of helpline.example").hexdigest()
    root = _entries_root(
        upstreams={
            "helpline.example": Upstream(upstream_pin, "https://helpline.example/"),
            "hotline.example": Upstream("ab" * 32, "https://hashes.hotline.example/tree/"),
        }
    )
    good = root.to_bytes()
    assert Root.from_bytes(good) == root
    cases["document-root-upstreams"] = _case(
        f"Root v1 of {ENTRIES_HUB} declaring two upstream hubs, each with the SHA-256 of the "
        "root its follower pins and the URL it is published at: kept and re-encoded as is.",
        "parse_document",
        rules=["5.6"],
        input={"kind": "root", "text": _text(good)},
        expected={"canonical_text": _text(good)},
    )
    valid = parse_canonical(good)
    assert isinstance(valid, dict)

    def changed(edit: Callable[[dict[str, Any]], None]) -> bytes:
        return _edited(valid, edit)

    def up(name: str, **members: Any) -> Callable[[dict[str, Any]], None]:
        return lambda v: v["upstreams"].update({name: members})

    for rule, what, edit in (
        (
            "itself",
            f"names {ENTRIES_HUB}, the hub itself: a loop",
            up(ENTRIES_HUB, root_sha256=upstream_pin, url="https://x.example/"),
        ),
        (
            "bad-name",
            "names 'Helpline.Example' (upper case: not a hub name)",
            up("Helpline.Example", root_sha256=upstream_pin, url="https://x.example/"),
        ),
        (
            "bad-pin",
            "gives a pin of 63 hex digits",
            up("x.example", root_sha256=upstream_pin[:63], url="https://x.example/"),
        ),
        (
            "bad-url",
            "gives an ftp:// URL",
            up("x.example", root_sha256=upstream_pin, url="ftp://x.example/"),
        ),
        (
            "unknown-member",
            "gives an upstream a member §5.6 does not name (lists): the record is closed",
            up("x.example", root_sha256=upstream_pin, url="https://x.example/", lists=[]),
        ),
        (
            "not-object",
            "is an array",
            lambda v: v.update(upstreams=[["helpline.example", upstream_pin]]),
        ),
    ):
        bad = changed(edit)
        cases[f"neg-root-upstreams-{rule}"] = _case(
            f"Root v1 of {ENTRIES_HUB} whose upstreams {what}. (input.valid_text: the valid "
            "root it differs from.)",
            "parse_document",
            rules=["5.6"],
            input={"kind": "root", "text": _text(bad), "valid_text": _text(good)},
            error=_expect(MalformedError, partial(Root.from_bytes, bad)),
        )
    return cases


def _root_fields(root: Root) -> dict[str, Any]:
    return {
        "version": root.version,
        "name": root.name,
        "expires": root.expires,
        "keys": root.keys,
        "roles": root.roles,
        "lists": root.lists,
        "mirrors": root.mirrors,
        "policy": root.policy,
    }


# --------------------------------------------------------------------------------------
# Video frames (vPDQ): the frames encoding and the matching rule (PROTOCOL.md §6.3, §6.4)
# --------------------------------------------------------------------------------------


def video_pdq(label: str) -> bytes:
    """A 32-byte stand-in for a frame's PDQ hash: SHA-256 of a label. Two such hashes
    differ in about 128 bits, so unrelated frames never agree."""
    return hashlib.sha256(f"hashhub vector video frame: {label}".encode()).digest()


def _flip(pdq: bytes, bits: int) -> bytes:
    """``pdq`` with its first ``bits`` bits (most significant first) inverted: a frame at
    PDQ distance exactly ``bits``."""
    mask = ((1 << bits) - 1) << (8 * len(pdq) - bits)
    return (int.from_bytes(pdq, "big") ^ mask).to_bytes(len(pdq), "big")


def _clip(
    labels: Sequence[str], quality: int = 80, *, flip: int = 0, step_ms: int = 1000
) -> list[Frame]:
    """Frames of the hashes of ``labels`` (each moved ``flip`` bits), one every ``step_ms``."""
    return [
        Frame(millis=n * step_ms, pdq=_flip(video_pdq(label), flip), quality=quality)
        for n, label in enumerate(labels)
    ]


def _retimed(*parts: Sequence[Frame], step_ms: int = 1000) -> list[Frame]:
    """The frames of ``parts`` one after another, at times 0, ``step_ms``, … (a video
    cut together from them)."""
    frames = [f for part in parts for f in part]
    return [Frame(n * step_ms, f.pdq, f.quality) for n, f in enumerate(frames)]


def _labels(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{n}" for n in range(count)]


def _frames_run(run: Mapping[str, Any]) -> bytes:
    """The frames string a ``run`` input describes: ``count`` frames of one PDQ hash and
    quality, the n-th at n × ``step_ms`` (a string too long to hold as hex)."""
    frame = bytes.fromhex(run["pdq_hex"]) + bytes([run["quality"]])
    return b"".join(frame + (n * run["step_ms"]).to_bytes(4, "big") for n in range(run["count"]))


def _frames_input(inp: Mapping[str, Any], prefix: str = "") -> bytes:
    """A case's frames string: ``<prefix>frames_hex``, or the ``<prefix>run`` it describes."""
    if f"{prefix}run" in inp:
        return _frames_run(inp[f"{prefix}run"])
    return bytes.fromhex(inp[f"{prefix}frames_hex"])


def _frames_fields(frames: Sequence[Frame]) -> list[dict[str, Any]]:
    return [{"pdq_hex": f.pdq.hex(), "quality": f.quality, "millis": f.millis} for f in frames]


def _video_frames_cases() -> dict[str, dict[str, Any]]:
    """A frames string and its digest, then one string per rule of §6.3 that breaks it;
    every negative case also gives the valid string it differs from in that one thing."""
    still = video_pdq("scene-2")
    frames = [
        Frame(0, video_pdq("scene-0"), 0),
        Frame(1000, video_pdq("scene-1"), 49),
        Frame(2000, still, 50),
        Frame(2500, still, 100),
        Frame(2**32 - 1, video_pdq("scene-3"), 73),
    ]
    data = encode_frames(frames)
    assert decode_frames(data) == tuple(frames)
    cases: dict[str, dict[str, Any]] = {
        "video-frames": _case(
            "Five frames: qualities 0, 49, 50, 100 and 73, the third and fourth one PDQ hash "
            "(a still scene) at different times, the last at the largest time 2^32 - 1 ms. "
            "The SHA-256 of the string is the hash of its vpdq record.",
            "video_frames",
            rules=["6.3"],
            input={"frames_hex": data.hex()},
            expected={
                "count": len(frames),
                "frames": _frames_fields(frames),
                "sha256": frames_digest(frames).hex(),
            },
        )
    }
    valid = encode_frames(_clip(_labels("rule", 3)))
    frame_bytes = len(valid) // 3

    def at(n: int) -> slice:
        return slice(n * frame_bytes, (n + 1) * frame_bytes)

    def with_frame(n: int, frame: bytes) -> bytes:
        return valid[: at(n).start] + frame + valid[at(n).stop :]

    second = valid[at(1)]
    time_of_first = valid[at(0)][-4:]

    def neg(
        name: str,
        description: str,
        rule: str,
        inp: dict[str, Any],
        error: type[ProtocolError] = MalformedError,
    ) -> None:
        decode_frames(_frames_input(inp, "valid_"))
        cases[f"neg-video-frames-{name}"] = _case(
            description,
            "video_frames",
            rules=[rule],
            input=inp,
            error=_expect(error, partial(decode_frames, _frames_input(inp))),
        )

    def hexes(bad: bytes) -> dict[str, Any]:
        return {"frames_hex": bad.hex(), "valid_frames_hex": valid.hex()}

    neg(
        "partial",
        "Three frames without the last byte of the third: 110 bytes, not a whole number "
        "of 37-byte frames.",
        "6.3.1",
        hexes(valid[:-1]),
    )
    neg("none", "No bytes: a video has at least one frame.", "6.3.2", hexes(b""))
    neg(
        "quality-101",
        "The second of three frames with quality 101.",
        "6.3.4",
        hexes(with_frame(1, second[:32] + bytes([101]) + second[33:])),
    )
    neg(
        "times-equal",
        "The second of three frames at the time of the first (0 ms).",
        "6.3.5",
        hexes(with_frame(1, second[:33] + time_of_first)),
    )
    neg(
        "times-descending",
        "The three frames at 0, 2000 and 1000 ms: the third is earlier than the second.",
        "6.3.5",
        hexes(valid[at(0)] + valid[at(2)] + valid[at(1)]),
    )
    run = {"pdq_hex": video_pdq("long").hex(), "quality": 80, "step_ms": 1000}
    neg(
        "too-many",
        f"{MAX_FRAMES + 1} frames, one a second: one above the cap of {MAX_FRAMES}. "
        f"(`valid_run` is the same with {MAX_FRAMES}.)",
        "6.3.3",
        {"run": {**run, "count": MAX_FRAMES + 1}, "valid_run": {**run, "count": MAX_FRAMES}},
        LimitError,
    )
    neg(
        "too-many-before-order",
        f"{MAX_FRAMES + 1} frames all at 0 ms: the cap (rule 3) is checked before the "
        "order of times (rule 5), so the error is LimitError.",
        "6.3.3",
        {
            "run": {**run, "count": MAX_FRAMES + 1, "step_ms": 0},
            "valid_run": {**run, "count": MAX_FRAMES},
        },
        LimitError,
    )
    return cases


def _video_match_cases() -> dict[str, dict[str, Any]]:
    """Query and listed videos and the outcome of §6.4, one rule at a time."""
    cases: dict[str, dict[str, Any]] = {}

    def match(
        name: str,
        description: str,
        rules: Sequence[str],
        query: Sequence[Frame],
        listed: Sequence[Frame],
        *,
        matched: bool,
    ) -> None:
        result = match_video(query, listed)
        assert result.matched is matched, (name, result)
        assert match_video(listed, query) == replace(
            result, query_share=result.listed_share, listed_share=result.query_share
        )
        cases[f"video-match-{name}"] = _case(
            description,
            "video_match",
            rules=["6.4", *rules],
            input={
                "query_hex": encode_frames(query).hex(),
                "listed_hex": encode_frames(listed).hex(),
            },
            expected={
                "query_share": list(result.query_share),
                "listed_share": list(result.listed_share),
                "match": result.matched,
            },
        )

    listed = _labels("film", 10)
    match(
        "query-share",
        "A re-encoded trimmed clip: the query is the last 5 of the listed 10 frames, each "
        "moved 10 bits. Query share 5/5 matches; the listed share is 5/10.",
        ["6.4.4", "6.4.7"],
        _clip(listed[5:], flip=10),
        _clip(listed),
        matched=True,
    )
    match(
        "listed-share",
        "An upload that contains a listed clip: 3 other frames, the listed 5, 4 other "
        "frames. Query share 5/12; listed share 5/5 matches.",
        ["6.4.5", "6.4.7"],
        _retimed(_clip(_labels("before", 3)), _clip(listed[:5]), _clip(_labels("after", 4))),
        _clip(listed[:5]),
        matched=True,
    )
    long_listed = _labels("long", 40)
    match(
        "at-boundary",
        "Query share 16/20, exactly 4/5 (5*16 = 4*20): a match. Listed share 16/40.",
        ["6.4.4", "6.4.7"],
        _retimed(_clip(long_listed[:16]), _clip(_labels("other", 4))),
        _clip(long_listed),
        matched=True,
    )
    longer = _labels("longer", 60)
    match(
        "below-boundary",
        "Query share 39/49, just below 4/5 (5*39 = 195 < 196 = 4*49): no match. Listed "
        "share 39/60.",
        ["6.4.4", "6.4.5", "6.4.7"],
        _retimed(_clip(longer[:39]), _clip(_labels("other", 10))),
        _clip(longer),
        matched=False,
    )
    match(
        "low-quality-ignored",
        "Each side: 5 agreeing frames (the query's of quality 50, the listed's 80) and 5 "
        "unrelated frames of quality 49. Left out, the low frames leave both shares 5/5: a "
        "match (counted, they would make 5/10).",
        ["6.4.1", "6.4.7"],
        _retimed(_clip(listed[:5], quality=50), _clip(_labels("dark-q", 5), quality=49)),
        _retimed(_clip(listed[:5]), _clip(_labels("dark-l", 5), quality=49)),
        matched=True,
    )
    match(
        "low-quality-not-compared",
        "The query: one frame of the listed 5 at quality 80 and the other four identical "
        "to listed frames but of quality 49. Only 1 distinct query frame is left: its share "
        "does not count, and the listed share is 1/5: no match.",
        ["6.4.1", "6.4.5", "6.4.6"],
        _retimed(_clip(listed[:1]), _clip(listed[1:5], quality=49)),
        _clip(listed[:5]),
        matched=False,
    )
    still = _clip(["title-card"] * 6)
    match(
        "duplicates-once",
        "The query: a title card held for 6 frames (one PDQ hash), then 4 listed frames. "
        "Distinct query frames: 5, of which 4 agree: 4/5, a match (counting each frame, "
        "4/10 would not). Listed share 4/10.",
        ["6.4.2", "6.4.4", "6.4.7"],
        _retimed(still, _clip(listed[:4])),
        _clip(listed),
        matched=True,
    )
    match(
        "two-good-frames-query",
        "The query: 2 frames of quality 80 that agree with listed frames and 3 of quality "
        "10. Its share 2/2 does not count (fewer than 3 distinct frames); listed 2/10.",
        ["6.4.6"],
        _retimed(_clip(listed[:2]), _clip(_labels("blur", 3), quality=10)),
        _clip(listed),
        matched=False,
    )
    match(
        "two-good-frames-listed",
        "The listed video has 2 frames, both in the query of 10: the listed share 2/2 does "
        "not count; the query share is 2/10.",
        ["6.4.6"],
        _clip(listed),
        _clip(listed[3:5]),
        matched=False,
    )
    match(
        "three-good-frames-listed",
        "The listed video has 3 frames, all in the query of 10: the listed share 3/3 "
        "counts and matches.",
        ["6.4.6", "6.4.7"],
        _clip(listed),
        _clip(listed[3:6]),
        matched=True,
    )
    match(
        "no-share-counts",
        "One query frame identical to one of the two listed frames: neither side has 3 "
        "distinct frames, so no share counts and there is no match.",
        ["6.4.6", "6.4.7"],
        _clip(listed[:1]),
        _clip(listed[:2]),
        matched=False,
    )
    match(
        "distance-31",
        "Each of the 5 query frames is a listed frame with 31 bits inverted: they agree "
        "(distance <= 31). Both shares 5/5.",
        ["6.4.3"],
        _clip(listed[:5], flip=31),
        _clip(listed[:5]),
        matched=True,
    )
    match(
        "distance-32",
        "Each of the 5 query frames is a listed frame with 32 bits inverted: none agree. "
        "Both shares 0/5.",
        ["6.4.3"],
        _clip(listed[:5], flip=32),
        _clip(listed[:5]),
        matched=False,
    )
    return cases


VIDEOS = "entries-vpdq"
"""The vpdq list of ``entries.example`` in the video vectors, in the pdq list's collection."""


def _video_root(**video: Any) -> Root:
    """``entries.example``'s root with a vpdq list beside its pdq list, both entries
    lists of the collection ``demo``; ``video`` replaces members of its declaration."""
    pdq = ListSpec(ENTRIES, "pdq", 31, label="demo", snapshot_every=2, format="entries")
    fields = {"label": "demo", "snapshot_every": 2, "format": "entries", **video}
    return _entries_root(lists={ENTRIES: pdq, VIDEOS: ListSpec(VIDEOS, "vpdq", 0, **fields)})


def _video_list_cases() -> dict[str, dict[str, Any]]:
    """A vpdq list: its declaration (§6.1), a body of its records (§7.4) and its frames
    files (§6.5), with each rule of §6.5 refused once."""
    cases: dict[str, dict[str, Any]] = {}
    good = _video_root().to_bytes()
    assert Root.from_bytes(good).to_bytes() == good
    cases["document-root-vpdq"] = _case(
        f"Root v1 of {ENTRIES_HUB} declaring {VIDEOS}, a vpdq list of the entries format "
        f"(max_distance 0) in the collection of {ENTRIES}: kept and re-encoded as is.",
        "parse_document",
        rules=["6.1"],
        input={"kind": "root", "text": _text(good)},
        expected={"canonical_text": _text(good)},
    )
    valid = parse_canonical(good)
    assert isinstance(valid, dict)
    for name, what, edit, error in (
        (
            "hashes",
            f"declares {VIDEOS} without format (a list of bare hashes)",
            lambda v: v["lists"][VIDEOS].pop("format"),
            MalformedError,
        ),
        (
            "distance",
            f"gives {VIDEOS} max_distance 31 (a vpdq record is matched by its frames)",
            lambda v: v["lists"][VIDEOS].update(max_distance=31),
            MalformedError,
        ),
    ):
        bad = _edited(valid, edit)
        cases[f"neg-root-vpdq-{name}"] = _case(
            f"Root v1 of {ENTRIES_HUB} that {what}. (input.valid_text: the valid root it "
            "differs from.)",
            "parse_document",
            rules=["6.1"],
            input={"kind": "root", "text": _text(bad), "valid_text": _text(good)},
            error=_expect(error, partial(Root.from_bytes, bad)),
        )

    first = _clip(_labels("listed", 6))
    second = _clip(_labels("other", 4), quality=90, step_ms=500)
    records = [
        replace(_entry(20), hash=frames_digest(first), entry_id="video-1"),
        replace(_entry(21, "extremism"), hash=frames_digest(second), entry_id="video-2"),
    ]
    body = EntriesBody.build("vpdq", [], records)
    created = _at(1)
    body.check_vocabulary(VOCABULARY)
    body.check_times(created)
    cases["entries-body-vpdq"] = _case(
        f"A hashhub.body.v2 body of {VIDEOS} adding two videos: each record's hash is the "
        "SHA-256 of the video's frames (the frames are the video-frames-file cases' files). "
        "A vpdq body is any entries body; only its records' hashes name frames.",
        "entries_body",
        rules=["6.3", "7.4"],
        input={
            "hash_type": "vpdq",
            "created": _time(created),
            "vocabulary": VOCABULARY.to_dict(),
            "removes": [],
            "adds": [_line(e) for e in reversed(records)],
        },
        expected={"text": _text(body.to_bytes()), **body.ref().to_dict()},
    )

    def file_case(name: str, description: str, frames: Sequence[Frame], entry: Entry) -> None:
        data = encode_frames(frames)
        assert len(read_frames_file(entry.hash, data)) == len(frames)
        cases[name] = _case(
            description,
            "video_frames_file",
            rules=["6.5", "13.6.7"],
            input={"list": VIDEOS, "record": _line(entry), "file_hex": data.hex()},
            expected={
                "path": frames_path(VIDEOS, entry.hash.hex()),
                "count": len(frames),
                "sha256": entry.hash.hex(),
            },
        )

    file_case(
        "video-frames-file",
        f"The frames file of entry video-1 of {VIDEOS}: at lists/<id>/frames/<the record's "
        "hash>.bin, its bytes the video's six frames; their SHA-256 is the record's hash.",
        first,
        records[0],
    )
    file_case(
        "video-frames-file-second",
        "The frames file of entry video-2: four frames, one every 500 ms.",
        second,
        records[1],
    )
    valid_hex = encode_frames(first).hex()

    def neg(
        name: str,
        description: str,
        rules: Sequence[str],
        file: Mapping[str, Any],
        error: type[ProtocolError],
    ) -> None:
        inp: dict[str, Any] = {
            "list": VIDEOS,
            "record": _line(records[0]),
            **file,
            "valid_file_hex": valid_hex,
        }
        data = _frames_input({"frames_hex": inp["file_hex"]} if "file_hex" in inp else inp)
        cases[f"neg-video-frames-file-{name}"] = _case(
            f"{description} (input.valid_file_hex: the record's own file.)",
            "video_frames_file",
            rules=[*rules, "13.6.7"],
            input=inp,
            error=_expect(error, partial(read_frames_file, records[0].hash, data)),
        )

    run = {"pdq_hex": video_pdq("long").hex(), "quality": 80, "step_ms": 1000}
    neg(
        "over-cap",
        f"A file of {MAX_FRAMES + 1} frames ({(MAX_FRAMES + 1) * 37} bytes, given as `run`): "
        f"over the cap of {MAX_FRAMES_BYTES} bytes, refused before its hash is computed.",
        ["6.5.1"],
        {"run": {**run, "count": MAX_FRAMES + 1}},
        LimitError,
    )
    neg(
        "other-video",
        "The frames of entry video-2 served as video-1's: valid frames, but not the ones "
        "the record names.",
        ["6.5.2"],
        {"file_hex": encode_frames(second).hex()},
        ConsistencyError,
    )
    neg(
        "one-frame-short",
        "video-1's file without its last frame: a valid frames string of another hash.",
        ["6.5.2"],
        {"file_hex": valid_hex[: -2 * 37]},
        ConsistencyError,
    )
    out_of_order = first[1].to_bytes() + first[0].to_bytes()
    bad_record = replace(records[0], hash=hashlib.sha256(out_of_order).digest())
    cases["neg-video-frames-file-signed-malformed"] = _case(
        "A record whose hash is the SHA-256 of two frames in descending time (1000 then "
        "0 ms): the file is the one the record names, and not frames (§6.3 rule 5): the hub "
        "signed a record of no video. (input.valid_file_hex: a valid file of another "
        "record.)",
        "video_frames_file",
        rules=["6.5.3", "6.3.5", "13.6.7"],
        input={
            "list": VIDEOS,
            "record": _line(bad_record),
            "file_hex": out_of_order.hex(),
            "valid_file_hex": valid_hex,
        },
        error=_expect(MalformedError, partial(read_frames_file, bad_record.hash, out_of_order)),
    )
    return cases


def _video_cases() -> dict[str, dict[str, Any]]:
    return {**_video_frames_cases(), **_video_match_cases(), **_video_list_cases()}


# --------------------------------------------------------------------------------------
# README
# --------------------------------------------------------------------------------------

CHECKS = {
    "canonicalize": "parse `input.text` with any JSON parser, encode with RFC 8785: "
    "`expected.canonical_text` (UTF-8; also `canonical_hex`).",
    "keyid": "`expected.keyid` = hex SHA-256 of the 32 bytes in `input.public_hex`; "
    "`spki_der_hex` is the SubjectPublicKeyInfo DER that `files.pem` holds.",
    "note_key_id": "the 4-byte C2SP key ids of `input.name` with that key for algorithm "
    "0x01 and 0x04, with the hashed preimages.",
    "note_signature": "Ed25519 over `input.checkpoint_text` with the key of `seed_label`; "
    "`expected.line` is the signature line.",
    "cosignature": "Ed25519 over `expected.signed_message_text`; `expected.line` carries "
    "the key id, `input.time` as a big-endian u64, and the signature.",
    "leaf_hash": "SHA-256(0x00 ‖ bytes of `files.header`); equals `prev` in `files.next`.",
    "merkle_root": "RFC 9162 roots over the leaf hashes of `files.headers` for sizes 0..n.",
    "state_digest": "count and SHA-256 of the sorted, concatenated raw hashes.",
    "body": "the body file for `input` (removals, additions), its SHA-256 and length.",
    "snapshot": "sha256sum, count and length of `files.snapshot`, equal to the "
    "`result_state` of `files.header`.",
    "ack": "the ack bytes, its sidecar, and its co-signature line.",
    "verify_ack_periods": "verify the ack by the node's key periods `input.periods` "
    "(`public_hex`, `first_seq`, `last_seq`; null: open), choosing the key by the sidecar's "
    "key ids: `expected.seq`, or it is refused.",
    "sync_repo": "pin `input.roots[0]`, accept the other roots in order, then verify and "
    "apply every list of `repo/` from an empty state at `input.now`.",
    "sync_from_snapshot": "as `sync_repo` for one list, but start from the snapshot of "
    "`input.snapshot_version` and apply only the later bodies.",
    "sync_incremental": "sync one list with `first` (its own clock, roots and checkpoint), "
    "keep the trust record and state, then update with `second`.",
    "body_of_type": "the body file for `input` (removals, additions) of that hash type, its "
    "SHA-256 and length, and the state digest of a list holding the additions.",
    "sync_new_lists": "trust `input.roots` then `input.next_roots`; for each list of "
    "`input.lists`, verify its checkpoint, headers and bodies from an empty state: "
    "`expected.lists` (the state's bytes are `snapshot_2_hex`).",
    "parse_document": "parse `input.text` as a `input.kind` (root, header or signature "
    "sidecar): it re-encodes to `expected.canonical_text`, or it is refused.",
    "parse_bodies": "each of `input.body_texts` is refused as a body of `input.hash_type`.",
    "add_header": "with the roots and clock given, start an update of `input.list` from "
    "nothing with `files.checkpoint`, add headers 1..`version`−1 from `repo/`, then the "
    "given header and sidecar: must fail.",
    "update_root": "trust `input.roots`, present the given root and sidecar as the next "
    "version: must fail.",
    "sync_after_roots": "trust `input.roots`, then accept each of `input.next_roots` "
    "(`root_text`, `sig_text`) as the next version; then verify and apply every list of "
    "`repo/` from an empty state with its `repo/` checkpoint, as `sync_repo`.",
    "add_header_after_roots": "as `add_header`, after also accepting each of "
    "`input.next_roots` (`root_text`, `sig_text`) as the next root: must fail.",
    "pin_root": "pin the given root and sidecar as `input.file` (so its version must be "
    "that file's N), with the SHA-256 pin `pinned_sha256`: must fail.",
    "begin_update": "start an update with the given checkpoint (after first applying "
    "the list's `repo/` checkpoint if `after_sync`): must fail.",
    "verify_checkpoint": "pin `input.roots[0]` and accept the other roots (or pin the "
    "root in `input.root_text`/`root_sig_text`), apply the list's `repo/` checkpoint first "
    "if `after_sync`, then start an update of `input.list` with `input.checkpoint_text` at "
    "`input.now`: `expected` is the checkpoint's size, root hash and time T (§13.2 step 6), "
    "or `error` the class it fails with.",
    "sync_list": "start an update with the given checkpoint and add every header "
    "from `repo/`: must fail.",
    "add_body": "verify every header against `files.checkpoint`, then add the given body "
    "as `version`'s: must fail.",
    "add_snapshot": "verify every header against `files.checkpoint`, then add the given "
    "snapshot as `version`'s: must fail.",
    "check_base": "verify headers and bodies, then apply them to a local state holding "
    "`local_hashes_hex`: must fail.",
    "parse_body": "parse `input.body_text` as a body of `hash_type`: must fail.",
    "missing_file": "verify `input.list` from `repo/` as an auditor does — the checkpoint "
    "(`input.checkpoint_text` if given), headers 1..size and their sidecars, every body, "
    "a replay from empty, then every due snapshot (§8) — as if the file `input.missing` "
    "were found at no source: must fail, naming that file.",
    "inline_update": "trust `input.roots` at `input.now`; stage `checkpoint`: start an "
    "update of `input.list` from nothing with `checkpoint_text`; `headers`: add each of "
    "`input.headers` in order; `snapshot`: if `input.snapshot` is given, add its bytes as "
    "the snapshot of its `version` (the new base); `bodies`: add `input.bodies` (by "
    "version) for every version after the base; `apply`: apply them to the base (the "
    "snapshot's state, or the empty state). `expected` is the result; a negative case "
    "fails at stage `fails_at` with `error`, every stage before it passing.",
    "parse_canonical": "each of `input.texts` must be refused by a strict canonical parser.",
    "list_id": "each of `input.list_ids` must be refused.",
    "verify_ack": "verify the ack and sidecar against the enrolled `node_public_hex` "
    "and hub name: must fail.",
    "accept_ack": "verify the ack and sidecar against the enrolled `node_public_hex` "
    "and hub name: must succeed; `expected` is what the parsed ack holds (`seq`, the "
    "unknown top-level members it preserves as `extra`, its per-hash counters).",
    "verify_provenance": "the provenance document `input.provenance_text` that header "
    "`input.header_text` (already verified) names, checked by §7.5 against the root "
    "`input.root_text` and the version's body `input.body_text` (a pdq list): accepted "
    "(`expected.origins`: each origin's kind) or refused with `error`. The positive cases "
    "also give `input.upstream` and `input.node_public_hex`: what an auditor checks "
    "beyond the version (an `exchange` origin's record is checked with the exchange).",
    "verify_contribution": "verify `input.text` under the sidecar `input.sig_text` and "
    "`input.node_public_hex` (PROTOCOL.md §10.8), then parse it: accepted (`expected`: its "
    "`seq`, hashes and review) or refused with `error`.",
    "opinions_summary": "the opinion summary `input.summary_text` that header "
    "`input.header_text` (already verified) names, checked by §10.7 against the root "
    "`input.root_text` and the state `input.state_text` at the header's version: it must "
    "be accepted (`expected`: its entries, those with an open dispute (`disputed`) and a "
    "dismissed one (`dismissed`), the "
    "confirming and disputing platforms per entry, and its SHA-256), or refused with "
    "`error`. A positive case also gives the signed `acks` (verify each under its "
    "`node_public_hex` and `hub_name`, §10.4): folded over the summary's cut (§10.7) they "
    "give exactly its voices.",
    "entries_record": "each of `input.records` (its fields; `expires` null: never) written "
    "as an entry record of a list of `hash_type`: `expected.lines`, in order; each line "
    "parses back to the same fields.",
    "entries_body": "the `hashhub.body.v2` body of an entries list of `hash_type` for "
    "`input.removes` (`record`, `reason`) and `input.adds`, given in any order: "
    "`expected.text`, its SHA-256, length and counts; it passes the body rules, the "
    "`vocabulary` and the times against `created`.",
    "entries_state_digest": "the state of an entries list holding `input.records` (any "
    "order): the snapshot `expected.snapshot_text` (records ascending, each with its LF), "
    "its `count` of records and `sha256`.",
    "entries_sync": "pin the root in `input.root_text`/`root_sig_text` as `root/1.json` at "
    "`input.now`; "
    "stage `checkpoint`: start an update of `input.list` from nothing with "
    "`checkpoint_text`; `headers`: add each of `input.headers` in order; `snapshot`: if "
    "`input.base` is a version, add `input.snapshots[base]` as its snapshot (the new base); "
    "`bodies`: add `input.bodies` (by version) for every version after the base, each "
    "checked against the vocabulary of the root its header names and its `created`; "
    "`apply`: apply them to the base (or the empty state), checking every "
    "`result_state`. `expected`: the version, state digest, records and the entries "
    "expired at `now`; a negative case fails at stage `fails_at` with `error`, every stage "
    "before it passing.",
    "entries_body_rules": "parse `input.body_text` as a `hashhub.body.v2` body of "
    "`hash_type`, check its additions' terms against `input.vocabulary` and its times "
    "against `input.created` (the header's): must fail. `input.valid_body_text`, which "
    "differs in the one thing, passes.",
    "entries_apply": "`input.body_text` passes every check of `entries_body_rules`; "
    "applied to the state holding `input.state_records` it must fail. "
    "`input.valid_body_text` applies.",
    "entries_update_root": "pin the root in `input.root_text`/`root_sig_text` as `root/1.json` at "
    "`input.now`, then present `next_root_text`/`next_sig_text` as its successor: "
    "`expected` (the root version and its vocabulary), or it is refused with `error`.",
    "video_frames": "read the frames string (PROTOCOL.md §6.3) `input.frames_hex` — or, "
    "where `input.run` is given instead, `run.count` frames each of PDQ hash "
    "`run.pdq_hex` and quality `run.quality`, the n-th (from 0) at n × `run.step_ms` ms: "
    "`expected` (its `count`, its `frames` in order and its `sha256`, the hash of its "
    "`vpdq` record), or it is refused with `error`. A negative case also gives the valid "
    "string it differs from in one thing (`valid_frames_hex` or `valid_run`).",
    "video_frames_file": "read `input.file_hex` (or the frames string `input.run` describes, "
    "as for `video_frames`) as the frames file of the record `input.record` (an entry record "
    "of the vpdq list `input.list`) by PROTOCOL.md §6.5: `expected` (the file's `path`, its "
    "frames' `count` and `sha256`, the record's hash), or it is refused with `error`. A "
    "negative case also gives `valid_file_hex`, a file that passes.",
    "video_match": "read `input.query_hex` and `input.listed_hex` as frames strings "
    "(§6.3) and match the query against the listed video (§6.4): `expected.query_share` "
    "and `listed_share` as [agreeing, distinct frames], and whether it is a `match`.",
}


NODE_ROLES = {"node-1": f"node `{NODE_ID}` (acks)", "node-2": "an unenrolled node (forged ack)"}


def _roles_of(label: str) -> list[str]:
    return [
        f"{role} v{version}"
        for version, table in ((1, ROOT1_ROLES), (2, ROOT2_ROLES))
        for role, labels in table.items()
        if label in labels
    ]


def _readme(repo: _Repo, cases: Mapping[str, Mapping[str, Any]]) -> bytes:
    keys = repo.keys
    key_rows = "\n".join(
        f"| `{label}` | `{key.keyid[:16]}…` | "
        + (", ".join(_roles_of(label)) or NODE_ROLES[label])
        + " |"
        for label, key in keys.items()
    )
    case_rows = "\n".join(
        f"| `{name}.json` | `{case['check']}` | "
        + (f"`{case['error']}`" if "error" in case else "values")
        + " |"
        for name, case in cases.items()
    )
    check_rows = "\n".join(f"| `{name}` | {text} |" for name, text in CHECKS.items())
    timeline = "\n".join(f"    {line}" for line in repo.timeline)
    text = f"""\
# hashhub protocol test vectors

Generated by `scripts/make_vectors.py` from fixed keys, a fixed clock and the
project's own `protocol` code. **Do not edit by hand**: change the generator and
run it again. Every file here is deterministic (Ed25519 signatures are), so the
vectors only change when the wire format does. PROTOCOL.md is the spec they
illustrate; its worked example quotes these files.

## Layout

| path | what |
| --- | --- |
| `repo/` | a published tree exactly as a hub lays it out (`root/`, `lists/<id>/…`) |
| `keys/` | public keys: `<label>.pem` (SPKI, for `openssl`), `<label>.hex` (raw), `keys.json` |
| `cases/` | one JSON file per isolated case, with the expected values or the expected error class |

`keys/keys.json` maps each key label to its key id, raw public key and roles.
`keys/SEEDS.txt` holds the **private seeds** of these **public test keys**, so
other implementations can reproduce every signature. Nothing they sign proves
anything; never enrol, pin or trust them.

## The repository

Hub name `{HUB_NAME}`, two lists (`{PDQ}`: pdq, 32-byte hashes; `{MD5}`: md5,
16-byte hashes), both with `snapshot_every` = 2. The pdq "hashes" are SHA-256 of
labels, not real PDQ hashes; the md5 ones are MD5 of labels. History:

{timeline}

A verifier of `repo/` pins `root/1.json` and uses the clock
`{_time(VERIFY_AT)}` (`cases/repo-sync.json` holds the expected results).
There is no `root/3.json`: the root walk stops at v2.

| key | key id | roles |
| --- | --- | --- |
{key_rows}

## Cases

Each file is `{{"description", "check", "input", "files"?, "expected" | "error"}}`.
`files` names other files of this directory (paths relative to it). In `input`,
a `*_text` value is the exact bytes as UTF-8 text, `*_hex` is bytes in hex,
times are RFC 3339 UTC, and `roots` lists root files to trust in order (the
first pinned, each next accepted as a successor). `error` is the name of the
`protocol.errors` class a conforming verifier raises (see PROTOCOL.md, Errors);
another implementation maps it to its own error kinds.

| check | what to do |
| --- | --- |
{check_rows}

| file | check | outcome |
| --- | --- | --- |
{case_rows}

## Checking

    python scripts/make_vectors.py --check     # exit 1 and a list if any file differs
    pytest tests/protocol/test_vectors.py      # same, plus re-verification of every case

By hand, with `openssl` (3.0 or later), `jq`, `base64` and `sha256sum`, from this
directory:

    # the delta role's signature over header v1 of {MD5}
    jq -r '.signatures[0].sig' repo/lists/{MD5}/delta/1.json.sig | base64 -d > /tmp/1.sig.bin
    openssl pkeyutl -verify -pubin -inkey keys/delta.pem -rawin \\
        -in repo/lists/{MD5}/delta/1.json -sigfile /tmp/1.sig.bin

    # a snapshot's SHA-256 is the result_state its header signs
    sha256sum repo/lists/{PDQ}/snapshot/4.bin
    jq -r .result_state.sha256 repo/lists/{PDQ}/delta/4.json
"""
    return text.encode("utf-8")


# --------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------


def build_vectors() -> dict[str, bytes]:
    """Every vector file as ``{path relative to docs/vectors: bytes}``, sorted by path."""
    keys = _keys()
    repo = _build_repo(keys)
    out: dict[str, bytes] = {f"repo/{path}": data for path, data in repo.files.items()}
    out.update(_key_files(keys, repo))
    cases = {
        **_positive_cases(repo),
        **_negative_cases(repo),
        **_header_rule_cases(repo),
        **_hash_type_cases(repo),
        **_document_rule_cases(repo),
        **_online_rotation_cases(repo),
        **_all_hash_types_cases(repo),
        **_ack_rule_cases(repo),
        **_root_rule_cases(repo),
        **_checkpoint_rule_cases(repo),
        **_missing_file_cases(repo),
        **_entries_cases(repo),
        **_opinion_cases(repo.keys),
        **_upstream_cases(),
        **_contribution_cases(repo),
        **_provenance_cases(repo.keys),
        **_provenance_exchange_cases(repo.keys),
        **_video_cases(),
    }
    for name, case in cases.items():
        out[f"cases/{name}.json"] = _dump(case)
    out["README.md"] = _readme(repo, cases)
    return dict(sorted(out.items()))


def write_vectors(out_dir: Path, vectors: Mapping[str, bytes]) -> None:
    """Write ``vectors`` under ``out_dir``, removing stale generated files."""
    for sub in GENERATED_DIRS:
        for path in sorted((out_dir / sub).rglob("*"), reverse=True):
            rel = path.relative_to(out_dir).as_posix()
            if path.is_file() and rel not in vectors:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
    for rel, data in vectors.items():
        target = out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_bytes() != data:
            target.write_bytes(data)


def _on_disk(out_dir: Path) -> set[str]:
    found = {"README.md"} if (out_dir / "README.md").is_file() else set()
    for sub in GENERATED_DIRS:
        found |= {
            p.relative_to(out_dir).as_posix() for p in (out_dir / sub).rglob("*") if p.is_file()
        }
    return found


def compare(expected_dir: Path, actual_dir: Path) -> list[str]:
    """Differences between two vector directories, one line each (empty when equal)."""
    want, have = _on_disk(expected_dir), _on_disk(actual_dir)
    problems = [f"missing: {rel}" for rel in sorted(want - have)]
    problems += [f"extra:   {rel}" for rel in sorted(have - want)]
    problems += [
        f"differs: {rel}"
        for rel in sorted(want & have)
        if not filecmp.cmp(expected_dir / rel, actual_dir / rel, shallow=False)
    ]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("out_dir", nargs="?", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    vectors = build_vectors()
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            write_vectors(Path(tmp), vectors)
            problems = compare(Path(tmp), args.out_dir)
        if problems:
            print(f"{args.out_dir}: vectors differ from the generator's output:", file=sys.stderr)
            for line in problems:
                print(f"  {line}", file=sys.stderr)
            print("run: python scripts/make_vectors.py", file=sys.stderr)
            return 1
        print(f"{args.out_dir}: {len(vectors)} files, all match")
        return 0
    write_vectors(args.out_dir, vectors)
    print(f"wrote {len(vectors)} files to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
