"""Strict field readers shared by the document parsers.

Each reader names the document and field in its error so that a rejected file
can be reported precisely ("delta header: field 'version' must be an integer ≥ 1").
``Fields`` records which keys were read, so a parser can keep the rest as
unknown-but-preserved data instead of silently dropping them.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from protocol.errors import MalformedError

_HEX64 = re.compile(r"[0-9a-f]{64}")
_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z")
"""ASCII digits only: ``\\d`` would take other scripts' digits too (two texts for one time)."""


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC, second precision: the only time format in hashhub documents."""
    if moment.tzinfo is None:
        raise MalformedError("naive datetime: hashhub times are always UTC-aware")
    m = moment.astimezone(UTC)
    # Not strftime: its %Y writes year 26 as "26", which parse_time rightly refuses.
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}Z"


def parse_time(text: str, where: str) -> datetime:
    """Parse ``YYYY-MM-DDTHH:MM:SSZ`` exactly; anything else is malformed."""
    match = _TIME.fullmatch(text)
    if not match:
        raise MalformedError(f"{where}: {text!r} is not a time of the form YYYY-MM-DDTHH:MM:SSZ")
    try:
        y, mo, d, h, mi, se = (int(g) for g in match.groups())
        return datetime(y, mo, d, h, mi, se, tzinfo=UTC)
    except ValueError as e:
        raise MalformedError(f"{where}: {text!r} is not a valid time") from e


def require_aware(moment: datetime, where: str) -> datetime:
    """Refuse naive datetimes at the boundary: every clock in hashhub is UTC-aware."""
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise MalformedError(f"{where}: a timezone-aware datetime is required")
    return moment.astimezone(UTC)


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str, where: str, *, length: int | None = None) -> bytes:
    """Standard padded base64, rejecting any non-canonical spelling of the same bytes."""
    if not isinstance(text, str) or not text.isascii():
        raise MalformedError(f"{where}: base64 text expected")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise MalformedError(f"{where}: invalid base64") from e
    if base64.b64encode(raw).decode("ascii") != text:
        raise MalformedError(f"{where}: non-canonical base64")
    if length is not None and len(raw) != length:
        raise MalformedError(f"{where}: expected {length} bytes, got {len(raw)}")
    return raw


def is_hex64(text: object) -> bool:
    return isinstance(text, str) and _HEX64.fullmatch(text) is not None


class Fields:
    """Typed, strict access to one JSON object, remembering which keys were read."""

    def __init__(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise MalformedError(f"{where}: expected a JSON object")
        self._value: dict[str, Any] = value
        self._read: set[str] = set()
        self.where = where

    def _get(self, key: str) -> Any:
        if key not in self._value:
            raise MalformedError(f"{self.where}: missing field {key!r}")
        self._read.add(key)
        return self._value[key]

    def has(self, key: str) -> bool:
        return key in self._value

    def text(self, key: str, *, pattern: re.Pattern[str] | None = None, max_len: int = 1024) -> str:
        value = self._get(key)
        if not isinstance(value, str):
            raise MalformedError(f"{self.where}: field {key!r} must be a string")
        if len(value) > max_len:
            raise MalformedError(f"{self.where}: field {key!r} is longer than {max_len}")
        if pattern is not None and not pattern.fullmatch(value):
            raise MalformedError(f"{self.where}: field {key!r} has an invalid value {value!r}")
        return value

    def integer(self, key: str, *, minimum: int = 0) -> int:
        value = self._get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise MalformedError(f"{self.where}: field {key!r} must be an integer")
        if value < minimum:
            raise MalformedError(f"{self.where}: field {key!r} must be ≥ {minimum}, got {value}")
        return value

    def hex64(self, key: str) -> str:
        value = self._get(key)
        if not is_hex64(value):
            raise MalformedError(f"{self.where}: field {key!r} must be 64 lowercase hex digits")
        assert isinstance(value, str)
        return value

    def time(self, key: str) -> datetime:
        return parse_time(self.text(key, max_len=32), f"{self.where}: field {key!r}")

    def obj(self, key: str) -> Fields:
        return Fields(self._get(key), f"{self.where}.{key}")

    def mapping(self, key: str) -> dict[str, Any]:
        value = self._get(key)
        if not isinstance(value, dict):
            raise MalformedError(f"{self.where}: field {key!r} must be an object")
        return value

    def array(self, key: str, *, max_items: int = 1024) -> list[Any]:
        value = self._get(key)
        if not isinstance(value, list):
            raise MalformedError(f"{self.where}: field {key!r} must be an array")
        if len(value) > max_items:
            raise MalformedError(f"{self.where}: field {key!r} has more than {max_items} items")
        return value

    def closed(self) -> None:
        """Refuse fields this version does not define, in objects whose shape v1 fixes.

        Top-level documents, list declarations and the policy keep unknown fields
        (``rest``) for forward compatibility; small fixed records (a state digest, a
        body reference, a key, a role, a signature entry) are closed, so a field a
        verifier cannot interpret never hides inside one.
        """
        unknown = sorted(k for k in self._value if k not in self._read)
        if unknown:
            raise MalformedError(f"{self.where}: unknown field(s) {unknown[:5]}")

    def rest(self) -> dict[str, Any]:
        """The fields not read: unknown to this version, kept so that nothing is dropped."""
        return {k: v for k, v in self._value.items() if k not in self._read}


def expect_type(fields: Fields, expected: str) -> None:
    """Check ``_type`` before anything else, so a document of one kind is never read as another."""
    if not fields.has("_type"):
        raise MalformedError(f"{fields.where}: missing field '_type'")
    from protocol.errors import WrongTypeError

    value = fields.text("_type", max_len=64)
    if value != expected:
        raise WrongTypeError(f"{fields.where}: _type is {value!r}, expected {expected!r}")


def merge_extra(known: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Re-attach preserved unknown fields; a known field always wins over an unknown one."""
    clash = set(known) & set(extra)
    if clash:
        raise MalformedError(f"unknown fields shadow known ones: {sorted(clash)}")
    return {**extra, **known}
