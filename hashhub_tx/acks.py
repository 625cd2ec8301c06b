"""Acks from the bridge: the hub learns what a python-threatexchange or HMA subscriber holds.

A hashhub node signs one ack per list it applied (PROTOCOL.md §10) and the hub's
dashboard shows each node's last one. The bridge does the same with the identity of
a node home (``hashhub-node init``, enrolled by the hub operator): its ``node.key``
signs, its ``hub-token`` authenticates, its ``node.toml`` names the node. Only the
identity is used: the bridge keeps its own ack state in ``tx-bridge/`` inside that
home (mode 0700, files 0600), never the node's database, so the home must belong to
the bridge alone (a ``hashhub-node`` running on it would number its acks on its own).

What the state holds, and why:

- ``seq``: the last sequence number signed; a retry re-sends the very same bytes.
- ``queue``: signed acks not yet confirmed, sent in ``seq`` order at the next fetch
  or label; a lost answer loses nothing.
- per list: the version applied at the last fetch (an ack can only name what the
  bridge holds, and ``threatexchange label`` runs without a checkpoint), the
  cumulative counters, and every hash the list has held since the bridge followed
  it (``held-<list>.bin``): the hub accepts per-hash counters only for hashes the
  list held, so a label is checked against them before anything is signed.

Counters: python-threatexchange keeps no record of its matches, so a subscriber
reports them by labelling (``report_opinion``): each label is one match of that hash
with its outcome (``kept``: reviewed and left up, a match without an action).
Nothing else is counted; ``checked`` stays zero.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from follow.send import post_ack
from hashhub_tx._store import Followed, hash_set
from hashhub_tx.errors import BridgeConfigError, OpinionError
from node.config import NodeConfig, read_secret
from node.errors import NodeConfigError
from protocol import (
    ACK_REFUSALS,
    HASH_TYPES,
    Ack,
    AppliedVersion,
    Counts,
    KeyFileError,
    ListState,
    SigningKey,
    b64decode,
    b64encode,
    sign_ack,
)
from protocol.ack import COUNTER_NAMES, MAX_HASH_ENTRIES
from protocol.keyfile import load_private_key

__all__ = ["OUTCOME_LABELS", "STATE_DIR", "AckBook", "NodeIdentity"]

log = logging.getLogger("hashhub_tx")

STATE_DIR = "tx-bridge"
"""The bridge's own directory inside the node home."""
STATE_FORMAT = 1
OUTCOME_LABELS: Mapping[str, tuple[str, ...]] = {
    "actioned": ("matched", "actioned"),
    "blocked": ("matched", "blocked"),
    "false_positive": ("matched", "false_positive"),
    "kept": ("matched",),
    "seen": ("matched",),
}
"""A label and the counters it adds one to (``seen``: a match not reviewed yet)."""
MAX_SEQ_JUMP = 1_000_000
"""A hub's last ``seq`` further than this above ours is not believed (treated as 403)."""


@dataclass(frozen=True)
class NodeIdentity:
    """The enrolled node the bridge speaks as: id, signing key and hub token."""

    home: Path
    node_id: str
    key: SigningKey
    token: str

    @classmethod
    def load(cls, home: str) -> NodeIdentity:
        """Read the node home, refusing key and token files that others may read.

        Raises:
            BridgeConfigError: no node there, a key or token file missing or too open,
                or no token yet.
        """
        path = Path(home)
        try:
            config = NodeConfig.load(path)
            key = load_private_key(path / "node.key")
            token = read_secret(path / "hub-token")
        except (NodeConfigError, KeyFileError) as e:
            raise BridgeConfigError(f"node home: {e}") from e
        if not token:
            raise BridgeConfigError(
                f"node home {home}: no hub token yet: once the hub operator has enrolled "
                f"{path / 'node.pub.pem'}, run 'hashhub-node token set TOKEN --home {home}'"
            )
        return cls(path, config.node_id, key, token)


def _write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with a file of mode 0600."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _empty_state() -> dict[str, Any]:
    return {"format": STATE_FORMAT, "seq": 0, "queue": [], "lists": {}}


