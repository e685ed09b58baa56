"""Detection on one analog point: limits, rate of rise, and the faults of the sensor itself.

Everything here answers one question per alarm: does its condition hold now? (The
lifecycle, acknowledgement and shelving, is ``rules/alarms.py``.) Time is the samples' own
``mono`` stamps on the gateway's steady clock (``vocab.clock``), so a late poll neither
shortens a delay nor fakes a rise, and a step of the wall clock moves nothing.

Bad data never moves a process alarm: a bad-quality sample, a value outside the sensor's
physical range, or no good sample at all holds every limit in its last state and, after
``fault_delay`` / ``stale_after`` seconds, raises the point's ``fault`` condition instead;
so does a value frozen within ``frozen_band`` for ``frozen_after`` seconds. A broken
sensor neither fakes a fire nor hides one silently.

Bad data restarts nothing either. A delay counts from the first good sample beyond (or
back inside) the limit, and the rate of rise is fitted on the good samples: a bad reply
in between is a gap, bridged as long as the next good sample comes within ``max_gap``
seconds of the last one; a longer gap restarts the delays and the fit. A link that loses
one reply in seven therefore raises and clears its alarms on time, and it is reported:
when more than ``bad_share`` of the readings in the last ``bad_window`` seconds were bad,
the point's ``fault`` condition holds ("unreliable"), even with good readings in between.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Self

from pydantic import ConfigDict, Field, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from rules.alarms import AlarmDefinition, ConditionChange, Priority
from rules.quality import QualityWindow, ReadingChecks
from vocab.ids import zone_alarm_id as alarm_id
from vocab.samples import Sample

Level = Literal["low_low", "low", "high", "high_high", "rate_of_rise", "fault"]
LimitLevel = Literal["low_low", "low", "high", "high_high"]
LIMIT_LEVELS: tuple[LimitLevel, ...] = ("low_low", "low", "high", "high_high")
DEFAULT_PRIORITY: dict[Level, Priority] = {
    "low_low": "high",
    "low": "medium",
    "high": "medium",
    "high_high": "high",
    "rate_of_rise": "high",
    "fault": "medium",
}


_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")

# The options of a threshold are declared once, here, with their units and defaults; the
# threshold table in the configuration is built from these classes (and forbids unknown keys).
_TABLE = ConfigDict(extra="forbid")


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=_TABLE)
class LimitSpec:
    """One limit: a number, or a table with settings of its own."""

    limit: float = Field(description="in the point's unit")
    deadband: float = Field(
        default=0.0,
        ge=0,
        description='in the point\'s unit, or a percentage of the limit such as "5%": '
        "how far back inside the value must come to clear",
    )
    on_delay: float = Field(
        default=0.0, ge=0, le=3600, description="seconds beyond the limit to raise"
    )
    off_delay: float = Field(default=0.0, ge=0, le=3600, description="seconds back inside to clear")
    priority: Priority | None = Field(default=None, description="default: by level")

    @model_validator(mode="before")
    @classmethod
    def _percent_deadband(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("deadband"), str):
            return data
        match = _PERCENT.match(data["deadband"])
        limit = data.get("limit")
        if match is None or not isinstance(limit, int | float):
            raise ValueError('a deadband is a number or a percentage such as "5%"')
        return {**data, "deadband": abs(limit) * float(match.group(1)) / 100}


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=_TABLE)
class RateSpec:
    """Rise of ``per_minute`` units per minute or more, fitted over ``window`` seconds."""

    per_minute: float = Field(gt=0, description="rise in the point's unit per minute")
    window: float = Field(
        default=60.0, ge=5, le=3600, description="seconds of data the rate is fitted on"
    )
    priority: Priority | None = Field(default=None, description="default: high")


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=_TABLE)
class SensorChecks(ReadingChecks):
    """What makes a point's data bad: the options behind its ``fault`` alarm."""

    fault_delay: float = Field(
        default=10.0, ge=0, le=3600, description="seconds of bad data before the fault alarm"
    )
    stale_after: float = Field(
        default=30.0,
        gt=0,
        le=86400,
        description="seconds with no good sample before the fault alarm",
    )
    frozen_after: float | None = Field(
        default=None, gt=0, description="seconds with no change beyond frozen_band: a fault"
    )
    frozen_band: float = Field(
        default=0.0, ge=0, description="in the point's unit: changes within it count as none"
    )
    range: tuple[float, float] | None = Field(
        default=None, description="[lowest, highest] the sensor measures, in the point's unit"
    )
    fault_priority: Priority | None = Field(default=None, description="default: medium")

    @model_validator(mode="after")
    def _range_in_order(self) -> Self:
        if self.range is not None and self.range[0] >= self.range[1]:
            raise ValueError("range must be [lowest, highest]")
        return self


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=_TABLE)
class ThresholdSpec(SensorChecks):
    """A threshold as it runs: its limits resolved, in its zone, with its point's unit."""

    zone: str
    key: str
    point: str
    limits: Mapping[LimitLevel, LimitSpec] = field(default_factory=dict)
    rate_of_rise: RateSpec | None = None
    unit: str | None = None

    def levels(self) -> list[Level]:
        levels: list[Level] = [lvl for lvl in LIMIT_LEVELS if lvl in self.limits]
        if self.rate_of_rise is not None:
            levels.append("rate_of_rise")
        return [*levels, "fault"]

    def alarm_ids(self) -> list[str]:
        return [alarm_id(self.zone, self.key, lvl) for lvl in self.levels()]

    def definitions(self) -> list[AlarmDefinition]:
        defined: list[AlarmDefinition] = []
        for level in self.levels():
            if level == "fault":
                explicit = self.fault_priority
            elif level == "rate_of_rise":
                explicit = self.rate_of_rise.priority if self.rate_of_rise else None
            else:
                explicit = self.limits[level].priority
            defined.append(
                AlarmDefinition(
                    id=alarm_id(self.zone, self.key, level),
                    priority=explicit or DEFAULT_PRIORITY[level],
                    zone=self.zone,
                    point=self.point,
                    level=level,
                    unit=self.unit,
                )
            )
        return defined


