"""api v2: writes through influxdb-client to a real line-protocol server (VictoriaMetrics); the buckets API and
Flux history against FakeInfluxDB2, which mimics InfluxDB 2's documented HTTP API (no InfluxDB 2 runs here)."""

import time
from pathlib import Path

import pytest

from cli import start_run, stop_run, templog, wait_until
from collector.config import load_config
from collector.delivery import Sender
from collector.influx import InfluxV2, RetentionUnsupported
from collector.influx.errors import NotFound, Unauthorized
from collector.outbox import Outbox
from collector.stats import Stats
from history_check import assert_history_returns_what_was_written, lines_at
from temperature_points import temperature

S = 1_000_000_000
MS = 1_000_000


def v2_config(write_config, url, bucket="temperature", token="test-token", retention="30d", sensors=None):
    sensors = sensors or '\n  - {name: "desk lamp", type: simulated, interval: 1s, tags: {room: "office, 2nd"}}'
    return write_config(f"""
influxdb: {{url: "{url}", api: v2, org: home, bucket: {bucket}, token: "{token}", retention: {retention}}}
sensors:{sensors}
""")


def v2_client(config: Path) -> InfluxV2:
    """The api v2 client for a config file's influxdb section."""
    influx = load_config(config, environ={}).influxdb
    assert influx is not None, f"{config.name} has an influxdb section"
    return InfluxV2(influx)


def test_run_writes_aligned_points_through_influxdb_client_to_a_real_v2_write_endpoint(write_config, victoria):
    config = v2_config(write_config, victoria.url, sensors='''
  - {name: "desk lamp", type: simulated, interval: 1s, tags: {room: "office, 2nd"}}
  - {name: "a=b c", type: simulated, interval: 2s}''')
    process = start_run(config)
    series = victoria.export('{__name__="temperature_celsius", sensor="a=b c"}', min_samples=2, timeout=30)
    code, stderr = stop_run(process)
    assert code == 0, stderr
    assert "retention not managed, writing anyway" in stderr  # VictoriaMetrics has no buckets API: warn, keep going
    [desk] = victoria.export('{__name__="temperature_celsius", sensor="desk lamp"}')
    assert desk["metric"]["room"] == "office, 2nd" and desk["metric"]["host"]
    assert len(desk["timestamps"]) >= 2 and all(t % 1000 == 0 for t in desk["timestamps"])
    assert all(15 < v < 27 for v in desk["values"])
    assert all(t % 2000 == 0 for t in series[0]["timestamps"])
    assert "stopped; 0 point(s) wait in the outbox" in stderr


