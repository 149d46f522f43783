"""mqtt sensors against a real Mosquitto broker started on a free loopback port."""

import json
import logging
from typing import cast

import paho.mqtt.client as paho
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from cli import start_run, stop_run, templog, wait_until
from collector.config import Config, ConfigError, load_config
from collector.health import HEARTBEAT_S, Verdict, judge
from collector.mqtt import MqttHub
from collector.outbox import Outbox
from collector.sensors import MissingReading, Sample, Shared, create_sensor
from collector.sensors.mqtt import MalformedPayload, MqttSensor, extract
from collector.stats import Stats
from servers import Mosquitto

ZIGBEE2MQTT = b'{"battery":100,"humidity":48.2,"linkquality":120,"temperature":21.37,"voltage":3000}'
TASMOTA = b'{"Time":"2026-11-27T10:00:00","DS18B20":{"Id":"0316A2795AFF","Temperature":19.6},"TempUnit":"C"}'
SHELLY = b'{"id":0,"tC":22.8,"tF":73.04}'


@pytest.mark.parametrize("payload, field, celsius", [
    (ZIGBEE2MQTT, "temperature", 21.37), (TASMOTA, "DS18B20.Temperature", 19.6), (SHELLY, "tC", 22.8),
    (b"20.5", None, 20.5), (b" -3 \n", None, -3.0),
])
def test_payload_shapes(payload, field, celsius):
    assert extract(payload, field) == celsius


@pytest.mark.parametrize("payload, field, words", [
    (b"warm", None, "not a number"), (b"{oops", "temperature", "not JSON"), (TASMOTA, "DS18B20.Temp", "has no"),
    (b'{"temperature": "21"}', "temperature", "not a number"),
    (b'{"temperature": true}', "temperature", "not a number"),
    (b"nan", None, "not a number"), (b'{"temperature": null}', "temperature", "not a number"),
])
def test_malformed_payloads(payload, field, words):
    with pytest.raises(MalformedPayload, match=words):
        extract(payload, field)


@pytest.fixture
def broker(tmp_path):
    server = Mosquitto.start(tmp_path / "mosquitto")
    yield server
    server.stop()


class Publisher:
    def __init__(self, port, username=None, password=None, ca_file=None):
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="test-publisher")
        if username:
            self.client.username_pw_set(username, password)
        if ca_file:
            self.client.tls_set(ca_certs=str(ca_file))
        self.client.reconnect_delay_set(1, 1)  # whole seconds (paho-mqtt@2.2.0 client.py reconnect_delay_set)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish(self, topic, payload, retain=False):
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def mqtt_config(write_config, broker, sensors, extra="", sections=""):
    return write_config(f"{sections}mqtt: {{host: 127.0.0.1, port: {broker.port}{extra}}}\nsensors:{sensors}\n")


def test_each_device_shape_is_read_and_the_latest_value_per_tick_wins(write_config, broker):
    config = load_config(mqtt_config(write_config, broker, """
  - {name: z2m, type: mqtt, topic: zigbee2mqtt/living, field: temperature}
  - {name: tasmota, type: mqtt, topic: tele/shed/SENSOR, field: DS18B20.Temperature}
  - {name: shelly, type: mqtt, topic: shellies/plug/status/temperature:0, field: tC}
  - {name: bare, type: mqtt, topic: home/attic/temperature}"""), environ={})
    shared, hub, sensors = wired(config, Stats())
    shared.start()
    wait_until(lambda: hub.connected, what="the subscription")
    publisher = Publisher(broker.port)
    try:
        publisher.publish("zigbee2mqtt/living", ZIGBEE2MQTT)
        publisher.publish("tele/shed/SENSOR", TASMOTA)
        publisher.publish("shellies/plug/status/temperature:0", SHELLY)
        publisher.publish("home/attic/temperature", b"18.0")
        publisher.publish("home/attic/temperature", b"18.5")  # two messages between ticks: the latest counts
        wait_until(lambda: all(s._received_any.is_set() for s in sensors.values()), what="every sensor's message")
        wait_until(lambda: sensors["bare"]._latest == Sample(18.5), what="the latest attic message")
        assert {name: s.read().celsius for name, s in sensors.items()} == {
            "z2m": 21.37, "tasmota": 19.6, "shelly": 22.8, "bare": 18.5}
        with pytest.raises(MissingReading, match="no message on zigbee2mqtt/living since the previous tick"):
            sensors["z2m"].read()
    finally:
        publisher.close()
        shared.stop()


