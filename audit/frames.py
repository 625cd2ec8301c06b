"""The frames files of a list of a frames type (``vpdq``, PROTOCOL.md §6.3).

A ``vpdq`` record's hash is the SHA-256 of a video's frames, and the frames are
published beside the records, one immutable file per record hash
(``lists/<id>/frames/<hash>.bin``, docs/adr/0021). The signed body that adds the
record is what promises the file, so a copy without it hides what the list
matches: the auditor reads the file of every record any version adds, capped at
``MAX_FRAMES_BYTES``, and holds it to ``protocol.video.read_frames_file`` (the
SHA-256 the record names, then the one encoding).

A file is named by its record's hash alone, so a record added again, or whose
entry's metadata changed (removed as ``changed`` and added anew), names the file
already read: each distinct file is read once per audit, for the first version
that adds its record. A snapshot holds no record that no version added (its state
is the replayed one), so the files of the snapshots' records are these same files.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from audit.source import Source
from protocol import EntriesBody, ProtocolError
from protocol.layout import frames_path
from protocol.video import MAX_FRAMES_BYTES, Frame, read_frames_file

__all__ = ["FRAMES_SECTION", "FramesFile", "frames_files", "read_promised"]

FRAMES_SECTION = "PROTOCOL.md §6.3"


@dataclass(frozen=True)
class FramesFile:
    """A frames file the signed history promises, and the first record that names it."""

    list_id: str
    version: int
    entry_id: str
    record: bytes
    """The record's hash: the SHA-256 the file's bytes must have."""

    @property
    def path(self) -> str:
        return frames_path(self.list_id, self.record.hex())

    @property
    def named_by(self) -> str:
        """Who promised the file, as a finding says it: list, version, entry."""
        return f"list {self.list_id} v{self.version} entry {self.entry_id}"


def frames_files(list_id: str, bodies: Mapping[int, EntriesBody]) -> Iterator[FramesFile]:
    """Each distinct frames file the verified ``bodies`` (by version) promise, once, in
    the order the versions first add a record naming it."""
    seen: set[bytes] = set()
    for version in sorted(bodies):
        for entry in bodies[version].adds:
            if entry.hash not in seen:
                seen.add(entry.hash)
                yield FramesFile(list_id, version, entry.entry_id, entry.hash)


def read_promised(source: Source, file: FramesFile) -> tuple[Frame, ...] | None:
    """The frames in ``file`` as ``source`` holds it, checked against its record; None
    when this copy lacks the file (the caller fails it, §11.1).

    Raises:
        LimitError: more than ``MAX_FRAMES_BYTES``, or more frames than a video has.
        ConsistencyError: the bytes do not hash to the record's hash.
        MalformedError: the bytes break a rule of the encoding (§6.3).
        FetchError: the copy could not be read at all.

        Each ``ProtocolError``'s message starts with the list, version and entry id
        whose record named the file.
    """
    try:
        data = source.get(file.path, MAX_FRAMES_BYTES)
        return None if data is None else read_frames_file(file.record, data)
    except ProtocolError as e:
        raise type(e)(f"{file.named_by}: {e}") from e
