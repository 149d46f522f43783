"""What InfluxDB did instead of what was asked: one class per failure, which decides what the sender does with the
batch. Code tests the class; `kind` only names the failure's `write_failures_<kind>` counter and log episode."""

from __future__ import annotations

import re
import time
from typing import Iterable

from collector.errors import TemplogError
from collector.logs import masked


class InfluxError(TemplogError):
    """InfluxDB (or what answers at its URL) did not do what a write, a query, /ping or the buckets API asked."""

    kind = "other"
    status: int | None = None  # the HTTP status of an answer
    retry_after: float | None = None  # seconds, from the answer's Retry-After
    dropped: int | None = None  # for a partial write: how many points InfluxDB says it dropped


class Unreachable(InfluxError):
    """No answer: refused, reset, timed out -> retry with backoff, probing /ping meanwhile."""

    kind = "network"

    def __init__(self, url: str, exc: Exception):
        # in words: urllib3's object prefixes left out
        reason = re.sub(r"<urllib3[^>]*>: ", "", str(getattr(exc, "reason", None) or exc))
        super().__init__(f"cannot reach {url}: {reason[:200]}")
        self.url = url


class HttpError(InfluxError):
    """An answer with a status that is not a success; `text` is the server's message, credentials masked."""

    def __init__(self, status: int, text: str, retry_after: float | None = None, dropped: int | None = None):
        super().__init__(f"HTTP {status}: {text}")
        self.status, self.retry_after, self.dropped = status, retry_after, dropped


class Throttled(HttpError):
    """429 -> retry, honouring Retry-After."""

    kind = "throttled"


class ServerError(HttpError):
    """5xx -> retry, honouring Retry-After."""

    kind = "server"


class Unauthorized(HttpError):
    """401/403 -> retry slowly, one log line per episode."""

    kind = "auth"


class UnusableToken(InfluxError):
    """The token cannot be sent: influxdb.token_file, read again at each request, has since become what no request
    can carry (text beyond Latin-1 in a header, a blank InfluxDB 3 splits at, bytes that are no UTF-8, or no file)
    -> retried as a bad token until the file is fixed. The message names the key, never a piece of the token."""

    kind = "auth"


class NotFound(HttpError):
    """404: the bucket or database is missing (or the URL is not InfluxDB's API) -> retry."""

    kind = "not_found"


class TooLarge(HttpError):
    """413 -> split the batch."""

    kind = "too_large"


class Rejected(HttpError):
    """400/422: a malformed point or a type conflict -> isolate and set aside."""

    kind = "rejected"


class Expired(Rejected):
    """A partial write: InfluxDB dropped the points older than its retention, and kept the rest."""

    kind = "expired"


class PartialWrite(Rejected):
    """InfluxDB 3 stored the batch but for some lines, which it refused for good (malformed, a type conflict):
    `rejected` maps each one's index in the batch to why -> set those aside, the rest is delivered."""

    kind = "partial"

    def __init__(self, status: int, text: str, rejected: dict[int, str]):
        super().__init__(status, text)
        self.rejected = rejected


class LimitReached(HttpError):
    """422 from InfluxDB 3: adding a database, table or column would pass one of its limits. Those points are not
    stored but would be once the limit is raised or the schema trimmed -> retry, never set aside. When the answer
    lists lines, InfluxDB stored the others: `limited` are the indexes in the batch the limit refused, `rejected`
    those refused for good (as PartialWrite's); without a list (`limited` None) nothing was stored."""

    kind = "limit"

    def __init__(self, status: int, text: str, limited: list[int] | None = None,
                 rejected: dict[int, str] | None = None):
        super().__init__(status, text)
        self.limited, self.rejected = limited, rejected or {}


class RequestRefused(HttpError):
    """InfluxDB 3 refused a write as a whole (a 400 without its list of lines: with accept_partial every line it
    refuses is listed, so no point is at fault: a soft-deleted database, a request it cannot take) -> retry, one
    log line per episode naming the server's message; never set aside."""

    kind = "refused"


class OtherStatus(HttpError):
    """Any other answer -> retry."""


class NotInfluxWrite(OtherStatus):
    """A write answered with a success that is not InfluxDB's 204 (a proxy's login page, a captive portal, another
    service at the URL): nothing says the points were stored -> retry. The message is the whole sentence."""

    def __init__(self, status: int, text: str):
        super().__init__(status, text)
        self.args = (text,)


class QueryFailed(InfluxError):
    """A query statement failed (an InfluxQL or Flux error), or its answer could not be read."""

    kind = "query"


