"""Test helper: an in-memory hub that can be honest or hostile, and a node that verifies it.

After python-tuf's ``tests/repository_simulator.py``. Not part of hashhub.

``HubSimulator`` publishes through the real ``protocol.Publisher`` with fixed-seed
keys and keeps every published file in ``files`` (path → bytes), so a test can
read, replace, tamper with, drop or swap exactly what a hub or a mirror would
serve. It can also do what an honest publisher refuses to: sign a root with the
wrong keys, sign a header whose body does not fit the state or whose
``result_state`` lies, or sign a checkpoint for any size and root hash.

``Verifier`` is a node's update and nothing more. It reads ``files`` and drives
``TrustedHub`` and ``ListUpdate`` in the order a node does: walk roots N+1, N+2, …
until one is missing, begin with the checkpoint, add headers trusted+1 … size,
optionally take the newest snapshot, add bodies, apply. It replaces its kept
state, trust record and trusted roots only when the whole update succeeds, so a
test can check that a rejected update left the last good list in force. A file
that is missing is skipped and left for the trust rules to notice, as a node that
got "not found" must not carry on past the rule that is then unmet.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from protocol import (
    HASH_TYPES,
    DeltaBody,
    DeltaHeader,
    Limits,
    ListHead,
    ListSpec,
    ListState,
    ListTrust,
    Policy,
    Publisher,
    Role,
    Root,
    SignatureSidecar,
    SigningKey,
    StateDigest,
    StateMismatchError,
    TrustedHub,
    body_path,
    canonicalize,
    checkpoint_path,
    header_path,
    root_files,
    root_path,
    sig_path,
    sign_bytes,
    snapshot_path,
)
from protocol.keys import Signature
from protocol.root import ROLE_NAMES

T0 = datetime(2026, 1, 1, tzinfo=UTC)
"""The simulated hub's clock starts here; every publish moves it on by an hour by default."""
HOUR = timedelta(hours=1)
LIST = "tid-md5"
OTHER_LIST = "tid-md5-b"
"""A second list of the same hash type, for headers swapped between lists."""


def fixed_key(label: str) -> SigningKey:
    """A deterministic Ed25519 key: the same label always gives the same key."""
    return SigningKey.from_seed(hashlib.sha256(label.encode()).digest())


def md5(text: str) -> bytes:
    """A 16-byte hash to put in an md5 list."""
    return hashlib.md5(text.encode()).digest()


def _unique(keys: Iterable[SigningKey]) -> list[SigningKey]:
    return list({k.keyid: k for k in keys}.values())


