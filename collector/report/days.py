"""The days of a time zone that a range touches, and the ticks a sensor's interval gives in a span: pure.

A day runs from its local midnight to the next, so a day with a DST change is 23 or 25 hours long; where a zone
skips midnight itself, the day starts at the first moment of its date. Every day is clipped to the range.
(Day lengths in general: 24 h less the change of the zone's UTC offset between the two midnights.)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterator
from zoneinfo import ZoneInfo

from collector.ticks import NS_PER_S


@dataclass(frozen=True)
class Day:
    """One local date of the report, its span clipped to the range: start <= time < stop."""

    date: str  # YYYY-MM-DD
    start_ns: int
    stop_ns: int


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name` (e.g. Europe/Berlin, UTC); ValueError saying so when this machine has no such zone."""
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError) as exc:  # not found; a malformed key; a folder such as "Europe"
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as Europe/Berlin or UTC)") from exc


def days(tz: dt.tzinfo, start_ns: int, stop_ns: int) -> Iterator[Day]:
    """Each local date in `tz` that [start_ns, stop_ns) touches, in order, clipped to it: contiguous, covering it."""
    date = dt.datetime.fromtimestamp(start_ns // NS_PER_S, tz).date()
    begin = start_ns
    while begin < stop_ns:
        date += dt.timedelta(days=1)
        end = min(midnight_ns(date, tz), stop_ns)
        if end > begin:  # a date a zone skipped whole (Pacific/Apia's 2011-12-30) has no moment: no row
            yield Day((date - dt.timedelta(days=1)).isoformat(), begin, end)
            begin = end


def midnight_ns(date: dt.date, tz: dt.tzinfo) -> int:
    """The first moment of `date` in `tz`. A midnight a DST change skips (fold 0 reads it with the offset before
    the change) lands on the change itself: the first moment the date has."""
    return int(dt.datetime.combine(date, dt.time(), tzinfo=tz).timestamp()) * NS_PER_S


def expected_ticks(start_ns: int, stop_ns: int, interval_ns: int) -> int:
    """Ticks (whole multiples of the interval since the epoch) in start <= time < stop."""
    return max(0, -(-stop_ns // interval_ns) + (-start_ns // interval_ns))
