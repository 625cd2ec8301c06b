"""hashhub's protocol: formats, canonical encoding, keys and signatures, the Merkle log,
checkpoints, state digests, acks, and the trust rules every verifier applies.

Pure and synchronous: no network, no asyncio, no database. ``hub`` and ``node``
are the edges that fetch and store bytes; this package decides what they may
accept. ``keyfile`` is the one module that touches the file system (key files).
PROTOCOL.md is the normative description of everything here.
"""

from protocol._fields import b64decode, b64encode, format_time, parse_time
from protocol.ack import (
    ACK_LAST_SEQ_HEADER,
    ACK_REFUSALS,
    ACK_SIGNATURE_HEADER,
    Ack,
    AppliedVersion,
    Counts,
    NodeKeyPeriod,
    sign_ack,
    verify_ack,
    verify_ack_by_periods,
)
from protocol.canonical import canonicalize, parse_canonical
from protocol.checkpoint import Checkpoint, NoteSignature, SignedCheckpoint, cosign, sign_note
from protocol.counters import MAX_TOTAL, clamp_total, counter_growth, counter_rows
from protocol.delta import GENESIS_PREV, BodyRef, DeltaBody, DeltaHeader
from protocol.entries import (
    REASONS,
    EntriesBody,
    Entry,
    EntryState,
    Removal,
    Vocabulary,
    VocabularyError,
)
from protocol.errors import (
    BodyRuleError,
    ConsistencyError,
    EquivocationError,
    ExpiredError,
    FreezeError,
    HashhubError,
    InvalidListIdError,
    KeyFileError,
    LimitError,
    MalformedError,
    MissingFileError,
    ProofError,
    ProtocolError,
    RollbackError,
    SignatureError,
    StateMismatchError,
    UnknownListError,
    WrongTypeError,
)
from protocol.keys import PublicKey, SignatureSidecar, SigningKey, keyid_of, sign_bytes
from protocol.layout import (
    Limits,
    body_path,
    checkpoint_path,
    header_path,
    root_path,
    sig_path,
    snapshot_path,
)
from protocol.lists import HASH_TYPES, HashType, validate_list_id
from protocol.merkle import CompactRange
from protocol.publisher import ListHead, Publication, Publisher, root_files
from protocol.root import ListSpec, Policy, Role, Root
from protocol.state import ListState, StateDigest
from protocol.trust import ListTrust, ListUpdate, TrustedHub, VerifiedCheckpoint

__all__ = [
    "ACK_LAST_SEQ_HEADER",
    "ACK_REFUSALS",
    "ACK_SIGNATURE_HEADER",
    "GENESIS_PREV",
    "HASH_TYPES",
    "MAX_TOTAL",
    "REASONS",
    "Ack",
    "AppliedVersion",
    "BodyRef",
    "BodyRuleError",
    "Checkpoint",
    "CompactRange",
    "ConsistencyError",
    "Counts",
    "DeltaBody",
    "DeltaHeader",
    "EntriesBody",
    "Entry",
    "EntryState",
    "EquivocationError",
    "ExpiredError",
    "FreezeError",
    "HashType",
    "HashhubError",
    "InvalidListIdError",
    "KeyFileError",
    "LimitError",
    "Limits",
    "ListHead",
    "ListSpec",
    "ListState",
    "ListTrust",
    "ListUpdate",
    "MalformedError",
    "MissingFileError",
    "NodeKeyPeriod",
    "NoteSignature",
    "Policy",
    "ProofError",
    "ProtocolError",
    "PublicKey",
    "Publication",
    "Publisher",
    "Removal",
    "Role",
    "RollbackError",
    "Root",
    "SignatureError",
    "SignatureSidecar",
    "SignedCheckpoint",
    "SigningKey",
    "StateDigest",
    "StateMismatchError",
    "TrustedHub",
    "UnknownListError",
    "VerifiedCheckpoint",
    "Vocabulary",
    "VocabularyError",
    "WrongTypeError",
    "b64decode",
    "b64encode",
    "body_path",
    "canonicalize",
    "checkpoint_path",
    "clamp_total",
    "cosign",
    "counter_growth",
    "counter_rows",
    "format_time",
    "header_path",
    "keyid_of",
    "parse_canonical",
    "parse_time",
    "root_files",
    "root_path",
    "sig_path",
    "sign_ack",
    "sign_bytes",
    "sign_note",
    "snapshot_path",
    "validate_list_id",
    "verify_ack",
    "verify_ack_by_periods",
]
