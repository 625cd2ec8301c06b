"""Delta headers and bodies: the only documents that change what a list holds.

A list is an append-only sequence of deltas, versions 1, 2, 3, … Each version has

- a **header** ``lists/<id>/delta/<v>.json`` (signed by the ``delta`` role), which
  binds the version to the previous header (``prev`` = its Merkle leaf hash), to
  the root version whose delta role signed it, to the body (SHA-256, length and
  counts), and to the list state before and after (``base_state``,
  ``result_state``);
- a **body** ``lists/<id>/body/<sha256>.txt``, content-addressed::

      hashhub.body.v1 <hash type>\\n
      -<hex>\\n        removals, strictly ascending
      +<hex>\\n        additions, strictly ascending, none also removed

Body rules are checked when parsing (format line, lowercase hex of the list's
width, order, no overlap, every line ends in ``\\n``, nothing else). Whether each
removal is present and each addition absent depends on the base state and is
checked when the body is applied (``ListState.apply``).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from protocol._fields import Fields, expect_type, format_time, merge_extra, require_aware
from protocol.canonical import canonicalize, parse_canonical
from protocol.errors import BodyRuleError, ConsistencyError, MalformedError
from protocol.lists import LIST_ID_PATTERN, hash_type, validate_list_id
from protocol.merkle import leaf_hash
from protocol.state import StateDigest

__all__ = [
    "BODY_FORMAT",
    "DELTA_TYPE",
    "GENESIS_PREV",
    "BodyRef",
    "DeltaBody",
    "DeltaHeader",
]

DELTA_TYPE = "hashhub.delta.v1"
BODY_FORMAT = "hashhub.body.v1"
GENESIS_PREV = "0" * 64
"""The ``prev`` of version 1: there is no header before it."""


@functools.cache
def _line(width: int) -> re.Pattern[bytes]:
    """A body line of a ``width``-byte hash: sign and lowercase hex (one per registered width)."""
    return re.compile(rb"[-+][0-9a-f]{%d}" % (2 * width))


@dataclass(frozen=True)
class BodyRef:
    """What a header says about its body: the body is only accepted if it matches all four."""

    sha256: str
    length: int
    adds: int
    removes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "length": self.length,
            "adds": self.adds,
            "removes": self.removes,
        }

    @classmethod
    def from_dict(cls, value: Any) -> BodyRef:
        f = Fields(value, "delta header: body")
        ref = cls(
            sha256=f.hex64("sha256"),
            length=f.integer("length", minimum=1),
            adds=f.integer("adds"),
            removes=f.integer("removes"),
        )
        f.closed()
        return ref

    @classmethod
    def of(cls, data: bytes, adds: int, removes: int) -> BodyRef:
        """What a header says of body bytes ``data`` with so many additions and removals
        (either format's body: ``DeltaBody``, ``protocol.entries.EntriesBody``)."""
        return cls(hashlib.sha256(data).hexdigest(), len(data), adds, removes)

    def check_counts(self, adds: int, removes: int) -> None:
        """A parsed body's counts must be the ones this header signs (§13.6 step 4)."""
        if (adds, removes) != (self.adds, self.removes):
            raise ConsistencyError(
                f"body has {adds} adds / {removes} removes, "
                f"header says {self.adds} / {self.removes}"
            )


@dataclass(frozen=True)
class DeltaHeader:
    """One version of one list, as signed by the delta role."""

    list_id: str
    version: int
    prev: str
    root_version: int
    created: datetime
    body: BodyRef
    base_state: StateDigest
    result_state: StateDigest
    extra: Mapping[str, Any] = field(default_factory=dict)
    raw: bytes = field(default=b"", compare=False, repr=False)

    def __post_init__(self) -> None:
        validate_list_id(self.list_id)
        if self.version < 1 or self.root_version < 1:
            raise MalformedError("delta header: version and root_version must be ≥ 1")
        require_aware(self.created, "delta header: created")
        if (self.version == 1) != (self.prev == GENESIS_PREV):
            raise ConsistencyError(
                f"delta header v{self.version}: prev must be 64 zeros exactly for version 1"
            )
        if self.result_state.count != self.base_state.count + self.body.adds - self.body.removes:
            raise ConsistencyError(
                f"delta header v{self.version}: result count {self.result_state.count} ≠ "
                f"{self.base_state.count} + {self.body.adds} − {self.body.removes}"
            )

    def to_dict(self) -> dict[str, Any]:
        return merge_extra(
            {
                "_type": DELTA_TYPE,
                "list": self.list_id,
                "version": self.version,
                "prev": self.prev,
                "root_version": self.root_version,
                "created": format_time(self.created),
                "body": self.body.to_dict(),
                "base_state": self.base_state.to_dict(),
                "result_state": self.result_state.to_dict(),
            },
            self.extra,
        )

    def to_bytes(self) -> bytes:
        """The exact bytes to sign; for a parsed header, the bytes it was parsed from."""
        return self.raw or canonicalize(self.to_dict())

    @property
    def leaf_hash(self) -> bytes:
        """This header's Merkle leaf hash, which the next header names as ``prev``."""
        return leaf_hash(self.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> DeltaHeader:
        """Parse header bytes strictly (call only after the signature has been checked)."""
        f = Fields(parse_canonical(data), "delta header")
        expect_type(f, DELTA_TYPE)
        return cls(
            list_id=f.text("list", pattern=LIST_ID_PATTERN, max_len=64),
            version=f.integer("version", minimum=1),
            prev=f.hex64("prev"),
            root_version=f.integer("root_version", minimum=1),
            created=f.time("created"),
            body=BodyRef.from_dict(f.mapping("body")),
            base_state=StateDigest.from_dict(f.mapping("base_state"), "delta header: base_state"),
            result_state=StateDigest.from_dict(
                f.mapping("result_state"), "delta header: result_state"
            ),
            extra={k: v for k, v in f.rest().items() if k != "_type"},
            raw=bytes(data),
        )


@dataclass(frozen=True)
class DeltaBody:
    """The removals and additions of one version, each strictly ascending, disjoint."""

    hash_type: str
    removes: tuple[bytes, ...]
    adds: tuple[bytes, ...]

    def __post_init__(self) -> None:
        width = hash_type(self.hash_type).length
        for group, name in ((self.removes, "removal"), (self.adds, "addition")):
            prev = b""
            for h in group:
                if len(h) != width:
                    raise BodyRuleError(f"body: {name} of {len(h)} bytes, list width is {width}")
                if h <= prev:
                    raise BodyRuleError(f"body: {name}s are not strictly ascending at {h.hex()}")
                prev = h
        if set(self.removes) & set(self.adds):
            raise BodyRuleError("body: a hash is both removed and added")

    @classmethod
    def build(
        cls, hash_type_name: str, removes: Sequence[bytes], adds: Sequence[bytes]
    ) -> DeltaBody:
        """Sort and de-duplicate changes into a valid body."""
        return cls(hash_type_name, tuple(sorted(set(removes))), tuple(sorted(set(adds))))

    def to_bytes(self) -> bytes:
        lines = [f"{BODY_FORMAT} {self.hash_type}\n".encode()]
        lines.extend(b"-" + h.hex().encode() + b"\n" for h in self.removes)
        lines.extend(b"+" + h.hex().encode() + b"\n" for h in self.adds)
        return b"".join(lines)

    def ref(self) -> BodyRef:
        return BodyRef.of(self.to_bytes(), len(self.adds), len(self.removes))

    @classmethod
    def from_bytes(cls, data: bytes, hash_type_name: str) -> DeltaBody:
        """Parse body bytes strictly for a list of ``hash_type_name``.

        Raises:
            BodyRuleError: naming the line and the rule broken.
        """
        width = hash_type(hash_type_name).length
        head = f"{BODY_FORMAT} {hash_type_name}\n".encode()
        if not data.startswith(head):
            first = data.split(b"\n", 1)[0][:64]
            raise BodyRuleError(f"body: first line {first!r} is not {head.strip()!r}")
        if not data.endswith(b"\n"):
            raise BodyRuleError("body: last line does not end in a newline")
        pattern = _line(width)
        removes: list[bytes] = []
        adds: list[bytes] = []
        lines = data[len(head) : -1].split(b"\n") if len(data) > len(head) else []
        for number, line in enumerate(lines, start=2):
            if not pattern.fullmatch(line):
                raise BodyRuleError(
                    f"body line {number}: not '-' or '+' and {2 * width} hex digits"
                )
            value = bytes.fromhex(line[1:].decode("ascii"))
            if line[0] == 0x2D:  # '-'
                if adds:
                    raise BodyRuleError(f"body line {number}: removal after an addition")
                if removes and value <= removes[-1]:
                    raise BodyRuleError(f"body line {number}: removals not strictly ascending")
                removes.append(value)
            else:
                if adds and value <= adds[-1]:
                    raise BodyRuleError(f"body line {number}: additions not strictly ascending")
                adds.append(value)
        return cls(hash_type_name, tuple(removes), tuple(adds))

    def check_ref(self, ref: BodyRef) -> None:
        ref.check_counts(len(self.adds), len(self.removes))
