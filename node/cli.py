"""``hashhub-node``: the participant's command line, a thin layer over ``node.service``.

Every command works on the node in ``--home DIR`` (or ``HASHHUB_NODE_HOME``),
calls the ``Node`` and prints the result; the rules live in ``node`` and
``protocol``. A mistake (not a node home, a malformed hash, a secret file others
can read, a second ``init``) is a ``click.ClickException``: one line on standard
error and exit status 1, never a traceback. Usage errors (a missing argument, an
unknown option) exit with 2, as in every click program.

``sync`` says by its exit status what happened: 0 every list updated or current,
3 an update was rejected (the published data broke a protocol rule; evidence is
kept and the last good list stays enforced), 4 an update failed (network, HTTP
status, deadline, or the node's disk full: nothing applied, tried again next run),
7 the hub refused the node's token or a list (no run gets past that until the hub
operator acts), 8 ``node.toml`` names a list the hub does not declare (the node's
own configuration). When several happen, the first of 3, 7, 8, 4 is the status.
``match`` exits 0 when an item matched and 6 when none did, as grep does with 0
and 1 (1 is taken: a mistake), so a script can branch on it.
``verify`` and ``acks flush`` exit 1 and 4 when something is wrong. ``outcome``
exits 0 when the outcome is recorded (or was already, the same), 1 for an id the
node never issued or an outcome that is none of the four, and 5 when the match
already has another outcome: the rules of ``POST /v1/matches/{id}/outcome``
(``Matching.record_outcome``), whose 404, 400 and 409 these are.

``match`` and ``scan`` record what they find as match events, counted in the acks
the hub receives, exactly as the API does; ``--dry-run`` records nothing, for a
look that must not change the counts. ``matches`` and ``evidence`` only read.
``content import`` registers a corpus from a file of hashes, counted the same way,
in batches that are each written whole or not at all (``node.content_import``
reads the lines).

Enrolment needs the node's public key first, so ``init`` works without a hub
token; ``token set`` stores the one the hub operator sends back.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import aiohttp
import click

from edge import cli as edge_cli
from follow import ListOutcome
from node import content_import, reports
from node import store as node_store
from node.api.requests import MAX_LIMIT
from node.cli_hubs import hub as hub_group
from node.cli_video import is_video, shares_text, video_file_queries
from node.config import NodeConfig, hubs_of, write_secret
from node.contributions import Contributions, Delivery
from node.errors import InvalidContentError, NodeConfigError, OutcomeConflictError
from node.hubs import DEFAULT_HUB, HubSettings, shown_list, token_path
from node.imaging import ImageRejected, file_hashes, hash_image
from node.matching import DISPUTE_REASONS, OUTCOMES
from node.policy import DECISIONS, DISPUTED_CHOICES, MAX_WHY, Target
from node.service import MatchResult, Node, deliver_webhooks, flush_acks, run_sync
from node.store import NO_STANCE, ContentRows
from node.store.matches import shares_members
from node.video import VideoRejected
from node.video_hashes import FramesTextError, frames_from_hex
from node.video_index import VideoQueries
from node.workers import MAX_WORKERS
from protocol import HASH_TYPES, Root, format_time
from protocol.contribution import REVIEW_ACTIONS, REVIEWERS

__all__ = [
    "EXIT_CONFIG",
    "EXIT_CONFLICT",
    "EXIT_DENIED",
    "EXIT_FAILED",
    "EXIT_NO_MATCH",
    "EXIT_REJECTED",
    "main",
]

EXIT_REJECTED = 3
"""``sync``: an update was rejected by a protocol rule (evidence kept)."""
EXIT_FAILED = 4
"""``sync``, ``acks flush``: a download or a delivery failed (network, status, deadline),
or the node's disk refused the update (full, or an I/O error)."""
EXIT_CONFLICT = 5
"""``outcome``: the match already has another outcome (the API's 409); nothing changed."""
EXIT_NO_MATCH = 6
"""``match``: no item matched anything (0: at least one did)."""
EXIT_DENIED = 7
"""``sync``: the hub refused the node's token (401) or a list (403). Permanent until the
hub operator enrols the node, grants the list or issues a new token."""
EXIT_CONFIG = 8
"""``sync``: node.toml names a list the hub's root does not declare. Nothing of it is
fetched or trusted; only a corrected configuration ends it."""

_TYPES = "|".join(sorted(HASH_TYPES))


# -- plumbing ---------------------------------------------------------------------------


def _reported() -> AbstractContextManager[None]:
    """Turn the node's, the protocol's and the file system's errors into one-line messages."""
    return edge_cli.reported(busy_timeout=node_store.BUSY_TIMEOUT)


def _open(home: Path) -> AbstractContextManager[Node]:
    return edge_cli.opened(lambda: Node.open(home), busy_timeout=node_store.BUSY_TIMEOUT)


home_option = edge_cli.home_option(
    "HASHHUB_NODE_HOME", "The node's home directory (made by 'hashhub-node init')."
)
new_home_option = edge_cli.home_option(
    "HASHHUB_NODE_HOME", "The directory to make the node in (created if absent; must hold no node)."
)
json_option = edge_cli.json_option
hub_option = click.option(
    "--hub",
    "hub_name",
    metavar="NAME",
    default=None,
    help="The followed hub (its name in node.toml); needed when the node follows several.",
)
_echo_json = edge_cli.echo_json
_table = edge_cli.table


def _session(node: Node) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        headers={"User-Agent": "hashhub-node"},
        connector=aiohttp.TCPConnector(ssl=node.config.ssl_context(node.home)),
    )


def _match_line(label: str, m: MatchResult) -> str:
    if not m.recorded:
        recorded = "not recorded (dry run)"
    elif m.earlier:
        recorded = f"match id {m.match_id} (recorded before, not counted again)"
    else:
        recorded = f"match id {m.match_id}"
    # The distance is the variant's: name it, and its hash, when the image was turned.
    variant = f"  variant {m.transform} {m.query.hex()}" if m.transform is not None else ""
    # A video agrees by its frames' shares, not by a distance.
    closeness = shares_text(shares_members(m.shares).get("video")) or f"distance {m.distance}"
    return (
        f"{reports.printable(label)}: MATCH {shown_list(m.hub, m.list_id)} v{m.version}  "
        f"{m.hash_type} "
        f"{closeness}  listed {m.hash.hex()}{variant}{_entry_text(m)}"
        f"{_opinions_text(m)}  {recorded}{_decision_text(m)}"
    )


def _opinions_text(m: MatchResult) -> str:
    """What the platforms say of a match's entry, as the hub's newest summary says it
    (nothing when no platform said anything of it)."""
    if m.opinions is None or m.opinions == NO_STANCE:
        return ""
    said = m.opinions
    dispute = f", dispute {said.dispute}" if said.dispute is not None else ""
    return f"  platforms: {said.confirmed} confirm, {said.disputed} dispute{dispute}"


def _decision_text(m: MatchResult) -> str:
    """The platform's decision when it is not ``block`` (``node.policy``), with its reason."""
    verdict = m.verdict
    if verdict.reason is None:
        return ""
    return (
        f"  {verdict.decision.upper()} ({verdict.reason}: {reports.printable(verdict.why or '')})"
    )


def _entry_text(m: MatchResult) -> str:
    """A match of an entries list: its entry and the entry's metadata (every field of
    a closed grammar, so printable as it is)."""
    if m.entry is None:
        return ""
    fields = m.entry.to_dict()
    return (
        f"  entry {fields['entry']} {fields['category']} {fields['classification']}"
        f"  source {fields['source']}  first seen {fields['first_seen']}"
        f"  expires {fields['expires'] or 'never'}"
    )


