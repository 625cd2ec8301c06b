"""Every parser, fed almost-valid bytes: its own error with a message, or a document it re-writes.

Each test starts from a real document (published by the real ``protocol.Publisher``
through ``tests.protocol.simulator.HubSimulator``, signed with real Ed25519 keys) and
hands the parser a corrupted copy (``tests.reliability.malformed_support``). Two
outcomes are allowed:

- the parser raises its package's own error (``MalformedError`` and the rest of
  ``ProtocolError`` for the protocol, ``IntakeError`` for imports, ``KeyFileError``
  for key files, ``ImageRejected`` for pictures), with a message — never a bare
  ``KeyError``, ``IndexError``, ``UnicodeDecodeError``, ``ValueError`` or
  ``RecursionError``, which a caller would not catch as "bad input";
- or the corruption happened to leave a valid document, and then what was parsed
  writes back to exactly the bytes given (nothing accepted is ambiguous).

A node's whole update is fed the same way (``Verifier``, the node's update without
I/O): a corrupted checkpoint, header, signature or body is refused with a
``ProtocolError`` and the state and trust it kept are exactly as before.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
from pathlib import Path

import imagehash
import numpy as np
import pdqhash
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from hub.errors import IntakeError
from hub.intake import parse_import
from node.config import CONFIG_NAME, NodeConfig
from node.errors import NodeConfigError
from node.imaging import ImageLimits, ImageRejected, hash_image
from protocol import (
    Ack,
    AppliedVersion,
    Counts,
    DeltaBody,
    DeltaHeader,
    ListState,
    NoteSignature,
    ProtocolError,
    Root,
    SignatureSidecar,
    SignedCheckpoint,
    SigningKey,
    body_path,
    canonicalize,
    checkpoint_path,
    format_time,
    header_path,
    parse_canonical,
    parse_time,
    root_path,
    sig_path,
    sign_ack,
    sign_bytes,
    snapshot_path,
    verify_ack,
)
from protocol.checkpoint import cosignature_time
from protocol.errors import KeyFileError, MalformedError
from protocol.keyfile import load_private_key, load_public_key, write_private_key
from tests.protocol.simulator import LIST, HubSimulator, Verifier, md5
from tests.reliability.malformed_support import (
    FUZZ,
    json_mutations,
    mutations,
    random_bytes,
    refused_cleanly,
)

EXAMPLES = 150


def _published() -> HubSimulator:
    """A hub with ``LIST`` at version 3 (a snapshot at 3) and version 4 still to be fetched."""
    sim = HubSimulator(snapshot_every=3)
    sim.publish_steps(3)
    return sim


SIM = _published()
NODE_KEY = SigningKey.from_seed(bytes(32))
ROOT_BYTES = SIM.files[root_path(1)]
CHECKPOINT_BYTES = SIM.files[checkpoint_path(LIST)]
HEADER_BYTES = SIM.files[header_path(LIST, 2)]
HEADER_SIG = SIM.files[sig_path(header_path(LIST, 2))]
BODY_BYTES = SIM.files[body_path(LIST, DeltaHeader.from_bytes(HEADER_BYTES).body.sha256)]
SNAPSHOT_BYTES = SIM.files[snapshot_path(LIST, 3)]
HEAD = SIM.head(LIST)
ACK_BYTES, ACK_SIG = sign_ack(
    key=NODE_KEY,
    node="platform-a",
    list_id=LIST,
    seq=7,
    sent=SIM.now,
    origin=SIM.root.origin(LIST),
    applied=AppliedVersion(HEAD.version, HEAD.compact.root(), HEAD.state.digest()),
    counts=Counts(checked=10, matched=2),
)


# -- canonical JSON and the documents built on it --------------------------------------------


@settings(max_examples=EXAMPLES, **FUZZ)
@given(data=st.one_of(mutations(ROOT_BYTES), json_mutations(json.loads(ROOT_BYTES))))
def test_canonical_json_refuses_corruption_with_malformed_error(data: bytes) -> None:
    try:
        value = parse_canonical(data)
    except Exception as e:
        refused_cleanly(e, MalformedError)
        return
    assert canonicalize(value) == data


@settings(max_examples=EXAMPLES, **FUZZ)
@given(data=st.one_of(mutations(ROOT_BYTES), json_mutations(json.loads(ROOT_BYTES))))
def test_root_parser_refuses_corruption_with_malformed_error(data: bytes) -> None:
    try:
        root = Root.from_bytes(data)
    except Exception as e:
        refused_cleanly(e, MalformedError)
        return
    event("root: corruption left a valid root")
    assert root.to_bytes() == data


@settings(max_examples=EXAMPLES, **FUZZ)
@given(data=st.one_of(mutations(HEADER_BYTES), json_mutations(json.loads(HEADER_BYTES))))
def test_delta_header_parser_refuses_corruption_with_protocol_error(data: bytes) -> None:
    try:
        header = DeltaHeader.from_bytes(data)
    except Exception as e:
        # A header whose own fields contradict each other is a ConsistencyError.
        refused_cleanly(e, ProtocolError)
        return
    event("delta header: corruption left a valid header")
    assert canonicalize(header.to_dict()) == data


@settings(max_examples=EXAMPLES, **FUZZ)
@given(data=mutations(BODY_BYTES))
def test_delta_body_parser_refuses_corruption_with_body_rule_error(data: bytes) -> None:
    try:
        body = DeltaBody.from_bytes(data, "md5")
    except Exception as e:
        refused_cleanly(e, MalformedError)
        return
    event("delta body: corruption left a valid body")
    assert body.to_bytes() == data


@settings(max_examples=EXAMPLES, **FUZZ)
@given(data=st.one_of(mutations(HEADER_SIG), json_mutations(json.loads(HEADER_SIG))))
def test_signature_sidecar_parser_refuses_corruption_with_malformed_error(data: bytes) -> None:
    try:
        sidecar = SignatureSidecar.from_bytes(data)
    except Exception as e:
        refused_cleanly(e, MalformedError)
        return
    assert sidecar.to_bytes() == data


@settings(max_examples=EXAMPLES, **FUZZ)
@given(data=mutations(SNAPSHOT_BYTES))
def test_snapshot_parser_refuses_corruption_with_malformed_error(data: bytes) -> None:
    try:
        state = ListState.from_snapshot(16, data)
    except Exception as e:
        refused_cleanly(e, MalformedError)
        return
    assert state.to_bytes() == data


# -- checkpoint notes and co-signatures ------------------------------------------------------


@settings(max_examples=EXAMPLES, **FUZZ)
@given(data=mutations(CHECKPOINT_BYTES))
def test_checkpoint_note_parser_refuses_corruption_with_malformed_error(data: bytes) -> None:
    try:
        note = SignedCheckpoint.from_bytes(data)
    except Exception as e:
        refused_cleanly(e, MalformedError)
        return
    event("checkpoint: corruption left a well-formed note")
    assert note.to_bytes() == data


_COSIGNATURE = Ack.from_bytes(ACK_BYTES).cosignature.line()


@settings(max_examples=EXAMPLES, **FUZZ)
@given(line=mutations(_COSIGNATURE.encode(), noise=False))
def test_cosignature_line_parser_refuses_corruption_with_protocol_error(line: bytes) -> None:
    text = line.decode("utf-8", "replace")
    try:
        sig = NoteSignature.from_line(text)
        cosignature_time(sig)
    except Exception as e:
        refused_cleanly(e, ProtocolError)
        return
    event("co-signature: corruption left a parseable line")
    assert sig.line() == text


# -- acks -------------------------------------------------------------------------------------


@settings(max_examples=EXAMPLES, **FUZZ)
@given(data=st.one_of(mutations(ACK_BYTES), json_mutations(json.loads(ACK_BYTES))))
def test_ack_parser_refuses_corruption_with_malformed_error(data: bytes) -> None:
    try:
        ack = Ack.from_bytes(data)
    except Exception as e:
        refused_cleanly(e, MalformedError)
        return
    event("ack: corruption left a valid ack")
    assert ack.to_bytes() == data


@settings(max_examples=EXAMPLES, **FUZZ)
@given(
    data=st.one_of(mutations(ACK_BYTES), json_mutations(json.loads(ACK_BYTES))),
    resign=st.booleans(),
)
def test_ack_verification_refuses_corruption_even_when_signed_by_the_node(
    data: bytes, resign: bool
) -> None:
    """A node's own signature over corrupted bytes still leaves the parser to refuse them."""
    sig = SignatureSidecar.from_bytes(ACK_SIG)
    if resign:
        sig = sign_bytes(data, [NODE_KEY])
    try:
        ack = verify_ack(
            data, sig.to_bytes(), node_key=NODE_KEY.public, origin_prefix=SIM.root.name
        )
    except Exception as e:
        refused_cleanly(e, ProtocolError)
        return
    event("ack: corruption, re-signed, left a valid ack")
    assert resign, "without re-signing, the node's signature no longer fits"
    assert ack.to_bytes() == data


