"""Follow a hub's provenance to its origins: the upstreams' own logs, the contributors' keys.

A version that adds a record re-published from an upstream hub (source
``hub:<name>``) or published from a member's contribution (``member:<platform>``)
names a provenance document (PROTOCOL.md §7.5). ``audit.verify`` checks each
document by the rules a version alone can show; what it cannot show is left to the
auditor, and done here (``Chain.follow``) over a tree that verified:

- **Upstream origins** (``kind: hub``). The downstream's own signed root declares
  each upstream's pin and URL (§5.6): the root that signed the version naming the
  document is the one read, so the downstream's word is never taken. The upstream's
  tree is opened there (or where ``--upstream NAME=…`` says, for an offline copy:
  the place changes, never the pin) and verified by ``verify_tree`` from that pin —
  root chain, checkpoint, every header and body of the lists the origins name —
  once per run, however many origins point into it. Then, per origin: the upstream
  log's Merkle root at ``size`` (from its verified headers, so consistent with the
  upstream's signed checkpoint, at or beyond ``size``) is ``root``; ``header`` is
  byte for byte the upstream's header at its version; that version's body adds
  exactly ``record``. Anything else is ``ForgedOrigin``: the upstream never
  published that record there, whatever the downstream signed. A record
  re-published with another category or classification than the upstream record
  it names is ``AlteredOrigin`` (§5.6 rule 2: what the upstream said of an item
  travels with it unchanged).
- **Upstream retractions.** An upstream version that removes the entry an origin's
  record belongs to (without adding it again) obliges the downstream to remove
  what it re-published within its newest root's ``max_withdrawal_delay``, by the
  rule a withdrawal is held to (``audit.withdrawals.removed_in_time``): a version
  made later that still holds it, or the newest once the deadline has passed, is
  ``LateUpstreamRetraction``.
- **Exchange origins** (``kind: exchange``) are counted per exchange: an exchange
  signs nothing, so what the hub says it fetched is its own word (§5.7).
- **Member origins** (``kind: member``). The contribution must verify (§10.8) under
  the key the contributing node was enrolled with, as the platform gives it to the
  auditor (``--node-key``, as for ``acks``): a signature that does not verify is
  ``ForgedContribution``; without a key for that node, ``Unverifiable``.

An upstream that cannot be read is ``UnreachableUpstream``: like ``Unverifiable``,
the audit is then incomplete, not passed. An upstream tree that does not verify from
the declared pin is reported with its own rule (its files break it): its origins
prove nothing. The upstream's own upstreams are not followed further; its
provenance is its own auditor's to follow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from audit.source import Source, SourceError
from audit.verify import (
    PROVENANCE_SECTION,
    Finding,
    ListReport,
    Pin,
    TreeReport,
    VersionOrigins,
    verify_tree,
)
from audit.withdrawals import removed_in_time
from protocol import DeltaHeader, EntriesBody, Entry, ProtocolError, PublicKey, format_time
from protocol.contribution import Contribution, verify_contribution
from protocol.lists import hash_type
from protocol.merkle import leaf_hash, root_from_leaf_hashes
from protocol.provenance import ExchangeOrigin, MemberOrigin, UpstreamOrigin

__all__ = ["CHAIN_RULES", "Chain", "OpenUpstream", "UpstreamTree"]

SECTION = PROVENANCE_SECTION
CHAIN_RULES = frozenset(
    {
        "AlteredOrigin",
        "ForgedOrigin",
        "ForgedContribution",
        "LateUpstreamRetraction",
        "UnreachableUpstream",
    }
)
"""The findings only following the chain can make."""

OpenUpstream = Callable[[str, str], Source]
"""Where to read an upstream: (its name, the URL the root declares) → a source.
Raises ``SourceError`` when that place is not a published tree."""


@dataclass
class UpstreamTree:
    """One upstream as this run read it: from which pin, where, and what verified."""

    name: str
    pin: str
    where: str
    tree: TreeReport | None = None
    problem: str = ""
    """Why the upstream could not be opened at all (``tree`` is then None)."""
    _roots: dict[tuple[str, int], bytes] = field(default_factory=dict, repr=False)

    @property
    def status(self) -> str:
        if self.tree is None:
            return "unreachable"
        if self.tree.failed:
            return "failed"
        return "incomplete" if self.tree.incomplete else "verified"

    def log_root(self, listed: ListReport, size: int) -> bytes:
        """The upstream log's Merkle root at ``size`` (at most its verified size),
        computed once per list and size."""
        key = (listed.list_id, size)
        if key not in self._roots:
            self._roots[key] = root_from_leaf_hashes(listed.leaves[:size])
        return self._roots[key]

    def to_dict(self) -> dict[str, Any]:
        tree = self.tree
        return {
            "name": self.name,
            "pinned_root_sha256": self.pin,
            "source": self.where,
            "status": self.status,
            "problem": self.problem,
            "hub": tree.hub_name if tree else "",
            "roots": tree.roots if tree else [],
            "lists": {r.list_id: r.status for r in tree.lists} if tree else {},
        }


class Chain:
    """Follows the provenance of a verified tree (``verify_tree(chain=…)``).

    Args:
        open_upstream: where each upstream is read from (its URL, or an override).
        node_keys: each contributing node's public keys, by node id, as its platform
            gave them: every key the node was enrolled with (a contribution is
            signed with the key the node held when it sent it, §7.5).
    """

    def __init__(
        self, open_upstream: OpenUpstream, node_keys: Mapping[str, Sequence[PublicKey]]
    ) -> None:
        self.open_upstream = open_upstream
        self.node_keys = {node: tuple(keys) for node, keys in node_keys.items()}

    def follow(self, report: TreeReport) -> None:
        _ChainRun(self, report).run()


_Key = tuple[str, str, str]
"""An upstream as a root declares it: name, pinned root SHA-256, URL."""


class _ChainRun:
    """One following of one tree's provenance: the upstreams read once each."""

    def __init__(self, chain: Chain, report: TreeReport) -> None:
        self.chain = chain
        self.report = report
        self.upstreams: dict[_Key, UpstreamTree] = {}

    def run(self) -> None:
        lists = [r for r in self.report.lists if r.status == "verified" and r.provenance]
        self._open_upstreams(lists)
        for listed in lists:
            told: set[str] = set()
            retractions: set[tuple[str, int]] = set()
            for origins in listed.provenance:
                for entry_id, origin in sorted(origins.document.origins.items()):
                    if isinstance(origin, ExchangeOrigin):
                        # An exchange signs nothing: what the hub says it fetched is
                        # counted as its own attestation, not checked (§5.7).
                        name = origin.exchange
                        listed.attested[name] = listed.attested.get(name, 0) + 1
                    elif isinstance(origin, UpstreamOrigin):
                        listed.origins["hub"] = listed.origins.get("hub", 0) + 1
                        self._upstream_origin(listed, origins, entry_id, origin, told, retractions)
                    else:
                        listed.origins["member"] = listed.origins.get("member", 0) + 1
                        self._member_origin(listed, origins, entry_id, origin)
        self.report.upstreams = [u.to_dict() for _, u in sorted(self.upstreams.items())]

    # -- upstreams ----------------------------------------------------------------------

    def _open_upstreams(self, lists: list[ListReport]) -> None:
        """Verify each upstream the origins point into, once, with every list they name."""
        needed: dict[_Key, set[str]] = {}
        for listed in lists:
            for origins in listed.provenance:
                for origin in origins.document.origins.values():
                    if isinstance(origin, UpstreamOrigin):
                        declared = origins.upstreams[origin.hub]
                        key = (origin.hub, declared.root_sha256, declared.url)
                        needed.setdefault(key, set()).add(origin.list_id)
        for key, list_ids in sorted(needed.items()):
            name, pin, url = key
            try:
                source = self.chain.open_upstream(name, url)
            except SourceError as e:
                self.upstreams[key] = UpstreamTree(name, pin, url, problem=str(e))
                continue
            tree = verify_tree(source, pin=Pin(sha256=pin), now=self.report.at, lists=list_ids)
            self.upstreams[key] = UpstreamTree(name, pin, source.name, tree)

    def _upstream_origin(
        self,
        listed: ListReport,
        origins: VersionOrigins,
        entry_id: str,
        origin: UpstreamOrigin,
        told: set[str],
        retractions: set[tuple[str, int]],
    ) -> None:
        declared = origins.upstreams[origin.hub]
        upstream = self.upstreams[(origin.hub, declared.root_sha256, declared.url)]
        theirs = self._upstream_list(listed, origins, upstream, origin.list_id, told)
        if theirs is None:
            return
        version = DeltaHeader.from_bytes(origin.header).version
        where = (
            f"entry {entry_id} (v{origins.version}) claims {origin.hub}'s {origin.list_id} "
            f"v{version}"
        )
        problem = _forged(upstream, theirs, origin, version, listed.hash_type)
        if problem:
            self._finding(listed, origins.file, "ForgedOrigin", f"{where}, but {problem}")
            return
        altered = _altered(listed, origins.version, entry_id, origin)
        if altered:
            self._finding(listed, origins.file, "AlteredOrigin", f"{where}, but {altered}")
        self._retraction(listed, origin, entry_id, theirs, version, retractions)

    def _upstream_list(
        self,
        listed: ListReport,
        origins: VersionOrigins,
        upstream: UpstreamTree,
        list_id: str,
        told: set[str],
    ) -> ListReport | None:
        """The upstream's list of ``list_id`` if it verified; else what stood in the way
        is reported once per list of this tree (``told``) and None returned."""
        tree = upstream.tree
        named = f"upstream {upstream.name} ({upstream.where})"
        found: Finding | None = None
        theirs = tree.list_report(list_id) if tree is not None else None
        if tree is None:
            found = Finding(origins.file, "UnreachableUpstream", SECTION, upstream.problem)
        elif tree.findings:
            found = _carried(tree.findings, origins.file)
        elif tree.hub_name != upstream.name:
            found = Finding(
                origins.file,
                "ForgedOrigin",
                SECTION,
                f"the root pinned for it names hub {tree.hub_name}, not {upstream.name}",
            )
        elif theirs is not None and theirs.status != "verified":
            found = _carried(theirs.findings, origins.file)
        if found is None:
            assert theirs is not None  # the list was asked for, so it has a report
            return theirs
        message = f"{named}: {found.message}"
        if message not in told:
            told.add(message)
            listed.findings.append(
                Finding(found.file, found.rule, found.section, message, found.location)
            )
        return None

    def _retraction(
        self,
        listed: ListReport,
        origin: UpstreamOrigin,
        entry_id: str,
        theirs: ListReport,
        version: int,
        seen: set[tuple[str, int]],
    ) -> None:
        """An upstream version after ``version`` that removes the record's entry: the
        downstream must remove ``entry_id`` within its root's delay."""
        policy = self.report.policy
        upstream_entry = Entry.from_line(origin.record, hash_type(theirs.hash_type)).entry_id
        retraction = _retracted(theirs, upstream_entry, version)
        if retraction is None or policy is None or (entry_id, retraction[0]) in seen:
            return
        seen.add((entry_id, retraction[0]))
        removed_at, made = retraction
        delay = policy.withdrawal_delay
        what = (
            f"entry {entry_id}, re-published from {origin.hub}'s {origin.list_id} entry "
            f"{upstream_entry}, which {origin.hub} removed at its v{removed_at}, made "
            f"{format_time(made)},"
        )
        versions = [(v.version, v.created) for v in listed.versions]
        bodies = {v: b for v, b in listed.bodies.items() if isinstance(b, EntriesBody)}
        _, problem = removed_in_time(
            entry_id,
            made,
            versions,
            bodies,
            made + timedelta(seconds=delay),
            self.report.at,
            what=what,
            reason=None,
        )
        if problem:
            self._finding(
                listed,
                f"lists/{listed.list_id}/checkpoint",
                "LateUpstreamRetraction",
                f"{problem} (max_withdrawal_delay {delay} s)",
            )

    # -- members ------------------------------------------------------------------------

    def _member_origin(
        self, listed: ListReport, origins: VersionOrigins, entry_id: str, origin: MemberOrigin
    ) -> None:
        """The contribution verified under its node's enrolled key (§10.8)."""
        node = Contribution.from_bytes(origin.contribution).node
        where = f"entry {entry_id} (v{origins.version}), contributed by node {node}"
        keys = self.chain.node_keys.get(node, ())
        if not keys:
            self._finding(
                listed,
                origins.file,
                "Unverifiable",
                f"{where}: no key for node {node} to check its signature with "
                f"(give --node-key {node}=FILE, the key its platform enrolled)",
            )
            return
        problems = []
        for key in keys:
            try:
                verify_contribution(origin.contribution, origin.sig, node_key=key)
                return
            except ProtocolError as e:
                problems.append(f"{key.keyid[:16]}…: {type(e).__name__}: {e}")
        given = "the key" if len(keys) == 1 else f"any of the {len(keys)} keys"
        self._finding(
            listed,
            origins.file,
            "ForgedContribution",
            f"{where}: the signature does not verify under {given} given for {node} "
            f"({'; '.join(problems)})",
        )

    def _finding(self, listed: ListReport, file: str, rule: str, message: str) -> None:
        section = "PROTOCOL.md §7.5, §10.8" if "Contribution" in rule else SECTION
        if rule == "LateUpstreamRetraction":
            section = "PROTOCOL.md §7.5, §12 item 8"
        listed.findings.append(Finding(file, rule, section, message))


