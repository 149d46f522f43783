"""`templog history`: readings back from InfluxDB (Flux on api v2, InfluxQL on api v1) or from the local outbox.

Rows are dicts: {"time": ns, "sensor", "celsius"} or, aggregated per window (`every`), {"time": window start,
"sensor", "mean", "min", "max"}. Windows are aligned to the Unix epoch and stamped with their start everywhere.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Sequence

from collector.influx import InfluxV1, InfluxV2
from collector.influx.v1 import quote_string
from collector.lineprotocol import FIELD, MEASUREMENT
from collector.outbox import Outbox
from collector.readings import Reading
from collector.ticks import NS_PER_S, tick_at_or_before


@dataclass(frozen=True)
class HistoryQuery:
    start_ns: int
    stop_ns: int
    sensors: tuple[str, ...] = ()
    every_s: float = 0.0  # 0: raw readings


# Parameters are bound by influxdb-client as Flux options (`extern`), never spliced into the text.
FLUX_SELECT = f'''from(bucket: bucket)
  |> range(start: start, stop: stop)
  |> filter(fn: (r) => r._measurement == "{MEASUREMENT}" and r._field == "{FIELD}")'''
FLUX_SENSOR_FILTER = '''
  |> filter(fn: (r) => contains(value: r.sensor, set: sensors))'''
FLUX_RAW = '''
  |> keep(columns: ["_time", "_value", "sensor"])
  |> group()
  |> sort(columns: ["_time", "sensor"])'''
FLUX_WINDOWED = '''
summarize = (tables=<-, fn, name) => tables
  |> aggregateWindow(every: every, fn: fn, timeSrc: "_start", createEmpty: false)
  |> set(key: "_field", value: name)
union(tables: [data |> summarize(fn: mean, name: "mean"), data |> summarize(fn: min, name: "min"), data |> summarize(fn: max, name: "max")])
  |> pivot(rowKey: ["_time", "sensor"], columnKey: ["_field"], valueColumn: "_value")
  |> keep(columns: ["_time", "sensor", "mean", "min", "max"])
  |> group()
  |> sort(columns: ["_time", "sensor"])'''


def flux_query(query: HistoryQuery) -> str:
    select = FLUX_SELECT + (FLUX_SENSOR_FILTER if query.sensors else "")
    if query.every_s:
        return "data = " + select + "\n" + FLUX_WINDOWED
    return select + FLUX_RAW


def flux_params(query: HistoryQuery, bucket: str) -> dict:
    params: dict = {"bucket": bucket, "start": _datetime(query.start_ns), "stop": _datetime(query.stop_ns)}
    if query.sensors:
        params["sensors"] = list(query.sensors)
    if query.every_s:
        params["every"] = timedelta(seconds=query.every_s)
    return params


def influxql_query(query: HistoryQuery) -> str:
    where = f"time >= {query.start_ns} AND time < {query.stop_ns}"
    if query.sensors:
        where += " AND (" + " OR ".join(f'"sensor" = {quote_string(s)}' for s in query.sensors) + ")"
    if query.every_s:
        return (f'SELECT mean("{FIELD}") AS "mean", min("{FIELD}") AS "min", max("{FIELD}") AS "max" '
                f'FROM "{MEASUREMENT}" WHERE {where} GROUP BY time({round(query.every_s * 1000)}ms), "sensor" fill(none)')
    return f'SELECT "{FIELD}" FROM "{MEASUREMENT}" WHERE {where} GROUP BY "sensor"'


def from_influx_v2(client: InfluxV2, query: HistoryQuery) -> list[dict]:
    tables = client.query(flux_query(query), flux_params(query, client.config.bucket))
    columns = ("mean", "min", "max") if query.every_s else ("celsius",)
    every_ns = round(query.every_s * NS_PER_S)
    rows = []
    for table in tables:
        for record in table.records:
            values = record.values
            moment = _ns(record.get_time())
            if every_ns:  # Flux clips the first window's start to the range start; put it back on the grid
                moment = tick_at_or_before(moment, every_ns)
            row = {"time": moment, "sensor": values["sensor"]}
            for column in columns:
                row[column] = float(values["_value" if column == "celsius" else column])
            rows.append(row)
    return _in_order(rows)


def from_influx_v1(client: InfluxV1, query: HistoryQuery) -> list[dict]:
    rows = []
    for result in client.query(influxql_query(query)):
        for series in result.get("series", []):
            sensor = series.get("tags", {}).get("sensor", "")
            names = ["mean", "min", "max"] if query.every_s else ["celsius"]
            for values in series.get("values", []):
                row = {"time": int(values[0]), "sensor": sensor}
                row.update({name: float(v) for name, v in zip(names, values[1:])})
                rows.append(row)
    return _in_order(rows)


def from_outbox(outbox: Outbox, query: HistoryQuery) -> list[dict]:
    readings = outbox.readings(query.start_ns, query.stop_ns, query.sensors)
    if not query.every_s:
        return [{"time": r.time_ns, "sensor": r.sensor, "celsius": r.celsius} for r in readings]
    return aggregate(readings, round(query.every_s * NS_PER_S))


def aggregate(readings: Sequence[Reading], every_ns: int) -> list[dict]:
    windows: dict[tuple[int, str], list[float]] = {}
    for r in readings:
        windows.setdefault((tick_at_or_before(r.time_ns, every_ns), r.sensor), []).append(r.celsius)
    return _in_order([{"time": t, "sensor": s, "mean": sum(v) / len(v), "min": min(v), "max": max(v)}
                      for (t, s), v in windows.items()])


def _in_order(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda row: (row["time"], row["sensor"]))


def rfc3339(ns: int) -> str:
    seconds, fraction = divmod(ns, NS_PER_S)
    text = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{fraction:09d}".rstrip("0") if fraction else "") + "Z"


def render(rows: list[dict], fmt: str) -> str:
    """The rows as `table`, `csv` or `json` (the spec's shapes), times in RFC 3339 UTC."""
    value_columns = ["mean", "min", "max"] if rows and "mean" in rows[0] else ["celsius"]
    records = [{"time": rfc3339(row["time"]), "sensor": row["sensor"], **{c: row[c] for c in value_columns}}
               for row in rows]
    if fmt == "json":
        return json.dumps(records, indent=2)
    header = ["time", "sensor", *value_columns]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([[r[c] for c in header] for r in records])
        return out.getvalue().rstrip("\n")
    table = [header] + [[r["time"], r["sensor"], *(f"{r[c]:.2f}" for c in value_columns)] for r in records]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
                     for row in table)


def _datetime(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // NS_PER_S, timezone.utc) + timedelta(microseconds=ns % NS_PER_S // 1000)


def _ns(moment: datetime) -> int:
    moment = moment.astimezone(timezone.utc)
    return int(moment.replace(microsecond=0).timestamp()) * NS_PER_S + moment.microsecond * 1000
