"""The hostile-repository attacks against a hub following the simulator hub.

A hub that follows another hub as one of its nodes (``hub.following``) verifies the
upstream's lists with the node's own ``follow.Syncer``, but keeps what it verified
in tables of its own, carries the selected entries into its own lists and
publishes them. Here that hub (``DownstreamHub``, tests/conformance/hub_follower.py)
follows the simulator hub's entries list through its hostile front, and each case
bends the front into one attack of the node cases, one of each family: bytes
tampered at the front, forged, replayed and stale checkpoints, a rewritten history,
a root N+1 without its thresholds, endless data and bombs, another hub's tree.

Each run is ``follow_upstream`` (``hashhub upstream sync`` in one case, exit 1),
and each case asserts what the node case does: the outcome names the rejection,
the upstream's evidence records it (with the bytes where the node case checks
bytes), and nothing of the downstream changed — every row of every table of its
database (its published files, staged entries, the upstream's roots, headers and
records) and every file in its home, but ``upstream_lists.last_error``/
``last_failure`` and the new evidence rows (``HubDump``) — so nothing was carried
over or published. Once the front stops lying, the next run applies the upstream's
real versions and carries their entries over into a published version a node of
the downstream verifies.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from hub.core import utcnow
from hub.following import FollowReport
from protocol import SigningKey, body_path, checkpoint_path, header_path, root_path, sig_path
from tests.conformance.hub_follower import DOWN_LIST, DownstreamHub, HubDump
from tests.conformance.simulator import (
    ENTRIES,
    ENTRIES_FIRST,
    HUB_NAME,
    LyingLength,
    SimulatorHub,
    md5,
    publish_entries,
)
from tests.node.fixtures_sync import Clock, HubApp, fork_hub
from tests.node.hostile import Behaviour, Bomb, Endless, Replace, Tamper, flip_byte

CHECKPOINT = checkpoint_path(ENTRIES)
HEADER_2 = header_path(ENTRIES, 2)
NEW = md5("e-new")
"""The entry version 2 of ``ENTRIES`` adds."""
STRANGERS_ROOT = b"\x01" * 32


def exact(path: str) -> str:
    """A rule pattern for exactly ``path``."""
    return "^/" + path.replace(".", r"\.") + "$"


def fetched(sim: SimulatorHub, kind: str) -> list[str]:
    """Paths of ``ENTRIES`` of one kind ("delta", "body") the front was asked for."""
    return [path for _, path in sim.journal if path.startswith(f"/lists/{ENTRIES}/{kind}/")]


@pytest.fixture
async def down(tmp_path: Path, sim: SimulatorHub) -> DownstreamHub:
    """The downstream hub, following ``ENTRIES`` at version 1, not yet run."""
    sim.add_entries_list()
    return DownstreamHub.start(tmp_path / "regional", sim)


async def followed_then_published(sim: SimulatorHub, down: DownstreamHub) -> str:
    """Follow ``ENTRIES`` at v1 (carried over and published downstream), then publish v2
    upstream with ``NEW``; returns the path of v2's body."""
    first = await down.follow()
    assert first.problems == [], first.problems
    assert [(o.status, o.to_version) for o in first.outcomes] == [("updated", 1)]
    assert down.held() == set(ENTRIES_FIRST)
    assert publish_entries(sim.origin, [NEW]) == 2
    sim.journal.clear()
    return body_path(ENTRIES, json.loads(sim.file(HEADER_2))["body"]["sha256"])


def refused(report: FollowReport, status: str, version: int) -> str:
    """Assert the run refused ``ENTRIES`` at ``version`` with ``status``, said so in its
    problems, and carried, published and acknowledged nothing; returns the error."""
    (outcome,) = report.outcomes
    assert (outcome.list_id, outcome.status) == (ENTRIES, status), outcome
    assert (outcome.from_version, outcome.to_version) == (version, version)
    assert outcome.error
    assert report.problems == [f"{HUB_NAME}/{ENTRIES}: {status}: {outcome.error}"]
    assert report.carried is not None
    assert (report.carried.added, report.carried.lists) == ([], set())
    assert (report.published, report.acked) == ([], [])
    return outcome.error


def unchanged(
    down: DownstreamHub, before: HubDump, held: set[bytes], *, new_evidence: int = 1
) -> list[dict[str, object]]:
    """Assert nothing of the downstream changed but the failure's record (``HubDump``)
    and it still publishes ``held``; returns the new evidence rows."""
    after = down.dump()
    added = after.unchanged_since(before, new_evidence=new_evidence)
    assert after.upstream_list(ENTRIES)["last_error"], "the failure is on record"
    assert after.upstream_list(ENTRIES)["last_failure"]
    assert (after.tables["staged"], after.tables["entry_pending"]) == ((), ()), "nothing staged"
    assert down.held() == held
    return added


