"""One shared MQTT connection (paho-mqtt 2.x) for every mqtt sensor, from the top-level `mqtt:` section.

paho's network thread reconnects with backoff by itself; on every (re)connect all topics are subscribed again.

No callback may end that thread. In paho-mqtt@2.2.0:paho/mqtt/client.py, `_handle_on_message` (like the other
dispatchers: `_handle_connack`, `_do_on_disconnect`, ...) catches an exception from a user callback, logs it
through `_easy_log` and raises it again unless `suppress_exceptions` is set; it then unwinds `_loop` and
`loop_forever`, and `_thread_main` ends the network thread (its `finally` only clears `_thread`). The socket
stays open and `is_connected()` stays True, yet nothing is read again. So here every callback is guarded
(caught, counted, logged once per episode), `suppress_exceptions` is set as well, and a watcher starts the
network thread again, on a fresh connection, if it ends for any other reason (a BaseException, a bug in paho).
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from typing import Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from collector.config_types import MqttConfig
from collector.health import MQTT_DOWN_GRACE_S
from collector.logs import Repeating, RepeatingByKey
from collector.stats import Stats

log = logging.getLogger("templog.mqtt")

RECONNECT_MAX_DELAY_S = 10  # readings resume within this long of the broker answering again, after any outage
WATCH_EVERY_S = 5.0  # how often the watcher looks whether paho's network thread still runs


class MqttHub:
    def __init__(self, config: MqttConfig, stats: Stats | None = None, clock: Callable[[], int] = time.time_ns,
                 watch_every_s: float = WATCH_EVERY_S):
        self.config, self.clock, self.watch_every_s = config, clock, watch_every_s
        self.stats = stats or Stats()
        self.broker = f"{config.host}:{config.port}"
        # A disconnect shorter than the keepalive (how long the user lets the link be silent), and at most a minute,
        # is not reported by `templog health`: a broker restart must not flap it, a dead link must show soon.
        self.down_grace_s = min(config.keepalive or MQTT_DOWN_GRACE_S, MQTT_DOWN_GRACE_S)
        self.topics: dict[str, list[Callable[[str, bytes], None]]] = {}
        client_id = config.client_id or f"templog-{socket.gethostname()}"
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        if config.username:
            self.client.username_pw_set(config.username, config.credentials() or None)
        if config.tls:
            self.client.tls_set(ca_certs=config.ca_file)
        self.client.reconnect_delay_set(min_delay=1, max_delay=RECONNECT_MAX_DELAY_S)
        self.client.suppress_exceptions = True
        self.client.on_pre_connect = self._guarded(self._on_pre_connect)
        self.client.on_connect = self._guarded(self._on_connect)
        self.client.on_disconnect = self._guarded(self._on_disconnect)
        self.client.on_connect_fail = self._guarded(self._on_connect_fail)
        self.client.on_message = self._guarded(self._on_message)
        self._lock = threading.Lock()
        self._down_since_ns: int | None = None  # None while connected
        self._down_reason = "not connected yet"
        self._network_thread: threading.Thread | None = None  # paho's, as seen from inside its callbacks
        self._watcher: threading.Thread | None = None
        self._stopping = threading.Event()
        self._failing = Repeating(log, logging.ERROR)  # connection attempts failing, until one succeeds
        self._callback_errors = RepeatingByKey(log, logging.ERROR)

    def subscribe(self, topic: str, callback: Callable[[str, bytes], None]) -> None:
        """Call `callback(topic, payload)` for each message matching `topic` (wildcards allowed); before start()."""
        self.topics.setdefault(topic, []).append(callback)

    def start(self) -> None:
        self._went_down("not connected yet")
        self._start_network_thread()
        self._watcher = threading.Thread(target=self._watch, name="mqtt watcher", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join()
        self.client.disconnect()
        self.client.loop_stop()

    @property
    def connected(self) -> bool:
        thread = self._network_thread
        return self.client.is_connected() and thread is not None and thread.is_alive()

    def health_state(self) -> dict[str, object]:
        """What the heartbeat records for `templog health` (collector/health.py judge)."""
        with self._lock:
            return {"mqtt_broker": self.broker, "mqtt_down_since_ns": self._down_since_ns or 0,
                    "mqtt_down_reason": self._down_reason if self._down_since_ns else "",
                    "mqtt_down_grace_s": self.down_grace_s}

    def _start_network_thread(self) -> None:
        """A fresh connection (connect_async closes any old socket and its half-read packet) on a new thread."""
        self._network_thread = None
        self.client.connect_async(self.config.host, self.config.port, keepalive=int(self.config.keepalive))
        self.client.loop_start()

    def _watch(self) -> None:
        while not self._stopping.wait(self.watch_every_s):
            self._failing.flush()  # the end of a flapping condition, once it is due
            self._callback_errors.flush()
            thread = self._network_thread
            if thread is not None and not thread.is_alive():
                self.stats.add("mqtt_network_restarts")
                self._went_down("the MQTT network thread had ended")
                log.error("the MQTT network thread for %s had ended; started it again", self.broker)
                self._start_network_thread()

    def _guarded(self, callback: Callable[..., None]) -> Callable[..., None]:
        """`callback` for paho, never raising: an exception is counted and logged once per episode."""
        name = callback.__name__.lstrip("_")

        def guarded(*args) -> None:
            try:
                callback(*args)
            except Exception as exc:
                self._callback_failed(name, exc)
            else:
                self._callback_errors.ended(name, "MQTT %s works again", name)

        guarded.__name__ = callback.__name__  # paho's own log lines name it
        return guarded

    def _callback_failed(self, key: str, exc: Exception) -> None:
        self.stats.add("mqtt_callback_errors")
        self._callback_errors[key].occurred("MQTT %s failed, the connection goes on: %s: %.200s", key,
                                            type(exc).__name__, exc)

    def _went_down(self, reason: str) -> None:
        with self._lock:
            if self._down_since_ns is None:
                self._down_since_ns = self.clock()
            self._down_reason = reason

    def _on_pre_connect(self, client, userdata) -> None:
        self._network_thread = threading.current_thread()  # paho calls it from its network thread, in reconnect()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._went_down(f"the broker refused the connection: {reason_code}")
            self._failing.occurred("MQTT broker %s refused the connection: %s", self.broker, reason_code)
            return
        self._failing.ended("MQTT broker %s accepts the connection again", self.broker)
        log.info("connected to MQTT broker %s; subscribing to %d topic(s)", self.broker, len(self.topics))
        with self._lock:
            self._down_since_ns = None
        for topic in self.topics:
            client.subscribe(topic, qos=1)

    def _on_connect_fail(self, client, userdata) -> None:
        reason = sys.exc_info()[1] or "connection failed"  # paho calls this from inside its `except OSError`
        self._went_down(f"cannot connect: {reason}")
        self._failing.occurred("cannot connect to MQTT broker %s%s: %s; retrying with backoff", self.broker,
                               " (TLS)" if self.config.tls else "", reason)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._went_down(f"lost the connection: {reason_code}")
            log.warning("lost the MQTT broker %s (%s); reconnecting", self.broker, reason_code)

    def _on_message(self, client, userdata, message) -> None:
        topic = message.topic  # a topic that is not UTF-8 raises here: guarded like any callback
        for subscription, callbacks in self.topics.items():
            if paho.topic_matches_sub(subscription, topic):
                for callback in callbacks:
                    try:
                        callback(topic, message.payload)
                    except Exception as exc:  # one subscriber's failure is its own episode; the others still get it
                        self._callback_failed(f"message callback for {subscription}", exc)
                    else:
                        self._callback_errors.ended(f"message callback for {subscription}",
                                                    "MQTT message callback for %s works again", subscription)
