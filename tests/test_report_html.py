"""`templog report --format html`: the page write_html renders (collector/report/html.py), opened in a real headless
Debian Chromium (tests/chromium.py: the DevTools protocol on a pipe) as a user opens the file: it loads with no
console error and no request but its own, shows a chart per sensor with the excursions in red and the gaps as
gaps, every name as text, and prints on A4 pages.

The page is of tests/report_sample.py: three days in Europe/Berlin (one of 23 hours), a fridge with a gap and
excursions both ways, a cellar without thresholds, a freezer with a max only and a hostile name. One browser serves
every check (a module fixture). Then the chart's points: windows that never cross a local midnight, else the days of
the report. At the end, `templog report --format html` as a real process: from the outbox and from a real influxd
1.6, and without leather.
"""

from __future__ import annotations

import base64
import bisect
import dataclasses
import datetime as dt
import io
import math
import os
import re
import socket
import subprocess
import sys
import textwrap
import zlib
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import report_sample
import test_report
from chromium import Chromium, png_pixels
from cli import ROOT, templog
from collector.history import aggregate
from collector.query import HistoryQuery
from collector.report import SensorLimits, html
from collector.report.chart import MEAN_STROKE, OUTSIDE_FILL
from collector.report.days import days
from report_reference import reference_day

S = 1_000_000_000
DAY = 86400 * S
A4_POINTS = (595.28, 841.89)  # 210 x 297 mm in PDF points (1/72 in)
SENSORS = [sensor.name for sensor in report_sample.LIMITS]


def rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The rendered page in a file, and the history queries it made."""
    asked: list[HistoryQuery] = []

    def history(query):
        asked.append(query)
        return report_sample.history(query)

    folder = tmp_path_factory.mktemp("report")
    with open(folder / "report.html", "w", encoding="utf-8") as out:
        html.write_html(report_sample.days(), report_sample.LIMITS, history, report_sample.START_NS,
                        report_sample.STOP_NS, report_sample.ZONE, "outbox data/outbox.sqlite", out)
    return folder / "report.html", asked


@pytest.fixture(scope="module")
def browser(page, tmp_path_factory):
    with Chromium(tmp_path_factory.mktemp("chromium-profile")) as chromium:
        chromium.open(page[0])
        yield chromium


def test_the_page_loads_offline_with_no_console_error(page, browser):
    errors = [e for e in browser.events if e["method"] == "Runtime.exceptionThrown"
              or e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert")
              or e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error"]
    assert errors == []
    # the only request is the file itself: no font, image, style sheet or script from anywhere
    requested = {e["params"]["request"]["url"] for e in browser.events if e["method"] == "Network.requestWillBeSent"}
    assert requested == {page[0].resolve().as_uri()}
    assert browser.evaluate("document.querySelectorAll('script, img, link, iframe, object, embed, image').length") \
        == 0


def test_every_sensor_has_its_section_named_as_it_is(browser):
    """The names are text, the hostile one too (`<img src="x.png"> </svg></table> & 'freezer' "A"`): unescaped
    it would be an image (a request) and close the chart and table around it."""
    assert browser.evaluate("[...document.querySelectorAll('section.sensor h2')].map(h => h.textContent)") == SENSORS
    assert browser.evaluate("[...document.querySelectorAll('section.sensor')].map(s => "
                            "s.querySelectorAll('svg.chart').length + s.querySelectorAll('table').length)") \
        == [2, 2, 2]
    assert browser.evaluate("document.title") == \
        "Temperature report, 2026-03-28 00:00:00 +0100 to 2026-03-31 00:00:00 +0200"


def test_the_screenshot_shows_a_chart_per_sensor_with_the_excursions_in_red(browser):
    boxes = browser.evaluate("[...document.querySelectorAll('svg.chart')].map(c => { const r = "
                             "c.getBoundingClientRect(); return {x: r.x + scrollX, y: r.y + scrollY, "
                             "width: r.width, height: r.height, scale: 1}; })")
    assert len(boxes) == len(SENSORS)
    red, navy = rgb(OUTSIDE_FILL), rgb(MEAN_STROKE)

    def near(pixel: tuple[int, ...], color: tuple[int, int, int]) -> bool:
        return all(abs(a - b) <= 24 for a, b in zip(pixel, color, strict=True))

    drawn, lines, reds = [], [], []
    for box in boxes:
        assert box["width"] > 500 and box["height"] > 150  # the chart fills the column
        width, height, pixels = png_pixels(browser.screenshot(box, speed=True))
        colors = Counter(pixels)
        drawn.append(1 - colors[(255, 255, 255)] / (width * height))
        lines.append(sum(n for color, n in colors.items() if near(color, navy)))
        reds.append(sum(n for color, n in colors.items() if near(color, red)))
    assert all(share > 0.05 for share in drawn), drawn  # not blank
    assert all(count > 500 for count in lines), lines  # each with its mean line drawn across it
    freezer, cellar, fridge = reds
    assert freezer > 0 and fridge > freezer  # the fridge left its band more often (five extremes vs one)
    assert cellar == 0  # no thresholds: nothing is outside


def test_a_gap_breaks_the_line_and_the_windows_outside_are_marked(page, browser):
    """The fridge was unplugged from 14:00 to 16:30 on 29 March: its line and its min-max area are in two pieces;
    a dot for each window whose min or max left 2-8 °C."""
    charts = "[...document.querySelectorAll('svg.chart')]"
    lines = browser.evaluate(f"{charts}.map(c => c.querySelectorAll('g.lines path').length)")
    areas = browser.evaluate(f"{charts}.map(c => c.querySelectorAll('g.range polygon').length)")
    dots = browser.evaluate(f"{charts}.map(c => c.querySelectorAll('g.dots circle').length)")
    assert lines == [1, 1, 2] and areas == [1, 1, 2]
    _, asked = page
    fridge = report_sample.FRIDGE
    query = next(q for q in asked if q.sensors == (fridge.name,))
    outside = sum((low < fridge.low) + (high > fridge.high) for _, _, _, low, high in report_sample.history(query))
    assert dots[2] == outside == 5 and dots[1] == 0 and dots[0] == 1


def test_the_table_marks_incomplete_days_and_days_with_excursions(browser):
    def column(sensor: int, selector: str) -> list[str]:
        return browser.evaluate(f"[...document.querySelectorAll('section.sensor')[{sensor}]"
                                f".querySelectorAll('{selector}')].map(e => e.textContent)")

    fridge_days = column(2, "tr.excursion td:first-child")
    assert fridge_days == ["2026-03-28", "2026-03-30"]
    assert column(2, "td.incomplete") == ["89.1 %"]  # 1,230 of the 23-hour day's 1,380 ticks
    assert column(1, "tr.excursion") == [] and column(1, "td.incomplete") == []
    cellar_row = column(1, "tbody tr:first-child td")
    assert cellar_row[0] == "2026-03-28" and cellar_row[-4:] == ["\u2013"] * 4  # no thresholds: no figures, not 0


def test_it_prints_on_a4_pages(browser):
    pdf = browser.pdf()
    boxes = re.findall(rb"/MediaBox\s*\[\s*([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s*\]", pdf)
    pages = len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf))
    assert pages >= 2 and len(boxes) == pages  # three sensors do not fit one page
    for box in boxes:
        x0, y0, x1, y1 = (float(v) for v in box)
        assert abs(x1 - x0 - A4_POINTS[0]) <= 1 and abs(y1 - y0 - A4_POINTS[1]) <= 1, box


def test_a_year_prints_its_chart_on_the_first_page(tmp_path):
    """A year's 365 rows fit no page: the table breaks across pages (its header row repeated), the header and chart
    stay together, so page 1 holds the chart, not the page's header alone. Counted in page 1 of Chromium's PDF: the
    line segments (PDF operator `l`) the chart's SVG paths draw; the header alone (text and 2 rectangles) has none."""
    fridge = next(d for d in report_sample.days() if d.sensor == report_sample.FRIDGE.name)
    start, stop = report_sample.START_NS - 300 * DAY, report_sample.START_NS + 65 * DAY
    year = [dataclasses.replace(fridge, day=day.date) for day in days(report_sample.TZ, start, stop)]
    path = tmp_path / "year.html"
    with open(path, "w", encoding="utf-8") as out:
        html.write_html(year, (report_sample.FRIDGE,), report_sample.history, start, stop, report_sample.ZONE,
                        "outbox", out)
    with Chromium(tmp_path / "chromium-profile") as chromium:
        chromium.open(path)
        data = chromium.call("Page.printToPDF", preferCSSPageSize=True, printBackground=True, pageRanges="1")["data"]
    streams = b"".join(_inflate(m) for m in re.findall(rb"stream\r?\n(.*?)endstream", base64.b64decode(data), re.S))
    assert len(re.findall(rb"[\d.] l\n", streams)) > 100


