"""Config tables for detection and the alarm lifecycle: thresholds, inputs, policies.

A threshold may name a ``quantity``; the zone's hazard class then supplies every key the
threshold leaves out, from ``[hazard_classes.<class>.<quantity>]`` (shipped with cited
defaults in ``config/hazard-classes.toml``). An engineer sets a class, not thirty numbers,
and can still override any one of them on the point.
"""

from __future__ import annotations

import itertools
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rules.alarms import AlarmDefinition, FloodPolicy, Priority
from rules.discrete import DiscreteSpec
from rules.thresholds import LIMIT_LEVELS, LimitLevel, LimitSpec, RateSpec, ThresholdSpec
from vocab.ids import NAME_PATTERN, parse_point_id

HazardClass = Literal["cells", "electrolyte", "powder", "general"]
Quantity = Literal[
    "temperature", "humidity", "dew_point", "h2", "co", "hf", "voc", "smoke", "other"
]
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Deadband = float | str


def _deadband_value(deadband: Deadband, limit: float) -> float:
    if isinstance(deadband, str):
        match = _PERCENT.match(deadband)
        assert match is not None  # validated on load
        return abs(limit) * float(match.group(1)) / 100
    return deadband


def _check_deadband(value: Deadband | None) -> Deadband | None:
    if isinstance(value, str) and not _PERCENT.match(value):
        raise ValueError('a deadband is a number or a percentage such as "5%"')
    if isinstance(value, float | int) and value < 0:
        raise ValueError("a deadband cannot be negative")
    return value


class LimitConfig(_Table):
    """One limit with settings of its own; a plain number takes the threshold's settings."""

    limit: float
    priority: Priority | None = None
    deadband: Deadband | None = None
    on_delay: float | None = Field(None, ge=0, le=3600)
    off_delay: float | None = Field(None, ge=0, le=3600)

    _deadband = field_validator("deadband")(_check_deadband)


class RateConfig(_Table):
    per_minute: float = Field(gt=0, description="rise in the point's unit per minute")
    window: float = Field(60.0, ge=5, le=3600, description="seconds of data the rate is fitted on")
    priority: Priority | None = None


class ThresholdPolicy(_Table):
    """Everything a threshold can say except which point: the shape of a class default."""

    low_low: float | LimitConfig | None = None
    low: float | LimitConfig | None = None
    high: float | LimitConfig | None = None
    high_high: float | LimitConfig | None = None
    rate_of_rise: float | RateConfig | None = Field(
        None, description="per minute, or a table with per_minute and window"
    )
    deadband: Deadband = Field(0.0, description="absolute, or a percentage of the limit")
    on_delay: float = Field(0.0, ge=0, le=3600, description="seconds beyond a limit to raise")
    off_delay: float = Field(0.0, ge=0, le=3600, description="seconds back inside to clear")
    fault_delay: float = Field(10.0, ge=0, le=3600, description="seconds of bad data to fault")
    stale_after: float = Field(30.0, gt=0, le=86400, description="seconds with no good sample")
    frozen_after: float | None = Field(None, gt=0, description="seconds with no change: fault")
    frozen_band: float = Field(0.0, ge=0, description="changes within this count as none")
    range: tuple[float, float] | None = Field(None, description="the sensor's physical range")
    fault_priority: Priority | None = None

    _deadband = field_validator("deadband")(_check_deadband)

    @model_validator(mode="after")
    def _limits_in_order(self) -> ThresholdPolicy:
        present = [(lvl, self._limit(lvl)) for lvl in LIMIT_LEVELS if self._limit(lvl) is not None]
        for (lower_name, lower), (upper_name, upper) in itertools.pairwise(present):
            assert lower is not None and upper is not None
            if lower >= upper:
                raise ValueError(f"{lower_name} ({lower}) must be below {upper_name} ({upper})")
        if self.range is not None and self.range[0] >= self.range[1]:
            raise ValueError("range must be [lowest, highest]")
        return self

    def _limit(self, level: LimitLevel) -> float | None:
        value: float | LimitConfig | None = getattr(self, level)
        return value.limit if isinstance(value, LimitConfig) else value


