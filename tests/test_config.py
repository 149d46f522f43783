import json
import os

import pytest

from cli import ROOT, templog
from collector.config import ConfigError, Secret, load_config
from collector.durations import format_duration, parse_duration

MINIMAL = """
sensors:
  - name: desk
    type: simulated
"""


def error_of(write_config, text, environ=None):
    with pytest.raises(ConfigError) as info:
        load_config(write_config(text), environ=environ or {})
    return info.value


def test_the_shipped_config_is_valid():
    config = load_config(ROOT / "config.yaml", environ={})
    influx = config.influxdb
    assert influx is not None, "config.yaml has an influxdb section"
    assert influx.url == "http://localhost:8086"
    assert influx.api == "v2" and influx.org == "home" and influx.bucket == "temperature"
    assert influx.retention == 30 * 86400
    assert [s.name for s in config.sensors] == ["living-room", "greenhouse"]
    assert config.sensors[0].interval == 10 and config.sensors[1].interval == 30
    assert config.sensors[0].min == 16 and config.sensors[0].max == 28


def test_defaults_fill_what_is_left_out(write_config):
    config = load_config(write_config(MINIMAL), environ={})
    assert config.influxdb is None
    sensor = config.sensors[0]
    assert (sensor.interval, sensor.timeout) == (10.0, 5.0)
    assert (sensor.valid_min, sensor.valid_max) == (-60.0, 150.0)
    assert config.collector.outbox.endswith("data/outbox.sqlite")


SYSFS_SENSORS = """
sensors:
  - {name: zone, type: thermal_zone, zone: 2}
  - {name: chip, type: hwmon, chip: coretemp, input: temp1}
  - {name: probe, type: ds18b20, device: 28-0316a2795aff}
  - {name: file, type: thermal_zone, path: /elsewhere/temp}
"""


def sysfs_paths_of(config) -> list[str]:
    zone, chip, probe, file = (s.settings for s in config.sensors)
    return [zone.temp_path, chip.root, probe.w1_dir, file.temp_path]


def test_every_sysfs_sensor_looks_under_collector_sysfs_unless_it_names_its_own_path(write_config, tmp_path):
    """One root for all (issue 11 item 4): /sys by default; `collector.sysfs` moves it, relative to the config's folder
    as the outbox is; a sensor's own `root`/`w1_dir`/`path` stays as given."""
    default = load_config(write_config(SYSFS_SENSORS), environ={})
    assert default.collector.sysfs == "/sys"
    assert sysfs_paths_of(default) == ["/sys/class/thermal/thermal_zone2/temp", "/sys/class/hwmon",
                                       "/sys/bus/w1/devices", "/elsewhere/temp"]
    moved = load_config(write_config("collector: {sysfs: host/sys}\n" + SYSFS_SENSORS), environ={})
    host = tmp_path.resolve() / "host/sys"
    assert moved.collector.sysfs == str(host)
    assert sysfs_paths_of(moved) == [f"{host}/class/thermal/thermal_zone2/temp", f"{host}/class/hwmon",
                                     f"{host}/bus/w1/devices", "/elsewhere/temp"]
    own = SYSFS_SENSORS.replace("zone: 2}", "zone: 2, root: /t}").replace("temp1}", "temp1, root: /h}")
    own = own.replace("5aff}", "5aff, w1_dir: /w}")
    overridden = load_config(write_config("collector: {sysfs: /host/sys}\n" + own), environ={})
    assert sysfs_paths_of(overridden) == ["/t/thermal_zone2/temp", "/h", "/w", "/elsewhere/temp"]


