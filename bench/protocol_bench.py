"""Protocol benchmarks: the state digest against SHA-256 itself, one verify+apply, and
what entry records cost against bare hashes.

Three questions, answered side by side in one run:

1. **How close is the state digest to the limit?** A list's state digest is SHA-256
   over its hashes sorted and concatenated (PROTOCOL.md). ``ListState`` keeps
   exactly those bytes, so ``ListState.digest()`` should cost what ``hashlib.sha256``
   costs over the same bytes. Rows: ``ListState.digest()``, ``StateDigest.of_bytes``
   and ``hashlib.sha256`` (the limit) for each size, plus the one-off bootstrap costs
   ``ListState.from_hashes`` (unsorted input) and ``ListState.from_snapshot`` (strict
   ascending check). Aim: the digest at ≥ 80 % of hashlib's speed.

2. **How long does a node take to verify and apply one delta?** A ``Publisher``
   publishes version 1 (the base, e.g. 1M hashes, with a snapshot) and then version 2
   (e.g. 10k additions) and version 3 (10k removals + 10k additions). A verifier
   holding version 1 (resp. 2) runs ``TrustedHub.begin_update`` with the new
   checkpoint, ``add_header``, ``add_body`` and ``apply``, timed end to end, and again
   in phases (``apply`` is ``check_base`` + ``ListState.apply`` + ``finish``). Aim:
   under 0.5 s for 10k changes on a 1M-hash state.

3. **What does metadata cost?** An ``entries`` list holds one record line per hash
   (the hash in hex, an entry id, three vocabulary terms, two times) where a
   ``hashes`` list holds the 32 bytes alone. For the same hashes (``--apply-base``,
   1M by default) the section sets the two side by side, each figure of the entries
   list also as a ratio to the bare one: snapshot bytes and the bytes the state holds
   in memory (traced by ``tracemalloc``; the snapshot it was read from is not
   counted, unless the state keeps it, as ``ListState`` does), the state digest,
   loading the snapshot (``EntryState.from_snapshot`` — grammar, vocabulary, order,
   each hash and entry once — against ``ListState.from_snapshot``), and the
   verify+apply of a body of ``--apply-changes`` additions (``EntriesBody.from_bytes``
   + ``check_vocabulary`` + ``check_times`` + ``EntryState.apply`` against
   ``DeltaBody.from_bytes`` + ``ListState.apply``). No aim: these are costs to
   know, not promises.

The timed code is the protocol's own. Only the reference bytes for the hashlib rows
are sorted with numpy (if installed) so that no extra copy of 10M Python objects is
needed; ``ListState.from_hashes`` must then produce the very same bytes.

Run: ``python bench/protocol_bench.py [--quick] [--sections digest,update,entries]
[--sizes 1000000,10000000] [--json]``.
"""

from __future__ import annotations

import argparse
import base64
import gc
import hashlib
import json
import os
import platform
import random
import ssl
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from protocol import (
    DeltaBody,
    EntriesBody,
    Entry,
    EntryState,
    ListHead,
    ListSpec,
    ListState,
    ListTrust,
    ListUpdate,
    Policy,
    Publication,
    Publisher,
    Role,
    Root,
    SigningKey,
    StateDigest,
    TrustedHub,
    Vocabulary,
    body_path,
    checkpoint_path,
    format_time,
    header_path,
    root_files,
    root_path,
    sig_path,
    snapshot_path,
)
from protocol.lists import HASH_TYPES

__all__ = ["DIGEST_AIM_PCT", "UPDATE_AIM_SECONDS", "Row", "machine", "main"]

WIDTH = 32
"""PDQ width: every hash is 32 bytes."""
LIST_ID = "bench-pdq"
DIGEST_AIM_PCT = 80.0
UPDATE_AIM_SECONDS = 0.5
DEFAULT_SIZES = (1_000_000, 10_000_000)
QUICK_SIZES = (100_000, 1_000_000)
FEWER_REPEATS_FROM = 5_000_000
"""From this many hashes on, the slow one-off builds run once instead of ``--repeats`` times."""
MB = 1_000_000
SECTIONS = ("digest", "update", "entries")


