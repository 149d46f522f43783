"""`templog history --field celsius|humidity|dewpoint` (issue 12, item 6): humidity and dew point written by a real
`templog run`, back from every source (the outbox, InfluxQL on a real influxd 1.x, Flux on FakeInfluxDB2, SQL on
FakeInfluxDB3) as the same rows; an outbox of the version before the humidity column, read by history and then
written to by run; and `--field` values that are no field."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli import start_run, stop_run, templog, wait_until
from collector import cli
from collector.lineprotocol import READING_FIELDS
from collector.query import HistoryQuery, flux, influxql
from collector.ticks import rfc3339
from history_check import windows

S = 1_000_000_000
SENSORS = ("sensors:\n"
           "  - {name: greenhouse, type: simulated, humidity: 50}\n"
           "  - {name: cellar, type: simulated, humidity: 80, seed: 3}\n"
           "  - {name: desk, type: simulated, seed: 2}\n")  # temperature only: no humidity, no dew point
READINGS_PER_SENSOR = 12  # at 200 ms: the run takes a few seconds, and 1 s windows hold several readings


def rows(path: Path, sql: str) -> list[tuple]:
    """What the file holds, through a connection of the test's own (read-only: it changes nothing)."""
    with contextlib.closing(sqlite3.connect(path.absolute().as_uri() + "?mode=ro", uri=True)) as db:
        return db.execute(sql).fetchall()


def written_fields(outbox: Path) -> dict[str, list[tuple[int, str, float]]]:
    """Per field, the (time_ns, sensor, value) the run wrote, read from the line protocol of its points (what
    InfluxDB is sent), in time order then sensor."""
    found: dict[str, list[tuple[int, str, float]]] = {field: [] for field in READING_FIELDS}
    for (line,) in rows(outbox, "SELECT line FROM points WHERE line LIKE 'temperature,%'"):
        series, fields, time_ns = line.split(" ")
        sensor = dict(tag.split("=") for tag in series.split(",")[1:])["sensor"]
        for pair in fields.split(","):
            name, value = pair.split("=")
            found[name].append((int(time_ns), sensor, float(value)))
    return {field: sorted(values) for field, values in found.items()}


