"""``hashhub-audit verify`` follows a federation's chain: provenance to its origins.

Two real hubs (``tests/hub/test_following.py``'s ``federation``): the upstream
``helpline.example`` serves on loopback, the downstream ``regional.example``
follows it and re-publishes its ``ncii`` entries with provenance (PROTOCOL.md
§7.5). The downstream's published tree is exported to a folder and audited from
its pinned root alone; the auditor learns the upstream's pin and URL from the
downstream's signed root, reads the upstream there (with a token its operator
gave, its lists being private) or from an exported copy, and checks every origin
against the upstream's own log. A tampered copy re-signed with the downstream's
own keys passes every rule of one version and is caught only by the chain; an
upstream retraction the downstream never carried over is caught by the clock;
members' contributions are checked under the keys their platforms give.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from audit.cli import EXIT_FAILED, EXIT_INCOMPLETE
from hub.core import Hub, utcnow
from hub.http import invalidate_caches
from hub.services.access import Principal
from hub.services.entries import EntryDraft
from protocol import (
    DeltaHeader,
    EntriesBody,
    Entry,
    SigningKey,
    body_path,
    format_time,
    header_path,
)
from protocol.contribution import ContributedHash, Contribution, Review, sign_contribution
from protocol.merkle import leaf_hash, node_hash
from protocol.provenance import MemberOrigin, UpstreamOrigin
from scripts.demo_federation import forged_version
from tests.audit.support import Outcome, audit_async, export, write_pem
from tests.hub import test_following as following
from tests.hub.conftest import opened
from tests.hub.test_following import (
    DOWN_MD5,
    DOWN_PDQ,
    UP_MD5,
    UP_PDQ,
    UPSTREAM,
    Federation,
    follow,
    md5,
    pdq,
)
from tests.hub.test_scheduler import sample

federation = following.federation
"""Two real hubs, the upstream on loopback (the following tests' fixture, reused)."""

MEMBER = "platform-m"
"""The downstream's member node that contributes."""
UNLISTED = 999
"""The item of every fabricated record: no hub ever listed it."""


@contextmanager
def at_time(home: Path, when: datetime) -> Iterator[Hub]:
    """A hub whose clock reads ``when`` (its operator at work at that moment)."""
    hub = Hub.open(home, now=lambda: when)
    try:
        yield hub
    finally:
        hub.close()


def upstream_token(fed: Federation, folder: Path) -> Path:
    """A file holding an auditor token of the upstream: its lists are private."""
    with opened(fed.upstream) as hub:
        token = hub.access.create_operator_token("auditor", "chain-auditor")
    path = folder / "upstream.token"
    path.write_text(token + "\n", encoding="utf-8")
    return path


async def verify(
    fed: Federation, tree: Path, tmp_path: Path, *more: str | Path, at: datetime | None = None
) -> Outcome:
    """``hashhub-audit verify`` of the downstream's exported ``tree`` from its pin,
    the upstream read where the downstream's root says (with the auditor's token)."""
    token = upstream_token(fed, tmp_path)
    return await audit_async(
        "verify",
        tree,
        "--root-sha256",
        fed.down_pin,
        "--witness",
        tmp_path / "witness.json",
        "--upstream-token",
        f"{UPSTREAM}={token}",
        "--json",
        *(["--at", format_time(at)] if at else []),
        *more,
    )


def by_list(out: Outcome) -> dict[str, dict[str, Any]]:
    return {lst["list"]: lst for lst in out.json()["lists"]}


def rules(out: Outcome) -> list[str]:
    return sorted(f["rule"] for f in out.findings())


def forge(
    home: Path,
    tree: Path,
    list_id: str,
    entry: Entry,
    origin: UpstreamOrigin | MemberOrigin | None,
) -> int:
    """Write into ``tree`` (a copy of the hub's published tree) one more version of
    ``list_id`` adding ``entry``, signed with the hub's own keys, naming a provenance
    document with ``origin`` (None: naming none); its version number."""
    return forged_version(home, tree, list_id, entry, origin)


def fabricated(source: str, entry_id: str = "e-fabricated") -> Entry:
    """A PDQ record of an item no hub listed, claiming ``source``."""
    kind, _, ref = source.partition(":")
    return Entry(
        bytes.fromhex(pdq(UNLISTED)),
        entry_id,
        "ncii",
        "confirmed",
        kind,
        ref or None,
        utcnow().replace(microsecond=0),
    )


def upstream_header(fed: Federation, list_id: str, version: int) -> bytes:
    with opened(fed.upstream) as hub:
        found = hub.files.get(header_path(list_id, version))
    assert found is not None
    return found[0]


# -- the honest chain ----------------------------------------------------------------


async def test_an_honest_chain_verifies_with_every_origin_checked_against_the_upstream(
    federation: Federation, tmp_path: Path
) -> None:
    fed = federation
    await follow(fed.downstream)
    # A change upstream is re-published (a new origin); a retraction is carried over
    # within the delay: neither is a finding.
    with fed.upstream_changes() as hub:
        (entry,) = [e for e in hub.entries.listed(UP_PDQ) if e.category == "ncii"]
        hub.entries.change(entry.entry, classification="severe")
        hub.publishing.publish()
    await follow(fed.downstream)
    with fed.upstream_changes() as hub:
        hub.entries.retract(entry.entry, "withdrawn")
        hub.publishing.publish()
    await follow(fed.downstream)
    tree = export(fed.downstream, tmp_path / "tree")

    out = await verify(fed, tree, tmp_path)
    assert out.code == 0, out.stdout
    report = out.json()
    assert out.findings() == []
    for list_id in (DOWN_PDQ, DOWN_MD5):
        listed = by_list(out)[list_id]
        assert listed["status"] == "verified"
        # v2 re-published entry 1, v3 its changed record; v4 removed it.
        assert listed["provenance"] == {
            "documents": [2, 3],
            "origins_checked": {"hub": 2},
            "exchange_attested": {},
        }
        assert listed["removed"] == {"changed": 1, "upstream": 1}
    (upstream,) = report["upstreams"]
    assert upstream["name"] == UPSTREAM
    assert upstream["pinned_root_sha256"] == fed.up_pin
    assert upstream["source"] == fed.url
    assert upstream["status"] == "verified"
    assert upstream["lists"] == {UP_MD5: "verified", UP_PDQ: "verified"}

    # The same, as text; and offline, the upstream read from a copy (no token needed).
    text = await audit_async(
        "verify",
        tree,
        "--root-sha256",
        fed.down_pin,
        "--witness",
        tmp_path / "witness.json",
        "--upstream",
        f"{UPSTREAM}={export(fed.upstream, tmp_path / 'upstream')}",
    )
    assert text.code == 0, text.stdout
    assert f"upstream {UPSTREAM} ({tmp_path / 'upstream'}): verified - root v1..v" in text.stdout
    assert f"(sha256 {fed.up_pin[:16]}…), lists {UP_MD5} verified, {UP_PDQ} verified" in (
        text.stdout
    )
    assert (
        text.stdout.count(
            "  provenance: 2 document(s), origins checked: 2 from upstreams, 0 from members"
        )
        == 2
    )
    assert text.stdout.rstrip().endswith("result: OK")


async def test_the_upstream_is_read_once_per_run_however_many_origins(
    federation: Federation, tmp_path: Path
) -> None:
    """Two lists, four origins in two upstream lists: the upstream's root v1, and each
    header of its lists, is read once in the run (the upstream's own count of what
    it answered)."""
    fed = federation
    await follow(fed.downstream)
    with fed.upstream_changes() as hub:
        (entry,) = [e for e in hub.entries.listed(UP_PDQ) if e.category == "ncii"]
        hub.entries.change(entry.entry, classification="severe")
        hub.publishing.publish()
    await follow(fed.downstream)
    tree = export(fed.downstream, tmp_path / "tree")

    def answered(route: str) -> float:
        return sample(
            fed.app, "hashhub_http_requests_total", route=route, method="GET", status="200"
        )

    routes = ("/root/{version}.json", "/lists/{list_id}/delta/{version}.json")
    before = {route: answered(route) for route in routes}
    out = await verify(fed, tree, tmp_path)
    assert out.code == 0, out.stdout
    origins = [by_list(out)[lid]["provenance"]["origins_checked"] for lid in (DOWN_PDQ, DOWN_MD5)]
    assert origins == [{"hub": 2}, {"hub": 2}]
    (upstream,) = out.json()["upstreams"]
    roots = len(upstream["roots"])
    # Each root once (and the walk's one miss, a 404); each list's 3 headers once.
    assert {route: answered(route) - before[route] for route in routes} == {
        routes[0]: roots,
        routes[1]: 2 * 3,
    }


# -- what only the chain catches -----------------------------------------------------


@pytest.mark.parametrize("lie", ["record", "root"])
async def test_an_upstream_entry_the_upstream_never_published_is_a_forged_origin(
    federation: Federation, tmp_path: Path, lie: str
) -> None:
    """The downstream signs a version claiming an upstream record: a fabricated line
    in the upstream's real header v1 at its real root (``record``), or a fabricated
    header at a root of its own making (``root``). Each proof is self-consistent, so
    every rule of §7.5 passes; only the upstream's own log shows the lie."""
    fed = federation
    await follow(fed.downstream)
    tree = export(fed.downstream, tmp_path / "tree")
    claimed = fabricated(f"hub:{UPSTREAM}")
    record = replace(claimed, entry_id="e-upstream", source_kind="import", source_ref="batch-1")
    real = upstream_header(fed, UP_PDQ, 1)
    if lie == "record":
        origin = UpstreamOrigin(UPSTREAM, UP_PDQ, record.line, real, 1, leaf_hash(real), ())
    else:
        header = DeltaHeader.from_bytes(upstream_header(fed, UP_PDQ, 2))
        fake = replace(header, created=header.created + timedelta(seconds=1)).to_bytes()
        sibling = hashlib.sha256(b"no such leaf").digest()
        origin = UpstreamOrigin(
            UPSTREAM, UP_PDQ, record.line, fake, 2, node_hash(sibling, leaf_hash(fake)), (sibling,)
        )
    version = forge(fed.downstream, tree, DOWN_PDQ, claimed, origin)

    out = await verify(fed, tree, tmp_path)
    assert out.code == EXIT_FAILED, out.stdout
    assert out.list_status() == {DOWN_MD5: "verified", DOWN_PDQ: "verified"}
    (finding,) = out.findings()
    assert finding["rule"] == "ForgedOrigin"
    assert finding["section"] == "PROTOCOL.md §7.5"
    assert finding["file"].startswith(f"lists/{DOWN_PDQ}/provenance/")
    message = finding["message"]
    assert f"entry e-fabricated (v{version}) claims {UPSTREAM}'s {UP_PDQ}" in message
    if lie == "record":
        assert "v1 does not add the record" in message
    else:
        assert "its root at size 2 is not the upstream log's root" in message
    assert by_list(out)[DOWN_PDQ]["provenance"]["origins_checked"] == {"hub": 2}


async def test_a_record_re_published_with_other_terms_than_the_upstreams_is_altered(
    federation: Federation, tmp_path: Path
) -> None:
    """The downstream re-publishes the upstream's real ``csam`` record — its real line,
    header and inclusion proof, so §7.5's rules and the upstream's own log all agree —
    as ``ncii``: §5.6 rule 2 says the upstream's terms travel unchanged."""
    fed = federation
    await follow(fed.downstream)
    tree = export(fed.downstream, tmp_path / "tree")
    first, second = upstream_header(fed, UP_PDQ, 1), upstream_header(fed, UP_PDQ, 2)
    with opened(fed.upstream) as hub:
        body = hub.files.get(body_path(UP_PDQ, DeltaHeader.from_bytes(second).body.sha256))
    assert body is not None
    (theirs,) = EntriesBody.from_bytes(body[0], "pdq").adds
    assert (theirs.category, theirs.classification) == ("csam", "confirmed")
    origin = UpstreamOrigin(
        UPSTREAM, UP_PDQ, theirs.line, second, 2,
        node_hash(leaf_hash(first), leaf_hash(second)), (leaf_hash(first),),
    )  # fmt: skip
    claimed = replace(
        theirs, entry_id="e-altered", category="ncii", source_kind="hub", source_ref=UPSTREAM,
        first_seen=utcnow().replace(microsecond=0),
    )  # fmt: skip
    version = forge(fed.downstream, tree, DOWN_PDQ, claimed, origin)

    out = await verify(fed, tree, tmp_path)
    assert out.code == EXIT_FAILED, out.stdout
    (finding,) = out.findings()
    assert finding["rule"] == "AlteredOrigin"
    assert finding["section"] == "PROTOCOL.md §7.5"
    assert finding["message"] == (
        f"entry e-altered (v{version}) claims {UPSTREAM}'s {UP_PDQ} v2, but re-published it "
        "as ncii/confirmed where the upstream's record says csam/confirmed"
    )


async def test_an_unreachable_upstream_leaves_the_audit_incomplete(
    federation: Federation, tmp_path: Path
) -> None:
    fed = federation
    await follow(fed.downstream)
    tree = export(fed.downstream, tmp_path / "tree")
    nowhere = f"http://127.0.0.1:{closed_port()}"

    out = await verify(fed, tree, tmp_path, "--upstream", f"{UPSTREAM}={nowhere}")
    assert out.code == EXIT_INCOMPLETE, out.stdout
    assert rules(out) == ["UnreachableUpstream", "UnreachableUpstream"]
    for finding in out.findings():
        assert finding["message"].startswith(f"upstream {UPSTREAM} ({nowhere}): ")
        assert f"{nowhere}/root/1.json" in finding["message"]
    (upstream,) = out.json()["upstreams"]
    assert (upstream["status"], upstream["roots"]) == ("incomplete", [])
    assert out.json()["ok"] is False
    # Not a pass: each list says how many origins it could not follow.
    assert by_list(out)[DOWN_PDQ]["provenance"]["origins_checked"] == {"hub": 1}


async def test_an_upstream_copy_is_read_from_the_pin_the_root_declares(
    federation: Federation, tmp_path: Path
) -> None:
    """``--upstream`` changes where an upstream is read, never its pin: another hub's
    tree given in its place fails from the pin, and no origin is taken from it."""
    fed = federation
    await follow(fed.downstream)
    tree = export(fed.downstream, tmp_path / "tree")
    impostor = export(fed.downstream, tmp_path / "impostor")

    out = await verify(fed, tree, tmp_path, "--upstream", f"{UPSTREAM}={impostor}")
    assert out.code == EXIT_FAILED, out.stdout
    findings = out.findings()
    assert len(findings) == 2
    for finding in findings:
        assert finding["rule"] not in ("UnreachableUpstream", "ForgedOrigin")
        assert finding["section"] == "PROTOCOL.md §13.1"
        assert finding["location"] == str(impostor / "root/1.json")
        assert finding["message"].startswith(f"upstream {UPSTREAM} ({impostor}): ")
    (upstream,) = out.json()["upstreams"]
    assert (upstream["pinned_root_sha256"], upstream["status"]) == (fed.up_pin, "failed")


async def test_a_mistaken_upstream_option_is_one_line_and_exit_1(
    federation: Federation, tmp_path: Path
) -> None:
    fed = federation
    tree = export(fed.downstream, tmp_path / "tree")
    for value, said in (
        (UPSTREAM, "expected NAME=PATH_OR_URL"),
        (f"{UPSTREAM}={tmp_path / 'nowhere'}", "no such folder"),
        (f"{UPSTREAM}=ftp://mirror.example/tree", "only http(s) URLs and folders"),
    ):
        out = await verify(fed, tree, tmp_path, "--upstream", value)
        assert out.code == 1, (value, out.stdout)
        assert said in out.stderr
        assert "Traceback" not in out.stderr


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_an_upstream_retraction_not_carried_over_in_time_is_late(
    federation: Federation, tmp_path: Path
) -> None:
    fed = federation
    await follow(fed.downstream)
    retracted = utcnow().replace(microsecond=0) + timedelta(minutes=1)
    with at_time(fed.upstream, retracted) as hub:
        (entry,) = [e for e in hub.entries.listed(UP_PDQ) if e.category == "ncii"]
        hub.entries.retract(entry.entry, "withdrawn")
        hub.publishing.publish()
    invalidate_caches(fed.app)
    with opened(fed.downstream) as hub:
        delay = hub.keys.root().policy.withdrawal_delay
    late = retracted + timedelta(seconds=delay, hours=1)
    # The downstream publishes a day later without following: it still holds the entry.
    with at_time(fed.downstream, late) as hub:
        draft = EntryDraft(
            ((DOWN_PDQ, pdq(101)), (DOWN_MD5, md5(101))), "ncii", "confirmed", source="import:b"
        )
        hub.entries.add(draft)
        hub.publishing.publish()
    with at_time(fed.upstream, late) as hub:
        hub.checkpoints.refresh()
    invalidate_caches(fed.app)
    tree = export(fed.downstream, tmp_path / "tree")

    out = await verify(fed, tree, tmp_path, at=late + timedelta(minutes=1))
    assert out.code == EXIT_FAILED, out.stdout
    assert rules(out) == ["LateUpstreamRetraction", "LateUpstreamRetraction"]
    deadline = format_time(retracted + timedelta(seconds=delay))
    for finding in out.findings():
        assert (
            f"which {UPSTREAM} removed at its v3, made {format_time(retracted)}"
            in (finding["message"])
        )
        assert f"is still listed at v3, made {format_time(late)}" in finding["message"]
        assert f"after the deadline {deadline}" in finding["message"]
    assert out.list_status() == {DOWN_MD5: "verified", DOWN_PDQ: "verified"}


# -- members' contributions ----------------------------------------------------------


def contributed(fed: Federation, key: SigningKey) -> None:
    """Node ``MEMBER`` of the downstream contributes an MD5; the operator accepts it."""
    doc = Contribution(
        node=MEMBER,
        seq=1,
        sent=utcnow().replace(microsecond=0),
        hashes={"md5": ContributedHash(md5(200))},
        category="ncii",
        classification="confirmed",
        review=Review("person", "actioned"),
    )
    data, sig = sign_contribution(doc, key)
    with opened(fed.downstream) as hub:
        hub.access.enrol_node(MEMBER, key.public, [DOWN_MD5])
        receipt = hub.contributions.receive(Principal("node", "node", MEMBER), data, sig)
        assert receipt.status == "received"
        hub.contributions.accept(MEMBER, 1, DOWN_MD5, "reviewer")
        hub.publishing.publish()


async def test_a_contribution_verifies_under_its_nodes_key_and_unverifiable_without(
    federation: Federation, tmp_path: Path
) -> None:
    fed = federation
    key = SigningKey.generate()
    contributed(fed, key)
    tree = export(fed.downstream, tmp_path / "tree")
    pem = write_pem(tmp_path / "member.pub.pem", key)

    out = await verify(fed, tree, tmp_path, "--node-key", f"{MEMBER}={pem}")
    assert out.code == 0, out.stdout
    assert by_list(out)[DOWN_MD5]["provenance"] == {
        "documents": [2],
        "origins_checked": {"member": 1},
        "exchange_attested": {},
    }
    assert out.json()["upstreams"] == []

    unknown = await verify(fed, tree, tmp_path)
    assert unknown.code == EXIT_INCOMPLETE, unknown.stdout
    (finding,) = unknown.findings()
    assert finding["rule"] == "Unverifiable"
    assert f"--node-key {MEMBER}=FILE" in finding["message"]


async def test_a_contribution_made_before_a_re_key_verifies_under_the_old_key(
    federation: Federation, tmp_path: Path
) -> None:
    """A node re-keyed after contributing: its contribution was signed with the key it
    held then. Given only the new key the auditor cannot verify it and says so under
    which key; given both (``--node-key`` twice), it verifies (PROTOCOL.md §7.5)."""
    fed = federation
    old, new = SigningKey.generate(), SigningKey.generate()
    contributed(fed, old)
    with opened(fed.downstream) as hub:
        hub.access.rekey(MEMBER, new.public)
    tree = export(fed.downstream, tmp_path / "tree")
    old_pem = write_pem(tmp_path / "old.pub.pem", old)
    new_pem = write_pem(tmp_path / "new.pub.pem", new)

    only_new = await verify(fed, tree, tmp_path, "--node-key", f"{MEMBER}={new_pem}")
    assert only_new.code == EXIT_FAILED, only_new.stdout
    (finding,) = only_new.findings()
    assert finding["rule"] == "ForgedContribution"
    assert (
        f"does not verify under the key given for {MEMBER} ({new.public.keyid[:16]}…"
        in (finding["message"])
    )

    both = await verify(
        fed,
        tree,
        tmp_path,
        "--node-key",
        f"{MEMBER}={new_pem}",
        "--node-key",
        f"{MEMBER}={old_pem}",
    )
    assert both.code == 0, both.stdout
    assert by_list(both)[DOWN_MD5]["provenance"]["origins_checked"] == {"member": 1}


async def test_a_contribution_signed_by_another_key_is_forged(
    federation: Federation, tmp_path: Path
) -> None:
    """The downstream publishes a contribution in its member's name, signed by a key
    of its own: the member's real key, from its platform, refuses it."""
    fed = federation
    key = SigningKey.generate()
    contributed(fed, key)
    tree = export(fed.downstream, tmp_path / "tree")
    doc = Contribution(
        node=MEMBER,
        seq=2,
        sent=utcnow().replace(microsecond=0),
        hashes={"pdq": ContributedHash(pdq(UNLISTED), 90)},
        category="ncii",
        classification="confirmed",
        review=Review("person", "actioned"),
    )
    origin = MemberOrigin(*sign_contribution(doc, SigningKey.generate()))
    version = forge(fed.downstream, tree, DOWN_PDQ, fabricated(f"member:{MEMBER}"), origin)
    pem = write_pem(tmp_path / "member.pub.pem", key)

    out = await verify(fed, tree, tmp_path, "--node-key", f"{MEMBER}={pem}")
    assert out.code == EXIT_FAILED, out.stdout
    (finding,) = out.findings()
    assert finding["rule"] == "ForgedContribution"
    assert finding["file"].startswith(f"lists/{DOWN_PDQ}/provenance/")
    assert f"entry e-fabricated (v{version}), contributed by node {MEMBER}" in finding["message"]
    assert "SignatureError" in finding["message"]
    # The honest contribution in the other list still verified.
    assert by_list(out)[DOWN_MD5]["provenance"]["origins_checked"] == {"member": 1}


# -- a version that names no provenance ----------------------------------------------


async def test_a_re_published_record_without_provenance_fails_the_list(
    federation: Federation, tmp_path: Path
) -> None:
    fed = federation
    await follow(fed.downstream)
    tree = export(fed.downstream, tmp_path / "tree")
    version = forge(fed.downstream, tree, DOWN_PDQ, fabricated(f"hub:{UPSTREAM}"), None)

    out = await verify(fed, tree, tmp_path)
    assert out.code == EXIT_FAILED, out.stdout
    assert out.list_status() == {DOWN_MD5: "verified", DOWN_PDQ: "failed"}
    (finding,) = out.findings()
    assert (finding["rule"], finding["section"]) == ("ConsistencyError", "PROTOCOL.md §7.5")
    assert finding["file"] == header_path(DOWN_PDQ, version)
    assert "names no provenance document" in finding["message"]
    assert "e-fabricated" in finding["message"]


async def test_a_provenance_document_missing_from_the_copy_fails_the_list(
    federation: Federation, tmp_path: Path
) -> None:
    fed = federation
    await follow(fed.downstream)
    tree = export(fed.downstream, tmp_path / "tree")
    shutil.rmtree(tree / "lists" / DOWN_MD5 / "provenance")

    out = await verify(fed, tree, tmp_path)
    assert out.code == EXIT_FAILED, out.stdout
    assert out.list_status() == {DOWN_MD5: "failed", DOWN_PDQ: "verified"}
    (finding,) = out.findings()
    assert (finding["rule"], finding["section"]) == ("MissingFileError", "PROTOCOL.md §7.5")
    assert finding["file"].startswith(f"lists/{DOWN_MD5}/provenance/")
    assert "header v2 names it" in finding["message"]
