"""Footprint of `python -m collector run` as shipped: N simulated sensors read every second (100 by default, or
1,000), delivered to a real influxd 1.x (api v1). CPU and memory come from /proc of the collector process, since
it is meant to run all year on a small board next to other services. Targets, 100 sensors: CPU <= 3 % of one
core, peak RSS <= 60 MB; 1,000 sensors: CPU <= 25 % of one core, no tick skipped, read-start lateness p99 <= 20 ms.

The collector runs through bench/timed_run.py, which records when each read starts (one clock read per read) and
changes nothing else. With --profile, it also runs every thread under cProfile (which slows it: the CPU figures
of such a run are not the footprint).
"""

from __future__ import annotations

import argparse
import array
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, SENSORS, cpu_seconds, header, memory_kib, scratch_dir, servers, verdict, write_config

WARMUP_S = 10.0  # imports and the first delivery, reported apart from the steady state
TARGETS = {  # sensors: (CPU % of one core, peak RSS MB or None)
    100: (3.0, 60.0),
    1000: (25.0, None),
}
LATENESS_TARGET_MS = 20.0
TICK_NS = 1_000_000_000  # every sensor of the config is read every second


def count_points(server, db: str) -> tuple[int, int]:
    """Points stored, and the number of distinct one-second ticks they span."""
    result = server.query("SELECT count(celsius) FROM temperature", db)["results"][0]
    first = server.query("SELECT first(celsius) FROM temperature", db)["results"][0]["series"][0]["values"][0][0]
    last = server.query("SELECT last(celsius) FROM temperature", db)["results"][0]["series"][0]["values"][0][0]
    return result["series"][0]["values"][0][1], (last - first) // 1_000_000_000 + 1


