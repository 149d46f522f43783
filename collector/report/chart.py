"""A sensor's chart on the report's page: inline SVG drawn by leather (`pip install 'templog[report]'`).

A point of the chart is a span of the range (a window of `history --every`, or a day of the report: its row) and
its readings' mean, min and max. The mean is a line, the min-max a grey area, the thresholds a shaded band with
dashed edges, and every point whose extreme left the band a red dot at that extreme; a span without readings leaves a
hole in the line and the area (leather's Line starts a new path at a None). The x axis is the range, labelled in the
report's zone.

leather is imported here, at the top: only collector/report/html.py imports this module, and only when it renders.
leather's extension points are its public classes: Scale (x: the range exactly), Linear (y), Shape (the band, the
min-max area); its look is set through leather.theme, as its documentation says.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, NamedTuple
from zoneinfo import ZoneInfo

import leather

from collector.query import Row
from collector.report import DayFigures, SensorLimits
from collector.report.days import Day
from collector.ticks import NS_PER_S

WIDTH, HEIGHT = 760, 250  # SVG user units; the page scales the chart to its column's width
BAND_FILL = "#dff0d8"  # a pale tint: in black and white the band's dashed edges carry it
THRESHOLD_STROKE = "#2b6a2b"
RANGE_FILL = "#c4c4c4"
MEAN_STROKE = "#1f3b73"
OUTSIDE_FILL = "#d62728"  # a window's extreme beyond a threshold
FONT = "DejaVu Sans, Liberation Sans, Arial, sans-serif"


class Point(NamedTuple):
    """One point of the chart: the readings in start <= time < stop, their mean, min and max (°C)."""

    start_ns: int
    stop_ns: int
    mean: float
    min: float
    max: float


def window_points(windows: list[Row], every_s: float) -> list[Point]:
    """A point per window of history's rows `(window_start_ns, sensor, mean, min, max)`, in time order."""
    every_ns = round(every_s * NS_PER_S)
    return [Point(start, start + every_ns, mean, low, high) for start, _, mean, low, high in windows]


def day_points(rows: list[DayFigures], span: list[Day]) -> list[Point]:
    """A point per day of `span` (the report's days) that has readings, from the sensor's rows of the report: a day
    without readings is no point, so a hole. A day's min or max beyond a threshold (its red dot) is a day with
    excursions: the row counts them with the same test."""
    by_date = {row.day: row for row in rows}
    return [Point(day.start_ns, day.stop_ns, row.mean, row.min, row.max) for day in span
            if (row := by_date.get(day.date)) is not None and row.mean is not None and row.min is not None
            and row.max is not None]


