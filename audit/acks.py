"""Audit the acks a hub stored: signatures, split views, and the takedown totals it reports.

Every ack is a node's signed receipt (PROTOCOL.md §10): the version, checkpoint
root and state it holds, a ``cosignature/v1`` line over that checkpoint, and its
cumulative outcome counters. With the nodes' public keys — best obtained from
the platforms, not from the hub — an auditor can check three things the hub
cannot fake:

1. **Signatures.** Every ack the hub stored (``GET /v1/admin/acks``) and every
   ack it kept as evidence (``GET /v1/admin/evidence``) verifies by
   ``protocol.verify_ack`` under its node's key, and the hub's row says what the
   signed bytes say.
2. **Split views.** Nodes are witnesses: two verified acks co-signing different
   roots for one tree size of one list prove that the hub showed two histories;
   so does a pair of sizes with no valid RFC 9162 consistency proof between the
   co-signed roots (the proof is built from the published log, verified first
   with ``audit.verify``), and a co-signed root the published log does not have.
3. **Totals.** The takedown totals are recomputed from the signed acks —
   cumulative counters, each node's acks in ``seq`` order, a counter that goes
   down taken as a reset whose last value is kept (as Prometheus, and the hub,
   do) — and compared with what the hub reports (``/v1/admin/status`` per node
   and per list, ``/v1/admin/lists/<id>/counts`` per hash).
4. **Opinion summaries.** Each summary ``verify`` checked is redone from the
   verified acks up to its cut (``audit.opinions.recompute``): every voice must be
   its platform's newest position, said by an ack the hub has and that verifies.
5. **Withdrawals.** Each withdrawal the action log shows granted must be removed
   from every list of entries within the root's withdrawal delay, and none may
   wait for review longer (``audit.withdrawals``).

What cannot be checked is said so (``Unverifiable`` / ``Unreadable`` findings):
a node without a public key, a route this token may not read, an answer larger
than the auditor's cap, or evidence the hub says it dropped past its per-node
cap. The hub's counters are bounded (ADR 0010): growth it withheld as an
implausible jump is reported per node (``withheld``), and what the signed acks
add up to is compared with what the hub counted plus what it withheld, both
clamped to 2^53 - 1. A node whose
key the platform did not give is checked with the key the hub says it enrolled,
and the report says so: only a key obtained out of band rules out a hub that
forges a node's acks.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from audit.opinions import recompute
from audit.source import FetchError, HttpSource
from audit.verify import INCOMPLETE_RULES, Finding, TreeReport
from audit.withdrawals import WITHDRAWALS_NEEDS, WithdrawalsReport, audit_withdrawals
from protocol import (
    Ack,
    EntriesBody,
    NodeKeyPeriod,
    ProtocolError,
    PublicKey,
    SignatureSidecar,
    b64encode,
    verify_ack,
    verify_ack_by_periods,
)
from protocol.ack import COUNTER_NAMES
from protocol.counters import MAX_TOTAL, clamp_total, counter_growth, counter_rows
from protocol.errors import ProofError
from protocol.merkle import CompactRange, consistency_proof, verify_consistency

__all__ = ["ACKS_PAGE", "AcksReport", "StoredAck", "audit_acks", "recompute_totals"]

ACKS_PAGE = 1000
"""The most acks ``GET /v1/admin/acks`` answers at once (the hub's ``limit`` cap)."""
_API_CAP = 256 * 1024 * 1024
"""The largest answer read from the operator API; a larger one is an ``Unreadable`` finding."""
_MAX_PAGES = 100_000
"""Pages followed per route at most (a hub whose ``next`` never ends cannot stall the audit)."""
_SECTION_ACK = "PROTOCOL.md §10"
_SECTION_SPLIT = "PROTOCOL.md §10, §9.1"
_SECTION_TOTALS = "PROTOCOL.md §10 (cumulative counters), ADR 0010"
_TOTALS_NEEDS = "GET /v1/admin/status and /v1/admin/lists/<id>/counts (viewer role)"
"""What reading the hub's totals needs, named in a finding when the hub refuses it."""


@dataclass
class StoredAck:
    """One ack as the hub serves it: its row, its exact bytes and sidecar, and what they say."""

    origin: str  # "acks" (accepted and counted) or "evidence" (refused, kept)
    row_id: int
    node: str
    list_id: str
    seq: int | None
    version: int | None
    data: bytes
    sig: bytes
    ack: Ack | None = None

    @property
    def label(self) -> str:
        where = "ack" if self.origin == "acks" else "evidence"
        return f"{where} #{self.row_id} ({self.node}, {self.list_id}, seq {self.seq})"


@dataclass
class AcksReport:
    """What the acks audit found."""

    hub: str
    acks: int = 0
    evidence: int = 0
    verified: int = 0
    nodes: list[str] = field(default_factory=list)
    keys_from_hub: list[str] = field(default_factory=list)
    cosigned: dict[str, dict[int, dict[str, list[str]]]] = field(default_factory=dict)
    totals: dict[str, dict[str, Any]] = field(default_factory=dict)
    summaries: dict[str, list[int]] = field(default_factory=dict)
    """Per list, the versions whose opinion summaries were redone from the acks."""
    withdrawals: WithdrawalsReport | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(f.rule not in INCOMPLETE_RULES for f in self.findings)

    @property
    def incomplete(self) -> bool:
        return any(f.rule in INCOMPLETE_RULES for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "hub": self.hub,
            "ok": not self.failed and not self.incomplete,
            "acks": self.acks,
            "evidence_acks": self.evidence,
            "verified": self.verified,
            "nodes": self.nodes,
            "keys_from_hub": self.keys_from_hub,
            "cosigned": {
                list_id: {
                    str(size): {root: sorted(nodes) for root, nodes in roots.items()}
                    for size, roots in sorted(sizes.items())
                }
                for list_id, sizes in sorted(self.cosigned.items())
            },
            "totals": self.totals,
            "summaries": self.summaries,
            "withdrawals": self.withdrawals.to_dict() if self.withdrawals else None,
            "findings": [f.to_dict() for f in self.findings],
        }


def _finding(report: AcksReport, what: str, rule: str, section: str, message: str) -> None:
    report.findings.append(Finding(what, rule, section, message))


def _api(hub: HttpSource, path: str, report: AcksReport, needs: str) -> Any | None:
    """GET an operator route as JSON; a refusal is an ``Unreadable`` finding, not a crash.

    So is an answer over ``_API_CAP`` (``LimitError``): the hub's routes page, so
    one that does not is not read whole into memory.
    """
    try:
        answer = hub.request(path, _API_CAP, missing_ok=False)
    except (FetchError, ProtocolError) as e:
        _finding(report, path, "Unreadable", needs, str(e))
        return None
    assert answer is not None
    try:
        return json.loads(answer[1])
    except ValueError as e:
        _finding(report, path, "Unreadable", needs, f"the hub's answer is not JSON: {e}")
        return None


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{what} is missing")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError(f"{what} is not base64") from e


def _rows(payload: Any, key: str) -> list[dict[str, Any]]:
    rows = payload.get(key) if isinstance(payload, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError(f"the hub's answer has no '{key}' list")
    return rows


def _next_page(payload: Any, page: list[dict[str, Any]], fresh: Mapping[int, Any]) -> str | None:
    """The ``before`` of the next page, or None when this one was the last.

    The hub says so in ``next`` (a page may end early at its byte budget); a hub
    without ``next`` pages by ``limit`` alone. A page with nothing new ends it.
    """
    if not fresh:
        return None
    if isinstance(payload, dict) and "next" in payload:
        after = payload["next"]
        if after is None:
            return None
        if not isinstance(after, int) or isinstance(after, bool) or after not in fresh:
            raise ValueError(f"the hub's 'next' {str(after)[:20]!r} is not an id of its page")
        return f"&before={after}"
    return f"&before={min(fresh)}" if len(page) >= ACKS_PAGE else None


def _paged_rows(
    hub: HttpSource, base: str, key: str, report: AcksReport, needs: str
) -> tuple[dict[int, dict[str, Any]], list[Any]] | None:
    """Every row of a paged route (``base`` has its query), and each page's answer."""
    rows: dict[int, dict[str, Any]] = {}
    payloads: list[Any] = []
    before = ""
    for _ in range(_MAX_PAGES):
        joiner = "&" if "?" in base else "?"
        payload = _api(hub, f"{base}{joiner}limit={ACKS_PAGE}{before}", report, needs)
        if payload is None:
            return None
        payloads.append(payload)
        page = _rows(payload, key)
        fresh = {int(r["id"]): r for r in page if int(r["id"]) not in rows}
        rows.update(fresh)
        following = _next_page(payload, page, fresh)
        if following is None:
            break
        before = following
    return rows, payloads


def _fetch_acks(hub: HttpSource, list_ids: Iterable[str], report: AcksReport) -> list[StoredAck]:
    """Every stored ack, list by list, page by page (``before`` the hub's ``next``)."""
    needs = "GET /v1/admin/acks (auditor role)"
    rows: dict[int, dict[str, Any]] = {}
    for list_id in list_ids:
        got = _paged_rows(hub, f"v1/admin/acks?list={list_id}", "acks", report, needs)
        if got is None:
            return []
        rows.update(got[0])
    out = []
    for row_id, r in sorted(rows.items()):
        out.append(
            StoredAck(
                "acks",
                row_id,
                str(r["node"]),
                str(r["list"]),
                r.get("seq"),
                r.get("version"),
                _b64(r.get("bytes"), f"ack #{row_id} bytes"),
                _b64(r.get("sig"), f"ack #{row_id} sig"),
            )
        )
    return out


def _fetch_evidence(hub: HttpSource, report: AcksReport) -> list[StoredAck]:
    """Acks the hub refused because they co-sign what it says it never published.

    Read page by page like the acks. Evidence the hub says it dropped past its
    per-node cap (``dropped``) could not be checked: an ``Unverifiable`` finding.
    """
    needs = "GET /v1/admin/evidence (auditor role)"
    got = _paged_rows(hub, "v1/admin/evidence", "evidence", report, needs)
    if got is None:
        return []
    rows, payloads = got
    dropped = payloads[0].get("dropped") if isinstance(payloads[0], dict) else None
    for node, info in sorted((dropped or {}).items()):
        count = info.get("dropped") if isinstance(info, dict) else info
        _finding(
            report,
            f"node {node}",
            "Unverifiable",
            _SECTION_ACK,
            f"the hub kept no more evidence from {node} past its cap of "
            f"{payloads[0].get('cap')} items and dropped {count}",
        )
    out = []
    for _, r in sorted(rows.items()):
        if r.get("bytes") is None or r.get("sig") is None:
            continue
        row_id = int(r["id"])
        out.append(
            StoredAck(
                "evidence",
                row_id,
                str(r.get("node")),
                str(r.get("list")),
                None,
                None,
                _b64(r["bytes"], f"evidence #{row_id} bytes"),
                _b64(r["sig"], f"evidence #{row_id} sig"),
            )
        )
    return out


def _enrolled_keys(
    hub: HttpSource, node_keys: Mapping[str, PublicKey], report: AcksReport
) -> dict[str, list[NodeKeyPeriod]]:
    """The keys to check each node's acks with, each with its ``seq`` period (§10.4.1).

    A key given out of band (``--node-key``) decides for the period the hub lists
    under its key id, and the hub must list it; for a node without one, or for
    periods of other keys (a node re-keyed or enrolled again), the keys the hub says
    it recorded are used and the report names the node in ``keys_from_hub`` (a hub
    that lies about a key could forge that node's acks; ask the platform for them).
    """
    periods = {node_id: [NodeKeyPeriod(key, 1)] for node_id, key in node_keys.items()}
    try:
        answer = hub.request("v1/admin/nodes", _API_CAP, missing_ok=False)
    except FetchError:
        return periods  # this token may not list nodes: the keys given out of band decide
    assert answer is not None
    try:
        nodes = {str(n["id"]): n for n in _rows(json.loads(answer[1]), "nodes")}
    except (ValueError, KeyError, TypeError):
        return periods
    for node_id, enrolled in sorted(nodes.items()):
        listed = _listed_periods(enrolled)
        given = node_keys.get(node_id)
        if given is not None and not any(p.key.keyid == given.keyid for p in listed):
            _finding(
                report,
                f"node {node_id}",
                "SignatureError",
                _SECTION_ACK,
                f"the hub enrolled key {str(enrolled.get('keyid'))[:16]}…, "
                f"not the given key {given.keyid[:16]}…",
            )
            continue
        if not listed:
            continue
        periods[node_id] = listed
        if given is None or any(p.key.keyid != given.keyid for p in listed):
            report.keys_from_hub.append(node_id)
    return periods


def _listed_periods(enrolled: Mapping[str, Any]) -> list[NodeKeyPeriod]:
    """A node's key periods as the hub lists them (``keys``); a hub that lists only
    ``public_key`` has one key, from seq 1. Entries that do not parse are left out."""
    out = []
    rows = enrolled.get("keys")
    if not isinstance(rows, list):
        rows = [{"public_key": enrolled.get("public_key"), "first_seq": 1, "last_seq": None}]
    for row in rows:
        try:
            key = PublicKey(bytes.fromhex(row["public_key"]))
            first, last = row["first_seq"], row["last_seq"]
            if not isinstance(first, int) or not (last is None or isinstance(last, int)):
                continue
        except (ValueError, KeyError, TypeError, ProtocolError):
            continue
        out.append(NodeKeyPeriod(key, first, last))
    return out


def _verify(
    stored: StoredAck, periods: list[NodeKeyPeriod], hub_name: str, report: AcksReport
) -> None:
    try:
        if stored.origin == "acks":
            ack = verify_ack_by_periods(
                stored.data, stored.sig, periods=periods, origin_prefix=hub_name
            )
        else:
            # A refused ack kept as evidence used up no seq: any key the node had
            # may have signed it, whatever seq it carries.
            ack = _verify_any(stored, periods, hub_name)
    except ProtocolError as e:
        _finding(report, stored.label, type(e).__name__, _SECTION_ACK, str(e))
        return
    said = {"node": ack.node, "list": ack.list_id}
    row = {"node": stored.node, "list": stored.list_id}
    if stored.origin == "acks":
        said.update(seq=str(ack.seq), version=str(ack.applied.version))
        row.update(seq=str(stored.seq), version=str(stored.version))
    differ = [f"{k} {row[k]} (signed: {said[k]})" for k in said if row[k] != said[k]]
    if differ:
        _finding(
            report,
            stored.label,
            "ConsistencyError",
            _SECTION_ACK,
            "the hub's row does not say what the signed ack says: " + ", ".join(differ),
        )
        return
    stored.ack = ack


def _verify_any(stored: StoredAck, periods: list[NodeKeyPeriod], hub_name: str) -> Ack:
    """``verify_ack`` under the node's key that the sidecar names (else its current one)."""
    signed_by = {s.keyid for s in SignatureSidecar.from_bytes(stored.sig).signatures}
    keys = [p.key for p in periods if p.key.keyid in signed_by] or [periods[-1].key]
    return verify_ack(stored.data, stored.sig, node_key=keys[0], origin_prefix=hub_name)


def _published_roots(leaves: list[bytes]) -> dict[int, bytes]:
    compact = CompactRange()
    roots = {}
    for leaf in leaves:
        compact.append(leaf)
        roots[compact.size] = compact.root()
    return roots


CoSigned = dict[int, dict[bytes, set[str]]]
"""One list's co-signed heads: tree size → checkpoint root → the nodes that co-signed it."""


def _split_views(verified: list[StoredAck], tree: TreeReport, report: AcksReport) -> None:
    """Compare what every node co-signed, with each other and with the published log.

    Three checks per list, each a way a hub could show nodes different histories:
    two roots for one size; a head the published log does not have; and two heads
    with no consistency proof between them.
    """
    for list_id, sizes in sorted(_cosigned(verified).items()):
        report.cosigned[list_id] = {
            size: {b64encode(root): sorted(nodes) for root, nodes in roots.items()}
            for size, roots in sizes.items()
        }
        where = f"list {list_id}"
        _two_roots_for_one_size(report, where, sizes)
        listed = tree.list_report(list_id)
        if listed is None or listed.status != "verified":
            _finding(
                report,
                where,
                "Unverifiable",
                _SECTION_SPLIT,
                "the published log of this list did not verify, so co-signed roots "
                "cannot be compared with it",
            )
            continue
        published = _published_roots(listed.leaves)
        heads = sorted((size, root) for size, roots in sizes.items() for root in roots)
        _heads_against_the_log(report, where, sizes, heads, published, listed.size)
        _heads_linked(report, where, sizes, heads, published, listed.leaves)


def _cosigned(verified: list[StoredAck]) -> dict[str, CoSigned]:
    """Per list, who co-signed which checkpoint root at which size (verified acks only)."""
    cosigned: dict[str, CoSigned] = defaultdict(lambda: defaultdict(lambda: defaultdict(set)))
    for stored in verified:
        assert stored.ack is not None
        applied = stored.ack.applied
        cosigned[stored.ack.list_id][applied.version][applied.checkpoint_root].add(stored.node)
    return cosigned


def _two_roots_for_one_size(report: AcksReport, where: str, sizes: CoSigned) -> None:
    """Nodes that co-signed different roots for one size were shown different logs,
    whatever the published copy says."""
    for size, roots in sorted(sizes.items()):
        if len(roots) > 1:
            sides = "; ".join(
                f"{', '.join(sorted(nodes))} co-signed {b64encode(root)}"
                for root, nodes in sorted(roots.items())
            )
            _finding(
                report,
                where,
                "SplitView",
                _SECTION_SPLIT,
                f"two roots for tree size {size}: {sides}",
            )


def _heads_against_the_log(
    report: AcksReport,
    where: str,
    sizes: CoSigned,
    heads: list[tuple[int, bytes]],
    published: dict[int, bytes],
    log_size: int,
) -> None:
    """Every co-signed head must be a head of the published log: a size beyond it or
    another root at a size it has means a node saw a history nobody else can check."""
    for size, root in heads:
        nodes = ", ".join(sorted(sizes[size][root]))
        if size not in published:
            _finding(
                report,
                where,
                "SplitView",
                _SECTION_SPLIT,
                f"{nodes} co-signed size {size}, beyond the published log of {log_size}",
            )
        elif published[size] != root:
            _finding(
                report,
                where,
                "SplitView",
                _SECTION_SPLIT,
                f"{nodes} co-signed root {b64encode(root)} for size {size}; "
                f"the published log's root there is {b64encode(published[size])}",
            )


def _heads_linked(
    report: AcksReport,
    where: str,
    sizes: CoSigned,
    heads: list[tuple[int, bytes]],
    published: dict[int, bytes],
    leaves: list[bytes],
) -> None:
    """Consecutive co-signed heads must be linked by a consistency proof of the log,
    so that every node's view is a prefix of the next one's."""
    for (old_size, old_root), (new_size, new_root) in itertools.pairwise(heads):
        if old_size == new_size or new_size not in published:
            continue
        try:
            verify_consistency(
                old_size,
                new_size,
                old_root,
                new_root,
                consistency_proof(leaves[:new_size], old_size),
            )
        except ProofError as e:
            old_nodes = ", ".join(sorted(sizes[old_size][old_root]))
            new_nodes = ", ".join(sorted(sizes[new_size][new_root]))
            _finding(
                report,
                where,
                "SplitView",
                _SECTION_SPLIT,
                f"no consistency proof from {old_nodes} (size {old_size}) "
                f"to {new_nodes} (size {new_size}): {e}",
            )


def recompute_totals(acks: Iterable[Ack]) -> dict[tuple[str, str], dict[str, dict[str, int]]]:
    """Cumulative totals per (node, list) from signed acks, with counter resets handled.

    Returns ``{(node, list): {"": {counter: total}, "<hex hash>": {counter: total}}}``.
    Each node's acks are taken in ``seq`` order, as ``protocol.counter_rows``; each
    counter adds its ``protocol.counter_growth`` (a value below the previous one is
    a reset whose previous value stays counted), so a total never goes down
    (ADR 0010, as Prometheus counts). The totals are exact, not clamped.
    """
    last: dict[tuple[str, str, str, str], tuple[int, int]] = {}
    for ack in sorted(acks, key=lambda a: (a.node, a.seq)):
        for hex_hash, name, value in counter_rows(ack.counts):
            key = (ack.node, ack.list_id, hex_hash, name)
            previous, total = last.get(key, (0, 0))
            last[key] = (value, total + counter_growth(previous, value))
    out: dict[tuple[str, str], dict[str, dict[str, int]]] = {}
    for (node, list_id, hex_hash, name), (_, total) in last.items():
        out.setdefault((node, list_id), {}).setdefault(hex_hash, {})[name] = total
    return out


def _compare(
    report: AcksReport, where: str, name: str, signed: int, reported: int, whose: str
) -> None:
    if signed != reported:
        _finding(
            report,
            where,
            "TotalsMismatch",
            _SECTION_TOTALS,
            f"{name}: the signed acks{whose} add up to {signed}, the hub reports {reported}",
        )


NodeTotals = dict[str, dict[str, dict[str, int]]]
"""Per node, the signed totals of one list: ``{"": {counter: n}, "<hex hash>": {...}}``."""


def _check_totals(
    hub: HttpSource,
    accepted: list[Ack],
    list_ids: list[str],
    report: AcksReport,
    unverifiable: set[tuple[str, str]],
) -> None:
    """Compare the totals of the signed acks with the hub's, node by node, list, hash.

    ``unverifiable`` holds the (node, list) pairs with acks that could not be checked
    (no key for the node): their share is unknown, so the node's totals, and the
    list's sums over nodes, are not compared (the report is incomplete instead).
    """
    totals = recompute_totals(accepted)
    status = _api(hub, "v1/admin/status", report, _TOTALS_NEEDS)
    if status is None:
        return
    try:
        hub_lists = {str(e["id"]): e for e in status["lists"]}
    except (KeyError, TypeError):
        _finding(report, "v1/admin/status", "Unreadable", _TOTALS_NEEDS, "no 'lists' in the answer")
        return
    for list_id in list_ids:
        mine = {node: t for (node, lid), t in totals.items() if lid == list_id}
        unknown = {node for node, lid in unverifiable if lid == list_id}
        _check_list_totals(hub, report, list_id, hub_lists.get(list_id, {}), mine, unknown)


def _check_list_totals(
    hub: HttpSource,
    report: AcksReport,
    list_id: str,
    entry: Mapping[str, Any],
    mine: NodeTotals,
    unknown: set[str],
) -> None:
    """One list: each node's totals, then (when every node's share is known) the
    list's sums and the per-hash sums, against what the hub reports."""
    where = f"list {list_id}"
    per_node = {str(n["node"]): n.get("counts") or {} for n in entry.get("nodes", [])}
    withheld = {str(n["node"]): n.get("withheld") or {} for n in entry.get("nodes", [])}
    list_sum = _check_node_totals(report, where, mine, per_node, withheld, unknown)
    report.totals[list_id] = {
        "list": list_sum,
        "nodes": {node: mine[node].get("", {}) for node in sorted(mine)},
    }
    held_back = {node: dict(w) for node, w in sorted(withheld.items()) if w}
    if held_back:
        report.totals[list_id]["withheld"] = held_back
    if unknown:
        return
    reported_totals = entry.get("totals") or {}
    for name in COUNTER_NAMES:
        _compare(report, where, name, list_sum[name], int(reported_totals.get(name, 0)), "")
    _check_hash_totals(hub, report, list_id, _hash_sums(mine))


def _check_node_totals(
    report: AcksReport,
    where: str,
    mine: NodeTotals,
    per_node: Mapping[str, Mapping[str, Any]],
    withheld: Mapping[str, Mapping[str, Any]],
    unknown: set[str],
) -> dict[str, int]:
    """Each node's signed totals against the hub's count plus what it withheld;
    returns the list's sums of what the hub counted, for the list-wide check."""
    list_sum = dict.fromkeys(COUNTER_NAMES, 0)
    for node in sorted(set(mine) | set(per_node)):
        if node in unknown:
            continue
        signed = mine.get(node, {}).get("", {})
        for name in COUNTER_NAMES:
            held = int(withheld.get(node, {}).get(name, 0))
            reported = int(per_node.get(node, {}).get(name, 0))
            # What the hub counted of this node: the signed total less what it withheld;
            # past the clamp that difference is unknown and the node check below says so.
            counted = signed.get(name, 0) - held
            if max(held, signed.get(name, 0)) >= MAX_TOTAL:
                counted = reported
            list_sum[name] = clamp_total(list_sum[name] + counted)
            _compare(
                report,
                where,
                name,
                clamp_total(signed.get(name, 0)),
                clamp_total(int(per_node.get(node, {}).get(name, 0)) + held),
                f" of {node}",
            )
    return list_sum


def _hash_sums(mine: NodeTotals) -> dict[str, dict[str, int]]:
    """Per listed hash, the signed totals summed over nodes (clamped as the hub does)."""
    hashes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for node_totals in mine.values():
        for hex_hash, counters in node_totals.items():
            if hex_hash:
                for name, value in counters.items():
                    hashes[hex_hash][name] = clamp_total(
                        hashes[hex_hash][name] + clamp_total(value)
                    )
    return hashes


def _check_hash_totals(
    hub: HttpSource, report: AcksReport, list_id: str, hashes: dict[str, dict[str, int]]
) -> None:
    """The per-hash sums against the hub's per-hash counts plus what it withheld: the
    figures a retraction of a collision-prone hash is decided on."""
    where = f"list {list_id}"
    counts = _api(hub, f"v1/admin/lists/{list_id}/counts", report, _TOTALS_NEEDS)
    if counts is None:
        return
    reported_hashes = counts.get("hashes") if isinstance(counts, dict) else None
    if not isinstance(reported_hashes, dict):
        _finding(report, where, "Unreadable", _TOTALS_NEEDS, "no 'hashes' in the counts answer")
        return
    hash_withheld = counts.get("withheld") or {}
    if not isinstance(hash_withheld, dict):
        _finding(report, where, "Unreadable", _TOTALS_NEEDS, "'withheld' in the counts answer")
        return
    for hex_hash in sorted(set(hashes) | set(reported_hashes)):
        mine_hash = hashes.get(hex_hash, {})
        theirs = reported_hashes.get(hex_hash) or {}
        held_hash = hash_withheld.get(hex_hash) or {}
        for name in sorted(set(mine_hash) | set(theirs)):
            _compare(
                report,
                where,
                f"hash {hex_hash} {name}",
                mine_hash.get(name, 0),
                clamp_total(int(theirs.get(name, 0)) + int(held_hash.get(name, 0))),
                "",
            )
    if hash_withheld:
        report.totals[list_id]["withheld_hashes"] = {
            h: dict(c) for h, c in sorted(hash_withheld.items())
        }
    report.totals[list_id]["hashes"] = {h: dict(c) for h, c in sorted(hashes.items())}


def audit_acks(
    hub: HttpSource,
    tree: TreeReport,
    node_keys: Mapping[str, PublicKey],
    *,
    viewer: HttpSource | None = None,
) -> AcksReport:
    """Audit the hub's stored acks against the published tree ``tree`` (already verified).

    Args:
        hub: the hub, with a token of the ``auditor`` role (acks and evidence).
        tree: ``verify_tree`` of the same hub: the published log co-signed roots are
            compared with.
        node_keys: each node's public key, as the platform gave it; a node without
            one is checked with the key the hub enrolled (named in ``keys_from_hub``).
        viewer: the hub with a token that may read ``/v1/admin/status``, the per-hash
            counts and the node list (``viewer`` or ``auditor`` role); default ``hub``.
    """
    viewer = viewer or hub
    report = AcksReport(hub.name)
    list_ids = [r.list_id for r in tree.lists]
    try:
        stored = _fetch_acks(hub, list_ids, report)
        evidence = _fetch_evidence(hub, report)
    except (ValueError, KeyError, TypeError) as e:
        _finding(report, "v1/admin/acks", "Unreadable", _SECTION_ACK, f"unexpected answer: {e}")
        return report
    report.acks, report.evidence = len(stored), len(evidence)
    report.nodes = sorted({s.node for s in (*stored, *evidence)})
    periods = _enrolled_keys(viewer, node_keys, report)
    for item in (*stored, *evidence):
        key = periods.get(item.node)
        if key is None:
            _finding(
                report,
                item.label,
                "Unverifiable",
                _SECTION_ACK,
                f"no public key for node {item.node} (give --node-key {item.node}=FILE)",
            )
            continue
        _verify(item, key, tree.hub_name, report)
    verified = [s for s in (*stored, *evidence) if s.ack is not None]
    report.verified = len(verified)
    _split_views(verified, tree, report)
    accepted = [s.ack for s in stored if s.ack is not None]
    unverifiable = {(s.node, s.list_id) for s in stored if s.node not in periods}
    _check_totals(viewer, accepted, list_ids, report, unverifiable)
    _check_summaries(tree, stored, set(periods), report)
    _check_withdrawals(hub, tree, report)
    return report


def _check_summaries(
    tree: TreeReport, stored: list[StoredAck], keyed: set[str], report: AcksReport
) -> None:
    """Redo every opinion summary ``verify`` checked from the acks the hub stored
    (§10.7): by (node, seq), the verified ack, or None for one that did not verify."""
    by_seq = {(s.node, s.seq): s.ack for s in stored if s.seq is not None}
    for listed in tree.lists:
        history = listed.opinions
        if not history.summaries:
            continue
        keyless = {n for s in history.summaries for n in s.summary.nodes} - keyed
        entries = {v: b for v, b in listed.bodies.items() if isinstance(b, EntriesBody)}
        for breach in recompute(history, entries, by_seq, keyless):
            _finding(report, breach.file, breach.rule, breach.section, breach.message)
        report.summaries[listed.list_id] = [s.version for s in history.summaries]


def _check_withdrawals(hub: HttpSource, tree: TreeReport, report: AcksReport) -> None:
    """Every granted withdrawal removed in time (``audit.withdrawals``), read with the
    auditor's token: the action log and the withdrawals waiting for review."""
    report.withdrawals, breaches = audit_withdrawals(
        lambda path: _api(hub, path, report, WITHDRAWALS_NEEDS), tree
    )
    for breach in breaches:
        _finding(report, breach.file, breach.rule, breach.section, breach.message)
