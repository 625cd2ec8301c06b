"""Matching across every hub a node follows: ``Matchings``.

Each followed hub's lists have their ``Matching`` (``node.matching``), over a store
view scoped to that hub, so that its indexes, counters and stricter distances are
its own, and its acks carry only what was matched against its lists. What the
platform asks spans them: an upload is matched against every list of every hub,
and a hash two hubs list is a match of each, the answer naming each (hub, list).
Match events, outcomes and the policy's exemptions are the node's, whichever hub
listed what matched, so they are read and written through any hub's ``Matching``
(the first's, here).

A hub added to or removed from a running node (``hashhub-node hub add|remove``) is
taken up by ``Node.follow_hubs``, which replaces ``by_hub``: a removed hub's lists
stop matching at once; what it matched stays in the store (events, evidence).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from node.errors import NodeConfigError
from node.matching import Matching, MatchResult
from node.policy import Policy

__all__ = ["Matchings"]


class Matchings:
    """Every followed hub's ``Matching``, in the configuration's order, as one."""

    def __init__(self, by_hub: Mapping[str, Matching]) -> None:
        self.by_hub: dict[str, Matching] = dict(by_hub)

    def __iter__(self) -> Iterator[Matching]:
        return iter(list(self.by_hub.values()))

    def hub(self, name: str) -> Matching:
        """The ``Matching`` of the hub ``name``.

        Raises:
            NodeConfigError: the node follows no hub of that name.
        """
        found = self.by_hub.get(name)
        if found is None:
            raise NodeConfigError(
                f"no hub named {name[:64]!r}; this node follows {', '.join(self.by_hub)}"
            )
        return found

    def only(self) -> Matching:
        """The ``Matching`` of a node that follows one hub.

        Raises:
            NodeConfigError: the node follows several (the message names them).
        """
        if len(self.by_hub) != 1:
            raise NodeConfigError(
                f"this node follows {len(self.by_hub)} hubs ({', '.join(self.by_hub)}): "
                "name one with --hub NAME"
            )
        return self.first

    @property
    def first(self) -> Matching:
        """The hub through which what spans the hubs is read and written."""
        return next(iter(self.by_hub.values()))

    @property
    def policy(self) -> Policy:
        """The platform's policy: exemptions, decisions and counters span the hubs
        (a stricter distance is a list's: ``hub(name).policy``)."""
        return self.first.policy

    @property
    def follows_videos(self) -> bool:
        """Whether any followed hub's lists include a ``vpdq`` list the node has
        applied: only then is a video hashed as one (else it is a file)."""
        return any(m.videos for m in self)

    @property
    def damaged(self) -> set[str]:
        """The ids of the lists whose stored state is damaged, of any hub (each hub's
        own are its ``Matching.damaged``)."""
        return {list_id for m in self for list_id in m.damaged}

    # -- following -------------------------------------------------------------------

    def load_indexes(self) -> None:
        for matching in self:
            matching.load_indexes()

    def write_checked(self) -> None:
        for matching in self:
            matching.write_checked()

    # -- matching ----------------------------------------------------------------------

    def match_hashes(
        self, queries: Mapping[str, Sequence[bytes]], *, one_item: bool = False
    ) -> list[MatchResult]:
        """Match and record against every hub's lists, in one transaction: each hit
        names its hub; a miss everywhere writes nothing."""
        results: list[MatchResult] = []
        with self.first.store.atomic():
            for matching in self:
                results.extend(matching.match_hashes(queries, one_item=one_item))
        return results

    def look(
        self, queries: Mapping[str, Sequence[bytes]], *, one_item: bool = False
    ) -> list[MatchResult]:
        """What ``match_hashes`` would find, recording nothing (``Matching.look``)."""
        return [hit for matching in self for hit in matching.look(queries, one_item=one_item)]

    def image_queries(self, data: bytes, *, dihedral: bool | None = None) -> dict[str, list[bytes]]:
        return self.first.image_queries(data, dihedral=dihedral)

    @staticmethod
    def file_queries(data: bytes) -> dict[str, list[bytes]]:
        return Matching.file_queries(data)

    def record_outcome(
        self, match_id: str, outcome: str, reason: str | None = None
    ) -> dict[str, Any]:
        """``Matching.record_outcome``: the event says whose list it matched."""
        return self.first.record_outcome(match_id, outcome, reason)

    def recent_matches(self, limit: int = 50, *, open_only: bool = False) -> list[dict[str, Any]]:
        """``Matching.recent_matches``: every hub's events, each naming its hub."""
        return self.first.recent_matches(limit, open_only=open_only)
