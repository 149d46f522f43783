"""FakeInfluxDB3: the one stand-in for InfluxDB 3 Core in the tests (no InfluxDB 3 server runs here).

One store of databases and tables, served over HTTP (the API clients and the init script call) and to the processing
engine's plugins (the API object a plugin is handed), answering as influxdata/influxdb@v3.10.1 does, from its source:

HTTP API
* ``influxdb3_server/src/http.rs``: route_request (which paths there are, and that every one but those named in
  ``--disable-authz`` needs a token: 401 ``{"error": "the request was not authenticated"}``, 400 for a header
  without a scheme; Bearer and Token are read), ping (200, a JSON body, X-Influxdb-Version ``3.10.1``), health
  (``/health`` and ``/api/v1/health``: 200 ``OK``), write_lp_inner (accept_partial defaults to true, 204 when all is
  stored), read_body (413 past max_request_bytes, 10 MiB by default), read_body_json (415 without a JSON
  Content-Type), create_database (200, or 409 from CatalogError::AlreadyExists), update_database (PUT: set, or
  clear without retention_period), delete_database (DELETE: the catalog's soft_delete_database, below),
  create_table (POST /api/v3/configure/table),
  show_databases (``[{"iox::database": ...}]``), query_sql and
  extract_query_request (GET or POST, ``format`` json or jsonl, the Accept header checked first),
  configure_processing_engine_trigger (POST: the request's plugin file read from the plugin directory, then the
  catalog's create_processing_engine_trigger) and delete_processing_engine_trigger (DELETE, from the query string);
  ``impl IntoResponse for Error`` and ``for CatalogError`` (each failure's status and body: a partial write is 400
  ``{"error": "partial write of line protocol occurred", "data": [{"error_message", "line_number",
  "original_line"}]}``, 422 when a listed line hit a limit; NotFound 404, AlreadyExists 409, TooManyDbs 422, any
  other catalog or plugin error 500; a failed query as datafusion_error_status_code classifies its DataFusion
  error, through Diagnostic and Context wrappers, with its Display as plain text: see query_failure);
* ``influxdb3_types/src/http.rs`` (QueryFormat::try_from_headers: only ``application/json``, ``*/*``, text/html
  or none pass; CreateDatabaseRequest, WriteParams, ProcessingEngineTriggerCreateRequest and -DeleteRequest) and
  ``influxdb3_types/src/write.rs`` (Precision's names; WriteLineError, its original_line cut to 20 bytes);
* ``influxdb3_catalog/src/catalog/versions/v2/update.rs`` (create_processing_engine_trigger: the database must
  exist, the specification parse, the name be new; delete_processing_engine_trigger: an enabled trigger needs
  ``force``: ProcessingEngineTriggerRunning), ``.../v3/schema/trigger.rs`` (TriggerSettings, ErrorBehavior
  ``log``/``retry``/``disable``, from_string_rep: ``cron:`` with the cron crate's 6 or 7 fields, ``every:``,
  ``table:``, ``all_tables``, ``request:``), ``influxdb3/src/commands/serve.rs`` (CORE_NUM_DBS_LIMIT: 5 databases
  besides ``_internal``, ``versions/v2.rs`` database_count);
* ``influxdb3_write/src/write_buffer/validator.rs`` (line numbers count from 1; a field whose type differs from
  the column's is refused for that line: CatalogError::InvalidColumnType; a new column past the table's limit:
  TooManyColumns; without accept_partial one bad line refuses the whole write) and ``write_buffer/mod.rs`` (a
  database is created by its first write, keeping forever; a write to a soft-deleted one is 400
  ``{"error": "cannot write to soft-deleted database '<name>' - it is marked for deletion"}`` without ``data``:
  validator.rs initialize, WriteBufferError::DatabaseDeleted, http.rs IntoResponse);
* ``influxdb3_catalog/src/catalog/versions/v3/catalog.rs`` soft_delete_database and
  ``influxdb3_catalog/src/format/records/database.rs`` SoftDeleteDatabase::apply: the database and its tables are
  marked deleted and renamed ``<name>-<deletion time %Y%m%dT%H%M%S>`` (``-<id>`` added on a collision,
  ``format/records/conversions.rs`` soft_deleted_name), so the name is free: the next write to it creates a new
  database (catalog.rs begin_database_transaction), keeping forever; show_databases leaves deleted ones out;
* ``influxdb3_system_tables/src/databases.rs``: ``system.databases`` in the ``_internal`` database, with
  ``retention_period_ns`` (null: forever).

Processing engine (``run_schedule_trigger``)
* ``influxdb3_py_api/src/system_py.rs`` execute_schedule_trigger: the plugin file (read as the trigger route reads
  it, ``influxdb3_processing_engine/src/lib.rs`` read_plugin_code) is run in fresh globals, then
  ``process_scheduled_call(influxdb3_local, call_time, args)`` is called, call_time a naive datetime from
  ``PyDateTime::from_timestamp(seconds, None)`` (datetime.fromtimestamp: local time), args a dict of strings or None;
  its logger's "starting execution" and "finished execution" lines around the call;
* PyPluginCallApi: ``info``/``warn``/``error`` (the arguments' str() joined by spaces), ``query(query, args=None,
  database=None)`` (SQL on the trigger's database or the named one; rows as dicts: a null as None, a timestamp as its
  int nanoseconds, a dictionary (tag) value as its string, Int64, UInt64, Float64, Utf8 and Boolean as themselves,
  any other type a ValueError; no batch: []; a failed query raises QueryError "error: ... executing query on ..."),
  ``write``/``write_to_db(db, line_builder)`` (``line_builder.build()`` kept, WriteAccumulator) and
  ``write_sync``/``write_sync_to_db`` (written at once); statement parameters and ``cache`` are not modelled;
* ``influxdb3_processing_engine/src/plugins.rs`` handle_return_state: when the call has returned, one write per
  database of its lines joined by newlines, through ``write.rs`` InProcessWriteEndpoint (accept_partial false,
  nanoseconds): the same write as write_lp's; a refused one is an error of the run, not an exception;
* ``influxdb3_py_api/src/line_builder/mod.rs`` setup_line_builder: ``LineBuilder`` a builtin while the plugin runs
  (the class below is written from line_builder.py's behaviour, not copied).

The store: lines are read with the InfluxDB 3 line protocol reading in test_lineprotocol_properties.py (parse_v3);
one row per series and time (writing it again replaces the fields the write holds and keeps the others). A query is
executed by Apache DataFusion, the engine InfluxDB 3 runs (``datafusion`` on PyPI: the pinned 51.0.0, the release
3.10.1's fork of DataFusion is of (Cargo.toml [patch.crates-io], Cargo.lock); it answers alike on 55.0.0), with
information_schema on and the default catalog and schema ``public`` and ``iox``
(``core/datafusion_util/src/config.rs``), on a table per measurement: ``time`` a timestamp in nanoseconds without a
zone, tags Dictionary(Int32, Utf8) (as ``core/schema/src/lib.rs`` types them), fields as written; a column exists
once a point has written it, as in InfluxDB 3's catalog. The HTTP answer is written by DataFusion's own JSON writer,
arrow-json, which InfluxDB 3 uses too: null columns left out, ``time`` without a zone, sent with
``Transfer-Encoding: chunked``, as hyper streams a body of unknown length.
"""

