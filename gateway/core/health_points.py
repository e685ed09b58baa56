"""The gateway's health as points of the device ``gateway``, polled like any device.

``GatewayHealth`` is read like a driver (the ``Driver`` protocol) every ``POLL_INTERVAL``
seconds; its samples take the way every sample takes (rules, telemetry, the log), so a
time-series database receives them with the rest, and back-filled after an outage with
the backlog they describe.

A figure that belongs to one poller or one sink carries its name in its key, after a
double underscore: ``gateway.poll_latency__zone-sensors``. The figures, with their units:

- per poller (``gateway/core/poller.py`` ``PollStats``, counted since start):
  ``poll_latency`` (s, the last poll's duration), ``poll_overruns``, ``poll_failures``
  (reads that raised), ``poll_bad`` (polls with a bad-quality sample);
- per sink (``EventLog.sinks()``): ``sink_backlog`` (records not yet delivered),
  ``sink_lag`` (s, age of the oldest of them);
- the log: ``log_rows`` (records on disk), ``log_held`` (events waiting in memory for a
  refusing disk), ``telemetry_dropped`` (telemetry dropped by the quota since start).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence

from drivers.base import WriteError
from gateway.core.poller import Poller
from gateway.storage.health import LogQuota
from gateway.storage.log import EventLog
from vocab.clock import steady
from vocab.ids import GATEWAY, point_id
from vocab.samples import Sample, Value

HEALTH_POLLER = "gateway-health"  # the poller's name, in status and in its own figures
SEPARATOR = "__"
# The figures kept per poller or per sink, and the tag their subject goes in.
SUBJECT_TAGS = {"poll": "poller", "sink": "sink"}


def health_key(figure: str, subject: str | None = None) -> str:
    return figure if subject is None else f"{figure}{SEPARATOR}{subject}"


def parse_health_key(key: str) -> tuple[str, dict[str, str]]:
    """``"poll_latency__zone-sensors"`` -> ``("poll_latency", {"poller": "zone-sensors"})``;
    a key without a subject -> ``(key, {})``."""
    figure, separator, subject = key.partition(SEPARATOR)
    if not separator:
        return key, {}
    tag = SUBJECT_TAGS.get(figure.partition("_")[0], "subject")
    return figure, {tag: subject}


class GatewayHealth:
    """``pollers`` is asked at each read (the list is complete only once all are made)."""

    def __init__(
        self, pollers: Callable[[], Sequence[Poller]], log: EventLog, quota: LogQuota
    ) -> None:
        self._pollers = pollers
        self._log = log
        self._quota = quota
        self.points: list[str] = []

    async def read(self, keys: Collection[str] | None = None) -> list[Sample]:
        now, mono = time.time(), steady()
        figures: list[tuple[str, float]] = []
        for poller in self._pollers():
            stats = poller.stats
            figures += [
                (health_key("poll_latency", poller.name), round(stats.last_duration, 6)),
                (health_key("poll_overruns", poller.name), stats.overruns),
                (health_key("poll_failures", poller.name), stats.failures),
                (health_key("poll_bad", poller.name), stats.bad_polls),
            ]
        for sink, lag in self._log.sinks().items():
            figures += [
                (health_key("sink_backlog", sink), lag.backlog),
                (health_key("sink_lag", sink), round(lag.oldest_age, 3)),
            ]
        figures += [
            ("log_rows", self._log.count()),
            ("log_held", self._log.held),
            ("telemetry_dropped", self._quota.dropped),
        ]
        self.points = [point_id(GATEWAY, key) for key, _ in figures]
        return [Sample.good(point_id(GATEWAY, key), value, now, mono) for key, value in figures]

    async def write(self, key: str, value: Value) -> None:
        raise WriteError("the gateway's health is not writable")

    async def close(self) -> None:
        pass
