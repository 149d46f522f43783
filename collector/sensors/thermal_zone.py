"""Linux thermal zones: <sysfs>/class/thermal/thermal_zoneN/temp, in millidegrees."""

from __future__ import annotations

import os
from dataclasses import dataclass

from collector.sensors.base import (
    Sample,
    SensorError,
    SensorType,
    SettingError,
    numbered_entries,
    read_number,
    read_text,
    under_sysfs,
)


@dataclass(frozen=True)
class Settings:
    zone: int | None = None
    path: str | None = None  # the temp file itself, instead of zone
    root: str = under_sysfs("class/thermal")  # where zone N is thermal_zoneN

    def __post_init__(self):
        if (self.zone is None) == (self.path is None):
            raise SettingError("zone", "set either zone (a number) or path")
        if self.zone is not None and self.zone < 0:
            raise SettingError("zone", "must be 0 or more")

    @property
    def temp_path(self) -> str:
        return self.path or os.path.join(self.root, f"thermal_zone{self.zone}", "temp")


def zones(root: str) -> list[tuple[int, str | None]]:
    """(zone number, its `type` or None) of every thermal zone under root that has a temperature, by number."""
    found = []
    for zone, directory in numbered_entries(root, "thermal_zone"):  # not the cooling_deviceN beside them
        if os.path.exists(os.path.join(directory, "temp")):
            try:
                kind: str | None = read_text(os.path.join(directory, "type")).strip() or None
            except SensorError:
                kind = None
            found.append((zone, kind))
    return found


class ThermalZoneSensor:
    def __init__(self, settings: Settings):
        self.path = settings.temp_path

    def read(self) -> Sample:
        return Sample(read_number(read_text(self.path), self.path) / 1000)


SENSOR_TYPE = SensorType(Settings, lambda config, shared: ThermalZoneSensor(config.settings), (-40.0, 150.0))
