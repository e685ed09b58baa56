from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.modbus_codec import DataType, decode, encode, register_count


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
