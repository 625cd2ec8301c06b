"""Public submissions: a person's hash, its case number, the operators' review, and
the person's withdrawal.

The submission page sends only a hash (and, for PDQ, the quality the browser
computed), or for a video hashed by vPDQ its frames (PROTOCOL.md §6.3): the frames
are kept once in the ``frames`` table (``hub.services.frames``) and the case holds
their SHA-256, the hash of the ``vpdq`` record that will name them, so accepting
the case stages that record and publishing writes the frames file beside it. The
case number is the only key to the case. An accepted case is
staged like any other addition: into a ``hashes`` list with the case as its
provenance; into an ``entries`` list as an entry of source ``submission`` with no
ref, in every list of the collection that holds its hash type (the record never
names the case; ``submissions.entry_id`` is the hub's only link).

With the case number the person gets a withdrawal code, shown once. With both,
the person may withdraw the case: one not yet reviewed is withdrawn at once and
never listed; an accepted entry is retracted as ``withdrawn`` at once or after an
operator's review, as the ``withdrawal`` setting says (``WITHDRAWAL_POLICIES``).
A rejected case has nothing to withdraw; a case accepted into a ``hashes`` list
is not withdrawn here (bare hashes carry no entry to retract): the page says so.
Every step is in the action log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import asdict, dataclass
from typing import Any, Literal

from hub.errors import Conflict, Forbidden, InvalidRequest, NotFound
from hub.intake import Intake
from hub.services.context import HubContext
from hub.services.entries import Entries
from hub.services.frames import Frames, check_frames, good_frames
from hub.services.lists import Lists
from protocol import HASH_TYPES, format_time
from protocol.hashes import degenerate_reason
from protocol.hashtypes import submission_types
from protocol.video import (
    FRAME_BYTES,
    MIN_FRAMES_FOR_SHARE,
    MIN_QUALITY,
)

__all__ = [
    "CASE_STATUSES",
    "SUBMISSION_MAX_FRAMES",
    "WITHDRAWAL_MISMATCH",
    "WITHDRAWAL_POLICIES",
    "WITHDRAWAL_STATES",
    "CaseRecord",
    "CaseStatus",
    "CaseView",
    "Cases",
    "NewCase",
    "QueuedCase",
    "withdrawal_digest",
]

CaseStatus = Literal["received", "accepted", "rejected"]
CASE_STATUSES: tuple[CaseStatus, ...] = ("received", "accepted", "rejected")
WITHDRAWAL_STATES = ("requested", "withdrawn", "refused")
"""A case's ``withdrawal``: asked for and waiting for an operator, done, or refused."""
WITHDRAWAL_POLICIES = ("automatic", "review")
"""The values of the ``withdrawal`` setting."""
WITHDRAWAL_MISMATCH = "That case number and withdrawal code do not match."
"""The one answer to a wrong case number or a wrong code: it never says which."""

SUBMISSION_MAX_FRAMES = 3_600
"""Frames of a video a person may submit: an hour at one frame a second.

A tenth of what a list may carry (``protocol.video.MAX_FRAMES``, ten hours): the
public page is open to anyone, so each case may cost the hub at most
``SUBMISSION_MAX_FRAMES * FRAME_BYTES`` (133,200 bytes) of frames, and an hour
covers the recordings the page is for. A longer video is sent as the MD5 of its
file (the page says so), and operators may still list its frames themselves."""

CODE_BYTES = 20
"""A withdrawal code's random bytes: 160 bits, 32 base32 characters."""
_CODE = re.compile(r"[A-Z2-7]{32}")
_LOOKALIKES = str.maketrans("01", "OI")
"""Digits a person may type for the letters base32 uses (it has no 0 or 1)."""


def new_withdrawal_code() -> str:
    """A withdrawal code: 160 random bits in base32, in eight groups of four to copy."""
    text = base64.b32encode(secrets.token_bytes(CODE_BYTES)).decode("ascii")
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def withdrawal_digest(code: str) -> bytes | None:
    """What the hub stores of a withdrawal code: the SHA-256 of its 32 characters.

    Any case, dashes and spaces as typed; None for text that is no code. A plain
    SHA-256, not a slow password hash: a slow hash makes guessing a low-entropy
    secret (a password) from a stolen database expensive, but this code is 160
    random bits, so there is nothing to guess from the digest at any hashing speed,
    and the page's guesses are capped by the rate limits, not by the hash (the same
    reasoning as the hub's bearer tokens).
    """
    value = re.sub(r"[\s-]", "", code).upper().translate(_LOOKALIKES)
    if not _CODE.fullmatch(value):
        return None
    return hashlib.sha256(value.encode("ascii")).digest()


