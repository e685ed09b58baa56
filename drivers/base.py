"""The one protocol the core sees: a driver reads samples, writes a value, closes.

Every driver also brings its own pydantic config model, a subclass of ``DeviceConfig``,
so that the core validates a device table without knowing which bus it is on.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from gateway.core.samples import Sample, Value

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"


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
    async def read(self, keys: Collection[str] | None = None) -> list[Sample]:
        """Read all points, or only ``keys``; failures come back as bad-quality samples."""
        ...

    async def write(self, key: str, value: Value) -> None:
        """Send one value; raise ``WriteError`` when the device did not take it."""
        ...

    async def close(self) -> None: ...
