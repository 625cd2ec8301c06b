"""Registering a hosted corpus in bulk: ``hashhub-node content import`` and ``remove``.

A platform joining late has millions of items already hosted. The import reads
them a line at a time, writes them in batches (each one transaction), refuses a
malformed line by its number without writing any of its batch, and counts as the
per-item paths count: a re-run registers and counts nothing twice, and a listed
hash in the corpus is a match event at once. Every test runs the real command on a
real node home and reads the real SQLite file.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from follow import ListOutcome
from node.cli import main
from node.content_import import MAX_LINE_BYTES
from node.matcher import ListIndex
from node.service import Node
from protocol import ListSpec
from tests.node.conftest import MD5_LIST, PDQ_LIST, HubServer, init_node_home, md5, offline_node
from tests.node.test_cli import ok


def run(*args: str, stdin: bytes | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin)


async def arun(*args: str, stdin: str | None = None) -> Result:
    """``run`` on a worker thread, so that the hub on this loop can answer a sync."""
    return await asyncio.to_thread(run, *args, stdin=None if stdin is None else stdin.encode())


def refused(result: Result, *fragments: str) -> None:
    """A refusal: exit status 1, the reason on standard error, no traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A node that follows no list the hub has published yet: registration only."""
    path = tmp_path / "node"
    offline_node(path, [MD5_LIST]).close()
    return path


def registered(home: Path) -> set[tuple[str, str, str]]:
    conn = sqlite3.connect(home / "node.db")
    try:
        return {
            (content_id, hash_type, bytes(h).hex())
            for content_id, hash_type, h in conn.execute(
                "SELECT content_id, hash_type, hash FROM content"
            )
        }
    finally:
        conn.close()


def dump(home: Path) -> list[str]:
    """The whole database, schema and rows, to compare before and after."""
    conn = sqlite3.connect(home / "node.db")
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def counters(home: Path) -> dict[tuple[str, str, str], int]:
    conn = sqlite3.connect(home / "node.db")
    try:
        return {
            (list_id, h, name): value
            for list_id, h, name, value in conn.execute(
                "SELECT list_id, hash, name, value FROM counters"
            )
        }
    finally:
        conn.close()


def events(home: Path) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(home / "node.db")
    try:
        return [
            (list_id, bytes(h).hex(), content_id)
            for list_id, h, content_id in conn.execute(
                "SELECT list_id, hash, content_id FROM match_events ORDER BY created, rowid"
            )
        ]
    finally:
        conn.close()


def h(label: object, kind: str = "md5") -> str:
    data = str(label).encode()
    if kind == "md5":
        return hashlib.md5(data, usedforsecurity=False).hexdigest()
    return hashlib.sha256(data).hexdigest()


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


# -- what is registered ---------------------------------------------------------------


def test_a_csv_import_registers_exactly_the_lines_given(home: Path, tmp_path: Path) -> None:
    corpus = write(
        tmp_path / "corpus.csv",
        "\ufeffcontent_id,hash_type,hash\r\n"  # as a spreadsheet saves it: a byte order mark
        f"posts/1.jpg,md5,{h(1)}\r\n"
        "\r\n"
        f'"posts/2,with a comma.jpg",sha256,{h(2, "sha256").upper()}\r\n'
        f"posts/1.jpg,sha256,{h(1, 'sha256')}\r\n"
        f"posts/3 ünïcode.jpg,md5,{h(3)}",  # no line break at the end
    )
    out = ok(run("content", "import", str(corpus), "--home", str(home)))
    assert registered(home) == {
        ("posts/1.jpg", "md5", h(1)),
        ("posts/2,with a comma.jpg", "sha256", h(2, "sha256")),
        ("posts/1.jpg", "sha256", h(1, "sha256")),
        ("posts/3 ünïcode.jpg", "md5", h(3)),
    }
    assert "Imported 4 line(s) in 1 batch(es): 4 hash(es) registered, 0 already" in out


def test_an_ndjson_import_registers_exactly_the_lines_given(home: Path, tmp_path: Path) -> None:
    lines = [
        {"content_id": "a", "hash_type": "md5", "hash": h("a")},
        {"hash": h("b", "sha256"), "hash_type": "sha256", "content_id": 'b "quoted"'},
        {"content_id": "c", "hash_type": "phash", "hash": "00ff00ff00ff00ff"},
    ]
    corpus = write(
        tmp_path / "corpus.ndjson", "\n" + "\n".join(json.dumps(line) for line in lines) + "\n"
    )
    out = ok(run("content", "import", str(corpus), "--home", str(home)))
    assert registered(home) == {
        ("a", "md5", h("a")),
        ('b "quoted"', "sha256", h("b", "sha256")),
        ("c", "phash", "00ff00ff00ff00ff"),
    }
    assert "3 hash(es) registered" in out


def test_format_given_overrides_the_guess(home: Path, tmp_path: Path) -> None:
    corpus = write(
        tmp_path / "corpus", f'{{"content_id": "a", "hash_type": "md5", "hash": "{h(1)}"}}\n'
    )
    refused(
        run("content", "import", str(corpus), "--format", "csv", "--home", str(home)),
        'line 1: unknown hash type \' "hash_type": "md5"\'',
    )
    ok(run("content", "import", str(corpus), "--format", "ndjson", "--home", str(home)))
    assert registered(home) == {("a", "md5", h(1))}


def test_standard_input_is_read_with_a_dash(home: Path) -> None:
    corpus = "".join(f"item-{i},md5,{h(i)}\n" for i in range(25))
    out = ok(
        run("content", "import", "-", "--batch", "10", "--home", str(home), stdin=corpus.encode())
    )
    assert registered(home) == {(f"item-{i}", "md5", h(i)) for i in range(25)}
    assert "Imported 25 line(s) in 3 batch(es)" in out


def test_identical_lines_register_once(home: Path, tmp_path: Path) -> None:
    line = f"a,md5,{h(1)}\n"
    out = ok(
        run("content", "import", str(write(tmp_path / "c.csv", line * 3)), "--home", str(home))
    )
    assert registered(home) == {("a", "md5", h(1))}
    assert "1 hash(es) registered, 2 already registered" in out


def test_progress_goes_to_standard_error_every_batch(home: Path, tmp_path: Path) -> None:
    corpus = write(tmp_path / "c.csv", "".join(f"i{i},md5,{h(i)}\n" for i in range(7)))
    result = run("content", "import", str(corpus), "--batch", "3", "--home", str(home))
    ok(result)
    progress = [line for line in result.stderr.splitlines() if line.startswith("batch ")]
    shape = re.compile(r"batch (\d+): (\d+) line\(s\) imported so far, [\d,]+ lines/s")
    matched = [shape.fullmatch(line) for line in progress]
    assert [m.groups() if m else line for m, line in zip(matched, progress, strict=True)] == [
        ("1", "3"),
        ("2", "6"),
        ("3", "7"),
    ]
    assert "batch" not in result.stdout.replace("batch(es)", "")


# -- refusals ---------------------------------------------------------------------------


def test_a_malformed_line_in_batch_k_leaves_the_batches_before_it_and_nothing_of_it(
    home: Path, tmp_path: Path
) -> None:
    lines = [f"item-{i},md5,{h(i)}" for i in range(10)]
    lines[7] = f"item-7,md5,{h(7)[:-1]}"  # line 8 of the file (after no header): batch 3
    corpus = write(tmp_path / "c.csv", "\n".join(lines) + "\n")
    result = run("content", "import", str(corpus), "--batch", "3", "--home", str(home))
    refused(
        result,
        "line 8: a md5 hash is 32 hex digits, found 31",
        "batches 1-2 (6 line(s), through line 6) committed",
        "nothing of batch 3 (from line 7) written",
    )
    assert registered(home) == {(f"item-{i}", "md5", h(i)) for i in range(6)}

    lines[7] = f"item-7,md5,{h(7)}"  # corrected: the same command again resumes
    write(corpus, "\n".join(lines) + "\n")
    out = ok(run("content", "import", str(corpus), "--batch", "3", "--home", str(home)))
    assert registered(home) == {(f"item-{i}", "md5", h(i)) for i in range(10)}
    assert "4 hash(es) registered, 6 already registered" in out


def test_a_malformed_line_in_the_first_batch_writes_nothing(home: Path, tmp_path: Path) -> None:
    corpus = write(tmp_path / "c.csv", f"a,md5,{h(1)}\nb,md7,{h(2)}\n")
    refused(
        run("content", "import", str(corpus), "--home", str(home)),
        "line 2: unknown hash type 'md7'; one of md5, pdq, phash, sha256",
        "nothing was written",
    )
    assert registered(home) == set()


MALFORMED = [
    ("a,md5\n", "line 1: expected 3 fields (content_id,hash_type,hash), found 2"),
    (f"a,md5,{h(1)},extra\n", "line 1: expected 3 fields"),
    (f"a,sha256,{h(1)}\n", "line 1: a sha256 hash is 64 hex digits, found 32"),
    (f"a,md5,{h(1)[:-2]}zz\n", "line 1: the hash is not hexadecimal"),
    (f"a,md5,{h(1)[:16]} {h(1)[17:]}\n", "line 1: the hash is not hexadecimal"),
    (f",md5,{h(1)}\n", "line 1: content id must be 1-256 printable characters"),
    (f"{'x' * 257},md5,{h(1)}\n", "line 1: content id must be 1-256 printable characters"),
    (f"a\tb,md5,{h(1)}\n", "line 1: content id must be 1-256 printable characters"),
    (f'"a,md5,{h(1)}\n', "line 1: malformed CSV"),
    ('{"content_id": "a", "hash_type": "md5"}\n', "line 1: missing field 'hash'"),
    (
        f'{{"content_id": "a", "hash_type": "md5", "hash": "{h(1)}", "x": 1}}\n',
        "line 1: unknown field 'x'",
    ),
    (
        f'{{"content_id": "a", "content_id": "b", "hash_type": "md5", "hash": "{h(1)}"}}\n',
        "line 1: field 'content_id' given twice",
    ),
    (f'{{"content_id": 7, "hash_type": "md5", "hash": "{h(1)}"}}\n', "content_id must be a string"),
    ('{"content_id": "a",\n', "line 1: malformed JSON"),
    ('{"content_id": "a"}\n', "line 1: missing field 'hash_type'"),
]


@pytest.mark.parametrize(("text", "message"), MALFORMED)
def test_a_malformed_line_is_refused_by_number_and_reason(
    home: Path, tmp_path: Path, text: str, message: str
) -> None:
    corpus = write(tmp_path / "c", text)
    refused(run("content", "import", str(corpus), "--home", str(home)), message)
    assert registered(home) == set()


def test_a_line_that_is_not_utf8_is_refused(home: Path, tmp_path: Path) -> None:
    corpus = write(
        tmp_path / "c.csv", f"a,md5,{h(1)}\n".encode() + b"caf\xe9,md5," + h(2).encode() + b"\n"
    )
    refused(
        run("content", "import", str(corpus), "--home", str(home)),
        "line 2: not UTF-8 (byte 4 of the line)",
        "nothing was written",
    )
    assert registered(home) == set()


def test_an_over_long_line_is_refused_and_not_read_whole(home: Path, tmp_path: Path) -> None:
    huge = "x" * (50 * MAX_LINE_BYTES)
    corpus = write(tmp_path / "c.csv", f"a,md5,{h(1)}\n{huge},md5,{h(2)}\nb,md5,{h(3)}\n")
    result = run("content", "import", str(corpus), "--batch", "1", "--home", str(home))
    refused(
        result,
        f"line 2: longer than {MAX_LINE_BYTES} bytes",
        "batch 1 (1 line(s), through line 1) committed",
    )
    assert registered(home) == {("a", "md5", h(1))}
    # A line of the limit is read (and refused for its content id); one byte more is not.
    tail = f",md5,{h(4)}"
    at_limit = write(tmp_path / "at.csv", "y" * (MAX_LINE_BYTES - len(tail)) + tail + "\r\n")
    refused(run("content", "import", str(at_limit), "--home", str(home)), "line 1: content id")
    over = write(tmp_path / "over.csv", "y" * (MAX_LINE_BYTES + 1 - len(tail)) + tail + "\n")
    refused(run("content", "import", str(over), "--home", str(home)), "line 1: longer than")
    assert registered(home) == {("a", "md5", h(1))}


def test_a_dry_run_checks_every_line_and_writes_nothing(home: Path, tmp_path: Path) -> None:
    ok(run("content", "import", "-", "--home", str(home), stdin=f"old,md5,{h(0)}\n".encode()))
    before = dump(home)
    good = write(
        tmp_path / "good.csv", "".join(f"i{i},md5,{h(i)}\n" for i in range(5)) + f"old,md5,{h(0)}\n"
    )
    out = ok(run("content", "import", str(good), "--dry-run", "--batch", "2", "--home", str(home)))
    assert (
        "Checked 6 line(s) in 3 batch(es), all well-formed: 5 not registered yet, 1 already" in out
    )
    assert dump(home) == before

    bad = write(tmp_path / "bad.csv", f"a,md5,{h(1)}\nb,md5,zz\nc,md5,{h(3)}\nd,md6,{h(4)}\n")
    result = run("content", "import", str(bad), "--dry-run", "--batch", "2", "--home", str(home))
    refused(
        result,
        "refused line 2: the hash is not hexadecimal",
        "refused line 4: unknown hash type 'md6'",
        "2 malformed line(s); nothing written (dry run)",
    )
    assert dump(home) == before


# -- counting and matching ----------------------------------------------------------------


@pytest.fixture
async def synced_home(tmp_path: Path, hub_server: HubServer) -> Path:
    """A node that enforces the hub's lists: MD5_LIST holds md5 of "0" … "4"."""
    home = init_node_home(tmp_path / "node", hub_server)
    ok(await arun("sync", "--home", str(home)))
    return home


