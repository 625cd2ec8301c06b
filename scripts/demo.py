"""``make demo``: the whole story on this machine, told in plain words.

Everything is real and local: a hub with generated keys, two platforms' nodes, an
untrusted mirror serving the hub's exported files, the hub's public submission
page, the nodes' match APIs, a platform's webhook receiver and the auditor's
command. The pictures are drawn here; no test data is needed. In order:

1. a clearinghouse starts: a hub with a picture list (PDQ) and a video list (MD5),
   seeded with hashes of pictures and videos drawn here, published as version 1
   and exported to a mirror (a plain static file server the nodes do not trust);
2. two platforms join: each runs a node, pinned to root v1's SHA-256; they fetch
   every immutable file from the mirror and only checkpoints from the hub, and
   verify everything before applying it; one of them registers what it hosts;
3. a person reports a picture without sending it: only the hash reaches the
   hub's submission page (the page computes it in the browser; here the same
   hash is computed in Python) and they get a case number;
4. an operator accepts the case and publishes version 2;
5. the nodes update; the platform that already hosts the picture is told by a
   signed webhook, and takes it down;
6. someone uploads a re-encoded copy to the other platform: blocked;
7. both nodes acknowledge with signed counters; the hub counts the takedowns,
   and the person's case shows the picture is listed;
8. an auditor checks the mirror's files and the acks from public keys alone.

Then it leaves everything running and prints where (the operator dashboard with
a login token, a node's status page, the submission page) until Ctrl-C;
``--no-serve`` stops at the end instead (the test does that).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import io
import json
import re
import shutil
import socket
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from PIL import Image, ImageDraw

from hub.app import create_app as create_hub_app
from hub.core import Hub
from hub.intake import Intake
from node.app import NODE
from node.app import create_app as create_node_app
from node.config import write_secret
from node.imaging import hash_image
from node.service import Node, deliver_webhooks, flush_acks, run_sync
from protocol.keyfile import load_public_key

PDQ_LIST = "ncii-pdq"
MD5_LIST = "ncii-md5"
HUB_NAME = "hub.demo.invalid"
PHOTOS = "photos-example"
VIDEOS = "videos-example"
REPORTED = 99
"""Seed of the picture the person reports (already hosted on the photo platform)."""


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def tell(text: str) -> None:
    print(f"   {text}", flush=True)


def picture(seed: int, size: tuple[int, int] = (800, 600)) -> Image.Image:
    """A deterministic picture with structure (shapes, gradients) for PDQ to see."""
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    w, h = size
    for y in range(h):
        shade = (y * 255 // h + seed * 37) % 256
        draw.line([(0, y), (w, y)], fill=(shade, (shade * 3 + seed) % 256, 255 - shade))
    for i in range(12):
        x0 = (seed * 97 + i * 131) % (w - 100)
        y0 = (seed * 53 + i * 71) % (h - 100)
        colour = ((seed * 40 + i * 20) % 256, (i * 60) % 256, (seed * 90 + i * 15) % 256)
        if (seed + i) % 2:
            draw.ellipse([x0, y0, x0 + 60 + i * 7, y0 + 50 + i * 5], fill=colour)
        else:
            draw.rectangle([x0, y0, x0 + 90 - i * 3, y0 + 40 + i * 6], fill=colour)
    return image


def video(seed: int) -> bytes:
    """Stand-in bytes of a video file (MD5 lists match files exactly)."""
    return hashlib.sha256(f"demo video {seed}".encode()).digest() * 4096


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


@dataclass
class Mirror:
    """A plain static file server over the hub's export: what a CDN would be."""

    root: Path
    served: Counter[str] = field(default_factory=Counter)

    def app(self) -> web.Application:
        @web.middleware
        async def count(request: web.Request, handler: Any) -> web.StreamResponse:
            response: web.StreamResponse = await handler(request)
            if response.status == 200:
                self.served[request.path.rsplit("/", 2)[-2]] += 1
            return response

        app = web.Application(middlewares=[count])
        app.router.add_static("/", self.root)
        return app


