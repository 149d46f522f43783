"""InfluxDB line protocol for temperature points, with the escaping rules of the InfluxDB docs."""

from __future__ import annotations

import re
import unicodedata
from typing import Mapping

MEASUREMENT = "temperature"
FIELD = "celsius"
HEALTH_MEASUREMENT = "templog"

_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})
_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})


LONGEST_TAG_TEXT = 256  # characters: far below the 64 KiB series key InfluxDB refuses (seen: HTTP 400 on 1.6)
_RAW_FORBIDDEN = {"Cc": "a control character", "Cs": "a lone surrogate", "Zl": "a line separator",
                  "Zp": "a paragraph separator"}


def tag_text_problem(text: str) -> str | None:
    """Why `text` cannot travel as a tag key or value, or None if it can.

    The line protocol escapes comma, equals and space, and nothing else: "line protocol does not support the newline
    character" (InfluxDB's reference), and InfluxDB versions read a backslash differently (1.6 refuses a tag value
    ending in one: HTTP 400). Control characters and lone surrogates are no text a tag should hold.
    """
    if not text:
        return "must not be empty"
    if len(text) > LONGEST_TAG_TEXT:
        return f"is longer than {LONGEST_TAG_TEXT} characters"
    if "\\" in text:
        return "must not contain a backslash"
    for char in text:
        kind = _RAW_FORBIDDEN.get(unicodedata.category(char))
        if kind:
            return f"must not contain {kind} (U+{ord(char):04X})"
    return None


# What Grafana rewrites in a Flux query's whole text, string literals included, after it has put the dashboard's
# variables in (grafana/grafana@0c51631848be pkg/tsdb/influxdb/flux/macros.go: each match of `([a-zA-Z]+)\.([a-zA-Z]+)`
# whose second part is one of these words is replaced with strings.ReplaceAll, so also inside a longer word;
# `$__interval` and `$__interval_ms` likewise).
GRAFANA_FLUX_MACRO_WORDS = ("timeRangeStart", "timeRangeStop", "windowPeriod", "bucket", "defaultBucket",
                            "organization")
_GRAFANA_FLUX_MACRO = re.compile(rf"[A-Za-z]\.({'|'.join(GRAFANA_FLUX_MACRO_WORDS)})|\$__interval")
# What Grafana's InfluxQL backend rewrites in a query's whole text after the dashboard's variables are in, the
# regex-escaped `$sensor` included (`\$` still holds `$`): grafana/grafana@0952bef509e3 (not the pinned v12.3.1)
# pkg/tsdb/influxdb/models/query.go Build, strings.ReplaceAll of $timeFilter, $interval, $__interval_ms, $__interval.
_GRAFANA_INFLUXQL_MACRO = re.compile(r"\$(timeFilter|interval|__interval)")


def sensor_name_problem(name: str) -> str | None:
    r"""Why `name` cannot be a sensor's name, or None if it can.

    A name becomes the `sensor` tag (so `tag_text_problem`), and it goes into query texts: the alert rules' Flux, and
    the dashboards' queries through Grafana's `${sensor:json}` (JSON.stringify: no Flux escaping) and InfluxQL's
    regex-escaped `$sensor`. Refused is exactly what those break: Grafana's Flux and InfluxQL macros (above), and `$"`
    or `${` — JSON writes `"` as `\"`, and Flux reads `$` then any character but `{` or `"` as two plain ones, so `$\`
    eats the backslash and the string ends early (influxdata/flux@v0.196.1 libflux/flux-core/src/scanner/scanner.rl:
    dollar_value), while `${` starts an interpolation.
    """
    problem = tag_text_problem(name)
    if problem:
        return problem
    if name.strip() != name:
        return "must not start or end with a space"
    if '$"' in name:
        return 'must not contain $" (Flux would end the string there)'
    if "${" in name:
        return "must not contain ${ (Flux would read an interpolation)"
    macro = _GRAFANA_FLUX_MACRO.search(name)
    if macro:
        return f"must not contain {macro.group()!r} (Grafana replaces it in Flux queries, even inside strings)"
    macro = _GRAFANA_INFLUXQL_MACRO.search(name)
    if macro:
        return f"must not contain {macro.group()!r} (Grafana replaces it in InfluxQL queries, even inside regexes)"
    return None


# The columns influxdb/tasks/downsample.flux makes beside a series' tags: its reduce() record (count, sum, min, max),
# the mean, the long-term fields to() writes, the raw and stored counts pivot() compares. A tag of one of these
# names breaks the task: reduce() writes its value into the tag's group-key column (flux@v0.196.1:
# stdlib/universe/reduce.go computeGroupKey), and to() makes no tag of a column its fieldFn reads
# (stdlib/influxdata/influxdb/to.go), so the long-term series would lack the tag and its count never match;
# pivot() refuses to make a column a tag already holds (stdlib/universe/pivot.go: "a column named ... already exists").
DOWNSAMPLE_COLUMNS = ("count", "sum", "min", "max", "mean", "raw", "stored")


def tag_key_problem(key: str) -> str | None:
    """Why `key` cannot be a tag key of a temperature point, or None if it can."""
    if key == "time":
        return "InfluxDB refuses 'time' as a tag key (HTTP 400: the point would be set aside)"
    if key == FIELD:
        return f"'{FIELD}' is the field's name; InfluxQL would show such a tag as '{FIELD}_1'"
    if key in DOWNSAMPLE_COLUMNS:
        return f"the downsampling task (influxdb/tasks/downsample.flux) makes a column '{key}' beside the tags"
    if key.startswith("_"):
        return "keys starting with '_' are reserved by InfluxDB (_measurement, _field, _time, ...)"
    return tag_text_problem(key)


def escape_measurement(name: str) -> str:
    return name.translate(_MEASUREMENT_ESCAPES)


def escape_tag(text: str) -> str:
    return text.translate(_TAG_ESCAPES)


def series_key(measurement: str, tags: Mapping[str, str]) -> str:
    """`measurement,k=v,...` with tags sorted by key, as InfluxDB recommends for write performance."""
    parts = [escape_measurement(measurement)]
    parts += [f"{escape_tag(k)}={escape_tag(v)}" for k, v in sorted(tags.items()) if v != ""]
    return ",".join(parts)


def format_float(value: float) -> str:
    return repr(float(value))


def temperature_line(key: str, celsius: float, time_ns: int) -> str:
    return f"{key} {FIELD}={format_float(celsius)} {time_ns}"


def fields_line(key: str, fields: Mapping[str, float | int], time_ns: int) -> str:
    """A point with several numeric fields; ints are written as integers (`1i`), floats as floats."""
    rendered = []
    for name, value in fields.items():
        text = f"{value}i" if isinstance(value, int) and not isinstance(value, bool) else format_float(value)
        rendered.append(f"{escape_tag(name)}={text}")
    return f"{key} {','.join(rendered)} {time_ns}"
