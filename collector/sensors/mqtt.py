"""Temperatures published over MQTT: Zigbee2MQTT (`temperature`), Tasmota (`DS18B20.Temperature`), Shelly
(`tC`), or a bare number; with `humidity_field`, the relative humidity in the same JSON payload (Zigbee2MQTT
`humidity`, Tasmota `AM2301.Humidity`). At each tick the latest value received since the previous tick is the reading.

A payload whose temperature is fine but whose humidity is missing or not a number keeps its temperature, without
humidity: devices report the two separately at times (a Zigbee sensor's attribute reports), and the temperature is
a good reading on its own. It is counted (mqtt_humidity_missing) and logged once per run of such payloads, so a
mistyped `humidity_field` is seen.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from dataclasses import dataclass
from typing import Callable

from collector.logs import Repeating
from collector.sensors.base import MissingReading, Sample, SensorError, SensorType, SettingError, Shared
from collector.stats import Stats

log = logging.getLogger("templog.mqtt")

MAX_PAYLOAD_BYTES = 64 * 1024  # device payloads are a few hundred bytes
MAX_JSON_DEPTH = 32  # device payloads nest 2 or 3 levels; json.loads recurses once per level

# A bare payload is a plain decimal number: float() alone would also take "nan", "1_000" and non-ASCII digits.
_NUMBER = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
# A JSON string (its brackets are text; possessive, so an unterminated one costs one pass) or a bracket.
_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]++|\\.?)*+(?:"|\Z)|[\[\]{}]')


@dataclass(frozen=True)
class Settings:
    topic: str
    field: str | None = None  # dotted path into a JSON payload; absent: the payload is the number
    humidity_field: str | None = None  # dotted path into the same JSON payload, %RH

    def __post_init__(self):
        if not self.topic or "#" in self.topic or "+" in self.topic:
            raise SettingError("topic", f"expected one topic without wildcards, got {self.topic!r}")
        if self.humidity_field is not None and self.field is None:
            raise SettingError("humidity_field", "needs field: the humidity comes from a JSON payload, beside the "
                               "temperature at `field`")

    @property
    def measures_humidity(self) -> bool:
        return self.humidity_field is not None


class MalformedPayload(SensorError):
    """A message that holds no temperature where the config says it is."""


def extract(payload: bytes, field: str | None) -> float:
    """The temperature in `payload`, found at the dotted `field` path of its JSON, or the payload itself.

    Always a finite float or MalformedPayload: the payload is bounded in size before it is decoded, and in
    nesting before json.loads recurses into it; integers are parsed as floats, so no digit count hits Python's
    int-string conversion limit, and an infinite or NaN value is refused.
    """
    text = payload_text(payload)
    if field is None:
        if not _NUMBER.fullmatch(text):
            raise MalformedPayload(f"payload is not a number: {_excerpt(text)}")
        value = float(text)
        if not math.isfinite(value):
            raise MalformedPayload(f"payload is not a finite number: {_excerpt(text)}")
        return value
    return number_at(load_json(text), field, text)


def extract_sample(payload: bytes, field: str | None, humidity_field: str | None) -> tuple[Sample, str | None]:
    """The temperature (as `extract`) and, with `humidity_field`, the humidity from the same JSON document; the
    second item says why the humidity is missing (None: it is there, or not asked for). MalformedPayload only for
    the temperature."""
    if humidity_field is None or field is None:
        return Sample(extract(payload, field)), None
    text = payload_text(payload)
    document = load_json(text)
    celsius = number_at(document, field, text)
    try:
        return Sample(celsius, number_at(document, humidity_field, text)), None
    except MalformedPayload as exc:
        return Sample(celsius), str(exc)


def number_at(document: object, field: str, text: str) -> float:
    """The finite number at the dotted `field` path of a payload's JSON `document` (`text`, for messages)."""
    node = document
    for part in field.split("."):
        if not isinstance(node, dict) or part not in node:
            raise MalformedPayload(f"payload has no {_excerpt(field)}: {_excerpt(text, 80)}")
        node = node[part]
    if not isinstance(node, float):  # every JSON number is one (parse_int=float); bool, str, None are not
        raise MalformedPayload(f"{_excerpt(field)} is not a number: {_excerpt(node)}")
    if not math.isfinite(node):
        raise MalformedPayload(f"payload is not a finite number: {_excerpt(text)}")
    return node


