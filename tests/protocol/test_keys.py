"""Tests of protocol.keys and protocol.keyfile against Wycheproof, OpenSSL and the rules.

Every Wycheproof Ed25519 vector (``../shared/testdata/ed25519``) goes through
``PublicKey.verify``: an ``invalid`` case that verifies would be a forgeable or
malleable signature. A real delta header signature is also checked with the
``openssl`` command line, because auditors are told they can do exactly that.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from protocol.canonical import canonicalize
from protocol.errors import KeyFileError, MalformedError, SignatureError
from protocol.keyfile import (
    load_private_key,
    load_public_key,
    write_private_key,
    write_public_key,
)
from protocol.keys import (
    MAX_SIGNATURES,
    PublicKey,
    Signature,
    SignatureSidecar,
    SigningKey,
    keyid_of,
    sign_bytes,
    verify_threshold,
)
from protocol.layout import header_path, sig_path
from protocol.publisher import ListHead, Publisher
from protocol.root import ListSpec, Role, Root

WYCHEPROOF = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "testdata"
    / "ed25519"
    / "wycheproof_ed25519_test.json"
)


def _wycheproof_cases() -> list[tuple[int, str, str, str, str]]:
    doc = json.loads(WYCHEPROOF.read_text("utf-8"))
    return [
        (test["tcId"], group["publicKey"]["pk"], test["msg"], test["sig"], test["result"])
        for group in doc["testGroups"]
        for test in group["tests"]
    ]


WYCHEPROOF_CASES = _wycheproof_cases()


def test_wycheproof_vectors_are_all_collected() -> None:
    assert len(WYCHEPROOF_CASES) > 100
    assert len({case[0] for case in WYCHEPROOF_CASES}) == len(WYCHEPROOF_CASES)


@pytest.mark.parametrize(
    ("tc_id", "pk", "msg", "sig", "result"),
    [pytest.param(*case, id=f"tcId-{case[0]}") for case in WYCHEPROOF_CASES],
)
def test_verify_agrees_with_wycheproof(
    tc_id: int, pk: str, msg: str, sig: str, result: str
) -> None:
    assert result in ("valid", "invalid"), f"tcId {tc_id}: unexpected result {result!r}"
    raw = bytes.fromhex(pk)
    if len(raw) != 32:
        # A key of the wrong length cannot even be constructed, so nothing verifies.
        assert result == "invalid", f"tcId {tc_id}: a valid case with a {len(raw)}-byte key"
        with pytest.raises(MalformedError):
            PublicKey(raw)
        return
    verified = PublicKey(raw).verify(bytes.fromhex(sig), bytes.fromhex(msg))
    assert verified is (result == "valid"), f"tcId {tc_id}"


# -- key ids and sidecars ----------------------------------------------------------------

K1, K2, K3, K4 = (SigningKey.from_seed(bytes([i]) * 32) for i in (1, 2, 3, 4))
DATA = b"the exact bytes of a signed file"


def test_keyid_is_sha256_hex_of_raw_public_key() -> None:
    expected = hashlib.sha256(K1.public.raw).hexdigest()
    assert keyid_of(K1.public.raw) == expected
    assert K1.public.keyid == expected
    assert K1.keyid == expected


def test_public_key_must_be_32_bytes() -> None:
    with pytest.raises(MalformedError):
        PublicKey(K1.public.raw[:31])
    with pytest.raises(MalformedError):
        PublicKey(K1.public.raw + b"\x00")


def test_sidecar_round_trips() -> None:
    sidecar = sign_bytes(DATA, [K2, K1])
    data = sidecar.to_bytes()
    parsed = SignatureSidecar.from_bytes(data)
    assert parsed == sidecar
    assert parsed.to_bytes() == data
    assert [s.keyid for s in parsed.signatures] == sorted([K1.keyid, K2.keyid])


def _sidecar(entries: Any) -> bytes:
    return canonicalize({"signatures": entries})


def _entry(keyid: Any = None, sig: Any = None) -> dict[str, Any]:
    return {
        "keyid": K1.keyid if keyid is None else keyid,
        "sig": base64.b64encode(K1.sign(DATA)).decode() if sig is None else sig,
    }


def test_sidecar_entry_built_for_these_tests_parses() -> None:
    parsed = SignatureSidecar.from_bytes(_sidecar([_entry()]))
    assert parsed.signatures == (Signature(K1.keyid, K1.sign(DATA)),)


@pytest.mark.parametrize("sig", ["!!!!", "a" * 87 + "*", "AAAA\n", "AAAA AAAA"])
def test_sidecar_rejects_bad_base64(sig: str) -> None:
    with pytest.raises(MalformedError, match="base64"):
        SignatureSidecar.from_bytes(_sidecar([_entry(sig=sig)]))


def test_sidecar_rejects_non_canonical_base64() -> None:
    raw = K1.sign(DATA)
    text = base64.b64encode(raw).decode()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    # 64 bytes end in one byte spread over two characters: the last 4 bits are padding.
    last = text[-3]
    sloppy = text[:-3] + alphabet[alphabet.index(last) ^ 1] + "=="
    assert base64.b64decode(sloppy) == raw
    with pytest.raises(MalformedError, match="non-canonical base64"):
        SignatureSidecar.from_bytes(_sidecar([_entry(sig=sloppy)]))


def test_sidecar_rejects_unpadded_base64() -> None:
    text = base64.b64encode(K1.sign(DATA)).decode().rstrip("=")
    with pytest.raises(MalformedError, match="base64"):
        SignatureSidecar.from_bytes(_sidecar([_entry(sig=text)]))


def test_sidecar_rejects_63_byte_signature() -> None:
    short = base64.b64encode(K1.sign(DATA)[:63]).decode()
    with pytest.raises(MalformedError, match="expected 64 bytes"):
        SignatureSidecar.from_bytes(_sidecar([_entry(sig=short)]))


def test_sidecar_rejects_uppercase_keyid() -> None:
    with pytest.raises(MalformedError, match="keyid"):
        SignatureSidecar.from_bytes(_sidecar([_entry(keyid=K1.keyid.upper())]))


def test_sidecar_accepts_the_maximum_number_of_signatures() -> None:
    parsed = SignatureSidecar.from_bytes(_sidecar([_entry()] * MAX_SIGNATURES))
    assert len(parsed.signatures) == MAX_SIGNATURES


def test_sidecar_rejects_too_many_signatures() -> None:
    with pytest.raises(MalformedError, match=f"more than {MAX_SIGNATURES}"):
        SignatureSidecar.from_bytes(_sidecar([_entry()] * (MAX_SIGNATURES + 1)))


@pytest.mark.parametrize(
    "document",
    [
        {"signatures": {}},
        {"signatures": "x"},
        {"signatures": [[]]},
        {"signatures": [{"keyid": 1, "sig": "AAAA"}]},
        {"signatures": [{"keyid": K1.keyid, "sig": 5}]},
        {"signatures": [{"keyid": K1.keyid}]},
        {"sigs": []},
        [],
    ],
    ids=[
        "signatures-object",
        "signatures-string",
        "entry-not-object",
        "keyid-int",
        "sig-int",
        "sig-missing",
        "signatures-missing",
        "top-level-array",
    ],
)
def test_sidecar_rejects_wrong_types(document: Any) -> None:
    with pytest.raises(MalformedError):
        SignatureSidecar.from_bytes(canonicalize(document))


def test_sidecar_rejects_non_canonical_json() -> None:
    data = json.dumps({"signatures": [_entry()]}, indent=1).encode()
    with pytest.raises(MalformedError, match="canonical"):
        SignatureSidecar.from_bytes(data)


# -- threshold rules ---------------------------------------------------------------------

ALL_KEYS = {k.keyid: k.public for k in (K1, K2, K3)}
ROLE = [K1.keyid, K2.keyid]


def _verify(sidecar: SignatureSidecar, threshold: int) -> frozenset[str]:
    return verify_threshold(
        DATA, sidecar, keys=ALL_KEYS, keyids=ROLE, threshold=threshold, what="test document"
    )


def _signed_by(*pairs: tuple[SigningKey, bytes]) -> SignatureSidecar:
    return SignatureSidecar(tuple(Signature(k.keyid, k.sign(data)) for k, data in pairs))


def test_threshold_met_exactly_passes() -> None:
    assert _verify(sign_bytes(DATA, [K1, K2]), 2) == {K1.keyid, K2.keyid}


def test_same_key_signing_twice_counts_once() -> None:
    with pytest.raises(SignatureError, match="1 valid signature"):
        _verify(_signed_by((K1, DATA), (K1, DATA)), 2)


def test_unknown_keys_are_ignored() -> None:
    sidecar = _signed_by((K4, DATA), (K1, DATA))
    assert _verify(sidecar, 1) == {K1.keyid}
    with pytest.raises(SignatureError, match="1 valid signature"):
        _verify(sidecar, 2)


def test_invalid_signature_never_counts() -> None:
    sidecar = _signed_by((K1, DATA), (K2, b"other bytes"))
    assert _verify(sidecar, 1) == {K1.keyid}
    with pytest.raises(SignatureError, match="invalid signatures from"):
        _verify(sidecar, 2)


def test_invalid_then_valid_entry_of_one_key_counts_once() -> None:
    sidecar = _signed_by((K1, b"other bytes"), (K1, DATA))
    assert _verify(sidecar, 1) == {K1.keyid}
    with pytest.raises(SignatureError):
        _verify(sidecar, 2)


def test_key_outside_the_role_does_not_count() -> None:
    sidecar = sign_bytes(DATA, [K1, K3])
    assert K3.keyid in ALL_KEYS
    assert K3.keyid not in ROLE
    with pytest.raises(SignatureError, match="1 valid signature"):
        _verify(sidecar, 2)


def test_key_filed_under_another_id_does_not_count() -> None:
    swapped = {K1.keyid: K2.public, K2.keyid: K1.public}
    with pytest.raises(SignatureError):
        verify_threshold(
            DATA, sign_bytes(DATA, [K1, K2]), keys=swapped, keyids=ROLE, threshold=1, what="doc"
        )


def test_below_threshold_error_names_the_counts() -> None:
    with pytest.raises(SignatureError, match=r"test document: 1 valid .* threshold is 2"):
        _verify(sign_bytes(DATA, [K1]), 2)


def test_no_signatures_fail_threshold_one() -> None:
    with pytest.raises(SignatureError, match="0 valid signature"):
        _verify(SignatureSidecar(()), 1)


# -- key files ---------------------------------------------------------------------------


def test_private_key_file_is_written_0600(tmp_path: Path) -> None:
    path = tmp_path / "delta.key"
    write_private_key(path, K1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_private_key(path).public == K1.public


def test_private_key_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "delta.key"
    write_private_key(path, K1)
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        write_private_key(path, K2)
    assert path.read_bytes() == before
    assert load_private_key(path).public == K1.public


@pytest.mark.parametrize("mode", [0o640, 0o644, 0o604, 0o660])
def test_load_refuses_private_key_readable_by_others(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "delta.key"
    write_private_key(path, K1)
    os.chmod(path, mode)
    with pytest.raises(KeyFileError, match="too open"):
        load_private_key(path)


def test_load_refuses_missing_private_key(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="no such key file"):
        load_private_key(tmp_path / "absent.key")


def test_load_refuses_non_ed25519_private_key(tmp_path: Path) -> None:
    path = tmp_path / "ec.key"
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match="not Ed25519"):
        load_private_key(path)


def test_load_refuses_non_ed25519_public_key(tmp_path: Path) -> None:
    path = tmp_path / "ec.pub"
    path.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(KeyFileError, match="not Ed25519"):
        load_public_key(path)


def test_public_key_pem_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "delta.pub"
    write_public_key(path, K1.public)
    assert path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert load_public_key(path) == K1.public
    assert PublicKey.from_pem(K1.public.to_pem()) == K1.public
    assert K1.public.to_spki_der() == serialization.load_pem_public_key(
        K1.public.to_pem()
    ).public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


# -- OpenSSL -----------------------------------------------------------------------------


def _published_header() -> tuple[bytes, bytes, SigningKey]:
    """A real version-1 delta header of a one-list hub, its raw signature, and the delta key."""
    roles = {
        name: SigningKey.from_seed(bytes([10 + i]) * 32)
        for i, name in enumerate(["root", "delta", "checkpoint", "timestamp"])
    }
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    root = Root(
        version=1,
        name="hub.example",
        expires=t0 + timedelta(days=365),
        keys={k.keyid: k.public for k in roles.values()},
        roles={name: Role((k.keyid,), 1) for name, k in roles.items()},
        lists={"tid-md5": ListSpec("tid-md5", "md5", 0)},
    )
    publisher = Publisher(root, {name: [k] for name, k in roles.items()})
    publication = publisher.publish(
        ListHead.empty(root, "tid-md5"),
        adds=[hashlib.md5(b"a").digest(), hashlib.md5(b"b").digest()],
        now=t0,
    )
    path = header_path("tid-md5", 1)
    header = publication.files[path]
    sidecar = SignatureSidecar.from_bytes(publication.files[sig_path(path)])
    (entry,) = [s for s in sidecar.signatures if s.keyid == roles["delta"].keyid]
    return header, entry.sig, roles["delta"]


def _openssl_verify(tmp_path: Path, key: PublicKey, data: bytes, sig: bytes) -> bool:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is required for this test (CI installs it); put it on PATH")
    (tmp_path / "pub.pem").write_bytes(key.to_pem())
    (tmp_path / "header.json").write_bytes(data)
    (tmp_path / "sig.bin").write_bytes(sig)
    result = subprocess.run(
        [
            openssl,
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            "pub.pem",
            "-rawin",
            "-in",
            "header.json",
            "-sigfile",
            "sig.bin",
        ],
        cwd=tmp_path,
        capture_output=True,
        check=False,
        timeout=60,
    )
    return result.returncode == 0 and b"Signature Verified Successfully" in result.stdout


def test_openssl_accepts_a_published_delta_header_signature(tmp_path: Path) -> None:
    header, sig, key = _published_header()
    assert key.public.verify(sig, header)
    assert _openssl_verify(tmp_path, key.public, header, sig)


def test_openssl_rejects_the_signature_after_one_header_byte_changes(tmp_path: Path) -> None:
    header, sig, key = _published_header()
    index = header.index(b'"version":1') + len(b'"version":')
    tampered = header[:index] + b"2" + header[index + 1 :]
    assert len(tampered) == len(header)
    assert tampered != header
    assert not key.public.verify(sig, tampered)
    assert not _openssl_verify(tmp_path, key.public, tampered, sig)
