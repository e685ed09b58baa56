"""Register words <-> engineering values. Pure functions, no I/O.

Modbus sends each 16-bit register big-endian (Modbus Application Protocol v1.1b3, 4.2), but
devices disagree on how a value is laid out across those bytes. The layout is named the way
Telegraf's modbus input and vendor manuals name it, by the order in which the value's
bytes arrive, ``A`` being the most significant:

``ABCD``  high word first, each register big-endian (the protocol's own order)
``CDAB``  low word first ("word swap", common on PLCs)
``BADC``  high word first, each register's two bytes swapped ("byte swap")
``DCBA``  fully little-endian

For 16-bit types only the byte half applies: ``ABCD``/``CDAB`` read ``AB``, ``BADC``/``DCBA``
read ``BA``. The older ``word_order`` values are aliases: ``big`` is ``ABCD`` and ``little``
is ``CDAB``, so that every site file written before byte order existed reads the same.

One key naming the whole layout, rather than a byte order and a word order, is what the
manuals print and what Telegraf and Neuron accept; two keys would give the same four
layouts under names nobody reads off a datasheet.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Literal

DataType = Literal["int16", "uint16", "int32", "uint32", "float32", "bool"]
WordOrder = Literal["big", "little"]
ByteOrder = Literal["ABCD", "CDAB", "BADC", "DCBA"]
RegisterOrder = ByteOrder | WordOrder

BYTE_ORDERS: tuple[ByteOrder, ...] = ("ABCD", "CDAB", "BADC", "DCBA")
_SWAP_WORDS: frozenset[str] = frozenset({"CDAB", "DCBA", "little"})
_SWAP_BYTES: frozenset[str] = frozenset({"BADC", "DCBA"})

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


def byte_order_of(word_order: WordOrder) -> ByteOrder:
    """The byte order a legacy ``word_order`` value stands for."""
    return "ABCD" if word_order == "big" else "CDAB"


def swap_bytes(word: int) -> int:
    """A register with its two bytes exchanged: 0x1234 -> 0x3412."""
    return (word & 0xFF) << 8 | word >> 8


def _bytes_to_words(raw: bytes, order: RegisterOrder) -> list[int]:
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    if order in _SWAP_WORDS:
        words.reverse()
    if order in _SWAP_BYTES:
        words = [swap_bytes(w) for w in words]
    return words


_U32 = struct.Struct(">I")
_F32 = struct.Struct(">f")


def decode(
    words: Sequence[int],
    data_type: DataType,
    order: RegisterOrder = "ABCD",
    scale: float = 1.0,
    offset: float = 0.0,
) -> float:
    """Raw registers to ``raw * scale + offset``; ``ValueError`` for NaN or infinity."""
    if data_type == "bool":
        raise ValueError("bool points are read from bit tables, not registers")
    expected = register_count(data_type)
    if len(words) != expected:
        raise ValueError(f"{data_type} needs {expected} registers, got {len(words)}")
    return decode_at(words, 0, data_type, order, scale, offset)


def raw_at(words: Sequence[int], first: int, data_type: DataType, order: RegisterOrder) -> float:
    """The value starting at ``words[first]`` before scale and offset: an ``int`` for the
    integer types (signed ones sign-extended), the IEEE 754 number for ``float32``.

    Integer arithmetic rather than ``struct`` for the integer types: this runs once per
    point per poll, and a block read holds up to 125 of them. The default order costs no
    more than a set look-up.
    """
    hi = words[first]
    if data_type == "uint16" or data_type == "int16":
        if not 0 <= hi <= 0xFFFF:
            raise ValueError("register value outside 0..65535")
        if order in _SWAP_BYTES:
            hi = (hi & 0xFF) << 8 | hi >> 8
        return hi - 0x10000 if data_type == "int16" and hi & 0x8000 else hi
    lo = words[first + 1]
    if order in _SWAP_WORDS:
        hi, lo = lo, hi
    if not (0 <= hi <= 0xFFFF and 0 <= lo <= 0xFFFF):
        raise ValueError("register value outside 0..65535")
    if order in _SWAP_BYTES:
        hi = (hi & 0xFF) << 8 | hi >> 8
        lo = (lo & 0xFF) << 8 | lo >> 8
    whole = hi << 16 | lo
    if data_type == "uint32":
        return whole
    if data_type == "int32":
        return whole - 0x100000000 if whole & 0x80000000 else whole
    value: float = _F32.unpack(_U32.pack(whole))[0]
    return value


def scaled(raw: float, data_type: DataType, scale: float = 1.0, offset: float = 0.0) -> float:
    """``raw * scale + offset``; ``ValueError`` when that is NaN or infinite."""
    value = raw * scale + offset
    if not math.isfinite(value):
        raise ValueError(f"{data_type} value is not a finite number")
    return float(value)


def decode_at(
    words: Sequence[int],
    first: int,
    data_type: DataType,
    order: RegisterOrder = "ABCD",
    scale: float = 1.0,
    offset: float = 0.0,
) -> float:
    """``decode`` of the value starting at ``words[first]``, without copying the block."""
    value = raw_at(words, first, data_type, order) * scale + offset
    if not math.isfinite(value):
        raise ValueError(f"{data_type} value is not a finite number")
    return float(value)


def encode(
    value: float,
    data_type: DataType,
    order: RegisterOrder = "ABCD",
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
    return _bytes_to_words(packed, order)


def encode_raw(raw: int, data_type: DataType, order: RegisterOrder = "ABCD") -> list[int]:
    """Registers holding the bit pattern ``raw``, given signed or unsigned (``-1`` and
    ``0xFFFF`` are the same int16): how a device puts a sentinel on the wire."""
    if data_type in ("bool", "float32"):
        raise ValueError(f"a raw integer pattern needs an integer type, not {data_type}")
    bits = 16 * register_count(data_type)
    if not -(1 << (bits - 1)) <= raw < 1 << bits:
        raise ValueError(f"{raw} does not fit {bits} bits")
    return _bytes_to_words((raw & ((1 << bits) - 1)).to_bytes(bits // 8, "big"), order)
