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
from pathlib import Path

from cli import wait_until

from collector.config import load_config
from collector.outbox import Outbox
from collector.runner import Collector
from collector.stats import Stats
from collector.tick_commit import TickCommits, wait_for

S = 1_000_000_000
SENSORS = 10
CONFIG = "collector: {interval: 1s, time_floor: 1970-01-01}\nsensors:\n" + "".join(
    f"  - {{name: s{i}, type: simulated, seed: {i}}}\n" for i in range(SENSORS))


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


class Hanging:
    def __init__(self):
        self.release = threading.Event()
        self.started = threading.Event()

    def read_celsius(self):
        self.started.set()
        self.release.wait(30)
        return 20.0


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
        wait_until(lambda: outbox.depth == SENSORS * (tick - 100) and not outbox.pending
                   and all(s.idle.is_set() for s in collector.slots), what=f"tick {tick} committed")
    assert wal_commits(path) - before == 3  # one a tick: readings, heartbeat state and the deletion together
    on_disk = Outbox(str(path))
    assert on_disk.depth == 3 * SENSORS  # the first tick's points are gone from the file
    assert int(on_disk.state()["heartbeat_ns"]) == 0


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


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_ticks_commit_waits_for_its_reads_until_its_deadline_then_goes_without_the_late_one():
    """Deadlines by an injected clock: the commit goes when the clock passes the deadline, whatever the wall
    clock says; the late read's points are committed on their own, after."""
    commits = []
    clock = FakeClock()
    ticks = TickCommits(lambda points: commits.append(list(points)) or True, clock=clock)
    ticks.expect(7, wait_for(1.0), reads=3)
    results = {}

    def submit(name, points):
        results[name] = ticks.submit(7, points)

    fast = threading.Thread(target=submit, args=("fast", [(None, "a 1")]))
    fast.start()
    assert ticks.submit(7, []) is True  # a failed read: it need not wait, and completes nothing yet
    fast.join(0.3)
    assert fast.is_alive() and commits == []  # the wall clock went on, the injected one did not
    clock.now = wait_for(1.0)  # the deadline: 0.1 s of a 1 s tick
    fast.join(10)
    assert commits == [[(None, "a 1")]] and results["fast"] is True
    assert ticks.submit(7, [(None, "late 1")]) is True
    assert commits == [[(None, "a 1")], [(None, "late 1")]]


def test_a_tick_whose_reads_all_answered_commits_at_once_in_one_transaction():
    commits = []
    clock = FakeClock()
    ticks = TickCommits(lambda points: commits.append(list(points)) or True, clock=clock)
    with ticks.holding():
        for _ in range(3):
            ticks.expect(5, wait_for(1.0))
        threads = [threading.Thread(target=ticks.submit, args=(5, [(None, f"p {i}")])) for i in range(3)]
        for thread in threads:
            thread.start()
    for thread in threads:
        thread.join(10)
    assert len(commits) == 1 and sorted(commits[0]) == [(None, f"p {i}") for i in range(3)]


def test_an_idle_sender_leaves_a_ticks_deliveries_to_the_next_tick_and_deletes_a_backlog_in_slices(tmp_path):
    path = tmp_path / "o.sqlite"
    outbox = Outbox(str(path))
    outbox.append([(None, f"t,sensor=s{i} celsius=1 {i}") for i in range(10)])
    outbox.purge()  # what an earlier run may have left: nothing here
    outbox.delivered(outbox.oldest(10))
    before = wal_commits(path)
    assert outbox.purge() is False and wal_commits(path) == before  # no commit of its own
    outbox.append([(None, f"t,sensor=s celsius=1 {10 + i}") for i in range(1200)])
    assert wal_commits(path) == before + 1 and Outbox(str(path)).depth == 1200  # deleted with the next commit
    outbox.delivered(outbox.oldest(1200))
    outbox.write_pending()  # as a drain does at each batch: a slice deleted, the rest marked delivered
    assert Outbox(str(path)).depth == 0 and Outbox(str(path)).oldest(10) == outbox.oldest(10)
    while outbox.purge():
        pass
    rows = sqlite3.connect(path).execute("SELECT count(*) FROM points").fetchone()[0]
    assert rows == 0
