"""The report written out as text (a table for a terminal), csv or json: the spec's keys, in DayFigures' order.
(`html` is collector/report/html.py: it charts the readings too.)"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from typing import IO, Callable

from collector.durations import format_duration
from collector.history import table_line
from collector.report import DayFigures, SensorLimits

KEYS = tuple(field.name for field in dataclasses.fields(DayFigures))

# the text table's columns: header, cell of a row (None: "-"), and whether it is a name (left-aligned)
_Cell = Callable[[DayFigures], object]
_TEXT_COLUMNS: tuple[tuple[str, _Cell, str], ...] = (
    ("sensor", lambda r: r.sensor, ""),
    ("day", lambda r: r.day, ""),
    ("readings", lambda r: r.readings, "d"),
    ("expected", lambda r: r.expected, "d"),
    ("complete %", lambda r: None if r.completeness is None else percent(r.completeness), ""),
    ("min °C", lambda r: r.min, ".2f"),
    ("at (UTC)", lambda r: r.min_time, ""),
    ("max °C", lambda r: r.max, ".2f"),
    ("at (UTC)", lambda r: r.max_time, ""),
    ("mean °C", lambda r: r.mean, ".2f"),
    ("MKT °C", lambda r: r.mkt, ".2f"),
    ("below min", lambda r: None if r.minutes_below is None else minutes(r.minutes_below), ""),
    ("above max", lambda r: None if r.minutes_above is None else minutes(r.minutes_above), ""),
    ("excursions", lambda r: r.excursions, "d"),
    ("longest", lambda r: None if r.longest_excursion_minutes is None else minutes(r.longest_excursion_minutes),
     ""),
)
_NAMES = 2  # the first columns, left-aligned; the figures are right-aligned


def percent(completeness: float) -> str:
    """Completeness as a percentage for a reader (text and html), one decimal, rounded down: a day with one tick
    missing in 10,000 reads 99.9, never a false 100.0 on a compliance record."""
    return f"{math.floor(completeness * 1000) / 10:.1f}"


def minutes(value: float) -> str:
    """Minutes for a reader (text and html), one decimal; under 0.1 but not 0 (a reading of a sub-second sensor)
    reads `<0.1`, never 0.0. csv and json keep the exact figure."""
    return "<0.1" if 0 < value < 0.1 else f"{value:.1f}"


def write(rows: list[DayFigures], limits: tuple[SensorLimits, ...], fmt: str, out: IO[str]) -> None:
    """`rows` to `out` as `text`, `csv` or `json`."""
    {"text": write_text, "csv": write_csv, "json": write_json}[fmt](rows, limits, out)


def write_json(rows: list[DayFigures], limits: tuple[SensorLimits, ...], out: IO[str]) -> None:
    """One document: a list of objects with the spec's keys (null where a figure does not exist)."""
    json.dump([dataclasses.asdict(row) for row in rows], out, indent=2, ensure_ascii=False)
    out.write("\n")


def write_csv(rows: list[DayFigures], limits: tuple[SensorLimits, ...], out: IO[str]) -> None:
    """A header of the spec's keys, then a line per row; a figure that does not exist is an empty cell."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(KEYS)
    for row in rows:
        writer.writerow(["" if value is None else value for value in dataclasses.astuple(row)])


def write_text(rows: list[DayFigures], limits: tuple[SensorLimits, ...], out: IO[str]) -> None:
    """Aligned columns, units in the header, "-" where a figure does not exist; then each sensor's thresholds and
    interval, which the minutes and excursions are counted against."""
    cells = [[_text(cell(row), spec) for _, cell, spec in _TEXT_COLUMNS] for row in rows]
    header = [name for name, _, _ in _TEXT_COLUMNS]
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]
    for line in [header, *cells]:
        out.write(table_line(line, widths, _NAMES))
    out.write("\nminutes below min / above max and the longest excursion in minutes; an excursion is a run of "
              "readings outside the range at successive ticks\n")
    for limit in sorted(limits, key=lambda limit: limit.name):
        out.write(f"{limit.name}: {_thresholds(limit)}, a reading every {format_duration(limit.interval_s)}\n")


def _text(value: object, spec: str) -> str:
    if value is None:
        return "-"
    return format(value, spec) if spec else str(value)


def _thresholds(limit: SensorLimits) -> str:
    if limit.low is None and limit.high is None:
        return "no thresholds (min, max) configured: no minutes outside nor excursions"
    return limit.thresholds()
