"""The collector loop: the scheduler fires the ticks of each interval's sensors, reads run on the shared lane or,
for a sensor that is slow, on its own thread (collector/lanes.py), accepted readings are committed to the outbox,
and the sender thread delivers them.

    sensor -> Reading (plausible only) -> outbox (committed) -> sender -> InfluxDB

The loop also records a heartbeat, writes the `templog` health measurement, and, if the outbox cannot be
written (disk full, read-only), keeps readings in memory (bounded) until it can. Conditions that repeat every tick
(a failing sensor, the outbox bound) are logged as collector/logs.py's `Repeating` says: when they start, every
10 minutes with a count, and when they end.

Shutdown is bounded (SHUTDOWN_S from the stop request, however long start-up took), whatever the sensors and
InfluxDB do: reads in flight and the last delivery get what is left of it, and a write still in flight at the end is
abandoned (its points wait in the outbox); a read abandoned then and ending later is dropped, as if killed in flight.
"""

from __future__ import annotations

import enum
import functools
import logging
import sqlite3
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Callable

from collector.config_types import Config, SensorConfig
from collector.delivery import Sender
from collector.health import HEARTBEAT_S, health_points
from collector.lanes import Done, SensorSlot, SharedLane, start_own_reader
from collector.lineprotocol import MEASUREMENT, Point, Series
from collector.logs import Repeating, RepeatingByKey, log_bug
from collector.outbox import Outbox
from collector.read_check import Measured, judge, measure
from collector.readings import Reading, point_reading, reading_point
from collector.scheduling import Clock, WallClockScheduler
from collector.sensors import Sensor
from collector.stats import Stats
from collector.tick_commit import Points, TickCommits, wait_for
from collector.ticks import utc_text

if TYPE_CHECKING:  # collector.mqtt imports paho, which only a run with MQTT sensors needs (Shared.mqtt makes the hub)
    from collector.mqtt import MqttHub

log = logging.getLogger("templog")

MEMORY_BUFFER_POINTS = 100_000  # readings held while the outbox cannot be written; beyond it the oldest go
SHUTDOWN_S = 7.0  # from SIGTERM to the end of the last delivery: under Docker's 10 s with room to close and exit


class Saved(enum.Enum):
    """Where Collector.commit put the points."""

    DURABLE = "committed to the outbox"
    IN_MEMORY = "kept in memory: the outbox cannot be written"
    DROPPED = "dropped: the collector had stopped"