def test_outbox_backlog_arrives_exactly_once_per_tick(write_config, victoria, tmp_path):
    client = v2_client(v2_config(write_config, victoria.url))
    outbox = Outbox(str(tmp_path / "o.sqlite"))
    base = time.time_ns() // S * S - 1000 * S
    values = [round(20 + i / 100, 2) for i in range(1000)]
    outbox.append([temperature("backlog", base + i * S, v) for i, v in enumerate(values)])
    assert Sender(outbox, client, 300, Stats()).drain() == 1000
    [series] = victoria.export('{__name__="temperature_celsius", sensor="backlog"}', min_samples=1000)
    assert series["timestamps"] == [(base + i * S) // MS for i in range(1000)]
    assert series["values"] == pytest.approx(values, abs=1e-9)  # VictoriaMetrics stores ~12 significant digits
    assert outbox.depth == 0


def test_retention_creates_the_bucket_then_updates_a_differing_rule(write_config, fake_influxdb2):
    client = v2_client(v2_config(write_config, fake_influxdb2.url, retention="30d"))
    assert client.problems() == ["bucket 'temperature' not found in org 'home': it does not exist (templog run creates "
                                 "it) or this token may not list buckets (a write-only token still writes)"]
    assert client.ensure_retention() == "created bucket temperature with retention 30d"
    assert fake_influxdb2.bucket("temperature")["retentionRules"][0]["everySeconds"] == 2592000
    assert client.problems() == []
    assert client.ensure_retention() == "bucket temperature: retention already 30d"
    longer = v2_client(v2_config(write_config, fake_influxdb2.url, retention="90d"))
    assert longer.problems() == ["bucket 'temperature': retention is 30d, config says 90d (templog run applies it)"]
    assert longer.ensure_retention() == "bucket temperature: retention changed from 30d to 90d"
    assert fake_influxdb2.bucket("temperature")["retentionRules"][0]["everySeconds"] == 90 * 86400
    forever = v2_client(v2_config(write_config, fake_influxdb2.url, retention="0"))
    assert forever.ensure_retention() == "bucket temperature: retention changed from 90d to forever"
    assert forever.problems() == []


def test_no_bucket_permission_is_reported_not_fatal(write_config):
    from fake_influxdb2 import FakeInfluxDB2

    with FakeInfluxDB2(token="test-token", bucket_permission=False) as server:
        server.add_bucket("temperature", 3600)
        client = v2_client(v2_config(write_config, server.url))
        with pytest.raises(RetentionUnsupported, match="cannot use the buckets API"):
            client.ensure_retention()
        client.write(["temperature,sensor=a celsius=1.0 1000000000"])  # writing still works
        assert len(server.points("temperature")) == 1


def test_a_bad_token_is_an_auth_error_that_never_shows_the_token(write_config, fake_influxdb2):
    config = v2_config(write_config, fake_influxdb2.url, token="wrong-s3cret")
    client = v2_client(config)
    with pytest.raises(Unauthorized) as info:
        client.write(["temperature,sensor=a celsius=1.0 1000000000"])
    assert "wrong-s3cret" not in str(info.value)
    done = templog("check", "-c", str(config))
    assert done.returncode == 1 and "401" in done.stdout
    assert "wrong-s3cret" not in done.stdout + done.stderr


def test_history_through_flux_returns_what_was_written(write_config, fake_influxdb2):
    config = v2_config(write_config, fake_influxdb2.url)
    client = v2_client(config)
    client.ensure_retention()
    base = 1_764_000_000 * S
    client.write(lines_at(base))
    assert_history_returns_what_was_written(config, base)
    last = fake_influxdb2.queries[-1]
    assert last["params"]["sensors"] == ["a"] and "aggregateWindow" in last["query"]


def test_run_creates_the_bucket_and_delivers(write_config, fake_influxdb2):
    config = v2_config(write_config, fake_influxdb2.url, retention="7d")
    process = start_run(config)
    wait_until(lambda: fake_influxdb2.bucket("temperature") and len(fake_influxdb2.points("temperature")) >= 2,
               what="points in the bucket")
    code, stderr = stop_run(process)
    assert code == 0, stderr
    assert fake_influxdb2.bucket("temperature")["retentionRules"][0]["everySeconds"] == 7 * 86400
    assert "retention: created bucket temperature with retention 7d" in stderr, stderr


def test_a_shorter_retention_is_a_warning_that_influxdb_will_delete_the_older_points(write_config, fake_influxdb2,
                                                                                     caplog):
    fake_influxdb2.add_bucket("temperature", 0)  # forever
    client = v2_client(v2_config(write_config, fake_influxdb2.url, retention="7d"))
    assert client.problems() == ["bucket 'temperature': retention is forever, config says 7d (templog run applies it; "
                                 "then InfluxDB will delete the points older than 7d, in bucket temperature)"]
    with caplog.at_level("INFO", logger="templog.influx"):
        assert client.ensure_retention() == "bucket temperature: retention changed from forever to 7d"
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "bucket temperature: retention changed from forever to 7d: InfluxDB will delete the points older "
                    "than 7d, in bucket temperature")]


def test_without_a_retention_key_the_bucket_is_neither_created_nor_changed(write_config, fake_influxdb2):
    config = write_config(f"""
influxdb: {{url: "{fake_influxdb2.url}", api: v2, org: home, bucket: temperature, token: test-token}}
sensors: [{{name: a, type: simulated}}]
""")
    client = v2_client(config)
    assert client.problems() == ["bucket 'temperature' not found in org 'home': it does not exist (create it, or set "
                                 "influxdb.retention and templog run creates it with that retention) or this token may "
                                 "not list buckets (a write-only token still writes)"]
    assert client.ensure_retention().startswith("not managed (influxdb.retention is not set)")
    assert fake_influxdb2.bucket("temperature") is None
    with pytest.raises(NotFound, match="bucket 'temperature' does not exist: create it, or set influxdb.retention"):
        client.write(["temperature,sensor=a celsius=1.0 1000000000"])
    fake_influxdb2.add_bucket("temperature", 3600)
    assert client.problems() == []  # whatever its retention
    assert client.ensure_retention().startswith("not managed")
    assert fake_influxdb2.bucket("temperature")["retentionRules"][0]["everySeconds"] == 3600
