"""Where each sensor's reads run, so that a hanging sensor never delays the others and a fast one costs no thread
hand-off.

Sensors that answer fast share one lane: a thread that reads the due sensors one after another, then checks what
they read and hands it to the commit at once (the checks wait for the end of the pass: each would delay every
read behind it). A read that takes longer than LANE_BUDGET_S moves its sensor to a thread of its
own: the scheduler's watchdog (`SharedLane.check`) sees it still running, leaves that thread to it, and starts a
fresh lane thread for the sensors queued behind it, so they start at most the budget late. A sensor on its own
thread comes back to the lane after FAST_READS_TO_RETURN reads in a row within the budget. A sensor type that
waits by nature (a command's process, a DS18B20's conversion) says so with `OWN_THREAD = True` and is never on
the lane.

Measured (BENCHMARKS.md, section 8): a wake-up and wait round trip between two threads costs about 57 µs here,
more than a simulated sensor's read and its commit together; the lane pays it once per tick, not per sensor.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from collector.config_types import SensorConfig
from collector.lineprotocol import Series
from collector.logs import log_bug
from collector.read_check import Measured
from collector.sensors import Sensor

log = logging.getLogger("templog")

# A lane read slower than this moves its sensor to a thread of its own. Two of Python's 5 ms thread switch
# intervals, so that a read that only waited once for another thread's turn stays; a tenth of the shortest
# interval (100 ms), so that a hanging sensor delays the others by a small fraction of a tick.
LANE_BUDGET_S = 0.010
FAST_READS_TO_RETURN = 20  # reads in a row within the budget before a sensor moved off comes back


class Flag:
    """threading.Event's is_set, set, clear and wait, where set and clear cost an attribute store while nobody
    waits: the scheduler clears a flag per sensor before a tick's first read, and Event.clear takes a lock (0.4 µs
    each, 0.4 ms a tick for 1,000 sensors; Event.set, its notify included, 0.8 µs)."""

    __slots__ = ("_set", "_waiters", "_cond")

    def __init__(self) -> None:
        self._set = False
        self._waiters = 0  # changed with `_cond` held
        self._cond = threading.Condition(threading.Lock())

    def is_set(self) -> bool:
        return self._set

    def clear(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True
        if self._waiters:  # a waiter counts itself before it looks at the flag: it sees True, or it is woken here
            with self._cond:
                self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        with self._cond:
            self._waiters += 1
            try:
                return self._cond.wait_for(self.is_set, timeout)
            finally:
                self._waiters -= 1


@dataclass(eq=False, slots=True)  # slots: the hand-out and the lane touch a thousand of them a tick
class SensorSlot:
    """A sensor, where it is read, and whether a read of it is in flight."""

    config: SensorConfig
    sensor: Sensor
    series: Series  # of its points: rendered once
    own_thread: bool = False  # read on `reader`, not on the shared lane
    by_nature: bool = False  # its type waits by nature: always on its own thread
    fast_reads: int = 0  # reads in a row within the budget, on its own thread
    reader: threading.Thread | None = None
    tick_ns: int = 0  # the tick `reader` is asked to read
    go: threading.Event = field(default_factory=threading.Event)
    idle: Flag = field(default_factory=Flag)  # cleared by the scheduler: a read is due
    busy_since: float = 0.0
    troubled: bool = False  # a kind of trouble may be active, to be ended by the next good read
    humidity_troubled: bool = False  # its humidity was refused: ended by the next reading with humidity

    def __post_init__(self):
        self.idle.set()
        self.by_nature = self.own_thread = bool(getattr(self.sensor, "OWN_THREAD", False))

    def timed(self, elapsed_s: float) -> None:
        """Where the next read goes, after a read that took `elapsed_s`."""
        if elapsed_s > LANE_BUDGET_S:
            self.own_thread, self.fast_reads = True, 0
        elif self.own_thread and not self.by_nature:
            self.fast_reads += 1
            if self.fast_reads >= FAST_READS_TO_RETURN:
                self.own_thread, self.fast_reads = False, 0


Read = Callable[[SensorSlot, int], Measured]  # read one sensor for a tick; the checks wait for the commit
Done = list[tuple[SensorSlot, int, "Measured | None"]]  # reads done: the slot, its tick, what it gave (None: failed)
# check reads and hand them to their ticks' commits (failed ones too), without waiting; each slot is set idle once
# its read is committed (a read is not over before that: a disk that stalls the commits makes the next ticks skip)
Commit = Callable[[Done], None]


class SharedLane:
    """One thread at a time reads the lane's due sensors in turn; what it read is committed whenever nothing is
    left to read. `check`, called by the scheduler, moves a sensor whose read overran the budget off the lane."""

    def __init__(self, read: Read, commit: Commit, clock: Callable[[], float] = time.monotonic):
        self.read, self.commit, self.clock = read, commit, clock
        self._lock = threading.Lock()  # taken directly on the hot path: `with` on the Condition is a Python call
        self._cond = threading.Condition(self._lock)
        self._jobs: deque[tuple[SensorSlot, int]] = deque()
        self._read: Done = []  # read since the last commit
        self._reading: SensorSlot | None = None  # in flight now
        self._since = 0.0  # when it began, by `clock`
        self._worker: object | None = None  # the thread that is the lane now: an older one ended in a slow read
        self._stopping = False
        self._pass_began = 0.0
        self.pass_s = 0.0  # how long the last pass took, from its first read to its commit (by `clock`)

    def submit(self, tick_ns: int, slots: list[SensorSlot]) -> None:
        with self._cond:
            if self._stopping:
                return
            self._jobs.extend((slot, tick_ns) for slot in slots)
            if self._worker is None:
                self._start_worker()
            else:
                self._cond.notify()

    def check(self) -> float | None:
        """Move the sensor being read off the lane if its read overran the budget; the `clock` time at which to
        check again, or None while the lane has nothing to do."""
        with self._cond:
            if self._reading is None:
                return self.clock() + LANE_BUDGET_S if self._jobs else None
            if self.clock() - self._since <= LANE_BUDGET_S:
                return self._since + LANE_BUDGET_S
            self._reading.own_thread, self._reading.fast_reads = True, 0
            self._reading = None  # the thread reading it keeps it: it commits that reading alone, then ends
            if self._jobs or self._read:
                self._start_worker()
            else:
                self._worker = None
            return self.clock() + LANE_BUDGET_S if self._jobs else None

    def stop(self) -> Done:
        """Read nothing more; what was queued is dropped (its slots idle again). Returns what was read and not yet
        committed, for the caller to commit: a lane thread held in a slow read must not hold it back."""
        with self._cond:
            self._stopping = True
            dropped, self._jobs = self._jobs, deque()
            done, self._read = self._read, []
            self._cond.notify_all()
        for slot, _ in dropped:
            slot.idle.set()
        return done

    def _start_worker(self) -> None:
        """(With the lock held.) A new thread becomes the lane."""
        token = object()  # which thread is the lane now; an older one sees it is not, and ends
        self._worker = token
        threading.Thread(target=self._work, args=(token,), name="read lane", daemon=True).start()

    def _work(self, me: object) -> None:
        lock, cond, clock = self._lock, self._cond, self.clock
        while True:
            with lock:
                while not self._jobs and not self._read and not self._stopping and self._worker is me:
                    cond.wait()
                if self._worker is not me or self._stopping:
                    return
                if self._jobs:
                    slot, tick_ns = self._jobs.popleft()
                    self._reading, self._since = slot, clock()
                    if not self._read:  # a pass begins
                        self._pass_began = self._since
                    done = None
                else:  # all read: commit below, without the lock
                    done, self._read = self._read, []
                    self.pass_s = clock() - self._pass_began
            if done is not None:
                self._deliver(done)
                continue
            try:
                measured = self.read(slot, tick_ns)
            except Exception as exc:  # a bug outside the sensor's own errors (read catches those): a failed read,
                log_bug(log, exc, "%s: reading failed", slot.config.name)  # and the lane, every fast sensor's, lives on
                measured = None
            with lock:
                if self._worker is me and self._reading is slot and not self._stopping:
                    self._reading = None
                    elapsed = clock() - self._since
                    if elapsed > LANE_BUDGET_S:  # within it, `timed` has nothing to do for a sensor on the lane
                        slot.timed(elapsed)
                    self._read.append((slot, tick_ns, measured))
                    continue
            # moved off the lane while reading, or stopping: this thread ends with its one reading
            self._deliver([(slot, tick_ns, measured)])
            return

    def _deliver(self, done: Done) -> None:
        try:
            self.commit(done)
        except Exception as exc:  # a bug: the lane thread, which every fast sensor needs, must live on
            log_bug(log, exc, "committing %d reading(s) failed", len(done))
            for slot, _, _ in done:
                slot.idle.set()


def start_own_reader(slot: SensorSlot, read: Read, commit: Commit, stopping: threading.Event,
                     clock: Callable[[], float] = time.monotonic) -> None:
    """Give `slot` its long-lived reader thread (a daemon, so that a read hanging for ever cannot block the exit),
    woken by `slot.go` for `slot.tick_ns`; it stays, waiting, while the sensor is back on the lane."""

    def loop() -> None:
        while True:
            slot.go.wait()
            slot.go.clear()
            if stopping.is_set():
                slot.idle.set()  # a tick handed over just before the shutdown: not read, nothing to wait for
                return
            tick_ns, measured = slot.tick_ns, None
            try:
                started = clock()
                measured = read(slot, tick_ns)
                slot.timed(clock() - started)
            except Exception as exc:  # a bug outside the sensor's own errors (read catches those): a failed read
                log_bug(log, exc, "%s: reading failed", slot.config.name)
            try:
                commit([(slot, tick_ns, measured)])  # a failed read too: its tick's commit need not wait for it
            except Exception as exc:  # a bug: the thread must live on, or its sensor would stay busy, never read again
                log_bug(log, exc, "%s: committing failed", slot.config.name)
                slot.idle.set()

    slot.reader = threading.Thread(target=loop, name=f"read {slot.config.name}", daemon=True)
    slot.reader.start()
