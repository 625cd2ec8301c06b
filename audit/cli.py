"""``hashhub-audit``: check a hub from public keys alone.

Usage::

    hashhub-audit verify SOURCE (--root FILE | --root-sha256 HEX) [--witness FILE]
                         [--list ID ...] [--upstream NAME=PATH_OR_URL ...]
                         [--upstream-token NAME=FILE ...] [--node-key NODE=FILE ...]
                         [--token T] [--at TIME] [--timeout S] [--json]
    hashhub-audit acks HUB_URL (--root FILE | --root-sha256 HEX) --token T
                       [--viewer-token T] [--node-key NODE=FILE ...]
                       [--at TIME] [--timeout S] [--json]
    hashhub-audit diff SOURCE LIST V1 V2 (--root FILE | --root-sha256 HEX)
                       [--token T] [--at TIME] [--timeout S] [--json]

``SOURCE`` is a hub's base URL, a mirror's, or a folder holding a copy of the
published tree (what ``hashhub export`` writes). Root v1 is the trust anchor and
comes out of band: ``--root FILE`` (its sidecar ``FILE.sig`` is used when
present, else the source's) or ``--root-sha256 HEX`` (the SHA-256 a hub operator
gives every participant at init and enrolment).

``verify`` runs every rule of PROTOCOL.md §13 over the whole history: the root
chain, every checkpoint, header, body and due snapshot, a replay of every list
from empty, every opinion summary a header names (and the life of each dispute
across them), the frames file of every video a ``vpdq`` list adds (each once),
and the checkpoints of earlier runs kept in a witness file (default
``$XDG_STATE_HOME/hashhub/audit-witness.json``; a tree that shrank or forked since
is a failure), and follows every provenance document to its origins: each
record re-published from an upstream against the upstream's own log (read at the
URL the root declares, or where ``--upstream NAME=PATH_OR_URL`` says; always from
the pin the root declares), each contribution under its node's key
(``--node-key``). ``acks`` needs an operator token with the ``auditor`` role (acks,
evidence, the totals the hub reports and its node list), and is strongest with
the nodes' public keys obtained from the platforms
(``--node-key platform-a=platform-a.pub.pem``): a node without one is checked
with the key the hub says it enrolled, and the report names it. It verifies
every stored ack, reports split views, recomputes the takedown totals and every
opinion summary from the signed acks, and holds the hub to publishing each
withdrawal it granted within the root's delay (from its action log).
``diff`` lists the hashes added and removed between two versions of a list, with
the key ids that signed each change. Private lists are read with
``--token`` (or ``HASHHUB_AUDIT_TOKEN``).

Exit status: 0 everything checked held; 3 a check failed (each failure names the
file, the rule and its PROTOCOL.md section); 4 something could not be checked (a
file or route that could not be read, an ack without a node key) and nothing
failed. A mistake in the command line is one line on standard error and exit 1
(2 for click's usage errors), never a traceback.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from audit.acks import AcksReport, audit_acks
from audit.diff import Change, ListDiff, diff_versions
from audit.provenance import Chain
from audit.source import (
    DEFAULT_DEADLINE,
    FolderSource,
    HttpSource,
    Source,
    SourceError,
    open_source,
)
from audit.verify import Finding, ListReport, Pin, TreeReport, verify_tree
from audit.witness import Witness, WitnessError, default_witness_path
from edge import cli as edge_cli
from edge.clock import utcnow
from protocol import KeyFileError, ProtocolError, PublicKey, parse_time
from protocol.keyfile import load_public_key

__all__ = ["EXIT_FAILED", "EXIT_INCOMPLETE", "main"]

F = TypeVar("F", bound=Callable[..., Any])

EXIT_FAILED = 3
"""A check failed: the published data, an ack or a total broke a rule."""
EXIT_INCOMPLETE = 4
"""Nothing failed, but something could not be checked."""

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def _reported() -> AbstractContextManager[None]:
    """The user's mistakes as one-line messages (exit 1).

    Only what reading a source, a witness or a key file raises: a rule the tree
    breaks is a finding of the report, never a message.
    """
    return edge_cli.reported((SourceError, WitnessError, KeyFileError))


def _pin(root_file: Path | None, root_sha256: str | None) -> Pin:
    if root_file is None and root_sha256 is None:
        raise click.ClickException(
            "give the trust anchor: --root FILE (root v1) or --root-sha256 HEX"
        )
    if root_sha256 is not None and not _HEX64.fullmatch(root_sha256):
        raise click.ClickException("--root-sha256 is the 64 hex digits of root v1's SHA-256")
    data = sig = None
    if root_file is not None:
        with _reported():
            data = root_file.read_bytes()
            sidecar = root_file.with_name(root_file.name + ".sig")
            sig = sidecar.read_bytes() if sidecar.is_file() else None
    return Pin(data, sig, root_sha256.lower() if root_sha256 else None)


def _at(text: str | None) -> datetime:
    if text is None:
        return utcnow()
    try:
        return parse_time(text, "--at")
    except ProtocolError as e:
        raise click.ClickException(str(e)) from e


def _source(text: str, token: str | None, timeout: float) -> FolderSource | HttpSource:
    with _reported():
        return open_source(text, token=token, deadline=timeout)


def trust_options(command: F) -> F:
    """Options every command shares: the pin, a token, the reference time, JSON output."""
    for option in reversed(
        [
            click.option(
                "--root",
                "root_file",
                type=click.Path(dir_okay=False, path_type=Path),
                help="Root v1 as obtained from the hub operator (FILE.sig next to it is used).",
            ),
            click.option(
                "--root-sha256",
                "root_sha256",
                metavar="HEX",
                envvar="HASHHUB_AUDIT_ROOT_SHA256",
                show_envvar=True,
                help="SHA-256 of root v1, as the hub operator publishes it.",
            ),
            click.option(
                "--token",
                metavar="TOKEN",
                envvar="HASHHUB_AUDIT_TOKEN",
                show_envvar=True,
                help="Bearer token for private lists and the operator routes.",
            ),
            click.option(
                "--at",
                "at",
                metavar="YYYY-MM-DDTHH:MM:SSZ",
                help="Judge freshness and expiry as of this time (default: now).",
            ),
            click.option(
                "--timeout",
                type=click.FloatRange(min=0.1, max=3600),
                default=DEFAULT_DEADLINE,
                show_default=True,
                help="Seconds allowed for each download over HTTP, start to end.",
            ),
            edge_cli.json_option,
        ]
    ):
        command = option(command)
    return command


def _exit_code(failed: bool, incomplete: bool) -> int:
    return EXIT_FAILED if failed else EXIT_INCOMPLETE if incomplete else 0


def _verdict(failed: bool, incomplete: bool, findings: Sequence[Finding]) -> str:
    if failed:
        n = sum(1 for f in findings if not f.incomplete)
        return f"result: FAILED ({n} failed check{'s' if n != 1 else ''})"
    if incomplete:
        return "result: INCOMPLETE (nothing failed, but not everything could be checked)"
    return "result: OK"


def _list_lines(r: ListReport) -> list[str]:
    if r.status == "verified":
        assert r.state is not None
        snaps = ", ".join(f"v{v}" for v in r.snapshots) or "none due"
        held = (
            f"{r.state.count} entr{'y' if r.state.count == 1 else 'ies'}"
            if r.format == "entries"
            else f"{r.state.count} hash{'' if r.state.count == 1 else 'es'}"
        )
        removed = ", ".join(f"{n} {reason}" for reason, n in sorted(r.removed.items()))
        return [
            f"list {r.list_id} ({r.hash_type}): verified - {r.size} version(s), {held} "
            f"(state {r.state.sha256[:16]}…), "
            f"checkpoint co-signed {r.checkpoint_time}, snapshots {snaps}",
            *([f"  removed: {removed}"] if removed else []),
            # A list of a frames type: each video's frames file, read once and held to
            # its record (PROTOCOL.md §6.3).
            *(
                [f"  frames: {r.frames_checked} file(s) checked"]
                if r.frames_checked is not None
                else []
            ),
            *_opinion_lines(r),
            *_provenance_lines(r),
            *([f"  witness: {r.witness}"] if r.witness else []),
            # Rules the hub broke although every file verified (PROTOCOL.md §7.3, §12).
            *(f"  {f.line()}" for f in r.findings),
        ]
    return [f"list {r.list_id} ({r.hash_type or '?'}): {r.status.upper()}"] + [
        f"  {f.line()}" for f in r.findings
    ]


def _opinion_lines(r: ListReport) -> list[str]:
    """The opinion summaries checked and the life of every dispute they showed."""
    checked = [s.version for s in r.opinions.summaries]
    if not checked:
        return []
    return [
        f"  opinions: {len(checked)} summar{'y' if len(checked) == 1 else 'ies'} checked "
        f"(v{checked[0]}..v{checked[-1]}), {len(r.opinions.disputes)} dispute(s)",
        *(f"    {life.line()}" for life in r.opinions.disputes),
    ]


def _provenance_lines(r: ListReport) -> list[str]:
    """The provenance documents checked and the origins followed, by kind."""
    if not r.provenance:
        return []
    kinds = {"hub": "from upstreams", "member": "from members"}
    followed = ", ".join(f"{r.origins.get(k, 0)} {words}" for k, words in kinds.items())
    lines = [f"  provenance: {len(r.provenance)} document(s), origins checked: {followed}"]
    if r.attested:
        said = ", ".join(f"{n} from exchange {name}" for name, n in sorted(r.attested.items()))
        lines.append(f"  provenance attested by this hub alone (an exchange signs nothing): {said}")
    return lines


def _upstream_lines(report: TreeReport) -> list[str]:
    """Each upstream the chain opened: from which pin, where, and what verified."""
    lines = []
    for u in report.upstreams:
        roots = u["roots"]
        lists = ", ".join(f"{lid} {status}" for lid, status in sorted(u["lists"].items()))
        verified = (
            f"root v{roots[0]}..v{roots[-1]} from the pin the root declares "
            f"(sha256 {u['pinned_root_sha256'][:16]}…)"
            if roots
            else "nothing verified"
        )
        lines.append(
            f"upstream {u['name']} ({u['source']}): {u['status']} - {verified}"
            + (f", lists {lists}" if lists else "")
        )
    return lines


def _tree_lines(report: TreeReport) -> list[str]:
    lines = [f"source {report.source}"]
    if report.hub_name:
        roots = report.roots
        lines.append(
            f"hub {report.hub_name}: root v{roots[0]}..v{roots[-1]} verified from the pin "
            f"(root v1 sha256 {report.pinned_sha256[:16]}…), newest expires {report.root_expires}"
        )
    lines += _upstream_lines(report)
    lines += [f"  {f.line()}" for f in report.findings]
    for r in report.lists:
        lines += _list_lines(r)
    return lines


def _emit(as_json: bool, value: dict[str, Any], lines: Sequence[str]) -> None:
    if as_json:
        click.echo(json.dumps(value, indent=2, sort_keys=True))
    else:
        click.echo("\n".join(lines))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hashhub", prog_name="hashhub-audit")
def main() -> None:
    """Verify a hashhub hub's published history and its nodes' acks from public keys alone.

    SOURCE is where the published files are read: a hub's base URL
    (http://127.0.0.1:8470, https://hashes.example.org), a mirror's, or a folder
    holding a copy of the published tree, as 'hashhub export' writes it. 'acks'
    takes the hub's URL only: it reads the operator API.
    """


@main.command()
@click.argument("source")
@trust_options
@click.option(
    "--witness",
    "witness_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="HASHHUB_AUDIT_WITNESS",
    show_envvar=True,
    help="Checkpoints seen on earlier runs (default: in the user's state directory).",
)
@click.option(
    "--list", "list_ids", multiple=True, metavar="ID", help="Only this list (repeatable)."
)
@click.option(
    "--upstream",
    "upstream_values",
    multiple=True,
    metavar="NAME=PATH_OR_URL",
    help="Read upstream NAME here instead of the URL the root declares; its pin is "
    "still the root's (repeatable).",
)
@click.option(
    "--upstream-token",
    "upstream_token_values",
    multiple=True,
    metavar="NAME=FILE",
    help="A file holding a bearer token for upstream NAME's private lists (repeatable).",
)
@click.option(
    "--node-key",
    "node_key_values",
    multiple=True,
    metavar="NODE=FILE",
    help="A contributing node's public key (PEM file, or 64 hex digits), from its "
    "platform (repeatable; a node re-keyed: each of its keys).",
)
def verify(
    source: str,
    root_file: Path | None,
    root_sha256: str | None,
    token: str | None,
    at: str | None,
    timeout: float,
    as_json: bool,
    witness_file: Path | None,
    list_ids: tuple[str, ...],
    upstream_values: tuple[str, ...],
    upstream_token_values: tuple[str, ...],
    node_key_values: tuple[str, ...],
) -> None:
    """Verify every signature, the whole history and every list state of SOURCE, and
    follow every provenance document to its origins.

    SOURCE is a hub's or a mirror's base URL, or a folder holding a copy of the
    published tree (as 'hashhub export' writes it).
    """
    pin = _pin(root_file, root_sha256)
    now = _at(at)
    tree = _source(source, token, timeout)
    chain = Chain(
        _upstreams(upstream_values, upstream_token_values, timeout),
        _node_key_sets(node_key_values),
    )
    with _reported():
        witness = Witness.load(witness_file or default_witness_path())
    report = verify_tree(
        tree, pin=pin, now=now, witness=witness, lists=list_ids or None, chain=chain
    )
    with _reported():
        witness.save()
    findings = report.all_findings()
    _emit(
        as_json,
        report.to_dict(),
        [*_tree_lines(report), _verdict(report.failed, report.incomplete, findings)],
    )
    sys.exit(_exit_code(report.failed, report.incomplete))


def _pairs(option: str, values: Sequence[str], what: str) -> dict[str, str]:
    """``NAME=VALUE`` options by name; a malformed or repeated one is a usage mistake."""
    pairs: dict[str, str] = {}
    for value in values:
        name, sep, where = value.partition("=")
        if not sep or not name or not where:
            raise click.ClickException(f"{option} {value!r}: expected {what}")
        if name in pairs:
            raise click.ClickException(f"{option}: {name} is given twice")
        pairs[name] = where
    return pairs


def _upstreams(
    values: Sequence[str], token_values: Sequence[str], timeout: float
) -> Callable[[str, str], Source]:
    """Where each upstream is read: an override (``--upstream``), opened now so a
    mistake is told at once, else the URL the root declares; each with its token."""
    tokens: dict[str, str] = {}
    for name, file in _pairs("--upstream-token", token_values, "NAME=FILE").items():
        with _reported():
            tokens[name] = Path(file).read_text(encoding="utf-8").strip()
        if not tokens[name]:
            raise click.ClickException(f"--upstream-token {name}: {file} is empty")
    overrides = {
        name: _source(where, tokens.get(name), timeout)
        for name, where in _pairs("--upstream", values, "NAME=PATH_OR_URL").items()
    }

    def open_upstream(name: str, url: str) -> Source:
        found = overrides.get(name)
        if found is not None:
            return found
        return open_source(url, token=tokens.get(name), deadline=timeout)

    return open_upstream


def _node_keys(values: Sequence[str]) -> dict[str, PublicKey]:
    """One key per node (for ``acks``, the hub's key periods say which key when; the
    last given for a node is the one used)."""
    return {node: keys[-1] for node, keys in _node_key_sets(values).items()}


def _node_key_sets(values: Sequence[str]) -> dict[str, tuple[PublicKey, ...]]:
    """Every key given for each node, in order: a node re-keyed signed its earlier
    contributions with a key it no longer holds, so ``verify`` takes each."""
    keys: dict[str, list[PublicKey]] = {}
    for value in values:
        node, sep, where = value.partition("=")
        if not sep or not node or not where:
            raise click.ClickException(f"--node-key {value!r}: expected NODE=FILE")
        if _HEX64.fullmatch(where):
            try:
                key = PublicKey(bytes.fromhex(where))
            except ProtocolError as e:
                raise click.ClickException(f"--node-key {node}: {e}") from e
        else:
            with _reported():
                key = load_public_key(Path(where))
        keys.setdefault(node, []).append(key)
    return {node: tuple(given) for node, given in keys.items()}


def _acks_lines(tree: TreeReport, report: AcksReport) -> list[str]:
    lines = _tree_lines(tree)
    lines.append(
        f"acks: {report.acks} stored, {report.evidence} kept as evidence, "
        f"{report.verified} verified, from node(s) {', '.join(report.nodes) or 'none'}"
    )
    if report.keys_from_hub:
        lines.append(
            "  checked with the keys the hub enrolled (none given out of band): "
            + ", ".join(report.keys_from_hub)
        )
    for list_id, sizes in sorted(report.cosigned.items()):
        for size, roots in sorted(sizes.items()):
            for root, nodes in sorted(roots.items()):
                lines.append(f"  {list_id} size {size} root {root}: {', '.join(nodes)}")
    for list_id, totals in sorted(report.totals.items()):
        summary = ", ".join(f"{k} {v}" for k, v in totals["list"].items())
        lines.append(f"totals {list_id} (recomputed from signed acks): {summary}")
    for list_id, versions in sorted(report.summaries.items()):
        lines.append(
            f"opinions {list_id} (recomputed from signed acks): {len(versions)} summaries, "
            f"v{versions[0]}..v{versions[-1]}"
        )
    done = report.withdrawals
    if done is not None and (done.granted or done.waiting):
        since = f", action log read from {done.log_from}" if done.log_from else ""
        lines.append(
            f"withdrawals: {len(done.granted)} granted, {len(done.waiting)} waiting for "
            f"review, delay {done.delay} s{since}"
        )
        for grant in done.granted:
            where = ", ".join(f"{lid} v{v}" for lid, v in sorted(grant["removed"].items()))
            lines.append(f"  {grant['entry']} withdrawn {grant['at']}: removed {where or '-'}")
    lines += [f"  {f.line()}" for f in report.findings]
    return lines


@main.command()
@click.argument("source", metavar="HUB_URL")
@trust_options
@click.option(
    "--node-key",
    "node_key_values",
    multiple=True,
    metavar="NODE=FILE",
    help="A node's public key (PEM file, or 64 hex digits), from the platform (repeatable).",
)
@click.option(
    "--viewer-token",
    metavar="TOKEN",
    envvar="HASHHUB_AUDIT_VIEWER_TOKEN",
    show_envvar=True,
    help="Another token for the hub's totals and node list (default: --token).",
)
def acks(
    source: str,
    root_file: Path | None,
    root_sha256: str | None,
    token: str | None,
    at: str | None,
    timeout: float,
    as_json: bool,
    node_key_values: tuple[str, ...],
    viewer_token: str | None,
) -> None:
    """Verify the hub's stored acks, look for split views, recompute the takedown totals
    and the opinion summaries, and check that each granted withdrawal went out in time.

    HUB_URL is the hub's base URL: the acks are read from its operator API, which
    no mirror or folder has.
    """
    pin = _pin(root_file, root_sha256)
    now = _at(at)
    if not token:
        raise click.ClickException("acks needs an operator token with the auditor role (--token)")
    hub = _source(source, token, timeout)
    if not isinstance(hub, HttpSource):
        raise click.ClickException("acks reads the hub's operator API: give the hub's URL")
    node_keys = _node_keys(node_key_values)
    tree = verify_tree(hub, pin=pin, now=now)
    viewer = HttpSource(hub.base_url, viewer_token, timeout) if viewer_token else None
    report = (
        audit_acks(hub, tree, node_keys, viewer=viewer) if tree.hub_name else AcksReport(hub.name)
    )
    failed = tree.failed or report.failed
    incomplete = tree.incomplete or report.incomplete
    findings = [*tree.all_findings(), *report.findings]
    _emit(
        as_json,
        {"tree": tree.to_dict(), "acks": report.to_dict(), "ok": not failed and not incomplete},
        [*_acks_lines(tree, report), _verdict(failed, incomplete, findings)],
    )
    sys.exit(_exit_code(failed, incomplete))


def _changed(change: Change) -> str:
    """A hash, or of a list of entries the record (and why it went)."""
    if change.record is None:
        return change.hash
    return change.record + (f" ({change.reason})" if change.reason else "")


def _diff_lines(diff: ListDiff) -> list[str]:
    lines = [f"list {diff.list_id}: v{diff.old} -> v{diff.new}"]
    for v in diff.versions:
        lines.append(
            f"  v{v.version} created {v.created:%Y-%m-%dT%H:%M:%SZ} under root v{v.root_version}: "
            f"+{v.adds} -{v.removes}, signed by {', '.join(v.signed_by)}"
        )
    lines.append(f"added ({len(diff.added)}):")
    lines += [
        f"  +{_changed(c)}  v{c.version}  signed by {', '.join(c.signed_by)}" for c in diff.added
    ]
    lines.append(f"removed ({len(diff.removed)}):")
    lines += [
        f"  -{_changed(c)}  v{c.version}  signed by {', '.join(c.signed_by)}" for c in diff.removed
    ]
    return lines


@main.command()
@click.argument("source")
@click.argument("list_id", metavar="LIST")
@click.argument("old", metavar="V1", type=click.IntRange(min=0))
@click.argument("new", metavar="V2", type=click.IntRange(min=1))
@trust_options
def diff(
    source: str,
    list_id: str,
    old: int,
    new: int,
    root_file: Path | None,
    root_sha256: str | None,
    token: str | None,
    at: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    """The hashes added and removed in LIST between versions V1 and V2 (V1 may be 0).

    SOURCE is a hub's or a mirror's base URL, or a folder holding a copy of the
    published tree (as 'hashhub export' writes it).
    """
    pin = _pin(root_file, root_sha256)
    now = _at(at)
    if old >= new:
        raise click.ClickException(f"V1 ({old}) must be below V2 ({new})")
    tree = _source(source, token, timeout)
    report = verify_tree(tree, pin=pin, now=now, lists=[list_id], keep={old, new})
    listed = report.list_report(list_id)
    if report.failed or report.incomplete or listed is None or listed.status != "verified":
        _emit(
            as_json,
            report.to_dict(),
            [
                *_tree_lines(report),
                _verdict(report.failed, report.incomplete, report.all_findings()),
            ],
        )
        sys.exit(_exit_code(report.failed, report.incomplete) or EXIT_FAILED)
    if new > listed.size:
        raise click.ClickException(f"list {list_id} has {listed.size} version(s), not {new}")
    result = diff_versions(listed, old, new)
    _emit(as_json, result.to_dict(), _diff_lines(result))
