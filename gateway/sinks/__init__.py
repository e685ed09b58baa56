"""Sinks: the readers of the event log, each on its own cursor (Telegraf's outputs).

A sink is an async context that delivers what its cursor reads and acknowledges it; the
log keeps a row until every sink wanting its kind has it. The MQTT uplink
(``gateway/uplink``) is one; ``file.py`` writes events to a JSON-lines file;
``timeseries.py`` writes samples, health and annotations to InfluxDB 2 or VictoriaMetrics.
"""

from gateway.sinks.base import BatchSink, Sink

__all__ = ["BatchSink", "Sink"]