def percentile_ms(ordered_ns, fraction: float) -> float:
    return ordered_ns[min(len(ordered_ns) - 1, int(fraction * len(ordered_ns)))] / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0,
                        help="steady-state run after a 10 s warm-up (default 300)")
    parser.add_argument("--sensors", type=int, default=SENSORS, choices=sorted(TARGETS),
                        help=f"simulated sensors (default {SENSORS})")
    parser.add_argument("--quiet", action="store_true", help="run the collector with -q (no INFO line per reading)")
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="also profile the collector with cProfile into FILE, and its shared lane alone into "
                             "FILE.lane (bench/profile_top.py prints the top lines); its CPU figures then measure the "
                             "profiler too")
    args = parser.parse_args()
    seconds, sensors, flags = args.seconds, args.sensors, ["-q"] if args.quiet else []
    cpu_target, rss_target = TARGETS[sensors]
    header(f"footprint: python -m collector run {' '.join(flags)}, {sensors} simulated sensors at 1 s, api v1 to "
           f"influxd, {seconds:g} s")
    with scratch_dir() as scratch:
        server = servers.Influxd1.start(Path(scratch) / "influxd")
        starts_file = Path(scratch) / "lateness.bin"
        try:
            config = write_config(Path(scratch) / "config.yaml", Path(scratch) / "outbox.sqlite",
                                  {"url": server.url, "api": "v1", "bucket": "bench", "retention": 0},
                                  sensors=sensors)
            log_path = Path(scratch) / "collector.log"
            with log_path.open("wb") as log:
                process = subprocess.Popen([sys.executable, str(ROOT / "bench" / "timed_run.py"), "run", *flags,
                                            "-c", str(config)], cwd=ROOT, stdin=subprocess.DEVNULL,
                                           stdout=subprocess.DEVNULL, stderr=log,
                                           env={**os.environ, "TEMPLOG_BENCH_LATENESS": str(starts_file),
                                                "TEMPLOG_BENCH_PROFILE": str(args.profile or "")})
            spawned = time.monotonic()
            try:
                time.sleep(WARMUP_S)
                warm_cpu, warm_at = cpu_seconds(process.pid), time.monotonic()
                peak_rss_kib = 0
                while time.monotonic() - warm_at < seconds:
                    time.sleep(1.0)
                    peak_rss_kib = max(peak_rss_kib, memory_kib(process.pid)["VmRSS"])
                end_cpu, end_at = cpu_seconds(process.pid), time.monotonic()
                memory = memory_kib(process.pid)
            finally:
                process.send_signal(signal.SIGTERM)
                exit_code = process.wait(60)
            stored, ticks = count_points(server, "bench")
        finally:
            server.stop()
        log_text = log_path.read_text(errors="replace")
        starts = array.array("q")
        starts.frombytes(starts_file.read_bytes() if starts_file.exists() else b"")
    problems = [line for line in log_text.splitlines() if " WARNING " in line or " ERROR " in line]
    skipped = [line for line in problems if "skipped" in line]
    steady_pct = (end_cpu - warm_cpu) / (end_at - warm_at) * 100
    whole_pct = end_cpu / (end_at - spawned) * 100
    hwm_mb = memory["VmHWM"] / 1024
    ordered = sorted(start % TICK_NS for start in starts)
    by_tick: dict[int, list[int]] = {}
    for start in starts:
        by_tick.setdefault(start // TICK_NS, []).append(start % TICK_NS)
    full = [lateness for lateness in by_tick.values() if len(lateness) == sensors]  # not the first or last tick
    print(f"CPU, steady state ({end_at - warm_at:.0f} s):     {steady_pct:6.2f} % of one core "
          f"({end_cpu - warm_cpu:.2f} CPU s)")
    print(f"CPU, whole run incl. start-up ({end_at - spawned:.0f} s): {whole_pct:6.2f} % of one core "
          f"({end_cpu:.2f} CPU s)")
    print(f"RSS: peak (VmHWM) {hwm_mb:.1f} MB, at the end {memory['VmRSS'] / 1024:.1f} MB, "
          f"highest 1 s sample {peak_rss_kib / 1024:.1f} MB")
    print(f"points in influxd: {stored:,} over {ticks} ticks = {stored / ticks:.2f} per tick "
          f"(expected {sensors} x ~{end_at - spawned:.0f} s = ~{sensors * (end_at - spawned):,.0f}); "
          f"exit code {exit_code}")
    if ordered:
        print(f"read-start lateness after the tick, {len(ordered):,} reads: p50 {percentile_ms(ordered, 0.5):.2f} ms, "
              f"p99 {percentile_ms(ordered, 0.99):.2f} ms, max {ordered[-1] / 1e6:.2f} ms")
    if full:  # where a tick's time goes: before its first read (the hand-out), then the reads one after another
        firsts, lasts = sorted(min(tick) for tick in full), sorted(max(tick) for tick in full)
        print(f"per tick, {len(full)} ticks of {sensors} reads: first read starts p50 {percentile_ms(firsts, 0.5):.2f} "
              f"ms (max {firsts[-1] / 1e6:.2f}), last read p50 {percentile_ms(lasts, 0.5):.2f} ms "
              f"(p90 {percentile_ms(lasts, 0.9):.2f}, max {lasts[-1] / 1e6:.2f})")
    print(f"collector warnings/errors logged: {len(problems)}" + "".join(f"\n  {line}" for line in problems[:5]))
    whole_run = sensors == SENSORS  # the 100-sensor target has always been judged on the whole run
    cpu_pct = whole_pct if whole_run else steady_pct
    verdict(f"CPU ({'whole run' if whole_run else 'steady state'})", cpu_pct <= cpu_target,
            f"<= {cpu_target:g} % of one core")
    if rss_target is not None:
        verdict("peak RSS", hwm_mb <= rss_target, f"<= {rss_target:g} MB")
    verdict("points delivered", stored == sensors * ticks and exit_code == 0, f"= {sensors} per tick, none lost")
    if sensors != SENSORS:
        verdict("ticks skipped", not skipped, "none")
        verdict("read-start lateness p99", bool(ordered) and percentile_ms(ordered, 0.99) <= LATENESS_TARGET_MS,
                f"<= {LATENESS_TARGET_MS:g} ms")


if __name__ == "__main__":
    main()
