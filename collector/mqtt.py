"""One shared MQTT connection (paho-mqtt 2.x) for every mqtt sensor, from the top-level `mqtt:` section.

paho's network thread reconnects with backoff by itself; on every (re)connect all topics are subscribed again.
"""

from __future__ import annotations

import logging
import socket
import sys
from typing import Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from collector.config import MqttConfig

log = logging.getLogger("templog.mqtt")


class MqttHub:
    def __init__(self, config: MqttConfig):
        self.config = config
        self.topics: dict[str, list[Callable[[str, bytes], None]]] = {}
        client_id = config.client_id or f"templog-{socket.gethostname()}"
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        if config.username:
            self.client.username_pw_set(config.username, config.credentials() or None)
        if config.tls:
            self.client.tls_set(ca_certs=config.ca_file)
        self.client.reconnect_delay_set(min_delay=1, max_delay=60)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_message = self._on_message
        self.connected_once = False
        self.failing = False  # in a connection-failure episode: log its first failure only

    def subscribe(self, topic: str, callback: Callable[[str, bytes], None]) -> None:
        """Call `callback(topic, payload)` for each message matching `topic` (wildcards allowed); before start()."""
        self.topics.setdefault(topic, []).append(callback)

    def start(self) -> None:
        self.client.connect_async(self.config.host, self.config.port, keepalive=int(self.config.keepalive))
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("MQTT broker %s:%d refused the connection: %s", self.config.host, self.config.port, reason_code)
            return
        log.info("connected to MQTT broker %s:%d; subscribing to %d topic(s)", self.config.host, self.config.port,
                 len(self.topics))
        self.connected_once, self.failing = True, False
        for topic in self.topics:
            client.subscribe(topic, qos=1)

    def _on_connect_fail(self, client, userdata) -> None:
        if not self.failing:
            reason = sys.exc_info()[1]  # paho calls this from inside its `except OSError`
            log.error("cannot connect to MQTT broker %s:%d%s: %s; retrying with backoff", self.config.host,
                      self.config.port, " (TLS)" if self.config.tls else "", reason or "connection failed")
            self.failing = True

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("lost the MQTT broker %s:%d (%s); reconnecting", self.config.host, self.config.port, reason_code)

    def _on_message(self, client, userdata, message) -> None:
        for topic, callbacks in self.topics.items():
            if paho.topic_matches_sub(topic, message.topic):
                for callback in callbacks:
                    callback(message.topic, message.payload)