@dataclass(frozen=True)
class Row:
    """One printed figure.

    Attributes:
        section: ``digest``, ``build``, ``update`` or ``entries``.
        case: what was timed.
        hashes: hashes in the state.
        seconds: the best time over ``repeats`` runs.
        repeats: how many runs.
        mbytes: megabytes (10⁶ bytes) processed, for MB/s; ``None`` where it means nothing.
        pct_of_hashlib: hashlib's time over ours, in percent (digest rows only).
        note: the aim and whether it was met, or a remark.
    """

    section: str
    case: str
    hashes: int
    seconds: float
    repeats: int
    mbytes: float | None = None
    pct_of_hashlib: float | None = None
    note: str = ""

    @property
    def mb_per_s(self) -> float | None:
        return self.mbytes / self.seconds if self.mbytes is not None and self.seconds else None


# -- machine and timing -------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "openssl": ssl.OPENSSL_VERSION,
    }


def best_of(repeats: int, run: Callable[[], object]) -> float:
    """The shortest of ``repeats`` wall-clock runs of ``run`` (its result is dropped)."""
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def label(n: int) -> str:
    """``1000000`` → ``1M``, ``1010000`` → ``1.01M``, ``20000`` → ``20k``."""
    for unit, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n >= unit and (n * 100) % unit == 0:
            return f"{n / unit:g}{suffix}"
    return str(n)


# -- 1. state digest against hashlib --------------------------------------------------------


def sorted_unique(raw: bytes, width: int) -> bytes:
    """``raw``'s records sorted ascending and de-duplicated, as one ``bytes``.

    The reference for the hashlib rows. With numpy it never makes one Python object
    per record (numpy orders ``S<width>`` byte strings as unsigned bytes, like ``bytes``).
    """
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is an extra
        return b"".join(sorted({raw[i : i + width] for i in range(0, len(raw), width)}))
    records = np.unique(np.frombuffer(raw, dtype=f"S{width}"))
    return records.tobytes()


def _time_from_hashes(raw: bytes, expected: ListState, repeats: int) -> float:
    """Time ``ListState.from_hashes`` over ``raw``'s records in their random order."""
    hashes = [raw[i : i + WIDTH] for i in range(0, len(raw), WIDTH)]
    seconds = best_of(repeats, lambda: ListState.from_hashes(WIDTH, hashes))
    if ListState.from_hashes(WIDTH, hashes) != expected:
        raise AssertionError("ListState.from_hashes differs from the sorted reference bytes")
    return seconds


