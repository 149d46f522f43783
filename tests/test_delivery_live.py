"""The live lane: while a backlog waits, the collector's newest health point reaches InfluxDB ahead of it, so the
outbox alert rule (latest fresh depth per host) can see the current depth whenever InfluxDB takes anything.

A real `templog run` against the session's real influxd behind tests/faulty_proxy.py, which answers 503 to every
write body over a size: an InfluxDB that takes small writes only. The backlog's batches are all over it, one health
point is under it.
"""

from __future__ import annotations

import pytest

from cli import start_run, stop_run, wait_until
from collector.influx import InfluxError
from collector.influx.errors import ServerError
from collector.lineprotocol import HEALTH_MEASUREMENT, MEASUREMENT
from collector.outbox import Outbox
from test_faults_http import as_stored, client, filled_outbox, readings, sender_for, stored

BACKLOG = 2000


def latest_depth(influxd, database: str) -> int | None:
    result = influxd.query(f'SELECT last("outbox_depth") FROM "{HEALTH_MEASUREMENT}" WHERE "sensor" = \'\'',
                           db=database)["results"][0]
    series = result.get("series")
    return series[0]["values"][0][1] if series else None


def backlog_stored(influxd, database: str) -> int:
    result = influxd.query(f'SELECT count("celsius") FROM "{MEASUREMENT}" WHERE "sensor" = \'old\'',
                           db=database)["results"][0]
    series = result.get("series")
    return series[0]["values"][0][1] if series else 0


def test_the_current_outbox_depth_reaches_influxdb_while_the_backlog_waits(influxd, database, proxy, write_config,
                                                                          tmp_path):
    outbox_path = tmp_path / "outbox.sqlite"
    outbox = Outbox(str(outbox_path))
    outbox.append(readings(BACKLOG, sensor="old"))
    outbox.close()
    proxy.max_body, proxy.max_body_status = 1500, 503  # a batch of 100 readings is ~6 kB, a health point < 1 kB
    config = write_config(f"""
influxdb: {{url: "{proxy.url}", api: v1, bucket: {database}, retention: 1h, batch_size: 100}}
collector: {{interval: 1s, health_interval: 1s, outbox: {outbox_path}}}
sensors:
  - {{name: sim, type: simulated}}
""")
    running = start_run(config)
    wait_until(lambda: (latest_depth(influxd, database) or 0) >= BACKLOG, timeout=30,
               what="a health point with the current depth in InfluxDB")
    assert backlog_stored(influxd, database) == 0  # the backlog still waits behind the refused batches
    proxy.max_body = None  # InfluxDB takes everything again
    wait_until(lambda: backlog_stored(influxd, database) == BACKLOG, timeout=30, what="the backlog delivered")
    code, log = stop_run(running)
    assert code == 0, log
    assert "Traceback" not in log


HEALTH_LINE = f"{HEALTH_MEASUREMENT},host=h outbox_depth=30i {{ns}}"


def test_a_refused_live_point_sets_nothing_aside_and_a_taken_one_acknowledges_nothing(influxd, database, proxy,
                                                                                      tmp_path):
    """Sender and real influxd behind the proxy: the live copy is extra, never in place of the outbox's."""
    influxd.query(f'CREATE DATABASE "{database}"')
    backlog = readings(30)
    outbox = filled_outbox(tmp_path, backlog)
    sender = sender_for(client(proxy.url, database, batch_size=10), outbox)
    now_ns = backlog[-1].time_ns
    sender.offer_live(HEALTH_LINE.format(ns=now_ns))
    proxy.fail_next(1, status=400)  # the live point refused for good: its outbox copy would be isolated in turn
    assert sender.drain() == 30
    assert outbox.depth == 0 and sender.stats.get("points_rejected") == 0
    assert as_stored(backlog) == stored(influxd, database)
    # Taken, while the batch behind it fails: the outbox keeps everything for the next attempt.
    outbox.append(readings(30, sensor="b"))
    sender.offer_live(HEALTH_LINE.format(ns=now_ns + 1))
    proxy.max_body, proxy.max_body_status = 200, 503
    with pytest.raises(ServerError):
        sender.drain()
    assert outbox.depth == 30
    assert latest_depth(influxd, database) == 30


def test_a_live_point_influxdb_does_not_answer_never_holds_the_backlog_back(influxd, database, proxy, tmp_path):
    """An InfluxDB that hangs on small writes only, behind a gateway that answers 504 for it: the live copy fails
    its attempt once, as the batch would, but is not offered again, so the next attempt delivers the backlog (the
    live point's outbox copy with it)."""
    influxd.query(f'CREATE DATABASE "{database}"')
    backlog = readings(30)
    outbox = filled_outbox(tmp_path, backlog)
    sender = sender_for(client(proxy.url, database, batch_size=10), outbox)
    sender.offer_live(HEALTH_LINE.format(ns=backlog[-1].time_ns))
    proxy.min_body, proxy.min_body_status = 200, 504  # a batch of 10 readings is ~600 bytes, the health point ~50
    with pytest.raises(InfluxError):
        sender.drain()
    assert sender.drain() == 30
    assert outbox.depth == 0 and as_stored(backlog) == stored(influxd, database)
