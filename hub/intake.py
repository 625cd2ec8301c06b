"""Reading hashes in: single values from the CLI or API, and bulk import files.

An import is all or nothing: the whole file is parsed and checked before
anything is staged, and the first bad line fails it with its line number. Three
formats are accepted, told apart by their first line with content (comments aside):

- NDJSON: one JSON object per line, ``{"hash": …, "quality": …, "category": …,
  "source": …, "submission_id": …}`` (only ``hash`` required);
- CSV with a header row that has a ``hash`` column (same optional columns);
- plain lines: one hex hash per line; ``#`` starts a comment.

An NDJSON line that gives a field twice, uses ``NaN`` or ``Infinity``, or holds a
number or nesting too large to read is a bad line like any other, as is a CSV
field over the reader's size cap: ambiguous input is refused, never guessed at.

A hash whose claimed quality is below its type's floor (``HashType.min_quality``:
50 for PDQ, too little image structure to match reliably, as in ThreatExchange's
PDQ guidance; no floor for the other types) is refused; a hash without a quality
is accepted as the submitter's responsibility.

A hash that cannot have come from real content is refused whatever quality it
claims (``protocol.hashes.degenerate_reason``): a PDQ with fewer than 64 or more
than 192 of its 256 bits set (all zeros is what the hasher gives a picture too
small to hash), a pHash with fewer than 16 or more than 48 of 64, and an MD5 or
SHA-256 that is all zeros, all ones or the digest of an empty file.
``parse_hash`` only reads a hash, so a removal of such a value still works;
``make_intake`` (every addition) applies the rule, and ``Lists.stage`` again.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from hub.errors import IntakeError
from protocol.hashes import MIN_PDQ_QUALITY, degenerate_reason
from protocol.lists import hash_type

__all__ = ["MIN_PDQ_QUALITY", "Intake", "parse_hash", "parse_import"]

MAX_IMPORT_LINES = 5_000_000
_TEXT = re.compile(r"[^\x00-\x1f\x7f\ud800-\udfff]{0,256}")
"""Printable text; no lone surrogates either (JSON's ``"\\ud800"``), which no database can store."""
_QUALITY_TEXT = re.compile(r"[0-9]{1,3}")
_OPTIONAL = ("quality", "category", "source", "submission_id")


@dataclass(frozen=True)
class Intake:
    """One hash to stage, with its provenance."""

    hash: bytes
    quality: int | None = None
    category: str | None = None
    source: str | None = None
    submission_id: str | None = None


def parse_hash(text: str, type_name: str) -> bytes:
    """Parse one hex hash of a list's type; case-insensitive, exact width."""
    kind = hash_type(type_name)
    value = text.strip().lower()
    if len(value) != 2 * kind.length or not re.fullmatch(r"[0-9a-f]+", value):
        raise IntakeError(
            f"{text.strip()[:80]!r} is not a {kind.name} hash ({2 * kind.length} hex digits)"
        )
    return bytes.fromhex(value)


def _text_field(value: object, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _TEXT.fullmatch(value):
        raise IntakeError(f"{name} must be text of at most 256 printable characters")
    return value


def _quality(value: object) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and _QUALITY_TEXT.fullmatch(value.strip()):
        # Not str.isdigit(): it also takes "²" and other digits int() refuses.
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100:
        raise IntakeError("quality must be an integer from 0 to 100")
    return value


def make_intake(type_name: str, fields: dict[str, object]) -> Intake:
    """Build one checked ``Intake`` from a hash and optional provenance fields.

    Raises:
        IntakeError: a malformed field, a quality below the type's ``min_quality``
            (PDQ: ``MIN_PDQ_QUALITY``), or a degenerate hash
            (``protocol.hashes.degenerate_reason``), whatever its quality.
    """
    raw = fields.get("hash")
    if raw is None:
        raise IntakeError("missing 'hash'")
    if not isinstance(raw, str):
        raise IntakeError("'hash' must be a string of hex digits")
    quality = _quality(fields.get("quality"))
    kind = hash_type(type_name)
    if kind.min_quality is not None and quality is not None and quality < kind.min_quality:
        raise IntakeError(f"{kind.label} quality {quality} is below {kind.min_quality}")
    value = parse_hash(raw, type_name)
    reason = degenerate_reason(type_name, value)
    if reason is not None:
        raise IntakeError(reason)
    return Intake(
        hash=value,
        quality=quality,
        category=_text_field(fields.get("category"), "category"),
        source=_text_field(fields.get("source"), "source"),
        submission_id=_text_field(fields.get("submission_id"), "submission_id"),
    )


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise IntakeError("a field is given twice")
    return dict(pairs)


def _no_constant(text: str) -> object:
    raise IntakeError(f"{text} is not a value here")


def _json_line(line: str, number: int) -> object:
    """One NDJSON line, strictly: no duplicate fields, no NaN, no runaway numbers or nesting."""
    try:
        return json.loads(line, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except IntakeError as e:
        raise IntakeError(str(e), line=number) from e
    except json.JSONDecodeError as e:
        raise IntakeError(f"invalid JSON: {e.msg}", line=number) from e
    except ValueError as e:  # an integer of thousands of digits
        raise IntakeError("a number too long to read", line=number) from e
    except RecursionError as e:
        raise IntakeError("JSON nested too deeply", line=number) from e


def _csv_rows(reader: Iterator[list[str]], where: Callable[[], int]) -> Iterator[list[str]]:
    """The reader's rows, its own errors (a field over the size cap, a NUL) as ``IntakeError``."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise IntakeError(f"unreadable CSV: {e}", line=where()) from e
        yield row


def _rows(text: str) -> Iterator[tuple[int, dict[str, object]]]:
    lines = text.split("\n")  # not splitlines(): U+2028 and friends may sit inside JSON strings
    # The first line with content once a '#' comment is cut off decides the format.
    first = next((c for c in (line.split("#", 1)[0].strip() for line in lines) if c), "")
    if first.startswith("{"):
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            value = _json_line(line, number)
            if not isinstance(value, dict):
                raise IntakeError("expected a JSON object", line=number)
            unknown = set(value) - {"hash", *_OPTIONAL}
            if unknown:
                raise IntakeError(f"unknown field(s) {sorted(unknown)}", line=number)
            yield number, value
    elif "," in first or first.lower() == "hash":
        reader = csv.reader(io.StringIO(text))
        rows = _csv_rows(reader, lambda: reader.line_num)
        header: list[str] = []
        for cells in rows:  # the first non-blank row is the header
            header = [c.strip().lower() for c in cells]
            if any(header):
                break
        unknown = set(header) - {"hash", *_OPTIONAL}
        if unknown:
            raise IntakeError(f"unknown column(s) {sorted(unknown)}", line=reader.line_num)
        if "hash" not in header or len(set(header)) != len(header):
            raise IntakeError(
                "the CSV header must name a 'hash' column, and each column once",
                line=reader.line_num,
            )
        for row in rows:
            number = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise IntakeError(f"{len(row)} columns, header has {len(header)}", line=number)
            yield number, {k: v.strip() for k, v in zip(header, row, strict=True)}
    else:
        for number, line in enumerate(lines, start=1):
            value = line.split("#", 1)[0].strip()
            if value:
                yield number, {"hash": value}


def parse_import(data: bytes, type_name: str) -> list[Intake]:
    """Parse a whole import file, or raise ``IntakeError`` naming the first bad line."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise IntakeError("not UTF-8 text", line=line) from e
    out: list[Intake] = []
    for number, fields in _rows(text):
        if len(out) >= MAX_IMPORT_LINES:
            raise IntakeError(f"more than {MAX_IMPORT_LINES} hashes in one import", line=number)
        try:
            out.append(make_intake(type_name, fields))
        except IntakeError as e:
            if e.line is not None:
                raise
            raise IntakeError(str(e), line=number) from e
    if not out:
        raise IntakeError("the file holds no hashes")
    return out
