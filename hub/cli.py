"""``hashhub``: the operator's command line, a thin layer over ``hub.core.Hub``.

Every command parses its arguments, opens the hub in ``--home`` (or
``HASHHUB_HOME``), calls one ``Hub`` method and prints the result; the rules live
in ``hub.core``. A mistake by the operator (an unknown list, a malformed hash, a
key file others can read, a second ``init``) is a ``click.ClickException``: one
line on standard error and exit status 1, never a traceback. Usage errors
(a missing argument, an unknown option) exit with 2, as in every click program.

Secrets are printed once and stored only as hashes: the admin token from
``init``, node tokens from ``node enrol``, operator tokens from ``token create``.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import fields
from pathlib import Path
from typing import Any

import aiohttp
import click
from click.core import ParameterSource

from edge import cli as edge_cli
from hub import store as hub_store
from hub.cli_exchanges import exchange as exchange_group
from hub.cli_plumbing import home_option, open_hub
from hub.config import CONFIG_NAME, HubConfig
from hub.core import OPERATOR_ROLES, Hub
from hub.errors import HubError, IntakeError
from hub.following import FollowReport, follow_upstreams, in_place
from hub.intake import make_intake, parse_hash, parse_import
from hub.services.access import NodeRecord
from hub.services.cases import CASE_STATUSES
from hub.services.contributions import CONTRIBUTION_STATUSES
from hub.services.disputes import DISPUTE_STATES, DisputeRecord
from hub.services.entries import (
    RETRACT_REASONS,
    VOCABULARY_GROUPS,
    EntryDraft,
    EntryView,
    parse_entry_lines,
)
from hub.services.ledger import FlaggedHash
from hub.services.reports import ListStatus, PlatformStatus
from protocol import HASH_TYPES, ProtocolError, Vocabulary
from protocol.entries import LIST_FORMATS
from protocol.keyfile import load_public_key
from protocol.root import ROLE_NAMES
from protocol.video import MAX_FRAMES_BYTES

__all__ = ["main"]

_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(HubConfig)}
_TYPES = "|".join(sorted(HASH_TYPES))
# The help below is the registry's (protocol.hashtypes); RootChanges.create_list and the intake
# check a type against the registry itself, so a type registered later is taken too.
_DISTANCES = ", ".join(
    f"{k.name} default {k.default_max_distance}" for k in HASH_TYPES.values() if k.perceptual
)
_FLOORS = ", ".join(
    f"{k.label} below {k.min_quality}" for k in HASH_TYPES.values() if k.min_quality is not None
)
_BASE_URL = re.compile(r"https?://[A-Za-z0-9._~%@:\[\]-]+(/[A-Za-z0-9._~%@:+=,/-]*)?")
"""A hub's base URL as ``node enrol`` prints it: http(s), a host, a path; nothing a shell splits."""


# -- plumbing ---------------------------------------------------------------------------


def _reported() -> AbstractContextManager[None]:
    """Turn the hub's, the protocol's and the file system's errors into one-line messages."""
    return edge_cli.reported(busy_timeout=hub_store.BUSY_TIMEOUT)


_open = open_hub
_who = edge_cli.shell_user


json_option = edge_cli.json_option
_echo_json = edge_cli.echo_json
_table = edge_cli.table


def _yes(flag: object) -> str:
    return "yes" if flag else "no"


# -- the command group ------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hashhub", prog_name="hashhub")
def main() -> None:
    """Run a hashhub clearinghouse: lists, publishing, nodes, keys.

    Every command works on the hub in --home DIR (or $HASHHUB_HOME); 'init'
    creates it there.
    """


def _init_folder(ctx: click.Context, folder: Path | None, home: Path | None) -> Path:
    """The folder ``init`` creates the hub in: ``DIR`` or ``--home DIR``, said once.

    ``--home`` is how every other command (and ``hashhub-node init``) names the
    home, ``DIR`` how ``init`` always has; either works. Both on one command line
    is refused rather than one silently preferred, since they may name different
    folders. ``HASHHUB_HOME`` fills ``--home`` only when no ``DIR`` is given, as it
    filled ``DIR`` before.
    """
    typed_home = ctx.get_parameter_source("home") is ParameterSource.COMMANDLINE
    if folder is not None and home is not None and typed_home:
        raise click.ClickException(
            f"give the hub's folder once: 'hashhub init {folder}' or "
            f"'hashhub init --home {home}', not both"
        )
    chosen = folder if folder is not None else home
    if chosen is None:
        raise click.UsageError(
            "name the hub's folder: 'hashhub init --home DIR' (or DIR, or set HASHHUB_HOME)",
            ctx,
        )
    return chosen


@main.command()
@click.argument(
    "folder",
    metavar="[DIR]",
    required=False,
    type=click.Path(file_okay=False, path_type=Path),
)
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="HASHHUB_HOME",
    show_envvar=True,
    help="The folder to create the hub in (made if missing; it must not hold a hub). "
    "The same as DIR: give one of them.",
)
@click.option(
    "--name",
    required=True,
    help="The hub's name, prefix of every checkpoint origin (e.g. hashes.example.org). "
    "Fixed for the hub's life.",
)
@click.option(
    "--root-keys",
    type=click.IntRange(1, 32),
    default=3,
    show_default=True,
    help="How many root keys to make (at most 32: a root holds at most 64 keys, and "
    "rotating the root role puts the old and the new keys in one signature sidecar).",
)
@click.option(
    "--root-threshold",
    type=click.IntRange(1, 32),
    default=2,
    show_default=True,
    help="How many root keys must sign each new root version.",
)
@click.option(
    "--host",
    default=_DEFAULTS["host"],
    show_default=True,
    help="The address 'hashhub serve' listens on unless given its own --host (host in hub.toml).",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=_DEFAULTS["port"],
    show_default=True,
    help="The port 'hashhub serve' listens on unless given its own --port (port in hub.toml).",
)
@click.option(
    "--publish-interval",
    type=click.IntRange(min=0),
    default=_DEFAULTS["publish_interval"],
    show_default=True,
    help="Seconds between scheduled publishes while serving (0: only on demand).",
)
@click.option(
    "--timestamp-interval",
    type=click.IntRange(min=0),
    default=_DEFAULTS["timestamp_interval"],
    show_default=True,
    help="Seconds between re-issued checkpoint co-signatures while serving (0: off).",
)
@click.option(
    "--snapshot-every",
    type=click.IntRange(min=1),
    default=_DEFAULTS["snapshot_every"],
    show_default=True,
    help="Default snapshot interval (in versions) for new lists.",
)
@click.option(
    "--vocabulary",
    "vocabulary_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help='A JSON file of the terms entries may use ({"categories": [...], '
    '"classifications": [...] least severe first, "sources": [...]}); '
    "default: categories ncii, csam, terrorism; classifications unconfirmed, "
    "confirmed, severe; sources submission, import, member, hub.",
)
@click.pass_context
def init(
    ctx: click.Context,
    folder: Path | None,
    home: Path | None,
    name: str,
    root_keys: int,
    root_threshold: int,
    host: str,
    port: int,
    publish_interval: int,
    timestamp_interval: int,
    snapshot_every: int,
    vocabulary_file: Path | None,
) -> None:
    """Create a hub in --home DIR (or DIR).

    Writes the configuration, a key for every role (root: several, with a
    threshold), signs root v1 and prints its SHA-256 and an admin token.
    """
    home = _init_folder(ctx, folder, home)
    with _reported():
        extra: dict[str, Any] = {}
        if vocabulary_file is not None:
            extra["vocabulary"] = _vocabulary_file(vocabulary_file)
        hub = Hub.init(
            home,
            name,
            **extra,
            root_keys=root_keys,
            root_threshold=root_threshold,
            host=host,
            port=port,
            publish_interval=publish_interval,
            timestamp_interval=timestamp_interval,
            snapshot_every=snapshot_every,
        )
        try:
            token = hub.access.create_operator_token("admin", "admin", who=_who())
            sha = hub.keys.root_sha256(1)
            per_role: dict[str, int] = {}
            keys = hub.keys.records()
            for key in keys:
                per_role[key.role] = per_role.get(key.role, 0) + 1
            database = home / hub.config.database
        finally:
            hub.close()
    click.echo(f"Created hub {name!r} in {home}")
    click.echo(f"  configuration  {home / CONFIG_NAME}")
    click.echo(f"  database       {database}")
    click.echo(f"  private keys   {home / 'keys'}  (each file mode 0600; never in the database)")
    click.echo(
        f"                 root: {per_role.get('root', 0)} keys, threshold {root_threshold}"
        " (sign new root versions only; keep them offline)"
    )
    online = ", ".join(f"{r} {per_role.get(r, 0)}" for r in ROLE_NAMES if r != "root")
    click.echo(f"                 online: {online} (used by publish and serve)")
    click.echo("Root v1 SHA-256 (every node pins this at enrolment):")
    click.echo(f"  {sha}")
    click.echo("Admin token (shown once, stored only as a hash):")
    click.echo(f"  {token}")


