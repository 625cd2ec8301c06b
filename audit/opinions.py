"""Check every opinion summary a hub published, and redo each from the signed acks.

With a version of a list of entries the hub may publish what the platforms say of
its entries (``hashhub.opinions.v1``, PROTOCOL.md §10.7), named by the header so
the delta signature covers it. A node reads one summary; the auditor reads them
all, which is the only place two rules can be seen:

1. **One summary after another** (``SummaryHistory``, from ``verify``'s replay):
   the cut never goes back (a node once counted stays, its ``seq`` never
   decreases: ``OpinionsRollback``), and each dispute lives one consistent life —
   its ``opened`` fixed while it lasts, a dismissal never undone, a new one opened
   after the summary before it, one that leaves upheld only by a removal with the
   reason ``disputed`` (``DisputeHistory``). The lives are the report's **dispute
   history**: opened, dismissed (by whom), ended ``upheld`` or ``withdrawn`` (or
   ``removed`` with another reason) at a version.
2. **Each summary against the acks** (``recompute``, from ``acks``): the summary
   is a fold of signed acks up to its cut, so with every ack the hub stored the
   auditor folds them again (``protocol.fold_positions``, ``voices_of``) and every
   voice must be the newest position of its platform, said by an ack the hub has
   and that verifies: else ``SummaryMismatch``, naming the entry and platform.

The checks here produce ``Breach`` records; the caller makes them findings of its
report (this module reads nothing itself, so ``verify`` and ``acks`` share it).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from protocol import Ack, EntriesBody, OpinionSummary, fold_positions, format_time
from protocol.opinions import Dispute, EntryOpinions, Position, Voice

__all__ = [
    "OPINION_RULES",
    "SECTION",
    "Breach",
    "CheckedSummary",
    "DisputeLife",
    "SummaryHistory",
    "recompute",
]

SECTION = "PROTOCOL.md §10.7"
OPINION_RULES = frozenset({"OpinionsRollback", "DisputeHistory", "SummaryMismatch"})
"""Rules of the hub's summaries that no verifier of one version applies."""


@dataclass(frozen=True)
class Breach:
    """A rule a summary broke: the file it is in, the rule, what happened."""

    file: str
    rule: str
    message: str
    section: str = SECTION


