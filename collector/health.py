"""The collector's own health: the `templog` measurement written every health interval, and the verdict of
`templog health` (for Docker's HEALTHCHECK) from the state the running collector keeps in its outbox."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from collector.lineprotocol import HEALTH_MEASUREMENT, Point, Series
from collector.stats import Stats
from collector.ticks import NS_PER_S, utc_text

HEARTBEAT_S = 10  # how often the loop records that it is alive
STALE_HEARTBEAT_S = 60  # no heartbeat for this long: the loop is stuck or gone
STALLED_DELIVERY_S = 300  # points waiting and no delivery for this long: the outbox is not draining
MQTT_DOWN_GRACE_S = 60  # MQTT down this long: unhealthy (the collector records its own: the keepalive, if shorter)

SENSOR_COUNTERS = ("reads_ok", "reads_failed", "readings_refused", "humidity_refused", "readings_missing",
                   "ticks_skipped", "mqtt_payloads_malformed", "mqtt_humidity_missing")
TOTAL_COUNTERS = SENSOR_COUNTERS + ("ticks_before_time_floor", "points_delivered", "points_rejected",
                                   "points_beyond_retention", "outbox_dropped", "outbox_write_failures",
                                   "mqtt_callback_errors", "mqtt_network_restarts")
WRITE_FAILURES = "write_failures"  # their sum; and write_failures_<kind>, one field per kind of failure met
OUTBOX_FIELDS = ("outbox_depth", "outbox_oldest_age_s", "uptime_s")
LATENCY_FIELDS = ("read_latency_ms_mean", "read_latency_ms_max")


def tag_key_problem(key: str) -> str | None:
    """Why `key` cannot be a tag of the health points (collector.tags go on them), or None if it can: a field of
    theirs has that name. InfluxDB 3 refuses a point whose tag has the name of a field of its table, or the reverse
    (influxdata/influxdb@v3.9.6:influxdb3_write/src/write_buffer/validator.rs column_or_create, and
    influxdb3_catalog/src/catalog/versions/v2/update.rs tag_or_create: InvalidColumnType), and InfluxQL on 1.x
    shows such a tag as `<key>_1`."""
    if (key in TOTAL_COUNTERS or key in OUTBOX_FIELDS or key in LATENCY_FIELDS or key == WRITE_FAILURES
            or key.startswith(WRITE_FAILURES + "_")):
        return (f"the collector's health points ('{HEALTH_MEASUREMENT}') have a field '{key}': InfluxDB 3 refuses a "
                f"point with a tag and a field of one name, and InfluxQL would show the tag as '{key}_1'")
    return None


def health_points(stats: Stats, tags: dict[str, str], sensors: Sequence[str], outbox_depth: int,
                  oldest_ns: int | None, now_ns: int, started_ns: int, tick_ns: int) -> list[Point]:
    """One point for the collector (counters since start, write failures by kind, outbox) and one per sensor."""
    totals = stats.totals()
    fields: dict[str, float | int] = {name: totals.get(name, 0) for name in TOTAL_COUNTERS}
    failures = {name: n for name, n in sorted(totals.items()) if name.startswith(WRITE_FAILURES + "_")}
    fields[WRITE_FAILURES] = sum(failures.values())
    fields.update(failures)
    depth, oldest_age, uptime = OUTBOX_FIELDS
    fields[depth] = outbox_depth
    fields[oldest_age] = max(0.0, (now_ns - oldest_ns) / NS_PER_S) if oldest_ns is not None else 0.0
    fields[uptime] = (now_ns - started_ns) / NS_PER_S
    points = [Point(Series(HEALTH_MEASUREMENT, tags), fields, tick_ns)]
    for sensor in sensors:
        counts = stats.per_sensor(sensor)
        sensor_fields: dict[str, float | int] = {name: counts.get(name, 0) for name in SENSOR_COUNTERS}
        latency = stats.take_latency(sensor)
        if latency is not None:
            mean, most = LATENCY_FIELDS
            sensor_fields[mean] = latency.mean_ms
            sensor_fields[most] = latency.max_ms
        points.append(Point(Series(HEALTH_MEASUREMENT, {**tags, "sensor": sensor}), sensor_fields, tick_ns))
    return points


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    message: str


def judge(state: dict[str, str], outbox_depth: int, delivering: bool, now_ns: int) -> Verdict:
    """Healthy while the loop ticks, any MQTT connection is up (or down for less than its grace), and the outbox is
    empty or draining (or there is no InfluxDB to drain to).

    A collector that stopped cleanly is unhealthy at once; "draining" means deliveries succeed: while they fail,
    the verdict says so, and turns unhealthy once nothing was delivered for STALLED_DELIVERY_S.
    """
    heartbeat = int(state.get("heartbeat_ns", 0))
    if not heartbeat:
        return Verdict(False, "the collector has not run yet (no heartbeat in the outbox)")
    stopped = int(state.get("stopped_ns") or 0)
    if stopped:
        return Verdict(False, f"the collector stopped {max(0.0, (now_ns - stopped) / NS_PER_S):.0f}s ago; "
                              f"{outbox_depth} point(s) in the outbox")
    silent_s = (now_ns - heartbeat) / NS_PER_S
    if silent_s > STALE_HEARTBEAT_S:
        return Verdict(False, f"the collector loop has not ticked for {silent_s:.0f}s")
    if mqtt_down := _mqtt_down(state, now_ns):
        return Verdict(False, mqtt_down)
    if not delivering or outbox_depth == 0:
        return Verdict(True, f"ticking; {outbox_depth} point(s) in the outbox")
    last = int(state.get("last_delivery_ns") or state.get("started_ns") or heartbeat)
    stalled_s = (now_ns - last) / NS_PER_S
    error = state.get("last_delivery_error")  # cleared by the sender once delivery succeeds again
    if stalled_s > STALLED_DELIVERY_S:
        return Verdict(False, f"{outbox_depth} point(s) waiting and nothing delivered for {stalled_s:.0f}s: "
                              f"{error or 'no error recorded'}")
    if error:
        failing_s = (now_ns - int(state.get("last_delivery_error_ns") or now_ns)) / NS_PER_S
        return Verdict(True, f"ticking; {outbox_depth} point(s) in the outbox, delivery failing for "
                             f"{max(0.0, failing_s):.0f}s: {error}")
    return Verdict(True, f"ticking; {outbox_depth} point(s) in the outbox, draining")


def _mqtt_down(state: dict[str, str], now_ns: int) -> str | None:
    """Why the MQTT connection counts as down: down for longer than its grace, counted from this run's start at
    the earliest (a previous run's record is not this one's outage)."""
    since = int(state.get("mqtt_down_since_ns") or 0)
    if not since:
        return None
    since = max(since, int(state.get("started_ns") or 0))
    down_s = (now_ns - since) / NS_PER_S
    if down_s <= float(state.get("mqtt_down_grace_s") or MQTT_DOWN_GRACE_S):
        return None
    when = utc_text(since)
    reason = state.get("mqtt_down_reason")
    return (f"not connected to the MQTT broker {state.get('mqtt_broker', '')} since {when} ({down_s:.0f}s)"
            + (f": {reason}" if reason else ""))
