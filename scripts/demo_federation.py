"""``make demo-federation``: three hubs and three platforms, every hop verifiable.

Everything is real and local: three hubs with generated keys serving on loopback,
three platforms' nodes, the auditor's command. The pictures are drawn here.

- The **helpline** (``helpline.example``) takes public submissions into its NCII
  collection; the **hotline** (``hotline.example``) lists what its analysts
  confirm in its CSAM collection; the **regional** hub (``regional.example``)
  follows the helpline's NCII lists and the hotline's CSAM lists and re-publishes
  them in its own collection, each record with its provenance.
- **platform-a** follows the helpline and the hotline directly (one node, two
  hubs); **platform-b** follows the regional hub; **platform-c** contributes to
  the helpline what its reviewers confirmed.

In order: a person submits a picture's hash on the helpline's page and the
operator accepts it; the hotline lists another picture; the regional hub follows
both and re-publishes them; platform-a matches each picture naming the hub it came
from, platform-b both through the regional hub; platform-c contributes a third
picture, the helpline accepts it, and it reaches the regional hub and both other
platforms; the person withdraws their picture, and one run of each follower later
neither platform matches it; the auditor verifies the regional hub's provenance
chain back to both origins, and the contribution under platform-c's own key; a
tampered copy in which the regional hub claims an entry the hotline never published
is caught. ``main`` returns what happened (``Told``), which the test asserts step by
step.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from hub.app import create_app as create_hub_app
from hub.appkeys import HUB
from hub.core import Hub, utcnow
from hub.following import FollowReport, follow_upstreams
from hub.http import after_publish
from node.api.keys import NODE, SESSION
from node.app import create_app as create_node_app
from node.config import write_secret
from node.imaging import hash_image
from node.service import Node, flush_acks, run_sync
from protocol import Entry
from protocol.keyfile import load_public_key
from protocol.provenance import Origin, Provenance, UpstreamOrigin
from scripts.demo import free_port, jpeg, picture, say, start, tell

HELPLINE, HOTLINE, REGIONAL = "helpline.example", "hotline.example", "regional.example"
NCII_PDQ, NCII_MD5 = "ncii-pdq", "ncii-md5"
CSAM_PDQ, CSAM_MD5 = "csam-pdq", "csam-md5"
REG_PDQ, REG_MD5 = "regional-pdq", "regional-md5"
COLLECTIONS = {
    HELPLINE: ("ncii", NCII_PDQ, NCII_MD5),
    HOTLINE: ("csam", CSAM_PDQ, CSAM_MD5),
    REGIONAL: ("regional", REG_PDQ, REG_MD5),
}
SEEDS = {"submitted": 11, "listed": 22, "contributed": 33, "never listed": 44}
"""The pictures of the story, drawn from these seeds."""

Match = tuple[str, str, str]
"""(hub, list, source) of one match, as a node answers it."""


@dataclass
class Told:
    """What the story saw happen, step by step."""

    carried: list[dict[str, dict[str, int]]] = field(default_factory=list)
    """Per run of the regional hub: per upstream, entries added, changed, retracted."""
    matches: dict[str, list[Match]] = field(default_factory=dict)
    """``"<platform>: <picture> (<when>)"`` → its matches."""
    contribution: str = ""
    """What ``hashhub-node contribution status`` said once the helpline decided."""
    audits: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``hashhub-audit verify --json`` of each audit: exit code and report."""


@dataclass
class Federation:
    """The hubs, the platforms, and where each is reachable."""

    out: Path
    urls: dict[str, str] = field(default_factory=dict)
    pins: dict[str, str] = field(default_factory=dict)
    apps: dict[str, web.Application] = field(default_factory=dict)
    runners: list[web.AppRunner] = field(default_factory=list)
    pictures: dict[str, bytes] = field(default_factory=dict)

    def home(self, name: str) -> Path:
        return self.out / name

    def admin(self, hub: str) -> dict[str, str]:
        token = (self.home(hub) / "admin.token").read_text().strip()
        return {"Authorization": f"Bearer {token}"}


