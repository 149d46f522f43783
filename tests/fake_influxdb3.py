"""FakeInfluxDB3: a stand-in for InfluxDB 3 Core's HTTP API, for the tests (no InfluxDB 3 server runs here).

It answers as influxdata/influxdb@v3.10.1 does, from its source:

* ``influxdb3_server/src/http.rs``: route_request (which paths there are, and that every one but those named in
  ``--disable-authz`` needs a token: 401 ``{"error": "the request was not authenticated"}``, 400 for a header
  without a scheme; Bearer and Token are read), ping (200, a JSON body, X-Influxdb-Version ``3.10.1``), health
  (200 ``OK``), write_lp_inner (accept_partial defaults to true, 204 when all is stored), read_body (413 past
  max_request_bytes, 10 MiB by default), create_database (200, or 409 from CatalogError::AlreadyExists),
  update_database (PUT: set, or clear without retention_period), show_databases (``[{"iox::database": ...}]``),
  query_sql and extract_query_request (GET or POST, ``format`` json or jsonl, the Accept header checked first),
  ``impl IntoResponse for Error`` (each failure's status and body: a partial write is 400 ``{"error": "partial
  write of line protocol occurred", "data": [{"error_message", "line_number", "original_line"}]}``, 422 when a
  listed line hit a limit; DataFusion's Plan and SQL errors 400, its others 500, as plain text);
* ``influxdb3_types/src/http.rs`` (QueryFormat::try_from_headers: only ``application/json``, ``*/*``, text/html
  or none pass; CreateDatabaseRequest, WriteParams) and ``influxdb3_types/src/write.rs`` (Precision's names;
  WriteLineError, its original_line cut to 20 bytes);
* ``influxdb3_write/src/write_buffer/validator.rs`` (line numbers count from 1; a field whose type differs from
  the column's is refused for that line: CatalogError::InvalidColumnType; a new column past the table's limit:
  TooManyColumns) and ``write_buffer/mod.rs`` (a database is created by its first write, keeping forever);
* ``influxdb3_system_tables/src/databases.rs``: ``system.databases`` in the ``_internal`` database, with
  ``retention_period_ns`` (null: forever).

Lines are read with the InfluxDB 3 line protocol reading in test_lineprotocol_properties.py (parse_v3). A query
is executed by Apache DataFusion, the engine InfluxDB 3 runs (``datafusion`` on PyPI), on a table per measurement
of the stored points: ``time`` a timestamp in nanoseconds without a zone, tags as dictionaries of strings (as
``core/schema/src/lib.rs`` types them), fields as written;
a column exists once a point has written it, as in InfluxDB 3's catalog. The answer is written by DataFusion's
own JSON writer, arrow-json, which InfluxDB 3 uses too: null columns left out, ``time`` without a zone. It is sent
with ``Transfer-Encoding: chunked``, as hyper streams a body of unknown length.
"""

from __future__ import annotations

import base64
import json
import os
import re
import tempfile
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Iterable, Self
from urllib.parse import parse_qs, urlsplit

import datafusion
import pyarrow as pa  # type: ignore[import-untyped]

from test_lineprotocol_properties import Malformed, parse_v3

VERSION = "3.10.1"
INTERNAL_DB = "_internal"
MAX_REQUEST_BYTES = 10 * 1024 * 1024  # influxdb3_clap_blocks: --max-http-request-size, 10485760
COLUMN_LIMIT = 500  # columns per table (influxdb3_catalog: the default columns_per_table_limit)
_PRECISION_NS = {"nanosecond": 1, "ns": 1, "n": 1, "microsecond": 1_000, "us": 1_000, "u": 1_000,
                 "millisecond": 1_000_000, "ms": 1_000_000, "second": 1_000_000_000, "s": 1_000_000_000}
_HUMANTIME_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(/[A-Za-z0-9_-]+)?")
_ACCEPTED = (None, "application/json", "*/*")
# a tag column's type (core/schema/src/lib.rs: InfluxColumnType::Tag => Dictionary(Int32, Utf8))
TAG_TYPE = pa.dictionary(pa.int32(), pa.string())
_UNAUTHENTICATED = '{"error": "the request was not authenticated"}'


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