from __future__ import annotations

import base64
import builtins
import datetime
import json
import os
import re
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, urlsplit

import datafusion
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from loopback_server import LoopbackServer, ServedOnLoopback
from test_lineprotocol_properties import Malformed, parse_v3

VERSION = "3.10.1"
INTERNAL_DB = "_internal"
MAX_REQUEST_BYTES = 10 * 1024 * 1024  # influxdb3_clap_blocks: --max-http-request-size, 10485760
COLUMN_LIMIT = 500  # columns per table (influxdb3_catalog: the default columns_per_table_limit)
QUERY_FILE_LIMIT = 432  # Parquet files a query may read per table (write_buffer/mod.rs: unwrap_or(432))
FILE_WINDOW_NS = 600 * 10**9  # a persisted file's time window: gen1 duration, 10m by default (serve.rs)
DATABASE_LIMIT = 5  # influxdb3/src/commands/serve.rs CORE_NUM_DBS_LIMIT
_PRECISION_NS = {"nanosecond": 1, "ns": 1, "n": 1, "microsecond": 1_000, "us": 1_000, "u": 1_000,
                 "millisecond": 1_000_000, "ms": 1_000_000, "second": 1_000_000_000, "s": 1_000_000_000}
_HUMANTIME_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(/[A-Za-z0-9_-]+)?")
_ACCEPTED = (None, "application/json", "*/*")
# a tag column's type (core/schema/src/lib.rs: InfluxColumnType::Tag => Dictionary(Int32, Utf8))
TAG_TYPE = pa.dictionary(pa.int32(), pa.string())
_ARROW_TYPES = {"tag": TAG_TYPE, "float": pa.float64(), "int": pa.int64(), "str": pa.string(), "bool": pa.bool_()}
# influxdb3_types/src/http.rs FieldType (serde lowercase) as the store's kinds; uint64 is not modelled
_FIELD_TYPES = {"float64": "float", "int64": "int", "utf8": "str", "bool": "bool"}
_UNAUTHENTICATED = '{"error": "the request was not authenticated"}'
_ERROR_BEHAVIORS = ("log", "retry", "disable")  # trigger.rs ErrorBehavior, snake_case


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes = b""
    content_type: str | None = None
    chunks: Iterable[bytes] | None = None  # instead of body: sent chunked
    headers: tuple[tuple[str, str], ...] = ()


class _Refusal(Exception):
    def __init__(self, status: int, body: str | dict, content_type: str | None = None) -> None:
        super().__init__(body)
        if isinstance(body, dict):
            body, content_type = json.dumps(body, separators=(",", ":")), "application/json"  # serde_json's
        self.reply = _Reply(status, body.encode(), content_type)

    def text(self) -> str:
        return f"{self.reply.status}: {self.reply.body.decode()}"


@dataclass
class _Table:
    """One table: its columns (time first, then each as it was first written: "tag" or a field's type) and its rows,
    {(sorted tags, time_ns): {column: value}}; or, once `persist()` loaded it, that Arrow table as it is."""

    kinds: dict[str, str] = field(default_factory=lambda: {"time": "timestamp"})
    rows: dict[tuple, dict[str, Any]] = field(default_factory=dict)
    persisted: pa.Table | None = None
    _arrow: pa.Table | None = None  # the rows as Arrow, until the next write
    _files: tuple[pa.Table, list[tuple[int, int]]] | None = None  # files() of that Arrow table

    def arrow(self) -> pa.Table:
        if self.persisted is not None:
            return self.persisted
        if self._arrow is None:
            ordered = sorted(self.rows.items(), key=lambda kv: (kv[0][1], kv[0][0]))
            arrays = {"time": pa.array([key[1] for key, _ in ordered], pa.timestamp("ns"))}
            for column, kind in self.kinds.items():
                if column != "time":
                    arrays[column] = pa.array([row.get(column) for _, row in ordered], _ARROW_TYPES[kind])
            self._arrow = pa.table(arrays)
        return self._arrow

    def files(self) -> list[tuple[int, int]]:
        """(min time, max time) in ns of each Parquet file the table's rows are in: one per 10-minute window that
        holds rows (queryable_buffer.rs: a PersistJob per table and chunk_time at each snapshot; a window written again
        at a later snapshot gets another file, which the stand-in does not model: a floor for the server's count)."""
        data = self.arrow()
        if self._files is None or self._files[0] is not data:
            times = data.column("time").cast(pa.int64())
            windows = pa.table({"window": pc.divide(times, FILE_WINDOW_NS), "time": times})
            spans = windows.group_by("window").aggregate([("time", "min"), ("time", "max")])
            self._files = (data, list(zip(spans["time_min"].to_pylist(), spans["time_max"].to_pylist(), strict=True)))
        return self._files[1]


@dataclass
class PluginReturnState:
    """What a plugin run leaves (system_py.rs PluginReturnState): its log lines (level, text) and its lines for each
    database; and what handle_return_state's writes of them refused (the server logs those)."""

    log_lines: list[tuple[str, str]] = field(default_factory=list)
    write_db_lines: dict[str, list[str]] = field(default_factory=dict)
    write_errors: list[str] = field(default_factory=list)


class QueryError(Exception):
    """influxdb3_py_api.QueryError (system_py.rs create_exception!): a plugin's query that failed."""


