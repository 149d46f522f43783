"""A reading is one accepted temperature at one tick; only plausible values become readings. A reading travels as
a point of the `temperature` measurement: `reading_point` and `point_reading` are that mapping, both ways."""

from __future__ import annotations

import math
from dataclasses import dataclass

from collector.lineprotocol import FIELD, MEASUREMENT, Point, Series


@dataclass(frozen=True)
class Reading:
    sensor: str
    time_ns: int  # the scheduled tick, nanoseconds since the Unix epoch
    celsius: float


def reading_point(series: Series, reading: Reading) -> Point:
    """The point of a reading, in its sensor's series (`temperature`, tag `sensor` its name, host and the
    configured tags)."""
    return Point(series, {FIELD: reading.celsius}, reading.time_ns)


def point_reading(point: Point) -> Reading | None:
    """The reading a point carries; None for a point of another measurement (the collector's health)."""
    if point.series.measurement != MEASUREMENT:
        return None
    return Reading(point.series.tags["sensor"], point.time_ns, point.fields[FIELD])


def implausible(celsius: float, valid_min: float, valid_max: float) -> str | None:
    """Why `celsius` cannot be a real temperature for this sensor, or None if it can."""
    if not isinstance(celsius, (int, float)) or isinstance(celsius, bool):
        return f"not a number: {celsius!r}"
    if math.isnan(celsius):
        return "not a number (NaN)"
    if math.isinf(celsius):
        return "infinite"
    if not valid_min <= celsius <= valid_max:
        return f"{celsius:g} °C is outside the plausible range {valid_min:g}…{valid_max:g} °C"
    return None
