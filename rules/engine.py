"""Routes samples to the threshold evaluators of their point and keeps the active set."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gateway.core.samples import Sample
from rules.thresholds import AlarmTransition, ThresholdEvaluator, ThresholdSpec


class RuleEngine:
    def __init__(self, specs: Iterable[ThresholdSpec]) -> None:
        self._by_point: dict[str, list[ThresholdEvaluator]] = {}
        for spec in specs:
            self._by_point.setdefault(spec.point, []).append(ThresholdEvaluator(spec))
        self._active: set[str] = set()
        self._unseen: set[str] = set(self._by_point)

    @property
    def active(self) -> frozenset[str]:
        return frozenset(self._active)

    @property
    def primed(self) -> bool:
        """True once every watched point has delivered a sample, good or bad.

        Until then the active set says nothing yet about the points not heard from, and
        acting on it would, after a restart, switch outputs to rest for a moment.
        """
        return not self._unseen

    def evaluate(self, samples: Sequence[Sample]) -> list[AlarmTransition]:
        transitions: list[AlarmTransition] = []
        for sample in samples:
            self._unseen.discard(sample.point)
            for evaluator in self._by_point.get(sample.point, ()):
                transitions.extend(evaluator.evaluate(sample))
        for t in transitions:
            if t.raised:
                self._active.add(t.alarm_id)
            else:
                self._active.discard(t.alarm_id)
        return transitions
