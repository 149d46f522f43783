"""api v1 against a real InfluxDB 1.x server (Debian's influxd), started on a free loopback port."""

import time
from pathlib import Path

from cli import start_run, stop_run, templog, wait_until
from collector.config import load_config
from collector.delivery import Sender
from collector.influx import InfluxV1
from collector.outbox import Outbox
from collector.stats import Stats
from history_check import assert_history_returns_what_was_written, lines_at
from temperature_points import temperature

S = 1_000_000_000


def v1_config(write_config, influxd, database, retention="2h", sensors=None, extra=""):
    sensors = sensors or """
  - {name: "desk lamp", type: simulated, interval: 1s, tags: {room: "office, 2nd"}}
  - {name: shed, type: simulated, interval: 2s, base: 8}"""
    return write_config(f"""
influxdb: {{url: "{influxd.url}", api: v1, bucket: {database}, retention: {retention}}}
collector: {{tags: {{site: lab}}}}
sensors:{sensors}
{extra}""")


def v1_client(config: Path) -> InfluxV1:
    """The api v1 client for a config file's influxdb section."""
    influx = load_config(config, environ={}).influxdb
    assert influx is not None, f"{config.name} has an influxdb section"
    return InfluxV1(influx)


def points(influxd, database):
    result = influxd.query('SELECT * FROM "temperature"', db=database)["results"][0]
    series = result.get("series", [])
    return [dict(zip(s["columns"], row, strict=True)) for s in series for row in s["values"]]


def test_run_writes_aligned_points_with_measurement_field_and_tags(write_config, influxd, database):
    config = v1_config(write_config, influxd, database)
    process = start_run(config)
    wait_until(lambda: len([p for p in points(influxd, database) if p["sensor"] == "shed"]) >= 2,
               what="points from both sensors in InfluxDB")
    code, stderr = stop_run(process)
    assert code == 0, stderr
    rows = points(influxd, database)
    desk = [p for p in rows if p["sensor"] == "desk lamp"]
    shed = [p for p in rows if p["sensor"] == "shed"]
    assert len(desk) >= 3
    assert all(p["time"] % S == 0 for p in desk) and all(p["time"] % (2 * S) == 0 for p in shed)
    assert all(15 < p["celsius"] < 27 for p in desk)  # (influxd's JSON prints a float 21.0 as 21: type below)
    field_keys = influxd.query('SHOW FIELD KEYS FROM "temperature"', db=database)["results"][0]["series"][0]["values"]
    assert ["celsius", "float"] in field_keys
    assert {p["room"] for p in desk} == {"office, 2nd"} and {p["site"] for p in rows} == {"lab"}
    assert len({p["host"] for p in rows}) == 1 and rows[0]["host"]
    assert "stopped; 0 point(s) wait in the outbox" in stderr  # everything read was delivered
    policies = influxd.query(f'SHOW RETENTION POLICIES ON "{database}"')["results"][0]["series"][0]["values"]
    assert [p for p in policies if p[-1]][0][1] == "2h0m0s"  # the default policy has the configured retention


def test_retention_policy_is_created_then_updated(write_config, influxd, database):
    def default_policy():
        series = influxd.query(f'SHOW RETENTION POLICIES ON "{database}"')["results"][0]["series"][0]
        return next(dict(zip(series["columns"], row, strict=True)) for row in series["values"] if row[-1])

    first = v1_client(v1_config(write_config, influxd, database, retention="30d"))
    assert first.ensure_retention() == f"created database {database} with retention 30d"
    assert default_policy()["duration"] == "720h0m0s"
    assert first.problems() == []
    forever = v1_client(v1_config(write_config, influxd, database, retention="0"))
    assert forever.problems() == [f"database {database!r}: retention policy autogen is 30d, config says forever "
                                  "(templog run applies it)"]
    assert forever.ensure_retention() == f"database {database}: retention policy autogen changed from 30d to forever"
    assert default_policy()["duration"] == "0s"
    assert forever.ensure_retention() == f"database {database}: retention policy autogen already forever"
    shorter = v1_client(v1_config(write_config, influxd, database, retention="2h"))
    assert shorter.problems() == [f"database {database!r}: retention policy autogen is forever, config says 2h "
                                  "(templog "
                                  "run applies it; then InfluxDB will delete the points older than 2h, of every "
                                  f"measurement in database {database})"]


def test_history_returns_exactly_what_was_written(write_config, influxd, database):
    config = v1_config(write_config, influxd, database)
    base = (time.time_ns() - 3600 * S) // (60 * S) * (60 * S)  # inside the 2h retention, on a minute
    client = v1_client(config)
    client.ensure_retention()
    client.write(lines_at(base))
    assert_history_returns_what_was_written(config, base)


def test_check_reports_each_problem_and_passes_when_all_is_well(write_config, influxd, database):
    config = v1_config(write_config, influxd, database)
    done = templog("check", "-c", str(config))
    assert done.returncode == 1
    assert f"problem: database '{database}' does not exist" in done.stdout
    v1_client(config).ensure_retention()
    done = templog("check", "-c", str(config))
    assert done.returncode == 0, done.stdout
    assert "InfluxDB at" in done.stdout and "ready" in done.stdout
    broken = v1_config(write_config, influxd, database, sensors="\n  - {name: x, type: file, path: /nonexistent}")
    done = templog("check", "-c", str(broken))
    assert done.returncode == 1
    assert done.stdout.splitlines() == ["problem: sensor x: /nonexistent does not exist"]


def test_unreachable_influxdb_keeps_readings_in_the_outbox(write_config, tmp_path):
    config = write_config("""
influxdb: {url: "http://127.0.0.1:9", api: v1, bucket: nowhere}
sensors:
  - {name: a, type: simulated, interval: 1s}
""")
    process = start_run(config)
    wait_until(lambda: (tmp_path / "data/outbox.sqlite").exists(), what="the outbox file")

    def readings_waiting() -> int:  # not the health points, which come at once at a minute's tick
        waiting = Outbox(str(tmp_path / "data/outbox.sqlite")).oldest(100)
        return sum(line.startswith("temperature,") for _, line in waiting)

    wait_until(lambda: readings_waiting() >= 2, what="two ticks' readings in the outbox")
    code, stderr = stop_run(process)
    assert code == 0
    assert stderr.count("delivery to InfluxDB failed") == 1  # reported once per episode, not per retry
    assert "point(s) wait in the outbox" in stderr


def test_a_backlog_older_than_the_retention_drains_and_keeps_the_rest(write_config, influxd, database, tmp_path):
    client = v1_client(v1_config(write_config, influxd, database))
    client.ensure_retention()
    outbox = Outbox(str(tmp_path / "o.sqlite"))
    fresh = time.time_ns() // S * S
    outbox.append([temperature("old", fresh - 5 * 3600 * S, 1.0), temperature("new", fresh, 2.0)])
    Sender(outbox, client, 100, Stats()).drain()
    assert outbox.depth == 0
    assert [(p["sensor"], p["celsius"]) for p in points(influxd, database)] == [("new", 2.0)]
