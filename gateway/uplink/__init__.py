"""The WMS uplink: the MQTT sink of the event log, its presence and its commands."""

from gateway.uplink.mqtt import MqttUplink
from gateway.uplink.session import ConnectionState
from gateway.uplink.topics import Topics

__all__ = ["ConnectionState", "MqttUplink", "Topics"]
