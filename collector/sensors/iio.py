"""The kernel's IIO sensors (<sysfs>/bus/iio/devices/iio:deviceN): temperature and, where the device has it, relative
humidity, from the channel files of the kernel's IIO sysfs ABI
(torvalds/linux@01bb12922b60f33d3b19b32e97a6508fc5ee4f7c:Documentation/ABI/testing/sysfs-bus-iio):

- `in_temp_input`: milli °C, processed by the driver (dht11, bme280, htu21); else `in_temp_raw`, plus
  `in_temp_offset` (absent: 0), times `in_temp_scale` (absent: 1), in milli °C (si7020, hdc100x).
- `in_humidityrelative_input`: milli percent; else `in_humidityrelative_raw` (+ offset) × scale, likewise.

The values are decimal text: an integer, or the kernel's fixed-point forms such as `2.517700195` (a scale) and
`-15887.515151` (hdc100x's offset). iio:deviceN numbers follow probe order, so the device is found by name at each
lookup, and looked up again after any failed read (unplugged, driver reloaded, renumbered).

Which name: the `name` file holds what the driver chose: a part number (`bme280`, `htu21`), the device-tree node for
platform devices (`dht11@4`: dht11.c names it after its platform device), or the I²C bus address (`1-0040`: si7020.c
and hdc100x.c use dev_name()). So `device` is matched against, in order, the exact `name`, the `name` before its `@`,
and the name of the driver bound to the parent device; the first of these that any device has decides, and `index`
picks the n-th such device in iio:deviceN order.

Whether a sensor gives humidity is known when the config is loaded, before any device is looked at (the panels and
alert rules are drawn from the config): `humidity: true/false`, by default true for the drivers whose devices always
have a humidityrelative channel (HUMIDITY_DEVICES). A device read with humidity on that has no such channel is a
failed read that says so, never a reading that silently lacks it.
"""

from __future__ import annotations

import errno
import math
import os
import re
from dataclasses import dataclass
from typing import NamedTuple

from collector.sensors.base import (
    Sample,
    SensorError,
    SensorType,
    SettingError,
    numbered_entries,
    read_text,
    under_sysfs,
)

# Drivers whose every device has temperature and humidityrelative channels (torvalds/linux drivers/iio/humidity/
# dht11.c, si7020.c, htu21.c, hdc100x.c; drivers/iio/pressure/bmp280-core.c for the bme280, not the bmp280).
HUMIDITY_DEVICES = ("dht11", "bme280", "si7020", "htu21", "hdc100x")

_DECIMAL = re.compile(r"[-+]?[0-9]+(?:\.[0-9]+)?")  # IIO prints %d, %d.%06u or %d.%09u: no exponent, no nan
# A failed transfer the next one may well not repeat: the DHT's checksum or lost edges (EIO), its missing
# answer (ETIMEDOUT), a clock too coarse for now (EAGAIN) — dht11.c's dht11_read_raw.
_TRANSIENT = (errno.EIO, errno.ETIMEDOUT, errno.EAGAIN)


class Quantity(NamedTuple):
    prefix: str  # the channel's file names start so
    what: str  # for messages


TEMPERATURE = Quantity("in_temp", "temperature")
HUMIDITY = Quantity("in_humidityrelative", "humidity")


@dataclass(frozen=True)
class Settings:
    device: str  # the IIO device's name, e.g. bme280, dht11, si7020
    index: int = 0  # the n-th device of that name, in iio:deviceN order
    humidity: bool | None = None  # None: true for the HUMIDITY_DEVICES
    root: str = under_sysfs("bus/iio/devices")

    def __post_init__(self):
        if not self.device.strip() or "/" in self.device:
            raise SettingError("device", f"expected an IIO device's name such as bme280 or dht11, got {self.device!r}")
        if self.index < 0:
            raise SettingError("index", "must be 0 or more")

    @property
    def measures_humidity(self) -> bool:
        if self.humidity is not None:
            return self.humidity
        return self.device.split("@")[0] in HUMIDITY_DEVICES


class Device(NamedTuple):
    directory: str  # root/iio:deviceN, as listed
    number: int  # N
    name: str  # the `name` file
    driver: str | None  # the driver bound to the parent device


def devices(root: str) -> list[Device]:
    """Every IIO device under root that has a readable name, in iio:deviceN numeric order (not iio:trigger*)."""
    found = []
    for number, directory in numbered_entries(root, "iio:device"):
        try:
            name = read_text(os.path.join(directory, "name")).strip()
        except SensorError:
            continue
        if not name.isprintable():  # a NUL or a line break: no driver writes one, no config could name it
            continue
        found.append(Device(directory, number, name, _driver(directory)))
    return found


