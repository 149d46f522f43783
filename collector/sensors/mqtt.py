"""Temperatures published over MQTT: Zigbee2MQTT (`temperature`), Tasmota (`DS18B20.Temperature`), Shelly
(`tC`), or a bare number. At each tick the latest value received since the previous tick is the reading."""

from __future__ import annotations

import json
import logging
import math
import threading
from dataclasses import dataclass
from typing import Callable

from collector.sensors.base import MissingReading, SensorError, SensorType, SettingError, Shared
from collector.stats import Stats

log = logging.getLogger("templog.mqtt")


@dataclass(frozen=True)
class Settings:
    topic: str
    field: str | None = None  # dotted path into a JSON payload; absent: the payload is the number

    def __post_init__(self):
        if not self.topic or "#" in self.topic or "+" in self.topic:
            raise SettingError("topic", f"expected one topic without wildcards, got {self.topic!r}")


class MalformedPayload(SensorError):
    """A message that holds no temperature where the config says it is."""


def extract(payload: bytes, field: str | None) -> float:
    """The temperature in `payload`, found at the dotted `field` path of its JSON, or the payload itself."""
    text = payload.decode("utf-8", errors="replace").strip()
    if field is None:
        try:
            value = float(text)
        except ValueError:
            raise MalformedPayload(f"payload is not a number: {text[:60]!r}") from None
    else:
        try:
            node = json.loads(text)
        except ValueError:
            raise MalformedPayload(f"payload is not JSON: {text[:60]!r}") from None
        for part in field.split("."):
            if not isinstance(node, dict) or part not in node:
                raise MalformedPayload(f"payload has no {field!r}: {text[:80]!r}")
            node = node[part]
        if isinstance(node, bool) or not isinstance(node, (int, float)):
            raise MalformedPayload(f"{field!r} is not a number: {node!r}")
        value = float(node)
    if not math.isfinite(value):
        raise MalformedPayload(f"payload is not a finite number: {text[:60]!r}")
    return value


class MqttSensor:
    def __init__(self, name: str, settings: Settings, first_wait_s: float, stats: Stats,
                 connected: Callable[[], bool]):
        self.name, self.settings, self.first_wait_s, self.stats = name, settings, first_wait_s, stats
        self.connected = connected
        self._lock = threading.Lock()
        self._latest: float | None = None
        self._received_any = threading.Event()

    def on_payload(self, topic: str, payload: bytes) -> None:
        """From the MQTT network thread: keep the latest value; a malformed payload is logged, counted, dropped."""
        try:
            value = extract(payload, self.settings.field)
        except (MalformedPayload, ValueError, OverflowError) as exc:  # an exception here would end paho's thread
            self.stats.add("mqtt_payloads_malformed", sensor=self.name)
            log.warning("%s: malformed payload on %s ignored: %s", self.name, self.settings.topic, exc)
            return
        with self._lock:
            self._latest = value
        self._received_any.set()

    def read_celsius(self) -> float:
        if not self._received_any.is_set():  # just started: give a retained or first message a moment
            self._received_any.wait(self.first_wait_s)
        with self._lock:
            value, self._latest = self._latest, None
        if value is None:
            if not self.connected():
                raise SensorError("not connected to the MQTT broker (the log says why)")
            raise MissingReading(f"no message on {self.settings.topic} since the previous tick")
        return value


def _create(config, shared: Shared) -> MqttSensor:
    hub = shared.mqtt()
    sensor = MqttSensor(config.name, config.settings, config.timeout * 0.8, shared.stats, hub.client.is_connected)
    hub.subscribe(config.settings.topic, sensor.on_payload)
    return sensor


SENSOR_TYPE = SensorType(Settings, _create, (-60.0, 150.0))
