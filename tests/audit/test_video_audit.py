"""The auditor over a list of videos (``vpdq``): every frames file held to its record.

A real hub lists videos by their frames (``hub.frames.put``, then an entry whose
``vpdq`` hash is the frames' SHA-256) and publishes four versions: two videos added,
one's metadata changed, the other withdrawn, then listed again beside a third. The
auditor reads the exported tree (and the hub over HTTP) from the pinned root v1
and reads each distinct frames file once: three videos, three files, although five
records were added. Copies of the tree with one frames file deleted, replaced,
truncated or padded past the cap fail, each finding naming the file and the list,
version and entry whose record promised it. A frames file that hashes to its
record but breaks the encoding cannot be made by tampering with a copy: a
publisher that skips its own check signs such a record, and the audit fails it.
"""

from __future__ import annotations

import hashlib
import random
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from audit.source import FolderSource
from audit.verify import Pin, verify_tree
from hub.app import create_app
from hub.core import Hub
from hub.services.entries import EntryDraft
from protocol import (
    EntriesBody,
    Entry,
    ListHead,
    ListSpec,
    Policy,
    Publisher,
    Role,
    Root,
    SigningKey,
    Vocabulary,
    frames_path,
    root_files,
)
from protocol.video import MAX_FRAMES_BYTES, Frame, encode_frames
from tests.audit.support import Outcome, audit, audit_async, base_url, export, pin_of

VIDEOS, PHOTOS = "ncii-vpdq", "other-md5"
EXIT_FAILED = 3

Client = TestClient[web.Request, web.Application]


def frames_of(seed: int, count: int) -> list[Frame]:
    """A video's frames: ``count`` seconds of random PDQ hashes (seeded), good quality."""
    rng = random.Random(seed)
    return [Frame(n * 1000, rng.randbytes(32), 90) for n in range(count)]


@dataclass(frozen=True)
class Listed:
    """The hub that listed the videos, its exported tree, and who listed what."""

    home: Path
    tree: Path
    pin: str
    videos: dict[str, bytes]
    """Each video's frames file, by name (``a``, ``b``, ``c``)."""
    entries: dict[str, str]
    """The entry id of the first record of each video, by name."""
    again: str
    """The entry id of ``b`` listed again at v4."""

    def path(self, video: str) -> str:
        return frames_path(VIDEOS, hashlib.sha256(self.videos[video]).hexdigest())

    def copy(self, into: Path) -> Path:
        return Path(shutil.copytree(self.tree, into / "tree"))


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> Listed:
    """v1: a and b; v2: a's classification changed; v3: b withdrawn; v4: b again and c.

    A photo list of another collection is beside it, which has no frames to check.
    """
    base = tmp_path_factory.mktemp("video-hub")
    home = base / "hub"
    hub = Hub.init(home, "videos.test", publish_interval=0, timestamp_interval=0)
    try:
        hub.roots.create_list(VIDEOS, "vpdq", label="ncii", list_format="entries", snapshot_every=2)
        hub.roots.create_list(PHOTOS, "md5", label="other", list_format="entries")
        videos = {
            name: encode_frames(frames_of(seed, count))
            for name, seed, count in (("a", 1, 3), ("b", 2, 4), ("c", 3, 5))
        }
        records = {name: hub.frames.put(data) for name, data in videos.items()}
        assert records == {name: hashlib.sha256(d).digest() for name, d in videos.items()}

        def add(list_id: str, h: bytes) -> str:
            draft = EntryDraft(((list_id, h.hex()),), "ncii", "confirmed", "submission")
            return hub.entries.add(draft).entry

        entries = {name: add(VIDEOS, records[name]) for name in ("a", "b")}
        add(PHOTOS, hashlib.md5(b"a photo", usedforsecurity=False).digest())
        hub.publishing.publish()
        hub.entries.change(entries["a"], classification="severe")
        hub.publishing.publish([VIDEOS])
        hub.entries.retract(entries["b"], "withdrawn")
        hub.publishing.publish([VIDEOS])
        again = add(VIDEOS, records["b"])
        entries["c"] = add(VIDEOS, records["c"])
        published = hub.publishing.publish([VIDEOS])
        assert [(p.version, p.adds, p.count) for p in published] == [(4, 2, 3)]
    finally:
        hub.close()
    tree = export(home, base / "tree")
    return Listed(home, tree, pin_of(home), videos, entries, again)


