import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `collector` from this checkout, even uninstalled


@pytest.fixture(autouse=True)
def no_collector_outlives_its_test():
    yield
    from cli import STILL_RUNNING

    for running in list(STILL_RUNNING):
        running.kill()


@pytest.fixture
def sysfs(tmp_path):
    """A /sys tree: one thermal zone and two hwmon chips, numbered as after some boot."""
    root = tmp_path / "sys"
    zone = root / "class/thermal/thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "type").write_text("x86_pkg_temp\n")
    (zone / "temp").write_text("47000\n")
    coretemp = root / "class/hwmon/hwmon3"
    coretemp.mkdir(parents=True)
    (coretemp / "name").write_text("coretemp\n")
    (coretemp / "temp1_label").write_text("Package id 0\n")
    (coretemp / "temp1_input").write_text("52000\n")
    (coretemp / "temp2_label").write_text("Core 0\n")
    (coretemp / "temp2_input").write_text("49500\n")
    nvme = root / "class/hwmon/hwmon1"
    nvme.mkdir(parents=True)
    (nvme / "name").write_text("nvme\n")
    (nvme / "temp1_input").write_text("38850\n")
    return root


@pytest.fixture
def write_config(tmp_path):
    """Write a config file (text) into tmp_path and return its path."""

    def write(text: str, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture(scope="session")
def influxd(tmp_path_factory):
    """A real InfluxDB 1.x (Debian's influxd) on a free loopback port, shared by the session."""
    from servers import Influxd1

    server = Influxd1.start(tmp_path_factory.mktemp("influxd"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def victoria(tmp_path_factory):
    """A real VictoriaMetrics: an independent implementation of InfluxDB's /api/v2/write."""
    from servers import VictoriaMetrics

    server = VictoriaMetrics.start(tmp_path_factory.mktemp("victoria"))
    yield server
    server.stop()


@pytest.fixture
def proxy(influxd):
    """tests/faulty_proxy.py in front of the real influxd: faults switched on and off by the test."""
    from faulty_proxy import FaultyProxy

    with FaultyProxy(influxd.url) as server:
        yield server


@pytest.fixture
def fake_influxdb2():
    from fake_influxdb2 import FakeInfluxDB2

    with FakeInfluxDB2(token="test-token") as server:
        yield server


@pytest.fixture
def fake_influxdb3():
    from fake_influxdb3 import FakeInfluxDB3

    with FakeInfluxDB3(token="test-token") as server:
        yield server


@pytest.fixture
def database(request):
    """A database/bucket name of its own for each test, so tests sharing a server cannot see each other's points."""
    return "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:50]