@pytest.mark.parametrize("text, path, words", [
    ("sensors:\n  - name: a\n    type: simulated\n    intervall: 5s\n", "sensors[0].intervall", "unknown key"),
    ("collector:\n  interval: 5x\nsensors:\n  - {name: a, type: simulated}\n",
     "collector.interval", "invalid duration"),
    ("sensors:\n  - {name: a, type: simulated}\n  - {name: b, type: simulated, interval: 10}\n",
     "sensors[1].interval", "duration"),
    ("sensors:\n  - {name: a, type: simulated}\n  - {name: a, type: simulated}\n",
     "sensors[1].name", "duplicate sensor name 'a'"),
    ("sensors:\n  - {name: a, type: ds99}\n", "sensors[0].type", "unknown sensor type 'ds99'"),
    ("sensors:\n  - {name: a, type: simulated, base: warm}\n", "sensors[0].base", "expected a number"),
    ("sensors:\n  - {name: a, type: simulated, tags: [x]}\n", "sensors[0].tags", "expected a mapping"),
    ("sensors:\n  - {name: a, type: file}\n", "sensors[0].path", "missing required key"),
    ("sensors:\n  - {name: a, type: command, command: x, pattern: 'no group'}\n",
     "sensors[0].pattern", "exactly one group"),
    ("sensors:\n  - {name: a, type: thermal_zone}\n", "sensors[0].zone", "either zone"),
    ("sensors:\n  - {name: a, type: simulated, min: 30, max: 20}\n", "sensors[0].max", "above min"),
    ("influxdb: {api: v4}\nsensors:\n  - {name: a, type: simulated}\n", "influxdb.api", "one of v1, v2, v3"),
    ("influxdb: {api: v2, org: ''}\nsensors:\n  - {name: a, type: simulated}\n", "influxdb.org", "required"),
    ("influxdb: {retention: 5m, org: o}\nsensors:\n  - {name: a, type: simulated}\n", "influxdb.retention",
     "must be 0 (keep forever) or between 1h and 36500d, got 5m"),
    ("influxdb: {url: localhost:8086, org: o}\nsensors:\n  - {name: a, type: simulated}\n", "influxdb.url", "http://"),
    ("sensorz: []\n", "sensorz", "unknown key"),
    ("sensors:\n  - {name: a, type: [simulated]}\n", "sensors[0].type", "unknown sensor type"),
    ("collector: {tags: {room: 'C:\\'}}\nsensors:\n  - {name: a, type: simulated}\n",
     "collector.tags.room", "must not contain a backslash"),
    ("sensors:\n  - {name: a, type: simulated}\nsensors:\n  - {name: b, type: simulated}\n",
     "line 3", "duplicate key 'sensors'"),
    ("sensors: []\n", "sensors", "non-empty list"),
    ("collector:\n  timeout: 0\nsensors:\n  - {name: a, type: simulated}\n",
     "collector.timeout", "between 10ms and 10m, got 0"),
    ("collector:\n  time_floor: soon\nsensors:\n  - {name: a, type: simulated}\n",
     "collector.time_floor", "expected a date"),
    ("collector: {sysfs: ''}\nsensors:\n  - {name: a, type: simulated}\n", "collector.sysfs",
     "must be the folder sysfs is mounted at (default /sys), got an empty path"),
    ("collector: {sysfs: '  '}\nsensors:\n  - {name: a, type: simulated}\n", "collector.sysfs", "an empty path"),
    ("collector: {sysfs: ~}\nsensors:\n  - {name: a, type: simulated}\n", "collector.sysfs", "expected text"),
    ("collector: {sysfs: [/sys]}\nsensors:\n  - {name: a, type: simulated}\n", "collector.sysfs", "expected text"),
])
def test_each_invalid_input_names_its_key_path(write_config, text, path, words):
    error = error_of(write_config, text)
    assert error.path == path
    assert words in error.problem
    assert str(error).startswith(f"{error.file}: {path}: ")


def test_missing_file_and_yaml_syntax_error_name_the_file(tmp_path, write_config):
    with pytest.raises(ConfigError, match=r"nope\.yaml: file not found"):
        load_config(tmp_path / "nope.yaml", environ={})
    error = error_of(write_config, "sensors:\n  - name: a\n   type: [simulated\n")
    assert error.path.startswith("line ") and "YAML syntax error" in error.problem


def test_unreadable_token_file_is_a_config_error(write_config):
    error = error_of(write_config, "influxdb: {org: o, token_file: missing-token}\n" + MINIMAL)
    assert error.path == "influxdb.token_file" and "cannot read" in error.problem


