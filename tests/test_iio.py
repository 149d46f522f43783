"""iio sensors where a behaviour needs a process rather than files (the file cases are tests/sensor_cases/iio/): a
channel read that fails in the kernel with EIO, a device that vanishes and comes back under another number, and the
channel files' parser under arbitrary bytes.

EIO from a real read(2): `in_temp_input` is a symlink to /proc/self/mem, whose read at offset 0 (an address no
process maps) fails with EIO in the reading process itself (torvalds/linux fs/proc/base.c mem_rw: access_remote_vm
copies nothing, so the read returns -EIO). A DHT's failed transfer reaches userspace the same way: the driver's
read_raw returns -EIO or -ETIMEDOUT and read(2) fails with it (drivers/iio/humidity/dht11.c dht11_read_raw).
"""

import json
import math
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli import start_run, stop_run, templog, wait_until
from collector.config import load_config
from collector.outbox import Outbox
from collector.sensors import Sample, SensorError, create_sensor
from collector.sensors.iio import parse_value

EXAMPLES = settings(max_examples=200, deadline=None)


def dht(sys_root: Path, number: int, temp: str = "23100\n", humidity: str = "45800\n") -> Path:
    """A DHT22 as dtoverlay=dht11,gpiopin=4 lays it out: devices/platform/dht11@4/iio:deviceN, linked from
    bus/iio/devices; its channel files hold `temp` and `humidity`."""
    device = sys_root / f"devices/platform/dht11@4/iio:device{number}"
    device.mkdir(parents=True)
    (device / "name").write_text("dht11@4\n")
    (device / "in_temp_input").write_text(temp)
    (device / "in_humidityrelative_input").write_text(humidity)
    link = sys_root / f"bus/iio/devices/iio:device{number}"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(device, link.parent))
    return device


def config_for(write_config, sys_root: Path):
    return write_config(f"collector: {{sysfs: '{sys_root}'}}\nsensors:\n  - {{name: dht, type: iio, device: dht11}}\n")


def test_a_channel_read_failing_with_eio_is_a_clear_failed_read_naming_the_device_and_the_errno(write_config,
                                                                                                  tmp_path):
    device = dht(tmp_path / "sys", 0)
    (device / "in_temp_input").unlink()
    (device / "in_temp_input").symlink_to("/proc/self/mem")
    done = templog("read", "--json", "-c", str(config_for(write_config, tmp_path / "sys")))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    [record] = json.loads(done.stdout)
    assert record["celsius"] is None and record["humidity"] is None
    assert record["error"] == ("IIO device 'dht11@4' (iio:device0): reading in_temp_input failed: EIO "
                               "(Input/output error); the sensor did not answer this time (a DHT often does not)")


def test_a_failed_read_is_retried_at_the_next_read_and_a_vanished_device_is_found_again_under_its_new_number(
        write_config, tmp_path):
    sys_root = tmp_path / "sys"
    device = dht(sys_root, 0)
    sensor = create_sensor(load_config(config_for(write_config, sys_root), environ={}).sensors[0])
    assert sensor.read() == Sample(23.1, 45.8)
    (device / "in_temp_input").unlink()
    (device / "in_temp_input").symlink_to("/proc/self/mem")
    with pytest.raises(SensorError, match="EIO"):
        sensor.read()
    (device / "in_temp_input").unlink()
    (device / "in_temp_input").write_text("23200\n")
    assert sensor.read() == Sample(23.2, 45.8)  # the next tick reads again

    shutil.rmtree(device.parent)  # unplugged: the kernel removes the device and its link
    (sys_root / "bus/iio/devices/iio:device0").unlink()
    with pytest.raises(SensorError, match=r"IIO device 'dht11@4' \(iio:device0\) is gone"):
        sensor.read()
    with pytest.raises(SensorError, match="no IIO device named 'dht11'"):
        sensor.read()
    dht(sys_root, 3, temp="22900\n", humidity="47000\n")  # plugged back, probed as iio:device3
    assert sensor.read() == Sample(22.9, 47.0)


