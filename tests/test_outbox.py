from __future__ import annotations

import json
from pathlib import Path

from gateway.core.events import Event
from gateway.storage.outbox import Outbox

SOURCE = {"site": "plant-a", "gateway": "gw-01"}


def test_events_get_ids_and_consecutive_sequence_numbers(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "o.db", SOURCE) as outbox:
        stored = outbox.emit(
            [
                Event("alarm.raised", {"alarm": {"id": "a"}}, ts=0.0),
                Event("actuator.switched", {"actuator": {"name": "fan"}}, ts=1.0),
            ]
        )
        assert [s.seq for s in stored] == [1, 2]
        assert len({s.event_id for s in stored}) == 2
        first = json.loads(stored[0].payload)
        assert first["seq"] == 1
        assert first["type"] == "alarm.raised"
        assert first["site"] == "plant-a"
        assert first["ts"] == "1970-01-01T00:00:00.000Z"
        assert stored[1].category == "actuator"


def test_pending_and_ack(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "o.db", SOURCE) as outbox:
        outbox.emit([Event("alarm.raised", {}) for _ in range(5)])
        assert [s.seq for s in outbox.pending(0, 3)] == [1, 2, 3]
        assert [s.seq for s in outbox.pending(3)] == [4, 5]
        outbox.ack([1, 2])
        assert [s.seq for s in outbox.pending()] == [3, 4, 5]
        assert outbox.count() == 3


def test_numbering_and_backlog_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox.open(path, SOURCE) as outbox:
        outbox.emit([Event("alarm.raised", {}) for _ in range(3)])
        outbox.ack([1, 2, 3])
        outbox.emit([Event("alarm.cleared", {})])
    with Outbox.open(path, SOURCE) as outbox:
        assert outbox.last_seq == 4
        assert [s.seq for s in outbox.pending()] == [4]
        assert [s.seq for s in outbox.emit([Event("alarm.raised", {})])] == [5]


def test_listeners_hear_each_append(tmp_path: Path) -> None:
    calls: list[int] = []
    with Outbox.open(tmp_path / "o.db", SOURCE) as outbox:
        outbox.subscribe(lambda: calls.append(outbox.last_seq))
        outbox.emit([Event("alarm.raised", {})])
        outbox.emit([])
        outbox.emit([Event("alarm.raised", {}), Event("alarm.raised", {})])
    assert calls == [1, 3]
