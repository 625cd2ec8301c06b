"""Load and soak: many simulated nodes against one real hub, and an exact count of the acks.

A real ``hashhub serve`` runs as a process of its own (so the clients do not share
its event loop, and its resident memory can be read). Every simulated node is
enrolled through the operator API with its own Ed25519 key and bearer token, and
runs its own aiohttp session (one keep-alive connection, as a platform's node
would): it walks the root once, then polls its lists' checkpoints with
conditional GETs (``If-None-Match``) every ``min_poll_interval`` of the root's
policy plus jitter. When a checkpoint moves it does what a node does through
``protocol``'s trust rules: both checkpoint signature lines, every missing header
and its signature (chained, Merkle root reproduced), every body (length and
SHA-256, strict parse), the apply in memory with the result digest compared to
the signed one; then it posts one signed ack for the version it now holds. The
node's own database and matcher are not run: the figures are about the hub.

Acks carry cumulative counters derived from the node's index and the version, so
the hub's totals can be checked exactly, and per-hash counters for one hash the
delta added. Retries reuse ``seq``: every node deliberately re-sends some acks
(the one just confirmed, and the previous one, whose counters are lower: a hub
that counted it again would see a counter reset and inflate its totals). Each
re-send must be answered ``duplicate``.

Meanwhile an operator stages and publishes a new version of one list every few
seconds through the operator API, so there are deltas to fetch.

Afterwards the run is checked (``LoadResult.problems``): no request failed
(every answer had the expected status; a connection error or a timeout is a
failure too), the acks the hub stored (read from its SQLite file once it has
stopped) are exactly the acks it confirmed, each once and byte for byte, no
evidence was recorded, and the per-list and per-hash totals the operator API
reports equal what the clients sent. Latencies (p50/p99/max per kind of
request), the request rate, the hub's resident memory sampled every 10 s and its
growth are reported, not asserted.

Latencies are measured in the clients' process, so they include any wait for its
event loop; the loop's own lag is reported beside them, and so is the hub's own
time for each kind of request, read from its access log.

Run: ``python bench/load_bench.py [--nodes 500] [--seconds 600] [--json] [--json-out FILE]``
(``--quick``: 60 s). Without ``--json`` the exit status is 1 when a check failed;
with it, the failed checks are in the document's ``problems``.
``tests/reliability/test_load.py`` runs the same driver for 60 s.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import platform
import random
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from hub.core import Hub, utcnow
from hub.intake import Intake
from protocol import (
    AppliedVersion,
    Counts,
    ListState,
    ListTrust,
    ProtocolError,
    SigningKey,
    TrustedHub,
    body_path,
    checkpoint_path,
    header_path,
    root_path,
    sig_path,
    sign_ack,
)

__all__ = [
    "KINDS",
    "LISTS",
    "LoadConfig",
    "LoadResult",
    "counts_for",
    "main",
    "run_load",
    "stored_acks",
]

HUB_NAME = "load.hub.invalid"
LISTS: dict[str, tuple[str, int]] = {"load-md5": ("md5", 16), "load-sha256": ("sha256", 32)}
"""The private lists: every node reads the first, every other node the second too."""
KINDS = ("root", "checkpoint", "delta", "body", "ack", "enrol", "stage", "publish")
"""Kinds of request, in the order the tables show them."""
SIGNATURE_HEADER = "Hashhub-Signature"
ERRORS_KEPT = 50


@dataclass(frozen=True)
class LoadConfig:
    """One run's shape. Intervals are seconds.

    Attributes:
        nodes: simulated nodes, each enrolled with its own key and token.
        seconds: how long the nodes poll and the operator publishes.
        poll_interval: the root policy's ``min_poll_interval`` (whole seconds, ≥ 1);
            each node waits that long plus up to ``poll_jitter`` between polls.
        poll_jitter: the random part of each wait.
        publish_every: the operator publishes one list (the lists in turn) this often.
        adds_per_publish / removes_per_publish: the changes in each version.
        initial_hashes: each list's version 1.
        start_spread: nodes start at random times within this many seconds (each
            verifies the root chain once when it starts: a burst of 500 at one
            instant would measure the clients' start, not the hub).
        rss_every: how often the hub's resident memory is sampled.
        request_timeout: a request without a complete answer by then is a failure.
        seed: makes jitter, hashes and resends repeatable.
    """

    nodes: int = 500
    seconds: float = 60.0
    poll_interval: int = 1
    poll_jitter: float = 1.0
    publish_every: float = 3.0
    adds_per_publish: int = 40
    removes_per_publish: int = 4
    initial_hashes: int = 200
    start_spread: float = 5.0
    rss_every: float = 10.0
    request_timeout: float = 30.0
    seed: int = 9

    def __post_init__(self) -> None:
        if self.nodes < 1 or self.seconds <= 0 or self.poll_interval < 1:
            raise ValueError("nodes ≥ 1, seconds > 0 and poll_interval ≥ 1 s")
        if self.removes_per_publish > self.initial_hashes:
            raise ValueError("cannot remove more hashes than a list starts with")


def counts_for(node: int, version: int, before: Counts, added: bytes | None) -> Counts:
    """The cumulative counters node ``node`` reports after applying ``version``.

    Each step adds amounts that depend on the node and the version, so every
    node's totals differ and the hub's sums can be checked exactly. ``added``
    (a hash the version added) gets per-hash counters of its own.
    """
    hashes: dict[str, dict[str, int]] = {}
    if added is not None:
        hashes[added.hex()] = {"matched": 1 + (node + version) % 4, "actioned": node % 2}
    return Counts(
        checked=before.checked + 97 + (node % 13) * 3 + version,
        matched=before.matched + (node + version) % 7,
        actioned=before.actioned + (node * version) % 3,
        blocked=before.blocked + (node + 2 * version) % 4,
        false_positive=before.false_positive + (1 if (node + version) % 11 == 0 else 0),
        hashes=hashes,
    )


# -- what the clients saw -----------------------------------------------------------------


@dataclass
class Ledger:
    """Everything the clients observed: latencies, answers, failures and confirmed acks."""

    latencies: dict[str, array[float]] = field(
        default_factory=lambda: {kind: array("d") for kind in KINDS}
    )
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    confirmed: dict[tuple[str, int], str] = field(default_factory=dict)
    """(node, seq) → SHA-256 of the bytes of each ack the hub confirmed (answered 200)."""
    last_counts: dict[tuple[str, str], Counts] = field(default_factory=dict)
    """(node, list) → the counters of that node's last confirmed ack for the list."""
    hash_counts: dict[tuple[str, str, str], Mapping[str, int]] = field(default_factory=dict)
    """(node, list, hex hash) → the last per-hash counters confirmed for it."""
    resends: int = 0
    resends_duplicate: int = 0
    updates: int = 0
    not_modified: int = 0
    loop_lag: array[float] = field(default_factory=lambda: array("d"))

    def failed(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < ERRORS_KEPT:
            self.error_samples.append(what)


class RequestFailedError(Exception):
    """A request whose answer was not the expected one (already counted in the ledger)."""


async def timed(
    ledger: Ledger,
    kind: str,
    request: Callable[[], Awaitable[tuple[int, bytes, Mapping[str, str]]]],
    expected: Sequence[int],
    what: str,
) -> tuple[int, bytes, Mapping[str, str]]:
    """Run one request, record its latency and status; an unexpected answer is a failure."""
    start = time.perf_counter()
    try:
        status, body, headers = await request()
    except (aiohttp.ClientError, TimeoutError, OSError) as e:
        ledger.latencies[kind].append(time.perf_counter() - start)
        ledger.failed(f"{kind} {what}: {type(e).__name__}: {e}")
        raise RequestFailedError(what) from e
    ledger.latencies[kind].append(time.perf_counter() - start)
    ledger.statuses[(kind, status)] += 1
    if status not in expected:
        ledger.failed(f"{kind} {what}: HTTP {status} {body[:200]!r}")
        raise RequestFailedError(what)
    return status, body, headers


def _get(
    session: aiohttp.ClientSession, url: str, headers: Mapping[str, str] | None = None
) -> Callable[[], Awaitable[tuple[int, bytes, Mapping[str, str]]]]:
    async def request() -> tuple[int, bytes, Mapping[str, str]]:
        async with session.get(url, headers=headers, allow_redirects=False) as resp:
            return resp.status, await resp.read(), resp.headers

    return request


def _post(
    session: aiohttp.ClientSession,
    url: str,
    *,
    data: bytes | None = None,
    json_body: Any = None,
    headers: Mapping[str, str] | None = None,
) -> Callable[[], Awaitable[tuple[int, bytes, Mapping[str, str]]]]:
    async def request() -> tuple[int, bytes, Mapping[str, str]]:
        async with session.post(url, data=data, json=json_body, headers=headers) as resp:
            return resp.status, await resp.read(), resp.headers

    return request


# -- one simulated node ---------------------------------------------------------------------


@dataclass
class FollowedList:
    """What a node holds of one list: the verified state and trust record, the last ETag."""

    state: ListState
    trust: ListTrust
    etag: str | None = None


@dataclass(frozen=True)
class Outgoing:
    """A signed ack and what it reports, kept until the hub confirms it."""

    list_id: str
    seq: int
    data: bytes
    sig: bytes
    counts: Counts


@dataclass
class SimulatedNode:
    """One platform's node as the hub sees it: an id, a key, a token, its lists and seq."""

    index: int
    node_id: str
    key: SigningKey
    lists: list[str]
    token: str = ""
    seq: int = 0
    followed: dict[str, FollowedList] = field(default_factory=dict)
    counts: dict[str, Counts] = field(default_factory=dict)
    acks_sent: int = 0
    outbox: Outgoing | None = None
    previous_ack: Outgoing | None = None


class NodeRunner:
    """Drives one simulated node's loop against the hub at ``url``."""

    def __init__(
        self,
        node: SimulatedNode,
        url: str,
        pinned_sha256: str,
        ledger: Ledger,
        config: LoadConfig,
    ) -> None:
        self.node = node
        self.url = url
        self.pinned = pinned_sha256
        self.ledger = ledger
        self.config = config
        self.random = random.Random(config.seed * 100_003 + node.index)
        self.roots: list[tuple[bytes, bytes]] = []
        self.hub: TrustedHub | None = None

    async def run(self, stop: asyncio.Event) -> None:
        timeout = aiohttp.ClientTimeout(total=self.config.request_timeout)
        headers = {"Authorization": f"Bearer {self.node.token}"}
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, headers=headers
        ) as session:
            pause = self.random.uniform(0, self.config.start_spread)
            if await _wait(stop, pause):
                return
            while not self.roots:
                try:
                    await self.walk_root(session)
                except (RequestFailedError, ProtocolError) as e:
                    if isinstance(e, ProtocolError):
                        self.ledger.failed(f"{self.node.node_id} root: {e}")
                    if await _wait(stop, self.config.poll_interval):
                        return
            while not stop.is_set():
                for list_id in self.node.lists:
                    try:
                        await self.flush(session)  # an ack not yet confirmed goes first
                        await self.poll(session, list_id)
                    except RequestFailedError:
                        pass  # counted; the next poll tries again
                    except ProtocolError as e:
                        self.ledger.failed(f"{self.node.node_id} {list_id}: {e}")
                wait = self.config.poll_interval + self.random.uniform(0, self.config.poll_jitter)
                if await _wait(stop, wait):
                    return

    async def walk_root(self, session: aiohttp.ClientSession) -> None:
        """Pin root v1 and walk N+1, N+2, … until the hub answers 404, verifying each."""
        what = self.node.node_id
        roots: list[tuple[bytes, bytes]] = []
        version = 1
        while True:
            path = root_path(version)
            status, data, _ = await timed(
                self.ledger, "root", _get(session, f"{self.url}/{path}"), (200, 404), what
            )
            if status == 404:
                break
            _, sig, _ = await timed(
                self.ledger, "root", _get(session, f"{self.url}/{sig_path(path)}"), (200,), what
            )
            roots.append((data, sig))
            version += 1
        self.roots = roots
        hub = self.trusted_hub()
        for list_id in self.node.lists:
            width = hub.root.list_spec(list_id).hash_length
            self.node.followed[list_id] = FollowedList(ListState(width), ListTrust(list_id))

    def trusted_hub(self) -> TrustedHub:
        """The root chain verified from the pinned root (once: no root changes during a run).

        Each update then reads the clock once (``now``), as a node's sync run does.
        """
        if self.hub is None:
            if not self.roots:
                raise ProtocolError("the hub serves no root v1")
            (first, first_sig), *rest = self.roots
            self.hub = TrustedHub(first, first_sig, now=utcnow(), pinned_sha256=self.pinned)
            for data, sig in rest:
                self.hub.update_root(data, sig)
        self.hub.now = utcnow()
        return self.hub

    async def poll(self, session: aiohttp.ClientSession, list_id: str) -> None:
        """One conditional checkpoint GET; on a new checkpoint, the update and its ack."""
        followed = self.node.followed[list_id]
        what = f"{self.node.node_id} {list_id}"
        conditional = {"If-None-Match": followed.etag} if followed.etag else None
        status, checkpoint, headers = await timed(
            self.ledger,
            "checkpoint",
            _get(session, f"{self.url}/{checkpoint_path(list_id)}", conditional),
            (200, 304),
            what,
        )
        if status == 304:
            self.ledger.not_modified += 1
            return
        hub = self.trusted_hub()
        update = hub.begin_update(followed.trust, checkpoint)
        if update.is_current:
            followed.trust = update.finish(followed.trust.state)
            followed.etag = headers.get("ETag")
            return
        for version in range(followed.trust.version + 1, update.target + 1):
            path = header_path(list_id, version)
            _, header, _ = await timed(
                self.ledger, "delta", _get(session, f"{self.url}/{path}"), (200,), what
            )
            _, sig, _ = await timed(
                self.ledger, "delta", _get(session, f"{self.url}/{sig_path(path)}"), (200,), what
            )
            update.add_header(header, sig)
        added: bytes | None = None
        for delta in update.bodies_needed():
            path = body_path(list_id, delta.body.sha256)
            _, data, _ = await timed(
                self.ledger, "body", _get(session, f"{self.url}/{path}"), (200,), what
            )
            body = update.add_body(delta.version, data)
            if body.adds:
                added = body.adds[self.node.index % len(body.adds)]
        state, trust = update.apply(followed.state)
        followed.state, followed.trust = state, trust
        followed.etag = headers.get("ETag")
        self.ledger.updates += 1
        await self.ack(session, list_id, hub, added)

    async def ack(
        self, session: aiohttp.ClientSession, list_id: str, hub: TrustedHub, added: bytes | None
    ) -> None:
        """Sign the ack for what the node now holds, put it in the outbox and send it."""
        node = self.node
        trust = node.followed[list_id].trust
        # Counters only ever grow in what a node signs: each ack builds on the last one
        # signed, confirmed or not (a lower one after it would read as a reset).
        counts = counts_for(node.index, trust.version, node.counts.get(list_id, Counts()), added)
        node.counts[list_id] = counts
        node.seq += 1
        data, sig = sign_ack(
            key=node.key,
            node=node.node_id,
            list_id=list_id,
            seq=node.seq,
            sent=utcnow(),
            origin=hub.root.origin(list_id),
            applied=AppliedVersion(trust.version, trust.compact.root(), trust.state),
            counts=counts,
        )
        node.outbox = Outgoing(list_id, node.seq, data, sig, counts)
        await self.flush(session, first_try=True)

    async def flush(self, session: aiohttp.ClientSession, *, first_try: bool = False) -> None:
        """Send the ack in the outbox until the hub confirms it; re-send some on purpose.

        A retry reuses the ack's ``seq`` and bytes; the hub may have stored it before
        the answer was lost, so a retry may be answered either way.
        """
        node = self.node
        ack = node.outbox
        if ack is None:
            return
        await self.post_ack(
            session, ack.seq, ack.data, ack.sig, duplicate=False if first_try else None
        )
        node.outbox = None
        self.ledger.confirmed[(node.node_id, ack.seq)] = hashlib.sha256(ack.data).hexdigest()
        self.ledger.last_counts[(node.node_id, ack.list_id)] = ack.counts
        for hex_hash, counters in ack.counts.hashes.items():
            self.ledger.hash_counts[(node.node_id, ack.list_id, hex_hash)] = counters
        node.acks_sent += 1
        resend: list[Outgoing] = []
        if node.acks_sent % 5 == 0:
            resend.append(ack)  # a retry of the ack just confirmed
        if node.acks_sent % 3 == 0 and node.previous_ack is not None:
            resend.append(node.previous_ack)  # an older seq, with lower counters
        node.previous_ack = ack
        for old in resend:
            self.ledger.resends += 1
            await self.post_ack(session, old.seq, old.data, old.sig, duplicate=True)
            self.ledger.resends_duplicate += 1

    async def post_ack(
        self,
        session: aiohttp.ClientSession,
        seq: int,
        data: bytes,
        sig: bytes,
        *,
        duplicate: bool | None,
    ) -> None:
        """POST one ack; the answer must name its ``seq`` and say ``duplicate`` as expected."""
        what = f"{self.node.node_id} seq {seq}"
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: _b64(sig),
        }
        _, body, _ = await timed(
            self.ledger,
            "ack",
            _post(session, f"{self.url}/v1/acks", data=data, headers=headers),
            (200,),
            what,
        )
        answer = json.loads(body)
        if answer.get("seq") != seq or (
            duplicate is not None and answer.get("duplicate") is not duplicate
        ):
            self.ledger.failed(f"ack {what}: answered {answer}, expected duplicate={duplicate}")
            raise RequestFailedError(what)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` or until ``stop``; True when stopped."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True


# -- the operator -------------------------------------------------------------------------


class Operator:
    """Stages and publishes a new version of one list (the lists in turn) every few seconds."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        token: str,
        listed: dict[str, list[bytes]],
        ledger: Ledger,
        config: LoadConfig,
    ) -> None:
        self.session = session
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"}
        self.listed = listed
        self.ledger = ledger
        self.config = config
        self.random = random.Random(config.seed)
        self.versions = dict.fromkeys(listed, 1)

    async def run(self, stop: asyncio.Event) -> None:
        turn = 0
        while not await _wait(stop, self.config.publish_every):
            list_id = sorted(self.listed)[turn % len(self.listed)]
            turn += 1
            with contextlib.suppress(RequestFailedError):  # counted in the ledger
                await self.publish(list_id)

    async def publish(self, list_id: str) -> None:
        _, width = LISTS[list_id]
        listed = self.listed[list_id]
        adds = [self.random.randbytes(width) for _ in range(self.config.adds_per_publish)]
        removes = self.random.sample(listed, self.config.removes_per_publish)
        body = {"adds": [{"hash": h.hex()} for h in adds], "removes": [h.hex() for h in removes]}
        await timed(
            self.ledger,
            "stage",
            _post(
                self.session,
                f"{self.url}/v1/admin/lists/{list_id}/stage",
                json_body=body,
                headers=self.headers,
            ),
            (200,),
            f"stage {list_id}",
        )
        _, answer, _ = await timed(
            self.ledger,
            "publish",
            _post(
                self.session,
                f"{self.url}/v1/admin/publish",
                json_body={"lists": [list_id]},
                headers=self.headers,
            ),
            (200,),
            f"publish {list_id}",
        )
        published = json.loads(answer)["published"]
        gone = set(removes)
        self.listed[list_id] = [h for h in listed if h not in gone] + adds
        if len(published) != 1 or published[0].get("version") != self.versions[list_id] + 1:
            self.ledger.failed(f"publish {list_id}: unexpected answer {published}")
            return
        self.versions[list_id] += 1


# -- the hub process ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def init_hub(home: Path, config: LoadConfig) -> tuple[str, str, dict[str, list[bytes]]]:
    """A hub with the private lists at version 1; (pinned root SHA-256, admin token, lists)."""
    rng = random.Random(config.seed + 1)
    hub = Hub.init(
        home,
        HUB_NAME,
        publish_interval=0,
        timestamp_interval=0,
        min_poll_interval=config.poll_interval,
    )
    try:
        listed: dict[str, list[bytes]] = {}
        for list_id, (hash_type, width) in LISTS.items():
            hub.roots.create_list(list_id, hash_type, label="load")
            listed[list_id] = [rng.randbytes(width) for _ in range(config.initial_hashes)]
            hub.lists.stage(list_id, adds=[Intake(h) for h in listed[list_id]])
        hub.publishing.publish()
        token = hub.access.create_operator_token("admin", "load-operator")
        return hub.keys.root_sha256(1), token, listed
    finally:
        hub.close()


class HubProcess:
    """``hashhub serve`` on a free loopback port, its output in ``hub.log`` beside the home."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.log = home.parent / "hub.log"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def _address(self) -> list[str]:
        return ["--host", "127.0.0.1", "--port", str(self.port)]

    def start(self) -> None:
        cli = Path(sys.executable).parent / "hashhub"
        # Only this run's settings: a HASHHUB_* variable of the caller's shell must not
        # change the hub under test.
        env = {k: v for k, v in os.environ.items() if not k.startswith("HASHHUB_")}
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(cli), "serve", "--home", str(self.home), *self._address()],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )

    async def ready(self, session: aiohttp.ClientSession) -> None:
        for _ in range(400):
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"hashhub serve exited early:\n{self.log_tail()}")
            try:
                async with session.get(f"{self.url}/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
        raise RuntimeError(f"hashhub serve did not become ready:\n{self.log_tail()}")

    def rss(self) -> int:
        assert self.process is not None
        return int(psutil.Process(self.process.pid).memory_info().rss)

    def cpu_seconds(self) -> float:
        assert self.process is not None
        times = psutil.Process(self.process.pid).cpu_times()
        return float(times.user + times.system)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> int | None:
        """SIGTERM, as an init system stops it; the exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def log_problems(self) -> list[str]:
        """Lines of the hub's log that report a failure (a traceback, an error, a warning)."""
        text = self.log.read_text(errors="replace")
        bad = ("Traceback", " ERROR ", " WARNING ", "Error handling request")
        return [line for line in text.splitlines() if any(b in line for b in bad)][:20]


async def _enrol(
    session: aiohttp.ClientSession,
    url: str,
    admin: str,
    nodes: Sequence[SimulatedNode],
    ledger: Ledger,
) -> None:
    """Enrol every node through the operator API, a few requests at a time."""
    headers = {"Authorization": f"Bearer {admin}"}
    pending = list(nodes)

    async def worker() -> None:
        while pending:
            node = pending.pop()
            body = {
                "id": node.node_id,
                "public_key": node.key.public.raw.hex(),
                "lists": node.lists,
            }
            _, answer, _ = await timed(
                ledger,
                "enrol",
                _post(session, f"{url}/v1/admin/nodes", json_body=body, headers=headers),
                (201,),
                node.node_id,
            )
            node.token = json.loads(answer)["token"]

    await asyncio.gather(*(worker() for _ in range(8)))


# -- after the run: what the hub kept -----------------------------------------------------


def stored_acks(database: Path) -> list[tuple[str, int, str]]:
    """Every ack row in the hub's database as (node, seq, SHA-256 of its bytes)."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return [
            (node, seq, hashlib.sha256(data).hexdigest())
            for node, seq, data in conn.execute("SELECT node, seq, bytes FROM acks")
        ]
    finally:
        conn.close()


def expected_totals(ledger: Ledger) -> dict[str, dict[str, int]]:
    """Per list, the sum over nodes of each node's last confirmed cumulative counters."""
    out: dict[str, dict[str, int]] = {
        list_id: dict.fromkeys(("checked", "matched", "actioned", "blocked", "false_positive"), 0)
        for list_id in LISTS
    }
    for (_, list_id), counts in ledger.last_counts.items():
        for name, value in counts.to_dict().items():
            if name != "hashes":
                out[list_id][name] += value
    return out


def expected_hash_totals(ledger: Ledger) -> dict[str, dict[str, dict[str, int]]]:
    """Per list and hash, the sum over nodes of the last per-hash counters each confirmed."""
    out: dict[str, dict[str, dict[str, int]]] = {list_id: {} for list_id in LISTS}
    for (_, list_id, hex_hash), counters in ledger.hash_counts.items():
        row = out[list_id].setdefault(hex_hash, {})
        for name, value in counters.items():
            row[name] = row.get(name, 0) + value
    return out


def ack_problems(
    confirmed: Mapping[tuple[str, int], str], stored: Sequence[tuple[str, int, str]]
) -> dict[str, list[str]]:
    """Confirmed acks missing from the store, stored twice, stored unconfirmed, or altered."""
    seen: Counter[tuple[str, int]] = Counter((node, seq) for node, seq, _ in stored)
    digests = {(node, seq): digest for node, seq, digest in stored}
    lost = [f"{n} seq {s}" for (n, s) in confirmed if (n, s) not in seen]
    doubled = [f"{n} seq {s} ×{c}" for (n, s), c in seen.items() if c > 1]
    unconfirmed = [f"{n} seq {s}" for (n, s) in seen if (n, s) not in confirmed]
    altered = [
        f"{n} seq {s}"
        for (n, s), digest in confirmed.items()
        if (n, s) in digests and digests[(n, s)] != digest
    ]
    return {"lost": lost, "doubled": doubled, "unconfirmed": unconfirmed, "altered": altered}


_ACCESS = re.compile(r'"(GET|POST) (\S+) HTTP/[0-9.]+" ([0-9]{3}) \S+ ([0-9.]+)s$')


def _kind_of(method: str, path: str) -> str | None:
    """The kind of request a logged method and path are, as the clients name them."""
    if path.startswith("/root/"):
        return "root"
    if path.startswith("/lists/"):
        part = path.split("/")[3] if path.count("/") >= 3 else ""
        return {"checkpoint": "checkpoint", "delta": "delta", "body": "body"}.get(part)
    if method == "POST":
        if path == "/v1/acks":
            return "ack"
        if path == "/v1/admin/nodes":
            return "enrol"
        if path == "/v1/admin/publish":
            return "publish"
        if path.endswith("/stage"):
            return "stage"
    return None


def served_latencies(log: Path) -> dict[str, list[float]]:
    """Per kind, the seconds the hub itself took per request, from its access log.

    aiohttp logs each request with the time from reading it to answering it: the
    hub's own share of a latency, without the clients' waits for their event loop.
    """
    out: dict[str, list[float]] = {kind: [] for kind in KINDS}
    with log.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if "aiohttp.access" not in line:
                continue
            match = _ACCESS.search(line.rstrip("\n"))
            if match is None:
                continue
            kind = _kind_of(match.group(1), match.group(2))
            if kind is not None:
                out[kind].append(float(match.group(4)))
    return out


# -- the result -----------------------------------------------------------------------------


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass
class LoadResult:
    """The figures of one run and what the checks found."""

    config: LoadConfig
    seconds: float
    kinds: list[dict[str, Any]]
    requests: int
    requests_per_s: float
    statuses: dict[str, int]
    errors: int
    error_samples: list[str]
    acks_confirmed: int
    acks_stored: int
    ack_problems: dict[str, list[str]]
    resends: int
    resends_duplicate: int
    updates: int
    not_modified: int
    versions: dict[str, int]
    nodes_current: dict[str, int]
    totals_expected: dict[str, dict[str, int]]
    totals_hub: dict[str, dict[str, int]]
    hash_totals_match: dict[str, bool]
    hashes_counted: dict[str, int]
    evidence: int
    hub_log_problems: list[str]
    hub_exit: int | None
    rss: list[tuple[float, int]]
    hub_cpu_percent: float
    client_cpu_percent: float
    loop_lag_ms: dict[str, float]
    windows: list[dict[str, Any]]
    setup_seconds: float
    ledger: Ledger = field(repr=False, compare=False)
    """What the clients saw, for checks of one's own (not in ``to_dict``)."""
    stored: list[tuple[str, int, str]] = field(repr=False, compare=False)
    """The acks in the hub's database as (node, seq, SHA-256) (not in ``to_dict``)."""

    def problems(self) -> list[str]:
        """Every check that failed, as one line each; empty when the run was clean."""
        out = []
        if self.errors:
            out.append(f"{self.errors} failed requests, e.g. {self.error_samples[:5]}")
        for name, items in self.ack_problems.items():
            if items:
                out.append(f"{len(items)} acks {name}: {items[:5]}")
        if self.resends != self.resends_duplicate:
            out.append(f"{self.resends} acks re-sent, {self.resends_duplicate} answered duplicate")
        for list_id, expected in self.totals_expected.items():
            if self.totals_hub.get(list_id) != expected:
                out.append(f"{list_id}: hub totals {self.totals_hub.get(list_id)}, sent {expected}")
        for list_id, same in self.hash_totals_match.items():
            if not same:
                out.append(f"{list_id}: per-hash totals differ from what the nodes sent")
        if self.evidence:
            out.append(f"{self.evidence} evidence rows recorded")
        if self.hub_log_problems:
            out.append(f"hub log: {self.hub_log_problems[:5]}")
        if self.hub_exit not in (0, -signal.SIGTERM):
            out.append(f"hub exited with {self.hub_exit}")
        return out

    def rss_growth(self) -> dict[str, float]:
        """RSS before the load, at 1 min, at the end; the slope from 1 min on (MB/min)."""
        if not self.rss:
            return {}
        start = self.rss[0][1]
        later = [(t, b) for t, b in self.rss if t >= 60.0] or self.rss
        at_1min = later[0][1]
        end = self.rss[-1][1]
        # A run of about a minute has one sample after it: its slope is over every sample.
        fitted = later if len(later) >= 3 else self.rss
        slope = float("nan")
        if len(fitted) >= 2:
            xs = [t / 60 for t, _ in fitted]
            ys = [b / 1e6 for _, b in fitted]
            slope = statistics.linear_regression(xs, ys).slope
        return {
            "before_mb": start / 1e6,
            "at_1min_mb": at_1min / 1e6,
            "end_mb": end / 1e6,
            "growth_after_1min_mb": (end - at_1min) / 1e6,
            "slope_mb_per_min": slope,
            "slope_from_s": fitted[0][0],
        }

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.repr}
        out["config"] = asdict(self.config)
        out["rss_growth"] = self.rss_growth()
        out["problems"] = self.problems()
        return out

    def table(self) -> str:
        """The figures as text, for a terminal or a test's output."""
        c = self.config
        lines = [
            f"{c.nodes} nodes for {self.seconds:.0f} s against one hashhub serve process "
            f"(poll every {c.poll_interval} s + up to {c.poll_jitter:g} s, a publish every "
            f"{c.publish_every:g} s); setup {self.setup_seconds:.1f} s",
            "",
            "latency seen by the clients, and the hub's own share (its access log):",
            f"{'kind':12} {'requests':>9} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} "
            f"{'logged':>9} {'hub p50':>9} {'hub p99':>9} {'hub max':>9}",
        ]
        for k in self.kinds:
            lines.append(
                f"{k['kind']:12} {k['count']:9,d} {k['p50_ms']:9.1f} {k['p99_ms']:9.1f} "
                f"{k['max_ms']:9.1f} {k['served']:9,d} {k['served_p50_ms']:9.1f} "
                f"{k['served_p99_ms']:9.1f} {k['served_max_ms']:9.1f}"
            )
        lines += [
            "",
            f"requests {self.requests:,} ({self.requests_per_s:,.0f}/s); checkpoint 304s "
            f"{self.not_modified:,}; updates applied {self.updates:,}; versions published "
            f"{self.versions}; nodes at the last version {self.nodes_current}",
            f"acks confirmed {self.acks_confirmed:,}, stored {self.acks_stored:,}; re-sent "
            f"{self.resends:,}, answered duplicate {self.resends_duplicate:,}; "
            + ", ".join(f"{k} {len(v)}" for k, v in self.ack_problems.items()),
            f"failed requests {self.errors}; evidence rows {self.evidence}; hub exit "
            f"{self.hub_exit}",
        ]
        for list_id in self.totals_expected:
            same = self.totals_hub.get(list_id) == self.totals_expected[list_id]
            lines.append(
                f"{list_id}: totals {'equal' if same else 'DIFFER'} "
                f"({self.totals_hub.get(list_id)}); per-hash totals over "
                f"{self.hashes_counted[list_id]} hashes "
                f"{'equal' if self.hash_totals_match[list_id] else 'DIFFER'}"
            )
        lag = self.loop_lag_ms
        lines.append(
            f"hub CPU {self.hub_cpu_percent:.0f} % of a core, clients' process "
            f"{self.client_cpu_percent:.0f} %; clients' event loop lag p50 "
            f"{lag.get('p50', float('nan')):.1f} ms, p99 {lag.get('p99', float('nan')):.1f} ms, "
            f"max {lag.get('max', float('nan')):.1f} ms"
        )
        lines += ["", f"{'t s':>6} {'hub RSS MB':>11} {'requests/s':>11} {'p99 ms':>8}"]
        for w in self.windows:
            lines.append(
                f"{w['t']:6.0f} {w['rss_mb']:11.1f} {w['requests_per_s']:11,.0f} {w['p99_ms']:8.1f}"
            )
        g = self.rss_growth()
        if g:
            lines.append(
                f"hub RSS: before {g['before_mb']:.1f} MB, at 1 min {g['at_1min_mb']:.1f} MB, "
                f"end {g['end_mb']:.1f} MB; growth after 1 min "
                f"{g['growth_after_1min_mb']:+.1f} MB, slope {g['slope_mb_per_min']:+.2f} MB/min "
                f"(samples from {g['slope_from_s']:.0f} s on)"
            )
        problems = self.problems()
        lines.append("checks: " + ("all passed" if not problems else "; ".join(problems)))
        return "\n".join(lines)


# -- the run ------------------------------------------------------------------------------


async def _loop_lag(ledger: Ledger, stop: asyncio.Event) -> None:
    """How late the clients' event loop wakes from a 50 ms sleep: their own queueing."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        start = loop.time()
        await asyncio.sleep(0.05)
        ledger.loop_lag.append(loop.time() - start - 0.05)


async def _sampler(
    hub: HubProcess,
    ledger: Ledger,
    samples: list[tuple[float, int]],
    marks: list[tuple[float, dict[str, int]]],
    started: float,
    every: float,
    stop: asyncio.Event,
) -> None:
    """The hub's RSS and the number of requests so far, every ``every`` seconds."""
    while not await _wait(stop, every):
        t = time.monotonic() - started
        samples.append((t, hub.rss()))
        marks.append((t, {kind: len(v) for kind, v in ledger.latencies.items()}))


def _windows(
    ledger: Ledger, samples: list[tuple[float, int]], marks: list[tuple[float, dict[str, int]]]
) -> list[dict[str, Any]]:
    """Per sampling window: RSS at its end, request rate and p99 of the requests in it."""
    out = []
    previous_t, previous = 0.0, dict.fromkeys(KINDS, 0)
    node_kinds = ("root", "checkpoint", "delta", "body", "ack")
    for (t, counts), (_, rss) in zip(marks, samples[1:], strict=False):
        window: list[float] = []
        for kind in node_kinds:
            window.extend(ledger.latencies[kind][previous[kind] : counts[kind]])
        span = max(t - previous_t, 1e-9)
        out.append(
            {
                "t": t,
                "rss_mb": rss / 1e6,
                "requests_per_s": len(window) / span,
                "p99_ms": _percentile(window, 0.99) * 1000,
            }
        )
        previous_t, previous = t, counts
    return out


async def run_load(workdir: Path, config: LoadConfig) -> LoadResult:
    """Set up a hub in ``workdir``, run the load, stop the hub, check and measure."""
    setup_start = time.monotonic()
    home = workdir / "hub"
    pinned, admin, listed = init_hub(home, config)
    ledger = Ledger()
    keys = [SigningKey.generate() for _ in range(config.nodes)]
    list_ids = sorted(LISTS)
    nodes = [
        SimulatedNode(
            index=i,
            node_id=f"load-node-{i:04d}",
            key=keys[i],
            lists=list_ids if i % 2 == 0 else list_ids[:1],
        )
        for i in range(config.nodes)
    ]
    hub = HubProcess(home)
    hub.start()
    samples: list[tuple[float, int]] = []
    marks: list[tuple[float, dict[str, int]]] = []
    totals_hub: dict[str, dict[str, int]] = {}
    hub_hashes: dict[str, dict[str, dict[str, int]]] = {}
    evidence = 0
    try:
        timeout = aiohttp.ClientTimeout(total=config.request_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as operator_session:
            await hub.ready(operator_session)
            await _enrol(operator_session, hub.url, admin, nodes, ledger)
            if ledger.errors:
                raise RuntimeError(f"enrolment failed: {ledger.error_samples[:3]}")
            setup_seconds = time.monotonic() - setup_start
            stop = asyncio.Event()
            done = asyncio.Event()
            started = time.monotonic()
            samples.append((0.0, hub.rss()))
            hub_cpu0, client0 = hub.cpu_seconds(), time.process_time()
            operator = Operator(operator_session, hub.url, admin, listed, ledger, config)
            runners = [NodeRunner(n, hub.url, pinned, ledger, config) for n in nodes]
            tasks = [asyncio.create_task(r.run(stop)) for r in runners]
            tasks.append(asyncio.create_task(operator.run(stop)))
            helpers = [
                asyncio.create_task(_loop_lag(ledger, done)),
                asyncio.create_task(
                    _sampler(hub, ledger, samples, marks, started, config.rss_every, done)
                ),
            ]
            await asyncio.sleep(config.seconds)
            stop.set()
            # Every node finishes the poll it is in (its ack included), then stops.
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=config.request_timeout * 4)
            seconds = time.monotonic() - started
            hub_cpu = hub.cpu_seconds() - hub_cpu0
            client_cpu = time.process_time() - client0
            done.set()
            await asyncio.gather(*helpers)
            samples.append((seconds, hub.rss()))
            marks.append((seconds, {kind: len(v) for kind, v in ledger.latencies.items()}))
            headers = {"Authorization": f"Bearer {admin}"}
            async with operator_session.get(f"{hub.url}/v1/admin/status", headers=headers) as resp:
                status = await resp.json()
            for entry in status["lists"]:
                totals_hub[entry["id"]] = entry["totals"]
            for list_id in LISTS:
                async with operator_session.get(
                    f"{hub.url}/v1/admin/lists/{list_id}/counts", headers=headers
                ) as resp:
                    hub_hashes[list_id] = (await resp.json())["hashes"]
            async with operator_session.get(
                f"{hub.url}/v1/admin/evidence", headers=headers
            ) as resp:
                evidence = len((await resp.json())["evidence"])
    finally:
        hub_exit = hub.stop()
    stored = stored_acks(home / "hub.db")
    served = served_latencies(hub.log)
    expected_hashes = expected_hash_totals(ledger)
    kinds = []
    requests = 0
    for kind in KINDS:
        values = ledger.latencies[kind]
        if not values:
            continue
        if kind in ("root", "checkpoint", "delta", "body", "ack"):
            requests += len(values)
        kinds.append(
            {
                "kind": kind,
                "count": len(values),
                "p50_ms": _percentile(values, 0.5) * 1000,
                "p99_ms": _percentile(values, 0.99) * 1000,
                "max_ms": max(values) * 1000,
                "served": len(served[kind]),
                "served_p50_ms": _percentile(served[kind], 0.5) * 1000,
                "served_p99_ms": _percentile(served[kind], 0.99) * 1000,
                "served_max_ms": max(served[kind], default=float("nan")) * 1000,
            }
        )
    lag = ledger.loop_lag
    versions = operator.versions
    current = {
        list_id: sum(
            1
            for n in nodes
            if list_id in n.followed and n.followed[list_id].trust.version == versions[list_id]
        )
        for list_id in LISTS
    }
    return LoadResult(
        config=config,
        seconds=seconds,
        kinds=kinds,
        requests=requests,
        requests_per_s=requests / seconds,
        statuses={f"{k} {s}": n for (k, s), n in sorted(ledger.statuses.items())},
        errors=ledger.errors,
        error_samples=ledger.error_samples,
        acks_confirmed=len(ledger.confirmed),
        acks_stored=len(stored),
        ack_problems=ack_problems(ledger.confirmed, stored),
        resends=ledger.resends,
        resends_duplicate=ledger.resends_duplicate,
        updates=ledger.updates,
        not_modified=ledger.not_modified,
        versions=dict(versions),
        nodes_current=current,
        totals_expected=expected_totals(ledger),
        totals_hub=totals_hub,
        hash_totals_match={
            list_id: hub_hashes.get(list_id) == expected_hashes[list_id] for list_id in LISTS
        },
        hashes_counted={list_id: len(expected_hashes[list_id]) for list_id in LISTS},
        evidence=evidence,
        hub_log_problems=hub.log_problems(),
        hub_exit=hub_exit,
        rss=samples,
        hub_cpu_percent=100 * hub_cpu / seconds,
        client_cpu_percent=100 * client_cpu / seconds,
        loop_lag_ms={
            "p50": _percentile(lag, 0.5) * 1000,
            "p99": _percentile(lag, 0.99) * 1000,
            "max": (max(lag) if lag else float("nan")) * 1000,
        },
        windows=_windows(ledger, samples, marks),
        setup_seconds=setup_seconds,
        ledger=ledger,
        stored=stored,
    )


# -- the command --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=600.0, help="default: the 10-min soak")
    parser.add_argument("--quick", action="store_true", help="60 s instead of 600")
    parser.add_argument("--poll-interval", type=int, default=LoadConfig.poll_interval)
    parser.add_argument("--publish-every", type=float, default=LoadConfig.publish_every)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--json-out", type=Path, help="also write the JSON to this file")
    args = parser.parse_args(argv)
    config = LoadConfig(
        nodes=args.nodes,
        seconds=60.0 if args.quick else args.seconds,
        poll_interval=args.poll_interval,
        publish_every=args.publish_every,
    )
    with tempfile.TemporaryDirectory(prefix="hashhub-load-") as tmp:
        result = asyncio.run(run_load(Path(tmp), config))
    machine = (
        f"{platform.platform()} | {os.cpu_count()} CPUs | "
        f"{platform.python_implementation()} {platform.python_version()} | "
        f"load {os.getloadavg()[0]:.2f}"
    )
    document = json.dumps({"machine": machine, **result.to_dict()}, indent=2)
    if args.json_out:
        args.json_out.write_text(document + "\n", encoding="utf-8")
    if args.json:
        # The JSON carries the failed checks (``problems``); bench/report.py shows them.
        print(document)
        return 0
    print(f"machine: {machine}\n")
    print(result.table())
    return 1 if result.problems() else 0


if __name__ == "__main__":
    raise SystemExit(main())
