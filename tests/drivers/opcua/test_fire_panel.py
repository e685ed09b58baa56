"""The fire-panel simulator: smoke in a zone -> pre-alarm -> fire, latched until reset;
scenario steps hold a zone in a state."""

from __future__ import annotations

import asyncio

from simulators.fire_panel import ZoneState, decide
from simulators.scenario import Step
from simulators.warehouse import Warehouse
from tests.drivers.opcua.conftest import PanelHost
from tests.drivers.opcua.helpers import config, running


def test_decide_walks_smoke_to_fire_and_latches() -> None:
    assert decide(0.1, False, None, 0.5, 2.0) == (ZoneState.NORMAL, False)
    assert decide(0.6, False, None, 0.5, 2.0) == (ZoneState.PRE_ALARM, False)
    assert decide(2.0, False, None, 0.5, 2.0) == (ZoneState.FIRE, True)
    assert decide(0.0, True, None, 0.5, 2.0) == (ZoneState.FIRE, True)  # until reset
    assert decide(3.0, False, ZoneState.DISABLED, 0.5, 2.0) == (ZoneState.DISABLED, False)


def test_warehouse_smoke_drives_the_panel(panel: PanelHost, warehouse: Warehouse) -> None:
    store = warehouse.zone("cell-store")
    points = [
        {"key": "z5_state", "node_id": "ns=2;s=Zone5.State"},
        {"key": "z5_smoke", "node_id": "ns=2;s=Zone5.Smoke"},
        {"key": "trouble", "node_id": "ns=2;s=FirePanel.Trouble", "type": "bool"},
    ]
    conditions = [{"key": "z5_fire", "source": "Zone5", "condition": "Fire"}]

    def state(rec: object) -> object:
        return getattr(rec.last("panel.z5_state"), "value", None)  # type: ignore[attr-defined]

    async def go() -> None:
        async with running(config(panel.endpoint, points=points, conditions=conditions)) as (
            _,
            rec,
        ):
            store.smoke = 0.8
            await rec.wait(lambda: state(rec) == float(ZoneState.PRE_ALARM))
            await rec.wait(lambda: getattr(rec.last("panel.z5_smoke"), "value", None) == 0.8)
            store.smoke = 2.5
            await rec.wait(lambda: getattr(rec.last("panel.z5_fire"), "value", None) is True)
            # The state comes on its own subscription: it may follow the condition's event.
            await rec.wait(lambda: state(rec) == float(ZoneState.FIRE))
            store.smoke = 0.0
            await asyncio.sleep(0.3)
            assert state(rec) == float(ZoneState.FIRE)  # latched
            await panel.acall(lambda p: p.reset())
            await rec.wait(lambda: state(rec) == float(ZoneState.NORMAL))
            await rec.wait(lambda: getattr(rec.last("panel.z5_fire"), "value", None) is False)
            # A scenario step holds the zone in fault: the panel shows trouble.
            step = Step(at=0.0, zone="cell-store", panel_state="fault")
            warehouse._steps.insert(0, step)
            warehouse.advance(0.0)
            await rec.wait(lambda: state(rec) == float(ZoneState.FAULT))
            await rec.wait(lambda: getattr(rec.last("panel.trouble"), "value", None) is True)
            warehouse._steps.insert(0, Step(at=0.0, zone="cell-store", panel_state="auto"))
            warehouse.advance(0.0)
            await rec.wait(lambda: state(rec) == float(ZoneState.NORMAL))

    asyncio.run(go())
