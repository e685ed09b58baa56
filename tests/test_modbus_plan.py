from __future__ import annotations

from dataclasses import dataclass

import pytest

from drivers.modbus_codec import DataType
from drivers.modbus_plan import ReadBlock, Table, plan_reads


@dataclass(frozen=True)
class P:
    key: str
    address: int
    type: DataType = "int16"
    table: Table = "holding"


def test_neighbours_merge_into_one_block() -> None:
    points = [P("a", 0), P("b", 1), P("c", 2, "float32")]
    assert plan_reads(points) == [ReadBlock("holding", 0, 4, ("a", "b", "c"))]


def test_order_of_configuration_does_not_matter() -> None:
    points = [P("c", 2), P("a", 0), P("b", 1)]
    assert plan_reads(points) == [ReadBlock("holding", 0, 3, ("a", "b", "c"))]


def test_gap_splits_without_optimisation() -> None:
    points = [P("a", 0), P("b", 5)]
    assert plan_reads(points) == [
        ReadBlock("holding", 0, 1, ("a",)),
        ReadBlock("holding", 5, 1, ("b",)),
    ]


def test_max_insert_bridges_small_gaps_only() -> None:
    points = [P("a", 0), P("b", 5), P("c", 100)]
    assert plan_reads(points, "max_insert", max_fill=10) == [
        ReadBlock("holding", 0, 6, ("a", "b")),
        ReadBlock("holding", 100, 1, ("c",)),
    ]


def test_off_reads_every_point_on_its_own() -> None:
    points = [P("b", 1, "float32"), P("a", 0), P("c", 0, "bool", "coil")]
    assert plan_reads(points, "off", max_fill=10) == [
        ReadBlock("coil", 0, 1, ("c",)),
        ReadBlock("holding", 0, 1, ("a",)),
        ReadBlock("holding", 1, 2, ("b",)),
    ]


def test_blocks_respect_the_125_register_limit() -> None:
    points = [P(f"p{i}", i) for i in range(300)]
    blocks = plan_reads(points)
    assert [b.count for b in blocks] == [125, 125, 50]
    assert [b.start for b in blocks] == [0, 125, 250]
    assert sum(len(b.keys) for b in blocks) == 300


def test_a_32_bit_value_is_never_split_across_blocks() -> None:
    points = [P(f"p{i}", i) for i in range(124)] + [P("wide", 124, "float32")]
    blocks = plan_reads(points)
    assert blocks[0].count == 124
    assert blocks[1] == ReadBlock("holding", 124, 2, ("wide",))


def test_tables_are_planned_apart_and_bits_allow_2000() -> None:
    coils = [P(f"c{i}", i, "bool", "coil") for i in range(2500)]
    holding = [P("h", 0)]
    blocks = plan_reads([*coils, *holding])
    assert [(b.table, b.start, b.count) for b in blocks] == [
        ("coil", 0, 2000),
        ("coil", 2000, 500),
        ("holding", 0, 1),
    ]


def test_overlapping_points_share_a_block() -> None:
    points = [P("whole", 10, "uint32"), P("low_word", 11, "uint16")]
    assert plan_reads(points) == [ReadBlock("holding", 10, 2, ("whole", "low_word"))]


@dataclass(frozen=True)
class Shape:
    max_registers_per_request: int = 125
    max_bits_per_request: int = 2000
    one_request_per_point: bool = False


def test_a_61_register_cap_splits_a_100_register_device_into_two_requests() -> None:
    points = [P(f"p{i}", i) for i in range(100)]
    assert len(plan_reads(points)) == 1
    blocks = plan_reads(points, shape=Shape(max_registers_per_request=61))
    assert [(b.start, b.count) for b in blocks] == [(0, 61), (61, 39)]
    assert all(b.count <= 61 for b in blocks)
    assert [k for b in blocks for k in b.keys] == [f"p{i}" for i in range(100)]


def test_the_cap_keeps_32_bit_values_whole_and_applies_to_max_insert() -> None:
    points = [P(f"f{i}", 3 * i, "float32") for i in range(10)]
    blocks = plan_reads(points, "max_insert", 5, Shape(max_registers_per_request=8))
    assert [(b.start, b.count) for b in blocks] == [(0, 8), (9, 8), (18, 8), (27, 2)]


def test_a_bit_cap_splits_coil_reads() -> None:
    coils = [P(f"c{i}", i, "bool", "coil") for i in range(20)]
    blocks = plan_reads(coils, shape=Shape(max_bits_per_request=8))
    assert [(b.start, b.count) for b in blocks] == [(0, 8), (8, 8), (16, 4)]


def test_one_request_per_point_overrides_the_optimisation() -> None:
    points = [P("a", 0), P("b", 1), P("c", 2, "uint32")]
    blocks = plan_reads(points, "max_insert", 10, Shape(one_request_per_point=True))
    assert [(b.start, b.count) for b in blocks] == [(0, 1), (1, 1), (2, 2)]


def test_a_point_wider_than_the_cap_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'wide' .* needs 2 registers"):
        plan_reads([P("wide", 0, "float32")], shape=Shape(max_registers_per_request=1))
