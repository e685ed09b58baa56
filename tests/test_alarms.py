"""Every transition of the alarm lifecycle, the odd ones included, and a property test."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.alarms import (
    AlarmDefinition,
    AlarmManager,
    AlarmRecord,
    AlarmState,
    Cause,
    CommandRefused,
    ConditionChange,
    FloodPolicy,
    Outcome,
)

HOT = "store.temperature.high"
SMOKE = "store.smoke.high"
DELUGE = "store.deluge.alarm"
ALICE = Cause("operator", "alice")

S = AlarmState


def manager(**policy: float) -> AlarmManager:
    return AlarmManager(
        [
            AlarmDefinition(id=HOT, priority="high", zone="store", level="high"),
            AlarmDefinition(id="store.door.alarm", latching=True),
            AlarmDefinition(id=SMOKE, suppressed_by=(DELUGE,)),
            AlarmDefinition(id=DELUGE, priority="critical"),
        ],
        policy=FloodPolicy(**policy),  # type: ignore[arg-type]
    )


def cond(m: AlarmManager, alarm_id: str, active: bool, ts: float = 0.0) -> Outcome:
    return m.on_conditions([ConditionChange(alarm_id=alarm_id, active=active, ts=ts, value=1.0)])


def kinds(outcome: Outcome) -> list[tuple[str, str]]:
    return [
        (e.type, e.body["alarm"]["state"])
        for e in outcome.events
        if "alarm" in e.body and "state" in e.body["alarm"]
    ]


def test_raise_ack_clear() -> None:
    m = manager()
    assert kinds(cond(m, HOT, True)) == [("alarm.raised", "unack")]
    assert kinds(m.acknowledge(HOT, ALICE, 1)) == [("alarm.acknowledged", "acked")]
    assert kinds(cond(m, HOT, False, 2)) == [("alarm.cleared", "normal")]


def test_clear_before_ack_waits_for_ack() -> None:
    m = manager()
    cond(m, HOT, True)
    assert kinds(cond(m, HOT, False, 1)) == [("alarm.cleared", "rtn_unack")]
    assert HOT in m.annunciated()
    assert kinds(m.acknowledge(HOT, ALICE, 2)) == [("alarm.acknowledged", "normal")]
    assert m.annunciated() == {}


def test_returning_condition_before_ack_raises_again() -> None:
    m = manager()
    cond(m, HOT, True)
    cond(m, HOT, False, 1)
    assert kinds(cond(m, HOT, True, 2)) == [("alarm.raised", "unack")]


def test_latching_alarm_needs_a_reset() -> None:
    m = manager()
    door = "store.door.alarm"
    cond(m, door, True)
    m.acknowledge(door, ALICE, 1)
    assert kinds(cond(m, door, False, 2)) == [("alarm.cleared", "latched")]
    with pytest.raises(CommandRefused, match="nothing to acknowledge"):
        m.acknowledge(door, ALICE, 3)
    assert kinds(m.reset(door, ALICE, 3)) == [("alarm.reset", "normal")]


def test_latched_and_unacked_needs_ack_then_reset() -> None:
    m = manager()
    door = "store.door.alarm"
    cond(m, door, True)
    cond(m, door, False, 1)
    assert m.state(door) is S.RTN_UNACK
    with pytest.raises(CommandRefused, match="not latched"):
        m.reset(door, ALICE, 2)
    assert kinds(m.acknowledge(door, ALICE, 2)) == [("alarm.acknowledged", "latched")]
    m.reset(door, ALICE, 3)
    assert m.state(door) is S.NORMAL


def test_ack_of_a_normal_alarm_is_refused() -> None:
    # E.g. an operator acknowledging while detection is still inside its on-delay.
    m = manager()
    with pytest.raises(CommandRefused, match="nothing to acknowledge: it is normal"):
        m.acknowledge(HOT, ALICE, 0)


def test_unknown_alarm_is_refused() -> None:
    with pytest.raises(CommandRefused, match="unknown alarm 'nope'"):
        manager().acknowledge("nope", ALICE, 0)


def test_clear_during_shelve_returns_quietly() -> None:
    m = manager()
    cond(m, HOT, True)
    assert kinds(m.shelve(HOT, ALICE, 1, 600)) == [("alarm.shelved", "shelved")]
    assert cond(m, HOT, False, 2).events == []
    assert kinds(m.unshelve(HOT, ALICE, 3)) == [("alarm.unshelved", "normal")]


def test_shelve_expiry_while_active_annunciates_again() -> None:
    m = manager()
    cond(m, HOT, True)
    m.acknowledge(HOT, ALICE, 1)
    m.shelve(HOT, ALICE, 2, 60)
    assert m.tick(61).events == []
    outcome = m.tick(62)
    assert kinds(outcome) == [("alarm.unshelved", "unack")]
    assert outcome.events[0].body["alarm"]["by"] == {"actor": "timer", "reason": "shelve expired"}


def test_shelve_limits() -> None:
    m = manager(max_shelve=3600)
    with pytest.raises(CommandRefused, match="duration"):
        m.shelve(HOT, ALICE, 0, 7200)
    m.shelve(HOT, ALICE, 0, 60)
    with pytest.raises(CommandRefused, match="cannot be shelved: it is shelved"):
        m.shelve(HOT, ALICE, 1, 60)
    with pytest.raises(CommandRefused, match="not shelved"):
        m.unshelve(SMOKE, ALICE, 1)


def test_shelved_alarm_still_drives_effects_but_out_of_service_does_not() -> None:
    m = manager()
    cond(m, HOT, True)
    m.shelve(HOT, ALICE, 1, 60)
    assert HOT in m.conditions()
    m.unshelve(HOT, ALICE, 2)
    assert kinds(m.remove_from_service(HOT, ALICE, 3)) == [
        ("alarm.out_of_service", "out_of_service")
    ]
    assert HOT not in m.conditions()
    with pytest.raises(CommandRefused, match="cannot be shelved"):
        m.shelve(HOT, ALICE, 4, 60)
    assert kinds(m.return_to_service(HOT, ALICE, 5)) == [("alarm.returned_to_service", "unack")]
    assert HOT in m.conditions()


def test_suppression_by_design() -> None:
    m = manager()
    assert kinds(cond(m, DELUGE, True)) == [
        ("alarm.raised", "unack"),
        ("alarm.suppressed", "suppressed"),
    ]
    assert cond(m, SMOKE, True, 1).events == []
    assert m.state(SMOKE) is S.SUPPRESSED
    assert kinds(cond(m, DELUGE, False, 2)) == [
        ("alarm.cleared", "rtn_unack"),
        ("alarm.unsuppressed", "unack"),
    ]


def test_chattering_is_flagged_once() -> None:
    m = manager()
    chatter: list[str] = []
    for i in range(4):
        chatter += [
            e.type for e in cond(m, HOT, True, i * 10).events if e.type == "alarm.chattering"
        ]
        cond(m, HOT, False, i * 10 + 5)
    assert chatter == ["alarm.chattering"]
    assert HOT in m.chattering
    m.tick(200)
    assert HOT not in m.chattering


def test_flood_starts_and_ends() -> None:
    m = AlarmManager([AlarmDefinition(id=f"z.p{i}.high") for i in range(12)])
    floods = []
    for i in range(12):
        out = cond(m, f"z.p{i}.high", True, i)
        floods += [e.body["flood"]["state"] for e in out.events if e.type == "alarm.flood"]
    assert floods == ["started"]
    assert m.flooding
    ended = [e.body["flood"]["state"] for e in m.tick(700).events if e.type == "alarm.flood"]
    assert ended == ["ended"]


def test_records_survive_serialisation() -> None:
    m = manager()
    cond(m, HOT, True)
    m.acknowledge(HOT, ALICE, 1)
    saved = {k: AlarmRecord.from_json(v.to_json()) for k, v in m.records.items()}
    again = AlarmManager(m.definitions.values(), saved)
    assert again.state(HOT) is S.ACKED
    assert again.conditions() == {HOT}


IDS = [HOT, "store.door.alarm", SMOKE, DELUGE]
step = st.one_of(
    st.tuples(st.just("cond"), st.sampled_from(IDS), st.booleans()),
    st.tuples(
        st.sampled_from(["ack", "reset", "unshelve", "oos", "rts"]), st.sampled_from(IDS), st.none()
    ),
    st.tuples(st.just("shelve"), st.sampled_from(IDS), st.floats(1, 100)),
    st.tuples(st.just("tick"), st.none(), st.floats(0, 50)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=60))
def test_no_sequence_loses_an_active_alarm(steps: list[tuple[str, str | None, object]]) -> None:
    m = manager()
    now = 0.0
    last_shown: dict[str, str] = {}
    for op, alarm_id, arg in steps:
        now += 1.0
        try:
            if op == "cond":
                assert alarm_id is not None and isinstance(arg, bool)
                out = cond(m, alarm_id, arg, now)
            elif op == "tick":
                assert isinstance(arg, float)
                now += arg
                out = m.tick(now)
            elif op == "shelve":
                assert alarm_id is not None and isinstance(arg, float)
                out = m.shelve(alarm_id, ALICE, now, arg)
            else:
                assert alarm_id is not None
                action = {
                    "ack": m.acknowledge,
                    "reset": m.reset,
                    "unshelve": m.unshelve,
                    "oos": m.remove_from_service,
                    "rts": m.return_to_service,
                }[op]
                out = action(alarm_id, ALICE, now)
        except CommandRefused:
            continue
        for event in out.events:
            if "state" in event.body.get("alarm", {}):
                last_shown[event.body["alarm"]["id"]] = event.body["alarm"]["state"]
        for i, record in m.records.items():
            state = record.state
            hidden = record.out_of_service or record.shelved_until is not None or record.suppressed
            if record.condition and not hidden:
                assert state in (S.UNACK, S.ACKED), (i, record)
            if state is S.NORMAL:
                assert not record.condition
            # What the subscribers were last told is what the alarm shows now.
            assert last_shown.get(i, "normal") == state.value, (i, record)
        assert m.conditions() == {
            i for i, r in m.records.items() if r.condition and not r.out_of_service
        }
