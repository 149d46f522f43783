"""Memory of `templog history` over 1,000,000 points, from each source: a real influxd 1.x (api v1), FakeInfluxDB2
(api v2), FakeInfluxDB3 (api v3) and the outbox (no influxdb section). Each run is `python -m collector history`
as a separate process, its output written to a file; its peak RSS is the kernel's high-water mark (VmHWM).
Target: <= 100 MB peak RSS for every source and format, raw and `--every`, so that a Raspberry Pi can print any
range.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import urllib3
from common import ROOT, header, run_templog, scratch_dir, servers, verdict

sys.path.insert(0, str(ROOT / "tests"))
from collector.lineprotocol import MEASUREMENT, Series  # noqa: E402
from collector.outbox import Outbox  # noqa: E402
from collector.readings import Reading, reading_point  # noqa: E402
from fake_influxdb2 import FakeInfluxDB2  # noqa: E402  (the tests' stand-in for InfluxDB 2)
from fake_influxdb3 import FakeInfluxDB3  # noqa: E402  (the tests' stand-in for InfluxDB 3)

RSS_TARGET_MB = 100.0
SENSORS = 20
BATCH = 10_000  # points per write request or outbox commit
# influxdb.timeout in the configs is 60s: FakeInfluxDB2 sorts the million points before its first byte, in
# Python, on a machine shared with other work; the default 10s bounds each wait for the next piece of an answer.
START_NS = 1_767_225_600 * 1_000_000_000  # 2026-01-01T00:00:00Z
S = 1_000_000_000
http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=300))


def points(count: int):
    """`count` points: SENSORS sensors, one reading each per second, from START_NS."""
    series = {f"s{i:02d}": Series(MEASUREMENT, {"host": "bench", "sensor": f"s{i:02d}"}) for i in range(SENSORS)}
    for i in range(count):
        sensor, t = f"s{i % SENSORS:02d}", START_NS + i // SENSORS * S
        value = round(20 + (i * 7919 % 1000) / 100, 2)
        yield reading_point(series[sensor], Reading(sensor, t, value))


def batches(count: int):
    batch = []
    for point in points(count):
        batch.append(point)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def post(url: str, body: bytes, headers: dict | None = None) -> None:
    response = http.request("POST", url, body=body, headers=headers or {})
    if response.status not in (200, 204):
        raise RuntimeError(f"{url}: HTTP {response.status}: {response.data[:300]!r}")


def fill_influxd(server, count: int) -> None:
    post(f"{server.url}/query", b"q=CREATE+DATABASE+bench", {"Content-Type": "application/x-www-form-urlencoded"})
    for batch in batches(count):
        post(f"{server.url}/write?db=bench&precision=ns", "\n".join(point.line() for point in batch).encode())


def fill_fake(fake: FakeInfluxDB2, count: int) -> None:
    fake.add_bucket("bench")
    for batch in batches(count):
        post(f"{fake.url}/api/v2/write?org=home&bucket=bench&precision=ns",
             "\n".join(point.line() for point in batch).encode(), {"Authorization": "Token bench"})


def fill_fake3(fake: FakeInfluxDB3, count: int) -> None:
    for batch in batches(count):
        post(f"{fake.url}/api/v3/write_lp?db=bench&precision=nanosecond",
             "\n".join(point.line() for point in batch).encode(), {"Authorization": "Bearer bench"})


def fill_outbox(path: Path, count: int) -> None:
    outbox = Outbox(str(path), max_points=count)
    for batch in batches(count):
        outbox.append(batch)
    outbox.close()


def rows_in(out: Path, fmt: str) -> int:
    """Rows printed: the lines holding a "time" key in json (one object per line, or indented), else the lines
    after the header."""
    with out.open("rb") as f:
        if fmt == "json":
            return sum(1 for line in f if b'"time": ' in line)
        return sum(1 for _ in f) - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000, help="points per source (default 1,000,000)")
    parser.add_argument("--checkout", type=Path, default=ROOT,
                        help="run the collector of this checkout (default: this one), e.g. an older commit's")
    parser.add_argument("--sources", default="v1,v2,v3,outbox", help="comma-separated subset of v1,v2,v3,outbox")
    args = parser.parse_args()
    count, sources = args.points, args.sources.split(",")
    seconds = count // SENSORS
    window = ["--start", "2026-01-01T00:00:00Z", "--stop",
              time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(START_NS // S + seconds))]
    header(f"history memory: python -m collector history over {count:,} points ({SENSORS} sensors x "
           f"{seconds:,} s) from {', '.join(sources)}; collector of {args.checkout}")
    results = []
    with scratch_dir() as scratch_name:
        scratch = Path(scratch_name)
        influxd = fake = fake3 = None
        try:
            configs = {}
            if "v1" in sources:
                influxd = servers.Influxd1.start(scratch / "influxd")
                began = time.monotonic()
                fill_influxd(influxd, count)
                print(f"influxd: {count:,} points written in {time.monotonic() - began:.1f} s")
                configs["v1"] = (f'influxdb: {{url: "{influxd.url}", api: v1, bucket: bench, retention: 0, '
                                 'timeout: 60s}\n')
            if "v2" in sources:
                fake = FakeInfluxDB2(token="bench").start()
                began = time.monotonic()
                fill_fake(fake, count)
                print(f"FakeInfluxDB2: {count:,} points written in {time.monotonic() - began:.1f} s "
                      "(its memory is the bench's, not templog's: the v2 figures are for the client side only)")
                configs["v2"] = (f'influxdb: {{url: "{fake.url}", api: v2, org: home, bucket: bench, token: bench, '
                                 'retention: 0, timeout: 60s}\n')
            if "v3" in sources:
                fake3 = FakeInfluxDB3(token="bench").start()
                began = time.monotonic()
                fill_fake3(fake3, count)
                print(f"FakeInfluxDB3: {count:,} points written in {time.monotonic() - began:.1f} s "
                      "(its memory is the bench's, not templog's: the v3 figures are for the client side only)")
                configs["v3"] = (f'influxdb: {{url: "{fake3.url}", api: v3, bucket: bench, token: bench, '
                                 'retention: 0, timeout: 60s}\n')
            if "outbox" in sources:
                began = time.monotonic()
                fill_outbox(scratch / "outbox.sqlite", count)
                print(f"outbox: {count:,} points committed in {time.monotonic() - began:.1f} s")
                configs["outbox"] = ""
            sensors = "sensors:\n" + "".join(f"  - {{name: s{i:02d}, type: simulated}}\n" for i in range(SENSORS))
            for source, influx in configs.items():
                config = scratch / f"{source}.yaml"
                config.write_text(influx + f"collector: {{outbox: {scratch / 'outbox.sqlite'}}}\n" + sensors)
                runs: list[tuple[str, list[str], int]] = [(fmt, [], count) for fmt in ("csv", "json", "table")]
                runs.append(("csv", ["--every", "1m"], SENSORS * -(-seconds // 60)))
                for fmt, extra, expected in runs:
                    out = scratch / "out.txt"
                    code, rss_mb, wall, last = run_templog(args.checkout, ["history", "-c", str(config), *window,
                                                                          "--format", fmt, *extra], out)
                    rows = rows_in(out, fmt) if code == 0 else 0
                    what = f"{source:<6} {fmt:<5} {' '.join(extra) or 'raw':<10}"
                    ok = code == 0 and rows == expected
                    print(f"{what} peak RSS {rss_mb:6.1f} MB  wall {wall:6.1f} s  rows {rows:,}"
                          + ("" if ok else f"  (exit {code}, expected {expected:,} rows: {last})"))
                    results.append((what, rss_mb, ok))
        finally:
            if influxd is not None:
                influxd.stop()
            if fake is not None:
                fake.stop()
            if fake3 is not None:
                fake3.stop()
    worst = max(results, key=lambda r: r[1])
    verdict(f"peak RSS, highest ({worst[0].strip()}: {worst[1]:.1f} MB)", all(r[1] <= RSS_TARGET_MB for r in results),
            f"<= {RSS_TARGET_MB:g} MB")
    verdict("rows printed", all(ok for _, _, ok in results), "= every point written, exit 0")


if __name__ == "__main__":
    main()
