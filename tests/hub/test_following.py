"""A hub following another hub: verified like a node, re-published with provenance.

Two real hubs: the upstream (``helpline.example``) serves on loopback; the
downstream (``regional.example``) declares it in its root, is enrolled there as a
node with a key of its own, and follows its ``ncii`` collection, taking the entries
of category ``ncii`` only. Each run fetches and verifies the upstream's lists
(``follow.Syncer``, every body and no snapshot), carries the selected entries into
the downstream's own collection with source ``hub:helpline.example``, publishes
them with a provenance document (PROTOCOL.md §7.5) whose every origin is checked
here as an auditor would — against the upstream's own headers, log and bodies — and
acknowledges to the upstream. A change upstream changes the entry, a retraction
upstream retracts it (reason ``upstream``) within one run, and a loop is refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from click.testing import Result

from hub.app import create_app
from hub.appkeys import SCHEDULER
from hub.core import Hub, utcnow
from hub.following import FollowReport, follow_upstreams, in_place
from hub.http import invalidate_caches
from hub.services.entries import EntryDraft
from protocol import (
    DeltaHeader,
    EntriesBody,
    Entry,
    body_path,
    header_path,
    provenance_path,
)
from protocol.keyfile import load_public_key
from protocol.lists import hash_type
from protocol.merkle import leaf_hash, root_from_leaf_hashes
from protocol.provenance import (
    Provenance,
    UpstreamOrigin,
    header_provenance,
    verify_provenance,
)
from tests.hub.conftest import opened
from tests.hub.node_view import follow_entries, from_hub, trusted_hub
from tests.hub.test_cli import Operator
from tests.hub.test_scheduler import eventually, sample

UPSTREAM = "helpline.example"
DOWNSTREAM = "regional.example"
UP_PDQ, UP_MD5 = "ncii-pdq", "ncii-md5"
DOWN_PDQ, DOWN_MD5 = "regional-pdq", "regional-md5"
NODE_ID = "regional"


def pdq(n: object) -> str:
    return hashlib.sha256(f"pdq {n}".encode()).hexdigest()


def md5(n: object) -> str:
    return hashlib.md5(f"md5 {n}".encode()).hexdigest()


def make_hub(home: Path, name: str, pdq_list: str, md5_list: str, label: str) -> str:
    """A hub with one entries collection; returns its root v1 SHA-256."""
    hub = Hub.init(
        home, name, root_keys=1, root_threshold=1, publish_interval=0, timestamp_interval=0
    )
    try:
        hub.roots.create_list(pdq_list, "pdq", label=label, list_format="entries")
        hub.roots.create_list(md5_list, "md5", label=label, list_format="entries")
        return hub.keys.root_sha256(1)
    finally:
        hub.close()


def add(home: Path, n: int, lists: tuple[str, str], category: str = "ncii") -> str:
    hub = Hub.open(home)
    try:
        draft = EntryDraft(
            ((lists[0], pdq(n)), (lists[1], md5(n))),
            category=category,
            classification="confirmed",
            source="import:batch-1",
        )
        entry = hub.entries.add(draft).entry
        hub.publishing.publish()
        return entry
    finally:
        hub.close()


@dataclass
class Federation:
    upstream: Path
    downstream: Path
    url: str
    up_pin: str
    down_pin: str
    app: web.Application

    @contextmanager
    def upstream_changes(self) -> Iterator[Hub]:
        """The upstream's operator at work; its server then serves the new files at
        once (the caches a change through its own API clears)."""
        with opened(self.upstream) as hub:
            yield hub
        invalidate_caches(self.app)


@pytest.fixture
async def federation(tmp_path: Path) -> AsyncIterator[Federation]:
    """The upstream serving on loopback with two entries (one ``ncii``, one ``csam``);
    the downstream with an entry of its own, following the upstream's collection."""
    up_home, down_home = tmp_path / "helpline", tmp_path / "regional"
    up_pin = make_hub(up_home, UPSTREAM, UP_PDQ, UP_MD5, "ncii")
    down_pin = make_hub(down_home, DOWNSTREAM, DOWN_PDQ, DOWN_MD5, "regional")
    add(up_home, 1, (UP_PDQ, UP_MD5))
    add(up_home, 2, (UP_PDQ, UP_MD5), category="csam")
    add(down_home, 100, (DOWN_PDQ, DOWN_MD5))
    server = TestServer(create_app(up_home, schedule=False))
    await server.start_server()
    try:
        url = str(server.make_url("")).rstrip("/")
        with opened(down_home) as hub:
            hub.roots.declare_upstream(UPSTREAM, url, up_pin)
            public = hub.upstreams.follow(UPSTREAM, NODE_ID, [UP_PDQ, UP_MD5])
        with opened(up_home) as hub:
            token = hub.access.enrol_node(NODE_ID, load_public_key(public), [UP_PDQ, UP_MD5])
        with opened(down_home) as hub:
            hub.upstreams.set_token(UPSTREAM, token)
            hub.upstreams.select(UPSTREAM, UP_PDQ, DOWN_PDQ, categories=["ncii"])
            hub.upstreams.select(UPSTREAM, UP_MD5, DOWN_MD5, categories=["ncii"])
        yield Federation(up_home, down_home, url, up_pin, down_pin, server.app)
    finally:
        await server.close()


