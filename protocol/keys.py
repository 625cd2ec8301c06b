"""Ed25519 keys, key ids, signature sidecars and threshold verification.

Rules (PROTOCOL.md §Signatures):

- A key id is the lowercase hex SHA-256 of the raw 32-byte public key, so anyone
  can recompute it from the key itself and ids cannot be chosen.
- A signed file ``F`` has a sidecar ``F.sig`` holding the canonical JSON
  ``{"signatures":[{"keyid":…,"sig":<base64>}]}``. The signature covers the exact
  bytes of ``F``, and is checked before ``F`` is parsed.
- A role's threshold counts *distinct* keys of that role with a valid signature.
  Entries for unknown keys are ignored, invalid signatures never count, and a key
  listed twice counts once. This is TUF's rule, and it is what stops one stolen
  key from reaching a threshold of two by signing twice.

Verification is OpenSSL's Ed25519 (through ``cryptography``), so a signature
accepted here is one ``openssl pkeyutl -verify -rawin`` accepts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from protocol._fields import Fields, b64decode, b64encode
from protocol.canonical import canonicalize, parse_canonical
from protocol.errors import MalformedError, SignatureError

__all__ = [
    "KEYTYPE_ED25519",
    "MAX_SIGNATURES",
    "PublicKey",
    "Signature",
    "SignatureSidecar",
    "SigningKey",
    "keyid_of",
    "sign_bytes",
    "verify_threshold",
]

KEYTYPE_ED25519 = "ed25519"
MAX_SIGNATURES = 128
"""More entries than this in one sidecar is refused. It is twice the largest role (64 keys,
PROTOCOL.md §5.2) because a root's sidecar carries the old and the new root role at once
(§12 item 6): a smaller cap would make a large root role impossible to rotate."""

_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


def keyid_of(public_raw: bytes) -> str:
    """Lowercase hex SHA-256 of a raw 32-byte Ed25519 public key."""
    return hashlib.sha256(public_raw).hexdigest()


@dataclass(frozen=True)
class PublicKey:
    """An Ed25519 public key as it appears in a root: ``{"keytype":"ed25519","public":<hex>}``."""

    raw: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes) or len(self.raw) != 32:
            raise MalformedError("an Ed25519 public key is exactly 32 bytes")

    @property
    def keyid(self) -> str:
        return keyid_of(self.raw)

    def verify(self, signature: bytes, message: bytes) -> bool:
        """True if ``signature`` is a valid Ed25519 signature of ``message`` by this key."""
        if len(signature) != 64:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True

    def to_dict(self) -> dict[str, Any]:
        return {"keytype": KEYTYPE_ED25519, "public": self.raw.hex()}

    @classmethod
    def from_dict(cls, value: Any, where: str) -> PublicKey:
        fields = Fields(value, where)
        keytype = fields.text("keytype", max_len=32)
        if keytype != KEYTYPE_ED25519:
            raise MalformedError(f"{where}: unknown key type {keytype!r}")
        public = fields.text("public", max_len=64)
        if len(public) != 64 or public != public.lower():
            raise MalformedError(f"{where}: public key must be 64 lowercase hex digits")
        try:
            raw = bytes.fromhex(public)
        except ValueError as e:
            raise MalformedError(f"{where}: public key is not hex") from e
        fields.closed()
        return cls(raw)

    def to_pem(self) -> bytes:
        """SubjectPublicKeyInfo PEM, the form ``openssl pkeyutl -pubin`` reads."""
        return Ed25519PublicKey.from_public_bytes(self.raw).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def to_spki_der(self) -> bytes:
        return _SPKI_PREFIX + self.raw

    @classmethod
    def from_pem(cls, data: bytes) -> PublicKey:
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm) as e:  # a damaged key names an unknown OID
            raise MalformedError("not a PEM public key") from e
        if not isinstance(key, Ed25519PublicKey):
            raise MalformedError("PEM public key is not Ed25519")
        return cls(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


class SigningKey:
    """An Ed25519 private key. Its bytes are never put in a document or a log line."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.public = PublicKey(raw)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """Deterministic key from a 32-byte seed: for test vectors, never for production."""
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def keyid(self) -> str:
        return self.public.keyid

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def to_pem(self) -> bytes:
        """PKCS#8 PEM, unencrypted: protect the file, not the encoding (see keyfile)."""
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def from_pem(cls, data: bytes) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as e:
            raise MalformedError("not an unencrypted PEM private key") from e
        if not isinstance(key, Ed25519PrivateKey):
            raise MalformedError("PEM private key is not Ed25519")
        return cls(key)

    def __repr__(self) -> str:
        return f"SigningKey(keyid={self.keyid[:16]}…)"


