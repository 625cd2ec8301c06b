"""The bridge following a list of entries: each record carries its entry to pytx.

The hub is the loopback entries hub of the node's tests (real keys, a root with a
vocabulary, an MD5 list of the ``entries`` format, public); the exchange is the
real ``HashhubSignalExchangeAPI`` and the records, opinions and checkpoints are
python-threatexchange's own objects, kept the ways pytx and HMA keep them.
"""

from __future__ import annotations

import pickle
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from threatexchange.exchanges.fetch_state import SignalOpinion, SignalOpinionCategory
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.utils import dataclass_json

from hashhub_tx import HashhubCheckpoint, HashhubCollabConfig, HashhubSignalExchangeAPI
from hashhub_tx.config import HubUrl, RootPin
from hashhub_tx.entries import HashhubEntry
from hashhub_tx.exchange import HashhubSignalMetadata
from protocol import Entry, Removal
from tests.node.entries_hub import EntriesHub, md5, record
from tests.node.fixtures_sync import Clock
from tests.txbridge.conftest import fetch, merged

LIST = "tid-entries-md5"
HOUR = 3600


@pytest.fixture
async def hub() -> AsyncIterator[EntriesHub]:
    published = await EntriesHub(Clock()).start()
    try:
        yield published
    finally:
        await published.close()


def exchange(hub: EntriesHub) -> HashhubSignalExchangeAPI:
    collab = HashhubCollabConfig(
        name="entries", hub_url=HubUrl(hub.url), pinned_root_sha256=RootPin(hub.pinned)
    )
    return HashhubSignalExchangeAPI(collab, now=hub.clock, snapshot_lag=1000)


def key(label: str) -> tuple[str, str]:
    return (VideoMD5Signal.get_name(), md5(label).hex())


def metadata(entry: Entry) -> HashhubSignalMetadata:
    return HashhubSignalMetadata([LIST], entry.hash.hex(), {LIST: HashhubEntry.of(entry)})


async def test_each_record_carries_its_entry_as_opinion_tags(hub: EntriesHub) -> None:
    t = hub.clock()
    expiring = record(
        "a", t, category="extremism", source="member:platform-b", expires=t + timedelta(days=30)
    )
    lasting = record("b", t, classification="reported")
    hub.publish(LIST, adds=[expiring, lasting])

    records = merged(await fetch(exchange(hub), None))

    assert records == {key("a"): metadata(expiring), key("b"): metadata(lasting)}
    (opinion,) = records[key("a")].get_as_opinions()
    assert isinstance(opinion, SignalOpinion)
    assert opinion.category == SignalOpinionCategory.POSITIVE_CLASS
    assert not opinion.is_mine
    assert opinion.tags == {
        LIST,
        "entry:e-a",
        "category:extremism",
        "classification:confirmed",
        "source:member:platform-b",
        f"first_seen:{expiring.to_dict()['first_seen']}",
        f"expires:{expiring.to_dict()['expires']}",
    }
    (opinion,) = records[key("b")].get_as_opinions()
    assert "classification:reported" in opinion.tags
    assert not [tag for tag in opinion.tags if tag.startswith("expires:")]


async def test_an_expired_entry_is_not_handed_on(hub: EntriesHub) -> None:
    t = hub.clock()
    brief = record("brief", t, expires=t + timedelta(hours=1))
    hub.publish(LIST, adds=[brief, record("kept", t)])
    api = exchange(hub)
    first = await fetch(api, None)
    assert merged(first)[key("brief")] == metadata(brief)

    # Two hours on, nothing new is published: the entry expired by the bridge's clock.
    hub.clock.advance(2 * HOUR)
    again = await fetch(api, first[-1].checkpoint)
    assert merged(again) == {key("brief"): None}

    # Sent once: the next fetch, an hour on, with nothing published, sends nothing, and
    # a fetch that brings a new version sends only what it changed.
    hub.clock.advance(HOUR)
    quiet = await fetch(api, again[-1].checkpoint)
    assert merged(quiet) == {}
    hub.publish(LIST, adds=[record("next", hub.clock())])
    moved = await fetch(api, quiet[-1].checkpoint)
    assert merged(moved) == {key("next"): metadata(record("next", hub.clock()))}

    # A list first fetched after the entry expired never hands it on.
    hub.publish(LIST, adds=[record("late", hub.clock())])
    fresh = merged(await fetch(exchange(hub), None))
    assert fresh[key("brief")] is None
    assert fresh[key("kept")] == metadata(record("kept", t))


async def test_a_changed_entry_sends_its_record_again(hub: EntriesHub) -> None:
    t = hub.clock()
    before = record("a", t, classification="reported")
    hub.publish(LIST, adds=[before, record("b", t)])
    api = exchange(hub)
    first = await fetch(api, None)

    after = record("a", t, classification="confirmed")
    hub.publish(LIST, adds=[after], removes=[Removal(before, "changed")])
    hub.publish(LIST, removes=[Removal(record("b", t), "retracted")])
    changed = merged(await fetch(api, first[-1].checkpoint))

    assert changed == {key("a"): metadata(after), key("b"): None}


@pytest.mark.parametrize("store", ["json", "pickle"])
async def test_entries_round_trip_through_pytx_storage(hub: EntriesHub, store: str) -> None:
    """HMA keeps records and checkpoints as dataclass JSON, the pytx CLI as pickles."""
    t = hub.clock()
    hub.publish(LIST, adds=[record("a", t, expires=t + timedelta(days=2)), record("b", t)])
    api = exchange(hub)
    deltas = await fetch(api, None)
    checkpoint = deltas[-1].checkpoint
    value = merged(deltas)[key("a")]
    assert value is not None
    if store == "json":
        kept_checkpoint = dataclass_json.dataclass_loads(
            dataclass_json.dataclass_dumps(checkpoint), HashhubCheckpoint
        )
        kept_value = dataclass_json.dataclass_loads(
            dataclass_json.dataclass_dumps(value), HashhubSignalMetadata
        )
    else:
        kept_checkpoint = pickle.loads(pickle.dumps(checkpoint))
        kept_value = pickle.loads(pickle.dumps(value))
    assert kept_checkpoint == checkpoint
    assert {lc.format for lc in kept_checkpoint.lists.values()} == {"entries"}
    assert kept_value == value
    assert kept_value.get_as_opinions() == value.get_as_opinions()

    new = record("c", hub.clock(), category="extremism")
    hub.publish(LIST, adds=[new])
    assert merged(await fetch(api, kept_checkpoint)) == {key("c"): metadata(new)}
