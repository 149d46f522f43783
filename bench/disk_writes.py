"""Disk writes: what `templog -q run` costs an SD card, side by side with the influxd it delivers to, in one run.

10 simulated sensors at 1 s, api v1, into a real influxd 1.x. Bytes come from /proc/PID/io `write_bytes` (what
the process made the kernel write to storage: pages it dirtied, 4 KiB each, counted once per dirtying; an fsync
cleans them, so the next write to the same page counts again) of the collector and of influxd over the same
window after a warm-up. Then the default config.yaml (2 sensors, 10 s and 30 s) alone, extrapolated to a day.
First, in-process, how long a hanging sensor holds back the commit of the others' readings of the same tick.

Targets (issue 10): <= 8 KiB written per tick (two 4 KiB pages: one WAL frame of a 4 KiB page straddles two),
and <= influxd's own bytes per point.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from common import ROOT, header, scratch_dir, servers, verdict, write_config

from collector.config import load_config
from collector.outbox import Outbox
from collector.runner import Collector
from collector.sensors import Sample, create_sensor
from collector.tick_commit import wait_for

SENSORS = 10
WARMUP_S = 8.0  # start-up, the first retention call and the first delivery, outside the window
TICK_TARGET_B = 8 * 1024
S = 1_000_000_000


class Slow:
    """A sensor that answers after 0.3 s of a 1 s tick: well within its timeout, long past the commit's deadline."""

    def read(self) -> Sample:
        threading.Event().wait(0.3)
        return Sample(20.0)


