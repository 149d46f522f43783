"""InfluxDB 2.x / Cloud / 3.x through influxdb-client: synchronous writes (its batching mode drops points after
its retries, so delivery and retries stay ours), the buckets API for retention, Flux for history."""

from __future__ import annotations

import csv
import json
import logging
from types import SimpleNamespace
from typing import Callable, Generator, Iterable, Iterator, Literal, Mapping

import urllib3
from influxdb_client import Bucket, BucketRetentionRules, BucketsService, InfluxDBClient, WritePrecision, WriteService
from influxdb_client.rest import ApiException

from collector.config_types import InfluxConfig
from collector.durations import describe_retention
from collector.influx.client import InfluxClient, finite, summary_of
from collector.influx.errors import (
    HttpError,
    InfluxError,
    NotFound,
    OtherStatus,
    QueryFailed,
    Rejected,
    RetentionUnsupported,
    Unreachable,
    http_error,
    media_type,
    not_delivered,
    not_the_answer,
    opening,
)
from collector.influx.retention import change, deletion, differs, shortens, when_missing
from collector.influx.version import ServerVersion, wrong_api_hint
from collector.logs import log_traceback
from collector.query import AGGREGATES, HistoryQuery, Row, flux
from collector.report import Summary
from collector.ticks import NS_PER_S, parse_rfc3339_ns, tick_at_or_before

log = logging.getLogger("templog.influx")


