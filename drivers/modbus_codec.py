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


def _words_to_bytes(words: Sequence[int], word_order: WordOrder) -> bytes:
    ordered = list(words) if word_order == "big" else list(reversed(words))
    return b"".join(w.to_bytes(2, "big") for w in ordered)


def _bytes_to_words(raw: bytes, word_order: WordOrder) -> list[int]:
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return words if word_order == "big" else list(reversed(words))


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
    if any(not 0 <= w <= 0xFFFF for w in words):
        raise ValueError("register value outside 0..65535")
    (raw,) = struct.unpack(_STRUCT[data_type], _words_to_bytes(words, word_order))
    value = float(raw) * scale + offset
    if not math.isfinite(value):
        raise ValueError(f"{data_type} value is not a finite number")
    return value


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
