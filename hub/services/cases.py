"""Public submissions: a person's hash, its case number, and the operators' review.

The submission page sends only a hash (and, for PDQ, the quality the browser
computed); the case number is the only key to the case. An accepted case is
staged like any other addition, with the case as its provenance.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from typing import Any, Literal

from hub.errors import Conflict, InvalidRequest, NotFound
from hub.intake import Intake
from hub.services.context import HubContext
from hub.services.lists import Lists
from protocol import HASH_TYPES, format_time
from protocol.hashes import degenerate_reason
from protocol.hashtypes import submission_types

__all__ = [
    "CASE_STATUSES",
    "CaseRecord",
    "CaseStatus",
    "CaseView",
    "Cases",
    "QueuedCase",
]

CaseStatus = Literal["received", "accepted", "rejected"]
CASE_STATUSES: tuple[CaseStatus, ...] = ("received", "accepted", "rejected")


@dataclass(frozen=True)
class CaseView:
    """A case as the person who submitted it may see it: never who reviewed it."""

    case: str
    hash_type: str
    hash: str
    quality: int | None
    status: CaseStatus
    received: str
    reviewed: str | None
    list: str | None
    published_version: int | None = None
    """The list version that first carried the hash, once an accepted case's is out."""
    removed_version: int | None = None
    """The version that took it out again, if one did."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class QueuedCase:
    """A case as the operators' review queue shows it, with who reviewed it."""

    case: str
    hash_type: str
    hash: str
    quality: int | None
    status: CaseStatus
    received: str
    reviewed: str | None
    reviewer: str | None
    list: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CaseRecord(QueuedCase):
    """One case as an operator looks it up: the queue's row and where its hash went.

    Apart from ``CaseView`` so that the person's view cannot carry the reviewer by
    mistake: the case page renders a ``CaseView`` and nothing else.
    """

    published_version: int | None
    removed_version: int | None


