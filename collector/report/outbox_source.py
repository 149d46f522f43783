"""The outbox as a report's source: what `templog report` reads with no InfluxDB configured.

SQLite has no exp() in every build, so the summaries are computed here, in one pass over the span's readings as
the outbox streams them in time order: running sums, nothing held per reading.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

from collector.outbox import Outbox
from collector.report import Summary
from collector.report.figures import boltzmann


@dataclass
class _Sums:
    readings: int
    total: float
    boltzmann_total: float
    min: float
    min_time_ns: int
    max: float
    max_time_ns: int

    def summary(self) -> Summary:
        return Summary(self.readings, self.total / self.readings, self.min, self.min_time_ns, self.max,
                       self.max_time_ns, self.boltzmann_total / self.readings)


class OutboxSource:
    """`ReportSource` over the readings waiting in an outbox (opened read-only by the caller)."""

    def __init__(self, outbox: Outbox):
        self.outbox = outbox

    def summaries(self, start_ns: int, stop_ns: int, sensors: tuple[str, ...]) -> dict[str, Summary]:
        sums: dict[str, _Sums] = {}
        with contextlib.closing(self.outbox.readings(start_ns, stop_ns, sensors)) as readings:
            for reading in readings:
                celsius, time_ns = reading.celsius, reading.time_ns
                acc = sums.get(reading.sensor)
                if acc is None:
                    sums[reading.sensor] = _Sums(1, celsius, boltzmann(celsius), celsius, time_ns, celsius, time_ns)
                    continue
                acc.readings += 1
                acc.total += celsius
                acc.boltzmann_total += boltzmann(celsius)
                if celsius < acc.min:  # strictly: in time order, the earliest reading of the value stays
                    acc.min, acc.min_time_ns = celsius, time_ns
                if celsius > acc.max:
                    acc.max, acc.max_time_ns = celsius, time_ns
        return {sensor: acc.summary() for sensor, acc in sums.items()}

    def outside(self, start_ns: int, stop_ns: int, sensor: str, low: float | None,
                high: float | None) -> Iterator[tuple[int, float]]:
        with contextlib.closing(self.outbox.readings(start_ns, stop_ns, (sensor,))) as readings:
            for reading in readings:
                if (low is not None and reading.celsius < low) or (high is not None and reading.celsius > high):
                    yield reading.time_ns, reading.celsius
