"""One read of a sensor, measured and judged the same way for `run` and `read`: a reading, or why not.

`judge` is pure: no logging, no counting. The runner logs and counts a refusal (collector/runner.py), `templog
read` prints its reason (collector/cli.py).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from collector.readings import Reading, implausible, implausible_humidity
from collector.sensors.base import MissingReading, Sample, Sensor, SensorError

if TYPE_CHECKING:
    from collector.config_types import SensorConfig


Measured = tuple["Sample | BaseException", float]  # what a read gave (a value or the exception it raised), its seconds


def measure(sensor: Sensor) -> Measured:
    """What one read gave (the value, or the exception it raised: a SensorError, or a sensor's bug, which must not
    stop the collector) and its seconds; nothing more, since the shared lane's next read waits for it."""
    started = time.monotonic()
    value: Sample | BaseException
    try:
        value = sensor.read()
    except Exception as exc:
        value = exc
    return value, time.monotonic() - started


@dataclass(frozen=True)
class Refused:
    kind: str  # missing, error, bug, slow, refused, humidity: each its own condition in the log (runner.py)
    counter: str  # the health counter it adds to
    reason: str  # in words a user can act on

    @property
    def message(self) -> str:
        """The reason as the collector's log line says it."""
        return f"read failed: {self.reason}" if self.kind in ("error", "bug") else self.reason


# What is accepted and what is refused: one of the two, or both when a reading's humidity was refused.
Verdict = tuple[Reading | None, "Refused | None"]


def judge(value: Sample | BaseException, elapsed_s: float, config: SensorConfig, tick_ns: int) -> Verdict:
    """`value` is what the sensor's read returned, or the exception it raised, after `elapsed_s`. The calibration
    applies after the type's own checks (in its read) and before the plausibility ranges."""
    if isinstance(value, MissingReading):
        return None, Refused("missing", "readings_missing", str(value))
    if isinstance(value, SensorError):
        return None, Refused("error", "reads_failed", str(value))
    if isinstance(value, BaseException):  # a sensor's bug must not stop the collector
        return None, Refused("bug", "reads_failed", f"{type(value).__name__}: {value}")
    if elapsed_s > config.timeout:
        return None, Refused("slow", "reads_failed",
                             f"read took {elapsed_s:.1f}s, over the {config.timeout:g}s timeout; value discarded")
    celsius = config.calibration.apply(value.celsius)
    reason = implausible(celsius, config.valid_min, config.valid_max)
    if reason:
        return None, Refused("refused", "readings_refused", f"reading refused: {reason}")
    temperature = Reading(config.name, tick_ns, float(celsius))  # it stands on its own, whatever the humidity
    if value.humidity_error is not None:
        return temperature, _humidity_refused(f"humidity not read: {value.humidity_error}")
    if value.humidity is None:
        return temperature, None
    humidity = value.humidity + config.humidity_offset
    reason = implausible_humidity(humidity)
    if reason:
        return temperature, _humidity_refused(f"humidity refused: {reason}")
    return dataclasses.replace(temperature, humidity=float(humidity)), None


def _humidity_refused(why: str) -> Refused:
    return Refused("humidity", "humidity_refused", f"{why}; the temperature is kept")
