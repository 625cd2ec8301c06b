"""The upload bench's baseline: python-threatexchange's PDQ matching behind aiohttp.

What a platform would run without hashhub, matching the way Meta's HMA does: one
``PDQIndex`` (the ``threatexchange`` package's PDQ index, built with
``PDQIndex.build`` from ``(hex, id)`` entries, as ``bench/matcher_bench.py`` builds
it) queried one hash per call, and for a picture ``PdqSignal.hash_from_bytes`` (PIL
decodes the whole picture, ``pdqhash`` hashes it), on a worker thread as the node
hashes its uploads. It answers ``POST /v1/match`` with the node's request shapes
(JSON ``{"hashes": [{"type": "pdq", "hash": hex}]}`` or an image's bytes) and the
same ``Authorization: Bearer`` check, so that one load generator script drives both
servers and the difference is the matching path, not the protocol.

It is served the way ``hashhub-node run --workers N`` is served: the parent binds N
sockets to one port with ``SO_REUSEPORT`` before any worker starts (so no connection
lands on a worker that is still building its index: it waits in that socket's
backlog), starts N worker processes each given one socket, and on SIGTERM stops
them and exits 0. Every answer carries ``Bench-Worker`` (the worker's number), so a
caller can see that every worker answers.

Run: ``python bench/pytx_baseline.py --hashes FILE --token-file FILE --port P
[--workers N]``; ``FILE`` holds the list's 32-byte hashes end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from aiohttp import web

__all__ = ["WORKER_HEADER", "create_app", "main"]

WIDTH = 32
WORKER_HEADER = "Bench-Worker"
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
"""The node's default ``max_upload_bytes``."""

INDEX: web.AppKey[Any] = web.AppKey("index", object)
HASHES: web.AppKey[bytes] = web.AppKey("hashes", bytes)
TOKEN: web.AppKey[str] = web.AppKey("token", str)
WORKER: web.AppKey[int] = web.AppKey("worker", int)


def _error(status: int, message: str) -> web.Response:
    return web.json_response(
        {"error": {"status": status, "code": "bad_request", "message": message}}, status=status
    )


def build_index(data: bytes) -> Any:
    """``PDQIndex.build`` over the list, each entry's id its row number."""
    import faiss
    from threatexchange.signal_type.pdq.pdq_index import PDQIndex

    faiss.omp_set_num_threads(1)  # one query per call: no threads, as in matcher_bench
    text = data.hex()
    step = 2 * WIDTH
    return PDQIndex.build([(text[i : i + step], i // step) for i in range(0, len(text), step)])


def _query(app: web.Application, hashes: list[str]) -> list[dict[str, Any]]:
    index, data = app[INDEX], app[HASHES]
    found = []
    for query in hashes:
        for match in index.query(query):
            row = int(match.metadata)
            found.append(
                {
                    "hash": data[row * WIDTH : (row + 1) * WIDTH].hex(),
                    "query": query,
                    "distance": int(match.similarity_info.distance),
                }
            )
    return found


def _pdq_of_picture(data: bytes) -> str:
    from threatexchange.signal_type.pdq.signal import PdqSignal

    return str(PdqSignal.hash_from_bytes(data))


async def post_match(request: web.Request) -> web.StreamResponse:
    """Hashes (JSON) or a picture's bytes → the listed PDQ hashes within 31 bits."""
    if request.content_type == "application/json":
        try:
            body = json.loads(await request.read())
            hashes = [str(item["hash"]).lower() for item in body["hashes"]]
        except (ValueError, KeyError, TypeError):
            return _error(400, "expected {'hashes': [{'type': 'pdq', 'hash': hex}]}")
        if not hashes or any(len(h) != 2 * WIDTH for h in hashes):
            return _error(400, "a PDQ hash is 64 hex digits")
    elif request.content_type.startswith("image/"):
        data = await request.read()
        try:
            pdq = await asyncio.to_thread(_pdq_of_picture, data)
        except OSError as e:
            return _error(400, f"cannot decode the picture: {e}")
        hashes = [pdq] if pdq else []  # "": below PdqSignal's quality threshold
    else:
        return _error(415, "send application/json hashes or an image")
    return web.json_response({"matches": _query(request.app, hashes), "hashes": {"pdq": hashes}})


async def healthz(request: web.Request) -> web.StreamResponse:
    del request
    return web.json_response({"ok": True})


@web.middleware
async def bearer_and_worker(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """The node's API token check (constant time), and which worker answered."""
    if request.path != "/healthz":
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {request.app[TOKEN]}".encode()):
            response: web.StreamResponse = _error(401, "a valid bearer token is required")
            response.headers[WORKER_HEADER] = str(request.app[WORKER])
            return response
    response = await handler(request)
    response.headers[WORKER_HEADER] = str(request.app[WORKER])
    return response


def create_app(data: bytes, token: str, worker: int = 0) -> web.Application:
    """The baseline app over the list ``data`` (32-byte hashes end to end)."""
    app = web.Application(middlewares=[bearer_and_worker], client_max_size=MAX_UPLOAD_BYTES)
    app[HASHES] = data
    app[INDEX] = build_index(data)
    app[TOKEN] = token
    app[WORKER] = worker
    app.router.add_post("/v1/match", post_match)
    app.router.add_get("/healthz", healthz)
    return app


def _listening(port: int, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
        sockets.append(sock)
    return sockets


def serve_workers(args: argparse.Namespace) -> int:
    """The parent: N sockets on one port, one worker process per socket, stop on SIGTERM."""
    sockets = _listening(args.port, args.workers)
    stopping: list[int] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        del frame
        stopping.append(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    workers = []
    for index, sock in enumerate(sockets):
        fd = sock.fileno()
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    f"{index}:{fd}",
                    "--hashes",
                    str(args.hashes),
                    "--token-file",
                    str(args.token_file),
                ],
                pass_fds=[fd],
            )
        )
        sock.close()
    died = False
    while not stopping and not died:
        died = any(w.poll() is not None for w in workers)
        time.sleep(0.1)
    for w in workers:
        if w.poll() is None:
            w.send_signal(signal.SIGTERM)
    codes = [w.wait(timeout=60) for w in workers]
    return 1 if died or any(c not in (0, -signal.SIGTERM) for c in codes) else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--hashes", type=Path, required=True, help="the list's hashes, raw")
    parser.add_argument("--token-file", type=Path, required=True, help="the bearer token")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # INDEX:FD, set by the parent
    args = parser.parse_args(argv)
    if args.worker is None:
        return serve_workers(args)
    index, fd = (int(part) for part in args.worker.split(":"))
    app = create_app(
        args.hashes.read_bytes(), args.token_file.read_text(encoding="utf-8").strip(), index
    )
    web.run_app(app, sock=socket.socket(fileno=fd), print=None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
