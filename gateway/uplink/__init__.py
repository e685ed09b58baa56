"""The WMS uplink: MQTT publishing from the durable outbox."""

from gateway.uplink.mqtt import ConnectionState, MqttUplink
from gateway.uplink.topics import Topics

__all__ = ["ConnectionState", "MqttUplink", "Topics"]
