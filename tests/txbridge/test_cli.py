"""python-threatexchange's own CLI, with the bridge as an extension, against the real hub.

The ``threatexchange`` console script runs in a subprocess with its state in the
test's directory (``HOME`` and ``TX_STATEDIR``), exactly as an operator runs it:
``config extensions add hashhub_tx``, ``config collab edit hashhub …``, ``fetch``,
``match photo``. The hub runs on loopback in this test's event loop; a hostile front
(a real proxy that flips a byte of every body) stands in for a tampering network.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.node.fixtures_sync import PDQ_DATA, HubApp
from tests.node.hostile import HostileServer, Tamper, flip_byte
from tests.txbridge.conftest import (
    ORIGINAL,
    PDQ_LIST,
    Bridge,
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
        "--token", bridge.token,
    )  # fmt: skip
    assert f"hashhub {COLLAB}" in await tx.ok("config", "collab", "list")

    await tx.ok("fetch")
    original = await tx.ok("match", "photo", str(ORIGINAL))
    blurred = await tx.ok("match", "photo", str(PDQ_DATA / "bridge-mods" / "blur-a-little.jpg"))

    for found in (original, blurred):
        (line,) = pdq_matches(found)
        assert f"({COLLAB})" in line
        assert line.endswith(f"POSITIVE_CLASS {PDQ_LIST}")
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