def test_a_retained_message_is_read_at_once(write_config, broker):
    publisher = Publisher(broker.port)
    publisher.publish("tele/shed/SENSOR", TASMOTA, retain=True)
    publisher.close()
    config = mqtt_config(write_config, broker,
                         "\n  - {name: shed, type: mqtt, topic: tele/shed/SENSOR, field: DS18B20.Temperature}")
    done = templog("read", "--json", "-c", str(config))
    assert json.loads(done.stdout) == [{"sensor": "shed", "celsius": 19.6, "error": None}]


def wired(config: Config, stats: Stats, **hub_options) -> tuple[Shared, MqttHub, dict[str, MqttSensor]]:
    """A real hub (paho's network thread) on the config's broker, and the config's mqtt sensors by name."""
    assert config.mqtt is not None, "the config has an mqtt section"
    hub = MqttHub(config.mqtt, stats, **hub_options)
    shared = Shared(stats, hub)
    return shared, hub, {s.name: cast(MqttSensor, create_sensor(s, shared)) for s in config.sensors}


def hub_and_sensor(write_config, broker, stats, **hub_options) -> tuple[Shared, MqttHub, MqttSensor]:
    """A real hub on the broker with one mqtt sensor z2m on topic z/t."""
    config = load_config(mqtt_config(write_config, broker,
                                     "\n  - {name: z2m, type: mqtt, topic: z/t, field: temperature}"),
                         environ={})
    shared, hub, sensors = wired(config, stats, **hub_options)
    return shared, hub, sensors["z2m"]


def test_hostile_payloads_are_counted_logged_once_and_the_connection_lives_on(write_config, broker, caplog):
    """On main, the 100,000 `[` raised RecursionError in paho's network thread (paho-mqtt@2.2.0:
    paho/mqtt/client.py `_handle_on_message` raises a callback's exception again unless `suppress_exceptions`),
    which ended the thread: no MQTT message was read again."""
    stats = Stats()
    shared, hub, sensor = hub_and_sensor(write_config, broker, stats)
    shared.start()
    wait_until(lambda: hub.connected, what="the subscription")
    publisher = Publisher(broker.port)
    try:
        with caplog.at_level(logging.INFO, logger="templog.mqtt"):
            for payload in (b"{broken", b"[" * 100_000, b"[" * 60_000, b"x" * 10_000_000, b"\xff\xfe21.5",
                            b'{"temperature": NaN}', b'{"temperature": ' + b"9" * 5000 + b"}",
                            b'{"temperature": 20.25}'):
                publisher.publish("z/t", payload)
            wait_until(lambda: sensor._received_any.is_set(), what="the good message")
        assert sensor.read().celsius == 20.25
        assert stats.get("mqtt_payloads_malformed", sensor="z2m") == 7
        malformed = [r.getMessage() for r in caplog.records if "malformed payload" in r.getMessage()]
        assert malformed == ["z2m: malformed payload on z/t ignored: payload is not JSON: '{broken'"]
        assert "z2m: a readable payload on z/t again (after 7 occurrence(s))" in caplog.text
        assert hub.connected and stats.get("mqtt_callback_errors") == 0
    finally:
        publisher.close()
        shared.stop()


def test_a_callback_that_raises_is_counted_and_logged_once_and_the_connection_lives_on(write_config, broker, caplog):
    stats = Stats()
    shared, hub, sensor = hub_and_sensor(write_config, broker, stats)

    def buggy_subscriber(topic: str, payload: bytes) -> None:
        raise ZeroDivisionError("division by zero")

    hub.subscribe("z/#", buggy_subscriber)  # beside the sensor
    shared.start()
    wait_until(lambda: hub.connected, what="the subscription")
    publisher = Publisher(broker.port)
    try:
        with caplog.at_level(logging.ERROR, logger="templog.mqtt"):
            for celsius in (19.0, 19.5, 20.0):
                publisher.publish("z/t", json.dumps({"temperature": celsius}))
            wait_until(lambda: stats.get("mqtt_callback_errors") == 3, what="three counted callback errors")
        assert sensor.read().celsius == 20.0  # the sensor, subscribed to the same messages, still gets them
        assert [r.getMessage() for r in caplog.records] == [
            "MQTT message callback for z/# failed, the connection goes on: ZeroDivisionError: division by zero"]
    finally:
        publisher.close()
        shared.stop()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the thread it ends on purpose