def _inflate(stream: bytes) -> bytes:
    """A PDF stream's content if it is deflated (Chromium's page contents are), else nothing (fonts, images)."""
    try:
        return zlib.decompress(stream)
    except zlib.error:
        return b""


def test_each_chart_has_at_most_max_chart_windows_windows(page):
    _, asked = page
    assert [q.sensors for q in asked] == [(name,) for name in SENSORS]
    assert [q.every_s for q in asked] == [900, 900, 900]  # 3 days: 1m gives 4,320 windows, 5m 864, 15m 288
    span_s = (report_sample.STOP_NS - report_sample.START_NS) / S
    assert all(span_s / q.every_s <= html.MAX_CHART_WINDOWS for q in asked)


UTC = ZoneInfo("UTC")


def window_of(interval_s: float, start_ns: int, stop_ns: int, tz: ZoneInfo) -> float | None:
    """The page's chart window for a report over start <= time < stop in `tz` (its days, as the page has them)."""
    return html.chart_window_s(interval_s, list(days(tz, start_ns, stop_ns)))
UTC_START = int(dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc).timestamp()) * S


@pytest.mark.parametrize("interval_s, span_s, window_s", [
    (10, 3600, 10),  # an hour of 10 s readings: every reading
    (10, 86400, 300),  # a day: 8,640 readings, 1,440 minutes, 288 windows of 5 minutes
    (300, 86400, 300),
    (60, 30 * 86400, 3600),  # a month: 720 windows of an hour (a 31-day month with its DST hour: 745)
    (60, 200 * 86400, 12 * 3600),
    (7200, 86400, 7200),  # a reading every 2 hours: never a window shorter than the interval
    (300, 365 * 86400, 12 * 3600),  # a year: 730 windows of 12 hours
    (300, 2 * 365 * 86400, None),  # two years: 1,460 windows of 12 hours are too many; a point per day, the rows
    (300, 3 * 365 * 86400, None),
])
def test_in_utc_the_chart_window_is_the_shortest_round_one_that_fits(interval_s, span_s, window_s):
    assert window_of(interval_s, UTC_START, UTC_START + span_s * S, UTC) == window_s
    # a range from any moment (--since 3d at 00:37:12.345): the windows may still cross its start, not a midnight
    assert window_of(interval_s, UTC_START + 2232345 * S // 1000, UTC_START + span_s * S, UTC) == window_s


def local(zone: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0, days_later: int = 0) -> int:
    """ns of a wall-clock time in `zone`, `days_later` calendar days on."""
    wall = dt.datetime(year, month, day, hour, minute) + dt.timedelta(days=days_later)
    return int(wall.replace(tzinfo=ZoneInfo(zone)).timestamp()) * S


@pytest.mark.parametrize("zone, interval_s, first, number_of_days, window_s", [
    ("Europe/Berlin", 60, (2026, 3, 28), 3, 900),  # the sample, across the change to summer time: 288 windows
    ("Europe/Berlin", 60, (2026, 1, 1), 10, 1800),  # 480 windows of 30 minutes
    # a reading every 45 minutes: 45 m windows straddle midnight (23:00 UTC, 82,800 s: not a multiple of 2,700)
    ("Europe/Berlin", 2700, (2026, 1, 10), 3, 3600),
    ("Europe/Berlin", 3 * 3600, (2026, 1, 10), 5, None),  # every 3 hours: 3 h windows end at 00:00 UTC, 01:00 here
    ("Europe/Berlin", 7200, (2026, 7, 10), 3, 7200),  # summer: midnight is 22:00 UTC, a whole multiple of 2 hours
    ("Europe/Berlin", 7200, (2026, 3, 28), 3, None),  # across the change: 23:00 then 22:00 UTC, 2 h divides only one
    ("Europe/Berlin", 60, (2026, 1, 1), 31, 3600),  # a month: 744 hours (3 h windows would cross midnight)
    ("Europe/Berlin", 60, (2026, 10, 1), 31, 3600),  # October: 745 hours, with the hour of the change back
    ("Europe/Berlin", 60, (2026, 1, 1), 40, None),  # 960 hours are too many: a point per day
    ("Asia/Kathmandu", 60, (2026, 1, 10), 3, 900),  # +05:45: midnight is 18:15 UTC
    ("Asia/Kathmandu", 10, (2026, 1, 1), 10, None),  # 480 windows of 30 minutes would fit, but straddle 18:15 UTC
    ("Asia/Kolkata", 10, (2026, 1, 1), 10, 1800),  # +05:30: midnight is 18:30 UTC
])
def test_no_chart_window_crosses_a_local_midnight(zone, interval_s, first, number_of_days, window_s):
    year, month, day = first
    start, stop = local(zone, year, month, day), local(zone, year, month, day, days_later=number_of_days)
    assert window_of(interval_s, start, stop, ZoneInfo(zone)) == window_s


ZONES = ("UTC", "Europe/Berlin", "Asia/Kathmandu", "America/St_Johns", "Australia/Lord_Howe", "Pacific/Chatham")


@settings(max_examples=200, deadline=None)
@given(zone=st.sampled_from(ZONES), interval_s=st.sampled_from((0.5, 1.0, 7.0, 10.0, 60.0, 300.0, 2700.0, 7200.0)),
       start_s=st.integers(1_700_000_000, 1_900_000_000), span_s=st.integers(60, 400 * 86400))
def test_a_chart_window_holds_no_local_midnight_and_fits_the_page(zone, interval_s, start_s, span_s):
    """Whatever the zone (offsets of 30 and 45 minutes, a DST change of 30 minutes on Lord Howe), the range and the
    interval: the window chosen is one of the ladder, gives at most MAX_CHART_WINDOWS, and every midnight inside the
    range (found here by the calendar, one date after the other) is a whole multiple of it since the epoch."""
    tz = ZoneInfo(zone)
    start, stop = start_s * S, (start_s + span_s) * S
    window_s = window_of(interval_s, start, stop, tz)
    if window_s is None:
        return
    assert window_s in (interval_s, *html.CHART_WINDOWS_S) and window_s >= interval_s
    assert span_s / window_s <= html.MAX_CHART_WINDOWS
    date = dt.datetime.fromtimestamp(start_s, tz).date() + dt.timedelta(days=1)
    while (midnight := int(dt.datetime.combine(date, dt.time(), tzinfo=tz).timestamp()) * S) < stop:
        assert midnight % round(window_s * S) == 0, (date, window_s)
        date += dt.timedelta(days=1)


def test_a_year_in_berlin_is_a_point_per_day_and_its_red_dots_sit_on_the_days_the_table_shades(tmp_path):
    """A year of a 15-minute fridge in Europe/Berlin: no window of the ladder both fits (8,760 hours) and crosses no
    midnight here (23:00 or 22:00 UTC), so a point is a day of the report, from its rows, and no history is asked
    for. Two readings outside, at 00:15 on 20 January and 00:30 on 15 June local time (23:15 and 22:30 UTC the day
    before): a UTC day's window put their dots on 19 January and 14 June. Opened in Chromium: each red dot lies
    between the x axis's ticks of the two midnights of the day whose table row is shaded."""
    zone = "Europe/Berlin"
    sensor = SensorLimits("fridge", 900.0, 2.0, 8.0)
    start, stop = local(zone, 2026, 1, 1), local(zone, 2027, 1, 1)
    outside = {local(zone, 2026, 1, 20, 0, 15): 1.2, local(zone, 2026, 6, 15, 0, 30): 9.4}
    readings = [(t, outside.get(t, round(5 + math.sin(t / (3600 * S)), 3))) for t in range(start, stop, 900 * S)]
    times = [t for t, _ in readings]
    span = list(days(ZoneInfo(zone), start, stop))
    rows = [reference_day(sensor, day.date, day.start_ns, day.stop_ns,
                          readings[bisect.bisect_left(times, day.start_ns):bisect.bisect_left(times, day.stop_ns)])
            for day in span]
    asked: list[HistoryQuery] = []

    def history(query):
        asked.append(query)
        return aggregate(((t, sensor.name, c) for t, c in readings if query.start_ns <= t < query.stop_ns),
                         round(query.every_s * S))

    path = tmp_path / "year.html"
    with open(path, "w", encoding="utf-8") as out:
        html.write_html(rows, (sensor,), history, start, stop, zone, "outbox", out)
    with Chromium(tmp_path / "chromium-profile") as chromium:
        chromium.open(path)
        dots = chromium.evaluate("[...document.querySelectorAll('svg.chart g.dots circle')].map(c => { "
                                 "const r = c.getBoundingClientRect(); return r.x + r.width / 2; })")
        ticks = sorted(chromium.evaluate("[...document.querySelectorAll('svg.chart g.axis.bottom g.tick line')]"
                                         ".map(l => l.getBoundingClientRect().x)"))
        shaded = chromium.evaluate("[...document.querySelectorAll('tr.excursion td:first-child')]"
                                   ".map(td => td.textContent)")
        caption = chromium.evaluate("document.querySelector('p.limits').textContent")
    assert shaded == ["2026-01-20", "2026-06-15"]
    assert len(ticks) == len(span) == 365  # a tick at each midnight, the first at the range's start
    assert [span[bisect.bisect_right(ticks, x) - 1].date for x in sorted(dots)] == shaded
    assert caption.endswith("chart: mean and min\u2013max per day")
    assert asked == []


def with_site(folder: Path, code: str) -> dict[str, str]:
    """The environment of a Python that runs `code` (a sitecustomize in `folder`) as it starts."""
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(textwrap.dedent(code))
    return {"PYTHONPATH": f"{folder}{os.pathsep}{ROOT}"}


def without_leather(folder: Path) -> dict[str, str]:
    """The environment of a Python without leather: a sitecustomize in `folder` makes Python's import system answer
    for it as for a module that is not installed (ModuleNotFoundError)."""
    return with_site(folder, """\
        import sys

        class NotInstalled:
            def find_spec(self, name, path=None, target=None):
                if name == "leather" or name.startswith("leather."):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)

        sys.meta_path.insert(0, NotInstalled())
        """)


def test_without_leather_the_page_says_how_to_install_it(tmp_path):
    """leather not importable: the check the CLI makes first raises ChartingMissing, naming the extra, and
    write_html raises it before asking for any history."""
    script = textwrap.dedent("""\
        import io
        from collector.report import html

        def history(query):
            raise AssertionError("queried")

        def page():
            html.write_html([], (), history, 0, 1, "UTC", "x", io.StringIO())

        for attempt in (html.require_charting, page):
            try:
                attempt()
            except html.ChartingMissing as exc:
                print(exc)
        import leather
        """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60,
                          env={**os.environ, **without_leather(tmp_path)})
    assert "No module named 'leather'" in done.stderr  # the simulation holds: leather is not there
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and lines[0] == lines[1]
    assert "pip install 'templog[report]'" in lines[0] and "leather" in lines[0]


def test_a_sensor_without_readings_in_the_range_says_so_in_place_of_its_chart():
    silent = report_sample.SensorLimits("attic", 60.0, None, None)
    out = io.StringIO()
    html.write_html(report_sample.days(), (silent, report_sample.FRIDGE), report_sample.history,
                    report_sample.START_NS, report_sample.STOP_NS, report_sample.ZONE, "outbox", out)
    attic, fridge = out.getvalue().split('<section class="sensor">')[1:]
    assert "No readings in the range." in attic and "<svg" not in attic
    assert "<svg" in fridge and "No readings" not in fridge


def test_the_table_never_rounds_up_to_100_nor_down_to_0():
    """The text table's rules (collector/report/formats.py): one tick of 8,640 missing reads 99.9 %; a 500 ms
    sensor's one reading outside (0.0083 minutes) reads <0.1, not 0."""
    day = next(d for d in report_sample.days() if d.sensor == report_sample.FRIDGE.name)
    day = dataclasses.replace(day, readings=8639, expected=8640, completeness=8639 / 8640, minutes_below=0.5 / 60,
                              minutes_above=0.0, excursions=1, longest_excursion_minutes=0.5 / 60)
    out = io.StringIO()
    html.write_html([day], (report_sample.FRIDGE,), report_sample.history, report_sample.START_NS,
                    report_sample.STOP_NS, report_sample.ZONE, "outbox", out)
    row = out.getvalue().split("<tbody>")[1].split("</tr>")[0]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    assert cells[3] == "99.9 %" and cells[8:] == ["&lt;0.1", "0.0", "1", "&lt;0.1"], cells


# ---------------------------------------------------------------------------------------------------------------
# `templog report --format html` as a real process: the CLI's glue between the figures, the history and the page.
def open_page(path: Path, profile: Path) -> tuple[set[str], list[str], list[int]]:
    """The page opened in Chromium: the URLs it asked for, its sensors' headings, and the charts in each section."""
    with Chromium(profile) as chromium:
        chromium.open(path)
        requested = {e["params"]["request"]["url"] for e in chromium.events
                     if e["method"] == "Network.requestWillBeSent"}
        names = chromium.evaluate("[...document.querySelectorAll('section.sensor h2')].map(h => h.textContent)")
        charts = chromium.evaluate("[...document.querySelectorAll('section.sensor')].map(s => "
                                   "s.querySelectorAll('svg.chart').length)")
    return requested, names, charts


def test_templog_report_html_from_the_outbox_writes_a_page_with_a_chart_per_sensor(tmp_path):
    """tests/test_report.py's readings in the outbox (a fridge, a cellar with a min only, a room without
    thresholds); the page, written to --output, opened as a user opens it."""
    config = test_report.fill(tmp_path, {"fridge": test_report.FRIDGE, "cellar": test_report.CELLAR,
                                         "room": test_report.ROOM})
    target = tmp_path / "out" / "report.html"
    target.parent.mkdir()
    done = templog("report", "-c", str(config), "--start", "2026-03-10", "--stop", "2026-03-12", "--format", "html",
                   "--output", str(target))
    assert done.returncode == 0 and done.stdout == "", done.stderr
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]
    text = target.read_text(encoding="utf-8")
    assert f"the outbox {tmp_path}/data/outbox.sqlite" in text  # the page names its source
    requested, names, charts = open_page(target, tmp_path / "chromium-profile")
    assert requested == {target.resolve().as_uri()}
    assert names == ["cellar", "fridge", "room"] and charts == [1, 1, 1]


