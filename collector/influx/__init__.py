"""InfluxDB clients: api v1 (InfluxDB 1.x HTTP API), api v2 (influxdb-client) and api v3 (InfluxDB 3's /api/v3), one
small interface.

    write(lines)          deliver line protocol; raise an InfluxError (errors.py: a class per failure) when InfluxDB
                          did not take it
    ensure_retention()    with `retention` set, make the bucket/database and its retention match it; return what
                          was done (a shortened retention is also a WARNING: InfluxDB deletes the older points)
    probe(timeout)        whether InfluxDB answers /ping at all: the sender's cheap check between backed-off writes
    problems()            what `templog check` reports: unreachable, unauthorised, missing, differing retention
    history(query)        the readings a HistoryQuery asks for, streamed in time order then sensor (`templog history`)
    summaries(start, stop, sensors)   per sensor, its readings' count, mean, min, max (the earliest times of
                          those) and MKT term over a span, aggregated by InfluxDB in one query
    day_summaries(days, sensors)      `templog report`'s ReportSource: `summaries` of each day (client.py)
    outside(start, stop, sensor, low, high)   a sensor's readings beyond its thresholds, streamed in time order
    describe()            the server and database or bucket, for the lines that report on a query
    close()

Every InfluxError's message has the credentials masked and, when /ping says the server is the other InfluxDB line
than `api` speaks to, says which api to set (version.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Iterable

from collector.config_types import InfluxConfig
from collector.influx.errors import InfluxError, RetentionUnsupported

if TYPE_CHECKING:
    from collector.influx.v1 import InfluxV1
    from collector.influx.v2 import InfluxV2
    from collector.influx.v3 import InfluxV3

__all__ = ["InfluxError", "InfluxV1", "InfluxV2", "InfluxV3", "RetentionUnsupported", "connect"]


def connect(config: InfluxConfig, reading_tags: Iterable[str] = (), health_tags: Iterable[str] = ()
            ) -> InfluxV1 | InfluxV2 | InfluxV3:
    """The client for `config.api`. `reading_tags`, `health_tags`: the configured tag keys the readings and the
    health points carry besides sensor and host, which api v3 declares in the tables it creates for a managed
    database."""
    # Each client's module is imported when one is made, so that importing this package (for its errors) costs
    # nothing: influxdb-client (v2) with urllib3 was 0.24 s of `templog health`'s imports here (BENCHMARKS.md 7).
    if config.api == "v1":
        from collector.influx.v1 import InfluxV1

        return InfluxV1(config)
    if config.api == "v3":
        from collector.influx.v3 import InfluxV3

        return InfluxV3(config, reading_tags, health_tags)
    from collector.influx.v2 import InfluxV2

    return InfluxV2(config)


_CLIENT_MODULES = {name: f"collector.influx.v{name[-1]}" for name in ("InfluxV1", "InfluxV2", "InfluxV3")}


def __getattr__(name: str):
    """`from collector.influx import InfluxV1`: the client's module is imported then (PEP 562), as in `connect`."""
    if name in _CLIENT_MODULES:
        return getattr(importlib.import_module(_CLIENT_MODULES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