def commit_delay(scratch: Path, hanging: bool, ticks: int = 20) -> float:
    """Median ms from handing out a tick's reads to the commit of the 10 fast sensors' points, in-process, with
    or without an 11th sensor that takes 0.3 s at every tick."""
    config_path = write_config(scratch / f"delay-{hanging}.yaml", scratch / f"delay-{hanging}.sqlite", None,
                               sensors=SENSORS + hanging)
    config = load_config(config_path, environ={})
    sensors = {c.name: create_sensor(c) for c in config.sensors}
    if hanging:
        sensors[config.sensors[-1].name] = Slow()
    outbox = Outbox(config.collector.outbox)
    collector = Collector(config, sensors, outbox, None)
    delays = []
    for t in range(ticks):
        tick_ns = (time.time_ns() // S + 10 + t) * S
        goal = outbox.depth + SENSORS
        began = time.perf_counter()
        with collector.ticks.holding():
            collector.on_tick(collector.slots, tick_ns, 0)  # one interval: one job, as Collector.run does
        while outbox.depth < goal:
            collector.lane.check()  # as Collector.run's loop does: a slow read moves off the shared lane
            time.sleep(0.0005)
        delays.append((time.perf_counter() - began) * 1000)
        while not all(s.idle.is_set() for s in collector.slots):
            time.sleep(0.0005)
    outbox.close()
    return statistics.median(delays)


def write_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise RuntimeError(f"no write_bytes in /proc/{pid}/io")


def collector(config: Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    log = (cwd / "collector.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "collector", "-q", "run", "-c", str(config)], cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(60)


def stored(server, db: str, start_ns: int, stop_ns: int) -> int:
    q = f"SELECT count(celsius) FROM temperature WHERE time >= {start_ns} AND time < {stop_ns}"
    series = server.query(q, db)["results"][0].get("series", [])
    return series[0]["values"][0][1] if series else 0


def side_by_side(scratch: Path, run: int, seconds: float, humidity: float | None) -> dict[str, float]:
    """One window: bytes the collector and influxd wrote, per tick and per point stored in it."""
    work = scratch / f"run{run}"
    server = servers.Influxd1.start(work / "influxd")
    try:
        config = write_config(work / "config.yaml", work / "outbox.sqlite",
                              {"url": server.url, "api": "v1", "bucket": "bench", "retention": 0}, sensors=SENSORS,
                              humidity=humidity)
        process = collector(config, work)
        try:
            time.sleep(WARMUP_S)
            # the window starts on a tick boundary, so it holds whole ticks
            time.sleep((S - time.time_ns() % S) / S + 0.5)
            start_ns = time.time_ns() // S * S
            influxd = server._process
            assert influxd is not None  # started above
            ours, theirs = write_bytes(process.pid), write_bytes(influxd.pid)
            time.sleep(seconds)
            ours, theirs = write_bytes(process.pid) - ours, write_bytes(influxd.pid) - theirs
            stop_ns = time.time_ns() // S * S
            time.sleep(2.0)  # the window's last tick delivered
            points = stored(server, "bench", start_ns, stop_ns)
        finally:
            exit_code = stop(process)
    finally:
        server.stop()
    ticks = (stop_ns - start_ns) // S
    return {"ticks": ticks, "points": points, "ours": ours, "theirs": theirs, "exit": exit_code,
            "ours_tick": ours / ticks, "ours_point": ours / max(1, points), "theirs_point": theirs / max(1, points)}


def default_config_per_day(scratch: Path, seconds: float) -> float:
    """MB a day the shipped config.yaml makes the collector write (its two simulated sensors, api v1)."""
    work = scratch / "default"
    server = servers.Influxd1.start(work / "influxd")
    try:
        env = {"INFLUX_URL": server.url, "INFLUX_API": "v1", "TEMPLOG_OUTBOX": str(work / "outbox.sqlite")}
        process = collector(ROOT / "config.yaml", work, env)
        try:
            time.sleep(WARMUP_S)
            before, began = write_bytes(process.pid), time.monotonic()
            time.sleep(seconds)
            written, elapsed = write_bytes(process.pid) - before, time.monotonic() - began
        finally:
            stop(process)
    finally:
        server.stop()
    return written / elapsed * 86400 / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="the measured window (default 60)")
    parser.add_argument("--repeat", type=int, default=3, help="windows, each a fresh influxd and outbox; median")
    parser.add_argument("--default-seconds", type=float, default=120.0,
                        help="how long the default config runs (default 120; 0 skips it)")
    parser.add_argument("--humidity", type=float, help="every sensor measures humidity too, around this %%RH: "
                        "longer lines, and a humidity in the outbox's row")
    args = parser.parse_args()
    measures = " (with humidity)" if args.humidity is not None else ""
    header(f"disk writes: templog -q run, {SENSORS} simulated sensors{measures} at 1 s, api v1 to influxd, "
           f"{args.repeat} x {args.seconds:g} s; then config.yaml for {args.default_seconds:g} s")
    with scratch_dir() as scratch:
        print(f"outbox and influxd data under {scratch} (on disk, not tmpfs)")
        alone, held = commit_delay(Path(scratch), False), commit_delay(Path(scratch), True)
        print(f"commit of a tick's {SENSORS} fast readings (1 s ticks, in-process, median of 20): {alone:.1f} ms after "
              f"the tick is handed out; {held:.1f} ms with an 11th sensor taking 0.3 s (the deadline: "
              f"{wait_for(1.0) * 1000:.0f} ms)")
        runs = [side_by_side(Path(scratch), i, args.seconds, args.humidity) for i in range(args.repeat)]
        for i, r in enumerate(runs):
            print(f"window {i + 1}: {r['ticks']} ticks, {r['points']} points stored; templog {r['ours']:,} B = "
                  f"{r['ours_tick']:,.0f} B/tick, {r['ours_point']:,.0f} B/point; influxd {r['theirs']:,} B = "
                  f"{r['theirs_point']:,.0f} B/point; exit {r['exit']}")
        per_day = default_config_per_day(Path(scratch), args.default_seconds) if args.default_seconds else None
    tick = statistics.median(r["ours_tick"] for r in runs)
    ours_point = statistics.median(r["ours_point"] for r in runs)
    theirs_point = statistics.median(r["theirs_point"] for r in runs)
    complete = all(r["points"] == SENSORS * r["ticks"] and r["exit"] == 0 for r in runs)
    print(f"median: templog {tick:,.0f} B/tick ({tick / 1024:.2f} KiB), {ours_point:,.0f} B/point; "
          f"influxd {theirs_point:,.0f} B/point; templog / influxd {ours_point / theirs_point:.2f}")
    print(f"every tick delivered whole ({SENSORS} points a tick), exit 0: {'yes' if complete else 'NO'}")
    if per_day is not None:
        print(f"default config.yaml (2 sensors, 10 s and 30 s): {per_day:,.2f} MB written a day")
    verdict("bytes per tick", tick <= TICK_TARGET_B and complete, f"<= {TICK_TARGET_B:,} B")
    verdict("bytes per point", ours_point <= theirs_point, "<= influxd's own")


if __name__ == "__main__":
    main()
