"""`templog report --format html`: the report as one printable page (spec "Compliance report").

Everything is in the one file: the CSS and, per sensor, its chart as inline SVG (collector/report/chart.py, drawn
by leather, an optional extra: `pip install 'templog[report]'`). No script, no font, image or link that loads: the
page opens and prints (A4) with no network. Every text in it, sensor names included, is escaped.

Per sensor: a header (name, thresholds, interval), its chart (at most MAX_CHART_WINDOWS windows this module
chooses, none across a local midnight, or else the days of the report), then the table of its days, the days with
missing readings and those with excursions marked.
"""

from __future__ import annotations

import html
import itertools
import time
from datetime import datetime
from types import ModuleType
from typing import IO, Callable, Iterator, Sequence
from zoneinfo import ZoneInfo

from collector import __version__
from collector.durations import format_duration
from collector.errors import TemplogError
from collector.query import HistoryQuery, Row
from collector.report import DayFigures, SensorLimits, formats
from collector.report.days import Day, days
from collector.ticks import NS_PER_S, parse_rfc3339_ns, utc_text

# The chart's window: the sensor's interval or the first of these (seconds) longer than it that gives at most
# MAX_CHART_WINDOWS windows over the range and that no local midnight falls inside; when none does, a point is a
# day of the report (its row: no query). A monthly report is the common one: its hours (31 days and a DST hour,
# 745) fit, about the points an A4 chart's width can show; more would be a data dump, not a page.
CHART_WINDOWS_S = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600)
MAX_CHART_WINDOWS = 750
NULL = "\u2013"  # how the table shows a figure the day has not (an en dash)

PAGE_CSS = """
@page { size: A4; margin: 12mm 12mm 14mm 12mm; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font: 10pt/1.35 "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color: #111; background: #fff;
       max-width: 186mm; margin: 8mm auto; }
h1 { font-size: 15pt; margin: 0 0 2mm; }
h2 { font-size: 12pt; margin: 0 0 1mm; overflow-wrap: anywhere; break-after: avoid; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 0 4mm; margin: 0 0 4mm; font-size: 9pt; }
dl.meta dt { color: #444; } dl.meta dd { margin: 0; overflow-wrap: anywhere; }
section.sensor { margin: 0 0 7mm; padding-top: 3mm; border-top: 0.4mm solid #111; }
div.top { break-inside: avoid; }
p.limits { margin: 0 0 1mm; font-size: 9pt; break-after: avoid; }
figure { margin: 0 0 2mm; break-inside: avoid; break-after: avoid; }
svg.chart { display: block; width: 100%; height: auto; }
svg.chart text { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; }
p.nochart { border: 0.3mm dashed #777; padding: 6mm; text-align: center; color: #444; }
table { border-collapse: collapse; width: 100%; font-size: 7.5pt; font-variant-numeric: tabular-nums; }
thead { display: table-header-group; }
tr { break-inside: avoid; }
th, td { border-bottom: 0.2mm solid #bbb; padding: 0.5mm 0.8mm; text-align: right; white-space: nowrap; }
th { border-bottom: 0.4mm solid #111; vertical-align: bottom; white-space: normal; }
th:first-child, td:first-child { text-align: left; }
td small { color: #555; }
tr.excursion td { background: #fbe3e2; }
tr.excursion td.excursions { font-weight: bold; }
td.incomplete { font-weight: bold; text-decoration: underline dotted; }
p.key { font-size: 7.5pt; color: #333; margin: 1mm 0 0; }
"""


class ChartingMissing(TemplogError):
    """`--format html` without its charting library installed."""

    def __init__(self) -> None:
        super().__init__("--format html draws its charts with leather, which is not installed: "
                         "pip install 'templog[report]'")


def require_charting() -> None:
    """Raise ChartingMissing unless the charting library imports: the CLI asks before it queries anything."""
    _chart()


def _chart() -> ModuleType:
    """collector.report.chart, and leather with it, imported on first use (BENCHMARKS.md section 18: about 0.1 s),
    so that no other command pays for it and the collector runs without it."""
    try:
        from collector.report import chart
    except ModuleNotFoundError as exc:
        if exc.name != "leather" and not (exc.name or "").startswith("leather."):
            raise
        raise ChartingMissing() from exc
    return chart


def chart_window_s(interval_s: float, span: Sequence[Day]) -> float | None:
    """The shortest window of the ladder (the sensor's interval, then CHART_WINDOWS_S longer than it) that cuts the
    range of the report's days `span` into at most MAX_CHART_WINDOWS windows, none of them across a local midnight
    (a day's start); None when no window does: the chart is then a point per day.

    history's windows are whole multiples of the window since the epoch (UTC), so a window crosses no midnight
    only if every midnight inside the range is such a multiple too (in Europe/Berlin, 23:00 or 22:00 UTC: windows
    of an hour at most); else one window holds the end of a day and the start of the next, and its red dot can
    sit on the day before the one whose row has the excursion."""
    midnights = [day.start_ns for day in span[1:]]  # the first day starts at the range's start
    span_s = (span[-1].stop_ns - span[0].start_ns) / NS_PER_S
    ladder = [interval_s, *(w for w in CHART_WINDOWS_S if w > interval_s)]
    return next((w for w in ladder if span_s / w <= MAX_CHART_WINDOWS
                 and all(midnight % round(w * NS_PER_S) == 0 for midnight in midnights)), None)


