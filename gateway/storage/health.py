"""The log's health, watched like any other point: its quota and its disk.

``LogQuota`` is read like a device (the ``Driver`` protocol, polled every
``POLL_INTERVAL`` seconds): each read lets the log retry a failing disk (``heal``), drops
the oldest telemetry beyond ``max_mb`` and returns one sample, ``gateway.outbox`` = the
share of the quota in use, in percent. A threshold on that point (``usage_threshold``)
raises ``gateway.outbox.high`` at ``warn_at`` and clears it ten points below, through the
same alarm lifecycle as any sensor; a log that cannot be measured gives a bad sample, and
so ``gateway.outbox.fault``.

With ``[mqtt] delivery = "wms"`` it also reports ``gateway.unconfirmed``, the age in
seconds of the oldest event the WMS has not confirmed; ``unconfirmed_threshold`` raises
``gateway.unconfirmed.high`` past ``confirm_within``.

A disk that does not take the log's writes (full, read-only, failing) raises
``gateway.storage.fault`` (``storage_condition``) at once and clears it when every held
event is on disk again.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Collection

from drivers.base import WriteError
from gateway.storage.log import EVENTS, EventLog
from rules.alarms import AlarmDefinition, ConditionChange
from rules.thresholds import LimitSpec, ThresholdSpec
from vocab.clock import steady
from vocab.ids import GATEWAY, gateway_alarm_id, point_id
from vocab.samples import Sample, Value

_logger = logging.getLogger(__name__)

KEY = "outbox"
POINT = point_id(GATEWAY, KEY)
POLL_INTERVAL = 5.0  # seconds
HYSTERESIS = 10.0  # percentage points below warn_at at which the alarm clears


UNCONFIRMED = point_id(GATEWAY, "unconfirmed")


class LogQuota:
    def __init__(self, log: EventLog, max_mb: float, confirmed_by: str | None = None) -> None:
        """``confirmed_by``: the sink whose oldest unconfirmed record is watched, if any."""
        self._log = log
        self._max_bytes = int(max_mb * 1024 * 1024)
        self._confirmed_by = confirmed_by
        self.points = [POINT] if confirmed_by is None else [POINT, UNCONFIRMED]
        self.dropped = 0  # telemetry records dropped over the quota since start

    async def read(self, keys: Collection[str] | None = None) -> list[Sample]:
        now, mono = time.time(), steady()
        try:
            self._log.heal()
            size = self._log.size()  # one SUM per read while the log fits
            dropped = self._log.enforce_quota(self._max_bytes) if size > self._max_bytes else 0
            if dropped:
                size = self._log.size()
        except sqlite3.Error as err:
            return [Sample.bad(POINT, now, mono, f"log unreadable: {err}")]
        if dropped:
            self.dropped += dropped
            _logger.warning("log over its quota: dropped the %d oldest telemetry", dropped)
        samples = [Sample.good(POINT, round(size / self._max_bytes * 100, 1), now, mono)]
        if self._confirmed_by is not None:
            # Events only: the WMS confirms events by seq, and telemetry after the last
            # event waits for the next one, so on a quiet site it would age for ever.
            age = self._log.lag(self._confirmed_by, EVENTS).oldest_age
            samples.append(Sample.good(UNCONFIRMED, round(age, 1), now, mono))
        return samples

    async def write(self, key: str, value: Value) -> None:
        raise WriteError("the log's usage is not writable")

    async def close(self) -> None:
        pass


def usage_threshold(warn_at: float) -> ThresholdSpec:
    """``warn_at`` is a share (0..1) of the quota; the alarm is high priority."""
    return ThresholdSpec(
        zone=GATEWAY,
        key=KEY,
        point=POINT,
        limits={
            "high": LimitSpec(limit=warn_at * 100, deadband=HYSTERESIS, priority="high"),
        },
        fault_delay=POLL_INTERVAL * 3,
        stale_after=POLL_INTERVAL * 6,
        unit="%",
    )


STORAGE_ALARM = AlarmDefinition(
    id=gateway_alarm_id("storage", "fault"), priority="high", level="fault"
)


def storage_condition(reason: str | None) -> ConditionChange:
    """The ``gateway.storage.fault`` condition for what ``EventLog.watch`` reports."""
    return ConditionChange(
        alarm_id=STORAGE_ALARM.id,
        active=reason is not None,
        ts=steady(),
        message=reason or "event log writable again: every held event is on disk",
    )


def unconfirmed_threshold(confirm_within: float) -> ThresholdSpec:
    """``confirm_within`` seconds: the oldest event the WMS has not confirmed may be this
    old before ``gateway.unconfirmed.high`` (high priority) is raised."""
    return ThresholdSpec(
        zone=GATEWAY,
        key="unconfirmed",
        point=UNCONFIRMED,
        limits={"high": LimitSpec(limit=confirm_within, priority="high")},
        fault_delay=POLL_INTERVAL * 3,
        stale_after=POLL_INTERVAL * 6,
        unit="s",
    )