class InfluxV2(InfluxClient):
    api: Literal["v2"] = "v2"  # tells the clients apart, for the type checker too
    missing = "bucket"

    def __init__(self, config: InfluxConfig):
        self.config = config
        self._client: InfluxDBClient | None = None
        self._token: str | None = None
        # with the token: InfluxDB 3 answers /ping only so (version.py), which tells a v3 user to set api v3
        self.server = ServerVersion(config.url, "v2", urllib3.PoolManager(
            timeout=urllib3.Timeout(total=config.timeout), retries=False), self._ping_headers)

    def _ping_headers(self) -> dict[str, str]:
        token = self._credentials()
        return {"Authorization": f"Token {token}"} if token else {}

    def client(self) -> InfluxDBClient:
        """The client for the current token; rebuilt when token_file changed, so a fixed token needs no restart."""
        token = self._credentials()  # influxdb-client sends it in a header as it is
        if self._client is None or token != self._token:
            self.close()
            self._client = InfluxDBClient(url=self.config.url, token=token, org=self.config.org,
                                          timeout=int(self.config.timeout * 1000), retries=False)
            self._token = token
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self.server.http.clear()

    def _call(self, what, *args, **kwargs):
        try:
            return what(*args, **kwargs)
        except ApiException as exc:
            if isinstance(exc.body, bytes):
                # as text, as a preloaded answer's is (influxdb_client@1.50.0 _sync/rest.py request decodes it; an
                # unread one, query_raw's and the buckets lookup's, stays bytes): under -v the traceback quotes it,
                # and the bytes' repr would escape a JSON-escaped token a second time, past logs.hide's forms
                exc.body = exc.body.decode(errors="replace")
            headers: Mapping[str, str] = exc.headers or {}
            raise self._failure(http_error(exc.status or 0, exc.message or exc.reason or "",
                                           headers.get("Retry-After"), self._secrets())) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._failure(Unreachable(self.config.url, exc)) from exc

    def _says_missing(self, message: str) -> bool:
        # InfluxDB 2.7 says `bucket "x" not found` (influxdata/influxdb@v2.7.12:tenant/error_bucket.go)
        return "bucket" in message and "not found" in message

    def write(self, lines: list[str]) -> None:
        """POST /api/v2/write; delivered only on InfluxDB 2's answer, 204 (influxdata/influxdb@v2.7.12:
        http/write_handler.go handleWrite: sw.WriteHeader(http.StatusNoContent)). influxdb-client's write_api takes
        any 2xx as delivered, a portal's 200 too, so the request is the one its synchronous write makes
        (influxdb_client@1.50.0 client/write_api.py write, _post_write: the text UTF-8 encoded, content_type
        text/plain; charset=utf-8; the client's api_client adds gzip and the headers), sent where the status shows
        (service/write_service.py post_write_with_http_info, _return_http_data_only=False)."""
        status, body, content_type = self._call(
            unread, WriteService(self.client().api_client).post_write_with_http_info, org=self.config.org,
            bucket=self.config.bucket, body="\n".join(lines).encode(), precision=WritePrecision.NS,
            content_type="text/plain; charset=utf-8")
        if status != 204:
            raise self._failure(not_delivered(status, body, content_type, self._secrets()))

    def query(self, flux: str, params: dict) -> list:
        """Run Flux with `params` bound as options (influxdb-client's extern), so values are never spliced into text."""
        return self._call(self.client().query_api().query, flux, org=self.config.org, params=params)

    def query_stream(self, flux: str, params: dict) -> Generator[dict[str, str], None, None]:
        """Run Flux like `query`, yielding each row as {column: text} while the annotated CSV arrives.

        Memory stays flat whatever the answer's size: influxdb-client's query_raw hands back the urllib3
        response unread (influxdb_client@1.50.0 client/query_api.py: post_query with _preload_content=False),
        read here line by line, as its query_csv does. Raises InfluxError on failure.
        """
        response = self._call(self.client().query_api().query_raw, flux, org=self.config.org, params=params)
        try:
            yield from rows_of_flux_answer(response, response.headers.get("Content-Type"), self._secrets())
        except QueryFailed as exc:  # not an answer, or an error table after some rows: masked and hinted
            self._failure(exc)
            raise
        except urllib3.exceptions.ProtocolError as exc:  # the chunked body ended before its last chunk
            raise self._failure(QueryFailed(f"the answer was cut short: {exc}")) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._failure(Unreachable(self.config.url, exc)) from exc
        finally:  # closed, not drained, if the caller stops early: the rest of a long answer is not wanted
            response.close()
            response.release_conn()

    def _bucket(self) -> Bucket | None:
        """The configured bucket as the buckets API lists it, None if it lists none of that name. QueryFailed if the
        answer is not that API's (a proxy's login page, a portal, another service), as a query's would be."""

        try:  # unread: find_buckets would deserialize any body, HTML too, into an empty list
            _, body, content_type = self._call(
                unread, BucketsService(self.client().api_client).get_buckets_with_http_info, name=self.config.bucket,
                org=self.config.org)
        except HttpError as exc:
            # 403: a token that may write but not manage buckets (least privilege); the others: servers without
            # the API (InfluxDB 3, other line-protocol servers). 401 is a bad token: retried like any write.
            if exc.status == 403 or isinstance(exc, (NotFound, Rejected, OtherStatus)):
                raise RetentionUnsupported(f"cannot use the buckets API at {self.config.url}", exc) from exc
            raise
        try:
            found = buckets_of_answer(body, content_type, self.client(), self._secrets())
        except QueryFailed as exc:  # masked and hinted as a query's
            self._failure(exc)
            raise
        return next((b for b in found if b.name == self.config.bucket), None)

    def describe(self) -> str:
        """The server and bucket a query goes to, for the lines that report on it (the config has already taken any
        credentials out of the URL)."""
        config = self.config
        return f"InfluxDB at {config.url} (api {config.api}, org {config.org}, bucket {config.bucket})"

    def history(self, query: HistoryQuery) -> Generator[Row, None, None]:
        """The readings `query` asks for, streamed in time order, then sensor (the server sorts them)."""
        columns = ["_value"] if not query.every_s else list(AGGREGATES)
        every_ns = round(query.every_s * NS_PER_S)
        for record in self.query_stream(flux.history(query), flux.params(query, self.config.bucket)):
            try:
                moment = parse_rfc3339_ns(record["_time"])
                row = (moment, record["sensor"], *(finite(float(record[c])) for c in columns))
            except (KeyError, ValueError) as exc:
                # masked like every other failure: a row quoted here may echo the token
                raise self._failure(QueryFailed(f"unexpected row in the answer: {record}")) from exc
            if every_ns:  # Flux clips the first window's start to the range start; put it back on the grid
                row = (tick_at_or_before(moment, every_ns), *row[1:])
            yield row

    def summaries(self, start_ns: int, stop_ns: int, sensors: tuple[str, ...]) -> dict[str, Summary]:
        """Per sensor of `sensors` with readings in start <= time < stop, their Summary: one Flux query
        (flux.summaries), a row per sensor and statistic, of every sensor of the span (dropped here if not asked)."""
        if not sensors:
            return {}
        found: dict[str, dict] = {}
        records = list(self.query_stream(flux.summaries(), flux.report_params(self.config.bucket, start_ns, stop_ns)))
        try:
            for record in records:
                stats = found.setdefault(record["sensor"], {})
                stats[record["_field"]] = record["_value"]
                if record["_field"] in ("min", "max"):
                    stats[f"{record['_field']}_time"] = record["_time"]
            return {sensor: summary_of(stats, _time_of) for sensor, stats in found.items() if sensor in sensors}
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            # masked like every other failure: a row quoted here may echo the token
            raise self._failure(QueryFailed(f"unexpected summary in the answer: {exc}")) from exc

    def outside(self, start_ns: int, stop_ns: int, sensor: str, low: float | None,
                high: float | None) -> Generator[tuple[int, float], None, None]:
        """The sensor's readings below `low` or above `high` in start <= time < stop, streamed in time order (the
        server sorts them)."""
        if low is None and high is None:
            return
        bounds = {"sensor": sensor, "low": None if low is None else float(low),
                  "high": None if high is None else float(high)}  # Flux compares a float with a float only
        records = self.query_stream(flux.outside(low is not None, high is not None),
                                    flux.report_params(self.config.bucket, start_ns, stop_ns, **bounds))
        try:
            for record in records:
                try:
                    reading = (parse_rfc3339_ns(record["_time"]), finite(float(record["_value"])))
                except (KeyError, ValueError) as exc:
                    records.close()  # the connection back to the pool before the failure's hint pings
                    raise self._failure(QueryFailed(f"unexpected row in the answer: {record}")) from exc
                yield reading
        finally:
            records.close()

    def ensure_retention(self) -> str:
        """With a retention set: create the bucket with it, or update a bucket whose rule differs. Without one,
        nothing: the bucket keeps whatever retention it has."""
        name, wanted = self.config.bucket, self.config.retention
        if wanted is None:
            return "not managed (influxdb.retention is not set): the bucket's own retention applies"
        bucket = self._bucket()
        try:
            if bucket is None:
                rules = [BucketRetentionRules(type="expire", every_seconds=int(wanted))] if wanted else []
                self._call(self.client().buckets_api().create_bucket, bucket_name=name,
                           retention_rules=rules, org=self.config.org)
                return f"created bucket {name} with retention {describe_retention(wanted)}"
            current = _bucket_retention(bucket)
            if current == wanted:
                return f"bucket {name}: retention already {describe_retention(wanted)}"
            bucket.retention_rules = [BucketRetentionRules(type="expire", every_seconds=int(wanted))]
            self._call(self.client().buckets_api().update_bucket, bucket)
        except HttpError as exc:
            if exc.status == 403:
                raise RetentionUnsupported(f"not allowed to manage bucket {name}", exc) from exc
            raise
        done = f"bucket {name}: retention changed {change(current, wanted)}"
        if shortens(current, wanted):
            log.warning("%s: %s", done, deletion(wanted, f"in bucket {name}"))
        return done

    def problems(self) -> list[str]:
        name, wanted = self.config.bucket, self.config.retention
        try:
            hint = wrong_api_hint("v2", self.ping())
            if hint:
                return [f"InfluxDB at {self.config.url}: {hint}"]
            bucket = self._bucket()
        except RetentionUnsupported as exc:
            # without a retention to apply, the buckets API is not needed: the first write tells whether it exists
            if wanted is None:
                return []
            log_traceback(log, exc, "the problem below")
            return [str(exc)]
        except InfluxError as exc:
            log_traceback(log, exc, "the problem below")
            return [f"InfluxDB at {self.config.url}: {exc}"]
        if bucket is None:
            return [f"bucket {name!r} not found in org {self.config.org!r}: "
                    f"it does not exist ({when_missing(wanted)}) or "
                    "this token may not list buckets (a write-only token still writes)"]
        current = _bucket_retention(bucket)
        if wanted is None or current == wanted:
            return []
        return [differs(f"bucket {name!r}: retention", current, wanted, f"in bucket {name}")]


