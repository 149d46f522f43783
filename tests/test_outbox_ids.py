"""Point ids only grow: the next point's id is above every id ever handed out, whatever was deleted, dropped, set
aside, restarted or repaired in between. The delivery watermark (`delivered_upto`: every point up to it is
delivered) and the `rejected` table (keyed by the point's id) go by ids, so a reused id would be a new reading
taken for delivered, or a rejected point overwritten. New outboxes have no AUTOINCREMENT (its sqlite_sequence page
was a second page written at every tick's commit); the outbox hands ids out itself, and an outbox of the previous
version, with AUTOINCREMENT, keeps working.
"""

import random
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.lineprotocol import Point
from collector.outbox import PURGE_ROWS, Outbox
from outbox_rows import rejected
from temperature_points import temperature
from test_outbox_damage import overwrite_page, points_leaves, rows

S = 1_000_000_000


def points(first: int, n: int) -> list[Point]:
    return [temperature("a", i * S, 20.0) for i in range(first, first + n)]


def append_ids(outbox: Outbox, n: int) -> list[int]:
    """Append n points; the ids they got (they are the newest waiting)."""
    outbox.append(points(1000, n))
    return list(outbox.oldest(10**6).ids[-n:])


def deliver_all(outbox: Outbox) -> None:
    while batch := outbox.oldest(PURGE_ROWS * 3):
        outbox.acknowledge(batch)
    while outbox.purge():
        pass


def test_ids_only_grow_after_the_outbox_was_emptied_and_reopened(tmp_path):
    path = str(tmp_path / "o.sqlite")
    outbox = Outbox(path)
    first = append_ids(outbox, 3)
    deliver_all(outbox)
    assert rows(tmp_path / "o.sqlite", "SELECT count(*) FROM points") == [(0,)]
    assert append_ids(outbox, 1)[0] > first[-1]
    deliver_all(outbox)
    outbox.close()
    reopened = Outbox(path)
    assert reopened.depth == 0 and append_ids(reopened, 1)[0] == first[-1] + 2


def test_a_point_after_an_emptied_backlog_and_a_restart_is_sent_not_taken_for_delivered(tmp_path):
    """A backlog delivered in one batch leaves its watermark in the file; once every point is deleted, a restart,
    then a new reading: with its id below the watermark it would never be sent."""
    path = str(tmp_path / "o.sqlite")
    outbox = Outbox(path)
    outbox.append(points(0, PURGE_ROWS * 3))
    outbox.acknowledge(outbox.oldest(PURGE_ROWS * 3))  # deleted a slice at a time: the watermark row is written
    while outbox.purge():
        pass
    outbox.close()
    reopened = Outbox(path)
    reopened.append(points(5000, 1))
    assert reopened.depth == 1 and [p.line for p in reopened.oldest(10)] == [points(5000, 1)[0].line()]


def test_ids_only_grow_when_the_newest_points_were_set_aside_or_dropped(tmp_path):
    path = str(tmp_path / "o.sqlite")
    now = [1100 * S]  # append_ids' points are 1000 s and later: within max_age
    outbox = Outbox(path, max_age_s=200, clock=lambda: now[0])
    [newest] = append_ids(outbox, 1)
    outbox.set_aside(outbox.oldest(1)[0], "HTTP 400: field type conflict")  # the only point: the table is empty
    outbox.close()
    outbox = Outbox(path, max_age_s=200, clock=lambda: now[0])
    [after_rejected] = append_ids(outbox, 1)
    assert after_rejected > newest
    assert outbox.append(points(0, 5)).dropped_for_age == 5  # older than max_age: the newest points dropped at once
    del outbox  # no close: as after kill -9
    outbox = Outbox(path, max_age_s=200, clock=lambda: now[0])
    assert append_ids(outbox, 1)[0] == after_rejected + 6
    outbox.set_aside(outbox.oldest(1)[0], "HTTP 400: another")
    assert len(rejected(outbox)) == 2  # the first rejected point was not overwritten by a reused id


@pytest.mark.parametrize("points, lost_table", [(2000, "points"), (20, "state")])
def test_ids_only_grow_after_a_repair_of_an_emptied_outbox(tmp_path, points, lost_table):
    """Every point delivered, then the points table's root page lost (the state says which ids were handed out),
    or the state's page (nothing in the salvage says so)."""
    path = tmp_path / "o.sqlite"
    outbox = Outbox(str(path))
    last = append_ids(outbox, points)[-1]
    deliver_all(outbox)
    outbox.close()
    [(root,)] = rows(path, f"SELECT rootpage FROM sqlite_master WHERE name = '{lost_table}'")
    overwrite_page(path, root, random.Random(0).randbytes(4096))
    repaired = Outbox(str(path), repair=True)
    assert append_ids(repaired, 1)[0] > last


