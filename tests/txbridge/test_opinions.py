"""The bridge following a list of entries carries what the platforms say of each entry.

The hub is the loopback entries hub of the node's tests, publishing each version
with the opinion summary the node's tests make (``tests.node.test_opinions``):
``e-a`` confirmed by two platforms, ``e-b`` confirmed by one and disputed by two (a
dispute), ``e-c`` disputed by one. The records and checkpoints are
python-threatexchange's own objects, kept the ways pytx and HMA keep them.
"""

from __future__ import annotations

import base64
import json
import pickle
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest
from threatexchange.utils import dataclass_json

from hashhub_tx import HashhubCheckpoint
from hashhub_tx.checkpoint import ListCheckpoint
from hashhub_tx.errors import CheckpointError
from hashhub_tx.exchange import HashhubSignalMetadata
from protocol import EntryOpinions, Removal
from tests.node.entries_hub import EntriesHub, record
from tests.node.fixtures_sync import Clock
from tests.node.test_opinions import said_of, summary
from tests.txbridge.conftest import fetch, merged
from tests.txbridge.test_entries import LIST, exchange, key


@pytest.fixture
async def hub() -> AsyncIterator[EntriesHub]:
    published = await EntriesHub(Clock()).start()
    try:
        yield published
    finally:
        await published.close()


def tags(value: HashhubSignalMetadata | None) -> set[str]:
    """The opinion tags of a record's entry in ``LIST``."""
    assert value is not None
    (opinion,) = value.get_as_opinions()
    return {t for t in opinion.tags if t.startswith(("opinions:", "dispute:"))}


def dismissed(at: datetime) -> Mapping[str, EntryOpinions]:
    """``said_of`` with ``e-b``'s dispute dismissed by the operator."""
    return said_of(at, "dismissed")


def without_c(at: datetime) -> Mapping[str, EntryOpinions]:
    """``said_of`` with ``e-c``'s one dispute taken back: nothing said of it."""
    return {e: o for e, o in said_of(at).items() if e != "e-c"}


def stored(checkpoint: HashhubCheckpoint) -> ListCheckpoint:
    return checkpoint.lists[LIST]


async def test_a_record_carries_what_the_platforms_say_of_its_entry(hub: EntriesHub) -> None:
    t = hub.clock()
    hub.publish(LIST, adds=[record(x, t) for x in "abcd"], opinions=summary())

    records = merged(await fetch(exchange(hub), None))

    assert tags(records[key("a")]) == {"opinions:confirmed:2", "opinions:disputed:0"}
    assert tags(records[key("b")]) == {
        "opinions:confirmed:1",
        "opinions:disputed:2",
        "dispute:open",
    }
    assert tags(records[key("c")]) == {"opinions:confirmed:0", "opinions:disputed:1"}
    assert tags(records[key("d")]) == set()  # no platform spoke of it
    b = records[key("b")]
    assert b is not None
    entry = b.entries[LIST]
    assert (entry.entry, entry.confirmed, entry.disputed, entry.dispute) == ("e-b", 1, 2, "open")
    d = records[key("d")]
    assert d is not None
    assert (d.entries[LIST].confirmed, d.entries[LIST].disputed, d.entries[LIST].dispute) == (
        0,
        0,
        None,
    )


async def test_a_new_summary_sends_again_only_the_records_it_changed(hub: EntriesHub) -> None:
    t = hub.clock()
    hub.publish(LIST, adds=[record(x, t) for x in "abcd"], opinions=summary())
    api = exchange(hub)
    first = await fetch(api, None)

    # A version changing no record, whose summary has e-b's dispute dismissed.
    hub.clock.advance(60)
    hub.publish(LIST, opinions=summary(dismissed))
    second = await fetch(api, first[-1].checkpoint)
    changed = merged(second)
    assert list(changed) == [key("b")]
    assert tags(changed[key("b")]) == {
        "opinions:confirmed:1",
        "opinions:disputed:2",
        "dispute:dismissed",
    }

    # A new record under a summary saying the same of the others: only it is sent.
    hub.clock.advance(60)
    hub.publish(LIST, adds=[record("e", hub.clock())], opinions=summary(dismissed))
    third = await fetch(api, second[-1].checkpoint)
    assert list(merged(third)) == [key("e")]

    # e-c's one dispute taken back: its record is sent again, without opinion tags.
    hub.clock.advance(60)
    hub.publish(
        LIST,
        opinions=summary(lambda at: {e: o for e, o in dismissed(at).items() if e != "e-c"}),
    )
    fourth = merged(await fetch(api, third[-1].checkpoint))
    assert list(fourth) == [key("c")]
    assert tags(fourth[key("c")]) == set()


