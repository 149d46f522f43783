"""What the api v1 and api v2 clients share: how a failure is shown (credentials masked, the wrong-api or
missing-database hint added), and /ping, both for `check` and as the sender's cheap probe."""

from __future__ import annotations

import urllib3

from collector.config_types import InfluxConfig
from collector.influx.errors import NOT_FOUND, WriteError, masked, reworded
from collector.influx.retention import create_missing
from collector.influx.version import ServerVersion


class InfluxClient:
    """A subclass sets `config` and `server`, and names its secrets and its server's "not found" answer."""

    config: InfluxConfig
    server: ServerVersion
    missing: str  # "database" or "bucket"

    def _secrets(self) -> list[str]:
        """What must never show in a message."""
        return [self.config.credentials()]

    def _says_missing(self, message: str) -> bool:
        """Whether a 404's message says the database or bucket does not exist."""
        raise NotImplementedError

    def _failure(self, error: WriteError) -> WriteError:
        """`error` as the user sees it: credentials masked, and what to fix when the server says it."""
        message = masked(str(error), self._secrets())
        hint = self.server.hint(error)
        if hint is None and error.kind == NOT_FOUND and self._says_missing(message):
            hint = f"{self.missing} {self.config.bucket!r} does not exist: {create_missing(self.config.retention)}"
        return reworded(error, f"{message}; {hint}" if hint else message)

    def ping(self) -> str:
        """The server's version from /ping; WriteError if it does not answer with a success."""
        try:
            return self.server.ping()
        except WriteError as exc:
            raise self._failure(exc) from None

    def probe(self, timeout: float) -> bool:
        """Whether InfluxDB answers /ping within `timeout` s (a status under 500: a gateway's 502/504 is no answer)."""
        try:
            return self.server.http.request("GET", f"{self.config.url}/ping", timeout=timeout).status < 500
        except (urllib3.exceptions.HTTPError, OSError):
            return False
