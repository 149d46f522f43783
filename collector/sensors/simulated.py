"""A deterministic, plausible indoor temperature (a daily sine plus seeded noise) and, if asked, relative humidity:
it falls as the room warms, as the air's water stays the same. For demos and tests."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

from collector.sensors.base import Sample, SensorType, SettingError

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15  # SplitMix64's increment: seeds one stream apart
HUMIDITY_SWING = 4.0  # %RH: half the day/night swing, opposite to the temperature's
HUMIDITY_NOISE = 0.5  # %RH: the noise's standard deviation


@dataclass(frozen=True)
class Settings:
    base: float = 21.0  # daily mean, °C
    amplitude: float = 2.0  # half the day/night swing, °C
    noise: float = 0.1  # standard deviation of the noise, °C
    seed: int = 0
    humidity: float | None = None  # daily mean, %RH; None: no humidity

    def __post_init__(self):
        if self.humidity is not None and not 0 <= self.humidity <= 100:
            raise SettingError("humidity", f"must be a relative humidity from 0 to 100 %RH, got {self.humidity:g}")

    @property
    def measures_humidity(self) -> bool:
        return self.humidity is not None


class SimulatedSensor:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.clock = clock
        self._stream = noise_stream(settings.seed)
        self._humidity_stream = noise_stream(~settings.seed)  # its own noise, not the temperature's

    def read(self) -> Sample:
        now = self.clock()
        return Sample(self.value_at(now), self.humidity_at(now))

    def value_at(self, unix_seconds: float) -> float:
        """The same seed and second always give the same value; coolest at 04:00 UTC, warmest at 16:00."""
        s = self.settings
        second = math.floor(unix_seconds)
        noise = s.noise * gaussian(self._stream, second) if s.noise else 0.0
        return round(s.base + s.amplitude * _daily(second) + noise, 3)

    def humidity_at(self, unix_seconds: float) -> float | None:
        """%RH, lowest when the room is warmest; None unless the settings give a humidity."""
        base = self.settings.humidity
        if base is None:
            return None
        second = math.floor(unix_seconds)
        value = base - HUMIDITY_SWING * _daily(second) + HUMIDITY_NOISE * gaussian(self._humidity_stream, second)
        return round(min(100.0, max(0.0, value)), 2)


def _daily(second: int) -> float:
    """-1 at 04:00 UTC, +1 at 16:00: the day's warming."""
    return math.sin(2 * math.pi * ((second % 86400) / 86400 - 10 / 24))


def noise_stream(seed: int) -> int:
    """Where a seed's noise starts, for `gaussian`: a hashed position, so that no two seeds' streams overlap in
    practice (consecutive seeds as consecutive positions would give the same noise a second apart)."""
    return _mix(seed * _GOLDEN)


def gaussian(stream: int, second: int) -> float:
    """A standard normal deviate that depends on (seed, second) alone: the SplitMix64 hash of the second-th step
    of the seed's stream gives two 32-bit uniforms, Box-Muller makes them normal. About 1 µs, where seeding a
    random.Random per read cost 5 µs: the shared lane reads a thousand simulated sensors one after another
    (BENCHMARKS.md, section 12)."""
    z = _mix(stream + second * _GOLDEN)
    radius = math.sqrt(-2.0 * math.log(((z >> 32) + 1) / 4294967296.0))  # (0, 1]: log(0) cannot happen
    return radius * math.cos(2.0 * math.pi * (z & 0xFFFFFFFF) / 4294967296.0)


def _mix(z: int) -> int:
    """SplitMix64's finaliser: 64 well-mixed bits of any integer."""
    z &= _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


SENSOR_TYPE = SensorType(Settings, lambda config, shared: SimulatedSensor(config.settings), (-60.0, 150.0))
