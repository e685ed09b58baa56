"""The Modbus TCP driver against the simulator, directly and through a misbehaving proxy."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from drivers.base import WriteError
from drivers.modbus import ModbusDriver
from drivers.modbus_config import ModbusConfig, ModbusPoint, TcpTransport
from gateway.core.poller import Poller
from simulators.faults import FaultMode, FaultProxy
from simulators.net import free_port
from tests.lab import read_polls, until, warehouse_server
from vocab.samples import Quality, Sample


def sensor_config(port: int, timeout: float = 1.0, **extra: object) -> ModbusConfig:
    return ModbusConfig(
        name="sensors",
        driver="modbus",
        transport=TcpTransport(type="tcp", host="127.0.0.1", port=port),
        unit_id=1,
        timeout=timeout,
        reconnect_min=0.1,
        reconnect_max=0.2,
        points=[
            ModbusPoint(key="temperature", address=0, type="int16", scale=0.1),
            ModbusPoint(key="humidity", address=1, type="uint16", scale=0.1),
            ModbusPoint(key="temperature_f", address=2, type="float32"),
        ],
        **extra,
    )


def by_point(samples: Sequence[Sample]) -> dict[str, Sample]:
    return {s.point: s for s in samples}


def test_one_block_read_gives_every_point() -> None:
    async def go() -> None:
        async with warehouse_server() as sim:
            driver = ModbusDriver(sensor_config(sim.port))
            try:
                assert len(driver.plan) == 1
                samples = by_point(await driver.read())
            finally:
                await driver.close()
        assert samples["sensors.temperature"].value == pytest.approx(21.5)
        assert samples["sensors.humidity"].value == pytest.approx(33.3)
        assert samples["sensors.temperature_f"].value == pytest.approx(21.5, abs=0.01)
        assert all(s.quality is Quality.GOOD for s in samples.values())

    asyncio.run(go())


def test_coil_write_and_read_back() -> None:
    async def go() -> None:
        async with warehouse_server() as sim:
            config = ModbusConfig(
                name="relays",
                driver="modbus",
                transport=TcpTransport(type="tcp", host="127.0.0.1", port=sim.port),
                unit_id=2,
                points=[
                    ModbusPoint(key="fan", table="coil", address=1, type="bool"),
                    ModbusPoint(key="fan_fb", table="discrete_input", address=1, type="bool"),
                ],
            )
            driver = ModbusDriver(config)
            try:
                await driver.write("fan", True)
                samples = by_point(await driver.read())
                with pytest.raises(WriteError, match="no writable point"):
                    await driver.write("fan_fb", True)
            finally:
                await driver.close()
            assert sim.warehouse.relays[1] is True
        assert samples["relays.fan"].value is True
        assert samples["relays.fan_fb"].value is True

    asyncio.run(go())


def test_unknown_unit_is_bad_quality_not_an_exception() -> None:
    async def go() -> None:
        async with warehouse_server() as sim:
            driver = ModbusDriver(sensor_config(sim.port).model_copy(update={"unit_id": 9}))
            [samples] = await read_polls(driver)
        assert {s.quality for s in samples} == {Quality.BAD}
        assert all(s.reason == "exception response, code 4" for s in samples)

    asyncio.run(go())


def test_unreachable_device_is_bad_quality_and_backs_off() -> None:
    async def go() -> None:
        driver = ModbusDriver(sensor_config(free_port()))
        # the second read falls inside the back-off: no new connect attempt
        first, second = await read_polls(driver, 2)
        assert {s.quality for s in first + second} == {Quality.BAD}
        assert second[0].reason == "not connected"

    asyncio.run(go())


@pytest.mark.parametrize("mode", ["garble", "short", "exception", "silent"])
def test_misbehaving_device_marks_quality_bad_and_the_loop_lives_on(mode: FaultMode) -> None:
    async def go() -> None:
        received: list[list[Sample]] = []
        async with warehouse_server() as sim:
            proxy = await FaultProxy("127.0.0.1", sim.port).start()
            driver = ModbusDriver(sensor_config(proxy.port, timeout=0.3))
            poller = Poller("sensors", driver, 0.05, [], lambda s: received.append(list(s)))
            task = asyncio.create_task(poller.run())
            try:
                async with asyncio.timeout(3):
                    await until(lambda: len(received) >= 2)
                assert all(s.is_good for s in received[-1])

                proxy.mode = mode
                async with asyncio.timeout(5):
                    await until(lambda: not any(s.is_good for s in received[-1]))
                bad = received[-1]
                polls_when_bad = poller.stats.polls
                async with asyncio.timeout(5):
                    await until(lambda: poller.stats.polls >= polls_when_bad + 2)

                proxy.mode = "pass"
                async with asyncio.timeout(10):
                    await until(lambda: all(s.is_good for s in received[-1]))
                assert not task.done()
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await driver.close()
                await proxy.stop()
        assert {s.quality for s in bad} == {Quality.BAD}
        assert all(s.value is None and s.reason for s in bad)

    asyncio.run(go())
