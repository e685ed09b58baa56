"""The time-series sink: every sample, the gateway's health, and alarm and relay events as
InfluxDB line protocol, written in batches with ``influxdb-client`` (InfluxDB 2's
``/api/v2/write``, which VictoriaMetrics accepts as it is).

Store-and-forward is the log's: the sink reads telemetry and events on its own cursor and
acknowledges a batch only once the database took it, so while the database is away the
points wait on disk in the log, bounded by ``[outbox] max_mb`` (the oldest telemetry is
dropped first, logged and counted in the health point ``telemetry_dropped``; events never
are). When the database returns, the backlog goes out in log order with the timestamps
the samples were stamped with.

Every point carries an explicit timestamp in milliseconds (``WritePrecision.MS``, the
precision of the log's stamps). A point is identified by measurement, tag set and
timestamp, so a batch written again after a failure whose answer was lost (or after a
crash between the write and the acknowledgement) overwrites itself: InfluxDB keeps the
last write of a point; VictoriaMetrics needs ``-dedup.minScrapeInterval=1ms`` to do the
same (docs/timeseries.md).

Schema (docs/timeseries.md):

- ``point``: one line per sample. Tags ``site``, ``gateway``, ``zone`` (when a threshold or
  input of a zone watches the point), ``quantity`` (the threshold's quantity, or the
  point's key), ``device``, ``key``, ``point`` (``<device>.<key>``), ``unit`` (when
  known). Fields ``quality`` (integer: 1 good, 0 bad), ``value`` (float; booleans 1/0;
  absent when bad), ``text`` (a text value), ``limit_<level>`` (the configured limits
  of the zone's threshold, ``low_low`` .. ``high_high``).
- ``health``: the points of the device ``gateway`` (``gateway/core/health_points.py``).
  Tags ``site``, ``gateway``, and ``poller`` or ``sink`` where the figure is per poller
  or per sink; one float field per figure (``poll_latency`` in s, ``sink_backlog`` in
  records, ``sink_lag`` in s, ``outbox`` in %, ...).
- ``annotation``: one line per alarm or actuator event. Tags ``site``, ``gateway``,
  ``category`` (``alarm``/``actuator``), ``type`` (the event type), ``zone``, ``alarm``,
  ``priority``, ``level``, ``state`` (ISA-18.2), ``relay``, as the event has them. Fields
  ``event`` (always 1, for annotation queries), ``active`` (1/0: the alarm condition, or
  the relay on), ``value`` and ``limit`` (floats, alarms), ``text`` (the message; a
  string, which VictoriaMetrics does not store).
- ``relay``: one line per ``actuator.switched``, and one per good sample of a relay's
  coil point (so that a relay that has not switched for days still has a state to show):
  tags ``site``, ``gateway``, ``relay``, ``point``; field ``state`` (1 on, 0 off: the
  output's state, the coil's inverted for ``trip = "de-energise"``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

from gateway.config.timeseries import TimeSeriesSection
from gateway.core.health_points import parse_health_key
from gateway.sinks.base import BatchSink
from gateway.storage.log import EVERYTHING, EventLog, StoredRecord
from vocab.ids import GATEWAY, point_id

if TYPE_CHECKING:
    from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
    from influxdb_client.client.write_api_async import WriteApiAsync

    from gateway.config.settings import GatewaySettings

_logger = logging.getLogger(__name__)

SINK = "timeseries"
POINT, HEALTH, ANNOTATION, RELAY = "point", "health", "annotation", "relay"
ANNOTATED = frozenset({"alarm", "actuator"})  # event categories written as annotations

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_REJECTED = frozenset({400, 422})  # the database refuses these points for good
_STAMPS_KEPT = 10_000  # parsed timestamps remembered
_ALARM_TAGS = ("id", "zone", "priority", "level", "state")  # "id" goes in as "alarm"


@dataclass(frozen=True, slots=True)
class PointInfo:
    """What the configuration says of a point beyond its id: its zone, the quantity its
    threshold watches, its unit, and the threshold's limits by level."""

    zone: str | None = None
    quantity: str | None = None
    unit: str | None = None
    limits: Mapping[str, float] = field(default_factory=dict)
    relay: str | None = None  # the relay whose coil this point is
    relay_on: bool = True  # the coil's value while that relay is on