def test_templog_report_html_over_a_year_charts_the_report_s_days_without_a_history_query(tmp_path):
    """A year in Europe/Berlin from the outbox: each chart is a point per day, from the report's rows. The CLI's
    page takes its windows from collector.history.from_outbox; here a stand-in for it fails when called (which a
    page of two days shows: they are charted in windows). Today's main read the whole year again for the chart."""
    config = test_report.fill(tmp_path, {"fridge": test_report.FRIDGE, "cellar": test_report.CELLAR,
                                         "room": test_report.ROOM})
    env = with_site(tmp_path / "site", """\
        import collector.history

        def from_outbox(*args, **kwargs):
            raise RuntimeError("the page asked the outbox for history")

        collector.history.from_outbox = from_outbox
        """)
    year, days_ = tmp_path / "year.html", tmp_path / "days.html"
    done = templog("report", "-c", str(config), "--start", "2026-01-01", "--stop", "2027-01-01", "--tz",
                   "Europe/Berlin", "--format", "html", "--output", str(year), env=env)
    assert done.returncode == 0 and done.stdout == "", done.stderr
    text = year.read_text(encoding="utf-8")
    assert text.count('<svg class="chart"') == 3 and text.count("chart: mean and min\u2013max per day</p>") == 3
    assert text.count("<tr") == 3 * (365 + 1)  # the tables: a row per day and their headers
    short = templog("report", "-c", str(config), "--start", "2026-03-10", "--stop", "2026-03-12", "--tz",
                    "Europe/Berlin", "--format", "html", "--output", str(days_), env=env)
    assert short.returncode == 1 and "the page asked the outbox for history" in short.stderr
    assert not days_.exists()


