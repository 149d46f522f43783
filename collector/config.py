"""Load config.yaml once into frozen dataclasses; every problem becomes one ConfigError naming file, key path and fault.

The parser is driven by the dataclasses' type hints, so adding a key is adding a field.
Sensor types declare their own keys as a `Settings` dataclass in their module.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import types
import typing
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping
from urllib.parse import unquote

import yaml

from collector import BUILD_DATE
from collector.durations import parse_duration
from collector.ticks import parse_time_ns
from collector.sensors import SENSOR_TYPES, SettingError

DURATION = "duration"
Duration = Annotated[float, DURATION]  # seconds, written as "10s" in YAML

DEFAULT_PATH = "config.yaml"


class ConfigError(Exception):
    """Invalid configuration: the CLI prints it as one line and exits 2."""

    def __init__(self, file: str, path: str, problem: str):
        self.file, self.path, self.problem = file, path, problem
        where = f"{file}: {path}" if path else file
        super().__init__(f"{where}: {problem}")


class Secret(str):
    """A string (a token) that never shows itself in a repr, log or traceback."""

    def __repr__(self) -> str:
        return "Secret('***')" if self else "Secret('')"


@dataclass(frozen=True)
class InfluxConfig:
    url: str = "http://localhost:8086"  # never with user:password@: the parser moves those into `token`
    api: Literal["v1", "v2"] = "v2"
    org: str = ""
    bucket: str = "temperature"
    token: Secret = Secret("")
    token_file: str | None = None
    retention: Duration | None = None  # None: templog never changes retention, nor creates the bucket/database
    timeout: Duration = 10.0
    batch_size: int = 5000

    def credentials(self) -> str:
        """The token, read from token_file at each call so a replaced secret is picked up without restart."""
        return _secret(self.token, self.token_file)


# Up to the last @: a password with an unescaped @, / or # must not leave a piece of itself in the shown URL.
_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)?(?P<userinfo>\S*)@")


def _url_credentials(url: str) -> tuple[str, str | None, str | None]:
    """The URL without `user:password@`, and the (percent-decoded) user and password it held, None if none."""
    match = _USERINFO.match(url)
    if match is None:
        return url, None, None
    user, _, password = match["userinfo"].partition(":")
    return (match["scheme"] or "") + url[match.end():], unquote(user), unquote(password)


def _redacted_url(url: str) -> str:
    """The URL as it may be shown: any password replaced by ***."""
    match = _USERINFO.match(url)
    if match is None:
        return url
    user = match["userinfo"].partition(":")[0]
    return f"{match['scheme'] or ''}{user}:***@{url[match.end():]}"


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

    @property
    def time_floor_ns(self) -> int:
        return parse_time_ns(self.time_floor)


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


@dataclass(frozen=True)
class Config:
    file: str
    collector: CollectorConfig
    sensors: tuple[SensorConfig, ...]
    influxdb: InfluxConfig | None
    host: str
    mqtt: MqttConfig | None = None


@dataclass(frozen=True)
class _SensorCommon:
    """Keys every sensor entry may carry; the rest belong to its type's Settings."""

    name: str
    type: str
    interval: Duration | None = None
    timeout: Duration | None = None
    tags: dict[str, str] = field(default_factory=dict)
    min: float | None = None
    max: float | None = None
    valid_min: float | None = None
    valid_max: float | None = None


