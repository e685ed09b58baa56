from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.modbus_codec import encode_raw
from drivers.modbus_config import ModbusPoint
from drivers.modbus_quality import (
    describe_raw,
    evaluate,
    normalise_sentinel,
    range_reason,
)


def test_int32_sentinel_is_bad_before_scaling() -> None:
    point = ModbusPoint(key="t", address=0, type="int32", scale=0.1, not_available=(-2147483648,))
    assert evaluate([0x8000, 0x0000], 0, point) == (None, "not available (0x80000000)")
    value, reason = evaluate([0x0000, 0x00F5], 0, point)
    assert reason is None
    assert value == pytest.approx(24.5)


def test_sentinel_written_as_the_unsigned_pattern_matches_too() -> None:
    point = ModbusPoint(key="t", address=0, type="int16", not_available=(0x7FFF, 0x8000))
    assert point.not_available == (32767, -32768)
    assert evaluate([0x8000], 0, point) == (None, "not available (0x8000)")
    assert evaluate([0x7FFF], 0, point) == (None, "not available (0x7FFF)")
    assert evaluate([0x7FFE], 0, point) == (32766.0, None)


def test_sentinel_is_compared_after_byte_order() -> None:
    point = ModbusPoint(
        key="t", address=0, type="int32", byte_order="DCBA", not_available=(0x80000000,)
    )
    on_the_wire = encode_raw(0x80000000, "int32", "DCBA")
    assert on_the_wire == [0x0000, 0x0080]
    assert evaluate(on_the_wire, 0, point) == (None, "not available (0x80000000)")


def test_float_sentinel() -> None:
    point = ModbusPoint(key="t", address=0, type="float32", not_available=(-1e9,))
    hi, lo = struct.unpack(">HH", struct.pack(">f", -1e9))
    assert evaluate([hi, lo], 0, point) == (None, "not available (-1000000000.0)")


def test_outside_the_valid_range_is_bad_with_the_engineering_value() -> None:
    point = ModbusPoint(key="rh", address=0, type="uint16", valid_range=(0, 100))
    assert evaluate([12000], 0, point) == (None, "12000 outside the valid range 0..100")
    assert evaluate([100], 0, point) == (100.0, None)
    scaled = ModbusPoint(key="t", address=0, scale=0.1, valid_range=(-40, 85))
    assert evaluate([0xFE0C], 0, scaled) == (None, "-50 outside the valid range -40..85")


def test_undecodable_registers_are_bad_not_raised() -> None:
    point = ModbusPoint(key="f", address=0, type="float32")
    hi, lo = struct.unpack(">HH", struct.pack(">f", math.inf))
    assert evaluate([hi, lo], 0, point) == (None, "float32 value is not a finite number")


def test_sentinels_that_do_not_fit_the_type_are_refused() -> None:
    with pytest.raises(ValueError, match="does not fit a int16"):
        normalise_sentinel(0x10000, "int16")
    with pytest.raises(ValueError, match="not an integer"):
        normalise_sentinel(1.5, "uint32")
    assert normalise_sentinel(-1, "uint16") == 0xFFFF
    assert describe_raw(-1, "uint32") == "0xFFFFFFFF"


def test_range_reason_is_none_inside_and_without_a_range() -> None:
    assert range_reason(5.0, None) is None
    assert range_reason(5.0, (5.0, 5.0)) is None
    assert range_reason(5.5, (5.0, 5.0)) == "5.5 outside the valid range 5..5"


@given(
    st.integers(0, 0xFFFF),
    st.lists(st.integers(-32768, 32767), max_size=3),
    st.tuples(st.integers(-40000, 40000), st.integers(0, 40000)),
)
def test_a_reading_is_good_exactly_when_no_check_objects(
    word: int, sentinels: list[int], bounds: tuple[int, int]
) -> None:
    lo, span = bounds
    point = ModbusPoint(
        key="p", address=0, scale=0.5, not_available=tuple(sentinels), valid_range=(lo, lo + span)
    )
    raw = word - 0x10000 if word & 0x8000 else word
    value, reason = evaluate([word], 0, point)
    expected_good = raw not in sentinels and lo <= raw * 0.5 <= lo + span
    assert (reason is None) == expected_good
    assert (value is None) == (not expected_good)
    if expected_good:
        assert value == raw * 0.5
