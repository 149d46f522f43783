"""Start-up cost of the short commands: wall time, CPU time and peak RSS of `python -m collector health`, `read`,
`history` (from the outbox) and `--help`, each a fresh process, beside `python -c pass` (the interpreter's floor).
Docker's HEALTHCHECK runs `health` every 30 s, for years, on a Raspberry Pi. Targets for `health` and `read` on the
default config (./config.yaml): <= 0.12 s wall (median) and <= 25 MB peak RSS.

As installed in the container: the commands run in a scratch venv without pip or setuptools, as
scripts/install-collector.sh leaves it, whose one .pth file puts this interpreter's site-packages (the
dependencies) on its path. This venv's own .pth files (the editable install's import finder, setuptools' distutils
shim) cost every process here some 25 ms that the container does not pay: `python -c pass` is shown in both. The
collector's bytecode is compiled once, by a warm-up run of each command into a scratch PYTHONPYCACHEPREFIX, as pip
compiles the wheel it installs. While the figures are taken, a `templog run` of the default config collects into
the outbox that `health` and `history` read, as in the container; its InfluxDB is a closed port, so points wait.

With --compare DIR, the collector of DIR (e.g. an export of an older commit) is measured too, interleaved run by run
with this one, so both see the same load. Peak RSS is GNU time's %M (the child's ru_maxrss): time is a small C
program, so what the child inherits at the fork before its exec is a few hundred KiB, where a Python parent's
would be its own RSS. Each command is also run once under `python -X importtime`, to name the heavy modules it
imports.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import venv
from pathlib import Path

import yaml
from common import ROOT, header, scratch_dir, servers, verdict

WALL_TARGET_S = 0.12
RSS_TARGET_MB = 25.0
TARGETED = ("health", "read")
GNU_TIME = "/usr/bin/time"
# imported only by the commands that use them (item 3 of issue 10); shown when a command imports one
HEAVY = ("influxdb_client", "urllib3", "collector.grafana", "paho", "collector.runner", "schedule",
         "collector.influx.v1", "collector.influx.v2", "collector.mqtt")
FILL_TIMEOUT_S = 60.0  # the default config's first sensor reads every 10 s: its first reading is within one interval


def installed_python(scratch: Path) -> str:
    """A venv like the container's: no pip, no setuptools, no editable install; the dependencies from this one's."""
    path = scratch / "venv"
    venv.create(path, with_pip=False)
    purelib = Path(sysconfig.get_paths(vars={"base": str(path), "platbase": str(path)})["purelib"])
    (purelib / "templog-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    return str(path / "bin" / "python")


def measure(argv: list[str], cwd: Path, env: dict) -> tuple[float, float, int]:
    """Wall and CPU (user + system) seconds and peak RSS (KiB) of one run; its exit status is not judged (`health`
    may say unhealthy). CPU time is wait4's, to the microsecond, which other work on the machine inflates less than
    it does the wall time."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        started = time.perf_counter()
        process = subprocess.Popen([GNU_TIME, "-f", "%M", "-o", rss.name, *argv], cwd=cwd, env=env,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)  # GNU time's usage includes the command it waited for
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        return wall, usage.ru_utime + usage.ru_stime, int(rss.read().split()[-1])


def heavy_imports(argv: list[str], cwd: Path, env: dict) -> list[str]:
    """The modules of HEAVY (or their submodules) that one run imports, from `-X importtime`'s lines on stderr."""
    done = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, check=False)
    names = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return [h for h in HEAVY if any(n == h or n.startswith(h + ".") for n in names)]


