"""python-threatexchange's own CLI, with the bridge as an extension, against the real hub.

The ``threatexchange`` console script runs in a subprocess with its state in the
test's directory (``HOME`` and ``TX_STATEDIR``), exactly as an operator runs it:
``config extensions add hashhub_tx``, ``config collab edit hashhub …``, ``fetch``,
``match photo``. The hub runs on loopback in this test's event loop; a hostile front
(a real proxy that flips a byte of every body) stands in for a tampering network.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from protocol import verify_ack
from protocol.ack import Ack
from protocol.keyfile import load_public_key
from tests.node.fixtures_sync import HUB_NAME, PDQ_DATA, HubApp
from tests.node.hostile import HostileServer, Tamper, flip_byte
from tests.txbridge.conftest import (
    BRIDGE_NODE,
    MD5_LIST,
    ORIGINAL,
    PDQ_LIST,
    Bridge,
    enrolled_home,
    pdq_of,
    unrelated_photos,
)

PROJECT = Path(__file__).resolve().parents[2]
THREATEXCHANGE = Path(sys.executable).parent / "threatexchange"
COLLAB = "hub-test"
CLI_TIMEOUT = 120.0


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


class TxCli:
    """The threatexchange CLI with its whole state under one directory."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.state = home / "tx-state"
        self.env = {
            **os.environ,
            "HOME": str(home),
            "TX_STATEDIR": str(self.state),
            # The bridge is importable from the source tree whether or not it is installed.
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(PROJECT), os.environ.get("PYTHONPATH", "")) if p
            ),
        }

    async def __call__(self, *args: str) -> Run:
        process = await asyncio.create_subprocess_exec(
            str(THREATEXCHANGE),
            *args,
            env=self.env,
            cwd=self.home,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        assert process.returncode is not None
        return Run(process.returncode, out.decode(), err.decode())

    async def ok(self, *args: str) -> str:
        run = await self(*args)
        assert run.returncode == 0, (args, run)
        return run.stdout

    def fetched_state(self) -> bytes:
        """The bytes of the CLI's stored records and checkpoint for the collaboration."""
        return (self.state / "fetched" / "hashhub" / f"{COLLAB}.state.pickle").read_bytes()


def where(url: str, hub: HubApp) -> list[str]:
    """The flags pytx requires on every edit of the collaboration (its required fields)."""
    return ["--hub-url", url, "--pinned-root-sha256", hub.pinned()]


def pdq_matches(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("pdq ")]


@pytest.mark.slow
async def test_threatexchange_cli_fetches_matches_and_follows_a_removal(
    tmp_path: Path, hub: HubApp, bridge: Bridge
) -> None:
    tx = TxCli(tmp_path)
    await tx.ok("config", "extensions", "add", "hashhub_tx")
    await tx.ok(
        "config", "collab", "edit", "hashhub", COLLAB, "--create",
        "--hub-url", hub.url,
        "--pinned-root-sha256", hub.pinned(),
        "--node-home", str(bridge.home),
    )  # fmt: skip
    assert f"hashhub {COLLAB}" in await tx.ok("config", "collab", "list")

    await tx.ok("fetch")
    original = await tx.ok("match", "photo", str(ORIGINAL))
    blurred = await tx.ok("match", "photo", str(PDQ_DATA / "bridge-mods" / "blur-a-little.jpg"))

    for found in (original, blurred):
        (line,) = pdq_matches(found)
        assert f"({COLLAB})" in line
        assert line.endswith(f"POSITIVE_CLASS {PDQ_LIST} {pdq_of(ORIGINAL).hex()}")
    dataset = await tx.ok(
        "dataset", "--print-signals", "--only-signals", "pdq", "--print-signals-only"
    )
    assert pdq_of(ORIGINAL).hex() in dataset.split()

    # The hub withdraws the hash; a tampering network in between serves a bad body.
    hub.publish(PDQ_LIST, removes=[pdq_of(ORIGINAL)])
    front = await HostileServer.proxy(hub.url).on("/body/", Tamper(flip_byte)).start()
    try:
        await tx.ok("config", "collab", "edit", "hashhub", COLLAB, *where(front.url, hub))
        before = tx.fetched_state()
        refused = await tx("fetch")
        assert refused.returncode != 0
        assert "failed to fetch" in refused.stderr
        assert front.count("/body/") >= 1
    finally:
        await front.close()
    assert tx.fetched_state() == before, "nothing of the rejected update was stored"
    assert pdq_matches(await tx.ok("match", "photo", str(ORIGINAL))), "still the old list"

    # From the hub itself the removal verifies and arrives as a tombstone.
    await tx.ok("config", "collab", "edit", "hashhub", COLLAB, *where(hub.url, hub))
    await tx.ok("fetch")
    assert pdq_matches(await tx.ok("match", "photo", str(ORIGINAL))) == []
    kept = unrelated_photos()[0]
    assert pdq_matches(await tx.ok("match", "photo", str(kept))), "the rest stays"
    dataset = await tx.ok(
        "dataset", "--print-signals", "--only-signals", "pdq", "--print-signals-only"
    )
    assert sorted(dataset.split()) == sorted(pdq_of(p).hex() for p in unrelated_photos())


async def create(tx: TxCli, hub: HubApp, bridge: Bridge, name: str = COLLAB) -> None:
    await tx.ok("config", "extensions", "add", "hashhub_tx")
    await tx.ok(
        "config", "collab", "edit", "hashhub", name, "--create",
        "--hub-url", hub.url,
        "--pinned-root-sha256", hub.pinned(),
        "--node-home", str(bridge.home),
    )  # fmt: skip


def verified_acks(hub: HubApp, bridge: Bridge) -> list[Ack]:
    """The bridge's acks the hub stored, each verified again with the node's public key."""
    key = load_public_key(bridge.home / "node.pub.pem")
    return [
        verify_ack(stored.bytes, stored.sig, node_key=key, origin_prefix=HUB_NAME)
        for stored in hub.acks(BRIDGE_NODE)
    ]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--pinned-root-sha256", "abc"], "'abc' is not a SHA-256: the pin is 64 lowercase hex"),
        (["--hub-url", "hub.example.org"], "'hub.example.org' is not an http(s) URL"),
        (["--hub-url", "https://hub.example.org/?x=1"], "has a query or fragment"),
        (["--list-ids", "ok,../etc"], "invalid list id"),
        (["--node-home", "no-such-home"], "'no-such-home' holds no node.toml"),
    ],
)
async def test_a_bad_collab_field_is_refused_when_given_and_nothing_is_stored(
    tmp_path: Path, hub: HubApp, flags: list[str], message: str
) -> None:
    tx = TxCli(tmp_path)
    await tx.ok("config", "extensions", "add", "hashhub_tx")
    good = {"--hub-url": hub.url, "--pinned-root-sha256": hub.pinned()}
    for flag, value in zip(flags[::2], flags[1::2], strict=True):
        good[flag] = value
    args = [part for pair in good.items() for part in pair]
    if "--list-ids" in flags or "--node-home" in flags:
        args += flags
    refused = await tx("config", "collab", "edit", "hashhub", "bad", "--create", *args)

    assert refused.returncode == 2
    assert message in refused.stderr
    assert "Traceback" not in refused.stderr
    assert "bad" not in await tx.ok("config", "collab", "list")


