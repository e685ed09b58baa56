"""Request planning: which block reads fetch a device's points. Pure functions, no I/O.

Points are sorted by address and merged into blocks, as Telegraf's modbus input does, so
that a device with a thousand neighbouring registers costs eight requests, not a thousand.
``none`` merges only touching or overlapping points; ``max_insert`` also bridges gaps of
up to ``max_fill`` unused registers, trading a few wasted words for fewer round trips;
``off`` reads every point on its own, for devices that refuse multi-register reads.
Blocks never exceed the protocol limits, 125 registers or 2000 bits per request (Modbus
Application Protocol v1.1b3, 6.1-6.4), nor a device's own smaller caps: some devices answer
exception 3 (illegal data value) to any read longer than, say, 61 registers. Those caps,
and forcing one request per point, come from the device's ``workarounds`` table, as
Telegraf's ``max_register_per_request`` and ``one_request_per_field`` do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from drivers.modbus_codec import DataType, register_count

Table = Literal["holding", "input", "coil", "discrete_input"]
Optimization = Literal["off", "none", "max_insert"]

MAX_REGISTERS = 125
MAX_BITS = 2000
BIT_TABLES: frozenset[str] = frozenset({"coil", "discrete_input"})


class RequestShape(Protocol):
    """The planner-level part of a device's ``workarounds`` table."""

    @property
    def max_registers_per_request(self) -> int: ...
    @property
    def max_bits_per_request(self) -> int: ...
    @property
    def one_request_per_point(self) -> bool: ...


class PlannedPoint(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def table(self) -> Table: ...
    @property
    def address(self) -> int: ...
    @property
    def type(self) -> DataType: ...


@dataclass(frozen=True, slots=True)
class ReadBlock:
    table: Table
    start: int
    count: int
    keys: tuple[str, ...]


def width(point: PlannedPoint) -> int:
    return 1 if point.table in BIT_TABLES else register_count(point.type)


def plan_reads(
    points: Iterable[PlannedPoint],
    optimization: Optimization = "none",
    max_fill: int = 0,
    shape: RequestShape | None = None,
) -> list[ReadBlock]:
    """The block reads that fetch ``points``, sorted by table and address.

    ``shape`` caps the registers and bits per request below the protocol limits and may
    force one request per point; ``ValueError`` when a point is wider than its cap.
    """
    max_registers, max_bits = MAX_REGISTERS, MAX_BITS
    if shape is not None:
        max_registers = min(max_registers, shape.max_registers_per_request)
        max_bits = min(max_bits, shape.max_bits_per_request)
        if shape.one_request_per_point:
            optimization = "off"
    fill = max_fill if optimization == "max_insert" else 0
    by_table: dict[Table, list[PlannedPoint]] = {}
    for point in points:
        by_table.setdefault(point.table, []).append(point)

    for table, members in by_table.items():
        limit = max_bits if table in BIT_TABLES else max_registers
        for point in members:
            if width(point) > limit:
                raise ValueError(
                    f"point {point.key!r} ({point.type}) needs {width(point)} registers, "
                    f"more than the {limit} per request allowed"
                )

    blocks: list[ReadBlock] = []
    if optimization == "off":
        return [
            ReadBlock(table, p.address, width(p), (p.key,))
            for table in sorted(by_table)
            for p in sorted(by_table[table], key=lambda p: p.address)
        ]
    for table in sorted(by_table):
        limit = max_bits if table in BIT_TABLES else max_registers
        ordered = sorted(by_table[table], key=lambda p: (p.address, -width(p)))
        start = end = -1
        keys: list[str] = []
        for point in ordered:
            p_end = point.address + width(point)
            fits = keys and point.address <= end + fill and max(end, p_end) - start <= limit
            if fits:
                end = max(end, p_end)
                keys.append(point.key)
                continue
            if keys:
                blocks.append(ReadBlock(table, start, end - start, tuple(keys)))
            start, end, keys = point.address, p_end, [point.key]
        if keys:
            blocks.append(ReadBlock(table, start, end - start, tuple(keys)))
    return blocks