dry_run_option = click.option(
    "--dry-run",
    is_flag=True,
    help="Record nothing: no match event, no counter, no registration. Without it every "
    "check and match is recorded and counted in the acks sent to the hub.",
)


# -- the command group ------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hashhub", prog_name="hashhub-node")
def main() -> None:
    """Run a hashhub node: follow a hub's signed hash lists and match content against them.

    Every command works on the node in --home DIR (or $HASHHUB_NODE_HOME).
    """


@main.command()
@click.option("--hub", "hub_url", required=True, help="The hub's base URL.")
@click.option("--node-id", required=True, help="The id the hub operator enrols this node under.")
@click.option("--lists", required=True, help="Comma-separated ids of the lists to follow.")
@click.option("--pin", help="SHA-256 of the hub's root v1, as the hub operator gave it.")
@click.option(
    "--pinned-root",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The hub's root v1 file (root/1.json) obtained out of band; pins its SHA-256.",
)
@click.option(
    "--mirror",
    "mirrors",
    multiple=True,
    help="A mirror of the published tree, tried first for immutable files (repeatable).",
)
@click.option("--webhook", default="", help="URL that receives retroactive matches.")
@click.option("--token", help="The hub token, if the node is already enrolled.")
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A file holding the hub token.",
)
@new_home_option
def init(
    hub_url: str,
    node_id: str,
    lists: str,
    pin: str | None,
    pinned_root: Path | None,
    mirrors: tuple[str, ...],
    webhook: str,
    token: str | None,
    token_file: Path | None,
    home: Path,
) -> None:
    """Create a node in --home: configuration, a new Ed25519 key and secret files."""
    if (pin is None) == (pinned_root is None):
        raise click.ClickException("give exactly one of --pin SHA256 and --pinned-root FILE")
    if token is not None and token_file is not None:
        raise click.ClickException("give at most one of --token and --token-file")
    subscribed = [item.strip() for item in lists.split(",") if item.strip()]
    with _reported():
        pin = _pin_of(pinned_root) if pinned_root is not None else pin
        if token_file is not None:
            token = token_file.read_text(encoding="utf-8").strip()
        if token is not None:
            _check_token(token)
        assert pin is not None
        node = Node.init(
            home,
            node_id=node_id,
            hub_url=hub_url,
            lists=subscribed,
            pinned_root_sha256=pin,
            token=token or "",
            mirrors=mirrors,
            webhook_url=webhook,
        )
        keyid = node.key.keyid
        config = node.config
        node.close()
    _echo_initialised(home, config, keyid, enrolled=bool(token))


def _pin_of(pinned_root: Path) -> str:
    """The SHA-256 to pin, of a root v1 file obtained out of band: parsed first, so a
    file that is not root v1 is refused here rather than at the first sync."""
    data = pinned_root.read_bytes()
    root = Root.from_bytes(data)
    if root.version != 1:
        raise click.ClickException(f"{pinned_root} is root version {root.version}; pin version 1")
    return hashlib.sha256(data).hexdigest()


def _echo_initialised(home: Path, config: NodeConfig, keyid: str, *, enrolled: bool) -> None:
    """What ``init`` made, and the next step: sync if a hub token came with it, else
    the enrolment the hub operator has to do first."""
    click.echo(f"Initialised node {config.node_id} in {home}")
    click.echo(f"  hub              {config.hub_url}")
    click.echo(f"  lists            {', '.join(config.lists)}")
    click.echo(f"  pinned root v1   {config.pinned_root_sha256}")
    click.echo(f"  public key       {home / 'node.pub.pem'} (key id {keyid})")
    click.echo(f"  API token        {home / 'api-token'}")
    click.echo(f"  webhook secret   {home / 'webhook-secret'}")
    if enrolled:
        click.echo("Hub token stored. Next: hashhub-node sync")
        return
    click.echo("Next: send node.pub.pem to the hub operator, who runs")
    click.echo(
        f"  hashhub node enrol {config.node_id} --public-key node.pub.pem "
        f"--lists {','.join(config.lists)}"
    )
    click.echo("then store the token they send back:")
    click.echo("  hashhub-node token set TOKEN")


def _check_token(token: str) -> None:
    if not token or len(token) > 256 or not all(0x21 <= ord(c) <= 0x7E for c in token):
        raise click.ClickException("a hub token is 1-256 printable characters without spaces")


@main.group()
def token() -> None:
    """The hub token the operator issued at enrolment."""


@token.command(name="set")
@click.argument("value", metavar="TOKEN")
@hub_option
@home_option
def token_set(value: str, hub_name: str | None, home: Path) -> None:
    """Store the hub token (TOKEN, or - to read it from standard input)."""
    if value == "-":
        value = sys.stdin.readline()
    value = value.strip()
    _check_token(value)
    with _reported():
        followed = _hub_settings(home, hub_name)
        path = token_path(home, followed.name)
        write_secret(path, value)
    click.echo(f"Stored the hub token in {path} (mode 0600).")


def _hub_settings(home: Path, name: str | None) -> HubSettings:
    """The followed hub ``name`` as ``node.toml`` says (None: the only one), or the
    error naming the hubs."""
    hubs = {h.name: h for h in hubs_of(home, NodeConfig.load(home))}
    if name is None and len(hubs) == 1:
        return next(iter(hubs.values()))
    if name is None:
        raise NodeConfigError(
            f"this node follows {len(hubs)} hubs ({', '.join(hubs)}): name one with --hub NAME"
        )
    if name not in hubs:
        raise NodeConfigError(f"no hub named {name[:64]!r}; this node follows {', '.join(hubs)}")
    return hubs[name]


@main.group()
def key() -> None:
    """The node's signing key, which signs its acks."""


@key.command(name="rotate")
@home_option
def key_rotate(home: Path) -> None:
    """Replace the node's signing key; the hub operator then records the new one.

    The old public key stays beside it as node.<keyid>.pub.pem, for auditors of the
    acks it signed; queued acks are signed again with the new key.
    """
    with _open(home) as node:
        old, new, resigned = node.rotate_key()
        node_id = node.config.node_id
    click.echo(
        f"New key {new[:16]} in {home / 'node.key'} (mode 0600), public half in "
        f"{home / 'node.pub.pem'}."
    )
    click.echo(
        f"The old key {old[:16]} is gone; its public half is {home / f'node.{old[:16]}.pub.pem'}."
    )
    if resigned:
        click.echo(f"Signed {len(resigned)} queued ack(s) again with the new key.")
    click.echo("A running 'hashhub-node run' takes up the new key before its next sync or send.")
    click.echo(
        "Send node.pub.pem to the hub operator now, to run "
        f"'hashhub node rekey {node_id} --public-key node.pub.pem': until then the hub "
        "refuses this node's acks (the next one after it carries the same counts)."
    )


def _outcome_line(o: ListOutcome, hub: str = DEFAULT_HUB) -> str:
    """One list's line of ``sync``: the list as ``hub/list`` unless the hub is ``default``."""
    shown = shown_list(hub, o.list_id)
    if o.status == "updated":
        how = " from a snapshot" if o.rebuilt else ""
        change = f"+{len(o.added)} -{len(o.removed)}"
        return f"{shown}: updated v{o.from_version} -> v{o.to_version}{how} ({change})"
    if o.status == "current":
        return f"{shown}: current at v{o.to_version}"
    if o.status == "rejected":
        return f"{shown}: REJECTED, still enforcing v{o.from_version}: {o.error}"
    if o.cause == "config":
        return f"{shown}: CONFIGURATION ERROR, not followed: {o.error}"
    if o.cause:
        return f"{shown}: ACCESS DENIED, still enforcing v{o.from_version}: {o.error}"
    return f"{shown}: failed, still enforcing v{o.from_version}: {o.error}"


