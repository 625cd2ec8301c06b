"""The takedown chart: cumulative counts per list over time, drawn as SVG on the server.

No JavaScript and no chart library: ``LineChart.svg()`` writes the SVG, every
label escaped, and the page inserts it as it is. Counts
are cumulative, so each series is a step line: it stays at a value until the
next ack moves it. At most ``MAX_POINTS`` steps per series are drawn (the last
value in each slice of time is kept).

Three shapes of data are drawn on purpose, not by accident of the arithmetic:

- no point at all: an empty frame that says so, not a blank or a lone axis;
- every point at one moment (one ack so far): a marked point in the middle of
  the plot with one time label, not a zero-width line on the left edge labelled
  twice;
- points over a span: step lines inset from the frame, the first and last time
  labelled (and the middle one when it differs), each label exact enough to
  tell the ends apart.

The value axis ends at a round number above the largest total, so the top line
never runs along the frame.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from markupsafe import Markup

__all__ = ["COLOURS", "EMPTY_TEXT", "LineChart", "Series", "Tick", "line_chart"]

COLOURS = ("#1f5fa8", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0f766e")
MAX_POINTS = 300
EMPTY_TEXT = "No data yet"
"""What the chart says before any node has acked a count."""
EMPTY_HINT = "The chart starts with the first ack that reports a count."
INSET = 14
"""Horizontal room between the frame and the first and last point, so no mark is cut."""
_SMALL = (1, 2, 3, 4, 5, 6, 8, 10)
_ROUND = (10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100)
_TIME_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M UTC", "%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class Series:
    """One list's line: its label, colour, polyline points and latest point and value."""

    label: str
    colour: str
    points: str
    last_x: float
    last_y: float
    last: int


@dataclass(frozen=True)
class Tick:
    """A label on an axis: where, what, and how the text is anchored there."""

    at: float
    label: str
    anchor: str = "middle"


@dataclass(frozen=True)
class LineChart:
    """Everything needed to draw the chart, and the drawing (``svg``)."""

    width: int
    height: int
    left: int
    top: int
    plot_width: int
    plot_height: int
    series: tuple[Series, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]

    @property
    def empty(self) -> bool:
        return not self.series

    def svg(self, title: str = "Takedowns per list over time") -> Markup:
        """The chart as an ``<svg>`` element, the empty state included.

        Every piece is a literal template filled by ``Markup.format``, which
        escapes what it fills in: a list's name cannot become markup.
        """
        w, h = self.width, self.height
        parts = [
            Markup(
                '<svg class="{}" viewBox="0 0 {} {}" width="{}" height="{}" role="img" '
                'aria-label="{}">'
            ).format("chart empty" if self.empty else "chart", w, h, w, h, title),
            Markup(
                '<rect x="{}" y="{}" width="{}" height="{}" fill="#fbfbfd" stroke="#c8ccd4"/>'
            ).format(self.left, self.top, self.plot_width, self.plot_height),
        ]
        if self.empty:
            cx, cy = self.left + self.plot_width / 2, self.top + self.plot_height / 2
            parts.append(
                Markup(
                    '<text class="empty-text" x="{}" y="{}" text-anchor="middle" font-size="16" '
                    'fill="#566070">{}</text><text x="{}" y="{}" text-anchor="middle" '
                    'font-size="12" fill="#566070">{}</text>'
                ).format(cx, cy, EMPTY_TEXT, cx, cy + 22, EMPTY_HINT)
            )
        right = self.left + self.plot_width
        for tick in self.y_ticks:
            parts.append(
                Markup(
                    '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#e3e6eb"/>'
                    '<text class="y-tick" x="{}" y="{}" text-anchor="end" font-size="11" '
                    'fill="#444">{}</text>'
                ).format(self.left, right, tick.at, tick.at, self.left - 6, tick.at + 4, tick.label)
            )
        axis = self.top + self.plot_height
        for tick in self.x_ticks:
            parts.append(
                Markup(
                    '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#c8ccd4"/>'
                    '<text class="x-tick" x="{}" y="{}" text-anchor="{}" font-size="11" '
                    'fill="#444">{}</text>'
                ).format(
                    tick.at, tick.at, axis, axis + 5, tick.at, axis + 18, tick.anchor, tick.label
                )
            )
        for series in self.series:
            if " " in series.points:  # one point is a mark, not a line
                parts.append(
                    Markup(
                        '<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>'
                    ).format(series.points, series.colour)
                )
            parts.append(
                Markup(
                    '<circle cx="{}" cy="{}" r="4" fill="{}"><title>{}: {}</title></circle>'
                ).format(series.last_x, series.last_y, series.colour, series.label, series.last)
            )
        parts.append(Markup("</svg>"))
        return Markup("").join(parts)


