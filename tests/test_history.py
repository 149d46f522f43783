"""`templog history`: the queries, the streamed renderers, and the command against each source (api v1 on a real
influxd, api v2 on FakeInfluxDB2, the outbox) as a real process."""

import csv
import io
import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli import ROOT, templog
from collector.config import load_config
from collector.history import aggregate, write
from collector.influx import InfluxV2
from collector.influx.errors import QueryFailed
from collector.influx.v1 import sensors_in_order, series_of_chunks
from collector.influx.v2 import rows_of_annotated_csv
from collector.outbox import Outbox
from collector.query import LAST_STOP_NS, HistoryQuery, flux, influxql
from collector.ticks import parse_rfc3339_ns, rfc3339
from history_check import (
    HOSTILE_NAME,
    SENSORS,
    assert_history_returns_what_was_written,
    windows,
    written,
)
from temperature_points import temperature

S = 1_000_000_000
# any name the config accepts: it refuses line breaks, tabs and backslashes (collector/lineprotocol.py text_problem)
SENSOR_NAMES = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\r\n\t\\"),
                       min_size=1, max_size=12)


def rendered(rows, columns=("celsius",), fmt="json") -> str:
    out = io.StringIO()
    assert write(rows, columns, fmt, out) == len(rows)
    return out.getvalue()


def test_aggregate_windows_start_on_the_epoch_grid():
    rows = [(t * S, s, v) for t, s, v in
            [(0, "a", 20.0), (10, "b", 5.0), (30, "a", 22.0), (59, "a", 21.0), (60, "a", 25.0)]]
    assert list(aggregate(rows, 60 * S)) == [(0, "a", 21.0, 20.0, 22.0), (0, "b", 5.0, 5.0, 5.0),
                                                 (60 * S, "a", 25.0, 25.0, 25.0)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**12), st.sampled_from("abc"), st.integers(-400, 400)), max_size=60),
       st.integers(1, 10**11))
def test_aggregate_of_time_ordered_readings_equals_grouping_them_all(points, every_ns):
    rows = [(t, s, v / 4) for t, s, v in sorted(points)]
    groups: dict = {}
    for t, s, v in rows:
        groups.setdefault((t // every_ns * every_ns, s), []).append(v)
    assert list(aggregate(rows, every_ns)) == [(t, s, sum(v) / len(v), min(v), max(v))
                                                   for (t, s), v in sorted(groups.items())]


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.tuples(st.integers(0, 50), SENSOR_NAMES), st.floats(-100, 100), max_size=40), st.randoms())
def test_equal_times_come_out_sorted_by_sensor_whatever_order_they_arrive_in(rows, random):
    arrived = sorted((t, s, v) for (t, s), v in rows.items())
    for t in {t for t, _, _ in arrived}:  # shuffle each run of equal times, as influxd's series-key order does
        run = [row for row in arrived if row[0] == t]
        random.shuffle(run)
        arrived = [row for row in arrived if row[0] != t] + run
    arrived.sort(key=lambda row: row[0])  # stable: keeps each run's shuffled order
    assert list(sensors_in_order(arrived)) == sorted(arrived)


def test_render_json_csv_and_table_shapes():
    rows = [(1_764_000_000 * S, "desk", 21.5), (1_764_000_000 * S + 500_000_000, "a, b", -3.25)]
    assert json.loads(rendered(rows, fmt="json")) == [
        {"time": "2025-11-24T16:00:00Z", "sensor": "desk", "celsius": 21.5},
        {"time": "2025-11-24T16:00:00.5Z", "sensor": "a, b", "celsius": -3.25},
    ]
    assert rendered(rows, fmt="csv").splitlines() == [
        "time,sensor,celsius", "2025-11-24T16:00:00Z,desk,21.5", '2025-11-24T16:00:00.5Z,"a, b",-3.25']
    assert rendered(rows, fmt="table").splitlines() == [
        "time                    sensor  celsius",
        "2025-11-24T16:00:00Z    desk      21.50",
        "2025-11-24T16:00:00.5Z  a, b      -3.25",
    ]


def test_an_empty_result_has_the_columns_of_a_full_one():
    aggregates = ("mean", "min", "max")
    assert json.loads(rendered([], aggregates, "json")) == []
    assert rendered([], aggregates, "csv") == "time,sensor,mean,min,max\n"
    assert rendered([], aggregates, "table") == "time  sensor  mean  min  max\n"
    assert json.loads(rendered([(0, "a", 21.0, 20.0, 22.0)], aggregates)) == [
        {"time": "1970-01-01T00:00:00Z", "sensor": "a", "mean": 21.0, "min": 20.0, "max": 22.0}]


