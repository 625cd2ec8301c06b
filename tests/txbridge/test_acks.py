"""The bridge's acks and outcomes through ``report_opinion``, against the real hub app.

HMA reports opinions through the exchange's ``report_opinion``, not the CLI, so
these call it as HMA does (from a worker thread: it is blocking) and read what the
hub stored, verified again with the bridge node's public key.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from threatexchange.exchanges.fetch_state import SignalOpinion, SignalOpinionCategory
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal
from threatexchange.signal_type.signal_base import SignalType

from hashhub_tx import HashhubSignalExchangeAPI, OpinionError
from hashhub_tx.acks import STATE_DIR
from protocol import verify_ack
from protocol.ack import Ack
from protocol.keyfile import load_public_key
from tests.node.fixtures_sync import HUB_NAME, PDQ_DATA, HubApp
from tests.txbridge.conftest import (
    BRIDGE_NODE,
    FIRST_MD5,
    MD5_LIST,
    ORIGINAL,
    PDQ_LIST,
    Bridge,
    fetch,
    pdq_of,
)


def acks(hub: HubApp, bridge: Bridge) -> list[Ack]:
    key = load_public_key(bridge.home / "node.pub.pem")
    return [
        verify_ack(a.bytes, a.sig, node_key=key, origin_prefix=HUB_NAME)
        for a in hub.acks(BRIDGE_NODE)
    ]


async def opinion(
    api: HashhubSignalExchangeAPI, signal: type[SignalType], value: str, *,
    category: SignalOpinionCategory = SignalOpinionCategory.POSITIVE_CLASS,
    tags: set[str] | None = None,
) -> None:  # fmt: skip
    await asyncio.to_thread(
        api.report_opinion, signal, value, SignalOpinion(True, category, tags or set())
    )


async def test_a_negative_opinion_is_a_false_positive_and_a_seed_a_match(
    hub: HubApp, bridge: Bridge
) -> None:
    api = bridge.api()
    await fetch(api, None)
    original = pdq_of(ORIGINAL).hex()

    await opinion(api, PdqSignal, original, category=SignalOpinionCategory.NEGATIVE_CLASS)
    await opinion(api, PdqSignal, original, category=SignalOpinionCategory.INVESTIGATION_SEED)
    await opinion(api, VideoMD5Signal, FIRST_MD5[0].hex(), tags={"actioned"})

    pdq = [a for a in acks(hub, bridge) if a.list_id == PDQ_LIST][-1]
    assert (pdq.counts.matched, pdq.counts.false_positive) == (2, 1)
    assert pdq.counts.hashes == {original: {"matched": 2, "false_positive": 1}}
    md5 = [a for a in acks(hub, bridge) if a.list_id == MD5_LIST][-1]
    assert (md5.counts.matched, md5.counts.actioned) == (1, 1)
    assert md5.counts.hashes == {FIRST_MD5[0].hex(): {"matched": 1, "actioned": 1}}


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        (set(), "give exactly one outcome label"),
        ({"blocked", "actioned"}, "give exactly one outcome label"),
        ({"blocked", "spam"}, "unknown label 'spam'"),
    ],
)
async def test_an_opinion_without_one_known_outcome_is_refused(
    hub: HubApp, bridge: Bridge, tags: set[str], message: str
) -> None:
    api = bridge.api()
    await fetch(api, None)
    count = len(hub.acks(BRIDGE_NODE))

    with pytest.raises(OpinionError, match=message):
        await opinion(api, PdqSignal, pdq_of(ORIGINAL).hex(), tags=tags)
    assert len(hub.acks(BRIDGE_NODE)) == count


async def test_without_a_node_home_an_opinion_is_refused(bridge: Bridge) -> None:
    with pytest.raises(OpinionError, match="no node home"):
        await opinion(bridge.api(node_home=None), PdqSignal, "0" * 64, tags={"blocked"})


async def test_a_bridge_that_lost_its_ack_state_is_renumbered_above_the_hub(
    hub: HubApp, bridge: Bridge
) -> None:
    """The hub has seq 1 and 2; a bridge that starts again at 1 gets 409 and re-signs."""
    api = bridge.api()
    await fetch(api, None)
    before = acks(hub, bridge)
    assert [a.seq for a in before] == [1, 2]
    state = bridge.home / STATE_DIR / "acks.json"
    state.unlink()

    hub.publish(
        PDQ_LIST, adds=[pdq_of(PDQ_DATA / "reg-test-input" / "labelme-subset" / "q0746.jpg")]
    )
    await fetch(api, None)

    after = acks(hub, bridge)
    assert [a.seq for a in after] == [1, 2, 3, 4]
    assert json.loads(state.read_text())["queue"] == []


async def test_an_ack_the_hub_cannot_take_now_is_kept_and_sent_at_the_next_fetch(
    hub: HubApp, bridge: Bridge
) -> None:
    api = bridge.api()
    await fetch(api, None)
    await hub.stop()
    try:
        await opinion(api, PdqSignal, pdq_of(ORIGINAL).hex(), tags={"blocked"})
    finally:
        await hub.start()
    assert [a.seq for a in acks(hub, bridge)] == [1, 2]

    await fetch(api, None)

    last = acks(hub, bridge)[-1]
    assert (last.seq, last.counts.blocked) == (3, 1)
