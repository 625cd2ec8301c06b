"""The node's sync (docs/design.md §4.2) against the real hub app, and against hostile servers.

Every test runs the real hub app on loopback and a real node (real keys, real
SQLite). Hostile sources are real aiohttp servers (``tests/node/hostile.py``)
serving the hub's published tree and misbehaving where told. The rule that
runs through all of it (docs/design.md §6): a rejected or failed update leaves the
store exactly as it was — same digest, same trust row, same state bytes,
same indexes — and keeps evidence where there is some; ``StoreImage`` is the
one picture compared before and after.
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from follow import ListOutcome
from node.service import Node, run_sync
from protocol import Limits, checkpoint_path, header_path, snapshot_path
from protocol.checkpoint import SignedCheckpoint
from protocol.merkle import EMPTY_ROOT
from tests.node.fixtures_sync import (
    Clock,
    HubApp,
    StoreImage,
    evidence_rows,
    fork_hub,
    make_node,
    md5,
    raw_db,
    state_of,
    statuses,
    sync_once,
)
from tests.node.hostile import (
    Behaviour,
    Bomb,
    Drop,
    Endless,
    HostileServer,
    Replace,
    Status,
    Tamper,
    Trickle,
    flip_byte,
)

LIST = "tid-md5"
FIRST = [md5(i) for i in range(5)]
FIRST_SORTED = sorted(FIRST)
MAX_AGE = 3600


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubApp]:
    """A hub with ``LIST`` (md5, a snapshot every 2 versions) published at version 1."""
    app = HubApp.init(tmp_path / "hub", Clock(), max_checkpoint_age=MAX_AGE)
    app.create_list(LIST, "md5", snapshot_every=2)
    app.publish(LIST, adds=FIRST)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


@pytest.fixture
def node(tmp_path: Path, hub: HubApp) -> Iterator[Node]:
    made = make_node(tmp_path / "node", hub, [LIST])
    try:
        yield made
    finally:
        made.close()


class Servers:
    """Hostile servers started by a test, all closed at its end."""

    def __init__(self) -> None:
        self.started: list[HostileServer] = []

    async def serving(self, home: Path) -> HostileServer:
        server = await HostileServer.serving(home).start()
        self.started.append(server)
        return server


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    made = Servers()
    try:
        yield made
    finally:
        for server in made.started:
            await server.close()


def hub_paths(requested: list[str], base: str) -> list[str]:
    """The paths of ``requested`` URLs that went to ``base``."""
    return [url[len(base) + 1 :] for url in requested if url.startswith(base + "/")]


# -- the normal paths ----------------------------------------------------------------------


async def test_bootstrap_from_snapshot_and_full_replay_give_the_same_state(
    tmp_path: Path, hub: HubApp, node: Node, servers: Servers
) -> None:
    for i in range(2, 6):  # v2 … v5; snapshots at v2 and v4
        hub.publish(LIST, adds=[md5(f"v{i}")], removes=[md5(i - 2)])
    no_snapshots = (await servers.serving(hub.home)).on("/snapshot/", Status(404))
    replayer = make_node(tmp_path / "replayer", hub, [LIST], node_id="platform-b")

    snapped, by_snapshot = await sync_once(node)
    replayed, by_replay = await sync_once(replayer, hub_url=no_snapshots.url)

    assert statuses(snapped) == statuses(replayed) == {LIST: ("updated", 0, 5)}
    assert snapped[0].rebuilt
    assert not replayed[0].rebuilt
    state = state_of(node, LIST)
    listed = [state[i : i + 16] for i in range(0, len(state), 16)]
    assert snapped[0].added == replayed[0].added == listed, "all of it, in order"
    assert snapped[0].removed == replayed[0].removed == []
    fetched = hub_paths(by_snapshot.requested, hub.url)
    assert snapshot_path(LIST, 4) in fetched
    bodies = [p for p in fetched if "/body/" in p]
    assert len(bodies) == 1, "only v5's body is needed after the v4 snapshot"
    replay_paths = hub_paths(by_replay.requested, no_snapshots.url)
    assert len([p for p in replay_paths if "/body/" in p]) == 5
    assert state_of(node, LIST) == state_of(replayer, LIST)
    assert StoreImage.of(node).trust(LIST) == StoreImage.of(replayer).trust(LIST)
    assert node.store.verify()[0][1]
    assert replayer.store.verify()[0][1]
    queries = [md5(3), md5(4), md5("v2"), md5("v5")]  # md5(0) … md5(3) were removed
    for follower in (node, replayer):
        matched = [m.hash for m in follower.matching.match_hashes({"md5": queries})]
        assert matched == queries[1:]
    replayer.close()


async def run_sync_fresh(node: Node) -> list[ListOutcome]:
    """One update through ``node.service.run_sync`` itself, in a fresh client session."""
    async with aiohttp.ClientSession() as session:
        return await run_sync(node, session)


async def test_incremental_sync_fetches_only_the_new_versions(hub: HubApp, node: Node) -> None:
    assert statuses(await run_sync_fresh(node)) == {LIST: ("updated", 0, 1)}
    hub.publish(LIST, adds=[md5("a"), md5("b")], removes=[md5(0)])
    hub.publish(LIST, adds=[md5("c")])

    outcomes, fetcher = await sync_once(node)

    (outcome,) = outcomes
    assert (outcome.status, outcome.from_version, outcome.to_version) == ("updated", 1, 3)
    assert not outcome.rebuilt
    assert set(outcome.added) == {md5("a"), md5("b"), md5("c")}
    assert outcome.removed == [md5(0)]
    paths = hub_paths(fetcher.requested, hub.url)
    assert [p for p in paths if "/delta/" in p] == [
        header_path(LIST, 2),
        header_path(LIST, 2) + ".sig",
        header_path(LIST, 3),
        header_path(LIST, 3) + ".sig",
    ]
    assert len([p for p in paths if "/body/" in p]) == 2
    assert not [p for p in paths if "/snapshot/" in p]
    matched = {m.hash for m in node.matching.match_hashes({"md5": [md5("c"), md5(0), md5(1)]})}
    assert matched == {md5("c"), md5(1)}
    assert node.store.verify()[0][1]


async def test_current_checkpoint_only_refreshes_the_trust_time(hub: HubApp, node: Node) -> None:
    await sync_once(node)
    before = StoreImage.of(node)
    hub.clock.advance(600)
    hub.refresh()

    outcomes, fetcher = await sync_once(node)

    assert statuses(outcomes) == {LIST: ("current", 1, 1)}
    after = StoreImage.of(node)
    changed = {
        key for key in before.trust(LIST) if before.trust(LIST)[key] != after.trust(LIST)[key]
    }
    assert changed == {"checkpoint", "checkpoint_time"}
    old_row, new_row = dict(before.lists[0]), dict(after.lists[0])
    for column in ("state", "count", "sha256", "applied"):
        assert old_row[column] == new_row[column], column
    assert new_row["last_success"] != old_row["last_success"]
    paths = hub_paths(fetcher.requested, hub.url)
    assert checkpoint_path(LIST) in paths
    assert not [p for p in paths if "/delta/" in p or "/body/" in p or "/snapshot/" in p]


# -- mirrors -------------------------------------------------------------------------------


async def test_immutable_files_come_from_the_mirror_first(
    tmp_path: Path, hub: HubApp, servers: Servers
) -> None:
    hub.publish(LIST, adds=[md5("x")])
    mirror = await servers.serving(hub.home)
    node = make_node(tmp_path / "mirrored", hub, [LIST], mirrors=[mirror.url])

    outcomes, fetcher = await sync_once(node)

    assert statuses(outcomes) == {LIST: ("updated", 0, 2)}
    from_hub = hub_paths(fetcher.requested, hub.url)
    from_mirror = hub_paths(fetcher.requested, mirror.url)
    assert from_hub == ["root/3.json", checkpoint_path(LIST)], "root/3 only after a mirror 404"
    assert snapshot_path(LIST, 2) in from_mirror
    assert header_path(LIST, 2) in from_mirror
    assert checkpoint_path(LIST) not in from_mirror
    first = fetcher.requested[0]
    assert first.startswith(mirror.url), "the first file, root v1, is asked of the mirror"
    node.close()


@pytest.mark.parametrize(
    "failure",
    [Status(404), Status(500), Drop()],
    ids=["mirror-404", "mirror-500", "mirror-drops-connection"],
)
async def test_hub_is_the_fallback_when_the_mirror_fails(
    tmp_path: Path, hub: HubApp, servers: Servers, failure: Behaviour
) -> None:
    hub.publish(LIST, adds=[md5("x")])
    hub.publish(LIST, adds=[md5("y")])
    mirror = (await servers.serving(hub.home)).on("/lists/", failure)
    node = make_node(tmp_path / "mirrored", hub, [LIST], mirrors=[mirror.url])

    outcomes, fetcher = await sync_once(node)

    assert statuses(outcomes) == {LIST: ("updated", 0, 3)}
    from_hub = hub_paths(fetcher.requested, hub.url)
    for path in (snapshot_path(LIST, 2), header_path(LIST, 3)):
        assert fetcher.requested.index(f"{mirror.url}/{path}") < fetcher.requested.index(
            f"{hub.url}/{path}"
        )
    assert [p for p in from_hub if "/body/" in p], "v3's body came from the hub"
    assert node.store.verify()[0][1]
    node.close()


def forge_signature(sidecar: bytes) -> bytes:
    """The same sidecar with the signature replaced by 64 other bytes."""
    forged = base64.b64encode(bytes(range(64))).decode()
    return re.sub(rb'"sig":"[^"]*"', f'"sig":"{forged}"'.encode(), sidecar)


@pytest.mark.parametrize(
    ("target", "tamper", "kind"),
    [
        (r"/body/", flip_byte, "ConsistencyError"),
        (r"/delta/2\.json$", lambda b: b.replace(b'"version":2', b'"version":3'), "SignatureError"),
        (r"/delta/2\.json$", flip_byte, "SignatureError"),
        (r"/delta/2\.json\.sig$", forge_signature, "SignatureError"),
        (r"/snapshot/", flip_byte, "ConsistencyError"),
    ],
    ids=["body-flipped", "header-edited", "header-flipped", "signature-forged", "snapshot"],
)
async def test_a_malicious_mirrors_bytes_are_passed_over_for_the_hubs_verified_copy(
    tmp_path: Path,
    hub: HubApp,
    servers: Servers,
    target: str,
    tamper: Callable[[bytes], bytes],
    kind: str,
) -> None:
    """A mirror is trusted for nothing: its bad bytes fail verification (``kind``), the
    hub's copy is verified in their place, and the bad source is kept as evidence."""
    mirror = await servers.serving(hub.home)
    node = make_node(tmp_path / "mirrored", hub, [LIST], mirrors=[mirror.url])
    bootstrap = "snapshot" in target  # only a bootstrapping node fetches the snapshot
    if not bootstrap:
        assert statuses((await sync_once(node))[0]) == {LIST: ("updated", 0, 1)}
    hub.publish(LIST, adds=[md5("x")], removes=[md5(1)])
    mirror.on(target, Tamper(tamper))

    outcomes, fetcher = await sync_once(node)

    assert statuses(outcomes) == {LIST: ("updated", 0 if bootstrap else 1, 2)}
    assert node.matching.match_hashes({"md5": [md5("x")]})
    assert node.store.verify()[0][1]
    evidence = evidence_rows(node)[-1]
    assert evidence["kind"] == "RejectedSource"
    named = target.removesuffix(r"\.sig$").removesuffix("$")  # a bad sig names its header
    assert re.search(named, evidence["message"]), evidence["message"]
    # The hub was asked for exactly what the mirror got wrong.
    assert any(url.startswith(hub.url) and re.search(target, url) for url in fetcher.requested)
    assert kind in {"ConsistencyError", "SignatureError"}
    node.close()