def test_table_widths_come_from_the_first_rows_and_later_rows_still_print_whole():
    from collector.history import TABLE_LOOK_AHEAD
    rows = [(i * S, "a", 1.0) for i in range(TABLE_LOOK_AHEAD)] + [(S * 10**6, "a much longer name", 123.456)]
    lines = rendered(rows, fmt="table").splitlines()
    assert len(lines) == len(rows) + 1 and len({len(line) for line in lines[:-1]}) == 1
    assert lines[-1].split() == ["1970-01-12T13:46:40Z", "a", "much", "longer", "name", "123.46"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, LAST_STOP_NS - 1), SENSOR_NAMES,
                          st.floats(allow_nan=False, allow_infinity=False)), max_size=20))
def test_json_and_csv_are_one_valid_document_whatever_the_sensor_names(rows):
    """Streamed a row at a time, json still parses as one list and csv as one table, for any name."""
    expected = [{"time": rfc3339(t), "sensor": s, "celsius": v} for t, s, v in rows]
    assert json.loads(rendered(rows, fmt="json")) == expected
    records = list(csv.DictReader(io.StringIO(rendered(rows, fmt="csv"), newline="")))
    assert [{**r, "celsius": float(r["celsius"])} for r in records] == expected


@settings(max_examples=300, deadline=None)
@given(st.integers(0, LAST_STOP_NS))
def test_rfc3339_times_read_back_to_the_nanosecond(ns):
    assert parse_rfc3339_ns(rfc3339(ns)) == ns


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)
SERIES_LIKE = st.fixed_dictionaries({"columns": JSON}, optional={"values": JSON}) | JSON
RESULT_LIKE = st.fixed_dictionaries({}, optional={"series": st.lists(SERIES_LIKE, max_size=3) | JSON,
                                                  "error": st.text(max_size=5)}) | JSON
DOCUMENT_LIKE = st.fixed_dictionaries({"results": st.lists(RESULT_LIKE, max_size=3) | JSON}) | JSON


@settings(max_examples=300, deadline=None)
@given(st.lists(DOCUMENT_LIKE.map(lambda d: json.dumps(d).encode() + b"\n") | st.binary(max_size=20), max_size=4))
def test_any_chunked_v1_answer_gives_well_formed_series_or_a_query_error(lines):
    """Not influxd's answer, cut short, or shaped otherwise: a QueryFailed naming it, never another exception."""
    try:
        series = list(series_of_chunks(lines))
    except QueryFailed:
        return
    for one in series:
        assert all(isinstance(v, list) and len(v) == len(one["columns"]) for v in one.get("values", []))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.lists(st.integers(), min_size=2, max_size=2), max_size=4), max_size=5),
       st.integers(1, 4))
def test_series_split_over_chunks_come_out_whole_and_in_order(series_values, per_chunk):
    series = [{"name": "temperature", "columns": ["time", "celsius"], "values": v} for v in series_values]
    lines = [json.dumps({"results": [{"statement_id": 0, "series": series[i:i + per_chunk]}]}).encode() + b"\n"
             for i in range(0, len(series), per_chunk)]
    # no series: influxd's one result without any (influxdata/influxdb@v1.6.6:coordinator/statement_executor.go)
    lines = lines or [b'{"results":[{"statement_id":0}]}\n']
    assert list(series_of_chunks(lines + [b"\n"])) == series
    error = json.dumps({"results": [{"statement_id": 0, "error": "shard gone"}]}).encode()
    with pytest.raises(QueryFailed, match="^shard gone$"):
        list(series_of_chunks(lines + [error]))


CSV_CELLS = st.sampled_from(["", "#datatype", "#group", "error", "reference", "result", "_time"]) | st.text(max_size=4)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(CSV_CELLS, max_size=5), max_size=8))
def test_any_annotated_csv_gives_rows_or_a_query_error(records):
    try:
        rows = list(rows_of_annotated_csv(records))
    except QueryFailed:
        return
    assert all(isinstance(row, dict) for row in rows)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**12), SENSOR_NAMES, st.floats(-100, 100)), max_size=10))
