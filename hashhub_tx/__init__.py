"""hashhub for python-threatexchange and HMA: subscribe to a hashhub hub, verified end to end.

An extension in python-threatexchange's sense (a module with ``TX_MANIFEST``): it adds
one ``SignalExchangeAPI``, named ``hashhub``, that follows the lists of a hashhub hub.
Every root, checkpoint, header, snapshot and body is verified by hashhub's own
``protocol`` rules — exactly as a ``hashhub-node`` does — before a single hash reaches
python-threatexchange. PDQ hashes become ``pdq`` signals, MD5 ``video_md5``, SHA-256
``video_sha256``; a removal becomes a tombstone; the checkpoint resumes exactly.

Enabling it (python-threatexchange CLI)::

    pip install 'hashhub[tx]'               # hashhub with the threatexchange extra
    threatexchange config extensions add hashhub_tx
    threatexchange config collab edit hashhub my-hub --create \\
        --hub-url https://hub.example.org \\
        --pinned-root-sha256 <sha256 of root/1.json, from the hub operator> \\
        [--list-ids tid-pdq,tid-md5] [--mirrors https://cdn.example.org] \\
        [--token <the bearer token of a node enrolled for those lists>]
    threatexchange fetch
    threatexchange match photo upload.jpg

The pin is the one thing to get from the hub operator over a channel you trust
(``hashhub init`` and ``hashhub node enrol`` print it); everything else is checked
from it. Mirrors are untrusted (what they serve is verified like the hub's). The
token is needed only for lists that are not public and goes to the hub only: the
hub operator enrols the bridge like a node (``hashhub node enrol ID --public-key
KEY.pem --lists …``, with an Ed25519 public key of yours) and sends you the token
it prints. pytx keeps it in the collaboration config (``~/.threatexchange/
collab_configs/``, HMA in its database): protect those as any credential.

Enabling it (HMA): install ``hashhub[tx]`` in HMA's image and, in HMA's config file,
add ``HashhubSignalExchangeAPI`` (``from hashhub_tx import HashhubSignalExchangeAPI``)
to ``exchange_types`` of ``STORAGE_IFACE_INSTANCE = DefaultOMMStore(...)``; then
create an exchange of API ``hashhub`` with the fields above. HMA matches the signal
types it is configured with (by default ``pdq`` and ``video_md5``); lists of other
types are not followed unless named, and naming one is a configuration error.

Failures: ``fetch_iter`` raises before yielding anything (see ``hashhub_tx.errors``):
the pytx store and its checkpoint stay as they were, and the next fetch starts again
from them. A ``CheckpointError`` means the stored checkpoint was damaged or edited:
``threatexchange fetch --clear`` (or deleting the HMA exchange's fetched state) starts
over from the pin.
"""

from threatexchange.extensions.manifest import ThreatExchangeExtensionManifest

from hashhub_tx.checkpoint import HashhubCheckpoint, ListCheckpoint, SignedRoot
from hashhub_tx.config import API_NAME, HashhubCollabConfig
from hashhub_tx.errors import (
    BridgeConfigError,
    BridgeError,
    CheckpointError,
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
    "SignedRoot",
    "UpdateFailedError",
    "UpdateRejectedError",
]

TX_MANIFEST = ThreatExchangeExtensionManifest(apis=(HashhubSignalExchangeAPI,))
"""What python-threatexchange loads from this module (``config extensions add hashhub_tx``)."""
