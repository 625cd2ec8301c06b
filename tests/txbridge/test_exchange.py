"""The bridge's ``SignalExchangeAPI`` against the real hub app on loopback.

Every fetch goes through ``fetch_iter`` as python-threatexchange calls it; the
checkpoint it yields is the one the next fetch gets. The rules: every hash a fetch
yields was verified first; a removal is a tombstone; the checkpoint resumes exactly
(only new changes next time); and a rejected update — tampered bytes, a forged
checkpoint, a frozen hub — raises before anything is yielded.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from threatexchange.exchanges.fetch_state import SignalOpinionCategory
from threatexchange.extensions.manifest import ThreatExchangeExtensionManifest
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal
from threatexchange.utils import dataclass_json

from hashhub_tx import (
    BridgeConfigError,
    CheckpointError,
    HashhubCheckpoint,
    HashhubSignalExchangeAPI,
    HashhubSignalMetadata,
    UpdateFailedError,
    UpdateRejectedError,
)
from protocol import ListTrust, b64decode, b64encode
from tests.node.fixtures_sync import HubApp, md5
from tests.node.hostile import HostileServer, Tamper, flip_byte
from tests.txbridge.conftest import (
    FIRST_MD5,
    MAX_AGE,
    MD5_LIST,
    ORIGINAL,
    PDQ_LIST,
    PHASH_LIST,
    Bridge,
    enrolled_home,
    fetch,
    merged,
    pdq_of,
    unrelated_photos,
)


def pdq_key(value: bytes) -> tuple[str, str]:
    return (PdqSignal.get_name(), value.hex())


def md5_key(value: bytes) -> tuple[str, str]:
    return (VideoMD5Signal.get_name(), value.hex())


def versions(checkpoint: HashhubCheckpoint) -> dict[str, int]:
    return {
        list_id: ListTrust.from_dict(json.loads(entry.trust)).version
        for list_id, entry in checkpoint.lists.items()
    }


# -- the normal paths ----------------------------------------------------------------------


async def test_first_fetch_yields_every_hash_of_every_matchable_list(bridge: Bridge) -> None:
    deltas = await fetch(bridge.api(), None)

    records = merged(deltas)
    expected = {pdq_key(pdq_of(p)) for p in [ORIGINAL, *unrelated_photos()]}
    expected |= {md5_key(h) for h in FIRST_MD5}
    assert set(records) == expected, "the phash list has no pytx type and is not followed"
    assert records[pdq_key(pdq_of(ORIGINAL))] == HashhubSignalMetadata([PDQ_LIST])
    assert records[md5_key(FIRST_MD5[0])] == HashhubSignalMetadata([MD5_LIST])
    assert versions(deltas[-1].checkpoint) == {MD5_LIST: 1, PDQ_LIST: 1}
    opinion = records[pdq_key(pdq_of(ORIGINAL))].get_as_opinions()[0]
    assert opinion.category == SignalOpinionCategory.POSITIVE_CLASS
    assert opinion.tags == {PDQ_LIST}


async def test_second_fetch_yields_only_the_new_changes_with_tombstones(
    hub: HubApp, bridge: Bridge
) -> None:
    api = bridge.api()
    first = await fetch(api, None)
    hub.publish(MD5_LIST, adds=[md5("new")], removes=[FIRST_MD5[0]])
    hub.publish(PDQ_LIST, removes=[pdq_of(ORIGINAL)])

    second = await fetch(api, first[-1].checkpoint)

    assert merged(second) == {
        md5_key(md5("new")): HashhubSignalMetadata([MD5_LIST]),
        md5_key(FIRST_MD5[0]): None,
        pdq_key(pdq_of(ORIGINAL)): None,
    }
    assert versions(second[-1].checkpoint) == {MD5_LIST: 2, PDQ_LIST: 2}
    third = await fetch(api, second[-1].checkpoint)
    assert merged(third) == {}, "nothing new: nothing yielded"
    assert versions(third[-1].checkpoint) == {MD5_LIST: 2, PDQ_LIST: 2}


async def test_a_fresh_co_signature_moves_the_checkpoint_time_only(
    hub: HubApp, bridge: Bridge
) -> None:
    api = bridge.api()
    first = await fetch(api, None)
    hub.clock.advance(60)
    hub.refresh()

    again = await fetch(api, first[-1].checkpoint)

    assert merged(again) == {}
    before, after = first[-1].checkpoint, again[-1].checkpoint
    assert versions(after) == versions(before)
    stamp_before = before.get_progress_timestamp()
    stamp_after = after.get_progress_timestamp()
    assert stamp_before is not None
    assert stamp_after == stamp_before + 60


async def test_every_delta_carries_a_checkpoint_that_resumes_exactly(
    hub: HubApp, bridge: Bridge
) -> None:
    """A consumer that stops after any delta (pytx's --limit) misses nothing next time."""
    api = bridge.api()
    base = (await fetch(api, None))[-1].checkpoint
    hub.publish(MD5_LIST, adds=[md5("a")])
    hub.publish(PDQ_LIST, removes=[pdq_of(ORIGINAL)])
    full = await fetch(api, base)
    assert len(full) == 2, "one delta per changed list"

    rest = await fetch(api, full[0].checkpoint)

    assert merged([full[0], *rest]) == merged(full)
    assert versions(rest[-1].checkpoint) == versions(full[-1].checkpoint)


async def test_a_hash_in_two_lists_survives_its_removal_from_one(
    hub: HubApp, bridge: Bridge, tmp_path: Path
) -> None:
    hub.create_list("second-pdq", "pdq")
    shared = pdq_of(ORIGINAL)
    hub.publish("second-pdq", adds=[shared])
    home = enrolled_home(tmp_path / "second", hub, "tx-bridge-2", [PDQ_LIST, "second-pdq"])
    api = bridge.api(node_home=str(home), list_ids=[PDQ_LIST, "second-pdq"])
    first = await fetch(api, None)
    assert merged(first)[pdq_key(shared)] == HashhubSignalMetadata([PDQ_LIST, "second-pdq"])

    hub.publish(PDQ_LIST, removes=[shared])
    second = await fetch(api, first[-1].checkpoint)
    assert merged(second) == {pdq_key(shared): HashhubSignalMetadata(["second-pdq"])}

    hub.publish("second-pdq", removes=[shared])
    third = await fetch(api, second[-1].checkpoint)
    assert merged(third) == {pdq_key(shared): None}


async def test_a_list_no_longer_followed_is_withdrawn(bridge: Bridge) -> None:
    first = await fetch(bridge.api(), None)

    narrowed = await fetch(bridge.api(list_ids=[PDQ_LIST]), first[-1].checkpoint)

    assert merged(narrowed) == {md5_key(h): None for h in FIRST_MD5}
    assert set(narrowed[-1].checkpoint.lists) == {PDQ_LIST}


async def test_a_snapshot_resync_yields_the_exact_difference(hub: HubApp, bridge: Bridge) -> None:
    """Far behind (snapshot_lag 1): the state comes from a snapshot, diffed against the old."""
    api = bridge.api(snapshot_lag=1, list_ids=[MD5_LIST])
    first = await fetch(api, None)
    hub.publish(MD5_LIST, adds=[md5("v2")], removes=[FIRST_MD5[1]])
    hub.publish(MD5_LIST, adds=[md5("v3")], removes=[FIRST_MD5[2]])  # v4 is a snapshot
    hub.publish(MD5_LIST, adds=[md5("v4")], removes=[md5("v2")])

    second = await fetch(api, first[-1].checkpoint)

    assert merged(second) == {
        md5_key(md5("v3")): HashhubSignalMetadata([MD5_LIST]),
        md5_key(md5("v4")): HashhubSignalMetadata([MD5_LIST]),
        md5_key(FIRST_MD5[1]): None,
        md5_key(FIRST_MD5[2]): None,
    }
    assert versions(second[-1].checkpoint) == {MD5_LIST: 4}


@pytest.mark.parametrize("store", ["json", "pickle"])
async def test_the_checkpoint_round_trips_through_pytx_storage(
    hub: HubApp, bridge: Bridge, store: str
) -> None:
    """HMA and the pytx DBM store keep it as dataclass JSON, the pytx CLI as a pickle."""
    api = bridge.api()
    checkpoint = (await fetch(api, None))[-1].checkpoint
    if store == "json":
        text = dataclass_json.dataclass_dumps(checkpoint)
        kept = dataclass_json.dataclass_loads(text, HashhubCheckpoint)
    else:
        kept = pickle.loads(pickle.dumps(checkpoint))
    assert kept == checkpoint
    hub.publish(MD5_LIST, adds=[md5("after")])

    resumed = await fetch(api, kept)

    assert merged(resumed) == {md5_key(md5("after")): HashhubSignalMetadata([MD5_LIST])}


def test_the_manifest_loads_as_pytx_loads_extensions() -> None:
    manifest = ThreatExchangeExtensionManifest.load_from_module_name("hashhub_tx")

    assert manifest.apis == (HashhubSignalExchangeAPI,)
    assert HashhubSignalExchangeAPI.get_name() == "hashhub"
    assert manifest.signal_types == ()
    assert manifest.content_types == ()


# -- rejections: nothing yielded, the checkpoint does not move ------------------------------


async def test_a_tampered_body_raises_before_anything_is_yielded(
    hub: HubApp, bridge: Bridge
) -> None:
    checkpoint = (await fetch(bridge.api(), None))[-1].checkpoint
    kept = copy.deepcopy(checkpoint)
    hub.publish(MD5_LIST, adds=[md5("x")], removes=[FIRST_MD5[0]])
    front = await HostileServer.proxy(hub.url).on("/body/", Tamper(flip_byte)).start()
    try:
        api = bridge.api(hub_url=front.url)
        iterator = api.fetch_iter([PdqSignal, VideoMD5Signal], checkpoint)
        with pytest.raises(UpdateRejectedError, match="SHA-256"):
            await asyncio.to_thread(next, iterator)
        assert front.count("/body/") == 1, "the tampered body was fetched, and refused"
    finally:
        await front.close()
    assert checkpoint == kept, "the checkpoint handed in is not changed"

    honest = await fetch(bridge.api(), checkpoint)
    assert merged(honest) == {
        md5_key(md5("x")): HashhubSignalMetadata([MD5_LIST]),
        md5_key(FIRST_MD5[0]): None,
    }


async def test_a_tampered_body_from_a_mirror_is_passed_over_for_the_hub(
    hub: HubApp, bridge: Bridge
) -> None:
    checkpoint = (await fetch(bridge.api(), None))[-1].checkpoint
    hub.publish(MD5_LIST, adds=[md5("y")])
    mirror = await HostileServer.serving(hub.home).on("/body/", Tamper(flip_byte)).start()
    try:
        deltas = await fetch(bridge.api(mirrors=[mirror.url]), checkpoint)
        assert mirror.count("/body/") == 1
    finally:
        await mirror.close()
    assert merged(deltas) == {md5_key(md5("y")): HashhubSignalMetadata([MD5_LIST])}


async def test_a_frozen_hub_is_rejected(hub: HubApp, bridge: Bridge) -> None:
    """A validly signed checkpoint older than the policy's maximum age is a freeze attack."""
    checkpoint = (await fetch(bridge.api(), None))[-1].checkpoint
    hub.clock.advance(MAX_AGE + 60)

    with pytest.raises(UpdateRejectedError, match="FreezeError"):
        await fetch(bridge.api(), checkpoint)


def forge_list(checkpoint: HashhubCheckpoint, list_id: str, **changes: Any) -> HashhubCheckpoint:
    forged = copy.deepcopy(checkpoint)
    forged.lists[list_id] = dataclasses.replace(forged.lists[list_id], **changes)
    return forged


def with_trust(cp: HashhubCheckpoint, list_id: str, **fields: Any) -> HashhubCheckpoint:
    trust = json.loads(cp.lists[list_id].trust)
    trust.update(fields)
    return forge_list(cp, list_id, trust=json.dumps(trust))


@pytest.mark.parametrize(
    ("forgery", "message"),
    [
        (
            lambda cp: forge_list(
                cp,
                MD5_LIST,
                state=b64encode(b64decode(cp.lists[MD5_LIST].state, "") + b"\xff" * 16),
            ),
            "does not hash to its trusted digest",
        ),
        (
            # a well-formed record of a version 2 the hub never signed a note for
            lambda cp: with_trust(cp, MD5_LIST, version=2, compact=[b64encode(b"\x07" * 32)]),
            "version 2 and its log are not the ones the stored checkpoint note signs",
        ),
        (
            lambda cp: dataclasses.replace(cp, pinned_root_sha256="0" * 64),
            "another pinned root",
        ),
        (
            lambda cp: dataclasses.replace(cp, roots=cp.roots[:0]),
            "holds no root",
        ),
        (
            lambda cp: forge_list(cp, MD5_LIST, trust=cp.lists[PDQ_LIST].trust),
            "trust record of",
        ),
    ],
    ids=["extra-hash-in-state", "inflated-version", "other-pin", "no-roots", "swapped-trust"],
)
async def test_a_forged_checkpoint_is_refused(bridge: Bridge, forgery: Any, message: str) -> None:
    checkpoint = (await fetch(bridge.api(), None))[-1].checkpoint

    with pytest.raises(CheckpointError, match=message):
        await fetch(bridge.api(), forgery(checkpoint))


async def test_a_checkpoint_note_signed_by_no_trusted_key_is_refused(bridge: Bridge) -> None:
    """A note whose size and root hash fit the forged trust record, but not the hub's keys."""
    checkpoint = (await fetch(bridge.api(), None))[-1].checkpoint
    note = json.loads(checkpoint.lists[MD5_LIST].trust)["checkpoint"]
    lines = note.split("\n")
    signature_line = next(i for i, line in enumerate(lines) if line.startswith("— "))
    name, keyhash_sig = lines[signature_line][2:].split(" ", 1)
    raw = bytearray(b64decode(keyhash_sig, ""))
    raw[-1] ^= 1
    lines[signature_line] = f"— {name} {b64encode(bytes(raw))}"
    forged = with_trust(checkpoint, MD5_LIST, checkpoint="\n".join(lines))

    with pytest.raises(CheckpointError, match="signed by no trusted root"):
        await fetch(bridge.api(), forged)


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"hub_url": "file:///etc/passwd"}, "not an http"),
        ({"hub_url": "http://hub.test/?x=1"}, "query"),
        ({"mirrors": ["ftp://mirror.test"]}, "not an http"),
        ({"pinned_root_sha256": "ABC"}, "64 lowercase hex"),
        ({"list_ids": ["../etc"]}, "invalid list id"),
        ({"list_ids": ["a", "a"]}, "named twice"),
        ({"hub_url": ""}, "no hub URL"),
        ({"pinned_root_sha256": ""}, "no pinned root"),
        ({"node_home": "no-such-home"}, "holds no node.toml"),
    ],
)
async def test_a_bad_collab_config_is_refused_before_any_fetch(
    bridge: Bridge, fields: dict[str, Any], message: str
) -> None:
    api = HashhubSignalExchangeAPI.for_collab(bridge.collab(**fields))
    with pytest.raises(BridgeConfigError, match=message):
        await fetch(api, None)


