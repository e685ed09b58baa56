"""Safety outputs on the simulator: voting, pre-discharge abort, module loss, a killed gateway."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from simulators.mosquitto import MosquittoBroker
from simulators.relay_module import ChannelSetup
from simulators.scenario import RelayModuleSetup, Scenario, Step, ZoneSetup
from tests.conftest import Lab
from tests.lab import WmsSubscriber, cli, wait_until, write_config

pytestmark = pytest.mark.integration

FAN, DELUGE, SIREN = 0, 1, 2
WATCHDOG = 2.0


def scenario(*steps: Step) -> Scenario:
    return Scenario(
        name="safety",
        duration=120,
        zones=[ZoneSetup(name="cell-store", temperature=24.0, humidity=45.0)],
        steps=list(steps),
        relay_module=RelayModuleSetup(
            channels=[
                # The dilution fan is wired de-energise to trip: a dead module runs it.
                ChannelSetup(channel=FAN, zone="cell-store", output="fan", wiring="de-energise"),
                ChannelSetup(channel=DELUGE, zone="cell-store", output="deluge"),
                ChannelSetup(channel=SIREN, zone="cell-store", output="other"),
            ],
            airflow_delay=1.0,
        ),
    )


def config(
    tmp_path: Path,
    sensors_port: int,
    relays_port: int,
    mqtt_port: int,
    watchdog: float = WATCHDOG,
    fan_on_stop: str = "hold",
) -> Path:
    def coil(key: str, address: int) -> dict[str, Any]:
        return {"key": key, "table": "coil", "address": address, "type": "bool"}

    def contact(key: str, address: int) -> dict[str, Any]:
        return {"key": key, "table": "discrete_input", "address": address, "type": "bool"}

    smoke = [
        {"key": f"smoke-{d}", "address": 6 + d, "type": "uint16", "scale": 0.001, "unit": "%obs/m"}
        for d in (1, 2, 3)
    ]
    return write_config(
        tmp_path,
        {
            "gateway": {"site": "plant-a", "id": "gw-09", "data_dir": str(tmp_path / "state")},
            "mqtt": {"port": mqtt_port},
            "devices": [
                {
                    "name": "sensors",
                    "driver": "modbus",
                    "transport": {"type": "tcp", "host": "127.0.0.1", "port": sensors_port},
                    "unit_id": 1,
                    "poll_interval": 0.25,
                    "points": [*smoke, contact("abort", 0)],
                },
                {
                    "name": "relays",
                    "driver": "modbus",
                    "transport": {"type": "tcp", "host": "127.0.0.1", "port": relays_port},
                    "unit_id": 2,
                    "poll_interval": 0.5,
                    "timeout": 0.5,
                    "points": [
                        coil("fan", FAN),
                        coil("deluge", DELUGE),
                        coil("siren", SIREN),
                        contact("fan-aux", FAN),
                        contact("fan-airflow", 16 + FAN),
                        contact("deluge-aux", DELUGE),
                        {"key": "heartbeat", "address": 0, "type": "uint16"},
                        {"key": "watchdog-timeout", "address": 1, "type": "uint16"},
                    ],
                },
            ],
            "zones": [
                {
                    "name": "cell-store",
                    "hazard_class": "cells",
                    "thresholds": [
                        {
                            "point": f"sensors.smoke-{d}",
                            "quantity": "smoke",
                            "on_delay": 0.5,
                            "stale_after": 600.0,
                        }
                        for d in (1, 2, 3)
                    ],
                    "inputs": [{"point": "sensors.abort", "name": "abort", "priority": "low"}],
                }
            ],
            "relays": [
                {
                    "name": "fan",
                    "device": "relays",
                    "point": "fan",
                    "trip": "de-energise",
                    "safe": True,
                    "on_stop": fan_on_stop,
                    "feedback": [
                        {"point": "relays.fan-aux", "active_when": False, "timeout": 2.0},
                        {"point": "relays.fan-airflow", "active_when": True, "timeout": 5.0},
                    ],
                },
                {
                    "name": "deluge",
                    "device": "relays",
                    "point": "deluge",
                    "feedback": [{"point": "relays.deluge-aux", "timeout": 2.0}],
                },
                {"name": "siren", "device": "relays", "point": "siren"},
            ],
            "matrix": [
                {
                    "name": "ventilate",
                    "causes": ["cell-store.smoke-*.high"],
                    "effects": [{"relay": "fan"}],
                },
                {
                    "name": "deluge",
                    "causes": ["cell-store.smoke-*.high"],
                    "vote": 2,
                    "abort": ["cell-store.abort.alarm"],
                    "effects": [
                        {"relay": "siren"},
                        {"relay": "deluge", "delay": 3.0, "latch": True},
                    ],
                },
            ],
            "watchdogs": [
                {
                    "device": "relays",
                    "heartbeat": "heartbeat",
                    "interval": 0.5,
                    "timeout": watchdog,
                    "timeout_point": "watchdog-timeout",
                }
            ],
        },
    )


def types(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


def switched(wms: WmsSubscriber, relay: str) -> list[dict[str, Any]]:
    """Verified switching of ``relay`` as the broker has it: after read-back and feedback."""
    return [e for e in types(wms.snapshot(), "actuator.switched") if e["actuator"]["name"] == relay]


def test_one_failed_detector_ventilates_but_two_release_the_deluge(
    tmp_path: Path, broker: MosquittoBroker, lab: Lab
) -> None:
    sim = lab.sim(
        scenario(
            Step(
                at=1.0,
                zone="cell-store",
                detector_stuck=(2, 5.0),
                say="smoke detector 2 fails high",
            ),
            Step(at=8.0, zone="cell-store", smoke_load=0.2, say="real smoke"),
        )
    )
    wms = lab.wms(broker.port)
    lab.gateway(config(tmp_path, sim.port, sim.port, broker.port))

    # One detector: the 1ooN ventilation row runs the fan (verified by coil, contactor and
    # airflow switch); the 2oo3 deluge row does not trip.
    def fan_events() -> list[dict[str, Any]]:
        return [
            e for e in types(wms.snapshot(), "actuator.switched") if e["actuator"]["name"] == "fan"
        ]

    # At start the module's de-energised coil runs the fan: the gateway first brings it to
    # rest, then runs it again when the detector fails.
    wait_until(
        lambda: [e["actuator"]["state"] for e in fan_events()] == ["off", "on"],
        20,
        "fan to rest, then on",
    )
    fan_on = fan_events()[1]
    assert fan_on["actuator"]["verified"] and fan_on["actuator"]["state"] == "on"
    assert sim.warehouse.relays[FAN] is False  # de-energised: that is "on" for this fan
    wait_until(lambda: sim.warehouse.elapsed > 7.5, 15, "the lone failed detector")
    assert not any(
        e["safety"].get("row") == "deluge" for e in types(wms.snapshot(), "safety.tripped")
    )
    assert sim.warehouse.relays[DELUGE] is False

    # Real smoke: two more detectors agree, siren at once, deluge after its 3 s warning.
    wait_until(lambda: switched(wms, "deluge") != [], 30, "the deluge release")
    assert sim.warehouse.relays[DELUGE] is True
    tripped = next(
        e for e in types(wms.snapshot(), "safety.tripped") if e["safety"]["row"] == "deluge"
    )
    assert len(tripped["safety"]["votes"]) >= 2
    assert switched(wms, "siren")[0]["seq"] < switched(wms, "deluge")[0]["seq"]
    wait_until(lambda: sim.warehouse.zones[0].temperature < 20, 30, "the deluge to cool the zone")


def test_abort_button_holds_the_release_and_the_count_starts_again(
    tmp_path: Path, broker: MosquittoBroker, lab: Lab
) -> None:
    sim = lab.sim(
        scenario(
            Step(at=1.0, zone="cell-store", smoke_load=0.2),
            Step(at=3.0, zone="cell-store", abort_pressed=True, say="abort held"),
            Step(at=12.0, zone="cell-store", abort_pressed=False, say="abort released"),
        )
    )
    wms = lab.wms(broker.port)
    lab.gateway(config(tmp_path, sim.port, sim.port, broker.port))

    wait_until(lambda: types(wms.snapshot(), "safety.aborted") != [], 30, "the abort")
    wait_until(lambda: sim.warehouse.elapsed > 11.5, 20, "the abort to be held")
    assert sim.warehouse.relays[DELUGE] is False
    assert sim.warehouse.relays[SIREN] is True  # the warning goes on while aborted
    wait_until(lambda: switched(wms, "deluge") != [], 20, "the release after the abort")
    resumed = types(wms.snapshot(), "safety.resumed")[0]
    released = switched(wms, "deluge")[0]
    assert resumed["seq"] < released["seq"]


def test_relay_module_lost_is_an_alarm_and_the_module_goes_safe(
    tmp_path: Path, broker: MosquittoBroker, lab: Lab
) -> None:
    sim = lab.sim(scenario())
    proxy = sim.proxy()
    wms = lab.wms(broker.port)
    lab.gateway(config(tmp_path, sim.port, proxy.port, broker.port))
    wait_until(lambda: sim.warehouse.module.watchdog == WATCHDOG, 20, "the watchdog armed")

    proxy.mode = "silent"  # the RS-485/TCP link to the module is cut
    wait_until(lambda: sim.warehouse.module.tripped, 10, "the module's own watchdog")
    assert sim.warehouse.module.runs(FAN)  # dropped coil: the dilution fan runs
    assert not sim.warehouse.module.runs(DELUGE)
    wait_until(
        lambda: any(
            e["alarm"]["id"] == "device.relays.comm" for e in types(wms.snapshot(), "alarm.raised")
        ),
        15,
        "the alarm",
    )

    proxy.mode = "pass"
    wait_until(
        lambda: any(
            e["alarm"]["id"] == "device.relays.comm" for e in types(wms.snapshot(), "alarm.cleared")
        ),
        15,
        "contact again",
    )


def test_killed_gateway_is_noticed_by_the_module(
    tmp_path: Path, broker: MosquittoBroker, lab: Lab
) -> None:
    sim = lab.sim(scenario())
    gateway = lab.gateway(config(tmp_path, sim.port, sim.port, broker.port))
    wait_until(lambda: sim.warehouse.module.watchdog == WATCHDOG, 20, "the watchdog armed")
    assert not sim.warehouse.module.runs(FAN)
    gateway.kill()
    wait_until(lambda: sim.warehouse.module.tripped, WATCHDOG + 3, "the module's own watchdog")
    assert sim.warehouse.module.runs(FAN)
    assert sim.warehouse.zones[0].fan_on or sim.warehouse.module.runs(FAN)


def test_override_from_the_cli_and_safe_state_on_a_clean_stop(
    tmp_path: Path, broker: MosquittoBroker, lab: Lab
) -> None:
    sim = lab.sim(scenario())
    wms = lab.wms(broker.port)
    # A long module watchdog, so that what this test sees is the gateway's own doing.
    path = config(tmp_path, sim.port, sim.port, broker.port, watchdog=30.0, fan_on_stop="safe")
    gateway = lab.gateway(path)
    wait_until(lambda: sim.warehouse.module.watchdog == 30.0, 20, "the watchdog armed")
    wait_until(lambda: not sim.warehouse.module.runs(FAN), 10, "the fan at rest")

    refused = cli(
        "safety",
        "--config",
        str(path),
        "override",
        "fan",
        "on",
        "--duration",
        "99999",
        "--reason",
        "purge",
        "--by",
        "alice",
    )
    assert refused.returncode == 1 and "at most 28800 s" in refused.stderr
    forced = cli(
        "safety",
        "--config",
        str(path),
        "override",
        "fan",
        "on",
        "--duration",
        "60",
        "--reason",
        "purge after a spill",
        "--by",
        "alice",
    )
    assert forced.returncode == 0, forced.stderr
    wait_until(lambda: sim.warehouse.module.runs(FAN), 10, "the override to run the fan")
    listing = cli("safety", "--config", str(path), "list").stdout
    assert '"by": {\n        "actor": "operator",\n        "name": "alice via cli"' in listing
    ended = cli("safety", "--config", str(path), "end-override", "fan", "--by", "alice")
    assert ended.returncode == 0, ended.stderr
    wait_until(lambda: not sim.warehouse.module.runs(FAN), 10, "the fan back at rest")

    assert gateway.terminate() == 0
    assert sim.warehouse.module.runs(FAN)  # driven to its safe state on the way out
    assert not sim.warehouse.module.tripped
    override = types(wms.snapshot(), "safety.override")[0]["safety"]
    assert override["by"] == {
        "actor": "operator",
        "name": "alice via cli",
        "reason": "purge after a spill",
    }
