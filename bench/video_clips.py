"""Videos made with ``ffmpeg`` for the video tests and the video hashing bench.

Two kinds of clip stand for what a list holds. A **slideshow** of photos, each shown
a few seconds, panned slowly and cut hard, as a phone's video of still scenes is: the
PDQ test photos and scikit-image's. A **test pattern** (``testsrc2``), whose every
part moves each frame: the hardest case for sampling one frame a second, since a
frame half a second off is a different picture. The photos of the unrelated
slideshow are other PDQ test photos, none of the listed one's.

The listed photos are of scenes and objects, with detail across the frame. Pictures
that are mostly flat or dark are left out: on scikit-image's ``rocket`` (sky),
``moon``, ``hubble_deep_field``, ``retina``, ``cell``, ``clock`` (motion blur) and
``brick`` a corner logo at 50 % or a caption moved frames 30 to 114 bits, as it
would on such a frame of any video; the PDQ photos ``q0003`` and ``q0004`` have a
PDQ quality under 50, so §6.4 leaves their frames out.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import skimage.data
from PIL import Image

__all__ = [
    "LABELME",
    "PDQ_TESTDATA",
    "X264",
    "ffmpeg",
    "listed_photos",
    "pattern",
    "slideshow",
    "unrelated_photos",
]

PDQ_TESTDATA = Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "pdq"
LABELME = PDQ_TESTDATA / "reg-test-input" / "labelme-subset"

X264 = ("-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p")
"""H.264 as phones and platforms write it (yuv420p), fast enough to make many clips."""

_SKIMAGE_PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "camera",
    "stereo_motorcycle",
    "coins",
    "immunohistochemistry",
    "page",
    "text",
    "gravel",
    "grass",
)
_LABELME_UNRELATED = ("q0122", "q0291", "q0746", "q1050", "q2821")


def ffmpeg(*arguments: str | Path) -> None:
    """Run ``ffmpeg`` quietly, overwriting its output; an error raises."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", *map(str, arguments)],
        check=True,
        capture_output=True,
    )


def listed_photos(directory: Path, count: int) -> list[Path]:
    """The first ``count`` photos of the listed slideshow: the PDQ bridge photo, then
    scikit-image's (astronaut, coffee, chelsea, camera first; at most 12 in all).
    scikit-image's are written to ``directory`` as ``NAME.png``."""
    names: list[str | Path] = [PDQ_TESTDATA / "bridge-mods" / "aaa-orig.jpg", *_SKIMAGE_PHOTOS]
    if not 1 <= count <= len(names):
        raise ValueError(f"1 to {len(names)} listed photos, not {count}")
    photos = []
    for name in names[:count]:
        if isinstance(name, Path):
            photos.append(name)
            continue
        photo = directory / f"{name}.png"
        if not photo.exists():
            picture = getattr(skimage.data, name)()
            if name == "stereo_motorcycle":  # the left view of a stereo pair
                picture = picture[0]
            Image.fromarray(picture).convert("RGB").save(photo)
        photos.append(photo)
    return photos


def unrelated_photos() -> list[Path]:
    """Five PDQ test photos that are in no listed slideshow."""
    return [LABELME / f"{name}.jpg" for name in _LABELME_UNRELATED]


def slideshow(pictures: Sequence[Path], out: Path, seconds_each: float = 4) -> Path:
    """The pictures ``seconds_each`` seconds each at 480 × 360, 25 frames a second,
    each panned slowly, cut hard."""
    inputs: list[str | Path] = []
    chains = []
    for n, picture in enumerate(pictures):
        inputs += ["-loop", "1", "-framerate", "25", "-t", f"{seconds_each:g}", "-i", picture]
        chains.append(
            f"[{n}:v]scale=560:420:force_original_aspect_ratio=increase,crop=560:420,"
            f"crop=480:360:x='t*6':y='t*3',setsar=1,format=yuv420p[v{n}]"
        )
    joined = "".join(f"[v{n}]" for n in range(len(pictures)))
    graph = ";".join(chains) + f";{joined}concat=n={len(pictures)}:v=1:a=0[out]"
    ffmpeg(*inputs, "-filter_complex", graph, "-map", "[out]", *X264, "-crf", "20", out)
    return out


def pattern(
    out: Path,
    seconds: float,
    size: str = "480x360",
    rate: int = 25,
    codec: Sequence[str] = X264,
) -> Path:
    """``testsrc2`` of ``size`` for ``seconds`` at ``rate`` frames a second, encoded
    with ``codec``'s arguments (H.264 by default)."""
    source = f"testsrc2=size={size}:rate={rate}:duration={seconds:g}"
    ffmpeg("-f", "lavfi", "-i", source, *codec, out)
    return out
