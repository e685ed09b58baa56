"""The demo's seat of the WMS: an MQTT subscriber to the gateway's events.

``EventView`` subscribes to ``<prefix>/+/+/events/#`` (QoS 1) on paho's own thread, keeps
the type of every event that arrives, in order, and hands each event (the contract's JSON,
docs/events.md) to ``narrate``, which a demo part overrides to print it.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


class EventView:
    def __init__(self, host: str, port: int, prefix: str, client_id: str) -> None:
        self._types: list[str] = []
        self._lock = threading.Lock()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self._client.on_connect = lambda c, *_: c.subscribe(f"{prefix}/+/+/events/#", qos=1)
        self._client.on_message = self._on_message
        self._client.connect(host, port)
        self._client.loop_start()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def types(self) -> list[str]:
        """The event types seen so far, in the order they arrived."""
        with self._lock:
            return list(self._types)

    def narrate(self, event: dict[str, Any]) -> None:
        """Called on paho's thread for each event, after its type is kept."""

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        event = json.loads(msg.payload)
        with self._lock:
            self._types.append(event["type"])
        self.narrate(event)
