"""The platform's own policy on top of the lists it follows: each decision visible and counted.

A list says what the hub's members judged; a platform also answers for its own
users, so it may review a listed item and decide otherwise. Every match is decided
where it is made (``Matching``: ``POST /v1/match``, ``hashhub-node match``,
``scan``, content registration and retroactive matches alike), in this order:

1. **allowed** (reason ``allowlist``): the listed hash (type and hex) or its entry id
   was reviewed and exempted (``hashhub-node policy allow``), with who, why and when;
2. **disabled** (reason ``disabled``): its entry is disabled locally until a time
   (``policy disable --until``); at that time, by the node's clock, it blocks again
   by itself, with no command;
3. **held** (reason ``disputed``): its entry's dispute is ``open`` in the hub's
   newest verified opinion summary (PROTOCOL.md §10.7: enough platforms say the
   entry is wrong, and the hub has not decided), and the platform chose to hold
   such entries (``policy disputed hold``; the default, ``block``, blocks them);
   once the dispute is dismissed, or ends, it blocks again by itself;
4. **held** (reason ``quarantine``): its listed hash matches far above its usual
   rate, so it is held for review instead of blocked (the rule below), until a
   reviewer releases it (``policy release``: it blocks again) or confirms the
   hold (``policy confirm``: it goes on the allowlist, with the reviewer's reason);
5. otherwise **block**.

A match that is not ``block`` is still a match event, counted as ``matched`` in
the acks, but recorded at once with the outcome ``kept`` and its reason (the
platform kept the item up), so it waits for no outcome. Each decision of a
recorded match adds one to a local counter per decision (``policy show``,
``hashhub-node status``), and each kept one to a count per list and reason, which
the list's acks carry as ``kept`` (PROTOCOL.md §10.1), so that the hub sees how
often its members' own policies kept up what a list matched; a node that kept
nothing writes no ``kept``, and its acks keep their bytes. A look (``--dry-run``)
is decided too, and counts and holds nothing.

**Per-list distances** are stricter only: ``policy distance LIST N`` makes a
perceptual list match at most distance N, which must not exceed the list's signed
``max_distance`` (refused when set; if the hub later lowers its own below N, the
lower one applies). A match beyond it is no match at all.

**The quarantine rule.** A match of listed hash H in list L is held when both:

- H has more than ``quarantine_matches_per_hour`` (N, default 100) match events in
  L in the hour up to now, this one included; and
- that count is more than ``quarantine_factor`` (K, default 10) times H's own
  hourly average over the 7 days before that hour (events in [now − 7 d − 1 h,
  now − 1 h) divided by 168).

A hash with no history is held past N in an hour. ``quarantine_matches_per_hour =
0`` turns the rule off. A hold lasts until a reviewer acts; after a release the
hour is counted from the release, so the same surge does not hold it again.

The rules are here; the rows are ``node.store.policy``'s; every change is refused
whole on bad input (``PolicyError``) before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from node.errors import NodeError
from node.store import NodeStore
from protocol import HASH_TYPES, MalformedError, Root, format_time, parse_time
from protocol.entries import ENTRY_ID_PATTERN

__all__ = [
    "BLOCK",
    "DECISIONS",
    "DISPUTED_CHOICES",
    "MAX_BY",
    "MAX_WHY",
    "REASONS",
    "Decision",
    "Policy",
    "PolicyError",
    "QuarantineRule",
    "Target",
    "Verdict",
]

Decision = Literal["block", "allowed", "disabled", "held"]
DECISIONS: tuple[Decision, ...] = get_args(Decision)
"""Every decision a match answer carries as ``"decision"``."""

REASONS: dict[Decision, str] = {
    "allowed": "allowlist",
    "disabled": "disabled",
    "held": "quarantine",
}
"""The reason recorded with the ``kept`` outcome of a match that was not blocked
(a hold of a disputed entry says ``disputed`` instead: ``Verdict.rule``)."""

DISPUTED_CHOICES = ("block", "hold")
"""What the platform does with a match of an entry whose dispute is open
(``policy disputed``); ``block`` until it says otherwise."""
DISPUTED_SETTING = "disputed"

MAX_BY = 64
"""The longest reviewer name (``--by``), in characters."""
MAX_WHY = 500
"""The longest reason (``--why``), in characters."""

HOUR = timedelta(hours=1)
WEEK = timedelta(days=7)


class PolicyError(NodeError):
    """A policy change the node refuses (bad input, or nothing to change); nothing changed."""


def _text(value: str, what: str, limit: int) -> str:
    """``value`` if it is 1 to ``limit`` printable characters of valid UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise PolicyError(f"{what} is not UTF-8 text") from e
    if not value.strip():
        raise PolicyError(f"{what} is empty")
    if len(value) > limit:
        raise PolicyError(f"{what} is {len(value)} characters long; at most {limit}")
    if not value.isprintable():
        raise PolicyError(f"{what} holds control characters")
    return value


