"""Video entries: a ``vpdq`` hash given as the video's frames, through the operator API.

A collection of a ``vpdq`` and an ``md5`` list on the real app on loopback, real
SQLite, real keys. An entry's video hash is its frames as hex (PROTOCOL.md §6.3);
the hub keeps them by their SHA-256, the record's hash, and publishes them as a
frames file before the body that names them. Every broken rule is a 400 that names
it, with nothing staged and no frames kept.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from hub.app import create_app
from hub.core import Hub
from hub.services.entries import EntryDraft, draft_from_json
from protocol import SigningKey, body_path, header_path
from protocol.contribution import ContributedHash
from protocol.keyfile import load_public_key
from protocol.layout import frames_path
from protocol.provenance import UpstreamOrigin
from protocol.video import MAX_FRAMES, Frame, encode_frames, read_frames_file
from tests.hub.conftest import NODE_ID as CONTRIBUTOR
from tests.hub.conftest import Client, bearer, md5, opened
from tests.hub.test_cli import Operator
from tests.hub.test_contributions import contribute, contribution
from tests.hub.test_following import (
    DOWNSTREAM,
    NODE_ID,
    UPSTREAM,
    audit_origin,
    follow,
    provenance_of,
    records,
)
from tests.hub.test_http import assert_error
from tests.web.hub_support import OperatorSession, operator_token

VIDEO_LIST, MD5_LIST = "clips-vpdq", "clips-md5"

STAGED_TABLES = ("entry_items", "entry_hashes", "entry_pending", "frames")


def frames_of(seed: int, count: int = 8, quality: int = 90) -> list[Frame]:
    """A video's frames as vPDQ gives them: one a second, PDQ hashes of about half
    their bits set (never degenerate)."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        bits = rng.sample(range(256), 128)
        pdq = sum(1 << b for b in bits).to_bytes(32, "big")
        out.append(Frame(millis=1000 * n, pdq=pdq, quality=quality))
    return out


@pytest.fixture
def video_home(hub_home: Path) -> Path:
    """The test hub with the collection ``clips``: a vpdq and an md5 entries list."""
    with opened(hub_home) as hub:
        hub.roots.create_list(VIDEO_LIST, "vpdq", label="clips", list_format="entries")
        hub.roots.create_list(MD5_LIST, "md5", label="clips", list_format="entries")
    return hub_home


def draft(video: str, n: object = 1) -> dict[str, Any]:
    return {
        "hashes": {VIDEO_LIST: video, MD5_LIST: md5(n).hex()},
        "category": "ncii",
        "classification": "confirmed",
        "source": "import:platform-a",
    }


async def post(client: Client, path: str, body: object, token: str) -> tuple[int, Any]:
    """POST ``body`` as JSON, streamed (a long video's frames are megabytes of hex)."""
    response = await client.post(
        path,
        data=io.BytesIO(json.dumps(body).encode()),
        headers=bearer(token) | {"Content-Type": "application/json"},
    )
    return response.status, await response.json()


def rows(home: Path) -> dict[str, int]:
    with opened(home) as hub:
        return {table: hub.db.table(table).count for table in STAGED_TABLES}


def file_order(hub: Hub, list_id: str) -> list[str]:
    """The list's published paths in the order the hub stored them."""
    return [
        str(r["path"])
        for r in hub.db.query(
            "SELECT path FROM files WHERE path LIKE ? ORDER BY rowid", [f"lists/{list_id}/%"]
        )
    ]


async def test_an_entry_with_frames_is_published_with_its_frames_file_first(
    client: Client, video_home: Path, role_tokens: dict[str, str]
) -> None:
    token = role_tokens["publisher"]
    data = encode_frames(frames_of(1))
    record = hashlib.sha256(data).digest()
    status, view = await post(client, "/v1/admin/entries", draft(data.hex()), token)
    assert status == 201, view
    video = next(item for item in view["lists"] if item["list"] == VIDEO_LIST)
    assert video == {
        "list": VIDEO_LIST,
        "hash": record.hex(),
        "frames": 8,
        "listed": False,
        "pending": True,
    }
    plain = next(item for item in view["lists"] if item["list"] == MD5_LIST)
    assert "frames" not in plain

    status, published = await post(client, "/v1/admin/publish", {"lists": [VIDEO_LIST]}, token)
    assert status == 200, published
    with opened(video_home) as hub:
        path = frames_path(VIDEO_LIST, record.hex())
        assert hub.files.get(path) == (data, True)  # immutable
        assert read_frames_file(record, data) == tuple(frames_of(1))
        order = file_order(hub, VIDEO_LIST)
        [body] = [p for p in order if p.startswith(body_path(VIDEO_LIST, "0" * 64)[:-68])]
        assert order.index(path) < order.index(body) < order.index(header_path(VIDEO_LIST, 1))
    response = await client.get(f"/v1/admin/entries?entry={view['entry']}", headers=bearer(token))
    [shown] = (await response.json())["entries"]
    video = next(item for item in shown["lists"] if item["list"] == VIDEO_LIST)
    assert (video["hash"], video["frames"], video["listed"]) == (record.hex(), 8, True)


