"""FakeInfluxDB2: the stand-in for InfluxDB 2's HTTP API (fake_influxdb3.py is InfluxDB 3's).

It mimics InfluxDB 2's documented HTTP API (``/api/v2/...``, error bodies
``{"code", "message"}``, annotated-CSV query results) because no InfluxDB 2
server can run on this machine. It exists only for the buckets API and Flux
query execution; InfluxDB 1.x and VictoriaMetrics are tested against real
servers (see ``servers.py``).

It does not parse Flux. A query is answered by its bound parameters (the
``extern`` AST that influxdb-client builds from ``params=``) and the field
its filter compares ``r._field`` with (``r._field == "humidity"``: the field
is a literal in the text). InfluxDB stores each field of a series as its own
series, keyed by series key and field (SeriesFieldKey in
influxdata/influxdb@v2.7.12:tsdb/engine/tsm1/engine.go), and a pushed-down
filter on ``_field`` reads only that one, so a point written without the
field (a temperature-only sensor's, beside others with ``humidity``) gives
no row; so here:

* ``bucket``, ``start``, ``stop`` and optional ``sensors``: the raw
  ``temperature`` points with that field, start <= _time < stop, as columns
  ``_time, _value, sensor`` sorted by (_time, sensor);
* the same plus ``every``: per epoch-aligned window and series, columns
  ``_time`` (window start, clipped to ``start`` as Flux's window() does),
  ``sensor, mean, min, max``; empty windows omitted. A series is what Flux's
  ``from()`` makes one table of, the measurement, field and whole tag set, and
  ``aggregateWindow`` aggregates each table, so a sensor whose other tags
  changed gives one row per series and window — unless the query groups by
  sensor before it aggregates (``group(columns: ["sensor"])`` ahead of
  ``aggregateWindow`` in the text: the one part of the pipeline's shape the
  fake reads), as InfluxDB 2 would then give one row per sensor and window;
* ``templog report``'s summaries (collector/query/flux.py ``summaries``: the
  text has ``math.exp(x: -H / (r._value + K))``, whose two constants the fake
  reads and computes the mean of exp(-H/(celsius+K)) with, so a wrong
  constant in the text gives a wrong figure): per sensor (per series unless
  the text has ``group(columns: ["sensor"])``, as for the windows: count,
  mean and the selectors run per table), rows ``sensor, _field, _value,
  _time`` with ``_field`` readings, mean, min, max, boltzmann_mean and
  ``_time`` the reading's for min and max, empty for the others (union()
  merges tables of one group key, leaving a column one lacks null:
  influxdata/flux@v0.196.1 stdlib/universe/union.go). Of equal values the
  earliest reading's time: the text sorts by ``_time`` before min() and
  max(), selectors that keep the first of equal values (min.go, max.go:
  strict ``<``, ``>``);
* in both of the report's queries the range is ``time(v: start)`` to
  ``time(v: stop)`` (read from the text), of options bound as integers:
  nanoseconds since the epoch (Flux's ``time(v: int)``), so every digit of
  the bounds counts;
* the report's readings outside a sensor's thresholds (bound ``sensor``, and
  ``low`` and/or ``high``, floats: Flux compares a float with a float only):
  columns ``_time, _value`` of that sensor, ``_value < low`` or ``> high``,
  in time order; the text must compare with exactly the bounds that are
  bound (``r._value < low``, ``r._value > high``), as Flux would refuse an
  undefined identifier.

Both come back as a single table whose columns are not part of the group key, streamed as InfluxDB 2 sends
query results: over HTTP/1.1 with ``Transfer-Encoding: chunked``, the annotated CSV written as it is
produced rather than measured first (influxdata/influxdb@v2.7.10 http/query_handler.go handleQuery: the
dialect's SetHeaders, then the results encoded straight into the response; influxdata/flux@v0.195.2
csv/dialect.go Dialect.SetHeaders sets ``Transfer-Encoding: chunked``). Like the server, it sorts in memory
before the first row goes out.

Every response carries ``X-Influxdb-Version`` and ``X-Influxdb-Build`` as
InfluxDB 2 sets them (buildHeader in influxdata/influxdb@v2.7.12:http/handler.go),
so a client can tell a 2.x from a 1.x by /ping. The 1.x compatibility API
(``/write``, ``/query``) answers as InfluxDB 2 does for an org without DBRP
mappings: credentials as in influxdata/influxdb@v2.7.12:
http/legacy/influx1x_authentication_handler.go (a missing or wrong token:
401), then /write 404 "no dbrp mapping found"
(http/legacy/write_handler.go), /query ``SHOW DATABASES`` an empty list,
``CREATE DATABASE`` and ``ALTER RETENTION POLICY`` "not implemented: ..."
(v1/coordinator/statement_executor.go), anything else "database not found: db".
"""