def _driver(directory: str) -> str | None:
    """The driver of the device the IIO device belongs to: its parent directory's `driver` link."""
    link = os.path.join(os.path.dirname(os.path.realpath(directory)), "driver")
    return os.path.basename(os.path.realpath(link)) if os.path.islink(link) else None


def matching(found: list[Device], wanted: str) -> list[Device]:
    """The devices `wanted` names: by exact name; else by name before the `@` (dht11@4); else by driver."""
    for key in (lambda d: d.name, lambda d: d.name.split("@")[0], lambda d: d.driver):
        chosen = [d for d in found if key(d) == wanted]
        if chosen:
            return chosen
    return []


def has_channel(directory: str, quantity: Quantity) -> bool:
    return any(os.path.exists(os.path.join(directory, f"{quantity.prefix}_{kind}")) for kind in ("input", "raw"))


def parse_value(text: str, source: str) -> float:
    """A channel file's number: decimal text as the kernel prints it, finite; else SensorError."""
    value = text.strip()
    if not _DECIMAL.fullmatch(value):
        raise SensorError(f"{source} does not hold a number: {value[:40]!r}")
    number = float(value)
    if not math.isfinite(number):
        raise SensorError(f"{source} holds a number too large to be a reading: {value[:40]}...")
    return number


class IioSensor:
    OWN_THREAD = True  # a driver may wait for the conversion: dht11.c up to a second per read (collector/lanes.py)

    def __init__(self, settings: Settings):
        self.settings = settings
        self.device: Device | None = None

    def read(self) -> Sample:
        if self.device is None:
            self.device = self.find()
        try:
            celsius = self.value(self.device, TEMPERATURE) / 1000
        except SensorError:
            self.device = None  # unplugged, reloaded or renumbered: look it up again at the next read
            raise
        if not self.settings.measures_humidity:
            return Sample(celsius)
        try:
            return Sample(celsius, self.value(self.device, HUMIDITY) / 1000)
        except SensorError as exc:  # the temperature stands on its own (read_check.judge keeps it, and says why)
            self.device = None
            return Sample(celsius, humidity_error=str(exc))

    def find(self) -> Device:
        s = self.settings
        found = devices(s.root)
        chosen = matching(found, s.device)
        if len(chosen) > s.index:
            return chosen[s.index]
        if chosen:
            raise SensorError(f"index {s.index}: only {len(chosen)} IIO device(s) named {s.device!r} under {s.root}")
        names = ", ".join(sorted({d.name for d in found})) or "none"
        raise SensorError(f"no IIO device named {s.device!r} under {s.root} (found: {names}; is its overlay or "
                          "driver loaded?)")

    def value(self, device: Device, quantity: Quantity) -> float:
        """The quantity in milli units: the processed channel, else (raw + offset) × scale."""
        processed = self._attribute(device, f"{quantity.prefix}_input")
        if processed is not None:
            return processed
        raw = self._attribute(device, f"{quantity.prefix}_raw")
        if raw is None:
            hint = "; set humidity: false" if quantity is HUMIDITY else ""
            raise SensorError(f"{self._described(device)} has no {quantity.what} channel "
                              f"({quantity.prefix}_input or _raw){hint}")
        offset = self._attribute(device, f"{quantity.prefix}_offset")
        scale = self._attribute(device, f"{quantity.prefix}_scale")
        result = (raw + (offset or 0.0)) * (1.0 if scale is None else scale)
        if not math.isfinite(result):
            raise SensorError(f"{self._described(device)}: {quantity.what} from raw × scale is not finite")
        return result

    def _attribute(self, device: Device, attribute: str) -> float | None:
        """One channel file's value; None if the device has no such file."""
        path = os.path.join(device.directory, attribute)
        if not os.path.lexists(path):
            if not os.path.exists(device.directory):
                raise SensorError(f"{self._described(device)} is gone (unplugged, or its driver unloaded)")
            return None
        try:
            text = read_text(path)
        except SensorError as exc:
            cause = exc.__cause__
            if isinstance(cause, OSError) and cause.errno:
                code = errno.errorcode.get(cause.errno, str(cause.errno))
                retry = "; the sensor did not answer this time (a DHT often does not)" \
                    if cause.errno in _TRANSIENT else ""
                raise SensorError(f"{self._described(device)}: reading {attribute} failed: {code} "
                                  f"({cause.strerror}){retry}") from cause
            raise SensorError(f"{self._described(device)}: {exc}") from exc
        return parse_value(text, f"{self._described(device)}: {attribute}")

    @staticmethod
    def _described(device: Device) -> str:
        return f"IIO device {device.name!r} (iio:device{device.number})"


# The widest range among the parts these drivers serve: TMP117 -55…150 °C; si7020, hdc100x, htu21 -40…125 °C;
# BME280 -40…85 °C; DHT22 -40…80 °C.
SENSOR_TYPE = SensorType(Settings, lambda config, shared: IioSensor(config.settings), (-55.0, 150.0))