def _vocabulary_file(path: Path) -> Vocabulary:
    """The vocabulary in a JSON file, or a one-line error naming the file."""
    try:
        return Vocabulary.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (UnicodeDecodeError, ValueError, ProtocolError) as e:
        raise click.ClickException(f"{path}: not a vocabulary: {e}") from e


# -- lists ------------------------------------------------------------------------------


@main.group(name="list")
def list_group() -> None:
    """Create and inspect lists."""


@list_group.command(name="create")
@click.argument("list_id", metavar="ID")
@click.option("--type", "hash_type", required=True, help=f"Hash type: {_TYPES}.")
@click.option(
    "--max-distance",
    type=int,
    default=None,
    help=f"Hamming distance that counts as a match ({_DISTANCES}; exact types 0).",
)
@click.option("--label", default="", help="A collection label shared by related lists.")
@click.option("--snapshot-every", type=int, default=None, help="Write a snapshot every N versions.")
@click.option("--public", is_flag=True, help="Anyone may read it (otherwise: granted nodes).")
@click.option(
    "--format",
    "list_format",
    type=click.Choice(LIST_FORMATS),
    default="hashes",
    show_default=True,
    help="hashes: bare hashes; entries: entry records with metadata from the vocabulary.",
)
@home_option
def list_create(
    list_id: str,
    hash_type: str,
    max_distance: int | None,
    label: str,
    snapshot_every: int | None,
    public: bool,
    list_format: str,
    home: Path,
) -> None:
    """Declare list ID in a new root version."""
    with _open(home) as hub:
        root = hub.roots.create_list(
            list_id,
            hash_type,
            max_distance=max_distance,
            label=label,
            snapshot_every=snapshot_every,
            public=public,
            list_format=list_format,
            who=_who(),
        )
    spec = root.lists[list_id]
    kind = f"{spec.hash_type} entries" if spec.entries else spec.hash_type
    click.echo(
        f"Created list {list_id}: {kind}, max distance {spec.max_distance}, "
        f"snapshot every {spec.snapshot_every} versions, "
        f"{'public' if public else 'readable by granted nodes'}; declared in root v{root.version}."
    )


@list_group.command(name="show")
@click.argument("list_id", metavar="[ID]", required=False)
@json_option
@home_option
def list_show(list_id: str | None, as_json: bool, home: Path) -> None:
    """Show one list, or a summary of all."""
    with _open(home) as hub:
        if list_id is not None:
            detail = hub.lists.summary(list_id).to_dict()
        else:
            summaries = hub.lists.summaries()
    if list_id is None:
        if as_json:
            _echo_json([s.to_dict() for s in summaries])
        elif not summaries:
            click.echo("No lists yet; create one with 'hashhub list create'.")
        else:
            click.echo(
                _table(
                    ["LIST", "TYPE", "VERSION", "COUNT", "STAGED", "PUBLIC", "LABEL"],
                    (
                        [s.id, s.hash_type, s.version, s.count, s.staged, _yes(s.public), s.label]
                        for s in summaries
                    ),
                )
            )
        return
    if as_json:
        _echo_json(detail)
        return
    width = max(len(k) for k in detail)
    for key, value in detail.items():
        shown = _yes(value) if isinstance(value, bool) else value
        click.echo(f"{key.replace('_', ' '):<{width}}  {shown}")


# -- the vocabulary and entries ---------------------------------------------------------


@main.group(name="upstream")
def upstream_group() -> None:
    """Declare the hubs this hub re-publishes entries from (the root's upstreams), follow
    them and choose what to re-publish."""


@upstream_group.command(name="add")
@click.argument("name", metavar="NAME")
@click.argument("url", metavar="URL")
@click.option(
    "--root-sha256",
    required=True,
    help="The SHA-256 of the upstream's root v1, as its operator hands it out.",
)
@home_option
def upstream_add(name: str, url: str, root_sha256: str, home: Path) -> None:
    """Declare the upstream hub NAME, published at URL, in a new root version (or
    change its URL or pin)."""
    with _open(home) as hub:
        root = hub.roots.declare_upstream(name, url, root_sha256, who=_who())
    click.echo(f"Declared upstream {name} ({root.upstreams[name].url}) in root v{root.version}.")


@upstream_group.command(name="remove")
@click.argument("name", metavar="NAME")
@home_option
def upstream_remove(name: str, home: Path) -> None:
    """Stop declaring the upstream hub NAME, in a new root version."""
    with _open(home) as hub:
        root = hub.roots.drop_upstream(name, who=_who())
    click.echo(f"Upstream {name} is no longer declared, from root v{root.version} on.")


@upstream_group.command(name="list")
@json_option
@home_option
def upstream_list(as_json: bool, home: Path) -> None:
    """The upstream hubs the newest root declares."""
    with _open(home) as hub:
        root = hub.keys.root()
    if as_json:
        _echo_json({name: up.to_dict() for name, up in sorted(root.upstreams.items())})
        return
    if not root.upstreams:
        click.echo(f"Root v{root.version} declares no upstream.")
        return
    for name, up in sorted(root.upstreams.items()):
        click.echo(f"{name}  {up.url}  root {up.root_sha256}")


@upstream_group.command(name="follow")
@click.argument("name", metavar="NAME")
@click.option(
    "--node-id",
    required=True,
    help="The node id the upstream's operator enrols this hub under.",
)
@click.option(
    "--list",
    "lists",
    multiple=True,
    required=True,
    metavar="ID",
    help="An upstream list to follow (repeat for several).",
)
@home_option
def upstream_follow(name: str, node_id: str, lists: tuple[str, ...], home: Path) -> None:
    """Follow the declared upstream NAME as its node NODE_ID: makes this hub's node key
    for it (once) and prints the public key its operator enrols."""
    with _open(home) as hub:
        public = hub.upstreams.follow(name, node_id, list(lists), who=_who())
    click.echo(f"Following {name} as node {node_id} for {', '.join(sorted(lists))}.")
    click.echo(f"Its operator enrols this hub's key: {public}")
    click.echo(
        f"  hashhub node enrol {node_id} --public-key node.pub --lists {','.join(sorted(lists))}"
    )
    click.echo(f"then: hashhub upstream token {name} FILE (the token they send back).")


@upstream_group.command(name="token")
@click.argument("name", metavar="NAME")
@click.argument("path", metavar="FILE")
@home_option
def upstream_token(name: str, path: str, home: Path) -> None:
    """Keep the token the upstream NAME enrolled this hub with ('-' reads stdin)."""
    token = sys.stdin.read() if path == "-" else Path(path).read_text("utf-8", "replace")
    with _open(home) as hub:
        hub.upstreams.set_token(name, token, who=_who())
    click.echo(f"Kept the token for upstream {name}.")


@upstream_group.command(name="unfollow")
@click.argument("name", metavar="NAME")
@home_option
def upstream_unfollow(name: str, home: Path) -> None:
    """Stop following NAME (its selections go; entries already carried over stay)."""
    with _open(home) as hub:
        hub.upstreams.unfollow(name, who=_who())
    click.echo(f"No longer following {name}.")


@upstream_group.command(name="select")
@click.argument("name", metavar="NAME")
@click.option("--from", "upstream_list", required=True, metavar="ID", help="The upstream list.")
@click.option("--into", "list_id", required=True, metavar="ID", help="This hub's entries list.")
@click.option(
    "--category", "categories", multiple=True, metavar="TERM", help="Take only these (repeat)."
)
@click.option(
    "--classification",
    "classifications",
    multiple=True,
    metavar="TERM",
    help="Take only these (repeat).",
)
@home_option
def upstream_select(
    name: str,
    upstream_list: str,
    list_id: str,
    categories: tuple[str, ...],
    classifications: tuple[str, ...],
    home: Path,
) -> None:
    """Re-publish the entries of NAME's list --from into this hub's list --into."""
    with _open(home) as hub:
        selection = hub.upstreams.select(
            name, upstream_list, list_id, categories, classifications, who=_who()
        )
    what = ", ".join(selection["categories"] + selection["classifications"]) or "every entry"
    click.echo(f"Re-publishing {name}/{upstream_list} into {list_id}: {what}.")


