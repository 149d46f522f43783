"""The collector loop in-process: what reaches the outbox, what is refused, and that one sensor cannot block another."""

import logging
import math
import re
import sqlite3
import threading
import time

from cli import wait_until
from collector import runner as collector_runner
from collector.config import load_config
from collector.lanes import FAST_READS_TO_RETURN, LANE_BUDGET_S
from collector.outbox import Outbox
from collector.runner import SHUTDOWN_S, Collector, StopRequest
from collector.sensors import Sample, SensorError, create_sensor
from collector.stats import Stats
from collector.tick_commit import wait_for

S = 1_000_000_000
CONFIG = """
collector: {tags: {site: lab}, time_floor: 1970-01-01}
sensors:
  - {name: good, type: simulated, tags: {room: "north wing"}}
  - {name: other, type: simulated}
"""


class Scripted:
    def __init__(self, *values):
        self.values = list(values)

    def read(self) -> Sample:
        value = self.values.pop(0)
        if isinstance(value, Exception):
            raise value
        return Sample(value)


class Hanging:
    def __init__(self):
        self.release = threading.Event()
        self.started = threading.Event()

    def read(self) -> Sample:
        self.started.set()
        self.release.wait(10)
        return Sample(20.0)


def make(write_config, tmp_path, sensors):
    config = load_config(write_config(CONFIG), environ={})
    outbox = Outbox(str(tmp_path / "o.sqlite"))
    return Collector(config, sensors, outbox, sender=None, clock=lambda: 0, stats=Stats()), outbox


def tick(collector, slot_index, tick_ns):
    slot = collector.slots[slot_index]
    collector.on_tick([slot], tick_ns, 0)
    return slot


def finish(slot):
    assert slot.idle.wait(5)


def test_accepted_readings_are_committed_with_the_tick_as_timestamp_and_all_tags(write_config, tmp_path):
    collector, outbox = make(write_config, tmp_path, {"good": Scripted(21.25), "other": Scripted(19.0)})
    finish(tick(collector, 0, 1_764_000_010 * S))
    [point] = outbox.oldest(10)
    host = collector.config.host
    assert point.line == (f"temperature,host={host},room=north\\ wing,sensor=good,site=lab "
                          "celsius=21.25 1764000010000000000")


def test_a_reading_whose_point_cannot_be_made_fails_alone_not_the_lane_pass_it_came_in(write_config, tmp_path,
                                                                                      monkeypatch, caplog):
    """On 66d7cfa the points of a pass were made outside the per-reading guard: one that raised (a dew point at
    Magnus's pole did) dropped every reading of the pass, the other sensors' too."""
    collector, outbox = make(write_config, tmp_path, {"good": Scripted(21.25), "other": Scripted(19.0)})
    made = collector_runner.reading_point

    def fails_for_other(series, reading):
        if reading.sensor == "other":
            raise ZeroDivisionError("float division by zero")
        return made(series, reading)

    monkeypatch.setattr(collector_runner, "reading_point", fails_for_other)
    with caplog.at_level(logging.INFO):
        collector.on_tick(collector.slots, 10 * S, 0)
        for slot in collector.slots:
            finish(slot)
    assert [sensor_tag(p.line) for p in outbox.oldest(10)] == ["good"]
    assert "other: checking the reading failed: ZeroDivisionError" in caplog.text


def test_garbage_is_refused_logged_and_counted(write_config, tmp_path, caplog):
    values = [math.nan, SensorError("w1_slave CRC check failed"), 85.0e3, 22.0]
    collector, outbox = make(write_config, tmp_path, {"good": Scripted(*values), "other": Scripted()})
    with caplog.at_level(logging.INFO):
        for i in range(4):
            finish(tick(collector, 0, (i + 1) * 10 * S))
    assert [p.line.split()[-1] for p in outbox.oldest(10)] == [str(40 * S)]
    assert collector.stats.get("readings_refused") == 2 and collector.stats.get("reads_failed") == 1
    assert "good: reading refused: not a number (NaN)" in caplog.text
    assert "good: read failed: w1_slave CRC check failed" in caplog.text  # another kind of trouble: its own line
    # the same kind again within 10 minutes: counted, not logged
    assert "good: reading refused: 85000 °C" not in caplog.text
    assert caplog.text.count("good: reads again") == 2  # each kind of trouble ends


