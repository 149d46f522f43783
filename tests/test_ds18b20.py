"""DS18B20 where a case needs a process: a file that changes between two reads, a device that vanishes; and the
config's checks. The cases of w1_therm's files (CRC, -127, all-ones, the newer `temperature` file...) are folders in
tests/sensor_cases/ds18b20, walked by test_sensor_cases.py."""

import pytest

from collector.config import ConfigError, load_config
from collector.sensors import SensorError, create_sensor

DEVICE = "28-0316a2795aff"


def w1_slave(celsius_milli: int, crc_ok: bool = True, scratchpad: str = "72 01 4b 46 7f ff 0e 10 57") -> str:
    crc = scratchpad.split()[-1]
    return f"{scratchpad} : crc={crc} {'YES' if crc_ok else 'NO'}\n{scratchpad} t={celsius_milli}\n"


@pytest.fixture
def w1(tmp_path):
    directory = tmp_path / "devices"
    (directory / DEVICE).mkdir(parents=True)
    (directory / "w1_bus_master1").mkdir()
    return directory


def sensor(write_config, w1):
    config = load_config(write_config(f"sensors:\n  - {{name: t, type: ds18b20, device: {DEVICE}, w1_dir: {w1}}}\n"),
                         environ={})
    return config.sensors[0], create_sensor(config.sensors[0])


def test_85_is_refused_unless_a_reread_confirms_it(write_config, w1, monkeypatch):
    path = w1 / DEVICE / "w1_slave"
    _, thermometer = sensor(write_config, w1)
    conversions: list[str] = []  # what the driver's next conversions will show, one per read
    original = thermometer._read_once

    def read_then_convert():
        path.write_text(conversions.pop(0))
        return original()

    monkeypatch.setattr(thermometer, "_read_once", read_then_convert)
    power_on = w1_slave(85000, scratchpad="50 05 4b 46 7f ff 0c 10 1c")
    conversions[:] = [power_on, w1_slave(21500)]
    assert thermometer.read().celsius == 21.5  # the power-on 85 was replaced by the fresh conversion
    conversions[:] = [power_on, power_on]
    assert thermometer.read().celsius == 85.0  # confirmed by a re-read: a real 85 °C
    assert conversions == []


def test_a_vanished_device_is_reported_clearly(write_config, w1):
    (w1 / DEVICE / "w1_slave").write_text(w1_slave(23125))
    _, thermometer = sensor(write_config, w1)
    assert thermometer.read().celsius == 23.125
    (w1 / DEVICE / "w1_slave").unlink()
    (w1 / DEVICE).rmdir()
    with pytest.raises(SensorError, match=f"DS18B20 {DEVICE} not found under .* is the w1-gpio overlay enabled"):
        thermometer.read()


def test_physical_range_is_the_chips(write_config, w1):
    config, _ = sensor(write_config, w1)
    assert (config.valid_min, config.valid_max) == (-55.0, 125.0)


def test_bad_device_id_is_a_config_error(write_config):
    with pytest.raises(ConfigError, match=r"sensors\[0\].device: expected a 1-Wire id"):
        load_config(write_config("sensors:\n  - {name: t, type: ds18b20, device: 28-xyz}\n"), environ={})
