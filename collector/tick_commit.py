"""One durable commit per tick: the points of a tick's reads (and the health jobs due at that tick) gather here and
go to the outbox in one transaction, with the deletions and state waiting for a commit (collector/outbox.py).

    scheduler --expect(tick)--> TickCommits <--submit(tick, points)-- each read of that tick

A tick's group is committed when every read expected for it has submitted, or at its deadline, whichever comes
first: a slow or hanging sensor holds the others back by at most the deadline (a fraction of the tick, see
`wait_for`), and its reading, once it comes, is committed on its own. A reader's `submit` returns once its points
are committed (or kept in memory by the commit, if the outbox cannot be written): what it logs after is durable.
The caller that completes a group, or first sees its deadline pass, commits it on its own thread: no extra thread,
no hand-off.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

from collector.readings import Reading

Points = list[tuple[Reading | None, str]]

WAIT_FRACTION = 0.1  # of the tick's interval: how long a tick's commit waits for its slowest read
WAIT_MAX_S = 1.0  # ... but never longer than this (a reading is committed within a small fraction of its tick)


def wait_for(interval_s: float) -> float:
    """How long the commit of a tick of this interval waits for its slowest read."""
    return min(interval_s * WAIT_FRACTION, WAIT_MAX_S)


@dataclass
class _Group:
    deadline: float
    outstanding: int = 0  # reads expected and not yet submitted
    points: Points = field(default_factory=list)
    led: bool = False  # a caller took it to commit: later submits for its tick are late
    done: bool = False
    committed: bool = False


class TickCommits:
    """`commit(points) -> bool` does the durable work (Collector.commit); `clock` is monotonic seconds."""

    def __init__(self, commit: Callable[[Points], bool], clock: Callable[[], float] = time.monotonic):
        self._commit = commit
        self.clock = clock
        self._changed = threading.Condition()
        self._open: dict[int, _Group] = {}
        self._holds = 0  # while the scheduler hands out a round of reads, no group is complete by its count

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Around handing out the reads due now: a group is not complete before all of its tick's reads are
        expected, however fast the first ones answer (its deadline still applies)."""
        with self._changed:
            self._holds += 1
        try:
            yield
        finally:
            with self._changed:
                self._holds -= 1
                self._changed.notify_all()

    def expect(self, tick_ns: int, wait_s: float, reads: int = 1) -> None:
        """`reads` more submits will come for `tick_ns`; its commit waits at most `wait_s` from the first expect."""
        with self._changed:
            self._forget_empty_overdue()
            group = self._open.get(tick_ns)
            if group is None:
                group = self._open[tick_ns] = _Group(self.clock() + wait_s)
            group.outstanding += reads

    def submit(self, tick_ns: int, points: Points, reads: int = 1) -> bool:
        """The points of `reads` expected reads of `tick_ns` (none for a failed read); returns once they are
        committed, with the commit's answer (False: dropped, the collector has stopped). A submit nobody expected,
        or one that comes after its tick's group went, is committed at once on its own."""
        with self._changed:
            group = self._open.get(tick_ns)
            if group is not None:
                group.points.extend(points)
                group.outstanding -= reads
                if group.outstanding > 0 and not points:
                    return True  # nothing of ours to wait for
                if not self._wait_for_turn(group):
                    return group.committed
                del self._open[tick_ns]
        if group is None:
            return self._commit(points)
        return self._commit_group(group)

    def _commit_group(self, group: _Group) -> bool:
        committed = False
        try:
            committed = self._commit(group.points)
        finally:  # whatever happened, nobody waits on it any longer
            with self._changed:
                group.done, group.committed = True, committed
                self._changed.notify_all()
        return committed

    def _wait_for_turn(self, group: _Group) -> bool:
        """Wait (holding the condition) until `group` is complete or due, then True if this caller commits it, or
        until another caller committed it (False)."""
        while not group.led:
            remaining = group.deadline - self.clock()
            if (group.outstanding <= 0 and not self._holds) or remaining <= 0:
                group.led = True
                return True
            self._changed.wait(remaining)
        while not group.done:
            self._changed.wait()
        return False

    def _forget_empty_overdue(self) -> None:
        """Groups past their deadline with no points (every read that answered failed, one still hangs): nobody
        waits on them, and a late submit for them commits on its own."""
        now = self.clock()
        for tick_ns in [t for t, g in self._open.items() if not g.points and not g.led and g.deadline <= now]:
            del self._open[tick_ns]

    def flush(self) -> None:
        """Commit every open group now (shutdown: the reads in flight are over or abandoned)."""
        with self._changed:
            groups = [g for g in self._open.values() if not g.led]
            for group in groups:
                group.led = True
            self._open.clear()
        for group in groups:
            self._commit_group(group)