@upstream_group.command(name="unselect")
@click.argument("name", metavar="NAME")
@click.option("--from", "upstream_list", required=True, metavar="ID", help="The upstream list.")
@click.option("--into", "list_id", required=True, metavar="ID", help="This hub's entries list.")
@home_option
def upstream_unselect(name: str, upstream_list: str, list_id: str, home: Path) -> None:
    """Stop re-publishing NAME's list --from into --into (the next sync retracts)."""
    with _open(home) as hub:
        hub.upstreams.unselect(name, upstream_list, list_id, who=_who())
    click.echo(f"No longer re-publishing {name}/{upstream_list} into {list_id}.")


@upstream_group.command(name="sync")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@json_option
@home_option
def upstream_sync(names: tuple[str, ...], as_json: bool, home: Path) -> None:
    """Follow each upstream (or NAMEs) once: verify its lists, carry the selected
    entries over, publish what changed, acknowledge. Exits 1 on any problem."""
    reports = _follow_now(home, list(names) or None)
    if as_json:
        _echo_json([r.to_dict() for r in reports])
    else:
        for report in reports:
            for o in report.outcomes:
                click.echo(
                    f"{report.upstream}/{o.list_id}: {o.status} v{o.from_version} -> "
                    f"v{o.to_version}"
                )
            if report.carried is not None:
                c = report.carried
                click.echo(
                    f"{report.upstream}: carried over +{len(c.added)} ~{len(c.changed)} "
                    f"-{len(c.retracted)}" + (f" ({len(c.skipped)} skipped)" if c.skipped else "")
                )
            for r in report.published:
                click.echo(f"published {r.list} v{r.version} (+{r.adds} -{r.removes})")
            if report.acked:
                click.echo(f"{report.upstream}: acked seq {', '.join(map(str, report.acked))}")
            for unread in report.unchecked:
                click.echo(f"{report.upstream}: loop check could not read {unread}", err=True)
            for problem in report.problems:
                click.echo(f"problem: {problem}", err=True)
    if any(r.problems for r in reports):
        sys.exit(1)


def _follow_now(home: Path, names: list[str] | None) -> list[FollowReport]:
    """Run ``hub.following.follow_upstreams`` once, on this process's hub."""

    async def run(hub: Hub) -> list[FollowReport]:
        async with aiohttp.ClientSession() as session:
            return await follow_upstreams(
                in_place(hub), session=session, now=hub.now(), names=names, who=_who()
            )

    with _open(home) as hub:
        return asyncio.run(run(hub))


@upstream_group.command(name="status")
@json_option
@home_option
def upstream_status(as_json: bool, home: Path) -> None:
    """Each followed upstream: its lists' versions and errors, and the selections."""
    with _open(home) as hub:
        status = hub.upstreams.status()
    if as_json:
        _echo_json(status)
        return
    if not status:
        click.echo("This hub follows no upstream.")
    for up in status:
        token = "token kept" if up["token"] else "no token yet"
        click.echo(f"{up['upstream']}  as node {up['node']}  ({token})")
        for item in up["lists"]:
            error = f"  last error: {item['last_error']}" if item["last_error"] else ""
            click.echo(
                f"  {item['list']}  v{item['version']}  {item['records']} records  "
                f"acked v{item['acked_version']}{error}"
            )
        for sel in up["selections"]:
            terms = ", ".join(sel["categories"] + sel["classifications"]) or "all"
            click.echo(f"  {sel['upstream_list']} -> {sel['list']}  ({terms})")


@main.group(name="vocabulary")
def vocabulary_group() -> None:
    """Show and extend the terms entries may use (the root's vocabulary)."""


@vocabulary_group.command(name="show")
@json_option
@home_option
def vocabulary_show(as_json: bool, home: Path) -> None:
    """Show the newest root's vocabulary."""
    with _open(home) as hub:
        root = hub.keys.root()
    vocabulary = root.vocabulary
    if as_json:
        _echo_json(None if vocabulary is None else vocabulary.to_dict())
        return
    if vocabulary is None:
        click.echo(
            "No vocabulary yet: 'hashhub vocabulary add' or an entries list declares the default."
        )
        return
    for group, terms in vocabulary.to_dict().items():
        scale = "  (least severe first)" if group == "classifications" else ""
        click.echo(f"{group}: {', '.join(terms)}{scale}")


@vocabulary_group.command(name="add")
@click.argument("group", metavar="GROUP", type=click.Choice(VOCABULARY_GROUPS))
@click.argument("term", metavar="TERM")
@home_option
def vocabulary_add(group: str, term: str, home: Path) -> None:
    """Add TERM to GROUP in a new root version (terms are never removed; a new
    classification is the most severe)."""
    with _open(home) as hub:
        root = hub.roots.add_term(group, term, who=_who())
    click.echo(f"Added {term!r} to {group}; declared in root v{root.version}.")


@main.group(name="entry")
def entry_group() -> None:
    """Stage, change, retract and inspect the entries of entries lists."""


def _echo_entry(view: EntryView, as_json: bool) -> None:
    if as_json:
        _echo_json(view.to_dict())
        return
    state = f"retracted ({view.retracted}) at {view.retracted_at}" if view.retracted else "standing"
    click.echo(f"entry           {view.entry}")
    click.echo(f"collection      {view.collection or '-'}")
    click.echo(f"category        {view.category}")
    click.echo(f"classification  {view.classification}")
    click.echo(f"source          {view.source}")
    click.echo(f"first seen      {view.first_seen}")
    click.echo(f"expires         {view.expires or 'never'}")
    click.echo(f"state           {state}")
    for item in view.lists:
        flags = ("listed" if item["listed"] else "not listed") + (
            ", changes at the next publish" if item["pending"] else ""
        )
        click.echo(f"  {item['list']}  {_shown_hash(item)}  {flags}")
    said = view.opinions
    if said.get("platforms"):
        click.echo(
            f"opinions        confirmed by {said['confirmed']} platform(s), "
            f"disputed by {said['disputed']}"
        )
        for p in said["platforms"]:
            why = f" ({p['reason']})" if p["reason"] else ""
            click.echo(
                f"  {p['platform']}  {p['position']}{why}  ack {p['node']} seq {p['seq']} "
                f"of {p['list']}, sent {p['sent']}"
            )


def _shown_hash(item: Mapping[str, Any]) -> str:
    """An entry's hash in one list; a video's (``vpdq``) is its record hash and how
    many frames it names, never the frames themselves."""
    if "frames" not in item:
        return str(item["hash"])
    count = "frames not held" if item["frames"] is None else f"{item['frames']} frames"
    return f"{item['hash']} ({count})"


def _hash_text(value: str) -> str:
    """A ``--hash`` as given; ``@FILE``: the video's frames file FILE (the 37-byte-a-frame
    encoding of PROTOCOL.md §6.3, as a hub publishes it), as the hex an entry takes,
    since a long video's frames are megabytes, more than a command line holds."""
    if not value.startswith("@"):
        return value
    path = Path(value[1:])
    try:
        size = path.stat().st_size
        if size > MAX_FRAMES_BYTES:
            raise click.UsageError(
                f"{path}: {size} bytes, above the cap of {MAX_FRAMES_BYTES} on a video's frames"
            )
        return path.read_bytes().hex()
    except OSError as e:
        raise click.UsageError(f"--hash {value}: {e.strerror or e}") from e


@entry_group.command(name="add")
@click.option(
    "--list",
    "list_ids",
    multiple=True,
    required=True,
    help="An entries list (repeat: one per --hash).",
)
@click.option(
    "--hash",
    "hashes",
    multiple=True,
    required=True,
    help="The hash in the --list at the same place; for a vpdq list the video's frames "
    "as hex, the record hash of frames the hub holds, or @FILE, a frames file.",
)
@click.option("--category", required=True, help="A category of the vocabulary.")
@click.option("--classification", required=True, help="A classification of the vocabulary.")
@click.option("--source", required=True, help="A source kind of the vocabulary, or KIND:REF.")
@click.option("--expires", default=None, help="When it stops matching (YYYY-MM-DDTHH:MM:SSZ).")
@json_option
@home_option
def entry_add(
    list_ids: tuple[str, ...],
    hashes: tuple[str, ...],
    category: str,
    classification: str,
    source: str,
    expires: str | None,
    as_json: bool,
    home: Path,
) -> None:
    """Stage a new entry: its hash in each list of one collection, and its metadata."""
    if len(list_ids) != len(hashes):
        raise click.UsageError("give one --hash for each --list, in the same order")
    texts = [_hash_text(value) for value in hashes]
    draft = EntryDraft(
        tuple(zip(list_ids, texts, strict=True)), category, classification, source, expires
    )
    with _open(home) as hub:
        view = hub.entries.add(draft, who=_who())
    if as_json:
        _echo_json(view.to_dict())
        return
    click.echo(
        f"Staged entry {view.entry} in {', '.join(list_ids)}; 'hashhub publish' releases it."
    )


