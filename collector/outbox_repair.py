"""Repair of a damaged outbox: carry every row SQLite can still read into a fresh file, then move the damaged one
aside as `<outbox>.damaged-<UTC time>` (with its -wal and -shm) and put the fresh one in its place.

The fresh file is built beside the damaged one and takes its place only once complete and durable, so a crash
mid-repair leaves the damaged file where it was, to be repaired again at the next start. Rows keep their ids:
the order of delivery stays, and a batch the sender read before the repair still names the same points.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

_MIN_ROWID, _MAX_ROWID = -(2**63), 2**63 - 1
_CHUNK = 10_000  # rows per statement (and in memory, where a chunk is read again row by row)
_COMPANIONS = ("-wal", "-shm")  # SQLite finds them by name: renamed along, they stay the damaged file's


def is_damage(exc: BaseException) -> bool:
    """The file is not a database, or a page of it is malformed: no retry will help, only a repair."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def read_only_uri(path: str) -> str:
    """A URI that opens `path` read-only (its WAL is still honoured, so what a running collector committed shows)."""
    return Path(path).absolute().as_uri() + "?mode=ro"


@dataclass(frozen=True)
class Salvaged:
    """What a repair carried over, and where the damaged file went."""

    damaged_path: str
    points: int = 0
    rejected: int = 0
    state: int = 0
    lost_at_most: int | None = None  # points on unreadable pages, from the id ranges skipped; None: unknown

    def report(self, path: str, cause: str, expected: int | None) -> str:
        """The one line logged: both files, the counts; `expected` is the number of points known to be waiting."""
        if expected is not None:
            lost = f"{max(0, expected - self.points)} lost"
        elif self.lost_at_most is not None:
            lost = f"at most {self.lost_at_most} lost on unreadable pages"
        else:
            lost = "how many were lost is unknown"
        kept = "".join(f", {n} {what} kept" for n, what in ((self.rejected, "rejected point(s)"),
                                                            (self.state, "state value(s)")) if n)
        return (f"the outbox {path} is damaged ({cause}): moved it aside to {self.damaged_path}; "
                f"{self.points} point(s) salvaged into a fresh outbox at {path}, {lost}{kept}; collection goes on")


def repair(path: str, now_ns: int, create_tables: Callable[[sqlite3.Connection], None]) -> Salvaged:
    """Salvage `path` into a fresh outbox made by `create_tables`, then swap them. No connection may be open on it."""
    fresh = path + ".salvaging"
    for leftover in (fresh, fresh + "-journal"):  # from a repair that a crash interrupted
        if os.path.exists(leftover):
            os.remove(leftover)
    dest = sqlite3.connect(Path(fresh).absolute().as_uri(), uri=True, isolation_level=None)
    try:
        dest.execute("PRAGMA synchronous=OFF")  # one fsync of the finished file instead of one per chunk
        create_tables(dest)
        counts = _salvage(path, dest)
    finally:
        dest.close()
    _sync(fresh)
    damaged = _aside_name(path, now_ns)
    os.rename(path, damaged)
    for suffix in _COMPANIONS:
        if os.path.exists(path + suffix):
            os.rename(path + suffix, damaged + suffix)
    os.rename(fresh, path)
    _sync(os.path.dirname(os.path.abspath(path)))  # the renames themselves must survive a power cut
    return Salvaged(damaged, **counts)


def _aside_name(path: str, now_ns: int) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now_ns / 1e9))
    name, n = f"{path}.damaged-{stamp}", 1
    while os.path.exists(name):  # a second repair within the same second
        n += 1
        name = f"{path}.damaged-{stamp}-{n}"
    return name


