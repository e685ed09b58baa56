"""``LogQuota``: the share of the quota in use, after the drop, and the age of what the WMS
has not confirmed (``gateway.outbox`` and ``gateway.unconfirmed``)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from gateway.storage.health import POINT, UNCONFIRMED, LogQuota
from gateway.storage.log import EVENTS, EventLog
from vocab.events import Event
from vocab.samples import Sample

SOURCE = {"site": "plant-a", "gateway": "gw-01"}
SINK = "mqtt"


def values(samples: list[Sample]) -> dict[str, object]:
    return {s.point: s.value for s in samples}


def test_usage_is_measured_after_the_drop(tmp_path: Path) -> None:
    with EventLog.open(tmp_path / "log.db", SOURCE) as log:
        log.cursor(SINK)
        for n in range(200):
            log.emit_telemetry({"rack-1": {"n": n, "temperature": 21.5}})
        full = log.size()
        quota = LogQuota(log, max_mb=full / 2 / 1024 / 1024)
        under = values(asyncio.run(quota.read()))[POINT]
        assert quota.dropped > 0
        assert isinstance(under, float)
        assert 90.0 <= under <= 100.0  # measured on what is left, not on what was there
        assert under == round(log.size() / (full // 2) * 100, 1)

        roomy = LogQuota(log, max_mb=full * 4 / 1024 / 1024)
        assert values(asyncio.run(roomy.read()))[POINT] == round(log.size() / (full * 4) * 100, 1)
        assert roomy.dropped == 0


def test_unconfirmed_is_the_age_of_the_oldest_event_not_confirmed(tmp_path: Path) -> None:
    with EventLog.open(tmp_path / "log.db", SOURCE) as log:
        cursor = log.cursor(SINK, EVENTS)
        quota = LogQuota(log, 1.0, confirmed_by=SINK)
        assert quota.points == [POINT, UNCONFIRMED]
        assert values(asyncio.run(quota.read()))[UNCONFIRMED] == 0.0
        (stored,) = log.emit([Event("alarm.raised", {"alarm_id": "zone-a.temp.high"})])
        time.sleep(0.3)
        age = values(asyncio.run(quota.read()))[UNCONFIRMED]
        assert isinstance(age, float)
        assert age >= 0.3
        cursor.commit_upto(stored.row)
        assert values(asyncio.run(quota.read()))[UNCONFIRMED] == 0.0


def test_telemetry_after_the_last_confirmed_event_does_not_age_unconfirmed(
    tmp_path: Path,
) -> None:
    # The WMS confirms events by seq; telemetry stored after the last event cannot be
    # confirmed until another event comes, so a quiet site must not look unconfirmed.
    with EventLog.open(tmp_path / "log.db", SOURCE) as log:
        cursor = log.cursor(SINK)  # events and telemetry, as the MQTT uplink takes them
        quota = LogQuota(log, 1.0, confirmed_by=SINK)
        (stored,) = log.emit([Event("alarm.raised", {"alarm_id": "zone-a.temp.high"})])
        log.emit_telemetry({"rack-1": {"temperature": 21.5}})
        cursor.commit_upto(stored.row)
        time.sleep(0.3)
        assert values(asyncio.run(quota.read()))[UNCONFIRMED] == 0.0
        assert log.lag(SINK).backlog == 1  # the telemetry still waits on disk
