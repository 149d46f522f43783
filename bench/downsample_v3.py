"""InfluxDB 3 downsampling: what an hourly run of influxdb3/plugins/templog_downsample.py costs, and what an outside
rollup (a service of ours querying the HTTP API instead) would move over the network, on 30 days of 10 sensors at
10 s (the raw retention full: 2,592,000 rows, 3 sensors with humidity and dew point).

The plugin runs as the processing engine runs a scheduled trigger, in FakeInfluxDB3 (tests/fake_influxdb3.py, the
stand-in for InfluxDB 3): its queries executed by Apache DataFusion (the engine InfluxDB 3 queries with) over an
in-memory Arrow table of our schema (tags Dictionary(Int32, Utf8), fields Float64, time Timestamp(ns)), rows handed
to it as Python dicts, its writes stored at the end of the run. No Parquet files: the times are DataFusion's work and
the stand-in's conversion to dicts, a floor for the server's. Two runs: the first summarizes the whole retention but
its last hour, the next (a normal hourly run) that hour. Each of a run's queries is then timed again through the
plugin API (median of 3), and asked over HTTP as an outside rollup would (/api/v3/query_sql, format json: the bytes
of the answer). Target: a normal hourly run within 60 s here.

    .venv/bin/python bench/downsample_v3.py
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import urllib.request

import pyarrow as pa  # type: ignore[import-untyped]
import yaml
from common import ROOT, header, verdict

sys.path.insert(0, str(ROOT / "tests"))
from fake_influxdb3 import TAG_TYPE, FakeInfluxDB3, PluginCallApi, PluginReturnState  # noqa: E402

PLUGIN = ROOT / "influxdb3/plugins/templog_downsample.py"
RAW, LONGTERM = "temperature", "temperature_longterm"
SENSORS, HUMIDITY_SENSORS, EVERY_S, DAYS = 10, 3, 10, 30
HOUR_S = 3600
STOP_S = 1_795_000_000 // HOUR_S * HOUR_S  # the end of the last whole hour of raw data
START_S = STOP_S - DAYS * 24 * HOUR_S
# the stack's --query-file-limit, which the trigger is told too (influxdb3-init's TEMPLOG_QUERY_FILE_LIMIT)
FILE_LIMIT = yaml.safe_load((ROOT / "docker-compose.influxdb3.yml").read_text())[
    "services"]["influxdb3"]["environment"]["INFLUXDB3_QUERY_FILE_LIMIT"]


def raw_table() -> pa.Table:
    per_sensor = (STOP_S - START_S) // EVERY_S
    times = pa.array(range(START_S * 10**9, STOP_S * 10**9, EVERY_S * 10**9), pa.int64())
    tables = []
    for i in range(SENSORS):
        n = per_sensor
        celsius = pa.array([20.0 + ((k * 7 + i) % 100) / 10 for k in range(n)], pa.float64())
        humid = i < HUMIDITY_SENSORS
        humidity = pa.array([50.0 + (k % 40) / 2 for k in range(n)] if humid else [None] * n, pa.float64())
        dewpoint = pa.array([10.0 + (k % 30) / 3 for k in range(n)] if humid else [None] * n, pa.float64())
        tables.append(pa.table({
            "time": times.cast(pa.timestamp("ns")),
            "host": pa.array(["pi"] * n).dictionary_encode().cast(TAG_TYPE),
            "sensor": pa.array([f"s{i:02d}"] * n).dictionary_encode().cast(TAG_TYPE),
            "celsius": celsius, "humidity": humidity, "dewpoint": dewpoint,
        }))
    return pa.concat_tables(tables)


def run(server: FakeInfluxDB3, at_s: int) -> tuple[float, PluginReturnState, list[dict]]:
    """The trigger's run at `at_s`: seconds, its return state and its queries."""
    server.queries.clear()
    started = time.perf_counter()
    state = server.run_schedule_trigger(PLUGIN.name, RAW, at_s, {"longterm_db": LONGTERM,
                                                                  "query_file_limit": FILE_LIMIT})
    seconds = time.perf_counter() - started
    assert state.write_errors == [], state.write_errors
    return seconds, state, list(server.queries)


def answer_bytes(server: FakeInfluxDB3, db: str, sql: str) -> int:
    """The size of /api/v3/query_sql?format=json's answer to the query."""
    request = urllib.request.Request(f"{server.url}/api/v3/query_sql", json.dumps({"db": db, "q": sql}).encode(),
                                     {"Authorization": "Bearer bench", "Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return len(response.read())


def timed(api: PluginCallApi, db: str, sql: str) -> tuple[float, int]:
    """Median seconds of 3 runs of the query through the plugin API, and its rows."""
    seconds, rows = [], 0
    for _ in range(3):
        started = time.perf_counter()
        rows = len(api.query(sql, None, db))
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), rows


def describe(sql: str, db: str) -> str:
    if "information_schema" in sql:
        return f"columns of {db}"
    if "AVG(" in sql:
        return "summary"
    return "stored counts (long-term)" if db == LONGTERM else "raw counts, the look-back"


def main() -> None:
    header("InfluxDB 3 downsampling: the plugin run in FakeInfluxDB3 (DataFusion); an outside rollup's network bytes")
    with FakeInfluxDB3("bench", plugin_dir=PLUGIN.parent, query_file_limit=int(FILE_LIMIT)) as server:
        server.add_database(LONGTERM)
        table = raw_table()
        server.persist(RAW, "temperature", table)
        print(f"data:    {table.num_rows:,} raw rows ({SENSORS} sensors x {DAYS} days at {EVERY_S} s, "
              f"{HUMIDITY_SENSORS} with humidity and dew point), {table.nbytes / 2**20:.0f} MiB in Arrow")
        api = PluginCallApi(server, RAW, PluginReturnState())
        for title, at_s in (("first run (the whole retention but its last hour)", STOP_S - HOUR_S + 300),
                            ("normal hourly run (the last hour)", STOP_S + 300)):
            seconds, state, queries = run(server, at_s)
            lines = sum(len(lines) for lines in state.write_db_lines.values())
            print(f"{title}: {seconds:.2f} s in all, {lines:,} long-term rows written")
            total = 0
            for query in queries:  # each again (before the next run changes the data), timed, then over HTTP
                db = query["db"]
                query_s, rows = timed(api, db, query["q"])
                size = answer_bytes(server, db, query["q"])
                total += size
                print(f"  {describe(query['q'], db):32} {query_s:6.2f} s, {rows:6,} rows; as JSON over HTTP "
                      f"{size / 1024:8,.1f} KiB")
            print(f"  an outside rollup would receive {total / 1024:,.0f} KiB for this run")
        normal_s = seconds
        print(f"  (for a normal run, {24 * total / 2**20:,.1f} MiB a day)")
    print("the plugin: the same queries in the server's process, rows handed to Python as dicts; 0 B on a network")
    verdict("a normal hourly run (counts + one hour's summary)", normal_s <= 60, f"<= 60 s here: {normal_s:.2f} s")


if __name__ == "__main__":
    main()
