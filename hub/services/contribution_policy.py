"""Accepting members' contributions by policy, without an operator (docs/adr/0020,
"Members contribute under their node key").

Two ways, tried in this order when a contribution is stored:

- **Trusted contributors.** The operator names platforms whose contributions are
  accepted on arrival into the collection of a named entries list, for every
  category or only some (a platform trusted for ``ncii`` only: its ``csam``
  contribution waits). Trust is a platform's, so every node of it is trusted; it
  reaches contributions from then on, never those already waiting.
- **A quorum of platforms.** With ``contribution_quorum`` N (``hub.toml``), when
  waiting contributions from N distinct platforms carry the same hash, of a type the
  collection of ``contribution_quorum_list`` holds, with the same category, they are
  accepted together as one entry. Platforms, not nodes: a platform's replicas send
  one reviewer's word several times, and counting them would let one platform make
  a quorum alone (its opinions on entries count once too, ``hub.services.acks``).

The policy only decides what to accept and as what; ``Contributions`` stages the
entry by the one path an operator's acceptance takes. What the policy does not
accept waits for review, as before.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hub.errors import InvalidRequest, NotFound
from hub.services.access import check_platform_id
from hub.services.context import HubContext
from hub.services.entries import Entries
from protocol import format_time
from protocol.contribution import Contribution

__all__ = [
    "BY_QUORUM",
    "BY_TRUST",
    "Acceptance",
    "ContributionPolicy",
    "TrustedContributor",
]

BY_TRUST = "policy:trusted"
"""The ``who`` of a contribution accepted because its platform is trusted."""
BY_QUORUM = "policy:quorum"
"""The ``who`` of contributions accepted because enough platforms sent the same hash."""
MAX_TRUSTED_CATEGORIES = 256
"""A vocabulary holds at most 256 categories (PROTOCOL.md §5.5)."""


@dataclass(frozen=True)
class TrustedContributor:
    """A platform whose contributions are accepted on arrival."""

    platform: str
    list: str
    """An entries list of the collection its entries go to."""
    categories: tuple[str, ...]
    """The categories it is trusted for; empty: every category."""
    who: str
    since: str

    def covers(self, category: str) -> bool:
        return not self.categories or category in self.categories

    def to_dict(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "list": self.list,
            "categories": list(self.categories),
            "who": self.who,
            "since": self.since,
        }


@dataclass(frozen=True)
class Acceptance:
    """Waiting contributions accepted together as one entry of a collection, by an
    operator or by the policy: what ``Contributions`` stages."""

    who: str
    """The operator, or ``BY_TRUST`` or ``BY_QUORUM``."""
    list_id: str
    rows: tuple[dict[str, Any], ...]
    """The contributions' rows, first the one whose platform the entry's source names."""
    hashes: Mapping[str, str]
    """The entry's hashes: hash type → hex."""
    classification: str
    note: str = ""
    """The operator's own words, never published."""


