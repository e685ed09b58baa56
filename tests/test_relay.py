"""Relays against the simulator's relay module: verified switching, and a stuck contact."""

from __future__ import annotations

import asyncio
import time
import tomllib
from pathlib import Path

import pytest
import tomli_w

from actuators.relay import FeedbackSpec, Relay, RelaySpec
from drivers.modbus import ModbusDriver
from drivers.modbus_config import ModbusConfig, ModbusPoint, TcpTransport
from gateway.config import ConfigError, load_settings
from rules.matrix import RelayDemand
from simulators.net import free_port
from simulators.warehouse import Warehouse, WarehouseServer
from tests.lab import EventList, quiet_scenario, until, warehouse_server

HOT = RelayDemand(True, ("store.temperature.high",))
REST = RelayDemand(False, ())


EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "example.toml"


def relay_driver(sim: WarehouseServer, key: str = "fan") -> ModbusDriver:
    return ModbusDriver(
        ModbusConfig(
            name="relay-module",
            driver="modbus",
            transport=TcpTransport(type="tcp", host="127.0.0.1", port=sim.port),
            unit_id=2,
            points=[ModbusPoint(key=key, table="coil", address=0, type="bool")],
        )
    )


def test_command_is_verified_and_reported_once() -> None:
    async def go() -> None:
        sink = EventList()
        async with warehouse_server() as sim:
            driver = relay_driver(sim)
            spec = RelaySpec(name="fan-1", device="relay-module", point="fan")
            relay = Relay(spec, driver, sink, sink.condition)
            task = asyncio.create_task(relay.run())
            try:
                relay.request(REST)  # already off: nothing to send, nothing to report
                relay.request(HOT)
                async with asyncio.timeout(5):
                    await until(lambda: relay.state is True)
                assert sim.warehouse.relays[0] is True
                relay.request(HOT)
                relay.request(REST)
                async with asyncio.timeout(5):
                    await until(lambda: relay.state is False)
            finally:
                task.cancel()
                await driver.close()
        assert sink.types() == ["actuator.switched", "actuator.switched"]
        on = sink.events[0].body["actuator"]
        assert on["state"] == "on"
        assert on["verified"] is True
        assert on["causes"] == ["store.temperature.high"]
        assert sink.events[1].body["actuator"]["resting"] is True

    asyncio.run(go())


def test_stuck_contact_is_an_alarm_that_clears_when_it_obeys() -> None:
    async def go() -> None:
        sink = EventList()
        async with warehouse_server() as sim:
            sim.warehouse.stuck_relays.add(0)
            driver = relay_driver(sim)
            spec = RelaySpec(
                name="fan-1",
                device="relay-module",
                point="fan",
                verify_timeout=0.2,
                retries=1,
                retry_after=0.3,
            )
            relay = Relay(spec, driver, sink, sink.condition)
            task = asyncio.create_task(relay.run())
            try:
                relay.request(HOT)
                async with asyncio.timeout(5):
                    await until(lambda: len(sink.conditions) == 1)
                assert relay.faulted
                await asyncio.sleep(1.0)  # several quiet retries while it stays stuck
                sim.warehouse.stuck_relays.clear()
                async with asyncio.timeout(5):
                    await until(lambda: len(sink.conditions) == 2)
            finally:
                task.cancel()
                await driver.close()
            assert sim.warehouse.relays[0] is True
        # Retries while stuck are not reported again; success is, then the alarm clears.
        assert sink.types() == ["actuator.failed", "actuator.switched"]
        failed = sink.events[0].body
        assert failed["actuator"]["attempts"] == 2
        assert "read-back shows off" in failed["error"]
        assert [(c.alarm_id, c.active) for c in sink.conditions] == [
            ("actuator.fan-1.fault", True),
            ("actuator.fan-1.fault", False),
        ]

    asyncio.run(go())


