"""A report's day worked out by the spec's definitions (spec.md "Compliance report"), written plainly and apart from
collector/report/figures.py, for tests to compare templog's figures with: the HTML page's sample
(tests/report_sample.py) and the end-to-end reports from InfluxDB (tests/test_report_influx.py)."""

from __future__ import annotations

import math
from typing import Iterable

from collector.report import DayFigures, SensorLimits
from collector.ticks import NS_PER_S, rfc3339

DELTA_H_OVER_R, KELVIN = 10_000.0, 273.15  # the spec's MKT constants, written here, not taken from collector


def reference_day(sensor: SensorLimits, day: str, start_ns: int, stop_ns: int,
                  readings: Iterable[tuple[int, float]]) -> DayFigures:
    """The figures of `sensor` on `day` (its span start <= time < stop) from its readings `(time_ns, celsius)`, one
    per tick (no two at one time)."""
    step, minutes = round(sensor.interval_s * NS_PER_S), sensor.interval_s / 60
    mine = sorted((t, c) for t, c in readings if start_ns <= t < stop_ns)
    values = [c for _, c in mine]
    expected = -(-stop_ns // step) - -(-start_ns // step)
    low, high = sensor.low, sensor.high

    runs, run, previous = [], 0, None  # lengths of the runs outside, at successive ticks
    for t, c in mine:
        if (low is not None and c < low) or (high is not None and c > high):
            run = run + 1 if run and previous == t - step else 1
            if run == 1:
                runs.append(0)
            runs[-1] = run
        else:
            run = 0
        previous = t
    thresholds = low is not None or high is not None

    lo = hi = mean = mkt = None
    lo_time = hi_time = None
    if mine:
        lo, hi = min(values), max(values)
        lo_time = rfc3339(min(t for t, c in mine if c == lo))
        hi_time = rfc3339(min(t for t, c in mine if c == hi))
        mean = math.fsum(values) / len(values)
        boltzmann = math.fsum(math.exp(-DELTA_H_OVER_R / (c + KELVIN)) for c in values) / len(values)
        mkt = DELTA_H_OVER_R / -math.log(boltzmann) - KELVIN
    return DayFigures(
        sensor.name, day, len(mine), expected, min(1.0, len(mine) / expected) if expected else None,
        lo, lo_time, hi, hi_time, mean, mkt,
        None if low is None else sum(c < low for c in values) * minutes,
        None if high is None else sum(c > high for c in values) * minutes,
        len(runs) if thresholds else None, max(runs, default=0) * minutes if thresholds else None)