def _advice(outcomes: list[ListOutcome], node_id: str) -> list[str]:
    """What to do about failures that no later run gets past: who has to act, and how.

    A refused token is the whole node's (one line); a refused list is one grant per
    list; an undeclared list is ``node.toml``'s (its own line already says so).
    """
    lines = []
    if any(o.cause == "unauthorized" for o in outcomes):
        lines.append(
            "The hub does not accept this node's token (unknown or revoked); this will "
            "not pass by itself. Ask the hub operator to enrol node.pub.pem as "
            f"{node_id} or issue a new token, then run 'hashhub-node token set TOKEN'."
        )
    if any(o.cause == "suspended" for o in outcomes):
        lines.append(
            "The hub operator has suspended this node; this will not pass by itself. "
            f"Ask them why, and to run 'hashhub node resume {node_id}'."
        )
    forbidden = [o.list_id for o in outcomes if o.cause == "forbidden"]
    if forbidden:
        lines.append(
            f"The hub does not let this node read {', '.join(forbidden)}; this will not "
            f"pass by itself. Ask the hub operator to grant node {node_id} "
            f"{'that list' if len(forbidden) == 1 else 'those lists'}."
        )
    return lines


def _sync_status(outcomes: list[ListOutcome]) -> int:
    """The exit status of ``sync``: the first of rejected, denied, configuration, failed."""
    if any(o.status == "rejected" for o in outcomes):
        return EXIT_REJECTED
    if any(o.cause in ("unauthorized", "forbidden", "suspended") for o in outcomes):
        return EXIT_DENIED
    if any(o.cause == "config" for o in outcomes):
        return EXIT_CONFIG
    if any(o.status == "failed" for o in outcomes):
        return EXIT_FAILED
    return 0


async def _sync(
    node: Node, hubs: Sequence[str], ack_reasons: list[str]
) -> tuple[dict[str, list[ListOutcome]], tuple[int, int], tuple[int, int]]:
    """Each hub's update in turn (one hub's failure is its own), then each hub's acks."""
    outcomes: dict[str, list[ListOutcome]] = {}
    confirmed = failed = 0
    async with _session(node) as session:
        for name in hubs:
            outcomes[name] = await run_sync(node, session, name)
            done, not_done = await flush_acks(node, session, hub=name, reasons=ack_reasons)
            confirmed, failed = confirmed + done, failed + not_done
        hooks = (0, 0)
        if node.config.webhook_url:
            hooks = await deliver_webhooks(node, session)
    return outcomes, (confirmed, failed), hooks


@main.command()
@hub_option
@home_option
def sync(hub_name: str | None, home: Path) -> None:
    """Update every list once (then send acks and webhooks): of every hub, or --hub NAME's.

    \b
    Exit status (when several apply, the first in this order):
      3  an update was rejected: the published data broke a protocol rule
      7  access denied: the hub refused the token or a list; ask the hub operator
      8  node.toml names a list the hub does not declare; correct node.toml
      4  an update failed (network, HTTP status, disk), tried again next run; or
         a hub of several has no token yet (the others are updated)
      0  every list updated or current
    """
    ack_reasons: list[str] = []
    with _open(home) as node:
        with _reported():
            chosen = [node.hub(hub_name)] if hub_name is not None else list(node.hubs.values())
        waiting = [hub.name for hub in chosen if not hub.token]
        chosen = [hub for hub in chosen if hub.token]
        if not chosen:  # else the hubs with a token are updated, and the others named
            also = "" if len(node.hubs) == 1 else f" --hub {waiting[0]}"
            raise click.ClickException(
                f"no hub token yet{'' if len(node.hubs) == 1 else ' for ' + waiting[0]}: "
                "once the hub operator has enrolled node.pub.pem, "
                f"run 'hashhub-node token set{also} TOKEN'"
            )
        node_ids = {hub.name: hub.settings.node_id for hub in chosen}
        with _reported():
            by_hub, (confirmed, ack_failed), (delivered, hook_failed) = asyncio.run(
                _sync(node, [hub.name for hub in chosen], ack_reasons)
            )
    outcomes = [o for found in by_hub.values() for o in found]
    for name, found in by_hub.items():
        for o in found:
            click.echo(_outcome_line(o, name))
        for line in _advice(found, node_ids[name]):
            click.echo(line)
    click.echo(f"acks: {confirmed} confirmed, {ack_failed} failed")
    for reason in ack_reasons:
        click.echo(f"  ack {reports.printable(reason)}")
    if delivered or hook_failed:
        click.echo(f"webhooks: {delivered} delivered, {hook_failed} failed")
    for name in waiting:
        click.echo(
            f"hub {name}: not updated, no token yet: once its operator has enrolled "
            f"node.pub.pem, run 'hashhub-node token set --hub {name} TOKEN'"
        )
    status = _sync_status(outcomes) or (EXIT_FAILED if waiting else 0)
    if status:
        sys.exit(status)


@main.command()
@click.option("--host", default=None, help="Address to bind (default: api_host in node.toml).")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port to bind (default: api_port in node.toml).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, MAX_WORKERS),
    default=1,
    show_default=True,
    help="Processes serving the match API on the one port; the first also syncs.",
)
@home_option
def run(host: str | None, port: int | None, workers: int, home: Path) -> None:
    """Run the node: sync on a schedule and serve the match API.

    With --workers N, N processes serve the API over the one store, on the same
    address: the first runs the schedule (sync, acks, outbox, stale alarm), the
    others take up each version it applies within about a second. SIGTERM or
    SIGINT stops them all (exit 0); a worker that dies stops the others (exit 1).
    """
    from node.app import run as run_app

    with _reported():
        NodeConfig.load(home)
        run_app(home, host, port, workers)


def _freshness(entry: dict[str, Any]) -> str:
    """``fresh``, ``STALE``, or ``never synced``: a list that has not been fetched
    yet is not stale (nothing old is being enforced), it is waiting for its first
    sync, and says so."""
    if not entry["last_success"]:
        return "never synced"
    return "STALE" if entry["stale"] else "fresh"


@main.command()
@json_option
@home_option
def status(as_json: bool, home: Path) -> None:
    """Lists, versions, freshness, outboxes and counters."""
    with _open(home) as node:
        info = node.status()
    if as_json:
        _echo_json(info)
        return
    for hub in info["hubs"]:
        click.echo(
            f"node {hub['node_id']}  hub {hub['url']}"
            + (f" ({hub['name']})" if len(info["hubs"]) > 1 else "")
            + f"  root v{hub['root_version'] or '-'}"
        )
    rows = []
    for entry in info["lists"]:
        counts = entry["counts"]
        rows.append(
            [
                shown_list(entry["hub"], entry["list"]),
                entry["version"],
                entry["count"],
                entry["checkpoint_time"],
                entry["last_success"],
                _freshness(entry),
                counts["checked"],
                counts["matched"],
                counts["actioned"],
                counts["blocked"],
                counts["false_positive"],
            ]
        )
    click.echo(
        _table(
            [
                "LIST",
                "VERSION",
                "HASHES",
                "CHECKPOINT",
                "LAST SUCCESS",
                "FRESHNESS",
                "CHECKED",
                "MATCHED",
                "ACTIONED",
                "BLOCKED",
                "FALSE POS",
            ],
            rows,
        )
    )
    for entry in info["lists"]:
        shown = shown_list(entry["hub"], entry["list"])
        if entry["last_error"]:
            click.echo(f"{shown}: last error: {entry['last_error']}")
        if entry["stale"] and entry["last_success"]:
            click.echo(
                f"{shown}: STALE: no verified checkpoint within the root's maximum "
                f"age; still enforcing v{entry['version']}"
            )
    click.echo(
        f"acks pending {info['acks_pending']}, webhooks pending {info['webhooks_pending']}, "
        f"matches awaiting an outcome {info['matches_awaiting_outcome']}, "
        f"evidence {info['evidence']}"
    )
    click.echo("decisions: " + ", ".join(f"{d} {info['policy'][d]}" for d in DECISIONS))


