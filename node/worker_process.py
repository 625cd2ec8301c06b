"""One worker of ``hashhub-node run --workers N``, as its own process.

``node.workers`` (the parent's side) starts each worker as ``python -m
node.worker_process`` with the listening socket it opened; this module serves the
node's app on it. It is apart from ``node.workers`` because it needs ``node.app``,
which imports ``node.workers``.
"""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from node.app import serve_worker
from node.errors import NodeError
from node.fleet import Worker

log = logging.getLogger("hashhub.node")


def main(argv: Sequence[str]) -> int:
    """A worker: ``python -m node.worker_process HOME INDEX COUNT FD`` (``run_workers``)."""
    home, index, count, fd = Path(argv[0]), int(argv[1]), int(argv[2]), int(argv[3])
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s %(name)s worker {index}: %(message)s"
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    try:
        serve_worker(home, Worker(index, count), socket.socket(fileno=fd))
    except NodeError as e:
        log.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
