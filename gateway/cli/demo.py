"""``cellsafe demo``: the hot-zone day, end to end, on real parts.

A private Mosquitto broker and the warehouse simulator start on free loopback ports; the
gateway runs with the example configuration pointed at them; a subscriber in the WMS's
seat prints every event that reaches the broker. Nothing is left running afterwards.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from drivers.base import DeviceConfig
from gateway.app import Gateway
from gateway.cli import logs
from gateway.cli.demo_stock import play_stock
from gateway.cli.demo_view import EventView
from gateway.config import ConfigError, GatewaySettings, load_settings
from simulators.lab import SimulatorThread
from simulators.mosquitto import MosquittoBroker
from simulators.net import free_port
from simulators.scenario import Scenario, ScenarioError, load_scenario

_EXPECTED = ["alarm.raised", "actuator.switched", "alarm.cleared", "actuator.switched"]
_STORY_TYPES = set(_EXPECTED)


def _say(topic: str, text: str) -> None:
    print(f"{datetime.now():%H:%M:%S}  {topic:<10} {text}", flush=True)


def lab_settings(
    settings: GatewaySettings, sim_port: int, mqtt_port: int, data_dir: Path
) -> GatewaySettings:
    """The example configuration, aimed at the lab's simulator and broker."""
    return settings.model_copy(
        update={
            "gateway": settings.gateway.model_copy(update={"data_dir": data_dir}),
            "mqtt": settings.mqtt.model_copy(update={"host": "127.0.0.1", "port": mqtt_port}),
            "devices": [_aimed_at(d, sim_port) for d in settings.devices],
        }
    )


def _aimed_at(device: DeviceConfig, port: int) -> DeviceConfig:
    """``device`` with its TCP transport, if it has one, pointed at 127.0.0.1:``port``."""
    data = device.model_dump()
    transport = data.get("transport")
    if not isinstance(transport, dict) or transport.get("type") != "tcp":
        return device
    data["transport"] = {**transport, "host": "127.0.0.1", "port": port}
    return type(device).model_validate(data)


_ALARM_LABELS = {
    "alarm.raised": "ALARM",
    "alarm.cleared": "CLEARED",
    "alarm.acknowledged": "ACKED",
    "alarm.out_of_service": "DISABLED",
    "alarm.returned_to_service": "ENABLED",
    "alarm.unsuppressed": "UNSUPPRESS",
}


def alarm_label(event_type: str) -> str:
    """The narration's column for an ``alarm.*`` event: at most 10 characters, so that the
    transcript's columns stay aligned (``alarm.shelved`` -> ``SHELVED``)."""
    return _ALARM_LABELS.get(event_type, event_type.split(".", 1)[1].upper())[:10]


class _WmsView(EventView):
    """Subscribes like the WMS would and narrates each event that arrives."""

    def __init__(self, host: str, port: int, prefix: str) -> None:
        super().__init__(host, port, prefix, "demo-wms")

    def narrate(self, event: dict[str, Any]) -> None:
        seq = f"[seq {event['seq']}]"
        if "alarm" in event:
            alarm = event["alarm"]
            _say(alarm_label(event["type"]), f"{alarm['message']}  {seq}")
        elif "actuator" in event:
            act = event["actuator"]
            check = "verified by read-back" if act["verified"] else "NOT VERIFIED"
            why = f" because {', '.join(act['causes'])}" if act["causes"] else " (resting state)"
            _say(
                "RELAY",
                f"{act['name']} {act['state'].upper()}{why}, {check} "
                f"in {act['elapsed_ms']} ms  {seq}",
            )
        elif "safety" in event:
            detail = event["safety"]
            what = detail.get("row") or detail.get("relay", "")
            votes = f" by {', '.join(detail['votes'])}" if detail.get("votes") else ""
            _say("SAFETY", f"{what} {event['type'].split('.', 1)[1]}{votes}  {seq}")
        else:
            _say("EVENT", f"{event['type']}  {seq}")


def run_demo(config: Path, scenario_name: str, speed: float) -> int:
    try:
        settings = load_settings(config)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 1
    try:
        scenario = load_scenario(scenario_name)
    except ScenarioError as err:
        print(f"cellsafe demo: {err}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="cellsafe-demo-") as tmp:
        workdir = Path(tmp)
        # The gateway's own log goes to a file: the terminal is for the story.
        with (workdir / "gateway.log").open("w") as log_stream:
            logs.configure("info", "json", stream=log_stream)
            code = _play(settings, scenario, speed, workdir)
            return code or _fire_panel_part(settings, scenario, speed, workdir)


def _fire_panel_part(
    settings: GatewaySettings, scenario: Scenario, speed: float, workdir: Path
) -> int:
    """The fire-panel part (``gateway/cli/demo_fire_panel.py``), after the hot-zone story."""
    if not any(z.name == "cell-store" for z in scenario.zones):
        return 0
    from gateway.cli.demo_fire_panel import play_fire_panel

    ok = play_fire_panel(settings, scenario, speed, workdir, _say, lab_settings, _WmsView)
    return 0 if ok else 1


def _play(settings: GatewaySettings, scenario: Scenario, speed: float, workdir: Path) -> int:
    _say("demo", f"scenario {scenario.name!r}: {scenario.description}")
    with MosquittoBroker(workdir / "broker") as broker:
        _say("demo", f"Mosquitto broker on 127.0.0.1:{broker.port}")
        sim_port = free_port()
        with SimulatorThread(
            scenario, sim_port, speed=speed, say=lambda _t, text: _say("scenario", text)
        ) as sim:
            _say(
                "demo",
                f"warehouse simulator on 127.0.0.1:{sim_port} "
                f"(sensors unit 1, relay module unit 2)",
            )
            wms = _WmsView(broker.host, broker.port, settings.mqtt.topic_prefix)
            try:
                lab = lab_settings(settings, sim_port, broker.port, workdir / "state")
                asyncio.run(_run_gateway(lab, sim, scenario.duration / speed + 15))
            finally:
                wms.close()
            seen = wms.types()
    ok = [t for t in seen if t in _STORY_TYPES][: len(_EXPECTED)] == _EXPECTED
    _say("demo", f"{len(seen)} events reached the broker: {', '.join(seen) or 'none'}")
    _say(
        "demo",
        "done: alarm raised, fan on, zone cooled, alarm cleared, fan off"
        if ok
        else f"UNEXPECTED: wanted {', '.join(_EXPECTED)}",
    )
    stocked = play_stock(workdir, _say)  # gateway/cli/demo_stock.py
    _say(
        "demo",
        "stock done: put-away stored, misplacement refused and alarmed, drums moved, cleared"
        if stocked
        else "stock: UNEXPECTED events",
    )
    return 0 if ok and stocked else 1


async def _run_gateway(settings: GatewaySettings, sim: SimulatorThread, limit: float) -> None:
    gateway = Gateway(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(gateway.run(stop))
    deadline = time.monotonic() + limit
    next_report = 0.0
    while time.monotonic() < deadline and not task.done():
        now = time.monotonic()
        if now >= next_report:
            next_report = now + 3
            zone = sim.warehouse.zones[0]
            _say(
                "zone",
                f"{zone.name}  {zone.temperature:5.1f} degC  {zone.humidity:4.1f} %RH"
                f"  exhaust fan {'ON' if zone.fan_on else 'off'}",
            )
        if sim.warehouse.finished and gateway.settled:
            break
        await asyncio.sleep(0.2)
    stop.set()
    await task
