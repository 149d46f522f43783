"""InfluxDB 1.x HTTP API (/ping, /write, /query) over urllib3, as shipped by Debian and Raspberry Pi OS."""

from __future__ import annotations

import base64
import itertools
import json
import logging
import re
from typing import Callable, Generator, Iterable, Iterator, Literal
from urllib.parse import urlencode

import urllib3

from collector.config_types import InfluxConfig
from collector.durations import describe_retention, format_duration
from collector.influx.client import InfluxClient, finite, summary_of
from collector.influx.errors import (
    HttpError,
    InfluxError,
    QueryFailed,
    RetentionUnsupported,
    Unreachable,
    http_error,
    not_the_answer,
    shown,
)
from collector.influx.retention import change, deletion, differs, shortens, when_missing
from collector.influx.version import ServerVersion, wrong_api_hint
from collector.lineprotocol import FIELD
from collector.logs import log_traceback
from collector.query import HistoryQuery, Row, influxql
from collector.query.influxql import quote_ident
from collector.report import Summary

log = logging.getLogger("templog.influx")

CHUNK_ROWS = 5000  # rows per document in a chunked answer: what one parsed piece of a long query holds in memory


def parse_go_duration(text: str) -> float:
    """Seconds in InfluxDB's SHOW RETENTION POLICIES durations such as `720h0m0s`; `0s` means forever."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text))


def shard_duration(retention_s: float) -> str:
    """InfluxDB's recommended shard group duration for a retention period."""
    if retention_s and retention_s < 2 * 86400:
        return "1h"
    if retention_s and retention_s <= 180 * 86400:
        return "1d"
    return "7d"


