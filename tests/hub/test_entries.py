"""Entries lists through ``hashhub``: the vocabulary, staging, publishing, expiry.

Every command runs through click's runner against a real hub home (real keys,
real SQLite); what is published is read back as a node reads it, by the protocol's
trust rules from root v1 (``node_view.follow_entries``, ``bootstrap_entries``).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from hub.config import HubConfig
from hub.core import Hub, utcnow
from hub.errors import InvalidRequest
from protocol import Entry, Root, Vocabulary, format_time
from tests.hub.node_view import EntriesVersion, bootstrap_entries, follow_entries, from_hub
from tests.hub.test_cli import Operator, pinned_sha256

DEFAULT = {
    "categories": ["ncii", "csam", "terrorism"],
    "classifications": ["unconfirmed", "confirmed", "severe"],
    "sources": ["submission", "import", "member", "hub", "exchange"],
}
ENTRY_ID = re.compile(r"\be-[a-z2-7]{26}\b")


def md5(label: object) -> str:
    return hashlib.md5(str(label).encode(), usedforsecurity=False).hexdigest()


def pdq(label: object) -> str:
    return hashlib.sha256(f"pdq {label}".encode()).hexdigest()


def entry_id(output: str) -> str:
    match = ENTRY_ID.search(output)
    assert match, output
    return match.group(0)


def newest_root(op: Operator) -> Root:
    hub = op.open()
    try:
        return hub.keys.root()
    finally:
        hub.close()


def staged_rows(op: Operator) -> tuple[int, int, int]:
    """Rows of entry_items, entry_hashes, entry_pending: what staging wrote."""
    hub = op.open()
    try:
        return tuple(  # type: ignore[return-value]
            hub.db.table(t).count for t in ("entry_items", "entry_hashes", "entry_pending")
        )
    finally:
        hub.close()


def failed(op: Operator, *args: str) -> str:
    result = op.run(*args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    return result.stderr


@pytest.fixture
def op(tmp_path: Path) -> Operator:
    """A hub with the collection ``ncii`` (an md5 and a pdq entries list, a snapshot
    every 2 versions for md5) and a hashes list ``tid-md5``."""
    operator = Operator(tmp_path / "hub")
    operator.pinned = pinned_sha256(operator.init())
    operator.ok("list", "create", "ncii-md5", "--type", "md5", "--label", "ncii",
                "--format", "entries", "--snapshot-every", "2")  # fmt: skip
    operator.ok("list", "create", "ncii-pdq", "--type", "pdq", "--label", "ncii",
                "--format", "entries")  # fmt: skip
    operator.ok("list", "create", "tid-md5", "--type", "md5", "--label", "tid")
    return operator


def add_entry(op: Operator, n: object, *extra: str) -> str:
    out = op.ok(
        "entry", "add",
        "--list", "ncii-md5", "--hash", md5(n),
        "--list", "ncii-pdq", "--hash", pdq(n),
        "--category", "ncii", "--classification", "confirmed", "--source", "import:batch-1",
        *extra,
    )  # fmt: skip
    return entry_id(out)


# -- the vocabulary -----------------------------------------------------------------------


def test_init_declares_the_default_vocabulary_in_root_v1(tmp_path: Path) -> None:
    op = Operator(tmp_path / "hub")
    op.init()
    assert json.loads(op.ok("vocabulary", "show", "--json")) == DEFAULT
    shown = op.ok("vocabulary", "show")
    assert "classifications: unconfirmed, confirmed, severe  (least severe first)" in shown
    hub = op.open()
    try:
        root_v1 = Root.from_bytes(hub.files.get("root/1.json")[0])  # type: ignore[index]
    finally:
        hub.close()
    assert root_v1.vocabulary is not None
    assert root_v1.vocabulary.to_dict() == DEFAULT


def test_init_takes_a_vocabulary_file_and_refuses_a_bad_one(tmp_path: Path) -> None:
    mine = {"categories": ["spam"], "classifications": ["low", "high"], "sources": ["hub"]}
    good = tmp_path / "vocabulary.json"
    good.write_text(json.dumps(mine), encoding="utf-8")
    op = Operator(tmp_path / "hub")
    op.init("--vocabulary", str(good))
    assert json.loads(op.ok("vocabulary", "show", "--json")) == mine

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**mine, "sources": []}), encoding="utf-8")
    result = op.runner.invoke(
        __import__("hub.cli", fromlist=["main"]).main,
        ["init", str(tmp_path / "other"), "--name", "hub.test", "--vocabulary", str(bad)],
    )
    assert result.exit_code == 1, result.output
    assert "not a vocabulary" in result.stderr
    assert "vocabulary.sources is empty" in result.stderr
    assert not (tmp_path / "other").exists()


def test_vocabulary_add_is_a_new_root_that_keeps_every_term(op: Operator) -> None:
    before = newest_root(op).version
    out = op.ok("vocabulary", "add", "classifications", "extreme")
    assert f"declared in root v{before + 1}" in out
    root = newest_root(op)
    assert root.version == before + 1
    assert root.vocabulary is not None
    assert root.vocabulary.classifications == ("unconfirmed", "confirmed", "severe", "extreme")
    assert root.vocabulary.categories == tuple(DEFAULT["categories"])
    op.ok("vocabulary", "add", "sources", "partner")

    assert "already has 'extreme'" in failed(op, "vocabulary", "add", "classifications", "extreme")
    assert "does not match" in failed(op, "vocabulary", "add", "categories", "Bad Term")
    assert op.run("vocabulary", "add", "colours", "red").exit_code == 2
    assert newest_root(op).version == before + 2
    # A term added is usable at once.
    op.ok("entry", "add", "--list", "ncii-md5", "--hash", md5("x"), "--category", "ncii",
          "--classification", "extreme", "--source", "partner:hub-b")  # fmt: skip


def test_a_hub_made_without_a_vocabulary_gets_the_default_when_it_first_needs_one(
    tmp_path: Path,
) -> None:
    home = tmp_path / "hub"
    Hub.init(home, "hub.test", vocabulary=None).close()
    op = Operator(home)
    assert op.ok("vocabulary", "show", "--json").strip() == "null"
    assert "No vocabulary yet" in op.ok("vocabulary", "show")
    op.ok("list", "create", "plain-md5", "--type", "md5")
    assert newest_root(op).vocabulary is None
    op.ok("list", "create", "ncii-md5", "--type", "md5", "--format", "entries")
    assert json.loads(op.ok("vocabulary", "show", "--json")) == DEFAULT

    other = tmp_path / "other"
    Hub.init(other, "hub.test", vocabulary=None).close()
    op2 = Operator(other)
    op2.ok("vocabulary", "add", "categories", "spam")
    shown = json.loads(op2.ok("vocabulary", "show", "--json"))
    assert shown == {**DEFAULT, "categories": [*DEFAULT["categories"], "spam"]}


# -- lists and staging ----------------------------------------------------------------------


def test_list_create_format_entries_declares_it_and_hashes_are_not_staged_to_it(
    op: Operator,
) -> None:
    root = newest_root(op)
    assert root.lists["ncii-md5"].format == "entries"
    assert root.lists["tid-md5"].format == "hashes"
    assert "format" not in root.lists["tid-md5"].to_dict()
    assert json.loads(op.ok("list", "show", "ncii-md5", "--json"))["format"] == "entries"
    assert "holds entries" in failed(op, "add", "ncii-md5", md5(1))
    assert "holds bare hashes" in failed(
        op, "entry", "add", "--list", "tid-md5", "--hash", md5(1), "--category", "ncii",
        "--classification", "confirmed", "--source", "import",
    )  # fmt: skip
    assert op.run("list", "create", "x-md5", "--type", "md5", "--format", "rows").exit_code == 2


def test_entry_add_gives_one_new_id_for_all_its_hashes_and_first_seen_now(op: Operator) -> None:
    before = utcnow().replace(microsecond=0)
    first = add_entry(op, 1)
    second = add_entry(op, 2)
    assert first != second
    shown = json.loads(op.ok("entry", "show", first, "--json"))
    assert shown["entry"] == first
    assert shown["collection"] == "ncii"
    assert (shown["category"], shown["classification"], shown["source"]) == (
        "ncii", "confirmed", "import:batch-1",
    )  # fmt: skip
    assert format_time(before) <= shown["first_seen"] <= format_time(utcnow())
    assert shown["expires"] is None
    assert shown["retracted"] is None
    assert shown["lists"] == [
        {"list": "ncii-md5", "hash": md5(1), "listed": False, "pending": True},
        {"list": "ncii-pdq", "hash": pdq(1), "listed": False, "pending": True},
    ]
    listed = json.loads(op.ok("entry", "list", "--list", "ncii-pdq", "--json"))
    assert [e["entry"] for e in listed] == [first, second]
    table = op.ok("entry", "list", "--list", "ncii-md5")
    assert first in table
    assert md5(1) in table
    assert "confirmed" in table
    assert json.loads(op.ok("list", "show", "ncii-md5", "--json"))["staged"] == 2


BAD_ADDS = [
    (["--category", "spam"], "'spam' is not a term of vocabulary.categories"),
    (["--classification", "awful"], "'awful' is not a term of vocabulary.classifications"),
    (["--source", "rumour"], "'rumour' is not a term of vocabulary.sources"),
    (["--source", "import:Batch 1"], "the source's ref does not match"),
    (["--expires", "2001-01-01T00:00:00Z"], "is not in the future"),
    (["--expires", "tomorrow"], "is not a time of the form"),
]


@pytest.mark.parametrize(("change", "message"), BAD_ADDS)
def test_entry_add_refuses_a_value_the_vocabulary_or_grammar_does_not_allow(
    op: Operator, change: list[str], message: str
) -> None:
    args = {"--category": "ncii", "--classification": "confirmed", "--source": "import"}
    args.update(dict(zip(change[::2], change[1::2], strict=True)))
    flat = [part for pair in args.items() for part in pair]
    err = failed(op, "entry", "add", "--list", "ncii-md5", "--hash", md5(1), *flat)
    assert message in err
    assert staged_rows(op) == (0, 0, 0)


def test_entry_add_refuses_bad_hashes_and_lists_and_stages_nothing(op: Operator) -> None:
    base = ["--category", "ncii", "--classification", "confirmed", "--source", "import"]
    assert "is not a md5 hash (32 hex digits)" in failed(
        op, "entry", "add", "--list", "ncii-md5", "--hash", "zz" * 16, *base
    )
    assert "is not a pdq hash (64 hex digits)" in failed(
        op, "entry", "add", "--list", "ncii-pdq", "--hash", md5(1), *base
    )
    assert "a list is named twice" in failed(
        op, "entry", "add", "--list", "ncii-md5", "--hash", md5(1),
        "--list", "ncii-md5", "--hash", md5(2), *base,
    )  # fmt: skip
    op.ok("list", "create", "csam-md5", "--type", "md5", "--label", "csam", "--format", "entries")
    assert "are not one collection" in failed(
        op, "entry", "add", "--list", "ncii-md5", "--hash", md5(1),
        "--list", "csam-md5", "--hash", md5(2), *base,
    )  # fmt: skip
    assert "no list 'nope-md5'" in failed(
        op, "entry", "add", "--list", "nope-md5", "--hash", md5(1), *base
    )
    assert op.run("entry", "add", "--list", "ncii-md5", *base).exit_code == 2  # no --hash
    assert staged_rows(op) == (0, 0, 0)

    first = add_entry(op, 1)
    err = failed(op, "entry", "add", "--list", "ncii-pdq", "--hash", pdq(1), *base)
    assert f"hash {pdq(1)} is already listed in ncii-pdq (entry {first})" in err
    assert staged_rows(op) == (1, 2, 2)


def test_unknown_entries_and_a_second_retraction_are_refused(op: Operator) -> None:
    assert "no entry e-nothing" in failed(op, "entry", "show", "e-nothing")
    assert "no entry e-nothing" in failed(
        op, "entry", "retract", "e-nothing", "--reason", "withdrawn"
    )
    assert "is not an entry id" in failed(op, "entry", "show", "E/../x")
    first = add_entry(op, 1)
    assert "nothing to change" in failed(op, "entry", "change", first)
    assert "is not a term" in failed(op, "entry", "change", first, "--category", "spam")
    op.ok("entry", "retract", first, "--reason", "withdrawn")
    assert f"entry {first} was retracted (withdrawn)" in failed(
        op, "entry", "retract", first, "--reason", "disputed"
    )
    assert "was retracted" in failed(op, "entry", "change", first, "--category", "csam")
    assert op.run("entry", "retract", first, "--reason", "expired").exit_code == 2
    # The retracted entry's hash may be listed again, as a new entry with a new id.
    assert add_entry(op, 1) != first


def test_entry_import_stages_all_or_nothing(op: Operator, tmp_path: Path) -> None:
    lines = [
        {"hashes": {"ncii-md5": md5(i), "ncii-pdq": pdq(i)}, "category": "ncii",
         "classification": "unconfirmed", "source": "submission"}
        for i in range(3)
    ]  # fmt: skip
    bad = tmp_path / "bad.ndjson"
    bad.write_text(
        "\n".join([json.dumps(lines[0]), json.dumps({**lines[1], "category": "spam"})]) + "\n",
        encoding="utf-8",
    )
    err = failed(op, "entry", "import", str(bad))
    assert "entry 2: 'spam' is not a term of vocabulary.categories" in err
    assert "nothing was staged" in err
    broken = tmp_path / "broken.ndjson"
    broken.write_bytes(json.dumps(lines[0]).encode() + b"\n{\xff\n")
    assert "line 2: not a JSON object in UTF-8" in failed(op, "entry", "import", str(broken))
    assert staged_rows(op) == (0, 0, 0)

    good = tmp_path / "good.ndjson"
    good.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    assert "Staged 3 entries" in op.ok("entry", "import", str(good))
    assert staged_rows(op) == (3, 6, 6)


# -- publishing, verified as a node verifies -------------------------------------------------


def records(op: Operator, list_id: str, now: datetime | None = None) -> list[Entry]:
    """The records of ``list_id`` as a node has them after following it from v1."""
    hub = op.open()
    try:
        fetch = from_hub(hub)
        versions = follow_entries(fetch, list_id, pinned_sha256=op.pinned, now=now or utcnow())
    finally:
        hub.close()
    return versions[-1].state.entries() if versions else []


def test_a_session_publishes_adds_changes_retractions_and_expiry_a_node_verifies(
    op: Operator,
) -> None:
    op.ok("add", "tid-md5", md5("plain"))
    first = add_entry(op, 1)
    soon = format_time(utcnow() + timedelta(hours=1))
    second = add_entry(op, 2, "--expires", soon)
    out = op.ok("publish")
    assert "ncii-md5: v1  +2 -0  2 entries" in out
    assert "ncii-pdq: v1  +2 -0  2 entries" in out
    assert "tid-md5: v1  +1 -0  1 hashes" in out
    assert json.loads(op.ok("entry", "show", first, "--json"))["lists"][0]["listed"] is True

    op.ok("entry", "change", first, "--classification", "severe", "--category", "csam")
    out = op.ok("publish", "ncii-md5")  # its collection publishes with it
    assert "ncii-md5: v2  +1 -1  2 entries, snapshot written" in out
    assert "ncii-pdq: v2  +1 -1  2 entries" in out

    op.ok("entry", "retract", first, "--reason", "disputed")
    out = op.ok("publish", "ncii-pdq")
    assert "ncii-md5: v3  +0 -1  1 entries" in out
    assert "ncii-pdq: v3  +0 -1  1 entries" in out
    assert "Nothing staged" in op.ok("publish")

    # The hour passes: the next publish retracts the expired entry with reason expired.
    later = utcnow() + timedelta(hours=2)
    hub = Hub.open(op.home, now=lambda: later)
    try:
        results = hub.publishing.publish()
    finally:
        hub.close()
    assert sorted((r.list, r.version, r.removes, r.count) for r in results) == [
        ("ncii-md5", 4, 1, 0),
        ("ncii-pdq", 4, 1, 0),
    ]
    shown = json.loads(op.ok("entry", "show", second, "--json"))
    assert shown["retracted"] == "expired"
    assert [i["listed"] for i in shown["lists"]] == [False, False]

    hub = op.open()
    try:
        fetch = from_hub(hub)
        for list_id, h in (("ncii-md5", md5), ("ncii-pdq", pdq)):
            versions = follow_entries(fetch, list_id, pinned_sha256=op.pinned, now=later)
            assert [v.version for v in versions] == [1, 2, 3, 4]
            v1, v2, v3, v4 = (v.body for v in versions)
            assert sorted(e.entry_id for e in v1.adds) == sorted([first, second])
            assert not v1.removes
            added = {e.entry_id: e for e in v1.adds}
            assert added[first].hash.hex() == h(1)
            assert added[second].hash.hex() == h(2)
            assert added[second].expires is not None
            assert format_time(added[second].expires or utcnow()) == soon
            assert added[first].source == "import:batch-1"
            # A change: the old record removed as changed, the new one added, first_seen kept.
            assert [(r.entry.entry_id, r.reason) for r in v2.removes] == [(first, "changed")]
            (new,) = v2.adds
            assert (new.entry_id, new.category, new.classification) == (first, "csam", "severe")
            assert new.first_seen == added[first].first_seen
            assert [(r.entry, r.reason) for r in v3.removes] == [(new, "disputed")]
            assert not v3.adds
            assert [(r.entry, r.reason) for r in v4.removes] == [(added[second], "expired")]
            assert versions[1].state.entries() == sorted([new, added[second]], key=lambda e: e.line)
            assert versions[-1].state.count == 0
            assert versions[-1].state.digest().sha256 == hashlib.sha256(b"").hexdigest()
        # A new node starts from the snapshot of v2 and replays v3 and v4.
        state, base = bootstrap_entries(fetch, "ncii-md5", pinned_sha256=op.pinned, now=later)
        assert (base, state.count) == (2, 0)
        snapshot = hub.files.get("lists/ncii-md5/snapshot/2.bin")
        assert snapshot is not None
        assert snapshot[0].count(b"\n") == 2
        assert f" {first} csam severe ".encode() in snapshot[0]
    finally:
        hub.close()
    shown_text = op.ok("entry", "show", second)
    assert "state           retracted (expired)" in shown_text
    assert f"  ncii-md5  {md5(2)}  not listed" in shown_text
    assert "ncii-md5" in op.ok("status")
    assert "holds bare hashes" in failed(op, "entry", "list", "--list", "tid-md5")
    # The hashes list is untouched by all this: one version.
    assert json.loads(op.ok("list", "show", "tid-md5", "--json"))["version"] == 1


def test_a_retraction_leaves_every_sibling_list_in_one_publish(op: Operator) -> None:
    first = add_entry(op, 1)
    add_entry(op, 2)
    op.ok("publish")
    op.ok("entry", "retract", first, "--reason", "upstream")
    out = op.ok("publish", "ncii-md5")
    assert "ncii-md5: v2" in out
    assert "ncii-pdq: v2" in out
    for list_id in ("ncii-md5", "ncii-pdq"):
        assert [e.entry_id for e in records(op, list_id)] != []
        assert first not in {e.entry_id for e in records(op, list_id)}


def test_an_entry_that_expires_before_its_first_publish_is_never_listed(op: Operator) -> None:
    soon = format_time(utcnow() + timedelta(minutes=5))
    gone = add_entry(op, 1, "--expires", soon)
    kept = add_entry(op, 2)
    later = utcnow() + timedelta(minutes=10)
    hub = Hub.open(op.home, now=lambda: later)
    try:
        results = hub.publishing.publish()
    finally:
        hub.close()
    assert {(r.list, r.adds, r.removes) for r in results} == {
        ("ncii-md5", 1, 0),
        ("ncii-pdq", 1, 0),
    }
    assert [e.entry_id for e in records(op, "ncii-md5", later)] == [kept]
    assert json.loads(op.ok("entry", "show", gone, "--json"))["retracted"] == "expired"


def test_the_vocabulary_of_records_is_the_one_published_in_the_root(op: Operator) -> None:
    op.ok("vocabulary", "add", "categories", "spam")
    op.ok("entry", "add", "--list", "ncii-md5", "--hash", md5(9), "--category", "spam",
          "--classification", "severe", "--source", "import:platform-a")  # fmt: skip
    op.ok("publish")
    (record,) = records(op, "ncii-md5")
    assert (record.category, record.source_kind, record.source_ref) == (
        "spam", "import", "platform-a",
    )  # fmt: skip
    vocabulary = newest_root(op).vocabulary
    assert isinstance(vocabulary, Vocabulary)
    assert "spam" in vocabulary.categories


def test_records_that_differ_from_the_signed_state_are_never_built_on(op: Operator) -> None:
    add_entry(op, 1)
    op.ok("publish")
    hub = op.open()
    try:
        with hub.db.atomic():
            hub.db.execute("DELETE FROM entry_records WHERE list_id = 'ncii-md5'")
    finally:
        hub.close()
    add_entry(op, 2)
    assert "the hub's records differ from v1's signed state" in failed(op, "publish", "ncii-md5")
    assert json.loads(op.ok("list", "show", "ncii-md5", "--json"))["version"] == 1


class CrashError(Exception):
    """Stands for the process dying at a publishing step."""


ENTRY_TABLES = ("entry_items", "entry_hashes", "entry_pending", "entry_records")


def stored(hub: Hub) -> list[object]:
    """Everything a publish of an entries list may touch."""
    q = hub.db.query
    return [
        [tuple(r.values()) for r in q("SELECT path, sha256 FROM files ORDER BY path")],
        [dict(r) for r in q("SELECT * FROM lists ORDER BY id")],
        [dict(r) for r in q("SELECT * FROM log_roots ORDER BY list_id, size")],
        *([dict(r) for r in hub.db.table(table).rows] for table in ENTRY_TABLES),
        hub.db.table("actions").count,
    ]


@pytest.mark.parametrize("step", ["file 0", "file 3", "head", "entries", "staged", "commit"])
def test_a_crash_at_any_step_of_an_entries_publish_leaves_the_previous_version(
    op: Operator, step: str
) -> None:
    first = add_entry(op, 1)
    op.ok("publish")
    op.ok("entry", "change", first, "--classification", "severe")
    add_entry(op, 2)
    hub = op.open()
    try:
        before = stored(hub)

        def crash(name: str) -> None:
            if name.startswith(step):
                raise CrashError(name)

        hub.fault_hook = crash
        with pytest.raises(CrashError):
            hub.publishing.publish(["ncii-md5"])
        hub.fault_hook = None
        assert stored(hub) == before
        results = hub.publishing.publish()
        assert sorted((r.list, r.version, r.adds, r.removes) for r in results) == [
            ("ncii-md5", 2, 2, 1),
            ("ncii-pdq", 2, 2, 1),
        ]
    finally:
        hub.close()
    (removal,) = [r for r in follow(op, "ncii-md5")[-1].body.removes]
    assert (removal.entry.entry_id, removal.reason) == (first, "changed")


def follow(op: Operator, list_id: str) -> list[EntriesVersion]:
    hub = op.open()
    try:
        return follow_entries(from_hub(hub), list_id, pinned_sha256=op.pinned, now=utcnow())
    finally:
        hub.close()


def test_a_change_takes_an_entrys_expiry_away_with_never(op: Operator) -> None:
    """``--expires never``: the next version removes the record as ``changed`` and adds
    one that never expires, first seen as before."""
    first = add_entry(op, 1, "--expires", "2099-01-01T00:00:00Z")
    op.ok("publish")
    assert "expires" in failed(op, "entry", "change", first, "--expires", "someday")
    op.ok("entry", "change", first, "--expires", "never")
    op.ok("publish")
    last = follow(op, "ncii-md5")[-1]
    [removal] = last.body.removes
    [added] = last.body.adds
    assert (removal.entry.entry_id, removal.reason) == (first, "changed")
    assert removal.entry.expires is not None
    assert (added.entry_id, added.expires) == (first, None)
    assert added.first_seen == removal.entry.first_seen


def test_a_crash_in_the_second_list_of_a_collection_leaves_both_as_they_were(
    op: Operator,
) -> None:
    """A collection's lists publish in one transaction: a crash after the first list's
    version is complete, in the second's, leaves neither changed; the next run makes both."""
    first = add_entry(op, 1)
    op.ok("publish")
    op.ok("entry", "retract", first, "--reason", "withdrawn")
    hub = op.open()
    try:
        before = stored(hub)
        seen: list[str] = []

        def crash(name: str) -> None:
            seen.append(name)
            if name == "commit" and seen.count("commit") == 2:
                raise CrashError(name)

        hub.fault_hook = crash
        with pytest.raises(CrashError):
            hub.publishing.publish()
        hub.fault_hook = None
        assert seen.count("commit") == 2  # the first list's version was made, then the crash
        assert stored(hub) == before
        results = hub.publishing.publish()
        assert sorted((r.list, r.version, r.removes) for r in results) == [
            ("ncii-md5", 2, 1),
            ("ncii-pdq", 2, 1),
        ]
    finally:
        hub.close()


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("member:platform-a", "accepts a member's contribution"),
        ("hub:helpline.example", "re-publishes an upstream hub's entry"),
    ],
)
def test_a_source_that_claims_an_origin_is_never_set_by_hand(
    op: Operator, source: str, why: str
) -> None:
    """A record of source kind member or hub must carry its origin in the version's
    provenance (PROTOCOL.md §7.5); an operator typing one in has none to give."""
    out = failed(op, "entry", "add", "--list", "ncii-md5", "--hash", md5(11), "--category",
                 "ncii", "--classification", "confirmed", "--source", source)  # fmt: skip
    assert f"a source of kind {source.split(':')[0]} is the hub's own, set when it {why}" in out
    assert staged_rows(op) == (0, 0, 0)  # nothing staged
    kept = add_entry(op, 12)
    out = failed(op, "entry", "change", kept, "--source", source)
    assert "is the hub's own" in out
    assert json.loads(op.ok("entry", "show", kept, "--json"))["source"] == "import:batch-1"