def _time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _thin(points: list[tuple[float, int]], t0: float, span: float) -> list[tuple[float, int]]:
    """Keep the last point in each of ``MAX_POINTS`` slices of time."""
    if len(points) <= MAX_POINTS:
        return points
    kept: dict[int, tuple[float, int]] = {}
    for t, v in points:
        kept[min(MAX_POINTS - 1, int((t - t0) / span * MAX_POINTS))] = (t, v)
    return [kept[k] for k in sorted(kept)]


def _axis_top(largest: int) -> int:
    """A round number a tenth or more above ``largest`` (at least 1): room above the line."""
    wanted = max(1, math.ceil(largest * 1.1))
    if wanted <= 10:
        return next(n for n in _SMALL if n >= wanted)
    scale = int(10 ** (len(str(wanted)) - 2))
    return next(n * scale for n in _ROUND if n * scale >= wanted)


def _label(t: float, fmt: str) -> str:
    return datetime.fromtimestamp(t, UTC).strftime(fmt)


def _time_ticks(t0: float, t1: float, x: Mapping[str, float]) -> tuple[Tick, ...]:
    """The first, the middle and the last time, each exact enough to differ from the others."""
    if t1 <= t0:
        return (Tick(x["middle"], _label(t0, _TIME_FORMATS[1])),)
    span = t1 - t0
    for fmt in _TIME_FORMATS[0 if span >= 2 * 86_400 else 1 :]:
        first, last = _label(t0, fmt), _label(t1, fmt)
        if first != last:
            break
    else:  # under a second apart: one moment for people
        return (Tick(x["middle"], _label(t1, _TIME_FORMATS[-1])),)
    ticks = [Tick(x["start"], first, "start")]
    middle = _label(t0 + span / 2, fmt)
    if middle not in (first, last):
        ticks.append(Tick(x["middle"], middle))
    ticks.append(Tick(x["end"], last, "end"))
    return tuple(ticks)


def line_chart(
    history: Mapping[str, Sequence[tuple[str, int]]],
    *,
    width: int = 1120,
    height: int = 280,
) -> LineChart:
    """Lay out one step line per list from ``(received time, cumulative total)`` points."""
    left, top, right, bottom = 56, 12, 16, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    parsed = {
        label: [(_time(t), v) for t, v in points] for label, points in history.items() if points
    }
    if not parsed:
        return LineChart(width, height, left, top, plot_w, plot_h, (), (), ())
    times = [t for points in parsed.values() for t, _ in points]
    t0, t1 = min(times), max(times)
    span = t1 - t0
    axis_top = _axis_top(max(v for points in parsed.values() for _, v in points))
    inner = plot_w - 2 * INSET
    middle = round(left + plot_w / 2, 1)

    def x(t: float) -> float:
        if span <= 0:
            return middle
        return round(left + INSET + (t - t0) / span * inner, 1)

    def y(v: int) -> float:
        return round(top + plot_h - v / axis_top * plot_h, 1)

    series = []
    for i, (label, points) in enumerate(sorted(parsed.items())):
        steps: list[str] = []
        previous: int | None = None
        if span <= 0:  # every ack at one moment: where the list stands then, one mark
            points = points[-1:]
        for t, v in _thin(points, t0, max(span, 1.0)):
            if previous is not None and previous != v:
                steps.append(f"{x(t)},{y(previous)}")
            steps.append(f"{x(t)},{y(v)}")
            previous = v
        last_t, last_v = points[-1]
        if x(t1) != x(last_t):  # the line holds its last value to the newest ack of any list
            steps.append(f"{x(t1)},{y(last_v)}")
        series.append(
            Series(label, COLOURS[i % len(COLOURS)], " ".join(steps), x(last_t), y(last_v), last_v)
        )
    ends = {"start": x(t0), "middle": middle, "end": x(t1)}
    x_ticks = _time_ticks(t0, t1, ends)
    values = [0, axis_top] if axis_top % 2 else [0, axis_top // 2, axis_top]
    y_ticks = tuple(Tick(y(v), str(v), "end") for v in values)
    return LineChart(width, height, left, top, plot_w, plot_h, tuple(series), x_ticks, y_ticks)
