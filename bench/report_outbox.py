"""`templog report` from the outbox (no InfluxDB configured): wall time and peak RSS over days of 10-second readings.

The outbox is created by collector.outbox.Outbox (its real schema and page size), then filled straight through
sqlite3 in one transaction: the rows the collector writes for `fridge` (min 2 / max 8, an excursion of 10 minutes
about once a month above and once a quarter below, bench/report_year.py's readings) and, with `--sensors 2`, `room`
(no thresholds), one each every 10 s from 2025-01-01 in Europe/Berlin, in time order as a collector appends them.
`python -m collector report --tz Europe/Berlin --format json -q` then runs as its own process, `--runs` times (the
median wall time reported, peak RSS the kernel's VmHWM, polled). With `--before REF`, the same report runs from
`git archive REF` unpacked in the scratch folder too, alternating with this checkout's runs, and its output must be
the same to the byte. Targets: peak RSS <= 100 MB (issue 14), the readings counted = the rows written, and with
--before, the same output.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import statistics
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path

from common import ROOT, header, run_templog, scratch_dir, verdict
from report_year import BERLIN, FIRST_DAY, TICK_S, fridge

from collector.outbox import Outbox
from temperature_points import temperature

S = 1_000_000_000
RSS_TARGET_MB = 100.0
BATCH = 100_000  # rows per executemany


def room(tick: int) -> float:
    return 21 + (tick % 600) / 100


def fill(path: Path, start_s: int, ticks: int, sensors: int) -> int:
    """The outbox at `path` with `ticks` readings of each of the first `sensors` of fridge and room; the rows
    written."""
    Outbox(str(path)).close()  # the schema, the page size and WAL mode as `run` creates them
    series = [("fridge", fridge), ("room", room)][:sensors]
    first = temperature("fridge", start_s * S, fridge(0), host="bench")
    assert first.line() == f"temperature,host=bench,sensor=fridge celsius={fridge(0)} {start_s * S}", first.line()

    def rows(begin: int, end: int):
        row_id = begin * sensors
        for tick in range(begin, end):
            time_ns = (start_s + tick * TICK_S) * S
            for sensor, value in series:
                row_id += 1
                celsius = value(tick)
                yield (row_id, sensor, time_ns, celsius,
                       f"temperature,host=bench,sensor={sensor} celsius={celsius} {time_ns}")

    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA synchronous=OFF")  # a bench's fill, not a collector's commit
        db.execute("BEGIN")
        for begin in range(0, ticks, BATCH):
            db.executemany("INSERT INTO points (id, sensor, time_ns, celsius, line) VALUES (?, ?, ?, ?, ?)",
                           rows(begin, min(begin + BATCH, ticks)))
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return ticks * sensors


def unpack(ref: str, into: Path) -> str:
    """`git archive REF` of this repository unpacked into `into`; its short commit and subject."""
    into.mkdir()
    archive = subprocess.Popen(["git", "-C", str(ROOT), "archive", ref], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(into)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise SystemExit(f"git archive {ref} failed")
    return subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h %s", ref], capture_output=True,
                          text=True, check=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=90, help="days of readings from 2025-01-01 (default 90; a "
                        "year: 365)")
    parser.add_argument("--sensors", type=int, choices=(1, 2), default=2, help="fridge, or fridge and room")
    parser.add_argument("--before", metavar="REF", help="also run the report from this commit (e.g. main)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each report (default 3)")
    args = parser.parse_args()
    stop_day = FIRST_DAY.date() + timedelta(days=args.days)
    stop = datetime(stop_day.year, stop_day.month, stop_day.day, tzinfo=BERLIN)
    start_s, stop_s = int(FIRST_DAY.timestamp()), int(stop.timestamp())
    ticks = (stop_s - start_s) // TICK_S
    header(f"report from the outbox: {args.days} days x {args.sensors} sensor(s) of 10-second readings "
           f"({ticks * args.sensors:,} rows), templog report as its own process")
    with scratch_dir() as scratch_name:
        scratch = Path(scratch_name)
        outbox = scratch / "outbox.sqlite"
        began = time.monotonic()
        written = fill(outbox, start_s, ticks, args.sensors)
        print(f"outbox:  {written:,} rows written in {time.monotonic() - began:.1f} s, "
              f"{outbox.stat().st_size / 2**20:,.0f} MiB")
        config = scratch / "templog.yaml"
        config.write_text(f"collector: {{outbox: {outbox}, interval: 10s}}\n"
                          "sensors:\n  - {name: fridge, type: simulated, min: 2, max: 8}\n"
                          + ("  - {name: room, type: simulated}\n" if args.sensors == 2 else ""))
        report = ["report", "-c", str(config), "--start", f"{FIRST_DAY:%Y-%m-%d}", "--stop", f"{stop:%Y-%m-%d}",
                  "--tz", "Europe/Berlin", "--format", "json", "-q"]
        checkouts = {"after": ROOT}
        if args.before:
            print(f"before:  {unpack(args.before, scratch / 'before')} ({args.before})")
            checkouts = {"before": scratch / "before", **checkouts}
        print(f"report:  {' '.join(report[3:])}")
        walls: dict[str, list[float]] = {name: [] for name in checkouts}
        rss: dict[str, list[float]] = {name: [] for name in checkouts}
        outputs: dict[str, bytes] = {}
        for run in range(args.runs):
            for name, checkout in checkouts.items():
                out = scratch / f"{name}.json"
                code, rss_mb, wall, last = run_templog(checkout, report, out)
                if code != 0:
                    raise SystemExit(f"report ({name}) failed (exit {code}): {last}")
                walls[name].append(wall)
                rss[name].append(rss_mb)
                outputs[name] = out.read_bytes()
                print(f"  run {run + 1} {name:6s} wall {wall:7.2f} s, peak RSS {rss_mb:5.1f} MB", flush=True)
        text = outputs["after"].decode()
        readings = sum(int(n) for n in re.findall(r'"readings": (\d+)', text))
        excursions = sum(int(n) for n in re.findall(r'"excursions": (\d+)', text))
        rows = text.count('"sensor": ')
        print(f"report:  {rows} rows, {readings:,} readings counted, {excursions} excursions")
        for name in checkouts:
            print(f"{name + ':':8s} wall {statistics.median(walls[name]):.2f} s (median of {args.runs}: "
                  + ", ".join(f"{w:.2f}" for w in walls[name]) + f"), peak RSS {max(rss[name]):.1f} MB "
                  f"(highest of {args.runs})")
    if args.before:
        ratio = statistics.median(walls["before"]) / statistics.median(walls["after"])
        print(f"speed-up: {ratio:.1f}x (before's median wall / after's)")
        verdict("after's output vs before's", outputs["before"] == outputs["after"], "identical to the byte")
    verdict(f"after's peak RSS ({max(rss['after']):.1f} MB)", max(rss["after"]) <= RSS_TARGET_MB,
            f"<= {RSS_TARGET_MB:g} MB")
    verdict(f"readings counted ({readings:,}) vs rows written ({written:,})", readings == written, "equal")


if __name__ == "__main__":
    main()
