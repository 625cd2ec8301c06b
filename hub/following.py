"""A hub following its upstreams: fetch and verify, carry over, publish, acknowledge.

One run per followed upstream (``follow_upstream``), from ``hashhub upstream sync``
or the scheduler's ``upstreams`` job:

1. the upstream's lists are updated through ``follow.Syncer`` exactly as a node's
   are (pin, root walk, checkpoint freshness and history, every header and body,
   all or nothing), into the upstream's store (``hub.services.upstream_store``),
   reading every body and no snapshot so the store knows which version added each
   record (``UpstreamSyncer``);
2. an upstream whose trusted root declares this hub as *its* upstream is refused
   (following each other would loop, PROTOCOL.md §5.6), and so is a list of bare
   hashes (provenance is entry metadata);
3. the selections are carried over into this hub's entries
   (``Upstreams.carry_over``), and the lists that changed are published at once, so
   an upstream's retraction reaches this hub's list within one of its runs;
4. an ack for each upstream list whose applied version moved is signed with this
   hub's node key there and sent (PROTOCOL.md §10.6: a 409 naming the upstream's
   last ``seq`` is signed again above it, a refusal is dropped, anything else is
   sent again at the next run).

This module is an edge of the hub: it holds the network, and reaches the database
only through ``call`` (the database thread of a running hub, or the hub itself on
the command line).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

import aiohttp

from follow import (
    Fetcher,
    FollowerConfigError,
    FollowerStore,
    ListOutcome,
    Syncer,
)
from follow.send import post_ack
from hub.core import Hub
from hub.services.publishing import PublishResult
from hub.services.upstream_store import UpstreamStore, UpstreamVersions
from hub.services.upstreams import Carried, FollowSettings, SignedAck
from hub.upstream_graph import walk_upstreams
from protocol import (
    ACK_REFUSALS,
    EntryState,
    Limits,
    ListUpdate,
    OpinionSummary,
    TrustedHub,
)

__all__ = [
    "FollowReport",
    "HubCall",
    "UpstreamSyncer",
    "follow_upstream",
    "follow_upstreams",
    "in_place",
]

log = logging.getLogger("hashhub.upstreams")

R = TypeVar("R")
HubCall = Callable[[Callable[[Hub], Any]], Awaitable[Any]]
"""Runs ``fn(hub)`` where the hub's database lives, and awaits its result."""

MAX_SEQ_JUMP = 1_000_000
"""A ``Hashhub-Last-Seq`` further above our own than this is not believed."""


@dataclass
class FollowReport:
    """What one run of following one upstream did."""

    upstream: str
    outcomes: list[ListOutcome] = field(default_factory=list)
    carried: Carried | None = None
    published: list[PublishResult] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    """How long each step took (``loops``, ``sync``, ``carry``, ``publish``, ``acks``):
    what an operator reads when a run is slow."""
    unchecked: list[str] = field(default_factory=list)
    """Hubs the loop check could not read (``hub.upstream_graph``): not a problem of
    this run, but the check is incomplete."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "upstream": self.upstream,
            "lists": [
                {
                    "list": o.list_id,
                    "status": o.status,
                    "from_version": o.from_version,
                    "to_version": o.to_version,
                    "error": o.error,
                }
                for o in self.outcomes
            ],
            "carried": self.carried.to_dict() if self.carried else None,
            "published": [r.to_dict() for r in self.published],
            "acked": self.acked,
            "problems": self.problems,
            "unchecked": self.unchecked,
            "seconds": {step: round(t, 3) for step, t in self.seconds.items()},
        }


def in_place(hub: Hub) -> HubCall:
    """``call`` for a hub opened in this process (the command line, a script): each
    ``fn(hub)`` runs at once, on the caller's thread."""

    async def call(fn: Callable[[Hub], Any]) -> Any:
        return fn(hub)

    return call


