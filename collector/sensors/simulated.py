"""A deterministic, plausible indoor temperature: a daily sine plus seeded noise. For demos and tests."""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Callable

from collector.sensors.base import SensorType


@dataclass(frozen=True)
class Settings:
    base: float = 21.0  # daily mean, °C
    amplitude: float = 2.0  # half the day/night swing, °C
    noise: float = 0.1  # standard deviation of the noise, °C
    seed: int = 0


class SimulatedSensor:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.clock = clock

    def read_celsius(self) -> float:
        return self.value_at(self.clock())

    def value_at(self, unix_seconds: float) -> float:
        """The same seed and second always give the same value; coolest at 04:00 UTC, warmest at 16:00."""
        s = self.settings
        second = math.floor(unix_seconds)
        daily = math.sin(2 * math.pi * ((second % 86400) / 86400 - 10 / 24))
        noise = random.Random(second * 1_000_003 + s.seed).gauss(0, s.noise) if s.noise else 0.0
        return round(s.base + s.amplitude * daily + noise, 3)


SENSOR_TYPE = SensorType(Settings, lambda config, shared: SimulatedSensor(config.settings), (-60.0, 150.0))
