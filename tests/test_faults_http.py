"""The sender and the api v1 client against network and HTTP faults, in front of a real InfluxDB 1.x.

tests/faulty_proxy.py stands between InfluxV1 and the session's real influxd and injects error statuses,
hangs, cut responses and a body-size limit into /write; everything else it forwards, so what ends up in
the database is what the real server stored. Delays are measured on the proxy's side, from the arrival
times of the attempts (time.monotonic()).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from itertools import pairwise

import pytest

from cli import wait_until
from collector.config import InfluxConfig, Secret
from collector.delivery import Backoff, Sender
from collector.influx import InfluxV1, InfluxV2
from collector.lineprotocol import FIELD, MEASUREMENT, Point
from collector.outbox import Outbox
from collector.stats import Stats
from faulty_proxy import FaultyProxy
from outbox_rows import rejected
from servers import free_port
from temperature_points import temperature

S = 1_000_000_000
# rng=1.0 takes the jitter out: the n-th consecutive failure waits exactly min(2, 0.2 * 2**(n-1)) s.
BACKOFF_DELAYS = [0.2, 0.4, 0.8, 1.6, 2.0]


@pytest.fixture
def db(request):
    """A database of the test's own; unlike `database` also distinct for each parameter of a parametrized test."""
    name = request.node.name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return "f_" + "".join(c if c.isalnum() else "_" for c in name)[:40] + "_" + digest


def client(url: str, db: str, timeout: float = 1.0, batch_size: int = 10) -> InfluxV1:
    return InfluxV1(InfluxConfig(url=url, api="v1", bucket=db, retention=0, timeout=timeout, batch_size=batch_size))


def sender_for(writer: InfluxV1, outbox: Outbox, stats: Stats | None = None) -> Sender:
    return Sender(outbox, writer, writer.config.batch_size, stats or Stats(),
                  Backoff(base=0.2, cap=2, rng=lambda: 1.0))


