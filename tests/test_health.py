"""The collector's own health: the `templog` measurement, and the verdict of `templog health`."""

from collector.health import STALE_HEARTBEAT_S, STALLED_DELIVERY_S, health_points, judge, tag_key_problem
from collector.stats import Stats

S = 1_000_000_000
NOW = 1_800_000_000 * S


def test_health_points_carry_counters_outbox_and_latency():
    stats = Stats()
    stats.add("reads_ok", 5, sensor="desk")
    stats.add("reads_failed", 2, sensor="shed")
    stats.add("write_failures_network", 3)
    stats.add("write_failures_auth", 1)
    stats.add("points_delivered", 40)
    stats.observe_latency("desk", 0.002)
    stats.observe_latency("desk", 0.004)
    points = health_points(stats, {"host": "pi"}, ["desk", "shed"], outbox_depth=7, oldest_ns=NOW - 90 * S,
                           now_ns=NOW, started_ns=NOW - 600 * S, tick_ns=NOW)
    collector, desk, shed = (point.line() for point in points)
    assert collector.startswith("templog,host=pi ") and collector.endswith(f" {NOW}")
    for field in ("reads_ok=5i", "reads_failed=2i", "points_delivered=40i", "write_failures=4i",
                  "write_failures_network=3i", "write_failures_auth=1i", "outbox_depth=7i",
                  "outbox_oldest_age_s=90.0", "uptime_s=600.0"):
        assert field in collector.split(" ")[1].split(","), field
    assert desk.startswith("templog,host=pi,sensor=desk reads_ok=5i,reads_failed=0i")
    assert "read_latency_ms_mean=3.0" in desk and "read_latency_ms_max=4.0" in desk
    assert shed.startswith("templog,host=pi,sensor=shed reads_ok=0i,reads_failed=2i") and "latency" not in shed
    # latency is per period: the next health point only reports new reads
    assert "latency" not in health_points(stats, {"host": "pi"}, ["desk"], 0, None, NOW, NOW, NOW)[1].line()


def test_every_field_of_the_health_points_is_refused_as_a_collector_tag_key():
    """So that the rule cannot drift from the fields written (a tag of a field's name: a point InfluxDB 3 refuses)."""
    stats = Stats()
    stats.add("write_failures_network")
    stats.observe_latency("desk", 0.002)
    points = health_points(stats, {"host": "pi"}, ["desk"], 1, NOW, NOW, NOW, NOW)
    names = {name for point in points for name in point.fields}
    assert "write_failures_network" in names and "read_latency_ms_max" in names
    assert [name for name in sorted(names) if not tag_key_problem(name)] == []
    assert tag_key_problem("room") is None and tag_key_problem("host") is None


def test_judge():
    alive = {"heartbeat_ns": str(NOW - 5 * S), "started_ns": str(NOW - 3600 * S)}
    assert judge({}, 0, True, NOW).healthy is False
    assert judge(alive, 0, True, NOW).healthy is True
    stale = {"heartbeat_ns": str(NOW - (STALE_HEARTBEAT_S + 1) * S)}
    assert "has not ticked for 61s" in judge(stale, 0, True, NOW).message
    assert judge(alive, 500, False, NOW).healthy is True  # no InfluxDB: the outbox is the destination
    draining = {**alive, "last_delivery_ns": str(NOW - 20 * S)}
    assert judge(draining, 500, True, NOW).healthy is True
    stuck = {**alive, "last_delivery_ns": str(NOW - (STALLED_DELIVERY_S + 5) * S),
             "last_delivery_error": "HTTP 401: unauthorized"}
    verdict = judge(stuck, 500, True, NOW)
    assert not verdict.healthy
    assert verdict.message == "500 point(s) waiting and nothing delivered for 305s: HTTP 401: unauthorized"


def test_a_cleanly_stopped_collector_is_unhealthy_at_once():
    stopped = {"heartbeat_ns": str(NOW - 1 * S), "started_ns": str(NOW - 3600 * S), "stopped_ns": str(NOW - 1 * S)}
    verdict = judge(stopped, 3, True, NOW)
    assert not verdict.healthy and verdict.message == "the collector stopped 1s ago; 3 point(s) in the outbox"
    restarted = {**stopped, "stopped_ns": "0", "started_ns": str(NOW - 1 * S)}  # what `run` records at start
    assert judge(restarted, 3, True, NOW).healthy


def test_draining_only_while_deliveries_succeed():
    alive = {"heartbeat_ns": str(NOW - 5 * S), "started_ns": str(NOW - 3600 * S), "last_delivery_ns": str(NOW - 40 * S)}
    failing = {**alive, "last_delivery_error": "cannot reach http://influx:8086: refused",
               "last_delivery_error_ns": str(NOW - 30 * S)}
    verdict = judge(failing, 500, True, NOW)
    assert verdict.healthy and "draining" not in verdict.message  # within STALLED_DELIVERY_S: still healthy
    assert verdict.message == ("ticking; 500 point(s) in the outbox, delivery failing for 30s: "
                               "cannot reach http://influx:8086: refused")
    resolved = {**failing, "last_delivery_error": "", "last_delivery_error_ns": ""}  # the sender clears it
    assert judge(resolved, 500, True, NOW).message == "ticking; 500 point(s) in the outbox, draining"


def test_a_long_drain_stays_healthy_while_batches_are_acknowledged():
    # started an hour ago with a big backlog; the last batch was acknowledged a second ago
    draining = {"heartbeat_ns": str(NOW - 5 * S), "started_ns": str(NOW - 3600 * S), "last_delivery_ns": str(NOW - S)}
    assert judge(draining, 900_000, True, NOW).healthy
