"""`templog report` over a year of 10-second readings in a real influxd 1.6 (api v1): what crosses the network.

Two sensors, one reading each every 10 s for 365 days (about 6.3 million points), written straight to influxd's
/write in big line-protocol batches: `fridge` with thresholds min 2 / max 8 and a few excursions, `room` with none.
`python -m collector report --tz Europe/Berlin --format json -q` then runs as its own process against influxd
through a byte-counting TCP proxy (the aggregation is pushed to the database: per day and sensor one summary, and
the readings outside the thresholds). For comparison `python -m collector history` over the same range, the raw
readings, goes through the same proxy. Targets (issue 14): report receives <= 1% of history's bytes, and its peak
RSS (the kernel's VmHWM, polled) <= 100 MB.
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import urllib3
from common import ROOT, header, run_templog, scratch_dir, servers, verdict

S = 1_000_000_000
TICK_S = 10
BATCH = 100_000  # lines per /write request
BERLIN = ZoneInfo("Europe/Berlin")
FIRST_DAY = datetime(2025, 1, 1, tzinfo=BERLIN)
EXCURSION_EVERY = 30 * 86_400 // TICK_S  # ticks between two fridge excursions: about one a month
EXCURSION_TICKS = 60  # 10 minutes above max
BYTES_TARGET = 0.01  # report's bytes / history's
RSS_TARGET_MB = 100.0
RUNS = 3  # report runs, the median wall time reported
REQUEST_LINE = re.compile(rb"(?:GET|POST|HEAD) (/[^ ?]*)\S* HTTP/1\.[01]\r\n")
http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=300))


class CountingProxy:
    """A TCP forwarder on loopback that counts the bytes the upstream sends and the HTTP requests the client
    makes (request lines seen in the client's stream; templog's InfluxQL travels form-encoded, so no body holds
    one)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.lock = threading.Lock()
        self.received = 0
        self.requests: dict[str, int] = {}
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self.lock:
            self.received, self.requests = 0, {}

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._requests, args=(client, server), daemon=True).start()
            threading.Thread(target=self._answers, args=(server, client), daemon=True).start()

    def _requests(self, client: socket.socket, server: socket.socket) -> None:
        tail = b""
        for chunk in _chunks(client, server):
            data = tail + chunk
            paths = [m.group(1).decode() for m in REQUEST_LINE.finditer(data)]
            with self.lock:
                for path in paths:
                    self.requests[path] = self.requests.get(path, 0) + 1
            cut = max((m.end() for m in REQUEST_LINE.finditer(data)), default=0)
            tail = data[max(cut, len(data) - 200):]  # a request line split across two reads is found next time

    def _answers(self, server: socket.socket, client: socket.socket) -> None:
        for chunk in _chunks(server, client):
            with self.lock:
                self.received += len(chunk)

    def close(self) -> None:
        self.listener.close()


