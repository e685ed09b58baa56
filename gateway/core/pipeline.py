"""Samples in, events and relay demands out: the one-way middle of the gateway.

Detection says which conditions changed; the alarm manager turns that into shown states
and events; the log stores events and alarm states in one transaction; the
cause-and-effect matrix turns the alarms whose conditions hold into relay demands.

The relays exist before the pipeline: they report their faults through the condition bus,
which the pipeline reads, and take their demands from it; nothing is filled in later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from actuators.relay import Relay
from gateway.storage.log import EventLog
from rules.alarms import AlarmManager, AlarmRecord, ConditionChange, Outcome
from rules.engine import RuleEngine
from rules.matrix import CauseEffectMatrix
from vocab.clock import steady
from vocab.events import Event
from vocab.samples import Sample

ALARM_STATE_PREFIX = "alarm:"
MATRIX_STATE = "matrix"


class Pipeline:
    def __init__(
        self,
        engine: RuleEngine,
        alarms: AlarmManager,
        matrix: CauseEffectMatrix,
        relays: Mapping[str, Relay],
        log: EventLog,
    ) -> None:
        self.engine = engine
        self.alarms = alarms
        self.matrix = matrix
        self._relays = relays
        self._log = log
        self.ticks = 0  # rules clock turns, for the watchdog's progress check
        # Called with the events of each operator command, after they are stored.
        self.command_listeners: list[Callable[[Sequence[Event]], None]] = []

    @staticmethod
    def saved_matrix(log: EventLog) -> dict[str, Any]:
        saved: dict[str, Any] = log.load_state(MATRIX_STATE).get("", {})
        return saved

    @staticmethod
    def saved_alarms(log: EventLog) -> dict[str, AlarmRecord]:
        return {k: AlarmRecord.from_json(v) for k, v in log.load_state(ALARM_STATE_PREFIX).items()}

    async def run_clock(self, period: float = 1.0) -> None:
        """Time-driven rules (stale sensors, shelve expiry, chatter and flood windows)."""
        while True:
            await asyncio.sleep(period)
            self.tick(steady())

    def __call__(self, samples: Sequence[Sample]) -> None:
        self._apply(self.alarms.on_conditions(self.engine.evaluate(samples)))

    def condition(self, change: ConditionChange) -> None:
        """A condition reported from outside detection, e.g. an actuator that does not obey."""
        self._apply(self.alarms.on_conditions([change]))

    def tick(self, now: float) -> None:
        self.ticks += 1
        outcome = self.alarms.on_conditions(self.engine.tick(now))
        outcome.extend(self.alarms.tick(now))
        self._apply(outcome)

    def command(self, action: Callable[[AlarmManager], Outcome]) -> Outcome:
        """Run an operator command; ``CommandRefused`` passes through to the caller."""
        outcome = action(self.alarms)
        self._apply(outcome)
        for listener in self.command_listeners:
            listener(outcome.events)
        return outcome

    def safety(self, action: Callable[[CauseEffectMatrix], Event]) -> Event:
        """Run an operator command on the matrix; ``CommandRefused`` passes through."""
        event = action(self.matrix)
        self._log.emit([event], {MATRIX_STATE: self.matrix.export()})
        self._drive()
        return event

    def record(self, event: Event) -> None:
        """An event that changes no alarm, e.g. a refused command for the audit trail."""
        self._log.emit([event])

    def _apply(self, outcome: Outcome) -> None:
        if outcome.events or outcome.changed:
            self._log.emit(
                outcome.events,
                {ALARM_STATE_PREFIX + k: r.to_json() for k, r in outcome.changed.items()},
            )
        self._drive()

    def _drive(self) -> None:
        if not self.engine.primed:
            return
        actual = {name: relay.state for name, relay in self._relays.items()}
        demands, events = self.matrix.evaluate(self.alarms.conditions(), steady(), actual)
        if events:
            # Latches and overrides change only with an event: store them with it.
            self._log.emit(events, {MATRIX_STATE: self.matrix.export()})
        for name, demand in demands.items():
            self._relays[name].request(demand)
