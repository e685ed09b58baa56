"""RTU line benchmark: requests per second on one serial line against the line's limit.

    .venv/bin/python -m benchmarks.rtu [--baudrates 9600 19200] [--seconds 20]
        [--registers 1] [--units 2]

One ``simulators.rtu_line.RtuLine`` (a pty pair that holds every frame for its time on the
wire at the baud rate) with pymodbus RTU slaves on its far side, both in a process of
their own; on the near side the gateway's own ``ModbusDriver``s, one per unit, read
``registers`` holding registers in turn as fast as the line lets them (each read waits for
its reply, then the inter-frame gap). Requests per second are counted over ``seconds``
after a one-second warm-up and set against the limit ``modbus_timing`` computes from the
frame lengths and the two t3.5 gaps per exchange (Modbus over Serial Line V1.02: 11-bit
characters, t3.5 = 3.5 characters at up to 19,200 bit/s):

    limit = baudrate / (11 * (request bytes + reply bytes + 2 * 3.5))

e.g. a one-register read (8 + 7 bytes) at 9,600 bit/s: 9600 / (11 * 22) = 39.7 per second.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import SimDevice

from drivers.modbus import ModbusDriver
from drivers.modbus_config import ModbusConfig, ModbusPoint, RtuTransport
from drivers.modbus_line import LinePool
from drivers.modbus_timing import exchange_time, reply_length, request_length
from simulators.rtu_line import RtuLine
from simulators.warehouse import register_blocks
from vocab.clock import steady

TARGET = 0.9  # of the limit


@dataclass(frozen=True)
class RtuFigures:
    baudrate: int
    registers: int
    units: int
    seconds: float
    requests: int
    bad: int

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def limit(self) -> float:
        return 1.0 / exchange_time(3, self.registers, self.baudrate)

    @property
    def ratio(self) -> float:
        return self.per_second / self.limit

    @property
    def overhead_ms(self) -> float:
        """Milliseconds each exchange took beyond the wire time and the gaps."""
        return 1000 * (1 / self.per_second - 1 / self.limit) if self.requests else 0.0

    def row(self) -> str:
        frames = f"{request_length(3)} + {reply_length(3, self.registers)}"
        verdict = "met" if self.ratio >= TARGET else "missed"
        return (
            f"| {self.baudrate:,} | {self.registers} | {frames} | {self.limit:.1f} "
            f"| {self.per_second:.1f} | {100 * self.ratio:.1f} % | {self.overhead_ms:.2f} "
            f"| {self.bad} | {verdict} |"
        )


HEADER = (
    "| bit/s | registers per read | frame bytes (request + reply) | limit req/s "
    "| measured req/s | of the limit | overhead ms/request | bad replies | >= 90 % |\n"
    "|---:|---:|---|---:|---:|---:|---:|---:|---|"
)


def _serve_line(baudrate: int, units: int, path: Any, stop: Any) -> None:
    """The line and pymodbus RTU slaves 1..``units`` on its far side, until ``stop`` is set
    (a child process); the master end's device path goes back through ``path``."""

    async def serve(line: RtuLine) -> None:
        devices = [SimDevice(id=u, simdata=register_blocks(16, 125)) for u in range(1, units + 1)]
        server = ModbusSerialServer(devices, port=line.server_path, baudrate=baudrate)
        task = asyncio.create_task(server.serve_forever())
        try:
            while server.transport is None:  # noqa: ASYNC110 - pymodbus signals nothing
                await asyncio.sleep(0.01)
            path.send(line.client_path)
            while not stop.is_set():  # noqa: ASYNC110 - a process event, not an asyncio one
                await asyncio.sleep(0.1)
        finally:
            await server.shutdown()  # type: ignore[no-untyped-call]
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    with RtuLine(baudrate) as line:
        asyncio.run(serve(line))


@contextmanager
def line_in_process(baudrate: int, units: int) -> Iterator[str]:
    """The line (its relay thread) and the slaves in a process of their own, so that the
    master measured here shares its interpreter lock with neither; yields the master end's
    device path."""
    context = multiprocessing.get_context("spawn")
    theirs, ours = context.Pipe()
    stop = context.Event()
    child = context.Process(
        target=_serve_line, args=(baudrate, units, theirs, stop), name="rtu-line", daemon=True
    )
    child.start()
    try:
        if not ours.poll(20):
            raise RuntimeError("the RTU line and its slaves did not start")
        yield str(ours.recv())
    finally:
        stop.set()
        child.join(10)
        if child.is_alive():
            child.kill()
            child.join(5)


async def _hammer(
    path: str, baudrate: int, registers: int, units: int, seconds: float
) -> tuple[int, int]:
    pool = LinePool()
    points = [ModbusPoint(key=f"r{i}", address=i, type="uint16") for i in range(registers)]
    drivers = [
        ModbusDriver(
            ModbusConfig(
                name=f"unit-{u}",
                driver="modbus",
                transport=RtuTransport(type="rtu", port=path, baudrate=baudrate),
                unit_id=u,
                timeout=0.5,
                points=points,
            ),
            pool,
        )
        for u in range(1, units + 1)
    ]
    counts = [0, 0]  # requests, bad

    async def loop(driver: ModbusDriver, until: float, count: bool) -> None:
        while steady() < until:
            samples = await driver.read()
            if count:
                counts[0] += 1
                counts[1] += any(not s.is_good for s in samples)

    try:
        warm = steady() + 1.0
        await asyncio.gather(*(loop(d, warm, False) for d in drivers))
        end = steady() + seconds
        await asyncio.gather(*(loop(d, end, True) for d in drivers))
    finally:
        for d in drivers:
            await d.close()
    return counts[0], counts[1]


def measure(baudrate: int, seconds: float = 20.0, registers: int = 1, units: int = 2) -> RtuFigures:
    """Requests per second over ``seconds`` on one line at ``baudrate``: ``units`` slaves
    read in turn, ``registers`` holding registers per read."""
    with line_in_process(baudrate, units) as path:
        requests, bad = asyncio.run(_hammer(path, baudrate, registers, units, seconds))
    return RtuFigures(baudrate, registers, units, seconds, requests, bad)


def table(figures: Sequence[RtuFigures]) -> str:
    return "\n".join([HEADER, *(f.row() for f in figures)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baudrates", type=int, nargs="+", default=[9600, 19200])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--registers", type=int, nargs="+", default=[1])
    parser.add_argument("--units", type=int, default=2)
    args = parser.parse_args()
    figures = [
        measure(b, args.seconds, r, args.units) for r in args.registers for b in args.baudrates
    ]
    print(table(figures))


if __name__ == "__main__":
    main()
