"""The auditor over opinion summaries: each checked, their history kept, each redone from acks.

A list of entries is published by the real ``protocol.Publisher`` with real keys, each
version with its opinion summary (``hashhub.opinions.v1``, PROTOCOL.md §10.7), and
three platforms' nodes sign acks with ``protocol.sign_ack`` that confirm and
dispute its entries. ``hashhub-audit verify`` reads the folder from the pinned root
v1; the summaries are redone from the acks as ``hashhub-audit acks`` does, by
``audit.opinions.recompute`` over what ``verify_tree`` kept and the acks verified by
``protocol.verify_ack``. A lying hub here is one that signs, with its real delta key,
a summary every node would accept on its own and that breaks a rule only the
history or the acks show.

A real hub (its app on loopback, its SQLite file) then publishes summaries of acks
its nodes posted, and ``hashhub-audit acks`` redoes them, before and after the hub
edits a stored ack; the same hub, its clock moved by hand, publishes one withdrawal
late, and its operator API says when each was granted.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from audit.cli import EXIT_FAILED
from audit.opinions import Breach, recompute
from audit.source import FolderSource
from audit.verify import ListReport, Pin, verify_tree
from audit.withdrawals import ACTIONS_READ, Grant, _action_log, check_withdrawals
from hub.app import create_app
from hub.core import Hub, utcnow
from hub.services.entries import EntryDraft
from protocol import (
    Ack,
    AppliedVersion,
    Counts,
    Dispute,
    EntriesBody,
    EntryOpinions,
    EntryState,
    NodeCut,
    Opinion,
    OpinionSummary,
    ProtocolError,
    Removal,
    SigningKey,
    Voice,
    fold_positions,
    format_time,
    sign_ack,
    verify_ack,
    voices_of,
)
from protocol.entries import Reason
from tests.audit.support import audit, audit_async, base_url, pin_of
from tests.audit.test_entries import PDQ, T0, Tree, entry, pdq, verify
from tests.hub.conftest import Client, ack_headers, md5, opened

NODES = {"node-a": "platform-a", "node-b": "platform-b", "node-c": "platform-c"}
OPENED = T0 + timedelta(hours=1, minutes=30)
DISMISSED = Dispute("dismissed", OPENED, T0 + timedelta(hours=3), "alice")
Summarize = Callable[[int, datetime, EntryState], OpinionSummary]


def disputed(reason: str) -> Opinion:
    return Opinion("disputed", reason)


def confirmed(reason: str) -> Opinion:
    return Opinion("confirmed", reason)


@dataclass
class Platforms:
    """Three platforms' nodes, each signing acks of ``PDQ`` with its own key."""

    tree: Tree
    keys: dict[str, SigningKey] = field(
        default_factory=lambda: {node: SigningKey.generate() for node in NODES}
    )
    signed: dict[tuple[str, int], tuple[bytes, bytes]] = field(default_factory=dict)
    acks: list[Ack] = field(default_factory=list)

    def say(self, node: str, at: datetime, **opinions: Opinion) -> None:
        """The node's next ack, with its positions on entries (``e_1`` is entry ``e-1``)."""
        seq = 1 + max((s for n, s in self.signed if n == node), default=0)
        head = self.tree.heads[PDQ]
        data, sig = sign_ack(
            key=self.keys[node],
            node=node,
            list_id=PDQ,
            seq=seq,
            sent=at,
            origin=self.tree.root.origin(PDQ),
            applied=AppliedVersion(head.version, head.compact.root(), head.state.digest()),
            counts=Counts(),
            opinions={e.replace("_", "-"): o for e, o in opinions.items()},
        )
        self.signed[(node, seq)] = (data, sig)
        self.acks.append(self.verified(node, data, sig))

    def verified(self, node: str, data: bytes, sig: bytes) -> Ack:
        return verify_ack(
            data, sig, node_key=self.keys[node].public, origin_prefix=self.tree.root.name
        )

    def cut(self) -> dict[str, NodeCut]:
        """Every node at its highest seq: what a hub that stored every ack counts."""
        return {node: NodeCut(NODES[node], seq) for node, seq in sorted(self.signed)}

    def stored(self) -> dict[tuple[str, int], Ack | None]:
        """Every ack as the auditor holds it after verifying: None where it fails."""
        out: dict[tuple[str, int], Ack | None] = {}
        for (node, seq), (data, sig) in self.signed.items():
            try:
                out[(node, seq)] = self.verified(node, data, sig)
            except ProtocolError:
                out[(node, seq)] = None
        return out

    def summary(
        self,
        disputes: Mapping[str, Dispute],
        *,
        nodes: Mapping[str, NodeCut] | None = None,
        acks: list[Ack] | None = None,
        lie: Callable[[OpinionSummary], OpinionSummary] = lambda s: s,
    ) -> Summarize:
        """The summary an honest hub makes from the acks up to the cut (then ``lie``)."""
        cut = dict(self.cut() if nodes is None else nodes)
        counted = list(self.acks if acks is None else acks)

        def make(version: int, created: datetime, state: EntryState) -> OpinionSummary:
            held = state.entry_ids()
            entries = {}
            for entry_id, positions in fold_positions(counted, cut).items():
                said = voices_of(positions)
                if entry_id not in held or not (said.confirmed or said.disputed):
                    continue
                dispute = disputes.get(entry_id) if len(said.disputed) >= 2 else None
                entries[entry_id] = replace(said, dispute=dispute)
            return lie(OpinionSummary(PDQ, version, created, 2, cut, entries))

        return make