@entry_group.command(name="change")
@click.argument("entry_id", metavar="ENTRY")
@click.option("--category", default=None, help="A new category.")
@click.option("--classification", default=None, help="A new classification.")
@click.option("--source", default=None, help="A new source (KIND or KIND:REF).")
@click.option(
    "--expires",
    default=None,
    help="A new expiry (YYYY-MM-DDTHH:MM:SSZ), or 'never' to take the expiry away.",
)
@home_option
def entry_change(
    entry_id: str,
    category: str | None,
    classification: str | None,
    source: str | None,
    expires: str | None,
    home: Path,
) -> None:
    """Stage new metadata for ENTRY: each list holding it replaces its record."""
    with _open(home) as hub:
        view = hub.entries.change(
            entry_id,
            category=category,
            classification=classification,
            source=source,
            expires=expires,
            who=_who(),
        )
    lists = ", ".join(item["list"] for item in view.lists)
    click.echo(f"Staged the change of {view.entry} in {lists}; 'hashhub publish' releases it.")


@entry_group.command(name="retract")
@click.argument("entry_id", metavar="ENTRY")
@click.option("--reason", required=True, type=click.Choice(RETRACT_REASONS), help="Why.")
@home_option
def entry_retract(entry_id: str, reason: str, home: Path) -> None:
    """Retract ENTRY: every list holding it removes its record at its next publish."""
    with _open(home) as hub:
        view = hub.entries.retract(entry_id, reason, who=_who())
    lists = ", ".join(item["list"] for item in view.lists)
    click.echo(f"Retracted {view.entry} ({reason}) from {lists}; 'hashhub publish' releases it.")


@entry_group.command(name="show")
@click.argument("entry_id", metavar="ENTRY")
@json_option
@home_option
def entry_show(entry_id: str, as_json: bool, home: Path) -> None:
    """Show ENTRY: its metadata, its record in each list, what platforms say of it and
    its newest dispute."""
    with _open(home) as hub:
        view = hub.entries.show(entry_id)
        dispute = hub.disputes.of(entry_id)
    if as_json:
        _echo_json(view.to_dict() | {"dispute": dispute and dispute.to_dict()})
        return
    _echo_entry(view, as_json)
    if dispute is not None:
        click.echo(f"dispute         {_dispute_state(dispute)}")


@entry_group.command(name="list")
@click.option("--list", "list_id", required=True, help="An entries list.")
@click.option(
    "--limit",
    type=click.IntRange(1, 100_000),
    default=1000,
    show_default=True,
    help="At most this many entries.",
)
@json_option
@home_option
def entry_list(list_id: str, limit: int, as_json: bool, home: Path) -> None:
    """The entries with a hash in an entries list, oldest first."""
    with _open(home) as hub:
        views = hub.entries.listed(list_id, limit)
    if as_json:
        _echo_json([v.to_dict() for v in views])
        return
    if not views:
        click.echo(f"No entries in {list_id} yet; stage one with 'hashhub entry add'.")
        return
    rows = []
    for v in views:
        item = next(i for i in v.lists if i["list"] == list_id)
        state = f"retracted ({v.retracted})" if v.retracted else "standing"
        listed = "yes" if item["listed"] else "no"
        rows.append(
            [v.entry, _shown_hash(item), v.category, v.classification, v.source, listed, state]
        )
    click.echo(
        _table(["ENTRY", "HASH", "CATEGORY", "CLASSIFICATION", "SOURCE", "LISTED", "STATE"], rows)
    )


@entry_group.command(name="import")
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True))
@home_option
def entry_import(path: str, home: Path) -> None:
    """Stage every entry in FILE; all or nothing.

    FILE holds NDJSON, one entry a line: {"hashes": {"LIST": "HEX", ...},
    "category": ..., "classification": ..., "source": ..., "expires": ...}
    ('expires' optional). A vpdq list's HEX is the video's frames, 74 hex digits
    a frame, or the record hash of frames the hub holds. '-' reads stdin.
    """
    with _open(home) as hub:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
        try:
            drafts = parse_entry_lines(data)
            views = hub.entries.add_many(drafts, who=_who())
        except HubError as e:
            raise click.ClickException(f"{path}: {e}; nothing was staged") from e
    click.echo(f"Staged {len(views)} entries from {path}; 'hashhub publish' releases them.")


# -- staging and publishing -------------------------------------------------------------


@main.command()
@click.argument("list_id", metavar="ID")
@click.argument("hashes", metavar="HASH...", nargs=-1, required=True)
@click.option("--source", help="Where the hashes came from.")
@click.option("--category", help="Category, in your own vocabulary.")
@click.option("--quality", type=int, help=f"Quality score 0-100 ({_FLOORS} is refused).")
@click.option("--submission-id", help="Your reference for the submission.")
@home_option
def add(
    list_id: str,
    hashes: tuple[str, ...],
    source: str | None,
    category: str | None,
    quality: int | None,
    submission_id: str | None,
    home: Path,
) -> None:
    """Stage hex hashes as additions to list ID."""
    with _open(home) as hub:
        hash_type = hub.lists.spec(list_id).hash_type
        items = [
            make_intake(
                hash_type,
                {
                    "hash": text,
                    "quality": quality,
                    "source": source,
                    "category": category,
                    "submission_id": submission_id,
                },
            )
            for text in hashes
        ]
        n = hub.lists.stage(list_id, adds=items, who=_who())
    click.echo(f"Staged {n} addition(s) to {list_id}; 'hashhub publish' releases them.")


@main.command()
@click.argument("list_id", metavar="ID")
@click.argument("hashes", metavar="HASH...", nargs=-1, required=True)
@home_option
def remove(list_id: str, hashes: tuple[str, ...], home: Path) -> None:
    """Stage hex hashes as removals from list ID.

    A removal retracts a hash from every node at the next publish.
    """
    with _open(home) as hub:
        hash_type = hub.lists.spec(list_id).hash_type
        values = [parse_hash(text, hash_type) for text in hashes]
        n = hub.lists.stage(list_id, removes=values, who=_who())
        state = hub.lists.state(list_id)
        absent = sum(1 for value in values if value not in state)
    click.echo(f"Staged {n} removal(s) from {list_id}; 'hashhub publish' releases them.")
    if absent:
        click.echo(
            f"Note: {absent} of them are not in the published list; "
            "a removal of an absent hash is dropped at publish."
        )


@main.command(name="import")
@click.argument("list_id", metavar="ID")
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True))
@home_option
def import_(list_id: str, path: str, home: Path) -> None:
    """Stage every hash in FILE; all or nothing.

    FILE holds plain lines (one hex hash each, '#' comments), CSV with a header
    row naming a 'hash' column, or NDJSON objects with a 'hash' field; CSV and
    NDJSON may add quality, category, source and submission_id. '-' reads stdin.
    """
    with _open(home) as hub:
        hash_type = hub.lists.spec(list_id).hash_type
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
        try:
            items = parse_import(data, hash_type)
        except IntakeError as e:
            raise click.ClickException(f"{path}: {e}; nothing was staged") from e
        n = hub.lists.stage(list_id, adds=items, who=_who())
    click.echo(f"Staged {n} addition(s) to {list_id} from {path}; 'hashhub publish' releases them.")


@main.command()
@click.argument("list_ids", metavar="[ID]...", nargs=-1)
@home_option
def publish(list_ids: tuple[str, ...], home: Path) -> None:
    """Publish staged changes as new versions.

    Publishes each list ID given, or every list with staged changes.
    """
    with _open(home) as hub:
        results = hub.publishing.publish(list(list_ids) or None, who=_who())
        root = hub.keys.root()
    done = {r.list for r in results}
    for r in results:
        snapshot = ", snapshot written" if r.snapshot else ""
        what = "entries" if root.lists[r.list].entries else "hashes"
        click.echo(f"{r.list}: v{r.version}  +{r.adds} -{r.removes}  {r.count} {what}{snapshot}")
    for list_id in sorted(set(list_ids) - done):
        click.echo(f"{list_id}: nothing to publish")
    if not results and not list_ids:
        click.echo("Nothing staged; no new version.")


