"""Footprint of `python -m collector run` as shipped: 100 simulated sensors read every second, delivered to a real
influxd 1.x (api v1). CPU and memory come from /proc of the collector process, since it is meant to run all year on
a small board next to other services. Targets: CPU <= 3 % of one core, peak RSS <= 60 MB.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, SENSORS, cpu_seconds, header, memory_kib, scratch_dir, servers, verdict, write_config

WARMUP_S = 10.0  # imports and the first delivery, reported apart from the steady state
CPU_TARGET_PCT = 3.0
RSS_TARGET_MB = 60.0


def count_points(server, db: str) -> tuple[int, int]:
    """Points stored, and the number of distinct one-second ticks they span."""
    result = server.query("SELECT count(celsius) FROM temperature", db)["results"][0]
    first = server.query("SELECT first(celsius) FROM temperature", db)["results"][0]["series"][0]["values"][0][0]
    last = server.query("SELECT last(celsius) FROM temperature", db)["results"][0]["series"][0]["values"][0][0]
    return result["series"][0]["values"][0][1], (last - first) // 1_000_000_000 + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0,
                        help="steady-state run after a 10 s warm-up (default 300)")
    parser.add_argument("--quiet", action="store_true", help="run the collector with -q (no INFO line per reading)")
    args = parser.parse_args()
    seconds, flags = args.seconds, ["-q"] if args.quiet else []
    header(f"footprint: python -m collector run {' '.join(flags)}, {SENSORS} simulated sensors at 1 s, api v1 to "
           f"influxd, {seconds:g} s")
    with scratch_dir() as scratch:
        server = servers.Influxd1.start(Path(scratch) / "influxd")
        try:
            config = write_config(Path(scratch) / "config.yaml", Path(scratch) / "outbox.sqlite",
                                  {"url": server.url, "api": "v1", "bucket": "bench", "retention": 0})
            log_path = Path(scratch) / "collector.log"
            with log_path.open("wb") as log:
                process = subprocess.Popen([sys.executable, "-m", "collector", "run", *flags, "-c", str(config)], cwd=ROOT,
                                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
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
    problems = [line for line in log_text.splitlines() if " WARNING " in line or " ERROR " in line]
    steady_pct = (end_cpu - warm_cpu) / (end_at - warm_at) * 100
    whole_pct = end_cpu / (end_at - spawned) * 100
    hwm_mb = memory["VmHWM"] / 1024
    print(f"CPU, steady state ({end_at - warm_at:.0f} s):     {steady_pct:6.2f} % of one core "
          f"({end_cpu - warm_cpu:.2f} CPU s)")
    print(f"CPU, whole run incl. start-up ({end_at - spawned:.0f} s): {whole_pct:6.2f} % of one core "
          f"({end_cpu:.2f} CPU s)")
    print(f"RSS: peak (VmHWM) {hwm_mb:.1f} MB, at the end {memory['VmRSS'] / 1024:.1f} MB, "
          f"highest 1 s sample {peak_rss_kib / 1024:.1f} MB")
    print(f"points in influxd: {stored:,} over {ticks} ticks = {stored / ticks:.2f} per tick "
          f"(expected {SENSORS} x ~{end_at - spawned:.0f} s = ~{SENSORS * (end_at - spawned):,.0f}); "
          f"exit code {exit_code}")
    print(f"collector warnings/errors logged: {len(problems)}" + "".join(f"\n  {line}" for line in problems[:5]))
    verdict("CPU (whole run)", whole_pct <= CPU_TARGET_PCT, f"<= {CPU_TARGET_PCT:g} % of one core")
    verdict("peak RSS", hwm_mb <= RSS_TARGET_MB, f"<= {RSS_TARGET_MB:g} MB")
    verdict("points delivered", stored == SENSORS * ticks and exit_code == 0, f"= {SENSORS} per tick, none lost")


if __name__ == "__main__":
    main()
