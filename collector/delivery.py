"""The sender: drains the outbox oldest first, in batches, and deletes only what InfluxDB acknowledged.

Failures never lose points: retryable ones (network, 429, 5xx, auth, missing bucket) wait with exponential backoff
and jitter, honouring Retry-After (for 429/5xx the delay is capped, see ANSWERED_BUSY_CAP_S); a batch InfluxDB
refuses as malformed (400) or too large (413) is split until the offending point is isolated and set aside, so its
neighbours flow on.

When InfluxDB did not answer at all, a long backoff would leave delivery idle for minutes after it is back: so
between such backed-off writes the sender probes it (/ping) every few seconds, and retries at once when it
answers. A failure episode is logged when it starts, every 10 minutes while it lasts, and when it ends; a
backlog, once delivered, in one line.

The live lane: the collector's health points wait in the same FIFO outbox as the readings, so while a backlog
waits InfluxDB would see only old ones. So each delivery attempt behind a backlog first writes a copy of the newest
health point (`offer_live`); whenever InfluxDB takes anything, Grafana sees the current outbox depth. Its FIFO
copy is delivered in turn, which is harmless: the same series and timestamp.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Protocol

from collector.influx.errors import (
    Expired,
    InfluxError,
    LimitReached,
    PartialWrite,
    Rejected,
    RetentionUnsupported,
    ServerError,
    Throttled,
    TooLarge,
    Unauthorized,
    Unreachable,
    UnusableToken,
)
from collector.logs import RepeatingByKey
from collector.outbox import Batch, Outbox
from collector.stats import Stats
from collector.ticks import utc_text

log = logging.getLogger("templog.delivery")

PROBE_EVERY_S = 3.0  # between backed-off writes: InfluxDB answering again is noticed within this, plus a probe
PROBE_TIMEOUT_S = 2.0
NO_ANSWER_STATUSES = (502, 504)  # a gateway in front of InfluxDB answered for it: InfluxDB itself did not
# last_delivery_ns, at most this often: `health` judges a stall after minutes, and a state row changed at every
# tick would add a page to each tick's commit
RECORD_DELIVERY_EVERY_S = 10.0
# InfluxDB answering 429/5xx is up, and answers again without notice (a /ping would answer all along): only a write
# tells, so for these the delay stays short, 4-8 s with jitter, for delivery to resume within 10 s of writes being
# taken again, at one request per several seconds.
ANSWERED_BUSY_CAP_S = 8.0
PURGE_FOR_S = 0.2  # of each idle second, at most this deleting a delivered backlog from the outbox
# A Retry-After is honoured up to this: a server's hint, not a licence to leave delivery idle for an hour.
RETRY_AFTER_CAP_S = 60.0
# Failures retention is retried on with delivery (they fail the writes too, and pass); any other is a refusal.
RETENTION_RETRIED = (Unreachable, Unauthorized, UnusableToken, ServerError, Throttled)


class Writer(Protocol):
    def write(self, lines: list[str]) -> None: ...
    def ensure_retention(self) -> str: ...
    def probe(self, timeout: float) -> bool:
        """True if InfluxDB answers a cheap request (/ping) within `timeout` seconds; never raises."""


class Backoff:
    """Exponential backoff with equal jitter: half the delay fixed, half random, so many collectors spread out."""

    def __init__(self, base: float = 1.0, cap: float = 120.0, rng: Callable[[], float] = random.random):
        self.base, self.cap, self.rng = base, cap, rng

    def delay(self, failures: int, retry_after: float | None = None, cap: float | None = None) -> float:
        """The wait before attempt `failures` + 1; `cap` lowers the usual cap (never raises it)."""
        ceiling = self.cap if cap is None else min(cap, self.cap)
        # the exponent is capped: a day-long outage must not overflow
        exponential = min(ceiling, self.base * 2 ** min(max(0, failures - 1), 32))
        jittered = exponential / 2 + self.rng() * exponential / 2
        if retry_after is not None:
            return max(jittered, min(retry_after, RETRY_AFTER_CAP_S))
        return jittered


class Sender:
    def __init__(self, outbox: Outbox, writer: Writer, batch_size: int, stats: Stats,
                 backoff: Backoff | None = None, linger_s: float = 0.0,
                 log_clock: Callable[[], float] = time.monotonic):
        self.outbox, self.writer, self.batch_size, self.stats = outbox, writer, batch_size, stats
        self.backoff = backoff or Backoff()
        self.wake = threading.Event()
        self.linger_s = linger_s
        self._outbox_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-worker")
        self.retention_applied = False
        self.failures = 0  # consecutive failed attempts
        self.failing_with: tuple | None = None  # (kind, status) of the current failure episode
        # one per (kind, status); each outage's end is news (the backlog line pairs with it): never merged as flapping
        self.episodes = RepeatingByKey(log, logging.ERROR, clock=log_clock, merge_flapping=False)
        self.backlog: tuple[int, int] | None = None  # (oldest waiting point's time, points_delivered when it began)
        self._delivery_recorded_at = 0.0  # time.monotonic() of the last last_delivery_ns recorded
        self._live: str | None = None  # the newest health point not yet written ahead of a backlog
        self._in_backlog = False  # this drain delivers a backlog: its deletions are committed as it goes

    def offer_live(self, line: str) -> None:
        """The collector's newest health point (its own copy is committed to the outbox): the next delivery attempt
        writes it ahead of a waiting backlog. Called from the collector's thread; a newer point replaces an older."""
        self._live = line

    def drain(self, deadline: float | None = None, stop: threading.Event | None = None) -> int:
        """Deliver until the outbox is empty (or the monotonic deadline passes); raise InfluxError if InfluxDB
        won't take it.

        While one batch is on the wire, a second thread deletes the batch before it (already acknowledged by
        InfluxDB) and reads the next, so the database work overlaps the network wait.
        """
        delivered = 0
        taken: list[Batch] = []  # delivered whole, to delete from the outbox alongside the next send
        batch: Batch | None = self.outbox.oldest(self.batch_size)
        self._in_backlog = self.failing_with is not None  # what waited through a failure episode is a backlog
        try:
            while batch and (deadline is None or time.monotonic() < deadline) and not (stop and stop.is_set()):
                done, taken = taken, []
                self._in_backlog = self._in_backlog or bool(done) or _spans_ticks(batch)
                ahead = self._outbox_worker.submit(self._acknowledge_then_read, done, batch.ids[-1])
                try:
                    self._send_live()
                    delivered += self._deliver(batch, taken.append)
                finally:
                    following = ahead.result()
                batch = following
        finally:
            self._acknowledge_then_read(taken, None)
        if not batch and self.failing_with is None:  # emptied by its bounds during an outage is no delivered backlog
            self._backlog_delivered()
        return delivered

    def _send_live(self) -> None:
        """Write the newest health point ahead of a waiting backlog (a failure episode, or more than a batch waits;
        otherwise it goes with the next batch anyway). Nothing is acknowledged. InfluxDB not answering fails the
        attempt, as the batch would, and the point is not offered again: were only small writes unanswered, it would
        hold the backlog back at every attempt. Any answer that refuses it is left to the FIFO copy's delivery."""
        line, self._live = self._live, None
        if line is None or (self.failing_with is None and self.outbox.depth <= self.batch_size):
            return
        try:
            self.writer.write([line])
        except InfluxError as exc:
            if _no_answer(exc):
                raise
            log.debug("the live health point was not taken (its outbox copy follows in turn): %s", exc)

    def _acknowledge_then_read(self, delivered: list[Batch], after_id: int | None) -> Batch | None:
        """Mark what InfluxDB took as delivered and read the batch after `after_id` (None: the drain is over).

        The deletion is lazy: a tick's goes to disk with the next tick's commit (one fsync a tick, not two). Within a
        backlog (more batches follow or went before, a batch spans several ticks, or the drain ends a failure
        episode) how far delivery got is
        committed here, while the next batch is on the wire (a small transaction: the outbox's state row and a slice
        of the deletions, see Outbox.delivered): `health` in another process sees the backlog shrink, and a kill
        re-sends at most a batch or two. The rest is deleted in the sender's idle time."""
        for batch in delivered:
            self.outbox.delivered(batch)
            self.stats.add("points_delivered", len(batch))
        if delivered and time.monotonic() - self._delivery_recorded_at >= RECORD_DELIVERY_EVERY_S:
            self._record(last_delivery_ns=time.time_ns())  # so `health` sees a long drain progress
            self._delivery_recorded_at = time.monotonic()
        if delivered and (after_id is not None or self._in_backlog):
            self.outbox.write_pending()
        return None if after_id is None else self.outbox.oldest(self.batch_size, after_id)

    def _deliver(self, batch: Batch, taken: Callable[[Batch], None] | None = None) -> int:
        """Send one batch; `taken` (default: acknowledge now) is called with it if InfluxDB took it whole."""
        try:
            self.writer.write(batch.lines)
        except InfluxError as exc:
            if isinstance(exc, Expired) and (len(batch) == 1 or exc.dropped == len(batch)):
                # all of it had outlived the retention: InfluxDB would never keep it, so it is done
                self.outbox.acknowledge(batch)
                self.stats.add("points_beyond_retention", len(batch))
                log.warning("InfluxDB dropped %d point(s) older than its retention: %s", len(batch), exc)
                self._answered()
                return 0
            if isinstance(exc, PartialWrite):  # InfluxDB 3 kept all but the lines it names: nothing is re-sent
                delivered = self._partly_taken(batch, exc.rejected, len(batch), taken)
                self._answered()
                return delivered
            if isinstance(exc, LimitReached) and exc.limited is not None:
                # what came before the first line the limit refused is kept: the rest is retried (re-sending what
                # InfluxDB kept after it is harmless), as the lines refused for good are set aside
                self._partly_taken(batch, exc.rejected, min(exc.limited, default=len(batch)), None)
                raise
            if isinstance(exc, (Rejected, TooLarge)):  # the message may hide a malformed point (Expired too): isolate
                return self._isolate(batch, exc)
            raise
        self._answered()
        if taken is None:
            self._acknowledge_then_read([batch], None)
        else:
            taken(batch)
        return len(batch)

    def _partly_taken(self, batch: Batch, rejected: dict[int, str], upto: int,
                      taken: Callable[[Batch], None] | None) -> int:
        """InfluxDB stored the batch's points but those at the indexes of `rejected`: set them aside, and deliver
        the others before index `upto` (`taken` as for _deliver); how many were delivered."""
        for index in sorted(rejected):
            self._set_aside(batch, index, rejected[index])
        kept = [i for i in range(upto) if i not in rejected]
        stored = Batch([batch.ids[i] for i in kept], [batch.lines[i] for i in kept], [batch.times[i] for i in kept])
        if taken is None:
            self._acknowledge_then_read([stored], None)
        else:
            taken(stored)
        return len(stored)

    def _set_aside(self, batch: Batch, index: int, why: str) -> None:
        """The point at `index` refused for good: into the outbox's rejected table, counted and logged."""
        self.outbox.set_aside(batch[index], why)
        self.stats.add("points_rejected")
        log.error("InfluxDB refused a point, set aside in the outbox's rejected table: %s (%s)",
                  batch.lines[index][:200], why)

    def _isolate(self, batch: Batch, exc: InfluxError) -> int:
        """Split a refused batch in halves until the bad points stand alone; set those aside, deliver the rest.
        Re-sending the halves is harmless: InfluxDB keeps one point per series and timestamp."""
        if len(batch) == 1:
            self._set_aside(batch, 0, str(exc))
            self._answered()
            return 0
        middle = len(batch) // 2
        return self._deliver(batch[:middle]) + self._deliver(batch[middle:])

    def last_drain(self, deadline: float) -> None:
        """Shutdown's last delivery, until the monotonic `deadline` (checked between batches); what it leaves
        waits in the outbox for the next start."""
        try:
            if self.drain(deadline=deadline):
                self._record(last_delivery_ns=time.time_ns())
        except Exception as exc:
            log.warning("last delivery before exit failed, %d point(s) stay in the outbox for the next start: %s",
                        self.outbox.depth, exc)
        finally:
            self.close()

    def close(self) -> None:
        """End the outbox worker without waiting: its thread is not a daemon, and the interpreter joins it at exit."""
        self._outbox_worker.shutdown(wait=False, cancel_futures=True)

    def apply_retention(self) -> None:
        """Set the configured retention. A failure the writes share (no answer, bad token, 5xx, 429) is raised and
        retried with delivery; a definite refusal is logged once and delivery goes ahead: retention is tried
        again at the next start, not on a timer, as InfluxDB's answer would not change meanwhile."""
        try:
            log.info("retention: %s", self.writer.ensure_retention())
        except RetentionUnsupported as exc:
            log.warning("retention not managed, writing anyway: %s", exc)
        except InfluxError as exc:
            if isinstance(exc, RETENTION_RETRIED):
                raise
            self._retention_refused(exc)
        except Exception as exc:  # e.g. a proxy's page where JSON was expected
            self._retention_refused(f"{type(exc).__name__}: {exc}")
        self.retention_applied = True

    def _retention_refused(self, why: object) -> None:
        log.error("setting the retention (influxdb.retention) was refused, delivering anyway; it is tried again at "
                  "the next start: %s", why)

    def run(self, stop: threading.Event, clock=time.time_ns) -> None:
        """Deliver until `stop` is set: the sender thread's body."""
        if self.outbox.depth:  # left by the last run, or by an outage of the collector itself
            self._backlog_began(clock)
        while not stop.is_set():
            try:
                if not self.retention_applied:
                    self.apply_retention()
                # stops between batches on SIGTERM: shutdown tries one last drain itself
                if self.drain(stop=stop) and time.monotonic() - self._delivery_recorded_at >= RECORD_DELIVERY_EVERY_S:
                    self._record(last_delivery_ns=clock())
                    self._delivery_recorded_at = time.monotonic()
            except Exception as exc:  # whatever happens, the sender thread must live on and retry
                if stop.is_set():  # a write cut short by shutdown is not news: the points wait in the outbox
                    log.debug("delivery stopped by shutdown: %s", exc)
                    return
                self._failed(exc, clock)
                retry_after = getattr(exc, "retry_after", None)
                busy = isinstance(exc, (ServerError, Throttled))
                delay = self.backoff.delay(self.failures, retry_after, cap=ANSWERED_BUSY_CAP_S if busy else None)
                self._pause(delay, stop, probe=retry_after is None and _no_answer(exc))
                continue
            self._purge_while_idle(stop)
            if self.wake.wait(1.0) and self.linger_s:
                stop.wait(self.linger_s)  # let the rest of the tick's readings arrive: one request, not one per point
            self.wake.clear()

    def _purge_while_idle(self, stop: threading.Event) -> None:
        """Delete the delivered backlog still in the outbox, a slice a commit, for at most PURGE_FOR_S at a time:
        the next tick's delivery waits no longer."""
        until = time.monotonic() + PURGE_FOR_S
        try:
            while not stop.is_set() and time.monotonic() < until and self.outbox.purge():
                pass
        except (sqlite3.Error, OSError) as exc:  # the next commit tries again; the sender thread lives on
            log.debug("delivered points not deleted yet: %s", exc)

    def _failed(self, exc: Exception, clock) -> None:
        """Count a failed attempt; log it as its episode's rule says (start, every 10 minutes, end)."""
        self.failures += 1
        kind = exc.kind if isinstance(exc, InfluxError) else "outbox" if isinstance(exc, sqlite3.Error) else "other"
        self.stats.add(f"write_failures_{kind}")
        if self.backlog is None:
            self._backlog_began(clock)
        episode = (kind, getattr(exc, "status", None))
        message = str(exc) if isinstance(exc, InfluxError) else f"{type(exc).__name__}: {exc}"
        if episode != self.failing_with:
            if self.failing_with is not None:
                self.episodes[self.failing_with].ended("delivery to InfluxDB no longer fails with %s",
                                                       _describe(self.failing_with))
            self._record_now(last_delivery_error=message, last_delivery_error_ns=clock())
            self.failing_with = episode
        self.episodes[episode].occurred("delivery to InfluxDB failed, points wait in the outbox (%d now): %s",
                                        self.outbox.depth, message)

    def _answered(self) -> None:
        """InfluxDB answered a write (took it, or refused a point for good): a failure episode ends, and its error
        is no longer current."""
        if self.failing_with is None:
            return
        self.episodes[self.failing_with].ended("delivery resumed (it had failed with %s); %d point(s) to deliver",
                                               _describe(self.failing_with), self.outbox.depth)
        self.failures, self.failing_with = 0, None
        self._record_now(last_delivery_error="", last_delivery_error_ns="")

    def _backlog_began(self, clock) -> None:
        try:
            since = self.outbox.oldest_time_ns()
        except sqlite3.Error:  # the outbox failing is itself the failure being counted: the thread lives on
            since = None
        self.backlog = (clock() if since is None else since, self.stats.get("points_delivered"))

    def _backlog_delivered(self) -> None:
        if self.backlog is None:
            return
        since_ns, delivered_before = self.backlog
        self.backlog = None
        log.info("delivered a backlog of %d point(s), waiting since %s",
                 self.stats.get("points_delivered") - delivered_before, utc_text(since_ns))

    def _pause(self, seconds: float, stop: threading.Event, probe: bool) -> None:
        """Wait out a backoff delay, or until `stop`; with `probe`, end it as soon as InfluxDB answers again."""
        if not probe or seconds <= PROBE_EVERY_S:  # the retry comes as soon as a probe would
            stop.wait(seconds)
            return
        deadline = time.monotonic() + seconds
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= PROBE_EVERY_S:
                stop.wait(max(0.0, remaining))
                return
            if stop.wait(PROBE_EVERY_S):
                return
            if self._answers():
                log.debug("InfluxDB answers again: retrying now, %.0fs before the backoff would have", remaining)
                return

    def _answers(self) -> bool:
        try:
            return self.writer.probe(PROBE_TIMEOUT_S)
        except Exception as exc:  # a writer's bug must not end the sender thread
            log.debug("probe failed: %s: %s", type(exc).__name__, exc)
            return False

    def _record(self, **state: object) -> None:
        """Keep delivery state in the outbox for `templog health` and `check`, written with the next commit (a
        tick's); losing it must not stop delivery."""
        self.outbox.stage_state(**state)

    def _record_now(self, **state: object) -> None:
        """State that changes once an episode (a failure begins or ends): written at once, so that `health` and
        `check` tell it without waiting for the next tick; losing it must not stop delivery."""
        try:
            self.outbox.put_state(**state)
        except (sqlite3.Error, OSError) as exc:
            log.debug("delivery state not recorded: %s", exc)


def _spans_ticks(batch: Batch) -> bool:
    """More than one timestamp: a backlog, or ticks faster than the sender's linger (a tick's points share one)."""
    return batch.times[0] != batch.times[-1]


def _no_answer(exc: Exception) -> bool:
    """InfluxDB itself did not answer (refused, reset, timed out, or a gateway said so): worth probing for it."""
    return isinstance(exc, Unreachable) or (isinstance(exc, InfluxError) and exc.status in NO_ANSWER_STATUSES)


def _describe(episode: tuple) -> str:
    kind, status = episode
    return f"HTTP {status}" if status else f"{kind} errors"

