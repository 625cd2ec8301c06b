"""``make demo``: a hub and a node on this machine, a list, a match, a takedown count.

Everything is real and local: the hub's HTTP service and the node's match API run
on loopback; keys are generated; the pictures are drawn here (no test data is
needed). In order:

1. a hub is created (``demo-out/hub``) with a PDQ list and an MD5 list, and a
   picture's PDQ hash is published as version 1;
2. a node is created (``demo-out/node``), enrolled with its public key, pinned to
   root v1's SHA-256, and synchronised: every signature, the Merkle root and the
   state digest are checked by the trust rules before anything is applied;
3. the platform sends a re-encoded, resized copy of the picture to the node's match
   API: it matches; an unrelated picture does not;
4. the platform records that it took the copy down; the node signs an ack with
   its counters and the hub shows the takedown;
5. retroactive: the platform registered content earlier that the hub lists only
   now; after the next sync the node tells the platform by a signed webhook.

``--serve`` leaves both services running until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import io
import json
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from PIL import Image, ImageDraw

from hub.app import create_app as create_hub_app
from hub.core import Hub
from hub.intake import Intake
from node.app import create_app as create_node_app
from node.config import write_secret
from node.imaging import hash_image
from node.service import Node, deliver_webhooks, flush_acks, run_sync
from protocol.keyfile import load_public_key

PDQ_LIST = "demo-pdq"
MD5_LIST = "demo-md5"


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


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


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def main(out: Path, serve: bool) -> int:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    listed = picture(1)
    later = picture(2)
    unrelated = picture(7)

    say("1. A hub with a PDQ list; one picture's hash is published as version 1")
    hub = Hub.init(
        out / "hub",
        "hub.demo.invalid",
        root_keys=3,
        root_threshold=2,
        publish_interval=0,
        timestamp_interval=0,
    )
    hub.create_list(PDQ_LIST, "pdq", label="demo")
    hub.create_list(MD5_LIST, "md5", label="demo")
    listed_hashes = hash_image(jpeg(listed))
    print(f"   PDQ {listed_hashes.pdq.hex()} (quality {listed_hashes.pdq_quality})")
    hub.stage(
        PDQ_LIST,
        adds=[
            Intake(
                listed_hashes.pdq, quality=listed_hashes.pdq_quality, source="demo", category="demo"
            )
        ],
        who="demo",
    )
    for result in hub.publish(who="demo"):
        print(f"   published {result['list']} v{result['version']}: {result['count']} hash(es)")
    pin = hub.root_sha256(1)
    print(f"   root v1 SHA-256 (nodes pin this): {pin}")
    hub.close()
    hub_port, node_port, hook_port = free_port(), free_port(), free_port()
    hub_url = f"http://127.0.0.1:{hub_port}"
    hub_runner = await start(create_hub_app(out / "hub", schedule=False), hub_port)
    print(f"   hub serving on {hub_url}")

    say("2. A node: new key, enrolled, pinned, synchronised through the trust rules")
    received: list[dict[str, Any]] = []
    node = Node.init(
        out / "node",
        node_id="platform-demo",
        hub_url=hub_url,
        lists=[PDQ_LIST, MD5_LIST],
        pinned_root_sha256=pin,
        webhook_url=f"http://127.0.0.1:{hook_port}/hashhub",
        ack_interval=0,
    )
    hub = Hub.open(out / "hub")
    token = hub.enrol_node(
        "platform-demo",
        load_public_key(out / "node" / "node.pub.pem"),
        [PDQ_LIST, MD5_LIST],
        who="demo",
    )
    hub.close()
    node.token = token
    write_secret(out / "node" / "hub-token", token)
    node.register_content("post-4711", {"pdq": [hash_image(jpeg(later)).pdq]})
    print("   the platform registered content 'post-4711' (its hashes only) for later")
    async with aiohttp.ClientSession() as session:
        for o in await run_sync(node, session):
            print(f"   {o.list_id}: {o.status}, v{o.from_version} → v{o.to_version}")
        node.close()

        secret = (out / "node" / "webhook-secret").read_text().strip()
        receiver = web.Application()

        async def hook(request: web.Request) -> web.Response:
            body = await request.read()
            expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            ok = hmac.compare_digest(expected, request.headers.get("Hashhub-Webhook-Signature", ""))
            received.append({"valid_signature": ok, **json.loads(body)})
            return web.Response(status=204)

        receiver.router.add_post("/hashhub", hook)
        hook_runner = await start(receiver, hook_port)
        node_runner = await start(create_node_app(out / "node", schedule=False), node_port)
        api = f"http://127.0.0.1:{node_port}"
        api_token = (out / "node" / "api-token").read_text().strip()
        auth = {"Authorization": f"Bearer {api_token}"}
        print(f"   node match API on {api}")

        say("3. The platform checks two uploads with the node's match API")
        copy = jpeg(listed.resize((640, 480)), quality=60)
        for label, data in (
            ("re-encoded, resized copy", copy),
            ("unrelated picture", jpeg(unrelated)),
        ):
            async with session.post(
                f"{api}/v1/match", data=data, headers={**auth, "Content-Type": "image/jpeg"}
            ) as resp:
                answer = await resp.json()
            found = answer["matches"]
            print(
                f"   {label}: {len(found)} match(es)"
                + "".join(
                    f"\n     list {m['list']} v{m['version']} distance {m['distance']}"
                    f" match id {m['match_id']}"
                    for m in found
                )
            )
            if label.startswith("re-encoded"):
                if not found:
                    print("   expected a match — this is a bug")
                    return 1
                match_id = found[0]["match_id"]

        say("4. The platform takes it down; the node acks; the hub counts it")
        async with session.post(
            f"{api}/v1/matches/{match_id}/outcome", json={"outcome": "actioned"}, headers=auth
        ) as resp:
            print(f"   outcome recorded: {(await resp.json())}")
        node = Node.open(out / "node")
        node.enqueue_acks()
        confirmed, failed = await flush_acks(node, session)
        print(f"   signed acks confirmed by the hub: {confirmed} (failed {failed})")
        hub = Hub.open(out / "hub")
        for entry in hub.status()["lists"]:
            for n in entry["nodes"]:
                if n["applied_version"] is None:
                    print(f"   hub sees {n['node']} on {entry['id']}: nothing published yet")
                    continue
                print(
                    f"   hub sees {n['node']} on {entry['id']} v{n['applied_version']}"
                    f" (lag {n['lag']}): {n['counts']}"
                )

        say("5. Retroactive: the hub lists content the platform already hosts")
        later_hash = hash_image(jpeg(later))
        hub.stage(
            PDQ_LIST, adds=[Intake(later_hash.pdq, quality=later_hash.pdq_quality)], who="demo"
        )
        hub.publish(who="demo")
        hub.close()
        await asyncio.sleep(1.1)  # the hub caches its checkpoint for up to a second
        for o in await run_sync(node, session):
            print(f"   {o.list_id}: {o.status}, v{o.from_version} → v{o.to_version}")
        delivered, _ = await deliver_webhooks(node, session)
        print(f"   webhooks delivered: {delivered}")
        for event in received:
            print(
                f"   platform received: content {event['content_id']} is on list {event['list']}"
                f" v{event['version']} (distance {event['distance']}),"
                f" HMAC valid: {event['valid_signature']}"
            )
        await flush_acks(node, session)
        node.close()

        say("6. An auditor checks the hub from public keys alone")
        hub = Hub.open(out / "hub")
        auditor_token = hub.create_operator_token("auditor", "demo-auditor", who="demo")
        hub.close()
        audit = Path(sys.executable).with_name("hashhub-audit")
        common = ["--root-sha256", pin, "--token", auditor_token]
        witness = ["--witness", str(out / "audit-witness.json")]
        node_key = ["--node-key", f"platform-demo={out / 'node' / 'node.pub.pem'}"]
        for args in (["verify", hub_url, *common, *witness], ["acks", hub_url, *common, *node_key]):
            print(f"   $ hashhub-audit {args[0]} {hub_url} …")
            process = await asyncio.create_subprocess_exec(
                str(audit), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
            )
            output, _ = await process.communicate()
            for line in output.decode().splitlines():
                print(f"     {line}")
            if process.returncode != 0:
                print(f"   hashhub-audit {args[0]} exited {process.returncode} — this is a bug")
                return 1
        if serve:
            print(f"\nServing: hub {hub_url}, node {api} (token in {out}/node/api-token).")
            print("Ctrl-C stops.")
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
        await node_runner.cleanup()
        await hook_runner.cleanup()
    await hub_runner.cleanup()
    print(
        f"\nDone. Hub and node homes are in {out}/. `make demo-protocol` walks through the "
        "signed files by hand; `make test` runs the suite."
    )
    return 0 if received else 1


def cli() -> int:
    parser = argparse.ArgumentParser(description="Run a hub and a node together and show a match.")
    parser.add_argument("--out", type=Path, default=Path("demo-out"))
    parser.add_argument("--serve", action="store_true", help="keep both services running")
    args = parser.parse_args()
    try:
        return asyncio.run(main(args.out, args.serve))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    raise SystemExit(cli())