class FakeInfluxDB3(ServedOnLoopback):
    """InfluxDB 3 Core on 127.0.0.1 with state in memory: its HTTP API (`start()`, `url`) and its processing engine
    (`run_schedule_trigger`), over one store.

    `tokens` are admin tokens; `read_write_tokens` may write, query and list the databases but not create or
    change them nor read `_internal` (403, as Enterprise's database tokens). `disable_authz` names the paths that
    need no token (``--disable-authz health``: {"/health", "/api/v1/health"}). `column_limit` is the columns a table
    may have. `retention_updates=False` refuses PUT /api/v3/configure/database as a server that keeps retention fixed.
    `plugin_dir` is the server's plugin directory (``--plugin-dir``; None: the processing engine has none).
    `query_file_limit` is ``--query-file-limit``: a query that would read more of a table's files is refused.
    `line_number_offset` shifts the line numbers a partial write lists: a server or proxy that numbers them otherwise
    than 3.10.1 does (not InfluxDB 3's behaviour: for the tests of a list that does not fit the batch).
    `on_request(method, target)` is called in the handler while the client waits for the answer.
    """

    def __init__(self, token: str = "test-token", *, read_write_tokens: Iterable[str] = (),
                 disable_authz: Iterable[str] = (), column_limit: int = COLUMN_LIMIT,
                 retention_updates: bool = True, plugin_dir: Path | None = None,
                 query_file_limit: int = QUERY_FILE_LIMIT,
                 on_request: Callable[[str, str], None] | None = None, line_number_offset: int = 0) -> None:
        self.tokens, self.read_write_tokens = {token}, set(read_write_tokens)
        self.disable_authz, self.column_limit, self.retention_updates = set(disable_authz), column_limit, \
            retention_updates
        self.plugin_dir, self.on_request, self.query_file_limit = plugin_dir, on_request, query_file_limit
        self.line_number_offset = line_number_offset
        self.databases: dict[str, int | None] = {INTERNAL_DB: None}  # name -> retention in ns, None: forever
        self.deleted: set[str] = set()  # the names soft-deleted databases were renamed to (also in `databases`)
        self.triggers: dict[str, dict[str, dict[str, Any]]] = {}  # db -> trigger name -> its create request
        self.requests: list[tuple[str, str]] = []  # (method, path with its query string) of each request
        self.writes: list[bytes] = []  # each write_lp body
        self.queries: list[dict[str, Any]] = []  # each query: {"db", "q", "format"} (a plugin's: format "plugin")
        self._tables: dict[tuple[str, str], _Table] = {}  # (db, table) ->
        self._lock = threading.RLock()

    # Helpers for tests.

    def points(self, db: str = "temperature", table: str = "temperature") -> list[dict[str, Any]]:
        """The stored rows of a table, each {column: value} with `time` in ns, in time order then tags."""
        with self._lock:
            stored = self._tables.get((db, table))
            rows = stored.rows if stored is not None else {}
            return [{**row, "time": key[1]} for key, row in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0]))]

    def add_database(self, name: str, retention_s: int = 0) -> None:
        with self._lock:
            self.databases[name] = retention_s * 1_000_000_000 or None

    def delete_database(self, name: str) -> str:
        """Soft-delete a database, as `influxdb3 delete database` does: the name it is renamed to."""
        with self._lock:
            if name not in self.databases or name in self.deleted:
                raise ValueError(f"no database {name}")
            stamped = f"{name}-{datetime.datetime.now(datetime.timezone.utc):%Y%m%dT%H%M%S}"
            renamed = f"{stamped}-{len(self.databases)}" if stamped in self.databases else stamped
            self.databases[renamed] = self.databases.pop(name)
            self.deleted.add(renamed)
            for db, table in [key for key in self._tables if key[0] == name]:
                self._tables[(renamed, table)] = self._tables.pop((db, table))
            return renamed

    def write_lp(self, db: str, text: str) -> None:
        """Write lines (nanoseconds) as the server's write buffer takes them; _Refusal's text as a ValueError."""
        with self._lock:
            try:
                self._write_lines(db, text, 1, accept_partial=False)
            except _Refusal as refusal:
                raise ValueError(refusal.text()) from None

    def expire(self, db: str, table: str, before_ns: int) -> None:
        """Drop the table's rows older than `before_ns`, as the server drops expired data (by whole files)."""
        with self._lock:
            stored = self._tables[(db, table)]
            for key in [key for key in stored.rows if key[1] < before_ns]:
                del stored.rows[key]
            stored._arrow = None

    def persist(self, db: str, table: str, data: pa.Table) -> None:
        """A new table whose data is `data` as it stands, as a Parquet file the server persisted (the bench's
        millions of rows, without line protocol); it takes no writes after (the stand-in merges no files)."""
        kinds = {**{arrow_type: kind for kind, arrow_type in _ARROW_TYPES.items()}, pa.timestamp("ns"): "timestamp"}
        with self._lock:
            if (db, table) in self._tables:
                raise ValueError(f"the stand-in persists a new table only: {db}.{table} exists")
            self.databases.setdefault(db, None)
            columns = {name: kinds[data.schema.field(name).type] for name in data.column_names}
            self._tables[(db, table)] = _Table(columns, persisted=data)

    def run_schedule_trigger(self, plugin_filename: str, db: str, schedule_time_s: int,
                             args: dict[str, str] | None = None) -> PluginReturnState:
        """A scheduled trigger's run on `db` (system_py.rs execute_schedule_trigger, then plugins.rs
        handle_return_state): the plugin's return state; an exception the plugin raised propagates."""
        with self._lock:
            if db not in self.databases:
                raise ValueError(f"the trigger's database {db} does not exist")
            try:
                path = self._plugin_path(plugin_filename)
            except _Refusal as refusal:
                raise ValueError(refusal.text()) from None
        state = PluginReturnState()
        api = PluginCallApi(self, db, state)
        schedule_time = datetime.datetime.fromtimestamp(schedule_time_s, datetime.timezone.utc)
        state.log_lines.append(("info", f"starting execution with scheduled time {schedule_time:%Y-%m-%d %H:%M:%S} "
                                        "UTC"))
        started = time.monotonic()
        had_builder, builder = hasattr(builtins, "LineBuilder"), getattr(builtins, "LineBuilder", None)
        builtins.LineBuilder = LineBuilder  # type: ignore[attr-defined]
        try:
            scope: dict[str, Any] = {}
            exec(compile(path.read_text(), str(path), "exec"), scope)
            scope["process_scheduled_call"](api, datetime.datetime.fromtimestamp(schedule_time_s), args)
        finally:
            if had_builder:
                builtins.LineBuilder = builder  # type: ignore[attr-defined]
            else:
                del builtins.LineBuilder  # type: ignore[attr-defined]
        state.log_lines.append(("info", f"finished execution in {time.monotonic() - started:.3f}s"))
        for database, lines in state.write_db_lines.items():
            with self._lock:
                try:
                    self._write_lines(database, "\n".join(lines), 1, accept_partial=False)
                except _Refusal as refusal:
                    state.write_errors.append(f"error writing back lines to {database}: {refusal.text()}")
        return state

    # The store.

    def _write_lines(self, db: str, text: str, ns_per_unit: int, accept_partial: bool) -> None:
        """Store the lines; _Refusal as write_lp answers a refusal (without accept_partial: nothing stored)."""
        lines = [line for line in text.split("\n") if line.strip(" \t")]  # parse_lines skips blank lines
        if not lines:
            raise _Refusal(400, "no data in the write request")
        if db in self.deleted:
            raise _Refusal(400, {"error": f"cannot write to soft-deleted database '{db}' - it is marked for deletion"})
        self.databases.setdefault(db, None)  # created by its first write, keeping forever
        errors: list[dict[str, Any]] = []
        valid: list[tuple[str, dict[str, str], dict[str, Any], int]] = []
        added: dict[str, dict[str, str]] = {}  # table -> the columns this write adds
        for number, line in enumerate(lines, start=1):
            point = self._validate(db, line, ns_per_unit, added)
            if isinstance(point, str):
                errors.append({"error_message": point, "line_number": number + self.line_number_offset,
                               "original_line": line.encode()[:20].decode(errors="ignore")})
                if not accept_partial:
                    raise _Refusal(400, {"error": "line protocol parsing error", "data": errors[0]})
            else:
                valid.append(point)
        for table, tags, values, stamp in valid:
            stored = self._tables.setdefault((db, table), _Table())
            stored.kinds.update(added[table])
            stored.rows.setdefault((tuple(sorted(tags.items())), stamp), dict(tags)).update(values)
            stored._arrow = None
        if errors:
            limit = any(e["error_message"].startswith("Update to schema would exceed") for e in errors)
            raise _Refusal(422 if limit else 400, {"error": "partial write of line protocol occurred", "data": errors})

    def _validate(self, db: str, line: str, ns_per_unit: int, added: dict[str, dict[str, str]]
                  ) -> tuple[str, dict[str, str], dict[str, Any], int] | str:
        """The point of one line, or what is wrong with it; `added` gains the new columns it brings."""
        try:
            table, tags, fields, stamp = parse_v3(line)
            values = {key: _field_value(text) for key, text in fields.items()}
        except (Malformed, ValueError, IndexError) as error:
            return f"error parsing line: {error}"
        stored = self._tables.get((db, table))
        if stored is not None and stored.persisted is not None:
            return f"the stand-in takes no writes into {table}, a table persist() loaded"
        columns = {**(stored.kinds if stored else {"time": "timestamp"}), **added.get(table, {})}
        both = sorted(tags.keys() & values.keys())
        if both:  # the tag's column is made first, then the field finds it (validator.rs, update.rs column_or_create)
            return f"invalid column type for column '{both[0]}', expected tag, got {type(values[both[0]]).__name__}"
        wanted = {**{k: "tag" for k in tags}, **{k: type(v).__name__ for k, v in values.items()}}
        for column, kind in wanted.items():
            if column in columns and columns[column] != kind:
                return f"invalid column type for column '{column}', expected {columns[column]}, got {kind}"
        new = {c: k for c, k in wanted.items() if c not in columns}
        if len(columns) + len(new) > self.column_limit:
            return f"Update to schema would exceed number of columns per table limit of {self.column_limit} columns"
        added.setdefault(table, {}).update(new)
        return table, tags, values, stamp * ns_per_unit

    def _sql(self, db: str, q: str) -> datafusion.DataFrame:
        """The statement's frame on the database (for _internal: system.databases)."""
        context = datafusion.SessionContext(datafusion.SessionConfig().with_information_schema(True)
                                            .with_default_catalog_and_schema("public", "iox"))
        if db == INTERNAL_DB:
            names = list(self.databases)
            batch = pa.record_batch([pa.array(names), pa.array([self.databases[n] for n in names], pa.uint64()),
                                     pa.array([n in self.deleted for n in names]),
                                     pa.array([None] * len(names), pa.timestamp("s", "UTC"))],
                                    names=["database_name", "retention_period_ns", "deleted", "hard_deletion_time"])
            context.sql("CREATE SCHEMA system").collect()
            context.register_record_batches("system.databases", [[batch]])
        tables = {table: stored for (table_db, table), stored in self._tables.items() if table_db == db}
        for table, stored in tables.items():
            arrow = stored.arrow()  # a table created without rows: one empty batch, which carries its schema
            context.register_record_batches(table, [arrow.to_batches() or [pa.RecordBatch.from_pylist(
                [], schema=arrow.schema)]])
        variable = _datafusion_51_variable(q)
        if variable is not None:  # as the engine 3.10.1 runs refuses it (datafusion 55 reads it as a column)
            debug = json.dumps(variable, ensure_ascii=False)  # the name as Rust's Debug writes a string, near enough
            raise Exception(f"Error during planning: variable [{debug}] has no type information")
        frame = context.sql(q)
        for table, (low, high) in _time_bounds(frame.optimized_logical_plan()).items():
            if table not in tables:  # information_schema, system
                continue
            files = [(first, last) for first, last in tables[table].files()
                     if (low is None or last >= low) and (high is None or first <= high)]
            if len(files) > self.query_file_limit:
                # write_buffer/mod.rs get_table_chunks: the files left by the query's time bounds
                # (persisted_files.rs get_files_filtered, lib.rs ChunkFilter) against the limit; its message names
                # the limit where it means the count (format! with self.query_file_limit)
                raise Exception(f"External error: Query would scan {self.query_file_limit} Parquet files, exceeding "
                                "the file limit. InfluxDB 3 Core caps file access to prevent performance degradation "
                                "and memory issues. Use a narrower time range, or increase the limit with "
                                "--query-file-limit (this may cause slower queries or instability).")
        return frame

    def _plugin_path(self, name: str) -> Path:
        """lib.rs read_plugin_code: the file in the plugin directory (no way out of it); _Refusal 500 otherwise."""
        if self.plugin_dir is None:
            raise _Refusal(500, "Node not configured with plugin directory")
        path = (self.plugin_dir / name.rstrip("/")).resolve()
        if self.plugin_dir.resolve() not in path.parents:
            raise _Refusal(500, f"plugin path escapes the plugin directory: {name}")
        if not path.is_file():
            raise _Refusal(500, f"reading plugin file: Plugin not found: {path}")
        return path

    # Request handling.

    def _handle(self, method: str, path: str, headers: Any, body: bytes) -> _Reply:
        url = urlsplit(path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        with self._lock:
            self.requests.append((method, path))
        if self.on_request is not None:
            self.on_request(method, path)
        try:
            token = self._authenticate(url.path, headers.get("Authorization"))
            if len(body) > MAX_REQUEST_BYTES:
                raise _Refusal(413, f"max request size ({MAX_REQUEST_BYTES} bytes) exceeded")
            with self._lock:
                return self._route(method, url.path, query, headers, body, token)
        except _Refusal as refusal:
            return refusal.reply
        except Exception as error:  # a bug in the stand-in: make it visible to the client, not just on stderr
            return _Reply(500, repr(error).encode())

    def _authenticate(self, path: str, authorization: str | None) -> str | None:
        if path in self.disable_authz:
            return None
        if authorization is None:
            raise _Refusal(401, _UNAUTHENTICATED)
        scheme, _, token = authorization.partition(" ")
        if scheme not in ("Bearer", "Token", "Basic") or not token or " " in token:
            raise _Refusal(400, '{"error": "Authorization header was malformed, the request was not in the form of '
                                "'Authorization: <auth-scheme> <token>', supported auth-schemes are Bearer, Token "
                                'and Basic"}')
        if scheme == "Basic":  # user:token, base64-encoded: the part after the last colon (token_part_as_bytes)
            try:
                token = base64.b64decode(token, validate=True).decode().rpartition(":")[2]
            except ValueError:
                raise _Refusal(400, '{"error": "Authorization header was malformed"}') from None
        if token not in self.tokens | self.read_write_tokens:
            raise _Refusal(401, _UNAUTHENTICATED)
        return token

    def _admin(self, token: str | None) -> None:
        if token in self.read_write_tokens:
            raise _Refusal(403, '{"error": "requestor is forbidden from requested resource"}')

    def _route(self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes,
               token: str | None) -> _Reply:
        match method, path:
            case ("GET" | "POST"), "/ping":
                document = {"product_name": "InfluxDB 3 Core", "version": VERSION, "revision": "0000000",
                            "process_id": str(uuid.UUID(int=1))}
                return _Reply(200, json.dumps(document).encode(), "application/json",
                              headers=(("X-Influxdb-Build", "Core"), ("X-Influxdb-Version", VERSION)))
            case "GET", ("/health" | "/api/v1/health"):
                return _Reply(200, b"OK", "text/plain; charset=utf-8")
            case "POST", "/api/v3/write_lp":
                return self._write(query, body)
            case ("GET" | "POST"), "/api/v3/query_sql":
                return self._query(method, query, headers, body, token)
            case "GET", "/api/v3/configure/database":
                if query.get("format") not in ("json", "jsonl", "json_lines"):
                    raise _Refusal(400, "the stand-in lists databases as json or jsonl only")
                names = sorted(set(self.databases) - self.deleted)
                return _Reply(200, json.dumps([{"iox::database": n} for n in names]).encode(), "application/json")
            case ("POST" | "PUT"), "/api/v3/configure/database":
                self._admin(token)
                return self._configure(method, headers, body)
            case "DELETE", "/api/v3/configure/database":
                self._admin(token)
                if "db" not in query:
                    raise _Refusal(400, "missing query parameters for delete database")  # MissingDeleteDatabaseParams
                try:
                    self.delete_database(query["db"])
                except ValueError:
                    raise _Refusal(404, f"the requested resource was not found: {query['db']}") from None
                return _Reply(200)
            case "POST", "/api/v3/configure/table":
                self._admin(token)
                return self._create_table(headers, body)
            case "POST", "/api/v3/configure/processing_engine_trigger":
                self._admin(token)
                return self._create_trigger(query, headers, body)
            case "DELETE", "/api/v3/configure/processing_engine_trigger":
                self._admin(token)
                return self._delete_trigger(query)
        raise _Refusal(404, "Not found")

    def _write(self, query: dict[str, str], body: bytes) -> _Reply:
        db = query.get("db")
        if db is None:
            raise _Refusal(400, "missing query parameters 'db'")
        if not _DB_NAME.fullmatch(db):
            raise _Refusal(400, {"error": "invalid character in database or rp name: must be ASCII, containing "
                                          "only letters, numbers, underscores, or hyphens"})
        precision = _PRECISION_NS.get(query.get("precision", "nanosecond"))
        if precision is None:
            raise _Refusal(400, f"unknown variant `{query['precision']}`")
        try:
            text = body.decode()
        except UnicodeDecodeError as error:
            raise _Refusal(400, f"body is not valid utf8: {error}") from None
        self.writes.append(body)
        self._write_lines(db, text, precision, accept_partial=query.get("accept_partial", "true") != "false")
        return _Reply(204)

    def _configure(self, method: str, headers: Any, body: bytes) -> _Reply:
        request = _json_body(headers, body)
        try:
            db, period = request["db"], request.get("retention_period")
            retention = None if period is None else _humantime_ns(period)
        except (ValueError, KeyError, TypeError) as error:
            raise _Refusal(400, f"serde json error: {error!r}") from None
        if method == "POST":
            if not _DB_NAME.fullmatch(db):
                raise _Refusal(400, {"error": "db name did not start with a number or letter"})
            if db in self.databases:
                raise _Refusal(409, "attempted to create a resource that already exists")
            if len(set(self.databases) - {INTERNAL_DB}) >= DATABASE_LIMIT:
                raise _Refusal(422, {"error": f"Adding a new database would exceed limit of {DATABASE_LIMIT} "
                                              "databases"})
            self.databases[db] = retention
            return _Reply(200)
        if db not in self.databases:
            raise _Refusal(404, f"Database not found {db}")
        if not self.retention_updates:
            raise _Refusal(405, "the stand-in keeps retention fixed")
        self.databases[db] = retention
        return _Reply(200)

    def _create_table(self, headers: Any, body: bytes) -> _Reply:
        """http.rs create_table: CreateTableRequest read (serde: 400), validate_db_name, then the catalog's
        create_table (v3/catalog.rs): the database created if missing (keeping forever; TooManyDbs 422), the table
        new (AlreadyExists 409), its tags then fields then time made (a name twice: InvalidColumnType 400; past the
        column limit: TooManyColumns 422), all in one transaction."""
        request = _json_body(headers, body)
        fields = request.get("fields")
        if not (isinstance(request.get("db"), str) and isinstance(request.get("table"), str)
                and isinstance(request.get("tags"), list) and all(isinstance(t, str) for t in request["tags"])
                and isinstance(fields, list) and all(isinstance(f, dict) and isinstance(f.get("name"), str)
                                                     and f.get("type") in _FIELD_TYPES for f in fields)):
            raise _Refusal(400, "serde json error: invalid CreateTableRequest")
        db, table = request["db"], request["table"]
        if not _DB_NAME.fullmatch(db):
            raise _Refusal(400, {"error": "db name did not start with a number or letter"})
        if db not in self.databases and len(set(self.databases) - {INTERNAL_DB}) >= DATABASE_LIMIT:
            raise _Refusal(422, {"error": f"Adding a new database would exceed limit of {DATABASE_LIMIT} databases"})
        if (db, table) in self._tables:
            raise _Refusal(409, "attempted to create a resource that already exists")
        kinds = {"time": "timestamp"}
        for name, kind in [*((t, "tag") for t in request["tags"]), *((f["name"], _FIELD_TYPES[f["type"]])
                                                                     for f in fields)]:
            if kinds.setdefault(name, kind) != kind:
                raise _Refusal(400, f"invalid column type for column '{name}', expected {kinds[name]}, got {kind}")
        if len(kinds) > self.column_limit:
            raise _Refusal(422, {"error": "Update to schema would exceed number of columns per table limit of "
                                          f"{self.column_limit} columns"})
        self.databases.setdefault(db, None)
        self._tables[(db, table)] = _Table(kinds)
        return _Reply(200)

    def _create_trigger(self, query: dict[str, str], headers: Any, body: bytes) -> _Reply:
        if query:
            raise _Refusal(400, "the stand-in reads a trigger from a JSON body only")
        request = _json_body(headers, body)
        shape = {"db": str, "plugin_filename": str, "trigger_name": str, "trigger_settings": dict,
                 "trigger_specification": str, "disabled": bool}  # ProcessingEngineTriggerCreateRequest
        for key, kind in shape.items():
            if not isinstance(request.get(key), kind):
                raise _Refusal(400, f"serde json error: missing or invalid field `{key}`")
        settings, arguments = request["trigger_settings"], request.get("trigger_arguments")
        if not isinstance(settings.get("run_async"), bool) or settings.get("error_behavior") not in _ERROR_BEHAVIORS:
            raise _Refusal(400, "serde json error: invalid trigger_settings")
        if arguments is not None and not (isinstance(arguments, dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in arguments.items())):
            raise _Refusal(400, "serde json error: invalid trigger_arguments")
        self._plugin_path(request["plugin_filename"])  # validate_plugin_filename, before the catalog
        db, name, spec = request["db"], request["trigger_name"], request["trigger_specification"].strip()
        if db not in self.databases:
            raise _Refusal(404, f"the requested resource was not found: {db}")
        if not _trigger_specification_ok(spec):
            raise _Refusal(500, f"trigger specification parse error: {spec}")
        if name in self.triggers.get(db, {}):
            raise _Refusal(409, "attempted to create a resource that already exists")
        self.triggers.setdefault(db, {})[name] = request
        return _Reply(200)

    def _delete_trigger(self, query: dict[str, str]) -> _Reply:
        if "db" not in query or "trigger_name" not in query or query.get("force", "false") not in ("true", "false"):
            raise _Refusal(400, "failed to deserialize the query string")  # serde_urlencoded
        db, name = query["db"], query["trigger_name"]
        if db not in self.databases:
            raise _Refusal(404, f"the requested resource was not found: {db}")
        trigger = self.triggers.get(db, {}).get(name)
        if trigger is None:
            raise _Refusal(404, f"the requested resource was not found: {name}")
        if not trigger["disabled"] and query.get("force") != "true":
            raise _Refusal(500, f"Cannot delete running plugin {name}. Disable it first or use --force.")
        del self.triggers[db][name]
        return _Reply(200)

    def _query(self, method: str, query: dict[str, str], headers: Any, body: bytes, token: str | None) -> _Reply:
        accept = headers.get("Accept")
        if accept not in _ACCEPTED and "text/html" not in accept and "*/*" not in accept:
            raise _Refusal(400, f"invalid mime type ({accept})")  # read before the request's own format
        try:
            request = json.loads(body) if method == "POST" else {**query}
            db, q, fmt = request["db"], request["q"], request.get("format") or "json"
        except (ValueError, KeyError, TypeError) as error:
            raise _Refusal(400, f"serde json error: {error!r}") from None
        self.queries.append({"db": db, "q": q, "format": fmt})
        if fmt not in ("json", "jsonl", "json_lines"):
            raise _Refusal(400, "the stand-in answers json and jsonl only")
        if db not in self.databases:
            raise _Refusal(404, {"error": f"query error: database not found: {db}"})
        if db == INTERNAL_DB:
            self._admin(token)
        try:
            lines = json_lines(self._sql(db, q))
        except Exception as error:  # DataFusion's (or the file limit's, an External error: 500)
            raise _Refusal(*query_failure(error)) from None
        if fmt == "json":
            return _Reply(200, b"[" + b",".join(lines) + b"]", "application/json")
        return _Reply(200, content_type="application/jsonl", chunks=(line + b"\n" for line in lines))


class PluginCallApi:
    """The `influxdb3_local` a plugin is handed (system_py.rs PyPluginCallApi), on the trigger's database."""

    def __init__(self, server: FakeInfluxDB3, db: str, state: PluginReturnState) -> None:
        self._server, self._db, self._state = server, db, state

    def info(self, *args: object) -> None:
        self._state.log_lines.append(("info", " ".join(str(a) for a in args)))

    def warn(self, *args: object) -> None:
        self._state.log_lines.append(("warn", " ".join(str(a) for a in args)))

    def error(self, *args: object) -> None:
        self._state.log_lines.append(("error", " ".join(str(a) for a in args)))

    def write(self, line_builder: LineBuilder) -> None:
        self.write_to_db(self._db, line_builder)

    def write_to_db(self, db_name: str, line_builder: LineBuilder) -> None:
        self._state.write_db_lines.setdefault(db_name, []).append(line_builder.build())

    def write_sync(self, line_builder: LineBuilder, no_sync: bool) -> None:
        self.write_sync_to_db(self._db, line_builder, no_sync)

    def write_sync_to_db(self, db_name: str, line_builder: LineBuilder, no_sync: bool) -> None:
        try:
            self._server.write_lp(db_name, line_builder.build())
        except ValueError as error:
            raise Exception(f"error writing line protocol to {db_name}: {error}") from None

    def query(self, query: str, args: dict[str, str] | None = None, database: str | None = None
              ) -> list[dict[str, Any]]:
        if args is not None:
            raise NotImplementedError("the stand-in: statement parameters are not modelled")
        db = self._db if database is None else database
        if not _DB_NAME.fullmatch(db):
            raise QueryError(f"invalid database name provided: {db}")
        server = self._server
        with server._lock:
            server.queries.append({"db": db, "q": query, "format": "plugin"})
            try:
                if db not in server.databases:
                    raise ValueError(f"database not found: {db}")
                batches = server._sql(db, query).collect()
            except Exception as error:
                raise QueryError(f"error: {query_failure(error)[1]} executing query on {db}: {query}") from None
        rows: list[dict[str, Any]] = []
        for batch in batches:
            columns = [_python_values(batch.column(i)) for i in range(batch.num_columns)]
            rows += (dict(zip(batch.schema.names, values, strict=True)) for values in zip(*columns, strict=True))
        return rows


class LineBuilderError(Exception):
    """line_builder.py's InfluxDBError, whose subclasses LineBuilder raises."""


class InvalidMeasurementError(LineBuilderError):
    pass


class InvalidKeyError(LineBuilderError):
    pass


class InvalidLineError(LineBuilderError):
    pass


def _escaped(text: str) -> str:
    """line_builder.py's escape of a tag value or field key: backslash, comma, equals sign, space."""
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


class LineBuilder:
    """What influxdb3_py_api/src/line_builder/line_builder.py's LineBuilder builds and refuses (written here from its
    behaviour, tests/test_downsample_v3.py compares the two): a measurement with a space is refused; a tag or field
    key that is empty or holds a space, comma or equals sign is refused (_validate_key: no escaping instead); the
    line is the measurement (comma and space escaped), `,key=value` per tag (the key as it is, the value escaped),
    ` key=value,...` per field (the key escaped; a float whole-valued as `N.0`, else str(); `Ni`, `Nu`, a quoted
    string, `t`/`f`), then ` <ns>` if set; no field at all is refused at build()."""

    def __init__(self, measurement: str):
        if " " in measurement:
            raise InvalidMeasurementError("Measurement name cannot contain spaces")
        self.measurement = measurement
        self.tags: dict[str, str] = {}
        self.fields: dict[str, str] = {}
        self.timestamp_ns: int | None = None

    @staticmethod
    def _key(key: str, kind: str) -> str:
        if not key:
            raise InvalidKeyError(f"{kind} key cannot be empty")
        for char, name in ((" ", "spaces"), (",", "commas"), ("=", "equals signs")):
            if char in key:
                raise InvalidKeyError(f"{kind} key '{key}' cannot contain {name}")
        return key

    def tag(self, key: str, value: str) -> LineBuilder:
        self.tags[self._key(key, "tag")] = str(value)
        return self

    def uint64_field(self, key: str, value: int) -> LineBuilder:
        self._key(key, "field")
        if value < 0:
            raise ValueError(f"uint64 field '{key}' cannot be negative")
        self.fields[key] = f"{value}u"
        return self

    def int64_field(self, key: str, value: int) -> LineBuilder:
        self.fields[self._key(key, "field")] = f"{value}i"
        return self

    def float64_field(self, key: str, value: float) -> LineBuilder:
        self.fields[self._key(key, "field")] = f"{int(value)}.0" if value % 1 == 0 else str(value)
        return self

    def string_field(self, key: str, value: str) -> LineBuilder:
        self.fields[self._key(key, "field")] = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return self

    def bool_field(self, key: str, value: bool) -> LineBuilder:
        self.fields[self._key(key, "field")] = "t" if value else "f"
        return self

    def time_ns(self, timestamp_ns: int) -> LineBuilder:
        self.timestamp_ns = timestamp_ns
        return self

    def build(self) -> str:
        line = self.measurement.replace(",", "\\,").replace(" ", "\\ ")
        line += "".join(f",{key}={_escaped(value)}" for key, value in self.tags.items())
        if not self.fields:
            raise InvalidLineError(f"At least one field is required: {line}")
        line += " " + ",".join(f"{_escaped(key)}={value}" for key, value in self.fields.items())
        return line + (f" {self.timestamp_ns}" if self.timestamp_ns is not None else "")


def _python_values(array: pa.Array) -> list[Any]:
    """One column's cells as PyPluginCallApi.query hands them to Python."""
    kind = array.type
    if pa.types.is_timestamp(kind):
        return array.cast(pa.int64()).to_pylist()
    if pa.types.is_dictionary(kind) or kind in (pa.int64(), pa.uint64(), pa.float64(), pa.string(), pa.bool_()):
        return array.to_pylist()
    if array.null_count == len(array):
        return [None] * len(array)  # a null is None before its type is looked at
    raise ValueError(f"Unsupported data type: {kind}")


# What InfluxDB 3.10.1 answers for a failed query. influxdata/influxdb@v3.10.1:influxdb3_server/src/http.rs
# `impl IntoResponse for Error`, arm `Self::Query(QueryExecutorError::QueryPlanning(err)) | Self::Datafusion(err)`: the
# status of datafusion_error_status_code(&err) and the body err.to_string(), DataFusion's Display, as plain text. That
# function: Plan and SQL 400, NotImplemented 405, Context and Diagnostic their source's, Shared its error's,
# Collection 400 if all of its errors are, any other variant (SchemaError, Execution, External, ...) 500.
# So a column never written is a 500: the SQL planner wraps its SchemaError::FieldNotFound in a Diagnostic
# ("column 'x' not found"), and a table never written a 400, a Plan error wrapped so ("table 'x' not found")
# (datafusion-sql planner.rs `err.with_diagnostic` on FieldNotFound, relation/mod.rs on get_table_source's error, at
# influxdata/arrow-datafusion@65c1c771, its branch-50, the newest of the fork that can be read here: 3.10.1's
# Cargo.toml takes its rev dfdd85535f76, 51.0.0; and so the PyPI datafusion 51.0.0's errors say, in their Debug).
# A Diagnostic displays as its source (datafusion-common error.rs: error_prefix "", message err.to_string()), as
# influxdata/influxdb@v3.10.1:influxdb3/tests/cli/mod.rs query_no_table shows: "Error during planning: table
# 'public.iox.not_here' not found".
# The datafusion package gives only a text: at 55.0.0 the Display; at 51.0.0, the release the server's fork is of,
# "DataFusion error: " and the error's Debug, which is read back here into the variants it names.
_DEBUG_PREFIX = "DataFusion error: "
_PREFIXES = {"Plan": "Error during planning: ", "SQL": "SQL error: ", "NotImplemented": "This feature is not "
             "implemented: ", "SchemaError": "Schema error: ", "Execution": "Execution error: ",
             "External": "External error: ", "Internal": "Internal error: ", "ResourcesExhausted":
             "Resources exhausted: "}
_STATUS_OF_PREFIX = {_PREFIXES["Plan"]: 400, _PREFIXES["SQL"]: 400, _PREFIXES["NotImplemented"]: 405}
_CAUSED_BY = "\ncaused by\n"  # DataFusionError::Context's Display: "{desc}\ncaused by\n{source}"
_DEBUG_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|[A-Za-z_][A-Za-z0-9_]*|-?[0-9]+(?:\.[0-9]+)?|\.\.|[(){}\[\],:])')
_RUST_ESCAPE = re.compile(r"\\(u\{[0-9a-fA-F]+\}|.)")
_RUST_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}


