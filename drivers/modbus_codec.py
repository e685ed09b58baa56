"""Register words <-> engineering values. Pure functions, no I/O.

Modbus sends each 16-bit register big-endian; devices disagree only on the order of the
words in a 32-bit value, so ``word_order`` is the one knob: ``big`` means the high word
comes first (register N holds bits 31..16), ``little`` the reverse.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Literal

DataType = Literal["int16", "uint16", "int32", "uint32", "float32", "bool"]
WordOrder = Literal["big", "little"]

_STRUCT: dict[str, str] = {
    "int16": ">h",
    "uint16": ">H",
    "int32": ">i",
    "uint32": ">I",
    "float32": ">f",
}


def register_count(data_type: DataType) -> int:
    """How many 16-bit registers (or, for ``bool``, bits) one value takes."""
    return 2 if data_type in ("int32", "uint32", "float32") else 1


def _bytes_to_words(raw: bytes, word_order: WordOrder) -> list[int]:
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return words if word_order == "big" else list(reversed(words))


_U32 = struct.Struct(">I")
_F32 = struct.Struct(">f")


def decode(
    words: Sequence[int],
    data_type: DataType,
    word_order: WordOrder = "big",
    scale: float = 1.0,
    offset: float = 0.0,
) -> float:
    """Raw registers to ``raw * scale + offset``; ``ValueError`` for NaN or infinity."""
    if data_type == "bool":
        raise ValueError("bool points are read from bit tables, not registers")
    expected = register_count(data_type)
    if len(words) != expected:
        raise ValueError(f"{data_type} needs {expected} registers, got {len(words)}")
    return decode_at(words, 0, data_type, word_order, scale, offset)


def decode_at(
    words: Sequence[int],
    first: int,
    data_type: DataType,
    word_order: WordOrder = "big",
    scale: float = 1.0,
    offset: float = 0.0,
) -> float:
    """``decode`` of the value starting at ``words[first]``, without copying the block.

    Integer arithmetic rather than ``struct`` for the integer types: this runs once per
    point per poll, and a block read holds up to 125 of them.
    """
    hi = words[first]
    if data_type == "uint16" or data_type == "int16":
        if not 0 <= hi <= 0xFFFF:
            raise ValueError("register value outside 0..65535")
        raw: float = hi - 0x10000 if data_type == "int16" and hi & 0x8000 else hi
    else:
        lo = words[first + 1]
        if word_order == "little":
            hi, lo = lo, hi
        if not (0 <= hi <= 0xFFFF and 0 <= lo <= 0xFFFF):
            raise ValueError("register value outside 0..65535")
        whole = hi << 16 | lo
        if data_type == "uint32":
            raw = whole
        elif data_type == "int32":
            raw = whole - 0x100000000 if whole & 0x80000000 else whole
        else:
            raw = _F32.unpack(_U32.pack(whole))[0]
    value = raw * scale + offset
    if not math.isfinite(value):
        raise ValueError(f"{data_type} value is not a finite number")
    return float(value)


def encode(
    value: float,
    data_type: DataType,
    word_order: WordOrder = "big",
    scale: float = 1.0,
    offset: float = 0.0,
) -> list[int]:
    """The inverse of ``decode``; integers are rounded, out-of-range values refused."""
    if data_type == "bool":
        raise ValueError("bool points are written to coils, not registers")
    if scale == 0:
        raise ValueError("scale 0 cannot be inverted")
    raw = (value - offset) / scale
    fmt = _STRUCT[data_type]
    try:
        packed = struct.pack(fmt, raw if data_type == "float32" else round(raw))
    except (struct.error, OverflowError) as err:
        raise ValueError(f"{value} does not fit a {data_type}") from err
    return _bytes_to_words(packed, word_order)
