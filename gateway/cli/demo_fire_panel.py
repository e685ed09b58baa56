"""The demo's fire-panel part: a panel alarm arrives over OPC UA and trips a matrix row.

After the hot-zone story, the same example configuration gains an ``opcua`` device (the
fire-panel simulator on a free loopback port), a cell-store input fed by the panel's
Zone1 Fire condition and a matrix row sounding the cell store's siren. A scenario step holds
the panel's zone in fire; the condition arrives as an Alarms & Conditions event, the
gateway raises ``cell-store.panel-fire.alarm``, the row trips the siren (verified by
read-back); an operator acknowledges in the gateway and the acknowledge reaches the panel;
the panel is reset, the alarm clears, the siren stops.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivers.opcua_config import OpcuaCondition, OpcuaConfig
from gateway.app import Gateway
from gateway.config import GatewaySettings
from gateway.config.settings import ZoneConfig
from rules.alarms import Cause
from rules.discrete import DiscreteInput
from rules.matrix import EffectSpec, RowSpec
from simulators.fire_panel import FirePanelServer, FirePanelThread
from simulators.lab import SimulatorThread
from simulators.mosquitto import MosquittoBroker
from simulators.net import free_port
from simulators.scenario import Scenario, Step
from vocab.clock import steady

ALARM = "cell-store.panel-fire.alarm"
PANEL = "fire-panel"
EXPECTED = ["alarm.raised", "safety.tripped", "actuator.switched", "alarm.acknowledged"]

Say = Callable[[str, str], None]


def panel_scenario(base: Scenario) -> Scenario:
    """The hot-zone warehouse, quiet, with the panel's cell-store zone in fire for a while."""
    steps = [
        Step(at=0.0, say="Both stores quiet; the fire panel watches the cell store (Zone1)."),
        Step(
            at=3.0,
            zone="cell-store",
            panel_state="fire",
            say="A detector head in the cell store trips: the panel goes to fire in Zone1.",
        ),
        Step(
            at=14.0,
            zone="cell-store",
            panel_state="auto",
            say="The head was a false trip, the panel's zone is back to its detectors.",
        ),
    ]
    return base.model_copy(update={"name": "panel_fire", "duration": 30.0, "steps": steps})


def panel_settings(settings: GatewaySettings, endpoint: str) -> GatewaySettings:
    """``settings`` plus the panel device, the cell store's panel input and the siren row."""
    device = OpcuaConfig(
        name=PANEL,
        driver="opcua",
        endpoint=endpoint,
        publishing_interval=0.1,
        conditions=[
            OpcuaCondition(key="zone1-fire", source="Zone1", condition="Fire", acknowledge=True)
        ],
    )
    zones: list[ZoneConfig] = []
    for zone in settings.zones:
        if zone.name == "cell-store":
            panel_input = DiscreteInput(
                point=f"{PANEL}.zone1-fire", name="panel-fire", priority="critical"
            )
            zone = zone.model_copy(update={"inputs": [*zone.inputs, panel_input]})
        zones.append(zone)
    row = RowSpec(name="panel-fire", causes=(ALARM,), effects=(EffectSpec(relay="cell-siren"),))
    return settings.model_copy(
        update={
            "devices": [*settings.devices, device],
            "zones": zones,
            "matrix": [*settings.matrix, row],
        }
    )


def play_fire_panel(
    settings: GatewaySettings,
    base: Scenario,
    speed: float,
    workdir: Path,
    say: Say,
    lab: Callable[[GatewaySettings, int, int, Path], GatewaySettings],
    wms: Callable[[str, int, str], Any],
) -> bool:
    """Run the part; True when the story happened as told."""
    scenario = panel_scenario(base)
    say("demo", "fire panel: an OPC UA alarm trips a matrix row")
    with MosquittoBroker(workdir / "broker-panel") as broker:
        sim_port = free_port()
        sim = SimulatorThread(
            scenario, sim_port, speed=speed, say=lambda _t, text: say("scenario", text)
        )
        panel_server = FirePanelServer(
            {"Zone1": "cell-store"}, port=free_port(), warehouse=sim.warehouse
        )
        # The panel first (it takes a second to start), then the scenario's clock.
        with FirePanelThread(panel_server) as panel, sim:
            say("demo", f"fire-panel simulator (OPC UA) on {panel.endpoint}")
            view = wms(broker.host, broker.port, settings.mqtt.topic_prefix)
            try:
                aimed = lab(settings, sim_port, broker.port, workdir / "state-panel")
                full = panel_settings(aimed, panel.endpoint)
                acked = asyncio.run(_run(full, sim, panel, scenario.duration / speed + 15, say))
            finally:
                view.close()
            seen: list[str] = view.types()
    story = [t for t in seen if t in EXPECTED]
    ok = all(t in story for t in EXPECTED) and acked
    say("demo", f"{len(seen)} events reached the broker: {', '.join(seen) or 'none'}")
    say(
        "demo",
        "done: panel fire over OPC UA, siren on, acknowledged on the panel, zone normal, siren off"
        if ok
        else f"UNEXPECTED: wanted {', '.join(EXPECTED)} and the panel acknowledged",
    )
    return ok


async def _run(
    settings: GatewaySettings,
    sim: SimulatorThread,
    panel: FirePanelThread,
    limit: float,
    say: Say,
) -> bool:
    gateway = Gateway(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(gateway.run(stop))
    deadline = time.monotonic() + limit
    acked_at: float | None = None
    panel_acked = False
    while time.monotonic() < deadline and not task.done():
        await asyncio.sleep(0.2)
        pipeline = gateway.pipeline
        if pipeline is None:
            continue
        record = pipeline.alarms.records.get(ALARM)
        if acked_at is None and record is not None and record.condition:
            acked_at = time.monotonic()
            await asyncio.sleep(2.0)
            say("operator", f"ann acknowledges {ALARM} in the gateway")
            pipeline.command(
                lambda alarms: alarms.acknowledge(ALARM, Cause("operator", "ann"), steady())
            )
        if acked_at is not None and not panel_acked:
            _, acked = await panel.acall(lambda p: asyncio.sleep(0, p.condition("Zone1", "Fire")))
            if acked:
                panel_acked = True
                say("panel", "Zone1 Fire acknowledged on the panel, from the gateway")
        if sim.warehouse.elapsed >= 15.0 and panel_acked and record is not None:
            if record.condition:
                await panel.acall(lambda p: p.reset())
            elif gateway.settled:
                break
    stop.set()
    await task
    return panel_acked
