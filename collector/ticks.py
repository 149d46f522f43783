"""Tick arithmetic on the wall clock, pure: ticks are whole multiples of the interval since the Unix epoch; and
how moments read as text, both ways (every module formats and parses times here)."""

from __future__ import annotations

import functools
import time
from datetime import datetime, timedelta, timezone, tzinfo

NS_PER_S = 1_000_000_000


def interval_ns(seconds: float) -> int:
    return round(seconds * NS_PER_S)


def tick_at_or_before(now_ns: int, every_ns: int) -> int:
    return now_ns // every_ns * every_ns


def next_tick_after(now_ns: int, every_ns: int) -> int:
    return (now_ns // every_ns + 1) * every_ns


def tick_to_run(due_ns: int, now_ns: int, every_ns: int) -> tuple[int, int]:
    """The tick to read for a job due at `due_ns` that fires at `now_ns`, and how many ticks it skips.

    A job that fires late reads for the latest tick that has passed, so a point's stamp is never more than one
    interval before its read; the ticks in between are skipped, never queued.
    """
    latest = tick_at_or_before(now_ns, every_ns)
    if latest <= due_ns:
        return due_ns, 0
    return latest, (latest - due_ns) // every_ns


def after_clock_jump(due_ns: int, now_ns: int, every_ns: int) -> int:
    """The due tick, moved to the first tick at or after `now_ns` if the clock went back by more than an interval."""
    if due_ns - now_ns > every_ns:
        return -(-now_ns // every_ns) * every_ns
    return due_ns


def parse_time_ns(text: str, zone: tzinfo = timezone.utc) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time or a date (`2026-11-27`, `...T08:00:00Z`); one without an
    offset (a bare date is its midnight) is read in `zone`. A wall-clock time a DST change repeats is its first
    occurrence (fold 0); one it skips is read with the offset before the change."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return int(moment.timestamp()) * NS_PER_S + moment.microsecond * 1000


def utc_text(ns: int, milliseconds: bool = False) -> str:
    """`2026-12-01T09:30:00Z` (or `...:00.123Z`): how log lines and messages show a moment; history's output
    keeps every digit (rfc3339)."""
    global _last_second
    seconds, fraction = divmod(ns, NS_PER_S)
    second, text = _last_second
    if second != seconds:  # each reading's log line shows its tick, and its own time: mostly the same second
        text = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        _last_second = seconds, text  # one tuple: a thread reading it meanwhile sees the old pair or the new
    return text + (f".{fraction // 1_000_000:03d}Z" if milliseconds else "Z")


_last_second: tuple[int | None, str] = (None, "")  # utc_text's last second and its text


def rfc3339(ns: int) -> str:
    """`2026-12-01T09:30:00.123456789Z`, every digit kept (trailing zeros dropped): history's times."""
    seconds, fraction = divmod(ns, NS_PER_S)
    return _whole_second(seconds) + (f".{fraction:09d}".rstrip("0") if fraction else "") + "Z"


@functools.lru_cache(maxsize=1)  # rows in time order share their second, often: one per sensor at each tick
def _whole_second(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat()[:19]


def parse_rfc3339_ns(text: str) -> int:
    """Nanoseconds of an RFC 3339 UTC time as InfluxDB writes it (`...T08:00:00.123456789Z`), every digit kept."""
    whole, _, fraction = text.rstrip("Z").partition(".")
    seconds = int(datetime.fromisoformat(whole).replace(tzinfo=timezone.utc).timestamp())
    return seconds * NS_PER_S + int(fraction.ljust(9, "0")[:9] or 0)


def compact_utc_text(ns: int) -> str:
    """`20261201T093000Z`: a moment in a file name."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(ns / 1e9))


def utc_datetime(ns: int) -> datetime:
    """The moment as an aware UTC datetime, to the microsecond (what a query parameter takes)."""
    return datetime.fromtimestamp(ns // NS_PER_S, timezone.utc) + timedelta(microseconds=ns % NS_PER_S // 1000)