def make_hub(home: Path, name: str) -> str:
    """A hub with one entries collection, an admin and an auditor token; its pin."""
    label, pdq_list, md5_list = COLLECTIONS[name]
    hub = Hub.init(
        home,
        name,
        root_keys=1,
        root_threshold=1,
        publish_interval=0,
        timestamp_interval=0,
        upstream_interval=0,
    )
    try:
        hub.roots.create_list(pdq_list, "pdq", label=label, list_format="entries")
        hub.roots.create_list(md5_list, "md5", label=label, list_format="entries")
        for role in ("admin", "auditor"):
            token = hub.access.create_operator_token(role, f"demo-{role}")
            write_secret(home / f"{role}.token", token)
        return hub.keys.root_sha256(1)
    finally:
        hub.close()


def enrol(hub_home: Path, node_id: str, public: Path, lists: list[str]) -> str:
    hub = Hub.open(hub_home)
    try:
        return hub.access.enrol_node(node_id, load_public_key(public), lists, who="demo")
    finally:
        hub.close()


async def operator(
    session: aiohttp.ClientSession, fed: Federation, hub: str, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    async with session.post(fed.urls[hub] + path, json=body, headers=fed.admin(hub)) as response:
        answer: dict[str, Any] = await response.json()
        if response.status not in (200, 201):
            raise RuntimeError(f"{hub} {path}: {response.status} {answer}")
        return answer


async def run(program: str, *args: str) -> tuple[int, str]:
    """Run one of the project's commands as its user would: its exit status and what
    it printed."""
    path = Path(sys.executable).with_name(program)
    process = await asyncio.create_subprocess_exec(
        str(path), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    return int(process.returncode or 0), output.decode()


async def command(program: str, *args: str) -> str:
    """``run`` a command that must succeed."""
    code, text = await run(program, *args)
    if code != 0:
        raise RuntimeError(f"{program} {' '.join(args)} exited {code}:\n{text}")
    return text


async def follow(fed: Federation, told: Told) -> dict[str, FollowReport]:
    """One run of the regional hub's follower on its database thread, as its scheduler's
    ``upstreams`` job runs it."""
    app = fed.apps[REGIONAL]
    async with aiohttp.ClientSession() as session:
        reports = await follow_upstreams(app[HUB].call, session=session, now=utcnow())
    published = [r for report in reports for r in report.published]
    if published:
        after_publish(app, published, "upstream")
    run: dict[str, dict[str, int]] = {}
    for report in reports:
        if report.problems:
            raise RuntimeError(f"following {report.upstream}: {report.problems}")
        c = report.carried
        assert c is not None
        run[report.upstream] = {
            "added": len(c.added),
            "changed": len(c.changed),
            "retracted": len(c.retracted),
        }
        tell(
            f"{REGIONAL} followed {report.upstream}: +{len(c.added)} ~{len(c.changed)} "
            f"-{len(c.retracted)} entries carried over"
        )
    for r in published:
        named = ", with the provenance of each" if r.adds else ""
        tell(f"{REGIONAL} published {r.list} v{r.version} (+{r.adds} -{r.removes}){named}")
    told.carried.append(run)
    return {r.upstream: r for r in reports}


async def sync(fed: Federation, platform: str, hub: str | None = None) -> None:
    app = fed.apps[platform]
    for o in await run_sync(app[NODE], app[SESSION], hub):
        change = f"v{o.from_version} → v{o.to_version}" if o.status == "updated" else ""
        where = f"{hub}/" if hub else ""
        tell(f"{platform}: {where}{o.list_id} {o.status} {change}".rstrip())
    await flush_acks(app[NODE], app[SESSION], hub=hub)


async def matches(fed: Federation, told: Told, platform: str, name: str, when: str) -> list[Match]:
    home = fed.home(platform)
    token = (home / "api-token").read_text().strip()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            fed.urls[platform] + "/v1/match",
            data=fed.pictures[name],
            headers={"Authorization": f"Bearer {token}", "Content-Type": "image/jpeg"},
        ) as response,
    ):
        body = await response.json()
    found = sorted((m["hub"], m["list"], m["source"]) for m in body["matches"])
    told.matches[f"{platform}: {name} ({when})"] = found
    shown = ", ".join(f"{h}/{lst} (source {src})" for h, lst, src in found) or "no match"
    tell(f"{platform} uploads the {name} picture: {shown}")
    return found