def query_failure(error: Exception) -> tuple[int, str]:
    """The status and body InfluxDB 3.10.1 answers for the DataFusion error `error` the stand-in's query raised."""
    text = str(error).removeprefix(_DEBUG_PREFIX)
    try:
        value, end = _debug_value(text, 0)
        if end == len(text) and isinstance(value, tuple):  # a Debug (datafusion 51)
            return _status(value), _display(value)
    except (ValueError, IndexError, TypeError):
        pass
    # a Display (datafusion 55, or the stand-in's own error): the variant by its prefix, a Context's by its source's
    source = text.rsplit(_CAUSED_BY, 1)[-1]
    return next((s for p, s in _STATUS_OF_PREFIX.items() if source.startswith(p)), 500), text


def _debug_value(text: str, start: int) -> tuple[Any, int]:
    """A Rust Debug value at `start` as (node, end): a string as str, a list as list, `Name`, `Name(...)` and
    `Name { k: v, ... }` as (name, [values], the node's Debug text)."""
    match = _DEBUG_TOKEN.match(text, start)
    if match is None:
        raise ValueError(text[start:])
    token, end = match.group(1), match.end()
    if token.startswith('"'):
        return _RUST_ESCAPE.sub(_unescaped, token[1:-1]), end
    if token == "[":
        return _debug_sequence(text, end, "]")
    if not (token[0].isalpha() or token[0] == "_"):
        return token, end
    after = _DEBUG_TOKEN.match(text, end)
    opening = after.group(1) if after else None
    if opening not in ("(", "{"):
        return (token, [], token), end
    values, stop = _debug_sequence(text, after.end() if after else end, ")" if opening == "(" else "}")
    return (token, values, text[match.start(1):stop]), stop


