"""systemd/templog.service: its exposure as `systemd-analyze security` rates it, and templog under its sandbox.

The sandbox is proven on real processes: systemd's own manager (systemd_manager.py) runs the committed unit, with
only ExecStart (this Python and this source, where the service can see them) and the log destination changed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cli import ROOT, wait_until
from servers import Mosquitto, require_binary
from systemd_manager import SERVICE_UID, SRV_ENVIRONMENT, SRV_PYTHON_BINARY, ServiceManager
from test_ds18b20 import DEVICE, w1_slave
from test_mqtt import ZIGBEE2MQTT, Publisher

UNIT = ROOT / "systemd/templog.service"
MAX_EXPOSURE = 2.5
EXEC_START = "ExecStart=/opt/templog/bin/templog run -q -c /etc/templog/config.yaml"


def exposure(unit: Path) -> float:
    """`systemd-analyze security`'s overall exposure level of `unit` (0 = fully sandboxed, 10 = not at all).

    --offline=true (systemd >= 250) rates the file itself, with no running manager; User= need not exist.
    """
    analyze = require_binary("systemd-analyze")
    done = subprocess.run([analyze, "security", "--offline=true", "--no-pager", str(unit)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+) ", done.stdout)
    assert found, done.stdout
    return float(found.group(1))


def test_systemd_rates_the_unit_as_exposing_little():
    """Before issue 9: 7.3 MEDIUM (kernel tunables, modules, logs, clock, namespaces, capabilities, syscalls open)."""
    assert exposure(UNIT) <= MAX_EXPOSURE


def sandboxed(unit: str, command: str, log: str, oneshot: bool = False) -> str:
    """The committed unit running `command` instead of /opt/templog's templog, with its output to /srv/LOG."""
    assert EXEC_START in unit
    service = unit.replace(EXEC_START, f"ExecStart={command}")
    if oneshot:
        service = service.replace("Type=simple", "Type=oneshot")
    added = [f"Environment={name}={value}" for name, value in SRV_ENVIRONMENT.items()]
    added += [f"StandardOutput=append:/srv/{log}", f"StandardError=append:/srv/{log}"]
    return service.replace("[Service]\n", "[Service]\n" + "".join(line + "\n" for line in added), 1)


@pytest.fixture
def manager(tmp_path):
    manager = ServiceManager(tmp_path / "manager")
    yield manager
    manager.stop()


