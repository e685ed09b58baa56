"""The MQTT sink's delivery: the log, read through its cursor, to the broker, in order.

Up to ``window`` messages are in flight (QoS 1, pipelined). paho keeps every
unacknowledged message and re-sends it, in order, after a reconnect; so each row is
handed to the session once per process and acknowledged to the cursor only when the
broker's PUBACK arrives. After a restart the cursor starts at the first row that was not
acknowledged: delivery is at least once, and the event id and sequence number let the
receiver drop duplicates and see gaps.

With ``confirmed_by_wms`` (``[mqtt] delivery = "wms"``) the broker's acknowledgement only
moves the window: the rows stay on disk until the WMS confirms them (``confirm``, the
highest contiguous ``seq`` it has durably processed), every connection starts by sending
again everything unconfirmed, and the WMS may ask for a range again (``resend``). A broker
that crashes after acknowledging, and so forgets what it had not yet passed on, then costs
a resend, not an event.

The drain talks to a ``PublishSession``, not to paho: tests drive it with a fake one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.storage.log import Cursor, StoredRecord
from gateway.uplink.topics import Topics
from vocab.clock import steady

_logger = logging.getLogger(__name__)


class PublishSession(Protocol):
    @property
    def connected(self) -> bool: ...

    @property
    def v5(self) -> bool: ...

    def publish(
        self, topic: str, payload: bytes, *, retain: bool = False, properties: Properties | None
    ) -> int: ...


class Drain:
    def __init__(
        self,
        cursor: Cursor,
        session: PublishSession,
        topics: Topics,
        window: int,
        telemetry_expiry: float | None,
        retry_refused_after: float,
        confirmed_by_wms: bool = False,
    ) -> None:
        self.confirmed_by_wms = confirmed_by_wms
        self._cursor = cursor
        self._session = session
        self._topics = topics
        self._window = window
        self._expiry_s = telemetry_expiry
        self._retry_after = retry_refused_after
        self._inflight: dict[int, int] = {}  # session mid -> log row
        self._acked: list[int] = []
        self._lowest_refused: int | None = None
        self._idle = asyncio.Event()
        self.last_error = ""

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    def wake(self) -> None:
        self._cursor.wake.set()

    async def run(self) -> None:
        while True:
            await self._cursor.wait()
            self.fill()

    def fill(self) -> None:
        """Publish rows until the window is full or nothing is left."""
        while self._session.connected and len(self._inflight) < self._window:
            rows = self._cursor.read(self._window - len(self._inflight))
            if not rows:
                return
            for row in rows:
                stale, properties = self._expiry(row)
                if stale:
                    if not self.confirmed_by_wms:  # there, the watermark takes it off disk
                        self._acked.append(row.row)  # telemetry too old to matter: drop it
                        self._flush_soon()
                    continue
                mid = self._session.publish(
                    self._topics.record(row), row.record, properties=properties
                )
                self._inflight[mid] = row.row

    async def settle(self, within: float) -> bool:
        """Wait up to ``within`` seconds for the acknowledgements in flight."""
        if not self._session.connected or not self._inflight:
            return True
        self._idle.clear()
        try:
            await asyncio.wait_for(self._idle.wait(), within)
        except TimeoutError:
            return False
        return True

    # -- what the session reports --------------------------------------------------------

    def published(self, mid: int) -> None:
        row = self._inflight.pop(mid, None)
        if row is None:
            return  # a status, state or reply message, not a log row
        if self.confirmed_by_wms:
            if not self._inflight:
                self._idle.set()
            self.wake()  # the window has room again; the row waits for the WMS
            return
        self._acked.append(row)
        self._flush_soon()

    def connected(self) -> None:
        """A new connection: with WMS confirmation, everything unconfirmed goes again (the
        broker may have lost what it acknowledged, if it crashed)."""
        if self.confirmed_by_wms:
            self._cursor.rewind(self._cursor.committed + 1)
        self.wake()

    def confirm(self, upto: int) -> None:
        """The WMS has every event up to row ``upto``: they may leave the disk."""
        self._cursor.commit_upto(upto)

    def resend(self, row: int) -> None:
        """The WMS lacks what follows ``row`` - 1: offer it again from ``row``."""
        self._cursor.rewind(row)

    def refused(self, mid: int, reason: str) -> None:
        """An MQTT 5 broker answered but did not take the row (e.g. its ACL said no).

        The row stays in the log and is offered again after ``retry_refused_after``
        seconds: an event is never dropped because the broker is misconfigured, and the
        error shows in the status.
        """
        row = self._inflight.pop(mid, None)
        if row is None:
            return
        self.last_error = f"broker refused queued message {row}: {reason}"
        _logger.error("mqtt uplink: %s; it stays in the log", self.last_error)
        if not self._inflight:
            self._idle.set()
        if self._lowest_refused is None:
            asyncio.get_running_loop().call_later(self._retry_after, self._retry_refused)
        self._lowest_refused = min(row, self._lowest_refused or row)

    def reset(self) -> None:
        """The session's message ids are void: offer what was in flight again."""
        if self._inflight:
            self._cursor.rewind(min(self._inflight.values()))
            self._inflight.clear()

    # -- internals -----------------------------------------------------------------------

    def _retry_refused(self) -> None:
        if self._lowest_refused is not None:
            self._cursor.rewind(self._lowest_refused)
            self._lowest_refused = None

    def _expiry(self, row: StoredRecord) -> tuple[bool, Properties | None]:
        """(stale, MQTT 5 properties): telemetry carries what is left of its life."""
        if not row.is_telemetry or self._expiry_s is None:
            return False, None
        left = self._expiry_s - (steady() - row.stored_at)
        if left <= 0:
            return True, None
        if not self._session.v5:
            return False, None
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.MessageExpiryInterval = max(1, int(left))
        return False, properties

    def _flush_soon(self) -> None:
        if len(self._acked) == 1:
            # Acks arrive in bursts: move the cursor once per burst, not once per row.
            asyncio.get_running_loop().call_soon(self._flush_acks)

    def _flush_acks(self) -> None:
        rows, self._acked = self._acked, []
        self._cursor.ack(rows)
        if not self._inflight:
            self._idle.set()
        self.wake()
