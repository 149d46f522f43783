"""Durable append rate of the outbox on disk (WAL, synchronous=FULL: one fsync per commit, the shipped policy),
for several points per transaction, since every reading is committed before anything else happens.

Target: >= 50,000 points/s. Each size gets a fresh outbox whose max_points is too high to be reached, so no drops at
the bound mix into the figures. The collector commits each reading from its sensor's reader thread, one point per
call to Outbox.append; calls that arrive while a commit runs are group-committed together. So the shipped figure is
the last one: 100 threads (100 sensors' readers) appending one point each, as fast as they can.
"""

from __future__ import annotations

import argparse
import threading
import time

from common import header, scratch_dir, verdict

from collector.lineprotocol import MEASUREMENT, Point, Series
from collector.outbox import Outbox
from collector.readings import Reading, reading_point

TARGET = 50_000
SIZES = (1, 100, 1000)  # points per commit: one sensor read (shipped), one tick of 100 sensors, a bulk import
S = 1_000_000_000
NO_BOUND = 10**12


def transaction(size: int, tick_ns: int) -> list[Point]:
    """`size` points as the collector renders them: 100 sensors a tick, as many ticks as it takes."""
    pairs = []
    for i in range(size):
        sensor, time_ns = f"s{i % 100:02d}", tick_ns + i // 100 * S
        series = Series(MEASUREMENT, {"host": "bench", "sensor": sensor})
        pairs.append(reading_point(series, Reading(sensor, time_ns, 21.37)))
    return pairs


def sustained(outbox: Outbox, size: int, seconds: float) -> tuple[float, float]:
    """Points/s and mean ms per commit, appending `size`-point transactions for `seconds`."""
    batch = transaction(size, time.time_ns() // S * S)
    commits = 0
    began = time.perf_counter()
    while (elapsed := time.perf_counter() - began) < seconds:
        outbox.append(batch)
        commits += 1
    return commits * size / elapsed, elapsed / commits * 1e3


def concurrent(outbox: Outbox, threads: int, seconds: float) -> tuple[float, float]:
    """Points/s and mean ms per append call, with `threads` threads each appending one point at a time."""
    counts = [0] * threads
    stop = time.perf_counter() + seconds

    def appender(index: int) -> None:
        point = transaction(1, time.time_ns() // S * S)
        while time.perf_counter() < stop:
            outbox.append(point)
            counts[index] += 1

    workers = [threading.Thread(target=appender, args=(i,)) for i in range(threads)]
    began = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - began
    return sum(counts) / elapsed, elapsed / max(1, sum(counts)) * threads * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to append at each size (default 10)")
    seconds = parser.parse_args().seconds
    header(f"outbox durable appends: {seconds:g} s per transaction size, a fresh outbox each")
    results = {}
    with scratch_dir() as scratch:
        print(f"outbox: {scratch}/ (on disk, not tmpfs)")
        for size in SIZES:
            outbox = Outbox(f"{scratch}/outbox-{size}.sqlite", max_points=NO_BOUND)
            results[size] = sustained(outbox, size, seconds)
            outbox.close()
        outbox = Outbox(f"{scratch}/outbox-group.sqlite", max_points=NO_BOUND)
        group = concurrent(outbox, 100, seconds)
        outbox.close()
    for size, (rate, ms) in results.items():
        print(f"{size:>5} point(s)/commit: {rate:>10,.0f} points/s  {ms:7.3f} ms/commit")
    print(f"100 threads x 1 point: {group[0]:>10,.0f} points/s  {group[1]:7.3f} ms/append call"
          "  <- shipped: each reader's Collector.commit, group-committed")
    verdict("shipped (100 readers, group commit)", group[0] >= TARGET, f">= {TARGET:,} points/s")
    for size in SIZES:
        verdict(f"{size} point(s)/commit", results[size][0] >= TARGET, f">= {TARGET:,} points/s")


if __name__ == "__main__":
    main()