def test_annotated_csv_as_influxdb_writes_it_reads_back_and_a_late_error_is_raised(points):
    from fake_influxdb2 import _raw_csv
    records = list(_raw_csv(points))
    assert [(row["_time"], row["_value"], row["sensor"]) for row in rows_of_annotated_csv(records)] == [
        (record[3], record[4], record[5]) for record in records[4:-1]]
    error_table = [[], ["#datatype", "string", "string"], ["#group", "true", "true"], ["#default", "", ""],
                   ["", "error", "reference"], ["", "panic: out of memory", ""]]
    with pytest.raises(QueryFailed, match="^panic: out of memory$"):
        list(rows_of_annotated_csv(records + error_table))


def test_influxql_merges_sensors_in_time_order_and_quotes_their_names():
    raw = influxql.history(HistoryQuery(0, 10, ("it's", "b")))
    assert raw == ('SELECT "celsius", "sensor" FROM "temperature" WHERE time >= 0 AND time < 10 '
                   "AND (\"sensor\" = 'it\\'s' OR \"sensor\" = 'b')")
    windowed = influxql.history(HistoryQuery(0, 10, (), 900))
    assert windowed.startswith('SELECT "mean", "min", "max", "sensor" FROM (SELECT mean("celsius") AS "mean"')
    assert windowed.endswith('GROUP BY time(900000ms), "sensor" fill(none))')


def test_flux_keeps_values_out_of_the_query_text():
    query = HistoryQuery(0, 10 * S, ('evil") |> drop(', ), 60)
    text = flux.history(query)
    assert 'evil' not in text and "contains(value: r.sensor, set: sensors)" in text
    params = flux.params(query, "temperature")
    assert params["sensors"] == ['evil") |> drop('] and params["bucket"] == "temperature"
    assert params["every"].total_seconds() == 60


def test_rfc3339():
    assert rfc3339(0) == "1970-01-01T00:00:00Z"
    assert rfc3339(1_500_000_000) == "1970-01-01T00:00:01.5Z"


# The command, as a real process.

OUTBOX_CONFIG = "collector: {outbox: data/outbox.sqlite}\nsensors:\n  - {name: a, type: simulated}\n" \
                "  - {name: b, type: simulated}\n  - {name: c, type: simulated}\n"


def outbox_with_points(write_config, tmp_path, base_ns):
    config = write_config(OUTBOX_CONFIG)
    outbox = Outbox(str(tmp_path / "data/outbox.sqlite"))
    outbox.append([temperature(sensor, t, value, host=SENSORS[sensor]) for t, sensor, value in written(base_ns)])
    outbox.close()
    return config


def test_history_from_the_outbox_returns_exactly_what_was_written(write_config, tmp_path):
    base = 1_764_000_000 * S
    assert_history_returns_what_was_written(outbox_with_points(write_config, tmp_path, base), base)