async def test_a_version_without_a_summary_keeps_the_last_one(hub: EntriesHub) -> None:
    """As the node does: the summary still speaks for the entries held; the checkpoint
    keeps the headers since, which chain its header to the trusted last leaf."""
    t = hub.clock()
    hub.publish(LIST, adds=[record(x, t) for x in "abc"], opinions=summary())
    api = exchange(hub)
    first = await fetch(api, None)

    hub.clock.advance(60)
    hub.publish(LIST, adds=[record("d", hub.clock())])
    hub.publish(LIST, removes=[Removal(record("a", t), "retracted")])
    second = await fetch(api, first[-1].checkpoint)
    changed = merged(second)
    assert sorted(changed) == sorted([key("a"), key("d")])
    assert changed[key("a")] is None
    assert tags(changed[key("d")]) == set()
    kept = stored(second[-1].checkpoint)
    assert kept.opinions == stored(first[-1].checkpoint).opinions
    assert kept.opinions_later is not None
    assert len(kept.opinions_later) == 2

    # The checkpoint opens (the chain verifies) and the kept summary is still read:
    # a later summary changing only e-b sends only e-b's record.
    hub.clock.advance(60)
    hub.publish(LIST, opinions=summary(dismissed))
    third = await fetch(api, second[-1].checkpoint)
    assert list(merged(third)) == [key("b")]
    assert "dispute:dismissed" in tags(merged(third)[key("b")])
    assert stored(third[-1].checkpoint).opinions_later == []

    # Once no entry it speaks of is held, a summary kept that way is dropped.
    hub.clock.advance(60)
    hub.publish(LIST, removes=[Removal(record(x, t), "retracted") for x in "bc"])
    fourth = await fetch(api, third[-1].checkpoint)
    assert merged(fourth) == {key("b"): None, key("c"): None}
    assert stored(fourth[-1].checkpoint).opinions is None
    assert merged(await fetch(api, fourth[-1].checkpoint)) == {}


def kept_as(store: str, checkpoint: HashhubCheckpoint) -> HashhubCheckpoint:
    """The checkpoint as HMA (dataclass JSON) or the pytx CLI (pickle) gives it back."""
    if store == "json":
        loaded = dataclass_json.dataclass_loads(
            dataclass_json.dataclass_dumps(checkpoint), HashhubCheckpoint
        )
        assert isinstance(loaded, HashhubCheckpoint)
        return loaded
    back = pickle.loads(pickle.dumps(checkpoint))
    assert isinstance(back, HashhubCheckpoint)
    return back


@pytest.mark.parametrize("store", ["json", "pickle"])
async def test_the_opinion_state_survives_pytx_storage(hub: EntriesHub, store: str) -> None:
    t = hub.clock()
    hub.publish(LIST, adds=[record(x, t) for x in "abcd"], opinions=summary())
    api = exchange(hub)
    deltas = await fetch(api, None)
    checkpoint = deltas[-1].checkpoint
    value = merged(deltas)[key("b")]
    assert stored(checkpoint).opinions is not None

    kept = kept_as(store, checkpoint)
    assert kept == checkpoint
    if store == "json":
        record_back = dataclass_json.dataclass_loads(
            dataclass_json.dataclass_dumps(value), HashhubSignalMetadata
        )
    else:
        record_back = pickle.loads(pickle.dumps(value))
    assert record_back == value
    assert tags(record_back) == {"opinions:confirmed:1", "opinions:disputed:2", "dispute:open"}

    # A fetch with nothing new sends nothing, and keeps the summary.
    quiet = await fetch(api, kept)
    assert merged(quiet) == {}
    again = kept_as(store, quiet[-1].checkpoint)
    assert stored(again).opinions == stored(checkpoint).opinions

    # What the kept summary says is what the next one is compared with: only e-c moves.
    hub.clock.advance(60)
    hub.publish(LIST, opinions=summary(without_c))
    moved = merged(await fetch(api, again))
    assert list(moved) == [key("c")]
    assert tags(moved[key("c")]) == set()


