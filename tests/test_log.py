from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from gateway.storage.log import EVENTS, EVERYTHING, EventLog
from vocab.events import Event

SOURCE = {"site": "plant-a", "gateway": "gw-01"}


def test_events_get_ids_and_consecutive_sequence_numbers(tmp_path: Path) -> None:
    with EventLog.open(tmp_path / "o.db", SOURCE) as log:
        stored = log.emit(
            [
                Event("alarm.raised", {"alarm": {"id": "a"}}, ts=0.0),
                Event("actuator.switched", {"actuator": {"name": "fan"}}, ts=1.0),
            ]
        )
        assert [s.seq for s in stored] == [1, 2]
        first, second = (json.loads(s.record) for s in stored)
        assert first["event_id"] != second["event_id"]
        assert first["seq"] == 1
        assert first["type"] == "alarm.raised"
        assert first["site"] == "plant-a"
        assert first["ts"] == "1970-01-01T00:00:00.000Z"
        assert [s.category for s in stored] == ["alarm", "actuator"]


def test_read_and_ack(tmp_path: Path) -> None:
    with EventLog.open(tmp_path / "o.db", SOURCE) as log:
        mqtt = log.cursor("mqtt")
        log.emit([Event("alarm.raised", {}) for _ in range(5)])
        first = mqtt.read(3)
        assert [s.seq for s in first] == [1, 2, 3]
        assert [s.seq for s in mqtt.read(10)] == [4, 5]
        mqtt.ack([first[0].row, first[1].row])
        assert mqtt.committed == first[1].row
        assert log.count() == 3
        assert log.lag("mqtt").backlog == 3


def test_acks_out_of_order_move_the_cursor_only_past_contiguous_rows(tmp_path: Path) -> None:
    with EventLog.open(tmp_path / "o.db", SOURCE) as log:
        mqtt = log.cursor("mqtt")
        rows = [s.row for s in log.emit([Event("alarm.raised", {}) for _ in range(4)])]
        mqtt.read(10)
        mqtt.ack([rows[1], rows[2]])
        assert mqtt.committed == 0  # row 1 is still out: a restart must send it again
        mqtt.ack([rows[0]])
        assert mqtt.committed == rows[2]
        mqtt.rewind(rows[3])
        assert [s.row for s in mqtt.read(10)] == [rows[3]]


def test_numbering_backlog_and_positions_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with EventLog.open(path, SOURCE) as log:
        mqtt = log.cursor("mqtt")
        log.emit([Event("alarm.raised", {}) for _ in range(3)])
        mqtt.ack([s.row for s in mqtt.read(10)])
        log.emit([Event("alarm.cleared", {})])
    with EventLog.open(path, SOURCE) as log:
        mqtt = log.cursor("mqtt")
        assert log.last_seq == 4
        assert [s.seq for s in mqtt.read(10)] == [4]
        assert [s.seq for s in log.emit([Event("alarm.raised", {})])] == [5]