def digest_rows(n: int, repeats: int) -> list[Row]:
    """Digest and build rows for a state of ``n`` random PDQ-width hashes."""
    raw = os.urandom(n * WIDTH)
    data = sorted_unique(raw, WIDTH)
    count = len(data) // WIDTH
    size_mb = len(data) / MB
    build_repeats = repeats if n < FEWER_REPEATS_FROM else 1

    t_snapshot = best_of(build_repeats, lambda: ListState.from_snapshot(WIDTH, data))
    state = ListState.from_snapshot(WIDTH, data)

    expected = hashlib.sha256(data).hexdigest()
    if state.digest() != StateDigest(count, expected):
        raise AssertionError("ListState.digest() differs from hashlib.sha256 over its bytes")
    # Interleave the three so that drift in the machine's speed hits all alike.
    best = {"state": float("inf"), "of_bytes": float("inf"), "hashlib": float("inf")}
    runs: dict[str, Callable[[], object]] = {
        "state": state.digest,
        "of_bytes": lambda: StateDigest.of_bytes(data, WIDTH),
        "hashlib": lambda: hashlib.sha256(data).hexdigest(),
    }
    for _ in range(repeats):
        for key, run in runs.items():
            best[key] = min(best[key], best_of(1, run))

    t_hashes = _time_from_hashes(raw, state, build_repeats)
    del raw

    def pct(key: str) -> float:
        return 100.0 * best["hashlib"] / best[key]

    def aim(key: str) -> str:
        met = "met" if pct(key) >= DIGEST_AIM_PCT else "MISSED"
        return f"aim ≥ {DIGEST_AIM_PCT:.0f} %: {met}"

    return [
        Row(
            "digest",
            "ListState.digest()",
            count,
            best["state"],
            repeats,
            size_mb,
            pct("state"),
            aim("state"),
        ),
        Row(
            "digest",
            "StateDigest.of_bytes",
            count,
            best["of_bytes"],
            repeats,
            size_mb,
            pct("of_bytes"),
            aim("of_bytes"),
        ),
        Row(
            "digest",
            "hashlib.sha256 (limit)",
            count,
            best["hashlib"],
            repeats,
            size_mb,
            100.0,
            "same sorted bytes",
        ),
        Row(
            "build",
            "ListState.from_hashes (unsorted)",
            count,
            t_hashes,
            build_repeats,
            size_mb,
            note="one-off, bootstrap",
        ),
        Row(
            "build",
            "ListState.from_snapshot (strict)",
            count,
            t_snapshot,
            build_repeats,
            size_mb,
            note="one-off, bootstrap",
        ),
    ]


# -- 2. verify + apply of one delta ------------------------------------------------------


@dataclass
class _Hub:
    """A publisher's files and the keys behind them, at a fixed start time."""

    root: Root
    publisher: Publisher
    files: dict[str, bytes]
    start: datetime


def _make_hub(base: int) -> _Hub:
    roles = ("root", "delta", "checkpoint", "timestamp")
    keys = {role: SigningKey.from_seed(bytes([i + 1]) * 32) for i, role in enumerate(roles)}
    start = datetime(2026, 1, 1, tzinfo=UTC)
    # Version 1 carries the whole base in one body; let the policy cap fit it.
    body_bytes = 64 + base * (2 * WIDTH + 2)
    policy = Policy(max_body_bytes=max(Policy().max_body_bytes, body_bytes))
    root = Root(
        version=1,
        name="bench.example",
        expires=start + timedelta(days=365),
        keys={k.keyid: k.public for k in keys.values()},
        roles={role: Role((k.keyid,), 1) for role, k in keys.items()},
        lists={LIST_ID: ListSpec(LIST_ID, "pdq", 31, label="bench", snapshot_every=1)},
        policy=policy,
    )
    publisher = Publisher(root, {role: [k] for role, k in keys.items()})
    return _Hub(root, publisher, root_files(root, [keys["root"]]), start)


def _fresh_hashes(k: int, avoid: ListState) -> list[bytes]:
    raw = os.urandom(k * WIDTH)
    out = [raw[i : i + WIDTH] for i in range(0, len(raw), WIDTH)]
    return [h for h in set(out) if h not in avoid]


def _verifier(hub: _Hub) -> TrustedHub:
    path = root_path(1)
    return TrustedHub(
        hub.files[path], hub.files[sig_path(path)], now=hub.start + timedelta(minutes=10)
    )


def _begin(verifier: TrustedHub, trust: ListTrust, pub: Publication[ListState]) -> ListUpdate:
    """``begin_update`` with the publication's checkpoint and ``add_header`` of its header."""
    version = pub.header.version
    update = verifier.begin_update(trust, pub.files[checkpoint_path(LIST_ID)])
    hpath = header_path(LIST_ID, version)
    update.add_header(pub.files[hpath], pub.files[sig_path(hpath)])
    return update


def _body(pub: Publication[ListState]) -> bytes:
    return pub.files[body_path(LIST_ID, pub.header.body.sha256)]


