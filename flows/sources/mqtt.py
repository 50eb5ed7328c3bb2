"""MQTT ingest for sensors: topics ``cw/{kind}/{district}/{entity}``, QoS 1, payload = record.

One partition (``mqtt``). The client uses a fixed client id and a persistent session
(``clean_session=False``), so the broker queues QoS 1 messages while the flow is down and
delivers them on reconnect; duplicates (QoS 1 is at-least-once) are tolerated downstream
(idempotent alert versions). A message is acknowledged by paho when it is queued here, so
records still queued at a kill -9 are lost: MQTT is for live sensors, use Redis Streams where
input must be replayable. The network loop runs in paho's thread; ``read`` drains the queue.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from citywatch.errors import ConfigError
from flows.sources import RawReader, RawSource

__all__ = ["TOPIC", "MqttSource"]

log = logging.getLogger(__name__)

#: What we subscribe to: every kind, district and entity.
TOPIC = "cw/+/+/+"


class _MqttReader(RawReader):
    is_live = True

    def __init__(
        self, url: str, client_id: str, topic: str, idle_stop_s: float | None, clean: bool
    ) -> None:
        u = urlparse(url)
        if u.scheme not in ("mqtt", "mqtts"):
            msg = f"mqtt_url: {url!r} is not mqtt://host:port"
            raise ConfigError(msg)
        self.queue: deque[bytes] = deque()
        self.idle_stop_s = idle_stop_s
        self.last_data = time.monotonic()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean
        )
        if u.username:
            self.client.username_pw_set(u.username, u.password)
        if u.scheme == "mqtts":
            self.client.tls_set()
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.topic = topic
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.connect_async(u.hostname or "127.0.0.1", u.port or 1883, keepalive=30)
        self.client.loop_start()
        self.awake: datetime | None = None

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any = None
    ) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("mqtt: connect refused (%s)", reason)
            return
        client.subscribe(self.topic, qos=1)
        self.subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.queue.append(bytes(msg.payload))

    def read(self, max_n: int) -> list[bytes]:
        out: list[bytes] = []
        q = self.queue
        while q and len(out) < max_n:
            out.append(q.popleft())
        if out:
            self.last_data = time.monotonic()
            self.awake = None
            return out
        if (
            self.idle_stop_s is not None
            and self.subscribed.is_set()
            and (time.monotonic() - self.last_data > self.idle_stop_s)
        ):
            raise StopIteration
        self.awake = datetime.now(UTC) + timedelta(seconds=0.05)
        return out

    def position(self) -> None:
        return None

    def next_awake(self) -> datetime | None:
        return self.awake

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class MqttSource(RawSource):
    def __init__(
        self,
        url: str,
        *,
        client_id: str = "citywatch",
        topic: str = TOPIC,
        idle_stop_s: float | None = None,
        clean_session: bool = False,
    ) -> None:
        self.url = url
        self.clean_session = clean_session
        self.client_id = client_id
        self.topic = topic
        self.idle_stop_s = idle_stop_s

    def list_parts(self) -> list[str]:
        return ["mqtt"]

    def open(self, part: str, position: Any | None) -> RawReader:
        return _MqttReader(
            self.url, self.client_id, self.topic, self.idle_stop_s, self.clean_session
        )
