"""mqtt sensors against a real Mosquitto broker started on a free loopback port."""

import json
import logging

import paho.mqtt.client as paho
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from cli import start_run, stop_run, templog, wait_until
from collector.config import ConfigError, load_config
from collector.outbox import Outbox
from collector.sensors import MissingReading, Shared, create_sensor
from collector.sensors.mqtt import MalformedPayload, extract
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
    (b'{"temperature": "21"}', "temperature", "not a number"), (b'{"temperature": true}', "temperature", "not a number"),
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
    def __init__(self, port, username=None, password=None):
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="test-publisher")
        if username:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish(self, topic, payload, retain=False):
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def mqtt_config(write_config, broker, sensors, extra=""):
    return write_config(f"mqtt: {{host: 127.0.0.1, port: {broker.port}{extra}}}\nsensors:{sensors}\n")


def test_each_device_shape_is_read_and_the_latest_value_per_tick_wins(write_config, broker):
    config = load_config(mqtt_config(write_config, broker, """
  - {name: z2m, type: mqtt, topic: zigbee2mqtt/living, field: temperature}
  - {name: tasmota, type: mqtt, topic: tele/shed/SENSOR, field: DS18B20.Temperature}
  - {name: shelly, type: mqtt, topic: shellies/plug/status/temperature:0, field: tC}
  - {name: bare, type: mqtt, topic: home/attic/temperature}"""), environ={})
    shared = Shared(config.mqtt, Stats())
    sensors = {s.name: create_sensor(s, shared) for s in config.sensors}
    shared.start()
    wait_until(lambda: shared.hub.connected_once, what="the subscription")
    publisher = Publisher(broker.port)
    try:
        publisher.publish("zigbee2mqtt/living", ZIGBEE2MQTT)
        publisher.publish("tele/shed/SENSOR", TASMOTA)
        publisher.publish("shellies/plug/status/temperature:0", SHELLY)
        publisher.publish("home/attic/temperature", b"18.0")
        publisher.publish("home/attic/temperature", b"18.5")  # two messages between ticks: the latest counts
        wait_until(lambda: all(s._received_any.is_set() for s in sensors.values()), what="every sensor's message")
        wait_until(lambda: sensors["bare"]._latest == 18.5, what="the latest attic message")
        assert {name: s.read_celsius() for name, s in sensors.items()} == {
            "z2m": 21.37, "tasmota": 19.6, "shelly": 22.8, "bare": 18.5}
        with pytest.raises(MissingReading, match="no message on zigbee2mqtt/living since the previous tick"):
            sensors["z2m"].read_celsius()
    finally:
        publisher.close()
        shared.stop()


def test_a_retained_message_is_read_at_once(write_config, broker):
    publisher = Publisher(broker.port)
    publisher.publish("tele/shed/SENSOR", TASMOTA, retain=True)
    publisher.close()
    config = mqtt_config(write_config, broker, "\n  - {name: shed, type: mqtt, topic: tele/shed/SENSOR, field: DS18B20.Temperature}")
    done = templog("read", "--json", "-c", str(config))
    assert json.loads(done.stdout) == [{"sensor": "shed", "celsius": 19.6, "error": None}]


def test_malformed_payloads_are_logged_counted_and_never_stop_the_sensor(write_config, broker, caplog):
    config = load_config(mqtt_config(write_config, broker, "\n  - {name: z2m, type: mqtt, topic: z/t, field: temperature}"),
                         environ={})
    stats = Stats()
    shared = Shared(config.mqtt, stats)
    sensor = create_sensor(config.sensors[0], shared)
    shared.start()
    wait_until(lambda: shared.hub.connected_once, what="the subscription")
    publisher = Publisher(broker.port)
    try:
        with caplog.at_level(logging.WARNING):
            for payload in (b"{broken", b'{"humidity": 40}', b'{"temperature": 20.25}'):
                publisher.publish("z/t", payload)
            wait_until(lambda: sensor._received_any.is_set(), what="the good message")
        assert sensor.read_celsius() == 20.25
        assert stats.get("mqtt_payloads_malformed", sensor="z2m") == 2
        assert "z2m: malformed payload on z/t ignored: payload is not JSON" in caplog.text
    finally:
        publisher.close()
        shared.stop()


