"""InfluxQL (InfluxDB 1.x): quoting, and the query texts of `templog history` and the Grafana InfluxQL dashboard.
Identifiers go in double quotes, string literals in single quotes, each with its quote and the backslash escaped."""

from __future__ import annotations

from collector.lineprotocol import FIELD, MEASUREMENT
from collector.query import HistoryQuery


def quote_ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def string(text: str) -> str:
    """An InfluxQL string literal that reads back as `text`."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def readings(columns: str, where: str) -> str:
    """`columns` of the temperature readings `where` a condition holds."""
    return f'SELECT {columns} FROM "{MEASUREMENT}" WHERE {where}'


def windows(where: str, every: str, field: str = FIELD) -> str:
    """Mean, min and max of a field of the readings per sensor and window of `every` (each stamped with its start;
    windows without that field are left out)."""
    name = quote_ident(field)
    stats = f'mean({name}) AS "mean", min({name}) AS "min", max({name}) AS "max"'
    return readings(stats, where) + f' GROUP BY time({every}), "sensor" fill(none)'


def history(query: HistoryQuery) -> str:
    """One series in time order with the sensor tag as a column: influxd merges the sensors' series.

    Raw: without GROUP BY, selecting the tag beside the field, of which influxd gives only the points that have it.
    Aggregated: the per-sensor windows come from a subquery (GROUP BY time, sensor); the outer query, again without
    GROUP BY, merges them in time order.
    """
    where = f"time >= {query.start_ns} AND time < {query.stop_ns}"
    if query.sensors:
        where += " AND (" + " OR ".join(f'"sensor" = {string(s)}' for s in query.sensors) + ")"
    if query.every_s:
        every = f"{round(query.every_s * 1000)}ms"
        return f'SELECT "mean", "min", "max", "sensor" FROM ({windows(where, every, query.field)})'
    return readings(f'{quote_ident(query.field)}, "sensor"', where)
