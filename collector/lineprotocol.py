"""InfluxDB line protocol for temperature points, with the escaping rules of the InfluxDB docs."""

from __future__ import annotations

from typing import Mapping

MEASUREMENT = "temperature"
FIELD = "celsius"
HEALTH_MEASUREMENT = "templog"

_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})
_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})


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