async def test_a_video_held_is_listed_by_its_record_hash_and_shares_the_row(
    client: Client, video_home: Path, role_tokens: dict[str, str]
) -> None:
    token = role_tokens["publisher"]
    data = encode_frames(frames_of(2))
    record = hashlib.sha256(data).hexdigest()
    status, first = await post(client, "/v1/admin/entries", draft(data.hex(), 1), token)
    assert status == 201, first
    status, _ = await post(
        client, "/v1/admin/entries/retract", {"entry": first["entry"], "reason": "withdrawn"}, token
    )
    assert status == 200
    before = rows(video_home)
    # The same video again, by its record hash now that the hub holds the frames.
    status, again = await post(client, "/v1/admin/entries", draft(record, 2), token)
    assert status == 201, again
    after = rows(video_home)
    assert after["frames"] == before["frames"] == 1
    assert after["entry_items"] == before["entry_items"] + 1
    # And by its frames: still one row.
    status, _ = await post(
        client, "/v1/admin/entries/retract", {"entry": again["entry"], "reason": "withdrawn"}, token
    )
    assert status == 200
    status, third = await post(client, "/v1/admin/entries", draft(data.hex().upper(), 3), token)
    assert status == 201, third
    assert rows(video_home)["frames"] == 1
    with opened(video_home) as hub:
        assert hub.frames.get(bytes.fromhex(record)) == data


def _bad_quality() -> str:
    data = bytearray(encode_frames(frames_of(3, 2)))
    data[32] = 101  # the first frame's quality byte
    return data.hex()


def _backwards() -> str:
    a, b = frames_of(4, 2)
    return (b.to_bytes() + Frame(0, a.pdq, a.quality).to_bytes()).hex()


