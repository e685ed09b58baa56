"""The whole path on real parts: simulator -> gateway process -> Mosquitto -> a WMS subscriber."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

from simulators.mosquitto import MosquittoBroker
from tests.conftest import Lab
from tests.lab import (
    hot_zone,
    lab_config,
    outbox_rows,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.integration

HOT_ZONE_STORY = [
    "alarm.raised",
    "safety.tripped",
    "actuator.switched",
    "alarm.cleared",
    "safety.cleared",
    "actuator.switched",
]
SPEED = 3.0
# The test config keeps the example's limits but a shorter off-delay: same story, less wait.
# Played three times faster, the warm-up would look like a rate-of-rise alarm: raise that bar.
FAST = {"off_delay": 2.0, "rate_of_rise": 100.0}


def story(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    def detail(event: dict[str, Any]) -> str:
        if "alarm" in event:
            return str(event["alarm"]["id"])
        if "safety" in event:
            return str(event["safety"]["row"])
        return str(event["actuator"]["state"])

    return [(e["type"], detail(e)) for e in events]


def test_hot_zone_raises_ventilates_and_clears_in_order(
    tmp_path: Path,
    broker: MosquittoBroker,
    lab: Lab,
) -> None:
    sim = lab.sim(hot_zone(), SPEED)
    wms = lab.wms(broker.port)
    gateway = lab.gateway(lab_config(tmp_path, sim.port, broker.port, **FAST))

    events = wms.wait_for(6, timeout=60)
    assert story(events) == [
        ("alarm.raised", "electrolyte-store.temperature.high"),
        ("safety.tripped", "ventilate-electrolyte"),
        ("actuator.switched", "on"),
        ("alarm.cleared", "electrolyte-store.temperature.high"),
        ("safety.cleared", "ventilate-electrolyte"),
        ("actuator.switched", "off"),
    ]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5, 6]
    assert len({e["event_id"] for e in events}) == 6
    assert events[0]["topic"] == "cellsafe/plant-a/gw-01/events/alarm"
    assert events[1]["topic"] == "cellsafe/plant-a/gw-01/events/safety"
    assert events[2]["topic"] == "cellsafe/plant-a/gw-01/events/actuator"
    assert events[0]["alarm"]["value"] >= 30.0
    assert events[2]["actuator"]["verified"] is True
    assert sim.warehouse.relays[0] is False

    wait_until(lambda: outbox_rows(tmp_path / "state")[0] == 0, 10, "the outbox to empty")
    # Retained state agrees with the events: the alarm has returned but nobody acknowledged
    # it, so it is still shown (ISA-18.2 "returned unacknowledged"); the fan is at rest.
    shown = [(a["id"], a["state"], a["condition"]) for a in wms.state["alarms"]["alarms"]]
    assert shown == [("electrolyte-store.temperature.high", "rtn_unack", False)]
    assert wms.state["relays"]["relays"]["exhaust-fan-1"] == {"state": "off", "faulted": False}
    birth = wms.state["status"]
    assert birth["state"] == "online" and birth["protocol"] == "5"
    assert birth["last_seq"] == 0 and len(birth["config_hash"]) == 16
    assert gateway.terminate() == 0
    wait_until(lambda: wms.state["status"]["state"] == "offline", 10, "the offline status")


def test_broker_outage_and_gateway_restart_lose_nothing(
    tmp_path: Path,
    broker: MosquittoBroker,
    lab: Lab,
) -> None:
    state = tmp_path / "state"
    sim = lab.sim(hot_zone(), SPEED)
    wms = lab.wms(broker.port)
    config = lab_config(tmp_path, sim.port, broker.port, **FAST)
    first = lab.gateway(config)

    wms.wait_for(3, timeout=60)
    # Acknowledged and gone from the outbox: what follows is all produced during the outage.
    wait_until(lambda: outbox_rows(state) == (0, 3), 10, "events 1-3 acknowledged")
    broker.stop()

    wait_until(lambda: outbox_rows(state) == (3, 6), 60, "events 4-6 stored during the outage")
    first.kill()  # no goodbye: the outbox must already hold everything
    second = lab.gateway(config)
    wait_until(lambda: sim.warehouse.finished, 60, "the scenario to end")
    assert second.alive

    broker.start()
    events = wms.wait_for(6, timeout=30)
    wait_until(lambda: outbox_rows(state) == (0, 6), 15, "the backlog to drain")
    events = wms.snapshot()
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5, 6]
    assert len({e["event_id"] for e in events}) == 6
    assert [e["type"] for e in events] == HOT_ZONE_STORY
    assert second.terminate() == 0


def test_telemetry_is_rate_limited_and_keeps_the_contract(
    tmp_path: Path,
    broker: MosquittoBroker,
    lab: Lab,
) -> None:
    sim = lab.sim(hot_zone(), 1.0)
    wms = lab.wms(broker.port)
    config = lab_config(tmp_path, sim.port, broker.port)
    data = tomllib.loads(config.read_text())
    data["telemetry"] = {"interval": 1.0}
    started = time.monotonic()
    lab.gateway(write_config(tmp_path, data))

    wait_until(lambda: len(wms.telemetry) >= 12, 30, "telemetry")
    elapsed = time.monotonic() - started
    sensors = [t for t in wms.telemetry if t["device"] == "zone-sensors"]
    assert sensors[-1]["points"]["cell-temperature"] == {
        "value": 21.0,
        "quality": "good",
        "ts": sensors[-1]["points"]["cell-temperature"]["ts"],
    }
    # Polled every 0.5 s, reported once a second: one message per device per second, and
    # the one spare message the rate limit holds for a late poll.
    assert len(sensors) <= elapsed + 2
    assert not any("seq" in t for t in wms.telemetry)  # no event numbers spent on telemetry
