from __future__ import annotations

from collections.abc import Sequence

from rules.discrete import DiscreteEvaluator, DiscreteSpec
from rules.engine import RuleEngine
from rules.thresholds import LimitLevel, LimitSpec, RateSpec, ThresholdEvaluator, ThresholdSpec
from vocab.samples import Sample

POINT = "sensors.temperature"


def spec(**overrides: object) -> ThresholdSpec:
    limits: dict[LimitLevel, LimitSpec] = {
        "high": LimitSpec(limit=30.0, deadband=2.0, on_delay=2.0),
        "high_high": LimitSpec(limit=40.0, deadband=2.0, on_delay=2.0),
    }
    base: dict[str, object] = dict(
        zone="store",
        key="temperature",
        point=POINT,
        limits=limits,
        fault_delay=5.0,
        unit="degC",
    )
    base.update(overrides)
    return ThresholdSpec(**base)  # type: ignore[arg-type]


def feed(
    evaluator: ThresholdEvaluator | DiscreteEvaluator,
    series: Sequence[tuple[float, float | bool | None]],
) -> list[str]:
    """(ts, value) pairs, None for a bad sample; returns 'raised:id@ts' / 'cleared:id@ts'."""
    out = []
    for ts, value in series:
        sample = (
            Sample.bad(POINT, ts, ts, "timeout")
            if value is None
            else Sample.good(POINT, value, ts, ts)
        )
        for c in evaluator.evaluate(sample):
            out.append(f"{'raised' if c.active else 'cleared'}:{c.alarm_id}@{ts:g}")
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
    assert feed(ev, [(i * 0.1, 31) for i in range(15)]) == []


def test_clear_needs_the_deadband() -> None:
    ev = ThresholdEvaluator(spec())
    out = feed(ev, [(0, 31), (2, 31), (3, 29), (4, 28.5), (5, 27.9)])
    assert out == ["raised:store.temperature.high@2", "cleared:store.temperature.high@5"]


def test_off_delay_holds_the_alarm() -> None:
    limits = {"high": LimitSpec(limit=30.0, off_delay=3.0)}
    ev = ThresholdEvaluator(spec(limits=limits))
    out = feed(ev, [(0, 31), (3, 20), (5, 20), (6, 20)])
    assert out == ["raised:store.temperature.high@0", "cleared:store.temperature.high@6"]


def test_each_level_has_its_own_delay() -> None:
    limits = {"high": LimitSpec(limit=30.0, on_delay=5.0), "high_high": LimitSpec(limit=40.0)}
    ev = ThresholdEvaluator(spec(limits=limits))
    assert feed(ev, [(0, 45), (5, 45)]) == [
        "raised:store.temperature.high_high@0",
        "raised:store.temperature.high@5",
    ]


def test_low_limits_mirror_high_ones() -> None:
    ev = ThresholdEvaluator(spec(limits={"low": LimitSpec(limit=5.0, deadband=2.0)}))
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


def test_a_bad_reading_is_bridged_not_a_restart_of_the_on_delay() -> None:
    ev = ThresholdEvaluator(spec())
    assert feed(ev, [(0, 31), (1, None), (2, 31), (3, 31)]) == ["raised:store.temperature.high@2"]


def test_a_gap_longer_than_max_gap_restarts_the_on_delay() -> None:
    ev = ThresholdEvaluator(spec(max_gap=3.0, fault_delay=10.0))
    series: list[tuple[float, float | bool | None]] = [(0, 31), (1, None), (2, None)]
    series += [(3, None), (4, None), (5, 31), (6, 31), (7, 31)]
    assert feed(ev, series) == ["raised:store.temperature.high@7"]  # 2 s from 5, not from 0


def one_bad_in_seven(series: list[tuple[float, float]]) -> list[tuple[float, float | None]]:
    return [(t, None if n % 7 == 6 else v) for n, (t, v) in enumerate(series)]


