"""Two sinks on one log: each on its own cursor, neither holding the other back."""

from __future__ import annotations

import asyncio
import json
import tomllib
from pathlib import Path

import pytest

from gateway.config.settings import EventFileSection
from gateway.sinks.file import EventFileSink
from gateway.storage.log import EventLog
from simulators.mosquitto import MosquittoBroker
from tests.conftest import Lab
from tests.lab import hot_zone, lab_config, outbox_rows, wait_until, write_config
from tests.test_end_to_end import HOT_ZONE_STORY as STORY
from vocab.events import Event

SOURCE = {"site": "plant-a", "gateway": "gw-01"}


def lines(path: Path) -> list[dict[str, object]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


async def deliver(config: EventFileSection, log: EventLog, n: int) -> None:
    """``n`` events into ``log``, and the file sink running until it has them all."""
    async with EventFileSink(config, log):
        log.emit([Event("alarm.raised", {}) for _ in range(n)])
        while log.lag("file").backlog:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def test_the_event_file_repeats_nothing_after_a_crash_and_cuts_a_torn_line(
    tmp_path: Path,
) -> None:
    target = tmp_path / "events.jsonl"
    config = EventFileSection(path=target)

    with EventLog.open(tmp_path / "log.db", SOURCE) as log:
        asyncio.run(deliver(config, log, 3))
    # A crash after the write and before the acknowledgement: the rows come again...
    with EventLog.open(tmp_path / "log.db", SOURCE) as log:
        log._db.execute("UPDATE cursors SET row = 0")
    # ...and a crash in mid-write left half a line.
    with target.open("ab") as torn:
        torn.write(b'{"seq":4,"ty')
    with EventLog.open(tmp_path / "log.db", SOURCE) as log:
        asyncio.run(deliver(config, log, 2))
    assert [e["seq"] for e in lines(target)] == [1, 2, 3, 4, 5]


def test_a_new_log_numbering_from_1_again_loses_nothing_in_the_event_file(
    tmp_path: Path,
) -> None:
    target = tmp_path / "events.jsonl"
    config = EventFileSection(path=target)

    with EventLog.open(tmp_path / "first.db", SOURCE) as log:
        asyncio.run(deliver(config, log, 5))
    with EventLog.open(tmp_path / "second.db", SOURCE) as log:  # a new data directory
        asyncio.run(deliver(config, log, 3))
    assert [e["seq"] for e in lines(target)] == [1, 2, 3, 4, 5, 1, 2, 3]


@pytest.mark.integration
def test_one_sink_stopped_the_other_delivers_and_both_end_with_every_event(
    tmp_path: Path, broker: MosquittoBroker, lab: Lab
) -> None:
    state = tmp_path / "state"
    archive = tmp_path / "archive"
    archive.write_text("a file where the sink wants a directory: it cannot write")
    target = archive / "events.jsonl"
    sim = lab.sim(hot_zone(), 3.0)
    wms = lab.wms(broker.port)
    data = tomllib.loads(
        lab_config(tmp_path, sim.port, broker.port, off_delay=2.0, rate_of_rise=100.0).read_text()
    )
    data["event_file"] = {"path": str(target)}
    config = write_config(tmp_path, data)

    # The file sink is down: MQTT delivers regardless.
    first = lab.gateway(config)
    wms.wait_for(3, timeout=60)
    assert [e["seq"] for e in wms.snapshot()][:3] == [1, 2, 3]
    assert lines(target) == []
    first.kill()  # kill -9 while the file sink is behind

    # Now the broker is down and the file sink works: it catches up, MQTT waits.
    broker.stop()
    archive.unlink()
    second = lab.gateway(config)
    wait_until(lambda: sim.warehouse.finished, 90, "the scenario to end")
    wait_until(lambda: len(lines(target)) >= 6, 30, "the event file to catch up")
    second.kill()  # kill -9 while MQTT is behind

    broker.start()
    third = lab.gateway(config)
    wait_until(lambda: outbox_rows(state)[0] == 0, 30, "both sinks to drain the log")
    last = outbox_rows(state)[1]
    assert last >= 6
    filed = lines(target)
    assert [e["seq"] for e in filed] == list(range(1, last + 1))  # in order, nothing twice
    assert [e["type"] for e in filed] == STORY  # a restart during the trip repeats nothing
    wait_until(
        lambda: {e["seq"] for e in wms.snapshot()} >= set(range(1, last + 1)),
        15,
        "every event at the WMS",
    )
    seen = [e["seq"] for e in wms.snapshot()]
    assert sorted(set(seen)) == list(range(1, last + 1))  # at least once over MQTT
    assert seen == sorted(seen)  # in order
    by_seq = {e["seq"]: e["event_id"] for e in wms.snapshot()}
    assert [by_seq[e["seq"]] for e in filed] == [e["event_id"] for e in filed]  # same events
    assert third.terminate() == 0
