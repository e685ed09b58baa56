"""The MQTT uplink: the WMS's sink of the event log, its presence and its commands.

Layers as in asyncua's client: ``MqttUplink`` (presence, retained state, commands, and
the ``Drain`` that delivers the log) over ``MqttSession`` (paho, TLS, failover, protocol
fallback). The uplink reads the log through its own cursor, so another sink being slow
or stopped never holds it back, nor it them.

Presence: a birth message (``state/status``, retained: version, config hash, last
sequence number, protocol) on every connection, an ``offline`` last will, and an
``offline`` message on a clean stop. Retained snapshots (``state/alarms``, ...) are sent
on every change and again on every connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.config.settings import MqttSection
from gateway.core.tasks import cancel_all
from gateway.storage.log import EVERYTHING, EventLog, iso_utc
from gateway.uplink.drain import Drain
from gateway.uplink.session import ConnectionState, MqttSession
from gateway.uplink.topics import Topics

_logger = logging.getLogger(__name__)

SINK = "mqtt"


@dataclass(frozen=True, slots=True)
class ReplyTo:
    """Where a command's reply goes: its MQTT 5 response topic, or replies/<name>."""

    topic: str
    correlation: bytes | None = None


CommandHandler = Callable[[str, bytes, ReplyTo], None]


class MqttUplink:
    def __init__(
        self,
        config: MqttSection,
        client_id: str,
        topics: Topics,
        log: EventLog,
        birth: dict[str, Any],
        telemetry_expiry: float | None = None,
    ) -> None:
        self._topics = topics
        self._log = log
        self._birth = dict(birth)
        self._retained: dict[str, bytes] = {}
        self._on_command: CommandHandler | None = None
        self._downlinks: dict[str, Callable[[bytes, bool], None]] = {}
        self._session = MqttSession(config, client_id, (topics.status, self._offline()), self)
        self._drain = Drain(
            log.cursor(SINK, EVERYTHING),
            self._session,
            topics,
            config.max_inflight,
            telemetry_expiry,
            config.reconnect_max,
            confirmed_by_wms=config.delivery == "wms",
        )
        self._drainer: asyncio.Task[None] | None = None

    @property
    def state(self) -> ConnectionState:
        return self._session.state

    @property
    def protocol(self) -> str:
        return self._session.protocol

    @property
    def broker(self) -> str:
        return self._session.broker

    @property
    def last_error(self) -> str:
        return self._session.last_error or self._drain.last_error

    def set_command_handler(self, handler: CommandHandler) -> None:
        self._on_command = handler

    def add_downlink(self, topic: str, handler: Callable[[bytes, bool], None]) -> None:
        """A topic the WMS publishes data on (retained, versioned, signed), not a command:
        ``handler(payload, retained)``. Subscribed on every connect."""
        self._downlinks[topic] = handler
        if self._session.connected:
            self._session.subscribe(topic)

    async def __aenter__(self) -> MqttUplink:
        self._session.start()
        self._drainer = asyncio.create_task(self._drain.run(), name="mqtt-drain")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def stop(self, drain_timeout: float = 2.0) -> None:
        """Wait briefly for acknowledgements in flight, say offline, disconnect."""
        if not await self._drain.settle(drain_timeout):
            _logger.warning(
                "%d messages unacknowledged at stop; they stay in the log", self._drain.in_flight
            )
        if self._drainer is not None:
            await cancel_all([self._drainer])
        await self._session.stop((self._topics.status, self._offline()))

    def publish_state(self, name: str, body: dict[str, Any]) -> None:
        """Retained state (alarms, relays): only the newest matters, sent now or on connect."""
        payload = json.dumps(body, separators=(",", ":")).encode()
        if self._retained.get(name) == payload:
            return
        self._retained[name] = payload
        if self._session.connected:
            self._session.publish(self._topics.state(name), payload, retain=True)

    def reply(self, to: ReplyTo, body: dict[str, Any]) -> None:
        """Replies answer a live request: sent once, not kept in the log."""
        properties = None
        if self._session.v5 and to.correlation is not None:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.CorrelationData = to.correlation
        self._session.publish(to.topic, json.dumps(body).encode(), properties=properties)

    # -- SessionListener -------------------------------------------------------------

    def connected(self) -> None:
        self._session.subscribe(self._topics.commands)
        for topic in self._downlinks:
            self._session.subscribe(topic)
        self._session.publish(self._topics.status, self._online(), retain=True)
        for name, payload in self._retained.items():
            self._session.publish(self._topics.state(name), payload, retain=True)
        _logger.info(
            "mqtt uplink connected to %s (MQTT %s), %d messages waiting",
            self.broker,
            self.protocol,
            self._log.lag(SINK).backlog,
        )
        self._drain.connected()

    def reset(self) -> None:
        self._drain.reset()

    def delivery(self, name: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """The WMS's ``confirm {"upto": seq}`` and ``resend {"from": seq}`` (delivery = wms).

        No event records them: a confirmation that made an event would need confirming."""
        if not self._drain.confirmed_by_wms:
            return {"ok": False, "error": 'this gateway runs with [mqtt] delivery = "broker"'}
        key = "upto" if name == "confirm" else "from"
        seq = args.get(key)
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            return {"ok": False, "error": f"{name} needs {key!r}: a sequence number >= 1"}
        if seq > self._log.last_seq:
            return {"ok": False, "error": f"no event {seq} yet; the last is {self._log.last_seq}"}
        row = self._log.row_of(seq)
        if name == "confirm":
            if row is not None:
                self._drain.confirm(row)
            return {"ok": True, "confirmed": seq}
        if row is None:
            return {"ok": False, "error": f"event {seq} was confirmed and is no longer kept"}
        self._drain.resend(row)
        return {"ok": True, "resending_from": seq}

    def published(self, mid: int) -> None:
        self._drain.published(mid)

    def refused(self, mid: int, reason: str) -> None:
        self._drain.refused(mid, reason)

    def message(self, msg: mqtt.MQTTMessage) -> None:
        if msg.topic in self._downlinks:
            self._downlinks[msg.topic](bytes(msg.payload), bool(msg.retain))
            return
        name = msg.topic.rsplit("/", 1)[-1]
        if msg.retain:
            # A retained command would run again on every reconnect: never act on one.
            _logger.warning("ignoring a retained command on %s", msg.topic)
            return
        props = getattr(msg, "properties", None)
        response = getattr(props, "ResponseTopic", None) if props is not None else None
        correlation = getattr(props, "CorrelationData", None) if props is not None else None
        to = ReplyTo(response or self._topics.reply(name), correlation)
        if self._on_command is None:
            self.reply(to, {"ok": False, "error": "the gateway is starting; try again"})
            return
        self._on_command(name, bytes(msg.payload), to)

    # -- presence --------------------------------------------------------------------

    def _offline(self) -> bytes:
        return json.dumps({"state": "offline", **self._birth}, separators=(",", ":")).encode()

    def _online(self) -> bytes:
        body = {
            "state": "online",
            **self._birth,
            "protocol": self.protocol,
            "last_seq": self._log.last_seq,
            "ts": iso_utc(time.time()),
        }
        return json.dumps(body, separators=(",", ":")).encode()