async def test_a_bad_stored_collab_is_reported_and_the_others_are_fetched(
    tmp_path: Path, hub: HubApp, bridge: Bridge
) -> None:
    tx = TxCli(tmp_path)
    await create(tx, hub, bridge)
    # A config written by another route than the CLI's checked flags.
    (tx.state / "collab_configs" / "bad.json").write_text(
        json.dumps(
            {"name": "bad", "api": "hashhub", "enabled": True, "hub_url": hub.url,
             "pinned_root_sha256": "abc"}
        )
    )  # fmt: skip
    assert "hashhub bad" in await tx.ok("config", "collab", "list")

    run = await tx("fetch")

    assert run.returncode == 3, run
    assert "Traceback" not in run.stderr
    assert re.search(r"E\] collab bad: 'abc' is not a SHA-256", run.stderr), run.stderr
    assert "[hashhub] bad - failed to fetch!" in run.stderr
    assert f"[hashhub] {COLLAB} - Up to date" in run.stderr
    assert pdq_matches(await tx.ok("match", "photo", str(ORIGINAL)))


async def test_a_failed_fetch_says_why_without_verbose(
    tmp_path: Path, hub: HubApp, bridge: Bridge
) -> None:
    tx = TxCli(tmp_path)
    await create(tx, hub, bridge)
    await hub.stop()
    try:
        run = await tx("fetch")
    finally:
        await hub.start()

    assert run.returncode == 3
    assert re.search(rf"E\] {COLLAB}: root: .*{re.escape(hub.url)}", run.stderr), run.stderr
    assert f"[hashhub] {COLLAB} - failed to fetch!" in run.stderr


async def test_disabling_a_collab_asks_for_nothing_else(
    tmp_path: Path, hub: HubApp, bridge: Bridge
) -> None:
    tx = TxCli(tmp_path)
    await create(tx, hub, bridge)

    await tx.ok("config", "collab", "edit", "hashhub", COLLAB, "--disable")

    stored = json.loads((tx.state / "collab_configs" / f"{COLLAB}.json").read_text())
    assert stored["enabled"] is False
    assert stored["hub_url"] == hub.url
    assert "All collabs are disabled" in (await tx("fetch")).stderr


