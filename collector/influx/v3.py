"""InfluxDB 3 Core / Enterprise through its own HTTP API (/api/v3) over urllib3: write_lp, configure/database for
retention, query_sql for history and `check`. Every behaviour relied on is cited from the server's source,
influxdata/influxdb@v3.10.1 (influxdb3_server/src/http.rs unless another file is named)."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Callable, Generator, Iterable, Iterator, Literal, Sequence, TypeVar
from urllib.parse import urlencode

import urllib3

from collector.config_types import InfluxConfig
from collector.durations import describe_retention
from collector.health import LATENCY_FIELDS, OUTBOX_FIELDS, TOTAL_COUNTERS, WRITE_FAILURES
from collector.influx.client import InfluxClient, finite, summary_of
from collector.influx.errors import (
    HttpError,
    InfluxError,
    LimitReached,
    NotFound,
    PartialWrite,
    QueryFailed,
    RequestRefused,
    RetentionUnsupported,
    ServerError,
    Throttled,
    Unauthorized,
    Unreachable,
    UnusableToken,
    http_error,
    media_type,
    not_the_answer,
    opening,
    shown,
)
from collector.influx.retention import change, deletion, differs, shortens, when_missing
from collector.influx.version import ServerVersion, wrong_api_hint
from collector.lineprotocol import DEWPOINT, FIELD, HEALTH_MEASUREMENT, HUMIDITY, MEASUREMENT
from collector.logs import log_traceback
from collector.query import HistoryQuery, Row, sql
from collector.report import Summary
from collector.ticks import NS_PER_S, parse_rfc3339_ns

log = logging.getLogger("templog.influx")

# The database InfluxDB 3 keeps its catalog's system tables in: system.databases, with each database's retention,
# is there only (influxdb3_catalog/src/catalog.rs INTERNAL_DB_NAME; influxdb3_system_tables/src/lib.rs registers
# DATABASES_TABLE_NAME for it alone; databases.rs: retention_period_ns, null when indefinite)
INTERNAL_DB = "_internal"
# A partial write is 422 instead of 400 when a listed line's error starts so (IntoResponse for Error,
# PartialLpWrite); the texts are influxdb3_catalog/src/error.rs's TooManyColumns, TooManyTables, TooManyDbs, ...
LIMIT_ERRORS = ("Update to schema would exceed", "Adding a new database would exceed limit of")
# The form `time` takes in a query's JSON answer: a timestamp without a zone (UTC), with 3, 6 or 9 fractional digits
# or none (arrow-json's encoding of Timestamp(Nanosecond, None), as `df.write_json` of datafusion@51.0.0 and 55.0.0
# writes it)
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?")
# A column's data_type in information_schema.columns as it starts for each kind of column templog's tables declare
_ARROW_TYPES = {"tag": "Dictionary(", "float64": "Float64", "int64": "Int64"}
# What DataFusion says when the query names a column or table never written: no such readings yet
_NEVER_WRITTEN = re.compile(r"No field named|table '[^']*' not found")
# A row of our queries is a few hundred bytes (a time, tags, a few numbers): a line beyond this is no answer of
# theirs, and is refused before it is held whole (urllib3's line iteration keeps a line of any length in memory)
MAX_LINE_BYTES = 1024 * 1024
STREAM_CHUNK_BYTES = 64 * 1024
Parsed = TypeVar("Parsed")


class InfluxV3(InfluxClient):
    api: Literal["v3"] = "v3"  # tells the clients apart, for the type checker too
    missing = "database"

    def __init__(self, config: InfluxConfig, reading_tags: Iterable[str] = (), health_tags: Iterable[str] = ()):
        self.config = config
        self.tables = templog_tables(reading_tags, health_tags)
        self.http = urllib3.PoolManager(timeout=urllib3.Timeout(total=config.timeout), retries=False)
        # /ping needs the token too unless the server runs with --disable-authz ping (route_request authenticates
        # every path but those; influxdb3/src/help/serve.txt)
        self.server = ServerVersion(config.url, "v3", self.http, self._headers)

    def close(self) -> None:
        self.http.clear()

    def _headers(self) -> dict[str, str]:
        # Bearer, Token or Basic (AuthenticationError::MalformedRequest's text); without one, 401
        # InfluxDB 3 splits the header at blanks (validate_auth_header)
        token = self._credentials(blanks=False)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _says_missing(self, message: str) -> bool:
        # query_sql on a database that does not exist: 404 "query error: database not found: x"
        # (influxdb3_internal_api/src/query_executor.rs DatabaseNotFound)
        return "database not found" in message

    def _request(self, method: str, path: str, params: dict | None = None, body: bytes | None = None,
                 content_type: str | None = None, stream: bool = False,
                 accept: str | None = None) -> urllib3.BaseHTTPResponse:
        headers = self._headers()
        if content_type:
            headers["Content-Type"] = content_type
        if accept:
            headers["Accept"] = accept
        url = f"{self.config.url}{path}" + (f"?{urlencode(params)}" if params else "")
        try:
            return self.http.request(method, url, body=body, headers=headers, preload_content=not stream)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._failure(Unreachable(self.config.url, exc)) from exc

    def _json(self, method: str, path: str, document: dict) -> urllib3.BaseHTTPResponse:
        # configure/* read the body only with a JSON Content-Type, else 415 (read_body_json, json_content_type)
        return self._request(method, path, body=json.dumps(document).encode(), content_type="application/json")

    def _refusal(self, response: urllib3.BaseHTTPResponse) -> HttpError:
        return http_error(response.status, error_text(response.data), response.headers.get("Retry-After"),
                          self._secrets())

    def write(self, lines: list[str]) -> None:
        """POST /api/v3/write_lp: 204 when every line is stored. accept_partial is left to its default, true
        (write_lp_inner: `params.accept_partial.unwrap_or(true)`): a batch with a bad line stores the others.
        "nanosecond" is Precision's name for ns (influxdb3_types/src/write.rs: serde lowercase, aliases ns, n)."""
        response = self._request("POST", "/api/v3/write_lp", {"db": self.config.bucket, "precision": "nanosecond"},
                                 "\n".join(lines).encode(), "text/plain; charset=utf-8")
        if response.status != 204:
            raise self._failure(write_refusal(response.status, response.data, response.headers.get("Retry-After"),
                                              lines, self._secrets()))

    def query_stream(self, q: str, db: str | None = None) -> Generator[dict, None, None]:
        """Run SQL, yielding each row as the dict the server writes, while the answer arrives.

        format=jsonl: each record batch is written as JSON lines and sent as it is made (record_batch_stream_to_body,
        QueryFormat::JsonLines), so memory stays flat; null columns are left out of a row. The Accept header is read
        first and must be JSON, */*, or absent, or the query is a 400 whatever `format` says
        (influxdb3_types/src/http.rs QueryFormat::try_from_headers).
        """
        document = {"db": db or self.config.bucket, "q": q, "format": "jsonl"}
        response = self._request("POST", "/api/v3/query_sql", body=json.dumps(document).encode(),
                                 content_type="application/json", stream=True, accept="application/json")
        try:
            try:
                if response.status != 200:
                    refusal = self._refusal(response)
                    # 400: the statement itself (DataFusion's Plan and SQL errors: datafusion_error_status_code)
                    if response.status != 400:
                        raise refusal
                    failed = QueryFailed(str(refusal))
                    failed.status = 400  # the server's refusal, which may say a column was never written
                    raise failed
                yield from rows_of_jsonl(bounded_lines(response.stream(STREAM_CHUNK_BYTES), MAX_LINE_BYTES),
                                         response.headers.get("Content-Type"), self._secrets())
            finally:  # closed, not drained, if the caller stops early: the rest of a long answer is not wanted;
                # and before a failure's hint pings: the pool holds one connection, and would discard one
                response.close()
                response.release_conn()
        except (QueryFailed, HttpError) as exc:  # masked, and hinted where the server says what to fix
            self._failure(exc)
            raise
        except urllib3.exceptions.ProtocolError as exc:  # an error met after rows were sent ends the body early
            raise self._failure(QueryFailed(f"the answer was cut short: {exc}")) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._failure(Unreachable(self.config.url, exc)) from exc

    def describe(self) -> str:
        return f"InfluxDB at {self.config.url} (api v3, database {self.config.bucket})"

    def history(self, query: HistoryQuery) -> Generator[Row, None, None]:
        """The readings `query` asks for, in time order then sensor (the query's ORDER BY). A field or table never
        written is no readings, as on every other source."""
        columns = query.columns
        return self._rows(sql.history(query), lambda record: history_row(record, columns))

    def summaries(self, start_ns: int, stop_ns: int, sensors: tuple[str, ...]) -> dict[str, Summary]:
        """Per sensor of `sensors` with readings in start <= time < stop, their Summary: one query, a row a sensor."""
        if not sensors:
            return {}
        return dict(self._rows(sql.summaries(start_ns, stop_ns, sensors), summary_row))

    def outside(self, start_ns: int, stop_ns: int, sensor: str, low: float | None,
                high: float | None) -> Iterator[tuple[int, float]]:
        """The sensor's readings below `low` or above `high` in start <= time < stop, streamed in time order."""
        if low is None and high is None:
            return iter(())
        return self._rows(sql.outside(start_ns, stop_ns, sensor, low, high), outside_row)

    def _rows(self, q: str, parse: Callable[[dict], Parsed]) -> Generator[Parsed, None, None]:
        """`parse` of each row of the query's answer, as it arrives; a row it refuses (QueryFailed) is masked, after
        the query's connection is back in the pool (the failure's hint pings). A column or table never written is no
        rows: a 500 of DataFusion's SchemaError, or its plan error."""
        records = self.query_stream(q)
        try:
            while True:
                try:
                    record = next(records)
                except StopIteration:
                    return
                except (QueryFailed, ServerError) as exc:
                    # the server's refusal only: an answer's body that says so (a proxy's page) is no answer
                    if exc.status is not None and _NEVER_WRITTEN.search(str(exc)):
                        return
                    raise
                try:
                    row = parse(record)
                except QueryFailed as exc:
                    records.close()
                    self._failure(exc)  # masked: a row quoted in it may echo the credentials
                    raise
                yield row
        finally:
            records.close()

    def _retention(self) -> tuple[bool | None, float | None]:
        """Whether the database exists, and its retention in seconds (0: forever; None: these credentials may not
        read system.databases, so only the listing tells whether it exists, or None if they may not list either)."""
        q = ("SELECT database_name, retention_period_ns FROM system.databases WHERE database_name = "
             f"{sql.string(self.config.bucket)} AND NOT deleted")
        try:
            found = list(self.query_stream(q, INTERNAL_DB))
        except HttpError as exc:
            if exc.status != 403:
                raise
            log.info("the retention of database %s cannot be read with these credentials (%s)", self.config.bucket,
                     exc)
            return self._listed(), None
        if not found:
            return False, None
        nanoseconds = found[0].get("retention_period_ns", 0)
        if not isinstance(nanoseconds, int) or isinstance(nanoseconds, bool):
            raise self._failure(QueryFailed(f"unexpected row in the answer: {found[0]}"))
        return True, nanoseconds / NS_PER_S

    def _listed(self) -> bool | None:
        """GET /api/v3/configure/database?format=json: [{"iox::database": name}, ...], no retention (show_databases;
        influxdb3_query_executor/src/lib.rs); None if these credentials may not list databases."""
        response = self._request("GET", "/api/v3/configure/database", {"format": "json"})
        if response.status == 403:
            return None
        if response.status != 200:
            raise self._failure(self._refusal(response))
        try:
            listing = json.loads(response.data)
            return any(isinstance(d, dict) and d.get("iox::database") == self.config.bucket for d in listing)
        except (ValueError, TypeError) as exc:
            raise self._failure(QueryFailed(f"unexpected database listing: {response.data[:200]!r}")) from exc

    def ensure_retention(self) -> str:
        """With a retention set: create the database with it (a write would create one that keeps forever), or set
        an existing one's. Without one, nothing: the database keeps whatever retention it has."""
        db, wanted = self.config.bucket, self.config.retention
        if wanted is None:
            return self._unmanaged()
        # {"db", "retention_period"} in humantime's form; absent: indefinite (CreateDatabaseRequest,
        # UpdateDatabaseRequest in influxdb3_types/src/http.rs). 200 when created, 409 when it exists
        # (CatalogError::AlreadyExists)
        document: dict[str, str] = {"db": db, **({"retention_period": f"{int(wanted)}s"} if wanted else {})}
        response = self._json("POST", "/api/v3/configure/database", document)
        if response.status == 200:
            self._create_tables()
            return f"created database {db} with retention {describe_retention(wanted)}"
        if response.status != 409:
            raise self._retention_refused(f"cannot create database {db}", self._refusal(response))
        self._create_tables()
        _, current = self._retention()
        if current == wanted:
            return f"database {db}: retention already {describe_retention(wanted)}"
        # PUT /api/v3/configure/database: update_database sets it, or clears it (forever) without retention_period.
        # Documented as fixed at creation, so a refusal is a warning, never a failure.
        response = self._json("PUT", "/api/v3/configure/database", document)
        if response.status != 200:
            raise self._retention_refused(f"could not change the retention of database {db}",
                                          self._refusal(response))
        if current is None:
            return f"database {db}: retention set to {describe_retention(wanted)} (the earlier one cannot be read)"
        done = f"database {db}: retention changed {change(current, wanted)}"
        if shortens(current, wanted):
            log.warning("%s: %s", done, deletion(wanted, f"in database {db}"))
        return done

    def _unmanaged(self) -> str:
        """Without a retention: look the database up. One that exists gets its tables; a missing one is left to the
        first write, which creates it keeping forever (write_buffer/validator.rs initialize: catalog.begin), as
        configure/table would too (catalog.rs create_table: begin_database_transaction): so a warning, not a table."""
        done = "not managed (influxdb.retention is not set): the database's own retention applies"
        try:
            exists, _ = self._retention()
        except (ServerError, Throttled, Unreachable, UnusableToken):  # the writes share these: retried with delivery
            raise
        except InfluxError as exc:
            if exc.status == 401:
                raise
            return f"{done} (whether database {self.config.bucket} exists cannot be read: {exc})"
        if exists is False:
            log.warning("database %s does not exist: InfluxDB 3 creates it on the first write with no retention "
                        "(keeps its points forever); set influxdb.retention to have templog create it with one",
                        self.config.bucket)
            return f"{done}; database {self.config.bucket} is created by the first write"
        if exists:
            self._create_tables()
        return done

    def _create_tables(self) -> None:
        """Create templog's tables in its database, with every column its points may have: a column or table never
        written is an error to SQL (DataFusion's "No field named", "table not found"), where InfluxQL and Flux give
        no data, so the SQL alert rules could not tell "no reading" from a failing query.

        POST /api/v3/configure/table {"db", "table", "tags", "fields": [{"name", "type"}]} (CreateTableRequest,
        FieldType in influxdb3_types/src/http.rs; http.rs create_table): 200, or 409 for a table that exists
        (transaction.rs create_table_with_opts: CatalogError::AlreadyExists). The database must exist first:
        the catalog would create a missing one, keeping forever (catalog.rs begin_database_transaction). Columns a
        later point brings (a tag added to the config, a new write_failures_<kind>) are added by that write
        (write_buffer/validator.rs column_or_create), as for a table that exists already. A refusal is a warning:
        the points are written all the same."""
        for table in self.tables:
            document = {"db": self.config.bucket, "table": table.name, "tags": list(table.tags),
                        "fields": [{"name": name, "type": kind} for name, kind in table.fields.items()]}
            response = self._json("POST", "/api/v3/configure/table", document)
            if response.status == 200:
                log.info("database %s: created table %s with its columns", self.config.bucket, table.name)
            elif response.status == 403:  # a token that may write but not create tables (Enterprise's): each alike
                log.warning("database %s: these credentials may not create tables (%s): %s cannot be made with "
                            "their columns, which appear as points write them; Grafana's SQL alert rules stay in "
                            "Error until each column's first point", self.config.bucket,
                            self._failure(self._refusal(response)), ", ".join(t.name for t in self.tables))
                return
            elif response.status != 409:
                log.warning("database %s: could not create table %s (%s); its columns appear as points write them, "
                            "and the SQL alert rules fail on a column never written", self.config.bucket, table.name,
                            self._failure(self._refusal(response)))

    def _column_problems(self) -> list[str]:
        """A column of templog's tables that exists with another type than templog's points give it: the server
        refuses each such point (write_buffer/validator.rs: CatalogError::InvalidColumnType), and it is set aside.
        information_schema.columns is DataFusion's (on: datafusion_util/src/config.rs); a tag is
        Dictionary(Int32, Utf8) there (core/schema/src/lib.rs InfluxColumnType::Tag). A column not there yet is
        made by the first point that has it."""
        names = ", ".join(sql.string(table.name) for table in self.tables)
        q = f"SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_name IN ({names})"
        try:
            found = {(row.get("table_name"), row.get("column_name")): str(row.get("data_type"))
                     for row in self.query_stream(q)}
        except NotFound:  # no such database yet (its existence could not be read): no columns either
            return []
        db, problems = self.config.bucket, []
        for table in self.tables:
            wanted = {**dict.fromkeys(table.tags, "tag"), **table.fields}
            for column, kind in wanted.items():
                there = found.get((table.name, column))
                if there is None or there.startswith(_ARROW_TYPES[kind]):
                    continue
                writes = "a tag, Dictionary(Int32, Utf8)" if kind == "tag" else f"a field, {_ARROW_TYPES[kind]}"
                problems.append(f"database {db!r}, table {table.name}: column {column} is {there} there, templog "
                                f"writes it as {writes}: InfluxDB 3 refuses each such point and templog sets it "
                                f"aside; delete the table (influxdb3 delete table --database {db} {table.name}) or "
                                "set influxdb.bucket to another database")
        return problems

    def _retention_refused(self, doing: str, failure: HttpError) -> InfluxError:
        """A failure the writes share (a bad token, 5xx, 429) is retried with delivery; any other is a warning."""
        self._failure(failure)
        if isinstance(failure, (ServerError, Throttled)) or failure.status == 401:
            return failure
        return RetentionUnsupported(doing, failure)

    def problems(self) -> list[str]:
        """Everything `templog check` should report about this server, empty when all is well."""
        db, wanted = self.config.bucket, self.config.retention
        try:
            hint = wrong_api_hint("v3", self.ping())
            if hint:
                return [f"InfluxDB at {self.config.url}: {hint}"]
            exists, current = self._retention()
        except InfluxError as exc:
            log_traceback(log, exc, "the problem below")
            return [f"InfluxDB at {self.config.url}: {exc}"]
        if exists is False:  # unknown (None): the first write tells
            return [f"database {db!r} does not exist on {self.config.url}: {when_missing(wanted)}"]
        try:
            problems = self._column_problems()
        except InfluxError as exc:
            log_traceback(log, exc, "the problem below")
            return [f"InfluxDB at {self.config.url}: cannot read the columns of database {db!r}: {exc}"]
        if wanted is None or current is None or current == wanted:
            return problems
        # documented as fixed once the database exists, though Core's code changes it: the server may refuse
        return problems + [differs(f"database {db!r}: retention", current, wanted, f"in database {db}",
                        "templog run tries to apply it; InfluxDB 3 may refuse")]


