"""`templog discover`: temperature sources on this machine, printed as ready-to-paste `sensors:` entries."""

from __future__ import annotations

import re
import threading
import time

import yaml

from collector.sensors import ds18b20, hwmon, iio, thermal_zone
from collector.sensors.base import SettingError, sysfs_paths
from collector.sensors.mqtt import MalformedPayload, load_json, payload_text


def find_sensors(sysfs: str) -> list[dict]:
    """Config entries (dicts in config.yaml's shape) for DS18B20s, thermal zones, hwmon inputs and IIO devices under
    `sysfs`: each reads what was found here when pasted into a config whose `collector.sysfs` is `sysfs`, so none
    names a path."""
    entries: list[dict] = []
    for device in ds18b20.find_devices(sysfs_paths(ds18b20.Settings, sysfs)["w1_dir"]):
        entries.append({"name": f"ds18b20_{device.split('-')[1][-4:]}", "type": "ds18b20", "device": device})
    for zone, kind in thermal_zone.zones(sysfs_paths(thermal_zone.Settings, sysfs)["root"]):
        entries.append({"name": kind or f"zone{zone}", "type": "thermal_zone", "zone": zone})
    for chip, directory in hwmon.chips(sysfs_paths(hwmon.Settings, sysfs)["root"]):
        humidities = hwmon.humidity_inputs(directory)
        for temp, label in hwmon.inputs(directory):
            entry = {"name": f"{chip} {label or temp}", "type": "hwmon", "chip": chip}
            entry.update({"label": label} if label else {"input": temp})
            humidity = temp.replace("temp", "humidity")  # measured together: sht3x's temp1 and humidity1
            if humidity in humidities:
                entry["humidity"] = humidity
            entries.append(entry)
    entries += iio_entries(sysfs_paths(iio.Settings, sysfs)["root"])
    return unique_names(entries)


_BUS_ADDRESS = re.compile(r"\d+-[0-9a-f]{4}")  # an I²C client's dev_name, which si7020 and hdc100x use as the name


def iio_entries(root: str) -> list[dict]:
    """An entry for each IIO device with a temperature channel (a reading needs one), named by its exact `name`;
    `index` when several have that name, `humidity` where the device's channels differ from the type's default."""
    found = iio.devices(root)
    entries = []
    for device in found:
        try:
            default = iio.Settings(device.name)
        except SettingError:  # an empty name file: no `device` can name it
            continue
        if not iio.has_channel(device.directory, iio.TEMPERATURE):
            continue
        same_name = [d for d in found if d.name == device.name]
        base = device.name.split("@")[0]
        entry: dict = {"name": device.driver if _BUS_ADDRESS.fullmatch(base) and device.driver else base,
                       "type": "iio", "device": device.name}
        if len(same_name) > 1:
            entry["index"] = same_name.index(device)
        has_humidity = iio.has_channel(device.directory, iio.HUMIDITY)
        if has_humidity != default.measures_humidity:
            entry["humidity"] = has_humidity
        entries.append(entry)
    return entries


TEMPERATURE_KEYS = ("temperature", "Temperature", "tC", "temp", "Temp")


def temperature_field(payload: bytes) -> tuple[bool, str | None]:
    """Whether an MQTT payload carries a temperature, and its `field` path (None: the payload is the number)."""
    try:
        document = load_json(payload_text(payload))
    except MalformedPayload:  # bounded like a sensor's payload: discover listens to every topic on the broker
        return False, None
    if isinstance(document, float):
        return -60 <= document <= 150, None
    if not isinstance(document, dict):
        return False, None
    candidates = [(key, document) for key in TEMPERATURE_KEYS]
    candidates += [(f"{outer}.{key}", inner) for outer, inner in document.items() if isinstance(inner, dict)
                   for key in TEMPERATURE_KEYS]  # Tasmota: {"DS18B20": {"Temperature": 21.3}}
    for path, node in candidates:
        value = node.get(path.rsplit(".", 1)[-1])
        if isinstance(value, (int, float)) and not isinstance(value, bool) and -60 <= value <= 150:
            return True, path
    return False, None


def listen_mqtt(hub, seconds: float) -> list[dict]:
    """Listen to every topic on the broker for `seconds`; entries for the topics that carried a temperature."""
    found: dict[str, str | None] = {}
    lock = threading.Lock()

    def consider(topic: str, payload: bytes) -> None:
        carries, field = temperature_field(payload)
        bare_number_named_so = field is not None or "temp" in topic.lower()
        if carries and bare_number_named_so:
            with lock:
                found[topic] = field

    hub.subscribe("#", consider)
    hub.start()
    time.sleep(seconds)  # the listening window the user asked for
    hub.stop()
    entries = []
    for topic, field in sorted(found.items()):
        entry = {"name": topic, "type": "mqtt", "topic": topic}
        if field is not None:
            entry["field"] = field
        entries.append(entry)
    return entries


def unique_names(entries: list[dict]) -> list[dict]:
    """Names that config.yaml accepts, made unique with a numeric suffix."""
    seen: dict[str, int] = {}
    for entry in entries:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", entry["name"]).strip("_").lower() or entry["type"]
        seen[base] = seen.get(base, 0) + 1
        entry["name"] = base if seen[base] == 1 else f"{base}_{seen[base]}"
    return entries


def render_yaml(entries: list[dict]) -> str:
    if not entries:
        return "# no temperature source found"
    return yaml.safe_dump({"sensors": entries}, sort_keys=False, allow_unicode=True).rstrip()
