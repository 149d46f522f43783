"""Properties of the report's arithmetic and of its command-line parsing (hypothesis): the days of any zone partition
any range, runs agree with a brute-force count, and any --tz/--since/--start/--stop gives a range or a UsageError."""

import argparse
import datetime as dt
import zoneinfo

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.cli import UsageError, time_range
from collector.report.days import days, expected_ticks, zone
from collector.report.figures import Runs

S = 1_000_000_000
HOUR = 3600 * S
ZONES = sorted(zoneinfo.available_timezones())
DST_ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "America/Sao_Paulo", "America/Santiago",
             "Asia/Tehran", "UTC"]  # Sao Paulo and Santiago changed at midnight itself
TIMES = st.integers(0, 2**31 * S)  # 1970 to 2038, where every zone's rules are tabulated


def local_date(time_ns: int, tz: dt.tzinfo) -> str:
    return dt.datetime.fromtimestamp(time_ns // S, tz).date().isoformat()


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ZONES), TIMES, st.integers(1, 40 * 24 * HOUR))
def test_days_partition_any_range_into_local_dates(name, start, length):
    tz, stop = zone(name), start + length
    found = list(days(tz, start, stop))
    assert found[0].start_ns == start and found[-1].stop_ns == stop
    assert all(a.stop_ns == b.start_ns for a, b in zip(found, found[1:], strict=False))
    assert all(day.start_ns < day.stop_ns for day in found)
    assert [d.date for d in found] == sorted({d.date for d in found})  # each date once, in order
    for day in found:  # a day's span is its own local date, from its first moment to its last
        assert local_date(day.start_ns, tz) == local_date(day.stop_ns - 1, tz) == day.date
        if day.stop_ns != stop:
            assert local_date(day.stop_ns, tz) > day.date


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(DST_ZONES), st.integers(946_684_800 * S, 2_114_380_800 * S), st.integers(1, 10 * 24 * HOUR))
def test_whole_days_last_23_24_or_25_hours(name, start, length):
    """In zones of hour-long DST changes (2000-2036): a day not cut by the range is 23, 24 or 25 hours long."""
    tz, stop = zone(name), start + length
    for day in days(tz, start, stop):
        if day.start_ns != start and day.stop_ns != stop:
            assert day.stop_ns - day.start_ns in (23 * HOUR, 24 * HOUR, 25 * HOUR), day


@settings(max_examples=300, deadline=None)
@given(TIMES, st.integers(0, 10**6 * S), st.integers(1, 3600 * S))
def test_expected_ticks_count_the_multiples_of_the_interval_in_the_span(start, length, interval):
    stop = start + length
    first = -(-start // interval) * interval
    assert expected_ticks(start, stop, interval) == len(range(first, stop, interval))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 200), max_size=80), st.integers(1, 10**11))
def test_runs_agree_with_a_brute_force_count(readings, interval):
    """A run starts at each outside tick whose previous tick is not outside; its length is how far it goes on. A
    tick may have several readings (two hosts use the sensor's name): it is one tick outside."""
    counted = Runs(interval)
    for tick in sorted(readings):
        counted.add(tick * interval)
    ticks = set(readings)
    starts = [t for t in ticks if t - 1 not in ticks]
    lengths = [next(n for n in range(1, 300) if t + n not in ticks) for t in starts]
    assert (counted.count, counted.longest) == (len(starts), max(lengths, default=0))


TEXT = st.none() | st.text(max_size=30) | st.sampled_from(
    ["1h", "0", "-1d", "7d", "36500d", "2026-03-29", "2026-03-29T08:00:00Z", "2026-03-29T08:00:00+02:00", "1600-01-01",
     "2300-01-01", "9999-12-31", "0001-01-01", "2026-02-30"])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40) | st.sampled_from(ZONES[:50] + ["", "Europe", "../../etc/passwd", "/etc/localtime"]),
       TEXT, TEXT, TEXT)
def test_any_zone_and_range_give_a_range_or_a_clear_usage_error(name, since, start, stop):
    args = argparse.Namespace(since=since, start=start, stop=stop)
    now = 1_790_000_000 * S
    try:
        tz = zone(name)
    except ValueError as exc:
        assert str(exc).startswith(f"unknown time zone {name!r}")
        tz = zone("UTC")
    try:
        begin, end = time_range(args, now, "report", tz)
    except UsageError as exc:
        assert str(exc).startswith("report: ") and "\n" not in str(exc)
    else:
        assert 0 <= begin < end <= 2**63 - 1
