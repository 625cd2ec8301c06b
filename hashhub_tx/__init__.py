"""hashhub for python-threatexchange and HMA: subscribe to a hashhub hub, verified end to end.

An extension in python-threatexchange's sense (a module with ``TX_MANIFEST``): it adds
one ``SignalExchangeAPI``, named ``hashhub``, that follows the lists of a hashhub hub.
Every root, checkpoint, header, snapshot and body is verified by hashhub's own
``protocol`` rules — exactly as a ``hashhub-node`` does — before a single hash reaches
python-threatexchange. PDQ hashes become ``pdq`` signals, MD5 ``video_md5``, SHA-256
``video_sha256``, videos (``vpdq``) ``vpdq`` signals of their frames
(``hashhub_tx.video``); a removal becomes a tombstone; the checkpoint resumes exactly.

The guide for python-threatexchange and HMA users is ``docs/threatexchange.md``:
installing, the collaboration's fields, what is verified, acks and labels, and
what each failure means. In short::

    pip install 'hashhub[tx]'
    threatexchange config extensions add hashhub_tx
    threatexchange config collab edit hashhub my-hub --create \\
        --hub-url https://hub.example.org \\
        --pinned-root-sha256 <sha256 of root/1.json, from the hub operator> \\
        [--list-ids tid-pdq,tid-md5] [--mirrors https://cdn.example.org] \\
        [--node-home DIR]      # a node home the hub operator enrolled
    threatexchange fetch
    threatexchange match photo upload.jpg
    threatexchange label my-hub photo --as-hash pdq --labels blocked -- <hash>

The pin is the one thing to get from the hub operator over a channel you trust;
everything else is checked from it. The node home (``hashhub-node init``) holds the
hub token and the signing key in files of mode 0600: the collaboration config, a
plain file or database row, holds no secret. With it the bridge reads lists that
are not public and acknowledges what it applied, with the outcomes labelled.

Failures: ``fetch_iter`` raises before yielding anything (see ``hashhub_tx.errors``)
and logs the reason on the ``hashhub_tx`` logger: the pytx store and its checkpoint
stay as they were, and the next fetch starts again from them.
"""

from threatexchange.extensions.manifest import ThreatExchangeExtensionManifest

from hashhub_tx.checkpoint import HashhubCheckpoint, ListCheckpoint, SignedRoot
from hashhub_tx.config import API_NAME, HashhubCollabConfig
from hashhub_tx.errors import (
    BridgeConfigError,
    BridgeError,
    CheckpointError,
    OpinionError,
    UpdateFailedError,
    UpdateRejectedError,
)
from hashhub_tx.exchange import SIGNAL_TYPES, HashhubSignalExchangeAPI, HashhubSignalMetadata

__all__ = [
    "API_NAME",
    "SIGNAL_TYPES",
    "TX_MANIFEST",
    "BridgeConfigError",
    "BridgeError",
    "CheckpointError",
    "HashhubCheckpoint",
    "HashhubCollabConfig",
    "HashhubSignalExchangeAPI",
    "HashhubSignalMetadata",
    "ListCheckpoint",
    "OpinionError",
    "SignedRoot",
    "UpdateFailedError",
    "UpdateRejectedError",
]

TX_MANIFEST = ThreatExchangeExtensionManifest(apis=(HashhubSignalExchangeAPI,))
"""What python-threatexchange loads from this module (``config extensions add hashhub_tx``)."""