async def follow(home: Path) -> FollowReport:
    """One run of the downstream following its upstreams, as ``hashhub upstream sync``."""
    with opened(home) as hub:
        async with aiohttp.ClientSession() as session:
            (report,) = await follow_upstreams(in_place(hub), session=session, now=utcnow())
    return report


def records(home: Path, pin: str, list_id: str) -> dict[str, Entry]:
    """What a node verifying ``list_id`` from root v1 holds, by hash."""
    with opened(home) as hub:
        versions = follow_entries(from_hub(hub), list_id, pinned_sha256=pin, now=utcnow())
    return {e.hash.hex(): e for e in versions[-1].state.entries()} if versions else {}


def last_body(home: Path, pin: str, list_id: str) -> EntriesBody:
    with opened(home) as hub:
        return follow_entries(from_hub(hub), list_id, pinned_sha256=pin, now=utcnow())[-1].body


def provenance_of(home: Path, pin: str, list_id: str, version: int) -> Provenance:
    """The provenance document version ``version`` of ``list_id`` names, verified by
    §7.5's rules against its header, the root that signed it and its body."""
    with opened(home) as hub:
        header_bytes = hub.files.get(header_path(list_id, version))
        assert header_bytes is not None
        header = DeltaHeader.from_bytes(header_bytes[0])
        ref = header_provenance(header)
        assert ref is not None, f"{list_id} v{version} names no provenance"
        data = hub.files.get(provenance_path(list_id, ref.sha256))
        body = hub.files.get(body_path(list_id, header.body.sha256))
        assert data is not None
        assert body is not None
        trusted = trusted_hub(from_hub(hub), pinned_sha256=pin, now=utcnow())
        root = trusted.root_at(header.root_version)
        kind = hash_type(root.lists[list_id].hash_type)
        return verify_provenance(
            header, data[0], root, EntriesBody.from_bytes(body[0], kind.name), kind
        )


def audit_origin(upstream: Path, origin: UpstreamOrigin) -> None:
    """What §7.5 leaves to an auditor, from the upstream's own published files: the
    origin's root is the upstream log's root at ``size``, the header is the one at
    its version, and that version's body adds the record line."""
    with opened(upstream) as hub:
        leaves = []
        for version in range(1, origin.size + 1):
            got = hub.files.get(header_path(origin.list_id, version))
            assert got is not None
            leaves.append(leaf_hash(got[0]))
        assert root_from_leaf_hashes(leaves) == origin.root
        header = DeltaHeader.from_bytes(origin.header)
        assert leaf_hash(origin.header) == leaves[header.version - 1]
        body = hub.files.get(body_path(origin.list_id, header.body.sha256))
        assert body is not None
        kind = hash_type(hub.keys.root().lists[origin.list_id].hash_type)
        added = EntriesBody.from_bytes(body[0], kind.name).adds
        assert origin.record in [e.line for e in added]


def acks_at(upstream: Path) -> list[tuple[str, int]]:
    with opened(upstream) as hub:
        rows = hub.ctx.db.query("SELECT bytes FROM acks WHERE node = ? ORDER BY seq", [NODE_ID])
        out = []
        for row in rows:
            ack = json.loads(bytes(row["bytes"]))
            out.append((ack["list"], ack["applied"]["version"]))
        return out