async def recovers(
    sim: SimulatorHub, down: DownstreamHub, version: int, held: set[bytes], added: int = 1
) -> None:
    """Once the front stops lying, the next run applies the upstream's real ``version``,
    carries its ``added`` new entries over and publishes them: the downstream then
    publishes ``held``."""
    sim.front.behave()
    report = await down.follow()
    assert report.problems == [], report.problems
    (outcome,) = report.outcomes
    assert (outcome.status, outcome.to_version) == ("updated", version), outcome
    assert report.carried is not None
    assert len(report.carried.added) == added
    assert [(r.list, r.adds) for r in report.published] == [(DOWN_LIST, added)]
    assert len(report.acked) == 1, "the upstream hears that its version was applied"
    assert down.upstream_version() == version
    assert down.held() == held
    assert down.dump().upstream_list(ENTRIES)["last_error"] is None


async def test_the_dump_sees_what_an_honest_run_changes(
    sim: SimulatorHub, down: DownstreamHub
) -> None:
    """The control: an update that verifies is kept, carried over and published, and
    ``HubDump`` names the tables that moved, so "nothing changed" above can fail."""
    await followed_then_published(sim, down)
    before = down.dump()

    report = await down.follow()

    assert report.problems == []
    with pytest.raises(AssertionError, match="tables changed") as caught:
        down.dump().unchanged_since(before, new_evidence=0)
    for table in ("upstream_headers", "upstream_records", "upstream_lists", "files"):
        assert f"'{table}'" in str(caught.value), caught.value
    assert down.held() == {*ENTRIES_FIRST, NEW}


# -- bytes tampered at the front ------------------------------------------------------------


_BASE64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def next_base64_digit(data: bytes, index: int) -> bytes:
    """``data`` with the base64 digit at ``index`` (inside a whole group of four) made
    the next digit of the alphabet: still canonical base64, so the note parses and its
    signature fails, whatever the signature's bytes were (flipping a bit can make a
    character that is no base64 digit at all: a malformed note instead)."""
    out = bytearray(data)
    out[index] = _BASE64[(_BASE64.index(out[index]) + 1) % 64]
    return bytes(out)


@pytest.mark.parametrize("target", ["checkpoint", "header", "signature", "body"])
async def test_bytes_tampered_at_the_front_are_rejected_and_the_real_versions_follow(
    sim: SimulatorHub, down: DownstreamHub, target: str
) -> None:
    body = await followed_then_published(sim, down)
    served = sim.file(CHECKPOINT)
    bends: dict[str, tuple[str, Behaviour]] = {
        # A byte of the timestamp co-signature's base64: the note parses, and fails.
        "checkpoint": (CHECKPOINT, Tamper(lambda data: next_base64_digit(data, -10))),
        "header": (HEADER_2, Tamper(flip_byte)),
        "signature": (sig_path(HEADER_2), Replace(sim.file(sig_path(header_path(ENTRIES, 1))))),
        "body": (body, Tamper(flip_byte)),
    }
    path, behaviour = bends[target]
    sim.front.on(exact(path), behaviour)
    before = down.dump()

    report = await down.follow()

    error = refused(report, "rejected", 1)
    (evidence,) = unchanged(down, before, set(ENTRIES_FIRST))
    assert (evidence["upstream"], evidence["list_id"]) == (HUB_NAME, ENTRIES)
    kind, _, said = str(evidence["message"]).partition(": ")
    assert (kind, report.outcomes[0].kind) == (evidence["kind"], evidence["kind"])
    assert error.endswith(said), "the evidence says what the run reported"
    if target == "checkpoint":
        assert evidence["kind"] == "SignatureError"
        assert evidence["data"] == next_base64_digit(served, -10), "the tampered note is kept"
        assert fetched(sim, "delta") == []
    else:
        assert evidence["data"] == served, "the note that promised the bad file is kept"
        assert evidence["kind"] == ("ConsistencyError" if target == "body" else "SignatureError")
    if target != "body":
        assert fetched(sim, "body") == [], "nothing past a bad checkpoint or header"
    assert sim.asked(path) == ["hub"], "a source's bad bytes are not asked for twice"

    await recovers(sim, down, 2, {*ENTRIES_FIRST, NEW})


# -- forged, replayed and stale checkpoints --------------------------------------------------


