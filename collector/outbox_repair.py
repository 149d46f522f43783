"""Repair of a damaged outbox: carry every row SQLite can still read into a fresh file, then move the damaged one
aside as `<outbox>.damaged-<UTC time>` (with its -wal and -shm) and put the fresh one in its place.

The fresh file is built beside the damaged one (`<outbox>.salvaging`) and renamed `<outbox>.salvaged` once
complete and durable; only then are the files swapped. A crash during the salvage leaves the damaged file where
it was, to be repaired again at the next start; a crash during the swap is finished at the next start
(`finish_interrupted_repair`). Rows keep their ids:
the order of delivery stays, and a batch the sender read before the repair still names the same points; and new
ids stay above every id handed out before (the fresh file's LAST_ID state row) whenever anything that goes by ids
is salvaged. A file of which nothing can be read (not a database, its schema page lost) leaves nothing that names
an id, no point, no rejected point, no delivery watermark: a fresh outbox may start its ids again.
"""

from __future__ import annotations

import bisect
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from collector.ticks import compact_utc_text

_MIN_ROWID, _MAX_ROWID = -(2**63), 2**63 - 1
_CHUNK = 10_000  # rows per statement (and in memory, where a chunk is read again row by row)
_COMPANIONS = ("-wal", "-shm")  # SQLite finds them by name: renamed along, they stay the damaged file's
_COMPLETE = ".salvaged"  # a finished, durable salvage waiting to take the outbox's place
_TABLE_INTERIOR = 0x05  # the first byte of an interior page of a table's b-tree
LAST_ID = "last_id"  # the state row saying which ids were handed out, where the points no longer show it
# Ids a salvage cannot see, when the pages of the newest points (or of the state) are lost: those handed out after
# the LAST_ID row that the last state commit wrote (the heartbeat's, every 10 s while `run` runs). 2**32 is more
# than any collector hands out in 10 s, and leaves 2**31 such repairs before ids (63 bits) run out.
LOST_IDS_MARGIN = 2**32


