"""The durable store-and-forward buffer: every accepted point is committed here before anything else happens.

SQLite in WAL mode with synchronous=FULL: a committed append survives kill -9 and power loss. Appends from
several threads at once are group-committed: one transaction, one fsync, for all that arrived while the previous
commit ran, and each caller returns only once its points are durable. Points leave only
when InfluxDB acknowledged them (`acknowledge`), or when a bound drops the oldest, or InfluxDB rejected them as
malformed (`set_aside` moves them to the `rejected` table, where a user can inspect and re-send them).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator, NamedTuple, Sequence

from collector.readings import Reading

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sensor TEXT,              -- NULL for the collector's own health points
    time_ns INTEGER NOT NULL,
    celsius REAL,
    line TEXT NOT NULL        -- line protocol, rendered once when the point was read
);
CREATE TABLE IF NOT EXISTS state (   -- what `templog health` and `check` read: heartbeat, last delivery, last error
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY,
    line TEXT NOT NULL,
    reason TEXT NOT NULL,
    rejected_at_ns INTEGER NOT NULL
);
"""


class Pending(NamedTuple):
    id: int
    line: str


@dataclass(frozen=True)
class Batch:
    """A run of the oldest points, as two plain lists: building an object per point cost a third of a drain."""

    ids: list[int]
    lines: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[Pending]:
        return map(Pending, self.ids, self.lines)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Batch(self.ids[index], self.lines[index])
        return Pending(self.ids[index], self.lines[index])


@dataclass
class _Ticket:
    """One caller's rows waiting for a group commit; `ready` wakes just that caller: done, or its turn to lead."""

    rows: list[tuple]
    ready: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    appended: "Appended | None" = None
    error: BaseException | None = None


@dataclass(frozen=True)
class Appended:
    dropped_for_count: int = 0
    dropped_for_age: int = 0