def test_one_bad_reply_in_seven_raises_and_clears_on_time_and_is_reported() -> None:
    """Issue case 1: a device answering one request in seven with exception 4, polled
    every second; the cell store's class on-delay (600 s) and an off-delay of 60 s."""
    high = LimitSpec(limit=30.0, deadband=2.0, on_delay=600.0, off_delay=60.0)
    ev = ThresholdEvaluator(spec(limits={"high": high}, fault_delay=10.0))
    hot = [(float(t), 31.0) for t in range(0, 700)]  # beyond the limit from t = 0
    cool = [(float(t), 25.0) for t in range(700, 800)]  # back inside from t = 700
    out = feed(ev, one_bad_in_seven(hot + cool))
    assert (
        out[0] == "raised:store.temperature.fault@13"
    )  # 2 of 14 bad: over 10 %, with enough readings to judge
    assert "raised:store.temperature.high@600" in out  # 600 s after the crossing
    assert "cleared:store.temperature.high@760" in out  # 60 s after it came back inside
    assert out.count("raised:store.temperature.fault@13") == 1  # no chatter of the fault


def test_a_rise_is_fitted_across_bad_readings() -> None:
    ev = ThresholdEvaluator(rate_spec())
    rising = [(float(t), 5.0 + 0.2 * t) for t in range(0, 40)]  # 12 degC/min
    assert "raised:store.temperature.rate_of_rise@30" in feed(ev, one_bad_in_seven(rising))


def test_an_unreliable_input_is_a_fault_and_its_delay_is_bridged() -> None:
    ev = DiscreteEvaluator(
        DiscreteSpec(zone="store", name="panel-fire", point=POINT, on_delay=3.0, fault_delay=10.0)
    )
    series = [(float(t), True) for t in range(0, 80)]
    out = feed(ev, one_bad_in_seven(series))  # type: ignore[arg-type]
    assert out[:2] == ["raised:store.panel-fire.alarm@3", "raised:store.panel-fire.fault@13"]


def test_out_of_range_is_a_fault_not_a_fire() -> None:
    ev = ThresholdEvaluator(spec(range=(-40.0, 125.0), fault_delay=0.0))
    assert feed(ev, [(0, 3276.7), (1, 22.0)]) == [
        "raised:store.temperature.fault@0",
        "cleared:store.temperature.fault@1",
    ]


def test_frozen_value_is_a_fault() -> None:
    ev = ThresholdEvaluator(spec(frozen_after=60.0, frozen_band=0.05))
    series: list[tuple[float, float | bool | None]] = [
        (t, 22.0 + (t % 2) * 0.01) for t in range(0, 61, 5)
    ]
    assert feed(ev, series) == ["raised:store.temperature.fault@60"]
    assert feed(ev, [(65, 22.5)]) == ["cleared:store.temperature.fault@65"]


def test_silence_is_stale_and_a_fault() -> None:
    ev = ThresholdEvaluator(spec(stale_after=30.0))
    feed(ev, [(0, 22.0)])
    assert ev.tick(29.0) == []
    (change,) = ev.tick(31.0)
    assert change.alarm_id == "store.temperature.fault" and change.active
    assert "stale" in change.message
    assert feed(ev, [(32, 22.0)]) == ["cleared:store.temperature.fault@32"]


def test_a_point_never_heard_from_goes_stale_too() -> None:
    ev = ThresholdEvaluator(spec(stale_after=30.0))
    assert ev.tick(100.0) == []
    assert [c.active for c in ev.tick(131.0)] == [True]


def rate_spec() -> ThresholdSpec:
    return spec(limits={}, rate_of_rise=RateSpec(per_minute=8.0, window=60.0))


def test_rate_of_rise_independent_of_the_absolute_value() -> None:
    ev = ThresholdEvaluator(rate_spec())
    # 0.2 degC/s = 12 degC/min, far below any limit.
    rising: list[tuple[float, float | bool | None]] = [(t, 5.0 + 0.2 * t) for t in range(0, 40)]
    assert feed(ev, rising) == ["raised:store.temperature.rate_of_rise@30"]
    flat: list[tuple[float, float | bool | None]] = [(t, 13.0) for t in range(40, 120, 2)]
    (cleared,) = feed(ev, flat)
    assert cleared.startswith("cleared:store.temperature.rate_of_rise@")
    assert float(cleared.rsplit("@", 1)[1]) < 40 + 60  # gone within one window of flat data


def test_a_late_poll_does_not_fake_a_rise() -> None:
    ev = ThresholdEvaluator(rate_spec())
    # A steady 2 degC/min; then one poll arrives 20 s late with the value it should have.
    series: list[tuple[float, float | bool | None]] = [(t, 20 + t / 30) for t in range(0, 60, 2)]
    series += [(80.0, 20 + 80 / 30)] + [(t, 20 + t / 30) for t in range(82, 120, 2)]
    assert feed(ev, series) == []