def unread(call: Callable[..., tuple], **kwargs) -> tuple[int, bytes, str | None]:
    """A generated service's `..._with_http_info` call made so that its answer is seen as it came: status, body and
    Content-Type (influxdb_client@1.50.0 _sync/api_client.py, _sync/rest.py RESTClientObject.request:
    _preload_content=False hands back the urllib3 response, a status outside 2xx still an ApiException). The body
    is read, a 204's empty one too: http.client reuses the connection only once a response is read."""
    response, status, headers = call(**kwargs, _preload_content=False, _return_http_data_only=False)
    try:
        return status, response.data, headers.get("Content-Type")
    finally:
        response.release_conn()


BUCKETS_JSON = "InfluxDB 2's buckets API JSON"


def buckets_of_answer(body: bytes, content_type: str | None, client: InfluxDBClient,
                      secrets: Iterable[str] = ()) -> list[Bucket]:
    """The buckets listed by an answer of GET /api/v2/buckets, made into influxdb-client's models by `client`.

    InfluxDB 2 answers it with JSON and the Content-Type application/json; charset=utf-8
    (influxdata/influxdb@v2.7.12:kit/transport/http/api.go API.Respond, which tenant/http_server_bucket.go
    handleGetBuckets calls): an object whose "buckets" is a list, an empty one when no bucket matches
    (newBucketsResponse makes it, so it is never null), each bucket with its name and retentionRules (the bucket
    struct's fields, not omitempty). A body of another Content-Type, or not such an object (a login page, a portal,
    another service's JSON), is none of its answers: QueryFailed quoting how it starts, `secrets` masked. Without
    this, influxdb-client reads any body as a list without buckets (influxdb_client@1.50.0 _sync/api_client.py
    ApiClient.deserialize: a body that is not JSON is kept as text, whose model has no buckets), which said "not
    found".
    """
    if media_type(content_type) == "application/json":
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            document = None
        listed = document.get("buckets") if isinstance(document, dict) else None
        if isinstance(listed, list) and all(isinstance(bucket, dict) for bucket in listed):
            try:  # the models refuse a bucket without its name or rules (influxdb_client@1.50.0 domain/bucket.py)
                return client.api_client.deserialize(SimpleNamespace(data=body), "Buckets").buckets
            except (ValueError, TypeError, AttributeError, KeyError, RecursionError):
                pass
    raise not_the_answer(BUCKETS_JSON, body, content_type, secrets)