def _carried(findings: list[Finding], file: str) -> Finding:
    """What the upstream's own audit found, as one finding of the downstream's list:
    could not be read (``UnreachableUpstream``), or its files break a rule (theirs)."""
    failed = [f for f in findings if not f.incomplete]
    if not failed:
        first = findings[0]
        return Finding(file, "UnreachableUpstream", SECTION, first.message, first.location)
    first = failed[0]
    where = first.location or first.file
    return Finding(file, first.rule, first.section, f"{where}: {first.message}", where)


def _forged(
    upstream: UpstreamTree, theirs: ListReport, origin: UpstreamOrigin, version: int, kind: str
) -> str:
    """What the upstream's verified log says against the origin (``""``: nothing)."""
    if theirs.hash_type != kind:
        return f"that list holds {theirs.hash_type} hashes, this one {kind}"
    if origin.size > theirs.size:
        return (
            f"the upstream's signed log has {theirs.size} version(s), not the {origin.size} "
            "the origin's root is of"
        )
    if upstream.log_root(theirs, origin.size) != origin.root:
        return f"its root at size {origin.size} is not the upstream log's root at that size"
    if leaf_hash(origin.header) != theirs.leaves[version - 1]:
        return f"its header is not the upstream's header v{version}"
    body = theirs.bodies.get(version)
    if not isinstance(body, EntriesBody) or origin.record not in {e.line for e in body.adds}:
        return f"the upstream's v{version} does not add the record {origin.record.decode()!r}"
    return ""