@dataclass
class Platform:
    """One participating platform: its node home, match API and webhook inbox."""

    name: str
    home: Path
    lists: list[str]
    api: str = ""
    api_token: str = ""
    inbox: list[dict[str, Any]] = field(default_factory=list)
    runners: list[web.AppRunner] = field(default_factory=list)
    app: web.Application | None = None

    @property
    def node(self) -> Node:
        """The node behind the running match API (its indexes follow every update)."""
        assert self.app is not None
        return self.app[NODE]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_token}"}


def publish(hub_home: Path, mirror: Path, who: str) -> list[dict[str, Any]]:
    """Publish what is staged, then export the tree to the mirror (as a cron job would)."""
    hub = Hub.open(hub_home)
    try:
        results = hub.publishing.publish(who=who)
        hub.files.export(mirror)
    finally:
        hub.close()
    return [r.to_dict() for r in results]


async def join(platform: Platform, hub_url: str, mirror_url: str, pin: str, hub_home: Path) -> None:
    """A platform installs a node, pins root v1, is enrolled, and serves its match API."""
    webhook_port = free_port()
    node = Node.init(
        platform.home,
        node_id=platform.name,
        hub_url=hub_url,
        mirrors=[mirror_url],
        lists=platform.lists,
        pinned_root_sha256=pin,
        webhook_url=f"http://127.0.0.1:{webhook_port}/hashhub",
        ack_interval=0,
    )
    hub = Hub.open(hub_home)
    try:
        token = hub.access.enrol_node(
            platform.name,
            load_public_key(platform.home / "node.pub.pem"),
            platform.lists,
            who="demo",
        )
    finally:
        hub.close()
    node.token = token
    write_secret(platform.home / "hub-token", token)
    node.close()
    secret = (platform.home / "webhook-secret").read_text().strip()

    async def webhook(request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        valid = hmac.compare_digest(expected, request.headers.get("Hashhub-Webhook-Signature", ""))
        platform.inbox.append({"valid_signature": valid, **json.loads(body)})
        return web.Response(status=204)

    receiver = web.Application()
    receiver.router.add_post("/hashhub", webhook)
    platform.runners.append(await start(receiver, webhook_port))
    api_port = free_port()
    platform.app = create_node_app(platform.home, schedule=False)
    platform.runners.append(await start(platform.app, api_port))
    platform.api = f"http://127.0.0.1:{api_port}"
    platform.api_token = (platform.home / "api-token").read_text().strip()


async def update(platform: Platform, session: aiohttp.ClientSession) -> None:
    for o in await run_sync(platform.node, session):
        change = f"v{o.from_version} → v{o.to_version}" if o.status == "updated" else ""
        tell(f"{platform.name}: {o.list_id} {o.status} {change}".rstrip())
    await flush_acks(platform.node, session)


async def audit(args: list[str]) -> int:
    """Run ``hashhub-audit`` as an auditor would, indenting what it prints."""
    command = Path(sys.executable).with_name("hashhub-audit")
    process = await asyncio.create_subprocess_exec(
        str(command), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    for line in output.decode().splitlines():
        print(f"     {line}")
    return int(process.returncode or 0)


async def main(out: Path, serve: bool) -> int:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    hub_home, mirror_dir = out / "hub", out / "mirror"
    reported = picture(REPORTED)
    reported_hashes = hash_image(jpeg(reported))

    say("1. A clearinghouse starts")
    hub = Hub.init(
        hub_home,
        HUB_NAME,
        root_keys=3,
        root_threshold=2,
        publish_interval=0,
        timestamp_interval=0,
    )
    hub.roots.create_list(PDQ_LIST, "pdq", label="NCII pictures")
    hub.roots.create_list(MD5_LIST, "md5", label="NCII videos")
    seeds = [hash_image(jpeg(picture(seed))) for seed in range(1, 21)]
    hub.lists.stage(
        PDQ_LIST,
        adds=[Intake(h.pdq, quality=h.pdq_quality, source="demo seed") for h in seeds],
        who="demo",
    )
    hub.lists.stage(
        MD5_LIST,
        adds=[Intake(hashlib.md5(video(s), usedforsecurity=False).digest()) for s in range(5)],
        who="demo",
    )
    pin = hub.keys.root_sha256(1)
    operator_token = hub.access.create_operator_token("publisher", "demo-operator", who="demo")
    auditor_token = hub.access.create_operator_token("auditor", "demo-auditor", who="demo")
    hub.close()
    for r in publish(hub_home, mirror_dir, "demo"):
        tell(f"published {r['list']} version {r['version']}: {r['count']} hashes")
    tell("the hub signed each version with its delta key, logged it in a Merkle tree,")
    tell("and signed a checkpoint of that tree; its root of trust is root v1, whose")
    tell(f"SHA-256 every platform pins: {pin}")
    hub_port, mirror_port = free_port(), free_port()
    hub_url, mirror_url = f"http://127.0.0.1:{hub_port}", f"http://127.0.0.1:{mirror_port}"
    hub_runner = await start(create_hub_app(hub_home, schedule=False), hub_port)
    mirror = Mirror(mirror_dir)
    mirror_runner = await start(mirror.app(), mirror_port)
    tell(f"hub on {hub_url}; its exported files on an untrusted mirror at {mirror_url}")

    photos = Platform(PHOTOS, out / PHOTOS, [PDQ_LIST, MD5_LIST])
    videos = Platform(VIDEOS, out / VIDEOS, [PDQ_LIST, MD5_LIST])
    ok = True
    async with aiohttp.ClientSession() as session:
        say("2. Two platforms join")
        for platform in (photos, videos):
            await join(platform, hub_url, mirror_url, pin, hub_home)
            tell(f"{platform.name}: node key made, enrolled at the hub, root v1 pinned")
        photos.node.registry.register("post-4711", {"pdq": [reported_hashes.pdq]})
        tell(f"{PHOTOS} registers the hashes of what it hosts, e.g. post-4711 (a picture)")
        for platform in (photos, videos):
            await update(platform, session)
        tell(
            f"the mirror served {sum(mirror.served.values())} files (roots, headers, "
            "signatures, snapshots); the hub only the checkpoints — the nodes trust neither,"
        )
        tell("they check every signature, the Merkle root and the state digest first")

        say("3. A person reports a picture without sending it")
        tell("on the hub's submission page the browser computes the picture's PDQ hash;")
        tell("only the hash and its quality are posted (here: the same hash, from Python)")
        async with session.post(
            f"{hub_url}/submit",
            data={
                "type": "pdq",
                "hash": reported_hashes.pdq.hex(),
                "quality": str(reported_hashes.pdq_quality),
            },
        ) as resp:
            page = await resp.text()
        found = re.search(r'id="case-number">([0-9a-f-]+)<', page)
        if resp.status != 200 or found is None:
            tell(f"the submission failed (HTTP {resp.status}) — this is a bug")
            return 1
        case = found.group(1).replace("-", "")
        tell(f"case number {found.group(1)}: no name, no email, no picture was sent")

        say("4. An operator reviews the case and publishes")
        hub = Hub.open(hub_home)
        try:
            hub.cases.review(case, accept=True, list_id=PDQ_LIST, who="demo-operator")
        finally:
            hub.close()
        tell(f"accepted into {PDQ_LIST} (on the dashboard's review queue)")
        for r in publish(hub_home, mirror_dir, "demo-operator"):
            tell(f"published {r['list']} version {r['version']}: {r['count']} hashes")
        await asyncio.sleep(1.1)  # the hub keeps a checkpoint in memory for up to a second

        say("5. The platforms update; one already hosts the picture")
        for platform in (photos, videos):
            await update(platform, session)
        delivered, _ = await deliver_webhooks(photos.node, session)
        tell(f"{PHOTOS}'s node delivered {delivered} webhook(s)")
        for event in photos.inbox:
            tell(
                f"{PHOTOS} is told: its content {event['content_id']} is on {event['list']} "
                f"v{event['version']} (distance {event['distance']}); "
                f"HMAC signature valid: {event['valid_signature']}"
            )
            async with session.post(
                f"{photos.api}/v1/matches/{event['match_id']}/outcome",
                json={"outcome": "actioned"},
                headers=photos.auth,
            ) as resp:
                tell(f"{PHOTOS} takes it down and records it: HTTP {resp.status}")
        ok &= bool(photos.inbox) and all(e["valid_signature"] for e in photos.inbox)

        say("6. Someone uploads a copy to the other platform")
        copy = jpeg(reported.resize((640, 480)), quality=60)
        unrelated = jpeg(picture(7 * REPORTED))
        for label, data in (
            ("a resized, re-encoded copy", copy),
            ("an unrelated picture", unrelated),
        ):
            async with session.post(
                f"{videos.api}/v1/match",
                data=data,
                headers={**videos.auth, "Content-Type": "image/jpeg"},
            ) as resp:
                matches = (await resp.json())["matches"]
            verdict = "no match, allowed"
            for m in matches:
                verdict = f"matches {m['list']} v{m['version']} at distance {m['distance']}"
                async with session.post(
                    f"{videos.api}/v1/matches/{m['match_id']}/outcome",
                    json={"outcome": "blocked"},
                    headers=videos.auth,
                ) as outcome:
                    verdict += f", blocked (HTTP {outcome.status})"
            tell(f"{label}: {verdict}")
            if label.startswith("a resized"):
                ok &= bool(matches)
            else:
                ok &= not matches

        say("7. The platforms acknowledge; the hub counts; the person checks the case")
        for platform in (photos, videos):
            platform.node.acks.enqueue()
            confirmed, _ = await flush_acks(platform.node, session)
            tell(f"{platform.name}: {confirmed} signed ack(s) confirmed by the hub")
        hub = Hub.open(hub_home)
        try:
            for entry in hub.reports.status().lists:
                if entry.id == PDQ_LIST:
                    totals = entry.totals
                    tell(
                        f"hub totals for {PDQ_LIST}: taken down {totals['actioned']}, "
                        f"blocked {totals['blocked']}, matched {totals['matched']}"
                    )
                    ok &= totals["actioned"] >= 1 and totals["blocked"] >= 1
            status = hub.cases.get(case)
        finally:
            hub.close()
        tell(
            f"case {found.group(1)}: {status.status}, in {status.list} since "
            f"version {status.published_version}"
        )

        say("8. An auditor checks everything from public keys alone")
        tell(f"$ hashhub-audit verify {mirror_url} --root-sha256 {pin[:16]}…")
        code = await audit(
            ["verify", mirror_url, "--root-sha256", pin, "--witness", str(out / "witness.json")]
        )
        tell(f"$ hashhub-audit acks {hub_url} --root-sha256 {pin[:16]}… --token … --node-key …")
        code |= await audit(
            [
                "acks",
                hub_url,
                "--root-sha256",
                pin,
                "--token",
                auditor_token,
                "--node-key",
                f"{PHOTOS}={photos.home / 'node.pub.pem'}",
                "--node-key",
                f"{VIDEOS}={videos.home / 'node.pub.pem'}",
            ]
        )
        ok &= code == 0

        if serve and ok:
            print(
                "\nEverything is still running:\n"
                f"   operator dashboard  {hub_url}/dashboard  (log in with {operator_token})\n"
                f"   submission page     {hub_url}/submit\n"
                f"   node status page    {photos.api}/status/  "
                f"(log in with {photos.api_token})\n"
                "Ctrl-C stops.",
                flush=True,
            )
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
        for platform in (photos, videos):
            for runner in platform.runners:
                await runner.cleanup()
    await mirror_runner.cleanup()
    await hub_runner.cleanup()
    if not ok:
        print("\nSomething above did not happen as it should — this is a bug.")
        return 1
    print(f"\nDone. The hub, the mirror and both nodes are in {out}/.")
    return 0


def cli() -> int:
    parser = argparse.ArgumentParser(description="The whole hashhub story on this machine.")
    parser.add_argument("--out", type=Path, default=Path("demo-out"))
    parser.add_argument(
        "--no-serve", action="store_true", help="stop at the end instead of serving until Ctrl-C"
    )
    args = parser.parse_args()
    try:
        return asyncio.run(main(args.out, not args.no_serve))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    raise SystemExit(cli())