async def test_oversized_answer_from_a_mirror_gives_way_to_the_hub(
    tmp_path: Path, hub: HubApp, servers: Servers
) -> None:
    """An answer over its cap is the mirror's failure, like a 500: the hub is asked next."""
    hub.publish(LIST, adds=[md5("x")])
    mirror = (await servers.serving(hub.home)).on(r"/delta/2\.json$", Endless())
    node = make_node(tmp_path / "mirrored", hub, [LIST], mirrors=[mirror.url])

    outcomes, fetcher = await sync_once(node)

    assert statuses(outcomes) == {LIST: ("updated", 0, 2)}
    assert f"{hub.url}/{header_path(LIST, 2)}" in fetcher.requested
    assert node.store.verify()[0][1]
    node.close()


async def test_a_mirrors_tampered_root_is_passed_over_for_the_hubs_root(
    tmp_path: Path, hub: HubApp, servers: Servers
) -> None:
    mirror = await servers.serving(hub.home)
    node = make_node(tmp_path / "mirrored", hub, [LIST], mirrors=[mirror.url])
    await sync_once(node)
    hub.create_list("other-md5", "md5")  # root v3
    hub.publish(LIST, adds=[md5("x")])
    mirror.on(r"/root/3\.json$", Tamper(lambda b: b.replace(b"other-md5", b"other-md6")))

    outcomes, _ = await sync_once(node)

    assert statuses(outcomes) == {LIST: ("updated", 1, 2)}
    assert StoreImage.of(node).roots == (1, 2, 3)
    assert evidence_rows(node)[-1]["kind"] == "RejectedSource"
    assert "root/3.json" in evidence_rows(node)[-1]["message"]
    node.close()