# -- a node's whole update -------------------------------------------------------------------

_TARGETS = (
    checkpoint_path(LIST),
    header_path(LIST, 4),
    sig_path(header_path(LIST, 4)),
    "body",
    root_path(2),
)


@pytest.mark.slow
@settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow], **FUZZ)
@given(target=st.sampled_from(_TARGETS), data=st.data())
def test_node_update_refuses_corrupted_files_and_keeps_its_state(
    target: str, data: st.DataObject
) -> None:
    sim = _published()
    verifier = Verifier(sim.files)
    verifier.update(sim.now)
    kept = verifier.kept()
    if target == root_path(2):
        sim.rotate(keys={"timestamp": sim.new_keys("timestamp-2")})
    header = sim.publish(LIST, adds=[md5("late")], removes=[md5(f"{LIST}/3/a")])
    path = body_path(LIST, header.body.sha256) if target == "body" else target
    original = sim.files[path]
    sim.files[path] = data.draw(mutations(original), label=path)
    try:
        verifier.update(sim.now)
    except Exception as e:
        refused_cleanly(e, ProtocolError)
        assert verifier.kept() == kept
        return
    raise AssertionError(f"a corrupted {path} was applied")


# -- imports, key files, pictures ------------------------------------------------------------

_HASHES = [md5(str(i)).hex() for i in range(3)]
_IMPORTS = (
    "\n".join(json.dumps({"hash": h, "category": "x", "quality": 90}) for h in _HASHES).encode(),
    ("hash,quality,category\n" + "".join(f"{h},80,c\n" for h in _HASHES)).encode(),
    ("# plain\n" + "".join(f"{h}\n" for h in _HASHES)).encode(),
)
_BAD_IMPORT_LINES = (
    b'{"hash":' + b"1" * 5000 + b"}",
    b'{"hash":"' + _HASHES[0].encode() + b'","quality":' + b"[" * 100_000 + b"}",
    b'{"hash":"' + _HASHES[0].encode() + b'","quality":"\xc2\xb2"}',
    b'{"hash":"' + _HASHES[0].encode() + b'","hash":"' + _HASHES[1].encode() + b'"}',
    b'{"hash":"' + _HASHES[0].encode() + b'","category":"\\ud800"}',
    b'{"hash":"' + _HASHES[0].encode() + b'","quality":NaN}',
    b"hash,quality\n" + _HASHES[0].encode() + b",\xc2\xb2\n",
    b'hash\n"' + b"a" * 200_000 + b'"\n',
    b'hash\n"' + _HASHES[0].encode() + b"\n",
    b"hash,category\n" + _HASHES[0].encode() + b",\x00\n",
)


