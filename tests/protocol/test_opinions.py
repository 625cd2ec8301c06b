"""Opinion summaries (PROTOCOL.md §10.7): the fold, the summary's own rules, publishing one.

The vectors (``opinions-summary-*``, ``neg-opinions-*``) hold one case per rule; these
tests hold what a vector cannot show at once: the order of the fold over many acks, a
summary's bytes surviving a parse, and the publisher placing the summary before the header
that names it.
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta

import pytest

from protocol import (
    Ack,
    AppliedVersion,
    ConsistencyError,
    Counts,
    DeltaHeader,
    Dispute,
    Entry,
    EntryOpinions,
    ListHead,
    ListSpec,
    MalformedError,
    NodeCut,
    Opinion,
    OpinionSummary,
    Policy,
    Publisher,
    Role,
    Root,
    SigningKey,
    StateDigest,
    Vocabulary,
    Voice,
    fold_positions,
    header_opinions,
    opinions_path,
    sign_ack,
    verify_summary,
    voices_of,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LIST = "ncii-pdq"


def _root(threshold: int | None = None) -> tuple[Root, SigningKey]:
    key = SigningKey.from_seed(hashlib.sha256(b"opinions test key").digest())
    root = Root(
        version=1,
        name="hub.example",
        expires=T0 + timedelta(days=365),
        keys={key.keyid: key.public},
        roles={r: Role((key.keyid,), 1) for r in ("root", "delta", "checkpoint", "timestamp")},
        lists={LIST: ListSpec(LIST, "pdq", 31, format="entries")},
        policy=Policy(dispute_threshold=threshold),
        vocabulary=Vocabulary(("ncii",), ("unconfirmed", "confirmed"), ("submission",)),
    )
    return root, key


def _entry(n: int) -> Entry:
    return Entry(
        hash=hashlib.sha256(f"item {n}".encode()).digest(),
        entry_id=f"e-{n}",
        category="ncii",
        classification="confirmed",
        source_kind="submission",
        source_ref=None,
        first_seen=T0,
        expires=None,
    )


def _ack(node: str, seq: int, sent: datetime, opinions: dict[str, Opinion]) -> Ack:
    key = SigningKey.from_seed(hashlib.sha256(node.encode()).digest())
    data, _ = sign_ack(
        key=key,
        node=node,
        list_id=LIST,
        seq=seq,
        sent=sent,
        origin=f"hub.example/lists/{LIST}",
        applied=AppliedVersion(1, b"\0" * 32, StateDigest(0, hashlib.sha256(b"").hexdigest())),
        counts=Counts(),
        opinions=opinions,
    )
    return Ack.from_bytes(data)


def test_a_platform_speaks_once_by_its_newest_ack_in_the_cut() -> None:
    """Newest by sent, then seq, then node id; acks past the cut or of nodes outside it
    count for nothing; the order the acks are given in does not matter."""
    confirm = Opinion("confirmed", "blocked")
    dispute = Opinion("disputed", "benign")
    acks = [
        _ack("n-1", 1, T0, {"e-1": confirm}),
        _ack("n-2", 4, T0 + timedelta(seconds=5), {"e-1": dispute}),  # same platform, newer
        _ack("n-1", 2, T0 + timedelta(seconds=9), {"e-1": confirm}),  # past n-1's cut
        _ack("n-9", 1, T0 + timedelta(seconds=9), {"e-1": confirm}),  # not in the cut
        _ack("n-3", 1, T0 + timedelta(seconds=5), {"e-1": Opinion("none")}),
    ]
    cut = {"n-1": NodeCut("p-1", 1), "n-2": NodeCut("p-1", 4), "n-3": NodeCut("p-3", 1)}
    for _ in range(5):
        random.shuffle(acks)
        positions = fold_positions(acks, cut)
        assert {p: (v.node, v.seq) for p, v in positions["e-1"].items()} == {
            "p-1": ("n-2", 4),
            "p-3": ("n-3", 1),
        }
        voices = voices_of(positions["e-1"])
        assert dict(voices.disputed) == {"p-1": Voice("n-2", 4, "benign")}
        assert dict(voices.confirmed) == {}  # p-3 took its position back


def test_equal_times_are_ordered_by_seq_then_node() -> None:
    same = T0 + timedelta(seconds=1)
    acks = [
        _ack("n-b", 3, same, {"e-1": Opinion("confirmed", "actioned")}),
        _ack("n-a", 3, same, {"e-1": Opinion("disputed", "other")}),
        _ack("n-a", 2, same, {"e-1": Opinion("confirmed", "blocked")}),
    ]
    cut = {"n-a": NodeCut("p", 3), "n-b": NodeCut("p", 3)}
    assert fold_positions(acks, cut)["e-1"]["p"].node == "n-b"


def _summary(**changes: object) -> OpinionSummary:
    fields: dict[str, object] = {
        "list_id": LIST,
        "version": 2,
        "created": T0 + timedelta(hours=1),
        "threshold": 2,
        "nodes": {"n-1": NodeCut("p-1", 3), "n-2": NodeCut("p-2", 1)},
        "entries": {
            "e-1": EntryOpinions(
                disputed={"p-1": Voice("n-1", 3, "benign"), "p-2": Voice("n-2", 1, "other")},
                dispute=Dispute("dismissed", T0, T0 + timedelta(minutes=5), "ops.lead@hub"),
            )
        },
    }
    fields.update(changes)
    return OpinionSummary(**fields)  # type: ignore[arg-type]


def test_a_summary_round_trips_byte_for_byte() -> None:
    summary = _summary()
    again = OpinionSummary.from_bytes(summary.to_bytes())
    assert again == summary
    assert again.to_bytes() == summary.to_bytes()
    assert not again.disputed("e-1")  # dismissed: a node does not hold on it


@pytest.mark.parametrize(
    ("dispute", "error"),
    [
        (Dispute("open", T0 + timedelta(hours=2)), ConsistencyError),  # after created
        (None, ConsistencyError),  # two disputing platforms, threshold 2
    ],
)
def test_a_dispute_is_there_exactly_when_it_should_be(
    dispute: Dispute | None, error: type[Exception]
) -> None:
    voices = {"p-1": Voice("n-1", 3, "benign"), "p-2": Voice("n-2", 1, "other")}
    with pytest.raises(error):
        _summary(entries={"e-1": EntryOpinions(disputed=voices, dispute=dispute)})


def test_a_dismissed_dispute_says_when_and_by_whom() -> None:
    with pytest.raises(MalformedError):
        Dispute("dismissed", T0)
    with pytest.raises(MalformedError):
        Dispute("open", T0, T0, "someone")
    # Its times are the summary's rule 7, checked once the whole document has parsed.
    early = Dispute("dismissed", T0, T0 - timedelta(seconds=1), "someone")
    voices = {"p-1": Voice("n-1", 3, "benign"), "p-2": Voice("n-2", 1, "other")}
    with pytest.raises(ConsistencyError, match="dismissed before it was opened"):
        _summary(entries={"e-1": EntryOpinions(disputed=voices, dispute=early)})


def test_the_publisher_writes_the_summary_before_the_header_that_names_it() -> None:
    root, key = _root(threshold=1)
    pub = Publisher(root, {r: [key] for r in ("delta", "checkpoint", "timestamp")})
    head = ListHead.empty_entries(root, LIST)
    v1 = pub.publish_entries(head, adds=[_entry(1), _entry(2)], now=T0)
    assert header_opinions(v1.header) is None  # none asked for: the header is as before
    ack = _ack("n-1", 1, T0, {"e-1": Opinion("disputed", "not_the_content")})

    def summary(version: int, created: datetime, state: object) -> OpinionSummary:
        nodes = {"n-1": NodeCut("p-1", 1)}
        voices = voices_of(fold_positions([ack], nodes)["e-1"])
        opened = Dispute("open", created)
        return OpinionSummary(
            LIST, version, created, 1, nodes, {"e-1": EntryOpinions({}, voices.disputed, opened)}
        )

    v2 = pub.publish_entries(
        v1.head, adds=[_entry(3)], now=T0 + timedelta(hours=1), opinions=summary
    )
    ref = header_opinions(v2.header)
    assert ref is not None
    path = opinions_path(LIST, ref.sha256)
    order = list(v2.files)
    assert order.index(path) < order.index(f"lists/{LIST}/delta/2.json")
    checked = verify_summary(
        DeltaHeader.from_bytes(v2.files[f"lists/{LIST}/delta/2.json"]),
        v2.files[path],
        root,
        v2.head.state,
    )
    assert checked.disputed("e-1")
    assert not checked.disputed("e-2")


def test_the_publisher_refuses_a_summary_that_breaks_a_rule() -> None:
    """A threshold other than the root's: the hub never signs what its nodes refuse."""
    root, key = _root()
    pub = Publisher(root, {r: [key] for r in ("delta", "checkpoint", "timestamp")})
    head = ListHead.empty_entries(root, LIST)

    def summary(version: int, created: datetime, state: object) -> OpinionSummary:
        return OpinionSummary(LIST, version, created, 5, {}, {})

    with pytest.raises(ConsistencyError, match="threshold 5"):
        pub.publish_entries(head, adds=[_entry(1)], now=T0, opinions=summary)
