from __future__ import annotations

from dataclasses import dataclass

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