def test_a_token_file_that_is_a_pipe_is_refused_not_waited_for(write_config, tmp_path):
    """Opening a FIFO waits for a writer: every command would hang at start, with no word of why."""
    os.mkfifo(tmp_path / "token-pipe")
    error = error_of(write_config, "influxdb: {org: o, token_file: token-pipe}\n" + MINIMAL)
    assert error.path == "influxdb.token_file" and "is a pipe or socket, not a file" in error.problem


@pytest.mark.parametrize("where", ["token", "token_file"])
def test_a_token_no_http_header_can_carry_is_a_config_error_that_shows_none_of_it(write_config, tmp_path, where):
    """http.client encodes header values as Latin-1: on main a token with a "€" failed each write with an unexpected
    UnicodeEncodeError (exit 1) instead of naming the key (exit 2)."""
    (tmp_path / "token").write_text("s3cr€t-token\n")
    value = "token_file: token" if where == "token_file" else "token: s3cr€t-token"
    error = error_of(write_config, f"influxdb: {{org: o, {value}}}\n" + MINIMAL)
    assert error.path == f"influxdb.{where}" and "no HTTP header can carry" in error.problem
    assert "s3cr" not in str(error) and "€" not in str(error)


def test_an_empty_token_file_means_none(write_config):
    config = load_config(write_config("influxdb: {org: o, token: abc, token_file: '${TOKEN_FILE:-}'}\n" + MINIMAL),
                         environ={})
    influx = config.influxdb
    assert influx is not None, "the config has an influxdb section"
    assert influx.token_file is None and influx.credentials() == "abc"


def test_token_file_is_read_at_each_use(write_config, tmp_path):
    (tmp_path / "token").write_text("first\n")
    influx = load_config(write_config("influxdb: {org: o, token_file: token}\n" + MINIMAL), environ={}).influxdb
    assert influx is not None, "the config has an influxdb section"
    assert influx.credentials() == "first"
    (tmp_path / "token").write_text("second\n")
    assert influx.credentials() == "second"


def test_interpolation_with_defaults_and_types(write_config):
    text = """
influxdb:
  url: ${URL:-http://db:8086}
  org: ${ORG}
  token: ${TOKEN:-}
  batch_size: ${BATCH:-100}
  retention: ${RETENTION:-2h}
collector:
  tags: {site: "${SITE:-home}-${FLOOR:-1}"}
""" + MINIMAL
    config = load_config(write_config(text), environ={"ORG": "acme", "BATCH": "250", "TOKEN": "0123", "URL": ""})
    influx = config.influxdb
    assert influx is not None, "the config has an influxdb section"
    assert influx.url == "http://db:8086"  # as in the shell, an empty value takes the default too
    assert influx.org == "acme"
    assert influx.token == "0123"  # text stays text: no octal or int surprise
    assert influx.batch_size == 250
    assert influx.retention == 7200
    assert config.collector.tags == {"site": "home-1"}


def test_unset_variable_without_default_names_the_key(write_config):
    error = error_of(write_config, "influxdb: {org: '${ORG}'}\n" + MINIMAL)
    assert error.path == "influxdb.org" and "ORG is not set" in error.problem


def test_secret_never_shows_in_repr(write_config):
    config = load_config(write_config("influxdb: {org: o, token: s3cr3t-token}\n" + MINIMAL), environ={})
    assert config.influxdb is not None, "the config has an influxdb section"
    assert config.influxdb.token == "s3cr3t-token"
    assert "s3cr3t" not in repr(config) and "s3cr3t" not in repr(Secret("s3cr3t"))


@pytest.mark.parametrize("text, seconds", [
    ("500ms", 0.5), ("10s", 10), ("5m", 300), ("2h", 7200), ("30d", 2592000), ("1h30m", 5400), ("0", 0), ("1.5s", 1.5),
])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "5x", "s", "1h 30m", "-5s", "10s5"])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_format_duration_round_trips():
    for seconds in (0.5, 10, 300, 7200, 2592000, 5400):
        assert parse_duration(format_duration(seconds)) == seconds


def test_cli_reports_config_errors_in_one_line_with_exit_2(write_config):
    path = write_config("sensors:\n  - {name: a, type: simulated, interval: soon}\n")
    done = templog("read", "-c", str(path))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert f"{path}: sensors[0].interval: invalid duration 'soon'" in done.stderr
    assert "Traceback" not in done.stderr


