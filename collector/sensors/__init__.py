"""Sensor types, one module each: its `Settings` (the type's config keys), its reader and its physical range.

A sensor is anything with `read() -> Sample` (°C, and %RH where it has it) that raises SensorError with a clear reason
when it cannot read.
This package's face: what every type shares (base.py) and the registry of types by name (registry.py).
"""

from collector.sensors.base import MissingReading, Sample, Sensor, SensorError, SensorType, SettingError, Shared
from collector.sensors.registry import SENSOR_TYPES, create_sensor

__all__ = ["SENSOR_TYPES", "MissingReading", "Sample", "Sensor", "SensorError", "SensorType", "SettingError",
           "Shared", "create_sensor"]
