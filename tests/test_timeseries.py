"""The time-series sink: its line protocol, and writes to a real VictoriaMetrics through an
outage, read back with their original timestamps, exactly once."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import json
import re
import statistics
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from benchmarks import timeseries as timeseries_benchmark
from gateway.config import ConfigError, load_settings
from gateway.config.settings import GatewaySettings
from gateway.config.timeseries import TimeSeriesSection
from gateway.core.health_points import GatewayHealth, health_key, parse_health_key
from gateway.core.poller import Poller
from gateway.core.telemetry import Telemetry
from gateway.sinks.timeseries import SINK, LineProtocol, PointInfo, TimeSeriesSink, catalog
from gateway.storage.health import LogQuota
from gateway.storage.log import EventLog
from simulators.mosquitto import MosquittoBroker
from simulators.victoria import VictoriaMetrics
from tests.conftest import Lab
from tests.flux_names import FluxUnreadable, flux_names
from tests.lab import ROOT, hot_zone, http_app, lab_config, wait_until, write_config
from vocab.events import Event
from vocab.samples import Sample

SOURCE = {"site": "plant-a", "gateway": "gw-01"}
# An hour ago, to the second: back-filled points keep their own stamps (and the server
# drops what is older than its retention, a month by default).
T0 = float(int(time.time()) - 3600)


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    with VictoriaMetrics(tmp_path / "vm") as server:
        yield server


def samples(n: int, start: float, step: float = 0.5) -> list[list[Sample]]:
    """``n`` polls of a two-point device, ``step`` seconds apart from ``start``."""
    return [
        [
            Sample.good("zone-sensors.temperature", 20.0 + i / 10, start + i * step, 0.0),
            Sample.good("zone-sensors.humidity", 40.0 + i / 10, start + i * step, 0.0),
        ]
        for i in range(n)
    ]


def store(log: EventLog, polls: list[list[Sample]]) -> None:
    """Every poll into the log as the gateway does it, the interval below the poll period."""
    telemetry = Telemetry(log, interval=0.001, clock=iter(range(10**9)).__next__)
    for poll in polls:
        telemetry(poll)
        telemetry.flush()


def _split(text: str, separator: str) -> list[str]:
    """Split on ``separator`` where it is neither escaped nor inside a quoted string."""
    parts, current, quoted, escaped = [], "", False, False
    for char in text:
        if escaped:
            current, escaped = current + char, False
        elif char == "\\":
            current, escaped = current + char, True
        elif char == '"':
            current, quoted = current + char, not quoted
        elif char == separator and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def parse(line: str) -> tuple[str, dict[str, str], dict[str, str], int]:
    """One line of line protocol: measurement, tags, fields (as written), timestamp."""
    head, fields, ts = _split(line, " ")
    measurement, *tags = _split(head, ",")
    pairs = [_split(t, "=") for t in tags]
    values = [f.split("=", 1) for f in _split(fields, ",")]
    return measurement, {k: v for k, v in pairs}, {k: v for k, v in values}, int(ts)


def test_a_sample_becomes_one_point_with_its_zone_limits_and_millisecond_stamp(
    tmp_path: Path,
) -> None:
    points = {
        "zone-sensors.temperature": PointInfo(
            zone="electrolyte-store", quantity="temperature", unit="degC", limits={"high": 30.0}
        )
    }
    with EventLog.open(tmp_path / "log.db", SOURCE) as log:
        log.cursor(SINK)
        store(
            log,
            [
                [
                    Sample.good("zone-sensors.temperature", 21.5, T0 + 0.123, 0.0),
                    Sample.bad("zone-sensors.humidity", T0, 0.0, "timeout"),
                    Sample.good("relay-module.exhaust-fan", True, T0, 0.0),
                    Sample.good("panel.text", 'zone "A", ok', T0, 0.0),
                ]
            ],
        )
        lines = LineProtocol(points).lines(log.read(0, frozenset({"telemetry"}), 10))
    by_point = {re.findall(r",point=([^,]+)", line)[0]: line for line in lines}
    assert by_point["zone-sensors.temperature"] == (
        "point,device=zone-sensors,gateway=gw-01,key=temperature,point=zone-sensors.temperature,"
        "quantity=temperature,site=plant-a,unit=degC,zone=electrolyte-store"
        f" quality=1i,value=21.5,limit_high=30.0 {int(T0 * 1000) + 123}"
    )
    assert parse(by_point["zone-sensors.humidity"])[2] == {"quality": "0i"}  # no value
    assert parse(by_point["relay-module.exhaust-fan"])[2]["value"] == "1"
    assert by_point["panel.text"].endswith(f'quality=1i,text="zone \\"A\\", ok" {int(T0 * 1000)}')


def test_alarm_and_relay_events_become_annotations_and_relay_states(tmp_path: Path) -> None:
    alarm = {
        "id": "electrolyte-store.temperature.high",
        "zone": "electrolyte-store",
        "priority": "medium",
        "level": "high",
        "condition": True,
        "value": 30.4,
        "limit": 30.0,
        "message": "temperature high",
    }
    actuator = {"name": "exhaust-fan-1", "point": "relay-module.exhaust-fan", "state": "on"}
    with EventLog.open(tmp_path / "log.db", SOURCE) as log:
        log.emit(
            [
                Event("alarm.raised", {"alarm": alarm}, ts=T0),
                Event("actuator.switched", {"actuator": actuator}, ts=T0 + 1),
                Event("command.refused", {"command": {"name": "ack"}}, ts=T0 + 2),
            ]
        )
        lines = [parse(x) for x in LineProtocol().lines(log.read(0, frozenset({"event"}), 10))]
    ms = int(T0 * 1000)
    assert [(m, ts) for m, _, _, ts in lines] == [
        ("annotation", ms),
        ("relay", ms + 1000),
        ("annotation", ms + 1000),
    ]  # nothing for the command audit
    _, tags, fields, _ = lines[0]
    assert tags["alarm"] == alarm["id"] and tags["type"] == "alarm.raised"
    assert fields == {
        "event": "1",
        "active": "1",
        "value": "30.4",
        "limit": "30.0",
        "text": '"temperature high"',
    }
    assert lines[1][1]["relay"] == "exhaust-fan-1" and lines[1][2] == {"state": "1"}


def test_a_relay_that_never_switched_has_its_state_from_its_coil_samples(tmp_path: Path) -> None:
    points = {
        "relay-module.exhaust-fan": PointInfo(relay="exhaust-fan-1", relay_on=True),
        "relay-module.dilution-fan": PointInfo(relay="dilution-fan", relay_on=False),
    }
    with EventLog.open(tmp_path / "log.db", SOURCE) as log:
        log.cursor(SINK)
        store(
            log,
            [
                [
                    Sample.good("relay-module.exhaust-fan", False, T0, 0.0),
                    Sample.good("relay-module.dilution-fan", False, T0, 0.0),  # coil dropped
                ],
                [Sample.bad("relay-module.exhaust-fan", T0 + 1, 0.0, "timeout")],
            ],
        )
        lines = LineProtocol(points).lines(log.read(0, frozenset({"telemetry"}), 10))
    relays = [
        (tags["relay"], tags["point"], fields, ts)
        for m, tags, fields, ts in map(parse, lines)
        if m == "relay"
    ]
    assert sorted(relays) == [
        ("dilution-fan", "relay-module.dilution-fan", {"state": "1"}, int(T0 * 1000)),
        ("exhaust-fan-1", "relay-module.exhaust-fan", {"state": "0"}, int(T0 * 1000)),
    ]  # a bad read-back says nothing of the state


def test_the_catalog_names_each_relays_coil_and_its_trip(tmp_path: Path) -> None:
    settings = load_settings(lab_config(tmp_path, 1502, 1883))
    points = catalog(settings)
    for relay in settings.relays:
        info = points[f"{relay.device}.{relay.point}"]
        assert (info.relay, info.relay_on) == (relay.name, relay.coil(True))


def test_the_token_is_refused_in_the_file_and_taken_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tomllib.loads((ROOT / "config" / "example.toml").read_text())
    data["timeseries"] = {"url": "http://127.0.0.1:8428", "token": "s3cret"}
    with pytest.raises(ConfigError, match=r"timeseries\.token.*CELLSAFE_TIMESERIES__TOKEN"):
        load_settings(write_config(tmp_path, data))
    del data["timeseries"]["token"]
    monkeypatch.setenv("CELLSAFE_TIMESERIES__TOKEN", "s3cret")
    settings = load_settings(write_config(tmp_path, data))
    assert settings.timeseries.token is not None
    assert settings.timeseries.token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings) and "s3cret" not in settings.fingerprint()


def test_health_keys_name_their_poller_or_sink() -> None:
    assert parse_health_key(health_key("poll_latency", "zone-sensors")) == (
        "poll_latency",
        {"poller": "zone-sensors"},
    )
    assert parse_health_key(health_key("sink_lag", "mqtt")) == ("sink_lag", {"sink": "mqtt"})
    assert parse_health_key("outbox") == ("outbox", {})


def test_the_quota_counts_the_telemetry_it_drops(tmp_path: Path) -> None:
    with EventLog.open(tmp_path / "log.db", SOURCE) as log:
        log.cursor(SINK)
        store(log, samples(200, T0))
        quota = LogQuota(log, max_mb=log.size() / 2 / 1024 / 1024)
        asyncio.run(quota.read())
        assert 90 <= quota.dropped <= 110
        assert log.count() == 200 - quota.dropped


async def drain(log: EventLog) -> None:
    async with asyncio.timeout(15):
        while log.lag(SINK).backlog:  # noqa: ASYNC110  (the far end signals nothing)
            await asyncio.sleep(0.02)


def exported(server: VictoriaMetrics, series: str) -> dict[str, list[tuple[int, float]]]:
    """``point -> [(ms, value), ...]`` for ``series``, as the server holds them (values to
    six decimals: the server keeps about twelve significant digits)."""
    return {
        s["metric"]["point"]: [
            (ms, round(v, 6)) for ms, v in zip(s["timestamps"], s["values"], strict=True)
        ]
        for s in server.export(series)
    }


def test_a_batch_sent_twice_reads_back_once(tmp_path: Path, victoria: VictoriaMetrics) -> None:
    config = TimeSeriesSection(url=victoria.url)

    async def twice() -> None:
        with EventLog.open(tmp_path / "log.db", SOURCE) as log:
            sink = TimeSeriesSink(config, log)
            store(log, samples(50, T0))
            records = log.read(0, frozenset({"telemetry"}), 100)
            async with sink:
                await drain(log)
                await sink.deliver(records)  # the same batch again, as after a lost answer
            assert sink.written == 2 * 100

    asyncio.run(twice())
    found = exported(victoria, "point_value")
    assert set(found) == {"zone-sensors.temperature", "zone-sensors.humidity"}
    assert found["zone-sensors.temperature"] == [
        (int(T0 * 1000) + i * 500, round(20.0 + i / 10, 6)) for i in range(50)
    ]


def test_points_written_through_an_outage_come_back_once_with_their_own_stamps(
    tmp_path: Path, victoria: VictoriaMetrics
) -> None:
    config = TimeSeriesSection(url=victoria.url)
    before, during, after = samples(100, T0), samples(300, T0 + 50), samples(100, T0 + 200)

    async def run() -> None:
        with EventLog.open(tmp_path / "log.db", SOURCE) as log:
            sink = TimeSeriesSink(config, log)
            sink.retry_max = 0.2  # the default backs off to 30 s; the test waits less
            async with sink:
                store(log, before)
                await drain(log)
                victoria.stop()
                store(log, during)
                log.emit([Event("alarm.raised", {"alarm": {"id": "z.t.high"}}, ts=T0 + 60)])
                await asyncio.sleep(0.5)
                assert log.lag(SINK).backlog == 301  # waiting on disk
                assert sink.last_error
                await asyncio.to_thread(victoria.start)
                await drain(log)
                store(log, after)
                await drain(log)

    asyncio.run(run())
    found = exported(victoria, "point_value")
    expected = [  # the temperature of every poll, in order, each once
        (round(poll[0].ts * 1000), round(float(poll[0].value or 0), 6))
        for poll in before + during + after
    ]
    assert found["zone-sensors.temperature"] == expected
    assert len(found["zone-sensors.humidity"]) == 500
    (annotation,) = victoria.export("annotation_active")
    assert annotation["timestamps"] == [int((T0 + 60) * 1000)]


def schema_from_writer(lines: list[str]) -> dict[str, set[str]]:
    """``series -> labels`` as VictoriaMetrics names them: one series per measurement and
    numeric field (``<measurement>_<field>``), labelled with the line's tags."""
    found: dict[str, set[str]] = {}
    for line in lines:
        measurement, tags, fields, _ = parse(line)
        for name, value in fields.items():
            if not value.startswith('"'):  # string fields are not stored as series
                found.setdefault(f"{measurement}_{name}", set()).update(tags)
    return found


