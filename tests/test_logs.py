"""The spec's log rules: UTC times with Z; a repeating condition logged at its start, then at most every
10 minutes with a count, and at its end."""

import logging

from collector.logs import Repeating, UtcFormatter


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_log_lines_carry_utc_time_with_z():
    record = logging.LogRecord("templog", logging.WARNING, __file__, 1, "hello", None, None)
    record.created, record.msecs = 1764581400.5, 500.0  # 2025-12-01T09:30:00.5Z
    line = UtcFormatter("%(asctime)s %(levelname)s %(message)s").format(record)
    assert line == "2025-12-01T09:30:00.500Z WARNING hello"


def test_a_repeating_condition_is_logged_at_start_every_ten_minutes_with_a_count_and_at_its_end(caplog):
    clock = Clock()
    condition = Repeating(logging.getLogger("templog.test"), clock=clock)
    with caplog.at_level(logging.INFO, logger="templog.test"):
        for _ in range(60):  # 10 minutes of 10-second ticks, failing
            condition.occurred("s1: read failed: %s", "EIO")
            clock.now += 10
        condition.occurred("s1: read failed: %s", "EIO")  # the 61st, 600 s after the first
        condition.ended("s1: reads again")
        condition.ended("s1: reads again")  # once only
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["s1: read failed: EIO",
                     "s1: read failed: EIO (60 time(s) since the last report)",
                     "s1: reads again (after 61 occurrence(s))"]
    assert [r.levelname for r in caplog.records] == ["WARNING", "WARNING", "WARNING"]  # -q shows the end too


def test_a_new_episode_is_logged_at_once(caplog):
    clock = Clock()
    condition = Repeating(logging.getLogger("templog.test.episode"), clock=clock)
    with caplog.at_level(logging.INFO, logger="templog.test.episode"):
        condition.occurred("down")
        condition.ended("up")
        clock.now += 600  # back only after ten minutes: not flapping, a new episode
        condition.occurred("down")
    assert [r.getMessage() for r in caplog.records] == ["down", "up (after 1 occurrence(s))", "down"]
    assert condition.total == 1


def test_a_flapping_condition_is_one_episode_not_a_line_per_tick(caplog):
    """A loose connector: the sensor fails, reads, fails... every other tick. Start and first end are logged, then
    nothing per tick: the periodic report says it comes and goes, and its end is logged once it stays away."""
    clock = Clock()
    condition = Repeating(logging.getLogger("templog.test.flap"), clock=clock)
    with caplog.at_level(logging.INFO, logger="templog.test.flap"):
        for _ in range(30):  # 10 minutes of 10-second ticks, failing every other one
            condition.occurred("s1: read failed")
            clock.now += 10
            condition.ended("s1: reads again")
            condition.flush()
            clock.now += 10
        condition.occurred("s1: read failed")  # 600 s after the first line: the report is due
        condition.ended("s1: reads again")
        for _ in range(60):  # it stays away for the next ten minutes
            clock.now += 10
            condition.flush()
    assert [r.getMessage() for r in caplog.records] == [
        "s1: read failed",
        "s1: reads again (after 1 occurrence(s))",
        "s1: reads again (after 31 occurrence(s), coming and going)",  # 10 minutes after the line before
    ]
