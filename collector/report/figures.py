"""A report's figures: per sensor and day, from a source's summaries and the readings outside the thresholds.

Memory holds one Summary per sensor and day and the run counts of the current sensor's days; the readings outside
the thresholds stream past once per sensor, each counted as it comes (so a year of readings is never held).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from collector.report import KELVIN, MKT_DELTA_H_OVER_R, DayFigures, ReportSource, SensorLimits, Summary
from collector.report.days import Day, days, expected_ticks
from collector.ticks import interval_ns, rfc3339

log = logging.getLogger("templog")


def boltzmann(celsius: float) -> float:
    """exp(-(ΔH/R) / T), T in kelvin: the term the MKT averages over the readings."""
    return math.exp(-MKT_DELTA_H_OVER_R / (celsius + KELVIN))


def mkt(boltzmann_mean: float) -> float:
    """The mean kinetic temperature, °C, of readings whose boltzmann terms average `boltzmann_mean`."""
    return MKT_DELTA_H_OVER_R / -math.log(boltzmann_mean) - KELVIN


@dataclass
class Runs:
    """Runs of readings outside the thresholds at successive ticks, fed their times in order (one day's). Two readings
    at one tick (two hosts use the sensor's name) are one tick outside: the second neither lengthens nor cuts the
    run."""

    interval_ns: int
    count: int = 0
    longest: int = 0
    _length: int = 0
    _last_ns: int | None = None

    def add(self, time_ns: int) -> None:
        if time_ns == self._last_ns:
            return
        if self._last_ns is not None and time_ns == self._last_ns + self.interval_ns:
            self._length += 1
        else:  # the first, or a tick missed since the last one: what happened between is not known
            self.count += 1
            self._length = 1
        self.longest = max(self.longest, self._length)
        self._last_ns = time_ns


@dataclass
class _Ticks:
    """Ticks counted once each, however many readings they have (two hosts use the sensor's name), fed in order."""

    count: int = 0
    _last_ns: int | None = None

    def add(self, time_ns: int) -> None:
        if time_ns != self._last_ns:
            self.count += 1
            self._last_ns = time_ns


@dataclass
class _Outside:
    """One day's ticks outside the thresholds: below, above, and their runs."""

    runs: Runs
    below: _Ticks = field(default_factory=_Ticks)
    above: _Ticks = field(default_factory=_Ticks)


def figures(source: ReportSource, limits: tuple[SensorLimits, ...], start_ns: int, stop_ns: int,
            zone: dt.tzinfo) -> Iterator[DayFigures]:
    """One DayFigures per sensor of `limits` and day of `zone` in [start_ns, stop_ns), by sensor name, then day:
    also the days without a reading."""
    span = list(days(zone, start_ns, stop_ns))
    names = tuple(sorted(limit.name for limit in limits))
    summaries = source.day_summaries(span, names)
    for limit in sorted(limits, key=lambda limit: limit.name):
        outside = _outside_per_day(source, limit, span, start_ns, stop_ns)
        rows = [_row(limit, day, summary.get(limit.name), out)
                for day, summary, out in zip(span, summaries, outside, strict=True)]
        over = [row.day for row in rows if row.readings > row.expected]
        if over:
            log.warning("report: sensor %s has more readings than its %gs interval gives ticks on %s: its interval "
                        "changed, or two hosts use its name; completeness there is shown as 1 and is unreliable, and "
                        "so are its gaps (a tick one host missed hides behind the other's reading)", limit.name,
                        limit.interval_s, over[0] if len(over) == 1 else f"{len(over)} days, {over[0]} to {over[-1]}")
        yield from rows


def _outside_per_day(source: ReportSource, limit: SensorLimits, span: list[Day], start_ns: int,
                     stop_ns: int) -> Sequence[_Outside | None]:
    """Per day, the sensor's readings outside its thresholds counted (None for each: it has no threshold). A run
    is cut at midnight: each day counts its own part."""
    if limit.low is None and limit.high is None:
        return [None] * len(span)
    every = interval_ns(limit.interval_s)
    counted = [_Outside(Runs(every)) for _ in span]
    index = 0
    for time_ns, celsius in source.outside(start_ns, stop_ns, limit.name, limit.low, limit.high):
        while span[index].stop_ns <= time_ns:
            index += 1
        day = counted[index]
        if limit.low is not None and celsius < limit.low:
            side = day.below
        elif limit.high is not None and celsius > limit.high:
            side = day.above
        else:  # inside after all (a source's filter is the same test): not part of any run
            continue
        side.add(time_ns)
        day.runs.add(time_ns)
    return counted


def _row(limit: SensorLimits, day: Day, summary: Summary | None, outside: _Outside | None) -> DayFigures:
    expected = expected_ticks(day.start_ns, day.stop_ns, interval_ns(limit.interval_s))
    readings = summary.readings if summary else 0
    minutes = limit.interval_s / 60
    return DayFigures(
        sensor=limit.name, day=day.date, readings=readings, expected=expected,
        completeness=min(1.0, readings / expected) if expected else None,
        min=summary.min if summary else None,
        min_time=rfc3339(summary.min_time_ns) if summary else None,
        max=summary.max if summary else None,
        max_time=rfc3339(summary.max_time_ns) if summary else None,
        mean=summary.mean if summary else None,
        mkt=mkt(summary.boltzmann_mean) if summary else None,
        minutes_below=None if limit.low is None else (outside.below.count if outside else 0) * minutes,
        minutes_above=None if limit.high is None else (outside.above.count if outside else 0) * minutes,
        excursions=None if outside is None else outside.runs.count,
        longest_excursion_minutes=None if outside is None else outside.runs.longest * minutes)
