from __future__ import annotations

import json
from pathlib import Path

from gateway.storage.outbox import Outbox
from vocab.events import Event

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
        first, second = (json.loads(s.payload) for s in stored)
        assert first["event_id"] != second["event_id"]
        assert first["seq"] == 1
        assert first["type"] == "alarm.raised"
        assert first["site"] == "plant-a"
        assert first["ts"] == "1970-01-01T00:00:00.000Z"
        assert [s.channel for s in stored] == ["events/alarm", "events/actuator"]


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
        outbox.ack([s.row for s in outbox.pending()])
        outbox.emit([Event("alarm.cleared", {})])
    with Outbox.open(path, SOURCE) as outbox:
        assert outbox.last_seq == 4
        assert [s.seq for s in outbox.pending()] == [4]
        assert [s.seq for s in outbox.emit([Event("alarm.raised", {})])] == [5]


def test_state_is_stored_with_the_events(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox.open(path, SOURCE) as outbox:
        outbox.emit([Event("alarm.raised", {})], {"alarm:a": {"acked": False}})
        outbox.emit([], {"alarm:a": {"acked": True}, "other": 1})
    with Outbox.open(path, SOURCE) as outbox:
        assert outbox.load_state("alarm:") == {"a": {"acked": True}}


def test_telemetry_takes_no_event_number_and_goes_first_under_the_quota(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "o.db", SOURCE) as outbox:
        outbox.emit_telemetry({"sensors": {"points": {"t": 1}}})
        outbox.emit([Event("alarm.raised", {})])
        for i in range(20):
            outbox.emit_telemetry({"sensors": {"points": {"t": i, "pad": "x" * 100}}})
        outbox.emit([Event("alarm.cleared", {})])
        channels = [s.channel for s in outbox.pending()]
        assert channels[0] == "telemetry/sensors" and channels.count("events/alarm") == 2
        assert [s.seq for s in outbox.pending() if s.seq is not None] == [1, 2]

        events_only = sum(len(s.payload) for s in outbox.pending() if not s.is_telemetry)
        dropped = outbox.enforce_quota(events_only + 300)
        left = outbox.pending()
        assert dropped > 0
        assert outbox.size() <= events_only + 300
        assert [s.seq for s in left if s.seq is not None] == [1, 2]  # events are all there
        newest = json.loads(left[-2].payload)
        assert newest["points"]["t"] == 19  # the oldest telemetry went, the newest stayed

        assert outbox.enforce_quota(0) > 0
        assert [s.seq for s in outbox.pending()] == [1, 2]  # never an event, whatever the quota


def test_listeners_hear_each_append(tmp_path: Path) -> None:
    calls: list[int] = []
    with Outbox.open(tmp_path / "o.db", SOURCE) as outbox:
        outbox.subscribe(lambda: calls.append(outbox.last_seq))
        outbox.emit([Event("alarm.raised", {})])
        outbox.emit([])
        outbox.emit([Event("alarm.raised", {}), Event("alarm.raised", {})])
    assert calls == [1, 3]


def test_events_wait_for_the_disk_and_telemetry_does_not(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "o.db", SOURCE) as outbox:
        levels = []
        for store in (
            lambda: outbox.emit_telemetry({"sensors": {"points": {}}}),
            lambda: outbox.emit([Event("alarm.raised", {})]),
            lambda: outbox.ack([1]),
        ):
            store()
            (level,) = outbox._db.execute("PRAGMA synchronous").fetchone()
            levels.append(level)
        assert levels == [1, 2, 1]  # NORMAL, FULL, NORMAL


def test_only_events_wake_listeners_that_ask_for_events(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "o.db", SOURCE) as outbox:
        every: list[int] = []
        events: list[int] = []
        outbox.subscribe(lambda: every.append(1))
        outbox.subscribe(lambda: events.append(1), events_only=True)
        outbox.emit_telemetry({"sensors": {"points": {}}})
        outbox.emit([Event("alarm.raised", {})])
        assert (len(every), len(events)) == (2, 1)
