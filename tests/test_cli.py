"""The commands as a user runs them: output shapes, exit codes, shutdown."""

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from types import FrameType

import pytest

from cli import ROOT, start_run, stop_run, templog, wait_until
from collector import cli as templog_cli
from collector.config import load_config
from collector.discover import find_sensors, render_yaml
from collector.outbox import Outbox
from collector.runner import StopRequest
from collector.sensors import Sample, SensorError

SIMULATED = "sensors:\n  - {name: desk, type: simulated, interval: 1s}\n"


def test_templog_console_script_is_installed():
    [script] = entry_points(group="console_scripts", name="templog")
    assert script.value == "collector.cli:main"


def test_read_json_lists_every_sensor_with_value_or_error(write_config, tmp_path):
    (tmp_path / "t").write_text("21500\n")
    config = write_config(f"""
sensors:
  - {{name: desk, type: simulated}}
  - {{name: board, type: file, path: {tmp_path}/t, scale: 0.001}}
  - {{name: gone, type: file, path: {tmp_path}/missing}}
  - {{name: hot, type: command, command: "echo 900"}}
""")
    done = templog("read", "--json", "-c", str(config))
    assert done.returncode == 1  # one sensor failed
    records = json.loads(done.stdout)
    assert [r["sensor"] for r in records] == ["desk", "board", "gone", "hot"]
    assert isinstance(records[0]["celsius"], float) and records[0]["error"] is None
    assert records[1] == {"sensor": "board", "celsius": 21.5, "error": None}
    assert records[2] == {"sensor": "gone", "celsius": None, "error": f"{tmp_path}/missing does not exist"}
    assert records[3]["celsius"] is None and "outside the plausible range" in records[3]["error"]
    plain = templog("read", "-c", str(config))
    assert "board  21.50 °C" in plain.stdout


def test_without_influxdb_readings_stay_in_the_outbox_and_history_reads_them(write_config, tmp_path):
    config = write_config(SIMULATED)
    process = start_run(config)
    outbox_path = tmp_path / "data/outbox.sqlite"

    def readings() -> int:  # not the depth: health points are written at each minute the run lives through
        return sum(1 for p in Outbox(str(outbox_path)).oldest(1000) if p.line.startswith("temperature,"))

    wait_until(lambda: outbox_path.exists() and readings() >= 2, what="readings in the outbox")
    process.send_signal(signal.SIGINT)
    assert process.wait() == 0
    waiting = readings()
    done = templog("history", "-c", str(config), "--since", "5m", "--format", "json")
    rows = json.loads(done.stdout)
    assert len(rows) == waiting >= 2 and all(r["sensor"] == "desk" for r in rows)
    assert [r["time"] for r in rows] == sorted(r["time"] for r in rows)
    windowed = json.loads(templog("history", "-c", str(config), "--since", "5m", "--every", "1m",
                                  "--format", "json").stdout)
    assert sum(1 for _ in windowed) >= 1 and set(windowed[0]) == {"time", "sensor", "mean", "min", "max"}