def test_a_network_thread_that_ends_for_any_reason_is_started_again(write_config, broker, caplog):
    """SystemExit passes every `except Exception`, paho's included, and ends its network thread."""
    stats = Stats()
    shared, hub, sensor = hub_and_sensor(write_config, broker, stats, watch_every_s=0.1)

    def end_the_thread(topic, payload):
        raise SystemExit

    hub.subscribe("kill", end_the_thread)
    shared.start()
    wait_until(lambda: hub.connected, what="the subscription")
    publisher = Publisher(broker.port)
    try:
        with caplog.at_level(logging.ERROR, logger="templog.mqtt"):
            publisher.publish("kill", b"")
            wait_until(lambda: stats.get("mqtt_network_restarts") == 1, what="the network thread started again")

            def published_and_received():
                publisher.publish("z/t", b'{"temperature": 22.5}')
                return sensor._received_any.is_set()

            wait_until(published_and_received, what="a message read by the new network thread")
        assert sensor.read().celsius == 22.5
        assert f"the MQTT network thread for 127.0.0.1:{broker.port} had ended; started it again" in caplog.text
    finally:
        publisher.close()
        shared.stop()


def test_health_reports_a_lost_broker_after_its_grace_and_readings_resume_when_it_is_back(write_config, broker,
                                                                                         tmp_path):
    """The grace is the keepalive (5 s here); the heartbeat records the connection every HEARTBEAT_S."""
    config = mqtt_config(write_config, broker, "\n  - {name: attic, type: mqtt, topic: home/attic, interval: 200ms}",
                         ", keepalive: 5s")
    outbox_path = tmp_path / "data/outbox.sqlite"
    running = start_run(config)
    publisher = Publisher(broker.port)

    def health():
        return templog("health", "-c", str(config))

    def published_and_stored(value):
        publisher.client.publish("home/attic", str(value), qos=1)
        return outbox_path.exists() and any(f"celsius={value} " in p.line
                                            for p in Outbox(str(outbox_path)).oldest(10**5))

    def mqtt_down_recorded():
        return int(Outbox(str(outbox_path)).state().get("mqtt_down_since_ns") or 0)

    try:
        wait_until(lambda: published_and_stored(20.5), what="a reading before the broker stops")
        broker.stop()
        wait_until(mqtt_down_recorded, timeout=HEARTBEAT_S + 5, what="the heartbeat recording the lost broker")
        down = wait_until(lambda: done if (done := health()).returncode == 1 else None, timeout=5 + HEARTBEAT_S,
                          what="templog health to report the lost broker")
        assert down.stdout.startswith(f"unhealthy: not connected to the MQTT broker 127.0.0.1:{broker.port} since ")
        # the reason is the latest the heartbeat recorded: the lost connection first, then (from the next
        # heartbeat after a reconnect attempt) the refusal
        wait_until(lambda: "Connection refused" in health().stdout, timeout=2 * HEARTBEAT_S + 5,
                   what="templog health to name the refused reconnection")
        broker.restart()
        wait_until(lambda: published_and_stored(21.5), timeout=30, what="a reading after the broker is back")
        wait_until(lambda: health().returncode == 0, timeout=HEARTBEAT_S + 5, what="templog health healthy again")
    finally:
        publisher.close()
    code, log = stop_run(running)
    assert code == 0, log
    assert "lost the MQTT broker" in log and log.count("connected to MQTT broker") >= 2
    assert log.count("cannot connect to MQTT broker") == 1, log  # one line for the outage, not one per attempt
    assert f"MQTT broker 127.0.0.1:{broker.port} accepts the connection again (after " in log