async def test_the_selected_entries_are_re_published_with_provenance_an_auditor_checks(
    federation: Federation,
) -> None:
    fed = federation
    report = await follow(fed.downstream)
    assert report.problems == []
    assert [(o.list_id, o.status, o.to_version) for o in report.outcomes] == [
        (UP_MD5, "updated", 2),
        (UP_PDQ, "updated", 2),
    ]
    assert report.carried is not None
    assert len(report.carried.added) == 1  # the csam entry is not selected
    assert [(r.list, r.version, r.adds) for r in report.published] == [
        (DOWN_MD5, 2, 1),
        (DOWN_PDQ, 2, 1),
    ]

    # A node of the downstream verifies both lists: its own entry and the carried one.
    for list_id, width_hash in ((DOWN_PDQ, pdq), (DOWN_MD5, md5)):
        held = records(fed.downstream, fed.down_pin, list_id)
        assert set(held) == {width_hash(1), width_hash(100)}
        carried = held[width_hash(1)]
        assert (carried.source, carried.category, carried.classification) == (
            f"hub:{UPSTREAM}",
            "ncii",
            "confirmed",
        )
        assert held[width_hash(100)].source == "import:batch-1"

        # The version names its provenance; each origin is the upstream's own record.
        doc = provenance_of(fed.downstream, fed.down_pin, list_id, 2)
        (origin,) = doc.origins.values()
        assert isinstance(origin, UpstreamOrigin)
        assert (origin.hub, origin.size) == (UPSTREAM, 2)
        upstream_list = UP_PDQ if list_id == DOWN_PDQ else UP_MD5
        assert origin.list_id == upstream_list
        theirs = records(fed.upstream, fed.up_pin, upstream_list)[width_hash(1)]
        assert origin.record == theirs.line
        audit_origin(fed.upstream, origin)

    # The upstream sees that the downstream applied each list, as it sees any node.
    assert sorted(acks_at(fed.upstream)) == [(UP_MD5, 2), (UP_PDQ, 2)]

    # Nothing new upstream: a run changes nothing and sends no ack.
    again = await follow(fed.downstream)
    assert (again.problems, again.published, again.acked) == ([], [], [])
    assert [o.status for o in again.outcomes] == ["current", "current"]


async def test_a_change_and_a_retraction_upstream_reach_the_downstream_in_one_run(
    federation: Federation,
) -> None:
    fed = federation
    await follow(fed.downstream)
    with fed.upstream_changes() as hub:
        (entry,) = [e for e in hub.entries.listed(UP_PDQ) if e.category == "ncii"]
        hub.entries.change(entry.entry, classification="severe")
        hub.publishing.publish()

    changed = await follow(fed.downstream)
    assert changed.problems == []
    assert changed.carried is not None
    assert len(changed.carried.changed) == 1
    held = records(fed.downstream, fed.down_pin, DOWN_PDQ)[pdq(1)]
    assert held.classification == "severe"
    # The new record's origin is the upstream version that changed it.
    (origin,) = provenance_of(fed.downstream, fed.down_pin, DOWN_PDQ, 3).origins.values()
    assert isinstance(origin, UpstreamOrigin)
    assert DeltaHeader.from_bytes(origin.header).version == 3
    audit_origin(fed.upstream, origin)

    with fed.upstream_changes() as hub:
        hub.entries.retract(entry.entry, "withdrawn")
        hub.publishing.publish()
    retracted = await follow(fed.downstream)
    assert retracted.problems == []
    assert retracted.carried is not None
    assert len(retracted.carried.retracted) == 1
    for list_id, of in ((DOWN_PDQ, pdq), (DOWN_MD5, md5)):
        assert set(records(fed.downstream, fed.down_pin, list_id)) == {of(100)}
        removal = last_body(fed.downstream, fed.down_pin, list_id).removes
        assert [(r.entry.hash.hex(), r.reason) for r in removal] == [(of(1), "upstream")]
    assert sorted(acks_at(fed.upstream)[-2:]) == [(UP_MD5, 4), (UP_PDQ, 4)]


async def test_an_upstream_that_declares_the_downstream_as_its_own_is_a_loop_refused(
    federation: Federation,
) -> None:
    fed = federation
    await follow(fed.downstream)
    with fed.upstream_changes() as hub:
        hub.roots.declare_upstream(DOWNSTREAM, "http://127.0.0.1:9/", fed.down_pin)
        hub.entries.add(
            EntryDraft(((UP_PDQ, pdq(3)),), "ncii", "confirmed", source="import:batch-2")
        )
        hub.publishing.publish()
    before = records(fed.downstream, fed.down_pin, DOWN_PDQ)
    report = await follow(fed.downstream)
    assert [(o.status, o.cause) for o in report.outcomes] == [("failed", "config")] * 2
    assert all("would loop" in p for p in report.problems)
    assert records(fed.downstream, fed.down_pin, DOWN_PDQ) == before
    assert report.published == []


