"""The collector loop: the scheduler fires each sensor's ticks, reads run on worker threads, accepted readings are
committed to the outbox, and the sender thread delivers them.

    sensor -> Reading (plausible only) -> outbox (committed) -> sender -> InfluxDB

The loop also records a heartbeat, writes the `templog` health measurement, and, if the outbox cannot be
written (disk full, read-only), keeps readings in memory (bounded) until it can.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from collector.config import Config, SensorConfig
from collector.delivery import Sender
from collector.health import HEARTBEAT_S, health_lines
from collector.lineprotocol import MEASUREMENT, series_key, temperature_line
from collector.mqtt import MqttHub
from collector.outbox import Outbox
from collector.readings import Reading, implausible
from collector.scheduling import Clock, WallClockScheduler
from collector.sensors import MissingReading, Sensor, SensorError
from collector.stats import Stats

log = logging.getLogger("templog")

MEMORY_BUFFER_POINTS = 100_000  # readings held while the outbox cannot be written; beyond it the oldest go


@dataclass
class _SensorSlot:
    """A sensor and its own long-lived reader thread (a daemon, so a read hanging forever cannot block exit)."""

    config: SensorConfig
    sensor: Sensor
    key: str  # the line-protocol series key, rendered once
    reader: threading.Thread | None = None
    tick_ns: int = 0  # the tick the reader is asked to read
    go: threading.Event = field(default_factory=threading.Event)
    idle: threading.Event = field(default_factory=threading.Event)  # cleared by the scheduler, set by the reader
    busy_since: float = 0.0

    def __post_init__(self):
        self.idle.set()


class Collector:
    def __init__(self, config: Config, sensors: dict[str, Sensor], outbox: Outbox, sender: Sender | None,
                 clock: Clock = time.time_ns, stats: Stats | None = None, mqtt: MqttHub | None = None):
        self.config, self.outbox, self.sender, self.clock = config, outbox, sender, clock
        self.mqtt = mqtt  # its connection state goes into the heartbeat
        self.stats = stats or Stats()
        self.started_ns = clock()
        self.time_floor_ns = config.collector.time_floor_ns
        self.before_floor_logged = False
        self.unsaved: deque[tuple[Reading | None, str]] = deque()
        self.commit_lock = threading.Lock()
        self.outbox_failing = False
        self.stopping = threading.Event()
        self.slots = [_SensorSlot(c, sensors[c.name], series_key(MEASUREMENT, point_tags(config, c)))
                      for c in config.sensors]
        self.scheduler = WallClockScheduler(clock)
        for slot in self.slots:
            self.scheduler.every(slot.config.interval).do(self.on_tick, slot)
        self.scheduler.every(HEARTBEAT_S).do(self.in_background, self.heartbeat)
        self.scheduler.every(config.collector.health_interval).do(self.in_background, self.write_health)

    def before_time_floor(self, tick_ns: int) -> bool:
        """True (logged once per episode, counted) while the clock is before the floor: such stamps would be lies."""
        if tick_ns >= self.time_floor_ns:
            if self.before_floor_logged:
                log.info("the clock is past %s again; reading resumed", self.config.collector.time_floor)
                self.before_floor_logged = False
            return False
        self.stats.add("ticks_before_time_floor")
        if not self.before_floor_logged:
            log.error("the system clock says %s, before %s (collector.time_floor): not reading until the clock is set",
                      _iso(tick_ns), self.config.collector.time_floor)
            self.before_floor_logged = True
        return True

    def on_tick(self, slot: _SensorSlot, tick_ns: int, skipped: int) -> None:
        """On the scheduling thread: hand the read to a worker; never wait for it."""
        name = slot.config.name
        if skipped:
            self.stats.add("ticks_skipped", skipped, sensor=name)
            log.warning("%s: %d tick(s) skipped, the collector was not scheduled in time", name, skipped)
        if self.before_time_floor(tick_ns):
            return
        if not slot.idle.is_set():
            self.stats.add("ticks_skipped", sensor=name)
            log.warning("%s: tick %s skipped, the previous read is still running after %.1fs", name,
                        _iso(tick_ns), time.monotonic() - slot.busy_since)
            return
        slot.idle.clear()
        slot.busy_since, slot.tick_ns = time.monotonic(), tick_ns
        if slot.reader is None:
            slot.reader = threading.Thread(target=self._reader_loop, args=(slot,), name=f"read {name}", daemon=True)
            slot.reader.start()
        slot.go.set()

    def _reader_loop(self, slot: _SensorSlot) -> None:
        while True:
            slot.go.wait()
            slot.go.clear()
            if self.stopping.is_set():
                return
            try:
                self.read(slot, slot.tick_ns)
            finally:
                slot.idle.set()

    def in_background(self, job: Callable[[int], None], tick_ns: int, skipped: int) -> None:
        """Run a housekeeping job off the scheduling thread, so its fsync never delays a sensor's tick."""
        threading.Thread(target=job, args=(tick_ns,), name=job.__name__, daemon=True).start()

    def read(self, slot: _SensorSlot, tick_ns: int) -> Reading | None:
        """On a worker thread: read, check, commit. Anything refused is logged and counted, never written."""
        config = slot.config
        started = time.monotonic()
        try:
            celsius = slot.sensor.read_celsius()
        except MissingReading as exc:
            self.stats.add("readings_missing", sensor=config.name)
            log.debug("%s: %s", config.name, exc)
            return None
        except SensorError as exc:
            return self._refuse(config.name, "reads_failed", f"read failed: {exc}")
        except Exception as exc:  # a sensor bug must not stop the collector
            log.exception("%s: unexpected error while reading", config.name)
            return self._refuse(config.name, "reads_failed", f"read failed: {type(exc).__name__}: {exc}")
        elapsed = time.monotonic() - started
        self.stats.observe_latency(config.name, elapsed)
        if elapsed > config.timeout:
            return self._refuse(config.name, "reads_failed",
                                f"read took {elapsed:.1f}s, over the {config.timeout:g}s timeout; value discarded")
        reason = implausible(celsius, config.valid_min, config.valid_max)
        if reason:
            return self._refuse(config.name, "readings_refused", f"reading refused: {reason}")
        reading = Reading(config.name, tick_ns, float(celsius))
        self.commit([(reading, temperature_line(slot.key, reading.celsius, tick_ns))])
        self.stats.add("reads_ok", sensor=config.name)
        log.info("%s: %.2f °C at %s", config.name, reading.celsius, _iso(tick_ns))
        return reading

    def commit(self, points: list[tuple[Reading | None, str]]) -> None:
        """Commit points (with any kept in memory before them) to the outbox; if it fails, keep them in memory."""
        with self.commit_lock:  # only to take what memory holds: the appends themselves run concurrently (group commit)
            batch = [*self.unsaved, *points]
            self.unsaved.clear()
        try:
            dropped = self.outbox.append(batch)
        except (sqlite3.Error, OSError) as exc:
            with self.commit_lock:
                self.unsaved.extendleft(reversed(batch))
                overflow = len(self.unsaved) - MEMORY_BUFFER_POINTS
                for _ in range(max(0, overflow)):
                    self.unsaved.popleft()
                if overflow > 0:
                    self.stats.add("outbox_dropped", overflow)
                    log.error("memory buffer full: dropped the %d oldest reading(s) not yet saved", overflow)
                self.stats.add("outbox_write_failures")
                if not self.outbox_failing:
                    log.error("cannot write the outbox %s: %s; keeping readings in memory (at most %d) until it can",
                              self.outbox.path, exc, MEMORY_BUFFER_POINTS)
                self.outbox_failing = True
            return
        with self.commit_lock:
            if self.outbox_failing:
                log.info("the outbox is writable again; saved %d reading(s) kept in memory", len(batch) - len(points))
                self.outbox_failing = False
        lost = dropped.dropped_for_count + dropped.dropped_for_age
        if lost:
            self.stats.add("outbox_dropped", lost)
            log.warning("outbox bound reached: dropped the %d oldest point(s) (max_points %d, max_age %s)", lost,
                        self.outbox.max_points, f"{self.outbox.max_age_ns / 1e9:g}s" if self.outbox.max_age_ns else "none")
        if self.sender is not None:
            self.sender.wake.set()

    def heartbeat(self, tick_ns: int) -> None:
        """Tell `templog health` the loop is alive; also retry saving readings kept in memory."""
        if self.unsaved:
            self.commit([])
        try:
            mqtt_state = self.mqtt.health_state() if self.mqtt else {"mqtt_down_since_ns": 0}  # 0: none down
            self.outbox.put_state(heartbeat_ns=self.clock(), **mqtt_state)
        except (sqlite3.Error, OSError) as exc:
            log.debug("heartbeat not recorded: %s", exc)

    def write_health(self, tick_ns: int) -> None:
        if self.before_time_floor(tick_ns):
            return
        tags = {"host": self.config.host, **self.config.collector.tags}
        lines = health_lines(self.stats, tags, [s.config.name for s in self.slots], self.outbox.depth + len(self.unsaved),
                             self.outbox.oldest_time_ns(), self.clock(), self.started_ns, tick_ns)
        self.commit([(None, line) for line in lines])

    def _refuse(self, name: str, counter: str, message: str) -> None:
        self.stats.add(counter, sensor=name)
        log.warning("%s: %s", name, message)
        return None

    def run(self, stop: threading.Event) -> None:
        """Tick until `stop` is set, then let reads in flight finish and try one last delivery."""
        sender_thread = None
        if self.sender is not None:
            sender_thread = threading.Thread(target=self.sender.run, args=(stop,), name="sender", daemon=True)
            sender_thread.start()
        log.info("collecting %d sensor(s); outbox %s holds %d point(s)", len(self.slots), self.outbox.path,
                 self.outbox.depth)
        self.outbox.put_state(started_ns=self.started_ns, heartbeat_ns=self.started_ns)
        while not stop.is_set():
            self.scheduler.run_pending()
            stop.wait(min(max(self.scheduler.idle_seconds or 1.0, 0.0), 1.0))
        self.shutdown(sender_thread)

    def shutdown(self, sender_thread: threading.Thread | None) -> None:
        self.scheduler.clear()
        self.stopping.set()
        deadline = time.monotonic() + max(s.config.timeout for s in self.slots)
        for slot in self.slots:  # let reads in flight finish within their timeout
            if not slot.idle.wait(max(0.0, deadline - time.monotonic())):
                log.warning("%s: read still running at shutdown, abandoned", slot.config.name)
            slot.go.set()  # idle readers see `stopping` and end
        if self.unsaved:
            self.commit([])
        if self.unsaved:
            log.error("exiting with %d reading(s) that could not be saved to the outbox", len(self.unsaved))
        if self.sender is not None:
            self.sender.wake.set()
            if sender_thread is not None:
                sender_thread.join(timeout=30)
            try:
                self.sender.drain(deadline=time.monotonic() + 30)
            except Exception as exc:
                log.warning("last delivery before exit failed, %d point(s) stay in the outbox for the next start: %s",
                            self.outbox.depth, exc)
        log.info("stopped; %d point(s) wait in the outbox", self.outbox.depth)


def point_tags(config: Config, sensor: SensorConfig) -> dict[str, str]:
    """host, then the collector's tags, then the sensor's tags; the `sensor` tag is always the sensor's name."""
    return {"host": config.host, **config.collector.tags, **sensor.tags, "sensor": sensor.name}


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
