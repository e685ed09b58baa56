"""When a decoded register is a reading and when it is not. Pure functions, no I/O.

Devices say "no value" in-band: SunSpec's models mark an unimplemented or unavailable
int16 as 0x8000, uint16 as 0xFFFF, int32 as 0x80000000 and uint32 as 0xFFFFFFFF (SunSpec
Information Model Specification, "Unimplemented registers"), and many vendors publish
their own table of such values. A point lists its device's sentinels in ``not_available``
as raw values, compared on the raw integer after byte and word order and before scale
and offset, so the number is the one printed in the manual whatever the point's scaling.
``valid_range`` is in engineering units: a sensor reading outside its measuring range is
a fault, not a measurement. Either makes the sample bad, with a reason, never good.
(Home Assistant's modbus integration learned the same need: ``nan_value``, ``min_value``,
``max_value``; there the limits clamp, here they reject, since a clamped hydrogen reading
is a wrong one.)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from drivers.modbus_codec import DataType, RegisterOrder, raw_at, register_count, scaled


class CheckedPoint(Protocol):
    """What ``evaluate`` needs of a point; ``ModbusPoint`` has it."""

    @property
    def type(self) -> DataType: ...
    @property
    def byte_order(self) -> RegisterOrder: ...
    @property
    def scale(self) -> float: ...
    @property
    def offset(self) -> float: ...
    @property
    def not_available(self) -> tuple[float, ...]: ...
    @property
    def valid_range(self) -> tuple[float, float] | None: ...


def normalise_sentinel(value: float, data_type: DataType) -> float:
    """A ``not_available`` entry as ``raw_at`` would return it for ``data_type``.

    Integer types accept the value signed or as its unsigned bit pattern, so ``0x80000000``
    (how manuals print it, and TOML allows hex) and ``-2147483648`` mean the same int32.
    ``ValueError`` for a value the type cannot hold.
    """
    if data_type == "bool":
        raise ValueError("a bool point has no not_available values")
    if data_type == "float32":
        return float(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{value} is not an integer, and {data_type} holds integers")
        value = int(value)
    bits = 16 * register_count(data_type)
    if not -(1 << (bits - 1)) <= value < 1 << bits:
        raise ValueError(f"{value} does not fit a {data_type}")
    pattern = int(value) & ((1 << bits) - 1)
    if data_type.startswith("u"):
        return pattern
    return pattern - (1 << bits) if pattern >> (bits - 1) else pattern


def normalise_sentinels(values: Iterable[float], data_type: DataType) -> tuple[float, ...]:
    """``normalise_sentinel`` of each, duplicates dropped, order kept."""
    return tuple(dict.fromkeys(normalise_sentinel(v, data_type) for v in values))


def describe_raw(raw: float, data_type: DataType) -> str:
    """A sentinel as a manual prints it: the hex bit pattern for integers (0x80000000)."""
    if data_type == "float32" or isinstance(raw, float):
        return repr(raw)
    digits = 4 * register_count(data_type)
    return f"0x{int(raw) & ((1 << (4 * digits)) - 1):0{digits}X}"


def not_available_reason(
    raw: float, data_type: DataType, not_available: Sequence[float]
) -> str | None:
    """``"not available (0x80000000)"`` when ``raw`` is one of the sentinels, else None."""
    if raw in not_available:
        return f"not available ({describe_raw(raw, data_type)})"
    return None


def range_reason(value: float, valid_range: tuple[float, float] | None) -> str | None:
    """``"12000 outside the valid range 0..100"`` when ``value`` is outside, else None."""
    if valid_range is None:
        return None
    lo, hi = valid_range
    if lo <= value <= hi:
        return None
    return f"{value:g} outside the valid range {lo:g}..{hi:g}"


def evaluate(
    words: Sequence[int], first: int, point: CheckedPoint
) -> tuple[float, None] | tuple[None, str]:
    """The point's value starting at ``words[first]`` and ``None``, or ``None`` and why the
    registers hold no reading (undecodable, a sentinel, outside the valid range)."""
    try:
        raw = raw_at(words, first, point.type, point.byte_order)
        if point.not_available:
            reason = not_available_reason(raw, point.type, point.not_available)
            if reason is not None:
                return None, reason
        value = scaled(raw, point.type, point.scale, point.offset)
    except ValueError as err:
        return None, str(err)
    reason = range_reason(value, point.valid_range)
    if reason is not None:
        return None, reason
    return value, None
