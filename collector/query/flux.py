"""Flux (InfluxDB 2.x): the query texts of `templog history` and of the Grafana rules and dashboard."""

from __future__ import annotations

import re
from datetime import timedelta

from collector.lineprotocol import FIELD, GRAFANA_FLUX_MACRO_WORDS, HEALTH_MEASUREMENT, MEASUREMENT
from collector.query import HistoryQuery, decimal
from collector.report import KELVIN, MKT_DELTA_H_OVER_R
from collector.ticks import utc_datetime

# Flux's scanner reads `$` followed by any character but `{` or `"` as two plain characters, so `$\"` ends the string
# (influxdata/flux@v0.196.1 libflux/flux-core/src/scanner/scanner.rl: dollar_value): every `$` is written as the
# byte escape `\x24` instead (byte_value there). A dot before a word Grafana's Flux macros replace (even inside
# strings: grafana/grafana@0c51631848be pkg/tsdb/influxdb/flux/macros.go) is written `\x2E`.
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "$": "\\x24"})
_GRAFANA_MACRO_DOT = re.compile(rf"(?<=[A-Za-z])\.(?={'|'.join(GRAFANA_FLUX_MACRO_WORDS)})")


def string(text: str) -> str:
    """A Flux string literal that reads back as `text`, also after Grafana's macro substitution."""
    return '"' + _GRAFANA_MACRO_DOT.sub(r"\\x2E", text.translate(_STRING_ESCAPES)) + '"'


def select(bucket: str, start: str, stop: str | None, measurement: str, field: str, more: str = "") -> str:
    """One field of one measurement from `bucket` over a range; `bucket`, `start`, `stop` and the filter's `more`
    are Flux expressions (a literal, an option's name, Grafana's v.timeRangeStart)."""
    time_range = f"start: {start}, stop: {stop}" if stop else f"start: {start}"
    return (f"from(bucket: {bucket})\n"
            f"  |> range({time_range})\n"
            f'  |> filter(fn: (r) => r._measurement == "{measurement}" and r._field == "{field}"{more})')


def readings(bucket: str, start: str, stop: str | None, more: str = "") -> str:
    """The temperature readings."""
    return select(bucket, start, stop, MEASUREMENT, FIELD, more)


def health(bucket: str, start: str, stop: str | None, field: str) -> str:
    """One field of the collectors' own health points (those without a sensor tag)."""
    return select(bucket, start, stop, HEALTH_MEASUREMENT, field, " and not exists r.sensor")


# One sensor is one series, whatever its other tags did (a tag edit, a host rename split it): grouped right after the
# pushable filter, so InfluxDB reads the groups from storage (influxdata/influxdb@v2.7.12
# query/stdlib/influxdata/influxdb/rules.go PushDownGroupRule: a group whose predecessor is a ReadRange with one
# successor); a filter on sensor names (`contains`, not pushable) comes after it.
BY_SENSOR = '\n  |> group(columns: ["sensor"])'


def sensor_in(names: str) -> str:
    """Keep the sensors named in the Flux array `names`."""
    return f"\n  |> filter(fn: (r) => contains(value: r.sensor, set: {names}))"


def window(every: str, fn: str) -> str:
    """`fn` per window of `every`, each stamped with its start (as InfluxQL and the downsampling task do;
    aggregateWindow's default timeSrc is "_stop": influxdata/flux@v0.196.1 stdlib/universe/universe.flux). It keeps
    one state per window, not the rows (stdlib/universe/aggregate_window.go, feature optimizeAggregateWindow on by
    default)."""
    return f'aggregateWindow(every: {every}, fn: {fn}, timeSrc: "_start", createEmpty: false)'


AGE_OF_LAST = "float(v: int(v: now()) - int(v: r._time)) / 1000000000.0"  # seconds since the row's _time


def latest(*columns: str, then: str = "") -> str:
    """The last row of each series, then (after the filter `then`, if any) the latest by time per `columns` (one
    sensor's or host's series may have been split by other tags). `range |> filter |> last()` runs inside InfluxDB's
    storage, whatever the range, as long as the filter is pushable, as tag and field comparisons are and `contains`
    is not (a filter's unpushable part stays in Flux and keeps last() there, on every point of the range):
    influxdata/influxdb@v2.7.12:query/stdlib/influxdata/influxdb/rules.go (PushDownFilterRule, isPushableExpr, then
    PushDownBareAggregateRule, whose windowPushableAggs include last). Hence `then`, for such a filter."""
    names = ", ".join(f'"{column}"' for column in columns)
    return ("\n  |> last()" + then +
            f"\n  |> group(columns: [{names}])"
            '\n  |> sort(columns: ["_time"])'
            "\n  |> last()")


# `templog history`: parameters are bound by influxdb-client as Flux options (`extern`: `bucket`, `start`, `stop`,
# `sensors`, `every`), never spliced into the text (only the field, one of a reading's three: see `history`). The
# server sorts (group() then sort() materialise the range there); the client only streams the sorted rows.
_HISTORY_RAW = '''
  |> keep(columns: ["_time", "_value", "sensor"])
  |> group()
  |> sort(columns: ["_time", "sensor"])'''
