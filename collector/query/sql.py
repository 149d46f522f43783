"""SQL (InfluxDB 3, whose query engine is Apache DataFusion): quoting, and the query texts of `templog history` and
the Grafana SQL alert rules. Each measurement is a table; `time` is a timestamp in nanoseconds without a zone (UTC),
each tag and field a column. Identifiers go in double quotes, string literals in single quotes, each quote doubled:
DataFusion's SQL reads no backslash escapes in either (sqlparser's GenericDialect, which DataFusion parses with)."""

from __future__ import annotations

from collector.lineprotocol import FIELD, MEASUREMENT
from collector.query import HistoryQuery, beyond, decimal
from collector.report import KELVIN, MKT_DELTA_H_OVER_R
from collector.ticks import NS_PER_S


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def string(text: str) -> str:
    """A SQL string literal that reads back as `text`."""
    return "'" + text.replace("'", "''") + "'"


def readings(columns: str, where: str) -> str:
    """`columns` of the temperature readings `where` a condition holds."""
    return f"SELECT {columns} FROM {quote_ident(MEASUREMENT)} WHERE {where}"


# ---------------------------------------------------------------------------------------------------------------
# `templog history` on api v3 (collector/influx/v3.py sends it to /api/v3/query_sql). A tag is a dictionary in
# InfluxDB 3; compared, grouped and ordered it acts as its string, and the answer's JSON writes it so.
_SENSOR = '"sensor"'


def _time(ns: int) -> str:
    """A moment as a timestamp in nanoseconds without a zone, the type of InfluxDB 3's `time` column (DataFusion's
    to_timestamp_nanos reads an integer as nanoseconds since the epoch)."""
    return f"to_timestamp_nanos({ns})"


def history(query: HistoryQuery) -> str:
    """Rows in time order, then sensor: raw, the field's value beside `time` and `sensor`; with `every_s`, the
    mean, min and max per sensor and window, each window stamped with its start on a grid aligned to the epoch
    (date_bin from 1970-01-01). Readings without the field (null there) give no row."""
    field = quote_ident(query.field)
    where = f"time >= {_time(query.start_ns)} AND time < {_time(query.stop_ns)} AND {field} IS NOT NULL"
    if query.sensors:
        where += f" AND {_SENSOR} IN ({', '.join(string(s) for s in query.sensors)})"
    if not query.every_s:
        return readings(f"time, {_SENSOR}, {field}", where) + f" ORDER BY time, {_SENSOR}"
    every = f"INTERVAL '{round(query.every_s * NS_PER_S)} nanoseconds'"
    window = f"date_bin({every}, time, TIMESTAMP '1970-01-01T00:00:00')"
    stats = f'avg({field}) AS "mean", min({field}) AS "min", max({field}) AS "max"'
    return (readings(f'{window} AS time, {_SENSOR}, {stats}', where)
            + " GROUP BY 1, 2 ORDER BY 1, 2")


# ---------------------------------------------------------------------------------------------------------------
# The Grafana alert rules (api v3: datasource templog-sql, format "table"). Grafana's SQL macros are replaced in the
# whole text, string literals included (grafana/grafana-plugin-sdk-go@2d1ff1e5d40d data/sqlutil/macros.go
# Interpolate: strings.ReplaceAll of each `$__name` match): `$__timeFilter(col)` is `col >= '<from>' AND col <=
# '<to>'`, RFC 3339 UTC. Each answer is a table of one row per group: the tags as strings, then one number, which
# Grafana's alerting reads as one instance per row, its string columns the labels (grafana/grafana@06ba30292ce3, not
# the pinned v12.3.1: pkg/expr/converter.go Convert, isNumberTable: exactly one numeric column, the others strings).
# InfluxDB 3 keeps tags as dictionaries (influxdata/influxdb@v3.10.1:core/schema/src/lib.rs InfluxColumnType::Tag =>
# Dictionary(Int32, Utf8)), which Grafana's Flight SQL reader turns into no string (grafana/grafana@4e4d9221fa3f:
# pkg/tsdb/influxdb/fsql/arrow.go newField: STRING and STRING_VIEW are strings, a dictionary falls to JSON; at the
# older @3b04c9b001c2 STRING only): so each tag is cast to Utf8 by name, not to VARCHAR, which DataFusion may map to
# Utf8View.
_GRAFANA_MACRO_START = "$__"