class _Runner:
    """The follower's store calls, run where the hub's database lives, on one store
    object (it holds an update's versions until the update's commit)."""

    def __init__(self, call: HubCall, store: UpstreamStore) -> None:
        self._call = call
        self._store = store

    async def call(self, fn: Callable[[FollowerStore], R], /) -> R:
        store = self._store
        return cast(R, await self._call(lambda _hub: fn(store)))


class UpstreamSyncer(Syncer):
    """``follow.Syncer`` for a hub following an upstream (the module's docstring)."""

    def __init__(
        self,
        runner: _Runner,
        fetcher: Fetcher,
        lists: Sequence[str],
        *,
        pinned_root_sha256: str,
        own_name: str,
        loop: Sequence[str] | None = None,
    ) -> None:
        super().__init__(
            runner, fetcher, lists, pinned_root_sha256=pinned_root_sha256, snapshots=False
        )
        self.own_name = own_name
        self.loop = loop
        """The hubs through which following this upstream comes back to this hub."""

    async def sync_list(self, hub: TrustedHub, list_id: str, now: datetime) -> ListOutcome:
        root = hub.root
        refusal: str | None = None
        if self.loop:
            refusal = (
                f"following {root.name} would loop back to this hub: "
                f"{' -> '.join([*self.loop, self.own_name])} (each declares the next as its "
                "upstream); an operator on the loop must remove a declaration"
            )
        elif self.own_name in root.upstreams:
            refusal = (
                f"upstream {root.name} declares this hub ({self.own_name}) as an upstream of its "
                f"own in root v{root.version}: following each other would loop; one of the two "
                "operators must remove the declaration"
            )
        elif list_id in root.lists and not root.lists[list_id].entries:
            refusal = (
                f"upstream list {list_id} holds bare hashes: a hub re-publishes entries lists "
                "only (provenance is entry metadata)"
            )
        if refusal is None:
            return await super().sync_list(hub, list_id, now)
        error = FollowerConfigError(refusal)
        await self._record_failure(list_id, now, error, evidence=False)
        version = await self._applied_version(list_id)
        return ListOutcome(list_id, "failed", version, version, refusal, cause="config")

    async def opinion_summary(
        self, hub: TrustedHub, update: ListUpdate, list_id: str, state: EntryState
    ) -> OpinionSummary | None:
        """Hand the store this update's headers and bodies, version by version, before
        the commit that keeps them; then fetch and verify the summary as a node does."""
        versions = UpstreamVersions(
            headers=tuple(
                update.header(v).to_bytes()
                for v in range(update.trust.version + 1, update.target + 1)
            ),
            bodies=tuple((h.version, body) for h, body in update.ordered_entries_bodies()),
        )
        await self.runner.call(
            lambda store: cast(UpstreamStore, store).note_update(list_id, versions)
        )
        return await super().opinion_summary(hub, update, list_id, state)


async def follow_upstream(
    call: HubCall,
    name: str,
    *,
    session: aiohttp.ClientSession,
    now: datetime,
    limits: Limits | None = None,
    who: str = "upstream",
) -> FollowReport:
    """One run of following ``name`` (the module's docstring). A problem of the
    network or of the upstream's data is in the report (and, for data, the upstream's
    evidence); nothing of this hub's lists changes unless an update verified."""
    report = FollowReport(name)
    settings: FollowSettings = await call(lambda hub: hub.upstreams.settings(name))
    if settings.token is None:
        report.problems.append(
            f"no token for upstream {name} yet: 'hashhub upstream token {name} FILE'"
        )
        return report
    store: UpstreamStore = await call(lambda hub: hub.upstreams.store(name))
    clock = time.monotonic()
    walk = await walk_upstreams(
        session,
        name=name,
        url=settings.url,
        pin=settings.pinned_root_sha256,
        own_pin=settings.own_pin,
        now=now,
        limits=limits,
    )
    report.unchecked = walk.unread
    report.seconds["loops"] = time.monotonic() - clock
    fetcher = Fetcher(session, settings.url, token=settings.token, limits=limits or Limits())
    syncer = UpstreamSyncer(
        _Runner(call, store),
        fetcher,
        settings.lists,
        pinned_root_sha256=settings.pinned_root_sha256,
        own_name=settings.own_name,
        loop=walk.loop,
    )
    clock = time.monotonic()
    report.outcomes = await syncer.sync(now)
    report.seconds["sync"] = time.monotonic() - clock
    for outcome in report.outcomes:
        if outcome.error:
            report.problems.append(f"{name}/{outcome.list_id}: {outcome.status}: {outcome.error}")
    clock = time.monotonic()
    carried = Carried()
    if await call(lambda hub: hub.upstreams.needs_carry(name)):
        carried = await call(lambda hub: hub.upstreams.carry_over(name, who))
    report.carried = carried
    report.seconds["carry"] = time.monotonic() - clock
    if carried.lists:
        lists = sorted(carried.lists)
        clock = time.monotonic()
        report.published = await call(lambda hub: hub.publishing.publish(lists, who=who))
        report.seconds["publish"] = time.monotonic() - clock
    clock = time.monotonic()
    await _send_acks(call, settings, session, now, report)
    report.seconds["acks"] = time.monotonic() - clock
    return report