async def test_a_listed_hash_in_the_corpus_is_a_match_event_and_a_rerun_counts_nothing_twice(
    synced_home: Path, tmp_path: Path
) -> None:
    home = str(synced_home)
    corpus = write(
        tmp_path / "corpus.csv",
        f"clean-1,md5,{md5('clean-1').hex()}\n"
        f"bad-1,md5,{md5(1).hex()}\n"
        f"clean-2,md5,{md5('clean-2').hex()}\n"
        f"bad-1,sha256,{h('bad-1', 'sha256')}\n",
    )
    before = dump(synced_home)
    looked = ok(await arun("content", "import", str(corpus), "--dry-run", "--home", home))
    assert f"bad-1: MATCH {MD5_LIST} v1" in looked
    assert "not recorded (dry run)" in looked
    assert dump(synced_home) == before

    out = ok(await arun("content", "import", str(corpus), "--batch", "2", "--home", home))
    assert events(synced_home) == [(MD5_LIST, md5(1).hex(), "bad-1")]
    assert f"bad-1: MATCH {MD5_LIST} v1  md5 distance 0  listed {md5(1).hex()}" in out
    assert "4 hash(es) registered, 0 already registered; 1 match(es)" in out
    first = counters(synced_home)
    assert first[(MD5_LIST, "", "checked")] == 3  # the md5 lines; the sha256 one no list checks
    assert first[(MD5_LIST, "", "matched")] == 1
    assert first[(MD5_LIST, md5(1).hex(), "matched")] == 1
    assert (PDQ_LIST, "", "checked") not in first

    again = ok(await arun("content", "import", str(corpus), "--home", home))
    assert "0 hash(es) registered, 4 already registered; 1 match(es), 0 new" in again
    assert "recorded before, not counted again" in again
    assert events(synced_home) == [(MD5_LIST, md5(1).hex(), "bad-1")]
    assert counters(synced_home) == first


