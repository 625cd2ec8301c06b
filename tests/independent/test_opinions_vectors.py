"""Every opinion-summary vector, replayed by the second reader written from PROTOCOL.md alone.

The case files are found by globbing, so a new ``opinions-summary-*`` or ``neg-opinions-*``
case is tested without touching this file; a case whose ``check`` this file does not know fails
rather than being skipped. A negative case must raise exactly the error class it names.

A positive case is checked twice over: the summary obeys §10.7 rules 1–7 against its header,
root and state, and its voices are exactly the fold (§10.7) of the signed acks the case gives,
each verified first by §10.4 (sidecar and co-signature, Ed25519). The ack vectors are replayed
too, since the fold is only as good as the ack reader under it. The case's header is taken as
already verified, as the check says: it carries no sidecar.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.independent.entries_reader import encode_canonical
from tests.independent.opinions_reader import (
    Ack,
    CutNode,
    EntryOpinions,
    FoldError,
    OpinionSummary,
    ProtocolError,
    VersionContext,
    Voice,
    fold,
    fold_findings,
    note_key_id,
    verify_ack,
    verify_summary,
)

CASES = Path(__file__).resolve().parents[2] / "docs" / "vectors" / "cases"
SUMMARY_FILES = sorted({*CASES.glob("opinions-summary-*.json"), *CASES.glob("neg-opinions-*.json")})
ACK_FILES = sorted({*CASES.glob("ack*.json"), *CASES.glob("neg-ack-*.json")})
# Ack checks this reader does not replay: the request vector (``ack``) is the signer's side,
# and key periods (§10.4.1) are outside the sections it was written from.
ACK_CHECKS_ELSEWHERE = frozenset({"ack", "verify_ack_periods"})


def load(name: str) -> dict[str, Any]:
    case: dict[str, Any] = json.loads((CASES / name).read_text(encoding="utf-8"))
    return case


def raises_exactly(error: str, action: Callable[[], object]) -> None:
    """Run ``action``; it must raise the §14 error named ``error``, that class and no other."""
    with pytest.raises(ProtocolError) as raised:
        action()
    assert type(raised.value).__name__ == error, f"raised {raised.value!r}, not {error}"


def context_of(case_input: Mapping[str, Any]) -> VersionContext:
    return VersionContext.read(
        case_input["header_text"].encode("utf-8"),
        case_input["root_text"].encode("utf-8"),
        case_input["state_text"].encode("utf-8"),
    )


def summary_of(case_input: Mapping[str, Any]) -> OpinionSummary:
    return verify_summary(case_input["summary_text"].encode("utf-8"), context_of(case_input))


def acks_of(case_input: Mapping[str, Any]) -> list[Ack]:
    """Every ack of the case, verified by §10.4 under its node's key and the hub name."""
    acks = []
    for item in case_input["acks"]:
        ack = verify_ack(
            item["ack_text"].encode("utf-8"),
            item["sig_text"].encode("utf-8"),
            bytes.fromhex(item["node_public_hex"]),
            case_input["hub_name"],
        )
        assert ack.node == item["node"]
        acks.append(ack)
    return acks


def folded(case_input: Mapping[str, Any], summary: OpinionSummary) -> dict[str, EntryOpinions]:
    held = context_of(case_input).held
    return fold(acks_of(case_input), summary.nodes, held)


def check_opinions_summary(case: Mapping[str, Any]) -> None:
    case_input = case["input"]
    if "error" in case:
        raises_exactly(case["error"], lambda: summary_of(case_input))
        return
    expected = case["expected"]
    summary = summary_of(case_input)
    assert summary.sha256 == expected["summary_sha256"]
    assert sorted(summary.entries) == expected["entries"]
    assert summary.with_dispute("open") == expected["disputed"]
    assert summary.with_dispute("dismissed") == expected["dismissed"]
    counts = {
        entry: {"confirmed": len(opinions.confirmed), "disputed": len(opinions.disputed)}
        for entry, opinions in summary.entries.items()
    }
    assert counts == expected["counts"]
    voices = folded(case_input, summary)
    assert fold_findings(summary, voices) == []
    assert {entry: (o.confirmed, o.disputed) for entry, o in voices.items()} == {
        entry: (o.confirmed, o.disputed) for entry, o in summary.entries.items()
    }