def history(config: Path, start_ns: int, stop_ns: int, *args: str) -> list[dict]:
    done = templog("history", "-c", str(config), "--start", rfc3339(start_ns), "--stop", rfc3339(stop_ns),
                   "--format", "json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def readings_with_humidity(outbox: Path, sensor: str) -> int:
    """How many of `sensor`'s points in the outbox carry a humidity (0 while the run has not made its tables)."""
    sql = f"SELECT count(*) FROM points WHERE line LIKE 'temperature,%sensor={sensor} %humidity=%'"
    try:
        return rows(outbox, sql)[0][0]
    except sqlite3.OperationalError:  # no file, or no table yet
        return 0


def collect(config: Path, outbox: Path, enough) -> str:
    """`templog run` until `enough()` holds, then SIGTERM: exit 0, and no error logged; its log."""
    running = start_run(config)
    try:
        wait_until(enough, what="the run's readings")
    except AssertionError as timed_out:  # what the run said is what tells why
        raise AssertionError(f"{timed_out}; its log:\n{stop_run(running)[1]}") from None
    code, log = stop_run(running)
    assert code == 0 and " ERROR " not in log, log
    return log


def copy_outbox(source: Path, destination: Path) -> None:
    with contextlib.closing(sqlite3.connect(source)) as src, contextlib.closing(sqlite3.connect(destination)) as dst:
        src.backup(dst)


def test_humidity_and_dew_point_from_a_real_run_come_back_as_the_same_rows_from_every_source(
        write_config, tmp_path, influxd, database, fake_influxdb2, fake_influxdb3):
    """A run without InfluxDB keeps its readings in its outbox; copies of that outbox are delivered by a run to a
    real influxd 1.x (api v1), by another to FakeInfluxDB2 (api v2) and by a third to FakeInfluxDB3 (api v3, SQL
    executed by DataFusion). `history --field` then gives, from each,
    the values the points carry: temperature for all three sensors, humidity and dew point only for the two that
    measure humidity, raw and per 1 s window."""
    collected = tmp_path / "collected.sqlite"
    outbox_config = write_config(f"collector: {{interval: 200ms, outbox: {collected}}}\n" + SENSORS, "outbox.yaml")
    collect(outbox_config, collected, lambda: readings_with_humidity(collected, "cellar") >= READINGS_PER_SENSOR)
    fields = written_fields(collected)
    # to the run's last tick, which `--stop` takes to the microsecond; the later runs' ticks come after it
    start_ns, stop_ns = fields["celsius"][0][0], fields["celsius"][-1][0] + 1000
    assert {s for _, s, _ in fields["celsius"]} == {"greenhouse", "cellar", "desk"}
    assert {s for _, s, _ in fields["humidity"]} == {s for _, s, _ in fields["dewpoint"]} == {"greenhouse", "cellar"}

    v1_outbox, v2_outbox, v3_outbox = tmp_path / "v1.sqlite", tmp_path / "v2.sqlite", tmp_path / "v3.sqlite"
    for copy in (v1_outbox, v2_outbox, v3_outbox):
        copy_outbox(collected, copy)
    v1_config = write_config(f'influxdb: {{url: "{influxd.url}", api: v1, bucket: {database}, retention: 0}}\n'
                             f"collector: {{interval: 200ms, outbox: {v1_outbox}}}\n" + SENSORS, "v1.yaml")
    count = f'SELECT count("celsius") FROM "temperature" WHERE time < {stop_ns}'

    def delivered_to_influxd() -> bool:  # the whole backlog: every point carries celsius
        series = influxd.query(count, db=database)["results"][0].get("series", [])
        return bool(series) and series[0]["values"][0][1] == len(fields["celsius"])

    collect(v1_config, v1_outbox, delivered_to_influxd)
    fake_influxdb2.add_bucket("temperature")
    v2_config = write_config(f'influxdb: {{url: "{fake_influxdb2.url}", api: v2, org: home, bucket: temperature, '
                             f"token: test-token}}\ncollector: {{interval: 200ms, outbox: {v2_outbox}}}\n" + SENSORS,
                             "v2.yaml")
    # the bucket also holds measurement `templog`: a run that crossed a whole minute wrote its health point there
    collect(v2_config, v2_outbox, lambda: sum(p["measurement"] == "temperature" and p["time_ns"] < stop_ns
                                              for p in fake_influxdb2.points("temperature")) == len(fields["celsius"]))
    v3_config = write_config(f'influxdb: {{url: "{fake_influxdb3.url}", api: v3, bucket: temperature, '
                             f"token: test-token}}\ncollector: {{interval: 200ms, outbox: {v3_outbox}}}\n" + SENSORS,
                             "v3.yaml")
    collect(v3_config, v3_outbox, lambda: sum(p["time"] < stop_ns for p in fake_influxdb3.points())
            == len(fields["celsius"]))

    for field, values in fields.items():
        raw = [{"time": rfc3339(t), "sensor": sensor, field: value} for t, sensor, value in values]
        per_second = windows(values, S)
        for config in (outbox_config, v1_config, v2_config, v3_config):
            assert history(config, start_ns, stop_ns, "--field", field) == raw, (field, config.name)
            assert history(config, start_ns, stop_ns, "--field", field, "--every", "1s") == per_second, \
                (field, config.name)


# main's schema before the humidity column (d95d80c:collector/outbox.py _TABLES), as an outbox of that version has it
SCHEMA_WITHOUT_HUMIDITY = """
CREATE TABLE points (id INTEGER PRIMARY KEY, sensor TEXT, time_ns INTEGER NOT NULL, celsius REAL, line TEXT NOT NULL);
CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE rejected (id INTEGER PRIMARY KEY, line TEXT NOT NULL, reason TEXT NOT NULL,
                       rejected_at_ns INTEGER NOT NULL);
"""
OLD_BASE_NS = 1_764_000_000 * S


def outbox_without_humidity(path: Path) -> list[dict]:
    """An outbox as the version before leaves it: 1 KiB pages, WAL, five temperature readings of `desk` waiting.
    Returns them as `history --format json` prints them."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA page_size=1024")
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(SCHEMA_WITHOUT_HUMIDITY)
    readings = [(OLD_BASE_NS + i * S, 20.0 + i / 4) for i in range(5)]
    db.executemany("INSERT INTO points (id, sensor, time_ns, celsius, line) VALUES (?, 'desk', ?, ?, ?)",
                   [(i + 1, t, c, f"temperature,host=h,sensor=desk celsius={c} {t}") for i, (t, c) in
                    enumerate(readings)])
    db.execute("INSERT INTO state VALUES ('last_id', '5')")
    db.close()
    return [{"time": rfc3339(t), "sensor": "desk", "celsius": c} for t, c in readings]


def file_state(path: Path) -> tuple[str, int]:
    """The outbox file's bytes (hashed) and what its WAL holds (a read-only connection may leave an empty one: SQLite's
    WAL index needs it, and it holds no change)."""
    wal = path.with_name(path.name + "-wal")
    return hashlib.sha256(path.read_bytes()).hexdigest(), wal.stat().st_size if wal.exists() else 0


def test_an_outbox_without_the_humidity_column_is_read_unchanged_by_history_then_written_to_by_run(write_config,
                                                                                                  tmp_path):
    outbox = tmp_path / "data/outbox.sqlite"
    outbox.parent.mkdir()
    old = outbox_without_humidity(outbox)
    config = write_config("collector: {interval: 200ms, outbox: data/outbox.sqlite}\n" + SENSORS)
    everything = (OLD_BASE_NS, 2**62)
    before = file_state(outbox)
    assert history(config, *everything) == old
    assert history(config, *everything, "--field", "humidity") == []
    assert history(config, *everything, "--field", "dewpoint", "--every", "1m") == []
    assert file_state(outbox) == before  # history never modifies the outbox, an older one included

    collect(config, outbox, lambda: readings_with_humidity(outbox, "greenhouse") >= 3)
    fields = written_fields(outbox)
    temperatures = history(config, *everything)
    assert temperatures[:len(old)] == old  # the older version's readings are still there, first
    assert temperatures == [{"time": rfc3339(t), "sensor": s, "celsius": v} for t, s, v in fields["celsius"]]
    assert {row["sensor"] for row in temperatures[len(old):]} == {"greenhouse", "cellar", "desk"}
    for field in ("humidity", "dewpoint"):
        assert history(config, *everything, "--field", field) == [
            {"time": rfc3339(t), "sensor": s, field: v} for t, s, v in fields[field]]
        assert {row["sensor"] for row in history(config, *everything, "--field", field)} == {"greenhouse", "cellar"}


KILLED_IN_THE_MIGRATION = """
import os, signal, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
db.execute("ALTER TABLE points ADD COLUMN humidity REAL")  # as Outbox does on opening an older file
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_kill_while_the_column_is_added_leaves_an_outbox_that_opens_and_loses_nothing(write_config, tmp_path):
    """SIGKILL inside the transaction that adds the column: the file is the older one still (the transaction never
    committed), history reads it, and the next run adds the column, keeps the waiting readings and adds its own."""
    outbox = tmp_path / "data/outbox.sqlite"
    outbox.parent.mkdir()
    old = outbox_without_humidity(outbox)
    killed = subprocess.run([sys.executable, "-c", KILLED_IN_THE_MIGRATION, str(outbox)], timeout=60)
    assert killed.returncode == -signal.SIGKILL
    assert "humidity" not in {row[1] for row in rows(outbox, "PRAGMA table_info(points)")}
    config = write_config("collector: {interval: 200ms, outbox: data/outbox.sqlite}\n" + SENSORS)
    everything = (OLD_BASE_NS, 2**62)
    assert history(config, *everything) == old
    collect(config, outbox, lambda: readings_with_humidity(outbox, "cellar") >= 3)
    assert history(config, *everything)[:len(old)] == old
    assert [row["sensor"] for row in history(config, *everything, "--field", "humidity")].count("cellar") >= 3


