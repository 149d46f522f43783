"""The settings a config file holds, as frozen dataclasses: what the loader (config.py) makes and every other
module reads.

A module of its own, importing no other part of templog's config or sensors, so that whatever only reads a setting
(the MQTT client, the InfluxDB clients, the sensors, the runner) depends on these types and not on the loader, and
the loader can consult the sensor registry without the two importing each other (issue 11).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from collector import BUILD_DATE
from collector.ticks import parse_time_ns

SYSFS = "/sys"  # where the kernel mounts sysfs; `collector.sysfs` moves it (a container's /host/sys, a test tree)

DURATION = "duration"
Duration = Annotated[float, DURATION]  # seconds, written as "10s" in YAML; the loader parses a key so marked

MAX_FILE_BYTES = 1 << 20  # the config and the files it names (token, password, CA) are KBs; this refuses /dev/zero


class Secret(str):
    """A string (a token) that never shows itself in a repr, log or traceback."""

    def __repr__(self) -> str:
        return "Secret('***')" if self else "Secret('')"


@dataclass(frozen=True)
class InfluxConfig:
    url: str = "http://localhost:8086"  # never with user:password@: the parser moves those into `token`
    api: Literal["v1", "v2", "v3"] = "v2"
    org: str = ""  # v2 only: v1 and v3 ignore it
    bucket: str = "temperature"
    token: Secret = Secret("")
    token_file: str | None = None
    retention: Duration | None = None  # None: templog never changes retention, nor creates the bucket/database
    timeout: Duration = 10.0
    batch_size: int = 5000

    def credentials(self) -> str:
        """The token, read from token_file at each call so a replaced secret is picked up without restart."""
        return _secret(self.token, self.token_file)


@dataclass(frozen=True)
class MqttConfig:
    host: str = "localhost"
    port: int = 1883
    username: str | None = None
    password: Secret = Secret("")
    password_file: str | None = None
    tls: bool = False
    ca_file: str | None = None  # with tls: the CA that signed the broker's certificate (default: system CAs)
    client_id: str = ""  # default: templog-<hostname>
    keepalive: Duration = 60.0

    def credentials(self) -> str:
        return _secret(self.password, self.password_file)


@dataclass(frozen=True)
class CollectorConfig:
    interval: Duration = 10.0
    timeout: Duration = 5.0
    outbox: str = "data/outbox.sqlite"
    tags: dict[str, str] = field(default_factory=dict)
    max_points: int = 1_000_000
    max_age: Duration = 0.0
    health_interval: Duration = 60.0
    time_floor: str = BUILD_DATE  # no point is stamped before this: a clock without RTC boots in 1970
    sysfs: str = SYSFS  # the root every sysfs sensor type's paths and `discover` derive from

    @property
    def time_floor_ns(self) -> int:
        return parse_time_ns(self.time_floor)


@dataclass(frozen=True)
class Calibration:
    """The true temperature from a measured one: `scale` × measured + `offset` (config `calibrate`: an `offset`, or
    the line through two reference `points`)."""

    scale: float = 1.0
    offset: float = 0.0

    def apply(self, celsius: float) -> float:
        return self.scale * celsius + self.offset


@dataclass(frozen=True)
class SensorConfig:
    name: str
    type: str
    interval: float
    timeout: float
    tags: dict[str, str]
    min: float | None
    max: float | None
    valid_min: float
    valid_max: float
    settings: Any  # the sensor type's own frozen Settings dataclass
    humidity_min: float | None = None  # %RH alert thresholds
    humidity_max: float | None = None
    calibration: Calibration = Calibration()
    humidity_offset: float = 0.0  # %RH added to each humidity reading
    measures_humidity: bool = False  # the type's Settings say this sensor gives humidity (property measures_humidity)


@dataclass(frozen=True)
class Config:
    file: str
    collector: CollectorConfig
    sensors: tuple[SensorConfig, ...]
    influxdb: InfluxConfig | None
    host: str
    mqtt: MqttConfig | None = None


def _secret(inline: str, file: str | None) -> Secret:
    return Secret(read_small_file(file).decode("utf-8").strip()) if file else Secret(inline)


def read_small_file(path: str) -> bytes:
    """The file's bytes, refused unread beyond MAX_FILE_BYTES: /dev/zero or a disk image must not fill the memory."""
    with open(path, "rb") as stream:
        data = stream.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise OSError(errno.EFBIG, f"larger than {MAX_FILE_BYTES // 1024} KiB")
    return data