CHECKS: Mapping[str, Callable[[Mapping[str, Any]], None]] = {
    "opinions_summary": check_opinions_summary,
}


def test_the_glob_finds_the_cases() -> None:
    """A broken path would make every parametrized test vanish silently."""
    assert len(SUMMARY_FILES) >= 20
    names = {path.name for path in SUMMARY_FILES}
    assert {"opinions-summary-v2.json", "opinions-summary-v3.json"} <= names
    assert {"neg-opinions-short.json", "neg-opinions-platform-both.json"} <= names
    assert len(ACK_FILES) >= 50


@pytest.mark.parametrize("path", SUMMARY_FILES, ids=[path.stem for path in SUMMARY_FILES])
def test_case(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    check = CHECKS.get(case["check"])
    assert check is not None, f"{path.name}: check {case['check']!r} is not read here"
    assert ("error" in case) != ("expected" in case)
    check(case)


@pytest.mark.parametrize("path", ACK_FILES, ids=[path.stem for path in ACK_FILES])
def test_ack_case(path: Path) -> None:
    """``accept_ack`` and ``verify_ack``: the §10.4 reader the fold stands on."""
    case = json.loads(path.read_text(encoding="utf-8"))
    if case["check"] in ACK_CHECKS_ELSEWHERE:
        return
    assert case["check"] in {"accept_ack", "verify_ack"}, f"{path.name}: {case['check']!r}"
    case_input = case["input"]

    def verified() -> Ack:
        return verify_ack(
            case_input["ack_text"].encode("utf-8"),
            case_input["sig_text"].encode("utf-8"),
            bytes.fromhex(case_input["node_public_hex"]),
            case_input["hub_name"],
        )

    if case["check"] == "verify_ack":
        raises_exactly(case["error"], verified)
        return
    ack, expected = verified(), case["expected"]
    assert ack.seq == expected["seq"]
    assert ack.extra == expected["extra"]
    if "opinions" in expected:
        opinions = {
            entry: {"position": o.position} | ({"reason": o.reason} if o.reason else {})
            for entry, o in ack.opinions.items()
        }
        assert opinions == expected["opinions"]
    if "kept" in expected:
        assert ack.kept == expected["kept"]
    if "hashes" in expected:
        assert ack.hashes == expected["hashes"]


# The vectors never make the fold disagree with a summary: their negatives all break a rule of
# §10.7 first. These variants of opinions-summary-v2.json and -v3.json, made by tampering with
# published bytes (and re-pointing the header, as a hub could, since the case takes the header
# as verified), show that the fold and the rules the vectors leave alone can fail.


def repointed(case_input: dict[str, Any], summary_text: str) -> dict[str, Any]:
    """The case with ``summary_text`` and header v re-pointed to its SHA-256 and length."""
    header = json.loads(case_input["header_text"])
    data = summary_text.encode("utf-8")
    header["opinions"] = {"sha256": hashlib.sha256(data).hexdigest(), "length": len(data)}
    header_text = encode_canonical(header).decode("utf-8")
    return {**case_input, "summary_text": summary_text, "header_text": header_text}


def test_a_changed_reason_passes_the_rules_but_not_the_fold() -> None:
    """A hub can re-point its header at any summary; only the acks show the voice is false."""
    case_input = load("opinions-summary-v2.json")["input"]
    text = case_input["summary_text"].replace('"reason":"blocked"', '"reason":"actioned"', 1)
    tampered = repointed(case_input, text)
    summary = summary_of(tampered)
    assert summary.entries["item-1"].confirmed["plat-a"] == Voice("node-a", 1, "actioned")
    findings = fold_findings(summary, folded(tampered, summary))
    assert len(findings) == 1
    assert "item-1: confirmed voice of plat-a" in findings[0]
    assert "'actioned'" in findings[0]
    assert "'blocked'" in findings[0]


def test_other_bytes_of_the_same_length_are_refused_by_rule_2() -> None:
    """§10.7 rule 2: same length, other bytes (a dispute opened a minute later)."""
    case_input = load("opinions-summary-v2.json")["input"]
    text = case_input["summary_text"].replace(
        '"opened":"2026-01-01T01:30:00Z"', '"opened":"2026-01-01T01:31:00Z"'
    )
    assert len(text) == len(case_input["summary_text"])
    summary_of(repointed(case_input, text))
    raises_exactly("ConsistencyError", lambda: summary_of({**case_input, "summary_text": text}))


def test_a_summary_longer_than_its_length_is_refused_by_rule_2() -> None:
    """§10.7 rule 2 and §11: a reader stops at ``length`` and fails."""
    case_input = load("opinions-summary-v2.json")["input"]
    text = case_input["summary_text"] + " "
    raises_exactly("LimitError", lambda: summary_of({**case_input, "summary_text": text}))


def test_an_ack_left_out_makes_the_fold_differ() -> None:
    """Without node-d's ack, plat-d's voices on item-2 and item-4 have no ack behind them."""
    case_input = load("opinions-summary-v2.json")["input"]
    summary = summary_of(case_input)
    without_d = {**case_input, "acks": [a for a in case_input["acks"] if a["node"] != "node-d"]}
    findings = fold_findings(summary, folded(without_d, summary))
    assert any("item-2: disputed voice of plat-d" in finding for finding in findings)
    assert any("item-4: in the summary, without a voice" in finding for finding in findings)
    assert len(findings) == 2


def test_the_cut_decides_which_acks_count() -> None:
    """node-a's seq 2 is past v2's cut; counted, it is v3's voice on item-1."""
    v2 = load("opinions-summary-v2.json")["input"]
    v3 = load("opinions-summary-v3.json")["input"]
    summary = summary_of(v2)
    nodes = {**summary.nodes, "node-a": CutNode("plat-a", 2)}
    raised = fold(acks_of(v2), nodes, context_of(v2).held)
    item_1 = raised["item-1"]
    assert item_1.confirmed == {}
    assert item_1.disputed == summary_of(v3).entries["item-1"].disputed
    assert item_1.disputed == {"plat-a": Voice("node-a", 2, "other")}


def test_a_dismissed_before_opened_dispute_is_refused_by_rule_7() -> None:
    """§10.7 rule 7: a dispute's ``dismissed`` before its ``opened``."""
    case_input = load("opinions-summary-v3.json")["input"]
    text = case_input["summary_text"].replace(
        '"dismissed":"2026-01-01T02:30:00Z"', '"dismissed":"2026-01-01T01:00:00Z"'
    )
    assert text != case_input["summary_text"]
    raises_exactly("ConsistencyError", lambda: summary_of(repointed(case_input, text)))


def test_a_dismissed_dispute_with_a_malformed_by_is_refused_by_rule_3() -> None:
    """§10.7 rule 3: ``by`` is ``[A-Za-z0-9][A-Za-z0-9._@-]{0,63}``."""
    case_input = load("opinions-summary-v3.json")["input"]
    text = case_input["summary_text"].replace('"by":"operator"', '"by":"oper ator"')
    raises_exactly("MalformedError", lambda: summary_of(repointed(case_input, text)))


def test_an_open_dispute_with_a_dismissal_is_refused_by_rule_3() -> None:
    """§10.7 rule 3: an open dispute has neither ``dismissed`` nor ``by``."""
    case_input = load("opinions-summary-v3.json")["input"]
    text = case_input["summary_text"].replace('"state":"dismissed"', '"state":"open"')
    raises_exactly("MalformedError", lambda: summary_of(repointed(case_input, text)))


def test_a_threshold_absent_from_the_root_means_two() -> None:
    """§5.4: ``dispute_threshold`` absent is 2, so the v2 summary (threshold 2) still holds."""
    case_input = load("opinions-summary-v2.json")["input"]
    root = case_input["root_text"].replace('"dispute_threshold":2,', "")
    assert root != case_input["root_text"]
    summary = summary_of({**case_input, "root_text": root})
    assert summary.threshold == 2
    three = case_input["root_text"].replace('"dispute_threshold":2', '"dispute_threshold":3')
    raises_exactly("ConsistencyError", lambda: summary_of({**case_input, "root_text": three}))


def test_a_header_without_opinions_names_no_summary() -> None:
    """§7.1: the member is optional; without it there is no summary to accept."""
    case_input = load("opinions-summary-v2.json")["input"]
    header = json.loads(case_input["header_text"])
    del header["opinions"]
    bare = {**case_input, "header_text": encode_canonical(header).decode("utf-8")}
    raises_exactly("ConsistencyError", lambda: summary_of(bare))


def test_the_state_must_be_the_state_at_v() -> None:
    """The entries held are read from the state header v's ``result_state`` names."""
    v2 = load("opinions-summary-v2.json")["input"]
    v3 = load("opinions-summary-v3.json")["input"]
    raises_exactly("ConsistencyError", lambda: summary_of({**v2, "state_text": v3["state_text"]}))


def tampered_ack(item: Mapping[str, Any], **changes: str) -> dict[str, Any]:
    return {**item, **changes}


@pytest.mark.parametrize(
    ("what", "error"),
    [("bytes", "SignatureError"), ("hub", "SignatureError"), ("key", "SignatureError")],
)
def test_an_ack_that_does_not_verify_is_not_folded(what: str, error: str) -> None:
    """§10.4: the sidecar over the exact bytes, the co-signature over the hub's checkpoint."""
    case_input = load("opinions-summary-v2.json")["input"]
    first, other = case_input["acks"][0], case_input["acks"][1]
    if what == "bytes":
        changed = first["ack_text"].replace('"checked":10', '"checked":11')
        case_input["acks"][0] = tampered_ack(first, ack_text=changed)
    elif what == "hub":
        case_input = {**case_input, "hub_name": "other.example"}
    else:
        case_input["acks"][0] = tampered_ack(first, node_public_hex=other["node_public_hex"])
    raises_exactly(error, lambda: acks_of(case_input))


# Acks signed here, with fresh keys, to pin down the fold's order on ties and across lists.

HUB = "entries.example"
ROOT_B64 = base64.b64encode(bytes(32)).decode("ascii")


class Node:
    """A node with a real Ed25519 key, signing acks as §10.1–§10.3 describe."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.key = Ed25519PrivateKey.generate()
        self.public = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def ack(self, seq: int, sent: str, opinions: Mapping[str, Any], list_id: str) -> Ack:
        moment = int(datetime.strptime(sent, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())
        checkpoint = f"{HUB}/lists/{list_id}\n1\n{ROOT_B64}\n"
        message = f"cosignature/v1\ntime {moment}\n{checkpoint}".encode()
        raw = (
            note_key_id(self.node_id, 0x04, self.public)
            + moment.to_bytes(8, "big")
            + self.key.sign(message)
        )
        document = {
            "_type": "hashhub.ack.v1",
            "node": self.node_id,
            "list": list_id,
            "seq": seq,
            "sent": sent,
            "applied": {
                "version": 1,
                "checkpoint_root": ROOT_B64,
                "state": {"count": 0, "sha256": hashlib.sha256(b"").hexdigest()},
            },
            "cosignature": f"\u2014 {self.node_id} {base64.b64encode(raw).decode('ascii')}",
            "counts": {
                "checked": 0,
                "matched": 0,
                "actioned": 0,
                "blocked": 0,
                "false_positive": 0,
                "hashes": {},
            },
            "opinions": dict(opinions),
        }
        data = encode_canonical(document)
        sidecar = encode_canonical(
            {
                "signatures": [
                    {
                        "keyid": hashlib.sha256(self.public).hexdigest(),
                        "sig": base64.b64encode(self.key.sign(data)).decode("ascii"),
                    }
                ]
            }
        )
        return verify_ack(data, sidecar, self.public, HUB)


CONFIRM = {"position": "confirmed", "reason": "actioned"}
DISPUTE = {"position": "disputed", "reason": "benign"}
TAKE_BACK = {"position": "none"}


def fold_one(acks: Sequence[Ack], nodes: Mapping[str, CutNode]) -> dict[str, EntryOpinions]:
    return fold(acks, nodes, frozenset({"e-1"}))


def test_the_newest_opinion_is_by_sent_then_seq_then_node_id() -> None:
    """§10.7: newest by ``sent``, then ``seq``, then node id as bytes (the larger is newer)."""
    a, b = Node("node-a"), Node("node-b")
    nodes = {"node-a": CutNode("plat", 9), "node-b": CutNode("plat", 9)}
    earlier = b.ack(5, "2026-01-01T01:00:00Z", {"e-1": DISPUTE}, "entries-pdq")
    later = a.ack(1, "2026-01-01T02:00:00Z", {"e-1": CONFIRM}, "entries-pdq")
    assert fold_one([earlier, later], nodes)["e-1"].confirmed == {
        "plat": Voice("node-a", 1, "actioned")
    }
    same_time_higher_seq = b.ack(6, "2026-01-01T02:00:00Z", {"e-1": DISPUTE}, "entries-pdq")
    assert fold_one([later, same_time_higher_seq], nodes)["e-1"].disputed == {
        "plat": Voice("node-b", 6, "benign")
    }
    same_time_same_seq = b.ack(1, "2026-01-01T02:00:00Z", {"e-1": DISPUTE}, "entries-pdq")
    assert fold_one([later, same_time_same_seq], nodes)["e-1"].disputed == {
        "plat": Voice("node-b", 1, "benign")
    }


def test_a_position_taken_back_leaves_no_voice() -> None:
    """§10.7: ``none`` counts for nothing, and it hides the platform's older opinion."""
    a = Node("node-a")
    nodes = {"node-a": CutNode("plat", 9)}
    confirmed = a.ack(1, "2026-01-01T01:00:00Z", {"e-1": CONFIRM}, "entries-pdq")
    taken_back = a.ack(2, "2026-01-01T02:00:00Z", {"e-1": TAKE_BACK}, "entries-pdq")
    assert "e-1" in fold_one([confirmed], nodes)
    assert fold_one([confirmed, taken_back], nodes) == {}


def test_acks_of_a_sibling_list_are_folded_too() -> None:
    """§10.7: an entry id is its collection's, so an ack of the MD5 list speaks for the PDQ list."""
    a = Node("node-a")
    nodes = {"node-a": CutNode("plat", 9)}
    pdq = a.ack(1, "2026-01-01T01:00:00Z", {"e-1": CONFIRM}, "entries-pdq")
    md5 = a.ack(2, "2026-01-01T02:00:00Z", {"e-1": DISPUTE}, "entries-md5")
    assert fold_one([pdq, md5], nodes)["e-1"].disputed == {"plat": Voice("node-a", 2, "benign")}


def test_two_different_acks_under_one_seq_cannot_be_folded() -> None:
    """§10.5.2: a hub stores one ack per ``seq``; two are evidence, not input to a fold."""
    a = Node("node-a")
    nodes = {"node-a": CutNode("plat", 9)}
    first = a.ack(1, "2026-01-01T01:00:00Z", {"e-1": CONFIRM}, "entries-pdq")
    second = a.ack(1, "2026-01-01T01:00:00Z", {"e-1": DISPUTE}, "entries-pdq")
    assert fold_one([first, first], nodes)["e-1"].confirmed
    with pytest.raises(FoldError):
        fold_one([first, second], nodes)
