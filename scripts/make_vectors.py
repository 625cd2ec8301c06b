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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocol import (
    Ack,
    AppliedVersion,
    BodyRuleError,
    Checkpoint,
    ConsistencyError,
    Counts,
    DeltaBody,
    DeltaHeader,
    EquivocationError,
    ExpiredError,
    FreezeError,
    InvalidListIdError,
    ListHead,
    ListSpec,
    ListState,
    ListTrust,
    ListUpdate,
    MalformedError,
    Policy,
    ProtocolError,
    Publisher,
    Role,
    RollbackError,
    Root,
    SignatureError,
    SignatureSidecar,
    SigningKey,
    StateMismatchError,
    TrustedHub,
    UnknownListError,
    WrongTypeError,
    body_path,
    canonicalize,
    checkpoint_path,
    cosign,
    header_path,
    parse_canonical,
    root_files,
    sign_ack,
    sign_bytes,
    sign_note,
    snapshot_path,
    validate_list_id,
    verify_ack,
)
from protocol.checkpoint import ALG_COSIGNATURE_V1, ALG_ED25519, note_key_id
from protocol.keys import Signature
from protocol.merkle import EMPTY_ROOT, CompactRange

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
    heads: dict[str, ListHead] = field(default_factory=dict)
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
    ) -> None:
        def run() -> None:
            upd = hub().begin_update(ListTrust(list_id), files[checkpoint_path(list_id)])
            _headers(upd, files, list_id, version - 1)
            upd.add_header(data, sig)

        cases[name] = _case(
            description,
            "add_header",
            input={
                "now": now,
                "roots": roots12,
                "list": list_id,
                "version": version,
                "header_text": _text(data),
                "sig_text": _text(sig),
            },
            files={"checkpoint": f"repo/{checkpoint_path(list_id)}"},
            error=_expect(error, run),
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
    )
    header_case(
        "neg-mix-and-match",
        "Header v1 of demo-pdq with its valid sidecar presented as header v1 of demo-md5.",
        MD5,
        1,
        files[header_path(PDQ, 1)],
        files[header_path(PDQ, 1) + ".sig"],
        ConsistencyError,
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
        name: str, description: str, data: bytes, sig: bytes, error: type[ProtocolError]
    ) -> None:
        def run() -> None:
            _hub(files, VERIFY_AT, versions=[1]).update_root(data, sig)

        cases[name] = _case(
            description,
            "update_root",
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

    root_case(
        "neg-root-old-threshold",
        "Root v2 signed by root-a and root-d only: the new root role is satisfied (2 of a, b, "
        "d) but the old one is not (1 of a, b, c; threshold 2).",
        root2,
        sidecar(["root-a", "root-d"]),
        SignatureError,
    )
    root_case(
        "neg-root-new-threshold",
        "Root v2 signed by root-a and root-c only: the old root role is satisfied but the new "
        "one is not (root-c is no longer in it), so the new keys are not proven usable.",
        root2,
        sidecar(["root-a", "root-c"]),
        SignatureError,
    )
    root_case(
        "neg-root-duplicate-signature",
        "Root v2 with root-a's valid signature listed twice plus root-d: a key counts once, "
        "so the old role has one valid key of the two required.",
        root2,
        sidecar(["root-a", "root-a", "root-d"]),
        SignatureError,
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
    )
    max_age = repo.root2.policy.max_checkpoint_age
    begin_case(
        "neg-stale-checkpoint",
        "The repository's demo-md5 checkpoint checked one second after max_checkpoint_age "
        "has passed since its timestamp co-signature (a freeze).",
        _at(6) + timedelta(seconds=max_age + 1),
        repo_cp,
        FreezeError,
    )
    skew = repo.root2.policy.max_clock_skew
    begin_case(
        "neg-future-checkpoint",
        "The repository's demo-md5 checkpoint checked by a clock more than max_clock_skew "
        "behind its co-signature time.",
        _at(6) - timedelta(seconds=skew + 1),
        repo_cp,
        FreezeError,
    )
    begin_case(
        "neg-checkpoint-rollback",
        "After applying demo-md5 v3, the older (validly signed, still fresh) checkpoint of "
        "size 2 is presented.",
        VERIFY_AT,
        repo.md5_v2_checkpoint,
        RollbackError,
        after_sync=True,
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
    )
    unknown = pub2.checkpoint("demo-sha256", 1, hashlib.sha256(b"x").digest(), _at(6))
    begin_case(
        "neg-unknown-list",
        "A validly signed checkpoint for demo-sha256, a list root v2 does not declare.",
        VERIFY_AT,
        unknown,
        UnknownListError,
        list_id="demo-sha256",
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
    "sync_repo": "pin `input.roots[0]`, accept the other roots in order, then verify and "
    "apply every list of `repo/` from an empty state at `input.now`.",
    "sync_from_snapshot": "as `sync_repo` for one list, but start from the snapshot of "
    "`input.snapshot_version` and apply only the later bodies.",
    "sync_incremental": "sync one list with `first` (its own clock, roots and checkpoint), "
    "keep the trust record and state, then update with `second`.",
    "add_header": "with the roots and clock given, start an update of `input.list` from "
    "nothing with `files.checkpoint`, add headers 1..`version`−1 from `repo/`, then the "
    "given header and sidecar: must fail.",
    "update_root": "trust `input.roots`, present the given root and sidecar as the next "
    "version: must fail.",
    "begin_update": "start an update with the given checkpoint (after first applying "
    "the list's `repo/` checkpoint if `after_sync`): must fail.",
    "sync_list": "start an update with the given checkpoint and add every header "
    "from `repo/`: must fail.",
    "add_body": "verify every header against `files.checkpoint`, then add the given body "
    "as `version`'s: must fail.",
    "add_snapshot": "verify every header against `files.checkpoint`, then add the given "
    "snapshot as `version`'s: must fail.",
    "check_base": "verify headers and bodies, then apply them to a local state holding "
    "`local_hashes_hex`: must fail.",
    "parse_body": "parse `input.body_text` as a body of `hash_type`: must fail.",
    "parse_canonical": "each of `input.texts` must be refused by a strict canonical parser.",
    "list_id": "each of `input.list_ids` must be refused.",
    "verify_ack": "verify the ack and sidecar against the enrolled `node_public_hex` "
    "and hub name: must fail.",
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
    cases = {**_positive_cases(repo), **_negative_cases(repo)}
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
