"""One durable commit per tick (issue 10): a tick's readings, the health jobs due with it, the deletion of what
InfluxDB took and the heartbeat state reach the outbox in one transaction; a hanging sensor holds the others'
commit back by at most the tick's deadline, not by its hang.

Commits are counted in the outbox's write-ahead log, as SQLite writes it: a WAL file is a 32-byte header and frames
of a 24-byte header plus a page; a frame whose second header word (the database size after the commit) is not zero
ends a transaction, and only frames carrying the header's two salts are valid (sqlite.org/fileformat.html, "The
Write-Ahead Log"). With synchronous=FULL each of them is one fsync.
"""

import sqlite3
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cli import wait_until
from collector.config import load_config
from collector.lanes import SensorSlot
from collector.lineprotocol import Point
from collector.outbox import Outbox
from collector.runner import Collector
from collector.sensors import Sample, Sensor
from collector.stats import Stats
from collector.tick_commit import Points, Then, TickCommits, wait_for
from temperature_points import temperature
from test_runner import FakeClock, Hanging, Scripted

S = 1_000_000_000
SENSORS = 10
CONFIG = "collector: {interval: 1s, time_floor: 1970-01-01}\nsensors:\n" + "".join(
    f"  - {{name: s{i}, type: simulated, seed: {i}}}\n" for i in range(SENSORS))


def point(sensor: str, time_ns: int) -> Point:
    """A point for the commits to carry (they never look into one)."""
    return temperature(sensor, time_ns, 20.0)


def commit_noting_in(commits: list[Points]) -> Callable[[Points], bool]:
    """A commit that notes each transaction's points and succeeds."""

    def commit(points: Points) -> bool:
        commits.append(list(points))
        return True

    return commit


def wal_commits(outbox_path: Path) -> int:
    """Transactions committed in the outbox's WAL since it was last reset."""
    data = (outbox_path.parent / (outbox_path.name + "-wal")).read_bytes()
    if len(data) < 32:
        return 0
    page_size, salts = struct.unpack(">I", data[8:12])[0], data[16:24]
    commits, offset = 0, 32
    while offset + 24 + page_size <= len(data):
        header = data[offset:offset + 24]
        if header[8:16] != salts:
            break
        commits += struct.unpack(">I", header[4:8])[0] != 0
        offset += 24 + page_size
    return commits


def wal_commit_pages(outbox_path: Path) -> list[list[int]]:
    """The database pages each transaction in the outbox's WAL wrote (a frame header's first word is its page)."""
    data = (outbox_path.parent / (outbox_path.name + "-wal")).read_bytes()
    page_size, salts = struct.unpack(">I", data[8:12])[0], data[16:24]
    commits, pages, offset = [], [], 32
    while offset + 24 + page_size <= len(data) and data[offset + 8:offset + 16] == salts:
        page, size_after = struct.unpack(">II", data[offset:offset + 8])
        pages.append(page)
        if size_after:
            commits.append(pages)
            pages = []
        offset += 24 + page_size
    return commits


def collector_of(write_config, tmp_path, sensors=None):
    config = load_config(write_config(CONFIG), environ={})
    path = tmp_path / "o.sqlite"
    outbox = Outbox(str(path))
    if sensors is None:
        from collector.sensors import create_sensor
        sensors = {c.name: create_sensor(c) for c in config.sensors}
    collector = Collector(config, sensors, outbox, sender=None, clock=lambda: 0, stats=Stats())
    outbox.put_state(started_ns=0)  # as `run` does first: the WAL exists from here on
    return collector, outbox, path


def stop(collector):
    """The collector's shutdown: its lane, readers and committer end (a test leaves no thread behind)."""
    collector.shutdown(None, time.monotonic() + 5)


def dispatch_tick(collector, tick_ns):
    """What Collector.run does when a tick is due: every sensor's read (one interval: one job) and the heartbeat
    handed out at once."""
    with collector.ticks.holding():
        collector.on_tick(collector.slots, tick_ns, 0)
        collector.in_background(collector.heartbeat, tick_ns, 0)