def payload_text(payload: bytes) -> str:
    """The payload as text, bounded in size before it is decoded; MalformedPayload if it is too long or not UTF-8."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise MalformedPayload(f"payload of {len(payload):,} bytes is over the {MAX_PAYLOAD_BYTES:,}-byte bound")
    try:
        return payload.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        where = f"byte 0x{payload[exc.start]:02x} at offset {exc.start}"
        raise MalformedPayload(f"payload is not UTF-8 text ({where})") from exc


def load_json(text: str) -> object:
    """A payload's JSON document, bounded in nesting before json.loads recurses; every number as a float."""
    if not _nests_at_most(text, MAX_JSON_DEPTH):
        raise MalformedPayload(f"payload nests deeper than {MAX_JSON_DEPTH} levels: {_excerpt(text)}")
    try:
        return json.loads(text, parse_int=float)
    except ValueError as exc:
        raise MalformedPayload(f"payload is not JSON: {_excerpt(text)}") from exc


def _nests_at_most(text: str, limit: int) -> bool:
    """Whether no array or object in the JSON-ish `text` is nested more than `limit` deep (brackets in strings
    do not count); one pass, no recursion."""
    depth = 0
    for token in _STRING_OR_BRACKET.finditer(text):
        bracket = text[token.start()]
        if bracket in "[{":
            depth += 1
            if depth > limit:
                return False
        elif bracket in "]}":
            depth -= 1
    return True


def _excerpt(value: object, length: int = 60) -> str:
    """`value` for a log line: escaped (no control characters reach the log) and cut to `length` characters."""
    shown = repr(value)
    return shown if len(shown) <= length else shown[:length] + "..."


class MqttSensor:
    def __init__(self, name: str, settings: Settings, first_wait_s: float, stats: Stats,
                 connected: Callable[[], bool]):
        self.name, self.settings, self.first_wait_s, self.stats = name, settings, first_wait_s, stats
        self.connected = connected
        self._lock = threading.Lock()
        self._latest: Sample | None = None
        self._received_any = threading.Event()
        self._malformed = Repeating(log)  # one episode: malformed payloads until a good one
        self._no_humidity = Repeating(log)  # one episode: payloads without humidity until one has it

    def on_payload(self, topic: str, payload: bytes) -> None:
        """From the MQTT network thread: keep the latest value; a malformed payload is counted and dropped, and
        logged once per run of malformed payloads."""
        s = self.settings
        try:
            value, no_humidity = extract_sample(payload, s.field, s.humidity_field)
        except MalformedPayload as exc:
            self.stats.add("mqtt_payloads_malformed", sensor=self.name)
            self._malformed.occurred("%s: malformed payload on %s ignored: %s", self.name, s.topic, exc)
            return
        self._malformed.ended("%s: a readable payload on %s again", self.name, s.topic)
        if no_humidity is not None:
            self.stats.add("mqtt_humidity_missing", sensor=self.name)
            self._no_humidity.occurred("%s: payload on %s has no humidity, its temperature kept: %s",
                                       self.name, s.topic, no_humidity)
        elif s.humidity_field is not None:
            self._no_humidity.ended("%s: payloads on %s carry the humidity again", self.name, s.topic)
        with self._lock:
            self._latest = value
        self._received_any.set()

    def read(self) -> Sample:
        self._malformed.flush()  # the end of a flapping run of malformed payloads, once it is due
        self._no_humidity.flush()
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
    sensor = MqttSensor(config.name, config.settings, config.timeout * 0.8, shared.stats, lambda: hub.connected)
    hub.subscribe(config.settings.topic, sensor.on_payload)
    return sensor


SENSOR_TYPE = SensorType(Settings, _create, (-60.0, 150.0))