def test_under_the_sandbox_every_sensor_type_reads_and_the_outbox_delivers(manager, influxd, database, tmp_path):
    """As the service user, read-only everywhere but /var/lib/templog, with no capability and the syscall filter:
    `read` reads one sensor of every type (the files of hwmon, thermal, w1 as under /sys; a real /sys attribute; a
    command; MQTT over TLS), `run` delivers to InfluxDB by name (localhost: getaddrinfo without AF_NETLINK), `health`
    reads its outbox, and SIGTERM ends it with status 0. Command sensors leave no process behind (command.py
    finds a command's children in /proc, which ProtectProc=invisible still shows: they are the service's)."""
    srv = manager.srv
    sys_tree = srv / "sys"
    for path, text in {"class/thermal/thermal_zone0/temp": "47000\n", "class/hwmon/hwmon3/name": "coretemp\n",
                       "class/hwmon/hwmon3/temp2_label": "Core 0\n", "class/hwmon/hwmon3/temp2_input": "49500\n",
                       f"bus/w1/devices/{DEVICE}/w1_slave": w1_slave(23125)}.items():
        (sys_tree / path).parent.mkdir(parents=True, exist_ok=True)
        (sys_tree / path).write_text(text)
    broker = Mosquitto.start(tmp_path / "mosquitto", tls=True)  # OpenSSL too runs under MemoryDenyWriteExecute=
    shutil.copy(tmp_path / "mosquitto/ca.crt", srv / "ca.crt")
    publisher = Publisher(broker.port, ca_file=srv / "ca.crt")
    publisher.publish("zigbee2mqtt/living", ZIGBEE2MQTT, retain=True)
    port = influxd.url.rsplit(":", 1)[1]
    (srv / "config.yaml").write_text(f"""
influxdb: {{url: "http://localhost:{port}", api: v1, bucket: {database}, retention: 1h}}
mqtt: {{host: 127.0.0.1, port: {broker.port}, tls: true, ca_file: /srv/ca.crt}}
collector: {{interval: 500ms, outbox: "${{TEMPLOG_OUTBOX}}"}}  # as config.yaml: the unit sets it
sensors:
  - {{name: sim, type: simulated}}
  - {{name: zone, type: thermal_zone, path: /srv/sys/class/thermal/thermal_zone0/temp}}
  - {{name: core, type: hwmon, chip: coretemp, label: Core 0, root: /srv/sys/class/hwmon}}
  - {{name: probe, type: ds18b20, device: {DEVICE}, w1_dir: /srv/sys/bus/w1/devices}}
  - {{name: sysfs, type: file, path: /sys/class/net/lo/mtu, scale: 0.001}}
  - {{name: cmd, type: command, command: "sleep 613 & cat /srv/sys/class/thermal/thermal_zone0/temp | cut -c1-2"}}
  - {{name: z2m, type: mqtt, topic: zigbee2mqtt/living, field: temperature}}
""")
    expected = {"zone": 47.0, "core": 49.5, "probe": 23.125, "sysfs": 65.536, "cmd": 47.0, "z2m": 21.37}
    unit = UNIT.read_text()
    templog = f"{SRV_PYTHON_BINARY} -m collector"  # this source, as the service sees it
    try:
        manager.install("templog-read.service", sandboxed(unit, f"{templog} read --json -c /srv/config.yaml",
                                                          "read.log", oneshot=True))
        manager.systemctl("start", "templog-read.service", check=False)
        read = manager.show("templog-read.service", "Result", "ExecMainStatus")
        output = (srv / "read.log").read_text()
        assert read == {"Result": "success", "ExecMainStatus": "0"}, output + manager.status("templog-read")
        records = {r["sensor"]: r["celsius"] for r in json.loads(output[output.index("["):])}
        assert {name: records[name] for name in expected} == expected

        manager.install("templog.service", sandboxed(unit, f"{templog} run -q -c /srv/config.yaml", "run.log"))
        manager.systemctl("start", "templog.service")

        def latest_by_sensor():
            result = influxd.query('SELECT last("celsius") FROM "temperature" GROUP BY "sensor"', db=database)
            return {s["tags"]["sensor"]: s["values"][0][1] for s in result["results"][0].get("series", [])}

        try:
            wait_until(lambda: len(latest_by_sensor()) == 7, what="a point from every sensor")
        except AssertionError as exc:
            log = (srv / "run.log").read_text()
            raise AssertionError(f"{exc}; run.log: {log}; {manager.status('templog')}") from exc
        found = latest_by_sensor()
        assert {name: found[name] for name in expected} == expected
        # Each read's process group ended with it, the background `sleep` too (before `stop`, which would end
        # them all): at most the one of a read in progress is left, not one per tick.
        wait_until(lambda: influxd.query('SELECT count("celsius") FROM "temperature" WHERE "sensor" = \'cmd\'',
                                         db=database)["results"][0]["series"][0]["values"][0][1] >= 5,
                   what="five reads of the command")
        assert _processes(b"sleep\x00613\x00") <= 1
        # the sandbox is in force: the service user, no capability, the seccomp filter (seen from outside)
        status = Path(f"/proc/{manager.show('templog.service', 'MainPID')['MainPID']}/status").read_text()
        assert re.search(rf"^Uid:\s+{SERVICE_UID}\s", status, re.MULTILINE)
        assert re.search(r"^CapEff:\s+0+$", status, re.MULTILINE) and re.search(r"^Seccomp:\s+2$", status, re.M)
        assert re.search(r"^NoNewPrivs:\s+1$", status, re.MULTILINE)

        manager.install("templog-health.service", sandboxed(unit, f"{templog} health -c /srv/config.yaml",
                                                            "health.log", oneshot=True))
        manager.systemctl("start", "templog-health.service", check=False)
        health = manager.show("templog-health.service", "Result", "ExecMainStatus")
        assert health == {"Result": "success", "ExecMainStatus": "0"}, (srv / "health.log").read_text()

        manager.systemctl("stop", "templog.service")
        run = manager.show("templog.service", "Result", "ExecMainStatus", "NRestarts")
        assert run == {"Result": "success", "ExecMainStatus": "0", "NRestarts": "0"}, (srv / "run.log").read_text()
        assert (srv / "run.log").read_text() == ""  # -q: no warning, no error
        outbox = manager.var_lib / "templog/outbox.sqlite"
        assert outbox.stat().st_uid == SERVICE_UID and outbox.stat().st_mode & 0o777 == 0o640  # UMask=0027
    finally:
        publisher.close()
        broker.stop()


def _processes(argv: bytes) -> int:
    """How many processes now run `argv` (NUL-separated, as in /proc/PID/cmdline)."""
    count = 0
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            count += cmdline.read_bytes() == argv
        except OSError:  # gone meanwhile
            pass
    return count


def test_the_sandbox_hides_no_part_of_sys_where_sensors_are(manager):
    """ProtectKernelTunables= makes /sys read-only; nothing the unit sets may cover /sys/class (hwmon, thermal),
    /sys/bus (w1, iio) or /sys/devices: seen in the mount table of a process under the unit's sandbox."""
    manager.install("mounts.service", sandboxed(UNIT.read_text(), "/bin/cat /proc/self/mountinfo", "mounts.log",
                                                oneshot=True))
    manager.systemctl("start", "mounts.service", check=False)
    options = {fields[4]: fields[5].split(",") for fields in map(str.split, (manager.srv / "mounts.log").read_text()
                                                                 .splitlines())}
    assert "ro" in options["/sys"] and "rw" in options["/var/lib/templog"] and "ro" in options["/"]
    mounts = list(options)
    below_sys = [m for m in mounts if m.startswith("/sys/")]
    for sensor_path in ("/sys/class/hwmon", "/sys/class/thermal", "/sys/bus/w1", "/sys/bus/iio", "/sys/devices"):
        assert not [m for m in below_sys if sensor_path.startswith(m) or m.startswith(sensor_path)], below_sys