async def test_a_tampered_root_from_the_hub_itself_rejects_every_list_and_stores_no_root(
    tmp_path: Path, hub: HubApp, servers: Servers
) -> None:
    proxy = await servers.serving(hub.home)
    node = make_node(tmp_path / "proxied", hub, [LIST], hub_url=proxy.url)
    await sync_once(node)
    hub.create_list("other-md5", "md5")  # root v3
    hub.publish(LIST, adds=[md5("x")])
    proxy.on(r"/root/3\.json$", Tamper(lambda b: b.replace(b"other-md5", b"other-md6")))
    before = StoreImage.of(node)

    outcomes, _ = await sync_once(node)

    assert outcomes[0].status == "rejected"
    assert outcomes[0].kind == "SignatureError"
    before.unchanged(node, new_evidence=1)
    assert before.roots == (1, 2)
    proxy.behave()
    assert statuses((await sync_once(node))[0]) == {LIST: ("updated", 1, 2)}
    assert StoreImage.of(node).roots == (1, 2, 3)
    node.close()


# -- endless data and slow retrieval ---------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "behaviour"),
    [
        (r"/body/", Endless()),
        (r"/body/", Endless(content_length=10**12)),
        (r"/body/", Bomb(50_000_000)),
        (r"/delta/2\.json$", Endless()),
        (r"/delta/2\.json$", Endless(content_length=10**9)),
        (r"/delta/2\.json\.sig$", Endless()),
        (r"/checkpoint$", Endless()),
        (r"/checkpoint$", Endless(content_length=10**9)),
        (r"/checkpoint$", Bomb(10_000_000)),
        (r"/snapshot/", Endless()),
        (r"/root/3\.json$", Endless()),
    ],
    ids=[
        "body-chunked",
        "body-content-length",
        "body-gzip-bomb",
        "header-chunked",
        "header-content-length",
        "signature-chunked",
        "checkpoint-chunked",
        "checkpoint-content-length",
        "checkpoint-gzip-bomb",
        "snapshot-chunked",
        "root-chunked",
    ],
)
async def test_endless_data_is_cut_at_its_cap_and_nothing_is_applied(
    hub: HubApp, node: Node, servers: Servers, target: str, behaviour: Behaviour
) -> None:
    await sync_once(node)
    hub.publish(LIST, adds=[md5("x")])  # v2, with a snapshot
    evil = (await servers.serving(hub.home)).on(target, behaviour)
    if "snapshot" in target:
        node.store.db.execute("DELETE FROM lists")  # a node bootstrapping from the snapshot
        node.hub().matching.indexes.clear()
        node.hub().matching.versions.clear()
    before = StoreImage.of(node)
    started = time.monotonic()

    outcomes, _ = await sync_once(node, hub_url=evil.url)

    assert time.monotonic() - started < 10
    (outcome,) = outcomes
    assert (outcome.status, outcome.kind) == ("rejected", "LimitError"), outcome
    before.unchanged(node, new_evidence=1)
    assert evidence_rows(node)[-1]["kind"] == "LimitError"
    assert evil.streamed < 64 * 1024 * 1024, "the node hung up long before the server gave up"