class FakeInfluxDB3:
    """InfluxDB 3 Core's HTTP API on 127.0.0.1 with state in memory.

    `tokens` are admin tokens; `read_write_tokens` may write, query and list the databases but not create or
    change them nor read `_internal` (403, as Enterprise's database tokens). `disable_authz` names the paths that
    need no token (``--disable-authz ping,health``: {"/ping", "/health"}). `column_limit` is the columns a table
    may have. `retention_updates=False` refuses PUT /api/v3/configure/database as a server that keeps retention fixed.
    """

    def __init__(self, token: str = "test-token", *, read_write_tokens: Iterable[str] = (),
                 disable_authz: Iterable[str] = (), column_limit: int = COLUMN_LIMIT,
                 retention_updates: bool = True) -> None:
        self.tokens, self.read_write_tokens = {token}, set(read_write_tokens)
        self.disable_authz, self.column_limit, self.retention_updates = set(disable_authz), column_limit, \
            retention_updates
        self.databases: dict[str, int | None] = {INTERNAL_DB: None}  # name -> retention in ns, None: forever
        self.requests: list[tuple[str, str]] = []  # (method, path) of each request
        self.writes: list[bytes] = []  # each write_lp body
        self.queries: list[dict[str, Any]] = []  # each query_sql request: {"db", "q", "format"}
        self.url = ""
        # (db, table) -> {(sorted tags, time_ns): {column: value}}; (db, table) -> {column: "tag" or a field type}
        self._points: dict[tuple[str, str], dict[tuple, dict[str, Any]]] = {}
        self._columns: dict[tuple[str, str], dict[str, str]] = {}
        self._lock = threading.Lock()
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        self._server = _HTTPServer(self)
        self._thread = threading.Thread(target=self._server.serve_forever, name="FakeInfluxDB3", daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # Helpers for tests.

    def points(self, db: str = "temperature", table: str = "temperature") -> list[dict[str, Any]]:
        """The stored rows of a table, each {column: value} with `time` in ns, in time order then tags."""
        with self._lock:
            rows = self._points.get((db, table), {})
            return [{**row, "time": key[1]} for key, row in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0]))]

    def add_database(self, name: str, retention_s: int = 0) -> None:
        with self._lock:
            self.databases[name] = retention_s * 1_000_000_000 or None

    # Request handling.

    def _handle(self, method: str, path: str, headers: Any, body: bytes) -> _Reply:
        url = urlsplit(path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        with self._lock:
            self.requests.append((method, url.path))
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
            case "GET", "/health":
                return _Reply(200, b"OK", "text/plain; charset=utf-8")
            case "POST", "/api/v3/write_lp":
                return self._write(query, body)
            case ("GET" | "POST"), "/api/v3/query_sql":
                return self._query(method, query, headers, body, token)
            case "GET", "/api/v3/configure/database":
                if query.get("format") not in ("json", "jsonl", "json_lines"):
                    raise _Refusal(400, "the stand-in lists databases as json or jsonl only")
                names = sorted(self.databases)
                return _Reply(200, json.dumps([{"iox::database": n} for n in names]).encode(), "application/json")
            case ("POST" | "PUT"), "/api/v3/configure/database":
                self._admin(token)
                return self._configure(method, headers, body)
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
        accept_partial = query.get("accept_partial", "true") != "false"
        try:
            text = body.decode()
        except UnicodeDecodeError as error:
            raise _Refusal(400, f"body is not valid utf8: {error}") from None
        self.writes.append(body)
        self.databases.setdefault(db, None)  # created by its first write, keeping forever
        errors: list[dict[str, Any]] = []
        lines = [line for line in text.split("\n") if line.strip(" \t")]  # parse_lines skips blank lines
        for number, line in enumerate(lines, start=1):
            problem = self._store(db, line, precision)
            if problem:
                errors.append({"error_message": problem, "line_number": number,
                               "original_line": line.encode()[:20].decode(errors="ignore")})
                if not accept_partial:
                    raise _Refusal(400, {"error": "line protocol parsing error", "data": errors[0]})
        if not lines:
            raise _Refusal(400, "no data in the write request")
        if errors:
            limit = any(e["error_message"].startswith("Update to schema would exceed") for e in errors)
            raise _Refusal(422 if limit else 400, {"error": "partial write of line protocol occurred", "data": errors})
        return _Reply(204)

    def _store(self, db: str, line: str, ns_per_unit: int) -> str | None:
        """Store one line; what is wrong with it, if anything (nothing of it is stored then)."""
        try:
            table, tags, fields, stamp = parse_v3(line)
            values = {key: _field_value(text) for key, text in fields.items()}
        except (Malformed, ValueError, IndexError) as error:
            return f"error parsing line: {error}"
        columns = self._columns.setdefault((db, table), {"time": "timestamp"})
        wanted = {**{k: "tag" for k in tags}, **{k: type(v).__name__ for k, v in values.items()}}
        for column, kind in wanted.items():
            if column in columns and columns[column] != kind:
                return f"invalid column type for column '{column}', expected {columns[column]}, got {kind}"
        new = [c for c in wanted if c not in columns]
        if len(columns) + len(new) > self.column_limit:
            return f"Update to schema would exceed number of columns per table limit of {self.column_limit} columns"
        columns.update((c, wanted[c]) for c in new)
        row = self._points.setdefault((db, table), {}).setdefault((tuple(sorted(tags.items())), stamp * ns_per_unit),
                                                                  dict(tags))
        row.update(values)
        return None

    def _configure(self, method: str, headers: Any, body: bytes) -> _Reply:
        if not (headers.get("Content-Type") or "").startswith("application/json"):
            raise _Refusal(415, "invalid content type, expected application/json")
        try:
            request = json.loads(body)
            db, period = request["db"], request.get("retention_period")
            retention = None if period is None else _humantime_ns(period)
        except (ValueError, KeyError, TypeError) as error:
            raise _Refusal(400, f"serde json error: {error!r}") from None
        if method == "POST":
            if not _DB_NAME.fullmatch(db):
                raise _Refusal(400, {"error": "db name did not start with a number or letter"})
            if db in self.databases:
                raise _Refusal(409, "attempted to create a resource that already exists")
            self.databases[db] = retention
            return _Reply(200)
        if db not in self.databases:
            raise _Refusal(404, f"Database not found {db}")
        if not self.retention_updates:
            raise _Refusal(405, "the stand-in keeps retention fixed")
        self.databases[db] = retention
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
        context = self._context(db)
        try:
            lines = json_lines(context.sql(q))
        except Exception as error:  # DataFusion's: its Plan and SQL errors are the statement's fault
            text = str(error)
            raise _Refusal(400 if text.startswith(("Error during planning", "SQL error")) else 500, text) from None
        if fmt == "json":
            return _Reply(200, b"[" + b",".join(lines) + b"]", "application/json")
        return _Reply(200, content_type="application/jsonl", chunks=(line + b"\n" for line in lines))

    def _context(self, db: str) -> datafusion.SessionContext:
        """A DataFusion session holding the database's tables (for _internal: system.databases)."""
        context = datafusion.SessionContext()
        if db == INTERNAL_DB:
            names = list(self.databases)
            batch = pa.record_batch([pa.array(names), pa.array([self.databases[n] for n in names], pa.uint64()),
                                     pa.array([False] * len(names)),
                                     pa.array([None] * len(names), pa.timestamp("s", "UTC"))],
                                    names=["database_name", "retention_period_ns", "deleted", "hard_deletion_time"])
            context.sql("CREATE SCHEMA system").collect()
            context.register_record_batches("system.databases", [[batch]])
            return context
        for (point_db, table), rows in self._points.items():
            if point_db != db:
                continue
            kinds = self._columns[(db, table)]
            ordered = sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0]))
            arrays = {"time": pa.array([key[1] for key, _ in ordered], pa.timestamp("ns"))}
            for column, kind in kinds.items():
                if column != "time":
                    arrow_type = {"tag": TAG_TYPE, "float": pa.float64(), "int": pa.int64(), "str": pa.string(),
                                  "bool": pa.bool_()}[kind]
                    arrays[column] = pa.array([row.get(column) for _, row in ordered], arrow_type)
            context.register_record_batches(table, [[pa.record_batch(list(arrays.values()), names=list(arrays))]])
        return context


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeInfluxDB3) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
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