def test_templog_report_html_from_influxd_1_6_charts_every_sensor(influxd, database, tmp_path):
    """The charts read `history --every` through the v1 client (the figures its report methods): the same page."""
    readings = [("fridge", test_report.FRIDGE), ("cellar", test_report.CELLAR), ("room", test_report.ROOM)]
    influxd.query(f'CREATE DATABASE "{database}"')
    influxd.write(database, [f"temperature,host=pi,sensor={sensor} celsius={celsius!r} {test_report.at(tick)}"
                             for sensor, values in readings for tick, celsius in values.items()])
    config = tmp_path / "config.yaml"
    config.write_text(test_report.CONFIG + f'influxdb: {{url: "{influxd.url}", api: v1, bucket: {database}}}\n')
    target = tmp_path / "report.html"
    done = templog("report", "-c", str(config), "--start", "2026-03-10", "--stop", "2026-03-12", "--format", "html",
                   "--output", str(target))
    assert done.returncode == 0 and done.stdout == "", done.stderr
    text = target.read_text(encoding="utf-8")
    assert influxd.url in text and "No readings in the range." not in text
    assert text.count('<section class="sensor">') == 3 and text.count('<svg class="chart"') == 3


def test_without_leather_templog_report_html_says_so_before_any_query(tmp_path):
    """An influxdb configured at an address that accepts connections but is never answered: the one line naming
    the extra, at once; no connection was made (none waits in the listener's queue), no file, nothing on stdout."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        config = tmp_path / "config.yaml"
        config.write_text(test_report.CONFIG + "influxdb: {url: 'http://127.0.0.1:%d', api: v1, bucket: t, "
                          "timeout: 2s}\n" % listener.getsockname()[1])
        target = tmp_path / "report.html"
        done = templog("report", "-c", str(config), "--since", "1d", "--format", "html", "--output", str(target),
                       env=without_leather(tmp_path / "site"))
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == "templog: report: --format html draws its charts with leather, which is not installed: " \
        "pip install 'templog[report]'\n"
    assert not target.exists() and not (tmp_path / "report.html.tmp").exists()
