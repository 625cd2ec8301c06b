"""Every upstreams, contribution and provenance vector, replayed by a reader written from the text.

The case files are found by globbing, one parametrized test per family, so a new
``neg-root-upstreams-*``, ``neg-contribution-*`` or ``neg-provenance-*`` case is tested without
touching this file. A negative case must raise exactly the §14 class it names, and where it
names a numbered rule (``10.8.4``, ``7.5.6``; ``5.6`` for the upstreams) the reader must have
failed at that rule and no other. A negative upstreams case also gives the valid root it
differs from, which must be accepted, so the one difference is what is refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.independent.entries_reader import (
    ProofError,
    ProtocolError,
    encode_canonical,
    leaf_hash,
    merkle_root,
)
from tests.independent.federation_reader import (
    MAX_CONTRIBUTION_BYTES,
    Contribution,
    ContributionRequestError,
    MemberOrigin,
    Provenance,
    UpstreamOrigin,
    VersionContext,
    audit_member_origin,
    audit_upstream_origin,
    failed_rules,
    parse_root_document,
    receive_contribution,
    verify_contribution,
    verify_inclusion,
    verify_provenance,
)

CASES = Path(__file__).resolve().parents[2] / "docs" / "vectors" / "cases"
KEYS = CASES.parent / "keys"
UPSTREAMS_FILES = sorted(
    {*CASES.glob("document-root-upstreams*.json"), *CASES.glob("neg-root-upstreams-*.json")}
)
CONTRIBUTION_FILES = sorted(
    {*CASES.glob("contribution*.json"), *CASES.glob("neg-contribution-*.json")}
)
PROVENANCE_FILES = sorted({*CASES.glob("provenance*.json"), *CASES.glob("neg-provenance-*.json")})
# The vectors name an origin's kind by the reference's class for it.
ORIGIN_NAMES = {UpstreamOrigin: "UpstreamOrigin", MemberOrigin: "MemberOrigin"}


def load(name: str) -> dict[str, Any]:
    case: dict[str, Any] = json.loads((CASES / name).read_text(encoding="utf-8"))
    return case


def seed(label: str) -> Ed25519PrivateKey:
    """A test key from ``keys/SEEDS.txt`` (public test keys: they prove nothing)."""
    for line in (KEYS / "SEEDS.txt").read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if fields and fields[0] == label:
            return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(fields[1]))
    raise LookupError(label)


def fails_as(case: Mapping[str, Any], error: ProtocolError) -> None:
    """``error`` is exactly the case's class, raised at the rule the case names and no other."""
    assert type(error).__name__ == case["error"], f"raised {error!r}, not {case['error']}"
    rules = failed_rules(error)
    for name in case.get("rules", []):
        section = name.rsplit(".", 1)[0] + "." if name.count(".") == 2 else name
        assert [r for r in rules if r.startswith(section)] == [name], f"failed at {rules}: {error}"


# ---------------------------------------------------------------------------------------------
# §5.6 upstreams


def test_the_globs_find_the_cases() -> None:
    """A broken path would make every parametrized test vanish silently."""
    assert len(UPSTREAMS_FILES) >= 7
    assert len(CONTRIBUTION_FILES) >= 15
    assert len(PROVENANCE_FILES) >= 13
    names = {path.name for path in (*UPSTREAMS_FILES, *CONTRIBUTION_FILES, *PROVENANCE_FILES)}
    assert {"document-root-upstreams.json", "contribution.json", "provenance.json"} <= names