async def test_two_items_with_one_listed_hash_are_two_events_and_one_item_is_one(
    synced_home: Path,
) -> None:
    corpus = f"x,md5,{md5(2).hex()}\ny,md5,{md5(2).hex()}\nx,md5,{md5(2).hex()}\n"
    ok(await arun("content", "import", "-", "--home", str(synced_home), stdin=corpus))
    assert sorted(events(synced_home)) == [
        (MD5_LIST, md5(2).hex(), "x"),
        (MD5_LIST, md5(2).hex(), "y"),
    ]
    assert counters(synced_home)[(MD5_LIST, "", "checked")] == 2


async def test_imported_content_is_matched_again_when_a_list_grows(
    synced_home: Path, hub_server: HubServer
) -> None:
    corpus = f"old-post,md5,{md5('later').hex()}\n"
    ok(await arun("content", "import", "-", "--home", str(synced_home), stdin=corpus))
    assert events(synced_home) == []
    await hub_server.publish(MD5_LIST, adds=[md5("later")])
    ok(await arun("sync", "--home", str(synced_home)))
    assert events(synced_home) == [(MD5_LIST, md5("later").hex(), "old-post")]


async def test_content_registered_per_item_is_not_counted_again_by_an_import(
    synced_home: Path,
) -> None:
    node = Node.open(synced_home)
    try:
        node.registry.register_and_match("post", {"md5": [md5(3)]}, one_item=True)
    finally:
        node.close()
    before = counters(synced_home), events(synced_home)
    corpus = f"post,md5,{md5(3).hex()}\n"
    out = ok(await arun("content", "import", "-", "--home", str(synced_home), stdin=corpus))
    assert "0 hash(es) registered, 1 already registered; 1 match(es), 0 new" in out
    assert (counters(synced_home), events(synced_home)) == before


