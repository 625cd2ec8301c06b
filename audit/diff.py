"""What changed in a list between two versions, and which keys signed each change.

Built on a full verification of the list (``audit.verify``): only a log whose
every header, body and state verified is diffed. The result is the net change —
hashes in version V2's state and not in V1's (added), and the reverse (removed) —
each attributed to the last version in V1+1 … V2 that changed it, with the key
ids of the ``delta`` role whose signatures on that header verified. A hash added
and removed again between the two versions is in neither list.

Of a list of entries the change is of records: each names its entry, and a
removed one the reason its last removal gave (``withdrawn``, ``expired``, …); a
changed entry is its old record removed and its new one added.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from audit.verify import ListReport, VersionInfo
from protocol import DeltaBody, EntriesBody, EntryState, ListState

__all__ = ["Change", "ListDiff", "diff_versions"]


@dataclass(frozen=True)
class Change:
    """One hash added or removed, and the version (and signers) that did it."""

    hash: str
    version: int
    signed_by: tuple[str, ...]
    root_version: int
    entry: str | None = None
    record: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "hash": self.hash,
            "version": self.version,
            "root_version": self.root_version,
            "signed_by": list(self.signed_by),
        }
        if self.entry is not None:
            out.update(entry=self.entry, record=self.record, reason=self.reason)
        return out


@dataclass
class ListDiff:
    """The net change of one list from ``old`` to ``new``."""

    list_id: str
    old: int
    new: int
    added: list[Change] = field(default_factory=list)
    removed: list[Change] = field(default_factory=list)
    versions: list[VersionInfo] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "list": self.list_id,
            "from": self.old,
            "to": self.new,
            "added": [c.to_dict() for c in self.added],
            "removed": [c.to_dict() for c in self.removed],
            "versions": [v.to_dict() for v in self.versions],
        }


def diff_versions(report: ListReport, old: int, new: int) -> ListDiff:
    """The net change between versions ``old`` and ``new`` of a verified list.

    ``report`` must come from ``verify_tree(..., keep={old, new})`` and have verified.
    """
    before, after = _items(report.states[old]), _items(report.states[new])
    infos = {v.version: v for v in report.versions}
    last: dict[bytes, int] = {}
    reasons: dict[bytes, str] = {}
    for version in range(old + 1, new + 1):
        body = report.bodies[version]
        for item, reason in _changes(body):
            last[item] = version
            if reason is not None:
                reasons[item] = reason

    def change(item: bytes) -> Change:
        info = infos[last[item]]
        if isinstance(report.states[new], ListState):
            return Change(item.hex(), info.version, info.signed_by, info.root_version)
        fields = item.split(b" ")
        return Change(
            fields[0].decode(),
            info.version,
            info.signed_by,
            info.root_version,
            entry=fields[1].decode(),
            record=item.decode(),
            reason=reasons.get(item) if item in before else None,
        )

    return ListDiff(
        report.list_id,
        old,
        new,
        added=[change(h) for h in sorted(after - before)],
        removed=[change(h) for h in sorted(before - after)],
        versions=[infos[v] for v in range(old + 1, new + 1)],
    )


def _items(state: ListState | EntryState) -> set[bytes]:
    """What a state holds, as the diff compares it: hashes, or record lines."""
    return set(state) if isinstance(state, ListState) else set(state.lines())


def _changes(body: DeltaBody | EntriesBody) -> list[tuple[bytes, str | None]]:
    """What a body touched (as ``_items`` names it), each removal with its reason."""
    if isinstance(body, DeltaBody):
        return [(h, None) for h in (*body.removes, *body.adds)]
    return [(r.entry.line, r.reason) for r in body.removes] + [(e.line, None) for e in body.adds]