def test_history_cut_short_by_its_reader_ends_quietly(write_config, tmp_path):
    """`templog history | head`: the rest is not wanted; no broken-pipe error, no traceback."""
    config = outbox_with_points(write_config, tmp_path, 1_764_000_000 * S)
    process = subprocess.Popen([sys.executable, "-m", "collector", "history", "-c", str(config), "--start",
                                "2025-11-24", "--format", "csv"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline() == "time,sensor,celsius\n"
    process.stdout.close()
    assert process.wait(timeout=60) == 1
    assert process.stderr.read() == ""


def test_history_says_what_it_queried(write_config, tmp_path):
    config = outbox_with_points(write_config, tmp_path, 1_764_000_000 * S)
    done = templog("history", "-c", str(config), "--start", "2025-11-24T16:00:00Z", "--stop", "2025-11-24T16:00:01Z",
                   "--sensor", "a")
    assert done.returncode == 0, done.stderr
    assert (f"INFO history: 1 row(s) from the outbox {tmp_path}/data/outbox.sqlite: sensor(s) a from "
            "2025-11-24T16:00:00Z to 2025-11-24T16:00:01Z\n") in done.stderr


def test_a_sensor_not_in_the_config_is_named_and_still_looked_up(write_config, tmp_path):
    """A sensor removed from the config keeps its readings: history warns and looks for them all the same."""
    config = outbox_with_points(write_config, tmp_path, 1_764_000_000 * S)
    (tmp_path / "config.yaml").write_text(OUTBOX_CONFIG.replace("  - {name: c, type: simulated}\n", ""))
    done = templog("history", "-c", str(config), "--start", "2025-11-24T16:00:00Z", "--stop", "2025-11-24T16:00:02Z",
                   "--sensor", "c", "--sensor", "nosuch", "--format", "csv")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == [f"{rfc3339(t)},c,{v}" for t, s, v in written(1_764_000_000 * S)
                                            if s == "c" and t < 1_764_000_002 * S]
    warnings = [line for line in done.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 2 and all(f"is not in {config} (its sensors: a, b)" in w for w in warnings)
    assert "sensor 'c'" in warnings[0] and "sensor 'nosuch'" in warnings[1]


def test_empty_aggregated_output_has_the_aggregate_columns(write_config, tmp_path):
    config = outbox_with_points(write_config, tmp_path, 1_764_000_000 * S)
    done = templog("history", "-c", str(config), "--start", "2020-01-01", "--stop", "2020-01-02", "--every", "1h",
                   "--format", "csv")
    assert done.returncode == 0 and done.stdout == "time,sensor,mean,min,max\n"


def test_history_usage_errors_are_clear_and_exit_2(write_config, tmp_path):
    config = outbox_with_points(write_config, tmp_path, 1_764_000_000 * S)
    expected = {
        ("--since", "-1h"): "--since -1h: give how far back as a positive duration, e.g. --since 1h",
        ("--stop", "2300-01-01"): "the stop, 2300-01-01, is after 2262-04-11T23:47:16.854775807Z",
        ("--start", "1600-01-01"): "the start, 1600-01-01, is before 1970-01-01",
        ("--since", "36500d"): "--since 36500d reaches back before 1970-01-01",
        ("--every", "0"): "--every must be a positive duration such as 15m",
    }
    for args, message in expected.items():
        done = templog("history", "-c", str(config), *args)
        assert done.returncode == 2 and done.stdout == "", args
        assert done.stderr.startswith("templog: history: ") and message in done.stderr, (args, done.stderr)


def v1_history_config(write_config, influxd, database):
    return write_config(f'influxdb: {{url: "{influxd.url}", api: v1, bucket: {database}, retention: 0}}\n'
                        "sensors:\n  - {name: a, type: simulated}\n")


def test_a_time_influxdb_cannot_store_is_a_usage_error_not_an_http_error(write_config, influxd, database):
    config = v1_history_config(write_config, influxd, database)
    influxd.query(f'CREATE DATABASE "{database}"')
    done = templog("history", "-c", str(config), "--start", "2026-01-01", "--stop", "2300-01-01")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == ("templog: history: the stop, 2300-01-01, is after 2262-04-11T23:47:16.854775807Z: "
                           "InfluxDB stores times as 64-bit nanoseconds, which end there\n")


def test_a_query_influxd_refuses_is_one_line_naming_what_was_queried(write_config, influxd, database):
    config = v1_history_config(write_config, influxd, database)  # the database does not exist
    done = templog("history", "-c", str(config), "--start", "2026-01-01", "--stop", "2026-01-02", "--sensor", "a")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (f"templog: history: InfluxDB at {influxd.url} (api v1, database {database}), sensor(s) a "
                           f"from 2026-01-01T00:00:00Z to 2026-01-02T00:00:00Z: database not found: {database}\n")


def test_a_query_influxdb2_refuses_is_one_line_naming_what_was_queried(write_config, fake_influxdb2):
    config = write_config(f'influxdb: {{url: "{fake_influxdb2.url}", api: v2, org: home, bucket: nosuch, '
                          'token: test-token}\nsensors:\n  - {name: a, type: simulated}\n')
    done = templog("history", "-c", str(config), "--start", "2026-01-01", "--stop", "2026-01-02", "--every", "1h")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(f"templog: history: InfluxDB at {fake_influxdb2.url} (api v2, org home, bucket "
                                  "nosuch), all sensors from 2026-01-01T00:00:00Z to 2026-01-02T00:00:00Z, "
                                  "mean/min/max "
                                  "per 1h: HTTP 404: ")
    assert 'could not find bucket "nosuch"' in done.stderr and "Traceback" not in done.stderr


def test_json_output_stays_one_document_when_the_rows_fail_part_way():
    """A query error after some rows (a Flux error table, a dropped connection) is reported on stderr with exit 1;
    stdout must still parse, so a script reading it sees what came, not a syntax error."""
    from collector.history import write

    def rows_then_failure():
        yield (1_000_000_000, "desk", 21.0)
        raise OSError("connection reset")

    out = io.StringIO()
    with pytest.raises(OSError):
        write(rows_then_failure(), ("celsius",), "json", out)
    assert json.loads(out.getvalue()) == [{"time": "1970-01-01T00:00:01Z", "sensor": "desk", "celsius": 21.0}]


# One sensor is one series, on every source: after a tag edit or a host rename a sensor's points are several series in
# InfluxDB, and history merges them as the outbox (which never knew the tags) does.

SPLIT_SPAN_S, SPLIT_STEP_S, SPLIT_AT_S = 360, 10, 210  # the split falls inside a minute


def split_series_points(base_ns: int) -> list[tuple[int, str, float, dict]]:
    """(time_ns, sensor, celsius, tags): sensor "a" has its room tag edited, HOSTILE_NAME its host renamed, both at
    base + SPLIT_AT_S; values in quarters, so every mean is exact."""
    points = []
    for i, t_s in enumerate(range(0, SPLIT_SPAN_S, SPLIT_STEP_S)):
        late = t_s >= SPLIT_AT_S
        points.append((base_ns + t_s * S, "a", (i % 9) / 4, {"host": "h1", "room": "y" if late else "x"}))
        points.append((base_ns + t_s * S, HOSTILE_NAME, -(i % 7) / 4, {"host": "h2" if late else "h1"}))
    return points


def split_series_lines(base_ns: int) -> list[str]:
    return [temperature(sensor, t, value, **tags).line() for t, sensor, value, tags in split_series_points(base_ns)]


def history_json(config, base_ns: int, *args: str) -> list[dict]:
    done = templog("history", "-c", str(config), "--start", rfc3339(base_ns),
                   "--stop", rfc3339(base_ns + SPLIT_SPAN_S * S), "--format", "json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_sensor_split_into_several_series_is_one_on_every_source(write_config, tmp_path, influxd, database,
                                                                    fake_influxdb2):
    """The outbox, InfluxQL on a real influxd 1.x and Flux (FakeInfluxDB2, which aggregates per series unless the
    query groups by sensor first, as Flux's aggregateWindow aggregates each table) give the same rows: one per
    sensor and window, and the raw readings, for a tag edit and a host rename inside a window."""
    base = 1_764_000_000 * S
    points = split_series_points(base)
    sensors = f"sensors:\n  - {{name: a, type: simulated}}\n  - {{name: {json.dumps(HOSTILE_NAME)}, type: simulated}}\n"
    outbox_config = write_config("collector: {outbox: data/outbox.sqlite}\n" + sensors, "outbox.yaml")
    outbox = Outbox(str(tmp_path / "data/outbox.sqlite"))
    outbox.append([temperature(sensor, t, value, **tags) for t, sensor, value, tags in points])
    outbox.close()
    influxd.query(f'CREATE DATABASE "{database}"')
    influxd.write(database, split_series_lines(base))
    v1_config = write_config(f'influxdb: {{url: "{influxd.url}", api: v1, bucket: {database}}}\n' + sensors, "v1.yaml")
    fake_influxdb2.add_bucket("temperature")
    v2_config = write_config(f'influxdb: {{url: "{fake_influxdb2.url}", api: v2, org: home, bucket: temperature, '
                             'token: test-token}\n' + sensors, "v2.yaml")
    v2 = load_config(v2_config, environ={}).influxdb
    assert v2 is not None
    InfluxV2(v2).write(split_series_lines(base))

    expected_windows = windows([(t, sensor, value) for t, sensor, value, _ in points], 60 * S)
    assert len(expected_windows) == 2 * SPLIT_SPAN_S // 60
    expected_raw = [{"time": rfc3339(t), "sensor": sensor, "celsius": value}
                    for t, sensor, value, _ in sorted(points, key=lambda p: (p[0], p[1]))]
    for config in (outbox_config, v1_config, v2_config):
        assert history_json(config, base, "--every", "1m") == expected_windows, config.name
        assert history_json(config, base) == expected_raw, config.name
        assert history_json(config, base, "--every", "1m", "--sensor", HOSTILE_NAME) == [
            w for w in expected_windows if w["sensor"] == HOSTILE_NAME], config.name
