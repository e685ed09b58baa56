"""MQTT uplink: drains the outbox to the broker in sequence order, QoS 1, pipelined.

Layers as in asyncua's client: ``MqttUplink`` (outbox drain, presence) over paho's
``Client``, whose network thread owns the socket and reconnects with backoff. paho keeps
every unacknowledged QoS 1 message and re-sends it, in order, after a reconnect; so each
outbox row is handed to paho once per process, and deleted only when paho reports the
broker's PUBACK. After a restart every row still in the outbox is sent again: delivery is
at least once, and the event id and sequence number let the receiver drop duplicates.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from gateway import __version__
from gateway.config.settings import MqttSection
from gateway.storage.outbox import Outbox
from gateway.uplink.topics import Topics

_logger = logging.getLogger(__name__)


class ConnectionState(enum.Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    STOPPING = "stopping"


class MqttUplink:
    def __init__(self, config: MqttSection, client_id: str, topics: Topics, outbox: Outbox) -> None:
        self._config = config
        self._topics = topics
        self._outbox = outbox
        self._state = ConnectionState.DISCONNECTED
        self._inflight: dict[int, int] = {}  # paho mid -> outbox seq
        self._published_upto = 0
        self._acked: list[int] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._drainer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        if config.username:
            password = config.password.get_secret_value() if config.password else None
            self._client.username_pw_set(config.username, password)
        self._client.max_inflight_messages_set(config.max_inflight)
        self._client.max_queued_messages_set(0)
        self._client.reconnect_delay_set(config.reconnect_min, config.reconnect_max)
        self._client.will_set(topics.status, self._status_payload("offline"), qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    async def __aenter__(self) -> MqttUplink:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._outbox.subscribe(self._wake.set)
        self._state = ConnectionState.CONNECTING
        self._client.connect_async(self._config.host, self._config.port, self._config.keepalive)
        self._client.loop_start()
        self._drainer = asyncio.create_task(self._drain(), name="mqtt-drain")
        _logger.info("mqtt uplink connecting to %s:%s", self._config.host, self._config.port)

    async def stop(self, drain_timeout: float = 2.0) -> None:
        """Wait briefly for acknowledgements in flight, say offline, disconnect."""
        if self._state is ConnectionState.CONNECTED and self._inflight:
            self._idle.clear()
            try:
                await asyncio.wait_for(self._idle.wait(), drain_timeout)
            except TimeoutError:
                _logger.warning(
                    "%d events unacknowledged at stop; they stay in the outbox", len(self._inflight)
                )
        self._state = ConnectionState.STOPPING
        if self._drainer is not None:
            self._drainer.cancel()
            await asyncio.gather(self._drainer, return_exceptions=True)
        try:
            if self._client.is_connected():
                info = self._client.publish(
                    self._topics.status, self._status_payload("offline"), qos=1, retain=True
                )
                await asyncio.to_thread(info.wait_for_publish, 1.0)
        except (RuntimeError, ValueError) as err:
            _logger.warning("offline status not sent: %s", err)
        finally:
            self._client.disconnect()
            self._client.loop_stop()
            self._state = ConnectionState.DISCONNECTED

    async def _drain(self) -> None:
        window = self._config.max_inflight
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._state is ConnectionState.CONNECTED and len(self._inflight) < window:
                rows = self._outbox.pending(self._published_upto, window - len(self._inflight))
                if not rows:
                    break
                for row in rows:
                    info = self._client.publish(
                        self._topics.event(row.category), row.payload, qos=1
                    )
                    self._inflight[info.mid] = row.seq
                    self._published_upto = row.seq

    def _status_payload(self, state: str) -> bytes:
        return json.dumps(
            {
                "state": state,
                "version": __version__,
                "ts": time.time(),
                "last_seq": self._outbox.last_seq,
            },
            separators=(",", ":"),
        ).encode()

    # paho callbacks run on paho's network thread: hand everything to the event loop.

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Any,
    ) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._connected, reason)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Any,
    ) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._disconnected, reason)

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, properties: Any
    ) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._acknowledged, mid)

    def set_command_handler(self, handler: Callable[[str, bytes], None]) -> None:
        self._on_command = handler

    def reply(self, name: str, body: dict[str, Any]) -> None:
        """Replies are answers to a live request: sent once, not kept in the outbox."""
        self._client.publish(self._topics.reply(name), json.dumps(body).encode(), qos=1)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        assert self._loop is not None
        name = msg.topic.rsplit("/", 1)[-1]
        self._loop.call_soon_threadsafe(self._command, name, bytes(msg.payload))

    def _command(self, name: str, payload: bytes) -> None:
        if self._on_command is not None:
            self._on_command(name, payload)

    def _connected(self, reason: ReasonCode) -> None:
        if reason.is_failure:
            _logger.error("mqtt broker refused the connection: %s", reason)
            return
        if self._state is ConnectionState.STOPPING:
            return
        self._state = ConnectionState.CONNECTED
        self._client.subscribe(self._topics.commands, qos=1)
        self._client.publish(
            self._topics.status, self._status_payload("online"), qos=1, retain=True
        )
        _logger.info("mqtt uplink connected, %d events waiting", self._outbox.count())
        self._wake.set()

    def _disconnected(self, reason: ReasonCode) -> None:
        if self._state is ConnectionState.STOPPING:
            return
        if self._state is ConnectionState.CONNECTED:
            _logger.warning("mqtt uplink lost the broker (%s); events stay in the outbox", reason)
        self._state = ConnectionState.CONNECTING

    def _acknowledged(self, mid: int) -> None:
        seq = self._inflight.pop(mid, None)
        if seq is None:
            return  # a status message, not an outbox row
        self._acked.append(seq)
        if len(self._acked) == 1:
            # Acks arrive in bursts: delete them in one transaction, not one fsync each.
            asyncio.get_running_loop().call_soon(self._flush_acks)

    def _flush_acks(self) -> None:
        seqs, self._acked = self._acked, []
        self._outbox.ack(seqs)
        if not self._inflight:
            self._idle.set()
        self._wake.set()