def _is_file(path: Path) -> bool:
    """Whether an argument names a file; a name too long for one (a video's frames
    in hex run to thousands of digits) is none."""
    try:
        return path.is_file()
    except OSError:
        return False


def _hash_query(text: str, type_name: str | None) -> dict[str, list[bytes]]:
    """One hash argument's query: a video's frames (``--type vpdq``) go as
    ``VideoQueries``, decoded once."""
    hash_type, value = _hash_argument(text, type_name)
    if not HASH_TYPES[hash_type].frames:
        return {hash_type: [value]}
    videos = VideoQueries([])
    try:
        videos.add(*frames_from_hex(text))
    except FramesTextError as e:
        raise click.ClickException(f"{text[:64]}: {e}") from None
    return {hash_type: videos}


def _hash_argument(text: str, type_name: str | None) -> tuple[str, bytes]:
    """A hash argument's type and bytes; a video's frames (``--type vpdq``) are only
    hex here, and ``_hash_query`` checks them."""
    try:
        value = bytes.fromhex(text)
    except ValueError:
        raise click.ClickException(f"{text}: no such file, and not a hex hash") from None
    if type_name is not None and HASH_TYPES[type_name].frames:
        return type_name, value
    # A video list's record hash names frames and matches nothing: only ``--type vpdq``
    # with the frames is a video query.
    widths = {n: kind for n, kind in HASH_TYPES.items() if not kind.frames}
    if type_name is None:
        candidates = [n for n, kind in widths.items() if 2 * kind.length == len(text)]
        if not candidates:
            raise click.ClickException(
                f"{text}: {len(text)} hex digits is no hash type's width "
                f"({', '.join(f'{n} {2 * k.length}' for n, k in sorted(widths.items()))})"
            )
        if len(candidates) > 1:
            raise click.ClickException(
                f"{text}: {len(text)} hex digits could be {' or '.join(sorted(candidates))}; "
                "say which with --type"
            )
        type_name = candidates[0]
    width = HASH_TYPES[type_name].length
    if len(value) != width:
        raise click.ClickException(f"{text}: a {type_name} hash is {2 * width} hex digits")
    return type_name, value


def _file_queries(node: Node, path: Path, dihedral: bool | None) -> dict[str, list[bytes]]:
    """An image's hashes; a video's frames and digests when the node follows a video
    list (``node.cli_video``); else a file's digests when it is no picture the node
    can read."""
    data = path.read_bytes()
    try:
        return node.matching.image_queries(data, dihedral=dihedral)
    except ImageRejected as e:
        if e.reason != "unsupported":
            raise
    if is_video(path, data[:16]) and node.matching.follows_videos:
        return video_file_queries(path)
    return node.matching.file_queries(data)


@main.command()
@click.argument("items", metavar="FILE|HASH...", nargs=-1, required=True)
@click.option(
    "--type", "type_name", type=click.Choice(sorted(HASH_TYPES)), help="The type of HASH."
)
@click.option(
    "--dihedral/--no-dihedral",
    default=None,
    help="Also query the 8 rotations and flips of images (default: dihedral in node.toml).",
)
@dry_run_option
@json_option
@home_option
def match(
    items: tuple[str, ...],
    type_name: str | None,
    dihedral: bool | None,
    dry_run: bool,
    as_json: bool,
    home: Path,
) -> None:
    """Match files (images; videos by their frames, when a video list is followed; any
    file by MD5/SHA-256) or hex hashes; prints the matches.

    Each item counts as checked and each match is a match event counted as matched,
    as an upload to the API is: the hub receives these counts. --dry-run only looks.

    \b
    Exit status:
      0  at least one item matched
      6  no item matched
      1  a mistake (no such file, a malformed hash); 2 a usage error
    """
    with _open(home) as node:
        queries: list[tuple[str, dict[str, list[bytes]]]] = []
        for item in items:
            path = Path(item)
            if _is_file(path):
                with _reported():
                    queries.append((item, _file_queries(node, path, dihedral)))
            else:
                queries.append((item, _hash_query(item, type_name)))
        with _reported():
            find = node.matching.look if dry_run else node.matching.match_hashes
            answers = [(label, find(q, one_item=True)) for label, q in queries]
    if as_json:
        _echo_json({label: [m.to_dict() for m in found] for label, found in answers})
    else:
        for label, found in answers:
            if not found:
                click.echo(f"{reports.printable(label)}: no match")
            for m in found:
                click.echo(_match_line(label, m))
    if not any(found for _, found in answers):
        sys.exit(EXIT_NO_MATCH)


@main.command()
@click.argument(
    "directory",
    metavar="DIR",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@click.option(
    "--dihedral/--no-dihedral",
    default=None,
    help="Also query the 8 rotations and flips of images (default: dihedral in node.toml).",
)
@dry_run_option
@json_option
@home_option
def scan(directory: Path, dihedral: bool | None, dry_run: bool, as_json: bool, home: Path) -> None:
    """Hash every file under DIR, register it as content (id: its path under DIR), report matches.

    Registered content is matched again whenever a later update lists one of its
    hashes (a retroactive match, delivered to the webhook). Each file is registered
    and matched in one transaction, as ``POST /v1/content`` does: a file is stored
    with its matches or not at all. New content counts as checked and each match
    as a match event, in the acks the hub receives; scanning the same files again
    counts nothing twice (a match found before is shown under its first match id).
    --dry-run registers and records nothing.
    """
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    found: list[tuple[str, MatchResult]] = []
    registered = images = skipped = 0
    with _open(home) as node:
        limit = node.config.max_upload_bytes
        with click.progressbar(files, label="hashing", file=sys.stderr) as bar:
            for path in bar:
                content_id = path.relative_to(directory).as_posix()
                with _reported():
                    if path.stat().st_size > limit:
                        skipped += 1
                        continue
                    try:
                        queries = _file_queries(node, path, dihedral)
                    except (ImageRejected, VideoRejected):
                        queries = node.matching.file_queries(path.read_bytes())
                    images += any(HASH_TYPES[t].of_picture is not None for t in queries)
                    # A video is registered by its frames, and matched by them.
                    try:
                        if dry_run:
                            count = len(node.registry.check(content_id, queries))
                            matches = node.matching.look(queries, one_item=True)
                        else:
                            count, matches = node.registry.register_and_match(
                                content_id, queries, one_item=True
                            )
                    except InvalidContentError as e:
                        raise click.ClickException(f"{reports.printable(content_id)}: {e}") from e
                    registered += count
                    found.extend((content_id, m) for m in matches)
    new = sum(1 for _, m in found if m.recorded and not m.earlier)
    if as_json:
        _echo_json(
            {
                "files": len(files),
                "images": images,
                "skipped": skipped,
                "dry_run": dry_run,
                "registered_hashes": 0 if dry_run else registered,
                "new_matches": new,
                "matches": [
                    {"content_id": c} | m.to_dict() | {"earlier": m.earlier} for c, m in found
                ],
            }
        )
        return
    summary = (
        f"would register {registered} hash(es) (dry run: nothing recorded)"
        if dry_run
        else f"registered {registered} hash(es)"
    )
    click.echo(
        f"Scanned {len(files)} file(s) ({images} picture(s)); {summary}"
        + (f"; skipped {skipped} over {limit} bytes" if skipped else "")
    )
    for content_id, m in found:
        click.echo(_match_line(content_id, m))
    click.echo(
        f"{len(found)} match(es)"
        + ("" if dry_run or new == len(found) else f", {new} new (the rest recorded before)")
    )


# -- the content registry in bulk -------------------------------------------------------


@main.group()
def content() -> None:
    """The content registry in bulk: register or remove a hosted corpus from a file.

    FILE (or - for standard input) holds one hash of one piece of content per line:
    CSV content_id,hash_type,hex (an optional header content_id,hash_type,hash) or
    NDJSON {"content_id": ..., "hash_type": ..., "hash": ...}; a video's vpdq hex is
    its frames (PROTOCOL.md §6.3), never the 64-digit SHA-256 of them. Lines are
    read as they come and written in batches, each one transaction: a malformed
    line is refused with its line number, and nothing of its batch is written.
    """


format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(content_import.FORMATS),
    help="The lines' format (default: NDJSON if the first non-blank character is {, else CSV).",
)
batch_option = click.option(
    "--batch",
    "batch_size",
    type=click.IntRange(1, 1_000_000),
    default=content_import.DEFAULT_BATCH,
    show_default=True,
    help="Lines per transaction: each batch is written whole or not at all.",
)