class HubSimulator:
    """A hub in memory: roots, lists and their published files, plus ways to misbehave.

    Args:
        lists: list id → hash type; by default two md5 lists, ``LIST`` and ``OTHER_LIST``.
        key_counts: how many keys each role gets (default one).
        thresholds: each role's threshold (default one).
        policy: the root's policy.
        expires: when root v1 (and every later root, unless told) expires.
        snapshot_every: the lists' snapshot interval.
        seed: prefix of every key seed; two simulators with one seed share their keys.
    """

    def __init__(
        self,
        *,
        lists: Mapping[str, str] | None = None,
        key_counts: Mapping[str, int] | None = None,
        thresholds: Mapping[str, int] | None = None,
        policy: Policy | None = None,
        expires: datetime | None = None,
        snapshot_every: int = 3,
        seed: str = "hub",
    ) -> None:
        self.seed = seed
        self.now = T0
        self.files: dict[str, bytes] = {}
        self._generation = 0
        counts = {role: 1 for role in ROLE_NAMES} | dict(key_counts or {})
        self.keys: dict[str, list[SigningKey]] = {
            role: self.new_keys(role, counts[role]) for role in ROLE_NAMES
        }
        self.thresholds: dict[str, int] = {role: 1 for role in ROLE_NAMES} | dict(thresholds or {})
        specs = {
            list_id: ListSpec(
                list_id,
                kind,
                HASH_TYPES[kind].default_max_distance,
                label="tid",
                snapshot_every=snapshot_every,
            )
            for list_id, kind in (lists or {LIST: "md5", OTHER_LIST: "md5"}).items()
        }
        self.root = self._make_root(
            1, specs, policy or Policy(), expires or T0 + timedelta(days=365)
        )
        self.files.update(root_files(self.root, self.keys["root"]))
        self.history: dict[str, list[ListHead[ListState]]] = {
            list_id: [ListHead.empty(self.root, list_id)] for list_id in specs
        }

    # -- keys and roots ---------------------------------------------------------------

    def new_keys(self, role: str, count: int = 1) -> list[SigningKey]:
        """Fresh fixed-seed keys for ``role`` (not yet in any root)."""
        self._generation += 1
        return [fixed_key(f"{self.seed}/{role}/{self._generation}/{i}") for i in range(count)]

    def _make_root(
        self, version: int, lists: Mapping[str, ListSpec], policy: Policy, expires: datetime
    ) -> Root:
        all_keys = {k.keyid: k.public for ks in self.keys.values() for k in ks}
        return Root(
            version=version,
            name="hub.example",
            expires=expires,
            keys=all_keys,
            roles={
                role: Role(tuple(k.keyid for k in self.keys[role]), self.thresholds[role])
                for role in ROLE_NAMES
            },
            lists=lists,
            policy=policy,
        )

    def rotate(
        self,
        *,
        keys: Mapping[str, Sequence[SigningKey]] | None = None,
        thresholds: Mapping[str, int] | None = None,
        policy: Policy | None = None,
        expires: datetime | None = None,
        sign_with: Sequence[SigningKey] | None = None,
    ) -> Root:
        """Publish root N+1, replacing the keys and thresholds given.

        Signed by the old and the new root keys (the rule) unless ``sign_with`` says
        otherwise. The simulator publishes under the new root from then on.
        """
        old_root_keys = list(self.keys["root"])
        for role, new in (keys or {}).items():
            self.keys[role] = list(new)
        self.thresholds.update(thresholds or {})
        # Versions published from now on must be signed under the new root (ADR 0004).
        lists = {
            list_id: replace(spec, first_version=self.head(list_id).version + 1)
            for list_id, spec in self.root.lists.items()
        }
        root = self._make_root(
            self.root.version + 1,
            lists,
            policy or self.root.policy,
            expires or self.root.expires,
        )
        signers = _unique([*old_root_keys, *self.keys["root"]]) if sign_with is None else sign_with
        self.files.update(root_files(root, signers))
        self.root = root
        return root

    # -- lists ------------------------------------------------------------------------

    @property
    def publisher(self) -> Publisher:
        return Publisher(self.root, self.keys)

    def head(self, list_id: str = LIST) -> ListHead[ListState]:
        return self.history[list_id][-1]

    def _tick(self, at: datetime | None) -> datetime:
        self.now = at if at is not None else self.now + HOUR
        return self.now

    def publish(
        self,
        list_id: str = LIST,
        *,
        removes: Iterable[bytes] = (),
        adds: Iterable[bytes] = (),
        at: datetime | None = None,
    ) -> DeltaHeader:
        """Publish the next version honestly, at ``at`` (default: an hour after the last action)."""
        publication = self.publisher.publish(
            self.head(list_id), removes=removes, adds=adds, now=self._tick(at)
        )
        self.files.update(publication.files)
        self.history[list_id].append(publication.head)
        return publication.header

    def publish_steps(self, count: int, list_id: str = LIST) -> None:
        """Publish ``count`` versions: version v adds two new hashes and removes one of v−1's."""
        for _ in range(count):
            v = self.head(list_id).version + 1
            removes = [md5(f"{list_id}/{v - 1}/a")] if v > 1 else []
            self.publish(list_id, removes=removes, adds=[md5(f"{list_id}/{v}/{x}") for x in "ab"])

    def publish_forged(
        self,
        list_id: str = LIST,
        *,
        removes: Sequence[bytes] = (),
        adds: Sequence[bytes] = (),
        result_state: StateDigest | None = None,
        root_version: int | None = None,
        sign_with: Sequence[SigningKey] | None = None,
        at: datetime | None = None,
    ) -> DeltaHeader:
        """What a buggy or hostile hub with the delta key does: sign whatever it is given.

        The body need not fit the current state, ``result_state`` may lie, the header
        may name any ``root_version`` and be signed by any keys (default: the current
        delta keys). It is chained, logged and checkpointed like any other header.
        """
        head = self.head(list_id)
        created = self._tick(at)
        body = DeltaBody.build(self.root.list_spec(list_id).hash_type, removes, adds)
        try:
            honest: ListState | None = head.state.apply(body.removes, body.adds)
        except StateMismatchError:
            honest = None
        if result_state is None:
            count = head.state.count + len(body.adds) - len(body.removes)
            result_state = (
                honest.digest()
                if honest is not None
                else StateDigest(count, hashlib.sha256(b"forged").hexdigest())
            )
        header = DeltaHeader(
            list_id=list_id,
            version=head.version + 1,
            prev=head.last_leaf,
            root_version=root_version or self.root.version,
            created=created,
            body=body.ref(),
            base_state=head.state.digest(),
            result_state=result_state,
        )
        data = header.to_bytes()
        compact = head.compact.copy()
        compact.append(header.leaf_hash)
        new_head = ListHead(
            list_id,
            honest if honest is not None else head.state,
            header.version,
            compact,
            header.leaf_hash.hex(),
            created,
        )
        hpath = header_path(list_id, header.version)
        self.files[body_path(list_id, header.body.sha256)] = body.to_bytes()
        self.resign(hpath, data, self.keys["delta"] if sign_with is None else sign_with)
        self.files[checkpoint_path(list_id)] = self.publisher.checkpoint(
            list_id, header.version, compact.root(), created
        )
        self.history[list_id].append(new_head)
        return header

    def refresh(self, list_id: str = LIST, *, at: datetime | None = None) -> bytes:
        """Re-issue the checkpoint of the current version with a new co-signature time."""
        data = self.publisher.refresh(self.head(list_id), self._tick(at))
        self.files[checkpoint_path(list_id)] = data
        return data

    def checkpoint_for(
        self,
        list_id: str = LIST,
        *,
        size: int,
        root_hash: bytes | None = None,
        at: datetime | None = None,
    ) -> bytes:
        """A validly signed checkpoint for any size and root hash (not stored).

        ``root_hash`` defaults to the log's real root at ``size``; ``at`` to the clock.
        """
        if root_hash is None:
            root_hash = self.history[list_id][size].compact.root()
        return self.publisher.checkpoint(list_id, size, root_hash, at or self.now)

    def rewind(self, list_id: str, version: int) -> None:
        """Forget versions after ``version``: the next publish rewrites history from there."""
        del self.history[list_id][version + 1 :]

    # -- serving something else -------------------------------------------------------

    def replace(self, path: str, data: bytes) -> None:
        self.files[path] = data

    def drop(self, path: str) -> None:
        del self.files[path]

    def swap(self, a: str, b: str) -> None:
        self.files[a], self.files[b] = self.files[b], self.files[a]

    def tamper(self, path: str, index: int = -2) -> None:
        """Flip the lowest bit of one byte of a served file."""
        data = bytearray(self.files[path])
        data[index] ^= 0x01
        self.files[path] = bytes(data)

    def tamper_signature(self, path: str) -> None:
        """Flip one bit of the first signature in ``path``'s sidecar (still well-formed)."""
        sidecar = SignatureSidecar.from_bytes(self.files[sig_path(path)])
        first = sidecar.signatures[0]
        bad = bytes([first.sig[0] ^ 0x01]) + first.sig[1:]
        entries = (Signature(first.keyid, bad), *sidecar.signatures[1:])
        self.files[sig_path(path)] = SignatureSidecar(entries).to_bytes()

    def resign(self, path: str, data: bytes, keys: Iterable[SigningKey]) -> None:
        """Serve ``data`` at ``path`` with a valid signature by ``keys``."""
        self.files[path] = data
        self.files[sig_path(path)] = sign_bytes(data, keys).to_bytes()

    def rewrite_json(
        self,
        path: str,
        edit: Callable[[dict[str, Any]], None],
        *,
        keys: Iterable[SigningKey],
        encode: Callable[[Any], bytes] = canonicalize,
    ) -> bytes:
        """Load the JSON at ``path``, let ``edit`` change it, encode, re-sign with ``keys``."""
        value = json.loads(self.files[path])
        edit(value)
        data = encode(value)
        self.resign(path, data, keys)
        return data


