"""Writes ``cellsafe-influxdb.json``, the InfluxDB 2 (Flux) twin of ``cellsafe.json``.

The layout (panels, their places, units, overrides, legends) has one source: the
Prometheus dashboard ``cellsafe.json`` beside this file. This script keeps it and swaps
every query for its Flux translation below, the datasource for Grafana's ``influxdb`` type
(Flux query language), and the variables for a ``bucket`` text box and Flux ``schema``
look-ups. A panel without a translation here stops the script with its id and title.

Run after changing either (``tests/test_timeseries.py`` checks that the committed file is
this script's output, and that every Flux query names only measurements, fields and tags
that the writer produces)::

    .venv/bin/python docs/grafana/influxdb.py
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "cellsafe.json"
TARGET = HERE / "cellsafe-influxdb.json"
DATASOURCE = {"type": "influxdb", "uid": "${datasource}"}
FROM = 'from(bucket: "${bucket}")\n  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)'
WHERE = "r.site =~ /^${site:regex}$/ and r.gateway =~ /^${gateway:regex}$/"
IN_ZONE = f"{WHERE} and r.zone =~ /^${{zone:regex}}$/"
LIMITS = (
    'r._field == "value" or r._field == "limit_low" or r._field == "limit_high"'
    ' or r._field == "limit_high_high"'
)


def _zone(quantity: str) -> str:
    """A quantity of the zones' thresholds (a regex of names) with its limits."""
    return (
        f"{FROM}\n"
        f'  |> filter(fn: (r) => r._measurement == "point" and r.quantity =~ /^({quantity})$/)\n'
        f"  |> filter(fn: (r) => {IN_ZONE})\n"
        f"  |> filter(fn: (r) => {LIMITS})\n"
        "  |> aggregateWindow(every: v.windowPeriod, fn: last, createEmpty: false)\n"
        '  |> keep(columns: ["_time", "_value", "_field", "zone", "point"])'
    )


def _health(*fields: str, by: str | None = None, counter: bool = False) -> str:
    """Health figures ``fields``, per poller or sink ``by``; a counter as its increase
    over each 5 minutes (``difference`` of the last value of each window; a restart,
    which zeroes the counter, leaves a gap rather than a negative step)."""
    wanted = " or ".join(f'r._field == "{f}"' for f in fields)
    window = (
        "  |> aggregateWindow(every: 5m, fn: last, createEmpty: false)\n"
        "  |> difference(nonNegative: true)\n"
        if counter
        else "  |> aggregateWindow(every: v.windowPeriod, fn: last, createEmpty: false)\n"
    )
    columns = ", ".join(f'"{c}"' for c in ("_time", "_value", "_field", *([by] if by else [])))
    return (
        f"{FROM}\n"
        f'  |> filter(fn: (r) => r._measurement == "health" and ({wanted}))\n'
        f"  |> filter(fn: (r) => {WHERE})\n"
        f"{window}"
        f"  |> keep(columns: [{columns}])"
    )


# panel id (in cellsafe.json) -> its Flux queries, by refId
PANELS: dict[int, dict[str, str]] = {
    1: {"A": _zone("temperature")},
    2: {"A": _zone("humidity")},
    3: {"A": _zone("h2|co|hf|voc")},
    4: {"A": _zone("smoke")},
    5: {
        "A": f"{FROM}\n"
        '  |> filter(fn: (r) => r._measurement == "relay" and r._field == "state")\n'
        f"  |> filter(fn: (r) => {WHERE})\n"
        "  |> aggregateWindow(every: v.windowPeriod, fn: last, createEmpty: false)\n"
        '  |> keep(columns: ["_time", "_value", "_field", "relay"])'
    },
    6: {
        "A": f"{FROM}\n"
        '  |> filter(fn: (r) => r._measurement == "point" and r._field == "quality")\n'
        f"  |> filter(fn: (r) => {IN_ZONE})\n"
        '  |> group(columns: ["zone", "point"])\n'
        "  |> aggregateWindow(every: v.windowPeriod, fn: min, createEmpty: false)"
    },
    7: {"A": _health("poll_latency", by="poller")},
    8: {"A": _health("poll_overruns", "poll_failures", "poll_bad", by="poller", counter=True)},
    9: {"A": _health("sink_backlog", by="sink")},
    10: {"A": _health("sink_lag", by="sink")},
    11: {"A": _health("outbox")},
    12: {"A": _health("log_rows", "log_held", "telemetry_dropped")},
}

