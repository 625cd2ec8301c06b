"""Each version of an entries list carries a signed opinion summary an auditor recomputes.

Real hub app on loopback, real SQLite, acks signed with real node keys and sent to
``POST /v1/acks``. The summary is fetched over HTTP as a node or an auditor fetches
it, checked by ``protocol.verify_summary`` against the header that names it, the root
and the state the version results in, and recomputed with ``fold_positions`` from the
acks the hub hands an auditor (``GET /v1/admin/acks``).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from hub.services.entries import EntryDraft
from protocol import (
    Ack,
    AppliedVersion,
    Counts,
    DeltaHeader,
    Opinion,
    OpinionSummary,
    Voice,
    fold_positions,
    header_opinions,
    header_path,
    opinions_path,
    sign_ack,
    verify_summary,
    voices_of,
)
from tests.hub.conftest import Client, bearer, opened, pinned
from tests.hub.node_view import follow_entries, from_hub
from tests.hub.test_entry_opinions import (
    ENTRIES,
    client,
    enrol,
    entry_ids,
    home,
    opinions_of,
    post,
    signed_ack,
)

__all__ = ["client", "home", "publish_one_more", "summary_over_http"]


def publish_one_more(home: Path, n: int) -> int:
    """Stage entry ``n`` and publish, so a new version (and summary) is made; its number."""
    with opened(home) as hub:
        hub.entries.add(EntryDraft(((ENTRIES, f"{n:032x}"),), "ncii", "confirmed", "import"))
        [result] = [r for r in hub.publishing.publish([ENTRIES]) if r.list == ENTRIES]
    return result.version


async def summary_over_http(client: Client, home: Path, version: int) -> OpinionSummary:
    """Version ``version``'s summary, fetched over HTTP and verified as a node verifies it."""
    with opened(home) as hub:
        token = hub.access.create_operator_token("viewer", f"reader-{version}")
        root = hub.keys.root()
        versions = follow_entries(from_hub(hub), ENTRIES, pinned_sha256=pinned(home), now=hub.now())
    response = await client.get("/" + header_path(ENTRIES, version), headers=bearer(token))
    assert response.status == 200
    header = DeltaHeader.from_bytes(await response.read())
    ref = header_opinions(header)
    assert ref is not None, f"v{version} names no opinion summary"
    response = await client.get("/" + opinions_path(ENTRIES, ref.sha256), headers=bearer(token))
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("application/json")
    state = next(v.state for v in versions if v.version == version)
    return verify_summary(header, await response.read(), root, state)


async def stored_acks(client: Client, home: Path) -> list[Ack]:
    """Every ack the hub stored, as an auditor reads them."""
    with opened(home) as hub:
        token = hub.access.create_operator_token("auditor", "test-auditor-acks")
    response = await client.get("/v1/admin/acks?limit=1000", headers=bearer(token))
    assert response.status == 200
    page = await response.json()
    assert page["next"] is None
    return [Ack.from_bytes(base64.b64decode(a["bytes"])) for a in page["acks"]]


async def test_the_first_version_has_a_summary_with_no_entries(
    home: Path, client: Client, tmp_path: Path
) -> None:
    summary = await summary_over_http(client, home, 1)
    assert (summary.list_id, summary.version, summary.threshold) == (ENTRIES, 1, 2)
    assert summary.entries == {}
    assert summary.nodes == {}

    # An export (a mirror, a CDN) carries it at the same path, byte for byte.
    path = opinions_path(ENTRIES, hashlib.sha256(summary.to_bytes()).hexdigest())
    with opened(home) as hub:
        hub.files.export(tmp_path / "mirror")
    assert (tmp_path / "mirror" / path).read_bytes() == summary.to_bytes()


