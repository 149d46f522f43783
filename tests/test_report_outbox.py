"""`templog report` from the outbox over many days, as a real process: every day's row equals the spec's figures
worked out per day by tests/report_reference.py, and the outbox is read a few times over, not once per day (it has
no index on time: each query scans the whole table)."""

import contextlib
import dataclasses
import datetime as dt
import json
import os
import random
import sqlite3
import subprocess
import sys
from zoneinfo import ZoneInfo

import pytest

from cli import ROOT, templog
from collector.outbox import Outbox
from collector.report import SensorLimits
from collector.ticks import rfc3339
from report_reference import reference_day
from temperature_points import temperature

S = 1_000_000_000
BERLIN = ZoneInfo("Europe/Berlin")
TICK_S = 15 * 60
LIMITS = (SensorLimits("cellar", TICK_S, 10.0, None), SensorLimits("fridge", TICK_S, 2.0, 8.0),
          SensorLimits("room", TICK_S, None, None))
CONFIG = """collector: {outbox: data/outbox.sqlite, interval: 15m}
sensors:
  - {name: fridge, type: simulated, min: 2, max: 8}
  - {name: cellar, type: simulated, min: 10}
  - {name: room, type: simulated}
"""
FIRST, LAST = dt.date(2026, 3, 20), dt.date(2026, 4, 9)  # 21 Berlin days, 2026-03-29 of 23 hours among them


def midnight(date: dt.date) -> int:
    return int(dt.datetime.combine(date, dt.time(), BERLIN).timestamp()) * S


def berlin_days() -> list[tuple[str, int, int]]:
    dates = [FIRST + dt.timedelta(days=n) for n in range((LAST - FIRST).days + 1)]
    return [(date.isoformat(), midnight(date), midnight(date + dt.timedelta(days=1))) for date in dates]


def many_days() -> dict[str, dict[int, float]]:
    """Per sensor, time_ns -> °C at the 15-minute ticks of the range, a few missing. Values come from a few levels,
    so that a day's min and max are reached several times and equal those of the days around it; at two local
    midnights the extreme of the whole range is the last reading before midnight, the reading at midnight itself
    and one later that day."""
    rng = random.Random(14)
    levels = {"fridge": [1.5, 2.0, 4.5, 5.0, 5.0, 5.0, 8.0, 8.5, 9.0], "cellar": [9.0, 9.5, 10.0, 12.0, 12.0],
              "room": [19.0, 20.0, 21.0, 21.0]}
    series: dict[str, dict[int, float]] = {sensor: {} for sensor in levels}
    for time_ns in range(midnight(FIRST), midnight(LAST + dt.timedelta(days=1)), TICK_S * S):
        for sensor, choices in levels.items():
            if rng.random() > 0.05:
                series[sensor][time_ns] = rng.choice(choices)
    low, high = midnight(dt.date(2026, 3, 25)), midnight(dt.date(2026, 4, 1))
    for boundary, value in ((low, 0.5), (high, 12.0)):
        for time_ns in (boundary - TICK_S * S, boundary, boundary + 6 * 3600 * S):
            series["fridge"][time_ns] = value
    return series


def write_outbox(tmp_path, series: dict[str, dict[int, float]], config: str = CONFIG,
                 rng: random.Random | None = None) -> None:
    """The readings appended in batches, in the order given or, with `rng`, shuffled: the table's rows (by id)
    then run back and forth in time, across days and sensors."""
    points = [(sensor, t, c) for sensor, values in series.items() for t, c in values.items()]
    if rng is not None:
        rng.shuffle(points)
    outbox = Outbox(str(tmp_path / "data/outbox.sqlite"))
    for first in range(0, len(points), 5000):
        outbox.append([temperature(sensor, t, c) for sensor, t, c in points[first:first + 5000]])
    outbox.close()
    (tmp_path / "config.yaml").write_text(config)