@pytest.mark.slow
@settings(max_examples=EXAMPLES * 2, **FUZZ)
@given(
    data=st.one_of(
        st.sampled_from(_IMPORTS).flatmap(mutations),
        st.sampled_from(_BAD_IMPORT_LINES),
        st.tuples(st.sampled_from(_IMPORTS), st.sampled_from(_BAD_IMPORT_LINES)).map(
            lambda t: t[0] + b"\n" + t[1].split(b"\n", 1)[-1]
        ),
    )
)
def test_import_parser_refuses_corruption_with_intake_error(data: bytes) -> None:
    try:
        intakes = parse_import(data, "md5")
    except Exception as e:
        refused_cleanly(e, IntakeError)
        return
    event("import: corruption left a valid file")
    assert intakes
    assert all(len(i.hash) == 16 for i in intakes)


_PRIVATE_PEM = NODE_KEY.to_pem()
_PUBLIC_PEM = NODE_KEY.public.to_pem()


@settings(
    max_examples=EXAMPLES,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    **FUZZ,
)
@given(
    private=st.one_of(mutations(_PRIVATE_PEM), mutations(_PUBLIC_PEM)),
    public=st.one_of(mutations(_PUBLIC_PEM), mutations(_PRIVATE_PEM)),
)
def test_key_file_readers_refuse_corruption_with_key_file_error(
    tmp_path: Path, private: bytes, public: bytes
) -> None:
    private_file, public_file = tmp_path / "node.key.pem", tmp_path / "node.pub.pem"
    for path in (private_file, public_file):
        path.unlink(missing_ok=True)
    private_file.write_bytes(private)
    os.chmod(private_file, 0o600)
    public_file.write_bytes(public)
    for load, path in ((load_private_key, private_file), (load_public_key, public_file)):
        try:
            load(path)
        except Exception as e:
            refused_cleanly(e, KeyFileError)
        else:
            event(f"{path.name}: corruption left a valid key")


def test_key_file_reader_accepts_the_seed_files(tmp_path: Path) -> None:
    """The seeds of the test above are valid: what it refuses, it refuses for the corruption."""
    write_private_key(tmp_path / "k.pem", NODE_KEY)
    assert load_private_key(tmp_path / "k.pem").keyid == NODE_KEY.keyid
    (tmp_path / "p.pem").write_bytes(_PUBLIC_PEM)
    assert load_public_key(tmp_path / "p.pem").keyid == NODE_KEY.keyid


def _picture(kind: str) -> bytes:
    out = io.BytesIO()
    Image.linear_gradient("L").resize((64, 48)).convert("RGB").save(out, kind)
    return out.getvalue()


