"""Request planning: which block reads fetch a device's points. Pure functions, no I/O.

Points are sorted by address and merged into blocks, as Telegraf's modbus input does, so
that a device with a thousand neighbouring registers costs eight requests, not a thousand.
``none`` merges only touching or overlapping points; ``max_insert`` also bridges gaps of
up to ``max_fill`` unused registers, trading a few wasted words for fewer round trips;
``off`` reads every point on its own, for devices that refuse multi-register reads.
Blocks never exceed the protocol limits: 125 registers or 2000 bits per request.
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
) -> list[ReadBlock]:
    fill = max_fill if optimization == "max_insert" else 0
    by_table: dict[Table, list[PlannedPoint]] = {}
    for point in points:
        by_table.setdefault(point.table, []).append(point)

    blocks: list[ReadBlock] = []
    if optimization == "off":
        return [
            ReadBlock(table, p.address, width(p), (p.key,))
            for table in sorted(by_table)
            for p in sorted(by_table[table], key=lambda p: p.address)
        ]
    for table in sorted(by_table):
        limit = MAX_BITS if table in BIT_TABLES else MAX_REGISTERS
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
