"""Load config.yaml once into frozen dataclasses; every problem becomes one ConfigError naming file, key path and fault.

The parser is driven by the dataclasses' type hints (collector/config_types.py), so adding a key is adding a field.
Sensor types declare their own keys as a `Settings` dataclass in their module, which the loader finds through the
sensor registry (collector/sensors/registry.py).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import stat
import types
import typing
import urllib.parse
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import AbstractSet, Annotated, Any, Literal, Mapping, NamedTuple
from urllib.parse import unquote

import yaml

from collector import health
from collector.config_types import (
    DURATION,
    Calibration,
    CollectorConfig,
    Config,
    Duration,
    InfluxConfig,
    MqttConfig,
    Secret,
    SensorConfig,
    read_small_file,
)
from collector.durations import LONGEST_MS, format_duration, parse_duration
from collector.errors import TemplogError
from collector.lineprotocol import sensor_name_problem, tag_key_problem, text_problem
from collector.sensors.base import SettingError, sysfs_paths
from collector.sensors.registry import SENSOR_TYPES
from collector.ticks import parse_time_ns

# The loader's results, importable from here as ever; they live in config_types so that a module which only reads
# settings does not import the loader (and the loader, the sensor registry)
__all__ = ["CollectorConfig", "Config", "ConfigError", "InfluxConfig", "MqttConfig", "Secret", "SensorConfig",
           "load_config"]

DEFAULT_PATH = "config.yaml"


class DurationBounds(NamedTuple):
    """The durations a key accepts, in seconds; `zero` says what 0 means where 0 is allowed too. (A NamedTuple: made
    at import ~7x faster than a frozen dataclass, which compiles six methods; every command loads the config.)"""

    shortest: float
    longest: float
    zero: str | None = None


_MINUTE, _HOUR, _DAY = 60.0, 3600.0, 86400.0
_LONGEST = LONGEST_MS / 1000  # 100 years
# Every duration key's bounds (README: "Bounds"). Intervals: each tick wakes the scheduler, commits to SQLite and
# logs a line, which a Raspberry Pi does ten times a second per sensor with room to spare; past a day a sensor is
# not logging temperatures any more.
INTERVAL = DurationBounds(0.1, _DAY)
READ_TIMEOUT = DurationBounds(0.01, 10 * _MINUTE)  # `read` and `check` wait this long for a hung sensor
HEALTH_INTERVAL = DurationBounds(1.0, _DAY)
MAX_AGE = DurationBounds(_MINUTE, _LONGEST, zero="no age limit")  # shorter: points dropped before a delivery
RETENTION = DurationBounds(_HOUR, _LONGEST, zero="keep forever")  # 1h: InfluxDB's shortest retention
HTTP_TIMEOUT = DurationBounds(0.1, 10 * _MINUTE)
KEEPALIVE = DurationBounds(5.0, 65535.0)  # MQTT sends it as a 16-bit number of seconds
MAX_POINTS = 1_000_000_000  # ~100 GB of outbox
MAX_BATCH = 100_000  # points per write request: ~10 MB, below InfluxDB 1.x's 25 MB body limit
TIME_FLOOR_RANGE = ("1970-01-01", "2100-01-01")  # a later floor would mean reading nothing until then
MAX_YAML_DEPTH = 32  # a config is 5 levels deep; deeper nesting only ever exhausts the stack
MAX_YAML_NODES = 100_000  # values after expanding aliases: a 1 KB "billion laughs" file must not take gigabytes


class ConfigError(TemplogError):
    """Invalid configuration: the CLI prints it as one line and exits 2."""

    def __init__(self, file: str, path: str, problem: str):
        self.file, self.path, self.problem = file, path, problem
        where = f"{file}: {path}" if path else file
        super().__init__(f"{where}: {problem}")


# What InfluxDB 3 takes as a database name (influxdata/influxdb@v3.10.1:influxdb3_server/src/http.rs
# validate_db_name; its `db/rp` form is for the v1 API): refused in the config, as every write would be refused
_V3_DATABASE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,510}")
# user:password@ in the authority only (before the first /, ? or #): an @ further on is not the host's
_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)?(?P<userinfo>[^/?#\s]*)@")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _url_credentials(url: str) -> tuple[str, str | None, str | None]:
    """The URL without `user:password@`, and the (percent-decoded) user and password it held, None if none."""
    match = _USERINFO.match(url)
    if match is None:
        return url, None, None
    user, _, password = match["userinfo"].partition(":")
    return (match["scheme"] or "") + url[match.end():], unquote(user), unquote(password)


def _redacted_url(url: str) -> str:
    """The URL as it may be shown: any password replaced by ***, and any query or fragment (InfluxDB 1.x reads a
    password from `p=`) by `?...`."""
    match = _USERINFO.match(url)
    if match is not None:
        user = match["userinfo"].partition(":")[0]
        url = f"{match['scheme'] or ''}{user}:***@{url[match.end():]}"
    if "@" in url.partition("***@")[2 if match else 0]:  # maybe a password with an unencoded / ? or #: hide it all
        scheme = _SCHEME.match(url)
        url = f"{scheme.group() if scheme else ''}***@{url.rpartition('@')[2]}"
    return re.sub(r"[?#].*", "?...", url, count=1, flags=re.S)


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
    humidity_min: float | None = None
    humidity_max: float | None = None
    humidity_offset: float = 0.0


CALIBRATE = "calibrate"  # a common key too, parsed by _Parser.calibration
LARGEST_OFFSET_C = 20.0  # more is no calibration: the wrong sensor type, or a wrong scale
LARGEST_HUMIDITY_OFFSET = 50.0  # %RH
SCALE_RANGE = (0.5, 2.0)  # a two-point calibration's slope; outside, the points or the sensor's scale are wrong

_TOP_KEYS = ("influxdb", "collector", "sensors", "mqtt")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def named_config_file(path: str | os.PathLike | None = None) -> str | None:
    """The config file the user named: `path` (-c), else $TEMPLOG_CONFIG; None if neither does."""
    named = path or os.environ.get("TEMPLOG_CONFIG")
    return str(named) if named else None


def load_config(path: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None,
                sensors_required: bool = True) -> Config:
    """Read, interpolate and validate the config file; raise ConfigError on any problem. Without
    `sensors_required` (`discover`, which finds the sensors to configure), a config may have none."""
    file = named_config_file(path) or DEFAULT_PATH
    environ = os.environ if environ is None else environ
    try:
        raw = _load_yaml(_read_text(file))
    except _Refused as exc:  # its message is this one's: the cause is what it was refused for
        raise ConfigError(file, exc.where, exc.problem) from exc.__cause__
    return _Parser(file, environ, sensors_required).config(raw if raw is not None else {})


class _Refused(TemplogError):
    """The file cannot be read as a config at all; `where` is empty or a line and column."""

    def __init__(self, where: str, problem: str):
        super().__init__(f"{where}: {problem}" if where else problem)
        self.where, self.problem = where, problem


def _read_text(file: str) -> str:
    try:
        data = read_small_file(file)
    except FileNotFoundError as exc:
        raise _Refused("", "file not found") from exc
    except IsADirectoryError as exc:
        raise _Refused("", "is a directory, not a config file") from exc
    except OSError as exc:
        raise _Refused("", f"cannot read file: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8-sig")  # a BOM, as some Windows editors write, is no error
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise _Refused(f"line {line}", f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8") \
            from exc


def _load_yaml(text: str) -> Any:
    try:
        loader = _StrictLoader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise _Refused(where, f"YAML syntax error: {exc.problem or exc.context or 'not YAML'}") from _unquoted(exc)
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, such as NUL
        raise _Refused(f"line {text.count(chr(10), 0, exc.position) + 1}",
                       f"YAML syntax error: character U+{exc.character:04X} is not allowed ({exc.reason})") from exc


def _unquoted(exc: yaml.MarkedYAMLError) -> yaml.MarkedYAMLError:
    """The error without the snippet of the file its text would quote: the line may hold a token (shown under -v)."""
    for mark in (exc.context_mark, exc.problem_mark):
        if mark is not None:
            mark.buffer = None  # PyYAML's Mark.get_snippet quotes nothing without it
    return exc


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML, stricter: no key given twice in one mapping (a typo must not silently replace a section), no nesting
    deeper than MAX_YAML_DEPTH, no more than MAX_YAML_NODES values once aliases are expanded, and a scalar that
    cannot become a value (a 5000-digit number, 2026-02-30) is a refusal naming its line, not a ValueError."""

    def __init__(self, text: str):
        super().__init__(text)
        self.depth = 0

    def compose_node(self, parent, index):
        self.depth += 1
        try:
            if self.depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise _Refused(f"line {mark.line + 1}", f"nested deeper than {MAX_YAML_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_document(self, node):
        _count_expanded(node, 1, {}, set())
        return super().construct_document(node)

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:
            raise _Refused(f"line {node.start_mark.line + 1}", f"invalid value {_shown(node)}: {exc}") from exc

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults`: its keys may be overridden here
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)):
                if key in seen:
                    raise _Refused(f"line {key_node.start_mark.line + 1}",
                                   f"duplicate key {key!r}: the earlier one would be ignored")
                seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node):
        value = None if len(node.value) > 80 else super().construct_yaml_int(node)  # int() of 5000 digits raises
        if value is None or not -(2**63) <= value < 2**63:  # what SQLite and InfluxDB hold; keeps messages short
            raise _Refused(f"line {node.start_mark.line + 1}", f"integer {_shown(node)} does not fit in 64 bits")
        return value


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _StrictLoader.construct_yaml_int)


def _count_expanded(node: yaml.Node, depth: int, sizes: dict[int, tuple[int, int]],
                    open_nodes: set[int]) -> tuple[int, int]:
    """(values, levels) under `node` with aliases expanded; refuses a node inside itself, or too many or too deep."""
    if id(node) in sizes:
        values, levels = sizes[id(node)]
    elif id(node) in open_nodes:
        raise _Refused(f"line {node.start_mark.line + 1}", "an alias refers to a value that contains it")
    else:
        children = node.value if isinstance(node, yaml.SequenceNode) else (
            [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else [])
        open_nodes.add(id(node))
        values, levels = 1, 1
        for child in children:
            child_values, child_levels = _count_expanded(child, depth + 1, sizes, open_nodes)
            values, levels = values + child_values, max(levels, child_levels + 1)
            if values > MAX_YAML_NODES:
                raise _Refused(f"line {node.start_mark.line + 1}",
                               f"more than {MAX_YAML_NODES} values once aliases are expanded")
        open_nodes.discard(id(node))
        sizes[id(node)] = values, levels
    if depth + levels - 1 > MAX_YAML_DEPTH:
        raise _Refused(f"line {node.start_mark.line + 1}",
                       f"nested deeper than {MAX_YAML_DEPTH} levels once aliases are expanded")
    return values, levels


def _shown(node: yaml.Node) -> str:
    return _short(node.value if isinstance(node, yaml.ScalarNode) else node.tag)


def _short(text: str) -> str:
    return repr(text[:40] + "..." if len(text) > 40 else text)


class _Parser:
    def __init__(self, file: str, environ: Mapping[str, str], sensors_required: bool = True):
        self.file = file
        self.environ = environ
        self.sensors_required = sensors_required
        self.base_dir = Path(file).resolve().parent

    def fail(self, path: str, problem: str) -> typing.NoReturn:
        raise ConfigError(self.file, path, problem)

    def config(self, raw: Any) -> Config:
        raw = self.interpolate(raw, "")
        if not isinstance(raw, dict):
            self.fail("", f"expected a mapping with keys {', '.join(_TOP_KEYS)}, got {_kind(raw)}")
        for key in raw:
            if key not in _TOP_KEYS:
                self.fail(_join("", key), f"unknown key (expected one of: {', '.join(_TOP_KEYS)})")
        collector = self.dataclass(CollectorConfig, raw.get("collector") or {}, "collector")
        for key in collector.tags:
            problem = health.tag_key_problem(key)
            if problem:
                self.fail(_join("collector.tags", key), f"invalid tag key: {problem}")
        self.check_duration(collector.interval, "collector.interval", INTERVAL)
        self.check_duration(collector.timeout, "collector.timeout", READ_TIMEOUT)
        self.check_duration(collector.health_interval, "collector.health_interval", HEALTH_INTERVAL)
        self.check_duration(collector.max_age, "collector.max_age", MAX_AGE)
        self.check_time_floor(collector.time_floor)
        self.check_count(collector.max_points, "collector.max_points", MAX_POINTS)
        if not collector.sysfs.strip():
            self.fail("collector.sysfs", "must be the folder sysfs is mounted at (default /sys), got an empty path")
        collector = dataclasses.replace(collector, outbox=str(self.base_dir / collector.outbox),
                                        sysfs=str(self.base_dir / collector.sysfs))
        influx = None
        if raw.get("influxdb") is not None:
            influx = self.influxdb(raw["influxdb"])
        sensors_raw = raw.get("sensors")
        if not self.sensors_required and sensors_raw in (None, []):
            sensors_raw = []
        elif sensors_raw is None:
            self.fail("sensors", "missing: configure at least one sensor")
        elif not isinstance(sensors_raw, list) or not sensors_raw:
            self.fail("sensors", f"expected a non-empty list of sensors, got {_kind(sensors_raw)}")
        sensors: list[SensorConfig] = []
        seen: dict[str, int] = {}
        for i, entry in enumerate(sensors_raw):
            sensor = self.sensor(entry, f"sensors[{i}]", collector)
            if sensor.name in seen:
                self.fail(f"sensors[{i}].name",
                          f"duplicate sensor name {sensor.name!r} (also sensors[{seen[sensor.name]}])")
            seen[sensor.name] = i
            sensors.append(sensor)
        mqtt = self.mqtt(raw["mqtt"]) if raw.get("mqtt") is not None else None
        for i, sensor in enumerate(sensors):
            if sensor.type == "mqtt" and mqtt is None:
                self.fail(f"sensors[{i}].type", "mqtt sensors need a top-level mqtt: section (host, port, ...)")
        host = collector.tags.get("host") or os.uname().nodename  # gethostname(2) is uname's nodename; no socket module
        problem = host and text_problem(host, "tag value")  # an empty hostname: points go without a host tag
        if problem:
            self.fail("collector.tags.host", f"this machine's hostname {host!r} cannot be the host tag: it {problem}; "
                                             "set collector.tags.host")
        return Config(self.file, collector, tuple(sensors), influx, host, mqtt)

    def mqtt(self, raw: Any) -> MqttConfig:
        mqtt = self.dataclass(MqttConfig, raw, "mqtt")
        if not mqtt.host.strip():
            self.fail("mqtt.host", "must name the broker (a host name or address)")
        if not 0 < mqtt.port < 65536:
            self.fail("mqtt.port", f"expected a TCP port number (1 to 65535), got {mqtt.port}")
        self.check_duration(mqtt.keepalive, "mqtt.keepalive", KEEPALIVE)
        if mqtt.keepalive != int(mqtt.keepalive):
            self.fail("mqtt.keepalive",
                      f"must be whole seconds (MQTT sends an integer), got {format_duration(mqtt.keepalive)}")
        if mqtt.password and mqtt.password_file:
            self.fail("mqtt.password_file", "set either password or password_file, not both")
        files = {"password_file": mqtt.password_file, "ca_file": mqtt.ca_file}
        for key, name in files.items():
            if name:
                files[key] = self.readable_file(f"mqtt.{key}", name, text=key == "password_file")
        return dataclasses.replace(mqtt, password=Secret(mqtt.password), **files)

    def influxdb(self, raw: Any) -> InfluxConfig:
        if isinstance(raw, dict) and raw.get("retention") == "":  # `${INFLUX_RETENTION:-}` left unset: not managed
            raw = {k: v for k, v in raw.items() if k != "retention"}
        influx = self.dataclass(InfluxConfig, raw, "influxdb")
        url, user, password = _url_credentials(influx.url)
        if not re.match(r"^https?://[^/\s]+", url):
            self.fail("influxdb.url", f"expected an http:// or https:// URL, got {_redacted_url(influx.url)!r}")
        if "?" in url or "#" in url:  # InfluxDB 1.x reads u= and p= there: a password that every message would show
            self.fail("influxdb.url", f"no query or fragment after the address, got {_redacted_url(influx.url)!r}: "
                      "credentials go in user:password@ (api v1) or influxdb.token")
        if "@" in url:
            self.fail("influxdb.url", f"an @ after the host in {_redacted_url(influx.url)!r}: in a password, write "
                      "/ ? # @ as %2F %3F %23 %40")
        try:
            port = urllib.parse.urlsplit(url).port  # raises on a port that is out of range or not a number
        except ValueError:
            port = 0
        if port == 0:
            self.fail("influxdb.url",
                      f"expected a port number from 1 to 65535 after the host, got {_redacted_url(influx.url)!r}")
        if user is not None:
            if influx.api != "v1":
                self.fail("influxdb.url", f"a user name or password in the URL is for api v1; api {influx.api} "
                          "authenticates with an API token: remove it from the URL and set influxdb.token or "
                          "token_file")
            if influx.token or influx.token_file:
                self.fail("influxdb.url", "credentials both in the URL and in influxdb.token/token_file: keep one")
            influx = dataclasses.replace(influx, url=url, token=f"{user}:{password}")
        if influx.api == "v2" and not influx.org:
            self.fail("influxdb.org", "required with api: v2")
        if not influx.bucket:
            self.fail("influxdb.bucket", "must not be empty")
        if influx.api == "v3" and not _V3_DATABASE.fullmatch(influx.bucket):
            self.fail("influxdb.bucket", f"{influx.bucket!r} is no InfluxDB 3 database name: at most 511 ASCII "
                      "letters, digits, _ and -, starting with a letter or digit")
        if influx.retention is not None:
            self.check_duration(influx.retention, "influxdb.retention", RETENTION)
        self.check_duration(influx.timeout, "influxdb.timeout", HTTP_TIMEOUT)
        self.check_count(influx.batch_size, "influxdb.batch_size", MAX_BATCH)
        if influx.token_file == "":  # `${INFLUX_TOKEN_FILE:-}` left unset
            influx = dataclasses.replace(influx, token_file=None)
        if influx.token and influx.token_file:
            self.fail("influxdb.token_file", "set either token or token_file, not both")
        if influx.token_file:
            token_file = self.readable_file("influxdb.token_file", influx.token_file)
            influx = dataclasses.replace(influx, token_file=token_file)
        influx = dataclasses.replace(influx, url=url.rstrip("/"), token=Secret(influx.token))
        if influx.api != "v1":  # v1 sends user:password as UTF-8, base64-encoded (influx/v1.py)
            key = "influxdb.token_file" if influx.token_file else "influxdb.token"
            self.check_header_text(influx.credentials(), key)
            if influx.api == "v3" and any(c.isspace() for c in influx.credentials()):
                # InfluxDB 3 splits `Bearer <token>` at spaces and refuses a third part
                # (influxdata/influxdb@v3.10.1:influxdb3_server/src/http.rs validate_auth_header)
                self.fail(key, "holds a space or another blank, which InfluxDB 3 cannot read in a token")
        return influx

    def check_header_text(self, secret: str, path: str) -> None:
        """An api v2 or v3 token travels as it is in an HTTP header, which holds Latin-1 only (http.client encodes it
        so)."""
        try:
            secret.encode("latin-1")
        except UnicodeEncodeError:  # not shown: the message must not tell any part of the secret
            self.fail(path, "holds a character no HTTP header can carry (beyond Latin-1): check for a pasted quote "
                      "mark or a typo")

    def sensor(self, raw: Any, path: str, collector: CollectorConfig) -> SensorConfig:
        if not isinstance(raw, dict):
            self.fail(path, f"expected a mapping, got {_kind(raw)}")
        type_name = raw.get("type")
        if type_name is None:
            self.fail(f"{path}.type", f"missing (one of: {', '.join(sorted(SENSOR_TYPES))})")
        if not isinstance(type_name, str) or type_name not in SENSOR_TYPES:
            self.fail(f"{path}.type", f"unknown sensor type {type_name!r} (one of: {', '.join(sorted(SENSOR_TYPES))})")
        sensor_type = SENSOR_TYPES[type_name]
        common_keys = {f.name for f in dataclasses.fields(_SensorCommon)} | {CALIBRATE}
        common = self.dataclass(_SensorCommon, {k: v for k, v in raw.items() if k in common_keys - {CALIBRATE}}, path)
        problem = sensor_name_problem(common.name)
        if problem:
            self.fail(f"{path}.name",
                      f"invalid sensor name {_short(common.name)}: it {problem} "
                      "(a name becomes the sensor tag and goes into queries)")
        under_sysfs = sysfs_paths(sensor_type.settings, collector.sysfs)  # the type's paths under sysfs, unless set
        own = {**under_sysfs, **{k: v for k, v in raw.items() if k not in common_keys}}
        for key in under_sysfs.keys() & raw.keys():  # an override of the sysfs root: relative to the config, as it
            if isinstance(raw[key], str) and raw[key]:
                own[key] = str(self.base_dir / raw[key])
        settings = self.dataclass(sensor_type.settings, own, path, extra_known=common_keys)
        interval = collector.interval if common.interval is None else common.interval
        timeout = collector.timeout if common.timeout is None else common.timeout
        self.check_duration(interval, f"{path}.interval", INTERVAL)
        self.check_duration(timeout, f"{path}.timeout", READ_TIMEOUT)
        low = sensor_type.valid_range[0] if common.valid_min is None else common.valid_min
        high = sensor_type.valid_range[1] if common.valid_max is None else common.valid_max
        if low >= high:
            self.fail(f"{path}.valid_max", f"must be above valid_min ({low})")
        if common.min is not None and common.max is not None and common.min >= common.max:
            self.fail(f"{path}.max", f"must be above min ({common.min})")
        for key in ("humidity_min", "humidity_max"):
            value = getattr(common, key)
            if value is not None and not 0 <= value <= 100:
                self.fail(f"{path}.{key}",
                          f"must be a relative humidity from 0 to 100 %RH, got {value!r}")
        if (common.humidity_min is not None and common.humidity_max is not None
                and common.humidity_min >= common.humidity_max):
            self.fail(f"{path}.humidity_max", f"must be above humidity_min ({common.humidity_min:g})")
        if abs(common.humidity_offset) > LARGEST_HUMIDITY_OFFSET:
            self.fail(f"{path}.humidity_offset", f"must be within ±{LARGEST_HUMIDITY_OFFSET:g} %RH, "
                      f"got {common.humidity_offset!r}")
        return SensorConfig(common.name, common.type, interval, timeout, common.tags,
                            common.min, common.max, low, high, settings,
                            humidity_min=common.humidity_min, humidity_max=common.humidity_max,
                            calibration=self.calibration(raw.get(CALIBRATE), f"{path}.{CALIBRATE}"),
                            humidity_offset=common.humidity_offset,
                            measures_humidity=bool(getattr(settings, "measures_humidity", False)))

    def calibration(self, raw: Any, path: str) -> Calibration:
        """`{offset: X}` (°C added), or `{points: [[measured, true], [measured, true]]}`: the line through both."""
        if raw is None:
            return Calibration()
        shape = "{offset: X} or {points: [[measured, true], [measured, true]]}"
        if not isinstance(raw, dict):
            self.fail(path, f"expected {shape}, got {_kind(raw)}")
        for key in raw:
            if key not in ("offset", "points"):
                self.fail(_join(path, str(key)), "unknown key (expected one of: offset, points)")
        if len(raw) != 1:
            self.fail(path, f"give one of offset and points: {shape}")
        if "offset" in raw:
            offset = self.convert(float, raw["offset"], f"{path}.offset")
            if abs(offset) > LARGEST_OFFSET_C:
                self.fail(f"{path}.offset", f"must be within ±{LARGEST_OFFSET_C:g} °C, got {offset!r} "
                          "(more is no calibration: check the sensor's type or scale)")
            return Calibration(offset=offset)
        points = raw["points"]
        if not isinstance(points, list) or len(points) != 2:
            self.fail(f"{path}.points", f"expected two [measured, true] pairs, got {_kind(points)}")
        pairs = []
        for i, pair in enumerate(points):
            if not isinstance(pair, list) or len(pair) != 2:
                self.fail(f"{path}.points[{i}]", f"expected [measured, true], got {_kind(pair)}")
            pairs.append(tuple(self.convert(float, v, f"{path}.points[{i}][{j}]") for j, v in enumerate(pair)))
        (measured_1, true_1), (measured_2, true_2) = pairs
        if measured_1 == measured_2:
            self.fail(f"{path}.points", f"the two measured values must differ (both {measured_1:g} °C)")
        scale = (true_2 - true_1) / (measured_2 - measured_1)
        if not math.isfinite(scale):
            self.fail(f"{path}.points", "are too far apart to give a line: the points are wrong")
        if not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]:
            self.fail(f"{path}.points", f"give a scale of {scale!r}, outside "
                      f"{SCALE_RANGE[0]:g}…{SCALE_RANGE[1]:g}: the points, or the sensor's own scale, are wrong")
        offset = true_1 - scale * measured_1
        if abs(offset) > LARGEST_OFFSET_C:
            self.fail(f"{path}.points", f"give an offset of {offset!r} °C, more than "
                      f"±{LARGEST_OFFSET_C:g} °C: the points, or the sensor's own scale, are wrong")
        return Calibration(scale, offset)

    def readable_file(self, path: str, name: str, text: bool = True) -> str:
        """`name` resolved against the config's folder, once it proved readable (and UTF-8 text, if `text`)."""
        resolved = str(self.base_dir / name)
        shown = resolved if resolved.isprintable() else repr(resolved)  # a newline in it would split the message
        try:
            mode = os.stat(resolved).st_mode
            if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):  # opening one waits for a writer: every command would hang
                self.fail(path, f"{shown} is a pipe or socket, not a file")
            data = read_small_file(resolved)
        except OSError as exc:
            self.fail(path, f"cannot read {shown}: {exc.strerror or exc}")
        if text:
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                self.fail(path, f"{shown} is not UTF-8 text")
        return resolved

    def check_duration(self, seconds: float, path: str, bounds: DurationBounds) -> None:
        if seconds == 0 and bounds.zero or bounds.shortest <= seconds <= bounds.longest:
            return
        allowed = f"between {format_duration(bounds.shortest)} and {format_duration(bounds.longest)}"
        if bounds.zero:
            allowed = f"0 ({bounds.zero}) or {allowed}"
        self.fail(path, f"must be {allowed}, got {format_duration(seconds)}")

    def check_count(self, count: int, path: str, most: int) -> None:
        if not 1 <= count <= most:
            self.fail(path, f"must be between 1 and {most:,}, got {count:,}")

    def check_time_floor(self, text: str) -> None:
        earliest, latest = TIME_FLOOR_RANGE
        try:
            floor_ns = parse_time_ns(text)
        except (ValueError, OverflowError):
            self.fail("collector.time_floor", f"expected a date such as 2026-01-01, got {text!r}")
        if not parse_time_ns(earliest) <= floor_ns < parse_time_ns(latest):
            self.fail("collector.time_floor", f"must be from {earliest} to before {latest}, got {text!r} "
                                              "(nothing is read before it)")

    def dataclass(self, cls: type, raw: Any, path: str, extra_known: AbstractSet[str] = frozenset()) -> Any:
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
                problem = tag_key_problem(key)
                if problem:
                    self.fail(_join(path, key), f"invalid tag key: {problem}")
                problem = text_problem(item, "tag value")
                if problem:
                    self.fail(_join(path, key), f"invalid tag value {_short(item)}: it {problem}")
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
                self.fail(path, f"expected a number, got {_kind(value)}{_as_number(value)}")
            if not math.isfinite(value):
                self.fail(path, f"expected a finite number, got {value}")
            return float(value)
        if hint in (str, Secret):
            if isinstance(value, (date, datetime)):  # YAML reads 2026-01-01 as a date
                return value.isoformat()
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                self.fail(path, "expected text" if hint is Secret else f"expected text, got {_kind(value)}")
            text = str(value)
            if "\0" in text or any("\ud800" <= c <= "\udfff" for c in text):  # no file name or HTTP header holds these
                self.fail(path, "must not contain a NUL character or a lone surrogate (text that is not Unicode)")
            return text
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


class _FromEnvironment(str):
    """Text produced by interpolation; numeric and boolean keys accept it as YAML would ("8086", "true")."""

    def as_yaml_scalar(self) -> Any:
        try:
            return _load_yaml(self) if self.strip() else self
        except _Refused:
            return self


def _join(path: str, key: Any) -> str:
    text = str(key)
    if not text or not text.isprintable() or text.strip() != text:  # a key path stays on one visible line
        text = repr(text)
    return f"{path}.{text}" if path else text


def _as_number(value: Any) -> str:
    """For text that reads as a finite number (PyYAML, a YAML 1.1 parser, takes `1e-3` for text; so does a quoted
    "21"), how to write it so it is one."""
    if not isinstance(value, str):
        return ""
    try:
        number = float(value)
    except ValueError:
        return ""
    return f": YAML took it for text; write {number!r}" if math.isfinite(number) else ""


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, (dict, list)):
        return f"a {'mapping' if isinstance(value, dict) else 'list'}"
    return f"{type(value).__name__} {value!r}"