def test_a_tick_of_ten_sensors_with_its_deliveries_and_heartbeat_is_one_commit(write_config, tmp_path):
    collector, outbox, path = collector_of(write_config, tmp_path)
    dispatch_tick(collector, 100 * S)
    wait_until(lambda: outbox.depth == SENSORS and outbox.state().get("heartbeat_ns"), what="the first tick")
    wait_until(lambda: not outbox.pending and all(s.idle.is_set() for s in collector.slots), what="its commit")
    outbox.delivered(outbox.oldest(100))  # InfluxDB took the first tick; its deletion waits for the next commit
    assert outbox.depth == 0 and Outbox(str(path)).depth == SENSORS
    before = wal_commits(path)
    for tick in (101, 102, 103):
        dispatch_tick(collector, tick * S)
        def committed(depth=SENSORS * (tick - 100)):
            return outbox.depth == depth and not outbox.pending and all(s.idle.is_set() for s in collector.slots)

        wait_until(committed, what=f"tick {tick} committed")
    assert wal_commits(path) - before == 3  # one a tick: readings, heartbeat state and the deletion together
    on_disk = Outbox(str(path))
    assert on_disk.depth == 3 * SENSORS  # the first tick's points are gone from the file
    assert int(on_disk.state()["heartbeat_ns"]) == 0
    stop(collector)


def test_a_steady_tick_of_ten_sensors_writes_one_page_to_the_card(write_config, tmp_path):
    """Each tick's commit, with the deletion of the tick before it that InfluxDB took, writes one page: the points
    table's only leaf (the rows of a tick fit one 1 KiB page; the deletion first makes room); the heartbeat's adds
    the state's. Before, AUTOINCREMENT's sqlite_sequence page was a second page at every commit, and the state's
    key index a third at the heartbeat's (issue 10: bytes written per point)."""
    collector, outbox, path = collector_of(write_config, tmp_path)
    for tick in range(100, 104):
        with collector.ticks.holding():
            collector.on_tick(collector.slots, tick * S, 0)
        wait_until(lambda: outbox.depth == SENSORS and not outbox.pending
                   and all(s.idle.is_set() for s in collector.slots), what=f"tick {tick} committed")
        outbox.delivered(outbox.oldest(100))  # InfluxDB took it: deleted with the next tick's commit
    dispatch_tick(collector, 104 * S)  # with the heartbeat's state: one page more, the state's
    wait_until(lambda: outbox.depth == SENSORS and not outbox.pending
               and all(s.idle.is_set() for s in collector.slots), what="tick 104 committed")
    roots = dict(sqlite3.connect(path).execute("SELECT name, rootpage FROM sqlite_master WHERE type = 'table'"))
    assert wal_commit_pages(path)[-4:] == [[roots["points"]]] * 3 + [[roots["points"], roots["state"]]]
    stop(collector)


def test_a_hanging_sensor_does_not_hold_back_the_commit_of_the_others(write_config, tmp_path):
    hanging = Hanging()
    collector, outbox, path = collector_of(write_config, tmp_path, sensors=None)
    collector.slots[0].sensor = hanging
    dispatch_tick(collector, 100 * S)

    def others_committed() -> bool:
        collector.lane.check()  # as Collector.run's loop does: the hanging read moves off the shared lane
        return outbox.depth == SENSORS - 1

    wait_until(others_committed, what="the other sensors' readings committed")
    assert hanging.started.is_set() and not collector.slots[0].idle.is_set()  # still hanging: not waited for
    hanging.release.set()
    wait_until(lambda: outbox.depth == SENSORS, what="the late reading, committed on its own")
    assert {line.split()[-1] for line in (p.line for p in outbox.oldest(100))} == {str(100 * S)}
    stop(collector)


class Counted:
    """A sensor that notes each read it answered."""

    def __init__(self, sensor: Sensor, answered: list[float]):
        self.sensor, self.answered = sensor, answered

    def read(self) -> Sample:
        sample = self.sensor.read()
        self.answered.append(sample.celsius)
        return sample


