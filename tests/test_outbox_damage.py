"""A damaged outbox never stops collection: `run` moves it aside, salvages what SQLite can still read into a fresh
one, logs one ERROR and goes on; `history`, `check` and `health` say it is damaged, exit 1 and change nothing.

Damage is made as a worn SD card makes it: a file of random bytes, or one page of a real outbox overwritten. The
page is found by reading SQLite's file format (https://www.sqlite.org/fileformat2.html, "B-tree Pages"): the points
table's b-tree is walked from its root page, so a test knows which rows a damaged leaf page held.
"""

import functools
import logging
import os
import random
import re
import sqlite3
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cli import start_run, stop_run, templog, wait_until
from collector.outbox import Outbox
from faulty_proxy import FaultyProxy
from outbox_rows import rejected
from temperature_points import temperature

S = 1_000_000_000
TABLE_LEAF, TABLE_INTERIOR = 0x0D, 0x05


def fill(path: Path, n: int, sensor: str = "old", rejected: int = 2) -> dict[int, str]:
    """A real outbox of n points one second apart ending about now, `rejected` of them set aside, some state;
    closed (so checkpointed: every page is in the main file). Returns id -> line of the points waiting."""
    first = (time.time_ns() // S - n) * S
    outbox = Outbox(str(path))
    for start in range(0, n, 10_000):
        batch = []
        for i in range(start, min(n, start + 10_000)):
            batch.append(temperature(sensor, first + i * S, round(20 + (i % 100) / 10, 1)))
        outbox.append(batch)
    for pending in list(outbox.oldest(n))[1:1 + rejected]:
        outbox.set_aside(pending, "HTTP 400: field type conflict")
    outbox.put_state(last_delivery_ns=first)
    waiting = {p.id: p.line for p in outbox.oldest(n)}
    outbox.close()
    return waiting


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for i in range(8):
        byte = data[pos + i]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, pos + i + 1
    return (value << 8) | data[pos + 8], pos + 9


def points_leaves(path: Path) -> list[tuple[int, list[int]]]:
    """(page number, rowids on it) of every leaf page of the points table, in rowid order."""
    data = path.read_bytes()
    page_size = int.from_bytes(data[16:18]) or 65536
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    [(root,)] = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'points'").fetchall()
    db.close()

    def walk(number: int):
        page = data[(number - 1) * page_size:number * page_size]
        header = 100 if number == 1 else 0
        kind, cells = page[header], int.from_bytes(page[header + 3:header + 5])
        pointer_array = header + (12 if kind == TABLE_INTERIOR else 8)
        offsets = [int.from_bytes(page[pointer_array + 2 * i:pointer_array + 2 * i + 2]) for i in range(cells)]
        if kind == TABLE_LEAF:
            rowids = []
            for offset in offsets:
                _, after_size = _varint(page, offset)
                rowids.append(_varint(page, after_size)[0])
            yield number, rowids
        else:
            for offset in offsets:
                yield from walk(int.from_bytes(page[offset:offset + 4]))
            yield from walk(int.from_bytes(page[header + 8:header + 12]))

    return list(walk(root))


def overwrite_page(path: Path, number: int, garbage: bytes) -> None:
    page_size = int.from_bytes(path.read_bytes()[16:18]) or 65536
    with open(path, "r+b") as f:
        f.seek((number - 1) * page_size)
        f.write(garbage[:page_size].ljust(page_size, b"\0"))


def damage_middle_leaf(path: Path) -> list[int]:
    """Overwrite the points leaf page in the middle of the b-tree with random bytes; returns the ids it held."""
    leaves = points_leaves(path)
    number, rowids = leaves[len(leaves) // 2]
    overwrite_page(path, number, random.Random(number).randbytes(65536))
    return rowids


def rows(path: Path, query: str) -> list[tuple]:
    """Straight from the file with SQLite, read-only."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


def waiting_lines(path: Path) -> dict[int, str]:
    return dict(rows(path, "SELECT id, line FROM points"))


def files_beside(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.parent.iterdir()) if p.is_file()}


def assert_read_only_commands_say_damaged(outbox_path: Path, *runs: tuple[str, Path]) -> None:
    """(command, config): exit 1 saying the outbox is damaged; the outbox's bytes are as they were."""
    before = outbox_path.read_bytes()
    with ThreadPoolExecutor(len(runs)) as pool:  # independent of each other: at once, the suite stays fast
        done_all = list(pool.map(lambda run: templog(run[0], "-c", str(run[1])), runs))
    for (command, _), done in zip(runs, done_all, strict=True):
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert f"the outbox {outbox_path} is damaged" in done.stdout + done.stderr, (command, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
    assert outbox_path.read_bytes() == before


def damaged_beside(outbox_path: Path) -> list[Path]:
    return sorted(p for p in outbox_path.parent.iterdir() if p.name.startswith(outbox_path.name + ".damaged-")
                  and not p.name.endswith(("-wal", "-shm")))


def test_a_file_of_random_bytes_is_set_aside_and_collection_goes_on(write_config, tmp_path):
    outbox_path = tmp_path / "data/outbox.sqlite"
    outbox_path.parent.mkdir()
    garbage = random.Random(8).randbytes(64 * 1024)
    outbox_path.write_bytes(garbage)
    config = write_config("collector: {interval: 200ms}\nsensors:\n  - {name: s0, type: simulated}\n")
    assert_read_only_commands_say_damaged(outbox_path, ("history", config), ("check", config), ("health", config))

    running = start_run(config)
    wait_until(lambda: running.log.count("°C at") >= 5, what="readings after the repair")
    code, log = stop_run(running)
    assert code == 0, log
    [error] = [line for line in log.splitlines() if " ERROR " in line]
    [damaged] = damaged_beside(outbox_path)
    assert f"the outbox {outbox_path} is damaged (file is not a database)" in error
    assert str(damaged) in error and "0 point(s) salvaged" in error
    assert damaged.read_bytes() == garbage  # set aside as it was, for whoever wants to look
    assert log.index(" ERROR ") < log.index("°C at")
    assert len(waiting_lines(outbox_path)) >= 5  # the fresh outbox holds what was read after


def test_an_outbox_with_one_page_overwritten_is_salvaged_and_delivered(write_config, tmp_path, influxd, database):
    outbox_path = tmp_path / "data/outbox.sqlite"
    outbox_path.parent.mkdir()
    original = fill(outbox_path, 3000)
    lost_ids = damage_middle_leaf(outbox_path)
    config = write_config(f"""
influxdb: {{url: "{influxd.url}", api: v1, bucket: {database}, retention: 0}}
collector: {{interval: 200ms}}
sensors:
  - {{name: s0, type: simulated}}
""")
    local = write_config("sensors:\n  - {name: s0, type: simulated}\n", name="local.yaml")  # history reads the outbox
    assert_read_only_commands_say_damaged(outbox_path, ("history", local), ("check", config), ("health", config))

    salvaged = {i: line for i, line in original.items() if i not in lost_ids}
    stamps = {int(line.rsplit(" ", 1)[1]) for line in salvaged.values()}

    def delivered_old():
        result = influxd.query('SELECT "celsius" FROM "temperature" WHERE "sensor" = \'old\'', db=database)
        return {row[0] for s in result["results"][0].get("series", []) for row in s["values"]}

    running = start_run(config)
    wait_until(lambda: len(delivered_old()) >= len(stamps), what="the salvaged points in InfluxDB")
    wait_until(lambda: running.log.count("°C at") >= 5, what="readings after the repair")
    code, log = stop_run(running)
    assert code == 0, log
    assert delivered_old() == stamps  # every point not on the damaged page, and nothing else
    [error] = [line for line in log.splitlines() if " ERROR " in line]
    [damaged] = damaged_beside(outbox_path)
    assert f"the outbox {outbox_path} is damaged" in error and str(damaged) in error
    assert f"{len(salvaged)} point(s) salvaged" in error and f"at most {len(lost_ids)} lost" in error
    assert "2 rejected point(s)" in error
    assert rows(outbox_path, "SELECT reason FROM rejected") == [("HTTP 400: field type conflict",)] * 2


def test_damage_found_while_running_is_repaired_without_losing_the_batch_in_flight(write_config, tmp_path, influxd,
                                                                                    database):
    """Delivery blocked (503) while the damage happens; then it reads its way into the damaged page."""
    outbox_path = tmp_path / "data/outbox.sqlite"
    outbox_path.parent.mkdir()
    original = fill(outbox_path, 20_000, rejected=0)
    with FaultyProxy(influxd.url) as proxy:
        proxy.fail_next(10**6, status=503)
        config = write_config(f"""
influxdb: {{url: "{proxy.url}", api: v1, bucket: {database}, retention: 0, batch_size: 1000}}
collector: {{interval: 200ms}}
sensors:
  - {{name: s0, type: simulated}}
""")
        running = start_run(config)
        wait_until(lambda: "delivery to InfluxDB failed" in running.log, what="delivery to be failing")
        lost_ids = damage_middle_leaf(outbox_path)
        # another connection's commit makes the collector's SQLite drop its page cache and read the file again
        other = sqlite3.connect(outbox_path)
        other.execute("INSERT OR REPLACE INTO state (key, value) VALUES ('test', 'touched')")
        other.commit()
        other.close()
        proxy.clear_faults()
        wait_until(lambda: " ERROR the outbox " in running.log, what="the repair")
        wait_until(lambda: "delivery resumed" in running.log, what="delivery")
        found_at = running.log.count("°C at")
        wait_until(lambda: running.log.count("°C at") >= found_at + 5, what="readings after the repair")

        def delivered_old():
            result = influxd.query('SELECT "celsius" FROM "temperature" WHERE "sensor" = \'old\'', db=database)
            return {row[0] for s in result["results"][0].get("series", []) for row in s["values"]}

        expected = {int(line.rsplit(" ", 1)[1]) for i, line in original.items() if i not in lost_ids}
        wait_until(lambda: len(delivered_old()) >= len(expected), what="every salvaged point delivered")
        code, log = stop_run(running)
    assert code == 0, log
    assert delivered_old() == expected
    [error] = [line for line in log.splitlines() if " ERROR the outbox" in line]
    assert f", {len(lost_ids)} lost" in error  # while running, how many the outbox held is known
    assert len(damaged_beside(outbox_path)) == 1


def test_damage_met_by_an_append_is_repaired_and_the_append_kept(tmp_path, caplog):
    path = tmp_path / "outbox.sqlite"
    original = fill(path, 2000, rejected=0)
    outbox = Outbox(str(path), repair=True)
    number, lost_ids = points_leaves(path)[-1]  # where the next point goes
    overwrite_page(path, number, b"\xff" * 65536)
    other = sqlite3.connect(path)  # another commit: the outbox's connection reads the file again
    other.execute("INSERT OR REPLACE INTO state (key, value) VALUES ('test', 'touched')")
    other.commit()
    other.close()
    new = [temperature("new", i * S, 21.5) for i in (1, 2)]
    with caplog.at_level(logging.ERROR, logger="templog"):
        outbox.append(new)
    waiting = waiting_lines(path)
    assert [line for line in waiting.values() if "sensor=new" in line] == [point.line() for point in new]
    assert {i: line for i, line in waiting.items() if "sensor=old" in line} == \
        {i: line for i, line in original.items() if i not in lost_ids}
    assert outbox.depth == len(waiting) == len(original) - len(lost_ids) + 2
    assert len(caplog.records) == 1 and f", {len(lost_ids)} lost" in caplog.records[0].getMessage()
    assert min(i for i, line in waiting.items() if "sensor=new" in line) > max(original)  # ids keep their order


def test_a_batch_read_before_a_repair_still_names_the_same_points(tmp_path):
    """The sender acknowledges by id range: salvaged points keep their ids, so it deletes what it delivered."""
    path = tmp_path / "outbox.sqlite"
    original = fill(path, 3000, rejected=0)
    outbox = Outbox(str(path), repair=True)
    in_flight = outbox.oldest(100)
    lost_ids = damage_middle_leaf(path)
    other = sqlite3.connect(path)
    other.execute("INSERT OR REPLACE INTO state (key, value) VALUES ('test', 'touched')")
    other.commit()
    other.close()
    outbox.oldest(3000, after_id=in_flight.ids[-1])  # reads through the damaged page: repaired
    outbox.acknowledge(in_flight)
    assert waiting_lines(path) == {i: line for i, line in original.items()
                                   if i not in lost_ids and i not in in_flight.ids}


@functools.cache
def template_outbox() -> tuple[dict[int, str], bytes]:
    """One real 3,000-point outbox (id -> line of its points, and its bytes), built once, copied for each example."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "outbox.sqlite"
        lines = fill(path, 3000)
        return lines, path.read_bytes()


@settings(max_examples=40, deadline=None)
@given(pages=st.lists(st.integers(0, 10**6), min_size=1, max_size=4),
       fill_with=st.sampled_from(["random", "zeros", "ones"]),
       seed=st.integers(0, 2**32))
# the first leaf and another: the search for a rowid readable past the first, in doubling steps from the lowest rowid,
# stepped over the good pages between the two and their points were lost
@example(pages=[0, 609], fill_with="random", seed=0)
def test_repair_loses_only_the_points_on_the_damaged_pages(pages, fill_with, seed):
    original, data = template_outbox()
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "outbox.sqlite"
        path.write_bytes(data)
        leaves = points_leaves(path)
        lost: set[int] = set()
        for choice in pages:
            number, rowids = leaves[choice % len(leaves)]
            garbage = {"random": random.Random(seed + number).randbytes(65536), "zeros": b"\0" * 65536,
                       "ones": b"\xff" * 65536}[fill_with]
            overwrite_page(path, number, garbage)
            lost.update(rowids)
        outbox = Outbox(str(path), repair=True)
        assert outbox.depth == len(original) - len(lost & original.keys())
        outbox.close()
        assert waiting_lines(path) == {i: line for i, line in original.items() if i not in lost}
        fresh = Outbox(str(path), read_only=True)
        assert len(rejected(fresh)) == 2 and "last_delivery_ns" in fresh.state()
        fresh.verify()
        fresh.close()
        assert len([n for n in os.listdir(scratch) if re.fullmatch(r"outbox\.sqlite\.damaged-\d{8}T\d{6}Z", n)]) == 1


@pytest.mark.parametrize("renames_before_crash", [0, 1, 2, 3])
def test_a_crash_during_the_swap_is_finished_at_the_next_start(tmp_path, monkeypatch, renames_before_crash):
    """A kill between the repair's renames (salvage marked complete, -wal/-shm aside, the damaged file aside, the
    salvage in place) must not leave an empty outbox in the damaged file's place: the next open finishes the swap."""
    from collector import outbox_repair

    path = tmp_path / "outbox.sqlite"
    original = fill(path, 2000, rejected=0)
    damage_middle_leaf(path)
    (tmp_path / "outbox.sqlite-wal").write_bytes(b"")  # a companion to move aside too
    rename = os.rename
    done: list[str] = []

    def crashing_rename(source, target):
        if len(done) == renames_before_crash:
            raise KeyboardInterrupt("killed")  # as a kill -9 here: what is on disk stays as it is
        done.append(target)
        rename(source, target)

    monkeypatch.setattr(outbox_repair.os, "rename", crashing_rename)
    with pytest.raises(KeyboardInterrupt):
        Outbox(str(path), repair=True)
    monkeypatch.setattr(outbox_repair.os, "rename", rename)
    salvaged = Outbox(str(path), repair=True).depth  # the next start
    waiting = waiting_lines(path)
    assert salvaged == len(waiting) > len(original) * 0.9
    assert all(original[i] == line for i, line in waiting.items())
    assert not list(tmp_path.glob("outbox.sqlite.salvag*"))
    assert damaged_beside(path)


def test_a_truncated_outbox_is_damaged_for_history_health_and_check(write_config, tmp_path):
    """A cut copy or a card that lost its tail: history must not print part of the readings as if they were all,
    and health must not report a count it cannot know."""
    outbox_path = tmp_path / "data/outbox.sqlite"
    outbox_path.parent.mkdir()
    fill(outbox_path, 100, rejected=0)
    with open(outbox_path, "r+b") as f:  # part of the last page gone: SQLite itself reads on without a word
        f.truncate(outbox_path.stat().st_size - 3000)
    config = write_config("sensors:\n  - {name: s0, type: simulated}\n")
    assert_read_only_commands_say_damaged(outbox_path, ("history", config), ("health", config), ("check", config))
