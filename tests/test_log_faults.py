"""The event log on a disk that fills up, turns unwritable or is damaged."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.storage.log import EVERYTHING, EventLog
from vocab.events import Event

SOURCE = {"site": "plant-a", "gateway": "gw-01"}


def fill_up(log: EventLog) -> None:
    """The database may not grow by a single page: SQLite's 'database or disk is full'."""
    (pages,) = log._db.execute("PRAGMA page_count").fetchone()
    log._db.execute(f"PRAGMA max_page_count = {pages}")


def seqs(log: EventLog) -> list[int | None]:
    return [r.seq for r in log.read(0, EVERYTHING, 1000)]


def test_a_full_disk_holds_events_in_order_drops_telemetry_and_resumes(tmp_path: Path) -> None:
    heard: list[str | None] = []
    with EventLog.open(tmp_path / "log.db", SOURCE) as log:
        mqtt = log.cursor("mqtt")
        log.watch(heard.append)
        log.emit([Event("alarm.raised", {})])
        fill_up(log)
        for n in range(30):  # each event needs room: the first one that does not fit fails
            log.emit([Event("alarm.raised", {"pad": "x" * 2000, "n": n})], {"alarm:a": n})
        assert log.fault is not None and "full" in log.fault
        assert heard == [None, log.fault]  # said once, not once per write
        held = log.held
        assert held > 0
        assert log.emit_telemetry({"sensors": {"points": {}}}) == []  # dropped first
        mqtt.ack(r.row for r in mqtt.read(100))  # a cursor move is kept in memory
        assert log.load_state("alarm:") == {"a": 29}  # the newest state, held or not
        assert not log.heal()  # still full

        log._db.execute("PRAGMA max_page_count = 1073741823")
        assert log.heal()
        assert log.fault is None and log.held == 0 and heard[-1] is None
        assert log.last_seq == 31
    with EventLog.open(tmp_path / "log.db", SOURCE) as log:  # and it is all on disk
        got = [r for r in log.read(0, EVERYTHING, 1000)]
        assert [r.seq for r in got] == list(range(32 - len(got), 32))
        assert [json.loads(r.record)["n"] for r in got[-held:]] == list(range(30 - held, 30))
        assert log.load_state("alarm:") == {"a": 29}


def test_a_damaged_file_is_set_aside_and_a_new_log_numbers_on(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    with EventLog.open(path, SOURCE) as log:
        log.cursor("mqtt")
        log.emit([Event("alarm.raised", {}) for _ in range(4)])
    raw = bytearray(path.read_bytes())
    raw[:16] = b"not a database!!"  # the header SQLite checks first
    path.write_bytes(bytes(raw))
    heard: list[str | None] = []
    with EventLog.open(path, SOURCE) as log:
        log.cursor("mqtt")
        log.watch(heard.append)
        assert log.fault is None
        assert [s.seq for s in log.emit([Event("alarm.raised", {})])] == [1]
    # Said as a fault that is already over: raised and returned, shown until acknowledged.
    assert len(heard) == 2 and heard[1] is None
    assert heard[0] is not None and "damaged" in heard[0] and "starts again at seq 1" in heard[0]
    kept = list(tmp_path.glob("log.db.damaged-*"))
    assert len(kept) == 1 and kept[0].read_bytes()[:16] == b"not a database!!"


def test_a_log_that_cannot_be_opened_runs_in_memory_until_the_disk_takes_it(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the data directory should be")
    path = blocker / "log.db"
    heard: list[str | None] = []
    with EventLog.open(path, SOURCE) as log:
        mqtt = log.cursor("mqtt")
        log.watch(heard.append)
        assert log.fault is not None and heard == [log.fault]
        log.emit([Event("alarm.raised", {}), Event("alarm.cleared", {})])
        assert log.held == 2 and mqtt.read(10) == []  # nothing on disk to send yet
        assert not log.heal()

        blocker.unlink()
        assert log.heal()
        assert heard[-1] is None
        assert [r.seq for r in mqtt.read(10)] == [1, 2]
    assert path.exists()
