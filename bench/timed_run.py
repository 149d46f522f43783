"""`python -m collector` with the start of every sensor read timed, for bench/footprint.py: how late after its tick
each read starts, measured inside the collector process without changing how it schedules or reads. Each sensor
is wrapped before `run` builds it; at exit the start of every read (time.time_ns(), in the order the reads
started) goes to the file named by $TEMPLOG_BENCH_LATENESS as native 8-byte integers; ticks are whole multiples
of the interval, so the reader of the file has the tick and the lateness of each. Costs one clock read and one
append per read.

With $TEMPLOG_BENCH_PROFILE set, every thread also runs under cProfile (py-spy cannot attach to this Python here)
and the merged statistics go to that file at exit (pstats format; bench/profile_top.py prints the top lines), and
those of the shared lane's threads alone to FILE.lane (the sequential pass that decides how late the last read of
a tick starts).
It counts each thread's CPU time (time.thread_time), so a thread blocked in a wait or an fsync costs nothing.
cProfile slows the code it measures, several times over: its figures are shares, not costs.
"""

from __future__ import annotations

import array
import atexit
import cProfile
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import collector.sensors  # noqa: E402

STARTS_NS = array.array("q")  # append is atomic under the GIL: safe from every reader thread


class TimedSensor:
    def __init__(self, inner):
        self.inner = inner

    def read(self) -> collector.sensors.Sample:
        STARTS_NS.append(time.time_ns())
        return self.inner.read()


def _timed_create(config, shared=None):
    return TimedSensor(_create(config, shared))


PROFILES: list[tuple[str, cProfile.Profile]] = []  # thread name, its profile


def _profiled_run(run):
    def profiled(self):
        profile = cProfile.Profile(time.thread_time)
        PROFILES.append((self.name, profile))
        profile.runcall(run, self)
    return profiled


def _save() -> None:
    Path(os.environ["TEMPLOG_BENCH_LATENESS"]).write_bytes(STARTS_NS.tobytes())
    if os.environ.get("TEMPLOG_BENCH_PROFILE"):
        for _, profile in PROFILES:
            profile.create_stats()  # the threads still running (daemons) are snapshotted as they are
        _merged(PROFILES).dump_stats(os.environ["TEMPLOG_BENCH_PROFILE"])
        lane = [(name, profile) for name, profile in PROFILES if name == "read lane"]
        if lane:
            _merged(lane).dump_stats(os.environ["TEMPLOG_BENCH_PROFILE"] + ".lane")


def _merged(profiles):
    import pstats

    merged = pstats.Stats(profiles[0][1])
    for _, profile in profiles[1:]:
        merged.add(profile)
    return merged


_create = collector.sensors.create_sensor
collector.sensors.create_sensor = _timed_create

if __name__ == "__main__":
    atexit.register(_save)
    from collector.cli import main

    if os.environ.get("TEMPLOG_BENCH_PROFILE"):
        # patched on purpose, so that every thread's run is profiled: the one place a method is replaced
        threading.Thread.run = _profiled_run(threading.Thread.run)  # type: ignore[method-assign]
        PROFILES.append(("main", cProfile.Profile(time.thread_time)))
        sys.exit(PROFILES[-1][1].runcall(main, sys.argv[1:]))
    sys.exit(main(sys.argv[1:]))
