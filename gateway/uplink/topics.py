"""The topic scheme: everything a gateway says lives under ``<prefix>/<site>/<gateway>/``."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.storage.log import StoredRecord


@dataclass(frozen=True, slots=True)
class Topics:
    prefix: str
    site: str
    gateway: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.site}/{self.gateway}"

    def record(self, record: StoredRecord) -> str:
        """Where a stored record goes: ``events/<category>`` or ``telemetry/<device>``."""
        if record.is_telemetry:
            return self.telemetry(record.source)
        return self.event(record.category)

    def telemetry(self, device: str) -> str:
        """Latest samples of one device, rate-limited, QoS 1, MQTT 5 message expiry."""
        return f"{self.base}/telemetry/{device}"

    def event(self, category: str) -> str:
        """Alarm, actuator, ... events: QoS 1, not retained, one message per event."""
        return f"{self.base}/events/{category}"

    @property
    def status(self) -> str:
        """Retained presence: ``online`` while connected, ``offline`` by will or on stop."""
        return f"{self.base}/state/status"

    def state(self, name: str) -> str:
        """Retained snapshots: ``alarms`` (annunciated alarms), ``relays``."""
        return f"{self.base}/state/{name}"

    def command(self, name: str) -> str:
        return f"{self.base}/commands/{name}"

    @property
    def commands(self) -> str:
        """The filter the gateway subscribes to."""
        return f"{self.base}/commands/+"

    def downlink(self, name: str) -> str:
        """Data the WMS keeps retained for this gateway, e.g. ``stock-master``."""
        return f"{self.base}/downlink/{name}"

    def reply(self, name: str) -> str:
        return f"{self.base}/replies/{name}"