@dataclass(frozen=True)
class Table:
    """A table as POST /api/v3/configure/table declares it: tag columns and field columns with their FieldType."""

    name: str
    tags: tuple[str, ...]
    fields: dict[str, str]


def templog_tables(reading_tags: Iterable[str], health_tags: Iterable[str]) -> list[Table]:
    """templog's tables with every column its points may have: `temperature` (the readings: lineprotocol.py) and
    `templog` (the collector's health: health.py, counters as integers, ages and latencies as floats), each with
    host, sensor and the configured tag keys its points carry (runner.py point_tags; collector.tags on health)."""

    def tags(configured: Iterable[str]) -> tuple[str, ...]:
        return ("host", "sensor", *sorted(set(configured) - {"host", "sensor"}))

    depth, *ages = OUTBOX_FIELDS  # the depth a count, the oldest point's age and the uptime in seconds
    counters = {name: "int64" for name in (*TOTAL_COUNTERS, WRITE_FAILURES, depth)}
    seconds = {name: "float64" for name in (*ages, *LATENCY_FIELDS)}
    return [Table(MEASUREMENT, tags(reading_tags), {name: "float64" for name in (FIELD, HUMIDITY, DEWPOINT)}),
            Table(HEALTH_MEASUREMENT, tags(health_tags), {**counters, **seconds})]