def update_rows(base: int, changes: int, repeats: int) -> list[Row]:
    """Publish a base, then +changes, then −changes/+changes; time a verifier applying each."""
    hub = _make_hub(base)
    raw = os.urandom(base * WIDTH)
    head = ListHead.empty(hub.root, LIST_ID)
    first = hub.publisher.publish(
        head, adds=[raw[i : i + WIDTH] for i in range(0, len(raw), WIDTH)], now=hub.start
    )
    del raw
    verifier = _verifier(hub)

    boot, state, trust = _bootstrap(verifier, first, repeats)
    rows = [boot]
    head = first.head
    del first

    adds_only = hub.publisher.publish(
        head, adds=_fresh_hashes(changes, state), now=hub.start + timedelta(minutes=1)
    )
    rows += _time_update(verifier, trust, state, adds_only, f"+{label(changes)}", repeats)

    state2, trust2 = _apply_once(verifier, trust, state, adds_only)
    picks = random.SystemRandom().sample(range(state2.count), min(changes, state2.count))
    data2 = state2.to_bytes()
    removes = [data2[i * WIDTH : (i + 1) * WIDTH] for i in picks]
    both = hub.publisher.publish(
        adds_only.head,
        removes=removes,
        adds=_fresh_hashes(changes, state2),
        now=hub.start + timedelta(minutes=2),
    )
    name = f"-{label(len(removes))} +{label(changes)}"
    rows += _time_update(verifier, trust2, state2, both, name, repeats)
    return rows


def _bootstrap(
    verifier: TrustedHub, first: Publication[ListState], repeats: int
) -> tuple[Row, ListState, ListTrust]:
    """Take a new verifier to version 1 by its snapshot (an informative, one-off row)."""
    snapshot = first.files[snapshot_path(LIST_ID, 1)]

    def run() -> tuple[ListState, ListTrust]:
        update = _begin(verifier, ListTrust(LIST_ID), first)
        base_state = update.add_snapshot(1, snapshot)
        result: tuple[ListState, ListTrust] = update.apply(base_state)
        return result

    seconds = best_of(repeats, run)
    state, trust = run()
    row = Row(
        "update",
        "bootstrap: header + snapshot + from_snapshot",
        state.count,
        seconds,
        repeats,
        len(snapshot) / MB,
        note="one-off",
    )
    return row, state, trust


def _apply_once(
    verifier: TrustedHub, trust: ListTrust, state: ListState, pub: Publication[ListState]
) -> tuple[ListState, ListTrust]:
    update = _begin(verifier, trust, pub)
    update.add_body(pub.header.version, _body(pub))
    result: tuple[ListState, ListTrust] = update.apply(state)
    return result


def _time_update(
    verifier: TrustedHub,
    trust: ListTrust,
    state: ListState,
    pub: Publication[ListState],
    name: str,
    repeats: int,
) -> list[Row]:
    """The whole verify+apply of ``pub`` from (``trust``, ``state``), then its phases."""
    version = pub.header.version
    body = _body(pub)
    total = best_of(repeats, lambda: _apply_once(verifier, trust, state, pub))
    new_state, new_trust = _apply_once(verifier, trust, state, pub)
    if new_trust.state != pub.header.result_state or new_state.digest() != new_trust.state:
        raise AssertionError("the verifier's result differs from what the header signs")

    # The same steps as ListUpdate.apply, timed one by one.
    phases = dict.fromkeys(("header", "body", "base", "apply", "finish"), float("inf"))
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        update = _begin(verifier, trust, pub)
        t1 = time.perf_counter()
        update.add_body(version, body)
        t2 = time.perf_counter()
        update.check_base(state.digest())
        t3 = time.perf_counter()
        result = state
        for _header, delta in update.ordered_bodies():
            result = result.apply(delta.removes, delta.adds)
        t4 = time.perf_counter()
        update.finish(result.digest())
        t5 = time.perf_counter()
        for key, seconds in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            phases[key] = min(phases[key], seconds)

    n = state.count
    met = "met" if total < UPDATE_AIM_SECONDS else "MISSED"
    state_mb = n * WIDTH / MB
    return [
        Row(
            "update",
            f"{name}: verify+apply total",
            n,
            total,
            repeats,
            note=f"aim < {UPDATE_AIM_SECONDS} s: {met}",
        ),
        Row("update", f"{name}:   checkpoint + header sigs/checks", n, phases["header"], repeats),
        Row(
            "update",
            f"{name}:   body length + SHA-256 + parse",
            n,
            phases["body"],
            repeats,
            len(body) / MB,
        ),
        Row(
            "update",
            f"{name}:   base state digest (check_base)",
            n,
            phases["base"],
            repeats,
            state_mb,
        ),
        Row("update", f"{name}:   ListState.apply", n, phases["apply"], repeats),
        Row(
            "update",
            f"{name}:   result digest + finish",
            n,
            phases["finish"],
            repeats,
            new_state.count * WIDTH / MB,
        ),
    ]