class InfluxV1(InfluxClient):
    api: Literal["v1"] = "v1"  # tells the clients apart, for the type checker too
    missing = "database"

    def __init__(self, config: InfluxConfig):
        self.config = config
        self.http = urllib3.PoolManager(timeout=urllib3.Timeout(total=config.timeout), retries=False)
        self.server = ServerVersion(config.url, "v1", self.http, self._headers)  # 1.8 may have ping-auth-enabled

    def close(self) -> None:
        self.http.clear()

    def _headers(self) -> dict[str, str]:
        token = self._credentials(in_header=False)  # sent as UTF-8, base64-encoded: any text travels
        if not token:
            return {}
        return {"Authorization": "Basic " + base64.b64encode(token.encode()).decode()}

    def _request(self, method: str, path: str, params: dict, body: bytes | None = None,
                 content_type: str = "text/plain"):
        headers = self._headers()
        if body is not None:
            headers["Content-Type"] = content_type
        try:
            return self.http.request(method, f"{self.config.url}{path}?{urlencode(params)}", body=body, headers=headers)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._failure(Unreachable(self.config.url, exc)) from exc

    def _secrets(self) -> list[str]:
        """What must never show: the credentials, the password alone, and their Basic auth form."""
        token = self._readable_credentials()
        return [token, token.partition(":")[2], base64.b64encode(token.encode()).decode()]

    def _says_missing(self, message: str) -> bool:
        return "database not found" in message

    def _refusal(self, response) -> InfluxError:
        """The failure for a response that is not a success."""
        return self._failure(http_error(response.status, _error_text(response), response.headers.get("Retry-After"),
                                         self._secrets()))

    def write(self, lines: list[str]) -> None:
        response = self._request("POST", "/write", {"db": self.config.bucket, "precision": "ns"},
                                 "\n".join(lines).encode())
        if response.status != 204:
            raise self._refusal(response)

    def query(self, q: str, params: dict | None = None) -> list[dict]:
        """Run InfluxQL; the statements' results (each may have `series`). Raises InfluxError on failure."""
        form = {"q": q, "db": self.config.bucket, "epoch": "ns"}
        if params:
            form["params"] = json.dumps(params)
        response = self._request("POST", "/query", {}, urlencode(form).encode(), "application/x-www-form-urlencoded")
        if response.status != 200:
            raise self._refusal(response)
        try:
            document = json.loads(response.data)
        except (ValueError, RecursionError):  # also UnicodeDecodeError
            document = None
        # influxd answers a result per statement (services/httpd/handler.go serveQuery): anything else is no answer
        if not is_influxql_answer(document):
            raise self._failure(not_the_answer(INFLUXQL_JSON, response.data, response.headers.get("Content-Type"),
                                               self._secrets()))
        for result in document["results"]:
            if "error" in result:
                raise self._failure(QueryFailed(str(result["error"])))
        return document["results"]

    def query_stream(self, q: str) -> Generator[dict, None, None]:
        """Run one InfluxQL SELECT, yielding its series as they arrive: {"columns", "values", "tags"?, ...}.

        A series longer than CHUNK_ROWS comes as several, in order. Memory stays flat whatever the answer's size:
        with chunked=true influxd 1.x writes one JSON document per chunk of at most chunk_size rows, each ended
        by a newline, and flushes it (influxdata/influxdb@v1.6.6 services/httpd/handler.go serveQuery: one
        WriteResponse and Flush per result when chunked; response_writer.go jsonFormatter.WriteResponse:
        json.Marshal, which escapes newlines inside strings, then "\n"). urllib3 hands the body over line by line
        as it comes (urllib3@2.8.0 urllib3/response.py HTTPResponse.__iter__). Raises InfluxError on failure.
        """
        form = {"q": q, "db": self.config.bucket, "epoch": "ns", "chunked": "true", "chunk_size": str(CHUNK_ROWS)}
        headers = {**self._headers(), "Content-Type": "application/x-www-form-urlencoded"}
        try:
            response = self.http.request("POST", f"{self.config.url}/query", body=urlencode(form).encode(),
                                         headers=headers, preload_content=False)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._failure(Unreachable(self.config.url, exc)) from exc
        try:
            try:
                if response.status != 200:
                    raise http_error(response.status, _error_text(response), response.headers.get("Retry-After"),
                                     self._secrets())
                yield from series_of_chunks(response, response.headers.get("Content-Type"), self._secrets())
            finally:  # closed, not drained, if the caller stops early: the rest of a long answer is not wanted;
                # and before a failure's hint pings: the pool holds one connection, and would discard one
                response.close()
                response.release_conn()
        except (QueryFailed, HttpError) as exc:  # credentials masked, a hint where there is one
            self._failure(exc)
            raise
        except urllib3.exceptions.ProtocolError as exc:  # the chunked body ended before its last chunk
            raise self._failure(QueryFailed(f"the answer was cut short: {exc}")) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._failure(Unreachable(self.config.url, exc)) from exc

    def describe(self) -> str:
        """The server and database a query goes to, for the lines that report on it (the config has already taken
        any credentials out of the URL)."""
        return f"InfluxDB at {self.config.url} (api v1, database {self.config.bucket})"

    def history(self, query: HistoryQuery) -> Generator[Row, None, None]:
        """The readings `query` asks for, streamed in time order, then sensor."""
        return sensors_in_order(_history_rows(self.query_stream(influxql.history(query)), query.columns, self._failure))

    def summaries(self, start_ns: int, stop_ns: int, sensors: tuple[str, ...]) -> dict[str, Summary]:
        """Per sensor of `sensors` with readings in start <= time < stop, their Summary: one request of four
        statements (influxql.summaries), whose series are told apart by their columns."""
        if not sensors:
            return {}
        found: dict[str, dict] = {}
        # a few series (four a sensor), read whole: the query's connection is back in the pool before a failure's
        # hint pings
        for series in list(self.query_stream(influxql.summaries(start_ns, stop_ns, sensors))):
            sensor, values = (series.get("tags") or {}).get("sensor"), series.get("values", [])
            if not isinstance(sensor, str) or len(values) != 1:
                raise self._failure(QueryFailed(f"unexpected series in the answer: {str(series)[:200]}"))
            row = dict(zip(series["columns"], values[0], strict=True))
            stats = found.setdefault(sensor, {})
            for selector in ("min", "max"):  # a selector alone gives the reading's time
                if selector in row:
                    stats[f"{selector}_time"] = row["time"]
            stats.update(row)
        try:
            return {sensor: summary_of(stats, _integer_time) for sensor, stats in found.items() if sensor in sensors}
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise self._failure(QueryFailed(f"unexpected summary in the answer: {exc}")) from exc

    def outside(self, start_ns: int, stop_ns: int, sensor: str, low: float | None,
                high: float | None) -> Generator[tuple[int, float], None, None]:
        """The sensor's readings below `low` or above `high` in start <= time < stop, streamed in time order."""
        if low is None and high is None:
            return
        stream = self.query_stream(influxql.outside(start_ns, stop_ns, sensor, low, high))
        try:
            for series in stream:
                for values in series.get("values", []):
                    try:
                        row = dict(zip(series["columns"], values, strict=True))
                        reading = (_integer_time(row["time"]), finite(float(row[FIELD])))
                    except (KeyError, TypeError, ValueError, OverflowError) as exc:
                        stream.close()  # the connection back to the pool before the failure's hint pings
                        raise self._failure(QueryFailed(f"unexpected row in the answer: {values}")) from exc
                    yield reading
        finally:
            stream.close()

    def ensure_retention(self) -> str:
        """With a retention set: create the database if missing, or give its default retention policy that duration.
        Without one, nothing: the database keeps whatever retention it has."""
        db, wanted = self.config.bucket, self.config.retention
        if wanted is None:
            return "not managed (influxdb.retention is not set): the database's own retention policy applies"
        try:
            if not self._databases_include(db):
                self.query(f"CREATE DATABASE {quote_ident(db)}"
                           + (f" WITH DURATION {format_duration(wanted)} SHARD DURATION {shard_duration(wanted)}"
                              if wanted else ""))
                return f"created database {db} with retention {describe_retention(wanted)}"
            name, current = self._default_policy(db)
            if current == wanted:
                return f"database {db}: retention policy {name} already {describe_retention(wanted)}"
            self.query(f"ALTER RETENTION POLICY {quote_ident(name)} ON {quote_ident(db)} "
                       f"DURATION {format_duration(wanted) if wanted else 'INF'} "
                       f"SHARD DURATION {shard_duration(wanted)}")
        except HttpError as exc:
            # 403 is influxd's "not authorized to execute statement ..., requires admin privilege" (or READ on the
            # database): these credentials may write but never manage. A 401 is a wrong password: retried as a write.
            if exc.status == 403:
                raise RetentionUnsupported(f"not allowed to manage database {db}", exc) from exc
            raise
        done = f"database {db}: retention policy {name} changed {change(current, wanted)}"
        if shortens(current, wanted):
            log.warning("%s: %s", done, deletion(wanted, f"of every measurement in database {db}"))
        return done

    def _databases_include(self, db: str) -> bool:
        series = self.query("SHOW DATABASES")[0].get("series", [])
        return any(row[0] == db for s in series for row in s.get("values", []))

    def _default_policy(self, db: str) -> tuple[str, float]:
        series = self.query(f"SHOW RETENTION POLICIES ON {quote_ident(db)}")[0].get("series", [])
        for s in series:
            columns = s["columns"]
            for row in s.get("values", []):
                policy = dict(zip(columns, row, strict=False))  # a short row from a server just lacks those keys
                if policy.get("default"):
                    return policy["name"], parse_go_duration(policy["duration"])
        raise QueryFailed(f"database {db} has no default retention policy")

    def problems(self) -> list[str]:
        """Everything `templog check` should report about this server, empty when all is well."""
        db, wanted = self.config.bucket, self.config.retention
        try:
            hint = wrong_api_hint("v1", self.ping())
            if hint:
                return [f"InfluxDB at {self.config.url}: {hint}"]
            if not self._databases_include(db):
                return [f"database {db!r} does not exist on {self.config.url}: {when_missing(wanted)}"]
            if wanted is None:
                return []
            name, current = self._default_policy(db)
        except InfluxError as exc:
            log_traceback(log, exc, "the problem below")
            return [f"InfluxDB at {self.config.url}: {exc}"]
        if current == wanted:
            return []
        return [differs(f"database {db!r}: retention policy {name}", current, wanted,
                        f"of every measurement in database {db}")]


