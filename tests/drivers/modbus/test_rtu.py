"""The Modbus driver on RTU lines: a pseudo-terminal pair served by the simulator, and RTU
frames over TCP; several unit ids on one line share its connection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import pytest
from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import SimDevice

from drivers.modbus import ModbusDriver
from drivers.modbus_config import (
    ModbusConfig,
    ModbusPoint,
    RtuOverTcpTransport,
    RtuTransport,
    Transport,
)
from drivers.modbus_line import LinePool
from simulators.net import free_port
from simulators.pty_pair import PtyPair
from simulators.warehouse import register_blocks
from tests.lab import read_polls, serving, warehouse_server
from vocab.samples import Quality, Sample

SENSOR_POINTS = [
    ModbusPoint(key="temperature", address=0, type="int16", scale=0.1),
    ModbusPoint(key="humidity", address=1, type="uint16", scale=0.1),
    ModbusPoint(key="temperature_f", address=2, type="float32"),
]
RELAY_POINTS = [
    ModbusPoint(key="fan", table="coil", address=1, type="bool"),
    ModbusPoint(key="fan_fb", table="discrete_input", address=1, type="bool"),
    ModbusPoint(key="watchdog", address=1, type="uint16"),
]


def device(
    name: str, transport: Transport, unit_id: int, points: list[ModbusPoint]
) -> ModbusConfig:
    return ModbusConfig(
        name=name,
        driver="modbus",
        transport=transport,
        unit_id=unit_id,
        timeout=1.0,
        reconnect_min=0.1,
        reconnect_max=0.2,
        points=points,
    )


def rtu(path: str) -> RtuTransport:
    return RtuTransport(type="rtu", port=path, baudrate=115200)


def by_point(samples: Sequence[Sample]) -> dict[str, Sample]:
    return {s.point: s for s in samples}


def assert_sensor_values(samples: Sequence[Sample]) -> None:
    values = by_point(samples)
    assert all(s.quality is Quality.GOOD for s in samples), samples
    assert values["sensors.temperature"].value == pytest.approx(21.5)
    assert values["sensors.humidity"].value == pytest.approx(33.3)
    assert values["sensors.temperature_f"].value == pytest.approx(21.5, abs=0.01)


def test_rtu_device_on_a_pty_reads_good_samples() -> None:
    async def go() -> None:
        with PtyPair() as pair:
            async with warehouse_server(rtu_port=pair.server_path):
                driver = ModbusDriver(device("sensors", rtu(pair.client_path), 1, SENSOR_POINTS))
                [samples] = await read_polls(driver)
            assert pair.bytes_relayed > 0  # it went over the serial line, not elsewhere
        assert len(samples) == 3
        assert_sensor_values(samples)

    asyncio.run(go())


def test_two_units_on_one_line_share_it_and_take_turns() -> None:
    async def go() -> None:
        lines = LinePool()
        with PtyPair() as pair:
            async with warehouse_server(rtu_port=pair.server_path) as sim:
                sensors = ModbusDriver(
                    device("sensors", rtu(pair.client_path), 1, SENSOR_POINTS), lines
                )
                relays = ModbusDriver(
                    device("relays", rtu(pair.client_path), 2, RELAY_POINTS), lines
                )
                try:
                    assert len(lines) == 1  # one open port for both units
                    await relays.write("fan", True)
                    # Forty polls of each unit at once: without the line's lock their
                    # frames would interleave on the wire and replies would go astray.
                    polls = await asyncio.gather(
                        *(d.read() for _ in range(40) for d in (sensors, relays))
                    )
                    await sensors.close()
                    assert len(lines) == 1  # the relays still use the line
                    after_one_left = by_point(await relays.read())
                finally:
                    await sensors.close()
                    await relays.close()
                assert len(lines) == 0
                assert sim.warehouse.relays[1] is True
        sensor_polls, relay_polls = polls[0::2], polls[1::2]
        for samples in sensor_polls:
            assert_sensor_values(samples)
        for samples in relay_polls:
            values = by_point(samples)
            assert all(s.quality is Quality.GOOD for s in samples), samples
            assert values["relays.fan"].value is True
            assert values["relays.fan_fb"].value is True
        assert after_one_left["relays.fan"].value is True

    asyncio.run(go())


class UnitRecorder:
    """A real RTU server on a pty whose units note, in order, each request they answer."""

    def __init__(self) -> None:
        self.served: list[int] = []

    def unit(self, unit_id: int) -> SimDevice:
        async def action(
            function_code: int,
            start: int,
            address: int,
            count: int,
            registers: list[int],
            set_values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            self.served.append(unit_id)
            return None

        return SimDevice(id=unit_id, simdata=register_blocks(16, 10), action=action)


def test_a_poll_on_a_shared_line_is_not_interleaved_with_another_device() -> None:
    async def go() -> None:
        recorder = UnitRecorder()
        lines = LinePool()
        points = [ModbusPoint(key=f"r{i}", address=i, type="uint16") for i in range(3)]
        with PtyPair() as pair:
            server = ModbusSerialServer(
                [recorder.unit(1), recorder.unit(2)], port=pair.server_path, baudrate=115200
            )
            async with serving(server):
                # optimization "off": three requests per poll, one per point.
                configs = [
                    device(name, rtu(pair.client_path), unit, points).model_copy(
                        update={"optimization": "off"}
                    )
                    for name, unit in (("first", 1), ("second", 2))
                ]
                first, second = (ModbusDriver(c, lines) for c in configs)
                try:
                    polls = await asyncio.gather(
                        *(d.read() for _ in range(15) for d in (first, second))
                    )
                finally:
                    await first.close()
                    await second.close()
        assert all(s.quality is Quality.GOOD for p in polls for s in p)
        served = recorder.served
        assert len(served) == 2 * 15 * 3
        # Each device's three requests went out back to back, and the devices took turns.
        runs = [served[i : i + 3] for i in range(0, len(served), 3)]
        assert runs == [[1, 1, 1], [2, 2, 2]] * 15

    asyncio.run(go())


def test_unknown_unit_on_the_line_is_bad_quality() -> None:
    async def go() -> None:
        with PtyPair() as pair:
            async with warehouse_server(rtu_port=pair.server_path):
                driver = ModbusDriver(device("sensors", rtu(pair.client_path), 9, SENSOR_POINTS))
                [samples] = await read_polls(driver)
        assert {s.quality for s in samples} == {Quality.BAD}
        assert all(s.reason == "exception response, code 4" for s in samples)

    asyncio.run(go())


def test_missing_serial_port_is_bad_quality_and_backs_off() -> None:
    async def go() -> None:
        driver = ModbusDriver(
            device("sensors", rtu("/dev/cellsafe-no-such-port"), 1, SENSOR_POINTS), LinePool()
        )
        # the second read falls inside the back-off: no new open attempt
        first, second = await read_polls(driver, 2)
        assert {s.quality for s in first + second} == {Quality.BAD}
        assert [s.reason for s in second] == ["not connected"] * 3

    asyncio.run(go())


@contextlib.asynccontextmanager
async def rtu_over_tcp_server(port: int) -> AsyncIterator[None]:
    """Units 1 and 2 answering RTU frames on a TCP port, as behind a serial converter."""
    devices = [SimDevice(id=unit, simdata=register_blocks(16, 10)) for unit in (1, 2)]
    async with serving(
        ModbusTcpServer(devices, framer=FramerType.RTU, address=("127.0.0.1", port))
    ):
        yield


def test_rtu_over_tcp_units_share_one_connection() -> None:
    async def go() -> None:
        lines = LinePool()
        port = free_port()
        where = RtuOverTcpTransport(type="rtu_over_tcp", host="127.0.0.1", port=port)
        points = [ModbusPoint(key="word", address=3, type="uint16")]
        async with rtu_over_tcp_server(port):
            first = ModbusDriver(device("first", where, 1, points), lines)
            second = ModbusDriver(device("second", where, 2, points), lines)
            try:
                assert len(lines) == 1
                await first.write("word", 1234)
                await second.write("word", 4321)
                polls = await asyncio.gather(
                    *(d.read() for _ in range(20) for d in (first, second))
                )
            finally:
                await first.close()
                await second.close()
        assert len(lines) == 0
        assert {(s.point, s.value, s.quality) for p in polls for s in p} == {
            ("first.word", 1234, Quality.GOOD),
            ("second.word", 4321, Quality.GOOD),
        }

    asyncio.run(go())