async def test_a_checkpoint_signed_by_keys_not_the_hubs_is_rejected_by_the_command_line(
    sim: SimulatorHub, down: DownstreamHub
) -> None:
    await followed_then_published(sim, down)
    forged = sim.checkpoint(
        ENTRIES,
        50,
        STRANGERS_ROOT,
        at=utcnow(),
        checkpoint_keys=[SigningKey.generate()],
        timestamp_keys=[SigningKey.generate()],
    )
    sim.front.on(exact(CHECKPOINT), Replace(forged))
    before = down.dump()

    run = await down.sync_cli()

    assert run.exit_code == 1, run.output
    assert f"{HUB_NAME}/{ENTRIES}: rejected v1 -> v1" in run.stdout
    assert f"{HUB_NAME}: carried over +0 ~0 -0" in run.stdout
    assert "published" not in run.stdout
    assert f"problem: {HUB_NAME}/{ENTRIES}: rejected: signatures do not verify" in run.stderr
    (evidence,) = unchanged(down, before, set(ENTRIES_FIRST))
    assert (evidence["kind"], evidence["data"]) == ("SignatureError", forged)
    assert fetched(sim, "delta") == []
    assert fetched(sim, "body") == []

    await recovers(sim, down, 2, {*ENTRIES_FIRST, NEW})


async def test_an_older_checkpoint_replayed_is_a_rollback(
    sim: SimulatorHub, down: DownstreamHub
) -> None:
    old = sim.file(CHECKPOINT)
    await followed_then_published(sim, down)
    assert (await down.follow()).problems == []  # v2 applied
    sim.origin.clock.advance(5)
    third = md5("e-third")
    assert publish_entries(sim.origin, [third]) == 3
    sim.front.on(exact(CHECKPOINT), Replace(old))
    sim.journal.clear()
    before = down.dump()

    report = await down.follow()

    error = refused(report, "rejected", 2)
    assert error.startswith("older than what this node holds (rollback)"), error
    (evidence,) = unchanged(down, before, {*ENTRIES_FIRST, NEW})
    assert (evidence["kind"], evidence["data"]) == ("RollbackError", old)
    assert fetched(sim, "delta") == []

    await recovers(sim, down, 3, {*ENTRIES_FIRST, NEW, third})


async def test_a_stale_checkpoint_replayed_is_a_freeze(
    tmp_path: Path, sim_two_hours_ago: SimulatorHub
) -> None:
    sim = sim_two_hours_ago
    sim.add_entries_list()
    down = DownstreamHub.start(tmp_path / "regional", sim)
    then: datetime = sim.origin.clock()
    first = await down.follow(now=then)  # the downstream followed when v1 was fresh
    assert first.problems == [], first.problems
    assert down.held() == set(ENTRIES_FIRST)
    stale = sim.file(CHECKPOINT)
    sim.origin.clock.t = utcnow()
    sim.origin.refresh()  # the real hub keeps re-signing; the attacker replays the old note
    sim.front.on(exact(CHECKPOINT), Replace(stale))
    sim.journal.clear()
    before = down.dump()

    report = await down.follow()

    error = refused(report, "rejected", 1)
    assert error.startswith("too old to trust (freeze)"), error
    assert "older than the maximum age" in error
    (evidence,) = unchanged(down, before, set(ENTRIES_FIRST))
    assert (evidence["kind"], evidence["data"]) == ("FreezeError", stale)
    assert fetched(sim, "delta") == []

    assert publish_entries(sim.origin, [NEW]) == 2
    await recovers(sim, down, 2, {*ENTRIES_FIRST, NEW})


# -- a rewritten history -------------------------------------------------------------------


async def test_a_rewritten_header_at_the_trusted_size_is_kept_as_equivocation(
    tmp_path: Path, sim: SimulatorHub, down: DownstreamHub
) -> None:
    assert (await down.follow()).problems == []
    fork = await fork_hub(sim.origin, tmp_path / "fork")  # the hub's keys and its v1
    assert publish_entries(sim.origin, [NEW]) == 2
    assert publish_entries(fork, [md5("e-rewritten")]) == 2
    assert (await down.follow()).problems == []  # v2 as the hub first published it
    trusted = sim.file(CHECKPOINT)
    assert fork.file(HEADER_2) != sim.file(HEADER_2)
    source = sim.front.source
    sim.serve_from(fork.home)
    sim.journal.clear()
    before = down.dump()

    report = await down.follow()

    error = refused(report, "rejected", 2)
    assert error.startswith("two different histories signed (equivocation): "), error
    (evidence,) = unchanged(down, before, {*ENTRIES_FIRST, NEW})
    assert evidence["kind"] == "EquivocationError"
    assert evidence["data"] == fork.file(CHECKPOINT), "the note presented"
    assert evidence["other"] == trusted, "the note trusted"
    assert fetched(sim, "delta") == [], "the checkpoint alone convicts: no header is fetched"
    assert fetched(sim, "body") == []

    sim.front.source = source  # the real hub again
    third = md5("e-third")
    assert publish_entries(sim.origin, [third]) == 3
    await recovers(sim, down, 3, {*ENTRIES_FIRST, NEW, third})