class Checkout:
    """One collector under test: its checkout, its outbox, its running collector and its figures."""

    def __init__(self, label: str, path: Path, scratch: Path, python: str):
        self.label, self.path = label, path
        outbox = scratch / f"{label}-outbox.sqlite"
        self.env = {key: value for key, value in os.environ.items()
                    if key not in ("PYTHONDONTWRITEBYTECODE", "TEMPLOG_CONFIG") and not key.startswith("INFLUX_")}
        self.env.update(PYTHONPYCACHEPREFIX=str(scratch / f"{label}-pycache"), TEMPLOG_OUTBOX=str(outbox),
                        INFLUX_URL=f"http://127.0.0.1:{servers.free_port()}")
        config = yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8"))
        config.pop("influxdb", None)  # `history` on the outbox: the default config without its InfluxDB
        self.outbox_config = scratch / f"{label}-outbox-only.yaml"
        self.outbox_config.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        collector = [python, "-m", "collector"]
        self.commands = {  # name -> argv; cwd is the checkout, so `config.yaml` is its default config
            "python -c pass": [python, "-c", "pass"],
            "python -c pass, dev venv": [sys.executable, "-c", "pass"],
            "python -I -S -c pass": [python, "-I", "-S", "-c", "pass"],
            "--help": [*collector, "--help"],
            "health": [*collector, "health", "-c", "config.yaml"],
            "read": [*collector, "read", "-c", "config.yaml"],
            "history": [*collector, "history", "-c", str(self.outbox_config), "--since", "1h"],
        }
        self.walls: dict[str, list[float]] = {name: [] for name in self.commands}
        self.cpu: dict[str, list[float]] = {name: [] for name in self.commands}
        self.rss: dict[str, list[int]] = {name: [] for name in self.commands}
        self.collector: subprocess.Popen | None = None

    def start_collector(self, log: Path) -> None:
        with log.open("wb") as stderr:
            self.collector = subprocess.Popen([sys.executable, "-m", "collector", "run", "-q", "-c", "config.yaml"],
                                              cwd=self.path, env=self.env, stdin=subprocess.DEVNULL,
                                              stdout=subprocess.DEVNULL, stderr=stderr)

    def has_readings(self) -> bool:
        done = subprocess.run([sys.executable, "-m", "collector", "history", "-c", str(self.outbox_config),
                               "--since", "1h", "--format", "json"], cwd=self.path, env=self.env,
                              capture_output=True, text=True, check=False)
        return done.returncode == 0 and bool(json.loads(done.stdout or "[]"))

    def stop_collector(self) -> None:
        if self.collector is not None and self.collector.poll() is None:
            self.collector.terminate()
            self.collector.wait(30)

    def report(self, imports: dict) -> None:
        print(f"\n{self.label}: {self.path}")
        for name in self.commands:
            wall, cpu = statistics.median(self.walls[name]), statistics.median(self.cpu[name])
            heavy = imports.get((self.label, name))
            print(f"  {name:<26} wall {wall * 1000:6.1f} ms (min {min(self.walls[name]) * 1000:5.1f})  "
                  f"CPU {cpu * 1000:6.1f} ms  peak RSS {max(self.rss[name]) / 1024:5.1f} MB"
                  + ("" if heavy is None else f"  heavy imports: {', '.join(heavy) or 'none'}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="runs of each command (default 21); the median is shown")
    parser.add_argument("--compare", type=Path, metavar="DIR",
                        help="also measure the collector of this checkout (e.g. `git archive main | tar -x -C DIR`)")
    args = parser.parse_args()
    header(f"startup: one process per command, median of {args.runs} runs, peak RSS from {GNU_TIME} %M")
    if not os.access(GNU_TIME, os.X_OK):
        sys.exit(f"{GNU_TIME} is missing: it measures each run's peak RSS (Debian package `time`, `make servers`)")
    with scratch_dir() as scratch_name:
        scratch = Path(scratch_name)
        python = installed_python(scratch)
        checkouts = [Checkout("this", ROOT, scratch, python)]
        if args.compare:
            checkouts.append(Checkout("compared", args.compare.resolve(), scratch, python))
        try:
            for checkout in checkouts:
                checkout.start_collector(scratch / f"{checkout.label}-run.log")
            deadline = time.monotonic() + FILL_TIMEOUT_S
            while not all(c.has_readings() for c in checkouts):
                if time.monotonic() > deadline:
                    sys.exit(f"no reading in the outbox within {FILL_TIMEOUT_S:g} s: see {scratch}/*-run.log")
                time.sleep(0.5)
            for checkout in checkouts:  # compiles the bytecode, as an install does
                for argv in checkout.commands.values():
                    measure(argv, checkout.path, checkout.env)
            for _ in range(args.runs):
                for checkout in checkouts:
                    for name, argv in checkout.commands.items():
                        wall, cpu, rss = measure(argv, checkout.path, checkout.env)
                        checkout.walls[name].append(wall)
                        checkout.cpu[name].append(cpu)
                        checkout.rss[name].append(rss)
            imports = {(c.label, name): heavy_imports(argv, c.path, c.env)
                       for c in checkouts for name, argv in c.commands.items() if "collector" in argv}
        finally:
            for checkout in checkouts:
                checkout.stop_collector()
    for checkout in checkouts:
        checkout.report(imports)
    print()
    this = checkouts[0]
    for name in TARGETED:
        wall, rss_mb = statistics.median(this.walls[name]), max(this.rss[name]) / 1024
        verdict(f"{name}: median wall {wall:.3f} s", wall <= WALL_TARGET_S, f"<= {WALL_TARGET_S} s")
        verdict(f"{name}: peak RSS {rss_mb:.1f} MB", rss_mb <= RSS_TARGET_MB, f"<= {RSS_TARGET_MB:g} MB")


if __name__ == "__main__":
    main()
