"""`schedule`'s API with wall-clock timing: ticks on whole multiples of the interval, never drifting.

Stock `schedule` computes the next run from the end of the last one, so a 10 s job that takes 50 ms runs every
10.05 s and slides. Here each job keeps its due tick in integer nanoseconds and advances it by exactly one interval;
the clock is injected so the arithmetic is tested over simulated days.
"""

from __future__ import annotations

import datetime
import time
from typing import Callable, cast

import schedule

from collector.ticks import after_clock_jump, interval_ns, next_tick_after, tick_to_run

Clock = Callable[[], int]  # nanoseconds since the Unix epoch


class WallClockJob(schedule.Job):
    """Calls its function as `func(*args, tick_ns, skipped)`: the tick being read and the ticks skipped before it."""

    scheduler: "WallClockScheduler"

    def __init__(self, every_ns: int, scheduler: "WallClockScheduler"):
        super().__init__(1, scheduler)
        self.unit = "seconds"
        self.every_ns = every_ns
        self.due_ns = 0

    @property
    def should_run(self) -> bool:
        now = self.scheduler.clock()
        self._set_due(after_clock_jump(self.due_ns, now, self.every_ns))
        return now >= self.due_ns

    def run(self):
        now = self.scheduler.clock()
        tick, skipped = tick_to_run(self.due_ns, now, self.every_ns)
        if self.job_func is None:
            raise schedule.ScheduleError("a job runs only once do() gave it a function")
        result = self.job_func(tick, skipped)
        self.last_run = _as_datetime(now)
        self._set_due(tick + self.every_ns)
        return result

    def _schedule_next_run(self) -> None:
        self._set_due(next_tick_after(self.scheduler.clock(), self.every_ns))

    def _set_due(self, due_ns: int) -> None:
        self.due_ns = due_ns
        self.next_run = _as_datetime(due_ns)  # what schedule sorts and prints by


class WallClockScheduler(schedule.Scheduler):
    def __init__(self, clock: Clock = time.time_ns):
        super().__init__()
        self.clock = clock

    def every(self, interval: float = 1) -> WallClockJob:
        """A job every `interval` seconds (fractions allowed), aligned to the epoch."""
        return WallClockJob(interval_ns(interval), self)

    @property
    def idle_seconds(self) -> float | None:
        if not self.jobs:
            return None
        now = self.clock()
        jobs = cast(list[WallClockJob], self.jobs)  # `every` makes only these
        return (min(after_clock_jump(job.due_ns, now, job.every_ns) for job in jobs) - now) / 1e9


def _as_datetime(ns: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ns / 1e9, datetime.UTC).replace(tzinfo=None)
