"""What the bench scripts share: the machine header, PASS/MISS lines, scratch space on disk, the collector config
with 100 simulated sensors, and CPU/RSS readings from /proc, so every script measures and reports the same way."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's collector, and tests/servers.py

import servers  # noqa: E402  (found through the path set above) the real influxd 1.x and VictoriaMetrics the tests start

__all__ = ["ROOT", "SENSORS", "cpu_seconds", "header", "memory_kib", "scratch_dir", "servers", "verdict",
           "write_config"]

SENSORS = 100
SCRATCH = "/var/tmp"  # on disk: /tmp may be tmpfs, where fsync costs nothing
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def header(title: str) -> None:
    """Print what the figures were measured on, before them."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    ram_kib = int(Path("/proc/meminfo").read_text().split()[1])
    print(f"== {title}")
    print(f"machine: {cpu}, {os.cpu_count()} cores, {ram_kib / 2**20:.1f} GiB RAM, "
          f"Python {platform.python_version()}, {platform.system()} {platform.release()}")
    print(f"disk:    {SCRATCH} is on {_disk(SCRATCH)}")
    print(f"code:    {_revision()}")
    print(f"date:    {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M:%S} UTC, load average "
          + " ".join(f"{load:.2f}" for load in os.getloadavg()) + " (other work on the machine skews the figures)")


def _revision() -> str:
    """The commit measured, and whether collector/ differs from it (it is edited while benchmarks run)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False)
        return done.stdout.strip()

    commit = git("log", "-1", "--format=%h %s") or "unknown (not a git checkout)"
    return commit + (" + uncommitted changes in collector/" if git("status", "--porcelain", "collector") else "")


def _disk(path: str) -> str:
    """Device, file system and the kernel's rotational flag of the mount holding `path`."""
    mounts = [line.split()[:3] for line in Path("/proc/mounts").read_text().splitlines()]
    device, mount, fstype = max((m for m in mounts if (path + "/").startswith(m[1].rstrip("/") + "/")),
                                key=lambda m: len(m[1]))
    flag = Path(f"/sys/block/{Path(device).name}/queue/rotational")
    rotational = f", rotational={flag.read_text().strip()}" if flag.exists() else ""
    return f"{device} ({fstype} at {mount}{rotational})"


def verdict(what: str, ok: bool, target: str) -> None:
    print(f"target:  {what} {target}: {'PASS' if ok else 'MISS'}")


def scratch_dir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="templog-bench-", dir=SCRATCH)


def write_config(path: Path, outbox: Path, influxdb: dict | None, host: str = "bench", sensors: int = SENSORS,
                 humidity: float | None = None) -> Path:
    """A config with `sensors` simulated sensors read every second, named s00, s01, ..., tagged with `host`; with
    `humidity` (%RH), each measures humidity too."""
    extra = {} if humidity is None else {"humidity": humidity}
    config = {
        "collector": {"interval": "1s", "timeout": "5s", "outbox": str(outbox), "tags": {"host": host}},
        "sensors": [{"name": f"s{i:02d}", "type": "simulated", "seed": i, **extra} for i in range(sensors)],
    }
    if influxdb is not None:
        config["influxdb"] = influxdb
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime and stime, fields 14 and 15 of stat(5)


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (resident now) and VmHWM (peak resident) of a process, in KiB, from /proc/PID/status."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


POLL_S = 0.01  # VmHWM only grows: a poll this often misses at most what the last 10 ms before the exit added


def run_templog(checkout: Path, args: list[str], out: Path) -> tuple[int, float, float, str]:
    """Exit code, peak RSS in MB and wall seconds of one `templog ARGS` run from `checkout` (stdout into `out`), and
    the last line of its stderr.

    The peak is VmHWM polled from /proc: the kernel's ru_maxrss of a child (wait4, RUSAGE_CHILDREN) starts from
    its parent's RSS at the fork, and a bench's parent may hold a stand-in's million points.
    """
    started, peak_kib = time.monotonic(), 0
    with out.open("wb") as stdout, (out.parent / "stderr.txt").open("wb") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "collector", *args], cwd=checkout,
                                   stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
        while process.poll() is None:
            try:
                peak_kib = max(peak_kib, memory_kib(process.pid).get("VmHWM", 0))
            except (FileNotFoundError, ProcessLookupError):
                pass  # it has just ended
            time.sleep(POLL_S)
    wall = time.monotonic() - started
    lines = (out.parent / "stderr.txt").read_text(errors="replace").strip().splitlines()
    return process.returncode, peak_kib / 1024, wall, lines[-1] if lines else ""
