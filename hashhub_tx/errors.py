"""Errors of the threatexchange bridge, by who is at fault.

    BridgeError (hashhub's HashhubError)
    ├── BridgeConfigError   the collaboration config cannot be used (the operator)
    ├── CheckpointError     the stored checkpoint does not verify: damaged or forged
    │                       (whoever can write the pytx/HMA store); clear it and refetch
    ├── UpdateRejectedError the hub or a mirror served data that failed verification
    │                       (the published data is at fault; nothing was yielded)
    ├── UpdateFailedError   a download failed (network, status, deadline, cap)
    └── OpinionError        a label the bridge cannot report (``report_opinion``)

Every one but ``OpinionError`` is raised before ``fetch_iter`` yields anything, so
python-threatexchange stores no record and its checkpoint does not move.

``OpinionError`` is also pytx's ``CommandError``: the ``threatexchange label`` command
then prints its message alone (any other exception is printed as a traceback).
"""

from __future__ import annotations

from threatexchange.cli.exceptions import CommandError

from protocol.errors import HashhubError

__all__ = [
    "BridgeConfigError",
    "BridgeError",
    "CheckpointError",
    "OpinionError",
    "UpdateFailedError",
    "UpdateRejectedError",
]


class BridgeError(HashhubError):
    """Root of the bridge's own errors."""


class BridgeConfigError(BridgeError):
    """The collaboration config names something unusable (URL, pin, list, hash type)."""


class CheckpointError(BridgeError):
    """The checkpoint handed back by python-threatexchange does not verify."""


class UpdateRejectedError(BridgeError):
    """Published data failed the protocol's trust rules: nothing applied, evidence logged."""


class UpdateFailedError(BridgeError):
    """A download failed; the next fetch tries again from the same checkpoint."""


class OpinionError(BridgeError, CommandError):
    """A label that cannot become an outcome at the hub: an unknown label, a hash no
    fetched list holds, or no node home to sign with. Nothing was counted."""

    def __init__(self, message: str) -> None:
        CommandError.__init__(self, message, 2)
