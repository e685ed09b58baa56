"""The MQTT drain against a fake session: window, order, acks, refusals, a reset."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from paho.mqtt.properties import Properties

from gateway.storage.log import EventLog
from gateway.uplink.drain import Drain
from gateway.uplink.topics import Topics
from vocab.events import Event

SOURCE = {"site": "plant-a", "gateway": "gw-01"}
TOPICS = Topics("cellsafe", "plant-a", "gw-01")


class FakeSession:
    def __init__(self) -> None:
        self.connected = True
        self.v5 = True
        self.sent: dict[int, tuple[str, int | None]] = {}  # mid -> (topic, seq)
        self._mid = 0

    def publish(
        self, topic: str, payload: bytes, *, retain: bool = False, properties: Properties | None
    ) -> int:
        self._mid += 1
        self.sent[self._mid] = (topic, json.loads(payload).get("seq"))
        return self._mid


def test_the_drain_keeps_its_window_acks_in_bursts_and_retries_refusals(tmp_path: Path) -> None:
    async def scenario(log: EventLog) -> None:
        session = FakeSession()
        drain = Drain(log.cursor("mqtt"), session, TOPICS, 3, None, 0.05)
        log.emit([Event("alarm.raised", {}) for _ in range(5)])
        drain.fill()
        assert [seq for _, seq in session.sent.values()] == [1, 2, 3]  # the window is full
        assert session.sent[1][0] == "cellsafe/plant-a/gw-01/events/alarm"
        drain.published(1)
        drain.refused(2, "Not authorized")
        drain.published(3)
        await asyncio.sleep(0)  # acks are flushed once per turn of the loop
        drain.fill()
        assert [seq for _, seq in session.sent.values()][3:] == [4, 5]
        assert log.lag("mqtt").backlog == 4  # seq 2 was refused: the cursor waits for it
        await asyncio.sleep(0.1)  # the refused row is offered again, and what follows it
        drain.fill()
        assert [seq for _, seq in session.sent.values()][5:] == [2]
        for mid in list(session.sent)[3:]:
            drain.published(mid)
        await asyncio.sleep(0)
        # Everything after the refused row is offered again (at least once): 3, 4, 5.
        assert log.lag("mqtt").backlog == 3
        drain.fill()
        assert [seq for _, seq in session.sent.values()][6:] == [3, 4, 5]
        for mid in list(session.sent)[6:]:
            drain.published(mid)
        await asyncio.sleep(0)
        assert log.lag("mqtt").backlog == 0 and log.count() == 0

    with EventLog.open(tmp_path / "log.db", SOURCE) as log:
        asyncio.run(scenario(log))


def test_a_reset_offers_what_was_in_flight_again_and_nothing_goes_while_offline(
    tmp_path: Path,
) -> None:
    async def scenario(log: EventLog) -> None:
        session = FakeSession()
        drain = Drain(log.cursor("mqtt"), session, TOPICS, 10, None, 1.0)
        log.emit([Event("alarm.raised", {}) for _ in range(3)])
        session.connected = False
        drain.fill()
        assert session.sent == {}
        session.connected = True
        drain.fill()
        drain.published(1)
        await asyncio.sleep(0)
        drain.reset()  # a new client: mids 2 and 3 mean nothing now
        drain.fill()
        assert [seq for _, seq in session.sent.values()] == [1, 2, 3, 2, 3]
        for mid in (4, 5):
            drain.published(mid)
        await asyncio.sleep(0)
        assert log.count() == 0

    with EventLog.open(tmp_path / "log.db", SOURCE) as log:
        asyncio.run(scenario(log))


def test_stale_telemetry_is_dropped_not_sent(tmp_path: Path) -> None:
    async def scenario(log: EventLog) -> None:
        session = FakeSession()
        drain = Drain(log.cursor("mqtt"), session, TOPICS, 10, 0.0001, 1.0)
        log.emit_telemetry({"sensors": {"points": {}}})
        await asyncio.sleep(0.01)
        drain.fill()
        await asyncio.sleep(0)
        assert session.sent == {} and log.count() == 0

    with EventLog.open(tmp_path / "log.db", SOURCE) as log:
        asyncio.run(scenario(log))


def test_with_wms_confirmation_a_puback_keeps_the_row_until_the_wms_confirms(
    tmp_path: Path,
) -> None:
    async def scenario(log: EventLog) -> None:
        session = FakeSession()
        drain = Drain(log.cursor("mqtt"), session, TOPICS, 10, None, 1.0, confirmed_by_wms=True)
        stored = log.emit([Event("alarm.raised", {}) for _ in range(4)])
        drain.fill()
        for mid in list(session.sent):
            drain.published(mid)
        await asyncio.sleep(0)
        assert log.count() == 4  # the broker has them; the WMS has not said so
        drain.confirm(stored[1].row)  # the WMS has 1 and 2
        assert log.count() == 2 and log.lag("mqtt").backlog == 2
        drain.connected()  # a new connection: what is unconfirmed goes again
        drain.fill()
        assert [seq for _, seq in session.sent.values()][4:] == [3, 4]
        drain.resend(stored[3].row)  # the WMS asks again from 4
        drain.fill()
        assert [seq for _, seq in session.sent.values()][6:] == [4]
        drain.confirm(stored[3].row)
        assert log.count() == 0

    with EventLog.open(tmp_path / "log.db", SOURCE) as log:
        asyncio.run(scenario(log))
