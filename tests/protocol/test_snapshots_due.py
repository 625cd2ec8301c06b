"""Which root decides that a snapshot is due (PROTOCOL.md §8), for the hub and verifiers.

The root a version's header names: the hub signs the version under its newest root
and follows that root's ``snapshot_every``, so a verifier judging by the same root
(``ListUpdate.snapshots_due``) expects exactly the snapshots the hub wrote, before
and after a root that changes the interval.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from protocol import ConsistencyError, ListSpec, ListTrust, MissingFileError, snapshot_path
from tests.protocol.simulator import LIST, T0, HubSimulator, Verifier


def test_a_snapshot_is_due_by_the_root_its_header_names_across_a_change_of_interval() -> None:
    sim = HubSimulator(lists={LIST: "md5"}, snapshot_every=2)
    sim.publish_steps(2)  # v1, v2 under root v1: snapshot_every 2
    # Root v2 declares the list with snapshot_every 3 (template for rotate's copy).
    sim.root = replace(sim.root, lists={LIST: replace(sim.root.lists[LIST], snapshot_every=3)})
    sim.rotate()
    sim.publish_steps(4)  # v3 … v6 under root v2: snapshot_every 3
    written = [v for v in range(1, 7) if snapshot_path(LIST, v) in sim.files]
    assert written == [2, 3, 6], "the hub follows the root it signs each version under"

    now = T0 + timedelta(hours=8)
    hub = Verifier(sim.files).open_hub(now)
    update = hub.begin_update(ListTrust(LIST), sim.files[f"lists/{LIST}/checkpoint"])
    for version in range(1, update.target + 1):
        path = f"lists/{LIST}/delta/{version}.json"
        update.add_header(sim.files[path], sim.files[path + ".sig"])

    assert update.snapshots_due() == written
    assert [update.snapshot_due(v) for v in (2, 4)] == [True, False], (
        "v4 is a multiple of root v1's 2, but its header names root v2"
    )
    for version in written:
        update.add_snapshot(version, sim.files[snapshot_path(LIST, version)])


def test_the_rule_is_every_nth_version_of_the_declaration() -> None:
    """``ListSpec.snapshot_due`` is the one rule: ``Publisher`` writes by it and
    ``ListUpdate.snapshot_due`` checks by it (with the spec of the header's root)."""
    spec = ListSpec(LIST, "md5", 0, snapshot_every=3)
    assert [v for v in range(1, 10) if spec.snapshot_due(v)] == [3, 6, 9]
    assert [v for v in range(1, 4) if replace(spec, snapshot_every=1).snapshot_due(v)] == [1, 2, 3]


def test_snapshots_due_needs_the_whole_log_first() -> None:
    """Due snapshots are read off verified headers only (§13.4: nothing before step 14)."""
    sim = HubSimulator(snapshot_every=2)
    sim.publish_steps(2)
    hub = Verifier(sim.files).open_hub(T0 + timedelta(hours=3))
    update = hub.begin_update(ListTrust(LIST), sim.files[f"lists/{LIST}/checkpoint"])
    path = f"lists/{LIST}/delta/1.json"
    update.add_header(sim.files[path], sim.files[path + ".sig"])
    with pytest.raises(ConsistencyError, match="must verify before data is used"):
        update.snapshots_due()


def test_the_missing_file_error_names_the_file() -> None:
    error = MissingFileError("lists/x/delta/2.json", "the checkpoint of list x has size 3")
    assert error.path == "lists/x/delta/2.json"
    assert str(error) == (
        "lists/x/delta/2.json: found at no source, though the checkpoint of list x has size 3"
    )
