"""The durable store-and-forward buffer: every accepted point is committed here before anything else happens.

SQLite in WAL mode with synchronous=FULL: a committed append survives kill -9 and power loss. Appends from
several threads at once are group-committed: one transaction, one fsync, for all that arrived while the previous
commit ran, and each caller returns only once its points are durable. Points leave only
when InfluxDB took them (`delivered`), or when a bound drops the oldest, or InfluxDB rejected them as
malformed (`set_aside` moves them to the `rejected` table, where a user can inspect and re-send them).

What can wait goes with the next commit, so that a tick costs one fsync: the deletion of delivered points
(`delivered`: gone at once for `oldest` and `depth`; a kill before the commit re-sends them, which is harmless) and
the state `templog health` reads (`stage_state`). `acknowledge`, `put_state` and `write_pending` commit at once.

Damage (a file that is not a database, a malformed page: a worn SD card) never stops `run`, which opens its
outbox with `repair=True`: the damaged file is moved aside, what can be read of it is salvaged into a fresh one
(collector/outbox_repair.py), one ERROR says so, and the operation that met the damage is retried on the fresh
file. `history`, `check` and `health` open it `read_only`: they never change it, and report damage as
OutboxDamaged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Generator, Iterable, Iterator, NamedTuple, Sequence, TypeVar

from collector import outbox_repair
from collector.errors import TemplogError

if TYPE_CHECKING:  # `health` reads no readings: the module is imported where they are read or written
    from collector.lineprotocol import Point
    from collector.readings import Reading

log = logging.getLogger("templog")

T = TypeVar("T")

# SQLite settings, chosen with bench/disk_writes.py (10 sensors at 1 s, bytes from /proc/PID/io write_bytes;
# BENCHMARKS.md sections 9 and 10) and a loop of 10-point tick commits in-process:
# - synchronous=FULL: a commit is on disk when it returns (kill -9 and power loss); NORMAL would not survive power
#   loss. So each tick costs one fsync, and the kernel writes every 4 KiB page the commit dirtied: the page of the
#   WAL its frames end in at least, so one tick's commit costs 4,096 B plus what its frames add.
# - a steady tick's commit writes one database page: the deletion of the tick before it (delivered) makes room on
#   the points table's only leaf for its rows. New outboxes have no AUTOINCREMENT (its sqlite_sequence was a second
#   page every commit: 7,441 -> 6,554 B a tick; ids are handed out by Outbox, see _keep_last_id) and a state table
#   WITHOUT ROWID (the heartbeat's commit, every 10 s, writes one state page, not the table's and its key index's:
#   6,554 -> 6,212 B a tick). An older outbox keeps its tables and their cost.
# - page_size 1024: a WAL frame is a page plus 24 bytes and straddles two 4 KiB pages of the WAL file as often as
#   its length is of 4 KiB, so a one-frame commit costs 4,096 + 1,048 B on average. A tick's rows (about 96 B each)
#   fit a 1 KiB leaf; 512 B pages need two leaves and their parent a tick, 2 KiB and 4 KiB pages a longer frame
#   (in-process, a commit of 10 rows a second: 512 B 6,758, 1 KiB 5,666, 2 KiB 6,622, 4 KiB 8,738 B a commit).
#   Only a new file gets it: an existing outbox keeps its page size.
# - a reading with humidity has a longer row, about 150 B (its line carries humidity and dewpoint: 111 B against 68 B
#   in the bench's; the humidity column 9 B): ten such rows need two leaves a tick (in-process, 10 rows a second:
#   8,294 B a commit against 5,140 B without humidity, to the byte the same with and without the humidity column,
#   whose NULL costs 1 B a row).
# - wal_autocheckpoint 1000 pages (SQLite's default; 1 MiB of WAL with these pages): at a page or two a tick, a
#   checkpoint every 10 minutes or so copies the few pages a delivered outbox reuses; 100 / 1000 / 10,000 pages
#   measured 6.6 / 6.4 / 6.4 KB a tick, so no checkpointing in the sender's idle time either.
# - journal_size_limit: after a backlog's large transactions the WAL is cut back to this at the next checkpoint,
#   not left at its largest (no effect on the steady state, whose WAL stays under it).
PAGE_SIZE = 1024
# Delivered points deleted per commit. A tick's are all deleted with the next tick's commit; a backlog's go a slice
# a commit, with its state row (DELIVERED_UPTO) saying they are delivered, so that a drain commits a small
# transaction a batch instead of deleting each batch row by row (measured: the deletion made the drain wait for
# its read-ahead; bench/drain_throughput.py), and the sender deletes the rest in its idle time (`purge`).
PURGE_ROWS = 500
DELIVERED_UPTO = "delivered_upto"
LAST_ID = outbox_repair.LAST_ID
WAL_AUTOCHECKPOINT_PAGES = 1000
JOURNAL_SIZE_LIMIT = 4 * 2**20

_TABLES = {
    "points": """(
        id INTEGER PRIMARY KEY,   -- handed out by Outbox, only ever growing (LAST_ID); older files: AUTOINCREMENT
        sensor TEXT,              -- NULL for the collector's own health points
        time_ns INTEGER NOT NULL,
        celsius REAL,
        line TEXT NOT NULL,       -- line protocol, rendered once when the point was read
        humidity REAL             -- %RH, of readings that have it; added to older files by _add_columns
    )""",
    "state": """(                 -- what `templog health` and `check` read: heartbeat, last delivery, last error
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID""",  # one b-tree: a state commit writes one page, not the table's and its key index's
    "rejected": """(
        id INTEGER PRIMARY KEY,
        line TEXT NOT NULL,
        reason TEXT NOT NULL,
        rejected_at_ns INTEGER NOT NULL
    )""",
}


# Columns a later version added to a table, last, where ALTER TABLE ADD COLUMN puts them. Adding one rewrites no row:
# a record without the column reads as its default, NULL (sqlite.org/lang_altertable.html, ADD COLUMN).
_ADDED_COLUMNS = {"points": {"humidity": "REAL"}}


def _create_tables(db: sqlite3.Connection) -> None:
    for name, columns in _TABLES.items():
        db.execute(f"CREATE TABLE IF NOT EXISTS {name} {columns}")


def _missing_columns(db: sqlite3.Connection) -> dict[str, list[str]]:
    """The columns of _ADDED_COLUMNS an (older) file's tables lack, by table."""
    missing = {}
    for table, added in _ADDED_COLUMNS.items():
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if lacking := [name for name in added if name not in present]:
            missing[table] = lacking
    return missing


def _add_columns(db: sqlite3.Connection) -> None:
    """Give an older file the columns it lacks, in one transaction: a kill part-way leaves the file as it was (the
    next open adds them again); BEGIN IMMEDIATE, so that a second writer opening it meanwhile finds them added."""
    if not _missing_columns(db):
        return  # no transaction: a file that has them (every open but the first after an upgrade) writes nothing
    with db:
        db.execute("BEGIN IMMEDIATE")
        for table, names in _missing_columns(db).items():
            for name in names:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {_ADDED_COLUMNS[table][name]}")


class OutboxError(TemplogError):
    """The outbox cannot be used as it is; the message names it and says why."""


class OutboxUnusable(OutboxError):
    def __init__(self, path: str, reason: str):
        super().__init__(f"collector.outbox: cannot use {path}: {reason}")
        self.path, self.reason = path, reason


class OutboxDamaged(OutboxError, sqlite3.DatabaseError):  # a DatabaseError too: where SQLite's errors are caught
    def __init__(self, path: str, cause: str):
        cause = " ".join(cause.split())  # quick_check answers on several lines: a log line is one line
        super().__init__(f"the outbox {path} is damaged ({cause}); `templog run` moves it aside and salvages "
                         "what it can read")
        self.path, self.cause = path, cause


_NAME_MAX = 255  # bytes in a file name on Linux's filesystems
_LONGEST_SUFFIX = ".salvaging-journal"  # of the files SQLite and a repair put beside the outbox


def unusable_reason(path: str) -> str | None:
    """Why `run` could not keep an outbox at `path` (None if it can): what `check` reports and `run` refuses.

    SQLite needs the file readable and writable and, beside it, room for its -wal and -shm files; the folder is
    created if missing, so the nearest existing ancestor must be a folder one can create entries in. Probes
    rather than permission bits: root ignores those, and /proc or a read-only mount refuse what they allow.
    """
    if os.path.isdir(path):
        return "it is a directory"
    if os.path.islink(path) and not os.path.exists(path):
        return "it is a symbolic link to nothing, or a loop of them"
    if len(os.path.basename(path).encode()) + len(_LONGEST_SUFFIX) > _NAME_MAX:
        return (f"its file name is too long (with {_LONGEST_SUFFIX!r}, the longest name put beside it, over "
                f"{_NAME_MAX} bytes)")
    if os.path.exists(path):
        if not os.path.isfile(path):
            return "it is not a regular file"
        try:
            with open(path, "r+b"):
                pass
        except OSError as exc:
            return f"it cannot be opened for writing ({exc.strerror})"
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        return f"{folder} is not a directory"
    import tempfile  # with `random`: only `run` and `check` probe a path, not `health` or `history`

    try:
        tempfile.TemporaryFile(dir=folder).close()  # unnamed where the filesystem allows (O_TMPFILE)
    except OSError as exc:
        return f"cannot create files in {folder} ({exc.strerror})"
    return None


class Pending(NamedTuple):
    id: int
    line: str


@dataclass(frozen=True)
class Batch:
    """A run of the oldest points, as plain lists: building an object per point cost a third of a drain."""

    ids: list[int]
    lines: list[str]
    times: list[int]  # each point's time_ns

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[Pending]:
        return map(Pending, self.ids, self.lines)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Batch(self.ids[index], self.lines[index], self.times[index])
        return Pending(self.ids[index], self.lines[index])


@dataclass
class _Ticket:
    """One caller's rows waiting for a group commit; `ready` wakes just that caller: done, or its turn to lead."""

    rows: list[tuple]
    ready: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    appended: "Appended" = field(default_factory=lambda: Appended())  # what the commit answered, once done
    error: BaseException | None = None


@dataclass(frozen=True)
class Appended:
    dropped_for_count: int = 0
    dropped_for_age: int = 0


class Outbox:
    """`read_only`: never change the file (history, check, health). `repair`: what `run` uses: damage, found at
    open or later, is repaired and the operation retried; without it damage raises OutboxDamaged."""

    def __init__(self, path: str, max_points: int = 1_000_000, max_age_s: float = 0.0, clock=time.time_ns, *,
                 read_only: bool = False, repair: bool = False):
        self.path = path
        self.max_points = max_points
        self.max_age_ns = int(max_age_s * 1e9)
        self.clock = clock
        self.read_only, self.repair = read_only, repair
        self._lock = threading.Lock()  # one connection: every use of it holds this lock
        self._waiting: list[_Ticket] = []
        self._queue_lock = threading.Lock()  # guards _waiting and _leading
        self._leading = False
        self._db: sqlite3.Connection | None = None
        self._depth = 0  # points not delivered: in the file, with an id above _delivered_upto
        self._delivered_upto = 0  # InfluxDB took every point up to this id (the file's state row says up to where)
        self._last_id = 0  # the highest id handed out: the next point's is above it, never reused
        self._last_id_kept = 0  # the highest id the file's LAST_ID state row says was handed out
        self._purged = True  # every point up to _delivered_upto is deleted from the file (as far as committed)
        self._leftover = False  # delivered points beyond a commit's slice (a backlog's) wait in the file
        self._staged: dict[str, str] = {}  # state for the next commit
        self._staging_lock = threading.Lock()  # guards _staged: the sender stages while a commit holds _lock
        self._missing: dict[str, list[str]] = {}  # columns a read-only open found missing (an older file's)
        with self._lock:  # open now: a path in the way, or damage (repaired for `run`), shows at once
            try:
                self._use(lambda db: None)
            except OutboxError:
                raise
            except (OSError, sqlite3.Error) as exc:  # e.g. a folder in the way: say it is the outbox, and where
                raise OutboxUnusable(path, str(exc)) from exc

    def _open(self, verify: bool) -> sqlite3.Connection:
        if self.read_only:
            _check_not_truncated(self.path)
            db = sqlite3.connect(outbox_repair.read_only_uri(self.path), uri=True, check_same_thread=False,
                                 isolation_level=None)
        else:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            if self.repair and (damaged := outbox_repair.finish_interrupted_repair(self.path, self.clock())):
                log.error("a repair of the outbox %s was interrupted; finished it: the damaged file is now %s and "
                          "the salvaged points are in %s", self.path, damaged, self.path)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            if self.read_only:  # tables a collector has not created yet: empty, in memory, never in the file
                present = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                for name in _TABLES.keys() - present:
                    db.execute(f"CREATE TEMP TABLE {name} {_TABLES[name]}")
                self._missing = _missing_columns(db)  # an older file's, read as NULL: the file stays as it is
            else:
                db.execute(f"PRAGMA page_size={PAGE_SIZE}")  # takes effect only on a new, empty file
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
                db.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
                _create_tables(db)
                _add_columns(db)
            if verify:
                _quick_check(db, self.path)
            row = db.execute("SELECT value FROM state WHERE key = ?", (DELIVERED_UPTO,)).fetchone()
            self._delivered_upto = max(self._delivered_upto, int(row[0]) if row else 0)
            self._last_id_kept = outbox_repair.last_id(db)
            self._last_id = max(self._last_id, self._last_id_kept, self._delivered_upto,
                                db.execute("SELECT max(id) FROM points").fetchone()[0] or 0,
                                db.execute("SELECT max(id) FROM rejected").fetchone()[0] or 0)
            self._purged, self._leftover = False, True  # delivered points may wait in the file (killed in a drain)
            depth = db.execute("SELECT count(*) FROM points WHERE id > ?", (self._delivered_upto,)).fetchone()[0]
        except BaseException:
            db.close()
            raise
        self._db, self._depth = db, depth
        return db

    def _use(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work` on the connection (the caller holds `_lock`), opened first if need be. Damage is repaired and
        `work` tried once more (with `repair`), or raised as OutboxDamaged."""
        try:
            return work(self._open(verify=self.repair) if self._db is None else self._db)
        except sqlite3.DatabaseError as exc:
            damaged = isinstance(exc, OutboxDamaged) or outbox_repair.is_damage(exc)
            if not damaged:
                raise
            if not self.repair:
                if isinstance(exc, OutboxDamaged):
                    raise
                raise OutboxDamaged(self.path, str(exc)) from exc
            db = self._repair(exc.cause if isinstance(exc, OutboxDamaged) else str(exc))
        try:
            return work(db)
        except sqlite3.DatabaseError as exc:
            if outbox_repair.is_damage(exc):
                raise OutboxDamaged(self.path, str(exc)) from exc
            raise

    def _repair(self, cause: str) -> sqlite3.Connection:
        """Swap the damaged file for a fresh one holding all that could be read of it (the caller holds `_lock`)."""
        expected = None
        if self._db is not None:  # it was open: how many points it held is known
            expected = self._depth
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._db = None
        salvaged = outbox_repair.repair(self.path, self.clock(), _create_tables)
        db = self._open(verify=False)
        # the points InfluxDB took and a commit has not deleted yet are salvaged too: not counted as waiting
        salvaged = replace(salvaged, points=self._depth)
        log.error("%s", salvaged.report(self.path, cause, expected))
        return db

    def verify(self) -> None:
        """Raise OutboxDamaged unless SQLite finds the whole file sound (`check` uses it; `run` does it at open)."""
        with self._lock:
            self._use(lambda db: _quick_check(db, self.path))

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()

    def append(self, points: Iterable[Point]) -> Appended:
        """Commit points, then apply the bounds. A temperature point's sensor, celsius and humidity are kept beside
        its line (for `history` from the outbox; the dew point is computed from them); other points' (the
        collector's health) are NULL.

        Returns once they are durable; raises the commit's error (sqlite3.Error, OSError) if they are not.
        """
        from collector.readings import point_reading

        ticket = _Ticket([_row(point, point_reading(point)) for point in points])
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
                appended, error = Appended(), exc
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
        if not rows and not self.pending:
            return Appended()

        def commit(db: sqlite3.Connection) -> Appended:
            last_id = self._last_id + len(rows)
            with db:
                db.execute("BEGIN IMMEDIATE")
                done, state_written = self._write_pending(db)
                db.executemany("INSERT INTO points (id, sensor, time_ns, celsius, humidity, line) "
                               "VALUES (?, ?, ?, ?, ?, ?)",
                               [(i, *row) for i, row in enumerate(rows, self._last_id + 1)])
                by_age = self._drop_older_than_max_age(db)
                by_count = self._drop_beyond_max_points(db, self._depth + len(rows) - by_age)
                kept = self._keep_last_id(db, last_id, state_written)
            done()
            self._last_id, self._last_id_kept = last_id, kept
            self._depth += len(rows) - by_age - by_count  # once committed (a failed append changes nothing)
            return Appended(by_count, by_age)

        with self._lock:
            return self._use(commit)

    def _write_pending(self, db: sqlite3.Connection) -> tuple[Callable[[], None], bool]:
        """In the caller's transaction: the deletion of what InfluxDB took and the state staged since the last
        commit. Returns what to call once the transaction is committed, and whether it wrote state."""
        delivered, purged = self._delivered_upto, self._purged
        if not purged:  # the oldest PURGE_ROWS delivered points: a tick's all, a backlog's a slice per commit
            deleted = db.execute("DELETE FROM points WHERE id IN (SELECT id FROM points WHERE id <= ? ORDER BY id "
                                 "LIMIT ?)", (delivered, PURGE_ROWS)).rowcount
            purged = deleted < PURGE_ROWS
            if not purged:  # the rest stays in the file a while: the state row says not to send it again
                self.stage_state(**{DELIVERED_UPTO: delivered})
        with self._staging_lock:
            staged = dict(self._staged)
        if staged:
            db.executemany("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", staged.items())

        def done() -> None:  # under self._lock, as the transaction: nothing was delivered meanwhile
            self._purged = purged
            self._leftover = not purged
            with self._staging_lock:  # a value staged again meanwhile is newer: it waits for the next commit
                for key, value in staged.items():
                    if self._staged.get(key) == value:
                        del self._staged[key]

        return done, bool(staged)

    def _keep_last_id(self, db: sqlite3.Connection, last_id: int, state_written: bool) -> int:
        """Last in the caller's transaction: make sure the file still says that ids up to `last_id` were handed
        out, so that none is handed out again after a restart (DELIVERED_UPTO and the `rejected` table go by id).
        The points' highest id says so while it is `last_id`: a tick's commit inserts above the points it deletes,
        so this costs no page in the steady state. A transaction that leaves no point with the highest id (the last
        deliveries deleted, the newest dropped by a bound) writes the LAST_ID state row; so does one that writes
        state anyway (the heartbeat's, every 10 s: the same page), for a repair that loses the newest points'
        pages (collector/outbox_repair.py). Returns what the LAST_ID row says once committed."""
        if last_id <= self._last_id_kept:
            return self._last_id_kept
        if not state_written and (db.execute("SELECT max(id) FROM points").fetchone()[0] or 0) >= last_id:
            return self._last_id_kept
        db.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (LAST_ID, str(last_id)))
        return last_id

    @property
    def pending(self) -> bool:
        """Deletions or state wait for a commit."""
        return not self._purged or bool(self._staged)

    def write_pending(self) -> None:
        """Commit the deletions and the state waiting for a commit, if any (one transaction)."""
        if not self.pending:
            return

        def write(db: sqlite3.Connection) -> None:
            with db:
                db.execute("BEGIN IMMEDIATE")
                done, state_written = self._write_pending(db)
                kept = self._keep_last_id(db, self._last_id, state_written)
            done()
            self._last_id_kept = kept

        with self._lock:
            self._use(write)

    def _drop_beyond_max_points(self, db: sqlite3.Connection, depth: int) -> int:
        excess = depth - self.max_points
        if excess <= 0:
            return 0
        db.execute("DELETE FROM points WHERE id IN (SELECT id FROM points WHERE id > ? ORDER BY id LIMIT ?)",
                   (self._delivered_upto, excess))
        return excess

    def _drop_older_than_max_age(self, db: sqlite3.Connection) -> int:
        if not self.max_age_ns:
            return 0
        cutoff = self.clock() - self.max_age_ns
        after = self._delivered_upto  # what is delivered is not counted: it goes with the purge
        oldest = db.execute("SELECT min(time_ns) FROM points WHERE id > ?", (after,)).fetchone()[0]
        if oldest is None or oldest >= cutoff:
            return 0
        return db.execute("DELETE FROM points WHERE id > ? AND time_ns < ?", (after, cutoff)).rowcount

    def purge(self) -> bool:
        """Delete a slice of the delivered points still in the file (the sender, when idle after a backlog); True
        if more remain."""
        if not self._leftover:  # a tick's deliveries wait for the next tick's commit
            return False
        self.write_pending()
        return self._leftover

    def oldest(self, limit: int, after_id: int = 0) -> Batch:
        """Up to `limit` of the oldest points not delivered (with an id above `after_id`: to read ahead while a
        batch is sent)."""
        with self._lock:
            after = max(after_id, self._delivered_upto)
            rows = self._use(lambda db: db.execute("SELECT id, line, time_ns FROM points WHERE id > ? ORDER BY id "
                                                   "LIMIT ?", (after, limit)).fetchall())
        return Batch([row[0] for row in rows], [row[1] for row in rows], [row[2] for row in rows])

    def delivered(self, batch: Batch) -> None:
        """InfluxDB took this batch (a run of the oldest points): it leaves at once for `oldest` and `depth`, and
        from the file with the next commit (`append`, `write_pending`): deleted, or, beyond PURGE_ROWS, marked
        delivered by the state row and deleted by later commits (`purge`). A kill before that commit re-sends it,
        which is harmless: InfluxDB keeps one point per series and timestamp."""
        if not batch:
            return
        with self._lock:
            last = batch.ids[-1]
            if last <= self._delivered_upto:
                return
            taken = self._use(lambda db: db.execute(  # fewer than the batch if a bound dropped some meanwhile
                "SELECT count(*) FROM points WHERE id > ? AND id <= ?", (self._delivered_upto, last)).fetchone()[0])
            self._delivered_upto, self._purged = last, False
            self._depth -= taken

    def acknowledge(self, batch: Batch) -> None:
        """Delete a delivered batch now, durably (with whatever else waits for a commit)."""
        self.delivered(batch)
        self.write_pending()

    def set_aside(self, point: Pending, reason: str) -> None:
        """Move a point InfluxDB refused as malformed out of the way, keeping it for inspection and re-sending."""
        def move(db: sqlite3.Connection) -> None:
            with db:
                db.execute("BEGIN IMMEDIATE")
                done, state_written = self._write_pending(db)
                db.execute("INSERT OR REPLACE INTO rejected (id, line, reason, rejected_at_ns) VALUES (?, ?, ?, ?)",
                           (point.id, point.line, reason, self.clock()))
                deleted = db.execute("DELETE FROM points WHERE id = ?", (point.id,)).rowcount
                kept = self._keep_last_id(db, self._last_id, state_written)
            done()
            self._depth -= deleted
            self._last_id_kept = kept

        with self._lock:
            self._use(move)

    @property
    def depth(self) -> int:
        return self._depth

    def oldest_time_ns(self) -> int | None:
        """The timestamp of the point waiting longest (by arrival: cheap, and what `max_points` drops first)."""
        with self._lock:
            row = self._use(lambda db: db.execute("SELECT time_ns FROM points WHERE id > ? ORDER BY id LIMIT 1",
                                                  (self._delivered_upto,)).fetchone())
        return row[0] if row else None

    def stage_state(self, **values: object) -> None:
        """State for `templog health` and `check`, written with the next commit (a tick's, or `write_pending`)."""
        with self._staging_lock:
            self._staged.update((k, str(v)) for k, v in values.items())

    def put_state(self, **values: object) -> None:
        """State written now, in one transaction with whatever else waits for a commit."""
        self.stage_state(**values)
        self.write_pending()

    def state(self) -> dict[str, str]:
        """As the file has it, with what is staged for the next commit over it."""
        with self._lock:
            state = dict(self._use(lambda db: db.execute("SELECT key, value FROM state").fetchall()))
        with self._staging_lock:
            return {**state, **self._staged}

    def readings(self, start_ns: int, stop_ns: int, sensors: Sequence[str] = (), *,
                 with_humidity: bool = False) -> Generator[Reading, None, None]:
        """Temperature readings waiting here, start <= time < stop (only those with a humidity, if `with_humidity`),
        in time order, read from a cursor as they are consumed (SQLite sorts them, spilling to temporary files, in
        bounded memory). The connection is held until the iterator is exhausted or closed."""
        from collector.readings import Reading

        humidity = "NULL" if "humidity" in self._missing.get("points", ()) else "humidity"
        conditions = [f"{humidity} IS NOT NULL"] if with_humidity else []
        with contextlib.closing(self._rows(f"sensor, time_ns, celsius, {humidity}", start_ns, stop_ns, sensors,
                                           conditions, [])) as rows:
            for sensor, time_ns, celsius, humidity_value in rows:
                yield Reading(sensor, time_ns, celsius, humidity_value)

    def temperatures(self, start_ns: int, stop_ns: int, sensors: Sequence[str] = (), *,
                     outside: tuple[float | None, float | None] | None = None
                     ) -> Generator[tuple[str, int, float], None, None]:
        """As `readings`, but `(sensor, time_ns, celsius)` tuples: what `report` adds up (a Reading built per row
        doubled the time to read a range). With `outside` = (low, high), only those below low or above high (a None
        bound: no limit on that side; both None: none), filtered by SQLite before it sorts them. A row without a
        temperature (NULL: templog writes none, a foreign outbox may) is none, as `history` skips it."""
        conditions, args = ["celsius IS NOT NULL"], []
        if outside is not None:
            beyond = []
            for condition, bound in zip(("celsius < ?", "celsius > ?"), outside, strict=True):
                if bound is not None:
                    beyond.append(condition)
                    args.append(bound)
            conditions.append(f"({' OR '.join(beyond) or '0'})")  # no bound: no reading is outside
        return self._rows("sensor, time_ns, celsius", start_ns, stop_ns, sensors, conditions, args)

    def _rows(self, columns: str, start_ns: int, stop_ns: int, sensors: Sequence[str], conditions: list[str],
              args: list) -> Generator[tuple, None, None]:
        """`columns` of the temperature readings in start <= time < stop, of `sensors` (all if none), meeting every
        SQL condition of `conditions` (their parameters `args`), in time order from a cursor, under the lock until
        exhausted or closed."""
        query = "SELECT " + columns + " FROM points WHERE sensor IS NOT NULL AND time_ns >= ? AND time_ns < ?"
        query += "".join(f" AND {condition}" for condition in conditions)
        args = [start_ns, stop_ns, *args]
        if sensors:
            query += f" AND sensor IN ({','.join('?' * len(sensors))})"
            args += list(sensors)
        with self._lock:
            cursor = self._use(lambda db: db.execute(query + " ORDER BY time_ns, sensor", args))
            try:
                yield from cursor
            except sqlite3.DatabaseError as exc:  # a damaged page met further on
                if outbox_repair.is_damage(exc):
                    raise OutboxDamaged(self.path, str(exc)) from exc
                raise


def _check_not_truncated(path: str) -> None:
    """Raise OutboxDamaged if the file is shorter than its header says (a cut copy, a worn card's lost tail): what
    `health` and `history` can afford at every call, where `run` and `check` pay for a quick_check. The header's
    page count is valid when its version-valid-for number equals the change counter (SQLite's file format, "The
    in-header database size"); a WAL can only add pages beyond it, never make the file legitimately shorter."""
    try:
        with open(path, "rb") as f:
            header = f.read(100)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return  # SQLite's own open says what is wrong
    if len(header) < 100 or not header.startswith(b"SQLite format 3\0"):
        return  # not a database at all: SQLite says so
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages, counter, valid_for = (int.from_bytes(header[i:i + 4], "big") for i in (28, 24, 92))
    if pages and counter == valid_for and pages * page_size > size:
        raise OutboxDamaged(path, f"the file is {size:,} bytes, its header says {pages * page_size:,}: truncated")


def _quick_check(db: sqlite3.Connection, path: str) -> None:
    """Raise OutboxDamaged unless SQLite's quick_check passes. It reads every page and checks each page's and
    each record's format (not index contents, which the outbox barely has). Measured on a 1,000,000-point outbox
    (129 MB, x86): 0.2 s with the file cached, 1.1 s cold, against 0.05 s / 0.2 s for the count(*) done at every
    open anyway (which walks the points table's pages but not their records). A Pi, a few times slower (not
    measured), pays seconds once per `run` start for the largest backlog, and damage is found before collecting
    rather than mid-delivery; `health`, every 30 s, does not pay it."""
    result = db.execute("PRAGMA quick_check(1)").fetchall()
    if result != [("ok",)]:
        raise OutboxDamaged(path, f"quick_check: {result[0][0] if result else 'no answer'}")


def _row(point: Point, reading: Reading | None) -> tuple[str | None, int, float | None, float | None, str]:
    """The columns (sensor, time_ns, celsius, humidity, line) of a point's row; `reading` is the one it carries, if
    any."""
    if reading is None:
        return None, point.time_ns, None, None, point.line()
    return reading.sensor, point.time_ns, reading.celsius, reading.humidity, point.line()