REFUSALS = {
    "non-hex": ("zz" * 37, "is not hex"),
    "odd length": (encode_frames(frames_of(5, 1)).hex()[:-1], "odd number"),
    "not a whole frame": (
        encode_frames(frames_of(6, 2)).hex()[:-2],
        "not a whole number of frames",
    ),
    "quality over 100": (_bad_quality(), "quality is 0 to 100"),
    "times not ascending": (_backwards(), "is not after the one before"),
    "empty": ("", "it is empty"),
    "record hash without frames": (hashlib.sha256(b"unheld").hexdigest(), "holds no frames for"),
    "no good frame": (encode_frames(frames_of(7, 4, quality=49)).hex(), "could never match"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
async def test_every_broken_rule_is_a_400_naming_it_and_nothing_is_staged(
    client: Client, video_home: Path, role_tokens: dict[str, str], case: str
) -> None:
    text, rule = REFUSALS[case]
    before = rows(video_home)
    status, body = await post(client, "/v1/admin/entries", draft(text), role_tokens["publisher"])
    assert_error(status, body, 400)
    assert rule in body["error"]["message"], body
    assert VIDEO_LIST in body["error"]["message"]
    assert rows(video_home) == before


async def test_the_longest_video_is_let_in_and_one_frame_more_is_refused(
    client: Client, video_home: Path, role_tokens: dict[str, str]
) -> None:
    token = role_tokens["publisher"]
    frame = frames_of(8, 1)[0]
    longest = b"".join(Frame(n, frame.pdq, 90).to_bytes() for n in range(MAX_FRAMES + 1))
    before = rows(video_home)
    status, body = await post(client, "/v1/admin/entries", draft(longest.hex()), token)
    assert_error(status, body, 400)
    assert f"{MAX_FRAMES + 1} frames, above the cap of {MAX_FRAMES}" in body["error"]["message"]
    assert rows(video_home) == before
    within = longest[: -len(frame.to_bytes())]
    status, view = await post(client, "/v1/admin/entries", draft(within.hex()), token)
    assert status == 201, view
    video = next(item for item in view["lists"] if item["list"] == VIDEO_LIST)
    assert video["frames"] == MAX_FRAMES
    assert video["hash"] == hashlib.sha256(within).hexdigest()


async def test_an_import_carries_frames_all_or_nothing(
    client: Client, video_home: Path, role_tokens: dict[str, str]
) -> None:
    token = role_tokens["publisher"]
    good = encode_frames(frames_of(9)).hex()
    lines = [json.dumps(draft(good, 1)), json.dumps(draft("ab", 2))]
    before = rows(video_home)
    response = await client.post(
        "/v1/admin/entries/import", data="\n".join(lines).encode(), headers=bearer(token)
    )
    body = await response.json()
    assert_error(response.status, body, 400)
    assert body["error"]["message"].startswith("entry 2: list clips-vpdq:"), body
    assert rows(video_home) == before
    response = await client.post(
        "/v1/admin/entries/import", data=lines[0].encode(), headers=bearer(token)
    )
    assert response.status == 200, await response.text()
    assert rows(video_home)["frames"] == before["frames"] + 1


def test_frames_outlast_a_restart(video_home: Path) -> None:
    data = encode_frames(frames_of(10))
    with opened(video_home) as hub:
        hub.entries.add(draft_from_json(draft(data.hex())))
    with opened(video_home) as hub:
        record = hashlib.sha256(data).digest()
        assert hub.frames.get(record) == data
        [view] = hub.entries.listed(VIDEO_LIST)
        item = next(i for i in view.lists if i["list"] == VIDEO_LIST)
        assert item["frames"] == 8
        hub.publishing.publish([VIDEO_LIST])
        assert hub.files.get(frames_path(VIDEO_LIST, record.hex())) == (data, True)


UP_VIDEO, UP_MD5 = "helpline-vpdq", "helpline-md5"
DOWN_VIDEO, DOWN_MD5 = "regional-vpdq", "regional-md5"


def video_hub(home: Path, name: str, lists: tuple[str, str], label: str) -> str:
    """A hub with one collection of a vpdq and an md5 entries list; its root v1 SHA-256."""
    hub = Hub.init(
        home, name, root_keys=1, root_threshold=1, publish_interval=0, timestamp_interval=0
    )
    try:
        hub.roots.create_list(lists[0], "vpdq", label=label, list_format="entries")
        hub.roots.create_list(lists[1], "md5", label=label, list_format="entries")
        return hub.keys.root_sha256(1)
    finally:
        hub.close()


async def test_an_upstream_video_entry_is_re_published_with_its_frames(tmp_path: Path) -> None:
    up_home, down_home = tmp_path / "helpline", tmp_path / "regional"
    up_pin = video_hub(up_home, UPSTREAM, (UP_VIDEO, UP_MD5), "clips")
    down_pin = video_hub(down_home, DOWNSTREAM, (DOWN_VIDEO, DOWN_MD5), "regional")
    data = encode_frames(frames_of(11))
    record = hashlib.sha256(data).hexdigest()
    with opened(up_home) as hub:
        hub.entries.add(
            EntryDraft(
                ((UP_VIDEO, data.hex()), (UP_MD5, md5(11).hex())),
                category="ncii",
                classification="confirmed",
                source="import:batch-1",
            )
        )
        hub.publishing.publish()
    server = TestServer(create_app(up_home, schedule=False), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        with opened(down_home) as hub:
            hub.roots.declare_upstream(UPSTREAM, str(server.make_url("")).rstrip("/"), up_pin)
            public = hub.upstreams.follow(UPSTREAM, NODE_ID, [UP_VIDEO, UP_MD5])
        with opened(up_home) as hub:
            token = hub.access.enrol_node(NODE_ID, load_public_key(public), [UP_VIDEO, UP_MD5])
        with opened(down_home) as hub:
            hub.upstreams.set_token(UPSTREAM, token)
            hub.upstreams.select(UPSTREAM, UP_VIDEO, DOWN_VIDEO)
            hub.upstreams.select(UPSTREAM, UP_MD5, DOWN_MD5)
        report = await follow(down_home)
    finally:
        await server.close()

    assert report.problems == []
    assert report.carried is not None
    assert len(report.carried.added) == 1
    assert sorted((r.list, r.version, r.adds) for r in report.published) == [
        (DOWN_MD5, 1, 1),
        (DOWN_VIDEO, 1, 1),
    ]
    # A node of the downstream holds the video's record, carried from the upstream...
    held = records(down_home, down_pin, DOWN_VIDEO)
    assert set(held) == {record}
    assert held[record].source == f"hub:{UPSTREAM}"
    doc = provenance_of(down_home, down_pin, DOWN_VIDEO, 1)
    (origin,) = doc.origins.values()
    assert isinstance(origin, UpstreamOrigin)
    assert origin.list_id == UP_VIDEO
    audit_origin(up_home, origin)
    # ...and the frames file beside it, the upstream's bytes, which the record names.
    with opened(down_home) as hub:
        got = hub.files.get(frames_path(DOWN_VIDEO, record))
        assert got is not None
        assert read_frames_file(bytes.fromhex(record), got[0]) == tuple(frames_of(11))
        [view] = hub.entries.listed(DOWN_VIDEO)
        item = next(i for i in view.lists if i["list"] == DOWN_VIDEO)
        assert (item["hash"], item["frames"]) == (record, 8)


async def test_a_member_contributes_a_video_only_once_the_hub_holds_its_frames(
    client: Client,
    video_home: Path,
    node_token: str,
    node_key: SigningKey,
    role_tokens: dict[str, str],
) -> None:
    data = encode_frames(frames_of(12))
    record = hashlib.sha256(data).hexdigest()
    hashes = {"vpdq": ContributedHash(record), "md5": ContributedHash(md5(12).hex())}
    status, _, body = await contribute(client, node_token, node_key, contribution(1, hashes=hashes))
    assert_error(status, body, 422)
    assert "(UnknownFrames)" in body["error"]["message"]
    assert record in body["error"]["message"]
    assert rows(video_home)["frames"] == 0
    with opened(video_home) as hub:
        assert hub.db.table("contributions").count == 0

    # The hub lists the video (another entry, since retracted): now it holds the frames.
    token = role_tokens["publisher"]
    status, listed = await post(client, "/v1/admin/entries", draft(data.hex(), 99), token)
    assert status == 201, listed
    status, _ = await post(
        client,
        "/v1/admin/entries/retract",
        {"entry": listed["entry"], "reason": "withdrawn"},
        token,
    )
    assert status == 200
    status, _, body = await contribute(client, node_token, node_key, contribution(2, hashes=hashes))
    assert status == 200, body
    response = await client.post(
        f"/v1/admin/contributions/{CONTRIBUTOR}/2",
        json={"decision": "accept", "list": VIDEO_LIST},
        headers=bearer(token),
    )
    decided = await response.json()
    assert response.status == 200, decided
    status, shown = await post(client, "/v1/admin/publish", {"lists": [VIDEO_LIST]}, token)
    assert status == 200, shown
    with opened(video_home) as hub:
        view = hub.entries.show(decided["entry"])
        assert view.source == f"member:{CONTRIBUTOR}"
        item = next(i for i in view.lists if i["list"] == VIDEO_LIST)
        assert (item["hash"], item["frames"], item["listed"]) == (record, 8, True)
        assert hub.files.get(frames_path(VIDEO_LIST, record)) == (data, True)


async def test_the_dashboard_shows_a_video_as_its_frame_count_not_its_frames(
    client: Client, video_home: Path, role_tokens: dict[str, str]
) -> None:
    data = encode_frames(frames_of(13, 5))
    status, view = await post(
        client, "/v1/admin/entries", draft(data.hex()), role_tokens["publisher"]
    )
    assert status == 201, view
    await OperatorSession.login(client, operator_token(video_home, "viewer"))
    response = await client.get("/dashboard/entries")
    page = await response.text()
    assert response.status == 200, page
    row = page[page.index(f'id="entry-{view["entry"]}"') :]
    row = row[: row.index("</tr>")]
    assert '<span class="hint frames">5 frames</span>' in row
    assert row.count("frames</span>") == 1  # the md5 list has none
    assert data.hex() not in page


def test_the_cli_lists_a_video_from_its_frames_file_and_shows_its_frame_count(
    video_home: Path, tmp_path: Path
) -> None:
    op = Operator(video_home)
    data = encode_frames(frames_of(14, 6))
    record = hashlib.sha256(data).hexdigest()
    frames_file = tmp_path / "video.bin"
    frames_file.write_bytes(data)
    metadata = ("--category", "ncii", "--classification", "confirmed", "--source", "import")
    out = op.ok(
        "entry", "add", "--list", VIDEO_LIST, "--hash", f"@{frames_file}",
        "--list", MD5_LIST, "--hash", md5(14).hex(), *metadata, "--json",
    )  # fmt: skip
    entry = json.loads(out)["entry"]
    shown = op.ok("entry", "show", entry)
    assert f"{VIDEO_LIST}  {record} (6 frames)  not listed" in shown
    assert data.hex() not in shown
    assert f"{record} (6 frames)" in op.ok("entry", "list", "--list", VIDEO_LIST)

    # An import line carries the frames as hex; a broken one stages nothing.
    before = rows(video_home)
    lines = tmp_path / "entries.ndjson"
    lines.write_text(json.dumps(draft(data.hex()[:-2], 15)) + "\n")
    failed = op.run("entry", "import", str(lines))
    assert failed.exit_code == 1
    assert "not a whole number of frames" in failed.output
    assert "nothing was staged" in failed.output
    assert rows(video_home) == before
    missing = op.run("entry", "add", "--list", VIDEO_LIST, "--hash", "@/nonexistent.bin", *metadata)
    assert missing.exit_code == 2
    assert "No such file" in missing.output
