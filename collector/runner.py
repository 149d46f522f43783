"""The collector loop: the scheduler fires each sensor's ticks, reads run on worker threads, accepted readings are
committed to the outbox, and the sender thread delivers them.

    sensor -> Reading (plausible only) -> outbox (committed) -> sender -> InfluxDB
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from collector.config import Config, SensorConfig
from collector.delivery import Sender
from collector.lineprotocol import MEASUREMENT, series_key, temperature_line
from collector.outbox import Outbox
from collector.readings import Reading, implausible
from collector.scheduling import Clock, WallClockScheduler
from collector.sensors import Sensor, SensorError
from collector.stats import Stats

log = logging.getLogger("templog")


@dataclass
class _SensorSlot:
    config: SensorConfig
    sensor: Sensor
    key: str  # the line-protocol series key, rendered once
    in_flight: threading.Thread | None = None  # daemon, so a read hanging forever cannot block exit
    in_flight_since: float = 0.0


class Collector:
    def __init__(self, config: Config, sensors: dict[str, Sensor], outbox: Outbox, sender: Sender | None,
                 clock: Clock = time.time_ns, stats: Stats | None = None):
        self.config, self.outbox, self.sender, self.clock = config, outbox, sender, clock
        self.stats = stats or Stats()
        self.slots = [_SensorSlot(c, sensors[c.name], series_key(MEASUREMENT, point_tags(config, c)))
                      for c in config.sensors]
        self.scheduler = WallClockScheduler(clock)
        for slot in self.slots:
            self.scheduler.every(slot.config.interval).do(self.on_tick, slot)

    def on_tick(self, slot: _SensorSlot, tick_ns: int, skipped: int) -> None:
        """On the scheduling thread: hand the read to a worker; never wait for it."""
        name = slot.config.name
        if skipped:
            self.stats.add("ticks_skipped", skipped)
            log.warning("%s: %d tick(s) skipped, the collector was not scheduled in time", name, skipped)
        if slot.in_flight is not None and slot.in_flight.is_alive():
            self.stats.add("ticks_skipped")
            log.warning("%s: tick %s skipped, the previous read is still running after %.1fs", name,
                        _iso(tick_ns), time.monotonic() - slot.in_flight_since)
            return
        slot.in_flight_since = time.monotonic()
        slot.in_flight = threading.Thread(target=self.read, args=(slot, tick_ns), name=f"read {name}", daemon=True)
        slot.in_flight.start()

    def read(self, slot: _SensorSlot, tick_ns: int) -> Reading | None:
        """On a worker thread: read, check, commit. Anything refused is logged and counted, never written."""
        config = slot.config
        started = time.monotonic()
        try:
            celsius = slot.sensor.read_celsius()
        except SensorError as exc:
            return self._refuse(config.name, "reads_failed", f"read failed: {exc}")
        except Exception as exc:  # a sensor bug must not stop the collector
            log.exception("%s: unexpected error while reading", config.name)
            return self._refuse(config.name, "reads_failed", f"read failed: {type(exc).__name__}: {exc}")
        elapsed = time.monotonic() - started
        if elapsed > config.timeout:
            return self._refuse(config.name, "reads_failed",
                                f"read took {elapsed:.1f}s, over the {config.timeout:g}s timeout; value discarded")
        reason = implausible(celsius, config.valid_min, config.valid_max)
        if reason:
            return self._refuse(config.name, "readings_refused", f"reading refused: {reason}")
        reading = Reading(config.name, tick_ns, float(celsius))
        self.commit(reading, temperature_line(slot.key, reading.celsius, tick_ns))
        self.stats.add("reads_ok")
        log.info("%s: %.2f °C at %s", config.name, reading.celsius, _iso(tick_ns))
        return reading

    def commit(self, reading: Reading | None, line: str) -> None:
        dropped = self.outbox.append([(reading, line)])
        if dropped.dropped_for_count or dropped.dropped_for_age:
            self.stats.add("outbox_dropped", dropped.dropped_for_count + dropped.dropped_for_age)
            log.warning("outbox full: dropped the %d oldest point(s) (max_points %d, max_age %gs)",
                        dropped.dropped_for_count + dropped.dropped_for_age, self.outbox.max_points,
                        self.outbox.max_age_ns / 1e9)
        if self.sender is not None:
            self.sender.wake.set()

    def _refuse(self, name: str, counter: str, message: str) -> None:
        self.stats.add(counter)
        self.stats.add(f"{counter}.{name}")
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
        while not stop.is_set():
            self.scheduler.run_pending()
            stop.wait(min(max(self.scheduler.idle_seconds or 1.0, 0.0), 1.0))
        self.shutdown(sender_thread)

    def shutdown(self, sender_thread: threading.Thread | None) -> None:
        self.scheduler.clear()
        deadline = time.monotonic() + max(s.config.timeout for s in self.slots)
        for slot in self.slots:
            if slot.in_flight is not None:
                slot.in_flight.join(timeout=max(0.0, deadline - time.monotonic()))
                if slot.in_flight.is_alive():
                    log.warning("%s: read still running at shutdown, abandoned", slot.config.name)
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
