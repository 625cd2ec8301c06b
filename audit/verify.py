"""Verify a whole copy of a hub's published tree with ``protocol``'s rules, and say where it fails.

A node runs the trust rules incrementally; the auditor runs the same rules over
the whole history (PROTOCOL.md §13), from a pinned root v1 and nothing else:

1. the root chain: the pinned root (by file or SHA-256), then ``root/<N+1>.json``
   until one is missing, each by ``TrustedHub.update_root``; the newest must not
   have expired; in a folder, a root file above the first missing one is a gap
   (``MissingFileError`` naming the missing file);
2. per list the newest root declares: the checkpoint, which every declared list
   has (size 0 before its first version; a missing one is ``MissingFileError``,
   §11.1), by ``TrustedHub.begin_update`` from an empty record (both signature
   roles, origin, freshness), so the whole log is checked from version 1;
3. every header 1 … size by ``ListUpdate.add_header`` (signature by the delta role
   of the root it names, ``prev``, ``base_state``, root floor, times, caps), the
   Merkle root reproduced after the last one;
4. every body by ``ListUpdate.add_body`` (length, SHA-256, body rules, counts), or
   for a list of entries ``add_entries_body`` (also the records' vocabulary and
   times, §13.6);
5. a replay from the empty state through every body, comparing the digest after
   each version with that header's ``result_state`` (§13.7), ended by
   ``ListUpdate.finish``; for a list of entries, the hub's own rule that every
   version removes the entries whose ``expires`` has come by its ``created``
   (§12 item 8), each entry still held after that a ``LateExpiry`` finding;
   and every opinion summary a header names (§10.7), fetched as a body is and
   verified against its header, root and state, then against the summaries
   before it (``audit.opinions``: the cut never goes back, each dispute lives
   one consistent life); and every provenance document a header names (§7.5),
   fetched likewise and verified against its header, root and body — a version
   that adds a record of source kind ``hub`` or ``member`` without one fails;
6. for a list of a frames type (``vpdq``), the frames file of every record a
   version adds, each distinct file once (``audit.frames``, PROTOCOL.md §6.3): a
   missing one is ``MissingFileError``, one over the cap ``LimitError``, one whose
   bytes are not the record's ``ConsistencyError``, one that breaks the encoding
   ``MalformedError``, each naming the list, version and entry;
7. every snapshot that is due (``ListUpdate.snapshots_due``: by the
   ``snapshot_every`` of the root each header names, §8) or present, by
   ``ListUpdate.add_snapshot``, and equal to the replayed state; a due one that
   is missing is ``MissingFileError``;
8. against the witness file of earlier runs: ``begin_update`` from the witnessed
   record (rollback, equivocation), and an RFC 9162 consistency proof from the
   witnessed tree to this one, built from the verified log;
9. across the lists of entries of one collection (one ``label``): an entry held by
   several of them carries the same metadata in each (§7.3), else an
   ``EntryMismatch`` finding on each list that holds it;
10. given a ``chain`` (``audit.provenance.Chain``): what the provenance documents
    claim, against the upstreams' own logs and the contributors' keys — what a
    version alone cannot show (§7.5, last paragraph).

Each check that fails becomes a ``Finding`` naming the file, the rule (the
``protocol`` error class) and the PROTOCOL.md section, and ends that list's
verification: what follows a broken link proves nothing. Other lists go on.
This module decides nothing by itself; the rules are ``protocol``'s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn, Protocol

from audit.frames import FRAMES_SECTION, frames_files, read_promised
from audit.opinions import OPINION_RULES, SECTION, SummaryHistory
from audit.source import FetchError, FolderSource, Source
from audit.witness import Witness
from protocol import (
    DeltaBody,
    DeltaHeader,
    EntriesBody,
    Entry,
    EntryState,
    Limits,
    ListState,
    ListTrust,
    ListUpdate,
    Policy,
    ProtocolError,
    SignatureSidecar,
    StateDigest,
    TrustedHub,
    b64encode,
    body_path,
    checkpoint_path,
    format_time,
    header_opinions,
    header_path,
    opinions_path,
    provenance_path,
    root_path,
    sig_path,
    snapshot_path,
    verify_summary,
)
from protocol.entries import record_limit
from protocol.errors import ConsistencyError, MissingFileError
from protocol.lists import hash_type
from protocol.merkle import consistency_proof, verify_consistency
from protocol.provenance import ORIGIN_KINDS, Provenance, header_provenance, verify_provenance
from protocol.root import Upstream

__all__ = [
    "HUB_RULES",
    "INCOMPLETE_RULES",
    "PROVENANCE_SECTION",
    "Finding",
    "FollowChain",
    "ListReport",
    "Pin",
    "TreeReport",
    "VersionInfo",
    "VersionOrigins",
    "verify_tree",
]

PROVENANCE_SECTION = "PROTOCOL.md §7.5"
INCOMPLETE_RULES = frozenset({"FetchError", "Unverifiable", "Unreadable", "UnreachableUpstream"})
"""Findings that mean "could not be checked" rather than "checked and wrong"."""

HUB_RULES = frozenset(
    {
        "LateExpiry",
        "EntryMismatch",
        "LateWithdrawal",
        "UndecidedWithdrawal",
        "ForgedOrigin",
        "AlteredOrigin",
        "ForgedContribution",
        "LateUpstreamRetraction",
        *OPINION_RULES,
    }
)
"""Findings of rules the hub must keep that no verifier of one list applies
(PROTOCOL.md §7.3, §7.5, §10.7, §12): the published files verify, and the hub broke
its word."""


@dataclass(frozen=True)
class Finding:
    """One failed check: which file, which rule, where the rule is written, what happened."""

    file: str
    rule: str
    section: str
    message: str
    location: str = ""

    @property
    def incomplete(self) -> bool:
        return self.rule in INCOMPLETE_RULES

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "location": self.location or self.file,
            "rule": self.rule,
            "section": self.section,
            "message": self.message,
        }

    def line(self) -> str:
        return f"{self.location or self.file}: {self.rule} ({self.section}): {self.message}"


@dataclass(frozen=True)
class Pin:
    """How the auditor pins root v1: its exact bytes (and sidecar), its SHA-256, or both."""

    root_bytes: bytes | None = None
    root_sig: bytes | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class VersionInfo:
    """One verified version: what it changed and which delta keys signed it."""

    version: int
    created: datetime
    root_version: int
    signed_by: tuple[str, ...]
    adds: int
    removes: int
    result: StateDigest

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "created": format_time(self.created),
            "root_version": self.root_version,
            "signed_by": list(self.signed_by),
            "adds": self.adds,
            "removes": self.removes,
            "result_state": self.result.to_dict(),
        }


@dataclass(frozen=True)
class VersionOrigins:
    """A version's provenance document that verified by §7.5's rules, with what the
    chain needs to follow it: the upstreams the root that signed the header declared
    (their pins and URLs), and the file it came from (to name in a finding)."""

    version: int
    file: str
    document: Provenance
    upstreams: Mapping[str, Upstream]


@dataclass
class ListReport:
    """What the audit found for one list."""

    list_id: str
    hash_type: str = ""
    format: str = "hashes"
    status: str = "failed"  # "verified", "failed", "incomplete"
    size: int = 0
    root_hash: str = ""
    checkpoint_time: str = ""
    state: StateDigest | None = None
    snapshots: list[int] = field(default_factory=list)
    versions: list[VersionInfo] = field(default_factory=list)
    witness: str = ""
    findings: list[Finding] = field(default_factory=list)
    removed: dict[str, int] = field(default_factory=dict)
    """Of a list of entries: how many records were removed for each reason."""
    frames_checked: int | None = None
    """Of a list of a frames type: how many distinct frames files were read and held
    to their records (None for any other list: it has none)."""
    # Kept for the other commands; not part of the report itself.
    leaves: list[bytes] = field(default_factory=list, repr=False)
    states: dict[int, ListState | EntryState] = field(default_factory=dict, repr=False)
    bodies: dict[int, DeltaBody | EntriesBody] = field(default_factory=dict, repr=False)
    final: EntryState | None = field(default=None, repr=False)
    """Of a list of entries that verified: its last state (the collection's check)."""
    opinions: SummaryHistory = field(default_factory=SummaryHistory)
    """Of a list of entries: the opinion summaries checked and the disputes' lives."""
    provenance: list[VersionOrigins] = field(default_factory=list, repr=False)
    """Of a list of entries: each provenance document that verified, in version order."""
    origins: dict[str, int] = field(default_factory=dict)
    """How many origins the chain checked, by kind (``hub``, ``member``)."""
    attested: dict[str, int] = field(default_factory=dict)
    """How many records each exchange's origins vouch for, by exchange name: the hub's
    own word on what it fetched, which no signature checks (PROTOCOL.md §5.7)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "list": self.list_id,
            "hash_type": self.hash_type,
            "format": self.format,
            "status": self.status,
            "size": self.size,
            "root_hash": self.root_hash,
            "checkpoint_time": self.checkpoint_time,
            "state": self.state.to_dict() if self.state else None,
            "snapshots_checked": self.snapshots,
            "versions": [v.to_dict() for v in self.versions],
            "witness": self.witness,
            "removed": dict(sorted(self.removed.items())),
            "frames_checked": self.frames_checked,
            "opinions": self.opinions.to_dict(),
            "provenance": {
                "documents": [v.version for v in self.provenance],
                "origins_checked": dict(sorted(self.origins.items())),
                "exchange_attested": dict(sorted(self.attested.items())),
            },
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass
class TreeReport:
    """What the audit found for a whole published tree."""

    source: str
    at: datetime
    pinned_sha256: str = ""
    hub_name: str = ""
    roots: list[int] = field(default_factory=list)
    root_expires: str = ""
    lists: list[ListReport] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    witness_file: str = ""
    policy: Policy | None = field(default=None, repr=False)
    """The newest root's policy (the withdrawal delay the ``acks`` audit holds the hub to)."""
    upstreams: list[dict[str, Any]] = field(default_factory=list)
    """The upstreams the chain opened: name, pin, where read, what verified."""

    def all_findings(self) -> list[Finding]:
        return [*self.findings, *(f for lst in self.lists for f in lst.findings)]

    @property
    def failed(self) -> bool:
        return any(not f.incomplete for f in self.all_findings())

    @property
    def incomplete(self) -> bool:
        return any(f.incomplete for f in self.all_findings())

    def list_report(self, list_id: str) -> ListReport | None:
        return next((r for r in self.lists if r.list_id == list_id), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "at": format_time(self.at),
            "ok": not self.failed and not self.incomplete,
            "hub": self.hub_name,
            "pinned_root_sha256": self.pinned_sha256,
            "roots": self.roots,
            "root_expires": self.root_expires,
            "witness_file": self.witness_file,
            "findings": [f.to_dict() for f in self.findings],
            "upstreams": self.upstreams,
            "lists": [r.to_dict() for r in self.lists],
        }


class FollowChain(Protocol):
    """What follows the provenance of a verified tree to its origins (``audit.provenance``):
    adds its findings and counts to ``report``."""

    def follow(self, report: TreeReport) -> None: ...


class _CheckFailedError(Exception):
    """A check failed and was recorded; the rest of this part of the audit is skipped."""


class _Run:
    """One audit run over one source: the fetches, with every failure made a finding."""

    def __init__(self, source: Source) -> None:
        self.source = source

    def finding(
        self, findings: list[Finding], path: str, rule: str, section: str, msg: str
    ) -> None:
        findings.append(Finding(path, rule, section, msg, self.source.locate(path)))

    @contextmanager
    def step(self, findings: list[Finding], path: str, section: str) -> Iterator[None]:
        """Run one rule; a ``ProtocolError`` or unreadable file becomes a finding on ``path``."""
        try:
            yield
        except ProtocolError as e:
            self.finding(findings, path, type(e).__name__, section, str(e))
            raise _CheckFailedError from e
        except FetchError as e:
            self.finding(findings, path, "FetchError", "PROTOCOL.md §11", str(e))
            raise _CheckFailedError from e

    def need(
        self,
        findings: list[Finding],
        path: str,
        cap: int,
        section: str,
        promise: str = "the signed history refers to it",
    ) -> bytes:
        """The file at ``path``; a missing one fails (``MissingFileError``, §11.1)."""
        data: bytes | None = None
        with self.step(findings, path, section):
            data = self.source.get(path, cap)
        if data is None:
            self.missing(findings, path, promise)
        assert data is not None
        return data

    def missing(self, findings: list[Finding], path: str, promise: str) -> NoReturn:
        """Fail on a file that signed data promises and this copy lacks (§11.1)."""
        with self.step(findings, path, "PROTOCOL.md §11.1"):
            raise MissingFileError(path, promise)
        raise AssertionError("unreachable: step() re-raises")


def _open_roots(run: _Run, report: TreeReport, pin: Pin, now: datetime) -> TrustedHub:
    """Pin root v1 and walk the chain to the newest root (§13.1)."""
    section = "PROTOCOL.md §13.1"
    root_bytes, root_sig = _pinned_root(run, report, pin)
    report.pinned_sha256 = hashlib.sha256(root_bytes).hexdigest()
    with run.step(report.findings, root_path(1), section):
        hub = TrustedHub(root_bytes, root_sig, now=now, pinned_sha256=pin.sha256, limits=Limits())
    _walk_roots(run, report, hub)
    if isinstance(run.source, FolderSource):
        _find_root_gap(run.source, run, report, hub.root.version)
    report.hub_name = hub.root.name
    report.policy = hub.root.policy
    report.roots = [version for version, _, _ in hub.root_files()]
    report.root_expires = format_time(hub.root.expires)
    with run.step(report.findings, root_path(hub.root.version), section):
        hub.check_root_fresh()
    return hub


def _pinned_root(run: _Run, report: TreeReport, pin: Pin) -> tuple[bytes, bytes]:
    """Root v1 and its signatures: the pinned bytes if the auditor has them, else this
    copy's (then checked against the pinned SHA-256).

    A copy that serves another root v1 than the pinned bytes offers another trust
    anchor: that is a finding even before any signature is checked.
    """
    section = "PROTOCOL.md §13.1"
    caps = Limits()
    first = root_path(1)
    if pin.root_bytes is None:
        root_bytes = run.need(report.findings, first, caps.root_bytes, section)
    else:
        root_bytes = pin.root_bytes
        with run.step(report.findings, first, section):
            served = run.source.get(first, caps.root_bytes)
        if served is not None and served != root_bytes:
            run.finding(
                report.findings,
                first,
                "SignatureError",
                section,
                "this copy's root v1 is not the pinned root (another trust anchor is served)",
            )
            raise _CheckFailedError
    root_sig = pin.root_sig
    if root_sig is None:
        root_sig = run.need(report.findings, sig_path(first), caps.sig_bytes, section)
    return root_bytes, root_sig


def _walk_roots(run: _Run, report: TreeReport, hub: TrustedHub) -> None:
    """Walk ``root/<N+1>.json`` until one is not published, each by ``update_root``
    under the limits of the root before it."""
    section = "PROTOCOL.md §13.1"
    limits = hub.limits
    while True:
        path = root_path(hub.root.version + 1)
        with run.step(report.findings, path, section):
            data = run.source.get(path, limits.root_bytes)
        if data is None:
            break
        sig = run.need(report.findings, sig_path(path), limits.sig_bytes, section)
        with run.step(report.findings, path, section):
            hub.update_root(data, sig)


def _find_root_gap(source: FolderSource, run: _Run, report: TreeReport, newest: int) -> None:
    """A walk stops at the first root not found (§13.1 item 2), so a gap hides every
    root after it; a folder can be listed, and a root beyond the gap is a finding."""
    beyond = [v for v in source.root_versions() if v > newest + 1]
    if beyond:
        run.finding(
            report.findings,
            root_path(newest + 1),
            "MissingFileError",
            "PROTOCOL.md §13.1",
            f"not published, though {len(beyond)} later root file(s) are "
            f"(root/{beyond[0]}.json … root/{beyond[-1]}.json): the root chain has a "
            f"gap, and the walk ends at v{newest}",
        )


def _signers(hub: TrustedHub, header: DeltaHeader, sig: bytes) -> tuple[str, ...]:
    """The delta keys of the root the header names whose signatures verified (§13.4 step 6)."""
    valid = hub.root_at(header.root_version).verify_role(
        "delta", header.to_bytes(), SignatureSidecar.from_bytes(sig), f"header v{header.version}"
    )
    return tuple(sorted(valid))


def _snapshot_versions(run: _Run, list_id: str, update: ListUpdate) -> tuple[list[int], set[int]]:
    """Snapshots to check: every version one is due at (by its header's root, §8), plus any
    present (a folder can be listed; a snapshot nobody owed must still be right)."""
    due = set(update.snapshots_due())
    present: set[int] = set()
    if isinstance(run.source, FolderSource):
        present = set(run.source.snapshot_versions(f"lists/{list_id}"))
    return sorted(due | present), due


def _verify_list(
    run: _Run,
    hub: TrustedHub,
    report: ListReport,
    *,
    witnessed: ListTrust | None,
    keep: Collection[int],
) -> ListTrust:
    """Verify one list from version 1 into ``report``; returns its record if it all held.

    The phases run in the order of PROTOCOL.md §13, each on what the one before
    verified; the first that fails ends the list (what follows a broken link proves
    nothing).

    Raises:
        _CheckFailedError: a check failed; the finding is in ``report``.
    """
    spec = hub.root.list_spec(report.list_id)
    report.hash_type = spec.hash_type
    report.format = spec.format
    checkpoint = _fetch_checkpoint(run, hub, report, witnessed)
    update = _begin_list(run, hub, report, checkpoint, witnessed)
    _check_headers(run, hub, report, update)
    _check_bodies(run, report, update)
    if spec.entries:
        trust, digests = _replay_entries(run, hub, report, update, keep)
    else:
        trust, digests = _replay(run, report, update, spec.hash_length, keep)
    if hash_type(spec.hash_type).frames:
        _check_frames(run, report)
    _check_snapshots(run, hub, report, update, digests)
    _check_witness(run, report, update, witnessed)
    report.status = "verified"
    return trust


def _fetch_checkpoint(
    run: _Run, hub: TrustedHub, report: ListReport, witnessed: ListTrust | None
) -> bytes:
    """The list's checkpoint. Every declared list has one, size 0 before its first
    version (§11.1): a copy without one hides the list, whatever else of it the copy
    still holds."""
    list_id = report.list_id
    cp_path = checkpoint_path(list_id)
    with run.step(report.findings, cp_path, "PROTOCOL.md §11"):
        checkpoint = run.source.get(cp_path, hub.limits.checkpoint_bytes)
    if checkpoint is None:
        promise = f"root v{hub.root.version} declares list {list_id}"
        if witnessed is not None:
            promise += f", and an earlier run verified its size {witnessed.version}"
        run.missing(report.findings, cp_path, promise)
    return checkpoint


def _begin_list(
    run: _Run,
    hub: TrustedHub,
    report: ListReport,
    checkpoint: bytes,
    witnessed: ListTrust | None,
) -> ListUpdate:
    """Verify the checkpoint from an empty record, so the whole log is checked from
    version 1, then against the witnessed record: a smaller tree, an older
    co-signature, or another root for the same size (the protocol's own rules)."""
    cp_path = checkpoint_path(report.list_id)
    with run.step(report.findings, cp_path, "PROTOCOL.md §13.2–13.3"):
        update: ListUpdate = hub.begin_update(ListTrust(report.list_id), checkpoint)
    report.size = update.target
    report.root_hash = b64encode(update.checkpoint.root_hash)
    report.checkpoint_time = format_time(update.checkpoint.timestamp)
    if witnessed is not None:
        with run.step(report.findings, cp_path, "PROTOCOL.md §13.3 (against the witness file)"):
            hub.begin_update(witnessed, checkpoint)
    return update


def _check_headers(run: _Run, hub: TrustedHub, report: ListReport, update: ListUpdate) -> None:
    """Every header 1 … size, verified and chained, and who signed each (for ``diff``).

    The header is named in the finding: after the last one, a Merkle root that does
    not come out as the checkpoint's is the checkpoint's fault as much as theirs.
    """
    limits = hub.limits
    for version in range(1, update.target + 1):
        path = header_path(report.list_id, version)
        data = run.need(report.findings, path, limits.header_bytes, "PROTOCOL.md §13.4")
        sig = run.need(report.findings, sig_path(path), limits.sig_bytes, "PROTOCOL.md §13.4")
        with run.step(report.findings, path, "PROTOCOL.md §13.4"):
            header = update.add_header(data, sig)
            signed_by = _signers(hub, header, sig)
        report.leaves.append(header.leaf_hash)
        report.versions.append(
            VersionInfo(
                header.version,
                header.created,
                header.root_version,
                signed_by,
                header.body.adds,
                header.body.removes,
                header.result_state,
            )
        )


def _check_bodies(run: _Run, report: ListReport, update: ListUpdate) -> None:
    """Every body the headers name, by length, SHA-256 and the body rules (§13.6)."""
    for header in update.bodies_needed():
        path = body_path(report.list_id, header.body.sha256)
        data = run.need(report.findings, path, header.body.length, "PROTOCOL.md §13.6")
        with run.step(report.findings, path, "PROTOCOL.md §13.6"):
            if update.spec.entries:
                report.bodies[header.version] = update.add_entries_body(header.version, data)
            else:
                report.bodies[header.version] = update.add_body(header.version, data)


def _replay(
    run: _Run, report: ListReport, update: ListUpdate, width: int, keep: Collection[int]
) -> tuple[ListTrust, dict[int, StateDigest]]:
    """Replay from empty, checking the digest after every version (§13.7 step 3).

    Returns the record and the digest after each version, which the snapshots must
    equal; keeps the states of the versions in ``keep``.
    """
    list_id = report.list_id
    cp_path = checkpoint_path(list_id)
    state = ListState(width)
    digests: dict[int, StateDigest] = {}
    with run.step(report.findings, cp_path, "PROTOCOL.md §13.7"):
        update.check_base(state.digest())
    if 0 in keep:
        report.states[0] = state
    for header, body in update.ordered_bodies():
        path = body_path(list_id, header.body.sha256)
        with run.step(report.findings, path, "PROTOCOL.md §13.7"):
            state = state.apply(body.removes, body.adds)
            digest = state.digest()
            if digest != header.result_state:
                raise ConsistencyError(
                    f"replaying v{header.version} gives {digest.count}/{digest.sha256[:16]}, "
                    f"header v{header.version} signs "
                    f"{header.result_state.count}/{header.result_state.sha256[:16]}"
                )
        digests[header.version] = digest
        if header.version in keep:
            report.states[header.version] = state
    with run.step(report.findings, cp_path, "PROTOCOL.md §13.7"):
        trust = update.finish(state.digest())
    report.state = trust.state
    return trust, digests


def _replay_entries(
    run: _Run, hub: TrustedHub, report: ListReport, update: ListUpdate, keep: Collection[int]
) -> tuple[ListTrust, dict[int, StateDigest]]:
    """``_replay`` for a list of entries, also holding the hub to removing each entry
    at the first version made once its ``expires`` has come (PROTOCOL.md §12 item 8): an
    entry still held after such a version is a ``LateExpiry`` finding, which does
    not stop the replay (the files verify; the hub kept an entry too long)."""
    list_id = report.list_id
    cp_path = checkpoint_path(list_id)
    state = EntryState(hash_type(update.spec.hash_type))
    digests: dict[int, StateDigest] = {}
    with run.step(report.findings, cp_path, "PROTOCOL.md §13.7"):
        update.check_base(state.digest())
    if 0 in keep:
        report.states[0] = state
    expiring: dict[str, Entry] = {}
    for header, body in update.ordered_entries_bodies():
        path = body_path(list_id, header.body.sha256)
        with run.step(report.findings, path, "PROTOCOL.md §13.7"):
            state = state.apply(body)
            digest = state.digest()
            if digest != header.result_state:
                raise ConsistencyError(
                    f"replaying v{header.version} gives {digest.count}/{digest.sha256[:16]}, "
                    f"header v{header.version} signs "
                    f"{header.result_state.count}/{header.result_state.sha256[:16]}"
                )
        report.opinions.see(header.version, body)
        _check_summary(run, hub, report, header, state)
        _check_provenance(run, hub, report, header, body)
        for removal in body.removes:
            report.removed[removal.reason] = report.removed.get(removal.reason, 0) + 1
            expiring.pop(removal.entry.entry_id, None)
        expiring.update((e.entry_id, e) for e in body.adds if e.expires is not None)
        late = sorted(e.entry_id for e in expiring.values() if e.expired(header.created))
        for entry in (expiring.pop(entry_id) for entry_id in late):
            assert entry.expires is not None  # only entries that expire are waited on
            report.findings.append(
                Finding(
                    path,
                    "LateExpiry",
                    "PROTOCOL.md §12 item 8",
                    f"entry {entry.entry_id} expired {format_time(entry.expires)} and is "
                    f"still listed after v{header.version}, made "
                    f"{format_time(header.created)}",
                )
            )
        digests[header.version] = digest
        if header.version in keep:
            report.states[header.version] = state
    with run.step(report.findings, cp_path, "PROTOCOL.md §13.7"):
        trust = update.finish(state.digest())
    report.state = trust.state
    report.final = state
    return trust, digests


def _check_summary(
    run: _Run, hub: TrustedHub, report: ListReport, header: DeltaHeader, state: EntryState
) -> None:
    """The opinion summary a version names (§10.7): the hub promised it as it promised
    the body, so a missing one fails; it is verified against its header, the root
    that signed the header and the state, then against the summaries before it."""
    with run.step(report.findings, header_path(report.list_id, header.version), SECTION):
        ref = header_opinions(header)
    if ref is None:
        return
    root = hub.root_at(header.root_version)
    path = opinions_path(report.list_id, ref.sha256)
    cap = min(ref.length, root.policy.max_body_bytes)
    data = run.need(report.findings, path, cap, SECTION, f"header v{header.version} names it")
    with run.step(report.findings, path, SECTION):
        summary = verify_summary(header, data, root, state)
    for breach in report.opinions.add(path, summary):
        run.finding(report.findings, breach.file, breach.rule, SECTION, breach.message)


def _check_provenance(
    run: _Run, hub: TrustedHub, report: ListReport, header: DeltaHeader, body: EntriesBody
) -> None:
    """The provenance document a version names (§7.5), fetched as a body is (by its
    SHA-256, capped at the signed length) and verified against its header, the root
    that signed the header and the body. A version adding a record of source kind
    ``hub``, ``member`` or ``exchange`` MUST name one: without it nothing proves
    those origins."""
    hpath = header_path(report.list_id, header.version)
    with run.step(report.findings, hpath, PROVENANCE_SECTION):
        ref = header_provenance(header)
        if ref is None:
            claimed = sorted(e.entry_id for e in body.adds if e.source_kind in ORIGIN_KINDS)
            if claimed:
                raise ConsistencyError(
                    f"v{header.version} adds {len(claimed)} record(s) of source kind hub or "
                    f"member ({', '.join(claimed[:3])}) and names no provenance document"
                )
    if ref is None:
        return
    root = hub.root_at(header.root_version)
    path = provenance_path(report.list_id, ref.sha256)
    cap = min(ref.length, root.policy.max_body_bytes)
    with run.step(report.findings, path, PROVENANCE_SECTION):
        data = run.source.get(path, cap)
        if data is None:
            raise MissingFileError(path, f"header v{header.version} names it")
        kind = hash_type(root.list_spec(report.list_id).hash_type)
        document = verify_provenance(header, data, root, body, kind)
    report.provenance.append(VersionOrigins(header.version, path, document, root.upstreams))


def _check_frames(run: _Run, report: ListReport) -> None:
    """The frames file of every record the verified bodies add, each distinct one read
    once (``audit.frames``): a body that adds a record promises its file, so a copy
    without it fails as one without the body does (§11.1)."""
    report.frames_checked = 0
    bodies = {v: b for v, b in report.bodies.items() if isinstance(b, EntriesBody)}
    for file in frames_files(report.list_id, bodies):
        frames = None
        with run.step(report.findings, file.path, FRAMES_SECTION):
            frames = read_promised(run.source, file)
        if frames is None:
            run.missing(report.findings, file.path, f"{file.named_by} names it")
        report.frames_checked += 1


def _check_snapshots(
    run: _Run,
    hub: TrustedHub,
    report: ListReport,
    update: ListUpdate,
    digests: dict[int, StateDigest],
) -> None:
    """Every snapshot due or present: verified, and equal to the replayed state (§13.5).
    A due one that is missing fails, naming the root that made it due (§8)."""
    list_id = report.list_id
    candidates, due = _snapshot_versions(run, list_id, update)
    for version in candidates:
        path = snapshot_path(list_id, version)
        with run.step(report.findings, path, "PROTOCOL.md §13.5"):
            count = update.header(version).result_state.count
            cap = count * (
                record_limit(hash_type(update.spec.hash_type)) + 1
                if update.spec.entries
                else update.spec.hash_length
            )
            snapshot_bytes = run.source.get(path, cap)
        if snapshot_bytes is None:
            if version in due:
                named = update.header(version).root_version
                every = hub.root_at(named).list_spec(list_id).snapshot_every
                run.missing(
                    report.findings,
                    path,
                    f"a snapshot is due at v{version}: header v{version} names root "
                    f"v{named}, whose snapshot_every for the list is {every}",
                )
            continue
        with run.step(report.findings, path, "PROTOCOL.md §13.5"):
            snapshot: ListState | EntryState = (
                update.add_entries_snapshot(version, snapshot_bytes)
                if update.spec.entries
                else update.add_snapshot(version, snapshot_bytes)
            )
            if snapshot.digest() != digests[version]:
                raise ConsistencyError(f"snapshot v{version} is not the replayed state")
        report.snapshots.append(version)


def _check_witness(
    run: _Run, report: ListReport, update: ListUpdate, witnessed: ListTrust | None
) -> None:
    """Compare with what earlier runs verified. A larger tree must extend the
    witnessed one: the consistency proof is built from the log just verified, and
    must rebuild both signed roots."""
    if witnessed is None:
        report.witness = "first run: recorded"
    elif witnessed.version == update.target:
        report.witness = f"same tree as at size {witnessed.version}, seen before"
    elif witnessed.version == 0:
        report.witness = "extends the empty tree seen before"
    else:
        cp_path = checkpoint_path(report.list_id)
        with run.step(report.findings, cp_path, "PROTOCOL.md §9.1 (against the witness file)"):
            verify_consistency(
                witnessed.version,
                update.target,
                witnessed.compact.root(),
                update.checkpoint.root_hash,
                consistency_proof(report.leaves, witnessed.version),
            )
        report.witness = f"extends size {witnessed.version} seen before (consistency proof holds)"


def verify_tree(
    source: Source,
    *,
    pin: Pin,
    now: datetime,
    witness: Witness | None = None,
    lists: Collection[str] | None = None,
    keep: Collection[int] = (),
    chain: FollowChain | None = None,
) -> TreeReport:
    """Audit every list of the tree in ``source`` (or only ``lists``) as of ``now``.

    Args:
        source: the copy to read (folder, hub, mirror).
        pin: root v1 as the auditor obtained it out of band.
        now: the reference time for every check of this run.
        witness: earlier runs' records; checked against, then advanced for every
            list that verified without a finding (the caller saves it).
        lists: only these list ids (default: every list the newest root declares).
        keep: versions whose replayed states the report keeps (for ``diff``).
        chain: follows each verified provenance document to its origins (the
            upstreams' logs, the contributors' keys); None: the documents are
            checked by §7.5's rules alone.
    """
    report = TreeReport(source.name, now)
    if witness is not None:
        report.witness_file = str(witness.path)
    run = _Run(source)
    try:
        hub = _open_roots(run, report, pin, now)
    except _CheckFailedError:
        return report
    wanted = sorted(hub.root.lists) if lists is None else sorted(lists)
    for list_id in wanted:
        if list_id not in hub.root.lists:
            report.lists.append(_undeclared(hub, list_id))
            continue
        list_report = ListReport(list_id)
        report.lists.append(list_report)
        _audit_list(run, hub, report, list_report, witness=witness, keep=keep)
    _check_collections(hub, report)
    if chain is not None:
        chain.follow(report)
    return report


def _check_collections(hub: TrustedHub, report: TreeReport) -> None:
    """An entry held by several verified lists of entries of one collection carries
    the same metadata in each (PROTOCOL.md §7.3: the hub changes and removes an
    entry's records together). Each disagreement is an ``EntryMismatch`` finding on
    every list that holds the entry; the lists' own verification stands."""
    by_label: dict[str, list[ListReport]] = {}
    for lst in report.lists:
        spec = hub.root.lists.get(lst.list_id)
        if spec is not None and spec.entries and lst.final is not None:
            by_label.setdefault(spec.label, []).append(lst)
    for label, lists in sorted(by_label.items()):
        if len(lists) < 2:
            continue
        # By entry id, each list's record after its hash and id: the metadata, as
        # bytes (a record has one spelling), without parsing a record per line.
        held: dict[bytes, list[tuple[ListReport, bytes]]] = {}
        for lst in lists:
            final = lst.final
            assert final is not None
            for line in final.lines():
                _, entry_id, metadata = line.split(b" ", 2)
                held.setdefault(entry_id, []).append((lst, metadata))
        for entry_id, records in sorted(held.items()):
            if len({metadata for _, metadata in records}) < 2:
                continue
            shown = "; ".join(f"{lst.list_id}: {metadata.decode()}" for lst, metadata in records)
            for lst, _ in records:
                lst.findings.append(
                    Finding(
                        checkpoint_path(lst.list_id),
                        "EntryMismatch",
                        "PROTOCOL.md §7.3",
                        f"entry {entry_id.decode()} of collection {label!r} differs between "
                        f"lists: {shown}",
                    )
                )


def _undeclared(hub: TrustedHub, list_id: str) -> ListReport:
    """The report of a list asked for that the newest root does not declare."""
    finding = Finding(
        checkpoint_path(list_id) if _safe(list_id) else list_id,
        "UnknownListError",
        "PROTOCOL.md §13.2",
        f"root v{hub.root.version} does not declare list {list_id!r}",
    )
    return ListReport(list_id, findings=[finding])


def _audit_list(
    run: _Run,
    hub: TrustedHub,
    report: TreeReport,
    list_report: ListReport,
    *,
    witness: Witness | None,
    keep: Collection[int],
) -> None:
    """Verify one declared list into ``list_report``; advance the witness only if it
    all held, so a failed run never becomes the next run's reference."""
    list_id = list_report.list_id
    witnessed = witness.trust(report.pinned_sha256, list_id) if witness else None
    try:
        trust = _verify_list(run, hub, list_report, witnessed=witnessed, keep=keep)
    except _CheckFailedError:
        incomplete = all(f.incomplete for f in list_report.findings)
        list_report.status = "incomplete" if incomplete else "failed"
        return
    if witness is None:
        list_report.witness = ""
    else:
        witness.record(report.pinned_sha256, hub.root.name, trust, report.at)


def _safe(list_id: str) -> bool:
    try:
        checkpoint_path(list_id)
    except ProtocolError:
        return False
    return True