def story(
    tree: Tree,
    *,
    v2: Mapping[str, Dispute] | None = None,
    v3: Mapping[str, Dispute] | None = None,
    v4: Callable[[Platforms], Summarize] | None = None,
    v4_removes: tuple[Removal, ...] = (Removal(entry(pdq(3), 3), "disputed"),),
) -> Platforms:
    """Four versions of ``PDQ``, each with its summary.

    Platforms a and b dispute e-1 and b and c dispute e-3, so both have a dispute at
    v2; the operator dismisses e-1's (v3); platform b then confirms e-1, so its
    dispute is withdrawn, and e-3 is removed as disputed, its dispute upheld (v4).
    """
    platforms = Platforms(tree)
    tree.publish(
        PDQ,
        T0,
        adds=tuple(entry(pdq(n), n) for n in (1, 2, 3)),
        opinions=platforms.summary({}),
    )
    hour = T0 + timedelta(hours=1)
    platforms.say("node-a", hour, e_1=disputed("not_the_content"), e_2=confirmed("actioned"))
    platforms.say("node-b", hour, e_1=disputed("benign"), e_3=disputed("other"))
    platforms.say("node-c", hour, e_3=disputed("not_the_content"), e_2=confirmed("blocked"))
    opened = Dispute("open", OPENED)
    tree.publish(
        PDQ,
        T0 + timedelta(hours=2),
        adds=(entry(pdq(4), 4),),
        opinions=platforms.summary(v2 if v2 is not None else {"e-1": opened, "e-3": opened}),
    )
    tree.publish(
        PDQ,
        T0 + timedelta(hours=4),
        adds=(entry(pdq(5), 5),),
        opinions=platforms.summary(v3 if v3 is not None else {"e-1": DISMISSED, "e-3": opened}),
    )
    platforms.say("node-b", T0 + timedelta(hours=5), e_1=confirmed("actioned"))
    tree.publish(
        PDQ,
        T0 + timedelta(hours=6),
        removes=v4_removes,
        opinions=(v4 or (lambda p: p.summary({})))(platforms),
    )
    return platforms


AT = T0 + timedelta(hours=6, minutes=30)