def test_what_could_not_be_sent_is_delivered_after_the_next_start(write_config, tmp_path, victoria):
    offline = write_config("influxdb: {url: 'http://127.0.0.1:9', api: v2, org: home, bucket: b}\n" + SIMULATED)
    process = start_run(offline)
    outbox_path = tmp_path / "data/outbox.sqlite"
    wait_until(lambda: outbox_path.exists() and Outbox(str(outbox_path)).depth >= 3, what="a backlog")
    code, _ = stop_run(process)
    waiting = Outbox(str(outbox_path)).oldest(1000)
    assert code == 0 and len(waiting) >= 3
    online = write_config(f"influxdb: {{url: '{victoria.url}', api: v2, org: home, bucket: b}}\n" + SIMULATED)
    process = start_run(online)
    first_time_ms = int(waiting[0].line.rsplit(" ", 1)[1]) // 1_000_000
    series = wait_until(lambda: [s for s in victoria.export('{__name__="temperature_celsius", sensor="desk"}')
                                 if first_time_ms in s["timestamps"]], what="the backlog in VictoriaMetrics")
    code, stderr = stop_run(process)
    assert code == 0, stderr
    timestamps = series[0]["timestamps"]
    assert all(int(p.line.rsplit(" ", 1)[1]) // 1_000_000 in timestamps for p in waiting)
    assert timestamps == sorted(set(timestamps))  # no gap filler, no duplicates


def test_history_usage_errors_exit_2(write_config):
    config = write_config(SIMULATED)
    for args in (["--since", "1h", "--start", "2026-01-01"], ["--since", "soon"], ["--start", "yesterday"],
                 ["--start", "2026-01-02", "--stop", "2026-01-01"], ["--every", "0"], ["--sensor", ""]):
        done = templog("history", "-c", str(config), *args)
        assert done.returncode == 2, args
        assert done.stderr.startswith("templog: history: ") and "Traceback" not in done.stderr


def test_discover_scans_sys_without_a_config_and_refuses_a_missing_or_invalid_one(tmp_path):
    """A new user has no config yet: with none named (-c, $TEMPLOG_CONFIG) and no ./config.yaml, `discover` scans
    /sys. A config that is named, or found at ./config.yaml, is loaded as every command loads it: missing or invalid,
    exit 2 naming the file; the sysfs it scans is that config's `collector.sysfs`, which replaced the hidden
    --sysfs option (on 5b389f9 a named config was not even read without --mqtt)."""
    def discover(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:  # from a folder of the user's
        return subprocess.run([sys.executable, "-m", "collector", "discover", *args], capture_output=True, text=True,
                              cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT), "TEMPLOG_CONFIG": "",
                                                 **(env or {})}, timeout=60)

    fresh = discover()
    assert (fresh.returncode, fresh.stdout) == (0, render_yaml(find_sensors("/sys")) + "\n"), fresh.stderr
    missing = tmp_path / "elsewhere.yaml"
    for args, env in ((["-c", str(missing)], {}), ([], {"TEMPLOG_CONFIG": str(missing)})):
        done = discover(*args, env=env)
        assert (done.returncode, done.stderr) == (2, f"templog: {missing}: file not found\n"), (args, env)
    (tmp_path / "config.yaml").write_text("collector: {sysfs: ''}\nsensors:\n  - {name: x, type: simulated}\n")
    done = discover()
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("templog: config.yaml: collector.sysfs: "), done.stderr
    (tmp_path / "config.yaml").write_text("sensors:\n  - {name: x, type: simulated}\n")
    done = discover("--sysfs", str(tmp_path))
    assert done.returncode == 2 and "unrecognized arguments: --sysfs" in done.stderr
    # the config that tells where to scan needs no sensor yet: finding them is what discover is for
    laptop = ROOT / "tests/discover_cases/laptop"
    (tmp_path / "config.yaml").write_text(f"collector: {{sysfs: {laptop / 'sys'}}}\n")
    done = discover()
    assert done.returncode == 0 and done.stdout == (laptop / "expected.yaml").read_text(), done.stderr
    (tmp_path / "config.yaml").write_text(f"collector: {{sysfs: {tmp_path / 'no-sys'}}}\nsensors: []\n")
    done = discover()
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (f"templog: discover: collector.sysfs {tmp_path / 'no-sys'} is not a folder: nothing to "
                           "scan (the kernel mounts sysfs at /sys; in a container, bind it and set collector.sysfs to "
                           "where)\n")


def test_shutdown_lets_a_read_in_flight_finish_and_keeps_its_point(write_config, tmp_path):
    started = tmp_path / "read-started"
    config = write_config(f"""
sensors:
  - {{name: slow, type: command, command: "touch {started}; sleep 1; echo 19.5", interval: 1s, timeout: 5s}}
""")
    process = start_run(config)
    wait_until(started.exists, what="a read in flight")
    code, stderr = stop_run(process)
    assert code == 0, stderr
    [point] = Outbox(str(tmp_path / "data/outbox.sqlite")).oldest(10)
    assert " celsius=19.5 " in point.line