def catalog(settings: GatewaySettings) -> dict[str, PointInfo]:
    """``point id -> PointInfo`` from the devices and zones of ``settings``."""
    units = {point_id(d.name, p.key): p.unit for d in settings.devices for p in d.point_infos()}
    found = {point: PointInfo(unit=unit) for point, unit in units.items()}
    for zone in settings.zones:
        for threshold, spec in zip(zone.thresholds, zone.threshold_specs(units), strict=True):
            found[spec.point] = PointInfo(
                zone=zone.name,
                quantity=threshold.quantity or spec.key,
                unit=units.get(spec.point),
                limits={level: limit.limit for level, limit in spec.limits.items()},
            )
        for item in zone.inputs:
            found[item.point] = PointInfo(zone=zone.name, quantity=item.name)
    for relay in settings.relays:
        coil = point_id(relay.device, relay.point)
        found[coil] = dataclasses.replace(
            found.get(coil, PointInfo()), relay=relay.name, relay_on=relay.coil(True)
        )
    return found


def _tag(text: str) -> str:
    """A tag key or value, or a measurement name, escaped for line protocol."""
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return f'"{escaped}"'


def _number(value: Any) -> str | None:
    """A float field's text, or None for what is not a number."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(float(value))
    return None


def _tags(pairs: Iterable[tuple[str, Any]]) -> str:
    return "".join(f",{_tag(k)}={_tag(str(v))}" for k, v in sorted(pairs) if v not in (None, ""))


class LineProtocol:
    """Log records -> line protocol lines, with millisecond timestamps.

    Tag sets are built once per point and kept; so are parsed timestamps, because a block
    read stamps all its points alike.
    """

    def __init__(self, points: Mapping[str, PointInfo] | None = None) -> None:
        self._points = dict(points or {})
        self._series: dict[tuple[str, str, str], tuple[str, str]] = {}
        self._relays: dict[tuple[str, str, str], tuple[str, bool]] = {}  # relay line head
        self._stamps: dict[str, int] = {}
        self.skipped = 0  # records that could not be read as the contract says

    def lines(self, records: Sequence[StoredRecord]) -> list[str]:
        """The lines of ``records``, in their order; a record that is not the shape the
        contract gives (docs/events.md, telemetry.json) is logged and left out, so that it
        cannot hold up the ones after it."""
        out: list[str] = []
        for record in records:
            try:
                body = json.loads(record.record)
                if record.is_telemetry:
                    self._telemetry(body, out)
                elif record.category in ANNOTATED:
                    self._event(record.category, body, out)
            except (ValueError, KeyError, TypeError, AttributeError) as err:
                self.skipped += 1
                _logger.error(
                    "time series: log row %d (%s) is not a record it can write (%r); skipped",
                    record.row,
                    record.type,
                    err,
                )
        return out

    def _ms(self, stamp: str) -> int:
        ms = self._stamps.get(stamp)
        if ms is None:
            if len(self._stamps) > _STAMPS_KEPT:
                self._stamps.clear()
            ms = self._stamps[stamp] = (datetime.fromisoformat(stamp) - _EPOCH) // _MS
        return ms

    def _telemetry(self, body: Mapping[str, Any], out: list[str]) -> None:
        site, gateway, device = body["site"], body["gateway"], body["device"]
        if device == GATEWAY:
            self._health(site, gateway, body["points"], out)
            return
        for key, reading in body["points"].items():
            point = point_id(device, key)
            series = self._series.get((site, gateway, point))
            if series is None:
                series = self._new_series(site, gateway, device, key)
            head, limits = series
            fields = ["quality=1i" if reading["quality"] == "good" else "quality=0i"]
            value = reading.get("value")
            number = _number(value)
            if number is not None:
                fields.append(f"value={number}")
            elif isinstance(value, str):
                fields.append(f"text={_string(value)}")
            if limits:
                fields.append(limits)
            ms = self._ms(reading["ts"])
            out.append(f"{head} {','.join(fields)} {ms}")
            relay = self._relays.get((site, gateway, point))
            if relay is not None and reading["quality"] == "good" and isinstance(value, int):
                relay_head, on = relay  # a coil reads as a boolean (an int is a bool's kind)
                out.append(f"{relay_head} state={_number(bool(value) == on)} {ms}")

    def _new_series(self, site: str, gateway: str, device: str, key: str) -> tuple[str, str]:
        point = point_id(device, key)
        info = self._points.get(point, PointInfo())
        tags = _tags(
            [
                ("site", site),
                ("gateway", gateway),
                ("zone", info.zone),
                ("quantity", info.quantity or key),
                ("device", device),
                ("key", key),
                ("point", point),
                ("unit", info.unit),
            ]
        )
        limits = ",".join(f"limit_{level}={float(v)!r}" for level, v in info.limits.items())
        series = (f"{POINT}{tags}", limits)
        self._series[(site, gateway, point)] = series
        if info.relay is not None:
            relay_tags = _tags(
                [("site", site), ("gateway", gateway), ("relay", info.relay), ("point", point)]
            )
            self._relays[(site, gateway, point)] = (f"{RELAY}{relay_tags}", info.relay_on)
        return series

    def _health(self, site: str, gateway: str, points: Mapping[str, Any], out: list[str]) -> None:
        """Health figures are fields named after the figure: ``health,poller=x poll_latency=``."""
        for key, reading in points.items():
            number = _number(reading.get("value"))
            if reading["quality"] != "good" or number is None:
                continue  # a health figure that could not be measured is simply absent
            name, extra = parse_health_key(key)
            tags = _tags([("site", site), ("gateway", gateway), *extra.items()])
            out.append(f"{HEALTH}{tags} {_tag(name)}={number} {self._ms(reading['ts'])}")

    def _event(self, category: str, body: Mapping[str, Any], out: list[str]) -> None:
        source = [("site", body["site"]), ("gateway", body["gateway"])]
        ts = self._ms(body["ts"])
        kind = body["type"]
        tags: list[tuple[str, Any]] = [*source, ("category", category), ("type", kind)]
        fields: list[str] = ["event=1"]  # always 1: annotation queries show what is above 0
        if category == "alarm":
            alarm = body.get("alarm", {})
            tags += [(k if k != "id" else "alarm", alarm.get(k)) for k in _ALARM_TAGS]
            fields.append(f"active={_number(bool(alarm.get('condition')))}")
            for name in ("value", "limit"):
                number = _number(alarm.get(name))
                if number is not None:
                    fields.append(f"{name}={number}")
            text = alarm.get("message") or kind
        else:
            actuator = body.get("actuator", {})
            relay, on = actuator.get("name"), actuator.get("state") == "on"
            tags += [("relay", relay)]
            fields.append(f"active={_number(on)}")
            text = actuator.get("error") or f"{relay} {actuator.get('state', '?')}"
            if kind == "actuator.switched":
                relay_tags = _tags([*source, ("relay", relay), ("point", actuator.get("point"))])
                out.append(f"{RELAY}{relay_tags} state={_number(on)} {ts}")
        fields.append(f"text={_string(str(text))}")
        out.append(f"{ANNOTATION}{_tags(tags)} {','.join(fields)} {ts}")


class TimeSeriesSink(BatchSink):
    """Writes the log's telemetry and alarm and actuator events to the database at
    ``config.url``; a batch the database refuses for good (HTTP 400/422: a field of the
    wrong type, a malformed point) is logged, counted in ``rejected`` and skipped, so that
    one bad point cannot stop the rest; any other failure is retried, in order."""

    name = SINK

    def __init__(
        self,
        config: TimeSeriesSection,
        log: EventLog,
        points: Mapping[str, PointInfo] | None = None,
    ) -> None:
        super().__init__(log.cursor(SINK, EVERYTHING))
        assert config.url is not None, "a time-series sink needs a url"
        self.batch = config.batch
        self._config = config
        self._lines = LineProtocol(points)
        self._client: InfluxDBClientAsync | None = None
        self._write: WriteApiAsync | None = None
        self.written = 0  # points the database took
        self.rejected = 0  # points it refused for good

    async def __aenter__(self) -> TimeSeriesSink:
        # Imported here: the client and its dependencies cost memory, and the sink is optional.
        from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync

        token = self._config.token.get_secret_value() if self._config.token else ""
        self._client = InfluxDBClientAsync(
            url=self._config.url or "",
            token=token,
            org=self._config.org,
            timeout=int(self._config.timeout * 1000),
            enable_gzip=self._config.gzip,
        )
        self._write = self._client.write_api()
        await super().__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await super().__aexit__(exc_type, exc, tb)
        if self._client is not None:
            await self._client.close()  # type: ignore[no-untyped-call]

    async def deliver(self, records: Sequence[StoredRecord]) -> None:
        from influxdb_client.domain.write_precision import WritePrecision
        from influxdb_client.rest import ApiException

        lines = self._lines.lines(records)
        if not lines:
            return
        assert self._write is not None
        step = self._config.points_per_write
        try:
            # In order, one request after the other: if one fails, the whole batch comes
            # again, and what was already written overwrites itself.
            for first in range(0, len(lines), step):
                await self._write.write(
                    self._config.bucket,
                    self._config.org,
                    record="\n".join(lines[first : first + step]).encode(),
                    # the library annotates the enum class but defines its values as str
                    write_precision=WritePrecision.MS,  # type: ignore[arg-type]
                )
        except ApiException as err:
            if err.status not in _REJECTED:
                raise RuntimeError(f"{self._config.url}: HTTP {err.status} {err.reason}") from None
            self.rejected += len(lines)
            _logger.error(
                "time series: %s refused %d points for good (HTTP %s: %s); they are skipped",
                self._config.url,
                len(lines),
                err.status,
                (err.body or err.reason or "")[:300],
            )
            return
        self.written += len(lines)