def test_readings_resume_after_the_broker_restarts(write_config, broker, tmp_path):
    config = mqtt_config(write_config, broker, "\n  - {name: attic, type: mqtt, topic: home/attic, interval: 200ms}")
    outbox_path = tmp_path / "data/outbox.sqlite"
    running = start_run(config)
    publisher = Publisher(broker.port)
    try:
        def published_and_stored(value):
            publisher.client.publish("home/attic", str(value), qos=1)
            return outbox_path.exists() and any(f"celsius={value} " in p.line for p in Outbox(str(outbox_path)).oldest(10**5))

        wait_until(lambda: published_and_stored(20.5), what="a reading before the restart")
        broker.restart()
        wait_until(lambda: published_and_stored(21.5), timeout=60, what="a reading after the broker restarted")
    finally:
        publisher.close()
    code, log = stop_run(running)
    assert code == 0, log
    assert "lost the MQTT broker" in log and log.count("connected to MQTT broker") >= 2


def test_password_protected_broker(write_config, tmp_path):
    server = Mosquitto.start(tmp_path / "secured", password="pa55word")
    try:
        (tmp_path / "mqtt-password").write_text("pa55word\n")
        good = load_config(mqtt_config(write_config, server, "\n  - {name: a, type: mqtt, topic: t/a}",
                                       ", username: templog, password_file: mqtt-password"), environ={})
        shared = Shared(good.mqtt, Stats())
        sensor = create_sensor(good.sensors[0], shared)
        shared.start()
        wait_until(lambda: shared.hub.connected_once, what="an authenticated connection")
        publisher = Publisher(server.port, "templog", "pa55word")
        publisher.publish("t/a", b"23.5")
        wait_until(lambda: sensor._received_any.is_set(), what="the message")
        assert sensor.read_celsius() == 23.5
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


def test_discover_proposes_entries_for_topics_that_carry_a_temperature(write_config, broker, tmp_path):
    publisher = Publisher(broker.port)
    for topic, payload in [("zigbee2mqtt/living", ZIGBEE2MQTT), ("tele/shed/SENSOR", TASMOTA),
                           ("shellies/plug/status/temperature:0", SHELLY), ("home/attic/temperature", b"18.5"),
                           ("home/attic/humidity", b"55"), ("zigbee2mqtt/door", b'{"contact": true}')]:
        publisher.publish(topic, payload, retain=True)
    publisher.close()
    config = mqtt_config(write_config, broker, "\n  - {name: x, type: simulated}")
    done = templog("discover", "--mqtt", "1", "-c", str(config), "--sysfs", str(tmp_path / "no-sys"))
    assert done.returncode == 0, done.stderr
    proposed = yaml.safe_load(done.stdout)["sensors"]
    assert proposed == [
        {"name": "home_attic_temperature", "type": "mqtt", "topic": "home/attic/temperature"},
        {"name": "shellies_plug_status_temperature_0", "type": "mqtt", "topic": "shellies/plug/status/temperature:0", "field": "tC"},
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
        trusted = mqtt_config(write_config, server, "\n  - {name: a, type: mqtt, topic: t/tls}", f", tls: true, ca_file: {ca}")
        assert json.loads(templog("read", "--json", "-c", str(trusted)).stdout)[0]["celsius"] == 24.5
        untrusted = mqtt_config(write_config, server, "\n  - {name: a, type: mqtt, topic: t/tls, timeout: 1s}", ", tls: true")
        done = templog("read", "--json", "-c", str(untrusted))
        assert json.loads(done.stdout)[0]["celsius"] is None
        assert "cannot connect to MQTT broker" in done.stderr and "CERTIFICATE_VERIFY_FAILED" in done.stderr
    finally:
        server.stop()
