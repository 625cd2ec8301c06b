"""Checkpoints: C2SP signed notes over a list's Merkle tree head.

``lists/<id>/checkpoint`` is a `signed note <https://c2sp.org/signed-note>`_ whose
text is a `tlog checkpoint <https://c2sp.org/tlog-checkpoint>`_::

    <hub name>/lists/<id>          origin
    <size>                         tree size = the list's latest version
    <base64 root hash>             RFC 9162 root over the headers' leaf hashes

    — <origin> <base64(key id ‖ Ed25519 signature)>                       checkpoint role
    — <hub name>/timestamp <base64(key id ‖ u64 time ‖ Ed25519 signature)>  timestamp role

The first kind of line is a plain Ed25519 note signature (key id =
SHA-256(name ‖ "\\n" ‖ 0x01 ‖ key)[:4]); the second a
`cosignature/v1 <https://c2sp.org/tlog-cosignature>`_ (0x04, signed message
``cosignature/v1\\ntime <t>\\n`` ‖ note text). The co-signature's time is what makes
a checkpoint fresh: the hub re-issues it on a schedule, so a replayed old
checkpoint (a freeze) is detectable even when the list has not changed. Nodes
co-sign the checkpoints they apply in the same format, which makes every node a
witness.

Parsing follows the signed-note rules and is stricter only where a second byte
string could carry the same meaning: no control character but LF anywhere, the text
ends at the *last* blank line, canonical decimal size and canonical base64, at most
``MAX_SIGNATURE_LINES`` signature lines, and every signature line well formed (as
golang.org/x/mod/sumdb/note does, a malformed line rejects the note even when no
verifier knows its key). Which lines count is decided by the verifier
(``protocol.trust``): well-formed lines of unknown keys are ignored, and a line of a
known key that does not verify rejects the whole note.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime

from protocol._fields import b64decode, b64encode
from protocol.errors import MalformedError, SignatureError
from protocol.keys import PublicKey, SigningKey
from protocol.merkle import HASH_SIZE

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "MAX_SIGNATURE_LINES",
    "Checkpoint",
    "NoteSignature",
    "SignedCheckpoint",
    "cosign",
    "cosignature_time",
    "note_key_id",
    "sign_note",
    "valid_key_name",
    "verify_cosignature",
    "verify_note_signature",
]

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
MAX_SIGNATURE_LINES = 64
_EM_DASH = "\u2014"
_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
"""Every code point below U+0020 except LF: none may appear anywhere in a note."""
_SPACES = frozenset("\t\n\v\f\r \x85\xa0")
"""The non-``Z*`` code points Go's ``unicode.IsSpace`` counts as spaces."""


def valid_key_name(name: str) -> bool:
    """A signed-note key name: non-empty, no ``+``, no Unicode space.

    "Space" is Go's ``unicode.IsSpace`` (the reference implementation of signed notes):
    TAB, LF, VT, FF, CR, SPACE, U+0085, U+00A0 and general categories Zs, Zl, Zp.
    """
    return bool(name) and not any(
        c == "+" or c in _SPACES or unicodedata.category(c) in ("Zs", "Zl", "Zp") for c in name
    )


def _check_line_chars(line: str, what: str) -> None:
    if not line:
        raise MalformedError(f"checkpoint: {what} must not be empty")
    bad = _CONTROL.search(line)
    if bad:
        raise MalformedError(f"checkpoint: control character U+{ord(bad.group()):04X} in {what}")
    if "\n" in line:
        raise MalformedError(f"checkpoint: {what} must be one line")


