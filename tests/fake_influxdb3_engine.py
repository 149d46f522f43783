"""A stand-in for InfluxDB 3's processing engine, enough to run a scheduled plugin (influxdb3/plugins/) here.

It behaves as influxdata/influxdb@v3.10.1 does, with Apache DataFusion (the engine InfluxDB 3 queries with; the
Python package here is a newer release than the fork 3.10.1 bundles) executing every query for real:
- influxdb3_py_api/src/system_py.rs execute_schedule_trigger: the plugin file is run in fresh globals, then
  process_scheduled_call(influxdb3_local, call_time, args) is called with call_time a naive datetime from
  PyDateTime::from_timestamp(seconds, None) (datetime.fromtimestamp: local time) and args a dict of strings or None;
- PyPluginCallApi.query(query, args=None, database=None): SQL on the trigger's database or the named one, rows as
  dicts: a null as None, a timestamp as its int nanoseconds, a dictionary (tag) value as its string, Int64, UInt64,
  Float64, Utf8 and Boolean as themselves, any other type a ValueError; no batch, no row: [];
- write / write_to_db(db, line_builder): line_builder.build() is kept, and everything is written when the call has
  returned (WriteAccumulator, then plugins.rs handle_return_state: one write_lp per database);
- line_builder/mod.rs setup_line_builder: `LineBuilder` is a builtin while the plugin runs.
Tables are stored as InfluxDB 3 keeps them: tags Dictionary(Int32, Utf8), fields Float64 or Int64, `time`
Timestamp(ns); writing a row of an existing series and time replaces the fields the write holds and keeps the others
(one row per series and time, as the spec's "re-sending the same point is harmless" relies on).
"""

from __future__ import annotations

import builtins
import datetime
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
from datafusion import SessionConfig, SessionContext

TAG_TYPE = pa.dictionary(pa.int32(), pa.string())


class LineBuilder:
    """What influxdb3_py_api/src/line_builder/line_builder.py's LineBuilder builds (written here from its behaviour):
    measurement, `,tag=value` (value escaped: backslash, comma, equals sign, space), ` field=value,...` (a float
    whole-valued as `N.0`, else str(); an integer `Ni`), then ` <ns>` if set. Keys with a space, comma or equals
    sign, an empty key or no field at all are refused."""

    def __init__(self, measurement: str):
        if " " in measurement:
            raise ValueError("Measurement name cannot contain spaces")
        self.measurement = measurement
        self.tags: dict[str, str] = {}
        self.fields: dict[str, str] = {}
        self.timestamp_ns: int | None = None

    @staticmethod
    def _key(key: str) -> str:
        if not key or any(c in key for c in " ,="):
            raise ValueError(f"invalid key {key!r}")
        return key

    def tag(self, key: str, value: str) -> LineBuilder:
        self.tags[self._key(key)] = str(value)
        return self

    def int64_field(self, key: str, value: int) -> LineBuilder:
        self.fields[self._key(key)] = f"{value}i"
        return self

    def float64_field(self, key: str, value: float) -> LineBuilder:
        self.fields[self._key(key)] = f"{int(value)}.0" if value % 1 == 0 else str(value)
        return self

    def time_ns(self, timestamp_ns: int) -> LineBuilder:
        self.timestamp_ns = timestamp_ns
        return self

    def build(self) -> str:
        if not self.fields:
            raise ValueError("At least one field is required")
        line = self.measurement.replace(",", "\\,").replace(" ", "\\ ")
        for key, value in self.tags.items():
            escaped = value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")
            line += f",{key}={escaped}"
        line += " " + ",".join(f"{key}={value}" for key, value in self.fields.items())
        return line + (f" {self.timestamp_ns}" if self.timestamp_ns is not None else "")


def parse_line(line: str) -> tuple[str, dict[str, str], dict[str, float | int], int]:
    """One line as LineBuilder builds it: measurement, tags, fields, time."""
    parts = re.split(r"(?<!\\) ", line)
    assert len(parts) == 3, f"stand-in: a line without its time: {line!r}"
    head, fields_text, time_text = parts
    measurement, *tag_texts = re.split(r"(?<!\\),", head)
    tags = {}
    for text in tag_texts:
        key, value = re.split(r"(?<!\\)=", text, maxsplit=1)
        tags[key] = re.sub(r"\\(.)", r"\1", value)
    fields: dict[str, float | int] = {}
    for text in fields_text.split(","):
        key, value = text.split("=", 1)
        fields[key] = int(value[:-1]) if value.endswith("i") else float(value)
    return measurement, tags, fields, int(time_text)