PICTURES = {kind: _picture(kind) for kind in ("JPEG", "PNG", "GIF", "WEBP")}
SMALL_LIMITS = ImageLimits(max_bytes=1 << 20, max_pixels=200_000)


@functools.cache
def bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A tiny PNG whose header declares ``width`` × ``height`` pixels of one colour."""
    out = io.BytesIO()
    Image.new("1", (width, height)).save(out, "PNG", optimize=True)
    return out.getvalue()


@settings(max_examples=EXAMPLES, **FUZZ)
@given(
    data=st.one_of(
        st.sampled_from(sorted(PICTURES.values())).flatmap(lambda p: mutations(p, noise=False)),
        random_bytes(),
    )
)
def test_image_hasher_refuses_corruption_with_image_rejected(data: bytes) -> None:
    try:
        hash_image(data, SMALL_LIMITS)
    except Exception as e:
        refused_cleanly(e, ImageRejected)
        return
    event("picture: corruption left a decodable picture")


def test_image_hasher_refuses_a_decompression_bomb_before_decoding_it() -> None:
    with pytest.raises(ImageRejected) as refused:
        hash_image(bomb_png(), SMALL_LIMITS)
    assert refused.value.reason == "decompression_bomb"


def test_image_hasher_accepts_the_seed_pictures() -> None:
    """The seeds of the test above hash, and to their own hashes: what the fuzz test
    refuses, it refuses for the corruption, and what it accepts is hashed right.

    Each hash is checked against an independent computation: MD5 and SHA-256 of the
    bytes with hashlib, PDQ and pHash of the picture as Pillow decodes it with
    ``pdqhash`` and ``imagehash`` directly; the lossless seeds (PNG, GIF) hash
    exactly like the gradient they were saved from.
    """
    source = Image.linear_gradient("L").resize((64, 48)).convert("RGB")

    def reference(image: Image.Image) -> tuple[bytes, int, bytes]:
        bits, quality = pdqhash.compute(np.asarray(image, dtype=np.uint8))
        pdq = np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()
        return pdq, int(quality), bytes.fromhex(str(imagehash.phash(image)))

    for kind, picture in PICTURES.items():
        hashes = hash_image(picture, SMALL_LIMITS)
        assert hashes.md5 == hashlib.md5(picture, usedforsecurity=False).digest(), kind
        assert hashes.sha256 == hashlib.sha256(picture).digest(), kind
        decoded = Image.open(io.BytesIO(picture)).convert("RGB")
        assert (hashes.pdq, hashes.pdq_quality, hashes.phash) == reference(decoded), kind
        if kind in ("PNG", "GIF"):
            assert (hashes.pdq, hashes.pdq_quality, hashes.phash) == reference(source), kind


# -- the node's configuration file -----------------------------------------------------------

_NODE_TOML = NodeConfig(
    node_id="platform-a",
    hub_url="https://hub.example",
    lists=(LIST,),
    pinned_root_sha256="ab" * 32,
    mirrors=("https://mirror.example",),
).to_toml()


@settings(
    max_examples=EXAMPLES,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    **FUZZ,
)
@given(data=mutations(_NODE_TOML.encode()))
def test_node_config_reader_refuses_corruption_with_node_config_error(
    tmp_path: Path, data: bytes
) -> None:
    (tmp_path / CONFIG_NAME).write_bytes(data)
    try:
        NodeConfig.load(tmp_path, {})
    except Exception as e:
        refused_cleanly(e, NodeConfigError)
        return
    event("node.toml: corruption left a valid configuration")


def test_node_config_reader_refuses_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    """Found by the test above: a file that is not UTF-8 escaped as UnicodeDecodeError."""
    (tmp_path / CONFIG_NAME).write_bytes(_NODE_TOML.encode().replace(b"platform-a", b"\xffa"))
    with pytest.raises(NodeConfigError, match="utf-8"):
        NodeConfig.load(tmp_path, {})


def test_node_config_reader_accepts_the_seed_file(tmp_path: Path) -> None:
    (tmp_path / CONFIG_NAME).write_text(_NODE_TOML)
    assert NodeConfig.load(tmp_path, {}).node_id == "platform-a"


def test_times_before_year_1000_write_back_as_they_were_read() -> None:
    """Found by the header test: year 0026 was read, then written as "26-01-01…"."""
    moment = parse_time("0026-01-01T02:00:00Z", "test")
    assert format_time(moment) == "0026-01-01T02:00:00Z"


def test_times_in_other_scripts_digits_are_refused() -> None:
    """Two texts must not name one time: only ASCII digits are read."""
    with pytest.raises(MalformedError):
        parse_time("\u0662\u0660\u0662\u0666-01-01T02:00:00Z", "test")
