"""The sender: drains the outbox oldest first, in batches, and deletes only what InfluxDB acknowledged.

Failures never lose points: retryable ones (network, 429, 5xx, auth, missing bucket) wait with exponential
backoff and jitter, honouring Retry-After; a batch InfluxDB refuses as malformed (400) or too large (413) is
split until the offending point is isolated and set aside, so its neighbours flow on.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Protocol

from collector.influx.errors import EXPIRED, REJECTED, TOO_LARGE, RetentionUnsupported, WriteError
from collector.outbox import Batch, Outbox
from collector.stats import Stats

log = logging.getLogger("templog.delivery")


class Writer(Protocol):
    def write(self, lines: list[str]) -> None: ...
    def ensure_retention(self) -> str: ...


class Backoff:
    """Exponential backoff with equal jitter: half the delay fixed, half random, so many collectors spread out."""

    def __init__(self, base: float = 1.0, cap: float = 120.0, rng: Callable[[], float] = random.random):
        self.base, self.cap, self.rng = base, cap, rng

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        exponential = min(self.cap, self.base * 2 ** min(max(0, failures - 1), 32))  # a day-long outage must not overflow
        jittered = exponential / 2 + self.rng() * exponential / 2
        if retry_after is not None:
            return max(jittered, min(retry_after, 3600.0))
        return jittered


class Sender:
    def __init__(self, outbox: Outbox, writer: Writer, batch_size: int, stats: Stats,
                 backoff: Backoff | None = None, linger_s: float = 0.0):
        self.outbox, self.writer, self.batch_size, self.stats = outbox, writer, batch_size, stats
        self.backoff = backoff or Backoff()
        self.wake = threading.Event()
        self.linger_s = linger_s
        self._outbox_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-worker")
        self.retention_applied = False
        self.failing_with: tuple | None = None  # (kind, status) of the current failure episode

    def drain(self, deadline: float | None = None, stop: threading.Event | None = None) -> int:
        """Deliver until the outbox is empty (or the monotonic deadline passes); raise WriteError if InfluxDB won't take it.

        While one batch is on the wire, a second thread deletes the batch before it (already acknowledged by
        InfluxDB) and reads the next, so the database work overlaps the network wait.
        """
        delivered = 0
        taken: list[Batch] = []  # delivered whole, to delete from the outbox alongside the next send
        batch = self.outbox.oldest(self.batch_size)
        try:
            while batch and (deadline is None or time.monotonic() < deadline) and not (stop and stop.is_set()):
                done, taken = taken, []
                ahead = self._outbox_worker.submit(self._acknowledge_then_read, done, batch.ids[-1])
                try:
                    delivered += self._deliver(batch, taken.append)
                finally:
                    following = ahead.result()
                batch = following
        finally:
            self._acknowledge_then_read(taken, None)
        return delivered

    def _acknowledge_then_read(self, delivered: list[Batch], after_id: int | None) -> Batch | None:
        for batch in delivered:
            self.outbox.acknowledge(batch)
            self.stats.add("points_delivered", len(batch))
        return None if after_id is None else self.outbox.oldest(self.batch_size, after_id)

    def _deliver(self, batch: Batch, taken: Callable[[Batch], None] | None = None) -> int:
        """Send one batch; `taken` (default: acknowledge now) is called with it if InfluxDB took it whole."""
        try:
            self.writer.write(batch.lines)
        except WriteError as exc:
            if exc.kind == EXPIRED and (len(batch) == 1 or exc.dropped == len(batch)):
                # all of it had outlived the retention: InfluxDB would never keep it, so it is done
                self.outbox.acknowledge(batch)
                self.stats.add("points_beyond_retention", len(batch))
                log.warning("InfluxDB dropped %d point(s) older than its retention: %s", len(batch), exc)
                return 0
            if exc.kind in (EXPIRED, REJECTED, TOO_LARGE):  # the message may hide a malformed point: isolate
                return self._isolate(batch, exc)
            raise
        if taken is None:
            self._acknowledge_then_read([batch], None)
        else:
            taken(batch)
        return len(batch)

    def _isolate(self, batch: Batch, exc: WriteError) -> int:
        """Split a refused batch in halves until the bad points stand alone; set those aside, deliver the rest.
        Re-sending the halves is harmless: InfluxDB keeps one point per series and timestamp."""
        if len(batch) == 1:
            self.outbox.set_aside(batch[0], str(exc))
            self.stats.add("points_rejected")
            log.error("InfluxDB refused a point, set aside in the outbox's rejected table: %s (%s)",
                      batch.lines[0][:200], exc)
            return 0
        middle = len(batch) // 2
        return self._deliver(batch[:middle]) + self._deliver(batch[middle:])

    def apply_retention(self) -> None:
        try:
            log.info("retention: %s", self.writer.ensure_retention())
        except RetentionUnsupported as exc:
            log.warning("retention not managed, writing anyway: %s", exc)
        self.retention_applied = True

    def run(self, stop: threading.Event, clock=time.time_ns) -> None:
        """Deliver until `stop` is set: the sender thread's body."""
        failures = 0
        while not stop.is_set():
            try:
                if not self.retention_applied:
                    self.apply_retention()
                if self.drain(stop=stop):  # stops between batches on SIGTERM: shutdown tries one last drain itself
                    self._record(last_delivery_ns=clock())
            except Exception as exc:  # whatever happens, the sender thread must live on and retry
                failures += 1
                kind = exc.kind if isinstance(exc, WriteError) else "outbox" if isinstance(exc, sqlite3.Error) else "other"
                self.stats.add(f"write_failures_{kind}")
                episode = (kind, getattr(exc, "status", None))
                if episode != self.failing_with:  # one line per episode, not one per retry
                    message = str(exc) if isinstance(exc, WriteError) else f"{type(exc).__name__}: {exc}"
                    log.error("delivery to InfluxDB failed, points wait in the outbox (%d now): %s",
                              self.outbox.depth, message)
                    self._record(last_delivery_error=message, last_delivery_error_ns=clock())
                    self.failing_with = episode
                stop.wait(self.backoff.delay(failures, getattr(exc, "retry_after", None)))
                continue
            if failures:
                log.info("delivery resumed after %d failed attempt(s); outbox depth %d", failures, self.outbox.depth)
                failures, self.failing_with = 0, None
            if self.wake.wait(1.0) and self.linger_s:
                stop.wait(self.linger_s)  # let the rest of the tick's readings arrive: one request, not one per point
            self.wake.clear()

    def _record(self, **state: object) -> None:
        """Keep delivery state in the outbox for `templog health` and `check`; losing it must not stop delivery."""
        try:
            self.outbox.put_state(**state)
        except sqlite3.Error as exc:
            log.debug("delivery state not recorded: %s", exc)
