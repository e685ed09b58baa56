"""The misbehaving Modbus server, driven by a real pymodbus client: each switch shows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from drivers.modbus_codec import decode, raw_at
from simulators.misbehaving import Faults, MisbehavingServer
from tests.lab import until

Scenario = Callable[[MisbehavingServer, AsyncModbusTcpClient], Awaitable[None]]


@asynccontextmanager
async def client_of(server: MisbehavingServer) -> AsyncIterator[AsyncModbusTcpClient]:
    client = AsyncModbusTcpClient(
        "127.0.0.1", port=server.port, timeout=0.3, retries=0, reconnect_delay=0
    )
    assert await client.connect()
    try:
        yield client
    finally:
        client.close()


def run(scenario: Scenario, faults: Faults | None = None, unit_id: int = 1) -> None:
    async def go() -> None:
        async with (
            MisbehavingServer(unit_id=unit_id, faults=faults) as server,
            client_of(server) as client,
        ):
            await scenario(server, client)

    asyncio.run(go())


async def holding(client: AsyncModbusTcpClient, address: int = 0, count: int = 1) -> list[int]:
    reply = await client.read_holding_registers(address, count=count, device_id=1)
    assert not reply.isError(), reply
    return list(reply.registers)


def test_serves_values_and_counts_requests() -> None:
    async def scenario(server: MisbehavingServer, client: AsyncModbusTcpClient) -> None:
        server.set_value(0, -5, "int16")
        server.set_value(1, 65000, "uint16")
        server.set_value(2, -70000, "int32", "CDAB")
        server.set_value(4, 31.25, "float32")
        server.set_value(0, 7, "uint16", table="input")
        server.set_bit(3, True)
        server.set_bit(5, True, "discrete_input")

        words = await holding(client, 0, 6)
        assert decode(words[0:1], "int16") == -5
        assert decode(words[1:2], "uint16") == 65000
        assert decode(words[2:4], "int32", "CDAB") == -70000
        assert decode(words[4:6], "float32") == 31.25
        inputs = await client.read_input_registers(0, count=1, device_id=1)
        coils = await client.read_coils(0, count=8, device_id=1)
        discrete = await client.read_discrete_inputs(0, count=8, device_id=1)
        assert inputs.registers == [7]
        assert coils.bits[:8] == [False, False, False, True, False, False, False, False]
        assert discrete.bits[5] is True and discrete.bits[3] is False
        assert server.requests == 4

    run(scenario)


def test_writes_reach_the_tables() -> None:
    async def scenario(server: MisbehavingServer, client: AsyncModbusTcpClient) -> None:
        await client.write_register(10, 0xBEEF, device_id=1)
        await client.write_registers(11, [1, 2], device_id=1)
        await client.write_coil(4, True, device_id=1)
        assert server.holding[10:13] == [0xBEEF, 1, 2]
        assert server.coils[4] is True

    run(scenario)


def test_close_after_reply_drops_the_connection_after_each_answer() -> None:
    async def scenario(server: MisbehavingServer, client: AsyncModbusTcpClient) -> None:
        server.set_value(0, 42, "uint16")
        assert await holding(client) == [42]
        async with asyncio.timeout(2):
            await until(lambda: not client.connected)
        assert await client.connect()
        assert await holding(client) == [42]
        assert server.connections == 2

    run(scenario, Faults(close_after_reply=True))


def test_exception_every_third_request() -> None:
    async def scenario(server: MisbehavingServer, client: AsyncModbusTcpClient) -> None:
        codes = []
        for _ in range(6):
            reply = await client.read_holding_registers(0, count=1, device_id=1)
            codes.append(reply.exception_code if reply.isError() else None)
        assert codes == [None, None, 4, None, None, 4]

    run(scenario, Faults(exception_every=3))


def test_garbage_every_second_reply_is_not_understood() -> None:
    async def scenario(server: MisbehavingServer, client: AsyncModbusTcpClient) -> None:
        server.set_value(0, 9, "uint16")
        assert await holding(client) == [9]
        with pytest.raises(ModbusException):
            await client.read_holding_registers(0, count=1, device_id=1)
        if not client.connected:
            assert await client.connect()
        assert await holding(client) == [9]

    run(scenario, Faults(garbage_every=2))


@pytest.mark.parametrize("faults", [Faults(silent=True), Faults(silent_every=1)])
def test_silence_times_the_client_out(faults: Faults) -> None:
    async def scenario(server: MisbehavingServer, client: AsyncModbusTcpClient) -> None:
        with pytest.raises(ModbusException):
            await client.read_holding_registers(0, count=1, device_id=1)
        assert server.requests == 1
        server.faults.silent = False
        server.faults.silent_every = 0
        assert await holding(client) == [0]

    run(scenario, faults)


def test_wrong_unit_in_the_reply_is_rejected() -> None:
    async def scenario(server: MisbehavingServer, client: AsyncModbusTcpClient) -> None:
        assert await holding(client) == [0]
        with pytest.raises(ModbusException):
            await client.read_holding_registers(0, count=1, device_id=1)

    run(scenario, Faults(wrong_unit_every=2))


def test_requests_to_another_unit_get_exception_11() -> None:
    async def scenario(server: MisbehavingServer, client: AsyncModbusTcpClient) -> None:
        reply = await client.read_holding_registers(0, count=1, device_id=7)
        assert reply.isError() and reply.exception_code == 11

    run(scenario, unit_id=3)


def test_request_length_caps_answer_exception_3() -> None:
    async def scenario(server: MisbehavingServer, client: AsyncModbusTcpClient) -> None:
        assert len(await holding(client, 0, 61)) == 61
        too_long = await client.read_holding_registers(0, count=62, device_id=1)
        assert too_long.isError() and too_long.exception_code == 3
        assert not (await client.read_coils(0, count=16, device_id=1)).isError()
        bits = await client.read_discrete_inputs(0, count=17, device_id=1)
        assert bits.isError() and bits.exception_code == 3

    run(scenario, Faults(max_registers=61, max_bits=16))


def test_byte_swap_sends_each_register_little_endian() -> None:
    async def scenario(server: MisbehavingServer, client: AsyncModbusTcpClient) -> None:
        server.set_registers(0, [0x1234])
        server.set_value(1, 21.5, "float32")
        words = await holding(client, 0, 3)
        assert words[0] == 0x3412
        assert decode(words[1:3], "float32", "BADC") == 21.5
        assert decode(words[1:3], "float32", "ABCD") != 21.5
        await client.write_register(5, 0x0102, device_id=1)
        assert server.holding[5] == 0x0201
        assert await holding(client, 5) == [0x0102]

    run(scenario, Faults(byte_swap=True))


def test_sentinels_go_out_as_manuals_print_them() -> None:
    async def scenario(server: MisbehavingServer, client: AsyncModbusTcpClient) -> None:
        server.set_not_available(0, "int32")
        server.set_not_available(2, "int16")
        server.set_not_available(3, "uint32", "CDAB")
        server.set_raw(5, -1, "int16")
        words = await holding(client, 0, 6)
        assert words == [0x8000, 0x0000, 0x8000, 0xFFFF, 0xFFFF, 0xFFFF]
        assert raw_at(words, 0, "int32", "ABCD") == -2147483648
        assert raw_at(words, 2, "int16", "ABCD") == -32768

    run(scenario)


def test_switches_change_while_the_server_runs() -> None:
    async def scenario(server: MisbehavingServer, client: AsyncModbusTcpClient) -> None:
        assert len(await holding(client, 0, 100)) == 100
        server.faults.max_registers = 50
        reply = await client.read_holding_registers(0, count=100, device_id=1)
        assert reply.isError() and reply.exception_code == 3
        server.faults.max_registers = 125
        assert len(await holding(client, 0, 100)) == 100

    run(scenario)
