"""What every sensor type shares: the read interface, its errors, the sysfs root and sysfs-style file helpers."""

from __future__ import annotations

import dataclasses
import os
import stat
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Protocol

from collector.config_types import SYSFS
from collector.errors import TemplogError
from collector.stats import Stats

if TYPE_CHECKING:
    from collector.config_types import SensorConfig
    from collector.mqtt import MqttHub


READ_LIMIT = 4096  # bytes: a sysfs attribute is at most a page; a file of one value is far shorter
UNDER_SYSFS = "under_sysfs"  # a Settings field's metadata key: its default path, relative to the sysfs root


class SensorError(TemplogError):
    """A read failed; the message says why in words a user can act on."""


class MissingReading(SensorError):
    """Nothing to read this tick (an MQTT device that has not published): no point, counted, not an error."""


class SettingError(TemplogError, ValueError):
    """A type-specific key is invalid; raised from a Settings dataclass's __post_init__."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"{key}: {problem}")
        self.key, self.problem = key, problem


class Sample(NamedTuple):
    """What one read measured: a temperature and, from a sensor that has it, the relative humidity."""

    celsius: float
    humidity: float | None = None  # %RH
    humidity_error: str | None = None  # why the humidity could not be read, where the temperature could


class Sensor(Protocol):
    """`read` runs on the shared lane while it answers fast (collector/lanes.py); a type whose reads wait by nature
    also sets the class attribute `OWN_THREAD = True`, to be read on a thread of its own from the start."""

    def read(self) -> Sample: ...


@dataclass
class Shared:
    """What the sensors of one process share: the counters and, for mqtt sensors, the broker connection. The caller
    makes the connection and hands it in (cli.py): a sensor type uses a hub, it does not build one, so this package
    imports neither the MQTT client (paho) nor the settings it is made from."""

    stats: Stats = field(default_factory=Stats)
    hub: "MqttHub | None" = None

    def mqtt(self) -> "MqttHub":
        if self.hub is None:
            raise SensorError("mqtt sensors need the top-level mqtt: section")
        return self.hub

    def start(self) -> None:
        if self.hub is not None:
            self.hub.start()

    def stop(self) -> None:
        if self.hub is not None:
            self.hub.stop()


class SensorType(NamedTuple):  # not a frozen dataclass: made at import ~7x faster, and every command loads one
    settings: type  # frozen dataclass of the type's own keys
    create: Callable[["SensorConfig", Shared], Sensor]
    valid_range: tuple[float, float]  # physically possible °C; readings outside are refused


def under_sysfs(relative: str) -> Any:
    """A Settings path key whose default lies under the sysfs root: when a config does not set it, the loader fills
    in `<collector.sysfs>/<relative>` (collector/config.py); a Settings made without the loader has it under /sys."""
    return field(default=os.path.join(SYSFS, relative), metadata={UNDER_SYSFS: relative})


def sysfs_paths(settings: type, sysfs: str) -> dict[str, str]:
    """The path keys of a type's Settings that lie under the sysfs root, each as it is under `sysfs`: the defaults
    the loader fills in, and where `discover` looks."""
    return {f.name: os.path.join(sysfs, f.metadata[UNDER_SYSFS])
            for f in dataclasses.fields(settings) if UNDER_SYSFS in f.metadata}


def read_number(text: str, source: str) -> float:
    """The number in a sysfs-style file's content."""
    try:
        return float(text.strip())
    except ValueError as exc:
        raise SensorError(f"{source} does not hold a number: {text.strip()[:40]!r}") from exc


def numbered_entries(root: str, prefix: str) -> list[tuple[int, str]]:
    """(N, path) of each entry of `root` named `prefix`N (thermal_zone3, iio:device10), by N; none if `root` cannot
    be listed (no such folder: the kernel has no device of that kind)."""
    try:
        entries = os.listdir(root)
    except OSError:
        return []
    found = []
    for entry in entries:
        number = entry.removeprefix(prefix)
        if number != entry and number.isascii() and number.isdigit():
            found.append((int(number), os.path.join(root, entry)))
    return sorted(found)


def read_text(path: str, limit: int = READ_LIMIT) -> str:
    """A sysfs-style file's content: at most `limit` bytes, more is refused.

    Opened non-blocking, so a FIFO with no writer is an empty read rather than a thread stuck in open() for ever;
    sysfs and regular files ignore the flag. A read that blocks all the same (a hung network file system) is
    bounded by the caller's reader thread and timeout.
    """
    try:
        data = _read_at_most(path, limit + 1)
    except FileNotFoundError as exc:
        raise SensorError(f"{path} does not exist") from exc
    except OSError as exc:
        raise SensorError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if data is None:
        raise SensorError(f"{path} has nothing to read (a FIFO or device without data)")
    if len(data) > limit:
        raise SensorError(f"{path} holds more than {limit} bytes, not one value (a device such as /dev/zero?)")
    return data.decode("ascii", errors="replace")


def _read_at_most(path: str, size: int) -> bytes | None:
    """Up to `size` bytes: to end of file, or what a FIFO or device has now; None if such a one has nothing."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        data = b""
        while len(data) < size:
            try:
                chunk = os.read(fd, size - len(data))
            except BlockingIOError:  # a FIFO whose writer has written nothing (more) yet
                break
            if not chunk:
                break
            data += chunk
        return data if data or stat.S_ISREG(os.fstat(fd).st_mode) else None
    finally:
        os.close(fd)
