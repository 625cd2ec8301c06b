"""Rules added after review: a rotation retires the old delta key for good, a header is
judged by its own root's policy, and a rejected header changes nothing in an update."""

from __future__ import annotations

from dataclasses import replace

import pytest

from protocol import (
    ConsistencyError,
    LimitError,
    ListTrust,
    Policy,
    RollbackError,
    SignatureError,
    checkpoint_path,
    header_path,
    sig_path,
)
from tests.protocol.simulator import LIST, HubSimulator, Verifier, md5


def test_rotation_sets_first_version_so_the_retired_delta_key_signs_nothing_new(
    sim: HubSimulator, node: Verifier
) -> None:
    sim.publish_steps(3)
    node.update(sim.now)
    retired = sim.keys["delta"]
    root2 = sim.rotate(keys={"delta": sim.new_keys("delta")})
    assert root2.lists[LIST].first_version == 4
    sim.publish_forged(adds=[md5("planted")], root_version=1, sign_with=retired)
    kept = node.kept()
    with pytest.raises(SignatureError, match="requires versions ≥ 4"):
        node.update(sim.now)
    assert node.kept() == kept


def test_headers_before_first_version_still_verify_under_the_old_root(
    sim: HubSimulator, node: Verifier
) -> None:
    sim.publish_steps(3)
    sim.rotate(keys={"delta": sim.new_keys("delta")})
    sim.publish_steps(2)
    _, trust = node.update(sim.now)
    assert trust.version == 5
    assert trust.root_version == 2


def test_root_that_lowers_first_version_is_rejected(sim: HubSimulator, node: Verifier) -> None:
    sim.publish_steps(2)
    node.update(sim.now)
    assert sim.rotate().lists[LIST].first_version == 3
    sim.rotate()
    sim.rewrite_json(
        "root/3.json",
        lambda root: root["lists"][LIST].update(first_version=1),
        keys=sim.keys["root"],
    )
    kept = node.kept()
    with pytest.raises(RollbackError, match="lowers first_version of list"):
        node.update(sim.now)
    assert node.kept() == kept


def test_body_cap_of_the_root_a_header_names_applies_not_the_newest(
    sim: HubSimulator, node: Verifier
) -> None:
    sim.publish_steps(2)
    small = replace(sim.root.policy, max_body_bytes=40)
    sim.rotate(policy=small)
    # Headers 1 and 2 (bodies > 40 bytes) were published under root 1, whose cap allows them.
    _, trust = node.update(sim.now)
    assert trust.version == 2
    sim.publish_steps(1)
    kept = node.kept()
    with pytest.raises(LimitError, match="exceeds the policy cap of 40"):
        node.update(sim.now)
    assert node.kept() == kept


def test_header_that_fails_the_merkle_check_leaves_the_update_unchanged(
    sim: HubSimulator,
) -> None:
    sim.publish_steps(2)
    sim.files[checkpoint_path(LIST)] = sim.checkpoint_for(LIST, size=2, root_hash=b"\x07" * 32)
    node = Verifier(sim.files)
    hub = node.open_hub(sim.now)
    update = hub.begin_update(ListTrust(LIST), sim.files[checkpoint_path(LIST)])
    update.add_header(sim.files[header_path(LIST, 1)], sim.files[sig_path(header_path(LIST, 1))])
    with pytest.raises(ConsistencyError, match="do not reproduce"):
        update.add_header(
            sim.files[header_path(LIST, 2)], sim.files[sig_path(header_path(LIST, 2))]
        )
    assert [h.version for h in update.headers] == [1]
    assert update.next_version == 2
    assert not update.log_verified


def test_policy_defaults_are_what_protocol_md_documents() -> None:
    policy = Policy()
    assert (policy.max_checkpoint_age, policy.max_clock_skew, policy.min_poll_interval) == (
        86_400,
        300,
        60,
    )
    assert policy.max_body_bytes == 64 * 1024 * 1024