@dataclass(frozen=True)
class Target:
    """What an exemption or a hold names: a hash (type and bytes) or an entry id."""

    hash_type: str | None = None
    hash: bytes | None = None
    entry_id: str | None = None

    @classmethod
    def of_hash(cls, text: str) -> Target:
        """``TYPE:HEX`` (``md5:9e10…``), the hex of the type's length."""
        _text(text, "--hash", 200)
        type_name, sep, digits = text.partition(":")
        kind = HASH_TYPES.get(type_name)
        if not sep or kind is None:
            raise PolicyError(
                f"--hash {text[:80]!r}: not TYPE:HEX, TYPE one of {', '.join(sorted(HASH_TYPES))}"
            )
        if not re.fullmatch(r"[0-9a-fA-F]*", digits) or len(digits) != 2 * kind.length:
            raise PolicyError(
                f"--hash {text[:80]!r}: a {type_name} hash is {2 * kind.length} hex digits"
            )
        return cls(hash_type=type_name, hash=bytes.fromhex(digits))

    @classmethod
    def of_entry(cls, text: str) -> Target:
        """An entry id, as the lists' records have them."""
        _text(text, "--entry", 200)
        if not ENTRY_ID_PATTERN.fullmatch(text):
            raise PolicyError(
                f"--entry {text[:80]!r}: an entry id matches {ENTRY_ID_PATTERN.pattern}"
            )
        return cls(entry_id=text)

    @property
    def key(self) -> str:
        """The target as stored: ``hash:<type>:<hex>`` or ``entry:<id>``."""
        if self.entry_id is not None:
            return f"entry:{self.entry_id}"
        assert self.hash is not None
        return f"hash:{self.hash_type}:{self.hash.hex()}"


@dataclass(frozen=True)
class QuarantineRule:
    """The quarantine rule's two settings (see the module docstring).

    Attributes:
        matches_per_hour: N: more than this many events in the last hour (0: off).
        factor: K: and more than K times the hash's hourly average of the week before.
    """

    matches_per_hour: int = 100
    factor: float = 10.0

    def exceeded(self, last_hour: int, previous_week: int) -> bool:
        """Whether ``last_hour`` events, after ``previous_week`` in the 7 days
        before, is a surge to hold."""
        if self.matches_per_hour <= 0:
            return False
        average = previous_week / (WEEK / HOUR)
        return last_hour > self.matches_per_hour and last_hour > self.factor * average


@dataclass(frozen=True)
class Verdict:
    """The decision on one match, and what it rests on (``None`` for a block)."""

    decision: Decision = "block"
    by: str | None = None
    why: str | None = None
    since: str | None = None
    until: str | None = None
    rule: str | None = None
    """The reason when it is not the decision's usual one (``disputed``)."""

    @property
    def reason(self) -> str | None:
        """``allowlist``, ``disabled``, ``disputed`` or ``quarantine``; None for a block."""
        return self.rule or REASONS.get(self.decision)

    def to_dict(self) -> dict[str, Any]:
        """``decision``, and ``decision_reason``: null for a block, else the rule
        (``reason``) with who decided, why, since when and (a disable) until when."""
        if self.decision == "block":
            return {"decision": "block", "decision_reason": None}
        return {
            "decision": self.decision,
            "decision_reason": {
                "reason": self.reason,
                "by": self.by,
                "why": self.why,
                "since": self.since,
                "until": self.until,
            },
        }


BLOCK = Verdict()