async def test_slow_retrieval_fails_at_the_deadline_and_nothing_is_applied(
    hub: HubApp, node: Node, servers: Servers
) -> None:
    await sync_once(node)
    hub.publish(LIST, adds=[md5("x")])
    slow = (await servers.serving(hub.home)).on(r"/delta/2\.json$", Trickle(0.05))
    before = StoreImage.of(node)
    started = time.monotonic()

    outcomes, _ = await sync_once(node, hub_url=slow.url, limits=Limits(fetch_timeout=0.5))

    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 5, elapsed
    (outcome,) = outcomes
    assert outcome.status == "failed"
    assert outcome.kind == "FetchError"
    assert "0.5 s" in outcome.error
    before.unchanged(node, new_evidence=0)  # a transport failure is no evidence
    assert 0 < slow.streamed < len(hub.file(header_path(LIST, 2)))


async def test_slow_mirror_gives_way_to_the_hub(
    tmp_path: Path, hub: HubApp, servers: Servers
) -> None:
    hub.publish(LIST, adds=[md5("x")])
    slow = (await servers.serving(hub.home)).on(r"/lists/", Trickle(0.05))
    node = make_node(tmp_path / "mirrored", hub, [LIST], mirrors=[slow.url])

    outcomes, _ = await sync_once(node, limits=Limits(fetch_timeout=0.3))

    assert statuses(outcomes) == {LIST: ("updated", 0, 2)}
    node.close()


