"""InfluxDB 2.x / Cloud / 3.x through influxdb-client: synchronous writes (its batching mode drops points after
its retries, so delivery and retries stay ours), the buckets API for retention, Flux for history."""

from __future__ import annotations

import codecs
import csv
from typing import Iterable, Iterator

import urllib3
from influxdb_client import BucketRetentionRules, InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from collector.config import InfluxConfig
from collector.durations import describe_retention
from collector.influx.errors import (NETWORK, NOT_FOUND, OTHER, QUERY, REJECTED, RetentionUnsupported, WriteError,
                                     network_error, write_error)


class InfluxV2:
    def __init__(self, config: InfluxConfig):
        self.config = config
        self._client: InfluxDBClient | None = None
        self._write_api = None
        self._token: str | None = None

    def client(self) -> InfluxDBClient:
        """The client for the current token; rebuilt when token_file changed, so a fixed token needs no restart."""
        token = self.config.credentials()
        if self._client is None or token != self._token:
            self.close()
            self._client = InfluxDBClient(url=self.config.url, token=token, org=self.config.org,
                                          timeout=int(self.config.timeout * 1000), retries=False)
            self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
            self._token = token
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _call(self, what, *args, **kwargs):
        try:
            return what(*args, **kwargs)
        except ApiException as exc:
            headers = exc.headers or {}
            raise write_error(exc.status or 0, exc.message or exc.reason or "", headers.get("Retry-After")) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise network_error(self.config.url, exc) from None

    def write(self, lines: list[str]) -> None:
        self.client()
        self._call(self._write_api.write, bucket=self.config.bucket, org=self.config.org,
                   record="\n".join(lines), write_precision=WritePrecision.NS)

    def query(self, flux: str, params: dict) -> list:
        """Run Flux with `params` bound as options (influxdb-client's extern), so values are never spliced into text."""
        return self._call(self.client().query_api().query, flux, org=self.config.org, params=params)

    def query_stream(self, flux: str, params: dict) -> Iterator[dict[str, str]]:
        """Run Flux like `query`, yielding each row as {column: text} while the annotated CSV arrives.

        Memory stays flat whatever the answer's size: influxdb-client's query_raw hands back the urllib3
        response unread (influxdb_client@1.50.0 client/query_api.py: post_query with _preload_content=False),
        read here line by line, as its query_csv does. Raises WriteError on failure.
        """
        response = self._call(self.client().query_api().query_raw, flux, org=self.config.org, params=params)
        try:
            yield from rows_of_annotated_csv(csv.reader(codecs.iterdecode(response, "utf-8")))
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise network_error(self.config.url, exc) from None
        except (UnicodeDecodeError, csv.Error) as exc:
            raise WriteError(QUERY, f"unreadable answer: {exc}") from None
        finally:  # closed, not drained, if the caller stops early: the rest of a long answer is not wanted
            response.close()
            response.release_conn()

    def ping(self) -> None:
        if not self._call(self.client().ping):
            raise WriteError(NETWORK, f"cannot reach {self.config.url}")

    def _bucket(self):
        try:
            found = self._call(self.client().buckets_api().find_buckets, name=self.config.bucket, org=self.config.org)
        except WriteError as exc:
            # 403: a token that may write but not manage buckets (least privilege); the others: servers without
            # the API (InfluxDB 3, other line-protocol servers). 401 is a bad token: retried like any write.
            if exc.status == 403 or exc.kind in (NOT_FOUND, REJECTED, OTHER):
                raise RetentionUnsupported(f"cannot use the buckets API at {self.config.url}: {exc}") from None
            raise
        return next((b for b in found.buckets or [] if b.name == self.config.bucket), None)

    def ensure_retention(self) -> str:
        """Create the bucket with the configured retention, or update a bucket whose rule differs."""
        wanted = self.config.retention
        bucket = self._bucket()
        try:
            if bucket is None:
                rules = [BucketRetentionRules(type="expire", every_seconds=int(wanted))] if wanted else []
                self._call(self.client().buckets_api().create_bucket, bucket_name=self.config.bucket,
                           retention_rules=rules, org=self.config.org)
                return f"created bucket {self.config.bucket} with retention {describe_retention(wanted)}"
            current = _bucket_retention(bucket)
            if current == wanted:
                return f"bucket {self.config.bucket}: retention already {describe_retention(wanted)}"
            bucket.retention_rules = [BucketRetentionRules(type="expire", every_seconds=int(wanted))]
            self._call(self.client().buckets_api().update_bucket, bucket)
            return f"bucket {self.config.bucket}: retention changed from {describe_retention(current)} to {describe_retention(wanted)}"
        except WriteError as exc:
            if exc.status == 403:
                raise RetentionUnsupported(f"not allowed to manage bucket {self.config.bucket}: {exc}") from None
            raise

    def problems(self) -> list[str]:
        try:
            self.ping()
            bucket = self._bucket()
        except RetentionUnsupported as exc:
            return [str(exc)]
        except WriteError as exc:
            return [f"InfluxDB at {self.config.url}: {exc}"]
        if bucket is None:
            return [f"bucket {self.config.bucket!r} not found in org {self.config.org!r}: it does not exist (templog run "
                    "creates it) or this token may not list buckets (a write-only token still writes)"]
        current = _bucket_retention(bucket)
        if current != self.config.retention:
            return [f"bucket {self.config.bucket!r}: retention is {describe_retention(current)}, config says "
                    f"{describe_retention(self.config.retention)} (templog run applies it)"]
        return []


def rows_of_annotated_csv(records: Iterable[list[str]]) -> Iterator[dict[str, str]]:
    """The data rows of a Flux answer in annotated CSV, as {column: text}, as they come.

    Each table starts with annotation rows (#datatype, #group, #default) and a header row; an error met after
    rows were sent arrives as a table with the columns `error, reference` (influxdata/flux@v0.195.2 result.go
    DelimitedMultiResultEncoder.Encode, csv/result.go ResultEncoder.EncodeError): raised as WriteError.
    """
    header: list[str] | None = None
    for record in records:
        if not record:
            continue  # the blank line that ends a result
        if record[0].startswith("#"):
            header = None  # annotations: a new table, whose header row comes next
        elif header is None:
            header = record
        elif header[1:3] == ["error", "reference"]:
            raise WriteError(QUERY, (record[1:2] or [""])[0] or "the query failed")
        else:
            yield dict(zip(header, record))


def _bucket_retention(bucket) -> float:
    return float(next((r.every_seconds for r in bucket.retention_rules or [] if r.type == "expire"), 0) or 0)

