"""pHash: imagehash's 64-bit DCT perceptual hash of a picture, matched by Hamming distance.

Eight bits (of 64) is about the share of PDQ's 31 of 256. python-threatexchange has
no signal type for it, so the bridge does not follow pHash lists, and the public
page does not offer it (its browser hasher would be another to keep bit-exact).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocol.hashtypes._base import HashType

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = ["PHASH", "of_picture"]


def of_picture(image: Image) -> tuple[bytes, int | None]:
    """imagehash's ``phash`` as 8 bytes, in the order of its hex string; no quality score."""
    import imagehash
    import numpy as np

    bits = imagehash.phash(image).hash.flatten()
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes(), None


PHASH = HashType("phash", 8, True, 8, label="pHash", of_picture=of_picture)