SENSOR = "sensors:\n  - {name: a, type: simulated}\n"
BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 10)}]\n"
    for a, b in zip("abcdefgh", "bcdefghi", strict=True)) + SENSOR  # 10^9 strings


@pytest.mark.parametrize("text, path, words", [
    # every duration key has bounds that the scheduler, the outbox, InfluxDB and MQTT can live with
    ("collector: {interval: 50ms}\n" + SENSOR, "collector.interval", "between 100ms and 1d, got 50ms"),
    ("sensors:\n  - {name: a, type: simulated, interval: 2d}\n", "sensors[0].interval", "between 100ms and 1d"),
    ("sensors:\n  - {name: a, type: simulated, timeout: 5ms}\n", "sensors[0].timeout", "between 10ms and 10m"),
    ("collector: {health_interval: 500ms}\n" + SENSOR, "collector.health_interval", "between 1s and 1d"),
    ("collector: {max_age: 10s}\n" + SENSOR, "collector.max_age", "0 (no age limit) or between 1m and 36500d"),
    ("influxdb: {org: o, timeout: 20m}\n" + SENSOR, "influxdb.timeout", "between 100ms and 10m"),
    ("influxdb: {org: o, retention: 40000d}\n" + SENSOR, "influxdb.retention", "longer than 36500d"),
    ("mqtt: {keepalive: 1d}\n" + SENSOR, "mqtt.keepalive", "between 5s and 65535s"),
    ("mqtt: {keepalive: 7500ms}\n" + SENSOR, "mqtt.keepalive", "whole seconds"),
    # numbers: finite, in range, 64 bits
    ("sensors:\n  - {name: a, type: simulated, valid_min: .nan}\n", "sensors[0].valid_min", "finite number, got nan"),
    ("sensors:\n  - {name: a, type: simulated, max: -.inf}\n", "sensors[0].max", "finite number, got -inf"),
    ("sensors:\n  - {name: a, type: file, path: x, scale: .NaN}\n", "sensors[0].scale", "finite number"),
    ("mqtt: {port: 65536}\n" + SENSOR, "mqtt.port", "1 to 65535"),
    ("mqtt: {port: 0}\n" + SENSOR, "mqtt.port", "1 to 65535"),
    ("influxdb: {url: 'http://localhost:99999', org: o}\n" + SENSOR, "influxdb.url", "port number from 1 to 65535"),
    ("influxdb: {url: 'http://u:pw@localhost:0', api: v1}\n" + SENSOR, "influxdb.url", "'http://u:***@localhost:0'"),
    # an @ past the host: not a host to write to silently, and a password with an unencoded / is not shown
    ("influxdb: {url: 'http://h:8086/x/a@b', api: v1}\n" + SENSOR, "influxdb.url", "an @ after the host"),
    ("influxdb: {url: 'http://u:pa/ss@h:8086', api: v1}\n" + SENSOR, "influxdb.url", "'http://***@h:8086'"),
    ("influxdb: {url: 'http://h:8086?u=admin&p=s3cret', api: v1}\n" + SENSOR, "influxdb.url", "no query or fragment"),
    ("mqtt: {host: '${MQTT_HOST:-}'}\n" + SENSOR, "mqtt.host", "must name the broker"),
    ("collector: {max_points: 1000000000000}\n" + SENSOR, "collector.max_points", "between 1 and 1,000,000,000"),
    ("influxdb: {org: o, batch_size: 10000000}\n" + SENSOR, "influxdb.batch_size", "between 1 and 100,000"),
    ("collector: {max_points: 99999999999999999999999}\n" + SENSOR, "line 1", "does not fit in 64 bits"),
    ("collector: {max_points: " + "9" * 5000 + "}\n" + SENSOR, "line 1", "does not fit in 64 bits"),
    # tags and names: what the line protocol carries to InfluxDB unchanged
    ("collector: {tags: {time: x}}\n" + SENSOR, "collector.tags.time", "InfluxDB refuses 'time'"),
    ("collector: {tags: {_field: x}}\n" + SENSOR, "collector.tags._field", "reserved by InfluxDB"),
    ("collector: {tags: {celsius: x}}\n" + SENSOR, "collector.tags.celsius", "the field's name"),
    # collector tags go on the health points too: InfluxDB 3 refuses a tag named as a field of its table
    # (influxdata/influxdb@v3.9.6:influxdb3_write/src/write_buffer/validator.rs column_or_create: InvalidColumnType)
    ("collector: {tags: {uptime_s: x}}\n" + SENSOR, "collector.tags.uptime_s", "have a field 'uptime_s'"),
    ("collector: {tags: {write_failures_network: x}}\n" + SENSOR, "collector.tags.write_failures_network",
     "InfluxDB 3 refuses"),
    # columns influxdb/tasks/downsample.flux makes beside the tags: a tag of that name breaks it (flux@v0.196.1:
    # stdlib/universe/reduce.go computeGroupKey puts the reducer's value in the tag's group-key column; to() takes
    # no tag that its fieldFn reads, so the long-term series would lack it and its count never match)
    ("collector: {tags: {count: x}}\n" + SENSOR, "collector.tags.count", "the downsampling task"),
    ("sensors:\n  - {name: a, type: simulated, tags: {max: b}}\n", "sensors[0].tags.max", "the downsampling task"),
    ("collector: {tags: {stored: x}}\n" + SENSOR, "collector.tags.stored", "the downsampling task"),
    # the long-term fields of both downsamplers (downsample.flux, influxdb3/plugins/templog_downsample.py): InfluxDB 3
    # refuses a long-term point with a tag and a field of one name (influxdata/influxdb@v3.10.1:influxdb3_write/src/
    # write_buffer/validator.rs column_or_create: InvalidColumnType)
    ("collector: {tags: {humidity_count: x}}\n" + SENSOR, "collector.tags.humidity_count", "long-term field"),
    ("sensors:\n  - {name: a, type: simulated, tags: {dewpoint_mean: b}}\n", "sensors[0].tags.dewpoint_mean",
     "long-term field"),
    ("sensors:\n  - {name: a, type: simulated, tags: {sensor: b}}\n", "sensors[0].tags.sensor", "sensor name"),
    ('collector: {tags: {room: "a\\tb"}}\n' + SENSOR, "collector.tags.room", "control character (U+0009)"),
    ('collector: {tags: {room: "a\\u2028b"}}\n' + SENSOR, "collector.tags.room", "line separator"),
    ("collector: {tags: {room: " + "x" * 300 + "}}\n" + SENSOR, "collector.tags.room", "longer than 256"),
    ('sensors:\n  - {name: "a\\rb", type: simulated}\n', "sensors[0].name", "control character (U+000D)"),
    ('sensors:\n  - {name: "a\\ud800", type: simulated}\n', "sensors[0].name", "lone surrogate"),
    ('collector: {outbox: "data/\\0x"}\n' + SENSOR, "collector.outbox", "NUL"),
    ("mqtt: {password_file: /dev/zero}\n" + SENSOR, "mqtt.password_file",
     "cannot read /dev/zero: larger than 1024 KiB"),
    ("mqtt: {tls: true, ca_file: /dev/zero}\n" + SENSOR, "mqtt.ca_file", "larger than 1024 KiB"),
    # dates
    ("collector: {time_floor: 2226-01-01}\n" + SENSOR, "collector.time_floor", "before 2100-01-01"),
    ("collector: {time_floor: 2026-02-30}\n" + SENSOR, "line 1", "day is out of range for month"),
    # the shape of the file
    (BILLION_LAUGHS, "line 5", "more than 100000 values once aliases are expanded"),
    ("a: &a [1, *a]\n" + SENSOR, "line 1", "an alias refers to a value that contains it"),
    ("a: " + "[" * 10_000 + "]" * 10_000 + "\n" + SENSOR, "line 1", "nested deeper than 32 levels"),
    ("? [a, b]\n: c\n" + SENSOR, "line 1, column 3", "found unhashable key"),
    ("collector: {tags: {[a]: b}}\n" + SENSOR, "line 1, column 20", "found unhashable key"),
    ('"a\\nb": 1\n' + SENSOR, "'a\\nb'", "unknown key"),
    ("- sensors\n", "", "expected a mapping"),
    ("42\n", "", "expected a mapping"),
    ("sensors:\n  - {name: a, type: simulated}\n  - \x00\n", "line 3", "U+0000 is not allowed"),
])
def test_absurd_values_are_refused_at_load_naming_the_key(write_config, text, path, words):
    error = error_of(write_config, text)
    assert (error.path, words in error.problem) == (path, True), error.problem
    assert "\n" not in str(error)