# -- freeze, rollback, equivocation, other histories ------------------------------------------


async def test_replayed_older_checkpoint_is_rejected_as_rollback(
    hub: HubApp, node: Node, servers: Servers
) -> None:
    old = hub.file(checkpoint_path(LIST))
    hub.clock.advance(5)
    hub.publish(LIST, adds=[md5("x")])
    assert statuses((await sync_once(node))[0]) == {LIST: ("updated", 0, 2)}
    replaying = (await servers.serving(hub.home)).on(r"/checkpoint$", Replace(old))
    before = StoreImage.of(node)

    outcomes, _ = await sync_once(node, hub_url=replaying.url)

    assert outcomes[0].status == "rejected"
    assert outcomes[0].kind == "RollbackError"
    before.unchanged(node, new_evidence=1)
    assert bytes(evidence_rows(node)[-1]["bytes"]) == old


async def test_stale_checkpoint_is_rejected_as_freeze_while_the_list_stays_enforced(
    hub: HubApp, node: Node, servers: Servers
) -> None:
    await sync_once(node)
    stale = hub.file(checkpoint_path(LIST))
    hub.clock.advance(MAX_AGE + 60)
    hub.refresh()  # the real hub keeps its checkpoint fresh; the attacker replays the old one
    frozen = (await servers.serving(hub.home)).on(r"/checkpoint$", Replace(stale))
    before = StoreImage.of(node)

    outcomes, _ = await sync_once(node, hub_url=frozen.url)

    assert outcomes[0].status == "rejected"
    assert outcomes[0].kind == "FreezeError"
    before.unchanged(node, new_evidence=1)
    status = node.status()
    assert status["stale"], "past the maximum age without a good checkpoint: the alarm is up"
    assert node.matching.match_hashes({"md5": [md5(1)]}), "the last good list is still enforced"

    outcomes, _ = await sync_once(node)
    assert statuses(outcomes) == {LIST: ("current", 1, 1)}
    assert not node.status()["stale"]


