"""Sensor types, one module each: its `Settings` (the type's config keys), its reader and its physical range.

A sensor is anything with `read_celsius() -> float` that raises SensorError with a clear reason when it cannot read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from collector.sensors import command, ds18b20, file, hwmon, mqtt, simulated, thermal_zone
from collector.sensors.base import MissingReading, Sensor, SensorError, SensorType, SettingError, Shared

if TYPE_CHECKING:
    from collector.config import SensorConfig

SENSOR_TYPES: dict[str, SensorType] = {
    "simulated": simulated.SENSOR_TYPE,
    "thermal_zone": thermal_zone.SENSOR_TYPE,
    "hwmon": hwmon.SENSOR_TYPE,
    "ds18b20": ds18b20.SENSOR_TYPE,
    "file": file.SENSOR_TYPE,
    "command": command.SENSOR_TYPE,
    "mqtt": mqtt.SENSOR_TYPE,
}

__all__ = ["SENSOR_TYPES", "MissingReading", "Sensor", "SensorError", "SensorType", "SettingError", "Shared",
           "create_sensor"]


def create_sensor(config: "SensorConfig", shared: Shared | None = None) -> Sensor:
    return SENSOR_TYPES[config.type].create(config, shared or Shared())