def _sync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _salvage(path: str, dest: sqlite3.Connection) -> dict:
    """Copy what can be read of points, rejected and state from the file at `path` into `dest` (attached to it
    read-only, so SQLite copies rows itself: a million points in 1.5-2.5 s on an x86 PC, 5 s through Python)."""
    try:
        dest.execute("ATTACH DATABASE ? AS salvage", (read_only_uri(path),))
        tables = {row[0] for row in dest.execute("SELECT name FROM salvage.sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError:  # not a database, or its schema page is gone: nothing can be read
        return {}
    counts: dict = {"points": 0}
    sequence = _points_sequence(dest) if "sqlite_sequence" in tables else None
    for table in ("points", "rejected", "state"):
        if table in tables:
            counts[table], gaps = _copy(dest, table)
            if table == "points":
                counts["lost_at_most"] = _lost_at_most(gaps, sequence)
    if sequence is not None:  # new ids stay above every id ever handed out
        if not dest.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'points'", (sequence,)).rowcount:
            dest.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('points', ?)", (sequence,))
    return counts


def _points_sequence(db: sqlite3.Connection) -> int | None:
    try:
        row = db.execute("SELECT seq FROM salvage.sqlite_sequence WHERE name = 'points'").fetchone()
    except sqlite3.DatabaseError:
        return None
    return row[0] if row else None


Gap = tuple[int | None, int | None]  # rowids skipped: (last one read before, first one readable after; None: none)


def _copy(db: sqlite3.Connection, table: str) -> tuple[int, list[Gap]]:
    """Copy `table` from `salvage` to `main` in rowid order, a chunk per statement. A chunk that cannot be read
    (a bad page) is read again row by row up to the damage, which is then skipped to the next rowid that can be
    read: one bad page loses only the rows on it. Each chunk commits on its own: the file is not in use yet."""
    present = {row[1] for row in db.execute(f"PRAGMA salvage.table_info({table})")}
    # the rowid is carried explicitly (ids stay, and progress is measured in it), so not its INTEGER PRIMARY KEY alias
    columns = ", ".join(["rowid"] + [name for _, name, kind, _, _, pk in db.execute(f"PRAGMA main.table_info({table})")
                                     if name in present and not (pk == 1 and kind.upper() == "INTEGER")])
    copy = f"INSERT OR IGNORE INTO main.{table} ({columns}) SELECT {columns} FROM salvage.{table} WHERE rowid >= ?"
    chunk_end = f"SELECT rowid FROM salvage.{table} WHERE rowid >= ? ORDER BY rowid LIMIT 1 OFFSET {_CHUNK - 1}"
    next_row = f"SELECT {columns} FROM salvage.{table} WHERE rowid >= ? ORDER BY rowid LIMIT 1"
    insert = f"INSERT OR IGNORE INTO main.{table} ({columns}) VALUES ({', '.join('?' * (columns.count(',') + 1))})"
    copied, gaps = 0, []
    last_read: int | None = None  # the last rowid read
    read_since_gap = True
    start: int | None = _MIN_ROWID
    while start is not None:
        try:
            end = db.execute(chunk_end, (start,)).fetchone()
            if end is None:
                copied += db.execute(copy, (start,)).rowcount
                return copied, gaps
            copied += db.execute(copy + " AND rowid <= ?", (start, end[0])).rowcount
            last_read, read_since_gap = end[0], True
            start = end[0] + 1 if end[0] < _MAX_ROWID else None
            continue
        except sqlite3.DatabaseError:  # damage or an I/O error in this chunk: row by row up to it
            pass
        rows: list[tuple] = []
        failed = False
        while len(rows) < _CHUNK:  # one row per query: Python's cursor steps past a row before returning it
            try:
                row = db.execute(next_row, (rows[-1][0] + 1 if rows else start,)).fetchone()
            except sqlite3.DatabaseError:
                failed = True
                break
            if row is None:
                break
            rows.append(row)
            if row[0] == _MAX_ROWID:
                break
        if rows:
            db.execute("BEGIN")
            copied += db.executemany(insert, rows).rowcount
            db.execute("COMMIT")
            last_read, read_since_gap = rows[-1][0], True
        if not failed:  # could read it all this time
            start = rows[-1][0] + 1 if len(rows) == _CHUNK and rows[-1][0] < _MAX_ROWID else None
            continue
        resume = _next_readable(db, table, rows[-1][0] if rows else start)
        if read_since_gap:
            gaps.append((last_read, resume))
        else:  # failed again before reading anything: the same gap goes on
            gaps[-1] = (gaps[-1][0], resume)
        read_since_gap, start = False, resume
    return copied, gaps


def _next_readable(db: sqlite3.Connection, table: str, after: int) -> int | None:
    """The smallest rowid above `after` from which a read succeeds (or None): seeking a rowid descends to the page
    that would hold it, so reads fail for rowids routed to a bad page and succeed past it. Probes forward in
    doubling steps, then bisects back to the edge of the bad range."""
    probe = f"SELECT rowid FROM salvage.{table} WHERE rowid >= ? ORDER BY rowid LIMIT 1"

    def readable(rowid: int) -> bool:
        try:
            db.execute(probe, (rowid,)).fetchone()
            return True
        except sqlite3.DatabaseError:
            return False

    low, step = after, 1  # `low` cannot be read from
    while True:
        high = min(low + step, _MAX_ROWID)
        if readable(high):
            break
        if high == _MAX_ROWID:
            return None
        low, step = high, step * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if readable(middle) else (middle, high)
    return high


def _lost_at_most(gaps: list[Gap], sequence: int | None) -> int | None:
    """Points ids could have had in the skipped ranges (some of those ids may have been set aside or dropped by
    `max_age`: an upper bound). Unknown before the first readable point: the ids there may long have been delivered."""
    total = 0
    for after, resume in gaps:
        end = resume if resume is not None else (sequence + 1 if sequence is not None else None)
        if after is None or end is None:
            return None
        total += max(0, end - after - 1)
    return total