def test_a_batch_that_fails_to_write_is_rolled_back_whole(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = Node.open(home)
    try:
        node.registry.register_batch([("a", "md5", md5(1))])

        def refuse(*args: object) -> None:
            raise sqlite3.OperationalError("database or disk is full")

        # The rows are inserted, then counting them as checked fails: none may stay.
        node.hub().matching.indexes[MD5_LIST] = ListIndex.from_snapshot("md5", 0, b"")
        monkeypatch.setattr(node.store.matches, "bump_counter", refuse)
        with pytest.raises(sqlite3.OperationalError):
            node.registry.register_batch([("b", "md5", md5(2)), ("c", "md5", md5(3))])
    finally:
        node.close()
    assert registered(home) == {("a", "md5", md5(1).hex())}


# -- removal ---------------------------------------------------------------------------


def test_content_remove_removes_a_content_id_whole_or_one_hash(home: Path, tmp_path: Path) -> None:
    corpus = "".join(
        f"{cid},{kind},{h(cid + kind, kind)}\n"
        for cid in ("a", "b", "c")
        for kind in ("md5", "sha256")
    )
    ok(run("content", "import", "-", "--home", str(home), stdin=corpus.encode()))
    removal = write(
        tmp_path / "remove.csv",
        f"content_id\na\nb,sha256,{h('bsha256', 'sha256')}\nnever-registered\n",
    )
    out = ok(run("content", "remove", str(removal), "--home", str(home)))
    assert registered(home) == {
        ("b", "md5", h("bmd5")),
        ("c", "md5", h("cmd5")),
        ("c", "sha256", h("csha256", "sha256")),
    }
    assert "Removed 3 registered hash(es) named by 3 line(s) in 1 batch(es); 1 line(s)" in out

    ndjson = write(tmp_path / "remove.ndjson", '{"content_id": "c"}\n{"content_id": "b"}\n')
    ok(run("content", "remove", str(ndjson), "--home", str(home)))
    assert registered(home) == set()


def test_content_remove_refuses_a_malformed_line_and_removes_nothing_of_its_batch(
    home: Path, tmp_path: Path
) -> None:
    corpus = "".join(f"i{i},md5,{h(i)}\n" for i in range(4))
    ok(run("content", "import", "-", "--home", str(home), stdin=corpus.encode()))
    removal = write(tmp_path / "r.csv", "i0\ni1\ni2,md5\ni3\n")
    refused(
        run("content", "remove", str(removal), "--batch", "2", "--home", str(home)),
        "line 3: expected 1 field (content_id) or 3",
        "batch 1 (2 line(s), through line 2) committed",
    )
    assert registered(home) == {("i2", "md5", h(2)), ("i3", "md5", h(3))}


def test_removal_looks_content_up_by_its_id(home: Path) -> None:
    conn = sqlite3.connect(home / "node.db")
    try:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN DELETE FROM content WHERE content_id = ?", ["a"]
        ).fetchall()
        events_plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM match_events WHERE content_id = ?", ["a"]
        ).fetchall()
    finally:
        conn.close()
    assert "content_by_id" in str(plan)
    assert "match_events_by_content" in str(events_plan)