IMPORT_CACHE_MIB = 1024
"""SQLite's page cache for a bulk import: a registry's pages stay in memory across
batches instead of being read again for each (the node's default is 2 MiB)."""

_SHOWN_REFUSALS = 20
"""A dry run lists this many malformed lines, then only counts them."""

W = TypeVar("W")
_Removal = tuple[str, tuple[str, bytes] | None]
"""A content id and the one hash of it to remove (None: every hash of it)."""
_Imported = tuple[ContentRows, dict[bytes, bytes], int]
"""A batch of an import set out: its rows, its videos' frames by their SHA-256, and
how many lines were other shards'."""


def _committed(batch: int, first_line: int, lines: int) -> str:
    """Where a stopped run stands: what is written, and from where nothing is."""
    if batch == 1:
        return "nothing was written"
    done = "batch 1" if batch == 2 else f"batches 1-{batch - 1}"
    return (
        f"{done} ({lines} line(s), through line {first_line - 1}) committed; "
        f"nothing of batch {batch} (from line {first_line}) written"
    )


def _bulk(
    stream: BinaryIO,
    fmt: content_import.Format | None,
    batch_size: int,
    prepare: Callable[[list[content_import.ContentLine]], W],
    write: Callable[[W], None],
    *,
    hash_optional: bool,
    dry_run: bool,
    verb: str,
) -> tuple[int, int]:
    """Read ``stream`` in batches, ``prepare`` each well-formed one on the reading
    thread and ``write`` it here; (lines, batches).

    A malformed line stops a real run before its batch is written, and a failed
    write (the disk full, the database locked) stops it too: the message says which
    batches were committed. A dry run reads on and lists every malformed line.
    """
    lines = done = refused = 0
    started = time.monotonic()
    batch_no, first_line = 0, 1
    with content_import.no_cycle_collection():
        reader = content_import.read_batches(
            stream, fmt, batch_size, prepare, hash_optional=hash_optional
        )
        while True:
            try:
                batch = next(reader, None)
            except OSError as e:
                where = _committed(batch_no + 1, first_line, lines)
                raise click.ClickException(f"{stream.name}: {e.strerror or e}; {where}") from e
            if batch is None:
                break
            batch_no += 1
            first_line = batch.first_line
            if batch.bad and not dry_run:
                raise click.ClickException(
                    f"{reports.printable(str(batch.bad[0]))}; "
                    f"{_committed(batch_no, first_line, lines)}. Correct it and run the same "
                    "command again: lines written before count nothing twice"
                )
            for line in batch.bad[: max(0, _SHOWN_REFUSALS - refused)]:
                click.echo(f"refused {reports.printable(str(line))}", err=True)
            refused += len(batch.bad)
            if batch.work is None:
                continue
            try:
                with _reported():
                    write(batch.work)
            except click.ClickException as e:
                where = _committed(batch_no, first_line, lines)
                raise click.ClickException(f"{e.message}; {where}") from e
            lines += batch.size
            done += 1
            rate = lines / max(time.monotonic() - started, 1e-6)
            click.echo(
                f"batch {batch_no}: {lines} line(s) {verb} so far, {rate:,.0f} lines/s", err=True
            )
    if refused:
        more = f" (the first {_SHOWN_REFUSALS} shown)" if refused > _SHOWN_REFUSALS else ""
        raise click.ClickException(f"{refused} malformed line(s){more}; nothing written (dry run)")
    return lines, done


def _other_shards(node: Node, skipped: int) -> str:
    """What a replica with a ``content_shard`` left to the others, for the summary."""
    if node.shard is None:
        return ""
    return f"; {skipped} line(s) skipped: other shards' content (this replica holds {node.shard})"


@content.command(name="import")
@click.argument("stream", metavar="FILE", type=click.File("rb"))
@format_option
@batch_option
@click.option(
    "--dry-run",
    is_flag=True,
    help="Check every line and list every malformed one; register and record nothing.",
)
@home_option
def content_import_command(
    stream: BinaryIO,
    fmt: content_import.Format | None,
    batch_size: int,
    dry_run: bool,
    home: Path,
) -> None:
    """Register the hashes of a hosted corpus, read from FILE (- for standard input).

    Each line is registered and matched as POST /v1/content registers one hash: a
    new line counts as checked, and each match is a match event counted as matched,
    in the acks the hub receives; matches are printed as they are found. A line
    registered before (the same content id and hash) counts nothing again, so an
    import that stopped is resumed by running it again. Progress goes to standard
    error after every batch. --dry-run checks every line and writes nothing.

    Lines are matched against the lists as they stood when the import started: a
    hash a running node's update adds meanwhile is found in content imported after
    it only when a later update lists it again, so run a long import between polls
    or run it again afterwards (it counts nothing twice).
    """
    registered = known = found = new = skipped = 0
    indexed: dict[str, int] = {}

    with _open(home) as node:
        node.store.matches.widen_cache(IMPORT_CACHE_MIB)

        shard = node.shard

        def prepare(batch: list[content_import.ContentLine]) -> _Imported:
            # On the reading thread: the rows set out, so that writing them is all
            # SQLite's (the lines were checked as they were read, by the registry's
            # own rules); a video's frames go beside its row.
            mine = content_import.in_shard(batch, shard)
            rows = [(line.content_id, *line.hash) for line in mine if line.hash is not None]
            frames = {
                line.hash[1]: line.frames
                for line in mine
                if line.hash is not None and line.frames is not None
            }
            return ContentRows.of(rows), frames, len(batch) - len(mine)

        def write(work: _Imported) -> None:
            nonlocal registered, known, found, new, skipped
            rows, frames, others = work
            skipped += others
            result = node.registry.register_batch(
                rows, dry_run=dry_run, checked=True, frames=frames
            )
            registered += result.registered
            known += result.known
            found += len(result.matches)
            new += sum(1 for _, m in result.matches if m.recorded and not m.earlier)
            for content_id, m in result.matches:
                click.echo(_match_line(content_id, m))

        verb = "checked" if dry_run else "imported"
        lines, batches = _bulk(
            stream,
            fmt,
            batch_size,
            prepare,
            write,
            hash_optional=False,
            dry_run=dry_run,
            verb=verb,
        )
        others = _other_shards(node, skipped)
        if not dry_run:
            indexed = node.registry.fold_journal()
    if dry_run:
        click.echo(
            f"Checked {lines} line(s) in {batches} batch(es), all well-formed: {registered} "
            f"not registered yet, {known} already registered; {found} match(es){others} "
            "(dry run: nothing written)"
        )
        return
    earlier = "" if new == found else f", {new} new (the rest recorded before)"
    click.echo(
        f"Imported {lines} line(s) in {batches} batch(es): {registered} hash(es) registered, "
        f"{known} already registered; {found} match(es){earlier}{others}"
    )
    for type_name, count in sorted(indexed.items()):
        if count:
            click.echo(f"Content index: {count} distinct {type_name} hash(es) on disk")