def _debug_sequence(text: str, start: int, closing: str) -> tuple[list[Any], int]:
    """The values up to `closing` (a struct's `key: value` as its value alone), and the end after it."""
    values: list[Any] = []
    while True:
        match = _DEBUG_TOKEN.match(text, start)
        if match is None:
            raise ValueError(text[start:])
        if match.group(1) == closing:
            return values, match.end()
        if match.group(1) in (",", ".."):  # `..` of a Range (a Span's)
            start = match.end()
            continue
        value, start = _debug_value(text, start)
        colon = _DEBUG_TOKEN.match(text, start)
        if colon is not None and colon.group(1) == ":" and closing == "}":
            value, start = _debug_value(text, colon.end())
        values.append(value)


def _unescaped(match: re.Match) -> str:
    escape = match.group(1)
    return chr(int(escape[2:-1], 16)) if escape.startswith("u{") else _RUST_ESCAPES.get(escape, escape)


def _status(error: Any) -> int:
    """datafusion_error_status_code of the DataFusionError read from its Debug."""
    name, values, _ = error
    if name in ("Plan", "SQL"):
        return 400
    if name == "NotImplemented":
        return 405
    if name in ("Context", "Diagnostic"):
        return _status(values[1])
    if name == "Shared":
        return _status(values[0])
    if name == "Collection":
        return 400 if all(_status(each) == 400 for each in values[0]) else 500
    return 500


