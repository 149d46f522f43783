"""Zero data loss under faults, on real processes: outages of real servers, kill -9, a bad token, a full disk;
and what the collector says about them: its log, `templog health` and `templog check`."""

import random
import re
import subprocess
import threading
import time
from itertools import pairwise

import pytest

from cli import start_run, stop_run, templog, wait_until
from collector.config import InfluxConfig
from collector.delivery import PROBE_EVERY_S, Backoff, Sender
from collector.influx import InfluxV1
from collector.outbox import Outbox
from collector.stats import Stats
from servers import Influxd1, VictoriaMetrics
from temperature_points import temperature

S = 1_000_000_000


def outbox_depth(path) -> int:
    return Outbox(str(path)).depth if path.exists() else 0


def temperature_points(outbox_path) -> dict[tuple[str, int], float]:
    """(sensor, time) -> celsius of the temperature points waiting in an outbox."""
    found = {}
    for pending in Outbox(str(outbox_path)).oldest(10**7):
        if pending.line.startswith("temperature,"):
            key, field, stamp = pending.line.rsplit(" ", 2)
            sensor = key.rsplit("sensor=", 1)[1].split(",")[0]
            found[(sensor, int(stamp))] = float(field.split("=")[1])
    return found


def influx_points(server, database) -> dict[tuple[str, int], float]:
    result = server.query('SELECT "celsius", "sensor" FROM "temperature"', db=database)["results"][0]
    return {(row[2], row[0]): row[1] for s in result.get("series", []) for row in s["values"]}


def assert_every_tick(times: list[int], interval_ns: int) -> None:
    """No gap and no duplicate: consecutive ticks from the first to the last."""
    assert times == list(range(times[0], times[-1] + interval_ns, interval_ns))


@pytest.fixture
def own_influxd(tmp_path):
    """An influxd of this test's own, to stop and start at will."""
    server = Influxd1.start(tmp_path / "influxd")
    yield server
    server.stop()


def v1_config(write_config, url, sensors=2, interval="500ms", extra=""):
    entries = "".join(f"\n  - {{name: s{i}, type: simulated, seed: {i}}}" for i in range(sensors))
    return write_config(f"""
influxdb: {{url: "{url}", api: v1, bucket: db, retention: 0, timeout: 2s}}
collector: {{interval: {interval}{extra}}}
sensors:{entries}
""")


