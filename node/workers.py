"""``hashhub-node run --workers N``: N processes serving one node's match API over one store.

One machine, one node home, one verified store (SQLite in WAL mode, which many
processes read and write, each transaction waiting its turn for the write lock up
to ``node.store.BUSY_TIMEOUT``), and N processes answering on one address:

- **The parent** (``run_workers``) opens N listening sockets on the address with
  ``SO_REUSEPORT`` (so the kernel spreads new connections over them, and a port in
  use is one clear error before any worker starts), starts N workers with
  ``python -m node.worker_process``, each given its own socket, and then only watches.
  SIGTERM or SIGINT: it sends SIGTERM to every worker, waits for each to shut down
  cleanly, and exits 0. **A worker that dies** (a crash, the out-of-memory killer)
  is reported by its number, pid and status, the others are stopped the same clean
  way, and the parent exits 1: the node never runs on unnoticed with fewer
  workers, or without the one that syncs; the supervisor that started it (systemd's
  ``Restart=``, a container's restart policy) starts it again whole.
- **Worker 0** runs the node exactly as ``--workers 1`` does: the schedule (sync,
  acks, outbox, stale alarm) and the API. **Workers 1 to N-1** only serve the API.
- **Every worker** keeps its own match indexes. ``worker_context`` runs a loop in
  each, every ``FOLLOW_INTERVAL`` seconds: the worker asks SQLite whether
  another connection committed anything (``NodeStore.commits_elsewhere``, a counter read
  without touching a table), and if so whether a list's stored version moved; only
  the lists that moved are read from the store, their new indexes built on a
  thread (the old one answers meanwhile) and swapped in. A version worker 0
  applied is matched by every worker within about a second, and so is one that
  ``hashhub-node sync`` applied beside them (worker 0 included: its own updates it
  indexes as it applies them, ``Node.absorb``, and ``Matching.follow`` leaves an
  index this loop already brought to that version as it is).
- **Counts.** Match events and outcomes are written by the request that makes them,
  in its own transaction, whichever worker serves it. The ``checked`` counts of
  misses are kept in memory (``Matching.write_checked``): each worker writes its
  own every ``FOLLOW_INTERVAL`` seconds and when it stops. An ack carries the
  totals in the store when worker 0 signs it, its own misses written just before;
  another worker's misses of the last second are in the next ack instead. Acks
  carry cumulative totals, so nothing is lost and nothing counted twice.
- If the parent disappears without stopping them (killed with SIGKILL), each worker
  sees it within ``FOLLOW_INTERVAL`` seconds and shuts down cleanly on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from types import FrameType

from aiohttp import web

from edge.http import CleanupContext
from node.api.keys import NODE
from node.errors import NodeError
from node.fleet import Worker
from node.hubs import shown_list
from node.matching import build_index, index_frames
from node.service import Node

__all__ = [
    "FOLLOW_INTERVAL",
    "MAX_WORKERS",
    "STOP_TIMEOUT",
    "WorkerDiedError",
    "listening_sockets",
    "run_workers",
    "take_up",
    "worker_context",
]

log = logging.getLogger("hashhub.node")

FOLLOW_INTERVAL = 0.5
"""Seconds between a worker's looks at the store (new versions; its misses' counts)."""
STOP_TIMEOUT = 120.0
"""Seconds a worker is given to stop after SIGTERM (worker 0 lets a running update
finish first) before it is killed."""
MAX_WORKERS = 64


class WorkerDiedError(NodeError):
    """A worker exited without being asked to: the others were stopped."""


# -- in every worker ----------------------------------------------------------------------


async def take_up(node: Node) -> list[str]:
    """Bring this process's indexes to the versions another process applied, and to
    the hubs ``node.toml`` names now (``hub add``, ``hub remove``).

    Only the lists whose stored version differs from the indexed one are read; each
    new index is built on a thread, so this worker's loop keeps answering with the
    old index until the new one is swapped in. Returns the lists taken up
    (``list vN``; ``hub/list vN`` for a hub other than ``default``).
    """
    taken = []
    for hub in list(node.hubs.values()):
        stale = hub.matching.stale_lists()
        root = hub.newest_root() if stale else None
        if root is None:
            continue
        for list_id in stale:
            spec = root.lists.get(list_id)
            if spec is None:
                continue
            stored = hub.store.stored_list(list_id, spec.hash_type)
            frames = index_frames(hub.store, spec, stored)
            index, intact = await asyncio.to_thread(build_index, spec, stored, frames)
            if hub.matching.versions.get(list_id, 0) >= stored.trust.version:
                continue  # worker 0's own update got there first (``Node.absorb``)
            hub.matching.install(stored, index, intact)
            taken.append(f"{shown_list(hub.name, list_id)} v{stored.trust.version}")
    return taken


async def _keep_up(app: web.Application, worker: Worker, parent: int) -> None:
    node = app[NODE]
    seen: int | None = None
    while True:
        await asyncio.sleep(FOLLOW_INTERVAL)
        if os.getppid() != parent:
            log.warning("worker %d: the parent process is gone; stopping", worker.index)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        try:
            added, removed = node.follow_config()  # hashhub-node hub add|remove
            if added or removed:
                log.info("worker %d follows the hubs %s", worker.index, ", ".join(node.hubs))
            node.matching.write_checked()
            now = node.store.commits_elsewhere()
            if now != seen:
                seen = now
                taken = await take_up(node)
                if taken:
                    log.info("worker %d took up %s", worker.index, ", ".join(taken))
        except Exception:
            seen = None
            log.exception("worker %d: following the store failed", worker.index)


def worker_context(worker: Worker) -> CleanupContext:
    """The loop ``_keep_up`` of one worker of several, for ``create_app``."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_keep_up(app, worker, os.getppid()))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return context