async def test_the_token_lives_in_a_file_of_mode_0600_and_nowhere_else(
    tmp_path: Path, hub: HubApp, bridge: Bridge
) -> None:
    tx = TxCli(tmp_path)
    await create(tx, hub, bridge)
    token_file = bridge.home / "hub-token"
    token = token_file.read_text().strip()

    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((bridge.home / "node.key").stat().st_mode) == 0o600
    for path in tx.state.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path
    await tx.ok("fetch")
    for path in (bridge.home / "tx-bridge").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path

    token_file.chmod(0o644)
    run = await tx("fetch")
    assert run.returncode == 3
    assert "hub-token: permissions -rw-r--r-- too open; chmod 600" in run.stderr


async def test_a_fetch_and_a_label_reach_the_hub_as_verified_acks(
    tmp_path: Path, hub: HubApp, bridge: Bridge
) -> None:
    tx = TxCli(tmp_path)
    await create(tx, hub, bridge)
    assert hub.acks(BRIDGE_NODE) == []

    await tx.ok("fetch")

    acks = verified_acks(hub, bridge)
    assert sorted(a.list_id for a in acks) == sorted([MD5_LIST, PDQ_LIST])
    assert all(a.node == BRIDGE_NODE and a.applied.version == 1 for a in acks)
    assert all(a.counts.matched == 0 and a.counts.hashes == {} for a in acks)

    # A platform reviewed a match of the original and blocked the upload.
    original = pdq_of(ORIGINAL).hex()
    await tx.ok("label", "--as-hash", "pdq", "--labels", "blocked", COLLAB, "photo", "--", original)

    last = verified_acks(hub, bridge)[-1]
    assert last.list_id == PDQ_LIST
    assert last.seq == max(a.seq for a in acks) + 1
    assert (last.counts.matched, last.counts.blocked, last.counts.actioned) == (1, 1, 0)
    assert last.counts.hashes == {original: {"matched": 1, "blocked": 1}}

    # Then a false positive of the same hash; the counters are cumulative.
    await tx.ok("label", "-H", "pdq", "-l", "false_positive", COLLAB, "photo", "--", original)
    last = verified_acks(hub, bridge)[-1]
    assert (last.counts.matched, last.counts.blocked, last.counts.false_positive) == (2, 1, 1)
    assert last.counts.hashes == {original: {"matched": 2, "blocked": 1, "false_positive": 1}}

    # The hub withdraws the hash: a new version is acked with the totals kept.
    hub.publish(PDQ_LIST, removes=[pdq_of(ORIGINAL)])
    await tx.ok("fetch")
    last = verified_acks(hub, bridge)[-1]
    assert (last.list_id, last.applied.version) == (PDQ_LIST, 2)
    assert (last.counts.matched, last.counts.hashes) == (2, {})


async def test_a_label_the_hub_could_not_count_is_refused_with_its_reason(
    tmp_path: Path, hub: HubApp, bridge: Bridge
) -> None:
    tx = TxCli(tmp_path)
    await create(tx, hub, bridge)
    original = pdq_of(ORIGINAL).hex()

    def label(outcome: str) -> tuple[str, ...]:
        return ("label", "-H", "pdq", "-l", outcome, COLLAB, "photo", "--")

    before_fetch = await tx(*label("blocked"), original)
    assert before_fetch.returncode == 2
    assert "no pdq list of this collaboration has been fetched yet" in before_fetch.stderr

    await tx.ok("fetch")
    count = len(hub.acks(BRIDGE_NODE))
    unknown = await tx(*label("deleted"), original)
    assert unknown.returncode == 2
    assert "unknown label 'deleted': the outcome is one of actioned, blocked" in unknown.stderr
    foreign = await tx(*label("blocked"), "f" * 64)
    assert foreign.returncode == 2
    assert f"{'f' * 64} is in none of the lists fetched ({PDQ_LIST})" in foreign.stderr
    for run in (before_fetch, unknown, foreign):
        assert "Traceback" not in run.stderr
    assert len(hub.acks(BRIDGE_NODE)) == count, "nothing was counted or sent"


async def test_a_pytx_index_of_one_pdq_hash_matches_nothing_until_a_second_arrives(
    tmp_path: Path, hub: HubApp, bridge: Bridge
) -> None:
    """pytx's own bug, which the guide tells HMA and CLI users how to work around."""
    hub.create_list("one-pdq", "pdq")
    hub.publish("one-pdq", adds=[pdq_of(ORIGINAL)])
    home = enrolled_home(tmp_path / "one-node", hub, "tx-one", ["one-pdq"])
    tx = TxCli(tmp_path)
    await create(tx, hub, Bridge(hub, home))
    await tx.ok("config", "collab", "edit", "hashhub", COLLAB, "--list-ids", "one-pdq")
    await tx.ok("fetch")
    listed = await tx.ok(
        "dataset", "--print-signals", "--only-signals", "pdq", "--print-signals-only"
    )
    assert listed.split() == [pdq_of(ORIGINAL).hex()]

    assert pdq_matches(await tx.ok("match", "photo", str(ORIGINAL))) == []

    hub.publish("one-pdq", adds=[pdq_of(unrelated_photos()[0])])
    await tx.ok("fetch")
    assert pdq_matches(await tx.ok("match", "photo", str(ORIGINAL)))