@dataclass(frozen=True)
class NewCase:
    """A new case: its number, and its withdrawal code, which the hub never shows again."""

    case: str
    withdrawal_code: str


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
    withdrawal: str | None = None
    """None, or one of ``WITHDRAWAL_STATES``."""
    published_version: int | None = None
    """The list version that first carried the hash, once an accepted case's is out."""
    removed_version: int | None = None
    """The version that took it out again, if one did."""
    withdrawable: bool = False
    """Whether the person may ask to withdraw it now (a code, nothing decided yet, and
    not reviewed or accepted as an entry)."""

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

    withdrawal: str | None
    published_version: int | None
    removed_version: int | None
    withdrawable: bool


class Cases:
    """The ``submissions`` table."""

    def __init__(self, ctx: HubContext, lists: Lists, entries: Entries, frames: Frames) -> None:
        self.ctx = ctx
        self.lists = lists
        self.entries = entries
        self.frames = frames
        """Where a video case's frames are kept."""

    def submit(self, hash_type: str, value: bytes, quality: int | None) -> str:
        """Store one public submission and return its case number (``open_case``)."""
        return self.open_case(hash_type, value, quality).case

    def open_case(self, hash_type: str, value: bytes, quality: int | None) -> NewCase:
        """Store one public submission; its case number and withdrawal code.

        The code is returned here and nowhere else: the hub keeps only its SHA-256
        (``withdrawal_digest``), so no one, operators included, can show it again.

        Only what the submission page sends is kept: the hash, its type (``pdq`` for
        an image; ``vpdq`` or ``md5`` for a video) and, for PDQ, the quality the
        browser computed. For ``vpdq`` the value is the video's frames, not a hash:
        they are kept in the ``frames`` table and the case's hash is their SHA-256
        (the record hash), both in one transaction, so no case names frames the hub
        lacks and no refused case leaves frames behind. The case number is 128
        random bits (32 hex digits): it is the only key to the case, so it cannot
        be guessed or counted through.

        The quality is the browser's claim and cannot be checked here: a claim below
        the type's ``min_quality`` is refused and the claim is kept for the reviewer, but no
        claim lets a degenerate hash in (``protocol.hashes.degenerate_reason`` is
        applied to every submission, whatever quality it carries).

        Raises:
            InvalidRequest: an unknown type, a hash of the wrong width, a degenerate
                hash, a hash of a type with a quality floor (PDQ) without a quality
                or below the floor (the intake rules); frames that break a rule of
                §6.3, more than ``SUBMISSION_MAX_FRAMES``, or fewer than
                ``MIN_FRAMES_FOR_SHARE`` distinct frames of quality ``MIN_QUALITY``.
        """
        kind = HASH_TYPES.get(hash_type)
        allowed = submission_types()
        if hash_type not in allowed or kind is None:
            raise InvalidRequest(f"a submission is one of {', '.join(allowed)}")
        frame_count = 0
        if kind.frames:
            frame_count = _check_submitted_frames(value)
        elif len(value) != kind.length:
            raise InvalidRequest(f"a {hash_type} hash is {kind.length} bytes")
        else:
            # Whatever quality the browser claims: the hub cannot check a claim, only the hash.
            reason = degenerate_reason(hash_type, value)
            if reason is not None:
                raise InvalidRequest(reason)
        _check_quality(hash_type, quality)
        case_number = secrets.token_hex(16)
        code = new_withdrawal_code()
        with self.ctx.db.atomic():
            record = value
            if kind.frames:
                record = hashlib.sha256(value).digest()
                self.frames.keep(record, value, frame_count)
            self.ctx.db.table("submissions").insert(
                {
                    "case_number": case_number,
                    "hash_type": hash_type,
                    "hash": record,
                    "quality": quality,
                    "status": "received",
                    "received": self.ctx.now().date().isoformat(),
                    "withdrawal_code": withdrawal_digest(code),
                }
            )
        return NewCase(case_number, code)

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

    def _position_after(self, after: str | None) -> int:
        """Where a page of cases starts: just after the case ``after`` (0: the first).

        Raises:
            NotFound: ``after`` names no case.
        """
        if after is None:
            return 0
        found = self.ctx.one("SELECT rowid AS n FROM submissions WHERE case_number = ?", [after])
        if found is None:
            raise NotFound("no case has the number given to start after")
        return int(found["n"])

    def _row(self, case_number: str) -> dict[str, Any]:
        row = self.ctx.one("SELECT * FROM submissions WHERE case_number = ?", [case_number])
        if row is None:
            raise NotFound("no case has that number")
        return row

    def _view(self, row: dict[str, Any]) -> CaseView:
        """The person's view of a case row, with the versions that added and removed an
        accepted case's hash (looked up by hash; an entry's by its id), once published."""
        added = removed = None
        if row["status"] == "accepted" and row["entry_id"] is not None:
            added, removed = self._entry_versions(row["list_id"], row["entry_id"])
        elif row["status"] == "accepted" and row["list_id"] is not None:
            entry = self.ctx.one(
                "SELECT added_version, removed_version FROM entries WHERE list_id = ? "
                "AND hash = ? ORDER BY removed_version IS NOT NULL, id DESC LIMIT 1",
                [row["list_id"], row["hash"]],
            )
            if entry is not None:
                added, removed = entry["added_version"], entry["removed_version"]
        withdrawable = row["withdrawal_code"] is not None and _withdrawal_refusal(row) is None
        return CaseView(
            **_seen(row),
            withdrawal=row["withdrawal"],
            published_version=added,
            removed_version=removed,
            withdrawable=withdrawable,
        )

    def _entry_versions(self, list_id: str, entry_id: str) -> tuple[int | None, int | None]:
        """The version of ``list_id`` that first carried the entry, and the one that
        took its last record out (None while a record of it stands)."""
        first = self.ctx.one(
            "SELECT min(added_version) AS v FROM entry_records WHERE list_id = ? AND entry_id = ?",
            [list_id, entry_id],
        )
        last = self.ctx.one(
            "SELECT removed_version FROM entry_records WHERE list_id = ? AND entry_id = ? "
            "ORDER BY id DESC LIMIT 1",
            [list_id, entry_id],
        )
        return (
            first["v"] if first else None,
            last["removed_version"] if last else None,
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
        start = self._position_after(after)
        # A case withdrawn before review is no longer anyone's to review.
        return [
            QueuedCase(**_seen(r), reviewer=r["reviewer"])
            for r in self.ctx.db.query(
                "SELECT * FROM submissions WHERE status = ? AND rowid > ? "
                "AND (status != 'received' OR withdrawal IS NULL) ORDER BY rowid LIMIT ?",
                [status, start, limit],
            )
        ]

    def review(
        self,
        case_number: str,
        *,
        accept: bool,
        list_id: str | None = None,
        category: str | None = None,
        classification: str | None = None,
        who: str = "operator",
    ) -> CaseView:
        """Accept a case into ``list_id``'s staged changes, or reject it; logged either way.

        Into a ``hashes`` list, the hash is staged like any other addition, with
        provenance source ``submission`` and the case number as its submission id.
        Into an ``entries`` list, it becomes an entry (``Entries.add_submission``) with
        ``category`` and ``classification``, which such a list requires and a
        ``hashes`` list refuses. Either goes out with the list's next publish. A case
        is reviewed once, and a withdrawn one not at all.

        Raises:
            NotFound: no such case, or no such list.
            Conflict: the case was already reviewed or withdrawn; its hash is
                already an entry of the list.
            InvalidRequest: no list named for an accept, a list of another hash type,
                a missing or unwanted category or classification, a term the
                vocabulary lacks.
        """
        with self.ctx.db.atomic():
            row = self._row(case_number)
            if row["status"] != "received":
                raise Conflict(f"case {case_number} was already {row['status']}")
            if row["withdrawal"] is not None:
                raise Conflict(f"case {case_number} was withdrawn by the person who submitted it")
            entry_id = None
            if accept:
                if list_id is None:
                    raise InvalidRequest("accepting a case needs the list to stage it in")
                entry_id = self._stage(row, list_id, who, category, classification)
            elif category is not None or classification is not None:
                raise InvalidRequest("a rejected case takes no category or classification")
            status: CaseStatus = "accepted" if accept else "rejected"
            self.ctx.db.execute(
                "UPDATE submissions SET status = ?, reviewed = ?, reviewer = ?, list_id = ?, "
                "entry_id = ? WHERE case_number = ?",
                [
                    status,
                    format_time(self.ctx.now()),
                    who,
                    list_id if accept else None,
                    entry_id,
                    case_number,
                ],
            )
            detail: dict[str, Any] = {"case": case_number}
            if accept:
                detail["list"] = list_id
            if entry_id is not None:
                detail["entry"] = entry_id
            self.ctx.log(f"case.{'accept' if accept else 'reject'}", who, detail)
        return self.get(case_number)

    def _stage(
        self,
        row: dict[str, Any],
        list_id: str,
        who: str,
        category: str | None,
        classification: str | None,
    ) -> str | None:
        """Stage an accepted case's hash in ``list_id``, which must hold its hash type;
        the new entry's id when the list holds entries."""
        case_number = row["case_number"]
        spec = self.lists.spec(list_id)
        if spec.hash_type != row["hash_type"]:
            raise InvalidRequest(
                f"case {case_number} is a {row['hash_type']} hash; "
                f"list {list_id} holds {spec.hash_type} hashes"
            )
        if spec.entries:
            if not category or not classification:
                raise InvalidRequest(
                    f"list {list_id} holds entries: accepting into it needs a category "
                    "and a classification from the vocabulary"
                )
            view = self.entries.add_submission(
                list_id, bytes(row["hash"]), category, classification, who
            )
            return view.entry
        if category is not None or classification is not None:
            raise InvalidRequest(
                f"list {list_id} holds bare hashes: a category and a classification "
                "are for an entries list"
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
        return None

    # -- withdrawal -------------------------------------------------------------------

    def withdraw(self, case_number: str, code: str, who: str = "submitter") -> CaseView:
        """The person's withdrawal of a case, proven by its withdrawal code.

        A case not yet reviewed is withdrawn at once, whatever the policy: nothing
        of it was published, and it leaves the review queue for good. An accepted
        entry is retracted as ``withdrawn`` at once under the ``automatic`` policy
        (published by each list's next publish), or waits for an operator
        (``decide_withdrawal``) under ``review``.

        Raises:
            Forbidden: no such case, a case without a code, or the wrong code: one
                answer (``WITHDRAWAL_MISMATCH``), so it never tells which.
            Conflict: a rejected case, a case accepted into a ``hashes`` list, or
                one whose withdrawal was already asked for, done or refused.
            InvalidRequest: the ``withdrawal`` setting is no known policy.
        """
        policy = self.ctx.config.withdrawal
        if policy not in WITHDRAWAL_POLICIES:
            raise InvalidRequest(
                f"withdrawal is {' or '.join(WITHDRAWAL_POLICIES)}, not {policy!r}"
            )
        digest = withdrawal_digest(code)
        with self.ctx.db.atomic():
            row = self.ctx.one("SELECT * FROM submissions WHERE case_number = ?", [case_number])
            stored = None if row is None else row["withdrawal_code"]
            # Compared whatever was found, so a missing case answers as a wrong code does.
            matched = hmac.compare_digest(
                bytes(stored) if stored is not None else bytes(32), digest or bytes(32)
            )
            if row is None or stored is None or digest is None or not matched:
                raise Forbidden(WITHDRAWAL_MISMATCH)
            _check_withdrawable(row)
            outcome = "withdrawn"
            if row["status"] == "accepted":
                if policy == "review":
                    outcome = "requested"
                else:
                    self.entries.withdraw(row["entry_id"], who)
            day = self.ctx.now().date().isoformat()
            self.ctx.db.execute(
                "UPDATE submissions SET withdrawal = ?, withdrawal_requested = ?, "
                "withdrawal_decided = ? WHERE case_number = ?",
                [outcome, day, day if outcome == "withdrawn" else None, case_number],
            )
            self.ctx.log("case.withdraw", who, {"case": case_number, "outcome": outcome})
        return self.get(case_number)

    def withdrawals(self, limit: int = 100, *, after: str | None = None) -> list[QueuedCase]:
        """Withdrawals waiting for an operator (the ``review`` policy), oldest case first.

        Raises:
            NotFound: ``after`` names no case.
        """
        start = self._position_after(after)
        return [
            QueuedCase(**_seen(r), reviewer=r["reviewer"])
            for r in self.ctx.db.query(
                "SELECT * FROM submissions WHERE withdrawal = 'requested' AND rowid > ? "
                "ORDER BY rowid LIMIT ?",
                [start, limit],
            )
        ]

    def decide_withdrawal(
        self, case_number: str, *, approve: bool, who: str = "operator"
    ) -> CaseView:
        """Approve a waiting withdrawal (its entry retracted as ``withdrawn``) or refuse
        it (the entry stays; the case page says so); logged either way.

        Raises:
            NotFound: no such case.
            Conflict: no withdrawal of the case waits for review.
        """
        with self.ctx.db.atomic():
            row = self._row(case_number)
            if row["withdrawal"] != "requested":
                raise Conflict(f"no withdrawal of case {case_number} waits for review")
            if approve and row["entry_id"] is not None:
                self.entries.withdraw(row["entry_id"], who)
            outcome = "withdrawn" if approve else "refused"
            self.ctx.db.execute(
                "UPDATE submissions SET withdrawal = ?, withdrawal_decided = ? "
                "WHERE case_number = ?",
                [outcome, self.ctx.now().date().isoformat(), case_number],
            )
            action = "approve" if approve else "refuse"
            self.ctx.log(f"case.withdrawal.{action}", who, {"case": case_number})
        return self.get(case_number)


def _withdrawal_refusal(row: dict[str, Any]) -> str | None:
    """Why a case may not be withdrawn now, in the person's words; ``None`` when it may.

    The one statement of the rule: the case page offers the form exactly when this is
    ``None`` (``CaseView.withdrawable``), and a proven withdrawal is refused with it.
    """
    if row["status"] == "rejected":
        return (
            "This case was not accepted: nothing of it is listed, so there is nothing to withdraw."
        )
    state = row["withdrawal"]
    if state == "withdrawn":
        return "This case is already withdrawn."
    if state == "requested":
        return "The withdrawal of this case was already asked for and waits for review."
    if state == "refused":
        return "The withdrawal of this case was refused by the hub's operators."
    if row["status"] == "accepted" and row["entry_id"] is None:
        return (
            "This case was accepted into a list of bare hashes. Withdrawal applies to "
            "entries lists only: please ask the hub's operators to remove it."
        )
    return None


def _check_withdrawable(row: dict[str, Any]) -> None:
    """What a proven withdrawal may still be refused for (``_withdrawal_refusal``)."""
    refusal = _withdrawal_refusal(row)
    if refusal is not None:
        raise Conflict(refusal)


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


def _check_submitted_frames(data: bytes) -> int:
    """A person's video frames: at most ``SUBMISSION_MAX_FRAMES``, and frames that can match.

    The cap is checked before the rules of the encoding so that a long video is told
    the public page's cap, not the protocol's. A video with fewer than
    ``MIN_FRAMES_FOR_SHARE`` distinct good frames (``good_frames``) has no share that
    counts (PROTOCOL.md §6.4): listed, it could never match anything, so it is refused
    rather than reviewed. Returns the number of frames.
    """
    if len(data) > SUBMISSION_MAX_FRAMES * FRAME_BYTES:
        raise InvalidRequest(
            f"a video is sent as at most {SUBMISSION_MAX_FRAMES} frames (an hour at one "
            f"frame a second); these are {len(data) // FRAME_BYTES}"
        )
    frames = check_frames(data)
    good = good_frames(frames)
    if len(good) < MIN_FRAMES_FOR_SHARE:
        raise InvalidRequest(
            f"frames: {len(good)} distinct frames of quality {MIN_QUALITY} or more with a "
            f"PDQ hash that is not degenerate, fewer than the {MIN_FRAMES_FOR_SHARE} a video "
            "needs to match anything"
        )
    return len(frames)


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