@main.command()
@home_option
def refresh(home: Path) -> None:
    """Re-issue every checkpoint's co-signature."""
    with _open(home) as hub:
        n = hub.checkpoints.refresh(who=_who())
    click.echo(f"Re-issued the checkpoint of {n} list(s).")


@main.command()
@json_option
@home_option
def status(as_json: bool, home: Path) -> None:
    """Lists, nodes, counts and flagged hashes.

    Per list: version, size, staged changes. Per platform: whether every active
    node of it applied the list's version (n of m replicas) and its nodes' counts
    summed. Per node: applied version, lag, last ack and cumulative counts.
    Hashes flagged for review.
    """
    with _open(home) as hub:
        report = hub.reports.status()
    if as_json:
        _echo_json(report.to_dict())
        return
    click.echo(f"hub {report.hub}  root v{report.root_version} (expires {report.root_expires})")
    if not report.lists:
        click.echo("No lists yet.")
        return
    click.echo("")
    click.echo(
        _table(
            [
                "LIST",
                "TYPE",
                "VERSION",
                "COUNT",
                "STAGED",
                "NODES",
                "PLATFORMS",
                "MATCHED",
                "FALSE POS.",
            ],
            (
                [
                    e.id,
                    e.hash_type,
                    e.version,
                    e.count,
                    e.staged,
                    len(e.nodes),
                    len(e.platforms),
                    e.totals.get("matched", 0),
                    e.totals.get("false_positive", 0),
                ]
                for e in report.lists
            ),
        )
    )
    for entry in report.lists:
        _echo_list_platforms(entry)
        _echo_list_nodes(entry)
        _echo_flagged(entry)


def _replicas(p: PlatformStatus) -> str:
    return f"{p.replicas_on_version} of {p.replicas}"


def _echo_list_platforms(entry: ListStatus) -> None:
    """One list's platforms for ``status``: each once, its nodes (replicas) counted together.

    Applied: every active node of the platform acked the list's version; the
    counts are its nodes' summed.
    """
    if not entry.platforms:
        return
    counters = ("checked", "matched", "actioned", "blocked", "false_positive")
    click.echo(
        f"\n{entry.id}: platforms ({entry.platforms_applied} of {len(entry.platforms)} "
        f"applied v{entry.version})"
    )
    rows = (
        [
            p.platform,
            _yes(p.applied),
            _replicas(p),
            *(p.counts.get(c, 0) for c in counters),
        ]
        for p in entry.platforms
    )
    headers = ["PLATFORM", "APPLIED", "REPLICAS", "CHECKED", "MATCHED"]
    headers += ["ACTIONED", "BLOCKED", "FALSE POS."]
    click.echo(_table(headers, rows))


def _echo_list_nodes(entry: ListStatus) -> None:
    """One list's nodes for ``status``: applied version, lag, counts, and withheld jumps."""
    if not entry.nodes:
        return
    counters = ("checked", "matched", "actioned", "blocked", "false_positive")
    click.echo(f"\n{entry.id}: nodes")
    rows = (
        [
            n.node + (" (revoked)" if n.revoked else ""),
            n.applied_version,
            n.lag,
            n.last_ack,
            *(n.counts.get(c, 0) for c in counters),
        ]
        for n in entry.nodes
    )
    headers = ["NODE", "APPLIED", "LAG", "LAST ACK", "CHECKED", "MATCHED"]
    headers += ["ACTIONED", "BLOCKED", "FALSE POS."]
    click.echo(_table(headers, rows))
    for n in entry.nodes:
        if n.withheld:
            held = ", ".join(f"{k} {v}" for k, v in sorted(n.withheld.items()))
            click.echo(
                f"{n.node}: withheld as implausible jumps (not counted): {held} "
                "(see 'hashhub evidence')"
            )


def _echo_flagged(entry: ListStatus) -> None:
    """One list's flagged hashes for ``status``, with why and how many nodes reported them."""
    if not entry.flagged:
        return
    click.echo(f"\n{entry.id}: flagged for review (retract with 'hashhub remove')")
    click.echo(
        _table(
            ["HASH", "MATCHED", "FALSE POS.", "WHY", "REPORTED BY"],
            (
                [
                    f.hash,
                    f.counts.get("matched", 0),
                    f.counts.get("false_positive", 0),
                    "; ".join(f.reasons),
                    _reported_by(f),
                ]
                for f in entry.flagged
            ),
        )
    )


def _reported_by(flagged: FlaggedHash) -> str:
    """How many nodes reported a flagged hash's false positives and matches."""
    nodes = flagged.nodes
    return (
        f"{nodes.get('false_positive', 0)} node(s) false pos., "
        f"{nodes.get('matched', 0)} node(s) matched"
    )


# -- public submissions -----------------------------------------------------------------


@main.group(name="case")
def case_group() -> None:
    """Review public submissions: the queue, one case, accept or reject, withdrawals.

    The dashboard's review without a browser: the same rules, and each decision is
    logged under cli:<user>.
    """


def _case_number(text: str) -> str:
    """A case number as the person passed it on: any case, with or without dashes.

    The case page shows the number in groups of four (``1a2b-3c4d-…``), and that is
    how it reaches an operator; the hub stores it as 32 lowercase hex digits.
    """
    value = re.sub(r"[\s-]", "", text).lower()
    if not re.fullmatch(r"[0-9a-f]{32}", value):
        raise click.ClickException(
            f"{text[:80]!r} is not a case number: 32 hex digits (0-9, a-f), dashes allowed"
        )
    return value


@case_group.command(name="list")
@click.option(
    "--status",
    type=click.Choice(CASE_STATUSES),
    default="received",
    show_default=True,
    help="Which cases: received (the review queue), accepted or rejected.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Show at most this many cases; the list says when more wait.",
)
@json_option
@home_option
def case_list(status: str, limit: int, as_json: bool, home: Path) -> None:
    """Cases of one status, oldest first: the review queue by default."""
    with _open(home) as hub:
        rows = hub.cases.with_status(status, limit + 1)  # one more says whether more wait
    cases, more = rows[:limit], len(rows) > limit
    if as_json:
        _echo_json([c.to_dict() for c in cases])
        return
    if not cases:
        click.echo("No case waits for review." if status == "received" else f"No {status} cases.")
        return
    headers = ["CASE", "RECEIVED", "TYPE", "QUALITY", "HASH"]
    reviewed = status != "received"
    if reviewed:
        headers += ["REVIEWED", "BY", "LIST"]
    click.echo(
        _table(
            headers,
            (
                [c.case, c.received, c.hash_type, c.quality, c.hash]
                + ([c.reviewed, c.reviewer, c.list] if reviewed else [])
                for c in cases
            ),
        )
    )
    if more:
        click.echo(f"More {status} cases than these {limit}; raise --limit to see them.")


@case_group.command(name="show")
@click.argument("case", metavar="CASE")
@json_option
@home_option
def case_show(case: str, as_json: bool, home: Path) -> None:
    """One case as operators see it: its hash, status, reviewer and list."""
    case_number = _case_number(case)
    with _open(home) as hub:
        record = hub.cases.review_record(case_number)
    detail = record.to_dict()
    if as_json:
        _echo_json(detail)
        return
    width = max(len(k) for k in detail)
    for name, value in detail.items():
        if isinstance(value, bool):
            shown: object = "yes" if value else "no"
        else:
            shown = "-" if value is None else value
        click.echo(f"{name.replace('_', ' '):<{width}}  {shown}")


@case_group.command(name="accept")
@click.argument("case", metavar="CASE")
@click.option(
    "--list", "list_id", required=True, help="The list to stage the hash in (of its hash type)."
)
@click.option("--category", help="The entry's category (an entries list only; required there).")
@click.option(
    "--classification", help="The entry's classification (an entries list only; required there)."
)
@home_option
def case_accept(
    case: str, list_id: str, category: str | None, classification: str | None, home: Path
) -> None:
    """Accept CASE: stage its hash in --list, with the case as its provenance.

    Into an entries list the hash becomes an entry of source submission (the record
    never names the case) in every list of the collection that holds its hash type.
    """
    case_number = _case_number(case)
    with _open(home) as hub:
        hub.cases.review(
            case_number,
            accept=True,
            list_id=list_id,
            category=category,
            classification=classification,
            who=_who(),
        )
        entries = hub.lists.spec(list_id).entries
    what = "an entry" if entries else "its hash"
    click.echo(
        f"Accepted case {case_number} into {list_id}: {what} is staged; "
        "'hashhub publish' releases it."
    )