def test_yaml_merge_keys_and_aliases_within_bounds_still_work(write_config):
    config = load_config(write_config("""
sensors:
  - &room {name: a, type: simulated, tags: &tags {site: home}}
  - {<<: *room, name: b, tags: *tags, interval: 100ms}
"""), environ={})
    assert [(s.name, s.tags, s.interval) for s in config.sensors] == [("a", {"site": "home"}, 10),
                                                                      ("b", {"site": "home"}, 0.1)]


def test_files_that_are_no_config_name_the_file(tmp_path):
    def problem(path):
        with pytest.raises(ConfigError) as info:
            load_config(path, environ={})
        assert info.value.file == str(path)
        return f"{info.value.path}: {info.value.problem}"

    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"sensors:\n  - {name: caf\xe9, type: simulated}\n")
    assert problem(latin1) == "line 2: not UTF-8 text (byte 0xe9); save the file as UTF-8"
    assert problem(tmp_path) == ": is a directory, not a config file"
    assert problem("/dev/zero") == ": cannot read file: larger than 1024 KiB"
    with_bom = tmp_path / "bom.yaml"
    with_bom.write_bytes(b"\xef\xbb\xbf" + SENSOR.encode())
    assert load_config(with_bom, environ={}).sensors[0].name == "a"


def test_the_machine_hostname_must_be_a_valid_tag(write_config, monkeypatch):
    monkeypatch.setattr("os.uname", lambda: os.uname_result(("Linux", "bad host\n", "6.1", "#1", "aarch64")))
    error = error_of(write_config, SENSOR)
    assert error.path == "collector.tags.host" and "set collector.tags.host" in error.problem
    assert load_config(write_config("collector: {tags: {host: pi}}\n" + SENSOR), environ={}).host == "pi"


