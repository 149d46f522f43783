"""One sensor of every type, through `templog run`, into a real InfluxDB 1.x; and the systemd unit that runs it."""

import shutil
import subprocess
import sys
from pathlib import Path

from cli import ROOT, start_run, stop_run, wait_until
from servers import Mosquitto, require_binary
from test_ds18b20 import DEVICE, w1_slave
from test_mqtt import ZIGBEE2MQTT, Publisher


def test_one_sensor_of_each_type_reaches_influxdb(write_config, tmp_path, sysfs, influxd, database):
    (tmp_path / "value").write_text("19500\n")
    (tmp_path / f"w1/{DEVICE}").mkdir(parents=True)
    (tmp_path / f"w1/{DEVICE}/w1_slave").write_text(w1_slave(23125))
    broker = Mosquitto.start(tmp_path / "mosquitto")
    publisher = Publisher(broker.port)
    publisher.publish("zigbee2mqtt/living", ZIGBEE2MQTT, retain=True)
    config = write_config(f"""
influxdb: {{url: "{influxd.url}", api: v1, bucket: {database}, retention: 1h}}
mqtt: {{host: 127.0.0.1, port: {broker.port}}}
collector: {{interval: 500ms}}
sensors:
  - {{name: sim, type: simulated}}
  - {{name: zone, type: thermal_zone, path: {sysfs}/class/thermal/thermal_zone0/temp}}
  - {{name: core, type: hwmon, chip: coretemp, label: Core 0, root: {sysfs}/class/hwmon}}
  - {{name: file, type: file, path: {tmp_path}/value, scale: 0.001}}
  - {{name: cmd, type: command, command: [echo, "cpu 44.5 C"]}}
  - {{name: probe, type: ds18b20, device: {DEVICE}, w1_dir: {tmp_path}/w1}}
  - {{name: z2m, type: mqtt, topic: zigbee2mqtt/living, field: temperature}}
""")
    expected = {"zone": 47.0, "core": 49.5, "file": 19.5, "cmd": 44.5, "probe": 23.125, "z2m": 21.37}

    def latest_by_sensor():
        result = influxd.query('SELECT last("celsius") FROM "temperature" GROUP BY "sensor"', db=database)["results"][0]
        return {s["tags"]["sensor"]: s["values"][0][1] for s in result.get("series", [])}

    running = start_run(config)
    try:
        wait_until(lambda: len(latest_by_sensor()) == 7, what="a point from every sensor type")
    finally:
        code, log = stop_run(running)
        publisher.close()
        broker.stop()
    assert code == 0, log
    found = latest_by_sensor()
    assert {name: found[name] for name in expected} == expected
    assert 15 < found["sim"] < 27


def test_the_systemd_unit_is_valid_and_runs_templog_as_documented(tmp_path):
    analyze = require_binary("systemd-analyze")
    unit = (ROOT / "systemd/templog.service").read_text()
    assert "ExecStart=/opt/templog/bin/templog run -q -c /etc/templog/config.yaml" in unit
    assert "User=templog" in unit and "StateDirectory=templog" in unit
    assert "Environment=TEMPLOG_OUTBOX=/var/lib/templog/outbox.sqlite" in unit
    # verify it with the program at a path that exists here: any warning at all fails the test
    templog = Path(sys.executable).with_name("templog")
    assert templog.exists() or shutil.which("templog")
    local = tmp_path / "templog.service"
    executable = templog if templog.exists() else shutil.which("templog")
    local.write_text(unit.replace("/opt/templog/bin/templog", str(executable)))
    done = subprocess.run([analyze, "verify", str(local)], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout + done.stderr == ""
    assert "/opt/templog" in (ROOT / "README.md").read_text()