def grafana_string(text: str) -> str:
    """A SQL string literal that reads back as `text` also after Grafana's macros: at each `$__` the literal ends
    after the `$` and a next one, joined by `||`, starts with `__`, so no macro name follows a `$__`."""
    if _GRAFANA_MACRO_START not in text:
        return string(text)
    return "(" + string(text).replace(_GRAFANA_MACRO_START, "$' || '__") + ")"


def _labels(by: tuple[str, ...]) -> str:
    return ", ".join(f"arrow_cast({quote_ident(column)}, 'Utf8') AS {quote_ident(column)}" for column in by)


def _grouped(table: str, where: str, by: tuple[str, ...]) -> str:
    return (f' FROM {quote_ident(table)} WHERE $__timeFilter("time") AND {where}'
            " GROUP BY " + ", ".join(quote_ident(column) for column in by))


def latest(table: str, field: str, where: str, by: tuple[str, ...]) -> str:
    """The latest value of `field` by time per group `by` in the rule's time range, of the rows `where` a condition
    holds and that have the field."""
    name = quote_ident(field)
    return (f"SELECT {_labels(by)}, last_value({name} ORDER BY \"time\") AS {name}"
            + _grouped(table, f"{where} AND {name} IS NOT NULL", by))


def age(table: str, field: str, where: str, by: tuple[str, ...]) -> str:
    """Seconds since the latest row with `field` per group `by` in the rule's time range, of the rows `where` a
    condition holds."""
    return (f"SELECT {_labels(by)}, (arrow_cast(now(), 'Int64') - arrow_cast(max(\"time\"), 'Int64')) / 1000000000.0"
            ' AS "age"' + _grouped(table, f"{where} AND {quote_ident(field)} IS NOT NULL", by))


# ---------------------------------------------------------------------------------------------------------------
# `templog report` (collector/report) on api v3: per span one row per sensor, grouped by the sensor tag alone (one
# series whatever its other tags: a host rename), and per sensor its readings outside its thresholds.
def _span(start_ns: int, stop_ns: int) -> str:
    return f"time >= {_time(start_ns)} AND time < {_time(stop_ns)} AND {quote_ident(FIELD)} IS NOT NULL"


def summaries(start_ns: int, stop_ns: int, sensors: tuple[str, ...]) -> str:
    """Columns sensor, readings, mean, min, min_time, max, max_time, boltzmann_mean; the time of min and max the
    earliest reading with that value (first_value over the group ordered by value, then time)."""
    field = quote_ident(FIELD)
    where = _span(start_ns, stop_ns) + f" AND {_SENSOR} IN ({', '.join(string(s) for s in sensors)})"
    stats = (f'count({field}) AS "readings", avg({field}) AS "mean", min({field}) AS "min", '
             f'first_value(time ORDER BY {field}, time) AS "min_time", max({field}) AS "max", '
             f'first_value(time ORDER BY {field} DESC, time) AS "max_time", '
             f'avg(exp(-{decimal(MKT_DELTA_H_OVER_R)} / ({field} + {decimal(KELVIN)}))) AS "boltzmann_mean"')
    return readings(f"{_SENSOR}, {stats}", where) + f" GROUP BY {_SENSOR}"


def outside(start_ns: int, stop_ns: int, sensor: str, low: float | None, high: float | None) -> str:
    """`time` and the field of the sensor's readings below `low` or above `high` (a None bound: none that side; one
    must be set), in time order."""
    field = quote_ident(FIELD)
    where = f"{_span(start_ns, stop_ns)} AND {_SENSOR} = {string(sensor)} AND ({beyond(field, low, high)})"
    return readings(f"time, {field}", where) + " ORDER BY time"
