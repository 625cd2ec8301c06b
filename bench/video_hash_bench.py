"""Video hashing benchmark: vPDQ's robustness against edits, and what hashing costs.

Two questions about ``node.video.hash_video``, each answered next to a baseline.

**1. Does an edited copy still match?** Two source clips (``bench/video_clips.py``),
``--seconds`` (60) long at 480 × 360, 25 frames a second: a slideshow of photos (the
PDQ test photos and scikit-image's, five seconds each, panned slowly) and the
``testsrc2`` test pattern (every part moves each frame). Each is edited with
``ffmpeg``: re-encoded at ``LOW_BITRATE``; half resolution; a tenth of its length (in
whole seconds) trimmed off each end; a logo (scikit-image's, a sixth of the width)
overlaid at 50 % opacity in a corner; a caption drawn over it (``drawtext``); its
frame rate changed from 25 to 30 and to 15 frames a second. An unrelated video (a
slideshow of other photos) stands for the copy that must not match. Each copy is
hashed by ``hash_video`` (the node's path) and matched against its source by
``protocol.video.match_video`` (PROTOCOL.md §6.4): the query share (distinct good
frames of the copy within 31 bits of a source frame), the listed share, and the
median and worst distance from a good frame of the copy to its nearest good source
frame. The baseline is MD5 of the bytes, as Take It Down and StopNCII match videos:
it should match none of the copies.

**2. How fast is a video hashed?** ``testsrc2`` clips of ``--speed-seconds`` (60) at
30 frames a second: 720p and 1080p in H.264, 720p in VP9. Each is hashed by
``hash_video`` (``ffprobe`` reads the header in a capped worker process, then a
second worker decodes and hashes, and the bytes' MD5 and SHA-256 are taken) and by
bare ``vpdq.computeHash`` in this process, the baseline: what the hardening costs.
One frame hashed a second (``SECONDS_PER_FRAME``), every frame decoded. The best of
``--repeats`` (3) runs each, ours and bare alternating.

**Aims:** every edit matches and MD5 matches none, the unrelated video matches
neither; a one-minute 1080p H.264 video is hashed faster than real time.

Run: ``python bench/video_hash_bench.py [--quick] [--json] [--seconds S]
[--speed-seconds S] [--repeats N]``; needs ``ffmpeg``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: the project's packages are beside bench/
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import skimage.data
import vpdq
from PIL import Image

from bench.video_clips import (
    X264,
    ffmpeg,
    listed_photos,
    pattern,
    slideshow,
    unrelated_photos,
)
from node.video import SECONDS_PER_FRAME, VideoHash, hash_video
from protocol.video import MIN_QUALITY, Frame, match_video

__all__ = ["AIMS", "EDITS", "SPEED_CLIPS", "Config", "main", "run"]

SECONDS_PER_PHOTO = 5
"""How long the listed slideshow shows each photo (at most 12 photos: a minute)."""
LOW_BITRATE = 150
"""kbit/s of the low-bitrate re-encode."""
VP9 = ("-c:v", "libvpx-vp9", "-b:v", "2M", "-deadline", "realtime", "-cpu-used", "8")
"""VP9 as a browser's recorder writes it: fast, at a bitrate for 720p."""
SPEED_RATE = 30
"""Frames a second of the speed clips (a phone's)."""

AIMS: dict[str, Any] = {
    "robustness": "every edit matches, MD5 matches none, the unrelated video neither",
    "realtime_clip": "1080p-h264",
    "realtime_min": 1.0,
}

SOURCES = {
    "pictures": "photo slideshow",
    "pattern": "testsrc2 pattern",
}


@dataclass(frozen=True)
class SpeedClip:
    """One clip of the speed table: its size and codec."""

    label: str
    size: str
    codec: tuple[str, ...]
    extension: str


SPEED_CLIPS: dict[str, SpeedClip] = {
    "720p-h264": SpeedClip("720p H.264", "1280x720", X264, "mp4"),
    "1080p-h264": SpeedClip("1080p H.264", "1920x1080", X264, "mp4"),
    "720p-vp9": SpeedClip("720p VP9", "1280x720", VP9, "webm"),
}
QUICK_SIZES = {"720p-h264": "320x180", "1080p-h264": "480x270", "720p-vp9": "320x180"}
"""The speed clips' sizes under ``--quick``: the same three, small."""


@dataclass(frozen=True)
class Config:
    """What one run measures (from the command line)."""

    seconds: int = 60
    speed_seconds: int = 60
    repeats: int = 3
    quick: bool = False


QUICK = Config(seconds=20, speed_seconds=4, repeats=1, quick=True)


