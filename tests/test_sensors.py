"""Each sensor type where a case needs more than files in, readings out: a FIFO, a device, a subprocess, a curve.
The sysfs types' cases (files in, readings out) are folders in tests/sensor_cases, walked by test_sensor_cases.py."""

import json
import os
import statistics
import sys

import pytest

from cli import templog
from collector.config import load_config
from collector.sensors import SensorError, create_sensor
from collector.sensors.simulated import Settings, SimulatedSensor


def sensor_from(write_config, entry: str):
    config = load_config(write_config(f"sensors:\n  - {entry}\n"), environ={})
    return create_sensor(config.sensors[0])


def test_file_sensor_scales_and_reports_garbage(write_config, tmp_path):
    (tmp_path / "t").write_text("21437\n")
    sensor = sensor_from(write_config, f"{{name: f, type: file, path: {tmp_path}/t, scale: 0.001}}")
    assert sensor.read().celsius == pytest.approx(21.437)
    (tmp_path / "t").write_text("N/A\n")
    with pytest.raises(SensorError, match="does not hold a number: 'N/A'"):
        sensor_from(write_config, f"{{name: f, type: file, path: {tmp_path}/t}}").read()
    with pytest.raises(SensorError, match="does not exist"):
        sensor_from(write_config, f"{{name: f, type: file, path: {tmp_path}/gone}}").read()


def test_file_sensor_reads_a_bounded_amount_and_never_waits_for_a_fifo(write_config, tmp_path):
    """/dev/zero and an overlong file are refused at once, not read into memory; a FIFO with no data is refused at
    once, not a read stuck in open() until a writer comes."""
    (tmp_path / "long").write_text("1" * 5000)
    os.mkfifo(tmp_path / "fifo")
    config = write_config("collector: {timeout: 2s, outbox: outbox.sqlite}\nsensors:\n"
                          "  - {name: zero, type: file, path: /dev/zero}\n"
                          f"  - {{name: long, type: file, path: {tmp_path}/long}}\n"
                          f"  - {{name: fifo, type: file, path: {tmp_path}/fifo}}\n")
    records = {r["sensor"]: r["error"] for r in json.loads(templog("read", "--json", "-c", str(config)).stdout)}
    assert records == {
        "zero": "/dev/zero holds more than 4096 bytes, not one value (a device such as /dev/zero?)",
        "long": f"{tmp_path}/long holds more than 4096 bytes, not one value (a device such as /dev/zero?)",
        "fifo": f"{tmp_path}/fifo has nothing to read (a FIFO or device without data)",
    }


def test_command_sensor_shell_argv_and_pattern(write_config):
    assert sensor_from(write_config, "{name: c, type: command, command: 'echo temp=23.25C'}").read().celsius == 23.25
    argv = f"[{sys.executable}, -c, 'print(\"sensor 2: 19.5 C\")']"
    sensor = sensor_from(write_config, f"{{name: c, type: command, command: {argv}, pattern: ': ([0-9.]+) C'}}")
    assert sensor.read().celsius == 19.5


def test_command_sensor_failures_are_clear(write_config):
    with pytest.raises(SensorError, match="exited with status 3: broken"):
        sensor_from(write_config, "{name: c, type: command, command: 'echo broken >&2; exit 3'}").read()
    with pytest.raises(SensorError, match="found no number"):
        sensor_from(write_config, "{name: c, type: command, command: 'echo none'}").read()
    with pytest.raises(SensorError, match="did not finish within 0.2s"):
        sensor_from(write_config, "{name: c, type: command, command: 'sleep 5', timeout: 200ms}").read()


def test_simulated_is_deterministic_and_plausible():
    a, b = SimulatedSensor(Settings(seed=3)), SimulatedSensor(Settings(seed=3))
    values = [a.value_at(t) for t in range(1_764_000_000, 1_764_086_400, 600)]
    assert values == [b.value_at(t) for t in range(1_764_000_000, 1_764_086_400, 600)]
    assert all(18.5 < v < 23.5 for v in values)
    assert max(values) - min(values) > 3  # a visible day/night curve
    assert SimulatedSensor(Settings(seed=4)).value_at(1_764_000_000) != values[0]


def test_simulated_noise_has_the_configured_spread_and_each_seed_its_own():
    """Around the daily curve, the noise has the configured standard deviation; two sensors with consecutive seeds (as
    in a config's list) do not move together, nor one a second behind the other."""
    seconds = range(1_764_000_000, 1_764_004_000)
    a, b = ([SimulatedSensor(Settings(base=20, amplitude=0, noise=0.5, seed=seed)).value_at(t) - 20 for t in seconds]
            for seed in (7, 8))
    assert abs(statistics.mean(a)) < 0.05 and 0.45 < statistics.pstdev(a) < 0.55
    assert abs(statistics.correlation(a, b)) < 0.1
    assert abs(statistics.correlation(a[1:], b[:-1])) < 0.1 and abs(statistics.correlation(a[:-1], b[1:])) < 0.1
    assert abs(statistics.correlation(a[1:], a[:-1])) < 0.1  # a new draw every second
