"""InfluxQL (InfluxDB 1.x): quoting, and the query texts of `templog history` and the Grafana InfluxQL dashboard.
Identifiers go in double quotes, string literals in single quotes, each with its quote and the backslash escaped."""

from __future__ import annotations

from collector.lineprotocol import FIELD, MEASUREMENT
from collector.query import HistoryQuery, beyond, decimal
from collector.report import KELVIN, MKT_DELTA_H_OVER_R


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


# The Grafana alert rules (api v1: InfluxDB 1.x). Grafana's backend replaces `$timeFilter` with the rule's time range,
# `time >= <from>ms and time <= <to>ms`, in the whole text (grafana/grafana@0952bef509e3, not the pinned v12.3.1:
# pkg/tsdb/influxdb/models/query.go Build, renderTimeFilter), and gives each series of the answer its tags as labels
# (@01b93f6e67fd: pkg/tsdb/influxdb/influxql/converter/converter.go handleTimeSeriesFormatWithTimeColumn, the
# streaming parser; @3d9f3431ff2d: influxql/buffered/response_parser.go newFrameWithTimeField, the buffered one), so a
# rule grouped by "sensor", "host" has one alert instance per sensor and host.


def _group_by(columns: tuple[str, ...]) -> str:
    return " GROUP BY " + ", ".join(quote_ident(column) for column in columns)


def latest(measurement: str, field: str, where: str, by: tuple[str, ...]) -> str:
    """The latest value of `field` by time per group `by`, of the points `where` a condition holds: the series a tag
    edit split are merged, as the group's other tags are not in GROUP BY."""
    return f"SELECT last({quote_ident(field)}) FROM {quote_ident(measurement)} WHERE {where}" + _group_by(by)


def recent_count(measurement: str, field: str, where: str, by: tuple[str, ...], within_s: float) -> str:
    """Per group `by` with a point `where` a condition holds (and in `$timeFilter`): how many of its points are in the
    last `within_s` seconds, 0 when none. InfluxQL computes no age (time is no value), and a group without recent
    points would be absent from a count alone: so the first subquery gives every group a row (its last point's value
    times 0), the second the recent count, and the outer sum merges them per group."""
    name = quote_ident(field)
    table = quote_ident(measurement)
    groups = _group_by(by)
    seen = f'SELECT last({name}) * 0 AS "n" FROM {table} WHERE $timeFilter AND {where}{groups}'
    recent = f'SELECT count({name}) AS "n" FROM {table} WHERE time > now() - {round(within_s)}s AND {where}{groups}'
    return f'SELECT sum("n") FROM ({seen}), ({recent}) WHERE $timeFilter' + groups


# `templog report` (collector/report): per span, one Summary per sensor; per sensor, its readings outside its
# thresholds. influxd 1.6 answers several statements in one /query request, one result each (checked on Debian's
# 1.6.7); GROUP BY "sensor" alone makes one series of a sensor whatever its other tags (host).
def _report_where(start_ns: int, stop_ns: int) -> str:
    return f"time >= {start_ns} AND time < {stop_ns}"


def summaries(start_ns: int, stop_ns: int, sensors: tuple[str, ...]) -> str:
    """Four statements, each grouped by sensor, told apart by their columns: count and mean; min alone and max alone
    (a selector alone in its statement gives the point's time, the earliest of equal values: influxdata/influxdb@v1.6.6
    query/call_iterator.go FloatMinReduce, FloatMaxReduce: `curr.Time < prev.Time` on a tie); and the mean of
    exp(-(ΔH/R)/T) over a subquery that computes it per reading (math functions since 1.6.0: query/math.go, which
    v1.5.4 lacks)."""
    field = quote_ident(FIELD)
    where = _report_where(start_ns, stop_ns) + " AND (" + " OR ".join(f'"sensor" = {string(s)}' for s in sensors) + ")"
    by = ' GROUP BY "sensor"'
    term = f'exp(-{decimal(MKT_DELTA_H_OVER_R)} / ({field} + {decimal(KELVIN)})) AS "b"'
    return "; ".join((
        readings(f'count({field}) AS "readings", mean({field}) AS "mean"', where) + by,
        readings(f'min({field}) AS "min"', where) + by,
        readings(f'max({field}) AS "max"', where) + by,
        f'SELECT mean("b") AS "boltzmann_mean" FROM ({readings(term, where)})' + by,
    ))


def outside(start_ns: int, stop_ns: int, sensor: str, low: float | None, high: float | None) -> str:
    """The sensor's readings below `low` or above `high` (a None bound: none that side; one must be set), in time
    order: without GROUP BY influxd merges the sensor's series (hosts) by time."""
    field = quote_ident(FIELD)
    where = f'{_report_where(start_ns, stop_ns)} AND "sensor" = {string(sensor)} AND ({beyond(field, low, high)})'
    return readings(field, where)
