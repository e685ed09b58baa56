"""The console's reader of the durable event log: recent events kept in memory.

Another sink on the log (``gateway/sinks/base.py`` BatchSink) with a cursor of its own,
events only: each delivered batch is parsed, kept in a ring of the last ``size`` events
for the event-log page and handed to ``on_event`` (the live push). The ring is in memory:
after a restart the page starts with the events stored since the console last read, the
full history being the WMS's and the event file's. Delivering to memory cannot fail, so
the console holds no rows on disk for longer than one turn of the event loop.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from gateway.sinks.base import BatchSink
from gateway.storage.log import EVENTS, EventLog, StoredRecord

SINK = "console"


class EventHistory(BatchSink):
    name = SINK

    def __init__(
        self, log: EventLog, size: int, on_event: Callable[[dict[str, Any]], None]
    ) -> None:
        super().__init__(log.cursor(SINK, EVENTS))
        self._ring: deque[dict[str, Any]] = deque(maxlen=size)
        self._on_event = on_event

    async def deliver(self, records: Sequence[StoredRecord]) -> None:
        for record in records:
            event = json.loads(record.record)
            self._ring.append(event)
            self._on_event(event)

    def query(
        self,
        category: str = "",
        type_: str = "",
        text: str = "",
        before_seq: int | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Newest first. ``category``: ``alarm``, ``actuator``, ...; ``type_``: exact type;
        ``text``: a case-insensitive substring of the event's JSON; ``before_seq``: page."""
        found: list[dict[str, Any]] = []
        needle = text.lower()
        for event in reversed(self._ring):
            kind = str(event.get("type", ""))
            if category and kind.split(".", 1)[0] != category:
                continue
            if type_ and kind != type_:
                continue
            if before_seq is not None and int(event.get("seq", 0)) >= before_seq:
                continue
            if needle and needle not in json.dumps(event, ensure_ascii=False).lower():
                continue
            found.append(event)
            if len(found) >= limit:
                break
        return found

    def types(self) -> list[str]:
        return sorted({str(e.get("type", "")) for e in self._ring})