def test_health_tolerates_a_short_mqtt_outage_and_names_a_long_one():
    now, s = 1_800_000_000 * 10**9, 10**9
    state = {"started_ns": str(now - 3600 * s), "heartbeat_ns": str(now - 2 * s), "mqtt_broker": "nas:1883",
             "mqtt_down_grace_s": "60.0", "mqtt_down_reason": "cannot connect: [Errno 111] Connection refused"}
    assert judge({**state, "mqtt_down_since_ns": "0"}, 0, True, now).healthy
    assert judge({**state, "mqtt_down_since_ns": str(now - 59 * s)}, 0, True, now).healthy  # a broker restart
    verdict = judge({**state, "mqtt_down_since_ns": str(now - 61 * s)}, 0, True, now)
    assert verdict == Verdict(False, "not connected to the MQTT broker nas:1883 since 2027-01-15T07:58:59Z (61s): "
                                     "cannot connect: [Errno 111] Connection refused")
    # a previous run's record: this run's outage counts from its start at the earliest
    restarted = {**state, "started_ns": str(now - 5 * s), "mqtt_down_since_ns": str(now - 3600 * s)}
    assert judge(restarted, 0, True, now).healthy


def test_password_protected_broker(write_config, tmp_path):
    server = Mosquitto.start(tmp_path / "secured", password="pa55word")
    try:
        (tmp_path / "mqtt-password").write_text("pa55word\n")
        good = load_config(mqtt_config(write_config, server, "\n  - {name: a, type: mqtt, topic: t/a}",
                                       ", username: templog, password_file: mqtt-password"), environ={})
        shared, hub, sensors = wired(good, Stats())
        sensor = sensors["a"]
        shared.start()
        wait_until(lambda: hub.connected, what="an authenticated connection")
        publisher = Publisher(server.port, "templog", "pa55word")
        publisher.publish("t/a", b"23.5")
        wait_until(lambda: sensor._received_any.is_set(), what="the message")
        assert sensor.read().celsius == 23.5
        publisher.close()
        shared.stop()
        bad = mqtt_config(write_config, server, "\n  - {name: a, type: mqtt, topic: t/a, timeout: 1s}",
                          ", username: templog, password: wrong")
        done = templog("read", "--json", "-c", str(bad))
        assert json.loads(done.stdout)[0]["error"] == "not connected to the MQTT broker (the log says why)"
        assert "refused the connection: Not authorized" in done.stderr and "wrong" not in done.stderr
    finally:
        server.stop()


def test_mqtt_sensors_need_the_mqtt_section(write_config):
    with pytest.raises(ConfigError, match=r"sensors\[0\].type: mqtt sensors need a top-level mqtt: section"):
        load_config(write_config("sensors:\n  - {name: a, type: mqtt, topic: t}\n"), environ={})


def test_discover_proposes_entries_for_topics_that_carry_a_temperature(write_config, broker):
    publisher = Publisher(broker.port)
    for topic, payload in [("zigbee2mqtt/living", ZIGBEE2MQTT), ("tele/shed/SENSOR", TASMOTA),
                           ("shellies/plug/status/temperature:0", SHELLY), ("home/attic/temperature", b"18.5"),
                           ("home/attic/humidity", b"55"), ("zigbee2mqtt/door", b'{"contact": true}')]:
        publisher.publish(topic, payload, retain=True)
    publisher.close()
    config = mqtt_config(write_config, broker, "\n  - {name: x, type: simulated}",
                         sections="collector: {sysfs: no-sys}\n")  # a sysfs with nothing in it
    done = templog("discover", "--mqtt", "1", "-c", str(config))
    assert done.returncode == 0, done.stderr
    assert "no-sys is not a folder: nothing to scan" in done.stderr and "listening on MQTT only" in done.stderr
    proposed = yaml.safe_load(done.stdout)["sensors"]
    assert proposed == [
        {"name": "home_attic_temperature", "type": "mqtt", "topic": "home/attic/temperature"},
        {"name": "shellies_plug_status_temperature_0", "type": "mqtt", "topic": "shellies/plug/status/temperature:0",
         "field": "tC"},
        {"name": "tele_shed_sensor", "type": "mqtt", "topic": "tele/shed/SENSOR", "field": "DS18B20.Temperature"},
        {"name": "zigbee2mqtt_living", "type": "mqtt", "topic": "zigbee2mqtt/living", "field": "temperature"},
    ]
    pasted = write_config(f"mqtt: {{host: 127.0.0.1, port: {broker.port}}}\n" + yaml.safe_dump({"sensors": proposed}))
    records = json.loads(templog("read", "--json", "-c", str(pasted)).stdout)
    assert [r["celsius"] for r in records] == [18.5, 22.8, 19.6, 21.37]


