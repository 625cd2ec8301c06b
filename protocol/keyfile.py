"""Private and public key files: the one place in ``protocol`` that touches the file system.

Hub, node and auditor must treat key files identically and may not import each
other, so the rule lives here: a private key file is created with mode 0600 (never
widened afterwards) and refused on load when group or others can read it, as
OpenSSH does. A leaked signing key is the one failure this design cannot undo.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from protocol.errors import KeyFileError, MalformedError
from protocol.keys import PublicKey, SigningKey

__all__ = ["load_private_key", "load_public_key", "write_private_key", "write_public_key"]


def write_private_key(path: Path, key: SigningKey) -> None:
    """Create ``path`` with mode 0600 and the key's PKCS#8 PEM. Never overwrites."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise KeyFileError(f"{path}: already exists; refusing to overwrite a key") from e
    with os.fdopen(fd, "wb") as f:
        f.write(key.to_pem())
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, 0o600)


def load_private_key(path: Path) -> SigningKey:
    """Load a private key, refusing a file that group or others may read or write."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError as e:
        raise KeyFileError(f"{path}: no such key file") from e
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"{path}: permissions {stat.filemode(mode)} are too open; run chmod 600 on it"
        )
    try:
        return SigningKey.from_pem(Path(path).read_bytes())
    except MalformedError as e:
        raise KeyFileError(f"{path}: {e}") from e


def write_public_key(path: Path, key: PublicKey) -> None:
    """Write the SubjectPublicKeyInfo PEM that ``openssl pkeyutl -pubin`` accepts."""
    Path(path).write_bytes(key.to_pem())


def load_public_key(path: Path) -> PublicKey:
    try:
        return PublicKey.from_pem(Path(path).read_bytes())
    except FileNotFoundError as e:
        raise KeyFileError(f"{path}: no such key file") from e
    except MalformedError as e:
        raise KeyFileError(f"{path}: {e}") from e
