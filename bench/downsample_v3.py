"""InfluxDB 3 downsampling: what an hourly run of influxdb3/plugins/templog_downsample.py costs, and what an outside
rollup (a service of ours querying the HTTP API instead) would move over the network, on 30 days of 10 sensors at
10 s (the raw retention full: 2,592,000 rows, 3 sensors with humidity and dew point).

The plugin's own SQL texts run in Apache DataFusion (the engine InfluxDB 3 queries with) over an in-memory Arrow
table of our schema (tags Dictionary(Int32, Utf8), fields Float64, time Timestamp(ns)): no Parquet files, so the
times are DataFusion's work alone, a floor for the server's. The bytes are those of the JSON /api/v3/query_sql
returns for the same results (an array of objects, compact, time as RFC 3339 without a zone). Each measure 3 times,
median. Target: an hourly run (the counts of the whole raw retention, then one hour's summary) within 60 s here.

    .venv/bin/python bench/downsample_v3.py
"""

from __future__ import annotations

import datetime
import json
import statistics
import time
from types import SimpleNamespace

import pyarrow as pa  # type: ignore[import-untyped]
from common import ROOT, header, verdict
from datafusion import SessionConfig, SessionContext

PLUGIN = ROOT / "influxdb3/plugins/templog_downsample.py"
SENSORS, HUMIDITY_SENSORS, EVERY_S, DAYS = 10, 3, 10, 30
HOUR_NS = 3600 * 10**9
STOP = 1_795_000_000 // 3600 * 3600 * 10**9  # the run's whole hour
START = STOP - DAYS * 24 * HOUR_NS
TAG = pa.dictionary(pa.int32(), pa.string())


def plugin() -> SimpleNamespace:
    scope: dict = {}
    exec(compile(PLUGIN.read_text(), str(PLUGIN), "exec"), scope)
    return SimpleNamespace(**scope)


def raw_table() -> pa.Table:
    per_sensor = (STOP - START) // (EVERY_S * 10**9)
    times = pa.array(range(START, STOP, EVERY_S * 10**9), pa.int64())
    tables = []
    for i in range(SENSORS):
        n = per_sensor
        celsius = pa.array([20.0 + ((k * 7 + i) % 100) / 10 for k in range(n)], pa.float64())
        humid = i < HUMIDITY_SENSORS
        humidity = pa.array([50.0 + (k % 40) / 2 for k in range(n)] if humid else [None] * n, pa.float64())
        dewpoint = pa.array([10.0 + (k % 30) / 3 for k in range(n)] if humid else [None] * n, pa.float64())
        tables.append(pa.table({
            "host": pa.array(["pi"] * n).dictionary_encode().cast(TAG),
            "sensor": pa.array([f"s{i:02d}"] * n).dictionary_encode().cast(TAG),
            "celsius": celsius, "humidity": humidity, "dewpoint": dewpoint,
            "time": times.cast(pa.timestamp("ns")),
        }))
    return pa.concat_tables(tables)


def run(context: SessionContext, sql: str) -> tuple[float, pa.Table]:
    seconds = []
    result = None
    for _ in range(3):
        start = time.perf_counter()
        result = context.sql(sql).to_arrow_table()
        seconds.append(time.perf_counter() - start)
    assert result is not None
    return statistics.median(seconds), result


def json_bytes(table: pa.Table) -> int:
    """The size of /api/v3/query_sql?format=json's answer holding these rows."""
    rows = []
    for row in table.to_pylist():
        rows.append({k: (v.strftime("%Y-%m-%dT%H:%M:%S") if isinstance(v, datetime.datetime) else v)
                     for k, v in row.items() if v is not None})
    return len(json.dumps(rows, separators=(",", ":")).encode())


def main() -> None:
    header("InfluxDB 3 downsampling: the plugin's queries in DataFusion; an outside rollup's network bytes")
    code = plugin()
    tags, fields = ["host", "sensor"], ["celsius", "humidity", "dewpoint"]
    table = raw_table()
    print(f"data:    {table.num_rows:,} raw rows ({SENSORS} sensors x {DAYS} days at {EVERY_S} s, "
          f"{HUMIDITY_SENSORS} with humidity and dew point), {table.nbytes / 2**20:.0f} MiB in Arrow")
    context = SessionContext(SessionConfig().with_information_schema(True))
    context.register_record_batches("temperature", [table.to_batches()])

    counts_s, counts = run(context, code.raw_counts_sql(tags, fields, STOP))
    hour_s, hour = run(context, code.summary_sql(tags, fields, STOP - HOUR_NS, STOP))
    day_s, day = run(context, code.summary_sql(tags, fields, STOP - 24 * HOUR_NS, STOP))
    all_s, everything = run(context, code.summary_sql(tags, fields, START, STOP))
    # the stored counts an outside rollup reads back from the long-term database: one row per series and hour
    stored = pa.table({"host": everything["host"], "sensor": everything["sensor"],
                       "count": everything["celsius_count"], "humidity_count": everything["humidity_count"],
                       "dewpoint_count": everything["dewpoint_count"], "time": everything["hour"]})
    print("queries (DataFusion, median of 3):")
    print(f"  counts per series and hour, whole retention: {counts_s:6.2f} s, {counts.num_rows:,} rows")
    print(f"  summary of the last hour (a normal run):     {hour_s:6.2f} s, {hour.num_rows:,} rows")
    print(f"  summary of the last day (after an outage):   {day_s:6.2f} s, {day.num_rows:,} rows")
    print(f"  summary of the whole retention (first run):  {all_s:6.2f} s, {everything.num_rows:,} rows")
    normal = json_bytes(counts) + json_bytes(stored) + json_bytes(hour)
    first = json_bytes(counts) + json_bytes(everything)
    print("an outside rollup's answers over HTTP (JSON), per run:")
    print(f"  normal hourly run: {normal / 1024:,.0f} KiB (raw counts {json_bytes(counts) / 1024:,.0f} KiB, stored "
          f"counts {json_bytes(stored) / 1024:,.0f} KiB, one hour's summary {json_bytes(hour) / 1024:,.1f} KiB), "
          f"{24 * normal / 2**20:,.1f} MiB a day")
    print(f"  first run:         {first / 1024:,.0f} KiB; then its writes back, one line per series and hour")
    print("the plugin: the same queries in the server's process, rows handed to Python as dicts; 0 B on a network")
    verdict("an hourly run (counts + one hour's summary)", counts_s + hour_s <= 60,
            f"<= 60 s here: {counts_s + hour_s:.2f} s")


if __name__ == "__main__":
    main()