@case_group.command(name="reject")
@click.argument("case", metavar="CASE")
@home_option
def case_reject(case: str, home: Path) -> None:
    """Reject CASE: nothing is staged; the case page says it was not accepted."""
    case_number = _case_number(case)
    with _open(home) as hub:
        hub.cases.review(case_number, accept=False, who=_who())
    click.echo(f"Rejected case {case_number}.")


@case_group.command(name="withdrawals")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Show at most this many requests; the list says when more wait.",
)
@json_option
@home_option
def case_withdrawals(limit: int, as_json: bool, home: Path) -> None:
    """Withdrawals waiting for review (withdrawal = "review"), oldest case first."""
    with _open(home) as hub:
        rows = hub.cases.withdrawals(limit + 1)
    cases, more = rows[:limit], len(rows) > limit
    if as_json:
        _echo_json([c.to_dict() for c in cases])
        return
    if not cases:
        click.echo("No withdrawal waits for review.")
        return
    click.echo(
        _table(
            ["CASE", "LIST", "TYPE", "HASH"],
            ([c.case, c.list, c.hash_type, c.hash] for c in cases),
        )
    )
    if more:
        click.echo(f"More withdrawals than these {limit}; raise --limit to see them.")


@case_group.command(name="withdraw")
@click.argument("case", metavar="CASE")
@click.option("--approve", "decision", flag_value="approve", help="Retract its entry.")
@click.option("--refuse", "decision", flag_value="refuse", help="Keep its entry listed.")
@home_option
def case_withdraw(case: str, decision: str | None, home: Path) -> None:
    """Decide CASE's waiting withdrawal: --approve retracts its entry as withdrawn
    (out with the next publish), --refuse keeps it; the case page shows which."""
    if decision is None:
        raise click.UsageError("give --approve or --refuse")
    case_number = _case_number(case)
    with _open(home) as hub:
        hub.cases.decide_withdrawal(case_number, approve=decision == "approve", who=_who())
    if decision == "approve":
        click.echo(
            f"Withdrawal of case {case_number} approved: its entry is retracted as "
            "withdrawn; 'hashhub publish' releases it."
        )
    else:
        click.echo(f"Withdrawal of case {case_number} refused: its entry stays listed.")


# -- disputes -----------------------------------------------------------------------------


@main.group(name="dispute")
def dispute_group() -> None:
    """Decide the disputes of entries: kept (dismiss) or retracted (uphold)."""


def _dispute_state(d: DisputeRecord) -> str:
    """A dispute's state in words, with when it began and when and by whom it ended."""
    said = f"{d.state}, opened {d.opened}"
    if d.closed is not None:
        said += f", {d.state} {d.closed}" + (f" by {d.by}" if d.by else "")
    return said


@dispute_group.command(name="list")
@click.option(
    "--state",
    type=click.Choice(DISPUTE_STATES),
    default=None,
    help="Only disputes in this state (default: all).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Show at most this many disputes, oldest first.",
)
@json_option
@home_option
def dispute_list(state: str | None, limit: int, as_json: bool, home: Path) -> None:
    """Disputes of entries, oldest first: opened when enough platforms dispute an entry."""
    with _open(home) as hub:
        rows = hub.disputes.listed(state, limit)
    if as_json:
        _echo_json([d.to_dict() for d in rows])
        return
    if not rows:
        click.echo("No dispute." if state is None else f"No {state} dispute.")
        return
    click.echo(
        _table(
            ["ENTRY", "STATE", "OPENED", "CLOSED", "BY", "NOTE"],
            (
                [d.entry, d.state, d.opened, d.closed or "-", d.by or "-", d.note or ""]
                for d in rows
            ),
        )
    )


@dispute_group.command(name="dismiss")
@click.argument("entry_id", metavar="ENTRY")
@click.option("--note", default=None, help="Why, for the operators (never published).")
@home_option
def dispute_dismiss(entry_id: str, note: str | None, home: Path) -> None:
    """Keep ENTRY despite its open dispute: the next summaries say who dismissed it, when."""
    with _open(home) as hub:
        hub.disputes.decide(entry_id, "dismiss", note, who=_who())
    click.echo(f"Dispute of {entry_id} dismissed: the entry stays listed.")


@dispute_group.command(name="uphold")
@click.argument("entry_id", metavar="ENTRY")
@click.option("--note", default=None, help="Why, for the operators (never published).")
@home_option
def dispute_uphold(entry_id: str, note: str | None, home: Path) -> None:
    """Retract ENTRY as disputed from every list of its collection (out with the next
    publish)."""
    with _open(home) as hub:
        hub.disputes.decide(entry_id, "uphold", note, who=_who())
    click.echo(
        f"Dispute of {entry_id} upheld: the entry is retracted as disputed; "
        "'hashhub publish' releases it."
    )


@main.group(name="contribution")
def contribution_group() -> None:
    """Review members' contributions: candidate entries their nodes signed and sent; trust
    platforms to have theirs accepted on arrival."""


@contribution_group.command(name="list")
@click.option(
    "--status",
    type=click.Choice(CONTRIBUTION_STATUSES),
    default="received",
    show_default=True,
    help="Only contributions with this status (default: those waiting for review).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Show at most this many contributions, by node and seq.",
)
@json_option
@home_option
def contribution_list(status: str, limit: int, as_json: bool, home: Path) -> None:
    """Contributions by node and seq: those waiting for review by default."""
    with _open(home) as hub:
        rows = hub.contributions.queue(limit, status=status)  # type: ignore[arg-type]
    if as_json:
        _echo_json([c.to_dict() for c in rows])
        return
    if not rows:
        click.echo(f"No {status} contribution.")
        return
    click.echo(
        _table(
            ["NODE", "SEQ", "PLATFORM", "SENT", "CATEGORY", "CLASSIFICATION", "HASHES", "ENTRY"],
            (
                [
                    c.node,
                    str(c.seq),
                    c.platform,
                    c.sent,
                    c.category,
                    c.classification,
                    ",".join(c.hashes),
                    c.entry or "-",
                ]
                for c in rows
            ),
        )
    )


@contribution_group.command(name="accept")
@click.argument("node_id", metavar="NODE")
@click.argument("seq", type=click.IntRange(min=1))
@click.option(
    "--list",
    "list_id",
    required=True,
    help="A list of the entries collection the entry goes to (each hash to its type's list).",
)
@click.option("--note", default="", help="Why, for the operators (never published).")
@home_option
def contribution_accept(node_id: str, seq: int, list_id: str, note: str, home: Path) -> None:
    """Accept NODE's contribution SEQ: one entry of source member:<platform>, staged for
    the next publish."""
    with _open(home) as hub:
        record = hub.contributions.accept(node_id, seq, list_id, _who(), note)
    click.echo(
        f"Contribution {node_id}/{seq} accepted as entry {record.entry}; "
        "'hashhub publish' releases it."
    )


@contribution_group.command(name="reject")
@click.argument("node_id", metavar="NODE")
@click.argument("seq", type=click.IntRange(min=1))
@click.option("--note", default="", help="Why, for the operators (never published).")
@home_option
def contribution_reject(node_id: str, seq: int, note: str, home: Path) -> None:
    """Reject NODE's contribution SEQ: it is kept as offered, and never listed."""
    with _open(home) as hub:
        hub.contributions.reject(node_id, seq, _who(), note)
    click.echo(f"Contribution {node_id}/{seq} rejected.")


@contribution_group.command(name="trust")
@click.argument("platform")
@click.option(
    "--list",
    "list_id",
    required=True,
    help="A list of the entries collection its contributions go to (each hash to its type's).",
)
@click.option(
    "--category",
    "categories",
    multiple=True,
    help="Only contributions of this category (repeat for more; default: every category).",
)
@home_option
def contribution_trust(
    platform: str, list_id: str, categories: tuple[str, ...], home: Path
) -> None:
    """Accept PLATFORM's contributions on arrival, without review; trusting it again
    replaces its list and categories."""
    with _open(home) as hub:
        trusted = hub.contributions.policy.trust(platform, list_id, categories, _who())
    scope = ", ".join(trusted.categories) if trusted.categories else "every category"
    click.echo(
        f"Platform {platform} trusted: its contributions ({scope}) are accepted on arrival "
        f"into the collection of {list_id}."
    )


