"""The MQTT session: one paho client, its TLS and login, broker failover, protocol fallback.

The lowest layer of the uplink, as asyncua's ``UaClient`` sits under its ``Client``: it
knows nothing of events or the log. paho's network thread owns the socket and reconnects
with back-off (``reconnect_min`` .. ``reconnect_max`` seconds); every callback is handed
to the event loop, where the ``SessionListener`` hears it. Brokers are tried in the
configured order, moving on after each failed connection. MQTT 5 is spoken where the
broker does (message expiry, response topics); with ``protocol = "auto"`` a broker that
refuses version 5 gets 3.1.1 instead, on a new client (``reset`` tells the listener that
the message ids in flight mean nothing any more).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway.config.settings import MqttSection

_logger = logging.getLogger(__name__)

_UNSUPPORTED_PROTOCOL = 132  # CONNACK reason: unsupported protocol version


class ConnectionState(enum.Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    STOPPING = "stopping"


class SessionListener(Protocol):
    """What the session tells its owner, always on the event loop."""

    def connected(self) -> None: ...

    def reset(self) -> None:
        """A new client replaced the old one: its message ids in flight are void."""

    def published(self, mid: int) -> None:
        """The broker acknowledged message ``mid`` (PUBACK)."""

    def refused(self, mid: int, reason: str) -> None:
        """An MQTT 5 broker answered ``mid`` with a failure (e.g. its ACL)."""

    def message(self, msg: mqtt.MQTTMessage) -> None: ...


class MqttSession:
    def __init__(
        self,
        config: MqttSection,
        client_id: str,
        will: tuple[str, bytes],
        listener: SessionListener,
    ) -> None:
        self._config = config
        self._client_id = client_id
        self._will = will
        self._listener = listener
        self._brokers = config.broker_list()
        self._broker = 0
        self._v5 = config.protocol != "3.1.1"
        self._state = ConnectionState.DISCONNECTED
        self._loop: asyncio.AbstractEventLoop | None = None
        self.last_error = ""
        self._client = self._make_client()

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def connected(self) -> bool:
        return self._state is ConnectionState.CONNECTED

    @property
    def v5(self) -> bool:
        return self._v5

    @property
    def protocol(self) -> str:
        return "5" if self._v5 else "3.1.1"

    @property
    def broker(self) -> str:
        host, port = self._brokers[self._broker]
        return f"{host}:{port}"

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._connect()

    async def stop(self, last_words: tuple[str, bytes] | None = None) -> None:
        """Say ``last_words`` (topic, payload; retained) if connected, then disconnect."""
        self._state = ConnectionState.STOPPING
        try:
            if last_words is not None and self._client.is_connected():
                info = self._client.publish(*last_words, qos=1, retain=True)
                await asyncio.to_thread(info.wait_for_publish, 1.0)
        except (RuntimeError, ValueError) as err:
            _logger.warning("offline status not sent: %s", err)
        finally:
            self._client.disconnect()
            self._client.loop_stop()
            self._state = ConnectionState.DISCONNECTED

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> int:
        """QoS 1; returns paho's message id, which ``published``/``refused`` will name."""
        info = self._client.publish(topic, payload, qos=1, retain=retain, properties=properties)
        return info.mid

    def subscribe(self, topic_filter: str) -> None:
        self._client.subscribe(topic_filter, qos=1)

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
        client.will_set(*self._will, qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _connect(self) -> None:
        host, port = self._brokers[self._broker]
        self._state = ConnectionState.CONNECTING
        # A clean start every time: the log, not the broker, remembers what is owed, and
        # a command queued while the gateway was away is stale by the time it is back.
        kwargs: dict[str, Any] = {"clean_start": True} if self._v5 else {}
        self._client.connect_async(host, port, self._config.keepalive, **kwargs)
        self._client.loop_start()
        _logger.info("mqtt uplink connecting to %s:%s (MQTT %s)", host, port, self.protocol)

    def _fall_back_to_311(self) -> None:
        _logger.warning("broker %s does not speak MQTT 5; using 3.1.1", self.broker)
        self._client.loop_stop()
        self._v5 = False
        self._client = self._make_client()
        self._listener.reset()
        self._connect()

    def _next_broker(self, client: mqtt.Client) -> None:
        if len(self._brokers) > 1:
            self._broker = (self._broker + 1) % len(self._brokers)
            # paho's public host setter refuses while its first connection is still being
            # retried; no socket is open when it calls us here, so the address may change.
            client._host, client._port = self._brokers[self._broker]

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
        if client is not self._client:
            return  # a late answer to the client a fallback replaced
        if reason.is_failure:
            self._loop.call_soon_threadsafe(self._listener.refused, mid, str(reason))
        else:
            self._loop.call_soon_threadsafe(self._listener.published, mid)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._listener.message, msg)

    # -- on the event loop -----------------------------------------------------------

    def _connect_failed(self) -> None:
        again = f"trying {self.broker} next" if len(self._brokers) > 1 else "retrying"
        error = f"cannot connect to the broker; {again}"
        if error != self.last_error:  # once per outage (and broker), not once per retry
            _logger.warning("mqtt uplink: %s", error)
        self.last_error = error

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
            _logger.error("mqtt uplink: %s; events stay in the log", self.last_error)
            return
        self._state = ConnectionState.CONNECTED
        self.last_error = ""
        self._listener.connected()

    def _disconnected(self, reason: ReasonCode) -> None:
        if self._state is ConnectionState.STOPPING:
            return
        if self._state is ConnectionState.CONNECTED:
            _logger.warning("mqtt uplink lost the broker (%s); events stay in the log", reason)
        self._state = ConnectionState.CONNECTING
