"""An RTU device and a TCP device in one gateway process, on real parts: the simulator
serves its sensor unit over a pseudo-terminal pair and its relay module over TCP."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from simulators.mosquitto import MosquittoBroker
from simulators.warehouse import RELAY_UNIT, SENSOR_UNIT
from tests.conftest import Lab
from tests.lab import cli, hot_zone, lab_config, wait_until, write_config

pytestmark = pytest.mark.integration

SPEED = 3.0
FAST = {"off_delay": 2.0, "rate_of_rise": 100.0}


def test_rtu_sensors_and_tcp_relays_in_one_gateway(
    tmp_path: Path, broker: MosquittoBroker, lab: Lab
) -> None:
    line = lab.pty_pair(baudrate=19200)  # a line with the timing of 19,200 bit/s
    sim = lab.sim(hot_zone(), SPEED, rtu_port=line.server_path)
    wms = lab.wms(broker.port)
    data = tomllib.loads(lab_config(tmp_path, sim.port, broker.port, **FAST).read_text())
    sensors, relays = data["devices"]
    assert (sensors["unit_id"], relays["unit_id"]) == (SENSOR_UNIT, RELAY_UNIT)
    sensors["transport"] = {"type": "rtu", "port": line.client_path, "baudrate": 19200}
    assert relays["transport"]["type"] == "tcp"
    data["telemetry"] = {"interval": 0.5}
    config = write_config(tmp_path, data)
    gateway = lab.gateway(config)

    # The alarm comes from a point read over RTU; the fan it starts is a coil over TCP.
    events = wms.wait_for(3, timeout=60)
    assert [e["type"] for e in events[:3]] == [
        "alarm.raised",
        "safety.tripped",
        "actuator.switched",
    ]
    assert events[0]["alarm"]["id"] == "electrolyte-store.temperature.high"
    assert events[0]["alarm"]["value"] >= 30.0
    assert events[2]["actuator"]["state"] == "on"
    assert events[2]["actuator"]["verified"] is True
    wait_until(lambda: sim.warehouse.relays[0] is True, 10, "the fan coil on")

    def latest(device: str) -> dict[str, dict[str, object]]:
        messages = [t for t in wms.telemetry if t["device"] == device]
        return dict(messages[-1]["points"]) if messages else {}

    def fan_reported_on() -> bool:
        fan = latest("relay-module").get("exhaust-fan", {})
        return fan.get("value") is True

    wait_until(fan_reported_on, 20, "telemetry of the fan coil, read back over TCP")
    zone, module = latest("zone-sensors"), latest("relay-module")
    assert {p["quality"] for p in zone.values()} == {"good"}
    assert {p["quality"] for p in module.values()} == {"good"}
    assert zone["cell-temperature"]["value"] == 21.0  # the quiet store, read over RTU
    temperature = zone["temperature"]["value"]
    assert isinstance(temperature, float) and 25.0 <= temperature <= 40.0  # the warm store
    assert line.bytes_relayed > 0
    # The shared line and its load, as cellsafe status shows it.
    shown = cli("status", "--config", str(config)).stdout
    assert f"line {line.client_path}: 1 devices, polls ask for " in shown, shown
    assert gateway.terminate() == 0