def svg(sensor: SensorLimits, points: list[Point], per: str, start_ns: int, stop_ns: int, tz: ZoneInfo) -> str:
    """The sensor's chart as an inline <svg>, from its points in time order; `per` says what a point is in the
    legend ("window", "day"). x: seconds since the range's start."""
    span_s = (stop_ns - start_ns) / NS_PER_S

    def x(ns: int) -> float:
        return min(max((ns - start_ns) / NS_PER_S, 0.0), span_s)

    runs = [[(x(p.start_ns), x((p.start_ns + p.stop_ns) // 2), x(p.stop_ns), p.min, p.max, p.mean) for p in run]
            for run in _runs(points)]
    means: list[tuple[float, float | None]] = []
    for run in runs:
        if means:
            means.append((means[-1][0], None))  # the line stops here and starts again
        means += [(middle, mean) for _, middle, _, _, _, mean in run]
    outside = [(middle, value) for run in runs for _, middle, _, low, high, _ in run
               for value in (low if sensor.low is not None and low < sensor.low else None,
                             high if sensor.high is not None and high > sensor.high else None)
               if value is not None]
    values = [v for run in runs for _, _, _, low, high, _ in run for v in (low, high)]
    values += [t for t in (sensor.low, sensor.high) if t is not None]
    bottom, top = min(values), max(values)
    pad = max((top - bottom) * 0.05, 0.5)

    _theme()
    chart = leather.Chart()
    chart.set_x_scale(TimeScale(span_s))
    chart.set_y_scale(CelsiusScale(bottom - pad, top + pad))
    chart.set_x_axis(leather.Axis(ticks=_x_ticks(start_ns, stop_ns, tz), tick_formatter=_x_label(start_ns, tz)))
    chart.set_y_axis(leather.Axis(tick_formatter=lambda value, index, count: f"{float(value):g}", name="\u00b0C"))
    if sensor.low is not None or sensor.high is not None:
        level = sensor.low if sensor.low is not None else sensor.high
        chart.add_series(leather.Series([(0.0, level), (span_s, level)], name="thresholds"),
                         Band(sensor.low, sensor.high))
    # the Series of the two shapes of our own only tells leather their type and extent; they draw from `runs`
    chart.add_series(leather.Series([(run[0][0], run[0][3]) for run in runs], name=f"min\u2013max per {per}"),
                     Range([[(start, end, low, high) for start, _, end, low, high, _ in run] for run in runs]))
    chart.add_series(leather.Series(means, name=f"mean per {per}"), leather.Line(MEAN_STROKE, 1.4))
    if outside:
        chart.add_series(leather.Series(outside, name="outside the thresholds"), leather.Dots(OUTSIDE_FILL, 2.6))

    root = ET.Element("svg", {"class": "chart", "viewBox": f"0 0 {WIDTH} {HEIGHT}", "role": "img",
                              "aria-label": f"temperature of {sensor.name}"})  # ElementTree escapes it
    root.append(chart.to_svg_group(WIDTH, HEIGHT))
    return ET.tostring(root, encoding="unicode")


def _runs(points: list[Point]) -> list[list[Point]]:
    """The points in runs of successive spans: a span with no reading (no point) ends a run."""
    runs: list[list[Point]] = []
    for point in points:
        if runs and point.start_ns == runs[-1][-1].stop_ns:
            runs[-1].append(point)
        else:
            runs.append([point])
    return runs


def _theme() -> None:
    """Print-sized type, black on white, a light grid."""
    theme = leather.theme
    theme.background_color = "#ffffff"
    theme.margin = 0.015
    for part in ("title", "legend", "axis_title", "tick"):
        setattr(theme, f"{part}_font_family", FONT)
        setattr(theme, f"{part}_font_size", 11)
        setattr(theme, f"{part}_font_char_height", 11)
        setattr(theme, f"{part}_font_char_width", 6.5)
    theme.legend_color = theme.axis_title_color = theme.label_color = "#222222"
    theme.tick_color = theme.zero_color = "#d0d0d0"  # x = 0 is the range's start, y = 0 just 0 °C: no axis to stress
    theme.axis_title_gap = 10


class TimeScale(leather.Scale):
    """x: seconds since the range's start, onto exactly the range (leather's Linear rounds its domain out to whole
    ticks, past the range's ends)."""

    def __init__(self, span_s: float):
        self.span_s = span_s

    def contains(self, value: float) -> bool:
        return 0 <= value <= self.span_s

    def project(self, value: float, range_min: float, range_max: float) -> float:
        return round(range_min + (range_max - range_min) * value / self.span_s, 2)

    def ticks(self) -> list[float]:
        return [0.0, self.span_s]


class CelsiusScale(leather.Linear):
    """y: leather's Linear (round ticks), its positions rounded to 0.01 unit (its Decimals have 28 digits)."""

    def project(self, value: float, range_min: float, range_max: float) -> float:
        return round(float(super().project(value, range_min, range_max)), 2)


class Band(leather.Shape):
    """The thresholds: shaded from `low` to `high` (to the chart's edge on a side without one), each threshold a
    dashed line."""

    _fill_color = BAND_FILL  # the legend's swatch

    def __init__(self, low: float | None, high: float | None):
        self.low, self.high = low, high

    def validate_series(self, series: Any) -> None:
        pass

    def to_svg(self, width: float, height: float, x_scale: Any, y_scale: Any, series: Any, palette: Any) -> Any:
        y_top = 0.0 if self.high is None else y_scale.project(self.high, height, 0)
        y_bottom = float(height) if self.low is None else y_scale.project(self.low, height, 0)
        group = ET.Element("g", {"class": "band"})
        group.append(ET.Element("rect", {"x": "0", "y": str(y_top), "width": str(width),
                                         "height": str(round(y_bottom - y_top, 2)), "fill": BAND_FILL,
                                         "fill-opacity": "0.75"}))  # the grid shows through
        for level in (self.low, self.high):
            if level is not None:
                y = str(y_scale.project(level, height, 0))
                group.append(ET.Element("line", {"x1": "0", "x2": str(width), "y1": y, "y2": y,
                                                 "stroke": THRESHOLD_STROKE, "stroke-width": "1",
                                                 "stroke-dasharray": "5 3"}))
        return group


class Range(leather.Shape):
    """Min-max per point: one stepped area per run of points `(x_start, x_end, min, max)`, so a span without
    readings is a hole, not an area bridged across it."""

    _fill_color = RANGE_FILL

    def __init__(self, runs: list[list[tuple[float, float, float, float]]]):
        self.runs = runs

    def validate_series(self, series: Any) -> None:
        pass

    def to_svg(self, width: float, height: float, x_scale: Any, y_scale: Any, series: Any, palette: Any) -> Any:
        group = ET.Element("g", {"class": "range"})
        for run in self.runs:
            upper = [(x_scale.project(x, 0, width), y_scale.project(high, height, 0))
                     for start, end, _, high in run for x in (start, end)]
            lower = [(x_scale.project(x, 0, width), y_scale.project(low, height, 0))
                     for start, end, low, _ in reversed(run) for x in (end, start)]
            group.append(ET.Element("polygon", {"points": " ".join(f"{px},{py}" for px, py in upper + lower),
                                                "fill": RANGE_FILL}))
        return group


def _x_ticks(start_ns: int, stop_ns: int, tz: ZoneInfo) -> list[float]:
    """Seconds since the start of each midnight in `tz` within the range and, over four days or less, of every
    third, sixth or twelfth hour on the clock (none in an hour a DST change skips)."""
    span_h = (stop_ns - start_ns) / NS_PER_S / 3600
    step = timedelta(hours=3 if span_h <= 26 else 6 if span_h <= 50 else 12 if span_h <= 100 else 24)
    wall = datetime.fromtimestamp(start_ns // NS_PER_S, tz).replace(hour=0, minute=0, second=0, tzinfo=None)
    ticks = []
    while (ns := int(wall.replace(tzinfo=tz).timestamp()) * NS_PER_S) < stop_ns:
        if ns >= start_ns and datetime.fromtimestamp(ns // NS_PER_S, tz).replace(tzinfo=None) == wall:
            ticks.append((ns - start_ns) / NS_PER_S)
        wall += step
    return ticks


def _x_label(start_ns: int, tz: ZoneInfo) -> Callable[[float, int, int], str]:
    """A tick's label: `03-29` at midnight, `06:00` at other hours; over many days every n-th midnight only (about
    12 labels fit the chart's width)."""
    def label(value: float, index: int, count: int) -> str:
        moment = datetime.fromtimestamp(start_ns // NS_PER_S + value, timezone.utc).astimezone(tz)
        if moment.hour or moment.minute:
            return moment.strftime("%H:%M")
        return moment.strftime("%m-%d") if index % max(1, math.ceil(count / 12)) == 0 else ""

    return label
