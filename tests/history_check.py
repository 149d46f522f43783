"""One history round trip, shared by every backend: write known points, read them back with `templog history`."""

from __future__ import annotations

import json
from pathlib import Path

from cli import templog
from collector.history import rfc3339

S = 1_000_000_000
WRITTEN = [("a", 20.5), ("b", 5.25), ("a", 21.5), ("a", 22.0), ("b", -1.0)]


def lines_at(base_ns: int) -> list[str]:
    """WRITTEN as line protocol, one point every 10 s from `base_ns` (a whole minute)."""
    return [f"temperature,host=h,sensor={name} celsius={value} {base_ns + i * 10 * S}"
            for i, (name, value) in enumerate(WRITTEN)]


def assert_history_returns_what_was_written(config: Path, base_ns: int) -> None:
    window = ["--start", rfc3339(base_ns), "--stop", rfc3339(base_ns + 60 * S)]
    done = templog("history", "-c", str(config), *window, "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"time": rfc3339(base_ns + i * 10 * S), "sensor": name, "celsius": value}
                                       for i, (name, value) in enumerate(WRITTEN)]
    done = templog("history", "-c", str(config), *window, "--every", "30s", "--sensor", "a", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        {"time": rfc3339(base_ns), "sensor": "a", "mean": 21.0, "min": 20.5, "max": 21.5},
        {"time": rfc3339(base_ns + 30 * S), "sensor": "a", "mean": 22.0, "min": 22.0, "max": 22.0},
    ]
