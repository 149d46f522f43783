"""Any file holding a number (a sysfs attribute, a value another program writes); `scale` converts units."""

from __future__ import annotations

from dataclasses import dataclass

from collector.sensors.base import Sample, SensorType, SettingError, read_number, read_text


@dataclass(frozen=True)
class Settings:
    path: str
    scale: float = 1.0  # 0.001 for millidegrees

    def __post_init__(self):
        if self.scale == 0:
            raise SettingError("scale", "must not be 0")


class FileSensor:
    def __init__(self, settings: Settings):
        self.settings = settings

    def read(self) -> Sample:
        path = self.settings.path
        return Sample(read_number(read_text(path), path) * self.settings.scale)


SENSOR_TYPE = SensorType(Settings, lambda config, shared: FileSensor(config.settings), (-60.0, 150.0))