def _display(error: Any) -> str:
    """DataFusion's Display of the error read from its Debug, for the variants a query of ours meets; any other is
    shown as its Debug. A FieldNotFound's suggestion of columns (", Valid fields are ..." or ". Did you mean ...?",
    after a Levenshtein distance) is left out."""
    name, values, debug = error
    if name in ("Diagnostic", "Shared"):
        return _display(values[-1])
    if name == "Context":
        return f"{values[0]}{_CAUSED_BY}{_display(values[1])}"
    if name == "SQL":  # format!("{desc:?}{backtrace}"): the parser error's Debug
        return _PREFIXES[name] + values[0][2] + (values[1][1][0] if values[1][0] == "Some" else "")
    if name == "SchemaError" and values[0][0] == "FieldNotFound":
        return f"{_PREFIXES[name]}No field named {_quoted_flat_name(values[0][1][0])}"
    if name in _PREFIXES and values and isinstance(values[0], str):
        return _PREFIXES[name] + values[0]
    return debug


def _quoted_flat_name(column: Any) -> str:
    """Column::quoted_flat_name of `Column { relation: None | Some(Bare/Partial/Full { ... }), name: "..." }`."""
    relation, name = column[1]
    parts = relation[1][0][1] if relation[0] == "Some" else []
    return ".".join(_quoted_identifier(part) for part in [*parts, name])


