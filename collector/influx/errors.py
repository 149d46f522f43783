"""How a failed write is classified, which decides what the sender does with the batch."""

from __future__ import annotations

import re
import time
from typing import Iterable

NETWORK = "network"  # no answer: refused, reset, timed out -> retry with backoff
THROTTLED = "throttled"  # 429 -> retry, honouring Retry-After
SERVER = "server"  # 5xx -> retry, honouring Retry-After
AUTH = "auth"  # 401/403 -> retry slowly, one log line per episode
NOT_FOUND = "not_found"  # 404: bucket or database missing -> retry
TOO_LARGE = "too_large"  # 413 -> split the batch
REJECTED = "rejected"  # 400/422: malformed point or type conflict -> isolate and set aside
OTHER = "other"  # any other answer -> retry
EXPIRED = "expired"  # partial write: InfluxDB dropped points older than its retention, and kept the rest
QUERY = "query"  # a query statement failed (InfluxQL error, Flux error)


class WriteError(Exception):
    def __init__(self, kind: str, message: str, status: int | None = None, retry_after: float | None = None,
                 dropped: int | None = None):
        super().__init__(message)
        self.kind, self.status, self.retry_after = kind, status, retry_after
        self.dropped = dropped  # for a partial write: how many points InfluxDB says it dropped


class RetentionUnsupported(Exception):
    """The server has no buckets/retention API or the credentials may not use it: warn once, keep writing."""


def kind_of_status(status: int) -> str:
    if status == 429:
        return THROTTLED
    if status >= 500:
        return SERVER
    if status in (401, 403):
        return AUTH
    if status == 404:
        return NOT_FOUND
    if status == 413:
        return TOO_LARGE
    if status in (400, 422):
        return REJECTED
    return OTHER


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


def network_error(url: str, exc: Exception) -> WriteError:
    """No answer from InfluxDB (refused, reset, timed out), in words: urllib3's object prefixes left out."""
    reason = re.sub(r"<urllib3[^>]*>: ", "", str(getattr(exc, "reason", None) or exc))
    return WriteError(NETWORK, f"cannot reach {url}: {reason[:200]}")


def write_error(status: int, message: str | bytes, retry_after_header: str | None,
                secrets: Iterable[str] = ()) -> WriteError:
    """The failure for an HTTP answer; `secrets` are masked before the message is cut, so no piece of one shows."""
    if isinstance(message, bytes):  # influxdb-client hands over a body that is not JSON as bytes
        message = message.decode(errors="replace")
    text = " ".join(masked(str(message), secrets).split())[:300] or "no message"
    kind = kind_of_status(status)
    if kind == REJECTED and "beyond retention" in text:
        kind = EXPIRED
    dropped = re.search(r"dropped=(\d+)", text)
    return WriteError(kind, f"HTTP {status}: {text}", status, parse_retry_after(retry_after_header),
                      int(dropped.group(1)) if dropped else None)


def reworded(error: WriteError, message: str) -> WriteError:
    """The same failure with another message (a hint added, a secret masked)."""
    return WriteError(error.kind, message, error.status, error.retry_after, error.dropped)


def masked(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret replaced by ***: a server or proxy may echo the Authorization header back."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
