"""Routes samples to the evaluators of their point and hands on what changed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from rules.alarms import AlarmDefinition, ConditionChange
from rules.discrete import DiscreteEvaluator, DiscreteSpec
from rules.thresholds import ThresholdEvaluator, ThresholdSpec
from vocab.samples import Sample


class _Evaluator(Protocol):
    def evaluate(self, sample: Sample) -> list[ConditionChange]: ...
    def tick(self, now: float) -> list[ConditionChange]: ...
    def restore(self, active_levels: set[str]) -> None: ...


class RuleEngine:
    def __init__(
        self,
        thresholds: Iterable[ThresholdSpec],
        discretes: Iterable[DiscreteSpec] = (),
    ) -> None:
        self._by_point: dict[str, list[_Evaluator]] = {}
        self._prefixes: list[tuple[str, _Evaluator]] = []
        self.definitions: list[AlarmDefinition] = []
        specs: list[ThresholdSpec | DiscreteSpec] = [*thresholds, *discretes]
        for spec in specs:
            evaluator: _Evaluator = (
                ThresholdEvaluator(spec)
                if isinstance(spec, ThresholdSpec)
                else DiscreteEvaluator(spec)
            )
            self._by_point.setdefault(spec.point, []).append(evaluator)
            self._prefixes.append((f"{spec.zone}.{spec.key}.", evaluator))
            self.definitions += spec.definitions()
        self._unseen: set[str] = set(self._by_point)

    @property
    def primed(self) -> bool:
        """True once every watched point has delivered a sample, good or bad.

        Until then the conditions say nothing yet about the points not heard from, and
        acting on them would, after a restart, switch outputs to rest for a moment.
        """
        return not self._unseen

    def restore(self, active: Iterable[str]) -> None:
        active = set(active)
        for prefix, evaluator in self._prefixes:
            evaluator.restore({a[len(prefix) :] for a in active if a.startswith(prefix)})

    def evaluate(self, samples: Sequence[Sample]) -> list[ConditionChange]:
        changes: list[ConditionChange] = []
        for sample in samples:
            self._unseen.discard(sample.point)
            for evaluator in self._by_point.get(sample.point, ()):
                changes.extend(evaluator.evaluate(sample))
        return changes

    def tick(self, now: float) -> list[ConditionChange]:
        changes: list[ConditionChange] = []
        for _, evaluator in self._prefixes:
            changes.extend(evaluator.tick(now))
        return changes
