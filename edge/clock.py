"""The wall clock as the roles read it: UTC, to the whole second.

Every time hashhub stores, signs or compares is written in RFC 3339 to the second
(``protocol.format_time``), so a time with microseconds would not survive a round
trip through a file and would compare unequal to itself read back. ``protocol``
keeps no clock (it is given times); the roles read this one.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["utcnow"]


def utcnow() -> datetime:
    """Now, in UTC, without microseconds."""
    return datetime.now(UTC).replace(microsecond=0)
