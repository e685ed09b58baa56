"""A Modbus TCP server with many devices of many registers, for the benchmarks.

    python -m benchmarks.bench_server --port 15020 --devices 50 --registers 2000

Unit ids 1..N each hold ``registers`` holding registers that count up by one every
time they are read, so every poll of every gateway delivers a changed value (a gateway
that reports on change only cannot look faster by reporting less).

Unit ``PROBE_UNIT`` is the latency probe: nothing changes it but a client's writes.
Register ``PROBE_VALUE`` is the process value; ``PROBE_STAMP`` and the next register
hold, big word first, the Unix time in milliseconds modulo 2**32 at which the benchmark
wrote that value (one write request sets both, so a reader never sees one without the
other). Coils 0..15 are the probe's relay outputs.

The server runs in a process of its own, so that its CPU is never counted against the
gateway being measured.
"""

from __future__ import annotations

import argparse
import logging

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import SimDevice

from simulators.warehouse import register_blocks

PROBE_UNIT = 200
PROBE_VALUE = 0
PROBE_STAMP = 1
_FC_READ_HOLDING = 3


async def _count_up(
    function_code: int,
    start: int,
    address: int,
    count: int,
    registers: list[int],
    set_values: list[int] | list[bool] | None,
) -> ExcCodes | None:
    # ``start`` is the address of registers[0], ``address`` the first one asked for.
    if function_code == _FC_READ_HOLDING:
        first = address - start
        registers[first : first + count] = [
            (value + 1) & 0xFFFF for value in registers[first : first + count]
        ]
    return None


def devices(count: int, registers: int) -> list[SimDevice]:
    counting = [
        SimDevice(id=unit, simdata=register_blocks(16, registers), action=_count_up)
        for unit in range(1, count + 1)
    ]
    return [*counting, SimDevice(id=PROBE_UNIT, simdata=register_blocks(16, 16))]


async def serve(port: int, count: int, registers: int) -> None:
    server = ModbusTcpServer(devices(count, registers), address=("127.0.0.1", port))
    await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--registers", type=int, default=2000)
    args = parser.parse_args()
    if not 1 <= args.devices < PROBE_UNIT:
        parser.error(f"--devices must be between 1 and {PROBE_UNIT - 1}")
    logging.getLogger("pymodbus").setLevel(logging.ERROR)
    try:
        import uvloop

        uvloop.run(serve(args.port, args.devices, args.registers))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