@dataclass
class DisputeLife:
    """One dispute of an entry, from the summary that first shows it to the one it left."""

    entry: str
    opened: datetime
    state: str = "open"
    dismissed: datetime | None = None
    by: str | None = None
    ended: str | None = None
    """``upheld``, ``withdrawn``, ``removed`` (another reason took the entry), or None."""
    at: int | None = None
    """The version it ended at: the one that removed the entry, or the first summary
    without it."""
    reason: str | None = None
    """Of a dispute ``removed``: the removal's reason."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "entry": self.entry,
            "opened": format_time(self.opened),
            "state": self.state,
            "dismissed": format_time(self.dismissed) if self.dismissed else None,
            "by": self.by,
            "ended": self.ended,
            "at": self.at,
            "reason": self.reason,
        }

    def line(self) -> str:
        said = f"dispute {self.entry}: opened {format_time(self.opened)}"
        if self.dismissed is not None:
            said += f", dismissed {format_time(self.dismissed)} by {self.by}"
        if self.ended is None:
            return f"{said}, {self.state}"
        how = f"{self.ended} ({self.reason})" if self.reason else self.ended
        return f"{said}, ended {how} at v{self.at}"


@dataclass(frozen=True)
class CheckedSummary:
    """A summary that verified against its header, root and state (§10.7)."""

    version: int
    path: str
    summary: OpinionSummary


@dataclass
class SummaryHistory:
    """A list's summaries in version order, and the life of every dispute they show.

    ``see`` is told each version's body as the replay applies it, ``add`` each
    verified summary; what the summary breaks against the ones before is returned.
    """

    summaries: list[CheckedSummary] = field(default_factory=list)
    disputes: list[DisputeLife] = field(default_factory=list)
    _live: dict[str, DisputeLife] = field(default_factory=dict, repr=False)
    _removed: dict[str, tuple[int, str]] = field(default_factory=dict, repr=False)
    """Entries removed since the last summary: entry id → (version, reason)."""

    def see(self, version: int, body: EntriesBody) -> None:
        """Note the removals of one version (a dispute may end by one)."""
        for removal in body.removes:
            self._removed[removal.entry.entry_id] = (version, removal.reason)
        for entry in body.adds:  # a change removes and adds: the entry stays
            self._removed.pop(entry.entry_id, None)

    def add(self, path: str, summary: OpinionSummary) -> list[Breach]:
        """Take the next summary; the rules it breaks against the one before it."""
        breaches: list[Breach] = []
        previous = self.summaries[-1].summary if self.summaries else None
        if previous is not None:
            breaches += _cut_kept(path, previous, summary)
            breaches += self._lives(path, previous, summary)
        else:
            for entry_id, said in sorted(summary.entries.items()):
                if said.dispute is not None:
                    self._begin(entry_id, said)
        self.summaries.append(CheckedSummary(summary.version, path, summary))
        self._removed.clear()
        return breaches

    def _begin(self, entry_id: str, said: EntryOpinions) -> None:
        assert said.dispute is not None
        life = DisputeLife(entry_id, said.dispute.opened)
        _follow(life, said)
        self._live[entry_id] = life
        self.disputes.append(life)

    def _lives(self, path: str, previous: OpinionSummary, summary: OpinionSummary) -> list[Breach]:
        """Each dispute's life from ``previous`` to ``summary`` (§10.7)."""
        breaches = []
        version = summary.version
        for entry_id, said in sorted(summary.entries.items()):
            dispute = said.dispute
            life = self._live.get(entry_id)
            if dispute is None:
                continue
            if life is None:
                # Times are to the second: one opened in the second v-1 was made is after it.
                if dispute.opened < previous.created:
                    breaches.append(
                        _history(
                            path,
                            f"entry {entry_id}: dispute first shown at v{version} was opened "
                            f"{format_time(dispute.opened)}, before v{previous.version} "
                            f"({format_time(previous.created)}), which shows none",
                        )
                    )
                self._begin(entry_id, said)
                continue
            if dispute.opened != life.opened:
                breaches.append(
                    _history(
                        path,
                        f"entry {entry_id}: dispute opened {format_time(life.opened)} shows "
                        f"opened {format_time(dispute.opened)} at v{version}",
                    )
                )
            breaches += _dismissal_kept(path, version, life, dispute)
            _follow(life, said)
        for entry_id, life in sorted(self._live.items()):
            if entry_id in summary.entries and summary.entries[entry_id].dispute is not None:
                continue
            removed = self._removed.get(entry_id)
            if removed is None:
                life.ended, life.at = "withdrawn", version
            elif removed[1] == "disputed":
                life.ended, life.at = "upheld", removed[0]
            else:
                life.ended, life.at, life.reason = "removed", removed[0], removed[1]
            del self._live[entry_id]
        for entry_id, (at, reason) in sorted(self._removed.items()):
            had = previous.entries.get(entry_id)
            if reason == "disputed" and (had is None or had.dispute is None):
                breaches.append(
                    _history(
                        path,
                        f"entry {entry_id}: removed as disputed at v{at}, but v"
                        f"{previous.version} shows no dispute of it",
                    )
                )
        return breaches

    def to_dict(self) -> dict[str, Any]:
        return {
            "summaries_checked": [s.version for s in self.summaries],
            "disputes": [life.to_dict() for life in self.disputes],
        }


def _dismissal_kept(path: str, version: int, life: DisputeLife, now: Dispute) -> list[Breach]:
    """A dismissed dispute stays dismissed, when and by whom it was: the operator's
    decision is part of the signed history."""
    if life.dismissed is None or (now.dismissed, now.by) == (life.dismissed, life.by):
        return []
    shown = (
        f"dismissed {format_time(now.dismissed)} by {now.by}"
        if now.dismissed is not None
        else now.state
    )
    return [
        _history(
            path,
            f"entry {life.entry}: dispute dismissed {format_time(life.dismissed)} by "
            f"{life.by} is {shown} at v{version}",
        )
    ]


def _follow(life: DisputeLife, said: EntryOpinions) -> None:
    assert said.dispute is not None
    life.state = said.dispute.state
    life.dismissed, life.by = said.dispute.dismissed, said.dispute.by


def _history(path: str, message: str) -> Breach:
    return Breach(path, "DisputeHistory", message)


def _cut_kept(path: str, previous: OpinionSummary, summary: OpinionSummary) -> list[Breach]:
    """The cut of ``summary`` keeps every node of ``previous``'s, at its ``seq`` or above:
    a hub refuses a ``seq`` at or below a node's highest (§10.5.2), so a cut that goes
    back un-counts acks it had counted."""
    breaches = []
    for node, cut in sorted(previous.nodes.items()):
        now = summary.nodes.get(node)
        if now is None:
            message = f"node {node} (seq {cut.seq} at v{previous.version}) left the cut"
        elif now.seq < cut.seq:
            message = f"node {node} went from seq {cut.seq} at v{previous.version} to {now.seq}"
        else:
            continue
        breaches.append(Breach(path, "OpinionsRollback", f"v{summary.version}: {message}"))
    return breaches


# -- each summary against the acks --------------------------------------------------------