INFLUXQL_JSON = "InfluxDB 1.x's JSON"


def is_influxql_answer(document: object) -> bool:
    """Whether a JSON document is one of influxd's answers: `results`, one or more, each with its integer
    `statement_id`, which influxd always writes (influxdata/influxdb@v1.6.6:query/result.go Result.MarshalJSON:
    `json:"statement_id"`, no omitempty; v2.7.12:influxql/query/result.go alike). Another service's JSON with a
    `results` list (a REST API's page: {"count": 0, ..., "results": []}) has none."""
    results = document.get("results") if isinstance(document, dict) else None
    return isinstance(results, list) and bool(results) and all(
        isinstance(result, dict) and type(result.get("statement_id")) is int for result in results)


def series_of_chunks(lines: Iterable[bytes], content_type: str | None = None,
                     secrets: Iterable[str] = ()) -> Iterator[dict]:
    """The series of a chunked /query answer, one JSON document a line, as they come. Raises QueryFailed for an
    error influxd reports, also one after some series were sent, and for an answer of another shape.

    influxd ends each document with a newline and writes at least one result for a SELECT, with no series too
    (influxdata/influxdb@v1.6.6 services/httpd/response_writer.go jsonFormatter.WriteResponse;
    coordinator/statement_executor.go executeSelectStatement "Always emit at least one result"; InfluxDB 2's 1.x
    API alike: v2.7.12 influxql/query/response_writer.go, v1/coordinator/statement_executor.go), and marks a
    result "partial" while more of its statement follow (v1.6.6 query/emitter.go Emit). So an empty body, or one
    whose first line is no such document (is_influxql_answer: a login page, a portal, JSON of another service), is
    none of its answers: QueryFailed quoting how it starts (its `content_type`, `secrets` masked); a last line that
    ends inside a document, or a last result still partial, is an answer cut short.
    """
    secrets, started, partial = list(secrets), False, False
    for line in lines:
        if not line.strip():
            continue
        try:
            document = json.loads(line)
        except ValueError as exc:  # also UnicodeDecodeError: not an InfluxDB 1.x answer, or one cut short
            if not started and not line.lstrip().startswith(b'{"results"'):
                raise not_the_answer(INFLUXQL_JSON, line, content_type, secrets) from exc
            if not line.endswith(b"\n"):
                raise QueryFailed(f"the answer was cut short: its last line ends inside a document ({exc})") from exc
            raise QueryFailed(f"unreadable answer: {exc}") from exc
        except RecursionError:  # arrays or objects nested deeper than the interpreter's stack
            raise QueryFailed("unreadable answer: JSON nested too deeply") from None
        if isinstance(document, dict) and "error" in document:
            raise QueryFailed(str(document["error"]))
        if not is_influxql_answer(document):
            if not started:
                raise not_the_answer(INFLUXQL_JSON, line, content_type, secrets)
            raise QueryFailed(f"unexpected answer: {shown(line.decode(errors='replace'), secrets)}")
        started = True
        for result in document["results"]:
            if "error" in result:
                raise QueryFailed(str(result["error"]))
            series = result.get("series", [])
            if not isinstance(series, list) or not all(map(_well_formed, series)):
                raise QueryFailed(f"unexpected answer: {shown(line.decode(errors='replace'), secrets)}")
            partial = result.get("partial") is True
            yield from series
    if not started:
        raise not_the_answer(INFLUXQL_JSON, b"", content_type, secrets)
    if partial:
        raise QueryFailed("the answer was cut short: its last result says more of the statement follows")


