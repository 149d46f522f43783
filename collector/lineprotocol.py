"""InfluxDB line protocol: the point type, the escaping of each part of a line, and what text can travel in it.

What can travel is what InfluxDB 1.x, 2.x and 3.x all read back as the same text (so that a point means the same on
each), as their parsers say:
- 2.x: influxdata/influxdb@v2.7.12:models/points.go (1.x shares it: scanKey, scanMeasurement, scanTagsKey,
  scanTagsValue, scanLine, measurementEscapeCodes, tagEscapeCodes). Only `\\,`, `\\ ` and (not in measurements)
  `\\=` are escapes; any other backslash stays, `\\\\` is two backslashes. A tab inside a tag is taken as is, a tab
  or NUL at a line's start is skipped, a line whose first other character is `#` is a comment, a newline ends the
  line (no escape for it).
- 3.x: crate influxdb_line_protocol, influxdata/influxdb@v3.9.6:core/influxdb_line_protocol/src/lib.rs (the crate
  InfluxDB 3 Core builds with; v3.1.0 takes it from influxdata/influxdb3_core@fd0e474a6c0a). A space, a tab or a
  newline ends a measurement, tag key, tag value or field key (is_whitespace_boundary_char), and only a space may
  part them (fn whitespace): a line with a raw tab in a tag is malformed. `\\\\` is one backslash (escaped_value), a
  text ending in a backslash is refused (EndsWithBackslash), a NUL ends a measurement; `#` starts a comment line.
So: comma, equals sign and space are escaped as below. A tab and a newline cannot travel (there is no escape for
them, and 3.x ends the text at either), nor a backslash (read as itself by 1.x and 2.x, as an escape by 3.x); the
other control characters are refused with them (NUL ends a 3.x measurement; a CR, which all three would carry, is
no text a tag should hold), as are lone surrogates (no UTF-8) and the Unicode line and paragraph separators.
Other non-ASCII text travels as UTF-8 on all three.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Mapping

MEASUREMENT = "temperature"
FIELD = "celsius"
HUMIDITY = "humidity"  # %RH, on the same point, from sensors that measure it
DEWPOINT = "dewpoint"  # °C, computed from celsius and humidity
READING_FIELDS = (FIELD, HUMIDITY, DEWPOINT)
HEALTH_MEASUREMENT = "templog"

# One table per part of a line (the contexts of influxdb-client-python's point.py). The three parsers cited above
# agree on these; tag keys, tag values and field keys share one rule there, yet each keeps its own entry here.
_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})
_KEY_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
ESCAPES = {
    "measurement": _MEASUREMENT_ESCAPES,
    "tag key": _KEY_ESCAPES,
    "tag value": _KEY_ESCAPES,
    "field key": _KEY_ESCAPES,
}  # no string field values: templog writes numbers only

LONGEST_TAG_TEXT = 256  # characters: far below the 64 KiB series key InfluxDB refuses (seen: HTTP 400 on 1.6)
_RAW_FORBIDDEN = {"Cc": "a control character", "Cs": "a lone surrogate", "Zl": "a line separator",
                  "Zp": "a paragraph separator"}


def text_problem(text: str, context: str) -> str | None:
    """Why `text` cannot travel as that part of a line (a key of ESCAPES), or None if it can (see above)."""
    if not text:
        return "must not be empty"
    if len(text) > LONGEST_TAG_TEXT:
        return f"is longer than {LONGEST_TAG_TEXT} characters"
    if "\\" in text:
        return "must not contain a backslash: InfluxDB 1.x and 2.x read one as itself, 3.x as an escape"
    for char in text:
        kind = _RAW_FORBIDDEN.get(unicodedata.category(char))
        if kind:
            return f"must not contain {kind} (U+{ord(char):04X})"
    if context == "measurement" and text.startswith("#"):
        return "must not start with '#' (InfluxDB reads such a line as a comment)"
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

    A name becomes the `sensor` tag (so `text_problem`), and it goes into query texts: the alert rules' Flux, and
    the dashboards' queries through Grafana's `${sensor:json}` (JSON.stringify: no Flux escaping) and InfluxQL's
    regex-escaped `$sensor`. Refused is exactly what those break: Grafana's Flux and InfluxQL macros (above), and `$"`
    or `${` — JSON writes `"` as `\"`, and Flux reads `$` then any character but `{` or `"` as two plain ones, so `$\`
    eats the backslash and the string ends early (influxdata/flux@v0.196.1 libflux/flux-core/src/scanner/scanner.rl:
    dollar_value), while `${` starts an interpolation.
    """
    problem = text_problem(name, "tag value")
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
# With them the long-term fields both downsamplers write (downsample.flux's fieldFn, influxdb3/plugins/
# templog_downsample.py): a long-term point with a tag and a field of one name is refused by InfluxDB 3
# (influxdata/influxdb@v3.10.1:influxdb3_write/src/write_buffer/validator.rs, column_or_create: InvalidColumnType)
# and shown by InfluxQL as `<key>_1` on 1.x and 2.x, where the dashboards read them.
LONGTERM_FIELDS = tuple(prefix + stat for prefix in ("", "humidity_", "dewpoint_")
                        for stat in ("mean", "min", "max", "count"))