def error_text(body: bytes | None) -> str:
    """The server's message: {"error": ...} as most failures write it, else the body's text (some are plain)."""
    text = (body or b"").decode(errors="replace")
    try:
        document = json.loads(text)
    except ValueError:
        return text
    if isinstance(document, dict) and isinstance(document.get("error"), str):
        return document["error"]
    return text


def write_refusal(status: int, body: bytes | None, retry_after: str | None, lines: Sequence[str],
                  secrets: Iterable[str] = ()) -> HttpError:
    """The failure for a write of `lines` that was not a 204.

    A partial write (Error::PartialLpWrite) is {"error": "partial write of line protocol occurred", "data": [{
    "error_message", "line_number", "original_line"}, ...]}: line_number counts the batch's lines from 1
    (influxdb3_write/src/write_buffer/validator.rs: `line_idx + 1` over parse_lines, which skips only blank lines:
    templog sends none), original_line is the line cut to 20 bytes at a character's boundary (influxdb3_types/src/
    write.rs, WriteLineError's Serialize; validator.rs: the raw line for a line that does not parse, the parsed
    line rendered again, ParsedLine's Display, for a refused one: the same text for templog's lines, whose tags are
    sorted and escaped as that Display escapes them). With accept_partial, a line that does not parse is listed so
    too. A list that does not fit the batch (a number beyond it, or a line there that does not start as listed: a
    server or proxy that numbers otherwise) is left to the sender to isolate by halves. That check sees 20 bytes,
    which lines of one host share: it catches a list that does not fit the batch, not every misnumbering; templog
    relies on 3.10.1's numbering. A 400 without a list refuses the request, not a line (a soft-deleted database:
    write_buffer/validator.rs initialize, DatabaseDeleted, answered without `data` in http.rs IntoResponse for
    Error): retried, as isolating it would set every point aside.
    """
    secrets, count = list(secrets), len(lines)
    message = error_text(body)
    failure = http_error(status, message, retry_after, secrets)
    text = shown(message, secrets)
    if status == 400 and "Authorization header was malformed" in text:
        # AuthenticationError::MalformedRequest (a token with a space, from a token_file replaced since the start):
        # every point would be refused alike, so it is the token's failure, retried as a bad token is
        return Unauthorized(status, text)
    if status not in (400, 422):
        return failure
    listed = _refused_list(body)
    if status == 400 and listed is None:
        return RequestRefused(status, f"InfluxDB 3 refused the write as a whole ({text}); the points stay in the "
                                      "outbox and are retried")
    refused = None if listed is None else _listed_lines(listed, lines)
    if refused is None:
        return LimitReached(status, limit_text(text, None)) if status == 422 else failure
    limited = sorted(i for i, message in refused.items() if message.startswith(LIMIT_ERRORS))
    rejected = {i: f"HTTP {status}: {shown(message, secrets)}" for i, message in refused.items() if i not in limited}
    if status == 422 or limited:
        if not limited:
            return LimitReached(status, limit_text(text, 0), limited, rejected)
        at = limited[0]
        why = f"{shown(refused[at], secrets)}; the first, line {at + 1}: {shown(series(lines[at]), secrets)}"
        return LimitReached(status, limit_text(why, len(limited)), limited, rejected)
    first = min(rejected)
    return PartialWrite(status, f"{text}: {len(rejected)} of {count} line(s) refused, the first (line {first + 1}) "
                                f"for {shown(refused[first], secrets)}", rejected)