def test_a_ticks_commit_waits_for_its_reads_until_its_deadline_then_goes_without_the_late_one():
    """Deadlines by an injected clock, stepped by hand: the commit goes when the clock passes the deadline; the late
    read's points are committed on their own, after, and each reader's `then` runs once its points are committed."""
    commits: list[Points] = []
    logged: list[tuple[str, object]] = []
    clock = FakeClock()
    ticks = TickCommits(commit_noting_in(commits), clock=clock, background=False)
    ticks.expect(7, wait_for(1.0), reads=3)
    ticks.submit(7, [point("a", 1)], then=lambda committed: logged.append(("a", committed)))
    ticks.submit(7, [])  # a failed read
    assert not ticks.commit_due() and commits == [] and logged == []  # one read still out, the deadline not passed
    clock.now = wait_for(1.0)  # the deadline: 0.1 s of a 1 s tick
    assert ticks.commit_due() and commits == [[point("a", 1)]] and logged == [("a", True)]
    ticks.submit(7, [point("late", 1)], then=lambda committed: logged.append(("late", committed)))
    assert commits == [[point("a", 1)], [point("late", 1)]] and logged == [("a", True), ("late", True)]  # at once


def test_a_tick_whose_reads_all_answered_commits_at_once_in_one_transaction():
    commits: list[Points] = []
    ticks = TickCommits(commit_noting_in(commits), clock=FakeClock(), background=False)
    with ticks.holding():
        for i in range(3):
            ticks.expect(5, wait_for(1.0))
            ticks.submit(5, [point("p", i)])
        assert not ticks.commit_due()  # the scheduler may still hand out reads of this tick
    assert ticks.commit_due() and commits == [[point("p", i) for i in range(3)]]


def test_the_shortest_wait_of_a_ticks_expects_is_its_deadline():
    """A tick shared by a 500 ms and a 10 s interval: committed within 50 ms, as the 500 ms readings must be, not
    after the 10 s interval's 1 s."""
    clock = FakeClock()
    ticks = TickCommits(lambda points: True, clock=clock, background=False)
    ticks.expect(10, wait_for(10.0))
    ticks.expect(10, wait_for(0.5))
    clock.now = 0.04
    assert not ticks.commit_due()
    clock.now = 0.05
    assert ticks.commit_due()


