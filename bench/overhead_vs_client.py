"""CPU per point of `python -m collector run` (api v2) against a hand-rolled influxdb-client script
(bench/handrolled_client.py, batching WriteApi, default options), both reading 100 simulated sensors every second
and writing to the same real VictoriaMetrics (/api/v2/write). Target: ours <= 1.5x theirs.

Our CLI logs every reading at INFO by default: it runs as shipped with stderr to /dev/null (the records are still
formatted), and once more with -q (warnings only, as the Dockerfile and the systemd unit run it), to show what that
logging costs. The hand-rolled script logs at WARNING. The three run one after another, each alone on the machine.
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import urllib3
from common import ROOT, SENSORS, cpu_seconds, header, scratch_dir, servers, verdict, write_config

WARMUP_S = 10.0  # imports and client start-up, left out of the per-point figure
TARGET = 1.5


def write_requests(url: str) -> int:
    """Line-protocol write requests VictoriaMetrics has served (it counts /api/v2/write under /influx/write)."""
    metrics = urllib3.PoolManager().request("GET", f"{url}/metrics").data.decode()
    counters = re.findall(r'^vm_http_requests_total\{path="/influx/write"[^}]*\} (\d+)$', metrics, re.MULTILINE)
    return sum(int(n) for n in counters)


def stored(server, host: str) -> tuple[int, int]:
    """Points VictoriaMetrics holds for `host`, and the number of one-second ticks they span."""
    series = server.export(f'temperature_celsius{{host="{host}"}}')
    stamps = [ms for one in series for ms in one["timestamps"]]
    return len(stamps), (max(stamps) - min(stamps)) // 1000 + 1 if stamps else 0


def measure(argv: list[str], seconds: float, url: str) -> tuple[float, float, int]:
    """Steady-state CPU seconds, wall seconds and write requests of a process after its warm-up; then stop it."""
    process = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        time.sleep(WARMUP_S)
        cpu, requests, began = cpu_seconds(process.pid), write_requests(url), time.monotonic()
        time.sleep(seconds)
        cpu, wall = cpu_seconds(process.pid) - cpu, time.monotonic() - began
        requests = write_requests(url) - requests
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    if process.returncode != 0:
        raise RuntimeError(f"{argv} exited with {process.returncode}")
    return cpu, wall, requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0,
                        help="steady state measured per contender (default 120)")
    seconds = parser.parse_args().seconds
    header(f"overhead: CPU per point, {SENSORS} simulated sensors at 1 s to VictoriaMetrics, {seconds:g} s each")
    with scratch_dir() as scratch:
        server = servers.VictoriaMetrics.start(Path(scratch) / "victoria")
        influx = {"url": server.url, "api": "v2", "org": "home", "bucket": "b", "token": "x", "retention": 0}

        def templog(host: str, *flags: str) -> list[str]:
            config = write_config(Path(scratch) / f"{host}.yaml", Path(scratch) / f"{host}.sqlite", influx, host)
            return [sys.executable, "-m", "collector", "run", *flags, "-c", str(config)]

        contenders = {
            "templog-info": templog("templog-info"),
            "templog-warning": templog("templog-warning", "-q"),
            "handrolled": [sys.executable, str(ROOT / "bench" / "handrolled_client.py"), "--url", server.url,
                           "--host", "handrolled"],
        }
        try:
            results = {host: measure(argv, seconds, server.url) for host, argv in contenders.items()}
            kept = {host: stored(server, host) for host in contenders}
        finally:
            server.stop()
    per_point = {host: cpu / (SENSORS * wall) for host, (cpu, wall, _) in results.items()}
    labels = {"templog-info": "templog, as shipped (INFO to /dev/null)",
              "templog-warning": "templog -q (warnings only)",
              "handrolled": "hand-rolled influxdb-client batching"}
    for host, (cpu, wall, requests) in results.items():
        print(f"{labels[host]:<42} {per_point[host] * 1e6:6.1f} us CPU/point  ({cpu:.2f} CPU s in {wall:.0f} s = "
              f"{cpu / wall * 100:.2f} % of a core; {requests / wall:.1f} write requests/s; "
              f"stored: {kept[host][0]:,} points over {kept[host][1]} ticks)")
    ratio = per_point["templog-info"] / per_point["handrolled"]
    logging_share = 1 - per_point["templog-warning"] / per_point["templog-info"]
    print(f"ratio templog as shipped / hand-rolled: {ratio:.2f}; with -q: "
          f"{per_point['templog-warning'] / per_point['handrolled']:.2f}; "
          f"the INFO lines account for {logging_share:.0%} of templog's CPU")
    verdict("ratio, as shipped", ratio <= TARGET, f"<= {TARGET:g}")


if __name__ == "__main__":
    main()