async def audit(fed: Federation, told: Told, name: str, tree: Path, *args: str) -> None:
    """``hashhub-audit verify --json`` of ``tree``: what it checked, its findings."""
    code, output = await run(
        "hashhub-audit", "verify", str(tree), "--witness", str(fed.out / f"{name}.witness"),
        "--json", *args,
    )  # fmt: skip
    report = json.loads(output)
    findings = [*report["findings"], *(f for lst in report["lists"] for f in lst["findings"])]
    told.audits[name] = {"exit": code, "report": report, "findings": findings}
    for lst in report["lists"]:
        checked = lst.get("provenance", {}).get("origins_checked", {})
        tell(f"{name}: {lst['list']} {lst['status']}, origins checked {checked or 'none'}")
    for up in report.get("upstreams", []):
        tell(f"{name}: upstream {up['name']} {up['status']} from the pin the root declares")
    for f in findings:
        tell(f"{name}: {f['rule']}: {f['message']}")
    tell(f"{name}: {'result: OK' if code == 0 else f'exit {code}, {len(findings)} finding(s)'}")


def forged_version(
    home: Path, tree: Path, list_id: str, entry: Entry, origin: Origin | None
) -> int:
    """Write into ``tree`` (a copy of the published tree of the hub in ``home``) one more
    version of ``list_id`` adding ``entry``, signed with that hub's own keys, naming a
    provenance document with ``origin`` (None: naming none): what a forging hub can
    sign. Its version number."""
    hub = Hub.open(home)
    try:
        head = hub.entries.head(list_id)
        publisher = hub.checkpoints.publisher(hub.keys.root())
    finally:
        hub.close()
    provenance = None
    if origin is not None:
        claimed = origin

        def provenance(version: int) -> Provenance:
            return Provenance(list_id, version, {entry.entry_id: claimed})

    made = publisher.publish_entries(head, adds=(entry,), now=utcnow(), provenance=provenance)
    for path, data in made.files.items():
        target = tree / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return made.header.version


def forge(fed: Federation, tree: Path) -> str:
    """A tampered copy of the regional hub's tree: one more version of its PDQ list,
    signed with its own keys, claiming an entry the hotline never published. The
    hotline's real header and proof are quoted, with a record line it never wrote,
    so every rule the version alone can check passes. Returns the forged entry id."""
    home = fed.home(REGIONAL)
    hub = Hub.open(home)
    try:
        store = hub.upstreams.store(HOTLINE)
        ((_, version),) = store.standing(CSAM_PDQ)
        proof = store.proofs(CSAM_PDQ, [version])[version]
    finally:
        hub.close()
    h = hash_image(fed.pictures["never listed"]).pdq
    now = utcnow().replace(microsecond=0)
    claimed = Entry(h, "e-never-published", "csam", "severe", "hub", HOTLINE, now)
    line = replace(claimed, entry_id="e-made-up", source_kind="import", source_ref="x").line
    origin = UpstreamOrigin(
        HOTLINE, CSAM_PDQ, line, proof.header, proof.size, proof.root, proof.proof, version
    )
    forged_version(home, tree, REG_PDQ, claimed, origin)
    return claimed.entry_id