def verify(tree: Path, pin: str, witness: Path, *args: str) -> Outcome:
    return audit(
        "verify", tree, "--root-sha256", pin, "--witness", witness, "--json", *args
    )  # fmt: skip


def by_list(out: Outcome) -> dict[str, dict[str, Any]]:
    return {lst["list"]: lst for lst in out.json()["lists"]}


def test_each_video_s_frames_file_is_read_once_and_counted(listed: Listed, tmp_path: Path) -> None:
    out = verify(listed.tree, listed.pin, tmp_path / "witness.json")
    assert out.code == 0, out.stdout
    lists = by_list(out)
    assert lists[VIDEOS]["status"] == "verified"
    assert [(v["adds"], v["removes"]) for v in lists[VIDEOS]["versions"]] == [
        (2, 0),
        (1, 1),
        (0, 1),
        (2, 0),
    ]
    assert lists[VIDEOS]["frames_checked"] == 3, "five records, three videos"
    assert lists[VIDEOS]["snapshots_checked"] == [2, 4]
    assert lists[PHOTOS]["status"] == "verified"
    assert lists[PHOTOS]["frames_checked"] is None

    text = audit("verify", listed.tree, "--root-sha256", listed.pin, "--witness",
                 tmp_path / "text-witness.json")  # fmt: skip
    assert text.code == 0, text.stdout
    (line,) = [ln for ln in text.stdout.splitlines() if "frames:" in ln]
    assert line == "  frames: 3 file(s) checked"


def test_no_frames_file_is_read_twice(listed: Listed) -> None:
    read: list[str] = []

    class Reading(FolderSource):
        """The exported tree, noting every path the audit reads."""

        def get(self, path: str, cap: int) -> bytes | None:
            read.append(path)
            return super().get(path, cap)

    report = verify_tree(Reading(listed.tree), pin=Pin(sha256=listed.pin), now=datetime.now(UTC))
    assert not report.all_findings(), [f.line() for f in report.all_findings()]
    frames_read = [p for p in read if "/frames/" in p]
    assert sorted(frames_read) == sorted(listed.path(v) for v in ("a", "b", "c"))


@pytest.fixture
async def served(listed: Listed) -> AsyncIterator[tuple[Client, str]]:
    """The hub that listed the videos on loopback, and an auditor's token for it."""
    hub = Hub.open(listed.home)
    try:
        token = hub.access.create_operator_token("auditor", "video audit")
    finally:
        hub.close()
    app = create_app(listed.home, schedule=False)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        yield client, token


async def test_the_hub_serves_every_frames_file_the_audit_reads(
    served: tuple[Client, str], listed: Listed, tmp_path: Path
) -> None:
    client, token = served
    out = await audit_async(
        "verify", base_url(client), "--root-sha256", listed.pin, "--witness",
        tmp_path / "witness.json", "--json", "--list", VIDEOS,
        env={"HASHHUB_AUDIT_TOKEN": token},
    )  # fmt: skip
    assert out.code == 0, out.stdout
    (videos,) = out.json()["lists"]
    assert (videos["status"], videos["frames_checked"]) == ("verified", 3)


@dataclass(frozen=True)
class Tamper:
    """One change to a copy of the tree, and the finding it must cause."""

    video: str
    change: Callable[[Listed, Path], None]
    rule: str
    section: str


def _delete(listed: Listed, file: Path) -> None:
    file.unlink()


def _other_video(listed: Listed, file: Path) -> None:
    file.write_bytes(listed.videos["b"])


def _truncated(listed: Listed, file: Path) -> None:
    file.write_bytes(file.read_bytes()[:-1])


def _over_the_cap(listed: Listed, file: Path) -> None:
    file.write_bytes(b"\0" * (MAX_FRAMES_BYTES + 1))


TAMPERS = {
    "deleted": Tamper("a", _delete, "MissingFileError", "PROTOCOL.md §11.1"),
    "another video's frames": Tamper("c", _other_video, "ConsistencyError", "PROTOCOL.md §6.3"),
    "truncated": Tamper("a", _truncated, "ConsistencyError", "PROTOCOL.md §6.3"),
    "over the cap": Tamper("b", _over_the_cap, "LimitError", "PROTOCOL.md §6.3"),
}


