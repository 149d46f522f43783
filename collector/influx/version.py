"""Which InfluxDB answers at the URL, from /ping, so a failure caused by the wrong `influxdb.api` says how to fix it.

Both lines answer GET /ping with 204, without authentication, and an X-Influxdb-Version header: 1.x its plain
version (Debian's influxd: `1.6.7~rc0`), 2.x its git tag (`v2.7.12`; set by buildHeader in
influxdata/influxdb@v2.7.12:http/handler.go on every response, the tag from GNUmakefile's `git describe`).
InfluxDB 3 answers 200, with the header holding its package version (`3.10.1`) and a JSON body, but only with a
token unless it runs with `--disable-authz ping` (influxdata/influxdb@v3.10.1:influxdb3_server/src/http.rs ping,
route_request; influxdb3_process/src/lib.rs INFLUXDB3_VERSION): so every client sends its credentials to /ping.
A /ping that answers 401 without that header is InfluxDB 3 with a token it does not take: 1.x and 2.x answer /ping
without authentication (influxdata/influxdb@v1.6.6:services/httpd/handler.go: the ping route's handler is not
wrapped in authenticate; v2.7.12:http/legacy/influx1x_authentication_handler.go: "The ping endpoint does not need
authorization") and put the header on every answer (v1.6.6 Handler.ServeHTTP; v2.7.12 buildHeader), where InfluxDB 3
sets it in ping's answer alone (v3.10.1 http.rs ping). 1.8's ping-auth-enabled answers 401 with the header.
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
        self.asks_token = False  # /ping answered 401 without a version: InfluxDB 3 refusing the token

    def ping(self) -> str:
        """GET /ping: the version ("unknown" without the header); InfluxError without a 2xx (InfluxDB 3 answers 200)."""
        try:
            response = self.http.request("GET", f"{self.url}/ping", headers=self.headers())
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise Unreachable(self.url, exc) from exc
        version = response.headers.get("X-Influxdb-Version")
        if not 200 <= response.status < 300:  # the reason only: a body could echo the credentials
            self.version, self.asks_token = version, response.status == 401 and version is None
            raise http_error(response.status, response.reason or "", None)
        self.version, self.asks_token = version or "unknown", False
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
                if self.asks_token and self.api != "v3":
                    return ("/ping asks for a token, as InfluxDB 3 does (1.x and 2.x answer it without one): this "
                            "looks like InfluxDB 3: set influxdb.api: v3, with its token")
                return self.version and wrong_api_hint(self.api, self.version)
        return wrong_api_hint(self.api, version)
