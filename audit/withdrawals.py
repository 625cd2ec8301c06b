"""Hold the hub to its withdrawal delay: every granted withdrawal published in time.

A person may withdraw an entry; the hub grants it at once or after an operator's
review, and must then publish the entry's removal, with the reason ``withdrawn``,
within the newest root's ``max_withdrawal_delay`` (PROTOCOL.md §12 item 8; a day
by default). The published files say when each removal came (its version's
``created``); the hub's operator API says when each withdrawal was granted:

- the action log (``GET /v1/admin/actions``, read page after page to its first
  line) has a line ``entry.retract`` with the
  reason ``withdrawn`` at the moment an entry was withdrawn, automatically or by
  an operator's approval, and a line ``case.withdraw`` (outcome ``requested``) at
  the moment a request began waiting for review;
- ``GET /v1/admin/withdrawals`` lists the requests still waiting.

A grant whose entry a list still held at a version made after the deadline, or
removed for another reason, or still holds at the end while the deadline has
passed by the run's time, is a ``LateWithdrawal``; a request still waiting past
the delay is an ``UndecidedWithdrawal``. The whole action log is read (at most
``_MAX_PAGES`` pages of ``ACTIONS_READ`` lines); should the hub's answers stop
short of its first line, the report says from when it read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from audit.opinions import Breach
from audit.verify import TreeReport
from protocol import EntriesBody, ProtocolError, format_time, parse_time

__all__ = [
    "SECTION",
    "WITHDRAWALS_NEEDS",
    "Grant",
    "WithdrawalsReport",
    "audit_withdrawals",
    "check_withdrawals",
    "grants_of",
    "removed_in_time",
]

SECTION = "PROTOCOL.md §12 item 8"
WITHDRAWALS_NEEDS = "GET /v1/admin/actions and /v1/admin/withdrawals (auditor role)"
"""What reading the grants needs, named in a finding when the hub refuses it."""
ACTIONS_READ = 1000
"""Lines of the action log per page: the most the hub answers at once."""
_MAX_PAGES = 100_000
"""Pages of waiting withdrawals followed at most."""
Read = Callable[[str], Any | None]
"""GET an operator route as JSON; None when it could not be read (the caller said why)."""


@dataclass(frozen=True)
class Grant:
    """A withdrawal granted: the entry retracted as ``withdrawn``, when, by whom."""

    entry: str
    at: datetime
    who: str


@dataclass
class WithdrawalsReport:
    """What the withdrawal check read and found on time."""

    log_from: str | None = None
    """The oldest line of the action log read (None: the log was not read)."""
    granted: list[dict[str, Any]] = field(default_factory=list)
    waiting: list[str | None] = field(default_factory=list)
    """When each request waiting for review was made (None: before the log read).
    Never the case: a case number lets its holder withdraw, and a report is shared."""
    delay: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "log_from": self.log_from,
            "delay": self.delay,
            "granted": self.granted,
            "waiting": self.waiting,
        }


def audit_withdrawals(
    read: Read, tree: TreeReport
) -> tuple[WithdrawalsReport | None, list[Breach]]:
    """Read the grants and the waiting requests, and check them against every
    verified list of entries of ``tree``, as of its run's time. Nothing is read when
    the tree has no such list (no withdrawal to publish)."""
    lists = {
        r.list_id: (
            [(v.version, v.created) for v in r.versions],
            {v: b for v, b in r.bodies.items() if isinstance(b, EntriesBody)},
        )
        for r in tree.lists
        if r.format == "entries" and r.status == "verified"
    }
    if not lists or tree.policy is None:
        return None, []
    route = "v1/admin/actions"
    try:
        read_all = _action_log(read)
        if read_all is None:
            return None, []
        lines, complete = read_all
        grants, requested = grants_of(lines)
        oldest = min((parse_time(str(line["at"]), "action log") for line in lines), default=None)
        route = "v1/admin/withdrawals"
        waiting = _waiting_cases(read)
    except (ValueError, KeyError, TypeError, ProtocolError) as e:
        return None, [Breach(route, "Unreadable", f"unexpected answer: {e}", WITHDRAWALS_NEEDS)]
    if waiting is None:
        return None, []
    return check_withdrawals(
        grants,
        requested,
        waiting,
        None if complete else oldest,
        lists,
        delay=tree.policy.withdrawal_delay,
        now=tree.at,
    )


def _action_log(read: Read) -> tuple[list[Mapping[str, Any]], bool] | None:
    """Every line of the action log, newest first, page after page (``before``), and
    whether the last page was reached.

    Raises:
        ValueError, KeyError, TypeError: an answer that is not a page of the log.
    """
    lines: list[Mapping[str, Any]] = []
    before = ""
    for _ in range(_MAX_PAGES):
        payload = read(f"v1/admin/actions?limit={ACTIONS_READ}{before}")
        if payload is None:
            return None
        page = payload["actions"]
        if not isinstance(page, list):
            raise TypeError("actions is not a list")
        lines += page
        following = payload.get("next")
        if following is None or not page:
            return lines, True
        if not isinstance(following, int) or isinstance(following, bool) or following < 1:
            raise ValueError(f"next is {following!r}, not a line id")
        before = f"&before={following}"
    return lines, False


def _waiting_cases(read: Read) -> list[str] | None:
    """The cases whose withdrawal waits for review, page after page (``after``).

    Raises:
        ValueError, KeyError, TypeError: an answer that is not a page of cases.
    """
    cases: list[str] = []
    after = ""
    for _ in range(_MAX_PAGES):
        payload = read(f"v1/admin/withdrawals?limit={ACTIONS_READ}{after}")
        if payload is None:
            return None
        page = [str(row["case"]) for row in payload["cases"]]
        following = payload.get("next")
        if not page or not isinstance(following, str) or following in cases:
            cases += page
            break
        cases += page
        after = f"&after={following}"
    return cases


def grants_of(actions: Sequence[Mapping[str, Any]]) -> tuple[list[Grant], dict[str, datetime]]:
    """The grants in the action log, and when each case's request began to wait.

    Raises:
        ValueError: a line that is not one (the hub's answer is unreadable).
    """
    grants, requested = [], {}
    for line in actions:
        try:
            at = parse_time(str(line["at"]), "action log: at")
        except (KeyError, ProtocolError) as e:
            raise ValueError(f"action log line {line.get('id')!r}: {e}") from e
        detail = line.get("detail")
        if not isinstance(detail, Mapping):
            continue
        action = line.get("action")
        if action == "entry.retract" and detail.get("reason") == "withdrawn":
            grants.append(Grant(str(detail.get("entry")), at, str(line.get("who"))))
        elif action == "case.withdraw" and detail.get("outcome") == "requested":
            requested[str(detail.get("case"))] = at
    return grants, requested


def check_withdrawals(
    grants: Sequence[Grant],
    requested: Mapping[str, datetime],
    waiting: Sequence[str],
    log_from: datetime | None,
    lists: Mapping[str, tuple[Sequence[tuple[int, datetime]], Mapping[int, EntriesBody]]],
    *,
    delay: int,
    now: datetime,
) -> tuple[WithdrawalsReport, list[Breach]]:
    """Each grant against every list of entries, each waiting request against the delay.

    Args:
        grants, requested: from ``grants_of``.
        waiting: the cases ``/v1/admin/withdrawals`` lists as waiting.
        log_from: the time of the oldest action log line read.
        lists: per list of entries, its versions (number, ``created``) and bodies.
        delay: the root's withdrawal delay, in seconds.
        now: the run's time.
    """
    report = WithdrawalsReport(format_time(log_from) if log_from else None, delay=delay)
    limit = timedelta(seconds=delay)
    breaches = []
    for grant in sorted(grants, key=lambda g: (g.at, g.entry)):
        removed: dict[str, int] = {}
        for list_id, (versions, bodies) in sorted(lists.items()):
            version, problem = _on_time(grant, versions, bodies, grant.at + limit, now)
            if version is not None:
                removed[list_id] = version
            if problem:
                breaches.append(Breach(f"list {list_id}", "LateWithdrawal", problem, SECTION))
        report.granted.append(
            {
                "entry": grant.entry,
                "at": format_time(grant.at),
                "who": grant.who,
                "removed": removed,
            }
        )
    known = sorted(requested[case] for case in waiting if case in requested)
    times: list[datetime | None] = [None] * (len(waiting) - len(known))
    times += known
    report.waiting = [format_time(t) if t else None for t in times]
    for since in times:
        if since is not None and now - since > limit:
            when = f"requested {format_time(since)}"
        elif since is None and log_from is not None and now - log_from > limit:
            when = f"requested before {format_time(log_from)} (the oldest action read)"
        else:
            continue
        breaches.append(
            Breach(
                "v1/admin/withdrawals",
                "UndecidedWithdrawal",
                f"a withdrawal {when} waits for review past the delay of {delay} s",
                SECTION,
            )
        )
    return report, breaches


def _on_time(
    grant: Grant,
    versions: Sequence[tuple[int, datetime]],
    bodies: Mapping[int, EntriesBody],
    deadline: datetime,
    now: datetime,
) -> tuple[int | None, str]:
    """Whether one list removed a granted entry in time: the removing version (if
    any) and what is wrong (``""`` when nothing is)."""
    granted = f"entry {grant.entry} withdrawn {format_time(grant.at)} (by {grant.who})"
    return removed_in_time(
        grant.entry, grant.at, versions, bodies, deadline, now, what=granted, reason="withdrawn"
    )


def removed_in_time(
    entry: str,
    since: datetime,
    versions: Sequence[tuple[int, datetime]],
    bodies: Mapping[int, EntriesBody],
    deadline: datetime,
    now: datetime,
    *,
    what: str,
    reason: str | None,
) -> tuple[int | None, str]:
    """Whether one list removed ``entry`` by ``deadline``, once it had to from
    ``since``: the removing version (if any) and what is wrong (``""`` when nothing is).

    The rule the hub keeps for a withdrawal, and a downstream hub for an upstream's
    retraction: the first version made at or after ``since`` that removes the entry
    (without adding it again) must be made by the deadline and, when ``reason`` is
    given, remove it for that reason; a version made after the deadline that still
    holds it, or the newest holding it once ``now`` is past the deadline, is late.

    Args:
        entry: the entry id, as this list's records name it.
        since: when the obligation began (a grant, an upstream's retraction).
        versions: the list's versions (number, ``created``), in order.
        bodies: the body of each of them.
        deadline: ``since`` plus the root's delay.
        now: the run's time.
        what: how the messages name the obligation.
        reason: the removal reason required (None: any).
    """
    held = False
    granted = what
    for version, created in versions:
        body = bodies[version]
        reasons = [r.reason for r in body.removes if r.entry.entry_id == entry]
        readded = any(e.entry_id == entry for e in body.adds)
        if held and created >= since and reasons and not readded:
            if reason is not None and reasons[0] != reason:
                return version, f"{granted} was removed at v{version} as {reasons[0]}"
            if created > deadline:
                return version, (
                    f"{granted} was removed at v{version}, made {format_time(created)}, "
                    f"after the deadline {format_time(deadline)}"
                )
            return version, ""
        held = (held and not reasons) or readded
        if held and created > deadline:
            return None, (
                f"{granted} is still listed at v{version}, made {format_time(created)}, "
                f"after the deadline {format_time(deadline)}"
            )
    if held and now > deadline:
        return None, (
            f"{granted} is still listed at v{versions[-1][0]}, the newest version, and the "
            f"deadline {format_time(deadline)} has passed"
        )
    return None, ""
