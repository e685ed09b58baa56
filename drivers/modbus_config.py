"""The ``modbus_tcp`` device table: what a plant engineer writes in TOML.

The commented sample lives in ``config/drivers/modbus.toml``; a test loads it through this
model so that the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic.dataclasses import dataclass

from drivers.base import DeviceConfig, PointInfo
from drivers.modbus_codec import DataType, WordOrder, register_count
from drivers.modbus_plan import BIT_TABLES, Optimization, Table
from vocab.ids import NAME_PATTERN


# A slotted dataclass, not a model: a device map may list thousands of points, and a
# model instance costs five times the memory (its own __dict__ and fields-set).
@dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class ModbusPoint:
    key: str = Field(pattern=NAME_PATTERN, max_length=64)
    table: Table = "holding"
    address: int = Field(ge=0, le=65535)
    type: DataType = "int16"
    word_order: WordOrder = "big"
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None

    @model_validator(mode="after")
    def _type_fits_table(self) -> ModbusPoint:
        if self.table in BIT_TABLES and self.type != "bool":
            raise ValueError(f'a {self.table} point must have type = "bool"')
        if self.table not in BIT_TABLES and self.type == "bool":
            raise ValueError('type "bool" needs table = "coil" or "discrete_input"')
        if self.type != "bool" and self.address + register_count(self.type) > 65536:
            raise ValueError(f"a {self.type} at address {self.address} runs past 65535")
        if self.scale == 0:
            raise ValueError("scale must not be 0")
        return self

    @property
    def binary(self) -> bool:
        return self.type == "bool"

    @property
    def writable(self) -> bool:
        return self.table in ("coil", "holding")


class ModbusTcpConfig(DeviceConfig):
    driver: Literal["modbus_tcp"]
    host: str = Field(min_length=1)
    port: int = Field(502, ge=1, le=65535)
    unit_id: int = Field(1, ge=0, le=255)
    optimization: Optimization = "none"
    max_register_fill: int = Field(50, ge=0, le=125)
    reconnect_min: float = Field(0.5, gt=0, le=60, description="first reconnect delay, seconds")
    reconnect_max: float = Field(30.0, gt=0, le=3600, description="longest reconnect delay")
    points: list[ModbusPoint] = Field(min_length=1)

    @field_validator("points")
    @classmethod
    def _unique_keys(cls, points: list[ModbusPoint]) -> list[ModbusPoint]:
        seen: set[str] = set()
        for point in points:
            if point.key in seen:
                raise ValueError(f"point key {point.key!r} is used twice")
            seen.add(point.key)
        return points

    def point_infos(self) -> Sequence[PointInfo]:
        return [
            PointInfo(key=p.key, binary=p.binary, writable=p.writable, unit=p.unit)
            for p in self.points
        ]
