"""RTU timing and faults on a line with a baud rate: real pymodbus slaves behind
``simulators.rtu_line.RtuLine``, the gateway's driver and poller as master."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

import pytest
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU
from pymodbus.pdu.register_message import ReadHoldingRegistersResponse
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import SimDevice

from drivers.modbus import ModbusDriver
from drivers.modbus_config import ModbusConfig, ModbusPoint, RtuTransport
from drivers.modbus_line import LinePool
from drivers.modbus_load import LineStatus
from drivers.modbus_timing import frame_gap
from gateway.core.poller import Poller
from simulators.rtu_line import RtuLine
from simulators.warehouse import register_blocks
from tests.lab import serving
from vocab.samples import Quality, Sample

POINT = [ModbusPoint(key="word", address=3, type="uint16")]


def unit(
    name: str,
    path: str,
    unit_id: int,
    baudrate: int,
    *,
    timeout: float = 0.5,  # ample for a good unit on a loaded machine
    interval: float = 1.0,
    points: list[ModbusPoint] = POINT,
) -> ModbusConfig:
    return ModbusConfig(
        name=name,
        driver="modbus",
        transport=RtuTransport(type="rtu", port=path, baudrate=baudrate),
        unit_id=unit_id,
        timeout=timeout,
        poll_interval=interval,
        reconnect_min=0.1,
        reconnect_max=0.2,
        points=points,
    )


@contextlib.asynccontextmanager
async def slaves(line: RtuLine, units: Sequence[int]) -> AsyncIterator[None]:
    """pymodbus RTU slaves ``units`` on the line's server side, 128 holding registers each."""
    devices = [SimDevice(id=u, simdata=register_blocks(16, 128)) for u in units]
    async with serving(ModbusSerialServer(devices, port=line.server_path, baudrate=line.baudrate)):
        yield


def reasons(samples: Sequence[Sample]) -> set[str | None]:
    return {s.reason for s in samples}


def test_each_fault_marks_only_its_unit_bad_with_its_reason() -> None:
    async def go() -> None:
        lines = LinePool()
        with RtuLine(19200) as line:
            line.faults.update({2: "silent", 3: "bad_crc", 4: "framing"})
            async with slaves(line, [1, 2, 3, 4]):
                good, silent, crc, broken = (
                    ModbusDriver(unit(f"u{n}", line.client_path, n, 19200, timeout=t), lines)
                    for n, t in ((1, 2.0), (2, 0.1), (3, 2.0), (4, 0.1))
                )
                try:
                    first = await good.read()
                    loop = asyncio.get_running_loop()
                    started = loop.time()
                    lost = await silent.read()
                    silent_took = loop.time() - started
                    started = loop.time()
                    corrupt = await crc.read()
                    crc_took = loop.time() - started
                    cut = await broken.read()
                    after = await good.read()
                finally:
                    for d in (good, silent, crc, broken):
                        await d.close()
        assert [s.quality for s in first + after] == [Quality.GOOD] * 2
        assert reasons(lost) == {"no reply within 0.1 s"}
        assert silent_took < 1.0  # its own timeout, not the 2 s the line was opened with
        assert reasons(corrupt) == {"CRC error in a 7-byte reply (frame dropped)"}
        # A bad CRC fails the request when the frame is in, not after the 2 s timeout.
        assert crc_took < 1.0
        assert reasons(cut) == {"incomplete frame: 3 bytes, then silence for 0.1 s"}
        assert {s.quality for s in lost + corrupt + cut} == {Quality.BAD}

    asyncio.run(go())