def test_run_goes_on_through_failing_reads_and_writes_the_dht_once_it_answers(write_config, tmp_path):
    """`templog run` with a DHT whose every read fails with EIO: logged once, no point; once it answers, the next
    tick writes temperature, humidity and dew point, and the end of the failures is logged."""
    device = dht(tmp_path / "sys", 0)
    (device / "in_temp_input").unlink()
    (device / "in_temp_input").symlink_to("/proc/self/mem")
    config = write_config(f"collector: {{sysfs: '{tmp_path / 'sys'}', interval: 200ms}}\nsensors:\n"
                          "  - {name: dht, type: iio, device: dht11}\n")
    running = start_run(config)
    outbox = tmp_path / "data/outbox.sqlite"

    def readings() -> list[str]:
        return [p.line for p in Outbox(str(outbox)).oldest(10**5) if p.line.startswith("temperature,")] \
            if outbox.exists() else []

    wait_until(lambda: "EIO (Input/output error)" in running.log, what="the failed read logged")
    assert readings() == []
    (device / "in_temp_input").unlink()
    (device / "in_temp_input").write_text("23100\n")
    wait_until(lambda: len(readings()) >= 2, what="points once the DHT answers")
    code, log = stop_run(running)
    assert code == 0, log
    assert log.count("reading in_temp_input failed: EIO") == 1, log
    assert "dht: reads again" in log
    assert all(" celsius=23.1," in line and "humidity=45.8," in line and "dewpoint=" in line for line in readings())


KERNEL_TEXTS = ["21650\n", "-4368\n", "0.010000000\n", "2.517700195\n", "-15887.515151\n", "-0.500000\n", "0\n"]


@pytest.mark.parametrize("text", KERNEL_TEXTS)
def test_the_kernels_number_texts_are_read_as_printed(text):
    assert parse_value(text, "x") == float(text)


@pytest.mark.parametrize("text", ["nan\n", "inf", "1e3", "1_000", "0x10", "\u0663\u0662", "21 22", "", "9" * 400])
def test_what_the_kernel_never_prints_is_refused(text):
    with pytest.raises(SensorError, match="^x "):
        parse_value(text, "x")


CHANNEL_BYTES = st.one_of(st.binary(max_size=64), st.sampled_from([t.encode() for t in KERNEL_TEXTS]),
                          st.sampled_from([b"9" * 400, b"-" + b"9" * 400, b"1" * 5000, b"\xff\xfe", b"", b"\n"]))


@EXAMPLES
@given(raw=CHANNEL_BYTES, offset=st.none() | CHANNEL_BYTES, scale=st.none() | CHANNEL_BYTES,
       humidity=CHANNEL_BYTES)
def test_any_bytes_in_the_channel_files_give_a_value_or_a_clear_failed_read(tmp_path_factory, raw, offset, scale,
                                                                             humidity):
    """raw/offset/scale and a processed humidity file with any content (a missing offset or scale too): a finite
    reading or a SensorError whose message names the device, never another exception."""
    sys_root = tmp_path_factory.mktemp("iio") / "sys"
    device = dht(sys_root, 0, humidity="")
    (device / "in_temp_input").unlink()
    for name, content in (("in_temp_raw", raw), ("in_temp_offset", offset), ("in_temp_scale", scale),
                          ("in_humidityrelative_input", humidity)):
        if content is not None:
            (device / name).write_bytes(content)
    config = sys_root.parent / "config.yaml"
    config.write_text(f"collector: {{sysfs: '{sys_root}'}}\nsensors:\n  - {{name: dht, type: iio, device: dht11}}\n")
    sensor = create_sensor(load_config(config, environ={}).sensors[0])
    try:
        sample = sensor.read()
    except SensorError as exc:
        assert str(exc).startswith("IIO device 'dht11@4' (iio:device0)") and len(str(exc)) < 300, str(exc)
        return
    assert isinstance(sample.celsius, float) and math.isfinite(sample.celsius), sample
    if sample.humidity_error is None:  # a humidity that cannot be read leaves the temperature, and says why
        assert isinstance(sample.humidity, float) and math.isfinite(sample.humidity), sample
    else:
        assert sample.humidity is None and sample.humidity_error.startswith("IIO device 'dht11@4' (iio:device0)")


@pytest.mark.parametrize("name", ["\n", "bme280\0\n", "bme\n280\n"])
def test_discover_passes_over_a_device_whose_name_no_config_could_give(write_config, tmp_path, name):
    """An empty `name` file (no `device:` can be empty), or one with a NUL or a line break inside: no entry, and no
    traceback from the Settings refusing it."""
    dht(tmp_path / "sys", 0)
    (tmp_path / "sys/devices/platform/dht11@4/iio:device0/name").write_text(name)
    config = write_config(f"collector: {{sysfs: '{tmp_path / 'sys'}'}}\nsensors:\n  - {{name: p, type: simulated}}\n")
    done = templog("discover", "-c", str(config))
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "# no temperature source found", "")
