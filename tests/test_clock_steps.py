"""The wall clock steps (NTP, an operator) an hour back or forward in each timed path:
nothing that measures a duration may notice. Durations run on ``vocab.clock.steady``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import pytest

from actuators.relay import Relay
from gateway.core.commands import CommandRouter
from gateway.core.pipeline import Pipeline
from gateway.core.status import GatewayStatus
from gateway.storage.log import EventLog
from rules.alarms import AlarmManager
from rules.discrete import DiscreteEvaluator, DiscreteSpec
from rules.engine import RuleEngine
from rules.matrix import CauseEffectMatrix, EffectSpec, RelayDemand, RowSpec
from rules.thresholds import LimitSpec, ThresholdEvaluator, ThresholdSpec
from vocab.clock import steady
from vocab.samples import Sample

POINT = "sensors.temperature"
HOUR = 3600.0
STEPS = pytest.mark.parametrize("step", [-HOUR, HOUR], ids=["back", "forward"])


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[float], None]]:
    """``wall(seconds)`` steps ``time.time`` by that much from now on."""
    offset = [0.0]
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + offset[0])

    def step(seconds: float) -> None:
        offset[0] += seconds

    yield step


def threshold() -> ThresholdSpec:
    high = LimitSpec(limit=30.0, on_delay=3.0)
    return ThresholdSpec(zone="store", key="temperature", point=POINT, limits={"high": high})


@STEPS
def test_an_on_delay_ignores_a_step_of_the_samples_wall_stamps(step: float) -> None:
    """Issue case 4: a 3 s on-delay; stepped back an hour it must not become an hour,
    stepped forward it must not end after 1.4 s."""
    ev = ThresholdEvaluator(threshold())
    raised = []
    for mono in (0.0, 1.0, 1.4, 2.0, 3.0):
        wall_ts = 1_000_000.0 + mono + (step if mono >= 1.0 else 0.0)
        for change in ev.evaluate(Sample.good(POINT, 31.0, wall_ts, mono)):
            raised.append((change.alarm_id, mono))
    assert raised == [("store.temperature.high", 3.0)]


@STEPS
def test_an_input_delay_ignores_a_step(step: float) -> None:
    ev = DiscreteEvaluator(DiscreteSpec(zone="store", name="fire", point=POINT, on_delay=3.0))
    raised = []
    for mono in (0.0, 1.0, 2.0, 3.0):
        wall_ts = 1_000_000.0 + mono + (step if mono >= 1.0 else 0.0)
        raised += [mono for _ in ev.evaluate(Sample.good(POINT, True, wall_ts, mono))]
    assert raised == [3.0]


class Output:
    """Takes the demands a relay would; the test reads them from the matrix itself."""

    state: bool | None = False

    def request(self, demand: RelayDemand) -> None:
        pass


def pipeline(log: EventLog) -> Pipeline:
    engine = RuleEngine([threshold()])
    alarms = AlarmManager(engine.definitions)
    matrix = CauseEffectMatrix(
        [
            RowSpec(
                name="vent",
                causes=("store.temperature.high",),
                effects=(EffectSpec(relay="fan", delay=1.0),),
            )
        ],
        [],
        {"fan": False},
    )
    return Pipeline(engine, alarms, matrix, {"fan": cast(Relay, Output())}, log)


@STEPS
def test_shelve_expiry_and_matrix_countdowns_ignore_a_step(
    step: float, wall: Callable[[float], None], tmp_path: Path
) -> None:
    async def scenario(log: EventLog) -> None:
        p = pipeline(log)
        router = CommandRouter(p, lambda: cast(GatewayStatus, {}), list)
        p([Sample.good(POINT, 31.0, time.time(), steady())])
        p([Sample.good(POINT, 31.0, time.time(), steady() + 3.0)])  # raised
        assert "store.temperature.high" in p.alarms.conditions()
        reply = router.handle(
            "shelve", {"alarm": "store.temperature.high", "by": "op", "duration": 0.5}, "cli"
        )
        assert reply["ok"], reply
        wall(step)
        p.tick(steady())
        assert p.alarms.records["store.temperature.high"].shelved_until is not None
        await asyncio.sleep(0.6)
        p.tick(steady())
        assert p.alarms.records["store.temperature.high"].shelved_until is None  # on time

        tripped = p.matrix.snapshot()["rows"]["vent"]["tripped"]
        assert tripped
        demands, _ = p.matrix.evaluate(p.alarms.conditions(), steady(), {"fan": False})
        assert demands["fan"].state is False  # the 1 s release delay is not over...
        await asyncio.sleep(1.1)
        demands, _ = p.matrix.evaluate(p.alarms.conditions(), steady(), {"fan": False})
        assert demands["fan"].state is True  # ...and then it is, whatever the wall clock did

    with EventLog.open(tmp_path / "log.db", {"site": "s", "gateway": "g"}) as log:
        asyncio.run(scenario(log))


def test_the_steady_clock_does_not_follow_the_wall_clock(
    wall: Callable[[float], None],
) -> None:
    before = steady()
    wall(-HOUR)
    assert 0 <= steady() - before < 1.0
    wall(2 * HOUR)
    assert 0 <= steady() - before < 1.0