def test_outage_at_start_and_mid_run_leaves_no_gap_and_no_duplicate(write_config, tmp_path, own_influxd):
    own_influxd.stop()  # down when run starts
    outbox_path = tmp_path / "data/outbox.sqlite"
    running = start_run(v1_config(write_config, own_influxd.url))
    wait_until(lambda: outbox_depth(outbox_path) >= 6, what="a backlog while InfluxDB is down")
    own_influxd.restart()
    wait_until(lambda: "delivery resumed" in running.log, what="delivery to resume")
    own_influxd.stop()  # down again mid-run
    wait_until(lambda: outbox_depth(outbox_path) >= 6, what="a second backlog")
    own_influxd.restart()
    wait_until(lambda: running.log.count("delivery resumed") == 2, what="delivery to resume again")
    wait_until(lambda: running.log.count("delivered a backlog") == 2, what="the second backlog delivered")
    code, log = stop_run(running)
    assert code == 0, log
    stored = influx_points(own_influxd, "db")
    for sensor in ("s0", "s1"):
        assert_every_tick(sorted(t for s, t in stored if s == sensor), S // 2)
    assert "stopped; 0 point(s) wait in the outbox" in log
    # one line per delivered backlog: how many points, waiting since when
    backlogs = re.findall(r"delivered a backlog of (\d+) point\(s\), waiting since (\S+Z)\n", log)
    assert len(backlogs) == 2 and all(int(n) >= 6 for n, _ in backlogs), log


def test_delivery_resumes_within_10s_of_influxdb_answering_however_long_the_backoff(tmp_path, own_influxd,
                                                                                   monkeypatch):
    """A backoff grown to two minutes, as after a long outage (its cap; base 120 s takes it there at once): the
    probe between writes notices InfluxDB answering again, and the backlog goes within seconds, not minutes."""
    outbox = Outbox(str(tmp_path / "outbox.sqlite"))
    base = time.time_ns() // S * S - 1000 * S
    outbox.append([temperature("backlog", base + i * S, 20.5) for i in range(1000)])
    own_influxd.stop()
    writer = InfluxV1(InfluxConfig(url=own_influxd.url, api="v1", bucket="db", retention=0, timeout=2.0,
                                   batch_size=100))
    probes: list[float] = []
    probe = writer.probe

    def timed_probe(timeout: float) -> bool:
        probes.append(time.monotonic())
        return probe(timeout)

    monkeypatch.setattr(writer, "probe", timed_probe)
    stats = Stats()
    sender = Sender(outbox, writer, 100, stats, Backoff(base=120, cap=120, rng=lambda: 1.0))
    stop = threading.Event()
    thread = threading.Thread(target=sender.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(probes) >= 2, what="probes while InfluxDB is down")
        assert stats.get("write_failures_network") == 1  # one write, then only probes: no hammering
        own_influxd.restart()  # returns once influxd answers /ping
        wait_until(lambda: outbox.depth == 0, timeout=10,
                   what="the backlog delivered within 10 s of InfluxDB answering")
    finally:
        stop.set()
        thread.join(10)
    assert all(later - earlier >= PROBE_EVERY_S for earlier, later in pairwise(probes))  # every few seconds
    count = own_influxd.query('SELECT count("celsius") FROM "temperature"', db="db")["results"][0]["series"][0]
    assert count["values"][0][1] == 1000


def test_outage_of_a_v2_write_endpoint_drains_the_backlog_oldest_first(write_config, tmp_path):
    server = VictoriaMetrics.start(tmp_path / "vm")
    try:
        config = write_config(f"""
influxdb: {{url: "{server.url}", api: v2, org: home, bucket: b, timeout: 2s, retention: 30d}}
collector: {{interval: 500ms}}
sensors:
  - {{name: s0, type: simulated}}
""")
        outbox_path = tmp_path / "data/outbox.sqlite"
        running = start_run(config)
        wait_until(lambda: "retention not managed" in running.log, what="the first delivery")
        server.stop()
        wait_until(lambda: outbox_depth(outbox_path) >= 8, what="a backlog while the server is down")
        server.restart()
        wait_until(lambda: "delivery resumed" in running.log, what="delivery to resume")
        code, log = stop_run(running)
        assert code == 0, log
        [series] = server.export('{__name__="temperature_celsius", sensor="s0"}')
        assert_every_tick([t * 1_000_000 for t in series["timestamps"]], S // 2)
    finally:
        server.stop()


def test_kill_9_at_random_moments_loses_nothing_that_was_committed(write_config, tmp_path, own_influxd):
    """Kill the collector many times, half of them while InfluxDB is down; every point ever seen committed in the
    outbox must end up in InfluxDB with the value it was committed with."""
    rng = random.Random(20261127)
    config = v1_config(write_config, own_influxd.url, sensors=3, interval="200ms")
    outbox_path = tmp_path / "data/outbox.sqlite"
    committed: dict[tuple[str, int], float] = {}
    for round_ in range(10):
        if round_ % 2:
            own_influxd.stop()
        else:
            own_influxd.restart()
        running = start_run(config)
        # once it is collecting (start-up time varies with the machine's load), a random moment: the point of
        # this test, not a synchronisation
        def collecting(run=running):
            return "collecting" in run.log

        wait_until(collecting, what="the collector to start")
        time.sleep(rng.uniform(0.3, 1.5))
        running.kill()
        for key, value in temperature_points(outbox_path).items():
            assert committed.setdefault(key, value) == value  # never the same tick with another value
    own_influxd.restart()
    running = start_run(config)
    wait_until(lambda: outbox_depth(outbox_path) == 0, what="the final drain")
    code, log = stop_run(running)
    assert code == 0, log
    stored = influx_points(own_influxd, "db")
    assert len(committed) > 30
    missing = {key for key in committed if key not in stored}
    assert not missing
    assert all(stored[key] == value for key, value in committed.items())


def test_kill_9_during_a_drain_loses_nothing(write_config, tmp_path, own_influxd):
    config = v1_config(write_config, own_influxd.url, sensors=1, interval="1h")
    config.write_text(config.read_text().replace("timeout: 2s", "timeout: 2s, batch_size: 500"))
    outbox_path = tmp_path / "data/outbox.sqlite"
    outbox = Outbox(str(outbox_path))
    base = time.time_ns() // S * S - 50_000 * S
    outbox.append([temperature("backlog", base + i * S, i % 100 + 0.5) for i in range(50_000)])
    del outbox
    running = start_run(config)
    wait_until(lambda: 0 < outbox_depth(outbox_path) < 45_000, what="a drain under way")
    running.kill()
    assert outbox_depth(outbox_path) > 0
    running = start_run(config)
    wait_until(lambda: outbox_depth(outbox_path) == 0, timeout=60, what="the drain to finish")
    code, log = stop_run(running)
    assert code == 0, log
    count = own_influxd.query('SELECT count("celsius") FROM "temperature" WHERE "sensor" = \'backlog\'', db="db")
    assert count["results"][0]["series"][0]["values"][0][1] == 50_000


def test_a_bad_token_is_one_error_line_and_a_fixed_token_file_resumes_without_restart(write_config, tmp_path,
                                                                                      fake_influxdb2):
    token_file = tmp_path / "token"
    token_file.write_text("wrong-s3cret\n")
    config = write_config(f"""
influxdb: {{url: "{fake_influxdb2.url}", api: v2, org: home, bucket: temperature, token_file: token, retention: 30d}}
collector: {{interval: 500ms}}
sensors:
  - {{name: s0, type: simulated}}
""")
    outbox_path = tmp_path / "data/outbox.sqlite"
    running = start_run(config)
    wait_until(lambda: outbox_depth(outbox_path) >= 10, what="readings collected while unauthorised")
    token_file.write_text("test-token\n")
    wait_until(lambda: fake_influxdb2.bucket("temperature") and len(fake_influxdb2.points("temperature")) >= 10,
               what="delivery with the fixed token")
    code, log = stop_run(running)
    assert code == 0, log
    assert log.count("delivery to InfluxDB failed") == 1, log  # one line for the episode, however many retries
    assert "delivery resumed" in log
    assert "wrong-s3cret" not in log and "test-token" not in log


def test_a_full_disk_keeps_readings_in_memory_and_saves_them_when_it_recovers(write_config, tmp_path):
    config = write_config("collector: {interval: 200ms}\nsensors:\n  - {name: s0, type: simulated}\n")
    outbox_path = tmp_path / "data/outbox.sqlite"
    running = start_run(config)
    wait_until(lambda: outbox_depth(outbox_path) >= 3, what="first readings")
    biggest = max(p.stat().st_size for p in outbox_path.parent.iterdir())
    # soft limit: no file may grow
    subprocess.run(["prlimit", f"--pid={running.pid}", f"--fsize={biggest}:unlimited"], check=True)
    wait_until(lambda: "cannot write the outbox" in running.log, what="the outbox write failure")
    failed_at = running.log.count("°C at")
    wait_until(lambda: running.log.count("°C at") >= failed_at + 5, what="readings going on while the disk is full")
    subprocess.run(["prlimit", f"--pid={running.pid}", "--fsize=unlimited:unlimited"], check=True)
    wait_until(lambda: "the outbox is writable again" in running.log, what="recovery")
    code, log = stop_run(running)
    assert code == 0, log
    assert log.count("cannot write the outbox") == 1
    times = sorted(t for _, t in temperature_points(outbox_path))
    assert_every_tick(times, S // 5)


def test_health_measurement_reaches_influxdb_and_health_command_reflects_delivery(write_config, tmp_path, own_influxd):
    config = v1_config(write_config, own_influxd.url, sensors=1, extra=", health_interval: 1s")
    running = start_run(config)
    def reads_reported():
        result = own_influxd.query('SELECT max("reads_ok") FROM "templog" WHERE "sensor" = \'s0\'',
                                   db="db")["results"][0]
        return result.get("series") and result["series"][0]["values"][0][1] >= 1

    wait_until(reads_reported, what="health points reporting reads in InfluxDB")
    assert templog("health", "-c", str(config)).returncode == 0
    own_influxd.stop()
    wait_until(lambda: "delivery to InfluxDB failed" in running.log, what="a delivery failure")
    check = templog("check", "-c", str(config))
    assert check.returncode == 1
    assert "point(s) waiting" in check.stdout and "last delivery error at" in check.stdout
    wait_until(lambda: Outbox(str(tmp_path / "data/outbox.sqlite")).depth > 0, what="points waiting")
    health = templog("health", "-c", str(config))
    assert "draining" not in health.stdout and "delivery failing for" in health.stdout, health.stdout
    own_influxd.restart()
    wait_until(lambda: "delivered a backlog" in running.log, what="the backlog delivered")
    check = templog("check", "-c", str(config))
    assert check.returncode == 0, check.stdout
    assert "last delivery error" not in check.stdout  # resolved: not shown as if it were current
    code, log = stop_run(running)
    assert code == 0
    health = templog("health", "-c", str(config))
    assert health.returncode == 1 and "the collector stopped" in health.stdout  # at once, not 60 s later
    series = own_influxd.query('SELECT * FROM "templog" WHERE "sensor" = \'s0\'', db="db")["results"][0]["series"][0]
    rows = [dict(zip(series["columns"], values, strict=True)) for values in series["values"]]
    assert max(row["reads_ok"] for row in rows) >= 1 and all(row["reads_failed"] == 0 for row in rows)
    assert any(row["read_latency_ms_mean"] is not None and row["read_latency_ms_mean"] >= 0 for row in rows)
    totals = own_influxd.query('SELECT * FROM "templog" WHERE "sensor" = \'\'', db="db")["results"][0]["series"][0]
    assert {"outbox_depth", "outbox_oldest_age_s", "points_delivered", "write_failures"} <= set(totals["columns"])


def test_a_long_drain_records_each_delivery_so_health_sees_it_progress(write_config, tmp_path, own_influxd):
    config = v1_config(write_config, own_influxd.url, sensors=1, interval="1h")
    config.write_text(config.read_text().replace("timeout: 2s", "timeout: 2s, batch_size: 100"))
    outbox_path = tmp_path / "data/outbox.sqlite"
    base = time.time_ns() // S * S - 50_000 * S
    Outbox(str(outbox_path)).append([temperature("backlog", base + i * S, 1.5)
                                     for i in range(50_000)])
    running = start_run(config)

    def recorded_mid_drain():
        outbox = Outbox(str(outbox_path))
        return outbox.depth > 0 and outbox.state().get("last_delivery_ns")

    wait_until(recorded_mid_drain, what="last_delivery_ns recorded while the drain goes on")
    code, log = stop_run(running)
    assert code == 0, log


def test_a_sensor_failing_every_tick_logs_one_line_under_quiet(write_config, tmp_path):
    config = write_config(f"""
collector: {{interval: 100ms}}
sensors:
  - {{name: good, type: simulated}}
  - {{name: gone, type: file, path: {tmp_path / "missing"}}}
""")
    outbox_path = tmp_path / "data/outbox.sqlite"
    running = start_run(config, args=("-q",))
    wait_until(lambda: outbox_depth(outbox_path) >= 30, what="30 ticks")
    code, log = stop_run(running)
    assert code == 0, log
    assert log.count("gone: read failed") == 1, log


def test_an_outbox_at_its_bound_logs_once_not_every_tick(write_config, tmp_path):
    config = write_config("collector: {interval: 100ms, max_points: 5}\nsensors:\n  - {name: s0, type: simulated}\n")
    running = start_run(config)
    wait_until(lambda: running.log.count("°C at") >= 30, what="30 readings")
    code, log = stop_run(running)
    assert code == 0, log
    assert log.count("outbox bound reached") == 1, log