DOWNSAMPLE_COLUMNS = ("sum", "raw", "stored", *LONGTERM_FIELDS)


def tag_key_problem(key: str) -> str | None:
    """Why `key` cannot be the key of a configured tag (collector.tags, a sensor's tags), or None if it can."""
    if key == "sensor":
        return "set by templog to each point's sensor name"
    if key == "time":
        return "InfluxDB refuses 'time' as a tag key (HTTP 400: the point would be set aside)"
    if key in READING_FIELDS:
        return f"'{key}' is the field's name of a reading; InfluxQL would show such a tag as '{key}_1'"
    if key in DOWNSAMPLE_COLUMNS:
        return (f"the downsampling task (influxdb/tasks/downsample.flux; on InfluxDB 3 influxdb3/plugins/"
                f"templog_downsample.py) makes a column or long-term field '{key}' beside the tags")
    if key.startswith("_"):
        return "keys starting with '_' are reserved by InfluxDB (_measurement, _field, _time, ...)"
    return text_problem(key, "tag key")


def format_float(value: float) -> str:
    return repr(float(value))


@dataclass(frozen=True)
class Series:
    """A measurement and its tags: what InfluxDB keeps one series of points for. A tag whose value is empty is left
    out (an empty hostname: no host tag). Its line-protocol key is rendered once (a sensor's points all share it);
    text that cannot travel (`text_problem`) is refused with ValueError."""

    measurement: str
    tags: Mapping[str, str]
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tags = {k: v for k, v in self.tags.items() if v != ""}
        parts = [_escaped(self.measurement, "measurement")]
        parts += [f"{_escaped(k, 'tag key')}={_escaped(v, 'tag value')}" for k, v in sorted(tags.items())]
        object.__setattr__(self, "tags", tags)
        object.__setattr__(self, "key", ",".join(parts))  # tags sorted by key, as InfluxDB recommends


@dataclass(frozen=True)
class Point:
    """One point: its series, its fields (numbers: an int is written as an integer, `1i`, a float as a float), and
    its time in nanoseconds since the Unix epoch."""

    series: Series
    fields: Mapping[str, float | int]
    time_ns: int

    def line(self) -> str:
        """The point in line protocol; ValueError for a field that cannot travel (no fields, a key `text_problem`
        refuses or a tag has, a value that is not a finite number)."""
        if not self.fields:
            raise ValueError(f"a point of {self.series.measurement!r} without fields")
        if not self.series.tags.keys().isdisjoint(self.fields):  # InfluxDB 3 refuses it (collector/health.py)
            clash = sorted(self.series.tags.keys() & self.fields.keys())[0]
            raise ValueError(f"field key {clash[:40]!r} is also a tag key of the point")
        rendered = ",".join(f"{_field_key(name)}={_field_value(name, value)}" for name, value in self.fields.items())
        return f"{self.series.key} {rendered} {self.time_ns}"


def _escaped(text: str, context: str) -> str:
    if not isinstance(text, str):
        raise ValueError(f"{context} {text!r} is not text")
    problem = text_problem(text, context)
    if problem:
        raise ValueError(f"{context} {text[:40]!r} {problem}")
    return text.translate(ESCAPES[context])


@functools.lru_cache(maxsize=1024)  # the same few names, every point: checked once
def _field_key(name: str) -> str:
    return _escaped(name, "field key")


def _field_value(name: str, value: float | int) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value}i"
    if isinstance(value, float) and math.isfinite(value):
        return format_float(value)
    raise ValueError(f"field {name!r}: {value!r} is not a finite number")
