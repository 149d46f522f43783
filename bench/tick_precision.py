"""Tick precision: how late after its tick each sensor read starts, with 100 (or --sensors) simulated sensors at 1 s,
in-process.
A point is stamped with its tick, so a late read stamps a value measured later than its timestamp says.

Built like `templog run` builds it (load_config, create_sensor, Outbox, Collector, INFO logging to a file), with no
InfluxDB (sender None), so only scheduling and committing are measured. Target: p99 <= 20 ms.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections import defaultdict
from pathlib import Path

from common import SENSORS, header, scratch_dir, verdict, write_config

from collector.config import load_config
from collector.outbox import Outbox
from collector.runner import Collector
from collector.sensors import create_sensor

TARGET_MS = 20.0


class TimedCollector(Collector):
    """Records, for every read, time.time_ns() at the moment the read starts minus the tick it reads for."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lateness_ns: dict[int, list[int]] = defaultdict(list)  # by tick; list.append is thread-safe

    def read(self, slot, tick_ns):
        self.lateness_ns[tick_ns].append(time.time_ns() - tick_ns)
        return super().read(slot, tick_ns)


def percentile_ms(ordered_ns: list[int], fraction: float) -> float:
    return ordered_ns[min(len(ordered_ns) - 1, int(fraction * len(ordered_ns)))] / 1e6


def summary(values_ns: list[int]) -> str:
    ordered = sorted(values_ns)
    p50, p99 = percentile_ms(ordered, 0.50), percentile_ms(ordered, 0.99)
    return f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {ordered[-1] / 1e6:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="how long to collect (default 120)")
    parser.add_argument("--sensors", type=int, default=SENSORS, help=f"simulated sensors (default {SENSORS})")
    args = parser.parse_args()
    seconds = args.seconds
    header(f"tick precision: {args.sensors} simulated sensors at 1 s, in-process Collector, {seconds:g} s")
    with scratch_dir() as scratch:
        config = load_config(write_config(Path(scratch) / "config.yaml", Path(scratch) / "outbox.sqlite", None,
                                          sensors=args.sensors))
        logging.basicConfig(level=logging.INFO, filename=f"{scratch}/collector.log",
                            format="%(asctime)s %(levelname)s %(message)s")  # as the CLI logs, to a file
        outbox = Outbox(config.collector.outbox, config.collector.max_points, config.collector.max_age)
        collector = TimedCollector(config, {s.name: create_sensor(s) for s in config.sensors}, outbox, sender=None)
        stop = threading.Event()
        runner = threading.Thread(target=collector.run, args=(stop,))
        runner.start()
        time.sleep(seconds)
        stop.set()
        runner.join()
        outbox.close()
    ticks = collector.lateness_ns.values()
    late = [ns for tick in ticks for ns in tick]
    print(f"reads: {len(late):,} in {len(ticks)} ticks, committed: {collector.stats.get('reads_ok'):,}, "
          f"ticks skipped: {collector.stats.get('ticks_skipped')}")
    print(f"read-start lateness after the tick, all reads:    {summary(late)}")
    print(f"  first read of each tick (the scheduler waking): {summary([min(tick) for tick in ticks])}")
    print(f"  last read of each tick:                         {summary([max(tick) for tick in ticks])}")
    p99 = percentile_ms(sorted(late), 0.99)
    verdict("p99 lateness", p99 <= TARGET_MS, f"<= {TARGET_MS:g} ms")


if __name__ == "__main__":
    main()
