"""Which InfluxDB answers at the URL, from /ping, so a failure caused by the wrong `influxdb.api` says how to fix it.

Both lines answer GET /ping with 204, without authentication, and an X-Influxdb-Version header: 1.x its plain
version (Debian's influxd: `1.6.7~rc0`), 2.x its git tag (`v2.7.12`; set by buildHeader in
influxdata/influxdb@v2.7.12:http/handler.go on every response, the tag from GNUmakefile's `git describe`).
InfluxDB 3 answers 200, with the header holding its package version (`3.10.1`) and a JSON body, but only with a
token unless it runs with `--disable-authz ping` (influxdata/influxdb@v3.10.1:influxdb3_server/src/http.rs ping,
route_request; influxdb3_process/src/lib.rs INFLUXDB3_VERSION): so every client sends its credentials to /ping.
"""

from __future__ import annotations

from typing import Callable

import urllib3

from collector.influx.errors import (
    InfluxError,
    NotFound,
    OtherStatus,
    QueryFailed,
    Unauthorized,
    Unreachable,
    http_error,
)

# The failures a server of the other line gives: 1.x answers /api/v2/... with 404 "404 page not found"; 2.x answers
# the 1.x API with 401 "unauthorized access", 404 "no dbrp mapping found" or "not implemented: CREATE DATABASE".
SUSPECT = (Unauthorized, NotFound, OtherStatus, QueryFailed)


def wrong_api_hint(api: str, version: str) -> str | None:
    """What to set when the server's version is not the line `api` speaks to; None when it is (or is unknown)."""
    major = version.strip().lstrip("vV").split(".")[0]
    if major == api[1:] or major not in ("1", "2", "3"):
        return None
    if major == "1":
        return f"this is InfluxDB 1.x (version {version}): set influxdb.api: v1"
    if major == "2":
        return f"this is InfluxDB 2.x (version {version}): set influxdb.api: v2, with influxdb.org and an API token"
    return f"this is InfluxDB 3 (version {version}): set influxdb.api: v3, with its token"


class ServerVersion:
    """The server's version, asked once: at `ping`, or on the first failure that could mean the wrong api."""

    def __init__(self, url: str, api: str, http: urllib3.PoolManager, headers: Callable[[], dict] = dict):
        self.url, self.api, self.http, self.headers = url, api, http, headers
        self.version: str | None = None

    def ping(self) -> str:
        """GET /ping: the version ("unknown" without the header); InfluxError without a 2xx (InfluxDB 3 answers 200)."""
        try:
            response = self.http.request("GET", f"{self.url}/ping", headers=self.headers())
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise Unreachable(self.url, exc) from exc
        if not 200 <= response.status < 300:  # the reason only: a body could echo the credentials
            raise http_error(response.status, response.reason or "", None)
        self.version = response.headers.get("X-Influxdb-Version", "unknown")
        return self.version

    def hint(self, error: InfluxError) -> str | None:
        """The wrong-api hint for this failure, if /ping says so; a server that cannot be pinged gives none (asked
        again next time)."""
        if not isinstance(error, SUSPECT):
            return None
        version = self.version
        if version is None:
            try:
                version = self.ping()
            except InfluxError:
                return None
        return wrong_api_hint(self.api, version)
