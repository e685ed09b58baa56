"""The cause-and-effect matrix, row by row: voting, delays and aborts, latches, interlocks."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from rules.alarms import Cause, CommandRefused
from rules.matrix import CauseEffectMatrix, EffectSpec, InterlockSpec, Permit, RowSpec

OPERATOR = Cause("operator", "alice", "test")
DETECTORS = ("store.smoke-1.high", "store.smoke-2.high", "store.smoke-3.high")


def matrix() -> CauseEffectMatrix:
    return CauseEffectMatrix(
        [
            RowSpec(name="ventilate", causes=("store.*.high",), effects=(EffectSpec(relay="fan"),)),
            RowSpec(
                name="deluge",
                causes=("store.smoke-*.high",),
                vote=2,
                abort=("store.abort.alarm",),
                effects=(
                    EffectSpec(relay="siren"),
                    EffectSpec(relay="deluge", delay=30.0, latch=True),
                ),
            ),
            RowSpec(
                name="beacon",
                causes=("store.door.alarm",),
                effects=(EffectSpec(relay="beacon", min_on=60.0),),
            ),
        ],
        [
            InterlockSpec(
                relay="deluge",
                inhibit=("store.maintenance.alarm",),
                permit=(Permit(relay="fan", state=False),),
            )
        ],
        {"fan": False, "siren": False, "deluge": False, "beacon": False},
    )


def states(
    m: CauseEffectMatrix,
    active: set[str],
    now: float,
    actual: Mapping[str, bool | None] | None = None,
) -> dict[str, bool]:
    demands, _ = m.evaluate(active, now, actual or {"fan": False})
    return {relay: d.state for relay, d in demands.items() if d.state}


# Each row: (active alarms, seconds, relays that must be on). One matrix, time moving on.
VOTING = [
    (set(), 0, {}),
    ({DETECTORS[0]}, 1, {"fan"}),  # one detector: ventilate only
    ({DETECTORS[0], DETECTORS[1]}, 2, {"fan", "siren"}),  # two of three: warn, count down
    ({DETECTORS[0], DETECTORS[1]}, 31, {"fan", "siren"}),  # 29 s later: still counting
    ({DETECTORS[0], DETECTORS[1]}, 32, {"fan", "siren", "deluge"}),  # 30 s: release
    (set(), 40, {"deluge"}),  # causes gone: the release latches
]


def test_voting_delay_and_latch_row_by_row() -> None:
    m = matrix()
    for active, now, expected in VOTING:
        # The deluge permit needs the fan verified off: pretend it is, to see the matrix alone.
        assert set(states(m, active, now, {"fan": False})) == set(expected), (active, now)


def test_one_faulty_detector_cannot_release() -> None:
    m = matrix()
    for now in range(0, 100, 10):
        assert "deluge" not in states(m, {DETECTORS[2]}, now)


def test_abort_input_holds_the_release_and_a_release_of_it_restarts_the_count() -> None:
    m = matrix()
    fire = {DETECTORS[0], DETECTORS[1]}
    states(m, fire, 0)
    _, events = m.evaluate(fire | {"store.abort.alarm"}, 10, {"fan": False})
    assert [e.type for e in events] == ["safety.aborted"]
    assert "deluge" not in states(m, fire | {"store.abort.alarm"}, 100)
    _, events = m.evaluate(fire, 101, {"fan": False})
    assert [e.type for e in events] == ["safety.resumed"]
    assert "deluge" not in states(m, fire, 130)
    assert "deluge" in states(m, fire, 131)


def test_abort_by_command_and_resume() -> None:
    m = matrix()
    fire = {DETECTORS[0], DETECTORS[1]}
    with pytest.raises(CommandRefused, match="has not tripped"):
        m.abort("deluge", OPERATOR, 0)
    states(m, fire, 0)
    assert m.abort("deluge", OPERATOR, 5).type == "safety.abort_requested"
    assert "deluge" not in states(m, fire, 60)
    m.resume("deluge", OPERATOR, 61)
    assert "deluge" not in states(m, fire, 62)
    assert "deluge" in states(m, fire, 92)


def test_reset_only_once_the_causes_are_gone() -> None:
    m = matrix()
    fire = {DETECTORS[0], DETECTORS[1]}
    states(m, fire, 0)
    states(m, fire, 30)
    with pytest.raises(CommandRefused, match="still has its causes"):
        m.reset("deluge", OPERATOR, 31)
    assert "deluge" in states(m, set(), 40)
    assert m.reset("deluge", OPERATOR, 41).type == "safety.reset"
    assert "deluge" not in states(m, set(), 42)
    with pytest.raises(CommandRefused, match="not latched"):
        m.reset("deluge", OPERATOR, 43)


def test_minimum_on_time() -> None:
    m = matrix()
    assert "beacon" in states(m, {"store.door.alarm"}, 0)
    assert "beacon" in states(m, set(), 59)
    assert "beacon" not in states(m, set(), 60)


def test_maintenance_inhibit_blocks_release_and_says_so() -> None:
    m = matrix()
    fire = {DETECTORS[0], DETECTORS[1], "store.maintenance.alarm"}
    states(m, fire, 0)
    demands, events = m.evaluate(fire, 30, {"fan": False})
    assert demands["deluge"].state is False
    assert demands["siren"].state is True  # it still alarms
    (blocked,) = [e for e in events if e.type == "safety.blocked"]
    assert blocked.body["safety"] == {
        "relay": "deluge",
        "state": "on",
        "blocked_by": "inhibited by store.maintenance.alarm",
    }
    _, again = m.evaluate(fire, 31, {"fan": False})
    assert again == []  # said once, not on every evaluation
    _, released = m.evaluate(fire - {"store.maintenance.alarm"}, 32, {"fan": False})
    assert [e.type for e in released] == ["safety.unblocked"]


def test_permit_waits_for_the_other_relay() -> None:
    m = matrix()
    fire = {DETECTORS[0], DETECTORS[1]}
    states(m, fire, 0)
    demands, events = m.evaluate(fire, 30, {"fan": True})
    assert demands["deluge"].state is False
    assert events[-1].body["safety"]["blocked_by"] == "waiting for fan to be verified off"
    demands, _ = m.evaluate(fire, 31, {"fan": False})
    assert demands["deluge"].state is True


def test_override_wins_and_expires() -> None:
    m = matrix()
    with pytest.raises(CommandRefused, match="needs a reason"):
        m.override("fan", True, 100, Cause("operator", "bob"), 0)
    with pytest.raises(CommandRefused, match="unknown relay"):
        m.override("pump", True, 100, OPERATOR, 0)
    m.override("fan", False, 100, OPERATOR, 0)
    demands, _ = m.evaluate({"store.temperature.high"}, 50, {})
    assert demands["fan"].state is False
    assert demands["fan"].causes == ("override by alice",)
    assert m.snapshot()["overrides"]["fan"]["state"] == "off"
    demands, events = m.evaluate({"store.temperature.high"}, 100, {})
    assert demands["fan"].state is True
    assert events[0].type == "safety.override_ended"


def test_an_abort_ends_with_its_incident() -> None:
    m = matrix()
    fire = {DETECTORS[0], DETECTORS[1]}
    states(m, fire, 0)
    m.abort("deluge", OPERATOR, 1)
    states(m, set(), 10)  # the first fire is over
    states(m, fire, 100)  # a new one, hours later
    assert "deluge" in states(m, fire, 130)


def test_an_abort_after_release_does_not_stop_the_discharge() -> None:
    m = CauseEffectMatrix(
        [
            RowSpec(
                name="deluge",
                causes=("store.smoke-*.high",),
                vote=2,
                abort=("store.abort.alarm",),
                effects=(EffectSpec(relay="deluge", delay=30.0),),
            )
        ],
        [],
        {"deluge": False},
    )
    fire = {DETECTORS[0], DETECTORS[1]}
    states(m, fire, 0)
    assert "deluge" in states(m, fire, 31)
    assert "deluge" in states(m, fire | {"store.abort.alarm"}, 32)


def test_latches_aborts_and_overrides_survive_a_restart() -> None:
    m = matrix()
    fire = {DETECTORS[0], DETECTORS[1]}
    states(m, fire, 0)
    states(m, fire, 30)  # released and latched
    m.override("fan", True, 500, OPERATOR, 31)
    saved = m.export()

    again = matrix()
    again.restore(saved, 40)
    on = states(again, set(), 41)
    assert {"deluge", "fan"} <= set(on)  # latched release and override both kept
    assert again.snapshot()["rows"]["deluge"]["latched"]
    expired = matrix()
    expired.restore(saved, 600)
    assert "fan" not in states(expired, set(), 601)


def test_a_restart_during_a_trip_repeats_no_transition() -> None:
    m = matrix()
    fire = {DETECTORS[0], DETECTORS[1]}
    _, events = m.evaluate(fire, 0, {"fan": False})
    assert [e.type for e in events] == ["safety.tripped", "safety.tripped"]
    saved = m.export()

    again = matrix()  # a restart (kill -9) while both rows hold
    again.restore(saved, 5)
    demands, events = again.evaluate(fire, 6, {"fan": True})
    assert events == []  # the same incident: nothing tripped anew
    assert demands["siren"].state and demands["fan"].state
    assert "deluge" in states(again, fire, 31)  # the countdown runs on from the trip at 0
    _, events = again.evaluate(set(), 40, {"fan": True})
    assert [e.type for e in events].count("safety.cleared") == 2  # and it ends once