# -- a large corpus ----------------------------------------------------------------------


def test_an_import_of_100000_lines_registers_every_one(home: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "large.csv"
    with corpus.open("w", encoding="utf-8") as f:
        f.write("content_id,hash_type,hash\n")
        for i in range(100_000):
            if i % 2:
                f.write(f"media/{i:06d}.jpg,pdq,{i:064x}\n")
            else:
                f.write(f"media/{i:06d}.jpg,md5,{i:032x}\n")
    started = time.monotonic()
    out = ok(run("content", "import", str(corpus), "--batch", "10000", "--home", str(home)))
    elapsed = time.monotonic() - started
    print(f"imported 100000 lines in {elapsed:.1f} s: {100_000 / elapsed:,.0f} lines/s")
    assert "Imported 100000 line(s) in 10 batch(es): 100000 hash(es) registered" in out
    assert "Content index: 50000 distinct pdq hash(es) on disk" in out
    conn = sqlite3.connect(home / "node.db")
    try:
        assert conn.execute("SELECT count(*) FROM content").fetchone() == (100_000,)
        assert conn.execute(
            "SELECT content_id, hex(hash) FROM content WHERE content_id = 'media/099998.jpg'"
        ).fetchone() == ("media/099998.jpg", f"{99_998:032X}")
    finally:
        conn.close()


def test_an_exact_lists_retroactive_pass_looks_up_by_key_and_finds_what_a_scan_finds(
    tmp_path: Path,
) -> None:
    """md5 and sha256 look each added hash up in the registry's primary key instead of
    reading every registered hash; the hits must be exactly the full scan's."""
    rng = random.Random(7)
    node = offline_node(
        tmp_path / "exact",
        ["tid-md5"],
        node_id="node-a",
        webhook_url="http://127.0.0.1:9/hook",  # queued only: nothing is sent here
    )
    try:
        hosted = [rng.randbytes(16) for _ in range(3000)]
        for i, h in enumerate(hosted):
            node.registry.register(f"post-{i}", {"md5": [h]})
        node.registry.register("post-dup", {"md5": [hosted[5]]})  # one hash, two items
        added = rng.sample(hosted[6:], 50) + [hosted[5]] + [rng.randbytes(16) for _ in range(150)]
        spec = ListSpec("tid-md5", "md5", 0)
        outcome = ListOutcome("tid-md5", "updated", 1, 2, added=added)
        listed = set(added)
        scanned = sorted(
            [(f"post-{i}", h, h, 0) for i, h in enumerate(hosted) if h in listed]
            + [("post-dup", hosted[5], hosted[5], 0)]
        )
        assert len(scanned) == 50 + 2  # hosted[5] is registered under two content ids
        queued = node.registry.retroactive(outcome, spec, node.hub().matching)
        events = sorted(
            (r["content_id"], bytes(r["hash"]), bytes(r["query"]), r["distance"])
            for r in node.store.db.query(
                "SELECT content_id, hash, query, distance FROM match_events "
                "WHERE source = 'registry'"
            )
        )
        assert events == scanned
        assert queued == len(scanned)
    finally:
        node.close()


def test_read_ahead_keeps_the_order_and_raises_where_reading_failed() -> None:
    """The import reads the next batch on a thread while this one is written: the
    batches come in their order, a read error is raised at the batch it stopped,
    and a consumer that stops early stops the reader."""
    from collections.abc import Iterator

    from node.content_import import read_ahead

    assert list(read_ahead(iter(range(50)), depth=2)) == list(range(50))
    assert list(read_ahead(iter([]))) == []

    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise OSError(5, "Input/output error")

    got = read_ahead(failing())
    assert [next(got), next(got)] == [1, 2]
    with pytest.raises(OSError, match="Input/output error"):
        next(got)

    produced = []

    def endless() -> Iterator[int]:
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    reader = read_ahead(endless())
    assert [next(reader) for _ in range(3)] == [0, 1, 2]
    reader.close()
    time.sleep(0.3)
    stopped_at = len(produced)
    time.sleep(0.3)
    assert len(produced) == stopped_at < 10, "the reader stopped with its consumer"


@pytest.mark.parametrize(
    "text",
    [
        "post-1,pdq,ab",
        "a,,b",
        ",,",
        " spaced id ,md5, 00 ",
        "tab\tinside,x,y",
        "one",
        "a,b,c,d",
        "ünïcode,pdq,ff",
        "back\\slash,md5,00",
        "'single',md5,00",
    ],
)
def test_an_unquoted_csv_line_splits_as_the_csv_module_splits_it(text: str) -> None:
    """The fast path for lines without a double quote agrees with ``csv.reader``."""
    import csv

    from node.content_import import _csv_fields

    assert _csv_fields(text) == next(csv.reader([text], strict=True))


def test_each_batch_is_set_out_on_the_reading_thread_and_a_malformed_one_not_at_all() -> None:
    """``read_batches`` runs ``prepare`` where it reads, so the writing thread is left
    only SQLite's work; a batch with a malformed line is handed over with its
    refusals and nothing prepared."""
    import io
    import threading

    from node.content_import import read_batches

    seen: list[tuple[str, list[int]]] = []

    def prepare(lines: list[Any]) -> list[str]:
        seen.append((threading.current_thread().name, [line.number for line in lines]))
        return [line.content_id for line in lines]

    text = "a,md5," + "00" * 16 + "\nb,md5," + "11" * 16 + "\nc,md5,zz\nd,md5," + "22" * 16 + "\n"
    got = list(read_batches(io.BytesIO(text.encode()), None, 2, prepare))
    assert [(b.first_line, b.size, [str(x) for x in b.bad], b.work) for b in got] == [
        (1, 2, [], ["a", "b"]),
        (3, 2, ["line 3: the hash is not hexadecimal: 'zz'"], None),
    ]
    assert seen == [("content-reader", [1, 2])]


def test_content_rows_are_set_out_once_each_per_type() -> None:
    """What ``register_rows`` writes: repeats left out and counted, each type's ids as
    one JSON array and its hashes as one blob in the same order."""
    from node.store import ContentRows

    a, b, c = b"\x01" * 16, b"\x02" * 16, b"\x03" * 32
    rows = ContentRows.of(
        [("x", "md5", a), ("y", "pdq", c), ("x", "md5", a), ("ü", "md5", b), ("x", "md5", b)]
    )
    assert rows.rows == [("x", "md5", a), ("y", "pdq", c), ("ü", "md5", b), ("x", "md5", b)]
    assert rows.repeats == 1
    md5_rows = rows.by_type["md5"]
    assert json.loads(md5_rows.ids_json) == ["x", "ü", "x"]
    assert (md5_rows.blob, md5_rows.width) == (a + b + b, 16)
    assert (json.loads(rows.by_type["pdq"].ids_json), rows.by_type["pdq"].blob) == (["y"], c)
    with pytest.raises(ValueError, match="md5 hashes of different lengths"):
        ContentRows.of([("x", "md5", a), ("y", "md5", c)])


def test_rows_written_in_one_statement_are_the_rows_given(home: Path) -> None:
    """The ids and hashes SQLite takes apart from the JSON array and the blob are
    exactly the rows given, non-ASCII ids and quotes included, and the change count
    says which were new."""
    from datetime import UTC, datetime

    rng = random.Random(7)
    ids = ["plain", 'quote"d', "back\\slash", "ünïcode ✓", "emoji 🙂", "comma,id"]
    rows = [(i, "pdq", rng.randbytes(32)) for i in ids] + [
        (i, "md5", rng.randbytes(16)) for i in ids
    ]
    node = Node.open(home)
    try:
        now = datetime(2026, 12, 7, tzinfo=UTC)
        assert node.store.matches.register_rows(rows[:3], now) == {"pdq": 3}
        assert node.store.matches.register_rows(rows, now) == {"md5": 6, "pdq": 3}
    finally:
        node.close()
    conn = sqlite3.connect(home / "node.db")
    try:
        stored = conn.execute("SELECT content_id, hash_type, hash FROM content").fetchall()
    finally:
        conn.close()
    assert sorted(stored) == sorted(rows)


def test_the_cycle_collector_is_paused_for_a_bulk_run_and_restored() -> None:
    """A bulk run makes millions of objects and no cycles: the collector waits, and
    is left as the run found it."""
    import gc

    from node.content_import import no_cycle_collection

    assert gc.isenabled()
    with no_cycle_collection():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with no_cycle_collection():
            pass
        assert not gc.isenabled(), "left as it was found"
    finally:
        gc.enable()