FLUX_CSV = "Flux's annotated CSV"
# The first line of a Flux answer with a table: the dialect's first annotation row, naming each column's type
DATATYPE_ROW = b"#datatype,"


def rows_of_flux_answer(lines: Iterable[bytes], content_type: str | None = None,
                        secrets: Iterable[str] = ()) -> Iterator[dict[str, str]]:
    """The data rows of a Flux query's answer, its body arriving as lines of bytes (as urllib3 iterates a response:
    each with its newline, the last without one if the body does not end so), as {column: text}, as they come.

    InfluxDB 2 answers in annotated CSV with the dialect influxdb-client asks for (influxdb_client@1.50.0
    client/_base.py _BaseQueryApi.default_dialect: annotations datatype, group, default), with the Content-Type
    text/csv (influxdata/flux@v0.196.1 csv/dialect.go Dialect.SetHeaders): each table starts with its #datatype
    row, every line ends with CRLF, and every result ends with a blank line, one without tables too, which is that
    line alone (csv/result.go ResultEncoder.Encode, writeSchema, NewMultiResultEncoder; result.go
    DelimitedMultiResultEncoder.Encode). So a body of another `content_type`, an empty one, or one whose first line
    that is not blank is no #datatype row (a login page, a portal, JSON, a text page of `#` lines) is none of its
    answers: QueryFailed quoting how it starts, with `secrets` masked; a line without its end is an answer cut
    short, refused before it is read as a row.
    """
    secrets, lines = list(secrets), iter(lines)
    if media_type(content_type) not in (None, "text/csv"):
        raise not_the_answer(FLUX_CSV, opening(lines), content_type, secrets)

    def text() -> Iterator[str]:
        started = answered = False
        for line in lines:
            answered = True
            if not started and line.strip():
                if not line.startswith(DATATYPE_ROW):
                    raise not_the_answer(FLUX_CSV, line, content_type, secrets)
                started = True
            if not line.endswith(b"\n"):
                raise QueryFailed("the answer was cut short: its last line has no end")
            yield line.decode()
        if not answered:
            raise not_the_answer(FLUX_CSV, b"", content_type, secrets)

    try:
        yield from rows_of_annotated_csv(csv.reader(text()))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise QueryFailed(f"unreadable answer: {exc}") from exc


def rows_of_annotated_csv(records: Iterable[list[str]]) -> Iterator[dict[str, str]]:
    """The data rows of a Flux answer in annotated CSV, as {column: text}, as they come.

    Each table starts with annotation rows (#datatype, #group, #default) and a header row (`,result,table,...`);
    a blank line ends a table whose next one has other columns, and each result; an error met after rows were
    sent arrives as a table with the columns `error, reference` (influxdata/flux@v0.196.1 result.go
    DelimitedMultiResultEncoder.Encode, csv/result.go ResultEncoder.Encode, writeSchema, EncodeError): raised as
    QueryFailed. So does what no such answer has: a header or row out of place, a row with another number of
    cells than its header, and a last table without the blank line that ends its result (the answer was cut
    short: its rows are not all there).
    """
    header: list[str] | None = None
    annotated = False  # annotation rows since the last blank line: the table's header row comes next
    last: list[str] | None = None
    for record in records:
        last = record
        if not record:  # the blank line that ends a table or a result
            header, annotated = None, False
        elif record[0].startswith("#"):
            header, annotated = None, True
        elif header is None:
            if not annotated or record[:3] not in (["", "result", "table"], ["", "error", "reference"]):
                raise QueryFailed(f"unexpected line in the answer, where a table's header belongs: {record}")
            header = record
        elif header[1:3] == ["error", "reference"]:
            raise QueryFailed((record[1:2] or [""])[0] or "the query failed")
        elif len(record) != len(header):
            raise QueryFailed(f"unexpected row in the answer: {record}")
        else:
            yield dict(zip(header, record, strict=True))
    if last:
        raise QueryFailed("the answer was cut short: its last table has no end")


def _time_of(text: object) -> int:
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is no time")
    return parse_rfc3339_ns(text)


def _bucket_retention(bucket) -> float:
    return float(next((r.every_seconds for r in bucket.retention_rules or [] if r.type == "expire"), 0) or 0)