class ThresholdConfig(ThresholdPolicy):
    point: str = Field(description="point id, '<device>.<key>'")
    name: str | None = Field(None, pattern=NAME_PATTERN, description="default: the point's key")
    quantity: Quantity | None = Field(None, description="take unset keys from the hazard class")

    @model_validator(mode="after")
    def _something_to_watch(self) -> ThresholdConfig:
        if all(self._limit(lvl) is None for lvl in LIMIT_LEVELS) and self.rate_of_rise is None:
            hint = "" if self.quantity else " (or a quantity with class defaults)"
            raise ValueError(f"set a limit or rate_of_rise{hint}")
        return self

    @property
    def key(self) -> str:
        return self.name or parse_point_id(self.point)[1]

    def to_spec(self, zone: str, unit: str | None = None) -> ThresholdSpec:
        limits: dict[LimitLevel, LimitSpec] = {}
        for level in LIMIT_LEVELS:
            raw: float | LimitConfig | None = getattr(self, level)
            if raw is None:
                continue
            own = raw if isinstance(raw, LimitConfig) else LimitConfig(limit=raw)
            deadband = own.deadband if own.deadband is not None else self.deadband
            limits[level] = LimitSpec(
                limit=own.limit,
                deadband=_deadband_value(deadband, own.limit),
                on_delay=own.on_delay if own.on_delay is not None else self.on_delay,
                off_delay=own.off_delay if own.off_delay is not None else self.off_delay,
                priority=own.priority,
            )
        rate = self.rate_of_rise
        return ThresholdSpec(
            zone=zone,
            key=self.key,
            point=self.point,
            limits=limits,
            rate_of_rise=(
                None
                if rate is None
                else RateSpec(
                    per_minute=rate.per_minute, window=rate.window, priority=rate.priority
                )
                if isinstance(rate, RateConfig)
                else RateSpec(per_minute=rate)
            ),
            fault_delay=self.fault_delay,
            stale_after=self.stale_after,
            frozen_after=self.frozen_after,
            frozen_band=self.frozen_band,
            valid_range=self.range,
            unit=unit,
            fault_priority=self.fault_priority,
        )


class InputConfig(_Table):
    """A binary input that is an alarm: a fire panel's fire/trouble output, a gas relay."""

    point: str
    name: str = Field(pattern=NAME_PATTERN, max_length=64)
    active_when: bool = True
    on_delay: float = Field(0.0, ge=0, le=3600)
    priority: Priority = "high"
    latching: bool = False
    fault_delay: float = Field(10.0, ge=0, le=3600)

    def to_spec(self, zone: str) -> DiscreteSpec:
        return DiscreteSpec(
            zone=zone,
            key=self.name,
            point=self.point,
            active_when=self.active_when,
            on_delay=self.on_delay,
            priority=self.priority,
            latching=self.latching,
            fault_delay=self.fault_delay,
        )


class SuppressionConfig(_Table):
    """Hide ``alarms`` while any alarm matching ``while_active`` holds (by design)."""

    alarms: list[str] = Field(min_length=1)
    while_active: list[str] = Field(min_length=1)


class AlarmsSection(_Table):
    chatter_count: int = Field(3, ge=2, description="raises within chatter_window: chattering")
    chatter_window: float = Field(60.0, gt=0)
    flood_count: int = Field(10, ge=1, description="more raises than this in flood_window")
    flood_window: float = Field(600.0, gt=0)
    max_shelve: float = Field(8 * 3600.0, gt=0, description="longest shelve, seconds")
    latching: list[str] = Field(default_factory=list, description="alarm id patterns")
    suppress: list[SuppressionConfig] = Field(default_factory=list)

    def flood_policy(self) -> FloodPolicy:
        return FloodPolicy(
            chatter_count=self.chatter_count,
            chatter_window=self.chatter_window,
            flood_count=self.flood_count,
            flood_window=self.flood_window,
            max_shelve=self.max_shelve,
        )

    def apply(self, definitions: list[AlarmDefinition]) -> list[AlarmDefinition]:
        """Latching and suppression are decided per alarm id pattern."""
        from dataclasses import replace
        from fnmatch import fnmatchcase

        result = []
        for d in definitions:
            latching = d.latching or any(fnmatchcase(d.id, p) for p in self.latching)
            suppressed_by = tuple(
                w
                for s in self.suppress
                if any(fnmatchcase(d.id, a) for a in s.alarms)
                for w in s.while_active
            )
            result.append(replace(d, latching=latching, suppressed_by=suppressed_by))
        return result


def apply_class_defaults(data: Any) -> Any:
    """Fill each threshold's unset keys from its zone's class, then from ``general``."""
    if not isinstance(data, dict):
        return data
    classes = data.get("hazard_classes")
    zones = data.get("zones")
    if not isinstance(classes, dict) or not isinstance(zones, list):
        return data

    def policy(hazard_class: Any, quantity: Any) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for name in ("general", hazard_class):
            table = classes.get(name)
            found = table.get(quantity) if isinstance(table, dict) else None
            if isinstance(found, dict):
                merged.update(found)
        return merged

    merged_zones = []
    for zone in zones:
        if not isinstance(zone, dict) or not isinstance(zone.get("thresholds"), list):
            merged_zones.append(zone)
            continue
        hazard_class = zone.get("hazard_class", "general")
        thresholds = [
            {**policy(hazard_class, t["quantity"]), **t}
            if isinstance(t, dict) and "quantity" in t
            else t
            for t in zone["thresholds"]
        ]
        merged_zones.append({**zone, "thresholds": thresholds})
    return {**data, "zones": merged_zones}
