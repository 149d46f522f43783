"""What the api v1 and api v2 clients share: how a failure is shown (credentials masked, the wrong-api or
missing-database hint added), and /ping, both for `check` and as the sender's cheap probe."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Mapping, Sequence, cast

import urllib3

from collector import logs
from collector.config_types import InfluxConfig
from collector.influx.errors import InfluxError, NotFound, UnusableToken
from collector.influx.retention import create_missing
from collector.influx.version import ServerVersion
from collector.report import Summary

if TYPE_CHECKING:  # `run` sends with these clients: it need not load the report's days and zones
    from collector.report.days import Day


class InfluxClient:
    """A subclass sets `config` and `server`, and names its secrets and its server's "not found" answer."""

    config: InfluxConfig
    server: ServerVersion
    missing: str  # "database" or "bucket"

    def _secrets(self) -> list[str]:
        """What must never show in a message."""
        return [self._readable_credentials()]

    def _readable_credentials(self) -> str:
        """The credentials as read now, "" if they cannot be read (nothing of them to mask then)."""
        try:
            return self.config.credentials()
        except (OSError, ValueError):
            return ""

    def _credentials(self, in_header: bool = True, blanks: bool = True) -> str:
        """The credentials to send, read again (token_file: a replaced secret is picked up without restart).
        UnusableToken when they cannot be sent: `in_header` as they are in an HTTP header, which holds Latin-1 only
        (http.client encodes it so: its UnicodeEncodeError would quote a character of the token and its offset);
        without `blanks` when the server splits the header at them. The config refuses these at load; a token_file
        replaced since is found here."""
        key = "influxdb.token_file" if self.config.token_file else "influxdb.token"
        try:
            token = self.config.credentials()
        except UnicodeDecodeError:  # its text would quote a byte of the token
            raise UnusableToken(f"{key} is not UTF-8 text; points wait in the outbox") from None
        except OSError as exc:
            raise UnusableToken(f"{key} cannot be read ({exc.strerror or exc}); points wait in the outbox") from None
        if in_header and not token.isascii():
            try:
                token.encode("latin-1")
            except UnicodeEncodeError:
                raise UnusableToken(f"{key} holds a character no HTTP header can carry (beyond Latin-1): check for a "
                                    "pasted quote mark or a typo; points wait in the outbox") from None
        if not blanks and any(c.isspace() for c in token):
            raise UnusableToken(f"{key} holds a space or another blank, which InfluxDB 3 cannot read in a token; "
                                "points wait in the outbox")
        return token

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

    def summaries(self, start_ns: int, stop_ns: int, sensors: tuple[str, ...]) -> dict[str, Summary]:
        """Per sensor of `sensors` that has readings in start <= time < stop, their Summary, aggregated by the
        server in one query."""
        raise NotImplementedError

    def day_summaries(self, span: Sequence[Day], sensors: tuple[str, ...]) -> list[dict[str, Summary]]:
        """`ReportSource`'s: one `summaries` query per day, each day's aggregation done by the server."""
        return [self.summaries(day.start_ns, day.stop_ns, sensors) for day in span]

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


def summary_of(stats: Mapping[str, object], times: Callable[[object], int]) -> Summary:
    """A Summary from a sensor's statistics named as its fields (readings, mean, min, min_time, ...), the times read
    by `times`;
    ValueError (KeyError, TypeError) for one missing or of another kind: a count that is no whole number above 0,
    a value that is no finite number, a Boltzmann mean outside (0, 1] (exp of a negative number, for any reading
    above absolute zero)."""
    readings = float(cast(float, stats["readings"]))
    if not readings.is_integer() or readings < 1:
        raise ValueError(f"{stats['readings']} readings")
    value = {name: finite(float(cast(float, stats[name]))) for name in ("mean", "min", "max", "boltzmann_mean")}
    if not 0 < value["boltzmann_mean"] <= 1:
        raise ValueError(f"a Boltzmann mean of {value['boltzmann_mean']}")
    return Summary(int(readings), value["mean"], value["min"], times(stats["min_time"]), value["max"],
                   times(stats["max_time"]), value["boltzmann_mean"])

