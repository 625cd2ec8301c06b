"""PDQ: Meta's 256-bit perceptual hash of a picture, matched by Hamming distance.

The default distance, 31 bits, is Meta's recommended match threshold. The quality
floor, 50, is python-threatexchange's ``PdqSignal`` floor: below it a picture has
too little structure (flat, tiny) for its hash to match reliably. It is the one
type a person's picture is sent as from the public page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocol.hashtypes._base import HashType

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = ["MIN_QUALITY", "PDQ", "of_picture"]

MIN_QUALITY = 50
"""A PDQ hash whose quality is given and below this is refused at intake."""


def of_picture(image: Image) -> tuple[bytes, int | None]:
    """PDQ hash (32 bytes, the reference's hex order) and quality (0–100) of an RGB picture."""
    import numpy as np
    import pdqhash

    bits, quality = pdqhash.compute(np.asarray(image, dtype=np.uint8))
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes(), int(quality)


PDQ = HashType(
    "pdq",
    32,
    True,
    31,
    label="PDQ",
    min_quality=MIN_QUALITY,
    submitted_as="image",
    of_picture=of_picture,
    signal="threatexchange.signal_type.pdq.signal:PdqSignal",
)