@contribution_group.command(name="untrust")
@click.argument("platform")
@home_option
def contribution_untrust(platform: str, home: Path) -> None:
    """Stop trusting PLATFORM: its next contributions wait for review."""
    with _open(home) as hub:
        hub.contributions.policy.untrust(platform, _who())
    click.echo(f"Platform {platform} is no longer trusted: its contributions wait for review.")


@contribution_group.command(name="trusted")
@json_option
@home_option
def contribution_trusted(as_json: bool, home: Path) -> None:
    """The platforms whose contributions are accepted on arrival, by platform id."""
    with _open(home) as hub:
        rows = hub.contributions.policy.trusted()
    if as_json:
        _echo_json([t.to_dict() for t in rows])
        return
    if not rows:
        click.echo("No platform is trusted.")
        return
    click.echo(
        _table(
            ["PLATFORM", "LIST", "CATEGORIES", "SINCE", "WHO"],
            ([t.platform, t.list, ",".join(t.categories) or "all", t.since, t.who] for t in rows),
        )
    )


# -- nodes and tokens -------------------------------------------------------------------


@main.group()
def node() -> None:
    """Enrol platforms' nodes, change them (lists, key, token, suspension), revoke them."""


@node.command(name="enrol")
@click.argument("node_id", metavar="NODE_ID")
@click.option(
    "--public-key",
    "public_key",
    required=True,
    type=click.Path(path_type=Path),
    help="The node's Ed25519 public key (PEM), as the node generated it.",
)
@click.option("--lists", required=True, help="Comma-separated list ids the node may read.")
@click.option(
    "--url",
    metavar="URL",
    help="The hub's base URL as platforms reach it, to send with the token "
    "(default: public_url in hub.toml).",
)
@click.option(
    "--platform",
    metavar="ID",
    help="The platform the node serves, when it runs several nodes (replicas) counted "
    "together (default: the node id; a revoked id enrolled again keeps its platform).",
)
@home_option
def node_enrol(
    node_id: str,
    public_key: Path,
    lists: str,
    url: str | None,
    platform: str | None,
    home: Path,
) -> None:
    """Enrol NODE_ID; prints the hub URL, the root pin and its bearer token (once)."""
    granted = _lists_option(lists)
    if url is not None:
        url = _base_url(url, "--url")
    with _open(home) as hub:
        if url is None and hub.config.public_url:
            url = _base_url(
                hub.config.public_url, f"public_url (in {CONFIG_NAME} or HASHHUB_PUBLIC_URL)"
            )
        key = load_public_key(public_key)
        token = hub.access.enrol_node(node_id, key, granted, who=_who(), platform=platform)
        serves = next(n.platform for n in hub.access.nodes() if n.id == node_id)
        sha = hub.keys.root_sha256(1)
    of_platform = f" of platform {serves}" if serves != node_id else ""
    click.echo(
        f"Enrolled node {node_id}{of_platform} for {', '.join(sorted(set(granted)))} "
        f"(key {key.keyid})."
    )
    click.echo("Send the platform, over a channel you trust:")
    click.echo(
        f"  hub URL          {url or f'unknown: set public_url in {CONFIG_NAME}, or pass --url'}"
    )
    click.echo(f"  root v1 SHA-256  {sha}")
    click.echo(f"  node token       {token}")
    click.echo("The token is shown only this once; the hub stores its hash.")
    click.echo(
        "Its node takes them as 'hashhub-node init --hub URL --pin SHA256' and "
        "'hashhub-node token set -' (the token on standard input)."
    )


def _base_url(text: str, source: str) -> str:
    """``text`` as the base URL a node is given, or a one-line refusal naming ``source``.

    What ``node enrol`` prints is pasted as ``hashhub-node init --hub``, which takes
    http(s) only and appends the tree's paths to it: so a query, a fragment, or a
    character a shell would act on (space, quote, ``&``, ``;``, ``$``…) is refused
    here, before the node is enrolled, rather than found later by the platform.
    The trailing slash is dropped, as the node drops it.
    """
    if not _BASE_URL.fullmatch(text):
        raise click.ClickException(
            f"{source}: {text[:200]!r} is not a base URL such as https://hashes.example.org "
            "(http or https, no query or fragment)"
        )
    return text.rstrip("/")


@node.command(name="revoke")
@click.argument("node_id", metavar="NODE_ID")
@home_option
def node_revoke(node_id: str, home: Path) -> None:
    """Revoke NODE_ID's token and refuse its acks."""
    with _open(home) as hub:
        hub.access.revoke_node(node_id, who=_who())
    click.echo(f"Revoked node {node_id}.")


def _lists_option(text: str) -> list[str]:
    lists = [item.strip() for item in text.split(",") if item.strip()]
    if not lists:
        raise click.ClickException("--lists names no list")
    return lists


@node.command(name="grant")
@click.argument("node_id", metavar="NODE_ID")
@click.option("--lists", required=True, help="Comma-separated list ids to grant.")
@home_option
def node_grant(node_id: str, lists: str, home: Path) -> None:
    """Let NODE_ID read (and acknowledge) more lists, from its next request."""
    with _open(home) as hub:
        now = hub.access.grant(node_id, _lists_option(lists), who=_who())
    click.echo(f"Node {node_id} now has: {', '.join(now)}.")


@node.command(name="ungrant")
@click.argument("node_id", metavar="NODE_ID")
@click.option("--lists", required=True, help="Comma-separated list ids to take away.")
@home_option
def node_ungrant(node_id: str, lists: str, home: Path) -> None:
    """Take lists away from NODE_ID: its next read of them is refused."""
    with _open(home) as hub:
        now = hub.access.ungrant(node_id, _lists_option(lists), who=_who())
    click.echo(f"Node {node_id} now has: {', '.join(now) or 'no list'}.")


@node.command(name="rekey")
@click.argument("node_id", metavar="NODE_ID")
@click.option(
    "--public-key",
    "public_key",
    required=True,
    type=click.Path(path_type=Path),
    help="The node's new Ed25519 public key (PEM), from 'hashhub-node key rotate'.",
)
@home_option
def node_rekey(node_id: str, public_key: Path, home: Path) -> None:
    """Give NODE_ID a new key: its acks from the next seq on must be signed by it.

    The acks its old key signed stay verifiable under that key; the old key signs
    nothing after them.
    """
    with _open(home) as hub:
        record = hub.access.rekey(node_id, load_public_key(public_key), who=_who())
    click.echo(
        f"Node {node_id} signs with key {record.keyid[:16]} from seq {record.first_seq} on; "
        "earlier acks stay verifiable under its earlier keys."
    )


@node.command(name="token")
@click.argument("node_id", metavar="NODE_ID")
@home_option
def node_token(node_id: str, home: Path) -> None:
    """Issue NODE_ID a new token; the old one is refused from now on. Shown once."""
    with _open(home) as hub:
        value = hub.access.reissue_token(node_id, who=_who())
    click.echo(f"New token for node {node_id}, shown only this once:")
    click.echo(f"  {value}")
    click.echo("Its node takes it as 'hashhub-node token set -' (on standard input).")


@node.command(name="suspend")
@click.argument("node_id", metavar="NODE_ID")
@click.option("--reason", default="", help="Why, in one line, kept in the action log.")
@home_option
def node_suspend(node_id: str, reason: str, home: Path) -> None:
    """Refuse NODE_ID every request until 'node resume'; nothing else changes."""
    with _open(home) as hub:
        hub.access.suspend(node_id, reason, who=_who())
    click.echo(f"Suspended node {node_id}; 'hashhub node resume {node_id}' lets it back in.")


@node.command(name="resume")
@click.argument("node_id", metavar="NODE_ID")
@home_option
def node_resume(node_id: str, home: Path) -> None:
    """End NODE_ID's suspension."""
    with _open(home) as hub:
        hub.access.resume(node_id, who=_who())
    click.echo(f"Resumed node {node_id}.")


@node.command(name="platform")
@click.argument("node_id", metavar="NODE_ID")
@click.argument("platform", metavar="PLATFORM")
@home_option
def node_platform(node_id: str, platform: str, home: Path) -> None:
    """Count NODE_ID as one of PLATFORM's nodes (its replicas), from now on.

    Its acks, key and token stay; its counts move with it, since a platform's
    counts are the sums of its nodes'.
    """
    with _open(home) as hub:
        previous = hub.access.set_platform(node_id, platform, who=_who())
    click.echo(f"Node {node_id} now counts for platform {platform} (was {previous}).")


def _node_state(n: NodeRecord) -> str:
    if n.revoked:
        return f"revoked {n.revoked}"
    if n.suspended:
        return f"suspended {n.suspended}"
    return "active"


