"""Errors of the protocol layer, arranged by who is at fault.

    HashhubError
    ├── ProtocolError          published data is at fault (the hub, a mirror, an attacker)
    │   ├── MalformedError     bytes that do not parse under the strict rules
    │   │   ├── WrongTypeError     a document of another (or unknown) ``_type``
    │   │   ├── BodyRuleError      a delta body that breaks a body rule
    │   │   └── InvalidListIdError a list id outside ``[a-z0-9][a-z0-9._-]{0,63}``
    │   ├── LimitError         a file larger than its cap
    │   ├── SignatureError     missing, invalid or below-threshold signatures; wrong role
    │   ├── RollbackError      a version, tree size or time that goes backwards
    │   ├── FreezeError        a checkpoint too old (or too far in the future) to trust
    │   ├── ExpiredError       a root past its expiry
    │   ├── EquivocationError  two different roots signed for one tree size
    │   ├── ConsistencyError   links that do not hold: Merkle root, ``prev``, digests
    │   │   └── ProofError         an inclusion or consistency proof that does not verify
    │   ├── StateMismatchError the local state is not the base a delta expects (resync)
    │   ├── UnknownListError   a list the trusted root does not declare
    │   └── MissingFileError   a file signed data refers to is found at no source
    └── KeyFileError           a local key file is missing, malformed or readable by others

Every verification failure is a ``ProtocolError``: a node that catches it keeps its
last good state and may keep the offending bytes as evidence. ``KeyFileError`` is
the local operator's mistake and is reported, not retried.
"""

from __future__ import annotations

__all__ = [
    "BodyRuleError",
    "ConsistencyError",
    "EquivocationError",
    "ExpiredError",
    "FreezeError",
    "HashhubError",
    "InvalidListIdError",
    "KeyFileError",
    "LimitError",
    "MalformedError",
    "MissingFileError",
    "ProofError",
    "ProtocolError",
    "RollbackError",
    "SignatureError",
    "StateMismatchError",
    "UnknownListError",
    "WrongTypeError",
]


class HashhubError(Exception):
    """Root of every error raised by hashhub's own code."""


class ProtocolError(HashhubError):
    """Published data failed verification; nothing derived from it may be applied."""


class MalformedError(ProtocolError):
    """Bytes that do not parse under the strict encoding rules."""


class WrongTypeError(MalformedError):
    """A document whose ``_type`` is not the one expected here (type confusion)."""


class BodyRuleError(MalformedError):
    """A delta body that breaks a body rule (format line, order, overlap, width)."""


class InvalidListIdError(MalformedError):
    """A list id that could escape a path or is otherwise not allowed."""


class LimitError(ProtocolError):
    """Data larger than the cap that applies to it."""


class SignatureError(ProtocolError):
    """Signatures missing, invalid, below threshold, or from a role that may not sign this."""


class RollbackError(ProtocolError):
    """A version, tree size or timestamp older than one already trusted."""


class FreezeError(ProtocolError):
    """A validly signed checkpoint outside the freshness window (stale or from the future)."""


class ExpiredError(ProtocolError):
    """A root whose ``expires`` is at or before the verifier's reference time."""


class EquivocationError(ProtocolError):
    """Two different tree heads signed for one tree size: evidence of a split view."""

    def __init__(self, message: str, *, trusted: bytes = b"", presented: bytes = b"") -> None:
        super().__init__(message)
        self.trusted = trusted
        self.presented = presented


class ConsistencyError(ProtocolError):
    """Links between documents do not hold (Merkle root, ``prev`` chain, state chain)."""


class ProofError(ConsistencyError):
    """A Merkle inclusion or consistency proof that does not verify."""


class StateMismatchError(ProtocolError):
    """The local list state is not the base state a delta was made against."""


class UnknownListError(ProtocolError):
    """A list the trusted root does not declare."""


class MissingFileError(ProtocolError):
    """A file that signed data says exists is found at no source (PROTOCOL.md §11.1).

    The checkpoint of a declared list, a header up to the checkpoint's size, the body a
    header names, a snapshot due by its header's root: their absence is the publisher's
    (or a withholding mirror's) fault, never "nothing to do". ``path`` is the tree path.
    """

    def __init__(self, path: str, reason: str = "") -> None:
        super().__init__(f"{path}: found at no source" + (f", though {reason}" if reason else ""))
        self.path = path


class KeyFileError(HashhubError):
    """A local key file cannot be used: missing, malformed, or readable by others."""
