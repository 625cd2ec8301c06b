"""Every entries vector, replayed by the second reader written from PROTOCOL.md alone.

The case files are found by globbing, so a new ``entries-*``, ``neg-entries-*``,
``neg-root-vocabulary-*`` or ``neg-root-format-*`` case is tested without touching this file;
a case whose ``check`` this file does not know fails rather than being skipped. A negative
case must raise exactly the error class it names — not a subclass, since ``VocabularyError``
is a ``BodyRuleError`` and a reader that raised the wrong one of the two would otherwise pass.

For the signed trees (``entries_sync``) the reader checks every Ed25519 signature of the root
and of the headers (§4.3, §13.1 step 1, §13.4 step 4), the header chain and the Merkle root the
checkpoint carries (§13.4), and every entries rule of §13.5–§13.7. It takes the case's word for
the checkpoint note's own signature lines and freshness (§13.2 steps 4–7, §13.3): §9.2 is
outside the sections it was written from.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.independent.entries_reader import (
    EntriesBody,
    EntriesListUpdate,
    EntriesState,
    ProtocolError,
    Removal,
    Root,
    StateDigest,
    Vocabulary,
    accept_successor,
    check_body_against_header,
    hash_width,
    make_entries_body,
    parse_entries_body,
    parse_header,
    parse_record,
    parse_root,
    parse_time,
    pin_root,
    record_from_fields,
    verify_entries_snapshot,
)

CASES = Path(__file__).resolve().parents[2] / "docs" / "vectors" / "cases"
PATTERNS = (
    "entries-*.json",
    "neg-entries-*.json",
    "neg-root-vocabulary-*.json",
    "neg-root-format-*.json",
)
CASE_FILES = sorted({path for pattern in PATTERNS for path in CASES.glob(pattern)})
SYNC_STAGES = ("checkpoint", "headers", "snapshot", "bodies", "apply")


def raises_exactly(error: str, action: Callable[[], object]) -> None:
    """Run ``action``; it must raise the §14 error named ``error``, that class and no other."""
    with pytest.raises(ProtocolError) as raised:
        action()
    assert type(raised.value).__name__ == error, f"raised {raised.value!r}, not {error}"


def vocabulary_of(case_input: Mapping[str, Any]) -> Vocabulary:
    return Vocabulary.from_json(case_input["vocabulary"])


def body_rules(case_input: Mapping[str, Any], text: str) -> EntriesBody:
    """``entries_body_rules``: §7.4 and §13.6 steps 5–6 against the given vocabulary."""
    body = parse_entries_body(text.encode("ascii"), case_input["hash_type"])
    check_body_against_header(body, vocabulary_of(case_input), parse_time(case_input["created"]))
    return body


def check_entries_record(case: Mapping[str, Any]) -> None:
    width = hash_width(case["input"]["hash_type"])
    lines = []
    for fields in case["input"]["records"]:
        record = record_from_fields(fields, width)
        lines.append(record.line)
        back = parse_record(record.line, width)
        assert back == record
        assert back.hash_hex == fields["hash_hex"]
        assert back.entry == fields["entry"]
        assert back.source == fields["source"]
        assert back.first_seen == parse_time(fields["first_seen"])
        assert back.expires == (
            None if fields["expires"] is None else parse_time(fields["expires"])
        )
    assert lines == case["expected"]["lines"]


def check_entries_body(case: Mapping[str, Any]) -> None:
    case_input, expected = case["input"], case["expected"]
    width = hash_width(case_input["hash_type"])
    removals = [
        Removal(parse_record(item["record"], width), item["reason"])
        for item in case_input["removes"]
    ]
    additions = [parse_record(line, width) for line in case_input["adds"]]
    data = make_entries_body(case_input["hash_type"], removals, additions).to_bytes()
    assert data.decode("ascii") == expected["text"]
    assert hashlib.sha256(data).hexdigest() == expected["sha256"]
    assert len(data) == expected["length"]
    body = body_rules(case_input, expected["text"])
    assert (len(body.additions), len(body.removals)) == (expected["adds"], expected["removes"])
    assert body.to_bytes() == data


def check_entries_state_digest(case: Mapping[str, Any]) -> None:
    width = hash_width(case["input"]["hash_type"])
    state = EntriesState.holding(parse_record(line, width) for line in case["input"]["records"])
    assert state.snapshot().decode("ascii") == case["expected"]["snapshot_text"]
    assert state.digest() == StateDigest(case["expected"]["count"], case["expected"]["sha256"])


def check_entries_body_rules(case: Mapping[str, Any]) -> None:
    case_input = case["input"]
    body_rules(case_input, case_input["valid_body_text"])
    raises_exactly(case["error"], lambda: body_rules(case_input, case_input["body_text"]))


def check_entries_apply(case: Mapping[str, Any]) -> None:
    case_input = case["input"]
    width = hash_width(case_input["hash_type"])
    state = EntriesState.holding(parse_record(line, width) for line in case_input["state_records"])
    before = state.digest()
    applied = state.apply(body_rules(case_input, case_input["valid_body_text"]))
    assert applied.digest() != before
    body = body_rules(case_input, case_input["body_text"])
    raises_exactly(case["error"], lambda: state.apply(body))
    assert state.digest() == before


def pinned(case_input: Mapping[str, Any]) -> Root:
    """The case's root, pinned as ``root/1.json`` (the cases name no file)."""
    return pin_root(
        case_input["root_text"].encode("utf-8"), case_input["root_sig_text"].encode("utf-8"), 1
    )