# -- the edits ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sources:
    """The source clips and what the edits draw on."""

    directory: Path
    seconds: int
    clips: dict[str, Path]
    unrelated: Path
    logo: Path


Edit = Callable[[Path, Path, Sources], list[str | Path]]


def _trim(src: Path, out: Path, sources: Sources) -> list[str | Path]:
    """A tenth off each end, in whole seconds: vpdq samples at whole seconds from the
    start, so a cut between them samples a moving picture at other instants."""
    cut = max(1, round(sources.seconds / 10))
    return ["-ss", str(cut), "-i", src, "-t", str(sources.seconds - 2 * cut), *X264, out]


def _logo(src: Path, out: Path, sources: Sources) -> list[str | Path]:
    return [
        *("-i", src, "-loop", "1", "-i", sources.logo),
        "-filter_complex",
        "[1:v]format=rgba,colorchannelmixer=aa=0.5[logo];"
        "[logo][0:v]scale2ref=w=main_w/6:h=ow/mdar[logo][base];"
        "[base][logo]overlay=W-w-8:8:shortest=1",
        *X264,
        out,
    ]


def _caption(src: Path, out: Path, sources: Sources) -> list[str | Path]:
    text = "drawtext=text='example.org  2026':fontcolor=white@0.8:fontsize=h/14:x=12:y=h-th-12"
    return ["-i", src, "-vf", text, *X264, out]


EDITS: dict[str, Edit] = {
    f"re-encoded at {LOW_BITRATE} kbit/s": lambda src, out, s: [
        *("-i", src, *X264, "-b:v", f"{LOW_BITRATE}k", out)
    ],
    "half resolution": lambda src, out, s: ["-i", src, "-vf", "scale=iw/2:ih/2", *X264, out],
    "10 % trimmed off each end": _trim,
    "logo at 50 % opacity": _logo,
    "caption (drawtext)": _caption,
    "25 → 30 frames a second": lambda src, out, s: ["-i", src, "-vf", "fps=30", *X264, out],
    "25 → 15 frames a second": lambda src, out, s: ["-i", src, "-vf", "fps=15", *X264, out],
}
UNRELATED = "unrelated video"