def readings(n: int, sensor: str = "a", first_ns: int | None = None) -> list[Point]:
    """The points of n readings one second apart ending about now."""
    first_ns = first_ns if first_ns is not None else (time.time_ns() // S - n) * S
    return [temperature(sensor, first_ns + i * S, round(20 + i / 10, 1)) for i in range(n)]


def as_stored(points: list[Point]) -> list[tuple[int, float, str]]:
    return sorted((p.time_ns, p.fields[FIELD], p.series.tags["sensor"]) for p in points)


def filled_outbox(tmp_path, points: list[Point]) -> Outbox:
    outbox = Outbox(str(tmp_path / "outbox.sqlite"))
    outbox.append(points)
    return outbox


def stored(influxd, db: str) -> list[tuple[int, float, str]]:
    """Every (time, celsius, sensor) the real InfluxDB holds in the database, in time order."""
    result = influxd.query(f'SELECT "celsius", "sensor" FROM "{MEASUREMENT}"', db=db)["results"][0]
    assert "error" not in result or result["error"].startswith("database not found"), result
    return sorted(tuple(row) for series in result.get("series", []) for row in series["values"])


@contextlib.contextmanager
def running(sender: Sender):
    """Sender.run in its own thread, as the collector runs it; stopped (and joined) on leaving."""
    stop = threading.Event()
    thread = threading.Thread(target=sender.run, args=(stop,), name="sender", daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        sender.wake.set()
        thread.join(15)
    assert not thread.is_alive(), "the sender did not stop"


def gaps(requests) -> list[float]:
    return [later.time - earlier.time for earlier, later in pairwise(requests)]


def test_retry_after_is_honoured_then_every_point_arrives_once(tmp_path, influxd, proxy, db):
    points = readings(30)
    outbox = filled_outbox(tmp_path, points)
    stats = Stats()
    proxy.fail_next(1, status=503, retry_after="2", body=b'{"error":"overloaded, come back later"}')
    with running(sender_for(client(proxy.url, db), outbox, stats)):
        wait_until(lambda: outbox.depth == 0, timeout=10, what="the outbox drained")
    writes = proxy.faultable()
    assert [w.what for w in writes] == ["injected 503"] + ["forwarded 204"] * 3
    # the backoff alone would have retried after 0.2 s
    assert 1.9 <= writes[1].time - writes[0].time < 3.0
    assert stored(influxd, db) == as_stored(points)
    assert stats.get("write_failures_server") == 1 and stats.get("points_delivered") == 30


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_and_server_errors_are_retried_with_growing_delays(tmp_path, influxd, proxy, db, status):
    points = readings(25)
    outbox = filled_outbox(tmp_path, points)
    proxy.fail_next(3, status=status)  # no Retry-After
    with running(sender_for(client(proxy.url, db), outbox)):
        wait_until(lambda: outbox.depth == 0, timeout=10, what="the outbox drained")
    writes = proxy.faultable()
    assert [w.kind for w in writes] == ["injected"] * 3 + ["forwarded"] * 3
    waited = gaps(writes[:4])
    assert all(gap >= delay for gap, delay in zip(waited, BACKOFF_DELAYS, strict=False)), waited  # the first delays
    assert waited[0] < waited[1] < waited[2] < BACKOFF_DELAYS[2] + 1.0, waited  # doubling, not a fixed pause
    assert stored(influxd, db) == as_stored(points)


def test_a_server_that_never_answers_costs_one_timeout_per_attempt_and_loses_nothing(tmp_path, influxd, proxy, db):
    timeout = 1.0
    points = readings(20)
    outbox = filled_outbox(tmp_path, points)
    stats = Stats()
    proxy.hang_next(2)
    with running(sender_for(client(proxy.url, db, timeout=timeout), outbox, stats)):
        wait_until(lambda: outbox.depth == 0, timeout=12, what="the outbox drained")
    writes = proxy.faultable()
    assert [w.kind for w in writes] == ["hang", "hang", "forwarded", "forwarded"]
    # from an attempt's arrival to the next one: the attempt (bounded by the timeout), then the backoff delay
    attempts = [gap - delay for gap, delay in zip(gaps(writes[:3]), BACKOFF_DELAYS, strict=False)]
    assert all(timeout - 0.1 <= attempt < timeout + 1.0 for attempt in attempts), attempts
    assert stored(influxd, db) == as_stored(points)
    assert stats.get("write_failures_network") == 2
    wait_until(lambda: proxy.hanging == 0, timeout=5, what="the client to close the hung connections")


@pytest.mark.parametrize("keep", [0, 10], ids=["before-the-status-line", "inside-the-status-line"])
def test_a_response_cut_off_after_influxdb_wrote_is_resent_harmlessly(tmp_path, influxd, proxy, db, keep):
    """InfluxDB took the batch but its answer never fully arrived: the sender cannot know and sends it again."""
    points = readings(30)
    outbox = filled_outbox(tmp_path, points)
    stats = Stats()
    proxy.close_mid_response_next(2, keep=keep)
    with running(sender_for(client(proxy.url, db), outbox, stats)):
        wait_until(lambda: outbox.depth == 0, timeout=10, what="the outbox drained")
    writes = proxy.faultable()
    assert [w.what for w in writes] == [f"cut 204 after {keep} bytes"] * 2 + ["forwarded 204"] * 3
    assert writes[0].body_len == writes[1].body_len == writes[2].body_len  # the same first batch, three times
    assert stats.get("write_failures_network") == 2
    # written three times, stored once: InfluxDB keeps one point per series and timestamp
    assert stored(influxd, db) == as_stored(points)
    count = influxd.query(f'SELECT count("celsius") FROM "{MEASUREMENT}"', db=db)["results"][0]["series"][0]
    assert count["values"][0][1] == 30


def test_collection_goes_on_at_full_rate_while_a_write_hangs(tmp_path, influxd, proxy, db):
    first = readings(5, sensor="a")
    outbox = filled_outbox(tmp_path, first)
    proxy.hang_next(1)
    with running(sender_for(client(proxy.url, db, timeout=10.0, batch_size=50), outbox)):
        wait_until(lambda: proxy.hanging == 1, timeout=5, what="the sender's write to hang")
        later = readings(100, sensor="b")
        started = time.monotonic()
        for point in later:  # one commit per reading, as the collector appends
            outbox.append([point])
        took = time.monotonic() - started
        assert proxy.hanging == 1 and len(proxy.faultable()) == 1, "the write must still be hanging"
        assert took < 1.5, f"100 appends took {took:.2f} s while a write hung"
        assert outbox.depth == 105
        proxy.release_hangs()  # the connection drops without an answer; the sender retries
        wait_until(lambda: outbox.depth == 0, timeout=10, what="the outbox drained")
    assert stored(influxd, db) == as_stored(first + later)


def test_a_batch_too_large_for_the_server_is_split_and_all_of_it_delivered(tmp_path, influxd, proxy, db):
    points = readings(40)
    outbox = filled_outbox(tmp_path, points)
    stats = Stats()
    writer = client(proxy.url, db, batch_size=40)
    writer.ensure_retention()
    one_batch = len("\n".join(point.line() for point in points).encode())
    proxy.max_body = one_batch // 4  # room for about 10 points
    assert sender_for(writer, outbox, stats).drain() == 40
    writes = proxy.faultable()
    assert writes[0].what == "too_large 413" and writes[0].body_len == one_batch
    forwarded = [w for w in writes if w.kind == "forwarded"]
    assert forwarded and all(w.body_len <= proxy.max_body and w.what == "forwarded 204" for w in forwarded)
    assert rejected(outbox) == [] and stats.get("points_rejected") == 0 and outbox.depth == 0
    assert stored(influxd, db) == as_stored(points)


def test_a_field_type_conflict_sets_aside_only_the_conflicting_point(tmp_path, influxd, db):
    """InfluxDB 1.x fixes a field's type per shard (7-day shard groups in a database kept forever)."""
    writer = client(influxd.url, db, batch_size=50)
    assert writer.ensure_retention() == f"created database {db} with retention forever"
    week = 7 * 86400 * S  # shard groups are aligned to multiples of their duration since the epoch
    old_week = (time.time_ns() - 9 * week) // week * week + 86400 * S  # a day into a shard group 8-9 weeks ago
    writer.write([f"temperature,sensor=x celsius=1i {old_week}"])  # celsius is an integer in that old shard
    good = readings(20, sensor="x")
    bad = temperature("x", old_week + S, 21.5)
    outbox = filled_outbox(tmp_path, good[:10] + [bad] + good[10:])
    stats = Stats()
    assert Sender(outbox, writer, 50, stats).drain() == 20
    [(line, reason)] = rejected(outbox)
    assert line == bad.line()
    assert reason.startswith("HTTP 400: partial write: field type conflict"), reason
    assert outbox.depth == 0
    assert stats.get("points_rejected") == 1 and stats.get("points_delivered") == 20
    assert stats.get("points_beyond_retention") == 0  # refused, not taken for expired
    assert stored(influxd, db) == [(old_week, 1, "x")] + as_stored(good)


def test_the_probe_tells_an_influxdb_that_answers_from_one_that_does_not(influxd, victoria):
    """What the sender asks between backed-off writes: any answer of InfluxDB's own, quickly, and never an error."""
    assert client(influxd.url, "any").probe(1.0)
    assert InfluxV2(InfluxConfig(url=victoria.url, api="v2", org="home", bucket="b", token=Secret("t"), retention=0,
                                 timeout=1.0, batch_size=10)).probe(1.0)
    assert not client(f"http://127.0.0.1:{free_port()}", "any").probe(1.0)  # refused
    with FaultyProxy(influxd.url, fault_prefix="/ping") as gateway:
        probing = client(gateway.url, "any")
        gateway.hang_next(1)
        assert not probing.probe(0.5)  # frozen: no answer within the probe's timeout
        gateway.fail_next(1, status=502)
        assert not probing.probe(0.5)  # a gateway answering for an InfluxDB that does not
        assert probing.probe(0.5)  # and then InfluxDB answers again
        assert [r.kind for r in gateway.requests] == ["hang", "injected", "forwarded"]