async def main(out: Path) -> Told:
    """Tell the story in ``out`` (emptied first); what happened."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    fed = Federation(out)
    told = Told()
    fed.pictures = {name: jpeg(picture(seed)) for name, seed in SEEDS.items()}
    try:
        await _tell(fed, told)
    finally:
        for runner in reversed(fed.runners):
            await runner.cleanup()
    return told


async def _tell(fed: Federation, told: Told) -> None:
    say("Three clearinghouses start: a helpline, a hotline and a regional hub")
    for name in (HELPLINE, HOTLINE, REGIONAL):
        fed.pins[name] = make_hub(fed.home(name), name)
        port = free_port()
        fed.apps[name] = create_hub_app(fed.home(name), schedule=False)
        fed.runners.append(await start(fed.apps[name], port))
        fed.urls[name] = f"http://127.0.0.1:{port}"
        label, pdq_list, md5_list = COLLECTIONS[name]
        tell(f"{name} at {fed.urls[name]}: {label} collection ({pdq_list}, {md5_list})")

    say("The regional hub declares both as upstreams, is enrolled at each, selects")
    hub = Hub.open(fed.home(REGIONAL))
    try:
        keys = {}
        for name in (HELPLINE, HOTLINE):
            hub.roots.declare_upstream(name, fed.urls[name], fed.pins[name])
            lists = list(COLLECTIONS[name][1:])
            keys[name] = (hub.upstreams.follow(name, "regional", lists), lists)
    finally:
        hub.close()
    tokens = {name: enrol(fed.home(name), "regional", *keys[name]) for name in keys}
    hub = Hub.open(fed.home(REGIONAL))
    try:
        for name, token in tokens.items():
            hub.upstreams.set_token(name, token)
            category, up_pdq, up_md5 = COLLECTIONS[name]
            hub.upstreams.select(name, up_pdq, REG_PDQ, categories=[category])
            hub.upstreams.select(name, up_md5, REG_MD5, categories=[category])
            tell(
                f"{REGIONAL} re-publishes {name}'s {category} entries (pin {fed.pins[name][:16]}…)"
            )
    finally:
        hub.close()

    async with aiohttp.ClientSession() as session:
        say("A person submits their picture's hash on the helpline's page")
        pdq = hash_image(fed.pictures["submitted"]).pdq
        async with session.post(
            fed.urls[HELPLINE] + "/submit",
            data={"type": "pdq", "hash": pdq.hex(), "quality": "100"},
        ) as response:
            page = await response.text()
        case = _shown(_CASE, page, "case number")
        code = _shown(_CODE, page, "withdrawal code")
        tell(f"only the PDQ hash left their device; case {case}")
        await operator(
            session,
            fed,
            HELPLINE,
            f"/v1/admin/cases/{case.replace('-', '')}/accept",
            {"list": NCII_PDQ, "category": "ncii", "classification": "confirmed"},
        )
        await operator(session, fed, HELPLINE, "/v1/admin/publish", {})
        tell(f"the helpline's operator accepted it into {NCII_PDQ} and published")

        say("The hotline's analysts list another picture")
        pdq = hash_image(fed.pictures["listed"]).pdq
        await operator(
            session,
            fed,
            HOTLINE,
            "/v1/admin/entries",
            {
                "hashes": {CSAM_PDQ: pdq.hex()},
                "category": "csam",
                "classification": "severe",
                "source": "import:analysts",
            },
        )
        await operator(session, fed, HOTLINE, "/v1/admin/publish", {})
        tell(f"{HOTLINE} published it in {CSAM_PDQ}")

    say("The regional hub follows both: verified like a node, re-published with provenance")
    await follow(fed, told)

    say("Three platforms join")
    for platform, hub_name in (
        ("platform-a", HELPLINE),
        ("platform-b", REGIONAL),
        ("platform-c", HELPLINE),
    ):
        home = fed.home(platform)
        lists = list(COLLECTIONS[hub_name][1:])
        Node.init(
            home,
            node_id=platform,
            hub_url=fed.urls[hub_name],
            lists=lists,
            pinned_root_sha256=fed.pins[hub_name],
            ack_interval=0,
        ).close()
        write_secret(home / "hub-token", enrol(fed.home(hub_name), platform,
                                               home / "node.pub.pem", lists))  # fmt: skip
        tell(f"{platform} follows {hub_name}, pinned to its root v1")
    home = fed.home("platform-a")
    token_file = fed.out / "hotline-token"
    write_secret(
        token_file,
        enrol(fed.home(HOTLINE), "platform-a", home / "node.pub.pem", [CSAM_PDQ, CSAM_MD5]),
    )
    added = await command(
        "hashhub-node", "hub", "add", "hotline", fed.urls[HOTLINE], "--pin", fed.pins[HOTLINE],
        "--token-file", str(token_file), "--list", CSAM_PDQ, "--list", CSAM_MD5,
        "--home", str(home),
    )  # fmt: skip
    tell(f"platform-a: {added.strip().splitlines()[0]}")
    for platform in ("platform-a", "platform-b"):
        port = free_port()
        fed.apps[platform] = create_node_app(fed.home(platform), schedule=False)
        fed.runners.append(await start(fed.apps[platform], port))
        fed.urls[platform] = f"http://127.0.0.1:{port}"

    say("The platforms update and match: each match names the hub it came from")
    await sync(fed, "platform-a", "default")
    await sync(fed, "platform-a", "hotline")
    await sync(fed, "platform-b")
    for platform in ("platform-a", "platform-b"):
        for picture_name in ("submitted", "listed"):
            await matches(fed, told, platform, picture_name, "listed")

    say("platform-c contributes a picture its reviewers confirmed")
    contributed = fed.out / "contributed.jpg"
    contributed.write_bytes(fed.pictures["contributed"])
    sent = await command(
        "hashhub-node", "contribute", str(contributed), "--category", "ncii",
        "--classification", "confirmed", "--reviewed-by", "person", "--action", "actioned",
        "--home", str(fed.home("platform-c")),
    )  # fmt: skip
    for line in sent.strip().splitlines():
        tell(f"platform-c: {line.strip()}")
    async with aiohttp.ClientSession() as session:
        await operator(
            session,
            fed,
            HELPLINE,
            "/v1/admin/contributions/platform-c/1",
            {"decision": "accept", "list": NCII_PDQ},
        )
        await operator(session, fed, HELPLINE, "/v1/admin/publish", {})
    told.contribution = (
        await command(
            "hashhub-node", "contribution", "status", "1", "--home", str(fed.home("platform-c"))
        )
    ).strip()
    tell(f"platform-c: {told.contribution}")
    await follow(fed, told)
    await sync(fed, "platform-a", "default")
    await sync(fed, "platform-b")
    for platform in ("platform-a", "platform-b"):
        await matches(fed, told, platform, "contributed", "contributed")

    say("The person withdraws their picture on the helpline")
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            fed.urls[HELPLINE] + "/case/withdraw",
            data={"case": case.replace("-", ""), "code": code},
        ) as response,
    ):
        if response.status != 200:
            raise RuntimeError(f"withdrawal: {response.status} {await response.text()}")
    async with aiohttp.ClientSession() as session:
        await operator(session, fed, HELPLINE, "/v1/admin/publish", {})
    tell("withdrawn with the case number and the withdrawal code; the helpline published")
    await follow(fed, told)
    await sync(fed, "platform-a", "default")
    await sync(fed, "platform-b")
    for platform in ("platform-a", "platform-b"):
        await matches(fed, told, platform, "submitted", "withdrawn")
    await matches(fed, told, "platform-b", "listed", "withdrawn")

    say("An auditor verifies the regional hub's chain back to both origins")
    tree = _export(fed.home(REGIONAL), fed.out / "regional-tree")
    tokens_args = [
        arg
        for name in (HELPLINE, HOTLINE)
        for arg in ("--upstream-token", f"{name}={fed.home(name) / 'auditor.token'}")
    ]
    await audit(fed, told, "regional", tree, "--root-sha256", fed.pins[REGIONAL], *tokens_args)
    helpline_tree = _export(fed.home(HELPLINE), fed.out / "helpline-tree")
    await audit(
        fed, told, "helpline", helpline_tree, "--root-sha256", fed.pins[HELPLINE],
        "--node-key", f"platform-c={fed.home('platform-c') / 'node.pub.pem'}",
    )  # fmt: skip

    say("A tampered copy: the regional hub claims an entry the hotline never published")
    forged = forge(fed, tree)
    tell(f"{REGIONAL} signed a version adding {forged}, 'from {HOTLINE}', with a proof")
    await audit(fed, told, "tampered", tree, "--root-sha256", fed.pins[REGIONAL], *tokens_args)


def _export(home: Path, target: Path) -> Path:
    hub = Hub.open(home)
    try:
        hub.files.export(target)
    finally:
        hub.close()
    return target


_CASE = re.compile(r'id="case-number">([0-9a-f-]+)<')
_CODE = re.compile(r'id="withdrawal-code">([A-Z2-7-]+)<')


def _shown(pattern: re.Pattern[str], page: str, what: str) -> str:
    found = pattern.search(page)
    if found is None:
        raise RuntimeError(f"the submission page showed no {what}")
    return found.group(1)


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo-federation-out"))
    args = parser.parse_args(argv)
    told = asyncio.run(main(args.out))
    honest = all(told.audits[name]["exit"] == 0 for name in ("regional", "helpline"))
    caught = [f["rule"] for f in told.audits["tampered"]["findings"]] == ["ForgedOrigin"]
    return 0 if honest and caught else 1


if __name__ == "__main__":
    raise SystemExit(cli())
