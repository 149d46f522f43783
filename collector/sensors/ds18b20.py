"""DS18B20 1-Wire thermometers through the kernel's w1_therm driver (<sysfs>/bus/w1/devices/28-*/).

`w1_slave` is preferred because it shows the CRC check (`crc=.. YES`); newer kernels also offer `temperature`
(millidegrees, CRC checked by the kernel). Refused, as the chip's known failure values: a CRC failure, the
85.000 °C power-on reset value unless an immediate re-read confirms it, and the -127 °C / all-ones /
all-zeros scratchpads of a disconnected or shorted sensor.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from collector.sensors.base import Sample, SensorError, SensorType, SettingError, read_text, under_sysfs

POWER_ON_RESET = 85.0
DISCONNECTED = -127.0
FAMILIES = ("28", "10", "22", "3b", "42")  # DS18B20, DS18S20, DS1822, MAX31850, DS28EA00


@dataclass(frozen=True)
class Settings:
    device: str
    w1_dir: str = under_sysfs("bus/w1/devices")

    def __post_init__(self):
        if not re.fullmatch(r"[0-9a-f]{2}-[0-9a-f]{12}", self.device):
            raise SettingError("device", f"expected a 1-Wire id such as 28-0316a2795aff, got {self.device!r}")


def parse_w1_slave(text: str, device: str) -> float:
    """°C from w1_slave's two lines: `<9 bytes> : crc=XX YES` then `<9 bytes> t=23125`."""
    lines = text.strip().splitlines()
    if len(lines) < 2 or "crc=" not in lines[0] or "t=" not in lines[1]:
        raise SensorError(f"{device}: unexpected w1_slave content {text.strip()[:80]!r}")
    if not lines[0].rstrip().endswith("YES"):
        raise SensorError(f"{device}: CRC check failed (noise on the 1-Wire bus, or a loose wire)")
    scratchpad = lines[0].split(":")[0].split()
    if all(b == "ff" for b in scratchpad) or all(b == "00" for b in scratchpad):
        raise SensorError(f"{device}: the sensor does not answer (disconnected or shorted data line)")
    try:
        return int(lines[1].rsplit("t=", 1)[1]) / 1000
    except ValueError as exc:
        raise SensorError(f"{device}: unexpected temperature in w1_slave: {lines[1][-20:]!r}") from exc


class DS18B20Sensor:
    OWN_THREAD = True  # the kernel converts on each read of w1_slave: about 750 ms (collector/lanes.py)

    def __init__(self, settings: Settings):
        self.settings = settings
        self.directory = os.path.join(settings.w1_dir, settings.device)

    def read(self) -> Sample:
        celsius = self._read_once()
        if celsius == POWER_ON_RESET:  # the chip's reset value: real only if a fresh conversion says so too
            celsius = self._read_once()
        return Sample(celsius)

    def _read_once(self) -> float:
        if not os.path.isdir(self.directory):
            raise SensorError(f"DS18B20 {self.settings.device} not found under {self.settings.w1_dir} "
                              "(disconnected? is the w1-gpio overlay enabled?)")
        slave = os.path.join(self.directory, "w1_slave")
        if os.path.exists(slave):
            celsius = parse_w1_slave(read_text(slave), self.settings.device)
        else:
            text = read_text(os.path.join(self.directory, "temperature")).strip()
            try:
                celsius = int(text) / 1000
            except ValueError as exc:
                raise SensorError(f"{self.settings.device}: unexpected temperature file content "
                                  f"{text[:40]!r}") from exc
        if celsius == DISCONNECTED:
            raise SensorError(f"{self.settings.device}: -127 °C, the value of a disconnected sensor")
        return celsius


def find_devices(w1_dir: str) -> list[str]:
    """Ids of the 1-Wire thermometers the kernel sees."""
    try:
        entries = sorted(os.listdir(w1_dir))
    except OSError:
        return []
    return [e for e in entries if e.split("-")[0] in FAMILIES and re.fullmatch(r"[0-9a-f]{2}-[0-9a-f]{12}", e)]


SENSOR_TYPE = SensorType(Settings, lambda config, shared: DS18B20Sensor(config.settings), (-55.0, 125.0))