def _tampered_summary(lc: ListCheckpoint) -> ListCheckpoint:
    data = base64.b64decode(lc.opinions or "")
    forged = data.replace(b'"threshold":2', b'"threshold":3')
    assert forged != data
    return replace(lc, opinions=base64.b64encode(forged).decode())


def _without_header(lc: ListCheckpoint) -> ListCheckpoint:
    return replace(lc, opinions_header=None)


def _header_off_the_log(lc: ListCheckpoint) -> ListCheckpoint:
    """The summary's header kept with one of the later headers missing: it no longer
    chains to the trusted last leaf."""
    assert lc.opinions_later
    return replace(lc, opinions_later=lc.opinions_later[1:])


@pytest.mark.parametrize(
    ("chained", "tamper", "message"),
    [
        (False, _tampered_summary, "SHA-256 does not match"),
        (True, _tampered_summary, "not the bytes the header names"),
        (False, _without_header, "kept together"),
        (True, _header_off_the_log, "does not follow"),
    ],
)
async def test_a_checkpoint_with_a_forged_summary_is_refused(
    hub: EntriesHub,
    chained: bool,
    tamper: Callable[[ListCheckpoint], ListCheckpoint],
    message: str,
) -> None:
    """The summary of the trusted version, or one kept through two versions without
    a summary since (``chained``), altered in the checkpoint."""
    t = hub.clock()
    hub.publish(LIST, adds=[record(x, t) for x in "abc"], opinions=summary())
    api = exchange(hub)
    checkpoint = (await fetch(api, None))[-1].checkpoint
    if chained:
        hub.publish(LIST, adds=[record("d", t)])
        hub.publish(LIST, adds=[record("e", t)])
        checkpoint = (await fetch(api, checkpoint))[-1].checkpoint
    assert bool(stored(checkpoint).opinions_later) == chained

    forged = replace(checkpoint, lists={LIST: tamper(stored(checkpoint))})
    with pytest.raises(CheckpointError, match=message):
        await fetch(api, forged)
    # The genuine checkpoint still opens.
    assert merged(await fetch(api, checkpoint)) == {}


@pytest.mark.parametrize("store", ["json", "pickle"])
async def test_a_checkpoint_written_before_summaries_were_kept_opens(
    hub: EntriesHub, store: str
) -> None:
    t = hub.clock()
    hub.publish(LIST, adds=[record(x, t) for x in "abcd"], opinions=summary())
    api = exchange(hub)
    checkpoint = (await fetch(api, None))[-1].checkpoint
    old = _before_summaries(store, checkpoint)
    assert stored(old).opinions is None
    assert stored(old).opinions_header is None

    # Nothing new: nothing sent. The next summary says something of a, b and c,
    # which the old checkpoint knew nothing of: their records are sent with it.
    assert merged(await fetch(api, old)) == {}
    hub.clock.advance(60)
    hub.publish(LIST, opinions=summary())
    moved = merged(await fetch(api, old))
    assert sorted(moved) == sorted([key("a"), key("b"), key("c")])
    assert "dispute:open" in tags(moved[key("b")])


def _before_summaries(store: str, checkpoint: HashhubCheckpoint) -> HashhubCheckpoint:
    """``checkpoint`` as a bridge that kept no summaries wrote it: without the fields."""
    fields = ("opinions", "opinions_header", "opinions_later")
    if store == "json":
        text = dataclass_json.dataclass_dumps(checkpoint)
        raw: dict[str, Any] = json.loads(text)
        for lc in raw["lists"].values():
            for name in fields:
                del lc[name]
        loaded = dataclass_json.dataclass_loads(json.dumps(raw), HashhubCheckpoint)
        assert isinstance(loaded, HashhubCheckpoint)
        return loaded
    back = pickle.loads(pickle.dumps(checkpoint))
    for lc in back.lists.values():
        for name in fields:
            del lc.__dict__[name]  # a pickle of the old class has no such attribute
    assert isinstance(back, HashhubCheckpoint)
    return back
