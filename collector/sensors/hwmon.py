"""hwmon chips (<sysfs>/class/hwmon/hwmonN): found by chip `name`, input by `tempN` or by `tempN_label`; millidegrees.
With `humidity: humidityN`, the same chip's `humidityN_input` too, in milli-percent (sht3x, sht4x, sht21, hih6130;
torvalds/linux@2555693dd85c7a726eed570736bf6e1c4c7116ed:Documentation/hwmon/sysfs-interface.rst, "Humidity").

hwmonN numbers change between boots, so the chip is looked up by name, not number.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from collector.sensors.base import Sample, SensorError, SensorType, SettingError, read_number, read_text, under_sysfs


@dataclass(frozen=True)
class Settings:
    chip: str
    input: str | None = None  # e.g. temp1
    label: str | None = None  # e.g. "Package id 0"
    humidity: str | None = None  # e.g. humidity1: the chip's humidity1_input
    root: str = under_sysfs("class/hwmon")

    def __post_init__(self):
        if (self.input is None) == (self.label is None):
            raise SettingError("input", "set either input (e.g. temp1) or label (e.g. 'Package id 0')")
        if self.input is not None and not re.fullmatch(r"temp\d+", self.input):
            raise SettingError("input", f"expected tempN such as temp1, got {self.input!r}")
        if self.humidity is not None and not re.fullmatch(r"humidity\d+", self.humidity):
            raise SettingError("humidity", f"expected humidityN such as humidity1, got {self.humidity!r}")

    @property
    def measures_humidity(self) -> bool:
        return self.humidity is not None


def chips(root: str) -> list[tuple[str, str]]:
    """(chip name, directory) of every hwmon chip under root, in directory order."""
    found = []
    try:
        entries = sorted(os.listdir(root))
    except OSError:
        return []
    for entry in entries:
        directory = os.path.join(root, entry)
        try:
            found.append((read_text(os.path.join(directory, "name")).strip(), directory))
        except SensorError:
            continue
    return found


def humidity_inputs(directory: str) -> list[str]:
    """humidityN of every relative humidity input of one chip."""
    return [e.removesuffix("_input") for e in sorted(os.listdir(directory), key=lambda e: (len(e), e))
            if re.fullmatch(r"humidity\d+_input", e)]


def inputs(directory: str) -> list[tuple[str, str | None]]:
    """(tempN, label or None) of every temperature input of one chip."""
    result = []
    for entry in sorted(os.listdir(directory), key=lambda e: (len(e), e)):
        match = re.fullmatch(r"(temp\d+)_input", entry)
        if match:
            label_path = os.path.join(directory, f"{match.group(1)}_label")
            label = read_text(label_path).strip() if os.path.exists(label_path) else None
            result.append((match.group(1), label))
    return result


class HwmonSensor:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.path: str | None = None

    def read(self) -> Sample:
        if self.path is None:
            self.path = self.find_input()
        try:
            celsius = read_number(read_text(self.path), self.path) / 1000
        except SensorError:
            self.path = None  # the chip may have been renumbered; look it up again next time
            raise
        if self.settings.humidity is None:
            return Sample(celsius)
        # read right after the temperature: the chip measures both in one conversion (sht3x, sht4x)
        humidity_path = os.path.join(os.path.dirname(self.path), f"{self.settings.humidity}_input")
        try:
            if not os.path.exists(humidity_path):
                raise SensorError(f"hwmon chip {self.settings.chip!r} has no humidity input {self.settings.humidity}")
            return Sample(celsius, read_number(read_text(humidity_path), humidity_path) / 1000)
        except SensorError as exc:  # the temperature stands on its own (read_check.judge keeps it, and says why)
            self.path = None
            return Sample(celsius, humidity_error=str(exc))

    def find_input(self) -> str:
        s = self.settings
        directories = [d for name, d in chips(s.root) if name == s.chip]
        if not directories:
            raise SensorError(f"no hwmon chip named {s.chip!r} under {s.root}")
        for directory in directories:
            for temp, label in inputs(directory):
                if temp == s.input or (s.label is not None and label == s.label):
                    return os.path.join(directory, f"{temp}_input")
        wanted = s.input or f"label {s.label!r}"
        raise SensorError(f"hwmon chip {s.chip!r} has no input {wanted}")


SENSOR_TYPE = SensorType(Settings, lambda config, shared: HwmonSensor(config.settings), (-40.0, 150.0))