async def test_following_without_a_token_or_a_declaration_says_what_to_do(
    tmp_path: Path,
) -> None:
    home = tmp_path / "regional"
    make_hub(home, DOWNSTREAM, DOWN_PDQ, DOWN_MD5, "regional")
    with opened(home) as hub:
        with pytest.raises(Exception, match=r"declares no upstream 'helpline\.example'"):
            hub.upstreams.follow(UPSTREAM, NODE_ID, [UP_PDQ])
        hub.roots.declare_upstream(UPSTREAM, "http://127.0.0.1:9/", "ab" * 32)
        with pytest.raises(Exception, match="is not a node id"):
            hub.upstreams.follow(UPSTREAM, "Not An Id", [UP_PDQ])
        with pytest.raises(Exception, match="a list is named twice"):
            hub.upstreams.follow(UPSTREAM, NODE_ID, [UP_PDQ, UP_PDQ])
        with pytest.raises(Exception, match="follow at least one upstream list"):
            hub.upstreams.follow(UPSTREAM, NODE_ID, [])
        hub.upstreams.follow(UPSTREAM, NODE_ID, [UP_PDQ])
        with pytest.raises(Exception, match="is not one this hub follows"):
            hub.upstreams.select(UPSTREAM, UP_MD5, DOWN_MD5)
        with pytest.raises(Exception, match="category 'spam' is not in this hub's vocabulary"):
            hub.upstreams.select(UPSTREAM, UP_PDQ, DOWN_PDQ, categories=["spam"])
        assert hub.upstreams.selections(UPSTREAM) == []
    report = await follow(home)
    assert report.problems == [
        f"no token for upstream {UPSTREAM} yet: 'hashhub upstream token {UPSTREAM} FILE'"
    ]


async def test_a_running_hub_follows_on_its_own_schedule(federation: Federation) -> None:
    """``upstream_interval``: the running downstream follows, carries over and publishes
    without an operator, and counts the publish as the upstream's."""
    fed = federation
    with opened(fed.downstream) as hub:
        config = replace(hub.config, upstream_interval=1, publish_interval=0)
        (fed.downstream / "hub.toml").write_text(config.to_toml())
    app = create_app(fed.downstream)
    server = TestServer(app)
    await server.start_server()
    try:

        async def carried() -> bool:
            return pdq(1) in records(fed.downstream, fed.down_pin, DOWN_PDQ)

        await eventually(carried, "the upstream's entry is re-published")
        assert app[SCHEDULER].job_ids() == ["upstreams"]

        async def counted() -> bool:  # once the run is over: the acks are sent first
            return sample(app, "hashhub_publishes_total", list=DOWN_PDQ, trigger="upstream") == 1

        await eventually(counted, "the publish is counted as the upstream's")
        assert sorted(acks_at(fed.upstream)) == [(UP_MD5, 2), (UP_PDQ, 2)]
    finally:
        await server.close()


