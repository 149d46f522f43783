"""Flux texts shared by the rules and the dashboard."""

from __future__ import annotations

import re

from collector.lineprotocol import FIELD, GRAFANA_FLUX_MACRO_WORDS, HEALTH_MEASUREMENT, MEASUREMENT

# Flux's scanner reads `$` followed by any character but `{` or `"` as two plain characters, so `$\"` ends the string
# (influxdata/flux@v0.196.1 libflux/flux-core/src/scanner/scanner.rl: dollar_value): every `$` is written as the
# byte escape `\x24` instead (byte_value there). A dot before a word Grafana's Flux macros replace (even inside
# strings: grafana/grafana@0c51631848be pkg/tsdb/influxdb/flux/macros.go) is written `\x2E`.
_FLUX_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "$": "\\x24"})
_GRAFANA_MACRO_DOT = re.compile(rf"(?<=[A-Za-z])\.(?={'|'.join(GRAFANA_FLUX_MACRO_WORDS)})")


def flux_string(text: str) -> str:
    """A Flux string literal that reads back as `text`, also after Grafana's macro substitution."""
    return '"' + _GRAFANA_MACRO_DOT.sub(r"\\x2E", text.translate(_FLUX_STRING_ESCAPES)) + '"'


AGE_OF_LAST = "float(v: int(v: now()) - int(v: r._time)) / 1000000000.0"  # seconds since the row's _time


def flux_readings(bucket: str, start: str, stop: str | None, sensor_filter: str) -> str:
    time_range = f"start: {start}, stop: {stop}" if stop else f"start: {start}"
    return (f"from(bucket: {flux_string(bucket)})\n"
            f"  |> range({time_range})\n"
            f'  |> filter(fn: (r) => r._measurement == "{MEASUREMENT}" and r._field == "{FIELD}"{sensor_filter})')


def flux_health(bucket: str, start: str, stop: str | None, field: str) -> str:
    time_range = f"start: {start}, stop: {stop}" if stop else f"start: {start}"
    return (f"from(bucket: {flux_string(bucket)})\n"
            f"  |> range({time_range})\n"
            f'  |> filter(fn: (r) => r._measurement == "{HEALTH_MEASUREMENT}" and r._field == "{field}" '
            "and not exists r.sensor)")


def flux_latest(*columns: str, then: str = "") -> str:
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