async def follow_upstreams(
    call: HubCall,
    *,
    session: aiohttp.ClientSession,
    now: datetime,
    names: Sequence[str] | None = None,
    limits: Limits | None = None,
    who: str = "upstream",
) -> list[FollowReport]:
    """``follow_upstream`` for each followed upstream (or ``names``), one after another:
    one upstream's failure is its own report's, never another's."""
    if names is None:
        names = await call(lambda hub: hub.upstreams.followed())
    reports = []
    for name in names:
        report = await follow_upstream(call, name, session=session, now=now, limits=limits, who=who)
        for problem in report.problems:
            log.warning("upstream %s", problem)
        for unread in report.unchecked:
            log.warning("upstream %s: loop check could not read %s", name, unread)
        reports.append(report)
    return reports


async def _send_acks(
    call: HubCall,
    settings: FollowSettings,
    session: aiohttp.ClientSession,
    now: datetime,
    report: FollowReport,
) -> None:
    """Sign and send this run's acks in ``seq`` order (the module's docstring, step 4)."""
    name = settings.name
    acks: list[SignedAck] = await call(lambda hub: hub.upstreams.sign_acks(name, now))
    renumbered = False
    while acks:
        ack = acks[0]
        try:
            status, last_seq, said = await _post(session, settings, ack)
        except (aiohttp.ClientError, TimeoutError) as e:
            report.problems.append(f"{name}: ack seq {ack.seq} ({ack.list_id}) not sent: {e!r}")
            return
        if status == 200:
            await call(functools.partial(_acked, name=name, ack=ack))
            report.acked.append(ack.seq)
            acks.pop(0)
            continue
        if (
            status == 409
            and last_seq is not None
            and ack.seq <= last_seq <= ack.seq + MAX_SEQ_JUMP
            and not renumbered
        ):
            await call(functools.partial(_renumber, name=name, last_seq=last_seq))
            acks = await call(lambda hub: hub.upstreams.sign_acks(name, now))
            renumbered = True
            continue
        why = f"{name}: ack seq {ack.seq} ({ack.list_id}): HTTP {status}: {said}"
        if status in ACK_REFUSALS:
            report.problems.append(f"{why} (refused)")
            acks.pop(0)
            continue
        report.problems.append(f"{why} (sent again at the next run)")
        return


def _acked(hub: Hub, *, name: str, ack: SignedAck) -> None:
    hub.upstreams.acked(name, ack.list_id, ack.version)


def _renumber(hub: Hub, *, name: str, last_seq: int) -> None:
    hub.upstreams.renumber(name, last_seq)


async def _post(
    session: aiohttp.ClientSession, settings: FollowSettings, ack: SignedAck
) -> tuple[int, int | None, str]:
    return await post_ack(session, settings.url, settings.token, ack.data, ack.sig)