def series(line: str, cut: int = 120) -> str:
    """Which table and series a line writes: its measurement and its series key (measurement and tags, up to the
    first space not escaped), cut to `cut` characters."""
    end, measurement_end, i = len(line), None, 0
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        if line[i] == "," and measurement_end is None:
            measurement_end = i
        if line[i] == " ":
            end = i
            break
        i += 1
    key = line[:end]
    table = key[:measurement_end if measurement_end is not None else end]
    return f"table {table[:cut]}, series {key[:cut]}{'...' if len(key) > cut else ''}"


def limit_text(message: str, lines: int | None) -> str:
    which = "the batch" if lines is None else f"{lines} line(s)"
    return (f"InfluxDB 3 refused {which} at a limit of databases, tables or columns ({message}); they stay in the "
            "outbox and are retried: raise the limit or remove what is no longer needed")


def _refused_list(body: bytes | None) -> list | None:
    """The list of refused lines a partial write's answer has (`data`, whether or not it fits the batch); None
    without one."""
    try:
        data = json.loads(body or b"").get("data")
    except (ValueError, AttributeError, RecursionError):
        return None
    return data if isinstance(data, list) and data else None


def _listed_lines(data: list, lines: Sequence[str]) -> dict[int, str] | None:
    """The refused lines' indexes in the batch (from 0) and their errors, from the answer's list `data`; None for a
    list that does not fit: each number within the batch, its original_line the start of the batch's line there."""
    refused: dict[int, str] = {}
    for entry in data:
        number = entry.get("line_number") if isinstance(entry, dict) else None
        if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= len(lines):
            return None
        if entry.get("original_line") != original_line(lines[number - 1]):
            return None
        message = entry.get("error_message")
        refused[number - 1] = message if isinstance(message, str) else "refused"
    return refused


