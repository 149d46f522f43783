"""What the api v1 and api v2 clients share: how a failure is shown (credentials masked, the wrong-api or
missing-database hint added), and /ping, both for `check` and as the sender's cheap probe."""

from __future__ import annotations

import math

import urllib3

from collector import logs
from collector.config_types import InfluxConfig
from collector.influx.errors import InfluxError, NotFound
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

    def _failure(self, error: InfluxError) -> InfluxError:
        """`error` as the user sees it, reworded in place (its cause stays) and returned: credentials masked, and what
        to fix when the server says it. The credentials are masked in the logs too from now on: under -v a traceback
        shows the causes' own text."""
        secrets = self._secrets()
        logs.hide(*secrets)
        message = logs.masked(str(error), secrets)
        hint = self.server.hint(error)
        if hint is None and isinstance(error, NotFound) and self._says_missing(message):
            hint = f"{self.missing} {self.config.bucket!r} does not exist: {create_missing(self.config.retention)}"
        error.args = (f"{message}; {hint}" if hint else message,)
        return error

    def ping(self) -> str:
        """The server's version from /ping; InfluxError if it does not answer with a success."""
        try:
            return self.server.ping()
        except InfluxError as exc:
            self._failure(exc)
            raise

    def probe(self, timeout: float) -> bool:
        """Whether InfluxDB answers /ping within `timeout` s (a status under 500: a gateway's 502/504 is no answer)."""
        try:
            return self.server.http.request("GET", f"{self.config.url}/ping", timeout=timeout).status < 500
        except (urllib3.exceptions.HTTPError, OSError):
            return False


def finite(value: float) -> float:
    """A reading's value from an answer; ValueError for NaN or an infinity (JSON's NaN, Infinity, 1e999 or Flux's
    "NaN", "+Inf"): no reading is one, and `history --format json` could not print it as JSON."""
    if not math.isfinite(value):
        raise ValueError(f"{value} is not a finite number")
    return value