def test_ids_only_grow_across_a_repair_that_lost_the_newest_points(tmp_path):
    """The newest points on a damaged page: the salvaged file still knows their ids were handed out."""
    path = tmp_path / "o.sqlite"
    outbox = Outbox(str(path))
    last = append_ids(outbox, 3000)[-1]
    outbox.close()
    number, ids = points_leaves(path)[-1]
    assert last in ids
    overwrite_page(path, number, random.Random(1).randbytes(4096))
    repaired = Outbox(str(path), repair=True)
    assert repaired.depth == 3000 - len(ids)
    assert append_ids(repaired, 1)[0] > last


# main's schema before issue 10's disk work (`2de6685`:collector/outbox.py), as an outbox of that version has it
PREVIOUS_SCHEMA = """
CREATE TABLE points (id INTEGER PRIMARY KEY AUTOINCREMENT, sensor TEXT, time_ns INTEGER NOT NULL, celsius REAL,
                     line TEXT NOT NULL);
CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE rejected (id INTEGER PRIMARY KEY, line TEXT NOT NULL, reason TEXT NOT NULL,
                       rejected_at_ns INTEGER NOT NULL);
"""


def previous_version_outbox(path: Path) -> list[str]:
    """An outbox as the previous version leaves it: 1 KiB pages, WAL, points 1-500 handed out, 491-500 waiting,
    one rejected. Returns the waiting lines."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA page_size=1024")
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(PREVIOUS_SCHEMA)
    db.executemany("INSERT INTO points (sensor, time_ns, celsius, line) VALUES (?, ?, ?, ?)",
                   [("a", p.time_ns, p.fields["celsius"], p.line()) for p in points(0, 500)])
    db.execute("DELETE FROM points WHERE id <= 490")
    db.execute("INSERT INTO rejected VALUES (400, 'bad 1', 'HTTP 400', 0)")
    db.execute("INSERT INTO state VALUES ('heartbeat_ns', '5')")
    db.close()
    return [p.line() for p in points(490, 10)]


def test_an_outbox_of_the_previous_version_keeps_working(tmp_path):
    path = tmp_path / "o.sqlite"
    waiting = previous_version_outbox(path)
    outbox = Outbox(str(path), repair=True)
    assert outbox.depth == 10 and [p.line for p in outbox.oldest(100)] == waiting
    assert outbox.state()["heartbeat_ns"] == "5" and rejected(outbox) == [("bad 1", "HTTP 400")]
    assert append_ids(outbox, 2) == [501, 502]
    assert [r.time_ns for r in outbox.readings(0, 10**6 * S)][:1] == [490 * S]
    deliver_all(outbox)
    outbox.close()
    reopened = Outbox(str(path))
    assert reopened.depth == 0 and append_ids(reopened, 1) == [503]
    reopened.verify()
    reopened.close()
    assert rows(path, "SELECT seq FROM sqlite_sequence WHERE name = 'points'") == [(503,)]


def test_a_damaged_outbox_of_the_previous_version_is_salvaged_with_its_ids(tmp_path):
    path = tmp_path / "o.sqlite"
    previous_version_outbox(path)
    db = sqlite3.connect(path)
    db.execute("DELETE FROM points")  # every point delivered: only sqlite_sequence says which ids were handed out
    db.commit()
    [(root,)] = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'rejected'").fetchall()
    db.close()
    overwrite_page(path, root, random.Random(2).randbytes(4096))
    repaired = Outbox(str(path), repair=True)
    assert append_ids(repaired, 1) == [501]
    assert repaired.state()["heartbeat_ns"] == "5"  # its state, in a table with a rowid, salvaged too


OPERATIONS = st.lists(st.one_of(
    st.tuples(st.just("append"), st.integers(1, 30)),
    st.tuples(st.just("deliver"), st.integers(1, 40)),
    st.tuples(st.just("set aside"), st.just(0)),
    st.tuples(st.just("drop by age"), st.just(0)),
    st.tuples(st.just("reopen"), st.booleans()),
), max_size=25)


@settings(max_examples=150, deadline=None)
@given(operations=OPERATIONS)
def test_ids_never_go_backwards(operations):
    """Any sequence of appends, deliveries, set-asides, drops by a bound and restarts (closed or killed)."""
    with tempfile.TemporaryDirectory() as scratch:
        path = str(Path(scratch) / "o.sqlite")
        now = [1100 * S]  # append_ids' points are 1000 s and later: within max_age
        outbox = Outbox(path, max_points=50, max_age_s=200, clock=lambda: now[0])
        highest = 0
        for operation, n in operations:
            if operation == "append":
                ids = append_ids(outbox, n)
                assert all(i > highest for i in ids), (ids, highest)
                highest = max([highest, *ids])
            elif operation == "deliver":
                outbox.acknowledge(outbox.oldest(n))
            elif operation == "set aside" and outbox.depth:
                outbox.set_aside(outbox.oldest(1)[0], "HTTP 400")
            elif operation == "drop by age":
                outbox.append(points(0, 1))  # older than max_age: the newest point is dropped at once
                highest += 1
            elif operation == "reopen":
                if n:
                    outbox.close()
                outbox = Outbox(path, max_points=50, max_age_s=200, clock=lambda: now[0])
        outbox.close()
        last = append_ids(Outbox(path), 1)[0]
        assert last > highest
