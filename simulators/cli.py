"""``cellsafe sim``: the warehouse simulator as a program of its own."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

from simulators.rtu_line import RtuLine
from simulators.scenario import ScenarioError, load_scenario
from simulators.warehouse import Warehouse, WarehouseServer

_logger = logging.getLogger("simulators")


def run_simulator(
    host: str, port: int, scenario_name: str, speed: float, rtu_baudrate: int | None = None
) -> int:
    """Serve until SIGTERM or SIGINT. With ``rtu_baudrate`` (bit/s) the two units also
    answer as RTU slaves on a software RS-485 line (``simulators.rtu_line``) whose master
    end's device path is logged, for a gateway ``rtu`` transport to name."""
    try:
        scenario = load_scenario(scenario_name)
    except ScenarioError as err:
        print(f"cellsafe sim: {err}", file=sys.stderr)
        return 2

    def say(elapsed: float, text: str) -> None:
        _logger.info("t=%5.1f s  %s", elapsed, text)

    async def serve(line: RtuLine | None) -> None:
        warehouse = Warehouse(scenario, say)
        server = WarehouseServer(
            warehouse,
            host,
            port,
            speed,
            rtu_port=None if line is None else line.server_path,
            rtu_baudrate=19200 if line is None else line.baudrate,
        )
        await server.start()
        _logger.info(
            "simulator %r on %s:%d (sensors unit 1, relays unit 2)", scenario.name, host, port
        )
        if line is not None:
            _logger.info(
                'RTU line at %d bit/s: transport = {type = "rtu", port = "%s", baudrate = %d}',
                line.baudrate,
                line.client_path,
                line.baudrate,
            )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop()

    with contextlib.ExitStack() as stack, contextlib.suppress(KeyboardInterrupt):
        line = None if rtu_baudrate is None else stack.enter_context(RtuLine(rtu_baudrate))
        try:
            asyncio.run(serve(line))
        except OSError as err:
            print(f"cellsafe sim: {err}", file=sys.stderr)
            return 1
    return 0
