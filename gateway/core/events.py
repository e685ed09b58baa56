"""Events are what the gateway tells the world: alarms, relay actions, device changes.

An event is built by the rules or the actuators without an id or a sequence number;
the outbox assigns both when it stores the event, so numbering follows durable order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Event:
    """``type`` is ``"<category>.<what>"``, e.g. ``alarm.raised``; the category picks the topic."""

    type: str
    body: dict[str, Any]
    ts: float = field(default_factory=time.time)

    @property
    def category(self) -> str:
        return self.type.split(".", 1)[0]


class EventSink(Protocol):
    def emit(self, events: list[Event], /) -> object: ...


def alarm_event(
    *,
    raised: bool,
    alarm_id: str,
    level: str,
    message: str,
    ts: float,
    zone: str | None = None,
    point: str | None = None,
    value: float | None = None,
    limit: float | None = None,
    unit: str | None = None,
) -> Event:
    """One shape for every alarm, whether a limit, a sensor fault or an actuator fault."""
    return Event(
        "alarm.raised" if raised else "alarm.cleared",
        {
            "alarm": {
                "id": alarm_id,
                "state": "active" if raised else "normal",
                "level": level,
                "zone": zone,
                "point": point,
                "value": value,
                "limit": limit,
                "unit": unit,
                "message": message,
            }
        },
        ts,
    )