class Verifier:
    """A node's update of one list, driven only by ``TrustedHub`` and ``ListUpdate``.

    Args:
        files: what the hub serves (read at every update, so later changes are seen).
        list_id: the list to follow.
        limits: caps passed to ``TrustedHub``.

    Root v1 is pinned from ``files`` at construction, as a node pins it at enrolment.
    """

    def __init__(
        self, files: Mapping[str, bytes], list_id: str = LIST, *, limits: Limits | None = None
    ) -> None:
        self.files = files
        self.list_id = list_id
        self.limits = limits or Limits()
        pinned = root_path(1)
        self.roots: list[tuple[bytes, bytes]] = [(files[pinned], files[sig_path(pinned)])]
        width = Root.from_bytes(files[pinned]).list_spec(list_id).hash_length
        self.state = ListState(width)
        self.trust = ListTrust(list_id)

    def kept(self) -> tuple[dict[str, Any], bytes, tuple[tuple[bytes, bytes], ...]]:
        """Everything the node keeps between updates, in a form that compares by value."""
        return self.trust.to_dict(), self.state.to_bytes(), tuple(self.roots)

    def open_hub(self, now: datetime) -> TrustedHub:
        """Start from the pinned root, re-check the trusted chain, walk on until missing."""
        (first, first_sig), *rest = self.roots
        hub = TrustedHub(first, first_sig, now=now, limits=self.limits)
        for data, sig in rest:
            hub.update_root(data, sig)
        for _ in range(self.limits.max_root_walk):
            path = root_path(hub.root.version + 1)
            if path not in self.files:
                break
            hub.update_root(self.files[path], self.files.get(sig_path(path), b""))
        return hub

    def update(
        self, now: datetime, *, use_snapshot: bool = False, check_every_version: bool = False
    ) -> tuple[ListState, ListTrust]:
        """Run one whole update at ``now``; keep the result only if every rule held.

        Args:
            now: the node's clock, fixed once for the run.
            use_snapshot: bootstrap or catch up from the newest snapshot after the
                trusted version, if one is served.
            check_every_version: compare the state with each header's ``result_state``.

        Raises:
            ProtocolError: whichever rule failed; the kept state is unchanged.
        """
        hub = self.open_hub(now)
        update = hub.begin_update(self.trust, self.files[checkpoint_path(self.list_id)])
        for version in range(self.trust.version + 1, update.target + 1):
            path = header_path(self.list_id, version)
            if path not in self.files:
                break
            update.add_header(self.files[path], self.files.get(sig_path(path), b""))
        state = self.state
        if use_snapshot:
            for version in range(update.target, self.trust.version, -1):
                path = snapshot_path(self.list_id, version)
                if path in self.files:
                    state = update.add_snapshot(version, self.files[path])
                    break
        for header in update.bodies_needed():
            path = body_path(self.list_id, header.body.sha256)
            if path in self.files:
                update.add_body(header.version, self.files[path])
        state, trust = update.apply(state, check_every_version=check_every_version)
        self.state, self.trust = state, trust
        self.roots = [(data, sig) for _, data, sig in hub.root_files()]
        return state, trust