@content.command(name="reindex")
@home_option
def content_reindex(home: Path) -> None:
    """Rebuild the content index of every perceptual type from the registry.

    The index (files in the home's content-index directory) follows registrations
    on its own; removed content stays in it, found by nothing, until a rebuild.
    Run this after removing much content, or if the files were lost or damaged (a
    node that cannot read them rebuilds them on its own too).
    """
    with _open(home) as node:
        counts = node.registry.rebuild_indexes()
    for type_name, count in sorted(counts.items()):
        click.echo(f"Content index: {count} distinct {type_name} hash(es) on disk, rebuilt")


@content.command(name="remove")
@click.argument("stream", metavar="FILE", type=click.File("rb"))
@format_option
@batch_option
@home_option
def content_remove(
    stream: BinaryIO, fmt: content_import.Format | None, batch_size: int, home: Path
) -> None:
    """Remove registered content named in FILE (- for standard input).

    A line is a content id alone (every hash registered under it) or content_id,
    hash_type, hash (that one hash), as CSV or NDJSON. Removed content is no longer
    matched when a list grows; its match events stay.
    """
    removed = missing = skipped = 0

    with _open(home) as node:
        shard = node.shard

        def prepare(batch: list[content_import.ContentLine]) -> tuple[list[_Removal], int]:
            mine = content_import.in_shard(batch, shard)
            return [(line.content_id, line.hash) for line in mine], len(batch) - len(mine)

        def write(work: tuple[list[_Removal], int]) -> None:
            nonlocal removed, missing, skipped
            items, others = work
            skipped += others
            counts = node.registry.remove(items)
            removed += sum(counts)
            missing += counts.count(0)

        lines, batches = _bulk(
            stream,
            fmt,
            batch_size,
            prepare,
            write,
            hash_optional=True,
            dry_run=False,
            verb="removed",
        )
        others = _other_shards(node, skipped)
    click.echo(
        f"Removed {removed} registered hash(es) named by {lines} line(s) in {batches} "
        f"batch(es); {missing} line(s) named nothing registered{others}"
    )


# -- reviewing matches and rejections ---------------------------------------------------


@main.command()
@click.argument("match_id", metavar="MATCH_ID")
@click.argument("outcome_name", metavar="|".join(OUTCOMES))
@click.option(
    "--reason",
    type=click.Choice(DISPUTE_REASONS),
    help="Why a false_positive was one: not_the_content, benign or other (default other).",
)
@json_option
@home_option
def outcome(
    match_id: str, outcome_name: str, reason: str | None, as_json: bool, home: Path
) -> None:
    """Record what a reviewer did about a match: blocked, actioned, false_positive or kept.

    The rules of POST /v1/matches/{id}/outcome: once per match; the same outcome
    again changes nothing. For a match of an entries list the outcome is also the
    platform's position on the entry, which the next ack carries, signed: actioned
    and blocked confirm it, false_positive disputes it (with --reason). Exit status:
    0 recorded (or already the same), 1 no such match or no such outcome, 5 the
    match already has another outcome.
    """
    with _open(home) as node:
        try:
            recorded = node.matching.record_outcome(match_id, outcome_name, reason)
        except OutcomeConflictError as e:
            click.echo(f"Error: {e}", err=True)
            sys.exit(EXIT_CONFLICT)
    if as_json:
        _echo_json(recorded)
        return
    if recorded["duplicate"]:
        click.echo(f"match {match_id} already has outcome {outcome_name}; nothing changed")
        return
    counts = "counts toward nothing" if outcome_name == "kept" else f"counted as {outcome_name}"
    click.echo(f"Recorded match {match_id} as {outcome_name} ({counts} in the next ack)")


@main.command()
@click.option("--all", "show_all", is_flag=True, help="Every match event, with its outcome.")
@click.option(
    "--limit",
    type=click.IntRange(1, MAX_LIMIT),
    default=50,
    show_default=True,
    help="Show at most this many, newest first.",
)
@json_option
@home_option
def matches(show_all: bool, limit: int, as_json: bool, home: Path) -> None:
    """Match events awaiting an outcome, newest first (--all: every event).

    Only reads: record an outcome with 'hashhub-node outcome MATCH_ID OUTCOME'.
    """
    with _open(home) as node:
        events = reports.match_events(node.store, limit, open_only=not show_all)
        total = node.store.matches.event_count()
        waiting = node.store.matches.awaiting_outcome()
    if as_json:
        _echo_json({"matches": events, "awaiting_outcome": waiting, "total": total})
        return
    if events:
        headers = ["MATCH ID", "WHEN", "LIST", "TYPE", "DISTANCE", "SOURCE", "CONTENT ID"]
        rows: list[list[object]] = [
            [
                e["match_id"],
                e["created"],
                shown_list(e["hub"], e["list"]),
                e["hash_type"],
                _closeness(e),
                e["source"],
                None if e["content_id"] is None else reports.printable(e["content_id"]),
            ]
            for e in events
        ]
        if show_all:
            headers.append("OUTCOME")
            for row, e in zip(rows, events, strict=True):
                row.append(e["outcome"])
        click.echo(_table(headers, rows))
    shown = f"showing {len(events)}"
    if show_all:
        click.echo(f"{total} match event(s), {waiting} awaiting an outcome; {shown}")
    else:
        click.echo(f"{waiting} match event(s) awaiting an outcome; {shown}")


def _closeness(event: dict[str, Any]) -> object:
    """A match event's distance, or a video's shares: a video agrees by its frames,
    and its distance says nothing."""
    return shares_text(event.get("video")) or event["distance"]


@main.command()
@json_option
@home_option
def evidence(as_json: bool, home: Path) -> None:
    """What the node rejected, why, when and from where, newest first; and failed updates.

    Evidence is kept for every rejected update (its bytes too, where there are
    some), a mirror's bytes that failed verification, acks the hub refused and a
    stored list found damaged. Only reads.
    """
    with _open(home) as node:
        kept = reports.evidence(node.store)
        failed = reports.failures([hub.store for hub in node.hubs.values()])
    if as_json:
        _echo_json({"evidence": kept, "failures": failed})
        return
    for e in kept:
        click.echo(
            f"#{e['id']}  {e['created']}  {reports.printable(shown_list(e['hub'], e['list']))}  "
            f"{e['kind']}  "
            f"from {e['source']}: {reports.printable(e['message'])}"
            + ("  [bytes kept]" if e["bytes_kept"] else "")
        )
    click.echo(f"{len(kept)} evidence row(s)")
    for f in failed:
        click.echo(
            f"{reports.printable(shown_list(f['hub'], f['list']))}: last update attempt "
            f"{f['last_attempt']} failed "
            f"(last success {f['last_success'] or '-'}): {reports.printable(f['error'])}"
        )


@main.command()
@home_option
def verify(home: Path) -> None:
    """Recompute every stored list's digest against its trust record (exit 1 on a mismatch)."""
    results = []
    missing = []
    with _open(home) as node:
        for hub in node.hubs.values():
            with _reported():
                checked = hub.store.verify()
            stored = {list_id for list_id, *_ in checked}
            results += [(shown_list(hub.name, r[0]), *r[1:]) for r in checked]
            missing += [shown_list(hub.name, i) for i in hub.settings.lists if i not in stored]
    bad = 0
    for list_id, ok, actual, trusted in results:
        if ok:
            click.echo(f"{list_id}: ok ({actual.count} hashes, sha256 {actual.sha256})")
        else:
            bad += 1
            click.echo(
                f"{list_id}: MISMATCH: the stored state has {actual.count} hashes, "
                f"sha256 {actual.sha256}; the trust record says {trusted.count}, "
                f"{trusted.sha256}"
            )
    for list_id in missing:
        click.echo(f"{list_id}: not applied yet")
    if bad:
        raise click.ClickException(
            f"{bad} list(s) differ from their trust record: the local store is corrupt; "
            "restore it or start a new home and sync from the snapshot"
        )