def _quoted_identifier(name: str) -> str:
    """datafusion-common's quote_identifier: as it is if a lower-case SQL identifier, else in double quotes."""
    return name if re.fullmatch(r"[a-z_][a-z0-9_]*", name) else '"' + name.replace('"', '""') + '"'


# A statement's tokens as far as _datafusion_51_variable needs them: string literals, quoted identifiers, words, and
# any other character (comments are not read)
_SQL_TOKEN = re.compile(r"""\s*('(?:[^']|'')*'|"(?:[^"]|"")*"|[A-Za-z_@][A-Za-z0-9_@$]*|.)""", re.DOTALL)
_NOT_AN_EXPRESSION_AFTER = frozenset({".", "AS", "FROM", "JOIN"})  # a qualified name, an alias, a table


def _datafusion_51_variable(q: str) -> str | None:
    """The first single identifier of an expression in `q` that starts with `@`, quoted or not, if any: DataFusion 51's
    SQL planner takes it for a variable, which InfluxDB 3 has none of: "Error during planning: variable [..] has no
    type information" (datafusion-sql expr/identifier.rs sql_identifier_to_expr: `id.value.starts_with('@')`, the
    quotes not looked at, at influxdata/arrow-datafusion@65c1c771 as in the PyPI datafusion 51.0.0; apache/datafusion
    #19339, which reads quoted ones as columns, came after 51). Not modelled: a compound name starting with `@`."""
    tokens = [match.group(1) for match in _SQL_TOKEN.finditer(q)]
    for i, token in enumerate(tokens):
        name = token[1:-1].replace('""', '"') if token.startswith('"') else token
        before = tokens[i - 1].upper() if i else ""
        after = tokens[i + 1] if i + 1 < len(tokens) else ""
        if name.startswith("@") and before not in _NOT_AN_EXPRESSION_AFTER and after != ".":
            return name
    return None