class Database:
    """One database: its tables as lists of rows {column: value}, one row per series and time."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[tuple, dict[str, Any]]] = {}
        self.tag_columns: dict[str, set[str]] = {}

    def write(self, table: str, tags: dict[str, str], fields: dict[str, Any], time_ns: int) -> None:
        rows = self.tables.setdefault(table, {})
        self.tag_columns.setdefault(table, set()).update(tags)
        key = (tuple(sorted(tags.items())), time_ns)
        row = rows.setdefault(key, {**tags, "time": time_ns})
        row.update(fields)

    def rows(self, table: str) -> list[dict[str, Any]]:
        return sorted(self.tables.get(table, {}).values(), key=lambda r: (r["time"], sorted(
            (k, str(v)) for k, v in r.items())))

    def arrow(self, table: str) -> pa.Table:
        rows = list(self.tables[table].values())
        columns = sorted({column for row in rows for column in row} - {"time"})
        arrays, names = [], []
        for column in columns:
            values = [row.get(column) for row in rows]
            if column in self.tag_columns[table]:
                arrays.append(pa.array(values, pa.string()).dictionary_encode().cast(TAG_TYPE))
            elif all(isinstance(v, int) for v in values if v is not None):
                arrays.append(pa.array(values, pa.int64()))
            else:
                arrays.append(pa.array(values, pa.float64()))
            names.append(column)
        arrays.append(pa.array([row["time"] for row in rows], pa.timestamp("ns")))
        names.append("time")
        return pa.Table.from_arrays(arrays, names=names)


def python_value(array: pa.Array, index: int) -> Any:
    """As PyPluginCallApi.query converts one cell."""
    if not array[index].is_valid:
        return None
    kind = array.type
    if pa.types.is_timestamp(kind):
        return array.cast(pa.int64())[index].as_py()
    if pa.types.is_dictionary(kind):
        return array[index].as_py()
    if kind in (pa.int64(), pa.uint64(), pa.float64(), pa.string(), pa.bool_()):
        return array[index].as_py()
    raise ValueError(f"Unsupported data type: {kind}")


class Engine:
    """The server's databases and a scheduled trigger's run over them."""

    def __init__(self) -> None:
        self.databases: dict[str, Database] = {}
        self.logs: list[tuple[str, str]] = []
        self.queries: list[tuple[str | None, str]] = []
        self.written_lines: list[tuple[str, str]] = []

    def database(self, name: str) -> Database:
        return self.databases.setdefault(name, Database())

    def query(self, database: str, sql: str) -> list[dict[str, Any]]:
        context = SessionContext(SessionConfig().with_information_schema(True))
        for table in self.database(database).tables:
            context.register_record_batches(table, [self.database(database).arrow(table).to_batches()])
        result = context.sql(sql).to_arrow_table()
        return [{name: python_value(result.column(name).combine_chunks(), i) for name in result.column_names}
                for i in range(result.num_rows)]

    def run_scheduled(self, plugin: Path, trigger_db: str, call_time_s: int,
                      args: dict[str, str] | None = None) -> None:
        api = PluginCallApi(self, trigger_db)
        scope: dict[str, Any] = {}
        builtins.LineBuilder = LineBuilder  # type: ignore[attr-defined]
        try:
            exec(compile(plugin.read_text(), str(plugin), "exec"), scope)
            scope["process_scheduled_call"](api, datetime.datetime.fromtimestamp(call_time_s), args)
        finally:
            del builtins.LineBuilder  # type: ignore[attr-defined]
        for database, lines in api.accumulated.items():
            for line in lines:
                self.written_lines.append((database, line))
                table, tags, fields, time_ns = parse_line(line)
                self.database(database).write(table, tags, fields, time_ns)


class PluginCallApi:
    """The `influxdb3_local` a plugin is given (PyPluginCallApi)."""

    def __init__(self, engine: Engine, trigger_db: str):
        self.engine = engine
        self.trigger_db = trigger_db
        self.accumulated: dict[str, list[str]] = {}

    def info(self, *args: object) -> None:
        self.engine.logs.append(("info", " ".join(str(a) for a in args)))

    def warn(self, *args: object) -> None:
        self.engine.logs.append(("warn", " ".join(str(a) for a in args)))

    def error(self, *args: object) -> None:
        self.engine.logs.append(("error", " ".join(str(a) for a in args)))

    def query(self, query: str, args: dict[str, str] | None = None, database: str | None = None) -> list[dict]:
        assert args is None, "stand-in: statement parameters are not modelled"
        self.engine.queries.append((database, query))
        return self.engine.query(database or self.trigger_db, query)

    def write(self, line_builder: LineBuilder) -> None:
        self.write_to_db(self.trigger_db, line_builder)

    def write_to_db(self, db_name: str, line_builder: LineBuilder) -> None:
        self.accumulated.setdefault(db_name, []).append(line_builder.build())


def write_points(database: Database, points: Iterable[dict[str, Any]], table: str = "temperature") -> None:
    """Raw points {"time": ns, "tags": {...}, field: value, ...} as the collector writes them."""
    for point in points:
        fields = {k: v for k, v in point.items() if k not in ("time", "tags") and v is not None}
        database.write(table, point["tags"], fields, point["time"])