def note_key_id(name: str, alg: int, key: PublicKey) -> bytes:
    """The 4-byte key id of a note verifier: SHA-256(name ‖ "\\n" ‖ alg ‖ key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + key.raw).digest()[:4]


@dataclass(frozen=True)
class Checkpoint:
    """The note text: origin, tree size, root hash, and optional extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # C2SP tlog-checkpoint: the origin and any extension line are non-empty lines;
        # signed-note: no control character but LF. Nothing more is asked of them, so
        # the verdict never depends on a Unicode database's idea of "printable".
        _check_line_chars(self.origin, "origin")
        if not 0 <= self.size < 2**63:
            raise MalformedError(f"checkpoint: size {self.size} out of range")
        if len(self.root_hash) != HASH_SIZE:
            raise MalformedError("checkpoint: root hash must be 32 bytes")
        for ext in self.extensions:
            _check_line_chars(ext, "extension line")

    def body(self) -> bytes:
        """The exact note text that every signature line covers (ends in a newline)."""
        lines = [self.origin, str(self.size), b64encode(self.root_hash), *self.extensions]
        return ("\n".join(lines) + "\n").encode("utf-8")

    @classmethod
    def from_body(cls, text: str) -> Checkpoint:
        if not text.endswith("\n"):
            raise MalformedError("checkpoint: text must end in a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise MalformedError("checkpoint: needs origin, size and root hash lines")
        if "" in lines:
            raise MalformedError("checkpoint: empty line in the note text")
        origin, size, root = lines[0], lines[1], lines[2]
        if not _SIZE.fullmatch(size):
            raise MalformedError(f"checkpoint: size {size[:24]!r} is not a canonical decimal")
        return cls(
            origin,
            int(size),
            b64decode(root, "checkpoint: root hash", length=HASH_SIZE),
            tuple(lines[3:]),
        )


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: ``— <name> base64(key id ‖ signature bytes)``."""

    name: str
    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        if not valid_key_name(self.name) or _CONTROL.search(self.name):
            raise MalformedError(f"note signature: invalid key name {self.name[:64]!r}")
        if len(self.key_id) != 4:
            raise MalformedError("note signature: key id must be 4 bytes")

    def line(self) -> str:
        return f"{_EM_DASH} {self.name} {b64encode(self.key_id + self.signature)}\n"

    @classmethod
    def from_line(cls, line: str) -> NoteSignature:
        """Parse one line (without its LF): em dash, space, key name, space, base64.

        The name ends at the first space (a name holds none); the rest must be
        canonical standard base64 of at least five bytes (a key id and a signature).
        """
        if not line.startswith(_EM_DASH + " "):
            raise MalformedError(f"note: malformed signature line {line[:80]!r}")
        name, _, blob_text = line[2:].partition(" ")
        if not valid_key_name(name):
            raise MalformedError(f"note: invalid key name in signature line {line[:80]!r}")
        if not blob_text.isascii():
            raise MalformedError("note: signature line is not base64")
        try:
            blob = base64.b64decode(blob_text, validate=True)
        except (binascii.Error, ValueError) as e:
            raise MalformedError("note: signature line is not base64") from e
        if len(blob) < 5:
            raise MalformedError("note: signature line too short")
        if base64.b64encode(blob).decode("ascii") != blob_text:
            raise MalformedError("note: signature line is not canonical base64")
        return cls(name, blob[:4], blob[4:])


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint and its signature lines, as one file."""

    checkpoint: Checkpoint
    signatures: tuple[NoteSignature, ...]

    def to_bytes(self) -> bytes:
        return self.checkpoint.body() + b"\n" + "".join(s.line() for s in self.signatures).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> SignedCheckpoint:
        """Parse a checkpoint file strictly. Signatures are not checked here."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise MalformedError("checkpoint: not UTF-8") from e
        bad = _CONTROL.search(text)
        if bad:
            raise MalformedError(f"checkpoint: control character U+{ord(bad.group()):04X} in note")
        # The text ends at the *last* blank line (signed-note): a blank line earlier
        # belongs to the text, where the checkpoint format then refuses it.
        split = text.rfind("\n\n")
        if split < 0:
            raise MalformedError("checkpoint: no blank line between text and signatures")
        body, sig_block = text[: split + 1], text[split + 2 :]
        if not sig_block:
            raise MalformedError("checkpoint: no signature line after the last blank line")
        if not sig_block.endswith("\n"):
            raise MalformedError("checkpoint: signature block must end in a newline")
        lines = sig_block[:-1].split("\n")
        if len(lines) > MAX_SIGNATURE_LINES:
            raise MalformedError(f"checkpoint: more than {MAX_SIGNATURE_LINES} signature lines")
        signatures = tuple(NoteSignature.from_line(line) for line in lines)
        note = cls(Checkpoint.from_body(body), signatures)
        if note.to_bytes() != data:
            raise MalformedError("checkpoint: not in canonical form")
        return note


def sign_note(checkpoint: Checkpoint, key: SigningKey, name: str) -> NoteSignature:
    """An Ed25519 note signature line (algorithm 0x01) over the checkpoint text."""
    return NoteSignature(
        name, note_key_id(name, ALG_ED25519, key.public), key.sign(checkpoint.body())
    )


def _cosigned_message(checkpoint: Checkpoint, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n".encode() + checkpoint.body()


def cosign(checkpoint: Checkpoint, key: SigningKey, name: str, moment: datetime) -> NoteSignature:
    """A ``cosignature/v1`` line: a statement that this was the newest head at ``moment``."""
    if moment.tzinfo is None:
        raise MalformedError("cosign: naive datetime")
    timestamp = int(moment.timestamp())
    if not 0 <= timestamp < 2**63:
        raise MalformedError("cosign: timestamp out of range")
    signature = key.sign(_cosigned_message(checkpoint, timestamp))
    return NoteSignature(
        name,
        note_key_id(name, ALG_COSIGNATURE_V1, key.public),
        struct.pack(">Q", timestamp) + signature,
    )


def verify_note_signature(checkpoint: Checkpoint, sig: NoteSignature, key: PublicKey) -> bool:
    """True if ``sig`` is a valid 0x01 note signature by ``key`` under ``sig.name``."""
    if sig.key_id != note_key_id(sig.name, ALG_ED25519, key):
        return False
    return key.verify(sig.signature, checkpoint.body())


def verify_cosignature(checkpoint: Checkpoint, sig: NoteSignature, key: PublicKey) -> datetime:
    """Verify a ``cosignature/v1`` line by ``key`` and return the time it states.

    Raises:
        SignatureError: wrong key id, wrong length, or an invalid signature.
    """
    if sig.key_id != note_key_id(sig.name, ALG_COSIGNATURE_V1, key):
        raise SignatureError(f"cosignature by {sig.name}: key id does not match the key")
    moment = cosignature_time(sig)
    timestamp = int(moment.timestamp())
    if not key.verify(sig.signature[8:], _cosigned_message(checkpoint, timestamp)):
        raise SignatureError(f"cosignature by {sig.name}: invalid signature")
    return moment


def cosignature_time(sig: NoteSignature) -> datetime:
    """The time a ``cosignature/v1`` line states, without checking its signature.

    For a signer reading back its own line (the hub never co-signs before it);
    anyone else uses ``verify_cosignature``.

    Raises:
        SignatureError: not 72 bytes after the key id, or a time out of range.
    """
    if len(sig.signature) != 8 + 64:
        raise SignatureError(f"cosignature by {sig.name}: expected 72 bytes after the key id")
    (timestamp,) = struct.unpack(">Q", sig.signature[:8])
    if timestamp >= 2**63:
        raise SignatureError(f"cosignature by {sig.name}: timestamp out of range")
    try:
        return datetime.fromtimestamp(timestamp, UTC)
    except (OverflowError, OSError, ValueError) as e:
        raise SignatureError(f"cosignature by {sig.name}: timestamp out of range") from e