def test_missing_feedback_keeps_the_fault_until_it_confirms() -> None:
    async def go() -> None:
        sink = EventList()
        async with warehouse_server() as sim:
            sim.warehouse.module.dead_feedback.add(0)  # the contactor's aux contact is dead
            driver = ModbusDriver(
                ModbusConfig(
                    name="relay-module",
                    driver="modbus",
                    transport=TcpTransport(type="tcp", host="127.0.0.1", port=sim.port),
                    unit_id=2,
                    points=[
                        ModbusPoint(key="fan", table="coil", address=0, type="bool"),
                        ModbusPoint(key="aux", table="discrete_input", address=0, type="bool"),
                    ],
                )
            )

            async def read_point(point: str) -> bool | None:
                samples = await driver.read([point.split(".", 1)[1]])
                return bool(samples[0].value) if samples[0].is_good else None

            spec = RelaySpec(
                name="fan-1",
                device="relay-module",
                point="fan",
                verify_timeout=0.2,
                retries=0,
                retry_after=0.3,
                feedback=(FeedbackSpec(point="relay-module.aux", timeout=0.3),),
            )
            relay = Relay(spec, driver, sink, sink.condition, read_point)
            task = asyncio.create_task(relay.run())
            try:
                relay.request(HOT)
                async with asyncio.timeout(5):
                    await until(lambda: len(sink.conditions) == 1)
                await asyncio.sleep(1.5)  # several quiet retries: still no confirmation
                assert relay.faulted and relay.state is None
                assert len(sink.conditions) == 1
                sim.warehouse.module.dead_feedback.clear()
                async with asyncio.timeout(5):
                    await until(lambda: len(sink.conditions) == 2)
                assert relay.state is True
            finally:
                task.cancel()
                await driver.close()
        assert sink.types() == ["actuator.failed", "actuator.switched"]
        assert "feedback relay-module.aux did not confirm on" in sink.events[0].body["error"]

    asyncio.run(go())


def test_an_output_changed_behind_its_back_is_put_right() -> None:
    async def go() -> None:
        sink = EventList()
        async with warehouse_server() as sim:
            driver = relay_driver(sim)
            spec = RelaySpec(name="fan-1", device="relay-module", point="fan", retry_after=0.3)
            relay = Relay(spec, driver, sink, sink.condition)
            task = asyncio.create_task(relay.run())
            try:
                relay.request(HOT)
                async with asyncio.timeout(5):
                    await until(lambda: relay.state is True)
                sim.warehouse.module.coils[0] = False  # the module dropped it (watchdog, reset)
                async with asyncio.timeout(5):
                    await until(lambda: len(sink.events) == 2)
                assert sim.warehouse.module.coils[0] is True
            finally:
                task.cancel()
                await driver.close()
        assert sink.types() == ["actuator.switched", "actuator.switched"]

    asyncio.run(go())


def configured_relay(tmp_path: Path, **keys: object) -> RelaySpec:
    """The example's exhaust fan (coil 0 of the relay module), ``keys`` set in its table."""
    data = tomllib.loads(EXAMPLE.read_text())
    data["relays"][0].update(keys)
    data["relays"][0]["feedback"] = []
    path = tmp_path / "site.toml"
    path.write_text(tomli_w.dumps(data))
    return load_settings(path).relays[0]


async def seconds_to_put_right(spec: RelaySpec) -> float:
    """Switch on, drop the coil behind the relay's back at once, time until it is on again."""
    sink = EventList()
    async with warehouse_server() as sim:
        driver = relay_driver(sim, spec.point)
        relay = Relay(spec, driver, sink, sink.condition)
        task = asyncio.create_task(relay.run())
        try:
            relay.request(HOT)
            async with asyncio.timeout(5):
                await until(lambda: len(sink.events) == 1)
            sim.warehouse.module.coils[0] = False  # the idle wait has only just begun
            dropped = time.monotonic()
            async with asyncio.timeout(spec.retry_after + 5):
                await until(lambda: len(sink.events) == 2)
            return time.monotonic() - dropped
        finally:
            task.cancel()
            await driver.close()


