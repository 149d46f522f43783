"""`templog discover`: temperature sources on this machine, printed as ready-to-paste `sensors:` entries."""

from __future__ import annotations

import glob
import os
import re

from collector.sensors import ds18b20, hwmon
from collector.sensors.base import SensorError, read_text


def find_sensors(sysfs: str = "/sys") -> list[dict]:
    """Config entries (dicts in config.yaml's shape) for DS18B20s, thermal zones and hwmon inputs under `sysfs`."""
    entries: list[dict] = []
    w1_dir = os.path.join(sysfs, "bus/w1/devices")
    for device in ds18b20.find_devices(w1_dir):
        entry = {"name": f"ds18b20_{device.split('-')[1][-4:]}", "type": "ds18b20", "device": device}
        if w1_dir != ds18b20.W1_DIR:
            entry["w1_dir"] = w1_dir
        entries.append(entry)
    for path in sorted(glob.glob(os.path.join(sysfs, "class/thermal/thermal_zone*")),
                       key=lambda p: int(re.sub(r"\D", "", os.path.basename(p)) or 0)):
        if not os.path.exists(os.path.join(path, "temp")):
            continue
        zone = int(re.sub(r"\D", "", os.path.basename(path)))
        kind = _safe_read(os.path.join(path, "type")) or f"zone{zone}"
        entries.append({"name": kind, "type": "thermal_zone", "zone": zone})
    hwmon_root = os.path.join(sysfs, "class/hwmon")
    for chip, directory in hwmon.chips(hwmon_root):
        for temp, label in hwmon.inputs(directory):
            entry = {"name": f"{chip} {label or temp}", "type": "hwmon", "chip": chip}
            entry.update({"label": label} if label else {"input": temp})
            if hwmon_root != hwmon.HWMON_ROOT:
                entry["root"] = hwmon_root
            entries.append(entry)
    return _unique_names(entries)


def _unique_names(entries: list[dict]) -> list[dict]:
    seen: dict[str, int] = {}
    for entry in entries:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", entry["name"]).strip("_").lower() or entry["type"]
        seen[base] = seen.get(base, 0) + 1
        entry["name"] = base if seen[base] == 1 else f"{base}_{seen[base]}"
    return entries


def _safe_read(path: str) -> str:
    try:
        return read_text(path).strip()
    except SensorError:
        return ""


def render_yaml(entries: list[dict]) -> str:
    import yaml

    if not entries:
        return "# no DS18B20, thermal zone or hwmon temperature input found"
    return yaml.safe_dump({"sensors": entries}, sort_keys=False, allow_unicode=True).rstrip()
