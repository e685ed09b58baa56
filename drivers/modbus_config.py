"""The ``modbus_tcp`` device table: what a plant engineer writes in TOML.

The commented sample lives in ``config/drivers/modbus.toml``; a test loads it through this
model so that the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.dataclasses import dataclass
from pydantic_core import ArgsKwargs

from drivers.base import DeviceConfig, PointInfo
from drivers.modbus_codec import ByteOrder, DataType, WordOrder, byte_order_of, register_count
from drivers.modbus_plan import BIT_TABLES, MAX_BITS, MAX_REGISTERS, Optimization, Table, width
from drivers.modbus_quality import normalise_sentinels
from vocab.ids import NAME_PATTERN


# A slotted dataclass, not a model: a device map may list thousands of points, and a
# model instance costs five times the memory (its own __dict__ and fields-set).
@dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class ModbusPoint:
    key: str = Field(pattern=NAME_PATTERN, max_length=64)
    table: Table = "holding"
    address: int = Field(ge=0, le=65535)
    type: DataType = "int16"
    byte_order: ByteOrder = Field(
        default="ABCD",
        description="order of the value's bytes on the wire, A most significant: ABCD, "
        "CDAB (word swap), BADC (byte swap) or DCBA; 16-bit types use the byte half",
    )
    word_order: WordOrder = Field(
        default="big",
        description="deprecated since 0.2, use byte_order: big is ABCD, little is CDAB; "
        "kept equal to byte_order's word half",
    )
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None
    not_available: tuple[int | float, ...] = Field(
        default=(),
        description="raw values (before scale and offset, signed or as the unsigned bit "
        "pattern) that the device sends for 'no value'; such a reading is bad",
    )
    valid_range: tuple[float, float] | None = Field(
        default=None,
        description="[lo, hi] in engineering units (after scale and offset); a reading "
        "outside is bad",
    )

    @model_validator(mode="before")
    @classmethod
    def _one_register_order(cls, data: Any) -> Any:
        """Reconcile the deprecated ``word_order`` with ``byte_order``."""
        fields = data.kwargs if isinstance(data, ArgsKwargs) else data
        if not isinstance(fields, dict):
            return data
        word, byte = fields.get("word_order"), fields.get("byte_order")
        if word in ("big", "little") and byte is None:
            fields["byte_order"] = byte_order_of(word)
        elif byte in ("ABCD", "CDAB", "BADC", "DCBA"):
            implied = "little" if byte in ("CDAB", "DCBA") else "big"
            if word is not None and word != implied:
                raise ValueError(
                    f'word_order = "{word}" contradicts byte_order = "{byte}"; '
                    "drop word_order, byte_order replaces it"
                )
            fields["word_order"] = implied
        return data

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
        if self.type == "bool" and (self.not_available or self.valid_range is not None):
            raise ValueError("not_available and valid_range apply to register points only")
        if self.valid_range is not None and self.valid_range[0] > self.valid_range[1]:
            lo, hi = self.valid_range
            raise ValueError(f"valid_range [{lo}, {hi}] has its low end above its high end")
        if self.not_available:
            # Stored as raw_at returns them, so that a poll compares without converting.
            sentinels = normalise_sentinels(self.not_available, self.type)
            object.__setattr__(self, "not_available", sentinels)
        return self

    @property
    def binary(self) -> bool:
        return self.type == "bool"

    @property
    def writable(self) -> bool:
        return self.table in ("coil", "holding")


class ModbusWorkarounds(BaseModel):
    """``[devices.workarounds]``: quirks of devices that do not follow the protocol, as
    in Telegraf's modbus input. Every default is the protocol's own behaviour."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_registers_per_request: int = Field(
        MAX_REGISTERS,
        ge=1,
        le=MAX_REGISTERS,
        description="most registers one read may ask for (protocol limit 125, "
        "Modbus Application Protocol v1.1b3, 6.3)",
    )
    max_bits_per_request: int = Field(
        MAX_BITS,
        ge=1,
        le=MAX_BITS,
        description="most coils or discrete inputs one read may ask for (protocol limit "
        "2000, Modbus Application Protocol v1.1b3, 6.1)",
    )
    one_request_per_point: bool = Field(
        False, description="read every point in a request of its own, never merged"
    )
    pause_between_requests: float = Field(
        0.0, ge=0, le=10, description="seconds to wait between two requests to the device"
    )
    pause_after_connect: float = Field(
        0.0, ge=0, le=30, description="seconds to wait after connecting before the first request"
    )
    close_connection_after_poll: bool = Field(
        False, description="close the connection after every poll, reconnect for the next"
    )


class ModbusTcpConfig(DeviceConfig):
    driver: Literal["modbus_tcp"]
    host: str = Field(min_length=1)
    port: int = Field(502, ge=1, le=65535)
    unit_id: int = Field(1, ge=0, le=255)
    optimization: Optimization = "none"
    max_register_fill: int = Field(50, ge=0, le=125)
    reconnect_min: float = Field(0.5, gt=0, le=60, description="first reconnect delay, seconds")
    reconnect_max: float = Field(30.0, gt=0, le=3600, description="longest reconnect delay")
    workarounds: ModbusWorkarounds = Field(default_factory=ModbusWorkarounds)
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

    @model_validator(mode="after")
    def _points_fit_the_request_caps(self) -> ModbusTcpConfig:
        caps = self.workarounds
        for point in self.points:
            limit = (
                caps.max_bits_per_request
                if point.table in BIT_TABLES
                else caps.max_registers_per_request
            )
            if width(point) > limit:
                raise ValueError(
                    f"device {self.name!r}: point {point.key!r} ({point.type}) needs "
                    f"{width(point)} registers, more than max_registers_per_request = {limit}"
                )
        return self

    def point_infos(self) -> Sequence[PointInfo]:
        return [
            PointInfo(key=p.key, binary=p.binary, writable=p.writable, unit=p.unit)
            for p in self.points
        ]
