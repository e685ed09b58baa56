"""Shared lines in the gateway: which devices feed safety rows, and the overrun per line
in the status and the metrics."""

from __future__ import annotations

import asyncio

from prometheus_client import generate_latest
from pymodbus.client import AsyncModbusSerialClient

from drivers.modbus_line import LinePool
from drivers.modbus_load import LineStatus
from gateway.core.lines import describe, line_status, protect_safety_devices, safety_devices
from gateway.core.metrics import gateway_registry
from gateway.core.status import GatewayStatus
from rules.alarms import AlarmDefinition
from rules.matrix import EffectSpec, RowSpec
from vocab.ids import GATEWAY


def row(name: str, *causes: str) -> RowSpec:
    return RowSpec(name=name, causes=causes, effects=(EffectSpec(relay="fan", state=True),))


DEFINITIONS = [
    AlarmDefinition(id="store.temperature.high", point="gas-1.temperature"),
    AlarmDefinition(id="store.h2.high", point="gas-2.h2"),
    AlarmDefinition(id="office.temperature.high", point="hvac.temperature"),
    AlarmDefinition(id="device.energy.comm"),  # no point
    AlarmDefinition(id="gateway.outbox.usage", point=f"{GATEWAY}.outbox_usage"),
]


def test_devices_feed_safety_rows_through_the_alarms_matching_the_causes() -> None:
    assert safety_devices([row("ventilate", "store.*")], DEFINITIONS) == {"gas-1", "gas-2"}
    assert safety_devices([row("vent", "store.h2.high"), row("o", "gateway.*")], DEFINITIONS) == {
        "gas-2",
        GATEWAY,
    }
    assert safety_devices([row("nothing", "cellar.*")], DEFINITIONS) == set()


def test_protected_devices_keep_their_rate_on_an_overrun_line() -> None:
    async def go() -> tuple[LineStatus, bool]:
        pool = LinePool()
        where = "/dev/cellsafe-no-such-port"
        lines = [
            pool.acquire(("rtu", where), d, _no_client, where, (1, 2)) for d in ("gas-2", "hvac")
        ]
        line = lines[0]
        assert lines[1] is line
        line.load.add("gas-2", 1.0, 0.6)
        line.load.add("hvac", 0.5, 0.3)  # the shortest interval: hvac is the one kept
        assert line.load.plan.protected == ("hvac",)
        protect_safety_devices([row("vent", "store.h2.*")], DEFINITIONS, pool)
        status, urgent = line_status(pool)[where], line.load.urgent("gas-2")
        for device in ("gas-2", "hvac"):
            pool.release(("rtu", where), device, line)
        assert line_status(pool) == {}
        return status, urgent

    status, urgent = asyncio.run(go())
    assert status["overrun"] is True
    assert status["protected"] == ["gas-2", "hvac"]
    assert urgent


def test_metrics_show_each_line_load_and_overrun() -> None:
    lines: dict[str, LineStatus] = {
        "/dev/ttyUSB0": LineStatus(
            devices=["a", "b"],
            load=1.25,
            capacity=0.9,
            overrun=True,
            protected=["a"],
            stretched={"b": 3.0},
            stretch=1.5,
        ),
        "/dev/ttyUSB1": LineStatus(
            devices=["c"],
            load=0.2,
            capacity=0.9,
            overrun=False,
            protected=[],
            stretched={},
            stretch=1.0,
        ),
    }
    status: GatewayStatus = {
        "alarms": [],
        "chattering": [],
        "flooding": False,
        "relays": {},
        "pollers": {},
        "lines": lines,
        "sources": {},
        "safety": {},
        "outbox": 0,
        "held": 0,
        "storage_error": "",
        "sinks": {},
        "last_seq": 0,
        "uplink": "connected",
        "broker": "127.0.0.1:1883",
        "uplink_error": "",
    }
    counters = {"raised": 0, "chattering": 0, "floods": 0}
    text = generate_latest(gateway_registry(lambda: (status, counters, {}))).decode()
    assert 'cellsafe_line_load{line="/dev/ttyUSB0"} 1.25' in text
    assert 'cellsafe_line_overrun{line="/dev/ttyUSB0"} 1.0' in text
    assert 'cellsafe_line_overrun{line="/dev/ttyUSB1"} 0.0' in text
    assert 'cellsafe_line_stretch{line="/dev/ttyUSB0"} 1.5' in text


def _no_client() -> AsyncModbusSerialClient:
    return AsyncModbusSerialClient("/dev/cellsafe-no-such-port")  # never opened here


def test_alarm_list_names_an_overrun_line_and_what_it_stretched() -> None:
    line = LineStatus(
        devices=["gas-1", "fast", "hvac"],
        load=1.25,
        capacity=0.9,
        overrun=True,
        protected=["fast", "gas-1"],
        stretched={"hvac": 3.0},
        stretch=1.5,
    )
    assert describe("/dev/ttyUSB0", line) == (
        "line /dev/ttyUSB0: 3 devices, polls ask for 125 % of it, OVERRUN: fast, gas-1 kept; "
        "hvac every 3 s"
    )
    calm = LineStatus(**{**line, "load": 0.4, "overrun": False, "stretched": {}})
    assert describe("/dev/ttyUSB0", calm) == (
        "line /dev/ttyUSB0: 3 devices, polls ask for 40 % of it (90 % available)"
    )
