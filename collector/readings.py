"""A reading is one accepted temperature at one tick, with the relative humidity where the sensor measures it; only
plausible values become readings. A reading travels as a point of the `temperature` measurement: `reading_point`
and `point_reading` are that mapping, both ways."""

from __future__ import annotations

import math
from dataclasses import dataclass

from collector.lineprotocol import DEWPOINT, FIELD, HUMIDITY, MEASUREMENT, Point, Series

# The Magnus formula over water, with the constants the spec fixes (Sonntag's, for -45 °C to 60 °C).
MAGNUS_B = 17.62
MAGNUS_C = 243.12  # °C


@dataclass(frozen=True)
class Reading:
    sensor: str
    time_ns: int  # the scheduled tick, nanoseconds since the Unix epoch
    celsius: float
    humidity: float | None = None  # %RH, 0-100; None: the sensor has none, or it was refused

    @property
    def dewpoint(self) -> float | None:
        """°C to 0.01 (the formula is good to about 0.1 °C: more digits would only lengthen each point); None
        without humidity, and at 0 %RH, where dry air has no dew point."""
        point = None if self.humidity is None else dew_point(self.celsius, self.humidity)
        return None if point is None else round(point, 2)


def dew_point(celsius: float, humidity: float) -> float | None:
    """The temperature at which air of this temperature and relative humidity (%RH) becomes saturated; None at 0 %RH
    and at or below -c (-243.12 °C: the formula's pole, reachable with a lowered valid_min), where it means nothing."""
    if humidity <= 0 or celsius <= -MAGNUS_C:
        return None
    gamma = math.log(humidity / 100) + MAGNUS_B * celsius / (MAGNUS_C + celsius)
    return MAGNUS_C * gamma / (MAGNUS_B - gamma)


def reading_point(series: Series, reading: Reading) -> Point:
    """The point of a reading, in its sensor's series (`temperature`, tag `sensor` its name, host and the
    configured tags): `celsius`, and `humidity` and `dewpoint` where the reading has them."""
    fields = {FIELD: reading.celsius}
    if reading.humidity is not None:
        fields[HUMIDITY] = reading.humidity
        dewpoint = reading.dewpoint
        if dewpoint is not None:
            fields[DEWPOINT] = dewpoint
    return Point(series, fields, reading.time_ns)


def point_reading(point: Point) -> Reading | None:
    """The reading a point carries; None for a point of another measurement (the collector's health)."""
    if point.series.measurement != MEASUREMENT:
        return None
    return Reading(point.series.tags["sensor"], point.time_ns, point.fields[FIELD], point.fields.get(HUMIDITY))


def number_text(value: float) -> str:
    """`value` short (85000, 21.5), but never rounded onto a bound it is outside of (100.0001, not 100)."""
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


def implausible_humidity(humidity: float) -> str | None:
    """Why `humidity` cannot be a real relative humidity, or None if it can."""
    if math.isnan(humidity):
        return "not a number (NaN)"
    if not 0 <= humidity <= 100:
        return f"{number_text(humidity)} %RH is outside 0…100 %RH"
    return None


def implausible(celsius: float, valid_min: float, valid_max: float) -> str | None:
    """Why `celsius` cannot be a real temperature for this sensor, or None if it can."""
    if not isinstance(celsius, (int, float)) or isinstance(celsius, bool):
        return f"not a number: {celsius!r}"
    if math.isnan(celsius):
        return "not a number (NaN)"
    if math.isinf(celsius):
        return "infinite"
    if not valid_min <= celsius <= valid_max:
        return f"{number_text(celsius)} °C is outside the plausible range {valid_min:g}…{valid_max:g} °C"
    return None