class Cases:
    """The ``submissions`` table."""

    def __init__(self, ctx: HubContext, lists: Lists) -> None:
        self.ctx = ctx
        self.lists = lists

    def submit(self, hash_type: str, value: bytes, quality: int | None) -> str:
        """Store one public submission and return its case number.

        Only what the submission page sends is kept: the hash, its type (``pdq`` for
        an image, ``md5`` for a video file) and, for PDQ, the quality the browser
        computed. The case number is 128 random bits (32 hex digits): it is the
        only key to the case, so it cannot be guessed or counted through.

        The quality is the browser's claim and cannot be checked here: a claim below
        the type's ``min_quality`` is refused and the claim is kept for the reviewer, but no
        claim lets a degenerate hash in (``protocol.hashes.degenerate_reason`` is
        applied to every submission, whatever quality it carries).

        Raises:
            InvalidRequest: an unknown type, a hash of the wrong width, a degenerate
                hash, a hash of a type with a quality floor (PDQ) without a quality
                or below the floor (the intake rules).
        """
        kind = HASH_TYPES.get(hash_type)
        allowed = submission_types()
        if hash_type not in allowed or kind is None:
            raise InvalidRequest(f"a submission is one of {', '.join(allowed)}")
        if len(value) != kind.length:
            raise InvalidRequest(f"a {hash_type} hash is {kind.length} bytes")
        # Whatever quality the browser claims: the hub cannot check a claim, only the hash.
        reason = degenerate_reason(hash_type, value)
        if reason is not None:
            raise InvalidRequest(reason)
        _check_quality(hash_type, quality)
        case_number = secrets.token_hex(16)
        self.ctx.db.table("submissions").insert(
            {
                "case_number": case_number,
                "hash_type": hash_type,
                "hash": value,
                "quality": quality,
                "status": "received",
                "received": self.ctx.now().date().isoformat(),
            }
        )
        return case_number

    def get(self, case_number: str) -> CaseView:
        """One case as the person who submitted it may see it.

        ``published_version`` is the list version that first carried the hash, once
        an accepted case's hash is in a published list (looked up by hash, so a hash
        that was already listed, or published from another case, counts too);
        ``removed_version`` is set if it was taken out again.

        Raises:
            NotFound: no case has that number.
        """
        return self._view(self._row(case_number))

    def review_record(self, case_number: str) -> CaseRecord:
        """One case as an operator sees it: ``get``'s view and who reviewed it.

        Read in one query of the case row, so the status and the reviewer always
        belong to the same review.

        Raises:
            NotFound: no case has that number.
        """
        row = self._row(case_number)
        return CaseRecord(**self._view(row).to_dict(), reviewer=row["reviewer"])

    def _row(self, case_number: str) -> dict[str, Any]:
        row = self.ctx.one("SELECT * FROM submissions WHERE case_number = ?", [case_number])
        if row is None:
            raise NotFound("no case has that number")
        return row

    def _view(self, row: dict[str, Any]) -> CaseView:
        """The person's view of a case row, with the versions that added and removed an
        accepted case's hash (looked up by hash), once published."""
        entry = None
        if row["status"] == "accepted" and row["list_id"] is not None:
            entry = self.ctx.one(
                "SELECT added_version, removed_version FROM entries WHERE list_id = ? "
                "AND hash = ? ORDER BY removed_version IS NOT NULL, id DESC LIMIT 1",
                [row["list_id"], row["hash"]],
            )
        return CaseView(
            **_seen(row),
            published_version=entry["added_version"] if entry else None,
            removed_version=entry["removed_version"] if entry else None,
        )

    def with_status(
        self, status: str = "received", limit: int = 100, *, after: str | None = None
    ) -> list[QueuedCase]:
        """Cases with ``status``, oldest first: the operators' review queue by default.

        ``after``, a case number, starts the page past that case (the last one of the
        previous page), whatever its status is now: a case reviewed between two pages
        still marks where the next one starts, so none is skipped or shown twice.

        Raises:
            InvalidRequest: an unknown status.
            NotFound: ``after`` names no case.
        """
        if status not in CASE_STATUSES:
            raise InvalidRequest(f"a case status is one of {', '.join(CASE_STATUSES)}")
        start = 0
        if after is not None:
            found = self.ctx.one(
                "SELECT rowid AS n FROM submissions WHERE case_number = ?", [after]
            )
            if found is None:
                raise NotFound("no case has the number given to start after")
            start = int(found["n"])
        return [
            QueuedCase(**_seen(r), reviewer=r["reviewer"])
            for r in self.ctx.db.query(
                "SELECT * FROM submissions WHERE status = ? AND rowid > ? ORDER BY rowid LIMIT ?",
                [status, start, limit],
            )
        ]

    def review(
        self, case_number: str, *, accept: bool, list_id: str | None = None, who: str = "operator"
    ) -> CaseView:
        """Accept a case into ``list_id``'s staged changes, or reject it; logged either way.

        An accepted hash is staged like any other addition, with provenance source
        ``submission`` and the case number as its submission id, and goes out with
        the list's next publish. A case is reviewed once.

        Raises:
            NotFound: no such case, or no such list.
            Conflict: the case was already reviewed.
            InvalidRequest: no list named for an accept, or a list of another hash type.
        """
        with self.ctx.db.atomic():
            row = self._row(case_number)
            if row["status"] != "received":
                raise Conflict(f"case {case_number} was already {row['status']}")
            if accept:
                if list_id is None:
                    raise InvalidRequest("accepting a case needs the list to stage it in")
                self._stage(row, list_id, who)
            status: CaseStatus = "accepted" if accept else "rejected"
            self.ctx.db.execute(
                "UPDATE submissions SET status = ?, reviewed = ?, reviewer = ?, list_id = ? "
                "WHERE case_number = ?",
                [
                    status,
                    format_time(self.ctx.now()),
                    who,
                    list_id if accept else None,
                    case_number,
                ],
            )
            detail = {"case": case_number, **({"list": list_id} if accept else {})}
            self.ctx.log(f"case.{'accept' if accept else 'reject'}", who, detail)
        return self.get(case_number)

    def _stage(self, row: dict[str, Any], list_id: str, who: str) -> None:
        """Stage an accepted case's hash in ``list_id``, which must hold its hash type."""
        case_number = row["case_number"]
        spec = self.lists.spec(list_id)
        if spec.hash_type != row["hash_type"]:
            raise InvalidRequest(
                f"case {case_number} is a {row['hash_type']} hash; "
                f"list {list_id} holds {spec.hash_type} hashes"
            )
        self.lists.stage(
            list_id,
            adds=[
                Intake(
                    bytes(row["hash"]),
                    quality=row["quality"],
                    source="submission",
                    submission_id=case_number,
                )
            ],
            who=who,
        )


def _seen(row: dict[str, Any]) -> dict[str, Any]:
    """What every view of a case shows of its ``submissions`` row."""
    return {
        "case": row["case_number"],
        "hash_type": row["hash_type"],
        "hash": bytes(row["hash"]).hex(),
        "quality": row["quality"],
        "status": row["status"],
        "received": row["received"],
        "reviewed": row["reviewed"],
        "list": row["list_id"],
    }


def _check_quality(hash_type: str, quality: int | None) -> None:
    """A type with a quality floor (PDQ) carries a quality at or above it; no other has one."""
    kind = HASH_TYPES[hash_type]
    if kind.min_quality is not None:
        if quality is None or not 0 <= quality <= 100:
            raise InvalidRequest(f"a {kind.label} submission carries its quality, 0 to 100")
        if quality < kind.min_quality:
            raise InvalidRequest(
                f"{kind.label} quality {quality} is below {kind.min_quality}: the picture has "
                "too little detail for its hash to match reliably"
            )
    elif quality is not None:
        raise InvalidRequest(f"a {hash_type} submission has no quality")
