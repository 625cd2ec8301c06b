"""The auditor over lists of entries: every record replayed, the hub's own rules held.

The trees here are made by the real ``protocol.Publisher`` with real keys and written
to a folder exactly as a hub lays its tree out; ``hashhub-audit verify`` reads them
from the pinned root v1 alone. Besides what it checks for bare hashes, the auditor
checks each record against the vocabulary of the root that signed its version,
counts removals by reason, holds the hub to removing an entry at the first version
made once it expired (``LateExpiry``, PROTOCOL.md §12 item 8) and to keeping an entry's
metadata equal across the lists of its collection (``EntryMismatch``, §7.3).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from protocol import (
    Entry,
    EntryState,
    ListHead,
    ListSpec,
    OpinionSummary,
    Policy,
    Publisher,
    Removal,
    Role,
    Root,
    SigningKey,
    Vocabulary,
    format_time,
    root_files,
)
from tests.audit.support import Outcome, audit

T0 = datetime(2026, 3, 1, tzinfo=UTC)
VOCABULARY = Vocabulary(("ncii", "csam"), ("unconfirmed", "confirmed"), ("submission", "import"))
PDQ, MD5 = "ncii-pdq", "ncii-md5"


def pdq(n: int) -> bytes:
    return hashlib.sha256(f"pdq {n}".encode()).digest()


def md5(n: int) -> bytes:
    return hashlib.md5(f"md5 {n}".encode()).digest()


def entry(h: bytes, n: int, **changes: object) -> Entry:
    base = Entry(h, f"e-{n}", "ncii", "confirmed", "submission", None, T0)
    return replace(base, **changes)  # type: ignore[arg-type]


@dataclass
class Tree:
    """A hub's published tree, made version by version and written to ``folder``."""

    folder: Path
    key: SigningKey = field(default_factory=SigningKey.generate)
    vocabulary: Vocabulary = VOCABULARY
    files: dict[str, bytes] = field(default_factory=dict)
    heads: dict[str, ListHead[EntryState]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        k = self.key
        self.root = Root(
            version=1,
            name="entries.example",
            expires=T0 + timedelta(days=365),
            keys={k.keyid: k.public},
            roles={
                role: Role((k.keyid,), 1) for role in ("root", "delta", "checkpoint", "timestamp")
            },
            lists={
                lid: ListSpec(lid, t, d, label="ncii", snapshot_every=2, format="entries")
                for lid, t, d in ((PDQ, "pdq", 31), (MD5, "md5", 0))
            },
            policy=Policy(),
            vocabulary=self.vocabulary,
        )
        self.files.update(root_files(self.root, [k]))
        self.publisher = Publisher(
            self.root, {r: [k] for r in ("delta", "checkpoint", "timestamp")}
        )
        for lid in self.root.lists:
            self.heads[lid] = ListHead.empty_entries(self.root, lid)
            self.files[f"lists/{lid}/checkpoint"] = self.publisher.refresh(self.heads[lid], T0)

    def publish(
        self,
        list_id: str,
        at: datetime,
        *,
        adds: tuple[Entry, ...] = (),
        removes: tuple[Removal, ...] = (),
        publisher: Publisher | None = None,
        opinions: Callable[[int, datetime, EntryState], OpinionSummary] | None = None,
    ) -> None:
        made = (publisher or self.publisher).publish_entries(
            self.heads[list_id], adds=adds, removes=removes, now=at, opinions=opinions
        )
        self.heads[list_id] = made.head
        self.files.update(made.files)

    def write(self, at: datetime) -> Path:
        """Every file, with each checkpoint co-signed again at ``at`` (so it is fresh)."""
        for lid, head in self.heads.items():
            self.files[f"lists/{lid}/checkpoint"] = self.publisher.refresh(head, at)
        for path, data in self.files.items():
            target = self.folder / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return self.folder


def verify(tree: Tree, at: datetime, *args: str) -> Outcome:
    folder = tree.write(at)
    return audit(
        "verify",
        folder,
        "--root",
        folder / "root/1.json",
        "--at",
        format_time(at),
        "--witness",
        folder.parent / "witness.json",
        "--json",
        *args,
    )


def collection(tree: Tree) -> None:
    """Two items listed by PDQ and MD5, one withdrawn, one changed, one expiring."""
    first = [entry(pdq(1), 1), entry(pdq(2), 2), entry(pdq(3), 3, expires=T0 + timedelta(days=2))]
    tree.publish(PDQ, T0, adds=tuple(first))
    tree.publish(MD5, T0, adds=(entry(md5(1), 1), entry(md5(2), 2)))
    day1 = T0 + timedelta(days=1)
    changed = entry(pdq(2), 2, category="csam")
    tree.publish(
        PDQ,
        day1,
        removes=(Removal(first[0], "withdrawn"), Removal(first[1], "changed")),
        adds=(changed,),
    )
    tree.publish(
        MD5,
        day1,
        removes=(
            Removal(entry(md5(1), 1), "withdrawn"),
            Removal(entry(md5(2), 2), "changed"),
        ),
        adds=(entry(md5(2), 2, category="csam"),),
    )
    day3 = T0 + timedelta(days=3)
    tree.publish(PDQ, day3, removes=(Removal(first[2], "expired"),))


def test_a_collection_of_entries_verifies_with_its_removals_by_reason(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "tree")
    collection(tree)
    out = verify(tree, T0 + timedelta(days=3, hours=1))
    assert out.code == 0, out.stdout
    lists = {lst["list"]: lst for lst in out.json()["lists"]}
    assert {lid: (lst["status"], lst["format"]) for lid, lst in lists.items()} == {
        PDQ: ("verified", "entries"),
        MD5: ("verified", "entries"),
    }
    assert lists[PDQ]["removed"] == {"changed": 1, "expired": 1, "withdrawn": 1}
    assert lists[MD5]["removed"] == {"changed": 1, "withdrawn": 1}
    assert lists[PDQ]["state"] == tree.heads[PDQ].state.digest().to_dict()
    assert lists[PDQ]["state"]["count"] == 1
    assert lists[PDQ]["snapshots_checked"] == [2]
    assert out.findings() == []

    text = audit(
        "verify",
        tree.folder,
        "--root",
        tree.folder / "root/1.json",
        "--at",
        format_time(T0 + timedelta(days=3, hours=1)),
        "--witness",
        tmp_path / "text-witness.json",
    )
    assert f"list {PDQ} (pdq): verified - 3 version(s), 1 entry" in text.stdout
    assert "  removed: 1 changed, 1 expired, 1 withdrawn" in text.stdout


def test_a_record_outside_the_vocabulary_of_its_root_fails_the_audit(tmp_path: Path) -> None:
    """Signed by the real delta key, under root v1, with a category root v1 never
    declared: the signature holds and the record does not."""
    tree = Tree(tmp_path / "tree")
    wider = replace(tree.root, vocabulary=replace(VOCABULARY, categories=("ncii", "csam", "other")))
    rogue = Publisher(wider, {r: [tree.key] for r in ("delta", "checkpoint", "timestamp")})
    tree.publish(PDQ, T0, adds=(entry(pdq(1), 1, category="other"),), publisher=rogue)
    out = verify(tree, T0 + timedelta(hours=1))
    assert out.code == 3
    assert out.list_status()[PDQ] == "failed"
    [finding] = out.findings()
    assert finding["rule"] == "VocabularyError"
    assert finding["section"] == "PROTOCOL.md §13.6"
    assert "'other' is not a term of vocabulary.categories" in finding["message"]


def test_an_entry_kept_past_its_expiry_is_a_late_expiry(tmp_path: Path) -> None:
    """The hub published a version of the list after the entry expired and did not
    remove it: every file verifies, and the audit names the hub's broken rule."""
    tree = Tree(tmp_path / "tree")
    expiring = entry(pdq(1), 1, expires=T0 + timedelta(hours=2))
    tree.publish(PDQ, T0, adds=(expiring,))
    tree.publish(PDQ, T0 + timedelta(hours=1), adds=(entry(pdq(2), 2),))
    early = verify(tree, T0 + timedelta(hours=1, minutes=30))
    assert early.code == 0, "before it expired, nothing to say"
    tree.publish(PDQ, T0 + timedelta(hours=3), adds=(entry(pdq(3), 3),))
    late = verify(tree, T0 + timedelta(hours=3, minutes=30))
    assert late.code == 3
    assert late.list_status()[PDQ] == "verified"
    [finding] = late.findings()
    assert finding["rule"] == "LateExpiry"
    assert finding["file"].startswith(f"lists/{PDQ}/body/")
    assert (
        "entry e-1 expired 2026-03-01T02:00:00Z and is still listed after v3"
        in (finding["message"])
    )


def test_an_entry_that_differs_between_the_lists_of_its_collection_is_named(
    tmp_path: Path,
) -> None:
    tree = Tree(tmp_path / "tree")
    tree.publish(PDQ, T0, adds=(entry(pdq(1), 1), entry(pdq(2), 2)))
    tree.publish(MD5, T0, adds=(entry(md5(1), 1, classification="unconfirmed"), entry(md5(2), 2)))
    out = verify(tree, T0 + timedelta(hours=1))
    assert out.code == 3
    assert out.list_status() == {PDQ: "verified", MD5: "verified"}
    mismatches = [f for f in out.findings() if f["rule"] == "EntryMismatch"]
    assert sorted(f["file"] for f in mismatches) == [
        f"lists/{MD5}/checkpoint",
        f"lists/{PDQ}/checkpoint",
    ]
    assert all("entry e-1 of collection 'ncii' differs" in f["message"] for f in mismatches)
    assert all("unconfirmed" in f["message"] for f in mismatches)


def test_diff_of_a_list_of_entries_names_each_entry_and_the_reason(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "tree")
    collection(tree)
    folder = tree.write(T0 + timedelta(days=3, hours=1))
    out = audit(
        "diff",
        folder,
        PDQ,
        "1",
        "3",
        "--root",
        folder / "root/1.json",
        "--at",
        format_time(T0 + timedelta(days=3, hours=1)),
        "--json",
    )
    assert out.code == 0, out.stdout + out.stderr
    result = out.json()
    removed = {(c["entry"], c["reason"]) for c in result["removed"]}
    added = {(c["entry"], c["reason"]) for c in result["added"]}
    assert removed == {("e-1", "withdrawn"), ("e-2", "changed"), ("e-3", "expired")}
    assert added == {("e-2", None)}
    [new] = result["added"]
    assert new["record"] == entry(pdq(2), 2, category="csam").line.decode()

    text = audit(
        "diff",
        folder,
        PDQ,
        "1",
        "3",
        "--root",
        folder / "root/1.json",
        "--at",
        format_time(T0 + timedelta(days=3, hours=1)),
    )
    withdrawn = entry(pdq(1), 1).line.decode()
    assert f"  -{withdrawn} (withdrawn)  v2  signed by {tree.key.keyid}" in text.stdout
