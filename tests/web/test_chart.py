"""The takedown chart drawn for no data, one data point and many, read from its SVG.

With one ack the chart used to put the same time label at both ends and draw a
zero-width line on the plot's left edge. Each shape of data is checked here on
the SVG itself: where the marks are, which labels there are, and that the
labels are escaped.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from hub.web.chart import EMPTY_TEXT, INSET, LineChart, line_chart

SVG = "{http://www.w3.org/2000/svg}"


def parsed(chart: LineChart) -> ET.Element:
    """The chart's SVG as XML: it must be well-formed to be parsed at all."""
    return ET.fromstring(str(chart.svg()).replace("<svg ", f'<svg xmlns="{SVG[1:-1]}" ', 1))


def texts(root: ET.Element, css: str) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text") if t.get("class") == css]


def floats(points: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in (p.split(",") for p in points.split())]


def test_no_data_is_an_empty_frame_that_says_so() -> None:
    chart = line_chart({"tid-md5": [], "tid-pdq": []})
    assert chart.empty
    root = parsed(chart)
    assert "empty" in (root.get("class") or "")
    assert texts(root, "empty-text") == [EMPTY_TEXT]
    assert list(root.iter(f"{SVG}polyline")) == []
    assert list(root.iter(f"{SVG}circle")) == []
    assert texts(root, "x-tick") == texts(root, "y-tick") == []  # no axis without data
    assert line_chart({}).svg() == chart.svg()


def test_one_point_is_one_mark_in_the_middle_with_one_label() -> None:
    chart = line_chart({"tid-md5": [("2026-03-04T05:06:07Z", 3)]})
    root = parsed(chart)
    assert list(root.iter(f"{SVG}polyline")) == []  # no line of zero width
    [mark] = root.iter(f"{SVG}circle")
    middle = chart.left + chart.plot_width / 2
    assert float(mark.get("cx", "")) == middle  # not on the left edge
    assert chart.top < float(mark.get("cy", "")) < chart.top + chart.plot_height
    [title] = mark.iter(f"{SVG}title")
    assert title.text == "tid-md5: 3"
    assert texts(root, "x-tick") == ["2026-03-04 05:06 UTC"]  # once, not at both ends
    [tick] = [t for t in root.iter(f"{SVG}text") if t.get("class") == "x-tick"]
    assert (float(tick.get("x", "")), tick.get("text-anchor")) == (middle, "middle")
    assert texts(root, "y-tick") == ["0", "2", "4"]  # the axis ends above the value
    assert EMPTY_TEXT not in str(chart.svg())


def test_several_acks_at_one_moment_are_one_mark_at_the_last_value() -> None:
    chart = line_chart({"a": [("2026-03-04T05:06:07Z", 1), ("2026-03-04T05:06:07Z", 3)]})
    root = parsed(chart)
    assert list(root.iter(f"{SVG}polyline")) == []  # no vertical line at one moment
    [mark] = root.iter(f"{SVG}circle")
    assert float(mark.get("cx", "")) == chart.left + chart.plot_width / 2
    assert chart.series[0].last == 3
    assert len(texts(root, "x-tick")) == 1


def test_many_points_step_through_cumulative_totals_inside_the_frame() -> None:
    chart = line_chart(
        {
            "a": [("2026-01-01T00:00:00Z", 0), ("2026-01-02T00:00:00Z", 4)],
            "b": [("2026-01-01T12:00:00Z", 1)],
            "c": [],
        }
    )
    root = parsed(chart)
    a, b = chart.series
    assert (a.label, a.last, b.label, b.last) == ("a", 4, "b", 1)
    points = floats(a.points)
    xs = [x for x, _ in points]
    assert xs == sorted(xs)
    assert xs[0] == chart.left + INSET  # inside the frame, not on it
    assert xs[-1] == chart.left + chart.plot_width - INSET
    assert points[0][1] == chart.top + chart.plot_height  # starts at 0
    assert chart.top < points[-1][1] < points[0][1]  # ends high, below the frame's top
    assert [p[0] for p in points[1:3]] == [xs[-1], xs[-1]]  # a step: across, then up
    # "b" reported once, in the middle of the span: it holds its value to the newest ack.
    assert floats(b.points) == [(chart.left + chart.plot_width / 2, b.last_y), (xs[-1], b.last_y)]
    assert len(list(root.iter(f"{SVG}polyline"))) == 2
    assert len(list(root.iter(f"{SVG}circle"))) == 2
    labels = texts(root, "x-tick")
    assert labels == ["2026-01-01 00:00 UTC", "2026-01-01 12:00 UTC", "2026-01-02 00:00 UTC"]
    assert len(set(labels)) == len(labels)


def test_points_within_one_minute_get_labels_that_tell_them_apart() -> None:
    chart = line_chart({"a": [("2026-01-01T00:00:05Z", 1), ("2026-01-01T00:00:50Z", 2)]})
    labels = texts(parsed(chart), "x-tick")
    assert labels[0] == "2026-01-01 00:00:05 UTC"
    assert labels[-1] == "2026-01-01 00:00:50 UTC"
    assert len(set(labels)) == len(labels)


def test_a_span_of_days_is_labelled_by_day() -> None:
    chart = line_chart({"a": [("2026-01-01T08:00:00Z", 1), ("2026-01-11T09:00:00Z", 2)]})
    assert texts(parsed(chart), "x-tick") == ["2026-01-01", "2026-01-06", "2026-01-11"]


def test_a_list_name_is_escaped_in_the_svg() -> None:
    svg = str(line_chart({"<script>x</script>": [("2026-01-01T00:00:00Z", 1)]}).svg())
    assert "<script>" not in svg
    assert "&lt;script&gt;x&lt;/script&gt;: 1" in svg
    assert re.fullmatch(r"<svg .*</svg>", svg, re.S)