def test_a_sensor_failing_tick_after_tick_logs_once_then_every_ten_minutes_with_a_count(write_config, tmp_path,
                                                                                         caplog):
    config = load_config(write_config(CONFIG), environ={})
    now = [0.0]
    failures = [SensorError(f"no such file (tick {i})") for i in range(130)]
    collector = Collector(config, {"good": Scripted(*failures, 21.0), "other": Scripted()}, Outbox(":memory:"), None,
                          clock=lambda: 0, log_clock=lambda: now[0])
    with caplog.at_level(logging.INFO):
        for i in range(131):  # a 10 s interval: 21 minutes and 40 s of failures, then a reading
            finish(tick(collector, 0, (i + 1) * 10 * S))
            now[0] += 10
    messages = [r.getMessage() for r in caplog.records]
    lines = [m for m in messages if m.startswith("good:") and "°C at" not in m]
    assert lines == ["good: read failed: no such file (tick 0)",
                     "good: read failed: no such file (tick 60) (60 time(s) since the last report)",
                     "good: read failed: no such file (tick 120) (60 time(s) since the last report)",
                     "good: reads again (after 130 occurrence(s))"]
    assert collector.stats.get("reads_failed") == 130


class FakeClock:
    """The collector's read clock (seconds), moved by the test: the lane's budget is judged on it."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Recording:
    """A fast sensor that records the read clock and the thread at each of its reads."""

    def __init__(self, clock, value=18.0, took_s=0.0):
        self.clock, self.value, self.took_s = clock, value, took_s
        self.read_at, self.threads = [], []

    def read(self) -> Sample:
        self.read_at.append(self.clock())
        self.threads.append(threading.current_thread().name)
        self.clock.now += self.took_s
        return Sample(self.value)


def test_a_hanging_sensor_skips_its_own_ticks_and_never_delays_another(write_config, tmp_path, caplog):
    """Both on the shared lane, the hanging one first: the other's read starts at most the lane's budget after
    the hanging read began, and the other reads every tick while the hanging one skips its own."""
    clock, hanging = FakeClock(), Hanging()
    other = Recording(clock)
    config = load_config(write_config(CONFIG), environ={})
    outbox = Outbox(str(tmp_path / "o.sqlite"))
    collector = Collector(config, {"good": hanging, "other": other}, outbox, None, clock=lambda: 0, read_clock=clock)
    good, fast = collector.slots
    collector.on_tick(collector.slots, 10 * S, 0)
    assert hanging.started.wait(5)
    clock.now += LANE_BUDGET_S / 2
    assert collector.lane.check() == LANE_BUDGET_S  # within the budget: still on the lane; look again then
    clock.now = LANE_BUDGET_S + 0.001
    collector.lane.check()  # what the scheduling loop does while the lane reads: the hanging sensor moves off
    wait_until(lambda: other.read_at, what="the other sensor read")
    clock.now = wait_for(10.0)  # the tick's commit waits for the hanging read until its deadline, then goes
    collector.ticks.recheck()
    finish(fast)
    assert other.read_at == [LANE_BUDGET_S + 0.001] and good.own_thread and not fast.own_thread
    with caplog.at_level(logging.WARNING):
        for t in range(20, 60, 10):  # still hanging: its ticks are skipped, not queued; the other reads each one
            collector.on_tick(collector.slots, t * S, 0)
            finish(fast)
    assert [p.line.split()[-1] for p in outbox.oldest(10)] == [str(t * S) for t in range(10, 60, 10)]
    assert "good: tick 1970-01-01T00:00:20.000Z skipped, the previous read is still running" in caplog.text
    assert collector.stats.get("ticks_skipped", "good") == 4 and collector.stats.get("ticks_skipped", "other") == 0
    assert set(other.threads) == {"read lane"}
    hanging.release.set()
    finish(good)
    assert outbox.depth == 6  # released within its timeout, the slow read still counts, stamped with its own tick
    assert sorted(p.line.split()[-1] for p in outbox.oldest(10) if "sensor=good" in p.line) == [str(10 * S)]


def test_a_slow_sensor_moves_to_its_own_thread_and_back_after_fast_reads(write_config, tmp_path):
    clock = FakeClock()
    slow_once = Recording(clock, 20.0, took_s=LANE_BUDGET_S * 2)  # its first read overruns the budget
    other = Recording(clock)
    config = load_config(write_config(CONFIG), environ={})
    collector = Collector(config, {"good": slow_once, "other": other}, Outbox(":memory:"), None, clock=lambda: 0,
                          read_clock=clock)
    good, fast = collector.slots
    collector.on_tick(collector.slots, 10 * S, 0)
    finish(good), finish(fast)
    assert good.own_thread and not fast.own_thread
    slow_once.took_s = 0.0
    for i in range(FAST_READS_TO_RETURN + 2):
        collector.on_tick(collector.slots, (20 + 10 * i) * S, 0)
        finish(good), finish(fast)
    lane, own = "read lane", "read good"
    assert slow_once.threads == [lane] + [own] * FAST_READS_TO_RETURN + [lane] * 2
    assert set(other.threads) == {lane}
    assert collector.stats.get("reads_ok", "good") == FAST_READS_TO_RETURN + 3


def test_commands_read_on_their_own_thread_from_the_start(write_config, tmp_path):
    config = load_config(write_config("collector: {time_floor: 1970-01-01}\n"
                                      "sensors:\n  - {name: cmd, type: command, command: 'echo 20'}\n"), environ={})
    outbox = Outbox(str(tmp_path / "o.sqlite"))
    collector = Collector(config, {"cmd": create_sensor(config.sensors[0])}, outbox, None, clock=lambda: 0)
    for t in range(FAST_READS_TO_RETURN + 1):  # however fast: a process start is no read for the shared lane
        finish(tick(collector, 0, (t + 1) * S))
    assert collector.slots[0].own_thread and outbox.depth == FAST_READS_TO_RETURN + 1


def test_a_tick_still_queued_on_the_lane_at_shutdown_is_not_read_and_what_was_read_is_committed(write_config,
                                                                                               tmp_path):
    clock, hanging = FakeClock(), Hanging()
    before, behind = Recording(clock, 17.0), Recording(clock)
    config = load_config(write_config(CONFIG + "  - {name: third, type: simulated}\n"), environ={})
    outbox = Outbox(str(tmp_path / "o.sqlite"))
    collector = Collector(config, {"good": before, "other": hanging, "third": behind}, outbox, None,
                          clock=lambda: 0, read_clock=clock)
    collector.on_tick(collector.slots, 10 * S, 0)
    assert hanging.started.wait(5)
    collector.shutdown(None, time.monotonic() + 0.5)  # the hanging read is abandoned at the deadline
    assert [p.line.split()[-1] for p in outbox.oldest(10)] == [str(10 * S)]
    assert "sensor=good" in outbox.oldest(1)[0].line
    assert behind.read_at == []
    hanging.release.set()


def test_a_read_slower_than_its_timeout_is_discarded(write_config, tmp_path, caplog):
    config = load_config(write_config("collector: {time_floor: 1970-01-01}\n"
                                      "sensors:\n  - {name: slow, type: command, command: 'sleep 0.3; echo 20', "
                                      "timeout: 100ms}\n"), environ={})
    outbox = Outbox(str(tmp_path / "o.sqlite"))
    collector = Collector(config, {"slow": create_sensor(config.sensors[0])}, outbox, None, clock=lambda: 0)
    with caplog.at_level(logging.WARNING):
        finish(tick(collector, 0, 10 * S))
    assert outbox.depth == 0
    assert "slow: read failed: command did not finish within 0.1s" in caplog.text


class FlakyOutbox(Outbox):
    """A real outbox whose disk is full while `full` is set: SQLite's own error, as the collector sees it."""

    full = False

    def append(self, points):
        if self.full:
            raise sqlite3.OperationalError("database or disk is full")
        return super().append(points)


