"""Tests of protocol.checkpoint against C2SP signed-note, tlog-checkpoint and tlog-cosignature.

Outside anchors: the key ids and the note signature of golang.org/x/mod/sumdb/note's
documented example (PeterNeumann, EnochRoot), the cosignature/v1 verifier key and
signature layout of transparency-dev/formats' ``note/note_cosigv1_test.go``, and a
co-signature made here with ``cryptography`` directly over the message the spec
defines, ``cosignature/v1\\ntime <t>\\n`` followed by the note text.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol.checkpoint import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    MAX_SIGNATURE_LINES,
    Checkpoint,
    NoteSignature,
    SignedCheckpoint,
    cosign,
    note_key_id,
    sign_note,
    verify_cosignature,
    verify_note_signature,
)
from protocol.errors import MalformedError, SignatureError
from protocol.keys import PublicKey, SigningKey
from protocol.publisher import root_files
from protocol.root import ListSpec, Role, Root
from protocol.trust import TrustedHub

ORIGIN = "hub.example/lists/tid-md5"
STAMP_NAME = "hub.example/timestamp"
ROOT_HASH = hashlib.sha256(b"a tree head").digest()
T0 = datetime(2026, 1, 1, tzinfo=UTC)

SEED_CP = bytes([21]) * 32
SEED_TS = bytes([22]) * 32
CP_KEY = SigningKey.from_seed(SEED_CP)
TS_KEY = SigningKey.from_seed(SEED_TS)
OTHER_KEY = SigningKey.from_seed(bytes([23]) * 32)

CP = Checkpoint(ORIGIN, 7, ROOT_HASH)


def _note(checkpoint: Checkpoint = CP) -> SignedCheckpoint:
    return SignedCheckpoint(
        checkpoint,
        (
            sign_note(checkpoint, CP_KEY, ORIGIN),
            cosign(checkpoint, TS_KEY, STAMP_NAME, T0),
        ),
    )


def _vkey(text: str) -> tuple[str, bytes, int, PublicKey]:
    """Split a note verifier key ``name+hex id+base64(alg ‖ key)``."""
    name, key_id, blob = text.split("+", 2)
    raw = base64.b64decode(blob)
    return name, bytes.fromhex(key_id), raw[0], PublicKey(raw[1:])


# -- the note text -----------------------------------------------------------------------


def test_checkpoint_body_is_origin_size_and_base64_root() -> None:
    expected = f"{ORIGIN}\n7\n{base64.b64encode(ROOT_HASH).decode()}\n".encode()
    assert CP.body() == expected


def test_checkpoint_body_appends_extension_lines() -> None:
    cp = Checkpoint(ORIGIN, 7, ROOT_HASH, ("ext one", "ext two"))
    assert cp.body() == CP.body() + b"ext one\next two\n"
    assert Checkpoint.from_body(cp.body().decode()) == cp


def test_signed_checkpoint_round_trips() -> None:
    note = _note()
    data = note.to_bytes()
    assert data.startswith(CP.body() + "\n\u2014 ".encode())
    parsed = SignedCheckpoint.from_bytes(data)
    assert parsed == note
    assert parsed.to_bytes() == data


def test_zero_size_checkpoint_round_trips() -> None:
    note = _note(Checkpoint(ORIGIN, 0, ROOT_HASH))
    assert SignedCheckpoint.from_bytes(note.to_bytes()) == note


# -- strict parsing ----------------------------------------------------------------------


def _valid() -> bytes:
    return _note().to_bytes()


def test_rejects_carriage_return() -> None:
    data = _valid().replace(b"\n", b"\r\n", 1)
    with pytest.raises(MalformedError, match="control character U\\+000D"):
        SignedCheckpoint.from_bytes(data)


def test_rejects_missing_blank_line() -> None:
    data = _valid().replace(b"\n\n", b"\n", 1)
    with pytest.raises(MalformedError, match="no blank line"):
        SignedCheckpoint.from_bytes(data)


def test_rejects_non_canonical_size() -> None:
    data = _valid().replace(b"\n7\n", b"\n007\n", 1)
    with pytest.raises(MalformedError, match="canonical decimal"):
        SignedCheckpoint.from_bytes(data)


@pytest.mark.parametrize("size", [b"+7", b"-7", b"7.0", b" 7", b"", b"99999999999999999999"])
def test_rejects_other_size_spellings(size: bytes) -> None:
    data = _valid().replace(b"\n7\n", b"\n" + size + b"\n", 1)
    with pytest.raises(MalformedError):
        SignedCheckpoint.from_bytes(data)


def test_rejects_bad_base64_root() -> None:
    root_line = base64.b64encode(ROOT_HASH)
    data = _valid().replace(root_line, b"*" + root_line[1:], 1)
    with pytest.raises(MalformedError, match="base64"):
        SignedCheckpoint.from_bytes(data)


def test_rejects_root_hash_of_31_bytes() -> None:
    data = _valid().replace(base64.b64encode(ROOT_HASH), base64.b64encode(ROOT_HASH[:31]), 1)
    with pytest.raises(MalformedError, match="expected 32 bytes"):
        SignedCheckpoint.from_bytes(data)


def test_rejects_signature_line_without_em_dash() -> None:
    data = _valid().replace("\u2014 ".encode(), b"- ", 1)
    with pytest.raises(MalformedError, match="malformed signature line"):
        SignedCheckpoint.from_bytes(data)


def _with_lines(count: int) -> bytes:
    lines = tuple(sign_note(CP, CP_KEY, f"signer{i}.example") for i in range(count))
    return SignedCheckpoint(CP, lines).to_bytes()


def test_accepts_the_maximum_number_of_signature_lines() -> None:
    note = SignedCheckpoint.from_bytes(_with_lines(MAX_SIGNATURE_LINES))
    assert len(note.signatures) == MAX_SIGNATURE_LINES


def test_rejects_more_than_max_signature_lines() -> None:
    with pytest.raises(MalformedError, match=f"more than {MAX_SIGNATURE_LINES}"):
        SignedCheckpoint.from_bytes(_with_lines(MAX_SIGNATURE_LINES + 1))


@pytest.mark.parametrize("tail", [b"garbage\n", b"\n", b"\x00"])
def test_rejects_trailing_garbage(tail: bytes) -> None:
    with pytest.raises(MalformedError):
        SignedCheckpoint.from_bytes(_valid() + tail)


def test_rejects_missing_final_newline() -> None:
    with pytest.raises(MalformedError, match="must end in a newline"):
        SignedCheckpoint.from_bytes(_valid()[:-1])


def test_rejects_note_without_signature_lines() -> None:
    with pytest.raises(MalformedError):
        SignedCheckpoint.from_bytes(CP.body() + b"\n")


def test_rejects_non_canonical_base64_in_signature_line() -> None:
    line = sign_note(CP, CP_KEY, ORIGIN).line()
    blob = line.split(" ")[2].strip()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    # 68 bytes: the last group holds two bytes in three characters, 2 bits are padding.
    sloppy = blob[:-2] + alphabet[alphabet.index(blob[-2]) ^ 1] + "="
    assert base64.b64decode(sloppy) == base64.b64decode(blob)
    data = CP.body() + b"\n" + line.replace(blob, sloppy).encode()
    with pytest.raises(MalformedError, match="canonical"):
        SignedCheckpoint.from_bytes(data)


# -- key ids (C2SP signed-note) ----------------------------------------------------------


def test_note_key_id_is_sha256_of_name_newline_alg_key() -> None:
    for alg in (ALG_ED25519, ALG_COSIGNATURE_V1):
        expected = hashlib.sha256(
            ORIGIN.encode() + b"\n" + bytes([alg]) + CP_KEY.public.raw
        ).digest()[:4]
        assert note_key_id(ORIGIN, alg, CP_KEY.public) == expected
    assert sign_note(CP, CP_KEY, ORIGIN).key_id == note_key_id(ORIGIN, 0x01, CP_KEY.public)
    assert cosign(CP, TS_KEY, STAMP_NAME, T0).key_id == note_key_id(STAMP_NAME, 0x04, TS_KEY.public)


@pytest.mark.parametrize(
    "vkey",
    [
        # golang.org/x/mod/sumdb/note, package documentation and note_test.go.
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop",
        # transparency-dev/formats note/note_cosigv1_test.go: a native 0x04 verifier key.
        "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
    ],
    ids=["PeterNeumann", "EnochRoot", "remora-cosignature"],
)
def test_note_key_id_matches_published_verifier_keys(vkey: str) -> None:
    name, key_id, alg, key = _vkey(vkey)
    assert note_key_id(name, alg, key) == key_id


def test_ed25519_note_line_matches_go_sumdb_note_example() -> None:
    name, key_id, _, key = _vkey(
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    )
    text = (
        b"If you think cryptography is the answer to your problem,\n"
        b"then you don't know what your problem is.\n"
    )
    line = NoteSignature.from_line(
        "\u2014 PeterNeumann "
        "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
    )
    assert (line.name, line.key_id) == (name, key_id)
    assert key.verify(line.signature, text)
    assert not key.verify(line.signature, text.replace(b"cryptography", b"cryptographY"))


def test_cosignature_line_layout_matches_transparency_dev() -> None:
    # The "works" case of TestCosignatureTimestamp: key hash, big-endian u64 time, signature.
    line = NoteSignature.from_line(
        "\u2014 witness.example "
        "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA=="
    )
    assert len(line.signature) == 8 + 64
    assert struct.unpack(">Q", line.signature[:8]) == (1727964367,)


# -- note signatures and co-signatures ---------------------------------------------------


def test_note_signature_verifies_and_fails_after_body_change() -> None:
    line = sign_note(CP, CP_KEY, ORIGIN)
    assert verify_note_signature(CP, line, CP_KEY.public)
    assert not verify_note_signature(Checkpoint(ORIGIN, 8, ROOT_HASH), line, CP_KEY.public)
    assert not verify_note_signature(CP, line, OTHER_KEY.public)


def test_cosignature_verify_returns_the_time() -> None:
    moment = T0 + timedelta(hours=5, seconds=7)
    line = cosign(CP, TS_KEY, STAMP_NAME, moment)
    assert verify_cosignature(CP, line, TS_KEY.public) == moment


def test_cosignature_fails_after_body_change() -> None:
    line = cosign(CP, TS_KEY, STAMP_NAME, T0)
    for changed in (
        Checkpoint(ORIGIN, 8, ROOT_HASH),
        Checkpoint(ORIGIN, 7, hashlib.sha256(b"another head").digest()),
        Checkpoint("hub.example/lists/other", 7, ROOT_HASH),
        Checkpoint(ORIGIN, 7, ROOT_HASH, ("extension",)),
    ):
        with pytest.raises(SignatureError, match="invalid signature"):
            verify_cosignature(changed, line, TS_KEY.public)


def test_cosignature_fails_with_wrong_key() -> None:
    line = cosign(CP, TS_KEY, STAMP_NAME, T0)
    with pytest.raises(SignatureError, match="key id"):
        verify_cosignature(CP, line, OTHER_KEY.public)
    # Even with the other key's id in the line, the signature itself does not verify.
    forged_id = NoteSignature(
        STAMP_NAME, note_key_id(STAMP_NAME, ALG_COSIGNATURE_V1, OTHER_KEY.public), line.signature
    )
    with pytest.raises(SignatureError, match="invalid signature"):
        verify_cosignature(CP, forged_id, OTHER_KEY.public)


def test_cosignature_fails_after_timestamp_bytes_change() -> None:
    line = cosign(CP, TS_KEY, STAMP_NAME, T0)
    (t,) = struct.unpack(">Q", line.signature[:8])
    altered = NoteSignature(
        line.name, line.key_id, struct.pack(">Q", t + 3600) + line.signature[8:]
    )
    with pytest.raises(SignatureError, match="invalid signature"):
        verify_cosignature(CP, altered, TS_KEY.public)


def test_note_signature_is_not_a_cosignature() -> None:
    # Same key, same name, algorithm 0x01: a different key id, so it cannot pass as 0x04.
    line = sign_note(CP, TS_KEY, STAMP_NAME)
    with pytest.raises(SignatureError, match="key id"):
        verify_cosignature(CP, line, TS_KEY.public)


def test_cosignature_message_is_cosignature_v1_time_then_body() -> None:
    t = int(T0.timestamp())
    message = b"cosignature/v1\ntime " + str(t).encode() + b"\n" + CP.body()
    raw_sig = Ed25519PrivateKey.from_private_bytes(SEED_TS).sign(message)
    line = NoteSignature(
        STAMP_NAME,
        hashlib.sha256(STAMP_NAME.encode() + b"\n\x04" + TS_KEY.public.raw).digest()[:4],
        struct.pack(">Q", t) + raw_sig,
    )
    assert verify_cosignature(CP, line, TS_KEY.public) == T0
    # Ed25519 is deterministic, so ours must be byte-for-byte the same line.
    assert cosign(CP, TS_KEY, STAMP_NAME, T0).line() == line.line()


# -- TrustedHub.verify_checkpoint --------------------------------------------------------


def _hub(checkpoint_keys: list[SigningKey], threshold: int) -> TrustedHub:
    root_key = SigningKey.from_seed(bytes([24]) * 32)
    delta_key = SigningKey.from_seed(bytes([25]) * 32)
    keys = [root_key, delta_key, TS_KEY, *checkpoint_keys]
    root = Root(
        version=1,
        name="hub.example",
        expires=T0 + timedelta(days=365),
        keys={k.keyid: k.public for k in keys},
        roles={
            "root": Role((root_key.keyid,), 1),
            "delta": Role((delta_key.keyid,), 1),
            "checkpoint": Role(tuple(k.keyid for k in checkpoint_keys), threshold),
            "timestamp": Role((TS_KEY.keyid,), 1),
        },
        lists={"tid-md5": ListSpec("tid-md5", "md5", 0)},
    )
    files = root_files(root, [root_key])
    return TrustedHub(files["root/1.json"], files["root/1.json.sig"], now=T0)


def _signed(*lines: NoteSignature) -> bytes:
    return SignedCheckpoint(CP, lines).to_bytes()


def test_trusted_hub_accepts_checkpoint_with_both_roles() -> None:
    hub = _hub([CP_KEY], 1)
    verified = hub.verify_checkpoint("tid-md5", _valid())
    assert (verified.size, verified.root_hash, verified.timestamp) == (7, ROOT_HASH, T0)


def test_trusted_hub_ignores_signature_line_of_unknown_name() -> None:
    hub = _hub([CP_KEY], 1)
    data = _signed(
        sign_note(CP, OTHER_KEY, "witness.example/w1"),
        sign_note(CP, CP_KEY, ORIGIN),
        cosign(CP, OTHER_KEY, "witness.example/w1", T0),
        cosign(CP, TS_KEY, STAMP_NAME, T0),
    )
    verified = hub.verify_checkpoint("tid-md5", data)
    assert verified.raw == data
    assert len(verified.note.signatures) == 4


def test_trusted_hub_rejects_one_line_when_checkpoint_threshold_is_two() -> None:
    second = SigningKey.from_seed(bytes([26]) * 32)
    hub = _hub([CP_KEY, second], 2)
    both = _signed(
        sign_note(CP, CP_KEY, ORIGIN),
        sign_note(CP, second, ORIGIN),
        cosign(CP, TS_KEY, STAMP_NAME, T0),
    )
    assert hub.verify_checkpoint("tid-md5", both).size == 7
    with pytest.raises(SignatureError, match="1 valid checkpoint-role signature"):
        hub.verify_checkpoint("tid-md5", _valid())


def test_trusted_hub_counts_a_duplicated_line_once() -> None:
    second = SigningKey.from_seed(bytes([26]) * 32)
    hub = _hub([CP_KEY, second], 2)
    line = sign_note(CP, CP_KEY, ORIGIN)
    data = _signed(line, line, cosign(CP, TS_KEY, STAMP_NAME, T0))
    with pytest.raises(SignatureError, match="1 valid checkpoint-role signature"):
        hub.verify_checkpoint("tid-md5", data)
    assert hub.root.version == 1


def test_trusted_hub_rejects_checkpoint_without_timestamp_cosignature() -> None:
    hub = _hub([CP_KEY], 1)
    with pytest.raises(SignatureError, match="0 valid timestamp co-signature"):
        hub.verify_checkpoint("tid-md5", _signed(sign_note(CP, CP_KEY, ORIGIN)))


# -- signed-note rules: control characters, the last blank line, malformed lines ---------


@pytest.mark.parametrize("char", ["\t", "\x00", "\x01", "\x0b", "\x1b", "\x1f"])
def test_rejects_every_control_character_but_lf(char: str) -> None:
    data = _signed_text(CP.body() + f"ext{char}line\n".encode())
    with pytest.raises(MalformedError, match=f"control character U\\+{ord(char):04X}"):
        SignedCheckpoint.from_bytes(data)


def test_accepts_del_and_non_ascii_in_an_extension_line() -> None:
    # signed-note bans only code points below U+0020 (LF aside); nothing else is asked.
    cp = Checkpoint(ORIGIN, 7, ROOT_HASH, ("\x7f\u00a0\u200b",))
    note = SignedCheckpoint.from_bytes(_note(cp).to_bytes())
    assert note.checkpoint.extensions == ("\x7f\u00a0\u200b",)


def _signed_text(text: bytes) -> bytes:
    """A note over an arbitrary text, with lines by the checkpoint and timestamp keys."""
    key_id = note_key_id(ORIGIN, ALG_ED25519, CP_KEY.public)
    line = NoteSignature(ORIGIN, key_id, CP_KEY.sign(text)).line()
    return text + b"\n" + line.encode()


def test_text_ends_at_the_last_blank_line() -> None:
    # A blank line inside the text makes the text end later, not earlier: the checkpoint
    # then has an empty line, which tlog-checkpoint forbids.
    data = _signed_text(CP.body() + b"\next\n")
    with pytest.raises(MalformedError, match="empty line in the note text"):
        SignedCheckpoint.from_bytes(data)


def test_an_extra_final_newline_is_a_blank_line_after_the_signatures() -> None:
    with pytest.raises(MalformedError, match="no signature line after the last blank line"):
        SignedCheckpoint.from_bytes(_valid() + b"\n")


@pytest.mark.parametrize(
    "line",
    [
        "\u2014 witness.example/w1 not*base64",
        "\u2014 witness.example/w1 AAAA",  # three bytes: no key id and signature
        "\u2014 witness+example AAAAAAAA",
        "\u2014 witness\u00a0example AAAAAAAA",
        "\u2014 witness\u2003example AAAAAAAA",
        "\u2014  AAAAAAAA",
        "\u2014 witness.example/w1",
    ],
    ids=["not-base64", "short", "plus", "nbsp", "em-space", "empty-name", "no-signature"],
)
def test_a_malformed_line_rejects_the_note_even_from_an_unknown_key(line: str) -> None:
    data = _valid() + (line + "\n").encode()
    with pytest.raises(MalformedError, match="note: "):
        SignedCheckpoint.from_bytes(data)


# -- known keys, unknown keys and the time of several co-signatures ----------------------


def test_a_bad_line_from_a_known_checkpoint_key_rejects_the_note() -> None:
    hub = _hub([CP_KEY], 1)
    good = sign_note(CP, CP_KEY, ORIGIN)
    bad = NoteSignature(ORIGIN, good.key_id, CP_KEY.sign(b"something else"))
    for lines in ((good, bad), (bad, good)):
        data = _signed(*lines, cosign(CP, TS_KEY, STAMP_NAME, T0))
        with pytest.raises(SignatureError, match=r"a line of checkpoint key .* does not verify"):
            hub.verify_checkpoint("tid-md5", data)


def test_a_bad_line_from_a_known_timestamp_key_rejects_the_note() -> None:
    hub = _hub([CP_KEY], 1)
    good = cosign(CP, TS_KEY, STAMP_NAME, T0)
    short = NoteSignature(STAMP_NAME, good.key_id, good.signature[:-1])
    wrong = NoteSignature(STAMP_NAME, good.key_id, good.signature[:8] + bytes(64))
    for bad in (short, wrong):
        data = _signed(sign_note(CP, CP_KEY, ORIGIN), good, bad)
        with pytest.raises(SignatureError, match=r"co-signature of timestamp key .* does not"):
            hub.verify_checkpoint("tid-md5", data)


def test_a_line_sharing_only_the_name_or_only_the_key_id_is_ignored() -> None:
    hub = _hub([CP_KEY], 1)
    cp_line = sign_note(CP, CP_KEY, ORIGIN)
    ts_line = cosign(CP, TS_KEY, STAMP_NAME, T0)
    data = _signed(
        cp_line,
        ts_line,
        NoteSignature(ORIGIN, b"\0\0\0\0", bytes(64)),  # the origin, no known key id
        NoteSignature("witness.example", cp_line.key_id, bytes(64)),  # a known id, other name
        NoteSignature("witness.example", ts_line.key_id, ts_line.signature),
    )
    assert hub.verify_checkpoint("tid-md5", data).timestamp == T0


@pytest.mark.parametrize("newer_first", [False, True])
def test_the_time_is_the_oldest_co_signature_whatever_the_line_order(newer_first: bool) -> None:
    hub = _hub([CP_KEY], 1)
    older = cosign(CP, TS_KEY, STAMP_NAME, T0 - timedelta(days=1))
    newer = cosign(CP, TS_KEY, STAMP_NAME, T0)
    stamps = (newer, older) if newer_first else (older, newer)
    data = _signed(sign_note(CP, CP_KEY, ORIGIN), *stamps)
    assert hub.verify_checkpoint("tid-md5", data).timestamp == T0 - timedelta(days=1)
