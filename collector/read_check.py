"""One read of a sensor, measured and judged the same way for `run` and `read`: a reading, or why not.

`judge` is pure: no logging, no counting. The runner logs and counts a refusal (collector/runner.py), `templog
read` prints its reason (collector/cli.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from collector.readings import Reading, implausible
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
    kind: str  # missing, error, bug, slow or refused: each its own condition in the log (runner.READ_TROUBLES)
    counter: str  # the health counter it adds to
    reason: str  # in words a user can act on

    @property
    def message(self) -> str:
        """The reason as the collector's log line says it."""
        return f"read failed: {self.reason}" if self.kind in ("error", "bug") else self.reason


def judge(value: Sample | BaseException, elapsed_s: float, config: SensorConfig, tick_ns: int) -> Reading | Refused:
    """`value` is what the sensor's read returned, or the exception it raised, after `elapsed_s`."""
    if isinstance(value, MissingReading):
        return Refused("missing", "readings_missing", str(value))
    if isinstance(value, SensorError):
        return Refused("error", "reads_failed", str(value))
    if isinstance(value, BaseException):  # a sensor's bug must not stop the collector
        return Refused("bug", "reads_failed", f"{type(value).__name__}: {value}")
    if elapsed_s > config.timeout:
        return Refused("slow", "reads_failed",
                       f"read took {elapsed_s:.1f}s, over the {config.timeout:g}s timeout; value discarded")
    reason = implausible(value.celsius, config.valid_min, config.valid_max)
    if reason:
        return Refused("refused", "readings_refused", f"reading refused: {reason}")
    return Reading(config.name, tick_ns, float(value.celsius))