@node.command(name="show")
@click.argument("node_id", metavar="NODE_ID")
@json_option
@home_option
def node_show(node_id: str, as_json: bool, home: Path) -> None:
    """One node: its state, lists, and every key it had with the seqs each signs."""
    with _open(home) as hub:
        found = [n for n in hub.access.nodes() if n.id == node_id]
    if not found:
        raise click.ClickException(f"no node {node_id!r} was ever enrolled")
    (n,) = found
    if as_json:
        _echo_json(n.to_dict())
        return
    click.echo(f"node        {n.id}")
    click.echo(f"platform    {n.platform}")
    click.echo(f"state       {_node_state(n)}")
    click.echo(f"generation  {n.generation}")
    click.echo(f"lists       {', '.join(n.lists) or '-'}")
    click.echo(f"enrolled    {n.created}")
    click.echo(f"last seq    {n.last_seq}")
    click.echo(
        _table(
            ["KEY", "SEQS", "GENERATION", "SINCE", "WHY"],
            (
                [
                    k.keyid[:16],
                    f"{k.first_seq}-{k.last_seq if k.last_seq is not None else ''}",
                    k.generation,
                    k.since,
                    k.reason,
                ]
                for k in n.keys
            ),
        )
    )


@node.command(name="list")
@json_option
@home_option
def node_list(as_json: bool, home: Path) -> None:
    """List enrolled nodes."""
    with _open(home) as hub:
        nodes = hub.access.nodes()
    if as_json:
        _echo_json([n.to_dict() for n in nodes])
    elif not nodes:
        click.echo("No nodes enrolled.")
    else:
        click.echo(
            _table(
                ["NODE", "PLATFORM", "KEY", "LISTS", "ENROLLED", "STATE", "LAST SEQ"],
                (
                    [
                        n.id,
                        n.platform,
                        n.keyid[:16],
                        ",".join(n.lists),
                        n.created,
                        _node_state(n),
                        n.last_seq,
                    ]
                    for n in nodes
                ),
            )
        )


@main.group()
def token() -> None:
    """Operator tokens for the HTTP API."""


@token.command(name="create")
@click.option("--role", required=True, help=f"One of {', '.join(OPERATOR_ROLES)}.")
@click.option("--name", required=True, help="Who the token is for (shown in the action log).")
@home_option
def token_create(role: str, name: str, home: Path) -> None:
    """Create an operator token; prints it once."""
    with _open(home) as hub:
        value = hub.access.create_operator_token(role, name, who=_who())
    click.echo(f"Token for {name} (role {role}), shown only this once:")
    click.echo(f"  {value}")


@token.command(name="revoke")
@click.argument("name")
@home_option
def token_revoke(name: str, home: Path) -> None:
    """Revoke every operator token held by NAME (takes effect at once)."""
    with _open(home) as hub:
        count = hub.access.revoke_operator_tokens(name, who=_who())
    click.echo(f"Revoked {count} token(s) of {name}.")


@token.command(name="list")
@json_option
@home_option
def token_list(as_json: bool, home: Path) -> None:
    """Operator tokens by holder and role; the tokens themselves are never stored."""
    with _open(home) as hub:
        rows = hub.access.operator_tokens()
    if as_json:
        _echo_json([row.to_dict() for row in rows])
    elif not rows:
        click.echo("No operator tokens; make one with 'hashhub token create'.")
    else:
        click.echo(
            _table(
                ["NAME", "ROLE", "CREATED", "REVOKED"],
                ([row.name, row.role, row.created, row.revoked] for row in rows),
            )
        )


# -- keys -------------------------------------------------------------------------------


@main.group()
def key() -> None:
    """Rotate and list the hub's signing keys."""


@key.command(name="rotate")
@click.argument("role", metavar="ROLE")
@home_option
def key_rotate(role: str, home: Path) -> None:
    """Replace ROLE's keys in a new root version.

    ROLE is root, delta, checkpoint or timestamp.
    """
    with _open(home) as hub:
        root = hub.roots.rotate_key(role, who=_who())
    keyids = ", ".join(k[:16] for k in root.roles[role].keyids)
    click.echo(f"Rotated the {role} role in root v{root.version}; new key(s): {keyids}.")
    if role == "delta":
        firsts = ", ".join(f"{s.list_id} v{s.first_version}" for s in root.lists.values())
        click.echo(
            "Nodes now refuse headers signed by the old delta key from these versions on: "
            + (firsts or "(no lists yet)")
        )
    elif role == "root":
        click.echo(
            f"Root v{root.version} is signed by the old and the new root keys; move the new "
            "root key files offline and destroy the old ones."
        )
    else:
        click.echo("Every checkpoint was re-issued under the new key.")


@key.command(name="list")
@json_option
@home_option
def key_list(as_json: bool, home: Path) -> None:
    """List every key and whether root uses it."""
    with _open(home) as hub:
        keys = hub.keys.records()
    if as_json:
        _echo_json([k.to_dict() for k in keys])
        return
    click.echo(
        _table(
            ["KEY", "ROLE", "IN ROOT", "CREATED", "RETIRED", "PRIVATE KEY"],
            (
                [
                    k.keyid[:16],
                    k.role,
                    _yes(k.in_root),
                    k.created,
                    k.retired,
                    "here" if k.private_key_present else "not on this machine",
                ]
                for k in keys
            ),
        )
    )


# -- export, serve, logs ----------------------------------------------------------------


@main.command()
@click.argument("target", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--public-only",
    is_flag=True,
    help="Leave out the files of lists that are not public (for a mirror anyone can reach).",
)
@home_option
def export(target: Path, public_only: bool, home: Path) -> None:
    """Write the published tree into DIR.

    Plain files for any static server or CDN; files already there with the same
    bytes are kept, and a published file with other bytes is never overwritten.
    A mirror serves without tokens: use --public-only for one outside your network.
    """
    with _open(home) as hub:
        n = hub.files.export(target, public_only=public_only)
    click.echo(f"Wrote {n} file(s) to {target}; identical files already there were kept.")


@main.command()
@click.option("--host", default=None, help="Address to bind (default: host in hub.toml).")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port to bind (default: port in hub.toml).",
)
@home_option
def serve(host: str | None, port: int | None, home: Path) -> None:
    """Serve the hub over HTTP.

    Also publishes staged changes and re-issues checkpoints on the schedule in
    hub.toml.
    """
    with _reported():
        config = HubConfig.load(home)
    try:
        from hub.app import run  # the HTTP stack is loaded only when serving
    except ModuleNotFoundError as e:
        if e.name not in ("hub.app", "aiohttp"):
            raise
        raise click.ClickException(f"the HTTP server is not available: {e}") from e
    with _reported():
        run(home, host or config.host, port or config.port)


@main.command()
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Show the newest this many actions.",
)
@json_option
@home_option
def log(limit: int, as_json: bool, home: Path) -> None:
    """The operator action log, newest first."""
    with _open(home) as hub:
        actions = hub.reports.actions(limit)
    if as_json:
        _echo_json([a.to_dict() for a in actions])
        return
    click.echo(
        _table(
            ["#", "AT", "WHO", "ACTION", "DETAIL"],
            ([a.id, a.at, a.who, a.action, json.dumps(a.detail, sort_keys=True)] for a in actions),
        )
    )


@main.command()
@json_option
@home_option
def evidence(as_json: bool, home: Path) -> None:
    """Split-view evidence from nodes' acks, and counter jumps the hub withheld.

    Acks that co-signed a checkpoint or state the hub never published (each kept
    once, however often it was sent), and acks whose counters grew past
    ``max_counter_growth`` in a window. Past ``max_evidence_per_node`` items a
    node's further evidence is only counted: those counts are listed after.
    """
    with _open(home) as hub:
        rows = hub.evidence.items()
        dropped = hub.evidence.dropped()
        cap = hub.config.max_evidence_per_node
    if as_json:
        _echo_json([r.to_dict() for r in rows])
    elif not rows and not dropped:
        click.echo("No evidence recorded.")
    else:
        click.echo(
            _table(
                ["#", "CREATED", "KIND", "NODE", "LIST", "DETAIL"],
                (
                    [
                        r.id,
                        r.created,
                        r.kind,
                        r.node,
                        r.list,
                        json.dumps(r.detail, sort_keys=True),
                    ]
                    for r in rows
                ),
            )
        )
        for node, info in dropped.items():
            click.echo(
                f"{node}: at the cap of {cap} evidence items; {info['dropped']} more not kept "
                f"(first {info['first']}, last {info['last']})"
            )


main.add_command(exchange_group)