def test_the_master_keeps_the_inter_frame_gap() -> None:
    async def go() -> None:
        with RtuLine(9600) as line:
            async with slaves(line, [1, 2]):
                lines = LinePool()
                drivers = [
                    ModbusDriver(unit(f"u{n}", line.client_path, n, 9600), lines) for n in (1, 2)
                ]
                try:
                    polls = await asyncio.gather(*(d.read() for _ in range(10) for d in drivers))
                finally:
                    for d in drivers:
                        await d.close()
            silences = list(line.silences)
        assert all(s.quality is Quality.GOOD for p in polls for s in p)
        assert len(silences) == 19  # before every request but the first
        # t3.5 at 9,600 bit/s is 4.01 ms; without the gap a request follows in ~0.3 ms.
        assert min(silences) >= 0.95 * frame_gap(9600), silences

    asyncio.run(go())


def test_a_good_unit_keeps_its_rate_beside_a_silent_and_a_corrupt_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def go() -> tuple[list[Poller], list[list[Sample]]]:
        lines = LinePool()
        published: list[list[Sample]] = [[], [], []]
        with RtuLine(19200) as line:
            line.faults.update({2: "silent", 3: "bad_crc"})
            async with slaves(line, [1, 2, 3]):
                configs = [
                    unit("good", line.client_path, 1, 19200, interval=0.1),
                    unit("silent", line.client_path, 2, 19200, interval=0.2, timeout=0.05),
                    unit("corrupt", line.client_path, 3, 19200, interval=0.2),
                ]
                drivers = [ModbusDriver(c, lines) for c in configs]
                pollers = [
                    Poller(c.name, d, c.poll_interval, [f"{c.name}.word"], out.extend)
                    for c, d, out in zip(configs, drivers, published, strict=True)
                ]
                tasks = [asyncio.create_task(p.run()) for p in pollers]
                try:
                    await asyncio.sleep(2.0)
                finally:
                    for t in tasks:
                        t.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                    for d in drivers:
                        await d.close()
        return pollers, published

    with caplog.at_level(logging.WARNING, logger="drivers.health"):
        pollers, (good, silent, corrupt) = asyncio.run(go())
    # 2 s at 0.1 s: 20 polls, give or take the first and the last, and a little slack for
    # a loaded machine; a line stalled by the silent unit's waits would give far fewer.
    assert 16 <= pollers[0].stats.polls <= 21, pollers[0].stats
    assert pollers[0].stats.overruns <= 1, pollers[0].stats
    assert good and {s.quality for s in good} == {Quality.GOOD}
    assert silent and reasons(silent) == {"no reply within 0.05 s"}
    assert corrupt and reasons(corrupt) == {"CRC error in a 7-byte reply (frame dropped)"}
    lost = [r.getMessage() for r in caplog.records if "lost" in r.getMessage()]
    assert sorted(lost) == [
        "device corrupt lost: holding 3+1: CRC error in a 7-byte reply (frame dropped)",
        "device silent lost: holding 3+1: no reply within 0.05 s",
    ]


