"""Prometheus metrics, read from the gateway's own counters at scrape time.

Nothing is counted twice and the poll path does no metric work: a collector walks the
live objects when Prometheus asks. Served by ``gateway/core/health.py`` on the event loop,
off unless ``[metrics] listen`` is set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.core.status import GatewayStatus

RelayCounts = dict[str, tuple[int, int]]  # relay: (verified, not verified)
Snapshot = Callable[[], tuple[GatewayStatus, dict[str, int], RelayCounts]]


def gateway_registry(snapshot: Snapshot) -> CollectorRegistry:
    """A registry of the gateway's collector alone (no process or platform collectors)."""
    registry = CollectorRegistry()
    registry.register(GatewayCollector(snapshot))
    return registry


class GatewayCollector(Collector):
    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        status, counters, relay_counts = self._snapshot()
        yield CounterMetricFamily(
            "cellsafe_alarms_raised", "Alarms raised by the process", value=counters["raised"]
        )
        yield CounterMetricFamily(
            "cellsafe_alarm_chattering",
            "Alarms flagged as chattering",
            value=counters["chattering"],
        )
        yield CounterMetricFamily(
            "cellsafe_alarm_floods", "Alarm floods started", value=counters["floods"]
        )
        yield GaugeMetricFamily(
            "cellsafe_alarm_flood_active",
            "1 while an alarm flood lasts",
            value=1 if status["flooding"] else 0,
        )
        annunciated = GaugeMetricFamily(
            "cellsafe_alarms", "Alarms not normal, by state", labels=["state"]
        )
        by_state: dict[str, int] = {}
        for alarm in status["alarms"]:
            by_state[alarm["state"]] = by_state.get(alarm["state"], 0) + 1
        for state, count in sorted(by_state.items()):
            annunciated.add_metric([state], count)
        yield annunciated
        yield GaugeMetricFamily(
            "cellsafe_outbox_backlog", "Records on disk, for any sink", value=status["outbox"]
        )
        yield GaugeMetricFamily(
            "cellsafe_log_held",
            "Events held in memory: the disk refuses writes",
            value=status["held"],
        )
        backlog = GaugeMetricFamily(
            "cellsafe_sink_backlog", "Records a sink has not delivered", labels=["sink"]
        )
        lag = GaugeMetricFamily(
            "cellsafe_sink_lag_seconds",
            "Age of the oldest record a sink has not delivered",
            labels=["sink"],
        )
        for name, sink in sorted(status["sinks"].items()):
            backlog.add_metric([name], sink["backlog"])
            lag.add_metric([name], sink["oldest_age"])
        yield backlog
        yield lag
        polls = CounterMetricFamily("cellsafe_polls", "Device polls", labels=["device"])
        overruns = CounterMetricFamily(
            "cellsafe_poll_overruns", "Polls that outlasted their period", labels=["device"]
        )
        errors = CounterMetricFamily(
            "cellsafe_poll_errors",
            "Polls with a bad-quality sample or a driver that raised",
            labels=["device"],
        )
        latency = GaugeMetricFamily(
            "cellsafe_poll_duration_seconds", "How long the last poll took", labels=["device"]
        )
        for device, stats in status["pollers"].items():
            polls.add_metric([device], stats["polls"])
            overruns.add_metric([device], stats["overruns"])
            errors.add_metric([device], stats["bad_polls"] + stats["failures"])
            latency.add_metric([device], stats["last_duration"])
        yield polls
        yield overruns
        yield errors
        yield latency
        yield from _lines(status)
        relays = GaugeMetricFamily(
            "cellsafe_relay_on", "1 while a relay is verified on, 0 off", labels=["relay"]
        )
        faulted = GaugeMetricFamily(
            "cellsafe_relay_faulted", "1 while a relay does not obey", labels=["relay"]
        )
        for name, relay in sorted(status["relays"].items()):
            if relay["state"] != "unknown":
                relays.add_metric([name], 1 if relay["state"] == "on" else 0)
            faulted.add_metric([name], 1 if relay["faulted"] else 0)
        yield relays
        yield faulted
        verifications = CounterMetricFamily(
            "cellsafe_relay_verifications",
            "Relay commands by outcome: verified by read-back and feedback, or not",
            labels=["relay", "outcome"],
        )
        for name, (verified, unverified) in sorted(relay_counts.items()):
            verifications.add_metric([name, "verified"], verified)
            verifications.add_metric([name, "failed"], unverified)
        yield verifications
        yield GaugeMetricFamily(
            "cellsafe_uplink_connected",
            "1 while the MQTT uplink is connected",
            value=1 if status["uplink"] == "connected" else 0,
        )


def _lines(status: GatewayStatus) -> Iterator[Metric]:
    """Shared Modbus lines: the load their polls ask for, and whether it is too much."""
    load = GaugeMetricFamily(
        "cellsafe_line_load",
        "Fraction of a shared line's time its polls ask for at their configured rate",
        labels=["line"],
    )
    overrun = GaugeMetricFamily(
        "cellsafe_line_overrun",
        "1 while a shared line cannot carry every configured poll",
        labels=["line"],
    )
    stretch = GaugeMetricFamily(
        "cellsafe_line_stretch",
        "How many times their configured interval the stretched polls on a line wait",
        labels=["line"],
    )
    for where, line in sorted(status.get("lines", {}).items()):
        load.add_metric([where], line["load"])
        overrun.add_metric([where], 1 if line["overrun"] else 0)
        stretch.add_metric([where], line["stretch"])
    yield load
    yield overrun
    yield stretch