def original_line(line: str) -> str:
    """What a partial write lists of `line`: its first 20 bytes, cut back to a character's boundary (write.rs
    TRUNCATE_LIMIT, floor_char_boundary)."""
    return line.encode()[:20].decode(errors="ignore")


def bounded_lines(chunks: Iterable[bytes], limit: int) -> Iterator[bytes]:
    """The lines (without their newline) of a body arriving in `chunks`, as they complete; QueryFailed for a line
    longer than `limit` bytes, before more of it is held."""
    pending = b""
    for chunk in chunks:
        *complete, pending = (pending + chunk).split(b"\n")
        for line in [*complete, pending]:
            if len(line) > limit:
                raise QueryFailed(f"unreadable answer: a line longer than {limit // 1024} KiB, which no row of this "
                                  "query is")
        yield from complete
    if pending:
        yield pending


SQL_JSON = "InfluxDB 3's JSON lines"
# query_sql's Content-Type for format jsonl, the only format templog asks for (InfluxV3.query_stream), which it
# always sets (http.rs query_sql: .header(CONTENT_TYPE, format.as_content_type()); influxdb3_types/src/http.rs
# QueryFormat::as_content_type: JsonLines => "application/jsonl")
JSONL_TYPE = "application/jsonl"


def rows_of_jsonl(lines: Iterable[bytes], content_type: str | None = JSONL_TYPE,
                  secrets: Iterable[str] = ()) -> Iterator[dict]:
    """The rows of a query's JSON lines answer, one object a line, as they come: QueryFailed for anything else.

    query_sql's answer to format=jsonl has the Content-Type application/jsonl, and no rows is an empty body (http.rs
    query_sql, record_batch_stream_to_body; influxdb3_types/src/http.rs QueryFormat::as_content_type): so a body
    of another `content_type` or none (a login page, a portal's text, another service's JSON `[]`), or whose first
    line that is not blank is no JSON object, is none of its answers: QueryFailed quoting how it starts, with
    `secrets` masked. Called without the argument, the lines are taken as query_sql's; an answer without the
    header (None) is refused.
    """
    secrets, started, lines = list(secrets), False, iter(lines)
    if media_type(content_type) != JSONL_TYPE:
        raise not_the_answer(SQL_JSON, opening(lines), content_type, secrets)
    for line in lines:
        if not line.strip():
            continue
        try:
            document = json.loads(line)
        except ValueError as exc:  # also UnicodeDecodeError: not such an answer, or one cut short
            if not started and not line.lstrip().startswith(b"{"):  # a row's start: one cut short
                raise not_the_answer(SQL_JSON, line, content_type, secrets) from exc
            raise QueryFailed(f"unreadable answer: {exc}") from exc
        except RecursionError:  # arrays or objects nested deeper than the interpreter's stack: no row is
            raise QueryFailed("unreadable answer: JSON nested too deeply") from None
        if not isinstance(document, dict):
            if not started:
                raise not_the_answer(SQL_JSON, line, content_type, secrets)
            raise QueryFailed(f"unexpected answer: {shown(line.decode(errors='replace'), secrets)}")
        started = True
        yield document


