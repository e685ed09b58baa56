"""Alarms & Conditions: panel conditions become gateway alarms through a zone's inputs, an
operator's acknowledge goes back to the panel, and a panel restart neither repeats nor loses
an alarm."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from drivers.opcua import OpcuaDriver, State
from gateway.core.ack_passback import AckPassBack
from rules.alarms import AlarmManager, Cause
from rules.discrete import DiscreteSpec
from rules.engine import RuleEngine
from simulators.fire_panel import FirePanelServer, FirePanelThread
from simulators.net import free_port
from tests.drivers.opcua.conftest import PanelHost
from tests.drivers.opcua.helpers import Recorder, config
from vocab.clock import steady
from vocab.events import Event
from vocab.samples import Sample


class Rules(Recorder):
    """A publisher that runs the samples through the real rules and keeps the events."""

    def __init__(self, inputs: Sequence[DiscreteSpec]) -> None:
        super().__init__()
        self.engine = RuleEngine([], inputs)
        self.alarms = AlarmManager(self.engine.definitions)
        self.events: list[Event] = []

    def samples(self, samples: Sequence[Sample], /) -> None:
        super().samples(samples)
        self.events += self.alarms.on_conditions(self.engine.evaluate(samples)).events

    def count(self, event_type: str, alarm_id: str) -> int:
        return sum(
            1 for e in self.events if e.type == event_type and e.body["alarm"]["id"] == alarm_id
        )


def fire_input(n: int) -> DiscreteSpec:
    return DiscreteSpec(zone="store", point=f"panel.z{n}_fire", name=f"panel_fire_{n}")


def condition(n: int, **extra: object) -> dict[str, object]:
    return {"key": f"z{n}_fire", "source": f"Zone{n}", "condition": "Fire", **extra}


def test_condition_is_a_gateway_alarm_and_the_ack_goes_back(panel: PanelHost) -> None:
    conditions = [
        condition(1, acknowledge=True),
        condition(2),  # not acknowledged on the panel by the gateway
        # Pre-alarms have severity 500: below min_severity the point stays false.
        {"key": "z1_pre_urgent", "source": "Zone1", "condition": "PreAlarm", "min_severity": 600},
        {"key": "z1_pre", "source": "Zone1", "condition": "PreAlarm"},
    ]
    rules = Rules([fire_input(1), fire_input(2)])

    async def go() -> None:
        driver = OpcuaDriver(config(panel.endpoint, conditions=conditions))
        await driver.start(rules)
        try:
            await panel.acall(lambda p: p.force("Zone1", "pre-alarm"))
            await rules.wait(lambda: getattr(rules.last("panel.z1_pre"), "value", None) is True)
            assert rules.last("panel.z1_pre_urgent").value is False  # type: ignore[union-attr]
            await panel.acall(lambda p: p.force("Zone1", "fire"))
            await panel.acall(lambda p: p.force("Zone2", "fire"))
            await rules.wait(lambda: rules.count("alarm.raised", "store.panel_fire_2.alarm") == 1)
            await rules.wait(lambda: rules.count("alarm.raised", "store.panel_fire_1.alarm") == 1)
            raised = next(e for e in rules.events if e.type == "alarm.raised")
            assert raised.body["alarm"]["point"] == "panel.z1_fire"
            state = driver.condition("z1_fire")
            assert state is not None and state.severity == 900 and not state.acked
            assert state.message == "Zone1 Fire active"

            passback = AckPassBack({"panel": driver})
            operator = Cause("operator", "ann via cli")
            for n in (1, 2):
                outcome = rules.alarms.acknowledge(
                    f"store.panel_fire_{n}.alarm", operator, steady()
                )
                passback(outcome.events)
            await passback.drain()
            acks = await panel.acall(lambda p: asyncio.sleep(0, p.acks))
            assert acks == [
                ("ns=2;s=Zone1.Conditions.Fire", "acknowledged in CellSafe by ann via cli")
            ]
            assert await panel.acall(lambda p: asyncio.sleep(0, p.condition("Zone1", "Fire"))) == (
                True,
                True,
            )
            await rules.wait(lambda: getattr(driver.condition("z1_fire"), "acked", False))
            # The panel's own acknowledge changes nothing in the gateway: still one raise.
            assert rules.count("alarm.raised", "store.panel_fire_1.alarm") == 1
        finally:
            await driver.close()

    asyncio.run(go())


def test_a_panel_restart_repeats_no_alarm_and_loses_none(own_panel: PanelHost) -> None:
    rules = Rules([fire_input(n) for n in (1, 2, 3)])
    cfg = config(
        own_panel.endpoint,
        conditions=[condition(n) for n in (1, 2, 3)],
        points=[{"key": "z4_state", "node_id": "ns=2;s=Zone4.State"}],
    )

    async def go() -> None:
        driver = OpcuaDriver(cfg)
        await driver.start(rules)
        try:
            await own_panel.acall(lambda p: p.force("Zone1", "fire"))
            await own_panel.acall(lambda p: p.force("Zone2", "fire"))
            await rules.wait(lambda: rules.count("alarm.raised", "store.panel_fire_2.alarm") == 1)
            await rules.wait(lambda: rules.count("alarm.raised", "store.panel_fire_1.alarm") == 1)

            await own_panel.acall(lambda p: p.stop())
            await rules.wait(lambda: driver.state is not State.CONNECTED)
            await rules.wait(lambda: getattr(rules.last("panel.z1_fire"), "reason", "") is not None)
            assert not rules.last("panel.z4_state").is_good  # type: ignore[union-attr]
            # While the panel is away: zone 2 back to normal, zone 3 on fire.
            await own_panel.acall(lambda p: p.force("Zone2", None))
            await own_panel.acall(lambda p: p.force("Zone3", "fire"))
            away = time.monotonic()
            await own_panel.acall(lambda p: p.start())

            await rules.wait(lambda: driver.connects == 2, within=10)
            await rules.wait(lambda: rules.count("alarm.raised", "store.panel_fire_3.alarm") == 1)
            await rules.wait(lambda: rules.count("alarm.cleared", "store.panel_fire_2.alarm") == 1)
            assert time.monotonic() - away < 8
            # Subscriptions are back: a new change of zone 4 arrives.
            await own_panel.acall(lambda p: p.force("Zone4", "disabled"))
            await rules.wait(lambda: getattr(rules.last("panel.z4_state"), "value", None) == 4.0)
            await asyncio.sleep(0.3)
            assert rules.count("alarm.raised", "store.panel_fire_1.alarm") == 1
            assert rules.count("alarm.raised", "store.panel_fire_2.alarm") == 1
            assert rules.count("alarm.raised", "store.panel_fire_3.alarm") == 1
            assert rules.last("panel.z1_fire").value is True  # type: ignore[union-attr]
        finally:
            await driver.close()

    asyncio.run(go())


def test_without_condition_refresh_the_state_is_bad_until_an_event_says() -> None:
    panel = FirePanelThread(
        FirePanelServer({"Zone1": None}, port=free_port(), condition_refresh=False)
    )
    rules = Rules([fire_input(1)])

    async def go() -> None:
        driver = OpcuaDriver(config(panel.endpoint, conditions=[condition(1)]))
        await driver.start(rules)
        try:
            assert driver.state is State.CONNECTED, driver.last_error
            first = rules.last("panel.z1_fire")
            assert first is not None and not first.is_good
            assert first.reason is not None
            assert first.reason.startswith(
                "condition state unknown: the server refused ConditionRefresh (Bad"
            )
            await panel.acall(lambda p: p.force("Zone1", "fire"))
            await rules.wait(lambda: rules.count("alarm.raised", "store.panel_fire_1.alarm") == 1)
        finally:
            await driver.close()

    try:
        asyncio.run(go())
    finally:
        panel.close()