def last_id(db: sqlite3.Connection) -> int:
    """The highest point id the file says was handed out, besides its points and rejected points: its LAST_ID state
    row, or, in a file of a version whose points table had AUTOINCREMENT, its sqlite_sequence (0: neither)."""
    found = [int(row[0]) for row in db.execute("SELECT value FROM state WHERE key = ?", (LAST_ID,))]
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
        found += [row[0] for row in db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'points'")]
    return max(found, default=0)


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
    os.rename(fresh, path + _COMPLETE)  # from here on, a crash is finished by finish_interrupted_repair
    _sync(os.path.dirname(os.path.abspath(path)))
    damaged = _aside_name(path, now_ns)
    _swap(path, damaged)
    return Salvaged(damaged, **counts)


def finish_interrupted_repair(path: str, now_ns: int) -> str | None:
    """If a crash stopped a repair after its salvage was complete (`<outbox>.salvaged` exists), finish the swap and
    return where the damaged file went; else None. Without this, the next start would open an empty outbox in
    the damaged file's place and the salvaged points would wait, unseen, beside it."""
    if not os.path.exists(path + _COMPLETE):
        return None
    damaged = _aside_name(path, now_ns)
    _swap(path, damaged)
    return damaged


def _swap(path: str, damaged: str) -> None:
    """Move the damaged file aside (its -wal and -shm first: a crash between leaves the main file, which a finish
    moves aside on its own) and put the complete salvage in its place."""
    for suffix in _COMPANIONS:
        if os.path.exists(path + suffix):
            os.rename(path + suffix, damaged + suffix)
    if os.path.exists(path):
        os.rename(path, damaged)
    os.rename(path + _COMPLETE, path)
    _sync(os.path.dirname(os.path.abspath(path)))  # the renames themselves must survive a power cut


def _aside_name(path: str, now_ns: int) -> str:
    stamp = compact_utc_text(now_ns)
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
    gaps: dict[str, list[Gap]] = {"points": [(None, None)], "state": [(None, None)]}  # missing: nothing read
    for table in ("points", "rejected", "state"):
        if table in tables:
            counts[table], gaps[table] = _copy_state(dest) if table == "state" else _copy(dest, table, path)
    sequence = _points_sequence(dest)
    if "points" in tables:
        counts["lost_at_most"] = _lost_at_most(gaps["points"], sequence)
    # new ids stay above every id ever handed out: the fresh file's LAST_ID row says up to where
    try:
        recorded = last_id(dest)  # the damaged file's LAST_ID row, salvaged with its state
    except ValueError:  # a damaged value
        recorded = 0
    highest = max(sequence or 0, recorded, *(dest.execute(f"SELECT max(id) FROM main.{t}").fetchone()[0] or 0
                                             for t in ("points", "rejected")))
    newest_lost = gaps["points"] and gaps["points"][-1][1] is None  # nothing readable after the last gap
    if sequence is None and (newest_lost or gaps["state"]):  # what the points or the LAST_ID row said is lost
        highest += LOST_IDS_MARGIN
    if highest:
        dest.execute("INSERT OR REPLACE INTO main.state (key, value) VALUES (?, ?)", (LAST_ID, str(highest)))
    return counts


def _points_sequence(db: sqlite3.Connection) -> int | None:
    """The ids handed out, exactly, as the sqlite_sequence of an AUTOINCREMENT points table (a previous version's)
    says; None if there is none, or it cannot be read."""
    try:
        row = db.execute("SELECT seq FROM salvage.sqlite_sequence WHERE name = 'points'").fetchone()
    except sqlite3.DatabaseError:
        return None
    return row[0] if row else None


Gap = tuple[int | None, int | None]  # rowids skipped: (last one read before, first one readable after; None: none)


def _copy(db: sqlite3.Connection, table: str, path: str) -> tuple[int, list[Gap]]:
    """Copy `table` from `salvage` (the file at `path`) to `main` in rowid order, a chunk per statement. A chunk that
    cannot be read (a bad page) is read again row by row up to the damage, which is then skipped to the next rowid
    that can be read: one bad page loses only the rows on it. Each chunk commits on its own: the file is not in use
    yet."""
    present = {row[1] for row in db.execute(f"PRAGMA salvage.table_info({table})")}
    # the rowid is carried explicitly (ids stay, and progress is measured in it), so not its INTEGER PRIMARY KEY alias
    columns = ", ".join(["rowid"] + [name for _, name, kind, _, _, pk in db.execute(f"PRAGMA main.table_info({table})")
                                     if name in present and not (pk == 1 and kind.upper() == "INTEGER")])
    copy = f"INSERT OR IGNORE INTO main.{table} ({columns}) SELECT {columns} FROM salvage.{table} WHERE rowid >= ?"
    chunk_end = f"SELECT rowid FROM salvage.{table} WHERE rowid >= ? ORDER BY rowid LIMIT 1 OFFSET {_CHUNK - 1}"
    next_row = f"SELECT {columns} FROM salvage.{table} WHERE rowid >= ? ORDER BY rowid LIMIT 1"
    insert = f"INSERT OR IGNORE INTO main.{table} ({columns}) VALUES ({', '.join('?' * (columns.count(',') + 1))})"
    copied, gaps = 0, list[Gap]()
    last_read: int | None = None  # the last rowid read
    leaf_starts: list[int] | None = None  # read from the file at the first damage met
    read_since_gap = True
    start: int | None = _MIN_ROWID
    while start is not None:
        chunk_start = start  # `start` moves on inside the try, so after it the checker no longer knows it is set
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
        if leaf_starts is None:
            [(root,)] = db.execute("SELECT rootpage FROM salvage.sqlite_master WHERE type = 'table' AND name = ?",
                                   (table,)).fetchall()
            leaf_starts = _leaf_starts(path, root)
        resume = _next_readable(db, table, rows[-1][0] if rows else chunk_start, leaf_starts)
        if read_since_gap:
            gaps.append((last_read, resume))
        else:  # failed again before reading anything: the same gap goes on
            gaps[-1] = (gaps[-1][0], resume)
        read_since_gap, start = False, resume
    return copied, gaps


def _copy_state(db: sqlite3.Connection) -> tuple[int, list[Gap]]:
    """Copy the state (a few rows on one page; by key: a new outbox's has no rowid), or none if it cannot be read."""
    try:
        copy = "INSERT OR IGNORE INTO main.state (key, value) SELECT key, value FROM salvage.state"
        return db.execute(copy).rowcount, []
    except sqlite3.DatabaseError:
        return 0, [(None, None)]


def _next_readable(db: sqlite3.Connection, table: str, after: int, leaf_starts: list[int]) -> int | None:
    """The smallest rowid above `after` from which a read succeeds (or None). Seeking a rowid descends to the leaf
    page whose range holds it, so reads fail for rowids routed to a bad page and succeed past it. The search goes
    one leaf's range at a time (`leaf_starts`): a search across pages would meet bad pages further on too, and
    its steps could pass over a good page between them (from the lowest rowid, a first step reaches 2**63)."""
    probe = f"SELECT rowid FROM salvage.{table} WHERE rowid >= ? ORDER BY rowid LIMIT 1"

    def readable(rowid: int) -> bool:
        try:
            db.execute(probe, (rowid,)).fetchone()
            return True
        except sqlite3.DatabaseError:
            return False

    ends = [start - 1 for start in leaf_starts[bisect.bisect_right(leaf_starts, after + 1):]] + [_MAX_ROWID]
    low = after + 1
    for high in ends:
        if low > _MAX_ROWID:
            return None
        found = _first_readable(readable, low, high)
        if found is not None:
            return found
        low = high + 1
    return None


def _first_readable(readable: Callable[[int], bool], low: int, high: int) -> int | None:
    """The smallest rowid in low..high from which a read succeeds, or None; within one leaf's range reads fail up
    to a point and succeed from there (a bad page: all fail; a bad cell: those up to it). Probes forward in
    doubling steps, then bisects back to the edge."""
    if readable(low):
        return low
    step = 1
    while True:
        ahead = min(low + step, high)
        if ahead == low:  # low == high
            return None
        if readable(ahead):
            break
        if ahead == high:
            return None
        low, step = ahead, step * 2
    while ahead - low > 1:  # `low` cannot be read from, `ahead` can
        middle = (low + ahead) // 2
        low, ahead = (low, middle) if readable(middle) else (middle, ahead)
    return ahead


def _leaf_starts(path: str, root: int) -> list[int]:
    """The first rowid of each leaf page's range but the first, for the table whose b-tree has its root at page
    `root`: one above each key of its interior pages (https://www.sqlite.org/fileformat2.html, "B-tree Pages"),
    read from the file itself. A page that is not an interior page (a leaf, or damage) gives none. The ranges only
    guide the search for what SQLite can read, whose own reads decide what is salvaged (pages still in a -wal file
    are not seen here; a repair closes its connection first, which as the last one checkpoints them into the file)."""
    keys: set[int] = set()
    try:
        with open(path, "rb") as file:
            page_size = int.from_bytes(file.read(100)[16:18])
            page_size = 65536 if page_size == 1 else page_size  # how the header writes 65536
            pending, seen = [root], set()
            while pending and page_size >= 512:
                number = pending.pop()
                if number < 2 or number in seen:  # page 1 holds the schema; a cycle is damage
                    continue
                seen.add(number)
                file.seek((number - 1) * page_size)
                page = file.read(page_size)
                if len(page) < page_size or page[0] != _TABLE_INTERIOR:
                    continue
                pending.append(int.from_bytes(page[8:12]))  # the right-most child
                for i in range(min(int.from_bytes(page[3:5]), (page_size - 12) // 2)):
                    cell = int.from_bytes(page[12 + 2 * i:14 + 2 * i])
                    if cell + 5 > page_size:
                        continue
                    pending.append(int.from_bytes(page[cell:cell + 4]))
                    key = _varint(page, cell + 4)
                    if key is not None and key < _MAX_ROWID:
                        keys.add(key + 1)
    except OSError:
        return []
    return sorted(keys)


def _varint(data: bytes, at: int) -> int | None:
    """SQLite's variable-length integer at `at`, as a signed 64-bit rowid (None: it runs past the end)."""
    value = 0
    for i in range(9):
        if at + i >= len(data):
            return None
        byte = data[at + i]
        if i == 8:
            value = (value << 8) | byte
            break
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            break
    return value - 2**64 if value >= 2**63 else value


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