def _reading(value: object) -> float | None:
    """A value of a history row as a float; None for one that is no reading: not a number, or one json.loads takes
    but no reading is and `history --format json` could not print (NaN, Infinity, 1e999, an integer beyond float)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        return finite(float(value))
    except (OverflowError, ValueError):
        return None


def _row_time(value: object, record: dict) -> int:
    """A `time` of an answer's row in nanoseconds; QueryFailed for anything else."""
    if not isinstance(value, str) or not _TIME.fullmatch(value):
        raise QueryFailed(f"unexpected row in the answer: {record}")
    try:
        return parse_rfc3339_ns(value)
    except ValueError as exc:  # a date that does not exist, such as 2026-02-30
        raise QueryFailed(f"unexpected row in the answer: {record}") from exc


def summary_row(record: dict) -> tuple[str, Summary]:
    """(sensor, Summary) of one row of the report's summaries query; QueryFailed for one of another shape."""
    sensor = record.get("sensor")
    if not isinstance(sensor, str) or any(isinstance(value, bool) for value in record.values()):
        raise QueryFailed(f"unexpected row in the answer: {record}")
    try:
        return sensor, summary_of(record, lambda value: _row_time(value, record))
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise QueryFailed(f"unexpected row in the answer: {record}") from exc


def outside_row(record: dict) -> tuple[int, float]:
    """(time_ns, celsius) of one row of the report's outside query; QueryFailed for one of another shape."""
    value = _reading(record.get(FIELD))
    if value is None:
        raise QueryFailed(f"unexpected row in the answer: {record}")
    return _row_time(record.get("time"), record), value


def history_row(record: dict, columns: tuple[str, ...]) -> Row:
    """(time_ns, sensor, *values) of one row of the history query; QueryFailed for one of another shape. A row
    without `sensor` (a point written without the tag, whose null is left out) has the sensor ""."""
    moment, sensor = record.get("time"), record.get("sensor", "")
    values = [v for c in columns if (v := _reading(record.get(c))) is not None]
    if not isinstance(sensor, str) or len(values) != len(columns):
        raise QueryFailed(f"unexpected row in the answer: {record}")
    return (_row_time(moment, record), sensor, *values)