_TOP_KEYS = ("influxdb", "collector", "sensors", "mqtt")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def load_config(path: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read, interpolate and validate the config file; raise ConfigError on any problem."""
    file = str(path or os.environ.get("TEMPLOG_CONFIG") or DEFAULT_PATH)
    environ = os.environ if environ is None else environ
    try:
        text = Path(file).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(file, "", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, "", f"cannot read file: {exc.strerror or exc}") from None
    try:
        raw = yaml.load(text, Loader=_StrictLoader)
    except _DuplicateKey as exc:
        raise ConfigError(file, f"line {exc.line}", f"duplicate key {exc.key!r}: the earlier one would be ignored") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(file, where, f"YAML syntax error: {problem}") from None
    return _Parser(file, environ).config(raw if raw is not None else {})


class _DuplicateKey(Exception):
    def __init__(self, key: object, line: int):
        self.key, self.line = key, line


class _StrictLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice in one mapping: a typo must not silently replace a section."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise _DuplicateKey(key, key_node.start_mark.line + 1)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _Parser:
    def __init__(self, file: str, environ: Mapping[str, str]):
        self.file = file
        self.environ = environ
        self.base_dir = Path(file).resolve().parent

    def fail(self, path: str, problem: str) -> typing.NoReturn:
        raise ConfigError(self.file, path, problem)

    def config(self, raw: Any) -> Config:
        raw = self.interpolate(raw, "")
        if not isinstance(raw, dict):
            self.fail("", f"expected a mapping with keys {', '.join(_TOP_KEYS)}, got {_kind(raw)}")
        for key in raw:
            if key not in _TOP_KEYS:
                self.fail(str(key), f"unknown key (expected one of: {', '.join(_TOP_KEYS)})")
        collector = self.dataclass(CollectorConfig, raw.get("collector") or {}, "collector")
        self.check_positive(collector.interval, "collector.interval")
        self.check_positive(collector.timeout, "collector.timeout")
        self.check_positive(collector.health_interval, "collector.health_interval")
        try:
            parse_time_ns(collector.time_floor)
        except ValueError:
            self.fail("collector.time_floor", f"expected a date such as 2026-01-01, got {collector.time_floor!r}")
        if collector.max_points < 1:
            self.fail("collector.max_points", "must be at least 1")
        collector = dataclasses.replace(collector, outbox=str(self.base_dir / collector.outbox))
        influx = None
        if raw.get("influxdb") is not None:
            influx = self.influxdb(raw["influxdb"])
        sensors_raw = raw.get("sensors")
        if sensors_raw is None:
            self.fail("sensors", "missing: configure at least one sensor")
        if not isinstance(sensors_raw, list) or not sensors_raw:
            self.fail("sensors", f"expected a non-empty list of sensors, got {_kind(sensors_raw)}")
        sensors: list[SensorConfig] = []
        seen: dict[str, int] = {}
        for i, entry in enumerate(sensors_raw):
            sensor = self.sensor(entry, f"sensors[{i}]", collector)
            if sensor.name in seen:
                self.fail(f"sensors[{i}].name", f"duplicate sensor name {sensor.name!r} (also sensors[{seen[sensor.name]}])")
            seen[sensor.name] = i
            sensors.append(sensor)
        mqtt = self.mqtt(raw["mqtt"]) if raw.get("mqtt") is not None else None
        for i, sensor in enumerate(sensors):
            if sensor.type == "mqtt" and mqtt is None:
                self.fail(f"sensors[{i}].type", "mqtt sensors need a top-level mqtt: section (host, port, ...)")
        host = collector.tags.get("host") or socket.gethostname()
        return Config(self.file, collector, tuple(sensors), influx, host, mqtt)

    def mqtt(self, raw: Any) -> MqttConfig:
        mqtt = self.dataclass(MqttConfig, raw, "mqtt")
        if not 0 < mqtt.port < 65536:
            self.fail("mqtt.port", f"expected a TCP port number, got {mqtt.port}")
        if mqtt.password and mqtt.password_file:
            self.fail("mqtt.password_file", "set either password or password_file, not both")
        files = {"password_file": mqtt.password_file, "ca_file": mqtt.ca_file}
        for key, name in files.items():
            if name:
                resolved = str(self.base_dir / name)
                try:
                    Path(resolved).read_bytes()
                except OSError as exc:
                    self.fail(f"mqtt.{key}", f"cannot read {resolved}: {exc.strerror or exc}")
                files[key] = resolved
        return dataclasses.replace(mqtt, password=Secret(mqtt.password), **files)

    def influxdb(self, raw: Any) -> InfluxConfig:
        if isinstance(raw, dict) and raw.get("retention") == "":  # `${INFLUX_RETENTION:-}` left unset: not managed
            raw = {k: v for k, v in raw.items() if k != "retention"}
        influx = self.dataclass(InfluxConfig, raw, "influxdb")
        url, user, password = _url_credentials(influx.url)
        if not re.match(r"^https?://[^/\s]+", url):
            self.fail("influxdb.url", f"expected an http:// or https:// URL, got {_redacted_url(influx.url)!r}")
        if user is not None:
            if influx.api != "v1":
                self.fail("influxdb.url", "a user name or password in the URL is for api v1; api v2 authenticates "
                          "with an API token: remove it from the URL and set influxdb.token or token_file")
            if influx.token or influx.token_file:
                self.fail("influxdb.url", "credentials both in the URL and in influxdb.token/token_file: keep one")
            influx = dataclasses.replace(influx, url=url, token=f"{user}:{password}")
        if influx.api == "v2" and not influx.org:
            self.fail("influxdb.org", "required with api: v2")
        if not influx.bucket:
            self.fail("influxdb.bucket", "must not be empty")
        if influx.retention and influx.retention < 3600:
            self.fail("influxdb.retention", "must be 0 (keep forever) or at least 1h, InfluxDB's minimum")
        self.check_positive(influx.timeout, "influxdb.timeout")
        if influx.batch_size < 1:
            self.fail("influxdb.batch_size", "must be at least 1")
        if influx.token_file == "":  # `${INFLUX_TOKEN_FILE:-}` left unset
            influx = dataclasses.replace(influx, token_file=None)
        if influx.token and influx.token_file:
            self.fail("influxdb.token_file", "set either token or token_file, not both")
        if influx.token_file:
            token_file = str(self.base_dir / influx.token_file)
            try:
                Path(token_file).read_text()
            except OSError as exc:
                self.fail("influxdb.token_file", f"cannot read {token_file}: {exc.strerror or exc}")
            influx = dataclasses.replace(influx, token_file=token_file)
        return dataclasses.replace(influx, url=url.rstrip("/"), token=Secret(influx.token))

    def sensor(self, raw: Any, path: str, collector: CollectorConfig) -> SensorConfig:
        if not isinstance(raw, dict):
            self.fail(path, f"expected a mapping, got {_kind(raw)}")
        type_name = raw.get("type")
        if type_name is None:
            self.fail(f"{path}.type", f"missing (one of: {', '.join(sorted(SENSOR_TYPES))})")
        if not isinstance(type_name, str) or type_name not in SENSOR_TYPES:
            self.fail(f"{path}.type", f"unknown sensor type {type_name!r} (one of: {', '.join(sorted(SENSOR_TYPES))})")
        sensor_type = SENSOR_TYPES[type_name]
        common_keys = {f.name for f in dataclasses.fields(_SensorCommon)}
        common = self.dataclass(_SensorCommon, {k: v for k, v in raw.items() if k in common_keys}, path)
        if not common.name or any(c in common.name for c in "\n\r\t\\") or common.name.strip() != common.name:
            self.fail(f"{path}.name", f"invalid sensor name {common.name!r} (non-empty, no tabs, newlines, backslashes or surrounding spaces)")
        settings = self.dataclass(sensor_type.settings, {k: v for k, v in raw.items() if k not in common_keys}, path, extra_known=common_keys)
        interval = collector.interval if common.interval is None else common.interval
        timeout = collector.timeout if common.timeout is None else common.timeout
        self.check_positive(interval, f"{path}.interval")
        self.check_positive(timeout, f"{path}.timeout")
        low = sensor_type.valid_range[0] if common.valid_min is None else common.valid_min
        high = sensor_type.valid_range[1] if common.valid_max is None else common.valid_max
        if low >= high:
            self.fail(f"{path}.valid_max", f"must be above valid_min ({low})")
        if common.min is not None and common.max is not None and common.min >= common.max:
            self.fail(f"{path}.max", f"must be above min ({common.min})")
        return SensorConfig(common.name, common.type, interval, timeout, common.tags,
                            common.min, common.max, low, high, settings)

    def check_positive(self, seconds: float, path: str) -> None:
        if seconds <= 0:
            self.fail(path, "must be a positive duration such as 10s")

    def dataclass(self, cls: type, raw: Any, path: str, extra_known: set[str] = frozenset()) -> Any:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            self.fail(path, f"expected a mapping, got {_kind(raw)}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        hints = typing.get_type_hints(cls, include_extras=True)
        values = {}
        for key, value in raw.items():
            key_path = _join(path, key)
            if key not in fields:
                known = ", ".join(sorted(set(fields) | set(extra_known)))
                self.fail(key_path, f"unknown key (expected one of: {known})")
            values[key] = self.convert(hints[key], value, key_path)
        for name, f in fields.items():
            if name not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                self.fail(_join(path, name), "missing required key")
        try:
            return cls(**values)
        except SettingError as exc:
            self.fail(_join(path, exc.key), exc.problem)

    def convert(self, hint: Any, value: Any, path: str) -> Any:
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        if isinstance(value, _FromEnvironment) and hint in (bool, int, float):
            value = value.as_yaml_scalar()
        if origin is Annotated and DURATION in args[1:]:
            return self.duration(value, path)
        if origin in (typing.Union, types.UnionType):
            if value is None and type(None) in args:
                return None
            errors = []
            for option in (a for a in args if a is not type(None)):
                try:
                    return self.convert(option, value, path)
                except ConfigError as exc:
                    errors.append(exc.problem)
            self.fail(path, errors[0] if len(errors) == 1 else " or ".join(errors))
        if origin is Literal:
            if value not in args:
                self.fail(path, f"expected one of {', '.join(map(str, args))}, got {value!r}")
            return value
        if origin is dict:
            if not isinstance(value, dict):
                self.fail(path, f"expected a mapping, got {_kind(value)}")
            result = {}
            for k, v in value.items():
                key = self.convert(str, k, path)
                item = self.convert(str, v, _join(path, key))
                if not key or not item or "\n" in key + item or "\\" in key + item:
                    self.fail(_join(path, key), "tag keys and values must be non-empty single-line text without backslashes")
                result[key] = item
            return result
        if origin is list:
            if not isinstance(value, list) or not value:
                self.fail(path, f"expected a non-empty list, got {_kind(value)}")
            return tuple(self.convert(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
        if hint is bool:
            if not isinstance(value, bool):
                self.fail(path, f"expected true or false, got {_kind(value)}")
            return value
        if hint is int:
            if isinstance(value, bool) or not isinstance(value, int):
                self.fail(path, f"expected an integer, got {_kind(value)}")
            return value
        if hint is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.fail(path, f"expected a number, got {_kind(value)}")
            return float(value)
        if hint in (str, Secret):
            if isinstance(value, (date, datetime)):  # YAML reads 2026-01-01 as a date
                return value.isoformat()
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                self.fail(path, f"expected text, got {_kind(value)}")
            return str(value)
        raise TypeError(f"config parser cannot handle {hint!r} at {path}")

    def duration(self, value: Any, path: str) -> float:
        if value == 0 and not isinstance(value, bool):
            return 0.0
        if not isinstance(value, str):
            self.fail(path, f"expected a duration string such as 10s, got {_kind(value)}")
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(path, str(exc))

    def interpolate(self, value: Any, path: str) -> Any:
        """Replace ${VAR} and ${VAR:-default} in every string; a value that is one reference keeps its YAML type."""
        if isinstance(value, dict):
            return {k: self.interpolate(v, _join(path, str(k))) for k, v in value.items()}
        if isinstance(value, list):
            return [self.interpolate(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if not isinstance(value, str) or "${" not in value:
            return value

        def replace(match: re.Match) -> str:
            name, default = match.group(1), match.group(2)
            if default is not None:  # as in the shell: the default also replaces an empty value
                return self.environ.get(name) or default
            if name in self.environ:
                return self.environ[name]
            self.fail(path, f"environment variable {name} is not set (write ${{{name}:-}} to allow it empty)")

        return _FromEnvironment(_ENV_REF.sub(replace, value))


def _secret(inline: str, file: str | None) -> Secret:
    return Secret(Path(file).read_text().strip()) if file else Secret(inline)


class _FromEnvironment(str):
    """Text produced by interpolation; numeric and boolean keys accept it as YAML would ("8086", "true")."""

    def as_yaml_scalar(self) -> Any:
        try:
            return yaml.safe_load(self) if self.strip() else self
        except yaml.YAMLError:
            return self


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else str(key)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, (dict, list)):
        return f"a {'mapping' if isinstance(value, dict) else 'list'}"
    return f"{type(value).__name__} {value!r}"
