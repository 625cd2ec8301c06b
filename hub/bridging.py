"""A hub taking entries from its exchanges: fetch a page, take it, publish.

One run per exchange (``bridge_exchange``), from ``hashhub exchange sync`` or the
scheduler's ``upstreams`` job, after the upstream hubs:

1. the exchange's pages are fetched with python-threatexchange's client
   (``hub.exchange_apis``), from the checkpoint the last page taken left, one page at a
   time on a worker thread (the clients are synchronous) so a running hub's event loop
   keeps serving;
2. each page and the checkpoint after it are taken in one transaction
   (``Exchanges.take``): a fetch that fails half way keeps the pages before it, and
   the next run resumes after the last one taken;
3. the lists that changed are published at once, so a person's withdrawal at the
   exchange reaches this hub's list within one run (PROTOCOL.md §5.7 rule 2).

This module is an edge of the hub, like ``hub.following``: it holds the network, and
reaches the database only through ``call``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from hub.core import Hub
from hub.following import HubCall
from hub.services.exchanges import Bridged, ExchangeRecord, ExchangeSettings
from hub.services.publishing import PublishResult

if TYPE_CHECKING:
    from hub.exchange_apis import Page

__all__ = ["BridgeReport", "bridge_exchange", "bridge_exchanges"]

log = logging.getLogger("hashhub.exchanges")

MAX_PAGES_PER_RUN = 10_000
"""Pages one run fetches at most: an exchange that never says it has no more records
does not hold the scheduler's job for ever; the next run resumes."""


@dataclass
class BridgeReport:
    """What one run of reading one exchange did."""

    exchange: str
    pages: int = 0
    bridged: Bridged = field(default_factory=Bridged)
    published: list[PublishResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "exchange": self.exchange,
            "pages": self.pages,
            "bridged": self.bridged.to_dict(),
            "published": [r.to_dict() for r in self.published],
            "problems": self.problems,
            "seconds": {step: round(t, 3) for step, t in self.seconds.items()},
        }


def _next_page(pages: Iterator[Page]) -> Page | None:
    """The next page, or None after the last (run on a worker thread)."""
    return next(pages, None)


def _take(
    name: str,
    records: list[ExchangeRecord],
    checkpoint: dict[str, Any],
    fetched: datetime,
    who: str,
    hub: Hub,
) -> Bridged:
    return hub.exchanges.take(name, records, checkpoint, fetched, who)


async def bridge_exchange(call: HubCall, name: str, *, who: str = "exchange") -> BridgeReport:
    """One run of reading ``name`` (the module's docstring). A failure of the network
    or of the exchange's answer is in the report and the exchange's status; nothing
    of a page that failed is taken."""
    report = BridgeReport(name)
    settings: ExchangeSettings = await call(lambda hub: hub.exchanges.settings(name))
    if settings.credentials is None:
        report.problems.append(
            f"no credentials for exchange {name} yet: 'hashhub exchange credentials {name} FILE'"
        )
        return report
    from hub.exchange_apis import PAGES  # python-threatexchange, loaded when an exchange is read

    pages = PAGES[settings.api](settings.url, settings.credentials, settings.checkpoint)
    clock = time.monotonic()
    try:
        while report.pages < MAX_PAGES_PER_RUN:
            page = await asyncio.to_thread(_next_page, pages)
            if page is None:
                break
            records, checkpoint = page
            fetched = await call(lambda hub: hub.now())
            bridged: Bridged = await call(
                functools.partial(_take, name, records, checkpoint, fetched, who)
            )
            report.pages += 1
            report.bridged.merge(bridged)
    except Exception as e:  # pytx raises whatever requests, dacite or XML parsing raise
        error = f"{type(e).__name__}: {e}"[:1000]
        report.problems.append(f"{name}: {error}")
        await call(lambda hub: hub.exchanges.record_failure(name, error))
    report.seconds["fetch"] = time.monotonic() - clock
    for skipped in report.bridged.skipped[:20]:
        log.info("exchange %s: skipped %s", name, skipped)
    if report.bridged.lists:
        lists = sorted(report.bridged.lists)
        clock = time.monotonic()
        report.published = await call(lambda hub: hub.publishing.publish(lists, who=who))
        report.seconds["publish"] = time.monotonic() - clock
    return report


async def bridge_exchanges(
    call: HubCall, *, names: Sequence[str] | None = None, who: str = "exchange"
) -> list[BridgeReport]:
    """``bridge_exchange`` for each exchange (or ``names``), one after another: one
    exchange's failure is its own report's, never another's."""
    if names is None:
        names = await call(lambda hub: hub.exchanges.names())
    reports = []
    for name in names:
        report = await bridge_exchange(call, name, who=who)
        for problem in report.problems:
            log.warning("exchange %s", problem)
        reports.append(report)
    return reports