def test_many_days_from_the_outbox_in_any_row_order_equal_the_figures_worked_out_per_day(tmp_path):
    series = many_days()
    write_outbox(tmp_path, series, rng=random.Random(10))
    done = templog("report", "-c", str(tmp_path / "config.yaml"), "--tz", "Europe/Berlin", "--start",
                   FIRST.isoformat(), "--stop", (LAST + dt.timedelta(days=1)).isoformat(), "--format", "json")
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    wanted = [dataclasses.asdict(reference_day(limits, day, start, stop, series[limits.name].items()))
              for limits in LIMITS for day, start, stop in berlin_days()]
    assert [(r["sensor"], r["day"]) for r in got] == [(r["sensor"], r["day"]) for r in wanted]
    for mine, theirs in zip(got, wanted, strict=True):
        assert list(mine) == list(theirs)  # the spec's keys in its order
        for key, value in theirs.items():  # sums in another order than math.fsum's differ in the last digits
            assert mine[key] == (pytest.approx(value, rel=1e-12) if isinstance(value, float) else value), \
                (mine["sensor"], mine["day"], key)
    # the midnight reading is the new day's, and each of the days names its own earliest reading of the extreme
    by = {(r["sensor"], r["day"]): r for r in got}
    assert [(by["fridge", d]["min"], by["fridge", d]["min_time"]) for d in ("2026-03-24", "2026-03-25")] == [
        (0.5, "2026-03-24T22:45:00Z"), (0.5, "2026-03-24T23:00:00Z")]
    assert [(by["fridge", d]["max"], by["fridge", d]["max_time"]) for d in ("2026-03-31", "2026-04-01")] == [
        (12.0, "2026-03-31T21:45:00Z"), (12.0, "2026-03-31T22:00:00Z")]
    assert by["fridge", "2026-03-29"]["expected"] == 23 * 4


def bytes_read(*args: str) -> int:
    """What `templog ARGS` read (read(2) and pread(2) bytes, page cache or not: /proc/PID/io rchar), read once it
    exited and before it is reaped (waitid WNOWAIT: a zombie's /proc/PID/io holds its totals, proc(5))."""
    with open(os.devnull, "wb") as devnull:
        process = subprocess.Popen([sys.executable, "-m", "collector", *args], cwd=ROOT, stdin=subprocess.DEVNULL,
                                   stdout=devnull, stderr=devnull)
    try:
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        with open(f"/proc/{process.pid}/io") as io:
            counters = dict(line.split(": ") for line in io.read().splitlines())
    finally:
        assert process.wait(timeout=60) == 0
    return int(counters["rchar"])


def test_a_month_from_the_outbox_reads_it_a_few_times_over_not_once_a_day(tmp_path):
    """30 days of a 1-minute fridge (43,200 readings, a file of about 4 MB, more than SQLite's page cache of 2 MB
    keeps between queries): the report reads the file once to count it as it opens it, once for every day's
    summaries and once for the fridge's readings outside its thresholds, not once for each day's summaries. What
    any report reads besides (Python, the config, the zone) is measured on an outbox of one reading."""
    config = "collector: {outbox: data/outbox.sqlite, interval: 1m}\nsensors:\n" \
             "  - {name: fridge, type: simulated, min: 2, max: 8}\n"
    start = midnight(FIRST)
    (tmp_path / "month").mkdir()
    month = {"fridge": {start + n * 60 * S: (1.0, 5.0, 9.0)[n % 1000 // 400] for n in range(30 * 1440)}}
    write_outbox(tmp_path / "month", month, config)
    (tmp_path / "one").mkdir()
    write_outbox(tmp_path / "one", {"fridge": {start: 5.0}}, config)
    report = ("--tz", "Europe/Berlin", "--start", FIRST.isoformat(),
              "--stop", (FIRST + dt.timedelta(days=30)).isoformat(), "-q")
    size = (tmp_path / "month/data/outbox.sqlite").stat().st_size
    assert size > 2 * 2**20
    passes = (bytes_read("report", "-c", str(tmp_path / "month/config.yaml"), *report)
              - bytes_read("report", "-c", str(tmp_path / "one/config.yaml"), *report)) / size
    assert passes < 5, f"the report read the outbox {passes:.1f} times over"


def test_a_row_without_a_temperature_is_no_reading_for_the_report_as_for_history(tmp_path):
    """A row whose `celsius` is NULL (templog writes none; SQLite stores a NaN so, and a hand-edited or foreign
    outbox may hold one) is skipped by `report` as by `history`, not a traceback's "unexpected TypeError"."""
    start = midnight(FIRST)
    write_outbox(tmp_path, {"fridge": {start + n * TICK_S * S: 5.0 + n for n in range(4)}})
    with contextlib.closing(sqlite3.connect(tmp_path / "data/outbox.sqlite")) as db, db:
        db.execute("UPDATE points SET celsius = NULL WHERE time_ns = ?", (start + TICK_S * S,))
    day = ("-c", str(tmp_path / "config.yaml"), "--tz", "Europe/Berlin", "--start", FIRST.isoformat(), "--stop",
           (FIRST + dt.timedelta(days=1)).isoformat(), "--sensor", "fridge", "--format", "json")
    done = templog("report", *day)
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)
    assert (row["readings"], row["min"], row["max"], row["mean"]) == (3, 5.0, 8.0, pytest.approx((5 + 7 + 8) / 3))
    shown = templog("history", "-c", str(tmp_path / "config.yaml"), "--start", rfc3339(start), "--stop",
                    rfc3339(start + 86400 * S), "--format", "json")
    assert shown.returncode == 0 and len(json.loads(shown.stdout)) == 3, shown.stderr
