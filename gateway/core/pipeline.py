"""Samples in, events and relay demands out: the one-way middle of the gateway."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from actuators.relay import Relay
from gateway.core.events import EventSink
from gateway.core.samples import Sample
from rules.effects import EffectPlanner
from rules.engine import RuleEngine


class Pipeline:
    def __init__(
        self,
        engine: RuleEngine,
        planner: EffectPlanner,
        relays: Mapping[str, Relay],
        sink: EventSink,
    ) -> None:
        self._engine = engine
        self._planner = planner
        self._relays = dict(relays)
        self._sink = sink

    def __call__(self, samples: Sequence[Sample]) -> None:
        transitions = self._engine.evaluate(samples)
        if transitions:
            self._sink.emit([t.event() for t in transitions])
        if not self._engine.primed:
            return
        for name, demand in self._planner.demands(self._engine.active).items():
            self._relays[name].request(demand)
