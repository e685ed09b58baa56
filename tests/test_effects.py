from __future__ import annotations

from rules.effects import EffectPlanner, EffectSpec, RelayDemand


def planner() -> EffectPlanner:
    return EffectPlanner(
        [
            EffectSpec(patterns=("store.*.high",), relay="fan", state=True),
            EffectSpec(patterns=("store.smoke.*",), relay="fan", state=False),
            EffectSpec(patterns=("store.smoke.high",), relay="siren", state=True),
        ],
        {"fan": False, "siren": False, "beacon": True},
    )


def test_no_alarm_means_resting_states() -> None:
    assert planner().demands(set()) == {
        "fan": RelayDemand(False, ()),
        "siren": RelayDemand(False, ()),
        "beacon": RelayDemand(True, ()),
    }


def test_matching_alarm_drives_the_relay_and_names_its_causes() -> None:
    demands = planner().demands({"store.temperature.high", "store.humidity.high"})
    assert demands["fan"] == RelayDemand(True, ("store.humidity.high", "store.temperature.high"))
    assert demands["siren"] == RelayDemand(False, ())


def test_first_listed_effect_wins_a_conflict() -> None:
    demands = planner().demands({"store.smoke.high"})
    assert demands["fan"] == RelayDemand(True, ("store.smoke.high",))
    assert demands["siren"] == RelayDemand(True, ("store.smoke.high",))