class StopRequest(threading.Event):
    """`stop`, set by the first request (a signal); remembers why and when, by the monotonic clock, so that the
    shutdown is bounded from the request itself, even one that came during start-up."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.clock = clock
        self.reason: str | None = None
        self.at: float | None = None

    def note(self, reason: str) -> None:
        """Record the request (the first one's reason and time), not yet `set`: what a signal handler may do. It
        runs between two bytecodes of the main thread, maybe one inside this Event's own wait or set, which hold
        its lock: Event.set there would wait for that lock forever (a second SIGTERM at once, during the first's)."""
        if self.at is None:
            self.at, self.reason = self.clock(), reason

    @property
    def requested(self) -> bool:
        """Whether a request was noted, set or not yet."""
        return self.at is not None

    def request(self, reason: str) -> None:
        """Note the request and set the event: from a thread other than the one a signal interrupts."""
        self.note(reason)
        self.set()

    def deadline(self, seconds: float) -> float:
        return (self.clock() if self.at is None else self.at) + seconds


class Collector:
    def __init__(self, config: Config, sensors: dict[str, Sensor], outbox: Outbox, sender: Sender | None,
                 clock: Clock = time.time_ns, stats: Stats | None = None, mqtt: MqttHub | None = None,
                 log_clock: Callable[[], float] = time.monotonic, read_clock: Callable[[], float] = time.monotonic):
        """`read_clock` (seconds) times reads for the lane's budget (injected by tests, as `clock` for ticks)."""
        self.config, self.outbox, self.sender, self.clock = config, outbox, sender, clock
        self.read_clock = read_clock
        self.mqtt = mqtt  # its connection state goes into the heartbeat
        self.stats = stats or Stats()
        self.started_ns = clock()
        self.time_floor_ns = config.collector.time_floor_ns
        self.unsaved: deque[Point] = deque()
        self.commit_lock = threading.Lock()
        self.stopping = threading.Event()
        self.stopped = threading.Event()  # shutdown is over: the outbox is closing, a late reading is dropped
        # what repeats every tick, logged by its start, every 10 minutes, and its end (log_clock: seconds)
        self.before_floor = Repeating(log, logging.ERROR, clock=log_clock)
        self.sensor_trouble = RepeatingByKey(log, clock=log_clock)  # by (sensor, kind of trouble)
        self.outbox_failing = Repeating(log, logging.ERROR, clock=log_clock)
        self.memory_full = Repeating(log, logging.ERROR, clock=log_clock)
        self.outbox_bound = Repeating(log, clock=log_clock)
        self.slots = [SensorSlot(c, sensors[c.name], Series(MEASUREMENT, point_tags(config, c)))
                      for c in config.sensors]
        self.lane = SharedLane(self.read, self.commit_readings, read_clock)
        # a tick's readings, the health jobs due with it, the deletions and the state: one transaction
        self.ticks = TickCommits(self.commit, clock=read_clock)
        self.housekeeping_wait_s = wait_for(min(c.interval for c in config.sensors))
        self.housekeeping: list[threading.Thread] = []  # heartbeat and health jobs running, for the shutdown
        self.scheduler = WallClockScheduler(clock)
        by_interval: dict[float, list[SensorSlot]] = {}
        for slot in self.slots:
            by_interval.setdefault(slot.config.interval, []).append(slot)
        for interval, slots in by_interval.items():  # one job a tick for all: a job per sensor cost µs each
            self.scheduler.every(interval).do(self.on_tick, slots)
        self.scheduler.every(HEARTBEAT_S).do(self.in_background, self.heartbeat)
        self.scheduler.every(config.collector.health_interval).do(self.in_background, self.write_health)

    def before_time_floor(self, tick_ns: int) -> bool:
        """True (logged once per episode, counted) while the clock is before the floor: such stamps would be lies."""
        if tick_ns >= self.time_floor_ns:
            self.before_floor.ended("the clock is past %s again; reading resumed", self.config.collector.time_floor)
            return False
        self.stats.add("ticks_before_time_floor")
        self.before_floor.occurred("the system clock says %s, before %s (collector.time_floor): not reading until the "
                                   "clock is set", utc_text(tick_ns, milliseconds=True),
                                   self.config.collector.time_floor)
        return True

    def on_tick(self, slots: list[SensorSlot], tick_ns: int, skipped: int) -> None:
        """On the scheduling thread: hand the tick's reads to the lane and to the slow sensors' own threads; never
        wait for them. A sensor whose previous read is still running skips this tick."""
        late = (slots[0].config.interval, "late")  # one condition for the sensors of one interval
        if skipped:
            for slot in slots:
                self.stats.add("ticks_skipped", skipped, sensor=slot.config.name)
            self.sensor_trouble[late].occurred("%s: %d tick(s) skipped, the collector was not scheduled in time",
                                               _names(slots), skipped)
        else:
            self.sensor_trouble.ended(late, "%s: ticks on time again", _names(slots))
        if self.before_time_floor(tick_ns):
            return
        now = self.read_clock()
        wait_s = wait_for(slots[0].config.interval)
        lane = []
        for slot in slots:
            if not slot.idle.is_set():
                name = slot.config.name
                self.stats.add("ticks_skipped", sensor=name)
                self.sensor_trouble[(name, "busy")].occurred(
                    "%s: tick %s skipped, the previous read is still running after %.1fs", name,
                    utc_text(tick_ns, milliseconds=True), now - slot.busy_since)
                slot.troubled = True
                continue
            if slot.troubled:
                name = slot.config.name
                self.sensor_trouble.ended((name, "busy"), "%s: the slow read finished; ticks are read again", name)
            slot.idle.clear()
            slot.busy_since = now
            if not slot.own_thread:
                lane.append(slot)
                continue
            self.ticks.expect(tick_ns, wait_s)
            slot.tick_ns = tick_ns
            if slot.reader is None:
                start_own_reader(slot, self.read, self.commit_readings, self.stopping, self.read_clock)
            slot.go.set()
        if lane:
            self.ticks.expect(tick_ns, wait_for(slots[0].config.interval, self.lane.pass_s), reads=len(lane))
            self.lane.submit(tick_ns, lane)

    def in_background(self, job: Callable[[int], None], tick_ns: int, skipped: int) -> None:
        """Run a housekeeping job off the scheduling thread; what it writes goes with its tick's commit."""
        self.ticks.expect(tick_ns, self.housekeeping_wait_s)
        thread = threading.Thread(target=job, args=(tick_ns,), name=job.__name__, daemon=True)
        self.housekeeping = [t for t in self.housekeeping if t.is_alive()] + [thread]
        thread.start()

    def read(self, slot: SensorSlot, tick_ns: int) -> Measured:
        """Read one sensor, on the lane or the sensor's own thread, and nothing more: the lane reads its sensors one
        after another, so every check here would delay the reads behind it (`check` runs once they are all read)."""
        return measure(slot.sensor)

    def check(self, slot: SensorSlot, tick_ns: int, measured: Measured | None) -> Reading | None:
        """What a read gave (None: it failed outside the sensor, and that was logged there): a reading, or None
        once what is refused is logged and counted, never written."""
        if measured is None:
            return None
        value, elapsed = measured
        name = slot.config.name
        if not isinstance(value, BaseException):
            self.stats.observe_latency(name, elapsed)
        reading, refused = judge(value, elapsed, slot.config, tick_ns)
        if refused is None:
            return reading
        if refused.kind == "missing":  # not an error: an MQTT device that has not published yet
            self.stats.add(refused.counter, sensor=name)
            log.debug("%s: %s", name, refused.reason)
            return None
        if isinstance(value, BaseException) and refused.kind == "bug":
            log.debug("%s: unexpected error while reading", name, exc_info=value)
        self._refuse(slot, refused.counter, refused.kind, refused.message)
        return reading

    def commit_readings(self, done: Done) -> None:
        """Check what one lane pass (or one slow sensor's thread) read, and hand it, failed reads included, to the
        commits of their ticks, without waiting; each reading is counted and logged once committed, and its sensor
        is idle again."""
        by_tick: dict[int, list[tuple[SensorSlot, Reading | None, Point | None]]] = {}
        for slot, tick_ns, measured in done:
            try:
                reading = self.check(slot, tick_ns, measured)
                point = None if reading is None else reading_point(slot.series, reading)
            except Exception as exc:  # a bug: that read fails, not the pass's others
                log_bug(log, exc, "%s: checking the reading failed", slot.config.name)
                reading = point = None
            by_tick.setdefault(tick_ns, []).append((slot, reading, point))
        for tick_ns, checked in by_tick.items():  # every expected read submits once, even a failed one
            reads = [(slot, reading) for slot, reading, _ in checked]
            readings = [(slot, reading) for slot, reading, _ in checked if reading is not None]
            points: Points = [point for _, _, point in checked if point is not None]
            self.ticks.submit(tick_ns, points, reads=len(reads),
                              then=functools.partial(self._committed, reads, readings))

    def _committed(self, reads: list[tuple[SensorSlot, Reading | None]], readings: list[tuple[SensorSlot, Reading]],
                   saved: object) -> None:
        """Once a tick's commit is over: its readings counted and logged, saying so if only kept in memory (not
        committed: a kill loses them), its sensors free to read again."""
        try:
            if saved in (Saved.DURABLE, Saved.IN_MEMORY):
                self._count_and_log(readings, durable=saved is Saved.DURABLE)
        finally:
            for slot, _ in reads:
                slot.idle.set()

    def _count_and_log(self, readings: list[tuple[SensorSlot, Reading]], durable: bool) -> None:
        info = log.isEnabledFor(logging.INFO)
        where = "" if durable else " (kept in memory, not yet in the outbox: a kill would lose it)"
        for slot, reading in readings:
            name = reading.sensor
            self.stats.add("reads_ok", sensor=name)
            if slot.troubled:  # cheap on the hot path: only a sensor that had trouble has conditions to end
                slot.troubled = False
                self.sensor_trouble.ended((name, "busy"), "%s: the slow read finished; ticks are read again", name)
                for kind in READ_TROUBLES:
                    self.sensor_trouble.ended((name, kind), "%s: reads again", name)
            if slot.humidity_troubled and reading.humidity is not None:
                slot.humidity_troubled = False
                self.sensor_trouble.ended((name, HUMIDITY_TROUBLE), "%s: its humidity is plausible again", name)
            if info:
                humidity = "" if reading.humidity is None else f" ({reading.humidity:.1f} %RH)"
                log.info("%s: %.2f °C at %s%s%s", name, reading.celsius, utc_text(reading.time_ns, milliseconds=True),
                         humidity, where)

    def commit(self, points: Points) -> Saved:
        """Commit points (with any kept in memory before them) to the outbox; if it fails, keep them in memory.
        DROPPED only once shutdown is over: a read abandoned at the deadline was in flight at the exit."""
        if self.stopped.is_set():
            return self._too_late(points)
        with self.commit_lock:  # only to take what memory holds: the appends themselves run concurrently (group commit)
            batch = [*self.unsaved, *points]
            self.unsaved.clear()
        try:
            dropped = self.outbox.append(batch)
        except (sqlite3.Error, OSError) as exc:
            if self.stopped.is_set():  # the outbox was closed under it
                return self._too_late(points)
            with self.commit_lock:
                self.unsaved.extendleft(reversed(batch))
                overflow = len(self.unsaved) - MEMORY_BUFFER_POINTS
                for _ in range(max(0, overflow)):
                    self.unsaved.popleft()
                if overflow > 0:
                    self.stats.add("outbox_dropped", overflow)
                    self.memory_full.occurred("memory buffer full: dropped the %d oldest reading(s) not yet saved "
                                              "(%d dropped in all)", overflow, self.stats.get("outbox_dropped"))
                self.stats.add("outbox_write_failures")
                self.outbox_failing.occurred("cannot write the outbox %s: %s; keeping readings in memory (at most %d) "
                                             "until it can", self.outbox.path, exc, MEMORY_BUFFER_POINTS)
            return Saved.IN_MEMORY
        self.memory_full.ended("the memory buffer is no longer full")
        self.outbox_failing.ended("the outbox is writable again; saved %d reading(s) kept in memory",
                                  len(batch) - len(points))
        lost = dropped.dropped_for_count + dropped.dropped_for_age
        if lost:
            self.stats.add("outbox_dropped", lost)
            self.outbox_bound.occurred("outbox bound reached: dropped the %d oldest point(s) "
                                       "(max_points %d, max_age %s; %d dropped in all)", lost, self.outbox.max_points,
                                       f"{self.outbox.max_age_ns / 1e9:g}s" if self.outbox.max_age_ns else "none",
                                       self.stats.get("outbox_dropped"))
        else:
            self.outbox_bound.ended("the outbox is within its bounds again")
        if self.sender is not None and batch:
            self.sender.wake.set()
        return Saved.DURABLE

    @staticmethod
    def _too_late(points: Points) -> Saved:
        log.debug("dropped %d point(s) of a read that ended after the shutdown: %s", len(points),
                  ", ".join(r.sensor for r in map(point_reading, points) if r) or "health")
        return Saved.DROPPED

    def heartbeat(self, tick_ns: int) -> None:
        """Tell `templog health` the loop is alive (with its tick's commit); also retry saving readings kept in
        memory, and log the end of a flapping condition once it is due."""
        try:
            if self.unsaved:
                self.commit([])
            for condition in (self.before_floor, self.sensor_trouble, self.outbox_failing, self.memory_full,
                              self.outbox_bound):
                condition.flush()
            mqtt_state = self.mqtt.health_state() if self.mqtt else {"mqtt_down_since_ns": 0}  # 0: none down
            self.outbox.stage_state(heartbeat_ns=self.clock(), **mqtt_state)
        finally:
            self.ticks.submit(tick_ns, [])

    def write_health(self, tick_ns: int) -> None:
        points: Points = []
        try:
            if not self.before_time_floor(tick_ns):
                tags = {"host": self.config.host, **self.config.collector.tags}
                points = health_points(self.stats, tags, [s.config.name for s in self.slots],
                                       self.outbox.depth + len(self.unsaved), self.outbox.oldest_time_ns(),
                                       self.clock(), self.started_ns, tick_ns)
                if self.sender is not None:  # before the commit, whose wake-up starts the attempt that writes it
                    self.sender.offer_live(points[0].line())  # the collector's own point, with the outbox depth
        except (sqlite3.Error, OSError) as exc:  # the outbox failing: its own condition says so, the thread lives on
            log.debug("health not recorded: %s", exc)
        finally:
            self.ticks.submit(tick_ns, points)

    def _refuse(self, slot: SensorSlot, counter: str, kind: str, message: str) -> None:
        name = slot.config.name
        self.stats.add(counter, sensor=name)
        self.sensor_trouble[(name, kind)].occurred("%s: %s", name, message)
        if kind == HUMIDITY_TROUBLE:
            slot.humidity_troubled = True
        else:
            slot.troubled = True

    def run(self, stop: threading.Event) -> None:
        """Tick until `stop` is set, then let reads in flight finish and try one last delivery, within SHUTDOWN_S of
        the request (a StopRequest's time; a plain Event's: when the loop sees it)."""
        sender_thread = None
        if self.sender is not None:
            sender_thread = threading.Thread(target=self.sender.run, args=(stop,), name="sender", daemon=True)
            sender_thread.start()
        log.info("collecting %d sensor(s); outbox %s holds %d point(s)", len(self.slots), self.outbox.path,
                 self.outbox.depth)
        self.outbox.put_state(started_ns=self.started_ns, heartbeat_ns=self.started_ns, stopped_ns=0)
        while not stop.is_set():
            with self.ticks.holding():  # a tick's reads all expected before its commit can be complete
                self.scheduler.run_pending()
            wait = min(max(self.scheduler.idle_seconds or 1.0, 0.0), 1.0)
            recheck = self.lane.check()  # a lane read overrunning its budget: its sensor moves off the lane
            if recheck is not None:
                wait = min(wait, max(recheck - self.read_clock(), 0.0))
            stop.wait(wait)
        if isinstance(stop, StopRequest):
            log.info("%s, stopping", stop.reason or "stop requested")  # here, not in the signal handler: see cli.py
            deadline = stop.deadline(SHUTDOWN_S)
        else:
            deadline = time.monotonic() + SHUTDOWN_S
        self.shutdown(sender_thread, deadline)

    def shutdown(self, sender_thread: threading.Thread | None, deadline: float) -> None:
        """Let reads in flight finish (within their timeout), then try one last delivery, all by the monotonic
        `deadline`; whatever is not delivered by then waits in the outbox."""
        self.scheduler.clear()
        self.stopping.set()
        self.commit_readings(self.lane.stop())  # read on the lane, not yet handed to a commit
        reads_deadline = min(deadline, time.monotonic() + max(s.config.timeout for s in self.slots))
        for slot in self.slots:  # the lane's idle again once the lane ended; a sensor's own reader, once it read
            if not slot.idle.wait(max(0.0, reads_deadline - time.monotonic())):
                log.warning("%s: read still running at shutdown, abandoned", slot.config.name)
            slot.go.set()  # idle readers see `stopping` and end
        for thread in self.housekeeping:  # their points and state belong to their ticks' commits
            thread.join(max(0.0, reads_deadline - time.monotonic()))
        self.ticks.close()  # every tick's commit now, complete or not: no read in flight is waited for any longer
        if self.unsaved:
            self.commit([])
        if self.unsaved:
            log.error("exiting with %d reading(s) that could not be saved to the outbox", len(self.unsaved))
        if self.sender is not None:
            self._last_delivery(self.sender, sender_thread, deadline)
        try:
            self.outbox.put_state(stopped_ns=self.clock())  # `health`: unhealthy at once, not once the heartbeat is old
        except (sqlite3.Error, OSError) as exc:
            log.debug("stop not recorded: %s", exc)
        log.info("stopped; %d point(s) wait in the outbox", self.outbox.depth)
        self.stopped.set()

    def _last_delivery(self, sender: Sender, sender_thread: threading.Thread | None, deadline: float) -> None:
        """One last drain, on a thread of its own so that a write hanging on the wire cannot hold up the exit."""
        sender.wake.set()
        if sender_thread is not None:  # `stop` is set: it ends between batches, or at once if waiting to retry
            sender_thread.join(max(0.0, deadline - time.monotonic()))
            if sender_thread.is_alive():
                log.warning("a write to InfluxDB was still in flight at shutdown, abandoned; "
                            "its points wait in the outbox")
                sender.close()
                return
        last = threading.Thread(target=sender.last_drain, args=(deadline,), name="last delivery", daemon=True)
        last.start()
        last.join(max(0.0, deadline - time.monotonic()))
        if last.is_alive():
            log.warning("last delivery before exit cut short at the shutdown deadline (%gs after the stop request); "
                        "the points not delivered wait in the outbox", SHUTDOWN_S)
            sender.close()  # its write still hangs: the outbox worker must not wait for it at exit


READ_TROUBLES = ("error", "bug", "slow", "refused")  # the kinds of trouble a read can have, each its own condition
HUMIDITY_TROUBLE = "humidity"  # a reading kept without its humidity: ended by the next reading with one


def _names(slots: list[SensorSlot]) -> str:
    """The sensors of one interval, for a log line: a few names and how many more."""
    names = [slot.config.name for slot in slots[:3]]
    return ", ".join(names) + (f" and {len(slots) - 3} more" if len(slots) > 3 else "")


def point_tags(config: Config, sensor: SensorConfig) -> dict[str, str]:
    """host, then the collector's tags, then the sensor's tags; the `sensor` tag is always the sensor's name."""
    return {"host": config.host, **config.collector.tags, **sensor.tags, "sensor": sensor.name}