async def test_the_summary_names_each_voice_s_ack_and_equals_the_fold_of_the_acks(
    home: Path, client: Client
) -> None:
    first, second = entry_ids(home)
    key_a1, token_a1 = enrol(home, "platform-a-1", "platform-a")
    key_a2, token_a2 = enrol(home, "platform-a-2", "platform-a")
    key_b, token_b = enrol(home, "platform-b", "platform-b")
    key_c, token_c = enrol(home, "platform-c", "platform-c")
    said = [
        (key_a1, "platform-a-1", token_a1, 1, {first: Opinion("disputed", "benign")}),
        (key_a2, "platform-a-2", token_a2, 2, {first: Opinion("confirmed", "actioned")}),
        (
            key_b,
            "platform-b",
            token_b,
            3,
            {first: Opinion("confirmed", "blocked"), second: Opinion("disputed", "other")},
        ),
        (key_c, "platform-c", token_c, 4, {second: Opinion("confirmed", "blocked")}),
        (key_c, "platform-c", token_c, 5, {}),
    ]
    for key, node_id, token, seq, opinions in said:
        status, answer = await post(
            client, token, *signed_ack(home, key, node_id, ENTRIES, seq, opinions)
        )
        assert status == 200, answer

    version = publish_one_more(home, 3)
    summary = await summary_over_http(client, home, version)

    assert {n: (c.platform, c.seq) for n, c in summary.nodes.items()} == {
        "platform-a-1": ("platform-a", 1),
        "platform-a-2": ("platform-a", 2),
        "platform-b": ("platform-b", 3),
        "platform-c": ("platform-c", 5),
    }, "the cut: every node with an ack, its highest seq, its platform"
    assert set(summary.entries) == {first, second}, "the new entry has no voice"
    on_first, on_second = summary.entries[first], summary.entries[second]
    assert on_first.confirmed == {
        "platform-a": Voice("platform-a-2", 2, "actioned"),
        "platform-b": Voice("platform-b", 3, "blocked"),
    }, "platform-a's two nodes are one voice: its newest"
    assert on_first.disputed == {}
    assert on_second.confirmed == {"platform-c": Voice("platform-c", 4, "blocked")}
    assert on_second.disputed == {"platform-b": Voice("platform-b", 3, "other")}
    assert on_first.dispute is None
    assert on_second.dispute is None, "one disputing platform, threshold 2"

    acks = await stored_acks(client, home)
    by_ack = {(a.node, a.seq): a for a in acks}
    for entry_id, voiced in summary.entries.items():
        for position, voices in (("confirmed", voiced.confirmed), ("disputed", voiced.disputed)):
            for voice in voices.values():
                opinion = by_ack[(voice.node, voice.seq)].opinions[entry_id]
                assert (opinion.position, opinion.reason) == (position, voice.reason)
    positions = fold_positions(acks, summary.nodes)
    recomputed = {
        e: voices_of(p)
        for e, p in positions.items()
        if voices_of(p).confirmed or voices_of(p).disputed
    }
    assert recomputed == dict(summary.entries)


async def test_a_position_taken_back_drops_its_voice(home: Path, client: Client) -> None:
    first, _ = entry_ids(home)
    key_b, token_b = enrol(home, "platform-b", "platform-b")
    key_c, token_c = enrol(home, "platform-c", "platform-c")
    for key, node_id, token, seq, opinion in (
        (key_b, "platform-b", token_b, 1, Opinion("confirmed", "blocked")),
        (key_c, "platform-c", token_c, 2, Opinion("disputed", "benign")),
    ):
        status, answer = await post(
            client, token, *signed_ack(home, key, node_id, ENTRIES, seq, {first: opinion})
        )
        assert status == 200, answer
    before = await summary_over_http(client, home, publish_one_more(home, 3))
    assert set(before.entries[first].confirmed) == {"platform-b"}
    assert set(before.entries[first].disputed) == {"platform-c"}

    status, _ = await post(
        client,
        token_b,
        *signed_ack(home, key_b, "platform-b", ENTRIES, 3, {first: Opinion("none")}),
    )
    assert status == 200
    after = await summary_over_http(client, home, publish_one_more(home, 4))
    assert after.entries[first].confirmed == {}, "none counts for nothing"
    assert set(after.entries[first].disputed) == {"platform-c"}
    assert after.nodes["platform-b"].seq == 3

    status, _ = await post(
        client,
        token_c,
        *signed_ack(home, key_c, "platform-c", ENTRIES, 4, {first: Opinion("none")}),
    )
    assert status == 200
    gone = await summary_over_http(client, home, publish_one_more(home, 5))
    assert first not in gone.entries, "an entry no platform speaks of is not in the summary"


async def test_what_platforms_say_is_published_by_the_next_run_with_no_change_of_records(
    home: Path, client: Client
) -> None:
    """A run that publishes every list makes a version changing no record of a list
    whose platforms said something new, so the summary does not wait for the next
    change of the list; a run with nothing new said makes none; the cut moving (a node
    acking without opinions) is nothing new."""
    first, _ = entry_ids(home)
    key_b, token_b = enrol(home, "platform-b", "platform-b")
    with opened(home) as hub:
        assert [r.list for r in hub.publishing.publish()] == []
        before = hub.lists.row(ENTRIES)["version"]
    status, answer = await post(
        client,
        token_b,
        *signed_ack(
            home, key_b, "platform-b", ENTRIES, 1, {first: Opinion("confirmed", "blocked")}
        ),
    )
    assert status == 200, answer
    with opened(home) as hub:
        published = [r for r in hub.publishing.publish() if r.list == ENTRIES]
    assert [(r.version, r.adds, r.removes) for r in published] == [(before + 1, 0, 0)]
    summary = await summary_over_http(client, home, before + 1)
    assert set(summary.entries[first].confirmed) == {"platform-b"}

    status, answer = await post(
        client, token_b, *signed_ack(home, key_b, "platform-b", ENTRIES, 2, {})
    )
    assert status == 200, answer
    with opened(home) as hub:
        assert [r.list for r in hub.publishing.publish()] == []
        assert hub.lists.row(ENTRIES)["version"] == before + 1