from __future__ import annotations

import base64
import copy
import csv
import gzip
import io
import itertools
import json
import math
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import Any, Iterable, Iterator
from urllib.parse import parse_qs, urlsplit

from loopback_server import LoopbackServer, ServedOnLoopback

MEASUREMENT = "temperature"
DEFAULT_ORG = {"id": "0000000000000001", "name": "home"}
VERSION = "v2.7.10"
HEALTH = {"name": "influxdb", "message": "ready for queries and writes", "status": "pass", "version": VERSION}
BUILD_HEADERS = (("X-Influxdb-Build", "OSS"), ("X-Influxdb-Version", VERSION))
_NOT_IMPLEMENTED = {"CREATE DATABASE": "CREATE DATABASE", "ALTER RETENTION": "ALTER RETENTION POLICY"}

_PRECISION_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
# Flux duration units of fixed length (mo and y vary, so the fake rejects them).
_DURATION_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_DURATION_NS |= {"m": 60 * _DURATION_NS["s"], "h": 3_600 * _DURATION_NS["s"], "d": 86_400 * _DURATION_NS["s"]}
_DURATION_NS["w"] = 7 * _DURATION_NS["d"]
_NS_RANGE = "range(start: time(v: start), stop: time(v: stop))"  # options start, stop: integers, ns
_FIELD_TYPES = {float: "float", int: "integer", str: "string", bool: "boolean"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Point = dict[str, Any]
Params = dict[str, Any]


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    chunks: Iterable[bytes] | None = None  # instead of body: sent chunked, each as it is produced


class _APIError(Exception):
    """An InfluxDB-style error response, raised from deep inside request handling."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.reply = _json_reply(status, {"code": code, "message": message}, ("X-Platform-Error-Code", code))


def _json_reply(status: int, payload: object, *headers: tuple[str, str]) -> _Reply:
    return _Reply(status, json.dumps(payload).encode(), (("Content-Type", "application/json; charset=utf-8"), *headers))


class FakeInfluxDB2(ServedOnLoopback):
    """InfluxDB 2.x HTTP API on 127.0.0.1 with state in memory.

    `bucket_permission=False` models a token that may write and query but not
    read or manage buckets: every ``/api/v2/buckets`` call then gets 403.
    Writes behave like InfluxDB's: rewriting a point (same series and time)
    merges its fields, and a field whose type differs from earlier writes to
    the bucket is dropped with 422 "partial write: field type conflict".
    """

    def __init__(self, token: str = "test-token", bucket_permission: bool = True) -> None:
        self.tokens = {token}
        self.bucket_permission = bucket_permission
        self.orgs: list[dict[str, str]] = [dict(DEFAULT_ORG)]
        self.buckets: list[dict[str, Any]] = []
        self.queries: list[dict[str, Any]] = []  # {"query": flux text, "params": decoded extern}
        # Keyed by (bucket id, measurement, sorted tags, time_ns): rewriting a point updates it.
        self._points: dict[tuple[Any, ...], Point] = {}
        self._field_types: dict[tuple[str, str, str], str] = {}
        self._ids = itertools.count(0x0B0000000001)
        self._lock = threading.Lock()

    # Helpers for tests.

    def bucket(self, name: str) -> dict[str, Any] | None:
        """A copy of the bucket called `name`, or None."""
        with self._lock:
            return next((copy.deepcopy(b) for b in self.buckets if b["name"] == name), None)

    def points(self, bucket: str | None = None) -> list[Point]:
        """Copies of the stored points (of one bucket, by name), in first-written order."""
        with self._lock:
            names = {b["id"]: b["name"] for b in self.buckets}
            return [
                {**copy.deepcopy(point), "bucket": names[bucket_id]}
                for (bucket_id, *_), point in self._points.items()
                if bucket in (None, names[bucket_id])
            ]

    def add_bucket(self, name: str, every_seconds: int = 0) -> dict[str, Any]:
        """Create a bucket in the default org directly; `every_seconds=0` means infinite retention."""
        rules = [{"type": "expire", "everySeconds": every_seconds}] if every_seconds else []
        with self._lock:
            bucket = self._create_bucket({"orgID": DEFAULT_ORG["id"], "name": name, "retentionRules": rules})
            return copy.deepcopy(bucket)

    # Request handling.

    def _handle(self, method: str, path: str, headers: Any, body: bytes) -> _Reply:
        """Answer one HTTP request (called from the server's handler threads)."""
        url = urlsplit(path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        try:
            if url.path == "/ping" and method == "GET":
                return _Reply(204)
            if url.path == "/health" and method == "GET":
                return _json_reply(200, HEALTH)
            if url.path in ("/write", "/query"):
                return self._legacy(url.path, headers.get("Authorization", ""), query, body)
            parts = url.path.split("/")[3:] if url.path.startswith("/api/v2/") else []
            if parts and not self._authorized(headers.get("Authorization", "")):
                raise _APIError(401, "unauthorized", "unauthorized access")
            if headers.get("Content-Encoding", "").lower() == "gzip":
                try:
                    body = gzip.decompress(body)
                except (OSError, EOFError) as error:
                    raise _APIError(400, "invalid", f"invalid gzip body: {error}") from None
            with self._lock:
                return self._route(method, parts, query, body)
        except _APIError as error:
            return error.reply
        except Exception as error:  # a bug in the fake: make it visible to the client, not just on stderr
            return _APIError(500, "internal error", repr(error)).reply

    def _authorized(self, authorization: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        return scheme in ("Token", "Bearer") and token in self.tokens

    def _legacy(self, path: str, authorization: str, query: dict[str, str], body: bytes) -> _Reply:
        """The 1.x compatibility API of an org without DBRP mappings (no 1.x database maps to a bucket)."""
        scheme, _, credentials = authorization.partition(" ")
        if scheme == "Basic":
            try:
                credentials = base64.b64decode(credentials).decode()
            except ValueError:
                credentials = ""
        token = query.get("p") or credentials.rpartition(":")[2]  # user:token, or the token alone
        if not token:
            raise _APIError(401, "unauthorized", "unauthorized access")
        if token not in self.tokens:
            raise _APIError(401, "unauthorized", "Unauthorized")
        if path == "/write":
            raise _APIError(404, "not found", "no dbrp mapping found")
        form = {key: values[0] for key, values in parse_qs(body.decode(errors="replace")).items()}
        results = []
        for number, statement in enumerate(filter(None, map(str.strip, form.get("q", "").split(";")))):
            start = " ".join(statement.upper().split()[:2])
            if start == "SHOW DATABASES":
                results.append({"statement_id": number, "series": [{"name": "databases", "columns": ["name"]}]})
            elif start in _NOT_IMPLEMENTED:
                results.append({"statement_id": number, "error": f"not implemented: {_NOT_IMPLEMENTED[start]}"})
            else:
                results.append({"statement_id": number, "error": f"database not found: {form.get('db', '')}"})
        return _json_reply(200, {"results": results})

    def _route(self, method: str, parts: list[str], query: dict[str, str], body: bytes) -> _Reply:
        if parts[:1] == ["buckets"] and not self.bucket_permission:
            raise _APIError(403, "forbidden", "insufficient permissions")
        match method, parts:
            case "GET", ["orgs"]:
                orgs = [
                    o
                    for o in self.orgs
                    if query.get("org", o["name"]) == o["name"] and query.get("orgID", o["id"]) == o["id"]
                ]
                return _json_reply(200, {"orgs": orgs})
            case "GET", ["buckets"]:
                org = self._org(query) if "org" in query or "orgID" in query else None
                found = [
                    b
                    for b in self.buckets
                    if (org is None or b["orgID"] == org["id"])
                    and query.get("name", b["name"]) == b["name"]
                    and query.get("id", b["id"]) == b["id"]
                ]
                return _json_reply(200, {"buckets": found})
            case "POST", ["buckets"]:
                return _json_reply(201, self._create_bucket(_json_body(body)))
            case "GET", ["buckets", bucket_id]:
                return _json_reply(200, self._bucket_by_id(bucket_id))
            case "PATCH", ["buckets", bucket_id]:
                return _json_reply(200, self._update_bucket(self._bucket_by_id(bucket_id), _json_body(body)))
            case "POST", ["write"]:
                return self._write(query, body)
            case "POST", ["query"]:
                return self._query(query, _json_body(body))
        raise _APIError(404, "not found", "path not found")

    def _org(self, query: dict[str, str]) -> dict[str, str]:
        """The org named by the `orgID` or `org` query parameter."""
        if "orgID" in query:
            found = [o for o in self.orgs if o["id"] == query["orgID"]]
            missing = f"organization id {query['orgID']!r} not found"
        elif "org" in query:
            found = [o for o in self.orgs if o["name"] == query["org"]]
            missing = f"organization name \"{query['org']}\" not found"
        else:
            raise _APIError(400, "invalid", "Please provide either orgID or org")
        if not found:
            raise _APIError(404, "not found", missing)
        return found[0]

    def _bucket_by_id(self, bucket_id: str) -> dict[str, Any]:
        for bucket in self.buckets:
            if bucket["id"] == bucket_id:
                return bucket
        raise _APIError(404, "not found", "bucket not found")

    def _bucket_in_org(self, org: dict[str, str], name_or_id: str) -> dict[str, Any] | None:
        return next((b for b in self.buckets if b["orgID"] == org["id"] and name_or_id in (b["name"], b["id"])), None)

    def _check_name_free(self, org_id: str, name: str) -> None:
        if any(b["orgID"] == org_id and b["name"] == name for b in self.buckets):
            raise _APIError(422, "conflict", f"bucket with name {name} already exists")

    def _create_bucket(self, request: dict[str, Any]) -> dict[str, Any]:
        name, org_id = request.get("name"), request.get("orgID")
        if not isinstance(name, str) or not name or not isinstance(org_id, str):
            raise _APIError(400, "invalid", "bucket name and orgID are required")
        self._org({"orgID": org_id})
        self._check_name_free(org_id, name)
        now = _now_rfc3339()
        bucket = {
            "id": f"{next(self._ids):016x}",
            "orgID": org_id,
            "name": name,
            "retentionRules": _retention_rules(request.get("retentionRules") or []),
            "type": "user",
            "createdAt": now,
            "updatedAt": now,
        }
        if request.get("description"):
            bucket["description"] = request["description"]
        self.buckets.append(bucket)
        return bucket

    def _update_bucket(self, bucket: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        if request.get("name") not in (None, bucket["name"]):
            self._check_name_free(bucket["orgID"], request["name"])
            bucket["name"] = request["name"]
        if request.get("retentionRules") is not None:
            bucket["retentionRules"] = _retention_rules(request["retentionRules"])
        if request.get("description") is not None:
            bucket["description"] = request["description"]
        bucket["updatedAt"] = _now_rfc3339()
        return bucket

    def _write(self, query: dict[str, str], body: bytes) -> _Reply:
        org = self._org(query)
        name = query.get("bucket") or query.get("bucketID")
        if not name:
            raise _APIError(400, "invalid", "bucket not specified")
        bucket = self._bucket_in_org(org, name)
        if bucket is None:
            raise _APIError(404, "not found", f'bucket "{name}" not found')
        precision = query.get("precision", "ns")
        if precision not in _PRECISION_NS:
            raise _APIError(400, "invalid", f"invalid precision {precision!r}")
        try:
            parsed = _parse_line_protocol(body.decode(), _PRECISION_NS[precision])
        except ValueError as error:  # includes UnicodeDecodeError
            raise _APIError(400, "invalid", str(error)) from None
        conflicts = []
        for point in parsed:
            types = {(bucket["id"], point["measurement"], f): _FIELD_TYPES[type(v)] for f, v in point["fields"].items()}
            clash = next((k for k, t in types.items() if self._field_types.get(k, t) != t), None)
            if clash is not None:
                conflicts.append(
                    f'input field "{clash[2]}" on measurement "{clash[1]}" is type {types[clash]}, '
                    f"already exists as type {self._field_types[clash]}"
                )
                continue
            self._field_types.update(types)
            key = (bucket["id"], point["measurement"], tuple(sorted(point["tags"].items())), point["time_ns"])
            self._points.setdefault(key, {**point, "fields": {}})["fields"].update(point["fields"])
        if conflicts:
            message = f"partial write: field type conflict: {conflicts[0]} dropped={len(conflicts)}"
            raise _APIError(422, "unprocessable entity", f"failure writing points to database: {message}")
        return _Reply(204)

    def _query(self, query: dict[str, str], request: dict[str, Any]) -> _Reply:
        org = self._org(query)
        flux = request.get("query")
        if not isinstance(flux, str) or not flux:
            raise _APIError(400, "invalid", "query is required")
        params = _decode_extern(request.get("extern"))
        self.queries.append({"query": flux, "params": params})
        bucket_name, start, stop = params.get("bucket"), params.get("start"), params.get("stop")
        sensors, every = params.get("sensors"), params.get("every")
        if isinstance(start, int) and isinstance(stop, int) and _NS_RANGE in flux:  # nanoseconds made times
            start, stop = (_EPOCH + timedelta(microseconds=ns / 1000) for ns in (start, stop))
            start_ns, stop_ns = params["start"], params["stop"]
        elif isinstance(start, datetime) and isinstance(stop, datetime):
            start_ns, stop_ns = _datetime_ns(start), _datetime_ns(stop)
        if not (isinstance(bucket_name, str) and isinstance(start, datetime) and isinstance(stop, datetime)):
            raise _APIError(400, "invalid", "parameters bucket (string), start and stop (time) are required")
        if sensors is not None and not (isinstance(sensors, list) and all(isinstance(s, str) for s in sensors)):
            raise _APIError(400, "invalid", "parameter sensors must be an array of strings")
        if every is not None and not (isinstance(every, timedelta) and every > timedelta(0)):
            raise _APIError(400, "invalid", "parameter every must be a positive duration")
        bucket = self._bucket_in_org(org, bucket_name)
        if bucket is None:
            message = f'failed to initialize execute state: could not find bucket "{bucket_name}"'
            raise _APIError(404, "not found", message)
        field = re.search(r'r\._field == "([^"\\]*)"', flux)
        if field is None:
            raise _APIError(400, "invalid", 'FakeInfluxDB2 answers only a query that filters r._field == "a field"')
        selected = sorted(  # (time_ns, sensor, value, tags); integer values are reported as doubles
            (point["time_ns"], point["tags"].get("sensor", ""), float(point["fields"][field[1]]),
             tuple(sorted(point["tags"].items())))
            for (bucket_id, *_), point in self._points.items()
            if bucket_id == bucket["id"]
            and point["measurement"] == MEASUREMENT
            and type(point["fields"].get(field[1])) in (float, int)
            and start_ns <= point["time_ns"] < stop_ns
            and (sensors is None or point["tags"].get("sensor") in sensors)
        )
        grouped = re.search(r'group\(columns: \["sensor"\]\)', flux) is not None
        by_sensor = re.search(r'group\(columns: \["sensor"\]\)[\s\S]*aggregateWindow\(', flux) is not None
        boltzmann = re.search(r"math\.exp\(x: -([0-9.]+) / \(r\._value \+ ([0-9.]+)\)\)", flux)
        if "sensor" in params:
            records = _outside_csv(selected, params, flux)
        elif boltzmann is not None:
            records = _summaries_csv(selected, grouped, float(boltzmann[1]), float(boltzmann[2]))
        elif every is None:
            records = _raw_csv(selected)
        else:
            records = _windowed_csv(selected, start_ns, _timedelta_ns(every), by_sensor)
        return _Reply(200, headers=(("Content-Type", "text/csv; charset=utf-8"),), chunks=_encoded(records))


class _Handler(BaseHTTPRequestHandler):
    server: LoopbackServer
    protocol_version = "HTTP/1.1"  # keep-alive and chunked replies, as InfluxDB's Go server

    def _serve(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        reply = self.server.fake._handle(self.command, self.path, self.headers, body)
        self.send_response(reply.status)
        for name, value in BUILD_HEADERS + reply.headers:
            self.send_header(name, value)
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

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging to stderr; tests inspect `queries` and `points()` instead."""


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError as error:
        raise _APIError(400, "invalid", f"invalid JSON body: {error}") from None
    if not isinstance(value, dict):
        raise _APIError(400, "invalid", "JSON body must be an object")
    return value


def _retention_rules(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fill in shardGroupDurationSeconds as InfluxDB does when it is not given."""
    return [
        {
            "type": rule.get("type", "expire"),
            "everySeconds": int(rule.get("everySeconds", 0)),
            "shardGroupDurationSeconds": int(
                rule.get("shardGroupDurationSeconds") or _default_shard_group_seconds(int(rule.get("everySeconds", 0)))
            ),
        }
        for rule in rules
    ]


def _default_shard_group_seconds(retention_seconds: int) -> int:
    """InfluxDB's documented default: 1h below 2 days, 1d up to 6 months, else (or infinite) 7d."""
    day = 86_400
    if 0 < retention_seconds < 2 * day:
        return 3_600
    if 0 < retention_seconds <= 182 * day:
        return day
    return 7 * day


def _split_unescaped(text: str, sep: str, *, quoted: bool = False, maxsplit: int = -1) -> list[str]:
    """Split on `sep` except where backslash-escaped or (if `quoted`) inside a "string"."""
    parts: list[str] = []
    start, i, in_string = 0, 0, False
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if quoted and char == '"':
            in_string = not in_string
        elif char == sep and not in_string and (maxsplit < 0 or len(parts) < maxsplit):
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\([,= ])", r"\1", text)


def _key_value(pair: str, *, quoted: bool = False) -> tuple[str, str]:
    key, *value = _split_unescaped(pair, "=", quoted=quoted, maxsplit=1)
    if not key or not value or not value[0]:
        raise ValueError(f"invalid key=value pair {pair!r}")
    return _unescape(key), value[0]


def _field_value(text: str) -> float | int | str | bool:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return re.sub(r'\\(["\\])', r"\1", text[1:-1])
    if text in ("t", "T", "true", "True", "TRUE"):
        return True
    if text in ("f", "F", "false", "False", "FALSE"):
        return False
    if re.fullmatch(r"[+-]?\d+[iu]", text):
        return int(text[:-1])
    if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text):
        return float(text)
    raise ValueError(f"invalid field value {text!r}")


def _parse_line_protocol(text: str, ns_per_unit: int) -> list[Point]:
    """Parse InfluxDB line protocol into {measurement, tags, fields, time_ns} dicts."""
    now_ns = time.time_ns() // ns_per_unit * ns_per_unit
    points = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            series, *rest = _split_unescaped(line, " ", maxsplit=1)
            if not rest:
                raise ValueError("missing fields")
            field_set, *timestamp = _split_unescaped(rest[0], " ", quoted=True, maxsplit=1)
            measurement, *tag_pairs = _split_unescaped(series, ",")
            if not measurement:
                raise ValueError("missing measurement")
            field_pairs = (_key_value(pair, quoted=True) for pair in _split_unescaped(field_set, ",", quoted=True))
            fields = {key: _field_value(value) for key, value in field_pairs}
            if timestamp and not re.fullmatch(r"-?\d+", timestamp[0].strip()):
                raise ValueError(f"invalid timestamp {timestamp[0]!r}")
            points.append(
                {
                    "measurement": _unescape(measurement),
                    "tags": {key: _unescape(value) for key, value in map(_key_value, tag_pairs)},
                    "fields": fields,
                    "time_ns": int(timestamp[0]) * ns_per_unit if timestamp else now_ns,
                }
            )
        except ValueError as error:
            raise ValueError(f"unable to parse '{line}': {error}") from None
    return points


def _decode_extern(extern: Any) -> Params:
    """Turn influxdb-client's `extern` (a Flux File of OptionStatements) into {name: Python value}."""
    if extern is None:
        return {}
    try:
        return {
            statement["assignment"]["id"]["name"]: _decode_literal(statement["assignment"]["init"])
            for statement in extern["body"]
        }
    except (KeyError, TypeError, ValueError) as error:
        raise _APIError(400, "invalid", f"invalid extern: {error!r}") from None


def _decode_literal(node: dict[str, Any]) -> Any:
    match node["type"]:
        case "StringLiteral":
            return node["value"]
        case "IntegerLiteral":
            return int(node["value"])
        case "FloatLiteral":
            return float(node["value"])
        case "BooleanLiteral":
            return bool(node["value"])
        case "DateTimeLiteral":
            return datetime.fromisoformat(node["value"]).astimezone(UTC)
        case "DurationLiteral":  # timedelta keeps whole microseconds, all influxdb-client sends
            return timedelta(microseconds=sum(d["magnitude"] * _DURATION_NS[d["unit"]] for d in node["values"]) // 1000)
        case "ArrayExpression":
            return [_decode_literal(element) for element in node["elements"]]
    raise ValueError(f"unsupported literal {node['type']}")


def _timedelta_ns(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1) * 1000


def _datetime_ns(moment: datetime) -> int:
    return _timedelta_ns(moment - _EPOCH)


def _format_time(ns: int) -> str:
    """RFC3339 with as many fractional digits as needed, like Go's RFC3339Nano."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{fraction:09d}".rstrip("0") if fraction else "") + "Z"


def _format_double(value: float) -> str:
    """Shortest round-trip decimal without exponent, like Flux's CSV encoder."""
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _now_rfc3339() -> str:
    return _format_time(time.time_ns())


Selected = list[tuple[int, str, float, tuple]]  # (time_ns, sensor, value, the series' tags)


def _raw_csv(selected: Selected) -> Iterator[list[str]]:
    columns = [("_time", "dateTime:RFC3339"), ("_value", "double"), ("sensor", "string")]
    return _annotated_csv(columns, ([_format_time(t), _format_double(v), sensor] for t, sensor, v, *_ in selected))


def _windowed_csv(selected: Selected, start_ns: int, every_ns: int, by_sensor: bool) -> Iterator[list[str]]:
    """Mean/min/max per (window, sensor), or per (window, series) unless `by_sensor`; windows are epoch-aligned, the
    first clipped to `start_ns`."""
    windows: dict[tuple[int, str, tuple], list[float]] = {}
    for t, sensor, value, tags in selected:
        windows.setdefault((max(start_ns, t - t % every_ns), sensor, () if by_sensor else tags), []).append(value)
    columns = [("_time", "dateTime:RFC3339"), ("sensor", "string")]
    columns += [(name, "double") for name in ("mean", "min", "max")]
    rows = (
        [_format_time(t), sensor, *map(_format_double, (sum(values) / len(values), min(values), max(values)))]
        for (t, sensor, _), values in sorted(windows.items())
    )
    return _annotated_csv(columns, rows)


def _summaries_csv(selected: Selected, by_sensor: bool, delta_h_over_r: float, kelvin: float) -> Iterator[list[str]]:
    """The report's summaries: per sensor (per series unless `by_sensor`), a row per statistic, `_time` the
    reading's on min's and max's (the earliest of equal values: the query sorts by time before the selectors)."""
    groups: dict[tuple[str, tuple], list[tuple[int, float]]] = {}
    for t, sensor, value, tags in selected:  # `selected` is in time order
        groups.setdefault((sensor, () if by_sensor else tags), []).append((t, value))
    rows = []
    for (sensor, _), readings in sorted(groups.items()):
        values = [v for _, v in readings]
        low = min(readings, key=lambda reading: reading[1])  # min() keeps the first of equal values
        high = max(readings, key=lambda reading: reading[1])
        boltzmann = sum(math.exp(-delta_h_over_r / (v + kelvin)) for v in values) / len(values)
        rows += [[sensor, "readings", _format_double(float(len(values))), ""],
                 [sensor, "mean", _format_double(sum(values) / len(values)), ""],
                 [sensor, "min", _format_double(low[1]), _format_time(low[0])],
                 [sensor, "max", _format_double(high[1]), _format_time(high[0])],
                 [sensor, "boltzmann_mean", _format_double(boltzmann), ""]]
    columns = [("sensor", "string"), ("_field", "string"), ("_value", "double"), ("_time", "dateTime:RFC3339")]
    return _annotated_csv(columns, rows)


def _outside_csv(selected: Selected, params: Params, flux: str) -> Iterator[list[str]]:
    """The report's readings of one sensor beyond the bounds the text compares `_value` with, in time order."""
    sensor, low, high = params["sensor"], params.get("low"), params.get("high")
    compares_low, compares_high = "r._value < low" in flux, "r._value > high" in flux
    if not isinstance(sensor, str) or any(isinstance(bound, int) for bound in (low, high)):
        raise _APIError(400, "invalid", "type error: parameter sensor must be a string and low, high floats")
    if (low is None) == compares_low or (high is None) == compares_high:
        raise _APIError(400, "invalid", "undefined identifier low or high")
    rows = ([_format_time(t), _format_double(v)] for t, name, v, _ in selected
            if name == sensor and ((low is not None and v < low) or (high is not None and v > high)))
    return _annotated_csv([("_time", "dateTime:RFC3339"), ("_value", "double")], rows)


def _annotated_csv(columns: list[tuple[str, str]], rows: Iterable[list[str]]) -> Iterator[list[str]]:
    """The CSV records of a one-table annotated CSV as InfluxDB returns it; an empty result is the blank line that
    ends every result alone (influxdata/flux@v0.196.1 result.go DelimitedMultiResultEncoder.Encode)."""
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        yield []
        return
    yield ["#datatype", "string", "long", *(kind for _, kind in columns)]
    yield ["#group", "false", "false", *("false" for _ in columns)]
    yield ["#default", "_result", "", *("" for _ in columns)]
    yield ["", "result", "table", *(name for name, _ in columns)]
    for row in itertools.chain([first], rows):
        yield ["", "", "0", *row]
    yield []  # the blank line that ends a result


def _encoded(records: Iterable[list[str]], chunk_bytes: int = 64 * 1024) -> Iterator[bytes]:
    """CSV records as UTF-8 with CRLF line ends, in pieces of about `chunk_bytes`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for record in records:
        writer.writerow(record)
        if out.tell() >= chunk_bytes:
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
    if out.tell():
        yield out.getvalue().encode()


FakeInfluxDB2.handler = _Handler  # the class it serves is defined first
