"""What a node would accept from a hub: the protocol's trust rules, fed bytes only.

The hub tests check what the hub publishes the way a node checks it: pin root
v1 (by its SHA-256), walk the root chain, verify the checkpoint, every header,
the Merkle root, the snapshot or the bodies, and the final state digest. The
bytes come from a ``fetch(path)`` function, so the same check runs against the
hub's database (``PublishedFiles.get``) and against an exported folder.
``follow_entries`` and ``bootstrap_entries`` do the same for an ``entries`` list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from hub.core import Hub
from protocol import (
    EntriesBody,
    EntryState,
    ListState,
    ListTrust,
    TrustedHub,
    body_path,
    checkpoint_path,
    header_path,
    root_path,
    sig_path,
    snapshot_path,
)
from protocol.lists import hash_type

Fetch = Callable[[str], bytes | None]


def from_hub(hub: Hub) -> Fetch:
    def fetch(path: str) -> bytes | None:
        found = hub.files.get(path)
        return found[0] if found else None

    return fetch


def from_folder(folder: Path) -> Fetch:
    def fetch(path: str) -> bytes | None:
        target = folder / path
        return target.read_bytes() if target.is_file() else None

    return fetch


def _need(fetch: Fetch, path: str) -> bytes:
    data = fetch(path)
    assert data is not None, f"{path} is not published"
    return data


def trusted_hub(fetch: Fetch, *, pinned_sha256: str, now: datetime) -> TrustedHub:
    """Pin root v1 and walk N+1, N+2, … until one is not found, as a node does."""
    trusted = TrustedHub(
        _need(fetch, root_path(1)),
        _need(fetch, sig_path(root_path(1))),
        now=now,
        pinned_sha256=pinned_sha256,
    )
    version = 2
    while (data := fetch(root_path(version))) is not None:
        trusted.update_root(data, _need(fetch, sig_path(root_path(version))))
        version += 1
    return trusted


@dataclass
class NodeView:
    """A node following some lists of one hub; each ``update`` is one all-or-nothing run."""

    fetch: Fetch
    pinned_sha256: str
    lists: dict[str, tuple[ListState, ListTrust]] = field(default_factory=dict)

    def update(self, list_id: str, *, now: datetime) -> ListState:
        """Apply every version after the trusted one, checking each result digest."""
        trusted = trusted_hub(self.fetch, pinned_sha256=self.pinned_sha256, now=now)
        width = trusted.root.list_spec(list_id).hash_length
        state, trust = self.lists.get(list_id, (ListState(width), ListTrust(list_id)))
        update = trusted.begin_update(trust, _need(self.fetch, checkpoint_path(list_id)))
        for version in range(trust.version + 1, update.target + 1):
            path = header_path(list_id, version)
            update.add_header(_need(self.fetch, path), _need(self.fetch, sig_path(path)))
        for header in update.bodies_needed():
            path = body_path(list_id, header.body.sha256)
            update.add_body(header.version, _need(self.fetch, path))
        state, trust = update.apply(state, check_every_version=True)
        self.lists[list_id] = (state, trust)
        return state

    def bootstrap(self, list_id: str, *, now: datetime) -> tuple[ListState, int]:
        """A new node: every header, then the newest snapshot and the bodies after it.

        Returns the state and the version of the snapshot it started from.
        """
        trusted = trusted_hub(self.fetch, pinned_sha256=self.pinned_sha256, now=now)
        update = trusted.begin_update(
            ListTrust(list_id), _need(self.fetch, checkpoint_path(list_id))
        )
        for version in range(1, update.target + 1):
            path = header_path(list_id, version)
            update.add_header(_need(self.fetch, path), _need(self.fetch, sig_path(path)))
        snapshots = [
            v for v in range(update.target, 0, -1) if self.fetch(snapshot_path(list_id, v))
        ]
        assert snapshots, f"{list_id}: no snapshot published"
        base = snapshots[0]
        state = update.add_snapshot(base, _need(self.fetch, snapshot_path(list_id, base)))
        for header in update.bodies_needed():
            path = body_path(list_id, header.body.sha256)
            update.add_body(header.version, _need(self.fetch, path))
        state, trust = update.apply(state, check_every_version=True)
        self.lists[list_id] = (state, trust)
        return state, base


@dataclass(frozen=True)
class EntriesVersion:
    """One verified version of an ``entries`` list: its header's number, its body, and
    the records after it (their digest checked against the header's ``result_state``)."""

    version: int
    body: EntriesBody
    state: EntryState


def follow_entries(
    fetch: Fetch, list_id: str, *, pinned_sha256: str, now: datetime
) -> list[EntriesVersion]:
    """A node reading an ``entries`` list from nothing: the root chain from v1, the
    checkpoint, every header and body by the protocol's rules, each version's state."""
    trusted = trusted_hub(fetch, pinned_sha256=pinned_sha256, now=now)
    spec = trusted.root.list_spec(list_id)
    assert spec.entries, f"{list_id} is not an entries list"
    update = trusted.begin_update(ListTrust(list_id), _need(fetch, checkpoint_path(list_id)))
    for version in range(1, update.target + 1):
        path = header_path(list_id, version)
        update.add_header(_need(fetch, path), _need(fetch, sig_path(path)))
    for header in update.bodies_needed():
        update.add_entries_body(
            header.version, _need(fetch, body_path(list_id, header.body.sha256))
        )
    state = EntryState(hash_type(spec.hash_type))
    versions = []
    for header, body in update.ordered_entries_bodies():
        state = state.apply(body)
        assert state.digest() == header.result_state, f"{list_id} v{header.version}"
        versions.append(EntriesVersion(header.version, body, state))
    final, _ = update.apply_entries(EntryState(hash_type(spec.hash_type)), check_every_version=True)
    assert final == state
    return versions


def bootstrap_entries(
    fetch: Fetch, list_id: str, *, pinned_sha256: str, now: datetime
) -> tuple[EntryState, int]:
    """A new node of an ``entries`` list: the newest snapshot and the bodies after it.

    Returns the state and the version of the snapshot it started from.
    """
    trusted = trusted_hub(fetch, pinned_sha256=pinned_sha256, now=now)
    update = trusted.begin_update(ListTrust(list_id), _need(fetch, checkpoint_path(list_id)))
    for version in range(1, update.target + 1):
        path = header_path(list_id, version)
        update.add_header(_need(fetch, path), _need(fetch, sig_path(path)))
    snapshots = [v for v in range(update.target, 0, -1) if fetch(snapshot_path(list_id, v))]
    assert snapshots, f"{list_id}: no snapshot published"
    base = snapshots[0]
    state = update.add_entries_snapshot(base, _need(fetch, snapshot_path(list_id, base)))
    for header in update.bodies_needed():
        update.add_entries_body(
            header.version, _need(fetch, body_path(list_id, header.body.sha256))
        )
    state, _ = update.apply_entries(state, check_every_version=True)
    return state, base
