"""hwmon chips (<sysfs>/class/hwmon/hwmonN): found by chip `name`, input by `tempN` or by `tempN_label`; millidegrees.

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
    root: str = under_sysfs("class/hwmon")

    def __post_init__(self):
        if (self.input is None) == (self.label is None):
            raise SettingError("input", "set either input (e.g. temp1) or label (e.g. 'Package id 0')")
        if self.input is not None and not re.fullmatch(r"temp\d+", self.input):
            raise SettingError("input", f"expected tempN such as temp1, got {self.input!r}")


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
            return Sample(read_number(read_text(self.path), self.path) / 1000)
        except SensorError:
            self.path = None  # the chip may have been renumbered; look it up again next time
            raise

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