HOSTILE_FIELDS = ["Celsius", "humidity ", "", "temperature", 'celsius") |> drop(columns: ["_value"]', "\x1b[31mred",
                  "celsius\nhumidity", "mean", "_value", "humidity'; DROP TABLE points; --"]


def test_a_field_that_is_not_one_is_a_usage_error_naming_the_choices_and_queries_nothing(write_config,
                                                                                         fake_influxdb2):
    config = write_config(f'influxdb: {{url: "{fake_influxdb2.url}", api: v2, org: home, bucket: temperature, '
                          "token: test-token}\n" + SENSORS)
    for value in HOSTILE_FIELDS:
        done = templog("history", "-c", str(config), f"--field={value}")
        assert done.returncode == 2 and done.stdout == "", value
        assert f"templog history: error: argument --field: invalid choice: {value!r} (choose from 'celsius', " \
               "'humidity', 'dewpoint')" in done.stderr, (value, done.stderr)
        assert "Traceback" not in done.stderr and "\x1b" not in done.stderr
    assert fake_influxdb2.queries == []


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_field_value_is_a_field_or_a_clear_refusal(value):
    """Parsed in-process (argparse, as the command parses it): a field's name gives a query of that field; anything
    else exits 2 with argparse's one line, never a traceback."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            args = cli._parser().parse_args(["history", f"--field={value}"])
        except SystemExit as exit_:
            assert exit_.code == 2 and value not in READING_FIELDS
            assert "argument --field: invalid choice: " in err.getvalue()
            return
    assert value in READING_FIELDS
    assert cli.history_query(args, 3600 * S).field == value


def test_the_field_is_in_each_dialect_s_text_and_in_nothing_else():
    for field in READING_FIELDS:
        raw, windowed = HistoryQuery(0, 10, ("a",), field=field), HistoryQuery(0, 10, (), 60, field)
        assert raw.columns == (field,) and windowed.columns == ("mean", "min", "max")
        assert influxql.history(raw).startswith(f'SELECT "{field}", "sensor" FROM "temperature" WHERE ')
        assert f'mean("{field}") AS "mean", min("{field}") AS "min", max("{field}") AS "max"' in \
            influxql.history(windowed)
        for query in (raw, windowed):
            assert f'r._measurement == "temperature" and r._field == "{field}"' in flux.history(query)
    with pytest.raises(ValueError, match="no field 'mean' in a reading"):
        HistoryQuery(0, 10, field="mean")
    assert cli.HISTORY_FIELDS == READING_FIELDS  # the parser's choices, written out there so --help imports less
