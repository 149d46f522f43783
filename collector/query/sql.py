"""SQL (InfluxDB 3, whose query engine is Apache DataFusion): quoting, and the query texts of `templog history` and
the Grafana SQL alert rules. Each measurement is a table; `time` is a timestamp in nanoseconds without a zone (UTC),
each tag and field a column. Identifiers go in double quotes, string literals in single quotes, each quote doubled:
DataFusion's SQL reads no backslash escapes in either (sqlparser's GenericDialect, which DataFusion parses with)."""

from __future__ import annotations

from collector.lineprotocol import MEASUREMENT
from collector.query import HistoryQuery
from collector.ticks import NS_PER_S


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def string(text: str) -> str:
    """A SQL string literal that reads back as `text`."""
    return "'" + text.replace("'", "''") + "'"


def readings(columns: str, where: str) -> str:
    """`columns` of the temperature readings `where` a condition holds."""
    return f"SELECT {columns} FROM {quote_ident(MEASUREMENT)} WHERE {where}"


# `templog history` (helper v3client's block)

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
