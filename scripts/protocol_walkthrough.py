"""A walkthrough of the hashhub protocol: keys, three signed versions, verification.

Run by ``make demo-protocol``. It generates development keys, publishes three versions of
a list into ``demo-out/public`` exactly as a hub lays them out, verifies that
folder back with the same trust rules a node runs, shows that one flipped byte
is caught, and prints (and, where ``openssl`` exists, runs) the commands an
auditor would use to check a header's signature by hand.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from protocol import (
    ListHead,
    ListSpec,
    ListState,
    ListTrust,
    Policy,
    ProtocolError,
    Publisher,
    Role,
    Root,
    SigningKey,
    TrustedHub,
    body_path,
    checkpoint_path,
    header_path,
    root_files,
    root_path,
    sig_path,
    snapshot_path,
)
from protocol.keyfile import write_private_key, write_public_key

OUT = Path("demo-out/protocol")
LIST_ID = "demo-md5"


def step(text: str) -> None:
    print(f"\n== {text}")


def md5_of(label: str) -> bytes:
    """Stand-in content: the MD5 of a short label, as a platform would hash a file."""
    return hashlib.md5(label.encode(), usedforsecurity=False).digest()


def read(public: Path, path: str) -> bytes:
    return (public / path).read_bytes()


def main() -> int:
    if OUT.exists():
        shutil.rmtree(OUT)
    keydir, public = OUT / "keys", OUT / "public"
    keydir.mkdir(parents=True)
    public.mkdir()

    step("1. Keys: a 2-of-3 offline root role, one online key for each other role")
    roles = {"root": 3, "delta": 1, "checkpoint": 1, "timestamp": 1}
    keys: dict[str, list[SigningKey]] = {}
    for role, count in roles.items():
        keys[role] = [SigningKey.generate() for _ in range(count)]
        for i, key in enumerate(keys[role], start=1):
            name = f"{role}-{i}"
            write_private_key(keydir / f"{name}.key", key)
            write_public_key(keydir / f"{name}.pub.pem", key.public)
            mode = oct((keydir / f"{name}.key").stat().st_mode & 0o777)
            print(f"   {name:13} keyid {key.keyid[:16]}…  private key mode {mode}")

    t0 = datetime.now(UTC).replace(microsecond=0)
    root = Root(
        version=1,
        name="hub.demo.invalid",
        expires=t0 + timedelta(days=365),
        keys={k.keyid: k.public for ks in keys.values() for k in ks},
        roles={
            role: Role(tuple(k.keyid for k in ks), 2 if role == "root" else 1)
            for role, ks in keys.items()
        },
        lists={LIST_ID: ListSpec(LIST_ID, "md5", 0, label="demo", snapshot_every=2)},
        policy=Policy(max_checkpoint_age=3600),
    )
    files = root_files(root, keys["root"][:2])
    pin = hashlib.sha256(files[root_path(1)]).hexdigest()
    print(f"   root v1 signed by 2 of 3 root keys; nodes pin its SHA-256 {pin}")

    step("2. Publish three versions of list demo-md5 (body → header → sig → snapshot → checkpoint)")
    publisher = Publisher(root, keys)
    head = ListHead.empty(root, LIST_ID)
    changes = [
        ([], [md5_of(f"file-{i}") for i in range(5)]),
        ([md5_of("file-0")], [md5_of(f"file-{i}") for i in range(5, 8)]),
        ([], [md5_of("file-8"), md5_of("file-9")]),
    ]
    for n, (removes, adds) in enumerate(changes):
        publication = publisher.publish(
            head, removes=removes, adds=adds, now=t0 - timedelta(minutes=30 - 10 * n)
        )
        head = publication.head
        files.update(publication.files)
        rs = publication.header.result_state
        print(
            f"   v{publication.header.version}: -{len(removes)} +{len(adds)} → "
            f"{rs.count} hashes, state {rs.sha256[:16]}…"
        )
    # Re-issue the timestamp co-signature now, as the hub's schedule does.
    files[checkpoint_path(LIST_ID)] = publisher.refresh(head, t0)
    for path, data in files.items():
        target = public / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    print(f"   wrote {len(files)} files under {public}/")
    print("   checkpoint:")
    for line in read(public, checkpoint_path(LIST_ID)).decode().splitlines():
        print(f"     {line}")

    step("3. Verify the folder with the trust rules a node runs (pinned root, all or nothing)")
    hub = TrustedHub(
        read(public, root_path(1)), read(public, sig_path(root_path(1))), now=t0, pinned_sha256=pin
    )
    update = hub.begin_update(ListTrust(LIST_ID), read(public, checkpoint_path(LIST_ID)))
    for v in range(1, update.target + 1):
        hp = header_path(LIST_ID, v)
        update.add_header(read(public, hp), read(public, sig_path(hp)))
    print(f"   headers 1..{update.target} signed by the delta role; Merkle root reproduced")
    base = update.add_snapshot(2, read(public, snapshot_path(LIST_ID, 2)))
    for header in update.bodies_needed():
        update.add_body(header.version, read(public, body_path(LIST_ID, header.body.sha256)))
    state, trust = update.apply(base)
    print(
        f"   bootstrap from snapshot v2 + body v3: {state.count} hashes, state {trust.state.sha256}"
    )

    replay = hub.begin_update(ListTrust(LIST_ID), read(public, checkpoint_path(LIST_ID)))
    for v in range(1, replay.target + 1):
        hp = header_path(LIST_ID, v)
        replay.add_header(read(public, hp), read(public, sig_path(hp)))
    for header in replay.bodies_needed():
        replay.add_body(header.version, read(public, body_path(LIST_ID, header.body.sha256)))
    replayed, _ = replay.apply(ListState(16), check_every_version=True)
    print(f"   replay from empty gives the same state: {replayed == state}")
    snap_sha = hashlib.sha256(read(public, snapshot_path(LIST_ID, 2))).hexdigest()
    print(
        f"   sha256 of snapshot/2.bin equals header v2's result_state: "
        f"{snap_sha == update.header(2).result_state.sha256}"
    )

    step("4. One flipped byte in header v2 is caught before anything is applied")
    tampered = bytearray(read(public, header_path(LIST_ID, 2)))
    tampered[tampered.index(b'"removes":1') + 10] = ord("0")
    attempt = hub.begin_update(ListTrust(LIST_ID), read(public, checkpoint_path(LIST_ID)))
    attempt.add_header(
        read(public, header_path(LIST_ID, 1)), read(public, sig_path(header_path(LIST_ID, 1)))
    )
    try:
        attempt.add_header(bytes(tampered), read(public, sig_path(header_path(LIST_ID, 2))))
    except ProtocolError as e:
        print(f"   rejected: {type(e).__name__}: {e}")
    else:
        print("   NOT rejected — this is a bug")
        return 1

    step("5. Check header v1's signature by hand, with openssl alone")
    hp = header_path(LIST_ID, 1)
    sidecar = json.loads(read(public, sig_path(hp)))
    (OUT / "1.sig.bin").write_bytes(base64.b64decode(sidecar["signatures"][0]["sig"]))
    commands = [
        f"jq -r '.signatures[0].sig' {public}/{sig_path(hp)} | base64 -d > {OUT}/1.sig.bin",
        f"openssl pkeyutl -verify -pubin -inkey {keydir}/delta-1.pub.pem -rawin "
        f"-in {public}/{hp} -sigfile {OUT}/1.sig.bin",
    ]
    for command in commands:
        print(f"   $ {command}")
    if shutil.which("openssl"):
        result = subprocess.run(
            [
                "openssl",
                "pkeyutl",
                "-verify",
                "-pubin",
                "-inkey",
                str(keydir / "delta-1.pub.pem"),
                "-rawin",
                "-in",
                str(public / hp),
                "-sigfile",
                str(OUT / "1.sig.bin"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        print(f"   openssl says: {(result.stdout or result.stderr).strip()}")
    print(f"   $ sha256sum {public}/{snapshot_path(LIST_ID, 2)}   # = result_state.sha256 of v2")
    print(f"\nDone. Everything above is in {OUT}/; `make demo` runs a hub and a node.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