def test_an_overrun_line_keeps_fast_and_safety_polls_and_reports_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hundred = [ModbusPoint(key=f"r{i}", address=i, type="uint16") for i in range(100)]

    async def go() -> tuple[dict[str, Poller], dict[str, LineStatus], float]:
        lines = LinePool()
        with RtuLine(19200) as line:
            async with slaves(line, [1, 2, 3, 4, 5]):
                # fast: the shortest interval; gas: feeds a safety row; bulk-*: 100
                # registers each, about 0.13 s of line time per poll, every 0.3 s.
                configs = [
                    unit("fast", line.client_path, 1, 19200, interval=0.25),
                    unit("gas", line.client_path, 2, 19200, interval=0.5),
                    *(
                        unit(f"bulk-{n}", line.client_path, n, 19200, interval=0.3, points=hundred)
                        for n in (3, 4, 5)
                    ),
                ]
                drivers = [ModbusDriver(c, lines) for c in configs]
                lines.protect({"gas"})
                pollers = {
                    c.name: Poller(c.name, d, c.poll_interval, [], lambda s: None)
                    for c, d in zip(configs, drivers, strict=True)
                }
                tasks = [asyncio.create_task(p.run()) for p in pollers.values()]
                try:
                    await asyncio.sleep(2.5)
                    status = lines.status()
                    idle = float(sum(line.silences))
                finally:
                    for t in tasks:
                        t.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                    for d in drivers:
                        await d.close()
        return pollers, status, idle

    with caplog.at_level(logging.WARNING, logger="drivers.modbus_line"):
        pollers, status, idle = asyncio.run(go())
    (line,) = status.values()
    assert line["overrun"] is True
    assert line["protected"] == ["fast", "gas"]
    assert list(line["stretched"]) == ["bulk-3", "bulk-4", "bulk-5"]
    assert 1.2 < line["load"] < 2.0, line
    # The fast and the safety polls kept their rate: 2.5 s at 0.25 s and at 0.5 s.
    assert 9 <= pollers["fast"].stats.polls <= 11, pollers["fast"].stats
    assert 4 <= pollers["gas"].stats.polls <= 6, pollers["gas"].stats
    assert pollers["fast"].stats.overruns == pollers["gas"].stats.overruns == 0
    # The bulk polls were stretched, not starved, and the line kept some headroom: about
    # 8 % of 2.5 s silent, against 2 % (the gaps alone) when they poll as configured.
    for name in ("bulk-3", "bulk-4", "bulk-5"):
        assert 2 <= pollers[name].stats.polls <= 6, pollers[name].stats
    assert idle > 0.12, idle
    overrun = [r.getMessage() for r in caplog.records if " overrun: " in r.getMessage()]
    assert len(overrun) == 1, overrun  # once per change, not once per poll


def test_what_pymodbus_rtu_framer_does_with_a_bad_crc_and_a_short_frame() -> None:
    """The driver's reasons rest on this (pymodbus 3.16): a complete frame with a bad CRC
    is dropped whole, no PDU, and the request would wait out its timeout; a frame cut
    short is kept and waited on. If an upgrade changes it, this fails first."""
    framer = FramerRTU(DecodePDU(is_server=False))
    reply = framer.buildFrame(ReadHoldingRegistersResponse(registers=[7], dev_id=3))
    assert len(reply) == 7
    assert framer.decode(reply)[0] == 7 and framer.decode(reply)[3]  # a PDU
    corrupt = reply[:-1] + bytes([reply[-1] ^ 0xFF])
    assert framer.decode(corrupt) == (7, 0, 0, b"")  # every byte used, no PDU: dropped
    assert framer.decode(reply[:4]) == (0, 3, 0, b"")  # nothing used: waits for the rest


def test_a_relay_write_goes_before_the_polls_queued_on_the_line() -> None:
    """A write is a relay switched by a matrix row or a watchdog's heartbeat: neither it nor
    its read-back may wait behind every poll queued on a shared line (each up to its unit's
    timeout); each waits for the exchange in progress only."""

    async def go() -> list[str]:
        lines, order = LinePool(), []
        with RtuLine(19200) as line:
            async with slaves(line, [1, 2]):
                bulk = ModbusDriver(unit("bulk", line.client_path, 1, 19200), lines)
                relay = ModbusDriver(unit("relay", line.client_path, 2, 19200), lines)

                async def poll(n: int) -> None:
                    await bulk.read()
                    order.append(f"poll-{n}")

                async def switch() -> None:
                    await relay.write("word", 1)
                    order.append("write")
                    await relay.read(["word"])  # the read-back, behind poll-1 in progress
                    order.append("read-back")

                try:
                    tasks = [asyncio.create_task(poll(0))]
                    await asyncio.sleep(0)  # poll-0 holds the line
                    tasks += [asyncio.create_task(poll(n)) for n in (1, 2)]
                    await asyncio.sleep(0)  # the others queue behind it
                    tasks.append(asyncio.create_task(switch()))
                    await asyncio.gather(*tasks)
                finally:
                    for d in (bulk, relay):
                        await d.close()
        return order

    assert asyncio.run(go()) == ["poll-0", "write", "poll-1", "read-back", "poll-2"]