@dataclass(slots=True)
class _Pending:
    active: bool = False
    since: float | None = None


@dataclass(slots=True)
class ThresholdEvaluator:
    spec: ThresholdSpec
    _limits: dict[LimitLevel, _Pending] = field(init=False)
    _rate_active: bool = field(init=False, default=False)
    _history: deque[tuple[float, float]] = field(init=False, default_factory=deque)
    _fault: bool = field(init=False, default=False)
    _quality: QualityWindow = field(init=False)
    _last_good: float | None = field(init=False, default=None)
    _bad_since: float | None = field(init=False, default=None)
    _frozen_ref: tuple[float, float] | None = field(init=False, default=None)
    _watching_since: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._limits = {level: _Pending() for level in self.spec.limits}
        self._quality = QualityWindow(self.spec)

    def restore(self, active_levels: set[str]) -> None:
        """Resume after a restart with the conditions that held, so none is raised twice."""
        for level, state in self._limits.items():
            state.active = level in active_levels
        self._rate_active = "rate_of_rise" in active_levels
        self._fault = "fault" in active_levels

    def evaluate(self, sample: Sample) -> list[ConditionChange]:
        t = sample.mono
        problem = self._data_problem(sample)
        self._quality.add(t, problem is not None)
        if problem is not None:
            if self._bad_since is None:
                self._bad_since = t
            streak = problem if t - self._bad_since >= self.spec.fault_delay else None
            return self._fault_is(t, streak or self._quality.unreliable())
        value = float(sample.value)  # type: ignore[arg-type]  # _data_problem checked it
        if self._last_good is not None and t - self._last_good > self.spec.max_gap:
            self._restart_timers()  # too long without a reading to bridge
        self._bad_since = None
        self._last_good = t
        frozen = self._frozen(t, value)
        if frozen is not None:
            # A frozen value is no reading: like bad data it holds the process alarms (and
            # forgets the rise it was fitting) instead of clearing them.
            self._restart_timers()
            return self._fault_is(t, frozen)
        changes = self._fault_is(t, self._quality.unreliable())
        changes += self._limit_changes(t, value)
        changes += self._rate_changes(t, value)
        return changes

    def tick(self, now: float) -> list[ConditionChange]:
        """A point that stops delivering samples at all is stale: that is a fault too.
        ``now`` is on the steady clock."""
        if self._watching_since is None:
            self._watching_since = now
        if self._fault or self._bad_since is not None:
            return []  # bad samples are arriving: fault_delay decides
        last = self._last_good if self._last_good is not None else self._watching_since
        if now - last < self.spec.stale_after:
            return []
        return self._fault_is(now, f"stale: no good sample for {now - last:.0f} s")

    # -- data quality --------------------------------------------------------------

    def _data_problem(self, sample: Sample) -> str | None:
        if not sample.is_good or sample.value is None:
            return sample.reason or "bad quality"
        if isinstance(sample.value, bool | str):
            return f"a {type(sample.value).__name__} value on an analog point"
        rng = self.spec.range
        if rng is not None and not rng[0] <= sample.value <= rng[1]:
            return f"{sample.value:g} outside the sensor's range {rng[0]:g}..{rng[1]:g}"
        return None

    def _fault_is(self, t: float, reason: str | None) -> list[ConditionChange]:
        """The fault condition holds for ``reason``, or is clear (None); only a change
        is reported."""
        active = reason is not None
        if active == self._fault:
            return []
        self._fault = active
        name = f"{self.spec.zone} {self.spec.key}"
        message = f"{name} sensor fault: {reason}" if active else f"{name} sensor data good again"
        return [self._change("fault", active, t, None, None, message)]

    def _restart_timers(self) -> None:
        for state in self._limits.values():
            state.since = None
        self._history.clear()

    def _frozen(self, ts: float, value: float) -> str | None:
        if self.spec.frozen_after is None:
            return None
        ref = self._frozen_ref
        if ref is None or abs(value - ref[1]) > self.spec.frozen_band:
            self._frozen_ref = (ts, value)
            return None
        if ts - ref[0] >= self.spec.frozen_after:
            return f"frozen: no change beyond {self.spec.frozen_band:g} for {ts - ref[0]:.0f} s"
        return None

    # -- process conditions ----------------------------------------------------------

    def _limit_changes(self, ts: float, value: float) -> list[ConditionChange]:
        changes: list[ConditionChange] = []
        for level, limit in self.spec.limits.items():
            state = self._limits[level]
            high = level in ("high", "high_high")
            beyond = value >= limit.limit if high else value <= limit.limit
            back = (
                (value < limit.limit - limit.deadband)
                if high
                else (value > limit.limit + limit.deadband)
            )
            wants_change = beyond if not state.active else back
            if not wants_change:
                state.since = None
                continue
            if state.since is None:
                state.since = ts
            delay = limit.off_delay if state.active else limit.on_delay
            if ts - state.since >= delay:
                state.active = not state.active
                state.since = None
                changes.append(
                    self._change(
                        level,
                        state.active,
                        ts,
                        value,
                        limit.limit,
                        self._limit_message(level, state.active, value, limit.limit),
                    )
                )
        return changes

    def _rate_changes(self, ts: float, value: float) -> list[ConditionChange]:
        spec = self.spec.rate_of_rise
        if spec is None:
            return []
        history = self._history
        history.append((ts, value))
        while history and history[0][0] < ts - spec.window:
            history.popleft()
        rate = _slope_per_minute(history)
        # Too short a span fits noise: wait for half a window of data before judging.
        if rate is None or ts - history[0][0] < spec.window / 2:
            return []
        rising = rate >= spec.per_minute
        if rising == self._rate_active:
            return []
        self._rate_active = rising
        unit = f" {self.spec.unit}" if self.spec.unit else ""
        verb = "rising at" if rising else "rise ended at"
        message = (
            f"{self.spec.zone} {self.spec.key} {verb} {rate:.1f}{unit}/min "
            f"(limit {spec.per_minute:g}{unit}/min)"
        )
        return [self._change("rate_of_rise", rising, ts, round(rate, 3), spec.per_minute, message)]

    def _limit_message(self, level: str, active: bool, value: float, limit: float) -> str:
        unit = f" {self.spec.unit}" if self.spec.unit else ""
        verb = "raised" if active else "cleared"
        return (
            f"{self.spec.zone} {self.spec.key} {level.replace('_', '-')} {verb} at "
            f"{value:.2f}{unit} (limit {limit:g}{unit})"
        )

    def _change(
        self,
        level: Level,
        active: bool,
        ts: float,
        value: float | None,
        limit: float | None,
        message: str,
    ) -> ConditionChange:
        return ConditionChange(
            alarm_id=alarm_id(self.spec.zone, self.spec.key, level),
            active=active,
            ts=ts,
            value=value,
            limit=limit,
            message=message,
        )


def _slope_per_minute(points: deque[tuple[float, float]]) -> float | None:
    """Least-squares slope: robust to jitter in both the values and the poll times."""
    n = len(points)
    if n < 3:
        return None
    t0 = points[0][0]
    mean_t = sum(t - t0 for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var_t = sum((t - t0 - mean_t) ** 2 for t, _ in points)
    if var_t == 0:
        return None
    cov = sum((t - t0 - mean_t) * (v - mean_v) for t, v in points)
    return cov / var_t * 60.0