class Policy:
    """The platform's decisions over one node's store, read fresh at each match, so
    that a change made by the command line holds at once in a running daemon."""

    def __init__(
        self, store: NodeStore, *, now: Callable[[], datetime], rule: QuarantineRule
    ) -> None:
        self.store = store
        self.now = now
        self.rule = rule

    # -- changes ----------------------------------------------------------------------

    def allow(self, target: Target, by: str, why: str) -> None:
        """Exempt a hash or an entry from blocking (replaces an earlier allowance of it)."""
        by, why = _text(by, "--by", MAX_BY), _text(why, "--why", MAX_WHY)
        with self.store.atomic():
            self.store.policy.put_exemption("allow", target.key, by, why, self.now(), None)

    def unallow(self, target: Target) -> None:
        with self.store.atomic():
            if not self.store.policy.drop_exemption("allow", target.key):
                raise PolicyError(f"{target.key} is not on the allowlist")

    def disable(self, target: Target, until: str, by: str, why: str) -> datetime:
        """Disable an entry until ``until`` (``YYYY-MM-DDTHH:MM:SSZ``, in the future)."""
        if target.entry_id is None:
            raise PolicyError("only an entry (--entry) is disabled; allow a hash instead")
        by, why = _text(by, "--by", MAX_BY), _text(why, "--why", MAX_WHY)
        try:
            end = parse_time(_text(until, "--until", 40), "--until")
        except MalformedError as e:
            raise PolicyError(str(e)) from e
        now = self.now()
        if end <= now:
            raise PolicyError(f"--until {until}: not after now ({format_time(now)})")
        with self.store.atomic():
            self.store.policy.put_exemption("disable", target.key, by, why, now, end)
        return end

    def enable(self, target: Target) -> None:
        """End an entry's disable before its time."""
        with self.store.atomic():
            if not self.store.policy.drop_exemption("disable", target.key):
                raise PolicyError(f"{target.key} is not disabled")

    def signed_distance(self, list_id: str) -> int:
        """The list's ``max_distance`` in the newest verified root."""
        roots = self.store.roots()
        root = Root.from_bytes(roots[-1][0]) if roots else None
        spec = None if root is None else root.lists.get(list_id)
        if spec is None:
            raise PolicyError(
                f"list {list_id[:80]!r} is not declared by the hub's root this node holds"
                " (run 'hashhub-node sync' first)"
            )
        return spec.max_distance

    def set_distance(self, list_id: str, max_distance: int, by: str) -> None:
        """Make a list stricter: match at most ``max_distance``, never above its signed one."""
        by = _text(by, "--by", MAX_BY)
        signed = self.signed_distance(_text(list_id, "LIST", 200))
        if not 0 <= max_distance <= signed:
            raise PolicyError(
                f"list {list_id}: distance {max_distance} refused: only a stricter distance"
                f" may be set, from 0 to the list's signed max_distance {signed}"
            )
        with self.store.atomic():
            self.store.policy.put_distance(list_id, max_distance, by, self.now())

    def reset_distance(self, list_id: str) -> None:
        with self.store.atomic():
            if not self.store.policy.drop_distance(list_id):
                raise PolicyError(f"list {list_id[:80]!r} has no distance of its own")

    def release(self, target: Target, by: str) -> int:
        """End the holds of a hash or an entry: it blocks again. Returns how many."""
        by = _text(by, "--by", MAX_BY)
        with self.store.atomic():
            released = self.store.policy.release_holds(target.hash, target.entry_id, by, self.now())
            if not released:
                raise PolicyError(f"{target.key} is not held")
        return released

    def confirm(self, target: Target, by: str, why: str) -> int:
        """Confirm a hold: the hash or entry goes on the allowlist and the hold ends."""
        by, why = _text(by, "--by", MAX_BY), _text(why, "--why", MAX_WHY)
        with self.store.atomic():
            released = self.release(target, by)
            self.allow(target, by, why)
        return released

    def set_disputed(self, choice: str, by: str | None) -> None:
        """Hold or block matches of entries whose dispute is open (``DISPUTED_CHOICES``)."""
        if choice not in DISPUTED_CHOICES:
            raise PolicyError(
                f"disputed entries: {choice[:40]!r} refused; one of {', '.join(DISPUTED_CHOICES)}"
            )
        who = None if by is None else _text(by, "--by", MAX_BY)
        with self.store.atomic():
            self.store.policy.put_setting(DISPUTED_SETTING, choice, who, self.now())

    def disputed(self) -> dict[str, Any]:
        """The choice on disputed entries: ``choice``, and who set it when (None: never set)."""
        row = self.store.policy.setting(DISPUTED_SETTING)
        if row is None:
            return {"choice": "block", "by": None, "at": None}
        return {"choice": row["value"], "by": row["by"], "at": row["at"]}

    # -- deciding ---------------------------------------------------------------------

    def max_distances(self) -> dict[str, int]:
        """Each list's own stricter distance (the lower of it and the signed one applies)."""
        return self.store.policy.distances()

    def judge(
        self,
        list_id: str,
        hash_type: str,
        listed: bytes,
        entry_id: str | None,
        *,
        recording: bool,
        open_dispute: bool = False,
    ) -> Verdict:
        """The decision on a match of ``listed`` (``entry_id``: its entry) in ``list_id``.

        ``open_dispute``: the entry's dispute is open in the list's newest summary
        (``node.store.opinions``; the caller reads it, once for a batch of hits).
        With ``recording`` (the match becomes an event) the quarantine rule may begin a
        hold, in the caller's transaction; a look only reads.
        """
        now = self.now()
        targets = [Target(hash_type=hash_type, hash=listed).key]
        if entry_id is not None:
            targets.append(Target(entry_id=entry_id).key)
        rows = self.store.policy.exemptions_of(targets)
        for row in rows:
            if row["kind"] == "allow":
                return Verdict("allowed", row["by"], row["why"], row["at"])
        for row in rows:
            if row["kind"] == "disable" and parse_time(row["until"], "until") > now:
                return Verdict("disabled", row["by"], row["why"], row["at"], row["until"])
        if open_dispute:
            chosen = self.disputed()
            if chosen["choice"] == "hold":
                why = "its entry is disputed by platforms and the hub has not decided"
                return Verdict("held", chosen["by"], why, chosen["at"], rule="disputed")
        hold = self.store.policy.hold(list_id, listed)
        if hold is not None and hold["released_at"] is None:
            return self._held(hold)
        if not recording or self.rule.matches_per_hour <= 0:
            return BLOCK
        start = now - HOUR
        if hold is not None:
            start = max(start, parse_time(hold["released_at"], "released_at"))
        later = now + timedelta(seconds=1)  # times are whole seconds: this second counts
        last_hour = self.store.policy.events_between(list_id, listed, start, later) + 1
        week = self.store.policy.events_between(list_id, listed, now - HOUR - WEEK, now - HOUR)
        if not self.rule.exceeded(last_hour, week):
            return BLOCK
        average = week / (WEEK / HOUR)
        self.store.policy.put_hold(list_id, listed, entry_id, now, last_hour, average)
        held = self.store.policy.hold(list_id, listed)
        assert held is not None
        return self._held(held)

    def _held(self, hold: dict[str, Any]) -> Verdict:
        why = (
            f"{hold['last_hour']} matches in an hour, against an hourly average of "
            f"{hold['week_average']:.2f} over the week before"
        )
        return Verdict("held", "quarantine", why, hold["held_at"])

    def decided(self, list_id: str, match_id: str, verdict: Verdict) -> None:
        """Count a recorded match's decision; one not blocked is also kept, with its
        reason, and counted as kept for the list's acks."""
        self.store.policy.count(verdict.decision)
        if verdict.reason is not None:
            self.store.policy.record_decision(match_id, verdict.decision, verdict.reason)
            self.store.policy.count_kept(list_id, verdict.reason)

    # -- reading ----------------------------------------------------------------------

    def counters(self) -> dict[str, int]:
        """How many recorded matches got each decision (local; the acks carry the kept
        ones per list and reason: ``kept``)."""
        counted = self.store.policy.counters()
        return {decision: counted.get(decision, 0) for decision in DECISIONS}

    def show(self) -> dict[str, Any]:
        """Everything the policy holds, and its counters, as ``policy show --json`` prints it."""
        now = self.now()
        exemptions = self.store.policy.exemptions()
        return {
            "allowlist": [
                {"target": r["target"], "by": r["by"], "why": r["why"], "at": r["at"]}
                for r in exemptions
                if r["kind"] == "allow"
            ],
            "disabled": [
                {
                    "target": r["target"],
                    "by": r["by"],
                    "why": r["why"],
                    "at": r["at"],
                    "until": r["until"],
                    "in_force": parse_time(r["until"], "until") > now,
                }
                for r in exemptions
                if r["kind"] == "disable"
            ],
            "distances": [
                {
                    "hub": r["hub"],
                    "list": r["list_id"],
                    "max_distance": r["max_distance"],
                    "by": r["by"],
                    "at": r["at"],
                }
                for r in self.store.policy.distance_rows()
            ],
            "holds": [
                {
                    "hub": r["hub"],
                    "list": r["list_id"],
                    "hash": bytes(r["hash"]).hex(),
                    "entry": r["entry_id"],
                    "held_at": r["held_at"],
                    "last_hour": r["last_hour"],
                    "week_average": r["week_average"],
                    "released_at": r["released_at"],
                    "released_by": r["released_by"],
                }
                for r in self.store.policy.holds()
            ],
            "quarantine": {
                "matches_per_hour": self.rule.matches_per_hour,
                "factor": self.rule.factor,
            },
            "disputed": self.disputed(),
            "counters": self.counters(),
        }
