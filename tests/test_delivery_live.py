"""The live lane: while a backlog waits, the collector's newest health point reaches InfluxDB ahead of it, so the
outbox alert rule (latest fresh depth per host) can see the current depth whenever InfluxDB takes anything.

A real `templog run` against the session's real influxd behind tests/faulty_proxy.py, which answers 503 to every
write body over a size: an InfluxDB that takes small writes only. The backlog's batches are all over it, one health
point is under it.
"""

from __future__ import annotations

from cli import start_run, stop_run, wait_until
from faulty_proxy import FaultyProxy
from test_faults_http import readings

from collector.lineprotocol import HEALTH_MEASUREMENT, MEASUREMENT
from collector.outbox import Outbox

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


def test_the_current_outbox_depth_reaches_influxdb_while_the_backlog_waits(influxd, database, write_config, tmp_path):
    outbox_path = tmp_path / "outbox.sqlite"
    outbox = Outbox(str(outbox_path))
    outbox.append(readings(BACKLOG, sensor="old"))
    outbox.close()
    with FaultyProxy(influxd.url) as proxy:
        proxy.max_body, proxy.max_body_status = 1500, 503  # a batch of 100 readings is ~6 kB, a health point < 1 kB
        config = write_config(f"""
influxdb: {{url: "{proxy.url}", api: v1, bucket: {database}, retention: 1h, batch_size: 100}}
collector: {{interval: 1s, health_interval: 1s, outbox: {outbox_path}}}
sensors:
  - {{name: sim, type: simulated}}
""")
        running = start_run(config)
        depth = wait_until(lambda: (latest_depth(influxd, database) or 0) >= BACKLOG, timeout=30,
                           what="a health point with the current depth in InfluxDB")
        assert depth
        assert backlog_stored(influxd, database) == 0  # the backlog still waits behind the refused batches
        proxy.max_body = None  # InfluxDB takes everything again
        wait_until(lambda: backlog_stored(influxd, database) == BACKLOG, timeout=30, what="the backlog delivered")
        code, log = stop_run(running)
    assert code == 0, log
    assert "Traceback" not in log