async def test_a_list_the_hub_does_not_declare_is_a_config_error(bridge: Bridge) -> None:
    with pytest.raises(BridgeConfigError, match="declares no list 'nope'"):
        await fetch(bridge.api(list_ids=["nope"]), None)


async def test_a_list_of_an_unmatchable_type_is_a_config_error(bridge: Bridge) -> None:
    with pytest.raises(BridgeConfigError, match="phash"):
        await fetch(bridge.api(list_ids=[PHASH_LIST]), None)


async def test_a_list_the_consumer_cannot_match_is_not_followed(bridge: Bridge) -> None:
    deltas = await fetch(bridge.api(), None, signals=[VideoMD5Signal])

    assert {key[0] for key in merged(deltas)} == {VideoMD5Signal.get_name()}
    assert set(deltas[-1].checkpoint.lists) == {MD5_LIST}


async def test_without_a_node_home_a_private_list_cannot_be_read(bridge: Bridge) -> None:
    with pytest.raises(UpdateFailedError, match="401"):
        await fetch(bridge.api(node_home=None), None)


async def test_the_progress_time_never_goes_back(hub: HubApp, bridge: Bridge) -> None:
    """pytx's CLI refuses a checkpoint whose progress time is older than the last one."""
    first = await fetch(bridge.api(), None)
    hub.clock.advance(120)
    hub.publish(MD5_LIST, adds=[md5("later")])  # only the md5 list's time moves
    second = await fetch(bridge.api(), first[-1].checkpoint)
    newest = second[-1].checkpoint.get_progress_timestamp()
    assert newest is not None
    assert newest > (first[-1].checkpoint.get_progress_timestamp() or 0)

    narrowed = await fetch(bridge.api(list_ids=[PDQ_LIST]), second[-1].checkpoint)

    assert [d.checkpoint.get_progress_timestamp() for d in narrowed] == [newest] * len(narrowed)


def test_the_public_surface_is_what_was_meant() -> None:
    import hashhub_tx

    assert sorted(hashhub_tx.__all__) == sorted(
        [
            "API_NAME",
            "SIGNAL_TYPES",
            "TX_MANIFEST",
            "BridgeConfigError",
            "BridgeError",
            "CheckpointError",
            "HashhubCheckpoint",
            "HashhubCollabConfig",
            "HashhubSignalExchangeAPI",
            "HashhubSignalMetadata",
            "ListCheckpoint",
            "OpinionError",
            "SignedRoot",
            "UpdateFailedError",
            "UpdateRejectedError",
        ]
    )
    assert all(hasattr(hashhub_tx, name) for name in hashhub_tx.__all__)
    names = {kind: signal.get_name() for kind, signal in hashhub_tx.SIGNAL_TYPES.items()}
    assert names == {
        "pdq": "pdq",
        "md5": "video_md5",
        "sha256": "video_sha256",
        "vpdq": "vpdq",
    }