class Outbox:
    def __init__(self, path: str, max_points: int = 1_000_000, max_age_s: float = 0.0, clock=time.time_ns):
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self.max_points = max_points
        self.max_age_ns = int(max_age_s * 1e9)
        self.clock = clock
        self._lock = threading.Lock()  # one connection: every use of it holds this lock
        self._waiting: list[_Ticket] = []
        self._queue_lock = threading.Lock()  # guards _waiting and _leading
        self._leading = False
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._depth = self._db.execute("SELECT count(*) FROM points").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def append(self, points: Iterable[tuple[Reading | None, str]]) -> Appended:
        """Commit (reading, line) pairs (reading None for non-temperature points), then apply the bounds.

        Returns once they are durable; raises the commit's error (sqlite3.Error, OSError) if they are not.
        """
        ticket = _Ticket([(r.sensor, r.time_ns, r.celsius, line) if r else (None, _line_time(line), None, line)
                          for r, line in points])
        with self._queue_lock:
            self._waiting.append(ticket)
            if not self._leading:
                self._leading = ticket.lead = True
        if not ticket.lead:
            ticket.ready.wait()  # until a leader committed our rows, or handed us the lead
        if ticket.lead:
            with self._queue_lock:
                group, self._waiting = self._waiting, []
            try:
                appended, error = self._commit([row for t in group for row in t.rows]), None
            except BaseException as exc:  # every caller in the group gets the error: none of them is durable
                appended, error = None, exc
            for t in group:
                t.lead, t.error, t.appended = False, error, (appended if t is ticket else Appended())
                if t is not ticket:
                    t.ready.set()
            with self._queue_lock:  # whoever arrived meanwhile: the first of them leads the next commit
                if self._waiting:
                    self._waiting[0].lead = True
                    self._waiting[0].ready.set()
                else:
                    self._leading = False
        if ticket.error is not None:
            raise ticket.error
        return ticket.appended

    def _commit(self, rows: list[tuple]) -> Appended:
        with self._lock:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("INSERT INTO points (sensor, time_ns, celsius, line) VALUES (?, ?, ?, ?)", rows)
                by_age = self._drop_older_than_max_age()
                by_count = self._drop_beyond_max_points(self._depth + len(rows) - by_age)
            self._depth += len(rows) - by_age - by_count  # once committed (a failed append changes nothing)
        return Appended(by_count, by_age)

    def _drop_beyond_max_points(self, depth: int) -> int:
        excess = depth - self.max_points
        if excess <= 0:
            return 0
        self._db.execute("DELETE FROM points WHERE id IN (SELECT id FROM points ORDER BY id LIMIT ?)", (excess,))
        return excess

    def _drop_older_than_max_age(self) -> int:
        if not self.max_age_ns:
            return 0
        cutoff = self.clock() - self.max_age_ns
        oldest = self._db.execute("SELECT min(time_ns) FROM points").fetchone()[0]
        if oldest is None or oldest >= cutoff:
            return 0
        return self._db.execute("DELETE FROM points WHERE time_ns < ?", (cutoff,)).rowcount

    def oldest(self, limit: int, after_id: int = 0) -> Batch:
        """Up to `limit` of the oldest points (with an id above `after_id`: to read ahead while a batch is sent)."""
        with self._lock:
            rows = self._db.execute("SELECT id, line FROM points WHERE id > ? ORDER BY id LIMIT ?",
                                    (after_id, limit)).fetchall()
        return Batch([row[0] for row in rows], [row[1] for row in rows])

    def acknowledge(self, batch: Batch) -> None:
        """Delete a delivered batch (a run of the oldest points, so one id range covers it)."""
        if not batch:
            return
        with self._lock:
            with self._db:
                deleted = self._db.execute("DELETE FROM points WHERE id BETWEEN ? AND ?",
                                           (batch.ids[0], batch.ids[-1])).rowcount
            self._depth -= deleted

    def set_aside(self, point: Pending, reason: str) -> None:
        """Move a point InfluxDB refused as malformed out of the way, keeping it for inspection and re-sending."""
        with self._lock:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("INSERT OR REPLACE INTO rejected (id, line, reason, rejected_at_ns) VALUES (?, ?, ?, ?)",
                                 (point.id, point.line, reason, self.clock()))
                deleted = self._db.execute("DELETE FROM points WHERE id = ?", (point.id,)).rowcount
            self._depth -= deleted

    def rejected(self) -> list[tuple[str, str]]:
        with self._lock:
            return self._db.execute("SELECT line, reason FROM rejected ORDER BY id").fetchall()

    @property
    def depth(self) -> int:
        return self._depth

    def oldest_time_ns(self) -> int | None:
        """The timestamp of the point waiting longest (by arrival: cheap, and what `max_points` drops first)."""
        with self._lock:
            row = self._db.execute("SELECT time_ns FROM points ORDER BY id LIMIT 1").fetchone()
        return row[0] if row else None

    def put_state(self, **values: object) -> None:
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)",
                                 [(k, str(v)) for k, v in values.items()])

    def state(self) -> dict[str, str]:
        with self._lock:
            return dict(self._db.execute("SELECT key, value FROM state").fetchall())

    def readings(self, start_ns: int, stop_ns: int, sensors: Sequence[str] = ()) -> Iterator[Reading]:
        """Temperature readings waiting here, start <= time < stop, in time order, read from a cursor as they
        are consumed (SQLite sorts them, spilling to temporary files, in bounded memory). The connection is held
        until the iterator is exhausted or closed."""
        query = "SELECT sensor, time_ns, celsius FROM points WHERE sensor IS NOT NULL AND time_ns >= ? AND time_ns < ?"
        args: list = [start_ns, stop_ns]
        if sensors:
            query += f" AND sensor IN ({','.join('?' * len(sensors))})"
            args += list(sensors)
        with self._lock:
            for row in self._db.execute(query + " ORDER BY time_ns, sensor", args):
                yield Reading(*row)


def _line_time(line: str) -> int:
    return int(line.rsplit(" ", 1)[1])
