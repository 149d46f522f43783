"""Drain throughput: how fast a backlog leaves the outbox for a real influxd 1.x through Sender + InfluxV1, against
a bare urllib3 loop posting the same lines in the same batches, so the cost of the outbox and the sender shows.

After an outage the backlog is what decides how long InfluxDB lags behind; target: ours >= 0.9x the bare loop
(issue 10). The delivered rows are deleted afterwards, in the sender's idle time: timed apart.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import urllib3
from common import SENSORS, header, scratch_dir, servers, verdict

from collector.config import InfluxConfig
from collector.delivery import Sender
from collector.influx import InfluxV1
from collector.lineprotocol import MEASUREMENT, Point, Series
from collector.outbox import Outbox
from collector.readings import Reading, reading_point
from collector.stats import Stats

BATCH = InfluxConfig().batch_size  # the shipped default, 5000
S = 1_000_000_000
TARGET = 0.9


def backlog(points: int) -> list[Point]:
    """Points as the collector renders them: 100 sensors, one tick a second, the last tick now."""
    ticks = points // SENSORS
    first = (time.time_ns() // S - ticks) * S
    keys = [Series(MEASUREMENT, {"host": "bench", "sensor": f"s{i:02d}"}) for i in range(SENSORS)]
    rng = random.Random(1)
    pairs = []
    for t in range(ticks):
        tick = first + t * S
        for i, key in enumerate(keys):
            celsius = round(rng.gauss(21.0, 1.5), 2)
            pairs.append(reading_point(key, Reading(f"s{i:02d}", tick, celsius)))
    return pairs


def post_bare(url: str, db: str, lines: list[str]) -> None:
    http = urllib3.PoolManager(retries=False)
    for start in range(0, len(lines), BATCH):
        body = "\n".join(lines[start:start + BATCH]).encode()
        response = http.request("POST", f"{url}/write?db={db}&precision=ns", body=body,
                                headers={"Content-Type": "text/plain"})
        if response.status != 204:
            raise RuntimeError(f"/write answered {response.status}: {response.data[:200]!r}")


def count(server, db: str) -> int:
    series = server.query("SELECT count(celsius) FROM temperature", db)["results"][0].get("series", [])
    return series[0]["values"][0][1] if series else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000,
                        help="backlog size, a multiple of 100 (default 1,000,000)")
    points = parser.parse_args().points // SENSORS * SENSORS
    header(f"drain throughput: {points:,} points, batch {BATCH}, outbox -> Sender -> InfluxV1 -> influxd")
    with scratch_dir() as scratch:
        server = servers.Influxd1.start(Path(scratch) / "influxd")
        try:
            print(f"influxd: {server.url}, outbox and influxd data under {scratch}")
            pairs = backlog(points)
            lines = [point.line() for point in pairs]

            outbox = Outbox(f"{scratch}/outbox.sqlite")
            for start in range(0, len(pairs), 10_000):
                outbox.append(pairs[start:start + 10_000])
            del pairs
            writer = InfluxV1(InfluxConfig(url=server.url, api="v1", bucket="templog", retention=0))
            writer.ensure_retention()
            server.query("CREATE DATABASE bare")

            began = time.perf_counter()
            post_bare(server.url, "bare", lines)
            bare_s = time.perf_counter() - began

            began = time.perf_counter()
            delivered = Sender(outbox, writer, BATCH, Stats()).drain()
            ours_s = time.perf_counter() - began
            began = time.perf_counter()
            while outbox.purge():  # what the sender does once idle: the delivered rows leave the file
                pass
            purge_s = time.perf_counter() - began

            arrived = {db: count(server, db) for db in ("bare", "templog")}
        finally:
            server.stop()
    bare_rate, ours_rate = points / bare_s, delivered / ours_s
    print(f"bare urllib3 POST /write:        {bare_rate:>10,.0f} points/s  ({bare_s:.2f} s)")
    print(f"templog Sender + InfluxV1:       {ours_rate:>10,.0f} points/s  ({ours_s:.2f} s, "
          f"outbox depth after: {outbox.depth})")
    print(f"then deleted from the outbox in the sender's idle time: {purge_s:.2f} s")
    print(f"ratio templog / bare:            {ours_rate / bare_rate:>10.2f}")
    print(f"arrived (SELECT count(celsius)): bare {arrived['bare']:,}, templog {arrived['templog']:,} of {points:,}: "
          f"{'all' if arrived == {'bare': points, 'templog': points} else 'MISSING POINTS'}")
    verdict("ratio", ours_rate / bare_rate >= TARGET and arrived["templog"] == points, f">= {TARGET}")


if __name__ == "__main__":
    main()