def checked(tree: Tree) -> ListReport:
    """``verify_tree`` of the folder, as ``hashhub-audit acks`` runs it first."""
    folder = tree.write(AT)
    pin = Pin((folder / "root/1.json").read_bytes(), (folder / "root/1.json.sig").read_bytes())
    report = verify_tree(FolderSource(folder), pin=pin, now=AT)
    listed = report.list_report(PDQ)
    assert listed is not None, report.to_dict()
    assert listed.status == "verified", report.to_dict()
    return listed


def redo(tree: Tree, platforms: Platforms, keyless: tuple[str, ...] = ()) -> list[Breach]:
    listed = checked(tree)
    bodies = {v: b for v, b in listed.bodies.items() if isinstance(b, EntriesBody)}
    return recompute(listed.opinions, bodies, platforms.stored(), keyless)


# -- a clean history ----------------------------------------------------------------------


def test_a_clean_history_verifies_with_its_disputes_lives(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "tree")
    platforms = story(tree)
    out = verify(tree, AT)
    assert out.code == 0, out.stdout
    assert out.findings() == []
    [listed] = [lst for lst in out.json()["lists"] if lst["list"] == PDQ]
    assert listed["removed"] == {"disputed": 1}
    assert listed["opinions"] == {
        "summaries_checked": [1, 2, 3, 4],
        "disputes": [
            {
                "entry": "e-1",
                "opened": "2026-03-01T01:30:00Z",
                "state": "dismissed",
                "dismissed": "2026-03-01T03:00:00Z",
                "by": "alice",
                "ended": "withdrawn",
                "at": 4,
                "reason": None,
            },
            {
                "entry": "e-3",
                "opened": "2026-03-01T01:30:00Z",
                "state": "open",
                "dismissed": None,
                "by": None,
                "ended": "upheld",
                "at": 4,
                "reason": None,
            },
        ],
    }
    text = audit(
        "verify",
        tree.folder,
        "--root",
        tree.folder / "root/1.json",
        "--at",
        format_time(AT),
        "--witness",
        tmp_path / "text-witness.json",
    )
    assert text.code == 0, text.stdout
    assert (
        "  opinions: 4 summaries checked (v1..v4), 2 dispute(s)\n"
        "    dispute e-1: opened 2026-03-01T01:30:00Z, dismissed 2026-03-01T03:00:00Z by "
        "alice, ended withdrawn at v4\n"
        "    dispute e-3: opened 2026-03-01T01:30:00Z, ended upheld at v4\n"
    ) in text.stdout
    assert redo(tree, platforms) == [], "every summary is the fold of the signed acks"


def test_a_missing_summary_fails_the_list_as_a_missing_body_does(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "tree")
    story(tree)
    folder = tree.write(AT)
    [summary_file] = [
        p
        for p in tree.files
        if p.startswith(f"lists/{PDQ}/opinions/") and b'"version":3' in tree.files[p]
    ]
    del tree.files[summary_file]
    (folder / summary_file).unlink()
    out = verify(tree, AT)
    assert out.code == EXIT_FAILED
    assert out.list_status()[PDQ] == "failed"
    [finding] = out.findings()
    assert (finding["file"], finding["rule"]) == (summary_file, "MissingFileError")
    assert "header v3 names it" in finding["message"]


# -- the history: cuts and disputes --------------------------------------------------------


def without_c(p: Platforms) -> Summarize:
    """v4 counts no more of node-c: its confirmation of e-2 goes with it."""
    nodes = {n: c for n, c in p.cut().items() if n != "node-c"}
    return p.summary({}, nodes=nodes)


def test_a_cut_that_drops_a_node_is_a_rollback(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "tree")
    story(tree, v4=without_c)
    out = verify(tree, AT)
    assert out.code == EXIT_FAILED, out.stdout
    assert out.list_status()[PDQ] == "verified", "every file verifies on its own"
    [finding] = out.findings()
    assert finding["rule"] == "OpinionsRollback"
    assert finding["section"] == "PROTOCOL.md §10.7"
    assert finding["file"].startswith(f"lists/{PDQ}/opinions/")
    assert finding["message"] == "v4: node node-c (seq 1 at v3) left the cut"


