"""Binary inputs that are alarms in themselves: fire-panel outputs, gas-detector relays.

A fire panel's "fire", "trouble" and "supervisory" outputs, wired to a Modbus input
module, become alarms of the zone: the condition holds while the input shows
``active_when`` for ``on_delay`` seconds. Bad data is a fault, as for analog points, and
as there a bad reading restarts no delay, and an unreliable input is a fault
(``rules/quality.py``). Times are the samples' ``mono`` stamps (steady clock).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass as pydantic_dataclass

from rules.alarms import AlarmDefinition, ConditionChange, Priority
from rules.quality import QualityWindow, ReadingChecks
from vocab.ids import NAME_PATTERN
from vocab.ids import zone_alarm_id as alarm_id
from vocab.samples import Sample


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class DiscreteInput(ReadingChecks):
    """A ``[[zones.inputs]]`` table: each option is declared here and nowhere else."""

    point: str = Field(description="'<device>.<key>' of a binary input")
    name: str = Field(
        pattern=NAME_PATTERN, max_length=64, description="the alarm's key in the zone"
    )
    active_when: bool = Field(default=True, description="the input's value while the alarm holds")
    on_delay: float = Field(
        default=0.0, ge=0, le=3600, description="seconds it must show active before the alarm holds"
    )
    priority: Priority = Field(default="high", description="the alarm's priority")
    latching: bool = Field(default=False, description="the alarm stays until reset")
    fault_delay: float = Field(
        default=10.0, ge=0, le=3600, description="seconds of bad data to fault"
    )


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class DiscreteSpec(DiscreteInput):
    """An input as it runs: its table and the zone it belongs to."""

    zone: str

    @property
    def key(self) -> str:
        return self.name

    def definitions(self) -> list[AlarmDefinition]:
        return [
            AlarmDefinition(
                id=alarm_id(self.zone, self.key, "alarm"),
                priority=self.priority,
                latching=self.latching,
                zone=self.zone,
                point=self.point,
                level="alarm",
            ),
            AlarmDefinition(
                id=alarm_id(self.zone, self.key, "fault"),
                priority="medium",
                zone=self.zone,
                point=self.point,
                level="fault",
            ),
        ]

    def alarm_ids(self) -> list[str]:
        return [d.id for d in self.definitions()]


@dataclass(slots=True)
class DiscreteEvaluator:
    spec: DiscreteSpec
    _active: bool = field(init=False, default=False)
    _since: float | None = field(init=False, default=None)
    _fault: bool = field(init=False, default=False)
    _bad_since: float | None = field(init=False, default=None)
    _last_good: float | None = field(init=False, default=None)
    _quality: QualityWindow = field(init=False)

    def __post_init__(self) -> None:
        self._quality = QualityWindow(self.spec)

    def restore(self, active_levels: set[str]) -> None:
        self._active = "alarm" in active_levels
        self._fault = "fault" in active_levels

    def tick(self, now: float) -> list[ConditionChange]:
        return []

    def evaluate(self, sample: Sample) -> list[ConditionChange]:
        t = sample.mono
        bad = not sample.is_good or sample.value is None
        self._quality.add(t, bad)
        if bad:
            if self._bad_since is None:
                self._bad_since = t
            streak = sample.reason or "bad quality"
            held = t - self._bad_since >= self.spec.fault_delay
            return self._fault_is(t, streak if held else self._quality.unreliable())
        if self._last_good is not None and t - self._last_good > self.spec.max_gap:
            self._since = None  # too long without a reading to bridge
        self._last_good = t
        self._bad_since = None
        changes = self._fault_is(t, self._quality.unreliable())
        shows = bool(sample.value) == self.spec.active_when
        if shows == self._active:
            self._since = None
            return changes
        if self._since is None:
            self._since = t
        if not shows or t - self._since >= self.spec.on_delay:
            self._active = shows
            self._since = None
            name = f"{self.spec.zone} {self.spec.key}"
            changes.append(
                self._change("alarm", shows, t, f"{name} {'active' if shows else 'back to normal'}")
            )
        return changes

    def _fault_is(self, t: float, reason: str | None) -> list[ConditionChange]:
        if (reason is not None) == self._fault:
            return []
        self._fault = reason is not None
        name = f"{self.spec.zone} {self.spec.key}"
        message = f"{name} input fault: {reason}" if reason else f"{name} input good again"
        return [self._change("fault", self._fault, t, message)]

    def _change(self, level: str, active: bool, ts: float, message: str) -> ConditionChange:
        return ConditionChange(
            alarm_id=alarm_id(self.spec.zone, self.spec.key, level),
            active=active,
            ts=ts,
            message=message,
        )