def _altered(listed: ListReport, version: int, entry_id: str, origin: UpstreamOrigin) -> str:
    """Whether the record version ``version`` added for ``entry_id`` carries other terms
    than the upstream record its origin names (§5.6 rule 2); "" when it does not."""
    body = listed.bodies.get(version)
    if not isinstance(body, EntriesBody):
        return ""
    added = next((e for e in body.adds if e.entry_id == entry_id), None)
    if added is None:
        return ""
    theirs = Entry.from_line(origin.record, hash_type(listed.hash_type))
    ours = (added.category, added.classification)
    if ours == (theirs.category, theirs.classification):
        return ""
    return (
        f"re-published it as {ours[0]}/{ours[1]} where the upstream's record says "
        f"{theirs.category}/{theirs.classification}"
    )


def _retracted(theirs: ListReport, entry_id: str, after: int) -> tuple[int, datetime] | None:
    """The first upstream version after ``after`` that removes ``entry_id`` without
    adding it again (a change removes and adds: not a retraction), and when it was made."""
    for info in theirs.versions:
        body = theirs.bodies.get(info.version)
        if info.version <= after or not isinstance(body, EntriesBody):
            continue
        removed = any(r.entry.entry_id == entry_id for r in body.removes)
        if removed and not any(e.entry_id == entry_id for e in body.adds):
            return info.version, info.created
    return None