async def test_the_operator_follows_selects_syncs_and_unselects_from_the_command_line(
    tmp_path: Path,
) -> None:
    """``hashhub upstream follow|token|select|sync|status|unselect|unfollow`` against a
    real upstream; each command's refusal names what to do."""
    up_home, down_home = tmp_path / "helpline", tmp_path / "regional"
    up_pin = make_hub(up_home, UPSTREAM, UP_PDQ, UP_MD5, "ncii")
    down_pin = make_hub(down_home, DOWNSTREAM, DOWN_PDQ, DOWN_MD5, "regional")
    add(up_home, 1, (UP_PDQ, UP_MD5))
    op = Operator(down_home)

    async def hashhub(*args: str) -> Result:
        return await asyncio.to_thread(op.run, *args)

    server = TestServer(create_app(up_home, schedule=False))
    await server.start_server()
    try:
        url = str(server.make_url("")).rstrip("/")
        refused = await hashhub("upstream", "follow", UPSTREAM, "--node-id", NODE_ID,
                                "--list", UP_PDQ)  # fmt: skip
        assert refused.exit_code == 1
        assert "declares no upstream 'helpline.example': declare it first" in refused.output
        op.ok("upstream", "add", UPSTREAM, url, "--root-sha256", up_pin)
        followed = await hashhub("upstream", "follow", UPSTREAM, "--node-id", NODE_ID,
                                 "--list", UP_PDQ)  # fmt: skip
        assert followed.exit_code == 0, followed.output
        public = down_home / "upstreams" / UPSTREAM / "node.pub"
        assert f"Its operator enrols this hub's key: {public}" in followed.output
        assert oct((down_home / "upstreams" / UPSTREAM / "node.key").stat().st_mode & 0o777) == (
            "0o600"
        )
        with opened(up_home) as hub:
            token = hub.access.enrol_node(NODE_ID, load_public_key(public), [UP_PDQ])
        (tmp_path / "token").write_text(token + "\n")

        no_token = await hashhub("upstream", "sync")
        assert no_token.exit_code == 1
        assert f"no token for upstream {UPSTREAM} yet" in no_token.output
        op.ok("upstream", "token", UPSTREAM, str(tmp_path / "token"))
        wrong = await hashhub("upstream", "select", UPSTREAM, "--from", UP_MD5,
                              "--into", DOWN_MD5)  # fmt: skip
        assert wrong.exit_code == 1
        assert "upstream list 'ncii-md5' is not one this hub follows of helpline.example" in (
            wrong.output
        )
        selected = op.ok("upstream", "select", UPSTREAM, "--from", UP_PDQ, "--into", DOWN_PDQ,
                         "--category", "ncii")  # fmt: skip
        assert selected == f"Re-publishing {UPSTREAM}/{UP_PDQ} into {DOWN_PDQ}: ncii.\n"

        synced = await hashhub("upstream", "sync", "--json")
        assert synced.exit_code == 0, synced.output
        (report,) = json.loads(synced.stdout)
        assert report["lists"][0]["status"] == "updated"
        assert report["carried"]["lists"] == [DOWN_PDQ]
        assert [(p["list"], p["version"]) for p in report["published"]] == [(DOWN_PDQ, 1)]
        assert report["acked"] == [1]
        assert set(records(down_home, down_pin, DOWN_PDQ)) == {pdq(1)}

        (status,) = json.loads(op.ok("upstream", "status", "--json"))
        assert (status["node"], status["token"]) == (NODE_ID, True)
        assert [(s["list"], s["version"], s["records"], s["acked_version"]) for s in
                status["lists"]] == [(UP_PDQ, 1, 1, 1)]  # fmt: skip
        assert "ncii-pdq -> regional-pdq  (ncii)" in op.ok("upstream", "status")

        op.ok("upstream", "unselect", UPSTREAM, "--from", UP_PDQ, "--into", DOWN_PDQ)
        unselected = await hashhub("upstream", "sync")
        assert unselected.exit_code == 0, unselected.output
        assert f"{UPSTREAM}: carried over +0 ~0 -1" in unselected.output
        assert records(down_home, down_pin, DOWN_PDQ) == {}
        assert "No longer following" in op.ok("upstream", "unfollow", UPSTREAM)
        assert op.ok("upstream", "status") == "This hub follows no upstream.\n"
    finally:
        await server.close()


async def test_an_entry_this_hub_retracted_is_not_carried_over_again(
    federation: Federation,
) -> None:
    """An operator of the downstream retracts a re-published entry (say, disputed here):
    the next runs leave it out, though the upstream still lists it."""
    fed = federation
    await follow(fed.downstream)
    with opened(fed.downstream) as hub:
        (carried,) = [e for e in hub.entries.listed(DOWN_PDQ) if e.source == f"hub:{UPSTREAM}"]
        hub.entries.retract(carried.entry, "disputed")
        hub.publishing.publish()
    with fed.upstream_changes() as hub:  # a new upstream version: the carry-over runs
        hub.entries.add(
            EntryDraft(((UP_PDQ, pdq(4)),), "ncii", "confirmed", source="import:batch-2")
        )
        hub.publishing.publish()
    report = await follow(fed.downstream)
    assert report.carried is not None
    assert len(report.carried.added) == 1  # the new one only: the run reads what changed
    held = records(fed.downstream, fed.down_pin, DOWN_PDQ)
    assert pdq(1) not in held
    assert pdq(4) in held
    # A changed selection makes the next run read every record: still left out.
    with opened(fed.downstream) as hub:
        hub.upstreams.select(UPSTREAM, UP_PDQ, DOWN_PDQ, categories=["ncii", "csam"])
    report = await follow(fed.downstream)
    assert report.carried is not None
    assert f"{carried_upstream(fed)}: retracted here" in report.carried.skipped
    assert pdq(1) not in records(fed.downstream, fed.down_pin, DOWN_PDQ)


def carried_upstream(fed: Federation) -> str:
    """The upstream entry id of the upstream's ncii entry 1."""
    with opened(fed.upstream) as hub:
        (entry,) = [e for e in hub.entries.listed(UP_PDQ) if pdq(1) in [x["hash"] for x in e.lists]]
        return entry.entry
