"""Prometheus metrics, read from the gateway's own counters at scrape time.

Nothing is counted twice and the poll path does no metric work: a collector walks the
live objects when Prometheus asks. Off unless ``[metrics] listen`` is set.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.core.status import GatewayStatus

Snapshot = Callable[[], tuple[GatewayStatus, dict[str, int]]]


@contextlib.contextmanager
def serve_metrics(listen: str, snapshot: Snapshot) -> Iterator[None]:
    """``/metrics`` on ``host:port`` until the block ends; ``snapshot`` runs per scrape."""
    host, port = listen.rsplit(":", 1)
    registry = CollectorRegistry()
    registry.register(GatewayCollector(snapshot))
    server, thread = start_http_server(int(port), host, registry)
    try:
        yield
    finally:
        server.shutdown()
        thread.join(5)


class GatewayCollector(Collector):
    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        status, counters = self._snapshot()
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
        for device, stats in status["pollers"].items():
            polls.add_metric([device], stats["polls"])
            overruns.add_metric([device], stats["overruns"])
        yield polls
        yield overruns