@pytest.fixture
async def fork(tmp_path: Path, hub: HubApp) -> HubApp:
    """The hub's split view: same keys and v1, its own history from v2 on."""
    return await fork_hub(hub, tmp_path / "fork")


async def test_second_root_hash_for_a_trusted_size_is_kept_as_equivocation_evidence(
    hub: HubApp, fork: HubApp, node: Node, servers: Servers
) -> None:
    hub.publish(LIST, adds=[md5("real")])
    fork.publish(LIST, adds=[md5("forged")])
    assert statuses((await sync_once(node))[0]) == {LIST: ("updated", 0, 2)}
    other = await servers.serving(fork.home)
    before = StoreImage.of(node)

    outcomes, _ = await sync_once(node, hub_url=other.url)

    assert outcomes[0].status == "rejected"
    assert outcomes[0].kind == "EquivocationError"
    before.unchanged(node, new_evidence=1)
    evidence = evidence_rows(node)[-1]
    assert evidence["kind"] == "EquivocationError"
    assert bytes(evidence["bytes"]) == fork.file(checkpoint_path(LIST)), "the note presented"
    assert bytes(evidence["other"]) == hub.file(checkpoint_path(LIST)), "the note trusted"
    assert not node.matching.match_hashes({"md5": [md5("forged")]})


async def test_other_history_past_the_trusted_version_is_rejected(
    hub: HubApp, fork: HubApp, node: Node, servers: Servers
) -> None:
    hub.publish(LIST, adds=[md5("real")])
    fork.publish(LIST, adds=[md5("forged")])
    fork.publish(LIST, adds=[md5("forged-too")])
    await sync_once(node)
    other = await servers.serving(fork.home)
    before = StoreImage.of(node)

    outcomes, _ = await sync_once(node, hub_url=other.url)

    assert outcomes[0].status == "rejected"
    assert outcomes[0].kind == "ConsistencyError"
    assert "prev" in outcomes[0].error
    before.unchanged(node, new_evidence=1)


# -- crash in the middle of an apply, local corruption ------------------------------------------


@pytest.mark.parametrize("bootstrap", [False, True], ids=["update", "bootstrap"])
async def test_crash_during_the_commit_applies_nothing_and_the_next_sync_succeeds(
    hub: HubApp, node: Node, bootstrap: bool
) -> None:
    """The commit fails (a trigger aborts it, as a power cut would end it): nothing is kept.

    The error goes up to the caller (the daemon counts a failed run and backs off).
    """
    if not bootstrap:
        await sync_once(node)
    hub.publish(LIST, adds=[md5("x")])
    db = raw_db(node)
    statement = "INSERT" if bootstrap else "UPDATE OF state"
    db.execute(
        f"CREATE TRIGGER crash BEFORE {statement} ON lists "
        "BEGIN SELECT RAISE(ABORT, 'power cut during the commit'); END"
    )
    before = StoreImage.of(node)

    with pytest.raises(sqlite3.IntegrityError, match="power cut"):
        await sync_once(node)

    db.execute("DROP TRIGGER crash")
    db.close()
    before.unchanged(node, new_evidence=0)
    assert not node.matching.match_hashes({"md5": [md5("x")]})
    outcomes, _ = await sync_once(node)
    assert statuses(outcomes) == {LIST: ("updated", 0 if bootstrap else 1, 2)}
    assert node.matching.match_hashes({"md5": [md5("x")]})


