"""The stock logic wired in: scans in, stock events through the log, the misplacement
alarm through the condition bus, signals back to the readers, the master from the WMS.

``StockService.scans`` is where the readers' publisher delivers: it only queues (at most
``MAX_QUEUED`` scans; a flood beyond is dropped, counted and logged) and returns. A worker
task takes the queue in batches of up to ``BATCH`` and runs them through
``stock.session.Stock`` in a worker thread (``asyncio.to_thread``): the EPCIS event hash
costs milliseconds per event, and a burst of RFID reads hashed on the event loop would hold
back the alarm path. The GIL is still shared, so the loop gets the interpreter every
switch interval (5 ms) instead of waiting for the whole burst. Each batch's events are
stored in the durable log together with the ledger (one transaction), so they reach the
WMS like every event, broker up or down.
``stock.putaway.misplaced`` (high priority, an ISA-18.2 alarm of the alarm manager) holds
while a misplaced unit is where it should not be; it is decided here, on the gateway, so
it is raised at once with the WMS away.

The WMS publishes the master on ``<base>/downlink/stock-master``, retained, as
``{"jws": ...}``: a JWS like a signed command (``gateway.uplink.signing``) with
``cmd = "stock-master"`` and ``args = {"master": {...}}``, from a principal allowed the
``stock`` class. Being retained, it is checked for signature, audience and class but not
for age or nonce: its ``version`` only goes up, so an old copy is refused by number
(``stock.master.MasterStore``). Each applied version is a ``stock.master_updated`` event,
each refusal a ``stock.master_refused`` one (at most one per reason every 10 s for
unsigned ones, as for commands).

A reader that sends only garbage (wrong baud rate, parity or framing) is summarised, not
reported read by read (``stock.garbled.GarbledReads``, limits from each reader's
``garbled_after`` and ``garbled_window``): ``device.<reader>.garbled`` (low priority, like
``device.<reader>.comm``) holds while it lasts, and its unusable reads are counted in a
summary ``stock.rejected`` with ``count`` instead of an event and a reject signal each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from drivers.base import Driver, WriteError
from drivers.scanner_config import CONNECTED
from gateway.config.settings import GatewaySettings
from gateway.core.readers import scanner_configs
from gateway.storage.log import EventLog
from gateway.uplink.commands import RefusalLimit
from gateway.uplink.signing import STOCK_MASTER, Principal, Refused, Window, verify
from rules.alarms import AlarmDefinition, ConditionChange
from stock.garbled import Change, GarbledReads, Kind
from stock.master import MasterData, MasterStore, load_toml
from stock.session import LEDGER_STATE, MISPLACED_ALARM, Outcome, Stock
from vocab.clock import steady
from vocab.events import Event
from vocab.ids import device_comm_id, device_garbled_id, point_id
from vocab.scans import Scan

_logger = logging.getLogger(__name__)

MISPLACED = AlarmDefinition(id=MISPLACED_ALARM, priority="high", level="misplaced")
# A retained master may be months old: its version, not its age, keeps old copies out.
RETAINED = Window(window=100 * 365 * 86400.0, skew=300.0)
# A master of thousands of locations is far longer than a command: characters of its JWS.
MAX_MASTER_LENGTH = 4 * 1024 * 1024
MAX_QUEUED = 10_000  # scans waiting for the stock logic; more are dropped (a reader flood)
BATCH = 64  # scans per worker-thread call and per log transaction


class StockService:
    def __init__(
        self,
        stock: Stock,
        store: MasterStore,
        log: EventLog,
        conditions: Callable[[ConditionChange], None],
        readers: Mapping[str, Driver],
        garbled: GarbledReads | None = None,
    ) -> None:
        self.stock = stock
        self.store = store
        self._log = log
        self._conditions = conditions
        self._readers = dict(readers)
        self._shown: tuple[str, ...] = ()  # misplaced units the alarm stands for
        self._unproven = RefusalLimit()
        self._signals: set[asyncio.Task[None]] = set()
        self._queue: deque[tuple[Scan, float]] = deque()  # with its arrival, monotonic
        self._garbled = garbled or GarbledReads({})
        self._quiet: asyncio.TimerHandle | None = None
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        self.dropped = 0  # scans dropped because the queue was full, since start

    @classmethod
    def open(
        cls,
        settings: GatewaySettings,
        drivers: Mapping[str, Driver],
        log: EventLog,
        conditions: Callable[[ConditionChange], None],
        active: Collection[str] = frozenset(),
    ) -> StockService | None:
        """The service for the configured readers, or None when there is no reader.
        ``active``: the alarms restored active (``AlarmManager.conditions()``); a reader
        whose ``device.<reader>.garbled`` is among them starts garbled, so the alarm clears
        when the reader proves quiet or usable rather than staying up from before a restart.
        ``ValueError`` when ``[stock] master_file`` cannot be read (it names the file)."""
        readers = scanner_configs(settings)
        if not readers:
            return None
        master_file = settings.stock.master_file
        initial = load_toml(master_file) if master_file is not None else MasterData(version=0)
        store = MasterStore(settings.gateway.data_dir, initial)
        saved = log.load_state(LEDGER_STATE).get("")  # the key, less the prefix: ""
        stock = Stock(
            settings.gateway.site,
            {n: d.location for n, d in readers.items()},
            {n: d.symbology for n, d in readers.items()},
            saved,
            settings.stock.prefix_length,
        )
        signals = {n: drivers[n] for n in readers if n in drivers}
        limits = {n: (d.garbled_after, d.garbled_window) for n, d in readers.items()}
        garbled = GarbledReads(limits)
        for name in readers:
            if device_garbled_id(name) in active:
                garbled.resume(name, steady())
        service = cls(stock, store, log, conditions, signals, garbled)
        with contextlib.suppress(RuntimeError):  # no event loop: no timer (tests)
            service._watch_quiet()
        service._shown = tuple(stock.misplaced)  # the alarm's state was restored with the log
        _logger.info(
            "stock: master version %d (%d materials, %d locations), %d readers",
            store.current.version,
            len(store.current.materials),
            len(store.current.locations),
            len(readers),
        )
        return service

    @staticmethod
    def definitions(settings: GatewaySettings) -> list[AlarmDefinition]:
        """The stock alarms, when there is a reader to raise them, and each reader's
        ``device.<reader>.comm`` and ``device.<reader>.garbled`` (low priority: stock work
        stops, safety does not)."""
        readers = scanner_configs(settings).values()
        comm = [
            AlarmDefinition(
                id=device_comm_id(d.name),
                priority="low",
                level="comm",
                point=point_id(d.name, CONNECTED),
            )
            for d in readers
        ]
        garbled = [
            AlarmDefinition(id=device_garbled_id(d.name), priority="low", level="garbled")
            for d in readers
        ]
        return [MISPLACED, *comm, *garbled] if readers else []

    def scans(self, scans: Sequence[Scan], /) -> None:
        """Queue ``scans`` for the worker and return at once (call on the event loop)."""
        if self._closed:
            return
        room = MAX_QUEUED - len(self._queue)
        if len(scans) > room:
            if self.dropped == 0 or len(self._queue) < MAX_QUEUED:  # once per overflow
                _logger.warning(
                    "stock: %d scans queued, reads dropped until the queue drains", MAX_QUEUED
                )
            self.dropped += len(scans) - max(room, 0)
            scans = scans[: max(room, 0)]
        now = steady()
        self._queue.extend((scan, now) for scan in scans)
        if self._queue and self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._work(), name="stock")

    async def drain(self) -> None:
        """Until every queued scan is handled and stored."""
        while self._worker is not None:
            await asyncio.shield(self._worker)

    async def close(self) -> None:
        """Handle what is queued, then take no more scans; a garbled reader's reads counted
        and not yet reported are stored as their summary."""
        await self.drain()
        self._closed = True
        if self._quiet is not None:
            self._quiet.cancel()
            self._quiet = None
        self._log.emit(self._garbled.flush())

    async def _work(self) -> None:
        try:
            while self._queue:
                queued = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
                batch = [scan for scan, _ in queued]
                master = self.store.current
                handled = await asyncio.to_thread(self._handle, batch, master)
                changes = [
                    self._garbled.read(scan.scanner, at, scan.ts, _kind(outcome), scan.data)
                    for (scan, at), (outcome, _) in zip(queued, handled, strict=True)
                ]
                events = [
                    e
                    for (outcome, _), change in zip(handled, changes, strict=True)
                    for e in [*(outcome.events if change.keep else []), *_summary(change)]
                ]
                if events:  # the ledger changes only with an event
                    self._log.emit(events, self.stock.state)
                for scan, (outcome, misplaced), change in zip(batch, handled, changes, strict=True):
                    if outcome.signal is not None and change.keep:
                        self._signal(scan.scanner, outcome.signal)
                    self._update_alarm(misplaced)
                    self._garbled_alarm(scan.scanner, change)
                self._watch_quiet()
        except Exception:  # a bug must not stop the stock logic for good
            _logger.exception("stock: %d queued scans not handled", len(self._queue))
            self._queue.clear()
        finally:
            self._worker = None

    def _handle(
        self, batch: Sequence[Scan], master: MasterData
    ) -> list[tuple[Outcome, tuple[str, ...]]]:
        """In the worker thread: each scan's outcome and the misplaced units after it."""
        handled: list[tuple[Outcome, tuple[str, ...]]] = []
        for scan in batch:
            try:
                outcome = self.stock.scan(scan, master)
            except Exception:  # a bug must not take the readers down with it
                _logger.exception("stock: scan %r from %s not handled", scan.data, scan.scanner)
                outcome = Outcome()
            handled.append((outcome, tuple(self.stock.misplaced)))
        return handled

    def _update_alarm(self, lines: tuple[str, ...]) -> None:
        """``stock.putaway.misplaced`` holds while any misplaced unit is where it was put.
        A second misplacement while it holds is stated in its own stock event; the alarm,
        one condition, stays raised (ISA-18.2: one alarm per condition). ``lines``: the
        misplaced units after a scan (``Stock.misplaced``)."""
        if bool(lines) == bool(self._shown):
            self._shown = lines
            return
        self._shown = lines
        message = f"{len(lines)} misplaced: " + " | ".join(lines[:3]) if lines else ""
        self._conditions(
            ConditionChange(
                alarm_id=MISPLACED_ALARM,
                active=bool(lines),
                ts=steady(),
                value=float(len(lines)),
                message=(message or "no misplaced stock left")[:500],
            )
        )

    def _garbled_alarm(self, scanner: str, change: Change) -> None:
        if change.alarm is None:
            return
        if change.alarm:
            _logger.warning("stock: %s", change.message)
        else:
            _logger.info("stock: %s", change.message)
        self._conditions(
            ConditionChange(
                alarm_id=device_garbled_id(scanner),
                active=change.alarm,
                ts=steady(),
                message=change.message,
            )
        )

    def _watch_quiet(self) -> None:
        """A timer for the next garbled reader that may have fallen quiet."""
        if self._quiet is not None:
            self._quiet.cancel()
            self._quiet = None
        deadline = self._garbled.deadline()
        if deadline is not None and not self._closed:
            loop = asyncio.get_running_loop()
            self._quiet = loop.call_later(max(deadline - steady(), 0.0), self._fall_quiet)

    def _fall_quiet(self) -> None:
        self._quiet = None
        ended = self._garbled.quiet(steady())
        self._log.emit([e for _, change in ended for e in _summary(change)])
        for scanner, change in ended:
            self._garbled_alarm(scanner, change)
        self._watch_quiet()

    def _signal(self, scanner: str, signal: str) -> None:
        reader = self._readers.get(scanner)
        if reader is None:
            return

        async def send() -> None:
            try:
                await reader.write("signal", signal)
            except WriteError as err:
                _logger.debug("stock: %s", err)

        task = asyncio.get_running_loop().create_task(send())
        self._signals.add(task)
        task.add_done_callback(self._signals.discard)

    # -- the master from the WMS -------------------------------------------------------

    def master_message(
        self,
        payload: bytes,
        audience: str,
        principals: Mapping[str, Principal],
        now: float | None = None,
    ) -> None:
        """One message on the stock-master downlink; never raises."""
        now = time.time() if now is None else now
        try:
            message = json.loads(payload) if payload else None
        except (ValueError, RecursionError):
            message = None
        if message is None and not payload:
            return  # the retained message was cleared
        if not isinstance(message, dict) or message.keys() != {"jws"}:
            self._refuse(Refused('malformed: the master is {"jws": ...}'))
            return
        verified = verify(
            message["jws"], STOCK_MASTER, audience, principals, RETAINED, now, MAX_MASTER_LENGTH
        )
        if isinstance(verified, Refused):
            self._refuse(verified)
            return
        master = verified.args.get("master")
        if not isinstance(master, dict):
            self._refuse(
                Refused("malformed: args.master must be an object", verified.id, verified.principal)
            )
            return
        applied, why = self.store.update(master)
        if applied:
            _logger.info("stock: master %s, by %s", why, verified.principal)
            body = {
                "version": self.store.current.version,
                "by": verified.principal,
                "id": verified.id,
            }
            self._log.emit([Event("stock.master_updated", body)])
        elif "already in force" in why:
            _logger.debug("stock: master %s", why)
        else:
            self._refuse(Refused(why, verified.id, verified.principal))

    def _refuse(self, refused: Refused) -> None:
        _logger.warning("stock: master refused: %s", refused.reason)
        if refused.principal or self._unproven.admit(STOCK_MASTER, refused.reason, steady()):
            body: dict[str, Any] = {"reason": refused.reason, "version": self.store.current.version}
            if refused.principal:
                body["by"] = refused.principal
            self._log.emit([Event("stock.master_refused", body)])


def _kind(outcome: Outcome) -> Kind:
    """How a scan's outcome counts for ``GarbledReads``: a ``stock.rejected`` for
    ``unreadable`` or ``unknown_location``, else usable (the reader decodes)."""
    for event in outcome.events:
        if event.type == "stock.rejected":
            reason = event.body.get("reason")
            if reason == "unreadable":
                return "unreadable"
            if reason == "unknown_location":
                return "unknown"
    return "usable"


def _summary(change: Change) -> list[Event]:
    return [change.summary] if change.summary is not None else []
