"""The ``modbus`` device table: what a plant engineer writes in TOML.

One table per device (one unit id). How the device is reached is the ``transport``
sub-table, a union told apart by its ``type``: ``tcp`` (Modbus TCP), ``rtu_over_tcp`` (RTU
frames through a serial-to-Ethernet converter) or ``rtu`` (a local serial port). The rest,
points, planning and timing, is the same for all three.

The older flat form, ``driver = "modbus_tcp"`` with ``host`` and ``port`` beside the other
keys, is still read: it is rewritten into ``transport = {type = "tcp", ...}`` and logs one
deprecation warning per device.

The commented sample lives in ``config/drivers/modbus.toml``; a test loads it through this
model so that the two cannot drift apart.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.dataclasses import dataclass
from pydantic_core import ArgsKwargs

from drivers.base import DeviceConfig, PointInfo
from drivers.modbus_codec import ByteOrder, DataType, WordOrder, byte_order_of, register_count
from drivers.modbus_plan import BIT_TABLES, MAX_BITS, MAX_REGISTERS, Optimization, Table, width
from drivers.modbus_quality import normalise_sentinels
from vocab.ids import NAME_PATTERN

_logger = logging.getLogger(__name__)

DEPRECATED_DRIVER = "modbus_tcp"


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


class _Transport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @property
    def line(self) -> tuple[str, ...] | None:
        """What devices on one shared line have in common, or ``None`` for a connection
        of the device's own."""
        return None

    def describe(self) -> str:
        """Where the device is, for log lines: ``host:port`` or a device path."""
        raise NotImplementedError


class TcpTransport(_Transport):
    """Modbus TCP: each device table gets a TCP connection of its own."""

    type: Literal["tcp"]
    host: str = Field(min_length=1)
    port: int = Field(502, ge=1, le=65535)

    def describe(self) -> str:
        return f"{self.host}:{self.port}"


class RtuOverTcpTransport(_Transport):
    """RTU frames (unit id and CRC, no MBAP header) over TCP, as serial-to-Ethernet
    converters in transparent mode expect. Behind the converter is one RS-485 line, so
    every device naming the same ``host:port`` shares one connection."""

    type: Literal["rtu_over_tcp"]
    host: str = Field(min_length=1)
    port: int = Field(502, ge=1, le=65535)

    @property
    def line(self) -> tuple[str, ...]:
        return ("rtu_over_tcp", self.host, str(self.port))

    def describe(self) -> str:
        return f"{self.host}:{self.port} (RTU over TCP)"


Parity = Literal["N", "E", "O"]


class RtuTransport(_Transport):
    """Modbus RTU on a local serial port (an RS-485 adapter). Every device naming the same
    ``port`` shares the one open port; they must agree on its settings."""

    type: Literal["rtu"]
    port: str = Field(min_length=1, description="device path, e.g. /dev/ttyUSB0")
    baudrate: int = Field(19200, ge=300, le=4_000_000, description="bits per second")
    bytesize: Literal[7, 8] = 8
    parity: Parity = "N"
    stopbits: Literal[1, 2] = 1

    @property
    def line(self) -> tuple[str, ...]:
        return ("rtu", self.port)

    def describe(self) -> str:
        return self.port


Transport = Annotated[
    TcpTransport | RtuOverTcpTransport | RtuTransport, Field(discriminator="type")
]

# The keys a shared line is opened and paced with: every device on it must give the same.
LINE_SETTINGS = ("baudrate", "bytesize", "parity", "stopbits")
# ``timeout`` is not among them: each unit waits for its own replies as long as it says.
LINE_DEVICE_SETTINGS = ("reconnect_min", "reconnect_max")


class ModbusConfig(DeviceConfig):
    driver: Literal["modbus", "modbus_tcp"]
    transport: Transport
    unit_id: int = Field(1, ge=0, le=255)
    optimization: Optimization = "none"
    max_register_fill: int = Field(50, ge=0, le=125)
    reconnect_min: float = Field(0.5, gt=0, le=60, description="first reconnect delay, seconds")
    reconnect_max: float = Field(30.0, gt=0, le=3600, description="longest reconnect delay")
    workarounds: ModbusWorkarounds = Field(default_factory=ModbusWorkarounds)
    points: list[ModbusPoint] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _deprecated_flat_form(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("driver") != DEPRECATED_DRIVER:
            return data
        if "transport" in data:
            raise ValueError(
                f'driver = "{DEPRECATED_DRIVER}" takes host and port beside the other keys; '
                'with a transport table write driver = "modbus"'
            )
        data = dict(data)
        transport: dict[str, Any] = {"type": "tcp"}
        for key in ("host", "port"):
            if key in data:
                transport[key] = data.pop(key)
        data["driver"] = "modbus"
        data["transport"] = transport
        _logger.warning(
            'device %s: driver = "%s" with host and port is deprecated; write '
            'driver = "modbus" and transport = {type = "tcp", host = ..., port = ...}',
            data.get("name", "?"),
            DEPRECATED_DRIVER,
        )
        return data

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
    def _points_fit_the_request_caps(self) -> ModbusConfig:
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


def check_shared_lines(devices: Sequence[tuple[int, ModbusConfig]]) -> list[tuple[str, str]]:
    """Cross-device checks: devices on one line must open it alike and not share a unit id.

    ``devices`` holds ``(index in [[devices]], config)``; the answer is ``(key path,
    message)`` pairs, e.g. ``("devices[3].transport.baudrate", "9600 differs from ...")``.
    """
    problems: list[tuple[str, str]] = []
    first: dict[tuple[str, ...], tuple[int, ModbusConfig]] = {}
    units: dict[tuple[tuple[str, ...], int], str] = {}
    for index, device in devices:
        line = device.transport.line
        if line is None:
            continue
        where = device.transport.describe()
        if line in first:
            _, owner = first[line]
            keys = [("transport", k) for k in LINE_SETTINGS if hasattr(device.transport, k)]
            for path in [*keys, *(("", k) for k in LINE_DEVICE_SETTINGS)]:
                mine, theirs = _dig(device, path), _dig(owner, path)
                if mine != theirs:
                    problems.append(
                        (
                            f"devices[{index}].{'.'.join(p for p in path if p)}",
                            f"{mine!r} differs from {theirs!r} of device {owner.name!r} "
                            f"on the same line {where}",
                        )
                    )
        else:
            first[line] = (index, device)
        other = units.setdefault((line, device.unit_id), device.name)
        if other != device.name:
            problems.append(
                (
                    f"devices[{index}].unit_id",
                    f"unit id {device.unit_id} is also device {other!r} on the same line {where}",
                )
            )
    return problems


def _dig(device: ModbusConfig, path: tuple[str, str]) -> object:
    table, key = path
    return getattr(device.transport if table else device, key)


# The old name, kept while other code still imports it.
