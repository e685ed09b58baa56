"""MQTT uplink: drains the outbox to the broker in sequence order, QoS 1, pipelined.

Layers as in asyncua's client: ``MqttUplink`` (outbox drain, presence, retained state,
commands) over paho's ``Client``, whose network thread owns the socket and reconnects
with back-off. paho keeps every unacknowledged QoS 1 message and re-sends it, in order,
after a reconnect; so each outbox row is handed to paho once per process and deleted only
when paho reports the broker's PUBACK. After a restart every row still in the outbox is
sent again: delivery is at least once, and the event id and sequence number let the
receiver drop duplicates and see gaps.

Brokers are tried in the configured order, moving on after each failed connection. MQTT 5
is spoken where the broker does (message expiry, response topics), 3.1.1 otherwise.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway.config.settings import MqttSection
from gateway.core.tasks import cancel_all
from gateway.storage.outbox import Outbox, StoredEvent, iso_utc
from gateway.uplink.topics import Topics

_logger = logging.getLogger(__name__)

_UNSUPPORTED_PROTOCOL = 132  # CONNACK reason: unsupported protocol version


class ConnectionState(enum.Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    STOPPING = "stopping"


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
        outbox: Outbox,
        birth: dict[str, Any],
        telemetry_expiry: float | None = None,
    ) -> None:
        self._config = config
        self._telemetry_expiry = telemetry_expiry
        self._client_id = client_id
        self._topics = topics
        self._outbox = outbox
        self._birth = dict(birth)
        self._brokers = config.broker_list()
        self._broker = 0
        self._v5 = config.protocol != "3.1.1"
        self._state = ConnectionState.DISCONNECTED
        self._inflight: dict[int, int] = {}  # paho mid -> outbox row
        self._published_upto = 0
        self._acked: list[int] = []
        self._retained: dict[str, bytes] = {}
        self._rewind_pending = False
        self._lowest_refused: int | None = None
        self._on_command: CommandHandler | None = None
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._drainer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.last_error = ""
        self._client = self._make_client()

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def protocol(self) -> str:
        return "5" if self._v5 else "3.1.1"

    @property
    def broker(self) -> str:
        host, port = self._brokers[self._broker]
        return f"{host}:{port}"

    def set_command_handler(self, handler: CommandHandler) -> None:
        self._on_command = handler

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
        self._connect()
        self._drainer = asyncio.create_task(self._drain(), name="mqtt-drain")

    async def stop(self, drain_timeout: float = 2.0) -> None:
        """Wait briefly for acknowledgements in flight, say offline, disconnect."""
        if self._state is ConnectionState.CONNECTED and self._inflight:
            self._idle.clear()
            try:
                await asyncio.wait_for(self._idle.wait(), drain_timeout)
            except TimeoutError:
                _logger.warning(
                    "%d events unacknowledged at stop; they stay in the outbox",
                    len(self._inflight),
                )
        self._state = ConnectionState.STOPPING
        if self._drainer is not None:
            await cancel_all([self._drainer])
        try:
            if self._client.is_connected():
                info = self._client.publish(
                    self._topics.status, self._offline(), qos=1, retain=True
                )
                await asyncio.to_thread(info.wait_for_publish, 1.0)
        except (RuntimeError, ValueError) as err:
            _logger.warning("offline status not sent: %s", err)
        finally:
            self._client.disconnect()
            self._client.loop_stop()
            self._state = ConnectionState.DISCONNECTED

    def publish_state(self, name: str, body: dict[str, Any]) -> None:
        """Retained state (alarms, relays): only the newest matters, sent now or on connect."""
        payload = json.dumps(body, separators=(",", ":")).encode()
        if self._retained.get(name) == payload:
            return
        self._retained[name] = payload
        if self._state is ConnectionState.CONNECTED:
            self._client.publish(self._topics.state(name), payload, qos=1, retain=True)

    def reply(self, to: ReplyTo, body: dict[str, Any]) -> None:
        """Replies answer a live request: sent once, not kept in the outbox."""
        properties = None
        if self._v5 and to.correlation is not None:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.CorrelationData = to.correlation
        self._client.publish(to.topic, json.dumps(body).encode(), qos=1, properties=properties)

    # -- connection ------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        protocol = mqtt.MQTTv5 if self._v5 else mqtt.MQTTv311
        extra: dict[str, Any] = {} if self._v5 else {"clean_session": True}
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self._client_id, protocol=protocol, **extra
        )
        config = self._config
        if config.tls is not None:
            client.tls_set(
                ca_certs=str(config.tls.ca_file) if config.tls.ca_file else None,
                certfile=str(config.tls.cert_file) if config.tls.cert_file else None,
                keyfile=str(config.tls.key_file) if config.tls.key_file else None,
            )
        if config.username:
            password = config.password.get_secret_value() if config.password else None
            client.username_pw_set(config.username, password)
        client.max_inflight_messages_set(config.max_inflight)
        client.max_queued_messages_set(0)
        # paho's hint says int; it counts in float seconds, and sub-second retries are what
        # let delivery resume within a second of the broker's return.
        client.reconnect_delay_set(config.reconnect_min, config.reconnect_max)  # type: ignore[arg-type]
        client.will_set(self._topics.status, self._offline(), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _connect(self) -> None:
        host, port = self._brokers[self._broker]
        self._state = ConnectionState.CONNECTING
        # A clean start every time: the outbox, not the broker, remembers what is owed,
        # and a command queued while the gateway was away is stale by the time it is back.
        kwargs: dict[str, Any] = {"clean_start": True} if self._v5 else {}
        self._client.connect_async(host, port, self._config.keepalive, **kwargs)
        self._client.loop_start()
        _logger.info("mqtt uplink connecting to %s:%s (MQTT %s)", host, port, self.protocol)

    def _fall_back_to_311(self) -> None:
        _logger.warning("broker %s does not speak MQTT 5; using 3.1.1", self.broker)
        self._client.loop_stop()
        # The new client numbers its messages anew: whatever the old one had in flight is
        # offered again from the outbox, not matched against ids that now mean other rows.
        if self._inflight:
            self._published_upto = min(self._inflight.values()) - 1
            self._inflight.clear()
        self._v5 = False
        self._client = self._make_client()
        self._connect()

    def _offline(self) -> bytes:
        return json.dumps({"state": "offline", **self._birth}, separators=(",", ":")).encode()

    def _online(self) -> bytes:
        body = {
            "state": "online",
            **self._birth,
            "protocol": self.protocol,
            "last_seq": self._outbox.last_seq,
            "ts": iso_utc(time.time()),
        }
        return json.dumps(body, separators=(",", ":")).encode()

    # -- outbox drain ----------------------------------------------------------------

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
                    self._published_upto = row.row
                    stale, properties = self._expiry(row)
                    if stale:
                        self._acked.append(row.row)  # telemetry too old to matter: drop it
                        self._flush_soon()
                        continue
                    info = self._client.publish(
                        self._topics.channel(row.channel),
                        row.payload,
                        qos=1,
                        properties=properties,
                    )
                    self._inflight[info.mid] = row.row

    def _expiry(self, row: StoredEvent) -> tuple[bool, Properties | None]:
        """(stale, MQTT 5 properties): telemetry carries what is left of its life."""
        if not row.is_telemetry or self._telemetry_expiry is None:
            return False, None
        left = self._telemetry_expiry - (time.time() - row.stored_at)
        if left <= 0:
            return True, None
        if not self._v5:
            return False, None
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.MessageExpiryInterval = max(1, int(left))
        return False, properties

    # -- paho callbacks run on paho's network thread: hand everything to the loop -----

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Any,
    ) -> None:
        assert self._loop is not None
        falls_back = reason.value == _UNSUPPORTED_PROTOCOL and self._config.protocol == "auto"
        if reason.is_failure and not falls_back:
            self._next_broker(client)  # a broker that only lacks MQTT 5 gets 3.1.1 instead
        self._loop.call_soon_threadsafe(self._connected, reason)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        assert self._loop is not None
        self._next_broker(client)
        self._loop.call_soon_threadsafe(self._connect_failed)

    def _next_broker(self, client: mqtt.Client) -> None:
        if len(self._brokers) > 1:
            self._broker = (self._broker + 1) % len(self._brokers)
            # paho's public host setter refuses while its first connection is still being
            # retried; no socket is open when it calls us here, so the address may change.
            client._host, client._port = self._brokers[self._broker]

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
        if reason.is_failure:
            self._loop.call_soon_threadsafe(self._refused, mid, str(reason))
        else:
            self._loop.call_soon_threadsafe(self._acknowledged, mid)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        assert self._loop is not None
        name = msg.topic.rsplit("/", 1)[-1]
        if msg.retain:
            # A retained command would run again on every reconnect: never act on one.
            _logger.warning("ignoring a retained command on %s", msg.topic)
            return
        props = getattr(msg, "properties", None)
        response = getattr(props, "ResponseTopic", None) if props is not None else None
        correlation = getattr(props, "CorrelationData", None) if props is not None else None
        to = ReplyTo(response or self._topics.reply(name), correlation)
        self._loop.call_soon_threadsafe(self._command, name, bytes(msg.payload), to)

    # -- on the event loop -----------------------------------------------------------

    def _command(self, name: str, payload: bytes, to: ReplyTo) -> None:
        if self._on_command is None:
            self.reply(to, {"ok": False, "error": "the gateway is starting; try again"})
            return
        self._on_command(name, payload, to)

    def _connect_failed(self) -> None:
        self.last_error = f"cannot connect; trying {self.broker} next"
        _logger.warning("mqtt uplink: %s", self.last_error)

    def _connected(self, reason: ReasonCode) -> None:
        if self._state is ConnectionState.STOPPING:
            return
        if reason.is_failure:
            if reason.value == _UNSUPPORTED_PROTOCOL and self._config.protocol == "auto":
                self._fall_back_to_311()
                return
            self.last_error = f"broker refused the connection: {reason}"
            if str(reason) in ("Not authorized", "Bad user name or password"):
                self.last_error += (
                    " - check the MQTT username, the password (CELLSAFE_MQTT__PASSWORD or the"
                    " mqtt__password credential) and the client certificate"
                )
            _logger.error("mqtt uplink: %s; events stay in the outbox", self.last_error)
            return
        self._state = ConnectionState.CONNECTED
        self.last_error = ""
        self._client.subscribe(self._topics.commands, qos=1)
        self._client.publish(self._topics.status, self._online(), qos=1, retain=True)
        for name, payload in self._retained.items():
            self._client.publish(self._topics.state(name), payload, qos=1, retain=True)
        _logger.info(
            "mqtt uplink connected to %s (MQTT %s), %d events waiting",
            self.broker,
            self.protocol,
            self._outbox.count(),
        )
        self._wake.set()

    def _disconnected(self, reason: ReasonCode) -> None:
        if self._state is ConnectionState.STOPPING:
            return
        if self._state is ConnectionState.CONNECTED:
            _logger.warning("mqtt uplink lost the broker (%s); events stay in the outbox", reason)
        self._state = ConnectionState.CONNECTING

    def _refused(self, mid: int, reason: str) -> None:
        """An MQTT 5 broker answered but did not take the event (e.g. its ACL said no).

        The row stays in the outbox and is offered again later: an event is never
        dropped because the broker is misconfigured, and the error shows in the status.
        """
        row = self._inflight.pop(mid, None)
        if row is None:
            return
        self.last_error = f"broker refused queued message {row}: {reason}"
        if not self._inflight:
            self._idle.set()
        _logger.error("mqtt uplink: %s; it stays in the outbox", self.last_error)
        if not self._rewind_pending:
            self._rewind_pending = True
            asyncio.get_running_loop().call_later(self._config.reconnect_max, self._rewind)
        self._lowest_refused = min(row, self._lowest_refused or row)

    def _rewind(self) -> None:
        self._rewind_pending = False
        if self._lowest_refused is not None:
            self._published_upto = min(self._published_upto, self._lowest_refused - 1)
            self._lowest_refused = None
        self._wake.set()

    def _acknowledged(self, mid: int) -> None:
        row = self._inflight.pop(mid, None)
        if row is None:
            return  # a status, state or reply message, not an outbox row
        self._acked.append(row)
        self._flush_soon()

    def _flush_soon(self) -> None:
        if len(self._acked) == 1:
            # Acks arrive in bursts: delete them in one transaction, not one fsync each.
            asyncio.get_running_loop().call_soon(self._flush_acks)

    def _flush_acks(self) -> None:
        rows, self._acked = self._acked, []
        self._outbox.ack(rows)
        if not self._inflight:
            self._idle.set()
        self._wake.set()
