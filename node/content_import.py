"""Reading a hosted corpus for the content registry, a line at a time.

``hashhub-node content import`` and ``content remove`` take files of millions of
lines (a platform's whole corpus), so nothing here holds more than one line: the
lines are read as they come, each is checked on its own, and ``batches`` groups
them for the registry's one transaction per batch.

A line is one hash of one piece of content, ``content_id,hash_type,hex`` (CSV,
with an optional header ``content_id,hash_type,hash``) or
``{"content_id": …, "hash_type": …, "hash": …}`` (NDJSON); for ``remove`` the
content id alone is enough (every hash of it). A video's ``vpdq`` hash is its frames
in hex (PROTOCOL.md §6.3), read strictly, and the line carries them: the registry
keeps a video by its frames, and refuses a bare 64-digit ``vpdq`` hash (to remove
one video of a content id, give its frames again: the row is found by their
SHA-256). Blank lines are skipped. A line the registry could not hold is not an
exception but a ``BadLine`` in the stream, with its line number and the reason, so
that the caller decides: a real import stops before writing that line's batch, a
dry run goes on and reports every one. A well-formed line of another replica's
content shard is skipped (``in_shard``).
"""

from __future__ import annotations

import contextlib
import csv
import gc
import hashlib
import json
import re
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from queue import Empty, Full, Queue
from typing import Any, BinaryIO, Generic, Literal, TypeVar

from node.errors import InvalidContentError
from node.fleet import ContentShard
from node.registry import check_content_id
from node.video_hashes import FramesTextError, frames_from_hex
from protocol import HASH_TYPES
from protocol.video import MAX_FRAMES_BYTES

__all__ = [
    "DEFAULT_BATCH",
    "FORMATS",
    "MAX_BATCH_FRAMES_BYTES",
    "MAX_LINE_BYTES",
    "BadLine",
    "Batch",
    "ContentLine",
    "Format",
    "batches",
    "in_shard",
    "no_cycle_collection",
    "read_ahead",
    "read_batches",
    "read_lines",
]

MAX_LINE_BYTES = 2 * MAX_FRAMES_BYTES + 4096
"""The longest line read, without its line break: a video's frames at their cap in
hex (2.7 MB) beside a 256-character content id written as NDJSON escapes and a type,
with room to spare. A longer one is refused (its rest is skipped unread into memory),
so one runaway line cannot take the node's memory."""

MAX_BATCH_FRAMES_BYTES = 64 * 1024 * 1024
"""Frames a batch holds at most: a batch of videos ends early when the next line's
frames would pass this, so that a corpus of long videos is not held a hundred
thousand at a time (a batch of ordinary lines is a few megabytes)."""

DEFAULT_BATCH = 100_000
"""Lines per transaction. Each commit writes every database page its batch changed,
and hosted hashes are random keys, so a batch of 10,000 lines into a registry of
millions changes about as many pages as it has lines: larger batches share pages and
import several times faster (the benchmarks page has the figures). Small enough
that a refused line sends back little work and that the write lock, which a running
node's match events wait for, is held for a second or two."""

Format = Literal["csv", "ndjson"]
FORMATS: tuple[Format, ...] = ("csv", "ndjson")

_FIELDS = ("content_id", "hash_type", "hash")
_HEX = re.compile(r"[0-9a-fA-F]*")

T = TypeVar("T")
W = TypeVar("W")


@dataclass(frozen=True)
class ContentLine:
    """One well-formed line: a content id and, unless it stands alone, one hash of it."""

    number: int
    content_id: str
    hash: tuple[str, bytes] | None
    frames: bytes | None = None
    """A video's frames (a ``vpdq`` line), whose SHA-256 is its hash."""


@dataclass(frozen=True)
class BadLine:
    """A line refused, by its number (from 1, counting every line) and why."""

    number: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.number}: {self.reason}"