def test_a_row_leaves_the_disk_only_when_every_sink_wanting_it_has_it(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with EventLog.open(path, SOURCE) as log:
        mqtt = log.cursor("mqtt", EVERYTHING)
        archive = log.cursor("file", EVENTS)
        log.emit([Event("alarm.raised", {})])
        log.emit_telemetry({"sensors": {"points": {"t": 1}}})
        log.emit([Event("alarm.cleared", {})])
        assert [s.kind for s in archive.read(10)] == ["event", "event"]  # no telemetry
        mqtt.ack(s.row for s in mqtt.read(10))
        assert log.count() == 2  # the events wait for the file; the telemetry is gone
        assert log.lag("mqtt").backlog == 0 and log.lag("file").backlog == 2
        assert log.lag("file").oldest_age >= 0
    with EventLog.open(path, SOURCE) as log:  # the file sink is stopped for a while
        mqtt = log.cursor("mqtt", EVERYTHING)
        archive = log.cursor("file", EVENTS)
        log.emit([Event("alarm.raised", {})])
        assert [s.seq for s in mqtt.read(10)] == [3]  # mqtt goes on, held back by nobody
        assert [s.seq for s in archive.read(10)] == [1, 2, 3]  # the file catches up, in order


def test_a_sink_no_longer_configured_holds_nothing_back(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with EventLog.open(path, SOURCE) as log:
        log.cursor("mqtt")
        log.cursor("old")
        log.emit([Event("alarm.raised", {})])
    with EventLog.open(path, SOURCE) as log:
        mqtt = log.cursor("mqtt")
        assert log.forget_other_sinks() == ["old"]
        mqtt.ack(s.row for s in mqtt.read(10))
        assert log.count() == 0


def test_a_version_1_outbox_is_carried_over_for_its_sinks(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE outbox (row INTEGER PRIMARY KEY AUTOINCREMENT, seq INTEGER UNIQUE,
                channel TEXT NOT NULL, payload BLOB NOT NULL, stored_at REAL NOT NULL);
            CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
            INSERT INTO counters VALUES ('last_seq', 7);
            INSERT INTO outbox VALUES (3, 7, 'events/alarm', '{"seq":7,"type":"alarm.raised"}', 1);
            INSERT INTO outbox VALUES (4, NULL, 'telemetry/sensors', '{"points":{}}', 2);
            PRAGMA user_version = 1;
            """
        )
    with EventLog.open(path, SOURCE) as log:
        mqtt = log.cursor("mqtt")
        rows = mqtt.read(10)
        assert [(r.seq, r.type, r.source) for r in rows] == [
            (7, "alarm.raised", ""),
            (None, "telemetry", "sensors"),
        ]
        assert [s.seq for s in log.emit([Event("alarm.cleared", {})])] == [8]


def test_state_is_stored_with_the_events(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with EventLog.open(path, SOURCE) as log:
        log.emit([Event("alarm.raised", {})], {"alarm:a": {"acked": False}})
        log.emit([], {"alarm:a": {"acked": True}, "other": 1})
    with EventLog.open(path, SOURCE) as log:
        assert log.load_state("alarm:") == {"a": {"acked": True}}


def test_telemetry_takes_no_event_number_and_goes_first_under_the_quota(tmp_path: Path) -> None:
    with EventLog.open(tmp_path / "o.db", SOURCE) as log:
        log.cursor("mqtt")

        def pending() -> list[tuple[str, int | None, bytes]]:
            return [(s.kind, s.seq, s.record) for s in log.read(0, EVERYTHING, 1000)]

        log.emit_telemetry({"sensors": {"points": {"t": 1}}})
        log.emit([Event("alarm.raised", {})])
        for i in range(20):
            log.emit_telemetry({"sensors": {"points": {"t": i, "pad": "x" * 100}}})
        log.emit([Event("alarm.cleared", {})])
        kinds = [k for k, _, _ in pending()]
        assert kinds[0] == "telemetry" and kinds.count("event") == 2
        assert [s for _, s, _ in pending() if s is not None] == [1, 2]

        events_only = sum(len(r) for k, _, r in pending() if k == "event")
        dropped = log.enforce_quota(events_only + 300)
        left = pending()
        assert dropped > 0
        assert log.size() <= events_only + 300
        assert [s for _, s, _ in left if s is not None] == [1, 2]  # events are all there
        newest = json.loads(left[-2][2])
        assert newest["points"]["t"] == 19  # the oldest telemetry went, the newest stayed

        assert log.enforce_quota(0) > 0
        assert [s for _, s, _ in pending()] == [1, 2]  # never an event, whatever the quota


def test_telemetry_is_not_stored_when_no_sink_wants_it(tmp_path: Path) -> None:
    with EventLog.open(tmp_path / "o.db", SOURCE) as log:
        log.cursor("file", EVENTS)
        assert log.emit_telemetry({"sensors": {"points": {"t": 1}}}) == []
        assert log.count() == 0


def test_listeners_hear_each_append(tmp_path: Path) -> None:
    calls: list[int] = []
    with EventLog.open(tmp_path / "o.db", SOURCE) as log:
        log.subscribe(lambda: calls.append(log.last_seq))
        log.emit([Event("alarm.raised", {})])
        log.emit([])
        log.emit([Event("alarm.raised", {}), Event("alarm.raised", {})])
    assert calls == [1, 3]


def test_events_wait_for_the_disk_and_telemetry_does_not(tmp_path: Path) -> None:
    with EventLog.open(tmp_path / "o.db", SOURCE) as log:
        mqtt = log.cursor("mqtt")
        levels = []
        for store in (
            lambda: log.emit_telemetry({"sensors": {"points": {}}}),
            lambda: log.emit([Event("alarm.raised", {})]),
            lambda: mqtt.ack(s.row for s in mqtt.read(10)),
        ):
            store()
            (level,) = log._db.execute("PRAGMA synchronous").fetchone()
            levels.append(level)
        assert levels == [1, 2, 1]  # NORMAL, FULL, NORMAL


def test_only_events_wake_listeners_that_ask_for_events(tmp_path: Path) -> None:
    with EventLog.open(tmp_path / "o.db", SOURCE) as log:
        log.cursor("mqtt")
        every: list[int] = []
        events: list[int] = []
        log.subscribe(lambda: every.append(1))
        log.subscribe(lambda: events.append(1), events_only=True)
        log.emit_telemetry({"sensors": {"points": {}}})
        log.emit([Event("alarm.raised", {})])
        assert (len(every), len(events)) == (2, 1)