@pytest.mark.parametrize("name", list(TAMPERS))
def test_a_tampered_frames_file_fails_the_audit_naming_it(
    listed: Listed, tmp_path: Path, name: str
) -> None:
    tamper = TAMPERS[name]
    tree = listed.copy(tmp_path)
    path = listed.path(tamper.video)
    tamper.change(listed, tree / path)

    out = verify(tree, listed.pin, tmp_path / "witness.json")
    assert out.code == EXIT_FAILED, out.stdout
    lists = by_list(out)
    assert lists[VIDEOS]["status"] == "failed"
    assert lists[PHOTOS]["status"] == "verified", "another list goes on"
    (finding,) = lists[VIDEOS]["findings"]
    assert (finding["file"], finding["rule"], finding["section"]) == (
        path,
        tamper.rule,
        tamper.section,
    )
    assert finding["location"] == str(tree / path)
    # The first version whose record names the file: b's is v1's, although v4 adds
    # b again; c is first added at v4.
    version = 4 if tamper.video == "c" else 1
    promised = f"list {VIDEOS} v{version} entry {listed.entries[tamper.video]}"
    assert promised in finding["message"], finding["message"]

    text = audit("verify", tree, "--root-sha256", listed.pin, "--witness",
                 tmp_path / "text-witness.json")  # fmt: skip
    assert text.code == EXIT_FAILED
    assert f"  {tree / path}: {tamper.rule} ({tamper.section}): " in text.stdout
    assert text.stdout.rstrip().endswith("result: FAILED (1 failed check)")


class UncheckedFrames(Publisher):
    """A publisher that publishes whatever frames it is given, as a broken hub would:
    the one way to sign a record whose frames hash right and break the encoding."""

    def _frames_files(self, list_id: str, body: EntriesBody, frames: Any) -> dict[str, bytes]:
        return {frames_path(list_id, e.hash.hex()): frames[e.hash] for e in body.adds}


def test_a_signed_record_whose_frames_break_the_encoding_fails(tmp_path: Path) -> None:
    key = SigningKey.generate()
    now = datetime.now(UTC).replace(microsecond=0)
    root = Root(
        version=1,
        name="videos.example",
        expires=now + timedelta(days=365),
        keys={key.keyid: key.public},
        roles={r: Role((key.keyid,), 1) for r in ("root", "delta", "checkpoint", "timestamp")},
        lists={VIDEOS: ListSpec(VIDEOS, "vpdq", 0, label="ncii", format="entries")},
        policy=Policy(),
        vocabulary=Vocabulary(("ncii",), ("confirmed",), ("submission",)),
    )
    publisher = UncheckedFrames(root, {r: [key] for r in ("delta", "checkpoint", "timestamp")})
    good = encode_frames(frames_of(4, 3))
    # Each frame is well formed; the second is shown before the first (§6.3 rule 5).
    early, late = frames_of(5, 2)
    backwards = late.to_bytes() + early.to_bytes()
    records = [hashlib.sha256(d).digest() for d in (good, backwards)]
    entries = [
        Entry(h, f"e-{n}", "ncii", "confirmed", "submission", None, now)
        for n, h in enumerate(records)
    ]
    made = publisher.publish_entries(
        ListHead.empty_entries(root, VIDEOS),
        adds=entries,
        now=now,
        frames=dict(zip(records, (good, backwards), strict=True)),
    )
    files = {**root_files(root, [key]), **made.files}
    files[f"lists/{VIDEOS}/checkpoint"] = publisher.refresh(made.head, now)
    for path, data in files.items():
        (tmp_path / "tree" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "tree" / path).write_bytes(data)
    tree = tmp_path / "tree"

    out = audit("verify", tree, "--root", tree / "root/1.json", "--witness",
                tmp_path / "witness.json", "--json")  # fmt: skip
    assert out.code == EXIT_FAILED, out.stdout
    (videos,) = out.json()["lists"]
    (finding,) = videos["findings"]
    path = frames_path(VIDEOS, records[1].hex())
    assert (finding["file"], finding["rule"], finding["section"]) == (
        path,
        "MalformedError",
        "PROTOCOL.md §6.3",
    )
    assert finding["message"].startswith(f"list {VIDEOS} v1 entry e-1: frames: frame 1 at ")
    assert "not after the one before" in finding["message"]
    # A body lists its records by hash, so the good video's file is read first or not
    # at all: the count is of the files that held.
    assert videos["frames_checked"] == (1 if records[0] < records[1] else 0)
