"""The trust rules on an honest hub: a node's updates succeed and end where the hub is.

Each test publishes with the simulated hub and updates a node through ``TrustedHub`` /
``ListUpdate`` only (``tests/protocol/simulator.py``). The hostile cases are in
``test_threats.py``.
"""

from __future__ import annotations

import json
from datetime import timedelta

from protocol import ListTrust, body_path, checkpoint_path, header_path
from tests.protocol.simulator import LIST, T0, HubSimulator, Verifier


def _drop_versions(sim: HubSimulator, versions: range, *, headers: bool) -> None:
    """Stop serving the bodies (and optionally the headers) of ``versions``."""
    for version in versions:
        header = json.loads(sim.files[header_path(LIST, version)])
        sim.drop(body_path(LIST, header["body"]["sha256"]))
        if headers:
            sim.drop(header_path(LIST, version))


def test_bootstrap_from_empty_applies_every_delta(sim: HubSimulator, node: Verifier) -> None:
    sim.publish_steps(4)
    state, trust = node.update(sim.now)
    head = sim.head()
    assert state == head.state
    assert trust.version == 4
    assert trust.state == head.state.digest()
    assert trust.compact.root() == head.compact.root()
    assert trust.checkpoint == sim.files[checkpoint_path(LIST)]
    assert trust.checkpoint_time == sim.now
    assert (node.state, node.trust) == (state, trust)


def test_bootstrap_from_newest_snapshot_needs_no_earlier_body(sim: HubSimulator) -> None:
    sim.publish_steps(7)  # snapshot_every=3: snapshots at 3 and 6
    _drop_versions(sim, range(1, 7), headers=False)
    node = Verifier(sim.files)
    state, trust = node.update(sim.now, use_snapshot=True)
    assert state == sim.head().state
    assert trust.version == 7
    assert trust.state == sim.head().state.digest()


def test_incremental_update_reads_only_what_follows_the_trusted_version(
    sim: HubSimulator, node: Verifier
) -> None:
    sim.publish_steps(2)
    node.update(sim.now)
    sim.publish_steps(3)
    _drop_versions(sim, range(1, 3), headers=True)
    state, trust = node.update(sim.now)
    assert state == sim.head().state
    assert trust.version == 5
    assert trust.compact.root() == sim.head().compact.root()


def test_noop_update_when_checkpoint_is_current_only_refreshes_its_time(
    sim: HubSimulator, node: Verifier
) -> None:
    sim.publish_steps(2)
    before_state, before = node.update(sim.now)
    later = sim.now + timedelta(hours=5)
    refreshed = sim.refresh(at=later)
    state, trust = node.update(later)
    assert state == before_state
    assert trust.checkpoint == refreshed
    assert trust.checkpoint_time == later
    changed = {"checkpoint", "checkpoint_time"}
    assert {k: v for k, v in trust.to_dict().items() if k not in changed} == {
        k: v for k, v in before.to_dict().items() if k not in changed
    }


def test_list_trust_round_trips_through_its_dict(sim: HubSimulator, node: Verifier) -> None:
    assert ListTrust.from_dict(ListTrust(LIST).to_dict()) == ListTrust(LIST)
    sim.publish_steps(5)
    _, trust = node.update(sim.now)
    restored = ListTrust.from_dict(json.loads(json.dumps(trust.to_dict())))
    assert restored == trust
    assert restored.to_dict() == trust.to_dict()


def test_headers_signed_under_an_older_root_verify_after_a_delta_key_rotation(
    sim: HubSimulator,
) -> None:
    sim.publish_steps(3)
    early = Verifier(sim.files)
    early.update(sim.now)
    sim.rotate(keys={"delta": sim.new_keys("delta")})
    sim.publish_steps(2)

    fresh = Verifier(sim.files)  # from empty: v1–3 under root 1, v4–5 under root 2
    state, trust = fresh.update(sim.now)
    assert state == sim.head().state
    assert trust.root_version == 2
    assert len(fresh.roots) == 2

    early.update(sim.now)  # caught up across the rotation from v3
    assert early.kept() == fresh.kept()


def test_update_from_trusted_v3_to_v7_equals_replay_from_empty(
    sim: HubSimulator, node: Verifier
) -> None:
    sim.publish_steps(3)
    node.update(sim.now)
    sim.publish_steps(4)
    node.update(sim.now)
    replay = Verifier(sim.files)
    replay.update(sim.now)
    assert node.trust.version == 7
    assert node.kept() == replay.kept()


def test_full_check_of_every_version_accepts_an_honest_history(
    sim: HubSimulator, node: Verifier
) -> None:
    sim.publish_steps(6)
    state, trust = node.update(sim.now, check_every_version=True)
    assert trust.state == state.digest() == sim.head().state.digest()


def test_expired_intermediate_root_is_walked_to_a_fresh_one() -> None:
    sim = HubSimulator(expires=T0 + timedelta(hours=2))
    sim.publish_steps(3)  # at T0+1h..3h: root 1 has expired by the last one
    sim.rotate(expires=T0 + timedelta(days=30))
    node = Verifier(sim.files)
    _, trust = node.update(sim.now)
    assert trust.version == 3
    assert len(node.roots) == 2
