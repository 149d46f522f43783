"""The yardstick for bench/overhead_vs_client.py: what a user might write instead of templog. Every second it reads
the same simulated sensors (templog's SimulatedSensor, same seeds, so the same values at the same cost) and hands
the points to influxdb-client's batching WriteApi with its default options. No outbox, no per-reading log line.
Runs until SIGTERM, then flushes and exits.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time

from influxdb_client import InfluxDBClient, WritePrecision

from collector.sensors.simulated import Settings, SimulatedSensor

S = 1_000_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--org", default="home")
    parser.add_argument("--bucket", default="b")
    parser.add_argument("--token", default="x")
    parser.add_argument("--host", default="handrolled", help="the host tag of every point")
    parser.add_argument("--sensors", type=int, default=100)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    sensors = [(f"s{i:02d}", SimulatedSensor(Settings(seed=i))) for i in range(args.sensors)]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with InfluxDBClient(url=args.url, token=args.token, org=args.org) as client, client.write_api() as write_api:
        while not stop.wait((S - time.time_ns() % S) / S):
            tick = time.time_ns() // S * S
            lines = [f"temperature,host={args.host},sensor={name} celsius={sensor.read().celsius!r} {tick}"
                     for name, sensor in sensors]
            write_api.write(args.bucket, record=lines, write_precision=WritePrecision.NS)


if __name__ == "__main__":
    main()
