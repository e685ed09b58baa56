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