def check_entries_update_root(case: Mapping[str, Any]) -> None:
    case_input = case["input"]
    trusted = pinned(case_input)

    def successor() -> Root:
        return accept_successor(
            trusted,
            case_input["next_root_text"].encode("utf-8"),
            case_input["next_sig_text"].encode("utf-8"),
        )

    if "error" in case:
        raises_exactly(case["error"], successor)
        return
    root = successor()
    assert root.version == case["expected"]["root_version"]
    assert root.vocabulary is not None
    assert root.vocabulary.to_json() == case["expected"]["vocabulary"]


def check_parse_document(case: Mapping[str, Any]) -> None:
    case_input = case["input"]
    assert case_input["kind"] == "root", f"kind {case_input['kind']} is not read here"
    parse_root(case_input["valid_text"].encode("utf-8"))
    raises_exactly(case["error"], lambda: parse_root(case_input["text"].encode("utf-8")))


def run_sync(
    case_input: Mapping[str, Any], base: int | None
) -> tuple[list[str], ProtocolError | None, EntriesState | None]:
    """Run the stages of ``entries_sync`` in order until one fails.

    Returns the stages passed, the error the next one raised (None if all passed) and the
    state the last stage reached.
    """
    update = EntriesListUpdate(
        [pinned(case_input)], case_input["list"], parse_time(case_input["now"])
    )
    versions = range((base or 0) + 1, len(case_input["headers"]) + 1)
    outcome: dict[str, EntriesState] = {}

    def headers() -> None:
        for header in case_input["headers"]:
            update.add_header(header["header_text"].encode(), header["sig_text"].encode())

    def snapshot() -> None:
        if base is not None:
            update.add_snapshot(base, case_input["snapshots"][str(base)].encode("ascii"))

    def bodies() -> None:
        for version in versions:
            update.add_body(version, case_input["bodies"][str(version)].encode("ascii"))

    def apply() -> None:
        outcome["state"] = update.apply()

    stages: list[tuple[str, Callable[[], None]]] = [
        ("checkpoint", lambda: update.begin(case_input["checkpoint_text"])),
        ("headers", headers),
        ("snapshot", snapshot),
        ("bodies", bodies),
        ("apply", apply),
    ]
    passed: list[str] = []
    for name, stage in stages:
        try:
            stage()
        except ProtocolError as exc:
            return passed, exc, None
        passed.append(name)
    return passed, None, outcome["state"]


def check_entries_sync(case: Mapping[str, Any]) -> None:
    """Verify and apply the case's tree: from nothing, and from every snapshot it carries."""
    case_input = case["input"]
    if "error" in case:
        passed, error, _ = run_sync(case_input, case_input["base"])
        assert error is not None, "every stage passed"
        stage = SYNC_STAGES[len(passed)]
        assert (stage, type(error).__name__) == (case["fails_at"], case["error"]), str(error)
        return
    expected = case["expected"]
    now = parse_time(case_input["now"])
    bases: list[int | None] = [case_input["base"], *(int(v) for v in case_input["snapshots"])]
    for base in bases:
        passed, error, state = run_sync(case_input, base)
        assert error is None, f"base {base}: {passed}, then {error!r}"
        assert state is not None
        assert len(case_input["headers"]) == expected["version"]
        assert state.digest() == StateDigest(
            expected["state"]["count"], expected["state"]["sha256"]
        )
        assert [record.line for record in state.records] == expected["records"]
        expired = [record.entry for record in state.records if record.expired_at(now)]
        assert sorted(expired) == sorted(expected["expired_at_now"])