def test_a_cut_whose_seq_goes_down_is_a_rollback(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "tree")
    platforms = story(tree)
    back = {**platforms.cut(), "node-b": NodeCut("platform-b", 1)}
    tree.publish(
        PDQ,
        T0 + timedelta(hours=7),
        adds=(entry(pdq(6), 6),),
        # With node-b's confirmation un-counted, e-1 is disputed again: a new dispute.
        opinions=platforms.summary(
            {"e-1": Dispute("open", T0 + timedelta(hours=6, minutes=30))}, nodes=back
        ),
    )
    out = verify(tree, T0 + timedelta(hours=7, minutes=30))
    assert out.code == EXIT_FAILED, out.stdout
    assert [(f["rule"], f["message"]) for f in out.findings()] == [
        ("OpinionsRollback", "v5: node node-b went from seq 2 at v4 to 1")
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param(
            {
                "v3": {
                    "e-1": replace(DISMISSED, opened=T0 + timedelta(hours=2, minutes=30)),
                    "e-3": Dispute("open", OPENED),
                }
            },
            "entry e-1: dispute opened 2026-03-01T01:30:00Z shows opened "
            "2026-03-01T02:30:00Z at v3",
            id="opened-changed",
        ),
        pytest.param(
            {
                "v2": {"e-1": Dispute("open", OPENED), "e-3": replace(DISMISSED, dismissed=OPENED)},
                "v3": {"e-1": DISMISSED, "e-3": Dispute("open", OPENED)},
            },
            "entry e-3: dispute dismissed 2026-03-01T01:30:00Z by alice is open at v3",
            id="dismissal-undone",
        ),
        pytest.param(
            {
                "v2": {
                    "e-1": Dispute("open", T0 - timedelta(hours=1)),
                    "e-3": Dispute("open", OPENED),
                },
                "v3": {
                    "e-1": replace(DISMISSED, opened=T0 - timedelta(hours=1)),
                    "e-3": Dispute("open", OPENED),
                },
            },
            "entry e-1: dispute first shown at v2 was opened 2026-02-28T23:00:00Z, before v1 "
            "(2026-03-01T00:00:00Z), which shows none",
            id="opened-before-the-summary-before",
        ),
        pytest.param(
            {
                "v4_removes": (Removal(entry(pdq(2), 2), "disputed"),),
                "v4": lambda p: p.summary({"e-3": Dispute("open", OPENED)}),
            },
            "entry e-2: removed as disputed at v4, but v3 shows no dispute of it",
            id="upheld-without-a-dispute",
        ),
    ],
)
def test_a_dispute_that_lives_two_lives_is_named(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    tree = Tree(tmp_path / "tree")
    story(tree, **changes)  # type: ignore[arg-type]
    out = verify(tree, AT)
    assert out.code == EXIT_FAILED, out.stdout
    assert out.list_status()[PDQ] == "verified"
    assert [(f["rule"], f["message"]) for f in out.findings()] == [("DisputeHistory", message)]


# -- each summary against the acks ----------------------------------------------------------


def with_voice(
    entry_id: str, group: str, platform: str, voice: Voice | None
) -> Callable[[OpinionSummary], OpinionSummary]:
    """A lie: one platform's voice on one entry replaced (or, with None, left out)."""

    def lie(summary: OpinionSummary) -> OpinionSummary:
        said = summary.entries[entry_id]
        groups = {"confirmed": dict(said.confirmed), "disputed": dict(said.disputed)}
        groups[group].pop(platform, None)
        if voice is not None:
            groups[group][platform] = voice
        changed = EntryOpinions(groups["confirmed"], groups["disputed"], said.dispute)
        return replace(summary, entries={**summary.entries, entry_id: changed})

    return lie


def phantom(p: Platforms) -> Summarize:
    """node-a's cut raised to a seq it never sent, and a voice naming that ack."""
    nodes = {**p.cut(), "node-a": NodeCut("platform-a", 2)}
    lie = with_voice("e-2", "confirmed", "platform-a", Voice("node-a", 2, "actioned"))
    return p.summary({}, nodes=nodes, lie=lie)


def wrong_reason(p: Platforms) -> Summarize:
    return p.summary(
        {}, lie=with_voice("e-2", "confirmed", "platform-a", Voice("node-a", 1, "blocked"))
    )


def stale(p: Platforms) -> Summarize:
    """node-b's confirmation of e-1 (seq 2) is in the cut and left out: e-1 stays disputed."""
    return p.summary({"e-1": DISMISSED}, acks=p.acks[:-1])


def silenced(p: Platforms) -> Summarize:
    return p.summary({}, lie=with_voice("e-2", "confirmed", "platform-c", None))


@pytest.mark.parametrize(
    ("v4", "message"),
    [
        pytest.param(
            phantom,
            "v4: entry e-2, platform platform-a: the voice names ack node-a seq 2, which the "
            "hub does not have",
            id="no-such-ack",
        ),
        pytest.param(
            wrong_reason,
            "v4: entry e-2, platform platform-a: the voice says confirmed(blocked) by node-a "
            "seq 1; that ack says confirmed(actioned)",
            id="wrong-reason",
        ),
        pytest.param(
            stale,
            "v4: entry e-1, platform platform-b: the voice counts node-b seq 1; a newer "
            "position in the cut was left out: confirmed(actioned) by node-b seq 2",
            id="newer-position-left-out",
        ),
        pytest.param(
            silenced,
            "v4: entry e-2, platform platform-c: its position in the cut was left out: "
            "confirmed(blocked) by node-c seq 1",
            id="position-left-out",
        ),
    ],
)
def test_a_summary_that_is_not_the_fold_of_the_acks_is_a_mismatch(
    tmp_path: Path, v4: Callable[[Platforms], Summarize], message: str
) -> None:
    tree = Tree(tmp_path / "tree")
    platforms = story(tree, v4=v4)
    assert verify(tree, AT).code == 0, "the summary keeps every rule a node can check"
    [breach] = redo(tree, platforms)
    assert (breach.rule, breach.message) == ("SummaryMismatch", message)
    assert breach.file == next(
        p
        for p in tree.files
        if p.startswith(f"lists/{PDQ}/opinions/") and b'"version":4' in tree.files[p]
    )


def test_a_voice_naming_an_ack_that_does_not_verify_is_a_mismatch(tmp_path: Path) -> None:
    """The hub's copy of node-a's first ack is edited: every voice counting it is unproven."""
    tree = Tree(tmp_path / "tree")
    platforms = story(tree)
    data, sig = platforms.signed[("node-a", 1)]
    forged = data.replace(b'"actioned"', b'"blocked"')
    assert forged != data
    platforms.signed[("node-a", 1)] = (forged, sig)
    breaches = redo(tree, platforms)
    assert {b.rule for b in breaches} == {"SummaryMismatch"}
    assert {b.message.split(":")[0] for b in breaches} == {"v2", "v3", "v4"}
    assert (
        "v4: entry e-2, platform platform-a: the voice names ack node-a seq 1, which does "
        "not verify"
    ) in [b.message for b in breaches]


def test_a_node_in_a_cut_without_a_key_leaves_its_platform_unchecked(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "tree")
    platforms = story(tree, v4=silenced)
    [breach] = redo(tree, platforms, keyless=("node-c",))
    assert breach.rule == "Unverifiable"
    assert "node node-c is in the cut of v2" in breach.message
    assert "--node-key node-c=FILE" in breach.message


# -- withdrawals against a real hub ---------------------------------------------------------

ENTRIES = "ncii-md5"


class Clock:
    """The hub's clock: real time moved back by ``behind``, set by hand."""

    def __init__(self) -> None:
        self.behind = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() - self.behind


@dataclass(frozen=True)
class Withdrawn:
    on_time: str
    late: str
    waiting: str


def withdrawals_history(home: Path) -> Withdrawn:
    """Three days of a hub under the ``review`` policy, in its own time.

    Two entries are listed; one is withdrawn and published an hour later, the other
    withdrawn and published only two days later (the delay is a day); a third
    entry, a person's accepted case, has a withdrawal waiting for review ever since.
    """
    clock = Clock()
    clock.behind = timedelta(days=3)
    hub = Hub.init(
        home,
        "hub.test",
        root_keys=1,
        root_threshold=1,
        publish_interval=0,
        timestamp_interval=0,
        withdrawal="review",
        now=clock,
    )
    try:
        hub.roots.create_list(ENTRIES, "md5", label="ncii", list_format="entries")
        on_time, late = (
            hub.entries.add(
                EntryDraft(((ENTRIES, md5(n).hex()),), "ncii", "confirmed", "import:batch-1")
            ).entry
            for n in (1, 2)
        )
        case = hub.cases.open_case("md5", md5(3), None)
        hub.cases.review(
            case.case, accept=True, list_id=ENTRIES, category="ncii", classification="confirmed"
        )
        hub.publishing.publish()
        clock.behind = timedelta(days=2)
        assert hub.entries.withdraw(on_time, "submitter")
        assert hub.cases.withdraw(case.case, case.withdrawal_code).withdrawal == "requested"
        clock.behind = timedelta(days=1, hours=23)
        hub.publishing.publish()
        assert hub.entries.withdraw(late, "submitter")
        clock.behind = timedelta(0)
        hub.publishing.publish()
    finally:
        hub.close()
    return Withdrawn(on_time, late, case.case)


async def test_a_withdrawal_published_after_the_delay_is_late(tmp_path: Path) -> None:
    home = tmp_path / "hub"
    withdrawn = withdrawals_history(home)
    with opened(home) as hub:
        token = hub.access.create_operator_token("auditor", "test-auditor")
    app = create_app(home, schedule=False)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        out = await audit_async(
            "acks", base_url(client), "--root-sha256", pin_of(home), "--token", token, "--json"
        )
        text = await audit_async(
            "acks", base_url(client), "--root-sha256", pin_of(home), "--token", token
        )
    assert out.code == EXIT_FAILED, out.stdout
    report = out.json()
    findings = report["acks"]["findings"]
    assert [f["rule"] for f in findings] == ["LateWithdrawal", "UndecidedWithdrawal"], findings
    late, undecided = findings
    assert late["file"] == f"list {ENTRIES}"
    assert late["section"] == "PROTOCOL.md §12 item 8"
    assert f"entry {withdrawn.late} withdrawn " in late["message"]
    assert "was removed at v3, made " in late["message"]
    assert "after the deadline" in late["message"]
    assert undecided["file"] == "v1/admin/withdrawals"
    assert "a withdrawal requested " in undecided["message"]
    assert "waits for review past the delay of 86400 s" in undecided["message"]
    assert withdrawn.waiting not in out.stdout + text.stdout, "a case number is never shown"
    granted = report["acks"]["withdrawals"]["granted"]
    assert [(g["entry"], g["removed"]) for g in granted] == [
        (withdrawn.on_time, {ENTRIES: 2}),
        (withdrawn.late, {ENTRIES: 3}),
    ]
    assert len(report["acks"]["withdrawals"]["waiting"]) == 1
    assert "withdrawals: 2 granted, 1 waiting for review, delay 86400 s" in text.stdout
    assert f"  {withdrawn.late} withdrawn " in text.stdout


# -- summaries of a real hub, redone from the acks it stored --------------------------------


async def post_ack(
    client: Client, home: Path, node: str, key: SigningKey, token: str, seq: int, **said: Opinion
) -> None:
    """node's ack of what the hub published of ``ENTRIES``, with its positions."""
    with opened(home) as hub:
        head = hub.entries.head(ENTRIES)
        origin = hub.keys.root().origin(ENTRIES)
    data, sig = sign_ack(
        key=key,
        node=node,
        list_id=ENTRIES,
        seq=seq,
        sent=utcnow(),
        origin=origin,
        applied=AppliedVersion(head.version, head.compact.root(), head.state.digest()),
        counts=Counts(checked=1),
        opinions=said,
    )
    response = await client.post("/v1/acks", data=data, headers=ack_headers(token, sig))
    assert response.status == 200, await response.text()


async def test_a_real_hubs_summaries_are_the_fold_of_its_acks(tmp_path: Path) -> None:
    """Two platforms dispute an entry through the hub; an operator dismisses, then
    upholds the dispute: every summary is redone from the stored acks, the dispute's
    life is the history; then the hub edits a stored ack and both checks catch it."""
    home = tmp_path / "hub"
    hub = Hub.init(
        home, "hub.test", root_keys=1, root_threshold=1, publish_interval=0, timestamp_interval=0
    )
    keys = {"node-a": SigningKey.generate(), "node-b": SigningKey.generate()}
    try:
        hub.roots.create_list(ENTRIES, "md5", label="ncii", list_format="entries")
        first, second = (
            hub.entries.add(
                EntryDraft(((ENTRIES, md5(n).hex()),), "ncii", "confirmed", "import:batch-1")
            ).entry
            for n in (1, 2)
        )
        hub.publishing.publish()
        tokens = {n: hub.access.enrol_node(n, k.public, [ENTRIES]) for n, k in keys.items()}
        auditor = hub.access.create_operator_token("auditor", "test-auditor")
    finally:
        hub.close()
    pems = [f"--node-key={n}={k.public.raw.hex()}" for n, k in keys.items()]

    async def stage_and_publish(n: int) -> None:
        with opened(home) as hub:
            hub.entries.add(
                EntryDraft(((ENTRIES, md5(n).hex()),), "ncii", "confirmed", "import:batch-1")
            )
            hub.publishing.publish()

    app = create_app(home, schedule=False)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        await post_ack(client, home, "node-a", keys["node-a"], tokens["node-a"], 1,
                       **{first: disputed("not_the_content")})  # fmt: skip
        await post_ack(client, home, "node-b", keys["node-b"], tokens["node-b"], 1,
                       **{first: disputed("benign"), second: confirmed("actioned")})  # fmt: skip
        await stage_and_publish(3)
        with opened(home) as hub:
            hub.disputes.decide(first, "dismiss", who="alice")
        await stage_and_publish(4)
        with opened(home) as hub:
            hub.disputes.decide(first, "uphold", who="alice")
            hub.publishing.publish()
        args = ["acks", base_url(client), "--root-sha256", pin_of(home), "--token", auditor]
        out = await audit_async(*args, *pems, "--json")
        assert out.code == 0, out.stdout
        report = out.json()
        assert report["acks"]["findings"] == []
        assert report["acks"]["summaries"] == {ENTRIES: [1, 2, 3, 4]}
        [listed] = report["tree"]["lists"]
        [life] = listed["opinions"]["disputes"]
        assert (life["entry"], life["state"], life["by"], life["ended"], life["at"]) == (
            first,
            "dismissed",
            "alice",
            "upheld",
            4,
        )

        # The hostile hub: node-b's stored ack now says its platform confirms the entry.
        with opened(home) as hub:
            path = home / hub.config.database
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            row_id, data = conn.execute(
                "SELECT id, bytes FROM acks WHERE node = 'node-b' AND seq = 1"
            ).fetchone()
            forged = bytes(data).replace(b'"benign"', b'"other"')
            assert forged != bytes(data)
            conn.execute("UPDATE acks SET bytes = ? WHERE id = ?", [forged, row_id])
        finally:
            conn.close()
        out = await audit_async(*args, *pems, "--json")
    assert out.code == EXIT_FAILED, out.stdout
    found = [(f["rule"], f["message"]) for f in out.json()["acks"]["findings"]]
    assert found[0][0] == "SignatureError"
    mismatches = [m for rule, m in found if rule == "SummaryMismatch"]
    assert (
        f"v2: entry {first}, platform node-b: the voice names ack node-b seq 1, which does "
        "not verify"
    ) in mismatches
    # The totals the hub counted from that ack are no longer proven either.
    assert {rule for rule, _ in found} == {"SignatureError", "SummaryMismatch", "TotalsMismatch"}


@pytest.mark.parametrize(
    ("removal", "now", "problem"),
    [
        (None, T0 + timedelta(hours=12), ""),
        (
            None,
            T0 + timedelta(days=2),
            "entry e-1 withdrawn 2026-03-01T01:00:00Z (by submitter) is still listed at v1, "
            "the newest version, and the deadline 2026-03-02T01:00:00Z has passed",
        ),
        ("withdrawn", T0 + timedelta(days=2), ""),
        (
            "retracted",
            T0 + timedelta(days=2),
            "entry e-1 withdrawn 2026-03-01T01:00:00Z (by submitter) was removed at v2 as "
            "retracted",
        ),
    ],
)
def test_a_grant_is_held_to_the_delay_by_the_run_time(
    tmp_path: Path, removal: Reason | None, now: datetime, problem: str
) -> None:
    tree = Tree(tmp_path / "tree")
    tree.publish(PDQ, T0, adds=(entry(pdq(1), 1), entry(pdq(2), 2)))
    if removal is not None:
        tree.publish(PDQ, T0 + timedelta(hours=2), removes=(Removal(entry(pdq(1), 1), removal),))
    listed = checked(tree)
    bodies = {v: b for v, b in listed.bodies.items() if isinstance(b, EntriesBody)}
    grant = Grant("e-1", T0 + timedelta(hours=1), "submitter")
    report, breaches = check_withdrawals(
        [grant],
        {},
        [],
        None,
        {PDQ: ([(v.version, v.created) for v in listed.versions], bodies)},
        delay=86_400,
        now=now,
    )
    assert [(b.rule, b.message) for b in breaches] == (
        [("LateWithdrawal", problem)] if problem else []
    )
    assert report.granted[0]["removed"] == ({PDQ: 2} if removal else {})


def test_the_whole_action_log_is_read_page_by_page() -> None:
    """A grant in the log's 2,500th newest line is still seen: the pages are followed
    by ``next`` to the first line, and the read says it reached it."""
    log = [
        {"id": n, "at": "2026-01-01T00:00:00Z", "who": "x", "action": "stage", "detail": {}}
        for n in range(2500, 0, -1)
    ]
    asked: list[str] = []

    def read(path: str) -> dict[str, object]:
        asked.append(path)
        before = int(path.split("before=")[1]) if "before=" in path else 2501
        page = [line for line in log if int(str(line["id"])) < before][:ACTIONS_READ]
        more = len(page) == ACTIONS_READ
        return {"actions": page, "next": page[-1]["id"] if more else None}

    read_all = _action_log(read)
    assert read_all is not None
    lines, complete = read_all
    assert [line["id"] for line in lines] == list(range(2500, 0, -1))
    assert complete
    assert asked == [
        f"v1/admin/actions?limit={ACTIONS_READ}",
        f"v1/admin/actions?limit={ACTIONS_READ}&before=1501",
        f"v1/admin/actions?limit={ACTIONS_READ}&before=501",
    ]