def make_sources(directory: Path, seconds: int) -> Sources:
    photos = min(12, max(1, seconds // SECONDS_PER_PHOTO))
    listed = listed_photos(directory, photos)
    others = unrelated_photos()
    logo = directory / "logo.png"
    # scikit-image's logo as it ships it: its loader is untyped.
    Image.open(Path(skimage.data.__file__).with_name("logo.png")).convert("RGBA").save(logo)
    return Sources(
        directory=directory,
        seconds=seconds,
        clips={
            "pictures": slideshow(listed, directory / "pictures.mp4", seconds / len(listed)),
            "pattern": pattern(directory / "pattern.mp4", seconds),
        },
        unrelated=slideshow(others, directory / "unrelated.mp4", seconds / len(others)),
        logo=logo,
    )


def _distance(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


def nearest_distances(query: Sequence[Frame], listed: Sequence[Frame]) -> list[int]:
    """For each good frame of ``query``, the distance to its nearest good listed frame."""
    theirs = [f.pdq for f in listed if f.quality >= MIN_QUALITY]
    if not theirs:
        return []
    return [min(_distance(f.pdq, o) for o in theirs) for f in query if f.quality >= MIN_QUALITY]


def robustness_row(
    clip: str, edit: str, source: VideoHash, copy: VideoHash, seconds: float
) -> dict[str, Any]:
    """One copy against its source: §6.4's shares and outcome, distances, MD5."""
    found = match_video(copy.frames, source.frames)
    distances = nearest_distances(copy.frames, source.frames)
    return {
        "clip": clip,
        "edit": edit,
        "unrelated": edit == UNRELATED,
        "frames": len(copy.frames),
        "query_share": list(found.query_share),
        "listed_share": list(found.listed_share),
        "median_distance": statistics.median(distances) if distances else None,
        "worst_distance": max(distances) if distances else None,
        "matched": found.matched,
        "md5_matched": copy.md5 == source.md5,
        "hash_s": seconds,
    }


def run_robustness(config: Config, directory: Path, log: Callable[[str], None]) -> dict[str, Any]:
    sources = make_sources(directory, config.seconds)
    hashed: dict[Path, tuple[VideoHash, float]] = {}

    def hash_of(path: Path) -> tuple[VideoHash, float]:
        if path not in hashed:
            start = time.perf_counter()
            video = hash_video(path)
            hashed[path] = (video, time.perf_counter() - start)
        return hashed[path]

    rows = []
    clips: dict[str, Any] = {}
    for clip, path in sources.clips.items():
        source, _ = hash_of(path)
        good = len({f.pdq for f in source.frames if f.quality >= MIN_QUALITY})
        clips[clip] = {"label": SOURCES[clip], "frames": len(source.frames), "good": good}
        for n, (edit, make) in enumerate(EDITS.items()):
            out = directory / f"{clip}-edit-{n}.mp4"
            ffmpeg(*make(path, out, sources))
            copy, seconds = hash_of(out)
            rows.append(robustness_row(clip, edit, source, copy, seconds))
            log(f"{clip}, {edit}: {_shown(rows[-1])}")
        other, seconds = hash_of(sources.unrelated)
        rows.append(robustness_row(clip, UNRELATED, source, other, seconds))
        log(f"{clip}, {UNRELATED}: {_shown(rows[-1])}")
    edits = [r for r in rows if not r["unrelated"]]
    unrelated = [r for r in rows if r["unrelated"]]
    summary = {
        "edits": len(edits),
        "edits_matched": sum(r["matched"] for r in edits),
        "md5_matched": sum(r["md5_matched"] for r in rows),
        "unrelated": len(unrelated),
        "unrelated_matched": sum(r["matched"] for r in unrelated),
    }
    met = (
        summary["edits_matched"] == summary["edits"]
        and summary["md5_matched"] == 0
        and summary["unrelated_matched"] == 0
    )
    return {"clips": clips, "rows": rows, "summary": summary, "met": met}


def _shown(row: dict[str, Any]) -> str:
    q, big_q = row["query_share"]
    lis, big_l = row["listed_share"]
    return (
        f"query {q}/{big_q} listed {lis}/{big_l} median {row['median_distance']} "
        f"worst {row['worst_distance']} -> {'MATCH' if row['matched'] else 'no'}"
        f", md5 {'MATCH' if row['md5_matched'] else 'no'}"
    )


# -- speed ----------------------------------------------------------------------------------


def decoded_frames(path: Path) -> int:
    """The video frames in the file (its video packets, counted by ``ffprobe``)."""
    done = subprocess.run(
        [
            *("ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets"),
            *("-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", str(path)),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout.strip().strip(","))


def _bare(path: Path) -> int:
    """vpdq's own call, in this process: the frames it hashed."""
    return len(vpdq.computeHash(str(path), seconds_per_hash=SECONDS_PER_FRAME))


def _ours(path: Path) -> int:
    return len(hash_video(path).frames)


METHODS: dict[str, tuple[str, Callable[[Path], int]]] = {
    "ours": ("ours: hash_video (probe + worker)", _ours),
    "bare": ("bare vpdq.computeHash", _bare),
}


def run_speed(config: Config, directory: Path, log: Callable[[str], None]) -> dict[str, Any]:
    rows = []
    ratios: dict[str, float] = {}
    for name, clip in SPEED_CLIPS.items():
        size = QUICK_SIZES[name] if config.quick else clip.size
        path = directory / f"speed-{name}.{clip.extension}"
        start = time.perf_counter()
        pattern(path, config.speed_seconds, size=size, rate=SPEED_RATE, codec=clip.codec)
        log(f"{name}: made in {time.perf_counter() - start:.1f} s")
        frames = decoded_frames(path)
        times: dict[str, list[float]] = {m: [] for m in METHODS}
        hashed: dict[str, int] = {}
        _bare(path)  # warm: the file in the page cache, vpdq's libraries loaded
        for _ in range(config.repeats):
            for method, (_, call) in METHODS.items():
                start = time.perf_counter()
                hashed[method] = call(path)
                times[method].append(time.perf_counter() - start)
        for method, (method_label, _) in METHODS.items():
            best = min(times[method])
            rows.append(
                {
                    "clip": name,
                    "label": clip.label if not config.quick else f"{clip.label} ({size})",
                    "size": size,
                    "codec": "vp9" if clip.codec is VP9 else "h264",
                    "bytes": path.stat().st_size,
                    "video_s": config.speed_seconds,
                    "decoded_frames": frames,
                    "method": method,
                    "method_label": method_label,
                    "runs_s": times[method],
                    "best_s": best,
                    "frames_hashed": hashed[method],
                    "hashed_per_s": hashed[method] / best,
                    "decoded_per_s": frames / best,
                    "realtime": config.speed_seconds / best,
                }
            )
            log(f"{name}, {method}: best {best:.2f} s of {config.repeats}")
        ratios[name] = min(times["ours"]) / min(times["bare"])
    by = {(r["clip"], r["method"]): r for r in rows}
    aimed = by.get((AIMS["realtime_clip"], "ours"))
    met = None if aimed is None else bool(aimed["realtime"] > AIMS["realtime_min"])
    return {"rows": rows, "ratios": ratios, "met": met}


# -- the run -------------------------------------------------------------------------------


def _ffmpeg_version() -> str:
    done = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=False)
    first = done.stdout.splitlines()[0] if done.stdout else ""
    words = first.split()
    return words[2] if len(words) > 2 and words[0] == "ffmpeg" else "unknown"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        vpdq_version = version("vpdq")
    except PackageNotFoundError:
        vpdq_version = "unknown"
    return {
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "vpdq": vpdq_version,
        "ffmpeg": _ffmpeg_version(),
    }


def run(config: Config, log: Callable[[str], None]) -> dict[str, Any]:
    """Every measurement of ``config``; the JSON document ``--json`` prints."""
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        raise SystemExit("the video hashing bench needs ffmpeg and ffprobe")
    with tempfile.TemporaryDirectory(prefix="video-hash-bench-") as scratch:
        directory = Path(scratch)
        robustness = run_robustness(config, directory, log)
        speed = run_speed(config, directory, log)
    return {
        "config": asdict(config),
        "machine": machine(),
        "edits": list(EDITS),
        "robustness": robustness,
        "speed": speed,
        "aims": AIMS,
        "met": {"robustness": robustness["met"], "realtime": speed["met"]},
    }


def _share(share: Sequence[int]) -> str:
    matched, total = share
    return f"{matched}/{total}"


def format_text(doc: dict[str, Any]) -> str:
    lines = [
        f"robustness: {doc['config']['seconds']} s clips, matched by PROTOCOL.md §6.4",
        f"{'clip':10} {'edit':28} {'query':>7} {'listed':>7} {'median':>6} {'worst':>5} "
        f"{'vPDQ':>5} {'MD5':>4}",
    ]
    for r in doc["robustness"]["rows"]:
        lines.append(
            f"{r['clip']:10} {r['edit']:28} {_share(r['query_share']):>7} "
            f"{_share(r['listed_share']):>7} {r['median_distance']!s:>6} "
            f"{r['worst_distance']!s:>5} {'yes' if r['matched'] else 'no':>5} "
            f"{'yes' if r['md5_matched'] else 'no':>4}"
        )
    summary = doc["robustness"]["summary"]
    lines.append(
        f"edits matched {summary['edits_matched']}/{summary['edits']}, MD5 matched "
        f"{summary['md5_matched']}, unrelated matched {summary['unrelated_matched']}"
        f"/{summary['unrelated']}: {'met' if doc['met']['robustness'] else 'NOT met'}"
    )
    lines.append(
        f"speed: {doc['config']['speed_seconds']} s clips, best of {doc['config']['repeats']}"
    )
    lines.append(
        f"{'clip':24} {'method':34} {'best s':>7} {'hashed/s':>9} {'decoded/s':>10} "
        f"{'× real time':>11}"
    )
    for r in doc["speed"]["rows"]:
        lines.append(
            f"{r['label']:24} {r['method_label']:34} {r['best_s']:7.2f} "
            f"{r['hashed_per_s']:9.1f} {r['decoded_per_s']:10.0f} {r['realtime']:11.1f}"
        )
    for clip, ratio in doc["speed"]["ratios"].items():
        lines.append(f"{clip}: ours/bare {ratio:.2f}")
    realtime = doc["met"]["realtime"]
    lines.append(
        f"aim: {AIMS['realtime_clip']} faster than real time: "
        f"{'-' if realtime is None else 'met' if realtime else 'NOT met'}"
    )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> tuple[Config, bool]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="20 s edit clips, small 4 s speed clips"
    )
    parser.add_argument("--seconds", type=int, help="length of the edited clips (default 60)")
    parser.add_argument("--speed-seconds", type=int, help="length of the speed clips (default 60)")
    parser.add_argument("--repeats", type=int, help="runs per speed figure, the best kept (3)")
    parser.add_argument("--json", action="store_true", help="the document as JSON")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else Config()
    changes: dict[str, Any] = {}
    for name, least in (("seconds", 10), ("speed_seconds", 1), ("repeats", 1)):
        value = getattr(args, name)
        if value is not None:
            if value < least:
                parser.error(f"--{name.replace('_', '-')} must be at least {least}")
            changes[name] = value
    return Config(**{**asdict(config), **changes}), args.json


def main(argv: Sequence[str] | None = None) -> int:
    config, as_json = parse_args(argv)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    doc = run(config, log)
    print(json.dumps(doc, indent=2) if as_json else format_text(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
