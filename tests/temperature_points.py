"""Temperature points as the collector makes them (collector.readings.reading_point), for tests that fill an outbox
or a server."""

from collector.lineprotocol import MEASUREMENT, Point, Series
from collector.readings import Reading, reading_point


def temperature(sensor: str, time_ns: int, celsius: float, **tags: str) -> Point:
    """The point of `sensor`'s reading, with its `sensor` tag and any other tags."""
    return reading_point(Series(MEASUREMENT, {**tags, "sensor": sensor}), Reading(sensor, time_ns, float(celsius)))
