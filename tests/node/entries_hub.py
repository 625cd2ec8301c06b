"""A hub's published tree of ``entries`` lists, made by ``protocol.Publisher`` and served
over real HTTP by a ``HostileServer``.

The hub itself does not publish entries lists yet, so the tree is made here with
the protocol's own publisher: real keys, a root declaring a ``vocabulary`` and
lists of the ``entries`` format, each version signed, each checkpoint co-signed
at the shared clock's time. ``forge`` signs a version the publisher would refuse
(a term outside the vocabulary, a removal of a record nobody holds) with the same
delta key, as a compromised or buggy hub would: only the node's own checks stand
between it and the store.

The server answers every published path and nothing else (no auth, no
``POST /v1/acks``: a node synced from it keeps its acks in its outbox).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aiohttp import web

from protocol import (
    EntriesBody,
    Entry,
    EntryState,
    ListSpec,
    OpinionsRef,
    OpinionSummary,
    Publisher,
    Removal,
    Role,
    Root,
    SigningKey,
    Vocabulary,
)
from protocol.delta import DeltaHeader
from protocol.keys import sign_bytes
from protocol.layout import body_path, checkpoint_path, header_path, opinions_path, sig_path
from protocol.publisher import ListHead, Publication, root_files
from protocol.root import ROLE_NAMES
from tests.node.fixtures_sync import Clock
from tests.node.hostile import Answer, HostileServer

__all__ = ["VOCABULARY", "EntriesHub", "md5", "record"]

HUB_NAME = "hub.test"

VOCABULARY = Vocabulary(
    categories=("intimate-image", "extremism"),
    classifications=("reported", "confirmed"),
    sources=("import", "member"),
)


def md5(label: object) -> bytes:
    return hashlib.md5(str(label).encode(), usedforsecurity=False).digest()


def record(
    label: str,
    first_seen: datetime,
    *,
    category: str = "intimate-image",
    classification: str = "confirmed",
    source: str = "import:batch-1",
    expires: datetime | None = None,
    entry_id: str | None = None,
) -> Entry:
    """The record of an item whose hash is ``md5(label)`` and whose entry id is
    ``e-<label>`` (unless given)."""
    kind, _, ref = source.partition(":")
    return Entry(
        hash=md5(label),
        entry_id=entry_id or f"e-{label}",
        category=category,
        classification=classification,
        source_kind=kind,
        source_ref=ref or None,
        first_seen=first_seen,
        expires=expires,
    )


@dataclass
class EntriesHub:
    """Keys, a root, the heads of its entries lists and every published file."""

    clock: Clock
    lists: tuple[str, ...] = ("tid-entries-md5",)
    snapshot_every: int = 2
    keys: dict[str, list[SigningKey]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    heads: dict[str, ListHead[EntryState]] = field(default_factory=dict)
    server: HostileServer | None = None

    def __post_init__(self) -> None:
        self.keys = {role: [SigningKey.generate()] for role in ROLE_NAMES}
        self.root = Root(
            version=1,
            name=HUB_NAME,
            expires=self.clock() + timedelta(days=365),
            keys={k.keyid: k.public for ks in self.keys.values() for k in ks},
            roles={role: Role((self.keys[role][0].keyid,), 1) for role in ROLE_NAMES},
            lists={
                list_id: ListSpec(
                    list_id, "md5", 0, snapshot_every=self.snapshot_every, format="entries"
                )
                for list_id in self.lists
            },
            vocabulary=VOCABULARY,
        )
        self.files.update(root_files(self.root, self.keys["root"]))
        self.publisher = Publisher(self.root, self.keys)
        for list_id in self.lists:
            head = ListHead.empty_entries(self.root, list_id)
            self.heads[list_id] = head
            self.files[checkpoint_path(list_id)] = self.publisher.checkpoint(
                list_id, 0, head.compact.root(), self.clock()
            )

    @property
    def pinned(self) -> str:
        return hashlib.sha256(self.files["root/1.json"]).hexdigest()

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    async def start(self) -> EntriesHub:
        async def source(request: web.Request, body: bytes) -> Answer:
            found = self.files.get(request.path.lstrip("/"))
            if request.method != "GET" or found is None:
                return Answer(404 if request.method == "GET" else 405, b"")
            return Answer(200, found)

        self.server = await HostileServer(source).start()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    def publish(
        self,
        list_id: str,
        *,
        adds: Iterable[Entry] = (),
        removes: Iterable[Removal] = (),
        opinions: Callable[[int, datetime, EntryState], OpinionSummary] | None = None,
    ) -> Publication[EntryState]:
        """Sign the next version at the clock's time and publish its files (with
        ``opinions``, the opinion summary it makes of the version, named by the header)."""
        publication = self.publisher.publish_entries(
            self.heads[list_id], adds=adds, removes=removes, now=self.clock(), opinions=opinions
        )
        self.files.update(publication.files)
        self.heads[list_id] = publication.head
        return publication

    def forge(
        self,
        list_id: str,
        body: EntriesBody,
        result: EntryState,
        *,
        opinions: Callable[[int, datetime], bytes] | None = None,
    ) -> DeltaHeader:
        """Sign the next version with ``body`` and ``result`` as they are, checking
        nothing (the publisher's rules are skipped), and publish it; with
        ``opinions``, the summary bytes it makes of the version's number and time,
        named by the header, whatever they say."""
        head = self.heads[list_id]
        body_bytes = body.to_bytes()
        created = self.clock()
        summary = None if opinions is None else opinions(head.version + 1, created)
        header = DeltaHeader(
            list_id=list_id,
            version=head.version + 1,
            prev=head.last_leaf,
            root_version=self.root.version,
            created=created,
            body=body.ref(),
            base_state=head.state.digest(),
            result_state=result.digest(),
            extra={} if summary is None else {"opinions": OpinionsRef.of(summary).to_dict()},
        )
        data = header.to_bytes()
        compact = head.compact.copy()
        compact.append(header.leaf_hash)
        path = header_path(list_id, header.version)
        self.files[body_path(list_id, header.body.sha256)] = body_bytes
        if summary is not None:
            self.files[opinions_path(list_id, OpinionsRef.of(summary).sha256)] = summary
        self.files[path] = data
        self.files[sig_path(path)] = sign_bytes(data, self.keys["delta"]).to_bytes()
        self.files[checkpoint_path(list_id)] = self.publisher.checkpoint(
            list_id, header.version, compact.root(), self.clock()
        )
        return header