@main.group()
def acks() -> None:
    """The outbox of signed acks to the hub."""


@acks.command(name="flush")
@click.option(
    "--sign", is_flag=True, help="First sign a fresh ack per list with the current counters."
)
@hub_option
@home_option
def acks_flush(sign: bool, hub_name: str | None, home: Path) -> None:
    """Send every due ack now, each to its hub (--hub NAME: that hub's only; exit 4 if one
    could not be delivered)."""

    reasons: list[str] = []

    async def flush(node: Node, hubs: Sequence[str]) -> tuple[int, int]:
        confirmed = failed = 0
        async with _session(node) as session:
            for name in hubs:
                done, not_done = await flush_acks(node, session, hub=name, reasons=reasons)
                confirmed, failed = confirmed + done, failed + not_done
        return confirmed, failed

    with _open(home) as node:
        with _reported():
            chosen = [node.hub(hub_name)] if hub_name is not None else list(node.hubs.values())
        if not all(hub.token for hub in chosen):
            raise click.ClickException("no hub token yet: run 'hashhub-node token set TOKEN'")
        with _reported():
            signed = [seq for hub in chosen for seq in (hub.acks.enqueue() if sign else [])]
            confirmed, failed = asyncio.run(flush(node, [hub.name for hub in chosen]))
            pending = sum(hub.acks.store.acks.pending() for hub in chosen)
    if signed:
        click.echo(f"signed {len(signed)} ack(s) (seq {', '.join(map(str, signed))})")
    click.echo(f"acks: {confirmed} confirmed, {failed} failed, {pending} pending")
    for reason in reasons:  # what the hub said, as ``sync`` prints it
        click.echo(f"  ack {reports.printable(reason)}")
    if failed:
        sys.exit(EXIT_FAILED)


# -- contributions ------------------------------------------------------------------------


def _contributions(node: Node, hub_name: str | None) -> Contributions:
    """The contributions to one hub (None: the only one), numbered in its ``seq`` space."""
    with _reported():
        hub = node.hub(hub_name)
    if not hub.token:
        raise click.ClickException("no hub token yet: run 'hashhub-node token set TOKEN'")
    return Contributions(hub.store, node.key, hub.settings.node_id, hub.settings.url, hub.token)


def _contributed_hashes(
    file: Path | None, hash_texts: Sequence[str], quality: int | None
) -> dict[str, tuple[bytes, int | None]]:
    """The item's hashes: hashed here from ``file`` (a picture's, else its bytes'),
    or as given (``TYPE:HEX``; ``quality`` for a type that has one)."""
    if (file is None) == (not hash_texts):
        raise click.UsageError("give FILE or one or more --hash TYPE:HEX, not both")
    if file is not None:
        data = file.read_bytes()
        try:
            pictured = hash_image(data)
        except ImageRejected:
            return {t: (h, None) for t, h in file_hashes(data).items()}
        return {t: (h, pictured.qualities.get(t)) for t, h in pictured.hashes.items()}
    out: dict[str, tuple[bytes, int | None]] = {}
    for text in hash_texts:
        type_name, _, digits = text.partition(":")
        kind = HASH_TYPES.get(type_name)
        if kind is None or type_name in out:
            raise click.UsageError(f"--hash {text[:80]!r}: a hash type given once, TYPE:HEX")
        try:
            value = bytes.fromhex(digits)
        except ValueError:
            raise click.UsageError(f"--hash {text[:80]!r}: not hex digits") from None
        out[type_name] = (value, quality if kind.min_quality is not None else None)
    return out


@main.command()
@click.argument(
    "file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--hash", "hash_texts", multiple=True, metavar="TYPE:HEX", help="A hash of the item.")
@click.option(
    "--quality", type=click.IntRange(0, 100), default=None, help="PDQ's quality, with --hash pdq:…"
)
@click.option("--category", required=True, help="A category of the hub's vocabulary.")
@click.option("--classification", required=True, help="A classification of its vocabulary.")
@click.option(
    "--reviewed-by",
    "by",
    type=click.Choice(REVIEWERS),
    required=True,
    help="Who judged the item here.",
)
@click.option(
    "--action",
    type=click.Choice(REVIEW_ACTIONS),
    required=True,
    help="What the platform did about it.",
)
@hub_option
@home_option
def contribute(
    file: Path | None,
    hash_texts: tuple[str, ...],
    quality: int | None,
    category: str,
    classification: str,
    by: str,
    action: str,
    hub_name: str | None,
    home: Path,
) -> None:
    """Offer the hub an item your reviewers confirmed, as a signed candidate entry: its
    hashes (FILE is hashed here; only the hashes leave), never the content. Exit 4 if
    the hub could not be reached (it is kept, and 'contribution send' tries again)."""
    hashes = _contributed_hashes(file, hash_texts, quality)
    with _open(home) as node:
        contributions = _contributions(node, hub_name)
        with _reported():
            seq = contributions.make(
                hashes,
                category=category,
                classification=classification,
                by=by,
                action=action,
                now=node.now(),
            )

        async def send() -> list[Delivery]:
            async with _session(node) as session:
                return await contributions.send(session, node.now())

        done = asyncio.run(send())
    click.echo(f"contribution {seq} signed ({', '.join(sorted(hashes))})")
    _echo_deliveries(done)


def _echo_deliveries(done: Sequence[Delivery]) -> None:
    for d in done:
        click.echo(f"  contribution {d.seq}: {d.state} — {reports.printable(d.answer)}")
    if any(d.state == "pending" for d in done):
        sys.exit(EXIT_FAILED)


@main.group()
def contribution() -> None:
    """The contributions this node signed, and what the hub said of them."""


@contribution.command(name="list")
@json_option
@hub_option
@home_option
def contribution_list(as_json: bool, hub_name: str | None, home: Path) -> None:
    """Every contribution signed here for a hub: its seq, when, and the hub's answer."""
    with _open(home) as node, _reported():
        rows = node.hub(hub_name).store.contributions.listed()
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        click.echo("No contribution yet.")
        return
    for r in rows:
        click.echo(
            f"{r['seq']}  {r['made']}  {r['state']}  {reports.printable(r['answer'] or '-')}"
        )


@contribution.command(name="send")
@hub_option
@home_option
def contribution_send(hub_name: str | None, home: Path) -> None:
    """Send every contribution not answered yet (exit 4 if one still is not)."""
    with _open(home) as node:
        contributions = _contributions(node, hub_name)

        async def send() -> list[Delivery]:
            async with _session(node) as session:
                return await contributions.send(session, node.now())

        done = asyncio.run(send())
    if not done:
        click.echo("Nothing to send.")
    _echo_deliveries(done)


@contribution.command(name="status")
@click.argument("seq", type=click.IntRange(min=1))
@json_option
@hub_option
@home_option
def contribution_status(seq: int, as_json: bool, hub_name: str | None, home: Path) -> None:
    """What the hub decided of contribution SEQ: received, accepted (and the entry it
    became) or rejected."""
    with _open(home) as node:
        contributions = _contributions(node, hub_name)

        async def ask() -> dict[str, object]:
            async with _session(node) as session:
                return await contributions.status(session, seq)

        with _reported():
            answer = asyncio.run(ask())
    if as_json:
        _echo_json(answer)
        return
    entry = answer.get("entry")
    click.echo(
        f"contribution {seq}: {answer.get('status')}"
        + (f", entry {entry}" if entry else "")
        + (f", decided {answer['decided']}" if answer.get("decided") else "")
    )


