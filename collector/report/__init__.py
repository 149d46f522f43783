"""`templog report`: the daily compliance record, per sensor and per day in a time zone (spec "Compliance report").

Data flows one way: a source (InfluxDB through a client's `day_summaries`/`outside`, or the outbox) gives, per day,
what its query language can aggregate (`Summary`) and the few readings outside a sensor's thresholds; `figures` turns
them into one `DayFigures` per sensor and day, in constant memory; a renderer writes them (text, csv, json, html).

The types every part shares are here; the arithmetic is in `figures.py`, days and ticks in `days.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Protocol, Sequence

if TYPE_CHECKING:  # the influx clients import this module: `run` need not load the report's days and zones
    from collector.report.days import Day

# ΔH/R of the mean kinetic temperature, in kelvin (ΔH = 83.144 kJ/mol, USP <1079.2>), and 0 °C in kelvin
MKT_DELTA_H_OVER_R = 10_000.0
KELVIN = 273.15


@dataclass(frozen=True)
class SensorLimits:
    """What the report needs of a configured sensor: its tick interval and its thresholds (None: not set)."""

    name: str
    interval_s: float
    low: float | None  # the sensor's `min`, °C
    high: float | None  # its `max`, °C

    def thresholds(self) -> str:
        """The thresholds in words, as the text table and the page name them."""
        if self.low is not None and self.high is not None:
            return f"thresholds {self.low:g} °C to {self.high:g} °C"
        if self.low is not None:
            return f"threshold: min {self.low:g} °C (no max)"
        if self.high is not None:
            return f"threshold: max {self.high:g} °C (no min)"
        return "no thresholds"


@dataclass(frozen=True)
class Summary:
    """What a database aggregates of one sensor's readings over one span (a day, clipped to the range).

    `boltzmann_mean` is mean(exp(-(ΔH/R) / T_i)), T_i in kelvin: the MKT's inner mean. Times are the earliest
    reading with the minimum / maximum."""

    readings: int
    mean: float
    min: float
    min_time_ns: int
    max: float
    max_time_ns: int
    boltzmann_mean: float


class ReportSource(Protocol):
    """Where readings come from: `InfluxV1`, `InfluxV2`, `InfluxV3` (collector/influx/) and the outbox's."""

    def day_summaries(self, span: Sequence[Day], sensors: tuple[str, ...]) -> list[dict[str, Summary]]:
        """Per day of `span` (contiguous days, in order), in order: per sensor of `sensors` that has readings in
        the day's start <= time < stop, their Summary."""
        ...

    def outside(self, start_ns: int, stop_ns: int, sensor: str, low: float | None,
                high: float | None) -> Iterator[tuple[int, float]]:
        """`(time_ns, celsius)` of the sensor's readings below `low` or above `high` (a None bound: no limit on
        that side) in start <= time < stop, in time order, streamed."""
        ...


@dataclass(frozen=True)
class DayFigures:
    """One row of the report: the spec's keys, in its order (`--format json` writes them as they are here)."""

    sensor: str
    day: str  # YYYY-MM-DD in the report's zone
    readings: int
    expected: int
    completeness: float | None  # readings / expected, 0-1; None when no tick of the day falls in the range
    min: float | None
    min_time: str | None  # RFC 3339 UTC
    max: float | None
    max_time: str | None
    mean: float | None
    mkt: float | None
    minutes_below: float | None  # None: the sensor has no `min`
    minutes_above: float | None  # None: no `max`
    excursions: int | None  # None: neither threshold
    longest_excursion_minutes: float | None