def _time_bounds(plan: Any) -> dict[str, tuple[int | None, int | None]]:
    """{table: (lowest, highest) time in ns the query can read of it} for each table it scans (None: unbounded), as
    lib.rs ChunkFilter::new derives them: from the AND-ed comparisons of `time` with a timestamp literal in the
    filter over the scan (others bound nothing)."""
    bounds: dict[str, tuple[int | None, int | None]] = {}
    node = plan.to_variant()
    inputs = plan.inputs()
    if type(node).__name__ == "TableScan":
        bounds[node.table_name()] = (None, None)
    elif type(node).__name__ == "Filter" and len(inputs) == 1 and type(inputs[0].to_variant()).__name__ == "TableScan":
        low = high = None
        for term in _conjuncts(node.predicate()):
            if type(term).__name__ != "BinaryExpr":
                continue
            column, literal = term.left().to_variant(), term.right().to_variant()
            if type(column).__name__ != "Column" or column.name() != "time" or type(literal).__name__ != "Literal":
                continue
            value = literal.value_timestamp()[0]
            if term.op() in (">=", ">"):
                value += term.op() == ">"
                low = value if low is None else max(low, value)
            elif term.op() in ("<", "<="):
                value -= term.op() == "<"
                high = value if high is None else min(high, value)
        return {inputs[0].to_variant().table_name(): (low, high)}
    for child in inputs:
        bounds.update(_time_bounds(child))
    return bounds


def _conjuncts(expr: Any) -> list[Any]:
    term = expr.to_variant()
    if type(term).__name__ == "BinaryExpr" and term.op() == "AND":
        return _conjuncts(term.left()) + _conjuncts(term.right())
    return [term]


def _json_body(headers: Any, body: bytes) -> dict[str, Any]:
    """read_body_json: a JSON Content-Type (415 otherwise), then serde_json (400)."""
    if not (headers.get("Content-Type") or "").startswith("application/json"):
        raise _Refusal(415, "invalid content type, expected application/json")
    try:
        request = json.loads(body)
    except ValueError as error:
        raise _Refusal(400, f"serde json error: {error!r}") from None
    if not isinstance(request, dict):
        raise _Refusal(400, "serde json error: expected an object")
    return request


def _trigger_specification_ok(spec: str) -> bool:
    """trigger.rs from_string_rep's forms; a cron expression as the cron crate's: 6 or 7 fields, seconds first."""
    kind, _, rest = spec.partition(":")
    if spec == "all_tables":
        return True
    if kind == "cron":
        return len(rest.split()) in (6, 7)
    return kind in ("table", "every", "request") and bool(rest.strip())


class _Handler(BaseHTTPRequestHandler):
    server: LoopbackServer
    protocol_version = "HTTP/1.1"  # keep-alive and chunked replies, as hyper

    def _serve(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        reply = self.server.fake._handle(self.command, self.path, self.headers, body)
        self.send_response(reply.status)
        for name, value in reply.headers:  # the version headers: ping alone sets them (http.rs ping)
            self.send_header(name, value)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        if reply.chunks is not None:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in reply.chunks:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
            return
        if reply.status != 204:
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging to stderr; tests inspect `requests`, `queries` and `points()` instead."""


def _field_value(text: str) -> float | int | str | bool:
    """A field's value as InfluxDB 3 types it: a float unless marked i/u, quoted, or a boolean."""
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        return text[1:-1]
    if text in ("t", "T", "true", "True", "TRUE", "f", "F", "false", "False", "FALSE"):
        return text.lower().startswith("t")
    if text.endswith(("i", "u")):
        return int(text[:-1])
    return float(text)


def _humantime_ns(text: str) -> int:
    """humantime's durations as templog and the tests send them: `30d`, `3600s`, `1h 30m`."""
    parts = re.findall(r"(\d+)\s*([smhdw])", text)
    if not parts or "".join(n + u for n, u in parts) != re.sub(r"\s", "", text):
        raise ValueError(f"invalid duration {text!r}")
    return sum(int(n) * _HUMANTIME_S[u] for n, u in parts) * 1_000_000_000


def json_lines(frame: datafusion.DataFrame) -> list[bytes]:
    """The frame's rows as arrow-json writes them (DataFusion's write_json: one object a line, nulls left out)."""
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "answer.json")
        frame.write_json(path)
        files = [path] if os.path.isfile(path) else sorted(os.path.join(path, f) for f in os.listdir(path))
        return [line for f in files for line in open(f, "rb").read().splitlines() if line]


FakeInfluxDB3.handler = _Handler  # the class it serves is defined first
