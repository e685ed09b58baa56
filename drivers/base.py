"""The protocols the core sees: a driver reads samples, writes a value, closes; a push
driver is also started with a publisher and pushes what it has.

Every driver also brings its own pydantic config model, a subclass of ``DeviceConfig``,
so that the core validates a device table without knowing which bus it is on.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from vocab.ids import NAME_PATTERN
from vocab.samples import Sample, Value
from vocab.scans import Scan


@dataclass(frozen=True, slots=True, kw_only=True)
class PointInfo:
    """What the rest of the gateway may know about a point, whatever bus it is on."""

    key: str
    binary: bool
    writable: bool
    unit: str | None = None


class DeviceConfig(BaseModel):
    """Keys every device table has; a driver's model adds its own and lists its points."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN, max_length=64)
    driver: str
    poll_interval: float = Field(1.0, gt=0, le=3600, description="seconds between polls")
    timeout: float = Field(1.0, gt=0, le=60, description="seconds to wait for one reply")

    def point_infos(self) -> Sequence[PointInfo]:
        raise NotImplementedError


class WriteError(Exception):
    """A write the device did not accept, or could not be sent at all."""


class Driver(Protocol):
    """A polled source (Telegraf's ``Input``): the core's poller calls ``read`` on the
    device's period. Every driver answers ``read`` and ``write``, push sources included,
    because relays verify their commands by reading back."""

    async def read(self, keys: Collection[str] | None = None) -> list[Sample]:
        """Read all points, or only ``keys``; failures come back as bad-quality samples."""
        ...

    async def write(self, key: str, value: Value) -> None:
        """Send one value; raise ``WriteError`` when the device did not take it."""
        ...

    async def close(self) -> None: ...


class Publisher(Protocol):
    """Where a push source delivers: samples to the rules, scans to the stock logic."""

    def samples(self, samples: Sequence[Sample], /) -> None: ...

    def scans(self, scans: Sequence[Scan], /) -> None: ...


@runtime_checkable
class PacedDriver(Driver, Protocol):
    """A polled source whose period may be stretched while it runs (a device on a shared
    Modbus line that is overrun): the poller asks before each wait."""

    def stretch(self) -> float:
        """How many times its configured period the poller should wait now (>= 1.0)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkReport:
    """A push source's connection as the operator sees it: ``state`` a short word
    (``connected``, ``reconnecting``, ``refused``, ...), ``error`` why it is not connected."""

    state: str
    error: str | None = None


@runtime_checkable
class ServiceDriver(Driver, Protocol):
    """A push source (Telegraf's ``ServiceInput``): OPC UA subscriptions, scanners.

    ``start`` returns once the source runs; from then on it calls ``publisher`` from the
    event loop whenever it has something, and marks its points bad itself when its
    connection is lost. ``close`` stops it. The core makes no poller for it.
    """

    async def start(self, publisher: Publisher) -> None: ...

    def link(self) -> LinkReport:
        """The connection now; a push source has no poller whose figures would tell."""
        ...


@runtime_checkable
class Acknowledger(Protocol):
    """A source whose points mirror alarms of the device itself (OPC UA Alarms & Conditions)
    and can pass an operator's acknowledge in the gateway back to the device."""

    def acknowledgeable(self, key: str) -> bool:
        """The point ``key`` stands for a condition the configuration lets us acknowledge."""
        ...

    async def acknowledge(self, key: str, comment: str) -> None:
        """Acknowledge on the device; ``WriteError`` when the device did not take it."""
        ...