@pytest.mark.parametrize("text, seconds", [
    ("1ms", 0.001), ("0s", 0), ("0.0h", 0), ("36500d", 36500 * 86400.0), ("1w1d", 8 * 86400), ("1.001s", 1.001),
])
def test_duration_bounds_of_the_parser(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text, words", [
    ("99999999999999999999d", "longer than 36500d"), ("9" * 400 + "d", "too long"),
    ("1000000w", "longer than 36500d"), ("0.0000000001s", "shorter than 1ms"), ("0.001ms", "shorter than 1ms"),
    ("1" * 100 + "s", "too long"), ("٣s", "invalid duration"),
])
def test_absurd_durations_are_a_value_error_saying_why(text, words):
    with pytest.raises(ValueError, match=words):
        parse_duration(text)


@pytest.mark.parametrize("duration", ["99999999999999999999d", "1000000w", "0.0000000001s", "0.001ms"])
def test_absurd_durations_fail_check_with_exit_2_instead_of_crashing_run(write_config, duration):
    path = write_config(f"collector: {{interval: {duration}}}\n" + SENSOR)
    done = templog("check", "-c", str(path))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(f"templog: {path}: collector.interval: duration '{duration}' is ")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_run_refuses_a_collector_tag_named_as_a_health_field_with_exit_2(write_config):
    """Before: accepted, and on InfluxDB 3 every health point was refused (HTTP 400: a tag and a field of one name,
    influxdata/influxdb@v3.9.6:influxdb3_write/src/write_buffer/validator.rs), on 1.x shown as `reads_ok_1`."""
    path = write_config("collector: {tags: {reads_ok: many}}\n" + SENSOR)
    done = templog("run", "-c", str(path))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(f"templog: {path}: collector.tags.reads_ok: invalid tag key: the collector's health "
                                  "points ('templog') have a field 'reads_ok'"), done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("content, env, where", [
    (b"sensors:\n  - {name: caf\xe9, type: simulated}\n", {}, "line 2: not UTF-8 text"),
    (b"sensors:\n  - {name: a, type: simulated, valid_min: .nan}\n", {}, "sensors[0].valid_min: expected a finite"),
    (b"mqtt: {port: '${MQTT_PORT}'}\n" + SENSOR.encode(), {"MQTT_PORT": "1883x"}, "mqtt.port: expected an integer"),
    (BILLION_LAUGHS.encode(), {}, "line 5: more than 100000 values"),
    (b"influxdb: {org: o, token_file: /dev/zero}\n" + SENSOR.encode(), {},
     "influxdb.token_file: cannot read /dev/zero"),
    (b"influxdb: {org: o, token_file: latin1}\n" + SENSOR.encode(), {}, "influxdb.token_file: "),
])
def test_hostile_configs_are_one_line_and_exit_2_from_the_cli(write_config, tmp_path, content, env, where):
    path = tmp_path / "hostile.yaml"
    path.write_bytes(content)
    (tmp_path / "latin1").write_bytes(b"caf\xe9\n")
    done = templog("read", "-c", str(path), env=env, timeout=20)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(f"templog: {path}: {where}")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


