"""Limit alarms on one analog point, with deadband, on-delay, off-delay and sensor fault.

Time is the samples' own timestamps, never the wall clock at evaluation, so a delayed
poll neither shortens nor stretches a delay. Bad-quality data never moves a process
alarm: it holds the last state and, if it lasts ``fault_delay`` seconds, raises the
point's ``fault`` alarm instead, because a lost sensor must be an alarm, not silence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from gateway.core.events import Event, alarm_event
from gateway.core.samples import Sample

Level = Literal["low_low", "low", "high", "high_high", "fault"]
LIMIT_LEVELS: tuple[Level, ...] = ("low_low", "low", "high", "high_high")


def alarm_id(zone: str, key: str, level: Level) -> str:
    return f"{zone}.{key}.{level}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ThresholdSpec:
    zone: str
    key: str
    point: str
    limits: Mapping[Level, float]
    deadband: float = 0.0
    on_delay: float = 0.0
    off_delay: float = 0.0
    fault_delay: float = 10.0
    unit: str | None = None

    def alarm_ids(self) -> list[str]:
        levels: list[Level] = [lvl for lvl in LIMIT_LEVELS if lvl in self.limits]
        return [alarm_id(self.zone, self.key, lvl) for lvl in [*levels, "fault"]]


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmTransition:
    alarm_id: str
    zone: str
    key: str
    point: str
    level: Level
    raised: bool
    ts: float
    value: float | None
    limit: float | None
    unit: str | None
    reason: str | None = None

    def event(self) -> Event:
        return alarm_event(
            raised=self.raised,
            alarm_id=self.alarm_id,
            level=self.level,
            message=self.message,
            ts=self.ts,
            zone=self.zone,
            point=self.point,
            value=self.value,
            limit=self.limit,
            unit=self.unit,
        )

    @property
    def message(self) -> str:
        what = f"{self.zone} {self.key} {self.level.replace('_', '-')}"
        if self.level == "fault":
            detail = f"sensor fault: {self.reason}" if self.raised else "sensor data good again"
            return f"{what}: {detail}"
        unit = f" {self.unit}" if self.unit else ""
        verb = "raised" if self.raised else "cleared"
        return f"{what} {verb} at {self.value:.2f}{unit} (limit {self.limit:g}{unit})"


@dataclass(slots=True)
class _LimitState:
    active: bool = False
    pending_since: float | None = None


@dataclass(slots=True)
class ThresholdEvaluator:
    spec: ThresholdSpec
    _limits: dict[Level, _LimitState] = field(init=False)
    _fault_active: bool = field(init=False, default=False)
    _bad_since: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._limits = {level: _LimitState() for level in self.spec.limits}

    def active_levels(self) -> list[Level]:
        levels: list[Level] = [lvl for lvl, st in self._limits.items() if st.active]
        return [*levels, "fault"] if self._fault_active else levels

    def evaluate(self, sample: Sample) -> list[AlarmTransition]:
        if not sample.is_good or not isinstance(sample.value, int | float):
            return self._on_bad(sample)
        transitions = self._on_good_fault(sample)
        value = float(sample.value)
        for level, limit in self.spec.limits.items():
            state = self._limits[level]
            beyond = self._beyond(level, value, limit)
            # While active, the alarm stays until the value is back past the deadband.
            wants_change = (not state.active and beyond) or (
                state.active and not beyond and self._inside_deadband_clear(level, value, limit)
            )
            if not wants_change:
                state.pending_since = None
                continue
            delay = self.spec.off_delay if state.active else self.spec.on_delay
            if state.pending_since is None:
                state.pending_since = sample.ts
            if sample.ts - state.pending_since >= delay:
                state.active = not state.active
                state.pending_since = None
                transitions.append(self._transition(level, state.active, sample, value, limit))
        return transitions

    @staticmethod
    def _beyond(level: Level, value: float, limit: float) -> bool:
        return value >= limit if level in ("high", "high_high") else value <= limit

    def _inside_deadband_clear(self, level: Level, value: float, limit: float) -> bool:
        if level in ("high", "high_high"):
            return value < limit - self.spec.deadband
        return value > limit + self.spec.deadband

    def _on_good_fault(self, sample: Sample) -> list[AlarmTransition]:
        self._bad_since = None
        if not self._fault_active:
            return []
        self._fault_active = False
        value = float(sample.value) if isinstance(sample.value, int | float) else None
        return [self._transition("fault", False, sample, value, None)]

    def _on_bad(self, sample: Sample) -> list[AlarmTransition]:
        for state in self._limits.values():
            state.pending_since = None
        if self._bad_since is None:
            self._bad_since = sample.ts
        if self._fault_active or sample.ts - self._bad_since < self.spec.fault_delay:
            return []
        self._fault_active = True
        return [self._transition("fault", True, sample, None, None)]

    def _transition(
        self, level: Level, raised: bool, sample: Sample, value: float | None, limit: float | None
    ) -> AlarmTransition:
        return AlarmTransition(
            alarm_id=alarm_id(self.spec.zone, self.spec.key, level),
            zone=self.spec.zone,
            key=self.spec.key,
            point=self.spec.point,
            level=level,
            raised=raised,
            ts=sample.ts,
            value=value,
            limit=limit,
            unit=self.spec.unit,
            reason=sample.reason,
        )
