"""One durable commit per tick: the points of a tick's reads (and the health jobs due at that tick) gather here and
go to the outbox in one transaction, with the deletions and state waiting for a commit (collector/outbox.py).

    scheduler --expect(tick)--> TickCommits <--submit(tick, points, then)-- each read of that tick
                                     |
                                 committer thread --commit(points)--> outbox; then each `then` (count and log)

A tick's group is committed when every read expected for it has submitted, or at its deadline, whichever comes
first: a slow or hanging sensor holds the others back by at most the deadline (a fraction of the tick, see
`wait_for`), and its reading, once it comes, is committed on its own. `submit` never waits: the reader goes on
(the shared lane to the next tick's sensors), and the committer thread commits, then runs what the reader wanted
done once the commit is over (count and log the readings, so that what is logged is committed; free the sensors
for their next read). Groups ready at once (a disk slower than the ticks) go in one transaction: the committer
never falls behind by more than one commit.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

from collector.lineprotocol import Point
from collector.logs import log_bug

log = logging.getLogger("templog")

Points = list[Point]
Then = Callable[[object], None]  # what a reader wants done once its points' commit is over, given what it answered

WAIT_FRACTION = 0.1  # of the tick's interval: how long a tick's commit waits for its slowest read
WAIT_MAX_S = 1.0  # ... but never longer than this (a reading is committed within a small fraction of its tick)


def wait_for(interval_s: float, lane_pass_s: float = 0.0) -> float:
    """How long the commit of a tick of this interval waits for its slowest read. The shared lane hands its reads
    over at the end of its pass, which its budget watchdog bounds: the wait covers twice the last pass too (a slow
    board's thousand sensors), up to half the interval, so that the lane's readings go with their tick's commit."""
    return max(min(interval_s * WAIT_FRACTION, WAIT_MAX_S), min(2 * lane_pass_s, interval_s / 2))


@dataclass
class _Group:
    tick_ns: int
    deadline: float
    outstanding: int = 0  # reads expected and not yet submitted
    points: Points = field(default_factory=list)
    then: list[Then] = field(default_factory=list)  # once its commit is over


class TickCommits:
    """`commit(points)` does the durable work (Collector.commit, which answers where the points went; None when it
    raised); `clock` is monotonic seconds (injected by tests, which then call `recheck` after moving it, or
    `commit_due` themselves)."""

    def __init__(self, commit: Callable[[Points], object], clock: Callable[[], float] = time.monotonic,
                 background: bool = True):
        self._commit = commit
        self._background = background  # False: no committer thread (tests call commit_due)
        self.clock = clock
        self._changed = threading.Condition()
        self._open: dict[int, _Group] = {}
        self._late: list[_Group] = []  # submits that came after their tick's group went: due at once
        self._holds = 0  # while the scheduler hands out a round of reads, no group is complete by its count
        self._busy = False  # the committer is in a commit
        self._closed = False
        self._thread: threading.Thread | None = None

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
        """`reads` more submits will come for `tick_ns`; its commit waits for them at most `wait_s` from now. The
        shortest wait of a tick's expects wins: the reads of a 500 ms sensor that shares its tick with a hanging 10 s
        one are committed within 50 ms, not within the 10 s interval's second (the slow one's reading follows on its
        own)."""
        with self._changed:
            self._start()
            deadline = self.clock() + wait_s
            group = self._open.get(tick_ns)
            if group is None:
                group = self._open[tick_ns] = _Group(tick_ns, deadline)
            group.deadline = min(group.deadline, deadline)
            group.outstanding += reads
            self._changed.notify_all()  # the committer's wait ends at the earliest deadline

    def submit(self, tick_ns: int, points: Points, reads: int = 1, then: Then | None = None) -> None:
        """The points of `reads` expected reads of `tick_ns` (none for a failed read), and what to call once their
        commit is over (given the commit's answer). Never waits: a submit nobody expected, or one that comes
        after its tick's group went (a late read), is the committer's next transaction; only once the committer
        is closed (the shutdown is over) is it committed on the caller's thread."""
        with self._changed:
            expected = self._open.get(tick_ns)
            late = expected is None
            if expected is None:
                group = _Group(tick_ns, self.clock())
            else:
                group = expected
                group.outstanding -= reads
            group.points.extend(points)
            if then is not None:
                group.then.append(then)
            if not (late and (self._closed or not self._background)):
                if late:
                    self._late.append(group)
                self._changed.notify_all()
                return
        self._commit_groups([group])

    def recheck(self) -> None:
        """The injected clock moved: the committer looks at the deadlines again."""
        with self._changed:
            self._changed.notify_all()

    def commit_due(self, everything: bool = False) -> bool:
        """Commit, in one transaction, the groups due now (complete, past their deadline, or late; with
        `everything`, all of them), once the commit in progress is over. False if none was due. The committer thread
        calls it; so do tests, with `background=False`."""
        with self._changed:
            while self._busy:
                self._changed.wait()
            groups = self._take(everything)
            if not groups:
                return False
            self._busy = True
        try:
            self._commit_groups(groups)
        finally:
            with self._changed:
                self._busy = False
                self._changed.notify_all()
        return True

    def flush(self) -> None:
        """Commit every group now, complete or not (shutdown: the reads in flight are over or abandoned); returns
        once they are committed."""
        self.commit_due(everything=True)

    def close(self) -> None:
        """Flush and end the committer thread."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self.flush()
        if self._thread is not None:
            self._thread.join(5)

    def _start(self) -> None:
        """(With the lock held.) The committer thread, started with the first group."""
        if self._thread is None and self._background and not self._closed:
            self._thread = threading.Thread(target=self._run, name="tick commits", daemon=True)
            self._thread.start()

    def _take(self, everything: bool = False) -> list[_Group]:
        """(With the lock held.) The groups to commit now, in tick order; the rest stay open."""
        now = self.clock()
        due = [tick_ns for tick_ns, group in self._open.items() if everything or self._due(group, now)]
        groups, self._late = [*self._late, *(self._open.pop(tick_ns) for tick_ns in due)], []
        return sorted(groups, key=lambda group: group.tick_ns)

    def _due(self, group: _Group, now: float) -> bool:
        return group.deadline <= now or (group.outstanding <= 0 and not self._holds)

    def _run(self) -> None:
        while True:
            if self.commit_due():
                continue
            with self._changed:
                if self._closed:
                    return
                now = self.clock()
                if self._late or any(self._due(g, now) for g in self._open.values()):
                    continue  # became due between commit_due and here
                deadlines = [g.deadline for g in self._open.values()]
                self._changed.wait(max(0.0, min(deadlines) - now) if deadlines else None)

    def _commit_groups(self, groups: list[_Group]) -> None:
        """One transaction for all of them; then what their readers wanted done, in tick order."""
        points = [point for group in groups for point in group.points]
        answer = None
        try:
            answer = self._commit(points)
        except Exception as exc:  # a bug: the committer, which every reading needs, must live on
            log_bug(log, exc, "committing %d point(s) failed", len(points))
        for group in groups:
            for then in group.then:
                try:
                    then(answer)
                except Exception as exc:
                    log_bug(log, exc, "after committing %d point(s)", len(group.points))
