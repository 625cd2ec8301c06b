"""The process a video is probed and decoded in, under a memory cap.

FFmpeg's demuxers and decoders parse whatever an upload holds, in C. A hostile file
that crashes or exhausts them must take down this process, never the node, so
``node.video`` runs each step here, as a separate interpreter (``python -I``, so
nothing from the environment or the working directory is imported), and kills it
at its deadline. Before anything else the process caps its address space
(``RLIMIT_AS``) and turns off core dumps: a decoder that asks for more memory gets
an allocation failure, and a crash leaves no copy of the upload on disk.

Two commands, each given the memory cap in bytes first:

- ``run MEMORY PROGRAM ARGS…``: replace this process with ``PROGRAM`` (``ffprobe``)
  under the caps, so the probe is capped too and a timeout kills the probe itself.
- ``hash MEMORY SECONDS_PER_FRAME PATH``: hash the video with ``vpdq`` and print
  one JSON object on the standard output: ``{"frames": [[hex, quality, seconds], …]}``,
  ``{"failed": message}`` (the video) or ``{"unavailable": message}`` (``vpdq``
  cannot be imported). Whatever the decoder itself prints is sent to the
  standard error, so it cannot be taken for the answer.

This module imports nothing from the project: the rules (what is allowed, what a
frame is) are ``node.video``'s, which reads the answer.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from typing import NoReturn, TextIO

__all__ = ["cap_resources", "hash_frames", "main"]


def cap_resources(memory: int) -> None:
    """Cap this process's address space at ``memory`` bytes; no core dumps."""
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def hash_frames(path: str, seconds_per_frame: float) -> dict[str, object]:
    """vpdq's frames of the video at ``path``, or why there are none."""
    try:
        import vpdq  # after the cap: its FFmpeg libraries are mapped under it
    except ImportError as e:  # not installed, or its libraries do not fit under the cap
        return {"unavailable": " ".join(str(e).split())[:200]}
    try:
        features = vpdq.computeHash(path, seconds_per_hash=seconds_per_frame)
    except MemoryError:
        return {"failed": "decoding needs more memory than the cap allows"}
    except Exception as e:  # vpdq says only "Fail to create VPDQ hash"
        return {"failed": " ".join(str(e).split())[:200] or type(e).__name__}
    return {"frames": [[f.hex, f.quality, f.timestamp] for f in features]}


def _answer_stream() -> TextIO:
    """The real standard output for the answer; fd 1 then points at the standard
    error, for anything the C libraries print."""
    answer = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    return answer


def main(argv: list[str]) -> NoReturn:
    """Run one command (see the module docstring); exit status 2 on a bad command line."""
    if len(argv) < 3 or argv[0] not in ("run", "hash") or not argv[1].isdigit():
        print("usage: video_worker.py run|hash MEMORY ARGS…", file=sys.stderr)
        sys.exit(2)
    command, memory, rest = argv[0], int(argv[1]), argv[2:]
    cap_resources(memory)
    if command == "run":
        os.execv(rest[0], rest)  # noqa: S606 (the parent's argument list: no shell)
    if len(rest) != 2:
        print("usage: video_worker.py hash MEMORY SECONDS_PER_FRAME PATH", file=sys.stderr)
        sys.exit(2)
    answer = _answer_stream()
    json.dump(hash_frames(rest[1], float(rest[0])), answer)
    answer.close()
    sys.exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
