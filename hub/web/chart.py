"""The takedown chart: cumulative counts per list over time, drawn as SVG on the server.

No JavaScript and no chart library: the dashboard's template draws the lines
from the coordinates computed here (so every label still goes through Jinja's
autoescaping). Counts are cumulative, so each series is a step line: it stays
at a value until the next ack moves it. At most ``MAX_POINTS`` steps per series
are drawn (the last value in each slice of time is kept).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["COLOURS", "LineChart", "Series", "line_chart"]

COLOURS = ("#1f5fa8", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0f766e")
MAX_POINTS = 300


@dataclass(frozen=True)
class Series:
    """One list's line: its label, colour, SVG polyline points and latest value."""

    label: str
    colour: str
    points: str
    last_x: float
    last_y: float
    last: int


@dataclass(frozen=True)
class LineChart:
    """Everything the template needs to draw the chart."""

    width: int
    height: int
    left: int
    top: int
    plot_width: int
    plot_height: int
    series: tuple[Series, ...]
    x_ticks: tuple[tuple[float, str], ...]
    y_ticks: tuple[tuple[float, str], ...]

    @property
    def empty(self) -> bool:
        return not self.series


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


def line_chart(
    history: Mapping[str, Sequence[tuple[str, int]]],
    *,
    width: int = 760,
    height: int = 260,
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
    span = max(t1 - t0, 1.0)
    top_value = max(1, max(v for points in parsed.values() for _, v in points))

    def x(t: float) -> float:
        return round(left + (t - t0) / span * plot_w, 1)

    def y(v: int) -> float:
        return round(top + plot_h - v / top_value * plot_h, 1)

    series = []
    for i, (label, points) in enumerate(sorted(parsed.items())):
        steps: list[str] = []
        previous: int | None = None
        for t, v in _thin(points, t0, span):
            if previous is not None:
                steps.append(f"{x(t)},{y(previous)}")
            steps.append(f"{x(t)},{y(v)}")
            previous = v
        last_t, last_v = points[-1]
        steps.append(f"{x(t1)},{y(last_v)}")
        series.append(
            Series(
                label,
                COLOURS[i % len(COLOURS)],
                " ".join(steps),
                x(last_t),
                y(last_v),
                last_v,
            )
        )
    x_ticks = tuple(
        (x(t), datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC"))
        for t in ((t0, t1) if t1 > t0 else (t0,))
    )
    y_ticks = tuple((y(v), str(v)) for v in sorted({0, top_value // 2, top_value}))
    return LineChart(width, height, left, top, plot_w, plot_h, tuple(series), x_ticks, y_ticks)
