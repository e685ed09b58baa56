"""The driver on links that misbehave: each fault costs what it must and no more."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from drivers.modbus import ModbusDriver
from drivers.modbus_config import ModbusConfig, ModbusPoint, ModbusWorkarounds, TcpTransport
from simulators.misbehaving import Faults, MisbehavingServer
from vocab.samples import Sample


def two_blocks(port: int, timeout: float = 1.0) -> ModbusConfig:
    """Points far apart: two block reads per poll."""
    return ModbusConfig(
        name="converter",
        driver="modbus",
        transport=TcpTransport(type="tcp", host="127.0.0.1", port=port),
        timeout=timeout,
        reconnect_min=0.5,
        points=[
            ModbusPoint(key="temperature", address=0, type="int16", scale=0.1),
            ModbusPoint(key="humidity", address=1, type="uint16", scale=0.1),
            ModbusPoint(key="smoke", address=300, type="uint16"),
        ],
    )


async def polls(server: MisbehavingServer, n: int, reply_within: float = 1.0) -> list[list[Sample]]:
    server.set_value(0, 215, "int16")
    server.set_value(1, 333, "uint16")
    server.set_value(300, 7, "uint16")
    driver = ModbusDriver(two_blocks(server.port, reply_within))
    try:
        assert len(driver.plan) == 2
        return [await driver.read() for _ in range(n)]
    finally:
        await driver.close()


def test_a_converter_that_closes_after_every_reply_loses_no_poll() -> None:
    """Issue case 2: both blocks good on 12 of 12 polls, none waiting out a timeout."""

    async def go() -> None:
        async with MisbehavingServer(faults=Faults(close_after_reply=True)) as server:
            started = time.monotonic()
            results = await polls(server, 12)
            elapsed = time.monotonic() - started
            assert all(s.is_good for poll in results for s in poll), [
                (s.point, s.reason) for poll in results for s in poll if not s.is_good
            ]
            assert [s.value for s in results[-1]] == pytest.approx([21.5, 33.3, 7])
            assert elapsed < 3.0  # 24 requests; a single timeout would cost 1 s each
            assert server.connections == 24  # a new connection for every request

    asyncio.run(go())


@pytest.mark.parametrize("fault", ["exception_every", "garbage_every", "wrong_unit_every"])
def test_a_bad_reply_costs_that_reply_not_the_others(fault: str) -> None:
    async def go() -> None:
        faults = Faults(**{fault: 7})  # type: ignore[arg-type]
        async with MisbehavingServer(faults=faults) as server:
            results = await polls(server, 15, reply_within=0.3)
            bad = sum(not s.is_good for poll in results for s in poll)
            # 30 requests, every 7th spoiled: at most 4 requests, of 1 or 2 points each. (A
            # garbled frame that makes pymodbus drop the connection is even sent again.)
            assert bad <= 8
            if fault == "exception_every":  # an answer of the device itself: taken as is
                assert bad >= 4
            assert all(s.is_good for s in results[-1])  # and the device goes on answering

    asyncio.run(go())


def test_an_exception_reply_keeps_the_connection() -> None:
    async def go() -> None:
        async with MisbehavingServer(faults=Faults(exception_every=3)) as server:
            await polls(server, 10)
            assert server.connections == 1

    asyncio.run(go())


def test_a_flapping_device_logs_its_health_not_every_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue case 9: a flapping device wrote about 200 warning lines a minute."""

    async def go() -> None:
        async with MisbehavingServer(faults=Faults(exception_every=2)) as server:
            await polls(server, 60)

    with caplog.at_level(logging.INFO):
        asyncio.run(go())
    lines = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert [r.getMessage().split(":")[0] for r in lines] == ["device converter degraded"]


def test_workarounds_close_after_each_poll_and_pause_between_requests() -> None:
    async def go() -> None:
        async with MisbehavingServer() as server:
            config = two_blocks(server.port).model_copy(
                update={
                    "workarounds": ModbusWorkarounds(
                        close_connection_after_poll=True, pause_between_requests=0.1
                    )
                }
            )
            driver = ModbusDriver(config)
            try:
                started = time.monotonic()
                results = [await driver.read() for _ in range(5)]
                elapsed = time.monotonic() - started
            finally:
                await driver.close()
            assert all(s.is_good for poll in results for s in poll)
            assert server.connections == 5  # one connection per poll
            assert elapsed >= 5 * 0.1  # one pause between the two requests of each poll

    asyncio.run(go())
