"""An entry's metadata as python-threatexchange and HMA receive it.

A list of the ``entries`` format (PROTOCOL.md §7.3) gives each listed hash an entry
id and metadata: category, classification, source, first_seen and expires. pytx
has one place for what a list says of a signal, the ``SignalOpinion`` of its
record's metadata (``FetchedSignalMetadata.get_as_opinions``): a category of its
own (a hub's lists are reviewed, so ``POSITIVE_CLASS``, as for a ``hashes`` list)
and a set of free tags. The entry goes there, one opinion per list of entries that
holds the hash, tagged with the list id and ``name:value`` for each field::

    {"tid-entries-pdq", "entry:e-1f3a", "category:intimate-image",
     "classification:confirmed", "source:import:batch-7",
     "first_seen:2026-11-30T09:00:00Z", "expires:2026-12-30T09:00:00Z"}

(``expires:`` only for an entry that has one.) What the platforms say of the entry,
as the list's newest opinion summary says it (PROTOCOL.md §10.7), joins the tags
when a platform spoke of it: how many platforms confirm and dispute it, and its
dispute's state while it has one (``open``: undecided; ``dismissed``: the operator
kept the entry)::

    {"opinions:confirmed:2", "opinions:disputed:3", "dispute:open"}

A new summary that says something else of an entry sends its record again. The
record keeps the fields as well (``HashhubEntry``), for code that reads them rather
than tags. The hub's vocabulary
names the categories and classifications; the bridge maps none of them onto pytx's
categories, whose meaning (false positive, seed, positive) is not theirs.

An expired entry is not handed on: a list holding the hash only through an entry
whose ``expires`` has come counts as not holding it, so the record loses that list
(a tombstone if no other list holds the hash), at the fetch that first sees it
expired, before the hub's retraction arrives — and only then: the checkpoint keeps
the time of its fetch, so later fetches do not send it again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from threatexchange.exchanges.fetch_state import SignalOpinion, SignalOpinionCategory

from follow import StoredEntries
from hashhub_tx._store import Followed, KeptOpinions
from protocol import Entry, OpinionSummary, format_time

__all__ = [
    "HashhubEntry",
    "Stance",
    "changed_hashes",
    "expired_hashes",
    "opinion_of",
    "restated_hashes",
    "stance_of",
]


@dataclass(frozen=True)
class Stance:
    """What a summary says of one entry: how many platforms confirm and dispute it,
    and its dispute's state (``open``, ``dismissed``, or None)."""

    confirmed: int = 0
    disputed: int = 0
    dispute: str | None = None


NO_STANCE = Stance()
"""An entry no summary speaks of: no platform confirmed or disputed it."""


def stance_of(summary: OpinionSummary | None, entry_id: str) -> Stance:
    """What ``summary`` says of ``entry_id`` (``NO_STANCE``: nothing, or no summary)."""
    said = None if summary is None else summary.entries.get(entry_id)
    if said is None:
        return NO_STANCE
    return Stance(
        len(said.confirmed),
        len(said.disputed),
        None if said.dispute is None else said.dispute.state,
    )


@dataclass
class HashhubEntry:
    """One entry's metadata, as the record of its hash carries it (plain strings, so
    that HMA's JSON and the pytx CLI's pickle keep it alike)."""

    entry: str
    category: str
    classification: str
    source: str
    first_seen: str
    expires: str | None = None
    confirmed: int = 0
    """Platforms confirming the entry, by the list's newest opinion summary."""
    disputed: int = 0
    """Platforms disputing it, likewise."""
    dispute: str | None = None
    """Its dispute's state (``open``, ``dismissed``), while it has one."""

    @classmethod
    def of(cls, entry: Entry, stance: Stance = NO_STANCE) -> HashhubEntry:
        members = entry.to_dict()
        return cls(
            entry=members["entry"],
            category=members["category"],
            classification=members["classification"],
            source=members["source"],
            first_seen=members["first_seen"],
            expires=members["expires"],
            confirmed=stance.confirmed,
            disputed=stance.disputed,
            dispute=stance.dispute,
        )

    def tags(self) -> set[str]:
        tags = {
            f"entry:{self.entry}",
            f"category:{self.category}",
            f"classification:{self.classification}",
            f"source:{self.source}",
            f"first_seen:{self.first_seen}",
        }
        if self.expires is not None:
            tags.add(f"expires:{self.expires}")
        if self.confirmed or self.disputed:
            tags |= {f"opinions:confirmed:{self.confirmed}", f"opinions:disputed:{self.disputed}"}
        if self.dispute is not None:
            tags.add(f"dispute:{self.dispute}")
        return tags


def opinion_of(list_id: str, entry: HashhubEntry) -> SignalOpinion:
    """What a list of entries says of a hash it holds: positive, tagged with the list
    and the entry's fields."""
    return SignalOpinion(False, SignalOpinionCategory.POSITIVE_CLASS, {list_id, *entry.tags()})


def changed_hashes(old: Followed | None, new: StoredEntries) -> set[bytes]:
    """The hashes whose record differs between two states of a list of entries:
    added, removed, or the same hash with other metadata (which an update's added
    and removed hashes do not name)."""
    before = set(old.state.lines()) if isinstance(old, StoredEntries) else set()
    width = 2 * new.state.kind.length
    return {
        bytes.fromhex(line[:width].decode("ascii"))
        for line in before.symmetric_difference(new.state.lines())
    }


def restated_hashes(
    old: KeptOpinions | None, new: KeptOpinions | None, state: StoredEntries
) -> set[bytes]:
    """The hashes of the entries held in ``state`` of which the new summary says
    something else than the old one (counts or dispute): their records are sent again."""
    if old is new:
        return set()
    before = None if old is None else old.summary
    after = None if new is None else new.summary
    spoken = {*(before.entries if before else ()), *(after.entries if after else ())}
    moved = {e for e in spoken if stance_of(before, e) != stance_of(after, e)}
    if not moved:
        return set()
    wanted = {e.encode("ascii") for e in moved}
    found = set()
    for line in state.state.lines():  # "<hash hex> <entry id> …": no record is parsed
        hash_hex, entry_id, _ = line.split(b" ", 2)
        if entry_id in wanted:
            found.add(bytes.fromhex(hash_hex.decode("ascii")))
    return found


def expired_hashes(
    lists: Iterable[Followed], now: datetime, since: datetime | None = None
) -> dict[str, set[bytes]]:
    """By hash type, the hashes whose entry in one of ``lists`` has expired by
    ``now`` and after ``since`` (the previous fetch; ``None``: ever): their records are
    sent again, without that list, once — an entry that expired before the previous
    fetch was handed on then, while it waits for the hub's retraction."""
    stamp = format_time(now).encode()
    after = format_time(since).encode() if since is not None else b""
    found: dict[str, set[bytes]] = {}
    for stored in lists:
        if not isinstance(stored, StoredEntries):
            continue
        width = 2 * stored.state.kind.length
        for line in stored.state.lines():
            expires = line.rsplit(b" ", 1)[1]
            if expires != b"-" and after < expires <= stamp:
                hashes = found.setdefault(stored.hash_type, set())
                hashes.add(bytes.fromhex(line[:width].decode("ascii")))
    return found
