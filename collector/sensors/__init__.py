"""Sensor types, one module each: its `Settings` (the type's config keys), its reader and its physical range.

A sensor is anything with `read_celsius() -> float` that raises SensorError with a clear reason when it cannot read.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from collector.sensors.base import MissingReading, Sensor, SensorError, SensorType, SettingError, Shared

if TYPE_CHECKING:
    from collector.config_types import SensorConfig


class _Registry(Mapping[str, SensorType]):
    """Type name -> SensorType, from the module of that name in this package, imported when a config first names the
    type: a config uses a few of them, and some cost a command's start-up (`command` imports subprocess)."""

    def __init__(self, names: tuple[str, ...]):
        self._names = names

    def __getitem__(self, name: str) -> SensorType:
        if name not in self._names:
            raise KeyError(name)
        return importlib.import_module(f"{__name__}.{name}").SENSOR_TYPE

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


SENSOR_TYPES: Mapping[str, SensorType] = _Registry(
    ("simulated", "thermal_zone", "hwmon", "ds18b20", "file", "command", "mqtt"))

__all__ = ["SENSOR_TYPES", "MissingReading", "Sensor", "SensorError", "SensorType", "SettingError", "Shared",
           "create_sensor"]


def create_sensor(config: "SensorConfig", shared: Shared | None = None) -> Sensor:
    return SENSOR_TYPES[config.type].create(config, shared or Shared())