def test_more_pending_entries_than_a_version_takes_are_published_as_several(
    op: Operator,
) -> None:
    """``max_entries_per_version``: five entries at two a version make three versions in
    one run (each list of the collection), which a node verifies one by one, and the
    records are all five."""
    hub = op.open()
    try:
        config = replace(hub.config, max_entries_per_version=2)
        (op.home / "hub.toml").write_text(config.to_toml())
    finally:
        hub.close()
    added = [add_entry(op, n) for n in range(5)]
    out = op.ok("publish")
    for list_id in ("ncii-md5", "ncii-pdq"):
        for version, adds, count in ((1, 2, 2), (2, 2, 4), (3, 1, 5)):
            assert f"{list_id}: v{version}  +{adds} -0  {count} " in out
        versions = follow(op, list_id)
        assert [len(v.body.adds) for v in versions] == [2, 2, 1]
        assert sorted(e.entry_id for e in versions[-1].state.entries()) == sorted(added)
    assert staged_rows(op) == (5, 10, 0)  # nothing left pending


def test_a_negative_upstream_interval_or_version_cap_is_refused() -> None:
    with pytest.raises(InvalidRequest, match=r"upstream_interval must be 0 \(off\) or at least 1"):
        HubConfig(name="hub.test", upstream_interval=-1)
    with pytest.raises(
        InvalidRequest, match=r"max_entries_per_version must be 0 \(off\) or at least 1"
    ):
        HubConfig(name="hub.test", max_entries_per_version=-1)