def test_tls_with_a_ca_file(write_config, tmp_path):
    server = Mosquitto.start(tmp_path / "tls", tls=True)
    try:
        ca = tmp_path / "tls/ca.crt"
        publisher = paho.Client(CallbackAPIVersion.VERSION2)
        publisher.tls_set(ca_certs=str(ca))
        publisher.connect("127.0.0.1", server.port)
        publisher.loop_start()
        publisher.publish("t/tls", b"24.5", qos=1, retain=True).wait_for_publish(5)
        publisher.disconnect()
        publisher.loop_stop()
        trusted = mqtt_config(write_config, server, "\n  - {name: a, type: mqtt, topic: t/tls}",
                              f", tls: true, ca_file: {ca}")
        assert json.loads(templog("read", "--json", "-c", str(trusted)).stdout)[0]["celsius"] == 24.5
        untrusted = mqtt_config(write_config, server, "\n  - {name: a, type: mqtt, topic: t/tls, timeout: 1s}",
                                ", tls: true")
        done = templog("read", "--json", "-c", str(untrusted))
        assert json.loads(done.stdout)[0]["celsius"] is None
        assert "cannot connect to MQTT broker" in done.stderr and "CERTIFICATE_VERIFY_FAILED" in done.stderr
    finally:
        server.stop()


def test_a_sensor_waiting_for_its_first_message_delays_no_other_and_reads_once_messages_come(write_config, broker,
                                                                                             tmp_path):
    """An mqtt sensor that has had no message waits 0.8 of its timeout at each read (collector/sensors/mqtt.py):
    on the shared lane it would hold the others back a whole tick. It is moved to a thread of its own at its first
    read, so the other reads every tick; once messages come its reads are fast, and it goes back to the lane
    (collector/lanes.py) and goes on reading."""
    config = mqtt_config(write_config, broker, """
  - {name: quiet, type: mqtt, topic: home/quiet, interval: 200ms, timeout: 1s}
  - {name: fast, type: simulated, interval: 500ms}""")
    outbox_path = tmp_path / "data/outbox.sqlite"
    running = start_run(config)
    publisher = Publisher(broker.port)

    def stamps(sensor):
        if not outbox_path.exists():
            return []
        return sorted(int(p.line.rsplit(" ", 1)[1]) for p in Outbox(str(outbox_path)).oldest(10**5)
                      if p.line.startswith("temperature,") and f",sensor={sensor}" in p.line)

    def published_and_read(count):
        publisher.client.publish("home/quiet", "19.5", qos=1)
        return len(stamps("quiet")) >= count

    try:
        wait_until(lambda: len(stamps("fast")) >= 6, what="six ticks of the fast sensor while the other waits")
        assert stamps("quiet") == []
        wait_until(lambda: published_and_read(25), what="25 readings of the sensor once its messages come")
    finally:
        publisher.close()
    code, log = stop_run(running)
    assert code == 0, log
    fast = stamps("fast")
    assert fast == list(range(fast[0], fast[-1] + 500_000_000, 500_000_000)), log  # no tick of the other missed
    assert not [line for line in log.splitlines() if "fast" in line and "skipped" in line], log


TASMOTA_AM2301 = b'{"Time":"2026-11-27T10:00:00","AM2301":{"Temperature":19.6,"Humidity":61.3},"TempUnit":"C"}'