def batches(
    items: Iterable[T],
    size: int,
    weight: Callable[[T], int] | None = None,
    budget: int = 0,
) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter), read as they are needed;
    with ``weight``, a list also ends before the item that would take its weights
    past ``budget`` (a list always holds at least one item)."""
    batch: list[T] = []
    held = 0
    for item in items:
        cost = weight(item) if weight is not None else 0
        if batch and weight is not None and held + cost > budget:
            yield batch
            batch, held = [], 0
        batch.append(item)
        held += cost
        if len(batch) == size:
            yield batch
            batch, held = [], 0
    if batch:
        yield batch


def _frames_weight(line: ContentLine | BadLine) -> int:
    return len(line.frames) if isinstance(line, ContentLine) and line.frames else 0


def read_ahead(items: Iterator[T], depth: int = 1) -> Generator[T, None, None]:
    """``items``, produced on a thread of their own up to ``depth`` ahead of the
    consumer: the next batch is read and checked while this one is written.

    SQLite lets go of the interpreter lock while it writes, so on two cores a bulk
    import reads and registers at once instead of in turn. An exception raised
    while reading is raised here, at the item it stopped; a consumer that stops
    early (a malformed line) stops the reader too.
    """
    done = object()
    queue: Queue[Any] = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        queue.put((item, None), timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put((done, None))
        except BaseException as e:  # handed to the consumer, raised there
            queue.put((done, e))

    reader = threading.Thread(target=produce, name="content-reader", daemon=True)
    reader.start()
    try:
        while True:
            item, error = queue.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        # The reader sees this at its next item and ends; a daemon thread, it never
        # holds the process open (it may be waiting on a pipe that sends nothing).
        stop.set()
        with contextlib.suppress(Empty):
            queue.get_nowait()


@dataclass(frozen=True)
class Batch(Generic[W]):
    """One batch as read: where it starts, how many lines it has, its malformed lines,
    and, when it has none, the work ``read_batches``'s ``prepare`` made of the rest."""

    first_line: int
    size: int
    bad: list[BadLine]
    work: W | None


def read_batches(
    stream: BinaryIO,
    fmt: Format | None,
    size: int,
    prepare: Callable[[list[ContentLine]], W],
    *,
    hash_optional: bool = False,
) -> Generator[Batch[W], None, None]:
    """``stream``'s lines in batches of ``size``, each read, checked and ``prepare``d on
    the reading thread (``read_ahead``), so that the caller's thread only writes.

    ``prepare`` turns a batch's lines into what the caller writes (rows set out for
    the registry, content to remove); it is not called for a batch with a malformed
    line. Whatever it raises is raised here, at that batch.
    """

    def sorted_out(lines: list[ContentLine | BadLine]) -> Batch[W]:
        bad = [line for line in lines if isinstance(line, BadLine)]
        good = [line for line in lines if isinstance(line, ContentLine)]
        return Batch(lines[0].number, len(lines), bad, None if bad else prepare(good))

    read = batches(
        read_lines(stream, fmt, hash_optional=hash_optional),
        size,
        _frames_weight,
        MAX_BATCH_FRAMES_BYTES,
    )
    return read_ahead(sorted_out(lines) for lines in read)


@contextlib.contextmanager
def no_cycle_collection() -> Generator[None, None, None]:
    """Python's cycle collector paused for a bulk run, and run once at its end.

    A batch is a million small objects (a line, its fields, its row), and the
    collector walks every live object each time enough new ones have been made: over
    a corpus of ten million lines it spends more than the reading itself. The
    lines, rows and batches form no cycles, so reference counting frees each batch
    as soon as it is written and nothing waits for the collector.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.collect()


def in_shard(lines: list[ContentLine], shard: ContentShard | None) -> list[ContentLine]:
    """The lines of content this replica registers: all without a shard, else those
    whose content id is in it (``node.fleet``). One corpus file is fed to every
    replica; each keeps its own shard's lines and skips the others'."""
    if shard is None:
        return lines
    return [line for line in lines if shard.owns(line.content_id)]


def _raw_lines(stream: BinaryIO) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, bytes without the line break, too long) per line; at most
    ``MAX_LINE_BYTES`` of a line are kept, the rest of a longer one is skipped."""
    number = 0
    while raw := stream.readline(MAX_LINE_BYTES + 2):
        number += 1
        if raw.endswith(b"\n") or len(raw) < MAX_LINE_BYTES + 2:
            body = raw.removesuffix(b"\n").removesuffix(b"\r")
            yield number, body[:MAX_LINE_BYTES], len(body) > MAX_LINE_BYTES
            continue
        while rest := stream.readline(1 << 16):
            if rest.endswith(b"\n"):
                break
        yield number, raw[:MAX_LINE_BYTES], True