def _history_rows(series_stream: Generator[dict, None, None], columns: tuple[str, ...],
                  failure: Callable[[InfluxError], InfluxError]) -> Iterator[Row]:
    """The rows of the series; an answer of another shape is a QueryFailed made by `failure` (the client's: a row
    quoted in it may echo the credentials), once the stream is closed: the query's connection goes back to the pool
    before the failure's hint pings."""
    try:
        yield from _rows_of_series(series_stream, columns)
    except QueryFailed as exc:
        series_stream.close()
        failure(exc)
        raise
    finally:
        series_stream.close()


def _rows_of_series(series_stream: Iterable[dict], columns: tuple[str, ...]) -> Iterator[Row]:
    for series in series_stream:
        names = series["columns"]
        try:
            at_time, at_sensor, *at_values = (names.index(c) for c in ("time", "sensor", *columns))
        except ValueError as exc:
            raise QueryFailed(f"unexpected columns in the answer: {names}") from exc
        for values in series.get("values", []):
            try:
                row = (int(values[at_time]), str(values[at_sensor] or ""),
                       *(finite(float(values[i])) for i in at_values))
            except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: an integer beyond float
                raise QueryFailed(f"unexpected row in the answer: {values}") from exc
            yield row


def sensors_in_order(rows: Iterable[Row]) -> Generator[Row, None, None]:
    """Rows in time order, each run of equal times sorted by sensor: influxd orders those by series key, where
    other tags (host) come before `sensor`. Holds one run: at most a row per series."""
    for _, run in itertools.groupby(rows, key=lambda row: row[0]):
        yield from sorted(run, key=lambda row: row[1])


def _integer_time(value: object) -> int:
    """A time of an answer asked for with epoch=ns: an integer."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{value!r} is no time in nanoseconds")
    return value


def _well_formed(series: object) -> bool:
    """A series as influxd writes it: column names, and rows of as many values."""
    if not isinstance(series, dict) or not isinstance(series.get("columns"), list):
        return False
    values = series.get("values", [])
    return isinstance(values, list) and all(isinstance(v, list) and len(v) == len(series["columns"]) for v in values)


def _error_text(response) -> str:
    """influxd's {"error": ...}, or InfluxDB 2's {"code": ..., "message": ...} from its 1.x compatibility API."""
    try:
        body = json.loads(response.data)
        return body.get("error") or body.get("message") or response.reason
    except (ValueError, AttributeError):
        return (response.data or b"").decode(errors="replace") or response.reason or ""

