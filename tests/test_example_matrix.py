"""Every row of config/example.toml's cause-and-effect matrix, exercised as a table.

A row added to the example without a case here fails the last test: the shipped matrix
cannot drift away from what is tested.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import load_settings
from rules.matrix import CauseEffectMatrix

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "example.toml"
SMOKE = [f"cell-store.smoke-{d}.high" for d in (1, 2, 3)]

# (row, [(seconds, active alarms, relays that must be on)])
CASES: list[tuple[str, list[tuple[float, set[str], set[str]]]]] = [
    (
        "ventilate-electrolyte",
        [
            (0, set(), set()),
            (1, {"electrolyte-store.temperature.high"}, {"exhaust-fan-1"}),
            (2, {"electrolyte-store.humidity.high"}, {"exhaust-fan-1"}),
            (3, {"electrolyte-store.temperature.low"}, set()),
        ],
    ),
    (
        "electrolyte-sensors-lost",
        [
            (0, {"electrolyte-store.temperature.fault"}, {"exhaust-fan-1"}),
            (1, {"cell-store.temperature.fault"}, set()),
        ],
    ),
    (
        "cell-fire",
        [
            (0, {SMOKE[0]}, set()),  # one detector is not a fire
            (1, {SMOKE[0], SMOKE[1]}, {"cell-siren"}),  # two: warn, count down 30 s
            (30, {SMOKE[0], SMOKE[1]}, {"cell-siren"}),
            (31, {SMOKE[0], SMOKE[1]}, {"cell-siren", "cell-deluge"}),
            (40, set(), {"cell-deluge"}),  # latched until reset
        ],
    ),
    (
        "cell-fire-abort",
        [
            (0, {SMOKE[0], SMOKE[2]}, {"cell-siren"}),
            (10, {SMOKE[0], SMOKE[2], "cell-store.abort.alarm"}, {"cell-siren"}),
            (60, {SMOKE[0], SMOKE[2], "cell-store.abort.alarm"}, {"cell-siren"}),  # held
            (61, {SMOKE[0], SMOKE[2]}, {"cell-siren"}),  # released: 30 s again
            (91, {SMOKE[0], SMOKE[2]}, {"cell-siren", "cell-deluge"}),
        ],
    ),
    (
        "cell-fire-maintenance",
        [
            (0, {*SMOKE, "cell-store.maintenance.alarm"}, {"cell-siren"}),
            (31, {*SMOKE, "cell-store.maintenance.alarm"}, {"cell-siren"}),  # blocked, alarms on
            (32, set(SMOKE), {"cell-siren", "cell-deluge"}),
        ],
    ),
]


def example_matrix() -> CauseEffectMatrix:
    settings = load_settings(EXAMPLE)
    return CauseEffectMatrix(
        settings.matrix_rows(),
        settings.interlocks,
        {r.name: r.resting for r in settings.relays},
    )


@pytest.mark.parametrize(("row", "steps"), CASES, ids=[c[0] for c in CASES])
def test_example_matrix_row(row: str, steps: list[tuple[float, set[str], set[str]]]) -> None:
    matrix = example_matrix()
    for now, active, expected in steps:
        demands, _ = matrix.evaluate(active, now, {})
        on = {relay for relay, demand in demands.items() if demand.state}
        assert on == expected, (row, now, active)


def test_every_example_row_has_a_case() -> None:
    rows = {r.name for r in load_settings(EXAMPLE).matrix_rows()}
    covered = {name.split("-abort")[0].split("-maintenance")[0] for name, _ in CASES}
    assert rows == covered