# -- 3. what metadata costs: entry records against bare hashes -------------------------

PDQ = HASH_TYPES["pdq"]
VOCABULARY = Vocabulary(
    categories=("csam", "ncii", "terror"),
    classifications=("a1", "a2", "b1"),
    sources=("import", "member", "upstream"),
)


def _entry_id() -> str:
    """An id as the hub makes them: ``e-`` and 26 base32 characters."""
    return "e-" + base64.b32encode(os.urandom(16)).decode("ascii").rstrip("=").lower()


def _record_lines(hashes: Sequence[bytes], start: datetime) -> list[bytes]:
    """One record line per hash, as an import gives them: a fresh id each, the terms
    taken in turn, first seen a second apart in batches of 10k, every tenth with an
    expiry a year on. Written directly: a million ``Entry`` objects would time the
    bench's own set-up."""
    categories, classifications = VOCABULARY.categories, VOCABULARY.classifications
    lines = []
    for i, h in enumerate(hashes):
        seen = start + timedelta(seconds=i)
        expires = format_time(seen + timedelta(days=365)) if i % 10 == 0 else "-"
        lines.append(
            f"{h.hex()} {_entry_id()} {categories[i % len(categories)]} "
            f"{classifications[i % len(classifications)]} import:batch-{i // 10_000:04d} "
            f"{format_time(seen)} {expires}".encode("ascii")
        )
    lines.sort()
    return lines


def _new_entries(hashes: Sequence[bytes], seen: datetime) -> list[Entry]:
    return [
        Entry(h, _entry_id(), "ncii", "a2", "member", "node-1", seen, seen + timedelta(days=30))
        for h in hashes
    ]


