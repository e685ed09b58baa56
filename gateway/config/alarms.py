"""Config tables for detection and the alarm lifecycle: thresholds and the alarm policy.

Each option is declared once, next to the logic that uses it (``rules/thresholds.py``,
``rules/alarms.py``); the tables here add only what is the configuration's own: which
point, the hazard class a threshold takes its defaults from, and limits written as plain
numbers.

A threshold may name a ``quantity``; the zone's hazard class then supplies every key the
threshold leaves out, from ``[hazard_classes.<class>.<quantity>]`` (shipped with cited
defaults in ``config/hazard-classes.toml``). An engineer sets a class, not thirty numbers,
and can still override any one of them on the point.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.dataclasses import dataclass

from rules.alarms import AlarmDefinition, FloodPolicy
from rules.thresholds import (
    LIMIT_LEVELS,
    LimitLevel,
    LimitSpec,
    RateSpec,
    SensorChecks,
    ThresholdSpec,
)
from vocab.ids import NAME_PATTERN, parse_point_id

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

HazardClass = Literal["cells", "electrolyte", "powder", "general"]
Quantity = Literal[
    "temperature", "humidity", "dew_point", "h2", "co", "hf", "voc", "smoke", "other"
]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_PYDANTIC_TABLE = ConfigDict(extra="forbid")

# A threshold may set these options of a limit once for all its limits; a limit's own
# table wins over them. They are declared on ``LimitSpec``, not here.
LIMIT_DEFAULTS = ("deadband", "on_delay", "off_delay")


def options(table: object, shape: type[DataclassInstance]) -> dict[str, Any]:
    """The values of ``table`` for every option declared by the dataclass ``shape``."""
    return {f.name: getattr(table, f.name) for f in dataclasses.fields(shape)}


def _limit_tables(data: dict[str, Any]) -> dict[str, Any]:
    """Numbers to tables, and the threshold's limit defaults under each limit's own keys."""
    shared = {k: data[k] for k in LIMIT_DEFAULTS if k in data}
    result = {k: v for k, v in data.items() if k not in LIMIT_DEFAULTS}
    for level in LIMIT_LEVELS:
        value = data.get(level)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = {"limit": value}
        if isinstance(value, dict):
            result[level] = {**shared, **value}
    rate = data.get("rate_of_rise")
    if isinstance(rate, int | float) and not isinstance(rate, bool):
        result["rate_of_rise"] = {"per_minute": rate}
    return result


@dataclass(frozen=True, slots=True, kw_only=True, config=_PYDANTIC_TABLE)
class ThresholdPolicy(SensorChecks):
    """Everything a threshold can say except which point: the shape of a class default.

    A limit is a number or a table of ``LimitSpec`` options; ``deadband``, ``on_delay`` and
    ``off_delay`` set beside the limits apply to every limit that does not set its own.
    ``rate_of_rise`` is a rise per minute, or a table of ``RateSpec`` options.
    """

    low_low: LimitSpec | None = Field(default=None, description="the lowest limit")
    low: LimitSpec | None = Field(default=None, description="the low limit")
    high: LimitSpec | None = Field(default=None, description="the high limit")
    high_high: LimitSpec | None = Field(default=None, description="the highest limit")
    rate_of_rise: RateSpec | None = Field(
        default=None, description="rise in the point's unit per minute, or a table"
    )

    @model_validator(mode="before")
    @classmethod
    def _limits_as_tables(cls, data: Any) -> Any:
        return _limit_tables(data) if isinstance(data, dict) else data

    @model_validator(mode="after")
    def _limits_in_order(self) -> Self:
        for (lower_name, lower), (upper_name, upper) in itertools.pairwise(self.limits().items()):
            if lower.limit >= upper.limit:
                raise ValueError(
                    f"{lower_name} ({lower.limit}) must be below {upper_name} ({upper.limit})"
                )
        return self

    def limits(self) -> dict[LimitLevel, LimitSpec]:
        found = {lvl: getattr(self, lvl) for lvl in LIMIT_LEVELS}
        return {lvl: limit for lvl, limit in found.items() if limit is not None}


@dataclass(frozen=True, slots=True, kw_only=True, config=_PYDANTIC_TABLE)
class ThresholdConfig(ThresholdPolicy):
    point: str = Field(description="point id, '<device>.<key>'")
    name: str | None = Field(
        default=None, pattern=NAME_PATTERN, description="default: the point's key"
    )
    quantity: Quantity | None = Field(
        default=None, description="take unset keys from the hazard class"
    )

    @model_validator(mode="after")
    def _something_to_watch(self) -> Self:
        if not self.limits() and self.rate_of_rise is None:
            hint = "" if self.quantity else " (or a quantity with class defaults)"
            raise ValueError(f"set a limit or rate_of_rise{hint}")
        return self

    @property
    def key(self) -> str:
        return self.name or parse_point_id(self.point)[1]

    def to_spec(self, zone: str, unit: str | None = None) -> ThresholdSpec:
        return ThresholdSpec(
            zone=zone,
            key=self.key,
            point=self.point,
            limits=self.limits(),
            rate_of_rise=self.rate_of_rise,
            unit=unit,
            **options(self, SensorChecks),
        )


class SuppressionConfig(_Table):
    """Hide ``alarms`` while any alarm matching ``while_active`` holds (by design)."""

    alarms: list[str] = Field(min_length=1)
    while_active: list[str] = Field(min_length=1)


@dataclass(frozen=True, slots=True, kw_only=True, config=_PYDANTIC_TABLE)
class AlarmsSection(FloodPolicy):
    """``[alarms]``: the flood policy's options, then latching and suppression by pattern."""

    latching: tuple[str, ...] = Field(default=(), description="alarm id patterns")
    suppress: tuple[SuppressionConfig, ...] = Field(default=(), description="suppression by design")

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