def test_health_command_fails_when_no_collector_has_run(write_config):
    done = templog("health", "-c", str(write_config(SIMULATED)))
    assert done.returncode == 1 and done.stdout.startswith("unhealthy: no outbox at ")


def test_grafana_command_renders_the_committed_rules_from_the_committed_config(tmp_path):
    done = templog("grafana", "-c", str(ROOT / "config.yaml"), env={"INFLUX_URL": "", "INFLUX_BUCKET": ""})
    assert done.returncode == 0, done.stderr
    assert done.stdout == (ROOT / "grafana/provisioning/alerting/templog-rules.yaml").read_text()
    out = tmp_path / "provisioning"
    out.mkdir()
    assert templog("grafana", "-c", str(ROOT / "config.yaml"), "--output", str(out)).returncode == 0
    for rendered in out.rglob("*.*"):
        assert rendered.read_text() == (ROOT / "grafana/provisioning" / rendered.relative_to(out)).read_text()


def test_an_outbox_that_cannot_be_opened_is_one_clear_line_and_exit_1(write_config, tmp_path):
    (tmp_path / "data").write_text("a file where the outbox folder should be\n")
    done = templog("run", "-c", str(write_config(SIMULATED)))
    assert done.returncode == 1
    assert done.stderr.startswith("templog: run: ") and "Traceback" not in done.stderr


def test_common_options_work_before_and_after_the_command(write_config):
    config = write_config("sensors:\n  - {name: only, type: simulated}\n")
    for args in (["-c", str(config), "read", "--json"], ["read", "--json", "-c", str(config)]):
        assert [r["sensor"] for r in json.loads(templog(*args).stdout)] == ["only"], args


def test_bad_values_never_end_in_a_traceback(write_config):
    config = write_config(SIMULATED)
    for args in (["history", "-c", str(config), "--since", "3000000w"], ["discover", "--mqtt", "-1"]):
        done = templog(*args)
        assert done.returncode == 2 and "Traceback" not in done.stderr, args


class ReentrantStderr(logging.Handler):
    """As a log call in a signal handler fails when the signal came in the middle of a write to stderr."""

    def emit(self, record):
        raise RuntimeError("reentrant call inside <_io.BufferedWriter name='<stderr>'>")


@pytest.fixture
def signal_handlers(monkeypatch):
    """The handlers stop_on_signals installs, called directly; os._exit and ending commands recorded, not done."""
    installed: dict[int, Callable[[int, FrameType | None], object]] = {}
    exits: list[int] = []
    monkeypatch.setattr(templog_cli.signal, "signal", lambda signum, handler: installed.__setitem__(signum, handler))
    monkeypatch.setattr(templog_cli.os, "_exit", exits.append)
    monkeypatch.setattr(templog_cli, "end_commands", lambda: None)
    return installed, exits


def test_a_second_signal_exits_even_when_logging_would_fail_in_the_handler(signal_handlers, caplog, capfd):
    installed, exits = signal_handlers
    clock = [100.0]
    stop = StopRequest(clock=lambda: clock[0])
    templog_cli.stop_on_signals(stop)
    broken = ReentrantStderr()
    logging.getLogger("templog").addHandler(broken)
    try:
        with caplog.at_level(logging.DEBUG):
            installed[signal.SIGINT](signal.SIGINT, None)
            assert stop.wait(5) and stop.reason == "SIGINT received"
            installed[signal.SIGINT](signal.SIGINT, None)  # the same request again at once (`timeout`, a tty group)
            assert exits == []
            clock[0] += templog_cli.SECOND_SIGNAL_AFTER_S  # the user insists
            installed[signal.SIGINT](signal.SIGINT, None)
    finally:
        logging.getLogger("templog").removeHandler(broken)
    assert exits == [130]
    assert "WARNING SIGINT received again: exiting at once" in capfd.readouterr().err


