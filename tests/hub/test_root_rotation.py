"""Roots the hub makes: who signs them, how large the root role may be, what a rotation retires.

Everything runs on a real hub (``hashhub`` commands in process, SQLite, Ed25519 key
files) and is checked the way a node checks it: root v1 pinned by the SHA-256 that
``init`` printed, the root chain walked, every header and body verified.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.cli import main
from hub.core import Hub
from hub.intake import Intake
from protocol import (
    Publisher,
    Root,
    SignatureError,
    SignatureSidecar,
    header_path,
    root_path,
    sig_path,
)
from protocol.root import ROLE_NAMES
from tests.hub.node_view import NodeView, from_hub, trusted_hub

LIST = "tid-md5"


def md5(label: object) -> bytes:
    return hashlib.md5(str(label).encode(), usedforsecurity=False).digest()


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: int = 60) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def cli(home: Path, *args: str) -> str:
    result = CliRunner().invoke(main, [*args, "--home", str(home)])
    assert result.exit_code == 0, result.output
    return result.stdout


def init(home: Path, *args: str) -> str:
    """``hashhub init``; returns the root v1 SHA-256 it printed."""
    result = CliRunner().invoke(main, ["init", str(home), "--name", "hub.test", *args])
    assert result.exit_code == 0, result.output
    match = re.search(r"Root v1 SHA-256.*\n\s+([0-9a-f]{64})\n", result.stdout)
    assert match, result.stdout
    return match.group(1)


def root_signers(hub: Hub, version: int) -> set[str]:
    found = hub.files.get(sig_path(root_path(version)))
    assert found is not None
    return {s.keyid for s in SignatureSidecar.from_bytes(found[0]).signatures}


@pytest.mark.parametrize(("keys", "threshold"), [(20, 17), (32, 32)])
def test_the_largest_root_role_init_accepts_rotates_every_role(
    tmp_path: Path, keys: int, threshold: int
) -> None:
    """32 of 32 is the most ``hashhub init`` accepts; rotating it puts 64 root signatures
    in one sidecar, which the old 32-signature cap refused. Each root is signed by the
    old and the new root role only, never by an online key."""
    home = tmp_path / "hub"
    pinned = init(home, "--root-keys", str(keys), "--root-threshold", str(threshold))
    cli(home, "list", "create", LIST, "--type", "md5")
    version = 0
    for role in ("root", *ROLE_NAMES):  # the root role twice: new keys rotate again
        version += 1
        cli(home, "add", LIST, md5(version).hex())
        cli(home, "publish")
        assert f"Rotated the {role} role" in cli(home, "key", "rotate", role)
    cli(home, "add", LIST, md5("last").hex())
    cli(home, "publish")

    hub = Hub.open(home)
    try:
        newest = hub.keys.root()
        assert newest.version == 2 + len(ROLE_NAMES) + 1
        assert len(newest.roles["root"].keyids) == keys
        assert newest.roles["root"].threshold == threshold
        for n in range(2, newest.version + 1):
            old = hub_root(hub, n - 1).roles["root"].keyids
            new = hub_root(hub, n).roles["root"].keyids
            signers = root_signers(hub, n)
            assert signers <= set(old) | set(new), f"root v{n} carries another key's signature"
        assert len(root_signers(hub, 3)) == 2 * keys  # the first root rotation
        node = NodeView(from_hub(hub), pinned)
        state = node.update(LIST, now=datetime.now(UTC))
        assert state == hub.lists.state(LIST)
        assert len(state) == version + 1
    finally:
        hub.close()


def hub_root(hub: Hub, version: int) -> Root:
    found = hub.files.get(root_path(version))
    assert found is not None
    return Root.from_bytes(found[0])


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hub(tmp_path: Path, clock: Clock) -> Iterator[Hub]:
    hub = Hub.init(tmp_path / "hub", "hub.test", now=clock)
    hub.roots.create_list(LIST, "md5", label="tid", snapshot_every=3)
    yield hub
    hub.close()


def publish(hub: Hub, clock: Clock, *labels: str, list_id: str = LIST) -> int:
    hub.lists.stage(list_id, adds=[Intake(md5(label)) for label in labels])
    clock.advance()
    (result,) = hub.publishing.publish([list_id])
    return int(result.version)


def test_a_delta_rotation_retires_the_old_key_without_publishing_anything(
    hub: Hub, clock: Clock
) -> None:
    """After ``rotate_key("delta")`` the lists' last headers still name the old root, and
    nothing needs publishing: the rotation root's ``first_version`` is each list's next
    version, so the old key can sign nothing a node with the new root accepts, and every
    published version keeps verifying, through later roots that rotate nothing."""
    publish(hub, clock, "a")
    publish(hub, clock, "b")
    follower = NodeView(from_hub(hub), hub.keys.root_sha256())
    follower.update(LIST, now=clock())
    old_root = hub.keys.root()
    old_online = {r: hub.keys.signers(r) for r in ("delta", "checkpoint", "timestamp")}
    clock.advance()
    rotation = hub.roots.rotate_key("delta")
    assert rotation.lists[LIST].first_version == 3
    assert hub.lists.head(LIST).version == 2
    assert hub.files.get(header_path(LIST, 3)) is None  # nothing was published for it
    clock.advance()
    hub.roots.create_list("tid-sha256", "sha256")  # a root that rotates nothing
    hub.roots.rotate_key("checkpoint")  # nor does this one
    assert follower.update(LIST, now=clock()) == hub.lists.state(LIST)
    fresh = NodeView(from_hub(hub), hub.keys.root_sha256())
    assert fresh.update(LIST, now=clock()) == hub.lists.state(LIST)

    # The retired key signs v3 under the old root; the hub's current online keys sign a
    # checkpoint over it (the worst case: only the delta key was ever at fault).
    forged = Publisher(old_root, old_online)
    clock.advance()
    publication = forged.publish(hub.lists.head(LIST), adds=[md5("smuggled")], now=clock())
    checkpoint = Publisher(
        hub.keys.root(), {r: hub.keys.signers(r) for r in ("delta", "checkpoint", "timestamp")}
    ).refresh(publication.head, clock())
    files = {**publication.files, f"lists/{LIST}/checkpoint": checkpoint}
    honest = from_hub(hub)
    for node in (follower, fresh, NodeView(from_hub(hub), hub.keys.root_sha256())):
        node.fetch = lambda path: files.get(path) or honest(path)
        with pytest.raises(SignatureError, match=r"root v3 rotated the delta role .* ≥ 3"):
            node.update(LIST, now=clock())

    assert publish(hub, clock, "c") == 3
    for node in (follower, fresh):
        node.fetch = honest
        assert node.update(LIST, now=clock()) == hub.lists.state(LIST)
    trusted = trusted_hub(honest, pinned_sha256=hub.keys.root_sha256(), now=clock())
    assert trusted.root.version == 5
    assert follower.lists[LIST][1].root_version == 5