CHECKS: Mapping[str, Callable[[Mapping[str, Any]], None]] = {
    "entries_record": check_entries_record,
    "entries_body": check_entries_body,
    "entries_state_digest": check_entries_state_digest,
    "entries_body_rules": check_entries_body_rules,
    "entries_apply": check_entries_apply,
    "entries_update_root": check_entries_update_root,
    "parse_document": check_parse_document,
    "entries_sync": check_entries_sync,
}


def test_the_glob_finds_the_cases() -> None:
    """A broken path would make every parametrized test vanish silently."""
    assert len(CASE_FILES) >= 50
    names = {path.name for path in CASE_FILES}
    assert {"entries-sync.json", "neg-root-format-changed.json"} <= names


@pytest.mark.parametrize("path", CASE_FILES, ids=[path.stem for path in CASE_FILES])
def test_case(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    check = CHECKS.get(case["check"])
    assert check is not None, f"{path.name}: check {case['check']!r} is not read here"
    assert ("error" in case) != ("expected" in case)
    check(case)


# The vectors above never make the signed-tree checks of this reader fail (their entries
# negatives all fail at the snapshot or the bodies). These variants of entries-sync.json, made
# by tampering with published bytes, show that those checks can fail and fail as §13 says.


def sync_case() -> dict[str, Any]:
    case: dict[str, Any] = json.loads((CASES / "entries-sync.json").read_text(encoding="utf-8"))
    return case


def fails_at(
    case_input: Mapping[str, Any], stage: str, error: str, base: int | None = None
) -> None:
    passed, raised, _ = run_sync(case_input, base)
    assert raised is not None, "every stage passed"
    assert (SYNC_STAGES[len(passed)], type(raised).__name__) == (stage, error), repr(raised)


def test_a_tampered_header_is_refused_before_it_is_parsed() -> None:
    """§4.2, §13.4 step 4: the delta role signs the exact bytes."""
    case_input = sync_case()["input"]
    header = case_input["headers"][1]
    header["header_text"] = header["header_text"].replace("02:00:00Z", "02:00:01Z")
    fails_at(case_input, "headers", "SignatureError")


def test_headers_must_reproduce_the_checkpoint_root() -> None:
    """§13.4 step 14: a checkpoint whose root the headers do not reproduce."""
    case_input = sync_case()["input"]
    origin, size, _, rest = case_input["checkpoint_text"].split("\n", 3)
    zero_root = base64.b64encode(bytes(32)).decode("ascii")
    case_input["checkpoint_text"] = "\n".join((origin, size, zero_root, rest))
    fails_at(case_input, "headers", "ConsistencyError")


def test_the_root_expires_at_its_expires_instant() -> None:
    """§13.1 item 3: at exactly ``expires`` the root is expired."""
    case_input = sync_case()["input"]
    case_input["now"] = "2026-06-30T00:00:00Z"
    fails_at(case_input, "checkpoint", "ExpiredError")


def test_a_body_must_be_the_one_its_header_names() -> None:
    """§13.6 step 2: same length, other bytes."""
    case_input = sync_case()["input"]
    case_input["bodies"]["4"] = case_input["bodies"]["4"].replace("high", "low ", 1)
    fails_at(case_input, "bodies", "ConsistencyError")


def test_a_root_pinned_under_another_file_name_is_refused() -> None:
    """§13.1 step 1: the version must be the file's N."""
    case_input = sync_case()["input"]
    raises_exactly(
        "RollbackError",
        lambda: pin_root(case_input["root_text"].encode(), case_input["root_sig_text"].encode(), 2),
    )


def test_a_non_canonical_root_is_refused() -> None:
    """§3.1 rule 7: the same value, one insignificant space."""
    text = sync_case()["input"]["root_text"].replace('"version":1', '"version": 1')
    raises_exactly("MalformedError", lambda: parse_root(text.encode()))


def test_snapshot_terms_are_checked_against_the_root_header_names() -> None:
    """§13.5 step 3: a snapshot record with a term that root does not declare."""
    case_input = sync_case()["input"]
    header = parse_header(case_input["headers"][1]["header_text"].encode())
    snapshot = case_input["snapshots"]["2"].encode("ascii")
    full = parse_root(case_input["root_text"].encode()).vocabulary
    assert full is not None
    verify_entries_snapshot(snapshot, header.result_state, 32, full)
    without_fraud = Vocabulary(("extremism", "ncii"), full.classifications, full.sources)
    raises_exactly(
        "VocabularyError",
        lambda: verify_entries_snapshot(snapshot, header.result_state, 32, without_fraud),
    )