QUOTED_CHARS = 60  # of an answer that is none: enough to tell a login page from JSON or a portal's text


def opening(lines: Iterable[bytes]) -> bytes:
    """The first line of a body arriving as `lines` that is not blank: what a quote of it shows (a page may start
    with a blank line)."""
    return next((line for line in lines if line.strip()), b"")


def media_type(content_type: str | None) -> str | None:
    """A Content-Type's media type, without its parameters, in lower case (`text/csv; charset=utf-8` ->
    `text/csv`); None for an answer without one."""
    return None if content_type is None else content_type.partition(";")[0].strip().lower()


def _quoted(text: str, secrets: Iterable[str]) -> str:
    """`text` on one line, `secrets` masked whole before it is squeezed (and so before any cut), unprintable
    characters replaced."""
    squeezed = " ".join(masked(text, secrets).split())
    return "".join(c if c.isprintable() else "\N{REPLACEMENT CHARACTER}" for c in squeezed)


def not_the_answer(expected: str, body: bytes, content_type: str | None = None,
                   secrets: Iterable[str] = ()) -> QueryFailed:
    """A success whose body is not `expected`, what the query language answers: a proxy's login page, a captive
    portal, another service at the URL. Its Content-Type and how it starts (the first line of `body` that is not
    blank) say what came back; both are masked whole before they are cut, so no piece of a secret shows (a page may
    echo the token, a proxy may put it in a header's parameter)."""
    line = body.lstrip().partition(b"\n")[0]
    return QueryFailed(f"the answer is not {expected} ({_what_came(line, content_type, secrets)}): is a proxy in "
                       "front of InfluxDB, or another service at influxdb.url?")


def _what_came(line: bytes, content_type: str | None, secrets: Iterable[str]) -> str:
    """An answer that is none as a message names it: its Content-Type and its first line that is not blank, each
    masked before it is cut (`text/html, it starts with '<html>…'`)."""
    secrets = list(secrets)
    text = _quoted(line.decode(errors="replace"), secrets)
    seen = "it is empty" if not text else f"it is '{text}'" if len(text) <= QUOTED_CHARS else \
        f"it starts with '{text[:QUOTED_CHARS]}…'"
    kind = _quoted(content_type or "", secrets)[:QUOTED_CHARS]
    return f"{kind + ', ' if kind else ''}{seen}"


def not_delivered(status: int, body: bytes, content_type: str | None = None,
                  secrets: Iterable[str] = ()) -> NotInfluxWrite:
    """The failure for a write answered with a success that is not InfluxDB's 204: its status, Content-Type and
    opening named as not_the_answer names a query's, each masked before it is cut."""
    return NotInfluxWrite(status, f"the answer to a write is not InfluxDB's 204 (HTTP {status}, "
                                  f"{_what_came(opening(body.splitlines()), content_type, secrets)}): is a proxy in "
                                  "front of InfluxDB, or another service at influxdb.url?")


class RetentionUnsupported(InfluxError):
    """The server has no buckets/retention API or the credentials may not use it: warn once, keep writing."""

    def __init__(self, doing: str, failure: InfluxError):
        super().__init__(f"{doing}: {failure}")


def _class_of_status(status: int) -> type[HttpError]:
    if status == 429:
        return Throttled
    if status >= 500:
        return ServerError
    if status in (401, 403):
        return Unauthorized
    if status == 404:
        return NotFound
    if status == 413:
        return TooLarge
    if status in (400, 422):
        return Rejected
    return OtherStatus


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils  # only for this rare form: the email package is a dozen modules every command would load

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def shown(message: str, secrets: Iterable[str] = ()) -> str:
    """A server's message as a failure quotes it: on one line, `secrets` masked before it is cut, so no piece of
    one shows."""
    return " ".join(masked(message, secrets).split())[:300] or "no message"


def http_error(status: int, message: str | bytes, retry_after_header: str | None,
               secrets: Iterable[str] = ()) -> HttpError:
    """The failure for an HTTP answer; `secrets` are masked before the message is cut, so no piece of one shows."""
    if isinstance(message, bytes):  # influxdb-client hands over a body that is not JSON as bytes
        message = message.decode(errors="replace")
    text = shown(str(message), secrets)
    failure = _class_of_status(status)
    if failure is Rejected and "beyond retention" in text:
        failure = Expired
    dropped = re.search(r"dropped=(\d+)", text)
    return failure(status, text, parse_retry_after(retry_after_header), int(dropped.group(1)) if dropped else None)