# annotation name -> its Flux query: the event's message as the annotation's text
ANNOTATIONS: dict[str, str] = {
    "Alarms": f"{FROM}\n"
    '  |> filter(fn: (r) => r._measurement == "annotation" and r.category == "alarm")\n'
    f"  |> filter(fn: (r) => {IN_ZONE})\n"
    '  |> filter(fn: (r) => r._field == "text")\n'
    '  |> keep(columns: ["_time", "_value", "type", "alarm", "zone", "priority", "level"])\n'
    '  |> rename(columns: {_value: "text"})',
    "Relays": f"{FROM}\n"
    '  |> filter(fn: (r) => r._measurement == "annotation" and r.category == "actuator")\n'
    f"  |> filter(fn: (r) => {WHERE})\n"
    '  |> filter(fn: (r) => r._field == "text")\n'
    '  |> keep(columns: ["_time", "_value", "type", "relay"])\n'
    '  |> rename(columns: {_value: "text"})',
}

_SCHEMA = 'import "influxdata/influxdb/schema"\n\n'
# variable -> the Flux that lists its values
VARIABLES: dict[str, str] = {
    "site": f"{_SCHEMA}schema.tagValues(\n"
    '  bucket: "${bucket}", tag: "site",\n'
    '  predicate: (r) => r._measurement == "point",\n'
    "  start: v.timeRangeStart, stop: v.timeRangeStop,\n)",
    "gateway": f"{_SCHEMA}schema.tagValues(\n"
    '  bucket: "${bucket}", tag: "gateway",\n'
    '  predicate: (r) => r._measurement == "point" and r.site =~ /^${site:regex}$/,\n'
    "  start: v.timeRangeStart, stop: v.timeRangeStop,\n)",
    "zone": f"{_SCHEMA}schema.tagValues(\n"
    '  bucket: "${bucket}", tag: "zone",\n'
    f'  predicate: (r) => r._measurement == "point" and {WHERE},\n'
    "  start: v.timeRangeStart, stop: v.timeRangeStop,\n)",
}

BUCKET = {
    "name": "bucket",
    "label": "Bucket",
    "type": "textbox",
    "query": "cellsafe",
    "current": {"selected": False, "text": "cellsafe", "value": "cellsafe"},
    "options": [{"selected": True, "text": "cellsafe", "value": "cellsafe"}],
    "hide": 0,
}


def dashboard(source: dict[str, Any]) -> dict[str, Any]:
    """The Flux dashboard made from the Prometheus one ``source`` (left as it is).

    Raises KeyError naming a panel, annotation or variable that has no translation."""
    out = copy.deepcopy(source)
    out["uid"] = "cellsafe-gateway-influxdb"
    out["title"] = "CellSafe Gateway (InfluxDB 2)"
    out["description"] = (
        "Zones, alarms, relays and the gateway's health, as written by the CellSafe"
        " time-series sink (docs/timeseries.md). Datasource: InfluxDB 2, Flux."
        " Generated from cellsafe.json by influxdb.py."
    )
    for annotation in out["annotations"]["list"]:
        if annotation.get("builtIn"):
            continue
        name = annotation["name"]
        if name not in ANNOTATIONS:
            raise KeyError(f"annotation {name!r} has no Flux query in {Path(__file__).name}")
        kept = ("name", "enable", "iconColor")
        for key in list(annotation):
            if key not in kept:
                del annotation[key]
        annotation["datasource"] = DATASOURCE
        annotation["target"] = {"refId": "Anno", "query": ANNOTATIONS[name]}
    variables = [BUCKET]
    for variable in out["templating"]["list"]:
        if variable["type"] == "datasource":
            variable["query"] = "influxdb"
            variable["current"] = {  # provisioning/datasources/cellsafe-influxdb.yaml
                "selected": False,
                "text": "CellSafe InfluxDB",
                "value": "cellsafe-influxdb",
            }
        elif variable["type"] == "query":
            name = variable["name"]
            if name not in VARIABLES:
                raise KeyError(f"variable {name!r} has no Flux query in {Path(__file__).name}")
            variable["datasource"] = DATASOURCE
            variable["query"] = variable["definition"] = VARIABLES[name]
        variables.append(variable)
    out["templating"]["list"] = variables
    for panel in out["panels"]:
        queries = PANELS.get(panel["id"])
        if queries is None:
            raise KeyError(
                f"panel {panel['id']} ({panel['title']!r}) has no Flux query"
                f" in {Path(__file__).name}"
            )
        panel["datasource"] = DATASOURCE
        panel["targets"] = [
            {"refId": ref, "datasource": DATASOURCE, "query": query}
            for ref, query in queries.items()
        ]
    return out


def render() -> str:
    """The text of ``cellsafe-influxdb.json`` as this script writes it."""
    source = json.loads(SOURCE.read_text())
    return json.dumps(dashboard(source), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    TARGET.write_text(render())
    sys.stdout.write(f"wrote {TARGET}\n")