# -- the parent ---------------------------------------------------------------------------


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` sockets listening on ``host:port`` together (``SO_REUSEPORT``).

    Raises:
        OSError: the address cannot be bound (in use by another program, not local).
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(address)
            sock.listen(128)
    except OSError as e:
        for sock in sockets:
            sock.close()
        raise OSError(e.errno, f"cannot listen on {host}:{port}: {e.strerror}") from e
    return sockets


def _start(home: Path, worker: Worker, sock: socket.socket) -> subprocess.Popen[bytes]:
    fd = sock.fileno()
    return subprocess.Popen(  # noqa: S603 - this interpreter, this module
        [
            sys.executable,
            "-m",
            "node.worker_process",
            str(home),
            *map(str, (worker.index, worker.count, fd)),
        ],
        pass_fds=[fd],
        start_new_session=True,  # a terminal's Ctrl-C reaches the parent, which stops them
    )


def _ended(worker: int, process: subprocess.Popen[bytes]) -> str:
    code = process.returncode
    how = f"signal {-code}" if code < 0 else f"status {code}"
    return f"worker {worker} (pid {process.pid}) exited with {how}"


def _stop(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to every worker still running, then wait for each (killed after
    ``STOP_TIMEOUT``)."""
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.error("pid %d did not stop within %.0f s; killed", process.pid, STOP_TIMEOUT)
            process.kill()
            process.wait()


def run_workers(home: Path, host: str, port: int, count: int) -> None:
    """Serve the node in ``home`` from ``count`` processes until SIGTERM or SIGINT.

    Raises:
        OSError: the address cannot be bound.
        WorkerDiedError: a worker exited unasked, or did not stop cleanly.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    sockets = listening_sockets(host, port, count)
    stopping: list[int] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        del frame
        stopping.append(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    processes: list[subprocess.Popen[bytes]] = []
    died: str | None = None
    try:
        for index, sock in enumerate(sockets):
            processes.append(_start(home, Worker(index, count), sock))
            sock.close()  # the worker holds it now: if it dies, the kernel stops routing to it
        log.info(
            "serving on %s:%d from %d workers (pids %s); worker 0 runs the schedule",
            host,
            port,
            count,
            ", ".join(str(p.pid) for p in processes),
        )
        while not stopping and died is None:
            for index, process in enumerate(processes):
                if process.poll() is not None:
                    died = _ended(index, process)
                    break
            else:
                time.sleep(0.1)
    finally:
        if died is not None:
            log.error("%s; stopping the others", died)
        _stop(processes)
        for sock in sockets:
            sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if died is not None:
        raise WorkerDiedError(f"{died}; the other workers were stopped")
    unclean = [
        _ended(index, process)
        for index, process in enumerate(processes)
        if process.returncode not in (0, -signal.SIGTERM)
    ]
    if unclean:
        raise WorkerDiedError("; ".join(unclean))
    log.info("all %d workers stopped", count)