def test_an_unwritable_outbox_keeps_readings_in_memory_until_it_recovers(write_config, tmp_path, caplog):
    config = load_config(write_config(CONFIG), environ={})
    outbox = FlakyOutbox(str(tmp_path / "o.sqlite"))
    collector = Collector(config, {"good": Scripted(20.0, 21.0, 22.0), "other": Scripted()}, outbox, None,
                          clock=lambda: 0)
    outbox.full = True
    with caplog.at_level(logging.INFO):
        finish(tick(collector, 0, 10 * S))
        finish(tick(collector, 0, 20 * S))
        assert outbox.depth == 0 and len(collector.unsaved) == 2
        assert caplog.text.count("cannot write the outbox") == 1  # loud, once per episode
        assert "good: 20.00 °C at 1970-01-01T00:00:10.000Z (kept in memory, not yet in the outbox: a kill would " \
               "lose it)" in caplog.text  # not logged as committed
        assert collector.stats.get("reads_ok", "good") == 2
        outbox.full = False
        collector.heartbeat(30 * S)  # the next heartbeat saves what memory holds
    assert [p.line.split()[-1] for p in outbox.oldest(10)] == [str(10 * S), str(20 * S)]
    assert "the outbox is writable again; saved 2 reading(s)" in caplog.text
    assert collector.stats.get("outbox_write_failures") == 2


