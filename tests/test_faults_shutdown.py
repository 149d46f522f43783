"""Stopping `templog run` on real processes: SIGTERM, SIGINT and SIGHUP end it within 10 s (Docker's grace period)
whatever InfluxDB and the sensors do, a second signal ends it at once, and either way nothing is lost: what was
not delivered waits in the outbox.

The frozen InfluxDB is tests/faulty_proxy.py holding writes unanswered in front of the session's real influxd; the
hung sensor is a command that takes far longer than the shutdown may (its timeout longer still).
"""

from __future__ import annotations

import signal
import subprocess
import time

from cli import start_run, wait_until
from collector import cli as cli_module
from collector.outbox import Outbox
from temperature_points import temperature

S = 1_000_000_000
BACKLOG = 50_000
GRACE_S = 10  # the spec's bound, and Docker's default grace period


def backlog_times(outbox_path) -> set[int]:
    """The timestamps of the backlog points still waiting in the outbox."""
    return {int(line.rsplit(" ", 1)[1]) for _, line in Outbox(str(outbox_path)).oldest(10**7)
            if line.startswith("temperature,sensor=backlog ")}


def stored_backlog_times(influxd, database) -> set[int]:
    result = influxd.query('SELECT "celsius" FROM "temperature" WHERE "sensor" = \'backlog\'',
                           db=database)["results"][0]
    return {row[0] for series in result.get("series", []) for row in series["values"]}


def with_backlog(tmp_path, n: int = BACKLOG) -> set[int]:
    """An outbox holding n points, as after a long outage; returns their timestamps."""
    base = time.time_ns() // S * S - n * S
    times = [base + i * S for i in range(n)]
    Outbox(str(tmp_path / "data/outbox.sqlite")).append(
        [temperature("backlog", t, i % 100 + 0.5) for i, t in enumerate(times)])
    return set(times)


def config_for(write_config, url, database, sensors="  - {name: s0, type: simulated}\n"):
    # a write may take 30 s before it times out: far longer than the shutdown may
    return write_config(f"""
influxdb: {{url: "{url}", api: v1, bucket: {database}, retention: 0, timeout: 30s, batch_size: 500}}
collector: {{interval: 1s}}
sensors:
{sensors}""")


def frozen_mid_drain(proxy, running) -> None:
    """Let the drain get going, then freeze InfluxDB: every write from then on hangs unanswered."""
    wait_until(lambda: len([r for r in proxy.faultable() if r.kind == "forwarded"]) >= 3, what="a drain under way")
    proxy.hang_next(1000)
    wait_until(lambda: proxy.hanging >= 1, what="a write hanging")
    assert running.process.poll() is None


def exit_code_within(running, seconds: float) -> int:
    try:
        return running.wait(seconds)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"templog run still running {seconds}s after the signal:\n{running.log}") from None


def test_sigterm_exits_within_10s_while_influxdb_is_frozen_and_a_sensor_hangs(write_config, tmp_path, influxd,
                                                                             proxy, database):
    backlog = with_backlog(tmp_path)
    config = config_for(write_config, proxy.url, database, "  - {name: s0, type: simulated}\n"
                        "  - {name: stuck, type: command, command: 'sleep 60; echo 20', timeout: 90s}\n")
    running = start_run(config)
    frozen_mid_drain(proxy, running)
    wait_until(lambda: "stuck: tick" in running.log, what="the hung sensor's next tick to be skipped")
    running.send_signal(signal.SIGTERM)
    code = exit_code_within(running, GRACE_S)
    log = running.log
    assert code == 0, log
    assert "stuck: read still running at shutdown, abandoned" in log
    assert "a write to InfluxDB was still in flight at shutdown, abandoned" in log
    waiting = backlog_times(tmp_path / "data/outbox.sqlite")
    assert waiting and "stopped; " in log
    # nothing lost: each point of the backlog is in InfluxDB or still waits in the outbox
    assert backlog <= waiting | stored_backlog_times(influxd, database)


def test_a_second_sigint_exits_at_once_and_loses_nothing(write_config, tmp_path, influxd, proxy, database):
    backlog = with_backlog(tmp_path)
    running = start_run(config_for(write_config, proxy.url, database))
    frozen_mid_drain(proxy, running)
    running.send_signal(signal.SIGINT)
    wait_until(lambda: "SIGINT received, stopping" in running.log, what="the first SIGINT to be taken")
    running.send_signal(signal.SIGINT)  # the same request twice at once (as `timeout` sends it): not a second one
    time.sleep(cli_module.SECOND_SIGNAL_AFTER_S)  # what makes the next Ctrl-C a second request, not a sync
    running.send_signal(signal.SIGINT)  # the shutdown is waiting on the frozen write: Ctrl-C again
    code = exit_code_within(running, GRACE_S)
    log = running.log
    assert code == 130, log  # 128 + SIGINT, as a shell reports an interrupted command
    assert "SIGINT received again: exiting at once" in log
    assert "stopped;" not in log  # it did not wait for the shutdown to end
    assert backlog <= backlog_times(tmp_path / "data/outbox.sqlite") | stored_backlog_times(influxd, database)
    # the outbox is whole: the next run delivers what waits
    proxy.clear_faults()
    proxy.release_hangs()
    running = start_run(config_for(write_config, proxy.url, database))
    wait_until(lambda: not backlog_times(tmp_path / "data/outbox.sqlite"), what="the backlog delivered by the next run")
    running.send_signal(signal.SIGTERM)
    assert running.wait() == 0
    assert backlog <= stored_backlog_times(influxd, database)


def test_sighup_stops_like_sigterm(write_config, tmp_path, influxd, database):
    running = start_run(config_for(write_config, influxd.url, database))
    wait_until(lambda: "s0: " in running.log and "°C at" in running.log, what="a first reading")
    running.send_signal(signal.SIGHUP)  # the terminal or ssh session it ran in was closed
    code = exit_code_within(running, GRACE_S)
    assert code == 0, running.log
    assert "SIGHUP received, stopping" in running.log and "stopped; 0 point(s) wait in the outbox" in running.log


def test_one_stop_request_sent_twice_at_once_is_a_clean_stop(write_config, tmp_path, influxd, database):
    """coreutils `timeout` signals the command, then its process group: two SIGTERMs a moment apart are one
    request, answered by the clean shutdown (exit 0, the last delivery), not by the second signal's exit at once."""
    running = start_run(config_for(write_config, influxd.url, database))
    wait_until(lambda: "s0: " in running.log and "°C at" in running.log, what="a first reading")
    running.send_signal(signal.SIGTERM)
    running.send_signal(signal.SIGTERM)
    code = exit_code_within(running, GRACE_S)
    assert code == 0, running.log
    assert "received again" not in running.log and "stopped; 0 point(s) wait in the outbox" in running.log