# -- the platform's own policy ------------------------------------------------------------


@main.group()
def policy() -> None:
    """The platform's own decisions on top of the lists: allowlist, disables, stricter
    distances, quarantine holds (node.policy). Each holds at once, in a running daemon too."""


hash_target_option = click.option(
    "--hash", "hash_text", metavar="TYPE:HEX", help="A listed hash: its type and hex digits."
)
entry_target_option = click.option(
    "--entry", "entry_id", metavar="ID", help="An entry id of a list of entries."
)
by_option = click.option("--by", required=True, help="Who decided (a reviewer's name).")
why_option = click.option(
    "--why", required=True, help=f"Why, for whoever reads it later (at most {MAX_WHY} characters)."
)


def _target(hash_text: str | None, entry_id: str | None) -> Target:
    """The one target given (``--hash`` or ``--entry``), checked."""
    if (hash_text is None) == (entry_id is None):
        raise click.UsageError("give one of --hash TYPE:HEX or --entry ID")
    with _reported():
        return (
            Target.of_hash(hash_text) if hash_text is not None else Target.of_entry(entry_id or "")
        )


@policy.command(name="allow")
@hash_target_option
@entry_target_option
@by_option
@why_option
@home_option
def policy_allow(
    hash_text: str | None, entry_id: str | None, by: str, why: str, home: Path
) -> None:
    """Exempt a hash or an entry: its matches are answered "allowed", recorded as kept."""
    target = _target(hash_text, entry_id)
    with _open(home) as node, _reported():
        node.matching.policy.allow(target, by, why)
    click.echo(f"allowed {target.key}")


@policy.command(name="unallow")
@hash_target_option
@entry_target_option
@home_option
def policy_unallow(hash_text: str | None, entry_id: str | None, home: Path) -> None:
    """Take a hash or an entry off the allowlist: its matches block again."""
    target = _target(hash_text, entry_id)
    with _open(home) as node, _reported():
        node.matching.policy.unallow(target)
    click.echo(f"no longer allowed {target.key}")


@policy.command(name="disable")
@entry_target_option
@click.option(
    "--until", required=True, metavar="TIME", help="When it blocks again: YYYY-MM-DDTHH:MM:SSZ."
)
@by_option
@why_option
@home_option
def policy_disable(entry_id: str | None, until: str, by: str, why: str, home: Path) -> None:
    """Disable an entry until a time: its matches are answered "disabled", then block again."""
    target = _target(None, entry_id) if entry_id is not None else None
    if target is None:
        raise click.UsageError("give --entry ID")
    with _open(home) as node, _reported():
        end = node.matching.policy.disable(target, until, by, why)
    click.echo(f"disabled {target.key} until {format_time(end)}")


@policy.command(name="enable")
@entry_target_option
@home_option
def policy_enable(entry_id: str | None, home: Path) -> None:
    """End an entry's disable before its time."""
    if entry_id is None:
        raise click.UsageError("give --entry ID")
    target = _target(None, entry_id)
    with _open(home) as node, _reported():
        node.matching.policy.enable(target)
    click.echo(f"enabled {target.key}")


@policy.command(name="distance")
@click.argument("list_id", metavar="LIST")
@click.argument("max_distance", metavar="N", type=int, required=False)
@click.option("--by", help="Who decided (a reviewer's name); needed with N.")
@click.option("--reset", is_flag=True, help="Go back to the list's signed max_distance.")
@hub_option
@home_option
def policy_distance(
    list_id: str,
    max_distance: int | None,
    by: str | None,
    reset: bool,
    hub_name: str | None,
    home: Path,
) -> None:
    """Match LIST (of --hub NAME) at most at distance N: stricter only, never above its
    signed max_distance."""
    if reset == (max_distance is not None):
        raise click.UsageError("give N (with --by) or --reset")
    with _open(home) as node, _reported():
        hub = node.hub(hub_name)
        shown = shown_list(hub.name, list_id)
        if max_distance is None:
            hub.matching.policy.reset_distance(list_id)
            click.echo(f"{shown}: the signed max_distance applies")
            return
        if by is None:
            raise click.UsageError("give --by WHO with N")
        hub.matching.policy.set_distance(list_id, max_distance, by)
    click.echo(f"{shown}: max_distance {max_distance}")


@policy.command(name="release")
@hash_target_option
@entry_target_option
@by_option
@home_option
def policy_release(hash_text: str | None, entry_id: str | None, by: str, home: Path) -> None:
    """End a quarantine hold: the hash or entry blocks again (the hour counts from now)."""
    target = _target(hash_text, entry_id)
    with _open(home) as node, _reported():
        released = node.matching.policy.release(target, by)
    click.echo(f"released {released} hold(s) of {target.key}")


@policy.command(name="confirm")
@hash_target_option
@entry_target_option
@by_option
@why_option
@home_option
def policy_confirm(
    hash_text: str | None, entry_id: str | None, by: str, why: str, home: Path
) -> None:
    """Confirm a quarantine hold: the hash or entry goes on the allowlist, the hold ends."""
    target = _target(hash_text, entry_id)
    with _open(home) as node, _reported():
        released = node.matching.policy.confirm(target, by, why)
    click.echo(f"confirmed {released} hold(s) of {target.key}: allowed")


@policy.command(name="disputed")
@click.argument("choice", metavar="hold|block", type=click.Choice(DISPUTED_CHOICES))
@click.option("--by", help="Who decided (a reviewer's name).")
@home_option
def policy_disputed(choice: str, by: str | None, home: Path) -> None:
    """Hold or block (the default) matches of entries whose dispute is open: held ones
    are answered "held" (reason disputed), recorded as kept."""
    with _open(home) as node, _reported():
        node.matching.policy.set_disputed(choice, by)
    click.echo(f"disputed entries: {choice}")


@policy.command(name="show")
@json_option
@home_option
def policy_show(as_json: bool, home: Path) -> None:
    """The allowlist, disables, distances, holds, the quarantine rule and the counters."""
    with _open(home) as node, _reported():
        shown = node.matching.policy.show()
    if as_json:
        _echo_json(shown)
        return
    p = reports.printable
    for row in shown["allowlist"]:
        click.echo(f"allowed  {row['target']}  by {p(row['by'])} at {row['at']}: {p(row['why'])}")
    for row in shown["disabled"]:
        state = "until" if row["in_force"] else "ended"
        click.echo(
            f"disabled {row['target']}  {state} {row['until']}  by {p(row['by'])} "
            f"at {row['at']}: {p(row['why'])}"
        )
    for row in shown["distances"]:
        click.echo(
            f"distance {shown_list(row['hub'], row['list'])} {row['max_distance']}  "
            f"by {p(row['by'])} at {row['at']}"
        )
    for row in shown["holds"]:
        state = (
            f"released {row['released_at']} by {p(row['released_by'])}"
            if row["released_at"]
            else "HELD"
        )
        click.echo(
            f"hold     {shown_list(row['hub'], row['list'])} {row['hash']}  "
            f"entry {row['entry'] or '-'}  since "
            f"{row['held_at']} ({row['last_hour']} in an hour)  {state}"
        )
    rule = shown["quarantine"]
    click.echo(
        f"quarantine: more than {rule['matches_per_hour']} matches in an hour and more than "
        f"{rule['factor']} times the week's hourly average"
    )
    chosen = shown["disputed"]
    since = f"  by {p(chosen['by'] or '-')} at {chosen['at']}" if chosen["at"] else ""
    click.echo(f"disputed entries: {chosen['choice']}{since}")
    counted = shown["counters"]
    click.echo("decisions: " + ", ".join(f"{d} {counted[d]}" for d in DECISIONS))


main.add_command(hub_group)
