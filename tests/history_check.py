"""One history round trip, shared by every source: write known points, read them back with `templog history`.

The points are many enough to arrive in several pieces (CHUNK_ROWS rows per chunk on api v1), come from three
sensors on two hosts so that equal times across sensors are common and the server's own order of them (by
series key: host before sensor) is not the sensors' order, and have values in quarters so that every mean is
exact in binary floating point and the same wherever it is computed.
"""

from __future__ import annotations

import json
from pathlib import Path

from cli import templog
from collector.influx.v1 import CHUNK_ROWS
from collector.ticks import rfc3339

S = 1_000_000_000
# A sensor name as hostile as the config allows (collector.lineprotocol.sensor_name_problem): quotes, `$`, spaces,
# slashes, a colon, a dot and letters beyond ASCII
HOSTILE_NAME = 'cost $5 ($x) /a/b: ä.ß "q"'
TICKS = 4_200  # one a second: a and c on each, b on every other one
SENSORS = {"c": "h1", "a": "h1", "b": "h0"}  # sensor -> host; host h0 sorts first, so b comes first at a tie
SPAN_NS = TICKS * S


def written(base_ns: int) -> list[tuple[int, str, float]]:
    """(time_ns, sensor, celsius) from `base_ns` (a whole minute), in the order they are written."""
    points = []
    for i in range(TICKS):
        for n, sensor in enumerate(SENSORS):
            if sensor != "b" or i % 2 == 0:
                points.append((base_ns + i * S, sensor, ((i * 7 + n * 31) % 160 - 40) / 4))
    assert len(points) > 2 * CHUNK_ROWS
    return points


def lines_at(base_ns: int) -> list[str]:
    """The points as line protocol."""
    return [f"temperature,host={SENSORS[sensor]},sensor={sensor} celsius={value} {t}"
            for t, sensor, value in written(base_ns)]


def windows(points: list[tuple[int, str, float]], every_ns: int) -> list[dict]:
    """What `--every` should print for the points: per window and sensor, in time order then sensor."""
    groups: dict[tuple[int, str], list[float]] = {}
    for t, sensor, value in points:
        groups.setdefault((t - t % every_ns, sensor), []).append(value)
    return [{"time": rfc3339(t), "sensor": sensor, "mean": sum(v) / len(v), "min": min(v), "max": max(v)}
            for (t, sensor), v in sorted(groups.items())]


def assert_history_returns_what_was_written(config: Path, base_ns: int) -> None:
    points = written(base_ns)
    window = ["--start", rfc3339(base_ns), "--stop", rfc3339(base_ns + SPAN_NS)]

    done = templog("history", "-c", str(config), *window, "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"time": rfc3339(t), "sensor": sensor, "celsius": value}
                                       for t, sensor, value in sorted(points)]

    done = templog("history", "-c", str(config), *window, "--every", "30s", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == windows(points, 30 * S)

    # a start inside a window: the window keeps its start on the grid and holds only readings in the range
    late = base_ns + 45 * S
    done = templog("history", "-c", str(config), "--start", rfc3339(late), "--stop", rfc3339(base_ns + SPAN_NS),
                   "--every", "1m", "--sensor", "a", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == windows([p for p in points if p[1] == "a" and p[0] >= late], 60 * S)