def test_slow_warming_is_not_a_rate_of_rise() -> None:
    ev = ThresholdEvaluator(rate_spec())
    assert feed(ev, [(t, 20 + 0.1 * t) for t in range(0, 300, 5)]) == []  # 6 degC/min


def test_fire_panel_input() -> None:
    ev = DiscreteEvaluator(
        DiscreteSpec(zone="store", name="panel-fire", point=POINT, on_delay=1.0, fault_delay=3.0)
    )
    assert feed(ev, [(0, False), (1, True), (1.5, True), (2, True), (3, False)]) == [
        "raised:store.panel-fire.alarm@2",
        "cleared:store.panel-fire.alarm@3",
    ]
    assert feed(ev, [(4, None), (7, None), (8, False)]) == [
        "raised:store.panel-fire.fault@7",
        "cleared:store.panel-fire.fault@8",
    ]


def test_engine_priming_restore_and_definitions() -> None:
    engine = RuleEngine([spec(limits={"high": LimitSpec(limit=30.0)})])
    assert [d.id for d in engine.definitions] == [
        "store.temperature.high",
        "store.temperature.fault",
    ]
    assert not engine.primed
    engine.evaluate([Sample.good("other.point", 99.0, 0, 0)])
    assert not engine.primed
    engine.restore({"store.temperature.high"})
    assert engine.evaluate([Sample.good(POINT, 41.0, 0, 0)]) == []  # already active: no repeat
    assert engine.primed
    (change,) = engine.evaluate([Sample.good(POINT, 20.0, 1, 1)])
    assert change.alarm_id == "store.temperature.high" and not change.active


def test_a_frozen_sensor_does_not_clear_a_rise_it_stopped_reporting() -> None:
    ev = ThresholdEvaluator(
        spec(limits={}, rate_of_rise=RateSpec(per_minute=8.0, window=60.0), frozen_after=10.0)
    )
    rising: list[tuple[float, float | bool | None]] = [(t, 20 + 0.2 * t) for t in range(0, 98, 2)]
    assert feed(ev, rising)[0].startswith("raised:store.temperature.rate_of_rise")
    frozen: list[tuple[float, float | bool | None]] = [(t, 39.4) for t in range(98, 160, 2)]
    # Once the sensor is known to be frozen, nothing it says moves an alarm any more: the
    # rise stays raised (held, as for bad data), and the fault says why.
    assert feed(ev, frozen) == ["raised:store.temperature.fault@108"]
    assert feed(ev, [(t, 39.4) for t in range(160, 300, 2)]) == []


def test_a_gap_longer_than_max_gap_restarts_an_input_delay() -> None:
    ev = DiscreteEvaluator(
        DiscreteSpec(
            zone="store",
            name="panel-fire",
            point=POINT,
            on_delay=2.0,
            fault_delay=10.0,
            max_gap=3.0,
        )
    )
    series: list[tuple[float, float | bool | None]] = [(0, True), (1, None), (2, None)]
    series += [(3, None), (4, None), (5, True), (6, True), (7, True)]
    assert feed(ev, series) == ["raised:store.panel-fire.alarm@7"]  # 2 s from 5, not from 0
    bridged = DiscreteEvaluator(
        DiscreteSpec(zone="store", name="panel-fire", point=POINT, on_delay=2.0, max_gap=3.0)
    )
    assert feed(bridged, [(0, True), (1, None), (2, True)]) == ["raised:store.panel-fire.alarm@2"]


def test_a_sensor_fault_says_why_and_when_it_is_over() -> None:
    ev = ThresholdEvaluator(spec(fault_delay=2.0, stale_after=5.0))
    changes = [c for t in (0.0, 1.0, 2.0) for c in ev.evaluate(Sample.bad(POINT, t, t, "timeout"))]
    changes += ev.evaluate(Sample.good(POINT, 21.0, 3.0, 3.0))
    changes += ev.tick(100.0)
    assert [(c.alarm_id, c.active, c.message) for c in changes] == [
        ("store.temperature.fault", True, "store temperature sensor fault: timeout"),
        ("store.temperature.fault", False, "store temperature sensor data good again"),
        (
            "store.temperature.fault",
            True,
            "store temperature sensor fault: stale: no good sample for 97 s",
        ),
    ]