_SELECTOR = re.compile(r"\b([a-z_][a-z0-9_]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_LABEL_VALUES = re.compile(r"label_values\(\s*([a-z_][a-z0-9_]*)[^,]*,\s*([a-z_]+)\s*\)")


def series_and_labels(query: str) -> list[tuple[str, set[str]]]:
    """The series a PromQL query selects, each with the labels it names (matchers, and the
    ``by``/``without`` groupings of the whole query)."""
    grouped = {g.strip() for m in _GROUPING.finditer(query) for g in m.group(1).split(",")}
    found = [
        (m.group(1), {x.group(1) for x in _MATCHER.finditer(m.group(2))} | (grouped - {""}))
        for m in _SELECTOR.finditer(query)
    ]
    found += [(m.group(1), {m.group(2)}) for m in _LABEL_VALUES.finditer(query)]
    assert found, f"{query!r} names no series"
    return found


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    found = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", []) if "expr" in t]
    found += [a["expr"] for a in dashboard["annotations"]["list"] if "expr" in a]
    found += [v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return found


# An alarm event's body as rules/alarms.py makes it (the keys the writer reads).
ALARM = {
    "id": "electrolyte-store.temperature.high",
    "state": "unack",
    "condition": True,
    "priority": "medium",
    "level": "high",
    "zone": "electrolyte-store",
    "value": 31.0,
    "limit": 30.0,
    "message": "temperature high",
}


def writer_lines(tmp_path: Path) -> list[str]:
    """What the writer makes of the example configuration's points, the gateway's health
    and an alarm and a relay event: every measurement, field and tag it can produce."""
    settings: GatewaySettings = load_settings(ROOT / "config" / "example.toml")
    points = catalog(settings)
    with EventLog.open(tmp_path / "log.db", SOURCE) as log:
        log.cursor(SINK)
        quota = LogQuota(log, 1.0)
        pollers = [Poller("zone-sensors", quota, 1.0, [], lambda s: None)]
        health = asyncio.run(GatewayHealth(lambda: pollers, log, quota).read())
        polls = [
            [Sample.good(p, 1.0, T0, 0.0) for p in points if p.startswith("zone-sensors.")],
            health + asyncio.run(quota.read()),
        ]
        store(log, polls)
        log.emit(
            [
                Event("alarm.raised", {"alarm": ALARM}, ts=T0),
                Event("actuator.switched", {"actuator": {"name": "fan", "state": "on"}}, ts=T0),
            ]
        )
        records = log.read(0, frozenset({"event", "telemetry"}), 1000)
        return LineProtocol(points).lines(records)


def test_the_dashboard_names_only_what_the_writer_produces(tmp_path: Path) -> None:
    """Every series and label in the dashboard's queries is one that the writer produced
    from the example configuration's points, the gateway's health and the events."""
    schema = schema_from_writer(writer_lines(tmp_path))
    dashboard = json.loads((ROOT / "docs" / "grafana" / "cellsafe.json").read_text())
    queries = dashboard_queries(dashboard)
    assert len(queries) >= 6
    for query in queries:
        for series, labels in series_and_labels(query):
            assert series in schema, f"{query!r}: the writer produces no series {series!r}"
            unknown = labels - schema[series]
            assert not unknown, f"{query!r}: {series} has no labels {sorted(unknown)}"


def influx_schema(lines: list[str]) -> dict[str, tuple[set[str], set[str]]]:
    """``measurement -> (tags, fields)`` as InfluxDB 2 stores the writer's lines (string
    fields too)."""
    found: dict[str, tuple[set[str], set[str]]] = {}
    for line in lines:
        measurement, tags, fields, _ = parse(line)
        known_tags, known_fields = found.setdefault(measurement, (set(), set()))
        known_tags.update(tags)
        known_fields.update(fields)
    return found


def flux_queries(dashboard: dict[str, Any]) -> list[str]:
    """Every Flux query of the InfluxDB dashboard: panels, annotations, variables."""
    found = [t["query"] for p in dashboard["panels"] for t in p["targets"]]
    found += [a["target"]["query"] for a in dashboard["annotations"]["list"] if "target" in a]
    found += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return found


def unknown_to_writer(query: str, schema: dict[str, tuple[set[str], set[str]]]) -> list[str]:
    """What ``query`` names that the writer does not produce (empty: all of it is)."""
    names = flux_names(query)
    if len(names.measurements) != 1:
        return [f"names {len(names.measurements)} measurements, not one"]
    (measurement,) = names.measurements
    if measurement not in schema:
        return [f"no measurement {measurement!r}"]
    tags, fields = schema[measurement]
    return [f"{measurement} has no field {f!r}" for f in sorted(names.fields - fields)] + [
        f"{measurement} has no tag {t!r}" for t in sorted(names.tags - tags)
    ]


INFLUX_DASHBOARD = ROOT / "docs" / "grafana" / "cellsafe-influxdb.json"


def test_the_influxdb_dashboard_names_only_what_the_writer_produces(tmp_path: Path) -> None:
    """Every Flux query's measurement, fields and tags (filters, group, keep, rename) are
    ones the writer produced; a query the reader cannot read fails the test."""
    schema = influx_schema(writer_lines(tmp_path))
    dashboard = json.loads(INFLUX_DASHBOARD.read_text())
    queries = flux_queries(dashboard)
    assert len(queries) >= 15
    for query in queries:
        assert not unknown_to_writer(query, schema), query
    for panel in dashboard["panels"]:  # panels (not variables) name the fields they draw
        for target in panel["targets"]:
            names = flux_names(target["query"])
            assert names.fields, f"{panel['title']}: no _field filter"
            assert {"site", "gateway"} <= names.tags, f"{panel['title']}: not per site/gateway"
    sources = [p["datasource"] for p in dashboard["panels"]]
    sources += [t["datasource"] for p in dashboard["panels"] for t in p["targets"]]
    sources += [a["datasource"] for a in dashboard["annotations"]["list"] if "target" in a]
    assert {s["type"] for s in sources} == {"influxdb"}
    assert "expr" not in json.dumps(dashboard)  # no PromQL left behind
    docs = (ROOT / "docs" / "timeseries.md").read_text()
    shown = [b for b in re.findall(r"```flux\n(.*?)\n```", docs, re.DOTALL) if "${bucket}" in b]
    assert shown and all(b in queries for b in shown)  # the docs quote the dashboard


def test_the_dashboard_check_catches_a_wrong_name_and_refuses_what_it_cannot_read(
    tmp_path: Path,
) -> None:
    schema = influx_schema(writer_lines(tmp_path))
    head = 'from(bucket: "${bucket}")\n  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)'
    good = f'{head}\n  |> filter(fn: (r) => r._measurement == "health" and r._field == "sink_lag")'
    assert unknown_to_writer(good + '\n  |> keep(columns: ["_time", "sink"])', schema) == []
    wrong = {
        'r._measurement == "points"': "no measurement 'points'",
        'r._measurement == "health" and r._field == "sink_lags"': "no field 'sink_lags'",
        'r._measurement == "health" and r.sinks == "mqtt"': "no tag 'sinks'",
        "r._measurement =~ /^(health|relay)$/": "2 measurements",
    }
    for predicate, problem in wrong.items():
        query = f"{head}\n  |> filter(fn: (r) => {predicate})"
        assert problem in " ".join(unknown_to_writer(query, schema)), predicate
    grouped = good + '\n  |> group(columns: ["poler"])'
    assert unknown_to_writer(grouped, schema) == ["health has no tag 'poler'"]
    unreadable = [
        good + "\n  |> map(fn: (r) => ({r with zone: r.zon}))",  # an unknown stage
        good + '\n  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")',
        f'{head}\n  |> filter(fn: (r) => r["_measurement"] == "health")',  # r["..."] form
        f'{head}\n  |> filter(fn: (r) => r._measurement != "point")',  # names unknown
        f"{head}\n  |> filter(fn: (r) => r._field =~ /sink_.*/)",
        f'{head}\n  |> filter(fn: (r) => r._measurement == "point" and exists r.zone)',
        f'{head}\n  |> filter(fn: (r) => not r._measurement == "point")',
        f'{head}\n  |> keep(columns: ["_times"])',
        'from(bucket: "cellsafe")\n  |> range(start: -1h)',
        "SELECT value FROM point",
    ]
    for query in unreadable:
        with pytest.raises(FluxUnreadable):
            flux_names(query)


def test_the_influxdb_dashboard_is_the_generators_output_of_the_prometheus_layout() -> None:
    """``docs/grafana/influxdb.py`` makes the Flux dashboard from ``cellsafe.json``: the
    committed file is its output (rerun it after changing either), panel for panel."""
    spec = importlib.util.spec_from_file_location(
        "grafana_influxdb", ROOT / "docs" / "grafana" / "influxdb.py"
    )
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert INFLUX_DASHBOARD.read_text() == generator.render(), "run docs/grafana/influxdb.py"
    prometheus = json.loads((ROOT / "docs" / "grafana" / "cellsafe.json").read_text())
    flux = json.loads(INFLUX_DASHBOARD.read_text())
    assert [(p["title"], p["gridPos"]) for p in flux["panels"]] == [
        (p["title"], p["gridPos"]) for p in prometheus["panels"]
    ]
    provisioned = yaml.safe_load(
        (
            ROOT / "docs" / "grafana" / "provisioning" / "datasources" / "cellsafe-influxdb.yaml"
        ).read_text()
    )["datasources"][0]
    (chooser,) = [v for v in flux["templating"]["list"] if v["type"] == "datasource"]
    assert (chooser["query"], chooser["current"]["value"]) == ("influxdb", provisioned["uid"])
    assert provisioned["type"] == "influxdb" and provisioned["jsonData"]["version"] == "Flux"
    assert provisioned["secureJsonData"]["token"] == "$CELLSAFE_INFLUXDB_TOKEN"  # not in the file
    missing = dict(prometheus, panels=[*prometheus["panels"], {"id": 99, "title": "new"}])
    with pytest.raises(KeyError, match="panel 99"):
        generator.dashboard(missing)


def grafana_free(query: str) -> str:
    """A dashboard query as Grafana would send it with every variable at "All"."""
    for name in ("site", "gateway", "zone"):
        query = query.replace(f"${name}", ".*")
    return query


@pytest.mark.integration
def test_the_gateway_stores_every_poll_health_and_its_alarms_and_relays(
    tmp_path: Path, victoria: VictoriaMetrics, broker: MosquittoBroker, lab: Lab
) -> None:
    sim = lab.sim(hot_zone(), 4.0)
    data = tomllib.loads(
        lab_config(tmp_path, sim.port, broker.port, off_delay=2.0, rate_of_rise=100.0).read_text()
    )
    data["telemetry"] = {"interval": 0.5}  # the sensors' poll interval: every poll is stored
    data["timeseries"] = {"url": victoria.url}
    token = "tok-3b1f9c0e5d2a4f7b"
    gateway = lab.gateway(write_config(tmp_path, data), env={"CELLSAFE_TIMESERIES__TOKEN": token})

    def switched() -> bool:  # the fan on: its state is stored from every read-back too
        return any(1 in s["values"] for s in victoria.export('relay_state{relay="exhaust-fan-1"}'))

    wait_until(switched, 30, "the fan's switching in the time series")
    gateway_ok = gateway.terminate() == 0
    assert token not in (tmp_path / "gateway.log").read_text()
    temperature = victoria.export('point_value{point="zone-sensors.temperature"}')
    assert len(temperature) == 1 and gateway_ok
    series = temperature[0]
    assert series["metric"]["zone"] == "electrolyte-store"
    assert series["metric"]["quantity"] == "temperature"
    stamps = series["timestamps"]
    assert len(stamps) >= 10
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert statistics.median(gaps) <= 600  # one sample per poll of 0.5 s, none held back
    assert max(gaps) < 2000
    (limit,) = victoria.export('point_limit_high{point="zone-sensors.temperature"}')
    assert set(limit["values"]) == {30.0}
    (alarm,) = victoria.export(
        'annotation_event{alarm="electrolyte-store.temperature.high",type="alarm.raised"}'
    )
    assert alarm["metric"]["priority"] and alarm["metric"]["zone"] == "electrolyte-store"
    (fan,) = victoria.export('relay_state{relay="exhaust-fan-1"}')
    assert fan["values"][-1] == 1
    assert victoria.export('health_poll_latency{poller="zone-sensors"}')
    assert victoria.export('health_sink_backlog{sink="timeseries"}')
    assert victoria.export('health_sink_lag{sink="mqtt"}')
    # Every dashboard query (but Grafana's own label_values) is one the server accepts.
    dashboard = json.loads((ROOT / "docs" / "grafana" / "cellsafe.json").read_text())
    for query in dashboard_queries(dashboard):
        if not query.startswith("label_values"):
            victoria.query(grafana_free(query))


@pytest.mark.integration
def test_the_back_fill_benchmark_runs(tmp_path: Path) -> None:
    figures = timeseries_benchmark.measure(2_000, 20, tmp_path, batch=10)
    assert figures.stored == figures.points == 2_000
    assert figures.rate > 0
    assert "| 2,000 | 20 | 10 |" in timeseries_benchmark.table([figures])


def test_a_record_of_the_wrong_shape_is_skipped_and_the_rest_written(tmp_path: Path) -> None:
    with EventLog.open(tmp_path / "log.db", SOURCE) as log:
        log.cursor(SINK)
        log.emit_telemetry({"zone-sensors": {"device": "zone-sensors", "ts": "?"}})  # no points
        store(log, samples(2, T0))
        writer = LineProtocol()
        lines = writer.lines(log.read(0, frozenset({"telemetry"}), 10))
    assert writer.skipped == 1
    assert [parse(line)[3] for line in lines] == [int(T0 * 1000)] * 2 + [int(T0 * 1000) + 500] * 2


def test_a_refused_batch_is_skipped_an_unavailable_one_retried_and_the_token_sent(
    tmp_path: Path,
) -> None:
    """A plain HTTP receiver on loopback answers as scripted: 503 (retried), then 400 for
    the same batch (skipped for good), then 204."""
    from aiohttp import web

    answers = [503, 400, 204]
    seen: list[tuple[str, str, bytes]] = []

    async def write(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append((request.headers.get("Authorization", ""), request.query_string, body))
        status = answers.pop(0) if answers else 204
        return web.Response(status=status, text="" if status == 204 else '{"message": "no"}')

    async def run() -> TimeSeriesSink:
        app = web.Application()
        app.router.add_post("/api/v2/write", write)
        async with http_app(app) as port:
            config = TimeSeriesSection(url=f"http://127.0.0.1:{port}", token=SecretStr("tok-1"))
            with EventLog.open(tmp_path / "log.db", SOURCE) as log:
                sink = TimeSeriesSink(config, log)
                sink.retry_min = 0.05
                async with sink:
                    store(log, samples(3, T0))
                    await drain(log)
                    store(log, samples(2, T0 + 10))
                    await drain(log)
                return sink

    sink = asyncio.run(run())
    assert sink.rejected == 6 and sink.written == 4
    assert [s[0] for s in seen] == ["Token tok-1"] * 3
    assert "precision=ms" in seen[0][1] and "bucket=cellsafe" in seen[0][1]
    assert seen[0][2] == seen[1][2] != seen[2][2]  # the same batch again, then the next