def corrupt_state(node: Node) -> None:
    """Flip the last bit of the third stored hash, as a bad disk would (order is kept)."""
    state = bytearray(state_of(node, LIST))
    state[3 * 16 - 1] ^= 1
    db = raw_db(node)
    db.execute("UPDATE lists SET state = ? WHERE id = ?", [bytes(state), LIST])
    db.close()


async def test_local_corruption_is_reported_by_verify_and_no_update_is_applied_on_it(
    hub: HubApp, node: Node, servers: Servers
) -> None:
    await sync_once(node)
    corrupt_state(node)
    ((list_id, ok, actual, trusted),) = node.store.verify()
    assert (list_id, ok) == (LIST, False)
    assert actual.count == trusted.count
    assert actual.sha256 != trusted.sha256
    hub.publish(LIST, adds=[md5("x")])
    no_snapshots = (await servers.serving(hub.home)).on("/snapshot/", Status(404))
    before = StoreImage.of(node)

    outcomes, _ = await sync_once(node, hub_url=no_snapshots.url)

    assert outcomes[0].status == "rejected"
    assert outcomes[0].kind == "StateMismatchError"
    assert json.loads(dict(before.lists[0])["trust"])["version"] == 1
    assert StoreImage.of(node).lists == before.lists
    assert StoreImage.of(node).evidence == before.evidence + 1
    assert not node.store.verify()[0][1]


async def test_local_corruption_is_repaired_from_a_newer_snapshot(hub: HubApp, node: Node) -> None:
    await sync_once(node)
    corrupt_state(node)
    hub.publish(LIST, adds=[md5("x")])  # v2, with a snapshot

    outcomes, fetcher = await sync_once(node)

    assert statuses(outcomes) == {LIST: ("updated", 1, 2)}
    assert outcomes[0].rebuilt
    assert outcomes[0].added == sorted([FIRST_SORTED[2], md5("x")])
    assert outcomes[0].removed == [flip_byte(FIRST_SORTED[2])]
    assert any(url.endswith(snapshot_path(LIST, 2)) for url in fetcher.requested)
    assert node.store.verify()[0][1]
    assert node.matching.match_hashes({"md5": [md5(2), md5("x")]})


# -- the benchmark's sync rows keep working -------------------------------------------------


