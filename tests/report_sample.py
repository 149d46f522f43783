"""A realistic report to render: three days (one of them Europe/Berlin's 23-hour DST day) of three sensors, their
day figures computed here from the readings, and a `history` that answers from the same readings.

- a vaccine fridge (2-8 °C, a reading a minute): a door left open (an excursion above), a two-and-a-half-hour gap
  (the sensor unplugged), a dip below the band on the last night;
- a cellar with no thresholds (a reading every 5 minutes);
- a freezer with only a max (-15 °C) and a hostile name, which the page must show as text.

`python tests/report_sample.py docs/report-page.png` renders the page and screenshots it for the README.
"""

from __future__ import annotations

import io
import math
import random
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterator
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: `collector` from this checkout

from collector.history import aggregate  # noqa: E402
from collector.query import HistoryQuery, Row  # noqa: E402
from collector.report import DayFigures, SensorLimits  # noqa: E402
from collector.ticks import NS_PER_S  # noqa: E402
from report_reference import reference_day  # noqa: E402

ZONE = "Europe/Berlin"
TZ = ZoneInfo(ZONE)
START_NS = int(datetime(2026, 3, 28, tzinfo=TZ).timestamp()) * NS_PER_S  # 29 March is 23 hours long in Berlin
STOP_NS = int(datetime(2026, 3, 31, tzinfo=TZ).timestamp()) * NS_PER_S
HOSTILE = "<img src=\"x.png\"> </svg></table> & 'freezer' \"A\""

FRIDGE = SensorLimits("vaccine-fridge", 60.0, 2.0, 8.0)
CELLAR = SensorLimits("cellar", 300.0, None, None)
FREEZER = SensorLimits(HOSTILE, 60.0, None, -15.0)
LIMITS = (FREEZER, CELLAR, FRIDGE)  # as the CLI hands them: sorted by name ("<" sorts first)


def at(day: int, hour: int, minute: int = 0) -> int:
    """ns of a wall-clock time on day 28 + `day` of March 2026 in Berlin."""
    return int(datetime(2026, 3, 28 + day, hour, minute, tzinfo=TZ).timestamp()) * NS_PER_S


def _readings(sensor: SensorLimits) -> list[tuple[int, float]]:
    rng = random.Random(sensor.name)
    step = round(sensor.interval_s * NS_PER_S)
    readings = []
    for t in range(START_NS, STOP_NS, step):
        phase = 2 * math.pi * (t - START_NS) / (86400 * NS_PER_S)
        if sensor is FRIDGE:
            if at(1, 14) <= t < at(1, 16, 30):
                continue  # unplugged
            celsius = 5.0 + 1.0 * math.sin(phase) + rng.gauss(0, 0.15)
            if at(0, 10, 12) <= t < at(0, 10, 40):
                celsius = 8.4 + 2.5 * math.sin(math.pi * (t - at(0, 10, 12)) / (at(0, 10, 40) - at(0, 10, 12)))
            if at(2, 3, 5) <= t < at(2, 3, 17):
                celsius = 1.6 + rng.gauss(0, 0.05)
        elif sensor is CELLAR:
            celsius = 11.0 + 0.6 * math.sin(phase - 1) + rng.gauss(0, 0.05)
        else:
            celsius = -18.5 + 0.8 * math.sin(4 * phase) + rng.gauss(0, 0.2)
            if at(1, 19, 0) <= t < at(1, 19, 9):
                celsius = -14.2  # the defrost cycle ran long
        readings.append((t, round(celsius, 4)))
    return readings


READINGS = {sensor.name: _readings(sensor) for sensor in LIMITS}


def history(query: HistoryQuery) -> Iterator[Row]:
    """`templog history --every` over READINGS: `(window_start_ns, sensor, mean, min, max)` per window."""
    rows = ((t, name, c) for name in sorted(query.sensors) for t, c in READINGS.get(name, [])
            if query.start_ns <= t < query.stop_ns)
    return aggregate(sorted(rows), round(query.every_s * NS_PER_S))


def days() -> list[DayFigures]:
    """The report's rows, computed from READINGS by the spec's definitions, ordered by sensor, then day."""
    rows = []
    for sensor in sorted(LIMITS, key=lambda s: s.name):
        day = datetime(2026, 3, 28)
        while (start := int(day.replace(tzinfo=TZ).timestamp()) * NS_PER_S) < STOP_NS:
            stop = int((day + timedelta(days=1)).replace(tzinfo=TZ).timestamp()) * NS_PER_S
            rows.append(reference_day(sensor, day.strftime("%Y-%m-%d"), start, stop, READINGS[sensor.name]))
            day += timedelta(days=1)
    return rows


def page(source: str = "InfluxDB v2 at http://localhost:8086, bucket templog") -> str:
    from collector.report.html import write_html

    out = io.StringIO()
    write_html(days(), LIMITS, history, START_NS, STOP_NS, ZONE, source, out)
    return out.getvalue()


if __name__ == "__main__":
    from chromium import Chromium

    target = Path(sys.argv[1])
    html_file = target.with_suffix(".html")
    html_file.write_text(page("outbox /var/lib/templog/outbox.sqlite"))
    try:
        with Chromium(Path("/tmp/report-sample-profile")) as browser:
            browser.open(html_file)
            target.write_bytes(browser.screenshot(browser.page_clip()))
    finally:
        html_file.unlink()