@pytest.mark.parametrize("args, words", [
    (["history", "--since", "9" * 400 + "d"], "history: --since: invalid duration '999"),
    (["history", "--every", "0.0000001s"], "history: --every: duration '0.0000001s' is shorter than 1ms"),
])
def test_command_line_durations_go_through_the_same_parser(write_config, args, words):
    done = templog(*args, "-c", str(write_config(SENSOR)))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"templog: {words}")


def test_quiet_and_verbose_together_is_a_usage_error(write_config):
    done = templog("-q", "read", "-v", "-c", str(write_config(SENSOR)))
    assert (done.returncode, done.stdout) == (2, "")
    assert "-q/--quiet and -v/--verbose contradict each other" in done.stderr


# Sensor names go into Flux and InfluxQL queries (alert rules, dashboards through Grafana's variables): refused is
# exactly what Flux or Grafana would misread (tests/test_flux.py shows each misread), allowed is the rest.

@pytest.mark.parametrize("name, words", [
    ('a$"b', 'must not contain $"'),
    ("a${b}", "must not contain ${"),
    ("dev.timeRangeStart", "'v.timeRangeStart' (Grafana replaces it"),
    ("my.bucket 2", "'y.bucket'"),
    ("every $__interval_ms", "'$__interval'"),
])
def test_a_sensor_name_that_breaks_queries_is_refused(write_config, name, words):
    path = write_config("sensors:\n  - {name: b, type: simulated}\n  - {name: '${SENSOR_NAME}', type: simulated}\n")
    with pytest.raises(ConfigError) as info:  # ${...} in the file itself would be expansion: the name comes from it
        load_config(path, environ={"SENSOR_NAME": name})
    assert info.value.path == "sensors[1].name" and info.value.problem.startswith("invalid sensor name ")
    assert words in info.value.problem


def test_a_sensor_name_that_breaks_queries_exits_2_with_one_line(write_config):
    path = write_config("sensors:\n  - {name: 'a$\"b', type: simulated}\n")
    done = templog("read", "-c", str(path))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (f"templog: {path}: sensors[0].name: invalid sensor name 'a$\"b': it must not contain $\" "
                           "(Flux would end the string there) (a name becomes the sensor tag and goes into queries)\n")


@pytest.mark.parametrize("name", ["Wohnzimmer (oben) 1/2", "温度 ä.ß", "cost $5 {x}", "ends in $", 'say "hi"',
                                  "a.b:c-d_e #%&*+|?'", "v. bucket", "x.Bucket", "$ {"])
def test_a_generous_sensor_name_is_accepted(write_config, name):
    config = load_config(write_config(f"sensors:\n  - {{name: {json.dumps(name)}, type: simulated}}\n"), environ={})
    assert config.sensors[0].name == name
