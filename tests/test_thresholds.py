from __future__ import annotations

from collections.abc import Sequence

from gateway.core.samples import Sample
from rules.engine import RuleEngine
from rules.thresholds import Level, ThresholdEvaluator, ThresholdSpec

POINT = "sensors.temperature"


def spec(**overrides: object) -> ThresholdSpec:
    limits: dict[Level, float] = {"high": 30.0, "high_high": 40.0}
    base: dict[str, object] = dict(
        zone="store",
        key="temperature",
        point=POINT,
        limits=limits,
        deadband=2.0,
        on_delay=2.0,
        off_delay=0.0,
        fault_delay=5.0,
        unit="degC",
    )
    base.update(overrides)
    return ThresholdSpec(**base)  # type: ignore[arg-type]


def feed(evaluator: ThresholdEvaluator, series: Sequence[tuple[float, float | None]]) -> list[str]:
    """(ts, value) pairs, None for a bad sample; returns 'raised:id' / 'cleared:id' lines."""
    out = []
    for ts, value in series:
        sample = (
            Sample.bad(POINT, ts, "timeout") if value is None else Sample.good(POINT, value, ts)
        )
        for t in evaluator.evaluate(sample):
            out.append(f"{'raised' if t.raised else 'cleared'}:{t.alarm_id}@{ts:g}")
    return out


def test_raise_waits_for_the_on_delay() -> None:
    ev = ThresholdEvaluator(spec())
    assert feed(ev, [(0, 31), (1, 31), (2, 31)]) == ["raised:store.temperature.high@2"]


def test_a_dip_restarts_the_on_delay() -> None:
    ev = ThresholdEvaluator(spec())
    assert feed(ev, [(0, 31), (1.5, 29), (2, 31), (3.5, 31), (4, 31)]) == [
        "raised:store.temperature.high@4"
    ]


def test_on_delay_counts_sample_time_not_sample_count() -> None:
    ev = ThresholdEvaluator(spec())
    # Many samples in quick succession must not raise before two seconds have passed.
    assert feed(ev, [(i * 0.1, 31) for i in range(15)]) == []


def test_clear_needs_the_deadband() -> None:
    ev = ThresholdEvaluator(spec())
    out = feed(ev, [(0, 31), (2, 31), (3, 29), (4, 28.5), (5, 27.9)])
    assert out == ["raised:store.temperature.high@2", "cleared:store.temperature.high@5"]


def test_off_delay_holds_the_alarm() -> None:
    ev = ThresholdEvaluator(spec(off_delay=3.0))
    out = feed(ev, [(0, 31), (2, 31), (3, 20), (5, 20), (6, 20)])
    assert out == ["raised:store.temperature.high@2", "cleared:store.temperature.high@6"]


def test_high_high_comes_with_high() -> None:
    ev = ThresholdEvaluator(spec(on_delay=0.0))
    assert feed(ev, [(0, 45)]) == [
        "raised:store.temperature.high@0",
        "raised:store.temperature.high_high@0",
    ]


def test_low_limits_mirror_high_ones() -> None:
    ev = ThresholdEvaluator(spec(limits={"low": 5.0}, on_delay=0.0))
    assert feed(ev, [(0, 6), (1, 5), (2, 6), (3, 7.5)]) == [
        "raised:store.temperature.low@1",
        "cleared:store.temperature.low@3",
    ]


def test_bad_data_holds_process_alarms_and_raises_a_fault() -> None:
    ev = ThresholdEvaluator(spec())
    out = feed(ev, [(0, 31), (2, 31), (3, None), (7, None), (8, None), (9, 20)])
    assert out == [
        "raised:store.temperature.high@2",
        "raised:store.temperature.fault@8",
        "cleared:store.temperature.fault@9",
        "cleared:store.temperature.high@9",
    ]


def test_bad_data_interrupts_an_on_delay() -> None:
    ev = ThresholdEvaluator(spec())
    assert feed(ev, [(0, 31), (1, None), (2, 31), (3, 31)]) == []


def test_engine_tracks_active_alarms_and_priming() -> None:
    engine = RuleEngine([spec(on_delay=0.0)])
    assert not engine.primed
    engine.evaluate([Sample.good("other.point", 99.0, 0)])
    assert not engine.primed
    engine.evaluate([Sample.good(POINT, 41.0, 0)])
    assert engine.primed
    assert engine.active == {"store.temperature.high", "store.temperature.high_high"}
    engine.evaluate([Sample.good(POINT, 35.0, 1)])
    assert engine.active == {"store.temperature.high"}
