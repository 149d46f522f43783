import pytest

from collector.config import ConfigError, Secret, load_config
from collector.durations import format_duration, parse_duration
from cli import ROOT, templog

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
    assert config.influxdb.url == "http://localhost:8086"
    assert config.influxdb.api == "v2" and config.influxdb.org == "home" and config.influxdb.bucket == "temperature"
    assert config.influxdb.retention == 30 * 86400
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


@pytest.mark.parametrize("text, path, words", [
    ("sensors:\n  - name: a\n    type: simulated\n    intervall: 5s\n", "sensors[0].intervall", "unknown key"),
    ("collector:\n  interval: 5x\nsensors:\n  - {name: a, type: simulated}\n", "collector.interval", "invalid duration"),
    ("sensors:\n  - {name: a, type: simulated}\n  - {name: b, type: simulated, interval: 10}\n", "sensors[1].interval", "duration"),
    ("sensors:\n  - {name: a, type: simulated}\n  - {name: a, type: simulated}\n", "sensors[1].name", "duplicate sensor name 'a'"),
    ("sensors:\n  - {name: a, type: ds99}\n", "sensors[0].type", "unknown sensor type 'ds99'"),
    ("sensors:\n  - {name: a, type: simulated, base: warm}\n", "sensors[0].base", "expected a number"),
    ("sensors:\n  - {name: a, type: simulated, tags: [x]}\n", "sensors[0].tags", "expected a mapping"),
    ("sensors:\n  - {name: a, type: file}\n", "sensors[0].path", "missing required key"),
    ("sensors:\n  - {name: a, type: command, command: x, pattern: 'no group'}\n", "sensors[0].pattern", "exactly one group"),
    ("sensors:\n  - {name: a, type: thermal_zone}\n", "sensors[0].zone", "either zone"),
    ("sensors:\n  - {name: a, type: simulated, min: 30, max: 20}\n", "sensors[0].max", "above min"),
    ("influxdb: {api: v3}\nsensors:\n  - {name: a, type: simulated}\n", "influxdb.api", "one of v1, v2"),
    ("influxdb: {api: v2, org: ''}\nsensors:\n  - {name: a, type: simulated}\n", "influxdb.org", "required"),
    ("influxdb: {retention: 5m, org: o}\nsensors:\n  - {name: a, type: simulated}\n", "influxdb.retention", "at least 1h"),
    ("influxdb: {url: localhost:8086, org: o}\nsensors:\n  - {name: a, type: simulated}\n", "influxdb.url", "http://"),
    ("sensorz: []\n", "sensorz", "unknown key"),
    ("sensors:\n  - {name: a, type: [simulated]}\n", "sensors[0].type", "unknown sensor type"),
    ("collector: {tags: {room: 'C:\\'}}\nsensors:\n  - {name: a, type: simulated}\n", "collector.tags.room", "without backslashes"),
    ("sensors:\n  - {name: a, type: simulated}\nsensors:\n  - {name: b, type: simulated}\n", "line 3", "duplicate key 'sensors'"),
    ("sensors: []\n", "sensors", "non-empty list"),
    ("collector:\n  timeout: 0\nsensors:\n  - {name: a, type: simulated}\n", "collector.timeout", "positive"),
    ("collector:\n  time_floor: soon\nsensors:\n  - {name: a, type: simulated}\n", "collector.time_floor", "expected a date"),
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


def test_an_empty_token_file_means_none(write_config):
    config = load_config(write_config("influxdb: {org: o, token: abc, token_file: '${TOKEN_FILE:-}'}\n" + MINIMAL), environ={})
    assert config.influxdb.token_file is None and config.influxdb.credentials() == "abc"


def test_token_file_is_read_at_each_use(write_config, tmp_path):
    (tmp_path / "token").write_text("first\n")
    config = load_config(write_config("influxdb: {org: o, token_file: token}\n" + MINIMAL), environ={})
    assert config.influxdb.credentials() == "first"
    (tmp_path / "token").write_text("second\n")
    assert config.influxdb.credentials() == "second"


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
    assert config.influxdb.url == "http://db:8086"  # as in the shell, an empty value takes the default too
    assert config.influxdb.org == "acme"
    assert config.influxdb.token == "0123"  # text stays text: no octal or int surprise
    assert config.influxdb.batch_size == 250
    assert config.influxdb.retention == 7200
    assert config.collector.tags == {"site": "home-1"}


def test_unset_variable_without_default_names_the_key(write_config):
    error = error_of(write_config, "influxdb: {org: '${ORG}'}\n" + MINIMAL)
    assert error.path == "influxdb.org" and "ORG is not set" in error.problem


def test_secret_never_shows_in_repr(write_config):
    config = load_config(write_config("influxdb: {org: o, token: s3cr3t-token}\n" + MINIMAL), environ={})
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
