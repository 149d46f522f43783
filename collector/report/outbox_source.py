"""The outbox as a report's source: what `templog report` reads with no InfluxDB configured.

SQLite has no exp() in every build, so the summaries are computed here, in one pass over the range's readings as
the outbox streams them in time order, each added to its day's running sums: nothing held per reading. The outbox
has no index on time (one would cost every tick's commit a page), so each query scans the whole table: one for the
summaries of every day, and one per sensor with thresholds for its readings outside them, which SQLite filters.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator, Sequence

from collector.outbox import Outbox
from collector.report import Summary
from collector.report.days import Day
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

    def day_summaries(self, span: Sequence[Day], sensors: tuple[str, ...]) -> list[dict[str, Summary]]:
        if not span:
            return []
        sums: list[dict[str, _Sums]] = [{} for _ in span]
        index, day, stop_ns = 0, sums[0], span[0].stop_ns
        with contextlib.closing(self.outbox.temperatures(span[0].start_ns, span[-1].stop_ns, sensors)) as readings:
            for sensor, time_ns, celsius in readings:
                while stop_ns <= time_ns:  # the span's days are contiguous and in order, as the readings
                    index += 1
                    day, stop_ns = sums[index], span[index].stop_ns
                acc = day.get(sensor)
                if acc is None:
                    day[sensor] = _Sums(1, celsius, boltzmann(celsius), celsius, time_ns, celsius, time_ns)
                    continue
                acc.readings += 1
                acc.total += celsius
                acc.boltzmann_total += boltzmann(celsius)
                if celsius < acc.min:  # strictly: in time order, the earliest reading of the value stays
                    acc.min, acc.min_time_ns = celsius, time_ns
                if celsius > acc.max:
                    acc.max, acc.max_time_ns = celsius, time_ns
        return [{sensor: acc.summary() for sensor, acc in day.items()} for day in sums]

    def outside(self, start_ns: int, stop_ns: int, sensor: str, low: float | None,
                high: float | None) -> Iterator[tuple[int, float]]:
        with contextlib.closing(self.outbox.temperatures(start_ns, stop_ns, (sensor,), outside=(low, high))) as rows:
            for _, time_ns, celsius in rows:
                yield time_ns, celsius
