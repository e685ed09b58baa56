"""The gateway's live state as ``cellsafe alarm list``, the MQTT ``status`` command and the
metrics read it: typed shapes, built in one place (``gateway/app.py``'s ``status``).

Every shape is plain JSON (the MQTT reply and the control socket send it as is).
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from drivers.modbus_load import LineStatus

RelayState = Literal["on", "off", "unknown"]


class AlarmStatus(TypedDict):
    """An alarm that is not normal (ISA-18.2: unack, acked, rtn_unack, latched, ...)."""

    id: str
    state: str
    priority: str
    condition: bool
    acked: bool
    value: float | None
    message: str


class RelayStatus(TypedDict):
    state: RelayState
    faulted: bool


class PollerStatus(TypedDict):
    """Counters since start; ``last_duration`` in seconds."""

    polls: int
    overruns: int
    failures: int
    bad_polls: int
    last_duration: float


class SinkStatus(TypedDict):
    """Records the sink has not delivered, and the age of the oldest, in seconds."""

    backlog: int
    oldest_age: float


class SourceStatus(TypedDict):
    """A push source (OPC UA, scanner): its connection, and why it is down."""

    driver: str
    state: str  # drivers.base.LinkReport.state
    error: str  # empty while connected


class GatewayStatus(TypedDict):
    alarms: list[AlarmStatus]
    chattering: list[str]
    flooding: bool
    relays: dict[str, RelayStatus]
    pollers: dict[str, PollerStatus]
    lines: dict[str, LineStatus]  # shared Modbus lines (RS-485, RTU over TCP), by port
    sources: dict[str, SourceStatus]  # push sources by device name
    safety: dict[str, Any]  # rules.matrix.CauseEffectMatrix.snapshot()
    outbox: int  # records on disk, for any sink
    held: int  # events waiting in memory for a disk that refuses writes
    storage_error: str  # why the disk refuses them; empty while it takes them
    sinks: dict[str, SinkStatus]
    last_seq: int
    uplink: str  # gateway.uplink.session.ConnectionState value
    broker: str  # host:port
    uplink_error: str