class ContributionPolicy:
    """The ``contribution_trust`` table and the quorum setting: what is accepted unasked."""

    def __init__(self, ctx: HubContext, entries: Entries) -> None:
        self.ctx = ctx
        self.entries = entries

    # -- trusted contributors ------------------------------------------------------------

    def trust(
        self, platform: str, list_id: str, categories: Iterable[str], who: str
    ) -> TrustedContributor:
        """Accept ``platform``'s contributions on arrival into ``list_id``'s collection,
        for ``categories`` only when any are named; trusting it again replaces both.

        Raises:
            InvalidRequest: a malformed platform or list id, a list of bare hashes, a
                category the vocabulary lacks.
            NotFound: no enrolled node serves ``platform``, or no list ``list_id``.
        """
        check_platform_id(platform)
        spec = self.entries.lists.spec(list_id)
        if not spec.entries:
            raise InvalidRequest(
                f"list {list_id} holds bare hashes: contributions are accepted into an entries list"
            )
        wanted = tuple(dict.fromkeys(categories))
        if len(wanted) > MAX_TRUSTED_CATEGORIES:
            raise InvalidRequest(f"at most {MAX_TRUSTED_CATEGORIES} categories")
        known = self.entries.vocabulary().categories
        for category in wanted:
            if category not in known:
                raise InvalidRequest(
                    f"category {category[:64]!r} is not in the vocabulary ({', '.join(known)})"
                )
        if (
            self.ctx.one(
                "SELECT 1 FROM nodes WHERE platform = ? AND revoked IS NULL LIMIT 1", [platform]
            )
            is None
        ):
            raise NotFound(f"no enrolled node serves platform {platform}")
        since = format_time(self.ctx.now())
        with self.ctx.db.atomic():
            self.ctx.db.execute(
                "INSERT OR REPLACE INTO contribution_trust (platform, list_id, categories, who, "
                "since) VALUES (?, ?, ?, ?, ?)",
                [platform, list_id, json.dumps(wanted), who, since],
            )
            self.ctx.log(
                "contribution.trust",
                who,
                {"platform": platform, "list": list_id, "categories": list(wanted)},
            )
        return TrustedContributor(platform, list_id, wanted, who, since)

    def untrust(self, platform: str, who: str) -> TrustedContributor:
        """Stop accepting ``platform``'s contributions on arrival: the next ones wait.

        Raises:
            InvalidRequest: a malformed platform id. NotFound: it is not trusted.
        """
        check_platform_id(platform)
        trusted = self.trusted_platform(platform)
        if trusted is None:
            raise NotFound(f"platform {platform} is not trusted")
        with self.ctx.db.atomic():
            self.ctx.db.execute("DELETE FROM contribution_trust WHERE platform = ?", [platform])
            self.ctx.log("contribution.untrust", who, {"platform": platform})
        return trusted

    def trusted(self) -> list[TrustedContributor]:
        """Every trusted platform, by platform id."""
        rows = self.ctx.db.query("SELECT * FROM contribution_trust ORDER BY platform")
        return [_trusted(row) for row in rows]

    def trusted_platform(self, platform: str) -> TrustedContributor | None:
        row = self.ctx.one("SELECT * FROM contribution_trust WHERE platform = ?", [platform])
        return None if row is None else _trusted(row)

    # -- the quorum ----------------------------------------------------------------------

    def check_quorum(self) -> None:
        """Refuse a quorum whose list is not an entries list of the newest root, so the
        server does not start with a policy that could accept nothing.

        Raises:
            InvalidRequest, NotFound: naming ``contribution_quorum_list``.
        """
        config = self.ctx.config
        if not config.contribution_quorum:
            return
        list_id = config.contribution_quorum_list
        if not list_id:
            raise InvalidRequest(
                f"contribution_quorum is {config.contribution_quorum} but "
                "contribution_quorum_list names no list: set it to an entries list"
            )
        try:
            spec = self.entries.lists.spec(list_id)
        except (InvalidRequest, NotFound) as e:
            raise type(e)(f"contribution_quorum_list: {e}") from e
        if not spec.entries:
            raise InvalidRequest(
                f"contribution_quorum_list: list {list_id} holds bare hashes; a quorum's "
                "entry goes to an entries list"
            )

    # -- deciding ------------------------------------------------------------------------

    def decide(self, row: dict[str, Any], contribution: Contribution) -> Acceptance | None:
        """What the policy accepts now that ``row`` (a waiting contribution, stored)
        arrived: itself, when its platform is trusted for its category; else, when it
        completes a quorum, it and the others of the quorum; else nothing."""
        trusted = self.trusted_platform(str(row["platform"]))
        if (
            trusted is not None
            and trusted.covers(contribution.category)
            and self._types(trusted.list) & set(contribution.hashes)
        ):
            return Acceptance(
                BY_TRUST,
                trusted.list,
                (row,),
                {name: given.hex for name, given in contribution.hashes.items()},
                contribution.classification,
            )
        return self._quorum(contribution)

    def _quorum(self, contribution: Contribution) -> Acceptance | None:
        needed = self.ctx.config.contribution_quorum
        list_id = self.ctx.config.contribution_quorum_list
        if not needed:
            return None
        types = self._types(list_id)
        for type_name in sorted(types & set(contribution.hashes)):
            group = self._carrying(type_name, contribution.hashes[type_name].hex, contribution)
            if len({str(row["platform"]) for row, _ in group}) >= needed:
                return Acceptance(
                    BY_QUORUM,
                    list_id,
                    tuple(row for row, _ in group),
                    _agreed(group, types, needed),
                    self._least_severe(c.classification for _, c in group),
                )
        return None

    def _carrying(
        self, type_name: str, hex_hash: str, contribution: Contribution
    ) -> list[tuple[dict[str, Any], Contribution]]:
        """The waiting contributions with this hash and ``contribution``'s category,
        first received first (then by node and seq): the first names the source."""
        rows = self.ctx.db.query(
            "SELECT c.* FROM contribution_hashes h JOIN contributions c "
            "ON c.node = h.node AND c.seq = h.seq "
            "WHERE h.hash_type = ? AND h.hash = ? AND c.status = 'received' "
            "ORDER BY c.received, c.node, c.seq",
            [type_name, bytes.fromhex(hex_hash)],
        )
        group = [(row, Contribution.from_bytes(bytes(row["bytes"]))) for row in rows]
        return [(row, c) for row, c in group if c.category == contribution.category]

    def _least_severe(self, classifications: Iterable[str]) -> str:
        """The least severe of the quorum's classifications in the vocabulary's scale
        (PROTOCOL.md §5.5 orders it least severe first).

        No person at the hub reviewed the entry, so it claims only what every platform
        of the quorum said at least: one platform calling the item ``severe`` does not
        make it severe on the word of others who said ``confirmed``.
        """
        scale = self.entries.vocabulary().classifications
        return min(classifications, key=scale.index)

    def _types(self, list_id: str) -> set[str]:
        """The hash types the collection of ``list_id`` holds (none: not an entries list)."""
        lists = self.entries.keys.root().lists
        spec = lists.get(list_id)
        if spec is None or not spec.entries:
            return set()
        return {lists[lid].hash_type for lid in self.entries.siblings(list_id)}


def _agreed(
    group: Sequence[tuple[dict[str, Any], Contribution]], types: set[str], needed: int
) -> dict[str, str]:
    """The entry's hashes: for each type of the collection, the one hash of it that
    ``needed`` distinct platforms of the quorum carry. A hash fewer platforms vouch
    for is left out, so one platform cannot add a hash of its own to an entry the
    others made; so is a type on which two hashes each reach ``needed``."""
    agreed = {}
    for type_name in sorted(types):
        platforms: dict[str, set[str]] = {}
        for row, contribution in group:
            given = contribution.hashes.get(type_name)
            if given is not None:
                platforms.setdefault(given.hex, set()).add(str(row["platform"]))
        vouched = [h for h, who in platforms.items() if len(who) >= needed]
        if len(vouched) == 1:
            agreed[type_name] = vouched[0]
    return agreed


def _trusted(row: Mapping[str, Any]) -> TrustedContributor:
    return TrustedContributor(
        platform=row["platform"],
        list=row["list_id"],
        categories=tuple(json.loads(row["categories"])),
        who=row["who"],
        since=row["since"],
    )
