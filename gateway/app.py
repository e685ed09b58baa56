"""The gateway assembled: log, sinks, relays, rules, drivers, pollers.

This module only assembles. Each long-lived resource enters an ``AsyncExitStack`` in that
order and leaves it in the reverse one, so the pollers stop before the relays, the sinks
after everything that emits, and the log closes last.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actuators.relay import Relay
from actuators.watchdog import ModuleWatchdog
from drivers import registry
from drivers.base import Driver, LinkReport, ServiceDriver
from gateway import __version__
from gateway.bus.conditions import ConditionBus
from gateway.bus.samples import SampleBus
from gateway.config import ConfigError, load_settings
from gateway.config.settings import GatewaySettings
from gateway.core.ack_passback import AckPassBack
from gateway.core.commands import CommandRouter
from gateway.core.control import SOCKET_NAME, ControlServer
from gateway.core.health_points import HEALTH_POLLER, GatewayHealth
from gateway.core.lines import line_status, protect_safety_devices
from gateway.core.pipeline import Pipeline
from gateway.core.poller import Poller, phases
from gateway.core.readers import ReaderWatch
from gateway.core.service import Notifier, Probe, Vitals, status_line, supervise
from gateway.core.status import (
    AlarmStatus,
    GatewayStatus,
    PollerStatus,
    RelayState,
    RelayStatus,
    SinkStatus,
    SourceStatus,
)
from gateway.core.stock import StockService
from gateway.core.tasks import cancel_all
from gateway.core.telemetry import Telemetry
from gateway.notify.sink import NOTIFY_ALARM, NotifySink
from gateway.sinks.file import EventFileSink
from gateway.sinks.timeseries import TimeSeriesSink, catalog
from gateway.storage.health import (
    POLL_INTERVAL,
    STORAGE_ALARM,
    LogQuota,
    storage_condition,
    unconfirmed_threshold,
    usage_threshold,
)
from gateway.storage.log import EventLog, iso_utc
from gateway.uplink.commands import MqttCommands, principals
from gateway.uplink.mqtt import SINK as MQTT_SINK
from gateway.uplink.mqtt import MqttUplink
from gateway.uplink.signing import STOCK_MASTER
from gateway.uplink.topics import Topics
from rules.alarms import AlarmManager
from rules.engine import RuleEngine
from rules.matrix import CauseEffectMatrix
from vocab.clock import steady
from vocab.ids import GATEWAY, parse_point_id, point_id
from vocab.scans import Scan

if TYPE_CHECKING:
    from aiohttp import web

    from gateway.core.metrics import RelayCounts

_logger = logging.getLogger(__name__)

LOG_FILE = "outbox.sqlite3"


class _Publisher:
    """Where push sources deliver: samples onto the bus, scans to the stock logic."""

    def __init__(self, bus: SampleBus, stock: StockService | None = None) -> None:
        self.samples = bus
        self._stock = stock

    def scans(self, scans: Sequence[Scan], /) -> None:
        if self._stock is None:
            _logger.warning("%d scans ignored: no stock logic is configured", len(scans))
            return
        self._stock.scans(scans)


class Gateway:
    def __init__(
        self,
        settings: GatewaySettings,
        config_path: Path | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.settings = settings
        self.config_path = config_path
        self.notifier = notifier or Notifier(None)
        self.vitals = Vitals()
        self.next_settings: GatewaySettings | None = None
        self._stop: asyncio.Event | None = None
        self.pollers: list[Poller] = []
        self.sources: dict[str, ServiceDriver] = {}
        self.relays: dict[str, Relay] = {}
        self.uplink: MqttUplink | None = None
        self.log: EventLog | None = None
        self.pipeline: Pipeline | None = None
        self._state_pending = False

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set; a task that dies takes the gateway down with it.

        A poller or relay that ended is a gateway that no longer watches or acts, so it
        must not carry on looking healthy: it raises, and systemd restarts the service.
        """
        self._stop = stop
        async with self._running() as tasks:
            _logger.info(
                "gateway ready: %d devices, %d relays", len(self.settings.devices), len(self.relays)
            )
            stopper = asyncio.create_task(stop.wait(), name="stop")
            done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            dead = [t for t in done if t is not stopper]
            if dead:
                raise RuntimeError(f"task {dead[0].get_name()} ended unexpectedly") from (
                    dead[0].exception() if not dead[0].cancelled() else None
                )
            _logger.info("gateway stopping")

    def _http(self, alarms: AlarmManager) -> web.Application:
        # Imported here: aiohttp and prometheus_client cost memory, and HTTP is optional.
        from gateway.core.health import make_app
        from gateway.core.metrics import gateway_registry

        def snapshot() -> tuple[GatewayStatus, dict[str, int], RelayCounts]:
            relays = {n: (r.verified, r.unverified) for n, r in self.relays.items()}
            return self.status(), dict(alarms.counters), relays

        def live() -> tuple[bool, dict[str, Any]]:
            return not self.vitals.stalled, {"stalled": self.vitals.stalled}

        def ready() -> tuple[bool, dict[str, Any]]:
            devices = [d.name for d in self.settings.devices]
            return self.vitals.ready, {"status": status_line(self.status(), devices)}

        return make_app(live, ready, gateway_registry(snapshot))

    def terminate(self) -> None:
        """Stop for good (SIGTERM): relays go as their ``on_stop`` says, even mid-reload."""
        self.next_settings = None
        if self._stop is not None:
            self._stop.set()

    def reload_on_signal(self) -> list[str]:
        """SIGHUP: the same check as ``cellsafe reload``; a bad file is logged and refused."""
        errors = self._reload()
        if errors:
            _logger.error("reload refused, the running configuration stays: %s", "; ".join(errors))
            self.notifier.status("reload refused: " + "; ".join(errors)[:200])
        return errors

    async def _stop_relays(self) -> None:
        if self.next_settings is not None:
            return  # a reload: the next gateway reads each relay and takes over its state
        for relay in self.relays.values():
            try:
                await relay.stop_safely()
            except Exception:
                _logger.exception("relay %s: safe state on stop failed", relay.spec.name)

    def _reload(self) -> list[str]:
        """Check the file on disk; if it is good, stop so that the runner starts it anew.

        The log and the alarm states are on disk, so a restart in place loses nothing
        and raises nothing twice; a bad file is refused and the running setup stays.
        """
        if self.config_path is None:
            return ["this gateway was not started from a file"]
        try:
            self.next_settings = load_settings(self.config_path)
        except ConfigError as err:
            return err.lines()
        assert self._stop is not None
        _logger.info("reloading %s", self.config_path)
        self.notifier.reloading()
        asyncio.get_running_loop().call_soon(self._stop.set)  # after the reply is sent
        return []

    def _state_changed(self) -> None:
        # Every alarm or relay change comes with an event: refresh the retained snapshots
        # once per turn of the loop, however many events that turn stored.
        if not self._state_pending:
            self._state_pending = True
            asyncio.get_running_loop().call_soon(self._publish_state)

    def _publish_state(self) -> None:
        self._state_pending = False
        if self.uplink is None or self.pipeline is None:
            return
        alarms = self.pipeline.alarms
        now = iso_utc(time.time())
        self.uplink.publish_state(
            "alarms",
            {
                "ts": now,
                "alarms": self._alarm_status(),
                "flooding": alarms.flooding,
                "chattering": sorted(alarms.chattering),
            },
        )
        self.uplink.publish_state("relays", {"ts": now, "relays": self._relay_status()})
        self.uplink.publish_state("safety", {"ts": now, **self.pipeline.matrix.snapshot()})

    def _alarm_status(self) -> list[AlarmStatus]:
        assert self.pipeline is not None
        alarms = self.pipeline.alarms
        return [
            {
                "id": alarm_id,
                "state": state.value,
                "priority": alarms.definitions[alarm_id].priority,
                "condition": alarms.records[alarm_id].condition,
                "acked": alarms.records[alarm_id].acked,
                "value": alarms.records[alarm_id].value,
                "message": alarms.records[alarm_id].message,
            }
            for alarm_id, state in sorted(alarms.annunciated().items())
        ]

    def _relay_status(self) -> dict[str, RelayStatus]:
        words: dict[bool | None, RelayState] = {True: "on", False: "off", None: "unknown"}
        return {
            name: RelayStatus(state=words[r.state], faulted=r.faulted)
            for name, r in self.relays.items()
        }

    def status(self) -> GatewayStatus:
        """What ``cellsafe alarm list`` and the MQTT status command show."""
        assert self.pipeline is not None and self.log is not None and self.uplink is not None
        alarms = self.pipeline.alarms
        return {
            "alarms": self._alarm_status(),
            "chattering": sorted(alarms.chattering),
            "flooding": alarms.flooding,
            "relays": self._relay_status(),
            "pollers": {
                p.name: PollerStatus(**dataclasses.asdict(p.stats))  # type: ignore[typeddict-item]
                for p in self.pollers
            },
            "lines": line_status(),
            "sources": {
                d.name: _source(d.driver, self.sources[d.name].link())
                for d in self.settings.devices
                if d.name in self.sources
            },
            "safety": self.pipeline.matrix.snapshot(),
            "outbox": self.log.count(),
            "held": self.log.held,
            "storage_error": self.log.fault or "",
            "sinks": {
                name: SinkStatus(backlog=lag.backlog, oldest_age=round(lag.oldest_age, 3))
                for name, lag in self.log.sinks().items()
            },
            "last_seq": self.log.last_seq,
            "uplink": self.uplink.state.value,
            "broker": self.uplink.broker,
            "uplink_error": self.uplink.last_error,
        }

    @property
    def settled(self) -> bool:
        """No alarm active, every relay at rest and verified, nothing left to send."""
        return (
            self.pipeline is not None
            and self.log is not None
            and not self.pipeline.alarms.conditions()
            and self.log.count() == 0
            and all(r.state == r.spec.resting for r in self.relays.values())
        )

    async def _supervise(self) -> None:
        """systemd: READY once every device was polled once, then status and heartbeat."""
        assert self.pipeline is not None
        pipeline = self.pipeline
        probes = [
            Probe(f"poller {p.name}", functools.partial(_polls, p), max(60.0, 3 * p.interval))
            for p in self.pollers
        ]
        probes.append(Probe("rules clock", lambda: pipeline.ticks, 30.0))
        devices = [d.name for d in self.settings.devices]
        await supervise(
            self.notifier,
            probes,
            lambda: all(p.stats.polls > 0 for p in self.pollers),
            lambda: status_line(self.status(), devices),
            vitals=self.vitals,
        )

    @contextlib.asynccontextmanager
    async def _running(self) -> AsyncIterator[list[asyncio.Task[None]]]:
        s = self.settings
        source = {"site": s.gateway.site, "gateway": s.gateway.id}
        async with contextlib.AsyncExitStack() as stack:
            log = self.log = stack.enter_context(
                EventLog.open(s.gateway.data_dir / LOG_FILE, source)
            )
            topics = Topics(s.mqtt.topic_prefix, s.gateway.site, s.gateway.id)
            birth = {**source, "version": __version__, "config_hash": s.fingerprint()}
            uplink = MqttUplink(s.mqtt, s.mqtt_client_id, topics, log, birth, s.telemetry.expiry)
            self.uplink = await stack.enter_async_context(uplink)
            if s.event_file.path is not None:
                await stack.enter_async_context(EventFileSink(s.event_file, log))
            console = None
            if s.console.listen:
                from gateway.console import Console  # aiohttp and argon2: only when served

                console = Console(s, log)  # its reader of the log takes a cursor here
            conditions = ConditionBus()
            if s.notify.enabled:
                notify = NotifySink(s.notify, log, s.gateway.site, conditions, record=log.emit)
                await stack.enter_async_context(notify)
            if s.timeseries.url is not None:
                await stack.enter_async_context(TimeSeriesSink(s.timeseries, log, catalog(s)))
            log.forget_other_sinks()

            drivers: dict[str, Driver] = {}
            for device in s.devices:
                drivers[device.name] = registry.create(device)
                stack.push_async_callback(drivers[device.name].close)

            read_point = functools.partial(_read_point, drivers)
            relay_specs = s.relays
            self.relays = {
                spec.name: Relay(spec, drivers[spec.device], log, conditions, read_point)
                for spec in relay_specs
            }
            watchdog_specs = s.watchdogs
            watchdogs = [ModuleWatchdog(w, drivers[w.device], conditions) for w in watchdog_specs]

            confirmed = s.mqtt.delivery == "wms"
            units = {point_id(d.name, p.key): p.unit for d in s.devices for p in d.point_infos()}
            engine = RuleEngine(
                [spec for zone in s.zones for spec in zone.threshold_specs(units)]
                + [usage_threshold(s.outbox.warn_at)]
                + ([unconfirmed_threshold(s.mqtt.confirm_within)] if confirmed else []),
                [spec for zone in s.zones for spec in zone.input_specs()],
            )
            definitions = engine.definitions + [d for r in relay_specs for d in r.definitions()]
            definitions += [d for w in watchdog_specs for d in w.definitions()]
            definitions.append(STORAGE_ALARM)
            if s.notify.enabled:
                definitions.append(NOTIFY_ALARM)
            definitions += StockService.definitions(s)
            saved = Pipeline.saved_alarms(log)
            alarms = AlarmManager(s.alarms.apply(definitions), saved, s.alarms)
            engine.restore(alarms.conditions())
            if saved:
                _logger.info("restored alarm states: %d annunciated", len(alarms.annunciated()))
            matrix = CauseEffectMatrix(
                s.matrix_rows(),
                s.interlocks,
                {r.name: r.resting for r in s.relays},
            )
            matrix.restore(Pipeline.saved_matrix(log), steady())
            protect_safety_devices(s.matrix_rows(), definitions)
            self.pipeline = pipeline = Pipeline(engine, alarms, matrix, self.relays, log)
            conditions.subscribe(pipeline.condition)
            pipeline.command_listeners.append(AckPassBack(drivers))
            log.watch(lambda reason: conditions(storage_condition(reason)))

            router = CommandRouter(pipeline, self.status, self._reload, s.safety.max_override)
            await stack.enter_async_context(
                ControlServer(s.gateway.data_dir / SOCKET_NAME, router, s.gateway.operators_group)
            )
            if s.metrics.listen:
                from gateway.core.health import serve_http

                await stack.enter_async_context(serve_http(s.metrics.listen, self._http(alarms)))
            mqtt_commands = MqttCommands.from_settings(
                router, uplink.reply, topics.base, s.commands, s.gateway.data_dir, uplink.delivery
            )
            stack.callback(mqtt_commands.close)
            uplink.set_command_handler(mqtt_commands)
            stock = StockService.open(s, drivers, log, conditions, alarms.conditions())
            if stock is not None:
                stack.push_async_callback(stock.close)  # what was read is stored
                signers = principals(s.commands)
                uplink.add_downlink(
                    topics.downlink(STOCK_MASTER),
                    lambda payload, _: stock.master_message(payload, topics.base, signers),
                )

            bus = SampleBus()
            bus.subscribe(pipeline)
            if stock is not None:
                watch = ReaderWatch.of(s, conditions, alarms.conditions())  # device.<reader>.comm
                bus.subscribe(watch)
                stack.callback(watch.close)
            if s.telemetry.interval:
                bus.subscribe(Telemetry(log, s.telemetry.interval))
            elif s.timeseries.url is not None:
                _logger.warning("time series: [telemetry] interval = 0, so only events are stored")
            if console is not None:
                await stack.enter_async_context(console.serve(self.status, router))
                bus.subscribe(console.samples)
            polled = [d for d in s.devices if not isinstance(drivers[d.name], ServiceDriver)]
            for device in s.devices:
                driver = drivers[device.name]
                if isinstance(driver, ServiceDriver):
                    self.sources[device.name] = driver
                    await driver.start(_Publisher(bus, stock))
            points = [[point_id(d.name, p.key) for p in d.point_infos()] for d in polled]
            offsets = phases(
                [(d.poll_interval, len(ids)) for d, ids in zip(polled, points, strict=True)]
            )
            self.pollers = [
                Poller(d.name, drivers[d.name], d.poll_interval, ids, bus, phase=offset)
                for d, ids, offset in zip(polled, points, offsets, strict=True)
            ]
            quota = LogQuota(log, s.outbox.max_mb, MQTT_SINK if confirmed else None)
            self.pollers.append(Poller(GATEWAY, quota, POLL_INTERVAL, quota.points, bus))
            if s.timeseries.url is not None and s.timeseries.health:
                health = GatewayHealth(lambda: self.pollers, log, quota)
                self.pollers.append(Poller(HEALTH_POLLER, health, POLL_INTERVAL, [], bus))

            log.subscribe(self._state_changed, events_only=True)
            self._publish_state()

            tasks = [
                asyncio.create_task(r.run(), name=f"relay-{n}") for n, r in self.relays.items()
            ]
            tasks += [asyncio.create_task(p.run(), name=f"poll-{p.name}") for p in self.pollers]
            tasks.append(asyncio.create_task(pipeline.run_clock(), name="clock"))
            tasks += [
                asyncio.create_task(w.run(), name=f"watchdog-{w.spec.device}") for w in watchdogs
            ]
            tasks.append(asyncio.create_task(self._supervise(), name="systemd"))
            stack.push_async_callback(self._stop_relays)  # runs after the tasks are gone
            stack.push_async_callback(_cancel_all, tasks)
            yield tasks


def _source(driver: str, link: LinkReport) -> SourceStatus:
    return SourceStatus(driver=driver, state=link.state, error=link.error or "")


def _polls(poller: Poller) -> int:
    return poller.stats.polls


async def _read_point(drivers: dict[str, Driver], point: str) -> bool | None:
    """One binary point by id, wherever it is wired: for independent relay feedback."""
    device, key = parse_point_id(point)
    samples = await drivers[device].read([key])
    if not samples or not samples[0].is_good:
        return None
    return bool(samples[0].value)


async def _cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    for task, error in zip(tasks, await cancel_all(tasks), strict=True):
        if isinstance(error, Exception):
            _logger.error("task %s ended with %r", task.get_name(), error)
