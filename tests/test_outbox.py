import threading

from collector.lineprotocol import Point
from collector.outbox import Outbox
from outbox_rows import rejected
from temperature_points import temperature

S = 1_000_000_000


def point(i: int, sensor: str = "a") -> Point:
    return temperature(sensor, i * S, 20.0 + i)


def test_points_come_out_oldest_first_and_leave_only_when_acknowledged(tmp_path):
    outbox = Outbox(str(tmp_path / "o.sqlite"))
    outbox.append([point(i) for i in range(10)])
    batch = outbox.oldest(4)
    assert [p.line for p in batch] == [point(i).line() for i in range(4)]
    assert outbox.oldest(4) == batch  # not acknowledged: still there, same order
    outbox.acknowledge(batch)
    assert outbox.depth == 6
    assert outbox.oldest(1)[0].line == point(4).line()


def test_committed_points_survive_reopening(tmp_path):
    path = str(tmp_path / "o.sqlite")
    outbox = Outbox(path)
    outbox.append([point(i) for i in range(3)])
    outbox.acknowledge(outbox.oldest(1))
    del outbox  # no close: as after kill -9
    reopened = Outbox(path)
    assert reopened.depth == 2
    assert [p.line for p in reopened.oldest(10)] == [point(1).line(), point(2).line()]


def test_max_points_drops_the_oldest_and_says_how_many(tmp_path):
    outbox = Outbox(str(tmp_path / "o.sqlite"), max_points=5)
    assert outbox.append([point(i) for i in range(4)]).dropped_for_count == 0
    assert outbox.append([point(i) for i in range(4, 8)]).dropped_for_count == 3
    assert outbox.depth == 5
    assert [p.line for p in outbox.oldest(10)] == [point(i).line() for i in range(3, 8)]


def test_max_age_drops_points_older_than_it(tmp_path):
    now = [95 * S]
    outbox = Outbox(str(tmp_path / "o.sqlite"), max_age_s=10, clock=lambda: now[0])
    assert outbox.append([point(i) for i in (85, 89, 95)]).dropped_for_age == 0
    now[0] = 100 * S
    assert outbox.append([point(99)]).dropped_for_age == 2
    assert [p.line for p in outbox.oldest(10)] == [point(95).line(), point(99).line()]


def test_set_aside_keeps_the_rejected_point_for_inspection(tmp_path):
    outbox = Outbox(str(tmp_path / "o.sqlite"))
    outbox.append([point(i) for i in range(3)])
    bad = outbox.oldest(3)[1]
    outbox.set_aside(bad, "HTTP 400: field type conflict")
    assert outbox.depth == 2
    assert [p.line for p in outbox.oldest(3)] == [point(0).line(), point(2).line()]
    assert rejected(outbox) == [(point(1).line(), "HTTP 400: field type conflict")]


def test_readings_filters_by_time_and_sensor(tmp_path):
    outbox = Outbox(str(tmp_path / "o.sqlite"))
    outbox.append([point(i, "a") for i in range(5)] + [point(i, "b") for i in range(5)])
    got = outbox.readings(1 * S, 3 * S, ["b"])
    assert [(r.sensor, r.time_ns) for r in got] == [("b", 1 * S), ("b", 2 * S)]
    assert len(list(outbox.readings(0, 10 * S))) == 10


def test_concurrent_appends_are_all_committed_in_order_per_caller(tmp_path):
    """Group commit: many readers appending at once each return only once their point is stored."""
    outbox = Outbox(str(tmp_path / "o.sqlite"))
    returned = []

    def reader(sensor):
        for i in range(20):
            outbox.append([point(i, sensor)])
            returned.append((sensor, i))

    threads = [threading.Thread(target=reader, args=(f"s{n}",)) for n in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reopened = Outbox(str(tmp_path / "o.sqlite"))
    assert reopened.depth == outbox.depth == 600 and len(returned) == 600
    for n in range(30):
        mine = [r.time_ns for r in reopened.readings(0, 10**12, [f"s{n}"])]
        assert mine == [i * S for i in range(20)]


def test_a_file_without_the_outbox_tables_yet_reads_as_empty_and_stays_unchanged(tmp_path):
    """What `health` and `history` meet before a first `run` created its tables (an empty file, or another table)."""
    path = tmp_path / "o.sqlite"
    path.write_bytes(b"")
    outbox = Outbox(str(path), read_only=True)
    assert outbox.depth == 0 and outbox.state() == {} and outbox.oldest_time_ns() is None
    outbox.close()
    assert path.read_bytes() == b""