def _held_bytes(build: Callable[[bytes], object], snapshot: bytes) -> int:
    """Bytes still allocated once ``build`` has read a fresh copy of ``snapshot``: what
    the state holds (the copy counts only if the state keeps it)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        state = build(bytes(bytearray(snapshot)))
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del state
    return held


def _times(x: float, base: float) -> str:
    return f"× {x / base:.1f}" if base else "× -"


def entries_rows(base: int, changes: int, repeats: int) -> list[Row]:
    """The same ``base`` PDQ hashes as a ``hashes`` list and as an ``entries`` list:
    bytes, digest, snapshot load, and verify+apply of ``changes`` additions."""
    build_repeats = repeats if base < FEWER_REPEATS_FROM else 1
    start = datetime(2026, 1, 1, tzinfo=UTC)
    raw = os.urandom(base * WIDTH)
    hashes = sorted({raw[i : i + WIDTH] for i in range(0, len(raw), WIDTH)})
    del raw
    n = len(hashes)
    bare_snapshot = b"".join(hashes)
    lines = _record_lines(hashes, start)
    entries_snapshot = b"\n".join(lines) + b"\n"
    del lines

    def load_bare(data: bytes) -> ListState:
        return ListState.from_snapshot(WIDTH, data)

    def load_entries(data: bytes) -> EntryState:
        return EntryState.from_snapshot(PDQ, data, VOCABULARY)

    t_load_bare = best_of(build_repeats, lambda: load_bare(bare_snapshot))
    t_load_entries = best_of(build_repeats, lambda: load_entries(entries_snapshot))
    bare, entries = load_bare(bare_snapshot), load_entries(entries_snapshot)
    if entries.hashes() != bare.to_bytes():
        raise AssertionError("the entries list's hashes differ from the bare list's")
    held_bare = _held_bytes(load_bare, bare_snapshot)
    held_entries = _held_bytes(load_entries, entries_snapshot)

    digest = {"bare": float("inf"), "entries": float("inf")}
    for _ in range(repeats):
        digest["bare"] = min(digest["bare"], best_of(1, bare.digest))
        digest["entries"] = min(digest["entries"], best_of(1, entries.digest))
    if entries.digest().sha256 != hashlib.sha256(entries_snapshot).hexdigest():
        raise AssertionError("EntryState.digest() differs from hashlib.sha256 over its snapshot")

    # A body of `changes` new hashes, as bare hashes and as entry records.
    fresh = [h for h in _fresh_hashes(changes, bare) if entries.find(h) is None]
    created = start + timedelta(days=60)
    bare_body = DeltaBody.build("pdq", [], fresh).to_bytes()
    entries_body = EntriesBody.build("pdq", adds=_new_entries(fresh, created)).to_bytes()

    def apply_bare() -> ListState:
        body = DeltaBody.from_bytes(bare_body, "pdq")
        return bare.apply(body.removes, body.adds)

    def apply_entries() -> EntryState:
        body = EntriesBody.from_bytes(entries_body, "pdq")
        body.check_vocabulary(VOCABULARY)
        body.check_times(created)
        return entries.apply(body)

    t_apply_bare = best_of(repeats, apply_bare)
    t_apply_entries = best_of(repeats, apply_entries)
    if apply_entries().hashes() != apply_bare().to_bytes():
        raise AssertionError("the two lists differ after the same additions")
    phases = dict.fromkeys(("parse", "checks", "apply"), float("inf"))
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        body = EntriesBody.from_bytes(entries_body, "pdq")
        t1 = time.perf_counter()
        body.check_vocabulary(VOCABULARY)
        body.check_times(created)
        t2 = time.perf_counter()
        entries.apply(body)
        t3 = time.perf_counter()
        for key, seconds in zip(phases, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            phases[key] = min(phases[key], seconds)

    snap_b, snap_e = len(bare_snapshot) / MB, len(entries_snapshot) / MB
    body_b, body_e = len(bare_body) / MB, len(entries_body) / MB
    name = f"+{label(len(fresh))}"
    return [
        Row(
            "entries",
            "load: ListState.from_snapshot (bare)",
            n,
            t_load_bare,
            build_repeats,
            snap_b,
            note=f"snapshot {snap_b:.1f} MB; state holds {held_bare / MB:.1f} MB",
        ),
        Row(
            "entries",
            "load: EntryState.from_snapshot (entries)",
            n,
            t_load_entries,
            build_repeats,
            snap_e,
            note=(
                f"{_times(t_load_entries, t_load_bare)} bare; snapshot {snap_e:.1f} MB "
                f"({_times(snap_e, snap_b)}); state holds {held_entries / MB:.1f} MB "
                f"({_times(held_entries, held_bare)})"
            ),
        ),
        Row("entries", "digest: ListState.digest() (bare)", n, digest["bare"], repeats, snap_b),
        Row(
            "entries",
            "digest: EntryState.digest() (entries)",
            n,
            digest["entries"],
            repeats,
            snap_e,
            note=f"{_times(digest['entries'], digest['bare'])} bare",
        ),
        Row(
            "entries",
            f"{name}: DeltaBody.from_bytes + ListState.apply",
            n,
            t_apply_bare,
            repeats,
            body_b,
            note=f"body {body_b:.2f} MB",
        ),
        Row(
            "entries",
            f"{name}: EntriesBody verify + EntryState.apply",
            n,
            t_apply_entries,
            repeats,
            body_e,
            note=(
                f"{_times(t_apply_entries, t_apply_bare)} bare; body {body_e:.2f} MB "
                f"({_times(body_e, body_b)})"
            ),
        ),
        Row("entries", f"{name}:   EntriesBody.from_bytes", n, phases["parse"], repeats, body_e),
        Row("entries", f"{name}:   check_vocabulary + check_times", n, phases["checks"], repeats),
        Row("entries", f"{name}:   EntryState.apply", n, phases["apply"], repeats),
    ]


# -- output ---------------------------------------------------------------------------


def format_table(rows: Sequence[Row], info: dict[str, Any]) -> str:
    lines = [
        f"machine: {info['platform']} | {info['cpu']} | {info['cpu_count']} CPUs | "
        f"{info['python']} | {info['openssl']}",
        "",
    ]
    header = (
        f"{'section':<7}  {'case':<48}  {'hashes':>6}  {'seconds':>9}  {'MB/s':>7}  "
        f"{'% hashlib':>9}  {'best of':>7}  note"
    )
    lines += [header, "-" * len(header)]
    section = rows[0].section if rows else ""
    for row in rows:
        if row.section != section:
            lines.append("")
            section = row.section
        rate = f"{row.mb_per_s:,.0f}" if row.mb_per_s is not None else "-"
        pct = f"{row.pct_of_hashlib:.1f}" if row.pct_of_hashlib is not None else "-"
        lines.append(
            f"{row.section:<7}  {row.case:<48}  {label(row.hashes):>6}  {row.seconds:>9.4f}  "
            f"{rate:>7}  {pct:>9}  {row.repeats:>7}  {row.note}".rstrip()
        )
    return "\n".join(lines)


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text}") from e
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes must be positive")
    return sizes


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be ≥ 1")
    return value


def _sections(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in names if name not in SECTIONS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"sections are a comma-separated choice of {', '.join(SECTIONS)}"
        )
    return names


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="protocol_bench",
        description=(
            "State digest against hashlib, verify+apply of one delta, and entry records "
            "against bare hashes."
        ),
    )
    parser.add_argument(
        "--sections",
        type=_sections,
        default=SECTIONS,
        help="which to run, comma-separated (default digest,update,entries)",
    )
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=DEFAULT_SIZES,
        help="state sizes for the digest rows, comma-separated (default 1000000,10000000)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: sizes 100000,1000000 (overrides --sizes)"
    )
    parser.add_argument(
        "--apply-base",
        type=_positive,
        default=1_000_000,
        help="hashes in the state a delta is applied to, and in the entries section's "
        "lists (default 1000000)",
    )
    parser.add_argument(
        "--apply-changes",
        type=_positive,
        default=10_000,
        help="additions (and, in the second update case, removals) per delta (default 10000)",
    )
    parser.add_argument("--repeats", type=_positive, default=3, help="best of N (default 3)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = QUICK_SIZES
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine()
    rows: list[Row] = []
    if "digest" in args.sections:
        for n in args.sizes:
            rows += digest_rows(n, args.repeats)
    if "update" in args.sections:
        rows += update_rows(args.apply_base, args.apply_changes, args.repeats)
    if "entries" in args.sections:
        rows += entries_rows(args.apply_base, args.apply_changes, args.repeats)
    if args.json:
        doc = {
            "machine": info,
            "argv": list(argv if argv is not None else sys.argv[1:]),
            "aims": {
                "digest_pct_of_hashlib_min": DIGEST_AIM_PCT,
                "update_seconds_max": UPDATE_AIM_SECONDS,
            },
            "rows": [asdict(row) | {"mb_per_s": row.mb_per_s} for row in rows],
        }
        print(json.dumps(doc, indent=2))
    else:
        print(format_table(rows, info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