def write_html(rows: list[DayFigures], limits: tuple[SensorLimits, ...], history: Callable[[HistoryQuery],
               Iterator[Row]], start_ns: int, stop_ns: int, zone: str, source: str, out: IO[str]) -> None:
    """The page of `rows` (ordered by sensor, then day: the report's) for the sensors of `limits`, in their order,
    over start <= time < stop in `zone`; each chart from `history`'s `mean, min, max` per window (rows of `templog
    history --every`), or from `rows` when it is a point per day (no query). `source` names where the figures came
    from, as the page's header shows it."""
    chart = _chart()
    tz = ZoneInfo(zone)
    by_sensor = {sensor: list(group) for sensor, group in itertools.groupby(rows, key=lambda row: row.sensor)}
    span = list(days(tz, start_ns, stop_ns))
    out.write(_head(start_ns, stop_ns, tz, zone, source))
    for sensor in limits:
        mine = by_sensor.get(sensor.name, [])
        every_s = chart_window_s(sensor.interval_s, span)
        if every_s is None:  # a point per day: the table's own rows, no query
            points, legend, caption = chart.day_points(mine, span), "day", "day"
        else:
            windows = [row for row in history(HistoryQuery(start_ns, stop_ns, (sensor.name,), every_s=every_s))
                       if row[1] == sensor.name]
            points, legend, caption = chart.window_points(windows, every_s), "window", format_duration(every_s)
        figure = chart.svg(sensor, points, legend, start_ns, stop_ns, tz) if points else \
            '<p class="nochart">No readings in the range.</p>'
        out.write(_section(sensor, mine, figure, caption, tz))
    out.write("</body>\n</html>\n")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _local(ns: int, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(ns // NS_PER_S, tz)


def _head(start_ns: int, stop_ns: int, tz: ZoneInfo, zone: str, source: str) -> str:
    def moment(ns: int) -> str:
        return _local(ns, tz).strftime("%Y-%m-%d %H:%M:%S %z")

    span = f"{moment(start_ns)} to {moment(stop_ns)}"
    meta = (("Source", source), ("Time zone", f"{zone} (days are midnight to midnight here)"),
            ("Range", span), ("Generated", utc_text(time.time_ns())), ("By", f"templog {__version__}"))
    items = "".join(f"<dt>{_e(key)}</dt><dd>{_e(value)}</dd>" for key, value in meta)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{_e(f'Temperature report, {span}')}</title>\n<style>{PAGE_CSS}</style>\n</head>\n<body>\n"
            f'<h1>Temperature report</h1>\n<dl class="meta">{items}</dl>\n')


COLUMNS = ("day", "readings", "expected", "complete", "min \u00b0C", "max \u00b0C", "mean \u00b0C", "MKT \u00b0C",
           "minutes below", "minutes above", "excursions", "longest (min)")


def _section(sensor: SensorLimits, rows: list[DayFigures], chart: str, per: str, tz: ZoneInfo) -> str:
    """`per`: what a point of the chart is ("15m", "day")."""
    heading = (f'<h2>{_e(sensor.name)}</h2>\n<p class="limits">{_e(sensor.thresholds())} \u00b7 a reading every '
               f"{_e(format_duration(sensor.interval_s))} \u00b7 chart: mean and min\u2013max per {_e(per)}</p>\n")
    head = "".join(f"<th>{_e(c)}</th>" for c in COLUMNS)
    body = "".join(_day_row(day, tz) for day in rows)
    key = ("Bold, dotted completeness: readings are missing that day. Shaded rows: the temperature left its "
           f"thresholds. Times are in {tz.key}; {NULL}: no value.")
    # the header and chart kept together on one page; the table after them breaks across pages, its header row
    # repeated on each (thead: display: table-header-group): a year's 365 rows fit no page
    return (f'<section class="sensor">\n<div class="top">{heading}<figure>{chart}</figure></div>\n<table>\n'
            f'<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n<p class="key">{_e(key)}</p>\n'
            "</section>\n")


def _day_row(day: DayFigures, tz: ZoneInfo) -> str:
    incomplete = day.completeness is not None and day.completeness < 1
    cells = [  # (class, HTML): every text escaped
        ("", _e(day.day)),
        ("", _e(day.readings)),
        ("", _e(day.expected)),
        ("incomplete" if incomplete else "", _e(_percent(day.completeness))),
        ("", _extreme(day.min, day.min_time, tz)),
        ("", _extreme(day.max, day.max_time, tz)),
        ("", _e(_celsius(day.mean))),
        ("", _e(_celsius(day.mkt))),
        ("", _e(_minutes(day.minutes_below))),
        ("", _e(_minutes(day.minutes_above))),
        ("excursions", _e(NULL if day.excursions is None else day.excursions)),
        ("", _e(_minutes(day.longest_excursion_minutes))),
    ]
    row_class = ' class="excursion"' if day.excursions else ""
    tds = "".join(f'<td class="{css}">{text}</td>' if css else f"<td>{text}</td>" for css, text in cells)
    return f"<tr{row_class}>{tds}</tr>\n"


def _percent(completeness: float | None) -> str:
    if completeness is None:
        return NULL
    return f"{formats.percent(completeness)} %"


def _celsius(value: float | None) -> str:
    return NULL if value is None else f"{value:.2f}"


def _minutes(value: float | None) -> str:
    return NULL if value is None else formats.minutes(value)


def _extreme(value: float | None, rfc3339: str | None, tz: ZoneInfo) -> str:
    """`2.13 <small>04:10</small>` (HTML, escaped): the value and, in the report's zone, when it was first reached."""
    if value is None:
        return NULL
    if rfc3339 is None:
        return _e(_celsius(value))
    return f"{_e(_celsius(value))} <small>{_e(_local(parse_rfc3339_ns(rfc3339), tz).strftime('%H:%M'))}</small>"
