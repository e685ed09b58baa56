from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.modbus_codec import (
    BYTE_ORDERS,
    ByteOrder,
    DataType,
    byte_order_of,
    decode,
    encode,
    encode_raw,
    raw_at,
    register_count,
    swap_bytes,
)


def test_int16_scaled() -> None:
    assert decode([0xFF9C], "int16", scale=0.1) == pytest.approx(-10.0)
    assert decode([245], "int16", scale=0.1) == pytest.approx(24.5)


def test_uint16_offset() -> None:
    assert decode([65535], "uint16", offset=-1.0) == 65534.0


def test_float32_word_orders() -> None:
    hi, lo = struct.unpack(">HH", struct.pack(">f", 31.25))
    assert decode([hi, lo], "float32", "big") == 31.25
    assert decode([lo, hi], "float32", "little") == 31.25
    assert decode([lo, hi], "float32", "big") != 31.25


def test_uint32_big_and_little() -> None:
    assert decode([0x0001, 0x0002], "uint32", "big") == 0x00010002
    assert decode([0x0001, 0x0002], "uint32", "little") == 0x00020001


def test_nan_is_refused() -> None:
    hi, lo = struct.unpack(">HH", struct.pack(">f", math.nan))
    with pytest.raises(ValueError, match="finite"):
        decode([hi, lo], "float32")


def test_wrong_register_count_is_refused() -> None:
    with pytest.raises(ValueError, match="needs 2 registers"):
        decode([1], "int32")


def test_encode_refuses_overflow() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        encode(70000, "int16")


@given(
    st.sampled_from(["int16", "uint16", "int32", "uint32"]),
    st.sampled_from(["big", "little"]),
    st.integers(min_value=-(2**31), max_value=2**32 - 1),
)
def test_integer_round_trip(data_type: DataType, order: str, raw: int) -> None:
    bits = 16 * register_count(data_type)
    signed = not data_type.startswith("u")
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    value = min(max(raw, low), high)
    words = encode(value, data_type, order)  # type: ignore[arg-type]
    assert len(words) == register_count(data_type)
    assert decode(words, data_type, order) == value  # type: ignore[arg-type]


@given(st.floats(allow_nan=False, allow_infinity=False, width=32))
def test_float_round_trip(value: float) -> None:
    assert decode(encode(value, "float32", "little"), "float32", "little") == value


# Byte order. The value 0x12345678 has bytes A=0x12, B=0x34, C=0x56, D=0x78.
WIRE = {
    "ABCD": [0x1234, 0x5678],
    "CDAB": [0x5678, 0x1234],
    "BADC": [0x3412, 0x7856],
    "DCBA": [0x7856, 0x3412],
}


@pytest.mark.parametrize("order", BYTE_ORDERS)
def test_each_byte_order_reads_the_same_value(order: ByteOrder) -> None:
    assert decode(WIRE[order], "uint32", order) == 0x12345678
    assert encode(0x12345678, "uint32", order) == WIRE[order]


def test_word_order_values_are_aliases() -> None:
    assert decode(WIRE["ABCD"], "uint32", "big") == decode(WIRE["ABCD"], "uint32", "ABCD")
    assert decode(WIRE["CDAB"], "uint32", "little") == 0x12345678
    assert byte_order_of("big") == "ABCD" and byte_order_of("little") == "CDAB"


def test_16_bit_types_use_the_byte_half_of_the_order() -> None:
    assert decode([0x1234], "uint16", "ABCD") == decode([0x1234], "uint16", "CDAB") == 0x1234
    assert decode([0x3412], "uint16", "BADC") == decode([0x3412], "uint16", "DCBA") == 0x1234
    assert decode([0x9CFF], "int16", "BADC") == -100


def test_encode_raw_takes_signed_or_unsigned_patterns() -> None:
    assert encode_raw(0x80000000, "int32") == encode_raw(-(2**31), "int32") == [0x8000, 0]
    assert encode_raw(-1, "uint16", "BADC") == [0xFFFF]
    assert encode_raw(0x0001, "int16", "BADC") == [0x0100]
    with pytest.raises(ValueError, match="does not fit"):
        encode_raw(0x10000, "int16")
    with pytest.raises(ValueError, match="integer type"):
        encode_raw(1, "float32")


words32 = st.lists(st.integers(0, 0xFFFF), min_size=2, max_size=2)


@given(words32, st.sampled_from(["int32", "uint32", "float32"]))
def test_byte_swapped_orders_equal_swapping_then_reading(words: list[int], t: DataType) -> None:
    swapped = [swap_bytes(w) for w in words]
    for plain, other in (("ABCD", "BADC"), ("CDAB", "DCBA")):
        try:
            expected = decode(swapped, t, plain)  # type: ignore[arg-type]
        except ValueError:
            with pytest.raises(ValueError):
                decode(words, t, other)  # type: ignore[arg-type]
        else:
            assert decode(words, t, other) == expected  # type: ignore[arg-type]


@given(
    st.sampled_from(["int16", "uint16", "int32", "uint32"]),
    st.sampled_from(BYTE_ORDERS),
    st.integers(min_value=-(2**31), max_value=2**32 - 1),
)
def test_integer_round_trip_in_every_byte_order(
    data_type: DataType, order: ByteOrder, raw: int
) -> None:
    bits = 16 * register_count(data_type)
    signed = not data_type.startswith("u")
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    value = min(max(raw, low), high)
    words = encode(value, data_type, order)
    assert decode(words, data_type, order) == value
    assert raw_at(encode_raw(value, data_type, order), 0, data_type, order) == value


@given(st.floats(allow_nan=False, allow_infinity=False, width=32), st.sampled_from(BYTE_ORDERS))
def test_float_round_trip_in_every_byte_order(value: float, order: ByteOrder) -> None:
    assert decode(encode(value, "float32", order), "float32", order) == value