@dataclass(frozen=True)
class Signature:
    """One entry of a sidecar: which key, and its 64-byte signature."""

    keyid: str
    sig: bytes

    def to_dict(self) -> dict[str, Any]:
        return {"keyid": self.keyid, "sig": b64encode(self.sig)}


@dataclass(frozen=True)
class SignatureSidecar:
    """The ``<file>.sig`` document: detached signatures over the exact bytes of ``<file>``."""

    signatures: tuple[Signature, ...]

    def to_bytes(self) -> bytes:
        return canonicalize({"signatures": [s.to_dict() for s in self.signatures]})

    @classmethod
    def from_bytes(cls, data: bytes) -> SignatureSidecar:
        """Parse a sidecar strictly: canonical JSON, hex key ids, 64-byte base64 signatures."""
        fields = Fields(parse_canonical(data), "signature sidecar")
        items = fields.array("signatures", max_items=MAX_SIGNATURES)
        sigs = []
        for i, item in enumerate(items):
            entry = Fields(item, f"signature sidecar: signatures[{i}]")
            keyid = entry.hex64("keyid")
            sig = b64decode(entry.text("sig", max_len=128), f"signatures[{i}].sig", length=64)
            entry.closed()
            sigs.append(Signature(keyid, sig))
        fields.closed()
        return cls(tuple(sigs))


def sign_bytes(data: bytes, keys: Iterable[SigningKey]) -> SignatureSidecar:
    """Sign exact bytes with each key (in key id order, so output is deterministic)."""
    ordered = sorted(keys, key=lambda k: k.keyid)
    return SignatureSidecar(tuple(Signature(k.keyid, k.sign(data)) for k in ordered))


def verify_threshold(
    data: bytes,
    sidecar: SignatureSidecar,
    *,
    keys: Mapping[str, PublicKey],
    keyids: Iterable[str],
    threshold: int,
    what: str,
) -> frozenset[str]:
    """Check that ``threshold`` distinct keys among ``keyids`` signed ``data``.

    Args:
        data: the exact signed bytes.
        sidecar: the parsed signatures.
        keys: public keys by key id (a root's ``keys``).
        keyids: the key ids allowed to sign (a role's ``keyids``).
        threshold: how many distinct valid keys are needed (≥ 1).
        what: names the document and role in the error, e.g. ``"root v3 (root role of v2)"``.

    Returns:
        The key ids whose signatures verified.

    Raises:
        SignatureError: fewer than ``threshold`` distinct valid signatures.
    """
    if threshold < 1:
        raise SignatureError(f"{what}: threshold must be at least 1")
    allowed = set(keyids)
    valid: set[str] = set()
    invalid: set[str] = set()
    for entry in sidecar.signatures:
        if entry.keyid not in allowed or entry.keyid in valid:
            continue
        key = keys.get(entry.keyid)
        if key is None or key.keyid != entry.keyid:
            continue
        if key.verify(entry.sig, data):
            valid.add(entry.keyid)
        else:
            invalid.add(entry.keyid)
    if len(valid) < threshold:
        detail = f"; invalid signatures from {sorted(k[:16] for k in invalid)}" if invalid else ""
        raise SignatureError(
            f"{what}: {len(valid)} valid signature(s) from distinct authorised keys, "
            f"threshold is {threshold}{detail}"
        )
    return frozenset(valid)
