"""Linux thermal zones: /sys/class/thermal/thermal_zoneN/temp, in millidegrees."""

from __future__ import annotations

from dataclasses import dataclass

from collector.sensors.base import SensorType, SettingError, read_number, read_text

THERMAL_ROOT = "/sys/class/thermal"


@dataclass(frozen=True)
class Settings:
    zone: int | None = None
    path: str | None = None  # the temp file itself, instead of zone

    def __post_init__(self):
        if (self.zone is None) == (self.path is None):
            raise SettingError("zone", "set either zone (a number) or path")
        if self.zone is not None and self.zone < 0:
            raise SettingError("zone", "must be 0 or more")

    @property
    def temp_path(self) -> str:
        return self.path or f"{THERMAL_ROOT}/thermal_zone{self.zone}/temp"


class ThermalZoneSensor:
    def __init__(self, settings: Settings):
        self.path = settings.temp_path

    def read_celsius(self) -> float:
        return read_number(read_text(self.path), self.path) / 1000


SENSOR_TYPE = SensorType(Settings, lambda config, shared: ThermalZoneSensor(config.settings), (-40.0, 150.0))