@pytest.mark.parametrize("path", UPSTREAMS_FILES, ids=[path.stem for path in UPSTREAMS_FILES])
def test_upstreams_case(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    assert (case["check"], case["input"]["kind"]) == ("parse_document", "root")
    case_input = case["input"]
    if "error" in case:
        parse_root_document(case_input["valid_text"].encode("utf-8"))
        with pytest.raises(ProtocolError) as raised:
            parse_root_document(case_input["text"].encode("utf-8"))
        fails_as(case, raised.value)
        return
    document = parse_root_document(case_input["text"].encode("utf-8"))
    assert encode_canonical(document.document).decode("utf-8") == case["expected"]["canonical_text"]
    declared = json.loads(case_input["text"])["upstreams"]
    assert {
        name: {"root_sha256": u.root_sha256, "url": u.url} for name, u in document.upstreams.items()
    } == declared
    assert document.root.name not in document.upstreams


def test_a_root_without_upstreams_declares_none() -> None:
    """The member is optional: absent, the root follows no one."""
    document = json.loads(load("document-root-upstreams.json")["input"]["text"])
    del document["upstreams"]
    assert parse_root_document(encode_canonical(document)).upstreams == {}


# ---------------------------------------------------------------------------------------------
# §10.8 contributions


def contribution_of(case_input: Mapping[str, Any]) -> Contribution:
    return verify_contribution(
        case_input["text"].encode("utf-8"),
        case_input["sig_text"].encode("utf-8"),
        bytes.fromhex(case_input["node_public_hex"]),
    )


@pytest.mark.parametrize("path", CONTRIBUTION_FILES, ids=[path.stem for path in CONTRIBUTION_FILES])
def test_contribution_case(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    assert case["check"] == "verify_contribution"
    if "error" in case:
        with pytest.raises(ProtocolError) as raised:
            contribution_of(case["input"])
        fails_as(case, raised.value)
        return
    contribution, expected = contribution_of(case["input"]), case["expected"]
    assert contribution.seq == expected["seq"]
    hashes = {
        hash_type: {"hash": offer.hash_hex}
        | ({} if offer.quality is None else {"quality": offer.quality})
        for hash_type, offer in contribution.hashes.items()
    }
    assert hashes == expected["hashes"]
    assert {"by": contribution.review_by, "action": contribution.review_action} == expected[
        "review"
    ]


def signed(document: Mapping[str, Any], signer: str = "node-1") -> tuple[bytes, bytes]:
    """A contribution's canonical bytes and a sidecar signing them with a test key."""
    data = encode_canonical(document)
    key = seed(signer)
    public = key.public_key().public_bytes_raw()
    entry = {
        "keyid": hashlib.sha256(public).hexdigest(),
        "sig": base64.b64encode(key.sign(data)).decode("ascii"),
    }
    return data, encode_canonical({"signatures": [entry]})


def node_1_public() -> bytes:
    return bytes.fromhex(load("contribution.json")["input"]["node_public_hex"])


def test_the_rules_of_a_contribution_apply_in_their_order() -> None:
    """A short hash (rule 4) and an unknown review member (rule 6): rule 4 is reported."""
    document = json.loads(load("contribution.json")["input"]["text"])
    document["hashes"]["md5"]["hash"] = document["hashes"]["md5"]["hash"][:-1]
    document["review"]["note"] = "x"
    data, sidecar = signed(document)
    with pytest.raises(ProtocolError) as raised:
        verify_contribution(data, sidecar, node_1_public())
    assert failed_rules(raised.value) == ["10.8.4"]


def test_a_contribution_keeps_its_unknown_top_level_members() -> None:
    document = json.loads(load("contribution.json")["input"]["text"])
    document["batch"] = "b-7"
    data, sidecar = signed(document)
    assert verify_contribution(data, sidecar, node_1_public()).extra == {"batch": "b-7"}


def test_another_key_alongside_the_enrolled_one_is_ignored() -> None:
    case_input = load("contribution.json")["input"]
    data = case_input["text"].encode("utf-8")
    other = seed("node-2")
    entries = json.loads(case_input["sig_text"])["signatures"]
    entries.insert(
        0,
        {
            "keyid": hashlib.sha256(other.public_key().public_bytes_raw()).hexdigest(),
            "sig": base64.b64encode(other.sign(data)).decode("ascii"),
        },
    )
    sidecar = encode_canonical({"signatures": entries})
    assert verify_contribution(data, sidecar, node_1_public()).seq == 3


def request_of(
    case_input: Mapping[str, Any],
) -> tuple[str, str, bytes]:
    """``contribution.json`` as the request §10.8 describes: its body and headers."""
    header = base64.b64encode(case_input["sig_text"].encode("utf-8")).decode("ascii")
    return "application/json; charset=utf-8", header, case_input["text"].encode("utf-8")


def refused(content_type: str | None, header: str | None, body: bytes) -> tuple[int, str]:
    with pytest.raises(ContributionRequestError) as raised:
        receive_contribution(content_type, header, body, node_1_public())
    return raised.value.status, raised.value.code


def test_a_contribution_travels_as_an_ack_does() -> None:
    """§10.8 by §10.6: the body is the bytes, ``Hashhub-Signature`` base64 of the sidecar."""
    content_type, header, body = request_of(load("contribution.json")["input"])
    assert receive_contribution(content_type, header, body, node_1_public()).seq == 3


def test_the_request_form_is_checked_in_its_order() -> None:
    """415, then 413, then 400; only a well-formed request reaches the rules (422)."""
    case_input = load("contribution.json")["input"]
    content_type, header, body = request_of(case_input)
    big = body + b" " * MAX_CONTRIBUTION_BYTES
    assert refused("text/plain", None, big) == (415, "unsupported_media_type")
    assert refused(content_type, None, big) == (413, "payload_too_large")
    assert refused(content_type, None, body) == (400, "invalid_request")
    assert refused(content_type, header + " ", body) == (400, "invalid_request")
    assert refused(content_type, "A" * 4100, body) == (400, "invalid_request")
    not_a_sidecar = base64.b64encode(b'{"signatures":{}}').decode("ascii")
    assert refused(content_type, not_a_sidecar, body) == (400, "invalid_request")
    assert refused(content_type, header, body + b"\n") == (422, "unprocessable")
    other = load("neg-contribution-signed-by-another.json")["input"]
    _, other_header, _ = request_of(other)
    with pytest.raises(ContributionRequestError) as raised:
        receive_contribution(content_type, other_header, body, node_1_public())
    assert raised.value.status == 422
    assert "(SignatureError)" in str(raised.value)


# ---------------------------------------------------------------------------------------------
# §9.1 inclusion proofs, against roots computed by the other reader


def inclusion_path(leaves: list[bytes], index: int) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(m, D[n]), built from the definition."""
    if len(leaves) <= 1:
        return []
    split = 1
    while split * 2 < len(leaves):
        split *= 2
    if index < split:
        return [*inclusion_path(leaves[:split], index), merkle_root(leaves[split:])]
    return [*inclusion_path(leaves[split:], index - split), merkle_root(leaves[:split])]


def test_inclusion_proofs_verify_for_every_leaf_of_small_trees() -> None:
    leaves = [leaf_hash(f"header {n}".encode()) for n in range(13)]
    for size in range(1, len(leaves) + 1):
        root_hash = merkle_root(leaves[:size])
        for index in range(size):
            path = inclusion_path(leaves[:size], index)
            verify_inclusion(leaves[index], index, size, path, root_hash)
            for wrong in (path[:-1], [*path, root_hash]) if path else ([root_hash],):
                with pytest.raises(ProofError):
                    verify_inclusion(leaves[index], index, size, wrong, root_hash)
        with pytest.raises(ProofError):
            verify_inclusion(leaves[0], size, size, [], root_hash)


# ---------------------------------------------------------------------------------------------
# §7.5 provenance


def context_of(case_input: Mapping[str, Any]) -> VersionContext:
    return VersionContext.read(
        case_input["header_text"].encode("utf-8"),
        case_input["root_text"].encode("utf-8"),
        case_input["body_text"].encode("utf-8"),
    )


def provenance_of(case_input: Mapping[str, Any]) -> Provenance:
    return verify_provenance(case_input["provenance_text"].encode("utf-8"), context_of(case_input))


@pytest.mark.parametrize("path", PROVENANCE_FILES, ids=[path.stem for path in PROVENANCE_FILES])
def test_provenance_case(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    assert case["check"] == "verify_provenance"
    if "error" in case:
        with pytest.raises(ProtocolError) as raised:
            provenance_of(case["input"])
        fails_as(case, raised.value)
        return
    provenance = provenance_of(case["input"])
    origins = {entry: ORIGIN_NAMES[type(o)] for entry, o in provenance.origins.items()}
    assert origins == case["expected"]["origins"]
    check_what_an_auditor_checks(case["input"], provenance)


def check_what_an_auditor_checks(case_input: Mapping[str, Any], provenance: Provenance) -> None:
    """What §7.5 leaves to an auditor, as far as ``provenance.json`` gives the material.

    Given, and checked here: the upstream's root, pinned by the SHA-256 the downstream root
    declares for it and carrying a threshold of its own ``root`` role; its checkpoint note at
    the origin's ``size``, whose root hash is the origin's ``root`` and whose ``checkpoint`` and
    ``timestamp`` lines verify under that root (§9.2); the upstream's body of the origin's
    version, which is the body its header names and adds the origin's ``record``; and the
    contribution's sidecar, verified under ``node_public_hex`` by §10.8 rules 1–6.

    Not given, so not checked: the signature of the upstream's delta role over the origin's
    header (no sidecar for it) and the upstream's other headers, which would tie the header to
    the upstream's history beyond the inclusion proof; the checkpoint's freshness (no clock);
    the upstream's newest root, which §5.6 says must not declare this hub in turn; and that
    ``node_public_hex`` is the enrolled key of the member the record's source names (the case
    gives the key, not the enrolment, and the source names ``platform-a`` while the
    contribution's ``node`` is ``node-1``).
    """
    context = context_of(case_input)
    upstream = case_input["upstream"]
    for entry, origin in provenance.origins.items():
        if isinstance(origin, UpstreamOrigin):
            record = audit_upstream_origin(
                origin,
                context.root.upstreams[origin.hub],
                upstream["root_text"].encode("utf-8"),
                upstream["root_sig_text"].encode("utf-8"),
                upstream["checkpoint_text"],
                upstream["body_text"].encode("utf-8"),
            )
            assert record.hash_hex == context.claiming_records()[entry].hash_hex
        else:
            contribution = audit_member_origin(origin, bytes.fromhex(case_input["node_public_hex"]))
            assert contribution.hashes["pdq"].hash_hex == (
                context.claiming_records()[entry].hash_hex
            )


def test_an_auditor_refuses_an_upstream_body_without_the_record() -> None:
    """The version's rules pass; the auditor's check of the upstream's body can still fail."""
    case_input = load("provenance.json")["input"]
    provenance = provenance_of(case_input)
    origin = provenance.origins["r-2"]
    assert isinstance(origin, UpstreamOrigin)
    upstream = case_input["upstream"]
    declared = context_of(case_input).root.upstreams["entries.example"]
    tampered = upstream["checkpoint_text"].replace("\u2014 entries.example/lists", "\u2014 x", 1)
    with pytest.raises(ProtocolError) as raised:
        audit_upstream_origin(
            origin,
            declared,
            upstream["root_text"].encode(),
            upstream["root_sig_text"].encode(),
            tampered,
            upstream["body_text"].encode(),
        )
    assert type(raised.value).__name__ == "SignatureError"
    other_body = upstream["body_text"].replace("fraud low", "fraud medium").encode()
    with pytest.raises(ProtocolError) as raised:
        audit_upstream_origin(
            origin,
            declared,
            upstream["root_text"].encode(),
            upstream["root_sig_text"].encode(),
            upstream["checkpoint_text"],
            other_body,
        )
    assert type(raised.value).__name__ == "ConsistencyError"


def test_a_provenance_reference_above_the_body_cap_is_a_limit_error() -> None:
    """Rule 1's second clause, which no vector exercises."""
    case_input = dict(load("provenance.json")["input"])
    header = json.loads(case_input["header_text"])
    header["provenance"]["length"] = 67108864 + 1
    case_input["header_text"] = encode_canonical(header).decode("utf-8")
    with pytest.raises(ProtocolError) as raised:
        provenance_of(case_input)
    assert type(raised.value).__name__ == "LimitError"
    assert failed_rules(raised.value) == ["7.5.1"]


def repointed(
    case_input: Mapping[str, Any], body_text: str, provenance_text: str
) -> dict[str, Any]:
    """The case with another body and document, header v re-pointed at both (as a hub could:
    the case takes the header as verified)."""
    header = json.loads(case_input["header_text"])
    body, document = body_text.encode("utf-8"), provenance_text.encode("utf-8")
    header["body"] |= {"sha256": hashlib.sha256(body).hexdigest(), "length": len(body)}
    header["provenance"] = {"sha256": hashlib.sha256(document).hexdigest(), "length": len(document)}
    return {
        **case_input,
        "header_text": encode_canonical(header).decode("utf-8"),
        "body_text": body_text,
        "provenance_text": provenance_text,
    }


def test_an_origin_from_an_undeclared_upstream_is_refused() -> None:
    """Rule 6's second clause on its own.

    ``neg-provenance-undeclared-upstream.json`` changes only the origin's ``hub``, so the
    record's source (``hub:entries.example``) no longer matches and the first clause fails
    before this one is reached. Here the record and its origin agree on ``hotline.example``,
    which the root does not declare.
    """
    case_input = load("provenance.json")["input"]
    body = case_input["body_text"].replace("hub:entries.example", "hub:hotline.example")
    document = case_input["provenance_text"].replace(
        '"hub":"entries.example"', '"hub":"hotline.example"'
    )
    with pytest.raises(ProtocolError) as raised:
        provenance_of(repointed(case_input, body, document))
    assert type(raised.value).__name__ == "ConsistencyError"
    assert failed_rules(raised.value) == ["7.5.6"]
    assert "does not declare upstream 'hotline.example'" in str(raised.value)
    # The same change under a root that declares hotline.example passes every rule.
    root = json.loads(case_input["root_text"])
    root["upstreams"]["hotline.example"] = root["upstreams"]["entries.example"]
    accepted = repointed(case_input, body, document)
    accepted["root_text"] = encode_canonical(root).decode("utf-8")
    assert set(provenance_of(accepted).origins) == {"r-2", "m-1"}


def origin_changed(document: dict[str, Any], entry: str, **members: Any) -> None:
    document["origins"][entry] |= members


def header_base64(text: str, **members: Any) -> str:
    header = json.loads(base64.b64decode(text))
    return base64.b64encode(encode_canonical(header | members)).decode("ascii")


# Variants of provenance.json for rule clauses no vector reaches, each re-pointed so that every
# earlier rule passes: (what changes, the class, the rule).
PROVENANCE_VARIANTS: list[tuple[str, str, str]] = [
    ("origins-key", "MalformedError", "7.5.3"),
    ("proof-over-64", "MalformedError", "7.5.3"),
    ("list", "ConsistencyError", "7.5.4"),
    ("upstream-header-of-another-list", "ConsistencyError", "7.5.6"),
    ("upstream-header-not-a-header", "MalformedError", "7.5.6"),
    ("upstream-record-malformed", "MalformedError", "7.5.6"),
    ("leaf-outside-the-tree", "ProofError", "7.5.6"),
    ("proof-too-long", "ProofError", "7.5.6"),
    ("contribution-not-canonical", "MalformedError", "7.5.7"),
    ("contribution-without-pdq", "ConsistencyError", "7.5.7"),
]


def provenance_variant(name: str) -> dict[str, Any]:
    case_input = load("provenance.json")["input"]
    document = json.loads(case_input["provenance_text"])
    r2, m1 = document["origins"]["r-2"], document["origins"]["m-1"]
    if name == "origins-key":
        document["origins"]["R-2"] = document["origins"].pop("r-2")
    elif name == "proof-over-64":
        origin_changed(document, "r-2", proof=r2["proof"] * 65)
    elif name == "list":
        document["list"] = "entries-md5"
    elif name == "upstream-header-of-another-list":
        origin_changed(document, "r-2", list="entries-md5")
    elif name == "upstream-header-not-a-header":
        origin_changed(document, "r-2", header=header_base64(r2["header"], version=0))
    elif name == "upstream-record-malformed":
        origin_changed(document, "r-2", record=r2["record"].replace(" -", " never"))
    elif name == "leaf-outside-the-tree":
        origin_changed(document, "r-2", size=1, proof=[])
    elif name == "proof-too-long":
        origin_changed(document, "r-2", proof=[*r2["proof"], r2["root"]])
    elif name == "contribution-not-canonical":
        spaced = base64.b64decode(m1["contribution"]).replace(b",", b", ", 1)
        origin_changed(document, "m-1", contribution=base64.b64encode(spaced).decode())
    elif name == "contribution-without-pdq":
        contribution = json.loads(base64.b64decode(m1["contribution"]))
        contribution["hashes"] = {"md5": {"hash": "0" * 32}}
        encoded = base64.b64encode(encode_canonical(contribution)).decode()
        origin_changed(document, "m-1", contribution=encoded)
    else:
        raise LookupError(name)
    text = encode_canonical(document).decode("utf-8")
    return repointed(case_input, case_input["body_text"], text)


@pytest.mark.parametrize(("name", "error", "rule_name"), PROVENANCE_VARIANTS)
def test_a_provenance_variant_fails_at_its_rule(name: str, error: str, rule_name: str) -> None:
    with pytest.raises(ProtocolError) as raised:
        provenance_of(provenance_variant(name))
    fails_as({"error": error, "rules": [rule_name]}, raised.value)


def test_a_provenance_document_of_another_length_is_a_limit_error() -> None:
    """Rule 2's first clause: the length is checked before the SHA-256."""
    case_input = dict(load("provenance.json")["input"])
    header = json.loads(case_input["header_text"])
    header["provenance"]["length"] -= 1
    case_input["header_text"] = encode_canonical(header).decode("utf-8")
    with pytest.raises(ProtocolError) as raised:
        provenance_of(case_input)
    fails_as({"error": "LimitError", "rules": ["7.5.2"]}, raised.value)


def test_nothing_is_parsed_before_the_contribution_signature() -> None:
    """Rule 1 first: bytes that are not even JSON, signed by another key, are a SignatureError."""
    other = load("neg-contribution-signed-by-another.json")["input"]
    with pytest.raises(ProtocolError) as raised:
        verify_contribution(b"not json", other["sig_text"].encode(), node_1_public())
    fails_as({"error": "SignatureError", "rules": ["10.8.1"]}, raised.value)