def test_retry_after_from_the_config_file_paces_the_read_back(tmp_path: Path) -> None:
    default = configured_relay(tmp_path)
    quick = configured_relay(tmp_path, retry_after=0.5)
    assert default.retry_after == 5.0
    assert quick.retry_after == 0.5
    # Put right within about half a second, where the default would wait five.
    assert asyncio.run(seconds_to_put_right(quick)) < 2.0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "relays[0].retry_after: Input should be greater than 0"),
        (-1.0, "relays[0].retry_after: Input should be greater than 0"),
        (7200, "relays[0].retry_after: Input should be less than or equal to 3600"),
        ("soon", "relays[0].retry_after: Input should be a valid number"),
    ],
)
def test_retry_after_is_validated(tmp_path: Path, value: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        configured_relay(tmp_path, retry_after=value)
    assert any(line.startswith(f"site.toml: {message}") for line in caught.value.lines()), (
        caught.value.lines()
    )


def test_a_link_that_is_down_for_a_second_costs_no_attempt() -> None:
    """Issue case 3: while the relay module's link flapped, all three write attempts went
    within a millisecond ("not connected") and the fan never ran. A write the link cannot
    carry is tried again within the attempt's verify_timeout."""

    async def go() -> None:
        sink = EventList()
        port = free_port()
        sim = WarehouseServer(Warehouse(quiet_scenario()), "127.0.0.1", port)
        driver = ModbusDriver(
            ModbusConfig(
                name="relay-module",
                driver="modbus",
                transport=TcpTransport(type="tcp", host="127.0.0.1", port=port),
                unit_id=2,
                reconnect_min=0.2,
                reconnect_max=0.4,
                points=[ModbusPoint(key="fan", table="coil", address=0, type="bool")],
            )
        )
        spec = RelaySpec(name="fan-1", device="relay-module", point="fan", verify_timeout=2.0)
        relay = Relay(spec, driver, sink, sink.condition)
        task = asyncio.create_task(relay.run())
        try:
            relay.request(HOT)  # the module is not there yet
            await asyncio.sleep(1.0)
            await sim.start()  # back after a second
            async with asyncio.timeout(5):
                await until(lambda: relay.state is True)
        finally:
            task.cancel()
            await driver.close()
            await sim.stop()
        assert sink.types() == ["actuator.switched"]
        assert sink.events[0].body["actuator"]["attempts"] == 1
        assert not [c for c in sink.conditions if c.active]  # no fault raised on the way

    asyncio.run(go())


def test_a_module_that_never_takes_the_write_is_a_fault() -> None:
    """A write the link does not carry within verify_timeout uses up the attempt; after
    every attempt the relay raises its fault alarm and counts the command unverified."""

    async def go() -> None:
        sink = EventList()
        driver = ModbusDriver(
            ModbusConfig(
                name="relay-module",
                driver="modbus",
                transport=TcpTransport(type="tcp", host="127.0.0.1", port=free_port()),
                unit_id=2,
                reconnect_min=0.1,
                reconnect_max=0.2,
                points=[ModbusPoint(key="fan", table="coil", address=0, type="bool")],
            )
        )
        spec = RelaySpec(
            name="fan-1", device="relay-module", point="fan", verify_timeout=0.3, retries=1
        )
        relay = Relay(spec, driver, sink, sink.condition)
        task = asyncio.create_task(relay.run())
        try:
            relay.request(HOT)  # nobody listens on that port
            async with asyncio.timeout(5):
                await until(lambda: relay.faulted)
        finally:
            task.cancel()
            await driver.close()
        assert (relay.verified, relay.unverified) == (0, 1)
        assert sink.types() == ["actuator.failed"]
        failed = sink.events[0].body
        assert failed["actuator"]["attempts"] == 2
        assert "write not taken within 0.3 s" in failed["error"]
        assert [(c.alarm_id, c.active) for c in sink.conditions] == [("actuator.fan-1.fault", True)]

    asyncio.run(go())
