"""The sensor types by name, as the config loader looks them up, and the making of a configured sensor.

The loader asks this registry for a type's `Settings` and valid range; the registry imports the types' modules,
and they import only collector/sensors/base.py: nothing here imports the loader or its settings types at run time,
so dependencies point one way, loader -> registry -> sensor type (issue 11).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from collector.sensors.base import Sensor, SensorType, Shared

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
        return importlib.import_module(f"collector.sensors.{name}").SENSOR_TYPE

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


SENSOR_TYPES: Mapping[str, SensorType] = _Registry(
    ("simulated", "thermal_zone", "hwmon", "ds18b20", "iio", "file", "command", "mqtt"))


def create_sensor(config: SensorConfig, shared: Shared | None = None) -> Sensor:
    return SENSOR_TYPES[config.type].create(config, shared or Shared())