def read_lines(
    stream: BinaryIO, fmt: Format | None = None, *, hash_optional: bool = False
) -> Iterator[ContentLine | BadLine]:
    """Every non-blank line of ``stream``, checked: a ``ContentLine`` or a ``BadLine``.

    ``fmt`` None: NDJSON if the first non-blank character is ``{``, else CSV. With
    ``hash_optional`` (removal) a line may be the content id alone. A UTF-8 byte
    order mark before the first line is skipped, as spreadsheets write one.
    """
    first = True
    for number, data, too_long in _raw_lines(stream):
        if number == 1:
            data = data.removeprefix(b"\xef\xbb\xbf")
        if fmt is None:
            start = data.lstrip()[:1]
            if not start:
                continue
            fmt = "ndjson" if start == b"{" else "csv"
        if too_long:
            first = False
            yield BadLine(number, f"longer than {MAX_LINE_BYTES} bytes")
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            first = False
            yield BadLine(number, f"not UTF-8 (byte {e.start + 1} of the line)")
            continue
        if not text.strip():
            continue
        try:
            if fmt == "csv":
                fields = _csv_fields(text)
                if first and _is_header(fields, hash_optional=hash_optional):
                    first = False
                    continue
            else:
                fields = _json_fields(text, hash_optional=hash_optional)
            first = False
            yield _checked(number, fields, hash_optional=hash_optional)
        except InvalidContentError as e:
            first = False
            yield BadLine(number, str(e))


def _is_header(fields: list[str], *, hash_optional: bool) -> bool:
    return tuple(fields) == _FIELDS or (hash_optional and fields == ["content_id"])


def _csv_fields(text: str) -> list[str]:
    if '"' not in text:
        # No quoting: the csv module would split at every comma, as this does,
        # several times faster (a corpus of ten million lines is mostly such).
        return text.split(",")
    try:
        fields = next(csv.reader([text], strict=True))
    except csv.Error as e:
        raise InvalidContentError(f"malformed CSV: {e}") from None
    return fields


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, value in pairs:
        if name in found:
            raise InvalidContentError(f"field {name[:32]!r} given twice")
        found[name] = value
    return found


def _json_fields(text: str, *, hash_optional: bool) -> list[str]:
    """The NDJSON object's fields in CSV's order (the content id alone when that is all)."""
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as e:
        raise InvalidContentError(f"malformed JSON: {e.msg} (column {e.colno})") from None
    if not isinstance(value, dict):
        raise InvalidContentError(f"expected a JSON object with {', '.join(_FIELDS)}")
    unknown = sorted(set(value) - set(_FIELDS))
    if unknown:
        raise InvalidContentError(f"unknown field {unknown[0][:32]!r}")
    present = [name for name in _FIELDS if name in value]
    if present != list(_FIELDS) and not (hash_optional and present == ["content_id"]):
        missing = [name for name in _FIELDS if name not in value]
        raise InvalidContentError(f"missing field {missing[0]!r}")
    for name in present:
        if not isinstance(value[name], str):
            raise InvalidContentError(f"{name} must be a string")
    return [value[name] for name in present]


def _checked(number: int, fields: list[str], *, hash_optional: bool) -> ContentLine:
    """The line's fields as the registry would store them, or ``InvalidContentError``."""
    if len(fields) != 3 and not (hash_optional and len(fields) == 1):
        expected = "1 field (content_id) or 3" if hash_optional else "3 fields"
        raise InvalidContentError(
            f"expected {expected} (content_id,hash_type,hash), found {len(fields)}"
        )
    content_id = fields[0]
    check_content_id(content_id)
    if len(fields) == 1:
        return ContentLine(number, content_id, None)
    type_name, digits = fields[1], fields[2]
    kind = HASH_TYPES.get(type_name)
    if kind is None:
        raise InvalidContentError(
            f"unknown hash type {type_name[:32]!r}; one of {', '.join(sorted(HASH_TYPES))}"
        )
    if not _HEX.fullmatch(digits):
        raise InvalidContentError(f"the hash is not hexadecimal: {digits[:80]!r}")
    if kind.frames:
        try:
            encoded, _ = frames_from_hex(digits, registering=True)
        except FramesTextError as e:
            raise InvalidContentError(str(e)) from None
        digest = hashlib.sha256(encoded).digest()
        return ContentLine(number, content_id, (type_name, digest), encoded)
    if len(digits) != 2 * kind.length:
        raise InvalidContentError(
            f"a {type_name} hash is {2 * kind.length} hex digits, found {len(digits)}"
        )
    return ContentLine(number, content_id, (type_name, bytes.fromhex(digits)))