# Windowed, one sensor is one series (BY_SENSOR), as the outbox and InfluxQL paths do.
_HISTORY_WINDOWED = f'''
summarize = (tables=<-, fn, name) => tables
  |> {window("every", "fn")}
  |> set(key: "_field", value: name)
union(tables: [data |> summarize(fn: mean, name: "mean"), data |> summarize(fn: min, name: "min"),
               data |> summarize(fn: max, name: "max")])
  |> pivot(rowKey: ["_time", "sensor"], columnKey: ["_field"], valueColumn: "_value")
  |> keep(columns: ["_time", "sensor", "mean", "min", "max"])
  |> group()
  |> sort(columns: ["_time", "sensor"])'''


def history(query: HistoryQuery) -> str:
    """The Flux of a history query; its parameters come from `params`. The field is written in the text, one of a
    reading's fields (HistoryQuery checks it): a filter compares `r._field` with a literal to run inside InfluxDB's
    storage (rules.go isPushableBinaryPredicate: the literal must be on the right), which reads only the series of
    that field, so a reading without it gives no row."""
    selected = select("bucket", "start", "stop", MEASUREMENT, query.field)
    sensors = sensor_in("sensors") if query.sensors else ""
    if query.every_s:
        return "data = " + selected + BY_SENSOR + sensors + "\n" + _HISTORY_WINDOWED
    return selected + sensors + _HISTORY_RAW


def params(query: HistoryQuery, bucket: str) -> dict:
    """The options `history`'s text reads."""
    bound: dict = {"bucket": bucket, "start": utc_datetime(query.start_ns), "stop": utc_datetime(query.stop_ns)}
    if query.sensors:
        bound["sensors"] = list(query.sensors)
    if query.every_s:
        bound["every"] = timedelta(seconds=query.every_s)
    return bound


# `templog report` (collector/report): parameters bound as options (`report_params`), as history's. The range and
# the filter on _measurement and _field come first, and the group by sensor right after (BY_SENSOR), so InfluxDB reads
# the span's readings from storage already grouped (rules.go PushDownFilterRule, PushDownGroupRule). No filter on
# the sensor names: it would stay in Flux (a `contains`, or an option, is no literal: isPushableBinaryPredicate), and
# the span's summary of a sensor not asked for is one row the client drops.
_START, _STOP = "time(v: start)", "time(v: stop)"  # nanoseconds since the epoch to a time (universe.flux: time)
_BOLTZMANN = f"math.exp(x: -{decimal(MKT_DELTA_H_OVER_R)} / (r._value + {decimal(KELVIN)}))"
_SUMMARY = f'''
in_time_order = data |> sort(columns: ["_time"])
stat = (tables=<-, name) => tables |> set(key: "_field", value: name)
union(tables: [
    data |> count() |> toFloat() |> stat(name: "readings"),
    data |> mean() |> stat(name: "mean"),
    in_time_order |> min() |> stat(name: "min"),
    in_time_order |> max() |> stat(name: "max"),
    data
      |> map(fn: (r) => ({{r with _value: {_BOLTZMANN}}}))
      |> mean()
      |> stat(name: "boltzmann_mean"),
])
  |> group()
  |> keep(columns: ["sensor", "_field", "_value", "_time"])'''


def summaries() -> str:
    """Per sensor with readings in [start, stop): five rows (`_field` names the statistic, `_value` its value),
    `_time` on min's and max's the reading's time. min() and max() are selectors keeping the first row of equal
    values (influxdata/flux@v0.196.1 stdlib/universe/min.go, max.go DoFloat: a strict `<`, `>`), after the sensor's
    rows are sorted by time: so the earliest (a group's rows are its series one after another, not in time order).
    union() merges the tables of one group key whatever their columns (union.go Process: AddNewTableCols), so the
    rows without a `_time` have it empty."""
    return ('import "math"\n\ndata = ' + readings("bucket", _START, _STOP) + BY_SENSOR
            + '\n  |> keep(columns: ["_time", "_value", "sensor"])\n' + _SUMMARY)


def outside(low: bool, high: bool) -> str:
    """The readings of option `sensor` below option `low` (if `low`) or above `high` (if `high`), in time order; the
    comparisons with the bounds after the pushed filter: their options are no literals either."""
    beyond = " or ".join(filter(None, ("r._value < low" if low else "", "r._value > high" if high else "")))
    return (readings("bucket", _START, _STOP) + "\n  |> filter(fn: (r) => r.sensor == sensor)"
            f"\n  |> filter(fn: (r) => {beyond})"
            '\n  |> keep(columns: ["_time", "_value"])'
            "\n  |> group()"
            '\n  |> sort(columns: ["_time"])')


def report_params(bucket: str, start_ns: int, stop_ns: int, **bounds: object) -> dict:
    """The options `summaries` and `outside` read; `bounds`: sensor, low, high (those that are not None). The range
    as integers, nanoseconds: a bound datetime keeps microseconds only, and a range ending `now` would take a reading
    up to 999 ns after it."""
    return {"bucket": bucket, "start": start_ns, "stop": stop_ns,
            **{name: value for name, value in bounds.items() if value is not None}}