def test_no_point_is_stamped_before_the_time_floor(write_config, tmp_path, caplog):
    config = load_config(write_config("collector: {time_floor: 2026-01-01}\n"
                                      "sensors:\n  - {name: a, type: simulated}\n"),
                         environ={})
    outbox = Outbox(str(tmp_path / "o.sqlite"))
    collector = Collector(config, {"a": Scripted(20.0)}, outbox, None, clock=lambda: 0)
    with caplog.at_level(logging.INFO):
        for tick_ns in (10 * S, 20 * S):  # a Raspberry Pi without RTC, booted in 1970
            collector.on_tick(collector.slots, tick_ns, 0)
        assert collector.slots[0].reader is None and outbox.depth == 0  # no read was even started
        floor = 1_767_225_600 * S
        finish(tick(collector, 0, floor + 10 * S))
    assert outbox.depth == 1
    assert caplog.text.count("before 2026-01-01 (collector.time_floor): not reading") == 1
    assert "reading resumed" in caplog.text
    assert collector.stats.get("ticks_before_time_floor") == 2


def test_health_points_go_through_the_outbox(write_config, tmp_path):
    collector, outbox = make(write_config, tmp_path, {"good": Scripted(21.0), "other": Scripted()})
    finish(tick(collector, 0, 10 * S))
    collector.write_health(60 * S)
    collector.ticks.flush()  # what the committer does with a tick nobody expected
    lines = [p.line for p in outbox.oldest(10)]
    assert lines[1].startswith(f"templog,host={collector.config.host},site=lab ")
    assert "reads_ok=1i" in lines[1] and "outbox_depth=1i" in lines[1]
    assert lines[2].startswith(f"templog,host={collector.config.host},sensor=good,site=lab reads_ok=1i")
    assert lines[3].startswith(f"templog,host={collector.config.host},sensor=other,site=lab reads_ok=0i")


def test_a_full_outbox_drops_the_oldest_logged_and_counted(write_config, tmp_path, caplog):
    config = load_config(write_config(CONFIG), environ={})
    outbox = Outbox(str(tmp_path / "o.sqlite"), max_points=2)
    collector = Collector(config, {"good": Scripted(20.0, 21.0, 22.0), "other": Scripted()}, outbox, None,
                          clock=lambda: 0)
    with caplog.at_level(logging.WARNING):
        for i in range(3):
            finish(tick(collector, 0, (i + 1) * 10 * S))
    assert [p.line.split()[-1] for p in outbox.oldest(10)] == [str(20 * S), str(30 * S)]
    assert collector.stats.get("outbox_dropped") == 1
    assert ("outbox bound reached: dropped the 1 oldest point(s) (max_points 2, max_age none; 1 dropped in all)"
            in caplog.text)


def test_an_outbox_at_its_bound_logs_once_however_many_ticks_drop(write_config, tmp_path, caplog):
    config = load_config(write_config(CONFIG), environ={})
    outbox = Outbox(str(tmp_path / "o.sqlite"), max_points=2)
    collector = Collector(config, {"good": Scripted(*[20.0] * 50), "other": Scripted()}, outbox, None, clock=lambda: 0,
                          log_clock=lambda: 0.0)
    with caplog.at_level(logging.WARNING):
        for i in range(50):
            finish(tick(collector, 0, (i + 1) * 10 * S))
    assert collector.stats.get("outbox_dropped") == 48
    assert caplog.text.count("outbox bound reached") == 1


class Slow:
    """Answers after `seconds`, however long its timeout allows."""

    def __init__(self, seconds):
        self.seconds = seconds

    def read(self) -> Sample:
        threading.Event().wait(self.seconds)
        return Sample(20.0)


LONG_TIMEOUT = """
collector: {time_floor: 1970-01-01, timeout: 60s}
sensors:
  - {name: slow, type: simulated}
"""


def test_the_shutdown_is_bounded_from_the_stop_request_however_long_start_up_took(write_config, tmp_path, caplog):
    """SIGTERM came during start-up (outbox quick_check, repair), SHUTDOWN_S ago: a read in flight is not waited
    for, though it would finish well within its own timeout."""
    config = load_config(write_config(LONG_TIMEOUT), environ={})
    outbox = Outbox(str(tmp_path / "o.sqlite"))
    collector = Collector(config, {"slow": Slow(3.0)}, outbox, None, clock=lambda: 0)
    stop = StopRequest(clock=lambda: time.monotonic() - SHUTDOWN_S)  # requested SHUTDOWN_S ago
    stop.request("SIGTERM received")
    tick(collector, 0, 10 * S)
    with caplog.at_level(logging.INFO):
        collector.run(stop)
    assert "SIGTERM received, stopping" in caplog.text
    assert "slow: read still running at shutdown, abandoned" in caplog.text
    assert outbox.depth == 0