# -- root rotations without their thresholds ------------------------------------------------


@pytest.mark.parametrize(
    ("case", "missed"),
    [
        ("threshold-2-to-1-signed-by-one-key", "old"),
        ("all-keys-rotated-signed-by-one-new-key", "new"),
    ],
)
async def test_a_root_without_the_old_or_the_new_threshold_is_rejected(
    sim: SimulatorHub, down: DownstreamHub, case: str, missed: str
) -> None:
    await followed_then_published(sim, down)
    current = sim.root().version
    old = sim.signers("root")
    if case == "threshold-2-to-1-signed-by-one-key":
        files = sim.next_root(new_root_keys=old, threshold=1, sign_with=[old[2]])
    else:
        new = [SigningKey.generate() for _ in range(3)]
        files = sim.next_root(new_root_keys=new, threshold=2, sign_with=[old[0], old[1], new[0]])
    for path, data in files.items():
        sim.front.on(exact(path), Replace(data))
    before = down.dump()

    report = await down.follow()

    error = refused(report, "rejected", 1)
    assert error.startswith("signatures do not verify: "), error
    assert f"root v{current + 1}" in error
    role_of = current if missed == "old" else current + 1
    assert f"root role of root v{role_of}" in error, error
    (evidence,) = unchanged(down, before, set(ENTRIES_FIRST))
    assert evidence["kind"] == "SignatureError"
    bad = [f"/{root_path(current + 1)}", f"/{sig_path(root_path(current + 1))}"]
    chain = [f"/{p}" for v in range(1, current + 1) for p in (root_path(v), sig_path(root_path(v)))]
    # The loop check reads the root chain first (hub.upstream_graph) and stops at the
    # bad root too; the follower, holding the chain, asks only for the bad root.
    assert sim.paths() == [*chain, *bad, *bad], (
        "the walk stops at the bad root: no checkpoint, header or body is fetched"
    )
    assert any("SignatureError" in unread for unread in report.unchecked), report.unchecked

    await recovers(sim, down, 2, {*ENTRIES_FIRST, NEW})


# -- endless data and bombs -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "behaviour"),
    [
        ("body", Endless()),
        ("body", LyingLength(+100)),
        ("checkpoint", Bomb(20_000_000)),
    ],
    ids=["body-endless", "body-past-the-signed-length", "checkpoint-gzip-bomb"],
)
async def test_endless_data_and_bombs_are_cut_at_the_cap(
    sim: SimulatorHub, down: DownstreamHub, target: str, behaviour: Behaviour | LyingLength
) -> None:
    body = await followed_then_published(sim, down)
    path = {"checkpoint": CHECKPOINT, "body": body}[target]
    if isinstance(behaviour, LyingLength):
        sim.front.lie(exact(path), behaviour)
    else:
        sim.front.on(exact(path), behaviour)
    before = down.dump()

    report = await down.follow()

    error = refused(report, "rejected", 1)
    assert "cap" in error or error.startswith("larger than allowed: "), error
    (evidence,) = unchanged(down, before, set(ENTRIES_FIRST))
    assert (evidence["list_id"], evidence["kind"]) == (ENTRIES, "LimitError")
    assert sim.front.streamed < 32 * 1024 * 1024, sim.front.streamed
    assert sim.asked(path) == ["hub"]
    if target == "checkpoint":
        assert fetched(sim, "delta") == []

    await recovers(sim, down, 2, {*ENTRIES_FIRST, NEW})


# -- another hub's tree ----------------------------------------------------------------------


async def test_another_hubs_tree_at_the_front_is_rejected(
    tmp_path: Path, sim: SimulatorHub, down: DownstreamHub
) -> None:
    """A hub of the same name and lists, with keys of its own, served at the front."""
    await followed_then_published(sim, down)
    other = HubApp.init(tmp_path / "other", Clock())
    with other.opened() as hub:
        hub.roots.create_list(ENTRIES, "md5", label="entries", list_format="entries")
    publish_entries(other, [md5("e-other-1")])
    publish_entries(other, [md5("e-other-2")])
    source = sim.front.source
    sim.serve_from(other.home)
    sim.journal.clear()
    before = down.dump()

    report = await down.follow()

    error = refused(report, "rejected", 1)
    assert error.startswith("signatures do not verify"), error
    (evidence,) = unchanged(down, before, set(ENTRIES_FIRST))
    assert (evidence["kind"], evidence["data"]) == ("SignatureError", other.file(CHECKPOINT))
    assert fetched(sim, "delta") == []

    sim.front.source = source
    await recovers(sim, down, 2, {*ENTRIES_FIRST, NEW})