def test_humidity_comes_with_the_temperature_from_zigbee2mqtt_and_tasmota_payloads_on_a_real_broker(write_config,
                                                                                                     broker):
    """Retained messages as the devices publish them, read by `templog read --json`: humidity and dew point beside
    the temperature. A payload with the temperature but no humidity keeps its temperature (humidity null)."""
    publisher = Publisher(broker.port)
    publisher.publish("zigbee2mqtt/bathroom", ZIGBEE2MQTT, retain=True)
    publisher.publish("tele/greenhouse/SENSOR", TASMOTA_AM2301, retain=True)
    publisher.publish("zigbee2mqtt/cellar", b'{"battery":97,"temperature":11.5}', retain=True)
    publisher.close()
    config = mqtt_config(write_config, broker, """
  - {name: bathroom, type: mqtt, topic: zigbee2mqtt/bathroom, field: temperature, humidity_field: humidity}
  - {name: greenhouse, type: mqtt, topic: tele/greenhouse/SENSOR, field: AM2301.Temperature,
     humidity_field: AM2301.Humidity}
  - {name: cellar, type: mqtt, topic: zigbee2mqtt/cellar, field: temperature, humidity_field: humidity}""")
    done = templog("read", "--json", "-c", str(config))
    assert done.returncode == 0, done.stderr
    records = {r["sensor"]: r for r in json.loads(done.stdout)}
    assert {name: (r["celsius"], r["humidity"], r["error"]) for name, r in records.items()} == {
        "bathroom": (21.37, 48.2, None), "greenhouse": (19.6, 61.3, None), "cellar": (11.5, None, None)}
    assert records["bathroom"]["dewpoint"] == pytest.approx(9.97, abs=0.01)  # Magnus over water, 21.37 °C, 48.2 %RH
    assert records["greenhouse"]["dewpoint"] == pytest.approx(11.94, abs=0.01)  # at 19.6 °C, 61.3 %RH
    assert records["cellar"]["dewpoint"] is None


def test_payloads_without_their_humidity_are_counted_and_logged_once_and_keep_their_temperature(write_config,
                                                                                                 broker, caplog):
    stats = Stats()
    config = load_config(mqtt_config(write_config, broker, """
  - {name: z2m, type: mqtt, topic: z/t, field: temperature, humidity_field: humidity}"""), environ={})
    shared, hub, sensors = wired(config, stats)
    sensor = sensors["z2m"]
    shared.start()
    wait_until(lambda: hub.connected, what="the subscription")
    publisher = Publisher(broker.port)
    try:
        with caplog.at_level(logging.INFO, logger="templog.mqtt"):
            for payload in (b'{"temperature": 20.5}', b'{"temperature": 20.6, "humidity": "wet"}',
                            b'{"temperature": 20.7, "humidity": 55}'):
                publisher.publish("z/t", payload)
            wait_until(lambda: sensor._latest == Sample(20.7, 55.0), what="the payload with humidity")
        assert sensor.read() == Sample(20.7, 55.0)
        assert stats.get("mqtt_humidity_missing", sensor="z2m") == 2
        assert stats.get("mqtt_payloads_malformed", sensor="z2m") == 0
        missing = [r.getMessage() for r in caplog.records if "has no humidity" in r.getMessage()]
        assert missing == ["z2m: payload on z/t has no humidity, its temperature kept: payload has no 'humidity': "
                           "'{\"temperature\": 20.5}'"]
        assert "z2m: payloads on z/t carry the humidity again (after 2 occurrence(s))" in caplog.text
    finally:
        publisher.close()
        shared.stop()


def test_run_writes_the_count_of_payloads_without_their_humidity_in_its_health_points(write_config, broker, tmp_path):
    """mqtt_humidity_missing, which README promises is counted, reaches the sensor's health point in the outbox (it
    was counted in memory and never written)."""
    config = mqtt_config(write_config, broker, """
  - {name: z2m, type: mqtt, topic: z/t, field: temperature, humidity_field: humidity}""",
                         sections="collector: {interval: 200ms, health_interval: 1s}\n")
    running = start_run(config)
    publisher = Publisher(broker.port)
    outbox = tmp_path / "data/outbox.sqlite"

    def missing_counted() -> bool:
        lines = [p.line for p in Outbox(str(outbox)).oldest(10**5)] if outbox.exists() else []
        return any(line.startswith("templog,host=") and ",sensor=z2m " in line and "mqtt_humidity_missing=2i" in line
                   for line in lines)

    try:
        wait_until(lambda: "subscribing" in running.log, what="the run subscribed")
        for payload in (b'{"temperature": 20.5}', b'{"temperature": 20.6, "humidity": "wet"}'):
            publisher.publish("z/t", payload)
        wait_until(missing_counted, what="mqtt_humidity_missing=2i in z2m's health point")
    finally:
        publisher.close()
        code, log = stop_run(running)
    assert code == 0, log


def test_humidity_field_needs_a_json_field(write_config):
    config = write_config("mqtt: {host: 127.0.0.1}\nsensors:\n"
                          "  - {name: bare, type: mqtt, topic: home/t, humidity_field: humidity}\n")
    with pytest.raises(ConfigError, match=r"sensors\[0\]\.humidity_field: needs field"):
        load_config(config, environ={})
