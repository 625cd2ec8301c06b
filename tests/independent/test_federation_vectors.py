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
    parse_record,
)
from tests.independent.federation_reader import (
    MAX_CONTRIBUTION_BYTES,
    Contribution,
    ContributionRequestError,
    ExchangeOrigin,
    MemberOrigin,
    Provenance,
    UpstreamOrigin,
    VersionContext,
    audit_exchange_origins,
    audit_member_origin,
    audit_republication,
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
ORIGIN_NAMES = {
    UpstreamOrigin: "UpstreamOrigin",
    MemberOrigin: "MemberOrigin",
    ExchangeOrigin: "ExchangeOrigin",
}


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
    assert len(PROVENANCE_FILES) >= 28
    names = {path.name for path in (*UPSTREAMS_FILES, *CONTRIBUTION_FILES, *PROVENANCE_FILES)}
    assert {
        "document-root-upstreams.json",
        "contribution.json",
        "provenance.json",
        "neg-provenance-header-unnamed.json",
        "neg-provenance-header-twice.json",
        "neg-provenance-header-version.json",
        "provenance-exchange.json",
        "neg-provenance-exchange-record-size.json",
        "neg-provenance-exchange-fetched-late.json",
    } <= names


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
    the ``size`` of the member of ``upstream_headers`` the origin names, whose root hash is that
    member's ``root`` and whose ``checkpoint`` and ``timestamp`` lines verify under that root
    (§9.2); the upstream's body of the origin's version, which is the body the carried header
    names and adds the origin's ``record``, with the category and classification the
    re-published record keeps (§5.6 rule 2); and the contribution's sidecar, verified under
    ``node_public_hex`` by §10.8 rules 1–6.

    Not given, so not checked: the signature of the upstream's delta role over the carried
    header (no sidecar for it) and the upstream's other headers, which would tie the header to
    the upstream's history beyond the inclusion proof; the checkpoint's freshness (no clock);
    the upstream's newest root, which §5.6 says must not declare this hub in turn; and that
    ``node_public_hex`` is a key ``node-1`` enrolled and that ``node-1`` served ``platform-a``,
    the platform the record's source names (§7.3, §7.5): the case gives the key, not the
    enrolment; and, for an ``exchange`` origin, that the exchange holds the record (§5.7):
    the count an auditor reports is checked, and that a StopNCII record gives the origin's
    hash.
    """
    context = context_of(case_input)
    upstream = case_input["upstream"]
    for entry, origin in provenance.origins.items():
        added = context.claiming_records()[entry]
        if isinstance(origin, UpstreamOrigin):
            record = audit_upstream_origin(
                origin,
                provenance.header_of(origin),
                context.root.upstreams[origin.hub],
                context.hash_type,
                upstream["root_text"].encode("utf-8"),
                upstream["root_sig_text"].encode("utf-8"),
                upstream["checkpoint_text"],
                upstream["body_text"].encode("utf-8"),
            )
            audit_republication(added, record, context.root.root.name)
        elif isinstance(origin, ExchangeOrigin):
            assert (origin.api, origin.record["hashValue"]) == ("stopncii", added.hash_hex)
        else:
            contribution = audit_member_origin(origin, bytes.fromhex(case_input["node_public_hex"]))
            assert contribution.hashes["pdq"].hash_hex == added.hash_hex
    vouched: dict[str, int] = {}
    for record in context.claiming_records().values():
        if record.source_kind == "exchange":
            name = record.source.removeprefix("exchange:")
            vouched[name] = vouched.get(name, 0) + 1
    assert audit_exchange_origins(provenance) == vouched


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
            provenance.header_of(origin),
            declared,
            "pdq",
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
            provenance.header_of(origin),
            declared,
            "pdq",
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

    ``neg-provenance-undeclared-upstream.json`` changes only the ``hub`` of the origin and of
    its upstream header, so the record's source (``hub:entries.example``) no longer matches and
    the first clause fails before this one is reached. Here the record, its origin and the
    header it names agree on ``hotline.example``, which the root does not declare.
    """
    case_input = load("provenance.json")["input"]
    body = case_input["body_text"].replace("hub:entries.example", "hub:hotline.example")
    document = case_input["provenance_text"].replace(
        '"hub":"entries.example"', '"hub":"hotline.example"'
    )
    assert document.count('"hub":"hotline.example"') == 2  # the origin and its header
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


def carried_changed(document: dict[str, Any], **members: Any) -> None:
    """Change the one member of ``upstream_headers`` (upstream v2's, which r-2 names)."""
    (carried,) = document["upstream_headers"]
    carried |= members


def header_base64(text: str, **members: Any) -> str:
    header = json.loads(base64.b64decode(text))
    return base64.b64encode(encode_canonical(header | members)).decode("ascii")


# Variants of provenance.json for rule clauses no vector reaches, each re-pointed so that every
# earlier rule passes: (what changes, the class, the rule, what the error says).
PROVENANCE_VARIANTS: list[tuple[str, str, str, str]] = [
    ("origins-key", "MalformedError", "7.5.3", "is not an entry id"),
    ("list-pattern", "MalformedError", "7.5.3", "breaks the list id pattern"),
    ("version-zero", "MalformedError", "7.5.3", "version is below 1"),
    ("origin-without-version", "MalformedError", "7.5.3", "origins.r-2 has members"),
    ("origin-with-header", "MalformedError", "7.5.3", "origins.r-2 has members"),
    ("upstream-headers-missing", "MalformedError", "7.5.3", "lacks upstream_headers"),
    (
        "upstream-headers-not-an-array",
        "MalformedError",
        "7.5.3",
        "upstream_headers is not a JSON list",
    ),
    ("upstream-headers-over-cap", "MalformedError", "7.5.3", "more than 65536"),
    ("upstream-headers-empty", "MalformedError", "7.5.3", "which an origin names"),
    ("upstream-header-unnamed-beside", "MalformedError", "7.5.3", "which no origin names"),
    ("upstream-header-extra-member", "MalformedError", "7.5.3", "upstream_headers[0] has members"),
    ("upstream-header-hub-not-a-name", "MalformedError", "7.5.3", "upstream_headers[0].hub"),
    ("upstream-header-size-zero", "MalformedError", "7.5.3", "upstream_headers[0].size"),
    ("proof-over-64", "MalformedError", "7.5.3", "upstream_headers[0].proof"),
    ("list", "ConsistencyError", "7.5.4", "provenance of list"),
    ("upstream-header-of-another-list", "ConsistencyError", "7.5.6", "not entries-md5 v2"),
    ("upstream-header-not-a-header", "MalformedError", "7.5.6", "header version"),
    ("upstream-header-wrong-type", "WrongTypeError", "7.5.6", "_type"),
    ("upstream-header-count", "ConsistencyError", "7.5.6", "count arithmetic"),
    ("upstream-record-malformed", "MalformedError", "7.5.6", "not a time"),
    ("leaf-outside-the-tree", "ProofError", "7.5.6", "outside a tree of 1"),
    ("proof-too-long", "ProofError", "7.5.6", "more hashes than the path"),
    ("contribution-not-canonical", "MalformedError", "7.5.7", "RFC 8785"),
    ("contribution-without-pdq", "ConsistencyError", "7.5.7", "m-1:"),
    ("both-origins-fail", "ConsistencyError", "7.5.7", "m-1:"),
]


def provenance_variant(name: str) -> dict[str, Any]:
    case_input = load("provenance.json")["input"]
    document = json.loads(case_input["provenance_text"])
    r2, m1 = document["origins"]["r-2"], document["origins"]["m-1"]
    (carried,) = document["upstream_headers"]
    if name == "origins-key":
        document["origins"]["R-2"] = document["origins"].pop("r-2")
    elif name == "list-pattern":
        document["list"] = "Entries-PDQ"
    elif name == "version-zero":
        document["version"] = 0
    elif name == "origin-without-version":
        del r2["version"]
    elif name == "origin-with-header":
        # the old form: the header in the origin itself
        origin_changed(document, "r-2", header=carried["header"])
    elif name == "upstream-headers-missing":
        del document["upstream_headers"]
    elif name == "upstream-headers-not-an-array":
        document["upstream_headers"] = {"0": carried}
    elif name == "upstream-headers-over-cap":
        document["upstream_headers"] += [0] * 65_536
    elif name == "upstream-headers-empty":
        document["upstream_headers"] = []
    elif name == "upstream-header-unnamed-beside":
        document["upstream_headers"].insert(0, carried | {"version": 1})
    elif name == "upstream-header-extra-member":
        carried_changed(document, record=r2["record"])
    elif name == "upstream-header-hub-not-a-name":
        carried_changed(document, hub="Entries.example")
    elif name == "upstream-header-size-zero":
        carried_changed(document, size=0)
    elif name == "proof-over-64":
        carried_changed(document, proof=carried["proof"] * 65)
    elif name == "list":
        document["list"] = "entries-md5"
    elif name == "upstream-header-of-another-list":
        origin_changed(document, "r-2", list="entries-md5")
        carried_changed(document, list="entries-md5")
    elif name == "upstream-header-not-a-header":
        carried_changed(document, header=header_base64(carried["header"], version=0))
    elif name == "upstream-header-wrong-type":
        carried_changed(document, header=header_base64(carried["header"], _type="x.delta.v1"))
    elif name == "upstream-header-count":
        result_state = json.loads(base64.b64decode(carried["header"]))["result_state"]
        wrong = result_state | {"count": result_state["count"] + 1}
        carried_changed(document, header=header_base64(carried["header"], result_state=wrong))
    elif name == "upstream-record-malformed":
        origin_changed(document, "r-2", record=r2["record"].replace(" -", " never"))
    elif name == "leaf-outside-the-tree":
        carried_changed(document, size=1, proof=[])
    elif name == "proof-too-long":
        carried_changed(document, proof=[*carried["proof"], carried["root"]])
    elif name == "contribution-not-canonical":
        spaced = base64.b64decode(m1["contribution"]).replace(b",", b", ", 1)
        origin_changed(document, "m-1", contribution=base64.b64encode(spaced).decode())
    elif name in ("contribution-without-pdq", "both-origins-fail"):
        # m-1 sorts before r-2, so its rule 7 is reported before r-2's rule 6
        contribution = json.loads(base64.b64decode(m1["contribution"]))
        contribution["hashes"] = {"md5": {"hash": "0" * 32}}
        encoded = base64.b64encode(encode_canonical(contribution)).decode()
        origin_changed(document, "m-1", contribution=encoded)
        if name == "both-origins-fail":
            carried_changed(document, proof=[carried["root"]])
    else:
        raise LookupError(name)
    text = encode_canonical(document).decode("utf-8")
    return repointed(case_input, case_input["body_text"], text)


@pytest.mark.parametrize(("name", "error", "rule_name", "said"), PROVENANCE_VARIANTS)
def test_a_provenance_variant_fails_at_its_rule(
    name: str, error: str, rule_name: str, said: str
) -> None:
    with pytest.raises(ProtocolError) as raised:
        provenance_of(provenance_variant(name))
    fails_as({"error": error, "rules": [rule_name]}, raised.value)
    assert said in str(raised.value)


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


ITEM_1_RECORD = load("neg-provenance-other-hash.json")  # the upstream's record of item-1
ITEM_1_LINE: str = json.loads(ITEM_1_RECORD["input"]["provenance_text"])["origins"]["r-2"]["record"]


def with_item_1(case_input: Mapping[str, Any], entry: str) -> str:
    """Body v1 of ``provenance.json`` adding item-1 too, as ``entry`` re-published from
    entries.example (records ascend by their line, §7.4: item-1's hash sorts third)."""
    added = ITEM_1_LINE.split(" ")
    line = " ".join([added[0], entry, *added[2:4], "hub:entries.example", *added[5:]])
    lines = case_input["body_text"].split("\n")
    lines.insert(3, f"+{line}")
    return "\n".join(lines)


def test_two_origins_of_one_upstream_version_share_its_header() -> None:
    """One member of ``upstream_headers`` for both origins that name upstream v2.

    The version's rules hold: the record parses and carries the added record's hash. Only the
    auditor, reading the upstream's body of v2, finds that v2 did not add item-1.
    """
    case_input = load("provenance.json")["input"]
    document = json.loads(case_input["provenance_text"])
    document["origins"]["r-3"] = document["origins"]["r-2"] | {"record": ITEM_1_LINE}
    accepted = repointed(
        case_input,
        with_item_1(case_input, "r-3"),
        encode_canonical(document).decode("utf-8"),
    )
    provenance = provenance_of(accepted)
    r2, r3 = provenance.origins["r-2"], provenance.origins["r-3"]
    assert isinstance(r2, UpstreamOrigin)
    assert isinstance(r3, UpstreamOrigin)
    assert list(provenance.upstream_headers) == [("entries.example", "entries-pdq", 2)]
    assert provenance.header_of(r3) is provenance.header_of(r2)
    upstream = case_input["upstream"]
    with pytest.raises(ProtocolError) as raised:
        audit_upstream_origin(
            r3,
            provenance.header_of(r3),
            context_of(accepted).root.upstreams["entries.example"],
            "pdq",
            upstream["root_text"].encode(),
            upstream["root_sig_text"].encode(),
            upstream["checkpoint_text"],
            upstream["body_text"].encode(),
        )
    assert type(raised.value).__name__ == "ConsistencyError"
    assert "does not add the record" in str(raised.value)


def two_upstream_versions(reverse: bool, swap_proofs: bool = False) -> dict[str, Any]:
    """``provenance.json`` with r-1 re-published from an upstream v1 beside r-2 from its v2.

    The case holds upstream v2's header alone, so v1's is made here (what the version's rules
    read of it: its list and version, a first header's ``prev``, its count arithmetic) and the
    two headers' tree of size 2 computed by the other reader. Each member of
    ``upstream_headers`` carries its own inclusion proof in that tree.
    """
    case_input = load("provenance.json")["input"]
    document = json.loads(case_input["provenance_text"])
    (v2,) = document["upstream_headers"]
    header_2 = base64.b64decode(v2["header"])
    fields = json.loads(header_2)
    header_1 = encode_canonical(
        fields
        | {
            "version": 1,
            "prev": "0" * 64,
            "created": "2026-01-01T01:00:00Z",
            "base_state": {"count": 0, "sha256": hashlib.sha256(b"").hexdigest()},
            "result_state": fields["base_state"],
        }
    )
    leaves = [leaf_hash(header_1), leaf_hash(header_2)]
    tree = base64.b64encode(merkle_root(leaves)).decode("ascii")
    proofs = [[base64.b64encode(leaf).decode("ascii")] for leaf in reversed(leaves)]
    if swap_proofs:
        proofs.reverse()
    v1 = v2 | {
        "version": 1,
        "header": base64.b64encode(header_1).decode("ascii"),
        "size": 2,
        "root": tree,
        "proof": proofs[0],
    }
    v2 |= {"size": 2, "root": tree, "proof": proofs[1]}
    document["upstream_headers"] = [v2, v1] if reverse else [v1, v2]
    document["origins"]["r-1"] = document["origins"]["r-2"] | {"version": 1, "record": ITEM_1_LINE}
    return repointed(
        case_input,
        with_item_1(case_input, "r-1"),
        encode_canonical(document).decode("utf-8"),
    )


@pytest.mark.parametrize("reverse", [False, True], ids=["writer-order", "reversed"])
def test_upstream_headers_are_read_in_any_order(reverse: bool) -> None:
    """A writer orders them by hub, list and version; a reader does not depend on it."""
    provenance = provenance_of(two_upstream_versions(reverse))
    assert set(provenance.origins) == {"m-1", "r-1", "r-2"}
    for entry, version in (("r-1", 1), ("r-2", 2)):
        origin = provenance.origins[entry]
        assert isinstance(origin, UpstreamOrigin)
        carried = provenance.header_of(origin)
        assert (carried.version, carried.size) == (version, 2)
        assert json.loads(carried.header)["version"] == version


def test_each_upstream_header_is_proved_by_its_own_proof() -> None:
    """The two-version document again, each member given the other's proof: r-1, whose entry
    id sorts first, is the origin reported."""
    with pytest.raises(ProtocolError) as raised:
        provenance_of(two_upstream_versions(reverse=False, swap_proofs=True))
    fails_as({"error": "ProofError", "rules": ["7.5.6"]}, raised.value)


def test_a_version_claiming_origins_without_a_document_fails_rule_5() -> None:
    """Rule 5's added clause, checked before rule 1: no ``provenance`` member at all."""
    case_input = dict(load("provenance.json")["input"])
    header = json.loads(case_input["header_text"])
    del header["provenance"]
    case_input["header_text"] = encode_canonical(header).decode("utf-8")
    with pytest.raises(ProtocolError) as raised:
        provenance_of(case_input)
    fails_as({"error": "ConsistencyError", "rules": ["7.5.5"]}, raised.value)
    assert failed_rules(raised.value) == ["7.5.5"]


def test_a_document_without_origins_carries_no_upstream_header() -> None:
    """``upstream_headers`` is ``[]`` when no origin is of kind ``hub``; a version adding only
    the hub's own import proves nothing, and an empty document says so."""
    case_input = load("provenance.json")["input"]
    body = "\n".join(
        line
        for line in case_input["body_text"].split("\n")
        if " import:" in line or "+" not in line
    )
    document = json.loads(case_input["provenance_text"]) | {"origins": {}, "upstream_headers": []}
    provenance = provenance_of(
        repointed(case_input, body, encode_canonical(document).decode("utf-8"))
    )
    assert (provenance.origins, provenance.upstream_headers) == ({}, {})


def test_what_section_5_6_asks_of_a_republished_record_is_an_auditors() -> None:
    """§7.5 rule 6 checks the hash alone: a record re-published under other terms, or a line
    whose upstream source is this hub's own, passes the version's rules; the auditor refuses
    both (§5.6 rules 1 and 2)."""
    case_input = load("provenance.json")["input"]
    line = json.loads(case_input["provenance_text"])["origins"]["r-2"]["record"]
    fields = line.split(" ")
    came_back = " ".join([*fields[:4], "hub:regional.example", *fields[5:]])
    body = case_input["body_text"].replace("r-2 fraud low", "r-2 fraud high")
    for changed_body, record in ((body, line), (case_input["body_text"], came_back)):
        document = json.loads(case_input["provenance_text"])
        document["origins"]["r-2"]["record"] = record
        variant = repointed(case_input, changed_body, encode_canonical(document).decode("utf-8"))
        provenance_of(variant)
        added = context_of(variant).claiming_records()["r-2"]
        with pytest.raises(ProtocolError) as raised:
            audit_republication(added, parse_record(record, 32), "regional.example")
        assert type(raised.value).__name__ == "ConsistencyError"
        said = "come back round" if record == came_back else "hash and terms"
        assert said in str(raised.value)
    # and the auditor's reading of the upstream's list, whose hash type must be this one's
    provenance = provenance_of(case_input)
    origin = provenance.origins["r-2"]
    assert isinstance(origin, UpstreamOrigin)
    upstream = case_input["upstream"]
    with pytest.raises(ProtocolError) as raised:
        audit_upstream_origin(
            origin,
            provenance.header_of(origin),
            context_of(case_input).root.upstreams["entries.example"],
            "sha256",
            upstream["root_text"].encode(),
            upstream["root_sig_text"].encode(),
            upstream["checkpoint_text"],
            upstream["body_text"].encode(),
        )
    assert "entries-pdq is of pdq, not sha256" in str(raised.value)


# ---------------------------------------------------------------------------------------------
# §7.5 rule 8: exchange origins beyond the vectors


def exchange_variant(**members: Any) -> dict[str, Any]:
    """``provenance-exchange.json`` with x-5's origin changed, header v re-pointed at it."""
    case_input = load("provenance-exchange.json")["input"]
    document = json.loads(case_input["provenance_text"])
    for name, value in members.items():
        if value is None:
            del document["origins"]["x-5"][name]
        else:
            document["origins"]["x-5"][name] = value
    text = encode_canonical(document).decode("utf-8")
    return repointed(case_input, case_input["body_text"], text)


def created_of(case_input: Mapping[str, Any]) -> str:
    created: str = json.loads(case_input["header_text"])["created"]
    return created


def record_of_size(size: int) -> dict[str, Any]:
    """x-5's StopNCII record padded (in ``caseNumbers``) to ``size`` bytes in canonical form."""
    case_input = load("provenance-exchange.json")["input"]
    record: dict[str, Any] = json.loads(case_input["provenance_text"])["origins"]["x-5"]["record"]
    record["caseNumbers"] = {"demo-ngo": ""}
    record["caseNumbers"]["demo-ngo"] = "c" * (size - len(encode_canonical(record)))
    assert len(encode_canonical(record)) == size
    return record


def test_an_exchange_origin_at_its_limits_is_accepted() -> None:
    """Rule 8's bounds are inclusive: fetched at header v's ``created`` (not after it), and a
    record of exactly 65,536 bytes in canonical form."""
    case_input = load("provenance-exchange.json")["input"]
    accepted = exchange_variant(fetched=created_of(case_input), record=record_of_size(65_536))
    origin = provenance_of(accepted).origins["x-5"]
    assert isinstance(origin, ExchangeOrigin)
    assert origin.fetched == created_of(case_input)
    assert len(encode_canonical(origin.record)) == 65_536


EXCHANGE_VARIANTS: list[tuple[dict[str, Any], str, str, str]] = [
    # (x-5's origin changed, the class, the rule, what the error says)
    ({"record": None}, "MalformedError", "7.5.3", "origins.x-5 has members"),
    ({"fetched": 1767235500}, "MalformedError", "7.5.3", "x-5.fetched is not a string"),
    ({"record": [1, 2]}, "MalformedError", "7.5.3", "x-5.record is not an object"),
    ({"exchange": "-stopncii"}, "MalformedError", "7.5.8", "is not a hub name"),
    ({"exchange": "stop_ncii"}, "MalformedError", "7.5.8", "is not a hub name"),
    ({"api": ""}, "MalformedError", "7.5.8", "is not a term"),
    ({"hash": "0" * 129}, "MalformedError", "7.5.8", "1 to 128 lowercase hex"),
    ({"hash": ""}, "MalformedError", "7.5.8", "1 to 128 lowercase hex"),
    ({"hash": "0" * 128}, "ConsistencyError", "7.5.8", "not the record's"),
    ({"fetched": "2026-02-30T00:00:00Z"}, "MalformedError", "7.5.8", "not a valid time"),
    ({"record": record_of_size(65_537)}, "LimitError", "7.5.8", "65537 bytes"),
]


@pytest.mark.parametrize(
    ("members", "error", "rule_name", "said"),
    EXCHANGE_VARIANTS,
    ids=[f"{next(iter(m))}-{n}" for n, (m, *_) in enumerate(EXCHANGE_VARIANTS)],
)
def test_an_exchange_variant_fails_at_its_rule(
    members: dict[str, Any], error: str, rule_name: str, said: str
) -> None:
    with pytest.raises(ProtocolError) as raised:
        provenance_of(exchange_variant(**members))
    fails_as({"error": error, "rules": [rule_name]}, raised.value)
    assert said in str(raised.value)


def test_an_exchange_origins_form_is_checked_after_rules_4_and_5() -> None:
    """Rule 8 comes after rules 4 and 5: a document of another version whose exchange origin is
    also malformed fails at rule 4, as ConsistencyError, not at its origin's form."""
    case_input = load("provenance-exchange.json")["input"]
    document = json.loads(case_input["provenance_text"])
    document["version"] = 2
    document["origins"]["x-5"]["exchange"] = "Not A Name"
    with pytest.raises(ProtocolError) as raised:
        provenance_of(
            repointed(
                case_input, case_input["body_text"], encode_canonical(document).decode("utf-8")
            )
        )
    fails_as({"error": "ConsistencyError", "rules": ["7.5.4"]}, raised.value)
    del document["origins"]["x-5"]
    document["version"] = 1
    with pytest.raises(ProtocolError) as raised:
        provenance_of(
            repointed(
                case_input, case_input["body_text"], encode_canonical(document).decode("utf-8")
            )
        )
    fails_as({"error": "ConsistencyError", "rules": ["7.5.5"]}, raised.value)