def test_a_read_ending_after_the_shutdown_is_dropped_quietly(write_config, tmp_path, caplog):
    """Abandoned at the deadline, it ends once the outbox is closed: it was in flight at the exit, no ERROR."""
    hanging = Hanging()
    collector, outbox = make(write_config, tmp_path, {"good": hanging, "other": Scripted()})
    tick(collector, 0, 10 * S)
    assert hanging.started.wait(5)
    with caplog.at_level(logging.DEBUG):
        collector.shutdown(None, time.monotonic())
        outbox.close()
        hanging.release.set()
        finish(collector.slots[0])
    after_stop = caplog.text.split("stopped; ")[1]
    assert "dropped 1 point(s) of a read that ended after the shutdown: good" in after_stop
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert "°C at" not in caplog.text  # logged only once committed


def sensor_tag(line: str) -> str:
    """The sensor tag of a point's line protocol."""
    tag = re.search(r",sensor=(\w+)", line)
    assert tag, f"no sensor tag in {line!r}"
    return tag.group(1)


def test_a_bug_around_a_lane_read_fails_that_read_only_and_the_lane_reads_on(write_config, tmp_path, caplog,
                                                                            monkeypatch):
    collector, outbox = make(write_config, tmp_path, {"good": Scripted(20.0), "other": Scripted(18.0, 18.5)})
    real = collector.lane.read
    calls: list[str] = []

    def buggy(slot, tick_ns):  # raises where Collector.read does not catch: around the sensor, not in it
        calls.append(slot.config.name)
        if len(calls) == 1:
            raise RuntimeError("a bug around the read")
        return real(slot, tick_ns)

    monkeypatch.setattr(collector.lane, "read", buggy)
    for tick_ns in (10 * S, 20 * S):
        collector.on_tick(collector.slots, tick_ns, 0)
        for slot in collector.slots:
            finish(slot)
    assert [(sensor_tag(p.line), p.line.split()[-1]) for p in outbox.oldest(10)] == [
        ("other", str(10 * S)), ("good", str(20 * S)), ("other", str(20 * S))]
    assert "a bug around the read" in caplog.text


def test_a_bug_on_a_sensors_own_thread_fails_that_read_only_and_the_thread_reads_on(write_config, tmp_path, caplog,
                                                                                    monkeypatch):
    config = load_config(write_config("collector: {time_floor: 1970-01-01}\n"
                                      "sensors:\n  - {name: cmd, type: command, command: 'echo 20'}\n"), environ={})
    outbox = Outbox(str(tmp_path / "o.sqlite"))
    collector = Collector(config, {"cmd": create_sensor(config.sensors[0])}, outbox, None, clock=lambda: 0)
    real = collector.commit_readings
    failed: list[bool] = []

    def buggy(readings):
        if not failed:
            failed.append(True)
            raise RuntimeError("a bug in the commit")
        real(readings)

    monkeypatch.setattr(collector, "commit_readings", buggy)
    finish(tick(collector, 0, 1 * S))
    finish(tick(collector, 0, 2 * S))  # without its thread, this read would never run and the slot stay busy
    assert [p.line.split()[-1] for p in outbox.oldest(10)] == [str(2 * S)]
    assert "a bug in the commit" in caplog.text


def test_run_and_read_judge_a_read_alike(write_config, tmp_path, caplog, monkeypatch):
    """One read-and-check path (collector/read_check.py): what `run` logs as refused, `read` prints as the error."""
    from collector.cli import read_all

    values = [math.nan, SensorError("w1_slave CRC check failed"), ValueError("a sensor's bug"), 22.0]
    collector, outbox = make(write_config, tmp_path, {"good": Scripted(*values), "other": Scripted()})
    with caplog.at_level(logging.WARNING):
        for i in range(len(values)):
            finish(tick(collector, 0, (i + 1) * 10 * S))
    errors = []
    for value in values:
        monkeypatch.setattr("collector.sensors.create_sensor", lambda config, shared=None, v=value: Scripted(v))
        errors.append(read_all(collector.config)[0]["error"])
    assert errors == ["reading refused: not a number (NaN)", "w1_slave CRC check failed", "ValueError: a sensor's bug",
                      None]
    assert [r.getMessage() for r in caplog.records][:3] == [
        "good: reading refused: not a number (NaN)", "good: read failed: w1_slave CRC check failed",
        "good: read failed: ValueError: a sensor's bug"]