def _chunks(source: socket.socket, sink: socket.socket):
    """Forward source to sink, yielding each piece; on end or error, close both."""
    try:
        while chunk := source.recv(1 << 16):
            sink.sendall(chunk)
            yield chunk
    except OSError:
        pass
    finally:
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def post(url: str, body: bytes) -> None:
    response = http.request("POST", url, body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    if response.status not in (200, 204):
        raise RuntimeError(f"{url}: HTTP {response.status}: {response.data[:300]!r}")


def fridge(tick: int) -> float:
    """About 5 °C, swinging ±1.5 over a day; a few times a month 10 minutes at 9.5 (above max 8), and once a
    quarter 10 minutes at 1.0 (below min 2)."""
    phase = tick % EXCURSION_EVERY
    if 1_000 <= phase < 1_000 + EXCURSION_TICKS:
        return 9.5
    if 3_000 <= tick % (3 * EXCURSION_EVERY) < 3_000 + EXCURSION_TICKS:
        return 1.0
    return round(5.0 + 1.5 * ((tick % 8_640) / 4_320 - 1) ** 2 - 0.75, 2)


def fill(server: servers.Influxd1, start_s: int, ticks: int) -> None:
    post(f"{server.url}/query", b"q=CREATE+DATABASE+bench")
    url = f"{server.url}/write?db=bench&precision=s"
    for first in range(0, ticks, BATCH // 2):
        lines = []
        for tick in range(first, min(first + BATCH // 2, ticks)):
            t = start_s + tick * TICK_S
            lines.append(f"temperature,host=bench,sensor=fridge celsius={fridge(tick)} {t}")
            lines.append(f"temperature,host=bench,sensor=room celsius={21 + (tick % 600) / 100} {t}")
        post(url, "\n".join(lines).encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=365, help="days of readings from 2025-01-01 (default 365)")
    args = parser.parse_args()
    start = FIRST_DAY
    stop_day = FIRST_DAY.date() + timedelta(days=args.days)
    stop = datetime(stop_day.year, stop_day.month, stop_day.day, tzinfo=BERLIN)
    start_s, stop_s = int(start.timestamp()), int(stop.timestamp())
    ticks = (stop_s - start_s) // TICK_S
    window = ["--start", f"{start:%Y-%m-%d}", "--stop", f"{stop:%Y-%m-%d}"]
    utc = ["--start", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start_s)),
           "--stop", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stop_s))]
    header(f"report over a year: {args.days} days x 2 sensors of 10-second readings ({2 * ticks:,} points) in a "
           "real influxd 1.6, templog report vs history through a byte-counting proxy")
    with scratch_dir() as scratch_name:
        scratch = Path(scratch_name)
        influxd = servers.Influxd1.start(scratch / "influxd")
        proxy = None
        try:
            began = time.monotonic()
            fill(influxd, start_s, ticks)
            print(f"influxd: {2 * ticks:,} points written in {time.monotonic() - began:.1f} s "
                  f"({BATCH:,} lines a request)")
            stored = sum(series["values"][0][1] for series in influxd.query(
                'SELECT count("celsius") FROM "temperature" GROUP BY "sensor"', db="bench")["results"][0]["series"])
            print(f"influxd: {stored:,} points stored (count() per sensor)")
            host, port = urllib3.util.parse_url(influxd.url).host, urllib3.util.parse_url(influxd.url).port
            assert host is not None and port is not None
            proxy = CountingProxy((host, port))
            config = scratch / "templog.yaml"
            config.write_text(
                f"collector: {{outbox: {scratch / 'outbox.sqlite'}, interval: 10s}}\n"
                f'influxdb: {{url: "{proxy.url}", api: v1, bucket: bench, timeout: 300s}}\n'
                "sensors:\n  - {name: fridge, type: simulated, min: 2, max: 8}\n  - {name: room, type: simulated}\n")
            out = scratch / "out.txt"
            report = ["report", "-c", str(config), *window, "--tz", "Europe/Berlin", "--format", "json", "-q"]
            walls, rss, report_bytes, report_requests = [], [], 0, {}
            for _ in range(RUNS):
                proxy.reset()
                code, rss_mb, wall, last = run_templog(ROOT, report, out)
                if code != 0:
                    raise SystemExit(f"report failed (exit {code}): {last}")
                walls.append(wall)
                rss.append(rss_mb)
                report_bytes, report_requests = proxy.received, dict(proxy.requests)
            rows = out.read_text().count('"sensor": ')
            readings = sum(int(n) for n in re.findall(r'"readings": (\d+)', out.read_text()))
            excursions = sum(int(n) for n in re.findall(r'"excursions": (\d+)', out.read_text()))
            print(f"report:  {' '.join(report[3:])}")
            print(f"report:  wall {statistics.median(walls):.2f} s (median of {RUNS}: "
                  + ", ".join(f"{w:.2f}" for w in walls) + f"), peak RSS {max(rss):.1f} MB (highest of {RUNS}), "
                  f"{report_bytes:,} bytes received from influxd, {sum(report_requests.values())} HTTP requests "
                  f"({', '.join(f'{n} {p}' for p, n in sorted(report_requests.items()))}); {rows} rows, "
                  f"{readings:,} readings counted, {excursions} excursions")
            proxy.reset()
            history = ["history", "-c", str(config), *utc, "--format", "csv", "-q"]
            code, history_rss, history_wall, last = run_templog(ROOT, history, out)
            if code != 0:
                raise SystemExit(f"history failed (exit {code}): {last}")
            history_bytes, history_requests = proxy.received, dict(proxy.requests)
            per_day: dict[bytes, int] = {}
            with out.open("rb") as f:
                next(f)  # the header
                for line in f:
                    per_day[line[:10]] = per_day.get(line[:10], 0) + 1
            history_rows = sum(per_day.values())
            whole_days = sorted(per_day.items())[1:-1]  # the first and last UTC days hold the Berlin midnight
            short = {day.decode(): n for day, n in whole_days if n != 2 * 86_400 // TICK_S}
            print(f"history: {' '.join(history[3:])}")
            print(f"history: wall {history_wall:.1f} s, peak RSS {history_rss:.1f} MB, {history_bytes:,} bytes "
                  f"received from influxd, {sum(history_requests.values())} HTTP requests; {history_rows:,} rows"
                  + (f"; whole UTC days with another count than {2 * 86_400 // TICK_S:,}: {short}" if short else ""))
        finally:
            if proxy is not None:
                proxy.close()
            influxd.stop()
    ratio = report_bytes / history_bytes
    verdict(f"report's bytes / history's ({report_bytes:,} / {history_bytes:,} = {ratio:.3%})", ratio <= BYTES_TARGET,
            f"<= {BYTES_TARGET:.0%}")
    verdict(f"report's peak RSS ({max(rss):.1f} MB)", max(rss) <= RSS_TARGET_MB, f"<= {RSS_TARGET_MB:g} MB")
    verdict(f"rows: influxd stores {stored:,}, report counts {readings:,}, history prints {history_rows:,}",
            stored == readings == history_rows == 2 * ticks, f"= {2 * ticks:,} points written")


if __name__ == "__main__":
    main()