def test_sync_bench_rows_run_end_to_end_at_a_small_size(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.node_bench import main

    assert main(["--sizes", "2000", "--repeats", "1", "--sections", "", "--sync", "--json"]) == 0
    rows = {row["case"]: row for row in json.loads(capsys.readouterr().out)["rows"]}
    assert set(rows) == {
        "bootstrap from snapshot: run_sync end to end",
        "restart: Node.open (index from the store)",
        "delta +200: run_sync end to end",
    }
    assert all(row["section"] == "sync" and row["size"] == 2000 for row in rows.values())
    assert all(row["seconds"] > 0 for row in rows.values())


async def test_a_list_declared_but_never_published_is_current_at_version_zero(
    tmp_path: Path, hub: HubApp
) -> None:
    hub.create_list("fresh-md5", "md5")
    node = make_node(tmp_path / "node", hub, [LIST, "fresh-md5"])

    outcomes, _ = await sync_once(node)

    assert statuses(outcomes)["fresh-md5"] == ("current", 0, 0)
    assert statuses(outcomes)[LIST][0] == "updated"
    assert evidence_rows(node) == []
    node.close()


# -- missing files (PROTOCOL.md §11.1) ---------------------------------------------------------


async def test_a_new_list_is_served_with_a_size_0_checkpoint_that_the_node_verifies(
    tmp_path: Path, hub: HubApp
) -> None:
    """Every declared list has a checkpoint from its creation: size 0, the empty tree,
    signed by the checkpoint role and co-signed by the timestamp role."""
    hub.create_list("fresh-md5", "md5")
    note = SignedCheckpoint.from_bytes(hub.file(checkpoint_path("fresh-md5")))
    assert (note.checkpoint.size, note.checkpoint.root_hash) == (0, EMPTY_ROOT)
    node = make_node(tmp_path / "node", hub, ["fresh-md5"])

    outcomes, _ = await sync_once(node)

    assert statuses(outcomes) == {"fresh-md5": ("current", 0, 0)}
    trust = StoreImage.of(node).trust("fresh-md5")
    assert trust["version"] == 0
    assert trust["checkpoint"].encode() == hub.file(checkpoint_path("fresh-md5"))
    assert trust["checkpoint_time"] is not None, "the size-0 checkpoint's co-signature counted"
    hub.publish("fresh-md5", adds=[md5("first")])
    assert statuses((await sync_once(node))[0]) == {"fresh-md5": ("updated", 0, 1)}
    node.close()


@pytest.mark.parametrize("started", [False, True], ids=["new-node", "node-at-v1"])
async def test_a_declared_lists_missing_checkpoint_is_rejected_not_taken_for_no_versions(
    tmp_path: Path, hub: HubApp, servers: Servers, started: bool
) -> None:
    withholding = (await servers.serving(hub.home)).on(r"/checkpoint$", Status(404))
    node = make_node(tmp_path / "node", hub, [LIST])
    if started:
        await sync_once(node)
    before = StoreImage.of(node)

    outcomes, _ = await sync_once(node, hub_url=withholding.url)

    (outcome,) = outcomes
    assert outcome.status == "rejected"
    assert outcome.error == (
        f"a signed file is missing: {checkpoint_path(LIST)}: found at no source, "
        f"though root v2 declares list {LIST}"
    )
    before.unchanged(node, new_evidence=1)
    assert evidence_rows(node)[-1]["kind"] == "MissingFileError"
    node.close()


@pytest.mark.parametrize(
    ("target", "file"),
    [
        (r"/delta/2\.json$", header_path(LIST, 2)),
        (r"/delta/2\.json\.sig$", header_path(LIST, 2) + ".sig"),
        (r"/body/", ""),
    ],
    ids=["header", "header-sidecar", "body"],
)
async def test_a_file_the_signed_data_promises_missing_at_every_source_is_rejected(
    tmp_path: Path, hub: HubApp, servers: Servers, target: str, file: str
) -> None:
    """The mirror is asked first, then the hub; only when both answer 404 is the file
    missing: a rejection naming it, evidence kept, the last good list still enforced."""
    node = make_node(tmp_path / "node", hub, [LIST])
    await sync_once(node)
    hub.publish(LIST, adds=[md5("x")])
    mirror = (await servers.serving(hub.home)).on(target, Status(404))
    withholding = (await servers.serving(hub.home)).on(target, Status(404))
    before = StoreImage.of(node)

    outcomes, fetcher = await sync_once(node, hub_url=withholding.url, mirrors=[mirror.url])

    (outcome,) = outcomes
    assert outcome.status == "rejected"
    assert outcome.error.startswith("a signed file is missing: lists/tid-md5/"), outcome.error
    if file:
        assert outcome.error.startswith(f"a signed file is missing: {file}: found at no source")
    else:
        assert re.search(
            r"/body/[0-9a-f]{64}\.txt: found at no source, though header v2 names it", outcome.error
        ), outcome.error
    missing = outcome.error.split(": ")[1]
    assert fetcher.requested[-2:] == [f"{mirror.url}/{missing}", f"{withholding.url}/{missing}"]
    before.unchanged(node, new_evidence=1)
    assert evidence_rows(node)[-1]["kind"] == "MissingFileError"
    assert statuses((await sync_once(node))[0]) == {LIST: ("updated", 1, 2)}, "served again"
    node.close()
