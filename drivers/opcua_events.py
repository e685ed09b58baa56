"""Alarms & Conditions events as condition states. Pure functions, no I/O.

An event of an AlarmConditionType (OPC 10000-9, 5.8) carries, among its fields, the
ConditionId (the select clause with an empty browse path and AttributeId NodeId, which
asyncua names ``NodeId``), ``SourceName``, ``ConditionName``, ``Severity`` (1-1000),
``Message``, ``Retain``, ``ActiveState/Id`` and ``AckedState/Id``. ``ConditionState``
is that, typed; ``match`` finds the configured condition an event belongs to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from asyncua import ua

from drivers.opcua_config import OpcuaCondition

REFRESH_START = ua.NodeId(ua.Int32(ua.ObjectIds.RefreshStartEventType))
REFRESH_END = ua.NodeId(ua.Int32(ua.ObjectIds.RefreshEndEventType))


@dataclass(frozen=True, slots=True, kw_only=True)
class ConditionState:
    """One condition as an event reported it."""

    condition_id: ua.NodeId | None
    event_id: bytes | None
    source: str
    name: str
    severity: int
    active: bool
    acked: bool
    retain: bool
    message: str


def _text(value: Any) -> str:
    if isinstance(value, ua.LocalizedText):
        return value.Text or ""
    return "" if value is None else str(value)


def event_type(event: Any) -> ua.NodeId | None:
    value = getattr(event, "EventType", None)
    return value if isinstance(value, ua.NodeId) else None


def condition_state(event: Any) -> ConditionState | None:
    """The condition an event reports, or ``None`` for an event that is no condition's
    (no ``ActiveState/Id`` among its fields)."""
    active = getattr(event, "ActiveState/Id", None)
    if not isinstance(active, bool):
        return None
    condition_id = getattr(event, "NodeId", None)
    event_id = getattr(event, "EventId", None)
    severity = getattr(event, "Severity", 0)
    return ConditionState(
        condition_id=condition_id if isinstance(condition_id, ua.NodeId) else None,
        event_id=event_id if isinstance(event_id, bytes) else None,
        source=_text(getattr(event, "SourceName", None)),
        name=_text(getattr(event, "ConditionName", None)),
        severity=severity if isinstance(severity, int) else 0,
        active=active,
        acked=bool(getattr(event, "AckedState/Id", False)),
        retain=bool(getattr(event, "Retain", False)),
        message=_text(getattr(event, "Message", None)),
    )


def match(conditions: Sequence[OpcuaCondition], state: ConditionState) -> list[OpcuaCondition]:
    """The configured conditions ``state`` belongs to (by SourceName and ConditionName)."""
    return [
        c
        for c in conditions
        if c.source == state.source and (c.condition is None or c.condition == state.name)
    ]


def holds(condition: OpcuaCondition, state: ConditionState) -> bool:
    """The binary point's value for ``state``: active at ``min_severity`` or above."""
    return state.active and state.severity >= condition.min_severity


# Alarm priorities by severity band, after OPC 10000-9, 5.8.2 ("Severity ... 1-1000"),
# split in four as ISA-18.2 priorities commonly are (low, medium, high, critical).
SEVERITY_BANDS: tuple[tuple[int, str], ...] = ((801, "critical"), (501, "high"), (201, "medium"))


def priority_for(severity: int) -> str:
    """``900`` -> ``"critical"``; the gateway priority a severity suggests."""
    for lowest, priority in SEVERITY_BANDS:
        if severity >= lowest:
            return priority
    return "low"