async def test_a_tie_in_time_and_seq_goes_to_the_higher_node_id_in_both_counts(
    home: Path, client: Client
) -> None:
    """Two nodes of one platform, the same ``sent`` and ``seq``: the fold takes the
    higher node id whatever came first, and so does the hub's own count."""
    first, _ = entry_ids(home)
    with opened(home) as hub:
        head = hub.entries.head(ENTRIES)
        origin = hub.keys.root().origin(ENTRIES)
        sent = hub.now()
    applied = AppliedVersion(head.version, head.compact.root(), head.state.digest())
    for node_id, opinion in (
        ("platform-a-2", Opinion("disputed", "benign")),
        ("platform-a-1", Opinion("confirmed", "blocked")),
        ("platform-a-3", Opinion("confirmed", "actioned")),
    ):
        key, token = enrol(home, node_id, "platform-a")
        ack = sign_ack(
            key=key,
            node=node_id,
            list_id=ENTRIES,
            seq=1,
            sent=sent,
            origin=origin,
            applied=applied,
            counts=Counts(checked=1),
            opinions={first: opinion},
        )
        status, answer = await post(client, token, *ack)
        assert status == 200, answer

    summary = await summary_over_http(client, home, publish_one_more(home, 3))
    assert summary.entries[first].confirmed == {"platform-a": Voice("platform-a-3", 1, "actioned")}
    assert summary.entries[first].disputed == {}
    shown = await opinions_of(client, home, first)
    assert [(p["platform"], p["position"], p["node"]) for p in shown["platforms"]] == [
        ("platform-a", "confirmed", "platform-a-3")
    ]


async def test_the_migration_marks_the_acks_stored_before_it_that_carry_opinions(
    home: Path, client: Client
) -> None:
    """A hub upgraded past m011 folds its older acks too: the migration parses them once,
    and the first summary folds them into ``entry_opinions`` (emptied here: a table
    kept under the older rule is folded again, not trusted)."""
    first, _ = entry_ids(home)
    key, token = enrol(home, "platform-b", "platform-b")
    for seq, opinions in ((1, {first: Opinion("disputed", "benign")}), (2, {})):
        status, answer = await post(
            client, token, *signed_ack(home, key, "platform-b", ENTRIES, seq, opinions)
        )
        assert status == 200, answer
    with opened(home) as hub:
        marked = [tuple(r) for r in hub.db.execute("SELECT seq, with_opinions FROM acks")]
        assert sorted(marked) == [(1, 1), (2, 0)]
        hub.db.executescript(
            """
            DROP INDEX acks_with_opinions;
            ALTER TABLE acks DROP COLUMN with_opinions;
            DROP TABLE disputes;
            DROP TABLE opinion_nodes;
            DELETE FROM entry_opinions;
            DELETE FROM _sqlite_migrations WHERE name = 'm011_disputes';
            """
        )
    with opened(home) as hub:  # the migration runs again on open
        again = [tuple(r) for r in hub.db.execute("SELECT seq, with_opinions FROM acks")]
    assert sorted(again) == [(1, 1), (2, 0)]
    summary = await summary_over_http(client, home, publish_one_more(home, 3))
    assert summary.entries[first].disputed == {"platform-b": Voice("platform-b", 1, "benign")}


async def test_a_node_moved_to_another_platform_counts_there_in_the_next_summary(
    home: Path, client: Client
) -> None:
    """The fold counts a node's acks for its platform now: moving a node folds the
    kept positions again, so two disputes become one platform's voice."""
    first, _ = entry_ids(home)
    key_1, token_1 = enrol(home, "node-1", "platform-x")
    key_2, token_2 = enrol(home, "node-2", "platform-y")
    for key, node_id, token, seq, reason in (
        (key_1, "node-1", token_1, 1, "benign"),
        (key_2, "node-2", token_2, 2, "other"),
    ):
        status, answer = await post(
            client,
            token,
            *signed_ack(home, key, node_id, ENTRIES, seq, {first: Opinion("disputed", reason)}),
        )
        assert status == 200, answer
    before = await summary_over_http(client, home, publish_one_more(home, 3))
    assert set(before.entries[first].disputed) == {"platform-x", "platform-y"}
    assert before.entries[first].dispute is not None  # two platforms: the threshold

    with opened(home) as hub:
        hub.access.set_platform("node-2", "platform-x")
    after = await summary_over_http(client, home, publish_one_more(home, 4))
    [(platform, voice)] = after.entries[first].disputed.items()
    assert platform == "platform-x"
    assert voice.node in {"node-1", "node-2"}
    assert after.nodes["node-2"].platform == "platform-x"
    assert after.entries[first].dispute is None, "one platform now: below the threshold"
    acks = await stored_acks(client, home)
    positions = fold_positions(acks, after.nodes)
    assert {p: (v.node, v.seq) for p, v in positions[first].items()} == {
        "platform-x": (voice.node, voice.seq)
    }