def test_a_hanging_slow_interval_sensor_never_makes_a_fast_one_sharing_its_tick_skip(write_config, tmp_path):
    """Found by a hostile run: a command hanging at 10 s held the 500 ms sensor's commit (and so its next read)
    for the 10 s interval's 1 s wait, and its next ticks were skipped."""
    clock, hanging = FakeClock(), Hanging()
    config = load_config(write_config("collector: {time_floor: 1970-01-01}\nsensors:\n"
                                      "  - {name: fast, type: simulated, interval: 500ms}\n"
                                      "  - {name: slow, type: simulated, interval: 10s}\n"), environ={})
    outbox = Outbox(str(tmp_path / "o.sqlite"))
    collector = Collector(config, {"fast": Scripted(20.0, 21.0), "slow": hanging}, outbox, sender=None,
                          clock=lambda: 0, stats=Stats(), read_clock=clock)
    fast, slow = collector.slots
    slow.own_thread = True
    with collector.ticks.holding():
        collector.on_tick([slow], 10 * S, 0)
        collector.on_tick([fast], 10 * S, 0)
    assert hanging.started.wait(5)
    clock.now = wait_for(0.5)
    collector.ticks.recheck()
    wait_until(lambda: outbox.depth == 1 and fast.idle.is_set(), what="the fast reading committed at 50 ms")
    collector.on_tick([fast], 10 * S + S // 2, 0)  # its next tick is read, not skipped
    wait_until(lambda: outbox.depth == 2, what="the fast sensor's next tick")
    assert collector.stats.get("ticks_skipped", "fast") == 0
    hanging.release.set()
    stop(collector)


def test_ticks_ready_together_go_in_one_transaction_in_tick_order():
    """A disk slower than the ticks: what waited while a commit ran goes in the next one, not one commit each."""
    commits: list[Points] = []
    ticks = TickCommits(commit_noting_in(commits), clock=FakeClock(), background=False)
    for tick in (3, 1, 2):
        ticks.expect(tick, 1.0)
        ticks.submit(tick, [point("p", tick)])
    assert ticks.commit_due() and commits == [[point("p", 1), point("p", 2), point("p", 3)]]


def test_a_readers_follow_up_that_fails_is_logged_and_the_rest_still_run(caplog):
    done: list[object] = []

    def buggy_follow_up(committed: object) -> None:
        raise ZeroDivisionError("division by zero")

    ticks = TickCommits(lambda points: True, clock=FakeClock(), background=False)
    ticks.expect(1, 1.0, reads=2)
    ticks.submit(1, [point("p", 1)], then=buggy_follow_up)
    ticks.submit(1, [point("p", 2)], then=done.append)
    assert ticks.commit_due() and done == [True]
    assert "ZeroDivisionError" in caplog.text


def test_a_lane_read_and_a_hanging_own_thread_read_of_one_tick_never_hold_the_lane(write_config, tmp_path,
                                                                                   monkeypatch):
    """The lane hands its readings over and reads on; the tick's commit waits for the hanging sensor until its
    deadline by the injected clock, then goes without it, and the late reading follows on its own."""
    clock = FakeClock()
    hanging = Hanging()
    config = load_config(write_config(CONFIG), environ={})
    outbox = Outbox(str(tmp_path / "o.sqlite"))
    from collector.sensors import create_sensor
    read: list[float] = []
    sensors: dict[str, Sensor] = {c.name: Counted(create_sensor(c), read) for c in config.sensors}
    sensors["s0"] = hanging
    collector = Collector(config, sensors, outbox, sender=None, clock=lambda: 0, stats=Stats(), read_clock=clock)
    collector.slots[0].own_thread = True
    submitted: list[int] = []
    submit = collector.ticks.submit

    def submit_noting_reads(tick_ns: int, points: Points, reads: int = 1, then: Then | None = None) -> None:
        submitted.append(reads)
        submit(tick_ns, points, reads=reads, then=then)

    monkeypatch.setattr(collector.ticks, "submit", submit_noting_reads)
    dispatch_tick(collector, 100 * S)
    wait_until(lambda: hanging.started.is_set() and len(read) == SENSORS - 1, what="the lane done with its nine")
    ticks = collector.ticks
    wait_until(lambda: SENSORS - 1 in submitted, what="the lane's nine handed over")
    ticks.recheck()
    assert outbox.depth == 0  # nothing due: the injected clock has not reached the deadline
    clock.now = wait_for(1.0)
    ticks.recheck()
    wait_until(lambda: outbox.depth == SENSORS - 1, what="the lane's readings committed at the deadline")
    hanging.release.set()
    wait_until(lambda: outbox.depth == SENSORS, what="the hanging sensor's reading, committed on its own")
    stop(collector)


def test_two_intervals_ticking_together_are_one_commit(write_config, tmp_path):
    """1 s and 2 s sensors at an even second: two scheduler jobs, one tick, one transaction."""
    config_text = "collector: {interval: 1s, time_floor: 1970-01-01}\nsensors:\n" + "".join(
        f"  - {{name: s{i}, type: simulated, seed: {i}, interval: {1 + i % 2}s}}\n" for i in range(SENSORS))
    config = load_config(write_config(config_text), environ={})
    path = tmp_path / "o.sqlite"
    outbox = Outbox(str(path))
    from collector.sensors import create_sensor
    collector = Collector(config, {c.name: create_sensor(c) for c in config.sensors}, outbox, sender=None,
                          clock=lambda: 0, stats=Stats())
    outbox.put_state(started_ns=0)
    before = wal_commits(path)
    by_interval: dict[float, list[SensorSlot]] = {}
    for slot in collector.slots:
        by_interval.setdefault(slot.config.interval, []).append(slot)
    with collector.ticks.holding():
        for slots in by_interval.values():
            collector.on_tick(slots, 2 * S, 0)
        collector.in_background(collector.heartbeat, 2 * S, 0)
    wait_until(lambda: outbox.depth == SENSORS and not outbox.pending, what="the tick committed")
    assert wal_commits(path) - before == 1
    stop(collector)


def test_an_idle_sender_leaves_a_ticks_deliveries_to_the_next_tick_and_deletes_a_backlog_in_slices(tmp_path):
    path = tmp_path / "o.sqlite"
    outbox = Outbox(str(path))
    outbox.append([temperature(f"s{i}", i, 1.0) for i in range(10)])
    outbox.purge()  # what an earlier run may have left: nothing here
    outbox.delivered(outbox.oldest(10))
    before = wal_commits(path)
    assert outbox.purge() is False and wal_commits(path) == before  # no commit of its own
    outbox.append([temperature("s", 10 + i, 1.0) for i in range(1200)])
    assert wal_commits(path) == before + 1 and Outbox(str(path)).depth == 1200  # deleted with the next commit
    outbox.delivered(outbox.oldest(1200))
    outbox.write_pending()  # as a drain does at each batch: a slice deleted, the rest marked delivered
    assert Outbox(str(path)).depth == 0 and Outbox(str(path)).oldest(10) == outbox.oldest(10)
    while outbox.purge():
        pass
    rows = sqlite3.connect(path).execute("SELECT count(*) FROM points").fetchone()[0]
    assert rows == 0


class Stepping:
    """A sensor whose read takes `seconds` of the injected clock: within the lane's budget, so it stays on the lane."""

    def __init__(self, clock: FakeClock, seconds: float):
        self.clock, self.seconds = clock, seconds

    def read(self) -> Sample:
        self.clock.now += self.seconds
        return Sample(20.0)


def test_a_late_submit_is_committed_by_the_committer_not_on_the_submitting_thread():
    """A lane pass that ends after its tick's deadline (a slow board): the lane hands its readings over and reads
    on; the fsync is the committer's."""
    clock = FakeClock()
    threads: list[str] = []

    def commit_noting_thread(points: Points) -> bool:
        threads.append(threading.current_thread().name)
        return True

    ticks = TickCommits(commit_noting_thread, clock=clock)
    ticks.expect(1, wait_for(1.0), reads=2)
    clock.now = 1.0
    ticks.recheck()
    wait_until(lambda: threads == ["tick commits"], what="the tick committed at its deadline")
    ticks.submit(1, [point("late", 1)])
    wait_until(lambda: len(threads) == 2, what="the late reading committed")
    assert threads == ["tick commits", "tick commits"]
    ticks.close()


def test_a_ticks_commit_waits_for_twice_the_lanes_last_pass_up_to_half_the_interval():
    assert wait_for(1.0) == wait_for(1.0, 0.01) == 0.1
    assert wait_for(1.0, 0.15) == 0.3  # 1,000 sensors on a slow board: their readings stay in their tick's commit
    assert wait_for(1.0, 2.0) == 0.5
    assert wait_for(60.0, 0.2) == 1.0


def test_the_lane_measures_its_pass_by_the_injected_clock(write_config, tmp_path):
    clock = FakeClock()
    config_text = "collector: {interval: 1s, time_floor: 1970-01-01}\nsensors:\n" + "".join(
        f"  - {{name: s{i}, type: simulated}}\n" for i in range(30))
    config = load_config(write_config(config_text), environ={})
    outbox = Outbox(str(tmp_path / "o.sqlite"))
    sensors: dict[str, Sensor] = {c.name: Stepping(clock, 0.005)  # within the lane's budget: on the lane
                                  for c in config.sensors}
    collector = Collector(config, sensors, outbox, sender=None, clock=lambda: 0, stats=Stats(), read_clock=clock)
    with collector.ticks.holding():
        collector.on_tick(collector.slots, 1 * S, 0)
    collector.ticks.recheck()
    wait_until(lambda: outbox.depth == 30 and all(s.idle.is_set() for s in collector.slots), what="the tick")
    assert abs(collector.lane.pass_s - 0.15) < 1e-9
    stop(collector)
