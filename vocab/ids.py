"""Ids of points and alarms: one constructor and one parser per kind.

Every id is dotted text, stable across restarts, and appears on the wire (events, state,
telemetry), so the WMS contract depends on these shapes:

- point ``<device>.<key>``: one value of one device, e.g. ``zone-sensors.temperature``;
- zone alarm ``<zone>.<key>.<level>``: a threshold or input alarm, e.g.
  ``electrolyte-store.temperature.high``;
- relay fault ``actuator.<relay>.fault``: a relay that does not obey;
- device communication ``device.<device>.comm``: a device (relay module) that is lost;
- garbled reader ``device.<reader>.garbled``: a reader that sends only what cannot be
  decoded (wrong baud rate, parity or framing);
- gateway alarm ``gateway.<key>.<level>``: the gateway's own health, e.g. the outbox
  filling up;
- stock alarm ``stock.<key>.<level>``: a stock check, e.g. ``stock.putaway.misplaced``.

Device, zone, relay and key names match ``NAME_PATTERN`` (no dots), which is what makes
each id parse back unambiguously. The first part of an alarm id that is ``actuator``,
``device``, ``gateway`` or ``stock`` is reserved: no zone may take one of those names.
"""

from __future__ import annotations

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"

ACTUATOR = "actuator"
DEVICE = "device"
GATEWAY = "gateway"
STOCK = "stock"
RESERVED_NAMES: frozenset[str] = frozenset({ACTUATOR, DEVICE, GATEWAY, STOCK})


def point_id(device: str, key: str) -> str:
    return f"{device}.{key}"


def parse_point_id(point: str) -> tuple[str, str]:
    """``"<device>.<key>"`` -> ``(device, key)``; ``ValueError`` for any other shape."""
    device, dot, key = point.partition(".")
    if not dot or not device or not key or "." in key:
        raise ValueError(f"{point!r} is not a point id '<device>.<key>'")
    return device, key


def zone_alarm_id(zone: str, key: str, level: str) -> str:
    return f"{zone}.{key}.{level}"


def parse_alarm_id(alarm: str) -> tuple[str, str, str]:
    """Any alarm id -> ``(owner, key, level)``: for ``actuator.fan-1.fault`` that is
    ``("actuator", "fan-1", "fault")``. ``ValueError`` for any other shape."""
    parts = alarm.split(".")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"{alarm!r} is not an alarm id '<zone>.<key>.<level>'")
    return parts[0], parts[1], parts[2]


def relay_fault_id(relay: str) -> str:
    return f"{ACTUATOR}.{relay}.fault"


def device_comm_id(device: str) -> str:
    return f"{DEVICE}.{device}.comm"


def device_garbled_id(device: str) -> str:
    return f"{DEVICE}.{device}.garbled"


def gateway_alarm_id(key: str, level: str) -> str:
    return f"{GATEWAY}.{key}.{level}"


def stock_alarm_id(key: str, level: str) -> str:
    return f"{STOCK}.{key}.{level}"