class AckBook:
    """The bridge's ack state in ``<node home>/tx-bridge`` (see the module docstring).

    Every method that reads or writes the state holds an exclusive lock on it, so a
    fetch and a label run at the same moment (HMA's workers) do not lose a ``seq``.
    """

    def __init__(self, identity: NodeIdentity, hub_url: str, now: Callable[[], datetime]) -> None:
        self.identity = identity
        self.hub_url = hub_url
        self.now = now
        self.dir = identity.home / STATE_DIR
        self.dir.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.dir, 0o700)
        self.path = self.dir / "acks.json"

    # -- the state ------------------------------------------------------------------

    @contextmanager
    def _state(self) -> Iterator[dict[str, Any]]:
        """The state under the lock; written back when the block ends without error."""
        lock = os.open(self.dir / "lock", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self._read()
            yield state
            _write_private(self.path, json.dumps(state, sort_keys=True).encode())
        finally:
            os.close(lock)

    def _read(self) -> dict[str, Any]:
        if not self.path.exists():
            return _empty_state()
        state: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        if state.get("format") != STATE_FORMAT:
            raise BridgeConfigError(f"{self.path}: not a state this bridge can read")
        if state.get("node", self.identity.node_id) != self.identity.node_id:
            # Another node id: its seq and counters are not this node's.
            return _empty_state()
        return state

    def _held_path(self, list_id: str) -> Path:
        return self.dir / f"held-{list_id}.bin"

    def held(self, list_id: str, hash_type: str) -> ListState:
        """Every hash ``list_id`` has held since the bridge followed it."""
        width = HASH_TYPES[hash_type].length
        path = self._held_path(list_id)
        if not path.exists():
            return ListState(width)
        return ListState.from_snapshot(width, path.read_bytes())

    # -- after a fetch --------------------------------------------------------------

    def applied(self, lists: Mapping[str, tuple[str, Followed]]) -> list[int]:
        """Note what a fetch left applied (origin, list) and sign an ack for each list
        whose version moved since its last ack. Returns the new ``seq`` numbers."""
        queued = []
        with self._state() as state:
            state["node"] = self.identity.node_id
            for list_id, (origin, stored) in sorted(lists.items()):
                trust = stored.trust
                if trust.version == 0:
                    continue
                held = self.held(list_id, stored.hash_type)
                hashes = hash_set(stored)
                if not all(held.contains_many(list(hashes))):
                    union = ListState.from_hashes(held.width, {*held, *hashes})
                    _write_private(self._held_path(list_id), union.to_bytes())
                entry = state["lists"].setdefault(list_id, {"acked_version": 0})
                entry["hash_type"] = stored.hash_type
                entry["origin"] = origin
                entry["applied"] = AppliedVersion(
                    trust.version, trust.compact.root(), trust.state
                ).to_dict()
                if entry["acked_version"] != trust.version:
                    queued += self._enqueue(state, list_id)
        return queued

    # -- a label --------------------------------------------------------------------

    def record(self, hash_type: str, value: bytes, label: str) -> list[str]:
        """Count one labelled match of ``value`` in every followed list that held it,
        and sign an ack for each. Returns those lists.

        Raises:
            OpinionError: no fetch has applied a list of that hash type, or none of
                them ever held the hash.
        """
        with self._state() as state:
            candidates = [
                list_id
                for list_id, entry in sorted(state["lists"].items())
                if entry.get("hash_type") == hash_type and entry.get("applied")
            ]
            if not candidates:
                raise OpinionError(
                    f"no {hash_type} list of this collaboration has been fetched yet: "
                    "run 'threatexchange fetch' first"
                )
            holders = [c for c in candidates if value in self.held(c, hash_type)]
            if not holders:
                raise OpinionError(
                    f"{value.hex()} is in none of the lists fetched ({', '.join(candidates)}): "
                    "the hub counts outcomes only for hashes it published"
                )
            for list_id in holders:
                entry = state["lists"][list_id]
                counts = entry.setdefault("counts", dict.fromkeys(COUNTER_NAMES, 0))
                per_hash = entry.setdefault("hashes", {}).setdefault(value.hex(), {})
                for name in OUTCOME_LABELS[label]:
                    counts[name] += 1
                    per_hash[name] = per_hash.get(name, 0) + 1
                changed = set(entry.get("changed", []))
                changed.add(value.hex())
                entry["changed"] = sorted(changed)
                self._enqueue(state, list_id)
            return holders

    # -- signing and sending --------------------------------------------------------

    def _enqueue(self, state: dict[str, Any], list_id: str) -> list[int]:
        """Sign acks for ``list_id`` with its totals and the per-hash counters changed
        since its last ack (several acks when more than an ack holds)."""
        entry = state["lists"][list_id]
        applied = AppliedVersion.from_dict(entry["applied"])
        totals = entry.get("counts", dict.fromkeys(COUNTER_NAMES, 0))
        changed: list[str] = list(entry.get("changed", []))
        queued = []
        while True:
            part, changed = changed[:MAX_HASH_ENTRIES], changed[MAX_HASH_ENTRIES:]
            hashes = {h: dict(entry["hashes"][h]) for h in part}
            state["seq"] += 1
            data, sig = sign_ack(
                key=self.identity.key,
                node=self.identity.node_id,
                list_id=list_id,
                seq=state["seq"],
                sent=self.now(),
                origin=entry["origin"],
                applied=applied,
                counts=Counts(**totals, hashes=hashes),
            )
            state["queue"].append(
                {
                    "seq": state["seq"],
                    "list": list_id,
                    "data": b64encode(data),
                    "sig": b64encode(sig),
                }
            )
            queued.append(state["seq"])
            if not changed:
                break
        entry["changed"] = []
        entry["acked_version"] = applied.version
        return queued

    def _renumber(self, state: dict[str, Any], last_seq: int) -> None:
        """Re-sign every queued ack above the hub's last ``seq`` (this home's state was
        lost or copied): same applied version and counters, new numbers."""
        queue = state["queue"]
        state["queue"] = []
        state["seq"] = last_seq
        for row in queue:
            old = Ack.from_bytes(b64decode(row["data"], "queued ack"))
            state["seq"] += 1
            data, sig = sign_ack(
                key=self.identity.key,
                node=old.node,
                list_id=old.list_id,
                seq=state["seq"],
                sent=self.now(),
                origin=state["lists"][old.list_id]["origin"],
                applied=old.applied,
                counts=old.counts,
            )
            state["queue"].append(
                {
                    "seq": state["seq"],
                    "list": old.list_id,
                    "data": b64encode(data),
                    "sig": b64encode(sig),
                }
            )

    def queued(self) -> list[int]:
        """The ``seq`` numbers signed and not yet confirmed by the hub."""
        return [row["seq"] for row in self._read()["queue"]]

    async def flush(self) -> tuple[int, list[str]]:
        """Send the queued acks in ``seq`` order (PROTOCOL.md §10.6).

        Returns how many the hub confirmed and one line per problem. A refused ack
        (400, 403, 413, 422) is dropped: counters are cumulative, the next ack carries
        what it did. Anything else (network, 401, 429, 5xx) stops here and keeps the
        rest for the next fetch or label.
        """
        confirmed = 0
        problems: list[str] = []
        renumbered = False
        with self._state() as state:
            async with aiohttp.ClientSession() as session:
                while state["queue"]:
                    row = state["queue"][0]
                    try:
                        status, last_seq, said = await self._post(session, row)
                    except (aiohttp.ClientError, TimeoutError) as e:
                        problems.append(f"ack seq {row['seq']} ({row['list']}) not sent: {e!r}")
                        break
                    if status == 200:
                        state["queue"].pop(0)
                        confirmed += 1
                        continue
                    why = f"ack seq {row['seq']} ({row['list']}): HTTP {status}: {said}"
                    believed = last_seq is not None and (
                        row["seq"] <= last_seq <= row["seq"] + MAX_SEQ_JUMP
                    )
                    if status == 409 and believed and not renumbered:
                        assert last_seq is not None
                        self._renumber(state, last_seq)
                        renumbered = True
                        continue
                    if status in ACK_REFUSALS:
                        problems.append(f"{why} (refused; the next ack carries its counters)")
                        state["queue"].pop(0)
                        continue
                    problems.append(f"{why} (kept; sent again at the next fetch or label)")
                    break
        return confirmed, problems

    async def _post(
        self, session: aiohttp.ClientSession, row: Mapping[str, Any]
    ) -> tuple[int, int | None, str]:
        return await post_ack(
            session,
            self.hub_url,
            self.identity.token,
            b64decode(row["data"], "queued ack"),
            b64decode(row["sig"], "queued ack sig"),
        )