def test_a_signal_landing_while_the_stop_event_s_lock_is_held_does_not_wait_for_it(signal_handlers):
    """A handler runs between two bytecodes of the main thread: maybe inside `stop.wait` of the run loop, or inside
    the Event.set of the first SIGTERM's handler when a second comes at once (`timeout`'s two). Either holds the
    event's lock, which is no RLock: a handler that set the event itself waited for it forever (seen in CI: a run
    still running 10 s after two SIGTERMs). Here the handler is called by a thread holding that lock."""
    installed, exits = signal_handlers
    stop = StopRequest()
    templog_cli.stop_on_signals(stop)
    handled = threading.Event()

    def interrupted_inside_the_event() -> None:
        with stop._cond:  # type: ignore[attr-defined]  # what Event.wait and Event.set hold as their bytecodes run
            installed[signal.SIGTERM](signal.SIGTERM, None)
            handled.set()

    threading.Thread(target=interrupted_inside_the_event, daemon=True).start()
    assert handled.wait(5), "the signal handler waited for the lock of the event it interrupted"
    assert stop.wait(5) and stop.reason == "SIGTERM received" and exits == []


def test_a_signal_during_start_up_stops_before_sensors_and_mqtt_start(write_config, monkeypatch, caplog):
    """The outbox's quick_check or repair can take seconds: a SIGTERM meanwhile ends `run` as soon as it is open."""
    config = load_config(write_config(SIMULATED), environ={})
    opened = templog_cli.open_outbox_for_run
    saved = {signum: signal.getsignal(signum) for signum in templog_cli.STOP_SIGNALS}

    def open_then_sigterm(config):
        opening = opened(config)
        os.kill(os.getpid(), signal.SIGTERM)  # handled by stop_on_signals' handler, in this (the main) thread
        return opening

    def no_sensor(*args):
        raise AssertionError("a sensor was created after the stop request")

    monkeypatch.setattr(templog_cli, "open_outbox_for_run", open_then_sigterm)
    monkeypatch.setattr("collector.sensors.create_sensor", no_sensor)  # cmd_run imports it when it runs
    try:
        with caplog.at_level(logging.INFO):
            assert templog_cli.cmd_run(config, None) == 0
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
    assert "SIGTERM received during start-up, stopping; 0 point(s) wait in the outbox" in caplog.text
    assert Outbox(config.collector.outbox).depth == 0  # closed and unlocked: opens again


class Answers:
    def __init__(self, after: float, never: threading.Event):
        self.after, self.never = after, never

    def read(self) -> Sample:
        if self.never.wait(self.after):
            raise SensorError("test over")
        return Sample(20.0)


def test_read_waits_for_hung_sensors_once_not_once_each(write_config, monkeypatch):
    """Two sensors hang, a third answers after its timeout and the grace: all read at once, so after one timeout
    (and the grace) all three are reported late; joined one after the other, the third would have had three."""
    config = load_config(write_config("collector: {timeout: 300ms}\nsensors:\n" + "".join(
        f"  - {{name: {name}, type: simulated}}\n" for name in ("hung1", "hung2", "slow"))), environ={})
    never = threading.Event()
    sensors = {"hung1": Answers(60, never), "hung2": Answers(60, never),
               "slow": Answers(0.3 + templog_cli.OWN_TIMEOUT_GRACE_S + 0.3, never)}
    monkeypatch.setattr("collector.sensors.create_sensor", lambda s, shared: sensors[s.name])  # read_all imports it
    try:
        records = templog_cli.read_all(config)
    finally:
        never.set()
    assert [r["error"] for r in records] == ["no reading within the 0.3s timeout"] * 3
