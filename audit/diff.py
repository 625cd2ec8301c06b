"""What changed in a list between two versions, and which keys signed each change.

Built on a full verification of the list (``audit.verify``): only a log whose
every header, body and state verified is diffed. The result is the net change —
hashes in version V2's state and not in V1's (added), and the reverse (removed) —
each attributed to the last version in V1+1 … V2 that changed it, with the key
ids of the ``delta`` role whose signatures on that header verified. A hash added
and removed again between the two versions is in neither list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from audit.verify import ListReport, VersionInfo

__all__ = ["Change", "ListDiff", "diff_versions"]


@dataclass(frozen=True)
class Change:
    """One hash added or removed, and the version (and signers) that did it."""

    hash: str
    version: int
    signed_by: tuple[str, ...]
    root_version: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "hash": self.hash,
            "version": self.version,
            "root_version": self.root_version,
            "signed_by": list(self.signed_by),
        }


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
    before, after = set(report.states[old]), set(report.states[new])
    infos = {v.version: v for v in report.versions}
    last: dict[bytes, int] = {}
    for version in range(old + 1, new + 1):
        body = report.bodies[version]
        for h in (*body.removes, *body.adds):
            last[h] = version

    def change(h: bytes) -> Change:
        info = infos[last[h]]
        return Change(h.hex(), info.version, info.signed_by, info.root_version)

    return ListDiff(
        report.list_id,
        old,
        new,
        added=[change(h) for h in sorted(after - before)],
        removed=[change(h) for h in sorted(before - after)],
        versions=[infos[v] for v in range(old + 1, new + 1)],
    )