def recompute(
    history: SummaryHistory,
    bodies: Mapping[int, EntriesBody],
    stored: Mapping[tuple[str, int], Ack | None],
    keyless: Iterable[str],
) -> list[Breach]:
    """Redo every summary of one list from the acks the hub stored, and compare.

    Args:
        history: the list's verified summaries.
        bodies: the list's bodies by version (which entries it held when).
        stored: every ack the hub stored, of every list, by (node, seq): the
            verified ``Ack``, or None when it did not verify.
        keyless: nodes without a key to verify their acks with: their platforms'
            positions cannot be redone (an ``Unverifiable`` breach each).
    """
    no_key = set(keyless)
    verified = [ack for ack in stored.values() if ack is not None]
    spoken = {entry_id for ack in verified for entry_id in ack.opinions}
    held = _Held(bodies, spoken)
    breaches: list[Breach] = []
    unverifiable: set[str] = set()
    for checked in history.summaries:
        summary = checked.summary
        blind = {cut.platform for node, cut in summary.nodes.items() if node in no_key}
        for node in sorted(set(summary.nodes) & no_key - unverifiable):
            unverifiable.add(node)
            breaches.append(
                Breach(
                    checked.path,
                    "Unverifiable",
                    f"node {node} is in the cut of v{summary.version} and has no key to "
                    f"verify its acks with (give --node-key {node}=FILE)",
                )
            )
        positions = fold_positions(verified, summary.nodes)
        at = held.at(summary.version)
        for entry_id in sorted(set(summary.entries) | (set(positions) & at)):
            breaches += _compare_entry(
                checked, entry_id, positions.get(entry_id, {}), stored, blind
            )
    return breaches


class _Held:
    """Which entries some ack speaks of the list holds, version after version: one
    pass over the bodies for all the summaries, which come in version order."""

    def __init__(self, bodies: Mapping[int, EntriesBody], entry_ids: set[str]) -> None:
        self._bodies = bodies
        self._pending = deque(sorted(bodies))
        self._entry_ids = entry_ids
        self._held: set[str] = set()

    def at(self, version: int) -> set[str]:
        while self._pending and self._pending[0] <= version:
            body = self._bodies[self._pending.popleft()]
            self._held -= {r.entry.entry_id for r in body.removes}
            self._held |= {e.entry_id for e in body.adds if e.entry_id in self._entry_ids}
        return self._held


def _compare_entry(
    checked: CheckedSummary,
    entry_id: str,
    positions: Mapping[str, Position],
    stored: Mapping[tuple[str, int], Ack | None],
    blind: set[str],
) -> list[Breach]:
    """One entry's voices against the platforms' newest positions in the cut."""
    said = checked.summary.entries.get(entry_id, EntryOpinions())
    voices: dict[str, tuple[str, Voice]] = {p: ("confirmed", v) for p, v in said.confirmed.items()}
    voices |= {p: ("disputed", v) for p, v in said.disputed.items()}
    breaches = []
    for platform in sorted(set(voices) | set(positions)):
        if platform in blind:
            continue
        where = f"v{checked.version}: entry {entry_id}, platform {platform}"
        problem = _voice_problem(voices.get(platform), positions.get(platform), entry_id, stored)
        if problem:
            breaches.append(Breach(checked.path, "SummaryMismatch", f"{where}: {problem}"))
    return breaches


def _voice_problem(
    voice: tuple[str, Voice] | None,
    newest: Position | None,
    entry_id: str,
    stored: Mapping[tuple[str, int], Ack | None],
) -> str:
    """What is wrong with one platform's voice on one entry, or ``""``."""
    if voice is not None:
        group, counted = voice
        key = (counted.node, counted.seq)
        if key not in stored:
            return (
                f"the voice names ack {counted.node} seq {counted.seq}, which the hub does not have"
            )
        ack = stored[key]
        if ack is None:
            return f"the voice names ack {counted.node} seq {counted.seq}, which does not verify"
        opinion = ack.opinions.get(entry_id)
        if opinion is None or (opinion.position, opinion.reason) != (group, counted.reason):
            signed = "nothing of it" if opinion is None else _said(opinion.position, opinion.reason)
            return (
                f"the voice says {_said(group, counted.reason)} by {counted.node} seq "
                f"{counted.seq}; that ack says {signed}"
            )
        if newest is not None and (newest.node, newest.seq) != key:
            return (
                f"the voice counts {counted.node} seq {counted.seq}; a newer position in the "
                f"cut was left out: {_said(newest.opinion.position, newest.opinion.reason)} "
                f"by {newest.node} seq {newest.seq}"
            )
        return ""
    if newest is None or newest.opinion.position == "none":
        return ""
    return (
        f"its position in the cut was left out: "
        f"{_said(newest.opinion.position, newest.opinion.reason)} by {newest.node} seq "
        f"{newest.seq}"
    )


def _said(position: str, reason: str | None) -> str:
    return f"{position}({reason})" if reason else position
